# orglink in a container: `docker build -t orglink .`, then for example
#   docker run -d --name orglink -v orglink-data:/var/lib/orglink \
#     -e ORGLINK_DISCORD_TOKEN=... -e ORGLINK_DISCORD_PUBLIC_KEY=... \
#     -p 127.0.0.1:8080:8080 orglink
# The data directory is the volume; back it up with the container stopped.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin orglink

FROM debian:bookworm-slim
# CA certificates for AWS's, Discord's and Freshdesk's TLS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/orglink --create-home orglink \
 && chmod 0700 /var/lib/orglink
COPY --from=build /src/target/release/orglink /usr/local/bin/orglink
USER orglink
# The public listener serves only Discord's POST /interactions; /healthz and
# /metrics stay on the container's loopback (`docker exec orglink ...` or a
# sidecar in the same network namespace reaches them). To scrape from
# another host, set ORGLINK_HTTP_ADMIN_LISTEN=0.0.0.0:9090 and publish 9090
# on a private network only.
ENV ORGLINK_DATA_DIR=/var/lib/orglink/data \
    ORGLINK_HTTP_LISTEN=0.0.0.0:8080 \
    ORGLINK_HTTP_ADMIN_LISTEN=127.0.0.1:9090
VOLUME ["/var/lib/orglink"]
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["orglink"]
CMD ["serve"]

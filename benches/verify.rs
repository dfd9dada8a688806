//! Role verification latency against the local AWS emulator, and evidence
//! that the checks after AssumeRole run concurrently: with every AWS call
//! delayed by the same amount through a local proxy, a verification takes
//! about three delays (AssumeRole, the external ID guard's two calls at
//! once, then the slowest of the three checks that use the role), not six.
//!
//! `cargo bench --bench verify` (needs fakecloud, as the tests do).

#[path = "../tests/it/harness/aws.rs"]
#[allow(dead_code)] // each bench uses part of it
mod aws_harness;
#[path = "support/figures.rs"]
mod figures;

use std::time::{Duration, Instant};

use aws_harness::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use orglink::aws::{Aws, RetryPolicy, VerifyRequest};
use orglink::domain::SupportTier;

const DELAY: Duration = Duration::from_millis(200);

/// Forwards every request to the emulator after `DELAY`.
async fn delayed(
    State(upstream): State<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    tokio::time::sleep(DELAY).await;
    let client = reqwest::Client::new();
    let url = format!("{upstream}{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut request =
        client.request(reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(), url).body(body.to_vec());
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let response = request.send().await.unwrap();
    let status = axum::http::StatusCode::from_u16(response.status().as_u16()).unwrap();
    let mut out = HeaderMap::new();
    for (name, value) in response.headers() {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(name.as_str().as_bytes()),
            axum::http::HeaderValue::from_bytes(value.as_bytes()),
        ) && n != "content-length"
            && n != "transfer-encoding"
        {
            out.insert(n, v);
        }
    }
    (status, out, response.bytes().await.unwrap().to_vec())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    let e = emulator();
    let account = "777700000001";
    let external_id = "CABENCHBENCHBENCHBENCH";
    let customer = Customer::new(account).await;
    let arn = customer.create_instructed_role(external_id).await;
    let keys = e.admin(PLATFORM, "orglink-bench").await;
    let request = VerifyRequest {
        account: account.parse().unwrap(),
        arn: arn.parse().unwrap(),
        external_id: external_id.parse().unwrap(),
        tier: SupportTier::Basic,
    };
    let retry = RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) };

    // Straight against the emulator.
    let aws = Aws::new(e.sdk_config(&keys), retry);
    assert!(aws.verify(&request).await.verified(), "the bench role verifies");
    let mut latencies = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        assert!(aws.verify(&request).await.verified());
        latencies.push(started.elapsed());
    }
    latencies.sort();

    // Through a proxy that delays every AWS call by DELAY.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(delayed).with_state(e.endpoint.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut config = e.sdk_config(&keys).into_builder();
    config.set_endpoint_url(Some(proxy));
    let slow = Aws::new(config.build(), retry);
    let mut delayed_runs = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        assert!(slow.verify(&request).await.verified());
        delayed_runs.push(started.elapsed());
    }
    delayed_runs.sort();

    println!("verification benchmark (fakecloud on loopback)");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| verify, direct: p50 / p99 / max of 100 | {} / {} / {} |",
        ms(pct(&latencies, 50.0)),
        ms(pct(&latencies, 99.0)),
        ms(*latencies.last().unwrap())
    );
    println!("| every AWS call delayed by | {} |", ms(DELAY));
    println!("| verify with delays: median of 5 | {} |", ms(pct(&delayed_runs, 50.0)));
    println!("| if the 5 calls after AssumeRole ran one after another | ≥ {} |", ms(DELAY * 6));
    println!("| AssumeRole + the guard (2 at once) + the slowest check (3 at once) | ≈ {} |", ms(DELAY * 3));
    // For scripts/bench.sh's table.
    println!(
        "summary | role verification (6 checks, emulator), p50 / p99 | {} / {} |",
        ms(pct(&latencies, 50.0)),
        ms(pct(&latencies, 99.0))
    );
    println!("summary | role verification, every AWS call 200 ms late, median | {} |", ms(pct(&delayed_runs, 50.0)));
    let mut figures = figures::Figures::new("verify");
    figures.seconds("verify_p50_seconds", pct(&latencies, 50.0));
    figures.seconds("verify_p99_seconds", pct(&latencies, 99.0));
    figures.seconds("verify_max_seconds", *latencies.last().unwrap());
    figures.seconds("aws_delay_seconds", DELAY);
    figures.seconds("verify_delayed_median_seconds", pct(&delayed_runs, 50.0));
    figures.write();
}

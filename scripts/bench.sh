#!/usr/bin/env bash
# Every benchmark, then one table of the figures that matter (README,
# "Benchmarks"), and target/bench/summary.json. Needs fakecloud, as the tests
# do; takes about 25 minutes (the registry benchmark soaks serve for 10).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for bench in registry interactions verify poll probe; do
  echo "benchmark $bench..." >&2
  cargo bench --locked --quiet --bench "$bench" > "$out/$bench.txt"
done

# Cold start and idle RSS of the release binary: from exec to the first
# /healthz answer, then RSS after 2 idle seconds. AWS (for the start-up
# identity check) is a local fakecloud; Discord's address refuses.
cargo build --locked --quiet --release --bin orglink
fakecloud=${FAKECLOUD_BIN:-$(command -v fakecloud || echo "$HOME/.cargo/bin/fakecloud")}
python3 - "$fakecloud" "$out" >> "$out/serve.txt" <<'PY'
import os, socket, subprocess, sys, tempfile, time, urllib.request

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def wait(url, deadline):
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=0.5)
            return True
        except urllib.error.HTTPError:
            return True
        except Exception:
            time.sleep(0.002)
    return False

fakecloud, out = sys.argv[1], sys.argv[2]
aws_port, http_port = free_port(), free_port()
aws = subprocess.Popen([fakecloud, "--addr", f"127.0.0.1:{aws_port}", "--log-level", "warn"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", aws_port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    starts, idle = [], None
    for run in range(5):
        data = tempfile.mkdtemp()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "ORGLINK_DATA_DIR": os.path.join(data, "data"),
            "ORGLINK_HTTP_LISTEN": f"127.0.0.1:{http_port}",
            "ORGLINK_DISCORD_TOKEN": "bench-token",
            "ORGLINK_DISCORD_API_BASE_URL": "http://127.0.0.1:9",
            "ORGLINK_LOG": "error",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws_port}",
            "AWS_ACCESS_KEY_ID": "AKIDBENCH", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        t0 = time.monotonic()
        serve = subprocess.Popen(["target/release/orglink", "serve"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not wait(f"http://127.0.0.1:{http_port}/healthz", time.monotonic() + 30):
                sys.exit("orglink serve did not answer /healthz")
            starts.append(time.monotonic() - t0)
            if run == 0:
                time.sleep(2)
                with open(f"/proc/{serve.pid}/status") as status:
                    idle = next(l.split(":", 1)[1].strip() for l in status if l.startswith("VmRSS:"))
        finally:
            serve.terminate()
            serve.wait()
    starts.sort()
    print(f"summary | cold start of orglink serve, exec to /healthz, median of 5 | {starts[2] * 1000:.0f} ms |")
    print(f"summary | idle RSS of orglink serve | {idle} |")
    import json
    os.makedirs("target/bench", exist_ok=True)
    with open("target/bench/serve.json", "w") as f:
        json.dump({"cold_start_median_seconds": starts[2],
                   "idle_rss_bytes": int(idle.split()[0]) * 1024}, f, indent=2)
finally:
    aws.terminate()
    aws.wait()
PY

# Every benchmark's figures in one file: "<benchmark>.<figure>" keys.
python3 - <<'PY'
import glob, json, os
summary = {}
for path in sorted(glob.glob("target/bench/*.json")):
    name = os.path.basename(path)[:-len(".json")]
    if name == "summary":
        continue
    with open(path) as f:
        for key, value in json.load(f).items():
            summary[f"{name}.{key}"] = value
with open("target/bench/summary.json", "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
print("figures gathered in target/bench/summary.json")
PY

echo
echo "orglink benchmarks on $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| measure | value |"
echo "|---|---|"
for f in registry interactions verify poll probe serve; do
  sed -n "s/^summary | \(.*\) | \(.*\) |$/| \1 | \2 |/p" "$out/$f.txt"
done

//! The command line through a running `orglink serve`: the real binary both
//! ends, as an operator runs it (a new process each time, which parses its
//! arguments, finds the socket, sends them and prints the answer). A server
//! without Discord on a fresh data directory; first 200 `account add`, then
//! 200 `account show` and 50 `account list --json` of those 200 accounts.
//!
//! `cargo bench --bench socket`. Target: p50 of a command at most 20 ms.
//! Prints a table and writes `target/bench/socket.json`.

#[path = "support/figures.rs"]
mod figures;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_orglink");
const TENANT: &str = "900000000000000001";

/// The environment both ends run with: no AWS, no Discord.
fn env<'a>(command: &'a mut Command, data_dir: &Path) -> &'a mut Command {
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("USER", "bench")
        .env("ORGLINK_DATA_DIR", data_dir)
        .env("ORGLINK_HTTP_LISTEN", "127.0.0.1:0")
        .env("ORGLINK_PROBE_ENABLED", "false")
        .env("AWS_ACCESS_KEY_ID", "AKIAOFFLINE")
        .env("AWS_SECRET_ACCESS_KEY", "offline")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// Runs one command; its wall time.
fn timed(data_dir: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let output = env(&mut Command::new(BIN), data_dir).args(args).output().expect("orglink runs");
    let took = started.elapsed();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let server = env(&mut Command::new(BIN), &data_dir)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("orglink serve starts");
    let server = Server(server);
    let socket = data_dir.join("orglink.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "orglink serve did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut figures = figures::Figures::new("socket");
    println!("{:<28} {:>6} {:>9} {:>9} {:>9}", "command", "runs", "p50 ms", "p95 ms", "max ms");
    let mut phase = |name: &str, runs: Vec<Duration>| {
        let mut sorted = runs;
        sorted.sort();
        let (p50, p95, max) = (percentile(&sorted, 0.5), percentile(&sorted, 0.95), *sorted.last().unwrap());
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("{name:<28} {:>6} {:>9.2} {:>9.2} {:>9.2}", sorted.len(), ms(p50), ms(p95), ms(max));
        figures.seconds(&format!("{name}_p50_seconds"), p50);
        figures.seconds(&format!("{name}_p95_seconds"), p95);
        figures.seconds(&format!("{name}_max_seconds"), max);
    };

    let ids: Vec<String> = (0..200).map(|i| format!("{:012}", 100_000_000_000u64 + i)).collect();
    let adds = ids
        .iter()
        .map(|id| {
            timed(&data_dir, &["account", "add", id, "--tenant", TENANT, "--customer", "Acme", "--support", "basic"])
        })
        .collect();
    phase("account_add", adds);
    let shows = ids.iter().map(|id| timed(&data_dir, &["account", "show", id])).collect();
    phase("account_show", shows);
    let lists = (0..50).map(|_| timed(&data_dir, &["account", "list", "--json"])).collect();
    phase("account_list_json_200", lists);
    // The same process without a server: what the socket adds, and saves.
    drop(server);
    let local = ids.iter().take(50).map(|id| timed(&data_dir, &["account", "show", id])).collect();
    phase("account_show_local", local);
    figures.write();
}

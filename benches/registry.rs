//! Registry benchmark: registers many accounts through the app (the same
//! code path as the CLI and Discord), then lists a tenant's accounts.
//!
//! `cargo bench --bench registry` (100,000 accounts; set
//! `ORGLINK_BENCH_ACCOUNTS` for another count). Prints time per
//! registration, list latency, store bytes per account and peak RSS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orglink::app::{Actor, App, Command, Settings};
use orglink::clock::SystemClock;
use orglink::domain::{AccountKind, NewAccount, SupportTier};
use orglink::store::Store;

const ACCOUNTS_PER_TENANT: usize = 100;

fn main() {
    let count: usize = std::env::var("ORGLINK_BENCH_ACCOUNTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path()).expect("the store opens");
    let app = App::new(store, Settings::default(), Arc::new(SystemClock));
    let actor = Actor::operator("bench");

    let mut latencies = Vec::with_capacity(count);
    let started = Instant::now();
    for i in 0..count {
        let new = NewAccount {
            id: format!("{:012}", 100_000_000_000u64 + i as u64).parse().unwrap(),
            tenant: format!("tenant-{:05}", i / ACCOUNTS_PER_TENANT).parse().unwrap(),
            customer: format!("Customer {i}").parse().unwrap(),
            root_email: Some(format!("root+{i}@customer.example").parse().unwrap()),
            support_tier: SupportTier::ALL[i % 3],
            kind: AccountKind::Standalone,
            price_book: None,
        };
        let t = Instant::now();
        app.handle(&actor, Command::AddAccount(new)).expect("registration succeeds");
        latencies.push(t.elapsed());
    }
    let total = started.elapsed();
    app.store().flush().unwrap();

    // List one tenant's accounts (as /status does), many times.
    let tenants = count.div_ceil(ACCOUNTS_PER_TENANT);
    let mut list_latencies = Vec::new();
    for i in 0..200.min(tenants * 4) {
        let tenant = format!("tenant-{:05}", (i * 7919) % tenants).parse().unwrap();
        let t = Instant::now();
        let reply = app.handle(&actor, Command::ListAccounts { tenant: Some(tenant) }).unwrap();
        list_latencies.push(t.elapsed());
        assert!(reply.data.is_some());
    }
    let t = Instant::now();
    let all = app.store().all_accounts().unwrap();
    let list_all = t.elapsed();
    assert_eq!(all.len(), count);

    let disk = dir_size(dir.path());
    latencies.sort();
    list_latencies.sort();
    println!("registry benchmark: {count} accounts, {ACCOUNTS_PER_TENANT} per tenant");
    println!("| measure | value |");
    println!("|---|---|");
    println!("| registrations per second | {:.0} |", count as f64 / total.as_secs_f64());
    println!("| registration mean | {} |", fmt(total / count as u32));
    println!(
        "| registration p50 / p99 / max | {} / {} / {} |",
        fmt(pct(&latencies, 50.0)),
        fmt(pct(&latencies, 99.0)),
        fmt(*latencies.last().unwrap())
    );
    println!(
        "| list one tenant ({ACCOUNTS_PER_TENANT} accounts) p50 / p99 | {} / {} |",
        fmt(pct(&list_latencies, 50.0)),
        fmt(pct(&list_latencies, 99.0))
    );
    println!("| read all {count} accounts | {} |", fmt(list_all));
    println!("| store on disk | {:.1} MiB ({} bytes per account) |", disk as f64 / 1048576.0, disk / count as u64);
    println!("| peak RSS | {} |", peak_rss().unwrap_or_else(|| "unknown".into()));
    // For scripts/bench.sh's table.
    println!("summary | registrations per second ({count} accounts) | {:.0} |", count as f64 / total.as_secs_f64());
    println!("summary | registration p50 / p99 | {} / {} |", fmt(pct(&latencies, 50.0)), fmt(pct(&latencies, 99.0)));
    println!(
        "summary | list one tenant at {count} accounts, p50 / p99 | {} / {} |",
        fmt(pct(&list_latencies, 50.0)),
        fmt(pct(&list_latencies, 99.0))
    );
    println!("summary | store bytes per account | {} |", disk / count as u64);
    println!("summary | peak RSS, registry of {count} accounts | {} |", peak_rss().unwrap_or_else(|| "unknown".into()));
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize]
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .flatten()
        .map(|e| {
            let meta = e.metadata().unwrap();
            if meta.is_dir() { dir_size(&e.path()) } else { meta.len() }
        })
        .sum()
}

/// Peak resident set size, from /proc (Linux).
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.0} MiB", kib as f64 / 1024.0))
}

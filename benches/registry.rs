//! Registry benchmark: registers many accounts through the app (the same
//! code path as the CLI and Discord), lists a tenant's accounts, runs the
//! pipeline over all of them, runs the
//! probe job over the registry with 1% of it due, shows where the store's
//! bytes go, then soaks `orglink serve` over that store with every job
//! running each minute and reads its RSS.
//!
//! `ORGLINK_BENCH_ACCOUNTS=100000 cargo bench --bench registry` (the
//! default count; `ORGLINK_BENCH_SERVE_SECONDS` shortens the 10-minute
//! soak, 0 skips it). Prints a table and writes `target/bench/registry.json`.

#[path = "support/figures.rs"]
mod figures;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use figures::Figures;
use orglink::app::{Actor, App, Command, ProbeSettings, Settings};
use orglink::aws::{Aws, RetryPolicy};
use orglink::clock::ManualClock;
use orglink::domain::{AccountKind, NewAccount, SupportTier};
use orglink::scheduler::Job;
use orglink::store::Store;

const ACCOUNTS_PER_TENANT: usize = 100;
/// Every hundredth account was registered a day earlier: due for probing.
const DUE_EVERY: usize = 100;

fn main() {
    let count: usize = std::env::var("ORGLINK_BENCH_ACCOUNTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let soak: u64 = std::env::var("ORGLINK_BENCH_SERVE_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let mut figures = Figures::new("registry");
    figures.set("accounts", count as f64);

    // Now, so that the serve soak below sees the same 1% due.
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let clock = Arc::new(ManualClock::new(now));
    // The ceiling is lifted so that the probe job reads every due account:
    // what it reads is then what is due, not what the ceiling allows.
    let settings = Settings {
        probe: ProbeSettings { assume_role_per_minute: 1_000_000, ..ProbeSettings::default() },
        ..Settings::default()
    };
    let store = Store::open(&data).expect("the store opens");
    let app = App::new(store, settings, clock.clone()).with_aws(unreachable_aws());
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
        let day = time::Duration::days(1);
        clock.set(if i % DUE_EVERY == 0 { now - day } else { now + day });
        let t = Instant::now();
        app.handle(&actor, Command::AddAccount(new)).expect("registration succeeds");
        latencies.push(t.elapsed());
    }
    let total = started.elapsed();
    clock.set(now);
    app.store().flush().unwrap();

    // List one tenant's accounts (as /status does), many times.
    let tenants = count.div_ceil(ACCOUNTS_PER_TENANT);
    let mut list_latencies = Vec::new();
    for i in 0..200.min(tenants * 4) {
        let tenant = format!("tenant-{:05}", (i * 7919) % tenants).parse().unwrap();
        let t = Instant::now();
        let reply = app
            .handle(
                &actor,
                Command::ListAccounts { tenant: Some(tenant), filter: Default::default(), format: Default::default() },
            )
            .unwrap();
        list_latencies.push(t.elapsed());
        assert!(reply.data().is_some());
    }
    // The pipeline over every account, as `orglink pipeline` runs it: the
    // app's command, then its text rendered (five runs).
    let templates = orglink::templates::Templates::embedded();
    let mut pipeline_runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let command = Command::Pipeline { tenant: None, format: Default::default(), page: None };
        let reply = app.handle(&actor, command).expect("the pipeline runs");
        let text = reply.messages[0].render(&templates, orglink::domain::Lang::En).expect("it renders");
        pipeline_runs.push(t.elapsed());
        assert!(text.text.contains(&format!("{count} registrations")));
    }
    pipeline_runs.sort();
    // Its parts: the figures alone (the store's rows and what waits), and
    // the rendering of the text.
    let mut figure_runs = Vec::new();
    let mut render_runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        app.pipeline_now(None, 10).expect("the figures");
        figure_runs.push(t.elapsed());
        let command = Command::Pipeline { tenant: None, format: Default::default(), page: None };
        let reply = app.handle(&actor, command).expect("the pipeline runs");
        let t = Instant::now();
        reply.messages[0].render(&templates, orglink::domain::Lang::En).expect("it renders");
        render_runs.push(t.elapsed());
    }
    figure_runs.sort();
    render_runs.sort();
    let t = Instant::now();
    let all = app.store().all_accounts().unwrap();
    let list_all = t.elapsed();
    assert_eq!(all.len(), count);
    drop(all);

    // The probe job, once to build the due index for this plan, then
    // measured: STS does not answer, so the run stops at its first probe
    // (as it does when AWS is down) after reading what is due.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(app.run_job(Job::ProbeRoles)).expect("the probe job runs");
    let read_before = app.metrics().job_records_read_total(Job::ProbeRoles.name());
    let t = Instant::now();
    let report = runtime.block_on(app.run_job(Job::ProbeRoles)).expect("the probe job runs");
    let probe_run = t.elapsed();
    let records_read = app.metrics().job_records_read_total(Job::ProbeRoles.name()) - read_before;
    // 1% are due: a run that could not ask AWS records nothing, so the one
    // the first run tried is still first in line.
    assert_eq!(report.tracked, count.div_ceil(DUE_EVERY), "1% of the accounts are due");

    let footprint = app.store().footprint().unwrap();
    app.store().flush().unwrap();
    drop(app);
    let disk = dir_size(&data);
    latencies.sort();
    list_latencies.sort();
    let rps = count as f64 / total.as_secs_f64();
    figures.set("registrations_per_second", rps);
    figures.seconds("registration_p50_seconds", pct(&latencies, 50.0));
    figures.seconds("registration_p99_seconds", pct(&latencies, 99.0));
    figures.seconds("registration_max_seconds", *latencies.last().unwrap());
    figures.seconds("tenant_list_p50_seconds", pct(&list_latencies, 50.0));
    figures.seconds("tenant_list_p99_seconds", pct(&list_latencies, 99.0));
    figures.seconds("read_all_accounts_seconds", list_all);
    figures.seconds("pipeline_p50_seconds", pct(&pipeline_runs, 50.0));
    figures.seconds("pipeline_max_seconds", *pipeline_runs.last().unwrap());
    figures.seconds("pipeline_figures_p50_seconds", pct(&figure_runs, 50.0));
    figures.seconds("pipeline_render_p50_seconds", pct(&render_runs, 50.0));
    figures.set("store_bytes", disk as f64);
    figures.set("store_bytes_per_account", (disk / count as u64) as f64);
    figures.set("job_due_per_run", report.tracked as f64);
    figures.set("job_records_read_per_run", records_read as f64);
    figures.seconds("job_probe_run_seconds", probe_run);
    figures.set("peak_rss_bytes", figures::peak_rss_bytes().unwrap_or_default() as f64);
    for (tree, entries, bytes) in &footprint {
        figures.set(&format!("tree_{tree}_entries"), *entries as f64);
        figures.set(&format!("tree_{tree}_bytes"), *bytes as f64);
    }

    println!("registry benchmark: {count} accounts, {ACCOUNTS_PER_TENANT} per tenant");
    println!("| measure | value |");
    println!("|---|---|");
    println!("| registrations per second | {rps:.0} |");
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
    println!(
        "| pipeline over {count} accounts (command and text), p50 / max of 5 | {} / {} |",
        fmt(pct(&pipeline_runs, 50.0)),
        fmt(*pipeline_runs.last().unwrap())
    );
    println!(
        "| of which: the figures (rows and what waits) / the text rendered, p50 | {} / {} |",
        fmt(pct(&figure_runs, 50.0)),
        fmt(pct(&render_runs, 50.0))
    );
    println!(
        "| probe job, {} due of {count}: records read, run time | {records_read}, {} |",
        report.tracked,
        fmt(probe_run)
    );
    println!("| store on disk | {:.1} MiB ({} bytes per account) |", disk as f64 / 1048576.0, disk / count as u64);
    println!("| peak RSS | {} |", mib(figures::peak_rss_bytes()));
    println!();
    println!("where the bytes go (keys and values, before sled's own overhead):");
    println!("| tree | entries | bytes | bytes per account |");
    println!("|---|---|---|---|");
    for (tree, entries, bytes) in &footprint {
        if *entries > 0 {
            println!("| {tree} | {entries} | {bytes} | {} |", bytes / count as u64);
        }
    }

    if soak > 0 {
        let rss = serve_soak(&data, Duration::from_secs(soak));
        figures.set("serve_rss_bytes_100k", rss.last as f64);
        figures.set("serve_rss_max_bytes", rss.max as f64);
        figures.set("serve_soak_seconds", soak as f64);
        figures.set("serve_job_runs_ok", rss.job_runs);
        println!(
            "| orglink serve over {count} accounts, every job each minute, after {soak} s: RSS (max), job runs | {} ({}), {} |",
            mib(Some(rss.last)),
            mib(Some(rss.max)),
            rss.job_runs
        );
    }
    figures.write();
    if std::env::var_os("ORGLINK_BENCH_KEEP").is_some() {
        println!("store kept in {}", data.display());
        std::mem::forget(dir);
    }

    // For scripts/bench.sh's table.
    println!("summary | registrations per second ({count} accounts) | {rps:.0} |");
    println!("summary | registration p50 / p99 | {} / {} |", fmt(pct(&latencies, 50.0)), fmt(pct(&latencies, 99.0)));
    println!(
        "summary | list one tenant at {count} accounts, p50 / p99 | {} / {} |",
        fmt(pct(&list_latencies, 50.0)),
        fmt(pct(&list_latencies, 99.0))
    );
    println!("summary | pipeline over {count} accounts, p50 (at most 200 ms) | {} |", fmt(pct(&pipeline_runs, 50.0)));
    println!("summary | store bytes per account | {} |", disk / count as u64);
    println!("summary | probe job records read, {} due of {count} | {records_read} |", report.tracked);
    println!("summary | peak RSS, registry of {count} accounts | {} |", mib(figures::peak_rss_bytes()));
}

/// AWS at an address that refuses at once, without the SDK's retries: a
/// probe finds STS unreachable.
fn unreachable_aws() -> Aws {
    let credentials = aws_credential_types::Credentials::new("AKIDBENCH", "bench", None, None, "bench");
    let config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
        .build();
    Aws::new(config, RetryPolicy { retries: 0, first_delay: Duration::ZERO })
}

struct Rss {
    last: u64,
    max: u64,
    /// Scheduled job runs that succeeded, from serve's /metrics at the end.
    job_runs: f64,
}

/// Runs `orglink serve` over the store in `data` (HTTP endpoint only, AWS
/// unreachable, every job each minute) for `soak`, and reads its RSS.
fn serve_soak(data: &std::path::Path, soak: Duration) -> Rss {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orglink"));
    command
        .arg("serve")
        .env_clear()
        .env("ORGLINK_DATA_DIR", data)
        .env("ORGLINK_HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .env("ORGLINK_DISCORD_PUBLIC_KEY", hex::encode(key))
        .env("ORGLINK_LOG", "error")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for job in Job::ALL {
        command.env(format!("ORGLINK_{}", job.config_key().replace('.', "_").to_uppercase()), "0 * * * * *");
    }
    let mut serve = command.spawn().expect("orglink serve starts");
    let started = Instant::now();
    let mut rss = Rss { last: 0, max: 0, job_runs: 0.0 };
    while started.elapsed() < soak {
        std::thread::sleep(Duration::from_secs(1).min(soak));
        if let Ok(Some(status)) = serve.try_wait() {
            panic!("orglink serve exited early: {status}");
        }
        if let Some(now) = figures::rss_bytes(serve.id()) {
            rss.last = now;
            rss.max = rss.max.max(now);
        }
    }
    rss.job_runs = job_runs(port);
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    serve.wait().expect("orglink serve stops");
    rss
}

/// The scheduled job runs that succeeded, as `GET /metrics` counts them.
fn job_runs(port: u16) -> f64 {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return 0.0 };
    let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut page = String::new();
    let _ = stream.read_to_string(&mut page);
    page.lines()
        .filter(|l| l.starts_with("orglink_job_runs_total{") && l.contains(r#"outcome="ok""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
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

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "unknown".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0))
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

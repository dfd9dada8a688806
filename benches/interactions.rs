//! Load benchmark of the HTTP interactions endpoint on loopback: signed
//! `/status` and `/link-account` interactions, half each, first at a fixed
//! 200 requests per second; then at the same rate while a scheduled job
//! writes 1,000 accounts once (its writes run off the async threads: the
//! requests sent meanwhile are measured apart), and while it runs back to
//! back; then as fast as 8 connections go. Last, side by side with the
//! floor: a bare endpoint on the same HTTP stack (axum), as serenity's
//! `examples/e19_interactions_endpoint` answers (serenity's `Verifier`,
//! parse the `Interaction`, answer a fixed message), and orglink answering
//! a signed `/status` that lists 20 accounts, alternating orglink, floor,
//! orglink, floor at the same rate: p50 and p99 of each, and the CPU each
//! server used per request (its runtime's threads, read from
//! `/proc/self/task`, the load generator's apart).
//!
//! `cargo bench --bench interactions` (set `ORGLINK_BENCH_SECONDS` for
//! another length of each fixed-rate phase; default 15 s). The load
//! generator runs in the same process, on the same 2 cores. Prints a table
//! and writes `target/bench/interactions.json`.

#[path = "support/figures.rs"]
mod figures;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use orglink::app::{Actor, App, Command, Rights, Scope};
use orglink::clock::SystemClock;
use orglink::config::{Config, DiscordConfig};
use orglink::domain::{LinkState, NewAccount, SupportTier};
use orglink::scheduler::Job;
use orglink::store::{By, Store};
use orglink::templates::Templates;
use serde_json::{Value, json};

const GUILD: &str = "900000000000000001";
/// A reseller with 20 accounts, for the side-by-side `/status`.
const GUILD_20: &str = "900000000000000003";
/// The server's runtime threads' name, for its CPU time.
const SERVER_THREADS: &str = "orglink-srv";
const RATE: u64 = 200;

fn interaction(name: &str, options: Value, id: u64) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/discord/command_link_account_es419.json");
    let mut i: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    i["id"] = json!((id + 1).to_string()); // Discord IDs are never 0
    i["token"] = json!(format!("token-{id}"));
    i["data"]["name"] = json!(name);
    i["data"]["options"] = options;
    i
}

/// A registration of account `id` for `tenant`.
fn new_account(id: u64, tenant: &str, customer: String, support_tier: SupportTier) -> NewAccount {
    NewAccount {
        id: format!("{id:012}").parse().unwrap(),
        tenant: tenant.parse().unwrap(),
        customer: customer.parse().unwrap(),
        root_email: None,
        support_tier,
        kind: Default::default(),
        price_book: None,
    }
}

struct Signed {
    body: Vec<u8>,
    timestamp: String,
    signature: String,
}

fn sign(key: &SigningKey, body: Vec<u8>) -> Signed {
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let signature = hex::encode(key.sign(&[timestamp.as_bytes(), &body].concat()).to_bytes());
    Signed { body, timestamp, signature }
}

/// Request `i`: even ones ask for a registered account's status, odd ones
/// register a new account.
fn body(i: u64) -> Vec<u8> {
    let value = if i.is_multiple_of(2) {
        let account = format!("{:012}", 100_000_000_000 + (i / 2) % 1000);
        interaction("status", json!([{ "name": "account_id", "type": 3, "value": account }]), i)
    } else {
        let account = format!("{:012}", 300_000_000_000 + i);
        interaction(
            "link-account",
            json!([
                { "name": "account_id", "type": 3, "value": account },
                { "name": "customer", "type": 3, "value": "Bench Customer" },
                { "name": "support_tier", "type": 3, "value": "developer" }
            ]),
            i,
        )
    };
    serde_json::to_vec(&value).unwrap()
}

/// Request `i` of the side-by-side rounds: `/status` of [`GUILD_20`], which
/// lists its 20 accounts.
fn status_20(i: u64) -> Vec<u8> {
    let mut value = interaction("status", json!([]), i);
    value["guild_id"] = json!(GUILD_20);
    value["channel"]["guild_id"] = json!(GUILD_20);
    serde_json::to_vec(&value).unwrap()
}

/// The floor: what serenity's e19 example does for an interaction, on
/// orglink's HTTP stack. Serves until the runtime it runs on stops.
async fn floor(public_key: &str) -> std::net::SocketAddr {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use serenity::all::{CreateInteractionResponse, CreateInteractionResponseMessage, Interaction};
    use serenity::interactions_endpoint::Verifier;

    async fn handle(
        State(verifier): State<Arc<Verifier>>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::response::Response {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(signature), Some(timestamp)) = (header("X-Signature-Ed25519"), header("X-Signature-Timestamp"))
        else {
            return StatusCode::UNAUTHORIZED.into_response();
        };
        if verifier.verify(signature, timestamp, &body).is_err() {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        match serde_json::from_slice::<Interaction>(&body) {
            Ok(Interaction::Ping(_)) => axum::Json(CreateInteractionResponse::Pong).into_response(),
            Ok(_) => axum::Json(CreateInteractionResponse::Message(
                CreateInteractionResponseMessage::new().content("Hello from interactions webhook HTTP server!"),
            ))
            .into_response(),
            Err(_) => StatusCode::BAD_REQUEST.into_response(),
        }
    }
    let verifier = Arc::new(Verifier::new(public_key));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/interactions", axum::routing::post(handle)).with_state(verifier);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// CPU time (user and system) the server's runtime threads have used.
fn server_cpu() -> Duration {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        if !stat[open + 1..close].starts_with(SERVER_THREADS) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // After the name: state is field 3, utime 14, stime 15.
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    Duration::from_secs_f64(ticks as f64 / ticks_per_second)
}

async fn send(client: &reqwest::Client, url: &str, request: &Signed) -> Duration {
    let started = Instant::now();
    let response = client
        .post(url)
        .header("X-Signature-Ed25519", &request.signature)
        .header("X-Signature-Timestamp", &request.timestamp)
        .header("Content-Type", "application/json")
        .body(request.body.clone())
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await.unwrap();
    started.elapsed()
}

/// Sends `requests[range]` at [`RATE`] per second, each on its own task;
/// each request's start (from the phase's start) and latency, in order of
/// sending, and the time it took.
async fn fixed_rate(
    client: &reqwest::Client,
    url: &str,
    requests: &Arc<Vec<Signed>>,
    range: std::ops::Range<usize>,
) -> (Vec<(Duration, Duration)>, Duration) {
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(range.len());
    for i in range {
        ticker.tick().await;
        let (client, url, requests) = (client.clone(), url.to_owned(), requests.clone());
        let at = started.elapsed();
        tasks.push(tokio::spawn(async move { (at, send(&client, &url, &requests[i]).await) }));
    }
    let mut sent = Vec::with_capacity(tasks.len());
    for task in tasks {
        sent.push(task.await.unwrap());
    }
    (sent, started.elapsed())
}

fn sorted(sent: impl Iterator<Item = (Duration, Duration)>) -> Vec<Duration> {
    let mut latencies: Vec<Duration> = sent.map(|(_, latency)| latency).collect();
    latencies.sort();
    latencies
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let seconds: u64 = std::env::var("ORGLINK_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(15);
    // The server on its own runtime (its threads' CPU time is the server's),
    // the load generator on another.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name(SERVER_THREADS)
        // Its blocking threads stay: one that ended would take its CPU
        // time out of /proc.
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .unwrap();
    let server = server_runtime.handle().clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().thread_name("bench-client").enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = SigningKey::from_bytes(&[42; 32]);
        let config = Config {
            discord: DiscordConfig {
                public_key: Some(hex::encode(key.verifying_key().to_bytes())),
                application_id: Some("800000000000000001".parse().unwrap()),
                ..DiscordConfig::default()
            },
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        // One reseller registers thousands of accounts here: far past the
        // default quota of open registrations, which is not what is measured.
        let mut config = config;
        config.settings.quotas.open_claims = u32::MAX;
        // 1,000 registered accounts for /status to read, of a reseller the
        // distributor approved (as the other one, below).
        let app = App::new(store.clone(), config.settings.clone(), Arc::new(SystemClock));
        let operator = Actor::operator("bench");
        for guild in [GUILD, GUILD_20] {
            let approve = Command::DecideTenant {
                tenant: guild.parse().unwrap(),
                decision: orglink::domain::TenantDecision::Approve,
            };
            app.handle(&operator, approve).unwrap();
        }
        let actor = Actor {
            id: "bench".into(),
            scope: Scope::Tenant(GUILD.parse().unwrap()),
            rights: Rights { manage_server: true, ..Default::default() },
            claim_of: None,
        };
        for i in 0..1000u64 {
            let new = new_account(100_000_000_000 + i, GUILD, format!("Customer {i}"), SupportTier::Basic);
            app.handle(&actor, Command::AddAccount(new)).unwrap();
        }
        // 1,000 linked accounts without a support plan group: the audit job
        // warns (writes) each of them on every run.
        for i in 0..1000u64 {
            let new = new_account(200_000_000_000 + i, GUILD, format!("Linked {i}"), SupportTier::Business);
            let id = new.id;
            app.handle(&actor, Command::AddAccount(new)).unwrap();
            let now = time::OffsetDateTime::now_utc();
            app.update_account(id, &GUILD.parse().unwrap(), By::new("bench", "setup", now), &[], |a| {
                a.state = LinkState::Linked;
                Ok::<_, ()>(vec![])
            })
            .unwrap();
        }
        // 20 accounts of another reseller, for the side-by-side `/status`.
        for i in 0..20u64 {
            let new = new_account(400_000_000_000 + i, GUILD_20, format!("Twenty {i}"), SupportTier::Business);
            app.handle(&operator, Command::AddAccount(new)).unwrap();
        }
        let public_key = config.discord.public_key.clone().unwrap();
        let running = server
            .spawn(orglink::server::start(config, Templates::embedded(), store, Arc::new(SystemClock), None))
            .await
            .unwrap()
            .unwrap();
        let floor_url = format!("http://{}/interactions", server.spawn(async move { floor(&public_key).await }).await.unwrap());
        let url = format!("http://{}/interactions", running.http_addr);
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();

        let total = RATE * seconds;
        let requests: Arc<Vec<Signed>> = Arc::new((0..3 * total + 60_000).map(|i| sign(&key, body(i))).collect());
        for request in requests.iter().take(200) {
            send(&client, &url, request).await; // warm-up
        }

        // Fixed rate: one request every 5 ms, each on its own task.
        let total = total as usize;
        let (sent, elapsed) = fixed_rate(&client, &url, &requests, 200..200 + total).await;
        let latencies = sorted(sent.into_iter());

        // The same rate while the audit job writes its 1,000 accounts once,
        // a second into the phase, on the same runtime (as serve's
        // scheduler runs it): the requests sent while it ran.
        let phase = Instant::now();
        let job = {
            let app = app.clone();
            server.spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let started = phase.elapsed();
                let written = app.run_job(Job::AuditSupportPlans).await.unwrap().changed;
                (started, phase.elapsed(), written)
            })
        };
        let (sent, _) = fixed_rate(&client, &url, &requests, 200 + total..200 + 2 * total).await;
        let (job_from, job_to, written) = job.await.unwrap();
        let during = sorted(sent.iter().copied().filter(|(at, _)| *at >= job_from && *at <= job_to));
        let with_job = sorted(sent.into_iter());

        // And while the job runs back to back, writing its accounts over
        // and over for the whole phase (far more than any schedule does).
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let job = {
            let (app, stop) = (app.clone(), stop.clone());
            server.spawn(async move {
                let mut written = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    written += app.run_job(Job::AuditSupportPlans).await.unwrap().changed;
                }
                written
            })
        };
        let (sent, busy_elapsed) = fixed_rate(&client, &url, &requests, 200 + 2 * total..200 + 3 * total).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written_back_to_back = job.await.unwrap();
        let busy = sorted(sent.into_iter());

        // As fast as 8 connections go, for 5 seconds.
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(200 + 3 * total));
        let deadline = Instant::now() + Duration::from_secs(5);
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let (client, url, requests, next) = (client.clone(), url.clone(), requests.clone(), next.clone());
                tokio::spawn(async move {
                    let mut done = Vec::new();
                    while Instant::now() < deadline {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= requests.len() {
                            break;
                        }
                        done.push(send(&client, &url, &requests[i]).await);
                    }
                    done
                })
            })
            .collect();
        let flat_started = Instant::now();
        let mut max_latencies = Vec::new();
        for worker in workers {
            max_latencies.extend(worker.await.unwrap());
        }
        let flat_elapsed = flat_started.elapsed();
        max_latencies.sort();

        // Side by side with the floor: orglink answering a /status that
        // lists 20 accounts, then the floor, twice, at the same rate.
        let side: Arc<Vec<Signed>> =
            Arc::new((0..4 * total as u64 + 400).map(|i| sign(&key, status_20(10_000_000 + i))).collect());
        let listed = client
            .post(&url)
            .header("X-Signature-Ed25519", &side[0].signature)
            .header("X-Signature-Timestamp", &side[0].timestamp)
            .header("Content-Type", "application/json")
            .body(side[0].body.clone())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(listed.contains("Twenty 0") && listed.contains("Twenty 19"), "/status lists the 20: {listed}");
        for request in &side[1..200] {
            send(&client, &url, request).await; // warm-up
        }
        for request in &side[200..400] {
            send(&client, &floor_url, request).await;
        }
        let (mut ours, mut floor_latencies) = (Vec::new(), Vec::new());
        let (mut ours_cpu, mut floor_cpu) = (Duration::ZERO, Duration::ZERO);
        let mut next = 400;
        for _round in 0..2 {
            for (target, latencies, cpu) in
                [(&url, &mut ours, &mut ours_cpu), (&floor_url, &mut floor_latencies, &mut floor_cpu)]
            {
                let before = server_cpu();
                let (sent, _) = fixed_rate(&client, target, &side, next..next + total).await;
                *cpu += server_cpu().saturating_sub(before);
                next += total;
                latencies.extend(sent.into_iter().map(|(_, latency)| latency));
            }
        }
        ours.sort();
        floor_latencies.sort();
        let ours_cpu_per_request = ours_cpu.as_secs_f64() / ours.len() as f64;
        let floor_cpu_per_request = floor_cpu.as_secs_f64() / floor_latencies.len() as f64;
        let ratio = |p| pct(&ours, p).as_secs_f64() / pct(&floor_latencies, p).as_secs_f64();

        println!("interactions benchmark: signed /status and /link-account, half each, loopback, 2 cores shared with the client");
        println!("| phase | requests | throughput | p50 | p90 | p99 | max |");
        println!("|---|---|---|---|---|---|---|");
        println!(
            "| fixed {RATE} req/s for {seconds} s | {} | {:.0} req/s | {} | {} | {} | {} |",
            latencies.len(),
            latencies.len() as f64 / elapsed.as_secs_f64(),
            ms(pct(&latencies, 50.0)),
            ms(pct(&latencies, 90.0)),
            ms(pct(&latencies, 99.0)),
            ms(*latencies.last().unwrap())
        );
        println!(
            "| fixed {RATE} req/s, the audit job writing {written} accounts once ({}), requests sent meanwhile | {} | | {} | {} | {} | {} |",
            ms(job_to - job_from),
            during.len(),
            ms(pct(&during, 50.0)),
            ms(pct(&during, 90.0)),
            ms(pct(&during, 99.0)),
            ms(*during.last().unwrap())
        );
        println!(
            "| the same phase, all its requests | {} | | {} | {} | {} | {} |",
            with_job.len(),
            ms(pct(&with_job, 50.0)),
            ms(pct(&with_job, 90.0)),
            ms(pct(&with_job, 99.0)),
            ms(*with_job.last().unwrap())
        );
        println!(
            "| fixed {RATE} req/s, the job back to back ({written_back_to_back} accounts written) | {} | {:.0} req/s | {} | {} | {} | {} |",
            busy.len(),
            busy.len() as f64 / busy_elapsed.as_secs_f64(),
            ms(pct(&busy, 50.0)),
            ms(pct(&busy, 90.0)),
            ms(pct(&busy, 99.0)),
            ms(*busy.last().unwrap())
        );
        println!(
            "| 8 connections, as fast as possible | {} | {:.0} req/s | {} | {} | {} | {} |",
            max_latencies.len(),
            max_latencies.len() as f64 / flat_elapsed.as_secs_f64(),
            ms(pct(&max_latencies, 50.0)),
            ms(pct(&max_latencies, 90.0)),
            ms(pct(&max_latencies, 99.0)),
            ms(*max_latencies.last().unwrap())
        );
        println!();
        println!(
            "side by side at {RATE} req/s, two alternating rounds of {seconds} s each: orglink's /status listing 20 accounts, and the floor (serenity's e19 on axum)"
        );
        println!("| | requests | p50 | p99 | server CPU per request |");
        println!("|---|---|---|---|---|");
        for (name, latencies, cpu) in
            [("orglink", &ours, ours_cpu_per_request), ("floor", &floor_latencies, floor_cpu_per_request)]
        {
            println!(
                "| {name} | {} | {} | {} | {:.3} ms |",
                latencies.len(),
                ms(pct(latencies, 50.0)),
                ms(pct(latencies, 99.0)),
                cpu * 1e3
            );
        }
        println!(
            "| ratio | | {:.2}× | {:.2}× | {:.2}× |",
            ratio(50.0),
            ratio(99.0),
            ours_cpu_per_request / floor_cpu_per_request
        );
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let peak = status.lines().find(|l| l.starts_with("VmHWM:")).map_or("unknown", |l| l["VmHWM:".len()..].trim());
        println!("peak RSS (server and load generator in one process): {peak}");
        // For scripts/bench.sh's table.
        println!(
            "summary | interactions at {RATE} req/s: throughput, p50 / p99 | {:.0} req/s, {} / {} |",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            ms(pct(&latencies, 50.0)),
            ms(pct(&latencies, 99.0))
        );
        println!(
            "summary | interactions flat out (8 connections): throughput, p99 | {:.0} req/s, {} |",
            max_latencies.len() as f64 / flat_elapsed.as_secs_f64(),
            ms(pct(&max_latencies, 99.0))
        );
        println!(
            "summary | interactions at {RATE} req/s while a job writes 1,000 accounts: p99 (alone) | {} ({}) |",
            ms(pct(&during, 99.0)),
            ms(pct(&latencies, 99.0))
        );
        println!("summary | peak RSS under load (server and client) | {peak} |");
        println!(
            "summary | /status of 20 accounts against the floor at {RATE} req/s: p99 ratio, CPU per request ratio | {:.2}×, {:.2}× |",
            ratio(99.0),
            ours_cpu_per_request / floor_cpu_per_request
        );
        let mut figures = figures::Figures::new("interactions");
        figures.set("rate_per_second", RATE as f64);
        figures.set("fixed_requests", latencies.len() as f64);
        figures.seconds("fixed_p50_seconds", pct(&latencies, 50.0));
        figures.seconds("fixed_p99_seconds", pct(&latencies, 99.0));
        figures.seconds("fixed_max_seconds", *latencies.last().unwrap());
        figures.set("with_job_accounts_written", written as f64);
        figures.seconds("with_job_run_seconds", job_to - job_from);
        figures.set("with_job_requests_during_run", during.len() as f64);
        figures.seconds("with_job_during_run_p50_seconds", pct(&during, 50.0));
        figures.seconds("with_job_during_run_p99_seconds", pct(&during, 99.0));
        figures.seconds("with_job_during_run_max_seconds", *during.last().unwrap());
        figures.seconds("with_job_phase_p99_seconds", pct(&with_job, 99.0));
        figures.set("back_to_back_accounts_written", written_back_to_back as f64);
        figures.seconds("back_to_back_p50_seconds", pct(&busy, 50.0));
        figures.seconds("back_to_back_p99_seconds", pct(&busy, 99.0));
        figures.set("flat_out_requests_per_second", max_latencies.len() as f64 / flat_elapsed.as_secs_f64());
        figures.seconds("flat_out_p99_seconds", pct(&max_latencies, 99.0));
        figures.set("peak_rss_bytes", figures::peak_rss_bytes().unwrap_or_default() as f64);
        figures.seconds("status_20_p50_seconds", pct(&ours, 50.0));
        figures.seconds("status_20_p99_seconds", pct(&ours, 99.0));
        figures.seconds("floor_p50_seconds", pct(&floor_latencies, 50.0));
        figures.seconds("floor_p99_seconds", pct(&floor_latencies, 99.0));
        figures.set("p50_ratio_to_floor", ratio(50.0));
        figures.set("p99_ratio_to_floor", ratio(99.0));
        figures.set("cpu_per_request_seconds", ours_cpu_per_request);
        figures.set("floor_cpu_per_request_seconds", floor_cpu_per_request);
        figures.set("cpu_ratio_to_floor", ours_cpu_per_request / floor_cpu_per_request);
        figures.write();
        server.spawn(running.stop()).await.unwrap();
    });
}

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
//! server used per request (its runtime's threads and sled's, read from
//! `/proc/self/task`, the load generator's apart); then the same with
//! `/link-account`, each request registering a new account; and that again
//! against the floor writing each request to a sled store on disk before it
//! answers (the least a registration that is durable when answered costs).
//!
//! `cargo bench --bench interactions` (set `ORGLINK_BENCH_SECONDS` for
//! another length of each fixed-rate phase, default 15 s;
//! `ORGLINK_BENCH_ONLY=side` for the side-by-side rounds alone). The load
//! generator runs in the same process, on the same 2 cores. Prints a table
//! and writes `target/bench/interactions.json`.

#[path = "support/figures.rs"]
mod figures;

// The allocator `orglink serve` runs with (src/main.rs): the server is
// measured as it ships. The floor, in the same process, has it too.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
/// A reseller that registers accounts in the side-by-side `/link-account`.
const GUILD_LINK: &str = "900000000000000004";
/// The server's runtime threads' name, for its CPU time.
const SERVER_THREADS: &str = "orglink-srv";
/// sled's own threads, which write and sync the log for whichever server
/// writes: its I/O pool (one per process, its seven threads live as long as
/// the process) and each store's flusher. Counted as the servers' too: only
/// the servers write while the rounds run.
const STORE_THREADS: [&str; 2] = ["sled-io", "log flusher"];
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

/// Request `i` of the side-by-side `/link-account` rounds: [`GUILD_LINK`]
/// registers a new account.
fn link_account(i: u64) -> Vec<u8> {
    let account = format!("{:012}", 500_000_000_000 + i);
    let mut value = interaction(
        "link-account",
        json!([
            { "name": "account_id", "type": 3, "value": account },
            { "name": "customer", "type": 3, "value": "Bench Customer" },
            { "name": "support_tier", "type": 3, "value": "developer" }
        ]),
        i,
    );
    value["guild_id"] = json!(GUILD_LINK);
    value["channel"]["guild_id"] = json!(GUILD_LINK);
    serde_json::to_vec(&value).unwrap()
}

/// One command side by side with the floor: latencies and server CPU of
/// each over two alternating rounds at [`RATE`].
struct Side {
    ours: Vec<Duration>,
    floor: Vec<Duration>,
    ours_cpu: f64,
    floor_cpu: f64,
}

impl Side {
    async fn measure(
        client: &reqwest::Client,
        url: &str,
        floor_url: &str,
        side: &Arc<Vec<Signed>>,
        total: usize,
    ) -> Self {
        // The first is the caller's (a check of what it answers).
        for request in &side[1..200] {
            send(client, url, request).await; // warm-up
        }
        for request in &side[200..400] {
            send(client, floor_url, request).await;
        }
        let (mut ours, mut floor) = (Vec::new(), Vec::new());
        let (mut ours_cpu, mut floor_cpu) = (Duration::ZERO, Duration::ZERO);
        let mut next = 400;
        for _round in 0..2 {
            for (target, latencies, cpu) in [(url, &mut ours, &mut ours_cpu), (floor_url, &mut floor, &mut floor_cpu)] {
                let before = server_cpu();
                let (sent, _) = fixed_rate(client, target, side, next..next + total).await;
                *cpu += server_cpu().saturating_sub(before);
                next += total;
                latencies.extend(sent.into_iter().map(|(_, latency)| latency));
            }
        }
        ours.sort();
        floor.sort();
        let ours_cpu = ours_cpu.as_secs_f64() / ours.len() as f64;
        let floor_cpu = floor_cpu.as_secs_f64() / floor.len() as f64;
        Side { ours, floor, ours_cpu, floor_cpu }
    }

    fn ratio(&self, p: f64) -> f64 {
        pct(&self.ours, p).as_secs_f64() / pct(&self.floor, p).as_secs_f64()
    }

    fn cpu_ratio(&self) -> f64 {
        self.ours_cpu / self.floor_cpu
    }

    fn print(&self, command: &str, floor: &str) {
        println!("| | requests | p50 | p99 | server CPU per request |");
        println!("|---|---|---|---|---|");
        for (name, latencies, cpu) in [(command, &self.ours, self.ours_cpu), (floor, &self.floor, self.floor_cpu)] {
            println!(
                "| {name} | {} | {} | {} | {:.3} ms |",
                latencies.len(),
                ms(pct(latencies, 50.0)),
                ms(pct(latencies, 99.0)),
                cpu * 1e3
            );
        }
        println!("| ratio | | {:.2}× | {:.2}× | {:.2}× |", self.ratio(50.0), self.ratio(99.0), self.cpu_ratio());
    }

    fn write(&self, figures: &mut figures::Figures, prefix: &str) {
        figures.seconds(&format!("{prefix}p50_seconds"), pct(&self.ours, 50.0));
        figures.seconds(&format!("{prefix}p99_seconds"), pct(&self.ours, 99.0));
        figures.seconds(&format!("{prefix}floor_p50_seconds"), pct(&self.floor, 50.0));
        figures.seconds(&format!("{prefix}floor_p99_seconds"), pct(&self.floor, 99.0));
        figures.set(&format!("{prefix}p50_ratio_to_floor"), self.ratio(50.0));
        figures.set(&format!("{prefix}p99_ratio_to_floor"), self.ratio(99.0));
        figures.set(&format!("{prefix}cpu_per_request_seconds"), self.ours_cpu);
        figures.set(&format!("{prefix}floor_cpu_per_request_seconds"), self.floor_cpu);
        figures.set(&format!("{prefix}cpu_ratio_to_floor"), self.cpu_ratio());
    }
}

/// The floor: what serenity's e19 example does for an interaction, on
/// orglink's HTTP stack, at `/interactions`. At `/interactions-durable`,
/// the same, having first written the request's bytes to a sled store on
/// disk (one transaction over two trees, flushed, on a blocking thread, as
/// orglink writes): the least a registration that is on disk before it is
/// answered can cost. Serves until the runtime it runs on stops.
async fn floor(public_key: &str, store: &std::path::Path) -> std::net::SocketAddr {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use serenity::all::{CreateInteractionResponse, CreateInteractionResponseMessage, Interaction};
    use serenity::interactions_endpoint::Verifier;
    use sled::Transactional;

    struct Floor {
        verifier: Verifier,
        db: sled::Db,
        trees: (sled::Tree, sled::Tree),
    }

    async fn answer(floor: &Arc<Floor>, headers: &HeaderMap, body: &[u8], durable: bool) -> axum::response::Response {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(signature), Some(timestamp)) = (header("X-Signature-Ed25519"), header("X-Signature-Timestamp"))
        else {
            return StatusCode::UNAUTHORIZED.into_response();
        };
        if floor.verifier.verify(signature, timestamp, body).is_err() {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let interaction = match serde_json::from_slice::<Interaction>(body) {
            Ok(Interaction::Ping(_)) => return axum::Json(CreateInteractionResponse::Pong).into_response(),
            Ok(interaction) => interaction,
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        };
        if durable {
            let (floor, key, body) = (floor.clone(), interaction.id().get().to_be_bytes(), body.to_vec());
            tokio::task::spawn_blocking(move || {
                (&floor.trees.0, &floor.trees.1)
                    .transaction(|(records, index)| {
                        records.insert(&key, body.as_slice())?;
                        index.insert(&key, &[])?;
                        Ok::<_, sled::transaction::ConflictableTransactionError>(())
                    })
                    .unwrap();
                floor.db.flush().unwrap();
            })
            .await
            .unwrap();
        }
        axum::Json(CreateInteractionResponse::Message(
            CreateInteractionResponseMessage::new().content("Hello from interactions webhook HTTP server!"),
        ))
        .into_response()
    }
    async fn bare(
        State(floor): State<Arc<Floor>>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::response::Response {
        answer(&floor, &headers, &body, false).await
    }
    async fn durable(
        State(floor): State<Arc<Floor>>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::response::Response {
        answer(&floor, &headers, &body, true).await
    }
    let db = sled::open(store).unwrap();
    let trees = (db.open_tree("records").unwrap(), db.open_tree("index").unwrap());
    let floor = Arc::new(Floor { verifier: Verifier::new(public_key), db, trees });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/interactions", axum::routing::post(bare))
        .route("/interactions-durable", axum::routing::post(durable))
        .with_state(floor);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// CPU time (user and system) the servers' runtime threads and sled's
/// threads have used.
fn server_cpu() -> Duration {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = &stat[open + 1..close];
        if !name.starts_with(SERVER_THREADS) && !STORE_THREADS.iter().any(|t| name.starts_with(t)) {
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

/// The load phases' latencies.
struct Load {
    seconds: u64,
    latencies: Vec<Duration>,
    elapsed: Duration,
    written: usize,
    job_run: Duration,
    during: Vec<Duration>,
    with_job: Vec<Duration>,
    written_back_to_back: usize,
    busy: Vec<Duration>,
    busy_elapsed: Duration,
    flat: Vec<Duration>,
    flat_elapsed: Duration,
}

impl Load {
    /// Fixed rate; the same while a job writes 1,000 accounts once, then
    /// back to back; then flat out.
    async fn measure(
        app: &App,
        server: &tokio::runtime::Handle,
        client: &reqwest::Client,
        url: &str,
        key: &SigningKey,
        seconds: u64,
    ) -> Self {
        let total = RATE * seconds;
        let requests: Arc<Vec<Signed>> = Arc::new((0..3 * total + 60_000).map(|i| sign(key, body(i))).collect());
        for request in requests.iter().take(200) {
            send(client, url, request).await; // warm-up
        }

        // Fixed rate: one request every 5 ms, each on its own task.
        let total = total as usize;
        let (sent, elapsed) = fixed_rate(client, url, &requests, 200..200 + total).await;
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
        let (sent, _) = fixed_rate(client, url, &requests, 200 + total..200 + 2 * total).await;
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
        let (sent, busy_elapsed) = fixed_rate(client, url, &requests, 200 + 2 * total..200 + 3 * total).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written_back_to_back = job.await.unwrap();
        let busy = sorted(sent.into_iter());

        // As fast as 8 connections go, for 5 seconds.
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(200 + 3 * total));
        let deadline = Instant::now() + Duration::from_secs(5);
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let (client, url, requests, next) = (client.clone(), url.to_owned(), requests.clone(), next.clone());
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
        let mut flat = Vec::new();
        for worker in workers {
            flat.extend(worker.await.unwrap());
        }
        let flat_elapsed = flat_started.elapsed();
        flat.sort();
        Load {
            seconds,
            latencies,
            elapsed,
            written,
            job_run: job_to - job_from,
            during,
            with_job,
            written_back_to_back,
            busy,
            busy_elapsed,
            flat,
            flat_elapsed,
        }
    }

    fn print(&self) {
        let Load {
            seconds,
            latencies,
            elapsed,
            written,
            job_run,
            during,
            with_job,
            written_back_to_back,
            busy,
            busy_elapsed,
            flat,
            flat_elapsed,
        } = self;
        println!(
            "interactions benchmark: signed /status and /link-account, half each, loopback, 2 cores shared with the client"
        );
        println!("| phase | requests | throughput | p50 | p90 | p99 | max |");
        println!("|---|---|---|---|---|---|---|");
        println!(
            "| fixed {RATE} req/s for {seconds} s | {} | {:.0} req/s | {} | {} | {} | {} |",
            latencies.len(),
            latencies.len() as f64 / elapsed.as_secs_f64(),
            ms(pct(latencies, 50.0)),
            ms(pct(latencies, 90.0)),
            ms(pct(latencies, 99.0)),
            ms(*latencies.last().unwrap())
        );
        println!(
            "| fixed {RATE} req/s, the audit job writing {written} accounts once ({}), requests sent meanwhile | {} | | {} | {} | {} | {} |",
            ms(*job_run),
            during.len(),
            ms(pct(during, 50.0)),
            ms(pct(during, 90.0)),
            ms(pct(during, 99.0)),
            ms(*during.last().unwrap())
        );
        println!(
            "| the same phase, all its requests | {} | | {} | {} | {} | {} |",
            with_job.len(),
            ms(pct(with_job, 50.0)),
            ms(pct(with_job, 90.0)),
            ms(pct(with_job, 99.0)),
            ms(*with_job.last().unwrap())
        );
        println!(
            "| fixed {RATE} req/s, the job back to back ({written_back_to_back} accounts written) | {} | {:.0} req/s | {} | {} | {} | {} |",
            busy.len(),
            busy.len() as f64 / busy_elapsed.as_secs_f64(),
            ms(pct(busy, 50.0)),
            ms(pct(busy, 90.0)),
            ms(pct(busy, 99.0)),
            ms(*busy.last().unwrap())
        );
        println!(
            "| 8 connections, as fast as possible | {} | {:.0} req/s | {} | {} | {} | {} |",
            flat.len(),
            flat.len() as f64 / flat_elapsed.as_secs_f64(),
            ms(pct(flat, 50.0)),
            ms(pct(flat, 90.0)),
            ms(pct(flat, 99.0)),
            ms(*flat.last().unwrap())
        );
        println!();
        // For scripts/bench.sh's table.
        println!(
            "summary | interactions at {RATE} req/s: throughput, p50 / p99 | {:.0} req/s, {} / {} |",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            ms(pct(latencies, 50.0)),
            ms(pct(latencies, 99.0))
        );
        println!(
            "summary | interactions flat out (8 connections): throughput, p99 | {:.0} req/s, {} |",
            flat.len() as f64 / flat_elapsed.as_secs_f64(),
            ms(pct(flat, 99.0))
        );
        println!(
            "summary | interactions at {RATE} req/s while a job writes 1,000 accounts: p99 (alone) | {} ({}) |",
            ms(pct(during, 99.0)),
            ms(pct(latencies, 99.0))
        );
    }

    fn write(&self, figures: &mut figures::Figures) {
        figures.set("fixed_requests", self.latencies.len() as f64);
        figures.seconds("fixed_p50_seconds", pct(&self.latencies, 50.0));
        figures.seconds("fixed_p99_seconds", pct(&self.latencies, 99.0));
        figures.seconds("fixed_max_seconds", *self.latencies.last().unwrap());
        figures.set("with_job_accounts_written", self.written as f64);
        figures.seconds("with_job_run_seconds", self.job_run);
        figures.set("with_job_requests_during_run", self.during.len() as f64);
        figures.seconds("with_job_during_run_p50_seconds", pct(&self.during, 50.0));
        figures.seconds("with_job_during_run_p99_seconds", pct(&self.during, 99.0));
        figures.seconds("with_job_during_run_max_seconds", *self.during.last().unwrap());
        figures.seconds("with_job_phase_p99_seconds", pct(&self.with_job, 99.0));
        figures.set("back_to_back_accounts_written", self.written_back_to_back as f64);
        figures.seconds("back_to_back_p50_seconds", pct(&self.busy, 50.0));
        figures.seconds("back_to_back_p99_seconds", pct(&self.busy, 99.0));
        figures.set("flat_out_requests_per_second", self.flat.len() as f64 / self.flat_elapsed.as_secs_f64());
        figures.seconds("flat_out_p99_seconds", pct(&self.flat, 99.0));
    }
}

fn main() {
    let seconds: u64 = std::env::var("ORGLINK_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(15);
    // `ORGLINK_BENCH_ONLY=side`: only the side-by-side rounds.
    let only_side = std::env::var("ORGLINK_BENCH_ONLY").is_ok_and(|v| v == "side");
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
        let mut config = Config {
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
        config.settings.quotas.open_claims = u32::MAX;
        // 1,000 registered accounts for /status to read, of a reseller the
        // distributor approved (as the others, below).
        let app = App::new(store.clone(), config.settings.clone(), Arc::new(SystemClock));
        let operator = Actor::operator("bench");
        for guild in [GUILD, GUILD_20, GUILD_LINK] {
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
        let floor_dir = tempfile::tempdir().unwrap();
        let floor_path = floor_dir.path().to_owned();
        let floor_addr = server.spawn(async move { floor(&public_key, &floor_path).await }).await.unwrap();
        let floor_url = format!("http://{floor_addr}/interactions");
        let durable_floor_url = format!("http://{floor_addr}/interactions-durable");
        let url = format!("http://{}/interactions", running.http_addr);
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();

        let load = if only_side { None } else { Some(Load::measure(&app, &server, &client, &url, &key, seconds).await) };

        // Side by side with the floor: orglink answering a /status that
        // lists 20 accounts, then the floor, twice, at the same rate; then
        // the same with /link-account registering an account each time.
        let total = (RATE * seconds) as usize;
        let requests = |make: fn(u64) -> Vec<u8>, base: u64| -> Arc<Vec<Signed>> {
            Arc::new((0..4 * total as u64 + 400).map(|i| sign(&key, make(base + i))).collect())
        };
        let statuses = requests(status_20, 10_000_000);
        let listed = client
            .post(&url)
            .header("X-Signature-Ed25519", &statuses[0].signature)
            .header("X-Signature-Timestamp", &statuses[0].timestamp)
            .header("Content-Type", "application/json")
            .body(statuses[0].body.clone())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(listed.contains("Twenty 0") && listed.contains("Twenty 19"), "/status lists the 20: {listed}");
        let status = Side::measure(&client, &url, &floor_url, &statuses, total).await;
        let registrations = requests(link_account, 20_000_000);
        send(&client, &url, &registrations[0]).await;
        let link = Side::measure(&client, &url, &floor_url, &registrations, total).await;
        // Again, against the floor that writes each request to disk first.
        let more = requests(link_account, 30_000_000);
        send(&client, &url, &more[0]).await;
        let link_durable = Side::measure(&client, &url, &durable_floor_url, &more, total).await;
        let registered = app.store().tenant_accounts(&GUILD_LINK.parse().unwrap()).unwrap().len();
        assert_eq!(registered, 4 * total + 400, "every /link-account sent to orglink registered its account");

        if let Some(load) = &load {
            load.print();
        }
        println!(
            "side by side at {RATE} req/s, two alternating rounds of {seconds} s each, against the floor (serenity's e19 on axum)"
        );
        println!("/status listing 20 accounts:");
        status.print("orglink /status", "floor");
        println!("/link-account, each registering an account:");
        link.print("orglink /link-account", "floor");
        println!("/link-account against the floor that first writes each request to disk (sled transaction, flush):");
        link_durable.print("orglink /link-account", "floor writing to disk");
        let peak = figures::peak_rss_bytes().unwrap_or_default();
        println!("peak RSS (server and load generator in one process): {} MiB", peak / (1024 * 1024));
        println!("summary | peak RSS under load (server and client) | {} MiB |", peak / (1024 * 1024));
        for (name, side) in [
            ("/status of 20 accounts", &status),
            ("/link-account", &link),
            ("/link-account (floor writing to disk)", &link_durable),
        ] {
            println!(
                "summary | {name} against the floor at {RATE} req/s: p99 ratio, CPU per request ratio | {:.2}×, {:.2}× |",
                side.ratio(99.0),
                side.cpu_ratio()
            );
        }
        let mut figures = figures::Figures::new("interactions");
        figures.set("rate_per_second", RATE as f64);
        if let Some(load) = &load {
            load.write(&mut figures);
        }
        figures.set("peak_rss_bytes", peak as f64);
        // The /status side by side keeps the plain names the issue asks for.
        status.write(&mut figures, "");
        link.write(&mut figures, "link_account_");
        link_durable.write(&mut figures, "link_account_vs_durable_");
        figures.write();
        server.spawn(running.stop()).await.unwrap();
    });
}

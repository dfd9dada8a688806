//! Zero-paste verification over a simulated day, against the local AWS
//! emulator: 1,000 accounts registered over the first 12 hours (or at
//! once), most of
//! whose owners create the suggested role some time later; the probe job
//! runs every simulated minute under the default plan and ceiling.
//!
//! Prints the AssumeRole calls per minute (counted on the wire: max, mean,
//! p99) and the time from role creation to verification (median, p90,
//! max).
//!
//! `cargo bench --bench probe` (`ORGLINK_BENCH_ACCOUNTS=N` for another
//! count, `ORGLINK_BENCH_REGISTER_HOURS=0` to register them all at once;
//! needs fakecloud, as the tests do).

#[path = "../tests/it/harness/aws.rs"]
#[allow(dead_code)] // each bench uses part of it
mod aws_harness;
#[path = "support/figures.rs"]
mod figures;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_harness::*;
use orglink::app::{Actor, App, Command, Settings};
use orglink::aws::RetryPolicy;
use orglink::clock::ManualClock;
use orglink::domain::{AccountId, AccountKind, LinkState, NewAccount, SupportTier};
use orglink::scheduler::Job;
use orglink::store::Store;
use time::macros::datetime;
use time::{Duration as Span, OffsetDateTime};

const START: OffsetDateTime = datetime!(2026-11-26 00:00 UTC);

/// A small deterministic generator: the same day every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[0, n)`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Plan {
    account: AccountId,
    registered: OffsetDateTime,
    /// When the owner creates the role (never for some).
    role_created: Option<OffsetDateTime>,
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let count: u64 = std::env::var("ORGLINK_BENCH_ACCOUNTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let hours: u64 = std::env::var("ORGLINK_BENCH_REGISTER_HOURS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let plans: Vec<Plan> = (0..count)
        .map(|i| {
            let registered = START + Span::seconds(rng.below((hours * 3600).max(1)) as i64);
            // 60 % within 3 hours, 25 % within the day, 15 % not that day.
            let delay = match rng.below(100) {
                0..60 => Some(Span::minutes(5 + rng.below(175) as i64)),
                60..85 => Some(Span::minutes(180 + rng.below(1080) as i64)),
                _ => None,
            };
            Plan {
                account: format!("{:012}", 700_000_000_000 + i * 7_919).parse().unwrap(),
                registered,
                role_created: delay.map(|d| registered + d).filter(|t| *t < START + Span::days(1)),
            }
        })
        .collect();
    let mut registrations: BTreeMap<OffsetDateTime, Vec<&Plan>> = BTreeMap::new();
    let mut creations: BTreeMap<OffsetDateTime, Vec<&Plan>> = BTreeMap::new();
    for plan in &plans {
        registrations.entry(plan.registered).or_default().push(plan);
        if let Some(at) = plan.role_created {
            creations.entry(at).or_default().push(plan);
        }
    }

    let e = emulator();
    let keys = e.admin(PLATFORM, "orglink-probe").await;
    let (aws, counter) = counted_aws(&keys, RetryPolicy { retries: 3, first_delay: Duration::from_millis(20) });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let settings = Settings { cross_account_id: PLATFORM.parse().unwrap(), ..Settings::default() };
    let ceiling = settings.probe.assume_role_per_minute;
    let app = App::new(store.clone(), settings, clock.clone()).with_aws(aws);
    let ops = Actor::operator("bench");

    let started = Instant::now();
    let mut per_minute = Vec::with_capacity(1440);
    let mut deferred_minutes = 0;
    for minute in 0..1440 {
        let now = START + Span::minutes(minute);
        let window = now - Span::minutes(1)..now;
        for (at, due) in registrations.range(window.clone()) {
            clock.set(*at);
            for plan in due {
                let new = NewAccount {
                    id: plan.account,
                    tenant: "bench".parse().unwrap(),
                    customer: "Bench".parse().unwrap(),
                    root_email: None,
                    support_tier: SupportTier::Developer,
                    kind: AccountKind::Standalone,
                    price_book: None,
                };
                app.handle(&ops, Command::AddAccount(new)).unwrap();
            }
        }
        for (_, due) in creations.range(window) {
            for plan in due {
                let external_id = store.account(plan.account).unwrap().unwrap().external_id;
                Customer::new(plan.account.as_str()).await.create_instructed_role(external_id.as_str()).await;
            }
        }
        clock.set(now);
        let report = app.run_job(Job::ProbeRoles).await.unwrap();
        deferred_minutes += usize::from(report.deferred > 0);
        per_minute.push(counter.take());
    }
    let wall = started.elapsed();

    let accounts = store.all_accounts().unwrap();
    let mut latencies: Vec<i64> = plans
        .iter()
        .filter_map(|plan| {
            let created = plan.role_created?;
            let account = accounts.iter().find(|a| a.id == plan.account)?;
            let verified = account.role.as_ref()?.verified_at?;
            Some((verified - created).whole_seconds())
        })
        .collect();
    latencies.sort_unstable();
    let created = plans.iter().filter(|p| p.role_created.is_some()).count();
    let verified = accounts.iter().filter(|a| a.state == LinkState::RoleVerified).count();
    let mut sorted_calls: Vec<i64> = per_minute.iter().map(|n| i64::from(*n)).collect();
    sorted_calls.sort_unstable();
    let total: i64 = sorted_calls.iter().sum();

    println!(
        "probe: {count} accounts registered over {hours} h of a simulated day, default plan, ceiling {ceiling} AssumeRole/min"
    );
    println!(
        "  AssumeRole per minute: max {}, mean {:.1}, p99 {}, total {total}; minutes with accounts left for the next run: {deferred_minutes}",
        sorted_calls.last().unwrap(),
        total as f64 / sorted_calls.len() as f64,
        percentile(&sorted_calls, 0.99),
    );
    println!("  roles created that day: {created}; verified by the probe: {verified}");
    if !latencies.is_empty() {
        println!(
            "  role creation → verified: median {:.1} min, p90 {:.1} min, max {:.1} min",
            percentile(&latencies, 0.5) as f64 / 60.0,
            percentile(&latencies, 0.9) as f64 / 60.0,
            *latencies.last().unwrap() as f64 / 60.0,
        );
    }
    println!("  wall time {:.1} s (emulator-bound)", wall.as_secs_f64());
    // For scripts/bench.sh's table.
    println!(
        "summary | probing {count} accounts for a day: AssumeRole per minute max / mean | {} / {:.1} |",
        sorted_calls.last().unwrap(),
        total as f64 / sorted_calls.len() as f64
    );
    let mut figures = figures::Figures::new("probe");
    figures.set("accounts", count as f64);
    figures.set("assume_role_per_minute_max", *sorted_calls.last().unwrap() as f64);
    figures.set("assume_role_per_minute_mean", total as f64 / sorted_calls.len() as f64);
    if !latencies.is_empty() {
        println!(
            "summary | probing: role created → verified, median | {:.1} min |",
            percentile(&latencies, 0.5) as f64 / 60.0
        );
        figures.set("role_created_to_verified_median_seconds", percentile(&latencies, 0.5) as f64);
    }
    figures.write();
}

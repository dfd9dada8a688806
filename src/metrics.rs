//! What orglink counts, for `GET /metrics` (Prometheus/OpenMetrics text).
//!
//! Counters and histograms are recorded where things happen (the bot, the
//! AWS and Freshdesk clients, the scheduler); the gauges that describe the
//! store (outbox, handshakes, accounts) are read from it at scrape time.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use time::OffsetDateTime;

use crate::scheduler::{Job, Schedule};
use crate::store::Store;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsLabels {
    service: String,
    operation: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobOutcomeLabels {
    job: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// How a command ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcome {
    Ok,
    /// Refused with a message for the user (bad input, not allowed...).
    UserError,
    /// Failed on our side (answered with an apology).
    InternalError,
}

impl CommandOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::UserError => "user_error",
            Self::InternalError => "internal_error",
        }
    }
}

/// The outcome of a call to a remote service, from its HTTP status.
pub fn http_outcome(status: Option<u16>) -> &'static str {
    match status {
        None => "unreachable",
        Some(200..=299) => "ok",
        Some(429) => "rate_limited",
        Some(400..=499) => "client_error",
        Some(_) => "server_error",
    }
}

pub struct Metrics {
    registry: Registry,
    commands: Family<CommandLabels, Counter>,
    interactions: Family<KindLabels, Histogram>,
    interactions_replayed: Counter,
    aws_calls: Family<AwsLabels, Counter>,
    freshdesk_calls: Family<OutcomeLabels, Counter>,
    job_runs: Family<JobOutcomeLabels, Counter>,
    job_last_success: Family<JobLabels, Gauge>,
    job_records_read: Family<JobLabels, Counter>,
    outbox_pending: Gauge,
    outbox_oldest_age: Gauge,
    dead_letters: Gauge,
    tickets_waiting: Gauge,
    handshakes: Family<StateLabels, Gauge>,
    accounts: Family<StateLabels, Gauge>,
    gateway_connected: Gauge,
    gateway_reconnects: Counter,
    /// When this process started, and each job's last success: for health.
    started: OffsetDateTime,
    last_success: Mutex<BTreeMap<Job, OffsetDateTime>>,
    /// When the account gauges were last counted: every record is read for
    /// them, so at most once per [`ACCOUNT_GAUGES_EVERY`].
    accounts_counted: Mutex<Option<OffsetDateTime>>,
}

/// How often a scrape may count the accounts and handshakes anew.
pub const ACCOUNT_GAUGES_EVERY: time::Duration = time::Duration::seconds(60);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("started", &self.started).finish_non_exhaustive()
    }
}

/// A job that has not succeeded for longer than it should have.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobHealth {
    pub job: &'static str,
    #[serde(with = "crate::domain::instant::option")]
    pub last_success: Option<OffsetDateTime>,
    pub stale: bool,
}

impl Metrics {
    pub fn new(started: OffsetDateTime) -> Self {
        let mut registry = Registry::with_prefix("orglink");
        let commands = Family::default();
        registry.register("commands", "Commands run from Discord, by command and outcome", commands.clone());
        let interactions = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            // 0.5 ms to about 8 s.
            Histogram::new(exponential_buckets(0.0005, 2.0, 15))
        });
        registry.register(
            "interaction_duration_seconds",
            "Time to answer a Discord interaction (the first response), by kind",
            interactions.clone(),
        );
        let interactions_replayed = Counter::default();
        registry.register(
            "interactions_replayed",
            "Signed interactions refused because they had been received already (replays)",
            interactions_replayed.clone(),
        );
        let aws_calls = Family::default();
        registry.register("aws_calls", "AWS API calls, by service, operation and outcome", aws_calls.clone());
        let freshdesk_calls = Family::default();
        registry.register("freshdesk_calls", "Freshdesk API calls, by outcome", freshdesk_calls.clone());
        let job_runs = Family::default();
        registry.register("job_runs", "Scheduled job runs, by job and outcome", job_runs.clone());
        let job_last_success = Family::default();
        registry.register(
            "job_last_success_timestamp_seconds",
            "When each scheduled job last succeeded (Unix time)",
            job_last_success.clone(),
        );
        let job_records_read = Family::default();
        registry.register(
            "job_records_read",
            "Records scheduled jobs read from the store: only those due, by job",
            job_records_read.clone(),
        );
        let outbox_pending = Gauge::default();
        registry.register("outbox_pending", "Notifications waiting to be delivered", outbox_pending.clone());
        let outbox_oldest_age = Gauge::default();
        registry.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest notification waiting to be delivered",
            outbox_oldest_age.clone(),
        );
        let dead_letters = Gauge::default();
        registry.register("dead_letters", "Notifications that could not be delivered", dead_letters.clone());
        let tickets_waiting = Gauge::default();
        registry.register("tickets_waiting", "Freshdesk tickets waiting to be opened", tickets_waiting.clone());
        let handshakes = Family::default();
        registry.register("handshakes", "Accounts' latest invitations, by handshake state", handshakes.clone());
        let accounts = Family::default();
        registry.register("accounts", "Registered accounts, by link state", accounts.clone());
        let gateway_connected = Gauge::default();
        registry.register(
            "gateway_connected",
            "Whether the Discord gateway has a session (1) or not (0; also when the gateway is not run)",
            gateway_connected.clone(),
        );
        let gateway_reconnects = Counter::default();
        registry.register(
            "gateway_reconnects",
            "Gateway reconnects: the client started again by orglink, or a session serenity resumed or identified again",
            gateway_reconnects.clone(),
        );
        Self {
            registry,
            commands,
            interactions,
            interactions_replayed,
            aws_calls,
            freshdesk_calls,
            job_runs,
            job_last_success,
            job_records_read,
            outbox_pending,
            outbox_oldest_age,
            dead_letters,
            tickets_waiting,
            handshakes,
            accounts,
            gateway_connected,
            gateway_reconnects,
            started,
            last_success: Mutex::new(BTreeMap::new()),
            accounts_counted: Mutex::new(None),
        }
    }

    pub fn command(&self, command: &'static str, outcome: CommandOutcome) {
        self.commands.get_or_create(&CommandLabels { command, outcome: outcome.label() }).inc();
    }

    pub fn interaction(&self, kind: &'static str, seconds: f64) {
        self.interactions.get_or_create(&KindLabels { kind }).observe(seconds);
    }

    /// The gateway connected or lost its session, or reconnected.
    pub fn gateway_moved(&self, moved: crate::health::Moved) {
        if let Some(connected) = moved.connected {
            self.gateway_connected.set(i64::from(connected));
        }
        if moved.reconnect {
            self.gateway_reconnects.inc();
        }
    }

    pub fn interaction_replayed(&self) {
        self.interactions_replayed.inc();
    }

    pub fn aws_call(&self, service: &str, operation: &str, outcome: &'static str) {
        let labels = AwsLabels { service: service.to_owned(), operation: operation.to_owned(), outcome };
        self.aws_calls.get_or_create(&labels).inc();
    }

    pub fn freshdesk_call(&self, outcome: &'static str) {
        self.freshdesk_calls.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// A job read `records` due records from the store.
    pub fn job_records_read(&self, job: &'static str, records: usize) {
        self.job_records_read.get_or_create(&JobLabels { job }).inc_by(records as u64);
    }

    /// Records read so far by `job` (for benchmarks and tests).
    pub fn job_records_read_total(&self, job: &'static str) -> u64 {
        self.job_records_read.get_or_create(&JobLabels { job }).get()
    }

    pub fn job_run(&self, job: Job, ok: bool, at: OffsetDateTime) {
        let outcome = if ok { "ok" } else { "failed" };
        self.job_runs.get_or_create(&JobOutcomeLabels { job: job.name(), outcome }).inc();
        if ok {
            self.job_last_success.get_or_create(&JobLabels { job: job.name() }).set(at.unix_timestamp());
            self.last_success.lock().unwrap_or_else(|e| e.into_inner()).insert(job, at);
        }
    }

    /// Each job, stale when it has not succeeded (since this process
    /// started) for longer than `intervals` of its schedule.
    pub fn job_health(&self, schedule: &Schedule, now: OffsetDateTime, intervals: u32) -> Vec<JobHealth> {
        let last = self.last_success.lock().unwrap_or_else(|e| e.into_inner()).clone();
        schedule
            .jobs()
            .map(|job| {
                let last_success = last.get(&job).copied();
                let since = last_success.unwrap_or(self.started);
                // The job's interval where it stands: between its next two runs.
                let stale = match schedule.next(job, since).and_then(|n| Some((n, schedule.next(job, n)?))) {
                    Some((next, after)) => now > next + (after - next) * intervals,
                    None => false,
                };
                JobHealth { job: job.name(), last_success, stale }
            })
            .collect()
    }

    /// The metrics as Prometheus reads them, with the store's gauges read
    /// now.
    pub fn render(&self, store: &Store, now: OffsetDateTime) -> anyhow::Result<String> {
        // Counted, not decoded: a scrape holds no copy of the outbox.
        let (pending, oldest) = store.outbox_summary()?;
        self.outbox_pending.set(pending as i64);
        self.outbox_oldest_age.set(oldest.map_or(0, |at| (now - at).whole_seconds().max(0)));
        self.dead_letters.set(store.dead_letter_count() as i64);
        self.tickets_waiting.set(store.ticket_request_count() as i64);
        let mut counted = self.accounts_counted.lock().unwrap_or_else(|e| e.into_inner());
        if counted.is_none_or(|at| now - at >= ACCOUNT_GAUGES_EVERY) {
            self.handshakes.clear();
            self.accounts.clear();
            // A closed claim is in no state any more: it stays for the record.
            for (state, handshake, _) in store.account_states()?.into_iter().filter(|(_, _, closed)| !closed) {
                self.accounts.get_or_create(&StateLabels { state: state.code() }).inc();
                if let Some(handshake) = handshake {
                    self.handshakes.get_or_create(&StateLabels { state: handshake.code() }).inc();
                }
            }
            *counted = Some(now);
        }
        drop(counted);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_job_is_stale_after_its_intervals_without_success() {
        let started = datetime!(2026-11-26 12:00 UTC);
        let metrics = Metrics::new(started);
        let schedule = Schedule::new(&BTreeMap::new()).unwrap();
        let stale = |now| -> Vec<&'static str> {
            metrics.job_health(&schedule, now, 3).into_iter().filter(|h| h.stale).map(|h| h.job).collect()
        };
        // open_tickets runs every minute: stale 3 minutes after its first due run.
        assert!(stale(started + time::Duration::minutes(3)).is_empty());
        assert_eq!(stale(started + time::Duration::minutes(5)), ["open_tickets", "probe_roles"]);
        metrics.job_run(Job::OpenTickets, true, started + time::Duration::minutes(4));
        assert_eq!(stale(started + time::Duration::minutes(5)), ["probe_roles"]);
        metrics.job_run(Job::ProbeRoles, false, started + time::Duration::minutes(4));
        assert_eq!(stale(started + time::Duration::minutes(5)), ["probe_roles"], "a failed run is no success");
        // Daily jobs have days.
        assert!(!stale(started + time::Duration::hours(30)).contains(&"audit_support_plans"));
    }

    #[test]
    fn outcomes_follow_the_status() {
        assert_eq!(http_outcome(None), "unreachable");
        assert_eq!(http_outcome(Some(200)), "ok");
        assert_eq!(http_outcome(Some(403)), "client_error");
        assert_eq!(http_outcome(Some(429)), "rate_limited");
        assert_eq!(http_outcome(Some(503)), "server_error");
    }
}

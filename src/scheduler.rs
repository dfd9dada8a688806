//! Scheduled work: a table of (job, cron expression), the expressions from
//! configuration. Each run goes through the same app code as a command.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use time::OffsetDateTime;
use tracing::Instrument as _;

use crate::app::App;
use crate::clock::Clock;

/// Every scheduled job. Adding one: a variant, its name and default cron
/// expression below, and its run in `App::run_job`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    /// Reads every tracked invitation's state from AWS Organizations.
    PollHandshakes,
    /// Reminds tenants of invitations close to expiry.
    RemindInvitations,
    /// Sends invitations queued by AWS's daily quota.
    SendQueuedInvitations,
    /// Warns about linked accounts without the right support plan group.
    AuditSupportPlans,
    /// Opens the Freshdesk tickets waiting to be opened.
    OpenTickets,
    /// Looks for the roles not verified yet under the suggested name.
    ProbeRoles,
    /// Lapses the claims whose window ended without a verified role.
    LapseClaims,
    /// Tells operations, once a working day, what changed and what needs
    /// them (nothing when nothing does).
    OpsDigest,
    /// Writes a backup of the store to `backup.dir` and keeps the newest
    /// `backup.keep` (scheduled only when `backup.dir` is set).
    Backup,
}

impl Job {
    pub const ALL: [Job; 9] = [
        Self::PollHandshakes,
        Self::RemindInvitations,
        Self::SendQueuedInvitations,
        Self::AuditSupportPlans,
        Self::OpenTickets,
        Self::ProbeRoles,
        Self::LapseClaims,
        Self::OpsDigest,
        Self::Backup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::PollHandshakes => "poll_handshakes",
            Self::RemindInvitations => "remind_invitations",
            Self::SendQueuedInvitations => "send_queued_invitations",
            Self::AuditSupportPlans => "audit_support_plans",
            Self::OpenTickets => "open_tickets",
            Self::ProbeRoles => "probe_roles",
            Self::LapseClaims => "lapse_claims",
            Self::OpsDigest => "ops_digest",
            Self::Backup => "backup",
        }
    }

    /// The default schedule (seconds first, as the `cron` crate reads it).
    pub fn default_cron(self) -> &'static str {
        match self {
            Self::PollHandshakes => "0 */5 * * * *",
            Self::RemindInvitations => "0 0 * * * *",
            Self::SendQueuedInvitations => "0 */15 * * * *",
            Self::AuditSupportPlans => "0 0 9 * * *",
            Self::OpenTickets => "0 * * * * *",
            // Every minute: the probe plan and the rate ceiling decide which
            // accounts are probed in each run.
            Self::ProbeRoles => "30 * * * * *",
            Self::LapseClaims => "0 10 * * * *",
            // Weekdays at 08:00 UTC.
            Self::OpsDigest => "0 0 8 * * Mon-Fri",
            // Daily, at a quiet hour in Europe and the Americas.
            Self::Backup => "0 0 3 * * *",
        }
    }

    /// The configuration key of its schedule.
    pub fn config_key(self) -> &'static str {
        match self {
            Self::PollHandshakes => "schedule.poll_handshakes",
            Self::RemindInvitations => "schedule.remind_invitations",
            Self::SendQueuedInvitations => "schedule.send_queued_invitations",
            Self::AuditSupportPlans => "schedule.audit_support_plans",
            Self::OpenTickets => "schedule.open_tickets",
            Self::ProbeRoles => "schedule.probe_roles",
            Self::LapseClaims => "schedule.lapse_claims",
            Self::OpsDigest => "schedule.ops_digest",
            // With the other backup keys.
            Self::Backup => "backup.schedule",
        }
    }

    /// Whether the job works for the tenants or writes to them (so it
    /// leaves a suspended tenant's accounts alone), rather than records what
    /// AWS did in the distributor's own organization (`poll_handshakes`: an
    /// accepted invitation puts the account's billing on the distributor,
    /// who must know) or serves the distributor's ticket queue.
    pub fn acts_for_tenants(self) -> bool {
        match self {
            // A suspended tenant's claims do not lapse either: its data stays
            // as it was.
            Self::RemindInvitations
            | Self::SendQueuedInvitations
            | Self::AuditSupportPlans
            | Self::ProbeRoles
            | Self::LapseClaims => true,
            // Operations' own: it reads, and writes to operations only; the
            // backup writes a file.
            Self::PollHandshakes | Self::OpenTickets | Self::OpsDigest | Self::Backup => false,
        }
    }

    /// The due index the job reads: it looks at the accounts due for it,
    /// never the whole registry. Tickets wait in their own queue.
    pub fn due(self) -> Option<crate::domain::DueJob> {
        use crate::domain::DueJob;
        match self {
            Self::PollHandshakes => Some(DueJob::Poll),
            Self::RemindInvitations => Some(DueJob::Remind),
            Self::SendQueuedInvitations => Some(DueJob::SendQueued),
            Self::AuditSupportPlans => Some(DueJob::Audit),
            Self::ProbeRoles => Some(DueJob::Probe),
            Self::LapseClaims => Some(DueJob::Lapse),
            Self::OpenTickets | Self::OpsDigest | Self::Backup => None,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|j| j.name() == name)
    }
}

/// The jobs with their parsed schedules.
#[derive(Debug, Clone)]
pub struct Schedule {
    entries: Vec<(Job, cron::Schedule)>,
}

/// A cron expression that does not parse, and for which job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the schedule of {job} ({expression:?}) is not a cron expression: {message}")]
pub struct BadSchedule {
    pub job: &'static str,
    pub expression: String,
    pub message: String,
}

impl Schedule {
    /// Every job, with its expression from `overrides` (by job name) or its
    /// default.
    pub fn new(overrides: &BTreeMap<String, String>) -> Result<Self, BadSchedule> {
        let entries = Job::ALL
            .into_iter()
            .map(|job| {
                let expression = overrides.get(job.name()).map(String::as_str).unwrap_or(job.default_cron());
                cron::Schedule::from_str(expression).map(|s| (job, s)).map_err(|e| BadSchedule {
                    job: job.name(),
                    expression: expression.to_owned(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    /// When `job` runs next strictly after `after` (to the nanosecond: a
    /// moment just before a tick is before it).
    pub fn next(&self, job: Job, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let (_, schedule) = self.entries.iter().find(|(j, _)| *j == job)?;
        let after = chrono::DateTime::<chrono::Utc>::from_timestamp(after.unix_timestamp(), after.nanosecond())?;
        let next = schedule.after(&after).next()?;
        OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()
    }

    /// The schedule without `job` (the backup job, when backups are off).
    pub fn without(mut self, job: Job) -> Self {
        self.entries.retain(|(j, _)| *j != job);
        self
    }

    pub fn jobs(&self) -> impl Iterator<Item = Job> + '_ {
        self.entries.iter().map(|(job, _)| *job)
    }
}

/// The runner's place in the schedule: every tick up to `last` has had its
/// run. The next run is counted from there, never from a "now" a timer
/// woke a little early or late at, so a tick runs once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticks {
    last: OffsetDateTime,
}

impl Ticks {
    /// Nothing before `start` runs.
    pub fn from(start: OffsetDateTime) -> Self {
        Self { last: start }
    }

    /// The next run at `now`: when, and its jobs (each job whose first tick
    /// after the last run is then). Ticks already past (a run overran
    /// them) make one run now, with every job they hold, not one run each.
    pub fn next(&self, schedule: &Schedule, now: OffsetDateTime) -> Option<(OffsetDateTime, Vec<Job>)> {
        let firsts: Vec<(Job, OffsetDateTime)> =
            schedule.jobs().filter_map(|job| Some((job, schedule.next(job, self.last)?))).collect();
        let at = firsts.iter().map(|(_, at)| *at).min()?;
        let (at, due) = if at <= now { (now, now) } else { (at, at) };
        Some((at, firsts.into_iter().filter(|(_, t)| *t <= due).map(|(job, _)| job).collect()))
    }

    /// The run of `at` (from [`Ticks::next`]) is done, whenever the timer
    /// woke for it.
    pub fn ran(&mut self, at: OffsetDateTime) {
        self.last = self.last.max(at);
    }
}

/// Runs each job at its times until `shutdown` resolves; jobs that share a
/// time run one after the other. A failing run is logged; the next runs as
/// scheduled.
pub async fn run(app: App, schedule: Schedule, clock: Arc<dyn Clock>, shutdown: impl std::future::Future<Output = ()>) {
    drive(&schedule, clock.as_ref(), shutdown, |job| {
        let app = app.clone();
        async move {
            let span = tracing::info_span!("job", job = job.name());
            let result = app.run_scheduled(job).instrument(span.clone()).await;
            let _entered = span.enter();
            match result {
                Ok(report) if report.succeeded() => tracing::info!(?report, "job done"),
                Ok(report) => tracing::error!(?report, "job failed: AWS could not be asked"),
                Err(e) => tracing::error!(error = format!("{e:?}"), "job failed"),
            }
        }
    })
    .await
}

/// The runner's loop: waits for each run's time on tokio's timer (the
/// clock says what time it is), then runs its jobs with `run_job`.
async fn drive<F: std::future::Future<Output = ()>>(
    schedule: &Schedule,
    clock: &dyn Clock,
    shutdown: impl std::future::Future<Output = ()>,
    mut run_job: impl FnMut(Job) -> F,
) {
    tokio::pin!(shutdown);
    let mut ticks = Ticks::from(clock.now());
    loop {
        let now = clock.now();
        let Some((at, jobs)) = ticks.next(schedule, now) else { return };
        let wait = std::time::Duration::try_from(at - now).unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => return,
        }
        for job in jobs {
            run_job(job).await;
        }
        ticks.ran(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn every_default_parses_and_names_are_unique() {
        let schedule = Schedule::new(&BTreeMap::new()).unwrap();
        let names: std::collections::HashSet<_> = Job::ALL.iter().map(|j| j.name()).collect();
        assert_eq!(names.len(), Job::ALL.len());
        for job in Job::ALL {
            assert_eq!(Job::from_name(job.name()), Some(job));
            assert!(schedule.next(job, datetime!(2026-11-26 12:00 UTC)).is_some());
        }
        let at = datetime!(2026-11-26 12:01:30 UTC);
        assert_eq!(schedule.next(Job::PollHandshakes, at), Some(datetime!(2026-11-26 12:05 UTC)));
        assert_eq!(schedule.next(Job::RemindInvitations, at), Some(datetime!(2026-11-26 13:00 UTC)));
    }

    /// The next run seen from `now`, as a runner that started then sees it.
    fn next_together(schedule: &Schedule, now: OffsetDateTime) -> Option<(OffsetDateTime, Vec<Job>)> {
        Ticks::from(now).next(schedule, now)
    }

    #[test]
    fn jobs_that_share_a_time_all_run_then() {
        let schedule = Schedule::new(&BTreeMap::new()).unwrap();
        // On the hour: the poll (every 5 minutes), the reminders (hourly),
        // the queue (every 15 minutes) and the tickets (every minute).
        let (at, jobs) = next_together(&schedule, datetime!(2026-11-26 11:59:45 UTC)).unwrap();
        assert_eq!(at, datetime!(2026-11-26 12:00 UTC));
        assert_eq!(jobs, [Job::PollHandshakes, Job::RemindInvitations, Job::SendQueuedInvitations, Job::OpenTickets]);
        // The daily audit at 09:00 comes with them.
        let (_, jobs) = next_together(&schedule, datetime!(2026-11-26 08:59:59 UTC)).unwrap();
        assert!(jobs.contains(&Job::AuditSupportPlans) && jobs.contains(&Job::PollHandshakes), "{jobs:?}");
        // Half a minute later, the probe alone.
        let (at, jobs) = next_together(&schedule, datetime!(2026-11-26 12:00:00 UTC)).unwrap();
        assert_eq!((at, jobs), (datetime!(2026-11-26 12:00:30 UTC), vec![Job::ProbeRoles]));
    }

    #[test]
    fn a_bad_expression_names_its_job() {
        let overrides = BTreeMap::from([("poll_handshakes".to_owned(), "every five minutes".to_owned())]);
        let err = Schedule::new(&overrides).unwrap_err();
        assert_eq!(err.job, "poll_handshakes");
    }

    #[test]
    fn a_tick_runs_once_however_early_or_late_the_timer_wakes() {
        let schedule = Schedule::new(&BTreeMap::new()).unwrap();
        let mut ticks = Ticks::from(datetime!(2026-11-26 11:59:45 UTC));
        let (at, jobs) = ticks.next(&schedule, datetime!(2026-11-26 11:59:45 UTC)).unwrap();
        assert_eq!(at, datetime!(2026-11-26 12:00 UTC));
        assert!(jobs.contains(&Job::OpenTickets));
        ticks.ran(at);
        // The timer woke just before the boundary, or just after it: the
        // next run is the one after, never 12:00 again.
        for now in [datetime!(2026-11-26 11:59:59.999859 UTC), datetime!(2026-11-26 12:00:00.001002 UTC)] {
            let (next, jobs) = ticks.next(&schedule, now).unwrap();
            assert_eq!((next, jobs), (datetime!(2026-11-26 12:00:30 UTC), vec![Job::ProbeRoles]), "{now}");
        }
        // A moment before a tick is before it.
        assert_eq!(
            schedule.next(Job::OpenTickets, datetime!(2026-11-26 12:00:59.9999 UTC)),
            Some(datetime!(2026-11-26 12:01 UTC))
        );
    }

    #[test]
    fn ticks_a_run_overran_make_one_run() {
        let schedule = Schedule::new(&BTreeMap::new()).unwrap();
        let mut ticks = Ticks::from(datetime!(2026-11-26 12:00 UTC));
        // The 12:00 run ended at 12:03:10: 12:00:30 to 12:03:00 went by.
        let now = datetime!(2026-11-26 12:03:10 UTC);
        let (at, jobs) = ticks.next(&schedule, now).unwrap();
        assert_eq!(at, now, "at once");
        assert_eq!(jobs.iter().filter(|j| **j == Job::OpenTickets).count(), 1, "{jobs:?}");
        assert!(jobs.contains(&Job::ProbeRoles) && !jobs.contains(&Job::PollHandshakes), "{jobs:?}");
        ticks.ran(at);
        let (next, _) = ticks.next(&schedule, now).unwrap();
        assert_eq!(next, datetime!(2026-11-26 12:03:30 UTC));
    }

    /// A clock on tokio's paused time that drifts `ppm` from its timer, as
    /// the system clock does from the monotonic one: slow, the timer fires
    /// while the clock still reads just before the tick; fast, just after.
    struct TimerClock {
        start: tokio::time::Instant,
        at_start: OffsetDateTime,
        ppm: i64,
    }

    impl Clock for TimerClock {
        fn now(&self) -> OffsetDateTime {
            let elapsed = time::Duration::try_from(self.start.elapsed()).unwrap();
            let drift = time::Duration::nanoseconds(elapsed.whole_nanoseconds() as i64 / 1_000_000 * self.ppm);
            self.at_start + elapsed + drift
        }
    }

    /// Five minutes of the runner on paused time: each minute's
    /// `open_tickets` once, whether the timer wakes early or late; a run
    /// that overruns two minutes is followed by one run, not a burst.
    #[tokio::test(start_paused = true)]
    async fn the_runner_runs_each_tick_once() {
        let schedule = Schedule::new(&BTreeMap::new()).unwrap();
        for ppm in [-10, 0, 10] {
            let clock =
                TimerClock { start: tokio::time::Instant::now(), at_start: datetime!(2026-11-26 11:59:50 UTC), ppm };
            let runs = std::sync::Mutex::new(Vec::new());
            let shutdown = tokio::time::sleep(std::time::Duration::from_secs(5 * 60));
            drive(&schedule, &clock, shutdown, |job| {
                runs.lock().unwrap().push((job, clock.now()));
                async {}
            })
            .await;
            let tickets: Vec<OffsetDateTime> =
                runs.lock().unwrap().iter().filter(|(j, _)| *j == Job::OpenTickets).map(|(_, at)| *at).collect();
            assert_eq!(tickets.len(), 5, "drift {ppm} ppm: {tickets:?}");
            for (minute, at) in tickets.iter().enumerate() {
                let tick = datetime!(2026-11-26 12:00 UTC) + time::Duration::minutes(minute as i64);
                assert!((*at - tick).abs() < time::Duration::milliseconds(5), "drift {ppm} ppm: {tickets:?}");
            }
        }

        // 12:00's tickets run for two and a half minutes.
        let clock =
            TimerClock { start: tokio::time::Instant::now(), at_start: datetime!(2026-11-26 11:59:50 UTC), ppm: 0 };
        let runs = std::sync::Mutex::new(Vec::new());
        let shutdown = tokio::time::sleep(std::time::Duration::from_secs(4 * 60));
        drive(&schedule, &clock, shutdown, |job| {
            let first = job == Job::OpenTickets && runs.lock().unwrap().iter().all(|(j, _)| *j != Job::OpenTickets);
            runs.lock().unwrap().push((job, clock.now()));
            async move {
                if first {
                    tokio::time::sleep(std::time::Duration::from_secs(150)).await;
                }
            }
        })
        .await;
        let tickets: Vec<OffsetDateTime> =
            runs.lock().unwrap().iter().filter(|(j, _)| *j == Job::OpenTickets).map(|(_, at)| *at).collect();
        // 12:00 (until 12:02:30), once at 12:02:30 for 12:01 and 12:02,
        // then 12:03.
        let expected =
            [datetime!(2026-11-26 12:00 UTC), datetime!(2026-11-26 12:02:30 UTC), datetime!(2026-11-26 12:03 UTC)];
        assert_eq!(tickets.len(), expected.len(), "{tickets:?}");
        for (at, expected) in tickets.iter().zip(expected) {
            assert!((*at - expected).abs() < time::Duration::milliseconds(5), "{tickets:?}");
        }
    }
}

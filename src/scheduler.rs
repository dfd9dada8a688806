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
    /// Writes a backup of the store to `backup.dir` and keeps the newest
    /// `backup.keep` (scheduled only when `backup.dir` is set).
    Backup,
}

impl Job {
    pub const ALL: [Job; 8] = [
        Self::PollHandshakes,
        Self::RemindInvitations,
        Self::SendQueuedInvitations,
        Self::AuditSupportPlans,
        Self::OpenTickets,
        Self::ProbeRoles,
        Self::LapseClaims,
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
            Self::PollHandshakes | Self::OpenTickets | Self::Backup => false,
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
            Self::OpenTickets | Self::Backup => None,
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

    /// When `job` runs next after `now`.
    pub fn next(&self, job: Job, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let (_, schedule) = self.entries.iter().find(|(j, _)| *j == job)?;
        let now = chrono::DateTime::<chrono::Utc>::from_timestamp(now.unix_timestamp(), 0)?;
        let next = schedule.after(&now).next()?;
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

    /// The next instant after `now` at which any job runs, and every job
    /// that runs then (in table order): jobs that share a time all run.
    pub fn next_together(&self, now: OffsetDateTime) -> Option<(OffsetDateTime, Vec<Job>)> {
        let next: Vec<(Job, OffsetDateTime)> = self.jobs().filter_map(|j| Some((j, self.next(j, now)?))).collect();
        let at = next.iter().map(|(_, at)| *at).min()?;
        Some((at, next.into_iter().filter(|(_, t)| *t == at).map(|(job, _)| job).collect()))
    }
}

/// Runs each job at its times until `shutdown` resolves; jobs that share a
/// time run one after the other. A failing run is logged; the next runs as
/// scheduled.
pub async fn run(app: App, schedule: Schedule, clock: Arc<dyn Clock>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let now = clock.now();
        let Some((at, jobs)) = schedule.next_together(now) else { return };
        let wait = (at - now).max(time::Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait.whole_milliseconds().try_into().unwrap_or(u64::MAX))) => {}
            _ = &mut shutdown => return,
        }
        for job in jobs {
            let span = tracing::info_span!("job", job = job.name());
            let result = app.run_scheduled(job).instrument(span.clone()).await;
            let _entered = span.enter();
            match result {
                Ok(report) if report.succeeded() => tracing::info!(?report, "job done"),
                Ok(report) => tracing::error!(?report, "job failed: AWS could not be asked"),
                Err(e) => tracing::error!(error = format!("{e:?}"), "job failed"),
            }
        }
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

    #[test]
    fn jobs_that_share_a_time_all_run_then() {
        let schedule = Schedule::new(&BTreeMap::new()).unwrap();
        // On the hour: the poll (every 5 minutes), the reminders (hourly),
        // the queue (every 15 minutes) and the tickets (every minute).
        let (at, jobs) = schedule.next_together(datetime!(2026-11-26 11:59:45 UTC)).unwrap();
        assert_eq!(at, datetime!(2026-11-26 12:00 UTC));
        assert_eq!(jobs, [Job::PollHandshakes, Job::RemindInvitations, Job::SendQueuedInvitations, Job::OpenTickets]);
        // The daily audit at 09:00 comes with them.
        let (_, jobs) = schedule.next_together(datetime!(2026-11-26 08:59:59 UTC)).unwrap();
        assert!(jobs.contains(&Job::AuditSupportPlans) && jobs.contains(&Job::PollHandshakes), "{jobs:?}");
        // Half a minute later, the probe alone.
        let (at, jobs) = schedule.next_together(datetime!(2026-11-26 12:00:00 UTC)).unwrap();
        assert_eq!((at, jobs), (datetime!(2026-11-26 12:00:30 UTC), vec![Job::ProbeRoles]));
    }

    #[test]
    fn a_bad_expression_names_its_job() {
        let overrides = BTreeMap::from([("poll_handshakes".to_owned(), "every five minutes".to_owned())]);
        let err = Schedule::new(&overrides).unwrap_err();
        assert_eq!(err.job, "poll_handshakes");
    }
}

//! Zero-paste verification: orglink looks for the customer's role under the
//! name it suggested, on a schedule that backs off, so nobody has to paste
//! an ARN.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::{AccountId, CheckName, Outcome, Problem, VerificationReport};

/// Probe every `every` until `until` has passed since probing (re)started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbePhase {
    pub every: Duration,
    pub until: Duration,
}

/// The backoff schedule: phases with growing intervals; probing stops after
/// the last phase's `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePlan {
    phases: Vec<ProbePhase>,
}

/// A probe schedule that does not parse, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a probe schedule: {why}")]
pub struct BadProbePlan {
    pub input: String,
    pub why: &'static str,
}

impl Default for ProbePlan {
    /// Every 2 minutes for the first 30 minutes, every 15 minutes for a day,
    /// every 2 hours until the 14 days an invitation would take.
    fn default() -> Self {
        let phase = |every, until| ProbePhase { every, until };
        Self {
            phases: vec![
                phase(Duration::minutes(2), Duration::minutes(30)),
                phase(Duration::minutes(15), Duration::days(1)),
                phase(Duration::hours(2), Duration::days(14)),
            ],
        }
    }
}

impl ProbePlan {
    /// The longest a plan may probe: longer than any invitation lives.
    pub const MAX_WINDOW: Duration = Duration::days(90);

    pub fn phases(&self) -> &[ProbePhase] {
        &self.phases
    }

    /// How long after (re)starting probing stops.
    pub fn window(&self) -> Duration {
        self.phases.last().map_or(Duration::ZERO, |p| p.until)
    }

    /// The interval `elapsed` after (re)starting; `None` once the window has
    /// passed.
    fn every_at(&self, elapsed: Duration) -> Option<Duration> {
        self.phases.iter().find(|p| elapsed < p.until).map(|p| p.every)
    }

    /// The first probe after probing (re)starts at `since`: within the first
    /// interval, at an offset drawn from the account ID, so accounts
    /// registered together are spread over the interval.
    pub fn first(&self, since: OffsetDateTime, account: AccountId) -> Option<OffsetDateTime> {
        let every = self.every_at(Duration::ZERO)?;
        let seconds = every.whole_seconds().max(1) as u64;
        let spread = account.as_str().parse::<u64>().unwrap_or_default() % seconds;
        Some(since + Duration::seconds(spread as i64))
    }

    /// The probe after one made at `at`; `None` once the window has passed.
    pub fn after(&self, since: OffsetDateTime, at: OffsetDateTime) -> Option<OffsetDateTime> {
        let every = self.every_at(at - since)?;
        let next = at + every;
        (next - since < self.window()).then_some(next)
    }
}

impl FromStr for ProbePlan {
    type Err = BadProbePlan;

    /// `every 2m until 30m, every 15m until 1d, every 2h until 14d` (the
    /// word `every` is optional; units as humantime reads them).
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let bad = |why| BadProbePlan { input: input.chars().take(200).collect(), why };
        let duration = |text: &str| -> Result<Duration, BadProbePlan> {
            let d =
                humantime::parse_duration(text.trim()).map_err(|_| bad("a duration is not like 2m, 15m, 2h or 14d"))?;
            Duration::try_from(d).map_err(|_| bad("a duration is too long"))
        };
        let mut phases = Vec::new();
        for part in input.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let part = part.strip_prefix("every").unwrap_or(part);
            let (every, until) =
                part.split_once("until").ok_or_else(|| bad("each phase is `every <interval> until <age>`"))?;
            let phase = ProbePhase { every: duration(every)?, until: duration(until)? };
            if phase.every < Duration::MINUTE {
                return Err(bad("an interval is shorter than a minute"));
            }
            if phases.last().is_some_and(|p: &ProbePhase| p.until >= phase.until) {
                return Err(bad("the phases' ages do not grow"));
            }
            phases.push(phase);
        }
        let Some(last) = phases.last() else { return Err(bad("no phase is given")) };
        if last.until > Self::MAX_WINDOW {
            return Err(bad("probing would go on for more than 90 days"));
        }
        Ok(Self { phases })
    }
}

impl fmt::Display for ProbePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |d: Duration| humantime::format_duration(std::time::Duration::try_from(d).unwrap_or_default());
        for (i, p) in self.phases.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}every {} until {}", show(p.every), show(p.until))?;
        }
        Ok(())
    }
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// No role orglink may assume under that name yet.
    NotFound,
    /// The role exists but these required checks fail.
    Problems { checks: Vec<CheckName> },
    /// Every required check passed.
    Verified,
    /// AWS could not be asked; the next probe tries again.
    Unavailable,
}

impl ProbeOutcome {
    /// What a verification report says about the probed role.
    pub fn of(report: &VerificationReport) -> Self {
        let unavailable = |o: &Outcome| matches!(o, Outcome::Failed { problem: Problem::Unavailable { .. } });
        match report.outcome(CheckName::AssumeRole) {
            Some(Outcome::Passed) => {}
            Some(Outcome::Failed { problem: Problem::AccessDenied }) => return Self::NotFound,
            _ => return Self::Unavailable,
        }
        if report.verified() {
            return Self::Verified;
        }
        if report.checks.iter().any(|c| unavailable(&c.outcome)) {
            return Self::Unavailable;
        }
        // What failed, not what was skipped because of it: a role whose
        // external ID guard fails is used for nothing else, and what the
        // other checks would say is told once they have run.
        let checks = report
            .checks
            .iter()
            .filter(|c| c.name.required() && matches!(c.outcome, Outcome::Failed { .. }))
            .map(|c| c.name)
            .collect();
        Self::Problems { checks }
    }

    /// The role exists: it can be recorded with its report.
    pub fn found(&self) -> bool {
        matches!(self, Self::Problems { .. } | Self::Verified)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    #[serde(with = "crate::domain::instant")]
    pub at: OffsetDateTime,
    #[serde(flatten)]
    pub outcome: ProbeOutcome,
}

/// The probing of one account: kept with the account, shown in its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// Probing (re)started here: registration, or the instructions shown.
    #[serde(with = "crate::domain::instant")]
    pub since: OffsetDateTime,
    /// The next probe; `None` once probing has stopped.
    #[serde(with = "crate::domain::instant::option")]
    pub next_at: Option<OffsetDateTime>,
    pub last: Option<ProbeResult>,
    /// Probes made.
    pub probes: u32,
    /// The failing checks the tenant was last told about: each set of
    /// problems is told once, however many probes see it.
    #[serde(default)]
    pub told: Vec<CheckName>,
}

impl ProbeRecord {
    pub fn started(plan: &ProbePlan, account: AccountId, since: OffsetDateTime, previous: Option<&Self>) -> Self {
        Self {
            since,
            next_at: plan.first(since, account),
            last: previous.and_then(|p| p.last.clone()),
            probes: previous.map_or(0, |p| p.probes),
            told: previous.map(|p| p.told.clone()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn account() -> AccountId {
        "111122223333".parse().unwrap()
    }

    #[test]
    fn the_default_plan_backs_off_and_stops_after_fourteen_days() {
        let plan = ProbePlan::default();
        assert_eq!(plan, "every 2m until 30m, every 15m until 1d, every 2h until 14d".parse().unwrap());
        assert_eq!(plan.to_string(), "every 2m until 30m, every 15m until 1day, every 2h until 14days");
        let since = datetime!(2026-11-26 12:00 UTC);
        let mut at = plan.first(since, account()).unwrap();
        assert!(at >= since && at < since + Duration::minutes(2));
        let mut probes = vec![at];
        while let Some(next) = plan.after(since, at) {
            probes.push(next);
            at = next;
        }
        let gaps: Vec<Duration> = probes.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps[0], Duration::minutes(2));
        assert!(gaps.iter().filter(|g| **g == Duration::minutes(2)).count() >= 14);
        assert!(gaps.contains(&Duration::minutes(15)));
        assert_eq!(*gaps.last().unwrap(), Duration::hours(2));
        assert!(*probes.last().unwrap() < since + Duration::days(14));
        assert!(*probes.last().unwrap() > since + Duration::days(14) - Duration::hours(2));
        // 15 + 94 + 156, give or take the edges of each phase.
        assert!((260..=270).contains(&probes.len()), "{}", probes.len());
    }

    #[test]
    fn bad_plans_say_why() {
        for (input, why) in [
            ("", "no phase is given"),
            ("2m", "each phase is `every <interval> until <age>`"),
            ("every 2 minutes until soon", "a duration is not like 2m, 15m, 2h or 14d"),
            ("every 10s until 30m", "an interval is shorter than a minute"),
            ("every 2m until 1d, every 15m until 30m", "the phases' ages do not grow"),
            ("every 1d until 100d", "probing would go on for more than 90 days"),
        ] {
            assert_eq!(input.parse::<ProbePlan>().unwrap_err().why, why, "{input}");
        }
    }

    #[test]
    fn accounts_registered_together_are_spread_over_the_first_interval() {
        let plan = ProbePlan::default();
        let since = datetime!(2026-11-26 12:00 UTC);
        let firsts: std::collections::BTreeSet<_> = (0..1000u64)
            .map(|n| plan.first(since, format!("{:012}", 100_000_000_000 + n * 7919).parse().unwrap()).unwrap())
            .collect();
        assert_eq!(firsts.len(), 120, "one per second of the 2-minute interval");
    }

    #[test]
    fn a_probe_names_the_checks_that_failed_not_those_skipped_for_them() {
        use crate::domain::Check;
        let report = |guard: Outcome, rest: Outcome| VerificationReport {
            account: account(),
            checks: CheckName::ALL
                .iter()
                .map(|name| Check {
                    name: *name,
                    outcome: match name {
                        CheckName::AssumeRole => Outcome::Passed,
                        CheckName::ExternalIdRequired => guard.clone(),
                        _ => rest.clone(),
                    },
                })
                .collect(),
            detected_kind: None,
            attempts: 1,
            checked_at: datetime!(2026-11-26 12:00 UTC),
            duration_ms: 0,
            support_tier: crate::domain::AwsSupportTier::default(),
        };
        let open = Outcome::Failed { problem: Problem::AnyExternalIdAccepted };
        assert_eq!(
            ProbeOutcome::of(&report(open, Outcome::Skipped)),
            ProbeOutcome::Problems { checks: vec![CheckName::ExternalIdRequired] }
        );
        let missing = Outcome::Failed { problem: Problem::PolicyMissing };
        assert_eq!(
            ProbeOutcome::of(&report(Outcome::Passed, missing)),
            ProbeOutcome::Problems {
                checks: vec![CheckName::CallerIdentity, CheckName::ReadOnlyAccess, CheckName::Organization]
            }
        );
        assert_eq!(ProbeOutcome::of(&report(Outcome::Passed, Outcome::Passed)), ProbeOutcome::Verified);
    }

    proptest! {
        #[test]
        fn probes_never_leave_the_window(every in 1i64..600, until in 1i64..20_000, offset in 0i64..20_000) {
            let plan: ProbePlan = format!("every {every}m until {}m", every + until).parse().unwrap();
            let since = datetime!(2026-11-26 12:00 UTC);
            let at = since + Duration::minutes(offset);
            if let Some(next) = plan.after(since, at) {
                prop_assert!(next - since < plan.window());
                prop_assert_eq!(next - at, Duration::minutes(every));
            }
        }
    }
}

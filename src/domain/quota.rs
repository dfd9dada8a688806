//! Quotas: how much of what orglink shares among resellers one tenant may
//! use. Each quota has a limit (configured); these rules say whether one
//! more use is allowed and, when not, when it will be again. The app keeps
//! the counts (the store for the daily one, memory for the per-minute one)
//! and asks here.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// What a tenant's use is limited in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quota {
    /// Claims open at once: neither verified (owned), lapsed nor closed.
    OpenClaims,
    /// Tickets asked for (`/ticket`) in a UTC day.
    TicketsPerDay,
    /// Role checks of one account (`/verify-role`, the modal, Check now) in
    /// any minute.
    VerificationsPerMinute,
}

impl Quota {
    pub const ALL: [Quota; 3] = [Self::OpenClaims, Self::TicketsPerDay, Self::VerificationsPerMinute];

    /// Its name in templates, logs and the store's keys: stable.
    pub fn code(self) -> &'static str {
        match self {
            Self::OpenClaims => "open_claims",
            Self::TicketsPerDay => "tickets_per_day",
            Self::VerificationsPerMinute => "verifications_per_minute",
        }
    }
}

/// The limits, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub open_claims: u32,
    pub tickets_per_day: u32,
    pub verifications_per_minute: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self { open_claims: 200, tickets_per_day: 20, verifications_per_minute: 6 }
    }
}

impl Quotas {
    pub fn limit(&self, quota: Quota) -> u32 {
        match quota {
            Quota::OpenClaims => self.open_claims,
            Quota::TicketsPerDay => self.tickets_per_day,
            Quota::VerificationsPerMinute => self.verifications_per_minute,
        }
    }
}

/// A use a quota does not allow: which, its limit, and when it allows one
/// again (`None`: when one of the uses ends, which no clock says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub quota: Quota,
    pub limit: u32,
    pub resets_at: Option<OffsetDateTime>,
}

/// A day as UTC counts it: days since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UtcDay(i64);

impl UtcDay {
    pub fn of(at: OffsetDateTime) -> Self {
        Self(at.unix_timestamp().div_euclid(86_400))
    }

    /// Midnight UTC at its start.
    pub fn start(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0 * 86_400).expect("a day within time's range")
    }

    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

/// Uses of a quota counted by the UTC day, as the store keeps them: one
/// record per tenant, which a new day starts again from nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    pub day: UtcDay,
    pub count: u32,
}

impl DayCount {
    /// The uses counted on `now`'s day.
    pub fn on(count: Option<DayCount>, now: OffsetDateTime) -> u32 {
        count.filter(|c| c.day == UtcDay::of(now)).map_or(0, |c| c.count)
    }
}

/// Whether a tenant with `open` open claims may open `more` (one
/// registration, or every row of an import: a file is taken whole or not
/// at all).
pub fn open_claims(limit: u32, open: usize, more: usize) -> Result<(), Exceeded> {
    if open.saturating_add(more) <= limit as usize {
        Ok(())
    } else {
        // Room comes back when a claim is verified, lapses or is removed.
        Err(Exceeded { quota: Quota::OpenClaims, limit, resets_at: None })
    }
}

/// Whether a tenant whose tickets are counted as `counted` may ask for one
/// more at `now`; if so, the count to keep once it is asked for. A UTC day,
/// not a rolling 24 hours: everyone reads the same reset time, midnight UTC.
pub fn ticket(limit: u32, counted: Option<DayCount>, now: OffsetDateTime) -> Result<DayCount, Exceeded> {
    let used = DayCount::on(counted, now);
    let today = UtcDay::of(now);
    if used < limit {
        Ok(DayCount { day: today, count: used + 1 })
    } else {
        Err(Exceeded { quota: Quota::TicketsPerDay, limit, resets_at: Some(today.next().start()) })
    }
}

/// Whether one more check of an account's role may run at `now`, given the
/// checks of the last minute (`recent`, any order): a sliding minute, so a
/// burst cannot straddle the turn of a clock minute to get twice as many.
pub fn verification(limit: u32, recent: &[OffsetDateTime], now: OffsetDateTime) -> Result<(), Exceeded> {
    let mut within: Vec<OffsetDateTime> = recent.iter().copied().filter(|at| *at > now - Duration::MINUTE).collect();
    if within.len() < limit as usize {
        return Ok(());
    }
    // One more is allowed once all but limit - 1 of them are a minute old:
    // the (len - limit + 1)-th oldest. Shown to the second, rounded up, so
    // that trying at the time shown works.
    within.sort_unstable();
    let frees = within[within.len() - limit as usize] + Duration::MINUTE;
    Err(Exceeded { quota: Quota::VerificationsPerMinute, limit, resets_at: Some(round_up_to_second(frees)) })
}

fn round_up_to_second(at: OffsetDateTime) -> OffsetDateTime {
    let whole = at.replace_nanosecond(0).expect("0 is a valid nanosecond");
    if whole == at { whole } else { whole + Duration::SECOND }
}

/// Whether operations hear of a tenant over a quota now, having last heard
/// of it (that tenant, that quota) on `last_told`: once a UTC day, so a
/// tenant pressing a button in a loop does not flood their channel.
pub fn tell_operations(last_told: Option<UtcDay>, now: OffsetDateTime) -> bool {
    last_told != Some(UtcDay::of(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

    #[test]
    fn open_claims_are_counted_against_the_limit_and_come_back_with_no_set_time() {
        assert_eq!(open_claims(200, 199, 1), Ok(()));
        assert_eq!(open_claims(200, 200, 1), Err(Exceeded { quota: Quota::OpenClaims, limit: 200, resets_at: None }));
        assert!(open_claims(2, 7, 1).is_err(), "a lower limit configured later refuses too");
        // A file counts whole: 190 open and 10 more fit in 200, 11 do not.
        assert_eq!(open_claims(200, 190, 10), Ok(()));
        assert!(open_claims(200, 190, 11).is_err());
    }

    #[test]
    fn tickets_are_counted_by_the_utc_day() {
        let first = ticket(2, None, AT).unwrap();
        assert_eq!(first, DayCount { day: UtcDay::of(AT), count: 1 });
        let second = ticket(2, Some(first), AT + Duration::hours(11)).unwrap();
        assert_eq!(second.count, 2);
        let refused = ticket(2, Some(second), datetime!(2026-12-01 23:59:59 UTC)).unwrap_err();
        assert_eq!(refused.quota, Quota::TicketsPerDay);
        assert_eq!(refused.resets_at, Some(datetime!(2026-12-02 00:00 UTC)));
        // Midnight UTC: a new day, counted from nothing.
        assert_eq!(ticket(2, Some(second), datetime!(2026-12-02 00:00 UTC)).unwrap().count, 1);
        assert_eq!(DayCount::on(Some(second), datetime!(2026-12-02 00:00 UTC)), 0);
    }

    #[test]
    fn verifications_slide_over_the_last_minute() {
        let s = Duration::seconds;
        let recent = [AT, AT + s(10), AT + s(20)];
        assert_eq!(verification(4, &recent, AT + s(30)), Ok(()));
        let refused = verification(3, &recent, AT + s(30)).unwrap_err();
        assert_eq!(refused.resets_at, Some(AT + s(60)), "when the oldest is a minute old");
        assert_eq!(verification(3, &recent, AT + s(60)), Ok(()), "the oldest no longer counts");
        // Out of order, and a limit of 2 with 3 in the window: two must age out.
        let refused = verification(2, &[AT + s(20), AT, AT + s(10)], AT + s(30)).unwrap_err();
        assert_eq!(refused.resets_at, Some(AT + s(70)));
        // Rounded up to the second shown.
        let odd = AT + Duration::milliseconds(1500);
        assert_eq!(verification(1, &[odd], odd).unwrap_err().resets_at, Some(AT + s(62)));
    }

    #[test]
    fn operations_hear_once_a_utc_day() {
        assert!(tell_operations(None, AT));
        assert!(!tell_operations(Some(UtcDay::of(AT)), AT + Duration::hours(11)));
        assert!(tell_operations(Some(UtcDay::of(AT)), datetime!(2026-12-02 00:00 UTC)));
    }

    #[test]
    fn every_quota_has_a_code_and_a_limit() {
        let quotas = Quotas { open_claims: 1, tickets_per_day: 2, verifications_per_minute: 3 };
        let limits: Vec<u32> = Quota::ALL.iter().map(|q| quotas.limit(*q)).collect();
        assert_eq!(limits, [1, 2, 3]);
        let codes: Vec<&str> = Quota::ALL.iter().map(|q| q.code()).collect();
        assert_eq!(codes, ["open_claims", "tickets_per_day", "verifications_per_minute"]);
        for quota in Quota::ALL {
            assert_eq!(serde_json::to_value(quota).unwrap(), quota.code());
        }
    }
}

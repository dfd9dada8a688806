//! AWS Organizations invitations (handshakes) as orglink tracks them.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

string_newtype!(
    /// A handshake ID: `h-` and 8 to 32 lowercase letters or digits.
    HandshakeId,
    |s| s.strip_prefix("h-").is_some_and(|rest| {
        (8..=32).contains(&rest.len()) && rest.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    }),
    HandshakeId
);

/// A handshake's state, as AWS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HandshakeState {
    Requested,
    Open,
    Canceled,
    Accepted,
    Declined,
    Expired,
}

impl HandshakeState {
    pub fn from_aws(state: &str) -> Option<Self> {
        Some(match state {
            "REQUESTED" => Self::Requested,
            "OPEN" => Self::Open,
            "CANCELED" => Self::Canceled,
            "ACCEPTED" => Self::Accepted,
            "DECLINED" => Self::Declined,
            "EXPIRED" => Self::Expired,
            _ => return None,
        })
    }

    /// The state as a label: `open`, `accepted`...
    pub fn code(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Open => "open",
            Self::Canceled => "canceled",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Expired => "expired",
        }
    }

    /// Still waiting for the account owner.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Requested | Self::Open)
    }
}

/// The invitation orglink sent (or adopted) for an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub handshake_id: HandshakeId,
    pub state: HandshakeState,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// As AWS gave it: never assumed.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub note: Option<String>,
    /// Reminder thresholds (days before expiry) already sent.
    #[serde(default)]
    pub reminded: Vec<u32>,
}

impl Invitation {
    /// The reminder due at `now` for `thresholds` (days before expiry), if
    /// any: the most urgent threshold passed and not yet reminded.
    pub fn reminder_due(&self, now: OffsetDateTime, thresholds: &[u32]) -> Option<u32> {
        if !self.state.is_open() || now >= self.expires_at {
            return None;
        }
        let left = self.expires_at - now;
        thresholds.iter().copied().filter(|t| left <= Duration::days(i64::from(*t)) && !self.reminded.contains(t)).min()
    }

    /// Every threshold at or above `threshold` counts as reminded: one
    /// message for all the thresholds a late run passed at once.
    pub fn mark_reminded(&mut self, threshold: u32, thresholds: &[u32]) {
        for t in thresholds.iter().copied().filter(|t| *t >= threshold) {
            if !self.reminded.contains(&t) {
                self.reminded.push(t);
            }
        }
    }

    /// Open on AWS's side but past its expiry by orglink's clock.
    pub fn overdue(&self, now: OffsetDateTime) -> bool {
        self.state.is_open() && now > self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn invitation() -> Invitation {
        Invitation {
            handshake_id: "h-abcdefgh12".parse().unwrap(),
            state: HandshakeState::Open,
            requested_at: datetime!(2026-11-01 00:00 UTC),
            expires_at: datetime!(2026-11-16 00:00 UTC),
            note: None,
            reminded: vec![],
        }
    }

    #[test]
    fn handshake_ids() {
        assert!("h-abcdefgh".parse::<HandshakeId>().is_ok());
        for bad in ["", "h-", "h-ABCDEFGH", "x-abcdefgh", "h-abc", &format!("h-{}", "a".repeat(33))] {
            assert!(bad.parse::<HandshakeId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn reminders_fire_once_per_threshold_and_a_late_run_sends_one() {
        let mut i = invitation();
        let thresholds = [7, 2];
        assert_eq!(i.reminder_due(datetime!(2026-11-08 00:00 UTC), &thresholds), None, "8 days left");
        assert_eq!(i.reminder_due(datetime!(2026-11-09 00:00 UTC), &thresholds), Some(7));
        i.mark_reminded(7, &thresholds);
        assert_eq!(i.reminder_due(datetime!(2026-11-10 00:00 UTC), &thresholds), None);
        assert_eq!(i.reminder_due(datetime!(2026-11-14 00:00 UTC), &thresholds), Some(2));
        i.mark_reminded(2, &thresholds);
        assert_eq!(i.reminder_due(datetime!(2026-11-15 00:00 UTC), &thresholds), None);
        assert_eq!(i.reminder_due(datetime!(2026-11-17 00:00 UTC), &thresholds), None, "expired: no reminder");

        let mut late = invitation();
        assert_eq!(late.reminder_due(datetime!(2026-11-15 00:00 UTC), &thresholds), Some(2), "the most urgent");
        late.mark_reminded(2, &thresholds);
        assert_eq!(late.reminder_due(datetime!(2026-11-15 06:00 UTC), &thresholds), None, "7 is not sent after 2");
    }

    #[test]
    fn overdue_is_open_past_expiry() {
        let mut i = invitation();
        assert!(!i.overdue(datetime!(2026-11-15 23:59 UTC)));
        assert!(i.overdue(datetime!(2026-11-16 00:01 UTC)));
        i.state = HandshakeState::Accepted;
        assert!(!i.overdue(datetime!(2026-11-20 00:00 UTC)));
    }

    proptest! {
        #[test]
        fn handshake_id_parsing_never_panics(input in "\\PC*") {
            let _ = input.parse::<HandshakeId>();
        }
    }
}

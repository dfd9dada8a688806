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

/// Why AWS would not send an invitation (`HandshakeConstraintViolation`).
/// Reasons AWS adds after this release keep their name in `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConstraintReason {
    AccountNumberLimitExceeded,
    AlreadyInAnOrganization,
    HandshakeRateLimitExceeded,
    InviteDisabledDuringEnableAllFeatures,
    LegacyPermissionsStillInUse,
    ManagementAccountEmailNotVerified,
    ManagementAccountPaymentInstrumentRequired,
    OrganizationAlreadyHasAllFeatures,
    OrganizationFromDifferentSellerOfRecord,
    OrganizationIsAlreadyPendingAllFeaturesMigration,
    OrganizationMembershipChangeRateLimitExceeded,
    PastDueInvoice,
    PaymentInstrumentRequired,
    ResponsibilityTransferAlreadyExists,
    SourceAndTargetCannotMatch,
    TargetAccountValidationFailure,
    UnusedPrepaymentBalance,
    Other(String),
}

impl ConstraintReason {
    const KNOWN: [Self; 17] = [
        Self::AccountNumberLimitExceeded,
        Self::AlreadyInAnOrganization,
        Self::HandshakeRateLimitExceeded,
        Self::InviteDisabledDuringEnableAllFeatures,
        Self::LegacyPermissionsStillInUse,
        Self::ManagementAccountEmailNotVerified,
        Self::ManagementAccountPaymentInstrumentRequired,
        Self::OrganizationAlreadyHasAllFeatures,
        Self::OrganizationFromDifferentSellerOfRecord,
        Self::OrganizationIsAlreadyPendingAllFeaturesMigration,
        Self::OrganizationMembershipChangeRateLimitExceeded,
        Self::PastDueInvoice,
        Self::PaymentInstrumentRequired,
        Self::ResponsibilityTransferAlreadyExists,
        Self::SourceAndTargetCannotMatch,
        Self::TargetAccountValidationFailure,
        Self::UnusedPrepaymentBalance,
    ];

    /// The reason as AWS names it.
    pub fn from_aws(reason: &str) -> Self {
        Self::KNOWN.into_iter().find(|known| known.code() == reason).unwrap_or_else(|| Self::Other(reason.to_owned()))
    }

    /// AWS's name for it (the templates' key).
    pub fn code(&self) -> &str {
        match self {
            Self::AccountNumberLimitExceeded => "ACCOUNT_NUMBER_LIMIT_EXCEEDED",
            Self::AlreadyInAnOrganization => "ALREADY_IN_AN_ORGANIZATION",
            Self::HandshakeRateLimitExceeded => "HANDSHAKE_RATE_LIMIT_EXCEEDED",
            Self::InviteDisabledDuringEnableAllFeatures => "INVITE_DISABLED_DURING_ENABLE_ALL_FEATURES",
            Self::LegacyPermissionsStillInUse => "LEGACY_PERMISSIONS_STILL_IN_USE",
            Self::ManagementAccountEmailNotVerified => "MANAGEMENT_ACCOUNT_EMAIL_NOT_VERIFIED",
            Self::ManagementAccountPaymentInstrumentRequired => "MANAGEMENT_ACCOUNT_PAYMENT_INSTRUMENT_REQUIRED",
            Self::OrganizationAlreadyHasAllFeatures => "ORGANIZATION_ALREADY_HAS_ALL_FEATURES",
            Self::OrganizationFromDifferentSellerOfRecord => "ORGANIZATION_FROM_DIFFERENT_SELLER_OF_RECORD",
            Self::OrganizationIsAlreadyPendingAllFeaturesMigration => {
                "ORGANIZATION_IS_ALREADY_PENDING_ALL_FEATURES_MIGRATION"
            }
            Self::OrganizationMembershipChangeRateLimitExceeded => "ORGANIZATION_MEMBERSHIP_CHANGE_RATE_LIMIT_EXCEEDED",
            Self::PastDueInvoice => "PAST_DUE_INVOICE",
            Self::PaymentInstrumentRequired => "PAYMENT_INSTRUMENT_REQUIRED",
            Self::ResponsibilityTransferAlreadyExists => "RESPONSIBILITY_TRANSFER_ALREADY_EXISTS",
            Self::SourceAndTargetCannotMatch => "SOURCE_AND_TARGET_CANNOT_MATCH",
            Self::TargetAccountValidationFailure => "TARGET_ACCOUNT_VALIDATION_FAILURE",
            Self::UnusedPrepaymentBalance => "UNUSED_PREPAYMENT_BALANCE",
            Self::Other(reason) => reason,
        }
    }
}

/// The invitation orglink sent (or adopted) for an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub handshake_id: HandshakeId,
    pub state: HandshakeState,
    #[serde(with = "crate::domain::instant")]
    pub requested_at: OffsetDateTime,
    /// As AWS gave it: never assumed.
    #[serde(with = "crate::domain::instant")]
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

    /// The state to record when AWS reports `reported` at `now`: still open
    /// after its own expiry means expired, whatever AWS's clock says.
    pub fn observed(&self, reported: HandshakeState, now: OffsetDateTime) -> HandshakeState {
        if reported.is_open() && now > self.expires_at { HandshakeState::Expired } else { reported }
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
    fn constraint_reasons_round_trip_and_keep_unknown_ones() {
        for known in ConstraintReason::KNOWN {
            assert_eq!(ConstraintReason::from_aws(known.code()), known);
        }
        assert_eq!(ConstraintReason::from_aws("ALREADY_IN_AN_ORGANIZATION"), ConstraintReason::AlreadyInAnOrganization);
        let new = ConstraintReason::from_aws("SOMETHING_AWS_ADDED");
        assert_eq!(new, ConstraintReason::Other("SOMETHING_AWS_ADDED".into()));
        assert_eq!(new.code(), "SOMETHING_AWS_ADDED");
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
    fn open_past_its_expiry_is_observed_expired() {
        let i = invitation();
        let before = datetime!(2026-11-15 23:59 UTC);
        let after = datetime!(2026-11-16 00:01 UTC);
        assert_eq!(i.observed(HandshakeState::Open, before), HandshakeState::Open);
        assert_eq!(i.observed(HandshakeState::Open, after), HandshakeState::Expired);
        assert_eq!(i.observed(HandshakeState::Requested, after), HandshakeState::Expired);
        assert_eq!(i.observed(HandshakeState::Accepted, after), HandshakeState::Accepted);
    }

    proptest! {
        #[test]
        fn handshake_id_parsing_never_panics(input in "\\PC*") {
            let _ = input.parse::<HandshakeId>();
        }
    }
}

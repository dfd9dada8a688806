//! The result of checking a customer's role: each check with its outcome,
//! and whether the whole makes "Verified".

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountId, AccountKind, AwsSupportTier};

/// The AssumeRole calls the confused-deputy guard makes once the role is
/// assumed: without an external ID, and with a wrong one.
pub const GUARD_ASSUME_ROLE_CALLS: u32 = 2;

/// The checks, in the order they are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckName {
    /// `sts:AssumeRole` with the account's external ID.
    AssumeRole,
    /// `sts:GetCallerIdentity` with the role's credentials names the account.
    CallerIdentity,
    /// Assuming the role without an external ID, and with a wrong one, fails
    /// (confused deputy). Checked before the role's credentials are used.
    ExternalIdRequired,
    /// The AWS managed policy ReadOnlyAccess is attached.
    ReadOnlyAccess,
    /// AWSSupportAccess is attached (optional, Business support only).
    SupportAccess,
    /// Not the management account of an organization (and not a member).
    Organization,
}

impl CheckName {
    pub const ALL: [CheckName; 6] = [
        Self::AssumeRole,
        Self::CallerIdentity,
        Self::ExternalIdRequired,
        Self::ReadOnlyAccess,
        Self::SupportAccess,
        Self::Organization,
    ];

    /// Whether "Verified" needs this check to pass.
    pub fn required(self) -> bool {
        !matches!(self, Self::SupportAccess)
    }
}

/// Why a check did not pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Problem {
    /// AWS refused (a missing role, a wrong external ID and an untrusted
    /// principal all look like this).
    AccessDenied,
    /// The role's credentials belong to another account.
    WrongAccount { reported: String },
    /// The role can be assumed without an external ID (whatever it does
    /// with a wrong one).
    ExternalIdNotRequired,
    /// The role can be assumed with an external ID that is not this
    /// account's (a wildcard, a negated or a list condition).
    AnyExternalIdAccepted,
    /// The policy is not attached.
    PolicyMissing,
    /// The account is the management account of its own organization.
    ManagementAccount,
    /// The account is a member of another organization.
    MemberOfAnotherOrganization,
    /// AWS could not be asked (throttled, unreachable, an unexpected error).
    Unavailable { detail: String },
}

/// Why AWS could not be asked about a role: orglink's problem, never the
/// customer's. A report with such a cause is no verdict on the role, so
/// nothing of it is recorded (the claim, its role and checklist stay as
/// they were) and the user is told to look at orglink, not at the role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Unasked {
    /// No credentials, AWS unreachable, throttled past the SDK's retries,
    /// or an error of AWS's own.
    Unavailable { detail: String },
    /// orglink runs as another AWS account than the platform's
    /// cross-account ID: every customer role refuses it, so an
    /// `AccessDenied` says nothing about the customer's role.
    OwnIdentity { own: String, expected: AccountId },
}

impl Unasked {
    /// The check AWS could not answer, if any: then the report is no
    /// verdict on the role.
    pub fn of(report: &VerificationReport) -> Option<Self> {
        report.checks.iter().find_map(|c| match &c.outcome {
            Outcome::Failed { problem: Problem::Unavailable { detail } }
            | Outcome::Warning { problem: Problem::Unavailable { detail } } => {
                Some(Self::Unavailable { detail: detail.clone() })
            }
            _ => None,
        })
    }

    /// Whether AssumeRole's refusal needs orglink's own identity checked
    /// before it can be the customer's: a refusal reads the same whether
    /// the role does not trust the platform or orglink is not the platform.
    pub fn needs_identity(report: &VerificationReport) -> bool {
        report.outcome(CheckName::AssumeRole) == Some(&Outcome::Failed { problem: Problem::AccessDenied })
    }

    /// orglink's own account (or why it could not be read) against the
    /// platform's cross-account ID: `None` when it is the platform.
    pub fn identity(own: Result<String, String>, cross_account_id: AccountId) -> Option<Self> {
        match own {
            Ok(own) if own == cross_account_id.as_str() => None,
            Ok(own) => Some(Self::OwnIdentity { own, expected: cross_account_id }),
            Err(detail) => Some(Self::Unavailable { detail }),
        }
    }
}

impl std::fmt::Display for Unasked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable { detail } => f.write_str(detail),
            Self::OwnIdentity { own, expected } => {
                write!(f, "orglink runs as AWS account {own}, not the platform's cross-account ID {expected}")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    /// Passed with something the user should know (does not block).
    Warning {
        problem: Problem,
    },
    Failed {
        problem: Problem,
    },
    NotApplicable,
    /// Not run because another check failed first (AssumeRole, or the
    /// external ID guard, which runs before the role's credentials are used).
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: CheckName,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationReport {
    pub account: AccountId,
    pub checks: Vec<Check>,
    /// What AWS Organizations says the account is, when it could tell.
    pub detected_kind: Option<AccountKind>,
    /// AssumeRole attempts made (retries of a fresh role included).
    pub attempts: u32,
    #[serde(with = "crate::domain::instant")]
    pub checked_at: OffsetDateTime,
    pub duration_ms: u64,
    /// What AWS says of the account's support tier (asked only with a role
    /// that has AWSSupportAccess); never a reason the role fails. Last, with
    /// a default: a check stored before it was asked reads as
    /// [`TierNotChecked::Earlier`](super::TierNotChecked::Earlier).
    #[serde(default)]
    pub support_tier: AwsSupportTier,
}

impl VerificationReport {
    /// Every required check passed (warnings allowed).
    pub fn verified(&self) -> bool {
        CheckName::ALL.iter().filter(|n| n.required()).all(|name| {
            self.checks
                .iter()
                .any(|c| c.name == *name && matches!(c.outcome, Outcome::Passed | Outcome::Warning { .. }))
        })
    }

    pub fn outcome(&self, name: CheckName) -> Option<&Outcome> {
        self.checks.iter().find(|c| c.name == name).map(|c| &c.outcome)
    }

    /// The `sts:AssumeRole` calls the check made: every attempt with the
    /// external ID and, once the role was assumed, the guard's two (without
    /// an external ID and with a wrong one).
    pub fn assume_role_calls(&self) -> u32 {
        let guard =
            if self.outcome(CheckName::AssumeRole) == Some(&Outcome::Passed) { GUARD_ASSUME_ROLE_CALLS } else { 0 };
        self.attempts + guard
    }

    /// The account is a management account: it cannot be invited.
    pub fn management_account(&self) -> bool {
        self.detected_kind == Some(AccountKind::Management)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcomes: Vec<(CheckName, Outcome)>) -> VerificationReport {
        VerificationReport {
            account: "123456789012".parse().unwrap(),
            checks: outcomes.into_iter().map(|(name, outcome)| Check { name, outcome }).collect(),
            detected_kind: None,
            attempts: 1,
            checked_at: OffsetDateTime::UNIX_EPOCH,
            duration_ms: 0,
            support_tier: AwsSupportTier::default(),
        }
    }

    #[test]
    fn the_support_tier_is_stored_with_the_check_and_older_checks_read_without_it() {
        use crate::domain::TierNotChecked;
        use crate::store::codec::{decode, encode};
        let all_passed: Vec<_> = CheckName::ALL.iter().map(|n| (*n, Outcome::Passed)).collect();
        for tier in [
            AwsSupportTier::BusinessOrHigher,
            AwsSupportTier::BasicOrDeveloper,
            AwsSupportTier::not_checked(TierNotChecked::NoSupportAccess),
            AwsSupportTier::not_checked(TierNotChecked::Unavailable { detail: "throttled".into() }),
        ] {
            let report = VerificationReport { support_tier: tier, ..report(all_passed.clone()) };
            assert_eq!(decode::<VerificationReport>(&encode(&report)).unwrap(), report);
            let json = serde_json::to_string(&report).unwrap();
            assert_eq!(serde_json::from_str::<VerificationReport>(&json).unwrap(), report);
        }
        // A report as orglink stored it before the field: the same fields,
        // in order, without the last.
        #[derive(Serialize)]
        struct Before<'a> {
            account: AccountId,
            checks: &'a [Check],
            detected_kind: Option<AccountKind>,
            attempts: u32,
            #[serde(with = "crate::domain::instant")]
            checked_at: OffsetDateTime,
            duration_ms: u64,
        }
        let now = report(all_passed);
        let before = Before {
            account: now.account,
            checks: &now.checks,
            detected_kind: now.detected_kind,
            attempts: now.attempts,
            checked_at: now.checked_at,
            duration_ms: now.duration_ms,
        };
        let read = decode::<VerificationReport>(&encode(&before)).unwrap();
        assert_eq!(read.support_tier, AwsSupportTier::not_checked(TierNotChecked::Earlier));
        assert_eq!(read, now);
    }

    #[test]
    fn only_a_report_aws_answered_as_the_platform_is_a_verdict() {
        let cross: AccountId = "123456789012".parse().unwrap();
        let mut checks: Vec<_> = CheckName::ALL.iter().map(|n| (*n, Outcome::Skipped)).collect();
        let unavailable = Problem::Unavailable { detail: "dispatch failure".into() };
        checks[0].1 = Outcome::Failed { problem: unavailable.clone() };
        assert_eq!(
            Unasked::of(&report(checks.clone())),
            Some(Unasked::Unavailable { detail: "dispatch failure".into() })
        );
        assert!(!Unasked::needs_identity(&report(checks.clone())));
        // A refusal is the customer's only when orglink is the platform.
        checks[0].1 = Outcome::Failed { problem: Problem::AccessDenied };
        assert_eq!(Unasked::of(&report(checks.clone())), None);
        assert!(Unasked::needs_identity(&report(checks.clone())));
        assert_eq!(Unasked::identity(Ok("123456789012".into()), cross), None);
        assert_eq!(
            Unasked::identity(Ok("333300000001".into()), cross),
            Some(Unasked::OwnIdentity { own: "333300000001".into(), expected: cross })
        );
        assert_eq!(
            Unasked::identity(Err("no creds".into()), cross),
            Some(Unasked::Unavailable { detail: "no creds".into() })
        );
        // Past AssumeRole, any check AWS could not answer.
        let mut passed: Vec<_> = CheckName::ALL.iter().map(|n| (*n, Outcome::Passed)).collect();
        assert!(!Unasked::needs_identity(&report(passed.clone())));
        passed[3].1 = Outcome::Failed { problem: unavailable };
        assert!(matches!(Unasked::of(&report(passed)), Some(Unasked::Unavailable { .. })));
    }

    #[test]
    fn verified_needs_every_required_check() {
        let all_passed: Vec<_> = CheckName::ALL.iter().map(|n| (*n, Outcome::Passed)).collect();
        assert!(report(all_passed.clone()).verified());

        let mut support_missing = all_passed.clone();
        support_missing[4].1 = Outcome::Warning { problem: Problem::PolicyMissing };
        assert!(report(support_missing).verified(), "AWSSupportAccess is optional");

        let mut member = all_passed.clone();
        member[5].1 = Outcome::Warning { problem: Problem::MemberOfAnotherOrganization };
        assert!(report(member).verified(), "a member account is a warning");

        for i in [0, 1, 2, 3, 5] {
            let mut failed = all_passed.clone();
            failed[i].1 = Outcome::Failed { problem: Problem::AccessDenied };
            assert!(!report(failed).verified(), "{:?}", all_passed[i].0);
            let mut skipped = all_passed.clone();
            skipped[i].1 = Outcome::Skipped;
            assert!(!report(skipped).verified());
        }
        assert!(!report(vec![]).verified());
    }
}

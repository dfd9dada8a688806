//! Accounts and reports with pinned values, for tests that need one without
//! going through AWS.

use orglink::domain::{Account, AccountId, AccountKind, ExternalId, ExternalIdPrefix, NewAccount, SupportTier};
use orglink::store::{By, Store};
use time::OffsetDateTime;
use time::macros::datetime;

/// The instant sample accounts are registered at.
pub const REGISTERED_AT: OffsetDateTime = datetime!(2026-11-26 09:30 UTC);

/// What a reseller registers for `id`: customer "Acme", standalone.
pub fn new_account(id: &str, tenant: &str, tier: SupportTier) -> NewAccount {
    NewAccount {
        id: id.parse().unwrap(),
        tenant: tenant.parse().unwrap(),
        customer: "Acme".parse().unwrap(),
        root_email: None,
        support_tier: tier,
        kind: AccountKind::Standalone,
        price_book: None,
    }
}

/// A registered account with pinned values, for snapshots.
pub fn sample_account(id: &str, tier: SupportTier) -> Account {
    let new = NewAccount {
        id: id.parse::<AccountId>().unwrap(),
        tenant: "acme".parse().unwrap(),
        customer: "Acme Corp".parse().unwrap(),
        root_email: Some("aws-root@acme.example".parse().unwrap()),
        support_tier: tier,
        kind: AccountKind::Standalone,
        price_book: None,
    };
    let external_id = ExternalId::from_entropy(&ExternalIdPrefix::default(), [7; 13]);
    Account::register(new, external_id, REGISTERED_AT).unwrap().0
}

/// Registers `id` (tenant acme, Basic support) with a verified role and an
/// open invitation `handshake` sent at `sent`, expiring at `expires`.
pub fn invited(store: &Store, id: &str, handshake: &str, sent: OffsetDateTime, expires: OffsetDateTime) {
    use orglink::domain::{HandshakeState, Invitation, RoleRecord, Transition};
    let app = orglink::app::App::new(
        store.clone(),
        orglink::app::Settings::default(),
        std::sync::Arc::new(orglink::clock::ManualClock::new(sent)),
    );
    app.handle(
        &orglink::app::Actor::operator("test"),
        orglink::app::Command::AddAccount(new_account(id, "acme", SupportTier::Basic)),
    )
    .unwrap();
    app.update_account(id.parse().unwrap(), &"acme".parse().unwrap(), By::new("test", "setup", sent), &[], |a| {
        a.role = Some(RoleRecord {
            arn: format!("arn:aws:iam::{id}:role/R").parse().unwrap(),
            description: None,
            recorded_at: sent,
            verified_at: Some(sent),
            report: None,
        });
        let mut events = a.apply(&Transition::RoleVerified, sent)?;
        let invitation = Invitation {
            handshake_id: handshake.parse().unwrap(),
            state: HandshakeState::Open,
            requested_at: sent,
            expires_at: expires,
            note: None,
            reminded: vec![],
        };
        events.extend(a.invitation_sent(invitation, sent)?);
        Ok::<_, orglink::domain::IllegalTransition>(events)
    })
    .unwrap();
}

/// A report of the role of `account` in which `failed` checks failed with
/// their problems and every other check passed.
pub fn verification_report(
    account: AccountId,
    failed: &[(orglink::domain::CheckName, orglink::domain::Problem)],
) -> orglink::domain::VerificationReport {
    use orglink::domain::{Check, CheckName, Outcome};
    let checks = CheckName::ALL
        .into_iter()
        .map(|name| match failed.iter().find(|(n, _)| *n == name) {
            Some((_, problem)) => Check { name, outcome: Outcome::Failed { problem: problem.clone() } },
            None => Check { name, outcome: Outcome::Passed },
        })
        .collect();
    use orglink::domain::TierNotChecked;
    // The role's credentials were used for nothing else.
    let role_not_checked = failed.iter().any(|(name, _)| {
        matches!(name, CheckName::AssumeRole | CheckName::ExternalIdRequired | CheckName::CallerIdentity)
    });
    orglink::domain::VerificationReport {
        account,
        checks,
        detected_kind: Some(AccountKind::Standalone),
        attempts: 1,
        checked_at: REGISTERED_AT,
        duration_ms: 42,
        support_tier: orglink::domain::AwsSupportTier::not_checked(if role_not_checked {
            TierNotChecked::RoleNotChecked
        } else {
            // A role without AWSSupportAccess: AWS is not asked.
            TierNotChecked::NoSupportAccess
        }),
    }
}

/// Applies a domain change to an account in `store` as the app records it
/// (with its effects and due times), for setting up a state directly.
pub fn change<E: std::fmt::Debug>(
    store: &Store,
    id: &str,
    action: &str,
    at: OffsetDateTime,
    change: impl Fn(&mut orglink::domain::Account) -> Result<Vec<orglink::domain::Event>, E>,
) -> (orglink::domain::Account, Vec<orglink::domain::Event>) {
    let app = orglink::app::App::new(
        store.clone(),
        orglink::app::Settings::default(),
        std::sync::Arc::new(orglink::clock::ManualClock::new(at)),
    );
    let tenant = store.account(id.parse().unwrap()).unwrap().expect("registered").tenant;
    app.update_account(id.parse().unwrap(), &tenant, By::new("test", action, at), &[], change).unwrap()
}

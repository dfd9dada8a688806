//! Role verification against a local AWS emulator (fakecloud), which
//! enforces trust policies and external IDs like AWS does.

use crate::harness;
use crate::harness::aws as aws_harness;

use std::sync::Arc;
use std::time::Duration;

use aws_harness::*;
use orglink::app::{Actor, App, AppError, Command, Settings, Tone, UserError, VerificationView};
use orglink::aws::{Aws, RetryPolicy};
use orglink::clock::SystemClock;
use orglink::domain::{AccountKind, CheckName, LinkState, Outcome, Problem, SupportTier};
use orglink::store::Store;

struct Platform {
    app: App,
    store: Store,
}

async fn platform() -> Platform {
    let e = emulator();
    let keys = e.admin(PLATFORM, "orglink").await;
    let aws = Aws::new(e.sdk_config(&keys), RetryPolicy { retries: 1, first_delay: Duration::from_millis(20) });
    let store = Store::temporary().unwrap();
    let settings = Settings { cross_account_id: PLATFORM.parse().unwrap(), ..Settings::default() };
    let app = App::new(store.clone(), settings, Arc::new(SystemClock)).with_aws(aws);
    Platform { app, store }
}

fn operator() -> Actor {
    Actor::operator("test")
}

impl Platform {
    fn register(&self, account: &str, tier: SupportTier) -> String {
        let new = harness::new_account(account, "acme", tier);
        self.app.handle(&operator(), Command::AddAccount(new)).unwrap();
        self.store.account(account.parse().unwrap()).unwrap().unwrap().external_id.to_string()
    }

    async fn verify(&self, account: &str, arn: &str) -> Result<VerificationView, AppError> {
        let command = Command::VerifyRole {
            account: account.parse().unwrap(),
            arn: Some(arn.parse().unwrap()),
            description: None,
        };
        let reply = self.app.execute(&operator(), command).await?;
        let view: VerificationView = match &reply.messages[0] {
            orglink::app::Message::Verification(v) => (**v).clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(reply.tone == Tone::Error, !view.verified || view.report.management_account());
        Ok(view)
    }
}

fn outcome(view: &VerificationView, name: CheckName) -> Outcome {
    view.report.outcome(name).unwrap().clone()
}

#[tokio::test]
async fn the_role_the_instructions_describe_is_verified() {
    let p = platform().await;
    let external_id = p.register("111100000001", SupportTier::Developer);
    let customer = Customer::new("111100000001").await;
    let arn = customer.create_instructed_role(&external_id).await;
    let view = p.verify("111100000001", &arn).await.unwrap();
    assert!(view.verified, "{:#?}", view.report);
    for name in [
        CheckName::AssumeRole,
        CheckName::CallerIdentity,
        CheckName::ExternalIdRequired,
        CheckName::ReadOnlyAccess,
        CheckName::Organization,
    ] {
        assert_eq!(outcome(&view, name), Outcome::Passed, "{name:?}");
    }
    assert_eq!(outcome(&view, CheckName::SupportAccess), Outcome::NotApplicable);
    let account = p.store.account("111100000001".parse().unwrap()).unwrap().unwrap();
    assert_eq!(account.state, LinkState::RoleVerified);
    assert_eq!(account.kind, AccountKind::Standalone);
    let role = account.role.unwrap();
    assert!(role.verified_at.is_some());
    assert_eq!(role.report.unwrap().attempts, 1);
    println!("verify latency against the emulator: {} ms", view.report.duration_ms);
}

#[tokio::test]
async fn business_support_reports_the_optional_support_policy() {
    let p = platform().await;
    let external_id = p.register("111100000002", SupportTier::Business);
    let customer = Customer::new("111100000002").await;
    let arn = customer
        .create_role(
            "WithSupport",
            PLATFORM,
            Some(external_id_condition(&external_id)),
            &["ReadOnlyAccess", "AWSSupportAccess"],
        )
        .await;
    let view = p.verify("111100000002", &arn).await.unwrap();
    assert!(view.verified);
    assert_eq!(outcome(&view, CheckName::SupportAccess), Outcome::Passed);
    let arn = customer
        .create_role("NoSupport", PLATFORM, Some(external_id_condition(&external_id)), &["ReadOnlyAccess"])
        .await;
    let view = p.verify("111100000002", &arn).await.unwrap();
    assert!(view.verified, "AWSSupportAccess is optional");
    assert_eq!(outcome(&view, CheckName::SupportAccess), Outcome::Warning { problem: Problem::PolicyMissing });
}

#[tokio::test]
async fn a_wrong_external_id_is_no_access_after_retries() {
    let p = platform().await;
    p.register("111100000003", SupportTier::Basic);
    let customer = Customer::new("111100000003").await;
    let arn = customer.create_instructed_role("CAWRONGWRONGWRONG").await;
    let view = p.verify("111100000003", &arn).await.unwrap();
    assert!(!view.verified);
    assert_eq!(outcome(&view, CheckName::AssumeRole), Outcome::Failed { problem: Problem::AccessDenied });
    assert_eq!(view.report.attempts, 2, "one try and one retry");
    assert_eq!(outcome(&view, CheckName::ReadOnlyAccess), Outcome::Skipped);
    assert_eq!(p.store.account("111100000003".parse().unwrap()).unwrap().unwrap().state, LinkState::Registered);
}

#[tokio::test]
async fn a_role_without_the_external_id_condition_fails_the_confused_deputy_guard() {
    let p = platform().await;
    p.register("111100000004", SupportTier::Basic);
    let customer = Customer::new("111100000004").await;
    let arn = customer.create_role("Open", PLATFORM, None, &["ReadOnlyAccess"]).await;
    let view = p.verify("111100000004", &arn).await.unwrap();
    assert!(!view.verified);
    assert_eq!(outcome(&view, CheckName::AssumeRole), Outcome::Passed);
    assert_eq!(
        outcome(&view, CheckName::ExternalIdRequired),
        Outcome::Failed { problem: Problem::ExternalIdNotRequired }
    );
    assert!(view.external_id_condition.contains(view.external_id.as_str()));
}

#[tokio::test]
async fn a_role_without_read_only_access_is_not_verified() {
    let p = platform().await;
    let external_id = p.register("111100000005", SupportTier::Basic);
    let customer = Customer::new("111100000005").await;
    let arn = customer.create_role("NoPolicy", PLATFORM, Some(external_id_condition(&external_id)), &[]).await;
    let view = p.verify("111100000005", &arn).await.unwrap();
    assert!(!view.verified);
    assert_eq!(outcome(&view, CheckName::ReadOnlyAccess), Outcome::Failed { problem: Problem::PolicyMissing });
}

#[tokio::test]
async fn a_missing_role_and_foreign_arns_are_refused() {
    let p = platform().await;
    p.register("111100000006", SupportTier::Basic);
    Customer::new("111100000006").await;
    let view = p.verify("111100000006", "arn:aws:iam::111100000006:role/NeverCreated").await.unwrap();
    assert_eq!(outcome(&view, CheckName::AssumeRole), Outcome::Failed { problem: Problem::AccessDenied });

    let err = p.verify("111100000006", "arn:aws:iam::999999999999:role/OrgLinkReadOnly").await.unwrap_err();
    assert!(matches!(err, AppError::User(UserError::ArnAccountMismatch { .. })), "{err:?}");
}

#[tokio::test]
async fn a_management_account_is_blocked_and_a_member_warned() {
    let p = platform().await;
    // The customer's account runs its own organization.
    let external_id = p.register("111100000007", SupportTier::Basic);
    let customer = Customer::new("111100000007").await;
    customer.organizations.create_organization().send().await.unwrap();
    let arn = customer.create_instructed_role(&external_id).await;
    let view = p.verify("111100000007", &arn).await.unwrap();
    assert!(!view.verified);
    assert_eq!(outcome(&view, CheckName::Organization), Outcome::Failed { problem: Problem::ManagementAccount });
    let account = p.store.account("111100000007".parse().unwrap()).unwrap().unwrap();
    assert_eq!(account.kind, AccountKind::Management);
    assert!(matches!(account.state, LinkState::Blocked { .. }));

    // Another account's organization invites this one, which accepts.
    let external_id = p.register("111100000008", SupportTier::Basic);
    let member = Customer::new("111100000008").await;
    let other = Customer::new("111100000009").await;
    other.organizations.create_organization().send().await.unwrap();
    let handshake = other
        .organizations
        .invite_account_to_organization()
        .target(
            aws_sdk_organizations::types::HandshakeParty::builder()
                .id("111100000008")
                .r#type(aws_sdk_organizations::types::HandshakePartyType::Account)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    member
        .organizations
        .accept_handshake()
        .handshake_id(handshake.handshake().unwrap().id().unwrap())
        .send()
        .await
        .unwrap();
    let arn = member.create_instructed_role(&external_id).await;
    let view = p.verify("111100000008", &arn).await.unwrap();
    assert!(view.verified, "a member can be verified, with a warning");
    assert_eq!(
        outcome(&view, CheckName::Organization),
        Outcome::Warning { problem: Problem::MemberOfAnotherOrganization }
    );
    assert_eq!(p.store.account("111100000008".parse().unwrap()).unwrap().unwrap().kind, AccountKind::Member);
}

fn cli(data_dir: &std::path::Path, keys: &Keys, args: &[&str]) -> (i32, String, String) {
    run_orglink(env!("CARGO_BIN_EXE_orglink"), data_dir, keys, args)
}

#[tokio::test]
async fn the_cli_verifies_with_exit_codes_for_each_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let platform_keys = emulator().admin(PLATFORM, "orglink-cli").await;
    let (code, _, err) = cli(
        dir.path(),
        &platform_keys,
        &["account", "add", "111100000010", "--tenant", "acme", "--customer", "Acme", "--support", "basic"],
    );
    assert_eq!(code, 0, "{err}");
    let external_id =
        Store::open(dir.path()).unwrap().account("111100000010".parse().unwrap()).unwrap().unwrap().external_id;
    let customer = Customer::new("111100000010").await;
    let open = customer.create_role("Open", PLATFORM, None, &["ReadOnlyAccess"]).await;

    // Not verified: exit 3, with what to fix.
    let (code, _, err) = cli(dir.path(), &platform_keys, &["verify", "111100000010", &open]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("No Access") && err.contains("sts:ExternalId") && err.contains(external_id.as_str()), "{err}");

    // Pasted with stray spaces and a zero-width space: verified, exit 0.
    let arn = customer.create_instructed_role(external_id.as_str()).await;
    let pasted = format!(" \u{200b}{arn}\u{a0}\n");
    let (code, out, err) = cli(dir.path(), &platform_keys, &["verify", "111100000010", &pasted, "--lang", "es"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Verificado"), "{out}");

    // --json carries the report.
    let (code, out, _) = cli(dir.path(), &platform_keys, &["verify", "111100000010", &arn, "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["verified"], true);
    assert_eq!(json["report"]["checks"].as_array().unwrap().len(), 6);

    // Invalid input: exit 2, AWS is not asked.
    for (bad, expected) in [
        ("arn:aws:iam::111100000010:user/alice", "ARN of an IAM user"),
        ("arn:aws:iam::999999999999:role/OrgLinkReadOnly", "belongs to AWS account `999999999999`"),
    ] {
        let (code, _, err) = cli(dir.path(), &platform_keys, &["verify", "111100000010", bad]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains(expected), "{err}");
    }
}

#[tokio::test]
async fn doctor_checks_the_aws_identity() {
    let dir = tempfile::tempdir().unwrap();
    let platform_keys = emulator().admin(PLATFORM, "orglink-doctor").await;
    let (code, out, _) = cli(dir.path(), &platform_keys, &["doctor"]);
    assert_eq!(code, 1, "no Discord transport is configured: {out}");
    assert!(
        out.contains(&format!("AWS identity: account {PLATFORM}")) && !out.contains("but customer roles trust"),
        "{out}"
    );
    let other = emulator().admin("333300000001", "someone").await;
    let (code, out, _) = cli(dir.path(), &other, &["doctor"]);
    assert_eq!(code, 1);
    assert!(out.contains("but customer roles trust 123456789012"), "{out}");
}

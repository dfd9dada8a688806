//! Role verification against a local AWS emulator (fakecloud), which
//! enforces trust policies and external IDs like AWS does.

use std::time::Duration;

use orglink::app::{AppError, UserError, VerificationView};
use orglink::aws::RetryPolicy;
use orglink::domain::{AccountKind, CheckName, LinkState, Outcome, Problem, SupportTier};

use crate::harness::{Customer, Harness, Orglink, PLATFORM, emulator, external_id_condition};

/// orglink's app with AWS: one retry of AccessDenied, 20 ms apart.
async fn platform() -> Harness {
    Harness::new().aws(RetryPolicy { retries: 1, first_delay: Duration::from_millis(20) }).start().await
}

fn outcome(view: &VerificationView, name: CheckName) -> Outcome {
    view.report.outcome(name).unwrap().clone()
}

#[tokio::test]
async fn the_role_the_instructions_describe_is_verified() {
    let h = platform().await;
    h.register("111100000001", SupportTier::Developer);
    let (_, arn) = h.role_for("111100000001").await;
    let view = h.verify("111100000001", &arn).await.unwrap();
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
    let account = h.account("111100000001");
    assert_eq!(account.state, LinkState::RoleVerified);
    assert_eq!(account.kind, AccountKind::Standalone);
    let role = account.role.unwrap();
    assert!(role.verified_at.is_some());
    assert_eq!(role.report.unwrap().attempts, 1);
    assert_eq!(h.notified("111100000001"), ["account_registered", "role_verified"]);
    println!("verify latency against the emulator: {} ms", view.report.duration_ms);
    h.finish().await;
}

#[tokio::test]
async fn business_support_reports_the_optional_support_policy() {
    let h = platform().await;
    let external_id = h.register("111100000002", SupportTier::Business);
    let customer = Customer::new("111100000002").await;
    let arn = customer
        .create_role(
            "WithSupport",
            PLATFORM,
            Some(external_id_condition(&external_id)),
            &["ReadOnlyAccess", "AWSSupportAccess"],
        )
        .await;
    let view = h.verify("111100000002", &arn).await.unwrap();
    assert!(view.verified);
    assert_eq!(outcome(&view, CheckName::SupportAccess), Outcome::Passed);
    let arn = customer
        .create_role("NoSupport", PLATFORM, Some(external_id_condition(&external_id)), &["ReadOnlyAccess"])
        .await;
    let view = h.verify("111100000002", &arn).await.unwrap();
    assert!(view.verified, "AWSSupportAccess is optional");
    assert_eq!(outcome(&view, CheckName::SupportAccess), Outcome::Warning { problem: Problem::PolicyMissing });
    // A new role replaces the verified one: it is verified (and told) anew.
    assert_eq!(h.notified("111100000002"), ["account_registered", "role_verified", "role_verified"]);
    h.finish().await;
}

#[tokio::test]
async fn a_wrong_external_id_is_no_access_after_retries() {
    let h = platform().await;
    h.register("111100000003", SupportTier::Basic);
    let customer = Customer::new("111100000003").await;
    let arn = customer.create_instructed_role("CAWRONGWRONGWRONG").await;
    let view = h.verify("111100000003", &arn).await.unwrap();
    assert!(!view.verified);
    assert_eq!(outcome(&view, CheckName::AssumeRole), Outcome::Failed { problem: Problem::AccessDenied });
    assert_eq!(view.report.attempts, 2, "one try and one retry");
    assert_eq!(outcome(&view, CheckName::ReadOnlyAccess), Outcome::Skipped);
    assert_eq!(h.account("111100000003").state, LinkState::Registered);
    assert_eq!(h.notified("111100000003"), ["account_registered"]);
    h.finish().await;
}

#[tokio::test]
async fn a_role_without_the_external_id_condition_fails_the_confused_deputy_guard() {
    let h = platform().await;
    h.register("111100000004", SupportTier::Basic);
    let customer = Customer::new("111100000004").await;
    let arn = customer.create_role("Open", PLATFORM, None, &["ReadOnlyAccess"]).await;
    let view = h.verify("111100000004", &arn).await.unwrap();
    assert!(!view.verified);
    assert_eq!(outcome(&view, CheckName::AssumeRole), Outcome::Passed);
    assert_eq!(
        outcome(&view, CheckName::ExternalIdRequired),
        Outcome::Failed { problem: Problem::ExternalIdNotRequired }
    );
    assert!(view.external_id_condition.contains(view.external_id.as_str()));
    assert_eq!(h.notified("111100000004"), ["account_registered"]);
    h.finish().await;
}

#[tokio::test]
async fn a_role_without_read_only_access_is_not_verified() {
    let h = platform().await;
    let external_id = h.register("111100000005", SupportTier::Basic);
    let customer = Customer::new("111100000005").await;
    let arn = customer.create_role("NoPolicy", PLATFORM, Some(external_id_condition(&external_id)), &[]).await;
    let view = h.verify("111100000005", &arn).await.unwrap();
    assert!(!view.verified);
    assert_eq!(outcome(&view, CheckName::ReadOnlyAccess), Outcome::Failed { problem: Problem::PolicyMissing });
    assert_eq!(h.notified("111100000005"), ["account_registered"]);
    h.finish().await;
}

#[tokio::test]
async fn a_missing_role_and_foreign_arns_are_refused() {
    let h = platform().await;
    h.register("111100000006", SupportTier::Basic);
    Customer::new("111100000006").await;
    let view = h.verify("111100000006", "arn:aws:iam::111100000006:role/NeverCreated").await.unwrap();
    assert_eq!(outcome(&view, CheckName::AssumeRole), Outcome::Failed { problem: Problem::AccessDenied });

    let err = h.verify("111100000006", "arn:aws:iam::999999999999:role/OrgLinkReadOnly").await.unwrap_err();
    assert!(matches!(err, AppError::User(UserError::ArnAccountMismatch { .. })), "{err:?}");
    assert_eq!(h.notified("111100000006"), ["account_registered"]);
    h.finish().await;
}

#[tokio::test]
async fn a_management_account_is_blocked_and_a_member_warned() {
    let h = platform().await;
    // The customer's account runs its own organization.
    let external_id = h.register("111100000007", SupportTier::Basic);
    let customer = Customer::new("111100000007").await;
    customer.organizations.create_organization().send().await.unwrap();
    let arn = customer.create_instructed_role(&external_id).await;
    let view = h.verify("111100000007", &arn).await.unwrap();
    assert!(!view.verified);
    assert_eq!(outcome(&view, CheckName::Organization), Outcome::Failed { problem: Problem::ManagementAccount });
    let account = h.account("111100000007");
    assert_eq!(account.kind, AccountKind::Management);
    assert!(matches!(account.state, LinkState::Blocked { .. }));

    // Another account's organization invites this one, which accepts.
    let external_id = h.register("111100000008", SupportTier::Basic);
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
    let view = h.verify("111100000008", &arn).await.unwrap();
    assert!(view.verified, "a member can be verified, with a warning");
    assert_eq!(
        outcome(&view, CheckName::Organization),
        Outcome::Warning { problem: Problem::MemberOfAnotherOrganization }
    );
    assert_eq!(h.account("111100000008").kind, AccountKind::Member);
    assert_eq!(h.notified("111100000007"), ["account_registered", "account_blocked"]);
    assert_eq!(h.notified("111100000008"), ["account_registered", "role_verified"]);
    h.finish().await;
}

#[tokio::test]
async fn the_cli_verifies_with_exit_codes_for_each_outcome() {
    let o = Orglink::new().aws(&emulator().admin(PLATFORM, "orglink-cli").await);
    o.ok(&["account", "add", "111100000010", "--tenant", "acme", "--customer", "Acme", "--support", "basic"]);
    let external_id = o.account("111100000010").unwrap().external_id;
    let customer = Customer::new("111100000010").await;
    let open = customer.create_role("Open", PLATFORM, None, &["ReadOnlyAccess"]).await;

    // Not verified: exit 3, with what to fix.
    let run = o.run(&["verify", "111100000010", &open]);
    assert_eq!(run.code, 3, "{run:?}");
    let err = &run.stderr;
    assert!(err.contains("No Access") && err.contains("sts:ExternalId") && err.contains(external_id.as_str()), "{err}");

    // Pasted with stray spaces and a zero-width space: verified, exit 0.
    let arn = customer.create_instructed_role(external_id.as_str()).await;
    let pasted = format!(" \u{200b}{arn}\u{a0}\n");
    let out = o.ok(&["verify", "111100000010", &pasted, "--lang", "es"]);
    assert!(out.contains("Verificado"), "{out}");

    // --json carries the report.
    let out = o.ok(&["verify", "111100000010", &arn, "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["verified"], true);
    assert_eq!(json["report"]["checks"].as_array().unwrap().len(), 6);

    // Invalid input: exit 2, AWS is not asked.
    for (bad, expected) in [
        ("arn:aws:iam::111100000010:user/alice", "ARN of an IAM user"),
        ("arn:aws:iam::999999999999:role/OrgLinkReadOnly", "belongs to AWS account `999999999999`"),
    ] {
        let run = o.run(&["verify", "111100000010", bad]);
        assert_eq!(run.code, 2, "{bad}: {run:?}");
        assert!(run.stderr.contains(expected), "{}", run.stderr);
    }
}

#[tokio::test]
async fn doctor_checks_the_aws_identity() {
    let run = Orglink::new().aws(&emulator().admin(PLATFORM, "orglink-doctor").await).run(&["doctor"]);
    let out = &run.stdout;
    assert_eq!(run.code, 1, "no Discord transport is configured: {out}");
    assert!(
        out.contains(&format!("AWS identity: account {PLATFORM}")) && !out.contains("but customer roles trust"),
        "{out}"
    );
    let other = emulator().admin("333300000001", "someone").await;
    let run = Orglink::new().aws(&other).run(&["doctor"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("but customer roles trust 123456789012"), "{}", run.stdout);
}

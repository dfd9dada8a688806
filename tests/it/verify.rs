//! Role verification against a local AWS emulator (fakecloud), which
//! enforces trust policies and external IDs like AWS does.

use std::time::Duration;

use orglink::app::{AppError, UserError, VerificationView};
use orglink::aws::RetryPolicy;
use orglink::domain::{
    AccountKind, AwsSupportTier, CheckName, LinkState, Outcome, Problem, SupportTier, TierNotChecked,
};

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
    // With AWSSupportAccess, AWS is asked for the tier with the role: the
    // emulator's Support API answers every account as supported.
    assert_eq!(view.report.support_tier, AwsSupportTier::BusinessOrHigher, "{:#?}", view.report);
    assert!(!view.account.support_tier_mismatch);
    let arn = customer
        .create_role("NoSupport", PLATFORM, Some(external_id_condition(&external_id)), &["ReadOnlyAccess"])
        .await;
    let view = h.verify("111100000002", &arn).await.unwrap();
    assert!(view.verified, "AWSSupportAccess is optional");
    assert_eq!(outcome(&view, CheckName::SupportAccess), Outcome::Warning { problem: Problem::PolicyMissing });
    // Without it, AWS is not asked: the declared tier stands.
    assert_eq!(view.report.support_tier, AwsSupportTier::not_checked(TierNotChecked::NoSupportAccess));
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

/// Trust policy conditions on `sts:ExternalId` that let a caller in the
/// platform's account assume the role without this account's external ID,
/// and the problem each is reported as. fakecloud evaluates every one of
/// these operators as AWS does (a negated operator matches a missing key).
fn open_conditions() -> Vec<(&'static str, Option<serde_json::Value>, Problem)> {
    use serde_json::json;
    vec![
        ("no condition", None, Problem::ExternalIdNotRequired),
        ("StringLike *", Some(json!({ "StringLike": { "sts:ExternalId": "*" } })), Problem::AnyExternalIdAccepted),
        (
            "StringNotEquals a dummy",
            Some(json!({ "StringNotEquals": { "sts:ExternalId": "dummy" } })),
            Problem::ExternalIdNotRequired,
        ),
        (
            "StringLike a list with *",
            Some(json!({ "StringLike": { "sts:ExternalId": ["abc", "*"] } })),
            Problem::AnyExternalIdAccepted,
        ),
        // Every ID orglink issues has the prefix: another tenant's too.
        (
            "StringLike the prefix",
            Some(json!({ "StringLike": { "sts:ExternalId": "CA*" } })),
            Problem::AnyExternalIdAccepted,
        ),
        (
            "StringEqualsIfExists the right ID",
            Some(json!({ "StringEqualsIfExists": { "sts:ExternalId": "{id}" } })),
            Problem::ExternalIdNotRequired,
        ),
    ]
}

/// `condition` with `{id}` replaced by `external_id`.
fn with_id(condition: &Option<serde_json::Value>, external_id: &str) -> Option<serde_json::Value> {
    condition.as_ref().map(|c| serde_json::from_str(&c.to_string().replace("{id}", external_id)).unwrap())
}

#[tokio::test]
async fn a_role_that_takes_no_or_any_external_id_is_used_for_nothing_else_and_the_fix_is_shown() {
    let h = platform().await;
    let external_id = h.register("111100000004", SupportTier::Business);
    // The account runs its own organization: had the role's credentials
    // been used, the account would be recorded as a management account.
    let customer = Customer::new("111100000004").await;
    customer.organizations.create_organization().send().await.unwrap();
    for (i, (name, condition, problem)) in open_conditions().into_iter().enumerate() {
        let condition = with_id(&condition, &external_id);
        let arn = customer.create_role(&format!("Open{i}"), PLATFORM, condition, &["ReadOnlyAccess"]).await;
        let view = h.verify("111100000004", &arn).await.unwrap();
        assert!(!view.verified, "{name}");
        assert_eq!(outcome(&view, CheckName::AssumeRole), Outcome::Passed, "{name}");
        assert_eq!(
            outcome(&view, CheckName::ExternalIdRequired),
            Outcome::Failed { problem: problem.clone() },
            "{name}"
        );
        for check in
            [CheckName::CallerIdentity, CheckName::ReadOnlyAccess, CheckName::SupportAccess, CheckName::Organization]
        {
            assert_eq!(outcome(&view, check), Outcome::Skipped, "{name}: {check:?}");
        }
        assert_eq!(view.report.detected_kind, None, "{name}");
        let account = h.account("111100000004");
        assert_eq!(account.state, LinkState::Registered, "{name}");
        assert_eq!(account.kind, AccountKind::Standalone, "{name}: nothing learned of the organization");

        // The reply names the opening and the exact condition to set.
        let message = orglink::app::Message::Verification(Box::new(view.clone()));
        let text = message.render(&orglink::templates::Templates::embedded(), orglink::domain::Lang::En).unwrap().text;
        let said = match problem {
            Problem::AnyExternalIdAccepted => "can be assumed with ANY external ID",
            _ => "can be assumed WITHOUT the external ID",
        };
        assert!(text.contains(said), "{name}: {text}");
        let condition = format!(
            "\"Condition\": {{\n    \"StringEquals\": {{\n      \"sts:ExternalId\": \"{external_id}\"\n    }}\n  }}"
        );
        assert!(text.contains(&condition), "{name}: {text}");
    }

    // The condition the instructions give: verified (and, only now, the
    // organization is read: a management account is blocked).
    let arn = customer.create_instructed_role(&external_id).await;
    let view = h.verify("111100000004", &arn).await.unwrap();
    assert_eq!(outcome(&view, CheckName::ExternalIdRequired), Outcome::Passed);
    assert_eq!(outcome(&view, CheckName::Organization), Outcome::Failed { problem: Problem::ManagementAccount });
    assert_eq!(h.account("111100000004").kind, AccountKind::Management);
    assert_eq!(h.notified("111100000004"), ["account_registered", "account_blocked"]);
    h.finish().await;
}

#[tokio::test]
async fn a_role_that_trusts_exactly_its_external_id_is_verified_with_three_assume_role_calls() {
    let h =
        Harness::new().aws(RetryPolicy { retries: 3, first_delay: Duration::from_millis(20) }).counted().start().await;
    let external_id = h.register("111100000011", SupportTier::Basic);
    let customer = Customer::new("111100000011").await;
    let condition = serde_json::json!({ "StringEquals": { "sts:ExternalId": external_id } });
    let arn = customer.create_role("Exact", PLATFORM, Some(condition), &["ReadOnlyAccess"]).await;
    let view = h.verify("111100000011", &arn).await.unwrap();
    assert!(view.verified, "{:#?}", view.report);
    assert_eq!(outcome(&view, CheckName::ExternalIdRequired), Outcome::Passed);
    assert_eq!(h.assume_role_calls(), 3, "with the ID, without one, with a wrong one: each once");
    assert_eq!(view.report.assume_role_calls(), 3);
    assert_eq!(h.notified("111100000011"), ["account_registered", "role_verified"]);
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

    // Not verified: exit 3, with what to fix, for each opening.
    for (i, (name, condition, problem)) in open_conditions().into_iter().enumerate() {
        let condition = with_id(&condition, external_id.as_str());
        let open = customer.create_role(&format!("Open{i}"), PLATFORM, condition, &["ReadOnlyAccess"]).await;
        let run = o.run(&["verify", "111100000010", &open]);
        assert_eq!(run.code, 3, "{name}: {run:?}");
        let err = &run.stderr;
        assert!(
            err.contains("No Access") && err.contains("\"StringEquals\"") && err.contains(external_id.as_str()),
            "{name}: {err}"
        );
        let said = match problem {
            Problem::AnyExternalIdAccepted => "ANY external ID",
            _ => "WITHOUT the external ID",
        };
        assert!(err.contains(said), "{name}: {err}");
        let json = o.run(&["verify", "111100000010", &open, "--json"]);
        let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!(json["report"]["checks"][2]["outcome"], "failed", "{name}");
        assert_eq!(json["report"]["checks"][2]["problem"], serde_json::to_value(&problem).unwrap(), "{name}");
        assert_eq!(json["report"]["detected_kind"], serde_json::Value::Null, "{name}");
    }

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
        ("arn:aws:iam::999999999999:role/OrgLinkReadOnly", "belongs to AWS account 999999999999"),
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
    // No Discord is configured: reported, not a fault (`serve` runs the
    // jobs and the command line's socket without it).
    assert_eq!(run.code, 0, "{out}");
    assert!(out.contains("Discord: not configured"), "{out}");
    assert!(
        out.contains(&format!("AWS identity: account {PLATFORM}")) && !out.contains("but customer roles trust"),
        "{out}"
    );
    let other = emulator().admin("333300000001", "someone").await;
    let run = Orglink::new().aws(&other).run(&["doctor"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("but customer roles trust 123456789012"), "{}", run.stdout);
}

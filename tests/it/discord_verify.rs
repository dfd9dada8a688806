//! Role verification from Discord: deferred at once, followed up with the
//! result, against the local AWS emulator.

use std::time::Duration;

use orglink::aws::RetryPolicy;
use serde_json::{Value, json};

use crate::harness::discord::*;
use crate::harness::{Customer, Harness, PLATFORM, external_id_condition};

/// `orglink serve` with AWS: one retry of AccessDenied, 20 ms apart.
async fn harness() -> Harness {
    Harness::new().aws(RetryPolicy { retries: 1, first_delay: Duration::from_millis(20) }).distributor().serve().await
}

/// The follow-up's JSON.
async fn followup(h: &Harness, token: &str) -> Value {
    serde_json::from_slice(&h.followup(token).await.body).unwrap()
}

fn text(edit: &Value) -> String {
    embeds_text(edit)
}

#[tokio::test]
async fn verify_role_is_deferred_then_followed_up_with_each_check() {
    let h = harness().await;
    let account = "444400000001";
    let mut link = command(
        "link-account",
        &[("account_id", account), ("customer", "Acme"), ("support_tier", "basic")],
        GUILD_A,
        "es-419",
        ADMIN,
        &[],
    );
    link["token"] = json!("token-link");
    h.interact(&link).await;
    let external_id = h.store().account(account.parse().unwrap()).unwrap().unwrap().external_id;
    let customer = Customer::new(account).await;
    let open = customer.create_role("Open", PLATFORM, None, &["ReadOnlyAccess"]).await;

    // /verify-role with a role that does not require the external ID.
    let mut verify =
        command("verify-role", &[("account_id", account), ("role_arn", &open)], GUILD_A, "es-419", ADMIN, &[]);
    verify["token"] = json!("token-verify");
    let response = h.interact(&verify).await;
    assert_eq!(response["type"], 5, "deferred at once");
    assert_eq!(response["data"]["flags"], 64, "only the user sees it");
    let edit = followup(&h, "token-verify").await;
    let shown = text(&edit);
    assert!(
        shown.contains("Sin acceso") && shown.contains("sts:ExternalId") && shown.contains(external_id.as_str()),
        "{shown}"
    );
    assert_eq!(edit["embeds"][0]["color"], 0xE74C3C);
    assert_eq!(edit["components"][0]["components"][0]["custom_id"], format!("ol:check:{account}"));
    assert_eq!(edit["components"][0]["components"][0]["label"], "Comprobar ahora");

    // The customer fixes the trust policy; "Check now" re-checks the recorded role.
    customer
        .iam
        .update_assume_role_policy()
        .role_name("Open")
        .policy_document(
            json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": { "AWS": format!("arn:aws:iam::{PLATFORM}:root") },
                    "Action": "sts:AssumeRole",
                    "Condition": external_id_condition(external_id.as_str())
                }]
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let mut button = interaction("component_button", GUILD_A, "en-US", ADMIN, &[]);
    button["token"] = json!("token-check");
    button["data"]["custom_id"] = json!(format!("ol:check:{account}"));
    assert_eq!(h.interact(&button).await["type"], 5);
    let edit = followup(&h, "token-check").await;
    assert!(text(&edit).contains("**Verified**"), "{}", text(&edit));
    assert_eq!(edit["embeds"][0]["color"], 0x2ECC71);
    assert_eq!(
        h.store().account(account.parse().unwrap()).unwrap().unwrap().state,
        orglink::domain::LinkState::RoleVerified
    );

    // Every AWS call was counted by operation and outcome: two checks, each
    // with AssumeRole with the external ID, without one and with a wrong
    // one; the open role (all three allowed) was used for nothing else.
    let page = reqwest::get(h.url("/metrics")).await.unwrap().text().await.unwrap();
    let count = |labels: &str| {
        page.lines()
            .find_map(|l| l.strip_prefix(&format!("orglink_aws_calls_total{{{labels}}} "))?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let ok = r#"service="STS",operation="AssumeRole",outcome="ok""#;
    let refused = r#"service="STS",operation="AssumeRole",outcome="client_error""#;
    assert_eq!((count(ok), count(refused)), (4.0, 2.0), "{page}");
    assert_eq!(count(r#"service="IAM",operation="ListAttachedRolePolicies",outcome="ok""#), 1.0, "{page}");
    h.finish().await;
}

#[tokio::test]
async fn the_modal_verifies_the_pasted_arn() {
    let h = harness().await;
    let account = "444400000002";
    let link = command(
        "link-account",
        &[("account_id", account), ("customer", "Acme"), ("support_tier", "developer")],
        GUILD_A,
        "en-US",
        ADMIN,
        &[],
    );
    h.interact(&link).await;
    let (_, arn) = h.role_for(account).await;
    let mut submit = interaction("modal_submit_role_arn", GUILD_A, "en-US", ADMIN, &[]);
    submit["token"] = json!("token-modal");
    submit["data"]["custom_id"] = json!(format!("ol:arn:{account}"));
    submit["data"]["components"][0]["components"][0]["value"] = json!(format!("  {arn}\u{200b} "));
    assert_eq!(h.interact(&submit).await["type"], 5);
    let edit = followup(&h, "token-modal").await;
    assert!(text(&edit).contains("**Verified**"), "{}", text(&edit));
    h.finish().await;
}

/// orglink runs as another account than the cross-account ID customer roles
/// trust: AWS's refusal is orglink's problem, said as such in the follow-up
/// (nothing about trust policies), counted as an internal error, and
/// nothing is recorded about the account.
#[tokio::test]
async fn a_refusal_while_orglink_is_not_the_platform_is_said_to_be_orglinks() {
    let mut h = Harness::new()
        .aws(RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) })
        .settings(|s| s.cross_account_id = "333300000099".parse().unwrap())
        .serve()
        .await;
    // Ours, so logged as an error.
    h.expect_error("orglink could not ask AWS");
    let account = "444400000009";
    let link = command(
        "link-account",
        &[("account_id", account), ("customer", "Acme"), ("support_tier", "basic")],
        GUILD_A,
        "en-US",
        ADMIN,
        &[],
    );
    h.interact(&link).await;
    let before = h.store().account(account.parse().unwrap()).unwrap().unwrap();
    let arn = format!("arn:aws:iam::{account}:role/OrgLinkReadOnly");
    let mut verify =
        command("verify-role", &[("account_id", account), ("role_arn", &arn)], GUILD_A, "en-US", ADMIN, &[]);
    verify["token"] = json!("token-not-platform");
    assert_eq!(h.interact(&verify).await["type"], 5, "deferred at once");
    let shown = text(&followup(&h, "token-not-platform").await);
    assert!(shown.contains("orglink could not ask AWS") && shown.contains(PLATFORM), "{shown}");
    assert!(shown.contains("333300000099") && !shown.contains("trust policy"), "{shown}");
    assert_eq!(h.store().account(account.parse().unwrap()).unwrap().unwrap(), before, "nothing recorded");
    let page = reqwest::get(h.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"orglink_commands_total{command="verify_role",outcome="internal_error"} 1"#), "{page}");
    h.finish().await;
}

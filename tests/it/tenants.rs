//! Tenants approved by the distributor: a new server's commands wait for
//! operations, who approve or deny it from the buttons of one notice (or
//! the CLI), and may suspend and resume it; signed interactions against the
//! running endpoint, Discord stood in by a recorder.

use std::collections::BTreeSet;
use std::time::Duration;

use orglink::app::{AppError, Command, UserError};
use orglink::aws::RetryPolicy;
use orglink::domain::{Event, LinkState, SupportTier, TenantDecision, TenantId, TenantPolicy, TenantState};
use orglink::scheduler::Job;
use orglink::store::Record;
use serde_json::{Value, json};
use time::macros::datetime;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::harness::discord::*;
use crate::harness::{Harness, Orglink, new_account, operator, server_admin};

/// A server none of the tests approved.
const NEW_GUILD: &str = "900000000000000901";
/// A member of the operations server.
const OPS_MEMBER: &str = "700000000000000100";
const EPHEMERAL: u64 = 64;

fn tenant(id: &str) -> TenantId {
    id.parse().unwrap()
}

fn link(guild: &str, account: &str) -> Value {
    command(
        "link-account",
        &[("account_id", account), ("customer", "Acme S.A."), ("support_tier", "basic")],
        guild,
        "en-US",
        ADMIN,
        &[],
    )
}

fn text(response: &Value) -> String {
    embeds_text(&response["data"])
}

/// The tenant's status, as recorded.
fn state(h: &Harness, id: &str) -> Option<TenantState> {
    h.store().tenant_status(&tenant(id)).unwrap().map(|s| s.state)
}

/// Every record but the one `/healthz` writes.
fn export(h: &Harness) -> BTreeSet<Record> {
    h.store()
        .export()
        .unwrap()
        .into_iter()
        .filter(|(tree, key, _)| !(tree.as_slice() == b"__sled__default" && key.as_slice() == b"health_check"))
        .collect()
}

/// The trees of the records added or changed since `before`, and of those
/// gone.
fn changes(before: &BTreeSet<Record>, after: &BTreeSet<Record>) -> (Vec<String>, Vec<String>) {
    let trees = |records: Vec<&Record>| -> Vec<String> {
        records.into_iter().map(|(tree, _, _)| String::from_utf8_lossy(tree).into_owned()).collect()
    };
    (trees(after.difference(before).collect()), trees(before.difference(after).collect()))
}

/// The messages posted to `channel`, as sent.
async fn posted(h: &Harness, channel: &str) -> Vec<Value> {
    let path = format!("/api/v10/channels/{channel}/messages");
    h.discord()
        .requests()
        .await
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == path)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// The buttons of a message or response: (custom ID, label, style).
fn buttons(message: &Value) -> Vec<(String, String, u64)> {
    message["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .map(|b| {
            (
                b["custom_id"].as_str().unwrap().to_owned(),
                b["label"].as_str().unwrap().to_owned(),
                b["style"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A press of `custom_id` on the operations notice `notice` (as posted), in
/// `guild`, by a member with `roles`.
fn press(custom_id: &str, notice: &Value, guild: &str, roles: &[&str]) -> Value {
    let mut button = interaction("component_button", guild, "en-US", NOBODY, roles);
    button["member"]["user"]["id"] = json!(OPS_MEMBER);
    button["data"]["custom_id"] = json!(custom_id);
    button["message"]["embeds"] = notice["embeds"].clone();
    button["message"]["components"] = notice["components"].clone();
    button
}

fn decide(h: &Harness, guild: &str, decision: TenantDecision) {
    h.app().handle(&operator(), Command::DecideTenant { tenant: tenant(guild), decision }).unwrap();
}

#[tokio::test]
async fn a_new_server_waits_and_operations_get_one_notice_with_approve_and_deny() {
    let h = Harness::new().serve().await;
    h.settle().await;
    let before = export(&h);

    let response = h.interact(&link(NEW_GUILD, "123456789012")).await;
    assert_eq!(response["type"], 4);
    assert_eq!(response["data"]["flags"].as_u64().unwrap() & EPHEMERAL, EPHEMERAL);
    assert!(text(&response).contains("waiting for the distributor's approval"), "{}", text(&response));
    assert!(response["data"]["components"].as_array().is_none_or(|c| c.is_empty()), "nothing offered");
    h.settle().await;

    // Nothing happened but the pending tenant's record, its audit entry and
    // the operations notice (delivered by now, so gone from the outbox).
    let after = export(&h);
    let (added, gone) = changes(&before, &after);
    assert_eq!(added, ["tenant_audit", "tenant_status"], "{gone:?}");
    assert!(gone.is_empty(), "{gone:?}");
    assert_eq!(state(&h, NEW_GUILD), Some(TenantState::Pending));
    assert!(h.store().account("123456789012".parse().unwrap()).unwrap().is_none());
    let log = h.store().tenant_audit_log(&tenant(NEW_GUILD)).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].actor, "discord:700000000000000001");
    assert_eq!(
        log[0].events,
        [Event::TenantPending { tenant: tenant(NEW_GUILD), by: chat("700000000000000001").into() }]
    );

    // Operations heard once, with the two buttons.
    let notices = posted(&h, OPS_CHANNEL).await;
    assert_eq!(notices.len(), 1);
    let notice = &notices[0];
    let description = notice["embeds"][0]["description"].as_str().unwrap();
    assert!(description.contains(NEW_GUILD) && description.contains("<@700000000000000001>"), "{description}");
    assert_eq!(
        buttons(notice),
        [
            (format!("ol:tenant-approve:{NEW_GUILD}"), "Approve".to_owned(), 3),
            (format!("ol:tenant-deny:{NEW_GUILD}"), "Deny".to_owned(), 4),
        ]
    );
    assert!(posted(&h, "900000000000000002").await.is_empty(), "the new server has no channel: nobody else heard");

    // Another command, by another member: the same answer, nothing new.
    let mut status = command("status", &[], NEW_GUILD, "es-419", NOBODY, &[]);
    status["member"]["user"]["id"] = json!("700000000000000002");
    let response = h.interact(&status).await;
    assert!(text(&response).contains("espera la aprobación del distribuidor"), "{}", text(&response));
    // Autocomplete offers nothing, and records nothing either.
    let mut auto = interaction("autocomplete_instructions", NEW_GUILD, "en-US", ADMIN, &[]);
    auto["data"]["options"] = json!([{ "name": "account_id", "type": 3, "value": "", "focused": true }]);
    assert_eq!(h.interact(&auto).await["data"]["choices"], json!([]));
    h.settle().await;
    assert_eq!(export(&h), after);
    assert_eq!(posted(&h, OPS_CHANNEL).await.len(), 1, "still one notice");
    h.finish().await;
}

#[tokio::test]
async fn the_outbox_holds_exactly_one_notice_for_a_new_server() {
    let h = Harness::new().at(datetime!(2026-12-01 10:00 UTC)).discord().start().await;
    let before: BTreeSet<Record> = h.store().export().unwrap().into_iter().collect();
    let new_account = new_account("123456789012", NEW_GUILD, SupportTier::Basic);
    let err = h.app().handle(&server_admin(NEW_GUILD), Command::AddAccount(new_account.clone())).unwrap_err();
    assert!(matches!(err, AppError::User(UserError::TenantPending)), "{err:?}");
    let after: BTreeSet<Record> = h.store().export().unwrap().into_iter().collect();
    let (added, gone) = changes(&before, &after);
    assert_eq!(added, ["outbox", "outbox_counts", "outbox_index", "tenant_audit", "tenant_status"]);
    assert!(gone.is_empty());
    let outbox = h.outbox();
    assert_eq!(outbox.len(), 1);
    assert_eq!(
        outbox[0].event,
        Event::TenantPending { tenant: tenant(NEW_GUILD), by: chat("700000000000000001").into() }
    );
    assert!(outbox[0].audience.ops && !outbox[0].audience.tenant);

    // Slow commands wait at the same door; nothing is added.
    let verify = Command::VerifyRole {
        account: "123456789012".parse().unwrap(),
        arn: Some("arn:aws:iam::123456789012:role/R".parse().unwrap()),
        description: None,
    };
    let err = h.app().execute(&server_admin(NEW_GUILD), verify).await.unwrap_err();
    assert!(matches!(err, AppError::User(UserError::TenantPending)), "{err:?}");
    h.app().handle(&server_admin(NEW_GUILD), Command::AddAccount(new_account)).unwrap_err();
    assert_eq!(h.store().export().unwrap().into_iter().collect::<BTreeSet<_>>(), after);
    h.finish().await;
}

#[tokio::test]
async fn an_operations_member_approves_from_the_notice_and_nobody_else_can() {
    let h = Harness::new().serve().await;
    h.interact(&link(NEW_GUILD, "123456789012")).await;
    h.settle().await;
    let notice = posted(&h, OPS_CHANNEL).await.remove(0);
    let approve = format!("ol:tenant-approve:{NEW_GUILD}");

    // Without the operations role, in the operations server: refused.
    let response = h.interact(&press(&approve, &notice, OPS_GUILD, &[])).await;
    assert_eq!(response["type"], 4);
    assert!(text(&response).contains("operations team"), "{}", text(&response));
    assert_eq!(response["data"]["flags"].as_u64().unwrap() & EPHEMERAL, EPHEMERAL);
    // With the operations role, elsewhere (the server asking, say): refused.
    let response = h.interact(&press(&approve, &notice, NEW_GUILD, &[OPS_ROLE])).await;
    assert!(text(&response).contains("waiting for the distributor's approval"), "{}", text(&response));
    let response = h.interact(&press(&approve, &notice, GUILD_A, &[OPS_ROLE])).await;
    assert!(text(&response).contains("operations team"), "{}", text(&response));
    // A forged ID names no server.
    let response = h.interact(&press("ol:tenant-approve:0900000000000000901", &notice, OPS_GUILD, &[OPS_ROLE])).await;
    assert!(text(&response).contains("not known"), "{}", text(&response));
    assert_eq!(state(&h, NEW_GUILD), Some(TenantState::Pending));

    // An operations member: the notice is updated in place, buttons gone,
    // saying who approved it.
    let response = h.interact(&press(&approve, &notice, OPS_GUILD, &[OPS_ROLE])).await;
    assert_eq!(response["type"], 7, "the notice itself is updated: {response}");
    assert_eq!(response["data"]["components"], json!([]));
    let shown = text(&response);
    assert!(shown.starts_with(notice["embeds"][0]["description"].as_str().unwrap()), "the notice stays: {shown}");
    assert!(shown.contains(&format!("`{NEW_GUILD}` is approved (by <@{OPS_MEMBER}>)")), "{shown}");
    assert_eq!(state(&h, NEW_GUILD), Some(TenantState::Approved));
    let log = h.store().tenant_audit_log(&tenant(NEW_GUILD)).unwrap();
    assert_eq!(log.last().unwrap().actor, format!("discord:{OPS_MEMBER}"));

    // Pressed again (a second member, a stale notice): nothing changes.
    let response = h.interact(&press(&approve, &notice, OPS_GUILD, &[OPS_ROLE])).await;
    assert_eq!(response["type"], 7);
    assert!(text(&response).contains("was approved already"), "{}", text(&response));
    assert_eq!(h.store().tenant_audit_log(&tenant(NEW_GUILD)).unwrap().len(), log.len());
    // Deny now is refused: an approved tenant is suspended instead.
    let response = h.interact(&press(&format!("ol:tenant-deny:{NEW_GUILD}"), &notice, OPS_GUILD, &[OPS_ROLE])).await;
    assert_eq!(response["type"], 4);
    assert!(text(&response).contains("cannot be denied"), "{}", text(&response));

    // The server's commands work now.
    let response = h.interact(&link(NEW_GUILD, "123456789012")).await;
    assert!(text(&response).contains("is registered for **Acme S.A.**"), "{}", text(&response));
    assert_eq!(h.store().account("123456789012".parse().unwrap()).unwrap().unwrap().state, LinkState::Registered);
    h.outbox();
    h.finish().await;
}

#[tokio::test]
async fn a_denied_server_is_refused_and_nothing_is_recorded_for_it() {
    let h = Harness::new().serve().await;
    h.interact(&link(NEW_GUILD, "123456789012")).await;
    h.settle().await;
    let notice = posted(&h, OPS_CHANNEL).await.remove(0);
    let response = h.interact(&press(&format!("ol:tenant-deny:{NEW_GUILD}"), &notice, OPS_GUILD, &[OPS_ROLE])).await;
    assert_eq!(response["type"], 7);
    assert!(text(&response).contains(&format!("`{NEW_GUILD}` is denied (by <@{OPS_MEMBER}>)")), "{}", text(&response));
    assert_eq!(state(&h, NEW_GUILD), Some(TenantState::Denied));
    h.settle().await;
    let before = export(&h);
    let response = h.interact(&link(NEW_GUILD, "123456789012")).await;
    assert!(text(&response).contains("has not approved orglink for this server"), "{}", text(&response));
    let mut config = command("orglink-config", &[], NEW_GUILD, "es-ES", ADMIN, &[]);
    config["data"]["options"] = json!([{ "name": "channel", "type": 7, "value": "900000000000000902" }]);
    assert!(text(&h.interact(&config).await).contains("no aprobó orglink"));
    h.settle().await;
    assert_eq!(export(&h), before);
    assert_eq!(posted(&h, OPS_CHANNEL).await.len(), 1);
    h.finish().await;
}

#[tokio::test]
async fn the_operations_server_is_never_held() {
    let h = Harness::new().serve().await;
    let response = h.interact(&command("status", &[], OPS_GUILD, "en-US", ADMIN, &[])).await;
    assert!(text(&response).contains("No accounts are registered"), "{}", text(&response));
    assert_eq!(state(&h, OPS_GUILD), None, "nothing recorded for it");
    // Nor decided: operations cannot suspend themselves out.
    let suspend = Command::DecideTenant { tenant: tenant(OPS_GUILD), decision: TenantDecision::Suspend };
    let err = h.app().handle(&operator(), suspend).unwrap_err();
    assert!(matches!(err, AppError::User(UserError::OperationsServer { .. })), "{err:?}");
    h.settle().await;
    assert!(posted(&h, OPS_CHANNEL).await.is_empty());
    h.finish().await;
}

#[tokio::test]
async fn under_the_open_policy_a_new_server_is_served_at_once_without_a_notice() {
    let h = Harness::new().settings(|s| s.tenant_policy = TenantPolicy::Open).serve().await;
    let response = h.interact(&link(NEW_GUILD, "123456789012")).await;
    assert!(text(&response).contains("is registered for **Acme S.A.**"), "{}", text(&response));
    assert_eq!(state(&h, NEW_GUILD), Some(TenantState::Approved));
    let log = h.store().tenant_audit_log(&tenant(NEW_GUILD)).unwrap();
    assert_eq!(log[0].events, [Event::TenantAdmitted { tenant: tenant(NEW_GUILD) }]);
    h.settle().await;
    // Operations hear only that the new server has no channel for its news.
    let ops = posted(&h, OPS_CHANNEL).await;
    assert!(ops.iter().all(|m| buttons(m).is_empty() && !m.to_string().contains("wants to use orglink")), "{ops:?}");
    // A server operations denied stays out.
    decide(&h, "900000000000000902", TenantDecision::Deny);
    let response = h.interact(&command("status", &[], "900000000000000902", "en-US", ADMIN, &[])).await;
    assert!(text(&response).contains("has not approved"), "{}", text(&response));
    h.finish().await;
}

/// orglink with AWS (AssumeRole counted on the wire, one probe's worth a
/// minute at most)
/// and a Discord recorder for the notifier, its clock at 09:00.
async fn suspended_world() -> Harness {
    let h = Harness::new()
        .at(datetime!(2026-11-26 09:00 UTC))
        .aws(RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) })
        .counted()
        .settings(|s| s.probe.assume_role_per_minute = orglink::aws::PROBE_ASSUME_ROLE_CALLS)
        .discord()
        .start()
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(message_json(TENANT_CHANNEL)))
        .mount(&h.discord().server)
        .await;
    h
}

const TENANT_CHANNEL: &str = "900000000000000002";
const OTHER_CHANNEL: &str = "900000000000000003";

#[tokio::test]
async fn a_suspended_tenant_is_refused_its_notifications_wait_and_its_probes_stop_until_resumed() {
    let h = suspended_world().await;
    for (account, guild, channel) in
        [("111100000001", GUILD_A, TENANT_CHANNEL), ("222200000001", GUILD_B, OTHER_CHANNEL)]
    {
        let configure = Command::Configure { channel: Some(chat(channel)), language: None, account_role: None };
        h.app().handle(&server_admin(guild), configure).unwrap();
        let new = new_account(account, guild, SupportTier::Basic);
        h.app().handle(&server_admin(guild), Command::AddAccount(new)).unwrap();
    }
    decide(&h, GUILD_A, TenantDecision::Suspend);
    assert_eq!(state(&h, GUILD_A), Some(TenantState::Suspended));

    // Its commands are refused, and change nothing; autocomplete shows
    // nothing of its accounts.
    let before = h.store().export().unwrap();
    let show = Command::ShowAccount { account: "111100000001".parse().unwrap() };
    let err = h.app().handle(&server_admin(GUILD_A), show).unwrap_err();
    assert!(matches!(err, AppError::User(UserError::TenantSuspended)), "{err:?}");
    assert!(h.app().suggest_accounts(&server_admin(GUILD_A), "", 25).unwrap().is_empty());
    assert_eq!(h.app().suggest_accounts(&server_admin(GUILD_B), "", 25).unwrap().len(), 1);
    assert_eq!(h.store().export().unwrap(), before);

    // Its notification waits (not sent, not dropped); the other tenant's
    // goes out.
    let report = h.notifier().deliver_due().await.unwrap();
    assert_eq!((report.held, report.delivered), (1, 1), "{report:?}");
    assert!(posted(&h, TENANT_CHANNEL).await.is_empty());
    assert_eq!(posted(&h, OTHER_CHANNEL).await.len(), 1);
    let waiting: Vec<&str> = h.outbox().iter().map(|i| i.event.code()).collect();
    assert_eq!(waiting, ["account_registered"]);
    assert_eq!(h.outbox()[0].attempts, 0, "holding is not failing");

    // The probe leaves its account alone and spends none of the AssumeRole
    // ceiling on it: the other tenant's account is probed.
    h.clock().advance(time::Duration::minutes(3));
    let probed_before = h.account("111100000001").probe;
    let report = h.run(Job::ProbeRoles).await;
    assert_eq!(report.held, 1, "{report:?}");
    assert_eq!(h.assume_role_calls(), 1, "one AssumeRole: the other tenant's account");
    assert_eq!(h.account("111100000001").probe, probed_before, "untouched");
    assert!(h.account("222200000001").probe.unwrap().last.is_some());
    // Its data stays.
    assert_eq!(h.store().tenant_accounts(&tenant(GUILD_A)).unwrap().len(), 1);
    assert!(h.store().tenant_settings(&tenant(GUILD_A)).unwrap().channel.is_some());

    // Resumed: it is told, what waited goes out, its commands work and its
    // account is probed again.
    decide(&h, GUILD_A, TenantDecision::Resume);
    let report = h.notifier().deliver_due().await.unwrap();
    assert_eq!((report.held, report.delivered), (0, 2), "{report:?}");
    let sent: Vec<String> = posted(&h, TENANT_CHANNEL)
        .await
        .iter()
        .map(|m| m["embeds"][0]["description"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent.len(), 2);
    assert!(sent[0].contains("111100000001"), "{sent:?}");
    assert!(sent[1].contains("serves this server again"), "{sent:?}");
    assert!(h.outbox().is_empty());
    let show = Command::ShowAccount { account: "111100000001".parse().unwrap() };
    h.app().handle(&server_admin(GUILD_A), show).unwrap();
    // Past the minute of the last AssumeRole, before the other account's
    // next probe.
    h.clock().advance(time::Duration::seconds(90));
    let report = h.run(Job::ProbeRoles).await;
    assert_eq!(report.held, 0, "{report:?}");
    assert!(h.account("111100000001").probe.unwrap().last.is_some(), "probed again");
    h.finish().await;
}

#[tokio::test]
async fn operations_manage_tenants_from_the_command_line() {
    let o = Orglink::new();
    // Bad input: exit 2, and no store is created.
    let run = o.run(&["tenant", "approve", "not a server"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("\"not a server\""), "{}", run.stderr);
    assert!(!o.data_dir().exists());

    // A server approved ahead of its first command; listed with its status.
    let out = o.ok(&["tenant", "approve", NEW_GUILD]);
    assert!(out.contains(&format!("{NEW_GUILD} is approved.")), "{out}");
    o.ok(&["account", "add", "123456789012", "--tenant", "acme", "--customer", "Acme", "--support", "basic"]);
    let list = o.ok(&["tenant", "list"]);
    assert!(list.starts_with("2 tenants\n"), "{list}");
    assert!(list.contains(&format!("• {NEW_GUILD}: approved since ")) && list.contains(", 0 accounts"), "{list}");
    assert!(list.contains("• acme: not recorded yet, 1 account"), "{list}");
    let json: Value = serde_json::from_str(&o.ok(&["tenant", "list", "--json"])).unwrap();
    assert_eq!(json["tenants"][0]["tenant"], NEW_GUILD);
    assert_eq!(json["tenants"][0]["state"], "approved");
    assert_eq!(json["tenants"][0]["accounts"], 0);
    assert!(json["tenants"][0]["since"].as_str().unwrap().ends_with('Z'));
    assert_eq!(json["tenants"][1]["state"], Value::Null);
    assert_eq!(json["tenants"][1]["accounts"], 1);

    // Suspend, a refused decision, resume; approving again changes nothing.
    assert!(o.ok(&["tenant", "suspend", NEW_GUILD]).contains("is suspended"));
    let run = o.run(&["--lang", "es", "tenant", "deny", NEW_GUILD]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("está suspendido: no se puede denegar"), "{}", run.stderr);
    assert!(o.ok(&["tenant", "resume", NEW_GUILD]).contains("is approved"));
    let out = o.ok(&["tenant", "approve", NEW_GUILD]);
    assert!(out.contains("was approved already, since "), "{out}");
    let run = o.run(&["tenant", "resume", "acme"]);
    assert_eq!(run.code, 2, "never recorded: nothing to resume");
    let run = o.run(&["tenant", "deny", "900000000000000100"]);
    assert_eq!(run.code, 0, "without an operations server configured, any server can be denied");
    let run = o.run_with(
        &[("ORGLINK_DISCORD_OPS_GUILD_ID", "900000000000000100")],
        &["tenant", "approve", "900000000000000100"],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("is the operations server"), "{}", run.stderr);

    // Every decision is in the tenant's audit log, by the operator.
    let store = o.store();
    let log = store.tenant_audit_log(&tenant(NEW_GUILD)).unwrap();
    let decisions: Vec<(&str, Option<TenantState>)> =
        log.iter().map(|e| (e.events[0].code(), e.status.map(|s| s.state))).collect();
    assert_eq!(
        decisions,
        [
            ("tenant_approved", Some(TenantState::Approved)),
            ("tenant_suspended", Some(TenantState::Suspended)),
            ("tenant_resumed", Some(TenantState::Approved)),
        ]
    );
    assert!(log.iter().all(|e| e.actor.starts_with("cli:")), "{log:?}");
    // Nobody had a channel: nothing waits to be told.
    assert!(store.outbox().unwrap().iter().all(|i| i.event.code() == "account_registered"));
}

#[tokio::test]
async fn the_policy_is_configured_by_name() {
    let o = Orglink::new();
    let run = o.run_with(&[("ORGLINK_TENANTS_POLICY", "closed")], &["tenant", "list"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("tenants.policy") && run.stderr.contains("ORGLINK_TENANTS_POLICY"), "{}", run.stderr);
    assert!(run.stderr.contains("approval") && run.stderr.contains("open"), "{}", run.stderr);
    drop(o.store());
    assert_eq!(o.run_with(&[("ORGLINK_TENANTS_POLICY", "open")], &["tenant", "list"]).code, 0);
}

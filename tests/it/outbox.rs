//! Operations see the outbox and its dead letters, send dead letters again
//! and drop what should never go, audited: in process against the Discord
//! recorder, and through a running `orglink serve` with the real binary.

use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use orglink::app::{AppError, Command, Message, Replay, Reply, UserError};
use orglink::domain::outbox::OutboxId;
use orglink::domain::{Event, Lang};
use orglink::store::TenantAuditEntry;
use orglink::templates::Templates;
use serde_json::Value;
use time::macros::datetime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::discord::{GUILD_A, OPS_CHANNEL, TOKEN, chat, message_json};
use crate::harness::{Harness, Orglink, Recorder, operator, server_admin};

const TENANT_CHANNEL: &str = "900000000000000002";

fn configure(h: &Harness) {
    let command = Command::Configure { channel: Some(chat(TENANT_CHANNEL)), language: None, account_role: None };
    h.app().handle(&server_admin(GUILD_A), command).unwrap();
}

fn channel_path(channel: &str) -> String {
    format!("/api/v10/channels/{channel}/messages")
}

async fn answer(recorder: &Recorder, channel: &str, status: u16, times: u64) {
    let response = if status == 200 {
        ResponseTemplate::new(200).set_body_json(message_json(channel))
    } else {
        ResponseTemplate::new(status).set_body_json(serde_json::json!({ "message": "stand-in error", "code": 0 }))
    };
    Mock::given(method("POST"))
        .and(path(channel_path(channel)))
        .respond_with(response)
        .up_to_n_times(times)
        .mount(&recorder.server)
        .await;
}

async fn posted(recorder: &Recorder, channel: &str) -> usize {
    recorder
        .requests()
        .await
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == channel_path(channel))
        .count()
}

fn ops(h: &Harness, command: Command) -> Result<Reply, AppError> {
    h.app().handle(&operator(), command)
}

fn text(reply: &Reply, lang: Lang) -> String {
    reply.messages.iter().map(|m| m.render(&Templates::embedded(), lang).unwrap().text).collect::<Vec<_>>().join("\n")
}

fn error_text(error: AppError) -> (UserError, String) {
    let AppError::User(e) = error else { panic!("not a user error: {error:?}") };
    let text = Message::Error(e.clone()).render(&Templates::embedded(), Lang::En).unwrap().text;
    (e, text)
}

fn listed(reply: &Reply) -> Vec<Value> {
    reply.data().unwrap()["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_notice_for_a_tenant_without_a_channel_shows_why_and_is_dropped_with_its_reason() {
    let h = Harness::new().at(datetime!(2026-11-26 10:00 UTC)).discord().start().await;
    h.register_in(GUILD_A, "123456789012");

    let reply = ops(&h, Command::ListOutbox { dead: false }).unwrap();
    let items = listed(&reply);
    assert_eq!(items.len(), 1, "{items:#?}");
    let item = &items[0];
    assert_eq!(item["queue"], "pending");
    assert_eq!(item["event"], "account_registered");
    assert_eq!(item["account_id"], "123456789012");
    assert_eq!(item["tenant"], GUILD_A);
    assert_eq!(item["audience"], "tenant");
    assert_eq!(item["queued_at"], "2026-11-26T10:00:00Z");
    assert_eq!(item["attempts"], 0);
    assert_eq!(item["blocked"], "no_channel");
    let id = item["id"].as_u64().unwrap();
    let en = text(&reply, Lang::En);
    assert!(en.contains(&format!("#{id} account_registered about 123456789012")), "{en}");
    assert!(en.contains("Cannot go: no channel set"), "{en}");
    let es = text(&reply, Lang::Es);
    assert!(es.contains("No puede salir: sin canal"), "{es}");

    // Nothing for a tenant, even its administrator: operations only.
    let refused = h.app().handle(&server_admin(GUILD_A), Command::ListOutbox { dead: false }).unwrap_err();
    assert!(matches!(error_text(refused).0, UserError::NotAllowed { .. }));
    let drop = |id: u64| Command::DropOutbox { id: OutboxId::new(id), reason: "the reseller left".parse().unwrap() };
    assert!(h.app().handle(&server_admin(GUILD_A), drop(id)).is_err());
    assert_eq!(h.store().outbox().unwrap().len(), 1, "a refusal drops nothing");

    h.clock().advance(time::Duration::minutes(5));
    let dropped = ops(&h, drop(id)).unwrap();
    assert_eq!(dropped.data().unwrap()["recorded_in"], "account");
    assert!(text(&dropped, Lang::En).contains("Reason: the reseller left"), "{}", text(&dropped, Lang::En));
    assert!(h.store().outbox().unwrap().is_empty(), "gone");
    assert!(
        ops(&h, Command::ListOutbox { dead: false }).unwrap().data().unwrap()["items"].as_array().unwrap().is_empty()
    );

    // Audited: who, when, why, in the account's history (operations').
    let log = h.store().audit_log("123456789012".parse().unwrap()).unwrap();
    let entry = log.last().unwrap();
    assert_eq!((entry.actor.as_str(), entry.action.as_str()), (operator().id.as_str(), "outbox_drop"));
    assert_eq!(entry.at, datetime!(2026-11-26 10:05 UTC));
    assert!(matches!(
        &entry.events[..],
        [Event::NotificationDropped { dropped, reason, .. }] if dropped == "account_registered" && reason == "the reseller left"
    ));
    let history = ops(&h, Command::History { account: "123456789012".parse().unwrap() }).unwrap();
    let history = text(&history, Lang::En);
    assert!(history.contains("outbox_drop by"), "{history}");
    assert!(history.contains("Reason: account_registered: the reseller left"), "{history}");

    // Once more: it is not there any more, and the message names it.
    let (error, message) = error_text(ops(&h, drop(id)).unwrap_err());
    assert_eq!(error, UserError::OutboxItemNotFound { id: OutboxId::new(id) });
    assert!(message.contains(&format!("No notification #{id}")), "{message}");
    let es = Message::Error(error).render(&Templates::embedded(), Lang::Es).unwrap().text;
    assert!(es.contains(&format!("ninguna notificación #{id}")), "{es}");
    h.finish().await;
}

#[tokio::test]
async fn dead_letters_are_listed_with_why_and_replayed_to_the_channel() {
    let h = Harness::new().at(datetime!(2026-11-26 10:00 UTC)).discord().start().await;
    configure(&h);
    h.register_in(GUILD_A, "123456789012");
    h.register_in(GUILD_A, "123456789013");
    // The channel is gone, then back.
    answer(h.discord(), TENANT_CHANNEL, 404, 2).await;
    answer(h.discord(), OPS_CHANNEL, 200, u64::MAX).await;
    let report = h.notifier().deliver_due().await.unwrap();
    assert_eq!(report.undeliverable, 2, "{report:?}");
    // Operations heard of both.
    assert_eq!(h.notifier().deliver_due().await.unwrap().delivered, 2);
    assert_eq!(posted(h.discord(), OPS_CHANNEL).await, 2);

    let reply = ops(&h, Command::ListOutbox { dead: true }).unwrap();
    let items = listed(&reply);
    assert_eq!(items.len(), 2, "{items:#?}");
    assert_eq!(items[0]["queue"], "dead");
    assert_eq!(items[0]["reason"], "channel_not_found");
    assert_eq!(items[0]["dead_at"], "2026-11-26T10:00:00Z");
    let (first, second) = (items[0]["id"].as_u64().unwrap(), items[1]["id"].as_u64().unwrap());
    let en = text(&reply, Lang::En);
    assert!(en.contains("2 dead letters"), "{en}");
    assert!(en.contains("Why: the channel does not exist any more"), "{en}");
    assert!(text(&reply, Lang::Es).contains("Motivo: el canal ya no existe"), "{}", text(&reply, Lang::Es));

    // A waiting one is not a dead letter; an unknown one is named.
    h.register_in(GUILD_A, "123456789014");
    let waiting = h.store().outbox().unwrap()[0].id;
    let (error, message) =
        error_text(ops(&h, Command::ReplayOutbox { which: Replay::One(OutboxId::new(waiting)) }).unwrap_err());
    assert_eq!(error, UserError::NotADeadLetter { id: OutboxId::new(waiting) });
    assert!(message.contains("still waiting"), "{message}");
    let (error, _) =
        error_text(ops(&h, Command::ReplayOutbox { which: Replay::One(OutboxId::new(999_999)) }).unwrap_err());
    assert_eq!(error, UserError::OutboxItemNotFound { id: OutboxId::new(999_999) });

    // One, then the rest: each reaches the channel once.
    answer(h.discord(), TENANT_CHANNEL, 200, u64::MAX).await;
    let replayed = ops(&h, Command::ReplayOutbox { which: Replay::One(OutboxId::new(first)) }).unwrap();
    assert!(text(&replayed, Lang::En).contains(&format!("1 dead letter back in the outbox (#{first})")));
    assert_eq!(h.store().dead_letters().unwrap().len(), 1);
    assert_eq!(h.notifier().deliver_due().await.unwrap().delivered, 2, "the replayed one and the waiting one");
    let replayed = ops(&h, Command::ReplayOutbox { which: Replay::All }).unwrap();
    assert_eq!(replayed.data().unwrap()["replayed"], serde_json::json!([second]));
    assert_eq!(h.notifier().deliver_due().await.unwrap().delivered, 1);
    assert_eq!(posted(h.discord(), TENANT_CHANNEL).await, 2 + 3);
    assert!(h.store().dead_letters().unwrap().is_empty());
    assert!(h.outbox().is_empty());
    let nothing = ops(&h, Command::ReplayOutbox { which: Replay::All }).unwrap();
    assert!(text(&nothing, Lang::En).contains("No dead letters to send again"));
    h.finish().await;
}

#[tokio::test]
async fn a_dead_letter_is_dropped_and_a_tenants_own_notice_is_recorded_in_its_audit_log() {
    let h = Harness::new().at(datetime!(2026-11-26 10:00 UTC)).discord().start().await;
    configure(&h);
    h.register_in(GUILD_A, "123456789012");
    answer(h.discord(), TENANT_CHANNEL, 403, 1).await;
    answer(h.discord(), OPS_CHANNEL, 200, u64::MAX).await;
    h.notifier().deliver_due().await.unwrap();
    h.notifier().deliver_due().await.unwrap();
    let dead = h.store().dead_letters().unwrap();
    assert_eq!(dead[0].reason, "missing_access");
    let reply =
        ops(&h, Command::DropOutbox { id: OutboxId::new(dead[0].item.id), reason: "posted by hand".parse().unwrap() })
            .unwrap();
    assert!(text(&reply, Lang::En).contains("from the dead letters"), "{}", text(&reply, Lang::En));
    assert!(h.store().dead_letters().unwrap().is_empty());

    // A server never seen asks: operations are told it waits (a tenant's
    // own event, no account).
    let stranger = "900000000000000777";
    assert!(h.app().handle(&server_admin(stranger), Command::ListTenants).is_err());
    let pending = h.outbox().into_iter().find(|i| i.event.code() == "tenant_pending").unwrap();
    let reply =
        ops(&h, Command::DropOutbox { id: OutboxId::new(pending.id), reason: "a test server".parse().unwrap() })
            .unwrap();
    assert_eq!(reply.data().unwrap()["recorded_in"], "tenant");
    assert!(text(&reply, Lang::Es).contains("registro de auditoría del cliente"));
    let log: Vec<TenantAuditEntry> = h.store().tenant_audit_log(&stranger.parse().unwrap()).unwrap();
    let entry = log.last().unwrap();
    assert_eq!(entry.actor, operator().id);
    assert!(matches!(
        &entry.events[..],
        [Event::NotificationDropped { account: None, dropped, reason, .. }] if dropped == "tenant_pending" && reason == "a test server"
    ));
    assert!(h.outbox().is_empty());
    h.finish().await;
}

/// AWS credentials that go nowhere: these tests ask AWS nothing.
const OFFLINE: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIAOFFLINE"),
    ("AWS_SECRET_ACCESS_KEY", "offline"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ("AWS_MAX_ATTEMPTS", "1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("ORGLINK_PROBE_ENABLED", "false"),
    ("USER", "ana"),
];

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn json(o: &Orglink, args: &[&str]) -> Value {
    let run = o.run_with(OFFLINE, args);
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str(&run.stdout).unwrap()
}

#[tokio::test]
async fn through_the_running_server_a_replayed_dead_letter_goes_out_at_once() {
    let o = Orglink::new();
    // The tenant's channel, recorded as `/orglink-config` records it.
    {
        let store = o.store();
        let mut settings = store.tenant_settings(&GUILD_A.parse().unwrap()).unwrap();
        settings.channel = Some(chat(TENANT_CHANNEL));
        let entry = TenantAuditEntry {
            at: time::OffsetDateTime::now_utc(),
            actor: "test".into(),
            tenant: GUILD_A.parse().unwrap(),
            settings,
            status: None,
            events: vec![],
        };
        store.set_tenant_settings(&entry).unwrap();
    }
    let add = ["account", "add", "123456789012", "--tenant", GUILD_A, "--customer", "Acme", "--support", "business"];
    assert_eq!(o.run_with(OFFLINE, &add).code, 0);
    // No server: the store itself, the item waiting, nothing stopping it.
    let waiting = json(&o, &["outbox", "--json"]);
    assert_eq!(waiting["items"][0]["event"], "account_registered");
    assert_eq!(waiting["items"][0]["blocked"], Value::Null);

    let discord = Recorder::start().await;
    answer(&discord, TENANT_CHANNEL, 404, 1).await;
    answer(&discord, TENANT_CHANNEL, 200, u64::MAX).await;
    answer(&discord, OPS_CHANNEL, 200, u64::MAX).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = o.path("serve.log");
    let server = Serving(
        Process::new(env!("CARGO_BIN_EXE_orglink"))
            .args(["--data-dir", o.data_dir().to_str().unwrap(), "serve"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ORGLINK_HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .env("ORGLINK_DISCORD_TOKEN", TOKEN)
            // The token for notifications: no gateway.
            .env("ORGLINK_DISCORD_TRANSPORTS", "")
            .env("ORGLINK_DISCORD_API_BASE_URL", discord.uri())
            .env("ORGLINK_DISCORD_OPS_CHANNEL_ID", OPS_CHANNEL)
            .envs(OFFLINE.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // The notifier meets the deleted channel: a dead letter, and
    // operations told.
    discord
        .wait_until("the notice of the undeliverable one", |requests| {
            requests.iter().find(|r| r.url.path() == channel_path(OPS_CHANNEL)).map(|_| ())
        })
        .await;
    let socket = o.data_dir().join("orglink.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no socket: {}", std::fs::read_to_string(&log).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let dead = json(&o, &["outbox", "--dead", "--json"]);
    assert_eq!(dead["dead"], true);
    let items = dead["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{dead:#}");
    assert_eq!(items[0]["reason"], "channel_not_found");
    let id = items[0]["id"].as_u64().unwrap().to_string();

    let run = o.run_with(OFFLINE, &["outbox", "replay", &id]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(&format!("#{id}")), "{}", run.stdout);
    // Sent at once: the server's notifier is woken by the command.
    discord
        .wait_until("the replayed notice", |requests| {
            (requests.iter().filter(|r| r.url.path() == channel_path(TENANT_CHANNEL)).count() == 2).then_some(())
        })
        .await;
    let run = o.run_with(OFFLINE, &["--lang", "es", "outbox", "drop", &id, "--reason", "x"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(&format!("ninguna notificación #{id}")), "{}", run.stderr);
    let run = o.run_with(OFFLINE, &["outbox", "replay", "abc"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("Outbox item number: \"abc\" is not valid"), "{}", run.stderr);
    assert!(json(&o, &["outbox", "--dead", "--json"])["items"].as_array().unwrap().is_empty());
    drop(server);
}

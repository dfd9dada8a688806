//! Outbox delivery to Discord channels through serenity's REST client,
//! against a local recorder: exactly once, retried, never dropped.

use std::sync::Arc;

use orglink::app::{App, Command, Settings};
use orglink::discord::notify::{DeliveryReport, Notifier};
use orglink::domain::{Event, Lang};
use orglink::templates::Templates;
use serde_json::Value;
use time::macros::datetime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::discord::{GUILD_A, OPS_CHANNEL, TOKEN, chat, config, message_json};
use crate::harness::{Harness, Recorder, server_admin};

const TENANT_CHANNEL: &str = "900000000000000002";

/// orglink's app at 10:00 by its clock, and a recorder standing in for
/// Discord, where `h.notifier()` delivers.
async fn setup() -> Harness {
    Harness::new().at(datetime!(2026-11-26 10:00 UTC)).discord().start().await
}

fn configure(h: &Harness, lang: Option<Lang>) {
    let command = Command::Configure { channel: Some(chat(TENANT_CHANNEL)), language: lang, account_role: None };
    h.app().handle(&server_admin(GUILD_A), command).unwrap();
}

fn channel_path(channel: &str) -> String {
    format!("/api/v10/channels/{channel}/messages")
}

async fn answer(h: &Harness, channel: &str, status: u16, times: u64) {
    let response = if status == 200 {
        ResponseTemplate::new(200).set_body_json(message_json(channel))
    } else {
        ResponseTemplate::new(status)
            .set_body_json(serde_json::json!({ "message": "stand-in error", "code": 0, "retry_after": 0.1 }))
    };
    Mock::given(method("POST"))
        .and(path(channel_path(channel)))
        .respond_with(response)
        .up_to_n_times(times)
        .mount(&h.discord().server)
        .await;
}

async fn posted(h: &Harness, channel: &str) -> Vec<Value> {
    h.discord()
        .requests()
        .await
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == channel_path(channel))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// The partial-delivery records the store holds.
fn delivered_keys(h: &Harness) -> usize {
    h.store().export().unwrap().iter().filter(|(tree, _, _)| tree.as_slice() == b"delivered").count()
}

fn embed_text(message: &Value) -> &str {
    message["embeds"][0]["description"].as_str().unwrap()
}

#[tokio::test]
async fn an_event_reaches_the_tenant_channel_once_in_its_language() {
    let h = setup().await;
    configure(&h, Some(Lang::Es));
    h.register_in(GUILD_A, "123456789012");
    answer(&h, TENANT_CHANNEL, 200, u64::MAX).await;

    let report = h.notifier().deliver_due().await.unwrap();
    assert_eq!(report, DeliveryReport { delivered: 1, retried: 0, undeliverable: 0, held: 0 });
    let again = h.notifier().deliver_due().await.unwrap();
    assert_eq!(again, DeliveryReport::default(), "nothing left to send");

    let messages = posted(&h, TENANT_CHANNEL).await;
    assert_eq!(messages.len(), 1);
    let text = embed_text(&messages[0]);
    assert!(text.contains("Se registró la cuenta de AWS `123456789012`"), "{text}");
    let external_id = h.store().account("123456789012".parse().unwrap()).unwrap().unwrap().external_id;
    assert!(!text.contains(external_id.as_str()), "channel messages never show the external ID");
    assert_eq!(messages[0]["enforce_nonce"], true);
    assert!(messages[0]["nonce"].as_str().unwrap().len() <= 25);
    // The bot's token authenticates, and only to the stand-in.
    let request = &h.discord().requests().await[0];
    assert_eq!(request.headers.get("authorization").unwrap(), &format!("Bot {TOKEN}"));
    assert!(h.outbox().is_empty());
    assert!(h.store().dead_letters().unwrap().is_empty());
    h.finish().await;
}

#[tokio::test]
async fn a_429_and_a_500_are_retried_with_backoff_without_duplicates() {
    let h = setup().await;
    configure(&h, None);
    h.register_in(GUILD_A, "123456789012");
    answer(&h, TENANT_CHANNEL, 429, 1).await;
    let report = h.notifier().deliver_due().await.unwrap();
    assert_eq!(report.retried, 1);
    let item = &h.store().outbox().unwrap()[0];
    assert_eq!(item.attempts, 1);
    assert!(item.last_error.as_deref().unwrap().contains("429"));

    // Not due yet: nothing is sent.
    assert_eq!(h.notifier().deliver_due().await.unwrap(), DeliveryReport::default());
    h.clock().advance(time::Duration::seconds(2));
    answer(&h, TENANT_CHANNEL, 500, 1).await;
    assert_eq!(h.notifier().deliver_due().await.unwrap().retried, 1);
    assert_eq!(h.store().outbox().unwrap()[0].attempts, 2);

    h.clock().advance(time::Duration::seconds(4));
    answer(&h, TENANT_CHANNEL, 200, u64::MAX).await;
    assert_eq!(h.notifier().deliver_due().await.unwrap().delivered, 1);
    assert!(h.outbox().is_empty());
    let messages = posted(&h, TENANT_CHANNEL).await;
    assert_eq!(messages.len(), 3, "two failures, one success");
    // Every attempt carried the same nonce, so Discord keeps one message.
    assert!(messages.windows(2).all(|w| w[0]["nonce"] == w[1]["nonce"]));
    h.finish().await;
}

#[tokio::test]
async fn undeliverable_events_are_reported_to_operations_never_dropped() {
    let h = setup().await;
    // No channel configured for the tenant.
    h.register_in(GUILD_A, "123456789012");
    answer(&h, OPS_CHANNEL, 200, u64::MAX).await;
    let report = h.notifier().deliver_due().await.unwrap();
    assert_eq!(report.undeliverable, 1);
    let dead = h.store().dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "no_channel");
    assert!(matches!(dead[0].item.event, Event::AccountRegistered { .. }));

    // The notice to operations goes out next.
    let report = h.notifier().deliver_due().await.unwrap();
    assert_eq!(report.delivered, 1);
    let ops = posted(&h, OPS_CHANNEL).await;
    assert_eq!(ops.len(), 1);
    let text = embed_text(&ops[0]);
    assert!(text.contains("no notification channel set") && text.contains(GUILD_A), "{text}");

    // A channel that no longer exists: the same path.
    configure(&h, None);
    answer(&h, TENANT_CHANNEL, 404, u64::MAX).await;
    h.register_in(GUILD_A, "210987654321");
    h.notifier().deliver_due().await.unwrap();
    h.notifier().deliver_due().await.unwrap();
    assert_eq!(h.store().dead_letters().unwrap().len(), 2);
    let ops = posted(&h, OPS_CHANNEL).await;
    assert!(embed_text(&ops[1]).contains("no longer exists"), "{}", embed_text(&ops[1]));
    assert!(h.outbox().is_empty());
    h.finish().await;
}

#[tokio::test]
async fn events_for_both_audiences_are_posted_once_to_each() {
    let h = setup().await;
    configure(&h, None);
    h.register_in(GUILD_A, "123456789012");
    answer(&h, TENANT_CHANNEL, 200, u64::MAX).await;
    h.notifier().deliver_due().await.unwrap();
    // A linked account concerns the tenant and operations.
    let id = "123456789012".parse().unwrap();
    let now = h.now();
    h.app()
        .update_account(id, &h.account("123456789012").tenant, orglink::store::By::new("test", "link", now), &[], |a| {
            a.state = orglink::domain::LinkState::Invited;
            a.apply(&orglink::domain::Transition::InvitationAccepted, now)
        })
        .unwrap();
    // Operations fails once: the tenant's part is not sent twice.
    answer(&h, OPS_CHANNEL, 500, 1).await;
    assert_eq!(h.notifier().deliver_due().await.unwrap().retried, 1);
    // The tenant got it; the retry must not send it there again.
    assert_eq!(delivered_keys(&h), 1);
    h.clock().advance(time::Duration::minutes(1));
    answer(&h, OPS_CHANNEL, 200, u64::MAX).await;
    assert_eq!(h.notifier().deliver_due().await.unwrap().delivered, 1);
    assert_eq!(delivered_keys(&h), 0, "delivered: nothing is kept per message");
    let tenant = posted(&h, TENANT_CHANNEL).await;
    let ops = posted(&h, OPS_CHANNEL).await;
    assert_eq!(tenant.len(), 2, "registration and link, each once");
    assert!(embed_text(&tenant[1]).contains("is linked"));
    assert_eq!(ops.len(), 2, "one failed attempt, one success");
    assert!(embed_text(&ops[1]).contains(GUILD_A), "operations see the tenant");
    h.finish().await;
}

/// A local address where nothing listens: connection refused.
fn closed_port() -> String {
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    format!("http://{addr}")
}

#[tokio::test]
async fn outages_of_discord_freshdesk_and_aws_lose_nothing_and_repeat_nothing() {
    use orglink::freshdesk::desk::TicketDesk;
    use orglink::scheduler::Job;
    use std::time::Duration;

    let h = setup().await;
    let mut notifier = h.notifier();
    notifier.timeout = Duration::from_millis(300);
    configure(&h, None);
    h.register_in(GUILD_A, "123456789012");
    h.register_in(GUILD_A, "123456789013");
    let freshdesk = Recorder::start().await;
    let desk = |base_url: &str| {
        let config = crate::harness::freshdesk_config(base_url);
        TicketDesk::new(config, Templates::embedded(), Duration::from_millis(300)).unwrap()
    };
    // orglink with AWS refusing connections and Freshdesk as `url` says.
    let app = |url: &str| {
        let aws_config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(closed_port())
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"),
            ))
            .build();
        let retry = orglink::aws::RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) };
        App::new(h.store().clone(), Settings::default(), h.shared_clock())
            .with_aws(orglink::aws::Aws::new(aws_config, retry))
            .with_ticket_desk(desk(url))
    };
    let ticket = Command::OpenTicket { account: "123456789012".parse().unwrap(), reason: "help".parse().unwrap() };
    app(&freshdesk.uri()).execute(&server_admin(GUILD_A), ticket).await.unwrap();

    // The outage: each service fails in each way, one after the other.
    let discord_down = [
        ResponseTemplate::new(503),
        ResponseTemplate::new(200).set_body_json(message_json(TENANT_CHANNEL)).set_delay(Duration::from_secs(2)),
    ];
    let freshdesk_down = [ResponseTemplate::new(500), ResponseTemplate::new(201).set_delay(Duration::from_secs(2))];
    for (discord, desk_answer) in discord_down.into_iter().zip(freshdesk_down) {
        h.discord().reset().await;
        freshdesk.reset().await;
        Mock::given(method("POST")).respond_with(discord).mount(&h.discord().server).await;
        Mock::given(wiremock::matchers::any()).respond_with(desk_answer).mount(&freshdesk.server).await;
        h.clock().advance(time::Duration::hours(1));
        let report = notifier.deliver_due().await.unwrap();
        assert_eq!((report.delivered, report.undeliverable), (0, 0), "{report:?}");
        let app = app(&freshdesk.uri());
        assert_eq!(app.run_job(Job::OpenTickets).await.unwrap().changed, 0);
        // The other jobs go on: AWS refuses, the rest have nothing to fix.
        let probed = app.run_job(Job::ProbeRoles).await.unwrap();
        assert_eq!(probed.unchecked.len(), 1, "{probed:?}");
        app.run_job(Job::AuditSupportPlans).await.unwrap();
        app.run_job(Job::RemindInvitations).await.unwrap();
    }
    // Connection refused, for Discord and Freshdesk alike.
    let refused = Notifier {
        http: Arc::new(orglink::discord::http_client(&config(&closed_port(), &"00".repeat(32)).discord)),
        store: h.store().clone(),
        templates: Templates::embedded(),
        ops_channel: notifier.ops_channel,
        default_lang: Lang::En,
        clock: h.shared_clock(),
        timeout: Duration::from_millis(300),
    };
    h.clock().advance(time::Duration::hours(1));
    assert_eq!(refused.deliver_due().await.unwrap().delivered, 0);
    assert_eq!(app(&closed_port()).run_job(Job::OpenTickets).await.unwrap().changed, 0);
    assert!(h.store().dead_letters().unwrap().is_empty(), "an outage is not a reason to give up");

    // Back: everything arrives once.
    h.discord().reset().await;
    freshdesk.reset().await;
    answer(&h, TENANT_CHANNEL, 200, u64::MAX).await;
    answer(&h, OPS_CHANNEL, 200, u64::MAX).await;
    Mock::given(method("GET"))
        .and(path("/api/v2/search/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "results": [] })))
        .mount(&freshdesk.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&freshdesk.server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({ "id": 77, "tags": [] })))
        .mount(&freshdesk.server)
        .await;
    for _ in 0..3 {
        h.clock().advance(time::Duration::hours(1));
        app(&freshdesk.uri()).run_job(Job::OpenTickets).await.unwrap();
        notifier.deliver_due().await.unwrap();
    }
    let left = h.outbox();
    assert!(left.is_empty(), "{left:?}");
    assert!(h.store().ticket_requests().unwrap().is_empty());
    let created = freshdesk.requests().await;
    assert_eq!(created.iter().filter(|r| r.method.as_str() == "POST").count(), 1, "one ticket");
    // Tenant: two registrations, the ticket opened. Operations: Freshdesk
    // was down (told once), the ticket opened. One message per nonce.
    for (channel, expected) in [(TENANT_CHANNEL, 3), (OPS_CHANNEL, 2)] {
        let nonces: std::collections::BTreeSet<String> =
            posted(&h, channel).await.iter().map(|m| m["nonce"].as_str().unwrap().to_owned()).collect();
        assert_eq!(nonces.len(), expected, "{channel}");
    }
    h.finish().await;
}

#[tokio::test]
async fn what_waited_for_a_channel_is_posted_once_one_is_set() {
    let h = setup().await;
    answer(&h, OPS_CHANNEL, 200, u64::MAX).await;
    answer(&h, TENANT_CHANNEL, 200, u64::MAX).await;
    // Registered before the server chose a channel: it cannot be posted.
    h.register_in(GUILD_A, "123456789012");
    h.notifier().deliver_due().await.unwrap();
    h.notifier().deliver_due().await.unwrap();
    assert_eq!(h.store().dead_letters().unwrap().len(), 1);
    assert!(posted(&h, TENANT_CHANNEL).await.is_empty());

    // The channel is set: the reply says what will follow, and it does.
    let command = Command::Configure { channel: Some(chat(TENANT_CHANNEL)), language: None, account_role: None };
    let reply = h.app().handle(&server_admin(GUILD_A), command).unwrap();
    assert_eq!(reply.data().unwrap()["replayed"], 1);
    let text = reply.messages[0].render(&Templates::embedded(), Lang::En).unwrap().text;
    assert!(text.contains("1 notification that waited for a channel"), "{text}");
    assert!(h.store().dead_letters().unwrap().is_empty());
    assert_eq!(h.notifier().deliver_due().await.unwrap().delivered, 1);
    let tenant = posted(&h, TENANT_CHANNEL).await;
    assert_eq!(tenant.len(), 1);
    assert!(embed_text(&tenant[0]).contains("was registered"), "{}", embed_text(&tenant[0]));
    // Setting it again replays nothing more.
    let again = Command::Configure { channel: Some(chat(TENANT_CHANNEL)), language: None, account_role: None };
    assert_eq!(h.app().handle(&server_admin(GUILD_A), again).unwrap().data().unwrap()["replayed"], 0);
    assert!(h.outbox().is_empty());
    h.finish().await;
}

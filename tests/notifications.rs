//! Outbox delivery to Discord channels through serenity's REST client,
//! against a local recorder: exactly once, retried, never dropped.

#[path = "harness/discord.rs"]
mod discord_harness;
mod harness;

use std::sync::Arc;

use discord_harness::*;
use orglink::app::{Actor, App, Command, Rights, Scope, Settings};
use orglink::clock::ManualClock;
use orglink::discord::notify::{DeliveryReport, Notifier};
use orglink::domain::{Event, Lang, NewAccount, SupportTier};
use orglink::store::Store;
use orglink::templates::Templates;
use serde_json::Value;
use time::macros::datetime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT_CHANNEL: &str = "900000000000000002";

struct Setup {
    discord: MockServer,
    store: Store,
    app: App,
    clock: Arc<ManualClock>,
    notifier: Notifier,
}

async fn setup() -> Setup {
    let discord = MockServer::start().await;
    let store = Store::temporary().unwrap();
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-26 10:00 UTC)));
    let app = App::new(store.clone(), Settings::default(), clock.clone());
    let config = config(&discord.uri(), &"00".repeat(32));
    let notifier = Notifier {
        store: store.clone(),
        http: Arc::new(orglink::discord::http_client(&config.discord)),
        templates: Templates::embedded(),
        ops_channel: config.discord.ops_channel_id,
        default_lang: Lang::En,
        clock: clock.clone(),
    };
    Setup { discord, store, app, clock, notifier }
}

fn admin(guild: &str) -> Actor {
    Actor {
        id: "discord:700000000000000001".into(),
        scope: Scope::Tenant(guild.parse().unwrap()),
        rights: Rights { manage_server: true, ..Default::default() },
    }
}

fn register(s: &Setup, account: &str) {
    let new = NewAccount {
        id: account.parse().unwrap(),
        tenant: GUILD_A.parse().unwrap(),
        customer: "Acme".parse().unwrap(),
        root_email: None,
        support_tier: SupportTier::Business,
        kind: Default::default(),
        price_book: None,
    };
    s.app.handle(&admin(GUILD_A), Command::AddAccount(new)).unwrap();
}

fn configure(s: &Setup, lang: Option<Lang>) {
    let command = Command::Configure { channel: Some(chat(TENANT_CHANNEL)), language: lang, account_role: None };
    s.app.handle(&admin(GUILD_A), command).unwrap();
}

fn channel_path(channel: &str) -> String {
    format!("/api/v10/channels/{channel}/messages")
}

async fn answer(s: &Setup, channel: &str, status: u16, times: u64) {
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
        .mount(&s.discord)
        .await;
}

async fn posted(s: &Setup, channel: &str) -> Vec<Value> {
    s.discord
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == channel_path(channel))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn embed_text(message: &Value) -> &str {
    message["embeds"][0]["description"].as_str().unwrap()
}

#[tokio::test]
async fn an_event_reaches_the_tenant_channel_once_in_its_language() {
    let s = setup().await;
    configure(&s, Some(Lang::Es));
    register(&s, "123456789012");
    answer(&s, TENANT_CHANNEL, 200, u64::MAX).await;

    let report = s.notifier.deliver_due().await.unwrap();
    assert_eq!(report, DeliveryReport { delivered: 1, retried: 0, undeliverable: 0 });
    let again = s.notifier.deliver_due().await.unwrap();
    assert_eq!(again, DeliveryReport::default(), "nothing left to send");

    let messages = posted(&s, TENANT_CHANNEL).await;
    assert_eq!(messages.len(), 1);
    let text = embed_text(&messages[0]);
    assert!(text.contains("Se registró la cuenta de AWS `123456789012`"), "{text}");
    let external_id = s.store.account("123456789012".parse().unwrap()).unwrap().unwrap().external_id;
    assert!(!text.contains(external_id.as_str()), "channel messages never show the external ID");
    assert_eq!(messages[0]["enforce_nonce"], true);
    assert!(messages[0]["nonce"].as_str().unwrap().len() <= 25);
    // The bot's token authenticates, and only to the stand-in.
    let request = &s.discord.received_requests().await.unwrap()[0];
    assert_eq!(request.headers.get("authorization").unwrap(), &format!("Bot {TOKEN}"));
    assert!(s.store.outbox().unwrap().is_empty());
    assert!(s.store.dead_letters().unwrap().is_empty());
}

#[tokio::test]
async fn a_429_and_a_500_are_retried_with_backoff_without_duplicates() {
    let s = setup().await;
    configure(&s, None);
    register(&s, "123456789012");
    answer(&s, TENANT_CHANNEL, 429, 1).await;
    let report = s.notifier.deliver_due().await.unwrap();
    assert_eq!(report.retried, 1);
    let item = &s.store.outbox().unwrap()[0];
    assert_eq!(item.attempts, 1);
    assert!(item.last_error.as_deref().unwrap().contains("429"));

    // Not due yet: nothing is sent.
    assert_eq!(s.notifier.deliver_due().await.unwrap(), DeliveryReport::default());
    s.clock.advance(time::Duration::seconds(2));
    answer(&s, TENANT_CHANNEL, 500, 1).await;
    assert_eq!(s.notifier.deliver_due().await.unwrap().retried, 1);
    assert_eq!(s.store.outbox().unwrap()[0].attempts, 2);

    s.clock.advance(time::Duration::seconds(4));
    answer(&s, TENANT_CHANNEL, 200, u64::MAX).await;
    assert_eq!(s.notifier.deliver_due().await.unwrap().delivered, 1);
    assert!(s.store.outbox().unwrap().is_empty());
    let messages = posted(&s, TENANT_CHANNEL).await;
    assert_eq!(messages.len(), 3, "two failures, one success");
    // Every attempt carried the same nonce, so Discord keeps one message.
    assert!(messages.windows(2).all(|w| w[0]["nonce"] == w[1]["nonce"]));
}

#[tokio::test]
async fn undeliverable_events_are_reported_to_operations_never_dropped() {
    let s = setup().await;
    // No channel configured for the tenant.
    register(&s, "123456789012");
    answer(&s, OPS_CHANNEL, 200, u64::MAX).await;
    let report = s.notifier.deliver_due().await.unwrap();
    assert_eq!(report.undeliverable, 1);
    let dead = s.store.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "no_channel");
    assert!(matches!(dead[0].item.event, Event::AccountRegistered { .. }));

    // The notice to operations goes out next.
    let report = s.notifier.deliver_due().await.unwrap();
    assert_eq!(report.delivered, 1);
    let ops = posted(&s, OPS_CHANNEL).await;
    assert_eq!(ops.len(), 1);
    let text = embed_text(&ops[0]);
    assert!(text.contains("no notification channel set") && text.contains(GUILD_A), "{text}");

    // A channel that no longer exists: the same path.
    configure(&s, None);
    answer(&s, TENANT_CHANNEL, 404, u64::MAX).await;
    register(&s, "210987654321");
    s.notifier.deliver_due().await.unwrap();
    s.notifier.deliver_due().await.unwrap();
    assert_eq!(s.store.dead_letters().unwrap().len(), 2);
    let ops = posted(&s, OPS_CHANNEL).await;
    assert!(embed_text(&ops[1]).contains("no longer exists"), "{}", embed_text(&ops[1]));
    assert!(s.store.outbox().unwrap().is_empty());
}

#[tokio::test]
async fn events_for_both_audiences_are_posted_once_to_each() {
    let s = setup().await;
    configure(&s, None);
    register(&s, "123456789012");
    answer(&s, TENANT_CHANNEL, 200, u64::MAX).await;
    s.notifier.deliver_due().await.unwrap();
    // A linked account concerns the tenant and operations.
    let id = "123456789012".parse().unwrap();
    let now = orglink::clock::Clock::now(&*s.clock);
    s.store
        .update_account(id, "test", "link", now, |a| {
            a.state = orglink::domain::LinkState::Invited;
            a.apply(&orglink::domain::Transition::InvitationAccepted, now)
        })
        .unwrap();
    // Operations fails once: the tenant's part is not sent twice.
    answer(&s, OPS_CHANNEL, 500, 1).await;
    assert_eq!(s.notifier.deliver_due().await.unwrap().retried, 1);
    s.clock.advance(time::Duration::minutes(1));
    answer(&s, OPS_CHANNEL, 200, u64::MAX).await;
    assert_eq!(s.notifier.deliver_due().await.unwrap().delivered, 1);
    let tenant = posted(&s, TENANT_CHANNEL).await;
    let ops = posted(&s, OPS_CHANNEL).await;
    assert_eq!(tenant.len(), 2, "registration and link, each once");
    assert!(embed_text(&tenant[1]).contains("is linked"));
    assert_eq!(ops.len(), 2, "one failed attempt, one success");
    assert!(embed_text(&ops[1]).contains(GUILD_A), "operations see the tenant");
}

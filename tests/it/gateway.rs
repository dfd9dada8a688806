//! The gateway transport end to end: serenity's client, as `orglink serve`
//! supervises it, against a local fake Discord gateway
//! (`harness::gateway::FakeGateway`) named by the REST recorder
//! (`GET /gateway`, `GET /gateway/bot`); interactions received over it are
//! answered at the recorder. The supervisor's backoff is shortened to
//! milliseconds (`harness::discord::config`) and orglink's clock is a
//! `ManualClock`, moved past `http.gateway_grace` rather than waited for.

use std::sync::Arc;

use orglink::app::{App, Command, Settings};
use orglink::clock::ManualClock;
use orglink::config::{Config, Transport};
use orglink::domain::SupportTier;
use orglink::server::Running;
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::discord::*;
use crate::harness::gateway::{FakeGateway, Seen};
use crate::harness::{Logs, Recorder, new_account, operator};

const T0: time::OffsetDateTime = time::macros::datetime!(2026-12-01 12:00 UTC);

/// Discord's REST API as the gateway's bot uses it: interaction callbacks
/// and channel messages (the notifier tells operations of the account).
async fn rest(recorder: &Recorder) {
    Mock::given(method("POST"))
        .and(path_regex(r"^/api/v10/channels/\d+/messages$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(message_json(OPS_GUILD)))
        .mount(&recorder.server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/api/v10/interactions/\d+/[^/]+/callback$"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&recorder.server)
        .await;
}

/// `orglink serve` with the gateway alone (no public key) against the REST
/// API at `rest_url`, on a manual clock at `T0`, one account registered.
async fn serve(rest_url: &str, change: impl FnOnce(&mut Config)) -> (Running, Arc<ManualClock>) {
    let store = orglink::store::Store::temporary().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    App::new(store.clone(), Settings::default(), clock.clone())
        .handle(&operator(), Command::AddAccount(new_account("123456789012", "acme", SupportTier::Basic)))
        .unwrap();
    let mut config = config(rest_url, "");
    config.discord.public_key = None;
    change(&mut config);
    let running = orglink::server::start(config, orglink::templates::Templates::embedded(), store, clock.clone(), None)
        .await
        .unwrap();
    (running, clock)
}

async fn healthz(running: &Running) -> (u16, Value) {
    let response = reqwest::get(format!("http://{}/healthz", running.http_addr)).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// A metric's value as `/metrics` shows it.
async fn metric(running: &Running, name: &str) -> String {
    let text = reqwest::get(format!("http://{}/metrics", running.http_addr)).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_owned()
}

/// Waits until `/healthz` says `done` (checked every 10 ms, for at most
/// the recorder's patience).
async fn healthz_until(running: &Running, what: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + crate::harness::recorder::PATIENCE;
    loop {
        let (status, body) = healthz(running).await;
        if done(status, &body) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: /healthz says {status} {body:#}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// `/status` of the registered account sent over the gateway as
/// interaction `id`; the callback orglink sent for it.
async fn ask_status(fake: &FakeGateway, recorder: &Recorder, id: &str) -> Value {
    let mut status = command("status", &[("account_id", "123456789012")], OPS_GUILD, "en-US", ADMIN, &[OPS_ROLE]);
    status["id"] = json!(id);
    status["token"] = json!(format!("gateway-token-{id}"));
    fake.dispatch("INTERACTION_CREATE", status);
    let callback = recorder.wait_for("POST", &format!("/api/v10/interactions/{id}/*/callback")).await;
    assert!(callback.url.path().ends_with(&format!("/gateway-token-{id}/callback")), "{}", callback.url);
    serde_json::from_slice(&callback.body).unwrap()
}

fn answered_with_the_account(body: &Value) {
    assert_eq!(body["type"], 4, "answered at once: {body}");
    let text = embeds_text(&body["data"]);
    assert!(text.contains("123456789012") && text.contains("Acme"), "{body}");
}

/// The waits the supervisor logged, in order (`retry_in_ms`), with the
/// lines.
fn retries(logs: &Logs, message: &str) -> (Vec<u64>, Vec<String>) {
    let lines: Vec<String> = logs.text().lines().filter(|l| l.contains(message)).map(str::to_owned).collect();
    let waits = lines
        .iter()
        .map(|l| {
            let at = l.find("retry_in_ms=").unwrap_or_else(|| panic!("no wait in {l}"));
            l[at + "retry_in_ms=".len()..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
        })
        .collect();
    (waits, lines)
}

const DOWN: &str = "the Discord gateway is down; trying again";

#[tokio::test]
async fn an_interaction_over_the_gateway_is_answered_over_rest() {
    let recorder = Recorder::start().await;
    rest(&recorder).await;
    let fake = FakeGateway::start().await;
    fake.named_by(&recorder).await;
    let (running, _clock) = serve(&recorder.uri(), |_| {}).await;

    let identify = fake.identified(1).await;
    assert_eq!(identify["token"], format!("Bot {TOKEN}"), "{identify}");
    // Before serenity, the supervisor asked the gateway for its HELLO and
    // closed: one connection without IDENTIFY.
    let seen = fake.seen();
    assert_eq!(seen[..3], [Seen::Hello, Seen::Ended, Seen::Hello], "{seen:#?}");
    let body = healthz_until(&running, "connected", |status, body| {
        status == 200 && body["transports"]["gateway"]["state"] == "connected"
    })
    .await;
    assert_eq!(body["transports"]["http"], json!({ "state": "off" }), "{body:#}");
    assert_eq!(metric(&running, "orglink_gateway_connected").await, "1");
    assert_eq!(metric(&running, "orglink_gateway_reconnects_total").await, "0");

    answered_with_the_account(&ask_status(&fake, &recorder, "1300000000000000777").await);
    running.stop().await;
}

/// The gateway refuses the first 3 connections: each is an attempt that
/// failed, logged once with its cause and a longer wait; down past the
/// grace, `/healthz` fails; once the gateway accepts, the bot connects
/// without a restart, `/healthz` passes and interactions are answered.
#[tokio::test]
async fn a_gateway_refusing_connections_is_tried_again_until_it_accepts() {
    let logs = Logs::new("orglink=info");
    let _capture = logs.capture();
    let recorder = Recorder::start().await;
    rest(&recorder).await;
    let fake = FakeGateway::start().await;
    fake.named_by(&recorder).await;
    fake.refuse_next(3);
    // The fourth waits, so the test looks while the gateway is still down.
    fake.hold();
    let (running, clock) = serve(&recorder.uri(), |_| {}).await;

    fake.wait_until("three refusals and a fourth attempt", |seen| {
        (seen.iter().filter(|s| **s == Seen::Refused).count() == 3 && seen.contains(&Seen::Held)).then_some(())
    })
    .await;
    let (waits, lines) = retries(&logs, DOWN);
    assert_eq!(waits.len(), 3, "{lines:#?}");
    assert!(waits.windows(2).all(|w| w[0] < w[1]), "growing waits: {waits:?}");
    assert!(lines.iter().all(|l| l.contains(&fake.url)), "each names its cause: {lines:#?}");
    // Down, within the grace: healthy; past it, not.
    let (status, body) = healthz(&running).await;
    assert_eq!(status, 200, "{body:#}");
    let gateway = &body["transports"]["gateway"];
    assert_eq!((gateway["state"].as_str(), gateway["attempts"].as_u64()), (Some("connecting"), Some(4)), "{body:#}");
    assert_eq!(gateway["since"], "2026-12-01T12:00:00Z");
    assert!(gateway["last_error"].as_str().unwrap().contains(&fake.url), "{body:#}");
    assert_eq!(gateway["configuration_error"], false);
    clock.advance(time::Duration::seconds(61));
    let (status, body) = healthz(&running).await;
    assert_eq!(status, 503, "{body:#}");
    assert_eq!(body["interactions"], "not_taken");
    assert_eq!(metric(&running, "orglink_gateway_connected").await, "0");

    fake.open();
    fake.identified(1).await;
    healthz_until(&running, "connected", |status, body| {
        status == 200 && body["transports"]["gateway"]["state"] == "connected"
    })
    .await;
    answered_with_the_account(&ask_status(&fake, &recorder, "1300000000000000778").await);
    assert_eq!(metric(&running, "orglink_gateway_reconnects_total").await, "3", "three starts after the first");
    running.stop().await;
}

/// Discord unreachable at start (nothing listens at its REST address):
/// `/healthz` fails past the grace, the log shows retries with growing
/// waits, and once Discord answers the bot connects without a restart.
#[tokio::test]
async fn discord_unreachable_at_start_is_tried_again_until_it_answers() {
    let logs = Logs::new("orglink=info");
    let _capture = logs.capture();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = port.local_addr().unwrap();
    drop(port);
    let (running, clock) = serve(&format!("http://{address}"), |_| {}).await;

    let deadline = tokio::time::Instant::now() + crate::harness::recorder::PATIENCE;
    let waits = loop {
        let (waits, lines) = retries(&logs, DOWN);
        if waits.len() >= 4 {
            // The cause itself, not only serenity's "Error while sending HTTP request.".
            assert!(
                lines.iter().all(|l| l.contains("GET /gateway/bot") && l.contains("onnection refused")),
                "{lines:#?}"
            );
            break waits;
        }
        assert!(tokio::time::Instant::now() < deadline, "{lines:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(waits.windows(2).all(|w| w[0] < w[1]), "growing waits: {waits:?}");
    clock.advance(time::Duration::seconds(61));
    let (status, body) = healthz(&running).await;
    assert_eq!(status, 503, "{body:#}");
    assert!(body["transports"]["gateway"]["attempts"].as_u64().unwrap() >= 4, "{body:#}");

    // Discord answers there now.
    let recorder = Recorder::start_on(std::net::TcpListener::bind(address).unwrap()).await;
    rest(&recorder).await;
    let fake = FakeGateway::start().await;
    fake.named_by(&recorder).await;
    fake.identified(1).await;
    healthz_until(&running, "connected", |status, body| {
        status == 200 && body["transports"]["gateway"]["state"] == "connected"
    })
    .await;
    answered_with_the_account(&ask_status(&fake, &recorder, "1300000000000000779").await);
    running.stop().await;
}

/// The gateway closes the session mid-way (a close code that allows it):
/// serenity resumes it with its session ID and sequence, and the bot goes
/// on answering; counted as a reconnect.
#[tokio::test]
async fn a_session_closed_mid_way_is_resumed() {
    let recorder = Recorder::start().await;
    rest(&recorder).await;
    let fake = FakeGateway::start().await;
    fake.named_by(&recorder).await;
    let (running, _clock) = serve(&recorder.uri(), |_| {}).await;
    fake.identified(1).await;
    answered_with_the_account(&ask_status(&fake, &recorder, "1300000000000000780").await);

    fake.close_session(4000);
    let resume = fake
        .wait_until("a RESUME", |seen| {
            seen.iter().find_map(|s| if let Seen::Resume(d) = s { Some(d.clone()) } else { None })
        })
        .await;
    assert_eq!(resume["session_id"], "fake-session-1", "{resume}");
    assert_eq!(resume["seq"], 2, "READY and the interaction: {resume}");
    assert_eq!(resume["token"], format!("Bot {TOKEN}"));
    answered_with_the_account(&ask_status(&fake, &recorder, "1300000000000000781").await);
    let identifies = fake.seen().iter().filter(|s| matches!(s, Seen::Identify(_))).count();
    assert_eq!(identifies, 1, "resumed, not identified again");
    let (status, body) = healthz(&running).await;
    assert_eq!((status, &body["transports"]["gateway"]["state"]), (200, &json!("connected")), "{body:#}");
    assert_eq!(metric(&running, "orglink_gateway_reconnects_total").await, "1");
    running.stop().await;
}

/// Close 4004 (authentication failed): a configuration error, logged as
/// such, shown by `/healthz`, and tried again at the longest wait.
#[tokio::test]
async fn a_rejected_token_is_a_configuration_error_tried_again_slowly() {
    let logs = Logs::new("orglink=info");
    let _capture = logs.capture();
    let recorder = Recorder::start().await;
    rest(&recorder).await;
    let fake = FakeGateway::start().await;
    fake.named_by(&recorder).await;
    fake.close_identify_with(Some(4004));
    let (running, _clock) = serve(&recorder.uri(), |_| {}).await;

    fake.identified(1).await;
    let first = std::time::Instant::now();
    let rejected = "Discord rejected discord.token: a configuration error";
    let body = healthz_until(&running, "the configuration error", |_, body| {
        body["transports"]["gateway"]["configuration_error"] == true
    })
    .await;
    assert!(body["transports"]["gateway"]["last_error"].as_str().unwrap().contains("4004"), "{body:#}");
    let (waits, lines) = retries(&logs, rejected);
    assert_eq!(waits.len(), 1, "{}", logs.text());
    assert!(lines[0].contains("ERROR") && lines[0].contains("4004"), "{lines:#?}");
    // The longest wait (400 ms here, less its jitter), not the first (20 ms).
    assert!(waits[0] >= 300, "{waits:?}");
    fake.identified(2).await;
    assert!(first.elapsed() >= std::time::Duration::from_millis(250), "slowly: {:?}", first.elapsed());
    // Stopping (what SIGTERM does) does not wait for the next attempt.
    fake.wait_until("the second refusal", |seen| {
        (seen.iter().filter(|s| **s == Seen::ClosedWith(4004)).count() == 2).then_some(())
    })
    .await;
    let stopping = std::time::Instant::now();
    running.stop().await;
    assert!(stopping.elapsed() < std::time::Duration::from_secs(2), "{:?}", stopping.elapsed());
}

/// A token Discord's REST API refuses (401 on `GET /gateway/bot`): the
/// same configuration error, before any connection to the gateway.
#[tokio::test]
async fn a_token_refused_over_rest_is_a_configuration_error() {
    let logs = Logs::new("orglink=info");
    let _capture = logs.capture();
    let recorder = Recorder::start().await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path("/api/v10/gateway/bot"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({ "message": "401: Unauthorized", "code": 0 })))
        .mount(&recorder.server)
        .await;
    let (running, _clock) = serve(&recorder.uri(), |_| {}).await;
    let body = healthz_until(&running, "the configuration error", |_, body| {
        body["transports"]["gateway"]["configuration_error"] == true
    })
    .await;
    assert!(body["transports"]["gateway"]["last_error"].as_str().unwrap().contains("401"), "{body:#}");
    let (waits, _) = retries(&logs, "Discord rejected discord.token: a configuration error");
    assert!(waits.len() == 1 && waits[0] >= 300, "{waits:?}: {}", logs.text());
    running.stop().await;
}

/// `discord.transports = ["http"]` with a token: notifications can go out,
/// but no gateway connection is attempted, and `/healthz` shows it off.
#[tokio::test]
async fn with_http_alone_no_gateway_connection_is_attempted() {
    let recorder = Recorder::start().await;
    rest(&recorder).await;
    let fake = FakeGateway::start().await;
    fake.named_by(&recorder).await;
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let (running, _clock) = serve(&recorder.uri(), |config| {
        config.discord.public_key = Some(hex::encode(key.to_bytes()));
        config.discord.transports = Some(vec![Transport::Http]);
    })
    .await;
    // Long enough for a supervisor to have asked: its first request goes
    // out at once.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, body) = healthz(&running).await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["transports"]["gateway"], json!({ "state": "off" }));
    assert_eq!(body["transports"]["http"]["state"], "connected");
    assert_eq!(metric(&running, "orglink_gateway_connected").await, "0");
    let asked: Vec<String> = recorder
        .requests()
        .await
        .iter()
        .map(|r| r.url.path().to_owned())
        .filter(|p| p.starts_with("/api/v10/gateway"))
        .collect();
    assert!(asked.is_empty(), "{asked:?}");
    assert_eq!(fake.seen(), []);
    running.stop().await;
}

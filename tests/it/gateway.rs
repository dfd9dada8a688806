//! The gateway transport end to end: serenity's client, as `orglink serve`
//! starts it, reaches a local fake Discord gateway through the configured
//! REST base URL (`GET /gateway` and `/gateway/bot` name a `ws://` URL), and
//! an interaction received over it is answered at the REST recorder.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use orglink::app::{App, Command, Settings};
use orglink::domain::SupportTier;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::discord::*;
use crate::harness::{Recorder, new_account, operator};

/// How long the fake gateway waits for the client's next frame.
const PATIENCE: Duration = Duration::from_secs(20);

/// The next JSON frame the client sends that is not a heartbeat.
async fn next_frame<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("the client sends a frame")
            .expect("the connection stays open")
            .unwrap();
        if let Message::Text(text) = message {
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["op"] != 1 {
                return frame;
            }
        }
    }
}

async fn send<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, frame: Value)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::Text(frame.to_string())).await.unwrap();
}

#[tokio::test]
async fn an_interaction_over_the_gateway_is_answered_over_rest() {
    // The fake gateway listens before orglink learns its URL from REST.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_url = format!("ws://{}", listener.local_addr().unwrap());
    let recorder = Recorder::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v10/gateway"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "url": ws_url })))
        .mount(&recorder.server)
        .await;
    let limit = json!({ "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1 });
    Mock::given(method("GET"))
        .and(path("/api/v10/gateway/bot"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "url": ws_url, "shards": 1, "session_start_limit": limit })),
        )
        .mount(&recorder.server)
        .await;
    // The notifier tells operations of the registration meanwhile.
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

    let store = orglink::store::Store::temporary().unwrap();
    let clock = std::sync::Arc::new(orglink::clock::SystemClock);
    App::new(store.clone(), Settings::default(), clock.clone())
        .handle(&operator(), Command::AddAccount(new_account("123456789012", "acme", SupportTier::Basic)))
        .unwrap();
    let mut config = config(&recorder.uri(), "");
    // The gateway alone: no HTTP interactions endpoint.
    config.discord.public_key = None;
    let running =
        orglink::server::start(config, orglink::templates::Templates::embedded(), store, clock, None).await.unwrap();

    let (stream, _) = tokio::time::timeout(PATIENCE, listener.accept()).await.expect("serenity connects").unwrap();
    let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
    send(&mut ws, json!({ "op": 10, "d": { "heartbeat_interval": 45000 } })).await;
    let identify = next_frame(&mut ws).await;
    assert_eq!(identify["op"], 2, "{identify}");
    assert_eq!(identify["d"]["token"], format!("Bot {TOKEN}"), "{identify}");
    let user =
        json!({ "id": APPLICATION_ID, "username": "orglink", "discriminator": "0", "avatar": null, "bot": true });
    let ready = json!({
        "v": 10,
        "user": user,
        "guilds": [],
        "session_id": "fake-session",
        "resume_gateway_url": ws_url,
        "shard": [0, 1],
        "application": { "id": APPLICATION_ID, "flags": 0 },
    });
    send(&mut ws, json!({ "op": 0, "s": 1, "t": "READY", "d": ready })).await;
    let mut status = command("status", &[("account_id", "123456789012")], OPS_GUILD, "en-US", ADMIN, &[OPS_ROLE]);
    status["id"] = json!("1300000000000000777");
    status["token"] = json!("gateway-interaction-token");
    send(&mut ws, json!({ "op": 0, "s": 2, "t": "INTERACTION_CREATE", "d": status })).await;

    let callback = recorder.wait_for("POST", "/api/v10/interactions/1300000000000000777/*/callback").await;
    assert!(callback.url.path().ends_with("/gateway-interaction-token/callback"), "{}", callback.url);
    let body: Value = serde_json::from_slice(&callback.body).unwrap();
    assert_eq!(body["type"], 4, "answered at once: {body}");
    let text = embeds_text(&body["data"]);
    assert!(text.contains("123456789012") && text.contains("Acme"), "{body}");
    running.stop().await;
}

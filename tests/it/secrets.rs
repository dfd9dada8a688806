//! No secret reaches a log line, a reply or the store: a scenario through
//! every outside service runs with every log line captured (debug, every
//! crate), then all of it is searched for the configured secrets.

use crate::harness::aws as aws_harness;
use crate::harness::discord as discord_harness;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_harness::*;
use base64::Engine as _;
use discord_harness::*;
use orglink::aws::organizations::Distributor;
use orglink::aws::{Aws, RetryPolicy};
use orglink::clock::SystemClock;
use orglink::config::{FreshdeskConfig, Secret};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FRESHDESK_KEY: &str = "fd-secret-api-key-0123456789";

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_secret_in_logs_replies_or_the_store() {
    // Everything at debug, but the recorders standing in for Discord and
    // Freshdesk (wiremock logs the requests it receives, headers included).
    // Other tests run in this binary too: the capture is this test's
    // runtime's alone, its own thread and every thread it starts.
    let filter = "debug,wiremock=off";
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| Capture).with_ansi(false).finish(),
    );
    let on_start = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&on_start)))
        .build()
        .unwrap();
    let _capture = tracing::dispatcher::set_default(&dispatch);
    runtime.block_on(scenario());
}

async fn scenario() {
    let e = emulator();
    let keys = distributor_keys().await;
    let config = e.sdk_config(keys);
    let aws = Aws::new(config.clone(), RetryPolicy { retries: 1, first_delay: Duration::from_millis(20) });
    // Freshdesk refuses the key: the error path must not echo it either.
    let freshdesk = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({ "code": "invalid_credentials" })))
        .mount(&freshdesk)
        .await;
    let h = Harness::start_configured(Arc::new(SystemClock), Some((aws, Distributor::new(&config))), |c| {
        c.settings.cross_account_id = PLATFORM.parse().unwrap();
        c.freshdesk = Some(FreshdeskConfig {
            base_url: freshdesk.uri(),
            api_key: Secret::new(FRESHDESK_KEY),
            requester_email: "ops@distributor.example".parse().unwrap(),
            group_id: None,
            priority: 2,
            tags: vec![],
            custom_fields: serde_json::Map::new(),
            language: orglink::domain::Lang::En,
        });
    })
    .await;

    let account = "555500000001";
    let mut replies: Vec<Value> = Vec::new();
    let link = command(
        "link-account",
        &[("account_id", account), ("customer", "Acme"), ("support_tier", "business")],
        GUILD_A,
        "en-US",
        ADMIN,
        &[],
    );
    replies.push(h.interact(&link).await);
    let external_id = h.store.account(account.parse().unwrap()).unwrap().unwrap().external_id;
    let arn = Customer::new(account).await.create_instructed_role(external_id.as_str()).await;
    replies.push(
        h.interact(&command(
            "verify-role",
            &[("account_id", account), ("role_arn", &arn)],
            GUILD_A,
            "en-US",
            ADMIN,
            &[],
        ))
        .await,
    );
    replies.push(
        h.interact(&command(
            "ticket",
            &[("account_id", account), ("reason", "help leaving an organization")],
            GUILD_A,
            "en-US",
            ADMIN,
            &[],
        ))
        .await,
    );
    // Wait for the deferred answers and the channel notifications.
    for _ in 0..200 {
        if h.received("PATCH", "/api/v10/webhooks/*/*/messages/@original").await.len() >= 2
            && h.received("POST", "/api/v10/channels/*/messages").await.len() >= 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let state = h.store.account(account.parse().unwrap()).unwrap().unwrap().state;
    assert_eq!(state, orglink::domain::LinkState::RoleVerified, "the scenario ran");
    let mut shown: Vec<String> = replies.iter().map(Value::to_string).collect();
    for request in h.discord.received_requests().await.unwrap_or_default() {
        shown.push(String::from_utf8_lossy(&request.body).into_owned());
    }
    let stored: Vec<String> = h
        .store
        .export()
        .unwrap()
        .into_iter()
        .map(|(tree, k, v)| {
            format!(
                "{} {} {}",
                String::from_utf8_lossy(&tree),
                String::from_utf8_lossy(&k),
                String::from_utf8_lossy(&v)
            )
        })
        .collect();
    h.stop().await;

    let log = String::from_utf8(LOG.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains(&format!(r#"command="verify_role" account="{account}""#)),
        "the interaction's span names its command and account:\n{log}"
    );
    assert!(log.contains("Freshdesk"), "the ticket's failure was logged");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{FRESHDESK_KEY}:X"));
    let secrets = [
        ("the Discord bot token", TOKEN.to_owned()),
        ("the Freshdesk API key", FRESHDESK_KEY.to_owned()),
        ("the Freshdesk basic auth", basic),
        ("the AWS secret access key", keys.secret_access_key.clone()),
    ];
    for (what, secret) in &secrets {
        for (place, texts) in
            [("the log", vec![log.clone()]), ("a reply", shown.clone()), ("the store", stored.clone())]
        {
            for text in texts {
                assert!(!text.contains(secret.as_str()), "{what} appears in {place}:\n{text}");
            }
        }
    }
    println!("searched {} log bytes, {} replies and messages, {} store records", log.len(), shown.len(), stored.len());
}

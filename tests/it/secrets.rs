//! No secret reaches a log line, a reply or the store: a scenario through
//! every outside service runs with every log line captured (debug, every
//! crate), then all of it is searched for the configured secrets.

use std::time::Duration;

use base64::Engine as _;
use orglink::aws::RetryPolicy;
use orglink::config::Secret;
use serde_json::{Value, json};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::discord::*;
use crate::harness::{Harness, Logs};

const FRESHDESK_KEY: &str = "fd-secret-api-key-0123456789";

#[test]
fn no_secret_in_logs_replies_or_the_store() {
    // Everything at debug, but the recorders standing in for Discord and
    // Freshdesk (wiremock logs the requests it receives, headers included).
    // Other tests run in this binary too: the capture is this test's
    // runtime's alone, its own thread and every thread it starts.
    let logs = Logs::new("debug,wiremock=off");
    logs.runtime().block_on(scenario(logs.clone()));
}

async fn scenario(logs: Logs) {
    let h = Harness::new()
        .logs(logs.clone())
        .aws(RetryPolicy { retries: 1, first_delay: Duration::from_millis(20) })
        .distributor()
        .freshdesk(|c| c.api_key = Secret::new(FRESHDESK_KEY))
        .serve()
        .await;
    // Freshdesk refuses the key: the error path must not echo it either.
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({ "code": "invalid_credentials" })))
        .mount(&h.freshdesk().server)
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
    let (_, arn) = h.role_for(account).await;
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
    let followups = crate::harness::recorder::path_matcher("/api/v10/webhooks/*/*/messages/@original");
    let channels = crate::harness::recorder::path_matcher("/api/v10/channels/*/messages");
    h.discord()
        .wait_until("two follow-ups and two channel messages", |requests| {
            let count = |verb: &str, path: &dyn Fn(&str) -> bool| {
                requests.iter().filter(|r| r.method.as_str() == verb && path(r.url.path())).count()
            };
            (count("PATCH", &followups) >= 2 && count("POST", &channels) >= 2).then_some(())
        })
        .await;
    let state = h.account(account).state;
    assert_eq!(state, orglink::domain::LinkState::RoleVerified, "the scenario ran");
    let mut shown: Vec<String> = replies.iter().map(Value::to_string).collect();
    for request in h.discord().requests().await {
        shown.push(String::from_utf8_lossy(&request.body).into_owned());
    }
    let stored: Vec<String> = h
        .store()
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
    let aws_secret = h.aws_keys().secret_access_key.clone();
    h.finish().await;

    let log = logs.text();
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
        ("the AWS secret access key", aws_secret),
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

//! The Freshdesk client against a local recorder answering like Freshdesk.

use std::time::Duration;

use orglink::config::Secret;
use orglink::freshdesk::{FieldError, Freshdesk, FreshdeskError, NewTicket, SOURCE_PORTAL, STATUS_OPEN};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "fd-api-key-that-must-never-show";

fn client(server: &MockServer) -> Freshdesk {
    Freshdesk::new(&server.uri(), Secret::new(KEY), Duration::from_millis(500)).unwrap()
}

fn ticket() -> NewTicket {
    NewTicket {
        email: "ops@distributor.example".into(),
        subject: "New invitation needed for AWS account 123456789012".into(),
        description: "<p>The invitation expired.</p>".into(),
        status: STATUS_OPEN,
        priority: 2,
        source: SOURCE_PORTAL,
        tags: vec!["orglink".into(), "orglink-invite-expired-h-abcdefgh12".into()],
        group_id: Some(42),
        custom_fields: serde_json::Map::from_iter([("cf_account".to_owned(), json!("123456789012"))]),
    }
}

#[tokio::test]
async fn creating_a_ticket_sends_exactly_what_freshdesk_expects() {
    let server = MockServer::start().await;
    // Basic auth: the API key as user, "X" as password.
    let auth = format!("Basic {}", base64_encode(&format!("{KEY}:X")));
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets"))
        .and(header("authorization", auth.as_str()))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("Location", format!("{}/api/v2/tickets/7", server.uri()))
                .insert_header("X-RateLimit-Remaining", "199")
                .set_body_json(json!({ "id": 7, "subject": "s", "status": 2, "tags": ["orglink"] })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let fd = client(&server);
    let created = fd.create_ticket(&ticket()).await.unwrap();
    assert_eq!(created.id, 7);
    assert_eq!(fd.rate_limit_remaining(), Some(199));
    assert_eq!(fd.ticket_url(7), format!("{}/a/tickets/7", server.uri()));
    let sent: Value = serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sent["email"], "ops@distributor.example");
    assert_eq!(sent["status"], 2);
    assert_eq!(sent["source"], 2);
    assert_eq!(sent["priority"], 2);
    assert_eq!(sent["group_id"], 42);
    assert_eq!(sent["tags"], json!(["orglink", "orglink-invite-expired-h-abcdefgh12"]));
    assert_eq!(sent["custom_fields"]["cf_account"], "123456789012");
    assert_eq!(sent["description"], "<p>The invitation expired.</p>");
}

/// Base64 of `text` (what Basic auth sends), written out to keep the test
/// independent of the client's encoder.
fn base64_encode(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn every_failure_is_typed_and_never_echoes_the_key() {
    let server = MockServer::start().await;
    let fd = client(&server);
    let cases: Vec<(ResponseTemplate, FreshdeskError)> = vec![
        (
            ResponseTemplate::new(400).set_body_json(json!({
                "description": "Validation failed",
                "errors": [{ "field": "email", "message": "It should be a valid email address", "code": "invalid_value" }]
            })),
            FreshdeskError::Invalid {
                description: "Validation failed".into(),
                errors: vec![FieldError {
                    field: "email".into(),
                    message: "It should be a valid email address".into(),
                    code: "invalid_value".into(),
                }],
            },
        ),
        (ResponseTemplate::new(401), FreshdeskError::Unauthorized),
        (ResponseTemplate::new(403), FreshdeskError::Forbidden),
        (ResponseTemplate::new(404), FreshdeskError::NotFound),
        (
            ResponseTemplate::new(429).insert_header("Retry-After", "7"),
            FreshdeskError::RateLimited { retry_after: Some(Duration::from_secs(7)) },
        ),
        (ResponseTemplate::new(500), FreshdeskError::Server { status: 500 }),
        (ResponseTemplate::new(200).set_delay(Duration::from_secs(2)), FreshdeskError::Timeout),
    ];
    for (response, expected) in cases {
        server.reset().await;
        Mock::given(method("POST")).and(path("/api/v2/tickets")).respond_with(response).mount(&server).await;
        let err = fd.create_ticket(&ticket()).await.unwrap_err();
        assert_eq!(err, expected);
        assert!(!err.to_string().contains(KEY) && !format!("{err:?}").contains(KEY));
        assert_eq!(
            err.is_transient(),
            matches!(err, FreshdeskError::RateLimited { .. } | FreshdeskError::Server { .. } | FreshdeskError::Timeout)
        );
    }
}

#[tokio::test]
async fn a_ticket_is_found_by_its_tag_even_before_search_indexes_it() {
    let server = MockServer::start().await;
    let tag = "orglink-invite-expired-h-abcdefgh12";
    Mock::given(method("GET"))
        .and(path("/api/v2/search/tickets"))
        .and(query_param("query", format!("\"tag:'{tag}'\"")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "results": [], "total": 0 })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/search/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "results": [], "total": 0 })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            { "id": 3, "subject": "other", "status": 2, "tags": ["orglink"] },
            { "id": 9, "subject": "ours", "status": 2, "tags": ["orglink", tag] }
        ])))
        .mount(&server)
        .await;
    let fd = client(&server);
    assert_eq!(fd.find_by_tag(tag).await.unwrap().map(|t| t.id), Some(9));
    assert_eq!(fd.find_by_tag("orglink-nothing").await.unwrap(), None);

    Mock::given(method("POST"))
        .and(path("/api/v2/tickets/9/notes"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1, "private": true })))
        .expect(1)
        .mount(&server)
        .await;
    fd.add_private_note(9, "<p>A new invitation was sent.</p>").await.unwrap();
    let note =
        server.received_requests().await.unwrap().into_iter().find(|r| r.url.path().ends_with("/notes")).unwrap();
    let body: Value = serde_json::from_slice(&note.body).unwrap();
    assert_eq!(body, json!({ "body": "<p>A new invitation was sent.</p>", "private": true }));
}

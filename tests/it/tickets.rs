//! Freshdesk tickets orglink opens, against a recorder answering like
//! Freshdesk: requested with the change that needs them, opened exactly
//! once whatever fails in between.

use crate::harness;

use std::sync::Arc;
use std::time::Duration;

use orglink::app::{Actor, App, Command, Message, Settings, Tone};
use orglink::clock::ManualClock;
use orglink::config::{FreshdeskConfig, Secret};
use orglink::domain::{Event, HandshakeState, Invitation, SupportTier};
use orglink::freshdesk::desk::TicketDesk;
use orglink::scheduler::Job;
use orglink::store::Store;
use orglink::templates::Templates;
use serde_json::{Value, json};
use time::macros::datetime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const NOW: time::OffsetDateTime = datetime!(2026-11-26 12:00 UTC);
const ACCOUNT: &str = "123456789012";

fn desk(server: &MockServer) -> TicketDesk {
    let config = FreshdeskConfig {
        base_url: server.uri(),
        api_key: Secret::new("fd-key"),
        requester_email: "ops@distributor.example".parse().unwrap(),
        group_id: Some(7),
        priority: 3,
        tags: vec!["aws-linking".into()],
        custom_fields: serde_json::Map::new(),
        language: orglink::domain::Lang::Es,
    };
    TicketDesk::new(config, Templates::embedded(), Duration::from_millis(300)).unwrap()
}

/// Freshdesk with no ticket yet: search and list empty, creation answers 201.
async fn freshdesk() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/search/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "results": [], "total": 0 })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 501, "status": 2, "tags": [] })))
        .mount(&server)
        .await;
    server
}

fn app(store: &Store, desk: Option<TicketDesk>) -> App {
    app_with_clock(store, desk, Arc::new(ManualClock::new(NOW)))
}

fn app_with_clock(store: &Store, desk: Option<TicketDesk>, clock: Arc<ManualClock>) -> App {
    let app = App::new(store.clone(), Settings::default(), clock);
    match desk {
        Some(desk) => app.with_ticket_desk(desk),
        None => app,
    }
}

/// An invited account whose invitation then expired.
fn expired(store: &Store) {
    harness::invited(store, ACCOUNT, "h-abcdefgh12", NOW - time::Duration::days(15), NOW - time::Duration::hours(1));
    store
        .update_account(ACCOUNT.parse().unwrap(), "t", "expired", NOW, |a| {
            a.handshake_observed(HandshakeState::Expired, NOW)
        })
        .unwrap();
}

async fn posted(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/api/v2/tickets")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn count(store: &Store, code: &str) -> usize {
    store.outbox().unwrap().iter().filter(|i| i.event.code() == code).count()
}

#[tokio::test]
async fn an_expired_invitation_opens_one_ticket_with_its_details() {
    let store = Store::temporary().unwrap();
    expired(&store);
    assert_eq!(store.ticket_requests().unwrap().len(), 1, "requested with the expiry, in the same transaction");
    let server = freshdesk().await;
    let app = app(&store, Some(desk(&server)));
    let report = app.run_job(Job::OpenTickets).await.unwrap();
    assert_eq!((report.tracked, report.changed), (1, 1));
    let again = app.run_job(Job::OpenTickets).await.unwrap();
    assert_eq!(again.tracked, 0);

    let sent = posted(&server).await;
    assert_eq!(sent.len(), 1);
    let ticket = &sent[0];
    assert_eq!(ticket["tags"], json!(["orglink", "orglink-invite-expired-h-abcdefgh12", "aws-linking"]));
    assert_eq!(ticket["email"], "ops@distributor.example");
    assert_eq!(
        (ticket["priority"].as_u64(), ticket["group_id"].as_u64(), ticket["status"].as_u64()),
        (Some(3), Some(7), Some(2))
    );
    assert!(ticket["subject"].as_str().unwrap().contains("Se necesita una nueva invitación"), "{ticket}");
    let body = ticket["description"].as_str().unwrap();
    assert!(body.contains(ACCOUNT) && body.contains("h-abcdefgh12") && body.contains("acme"), "{body}");

    let account = store.account(ACCOUNT.parse().unwrap()).unwrap().unwrap();
    assert_eq!(account.tickets.len(), 1);
    assert_eq!(account.tickets[0].url, format!("{}/a/tickets/501", server.uri()));
    assert_eq!(count(&store, "ticket_opened"), 1, "the link goes to the tenant and operations");
    assert_eq!(count(&store, "ticket_waiting"), 0);
}

#[tokio::test]
async fn a_ticket_created_before_a_crash_is_adopted_not_created_twice() {
    let store = Store::temporary().unwrap();
    expired(&store);
    // The POST landed, then orglink died before recording it: Freshdesk has
    // the ticket (not yet in search), orglink still has the request.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/search/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "results": [] })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            { "id": 77, "status": 2, "tags": ["orglink", "orglink-invite-expired-h-abcdefgh12"] }
        ])))
        .mount(&server)
        .await;
    let report = app(&store, Some(desk(&server))).run_job(Job::OpenTickets).await.unwrap();
    assert_eq!(report.changed, 1);
    assert!(posted(&server).await.is_empty(), "adopted, not created");
    assert_eq!(store.account(ACCOUNT.parse().unwrap()).unwrap().unwrap().tickets[0].id, 77);
}

#[tokio::test]
async fn freshdesk_failing_then_back_gives_exactly_one_ticket_and_one_notice() {
    let store = Store::temporary().unwrap();
    expired(&store);
    let server = freshdesk().await;
    // 500 for the first 3 calls, then 429 (Retry-After) for the next 2.
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(2)
        .with_priority(2)
        .mount(&server)
        .await;
    let clock = Arc::new(ManualClock::new(NOW));
    let app = app_with_clock(&store, Some(desk(&server)), clock.clone());
    let mut runs = 0;
    let mut waits = Vec::new();
    while !store.ticket_requests().unwrap().is_empty() {
        runs += 1;
        assert!(runs <= 10, "the ticket never opened");
        app.run_job(Job::OpenTickets).await.unwrap();
        // Not tried again before its time: a run now does nothing.
        if let Some(request) = store.ticket_requests().unwrap().first() {
            let at = request.not_before.expect("a failed request waits");
            waits.push((at - orglink::clock::Clock::now(&*clock)).whole_seconds());
            assert_eq!(app.run_job(Job::OpenTickets).await.unwrap().tracked, 0);
            clock.set(at);
        }
    }
    assert_eq!(runs, 6, "5 failed runs, then the ticket");
    // Backoff on 5xx (1, 2, 4 minutes), then Freshdesk's Retry-After (1 s).
    assert_eq!(waits, [60, 120, 240, 1, 1]);
    assert_eq!(posted(&server).await.iter().filter(|t| t["tags"].to_string().contains("orglink-invite")).count(), 1);
    assert_eq!(store.account(ACCOUNT.parse().unwrap()).unwrap().unwrap().tickets.len(), 1);
    assert_eq!(count(&store, "ticket_waiting"), 1, "operations are told once");
    assert_eq!(count(&store, "ticket_opened"), 1);
    let page = app.metrics().render(&store, NOW).unwrap();
    for (outcome, calls) in [("server_error", 3), ("rate_limited", 2)] {
        let line = format!("orglink_freshdesk_calls_total{{outcome=\"{outcome}\"}} {calls}");
        assert!(page.lines().any(|l| l == line), "{line} in\n{page}");
    }
    println!("fault injection: 500 x3, 429 x2 -> {runs} runs, 1 ticket, 1 notice to operations");
}

#[tokio::test]
async fn without_freshdesk_tickets_wait_and_operations_hear_once() {
    let store = Store::temporary().unwrap();
    expired(&store);
    let app = app(&store, None);
    for _ in 0..3 {
        app.run_job(Job::OpenTickets).await.unwrap();
    }
    assert_eq!(store.ticket_requests().unwrap().len(), 1, "nothing dropped");
    assert_eq!(count(&store, "ticket_waiting"), 1);
    match store.outbox().unwrap().iter().find(|i| i.event.code() == "ticket_waiting").map(|i| &i.event) {
        Some(Event::TicketWaiting { problem, .. }) => assert_eq!(problem, "not_configured"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn one_open_ticket_per_account_and_reason() {
    let store = Store::temporary().unwrap();
    let server = freshdesk().await;
    let app = app(&store, Some(desk(&server)));
    let ops = Actor::operator("ops");
    app.handle(&ops, Command::AddAccount(harness::new_account(ACCOUNT, "acme", SupportTier::Basic))).unwrap();
    let ask = |reason: &str| Command::OpenTicket { account: ACCOUNT.parse().unwrap(), reason: reason.parse().unwrap() };
    let first = app.execute(&ops, ask("The account must leave its old organization")).await.unwrap();
    assert_eq!(first.tone, Tone::Success);
    assert!(matches!(&first.messages[0], Message::Ticket(t) if t.url.is_some() && !t.existing));
    let again = app.execute(&ops, ask("  the account must leave its OLD organization ")).await.unwrap();
    assert!(matches!(&again.messages[0], Message::Ticket(t) if t.existing), "{again:?}");
    app.execute(&ops, ask("Something else")).await.unwrap();
    assert_eq!(posted(&server).await.len(), 2);
    assert_eq!(store.account(ACCOUNT.parse().unwrap()).unwrap().unwrap().tickets.len(), 2);
}

#[tokio::test]
async fn a_new_invitation_adds_a_note_to_the_expired_invitations_ticket() {
    let store = Store::temporary().unwrap();
    expired(&store);
    let server = freshdesk().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets/501/notes"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1 })))
        .expect(1)
        .mount(&server)
        .await;
    let app = app(&store, Some(desk(&server)));
    app.run_job(Job::OpenTickets).await.unwrap();
    // Operations send a new invitation.
    store
        .update_account(ACCOUNT.parse().unwrap(), "ops", "invite", NOW, |a| {
            a.invitation_sent(
                Invitation {
                    handshake_id: "h-newinvite01".parse().unwrap(),
                    state: HandshakeState::Open,
                    requested_at: NOW,
                    expires_at: NOW + time::Duration::days(15),
                    note: None,
                    reminded: vec![],
                },
                NOW,
            )
        })
        .unwrap();
    assert_eq!(store.ticket_requests().unwrap().len(), 1);
    app.run_job(Job::OpenTickets).await.unwrap();
    assert!(store.ticket_requests().unwrap().is_empty());
    let note =
        server.received_requests().await.unwrap().into_iter().find(|r| r.url.path().ends_with("/notes")).unwrap();
    let body: Value = serde_json::from_slice(&note.body).unwrap();
    assert_eq!(body["private"], true);
    assert!(body["body"].as_str().unwrap().contains("h-newinvite01"), "{body}");
    assert_eq!(store.account(ACCOUNT.parse().unwrap()).unwrap().unwrap().tickets.len(), 1, "still one ticket");
    assert_eq!(count(&store, "ticket_opened"), 1);
}

#[tokio::test]
async fn orglink_ticket_from_the_command_line() {
    let server = freshdesk().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], with_freshdesk: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orglink"));
        command.arg("--data-dir").arg(dir.path()).args(args);
        if with_freshdesk {
            command
                .env("ORGLINK_FRESHDESK_BASE_URL", server.uri())
                .env("ORGLINK_FRESHDESK_API_KEY", "fd-key-cli")
                .env("ORGLINK_FRESHDESK_REQUESTER_EMAIL", "ops@distributor.example");
        }
        let output = command.output().unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (code, _, err) =
        run(&["account", "add", ACCOUNT, "--tenant", "acme", "--customer", "Acme", "--support", "basic"], false);
    assert_eq!(code, 0, "{err}");
    // Without Freshdesk: recorded; it waits.
    let (code, out, err) = run(&["ticket", ACCOUNT, "--reason", "Leaving the old organization"], false);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("waits for Freshdesk"), "{out}");
    // With Freshdesk: the waiting request is the same one, now opened.
    let (code, out, err) = run(&["ticket", ACCOUNT, "--reason", "leaving the old organization", "--lang", "es"], true);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/a/tickets/501"), "{out}");
    assert_eq!(posted(&server).await.len(), 1);
    // Half a Freshdesk configuration names what is missing.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orglink"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["account", "list"])
        .env("ORGLINK_FRESHDESK_BASE_URL", server.uri())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("freshdesk.api_key") && !err.contains("fd-key-cli"), "{err}");
}

//! Freshdesk tickets orglink opens, against a recorder answering like
//! Freshdesk: requested with the change that needs them, opened exactly
//! once whatever fails in between.

use orglink::app::{Command, Message, Tone};
use orglink::domain::{Event, HandshakeState, Invitation, SupportTier};
use orglink::scheduler::Job;
use orglink::store::Store;
use serde_json::{Value, json};
use time::macros::datetime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::{self, Harness, Orglink, Recorder, operator};

const NOW: time::OffsetDateTime = datetime!(2026-11-26 12:00 UTC);
const ACCOUNT: &str = "123456789012";

/// orglink's app at `NOW` by its clock, with a Freshdesk recorder where its
/// ticket desk opens tickets (in Spanish, group 7, priority 3, tagged).
async fn with_freshdesk() -> Harness {
    Harness::new()
        .at(NOW)
        .freshdesk(|c| {
            c.group_id = Some(7);
            c.priority = 3;
            c.tags = vec!["aws-linking".into()];
            c.language = orglink::domain::Lang::Es;
        })
        .start()
        .await
}

/// Freshdesk with no ticket yet: search and list empty, creation answers 201.
async fn no_tickets_yet(freshdesk: &Recorder) {
    Mock::given(method("GET"))
        .and(path("/api/v2/search/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "results": [], "total": 0 })))
        .mount(&freshdesk.server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&freshdesk.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 501, "status": 2, "tags": [] })))
        .mount(&freshdesk.server)
        .await;
}

/// An invited account whose invitation then expired.
fn expired(store: &Store) {
    harness::invited(store, ACCOUNT, "h-abcdefgh12", NOW - time::Duration::days(15), NOW - time::Duration::hours(1));
    crate::harness::change(store, ACCOUNT, "expired", NOW, |a| a.handshake_observed(HandshakeState::Expired, NOW));
}

async fn posted(freshdesk: &Recorder) -> Vec<Value> {
    freshdesk
        .requests()
        .await
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/api/v2/tickets")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn count(h: &Harness, code: &str) -> usize {
    h.outbox().iter().filter(|i| i.event.code() == code).count()
}

#[tokio::test]
async fn an_expired_invitation_opens_one_ticket_with_its_details() {
    let h = with_freshdesk().await;
    no_tickets_yet(h.freshdesk()).await;
    expired(h.store());
    assert_eq!(h.store().ticket_requests().unwrap().len(), 1, "requested with the expiry, in the same transaction");
    let report = h.run(Job::OpenTickets).await;
    assert_eq!((report.tracked, report.changed), (1, 1));
    let again = h.run(Job::OpenTickets).await;
    assert_eq!(again.tracked, 0);

    let sent = posted(h.freshdesk()).await;
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

    let account = h.account(ACCOUNT);
    assert_eq!(account.tickets.len(), 1);
    assert_eq!(account.tickets[0].url, format!("{}/a/tickets/501", h.freshdesk().uri()));
    assert_eq!(count(&h, "ticket_opened"), 1, "the link goes to the tenant and operations");
    assert_eq!(count(&h, "ticket_waiting"), 0);
    h.finish().await;
}

#[tokio::test]
async fn a_ticket_created_before_a_crash_is_adopted_not_created_twice() {
    let h = with_freshdesk().await;
    expired(h.store());
    // The POST landed, then orglink died before recording it: Freshdesk has
    // the ticket (not yet in search), orglink still has the request.
    Mock::given(method("GET"))
        .and(path("/api/v2/search/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "results": [] })))
        .mount(&h.freshdesk().server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            { "id": 77, "status": 2, "tags": ["orglink", "orglink-invite-expired-h-abcdefgh12"] }
        ])))
        .mount(&h.freshdesk().server)
        .await;
    let report = h.run(Job::OpenTickets).await;
    assert_eq!(report.changed, 1);
    assert!(posted(h.freshdesk()).await.is_empty(), "adopted, not created");
    assert_eq!(h.account(ACCOUNT).tickets[0].id, 77);
    assert_eq!(count(&h, "ticket_opened"), 1);
    h.finish().await;
}

#[tokio::test]
async fn freshdesk_failing_then_back_gives_exactly_one_ticket_and_one_notice() {
    let h = with_freshdesk().await;
    no_tickets_yet(h.freshdesk()).await;
    expired(h.store());
    // 500 for the first 3 calls, then 429 (Retry-After) for the next 2.
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&h.freshdesk().server)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(2)
        .with_priority(2)
        .mount(&h.freshdesk().server)
        .await;
    let mut runs = 0;
    let mut waits = Vec::new();
    while !h.store().ticket_requests().unwrap().is_empty() {
        runs += 1;
        assert!(runs <= 10, "the ticket never opened");
        h.run(Job::OpenTickets).await;
        // Not tried again before its time: a run now does nothing.
        if let Some(request) = h.store().ticket_requests().unwrap().first() {
            let at = request.not_before.expect("a failed request waits");
            waits.push((at - h.now()).whole_seconds());
            assert_eq!(h.run(Job::OpenTickets).await.tracked, 0);
            h.clock().set(at);
        }
    }
    assert_eq!(runs, 6, "5 failed runs, then the ticket");
    // Backoff on 5xx (1, 2, 4 minutes), then Freshdesk's Retry-After (1 s).
    assert_eq!(waits, [60, 120, 240, 1, 1]);
    let created = posted(h.freshdesk()).await;
    assert_eq!(created.iter().filter(|t| t["tags"].to_string().contains("orglink-invite")).count(), 1);
    assert_eq!(h.account(ACCOUNT).tickets.len(), 1);
    assert_eq!(count(&h, "ticket_waiting"), 1, "operations are told once");
    assert_eq!(count(&h, "ticket_opened"), 1);
    let page = h.app().metrics().render(h.store(), NOW).unwrap();
    for (outcome, calls) in [("server_error", 3), ("rate_limited", 2)] {
        let line = format!("orglink_freshdesk_calls_total{{outcome=\"{outcome}\"}} {calls}");
        assert!(page.lines().any(|l| l == line), "{line} in\n{page}");
    }
    println!("fault injection: 500 x3, 429 x2 -> {runs} runs, 1 ticket, 1 notice to operations");
    h.finish().await;
}

#[tokio::test]
async fn without_freshdesk_tickets_wait_and_operations_hear_once() {
    let h = Harness::new().at(NOW).start().await;
    expired(h.store());
    for _ in 0..3 {
        h.run(Job::OpenTickets).await;
    }
    assert_eq!(h.store().ticket_requests().unwrap().len(), 1, "nothing dropped");
    assert_eq!(count(&h, "ticket_waiting"), 1);
    match h.outbox().iter().find(|i| i.event.code() == "ticket_waiting").map(|i| &i.event) {
        Some(Event::TicketWaiting { problem, .. }) => assert_eq!(problem, "not_configured"),
        other => panic!("{other:?}"),
    }
    h.finish().await;
}

#[tokio::test]
async fn one_open_ticket_per_account_and_reason() {
    let h = with_freshdesk().await;
    no_tickets_yet(h.freshdesk()).await;
    h.register(ACCOUNT, SupportTier::Basic);
    let ask = |reason: &str| Command::OpenTicket { account: ACCOUNT.parse().unwrap(), reason: reason.parse().unwrap() };
    let first = h.app().execute(&operator(), ask("The account must leave its old organization")).await.unwrap();
    assert_eq!(first.tone, Tone::Success);
    assert!(matches!(&first.messages[0], Message::Ticket(t) if t.url.is_some() && !t.existing));
    let again = h.app().execute(&operator(), ask("  the account must leave its OLD organization ")).await.unwrap();
    assert!(matches!(&again.messages[0], Message::Ticket(t) if t.existing), "{again:?}");
    h.app().execute(&operator(), ask("Something else")).await.unwrap();
    assert_eq!(posted(h.freshdesk()).await.len(), 2);
    assert_eq!(h.account(ACCOUNT).tickets.len(), 2);
    assert_eq!(h.notified(ACCOUNT), ["account_registered", "ticket_opened", "ticket_opened"]);
    h.finish().await;
}

#[tokio::test]
async fn a_new_invitation_adds_a_note_to_the_expired_invitations_ticket() {
    let h = with_freshdesk().await;
    no_tickets_yet(h.freshdesk()).await;
    expired(h.store());
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets/501/notes"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1 })))
        .expect(1)
        .mount(&h.freshdesk().server)
        .await;
    h.run(Job::OpenTickets).await;
    // Operations send a new invitation.
    h.app()
        .update_account(
            ACCOUNT.parse().unwrap(),
            &h.account(ACCOUNT).tenant,
            orglink::store::By::new("ops", "invite", NOW),
            &[],
            |a| {
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
            },
        )
        .unwrap();
    assert_eq!(h.store().ticket_requests().unwrap().len(), 1);
    h.run(Job::OpenTickets).await;
    assert!(h.store().ticket_requests().unwrap().is_empty());
    let note = h.freshdesk().requests().await.into_iter().find(|r| r.url.path().ends_with("/notes")).unwrap();
    let body: Value = serde_json::from_slice(&note.body).unwrap();
    assert_eq!(body["private"], true);
    assert!(body["body"].as_str().unwrap().contains("h-newinvite01"), "{body}");
    assert_eq!(h.account(ACCOUNT).tickets.len(), 1, "still one ticket");
    assert_eq!(count(&h, "ticket_opened"), 1);
    h.finish().await;
}

#[tokio::test]
async fn orglink_ticket_from_the_command_line() {
    let freshdesk = Recorder::start().await;
    no_tickets_yet(&freshdesk).await;
    let o = Orglink::new();
    let with_freshdesk = [
        ("ORGLINK_FRESHDESK_BASE_URL", freshdesk.uri()),
        ("ORGLINK_FRESHDESK_API_KEY", "fd-key-cli".to_owned()),
        ("ORGLINK_FRESHDESK_REQUESTER_EMAIL", "ops@distributor.example".to_owned()),
    ];
    let with_freshdesk: Vec<(&str, &str)> = with_freshdesk.iter().map(|(k, v)| (*k, v.as_str())).collect();
    o.ok(&["account", "add", ACCOUNT, "--tenant", "acme", "--customer", "Acme", "--support", "basic"]);
    // Without Freshdesk: recorded; it waits.
    let out = o.ok(&["ticket", ACCOUNT, "--reason", "Leaving the old organization"]);
    assert!(out.contains("waits for Freshdesk"), "{out}");
    // With Freshdesk: the waiting request is the same one, now opened.
    let run =
        o.run_with(&with_freshdesk, &["ticket", ACCOUNT, "--reason", "leaving the old organization", "--lang", "es"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("/a/tickets/501"), "{}", run.stdout);
    assert_eq!(posted(&freshdesk).await.len(), 1);
    // Half a Freshdesk configuration names what is missing.
    let run = o.run_with(&with_freshdesk[..1], &["account", "list"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("freshdesk.api_key") && !run.stderr.contains("fd-key-cli"), "{}", run.stderr);
}

//! Quotas per tenant: over one, the reseller reads which limit, its value
//! and when it resets; nothing is changed; operations hear of it once a day
//! per tenant and quota. And the probe's fair share: one tenant's thousands
//! of due claims do not hold up another tenant's few.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use orglink::app::{Actor, AppError, Command, Message, Reply, Rights, Scope, UserError};
use orglink::aws::RetryPolicy;
use orglink::domain::quota::{DayCount, Quota, UtcDay};
use orglink::domain::{DueJob, Event, HandshakeState, Lang, SupportTier};
use orglink::scheduler::Job;
use orglink::store::Record;
use orglink::templates::Templates;
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::harness::discord::{ADMIN, GUILD_A, OPS_CHANNEL, command, embeds_text, interaction};
use crate::harness::{self, Harness, id, new_account, operator};

const AT: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

/// A member of `tenant`'s Discord server allowed to run account commands.
fn member_of(tenant: &str) -> Actor {
    Actor {
        id: "discord:700000000000000009".into(),
        scope: Scope::Tenant(tenant.parse().unwrap()),
        rights: Rights { manage_server: true, ..Default::default() },
        claim_of: None,
    }
}

/// Operations approve the servers a test runs as.
fn approve(h: &Harness, tenants: &[&str]) {
    for tenant in tenants {
        let approve = Command::DecideTenant {
            tenant: tenant.parse().unwrap(),
            decision: orglink::domain::TenantDecision::Approve,
        };
        h.app().handle(&operator(), approve).unwrap();
    }
}

fn claim(h: &Harness, account: &str, tenant: &str) -> Result<Reply, AppError> {
    h.app().handle(&member_of(tenant), Command::AddAccount(new_account(account, tenant, SupportTier::Basic)))
}

fn user_error(result: Result<Reply, AppError>) -> UserError {
    match result {
        Err(AppError::User(e)) => e,
        other => panic!("expected a user error, got {other:?}"),
    }
}

/// The refusal as the user reads it, in `lang`.
fn shown(error: &UserError, lang: Lang) -> String {
    Message::Error(error.clone()).render(&Templates::embedded(), lang).unwrap().text
}

fn assert_shows(error: &UserError, lang: Lang, needles: &[&str]) {
    let text = shown(error, lang);
    for needle in needles {
        assert!(text.contains(needle), "{lang}: {needle:?} missing in {text}");
    }
}

/// What the store holds, by tree and key.
fn records(h: &Harness) -> BTreeMap<(String, Vec<u8>), Vec<u8>> {
    let export: Vec<Record> = h.store().export().unwrap();
    export.into_iter().map(|(tree, k, v)| ((String::from_utf8_lossy(&tree).into_owned(), k), v)).collect()
}

/// The trees written between two looks at the store (`+` a record added or
/// changed, `-` removed).
fn written(
    before: &BTreeMap<(String, Vec<u8>), Vec<u8>>,
    after: &BTreeMap<(String, Vec<u8>), Vec<u8>>,
) -> BTreeSet<String> {
    let mut trees = BTreeSet::new();
    for (key, value) in after {
        if before.get(key) != Some(value) {
            trees.insert(format!("+{}", key.0));
        }
    }
    for key in before.keys().filter(|k| !after.contains_key(*k)) {
        trees.insert(format!("-{}", key.0));
    }
    trees
}

fn notice_and_marker() -> BTreeSet<String> {
    ["+outbox", "+outbox_counts", "+outbox_index", "+quota_counts"].into_iter().map(str::to_owned).collect()
}

/// The quota notices queued so far (for operations only), oldest first;
/// the test has now seen everything in the outbox.
fn quota_notices(h: &Harness) -> Vec<Event> {
    h.outbox()
        .into_iter()
        .filter(|i| i.event.code() == "quota_exceeded")
        .map(|i| {
            assert!(i.audience.ops && !i.audience.tenant, "operations only: {i:?}");
            i.event
        })
        .collect()
}

fn quota_event(account: &str, tenant: &str, quota: Quota, limit: u32) -> Event {
    Event::QuotaExceeded { account: id(account), tenant: tenant.parse().unwrap(), quota, limit }
}

#[tokio::test]
async fn over_the_open_claims_quota_nothing_changes_operations_hear_once_a_day_and_lapsed_claims_make_room() {
    let h = Harness::new().at(AT).settings(|s| s.quotas.open_claims = 3).start().await;
    approve(&h, &["1001", "1002"]);
    for n in 1..=3 {
        claim(&h, &format!("55550000000{n}"), "1001").unwrap();
    }
    h.outbox();
    let before = records(&h);
    let refused = user_error(claim(&h, "555500000004", "1001"));
    assert_eq!(refused, UserError::QuotaExceeded { quota: Quota::OpenClaims, limit: 3, resets_at: None });
    assert_shows(
        &refused,
        Lang::En,
        &["open registrations", "at most 3", "Nothing was changed", "verified, lapses or is removed"],
    );
    assert_shows(&refused, Lang::Es, &["registros abiertos", "como máximo 3", "No se ha cambiado nada", "caduque"]);
    assert_eq!(written(&before, &records(&h)), notice_and_marker(), "the notice, and the day it was sent");
    assert!(h.store().claims(id("555500000004")).unwrap().is_empty());
    assert_eq!(quota_notices(&h), [quota_event("555500000004", "1001", Quota::OpenClaims, 3)]);

    // Again the same day, about another account: refused, nothing written.
    let before = records(&h);
    assert!(matches!(user_error(claim(&h, "555500000005", "1001")), UserError::QuotaExceeded { .. }));
    assert_eq!(records(&h), before, "operations heard of it today");
    // Another tenant has room of its own; operations are not limited.
    claim(&h, "555500000004", "1002").unwrap();
    h.app().handle(&operator(), Command::AddAccount(new_account("555500000006", "1001", SupportTier::Basic))).unwrap();
    let first = quota_event("555500000004", "1001", Quota::OpenClaims, 3);
    assert_eq!(quota_notices(&h), std::slice::from_ref(&first), "still the one notice");

    // The next UTC day, operations hear of it again.
    h.clock().set(datetime!(2026-12-02 00:00 UTC));
    assert!(matches!(user_error(claim(&h, "555500000005", "1001")), UserError::QuotaExceeded { .. }));
    assert_eq!(quota_notices(&h), [first, quota_event("555500000005", "1001", Quota::OpenClaims, 3)]);

    // Lapsed claims no longer count: room again.
    h.clock().set(AT + time::Duration::days(15));
    assert_eq!(h.run(Job::LapseClaims).await.changed, 5);
    claim(&h, "555500000005", "1001").unwrap();
    h.outbox();
    h.finish().await;
}

/// Freshdesk with no ticket yet: search and list empty, creation answers 201.
async fn freshdesk_creates_tickets(h: &Harness) {
    let server = &h.freshdesk().server;
    Mock::given(method("GET"))
        .and(path("/api/v2/search/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "results": [], "total": 0 })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/tickets"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/tickets"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 501, "status": 2, "tags": [] })))
        .mount(server)
        .await;
}

async fn tickets_created(h: &Harness) -> usize {
    let requests = h.freshdesk().requests().await;
    requests.iter().filter(|r| r.method.as_str() == "POST" && r.url.path() == "/api/v2/tickets").count()
}

#[tokio::test]
async fn over_the_tickets_quota_of_the_day_nothing_is_asked_of_freshdesk_and_the_count_survives_a_restart() {
    let mut h =
        Harness::new().at(AT).on_disk().settings(|s| s.quotas.tickets_per_day = 2).freshdesk(|_| {}).start().await;
    let account = "555500000101";
    h.register(account, SupportTier::Basic);
    let ask = |h: &Harness, reason: &str| {
        let command = Command::OpenTicket { account: id(account), reason: reason.parse().unwrap() };
        let app = h.app().clone();
        async move { app.execute(&member_of("acme"), command).await }
    };
    // Freshdesk does not answer yet: the first request waits for it.
    let waiting = ask(&h, "help one").await.unwrap();
    assert!(matches!(&waiting.messages[0], Message::Ticket(view) if view.url.is_none()), "{waiting:?}");
    freshdesk_creates_tickets(&h).await;
    ask(&h, "help two").await.unwrap();
    // Both of the day are used. Asked again, the waiting one is no new
    // ticket (it opens now, not counted), nor is an open one.
    ask(&h, "help one").await.unwrap();
    let again = ask(&h, "Help  ONE").await.unwrap();
    assert!(matches!(&again.messages[0], Message::Ticket(view) if view.existing), "{again:?}");
    assert_eq!(tickets_created(&h).await, 2);
    assert_eq!(h.account(account).tickets.len(), 2);
    h.outbox();

    let before = records(&h);
    let refused = user_error(ask(&h, "help three").await);
    let midnight = datetime!(2026-12-02 00:00 UTC);
    assert_eq!(refused, UserError::QuotaExceeded { quota: Quota::TicketsPerDay, limit: 2, resets_at: Some(midnight) });
    assert_shows(&refused, Lang::En, &["tickets a day", "at most 2", "2026-12-02 00:00:00 UTC", "Nothing was changed"]);
    assert_shows(&refused, Lang::Es, &["tickets al día", "como máximo 2", "02/12/2026 00:00:00 UTC", "No se ha"]);
    assert_eq!(written(&before, &records(&h)), notice_and_marker());
    assert_eq!(tickets_created(&h).await, 2, "nothing asked of Freshdesk");
    assert_eq!(quota_notices(&h), [quota_event(account, "acme", Quota::TicketsPerDay, 2)]);

    // A ticket orglink opens by itself (an expired invitation) is not the
    // reseller's: it does not count.
    let expiring = "555500000102";
    harness::invited(
        h.store(),
        expiring,
        "h-quotatest01",
        AT - time::Duration::days(15),
        AT - time::Duration::hours(1),
    );
    harness::change(h.store(), expiring, "expired", AT, |a| a.handshake_observed(HandshakeState::Expired, AT));
    assert_eq!(h.run(Job::OpenTickets).await.changed, 1);
    assert_eq!(tickets_created(&h).await, 3);
    let acme = "acme".parse().unwrap();
    let counted = Some(DayCount { day: UtcDay::of(AT), count: 2 });
    assert_eq!(h.store().quota_count(&acme, Quota::TicketsPerDay).unwrap(), counted);
    h.outbox();

    // A restart forgets neither the count nor that operations heard today.
    h.restart();
    let before = records(&h);
    assert!(matches!(user_error(ask(&h, "help three").await), UserError::QuotaExceeded { .. }));
    assert_eq!(records(&h), before);

    // The next UTC day starts from nothing; operations hear again when the
    // reseller reaches the limit again.
    h.clock().set(midnight);
    ask(&h, "help three").await.unwrap();
    ask(&h, "help four").await.unwrap();
    assert!(matches!(user_error(ask(&h, "help five").await), UserError::QuotaExceeded { .. }));
    assert_eq!(tickets_created(&h).await, 5);
    assert_eq!(quota_notices(&h), vec![quota_event(account, "acme", Quota::TicketsPerDay, 2); 2], "one a day");
    h.finish().await;
}

#[tokio::test]
async fn over_the_verifications_quota_a_check_waits_for_the_minute_per_account_and_tenant() {
    let h = Harness::new().at(AT).aws(RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) }).start().await;
    approve(&h, &["1001", "1002"]);
    let (a, b) = ("555500000201", "555500000202");
    claim(&h, a, "1001").unwrap();
    claim(&h, b, "1001").unwrap();
    claim(&h, a, "1002").unwrap();
    h.outbox();
    let verify = |h: &Harness, actor: Actor, account: &str, pasted: bool| {
        let arn = pasted.then(|| format!("arn:aws:iam::{account}:role/NotThereYet").parse().unwrap());
        let command = Command::VerifyRole { account: id(account), arn, description: None };
        let app = h.app().clone();
        async move { app.execute(&actor, command).await }
    };
    for _ in 0..6 {
        let reply = verify(&h, member_of("1001"), a, true).await.unwrap();
        assert_eq!(reply.verdict, orglink::app::Verdict::Refused, "no such role: checked, not verified");
    }
    h.clock().advance(time::Duration::seconds(30));
    let before = records(&h);
    let refused = user_error(verify(&h, member_of("1001"), a, true).await);
    let resets_at = AT + time::Duration::MINUTE;
    let expected =
        UserError::QuotaExceeded { quota: Quota::VerificationsPerMinute, limit: 6, resets_at: Some(resets_at) };
    assert_eq!(refused, expected);
    assert_shows(&refused, Lang::En, &["role checks of one account a minute", "at most 6", "2026-12-01 12:01:00 UTC"]);
    assert_shows(&refused, Lang::Es, &["comprobaciones del rol", "como máximo 6", "01/12/2026 12:01:00 UTC"]);
    assert_eq!(written(&before, &records(&h)), notice_and_marker(), "the role and its report stay as they were");
    assert_eq!(quota_notices(&h), [quota_event(a, "1001", Quota::VerificationsPerMinute, 6)]);

    // Check now (the recorded role) counts the same; operations heard today.
    let before = records(&h);
    assert_eq!(user_error(verify(&h, member_of("1001"), a, false).await), expected);
    assert_eq!(records(&h), before);
    // Per account and tenant: the tenant's other account, and the other
    // tenant's claim on this one, go on; operations are not limited.
    verify(&h, member_of("1001"), b, true).await.unwrap();
    verify(&h, member_of("1002"), a, true).await.unwrap();
    verify(&h, operator().on_claim_of(Some("1001".parse().unwrap())), a, true).await.unwrap();

    // A minute after the first checks, one may run again.
    h.clock().set(resets_at);
    verify(&h, member_of("1001"), a, false).await.unwrap();
    assert_eq!(quota_notices(&h).len(), 1, "one notice that day");
    h.finish().await;
}

#[tokio::test]
async fn from_discord_a_seventh_check_in_a_minute_is_refused_in_the_users_language_and_operations_hear() {
    let h = Harness::new().aws(RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) }).serve().await;
    let account = "555500000301";
    let link = command(
        "link-account",
        &[("account_id", account), ("customer", "Acme"), ("support_tier", "basic")],
        GUILD_A,
        "es-419",
        ADMIN,
        &[],
    );
    h.interact(&link).await;
    let arn = format!("arn:aws:iam::{account}:role/NotThereYet");
    for n in 0..6 {
        let mut verify =
            command("verify-role", &[("account_id", account), ("role_arn", &arn)], GUILD_A, "es-419", ADMIN, &[]);
        verify["token"] = json!(format!("token-quota-{n}"));
        assert_eq!(h.interact(&verify).await["type"], 5);
        let edit: serde_json::Value =
            serde_json::from_slice(&h.followup(&format!("token-quota-{n}")).await.body).unwrap();
        assert!(embeds_text(&edit).contains("Sin acceso"), "{}", embeds_text(&edit));
    }
    // The seventh, with the Check now button: the same count.
    let mut button = interaction("component_button", GUILD_A, "es-419", ADMIN, &[]);
    button["token"] = json!("token-quota-check");
    button["data"]["custom_id"] = json!(format!("ol:check:{account}"));
    assert_eq!(h.interact(&button).await["type"], 5);
    let edit: serde_json::Value = serde_json::from_slice(&h.followup("token-quota-check").await.body).unwrap();
    let text = embeds_text(&edit);
    assert!(text.contains("Cuota superada") && text.contains("como máximo 6"), "{text}");
    assert_eq!(edit["embeds"][0]["color"], 0xE74C3C);

    // Operations read it in their channel, in the default language.
    h.settle().await;
    let ops_path = format!("/api/v10/channels/{OPS_CHANNEL}/messages");
    let notices = h
        .discord()
        .requests()
        .await
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == ops_path)
        .filter(|r| String::from_utf8_lossy(&r.body).contains("is over its quota"))
        .count();
    assert_eq!(notices, 1);
    h.finish().await;
}

/// Probes made so far, per tenant.
fn probes_per_tenant(h: &Harness) -> BTreeMap<String, u32> {
    let mut probes = BTreeMap::new();
    for claim in h.store().all_accounts().unwrap() {
        *probes.entry(claim.tenant.to_string()).or_default() += claim.probe.as_ref().map_or(0, |p| p.probes);
    }
    probes
}

#[tokio::test]
async fn each_probe_run_shares_the_assume_role_ceiling_round_robin_across_tenants() {
    // A probe is planned as three AssumeRole calls (the role may exist):
    // a ceiling of 30 reads at most 10 claims at a time, 28 probes a run.
    let h = Harness::new()
        .at(AT)
        .aws(RetryPolicy { retries: 0, first_delay: Duration::from_millis(1) })
        .counted()
        .settings(|s| s.probe.assume_role_per_minute = 30)
        .start()
        .await;
    // The big tenant registered its thousand first: all more overdue than
    // the small tenant's five.
    for n in 0..1000 {
        let new = new_account(&format!("6666{n:08}"), "big", SupportTier::Basic);
        h.app().handle(&operator(), Command::AddAccount(new)).unwrap();
    }
    h.clock().advance(time::Duration::minutes(10));
    for n in 0..5 {
        let new = new_account(&format!("7777{n:08}"), "small", SupportTier::Basic);
        h.app().handle(&operator(), Command::AddAccount(new)).unwrap();
    }
    h.clock().advance(time::Duration::minutes(2));
    // What most-overdue-first would have read for the first run's 28.
    let overdue_first = h.store().due_accounts(DueJob::Probe, h.now(), 28).unwrap();
    let small_first = overdue_first.accounts.iter().filter(|a| a.tenant.as_str() == "small").count();
    assert_eq!((overdue_first.total, small_first), (1005, 0));

    let mut runs = Vec::new();
    let mut before = BTreeMap::new();
    for run in 1..=3 {
        let read = h.app().metrics().job_records_read_total(Job::ProbeRoles.name());
        let report = h.run(Job::ProbeRoles).await;
        let read = h.app().metrics().job_records_read_total(Job::ProbeRoles.name()) - read;
        assert_eq!(read, 28, "run {run}: no more records read than the ceiling lets it probe");
        let calls = h.assume_role_calls();
        assert!(calls <= 30, "run {run}: {calls} AssumeRole calls");
        assert_eq!(report.aws_calls, calls);
        let after = probes_per_tenant(&h);
        let new = |tenant: &str| after.get(tenant).unwrap_or(&0) - before.get(tenant).unwrap_or(&0);
        runs.push((new("big"), new("small"), report.deferred));
        println!(
            "fair share, run {run}: probed big {}, small {} (of 5); {} AssumeRole calls; {} left for later \
             (most overdue first would have probed {small_first} of small's in run 1)",
            new("big"),
            new("small"),
            calls,
            report.deferred
        );
        before = after;
        h.clock().advance(time::Duration::minutes(1));
    }
    assert_eq!(runs[0], (23, 5, 1005 - 28), "the small tenant's five all in the first run");
    assert_eq!((runs[1].0, runs[1].1), (28, 0), "then the big tenant has the run to itself");
    assert_eq!((runs[2].0, runs[2].1), (23, 5), "the five are due again two minutes on: their turns come first");
    let outbox = h.outbox();
    assert!(outbox.iter().all(|i| i.event.code() == "account_registered"), "no role anywhere: nobody is told");
    h.finish().await;
}

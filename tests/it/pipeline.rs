//! The pipeline for operations: `orglink pipeline` (the real binary, alone
//! and through a running server), `/pipeline` and its pages in the
//! operations server, and operations' `/status` of any tenant's account.

use orglink::domain::{
    BlockReason, HandshakeState, Invitation, LinkState, SupportPlanGroup, SupportTier, TicketRequest,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::harness::discord::*;
use crate::harness::{Harness, Orglink};
use orglink::scheduler::Job;

fn add(o: &Orglink, id: &str, tenant: &str) {
    o.ok(&["account", "add", id, "--tenant", tenant, "--customer", "Acme", "--support", "business"]);
}

/// A whole second, as the figures count.
fn second(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap()
}

/// Two resellers' accounts in six states: acme's registered, verified
/// (operations must invite) and invited (expiring in two days); globex's
/// linked without its support plan group, blocked, lapsed. One ticket
/// waits for Freshdesk.
fn six_states(o: &Orglink) -> OffsetDateTime {
    for (id, tenant) in [
        ("111111111111", "acme"),
        ("222222222222", "acme"),
        ("333333333333", "acme"),
        ("444444444444", "globex"),
        ("555555555555", "globex"),
        ("666666666666", "globex"),
    ] {
        add(o, id, tenant);
    }
    let now = second(OffsetDateTime::now_utc());
    let day = time::Duration::DAY;
    let store = o.store();
    let change = |id: &str, at: OffsetDateTime, f: &dyn Fn(&mut orglink::domain::Account)| {
        crate::harness::change(&store, id, "test", at, |a| -> Result<Vec<orglink::domain::Event>, ()> {
            f(a);
            Ok(vec![])
        });
    };
    change("222222222222", now - 5 * day, &|a| {
        a.state = LinkState::RoleVerified;
        a.owned_at = Some(now - 5 * day);
        a.updated_at = now - 5 * day;
    });
    change("333333333333", now - 12 * day, &|a| {
        a.state = LinkState::Invited;
        a.owned_at = Some(now - 13 * day);
        a.invitation = Some(Invitation {
            handshake_id: "h-0123456789abcdef".parse().unwrap(),
            state: HandshakeState::Open,
            requested_at: now - 12 * day,
            expires_at: now + 2 * day,
            note: None,
            reminded: vec![],
        });
        a.updated_at = now - 12 * day;
    });
    change("444444444444", now - 20 * day, &|a| {
        a.state = LinkState::Linked;
        a.owned_at = Some(now - 30 * day);
        a.support_plan_group = Some(SupportPlanGroup::Passthrough);
        a.updated_at = now - 20 * day;
    });
    change("555555555555", now - 3 * day, &|a| {
        a.state = LinkState::Blocked { reason: BlockReason::ManagementAccount };
        a.updated_at = now - 3 * day;
    });
    change("666666666666", now - 40 * day, &|a| {
        a.state = LinkState::Lapsed;
        a.updated_at = now - 40 * day;
    });
    store
        .put_ticket_request(&TicketRequest {
            key: "acme-111111111111-help".into(),
            account: "111111111111".parse().unwrap(),
            tenant: "acme".parse().unwrap(),
            kind: orglink::domain::TicketKind::Requested { reason: "help".parse().unwrap() },
            requested_at: now,
            ops_told: false,
            attempts: 0,
            not_before: None,
        })
        .unwrap();
    store.flush().unwrap();
    now
}

fn state<'a>(figures: &'a Value, code: &str) -> &'a Value {
    figures["states"].as_array().unwrap().iter().find(|s| s["state"] == code).unwrap()
}

fn counts(figures: &Value) -> Vec<(String, u64)> {
    figures["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["count"] != 0)
        .map(|s| (s["state"].as_str().unwrap().to_owned(), s["count"].as_u64().unwrap()))
        .collect()
}

fn pending(o: &Orglink, tenant: &str) -> usize {
    o.store().outbox().unwrap().iter().filter(|i| i.tenant.as_str() == tenant).count()
}

fn iso(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap()
}

#[test]
fn pipeline_json_counts_every_state_actor_and_warning_per_tenant_and_overall() {
    let o = Orglink::new();
    let now = six_states(&o);
    let day = 86_400;
    let (acme_pending, globex_pending) = (pending(&o, "acme"), pending(&o, "globex"));
    assert!(acme_pending > 0 && globex_pending > 0);
    let registered_at = o.account("111111111111").unwrap().registered_at;

    let p: Value = serde_json::from_str(&o.ok(&["pipeline", "--json"])).unwrap();
    let all = &p["overall"];
    assert_eq!(all["claims"], 6);
    let expected: Vec<(String, u64)> =
        ["registered", "role_verified", "invited", "linked", "blocked_management_account", "lapsed"]
            .iter()
            .map(|s| (s.to_string(), 1))
            .collect();
    assert_eq!(counts(all), expected);
    assert_eq!(all["states"].as_array().unwrap().len(), LinkState::ALL.len(), "every state, zero or not");
    // Times in state: from the invitation, the last change, the registration.
    let invited = state(all, "invited");
    assert_eq!(invited["oldest_since"], iso(now - 12 * time::Duration::DAY));
    let seconds = invited["oldest_seconds"].as_i64().unwrap();
    assert!((12 * day..12 * day + 120).contains(&seconds), "{seconds}");
    assert_eq!(invited["median_seconds"], invited["oldest_seconds"]);
    assert_eq!(state(all, "lapsed")["oldest_since"], iso(now - 40 * time::Duration::DAY));
    assert_eq!(state(all, "registered")["oldest_since"], iso(second(registered_at)));
    assert_eq!(
        state(all, "invitation_expired"),
        &json!({
            "state": "invitation_expired", "count": 0, "oldest_seconds": null, "oldest_since": null, "median_seconds": null,
        "entered_last_day": 0
        })
    );
    // Who acts next: the lapsed claim waits on nobody and is counted only
    // in its state.
    assert_eq!(all["next_actor"], json!({"reseller": 1, "account_owner": 3, "distributor_ops": 1, "nobody": 0}));
    assert_eq!(all["invitations_expiring"], 1);
    assert_eq!(all["blocked"], 1);
    assert_eq!(all["support_plan_attention"], 1);
    assert_eq!(all["tickets_open"], 0);
    assert_eq!(all["tickets_waiting"], 1);
    assert_eq!(all["notifications_pending"], acme_pending + globex_pending);
    assert_eq!(all["notifications_dead"], 0);
    assert_eq!(p["needs_operations"], true);

    let tenants = p["tenants"].as_array().unwrap();
    assert_eq!(tenants.iter().map(|t| t["tenant"].as_str().unwrap()).collect::<Vec<_>>(), ["acme", "globex"]);
    let (acme, globex) = (&tenants[0], &tenants[1]);
    assert_eq!(acme["claims"], 3);
    assert_eq!(acme["next_actor"], json!({"reseller": 0, "account_owner": 2, "distributor_ops": 1, "nobody": 0}));
    assert_eq!(
        (&acme["invitations_expiring"], &acme["blocked"], &acme["tickets_waiting"]),
        (&json!(1), &json!(0), &json!(1))
    );
    assert_eq!(acme["notifications_pending"], acme_pending);
    assert_eq!(globex["claims"], 3);
    assert_eq!(globex["next_actor"], json!({"reseller": 1, "account_owner": 1, "distributor_ops": 0, "nobody": 0}));
    assert_eq!((&globex["blocked"], &globex["support_plan_attention"]), (&json!(1), &json!(1)));
    assert_eq!(globex["notifications_pending"], globex_pending);

    // Stuck longest, longest first; the lapsed claim is not stuck.
    let stuck: Vec<&str> = p["stuck"].as_array().unwrap().iter().map(|s| s["account_id"].as_str().unwrap()).collect();
    assert_eq!(stuck, ["444444444444", "333333333333", "222222222222", "555555555555", "111111111111"]);
    assert_eq!(p["stuck"][0]["next_actor"], "reseller");
    assert_eq!(p["stuck"][0]["since"], iso(now - 20 * time::Duration::DAY));

    // One tenant.
    let acme_only: Value = serde_json::from_str(&o.ok(&["pipeline", "--tenant", "acme", "--json"])).unwrap();
    assert_eq!(acme_only["tenant"], "acme");
    assert_eq!(acme_only["overall"]["claims"], 3);
    assert_eq!(acme_only["overall"]["next_actor"], acme["next_actor"]);
    assert_eq!(acme_only["overall"]["notifications_pending"], acme_pending);
    assert_eq!(acme_only["tenants"].as_array().unwrap().len(), 1);

    // The text.
    let text = o.ok(&["pipeline"]);
    assert!(text.contains("6 registrations") && text.contains("globex"), "{text}");
    assert!(text.contains("1. 444444444444 Acme (tenant globex): linked for 20 d"), "{text}");
    let es = o.ok(&["pipeline", "--lang", "es"]);
    assert!(es.contains("6 registros") && es.contains("Operaciones tiene tareas pendientes."), "{es}");

    // CSV: a header, all, then each tenant.
    let csv = o.ok(&["pipeline", "--csv"]);
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4, "{csv}");
    let column = |name: &str| rows[0].iter().position(|c| *c == name).unwrap_or_else(|| panic!("{name}: {csv}"));
    assert_eq!(rows[0].len(), rows[1].len());
    let cell = |row: usize, name: &str| rows[row][column(name)];
    assert_eq!((cell(1, "tenant"), cell(2, "tenant"), cell(3, "tenant")), ("", "acme", "globex"));
    assert_eq!((cell(1, "claims"), cell(1, "invited"), cell(1, "next_distributor_ops")), ("6", "1", "1"));
    // A run later: as many seconds more as passed.
    let later: i64 = cell(1, "invited_oldest_seconds").parse().unwrap();
    assert!((seconds..seconds + 60).contains(&later), "{later} after {seconds}");
    assert_eq!((cell(3, "blocked"), cell(3, "support_plan_attention"), cell(2, "tickets_waiting")), ("1", "1", "1"));
    assert_eq!(cell(2, "linked_median_seconds"), "");

    // Not a tenant ID: refused before the store is opened.
    let run = o.run(&["pipeline", "--tenant", "a b"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn an_empty_store_has_a_pipeline_of_zeros_and_nothing_for_operations() {
    let o = Orglink::new();
    add(&o, "111111111111", "acme");
    let p: Value = serde_json::from_str(&o.ok(&["pipeline", "--tenant", "globex", "--json"])).unwrap();
    assert_eq!(p["overall"]["claims"], 0);
    assert_eq!(p["needs_operations"], false);
    assert_eq!(p["tenants"], json!([]));
    assert!(o.ok(&["pipeline", "--tenant", "globex"]).contains("Nothing waits on operations."));
}

/// The operations server, its role and a reseller's server.
fn pipeline_command(guild: &str, permissions: &str, roles: &[&str]) -> Value {
    command("pipeline", &[], guild, "en-US", permissions, roles)
}

const EPHEMERAL: u64 = 64;

#[tokio::test]
async fn slash_pipeline_is_for_the_operations_role_in_the_operations_server_and_pages_in_place() {
    let h = Harness::new().serve().await;
    for i in 0..23 {
        h.register(&format!("{:012}", 100_000_000_000u64 + i), SupportTier::Developer);
    }
    h.outbox();

    // The operations role, no other right.
    let response = h.interact(&pipeline_command(OPS_GUILD, NOBODY, &[OPS_ROLE])).await;
    assert_eq!(response["type"], 4, "{response}");
    assert_eq!(response["data"]["flags"].as_u64().unwrap() & EPHEMERAL, EPHEMERAL, "only the asker sees it");
    let text = embeds_text(&response["data"]);
    assert!(text.contains("23 registrations") && text.contains("(1–10, page 1 of 3)"), "{text}");
    assert!(text.contains("1. `100000000000`") && text.contains("10. `100000000009`"), "{text}");
    assert!(!text.contains("Per tenant"), "the command line's part: {text}");
    let buttons = &response["data"]["components"][0]["components"];
    assert_eq!(buttons.as_array().unwrap().len(), 1, "{buttons}");
    assert_eq!(buttons[0]["custom_id"], "ol:pipeline:1");
    assert_eq!(buttons[0]["label"], "Next");

    // "Next": the same message, the next ten, both buttons.
    let mut next = interaction("component_button", OPS_GUILD, "en-US", NOBODY, &[OPS_ROLE]);
    next["data"]["custom_id"] = json!("ol:pipeline:1");
    let page = h.interact(&next).await;
    assert_eq!(page["type"], 7, "an update of the message: {page}");
    let text = embeds_text(&page["data"]);
    assert!(text.contains("(11–20, page 2 of 3)") && text.contains("11. `100000000010`"), "{text}");
    let ids: Vec<&str> = page["data"]["components"][0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ol:pipeline:0", "ol:pipeline:2"]);
    next["data"]["custom_id"] = json!("ol:pipeline:2");
    let last = h.interact(&next).await;
    let text = embeds_text(&last["data"]);
    assert!(text.contains("(21–23, page 3 of 3)") && text.contains("23. `100000000022`"), "{text}");

    // Hostile custom IDs are refused as unknown, and run nothing.
    for forged in ["ol:pipeline:01", "ol:pipeline:100", "ol:pipeline:-1", "ol:pipeline:1:2", "ol:pipeline:x"] {
        next["data"]["custom_id"] = json!(forged);
        let refused = h.interact(&next).await;
        assert_eq!(refused["type"], 4, "{forged}: {refused}");
        let text = embeds_text(&refused["data"]);
        assert!(!text.is_empty() && !text.contains("registrations"), "{forged}: {text}");
    }

    // Without the role, even with Manage Server, in the operations server:
    // refused, as is the button.
    let refused = h.interact(&pipeline_command(OPS_GUILD, ADMIN, &[])).await;
    let text = embeds_text(&refused["data"]);
    assert!(text.contains("operations team") && !text.contains("registrations"), "{text}");
    let mut button = interaction("component_button", OPS_GUILD, "en-US", ADMIN, &[]);
    button["data"]["custom_id"] = json!("ol:pipeline:1");
    let refused = h.interact(&button).await;
    assert_eq!(refused["type"], 4, "not an update: {refused}");
    assert!(embeds_text(&refused["data"]).contains("operations team"));
    // A reseller's server, whatever roles its member holds.
    let refused = h.interact(&pipeline_command(GUILD_A, ADMIN, &[OPS_ROLE])).await;
    let text = embeds_text(&refused["data"]);
    assert!(text.contains("operations team") && !text.contains("registrations"), "{text}");
    h.outbox();
    h.finish().await;
}

#[tokio::test]
async fn operations_see_any_tenants_account_with_status_in_the_operations_server() {
    let h = Harness::new().serve().await;
    h.register("123456789012", SupportTier::Business);
    h.outbox();
    let status = |guild: &str, permissions: &str, roles: &[&str]| {
        command("status", &[("account_id", "123456789012")], guild, "en-US", permissions, roles)
    };
    // The operations role alone: acme's account, privately.
    let response = h.interact(&status(OPS_GUILD, NOBODY, &[OPS_ROLE])).await;
    let text = embeds_text(&response["data"]);
    assert!(text.contains("123456789012") && !text.contains("not registered"), "{text}");
    assert_eq!(response["data"]["flags"].as_u64().unwrap() & EPHEMERAL, EPHEMERAL);
    // Without it, in the operations server: not found (it is acme's).
    let response = h.interact(&status(OPS_GUILD, ADMIN, &[])).await;
    assert!(embeds_text(&response["data"]).contains("is not registered here"), "{response}");
    // The role in another server counts for nothing.
    let response = h.interact(&status(GUILD_B, ADMIN, &[OPS_ROLE])).await;
    assert!(embeds_text(&response["data"]).contains("is not registered here"), "{response}");
    h.outbox();
    h.finish().await;
}

#[tokio::test]
async fn the_digest_is_silent_when_nothing_needs_operations_and_one_notice_when_something_does() {
    let ops: orglink::domain::TenantId = OPS_GUILD.parse().unwrap();
    let h = Harness::new().settings(|s| s.operations_server = Some(ops.clone())).discord().start().await;
    h.register("111111111111", SupportTier::Developer);
    h.register("222222222222", SupportTier::Developer);
    h.outbox();
    let report = h.run(Job::OpsDigest).await;
    assert_eq!((report.tracked, report.changed), (2, 0));
    assert!(h.outbox().iter().all(|i| i.event.code() != "ops_digest"), "silent: nothing needs operations");

    // A verified role: operations must send the invitation.
    let now = h.now();
    crate::harness::change(h.store(), "222222222222", "test", now, |a| {
        a.apply(&orglink::domain::Transition::RoleVerified, now)
    });
    h.outbox();
    let report = h.run(Job::OpsDigest).await;
    assert_eq!(report.changed, 1);
    let digests: Vec<_> = h.outbox().into_iter().filter(|i| i.event.code() == "ops_digest").collect();
    assert_eq!(digests.len(), 1, "{digests:?}");
    assert_eq!(digests[0].tenant, ops);
    assert_eq!(
        digests[0].event,
        orglink::domain::Event::OpsDigest {
            tenant: ops.clone(),
            registered: 2,
            entered: vec![(LinkState::Registered, 1), (LinkState::RoleVerified, 1)],
            operations_next: 1,
            invitations_expiring: 0,
            blocked: 0,
            support_plan_attention: 0,
            notifications_dead: 0,
        }
    );

    // Delivered to the operations channel, in words.
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(format!("/api/v10/channels/{OPS_CHANNEL}/messages")))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(message_json(OPS_CHANNEL)))
        .mount(&h.discord().server)
        .await;
    let digest_only: Vec<u64> = digests.iter().map(|i| i.id).collect();
    for item in h.store().outbox().unwrap() {
        if !digest_only.contains(&item.id) {
            h.store().outbox_delivered(&item, &[]).unwrap();
        }
    }
    h.notifier().deliver_due().await.unwrap();
    let posted: Vec<Value> = h
        .discord()
        .requests()
        .await
        .into_iter()
        .filter(|r| r.url.path().contains(OPS_CHANNEL))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(posted.len(), 1, "{posted:?}");
    let text = posted[0]["embeds"][0]["description"].as_str().unwrap();
    assert!(
        text.contains("Daily digest for operations") && text.contains("1 verified, waiting for the invitation"),
        "{text}"
    );
    assert!(text.contains("2 registrations"), "{text}");
    h.finish().await;
}

#[tokio::test]
async fn pipeline_runs_through_the_server_that_holds_the_store() {
    let o = Orglink::new();
    six_states(&o);
    let alone: Value = serde_json::from_str(&o.ok(&["pipeline", "--json"])).unwrap();
    let server = crate::socket::Server::start(&o, &[]).await;
    let env = crate::socket::as_user(crate::socket::OFFLINE);
    let run = o.run_with(&env, &["pipeline", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let served: Value = serde_json::from_str(&run.stdout).unwrap();
    // The same figures (times move on with the clock).
    assert_eq!(counts(&served["overall"]), counts(&alone["overall"]));
    assert_eq!(served["overall"]["next_actor"], alone["overall"]["next_actor"]);
    assert_eq!(served["stuck"].as_array().unwrap().len(), 5);
    let csv = o.run_with(&env, &["pipeline", "--csv", "--tenant", "globex"]);
    assert_eq!((csv.code, csv.stdout.lines().count()), (0, 3), "{csv:?}");
    server.stop();
}

//! Claims: every reseller that registers an account holds its own claim,
//! with its own external ID; the role proves whose it is.

use std::time::Duration;

use orglink::app::{Actor, AppError, Command, InstructionsFormat, Rights, Scope, UserError};
use orglink::aws::RetryPolicy;
use orglink::domain::{Event, LinkState, SupportTier, TenantDecision};
use orglink::scheduler::Job;
use serde_json::Value;

use crate::harness::{Customer, Harness, Orglink, PLATFORM, emulator, id, new_account, operator};

const AT: time::OffsetDateTime = time::macros::datetime!(2026-12-01 12:00 UTC);

/// A member of `tenant`'s Discord server allowed to run account commands.
fn member_of(tenant: &str) -> Actor {
    Actor {
        id: "discord:700000000000000009".into(),
        scope: Scope::Tenant(tenant.parse().unwrap()),
        rights: Rights { manage_server: true, ..Default::default() },
        claim_of: None,
    }
}

/// `tenant` (approved by operations, once) registers `account`.
fn claim(h: &Harness, account: &str, tenant: &str) -> Result<orglink::app::Reply, AppError> {
    let approve = Command::DecideTenant { tenant: tenant.parse().unwrap(), decision: TenantDecision::Approve };
    h.app().handle(&operator(), approve)?;
    h.app().handle(&member_of(tenant), Command::AddAccount(new_account(account, tenant, SupportTier::Basic)))
}

fn user_error(result: Result<impl std::fmt::Debug, AppError>) -> UserError {
    match result {
        Err(AppError::User(e)) => e,
        other => panic!("expected a user error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_role_makes_the_reseller_it_trusts_the_owner_and_closes_the_other_claims() {
    let h = Harness::new().aws(RetryPolicy { retries: 1, first_delay: Duration::from_millis(20) }).start().await;
    let account = "111200000001";
    claim(&h, account, "1001").unwrap();
    claim(&h, account, "1002").unwrap();
    let claims = h.store().claims(id(account)).unwrap();
    assert_eq!(claims.len(), 2);
    assert_ne!(claims[0].external_id, claims[1].external_id, "each claim has its own external ID");
    assert_eq!(h.notified(account), ["account_registered", "account_registered"]);

    // The owner creates the role for the second reseller's external ID; the
    // first reseller's own ID does not assume it.
    let customer = Customer::new(account).await;
    let arn = customer.create_instructed_role(claims[1].external_id.as_str()).await;
    let verify = |tenant: &str| {
        let command = Command::VerifyRole { account: id(account), arn: Some(arn.parse().unwrap()), description: None };
        let actor = member_of(tenant);
        let app = h.app().clone();
        async move { app.execute(&actor, command).await }
    };
    let first = verify("1001").await.unwrap();
    assert_eq!(first.verdict, orglink::app::Verdict::Refused, "the role does not trust the first claim");
    verify("1002").await.unwrap();

    let owner = h.store().claim(id(account), &"1002".parse().unwrap()).unwrap().unwrap();
    assert_eq!(owner.state, LinkState::RoleVerified);
    assert!(owner.owned_at.is_some());
    let closed = h.store().claim(id(account), &"1001".parse().unwrap()).unwrap().unwrap();
    assert!(closed.closed_at.is_some());
    let outbox = h.outbox();
    let told: Vec<_> = outbox.iter().filter(|i| i.tenant.as_str() == "1001").map(|i| i.event.code()).collect();
    assert_eq!(told, ["account_registered", "claim_closed"], "told once");
    assert_eq!(
        outbox.iter().filter(|i| i.tenant.as_str() == "1002").map(|i| i.event.code()).collect::<Vec<_>>(),
        ["account_registered", "role_verified"]
    );

    // The first reseller sees nothing more of it.
    let shown = h.app().handle(&member_of("1001"), Command::ShowAccount { account: id(account) });
    assert_eq!(user_error(shown), UserError::AccountNotFound { account: id(account) });
    let list = h
        .app()
        .handle(
            &member_of("1001"),
            Command::ListAccounts { tenant: None, filter: Default::default(), format: Default::default() },
        )
        .unwrap();
    assert_eq!(list.data().unwrap()["accounts"], serde_json::json!([]));
    assert!(h.app().suggest_accounts(&member_of("1001"), "1112", 25).unwrap().is_empty());
    let again = verify("1001").await;
    assert_eq!(user_error(again), UserError::AccountNotFound { account: id(account) });

    // A third reseller is refused, and not told whose it is.
    let refused = user_error(claim(&h, account, "1003"));
    assert_eq!(refused, UserError::LinkedElsewhere { account: id(account) });
    let text = orglink::app::Message::Error(refused)
        .render(&orglink::templates::Templates::embedded(), orglink::domain::Lang::En)
        .unwrap()
        .text;
    assert!(!text.contains("1002") && text.contains("another reseller"), "{text}");
    assert!(h.store().claim(id(account), &"1003".parse().unwrap()).unwrap().is_none());
    // Checking the owner's role again uses the owner's external ID only.
    let report = h.verify(account, &arn).await.unwrap();
    assert!(report.verified);
    h.finish().await;
}

#[tokio::test]
async fn a_sixth_open_claim_is_refused_operations_hear_of_it_and_lapsed_claims_make_room() {
    let h = Harness::new().at(AT).start().await;
    let account = "111200000002";
    for tenant in ["2001", "2002", "2003", "2004", "2005"] {
        claim(&h, account, tenant).unwrap();
    }
    h.outbox();
    let before = h.store().claims(id(account)).unwrap();
    let refused = user_error(claim(&h, account, "2006"));
    assert_eq!(refused, UserError::TooManyClaims { account: id(account), max: 5 });
    assert_eq!(h.store().claims(id(account)).unwrap(), before, "nothing changed");
    let told: Vec<_> = h.outbox().into_iter().filter(|i| i.event.code() == "claims_full").collect();
    assert_eq!(told.len(), 1);
    assert!(told[0].audience.ops && !told[0].audience.tenant, "operations only");
    assert_eq!(told[0].event, Event::ClaimsFull { account: id(account), tenant: "2006".parse().unwrap() });

    // One claim lapses: it no longer counts.
    h.clock().set(h.now() + time::Duration::days(15));
    let report = h.run(Job::LapseClaims).await;
    assert_eq!(report.changed, 5);
    claim(&h, account, "2006").unwrap();
    h.outbox();
    h.finish().await;
}

#[tokio::test]
async fn an_unverified_claim_lapses_once_and_showing_the_instructions_revives_it() {
    let h = Harness::new().at(AT).start().await;
    let account = "111200000003";
    claim(&h, account, "3001").unwrap();
    assert_eq!(h.notified(account), ["account_registered"]);

    h.clock().set(h.now() + time::Duration::days(14) - time::Duration::minutes(1));
    assert_eq!(h.run(Job::LapseClaims).await.changed, 0, "not yet");
    h.clock().set(h.now() + time::Duration::minutes(2));
    assert_eq!(h.run(Job::LapseClaims).await.changed, 1);
    assert_eq!(h.state(account), LinkState::Lapsed);
    assert!(h.account(account).probe.is_none(), "no longer looked for");
    assert_eq!(h.run(Job::LapseClaims).await.tracked, 0, "a lapsed claim is not due");
    assert_eq!(h.notified(account), ["account_registered", "claim_lapsed"], "told once");

    // The reseller shows the instructions again: a fresh window.
    let shown = Command::Instructions { account: id(account), format: InstructionsFormat::Text };
    h.app().handle(&member_of("3001"), shown).unwrap();
    let revived = h.account(account);
    assert_eq!(revived.state, LinkState::Registered);
    assert_eq!(revived.window_from, Some(h.now()));
    assert!(revived.probe.is_some(), "looked for again");
    h.clock().set(h.now() + time::Duration::days(13));
    assert_eq!(h.run(Job::LapseClaims).await.changed, 0);

    // Operations revive it too; an owned claim has nothing to revive.
    h.app().handle(&operator(), Command::Revive { account: id(account) }).unwrap();
    assert_eq!(h.account(account).window_from, Some(h.now()));
    h.store()
        .change_claims::<()>(id(account), &orglink::store::By::new("test", "own", h.now()), |claims| {
            claims[0].owned_at = Some(h.now());
            Ok(vec![])
        })
        .unwrap();
    let refused = user_error(h.app().handle(&operator(), Command::Revive { account: id(account) }));
    assert!(matches!(refused, UserError::NotNow { .. }), "{refused:?}");
    h.finish().await;
}

#[tokio::test]
async fn through_the_cli_operations_find_the_claim_a_role_proves() {
    let o = Orglink::new().aws(&emulator().admin(PLATFORM, "orglink-claims").await);
    let account = "111200000004";
    for tenant in ["acme", "beta"] {
        o.ok(&["account", "add", account, "--tenant", tenant, "--customer", "Acme", "--support", "basic"]);
    }
    let claims = o.store().claims(id(account)).unwrap();
    let (acme, beta) = (claims[0].external_id.clone(), claims[1].external_id.clone());
    assert_ne!(acme, beta);

    // Two claims, no owner: operations must say which.
    let run = o.run(&["account", "show", account]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--tenant"), "{}", run.stderr);
    let shown: Value =
        serde_json::from_str(&o.ok(&["account", "show", account, "--tenant", "beta", "--json"])).unwrap();
    assert_eq!(shown["external_id"], beta.as_str());

    // The role trusts beta's external ID: verify finds beta's claim by itself.
    let customer = Customer::new(account).await;
    let arn = customer.create_instructed_role(beta.as_str()).await;
    let run = o.run(&["verify", account, &arn, "--tenant", "acme"]);
    assert_eq!(run.code, 3, "acme's external ID is not trusted: {run:?}");
    o.ok(&["verify", account, &arn]);
    let shown: Value = serde_json::from_str(&o.ok(&["account", "show", account, "--json"])).unwrap();
    assert_eq!(shown["tenant"], "beta");
    assert_eq!(shown["state"], "role_verified");
    assert!(shown["owned_at"].is_string(), "{shown}");
    let run = o.run(&["account", "show", account, "--tenant", "acme"]);
    assert_eq!(run.code, 2, "acme's claim closed: {run:?}");
    let listed: Value = serde_json::from_str(&o.ok(&["account", "list", "--tenant", "acme", "--json"])).unwrap();
    assert_eq!(listed["accounts"], serde_json::json!([]));
    // A third reseller cannot claim it any more.
    let run = o.run(&["account", "add", account, "--tenant", "gamma", "--customer", "G", "--support", "basic"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("another reseller") && !run.stderr.contains("beta"), "{}", run.stderr);
}

/// A list (`/status`, `account list`) reads the claims' pipeline rows, not
/// the claims: whatever the claims' states, tenants, times and the filter,
/// it lists what the claims themselves say, in account order.
#[tokio::test]
async fn a_list_from_the_rows_says_what_the_claims_say() {
    use orglink::app::{AccountSummary, ListFormat};
    use orglink::domain::{ListFilter, TenantId};

    let h = Harness::new().at(AT).start().await;
    let subsecond = time::Duration::milliseconds(250);
    // Registered at different times (to the millisecond), some in both tenants.
    for (n, tenant) in ["4001", "4002", "4001", "4001", "4002", "4001"].iter().enumerate() {
        h.clock().set(AT + time::Duration::days(n as i64) + subsecond);
        claim(&h, &format!("1115000000{:02}", 9 - n), tenant).unwrap();
    }
    claim(&h, "111500000009", "4002").unwrap();
    // One lapses (the others were registered too recently), one is linked
    // with a support plan group set.
    h.clock().set(AT + time::Duration::days(14) + time::Duration::minutes(1));
    assert_eq!(h.run(Job::LapseClaims).await.changed, 1);
    h.store()
        .change_claims::<()>(id("111500000008"), &orglink::store::By::new("test", "link", h.now()), |claims| {
            claims[0].state = LinkState::Linked;
            claims[0].support_plan_group = Some(orglink::domain::SupportPlanGroup::Passthrough);
            Ok(vec![])
        })
        .unwrap();
    h.outbox();

    let listed = |tenant: Option<&str>, filter: ListFilter| -> Vec<Value> {
        let command =
            Command::ListAccounts { tenant: tenant.map(|t| t.parse().unwrap()), filter, format: ListFormat::Text };
        let reply = h.app().handle(&operator(), command).unwrap();
        reply.data().unwrap()["accounts"].as_array().unwrap().clone()
    };
    let claimed = |tenant: Option<&str>, filter: &ListFilter| -> Vec<Value> {
        let claims = match tenant {
            Some(t) => h.store().tenant_accounts(&t.parse::<TenantId>().unwrap()).unwrap(),
            None => h.store().all_accounts().unwrap(),
        };
        let mut summaries: Vec<AccountSummary> =
            claims.iter().filter(|a| filter.matches(a, h.now())).map(AccountSummary::from).collect();
        summaries.sort_by(|a, b| (a.id, &a.tenant).cmp(&(b.id, &b.tenant)));
        summaries.iter().map(|s| serde_json::to_value(s).unwrap()).collect()
    };
    let filters = [
        ListFilter::default(),
        ListFilter { states: vec![LinkState::Registered], stale_days: None },
        ListFilter { states: vec![LinkState::Lapsed, LinkState::Linked], stale_days: None },
        ListFilter { states: vec![], stale_days: Some(10) },
    ];
    for tenant in [None, Some("4001"), Some("4002"), Some("4999")] {
        for filter in &filters {
            let want = claimed(tenant, filter);
            assert_eq!(listed(tenant, filter.clone()), want, "{tenant:?} {filter:?}");
        }
    }
    let all = listed(None, ListFilter::default());
    assert_eq!(all.len(), 7);
    let key = |a: &Value| (a["id"].as_str().unwrap().to_owned(), a["tenant"].as_str().unwrap().to_owned());
    assert!(all.windows(2).all(|w| key(&w[0]) < key(&w[1])), "in account order");
    assert!(all.iter().all(|a| a["registered_at"].as_str().unwrap().contains(".25")), "to the millisecond: {all:?}");
    let states: Vec<&str> = all.iter().map(|a| a["state"].as_str().unwrap()).collect();
    assert!(states.contains(&"lapsed") && states.contains(&"linked"), "{states:?}");
    h.finish().await;
}

//! The store writes what it is given, whole or not at all: against a real
//! sled in a temporary directory.

use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::domain::{
    Account, AccountKind, Audience, DueJob, Effects, Event, Notice, SupportTier, TicketEffect, TicketReason,
    TicketRequest, Tone,
};
use crate::domain::{Check, CheckName, Outcome, PriceBookChoice, Problem, VerificationReport};

const AT: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

fn account(id: &str, tenant: &str) -> Account {
    crate::domain::sample_account(id, tenant, SupportTier::Basic, AT)
}

fn acme() -> crate::domain::TenantId {
    "acme".parse().unwrap()
}

fn by() -> By<'static> {
    By::new("test", "add", AT)
}

fn notice(event: Event) -> Notice {
    Notice { event, audience: Audience::TENANT, tone: Tone::Info }
}

fn registered(account: &Account, due: Vec<(DueJob, OffsetDateTime)>) -> Change {
    let event = Event::AccountRegistered { account: account.id };
    Change {
        events: vec![event.clone()],
        effects: Effects { notices: vec![notice(event)], tickets: vec![] },
        due,
        ..Change::default()
    }
}

#[test]
fn a_change_lands_exactly_as_given() {
    let store = Store::temporary().unwrap();
    let a = account("123456789012", "acme");
    let request = TicketRequest::requested(&a, "help".parse::<TicketReason>().unwrap(), AT);
    let mut change = registered(&a, vec![(DueJob::Probe, AT)]);
    change.effects.tickets.push(TicketEffect::Request(request.clone()));
    store.insert_account(&a, &by(), &change).unwrap().unwrap();

    assert_eq!(store.account(a.id).unwrap(), Some(a.clone()));
    assert_eq!(store.tenant_accounts(&"acme".parse().unwrap()).unwrap(), vec![a.clone()]);
    assert_eq!(store.account_with_external_id(&a.external_id).unwrap(), Some(a.id));
    let outbox = store.outbox().unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].notice(), change.effects.notices[0]);
    assert_eq!(outbox[0].dedupe_key, format!("o{}", outbox[0].id));
    assert_eq!(store.ticket_requests().unwrap(), vec![request]);
    let audit = store.audit_log(a.id).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].actor.as_str(), audit[0].action.as_str()), ("test", "add"));
    assert_eq!(audit[0].events, change.events);

    // Nothing the change did not say: no notice, no ticket, no due time.
    let b = account("210987654321", "acme");
    store.insert_account(&b, &by(), &Change::default()).unwrap().unwrap();
    assert_eq!(store.outbox().unwrap().len(), 1);
    assert_eq!(store.ticket_requests().unwrap().len(), 1);
    assert!(store.due_accounts(DueJob::Probe, AT, usize::MAX).unwrap().accounts.iter().all(|x| x.id == a.id));
}

#[test]
fn many_new_claims_land_together_or_not_at_all() {
    let store = Store::temporary().unwrap();
    let claims: Vec<(Account, Change)> = (0..3)
        .map(|i| {
            let a = account(&format!("{:012}", 100_000_000_000u64 + i), "acme");
            let change = registered(&a, vec![(DueJob::Probe, AT)]);
            (a, change)
        })
        .collect();
    // The last one refused: nothing of the first two is written.
    let refused = store.add_claims(&by(), &claims, |_, a| if a.id == claims[2].0.id { Err("no") } else { Ok(()) });
    assert!(matches!(refused, Err(UpdateError::Rejected((2, "no")))));
    assert_eq!(store.export().unwrap(), Store::temporary().unwrap().export().unwrap());

    // Two claims with one external ID: the second aborts it all.
    let mut clash = claims.clone();
    clash[1].0.external_id = clash[0].0.external_id.clone();
    assert!(matches!(store.add_claims(&by(), &clash, |_, _| Ok::<_, ()>(())), Err(UpdateError::ExternalIdTaken)));
    assert!(store.tenant_accounts(&acme()).unwrap().is_empty());

    store.add_claims(&by(), &claims, |_, _| Ok::<_, ()>(())).unwrap();
    assert_eq!(store.tenant_accounts(&acme()).unwrap(), claims.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>());
    assert_eq!(store.outbox().unwrap().len(), 3);
    assert_eq!(store.due_accounts(DueJob::Probe, AT, usize::MAX).unwrap().total, 3);
    for (a, _) in &claims {
        assert_eq!(store.audit_log(a.id).unwrap().len(), 1);
        assert_eq!(store.account_with_external_id(&a.external_id).unwrap(), Some(a.id));
    }
    // Each account's claims are judged as they stand: a second time, each
    // is refused by what the first wrote.
    let again =
        store.add_claims(
            &by(),
            &claims,
            |existing, a| {
                if existing.iter().any(|c| c.tenant == a.tenant) { Err(()) } else { Ok(()) }
            },
        );
    assert!(matches!(again, Err(UpdateError::Rejected((0, ())))));
}

#[test]
fn the_counts_metrics_read_agree_with_the_records() {
    let store = Store::temporary().unwrap();
    assert_eq!(store.outbox_summary().unwrap(), (0, None));
    let (a, b) = (account("123456789012", "acme"), account("210987654321", "acme"));
    let mut change = registered(&a, vec![]);
    change.effects.tickets.push(TicketEffect::Request(TicketRequest::requested(&a, "help".parse().unwrap(), AT)));
    store.insert_account(&a, &by(), &change).unwrap().unwrap();
    let later = By { at: AT + time::Duration::hours(1), ..by() };
    store.insert_account(&b, &later, &registered(&b, vec![])).unwrap().unwrap();

    let outbox = store.outbox().unwrap();
    assert_eq!(outbox.len(), 2);
    assert_eq!(store.outbox_summary().unwrap(), (2, Some(AT)), "the oldest is the first queued");
    assert_eq!(store.ticket_request_count(), 1);
    store.outbox_dead(&outbox[0], &[], "gone", AT, None).unwrap();
    assert_eq!(store.outbox_summary().unwrap(), (1, Some(AT + time::Duration::hours(1))));
    assert_eq!(store.dead_letter_count(), 1);
    // Per tenant, reading each record's tenant only: as the full records say.
    let c = account("333333333333", "globex");
    store.insert_account(&c, &later, &registered(&c, vec![])).unwrap().unwrap();
    let mut expected = crate::store::Undelivered::default();
    for item in store.outbox().unwrap() {
        *expected.pending.entry(item.tenant).or_default() += 1;
    }
    for dead in store.dead_letters().unwrap() {
        *expected.dead.entry(dead.item.tenant).or_default() += 1;
    }
    assert_eq!(expected.pending.len(), 2);
    assert_eq!(store.undelivered_by_tenant().unwrap(), expected);
}

#[test]
fn a_requested_ticket_is_kept_once_and_retries_and_removals_apply() {
    let store = Store::temporary().unwrap();
    let a = account("123456789012", "acme");
    store.insert_account(&a, &by(), &Change::default()).unwrap().unwrap();
    let request = TicketRequest::requested(&a, "help".parse::<TicketReason>().unwrap(), AT);
    let waiting = request.failed(AT, None);
    let with = |tickets: Vec<TicketEffect>| {
        move |_: &mut Account| {
            Ok::<_, ()>(Change { effects: Effects { notices: vec![], tickets: tickets.clone() }, ..Change::default() })
        }
    };

    store.update_account(a.id, &acme(), &by(), with(vec![TicketEffect::Request(request.clone())])).unwrap();
    store.update_account(a.id, &acme(), &by(), with(vec![TicketEffect::Retry(waiting.clone())])).unwrap();
    // Requested again while it waits: the waiting one stays as it is.
    store.update_account(a.id, &acme(), &by(), with(vec![TicketEffect::Request(request.clone())])).unwrap();
    assert_eq!(store.ticket_requests().unwrap(), vec![waiting]);
    store.update_account(a.id, &acme(), &by(), with(vec![TicketEffect::Done { key: request.key.clone() }])).unwrap();
    assert!(store.ticket_requests().unwrap().is_empty());
}

#[test]
fn registrations_conflict_by_account_and_external_id() {
    let store = Store::temporary().unwrap();
    let a = account("123456789012", "acme");
    store.insert_account(&a, &by(), &Change::default()).unwrap().unwrap();
    let again = account("123456789012", "acme");
    assert_eq!(store.insert_account(&again, &by(), &Change::default()).unwrap(), Err(InsertConflict::AccountExists));
    let mut same_id = account("210987654321", "acme");
    same_id.external_id = a.external_id.clone();
    assert_eq!(
        store.insert_account(&same_id, &by(), &Change::default()).unwrap(),
        Err(InsertConflict::ExternalIdTaken)
    );
    assert_eq!(store.all_accounts().unwrap(), vec![a.clone()]);

    // Another tenant's claim on the same account lives beside the first,
    // with its own external ID and indexes.
    let other = account("123456789012", "other");
    store
        .insert_account(&other, &by(), &Change { due: vec![(DueJob::Probe, AT)], ..Change::default() })
        .unwrap()
        .unwrap();
    assert_eq!(store.claims(a.id).unwrap(), vec![a.clone(), other.clone()]);
    assert_eq!(store.claim(a.id, &other.tenant).unwrap(), Some(other.clone()));
    assert_eq!(store.tenant_accounts(&other.tenant).unwrap(), vec![other.clone()]);
    assert_eq!(store.account_with_external_id(&other.external_id).unwrap(), Some(a.id));
    let due = store.due_accounts(DueJob::Probe, AT, usize::MAX).unwrap();
    assert_eq!(due.accounts, vec![other.clone()], "the due claim, not the first");
}

#[test]
fn a_change_of_several_claims_lands_together_and_a_dropped_one_leaves_every_index() {
    let store = Store::temporary().unwrap();
    let (a, b) = (account("123456789012", "acme"), account("123456789012", "other"));
    store.insert_account(&a, &by(), &registered(&a, vec![(DueJob::Probe, AT)])).unwrap().unwrap();
    store.insert_account(&b, &by(), &registered(&b, vec![(DueJob::Probe, AT)])).unwrap().unwrap();
    let (claims, _) = store
        .change_claims::<()>(a.id, &by(), |claims| {
            claims.retain(|c| c.tenant == acme());
            claims[0].customer = "Renamed".parse().unwrap();
            Ok(vec![(acme(), registered(&claims[0], vec![]))])
        })
        .unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(store.claims(a.id).unwrap(), claims);
    assert_eq!(store.claim(a.id, &b.tenant).unwrap(), None);
    assert!(store.tenant_accounts(&b.tenant).unwrap().is_empty());
    assert_eq!(store.account_with_external_id(&b.external_id).unwrap(), None);
    assert_eq!(store.due_accounts(DueJob::Probe, AT, usize::MAX).unwrap().total, 0);
    let audit = store.audit_log(a.id).unwrap();
    assert_eq!(audit.last().unwrap().tenant, Some(acme()), "entries name the claim's tenant");
}

#[test]
fn a_refused_or_clashing_update_changes_nothing() {
    let store = Store::temporary().unwrap();
    let a = account("123456789012", "acme");
    let b = account("210987654321", "acme");
    store.insert_account(&a, &by(), &registered(&a, vec![(DueJob::Probe, AT)])).unwrap().unwrap();
    store.insert_account(&b, &by(), &Change::default()).unwrap().unwrap();
    let before = store.export().unwrap();

    let refused = store.update_account(a.id, &acme(), &by(), |x| {
        x.customer = "Changed".parse().unwrap();
        Err::<Change, _>("no")
    });
    assert!(matches!(refused, Err(UpdateError::Rejected("no"))));
    let clash = store.update_account(a.id, &acme(), &by(), |x| {
        x.external_id = b.external_id.clone();
        Ok::<_, ()>(registered(x, vec![]))
    });
    assert!(matches!(clash, Err(UpdateError::ExternalIdTaken)));
    let missing =
        store.update_account("999999999999".parse().unwrap(), &acme(), &by(), |_| Ok::<_, ()>(Change::default()));
    assert!(matches!(missing, Err(UpdateError::NotFound)));
    assert_eq!(store.export().unwrap(), before);
}

#[test]
fn the_due_index_follows_each_change_and_is_read_up_to_now() {
    let store = Store::temporary().unwrap();
    let minute = time::Duration::MINUTE;
    let ids = ["100000000001", "100000000002", "100000000003"];
    for (i, id) in ids.iter().enumerate() {
        let a = account(id, "acme");
        let due = vec![(DueJob::Probe, AT + minute * i as i32), (DueJob::Poll, AT)];
        store.insert_account(&a, &by(), &Change { due, ..Change::default() }).unwrap().unwrap();
    }
    let due_ids = |job, at, limit| {
        let due = store.due_accounts(job, at, limit).unwrap();
        (due.accounts.iter().map(|a| a.id.to_string()).collect::<Vec<_>>(), due.total)
    };
    assert_eq!(due_ids(DueJob::Probe, AT + minute, usize::MAX), (vec![ids[0].into(), ids[1].into()], 2));
    assert_eq!(due_ids(DueJob::Probe, AT + minute * 5, 1), (vec![ids[0].into()], 3), "most overdue first");
    assert_eq!(due_ids(DueJob::Remind, AT + minute * 5, usize::MAX), (vec![], 0));
    // The keys alone, in the same order, for a job that chooses what to read.
    let keys: Vec<(crate::domain::AccountId, crate::domain::TenantId)> =
        store.due_claims(DueJob::Probe, AT + minute * 5).collect::<Result<_, _>>().unwrap();
    assert_eq!(keys, ids.iter().map(|id| (id.parse().unwrap(), acme())).collect::<Vec<_>>());

    // The first account is probed: its next probe is later; it is no longer polled.
    let first = ids[0].parse().unwrap();
    store
        .update_account(first, &acme(), &by(), |_| {
            Ok::<_, ()>(Change { due: vec![(DueJob::Probe, AT + minute * 10)], ..Change::default() })
        })
        .unwrap();
    assert_eq!(due_ids(DueJob::Probe, AT + minute * 5, usize::MAX).0, vec![ids[1].to_string(), ids[2].to_string()]);
    assert_eq!(due_ids(DueJob::Poll, AT, usize::MAX).1, 2);

    // A new plan: every account's due times again.
    let count = store.reindex_due("plan b", |_| vec![(DueJob::Audit, AT)]).unwrap();
    assert_eq!(count, 3);
    assert_eq!(store.due_plan().unwrap().as_deref(), Some("plan b"));
    assert_eq!(due_ids(DueJob::Probe, AT + minute * 60, usize::MAX).1, 0);
    assert_eq!(due_ids(DueJob::Audit, AT, usize::MAX).1, 3);
}

#[test]
fn a_corrupt_record_is_a_typed_error_naming_it() {
    let store = Store::temporary().unwrap();
    store.accounts.insert(b"123456789012", &b"\xc1 not a record"[..]).unwrap();
    match store.account("123456789012".parse().unwrap()) {
        Err(StoreError::Corrupt { what: "account", key, .. }) => assert_eq!(key, "123456789012"),
        other => panic!("{other:?}"),
    }
    let update =
        store.update_account("123456789012".parse().unwrap(), &acme(), &by(), |_| Ok::<_, ()>(Change::default()));
    assert!(matches!(update, Err(UpdateError::Store(StoreError::Corrupt { what: "account", .. }))));
}

#[test]
fn a_version_1_store_is_migrated_at_open_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = account("123456789012", "acme");
    {
        // What orglink 0.1 with schema 1 wrote: JSON values.
        let db = sled::open(dir.path()).unwrap();
        db.insert(SCHEMA_KEY, &1u32.to_be_bytes()).unwrap();
        db.open_tree("accounts").unwrap().insert(a.id.as_bytes(), serde_json::to_vec(&a).unwrap()).unwrap();
        db.open_tree("accounts_by_tenant").unwrap().insert(b"acme\x00123456789012", b"").unwrap();
        let outbox = serde_json::json!({
            "id": 7, "dedupe_key": "account_registered:123456789012:1", "tenant": "acme",
            "event": { "event": "account_registered", "account": "123456789012" },
            "created_at": "2026-12-01T12:00:00Z"
        });
        db.open_tree("outbox").unwrap().insert(7u64.to_be_bytes(), serde_json::to_vec(&outbox).unwrap()).unwrap();
        let entry = AuditEntry {
            at: AT,
            actor: "cli:ops".into(),
            account: a.id,
            action: "account_add".into(),
            events: vec![],
            tenant: None,
        };
        db.open_tree("audit")
            .unwrap()
            .insert(b"123456789012\0\0\0\0\0\0\0\x01", serde_json::to_vec(&entry).unwrap())
            .unwrap();
        db.open_tree("delivered").unwrap().insert(b"k", b"1764590400").unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.account(a.id).unwrap(), Some(a.clone()));
    let outbox = store.outbox().unwrap();
    assert_eq!(outbox[0].event, Event::AccountRegistered { account: a.id });
    assert_eq!((outbox[0].audience, outbox[0].tone), (Audience::TENANT, Tone::Info), "decided as today");
    assert_eq!(store.audit_log(a.id).unwrap()[0].actor, "cli:ops");
    assert_eq!(store.audit_log(a.id).unwrap()[0].tenant, Some(acme()));
    assert_eq!(store.due_plan().unwrap(), None, "the app rebuilds the due index");
    let acme = store.tenant_status(&a.tenant).unwrap().map(|s| s.state);
    assert_eq!(acme, Some(crate::domain::TenantState::Approved), "and on to schema 3");
    drop(store);

    // sled's segment size is the one the store was created with.
    assert_eq!(segment_size(dir.path()), 512 * 1024);
    assert_eq!(segment_size(&dir.path().join("new")), SEGMENT_BYTES);

    // Opening again finds the current version and leaves it as it is.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.account(a.id).unwrap(), Some(a));
    store.db.insert(SCHEMA_KEY, &99u32.to_be_bytes()).unwrap();
    drop(store);
    assert!(matches!(Store::open(dir.path()), Err(StoreError::SchemaMismatch { found: 99, expected: SCHEMA_VERSION })));
}

#[test]
fn a_version_2_store_becomes_claims_owned_as_each_state_says() {
    use crate::domain::{LinkState, RoleRecord};
    let dir = tempfile::tempdir().unwrap();
    let open = account("123456789012", "acme");
    let mut linked = account("210987654321", "other");
    linked.state = LinkState::Linked;
    linked.role = Some(RoleRecord {
        arn: "arn:aws:iam::210987654321:role/OrgLinkReadOnly".parse().unwrap(),
        description: None,
        recorded_at: AT,
        verified_at: Some(AT + time::Duration::hours(1)),
        report: None,
    });
    {
        // What orglink wrote with schema 2: one record per account, the
        // external ID index naming the account alone.
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        db.insert(SCHEMA_KEY, &2u32.to_be_bytes()).unwrap();
        let (accounts, ids, audit) =
            (db.open_tree("accounts").unwrap(), db.open_tree("external_ids").unwrap(), db.open_tree("audit").unwrap());
        for a in [&open, &linked] {
            let stored = migrate::StoredV2 { account: a.clone(), due: vec![(DueJob::Probe.tag(), 0)] };
            accounts.insert(a.id.as_bytes(), codec::encode(&stored)).unwrap();
            ids.insert(a.external_id.as_str(), a.id.as_bytes()).unwrap();
            db.open_tree("accounts_by_tenant").unwrap().insert(accounts::tenant_key(&a.tenant, a.id), &[]).unwrap();
            let entry = AuditEntry {
                at: AT,
                actor: "cli:ops".into(),
                account: a.id,
                action: "account_add".into(),
                events: vec![],
                tenant: None,
            };
            audit.insert(audit::key(a.id, 1), codec::encode(&entry)).unwrap();
        }
        db.open_tree("due").unwrap().insert(b"stale", &[]).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.claims(open.id).unwrap(), vec![open.clone()], "unverified: an open claim");
    let owned = store.claim(linked.id, &linked.tenant).unwrap().unwrap();
    assert_eq!(owned.owned_at, Some(AT + time::Duration::hours(1)), "owned since its role verified");
    assert_eq!(Account { owned_at: None, ..owned }, linked);
    assert_eq!(store.tenant_accounts(&linked.tenant).unwrap().len(), 1);
    assert_eq!(store.account_with_external_id(&linked.external_id).unwrap(), Some(linked.id));
    assert_eq!(store.audit_log(linked.id).unwrap()[0].tenant, Some(linked.tenant.clone()));
    assert_eq!(store.due.len(), 0, "the app rebuilds the due index");
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.claims(open.id).unwrap(), vec![open]);
}

#[test]
fn every_stored_type_round_trips_through_the_codec() {
    let a = account("123456789012", "acme");
    let item =
        OutboxItem::new(1, &a, notice(Event::InvitationReminder { account: a.id, expires_at: AT, days_left: 2 }), AT);
    let back: OutboxItem = codec::decode(&codec::encode(&item)).unwrap();
    assert_eq!(back, item);
    let dead = DeadLetter { item, reason: "no_channel".into(), at: AT };
    assert_eq!(codec::decode::<DeadLetter>(&codec::encode(&dead)).unwrap(), dead);
    let request = TicketRequest::requested(&a, "help".parse::<TicketReason>().unwrap(), AT);
    assert_eq!(codec::decode::<TicketRequest>(&codec::encode(&request)).unwrap(), request);
    // Price books, both ways.
    for choice in [PriceBookChoice::Default, PriceBookChoice::Custom("EMEA".parse().unwrap())] {
        let mut priced = a.clone();
        priced.set_price_book(choice, AT);
        assert_eq!(codec::decode::<Account>(&codec::encode(&priced)).unwrap(), priced);
        let json = serde_json::to_value(&priced.price_book).unwrap();
        assert_eq!(serde_json::from_value::<Option<PriceBookChoice>>(json).unwrap(), priced.price_book);
    }
    assert_eq!(serde_json::to_string(&PriceBookChoice::Default).unwrap(), r#"{"kind":"default"}"#);
    assert_eq!(
        serde_json::to_string(&PriceBookChoice::Custom("EMEA".parse().unwrap())).unwrap(),
        r#"{"kind":"custom","name":"EMEA"}"#
    );
    // An account with a role checked: tagged enums and flattened fields.
    let mut checked = a.clone();
    let report = VerificationReport {
        account: a.id,
        checks: vec![
            Check { name: CheckName::AssumeRole, outcome: Outcome::Passed },
            Check {
                name: CheckName::CallerIdentity,
                outcome: Outcome::Failed { problem: Problem::WrongAccount { reported: "1".into() } },
            },
            Check { name: CheckName::SupportAccess, outcome: Outcome::Warning { problem: Problem::PolicyMissing } },
        ],
        detected_kind: Some(AccountKind::Member),
        attempts: 2,
        checked_at: AT,
        duration_ms: 12,
        support_tier: crate::domain::AwsSupportTier::not_checked(crate::domain::TierNotChecked::Unavailable {
            detail: "throttled".into(),
        }),
    };
    let arn: crate::domain::RoleArn = "arn:aws:iam::123456789012:role/R".parse().unwrap();
    checked.apply_verification(arn.clone(), None, report.clone(), AT).unwrap();
    assert_eq!(codec::decode::<Account>(&codec::encode(&checked)).unwrap(), checked);
    // A probe's result: an instant beside a flattened outcome.
    let mut probed = a.clone();
    let plan = crate::domain::ProbePlan::default();
    probed.restart_probe(&plan, AT);
    probed.probe_observed(&plan, arn, report, AT).unwrap();
    assert!(probed.probe.as_ref().unwrap().last.is_some());
    assert_eq!(codec::decode::<Account>(&codec::encode(&probed)).unwrap(), probed);
    // The account is much smaller than its JSON.
    assert!(codec::encode(&a).len() * 2 < serde_json::to_vec(&a).unwrap().len(), "{}", codec::encode(&a).len());
}

#[test]
fn tenant_indexes_do_not_bleed_into_each_other() {
    let store = Store::temporary().unwrap();
    for (id, tenant) in
        [("000000000001", "acme"), ("000000000002", "acme2"), ("000000000003", "acm"), ("000000000004", "acme")]
    {
        store.insert_account(&account(id, tenant), &by(), &Change::default()).unwrap().unwrap();
    }
    let ids = |t: &str| -> Vec<String> {
        store.tenant_accounts(&t.parse().unwrap()).unwrap().into_iter().map(|a| a.id.to_string()).collect()
    };
    assert_eq!(ids("acme"), ["000000000001", "000000000004"]);
    assert_eq!(ids("acme2"), ["000000000002"]);
    assert_eq!(ids("acm"), ["000000000003"]);
    assert!(ids("ac").is_empty());
    assert_eq!(store.all_accounts().unwrap().len(), 4);
}

#[test]
fn a_domain_change_lands_with_its_audit_entry_and_a_refused_one_not_at_all() {
    use crate::domain::{LinkState, Transition};
    let store = Store::temporary().unwrap();
    let a = account("123456789012", "acme");
    store.insert_account(&a, &by(), &registered(&a, vec![])).unwrap().unwrap();
    let before = store.export().unwrap();
    let result = store.update_account(a.id, &acme(), &by(), |x| {
        x.apply(&Transition::InvitationAccepted, AT).map(|events| Change { events, ..Change::default() })
    });
    assert!(matches!(result, Err(UpdateError::Rejected(_))));
    assert_eq!(store.export().unwrap(), before);

    let (updated, change) = store
        .update_account(a.id, &acme(), &By::new("ops", "verify", AT), |x| {
            let events = x.apply(&Transition::RoleVerified, AT)?;
            let notices = events.iter().map(|e| notice(e.clone())).collect();
            Ok::<_, crate::domain::IllegalTransition>(Change {
                events,
                effects: Effects { notices, tickets: vec![] },
                ..Change::default()
            })
        })
        .unwrap();
    assert_eq!(updated.state, LinkState::RoleVerified);
    assert_eq!(change.events, vec![Event::RoleVerified { account: a.id }]);
    assert_eq!(store.audit_log(a.id).unwrap().len(), 2);
    assert_eq!(store.outbox().unwrap().len(), 2);
}

#[test]
fn data_survives_reopening_and_foreign_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = account("123456789012", "acme");
    {
        let store = Store::open(dir.path()).unwrap();
        store.insert_account(&a, &by(), &registered(&a, vec![(DueJob::Probe, AT)])).unwrap().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.account(a.id).unwrap(), Some(a));
    assert_eq!(store.outbox().unwrap().len(), 1);
    assert_eq!(store.due_accounts(DueJob::Probe, AT, usize::MAX).unwrap().total, 1);
    drop(store);

    // A directory of sled data that orglink did not write.
    let foreign = tempfile::tempdir().unwrap();
    {
        let db = sled::open(foreign.path()).unwrap();
        db.insert(b"something", b"else").unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(Store::open(foreign.path()), Err(StoreError::UnknownData)));
}

#[test]
fn a_version_2_store_approves_every_tenant_it_knows_at_open() {
    use crate::domain::{TenantSettings, TenantState, TenantStatus};
    let dir = tempfile::tempdir().unwrap();
    let with_settings: crate::domain::TenantId = "900000000000000001".parse().unwrap();
    let suspended: crate::domain::TenantId = "gamma".parse().unwrap();
    {
        // What schema 2 wrote: accounts and settings, no statuses. One
        // tenant was recorded by a migration that stopped part-way.
        let store = Store::open(dir.path()).unwrap();
        for (id, tenant) in [("000000000001", "acme"), ("000000000002", "acme"), ("000000000003", "gamma")] {
            let a = account(id, tenant);
            store.insert_account(&a, &by(), &registered(&a, vec![])).unwrap().unwrap();
        }
        let settings = TenantSettings { channel: crate::domain::ChatId::new(5), ..TenantSettings::default() };
        store
            .set_tenant_settings(&TenantAuditEntry {
                at: AT,
                actor: "discord:1".into(),
                tenant: with_settings.clone(),
                settings,
                status: None,
                events: vec![],
            })
            .unwrap();
        let held = TenantStatus { state: TenantState::Suspended, since: AT };
        store.tenant_status.insert(suspended.as_str(), codec::encode(&held)).unwrap();
        store.db.insert(SCHEMA_KEY, &2u32.to_be_bytes()).unwrap();
        store.flush().unwrap();
    }
    let before = OffsetDateTime::now_utc();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.db.get(SCHEMA_KEY).unwrap().unwrap().as_ref(), SCHEMA_VERSION.to_be_bytes());
    let tenants: Vec<(String, Option<TenantState>, usize)> = store
        .tenants()
        .unwrap()
        .into_iter()
        .map(|t| (t.tenant.to_string(), t.status.map(|s| s.state), t.accounts))
        .collect();
    assert_eq!(
        tenants,
        [
            ("900000000000000001".to_owned(), Some(TenantState::Approved), 0),
            ("acme".to_owned(), Some(TenantState::Approved), 2),
            ("gamma".to_owned(), Some(TenantState::Suspended), 1),
        ]
    );
    let since = store.tenant_status(&"acme".parse().unwrap()).unwrap().unwrap().since;
    assert!(since >= before - time::Duration::seconds(1), "approved at the migration");
    // Each approval is in the tenant's audit log, by the migration; the
    // settings are kept; the tenant left as it was gets nothing.
    let log = store.tenant_audit_log(&with_settings).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].actor, migrate::MIGRATION_ACTOR);
    assert_eq!(log[1].status.map(|s| s.state), Some(TenantState::Approved));
    assert_eq!(log[1].events, [Event::TenantApproved { tenant: with_settings.clone() }]);
    assert_eq!(log[1].settings.channel, crate::domain::ChatId::new(5));
    assert_eq!(store.tenant_settings(&with_settings).unwrap().channel, crate::domain::ChatId::new(5));
    assert!(store.tenant_audit_log(&suspended).unwrap().is_empty());
    // Nobody is told: the outbox holds only what schema 2 had queued.
    assert_eq!(store.outbox().unwrap().len(), 3);
    drop(store);

    // Opening again changes nothing.
    let exported = Store::open(dir.path()).unwrap().export().unwrap();
    let again = Store::open(dir.path()).unwrap().export().unwrap();
    assert_eq!(exported, again);
}

#[test]
fn a_tenant_status_changes_only_from_the_one_read_and_lands_with_its_entry_and_notices() {
    use crate::domain::{TenantSettings, TenantState, TenantStatus};
    let store = Store::temporary().unwrap();
    let tenant: crate::domain::TenantId = "900000000000000501".parse().unwrap();
    let pending = TenantStatus { state: TenantState::Pending, since: AT };
    let event = Event::TenantPending { tenant: tenant.clone(), by: None };
    let entry = TenantAuditEntry {
        at: AT,
        actor: "discord:7".into(),
        tenant: tenant.clone(),
        settings: TenantSettings::default(),
        status: Some(pending),
        events: vec![event.clone()],
    };
    let ops = Notice { event: event.clone(), audience: Audience::OPS, tone: Tone::Warning };
    assert_eq!(store.change_tenant_status(None, &entry, std::slice::from_ref(&ops)).unwrap(), Ok(()));
    assert_eq!(store.tenant_status(&tenant).unwrap(), Some(pending));
    let outbox = store.outbox().unwrap();
    assert_eq!((outbox.len(), &outbox[0].tenant, &outbox[0].event), (1, &tenant, &event));
    assert_eq!(store.tenant_audit_log(&tenant).unwrap(), std::slice::from_ref(&entry));

    // A second writer that read "never seen" finds the first one's status,
    // and writes nothing.
    let before = store.export().unwrap();
    assert_eq!(store.change_tenant_status(None, &entry, &[ops]).unwrap(), Err(Some(pending)));
    assert_eq!(store.export().unwrap(), before);

    let approved = TenantAuditEntry {
        status: Some(TenantStatus { state: TenantState::Approved, since: AT }),
        events: vec![Event::TenantApproved { tenant: tenant.clone() }],
        ..entry
    };
    assert_eq!(store.change_tenant_status(Some(&pending), &approved, &[]).unwrap(), Ok(()));
    assert_eq!(store.tenant_statuses().unwrap(), [(tenant.clone(), approved.status.unwrap())]);
    assert_eq!(store.tenant_audit_log(&tenant).unwrap().len(), 2);
}

#[test]
fn a_quota_count_lands_with_its_change_and_operations_are_told_as_the_closure_says() {
    use crate::domain::quota::{DayCount, Quota, UtcDay};
    let dir = tempfile::tempdir().unwrap();
    let a = account("123456789012", "acme");
    let count = DayCount { day: UtcDay::of(AT), count: 3 };
    {
        let store = Store::open(dir.path()).unwrap();
        store.insert_account(&a, &by(), &registered(&a, vec![])).unwrap().unwrap();
        assert_eq!(store.quota_count(&acme(), Quota::TicketsPerDay).unwrap(), None);
        // A refused change writes no count either.
        let counted = Counted { tenant: acme(), quota: Quota::TicketsPerDay, count };
        let with_count = |_: &mut Account| Ok::<_, ()>(Change { counted: vec![counted.clone()], ..Change::default() });
        let refused = store.update_account(a.id, &acme(), &by(), |x| with_count(x).and(Err(())));
        assert!(matches!(refused, Err(UpdateError::Rejected(()))));
        assert_eq!(store.quota_count(&acme(), Quota::TicketsPerDay).unwrap(), None);
        store.update_account(a.id, &acme(), &by(), with_count).unwrap();

        let event = Event::QuotaExceeded { account: a.id, tenant: acme(), quota: Quota::TicketsPerDay, limit: 3 };
        let ops = Notice { event: event.clone(), audience: Audience::OPS, tone: Tone::Warning };
        let before = store.outbox().unwrap().len();
        assert!(store.notice_quota_exceeded(&acme(), Quota::TicketsPerDay, &ops, AT, |last| last.is_none()).unwrap());
        assert!(!store.notice_quota_exceeded(&acme(), Quota::TicketsPerDay, &ops, AT, |last| last.is_none()).unwrap());
        let outbox = store.outbox().unwrap();
        assert_eq!(outbox.len(), before + 1, "queued once");
        assert_eq!((outbox[before].notice(), &outbox[before].tenant), (ops.clone(), &acme()));
        let other = "globex".parse().unwrap();
        assert!(store.notice_quota_exceeded(&other, Quota::TicketsPerDay, &ops, AT, |last| last.is_none()).unwrap());
    }
    // Both survive a restart: the day's count and the day operations heard.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.quota_count(&acme(), Quota::TicketsPerDay).unwrap(), Some(count));
    let last = std::cell::Cell::new(None);
    let ops = store.outbox().unwrap().pop().unwrap().notice();
    store
        .notice_quota_exceeded(&acme(), Quota::TicketsPerDay, &ops, AT, |told| {
            last.set(told);
            false
        })
        .unwrap();
    assert_eq!(last.get(), Some(UtcDay::of(AT)));
    assert_eq!(store.quota_count(&acme(), Quota::OpenClaims).unwrap(), None, "each quota its own");
}

#[test]
fn only_a_new_empty_or_orglink_directory_is_taken_for_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert_eq!(survey(&data).unwrap(), Found::Nothing);
    assert!(matches!(Store::open_existing(&data), Err(StoreError::Missing { .. })));
    assert!(!data.exists(), "opening an existing store creates none");
    // A mount point's own lost+found leaves it empty.
    std::fs::create_dir_all(data.join("lost+found")).unwrap();
    assert_eq!(survey(&data).unwrap(), Found::Empty);
    assert!(matches!(Store::open_existing(&data), Err(StoreError::Missing { .. })));
    drop(Store::open(&data).unwrap());
    assert_eq!(survey(&data).unwrap(), Found::Store);
    drop(Store::open_existing(&data).unwrap());
    // Anything beside sled's files makes it someone else's.
    std::fs::write(data.join("notes.txt"), "mine").unwrap();
    assert_eq!(survey(&data).unwrap(), Found::Foreign(vec!["notes.txt".into()]));
    assert!(matches!(Store::open(&data), Err(StoreError::Foreign { .. })));
    std::fs::write(dir.path().join("file"), "").unwrap();
    assert!(matches!(Store::open(&dir.path().join("file")), Err(StoreError::NotADirectory { .. })));
}

#[cfg(unix)]
#[test]
fn the_servers_socket_is_orglinks_own_a_file_by_its_name_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let socket = data.join(crate::socket::SOCKET_NAME);
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // Alone it makes no store: the directory is still a new one.
    assert_eq!(survey(&data).unwrap(), Found::Empty);
    drop(Store::open(&data).unwrap());
    assert_eq!(survey(&data).unwrap(), Found::Store);
    drop(listener);
    // A plain file under that name is no socket of ours.
    std::fs::remove_file(&socket).unwrap();
    std::fs::write(&socket, "").unwrap();
    assert_eq!(survey(&data).unwrap(), Found::Foreign(vec![crate::socket::SOCKET_NAME.into()]));
}

#[test]
fn a_backup_restores_every_record_and_an_older_schema_is_migrated_a_newer_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let a = account("123456789012", "acme");
    store.insert_account(&a, &by(), &registered(&a, vec![(DueJob::Probe, AT)])).unwrap().unwrap();
    let file = dir.path().join("store.backup");
    let summary = store.backup(&file, AT).unwrap();
    assert_eq!((summary.accounts, summary.header.schema, summary.header.created_at), (1, SCHEMA_VERSION, AT));
    let (restored, read) = Store::restore(&dir.path().join("restored"), &file).unwrap();
    assert_eq!(read, summary);
    assert_eq!(restored.export().unwrap(), store.export().unwrap(), "every tree, every record");
    assert!(restored.check().unwrap().findings.is_empty());

    // A backup of a schema 2 store (as orglink wrote it then) opens migrated.
    let old = tempfile::tempdir().unwrap();
    let old_file = dir.path().join("v2.backup");
    {
        let db = sled::Config::new().path(old.path()).open().unwrap();
        db.insert(SCHEMA_KEY, &2u32.to_be_bytes()).unwrap();
        let stored = migrate::StoredV2 { account: a.clone(), due: vec![] };
        db.open_tree("accounts").unwrap().insert(a.id.as_bytes(), codec::encode(&stored)).unwrap();
        db.open_tree("external_ids").unwrap().insert(a.external_id.as_str(), a.id.as_bytes()).unwrap();
        db.open_tree("accounts_by_tenant").unwrap().insert(accounts::tenant_key(&a.tenant, a.id), &[]).unwrap();
        assert_eq!(backup::write_raw(&db, &old_file, AT).unwrap().header.schema, 2);
    }
    let (migrated, _) = Store::restore(&dir.path().join("from-v2"), &old_file).unwrap();
    assert_eq!(migrated.claims(a.id).unwrap(), vec![a.clone()]);
    assert_eq!(migrated.db.get(SCHEMA_KEY).unwrap().unwrap().as_ref(), SCHEMA_VERSION.to_be_bytes());
    assert!(migrated.check().unwrap().findings.is_empty(), "{:?}", migrated.check());

    // One of a schema this orglink does not know: refused, nothing written.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[backup::MAGIC.len() + 4..backup::MAGIC.len() + 8].copy_from_slice(&(SCHEMA_VERSION + 1).to_be_bytes());
    let newer = dir.path().join("newer.backup");
    std::fs::write(&newer, bytes).unwrap();
    let target = dir.path().join("from-newer");
    let Err(err) = Store::restore(&target, &newer) else { panic!("a newer schema is refused") };
    assert!(
        matches!(
            err,
            backup::BackupError::Unusable { problem: backup::Unusable::UnknownSchema { found, .. }, .. }
                if found == SCHEMA_VERSION + 1
        ),
        "{err:?}"
    );
    assert!(!target.exists());
}

#[test]
fn check_finds_orphans_and_leaves_tenant_and_standalone_notices_alone() {
    let store = Store::temporary().unwrap();
    let a = account("123456789012", "acme");
    store.insert_account(&a, &by(), &registered(&a, vec![(DueJob::Probe, AT)])).unwrap().unwrap();
    let clean = store.check().unwrap();
    assert_eq!(clean.findings, vec![]);
    assert_eq!((clean.checked.accounts, clean.checked.claims, clean.checked.outbox_items), (1, 1, 1));
    // A notice about an account no claim holds, and one that stands alone
    // (a quota refusal: its tenant may hold no claim), and a tenant's own.
    let gone = account("210987654321", "acme");
    let item = |id: u64, event| outbox::OutboxItem::for_tenant(id, format!("o{id}"), acme(), notice(event), AT);
    let quota = crate::domain::quota::Quota::OpenClaims;
    for item in [
        item(90, Event::AccountRegistered { account: gone.id }),
        item(91, Event::TenantApproved { tenant: acme() }),
        item(92, Event::QuotaExceeded { account: gone.id, tenant: acme(), quota, limit: 1 }),
    ] {
        store.outbox_tx(|outbox| outbox.put(&item)).unwrap();
    }
    // An item written past the index, and an index entry without its item.
    let unindexed = item(93, Event::TenantApproved { tenant: acme() });
    store.outbox.insert(unindexed.id.to_be_bytes(), codec::encode(&unindexed)).unwrap();
    store.outbox_index.insert(outbox::index_key(&item(94, Event::TenantApproved { tenant: acme() })), "acme").unwrap();
    store.put_ticket_request(&TicketRequest::requested(&gone, "help".parse::<TicketReason>().unwrap(), AT)).unwrap();
    let found = store.check().unwrap().findings;
    assert_eq!(
        found,
        vec![
            check::Finding::OrphanNotice { id: 90, account: gone.id.to_string() },
            check::Finding::OutboxIndex { id: 94, missing: false },
            check::Finding::OutboxIndex { id: 93, missing: true },
            check::Finding::OutboxCount { tenant: "acme".into(), counted: 4, waiting: 5 },
            check::Finding::OrphanTicketRequest { account: gone.id.to_string(), tenant: "acme".into() },
        ]
    );
}

/// Every pipeline row the store holds, with its tenant.
fn rows(store: &Store, tenant: Option<&crate::domain::TenantId>) -> Vec<(String, crate::domain::pipeline::Row)> {
    let mut rows = Vec::new();
    store.for_each_pipeline_row(tenant, |t, r| rows.push((t.to_string(), r.clone()))).unwrap();
    rows.sort_by(|a, b| (&a.0, a.1.account).cmp(&(&b.0, b.1.account)));
    rows
}

fn row_of(a: &Account) -> (String, crate::domain::pipeline::Row) {
    (a.tenant.to_string(), crate::domain::pipeline::Row::of(a).unwrap())
}

#[test]
fn the_pipeline_rows_follow_every_change_of_the_claims() {
    let store = Store::temporary().unwrap();
    let (a, b) = (account("123456789012", "acme"), account("123456789012", "other"));
    let c = account("123456789028", "acme"); // 16 on: the same bucket as `a`
    for x in [&a, &b, &c] {
        store.insert_account(x, &by(), &Change::default()).unwrap().unwrap();
    }
    assert_eq!(rows(&store, None), vec![row_of(&a), row_of(&c), row_of(&b)]);
    assert_eq!(rows(&store, Some(&b.tenant)), vec![row_of(&b)], "one tenant's rows only");

    // A change of state moves the row; a closed claim has none; a claim
    // dropped leaves none behind.
    let (claims, _) = store
        .change_claims::<()>(a.id, &by(), |claims| {
            for claim in claims.iter_mut() {
                if claim.tenant == acme() {
                    claim.state = crate::domain::LinkState::Linked;
                    claim.updated_at = AT + time::Duration::hours(1);
                } else {
                    claim.closed_at = Some(AT);
                }
            }
            Ok(vec![])
        })
        .unwrap();
    let linked = claims.iter().find(|x| x.tenant == acme()).unwrap();
    assert_eq!(rows(&store, None), vec![row_of(linked), row_of(&c)]);
    store
        .change_claims::<()>(c.id, &by(), |claims| {
            claims.clear();
            Ok(vec![])
        })
        .unwrap();
    assert_eq!(rows(&store, None), vec![row_of(linked)]);

    // An import's many claims land with their rows, in one bucket write.
    let many: Vec<(Account, Change)> = (0..40)
        .map(|i| {
            let x = account(&format!("{:012}", 300_000_000_000u64 + i), "acme");
            let change = registered(&x, vec![]);
            (x, change)
        })
        .collect();
    store.add_claims::<()>(&by(), &many, |_, _| Ok(())).unwrap();
    assert_eq!(rows(&store, Some(&acme())).len(), 41);
    assert_eq!(store.check().unwrap().findings, vec![]);
}

#[test]
fn pipeline_rows_are_made_again_at_open_and_the_check_finds_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let a = account("123456789012", "acme");
    {
        let store = Store::open(dir.path()).unwrap();
        store.insert_account(&a, &by(), &registered(&a, vec![])).unwrap().unwrap();
        // Rows kept under older rules (or by an orglink that kept none).
        store.pipeline.clear().unwrap();
        store.db.remove(b"pipeline_rows_version").unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(rows(&store, None), vec![row_of(&a)], "made again from the claims");

    // A row that says other than its claim.
    let mut wrong = crate::domain::pipeline::Row::of(&a).unwrap();
    wrong.state = crate::domain::LinkState::Linked;
    let key = pipeline::bucket_key(&a.tenant, a.id);
    store.pipeline.insert(key.clone(), pipeline::encode_bucket(&[wrong])).unwrap();
    assert_eq!(
        store.check().unwrap().findings,
        vec![check::Finding::PipelineRows { tenant: "acme".into(), count: 1, accounts: vec![a.id.to_string()] }]
    );
    // The right row under a count of open claims that is not its own.
    let right = crate::domain::pipeline::Row::of(&a).unwrap();
    assert!(right.open_claim);
    let mut uncounted = pipeline::encode_bucket(&[right]);
    uncounted[..4].copy_from_slice(&0u32.to_be_bytes());
    store.pipeline.insert(key, uncounted).unwrap();
    assert_eq!(
        store.check().unwrap().findings,
        vec![check::Finding::PipelineRows { tenant: "acme".into(), count: 1, accounts: vec![a.id.to_string()] }]
    );
}

#[test]
fn a_tenants_open_claims_are_counted_at_the_head_of_its_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let open_rows = |store: &Store| rows(store, Some(&acme())).iter().filter(|(_, r)| r.open_claim).count();
    let accounts: Vec<Account> = (0..40u64).map(|i| account(&format!("{:012}", 123_456_789_000 + i), "acme")).collect();
    {
        let store = Store::open(dir.path()).unwrap();
        for a in &accounts {
            store.insert_account(a, &by(), &registered(a, vec![])).unwrap().unwrap();
        }
        store.insert_account(&account("123456789012", "other"), &by(), &Change::default()).unwrap().unwrap();
        assert_eq!(store.open_claims(&acme()).unwrap(), 40);
        // A lapsed claim is no longer open; one closed has no row.
        for (i, a) in accounts.iter().take(6).enumerate() {
            store
                .change_claims::<()>(a.id, &by(), |claims| {
                    for claim in claims.iter_mut() {
                        if i % 2 == 0 {
                            claim.state = crate::domain::LinkState::Lapsed;
                        } else {
                            claim.closed_at = Some(AT);
                        }
                    }
                    Ok(vec![])
                })
                .unwrap();
        }
        assert_eq!(store.open_claims(&acme()).unwrap(), 34);
        assert_eq!(store.open_claims(&acme()).unwrap(), open_rows(&store));
        assert_eq!(store.open_claims(&"nobody".parse().unwrap()).unwrap(), 0);
        // Buckets written as rows alone, by an older orglink.
        let buckets: Vec<_> = store.pipeline.iter().map(|e| e.unwrap()).collect();
        for (key, value) in buckets {
            let rows = pipeline::decode_bucket(&key, &value).unwrap();
            store.pipeline.insert(key, codec::encode(&rows)).unwrap();
        }
        store.db.insert(b"pipeline_rows_version", &crate::domain::pipeline::ROWS_VERSION.to_be_bytes()).unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.open_claims(&acme()).unwrap(), 34, "the buckets are made again at open");
    assert_eq!(open_rows(&store), 34);
    assert!(store.check().unwrap().findings.is_empty());
}

#[test]
fn the_outbox_index_says_what_is_due_and_whose_and_is_made_at_open_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (account("123456789012", "acme"), account("210987654321", "other"));
    let ids = |items: Vec<OutboxItem>| items.into_iter().map(|i| i.id).collect::<Vec<_>>();
    {
        let store = Store::open(dir.path()).unwrap();
        for x in [&a, &b, &a] {
            let event = Event::TenantApproved { tenant: x.tenant.clone() };
            store.queue_notice(&x.tenant, &notice(event), AT).unwrap();
        }
        let all = store.outbox().unwrap();
        assert_eq!(ids(store.outbox_due(AT).unwrap()), ids(all.clone()));
        // One fails and waits ten minutes; one is delivered; one dies.
        store.outbox_retry_later(&all[0], AT + time::Duration::minutes(10), "timeout").unwrap();
        store.outbox_delivered(&all[1], &[]).unwrap();
        assert_eq!(ids(store.outbox_due(AT).unwrap()), vec![all[2].id]);
        assert_eq!(ids(store.outbox_due(AT + time::Duration::minutes(10)).unwrap()), vec![all[0].id, all[2].id]);
        store.outbox_dead(&all[2], &[], "no channel", AT, None).unwrap();
        let undelivered = store.undelivered_by_tenant().unwrap();
        assert_eq!(undelivered.pending, [(acme(), 1)].into());
        assert_eq!(undelivered.dead, [(acme(), 1)].into());
        assert_eq!(store.requeue_dead_letters(|_| true).unwrap(), 1);
        assert_eq!(ids(store.outbox_due(AT).unwrap()), vec![all[2].id], "back, due at once");
        assert_eq!(store.check().unwrap().findings, vec![]);
        // A store from before the index, one of whose items is damaged.
        store.outbox_index.clear().unwrap();
        store.outbox_counts.clear().unwrap();
        store.db.remove(OUTBOX_INDEX_KEY).unwrap();
        store.outbox.insert(99u64.to_be_bytes(), b"\xc1 not an item".as_slice()).unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).expect("a damaged item does not keep the store from opening");
    assert_eq!(store.outbox_index.len(), 2, "made again from the items that read");
    assert_eq!(store.undelivered_by_tenant().unwrap().pending, [(acme(), 2)].into());
    let found = store.check().unwrap().findings;
    assert_eq!(found, vec![check::Finding::Unreadable { tree: "outbox", key: hex::encode(99u64.to_be_bytes()) }]);
}

/// A bucket spliced one change at a time holds what a bucket made whole
/// from the same rows holds, its count included, whatever the order.
mod bucket {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::pipeline::Row;
    use pipeline::Bucket;

    fn row(n: u64, open: bool, customer_len: usize) -> Row {
        let mut row = Row::of(&account(&format!("{:012}", 100_000_000_000 + n), "acme")).unwrap();
        row.open_claim = open;
        row.customer = "c".repeat(customer_len);
        row
    }

    proptest! {
        #[test]
        fn splicing_matches_a_bucket_made_whole(
            changes in proptest::collection::vec((0u64..24, proptest::option::of((any::<bool>(), 0usize..300))), 0..60)
        ) {
            let key = b"acme\0\x01";
            let mut bucket = Bucket::empty();
            let mut model = std::collections::BTreeMap::new();
            for (n, change) in changes {
                let row = change.map(|(open, len)| row(n, open, len));
                let account = row.as_ref().map_or_else(|| self::row(n, false, 0).account, |r| r.account);
                bucket.set(account, row.as_ref());
                match row {
                    Some(row) => model.insert(account, row),
                    None => model.remove(&account),
                };
            }
            let rows: Vec<Row> = model.into_values().collect();
            let whole = pipeline::encode_bucket(&rows);
            prop_assert_eq!(bucket.as_bytes(), whole.as_slice());
            prop_assert_eq!(bucket.is_empty(), rows.is_empty());
            prop_assert_eq!(pipeline::decode_bucket(key, bucket.as_bytes()).unwrap(), rows);
            prop_assert_eq!(Bucket::stored(key, bucket.as_bytes()).unwrap(), bucket);
        }

        /// Bytes that are not a bucket are named corrupt, never a panic.
        #[test]
        fn any_bytes_read_as_a_bucket_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let key = b"acme\0\x01";
            let _ = pipeline::decode_bucket(key, &bytes);
            if let Ok(mut bucket) = Bucket::stored(key, &bytes) {
                bucket.set(row(3, true, 1).account, Some(&row(3, true, 1)));
                bucket.set(row(5, false, 1).account, None);
            }
        }
    }

    #[test]
    fn a_bucket_read_for_a_write_has_its_count_made_again_and_out_of_order_rows_are_corrupt() {
        let key = b"acme\0\x01";
        let rows = [row(1, true, 3), row(2, false, 3), row(3, true, 3)];
        let mut bytes = pipeline::encode_bucket(&rows);
        assert_eq!(bytes[..4], 2u32.to_be_bytes());
        bytes[..4].copy_from_slice(&7u32.to_be_bytes());
        let bucket = Bucket::stored(key, &bytes).unwrap();
        assert_eq!(bucket.as_bytes(), pipeline::encode_bucket(&rows).as_slice());

        let backwards = pipeline::encode_bucket(&[rows[0].clone()]);
        let mut swapped = pipeline::encode_bucket(&[rows[1].clone()]);
        swapped.extend_from_slice(&backwards[4..]);
        let err = Bucket::stored(key, &swapped).unwrap_err().to_string();
        assert!(err.contains("rows out of account order"), "{err}");
        assert!(pipeline::decode_bucket(key, &[0, 0]).is_err());
    }
}

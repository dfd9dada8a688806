//! The sled store: transactions, indexes, uniqueness, schema version,
//! persistence across reopening.

use crate::harness;

use orglink::domain::{Event, ExternalId, LinkState, SupportTier, Transition};
use orglink::store::{AuditEntry, InsertConflict, Store, StoreError, UpdateError};

fn entry(account: &orglink::domain::Account, events: Vec<Event>) -> AuditEntry {
    AuditEntry { at: harness::REGISTERED_AT, actor: "test".into(), account: account.id, action: "add".into(), events }
}

fn registered(id: &str, tenant: &str) -> (orglink::domain::Account, AuditEntry) {
    let mut account = harness::sample_account(id, SupportTier::Basic);
    account.tenant = tenant.parse().unwrap();
    account.external_id = ExternalId::generate(&Default::default());
    let e = entry(&account, vec![Event::AccountRegistered { account: account.id }]);
    (account, e)
}

#[test]
fn a_registration_lands_with_its_indexes_audit_and_outbox() {
    let store = Store::temporary().unwrap();
    let (account, e) = registered("123456789012", "acme");
    store.insert_account(&account, &e).unwrap().unwrap();
    assert_eq!(store.account(account.id).unwrap(), Some(account.clone()));
    assert_eq!(store.account_with_external_id(&account.external_id).unwrap(), Some(account.id));
    assert_eq!(store.tenant_accounts(&"acme".parse().unwrap()).unwrap(), vec![account.clone()]);
    assert_eq!(store.audit_log(account.id).unwrap(), vec![e]);
    let outbox = store.outbox().unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].event, Event::AccountRegistered { account: account.id });
    assert!(outbox[0].dedupe_key.starts_with("account_registered:123456789012:"));
}

#[test]
fn an_account_is_registered_once_across_tenants_and_external_ids_are_unique() {
    let store = Store::temporary().unwrap();
    let (account, e) = registered("123456789012", "acme");
    store.insert_account(&account, &e).unwrap().unwrap();
    let before = store.export().unwrap();

    let (mut again, e2) = registered("123456789012", "acme");
    assert_eq!(store.insert_account(&again, &e2).unwrap(), Err(InsertConflict::AccountExists { same_tenant: true }));
    again.tenant = "globex".parse().unwrap();
    assert_eq!(store.insert_account(&again, &e2).unwrap(), Err(InsertConflict::AccountExists { same_tenant: false }));

    let (mut other, e3) = registered("210987654321", "globex");
    other.external_id = account.external_id.clone();
    assert_eq!(store.insert_account(&other, &e3).unwrap(), Err(InsertConflict::ExternalIdTaken));
    assert_eq!(store.export().unwrap(), before, "refused inserts leave nothing behind");
}

#[test]
fn tenant_indexes_do_not_bleed_into_each_other() {
    let store = Store::temporary().unwrap();
    for (id, tenant) in
        [("000000000001", "acme"), ("000000000002", "acme2"), ("000000000003", "acm"), ("000000000004", "acme")]
    {
        let (a, e) = registered(id, tenant);
        store.insert_account(&a, &e).unwrap().unwrap();
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
fn an_update_lands_whole_or_not_at_all() {
    let store = Store::temporary().unwrap();
    let (account, e) = registered("123456789012", "acme");
    store.insert_account(&account, &e).unwrap().unwrap();
    let before = store.export().unwrap();

    // A refused transition changes nothing.
    let result = store.update_account(account.id, "test", "accept", harness::REGISTERED_AT, |a| {
        a.apply(&Transition::InvitationAccepted, harness::REGISTERED_AT)
    });
    assert!(matches!(result, Err(UpdateError::Rejected(_))));
    assert_eq!(store.export().unwrap(), before);

    let missing = store
        .update_account("999999999999".parse().unwrap(), "t", "x", harness::REGISTERED_AT, |_| Ok::<_, ()>(vec![]));
    assert!(matches!(missing, Err(UpdateError::NotFound)));

    // A legal one lands with its audit entry and outbox item.
    let (updated, events) = store
        .update_account(account.id, "ops", "verify", harness::REGISTERED_AT, |a| {
            a.apply(&Transition::RoleVerified, harness::REGISTERED_AT)
        })
        .unwrap();
    assert_eq!(updated.state, LinkState::RoleVerified);
    assert_eq!(events, vec![Event::RoleVerified { account: account.id }]);
    assert_eq!(store.audit_log(account.id).unwrap().len(), 2);
    assert_eq!(store.outbox().unwrap().len(), 2);

    // Taking another account's external ID is refused.
    let (other, e) = registered("210987654321", "acme");
    store.insert_account(&other, &e).unwrap().unwrap();
    let taken = other.external_id.clone();
    let before = store.export().unwrap();
    let result = store.update_account(account.id, "ops", "rotate", harness::REGISTERED_AT, |a| {
        a.rotate_external_id(taken.clone(), harness::REGISTERED_AT)
    });
    assert!(matches!(result, Err(UpdateError::ExternalIdTaken)));
    assert_eq!(store.export().unwrap(), before);
}

#[test]
fn data_survives_reopening_and_the_schema_version_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (account, e) = registered("123456789012", "acme");
    {
        let store = Store::open(dir.path()).unwrap();
        store.insert_account(&account, &e).unwrap().unwrap();
        store.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.account(account.id).unwrap(), Some(account));
    assert_eq!(store.outbox().unwrap().len(), 1);
    drop(store);

    // A store written by another schema version is refused, not misread.
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"schema_version", &99u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(Store::open(dir.path()), Err(StoreError::SchemaMismatch { found: 99, expected: 1 })));

    // So is a directory of sled data that orglink did not write.
    let foreign = tempfile::tempdir().unwrap();
    {
        let db = sled::open(foreign.path()).unwrap();
        db.insert(b"something", b"else").unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(Store::open(foreign.path()), Err(StoreError::UnknownData)));
}

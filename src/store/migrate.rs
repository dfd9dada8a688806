//! Brings a store written by an older orglink up to [`super::SCHEMA_VERSION`]
//! at open, one step per version, each self-contained: it reads what its
//! version wrote, writes what the next one reads, and records that version
//! last, so a crash part-way leaves the older version in place and the next
//! open finishes the step.
//!
//! 1 → 2: version 1 stored JSON; version 2 stores MessagePack (a third of
//! the bytes), keeps each outbox item's audience and tone with it, and
//! indexes when each account is next due for each job. Every value is
//! rewritten, batch by batch (a value that is already version 2 is left as
//! it is). The due index is built by the app on its first job run, from the
//! configuration (`Store::due_plan` is empty after a migration).
//!
//! 2 → 3: tenants have a status (servers wait for the distributor's
//! approval). Every tenant the store knows (with settings or accounts) was
//! already served, so it is recorded as approved, with an entry in its
//! audit log; one recorded already (a step that stopped part-way) is left
//! as it is.
//!
//! 3 → 4: every tenant's claim on an account is kept together under the
//! account's ID: each account becomes its tenant's claim, owned if its role
//! was verified (as its state says), open otherwise; the external ID index
//! names the claim; audit entries name the claim's tenant.
//!
//! Each step writes its version last: a crash part-way leaves the older
//! version, and the next open finishes the step.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::TransactionError;
use time::OffsetDateTime;

use super::accounts::{StoredClaimRef, StoredRef, tenant_prefix};
use super::tenants::tenant_of;
use super::{AuditEntry, DeadLetter, OutboxItem, SCHEMA_KEY, SCHEMA_VERSION, Store, StoreError, TenantAuditEntry};
use super::{DecodeError, codec, show_key};
use crate::domain::{
    Account, AccountId, ChatId, Event, Lang, LinkState, TenantId, TenantSettings, TicketRequest, effects,
};

/// An outbox item as version 1 stored it: the event alone; who hears of it
/// and how it looks were decided at delivery.
#[derive(Deserialize)]
struct OutboxItemV1 {
    id: u64,
    dedupe_key: String,
    tenant: TenantId,
    event: Event,
    #[serde(with = "crate::domain::instant")]
    created_at: OffsetDateTime,
    #[serde(default)]
    attempts: u32,
    #[serde(with = "crate::domain::instant::option", default)]
    next_attempt_at: Option<OffsetDateTime>,
    #[serde(default)]
    last_error: Option<String>,
}

impl OutboxItemV1 {
    /// The item with who hears of it and how, as the domain decides for
    /// its event (version 1 queued only events someone hears of, and each
    /// still is).
    fn upgrade(self) -> Result<OutboxItem, DecodeError> {
        let notice = effects::notice(&self.event)
            .ok_or_else(|| DecodeError::new(format!("nobody hears of a queued {} any more", self.event.code())))?;
        Ok(OutboxItem {
            id: self.id,
            dedupe_key: self.dedupe_key,
            tenant: self.tenant,
            event: self.event,
            audience: notice.audience,
            tone: notice.tone,
            created_at: self.created_at,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
        })
    }
}

#[derive(Deserialize)]
struct DeadLetterV1 {
    item: OutboxItemV1,
    reason: String,
    #[serde(with = "crate::domain::instant")]
    at: OffsetDateTime,
}

/// An account as versions 2 and 3 stored it: one record per account.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredV2 {
    pub account: Account,
    pub due: Vec<(u8, i64)>,
}

pub(super) fn run(store: &Store, from: u32) -> Result<(), StoreError> {
    tracing::info!(from, to = SCHEMA_VERSION, "migrating the store");
    if from < 2 {
        v1_to_v2(store)?;
    }
    if from < 3 {
        v2_to_v3(store, OffsetDateTime::now_utc())?;
    }
    if from < 4 {
        v3_to_v4(store)?;
    }
    debug_assert_eq!(SCHEMA_VERSION, 4, "a new version needs its step here");
    Ok(())
}

/// Records `version` as the store's, once everything before is on disk.
fn finish(store: &Store, version: u32) -> Result<(), StoreError> {
    store.db.flush()?;
    store.db.insert(SCHEMA_KEY, &version.to_be_bytes())?;
    store.db.flush()?;
    Ok(())
}

fn v1_to_v2(store: &Store) -> Result<(), StoreError> {
    rewrite(&store.accounts, "account", |account: Account| Ok(codec::encode(&StoredV2 { account, due: Vec::new() })))?;
    rewrite(&store.audit, "audit entry", |e: AuditEntry| Ok(codec::encode(&e)))?;
    rewrite(&store.outbox, "outbox item", |i: OutboxItemV1| Ok(codec::encode(&i.upgrade()?)))?;
    rewrite(&store.dead_letters, "dead letter", |d: DeadLetterV1| {
        Ok(codec::encode(&DeadLetter { item: d.item.upgrade()?, reason: d.reason, at: d.at }))
    })?;
    rewrite(&store.delivered, "delivery", |at: i64| Ok(codec::encode(&at)))?;
    rewrite(&store.tenants, "tenant", |s: TenantSettings| Ok(codec::encode(&s)))?;
    rewrite(&store.tenant_audit, "tenant audit entry", |e: TenantAuditEntry| Ok(codec::encode(&e)))?;
    rewrite(&store.ticket_requests, "ticket request", |r: TicketRequest| Ok(codec::encode(&r)))?;
    store.due.clear()?;
    store.db.remove(super::accounts::DUE_PLAN_KEY)?;
    finish(store, 2)
}

// What the 2 → 3 step writes, frozen as schema 3 stores it: a later step
// that changes these types reads this, whatever the types have become.

/// A tenant's status.
#[derive(Serialize)]
struct StatusV3 {
    state: &'static str,
    #[serde(with = "crate::domain::instant")]
    since: OffsetDateTime,
}

/// A tenant's settings (read as schema 2 wrote them, kept as they are).
#[derive(Serialize, Deserialize, Default)]
struct SettingsV3 {
    channel: Option<ChatId>,
    language: Option<Lang>,
    account_role: Option<ChatId>,
}

/// The event of an approval.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum EventV3<'a> {
    TenantApproved { tenant: &'a str },
}

/// A tenant audit entry.
#[derive(Serialize)]
struct TenantAuditEntryV3<'a> {
    #[serde(with = "crate::domain::instant")]
    at: OffsetDateTime,
    actor: &'static str,
    tenant: &'a str,
    settings: SettingsV3,
    status: Option<StatusV3>,
    events: Vec<EventV3<'a>>,
}

/// Who the audit log says approved the tenants a migration found.
pub(super) const MIGRATION_ACTOR: &str = "orglink:migration-3";

fn v2_to_v3(store: &Store, at: OffsetDateTime) -> Result<(), StoreError> {
    let mut tenants = BTreeSet::new();
    for key in store.tenants.iter().keys() {
        tenants.insert(tenant_of(&key?)?);
    }
    for key in store.by_tenant.iter().keys() {
        let key = key?;
        // (tenant, NUL, account): tenant IDs never hold NUL.
        let end = key.iter().position(|b| *b == 0).unwrap_or(key.len());
        tenants.insert(tenant_of(&key[..end])?);
    }
    for tenant in tenants {
        let key = tenant.as_str().as_bytes();
        if store.tenant_status.contains_key(key)? {
            continue;
        }
        let approved = StatusV3 { state: "approved", since: at };
        let status = codec::encode(&approved);
        let entry = codec::encode(&TenantAuditEntryV3 {
            at,
            actor: MIGRATION_ACTOR,
            tenant: tenant.as_str(),
            settings: match store.tenants.get(key)? {
                Some(bytes) => super::read("tenant", key, &bytes)?,
                None => SettingsV3::default(),
            },
            status: Some(approved),
            events: vec![EventV3::TenantApproved { tenant: tenant.as_str() }],
        });
        let result: Result<(), TransactionError<()>> =
            (&store.tenant_status, &store.tenant_audit).transaction(|(statuses, audit)| {
                statuses.insert(key, status.as_slice())?;
                let mut audit_key = tenant_prefix(&tenant);
                audit_key.extend_from_slice(&audit.generate_id()?.to_be_bytes());
                audit.insert(audit_key, entry.as_slice())?;
                Ok(())
            });
        super::never_aborts(result)?;
    }
    finish(store, 3)
}

/// 3 → 4: each account becomes its tenant's claim (owned when its role was
/// verified), the external ID index names the claim, and audit entries name
/// the tenant.
fn v3_to_v4(store: &Store) -> Result<(), StoreError> {
    const BATCH: usize = 10_000;
    let mut tenants: std::collections::HashMap<AccountId, TenantId> = std::collections::HashMap::new();
    let (mut accounts, mut external_ids, mut pending) = (sled::Batch::default(), sled::Batch::default(), 0);
    for entry in store.accounts.iter() {
        let (key, value) = entry?;
        let claims: Vec<Account> = match codec::decode::<StoredV2>(&value) {
            Ok(old) => {
                let mut account = old.account;
                if owned_by_state(&account) {
                    account.owned_at =
                        Some(account.role.as_ref().and_then(|r| r.verified_at).unwrap_or(account.updated_at));
                }
                let claims = vec![StoredClaimRef { account: &account, due: &[] }];
                accounts.insert(key.clone(), codec::encode(&StoredRef { claims }));
                pending += 1;
                vec![account]
            }
            // Rewritten by a migration that stopped part-way.
            Err(_) => super::read::<super::accounts::Stored>("account", &key, &value)?
                .claims
                .into_iter()
                .map(|c| c.account)
                .collect(),
        };
        for claim in claims {
            external_ids.insert(claim.external_id.as_str(), super::accounts::claim_key(claim.id, &claim.tenant));
            tenants.insert(claim.id, claim.tenant);
        }
        if pending >= BATCH {
            store.accounts.apply_batch(std::mem::take(&mut accounts))?;
            store.external_ids.apply_batch(std::mem::take(&mut external_ids))?;
            pending = 0;
        }
    }
    store.accounts.apply_batch(accounts)?;
    store.external_ids.apply_batch(external_ids)?;
    let mut audit = sled::Batch::default();
    for entry in store.audit.iter() {
        let (key, value) = entry?;
        let mut e: AuditEntry = super::read("audit entry", &key, &value)?;
        if e.tenant.is_none() {
            e.tenant = tenants.get(&e.account).cloned();
            audit.insert(key, codec::encode(&e));
        }
    }
    store.audit.apply_batch(audit)?;
    // The due index names claims now: the app builds it again.
    store.due.clear()?;
    store.db.remove(super::accounts::DUE_PLAN_KEY)?;
    finish(store, 4)
}

/// Whether a version 3 account had proved control: its role verified, as
/// its state or its role record says.
fn owned_by_state(account: &Account) -> bool {
    use LinkState as S;
    let verified = account.role.as_ref().is_some_and(|r| r.verified_at.is_some());
    match account.state {
        S::RoleVerified | S::Invited | S::Linked => true,
        S::InvitationExpired | S::InvitationDeclined | S::InvitationCanceled => true,
        S::Registered | S::Blocked { .. } | S::Lapsed => verified,
    }
}

/// Re-encodes every JSON value of `tree` with `upgrade`, in batches.
fn rewrite<T: DeserializeOwned>(
    tree: &sled::Tree,
    what: &'static str,
    upgrade: impl Fn(T) -> Result<Vec<u8>, DecodeError>,
) -> Result<(), StoreError> {
    const BATCH: usize = 10_000;
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    for entry in tree.iter() {
        let (key, value) = entry?;
        match codec::legacy_json::<T>(&value) {
            Ok(old) => {
                let new = upgrade(old).map_err(|source| StoreError::Corrupt { what, key: show_key(&key), source })?;
                batch.insert(key, new);
                pending += 1;
            }
            // Rewritten by a migration that stopped part-way.
            Err(_) if value.first().is_some_and(|b| *b != b'{' && *b != b'[') || value.is_empty() => {}
            Err(source) => return Err(StoreError::Corrupt { what, key: show_key(&key), source }),
        }
        if pending == BATCH {
            tree.apply_batch(std::mem::take(&mut batch))?;
            pending = 0;
        }
    }
    tree.apply_batch(batch)?;
    Ok(())
}

//! Brings a store written by an older orglink up to [`super::SCHEMA_VERSION`]
//! at open.
//!
//! Version 1 stored JSON; version 2 stores MessagePack (a third of the
//! bytes), keeps each outbox item's audience and tone with it, and indexes
//! when each account is next due for each job. Version 3 keeps every
//! tenant's claim on an account together under the account's ID: each
//! account becomes its tenant's claim, owned if its role was verified (as
//! its state says), open otherwise; audit entries name the claim's tenant.
//!
//! Each step rewrites every value, batch by batch, and the new version is
//! written last: a crash part-way leaves the old version in place, and the
//! next open finishes the work (a value already rewritten is left as it
//! is). The due index is built by the app on its first job run, from the
//! configuration (`Store::due_plan` is empty after a migration).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::accounts::{StoredClaimRef, StoredRef};
use super::{AuditEntry, DeadLetter, OutboxItem, SCHEMA_KEY, SCHEMA_VERSION, Store, StoreError, TenantAuditEntry};
use super::{DecodeError, codec, show_key};
use crate::domain::{Account, AccountId, Event, LinkState, TenantId, TenantSettings, TicketRequest, effects};

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

/// An account as version 2 stored it: one record per account.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredV2 {
    pub account: Account,
    pub due: Vec<(u8, i64)>,
}

pub(super) fn run(store: &Store, from: u32) -> Result<(), StoreError> {
    tracing::info!(from, to = SCHEMA_VERSION, "migrating the store");
    if from < 2 {
        from_json(store)?;
    }
    if from < 3 {
        to_claims(store)?;
    }
    store.due.clear()?;
    store.db.remove(super::accounts::DUE_PLAN_KEY)?;
    store.db.flush()?;
    store.db.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
    store.db.flush()?;
    Ok(())
}

/// Version 1 → 2: JSON → MessagePack, outbox items with their audience.
fn from_json(store: &Store) -> Result<(), StoreError> {
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
    Ok(())
}

/// Version 2 → 3: each account becomes its tenant's claim (owned when its
/// role was verified), the external ID index names the claim, and audit
/// entries name the tenant.
fn to_claims(store: &Store) -> Result<(), StoreError> {
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
    Ok(())
}

/// Whether a version 2 account had proved control: its role verified, as
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

//! Brings a store written by an older orglink up to [`super::SCHEMA_VERSION`]
//! at open.
//!
//! Version 1 stored JSON; version 2 stores MessagePack (a third of the
//! bytes), keeps each outbox item's audience and tone with it, and indexes
//! when each account is next due for each job. The migration rewrites every
//! value, batch by batch, and writes the new version last: a crash part-way
//! leaves version 1 in place, and the next open finishes the work (a value
//! that is already version 2 is left as it is). The due index is built by
//! the app on its first job run, from the configuration (`Store::due_plan`
//! is empty after a migration).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::accounts::StoredRef;
use super::{AuditEntry, DeadLetter, OutboxItem, SCHEMA_KEY, SCHEMA_VERSION, Store, StoreError, TenantAuditEntry};
use super::{DecodeError, codec, show_key};
use crate::domain::{Account, Event, TenantId, TenantSettings, TicketRequest, effects};

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

pub(super) fn run(store: &Store, from: u32) -> Result<(), StoreError> {
    tracing::info!(from, to = SCHEMA_VERSION, "migrating the store");
    debug_assert_eq!(from, 1, "version 1 is the only older one");
    rewrite(&store.accounts, "account", |account: Account| {
        Ok(codec::encode(&StoredRef { account: &account, due: &[] }))
    })?;
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
    store.db.flush()?;
    store.db.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
    store.db.flush()?;
    Ok(())
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

//! Notifications waiting to be delivered, the deliveries of their parts,
//! and the dead letters that could not be delivered.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{TransactionError, TransactionalTree, UnabortableTransactionError};
use time::OffsetDateTime;

use super::{AuditEntry, OUTBOX_INDEX_KEY, Store, StoreError, TenantAuditEntry, codec, never_aborts, read};
use crate::domain::{Account, Audience, Event, Notice, TenantId, Tone};

/// A notice waiting to be delivered to its audience's channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: u64,
    /// Delivery happens at most once per key: `o` and the item's ID (the
    /// ID is never reused); items queued by schema 1 keep theirs.
    pub dedupe_key: String,
    pub tenant: TenantId,
    pub event: Event,
    pub audience: Audience,
    pub tone: Tone,
    #[serde(with = "crate::domain::instant")]
    pub created_at: OffsetDateTime,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// Not to be tried before this instant (after a failure).
    #[serde(with = "crate::domain::instant::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

impl OutboxItem {
    /// `notice` about `account`, as item `id` of the outbox.
    pub fn new(id: u64, account: &Account, notice: Notice, at: OffsetDateTime) -> Self {
        Self::for_tenant(id, format!("o{id}"), account.tenant.clone(), notice, at)
    }

    pub(super) fn for_tenant(
        id: u64,
        dedupe_key: String,
        tenant: TenantId,
        notice: Notice,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            dedupe_key,
            tenant,
            event: notice.event,
            audience: notice.audience,
            tone: notice.tone,
            created_at: at,
            attempts: 0,
            next_attempt_at: None,
            last_error: None,
        }
    }

    pub fn notice(&self) -> Notice {
        Notice { event: self.event.clone(), audience: self.audience, tone: self.tone }
    }
}

/// An outbox item that could not be delivered, kept for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub item: OutboxItem,
    pub reason: String,
    #[serde(with = "crate::domain::instant")]
    pub at: OffsetDateTime,
}

/// Where a dropped item is recorded: its account's audit log, or, for a
/// tenant's own notice, its tenant's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropRecord {
    Account(AuditEntry),
    Tenant(TenantAuditEntry),
}

/// The outbox in a transaction: its items (ID → item), their index (when
/// each is next due, ID → its tenant) and each tenant's count, written
/// together only here, so the notifier reads only what is due and the
/// pipeline reads a count per tenant.
#[derive(Clone, Copy)]
pub(super) struct OutboxTx<'a> {
    pub items: &'a TransactionalTree,
    pub index: &'a TransactionalTree,
    /// Tenant → how many of its items wait (the pipeline reads a count a
    /// tenant, not an entry an item).
    pub counts: &'a TransactionalTree,
}

type TxResult<T> = Result<T, UnabortableTransactionError>;

/// An item's key in the outbox index: when it is next due (Unix seconds; one
/// never tried sorts first), then its ID.
pub(super) fn index_key(item: &OutboxItem) -> [u8; 16] {
    let at = item.next_attempt_at.map_or(i64::MIN, |at| at.unix_timestamp());
    let mut key = [0; 16];
    key[..8].copy_from_slice(&super::accounts::sortable(at));
    key[8..].copy_from_slice(&item.id.to_be_bytes());
    key
}

/// A stored count (a damaged one counts as none).
pub(super) fn count_of(bytes: &[u8]) -> u64 {
    bytes.try_into().map_or(0, u64::from_be_bytes)
}

/// The ID in an outbox index key.
pub(super) fn id_of(index_key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(index_key.get(8..16)?.try_into().ok()?))
}

impl OutboxTx<'_> {
    /// Queues a new item, made by `make` from its ID; returns the ID.
    pub fn queue(&self, make: impl FnOnce(u64) -> OutboxItem) -> TxResult<u64> {
        let item = make(self.items.generate_id()?);
        self.put(&item)?;
        Ok(item.id)
    }

    /// Writes `item` (new, or put back from the dead letters).
    pub fn put(&self, item: &OutboxItem) -> TxResult<()> {
        self.items.insert(&item.id.to_be_bytes(), codec::encode(item))?;
        self.index.insert(&index_key(item), item.tenant.as_str().as_bytes())?;
        self.count(&item.tenant, 1)
    }

    /// Adds `by` to `tenant`'s count of waiting items (none left: no entry).
    fn count(&self, tenant: &TenantId, by: i64) -> TxResult<()> {
        let key = tenant.as_str().as_bytes();
        let now = self.counts.get(key)?.as_deref().map_or(0, count_of).saturating_add_signed(by);
        match now {
            0 => self.counts.remove(key)?,
            n => self.counts.insert(key, &n.to_be_bytes())?,
        };
        Ok(())
    }

    /// Removes the item `known` names, if it is still there (operations
    /// may have dropped it), with its index entry; whether it was.
    pub fn take(&self, known: &OutboxItem) -> TxResult<bool> {
        let Some(stored) = self.items.remove(&known.id.to_be_bytes())? else { return Ok(false) };
        // The item as stored (as `known` has it when the stored one does not
        // decode) names its index entry and tenant.
        let stored = codec::decode::<OutboxItem>(&stored);
        let stored = stored.as_ref().unwrap_or(known);
        self.index.remove(&index_key(stored))?;
        self.count(&stored.tenant, -1)?;
        Ok(true)
    }

    /// Replaces the stored item with `item`, if it is still there.
    pub fn replace(&self, item: &OutboxItem) -> TxResult<()> {
        if self.take(item)? {
            self.put(item)?;
        }
        Ok(())
    }
}

impl Store {
    /// Makes the outbox index and counts from the items when they were never made
    /// (a store older than it): at open, before anyone writes.
    pub(super) fn ensure_outbox_index(&self) -> Result<(), StoreError> {
        if self.db.get(OUTBOX_INDEX_KEY)?.is_some() {
            return Ok(());
        }
        let _quiet = self.quiet();
        self.outbox_index.clear()?;
        self.outbox_counts.clear()?;
        let mut batch = sled::Batch::default();
        let mut counts: std::collections::BTreeMap<TenantId, u64> = std::collections::BTreeMap::new();
        for entry in self.outbox.iter() {
            let (k, v) = entry?;
            // One that does not decode is left out (and logged): the store
            // still opens, and `check` names it.
            let item: OutboxItem = match read("outbox item", &k, &v) {
                Ok(item) => item,
                Err(e) => {
                    tracing::warn!(error = %e, "an outbox item left out of its index: orglink check names it");
                    continue;
                }
            };
            batch.insert(&index_key(&item), item.tenant.as_str().as_bytes());
            *counts.entry(item.tenant).or_default() += 1;
        }
        self.outbox_index.apply_batch(batch)?;
        let mut batch = sled::Batch::default();
        for (tenant, n) in counts {
            batch.insert(tenant.as_str().as_bytes(), &n.to_be_bytes());
        }
        self.outbox_counts.apply_batch(batch)?;
        self.db.insert(OUTBOX_INDEX_KEY, &[])?;
        self.durable(Ok(()))
    }

    /// The outbox's items and index in one transaction.
    pub(super) fn outbox_tx<T>(&self, f: impl Fn(OutboxTx<'_>) -> TxResult<T>) -> Result<T, StoreError> {
        let result: Result<T, TransactionError<()>> = (&self.outbox, &self.outbox_index, &self.outbox_counts)
            .transaction(|(items, index, counts)| Ok(f(OutboxTx { items, index, counts })?));
        never_aborts(result)
    }

    /// Outbox items not yet delivered, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.outbox
            .iter()
            .map(|e| {
                let (k, v) = e?;
                read("outbox item", &k, &v)
            })
            .collect()
    }

    /// How many items wait in the outbox, and when the oldest was queued:
    /// one decode, whatever the outbox holds (IDs only grow, so the first
    /// key is the oldest item).
    pub fn outbox_summary(&self) -> Result<(usize, Option<OffsetDateTime>), StoreError> {
        let oldest = match self.outbox.first()? {
            Some((k, v)) => Some(read::<OutboxItem>("outbox item", &k, &v)?.created_at),
            None => None,
        };
        Ok((self.outbox.len(), oldest))
    }

    /// Outbox items due at `now`, in ID order (the oldest first): only
    /// those the index says are due are read.
    pub fn outbox_due(&self, now: OffsetDateTime) -> Result<Vec<OutboxItem>, StoreError> {
        let mut last = [0xff; 16];
        last[..8].copy_from_slice(&super::accounts::sortable(now.unix_timestamp()));
        let mut due = Vec::new();
        for key in self.outbox_index.range(..=last).keys() {
            let key = key?;
            let Some(id) = id_of(&key) else { continue };
            // Gone meanwhile (delivered, dropped): the index moved with it.
            let Some(value) = self.outbox.get(id.to_be_bytes())? else { continue };
            let item: OutboxItem = read("outbox item", &id.to_be_bytes(), &value)?;
            if item.next_attempt_at.is_none_or(|at| at <= now) {
                due.push(item);
            }
        }
        due.sort_by_key(|i| i.id);
        Ok(due)
    }

    /// Whether the delivery under `key` went out already.
    pub fn was_delivered(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.delivered.contains_key(key)?)
    }

    /// Marks an outbox item delivered: it leaves the outbox, and the keys
    /// of its partial deliveries (`keys`), needed only while it was
    /// pending, go with it, in one transaction. Nothing grows per message.
    pub fn outbox_delivered(&self, item: &OutboxItem, keys: &[String]) -> Result<(), StoreError> {
        let _writing = self.writing();
        let result: Result<(), TransactionError<()>> =
            (&self.outbox, &self.outbox_index, &self.outbox_counts, &self.delivered).transaction(
                |(items, index, counts, delivered)| {
                    OutboxTx { items, index, counts }.take(item)?;
                    for key in keys {
                        delivered.remove(key.as_bytes())?;
                    }
                    Ok(())
                },
            );
        self.durable(never_aborts(result))
    }

    /// Remembers that the delivery under `key` went out.
    pub fn mark_delivered(&self, key: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        let _writing = self.writing();
        let at = codec::encode(&at.unix_timestamp());
        self.durable(self.delivered.insert(key.as_bytes(), at).map_err(Into::into))?;
        Ok(())
    }

    /// Records a failed attempt; the item stays for a later try.
    pub fn outbox_retry_later(
        &self,
        item: &OutboxItem,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), StoreError> {
        let _writing = self.writing();
        let mut item = item.clone();
        item.attempts += 1;
        item.next_attempt_at = Some(next_attempt_at);
        item.last_error = Some(error.to_owned());
        // Only while it is there: an item operations dropped meanwhile
        // stays dropped.
        self.durable(self.outbox_tx(|outbox| outbox.replace(&item)))
    }

    /// Moves an undeliverable item out of the outbox, with why, and queues
    /// `notice` (for operators) in the same transaction.
    pub fn outbox_dead(
        &self,
        item: &OutboxItem,
        keys: &[String],
        reason: &str,
        at: OffsetDateTime,
        notice: Option<Notice>,
    ) -> Result<(), StoreError> {
        let _writing = self.writing();
        let dead = codec::encode(&DeadLetter { item: item.clone(), reason: reason.to_owned(), at });
        let trees = (&self.outbox, &self.outbox_index, &self.outbox_counts, &self.dead_letters, &self.delivered);
        let result: Result<(), TransactionError<()>> =
            trees.transaction(|(items, index, counts, dead_letters, delivered)| {
                let outbox = OutboxTx { items, index, counts };
                for key in keys {
                    delivered.remove(key.as_bytes())?;
                }
                // Dropped meanwhile by operations: it stays dropped.
                if !outbox.take(item)? {
                    return Ok(());
                }
                dead_letters.insert(&item.id.to_be_bytes(), dead.as_slice())?;
                if let Some(notice) = &notice {
                    let dedupe_key = format!("{}:{}", notice.event.code(), item.dedupe_key);
                    outbox.queue(|id| {
                        OutboxItem::for_tenant(id, dedupe_key.clone(), item.tenant.clone(), notice.clone(), at)
                    })?;
                }
                Ok(())
            });
        self.durable(never_aborts(result))
    }

    /// Puts the dead letters `which` picks back in the outbox, as new;
    /// returns how many.
    pub fn requeue_dead_letters(&self, which: impl Fn(&DeadLetter) -> bool) -> Result<usize, StoreError> {
        let _writing = self.writing();
        let waiting: Vec<DeadLetter> = self.dead_letters()?.into_iter().filter(|d| which(d)).collect();
        if waiting.is_empty() {
            return Ok(0);
        }
        let result: Result<usize, TransactionError<()>> = (
            &self.outbox,
            &self.outbox_index,
            &self.outbox_counts,
            &self.dead_letters,
        )
            .transaction(|(items, index, counts, dead_letters)| {
                let mut moved = 0;
                for dead in &waiting {
                    if dead_letters.remove(&dead.item.id.to_be_bytes())?.is_some() {
                        let item =
                            OutboxItem { attempts: 0, next_attempt_at: None, last_error: None, ..dead.item.clone() };
                        OutboxTx { items, index, counts }.put(&item)?;
                        moved += 1;
                    }
                }
                Ok(moved)
            });
        self.durable(never_aborts(result))
    }

    /// Queues `notice`, about `tenant` and no account (a notice that
    /// stands alone, such as operations' daily digest).
    pub fn queue_notice(&self, tenant: &TenantId, notice: &Notice, at: OffsetDateTime) -> Result<u64, StoreError> {
        let _writing = self.writing();
        let queued = self.outbox_tx(|outbox| {
            outbox.queue(|id| OutboxItem::for_tenant(id, format!("o{id}"), tenant.clone(), notice.clone(), at))
        });
        self.durable(queued)
    }

    /// How many items wait to be delivered, and how many could not be,
    /// per tenant (the pipeline): the outbox's counts, and each dead
    /// letter's tenant alone.
    pub fn undelivered_by_tenant(&self) -> Result<Undelivered, StoreError> {
        let mut undelivered = Undelivered::default();
        for entry in self.outbox_counts.iter() {
            let (k, v) = entry?;
            let tenant: TenantId =
                std::str::from_utf8(&k).ok().and_then(|t| t.parse().ok()).ok_or_else(|| StoreError::Corrupt {
                    what: "outbox count",
                    key: super::show_key(&k),
                    source: codec::DecodeError::new("the key does not name a tenant"),
                })?;
            undelivered.pending.insert(tenant, count_of(&v) as usize);
        }
        for entry in self.dead_letters.iter() {
            let (k, v) = entry?;
            let DeadTenantOf(TenantOf(tenant)) = read("dead letter", &k, &v)?;
            *undelivered.dead.entry(tenant).or_default() += 1;
        }
        Ok(undelivered)
    }

    /// How many items could not be delivered (none decoded).
    pub fn dead_letter_count(&self) -> usize {
        self.dead_letters.len()
    }

    /// Items that could not be delivered, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.dead_letters
            .iter()
            .map(|e| {
                let (k, v) = e?;
                read("dead letter", &k, &v)
            })
            .collect()
    }

    /// Removes `item` from the outbox (`dead` false) or from the dead
    /// letters, with its partial-delivery keys, and writes `record`, in one
    /// transaction; `false` (nothing written) when it is not there any more.
    pub fn drop_outbox_item(&self, item: &OutboxItem, dead: bool, record: &DropRecord) -> Result<bool, StoreError> {
        let _writing = self.writing();
        let prefix = format!("{}#", item.dedupe_key);
        let keys: Vec<sled::IVec> = self.delivered.scan_prefix(prefix.as_bytes()).keys().collect::<Result<_, _>>()?;
        let id = item.id.to_be_bytes();
        let result: Result<bool, TransactionError<()>> = (
            &self.outbox,
            &self.outbox_index,
            &self.outbox_counts,
            &self.dead_letters,
            &self.delivered,
            &self.audit,
            &self.tenant_audit,
        )
            .transaction(|(items, index, counts, dead_letters, delivered, audit, tenant_audit)| {
                let removed = match dead {
                    true => dead_letters.remove(&id)?.is_some(),
                    false => OutboxTx { items, index, counts }.take(item)?,
                };
                if !removed {
                    return Ok(false);
                }
                for key in &keys {
                    delivered.remove(key)?;
                }
                match record {
                    DropRecord::Account(entry) => {
                        let seq = audit.generate_id()?;
                        audit.insert(super::audit::key(entry.account, seq), codec::encode(entry))?;
                    }
                    DropRecord::Tenant(entry) => {
                        let seq = tenant_audit.generate_id()?;
                        let mut key = super::accounts::tenant_prefix(&entry.tenant);
                        key.extend_from_slice(&seq.to_be_bytes());
                        tenant_audit.insert(key, codec::encode(entry))?;
                    }
                }
                Ok(true)
            });
        self.durable(never_aborts(result))
    }
}

/// Notifications not delivered, per tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Undelivered {
    pub pending: std::collections::BTreeMap<TenantId, usize>,
    pub dead: std::collections::BTreeMap<TenantId, usize>,
}

/// The tenant of a stored `OutboxItem` (its third field), the rest
/// skipped unread.
struct TenantOf(TenantId);

impl<'de> Deserialize<'de> for TenantOf {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = TenantOf;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an outbox item")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<TenantOf, A::Error> {
                let missing = || serde::de::Error::custom("an outbox item without its tenant");
                seq.next_element::<serde::de::IgnoredAny>()?.ok_or_else(missing)?;
                seq.next_element::<serde::de::IgnoredAny>()?.ok_or_else(missing)?;
                let tenant = seq.next_element::<TenantId>()?.ok_or_else(missing)?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(TenantOf(tenant))
            }
        }
        deserializer.deserialize_seq(Visit)
    }
}

/// The tenant of a stored `DeadLetter`'s item.
struct DeadTenantOf(TenantOf);

impl<'de> Deserialize<'de> for DeadTenantOf {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = DeadTenantOf;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a dead letter")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<DeadTenantOf, A::Error> {
                let item = seq
                    .next_element::<TenantOf>()?
                    .ok_or_else(|| serde::de::Error::custom("a dead letter without its item"))?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(DeadTenantOf(item))
            }
        }
        deserializer.deserialize_seq(Visit)
    }
}

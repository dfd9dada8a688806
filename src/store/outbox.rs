//! Notifications waiting to be delivered, the deliveries of their parts,
//! and the dead letters that could not be delivered.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::TransactionError;
use time::OffsetDateTime;

use super::{AuditEntry, Store, StoreError, TenantAuditEntry, codec, never_aborts, read};
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

impl Store {
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

    /// Outbox items due at `now`, oldest first.
    pub fn outbox_due(&self, now: OffsetDateTime) -> Result<Vec<OutboxItem>, StoreError> {
        Ok(self.outbox()?.into_iter().filter(|i| i.next_attempt_at.is_none_or(|at| at <= now)).collect())
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
            (&self.outbox, &self.delivered).transaction(|(outbox, delivered)| {
                outbox.remove(&item.id.to_be_bytes())?;
                for key in keys {
                    delivered.remove(key.as_bytes())?;
                }
                Ok(())
            });
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
        let encoded = codec::encode(&item);
        // Only while it is there: an item operations dropped meanwhile
        // stays dropped.
        let result: Result<(), TransactionError<()>> = self.outbox.transaction(|outbox| {
            if outbox.get(item.id.to_be_bytes())?.is_some() {
                outbox.insert(&item.id.to_be_bytes(), encoded.as_slice())?;
            }
            Ok(())
        });
        self.durable(never_aborts(result))
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
        let result: Result<(), TransactionError<()>> =
            (&self.outbox, &self.dead_letters, &self.delivered).transaction(|(outbox, dead_letters, delivered)| {
                for key in keys {
                    delivered.remove(key.as_bytes())?;
                }
                // Dropped meanwhile by operations: it stays dropped.
                if outbox.remove(&item.id.to_be_bytes())?.is_none() {
                    return Ok(());
                }
                dead_letters.insert(&item.id.to_be_bytes(), dead.as_slice())?;
                if let Some(notice) = &notice {
                    let id = outbox.generate_id()?;
                    let dedupe_key = format!("{}:{}", notice.event.code(), item.dedupe_key);
                    let notice = OutboxItem::for_tenant(id, dedupe_key, item.tenant.clone(), notice.clone(), at);
                    outbox.insert(&id.to_be_bytes(), codec::encode(&notice))?;
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
        let result: Result<usize, TransactionError<()>> =
            (&self.outbox, &self.dead_letters).transaction(|(outbox, dead_letters)| {
                let mut moved = 0;
                for dead in &waiting {
                    let id = dead.item.id.to_be_bytes();
                    if dead_letters.remove(&id)?.is_some() {
                        let item =
                            OutboxItem { attempts: 0, next_attempt_at: None, last_error: None, ..dead.item.clone() };
                        outbox.insert(&id, codec::encode(&item))?;
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
        let result: Result<u64, TransactionError<()>> = self.outbox.transaction(|outbox| {
            let id = outbox.generate_id()?;
            let item = OutboxItem::for_tenant(id, format!("o{id}"), tenant.clone(), notice.clone(), at);
            outbox.insert(&id.to_be_bytes(), codec::encode(&item))?;
            Ok(id)
        });
        self.durable(never_aborts(result))
    }

    /// How many items wait to be delivered, and how many could not be,
    /// per tenant: only each record's tenant is read (the pipeline).
    pub fn undelivered_by_tenant(&self) -> Result<Undelivered, StoreError> {
        let mut undelivered = Undelivered::default();
        for entry in self.outbox.iter() {
            let (k, v) = entry?;
            let TenantOf(tenant) = read("outbox item", &k, &v)?;
            *undelivered.pending.entry(tenant).or_default() += 1;
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
        let result: Result<bool, TransactionError<()>> =
            (&self.outbox, &self.dead_letters, &self.delivered, &self.audit, &self.tenant_audit).transaction(
                |(outbox, dead_letters, delivered, audit, tenant_audit)| {
                    let from = if dead { dead_letters } else { outbox };
                    if from.remove(&id)?.is_none() {
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
                },
            );
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

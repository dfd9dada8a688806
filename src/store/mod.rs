//! The sled store: accounts, the per-tenant index, external IDs, the audit
//! log and the outbox, changed together in transactions.
//!
//! A change to an account and the events it causes land in one transaction:
//! the audit entry always, and an outbox item for each event someone must
//! hear of (the transactional outbox), so nothing is lost between a state
//! change and its notification.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};
use time::OffsetDateTime;

use crate::domain::{
    Account, AccountId, Event, ExternalId, HandshakeState, LinkState, TenantId, TenantSettings, TicketRecord,
    TicketRequest,
};

/// Why a notification died when its tenant had no channel yet: setting one
/// brings it back.
pub const NO_CHANNEL: &str = "no_channel";

/// Bumped whenever the stored encoding changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;
const SCHEMA_KEY: &[u8] = b"schema_version";
/// sled's page cache: enough for the hot accounts, bounded memory.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// How long opening waits for another process to release the store.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot prepare the data directory {path}: {source}")]
    Directory { path: PathBuf, source: std::io::Error },
    #[error("the store failed: {0}")]
    Sled(#[from] sled::Error),
    #[error("another orglink process is using the data directory {path}: stop it, or point this one elsewhere")]
    Locked { path: PathBuf },
    #[error(
        "the data directory holds schema version {found}, this orglink reads version {expected}: \
         use the orglink release that wrote it, or restore a backup"
    )]
    SchemaMismatch { found: u32, expected: u32 },
    #[error("the data directory holds data without a schema version: is it an orglink data directory?")]
    UnknownData,
    #[error("a stored {what} could not be read: {source}")]
    Corrupt { what: &'static str, source: serde_json::Error },
}

/// One stored key and value, with the name of its tree.
pub type Record = (Vec<u8>, Vec<u8>, Vec<u8>);

/// Who changed what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub account: AccountId,
    pub action: String,
    pub events: Vec<Event>,
}

/// An event waiting to be delivered to a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: u64,
    /// Delivery happens at most once per key.
    pub dedupe_key: String,
    pub tenant: TenantId,
    pub event: Event,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Failed delivery attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not to be tried before this instant (after a failure).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub last_error: Option<String>,
}

/// An outbox item that could not be delivered, kept for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub item: OutboxItem,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A change of a tenant's settings, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantAuditEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub tenant: TenantId,
    pub settings: TenantSettings,
}

/// Why a registration did not land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertConflict {
    /// The account is registered already, by the same tenant or not.
    AccountExists { same_tenant: bool },
    /// Another account holds this external ID (draw a new one).
    ExternalIdTaken,
}

/// Why an update did not land.
#[derive(Debug)]
pub enum UpdateError<E> {
    NotFound,
    /// The change itself refused (an illegal transition, say).
    Rejected(E),
    /// A new external ID is held by another account.
    ExternalIdTaken,
    Store(StoreError),
}

impl<E> From<StoreError> for UpdateError<E> {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    accounts: Tree,
    by_tenant: Tree,
    external_ids: Tree,
    audit: Tree,
    outbox: Tree,
    delivered: Tree,
    dead_letters: Tree,
    tenants: Tree,
    tenant_audit: Tree,
    ticket_requests: Tree,
}

/// Aborts a transaction with `e`.
fn abort<T, E>(e: E) -> Result<T, ConflictableTransactionError<E>> {
    Err(ConflictableTransactionError::Abort(e))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("stored types serialise to JSON")
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt { what, source })
}

fn tenant_key(tenant: &TenantId, account: AccountId) -> Vec<u8> {
    let mut key = tenant_prefix(tenant);
    key.extend_from_slice(account.as_bytes());
    key
}

fn tenant_prefix(tenant: &TenantId) -> Vec<u8> {
    let mut key = Vec::with_capacity(tenant.as_str().len() + 13);
    key.extend_from_slice(tenant.as_str().as_bytes());
    key.push(0); // tenant IDs never hold NUL
    key
}

fn audit_key(account: AccountId, seq: u64) -> Vec<u8> {
    let mut key = account.as_bytes().to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Whether an account change gets an audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audit {
    Always,
    /// Only when it caused events.
    WhenEvents,
}

/// Who changes an account, why and when, for its audit entry.
#[derive(Debug, Clone, Copy)]
struct By<'a> {
    actor: &'a str,
    action: &'a str,
    at: OffsetDateTime,
    audit: Audit,
}

/// The trees one account change touches.
struct Tx<'a> {
    accounts: &'a TransactionalTree,
    by_tenant: &'a TransactionalTree,
    external_ids: &'a TransactionalTree,
    audit: &'a TransactionalTree,
    outbox: &'a TransactionalTree,
    ticket_requests: &'a TransactionalTree,
}

impl Tx<'_> {
    /// Writes the audit entry and the outbox items of a change.
    fn record(&self, account: &Account, entry: &AuditEntry) -> Result<(), ConflictableTransactionError<()>> {
        // Tickets the events call for, requested in the same transaction;
        // one per key, and none once opened.
        for event in &entry.events {
            let request = match event {
                Event::InvitationExpired { .. } => TicketRequest::invitation_expired(account, entry.at),
                Event::TicketRequested { reason, .. } => {
                    reason.parse().ok().map(|reason| TicketRequest::requested(account, reason, entry.at))
                }
                Event::InvitationSent { .. } => TicketRequest::invitation_resent(account, entry.at),
                _ => None,
            };
            if let Some(request) = request
                && !account.tickets.iter().any(|t| t.key == request.key)
                && self.ticket_requests.get(request.key.as_bytes())?.is_none()
            {
                self.ticket_requests.insert(request.key.as_bytes(), encode(&request))?;
            }
        }
        let seq = self.audit.generate_id()?;
        self.audit.insert(audit_key(account.id, seq), encode(entry))?;
        for event in entry.events.iter().filter(|e| e.notifies()) {
            let id = self.outbox.generate_id()?;
            let item = OutboxItem {
                id,
                dedupe_key: format!("{}:{}:{}", event.code(), account.id, seq),
                tenant: account.tenant.clone(),
                event: event.clone(),
                created_at: entry.at,
                attempts: 0,
                next_attempt_at: None,
                last_error: None,
            };
            self.outbox.insert(&id.to_be_bytes(), encode(&item))?;
        }
        Ok(())
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, which is made owner-only.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        prepare_dir(dir).map_err(|source| StoreError::Directory { path: dir.to_owned(), source })?;
        // sled holds an exclusive lock on the directory. A process that has
        // just closed the store releases it a moment later: wait a little.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).open() {
                Ok(db) => {
                    let store = Self::from_db(db)?;
                    owner_only(dir).map_err(|source| StoreError::Directory { path: dir.to_owned(), source })?;
                    return Ok(store);
                }
                Err(sled::Error::Io(e)) if is_lock_conflict(&e) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(StoreError::Locked { path: dir.to_owned() });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A store that lives in a temporary location and vanishes when dropped.
    pub fn temporary() -> Result<Self, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        match db.get(SCHEMA_KEY)? {
            Some(v) => {
                let found = v.as_ref().try_into().map(u32::from_be_bytes).unwrap_or(0);
                if found != SCHEMA_VERSION {
                    return Err(StoreError::SchemaMismatch { found, expected: SCHEMA_VERSION });
                }
            }
            None if db.tree_names().len() > 1 || !db.is_empty() => return Err(StoreError::UnknownData),
            None => {
                db.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
            }
        }
        Ok(Self {
            accounts: db.open_tree("accounts")?,
            by_tenant: db.open_tree("accounts_by_tenant")?,
            external_ids: db.open_tree("external_ids")?,
            audit: db.open_tree("audit")?,
            outbox: db.open_tree("outbox")?,
            delivered: db.open_tree("delivered")?,
            dead_letters: db.open_tree("dead_letters")?,
            tenants: db.open_tree("tenants")?,
            tenant_audit: db.open_tree("tenant_audit")?,
            ticket_requests: db.open_tree("ticket_requests")?,
            db,
        })
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Bytes the store takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    pub fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        self.accounts.get(id.as_bytes())?.map(|v| decode("account", &v)).transpose()
    }

    /// The account that holds `external_id`, if any.
    pub fn account_with_external_id(&self, external_id: &ExternalId) -> Result<Option<AccountId>, StoreError> {
        Ok(self.external_ids.get(external_id.as_str())?.and_then(|v| AccountId::from_bytes(&v)))
    }

    /// A tenant's accounts, in account ID order.
    pub fn tenant_accounts(&self, tenant: &TenantId) -> Result<Vec<Account>, StoreError> {
        let mut accounts = Vec::new();
        for entry in self.by_tenant.scan_prefix(tenant_prefix(tenant)).keys() {
            let key = entry?;
            let id = AccountId::from_bytes(&key[key.len() - 12..]).expect("index keys end in an account ID");
            if let Some(account) = self.account(id)? {
                accounts.push(account);
            }
        }
        Ok(accounts)
    }

    /// Every account, in account ID order.
    pub fn all_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.accounts.iter().values().map(|v| decode("account", &v?)).collect()
    }

    /// Every account's link state and latest handshake state, read without
    /// decoding the rest of the record (for metrics).
    pub fn account_states(&self) -> Result<Vec<(LinkState, Option<HandshakeState>)>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Handshake {
            state: HandshakeState,
        }
        #[derive(serde::Deserialize)]
        struct States {
            state: LinkState,
            #[serde(default)]
            invitation: Option<Handshake>,
        }
        self.accounts
            .iter()
            .values()
            .map(|v| {
                let s: States = decode("account", &v?)?;
                Ok((s.state, s.invitation.map(|i| i.state)))
            })
            .collect()
    }

    /// An account's audit log, oldest first.
    pub fn audit_log(&self, id: AccountId) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit.scan_prefix(id.as_bytes()).values().map(|v| decode("audit entry", &v?)).collect()
    }

    /// Outbox items not yet delivered, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.outbox.iter().values().map(|v| decode("outbox item", &v?)).collect()
    }

    /// Outbox items due at `now`, oldest first.
    pub fn outbox_due(&self, now: OffsetDateTime) -> Result<Vec<OutboxItem>, StoreError> {
        Ok(self.outbox()?.into_iter().filter(|i| i.next_attempt_at.is_none_or(|at| at <= now)).collect())
    }

    /// Whether the notification with `dedupe_key` went out already.
    pub fn was_delivered(&self, dedupe_key: &str) -> Result<bool, StoreError> {
        Ok(self.delivered.contains_key(dedupe_key)?)
    }

    /// Marks an outbox item delivered: it leaves the outbox, and the keys
    /// of its partial deliveries (`keys`), needed only while it was
    /// pending, go with it, in one transaction. Nothing grows per message.
    pub fn outbox_delivered(&self, item: &OutboxItem, keys: &[String]) -> Result<(), StoreError> {
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
        self.durable(self.delivered.insert(key.as_bytes(), encode(&at.unix_timestamp())).map_err(Into::into))?;
        Ok(())
    }

    /// Whether the store can be written now.
    pub fn health_check(&self) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp().to_be_bytes();
        self.durable(self.db.insert(b"health_check", &now).map_err(Into::into))?;
        Ok(())
    }

    /// Records a failed attempt; the item stays for a later try.
    pub fn outbox_retry_later(
        &self,
        item: &OutboxItem,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut item = item.clone();
        item.attempts += 1;
        item.next_attempt_at = Some(next_attempt_at);
        item.last_error = Some(error.to_owned());
        self.durable(self.outbox.insert(item.id.to_be_bytes(), encode(&item)).map_err(Into::into))?;
        Ok(())
    }

    /// Moves an undeliverable item out of the outbox, with why, and queues
    /// `notice` (for operators) in the same transaction.
    pub fn outbox_dead(
        &self,
        item: &OutboxItem,
        keys: &[String],
        reason: &str,
        at: OffsetDateTime,
        notice: Option<Event>,
    ) -> Result<(), StoreError> {
        let dead = encode(&DeadLetter { item: item.clone(), reason: reason.to_owned(), at });
        let result: Result<(), TransactionError<()>> =
            (&self.outbox, &self.dead_letters, &self.delivered).transaction(|(outbox, dead_letters, delivered)| {
                outbox.remove(&item.id.to_be_bytes())?;
                for key in keys {
                    delivered.remove(key.as_bytes())?;
                }
                dead_letters.insert(&item.id.to_be_bytes(), dead.as_slice())?;
                if let Some(event) = &notice {
                    let id = outbox.generate_id()?;
                    let notice = OutboxItem {
                        id,
                        dedupe_key: format!("{}:{}", event.code(), item.dedupe_key),
                        tenant: item.tenant.clone(),
                        event: event.clone(),
                        created_at: at,
                        attempts: 0,
                        next_attempt_at: None,
                        last_error: None,
                    };
                    outbox.insert(&id.to_be_bytes(), encode(&notice))?;
                }
                Ok(())
            });
        self.durable(never_aborts(result))
    }

    /// Puts back in the outbox `tenant`'s notifications that died for
    /// `reason` (its channel was missing, and is set now), as new; returns
    /// how many.
    pub fn requeue_dead_letters(&self, tenant: &TenantId, reason: &str) -> Result<usize, StoreError> {
        let waiting: Vec<DeadLetter> = self
            .dead_letters()?
            .into_iter()
            .filter(|d| d.item.tenant == *tenant && d.reason == reason && d.item.event.audience().tenant)
            .collect();
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
                        outbox.insert(&id, encode(&item))?;
                        moved += 1;
                    }
                }
                Ok(moved)
            });
        self.durable(never_aborts(result))
    }

    /// Items that could not be delivered, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.dead_letters.iter().values().map(|v| decode("dead letter", &v?)).collect()
    }

    pub fn tenant_settings(&self, tenant: &TenantId) -> Result<TenantSettings, StoreError> {
        Ok(self.tenants.get(tenant.as_str())?.map(|v| decode("tenant", &v)).transpose()?.unwrap_or_default())
    }

    /// Stores a tenant's settings with an audit entry.
    pub fn set_tenant_settings(&self, entry: &TenantAuditEntry) -> Result<(), StoreError> {
        let result: Result<(), TransactionError<()>> =
            (&self.tenants, &self.tenant_audit).transaction(|(tenants, audit)| {
                tenants.insert(entry.tenant.as_str(), encode(&entry.settings))?;
                let seq = audit.generate_id()?;
                let mut key = tenant_prefix(&entry.tenant);
                key.extend_from_slice(&seq.to_be_bytes());
                audit.insert(key, encode(entry))?;
                Ok(())
            });
        self.durable(never_aborts(result))
    }

    /// Tickets waiting to be opened, in key order.
    pub fn ticket_requests(&self) -> Result<Vec<TicketRequest>, StoreError> {
        self.ticket_requests.iter().values().map(|v| decode("ticket request", &v?)).collect()
    }

    /// Forgets a request that needed no record (a note was added).
    pub fn ticket_request_done(&self, key: &str) -> Result<(), StoreError> {
        self.durable(self.ticket_requests.remove(key.as_bytes()).map_err(Into::into))?;
        Ok(())
    }

    /// Records that the ticket `request` asked for is open (created or
    /// adopted): the request goes, the account keeps the ticket, and the
    /// channels are told, in one transaction.
    pub fn ticket_opened(
        &self,
        request: &TicketRequest,
        ticket: TicketRecord,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let opened = |account: &mut Account| {
            if !account.tickets.iter().any(|t| t.key == ticket.key) {
                account.tickets.push(ticket.clone());
            }
            account.updated_at = now;
            Ok::<_, ()>(vec![Event::TicketOpened {
                account: account.id,
                ticket_id: ticket.id,
                url: ticket.url.clone(),
                kind: ticket.kind.clone(),
            }])
        };
        let forget = |requests: &TransactionalTree| {
            requests.remove(request.key.as_bytes())?;
            Ok(())
        };
        self.ticket_update(request, actor, "ticket_opened", now, opened, forget)
    }

    /// Records that Freshdesk could not take `request`: it stays, waiting
    /// for its next try, and operations are told the first time only.
    pub fn ticket_waiting(
        &self,
        request: &TicketRequest,
        retry_after: Option<std::time::Duration>,
        problem: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let later = encode(&request.failed(now, retry_after));
        if request.ops_told {
            self.durable(self.ticket_requests.insert(request.key.as_bytes(), later).map_err(Into::into))?;
            return Ok(());
        }
        let told = |account: &mut Account| {
            Ok::<_, ()>(vec![Event::TicketWaiting { account: account.id, problem: problem.to_owned() }])
        };
        let reschedule = |requests: &TransactionalTree| {
            requests.insert(request.key.as_bytes(), later.as_slice())?;
            Ok(())
        };
        self.ticket_update(request, actor, "ticket_waiting", now, told, reschedule)
    }

    /// An account change about a ticket request, with the request's own
    /// change, in one transaction. A request whose account is gone is
    /// forgotten.
    fn ticket_update(
        &self,
        request: &TicketRequest,
        actor: &str,
        action: &str,
        now: OffsetDateTime,
        change: impl Fn(&mut Account) -> Result<Vec<Event>, ()>,
        also: impl Fn(&TransactionalTree) -> Result<(), ConflictableTransactionError<()>>,
    ) -> Result<(), StoreError> {
        let by = By { actor, action, at: now, audit: Audit::Always };
        match self.update_with(request.account, by, change, also) {
            Ok(_) | Err(UpdateError::Rejected(())) | Err(UpdateError::ExternalIdTaken) => Ok(()),
            Err(UpdateError::NotFound) => self.ticket_request_done(&request.key),
            Err(UpdateError::Store(e)) => Err(e),
        }
    }

    /// Every key and value of every tree, for tests and backups.
    pub fn export(&self) -> Result<Vec<Record>, StoreError> {
        let mut all = Vec::new();
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name)?;
            for entry in tree.iter() {
                let (k, v) = entry?;
                all.push((name.to_vec(), k.to_vec(), v.to_vec()));
            }
        }
        Ok(all)
    }

    fn transaction<T>(
        &self,
        f: impl Fn(&Tx<'_>) -> Result<T, ConflictableTransactionError<()>>,
    ) -> Result<Result<T, ()>, StoreError> {
        let trees =
            (&self.accounts, &self.by_tenant, &self.external_ids, &self.audit, &self.outbox, &self.ticket_requests);
        let result = trees.transaction(|(accounts, by_tenant, external_ids, audit, outbox, ticket_requests)| {
            f(&Tx { accounts, by_tenant, external_ids, audit, outbox, ticket_requests })
        });
        match result {
            Ok(v) => self.durable(Ok(Ok(v))),
            Err(TransactionError::Abort(())) => Ok(Err(())),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// A write is on disk before anyone is told it happened: sled keeps
    /// writes in memory for up to half a second, which a crash would lose
    /// after the user saw "Verified".
    fn durable<T>(&self, written: Result<T, StoreError>) -> Result<T, StoreError> {
        let value = written?;
        self.db.flush()?;
        Ok(value)
    }

    /// Stores a new account with its audit entry and outbox items, unless the
    /// account or its external ID exists already.
    pub fn insert_account(
        &self,
        account: &Account,
        entry: &AuditEntry,
    ) -> Result<Result<(), InsertConflict>, StoreError> {
        let conflict = std::cell::Cell::new(None);
        let outcome = self.transaction(|tx| {
            if let Some(existing) = tx.accounts.get(account.id.as_bytes())? {
                let existing: Account =
                    serde_json::from_slice(&existing).map_err(|_| ConflictableTransactionError::Abort(()))?;
                conflict.set(Some(InsertConflict::AccountExists { same_tenant: existing.tenant == account.tenant }));
                return abort(());
            }
            if tx.external_ids.get(account.external_id.as_str())?.is_some() {
                conflict.set(Some(InsertConflict::ExternalIdTaken));
                return abort(());
            }
            tx.accounts.insert(account.id.as_bytes(), encode(account))?;
            tx.by_tenant.insert(tenant_key(&account.tenant, account.id), &[])?;
            tx.external_ids.insert(account.external_id.as_str(), account.id.as_bytes())?;
            tx.record(account, entry)
        })?;
        match (outcome, conflict.take()) {
            (Ok(()), _) => Ok(Ok(())),
            (Err(()), Some(conflict)) => Ok(Err(conflict)),
            (Err(()), None) => Err(StoreError::Corrupt {
                what: "account",
                source: serde::de::Error::custom(format!("account {} could not be read", account.id)),
            }),
        }
    }

    /// Reads an account, lets `change` modify it and say which events that
    /// caused, and writes the result with its audit entry and outbox items in
    /// one transaction. `change` may run more than once (on conflicts) and so
    /// must only depend on the account it is given.
    pub fn update_account<E>(
        &self,
        id: AccountId,
        actor: &str,
        action: &str,
        now: OffsetDateTime,
        change: impl Fn(&mut Account) -> Result<Vec<Event>, E>,
    ) -> Result<(Account, Vec<Event>), UpdateError<E>> {
        self.update_with(id, By { actor, action, at: now, audit: Audit::Always }, change, |_| Ok(()))
    }

    /// [`Store::update_account`] for bookkeeping that happens often (a probe
    /// that found nothing): audited only when the change caused events.
    pub fn update_account_quietly<E>(
        &self,
        id: AccountId,
        actor: &str,
        action: &str,
        now: OffsetDateTime,
        change: impl Fn(&mut Account) -> Result<Vec<Event>, E>,
    ) -> Result<(Account, Vec<Event>), UpdateError<E>> {
        self.update_with(id, By { actor, action, at: now, audit: Audit::WhenEvents }, change, |_| Ok(()))
    }

    /// [`Store::update_account`], with `also` writing to the ticket
    /// requests in the same transaction.
    fn update_with<E>(
        &self,
        id: AccountId,
        by: By<'_>,
        change: impl Fn(&mut Account) -> Result<Vec<Event>, E>,
        also: impl Fn(&TransactionalTree) -> Result<(), ConflictableTransactionError<()>>,
    ) -> Result<(Account, Vec<Event>), UpdateError<E>> {
        enum Why<E> {
            NotFound,
            Rejected(E),
            ExternalIdTaken,
            Corrupt(serde_json::Error),
        }
        let why = std::cell::RefCell::new(None);
        let fail = |w: Why<E>| {
            *why.borrow_mut() = Some(w);
            abort(())
        };
        let outcome = self.transaction(|tx| {
            let Some(stored) = tx.accounts.get(id.as_bytes())? else {
                return fail(Why::NotFound);
            };
            let mut account: Account = match serde_json::from_slice(&stored) {
                Ok(a) => a,
                Err(e) => return fail(Why::Corrupt(e)),
            };
            let before_ext = account.external_id.clone();
            let events = match change(&mut account) {
                Ok(events) => events,
                Err(e) => return fail(Why::Rejected(e)),
            };
            if account.external_id != before_ext {
                if tx.external_ids.get(account.external_id.as_str())?.is_some() {
                    return fail(Why::ExternalIdTaken);
                }
                tx.external_ids.remove(before_ext.as_str())?;
                tx.external_ids.insert(account.external_id.as_str(), account.id.as_bytes())?;
            }
            tx.accounts.insert(id.as_bytes(), encode(&account))?;
            also(tx.ticket_requests)?;
            let entry = AuditEntry {
                at: by.at,
                actor: by.actor.to_owned(),
                account: id,
                action: by.action.to_owned(),
                events: events.clone(),
            };
            if by.audit == Audit::Always || !events.is_empty() {
                tx.record(&account, &entry)?;
            }
            Ok((account, events))
        })?;
        match outcome {
            Ok(done) => Ok(done),
            Err(()) => Err(match why.into_inner() {
                Some(Why::NotFound) | None => UpdateError::NotFound,
                Some(Why::Rejected(e)) => UpdateError::Rejected(e),
                Some(Why::ExternalIdTaken) => UpdateError::ExternalIdTaken,
                Some(Why::Corrupt(source)) => UpdateError::Store(StoreError::Corrupt { what: "account", source }),
            }),
        }
    }
}

/// The outcome of a transaction whose closure never aborts.
fn never_aborts<T>(result: Result<T, TransactionError<()>>) -> Result<T, StoreError> {
    result.map_err(|e| match e {
        TransactionError::Storage(e) => StoreError::Sled(e),
        TransactionError::Abort(()) => unreachable!("this transaction never aborts"),
    })
}

/// Whether opening failed because another process holds sled's lock (sled
/// wraps the `WouldBlock` of the file lock in an error of its own).
fn is_lock_conflict(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

/// Creates `dir` if needed and makes it readable by its owner only.
/// Makes what sled wrote in `dir` readable by its owner only: customer
/// records, external IDs and the outbox are nobody else's business.
fn owner_only(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let (path, kind) = (entry.path(), entry.file_type()?);
            if kind.is_dir() {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o700))?;
                owner_only(&path)?;
            } else if kind.is_file() {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}

fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

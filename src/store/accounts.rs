//! Accounts and their indexes: by tenant, by external ID, and the due index
//! the jobs read. A change lands with its audit entry and its effects in one
//! transaction; the store writes them exactly as given.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use time::OffsetDateTime;

use super::{AuditEntry, OutboxItem, Store, StoreError, codec, read};
use crate::domain::{
    Account, AccountId, DueJob, Effects, Event, ExternalId, HandshakeState, LinkState, TenantId, TicketEffect,
};

/// Whether an account change gets an audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audit {
    Always,
    /// Only when it caused events (bookkeeping that happens often, such as
    /// a probe that found nothing).
    WhenEvents,
}

/// Who changes an account, why and when: the head of its audit entry.
#[derive(Debug, Clone, Copy)]
pub struct By<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub at: OffsetDateTime,
    pub audit: Audit,
}

impl<'a> By<'a> {
    /// An audited change.
    pub fn new(actor: &'a str, action: &'a str, at: OffsetDateTime) -> Self {
        Self { actor, action, at, audit: Audit::Always }
    }
}

/// A change of an account as the domain decided it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub events: Vec<Event>,
    pub effects: Effects,
    /// When each job next needs the account: replaces what was indexed.
    pub due: Vec<(DueJob, OffsetDateTime)>,
}

impl Change {
    /// This change, with what the caller did to the ticket queue.
    pub fn with_tickets(mut self, tickets: &[TicketEffect]) -> Self {
        self.effects.tickets.extend_from_slice(tickets);
        self
    }
}

/// The accounts a job must look at, and how many are due in all.
#[derive(Debug, Clone)]
pub struct DueAccounts {
    /// Read, most overdue first.
    pub accounts: Vec<Account>,
    /// Due at all, read or not: those read and not passed over, and every
    /// one beyond the limit (counted, not read).
    pub total: usize,
    /// Read, and passed over as the caller asked: they take no room.
    pub passed_over: usize,
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

/// Why an account transaction stopped without writing anything.
enum Abort<E> {
    NotFound,
    Rejected(E),
    ExternalIdTaken,
    Exists { same_tenant: bool },
    Corrupt(StoreError),
}

type TxResult<T, E> = Result<T, ConflictableTransactionError<Abort<E>>>;

fn abort<T, E>(why: Abort<E>) -> TxResult<T, E> {
    Err(ConflictableTransactionError::Abort(why))
}

/// An account as stored: the record and the due times indexed for it (so a
/// change can take them out of the index).
#[derive(Deserialize)]
pub(super) struct Stored {
    pub account: Account,
    pub due: Vec<(u8, i64)>,
}

#[derive(Serialize)]
pub(super) struct StoredRef<'a> {
    pub account: &'a Account,
    pub due: &'a [(u8, i64)],
}

fn due_entries(due: &[(DueJob, OffsetDateTime)]) -> Vec<(u8, i64)> {
    due.iter().map(|(job, at)| (job.tag(), at.unix_timestamp())).collect()
}

/// (job, time, account): times sort as unsigned big-endian numbers.
pub(super) fn due_key(tag: u8, at: i64, account: AccountId) -> Vec<u8> {
    let mut key = Vec::with_capacity(21);
    key.push(tag);
    key.extend_from_slice(&sortable(at));
    key.extend_from_slice(account.as_bytes());
    key
}

/// A signed time that sorts as bytes.
fn sortable(at: i64) -> [u8; 8] {
    ((at as u64) ^ (1 << 63)).to_be_bytes()
}

pub(super) fn tenant_key(tenant: &TenantId, account: AccountId) -> Vec<u8> {
    let mut key = tenant_prefix(tenant);
    key.extend_from_slice(account.as_bytes());
    key
}

pub(super) fn tenant_prefix(tenant: &TenantId) -> Vec<u8> {
    let mut key = Vec::with_capacity(tenant.as_str().len() + 13);
    key.extend_from_slice(tenant.as_str().as_bytes());
    key.push(0); // tenant IDs never hold NUL
    key
}

/// The trees one account change touches.
struct Tx<'a> {
    accounts: &'a TransactionalTree,
    by_tenant: &'a TransactionalTree,
    external_ids: &'a TransactionalTree,
    due: &'a TransactionalTree,
    audit: &'a TransactionalTree,
    outbox: &'a TransactionalTree,
    ticket_requests: &'a TransactionalTree,
}

impl Tx<'_> {
    fn stored<E>(&self, id: AccountId) -> TxResult<Option<Stored>, E> {
        match self.accounts.get(id.as_bytes())? {
            None => Ok(None),
            Some(bytes) => match read("account", id.as_bytes(), &bytes) {
                Ok(stored) => Ok(Some(stored)),
                Err(e) => abort(Abort::Corrupt(e)),
            },
        }
    }

    /// Writes `account` and keeps its indexes in step with what `before`
    /// indexed.
    fn write<E>(
        &self,
        before: Option<&Stored>,
        account: &Account,
        due: &[(DueJob, OffsetDateTime)],
    ) -> TxResult<(), E> {
        let id = account.id;
        let due = due_entries(due);
        let old_tenant = before.map(|b| &b.account.tenant);
        if old_tenant != Some(&account.tenant) {
            if let Some(old) = old_tenant {
                self.by_tenant.remove(tenant_key(old, id))?;
            }
            self.by_tenant.insert(tenant_key(&account.tenant, id), &[])?;
        }
        let old_external_id = before.map(|b| &b.account.external_id);
        if old_external_id != Some(&account.external_id) {
            if self.external_ids.get(account.external_id.as_str())?.is_some() {
                return abort(Abort::ExternalIdTaken);
            }
            if let Some(old) = old_external_id {
                self.external_ids.remove(old.as_str())?;
            }
            self.external_ids.insert(account.external_id.as_str(), id.as_bytes())?;
        }
        let old_due = before.map_or(&[][..], |b| &b.due[..]);
        if old_due != due.as_slice() {
            for (tag, at) in old_due {
                self.due.remove(due_key(*tag, *at, id))?;
            }
            for (tag, at) in &due {
                self.due.insert(due_key(*tag, *at, id), &[])?;
            }
        }
        self.accounts.insert(id.as_bytes(), codec::encode(&StoredRef { account, due: &due }))?;
        Ok(())
    }

    /// The audit entry (when `by` asks for one) and the effects of a change.
    fn record<E>(&self, account: &Account, by: &By<'_>, change: &Change) -> TxResult<(), E> {
        if by.audit == Audit::Always || !change.events.is_empty() {
            let entry = AuditEntry {
                at: by.at,
                actor: by.actor.to_owned(),
                account: account.id,
                action: by.action.to_owned(),
                events: change.events.clone(),
            };
            let seq = self.audit.generate_id()?;
            self.audit.insert(super::audit::key(account.id, seq), codec::encode(&entry))?;
        }
        for notice in &change.effects.notices {
            let id = self.outbox.generate_id()?;
            let item = OutboxItem::new(id, account, notice.clone(), by.at);
            self.outbox.insert(&id.to_be_bytes(), codec::encode(&item))?;
        }
        for ticket in &change.effects.tickets {
            match ticket {
                TicketEffect::Request(request) => {
                    if self.ticket_requests.get(request.key.as_bytes())?.is_none() {
                        self.ticket_requests.insert(request.key.as_bytes(), codec::encode(request))?;
                    }
                }
                TicketEffect::Retry(request) => {
                    self.ticket_requests.insert(request.key.as_bytes(), codec::encode(request))?;
                }
                TicketEffect::Done { key } => {
                    self.ticket_requests.remove(key.as_bytes())?;
                }
            }
        }
        Ok(())
    }
}

impl Store {
    /// Runs `f` over the account trees in one transaction, flushed to disk
    /// when it commits.
    fn account_tx<T, E>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T, E>) -> Result<Result<T, Abort<E>>, StoreError> {
        match self.account_tx_unflushed(f)? {
            Ok(value) => self.durable(Ok(Ok(value))),
            Err(why) => Ok(Err(why)),
        }
    }

    /// [`Store::account_tx`] without the flush, for work that flushes once
    /// at its end.
    fn account_tx_unflushed<T, E>(
        &self,
        f: impl Fn(&Tx<'_>) -> TxResult<T, E>,
    ) -> Result<Result<T, Abort<E>>, StoreError> {
        let trees = (
            &self.accounts,
            &self.by_tenant,
            &self.external_ids,
            &self.due,
            &self.audit,
            &self.outbox,
            &self.ticket_requests,
        );
        let result = trees.transaction(|(accounts, by_tenant, external_ids, due, audit, outbox, ticket_requests)| {
            f(&Tx { accounts, by_tenant, external_ids, due, audit, outbox, ticket_requests })
        });
        match result {
            Ok(v) => Ok(Ok(v)),
            Err(TransactionError::Abort(why)) => Ok(Err(why)),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Stores a new account with its audit entry and effects, unless the
    /// account or its external ID exists already.
    pub fn insert_account(
        &self,
        account: &Account,
        by: &By<'_>,
        change: &Change,
    ) -> Result<Result<(), InsertConflict>, StoreError> {
        let outcome = self.account_tx::<_, ()>(|tx| {
            if let Some(existing) = tx.stored(account.id)? {
                return abort(Abort::Exists { same_tenant: existing.account.tenant == account.tenant });
            }
            tx.write(None, account, &change.due)?;
            tx.record(account, by, change)
        })?;
        match outcome {
            Ok(()) => Ok(Ok(())),
            Err(Abort::Exists { same_tenant }) => Ok(Err(InsertConflict::AccountExists { same_tenant })),
            Err(Abort::ExternalIdTaken) => Ok(Err(InsertConflict::ExternalIdTaken)),
            Err(Abort::Corrupt(e)) => Err(e),
            Err(Abort::NotFound | Abort::Rejected(())) => unreachable!("an insert neither reads nor rejects"),
        }
    }

    /// Reads an account, lets `change` modify it and say what that caused,
    /// and writes the result with its indexes, audit entry and effects in
    /// one transaction. `change` may run more than once (on conflicts) and
    /// so must only depend on the account it is given.
    pub fn update_account<E>(
        &self,
        id: AccountId,
        by: &By<'_>,
        change: impl Fn(&mut Account) -> Result<Change, E>,
    ) -> Result<(Account, Change), UpdateError<E>> {
        let outcome = self.account_tx(|tx| {
            let Some(stored) = tx.stored(id)? else { return abort(Abort::NotFound) };
            let mut account = stored.account.clone();
            let change = match change(&mut account) {
                Ok(change) => change,
                Err(e) => return abort(Abort::Rejected(e)),
            };
            tx.write(Some(&stored), &account, &change.due)?;
            tx.record(&account, by, &change)?;
            Ok((account, change))
        })?;
        outcome.map_err(|why| match why {
            Abort::NotFound => UpdateError::NotFound,
            Abort::Rejected(e) => UpdateError::Rejected(e),
            Abort::ExternalIdTaken => UpdateError::ExternalIdTaken,
            Abort::Corrupt(e) => UpdateError::Store(e),
            Abort::Exists { .. } => unreachable!("an update does not insert"),
        })
    }

    /// Replaces the due times of every account with what `due_of` says,
    /// for a new plan (the configuration changed, or after a migration);
    /// `plan` is remembered, so [`Store::due_plan`] tells whether it is
    /// needed. Each account is rewritten in a transaction of its own, so a
    /// change made meanwhile is never undone; one flush at the end.
    pub fn reindex_due(
        &self,
        plan: &str,
        due_of: impl Fn(&Account) -> Vec<(DueJob, OffsetDateTime)>,
    ) -> Result<usize, StoreError> {
        let mut count = 0;
        for key in self.accounts.iter().keys() {
            let key = key?;
            let id = AccountId::from_bytes(&key).ok_or_else(|| corrupt_key("account key", &key))?;
            let rewritten = self.account_tx_unflushed::<_, ()>(|tx| {
                let Some(stored) = tx.stored(id)? else { return Ok(false) };
                tx.write(Some(&stored), &stored.account, &due_of(&stored.account))?;
                Ok(true)
            })?;
            match rewritten {
                Ok(true) => count += 1,
                Ok(false) => {}
                Err(Abort::Corrupt(e)) => return Err(e),
                Err(_) => unreachable!("a reindex neither rejects nor changes external IDs"),
            }
        }
        self.db.insert(DUE_PLAN_KEY, plan.as_bytes())?;
        self.durable(Ok(count))
    }

    /// The plan the due index was built for, if any.
    pub fn due_plan(&self) -> Result<Option<String>, StoreError> {
        Ok(self.db.get(DUE_PLAN_KEY)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The accounts `job` must look at `now`: those indexed as due at or
    /// before it, most overdue first, at most `limit` of them (the rest are
    /// counted, not read). Nothing else is read.
    pub fn due_accounts(&self, job: DueJob, now: OffsetDateTime, limit: usize) -> Result<DueAccounts, StoreError> {
        self.due_accounts_except(job, now, limit, |_| false)
    }

    /// [`Store::due_accounts`], passing over the accounts `pass_over` names:
    /// they are read, but take no room in the limit (so they never crowd
    /// out the others) and are counted apart.
    pub fn due_accounts_except(
        &self,
        job: DueJob,
        now: OffsetDateTime,
        limit: usize,
        pass_over: impl Fn(&Account) -> bool,
    ) -> Result<DueAccounts, StoreError> {
        let start = [job.tag()];
        // Past every account ID at `now` (IDs are ASCII digits).
        let mut end = vec![job.tag()];
        end.extend_from_slice(&sortable(now.unix_timestamp()));
        end.push(0xff);
        let mut due = DueAccounts { accounts: Vec::new(), total: 0, passed_over: 0 };
        for key in self.due.range(&start[..]..&end[..]).keys() {
            let key = key?;
            if due.accounts.len() == limit {
                due.total += 1;
                continue;
            }
            let Some(id) = AccountId::from_bytes(&key[9..]) else {
                return Err(corrupt_key("due index entry", &key));
            };
            match self.account(id)? {
                Some(account) if pass_over(&account) => due.passed_over += 1,
                Some(account) => {
                    due.total += 1;
                    due.accounts.push(account);
                }
                None => due.total += 1,
            }
        }
        Ok(due)
    }

    pub fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        Ok(self
            .accounts
            .get(id.as_bytes())?
            .map(|v| read::<Stored>("account", id.as_bytes(), &v))
            .transpose()?
            .map(|s| s.account))
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
            let id = key
                .len()
                .checked_sub(12)
                .and_then(|at| AccountId::from_bytes(&key[at..]))
                .ok_or_else(|| corrupt_key("tenant index entry", &key))?;
            if let Some(account) = self.account(id)? {
                accounts.push(account);
            }
        }
        Ok(accounts)
    }

    /// Every account, in account ID order.
    pub fn all_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.accounts
            .iter()
            .map(|e| {
                let (k, v) = e?;
                Ok(read::<Stored>("account", &k, &v)?.account)
            })
            .collect()
    }

    /// Every account's link state and latest handshake state (for metrics).
    pub fn account_states(&self) -> Result<Vec<(LinkState, Option<HandshakeState>)>, StoreError> {
        self.accounts
            .iter()
            .map(|e| {
                let (k, v) = e?;
                let account = read::<Stored>("account", &k, &v)?.account;
                Ok((account.state, account.invitation.map(|i| i.state)))
            })
            .collect()
    }
}

pub(super) const DUE_PLAN_KEY: &[u8] = b"due_plan";

fn corrupt_key(what: &'static str, key: &[u8]) -> StoreError {
    StoreError::Corrupt {
        what,
        key: super::show_key(key),
        source: codec::DecodeError::new("the key does not end in a 12-digit account ID"),
    }
}

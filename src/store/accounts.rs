//! Accounts and their indexes: by tenant, by external ID, and the due index
//! the jobs read. A change lands with its audit entry and its effects in one
//! transaction; the store writes them exactly as given.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use time::OffsetDateTime;

use super::pipeline::Bucket;
use super::{AuditEntry, OutboxItem, Store, StoreError, codec, read};
use crate::domain::pipeline::Row;
use crate::domain::quota::{DayCount, Quota};
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
    /// Quota counts that this change used one of, as they now are: written
    /// with it, so a use is counted exactly when it happened.
    pub counted: Vec<Counted>,
}

/// A tenant's count of a quota's uses, as it is to be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub tenant: TenantId,
    pub quota: Quota,
    pub count: DayCount,
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
    /// Read, in the order the job takes them (most overdue first, or a
    /// fair share of them).
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
    /// The tenant holds a claim on the account already.
    AccountExists,
    /// Another claim holds this external ID (draw a new one).
    ExternalIdTaken,
}

/// Why an update did not land.
#[derive(Debug)]
pub enum UpdateError<E> {
    NotFound,
    /// The change itself refused (an illegal transition, say).
    Rejected(E),
    /// A new external ID is held by another claim.
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
    Rejected(E),
    ExternalIdTaken,
    Corrupt(StoreError),
}

type TxResult<T, E> = Result<T, ConflictableTransactionError<Abort<E>>>;

fn abort<T, E>(why: Abort<E>) -> TxResult<T, E> {
    Err(ConflictableTransactionError::Abort(why))
}

/// The claims on one AWS account as stored, together under the account's
/// ID: each claim's record and the due times indexed for it (so a change
/// can take them out of the index).
#[derive(Deserialize)]
pub(super) struct Stored {
    pub claims: Vec<StoredClaim>,
}

#[derive(Deserialize)]
pub(super) struct StoredClaim {
    pub account: Account,
    pub due: Vec<(u8, i64)>,
}

/// The claims stored under an account's key.
pub(super) fn read_stored(key: &[u8], value: &[u8]) -> Result<Vec<StoredClaim>, StoreError> {
    Ok(read::<Stored>("account", key, value)?.claims)
}

#[derive(Serialize)]
pub(super) struct StoredRef<'a> {
    pub claims: Vec<StoredClaimRef<'a>>,
}

#[derive(Serialize)]
pub(super) struct StoredClaimRef<'a> {
    pub account: &'a Account,
    pub due: &'a [(u8, i64)],
}

fn due_entries(due: &[(DueJob, OffsetDateTime)]) -> Vec<(u8, i64)> {
    due.iter().map(|(job, at)| (job.tag(), at.unix_timestamp())).collect()
}

/// (job, time, account, tenant): times sort as unsigned big-endian numbers.
pub(super) fn due_key(tag: u8, at: i64, account: AccountId, tenant: &TenantId) -> Vec<u8> {
    let mut key = Vec::with_capacity(21 + tenant.as_str().len());
    key.push(tag);
    key.extend_from_slice(&sortable(at));
    key.extend_from_slice(account.as_bytes());
    key.extend_from_slice(tenant.as_str().as_bytes());
    key
}

/// A claim's key in the external ID index's values: (account, tenant).
pub(super) fn claim_key(account: AccountId, tenant: &TenantId) -> Vec<u8> {
    let mut key = account.as_bytes().to_vec();
    key.extend_from_slice(tenant.as_str().as_bytes());
    key
}

/// The account and tenant of a claim key (as the due index and the
/// external ID index hold them).
pub(super) fn parse_claim_key(key: &[u8]) -> Option<(AccountId, TenantId)> {
    let account = AccountId::from_bytes(key.get(..12)?)?;
    let tenant = std::str::from_utf8(&key[12..]).ok()?.parse().ok()?;
    Some((account, tenant))
}

/// A signed time that sorts as bytes.
pub(super) fn sortable(at: i64) -> [u8; 8] {
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

/// The index entries a set of claims has.
#[derive(Default)]
struct Indexed {
    by_tenant: BTreeSet<Vec<u8>>,
    due: BTreeSet<Vec<u8>>,
    /// External ID → the claim holding it.
    external_ids: BTreeMap<String, Vec<u8>>,
}

fn index_entries<'a>(claims: impl Iterator<Item = (&'a Account, &'a [(u8, i64)])>) -> Indexed {
    let mut indexed = Indexed::default();
    for (account, times) in claims {
        indexed.by_tenant.insert(tenant_key(&account.tenant, account.id));
        for (tag, at) in times {
            indexed.due.insert(due_key(*tag, *at, account.id, &account.tenant));
        }
        indexed.external_ids.insert(account.external_id.as_str().to_owned(), claim_key(account.id, &account.tenant));
    }
    indexed
}

/// The trees one account change touches.
struct Tx<'a> {
    accounts: &'a TransactionalTree,
    by_tenant: &'a TransactionalTree,
    external_ids: &'a TransactionalTree,
    due: &'a TransactionalTree,
    audit: &'a TransactionalTree,
    outbox: super::outbox::OutboxTx<'a>,
    ticket_requests: &'a TransactionalTree,
    quotas: &'a TransactionalTree,
    pipeline: &'a TransactionalTree,
    /// The pipeline's buckets this transaction changes, read once and
    /// written once at its end (an import puts many rows in one bucket).
    buckets: RefCell<BTreeMap<Vec<u8>, Bucket>>,
}

impl Tx<'_> {
    fn stored<E>(&self, id: AccountId) -> TxResult<Vec<StoredClaim>, E> {
        match self.accounts.get(id.as_bytes())? {
            None => Ok(Vec::new()),
            Some(bytes) => match read::<Stored>("account", id.as_bytes(), &bytes) {
                Ok(stored) => Ok(stored.claims),
                Err(e) => abort(Abort::Corrupt(e)),
            },
        }
    }

    /// Writes the claims on account `id` and keeps the indexes in step with
    /// what `before` indexed.
    fn write<E>(&self, id: AccountId, before: &[StoredClaim], after: &[(&Account, Vec<(u8, i64)>)]) -> TxResult<(), E> {
        let old = index_entries(before.iter().map(|c| (&c.account, &c.due[..])));
        let new = index_entries(after.iter().map(|(a, due)| (*a, &due[..])));
        let (old_ids, new_ids) = (&old.external_ids, &new.external_ids);
        for (tree, old, new) in [(self.by_tenant, &old.by_tenant, &new.by_tenant), (self.due, &old.due, &new.due)] {
            for key in old.difference(new) {
                tree.remove(key.as_slice())?;
            }
            for key in new.difference(old) {
                tree.insert(key.as_slice(), &[])?;
            }
        }
        for id in old_ids.keys().filter(|k| !new_ids.contains_key(*k)) {
            self.external_ids.remove(id.as_str())?;
        }
        for (external_id, claim) in new_ids {
            match old_ids.get(external_id) {
                Some(old) if old == claim => {}
                Some(_) => {
                    self.external_ids.insert(external_id.as_str(), claim.as_slice())?;
                }
                None => {
                    if self.external_ids.get(external_id.as_str())?.is_some() {
                        return abort(Abort::ExternalIdTaken);
                    }
                    self.external_ids.insert(external_id.as_str(), claim.as_slice())?;
                }
            }
        }
        self.write_rows(id, before, after)?;
        if after.is_empty() {
            self.accounts.remove(id.as_bytes())?;
        } else {
            let claims = after.iter().map(|(account, due)| StoredClaimRef { account, due }).collect();
            self.accounts.insert(id.as_bytes(), codec::encode(&StoredRef { claims }))?;
        }
        Ok(())
    }

    /// Keeps the pipeline's row of each claim on account `id` in step; a
    /// change that leaves a row as it was touches no bucket.
    fn write_rows<E>(
        &self,
        id: AccountId,
        before: &[StoredClaim],
        after: &[(&Account, Vec<(u8, i64)>)],
    ) -> TxResult<(), E> {
        let old = before.iter().map(|c| (&c.account.tenant, Row::of(&c.account)));
        let new: Vec<_> = after.iter().map(|(a, _)| (&a.tenant, Row::of(a))).collect();
        let gone = old.filter(|(t, row)| row.is_some() && !new.iter().any(|(n, _)| n == t)).map(|(t, _)| (t, None));
        let mut changed: Vec<(&TenantId, Option<Row>)> = gone.collect();
        for (tenant, row) in new {
            let was = before.iter().find(|c| c.account.tenant == *tenant).and_then(|c| Row::of(&c.account));
            if was != row {
                changed.push((tenant, row));
            }
        }
        let mut buckets = self.buckets.borrow_mut();
        for (tenant, row) in changed {
            let key = super::pipeline::bucket_key(tenant, id);
            let bucket = match buckets.entry(key) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let bucket = match self.pipeline.get(e.key().as_slice())? {
                        None => Bucket::empty(),
                        Some(bytes) => match Bucket::stored(e.key(), &bytes) {
                            Ok(bucket) => bucket,
                            Err(err) => return abort(Abort::Corrupt(err)),
                        },
                    };
                    e.insert(bucket)
                }
            };
            bucket.set(id, row.as_ref());
        }
        Ok(())
    }

    /// Writes the buckets this transaction changed.
    fn write_buckets<E>(&self) -> TxResult<(), E> {
        for (key, bucket) in self.buckets.borrow().iter() {
            if bucket.is_empty() {
                self.pipeline.remove(key.as_slice())?;
            } else {
                self.pipeline.insert(key.as_slice(), bucket.as_bytes())?;
            }
        }
        Ok(())
    }

    /// The audit entry (when `by` asks for one) and the effects of a change
    /// of `account` (a claim).
    fn record<E>(&self, account: &Account, by: &By<'_>, change: &Change) -> TxResult<(), E> {
        if by.audit == Audit::Always || !change.events.is_empty() {
            let entry = AuditEntry {
                at: by.at,
                actor: by.actor.to_owned(),
                account: account.id,
                action: by.action.to_owned(),
                events: change.events.clone(),
                tenant: Some(account.tenant.clone()),
            };
            let seq = self.audit.generate_id()?;
            self.audit.insert(super::audit::key(account.id, seq), codec::encode(&entry))?;
        }
        for notice in &change.effects.notices {
            self.outbox.queue(|id| OutboxItem::new(id, account, notice.clone(), by.at))?;
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
        for counted in &change.counted {
            self.quotas
                .insert(super::quotas::count_key(counted.quota, &counted.tenant), codec::encode(&counted.count))?;
        }
        Ok(())
    }
}

/// What a change of the claims on one account did: each changed claim (by
/// its tenant after the change) with what the change caused.
pub type ClaimChanges = Vec<(TenantId, Change)>;

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
        let _writing = self.writing();
        let trees = (
            &self.accounts,
            &self.by_tenant,
            &self.external_ids,
            &self.due,
            &self.audit,
            &self.outbox,
            &self.outbox_index,
            &self.outbox_counts,
            &self.ticket_requests,
            &self.quotas,
            &self.pipeline,
        );
        let result = trees.transaction(
            |(
                accounts,
                by_tenant,
                external_ids,
                due,
                audit,
                items,
                index,
                counts,
                ticket_requests,
                quotas,
                pipeline,
            )| {
                let tx = Tx {
                    accounts,
                    by_tenant,
                    external_ids,
                    due,
                    audit,
                    outbox: super::outbox::OutboxTx { items, index, counts },
                    ticket_requests,
                    quotas,
                    pipeline,
                    buckets: RefCell::default(),
                };
                let value = f(&tx)?;
                tx.write_buckets()?;
                Ok(value)
            },
        );
        match result {
            Ok(v) => Ok(Ok(v)),
            Err(TransactionError::Abort(why)) => Ok(Err(why)),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Reads the claims on account `id` (none if it has none), lets `change`
    /// modify them (change, add or drop claims) and say what each change
    /// caused, and writes the result with its indexes, audit entries and
    /// effects in one transaction. A claim `change` does not name keeps its
    /// due times. `change` may run more than once (on conflicts) and so must
    /// only depend on the claims it is given. Returns the claims as written.
    pub fn change_claims<E>(
        &self,
        id: AccountId,
        by: &By<'_>,
        change: impl Fn(&mut Vec<Account>) -> Result<ClaimChanges, E>,
    ) -> Result<(Vec<Account>, ClaimChanges), UpdateError<E>> {
        let outcome = self.account_tx(|tx| {
            let before = tx.stored(id)?;
            let mut claims: Vec<Account> = before.iter().map(|c| c.account.clone()).collect();
            let changes = match change(&mut claims) {
                Ok(changes) => changes,
                Err(e) => return abort(Abort::Rejected(e)),
            };
            let after: Vec<(&Account, Vec<(u8, i64)>)> = claims
                .iter()
                .map(|claim| {
                    let given = changes.iter().find(|(tenant, _)| *tenant == claim.tenant);
                    let due = match given {
                        Some((_, change)) => due_entries(&change.due),
                        None => before
                            .iter()
                            .find(|c| c.account.tenant == claim.tenant)
                            .map(|c| c.due.clone())
                            .unwrap_or_default(),
                    };
                    (claim, due)
                })
                .collect();
            tx.write(id, &before, &after)?;
            for (tenant, change) in &changes {
                let claim = claims.iter().find(|c| c.tenant == *tenant);
                let claim = claim.or_else(|| before.iter().map(|c| &c.account).find(|c| c.tenant == *tenant));
                if let Some(claim) = claim {
                    tx.record(claim, by, change)?;
                }
            }
            Ok((claims, changes))
        })?;
        outcome.map_err(|why| match why {
            Abort::Rejected(e) => UpdateError::Rejected(e),
            Abort::ExternalIdTaken => UpdateError::ExternalIdTaken,
            Abort::Corrupt(e) => UpdateError::Store(e),
        })
    }

    /// Stores many new claims (of different accounts) in one transaction,
    /// each with its audit entry and effects: all of them, or none. For
    /// each, `may_add` judges it against the claims its account has (a
    /// closed claim of the same tenant gives way to the new one); the first
    /// it refuses aborts everything and is returned with its position.
    /// An import is taken whole, and a crash halfway must not leave half
    /// a file registered.
    pub fn add_claims<E>(
        &self,
        by: &By<'_>,
        new: &[(Account, Change)],
        may_add: impl Fn(&[Account], &Account) -> Result<(), E>,
    ) -> Result<(), UpdateError<(usize, E)>> {
        let outcome = self.account_tx(|tx| {
            for (i, (account, change)) in new.iter().enumerate() {
                let before = tx.stored(account.id)?;
                let mut claims: Vec<Account> = before.iter().map(|c| c.account.clone()).collect();
                if let Err(e) = may_add(&claims, account) {
                    return abort(Abort::Rejected((i, e)));
                }
                claims.retain(|c| c.tenant != account.tenant);
                let new_due = due_entries(&change.due);
                let after: Vec<(&Account, Vec<(u8, i64)>)> = claims
                    .iter()
                    .map(|claim| {
                        let due = before.iter().find(|c| c.account.tenant == claim.tenant).map(|c| c.due.clone());
                        (claim, due.unwrap_or_default())
                    })
                    .chain(std::iter::once((account, new_due)))
                    .collect();
                tx.write(account.id, &before, &after)?;
                tx.record(account, by, change)?;
            }
            Ok(())
        })?;
        outcome.map_err(|why| match why {
            Abort::Rejected(e) => UpdateError::Rejected(e),
            Abort::ExternalIdTaken => UpdateError::ExternalIdTaken,
            Abort::Corrupt(e) => UpdateError::Store(e),
        })
    }

    /// Stores a new claim with its audit entry and effects, unless its
    /// tenant holds one on the account already or its external ID is taken.
    pub fn insert_account(
        &self,
        account: &Account,
        by: &By<'_>,
        change: &Change,
    ) -> Result<Result<(), InsertConflict>, StoreError> {
        let result = self.change_claims(account.id, by, |claims| {
            if claims.iter().any(|c| c.tenant == account.tenant) {
                return Err(());
            }
            claims.push(account.clone());
            Ok(vec![(account.tenant.clone(), change.clone())])
        });
        match result {
            Ok(_) => Ok(Ok(())),
            Err(UpdateError::Rejected(())) => Ok(Err(InsertConflict::AccountExists)),
            Err(UpdateError::ExternalIdTaken) => Ok(Err(InsertConflict::ExternalIdTaken)),
            Err(UpdateError::NotFound) => unreachable!("an insert finds nothing missing"),
            Err(UpdateError::Store(e)) => Err(e),
        }
    }

    /// Reads `tenant`'s claim on account `id`, lets `change` modify it and
    /// say what that caused, and writes the result as
    /// [`Store::change_claims`] does.
    pub fn update_account<E>(
        &self,
        id: AccountId,
        tenant: &TenantId,
        by: &By<'_>,
        change: impl Fn(&mut Account) -> Result<Change, E>,
    ) -> Result<(Account, Change), UpdateError<E>> {
        let result = self.change_claims(id, by, |claims| {
            let Some(claim) = claims.iter_mut().find(|c| c.tenant == *tenant) else { return Err(None) };
            Ok(vec![(tenant.clone(), change(claim).map_err(Some)?)])
        });
        match result {
            Ok((claims, mut changes)) => {
                let claim = claims.into_iter().find(|c| c.tenant == *tenant).expect("changed above");
                Ok((claim, changes.pop().expect("one change").1))
            }
            Err(UpdateError::Rejected(None)) => Err(UpdateError::NotFound),
            Err(UpdateError::Rejected(Some(e))) => Err(UpdateError::Rejected(e)),
            Err(UpdateError::NotFound) => Err(UpdateError::NotFound),
            Err(UpdateError::ExternalIdTaken) => Err(UpdateError::ExternalIdTaken),
            Err(UpdateError::Store(e)) => Err(UpdateError::Store(e)),
        }
    }

    /// Replaces the due times of every claim with what `due_of` says, for a
    /// new plan (the configuration changed, or after a migration); `plan`
    /// is remembered, so [`Store::due_plan`] tells whether it is needed.
    /// Each account is rewritten in a transaction of its own, so a change
    /// made meanwhile is never undone; one flush at the end.
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
                let before = tx.stored(id)?;
                let after: Vec<_> = before.iter().map(|c| (&c.account, due_entries(&due_of(&c.account)))).collect();
                tx.write(id, &before, &after)?;
                Ok(after.len())
            })?;
            match rewritten {
                Ok(claims) => count += claims,
                Err(Abort::Corrupt(e)) => return Err(e),
                Err(_) => unreachable!("a reindex neither rejects nor changes external IDs"),
            }
        }
        {
            let _writing = self.writing();
            self.db.insert(DUE_PLAN_KEY, plan.as_bytes())?;
        }
        self.durable(Ok(count))
    }

    /// The plan the due index was built for, if any.
    pub fn due_plan(&self) -> Result<Option<String>, StoreError> {
        Ok(self.db.get(DUE_PLAN_KEY)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The claims `job` must look at `now`: those indexed as due at or
    /// before it, most overdue first, at most `limit` of them (the rest are
    /// counted, not read). Nothing else is read.
    pub fn due_accounts(&self, job: DueJob, now: OffsetDateTime, limit: usize) -> Result<DueAccounts, StoreError> {
        self.due_accounts_except(job, now, limit, |_| false)
    }

    /// [`Store::due_accounts`], passing over the claims `pass_over` names:
    /// they are read, but take no room in the limit (so they never crowd
    /// out the others) and are counted apart.
    pub fn due_accounts_except(
        &self,
        job: DueJob,
        now: OffsetDateTime,
        limit: usize,
        pass_over: impl Fn(&Account) -> bool,
    ) -> Result<DueAccounts, StoreError> {
        let mut due = DueAccounts { accounts: Vec::new(), total: 0, passed_over: 0 };
        for key in self.due_keys(job, now) {
            let key = key?;
            if due.accounts.len() == limit {
                due.total += 1;
                continue;
            }
            let (id, tenant) = parse_claim_key(&key[9..]).ok_or_else(|| corrupt_key("due index entry", &key))?;
            match self.claim(id, &tenant)? {
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

    /// The claims `job` must look at `now`, by their keys in the due index
    /// (account and tenant), most overdue first: no record is read, so a
    /// job can choose which to read.
    pub fn due_claims(
        &self,
        job: DueJob,
        now: OffsetDateTime,
    ) -> impl Iterator<Item = Result<(AccountId, TenantId), StoreError>> {
        self.due_keys(job, now).map(|key| {
            let key = key?;
            key.get(9..).and_then(parse_claim_key).ok_or_else(|| corrupt_key("due index entry", &key))
        })
    }

    /// The due index's keys for `job` up to `now`, most overdue first.
    fn due_keys(&self, job: DueJob, now: OffsetDateTime) -> impl Iterator<Item = sled::Result<sled::IVec>> {
        let start = [job.tag()];
        // Past every claim at `now` (account IDs are ASCII digits).
        let mut end = vec![job.tag()];
        end.extend_from_slice(&sortable(now.unix_timestamp()));
        end.push(0xff);
        self.due.range(&start[..]..&end[..]).keys()
    }

    /// Every claim on account `id` (closed ones too), in the order they
    /// were made.
    pub fn claims(&self, id: AccountId) -> Result<Vec<Account>, StoreError> {
        Ok(self
            .accounts
            .get(id.as_bytes())?
            .map(|v| read::<Stored>("account", id.as_bytes(), &v))
            .transpose()?
            .map(|s| s.claims.into_iter().map(|c| c.account).collect())
            .unwrap_or_default())
    }

    /// `tenant`'s claim on account `id`, if any (closed or not).
    pub fn claim(&self, id: AccountId, tenant: &TenantId) -> Result<Option<Account>, StoreError> {
        Ok(self.claims(id)?.into_iter().find(|c| c.tenant == *tenant))
    }

    /// The account as operations see it first: its owner's claim, else its
    /// first claim.
    pub fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        let claims = self.claims(id)?;
        let owner = claims.iter().position(Account::is_owner).unwrap_or(0);
        Ok(claims.into_iter().nth(owner))
    }

    /// The account whose claim holds `external_id`, if any.
    pub fn account_with_external_id(&self, external_id: &ExternalId) -> Result<Option<AccountId>, StoreError> {
        Ok(self.external_ids.get(external_id.as_str())?.and_then(|v| AccountId::from_bytes(v.get(..12)?)))
    }

    /// A tenant's claims (closed ones too), in account ID order.
    pub fn tenant_accounts(&self, tenant: &TenantId) -> Result<Vec<Account>, StoreError> {
        // The IDs first: the records, large, are then read into a vector of
        // their number, never grown (and copied) as they come.
        let ids = self
            .by_tenant
            .scan_prefix(tenant_prefix(tenant))
            .keys()
            .map(|entry| {
                let key = entry?;
                key.len()
                    .checked_sub(12)
                    .and_then(|at| AccountId::from_bytes(&key[at..]))
                    .ok_or_else(|| corrupt_key("tenant index entry", &key))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut accounts = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(account) = self.claim(id, tenant)? {
                accounts.push(account);
            }
        }
        Ok(accounts)
    }

    /// Every claim, in account ID order.
    pub fn all_accounts(&self) -> Result<Vec<Account>, StoreError> {
        let mut all = Vec::new();
        for entry in self.accounts.iter() {
            let (k, v) = entry?;
            all.extend(read::<Stored>("account", &k, &v)?.claims.into_iter().map(|c| c.account));
        }
        Ok(all)
    }

    /// Every claim's link state, latest handshake state and whether it is
    /// closed (for metrics).
    pub fn account_states(&self) -> Result<Vec<(LinkState, Option<HandshakeState>, bool)>, StoreError> {
        let mut states = Vec::new();
        for entry in self.accounts.iter() {
            let (k, v) = entry?;
            let stored = read::<Stored>("account", &k, &v)?;
            states.extend(stored.claims.into_iter().map(|c| {
                let closed = c.account.closed_at.is_some();
                (c.account.state, c.account.invitation.map(|i| i.state), closed)
            }));
        }
        Ok(states)
    }
}

pub(super) const DUE_PLAN_KEY: &[u8] = b"due_plan";

fn corrupt_key(what: &'static str, key: &[u8]) -> StoreError {
    StoreError::Corrupt {
        what,
        key: super::show_key(key),
        source: codec::DecodeError::new("the key does not hold a 12-digit account ID where it should"),
    }
}

//! The pipeline's rows: for each claim that is not closed, the few values
//! `orglink pipeline` needs (`domain::pipeline::Row`, derived from the claim
//! alone), kept beside the claims in the same transaction, so the pipeline
//! over 100,000 claims reads a few megabytes of rows, not every record.
//!
//! Rows are grouped by tenant, each tenant's spread over [`BUCKETS`] values
//! by account ID (`tenant NUL bucket` → the bucket's rows, by account): a
//! change rewrites one bucket of its tenant, and a read visits a few entries
//! per tenant rather than one per claim. A bucket is written as its count
//! of open claims, then its rows, so a tenant's open claims (the quota
//! every registration checks) are read from the first bytes of its
//! buckets, however many claims it has. Rows kept under another
//! [`ROWS_VERSION`] or [`BUCKET_LAYOUT`] are made again from the claims
//! when the store opens.

use std::collections::BTreeMap;

use super::accounts::{read_stored, tenant_prefix};
use super::{Store, StoreError, codec, read};
use crate::domain::pipeline::{ROWS_VERSION, Row};
use crate::domain::{Account, AccountId, TenantId};

/// Buckets per tenant.
pub(super) const BUCKETS: u64 = 16;
const ROWS_VERSION_KEY: &[u8] = b"pipeline_rows_version";
/// How a bucket is written: 3 is [`Bucket`]'s layout (2 was MessagePack:
/// its count of open claims, then its rows; 1 the rows alone).
const BUCKET_LAYOUT: u32 = 3;

/// What the rows marker holds: the rules' version and the layout's.
fn rows_marker() -> [u8; 8] {
    let mut marker = [0; 8];
    marker[..4].copy_from_slice(&ROWS_VERSION.to_be_bytes());
    marker[4..].copy_from_slice(&BUCKET_LAYOUT.to_be_bytes());
    marker
}

/// The count at the head of a bucket.
const COUNT_LEN: usize = 4;
/// An entry's head: the account ID (12 ASCII digits), whether the row is
/// an open claim (0 or 1), the row's length (u32, big-endian).
const HEAD_LEN: usize = 12 + 1 + 4;

/// A bucket as stored: its count of open claims (u32, big-endian), then
/// one entry per row in account order, each its head ([`HEAD_LEN`]) and
/// the row (MessagePack). A change finds its row by the heads and splices
/// the bytes: the bucket's other rows are never decoded, so a tenant with
/// thousands of claims costs a registration a copy of a few kilobytes, not
/// a decode and an encode of each of its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Bucket(Vec<u8>);

/// One entry of a bucket, by its place in the bytes.
struct Entry<'a> {
    start: usize,
    end: usize,
    account: &'a [u8],
    open: bool,
    row: &'a [u8],
}

/// A bucket under `key` that cannot be read, and why.
fn corrupt(key: &[u8], why: impl Into<String>) -> StoreError {
    StoreError::Corrupt { what: "pipeline rows", key: super::show_key(key), source: codec::DecodeError::new(why) }
}

/// The entry at `at` in `bytes` (none at their end), or why there is none.
fn entry_at(bytes: &[u8], at: usize) -> Result<Option<Entry<'_>>, String> {
    if at == bytes.len() {
        return Ok(None);
    }
    let head = bytes.get(at..at + HEAD_LEN).ok_or("an entry cut short")?;
    let open = match head[12] {
        0 => false,
        1 => true,
        other => return Err(format!("an open-claim flag of {other}")),
    };
    let len = u32::from_be_bytes([head[13], head[14], head[15], head[16]]) as usize;
    let end = (at + HEAD_LEN).checked_add(len).ok_or("a row longer than the bucket")?;
    let row = bytes.get(at + HEAD_LEN..end).ok_or("a row cut short")?;
    Ok(Some(Entry { start: at, end, account: &head[..12], open, row }))
}

impl Bucket {
    /// A bucket with no rows.
    pub(super) fn empty() -> Self {
        Self(vec![0; COUNT_LEN])
    }

    /// `rows` (in account order) as a bucket.
    pub(super) fn of_rows(rows: &[Row]) -> Self {
        let mut bucket = Self::empty();
        for row in rows {
            bucket.push(row.account, row);
        }
        bucket
    }

    /// The bucket stored under `key`, its entries checked and its count
    /// made again from them (a write puts a wrong count right).
    pub(super) fn stored(key: &[u8], bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() < COUNT_LEN {
            return Err(corrupt(key, "a bucket without its count"));
        }
        let (mut at, mut open, mut last): (usize, u32, Option<&[u8]>) = (COUNT_LEN, 0, None);
        while let Some(entry) = entry_at(bytes, at).map_err(|e| corrupt(key, e))? {
            if last.is_some_and(|last| last >= entry.account) {
                return Err(corrupt(key, "rows out of account order"));
            }
            open += u32::from(entry.open);
            (at, last) = (entry.end, Some(entry.account));
        }
        let mut bucket = Self(bytes.to_vec());
        bucket.0[..COUNT_LEN].copy_from_slice(&open.to_be_bytes());
        Ok(bucket)
    }

    /// Whether the bucket has no rows (and so is not kept).
    pub(super) fn is_empty(&self) -> bool {
        self.0.len() == COUNT_LEN
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn open_claims(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    fn add_open(&mut self, delta: i64) {
        let open = u32::try_from((i64::from(self.open_claims()) + delta).max(0)).unwrap_or(u32::MAX);
        self.0[..COUNT_LEN].copy_from_slice(&open.to_be_bytes());
    }

    /// `row` as an entry.
    fn entry(account: AccountId, row: &Row) -> Vec<u8> {
        let encoded = codec::encode(row);
        let mut entry = Vec::with_capacity(HEAD_LEN + encoded.len());
        entry.extend_from_slice(account.as_str().as_bytes());
        entry.push(u8::from(row.open_claim));
        entry.extend_from_slice(&u32::try_from(encoded.len()).unwrap_or(u32::MAX).to_be_bytes());
        entry.extend_from_slice(&encoded);
        entry
    }

    fn push(&mut self, account: AccountId, row: &Row) {
        self.0.extend_from_slice(&Self::entry(account, row));
        self.add_open(i64::from(row.open_claim));
    }

    /// Puts `row` (or, when none, nothing) where `account`'s row goes.
    /// The entries were checked when the bucket was read.
    pub(super) fn set(&mut self, account: AccountId, row: Option<&Row>) {
        let wanted = account.as_str().as_bytes();
        let mut at = COUNT_LEN;
        // Where the account's entry is, or would go, and whether it is there.
        let (start, end, was_open) = loop {
            match entry_at(&self.0, at).ok().flatten() {
                Some(e) if e.account < wanted => at = e.end,
                Some(e) if e.account == wanted => break (e.start, e.end, e.open),
                _ => break (at, at, false),
            }
        };
        let new = row.map(|row| Self::entry(account, row)).unwrap_or_default();
        let now_open = row.is_some_and(|r| r.open_claim);
        self.0.splice(start..end, new);
        self.add_open(i64::from(now_open) - i64::from(was_open));
    }
}

/// A bucket as stored: see [`Bucket`].
pub(super) fn encode_bucket(rows: &[Row]) -> Vec<u8> {
    Bucket::of_rows(rows).0
}

/// The bucket of `account`'s row in its tenant's rows.
pub(super) fn bucket_key(tenant: &TenantId, account: AccountId) -> Vec<u8> {
    let bucket = account.as_str().parse::<u64>().map_or(0, |n| n % BUCKETS) as u8;
    let mut key = tenant_prefix(tenant);
    key.push(bucket);
    key
}

/// The tenant of a bucket's key.
fn tenant_of(key: &[u8]) -> Option<TenantId> {
    let tenant = key.get(..key.len().checked_sub(2)?)?;
    (key[key.len() - 2] == 0).then_some(())?;
    std::str::from_utf8(tenant).ok()?.parse().ok()
}

/// Decodes a bucket's rows, each checked against its head.
pub(super) fn decode_bucket(key: &[u8], bytes: &[u8]) -> Result<Vec<Row>, StoreError> {
    if bytes.len() < COUNT_LEN {
        return Err(corrupt(key, "a bucket without its count"));
    }
    let mut rows = Vec::new();
    let mut at = COUNT_LEN;
    while let Some(entry) = entry_at(bytes, at).map_err(|e| corrupt(key, e))? {
        let row: Row = read("pipeline rows", key, entry.row)?;
        if row.account.as_str().as_bytes() != entry.account || row.open_claim != entry.open {
            return Err(corrupt(key, format!("the row of {} under the head of another", row.account)));
        }
        rows.push(row);
        at = entry.end;
    }
    Ok(rows)
}

/// A bucket's count of open claims, read from its first bytes alone.
fn bucket_open_claims(key: &[u8], bytes: &[u8]) -> Result<u32, StoreError> {
    match bytes.get(..COUNT_LEN) {
        Some(head) => Ok(u32::from_be_bytes([head[0], head[1], head[2], head[3]])),
        None => Err(corrupt(key, "a bucket without its count")),
    }
}

/// Puts `row` (or, when none, nothing) where `account`'s row goes in a
/// bucket kept in account order.
pub(super) fn set_row(rows: &mut Vec<Row>, account: AccountId, row: Option<Row>) {
    match (rows.binary_search_by(|r| r.account.cmp(&account)), row) {
        (Ok(i), Some(row)) => rows[i] = row,
        (Ok(i), None) => {
            rows.remove(i);
        }
        (Err(i), Some(row)) => rows.insert(i, row),
        (Err(_), None) => {}
    }
}

/// The rows of some claims, by bucket key: what the store should hold.
pub(super) type Buckets = BTreeMap<Vec<u8>, Vec<Row>>;

/// Adds `claim`'s row (if it has one) to `buckets`.
pub(super) fn add_claim(buckets: &mut Buckets, claim: &Account) {
    if let Some(row) = Row::of(claim) {
        set_row(buckets.entry(bucket_key(&claim.tenant, claim.id)).or_default(), claim.id, Some(row));
    }
}

/// The rows every claim stored should have. A record that does not decode
/// is passed over (and logged): the store still opens, and `check` names it.
fn rows_of_claims(store: &Store) -> Result<Buckets, StoreError> {
    let mut buckets = Buckets::new();
    for entry in store.accounts.iter() {
        let (key, value) = entry?;
        match read_stored(&key, &value) {
            Ok(claims) => claims.iter().for_each(|claim| add_claim(&mut buckets, &claim.account)),
            Err(e) => tracing::warn!(error = %e, "a record without its pipeline row: orglink check names it"),
        }
    }
    Ok(buckets)
}

/// A tenant whose rows differ from what its claims say (for the check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RowMismatch {
    pub tenant: String,
    /// The accounts whose rows differ, are missing or are extra.
    pub accounts: Vec<AccountId>,
}

impl Store {
    /// How many of `tenant`'s claims are open (`Row::open_claim`): the
    /// counts at the head of its buckets, not its rows.
    pub fn open_claims(&self, tenant: &TenantId) -> Result<usize, StoreError> {
        let mut open = 0;
        for entry in self.pipeline.scan_prefix(tenant_prefix(tenant)) {
            let (key, value) = entry?;
            open += bucket_open_claims(&key, &value)? as usize;
        }
        Ok(open)
    }

    /// Hands every row over with its tenant, or only `tenant`'s.
    pub fn for_each_pipeline_row(
        &self,
        tenant: Option<&TenantId>,
        mut each: impl FnMut(&TenantId, &Row),
    ) -> Result<usize, StoreError> {
        let entries = match tenant {
            Some(t) => self.pipeline.scan_prefix(tenant_prefix(t)),
            None => self.pipeline.iter(),
        };
        let mut count = 0;
        let mut current: Option<(Vec<u8>, TenantId)> = None;
        for entry in entries {
            let (key, value) = entry?;
            let prefix = &key[..key.len().saturating_sub(1)];
            let tenant = match &current {
                Some((p, t)) if p.as_slice() == prefix => t,
                _ => {
                    let t = tenant_of(&key).ok_or_else(|| StoreError::Corrupt {
                        what: "pipeline rows key",
                        key: super::show_key(&key),
                        source: codec::DecodeError::new("the key does not name a tenant and a bucket"),
                    })?;
                    &current.insert((prefix.to_vec(), t)).1
                }
            };
            for row in decode_bucket(&key, &value)? {
                each(tenant, &row);
                count += 1;
            }
        }
        Ok(count)
    }

    /// Makes the rows again from the claims when they were kept under
    /// another version of the rules (or never): at open, before anyone
    /// writes.
    pub(super) fn ensure_pipeline_rows(&self) -> Result<(), StoreError> {
        let current = rows_marker();
        if self.db.get(ROWS_VERSION_KEY)?.as_deref() == Some(&current[..]) {
            return Ok(());
        }
        let _quiet = self.quiet();
        self.pipeline.clear()?;
        let mut batch = sled::Batch::default();
        for (key, rows) in rows_of_claims(self)? {
            batch.insert(key, encode_bucket(&rows));
        }
        self.pipeline.apply_batch(batch)?;
        self.db.insert(ROWS_VERSION_KEY, &current)?;
        self.durable(Ok(()))
    }

    /// Each tenant whose stored rows differ from `expected`, what its
    /// claims say; a bucket that does not decode differs in each row.
    pub(super) fn pipeline_row_mismatches(&self, mut expected: Buckets) -> Result<Vec<RowMismatch>, StoreError> {
        let mut stored = Buckets::new();
        for entry in self.pipeline.iter() {
            let (key, value) = entry?;
            let mut rows = decode_bucket(&key, &value).unwrap_or_default();
            let open = rows.iter().filter(|r| r.open_claim).count();
            if bucket_open_claims(&key, &value).ok().map(|n| n as usize) != Some(open) {
                // A count that is not its rows': the bucket differs in each row.
                rows.clear();
            }
            stored.insert(key.to_vec(), rows);
        }
        let mut by_tenant: BTreeMap<String, Vec<AccountId>> = BTreeMap::new();
        let keys: std::collections::BTreeSet<Vec<u8>> = expected.keys().chain(stored.keys()).cloned().collect();
        for key in keys {
            let want = expected.remove(&key).unwrap_or_default();
            let have = stored.remove(&key).unwrap_or_default();
            if want == have {
                continue;
            }
            let mut accounts: Vec<AccountId> = want
                .iter()
                .filter(|r| !have.contains(r))
                .chain(have.iter().filter(|r| !want.contains(r)))
                .map(|r| r.account)
                .collect();
            accounts.sort();
            accounts.dedup();
            let tenant = match tenant_of(&key) {
                Some(t) => t.to_string(),
                None => super::show_key(&key),
            };
            by_tenant.entry(tenant).or_default().extend(accounts);
        }
        Ok(by_tenant.into_iter().map(|(tenant, accounts)| RowMismatch { tenant, accounts }).collect())
    }
}

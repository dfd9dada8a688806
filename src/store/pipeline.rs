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
/// How a bucket is written: 2 puts its count of open claims before its
/// rows (1 was the rows alone).
const BUCKET_LAYOUT: u32 = 2;

/// What the rows marker holds: the rules' version and the layout's.
fn rows_marker() -> [u8; 8] {
    let mut marker = [0; 8];
    marker[..4].copy_from_slice(&ROWS_VERSION.to_be_bytes());
    marker[4..].copy_from_slice(&BUCKET_LAYOUT.to_be_bytes());
    marker
}

/// The open claims among `rows` (`Row::open_claim`).
fn open_claims(rows: &[Row]) -> u32 {
    u32::try_from(rows.iter().filter(|r| r.open_claim).count()).unwrap_or(u32::MAX)
}

/// A bucket as stored: its count of open claims, then its rows.
pub(super) fn encode_bucket(rows: &[Row]) -> Vec<u8> {
    codec::encode(&(open_claims(rows), rows))
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

/// Decodes a bucket's rows.
pub(super) fn decode_bucket(key: &[u8], bytes: &[u8]) -> Result<Vec<Row>, StoreError> {
    read::<(u32, Vec<Row>)>("pipeline rows", key, bytes).map(|(_, rows)| rows)
}

/// A bucket's count of open claims, read from its first bytes alone.
fn bucket_open_claims(key: &[u8], bytes: &[u8]) -> Result<u32, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt {
        what: "pipeline rows",
        key: super::show_key(key),
        source: codec::DecodeError::new(e),
    };
    let mut rest = bytes;
    match rmp::decode::read_array_len(&mut rest) {
        Ok(2) => rmp::decode::read_int(&mut rest).map_err(|e| corrupt(e.to_string())),
        Ok(n) => Err(corrupt(format!("a bucket of {n} parts, not its count and its rows"))),
        Err(e) => Err(corrupt(e.to_string())),
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
            if bucket_open_claims(&key, &value).ok() != Some(open_claims(&rows)) {
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

//! What the quotas need kept across a restart: each tenant's count of the
//! day (tickets), and the day operations last heard of each tenant over
//! each quota. One record per tenant and quota, overwritten: nothing grows
//! with time. The per-minute counts are the app's, in memory.

use sled::Transactional;
use sled::transaction::TransactionError;
use time::OffsetDateTime;

use super::{OutboxItem, Store, StoreError, codec, never_aborts, read};
use crate::domain::quota::{DayCount, Quota, UtcDay};
use crate::domain::{Notice, TenantId};

fn key(kind: &str, quota: Quota, tenant: &TenantId) -> Vec<u8> {
    // Tenant IDs never hold NUL.
    [kind.as_bytes(), b"\0", quota.code().as_bytes(), b"\0", tenant.as_str().as_bytes()].concat()
}

/// Where `tenant`'s count of `quota` is kept.
pub(super) fn count_key(quota: Quota, tenant: &TenantId) -> Vec<u8> {
    key("count", quota, tenant)
}

fn told_key(quota: Quota, tenant: &TenantId) -> Vec<u8> {
    key("told", quota, tenant)
}

impl Store {
    /// `tenant`'s count of `quota`'s uses, as last written (with the change
    /// that used one).
    pub fn quota_count(&self, tenant: &TenantId, quota: Quota) -> Result<Option<DayCount>, StoreError> {
        let key = count_key(quota, tenant);
        self.quotas.get(&key)?.map(|v| read("quota count", &key, &v)).transpose()
    }

    /// Queues `notice` of `tenant` over `quota` for operations, unless
    /// `tell` says no given the day they last heard of it; the day of `at`
    /// is then remembered, in the same transaction. Returns whether it was
    /// queued.
    pub fn notice_quota_exceeded(
        &self,
        tenant: &TenantId,
        quota: Quota,
        notice: &Notice,
        at: OffsetDateTime,
        tell: impl Fn(Option<UtcDay>) -> bool,
    ) -> Result<bool, StoreError> {
        let _writing = self.writing();
        let key = told_key(quota, tenant);
        let result: Result<Result<bool, StoreError>, TransactionError<()>> =
            (&self.quotas, &self.outbox, &self.outbox_index, &self.outbox_counts).transaction(
                |(quotas, items, index, counts)| {
                    let last = match quotas.get(&key)? {
                        Some(v) => match read::<UtcDay>("quota notice day", &key, &v) {
                            Ok(day) => Some(day),
                            Err(e) => return Ok(Err(e)),
                        },
                        None => None,
                    };
                    if !tell(last) {
                        return Ok(Ok(false));
                    }
                    quotas.insert(key.as_slice(), codec::encode(&UtcDay::of(at)))?;
                    let outbox = super::outbox::OutboxTx { items, index, counts };
                    outbox
                        .queue(|id| OutboxItem::for_tenant(id, format!("o{id}"), tenant.clone(), notice.clone(), at))?;
                    Ok(Ok(true))
                },
            );
        let queued = never_aborts(result)??;
        if queued { self.durable(Ok(true)) } else { Ok(false) }
    }
}

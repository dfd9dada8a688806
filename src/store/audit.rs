//! Who changed an account, when, and what it caused.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Store, StoreError, read};
use crate::domain::{AccountId, Event, TenantId};

/// Who changed what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    #[serde(with = "crate::domain::instant")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub account: AccountId,
    pub action: String,
    pub events: Vec<Event>,
    /// The tenant whose claim changed (`None` in entries written before
    /// claims: the account's tenant then).
    #[serde(default)]
    pub tenant: Option<TenantId>,
}

/// (account, sequence): an account's entries together, oldest first.
pub(super) fn key(account: AccountId, seq: u64) -> Vec<u8> {
    let mut key = account.as_bytes().to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

impl Store {
    /// An account's audit log, oldest first.
    pub fn audit_log(&self, id: AccountId) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit
            .scan_prefix(id.as_bytes())
            .map(|e| {
                let (k, v) = e?;
                read("audit entry", &k, &v)
            })
            .collect()
    }
}

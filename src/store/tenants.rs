//! Each tenant's settings, with an audit log of their changes.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::TransactionError;
use time::OffsetDateTime;

use super::accounts::tenant_prefix;
use super::{Store, StoreError, codec, never_aborts, read};
use crate::domain::{TenantId, TenantSettings};

/// A change of a tenant's settings, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantAuditEntry {
    #[serde(with = "crate::domain::instant")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub tenant: TenantId,
    pub settings: TenantSettings,
}

impl Store {
    pub fn tenant_settings(&self, tenant: &TenantId) -> Result<TenantSettings, StoreError> {
        let key = tenant.as_str().as_bytes();
        Ok(self.tenants.get(key)?.map(|v| read("tenant", key, &v)).transpose()?.unwrap_or_default())
    }

    /// Stores a tenant's settings with an audit entry.
    pub fn set_tenant_settings(&self, entry: &TenantAuditEntry) -> Result<(), StoreError> {
        let result: Result<(), TransactionError<()>> =
            (&self.tenants, &self.tenant_audit).transaction(|(tenants, audit)| {
                tenants.insert(entry.tenant.as_str(), codec::encode(&entry.settings))?;
                let seq = audit.generate_id()?;
                let mut key = tenant_prefix(&entry.tenant);
                key.extend_from_slice(&seq.to_be_bytes());
                audit.insert(key, codec::encode(entry))?;
                Ok(())
            });
        self.durable(never_aborts(result))
    }
}

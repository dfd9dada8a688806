//! Each tenant's settings and status, with an audit log of their changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use time::OffsetDateTime;

use super::accounts::tenant_prefix;
use super::{OutboxItem, Store, StoreError, codec, never_aborts, read, show_key};
use crate::domain::{Event, Notice, TenantId, TenantSettings, TenantStatus};

/// A change of a tenant's settings or status, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantAuditEntry {
    #[serde(with = "crate::domain::instant")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub tenant: TenantId,
    /// The settings after the change.
    pub settings: TenantSettings,
    /// The status the change set; `None` for a change of settings (and for
    /// every entry written before schema 3).
    #[serde(default)]
    pub status: Option<TenantStatus>,
    /// What the change caused.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// A tenant as `tenant list` shows it: known by its status, its settings or
/// its accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub tenant: TenantId,
    /// `None`: never recorded (a tenant the CLI registered accounts for).
    pub status: Option<TenantStatus>,
    pub accounts: usize,
}

impl Store {
    pub fn tenant_settings(&self, tenant: &TenantId) -> Result<TenantSettings, StoreError> {
        let key = tenant.as_str().as_bytes();
        Ok(self.tenants.get(key)?.map(|v| read("tenant", key, &v)).transpose()?.unwrap_or_default())
    }

    /// Stores a tenant's settings with an audit entry.
    pub fn set_tenant_settings(&self, entry: &TenantAuditEntry) -> Result<(), StoreError> {
        let _writing = self.writing();
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

    /// A tenant's status; `None` when it was never recorded.
    pub fn tenant_status(&self, tenant: &TenantId) -> Result<Option<TenantStatus>, StoreError> {
        let key = tenant.as_str().as_bytes();
        self.tenant_status.get(key)?.map(|v| read("tenant status", key, &v)).transpose()
    }

    /// Every recorded tenant status.
    pub fn tenant_statuses(&self) -> Result<Vec<(TenantId, TenantStatus)>, StoreError> {
        self.tenant_status
            .iter()
            .map(|e| {
                let (k, v) = e?;
                Ok((tenant_of(&k)?, read("tenant status", &k, &v)?))
            })
            .collect()
    }

    /// Records the status `entry` sets, with the entry and an outbox item
    /// per notice, in one transaction, if the tenant's status is still
    /// `expected`; otherwise writes nothing and returns the status found
    /// (another change came first).
    pub fn change_tenant_status(
        &self,
        expected: Option<&TenantStatus>,
        entry: &TenantAuditEntry,
        notices: &[Notice],
    ) -> Result<Result<(), Option<TenantStatus>>, StoreError> {
        let _writing = self.writing();
        let Some(status) = &entry.status else {
            return Err(StoreError::Corrupt {
                what: "tenant audit entry",
                key: entry.tenant.to_string(),
                source: codec::DecodeError::new("a change of status without the status"),
            });
        };
        let key = entry.tenant.as_str().as_bytes();
        let result = (&self.tenant_status, &self.tenant_audit, &self.outbox, &self.outbox_index, &self.outbox_counts)
            .transaction(|(statuses, audit, items, index, counts)| {
                let found = match statuses.get(key)? {
                    Some(bytes) => match read::<TenantStatus>("tenant status", key, &bytes) {
                        Ok(found) => Some(found),
                        Err(e) => return Err(ConflictableTransactionError::Abort(Err(e))),
                    },
                    None => None,
                };
                if found.as_ref() != expected {
                    return Err(ConflictableTransactionError::Abort(Ok(found)));
                }
                statuses.insert(key, codec::encode(status))?;
                let seq = audit.generate_id()?;
                let mut audit_key = tenant_prefix(&entry.tenant);
                audit_key.extend_from_slice(&seq.to_be_bytes());
                audit.insert(audit_key, codec::encode(entry))?;
                let outbox = super::outbox::OutboxTx { items, index, counts };
                for notice in notices {
                    outbox.queue(|id| {
                        OutboxItem::for_tenant(id, format!("o{id}"), entry.tenant.clone(), notice.clone(), entry.at)
                    })?;
                }
                Ok(())
            });
        match result {
            Ok(()) => self.durable(Ok(Ok(()))),
            Err(TransactionError::Abort(Ok(found))) => Ok(Err(found)),
            Err(TransactionError::Abort(Err(e))) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// A tenant's audit log, oldest first.
    pub fn tenant_audit_log(&self, tenant: &TenantId) -> Result<Vec<TenantAuditEntry>, StoreError> {
        self.tenant_audit
            .scan_prefix(tenant_prefix(tenant))
            .map(|e| {
                let (k, v) = e?;
                read("tenant audit entry", &k, &v)
            })
            .collect()
    }

    /// Every tenant orglink knows of (by its status, its settings or its
    /// accounts), in tenant order, with its status and how many accounts it
    /// has.
    pub fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        let mut known: BTreeMap<TenantId, TenantRecord> = BTreeMap::new();
        fn record(known: &mut BTreeMap<TenantId, TenantRecord>, tenant: TenantId) -> &mut TenantRecord {
            known.entry(tenant.clone()).or_insert(TenantRecord { tenant, status: None, accounts: 0 })
        }
        for key in self.tenants.iter().keys() {
            record(&mut known, tenant_of(&key?)?);
        }
        for (tenant, status) in self.tenant_statuses()? {
            record(&mut known, tenant).status = Some(status);
        }
        for key in self.by_tenant.iter().keys() {
            let key = key?;
            // (tenant, NUL, account): tenant IDs never hold NUL.
            let end = key.iter().position(|b| *b == 0).unwrap_or(key.len());
            record(&mut known, tenant_of(&key[..end])?).accounts += 1;
        }
        Ok(known.into_values().collect())
    }
}

/// A tenant ID stored as a key.
pub(super) fn tenant_of(key: &[u8]) -> Result<TenantId, StoreError> {
    std::str::from_utf8(key).ok().and_then(|k| k.parse().ok()).ok_or_else(|| StoreError::Corrupt {
        what: "tenant key",
        key: show_key(key),
        source: codec::DecodeError::new("not a tenant ID"),
    })
}

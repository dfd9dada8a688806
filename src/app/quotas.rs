//! Quotas per tenant, as the handlers apply them: who is bound by them,
//! the per-minute count of role checks, and a refusal (operations told once
//! a day per tenant and quota). The rules are `domain::quota`'s.

use time::OffsetDateTime;

use super::{Actor, App, AppError, Scope, UserError};
use crate::domain::quota::{self, Exceeded, Quota};
use crate::domain::{AccountId, Event, TenantId, effects};

/// The tenant whose quotas bind what `actor` does: a reseller's server.
/// Operations (the CLI, the operations role, orglink's own jobs) are bound
/// by none: they are the distributor, whose resources the quotas share out.
pub(super) fn bound_tenant(actor: &Actor) -> Option<&TenantId> {
    match (&actor.scope, actor.rights.ops) {
        (Scope::Tenant(tenant), false) => Some(tenant),
        (Scope::Tenant(_), true) | (Scope::Ops, _) => None,
    }
}

impl App {
    /// Counts a check of `tenant`'s claim on `account` now, unless the
    /// per-minute quota refuses it (then nothing is counted, and operations
    /// hear of it once that day).
    pub(super) async fn count_verification(&self, account: AccountId, tenant: &TenantId) -> Result<(), AppError> {
        let now = self.clock.now();
        let limit = self.settings.quotas.verifications_per_minute;
        let counted = self.recent_checks.lock().unwrap_or_else(|e| e.into_inner()).record_if(
            (account, tenant.clone()),
            now,
            |recent| quota::verification(limit, recent, now),
        );
        match counted {
            Ok(()) => Ok(()),
            Err(exceeded) => {
                let tenant = tenant.clone();
                Err(self.off_thread(move |app| app.quota_refused(account, &tenant, exceeded, now)).await)
            }
        }
    }

    /// What the user hears when `tenant` is over a quota with a command
    /// about `account`; operations hear of it once a UTC day per tenant and
    /// quota. Nothing else is written.
    pub(super) fn quota_refused(
        &self,
        account: AccountId,
        tenant: &TenantId,
        exceeded: Exceeded,
        now: OffsetDateTime,
    ) -> AppError {
        self.tell_operations_of_quota(account, tenant, exceeded, now);
        let Exceeded { quota, limit, resets_at } = exceeded;
        UserError::QuotaExceeded { quota, limit, resets_at }.into()
    }

    /// Operations hear that `tenant` is over a quota with a command about
    /// `account`, once a UTC day per tenant and quota (logged each time).
    pub(super) fn tell_operations_of_quota(
        &self,
        account: AccountId,
        tenant: &TenantId,
        exceeded: Exceeded,
        now: OffsetDateTime,
    ) {
        let Exceeded { quota, limit, .. } = exceeded;
        tracing::info!(%tenant, %account, quota = quota.code(), limit, "refused: over a quota");
        let event = Event::QuotaExceeded { account, tenant: tenant.clone(), quota, limit };
        if let Some(notice) = effects::notice(&event) {
            let told =
                self.store.notice_quota_exceeded(tenant, quota, &notice, now, |last| quota::tell_operations(last, now));
            if let Err(e) = told {
                // The refusal stands; the next one tries to tell them again.
                tracing::error!(error = %e, %tenant, quota = quota.code(), "operations could not be told of a quota");
            }
        }
    }

    /// How many claims `tenant` has open: what the open claims quota counts,
    /// from the counts the store keeps with the tenant's pipeline rows (a
    /// reseller with thousands of claims registers one more without any of
    /// them read).
    pub(super) fn open_claims(&self, tenant: &TenantId) -> Result<usize, AppError> {
        Ok(self.store.open_claims(tenant)?)
    }

    /// The limit of `quota`, as configured.
    pub(super) fn limit(&self, quota: Quota) -> u32 {
        self.settings.quotas.limit(quota)
    }
}

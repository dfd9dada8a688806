//! Tenants: the door every tenant's command passes ([`App::admit`]: the
//! distributor approves the servers it serves), what operations decide
//! about a tenant, the list of tenants, and a tenant's own settings (its
//! notification channel, language and the role allowed to run account
//! commands).

use super::{
    Actor, App, AppError, Message, Reply, Scope, TenantDecisionView, TenantListView, TenantSettingsView, TenantSummary,
    Tone, UserError,
};
use crate::domain::{
    Admission, ChatId, Decided, Effects, Event, Lang, Refusal, TenantDecision, TenantId, TenantState, TenantStatus,
    effects,
};
use crate::store::TenantAuditEntry;

/// How many times a change of a tenant's status is decided again when
/// another one came first.
const RETRIES: usize = 8;

impl App {
    /// The door: a tenant's command runs only when the distributor serves
    /// the tenant. A server never seen is recorded (pending, or approved
    /// under the open policy) with its audit entry and, when pending, one
    /// notice to operations; a pending, denied or suspended tenant is told
    /// why, and nothing else happens. Operations (the CLI, the jobs) and
    /// the operations server pass.
    pub(super) fn admit(&self, actor: &Actor) -> Result<(), AppError> {
        let Scope::Tenant(tenant) = &actor.scope else { return Ok(()) };
        if self.settings.operations_server.as_ref() == Some(tenant) {
            return Ok(());
        }
        for _ in 0..RETRIES {
            let current = self.store.tenant_status(tenant)?;
            let now = self.clock.now();
            match Admission::of(tenant, current.as_ref(), self.settings.tenant_policy, actor.chat_user(), now) {
                Admission::Admitted => return Ok(()),
                Admission::Refused(why) => return Err(refusal(why).into()),
                Admission::Enrol { status, events } => {
                    if self.record_status(actor, tenant, current.as_ref(), status, events)? {
                        tracing::info!(%tenant, state = status.state.code(), "a new tenant");
                        return match status.state {
                            TenantState::Approved => Ok(()),
                            TenantState::Pending | TenantState::Denied | TenantState::Suspended => {
                                Err(UserError::TenantPending.into())
                            }
                        };
                    }
                }
            }
        }
        Err(anyhow::anyhow!("the status of tenant {tenant} kept changing").into())
    }

    /// Whether the door would let the actor's commands through, without
    /// recording anything (autocomplete must not reveal what a tenant that
    /// is not served has, nor enrol it).
    pub(super) fn admits(&self, actor: &Actor) -> Result<bool, AppError> {
        let Scope::Tenant(tenant) = &actor.scope else { return Ok(true) };
        if self.settings.operations_server.as_ref() == Some(tenant) {
            return Ok(true);
        }
        let current = self.store.tenant_status(tenant)?;
        Ok(match Admission::of(tenant, current.as_ref(), self.settings.tenant_policy, None, self.clock.now()) {
            Admission::Admitted => true,
            Admission::Enrol { status, .. } => status.state == TenantState::Approved,
            Admission::Refused(_) => false,
        })
    }

    /// Records `status` of `tenant`, with its audit entry and the notices
    /// its events cause, if its status is still `current`; `false` when
    /// another change came first.
    fn record_status(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        current: Option<&TenantStatus>,
        status: TenantStatus,
        events: Vec<Event>,
    ) -> Result<bool, AppError> {
        let settings = self.store.tenant_settings(tenant)?;
        let notices = Effects::of_tenant(&events, &settings);
        let entry = TenantAuditEntry {
            at: status.since,
            actor: actor.id.clone(),
            tenant: tenant.clone(),
            settings,
            status: Some(status),
            events,
        };
        Ok(self.store.change_tenant_status(current, &entry, &notices)?.is_ok())
    }

    /// Operations approve, deny, suspend or resume a tenant.
    pub(super) fn decide_tenant(
        &self,
        actor: &Actor,
        tenant: TenantId,
        decision: TenantDecision,
    ) -> Result<Reply, AppError> {
        if self.settings.operations_server.as_ref() == Some(&tenant) {
            return Err(UserError::OperationsServer { tenant }.into());
        }
        for _ in 0..RETRIES {
            let current = self.store.tenant_status(&tenant)?;
            let decided = decision
                .apply(&tenant, current.as_ref(), self.clock.now())
                .map_err(|e| UserError::TenantDecision { tenant: tenant.clone(), from: e.from, decision })?;
            let (status, changed) = match decided {
                Decided::Unchanged(status) => (status, false),
                Decided::Changed { status, events } => {
                    if !self.record_status(actor, &tenant, current.as_ref(), status, events)? {
                        continue;
                    }
                    tracing::info!(%tenant, decision = decision.code(), "tenant decided");
                    (status, true)
                }
            };
            let view = TenantDecisionView {
                tenant: tenant.to_string(),
                decision,
                state: status.state,
                since: status.since,
                changed,
                by_user: actor.chat_user(),
            };
            let tone = if changed { Tone::Success } else { Tone::Info };
            return Ok(Reply::new(tone, vec![Message::TenantDecided(view.clone())]).with_data(view));
        }
        Err(anyhow::anyhow!("the status of tenant {tenant} kept changing").into())
    }

    /// Every tenant orglink knows of, with its status and its accounts.
    pub(super) fn list_tenants(&self) -> Result<Reply, AppError> {
        let tenants = self
            .store
            .tenants()?
            .into_iter()
            .map(|t| TenantSummary {
                operations: self.settings.operations_server.as_ref() == Some(&t.tenant),
                tenant: t.tenant.to_string(),
                state: t.status.map(|s| s.state),
                since: t.status.map(|s| s.since),
                accounts: t.accounts,
            })
            .collect();
        let view = TenantListView { tenants };
        Ok(Reply::new(Tone::Info, vec![Message::TenantList(view.clone())]).with_data(view))
    }

    pub(super) fn configure(
        &self,
        actor: &Actor,
        channel: Option<ChatId>,
        language: Option<Lang>,
        account_role: Option<ChatId>,
    ) -> Result<Reply, AppError> {
        let Scope::Tenant(tenant) = &actor.scope else {
            return Err(anyhow::anyhow!("tenant settings are changed from the tenant's server").into());
        };
        let mut settings = self.store.tenant_settings(tenant)?;
        let mut replayed = 0;
        if channel.is_some() || language.is_some() || account_role.is_some() {
            settings.channel = channel.or(settings.channel);
            settings.language = language.or(settings.language);
            settings.account_role = account_role.or(settings.account_role);
            self.store.set_tenant_settings(&TenantAuditEntry {
                at: self.clock.now(),
                actor: actor.id.clone(),
                tenant: tenant.clone(),
                settings: settings.clone(),
                status: None,
                events: Vec::new(),
            })?;
            if channel.is_some() {
                // What waited for a channel goes to this one.
                replayed = self.store.requeue_dead_letters(|dead| {
                    dead.item.tenant == *tenant && effects::replay_when_channel_set(&dead.item.notice(), &dead.reason)
                })?;
            }
        }
        let view = TenantSettingsView { tenant: tenant.to_string(), settings, replayed };
        Ok(Reply::new(Tone::Success, vec![Message::TenantSettings(view.clone())]).with_data(view))
    }
}

/// What a tenant that is not served is told.
fn refusal(why: Refusal) -> UserError {
    match why {
        Refusal::Pending => UserError::TenantPending,
        Refusal::Denied => UserError::TenantDenied,
        Refusal::Suspended => UserError::TenantSuspended,
    }
}

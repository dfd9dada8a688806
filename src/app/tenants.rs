//! A tenant's own settings: its notification channel, language and the
//! role allowed to run account commands.

use super::{Actor, App, AppError, Message, Reply, Scope, TenantSettingsView, Tone};
use crate::domain::{ChatId, Lang, effects};
use crate::store::TenantAuditEntry;

impl App {
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

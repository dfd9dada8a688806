//! Registering accounts and everything read or set on them by the tenant:
//! the list, the checklist, the external ID, the instructions, the support
//! plan group and the price book.

use anyhow::Context as _;

use super::{
    AccountSummary, AccountView, Action, Actor, App, AppError, InstructionsFormat, InstructionsView, ListView, Message,
    Offer, Permission, Reply, Retry, Scope, Tone, UserError,
};
use crate::domain::{
    Account, AccountId, AccountKind, ExternalId, Lang, LinkState, NewAccount, PriceBookChoice, SupportPlanGroup,
    TenantId,
};
use crate::store::{Audit, By, InsertConflict};

impl App {
    pub(super) fn add_account(&self, actor: &Actor, new: NewAccount) -> Result<Reply, AppError> {
        if let Scope::Tenant(tenant) = &actor.scope
            && *tenant != new.tenant
        {
            return Err(anyhow::anyhow!("a tenant may only register accounts for itself").into());
        }
        let id = new.id;
        let kind = new.kind;
        let now = self.clock.now();
        // A clash of 100-bit random IDs is next to impossible; draw again if
        // it ever happens rather than fail.
        for _ in 0..8 {
            let external_id = ExternalId::generate(&self.settings.external_id_prefix);
            let (mut account, events) = Account::register(new.clone(), external_id, now)
                .map_err(|_| UserError::ManagementAccount { account: id })?;
            if self.settings.probe.enabled {
                account.restart_probe(&self.settings.probe.plan, now);
            }
            let by = By { actor: &actor.id, action: "account_add", at: now, audit: Audit::Always };
            let change = self.change_of(&account, events, now);
            match self.store.insert_account(&account, &by, &change).context("storing a new account")? {
                Ok(()) => {
                    let view = AccountView::from(account.clone());
                    let mut messages = vec![Message::Registered(view.clone())];
                    let mut tone = Tone::Success;
                    if kind == AccountKind::Member {
                        messages.push(Message::MemberAccountWarning(view.clone()));
                        tone = Tone::Warning;
                    }
                    messages.push(Message::Instructions(self.instructions(&account)));
                    return Ok(Reply::new(tone, messages).with_data(view).with_offers(Offer::instructions(id)));
                }
                Err(InsertConflict::AccountExists { same_tenant: true }) => {
                    return Err(UserError::AlreadyRegistered { account: id }.into());
                }
                Err(InsertConflict::AccountExists { same_tenant: false }) => {
                    return Err(UserError::RegisteredElsewhere { account: id }.into());
                }
                Err(InsertConflict::ExternalIdTaken) => continue,
            }
        }
        Err(anyhow::anyhow!("could not draw an unused external ID").into())
    }

    pub(super) fn list_accounts(&self, actor: &Actor, tenant: Option<TenantId>) -> Result<Reply, AppError> {
        let tenant = match &actor.scope {
            Scope::Tenant(own) => Some(own.clone()),
            Scope::Ops => tenant,
        };
        let accounts = match &tenant {
            Some(t) => self.store.tenant_accounts(t)?,
            None => self.store.all_accounts()?,
        };
        let view = ListView {
            tenant: tenant.map(|t| t.to_string()),
            accounts: accounts.iter().map(AccountSummary::from).collect(),
        };
        Ok(Reply::new(Tone::Info, vec![Message::List(view.clone())]).with_data(view))
    }

    pub(super) fn show_account(&self, actor: &Actor, account: AccountId) -> Result<Reply, AppError> {
        let view = AccountView::from(self.load(actor, account)?);
        Ok(Reply::new(Tone::Info, vec![Message::Status(view.clone())]).with_data(view))
    }

    pub(super) fn later(&self, actor: &Actor, account: AccountId) -> Result<Reply, AppError> {
        let view = AccountView::from(self.load(actor, account)?);
        Ok(Reply::new(Tone::Info, vec![Message::Later(view)]))
    }

    pub(super) fn rotate_external_id(&self, actor: &Actor, account: AccountId) -> Result<Reply, AppError> {
        for _ in 0..8 {
            let external_id = ExternalId::generate(&self.settings.external_id_prefix);
            let result = self.update(actor, account, "rotate_external_id", |a, now| {
                let state = a.state;
                let events = a.rotate_external_id(external_id.clone(), now).map_err(|_| UserError::NotNow {
                    account,
                    state,
                    action: Action::RotateExternalId,
                })?;
                if self.settings.probe.enabled {
                    a.restart_probe(&self.settings.probe.plan, now);
                }
                Ok(events)
            });
            match result {
                Ok((account, _)) => {
                    let id = account.id;
                    let instructions = self.instructions(&account);
                    let view = AccountView::from(account);
                    return Ok(Reply::new(
                        Tone::Success,
                        vec![Message::ExternalIdRotated(view.clone()), Message::Instructions(instructions)],
                    )
                    .with_data(view)
                    .with_offers(Offer::instructions(id)));
                }
                Err(Retry::ExternalIdTaken) => continue,
                Err(Retry::Failed(e)) => return Err(e),
            }
        }
        Err(anyhow::anyhow!("could not draw an unused external ID").into())
    }

    pub(super) fn show_instructions(
        &self,
        actor: &Actor,
        account: AccountId,
        format: InstructionsFormat,
    ) -> Result<Reply, AppError> {
        let mut account = self.load(actor, account)?;
        if self.settings.probe.enabled && account.state == LinkState::Registered {
            // The role may appear soon: look for it often again.
            let plan = &self.settings.probe.plan;
            (account, _) = self.update(actor, account.id, "instructions_shown", |a, now| {
                a.restart_probe(plan, now);
                Ok(vec![])
            })?;
        }
        let view = self.instructions(&account);
        let message = match format {
            InstructionsFormat::Text => Message::Instructions(view),
            InstructionsFormat::CloudFormation => Message::CloudFormation(view),
            InstructionsFormat::Cli => Message::AwsCli(view),
        };
        let offers = match format {
            InstructionsFormat::Text => Offer::instructions(account.id),
            InstructionsFormat::CloudFormation | InstructionsFormat::Cli => {
                vec![Offer::RoleCreated(account.id), Offer::Later(account.id)]
            }
        };
        Ok(Reply::new(Tone::Info, vec![message]).with_offers(offers))
    }

    pub(super) fn set_support_plan(
        &self,
        actor: &Actor,
        account: AccountId,
        group: SupportPlanGroup,
    ) -> Result<Reply, AppError> {
        let (account, _) =
            self.update(actor, account, "support_plan", |a, now| Ok(a.set_support_plan_group(group, now)))?;
        let tone = if account.support_plan_mismatch() { Tone::Warning } else { Tone::Success };
        let view = AccountView::from(account);
        Ok(Reply::new(tone, vec![Message::SupportPlanSet(view.clone())]).with_data(view))
    }

    pub(super) fn set_price_book(
        &self,
        actor: &Actor,
        account: AccountId,
        price_book: PriceBookChoice,
    ) -> Result<Reply, AppError> {
        let (account, _) =
            self.update(actor, account, "price_book", |a, now| Ok(a.set_price_book(price_book.clone(), now)))?;
        let view = AccountView::from(account);
        Ok(Reply::new(Tone::Success, vec![Message::PriceBookSet(view.clone())]).with_data(view))
    }

    /// The actor's accounts whose ID starts with the digits of `partial` or
    /// whose customer name contains it: for autocomplete, at most `limit`.
    pub fn suggest_accounts(
        &self,
        actor: &Actor,
        partial: &str,
        limit: usize,
    ) -> Result<Vec<AccountSummary>, AppError> {
        if !self.admits(actor)? {
            return Ok(Vec::new());
        }
        self.authorize(actor, Permission::AccountRole)?;
        let accounts = match &actor.scope {
            Scope::Tenant(tenant) => self.store.tenant_accounts(tenant)?,
            Scope::Ops => self.store.all_accounts()?,
        };
        let digits: String = partial.chars().filter(char::is_ascii_digit).collect();
        let words = partial.trim().to_lowercase();
        Ok(accounts
            .iter()
            .filter(|a| {
                words.is_empty()
                    || (!digits.is_empty() && a.id.as_str().starts_with(&digits))
                    || a.customer.as_str().to_lowercase().contains(&words)
            })
            .take(limit)
            .map(AccountSummary::from)
            .collect())
    }

    /// The language of a tenant's settings, if it chose one.
    pub fn tenant_language(&self, tenant: &TenantId) -> Result<Option<Lang>, AppError> {
        Ok(self.store.tenant_settings(tenant)?.language)
    }

    pub(super) fn instructions(&self, account: &Account) -> InstructionsView {
        InstructionsView::new(account, &self.settings)
    }
}

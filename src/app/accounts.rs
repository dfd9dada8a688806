//! Registering accounts and everything read or set on them by the tenant:
//! the list, the checklist, the external ID, the instructions, the support
//! plan group and the price book.

use super::{
    AccountSummary, AccountView, Action, Actor, App, AppError, InstructionsFormat, InstructionsView, ListFormat,
    ListView, Message, Offer, PendingTicket, Permission, Reply, Retry, Scope, Tone, UserError, quotas,
};
use crate::domain::Event;
use crate::domain::claims::{self, ClaimRefusal};
use crate::domain::quota::{self, Exceeded, Quota};
use crate::domain::{
    Account, AccountId, AccountKind, ExternalId, Lang, LinkState, ListFilter, NewAccount, PriceBookChoice,
    SupportPlanGroup, TenantId,
};
use crate::store::{Audit, By, UpdateError};

/// Why a registration was refused: the account's claims, or the tenant's
/// quota.
enum Refusal {
    Claim(ClaimRefusal),
    Quota(Exceeded),
}

impl App {
    pub(super) fn add_account(&self, actor: &Actor, new: NewAccount) -> Result<Reply, AppError> {
        if let Scope::Tenant(tenant) = &actor.scope
            && *tenant != new.tenant
        {
            return Err(anyhow::anyhow!("a tenant may only register accounts for itself").into());
        }
        let (id, tenant) = (new.id, new.tenant.clone());
        let kind = new.kind;
        // A reseller's registration counts against its open claims: counted
        // and written under the gate, so two at once cannot both take the
        // last room.
        let bound = quotas::bound_tenant(actor).is_some();
        let _gate = bound.then(|| self.quota_gate.lock().unwrap_or_else(|e| e.into_inner()));
        let open = if bound { Some(self.open_claims(&tenant)?) } else { None };
        let limit = self.limit(Quota::OpenClaims);
        let now = self.clock.now();
        let by = By { actor: &actor.id, action: "account_add", at: now, audit: Audit::Always };
        // A clash of 100-bit random IDs is next to impossible; draw again if
        // it ever happens rather than fail.
        for _ in 0..8 {
            let external_id = ExternalId::generate(&self.settings.external_id_prefix);
            let (mut account, events) = Account::register(new.clone(), external_id, now)
                .map_err(|_| UserError::ManagementAccount { account: id })?;
            if self.settings.probe.enabled {
                account.restart_probe(&self.settings.probe.plan, now);
            }
            let change = self.change_of(&account, events, now);
            let added = self.store.change_claims(id, &by, |claims| {
                // The account's own rules first: they say more than a quota.
                claims::may_claim(claims, &tenant).map_err(Refusal::Claim)?;
                if let Some(open) = open {
                    quota::open_claims(limit, open, 1).map_err(Refusal::Quota)?;
                }
                // A claim of this tenant's that closed makes room for this one.
                claims.retain(|c| c.tenant != tenant);
                claims.push(account.clone());
                Ok(vec![(tenant.clone(), change.clone())])
            });
            match added {
                Ok(_) => {
                    let view = AccountView::from(account.clone());
                    let mut messages = vec![Message::Registered(view.clone())];
                    let mut tone = Tone::Success;
                    if kind == AccountKind::Member {
                        messages.push(Message::MemberAccountWarning(view.clone()));
                        tone = Tone::Warning;
                    }
                    let instructions = self.instructions(&account);
                    let offers = Offer::instructions(&instructions);
                    messages.push(Message::Instructions(instructions));
                    return Ok(Reply::new(tone, messages).with_data(view).with_offers(offers));
                }
                Err(UpdateError::Rejected(Refusal::Claim(ClaimRefusal::AlreadyClaimed))) => {
                    return Err(UserError::AlreadyRegistered { account: id }.into());
                }
                Err(UpdateError::Rejected(Refusal::Claim(ClaimRefusal::OwnedElsewhere))) => {
                    return Err(UserError::LinkedElsewhere { account: id }.into());
                }
                Err(UpdateError::Rejected(Refusal::Quota(exceeded))) => {
                    return Err(self.quota_refused(id, &tenant, exceeded, now));
                }
                Err(UpdateError::Rejected(Refusal::Claim(ClaimRefusal::Full))) => {
                    self.claims_full(id, &tenant, &by)?;
                    return Err(UserError::TooManyClaims { account: id, max: claims::MAX_OPEN_CLAIMS }.into());
                }
                Err(UpdateError::ExternalIdTaken) => continue,
                Err(UpdateError::NotFound) => unreachable!("a new claim finds nothing missing"),
                Err(UpdateError::Store(e)) => return Err(anyhow::Error::from(e).context("storing a new claim").into()),
            }
        }
        Err(anyhow::anyhow!("could not draw an unused external ID").into())
    }

    /// Operations hear that `tenant` could not claim account `id`: it has
    /// as many open claims as allowed. Recorded on the oldest open claim,
    /// which the notice is about.
    fn claims_full(&self, id: AccountId, tenant: &TenantId, by: &By<'_>) -> Result<(), AppError> {
        let told = self.store.change_claims::<()>(id, by, |claims| {
            let Some(oldest) = claims.iter().find(|c| c.is_open_claim()) else { return Ok(vec![]) };
            let events = vec![Event::ClaimsFull { account: id, tenant: tenant.clone() }];
            Ok(vec![(oldest.tenant.clone(), self.change_of(oldest, events, by.at))])
        });
        match told {
            Ok(_) | Err(UpdateError::Rejected(())) => Ok(()),
            Err(UpdateError::Store(e)) => Err(e.into()),
            Err(e) => Err(anyhow::anyhow!("telling operations of a full account: {e:?}").into()),
        }
    }

    pub(super) fn list_accounts(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        filter: &ListFilter,
        format: ListFormat,
    ) -> Result<Reply, AppError> {
        let tenant = match &actor.scope {
            Scope::Tenant(own) => Some(own.clone()),
            Scope::Ops => tenant,
        };
        // From the claims' pipeline rows, which hold what a list shows:
        // a few small values per claim, not every claim's record.
        let now = self.clock.now();
        let mut accounts = Vec::new();
        self.store.for_each_pipeline_row(tenant.as_ref(), |t, row| {
            if filter.admits(row.state, row.updated_at, now) {
                accounts.push(AccountSummary::of_row(t, row));
            }
        })?;
        accounts.sort_unstable_by(|a, b| (a.id, &a.tenant).cmp(&(b.id, &b.tenant)));
        let view =
            ListView { tenant: tenant.map(|t| t.to_string()), filtered: *filter != ListFilter::default(), accounts };
        let message = match format {
            ListFormat::Text => Message::List(view.clone()),
            ListFormat::Csv => Message::ListCsv(view.clone()),
        };
        Ok(Reply::new(Tone::Info, vec![message]).with_data(view))
    }

    pub(super) fn show_account(&self, actor: &Actor, account: AccountId) -> Result<Reply, AppError> {
        let account = self.load(actor, account)?;
        // Ticket requests wait in their own small tree until Freshdesk
        // takes them; the opened ones are on the claim.
        let pending =
            self.store.ticket_requests()?.into_iter().filter(|r| r.account == account.id && r.tenant == account.tenant);
        let pending_tickets = pending.map(|r| PendingTicket { requested_at: r.requested_at }).collect();
        let view = AccountView { pending_tickets, ..AccountView::from(account) };
        Ok(Reply::new(Tone::Info, vec![Message::Status(view.clone())]).with_data(view))
    }

    pub(super) fn later(&self, actor: &Actor, account: AccountId) -> Result<Reply, AppError> {
        let view = AccountView::from(self.load(actor, account)?);
        Ok(Reply::new(Tone::Info, vec![Message::Later(view)]))
    }

    pub(super) fn revive(&self, actor: &Actor, account: AccountId) -> Result<Reply, AppError> {
        let probe = &self.settings.probe;
        let (account, _) = self.update(actor, account, "account_revive", |a, now| {
            if a.is_owner() || !matches!(a.state, LinkState::Registered | LinkState::Lapsed) {
                return Err(UserError::NotNow { account: a.id, state: a.state, action: Action::Revive });
            }
            let events = a.renew_window(now);
            if probe.enabled {
                a.restart_probe(&probe.plan, now);
            }
            Ok(events)
        })?;
        let view = AccountView::from(account);
        Ok(Reply::new(Tone::Success, vec![Message::Status(view.clone())]).with_data(view))
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
                    let instructions = self.instructions(&account);
                    let offers = Offer::instructions(&instructions);
                    let view = AccountView::from(account);
                    return Ok(Reply::new(
                        Tone::Success,
                        vec![Message::ExternalIdRotated(view.clone()), Message::Instructions(instructions)],
                    )
                    .with_data(view)
                    .with_offers(offers));
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
        // No link without a published template: refused before anything
        // is renewed.
        if format == InstructionsFormat::Link && self.settings.template.is_none() {
            return Err(UserError::NoTemplateUrl.into());
        }
        let mut account = self.load(actor, account)?;
        if matches!(account.state, LinkState::Registered | LinkState::Lapsed) && !account.is_owner() {
            // The owner is at work: a fresh window (a lapsed claim revives),
            // and the role may appear soon, so look for it often again.
            let probe = &self.settings.probe;
            (account, _) = self.update(actor, account.id, "instructions_shown", |a, now| {
                let events = a.renew_window(now);
                if probe.enabled {
                    a.restart_probe(&probe.plan, now);
                }
                Ok(events)
            })?;
        }
        let view = self.instructions(&account);
        let offers = match format {
            InstructionsFormat::Text => Offer::instructions(&view),
            InstructionsFormat::CloudFormation
            | InstructionsFormat::Cli
            | InstructionsFormat::Terraform
            | InstructionsFormat::Link => {
                vec![Offer::RoleCreated(account.id), Offer::Later(account.id)]
            }
        };
        let message = match format {
            InstructionsFormat::Text => Message::Instructions(view),
            InstructionsFormat::CloudFormation => Message::CloudFormation(view),
            InstructionsFormat::Cli => Message::AwsCli(view),
            InstructionsFormat::Terraform => Message::Terraform(view),
            InstructionsFormat::Link => Message::LaunchLink(view),
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
            .filter(|a| a.closed_at.is_none())
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

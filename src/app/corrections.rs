//! Operations correct any registration: remove a claim, move it to another
//! tenant, edit its details (as its tenant may before the invitation); and
//! anyone reads the audit log of what they may see. Every correction is an
//! audited change with who, when and why.

use super::{AccountView, UserError, whose};
use super::{Action, Actor, App, AppError, CorrectionView, HistoryEntry, HistoryView, Message, Reply, Scope, Tone};
use crate::domain::claims::Whose;
use crate::domain::{AccountId, CorrectionReason, CorrectionRefused, Edit, Effects, Event, TenantId};
use crate::store::{Audit, By, Change, UpdateError};

/// The user error a refused correction of `account` is.
fn refused(account: &crate::domain::Account, why: CorrectionRefused, action: Action) -> UserError {
    match why {
        CorrectionRefused::InvitationOut => UserError::NotNow { account: account.id, state: account.state, action },
        CorrectionRefused::NothingToChange => UserError::NothingToChange { account: account.id },
        CorrectionRefused::ManagementAccount => UserError::ManagementAccount { account: account.id },
    }
}

impl App {
    pub(super) fn remove_account(
        &self,
        actor: &Actor,
        id: AccountId,
        reason: &CorrectionReason,
        force: bool,
    ) -> Result<Reply, AppError> {
        let (account, _) = self.update(actor, id, "account_remove", |a, now| {
            a.remove(reason, force, now).map_err(|why| refused(a, why, Action::Remove))
        })?;
        Ok(self.corrected(account, "removed", vec![], None, Some(reason)))
    }

    pub(super) fn transfer_account(
        &self,
        actor: &Actor,
        id: AccountId,
        to: &TenantId,
        reason: &CorrectionReason,
    ) -> Result<Reply, AppError> {
        let from = self.load(actor, id)?.tenant;
        let now = self.clock.now();
        let by = By { actor: &actor.id, action: "account_transfer", at: now, audit: Audit::Always };
        let result = self.store.change_claims(id, &by, |claims| {
            if claims.iter().any(|c| c.tenant == *to && c.closed_at.is_none()) {
                return Err(UserError::TransferTargetHasClaim { account: id, to: to.clone() });
            }
            // A closed claim of the new tenant's makes room for this one.
            claims.retain(|c| c.tenant != *to);
            let Some(claim) = claims.iter_mut().find(|c| c.tenant == from && c.closed_at.is_none()) else {
                return Err(UserError::AccountNotFound { account: id });
            };
            let before = claim.clone();
            let (out, into) = claim.transfer(to.clone(), reason, now);
            // The former tenant hears of it about the claim as it was; it
            // holds no claim any more, so nothing is due for it.
            let told = Change {
                effects: Effects::of(&before, std::slice::from_ref(&out), now),
                events: vec![out],
                ..Change::default()
            };
            Ok(vec![(to.clone(), self.change_of(claim, vec![into], now)), (from.clone(), told)])
        });
        let claims = match result {
            Ok((claims, _)) => claims,
            Err(UpdateError::Rejected(e)) => return Err(e.into()),
            Err(UpdateError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(anyhow::anyhow!("moving {id} to {to}: {e:?}").into()),
        };
        let account = claims.into_iter().find(|c| c.tenant == *to).expect("moved above");
        Ok(self.corrected(account, "transferred", vec![], Some(from), Some(reason)))
    }

    pub(super) fn edit_account(
        &self,
        actor: &Actor,
        id: AccountId,
        edit: &Edit,
        reason: Option<&CorrectionReason>,
    ) -> Result<Reply, AppError> {
        let by_ops = actor.rights.ops;
        let (account, events) = self.update(actor, id, "account_edit", |a, now| {
            a.edit(edit, by_ops, reason, now).map_err(|why| refused(a, why, Action::Edit))
        })?;
        let fields = match events.first() {
            Some(Event::AccountEdited { fields, .. }) => fields.clone(),
            _ => vec![],
        };
        Ok(self.corrected(account, "edited", fields, None, reason))
    }

    fn corrected(
        &self,
        account: crate::domain::Account,
        correction: &'static str,
        fields: Vec<String>,
        from: Option<TenantId>,
        reason: Option<&CorrectionReason>,
    ) -> Reply {
        let tone = if account.support_plan_mismatch() { Tone::Warning } else { Tone::Success };
        let view = CorrectionView {
            account: AccountView::from(account),
            correction,
            fields,
            from: from.map(|t| t.to_string()),
            reason: reason.map(ToString::to_string),
        };
        Reply::new(tone, vec![Message::Corrected(view.clone())]).with_data(view)
    }

    /// The account's audit log, oldest first: a tenant sees the entries of
    /// its own claims (and nothing of an account it holds no claim on);
    /// operations see every entry, or one tenant's with `--tenant`.
    pub(super) fn history(&self, actor: &Actor, id: AccountId) -> Result<Reply, AppError> {
        let only = match whose(actor) {
            Whose::Tenant(tenant) => {
                if !matches!(actor.scope, Scope::Ops) && !actor.rights.ops {
                    // Its claim must stand: a closed one is gone for it.
                    self.load(actor, id)?;
                }
                Some(tenant.clone())
            }
            Whose::Principal => None,
        };
        let entries: Vec<HistoryEntry> = self
            .store
            .audit_log(id)?
            .into_iter()
            .filter(|e| only.is_none() || e.tenant == only)
            // Another tenant's attempt on the account, and a notification
            // operations dropped, are operations' business.
            .filter(|e| {
                only.is_none()
                    || !e
                        .events
                        .iter()
                        .any(|ev| matches!(ev, Event::ClaimsFull { .. } | Event::NotificationDropped { .. }))
            })
            .map(|e| HistoryEntry {
                at: e.at,
                actor: e.actor,
                action: e.action,
                tenant: if only.is_none() { e.tenant.map(|t| t.to_string()) } else { None },
                reason: e.events.iter().find_map(reason_of),
                events: e.events.iter().map(|ev| ev.code().to_owned()).collect(),
            })
            .collect();
        if entries.is_empty() {
            return Err(UserError::AccountNotFound { account: id }.into());
        }
        let view = HistoryView { account_id: id, entries, for_ops: only.is_none() };
        Ok(Reply::new(Tone::Info, vec![Message::History(view.clone())]).with_data(view))
    }
}

fn reason_of(event: &Event) -> Option<String> {
    match event {
        Event::ClaimRemoved { reason, .. }
        | Event::ClaimTransferredOut { reason, .. }
        | Event::ClaimTransferredIn { reason, .. } => Some(reason.clone()),
        Event::AccountEdited { reason, .. } => reason.clone(),
        Event::NotificationDropped { dropped, reason, .. } => Some(format!("{dropped}: {reason}")),
        _ => None,
    }
}

//! Importing a file of accounts for one tenant: every row is judged first
//! (its values by the domain's parsers, duplicates within the file, the
//! claim rules against the store), and the file is registered whole, in
//! one store transaction, or not at all. And the export: what a reseller
//! sends each customer.

use super::{
    Actor, App, AppError, ExportRow, ExportView, ImportAnswer, ImportView, ImportedAccount, Message, Reply, Scope,
    Tone, UserError, quotas,
};
use crate::domain::claims::{self, ClaimRefusal};
use crate::domain::import::{CHAT_MAX_ROWS, ImportRows, RowError, RowProblem};
use crate::domain::quota::{self, Quota};
use crate::domain::{Account, AccountId, AccountKind, ExternalId, TenantId};
use crate::store::{Audit, By, UpdateError};

/// A claim rule's refusal as a row's problem.
fn refused(account: AccountId, refusal: ClaimRefusal) -> RowError {
    match refusal {
        ClaimRefusal::AlreadyClaimed => RowError::AlreadyRegistered { account },
        ClaimRefusal::OwnedElsewhere => RowError::LinkedElsewhere { account },
        ClaimRefusal::Full => RowError::TooManyClaims { account, max: claims::MAX_OPEN_CLAIMS },
    }
}

impl App {
    pub(super) fn import_accounts(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        rows: ImportRows,
        dry_run: bool,
        answer: ImportAnswer,
    ) -> Result<Reply, AppError> {
        if let Scope::Tenant(own) = &actor.scope {
            if own != tenant {
                return Err(anyhow::anyhow!("a tenant may only import accounts for itself").into());
            }
            // From a chat, a file is bounded; refused whole before any row
            // is judged.
            if rows.records > CHAT_MAX_ROWS {
                return Err(UserError::ImportTooLarge { rows: rows.records, max: CHAT_MAX_ROWS }.into());
            }
        }
        let ImportRows { rows, mut problems, .. } = rows;
        for (line, new) in &rows {
            let error = if new.kind == AccountKind::Management {
                Some(RowError::ManagementAccount { account: new.id })
            } else {
                claims::may_claim(&self.store.claims(new.id)?, tenant).err().map(|r| refused(new.id, r))
            };
            problems.extend(error.map(|error| RowProblem { line: *line, error }));
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line);
            return Err(UserError::ImportRejected { problems }.into());
        }
        // A reseller's file counts against its open claims, whole: counted
        // and written under the gate, as one registration is.
        let bound = quotas::bound_tenant(actor).is_some();
        let _gate = bound.then(|| self.quota_gate.lock().unwrap_or_else(|e| e.into_inner()));
        if bound {
            let open = self.open_claims(tenant)?;
            let limit = self.limit(Quota::OpenClaims);
            if let Err(exceeded) = quota::open_claims(limit, open, rows.len()) {
                if !dry_run && let Some((_, first)) = rows.first() {
                    self.tell_operations_of_quota(first.id, tenant, exceeded, self.clock.now());
                }
                return Err(UserError::ImportOverQuota { rows: rows.len(), open, limit }.into());
            }
        }
        let file = (answer == ImportAnswer::File && !dry_run).then(|| super::IMPORTED_IDS_FILE.to_owned());
        let reply = |view: ImportView, tone| {
            let mut messages = vec![Message::Imported(view.clone())];
            if view.file.is_some() {
                messages.push(Message::ImportedIds(view.clone()));
            }
            Reply::new(tone, messages).with_data(view)
        };
        let view = |accounts: &[Account]| ImportView {
            tenant: tenant.to_string(),
            dry_run,
            file: file.clone(),
            count: rows.len(),
            accounts: rows
                .iter()
                .enumerate()
                .map(|(i, (line, new))| ImportedAccount {
                    line: *line,
                    id: new.id,
                    customer: new.customer.to_string(),
                    external_id: accounts.get(i).map(|a| a.external_id.clone()),
                })
                .collect(),
        };
        if dry_run {
            return Ok(reply(view(&[]), Tone::Info));
        }
        let now = self.clock.now();
        let by = By { actor: &actor.id, action: "account_import", at: now, audit: Audit::Always };
        let probe = &self.settings.probe;
        // A clash of 100-bit random IDs is next to impossible; draw the
        // file's IDs again if it ever happens rather than fail.
        for _ in 0..8 {
            let mut new = Vec::with_capacity(rows.len());
            for (_, row) in &rows {
                let external_id = ExternalId::generate(&self.settings.external_id_prefix);
                let (mut account, events) = Account::register(row.clone(), external_id, now)
                    .map_err(|_| UserError::ManagementAccount { account: row.id })?;
                if probe.enabled {
                    account.restart_probe(&probe.plan, now);
                }
                let change = self.change_of(&account, events, now);
                new.push((account, change));
            }
            // The rules again, inside the transaction: a registration made
            // since the check above refuses the file, not half of it.
            match self.store.add_claims(&by, &new, |claims, account| claims::may_claim(claims, &account.tenant)) {
                Ok(()) => {
                    let accounts: Vec<Account> = new.into_iter().map(|(a, _)| a).collect();
                    return Ok(reply(view(&accounts), Tone::Success));
                }
                Err(UpdateError::Rejected((i, refusal))) => {
                    let (line, row) = &rows[i];
                    let problem = RowProblem { line: *line, error: refused(row.id, refusal) };
                    return Err(UserError::ImportRejected { problems: vec![problem] }.into());
                }
                Err(UpdateError::ExternalIdTaken) => continue,
                Err(UpdateError::NotFound) => unreachable!("new claims find nothing missing"),
                Err(UpdateError::Store(e)) => {
                    return Err(anyhow::Error::from(e).context("storing an import").into());
                }
            }
        }
        Err(anyhow::anyhow!("could not draw unused external IDs").into())
    }

    pub(super) fn export_accounts(&self, actor: &Actor, tenant: Option<TenantId>) -> Result<Reply, AppError> {
        let tenant = match &actor.scope {
            Scope::Tenant(own) => Some(own.clone()),
            Scope::Ops => tenant,
        };
        let accounts = match &tenant {
            Some(t) => self.store.tenant_accounts(t)?,
            None => self.store.all_accounts()?,
        };
        let view = ExportView {
            tenant: tenant.map(|t| t.to_string()),
            accounts: accounts
                .iter()
                .filter(|a| a.closed_at.is_none())
                .map(|a| ExportRow {
                    id: a.id,
                    customer: a.customer.to_string(),
                    tenant: a.tenant.to_string(),
                    state: a.state,
                    external_id: a.external_id.clone(),
                    role_name: self.settings.role_name.clone(),
                    trusted_account_id: self.settings.cross_account_id,
                })
                .collect(),
        };
        Ok(Reply::new(Tone::Info, vec![Message::Export(view.clone())]).with_data(view))
    }
}

//! Freshdesk tickets: asked for by a tenant (within its tickets of the
//! day), or by an expired invitation; opened (or adopted by their tag)
//! once, waiting while Freshdesk cannot take them.

use super::{Actor, App, AppError, Message, Reply, TicketView, Tone, quotas};
use crate::domain::quota::{self, Quota};
use crate::domain::{AccountId, Event, TenantId, TicketEffect, TicketReason, TicketRecord, TicketRequest};
use crate::freshdesk::FreshdeskError;
use crate::store::{Audit, By, Counted, UpdateError};

impl App {
    /// One open ticket per account and reason: the existing one's link, or
    /// a new one (which waits in the store if Freshdesk cannot take it).
    pub(super) async fn request_ticket(
        &self,
        actor: &Actor,
        id: AccountId,
        reason: TicketReason,
    ) -> Result<Reply, AppError> {
        let account = self.load(actor, id)?;
        let request = TicketRequest::requested(&account, reason.clone(), self.clock.now());
        if let Some(existing) = account.tickets.iter().find(|t| t.key == request.key) {
            let view = TicketView { account: id, url: Some(existing.url.clone()), existing: true };
            return Ok(Reply::new(Tone::Info, vec![Message::Ticket(view)]));
        }
        let (asked, requester, tenant, key) = (reason.to_string(), actor.clone(), account.tenant, request.key.clone());
        self.off_thread(move |app| app.ticket_requested(&requester, id, &tenant, &key, asked)).await?;
        let pending = self.store.ticket_requests()?.into_iter().find(|r| r.key == request.key);
        let opened = match pending {
            Some(request) => self.open_ticket(&request, &actor.id).await?,
            None => None,
        };
        let view = TicketView { account: id, url: opened.map(|t| t.url), existing: false };
        let tone = if view.url.is_some() { Tone::Success } else { Tone::Warning };
        Ok(Reply::new(tone, vec![Message::Ticket(view)]))
    }

    /// Records that the actor asked for the ticket under `key` on
    /// `tenant`'s claim. A reseller's request for a new ticket counts
    /// against its tickets of the day: read and written under the quota
    /// gate, the count in the same transaction as the request. One still
    /// waiting for Freshdesk is no new ticket: asked again, it is neither
    /// refused nor counted.
    fn ticket_requested(
        &self,
        actor: &Actor,
        id: AccountId,
        tenant: &TenantId,
        key: &str,
        asked: String,
    ) -> Result<(), AppError> {
        let bound = quotas::bound_tenant(actor).is_some();
        let _gate = bound.then(|| self.quota_gate.lock().unwrap_or_else(|e| e.into_inner()));
        let counts = bound && !self.store.ticket_requests()?.iter().any(|r| r.key == key);
        let counted = if counts {
            let now = self.clock.now();
            let used = self.store.quota_count(tenant, Quota::TicketsPerDay)?;
            match quota::ticket(self.limit(Quota::TicketsPerDay), used, now) {
                Ok(count) => Some(Counted { tenant: tenant.clone(), quota: Quota::TicketsPerDay, count }),
                Err(exceeded) => return Err(self.quota_refused(id, tenant, exceeded, now)),
            }
        } else {
            None
        };
        self.update_claim(actor, id, tenant, "ticket_requested", counted.as_ref(), |a, _| {
            Ok(vec![Event::TicketRequested { account: a.id, reason: asked.clone() }])
        })?;
        Ok(())
    }

    /// Opens (or adopts) one requested ticket; `None` while Freshdesk cannot
    /// take it.
    pub(super) async fn open_ticket(
        &self,
        request: &TicketRequest,
        actor: &str,
    ) -> Result<Option<TicketRecord>, AppError> {
        let now = self.clock.now();
        let Some(desk) = &self.ticket_desk else {
            self.ticket_waits(request, None, "not_configured", actor).await?;
            return Ok(None);
        };
        let Some(account) = self.store.claim(request.account, &request.tenant)? else { return Ok(None) };
        match desk.open(request, &account, now).await {
            Ok(record) if !request.records_ticket() => {
                // A note on an existing ticket: nothing new to record or announce.
                let key = request.key.clone();
                self.off_thread(move |app| app.store.ticket_request_done(&key)).await?;
                Ok(Some(record))
            }
            Ok(record) => {
                let done = vec![TicketEffect::Done { key: request.key.clone() }];
                let (request, actor, opened) = (request.clone(), actor.to_owned(), record.clone());
                self.off_thread(move |app| {
                    let by = By { actor: &actor, action: "ticket_opened", at: now, audit: Audit::Always };
                    app.ticket_change(&request, by, &done, |a| Ok(a.ticket_opened(opened.clone(), now)))
                })
                .await?;
                Ok(Some(record))
            }
            Err(e) => {
                tracing::warn!(key = request.key, error = %e, "Freshdesk did not take the ticket; it waits");
                let retry_after = match &e {
                    FreshdeskError::RateLimited { retry_after } => *retry_after,
                    _ => None,
                };
                self.ticket_waits(request, retry_after, crate::freshdesk::desk::problem_code(&e), actor).await?;
                Ok(None)
            }
        }
    }

    /// Freshdesk could not take `request`: it waits for its next try, and
    /// operations are told the first time only.
    async fn ticket_waits(
        &self,
        request: &TicketRequest,
        retry_after: Option<std::time::Duration>,
        problem: &str,
        actor: &str,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        let (later, told) = request.wait(now, retry_after, problem);
        let (request, actor) = (request.clone(), actor.to_owned());
        self.off_thread(move |app| {
            if told.is_empty() {
                return Ok(app.store.put_ticket_request(&later)?);
            }
            let retry = [TicketEffect::Retry(later)];
            let by = By { actor: &actor, action: "ticket_waiting", at: now, audit: Audit::Always };
            app.ticket_change(&request, by, &retry, |_| Ok(told.clone()))
        })
        .await
    }

    /// An account change about a ticket request, with what it does to the
    /// request, in one transaction. A request whose account is gone is
    /// forgotten.
    fn ticket_change(
        &self,
        request: &TicketRequest,
        by: By<'_>,
        also: &[TicketEffect],
        change: impl Fn(&mut crate::domain::Account) -> Result<Vec<Event>, ()>,
    ) -> Result<(), AppError> {
        match self.update_account(request.account, &request.tenant, by, also, change) {
            Ok(_) | Err(UpdateError::Rejected(())) | Err(UpdateError::ExternalIdTaken) => Ok(()),
            Err(UpdateError::NotFound) => Ok(self.store.ticket_request_done(&request.key)?),
            Err(UpdateError::Store(e)) => Err(e.into()),
        }
    }
}

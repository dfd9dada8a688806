//! Freshdesk tickets: asked for by a tenant, or by an expired invitation;
//! opened (or adopted by their tag) once, waiting while Freshdesk cannot
//! take them.

use super::{Actor, App, AppError, Message, Reply, TicketView, Tone};
use crate::domain::{AccountId, Event, TicketEffect, TicketReason, TicketRecord, TicketRequest};
use crate::freshdesk::FreshdeskError;
use crate::store::{Audit, By, UpdateError};

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
        let asked = reason.to_string();
        self.update_off_thread(actor, id, "ticket_requested", move |a, _| {
            Ok(vec![Event::TicketRequested { account: a.id, reason: asked.clone() }])
        })
        .await?;
        let pending = self.store.ticket_requests()?.into_iter().find(|r| r.key == request.key);
        let opened = match pending {
            Some(request) => self.open_ticket(&request, &actor.id).await?,
            None => None,
        };
        let view = TicketView { account: id, url: opened.map(|t| t.url), existing: false };
        let tone = if view.url.is_some() { Tone::Success } else { Tone::Warning };
        Ok(Reply::new(tone, vec![Message::Ticket(view)]))
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

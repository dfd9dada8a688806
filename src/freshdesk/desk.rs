//! Opening the tickets orglink requests: found by their tag first (a retry
//! after a lost answer adopts the ticket instead of opening a second one),
//! else created with the text of `templates/<lang>/tickets/`.

use std::time::Duration;

use serde_json::json;

use super::{Freshdesk, FreshdeskError, NewTicket, SOURCE_PORTAL, STATUS_OPEN, Ticket};
use crate::config::FreshdeskConfig;
use crate::domain::{Account, TicketKind, TicketRecord, TicketRequest};
use crate::templates::Templates;

pub struct TicketDesk {
    client: Freshdesk,
    config: FreshdeskConfig,
    templates: Templates,
}

impl TicketDesk {
    pub fn new(config: FreshdeskConfig, templates: Templates, timeout: Duration) -> Result<Self, FreshdeskError> {
        Ok(Self { client: Freshdesk::new(&config.base_url, config.api_key.clone(), timeout)?, config, templates })
    }

    /// Counts every Freshdesk call in `metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.client = self.client.with_metrics(metrics);
        self
    }

    fn record(&self, request: &TicketRequest, ticket: &Ticket, now: time::OffsetDateTime) -> TicketRecord {
        TicketRecord {
            key: request.key.clone(),
            id: ticket.id,
            url: self.client.ticket_url(ticket.id),
            kind: request.kind.code().to_owned(),
            opened_at: now,
        }
    }

    /// The ticket `request` asks for: adopted if Freshdesk has one with its
    /// tag, else created.
    pub async fn open(
        &self,
        request: &TicketRequest,
        account: &Account,
        now: time::OffsetDateTime,
    ) -> Result<TicketRecord, FreshdeskError> {
        let lang = self.config.language;
        let kind = request.kind.code();
        let context = json!({ "request": request, "account": account });
        if let TicketKind::InvitationResent { ticket_id, .. } = request.kind {
            // A note: Freshdesk has no idempotency key for notes either; a
            // second one after a lost answer says the same, which is harmless.
            let body = self.templates.render(lang, "tickets/invitation_resent.html", &context).map_err(|e| {
                FreshdeskError::Invalid { description: format!("the note template failed: {e}"), errors: vec![] }
            })?;
            self.client.add_private_note(ticket_id, &body).await?;
            return Ok(TicketRecord {
                key: request.key.clone(),
                id: ticket_id,
                url: self.client.ticket_url(ticket_id),
                kind: kind.to_owned(),
                opened_at: now,
            });
        }
        if let Some(ticket) = self.client.find_by_tag(&request.key).await? {
            return Ok(self.record(request, &ticket, now));
        }
        let render = |name: String| {
            self.templates.render(lang, &name, &context).map_err(|e| FreshdeskError::Invalid {
                description: format!("the ticket template {name} failed: {e}"),
                errors: vec![],
            })
        };
        let mut tags = vec!["orglink".to_owned(), request.key.clone()];
        tags.extend(self.config.tags.iter().cloned());
        let ticket = NewTicket {
            email: self.config.requester_email.to_string(),
            subject: render(format!("tickets/{kind}_subject.txt"))?,
            description: render(format!("tickets/{kind}.html"))?,
            status: STATUS_OPEN,
            priority: self.config.priority,
            source: SOURCE_PORTAL,
            tags,
            group_id: self.config.group_id,
            custom_fields: self.config.custom_fields.clone(),
        };
        let created = self.client.create_ticket(&ticket).await?;
        Ok(self.record(request, &created, now))
    }
}

/// A short code for why Freshdesk did not take a ticket (for the operations
/// notice).
pub fn problem_code(error: &FreshdeskError) -> &'static str {
    match error {
        FreshdeskError::Invalid { .. } => "invalid",
        FreshdeskError::Unauthorized | FreshdeskError::Forbidden => "unauthorized",
        FreshdeskError::NotFound => "not_found",
        FreshdeskError::RateLimited { .. } => "rate_limited",
        FreshdeskError::Server { .. } | FreshdeskError::Unexpected { .. } => "unavailable",
        FreshdeskError::Timeout | FreshdeskError::Network(_) => "unreachable",
    }
}

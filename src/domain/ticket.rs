//! Freshdesk tickets orglink opens: requested in the same transaction as
//! the change that needs them, opened (or adopted) later, once.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Account, AccountId, Event, HandshakeId, TenantId, TicketReason};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TicketKind {
    /// The invitation expired: ask for a new one.
    InvitationExpired {
        handshake_id: HandshakeId,
        #[serde(with = "crate::domain::instant")]
        requested_at: OffsetDateTime,
        #[serde(with = "crate::domain::instant")]
        expires_at: OffsetDateTime,
    },
    /// Someone asked for help, with a reason.
    Requested { reason: TicketReason },
    /// A new invitation went out after the one a ticket was opened for:
    /// a private note on that ticket says so.
    InvitationResent {
        ticket_id: u64,
        handshake_id: HandshakeId,
        #[serde(with = "crate::domain::instant")]
        expires_at: OffsetDateTime,
    },
}

impl TicketKind {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvitationExpired { .. } => "invitation_expired",
            Self::Requested { .. } => "requested",
            Self::InvitationResent { .. } => "invitation_resent",
        }
    }
}

/// A ticket to open. Its key is sent as a tag: Freshdesk has no idempotency
/// key, so a retry after a lost answer finds the ticket by it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRequest {
    pub key: String,
    pub account: AccountId,
    pub tenant: TenantId,
    pub kind: TicketKind,
    #[serde(with = "crate::domain::instant")]
    pub requested_at: OffsetDateTime,
    /// Operations were told Freshdesk could not take it (told once).
    #[serde(default)]
    pub ops_told: bool,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not to be tried before (backoff, or Freshdesk's Retry-After).
    #[serde(with = "crate::domain::instant::option", default)]
    pub not_before: Option<OffsetDateTime>,
}

impl TicketRequest {
    /// Whether it may be tried at `now`.
    pub fn due(&self, now: OffsetDateTime) -> bool {
        self.not_before.is_none_or(|at| at <= now)
    }

    /// After a failed attempt: wait `retry_after` if Freshdesk said so, else
    /// one minute doubling per attempt, at most an hour.
    pub fn failed(&self, now: OffsetDateTime, retry_after: Option<std::time::Duration>) -> Self {
        let backoff = time::Duration::minutes(1i64 << self.attempts.min(6)).min(time::Duration::hours(1));
        let wait =
            retry_after.map(|d| time::Duration::seconds(d.as_secs().try_into().unwrap_or(i64::MAX))).unwrap_or(backoff);
        Self { attempts: self.attempts + 1, not_before: Some(now + wait), ops_told: true, ..self.clone() }
    }

    /// Freshdesk could not take it (`problem` names why): the request as it
    /// waits for its next try, and what operations hear, the first time
    /// only.
    pub fn wait(
        &self,
        now: OffsetDateTime,
        retry_after: Option<std::time::Duration>,
        problem: &str,
    ) -> (Self, Vec<Event>) {
        let told = if self.ops_told {
            vec![]
        } else {
            vec![Event::TicketWaiting { account: self.account, problem: problem.to_owned() }]
        };
        (self.failed(now, retry_after), told)
    }

    /// Whether serving it records a ticket on the account (and tells the
    /// channels); a note on an existing ticket records nothing new.
    pub fn records_ticket(&self) -> bool {
        match self.kind {
            TicketKind::InvitationExpired { .. } | TicketKind::Requested { .. } => true,
            TicketKind::InvitationResent { .. } => false,
        }
    }
}

/// FNV-1a: stable across releases.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

impl TicketRequest {
    /// The ticket an expired invitation needs.
    pub fn invitation_expired(account: &Account, now: OffsetDateTime) -> Option<Self> {
        let invitation = account.invitation.as_ref()?;
        Some(Self {
            key: format!("orglink-invite-expired-{}", invitation.handshake_id),
            account: account.id,
            tenant: account.tenant.clone(),
            kind: TicketKind::InvitationExpired {
                handshake_id: invitation.handshake_id.clone(),
                requested_at: invitation.requested_at,
                expires_at: invitation.expires_at,
            },
            requested_at: now,
            ops_told: false,
            attempts: 0,
            not_before: None,
        })
    }

    /// The note a ticket for an expired invitation gets when a new
    /// invitation is sent.
    pub fn invitation_resent(account: &Account, now: OffsetDateTime) -> Option<Self> {
        let invitation = account.invitation.as_ref()?;
        let ticket = account.tickets.iter().rev().find(|t| t.kind == "invitation_expired")?;
        Some(Self {
            key: format!("orglink-note-{}-{}", ticket.id, invitation.handshake_id),
            account: account.id,
            tenant: account.tenant.clone(),
            kind: TicketKind::InvitationResent {
                ticket_id: ticket.id,
                handshake_id: invitation.handshake_id.clone(),
                expires_at: invitation.expires_at,
            },
            requested_at: now,
            ops_told: false,
            attempts: 0,
            not_before: None,
        })
    }

    /// A ticket asked for: one per account and reason (case and spacing
    /// aside).
    pub fn requested(account: &Account, reason: TicketReason, now: OffsetDateTime) -> Self {
        let normalized = reason.as_str().split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        Self {
            key: format!("orglink-request-{}-{:016x}", account.id, fnv(&normalized)),
            account: account.id,
            tenant: account.tenant.clone(),
            kind: TicketKind::Requested { reason },
            requested_at: now,
            ops_told: false,
            attempts: 0,
            not_before: None,
        }
    }
}

/// A ticket opened (or adopted) for an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRecord {
    pub key: String,
    pub id: u64,
    pub url: String,
    pub kind: String,
    #[serde(with = "crate::domain::instant")]
    pub opened_at: OffsetDateTime,
}

//! What a change causes, decided once, next to the lifecycle.
//!
//! A change of an account returns its [`Event`]s; [`Effects::of`] maps them
//! to everything that must follow: who is told which event in which tone
//! ([`Notice`]), which Freshdesk ticket is requested and which gets a note
//! ([`TicketEffect`]). The store writes the effects exactly as given, in the
//! same transaction as the change; it decides nothing.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Account, Event, TenantSettings, TicketReason, TicketRequest};

/// How a message looks: Discord embed colours, CLI exit codes. Each tone's
/// colour is defined once, in `discord::outbound`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Success,
    Info,
    Warning,
    Error,
}

/// Who must hear of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    /// The tenant's notification channel.
    pub tenant: bool,
    /// The distributor's operations channel.
    pub ops: bool,
}

impl Audience {
    pub const TENANT: Self = Self { tenant: true, ops: false };
    pub const OPS: Self = Self { tenant: false, ops: true };
    pub const BOTH: Self = Self { tenant: true, ops: true };
    pub const NOBODY: Self = Self { tenant: false, ops: false };

    pub fn anyone(self) -> bool {
        self.tenant || self.ops
    }
}

/// An event someone must hear of: to whom, and how it looks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub event: Event,
    pub audience: Audience,
    pub tone: Tone,
}

/// What a change does to the queue of Freshdesk work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketEffect {
    /// Open this ticket (or add this note) once: a key requested before, or
    /// whose ticket the account already has, is not requested again.
    Request(TicketRequest),
    /// Freshdesk could not take it: it waits for its next try, as given.
    Retry(TicketRequest),
    /// Served (opened, adopted or noted): the request goes.
    Done { key: String },
}

/// Everything a change causes besides the account itself and its audit
/// entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effects {
    pub notices: Vec<Notice>,
    pub tickets: Vec<TicketEffect>,
}

impl Effects {
    /// What `events`, caused by a change that left `account` as it is now,
    /// cause at `at`.
    pub fn of(account: &Account, events: &[Event], at: OffsetDateTime) -> Self {
        Self {
            notices: events.iter().filter_map(notice).collect(),
            tickets: events
                .iter()
                .filter_map(|e| ticket_request(account, e, at))
                .filter(|request| !account.tickets.iter().any(|t| t.key == request.key))
                .map(TicketEffect::Request)
                .collect(),
        }
    }

    /// Who hears of `events` of a tenant whose settings are `settings`: a
    /// tenant without a notification channel is not told (it is told in
    /// the reply to its next command instead), so such a notice never
    /// waits as a dead letter; operations hear what they must act on.
    pub fn of_tenant(events: &[Event], settings: &TenantSettings) -> Vec<Notice> {
        events
            .iter()
            .filter_map(notice)
            .filter_map(|mut n| {
                n.audience.tenant &= settings.channel.is_some();
                n.audience.anyone().then_some(n)
            })
            .collect()
    }
}

/// Who hears of `event`, and in which tone; `None` for the events kept in
/// the audit log only.
pub fn notice(event: &Event) -> Option<Notice> {
    use Tone::{Error, Info, Success, Warning};
    let (audience, tone) = match event {
        Event::AccountRegistered { .. } | Event::InvitationSent { .. } => (Audience::TENANT, Info),
        Event::RoleVerified { .. } | Event::RoleFound { .. } => (Audience::TENANT, Success),
        Event::RoleNeedsFixing { .. } | Event::InvitationReminder { .. } | Event::SupportPlanAttention { .. } => {
            (Audience::TENANT, Warning)
        }
        // A group that matches the tier is what was asked: nobody to warn.
        Event::SupportPlanGroupSet { matches_tier: false, .. } => (Audience::TENANT, Warning),
        Event::SupportPlanGroupSet { matches_tier: true, .. } => (Audience::NOBODY, Info),
        Event::AccountLinked { .. } => (Audience::BOTH, Success),
        Event::TicketOpened { .. } => (Audience::BOTH, Info),
        Event::InvitationDeclined { .. } | Event::InvitationCanceled { .. } | Event::InvitationExpired { .. } => {
            (Audience::BOTH, Warning)
        }
        Event::AccountBlocked { .. } => (Audience::BOTH, Error),
        Event::InvitationQueued { .. } | Event::BusinessSupportLinked { .. } | Event::TicketWaiting { .. } => {
            (Audience::OPS, Warning)
        }
        // The tenant corrects its declaration; operations hear only when
        // Business support appears or disappears.
        Event::SupportTierMismatch { .. } => (Audience::TENANT, Warning),
        Event::BusinessSupportChanged { .. } => (Audience::OPS, Warning),
        Event::NotificationUndeliverable { .. } => (Audience::OPS, Error),
        // Operations dropped it themselves: the audit log keeps it.
        Event::NotificationDropped { .. } => (Audience::NOBODY, Info),
        Event::ClaimLapsed { .. } | Event::ClaimClosed { .. } => (Audience::TENANT, Warning),
        Event::ClaimsFull { .. } | Event::QuotaExceeded { .. } => (Audience::OPS, Warning),
        Event::OpsDigest { .. } => (Audience::OPS, Info),
        Event::ClaimRevived { .. } | Event::AccountEdited { .. } => (Audience::NOBODY, Info),
        Event::ClaimRemoved { .. } | Event::ClaimTransferredOut { .. } => (Audience::TENANT, Warning),
        Event::ClaimTransferredIn { .. } => (Audience::TENANT, Info),
        // Operations approve or deny it (the notice carries the buttons).
        Event::TenantPending { .. } => (Audience::OPS, Warning),
        Event::TenantApproved { .. } | Event::TenantResumed { .. } => (Audience::TENANT, Success),
        Event::TenantDenied { .. } => (Audience::TENANT, Error),
        // A suspended tenant's notifications wait for its resumption: it
        // would hear of its suspension only once it is over.
        Event::TenantSuspended { .. } | Event::TenantAdmitted { .. } => (Audience::NOBODY, Info),
        Event::ExternalIdRotated { .. }
        | Event::RoleVerificationReset { .. }
        | Event::PriceBookSet { .. }
        | Event::RoleRecorded { .. }
        | Event::TicketRequested { .. } => (Audience::NOBODY, Info),
    };
    audience.anyone().then(|| Notice { event: event.clone(), audience, tone })
}

/// The ticket `event` asks for, if any.
fn ticket_request(account: &Account, event: &Event, at: OffsetDateTime) -> Option<TicketRequest> {
    match event {
        Event::InvitationExpired { .. } => TicketRequest::invitation_expired(account, at),
        Event::TicketRequested { reason, .. } => {
            reason.parse::<TicketReason>().ok().map(|reason| TicketRequest::requested(account, reason, at))
        }
        // The expired invitation's ticket hears of the new one.
        Event::InvitationSent { .. } => TicketRequest::invitation_resent(account, at),
        _ => None,
    }
}

/// What operations hear when a notification of `event` could not be
/// delivered, for `reason`; nothing for their own notices, which have
/// nowhere else to go, nor for a tenant's own events, which operations
/// decided themselves.
pub fn undeliverable(event: &Event, reason: &str) -> Option<Notice> {
    let account = event.account()?;
    match event {
        Event::NotificationUndeliverable { .. } => None,
        event => notice(&Event::NotificationUndeliverable {
            account,
            undelivered: event.code().to_owned(),
            reason: reason.to_owned(),
        }),
    }
}

/// Why a notification died when its tenant had no channel yet: setting one
/// brings it back.
pub const NO_CHANNEL: &str = "no_channel";

/// Whether a notification that died for `reason` goes out again once its
/// tenant sets a channel.
pub fn replay_when_channel_set(notice: &Notice, reason: &str) -> bool {
    reason == NO_CHANNEL && notice.audience.tenant
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        BlockReason, CheckName, HandshakeState, Invitation, SupportLevel, SupportPlanGroup, SupportTier, TicketRecord,
    };
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

    fn account() -> Account {
        crate::domain::sample_account("123456789012", "acme", SupportTier::Business, AT)
    }

    fn invited(account: &mut Account) {
        account.invitation = Some(Invitation {
            handshake_id: "h-abcdefgh12".parse().unwrap(),
            state: HandshakeState::Open,
            requested_at: AT,
            expires_at: AT + time::Duration::days(15),
            note: None,
            reminded: vec![],
        });
    }

    /// Every event, one of each kind: the match makes a new kind fail to
    /// compile here until it has a row in the table below.
    fn every_event() -> Vec<Event> {
        let a: crate::domain::AccountId = "123456789012".parse().unwrap();
        let t: crate::domain::TenantId = "900000000000000501".parse().unwrap();
        let all = vec![
            Event::AccountRegistered { account: a },
            Event::ExternalIdRotated { account: a },
            Event::RoleVerified { account: a },
            Event::RoleVerificationReset { account: a },
            Event::RoleFound { account: a },
            Event::RoleNeedsFixing { account: a, checks: vec![CheckName::ReadOnlyAccess] },
            Event::AccountBlocked { account: a, reason: BlockReason::ManagementAccount },
            Event::InvitationSent { account: a, handshake_id: "h-abcdefgh12".into(), expires_at: AT },
            Event::AccountLinked { account: a },
            Event::InvitationDeclined { account: a },
            Event::InvitationCanceled { account: a },
            Event::InvitationExpired { account: a },
            Event::SupportPlanGroupSet { account: a, group: SupportPlanGroup::Passthrough, matches_tier: false },
            Event::SupportPlanGroupSet { account: a, group: SupportPlanGroup::BusinessSupport, matches_tier: true },
            Event::PriceBookSet { account: a },
            Event::RoleRecorded { account: a },
            Event::InvitationQueued { account: a },
            Event::SupportPlanAttention { account: a, group: None, expected: SupportPlanGroup::BusinessSupport },
            Event::BusinessSupportLinked { account: a },
            Event::SupportTierMismatch {
                account: a,
                declared: SupportTier::Business,
                aws: SupportLevel::BasicOrDeveloper,
                needs: SupportPlanGroup::Passthrough,
            },
            Event::BusinessSupportChanged {
                account: a,
                declared: SupportTier::Developer,
                aws: SupportLevel::BusinessOrHigher,
            },
            Event::TicketRequested { account: a, reason: "help".into() },
            Event::TicketOpened { account: a, ticket_id: 1, url: "u".into(), kind: "requested".into() },
            Event::TicketWaiting { account: a, problem: "down".into() },
            Event::InvitationReminder { account: a, expires_at: AT, days_left: 2 },
            Event::NotificationUndeliverable { account: a, undelivered: "x".into(), reason: "y".into() },
            Event::NotificationDropped { account: Some(a), tenant: t.clone(), dropped: "x".into(), reason: "y".into() },
            Event::ClaimLapsed { account: a },
            Event::ClaimRevived { account: a },
            Event::ClaimClosed { account: a },
            Event::ClaimsFull { account: a, tenant: "900000000000000001".parse().unwrap() },
            Event::ClaimRemoved { account: a, reason: "typo".into() },
            Event::ClaimTransferredOut { account: a, reason: "moved".into() },
            Event::ClaimTransferredIn { account: a, reason: "moved".into() },
            Event::AccountEdited { account: a, fields: vec!["customer".into()], reason: None },
            Event::TenantPending { tenant: t.clone(), by: None },
            Event::TenantAdmitted { tenant: t.clone() },
            Event::TenantApproved { tenant: t.clone() },
            Event::TenantDenied { tenant: t.clone() },
            Event::TenantSuspended { tenant: t.clone() },
            Event::TenantResumed { tenant: t.clone() },
            Event::OpsDigest {
                tenant: t,
                registered: 1,
                entered: vec![],
                operations_next: 1,
                invitations_expiring: 0,
                blocked: 0,
                support_plan_attention: 0,
                notifications_dead: 0,
            },
            Event::QuotaExceeded {
                account: a,
                tenant: "900000000000000001".parse().unwrap(),
                quota: crate::domain::quota::Quota::TicketsPerDay,
                limit: 20,
            },
        ];
        for e in &all {
            match e {
                Event::AccountRegistered { .. }
                | Event::ExternalIdRotated { .. }
                | Event::RoleVerified { .. }
                | Event::RoleVerificationReset { .. }
                | Event::RoleFound { .. }
                | Event::RoleNeedsFixing { .. }
                | Event::AccountBlocked { .. }
                | Event::InvitationSent { .. }
                | Event::AccountLinked { .. }
                | Event::InvitationDeclined { .. }
                | Event::InvitationCanceled { .. }
                | Event::InvitationExpired { .. }
                | Event::SupportPlanGroupSet { .. }
                | Event::PriceBookSet { .. }
                | Event::RoleRecorded { .. }
                | Event::InvitationQueued { .. }
                | Event::SupportPlanAttention { .. }
                | Event::BusinessSupportLinked { .. }
                | Event::SupportTierMismatch { .. }
                | Event::BusinessSupportChanged { .. }
                | Event::TicketRequested { .. }
                | Event::TicketOpened { .. }
                | Event::TicketWaiting { .. }
                | Event::InvitationReminder { .. }
                | Event::NotificationUndeliverable { .. }
                | Event::NotificationDropped { .. }
                | Event::ClaimLapsed { .. }
                | Event::ClaimRevived { .. }
                | Event::ClaimClosed { .. }
                | Event::ClaimsFull { .. }
                | Event::ClaimRemoved { .. }
                | Event::ClaimTransferredOut { .. }
                | Event::ClaimTransferredIn { .. }
                | Event::AccountEdited { .. }
                | Event::QuotaExceeded { .. } => {}
                Event::TenantPending { .. }
                | Event::TenantAdmitted { .. }
                | Event::TenantApproved { .. }
                | Event::TenantDenied { .. }
                | Event::TenantSuspended { .. }
                | Event::TenantResumed { .. }
                | Event::OpsDigest { .. } => {}
            }
        }
        all
    }

    #[test]
    fn who_hears_of_each_event_and_in_which_tone() {
        use Tone::*;
        // (event, tenant, ops, tone); tone is None for the audit log only.
        let table: &[(&str, bool, bool, Option<Tone>)] = &[
            ("account_registered", true, false, Some(Info)),
            ("external_id_rotated", false, false, None),
            ("role_verified", true, false, Some(Success)),
            ("role_verification_reset", false, false, None),
            ("role_found", true, false, Some(Success)),
            ("role_needs_fixing", true, false, Some(Warning)),
            ("account_blocked", true, true, Some(Error)),
            ("invitation_sent", true, false, Some(Info)),
            ("account_linked", true, true, Some(Success)),
            ("invitation_declined", true, true, Some(Warning)),
            ("invitation_canceled", true, true, Some(Warning)),
            ("invitation_expired", true, true, Some(Warning)),
            ("support_plan_group_set", true, false, Some(Warning)),
            ("support_plan_group_set", false, false, None),
            ("price_book_set", false, false, None),
            ("role_recorded", false, false, None),
            ("invitation_queued", false, true, Some(Warning)),
            ("support_plan_attention", true, false, Some(Warning)),
            ("business_support_linked", false, true, Some(Warning)),
            ("support_tier_mismatch", true, false, Some(Warning)),
            ("business_support_changed", false, true, Some(Warning)),
            ("ticket_requested", false, false, None),
            ("ticket_opened", true, true, Some(Info)),
            ("ticket_waiting", false, true, Some(Warning)),
            ("invitation_reminder", true, false, Some(Warning)),
            ("notification_undeliverable", false, true, Some(Error)),
            ("notification_dropped", false, false, None),
            ("claim_lapsed", true, false, Some(Warning)),
            ("claim_revived", false, false, None),
            ("claim_closed", true, false, Some(Warning)),
            ("claims_full", false, true, Some(Warning)),
            ("claim_removed", true, false, Some(Warning)),
            ("claim_transferred_out", true, false, Some(Warning)),
            ("claim_transferred_in", true, false, Some(Info)),
            ("account_edited", false, false, None),
            ("tenant_pending", false, true, Some(Warning)),
            ("tenant_admitted", false, false, None),
            ("tenant_approved", true, false, Some(Success)),
            ("tenant_denied", true, false, Some(Error)),
            ("tenant_suspended", false, false, None),
            ("tenant_resumed", true, false, Some(Success)),
            ("ops_digest", false, true, Some(Info)),
            ("quota_exceeded", false, true, Some(Warning)),
        ];
        let events = every_event();
        assert_eq!(events.len(), table.len());
        for (event, (code, tenant, ops, tone)) in events.iter().zip(table) {
            assert_eq!(event.code(), *code);
            let got = notice(event);
            assert_eq!(got.as_ref().map(|n| n.tone), *tone, "{code}");
            let audience = got.map_or(Audience::NOBODY, |n| n.audience);
            assert_eq!((audience.tenant, audience.ops), (*tenant, *ops), "{code}");
            assert_eq!(event.notifies(), *tenant || *ops, "{code}");
        }
    }

    #[test]
    fn an_expired_invitation_requests_one_ticket_and_a_new_one_notes_it() {
        let mut account = account();
        invited(&mut account);
        let expired = [Event::InvitationExpired { account: account.id }];
        let effects = Effects::of(&account, &expired, AT);
        let [TicketEffect::Request(request)] = &effects.tickets[..] else { panic!("{effects:?}") };
        assert_eq!(request.key, "orglink-invite-expired-h-abcdefgh12");
        assert_eq!(effects.notices.len(), 1);

        // Once the ticket is open, the same event asks for nothing more.
        account.tickets.push(TicketRecord {
            key: request.key.clone(),
            id: 42,
            url: "https://desk.example/a/tickets/42".into(),
            kind: "invitation_expired".into(),
            opened_at: AT,
        });
        assert!(Effects::of(&account, &expired, AT).tickets.is_empty());

        // A new invitation adds a note to that ticket.
        let sent = [Event::InvitationSent { account: account.id, handshake_id: "h-abcdefgh12".into(), expires_at: AT }];
        let [TicketEffect::Request(note)] = &Effects::of(&account, &sent, AT).tickets[..] else { panic!() };
        assert_eq!(note.key, "orglink-note-42-h-abcdefgh12");
    }

    #[test]
    fn a_ticket_asked_for_is_requested_by_its_reason() {
        let account = account();
        let asked = [Event::TicketRequested { account: account.id, reason: "Need  HELP".into() }];
        let [TicketEffect::Request(a)] = &Effects::of(&account, &asked, AT).tickets[..] else { panic!() };
        let again = [Event::TicketRequested { account: account.id, reason: "need help".into() }];
        let [TicketEffect::Request(b)] = &Effects::of(&account, &again, AT).tickets[..] else { panic!() };
        assert_eq!(a.key, b.key, "case and spacing aside, one ticket per reason");
        // Nothing else asks for a ticket.
        let others: Vec<Event> = every_event()
            .into_iter()
            .filter(|e| !matches!(e, Event::TicketRequested { .. } | Event::InvitationExpired { .. }))
            .collect();
        assert!(Effects::of(&account, &others, AT).tickets.is_empty(), "no invitation: no note either");
    }

    #[test]
    fn undeliverable_notifications_tell_operations_except_their_own() {
        let a = account().id;
        let notice = undeliverable(&Event::AccountLinked { account: a }, "missing_access").unwrap();
        assert_eq!(
            notice.event,
            Event::NotificationUndeliverable {
                account: a,
                undelivered: "account_linked".into(),
                reason: "missing_access".into()
            }
        );
        assert_eq!(notice.audience, Audience::OPS);
        assert_eq!(undeliverable(&notice.event, "missing_access"), None);
    }

    #[test]
    fn a_tenant_without_a_channel_is_not_told_of_its_own_events_and_operations_always_are() {
        let t: crate::domain::TenantId = "900000000000000501".parse().unwrap();
        let events = [
            Event::TenantPending { tenant: t.clone(), by: None },
            Event::TenantApproved { tenant: t.clone() },
            Event::TenantSuspended { tenant: t.clone() },
        ];
        let none = TenantSettings::default();
        let codes = |notices: Vec<Notice>| notices.iter().map(|n| n.event.code()).collect::<Vec<_>>();
        assert_eq!(codes(Effects::of_tenant(&events, &none)), ["tenant_pending"]);
        let with_channel = TenantSettings { channel: crate::domain::ChatId::new(5), ..TenantSettings::default() };
        let notices = Effects::of_tenant(&events, &with_channel);
        assert_eq!(codes(notices.clone()), ["tenant_pending", "tenant_approved"]);
        assert_eq!(notices[0].audience, Audience::OPS);
        assert_eq!(notices[1].audience, Audience::TENANT);
        // Nobody hears that a notice of a tenant's own could not go out.
        assert_eq!(undeliverable(&events[1], "channel_not_found"), None);
    }

    #[test]
    fn only_tenant_notices_that_lacked_a_channel_are_replayed() {
        let a = account().id;
        let tenant = notice(&Event::AccountRegistered { account: a }).unwrap();
        let ops = notice(&Event::InvitationQueued { account: a }).unwrap();
        assert!(replay_when_channel_set(&tenant, NO_CHANNEL));
        assert!(!replay_when_channel_set(&tenant, "missing_access"));
        assert!(!replay_when_channel_set(&ops, NO_CHANNEL));
    }
}

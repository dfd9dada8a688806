//! The link lifecycle: registered → role verified → invited → linked, with
//! the ways an invitation ends and the blocks that stop an account.
//!
//! Transitions are pure: they return the new state and the events the change
//! causes, or an [`IllegalTransition`] error. Nothing changes silently.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountId, ChatId, SupportLevel, SupportPlanGroup, SupportTier, TenantId};

/// Why an account cannot move on by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    /// The management account of its own organization: needs consent to
    /// assignment (CTA) through the sales representative.
    ManagementAccount,
    /// Still a member of another organization: it must leave it first.
    MemberOfAnotherOrganization,
}

/// Stored and shown as its [`code`](LinkState::code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum LinkState {
    Registered,
    RoleVerified,
    Invited,
    Linked,
    InvitationExpired,
    InvitationDeclined,
    InvitationCanceled,
    Blocked {
        reason: BlockReason,
    },
    /// A claim whose window ended without a verified role: it no longer
    /// counts against the tenant's quota, and showing the instructions
    /// again revives it.
    Lapsed,
}

impl LinkState {
    /// The stable name templates and JSON output use.
    pub fn code(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::RoleVerified => "role_verified",
            Self::Invited => "invited",
            Self::Linked => "linked",
            Self::InvitationExpired => "invitation_expired",
            Self::InvitationDeclined => "invitation_declined",
            Self::InvitationCanceled => "invitation_canceled",
            Self::Blocked { reason: BlockReason::ManagementAccount } => "blocked_management_account",
            Self::Blocked { reason: BlockReason::MemberOfAnotherOrganization } => "blocked_member_account",
            Self::Lapsed => "lapsed",
        }
    }

    pub const ALL: [LinkState; 10] = [
        Self::Registered,
        Self::RoleVerified,
        Self::Invited,
        Self::Linked,
        Self::InvitationExpired,
        Self::InvitationDeclined,
        Self::InvitationCanceled,
        Self::Blocked { reason: BlockReason::ManagementAccount },
        Self::Blocked { reason: BlockReason::MemberOfAnotherOrganization },
        Self::Lapsed,
    ];

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// A state by its code, as `account list --state` takes it.
    pub fn parse_code(input: &str) -> Result<Self, super::ParseError> {
        Self::from_code(super::trim_pasted(input).to_ascii_lowercase().as_str())
            .ok_or_else(|| super::ParseError::LinkState { input: super::quote_input(input) })
    }

    fn invitation_ended(self) -> bool {
        matches!(self, Self::InvitationExpired | Self::InvitationDeclined | Self::InvitationCanceled)
    }
}

impl From<LinkState> for &'static str {
    fn from(state: LinkState) -> Self {
        state.code()
    }
}

impl TryFrom<String> for LinkState {
    type Error = String;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        Self::from_code(&code).ok_or_else(|| format!("unknown link state {code:?}"))
    }
}

/// Something that happens to an account's link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transition", rename_all = "snake_case")]
pub enum Transition {
    /// Every required check of the role passed.
    RoleVerified,
    /// The account got a new external ID: the role must be verified again.
    ExternalIdRotated,
    /// Another role ARN was recorded: it must be verified before it counts.
    RoleReplaced,
    /// A check found the account cannot be linked as it is.
    Blocked {
        reason: BlockReason,
    },
    /// An AWS Organizations invitation (handshake) was sent.
    InvitationSent {
        handshake_id: String,
        #[serde(with = "crate::domain::instant")]
        expires_at: OffsetDateTime,
    },
    InvitationAccepted,
    InvitationDeclined,
    InvitationCanceled,
    InvitationExpired,
    /// The claim's window ended without a verified role.
    Lapsed,
    /// A lapsed claim gets a fresh window.
    Revived,
}

impl Transition {
    pub fn code(&self) -> &'static str {
        match self {
            Self::RoleVerified => "role_verified",
            Self::ExternalIdRotated => "external_id_rotated",
            Self::RoleReplaced => "role_replaced",
            Self::Blocked { .. } => "blocked",
            Self::InvitationSent { .. } => "invitation_sent",
            Self::InvitationAccepted => "invitation_accepted",
            Self::InvitationDeclined => "invitation_declined",
            Self::InvitationCanceled => "invitation_canceled",
            Self::InvitationExpired => "invitation_expired",
            Self::Lapsed => "lapsed",
            Self::Revived => "revived",
        }
    }
}

/// What a change caused, for the audit log and (where someone must hear of
/// it) the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    AccountRegistered {
        account: AccountId,
    },
    ExternalIdRotated {
        account: AccountId,
    },
    RoleVerified {
        account: AccountId,
    },
    RoleVerificationReset {
        account: AccountId,
    },
    /// The probe found the role under the suggested name and every check
    /// passed: nothing to paste.
    RoleFound {
        account: AccountId,
    },
    /// The probe found the role, but these required checks fail: the tenant
    /// is told what to fix, once per set of problems.
    RoleNeedsFixing {
        account: AccountId,
        checks: Vec<super::CheckName>,
    },
    AccountBlocked {
        account: AccountId,
        reason: BlockReason,
    },
    InvitationSent {
        account: AccountId,
        handshake_id: String,
        #[serde(with = "crate::domain::instant")]
        expires_at: OffsetDateTime,
    },
    AccountLinked {
        account: AccountId,
    },
    InvitationDeclined {
        account: AccountId,
    },
    InvitationCanceled {
        account: AccountId,
    },
    InvitationExpired {
        account: AccountId,
    },
    SupportPlanGroupSet {
        account: AccountId,
        group: SupportPlanGroup,
        matches_tier: bool,
    },
    PriceBookSet {
        account: AccountId,
    },
    RoleRecorded {
        account: AccountId,
    },
    /// AWS's daily invitation quota is used up: sent when it allows.
    InvitationQueued {
        account: AccountId,
    },
    /// A linked account has no support plan group, or the wrong one:
    /// billing reports show negative margins until it is fixed.
    SupportPlanAttention {
        account: AccountId,
        /// The group recorded, if any.
        group: Option<SupportPlanGroup>,
        expected: SupportPlanGroup,
    },
    /// A newly linked account has Business support: operations must know.
    BusinessSupportLinked {
        account: AccountId,
    },
    /// AWS says the account has another support tier than the one its
    /// tenant declared: the tenant corrects it; `needs` is the support
    /// plan group AWS's tier needs.
    SupportTierMismatch {
        account: AccountId,
        declared: SupportTier,
        aws: SupportLevel,
        needs: SupportPlanGroup,
    },
    /// AWS says the account has Business support (or higher) where the
    /// platform went by a lower tier, or no longer has it: operations must
    /// know (Business-level support, the support plan group).
    BusinessSupportChanged {
        account: AccountId,
        declared: SupportTier,
        aws: SupportLevel,
    },
    /// A ticket was asked for (it is opened in Freshdesk afterwards).
    TicketRequested {
        account: AccountId,
        reason: String,
    },
    /// The ticket is open in Freshdesk.
    TicketOpened {
        account: AccountId,
        ticket_id: u64,
        url: String,
        /// `invitation_expired` or `requested`.
        kind: String,
    },
    /// Freshdesk could not take a ticket (not configured, down, refused):
    /// it waits; operations are told once.
    TicketWaiting {
        account: AccountId,
        problem: String,
    },
    /// An open invitation is close to its expiry.
    InvitationReminder {
        account: AccountId,
        #[serde(with = "crate::domain::instant")]
        expires_at: OffsetDateTime,
        days_left: i64,
    },
    /// The claim's window ended without a verified role.
    ClaimLapsed {
        account: AccountId,
    },
    /// A lapsed claim got a fresh window.
    ClaimRevived {
        account: AccountId,
    },
    /// Another reseller's claim proved control of the account: this claim
    /// is closed (its tenant is not told whose claim won).
    ClaimClosed {
        account: AccountId,
    },
    /// A tenant's claim was refused because the account has as many open
    /// claims as allowed: operations look into it.
    ClaimsFull {
        account: AccountId,
        tenant: super::TenantId,
    },
    /// Operations removed the claim (it stays, closed, for the record).
    ClaimRemoved {
        account: AccountId,
        reason: String,
    },
    /// Operations moved the claim to another tenant: what its former tenant
    /// hears.
    ClaimTransferredOut {
        account: AccountId,
        reason: String,
    },
    /// ...and what its new tenant hears.
    ClaimTransferredIn {
        account: AccountId,
        reason: String,
    },
    /// The registration's details were corrected.
    AccountEdited {
        account: AccountId,
        /// The fields changed, by name.
        fields: Vec<String>,
        /// Why, when operations did it.
        reason: Option<String>,
    },
    /// A tenant was refused a command about the account: it was over a
    /// quota. Operations hear of it once a day per tenant and quota.
    QuotaExceeded {
        account: AccountId,
        tenant: super::TenantId,
        quota: super::quota::Quota,
        limit: u32,
    },
    /// A notification about the account could not be delivered.
    NotificationUndeliverable {
        account: AccountId,
        /// The code of the event that could not be delivered.
        undelivered: String,
        reason: String,
    },
    /// Operations dropped a notification that waited or could not be
    /// delivered: about an account (`account`), or a tenant's own.
    NotificationDropped {
        account: Option<AccountId>,
        tenant: TenantId,
        /// The code of the event whose notification was dropped.
        dropped: String,
        reason: String,
    },
    /// A server's first command, under the approval policy: it waits for
    /// operations to approve or deny it.
    TenantPending {
        tenant: TenantId,
        /// The member whose command it was.
        by: Option<ChatId>,
    },
    /// A server's first command, under the open policy: it is in.
    TenantAdmitted {
        tenant: TenantId,
    },
    TenantApproved {
        tenant: TenantId,
    },
    TenantDenied {
        tenant: TenantId,
    },
    TenantSuspended {
        tenant: TenantId,
    },
    TenantResumed {
        tenant: TenantId,
    },
    /// The daily digest for operations (`ops_digest`): what changed in the
    /// last 24 hours and what needs them today. Stands alone; `tenant` is
    /// the operations server.
    OpsDigest {
        tenant: TenantId,
        /// Claims registered in the last 24 hours.
        registered: u32,
        /// Claims that entered each state in the last 24 hours (states
        /// with none left out).
        entered: Vec<(LinkState, u32)>,
        /// Claims waiting on operations (to send the invitation).
        operations_next: u32,
        invitations_expiring: u32,
        blocked: u32,
        /// Linked accounts without the right support plan group.
        support_plan_attention: u32,
        /// Notifications that could not be delivered.
        notifications_dead: u32,
    },
}

impl Event {
    pub fn code(&self) -> &'static str {
        match self {
            Self::AccountRegistered { .. } => "account_registered",
            Self::ExternalIdRotated { .. } => "external_id_rotated",
            Self::RoleVerified { .. } => "role_verified",
            Self::RoleVerificationReset { .. } => "role_verification_reset",
            Self::RoleFound { .. } => "role_found",
            Self::RoleNeedsFixing { .. } => "role_needs_fixing",
            Self::AccountBlocked { .. } => "account_blocked",
            Self::InvitationSent { .. } => "invitation_sent",
            Self::AccountLinked { .. } => "account_linked",
            Self::InvitationDeclined { .. } => "invitation_declined",
            Self::InvitationCanceled { .. } => "invitation_canceled",
            Self::InvitationExpired { .. } => "invitation_expired",
            Self::SupportPlanGroupSet { .. } => "support_plan_group_set",
            Self::PriceBookSet { .. } => "price_book_set",
            Self::RoleRecorded { .. } => "role_recorded",
            Self::InvitationQueued { .. } => "invitation_queued",
            Self::InvitationReminder { .. } => "invitation_reminder",
            Self::SupportPlanAttention { .. } => "support_plan_attention",
            Self::TicketRequested { .. } => "ticket_requested",
            Self::TicketOpened { .. } => "ticket_opened",
            Self::TicketWaiting { .. } => "ticket_waiting",
            Self::BusinessSupportLinked { .. } => "business_support_linked",
            Self::SupportTierMismatch { .. } => "support_tier_mismatch",
            Self::BusinessSupportChanged { .. } => "business_support_changed",
            Self::NotificationUndeliverable { .. } => "notification_undeliverable",
            Self::NotificationDropped { .. } => "notification_dropped",
            Self::ClaimLapsed { .. } => "claim_lapsed",
            Self::ClaimRevived { .. } => "claim_revived",
            Self::ClaimClosed { .. } => "claim_closed",
            Self::ClaimsFull { .. } => "claims_full",
            Self::ClaimRemoved { .. } => "claim_removed",
            Self::ClaimTransferredOut { .. } => "claim_transferred_out",
            Self::ClaimTransferredIn { .. } => "claim_transferred_in",
            Self::AccountEdited { .. } => "account_edited",
            Self::TenantPending { .. } => "tenant_pending",
            Self::TenantAdmitted { .. } => "tenant_admitted",
            Self::TenantApproved { .. } => "tenant_approved",
            Self::TenantDenied { .. } => "tenant_denied",
            Self::TenantSuspended { .. } => "tenant_suspended",
            Self::TenantResumed { .. } => "tenant_resumed",
            Self::OpsDigest { .. } => "ops_digest",
            Self::QuotaExceeded { .. } => "quota_exceeded",
        }
    }

    /// The account it is about; `None` for the events of a tenant.
    pub fn account(&self) -> Option<AccountId> {
        match self {
            Self::AccountRegistered { account }
            | Self::ExternalIdRotated { account }
            | Self::RoleVerified { account }
            | Self::RoleVerificationReset { account }
            | Self::RoleFound { account }
            | Self::RoleNeedsFixing { account, .. }
            | Self::AccountBlocked { account, .. }
            | Self::InvitationSent { account, .. }
            | Self::AccountLinked { account }
            | Self::InvitationDeclined { account }
            | Self::InvitationCanceled { account }
            | Self::InvitationExpired { account }
            | Self::SupportPlanGroupSet { account, .. }
            | Self::PriceBookSet { account }
            | Self::RoleRecorded { account }
            | Self::InvitationQueued { account }
            | Self::InvitationReminder { account, .. }
            | Self::SupportPlanAttention { account, .. }
            | Self::BusinessSupportLinked { account }
            | Self::SupportTierMismatch { account, .. }
            | Self::BusinessSupportChanged { account, .. }
            | Self::TicketRequested { account, .. }
            | Self::TicketOpened { account, .. }
            | Self::TicketWaiting { account, .. }
            | Self::NotificationUndeliverable { account, .. }
            | Self::ClaimLapsed { account }
            | Self::ClaimRevived { account }
            | Self::ClaimClosed { account }
            | Self::ClaimsFull { account, .. }
            | Self::ClaimRemoved { account, .. }
            | Self::ClaimTransferredOut { account, .. }
            | Self::ClaimTransferredIn { account, .. }
            | Self::AccountEdited { account, .. }
            | Self::QuotaExceeded { account, .. } => Some(*account),
            Self::NotificationDropped { account, .. } => *account,
            Self::TenantPending { .. }
            | Self::TenantAdmitted { .. }
            | Self::TenantApproved { .. }
            | Self::TenantDenied { .. }
            | Self::TenantSuspended { .. }
            | Self::TenantResumed { .. }
            | Self::OpsDigest { .. } => None,
        }
    }

    /// Whether its notification shows only what the event holds, so that it
    /// goes out without a claim of its tenant on the account: a tenant
    /// refused a registration over its quota has none.
    pub fn stands_alone(&self) -> bool {
        match self {
            Self::QuotaExceeded { .. } | Self::OpsDigest { .. } => true,
            Self::AccountRegistered { .. }
            | Self::ExternalIdRotated { .. }
            | Self::RoleVerified { .. }
            | Self::RoleVerificationReset { .. }
            | Self::RoleFound { .. }
            | Self::RoleNeedsFixing { .. }
            | Self::AccountBlocked { .. }
            | Self::InvitationSent { .. }
            | Self::AccountLinked { .. }
            | Self::InvitationDeclined { .. }
            | Self::InvitationCanceled { .. }
            | Self::InvitationExpired { .. }
            | Self::SupportPlanGroupSet { .. }
            | Self::PriceBookSet { .. }
            | Self::RoleRecorded { .. }
            | Self::InvitationQueued { .. }
            | Self::InvitationReminder { .. }
            | Self::SupportPlanAttention { .. }
            | Self::BusinessSupportLinked { .. }
            | Self::SupportTierMismatch { .. }
            | Self::BusinessSupportChanged { .. }
            | Self::TicketRequested { .. }
            | Self::TicketOpened { .. }
            | Self::TicketWaiting { .. }
            | Self::NotificationUndeliverable { .. }
            | Self::NotificationDropped { .. }
            | Self::ClaimLapsed { .. }
            | Self::ClaimRevived { .. }
            | Self::ClaimClosed { .. }
            | Self::ClaimsFull { .. }
            | Self::ClaimRemoved { .. }
            | Self::ClaimTransferredOut { .. }
            | Self::ClaimTransferredIn { .. }
            | Self::AccountEdited { .. }
            | Self::TenantPending { .. }
            | Self::TenantAdmitted { .. }
            | Self::TenantApproved { .. }
            | Self::TenantDenied { .. }
            | Self::TenantSuspended { .. }
            | Self::TenantResumed { .. } => false,
        }
    }

    /// The tenant it is about, for the events of a tenant itself (an
    /// account's events name the account, whose record names its tenant).
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Self::TenantPending { tenant, .. }
            | Self::TenantAdmitted { tenant }
            | Self::TenantApproved { tenant }
            | Self::TenantDenied { tenant }
            | Self::TenantSuspended { tenant }
            | Self::TenantResumed { tenant }
            | Self::OpsDigest { tenant, .. } => Some(tenant),
            // A tenant's own notice dropped is the tenant's event.
            Self::NotificationDropped { account: None, tenant, .. } => Some(tenant),
            Self::NotificationDropped { account: Some(_), .. } => None,
            Self::AccountRegistered { .. }
            | Self::ExternalIdRotated { .. }
            | Self::RoleVerified { .. }
            | Self::RoleVerificationReset { .. }
            | Self::RoleFound { .. }
            | Self::RoleNeedsFixing { .. }
            | Self::AccountBlocked { .. }
            | Self::InvitationSent { .. }
            | Self::AccountLinked { .. }
            | Self::InvitationDeclined { .. }
            | Self::InvitationCanceled { .. }
            | Self::InvitationExpired { .. }
            | Self::SupportPlanGroupSet { .. }
            | Self::PriceBookSet { .. }
            | Self::RoleRecorded { .. }
            | Self::InvitationQueued { .. }
            | Self::InvitationReminder { .. }
            | Self::SupportPlanAttention { .. }
            | Self::BusinessSupportLinked { .. }
            | Self::SupportTierMismatch { .. }
            | Self::BusinessSupportChanged { .. }
            | Self::TicketRequested { .. }
            | Self::TicketOpened { .. }
            | Self::TicketWaiting { .. }
            | Self::NotificationUndeliverable { .. }
            | Self::ClaimLapsed { .. }
            | Self::ClaimRevived { .. }
            | Self::ClaimClosed { .. }
            | Self::ClaimsFull { .. }
            | Self::ClaimRemoved { .. }
            | Self::ClaimTransferredOut { .. }
            | Self::ClaimTransferredIn { .. }
            | Self::AccountEdited { .. }
            | Self::QuotaExceeded { .. } => None,
        }
    }

    /// Whether a channel must hear of this event (it then goes to the
    /// outbox); the rest are kept in the audit log only.
    pub fn notifies(&self) -> bool {
        super::effects::notice(self).is_some()
    }
}

/// A transition the current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot apply {transition} to an account in state {from}")]
pub struct IllegalTransition {
    pub from: &'static str,
    pub transition: &'static str,
}

impl LinkState {
    /// The state `transition` leads to from this one, and the events it
    /// causes for `account`.
    pub fn apply(
        self,
        transition: &Transition,
        account: AccountId,
    ) -> Result<(LinkState, Vec<Event>), IllegalTransition> {
        use LinkState as S;
        use Transition as T;
        let illegal = || IllegalTransition { from: self.code(), transition: transition.code() };
        let next = match (self, transition) {
            // A fresh verification moves the account on.
            (S::Registered | S::Blocked { .. }, T::RoleVerified) => {
                (S::RoleVerified, vec![Event::RoleVerified { account }])
            }
            (s, T::RoleVerified) if s.invitation_ended() => (S::RoleVerified, vec![Event::RoleVerified { account }]),
            // Re-checking a role that already passed changes nothing.
            (S::RoleVerified | S::Invited | S::Linked, T::RoleVerified) => (self, vec![]),

            (S::Registered, T::ExternalIdRotated) => (S::Registered, vec![Event::ExternalIdRotated { account }]),
            (S::Blocked { .. }, T::ExternalIdRotated) => (self, vec![Event::ExternalIdRotated { account }]),
            (S::RoleVerified, T::ExternalIdRotated) => {
                (S::Registered, vec![Event::ExternalIdRotated { account }, Event::RoleVerificationReset { account }])
            }
            (s, T::ExternalIdRotated) if s.invitation_ended() => {
                (S::Registered, vec![Event::ExternalIdRotated { account }, Event::RoleVerificationReset { account }])
            }

            (S::Registered | S::Blocked { .. }, T::RoleReplaced) => (self, vec![]),
            (S::RoleVerified, T::RoleReplaced) => (S::Registered, vec![Event::RoleVerificationReset { account }]),
            (s, T::RoleReplaced) if s.invitation_ended() => {
                (S::Registered, vec![Event::RoleVerificationReset { account }])
            }

            (S::Registered | S::RoleVerified | S::Blocked { .. }, T::Blocked { reason }) => {
                (S::Blocked { reason: *reason }, vec![Event::AccountBlocked { account, reason: *reason }])
            }
            (s, T::Blocked { reason }) if s.invitation_ended() => {
                (S::Blocked { reason: *reason }, vec![Event::AccountBlocked { account, reason: *reason }])
            }

            (S::RoleVerified, T::InvitationSent { handshake_id, expires_at }) => (
                S::Invited,
                vec![Event::InvitationSent { account, handshake_id: handshake_id.clone(), expires_at: *expires_at }],
            ),
            (s, T::InvitationSent { handshake_id, expires_at }) if s.invitation_ended() => (
                S::Invited,
                vec![Event::InvitationSent { account, handshake_id: handshake_id.clone(), expires_at: *expires_at }],
            ),

            (S::Invited, T::InvitationAccepted) => (S::Linked, vec![Event::AccountLinked { account }]),
            (S::Invited, T::InvitationDeclined) => (S::InvitationDeclined, vec![Event::InvitationDeclined { account }]),
            (S::Invited, T::InvitationCanceled) => (S::InvitationCanceled, vec![Event::InvitationCanceled { account }]),
            (S::Invited, T::InvitationExpired) => (S::InvitationExpired, vec![Event::InvitationExpired { account }]),

            (S::Registered, T::Lapsed) => (S::Lapsed, vec![Event::ClaimLapsed { account }]),
            (S::Lapsed, T::Revived) => (S::Registered, vec![Event::ClaimRevived { account }]),
            // A lapsed claim whose role turns up (operations verify it) or
            // that gets a new external ID is alive again.
            (S::Lapsed, T::RoleVerified) => {
                (S::RoleVerified, vec![Event::ClaimRevived { account }, Event::RoleVerified { account }])
            }
            (S::Lapsed, T::ExternalIdRotated) => {
                (S::Registered, vec![Event::ClaimRevived { account }, Event::ExternalIdRotated { account }])
            }
            (S::Lapsed, T::RoleReplaced) => (self, vec![]),
            (S::Lapsed, T::Blocked { reason }) => {
                (S::Blocked { reason: *reason }, vec![Event::AccountBlocked { account, reason: *reason }])
            }
            _ => return Err(illegal()),
        };
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn account() -> AccountId {
        "123456789012".parse().unwrap()
    }

    fn sent() -> Transition {
        Transition::InvitationSent { handshake_id: "h-abc".into(), expires_at: datetime!(2026-12-11 00:00 UTC) }
    }

    #[test]
    fn the_happy_path_links_the_account() {
        let a = account();
        let (s, e) = LinkState::Registered.apply(&Transition::RoleVerified, a).unwrap();
        assert_eq!((s, e), (LinkState::RoleVerified, vec![Event::RoleVerified { account: a }]));
        let (s, e) = s.apply(&sent(), a).unwrap();
        assert_eq!(s, LinkState::Invited);
        assert!(matches!(&e[..], [Event::InvitationSent { handshake_id, .. }] if handshake_id == "h-abc"));
        let (s, e) = s.apply(&Transition::InvitationAccepted, a).unwrap();
        assert_eq!((s, e), (LinkState::Linked, vec![Event::AccountLinked { account: a }]));
    }

    #[test]
    fn an_ended_invitation_can_be_sent_again() {
        let a = account();
        for end in [Transition::InvitationExpired, Transition::InvitationDeclined, Transition::InvitationCanceled] {
            let (ended, events) = LinkState::Invited.apply(&end, a).unwrap();
            assert_eq!(events.len(), 1);
            assert!(ended.invitation_ended());
            assert_eq!(ended.apply(&sent(), a).unwrap().0, LinkState::Invited);
            assert_eq!(ended.apply(&Transition::InvitationAccepted, a).unwrap_err().from, ended.code());
        }
    }

    #[test]
    fn rotation_resets_verification_and_is_refused_once_invited() {
        let a = account();
        let (s, e) = LinkState::RoleVerified.apply(&Transition::ExternalIdRotated, a).unwrap();
        assert_eq!(s, LinkState::Registered);
        assert_eq!(e, vec![Event::ExternalIdRotated { account: a }, Event::RoleVerificationReset { account: a }]);
        for s in [LinkState::Invited, LinkState::Linked] {
            let err = s.apply(&Transition::ExternalIdRotated, a).unwrap_err();
            assert_eq!(err.transition, "external_id_rotated");
        }
    }

    #[test]
    fn illegal_transitions_are_errors_not_no_ops() {
        let a = account();
        let illegal = [
            (LinkState::Registered, sent()),
            (LinkState::Registered, Transition::InvitationAccepted),
            (LinkState::RoleVerified, Transition::InvitationExpired),
            (LinkState::Linked, sent()),
            (LinkState::Linked, Transition::Blocked { reason: BlockReason::ManagementAccount }),
            (LinkState::Invited, sent()),
            (LinkState::Blocked { reason: BlockReason::ManagementAccount }, sent()),
        ];
        for (state, transition) in illegal {
            assert!(state.apply(&transition, a).is_err(), "{state:?} + {transition:?}");
        }
    }

    #[test]
    fn every_legal_state_change_emits_an_event() {
        let a = account();
        let transitions = [
            Transition::RoleVerified,
            Transition::ExternalIdRotated,
            Transition::RoleReplaced,
            Transition::Blocked { reason: BlockReason::MemberOfAnotherOrganization },
            sent(),
            Transition::InvitationAccepted,
            Transition::InvitationDeclined,
            Transition::InvitationCanceled,
            Transition::InvitationExpired,
            Transition::Lapsed,
            Transition::Revived,
        ];
        for state in LinkState::ALL {
            for t in &transitions {
                if let Ok((next, events)) = state.apply(t, a) {
                    assert!(next == state || !events.is_empty(), "{state:?} + {t:?} changed silently");
                }
            }
        }
    }

    #[test]
    fn only_an_unverified_claim_lapses_and_a_lapsed_one_revives() {
        let a = account();
        let (s, e) = LinkState::Registered.apply(&Transition::Lapsed, a).unwrap();
        assert_eq!((s, e), (LinkState::Lapsed, vec![Event::ClaimLapsed { account: a }]));
        assert_eq!(s.apply(&Transition::Revived, a).unwrap().0, LinkState::Registered);
        for state in [LinkState::RoleVerified, LinkState::Invited, LinkState::Linked, LinkState::Lapsed] {
            assert!(state.apply(&Transition::Lapsed, a).is_err(), "{state:?}");
        }
        assert!(LinkState::Registered.apply(&Transition::Revived, a).is_err());
    }

    #[test]
    fn state_codes_are_distinct() {
        let codes: std::collections::HashSet<_> = LinkState::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes.len(), LinkState::ALL.len());
    }
}

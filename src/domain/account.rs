//! A registered AWS account, its checklist and the changes it allows.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    AccountId, AccountKind, CustomerName, Email, Event, ExternalId, HandshakeState, IllegalTransition, Invitation,
    InvitationNote, LinkState, Partition, PriceBookName, ProbeOutcome, ProbePlan, ProbeRecord, ProbeResult, RoleArn,
    RoleDescription, SupportLevel, SupportPlanGroup, SupportTier, TenantId, TicketRecord, Transition,
    VerificationReport,
};

/// The price book the platform bills the account with: `{"kind":
/// "default"}` or `{"kind": "custom", "name": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "PriceBookRepr", try_from = "PriceBookRepr")]
pub enum PriceBookChoice {
    /// The provider's default price book (the AWS master price book).
    Default,
    /// A custom price book for this account.
    Custom(PriceBookName),
}

/// How a [`PriceBookChoice`] is written: serde's adjacent tagging does not
/// read back a unit variant from the store's compact encoding.
#[derive(Serialize, Deserialize)]
struct PriceBookRepr {
    kind: PriceBookKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<PriceBookName>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PriceBookKind {
    Default,
    Custom,
}

impl From<PriceBookChoice> for PriceBookRepr {
    fn from(choice: PriceBookChoice) -> Self {
        match choice {
            PriceBookChoice::Default => Self { kind: PriceBookKind::Default, name: None },
            PriceBookChoice::Custom(name) => Self { kind: PriceBookKind::Custom, name: Some(name) },
        }
    }
}

impl TryFrom<PriceBookRepr> for PriceBookChoice {
    type Error = &'static str;
    fn try_from(repr: PriceBookRepr) -> Result<Self, Self::Error> {
        match (repr.kind, repr.name) {
            (PriceBookKind::Default, None) => Ok(Self::Default),
            (PriceBookKind::Custom, Some(name)) => Ok(Self::Custom(name)),
            (PriceBookKind::Default, Some(_)) => Err("the default price book has no name"),
            (PriceBookKind::Custom, None) => Err("a custom price book needs a name"),
        }
    }
}

impl PriceBookChoice {
    /// A custom price book by name, or the provider's default when none is
    /// given: how every front end reads the choice.
    pub fn from_name(name: Option<&str>) -> Result<Self, super::ParseError> {
        name.map_or(Ok(Self::Default), |name| Ok(Self::Custom(name.parse()?)))
    }
}

/// An invitation AWS would not send yet (the organization's daily quota).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedInvitation {
    pub note: Option<InvitationNote>,
    #[serde(with = "crate::domain::instant")]
    pub queued_at: OffsetDateTime,
    /// Who asked for it.
    pub by: String,
}

/// The role the customer created, as recorded and (once checked) verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub arn: RoleArn,
    pub description: Option<RoleDescription>,
    #[serde(with = "crate::domain::instant")]
    pub recorded_at: OffsetDateTime,
    #[serde(with = "crate::domain::instant::option", default)]
    pub verified_at: Option<OffsetDateTime>,
    /// The last check of this role.
    #[serde(default)]
    pub report: Option<VerificationReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub tenant: TenantId,
    pub customer: CustomerName,
    pub root_email: Option<Email>,
    pub support_tier: SupportTier,
    /// What the reseller declared; role verification may correct it.
    pub kind: AccountKind,
    pub external_id: ExternalId,
    pub state: LinkState,
    pub role: Option<RoleRecord>,
    pub support_plan_group: Option<SupportPlanGroup>,
    pub price_book: Option<PriceBookChoice>,
    /// The AWS Organizations invitation sent last, if any.
    #[serde(default)]
    pub invitation: Option<Invitation>,
    /// An invitation waiting for the organization's daily quota.
    #[serde(default)]
    pub queued_invitation: Option<QueuedInvitation>,
    /// Freshdesk tickets opened for the account.
    #[serde(default)]
    pub tickets: Vec<TicketRecord>,
    /// The search for the role under the suggested name (none yet: it
    /// starts from the registration).
    #[serde(default)]
    pub probe: Option<ProbeRecord>,
    #[serde(with = "crate::domain::instant")]
    pub registered_at: OffsetDateTime,
    #[serde(with = "crate::domain::instant")]
    pub updated_at: OffsetDateTime,
    /// When this claim's role first verified: from then on this tenant owns
    /// the AWS account, and no other claim on it stays open.
    #[serde(with = "crate::domain::instant::option", default)]
    pub owned_at: Option<OffsetDateTime>,
    /// When the claim's window to get its role verified began (the
    /// registration, or the last time the instructions were shown or the
    /// claim revived).
    #[serde(with = "crate::domain::instant::option", default)]
    pub window_from: Option<OffsetDateTime>,
    /// When the claim closed (another tenant proved control, or operations
    /// removed it): its tenant no longer sees it; it stays for the record.
    #[serde(with = "crate::domain::instant::option", default)]
    pub closed_at: Option<OffsetDateTime>,
}

/// What a reseller gives to register an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub id: AccountId,
    pub tenant: TenantId,
    pub customer: CustomerName,
    pub root_email: Option<Email>,
    pub support_tier: SupportTier,
    pub kind: AccountKind,
    pub price_book: Option<PriceBookName>,
}

/// A management account cannot be linked by invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("management accounts need consent to assignment, not an invitation")]
pub struct ManagementAccountRefused;

impl Account {
    /// Registers `new` with its external ID. A management (payer) account is
    /// refused; any other starts in [`LinkState::Registered`].
    pub fn register(
        new: NewAccount,
        external_id: ExternalId,
        now: OffsetDateTime,
    ) -> Result<(Account, Vec<Event>), ManagementAccountRefused> {
        if new.kind == AccountKind::Management {
            return Err(ManagementAccountRefused);
        }
        let account = Account {
            id: new.id,
            tenant: new.tenant,
            customer: new.customer,
            root_email: new.root_email,
            support_tier: new.support_tier,
            kind: new.kind,
            external_id,
            state: LinkState::Registered,
            role: None,
            support_plan_group: None,
            price_book: new.price_book.map(PriceBookChoice::Custom),
            invitation: None,
            queued_invitation: None,
            tickets: Vec::new(),
            probe: None,
            registered_at: now,
            updated_at: now,
            owned_at: None,
            window_from: None,
            closed_at: None,
        };
        let events = vec![Event::AccountRegistered { account: account.id }];
        Ok((account, events))
    }

    /// Applies a lifecycle transition, keeping the record in step.
    pub fn apply(&mut self, transition: &Transition, now: OffsetDateTime) -> Result<Vec<Event>, IllegalTransition> {
        let (state, events) = self.state.apply(transition, self.id)?;
        self.state = state;
        self.updated_at = now;
        if let (Transition::RoleVerified, Some(role)) = (transition, self.role.as_mut()) {
            role.verified_at = Some(now);
        }
        Ok(events)
    }

    /// Gives the account a new external ID: any role verification is void,
    /// since the role must now trust the new ID.
    pub fn rotate_external_id(
        &mut self,
        external_id: ExternalId,
        now: OffsetDateTime,
    ) -> Result<Vec<Event>, IllegalTransition> {
        let events = self.apply(&Transition::ExternalIdRotated, now)?;
        self.external_id = external_id;
        if let Some(role) = self.role.as_mut() {
            role.verified_at = None;
        }
        Ok(events)
    }

    /// Records the role the customer says they created. Another ARN than the
    /// one verified voids the verification.
    pub fn record_role(
        &mut self,
        arn: RoleArn,
        description: Option<RoleDescription>,
        now: OffsetDateTime,
    ) -> Result<Vec<Event>, IllegalTransition> {
        let same_role = self.role.as_ref().is_some_and(|r| r.arn == arn);
        let mut events = if same_role { vec![] } else { self.apply(&Transition::RoleReplaced, now)? };
        let verified_at = self.role.as_ref().filter(|_| same_role).and_then(|r| r.verified_at);
        let description = description.or_else(|| self.role.as_ref().filter(|_| same_role)?.description.clone());
        let report = self.role.as_ref().filter(|_| same_role).and_then(|r| r.report.clone());
        self.role = Some(RoleRecord { arn, description, recorded_at: now, verified_at, report });
        self.updated_at = now;
        events.push(Event::RoleRecorded { account: self.id });
        Ok(events)
    }

    /// Records the check of `arn` and moves the lifecycle by its result:
    /// verified → role verified; a management account → blocked; a failed
    /// check of the role that was verified → back to registered.
    pub fn apply_verification(
        &mut self,
        arn: RoleArn,
        description: Option<RoleDescription>,
        report: VerificationReport,
        now: OffsetDateTime,
    ) -> Result<Vec<Event>, IllegalTransition> {
        use super::{BlockReason, LinkState as S};
        // What the platform went by before this check, and what AWS had
        // told of the tier at the last one.
        let (level_before, told_before) = (self.support_level(), self.aws_support_level());
        let told = report.support_tier.level();
        let mut events = self.record_role(arn.clone(), description, now)?;
        if let Some(kind) = report.detected_kind {
            self.kind = kind;
        }
        if report.management_account() {
            if !matches!(self.state, S::Blocked { reason: BlockReason::ManagementAccount }) {
                events.extend(self.apply(&Transition::Blocked { reason: BlockReason::ManagementAccount }, now)?);
            }
        } else if report.verified() {
            events.extend(self.apply(&Transition::RoleVerified, now)?);
        } else if self.state == S::RoleVerified {
            events.extend(self.apply(&Transition::RoleReplaced, now)?);
        }
        let role = self.role.as_mut().expect("record_role set it");
        role.verified_at = report.verified().then_some(now).filter(|_| !report.management_account());
        if role.verified_at.is_some() && self.owned_at.is_none() {
            // The role trusts this claim's external ID: only someone who
            // controls the AWS account can arrange that.
            self.owned_at = Some(now);
        }
        role.report = Some(report);
        events.extend(self.support_tier_told(level_before, told_before, told));
        Ok(events)
    }

    /// What AWS telling `told` (if anything) of the support tier causes:
    /// the tenant hears of a tier other than the one declared, once per
    /// answer; operations hear when Business support appears or disappears
    /// against what the platform went by (`before`: AWS's last answer, else
    /// the declared tier). A check that learned nothing changes nothing.
    fn support_tier_told(
        &self,
        before: SupportLevel,
        told_before: Option<SupportLevel>,
        told: Option<SupportLevel>,
    ) -> Vec<Event> {
        let Some(level) = told else { return vec![] };
        let mut events = Vec::new();
        if level != self.support_tier.level() && told_before != Some(level) {
            events.push(Event::SupportTierMismatch {
                account: self.id,
                declared: self.support_tier,
                aws: level,
                needs: level.required_group(),
            });
        }
        if level.business() != before.business() {
            events.push(Event::BusinessSupportChanged { account: self.id, declared: self.support_tier, aws: level });
        }
        events
    }

    /// Records an invitation sent (or an open one adopted): the account is
    /// invited.
    pub fn invitation_sent(
        &mut self,
        invitation: Invitation,
        now: OffsetDateTime,
    ) -> Result<Vec<Event>, IllegalTransition> {
        let transition = Transition::InvitationSent {
            handshake_id: invitation.handshake_id.to_string(),
            expires_at: invitation.expires_at,
        };
        let events = self.apply(&transition, now)?;
        self.invitation = Some(invitation);
        self.queued_invitation = None;
        Ok(events)
    }

    /// Records the state AWS reports for the account's handshake; a final
    /// state moves the lifecycle. Seeing the same state again changes nothing.
    pub fn handshake_observed(
        &mut self,
        state: HandshakeState,
        now: OffsetDateTime,
    ) -> Result<Vec<Event>, IllegalTransition> {
        let Some(invitation) = self.invitation.as_ref() else { return Ok(vec![]) };
        if invitation.state == state {
            return Ok(vec![]);
        }
        let transition = match state {
            HandshakeState::Requested | HandshakeState::Open => None,
            HandshakeState::Accepted => Some(Transition::InvitationAccepted),
            HandshakeState::Declined => Some(Transition::InvitationDeclined),
            HandshakeState::Canceled => Some(Transition::InvitationCanceled),
            HandshakeState::Expired => Some(Transition::InvitationExpired),
        };
        let mut events = match transition {
            Some(t) => self.apply(&t, now)?,
            None => vec![],
        };
        if let Some(invitation) = self.invitation.as_mut() {
            invitation.state = state;
        }
        self.updated_at = now;
        if self.state == LinkState::Linked {
            // Checked at once on linking, not only at the next audit.
            events.extend(self.support_plan_attention());
            if self.support_level().business() {
                events.push(Event::BusinessSupportLinked { account: self.id });
            }
        }
        Ok(events)
    }

    /// Records the ticket a request opened (or adopted): the account keeps
    /// it, once, and the channels hear of it.
    pub fn ticket_opened(&mut self, ticket: TicketRecord, now: OffsetDateTime) -> Vec<Event> {
        if !self.tickets.iter().any(|t| t.key == ticket.key) {
            self.tickets.push(ticket.clone());
        }
        self.updated_at = now;
        vec![Event::TicketOpened { account: self.id, ticket_id: ticket.id, url: ticket.url, kind: ticket.kind }]
    }

    /// The reminder due at `now` before the invitation expires, once per
    /// threshold (days before expiry); a late run sends only the most
    /// urgent one.
    pub fn remind(&mut self, now: OffsetDateTime, thresholds: &[u32]) -> Vec<Event> {
        let Some(invitation) = self.invitation.as_mut() else { return vec![] };
        let Some(threshold) = invitation.reminder_due(now, thresholds) else { return vec![] };
        invitation.mark_reminded(threshold, thresholds);
        vec![Event::InvitationReminder {
            account: self.id,
            expires_at: invitation.expires_at,
            days_left: (invitation.expires_at - now).whole_days().max(0),
        }]
    }

    /// Whether operations may send the invitation now: the role is
    /// verified, and no invitation is open or accepted.
    pub fn ready_to_invite(&self) -> bool {
        let role_verified = self.role.as_ref().is_some_and(|r| r.verified_at.is_some());
        match self.state {
            LinkState::RoleVerified => true,
            LinkState::InvitationExpired | LinkState::InvitationDeclined | LinkState::InvitationCanceled => {
                role_verified
            }
            LinkState::Registered
            | LinkState::Invited
            | LinkState::Linked
            | LinkState::Blocked { .. }
            | LinkState::Lapsed => false,
        }
    }

    /// Whether this claim proved control of the AWS account: the tenant
    /// owns it.
    pub fn is_owner(&self) -> bool {
        self.owned_at.is_some()
    }

    /// Whether the claim is open: neither the owner, lapsed nor closed.
    pub fn is_open_claim(&self) -> bool {
        !self.is_owner() && self.state != LinkState::Lapsed && self.closed_at.is_none()
    }

    /// Closes the claim: another tenant proved control of the account.
    /// Nothing is looked for or sent for it any more.
    pub fn close(&mut self, now: OffsetDateTime) -> Vec<Event> {
        self.closed_at = Some(now);
        self.probe = None;
        self.queued_invitation = None;
        self.updated_at = now;
        vec![Event::ClaimClosed { account: self.id }]
    }

    /// When the claim lapses unless its role verifies: `lapse_after` past
    /// the start of its window. `None` for an owner, or once lapsed.
    pub fn lapses_at(&self, lapse_after: time::Duration) -> Option<OffsetDateTime> {
        (self.state == LinkState::Registered && !self.is_owner() && self.closed_at.is_none())
            .then(|| self.window_from.unwrap_or(self.registered_at) + lapse_after)
    }

    /// Lapses the claim if its window ended by `now`.
    pub fn lapse(&mut self, now: OffsetDateTime, lapse_after: time::Duration) -> Vec<Event> {
        match self.lapses_at(lapse_after) {
            Some(at) if at <= now => {
                let events = self.apply(&super::Transition::Lapsed, now).unwrap_or_default();
                self.probe = None;
                events
            }
            _ => vec![],
        }
    }

    /// A fresh window from `now` (the instructions were shown again, or
    /// operations revived the claim): a lapsed claim is open again.
    pub fn renew_window(&mut self, now: OffsetDateTime) -> Vec<Event> {
        let events = if self.state == LinkState::Lapsed {
            self.apply(&super::Transition::Revived, now).unwrap_or_default()
        } else {
            vec![]
        };
        if self.state == LinkState::Registered && !self.is_owner() {
            self.window_from = Some(now);
            self.updated_at = now;
        }
        events
    }

    /// When the role is next probed for; `None` while it is not looked for
    /// (verified, invited, blocked... or the window has passed).
    pub fn probe_due(&self, plan: &ProbePlan) -> Option<OffsetDateTime> {
        if self.state != LinkState::Registered || self.closed_at.is_some() {
            return None;
        }
        match &self.probe {
            Some(probe) => probe.next_at,
            None => plan.first(self.registered_at, self.id),
        }
    }

    /// Probing (re)starts from `now`: the instructions were just shown, so
    /// the role may appear soon.
    pub fn restart_probe(&mut self, plan: &ProbePlan, now: OffsetDateTime) {
        if self.state == LinkState::Registered {
            self.probe = Some(ProbeRecord::started(plan, self.id, now, self.probe.as_ref()));
        }
    }

    /// The role a probe tries: a recorded (pasted) ARN takes precedence;
    /// else the name the instructions suggest.
    pub fn probe_target(&self, partition: Partition, suggested: &super::RoleName) -> RoleArn {
        match &self.role {
            Some(role) => role.arn.clone(),
            None => RoleArn::new(partition, self.id, suggested.clone()),
        }
    }

    /// Records a probe of `arn` made at `at`. A role found is recorded with
    /// its report exactly as a pasted one (verified: [`Event::RoleFound`]);
    /// its problems are told once per set; the next probe is planned.
    pub fn probe_observed(
        &mut self,
        plan: &ProbePlan,
        arn: RoleArn,
        report: VerificationReport,
        at: OffsetDateTime,
    ) -> Result<Vec<Event>, IllegalTransition> {
        let outcome = ProbeOutcome::of(&report);
        let mut record =
            self.probe.clone().unwrap_or_else(|| ProbeRecord::started(plan, self.id, self.registered_at, None));
        let mut events = Vec::new();
        if outcome.found() {
            events = self.apply_verification(arn, None, report, at)?;
            for event in &mut events {
                if let Event::RoleVerified { account } = event {
                    *event = Event::RoleFound { account: *account };
                }
            }
            let blocked = matches!(self.state, LinkState::Blocked { .. });
            if let ProbeOutcome::Problems { checks } = &outcome
                && !blocked
                && *checks != record.told
            {
                events.push(Event::RoleNeedsFixing { account: self.id, checks: checks.clone() });
                record.told = checks.clone();
            }
        }
        record.probes += 1;
        record.last = Some(ProbeResult { at, outcome });
        record.next_at = if self.state == LinkState::Registered { plan.after(record.since, at) } else { None };
        self.probe = Some(record);
        Ok(events)
    }

    pub fn set_support_plan_group(&mut self, group: SupportPlanGroup, now: OffsetDateTime) -> Vec<Event> {
        self.support_plan_group = Some(group);
        self.updated_at = now;
        vec![Event::SupportPlanGroupSet { account: self.id, group, matches_tier: group == self.required_group() }]
    }

    /// What AWS said of the support tier at the last check of the role,
    /// when it said anything.
    pub fn aws_support_level(&self) -> Option<SupportLevel> {
        self.role.as_ref()?.report.as_ref()?.support_tier.level()
    }

    /// The support level the platform goes by: what AWS said at the last
    /// check of the role, else the declared tier's.
    pub fn support_level(&self) -> SupportLevel {
        self.aws_support_level().unwrap_or(self.support_tier.level())
    }

    /// The support plan group the account needs: what the support-plan
    /// audit checks.
    pub fn required_group(&self) -> SupportPlanGroup {
        self.support_level().required_group()
    }

    /// Whether AWS says another tier than the one declared.
    pub fn support_tier_mismatch(&self) -> bool {
        self.aws_support_level().is_some_and(|level| level != self.support_tier.level())
    }

    pub fn set_price_book(&mut self, choice: PriceBookChoice, now: OffsetDateTime) -> Vec<Event> {
        self.price_book = Some(choice);
        self.updated_at = now;
        vec![Event::PriceBookSet { account: self.id }]
    }

    /// The warning a linked account needs while its support plan group is
    /// missing or wrong (negative margins); none otherwise.
    pub fn support_plan_attention(&self) -> Option<Event> {
        let expected = self.required_group();
        let fine = self.support_plan_group == Some(expected);
        (self.state == LinkState::Linked && !fine).then_some(Event::SupportPlanAttention {
            account: self.id,
            group: self.support_plan_group,
            expected,
        })
    }

    /// Whether the recorded support plan group differs from what the
    /// account's support needs (billing would show negative margins).
    pub fn support_plan_mismatch(&self) -> bool {
        self.support_plan_group.is_some_and(|g| g != self.required_group())
    }

    /// PROCESS.md's "who does what", derived from the record.
    pub fn checklist(&self) -> Vec<ChecklistEntry> {
        use CheckItem as I;
        use CheckStatus::{Attention, Done, Pending};
        use LinkState as S;
        use Responsible as R;
        let done_if = |cond: bool| if cond { Done } else { Pending };
        let role_verified = self.role.as_ref().is_some_and(|r| r.verified_at.is_some())
            || matches!(self.state, S::RoleVerified | S::Invited | S::Linked);
        let link_sent = match self.state {
            S::Invited | S::Linked => Done,
            S::InvitationExpired | S::InvitationDeclined | S::InvitationCanceled => Attention,
            S::Registered | S::RoleVerified | S::Blocked { .. } | S::Lapsed => Pending,
        };
        let support_plan = match self.support_plan_group {
            None => Pending,
            Some(_) if self.support_plan_mismatch() => Attention,
            Some(_) => Done,
        };
        vec![
            ChecklistEntry::new(I::AccountAdded, Done, R::Reseller),
            ChecklistEntry::new(I::RoleCreated, done_if(self.role.is_some() || role_verified), R::AccountOwner),
            ChecklistEntry::new(I::RoleVerified, done_if(role_verified), R::Reseller),
            ChecklistEntry::new(I::LinkRequestSent, link_sent, R::DistributorOps),
            ChecklistEntry::new(I::LinkAccepted, done_if(self.state == S::Linked), R::AccountOwner),
            ChecklistEntry::new(I::SupportPlanGroupSet, support_plan, R::Reseller),
            ChecklistEntry::new(I::PriceBookSet, done_if(self.price_book.is_some()), R::Reseller),
        ]
    }
}

/// A standalone account registered at `at`, for the crate's own tests.
#[cfg(test)]
pub(crate) fn sample(id: &str, tenant: &str, tier: SupportTier, at: OffsetDateTime) -> Account {
    let new = NewAccount {
        id: id.parse().unwrap(),
        tenant: tenant.parse().unwrap(),
        customer: "Acme".parse().unwrap(),
        root_email: None,
        support_tier: tier,
        kind: AccountKind::Standalone,
        price_book: None,
    };
    Account::register(new, ExternalId::generate(&super::ExternalIdPrefix::default()), at).unwrap().0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckItem {
    AccountAdded,
    RoleCreated,
    RoleVerified,
    LinkRequestSent,
    LinkAccepted,
    SupportPlanGroupSet,
    PriceBookSet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Done,
    Pending,
    /// Done wrongly or undone: someone must act.
    Attention,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Responsible {
    Reseller,
    AccountOwner,
    DistributorOps,
}

/// Which claims a list shows: open ones in any of `states` (every state
/// when none is named) and, with `stale_days`, only those whose last
/// change is older than that many days: the ones somebody must chase.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListFilter {
    pub states: Vec<LinkState>,
    pub stale_days: Option<u32>,
}

impl ListFilter {
    pub fn matches(&self, account: &Account, now: OffsetDateTime) -> bool {
        account.closed_at.is_none() && self.admits(account.state, account.updated_at, now)
    }

    /// Whether an open claim in `state`, last changed at `updated_at`, is
    /// listed (a pipeline row is of an open claim).
    pub fn admits(&self, state: LinkState, updated_at: OffsetDateTime, now: OffsetDateTime) -> bool {
        let stale = |days: u32| updated_at < now - time::Duration::days(days.into());
        (self.states.is_empty() || self.states.contains(&state)) && self.stale_days.is_none_or(stale)
    }
}

impl Account {
    /// Who must act next: the one responsible for the checklist's first
    /// item not done (none when all are).
    pub fn next_actor(&self) -> Option<Responsible> {
        self.progress().next_actor
    }

    /// The checklist at a glance, as a list shows it.
    pub fn progress(&self) -> Progress {
        let checklist = self.checklist();
        Progress {
            done: checklist.iter().filter(|e| e.status == CheckStatus::Done).count(),
            total: checklist.len(),
            next_actor: checklist.iter().find(|e| e.status != CheckStatus::Done).map(|e| e.responsible),
        }
    }
}

/// A claim's checklist at a glance: its items done, its items, and who
/// must act next (none when every item is done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub next_actor: Option<Responsible>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistEntry {
    pub item: CheckItem,
    pub status: CheckStatus,
    pub responsible: Responsible,
}

impl ChecklistEntry {
    fn new(item: CheckItem, status: CheckStatus, responsible: Responsible) -> Self {
        Self { item, status, responsible }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ExternalIdPrefix;
    use time::macros::datetime;

    fn new_account(kind: AccountKind, tier: SupportTier) -> NewAccount {
        NewAccount {
            id: "123456789012".parse().unwrap(),
            tenant: "acme".parse().unwrap(),
            customer: "Acme".parse().unwrap(),
            root_email: None,
            support_tier: tier,
            kind,
            price_book: None,
        }
    }

    fn register(tier: SupportTier) -> Account {
        let ext = ExternalId::generate(&ExternalIdPrefix::default());
        Account::register(new_account(AccountKind::Standalone, tier), ext, datetime!(2026-11-26 12:00 UTC)).unwrap().0
    }

    fn status(account: &Account, item: CheckItem) -> CheckStatus {
        account.checklist().into_iter().find(|e| e.item == item).unwrap().status
    }

    #[test]
    fn management_accounts_are_refused_members_accepted() {
        let ext = ExternalId::generate(&ExternalIdPrefix::default());
        let now = datetime!(2026-11-26 12:00 UTC);
        assert_eq!(
            Account::register(new_account(AccountKind::Management, SupportTier::Basic), ext.clone(), now).unwrap_err(),
            ManagementAccountRefused
        );
        let (account, events) =
            Account::register(new_account(AccountKind::Member, SupportTier::Basic), ext, now).unwrap();
        assert_eq!(account.state, LinkState::Registered);
        assert_eq!(events, vec![Event::AccountRegistered { account: account.id }]);
    }

    #[test]
    fn a_new_account_has_only_its_first_item_done() {
        let account = register(SupportTier::Developer);
        let done: Vec<_> =
            account.checklist().into_iter().filter(|e| e.status == CheckStatus::Done).map(|e| e.item).collect();
        assert_eq!(done, vec![CheckItem::AccountAdded]);
        assert_eq!(account.checklist().len(), 7);
    }

    #[test]
    fn support_plan_group_must_match_the_tier() {
        let now = datetime!(2026-11-27 12:00 UTC);
        let mut account = register(SupportTier::Business);
        let events = account.set_support_plan_group(SupportPlanGroup::Passthrough, now);
        assert!(matches!(events[..], [Event::SupportPlanGroupSet { matches_tier: false, .. }]));
        assert!(events[0].notifies());
        assert_eq!(status(&account, CheckItem::SupportPlanGroupSet), CheckStatus::Attention);
        let events = account.set_support_plan_group(SupportPlanGroup::BusinessSupport, now);
        assert!(!events[0].notifies());
        assert_eq!(status(&account, CheckItem::SupportPlanGroupSet), CheckStatus::Done);
        assert_eq!(account.updated_at, now);
    }

    #[test]
    fn rotation_voids_the_verification() {
        let now = datetime!(2026-11-27 12:00 UTC);
        let mut account = register(SupportTier::Basic);
        account.role = Some(RoleRecord {
            arn: "arn:aws:iam::123456789012:role/R".parse().unwrap(),
            description: None,
            recorded_at: now,
            verified_at: None,
            report: None,
        });
        account.apply(&Transition::RoleVerified, now).unwrap();
        assert_eq!(status(&account, CheckItem::RoleVerified), CheckStatus::Done);
        let old = account.external_id.clone();
        let new = ExternalId::generate(&ExternalIdPrefix::default());
        account.rotate_external_id(new.clone(), now).unwrap();
        assert_ne!(account.external_id, old);
        assert_eq!(account.external_id, new);
        assert_eq!(account.state, LinkState::Registered);
        assert_eq!(status(&account, CheckItem::RoleVerified), CheckStatus::Pending);
        assert_eq!(status(&account, CheckItem::RoleCreated), CheckStatus::Done);
    }

    #[test]
    fn a_refused_rotation_keeps_the_external_id() {
        let now = datetime!(2026-11-27 12:00 UTC);
        let mut account = register(SupportTier::Basic);
        account.state = LinkState::Linked;
        let before = account.clone();
        assert!(account.rotate_external_id(ExternalId::generate(&ExternalIdPrefix::default()), now).is_err());
        assert_eq!(account, before);
    }

    #[test]
    fn linking_a_business_account_tells_operations_and_checks_the_support_plan() {
        let now = datetime!(2026-11-27 12:00 UTC);
        let mut account = register(SupportTier::Business);
        account.state = LinkState::Invited;
        account.invitation = Some(Invitation {
            handshake_id: "h-abcdefgh12".parse().unwrap(),
            state: HandshakeState::Open,
            requested_at: now,
            expires_at: now + time::Duration::days(15),
            note: None,
            reminded: vec![],
        });
        let events = account.handshake_observed(HandshakeState::Accepted, now).unwrap();
        let codes: Vec<&str> = events.iter().map(|e| e.code()).collect();
        assert_eq!(codes, ["account_linked", "support_plan_attention", "business_support_linked"]);
        assert!(account.handshake_observed(HandshakeState::Accepted, now).unwrap().is_empty(), "seen twice: nothing");
        account.set_support_plan_group(SupportPlanGroup::BusinessSupport, now);
        assert_eq!(account.support_plan_attention(), None);
    }

    fn account_report(account: &Account, at: OffsetDateTime) -> VerificationReport {
        use crate::domain::{Check, CheckName, Outcome};
        VerificationReport {
            account: account.id,
            checks: CheckName::ALL.iter().map(|name| Check { name: *name, outcome: Outcome::Passed }).collect(),
            detected_kind: Some(AccountKind::Standalone),
            attempts: 1,
            checked_at: at,
            duration_ms: 0,
            support_tier: crate::domain::AwsSupportTier::default(),
        }
    }

    /// A check of the account's role where every check passed and AWS said
    /// `tier` of the support tier.
    fn checked(account: &mut Account, tier: crate::domain::AwsSupportTier, at: OffsetDateTime) -> Vec<&'static str> {
        let report = VerificationReport { support_tier: tier, ..account_report(account, at) };
        let arn = RoleArn::new(Partition::Aws, account.id, "OrgLinkReadOnly".parse().unwrap());
        let events = account.apply_verification(arn, None, report, at).unwrap();
        events.iter().map(|e| e.code()).filter(|c| c.contains("support")).collect()
    }

    #[test]
    fn what_aws_says_of_the_support_tier_is_told_once_and_is_what_the_audit_goes_by() {
        use crate::domain::{AwsSupportTier as Aws, SupportLevel, TierNotChecked};
        let now = datetime!(2026-11-27 12:00 UTC);
        let linked = |account: &mut Account| {
            account.state = LinkState::Linked;
        };

        // Business declared and confirmed: nothing to tell.
        let mut account = register(SupportTier::Business);
        assert!(checked(&mut account, Aws::BusinessOrHigher, now).is_empty());
        assert!(!account.support_tier_mismatch());
        assert_eq!(account.required_group(), SupportPlanGroup::BusinessSupport);

        // Business declared, Basic or Developer answered: the tenant hears
        // of it with the group the real tier needs; Business support
        // disappeared: operations hear of it.
        let mut account = register(SupportTier::Business);
        account.support_plan_group = Some(SupportPlanGroup::BusinessSupport);
        let events = checked(&mut account, Aws::BasicOrDeveloper, now);
        assert_eq!(events, ["support_tier_mismatch", "business_support_changed"]);
        assert!(account.support_tier_mismatch());
        assert_eq!(account.required_group(), SupportPlanGroup::Passthrough);
        linked(&mut account);
        assert_eq!(
            account.support_plan_attention(),
            Some(Event::SupportPlanAttention {
                account: account.id,
                group: Some(SupportPlanGroup::BusinessSupport),
                expected: SupportPlanGroup::Passthrough,
            }),
            "the audit goes by AWS's tier"
        );
        assert_eq!(status(&account, CheckItem::SupportPlanGroupSet), CheckStatus::Attention);
        let set = account.set_support_plan_group(SupportPlanGroup::Passthrough, now);
        assert!(matches!(set[..], [Event::SupportPlanGroupSet { matches_tier: true, .. }]));
        assert_eq!(account.support_plan_attention(), None);
        // The same answer again: nobody hears of it again.
        assert!(checked(&mut account, Aws::BasicOrDeveloper, now).is_empty());
        // No answer (the policy removed): the declared tier stands again,
        // and nobody is told Business support came back.
        assert!(checked(&mut account, Aws::not_checked(TierNotChecked::NoSupportAccess), now).is_empty());
        assert!(!account.support_tier_mismatch());
        assert_eq!(account.required_group(), SupportPlanGroup::BusinessSupport);
        // Business confirmed at last: nothing appeared against what the
        // platform went by (the declared Business).
        assert!(checked(&mut account, Aws::BusinessOrHigher, now).is_empty());

        // Developer declared, Business answered: both hear of it.
        let mut account = register(SupportTier::Developer);
        let arn = RoleArn::new(Partition::Aws, account.id, "OrgLinkReadOnly".parse().unwrap());
        let mut report = account_report(&account, now);
        report.support_tier = Aws::BusinessOrHigher;
        let events = account.apply_verification(arn, None, report, now).unwrap();
        assert_eq!(
            events.into_iter().filter(|e| e.code().contains("support")).collect::<Vec<_>>(),
            [
                Event::SupportTierMismatch {
                    account: account.id,
                    declared: SupportTier::Developer,
                    aws: SupportLevel::BusinessOrHigher,
                    needs: SupportPlanGroup::BusinessSupport,
                },
                Event::BusinessSupportChanged {
                    account: account.id,
                    declared: SupportTier::Developer,
                    aws: SupportLevel::BusinessOrHigher,
                },
            ]
        );
        assert_eq!(account.required_group(), SupportPlanGroup::BusinessSupport);

        // AccessDenied: not checked, the declared tier stands, nobody told.
        let mut account = register(SupportTier::Developer);
        assert!(checked(&mut account, Aws::not_checked(TierNotChecked::AccessDenied), now).is_empty());
        assert!(!account.support_tier_mismatch());
        assert_eq!(account.aws_support_level(), None);
        assert_eq!(account.required_group(), SupportPlanGroup::Passthrough);
    }
}

//! The application: typed commands, one handler each, typed replies.
//!
//! Every front end (CLI, Discord) builds a [`Command`] from what the user
//! typed, calls [`App::handle`] and renders the [`Reply`]. No front end holds
//! business rules; this module holds no I/O of its own beyond the store.

mod error;
mod jobs;
mod rate;
mod reply;

use std::sync::Arc;

use anyhow::Context as _;

pub use error::{Action, AppError, Permission, UserError};
pub use jobs::JobReport;
pub use reply::{
    AccountSummary, AccountView, InstructionsView, InviteRefusedView, InvitedView, ListView, Message, Offer, Rendered,
    Reply, TenantSettingsView, TicketView, Tone, VerificationView, managed_policy_arn, trust_policy,
};

use crate::aws::organizations::{Distributor, InviteError};
use crate::aws::{Aws, VerifyRequest};
use crate::clock::Clock;
use crate::domain::{
    Account, AccountId, AccountKind, BlockReason, ChatId, Event, ExternalId, ExternalIdPrefix, Invitation,
    InvitationNote, Lang, LinkState, NewAccount, Partition, PriceBookChoice, ProbePlan, QueuedInvitation, RoleArn,
    RoleDescription, RoleName, SupportPlanGroup, TenantId, TicketReason, TicketRequest, Transition,
};
use crate::freshdesk::desk::TicketDesk;
use crate::store::{AuditEntry, InsertConflict, Store, TenantAuditEntry, UpdateError};

/// What the app needs to know of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The platform's account, which every customer role trusts.
    pub cross_account_id: AccountId,
    pub external_id_prefix: ExternalIdPrefix,
    /// The role name the instructions suggest.
    pub role_name: RoleName,
    /// Days before an invitation's expiry when the tenant is reminded.
    pub reminder_days: Vec<u32>,
    /// Send the invitation as soon as the role is verified.
    pub auto_send_invitations: bool,
    /// The AWS partition of the platform and of the roles it looks for.
    pub partition: Partition,
    /// Looking for roles under the suggested name (zero-paste verification).
    pub probe: ProbeSettings,
}

/// How orglink looks for customers' roles by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSettings {
    pub enabled: bool,
    pub plan: ProbePlan,
    /// At most this many AssumeRole calls in any minute, all probes
    /// together (STS allows hundreds per second).
    pub assume_role_per_minute: u32,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self { enabled: true, plan: ProbePlan::default(), assume_role_per_minute: 120 }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            cross_account_id: "328676173091".parse().expect("a valid account ID"),
            external_id_prefix: ExternalIdPrefix::default(),
            role_name: RoleName::default(),
            reminder_days: vec![7, 2],
            auto_send_invitations: false,
            partition: Partition::Aws,
            probe: ProbeSettings::default(),
        }
    }
}

/// Whose accounts an actor may see and change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The distributor's operators (the CLI): every tenant.
    Ops,
    /// A reseller's Discord server: its own accounts only.
    Tenant(TenantId),
}

/// Who runs a command: recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub scope: Scope,
    pub rights: Rights,
}

/// What a chat member may do, as their server says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rights {
    /// Holds Discord's Manage Server permission.
    pub manage_server: bool,
    pub roles: Vec<ChatId>,
    /// Holds the operations role in the operations server.
    pub ops: bool,
}

impl Actor {
    /// An operator at the command line: every tenant, every right.
    pub fn operator(name: &str) -> Self {
        Self {
            id: format!("cli:{name}"),
            scope: Scope::Ops,
            rights: Rights { manage_server: true, roles: Vec::new(), ops: true },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstructionsFormat {
    /// Step-by-step text for the AWS console.
    #[default]
    Text,
    /// A CloudFormation template that creates the role.
    CloudFormation,
    /// AWS CLI commands that create the role.
    Cli,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    AddAccount(NewAccount),
    ListAccounts {
        tenant: Option<TenantId>,
    },
    ShowAccount {
        account: AccountId,
    },
    RotateExternalId {
        account: AccountId,
    },
    Instructions {
        account: AccountId,
        format: InstructionsFormat,
    },
    SetSupportPlan {
        account: AccountId,
        group: SupportPlanGroup,
    },
    SetPriceBook {
        account: AccountId,
        price_book: PriceBookChoice,
    },
    /// A tenant's settings; `None` leaves a setting as it is.
    Configure {
        channel: Option<ChatId>,
        language: Option<Lang>,
        account_role: Option<ChatId>,
    },
    /// "Later" on the instructions: how to find them again.
    Later {
        account: AccountId,
    },
    /// Check the customer's role against AWS; without an ARN, the role
    /// recorded last.
    VerifyRole {
        account: AccountId,
        arn: Option<RoleArn>,
        description: Option<RoleDescription>,
    },
    /// Operations: send the AWS Organizations invitation.
    Invite {
        account: AccountId,
        note: Option<InvitationNote>,
    },
    /// Ask the distributor for help in a Freshdesk ticket.
    OpenTicket {
        account: AccountId,
        reason: TicketReason,
    },
}

impl Command {
    /// A stable name for logs and the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AddAccount(_) => "account_add",
            Self::ListAccounts { .. } => "account_list",
            Self::ShowAccount { .. } => "account_show",
            Self::RotateExternalId { .. } => "account_rotate_external_id",
            Self::Instructions { .. } => "instructions",
            Self::SetSupportPlan { .. } => "support_plan",
            Self::SetPriceBook { .. } => "price_book",
            Self::Configure { .. } => "configure",
            Self::Later { .. } => "later",
            Self::VerifyRole { .. } => "verify_role",
            Self::Invite { .. } => "invite",
            Self::OpenTicket { .. } => "ticket",
        }
    }

    /// The account it is about, if one (for log spans).
    pub fn account(&self) -> Option<AccountId> {
        match self {
            Self::AddAccount(new) => Some(new.id),
            Self::ShowAccount { account }
            | Self::RotateExternalId { account }
            | Self::Instructions { account, .. }
            | Self::SetSupportPlan { account, .. }
            | Self::SetPriceBook { account, .. }
            | Self::Later { account }
            | Self::VerifyRole { account, .. }
            | Self::Invite { account, .. }
            | Self::OpenTicket { account, .. } => Some(*account),
            Self::ListAccounts { .. } | Self::Configure { .. } => None,
        }
    }

    /// Whether it waits on AWS or Freshdesk: Discord must be answered
    /// within 3 seconds, so such commands are deferred and followed up.
    pub fn is_slow(&self) -> bool {
        match self {
            Self::VerifyRole { .. } | Self::Invite { .. } | Self::OpenTicket { .. } => true,
            Self::AddAccount(_)
            | Self::ListAccounts { .. }
            | Self::ShowAccount { .. }
            | Self::RotateExternalId { .. }
            | Self::Instructions { .. }
            | Self::SetSupportPlan { .. }
            | Self::SetPriceBook { .. }
            | Self::Configure { .. }
            | Self::Later { .. } => false,
        }
    }

    /// What the actor needs to run it.
    pub fn permission(&self) -> Permission {
        match self {
            Self::AddAccount(_)
            | Self::ListAccounts { .. }
            | Self::ShowAccount { .. }
            | Self::RotateExternalId { .. }
            | Self::Instructions { .. }
            | Self::SetSupportPlan { .. }
            | Self::SetPriceBook { .. }
            | Self::Later { .. }
            | Self::VerifyRole { .. }
            | Self::OpenTicket { .. } => Permission::AccountRole,
            Self::Configure { .. } => Permission::ManageServer,
            Self::Invite { .. } => Permission::Ops,
        }
    }
}

#[derive(Clone)]
pub struct App {
    store: Store,
    settings: Settings,
    clock: Arc<dyn Clock>,
    aws: Option<Arc<Aws>>,
    distributor: Option<Arc<Distributor>>,
    ticket_desk: Option<Arc<TicketDesk>>,
    /// The probes' AssumeRole calls of the last minute, against the ceiling.
    probe_calls: Arc<std::sync::Mutex<rate::RateWindow>>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl App {
    pub fn new(store: Store, settings: Settings, clock: Arc<dyn Clock>) -> Self {
        let probe_calls = Arc::new(std::sync::Mutex::new(rate::RateWindow::new(settings.probe.assume_role_per_minute)));
        let metrics = Arc::new(crate::metrics::Metrics::new(clock.now()));
        Self { store, settings, clock, aws: None, distributor: None, ticket_desk: None, probe_calls, metrics }
    }

    /// What this app counts, for `GET /metrics`; its AWS and Freshdesk
    /// clients count there too.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// The app with AWS: role verification needs it.
    pub fn with_aws(mut self, aws: Aws) -> Self {
        self.aws = Some(Arc::new(aws.with_metrics(self.metrics.clone())));
        self
    }

    /// The app with the distributor's AWS Organizations: invitations need it.
    pub fn with_distributor(mut self, distributor: Distributor) -> Self {
        self.distributor = Some(Arc::new(distributor.with_metrics(self.metrics.clone())));
        self
    }

    /// The app with Freshdesk: tickets are opened there.
    pub fn with_ticket_desk(mut self, desk: TicketDesk) -> Self {
        self.ticket_desk = Some(Arc::new(desk.with_metrics(self.metrics.clone())));
        self
    }

    /// Runs any command, waiting on AWS where it must.
    pub async fn execute(&self, actor: &Actor, command: Command) -> Result<Reply, AppError> {
        self.authorize(actor, command.permission())?;
        match command {
            Command::VerifyRole { account, arn, description } => {
                self.verify_role(actor, account, arn, description).await
            }
            Command::Invite { account, note } => self.invite(actor, account, note).await,
            Command::OpenTicket { account, reason } => self.request_ticket(actor, account, reason).await,
            other => self.handle(actor, other),
        }
    }

    /// One open ticket per account and reason: the existing one's link, or
    /// a new one (which waits in the store if Freshdesk cannot take it).
    async fn request_ticket(&self, actor: &Actor, id: AccountId, reason: TicketReason) -> Result<Reply, AppError> {
        let account = self.load(actor, id)?;
        let request = TicketRequest::requested(&account, reason.clone(), self.clock.now());
        if let Some(existing) = account.tickets.iter().find(|t| t.key == request.key) {
            let view = TicketView { account: id, url: Some(existing.url.clone()), existing: true };
            return Ok(Reply::new(Tone::Info, vec![Message::Ticket(view)]));
        }
        self.update(actor, id, "ticket_requested", |a, _| {
            Ok(vec![Event::TicketRequested { account: a.id, reason: reason.to_string() }])
        })?;
        let pending = self.store.ticket_requests()?.into_iter().find(|r| r.key == request.key);
        let opened = match pending {
            Some(request) => self.open_ticket(&request, &actor.id).await?,
            None => None,
        };
        let view = TicketView { account: id, url: opened.map(|t| t.url), existing: false };
        let tone = if view.url.is_some() { Tone::Success } else { Tone::Warning };
        Ok(Reply::new(tone, vec![Message::Ticket(view)]))
    }

    async fn invite(&self, actor: &Actor, id: AccountId, note: Option<InvitationNote>) -> Result<Reply, AppError> {
        let account = self.load(actor, id)?;
        let role_verified = account.role.as_ref().is_some_and(|r| r.verified_at.is_some());
        let ready = match account.state {
            LinkState::RoleVerified => true,
            LinkState::InvitationExpired | LinkState::InvitationDeclined | LinkState::InvitationCanceled => {
                role_verified
            }
            LinkState::Registered | LinkState::Invited | LinkState::Linked | LinkState::Blocked { .. } => false,
        };
        if !ready {
            return Err(UserError::CannotInvite { account: id, state: account.state }.into());
        }
        let Some(distributor) = &self.distributor else {
            return Err(anyhow::anyhow!("invitations need AWS Organizations, which is not set up here").into());
        };
        let sent = match distributor.invite(id, note.as_ref().map(|n| n.as_str())).await {
            Ok(handshake) => Some((handshake, false)),
            // An open invitation exists already (sent by hand, or by a run
            // that crashed before recording it): adopt it.
            Err(InviteError::Duplicate) => {
                let (open, _) =
                    distributor.invitations().await.map_err(|e| anyhow::anyhow!("listing invitations: {e}"))?;
                let found = open.into_iter().find(|h| h.accounts.contains(&id) && h.state.is_open());
                Some((
                    found.ok_or_else(|| anyhow::anyhow!("AWS reports a duplicate invitation it does not list"))?,
                    true,
                ))
            }
            Err(InviteError::Constraint { reason }) if reason == "HANDSHAKE_RATE_LIMIT_EXCEEDED" => {
                let by = actor.id.clone();
                let (account, _) = self.update(actor, id, "invitation_queued", |a, now| {
                    a.queued_invitation = Some(QueuedInvitation { note: note.clone(), queued_at: now, by: by.clone() });
                    Ok(vec![Event::InvitationQueued { account: id }])
                })?;
                return Ok(Reply::new(Tone::Warning, vec![Message::InvitationQueued(account.into())]));
            }
            Err(InviteError::Constraint { reason }) => {
                if reason == "ALREADY_IN_AN_ORGANIZATION" {
                    self.update(actor, id, "invite_refused", |a, now| {
                        let state = a.state;
                        a.apply(&Transition::Blocked { reason: BlockReason::MemberOfAnotherOrganization }, now)
                            .map_err(|_| UserError::CannotInvite { account: id, state })
                    })?;
                }
                let view = InviteRefusedView { account: id, reason, detail: None };
                return Ok(Reply::new(Tone::Error, vec![Message::InviteRefused(view)]));
            }
            Err(InviteError::Unavailable { detail }) => {
                let view = InviteRefusedView { account: id, reason: "unavailable".into(), detail: Some(detail) };
                return Ok(Reply::new(Tone::Error, vec![Message::InviteRefused(view)]));
            }
        };
        let (handshake, adopted) = sent.expect("every other case returned");
        let invitation = Invitation {
            handshake_id: handshake.id,
            state: handshake.state,
            requested_at: handshake.requested_at,
            expires_at: handshake.expires_at,
            note: note.map(String::from),
            reminded: Vec::new(),
        };
        let (account, _) = self.update(actor, id, "invite", |a, now| {
            let state = a.state;
            a.invitation_sent(invitation.clone(), now).map_err(|_| UserError::CannotInvite { account: id, state })
        })?;
        let view = InvitedView { account: account.into(), adopted };
        Ok(Reply::new(Tone::Success, vec![Message::Invited(Box::new(view.clone()))]).with_data(view))
    }

    async fn verify_role(
        &self,
        actor: &Actor,
        id: AccountId,
        arn: Option<RoleArn>,
        description: Option<RoleDescription>,
    ) -> Result<Reply, AppError> {
        self.authorize(actor, Permission::AccountRole)?;
        let account = self.load(actor, id)?;
        let (arn, description) = match arn {
            Some(arn) => (arn, description),
            None => match &account.role {
                Some(role) => (role.arn.clone(), description.or_else(|| role.description.clone())),
                None => return Err(UserError::NoRoleRecorded { account: id }.into()),
            },
        };
        if arn.account() != id {
            return Err(UserError::ArnAccountMismatch { account: id, arn_account: arn.account() }.into());
        }
        let Some(aws) = &self.aws else {
            return Err(anyhow::anyhow!("role verification needs AWS, which is not set up here").into());
        };
        let request = VerifyRequest {
            account: id,
            arn: arn.clone(),
            external_id: account.external_id.clone(),
            tier: account.support_tier,
        };
        let report = aws.verify(&request).await;
        tracing::info!(
            account = %id,
            verified = report.verified(),
            attempts = report.attempts,
            duration_ms = report.duration_ms,
            "role checked"
        );
        let (account, _) =
            self.update(actor, id, "verify_role", |a, now| {
                let state = a.state;
                a.apply_verification(arn.clone(), description.clone(), report.clone(), now)
                    .map_err(|_| UserError::NotNow { account: id, state, action: Action::RecordRole })
            })?;
        let verified = report.verified();
        let warned = report.checks.iter().any(|c| matches!(c.outcome, crate::domain::Outcome::Warning { .. }));
        let tone = match (verified, warned) {
            (false, _) => Tone::Error,
            (true, true) => Tone::Warning,
            (true, false) => Tone::Success,
        };
        let invite_now = verified && self.settings.auto_send_invitations && account.state == LinkState::RoleVerified;
        let view = VerificationView::new(account, report, &self.settings);
        let offers = if verified { vec![] } else { vec![Offer::CheckNow(id)] };
        let mut reply =
            Reply::new(tone, vec![Message::Verification(Box::new(view.clone()))]).with_data(view).with_offers(offers);
        if invite_now {
            reply.messages.extend(self.auto_invite(id).await);
        }
        Ok(reply)
    }

    /// Automatic mode: the invitation follows a verification, under the
    /// same rules as one sent by operations.
    async fn auto_invite(&self, id: AccountId) -> Vec<Message> {
        let system =
            Actor { id: "auto:invite".into(), scope: Scope::Ops, rights: Rights { ops: true, ..Rights::default() } };
        match Box::pin(self.invite(&system, id, None)).await {
            Ok(invited) => invited.messages,
            Err(AppError::User(e)) => vec![Message::Error(e)],
            Err(AppError::Internal(e)) => {
                tracing::error!(error = format!("{e:#}"), "the automatic invitation failed");
                vec![Message::Internal]
            }
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn handle(&self, actor: &Actor, command: Command) -> Result<Reply, AppError> {
        self.authorize(actor, command.permission())?;
        match command {
            Command::AddAccount(new) => self.add_account(actor, new),
            Command::ListAccounts { tenant } => self.list_accounts(actor, tenant),
            Command::ShowAccount { account } => {
                let view = AccountView::from(self.load(actor, account)?);
                Ok(Reply::new(Tone::Info, vec![Message::Status(view.clone())]).with_data(view))
            }
            Command::RotateExternalId { account } => self.rotate_external_id(actor, account),
            Command::Instructions { account, format } => {
                let mut account = self.load(actor, account)?;
                if self.settings.probe.enabled && account.state == LinkState::Registered {
                    // The role may appear soon: look for it often again.
                    let plan = &self.settings.probe.plan;
                    (account, _) = self.update(actor, account.id, "instructions_shown", |a, now| {
                        a.restart_probe(plan, now);
                        Ok(vec![])
                    })?;
                }
                let view = self.instructions(&account);
                let message = match format {
                    InstructionsFormat::Text => Message::Instructions(view),
                    InstructionsFormat::CloudFormation => Message::CloudFormation(view),
                    InstructionsFormat::Cli => Message::AwsCli(view),
                };
                let offers = match format {
                    InstructionsFormat::Text => Offer::instructions(account.id),
                    InstructionsFormat::CloudFormation | InstructionsFormat::Cli => {
                        vec![Offer::RoleCreated(account.id), Offer::Later(account.id)]
                    }
                };
                Ok(Reply::new(Tone::Info, vec![message]).with_offers(offers))
            }
            Command::SetSupportPlan { account, group } => {
                let (account, _) = self.update(actor, account, "support_plan", |a, now| {
                    Ok::<_, UserError>(a.set_support_plan_group(group, now))
                })?;
                let tone = if account.support_plan_mismatch() { Tone::Warning } else { Tone::Success };
                let view = AccountView::from(account);
                Ok(Reply::new(tone, vec![Message::SupportPlanSet(view.clone())]).with_data(view))
            }
            Command::Configure { channel, language, account_role } => {
                let Scope::Tenant(tenant) = &actor.scope else {
                    return Err(anyhow::anyhow!("tenant settings are changed from the tenant's server").into());
                };
                let mut settings = self.store.tenant_settings(tenant)?;
                let mut replayed = 0;
                if channel.is_some() || language.is_some() || account_role.is_some() {
                    settings.channel = channel.or(settings.channel);
                    settings.language = language.or(settings.language);
                    settings.account_role = account_role.or(settings.account_role);
                    self.store.set_tenant_settings(&TenantAuditEntry {
                        at: self.clock.now(),
                        actor: actor.id.clone(),
                        tenant: tenant.clone(),
                        settings: settings.clone(),
                    })?;
                    if channel.is_some() {
                        // What waited for a channel goes to this one.
                        replayed = self.store.requeue_dead_letters(tenant, crate::store::NO_CHANNEL)?;
                    }
                }
                let view = TenantSettingsView { tenant: tenant.to_string(), settings, replayed };
                Ok(Reply::new(Tone::Success, vec![Message::TenantSettings(view.clone())]).with_data(view))
            }
            Command::VerifyRole { .. } | Command::Invite { .. } | Command::OpenTicket { .. } => {
                Err(anyhow::anyhow!("this command waits on AWS: run it with App::execute").into())
            }
            Command::Later { account } => {
                let view = AccountView::from(self.load(actor, account)?);
                Ok(Reply::new(Tone::Info, vec![Message::Later(view)]))
            }
            Command::SetPriceBook { account, price_book } => {
                let (account, _) = self.update(actor, account, "price_book", |a, now| {
                    Ok::<_, UserError>(a.set_price_book(price_book.clone(), now))
                })?;
                let view = AccountView::from(account);
                Ok(Reply::new(Tone::Success, vec![Message::PriceBookSet(view.clone())]).with_data(view))
            }
        }
    }

    fn add_account(&self, actor: &Actor, new: NewAccount) -> Result<Reply, AppError> {
        if let Scope::Tenant(tenant) = &actor.scope
            && *tenant != new.tenant
        {
            return Err(anyhow::anyhow!("a tenant may only register accounts for itself").into());
        }
        let id = new.id;
        let kind = new.kind;
        let now = self.clock.now();
        // A clash of 100-bit random IDs is next to impossible; draw again if
        // it ever happens rather than fail.
        for _ in 0..8 {
            let external_id = ExternalId::generate(&self.settings.external_id_prefix);
            let (mut account, events) = Account::register(new.clone(), external_id, now)
                .map_err(|_| UserError::ManagementAccount { account: id })?;
            if self.settings.probe.enabled {
                account.restart_probe(&self.settings.probe.plan, now);
            }
            let entry =
                AuditEntry { at: now, actor: actor.id.clone(), account: id, action: "account_add".into(), events };
            match self.store.insert_account(&account, &entry).context("storing a new account")? {
                Ok(()) => {
                    let view = AccountView::from(account.clone());
                    let mut messages = vec![Message::Registered(view.clone())];
                    let mut tone = Tone::Success;
                    if kind == AccountKind::Member {
                        messages.push(Message::MemberAccountWarning(view.clone()));
                        tone = Tone::Warning;
                    }
                    messages.push(Message::Instructions(self.instructions(&account)));
                    return Ok(Reply::new(tone, messages).with_data(view).with_offers(Offer::instructions(id)));
                }
                Err(InsertConflict::AccountExists { same_tenant: true }) => {
                    return Err(UserError::AlreadyRegistered { account: id }.into());
                }
                Err(InsertConflict::AccountExists { same_tenant: false }) => {
                    return Err(UserError::RegisteredElsewhere { account: id }.into());
                }
                Err(InsertConflict::ExternalIdTaken) => continue,
            }
        }
        Err(anyhow::anyhow!("could not draw an unused external ID").into())
    }

    fn list_accounts(&self, actor: &Actor, tenant: Option<TenantId>) -> Result<Reply, AppError> {
        let tenant = match &actor.scope {
            Scope::Tenant(own) => Some(own.clone()),
            Scope::Ops => tenant,
        };
        let accounts = match &tenant {
            Some(t) => self.store.tenant_accounts(t)?,
            None => self.store.all_accounts()?,
        };
        let view = ListView {
            tenant: tenant.map(|t| t.to_string()),
            accounts: accounts.iter().map(AccountSummary::from).collect(),
        };
        Ok(Reply::new(Tone::Info, vec![Message::List(view.clone())]).with_data(view))
    }

    fn rotate_external_id(&self, actor: &Actor, account: AccountId) -> Result<Reply, AppError> {
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
                    let id = account.id;
                    let instructions = self.instructions(&account);
                    let view = AccountView::from(account);
                    return Ok(Reply::new(
                        Tone::Success,
                        vec![Message::ExternalIdRotated(view.clone()), Message::Instructions(instructions)],
                    )
                    .with_data(view)
                    .with_offers(Offer::instructions(id)));
                }
                Err(Retry::ExternalIdTaken) => continue,
                Err(Retry::Failed(e)) => return Err(e),
            }
        }
        Err(anyhow::anyhow!("could not draw an unused external ID").into())
    }

    /// The actor's accounts whose ID starts with the digits of `partial` or
    /// whose customer name contains it: for autocomplete, at most `limit`.
    pub fn suggest_accounts(
        &self,
        actor: &Actor,
        partial: &str,
        limit: usize,
    ) -> Result<Vec<AccountSummary>, AppError> {
        self.authorize(actor, Permission::AccountRole)?;
        let accounts = match &actor.scope {
            Scope::Tenant(tenant) => self.store.tenant_accounts(tenant)?,
            Scope::Ops => self.store.all_accounts()?,
        };
        let digits: String = partial.chars().filter(char::is_ascii_digit).collect();
        let words = partial.trim().to_lowercase();
        Ok(accounts
            .iter()
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

    /// Refuses an actor without `permission`.
    fn authorize(&self, actor: &Actor, permission: Permission) -> Result<(), AppError> {
        let Scope::Tenant(tenant) = &actor.scope else { return Ok(()) };
        let rights = &actor.rights;
        let (allowed, role) = match permission {
            Permission::AccountRole => {
                let role = self.store.tenant_settings(tenant)?.account_role;
                (rights.manage_server || role.is_some_and(|r| rights.roles.contains(&r)), role)
            }
            Permission::ManageServer => (rights.manage_server, None),
            Permission::Ops => (rights.ops, None),
        };
        if allowed { Ok(()) } else { Err(UserError::NotAllowed { permission, role }.into()) }
    }

    fn instructions(&self, account: &Account) -> InstructionsView {
        InstructionsView::new(account, &self.settings)
    }

    /// The account, if the actor may see it. Another tenant's account is
    /// reported as not found, so its existence is not revealed.
    fn load(&self, actor: &Actor, id: AccountId) -> Result<Account, AppError> {
        match self.store.account(id)? {
            Some(account) if visible(actor, &account) => Ok(account),
            _ => Err(UserError::AccountNotFound { account: id }.into()),
        }
    }

    /// Changes an account the actor may change, in one store transaction.
    fn update(
        &self,
        actor: &Actor,
        id: AccountId,
        action: &str,
        change: impl Fn(&mut Account, time::OffsetDateTime) -> Result<Vec<crate::domain::Event>, UserError>,
    ) -> Result<(Account, Vec<crate::domain::Event>), Retry> {
        let now = self.clock.now();
        let not_found = || Retry::Failed(UserError::AccountNotFound { account: id }.into());
        let result = self.store.update_account(id, &actor.id, action, now, |account| {
            if !visible(actor, account) {
                return Err(None);
            }
            change(account, now).map_err(Some)
        });
        match result {
            Ok(done) => Ok(done),
            Err(UpdateError::NotFound | UpdateError::Rejected(None)) => Err(not_found()),
            Err(UpdateError::Rejected(Some(e))) => Err(Retry::Failed(e.into())),
            Err(UpdateError::ExternalIdTaken) => Err(Retry::ExternalIdTaken),
            Err(UpdateError::Store(e)) => Err(Retry::Failed(e.into())),
        }
    }
}

/// An update that failed, or that may succeed with a fresh external ID.
enum Retry {
    ExternalIdTaken,
    Failed(AppError),
}

impl From<Retry> for AppError {
    fn from(r: Retry) -> Self {
        match r {
            Retry::Failed(e) => e,
            Retry::ExternalIdTaken => anyhow::anyhow!("external ID clash outside a rotation").into(),
        }
    }
}

/// Whether the actor may see the account: its own tenant's, or any for the
/// distributor's operators.
fn visible(actor: &Actor, account: &Account) -> bool {
    match &actor.scope {
        Scope::Ops => true,
        Scope::Tenant(_) if actor.rights.ops => true,
        Scope::Tenant(tenant) => account.tenant == *tenant,
    }
}

//! The application: typed commands, one handler per feature, typed replies.
//!
//! Every front end (CLI, Discord) builds a [`Command`] from what the user
//! typed, calls [`App::execute`] (or [`App::handle`] for the commands that
//! do not wait on AWS or Freshdesk) and renders the [`Reply`]. The
//! dispatcher below opens one span per command and hands it to its feature:
//! `accounts`, `tenants` (with the door every tenant's command passes),
//! `verify`, `invite`, `tickets`; `jobs` holds the scheduled work. No front
//! end holds business rules; this module holds no I/O of its own beyond the
//! store and the clients it is given.

mod accounts;
mod backup;
mod command;
mod corrections;
mod error;
mod import;
mod invite;
mod jobs;
mod outbox;
mod pipeline;
mod quotas;
mod rate;
mod reply;
mod tenants;
mod tickets;
mod verify;

use std::sync::Arc;

use time::OffsetDateTime;
use tracing::Instrument as _;

pub use backup::{BackupPlan, BackupView, backup_error};
pub use command::{Command, ImportAnswer, InstructionsFormat, ListFormat, Replay};
pub use error::{Action, AppError, Permission, Unfetched, UserError};
pub use jobs::JobReport;
pub use pipeline::{MAX_PAGE as PIPELINE_MAX_PAGE, PAGE_SIZE as PIPELINE_PAGE_SIZE};
pub use reply::{
    AccountSummary, AccountView, CorrectionView, ExportRow, ExportView, HistoryEntry, HistoryView, IMPORTED_IDS_FILE,
    ImportView, ImportedAccount, InstructionsView, InviteRefusedView, InvitedView, LastCheck, ListView, Message,
    NotificationView, Offer, OutboxDroppedView, OutboxEntry, OutboxReplayedView, OutboxView, PendingTicket,
    PipelineView, Rendered, Reply, TenantDecisionView, TenantListView, TenantSettingsView, TenantSummary, TicketView,
    Tone, Verdict, VerificationView, trust_policy,
};

use crate::aws::Aws;
use crate::aws::organizations::Distributor;
use crate::clock::Clock;
use crate::domain::claims::{self, NoClaim, Whose};
use crate::domain::quota::Quotas;
use crate::domain::{
    Account, AccountId, ChatId, DueJob, DuePlan, Effects, Event, ExternalIdPrefix, Partition, ProbePlan, RoleName,
    TenantId, TenantPolicy, TicketEffect,
};
use crate::freshdesk::desk::TicketDesk;
use crate::store::{Audit, By, Change, Counted, Store, UpdateError};

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
    /// How long a claim stays open without a verified role.
    pub lapse_after: time::Duration,
    /// How a server that adds orglink becomes a tenant.
    pub tenant_policy: TenantPolicy,
    /// The distributor's operations server, never held for approval
    /// (`discord.ops_guild_id`: `wiring` sets it).
    pub operations_server: Option<TenantId>,
    /// How much each tenant may use of what all share.
    pub quotas: Quotas,
    /// Scheduled backups: where, and how many stay (`backup.dir`; none:
    /// off).
    pub backup: Option<BackupPlan>,
    /// The published generic role template and the console region its
    /// quick-create link opens (`instructions.template_url`; none: no link).
    pub template: Option<crate::domain::quick_create::TemplateLocation>,
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
            lapse_after: time::Duration::days(14),
            tenant_policy: TenantPolicy::default(),
            operations_server: None,
            quotas: Quotas::default(),
            backup: None,
            template: None,
        }
    }
}

impl Settings {
    /// What the jobs' due times depend on.
    pub fn due_plan(&self) -> DuePlan<'_> {
        DuePlan {
            probe: self.probe.enabled.then_some(&self.probe.plan),
            reminder_days: &self.reminder_days,
            lapse_after: self.lapse_after,
        }
    }

    /// The due plan as a fingerprint: the due index is rebuilt when it
    /// changes.
    fn due_plan_key(&self) -> String {
        let probe = if self.probe.enabled { self.probe.plan.to_string() } else { "off".into() };
        format!("v2; probe: {probe}; reminders: {:?}; lapse: {}", self.reminder_days, self.lapse_after)
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
    /// Operations acting on one tenant's claim (`--tenant`): without it,
    /// they act on the account's owner's claim, or its only one.
    pub claim_of: Option<TenantId>,
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
            claim_of: None,
        }
    }

    /// The same operator, acting on `tenant`'s claims.
    pub fn on_claim_of(self, tenant: Option<TenantId>) -> Self {
        Self { claim_of: tenant, ..self }
    }

    /// What orglink itself runs as (jobs, automatic invitations).
    pub fn system(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            scope: Scope::Ops,
            rights: Rights { manage_server: true, roles: Vec::new(), ops: true },
            claim_of: None,
        }
    }

    /// The chat member behind an actor from Discord (`discord:<user>`), to
    /// name them in a message.
    pub fn chat_user(&self) -> Option<ChatId> {
        self.id.strip_prefix("discord:")?.parse().ok()
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
    /// Tenants' role checks of the last minute, per account: the
    /// per-minute quota's count.
    recent_checks: Arc<std::sync::Mutex<rate::LastMinute<(AccountId, TenantId)>>>,
    /// Held from reading a tenant's quota count to writing the use that
    /// counts against it (a registration, a ticket), so two at once cannot
    /// both take the last one. This process owns the store: enough.
    quota_gate: Arc<std::sync::Mutex<()>>,
    /// The due index was checked against the settings' plan.
    due_index_ready: Arc<std::sync::atomic::AtomicBool>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl App {
    pub fn new(store: Store, settings: Settings, clock: Arc<dyn Clock>) -> Self {
        let probe_calls = Arc::new(std::sync::Mutex::new(rate::RateWindow::new(settings.probe.assume_role_per_minute)));
        let metrics = Arc::new(crate::metrics::Metrics::new(clock.now()));
        let app = Self {
            store,
            settings,
            clock,
            aws: None,
            distributor: None,
            ticket_desk: None,
            probe_calls,
            recent_checks: Arc::default(),
            quota_gate: Arc::default(),
            due_index_ready: Arc::default(),
            metrics,
        };
        // At once, so that the first job run reads as little as any other;
        // a failure is retried by that run.
        if let Err(e) = app.ensure_due_index() {
            tracing::error!(error = format!("{e:#}"), "the due index could not be checked");
        }
        app
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

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs any command, waiting on AWS or Freshdesk where it must, in one
    /// span named after the command, once the door (`App::admit`) and
    /// authorisation let it through.
    pub async fn execute(&self, actor: &Actor, command: Command) -> Result<Reply, AppError> {
        let span = command_span(actor, &command);
        async {
            self.let_through(actor, command.permission()).await?;
            match command {
                Command::VerifyRole { account, arn, description } => {
                    self.verify_role(actor, account, arn, description).await
                }
                Command::Invite { account, note } => self.invite(actor, account, note).await,
                Command::OpenTicket { account, reason } => self.request_ticket(actor, account, reason).await,
                other => {
                    let actor = actor.clone();
                    self.off_thread(move |app| app.dispatch(&actor, other)).await
                }
            }
        }
        .instrument(span)
        .await
    }

    /// The door (`App::admit`) and authorisation for `permission`, as
    /// [`App::execute`] passes a command through them: for a front end with
    /// work of its own to do before the command (a file to fetch), which
    /// it does only for those it lets through.
    pub async fn let_through(&self, actor: &Actor, permission: Permission) -> Result<(), AppError> {
        if let Scope::Tenant(_) = actor.scope {
            // It may record a new tenant: a store write.
            let actor = actor.clone();
            self.off_thread(move |app| app.admit(&actor)).await?;
        }
        self.authorize(actor, permission)
    }

    /// Runs a command that does not wait on AWS or Freshdesk (through the
    /// same door and authorisation).
    pub fn handle(&self, actor: &Actor, command: Command) -> Result<Reply, AppError> {
        let span = command_span(actor, &command);
        let _entered = span.enter();
        self.admit(actor)?;
        self.authorize(actor, command.permission())?;
        self.dispatch(actor, command)
    }

    /// The one match from a command to its handler (the slow ones run
    /// through [`App::execute`]).
    fn dispatch(&self, actor: &Actor, command: Command) -> Result<Reply, AppError> {
        match command {
            Command::AddAccount(new) => self.add_account(actor, new),
            Command::ImportAccounts { tenant, rows, dry_run, answer } => {
                self.import_accounts(actor, &tenant, rows, dry_run, answer)
            }
            Command::ListAccounts { tenant, filter, format } => self.list_accounts(actor, tenant, &filter, format),
            Command::ExportAccounts { tenant } => self.export_accounts(actor, tenant),
            Command::ShowAccount { account } => self.show_account(actor, account),
            Command::RotateExternalId { account } => self.rotate_external_id(actor, account),
            Command::Instructions { account, format } => self.show_instructions(actor, account, format),
            Command::SetSupportPlan { account, group } => self.set_support_plan(actor, account, group),
            Command::SetPriceBook { account, price_book } => self.set_price_book(actor, account, price_book),
            Command::Configure { channel, language, account_role } => {
                self.configure(actor, channel, language, account_role)
            }
            Command::Later { account } => self.later(actor, account),
            Command::Revive { account } => self.revive(actor, account),
            Command::RemoveAccount { account, reason, force } => self.remove_account(actor, account, &reason, force),
            Command::TransferAccount { account, to, reason } => self.transfer_account(actor, account, &to, &reason),
            Command::EditAccount { account, edit, reason } => self.edit_account(actor, account, &edit, reason.as_ref()),
            Command::History { account } => self.history(actor, account),
            Command::DecideTenant { tenant, decision } => self.decide_tenant(actor, tenant, decision),
            Command::ListTenants => self.list_tenants(),
            Command::Pipeline { tenant, format, page } => self.pipeline(tenant, format, page),
            Command::ListOutbox { dead } => self.list_outbox(dead),
            Command::ReplayOutbox { which } => self.replay_outbox(which),
            Command::DropOutbox { id, reason } => self.drop_outbox(actor, id, &reason),
            Command::Backup { file } => self.backup(&file),
            Command::Check => self.check(),
            Command::VerifyRole { .. } | Command::Invite { .. } | Command::OpenTicket { .. } => {
                Err(anyhow::anyhow!("this command waits on AWS or Freshdesk: run it with App::execute").into())
            }
        }
    }

    /// Runs `work` on tokio's blocking threads: store writes wait for the
    /// disk (every write is flushed), and must not hold up the async
    /// threads that answer Discord.
    pub(crate) async fn off_thread<T: Send + 'static>(&self, work: impl FnOnce(App) -> T + Send + 'static) -> T {
        let app = self.clone();
        match tokio::task::spawn_blocking(move || work(app)).await {
            Ok(value) => value,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// [`App::update`] off the async threads, for the handlers that wait on
    /// AWS or Freshdesk.
    async fn update_off_thread(
        &self,
        actor: &Actor,
        id: AccountId,
        action: &'static str,
        change: impl Fn(&mut Account, OffsetDateTime) -> Result<Vec<Event>, UserError> + Send + 'static,
    ) -> Result<(Account, Vec<Event>), Retry> {
        let actor = actor.clone();
        self.off_thread(move |app| app.update(&actor, id, action, change)).await
    }

    /// Refuses an actor without `permission`.
    fn authorize(&self, actor: &Actor, permission: Permission) -> Result<(), AppError> {
        let Scope::Tenant(tenant) = &actor.scope else { return Ok(()) };
        let rights = &actor.rights;
        let (allowed, role) = match permission {
            // The operations role (only ever held in the operations server)
            // reaches every tenant's accounts, as the command line does.
            Permission::AccountRole if rights.ops => (true, None),
            Permission::AccountRole => {
                let role = self.store.tenant_settings(tenant)?.account_role;
                (rights.manage_server || role.is_some_and(|r| rights.roles.contains(&r)), role)
            }
            Permission::ManageServer => (rights.manage_server, None),
            Permission::Ops => (rights.ops, None),
        };
        if allowed { Ok(()) } else { Err(UserError::NotAllowed { permission, role }.into()) }
    }

    /// The claim the actor means, if they may see it: a tenant's own; for
    /// operations, the one `--tenant` names, else the owner's or the only
    /// one. Another tenant's claim is reported as not found, so its
    /// existence is not revealed; a closed claim is gone.
    fn load(&self, actor: &Actor, id: AccountId) -> Result<Account, AppError> {
        let claims: Vec<Account> = self.store.claims(id)?.into_iter().filter(|c| c.closed_at.is_none()).collect();
        match claims::select(&claims, whose(actor)) {
            Ok(i) => Ok(claims.into_iter().nth(i).expect("selected")),
            Err(NoClaim::Missing) => Err(UserError::AccountNotFound { account: id }.into()),
            Err(NoClaim::Ambiguous { claims }) => Err(UserError::AmbiguousClaim { account: id, claims }.into()),
        }
    }

    /// The one way a change of a claim is recorded: `change` applies the
    /// domain's rules to `tenant`'s claim on account `id` and says which
    /// events it caused; the domain decides their effects, the jobs' due
    /// times and (when the claim now owns the account) which other claims
    /// close; the store writes it all in one transaction. `also` adds what
    /// the caller did to the ticket queue.
    pub fn update_account<E>(
        &self,
        id: AccountId,
        tenant: &TenantId,
        by: By<'_>,
        also: &[TicketEffect],
        change: impl Fn(&mut Account) -> Result<Vec<Event>, E>,
    ) -> Result<(Account, Vec<Event>), UpdateError<E>> {
        self.update_account_counted(id, tenant, by, also, None, change)
    }

    /// [`App::update_account`], with the quota count the change uses one
    /// of, written with it.
    fn update_account_counted<E>(
        &self,
        id: AccountId,
        tenant: &TenantId,
        by: By<'_>,
        also: &[TicketEffect],
        counted: Option<&Counted>,
        change: impl Fn(&mut Account) -> Result<Vec<Event>, E>,
    ) -> Result<(Account, Vec<Event>), UpdateError<E>> {
        let result = self.store.change_claims(id, &by, |claims| {
            let Some(i) = claims.iter().position(|c| c.tenant == *tenant && c.closed_at.is_none()) else {
                return Err(None);
            };
            let events = change(&mut claims[i]).map_err(Some)?;
            let mut first = self.change_of(&claims[i], events, by.at).with_tickets(also);
            first.counted.extend(counted.cloned());
            let mut changes = vec![(tenant.clone(), first)];
            for j in claims::settle(claims, i) {
                let events = claims[j].close(by.at);
                changes.push((claims[j].tenant.clone(), self.change_of(&claims[j], events, by.at)));
            }
            Ok(changes)
        });
        match result {
            Ok((claims, mut changes)) => {
                let account = claims.into_iter().find(|c| c.tenant == *tenant).expect("changed above");
                Ok((account, changes.swap_remove(0).1.events))
            }
            Err(UpdateError::Rejected(None)) | Err(UpdateError::NotFound) => Err(UpdateError::NotFound),
            Err(UpdateError::Rejected(Some(e))) => Err(UpdateError::Rejected(e)),
            Err(UpdateError::ExternalIdTaken) => Err(UpdateError::ExternalIdTaken),
            Err(UpdateError::Store(e)) => Err(UpdateError::Store(e)),
        }
    }

    /// What the store records with `events` of `account` as it now is.
    fn change_of(&self, account: &Account, events: Vec<Event>, at: OffsetDateTime) -> Change {
        let effects = Effects::of(account, &events, at);
        Change { due: account.due(&self.settings.due_plan()), events, effects, counted: Vec::new() }
    }

    /// Changes the claim the actor means, in one store transaction.
    fn update(
        &self,
        actor: &Actor,
        id: AccountId,
        action: &str,
        change: impl Fn(&mut Account, OffsetDateTime) -> Result<Vec<Event>, UserError>,
    ) -> Result<(Account, Vec<Event>), Retry> {
        let tenant = self.load(actor, id).map_err(Retry::Failed)?.tenant;
        self.update_claim(actor, id, &tenant, action, None, change)
    }

    /// Changes `tenant`'s claim on account `id` (the one the actor means),
    /// with the quota count the change uses one of.
    fn update_claim(
        &self,
        actor: &Actor,
        id: AccountId,
        tenant: &TenantId,
        action: &str,
        counted: Option<&Counted>,
        change: impl Fn(&mut Account, OffsetDateTime) -> Result<Vec<Event>, UserError>,
    ) -> Result<(Account, Vec<Event>), Retry> {
        let now = self.clock.now();
        let by = By { actor: &actor.id, action, at: now, audit: Audit::Always };
        let not_found = || Retry::Failed(UserError::AccountNotFound { account: id }.into());
        match self.update_account_counted(id, tenant, by, &[], counted, |account| change(account, now)) {
            Ok(done) => Ok(done),
            Err(UpdateError::NotFound) => Err(not_found()),
            Err(UpdateError::Rejected(e)) => Err(Retry::Failed(e.into())),
            Err(UpdateError::ExternalIdTaken) => Err(Retry::ExternalIdTaken),
            Err(UpdateError::Store(e)) => Err(Retry::Failed(e.into())),
        }
    }

    /// Rebuilds the due index when the settings it was built for changed
    /// (or after a migration, or for a new store), once per app.
    fn ensure_due_index(&self) -> Result<(), crate::store::StoreError> {
        use std::sync::atomic::Ordering;
        if self.due_index_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let key = self.settings.due_plan_key();
        if self.store.due_plan()?.as_deref() != Some(key.as_str()) {
            let plan = self.settings.due_plan();
            let count = self.store.reindex_due(&key, |account| account.due(&plan))?;
            tracing::info!(accounts = count, plan = key, "the due index was rebuilt");
        }
        self.due_index_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The accounts `job` must look at now; a job that works for the
    /// tenants passes over those of tenants on hold (suspended), which take
    /// no room in `limit`.
    fn due_accounts(
        &self,
        job: crate::scheduler::Job,
        due: DueJob,
        limit: usize,
    ) -> Result<crate::store::DueAccounts, AppError> {
        self.ensure_due_index()?;
        let on_hold = self.tenants_on_hold(job)?;
        let due = self.store.due_accounts_except(due, self.clock.now(), limit, |a| on_hold.contains(&a.tenant))?;
        self.metrics.job_records_read(job.name(), due.accounts.len() + due.passed_over);
        Ok(due)
    }
}

impl App {
    /// The tenants whose claims `job` passes over: suspended ones, when the
    /// job acts for tenants.
    pub(crate) fn tenants_on_hold(
        &self,
        job: crate::scheduler::Job,
    ) -> Result<std::collections::BTreeSet<TenantId>, AppError> {
        if !job.acts_for_tenants() {
            return Ok(Default::default());
        }
        Ok(self.store.tenant_statuses()?.into_iter().filter(|(_, s)| s.state.on_hold()).map(|(t, _)| t).collect())
    }
}

fn command_span(actor: &Actor, command: &Command) -> tracing::Span {
    let account = command.account().map(|a| a.to_string()).unwrap_or_default();
    tracing::info_span!("command", name = command.name(), actor = %actor.id, account = %account)
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

/// Which claim the actor's commands are about: a tenant's own, or (for
/// operations) the one they name, else the account's principal claim.
fn whose(actor: &Actor) -> Whose<'_> {
    match (&actor.scope, actor.rights.ops, &actor.claim_of) {
        (_, true, Some(tenant)) | (Scope::Ops, _, Some(tenant)) => Whose::Tenant(tenant),
        (Scope::Ops, _, None) | (Scope::Tenant(_), true, None) => Whose::Principal,
        (Scope::Tenant(tenant), false, _) => Whose::Tenant(tenant),
    }
}

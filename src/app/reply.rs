//! What handlers answer: typed messages, rendered by the front end in the
//! user's language from `templates/<lang>/`.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use super::error::UserError;
use crate::domain::import::{RowError, RowProblem};
use crate::domain::{
    Account, AccountId, AwsSupportTier, ChatId, ChecklistEntry, Event, ExternalId, Lang, ManagedPolicy, ParseError,
    Partition, RoleName, SupportPlanGroup, SupportTier, TenantDecision, TenantId, TenantSettings, TenantState,
    TextProblem, VerificationReport,
};
use crate::templates::{Surface, Templates};

pub use crate::domain::Tone;

/// Whether a command did what it was asked to: a role that is not
/// verified, or an invitation AWS refused, ran without error but is
/// `Refused` (the CLI exits 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verdict {
    #[default]
    Done,
    Refused,
    /// The command ran and found something wrong (`check`): the CLI exits 1.
    Failed,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub tone: Tone,
    pub verdict: Verdict,
    pub messages: Vec<Message>,
    /// The machine-readable answer of read commands (`--json`), turned
    /// into JSON only when asked ([`Reply::data`]): a chat reply never is.
    data: Option<Data>,
    /// Next steps a front end may offer (Discord buttons).
    pub offers: Vec<Offer>,
}

/// A view kept for [`Reply::data`].
#[derive(Clone)]
struct Data(Arc<dyn ToJson>);

trait ToJson: Send + Sync {
    fn json(&self) -> Value;
}

impl<T: Serialize + Send + Sync> ToJson for T {
    fn json(&self) -> Value {
        serde_json::to_value(self).expect("views serialise to JSON")
    }
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Data(..)")
    }
}

/// A next step offered with a reply or a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// Open the AWS console's CloudFormation quick-create page (a link,
    /// not an action of orglink's): the account's stack, filled in.
    LaunchStack(String),
    /// Show the CloudFormation template of the account's role.
    CloudFormation(AccountId),
    /// Show the AWS CLI commands that create the account's role.
    AwsCli(AccountId),
    /// Show the Terraform configuration that creates the account's role.
    Terraform(AccountId),
    /// "I created the role": paste the role's ARN.
    RoleCreated(AccountId),
    /// Come back to it later.
    Later(AccountId),
    /// Check the recorded role again.
    CheckNow(AccountId),
    /// Operations: let the tenant in.
    ApproveTenant(TenantId),
    /// Operations: keep the tenant out.
    DenyTenant(TenantId),
    /// Operations: show this page of the pipeline's stuck claims
    /// (`Previous` and `Next` on `/pipeline`).
    PipelinePage { page: u32, next: bool },
}

impl Offer {
    /// Every step the instructions offer, for the account they are of:
    /// the quick-create link first, when there is one.
    pub fn instructions(view: &InstructionsView) -> Vec<Offer> {
        let account = view.account_id;
        let link = view.launch_url.clone().map(Self::LaunchStack);
        link.into_iter()
            .chain([
                Self::CloudFormation(account),
                Self::Terraform(account),
                Self::AwsCli(account),
                Self::RoleCreated(account),
                Self::Later(account),
            ])
            .collect()
    }

    /// What a notification of `event` offers its readers (operations, when
    /// `for_ops`): a pending tenant is approved or denied from its notice.
    pub fn for_notice(event: &Event, for_ops: bool) -> Vec<Offer> {
        match event {
            Event::TenantPending { tenant, .. } if for_ops => {
                vec![Self::ApproveTenant(tenant.clone()), Self::DenyTenant(tenant.clone())]
            }
            _ => Vec::new(),
        }
    }

    /// The buttons to the pipeline's pages around `page` (of `pages`).
    pub fn pages(page: u32, pages: u32) -> Vec<Offer> {
        let previous = page.checked_sub(1).map(|p| Self::PipelinePage { page: p, next: false });
        let next = (page + 1 < pages).then_some(Self::PipelinePage { page: page + 1, next: true });
        previous.into_iter().chain(next).collect()
    }
}

impl Reply {
    pub fn new(tone: Tone, messages: Vec<Message>) -> Self {
        Self { tone, verdict: Verdict::Done, messages, data: None, offers: Vec::new() }
    }

    /// The command ran, and the answer is no.
    pub fn refused(mut self) -> Self {
        self.verdict = Verdict::Refused;
        self
    }

    /// The command ran, and what it found is wrong.
    pub fn failed(mut self) -> Self {
        self.verdict = Verdict::Failed;
        self
    }

    pub fn with_offers(mut self, offers: Vec<Offer>) -> Self {
        self.offers = offers;
        self
    }

    /// Whether only the person who asked may see it: it is an error, or a
    /// message in it is private (`Message::is_private`).
    pub fn is_private(&self) -> bool {
        self.tone == Tone::Error || self.messages.iter().any(Message::is_private)
    }

    pub fn with_data(mut self, data: impl Serialize + Send + Sync + 'static) -> Self {
        self.data = Some(Data(Arc::new(data)));
        self
    }

    /// The machine-readable answer (`--json`), if the command has one.
    pub fn data(&self) -> Option<Value> {
        self.data.as_ref().map(|data| data.0.json())
    }

    pub fn error(error: UserError) -> Self {
        Self::new(Tone::Error, vec![Message::Error(error)])
    }
}

/// An account as messages and `--json` show it: the record plus what is
/// derived from it.
#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    #[serde(flatten)]
    pub account: Account,
    /// The group the account needs: by the tier AWS says when it said
    /// one at the last check of the role, else by the declared tier.
    pub required_support_plan_group: SupportPlanGroup,
    pub support_plan_mismatch: bool,
    /// What AWS said of the support tier at the last check of the role;
    /// none while no role was checked.
    pub aws_support_tier: Option<AwsSupportTier>,
    /// AWS says another tier than the one declared.
    pub support_tier_mismatch: bool,
    pub checklist: Vec<ChecklistEntry>,
    /// The last check of the recorded role: when, and its verdict.
    pub last_check: Option<LastCheck>,
    /// Tickets asked for and waiting for Freshdesk (filled where the
    /// account is shown on its own: `account show`, `/status`).
    pub pending_tickets: Vec<PendingTicket>,
}

/// When the recorded role was last checked, and whether it passed.
#[derive(Debug, Clone, Serialize)]
pub struct LastCheck {
    #[serde(with = "crate::domain::instant")]
    pub at: time::OffsetDateTime,
    pub verified: bool,
}

/// A ticket recorded and not yet opened in Freshdesk.
#[derive(Debug, Clone, Serialize)]
pub struct PendingTicket {
    #[serde(with = "crate::domain::instant")]
    pub requested_at: time::OffsetDateTime,
}

impl From<Account> for AccountView {
    fn from(account: Account) -> Self {
        let report = account.role.as_ref().and_then(|r| r.report.as_ref());
        Self {
            required_support_plan_group: account.required_group(),
            support_plan_mismatch: account.support_plan_mismatch(),
            aws_support_tier: report.map(|r| r.support_tier.clone()),
            support_tier_mismatch: account.support_tier_mismatch(),
            checklist: account.checklist(),
            last_check: report.map(|r| LastCheck { at: r.checked_at, verified: r.verified() }),
            pending_tickets: Vec::new(),
            account,
        }
    }
}

/// What a correction did to a registration.
#[derive(Debug, Clone, Serialize)]
pub struct CorrectionView {
    pub account: AccountView,
    /// `removed`, `transferred` or `edited`.
    pub correction: &'static str,
    /// The fields an edit changed.
    pub fields: Vec<String>,
    /// The tenant a transfer moved it from (operations see it).
    pub from: Option<String>,
    pub reason: Option<String>,
}

/// An account's audit log, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryView {
    pub account_id: AccountId,
    pub entries: Vec<HistoryEntry>,
    /// Whether each entry's tenant is shown (operations only).
    pub for_ops: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// ISO 8601, UTC.
    #[serde(with = "crate::domain::instant")]
    pub at: time::OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub tenant: Option<String>,
    /// The codes of the events the change caused.
    pub events: Vec<String>,
    /// Why, where the change says (removals, transfers, edits).
    pub reason: Option<String>,
}

/// One line of an account list.
#[derive(Debug, Clone, Serialize)]
pub struct AccountSummary {
    pub id: AccountId,
    pub tenant: String,
    pub customer: String,
    pub support_tier: SupportTier,
    pub state: crate::domain::LinkState,
    pub steps_done: usize,
    pub steps_total: usize,
    #[serde(with = "crate::domain::instant")]
    pub registered_at: time::OffsetDateTime,
    #[serde(with = "crate::domain::instant")]
    pub updated_at: time::OffsetDateTime,
    /// Who must act next; none when every step is done.
    pub next_actor: Option<crate::domain::Responsible>,
}

impl From<&Account> for AccountSummary {
    fn from(a: &Account) -> Self {
        let progress = a.progress();
        Self {
            id: a.id,
            tenant: a.tenant.to_string(),
            customer: a.customer.to_string(),
            support_tier: a.support_tier,
            state: a.state,
            steps_done: progress.done,
            steps_total: progress.total,
            registered_at: a.registered_at,
            updated_at: a.updated_at,
            next_actor: progress.next_actor,
        }
    }
}

impl AccountSummary {
    /// The summary of a claim of `tenant`, from its pipeline row: what
    /// [`AccountSummary::from`] makes of the claim itself.
    pub fn of_row(tenant: &crate::domain::TenantId, row: &crate::domain::pipeline::Row) -> Self {
        Self {
            id: row.account,
            tenant: tenant.to_string(),
            customer: row.customer.clone(),
            support_tier: row.support_tier,
            state: row.state,
            steps_done: row.steps_done.into(),
            steps_total: row.steps_total.into(),
            registered_at: row.registered_at,
            updated_at: row.updated_at,
            next_actor: row.next_actor,
        }
    }
}

/// Everything the role instructions fill in for one account.
#[derive(Debug, Clone, Serialize)]
pub struct InstructionsView {
    pub account_id: AccountId,
    pub customer: String,
    pub support_tier: SupportTier,
    pub business: bool,
    pub cross_account_id: AccountId,
    pub external_id: ExternalId,
    pub role_name: RoleName,
    pub read_only_policy_arn: String,
    pub support_policy_arn: String,
    pub managed_policy_arns: Vec<String>,
    /// The trust policy the role needs, as pretty JSON.
    pub trust_policy: String,
    /// The platform's principal the role trusts (`arn:<partition>:iam::<id>:root`).
    pub principal: String,
    pub role_arn: String,
    /// orglink looks for the role under the suggested name: nothing to paste.
    pub probing: bool,
    /// The CloudFormation quick-create link, when a published template is
    /// configured (`instructions.template_url`).
    pub launch_url: Option<String>,
}

impl InstructionsView {
    pub fn new(account: &Account, settings: &super::Settings) -> Self {
        let cross_account_id = settings.cross_account_id;
        let role_name = settings.role_name.clone();
        let business = account.support_tier == SupportTier::Business;
        let partition = settings.partition;
        let read_only_policy_arn = ManagedPolicy::ReadOnlyAccess.arn(partition);
        let support_policy_arn = ManagedPolicy::SupportAccess.arn(partition);
        let managed_policy_arns = account.support_tier.managed_policies().iter().map(|p| p.arn(partition)).collect();
        let launch_url = settings.template.as_ref().map(|location| {
            crate::domain::quick_create::QuickCreate {
                partition,
                location,
                account: account.id,
                external_id: &account.external_id,
                role_name: &role_name,
                support_access: business,
            }
            .url()
        });
        Self {
            launch_url,
            principal: format!("arn:{}:iam::{cross_account_id}:root", partition.as_str()),
            account_id: account.id,
            customer: account.customer.to_string(),
            support_tier: account.support_tier,
            business,
            cross_account_id,
            role_arn: crate::domain::RoleArn::new(partition, account.id, role_name.clone()).to_string(),
            probing: settings.probe.enabled,
            trust_policy: serde_json::to_string_pretty(&trust_policy(
                partition,
                cross_account_id,
                &account.external_id,
            ))
            .expect("JSON serialises"),
            external_id: account.external_id.clone(),
            role_name,
            read_only_policy_arn,
            support_policy_arn,
            managed_policy_arns,
        }
    }
}

/// The trust policy a customer's role needs: the platform's account may
/// assume it, only with this account's external ID.
pub fn trust_policy(partition: Partition, cross_account_id: AccountId, external_id: &ExternalId) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:{}:iam::{cross_account_id}:root", partition.as_str()) },
            "Action": "sts:AssumeRole",
            "Condition": { "StringEquals": { "sts:ExternalId": external_id.as_str() } }
        }]
    })
}

/// An invitation sent, as messages and `--json` show it.
#[derive(Debug, Clone, Serialize)]
pub struct InvitedView {
    pub account: AccountView,
    /// An open invitation found on AWS was taken over instead of a new one.
    pub adopted: bool,
}

/// A ticket asked for.
#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    pub account: AccountId,
    /// The ticket's address, once Freshdesk has it.
    pub url: Option<String>,
    /// The same request was made before: this is that ticket.
    pub existing: bool,
}

/// Why AWS would not send an invitation.
#[derive(Debug, Clone, Serialize)]
pub struct InviteRefusedView {
    pub account: AccountId,
    /// AWS's constraint reason (or `unavailable`).
    pub reason: String,
    pub detail: Option<String>,
}

/// A role check as messages and `--json` show it.
#[derive(Debug, Clone, Serialize)]
pub struct VerificationView {
    pub account: AccountView,
    pub report: VerificationReport,
    pub verified: bool,
    pub role_arn: String,
    pub cross_account_id: AccountId,
    pub external_id: ExternalId,
    /// The condition a trust policy needs, as JSON, for the "No Access" hint.
    pub external_id_condition: String,
}

impl VerificationView {
    pub fn new(account: Account, report: VerificationReport, settings: &super::Settings) -> Self {
        let condition = json!({ "StringEquals": { "sts:ExternalId": account.external_id.as_str() } });
        Self {
            verified: report.verified(),
            role_arn: account.role.as_ref().map(|r| r.arn.to_string()).unwrap_or_default(),
            cross_account_id: settings.cross_account_id,
            external_id: account.external_id.clone(),
            external_id_condition: serde_json::to_string_pretty(&json!({ "Condition": condition }))
                .expect("JSON serialises"),
            account: account.into(),
            report,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TenantSettingsView {
    pub tenant: String,
    #[serde(flatten)]
    pub settings: TenantSettings,
    /// Notifications that waited for a channel and now go to the new one.
    pub replayed: usize,
}

/// A notification for a channel: the event, the account as it is now (none
/// for a tenant's own events, or an event that stands alone:
/// `Event::stands_alone`), its tenant, and whether operations read it.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationView {
    pub event: Event,
    pub account: Option<AccountView>,
    pub tenant: String,
    pub for_ops: bool,
}

/// What operations decided about a tenant (or found it already was).
#[derive(Debug, Clone, Serialize)]
pub struct TenantDecisionView {
    pub tenant: String,
    pub decision: TenantDecision,
    pub state: TenantState,
    #[serde(with = "crate::domain::instant")]
    pub since: time::OffsetDateTime,
    /// `false`: the tenant was there already; nothing was recorded.
    pub changed: bool,
    /// Who decided, when it was a chat member (to name them).
    pub by_user: Option<ChatId>,
}

/// One tenant in `tenant list`.
#[derive(Debug, Clone, Serialize)]
pub struct TenantSummary {
    pub tenant: String,
    /// `None`: never recorded (accounts registered from the CLI only).
    pub state: Option<TenantState>,
    #[serde(with = "crate::domain::instant::option")]
    pub since: Option<time::OffsetDateTime>,
    pub accounts: usize,
    /// The distributor's operations server, never held for approval.
    pub operations: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TenantListView {
    pub tenants: Vec<TenantSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListView {
    pub tenant: Option<String>,
    /// Some were left out by `--state` or `--stale`.
    pub filtered: bool,
    pub accounts: Vec<AccountSummary>,
}

/// What an import registered (or, in a dry run, would register).
#[derive(Debug, Clone, Serialize)]
pub struct ImportView {
    pub tenant: String,
    pub dry_run: bool,
    /// The file the external IDs are attached as, when the answer is a
    /// summary with a file (`ImportAnswer::File`) rather than a table.
    pub file: Option<String>,
    pub count: usize,
    pub accounts: Vec<ImportedAccount>,
}

/// One row of an import: its line, its account and, once registered, the
/// external ID the customer's role must trust.
#[derive(Debug, Clone, Serialize)]
pub struct ImportedAccount {
    pub line: usize,
    pub id: AccountId,
    pub customer: String,
    pub external_id: Option<ExternalId>,
}

/// The file an import's external IDs are attached as, on a chat.
pub const IMPORTED_IDS_FILE: &str = "external-ids.csv";

/// What a reseller sends each customer, one row per open claim.
#[derive(Debug, Clone, Serialize)]
pub struct ExportView {
    pub tenant: Option<String>,
    pub accounts: Vec<ExportRow>,
}

/// An account's row in the export: the role to create, the account it
/// trusts, the external ID it requires.
#[derive(Debug, Clone, Serialize)]
pub struct ExportRow {
    pub id: AccountId,
    pub customer: String,
    pub tenant: String,
    pub state: crate::domain::LinkState,
    pub external_id: ExternalId,
    pub role_name: RoleName,
    pub trusted_account_id: AccountId,
}

/// The pipeline as operations read it: its figures, and which page of the
/// claims stuck longest it shows.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineView {
    /// The tenant it is limited to, if any.
    pub tenant: Option<String>,
    /// The page of stuck claims shown (from 0), of `pages`.
    pub page: u32,
    pub pages: u32,
    /// The rank of the first stuck claim shown (from 1).
    pub first: u32,
    /// Whether anything needs operations (`Figures::needs_operations`).
    pub needs_operations: bool,
    #[serde(flatten)]
    pub pipeline: crate::domain::pipeline::Pipeline,
}

/// A notification waiting in the outbox (`queue` pending) or given up on
/// (`dead`), as `orglink outbox` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub id: crate::domain::outbox::OutboxId,
    pub queue: crate::domain::outbox::Queue,
    /// The code of the event it tells of.
    pub event: String,
    /// The account it is about; none for a tenant's own event.
    pub account_id: Option<AccountId>,
    pub tenant: String,
    /// Who it is for: `tenant`, `ops` or `both`.
    pub audience: &'static str,
    #[serde(with = "crate::domain::instant")]
    pub queued_at: time::OffsetDateTime,
    /// Failed delivery attempts.
    pub attempts: u32,
    #[serde(with = "crate::domain::instant::option")]
    pub next_attempt_at: Option<time::OffsetDateTime>,
    pub last_error: Option<String>,
    /// A pending one: what stops it as things are (`no_channel`,
    /// `tenant_suspended`).
    pub blocked: Option<crate::domain::outbox::Blocked>,
    /// A dead letter: when it was given up on, and why (`no_channel`,
    /// `channel_not_found`, `missing_access`, `rejected`).
    #[serde(with = "crate::domain::instant::option")]
    pub dead_at: Option<time::OffsetDateTime>,
    pub reason: Option<String>,
}

/// The outbox, or the dead letters, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxView {
    pub dead: bool,
    pub items: Vec<OutboxEntry>,
}

/// Dead letters put back in the outbox.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxReplayedView {
    pub replayed: Vec<crate::domain::outbox::OutboxId>,
    /// `--all` was asked for.
    pub all: bool,
}

/// A notification dropped, and where the drop is recorded.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxDroppedView {
    pub item: OutboxEntry,
    pub reason: String,
    /// `account` (its history) or `tenant` (the tenant's audit log).
    pub recorded_in: &'static str,
}

/// Every message orglink can show. Adding one means adding its template in
/// both languages (checked by tests) and a line in each match below.
#[derive(Debug, Clone)]
pub enum Message {
    Registered(AccountView),
    MemberAccountWarning(AccountView),
    Instructions(InstructionsView),
    CloudFormation(InstructionsView),
    AwsCli(InstructionsView),
    /// A Terraform configuration of the role.
    Terraform(InstructionsView),
    /// The quick-create link alone (`instructions --format link`).
    LaunchLink(InstructionsView),
    Status(AccountView),
    List(ListView),
    /// The same list as CSV.
    ListCsv(ListView),
    /// The accounts of a file, registered (or judged, in a dry run).
    Imported(ImportView),
    /// Their external IDs as CSV, to attach to the summary.
    ImportedIds(ImportView),
    /// Open claims as CSV, with what each customer needs.
    Export(ExportView),
    ExternalIdRotated(AccountView),
    SupportPlanSet(AccountView),
    PriceBookSet(AccountView),
    TenantSettings(TenantSettingsView),
    /// The instructions stay available; how to get them again.
    Later(AccountView),
    /// "Verified" or "No Access", check by check.
    Verification(Box<VerificationView>),
    /// The invitation went out (or an open one was adopted).
    Invited(Box<InvitedView>),
    /// The organization's daily quota is used up: queued.
    InvitationQueued(AccountView),
    /// AWS refused to send the invitation, and why.
    InviteRefused(InviteRefusedView),
    /// A ticket: its link, or that it waits for Freshdesk.
    Ticket(TicketView),
    /// A registration removed, moved or edited.
    Corrected(CorrectionView),
    /// An account's audit log.
    History(HistoryView),
    /// An event a channel hears of (`notifications/<event>.md`).
    Notification(Box<NotificationView>),
    /// Operations approved, denied, suspended or resumed a tenant.
    TenantDecided(TenantDecisionView),
    /// Every tenant with its status.
    TenantList(TenantListView),
    /// Operations' pipeline.
    Pipeline(PipelineView),
    /// The same figures as CSV, a row per tenant and one for all.
    PipelineCsv(PipelineView),
    /// Notifications waiting, or given up on.
    Outbox(OutboxView),
    OutboxReplayed(OutboxReplayedView),
    OutboxDropped(OutboxDroppedView),
    /// A backup written.
    BackupWritten(super::BackupView),
    /// A store made again from a backup.
    Restored(super::BackupView),
    /// The store's check: what it read, and each inconsistency found.
    Checked(crate::store::check::Report),
    Error(UserError),
    /// Our fault, not the user's: a short apology.
    Internal,
}

/// A rendered message: text, or a file to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// Set for documents (templates, scripts) better sent as a file.
    pub filename: Option<String>,
}

impl Message {
    /// The template that renders this message.
    pub fn template(&self) -> Cow<'static, str> {
        let name = match self {
            Self::Registered(_) => "registered.md",
            Self::MemberAccountWarning(_) => "member_account_warning.md",
            Self::Instructions(_) => "instructions.md",
            Self::CloudFormation(_) => "cloudformation.yaml",
            Self::AwsCli(_) => "aws_cli.sh",
            Self::Terraform(_) => "terraform.tf",
            Self::LaunchLink(_) => "launch_link.txt",
            Self::Status(_) => "status.md",
            Self::List(_) => "list.md",
            Self::ListCsv(_) => "list.csv",
            Self::Imported(_) => "imported.md",
            Self::ImportedIds(_) => "imported_ids.csv",
            Self::Export(_) => "export.csv",
            Self::ExternalIdRotated(_) => "external_id_rotated.md",
            Self::SupportPlanSet(_) => "support_plan_set.md",
            Self::PriceBookSet(_) => "price_book_set.md",
            Self::TenantSettings(_) => "tenant_settings.md",
            Self::Later(_) => "later.md",
            Self::Verification(_) => "verification.md",
            Self::Invited(_) => "invited.md",
            Self::InvitationQueued(_) => "invitation_queued.md",
            Self::InviteRefused(_) => "invite_refused.md",
            Self::Ticket(_) => "ticket.md",
            Self::Corrected(_) => "corrected.md",
            Self::History(_) => "history.md",
            Self::TenantDecided(_) => "tenant_decided.md",
            Self::TenantList(_) => "tenant_list.md",
            Self::Pipeline(_) => "pipeline.md",
            Self::PipelineCsv(_) => "pipeline.csv",
            Self::Outbox(_) => "outbox.md",
            Self::OutboxReplayed(_) => "outbox_replayed.md",
            Self::OutboxDropped(_) => "outbox_dropped.md",
            Self::BackupWritten(_) => "backup_written.md",
            Self::Restored(_) => "restored.md",
            Self::Checked(_) => "checked.md",
            Self::Error(e) => match e {
                UserError::Invalid(_) => "errors/invalid_input.md",
                UserError::AccountNotFound { .. } => "errors/account_not_found.md",
                UserError::AlreadyRegistered { .. } => "errors/already_registered.md",
                UserError::LinkedElsewhere { .. } => "errors/linked_elsewhere.md",
                UserError::TooManyClaims { .. } => "errors/too_many_claims.md",
                UserError::AmbiguousClaim { .. } => "errors/ambiguous_claim.md",
                UserError::NoClaimTrusted { .. } => "errors/no_claim_trusted.md",
                UserError::TransferTargetHasClaim { .. } => "errors/transfer_target_has_claim.md",
                UserError::NothingToChange { .. } => "errors/nothing_to_change.md",
                UserError::ManagementAccount { .. } => "errors/management_account.md",
                UserError::NotNow { .. } => "errors/not_now.md",
                UserError::ArnAccountMismatch { .. } => "errors/arn_account_mismatch.md",
                UserError::PartitionMismatch { .. } => "errors/partition_mismatch.md",
                UserError::CouldNotAskAws { .. } => "errors/could_not_ask_aws.md",
                UserError::NotAllowed { .. } => "errors/not_allowed.md",
                UserError::DirectMessage => "errors/direct_message.md",
                UserError::UnknownInteraction => "errors/unknown_interaction.md",
                UserError::NoRoleRecorded { .. } => "errors/no_role_recorded.md",
                UserError::CannotInvite { .. } => "errors/cannot_invite.md",
                UserError::TenantPending => "errors/tenant_pending.md",
                UserError::TenantDenied => "errors/tenant_denied.md",
                UserError::TenantSuspended => "errors/tenant_suspended.md",
                UserError::TenantDecision { .. } => "errors/tenant_decision.md",
                UserError::OperationsServer { .. } => "errors/operations_server.md",
                UserError::QuotaExceeded { .. } => "errors/quota_exceeded.md",
                UserError::ImportRejected { .. } => "errors/import_rejected.md",
                UserError::OutboxItemNotFound { .. } => "errors/outbox_item_not_found.md",
                UserError::NotADeadLetter { .. } => "errors/not_a_dead_letter.md",
                UserError::BackupUnusable { .. } => "errors/backup_unusable.md",
                UserError::RestoreNotEmpty { .. } => "errors/restore_not_empty.md",
                UserError::BackupsOff => "errors/backups_off.md",
                UserError::NoTemplateUrl => "errors/no_template_url.md",
                UserError::AttachmentTooLarge { .. } => "errors/attachment_too_large.md",
                UserError::AttachmentNotFromChat => "errors/attachment_not_from_chat.md",
                UserError::AttachmentUnavailable { .. } => "errors/attachment_unavailable.md",
                UserError::ImportTooLarge { .. } => "errors/import_too_large.md",
                UserError::ImportOverQuota { .. } => "errors/import_over_quota.md",
            },
            Self::Internal => "errors/internal.md",
            Self::Notification(v) => return Cow::Owned(format!("notifications/{}.md", v.event.code())),
        };
        Cow::Borrowed(name)
    }

    /// The file name a document is attached under.
    pub fn filename(&self) -> Option<String> {
        match self {
            Self::CloudFormation(v) => Some(format!("orglink-role-{}.yaml", v.account_id)),
            Self::AwsCli(v) => Some(format!("orglink-role-{}.sh", v.account_id)),
            Self::Terraform(v) => Some(format!("orglink-role-{}.tf", v.account_id)),
            Self::Export(_) | Self::ListCsv(_) => Some("orglink-accounts.csv".to_owned()),
            Self::PipelineCsv(_) => Some("orglink-pipeline.csv".to_owned()),
            Self::ImportedIds(_) => Some(IMPORTED_IDS_FILE.to_owned()),
            _ => None,
        }
    }

    /// The values the template reads. A message that does not show the
    /// external ID is rendered from a context without it, wherever it sat
    /// (the account of a notification, of a status...): a template override
    /// cannot publish what it is not given.
    /// Built straight into the template engine's values: one conversion,
    /// not one to JSON and another from it.
    pub fn context(&self, surface: Surface) -> minijinja::Value {
        let context = self.full_context();
        match self.external_ids(surface) {
            ExternalIds::Shown => context,
            ExternalIds::Removed => without_external_ids(context),
            ExternalIds::Absent => {
                debug_assert!(!holds_external_id(&context), "{} has a place for an external ID", self.template());
                context
            }
        }
    }

    fn full_context(&self) -> minijinja::Value {
        match self {
            Self::Registered(v)
            | Self::MemberAccountWarning(v)
            | Self::Status(v)
            | Self::ExternalIdRotated(v)
            | Self::SupportPlanSet(v)
            | Self::PriceBookSet(v)
            | Self::Later(v) => to_value(v),
            Self::TenantSettings(v) => to_value(v),
            Self::Verification(v) => to_value(v),
            Self::Invited(v) => to_value(v),
            Self::InvitationQueued(v) => to_value(v),
            Self::InviteRefused(v) => to_value(v),
            Self::Ticket(v) => to_value(v),
            Self::Corrected(v) => to_value(v),
            Self::History(v) => to_value(v),
            Self::Notification(v) => to_value(v),
            Self::TenantDecided(v) => to_value(v),
            Self::TenantList(v) => to_value(v),
            Self::Pipeline(v) | Self::PipelineCsv(v) => to_value(v),
            Self::Outbox(v) => to_value(v),
            Self::OutboxReplayed(v) => to_value(v),
            Self::OutboxDropped(v) => to_value(v),
            Self::BackupWritten(v) | Self::Restored(v) => to_value(v),
            Self::Checked(v) => to_value(v),
            Self::Instructions(v)
            | Self::CloudFormation(v)
            | Self::AwsCli(v)
            | Self::Terraform(v)
            | Self::LaunchLink(v) => to_value(v),
            Self::List(v) | Self::ListCsv(v) => to_value(v),
            Self::Imported(v) | Self::ImportedIds(v) => to_value(v),
            Self::Export(v) => to_value(v),
            Self::Internal => minijinja::Value::from_iter(std::iter::empty::<(String, minijinja::Value)>()),
            Self::Error(e) => minijinja::Value::from_serialize(error_context(e)),
        }
    }

    /// Whether the rendered text shows the account's external ID: an
    /// account's details show it to the operator at the terminal only.
    pub fn reveals_external_id(&self, surface: Surface) -> bool {
        self.external_ids(surface) == ExternalIds::Shown
    }

    /// What the context does with external IDs: keeps them where they are
    /// shown, removes them where they are not, and does not look for them
    /// in a view that has no place for one (a list, tenants, the pipeline,
    /// a backup or a check): checked in debug builds, so the tests catch a
    /// view that gains one.
    fn external_ids(&self, surface: Surface) -> ExternalIds {
        match self {
            Self::Status(_) if surface == Surface::Terminal => ExternalIds::Shown,
            Self::Registered(_)
            | Self::Instructions(_)
            | Self::CloudFormation(_)
            | Self::AwsCli(_)
            | Self::Terraform(_)
            | Self::LaunchLink(_)
            | Self::ExternalIdRotated(_)
            | Self::Imported(_)
            | Self::ImportedIds(_)
            | Self::Export(_)
            | Self::Verification(_) => ExternalIds::Shown,
            Self::Status(_)
            | Self::MemberAccountWarning(_)
            | Self::SupportPlanSet(_)
            | Self::PriceBookSet(_)
            | Self::Later(_)
            | Self::Invited(_)
            | Self::InvitationQueued(_)
            | Self::InviteRefused(_)
            | Self::Ticket(_)
            | Self::Corrected(_)
            | Self::History(_)
            | Self::Notification(_)
            | Self::Outbox(_)
            | Self::OutboxReplayed(_)
            | Self::OutboxDropped(_)
            | Self::Error(_) => ExternalIds::Removed,
            Self::List(_)
            | Self::ListCsv(_)
            | Self::TenantSettings(_)
            | Self::TenantDecided(_)
            | Self::TenantList(_)
            | Self::Pipeline(_)
            | Self::PipelineCsv(_)
            | Self::BackupWritten(_)
            | Self::Restored(_)
            | Self::Checked(_)
            | Self::Internal => ExternalIds::Absent,
        }
    }

    /// Whether only the person who asked may see it, when shown in a chat
    /// channel: it shows the external ID, or an account's details (root
    /// e-mail, role ARN, customer, ticket link, history), which are the
    /// tenant's business and not the channel's. Public: what a server's
    /// settings are, and operations' decisions on tenants (their notice is
    /// updated in place for operations to see).
    pub fn is_private(&self) -> bool {
        match self {
            Self::Registered(_)
            | Self::Instructions(_)
            | Self::CloudFormation(_)
            | Self::AwsCli(_)
            | Self::Terraform(_)
            | Self::LaunchLink(_)
            | Self::ExternalIdRotated(_)
            | Self::Verification(_)
            | Self::MemberAccountWarning(_)
            | Self::Status(_)
            | Self::List(_)
            | Self::ListCsv(_)
            | Self::Imported(_)
            | Self::ImportedIds(_)
            | Self::Export(_)
            | Self::SupportPlanSet(_)
            | Self::PriceBookSet(_)
            | Self::Later(_)
            | Self::Invited(_)
            | Self::InvitationQueued(_)
            | Self::InviteRefused(_)
            | Self::Ticket(_)
            | Self::Corrected(_)
            | Self::History(_)
            | Self::Pipeline(_)
            | Self::PipelineCsv(_)
            | Self::Outbox(_)
            | Self::OutboxReplayed(_)
            | Self::OutboxDropped(_)
            | Self::BackupWritten(_)
            | Self::Restored(_)
            | Self::Checked(_)
            | Self::Error(_)
            | Self::Internal => true,
            Self::TenantSettings(_) | Self::Notification(_) | Self::TenantDecided(_) | Self::TenantList(_) => false,
        }
    }

    pub fn render(&self, templates: &Templates, lang: Lang) -> Result<Rendered, minijinja::Error> {
        Ok(Rendered {
            text: templates.render(lang, &self.template(), self.context(templates.surface()))?,
            filename: self.filename(),
        })
    }
}

fn error_context(error: &UserError) -> Value {
    match error {
        UserError::Invalid(e) => invalid_context(e),
        UserError::ImportRejected { problems } => {
            let problems: Vec<Value> = problems.iter().map(problem_context).collect();
            json!({ "problems": problems })
        }
        UserError::AccountNotFound { account }
        | UserError::AlreadyRegistered { account }
        | UserError::LinkedElsewhere { account }
        | UserError::ManagementAccount { account } => json!({ "account_id": account }),
        UserError::TooManyClaims { account, max } => json!({ "account_id": account, "max": max }),
        UserError::TransferTargetHasClaim { account, to } => json!({ "account_id": account, "to": to }),
        UserError::NothingToChange { account } => json!({ "account_id": account }),
        UserError::AmbiguousClaim { account, claims } | UserError::NoClaimTrusted { account, claims } => {
            json!({ "account_id": account, "claims": claims })
        }
        UserError::NotNow { account, state, action } => {
            json!({ "account_id": account, "state": state, "action": action })
        }
        UserError::ArnAccountMismatch { account, arn_account } => {
            json!({ "account_id": account, "arn_account_id": arn_account })
        }
        UserError::NotAllowed { permission, role } => json!({ "permission": permission, "role": role }),
        UserError::DirectMessage | UserError::UnknownInteraction => json!({}),
        UserError::NoRoleRecorded { account } => json!({ "account_id": account }),
        UserError::CannotInvite { account, state } => json!({ "account_id": account, "state": state }),
        UserError::TenantPending | UserError::TenantDenied | UserError::TenantSuspended => json!({}),
        UserError::TenantDecision { tenant, from, decision } => {
            json!({ "tenant": tenant, "state": from, "decision": decision })
        }
        UserError::OperationsServer { tenant } => json!({ "tenant": tenant }),
        UserError::QuotaExceeded { quota, limit, resets_at } => {
            // RFC 3339, as every instant the templates read.
            let resets_at = resets_at.map(|at| at.format(&time::format_description::well_known::Rfc3339).ok());
            json!({ "quota": quota, "limit": limit, "resets_at": resets_at.flatten() })
        }
        UserError::PartitionMismatch { partition, arn_partition } => {
            json!({ "partition": partition, "arn_partition": arn_partition })
        }
        UserError::CouldNotAskAws { cause } => json!({ "cause": cause }),
        UserError::OutboxItemNotFound { id } | UserError::NotADeadLetter { id } => json!({ "id": id }),
        UserError::BackupUnusable { file, problem } => json!({ "file": file, "problem": problem }),
        UserError::RestoreNotEmpty { data_dir } => json!({ "data_dir": data_dir }),
        UserError::BackupsOff | UserError::AttachmentNotFromChat | UserError::NoTemplateUrl => json!({}),
        UserError::AttachmentTooLarge { size, max } => json!({ "size": size, "max": max }),
        UserError::AttachmentUnavailable { cause } => {
            let status = match cause {
                super::error::Unfetched::Status(status) => Some(*status),
                _ => None,
            };
            json!({ "cause": cause.code(), "status": status })
        }
        UserError::ImportTooLarge { rows, max } => json!({ "rows": rows, "max": max }),
        UserError::ImportOverQuota { rows, open, limit } => {
            // How many more fit now, for the message.
            let room = (*limit as usize).saturating_sub(*open);
            json!({ "rows": rows, "open": open, "limit": limit, "room": room })
        }
    }
}

/// A value a parser refused: which field, what was typed, and why.
fn invalid_context(e: &ParseError) -> Value {
    let none = None::<&TextProblem>;
    let (field, input, problem, text) = match e {
        ParseError::AccountId { input } => ("account_id", input, None, none),
        ParseError::Email { input } => ("email", input, None, none),
        ParseError::RoleArn { input, problem } => ("role_arn", input, Some(problem.code()), none),
        ParseError::ExternalId { input } => ("external_id", input, None, none),
        ParseError::ExternalIdPrefix { input } => ("external_id_prefix", input, None, none),
        ParseError::RoleName { input } => ("role_name", input, None, none),
        ParseError::TenantId { input } => ("tenant", input, None, none),
        ParseError::CustomerName { input, problem } => ("customer", input, None, Some(problem)),
        ParseError::PriceBookName { input, problem } => ("price_book", input, None, Some(problem)),
        ParseError::SupportTier { input } => ("support_tier", input, None, none),
        ParseError::SupportPlanGroup { input } => ("support_plan_group", input, None, none),
        ParseError::AccountKind { input } => ("account_kind", input, None, none),
        ParseError::Lang { input } => ("language", input, None, none),
        ParseError::Format { input } => ("format", input, None, none),
        ParseError::Bucket { input } => ("bucket", input, None, none),
        ParseError::ObjectKey { input } => ("object_key", input, None, none),
        ParseError::Region { input } => ("region", input, None, none),
        ParseError::ChatId { input } => ("chat_id", input, None, none),
        ParseError::RoleDescription { input, problem } => ("role_description", input, None, Some(problem)),
        ParseError::HandshakeId { input } => ("handshake_id", input, None, none),
        ParseError::ImportFile { input } => ("import_file", input, None, none),
        ParseError::LinkState { input } => ("state", input, None, none),
        ParseError::InvitationNote { input, problem } => ("invitation_note", input, None, Some(problem)),
        ParseError::TicketReason { input, problem } => ("ticket_reason", input, None, Some(problem)),
        ParseError::CorrectionReason { input, problem } => ("reason", input, None, Some(problem)),
        ParseError::OutboxId { input } => ("outbox_id", input, None, none),
    };
    // `text_problem`: which character, where, or the length, for
    // free text.
    json!({ "field": field, "input": input, "problem": problem, "text_problem": text })
}

/// A row of an import that cannot be registered: its line and why.
fn problem_context(p: &RowProblem) -> Value {
    let account = |a: &AccountId| Some(a.to_string());
    let (account_id, first_line, column, expected, found, max, invalid) = match &p.error {
        RowError::Invalid(e) => (None, None, None, None, None, None, Some(invalid_context(e))),
        RowError::Header { column } => (None, None, Some(column.clone()), None, None, None, None),
        RowError::Fields { expected, found } => (None, None, None, Some(*expected), Some(*found), None, None),
        RowError::Unclosed | RowError::Empty => (None, None, None, None, None, None, None),
        RowError::Duplicate { account: a, first_line } => (account(a), Some(*first_line), None, None, None, None, None),
        RowError::TooManyClaims { account: a, max } => (account(a), None, None, None, None, Some(*max), None),
        RowError::AlreadyRegistered { account: a }
        | RowError::LinkedElsewhere { account: a }
        | RowError::ManagementAccount { account: a } => (account(a), None, None, None, None, None, None),
    };
    json!({
        "line": p.line, "kind": p.error.code(), "account_id": account_id, "first_line": first_line,
        "column": column, "expected": expected, "found": found, "max": max, "invalid": invalid,
    })
}

const EXTERNAL_ID: &str = "external_id";

/// See [`Message::external_ids`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExternalIds {
    Shown,
    Removed,
    Absent,
}

/// `value` without any `external_id`, at any depth. Only the maps and
/// lists on the way to one are made again; most contexts hold none and
/// are given back as they are.
fn without_external_ids(value: minijinja::Value) -> minijinja::Value {
    stripped(&value).unwrap_or(value)
}

/// `value` without its external IDs, or none when it holds none: one walk.
fn stripped(value: &minijinja::Value) -> Option<minijinja::Value> {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::Map => {
            let pairs: Vec<_> = value.as_object()?.try_iter_pairs()?.collect();
            let mut changed = false;
            let mut kept = Vec::with_capacity(pairs.len());
            for (key, v) in pairs {
                if key.as_str() == Some(EXTERNAL_ID) {
                    changed = true;
                    continue;
                }
                match stripped(&v) {
                    Some(v) => {
                        changed = true;
                        kept.push((key, v));
                    }
                    None => kept.push((key, v)),
                }
            }
            changed.then(|| kept.into_iter().collect())
        }
        ValueKind::Seq => {
            let items: Vec<_> = value.try_iter().ok()?.collect();
            let stripped: Vec<_> = items.iter().map(stripped).collect();
            stripped
                .iter()
                .any(Option::is_some)
                .then(|| items.into_iter().zip(stripped).map(|(item, s)| s.unwrap_or(item)).collect::<Vec<_>>().into())
        }
        _ => None,
    }
}

fn holds_external_id(value: &minijinja::Value) -> bool {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::Map => value
            .as_object()
            .and_then(|map| map.try_iter_pairs())
            .is_some_and(|mut pairs| pairs.any(|(key, v)| key.as_str() == Some(EXTERNAL_ID) || holds_external_id(&v))),
        ValueKind::Seq => value.try_iter().is_ok_and(|mut items| items.any(|v| holds_external_id(&v))),
        _ => false,
    }
}

fn to_value(view: &impl Serialize) -> minijinja::Value {
    minijinja::Value::from_serialize(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids_are_removed_at_any_depth_and_nothing_else() {
        let with = minijinja::Value::from_serialize(json!({
            "external_id": "CA1",
            "account": { "id": "123456789012", "external_id": "CA2", "tags": ["a"] },
            "claims": [{ "external_id": "CA3", "state": "linked" }, { "state": "registered" }],
            "note": "external_id",
        }));
        let without = without_external_ids(with);
        assert!(!holds_external_id(&without));
        assert_eq!(
            serde_json::to_value(&without).unwrap(),
            json!({
                "account": { "id": "123456789012", "tags": ["a"] },
                "claims": [{ "state": "linked" }, { "state": "registered" }],
                "note": "external_id",
            })
        );
        let none = minijinja::Value::from_serialize(json!({ "a": [1, { "b": "c" }] }));
        assert!(stripped(&none).is_none(), "a context without one is given back as it is");
    }
}

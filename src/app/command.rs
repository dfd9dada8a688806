//! The commands every front end builds: a typed enum, with what each needs
//! and how it is named, in exhaustive matches.

use super::Permission;
use crate::domain::import::ImportRows;
use crate::domain::outbox::OutboxId;
use crate::domain::{
    AccountId, ChatId, CorrectionReason, Edit, InvitationNote, Lang, ListFilter, NewAccount, ParseError,
    PriceBookChoice, RoleArn, RoleDescription, SupportPlanGroup, TenantDecision, TenantId, TicketReason,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstructionsFormat {
    /// Step-by-step text for the AWS console.
    #[default]
    Text,
    /// A CloudFormation template that creates the role.
    CloudFormation,
    /// AWS CLI commands that create the role.
    Cli,
    /// A Terraform configuration that creates the role.
    Terraform,
    /// The CloudFormation quick-create link alone (with
    /// `instructions.template_url`).
    Link,
}

/// How a list is shown: the message's text, or CSV for a spreadsheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListFormat {
    #[default]
    Text,
    Csv,
}

/// How an import answers with the external IDs it drew.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportAnswer {
    /// A table in the message, a row per account (the command line).
    #[default]
    Table,
    /// A short summary, and the external IDs in a CSV file attached to it
    /// (a chat, where a thousand rows do not fit in a message).
    File,
}

/// Which dead letters go back to the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    One(OutboxId),
    All,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    AddAccount(NewAccount),
    /// Register the rows of a file for one tenant: all of them, or none
    /// when any row is refused. `dry_run` judges them and writes nothing.
    ImportAccounts {
        tenant: TenantId,
        rows: ImportRows,
        dry_run: bool,
        answer: ImportAnswer,
    },
    ListAccounts {
        tenant: Option<TenantId>,
        /// Which claims (open ones; of some states; stale ones).
        filter: ListFilter,
        format: ListFormat,
    },
    /// What a reseller sends each customer: every open claim (of one
    /// tenant, or all for operations) with its external ID and the role
    /// to create.
    ExportAccounts {
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
    /// A fresh window for a claim to get its role verified (a lapsed one
    /// is open again).
    Revive {
        account: AccountId,
    },
    /// Operations: remove a claim (it stays, closed, for the record).
    RemoveAccount {
        account: AccountId,
        reason: CorrectionReason,
        /// Even with an invitation out or the account linked.
        force: bool,
    },
    /// Operations: move a claim to another tenant.
    TransferAccount {
        account: AccountId,
        to: TenantId,
        reason: CorrectionReason,
    },
    /// Correct a claim's details (its tenant before the invitation,
    /// operations at any time).
    EditAccount {
        account: AccountId,
        edit: Edit,
        reason: Option<CorrectionReason>,
    },
    /// An account's audit log: a tenant's own entries, or all for
    /// operations.
    History {
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
    /// Operations: approve, deny, suspend or resume a tenant.
    DecideTenant {
        tenant: TenantId,
        decision: TenantDecision,
    },
    /// Operations: every tenant with its status.
    ListTenants,
    /// Operations: the pipeline, of one tenant or all: each state's
    /// count and times, who must act, what needs attention, what waits.
    /// `page` (from Discord's buttons) shows the overall figures and that
    /// page of the claims stuck longest, ten to a page.
    Pipeline {
        tenant: Option<TenantId>,
        format: ListFormat,
        page: Option<u32>,
    },
    /// Operations: the notifications waiting to go out, or (`dead`) those
    /// that could not be delivered, with why.
    ListOutbox {
        dead: bool,
    },
    /// Operations: dead letters back to the outbox, as new.
    ReplayOutbox {
        which: Replay,
    },
    /// Operations: a waiting or undelivered notification removed, audited.
    DropOutbox {
        id: OutboxId,
        reason: CorrectionReason,
    },
    /// A backup of the whole store, written to this file.
    Backup {
        file: std::path::PathBuf,
    },
    /// The store checked against itself.
    Check,
}

impl Command {
    /// A stable name for logs and the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AddAccount(_) => "account_add",
            Self::ImportAccounts { .. } => "account_import",
            Self::ListAccounts { .. } => "account_list",
            Self::ExportAccounts { .. } => "account_export",
            Self::ShowAccount { .. } => "account_show",
            Self::RotateExternalId { .. } => "account_rotate_external_id",
            Self::Instructions { .. } => "instructions",
            Self::SetSupportPlan { .. } => "support_plan",
            Self::SetPriceBook { .. } => "price_book",
            Self::Configure { .. } => "configure",
            Self::Later { .. } => "later",
            Self::Revive { .. } => "account_revive",
            Self::RemoveAccount { .. } => "account_remove",
            Self::TransferAccount { .. } => "account_transfer",
            Self::EditAccount { .. } => "account_edit",
            Self::History { .. } => "account_history",
            Self::VerifyRole { .. } => "verify_role",
            Self::Invite { .. } => "invite",
            Self::OpenTicket { .. } => "ticket",
            Self::DecideTenant { decision, .. } => match decision {
                TenantDecision::Approve => "tenant_approve",
                TenantDecision::Deny => "tenant_deny",
                TenantDecision::Suspend => "tenant_suspend",
                TenantDecision::Resume => "tenant_resume",
            },
            Self::ListTenants => "tenant_list",
            Self::Pipeline { .. } => "pipeline",
            Self::ListOutbox { .. } => "outbox_list",
            Self::ReplayOutbox { .. } => "outbox_replay",
            Self::DropOutbox { .. } => "outbox_drop",
            Self::Backup { .. } => "backup",
            Self::Check => "check",
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
            | Self::Revive { account }
            | Self::RemoveAccount { account, .. }
            | Self::TransferAccount { account, .. }
            | Self::EditAccount { account, .. }
            | Self::History { account }
            | Self::VerifyRole { account, .. }
            | Self::Invite { account, .. }
            | Self::OpenTicket { account, .. } => Some(*account),
            Self::ImportAccounts { .. }
            | Self::ListAccounts { .. }
            | Self::ExportAccounts { .. }
            | Self::Configure { .. }
            | Self::DecideTenant { .. }
            | Self::ListTenants
            | Self::Pipeline { .. }
            | Self::ListOutbox { .. }
            | Self::ReplayOutbox { .. }
            | Self::DropOutbox { .. }
            | Self::Backup { .. }
            | Self::Check => None,
        }
    }

    /// Whether it waits on AWS or Freshdesk: Discord must be answered
    /// within 3 seconds, so such commands are deferred and followed up.
    pub fn is_slow(&self) -> bool {
        match self {
            Self::VerifyRole { .. } | Self::Invite { .. } | Self::OpenTicket { .. } => true,
            Self::AddAccount(_)
            | Self::ImportAccounts { .. }
            | Self::ListAccounts { .. }
            | Self::ExportAccounts { .. }
            | Self::ShowAccount { .. }
            | Self::RotateExternalId { .. }
            | Self::Instructions { .. }
            | Self::SetSupportPlan { .. }
            | Self::SetPriceBook { .. }
            | Self::Configure { .. }
            | Self::Later { .. }
            | Self::Revive { .. }
            | Self::RemoveAccount { .. }
            | Self::TransferAccount { .. }
            | Self::EditAccount { .. }
            | Self::History { .. }
            | Self::DecideTenant { .. }
            | Self::ListTenants
            | Self::Pipeline { .. }
            | Self::ListOutbox { .. }
            | Self::ReplayOutbox { .. }
            | Self::DropOutbox { .. }
            | Self::Backup { .. }
            | Self::Check => false,
        }
    }

    /// Whether it only reads one account or one tenant's accounts from the
    /// store (memory, or a few pages from disk), writing nothing and asking
    /// nobody: a transport may answer it on the thread that received it,
    /// without a hop to a blocking thread. (A server orglink has never seen
    /// is recorded at the door, once: that one write is the exception.)
    pub fn is_quick_read(&self) -> bool {
        match self {
            Self::ShowAccount { .. } | Self::History { .. } => true,
            // A tenant's list; every account of every tenant is not quick.
            Self::ListAccounts { tenant, .. } => tenant.is_some(),
            // Showing the instructions may renew the claim's window.
            Self::Instructions { .. }
            | Self::AddAccount(_)
            | Self::ImportAccounts { .. }
            | Self::ExportAccounts { .. }
            | Self::RotateExternalId { .. }
            | Self::SetSupportPlan { .. }
            | Self::SetPriceBook { .. }
            | Self::Configure { .. }
            | Self::Later { .. }
            | Self::Revive { .. }
            | Self::RemoveAccount { .. }
            | Self::TransferAccount { .. }
            | Self::EditAccount { .. }
            | Self::VerifyRole { .. }
            | Self::Invite { .. }
            | Self::OpenTicket { .. }
            | Self::DecideTenant { .. }
            | Self::ListTenants
            | Self::Pipeline { .. }
            | Self::ListOutbox { .. }
            | Self::ReplayOutbox { .. }
            | Self::DropOutbox { .. }
            | Self::Backup { .. }
            | Self::Check => false,
        }
    }

    /// Whether it only shows what is recorded. Such a command has nothing
    /// to show without a store, so the CLI opens an existing one only and
    /// never leaves a new, empty store where a mistyped path pointed.
    /// (Showing the instructions may renew an existing claim's window; it
    /// never records a claim of its own.)
    pub fn reads_only(&self) -> bool {
        match self {
            Self::ListAccounts { .. }
            | Self::ExportAccounts { .. }
            | Self::ShowAccount { .. }
            | Self::Instructions { .. }
            | Self::History { .. }
            | Self::ListTenants
            | Self::Pipeline { .. }
            | Self::ListOutbox { .. }
            | Self::Backup { .. }
            | Self::Check => true,
            // A dry run judges the file against what is recorded.
            Self::ImportAccounts { dry_run, .. } => *dry_run,
            Self::AddAccount(_)
            | Self::RotateExternalId { .. }
            | Self::SetSupportPlan { .. }
            | Self::SetPriceBook { .. }
            | Self::Configure { .. }
            | Self::Later { .. }
            | Self::Revive { .. }
            | Self::RemoveAccount { .. }
            | Self::TransferAccount { .. }
            | Self::EditAccount { .. }
            | Self::VerifyRole { .. }
            | Self::Invite { .. }
            | Self::OpenTicket { .. }
            | Self::DecideTenant { .. }
            | Self::ReplayOutbox { .. }
            | Self::DropOutbox { .. } => false,
        }
    }

    /// What the actor needs to run it.
    pub fn permission(&self) -> Permission {
        match self {
            Self::AddAccount(_)
            | Self::ListAccounts { .. }
            | Self::ExportAccounts { .. }
            | Self::ShowAccount { .. }
            | Self::RotateExternalId { .. }
            | Self::Instructions { .. }
            | Self::SetSupportPlan { .. }
            | Self::SetPriceBook { .. }
            | Self::Later { .. }
            | Self::Revive { .. }
            | Self::EditAccount { .. }
            | Self::History { .. }
            | Self::VerifyRole { .. }
            | Self::OpenTicket { .. } => Permission::AccountRole,
            // A tenant imports for itself (`/link-accounts`), as it
            // registers one account: its quota of open claims counts the
            // whole file.
            Self::ImportAccounts { .. } => Permission::AccountRole,
            Self::RemoveAccount { .. } | Self::TransferAccount { .. } => Permission::Ops,
            Self::Configure { .. } => Permission::ManageServer,
            Self::Invite { .. } | Self::DecideTenant { .. } | Self::ListTenants | Self::Pipeline { .. } => {
                Permission::Ops
            }
            Self::ListOutbox { .. } | Self::ReplayOutbox { .. } | Self::DropOutbox { .. } => Permission::Ops,
            Self::Backup { .. } | Self::Check => Permission::Ops,
        }
    }
}

impl std::str::FromStr for InstructionsFormat {
    type Err = ParseError;

    /// `text`, `cloudformation`, `cli`, `terraform` or `link`, as the front
    /// ends offer them.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match crate::domain::trim_pasted(input).to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "cloudformation" => Ok(Self::CloudFormation),
            "cli" => Ok(Self::Cli),
            "terraform" => Ok(Self::Terraform),
            "link" => Ok(Self::Link),
            _ => Err(ParseError::Format { input: crate::domain::quote_input(input) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_of_one_account_or_one_tenant_are_quick() {
        let account: crate::domain::AccountId = "123456789012".parse().unwrap();
        let list = |tenant: Option<&str>| Command::ListAccounts {
            tenant: tenant.map(|t| t.parse().unwrap()),
            filter: Default::default(),
            format: Default::default(),
        };
        assert!(Command::ShowAccount { account }.is_quick_read());
        assert!(list(Some("900000000000000001")).is_quick_read());
        assert!(!list(None).is_quick_read(), "every tenant's accounts");
        assert!(!Command::Pipeline { tenant: None, format: Default::default(), page: None }.is_quick_read());
        assert!(!Command::Check.is_quick_read());
    }

    #[test]
    fn formats_parse_from_their_names_only() {
        assert_eq!("text".parse(), Ok(InstructionsFormat::Text));
        assert_eq!(" CloudFormation ".parse(), Ok(InstructionsFormat::CloudFormation));
        assert_eq!("cli".parse(), Ok(InstructionsFormat::Cli));
        assert_eq!("link".parse(), Ok(InstructionsFormat::Link));
        assert_eq!("Terraform".parse(), Ok(InstructionsFormat::Terraform));
        for bad in ["", "yaml", "tf", "cli\u{202e}"] {
            assert!(matches!(bad.parse::<InstructionsFormat>(), Err(ParseError::Format { .. })), "{bad:?}");
        }
    }
}

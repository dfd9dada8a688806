//! The command line: clap arguments → an app [`Command`] → rendered reply.
//!
//! Values are taken as text and parsed by the domain's parsers, so a bad
//! value gets the same localised message as on Discord. Exit codes: 0 done,
//! 2 invalid input (store unchanged), 1 anything else.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::{Actor, AppError, Command, ImportAnswer, ListFormat, Message, Reply, UserError, Verdict};
use crate::clock::SystemClock;
use crate::config::{Config, ConfigError};
use crate::domain::{
    Edit, Lang, LinkState, ListFilter, NewAccount, ParseError, PriceBookChoice, TenantDecision, TenantId,
};
use crate::scheduler::Job;
use crate::store::Store;
use crate::templates::Templates;
use crate::wiring;

/// orglink: link customers' AWS accounts into the distributor's AWS Organization.
#[derive(Debug, Parser)]
#[command(name = "orglink", version, about)]
pub struct Cli {
    /// Data directory (overrides `data_dir` and ORGLINK_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file (TOML).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Language of the output: en or es.
    #[arg(long, global = true, value_name = "en|es")]
    lang: Option<String>,
    #[command(subcommand)]
    command: TopCommand,
}

#[derive(Debug, Subcommand)]
enum TopCommand {
    /// Register, list and inspect AWS accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// The tenants (Discord servers) the distributor serves: list them,
    /// approve or deny a new one, suspend or resume one.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Operations: the pipeline, per tenant and overall: how many
    /// registrations stand in each state and for how long (oldest,
    /// median), who must act next, invitations expiring within 3 days,
    /// blocked accounts, linked accounts without the right support plan
    /// group, tickets and undelivered notifications; and the ten
    /// registrations stuck longest. Closed registrations are left out;
    /// lapsed ones count in their own state only.
    Pipeline {
        /// Only this reseller (its Discord server ID, as `/orglink-config` shows).
        #[arg(long, value_name = "SERVER_ID")]
        tenant: Option<String>,
        /// The figures as JSON: durations in seconds, instants in RFC 3339 UTC.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// As CSV, a row per tenant and a first one for all.
        #[arg(long)]
        csv: bool,
    },
    /// Print the IAM role instructions of an account.
    Instructions {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        #[command(flatten)]
        claim: ClaimOf,
        /// text (console steps), cloudformation (template), cli (AWS CLI
        /// commands), terraform (a Terraform configuration) or link (the
        /// CloudFormation quick-create link alone, with
        /// instructions.template_url).
        #[arg(long, value_name = "text|cloudformation|cli|terraform|link")]
        format: Option<String>,
    },
    /// Record the account's support plan group on the platform.
    SupportPlan {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        #[command(flatten)]
        claim: ClaimOf,
        /// The support plan group set on the platform: passthrough, or
        /// business (Business Support).
        #[arg(value_name = "passthrough|business")]
        group: String,
    },
    /// Check the role a customer created: AssumeRole with the external ID,
    /// and the checks that make "Verified" mean something. Exit 0 verified,
    /// 3 not verified, 2 invalid input.
    Verify {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        /// The role's whole ARN, as the IAM console shows it:
        /// arn:aws:iam::ACCOUNT_ID:role/NAME.
        role_arn: String,
        /// Check only this reseller's registration (its Discord server ID);
        /// without it, the registration whose external ID the role trusts.
        #[arg(long, value_name = "SERVER_ID")]
        tenant: Option<String>,
        /// The role's description, as the customer gave it (kept with the
        /// role).
        #[arg(long)]
        description: Option<String>,
        /// Print the result as JSON (stable field names, times in UTC).
        #[arg(long)]
        json: bool,
    },
    /// Operations: send the AWS Organizations invitation to an account whose
    /// role is verified. Exit 0 sent (or queued), 3 refused by AWS.
    Invite {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        /// A note shown to the account owner with the invitation.
        #[arg(long)]
        note: Option<String>,
    },
    /// Ask the distributor for help in a Freshdesk ticket (one per account
    /// and reason): opened now, or recorded until Freshdesk takes it.
    Ticket {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        #[command(flatten)]
        claim: ClaimOf,
        /// What the distributor should help with (1–500 characters).
        #[arg(long)]
        reason: String,
    },
    /// Run the scheduled jobs once: all (but operations' daily digest), or
    /// the one named.
    Sweep {
        /// Only this job: poll_handshakes, remind_invitations,
        /// send_queued_invitations, audit_support_plans, open_tickets,
        /// probe_roles, lapse_claims, ops_digest, backup (a name not known
        /// lists them).
        #[arg(long, value_name = "NAME")]
        job: Option<String>,
    },
    /// Print the health of the configuration (never a secret) and of
    /// orglink's AWS identity.
    Doctor,
    /// Upload the generic CloudFormation role template (the same for every
    /// account: its values are parameters) to S3, and print its URL for
    /// instructions.template_url and the bucket policy it needs.
    PublishTemplate {
        /// The S3 bucket to put it in (it must exist).
        #[arg(long)]
        bucket: String,
        /// The object's key.
        #[arg(long, default_value = "orglink/role-template.yaml")]
        key: String,
        /// The bucket's region (default: aws.region, else the AWS SDK's).
        #[arg(long)]
        region: Option<String>,
    },
    /// Serve Discord: the gateway (with discord.token) and the HTTP
    /// interactions endpoint (with discord.public_key).
    Serve,
    /// Register orglink's slash commands with Discord.
    RegisterCommands,
    /// Operations: the notifications waiting to go out (oldest first, with
    /// what stops each: no channel set, tenant suspended), or with --dead
    /// those given up on and why; `replay` puts dead letters back,
    /// `drop` removes one for good (audited).
    Outbox(OutboxArgs),
    /// Operations: write a backup of the whole store to FILE, at one
    /// moment, whether a server runs (it writes the file) or not. The file
    /// is owner-only: it holds every external ID. It appears complete or
    /// not at all.
    Backup {
        /// The backup file (replaced if it exists).
        file: PathBuf,
        /// Print the result as JSON (stable field names, times in UTC).
        #[arg(long)]
        json: bool,
    },
    /// Make the store again from a backup, in the data directory
    /// (--data-dir), which must be new or empty. Exit 2, with nothing
    /// written, when it is not, or when FILE is not a sound backup.
    Restore {
        /// A file `orglink backup` wrote.
        file: PathBuf,
        /// Print the result as JSON (stable field names, times in UTC).
        #[arg(long)]
        json: bool,
    },
    /// Operations: check the store against itself (indexes, external IDs,
    /// the outbox and ticket requests, the schema version). Exit 0 with
    /// what was checked, 1 naming each inconsistency.
    Check {
        /// Print the result as JSON (stable field names, times in UTC).
        #[arg(long)]
        json: bool,
    },
    /// Record the account's price book: a custom one by name, or the default.
    PriceBook {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        #[command(flatten)]
        claim: ClaimOf,
        /// The custom price book's name on the platform (1–64 characters).
        #[arg(required_unless_present = "default")]
        name: Option<String>,
        /// The provider's default price book.
        #[arg(long, conflicts_with = "name")]
        default: bool,
    },
}

/// `--tenant`, for an operator where several resellers registered the
/// account.
#[derive(Debug, clap::Args)]
struct ClaimOf {
    /// Operations: the reseller whose registration this is about (its
    /// Discord server ID, as `/orglink-config` shows it), when several have
    /// registered the account.
    #[arg(long, value_name = "SERVER_ID")]
    tenant: Option<String>,
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Register an AWS account and print its IAM role instructions.
    Add {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        /// The reseller (tenant): its Discord server ID, as `/orglink-config`
        /// shows it.
        #[arg(long, value_name = "SERVER_ID")]
        tenant: String,
        /// The reseller's customer who owns the account (1–100 characters).
        #[arg(long)]
        customer: String,
        /// The account's AWS support tier: business, developer or basic
        /// (business needs the Business Support plan group).
        #[arg(long, value_name = "business|developer|basic")]
        support: String,
        /// The account's root e-mail address.
        #[arg(long)]
        email: Option<String>,
        /// A custom price book (default: the provider's).
        #[arg(long)]
        price_book: Option<String>,
        /// standalone (default), member (of another organization, which it
        /// must leave first) or management (of its own organization: needs
        /// a migration, not an invitation).
        #[arg(long, value_name = "standalone|member|management")]
        kind: Option<String>,
    },
    /// Register the accounts of a CSV file for one tenant: all of them, or,
    /// when any row is refused, none (each refused row named by its line;
    /// exit 2). Columns (header first, comma or semicolon):
    /// account_id,customer,support[,email][,price_book][,kind].
    Import {
        /// The CSV file (UTF-8, with or without a byte-order mark).
        file: PathBuf,
        /// The reseller the accounts are registered for (its Discord server ID).
        #[arg(long, value_name = "SERVER_ID")]
        tenant: String,
        /// Judge every row, register nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the result as JSON (stable field names, times in UTC).
        #[arg(long)]
        json: bool,
    },
    /// What a reseller sends each customer, as CSV: every open
    /// registration (of one reseller, or all) with its state, external ID,
    /// the role to create, the account it trusts and the command that
    /// shows the instructions.
    Export {
        /// Only this reseller's (its Discord server ID, as `/orglink-config`
        /// shows it); without it, every reseller's.
        #[arg(long, value_name = "SERVER_ID")]
        tenant: Option<String>,
        /// CSV (the one format, named so others may come).
        #[arg(long, required = true)]
        csv: bool,
    },
    /// List open registrations, of one tenant or all, with their state,
    /// registration and last-change dates and who must act next.
    List {
        /// Only this reseller's (its Discord server ID, as `/orglink-config`
        /// shows it); without it, every reseller's.
        #[arg(long, value_name = "SERVER_ID")]
        tenant: Option<String>,
        /// Only registrations in this state (repeatable): registered,
        /// role_verified, invited, linked, invitation_expired,
        /// invitation_declined, invitation_canceled,
        /// blocked_management_account, blocked_member_account, lapsed.
        #[arg(long = "state", value_name = "STATE")]
        states: Vec<String>,
        /// Only registrations whose last change is older than DAYS days.
        #[arg(long, value_name = "DAYS")]
        stale: Option<u32>,
        /// Print the result as JSON (stable field names, times in UTC).
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// As CSV, for a spreadsheet.
        #[arg(long)]
        csv: bool,
    },
    /// Show an account's state and checklist.
    Show {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        #[command(flatten)]
        claim: ClaimOf,
        /// Print the result as JSON (stable field names, times in UTC).
        #[arg(long)]
        json: bool,
    },
    /// Give an account a new external ID (its role must then be verified again).
    RotateExternalId {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        #[command(flatten)]
        claim: ClaimOf,
    },
    /// Operations: remove a registration (it stays in the history). Refused
    /// once an invitation is open or the account is linked, unless --force.
    Remove {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        #[command(flatten)]
        claim: ClaimOf,
        /// Why, for the history (1–500 characters).
        #[arg(long)]
        reason: String,
        /// Even with an invitation open or the account linked (it stays in
        /// the organization: this only stops orglink following it).
        #[arg(long)]
        force: bool,
    },
    /// Operations: move a registration to another reseller; both are told.
    Transfer {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        #[command(flatten)]
        claim: ClaimOf,
        /// The reseller it goes to (its Discord server ID).
        #[arg(long, value_name = "SERVER_ID")]
        to: String,
        /// Why, for the history (1–500 characters).
        #[arg(long)]
        reason: String,
    },
    /// Correct a registration's details; a tier change re-checks the support
    /// plan group.
    Edit {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        #[command(flatten)]
        claim: ClaimOf,
        /// The reseller's customer who owns the account (1–100 characters).
        #[arg(long)]
        customer: Option<String>,
        /// The account's root e-mail address.
        #[arg(long)]
        email: Option<String>,
        /// The account's AWS support tier: business, developer or basic.
        #[arg(long, value_name = "business|developer|basic")]
        support: Option<String>,
        /// standalone, or member (of another organization, which it must
        /// leave first).
        #[arg(long, value_name = "standalone|member")]
        kind: Option<String>,
        /// A custom price book by name.
        #[arg(long, conflicts_with = "default_price_book")]
        price_book: Option<String>,
        /// The provider's default price book.
        #[arg(long)]
        default_price_book: bool,
        /// Why, for the history.
        #[arg(long)]
        reason: Option<String>,
    },
    /// An account's history, oldest first, times in UTC.
    History {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        #[command(flatten)]
        claim: ClaimOf,
        /// Print the result as JSON (stable field names, times in UTC).
        #[arg(long)]
        json: bool,
    },
    /// Give a lapsed (or open) registration a fresh window to get its role
    /// verified.
    Revive {
        /// The AWS account: its 12-digit ID.
        account_id: String,
        #[command(flatten)]
        claim: ClaimOf,
    },
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct OutboxArgs {
    #[command(subcommand)]
    action: Option<OutboxCommand>,
    /// The dead letters (notifications given up on), with why and when.
    #[arg(long)]
    dead: bool,
    /// As JSON (stable field names, dates in UTC ISO 8601).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// Put a dead letter (or all of them) back in the outbox, as new: a
    /// running server delivers it at once.
    Replay {
        /// The notification's number, as `orglink outbox --dead` shows it.
        #[arg(required_unless_present = "all")]
        id: Option<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Remove a waiting or dead notification for good; recorded in the
    /// account's history (or the tenant's audit log) with who and why.
    Drop {
        /// The notification's number, as `orglink outbox` shows it.
        id: String,
        /// Why, for the audit log (1–1000 characters).
        #[arg(long)]
        reason: String,
    },
}

impl OutboxArgs {
    fn to_command(&self) -> Result<(Command, bool), ParseError> {
        let command = match &self.action {
            None => Command::ListOutbox { dead: self.dead },
            Some(OutboxCommand::Replay { id: Some(id), .. }) => {
                Command::ReplayOutbox { which: crate::app::Replay::One(id.parse()?) }
            }
            Some(OutboxCommand::Replay { id: None, .. }) => Command::ReplayOutbox { which: crate::app::Replay::All },
            Some(OutboxCommand::Drop { id, reason }) => {
                Command::DropOutbox { id: id.parse()?, reason: reason.parse()? }
            }
        };
        Ok((command, self.json))
    }
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Every tenant orglink knows of, with its status, since when, and its
    /// number of accounts.
    List {
        /// Print the result as JSON (stable field names, times in UTC).
        #[arg(long)]
        json: bool,
    },
    /// Serve a tenant: one waiting for approval, one denied before, or one
    /// not seen yet (approved in advance).
    Approve {
        /// The tenant: its Discord server ID.
        tenant: String,
    },
    /// Refuse a tenant that is waiting for approval (or not seen yet).
    Deny {
        /// The tenant: its Discord server ID.
        tenant: String,
    },
    /// Stop serving an approved tenant: its commands are refused, its
    /// notifications wait and no job works for it; its data stays.
    Suspend {
        /// The tenant: its Discord server ID.
        tenant: String,
    },
    /// Serve a suspended tenant again; its notifications that waited go out.
    Resume {
        /// The tenant: its Discord server ID.
        tenant: String,
    },
}

impl TenantCommand {
    fn to_command(&self) -> Result<(Command, bool), ParseError> {
        let decide = |tenant: &str, decision| -> Result<(Command, bool), ParseError> {
            Ok((Command::DecideTenant { tenant: tenant.parse()?, decision }, false))
        };
        match self {
            Self::List { json } => Ok((Command::ListTenants, *json)),
            Self::Approve { tenant } => decide(tenant, TenantDecision::Approve),
            Self::Deny { tenant } => decide(tenant, TenantDecision::Deny),
            Self::Suspend { tenant } => decide(tenant, TenantDecision::Suspend),
            Self::Resume { tenant } => decide(tenant, TenantDecision::Resume),
        }
    }
}

impl TopCommand {
    /// The app command these arguments ask for, and whether to print JSON.
    fn to_command(&self, files: &Files<'_>) -> Result<(Command, bool), ParseError> {
        Ok(match self {
            Self::Serve
            | Self::RegisterCommands
            | Self::Doctor
            | Self::PublishTemplate { .. }
            | Self::Sweep { .. }
            | Self::Restore { .. } => {
                unreachable!("handled before app commands")
            }
            // The server writes the file: a path relative to where the
            // command line runs means the same there.
            Self::Backup { file, json } => {
                (Command::Backup { file: std::path::absolute(file).unwrap_or_else(|_| file.clone()) }, *json)
            }
            Self::Check { json } => (Command::Check, *json),
            Self::Tenant(tenant) => tenant.to_command()?,
            Self::Pipeline { tenant, json, csv } => {
                let format = if *csv { ListFormat::Csv } else { ListFormat::Text };
                let tenant = tenant.as_deref().map(str::parse).transpose()?;
                (Command::Pipeline { tenant, format, page: None }, *json)
            }
            Self::Outbox(outbox) => outbox.to_command()?,
            Self::Ticket { account_id, reason, .. } => {
                (Command::OpenTicket { account: account_id.parse()?, reason: reason.parse()? }, false)
            }
            Self::Invite { account_id, note } => (
                Command::Invite { account: account_id.parse()?, note: note.as_deref().map(str::parse).transpose()? },
                false,
            ),
            Self::Verify { account_id, role_arn, description, json, .. } => (
                Command::VerifyRole {
                    account: account_id.parse()?,
                    arn: Some(role_arn.parse()?),
                    description: description.as_deref().map(str::parse).transpose()?,
                },
                *json,
            ),
            Self::Account(AccountCommand::Add { account_id, tenant, customer, support, email, price_book, kind }) => (
                Command::AddAccount(NewAccount {
                    id: account_id.parse()?,
                    tenant: tenant.parse()?,
                    customer: customer.parse()?,
                    root_email: email.as_deref().map(str::parse).transpose()?,
                    support_tier: support.parse()?,
                    kind: kind.as_deref().map(str::parse).transpose()?.unwrap_or_default(),
                    price_book: price_book.as_deref().map(str::parse).transpose()?,
                }),
                false,
            ),
            Self::Account(AccountCommand::Import { file, tenant, dry_run, json }) => {
                let tenant: TenantId = tenant.parse()?;
                // Missing, unreadable or not UTF-8: the file is the input,
                // refused before the store is opened.
                let text = files.read(file).ok_or_else(|| ParseError::ImportFile {
                    input: crate::domain::quote_input(&file.to_string_lossy()),
                })?;
                let rows = crate::domain::import::read(&text, &tenant);
                (Command::ImportAccounts { tenant, rows, dry_run: *dry_run, answer: ImportAnswer::Table }, *json)
            }
            Self::Account(AccountCommand::Export { tenant, .. }) => {
                (Command::ExportAccounts { tenant: tenant.as_deref().map(str::parse).transpose()? }, false)
            }
            Self::Account(AccountCommand::List { tenant, states, stale, json, csv }) => {
                let states = states.iter().map(|s| LinkState::parse_code(s)).collect::<Result<_, _>>()?;
                let filter = ListFilter { states, stale_days: *stale };
                let format = if *csv { ListFormat::Csv } else { ListFormat::Text };
                let tenant = tenant.as_deref().map(str::parse).transpose()?;
                (Command::ListAccounts { tenant, filter, format }, *json)
            }
            Self::Account(AccountCommand::Show { account_id, json, .. }) => {
                (Command::ShowAccount { account: account_id.parse()? }, *json)
            }
            Self::Account(AccountCommand::RotateExternalId { account_id, .. }) => {
                (Command::RotateExternalId { account: account_id.parse()? }, false)
            }
            Self::Account(AccountCommand::Revive { account_id, .. }) => {
                (Command::Revive { account: account_id.parse()? }, false)
            }
            Self::Account(AccountCommand::Remove { account_id, reason, force, .. }) => {
                (Command::RemoveAccount { account: account_id.parse()?, reason: reason.parse()?, force: *force }, false)
            }
            Self::Account(AccountCommand::Transfer { account_id, to, reason, .. }) => (
                Command::TransferAccount { account: account_id.parse()?, to: to.parse()?, reason: reason.parse()? },
                false,
            ),
            Self::Account(AccountCommand::Edit {
                account_id,
                customer,
                email,
                support,
                kind,
                price_book,
                default_price_book,
                reason,
                ..
            }) => {
                let price_book = match (price_book, default_price_book) {
                    (Some(name), _) => Some(PriceBookChoice::Custom(name.parse()?)),
                    (None, true) => Some(PriceBookChoice::Default),
                    (None, false) => None,
                };
                let edit = Edit {
                    customer: customer.as_deref().map(str::parse).transpose()?,
                    root_email: email.as_deref().map(str::parse).transpose()?,
                    support_tier: support.as_deref().map(str::parse).transpose()?,
                    kind: kind.as_deref().map(str::parse).transpose()?,
                    price_book,
                };
                let reason = reason.as_deref().map(str::parse).transpose()?;
                (Command::EditAccount { account: account_id.parse()?, edit, reason }, false)
            }
            Self::Account(AccountCommand::History { account_id, json, .. }) => {
                (Command::History { account: account_id.parse()? }, *json)
            }
            Self::Instructions { account_id, format, .. } => {
                let format = format.as_deref().map(str::parse).transpose()?.unwrap_or_default();
                (Command::Instructions { account: account_id.parse()?, format }, false)
            }
            Self::SupportPlan { account_id, group, .. } => {
                (Command::SetSupportPlan { account: account_id.parse()?, group: group.parse()? }, false)
            }
            Self::PriceBook { account_id, name, .. } => {
                let price_book = PriceBookChoice::from_name(name.as_deref())?;
                (Command::SetPriceBook { account: account_id.parse()?, price_book }, false)
            }
        })
    }
}

impl TopCommand {
    /// The reseller whose registration an operator means (`--tenant`).
    fn claim_of(&self) -> Result<Option<TenantId>, ParseError> {
        let tenant = match self {
            Self::Instructions { claim, .. }
            | Self::SupportPlan { claim, .. }
            | Self::Ticket { claim, .. }
            | Self::PriceBook { claim, .. }
            | Self::Account(AccountCommand::Show { claim, .. })
            | Self::Account(AccountCommand::RotateExternalId { claim, .. })
            | Self::Account(AccountCommand::Revive { claim, .. })
            | Self::Account(AccountCommand::Remove { claim, .. })
            | Self::Account(AccountCommand::Transfer { claim, .. })
            | Self::Account(AccountCommand::Edit { claim, .. })
            | Self::Account(AccountCommand::History { claim, .. }) => &claim.tenant,
            Self::Verify { tenant, .. } => tenant,
            Self::Invite { .. }
            | Self::Sweep { .. }
            | Self::Backup { .. }
            | Self::Restore { .. }
            | Self::Check { .. }
            | Self::Doctor
            | Self::PublishTemplate { .. }
            | Self::Serve
            | Self::RegisterCommands
            | Self::Tenant(_)
            | Self::Pipeline { .. }
            | Self::Outbox(_)
            | Self::Account(
                AccountCommand::Add { .. }
                | AccountCommand::Import { .. }
                | AccountCommand::Export { .. }
                | AccountCommand::List { .. },
            ) => &None,
        };
        tenant.as_deref().map(str::parse).transpose()
    }
}

/// Output streams, so tests (and the socket, for its client) can capture
/// them; `Send`, as the server's requests are futures on tokio.
pub struct Io<'a> {
    pub out: &'a mut (dyn Write + Send),
    pub err: &'a mut (dyn Write + Send),
    /// Both streams are a terminal that takes styles: bold shows as bold.
    pub bold: bool,
}

/// Where the files a command reads (an import's CSV) come from: the disk,
/// or, for a command sent on the socket, what the client read and sent
/// (the server may see other files, from another directory).
enum Files<'a> {
    Disk,
    Sent(&'a BTreeMap<String, String>),
}

impl Files<'_> {
    /// The file at `path` as UTF-8 text; `None` when it cannot be read or
    /// is not UTF-8.
    fn read(&self, path: &std::path::Path) -> Option<String> {
        match self {
            Self::Disk => std::fs::read(path).ok().and_then(|bytes| String::from_utf8(bytes).ok()),
            Self::Sent(files) => files.get(path.to_string_lossy().as_ref()).cloned(),
        }
    }
}

/// Runs the command line `args` with the process environment.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    // Whatever orglink writes (the store, its logs' files) is its owner's
    // only.
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    // Not locked for the whole run: `serve` logs to stderr from every
    // thread, and a lock held here would stop the first one that logs.
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let env = Config::process_env();
    let bold = {
        use std::io::IsTerminal;
        out.is_terminal()
            && err.is_terminal()
            && !env.contains_key("NO_COLOR")
            && env.get("TERM").is_none_or(|term| term != "dumb")
    };
    let code = run_with(args, &env, &mut Io { out: &mut out, err: &mut err, bold });
    ExitCode::from(code)
}

/// Runs the command line `args` with environment `env`; returns the exit code.
pub fn run_with(
    args: impl IntoIterator<Item = OsString>,
    env: &std::collections::BTreeMap<String, String>,
    io: &mut Io<'_>,
) -> u8 {
    let args: Vec<OsString> = args.into_iter().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let templates = Templates::embedded();
    // The language first: every later message is in it.
    let explicit_lang = match cli.lang.as_deref().map(str::parse::<Lang>).transpose() {
        Ok(lang) => lang,
        Err(e) => return report(io, &templates, Lang::En, &Reply::error(e.into()), 2),
    };
    let config = match Config::load(cli.config.as_deref(), env) {
        Ok(config) => config,
        Err(e) => return config_error(io, &templates, explicit_lang.unwrap_or_default(), &e),
    };
    let templates = match &config.templates_dir {
        Some(dir) => Templates::with_overrides(dir),
        None => templates,
    }
    .for_terminal(io.bold);
    let lang = explicit_lang.unwrap_or(config.language);
    // No default: a directory relative to wherever orglink happens to run
    // would hold a different store in each.
    let data_dir = cli.data_dir.clone().or_else(|| config.data_dir.clone());
    if let TopCommand::Restore { file, json } = &cli.command {
        let Some(data_dir) = data_dir else { return data_dir_error(io, &templates, lang, DataDir::Unset, &[]) };
        return restore(file, &data_dir, *json, &templates, lang, io);
    }
    if let TopCommand::PublishTemplate { bucket, key, region } = &cli.command {
        return publish_template(&config, bucket, key, region.as_deref(), &templates, lang, io);
    }
    if let TopCommand::Sweep { job } = &cli.command {
        let backups = config.settings.backup.is_some();
        let jobs = match jobs_named(job.as_deref(), backups, &templates, lang, io) {
            Ok(jobs) => jobs,
            Err(code) => return code,
        };
        let Some(data_dir) = data_dir else { return data_dir_error(io, &templates, lang, DataDir::Unset, &[]) };
        if let Some(code) = through_server(&data_dir, lang, &args, BTreeMap::new(), &templates, io) {
            return code;
        }
        return sweep(jobs, config, &data_dir, &templates, lang, io);
    }
    if matches!(cli.command, TopCommand::Serve | TopCommand::RegisterCommands | TopCommand::Doctor) {
        return run_service(&cli.command, config, data_dir, templates, lang, io);
    }

    // Parse every argument before touching the store: bad input changes nothing.
    let files = Files::Disk;
    let (command, json, claim_of) =
        match cli.command.to_command(&files).and_then(|(c, j)| Ok((c, j, cli.command.claim_of()?))) {
            Ok(parsed) => parsed,
            Err(e) => return report(io, &templates, lang, &Reply::error(e.into()), 2),
        };
    let Some(data_dir) = data_dir else { return data_dir_error(io, &templates, lang, DataDir::Unset, &[]) };
    // A running server holds the store (sled's lock): it runs the command,
    // with a backup's file as the path it means here.
    let args = match &command {
        Command::Backup { file } => {
            let mut args: Vec<OsString> = vec!["orglink".into(), "backup".into(), file.clone().into()];
            args.extend(json.then(|| "--json".into()));
            args
        }
        _ => args,
    };
    // The file an import reads goes with it: the server may not see this
    // directory, or the same files.
    let sent = match &cli.command {
        TopCommand::Account(AccountCommand::Import { file, .. }) => files
            .read(file)
            .map(|text| BTreeMap::from([(file.to_string_lossy().into_owned(), text)]))
            .unwrap_or_default(),
        _ => BTreeMap::new(),
    };
    if let Some(code) = through_server(&data_dir, lang, &args, sent, &templates, io) {
        return code;
    }
    // A command that only reads has nothing to show in a new store: it
    // opens an existing one or says there is none, and creates nothing.
    let opened = if command.reads_only() { Store::open_existing(&data_dir) } else { Store::open(&data_dir) };
    let store = match opened {
        Ok(store) => store,
        Err(e) => return store_error(io, &templates, lang, e),
    };
    let actor = Actor::operator(&cli_user()).on_claim_of(claim_of);
    let slow = command.is_slow();
    let result = if slow {
        match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(async {
                let aws = wiring::aws_clients(&config).await;
                let app = wiring::app(&config, &templates, store.clone(), Arc::new(SystemClock), Some(aws));
                app.execute(&actor, command).await
            }),
            Err(e) => Err(AppError::Internal(e.into())),
        }
    } else {
        wiring::app(&config, &templates, store.clone(), Arc::new(SystemClock), None).handle(&actor, command)
    };
    if let Err(e) = store.flush() {
        return internal(io, &templates, lang, &anyhow::Error::new(e));
    }
    print_outcome(io, &templates, lang, json, result)
}

/// Who runs the command line, for the audit (`cli:<user>`).
fn cli_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

/// Prints a command's outcome as text (or its data as JSON) and says the
/// exit code: the same whether it ran here or in a server.
fn print_outcome(
    io: &mut Io<'_>,
    templates: &Templates,
    lang: Lang,
    json: bool,
    result: Result<Reply, AppError>,
) -> u8 {
    // A role that is not verified is an answer, not a failure: exit 3.
    let done = |reply: &Reply| match reply.verdict {
        Verdict::Done => 0,
        Verdict::Refused => 3,
        Verdict::Failed => 1,
    };
    match result {
        Ok(reply) if json => {
            let data = reply.data().unwrap_or_default();
            let _ = writeln!(io.out, "{}", serde_json::to_string_pretty(&data).expect("JSON serialises"));
            done(&reply)
        }
        Ok(reply) => {
            let code = done(&reply);
            report(io, templates, lang, &reply, code)
        }
        Err(AppError::User(e)) => {
            let code = if e.ours() { 1 } else { 2 };
            report(io, templates, lang, &Reply::error(e), code)
        }
        Err(AppError::Internal(e)) => internal(io, templates, lang, &e),
    }
}

/// Hands the command line `args` to the server running on `data_dir`, if
/// one answers there, and prints what it printed: `None` when none does.
fn through_server(
    data_dir: &std::path::Path,
    lang: Lang,
    args: &[OsString],
    files: BTreeMap<String, String>,
    templates: &Templates,
    io: &mut Io<'_>,
) -> Option<u8> {
    let request = crate::socket::Request {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        user: cli_user(),
        lang,
        bold: io.bold,
        // Parsed as UTF-8 already, but for the paths (`--data-dir`,
        // `--config`), which the server does not use.
        args: args.iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect(),
        files,
    };
    match crate::socket::call(&crate::socket::path(data_dir), &request) {
        Ok(None) => None,
        Ok(Some(response)) => {
            let _ = write!(io.out, "{}", response.stdout);
            let _ = write!(io.err, "{}", response.stderr);
            Some(response.exit_code)
        }
        Err(e) => Some(internal(io, templates, lang, &e)),
    }
}

/// What the running server does with a command line sent on its socket:
/// what [`run_with`] does with it, on the server's app, its output kept for
/// the client.
pub(crate) fn socket_handler(bot: Arc<crate::discord::Bot>, templates: Templates) -> crate::socket::Handler {
    Arc::new(move |request| {
        let (bot, templates) = (bot.clone(), templates.clone());
        Box::pin(async move {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let bold = request.bold;
            let templates = templates.for_terminal(bold);
            let exit_code =
                serve_request(&bot, &templates, request, &mut Io { out: &mut out, err: &mut err, bold }).await;
            crate::socket::Response {
                exit_code,
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: String::from_utf8_lossy(&err).into_owned(),
            }
        })
    })
}

async fn serve_request(
    bot: &crate::discord::Bot,
    templates: &Templates,
    request: crate::socket::Request,
    io: &mut Io<'_>,
) -> u8 {
    use crate::metrics::CommandOutcome;
    let lang = request.lang;
    let own = env!("CARGO_PKG_VERSION");
    if request.version != own {
        let context = serde_json::json!({ "server": own, "client": request.version });
        let text = templates.render(lang, "errors/socket_version.md", context).unwrap_or_default();
        let _ = writeln!(io.err, "{text}");
        return 2;
    }
    let cli = match Cli::try_parse_from(std::iter::once("orglink".to_owned()).chain(request.args)) {
        Ok(cli) => cli,
        // `--version` (how `doctor` asks whether a server answers), or
        // what the client parsed and this server cannot: the same version
        // parses the same, so only the former.
        Err(e) => {
            let stream = if e.use_stderr() { &mut *io.err } else { &mut *io.out };
            let _ = write!(stream, "{}", e.render());
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let app = bot.app();
    match &cli.command {
        TopCommand::Sweep { job } => {
            let backups = app.settings().backup.is_some();
            let jobs = match jobs_named(job.as_deref(), backups, templates, lang, io) {
                Ok(jobs) => jobs,
                Err(code) => return code,
            };
            let result = run_jobs(app, jobs).await;
            bot.changed.notify_one();
            return print_sweep(io, templates, lang, result);
        }
        TopCommand::Serve
        | TopCommand::Doctor
        | TopCommand::PublishTemplate { .. }
        | TopCommand::RegisterCommands
        | TopCommand::Restore { .. } => {
            let error = anyhow::anyhow!("this command runs in its own process, not through the server");
            return internal(io, templates, lang, &error);
        }
        _ => {}
    }
    let (command, json, claim_of) = match cli
        .command
        .to_command(&Files::Sent(&request.files))
        .and_then(|(c, j)| Ok((c, j, cli.command.claim_of()?)))
    {
        Ok(parsed) => parsed,
        Err(e) => return report(io, templates, lang, &Reply::error(e.into()), 2),
    };
    let actor = Actor::operator(&request.user).on_claim_of(claim_of);
    let name = command.name();
    let result = app.execute(&actor, command).await;
    // Counted as Discord's are: the server's metrics see every command it ran.
    let outcome = match &result {
        Ok(_) => CommandOutcome::Ok,
        Err(AppError::User(e)) if e.ours() => CommandOutcome::InternalError,
        Err(AppError::User(_)) => CommandOutcome::UserError,
        Err(AppError::Internal(e)) => {
            tracing::error!(error = format!("{e:#}"), "a command from the command line's socket failed");
            CommandOutcome::InternalError
        }
    };
    app.metrics().command(name, outcome);
    // Its notices go out now, not at the next round: a refusal may have
    // recorded one for operations too.
    bot.changed.notify_one();
    print_outcome(io, templates, lang, json, result)
}

/// `serve` and `register-commands`: long-running or networked, on tokio.
fn run_service(
    command: &TopCommand,
    config: Config,
    data_dir: Option<PathBuf>,
    templates: Templates,
    lang: Lang,
    io: &mut Io<'_>,
) -> u8 {
    init_logging();
    // `serve` writes: its store is opened (or created) before anything
    // starts, and a directory that is not orglink's stops it here.
    let store = match (command, &data_dir) {
        (TopCommand::Serve, None) => return data_dir_error(io, &templates, lang, DataDir::Unset, &[]),
        (TopCommand::Serve, Some(dir)) => match Store::open(dir) {
            Ok(store) => Some(store),
            Err(e) => return store_error(io, &templates, lang, e),
        },
        _ => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return internal(io, &templates, lang, &anyhow::Error::new(e)),
    };
    let result = runtime.block_on(async {
        match command {
            TopCommand::RegisterCommands => {
                let count = crate::server::register_commands(&config, &templates).await?;
                let guilds: Vec<String> = config.discord.command_guild_ids.iter().map(|g| g.to_string()).collect();
                let text = templates.render(
                    lang,
                    "commands_registered.md",
                    serde_json::json!({ "count": count, "guilds": guilds }),
                )?;
                let _ = writeln!(io.out, "{text}");
                Ok(())
            }
            TopCommand::Doctor => {
                let (text, healthy) = doctor(&config, data_dir.as_deref(), &templates, lang).await?;
                let _ = writeln!(io.out, "{text}");
                if healthy { Ok(()) } else { Err(DoctorFound.into()) }
            }
            _ => {
                let store = store.expect("serve opened its store above");
                let dir = data_dir.as_deref().expect("serve has its data directory");
                let for_socket = templates.clone();
                let socket = crate::server::CliSocket {
                    path: crate::socket::path(dir),
                    handler: Box::new(move |bot| socket_handler(bot, for_socket)),
                };
                crate::server::serve(config, templates.clone(), store, Arc::new(SystemClock), socket).await
            }
        }
    });
    match result {
        Ok(()) => 0,
        Err(e) if e.is::<DoctorFound>() => 1,
        Err(e) => match e.downcast_ref::<crate::server::ServeError>() {
            Some(serve_error) => {
                let problem = match serve_error {
                    crate::server::ServeError::CannotRegister => "cannot_register",
                };
                let text = templates
                    .render(lang, "errors/serve.md", serde_json::json!({ "problem": problem }))
                    .unwrap_or_else(|_| serve_error.to_string());
                let _ = writeln!(io.err, "{text}");
                2
            }
            None => internal(io, &templates, lang, &e),
        },
    }
}

/// The jobs `sweep` runs: all, or the one named (else exit 2, said).
/// The jobs `sweep` runs: the one named, or all (the backup job only when
/// `backups` are on).
fn jobs_named(
    job: Option<&str>,
    backups: bool,
    templates: &Templates,
    lang: Lang,
    io: &mut Io<'_>,
) -> Result<Vec<Job>, u8> {
    match job {
        // The digest goes out on its schedule, or when named: a sweep
        // pushes work through and tells operations nothing new. Backups
        // only where backup.dir is set.
        None => Ok(Job::ALL.into_iter().filter(|&j| j != Job::OpsDigest && (backups || j != Job::Backup)).collect()),
        Some(name) => match Job::from_name(name.trim()) {
            Some(job) => Ok(vec![job]),
            None => {
                let names: Vec<&str> = Job::ALL.iter().map(|j| j.name()).collect();
                let context = serde_json::json!({ "input": crate::domain::quote_input(name), "jobs": names });
                let text = templates.render(lang, "errors/unknown_job.md", context).unwrap_or_default();
                let _ = writeln!(io.err, "{text}");
                Err(2)
            }
        },
    }
}

/// `orglink restore FILE`: the store made again in `data_dir` from a backup,
/// here, never through a server (its directory is not empty).
fn restore(
    file: &std::path::Path,
    data_dir: &std::path::Path,
    json: bool,
    templates: &Templates,
    lang: Lang,
    io: &mut Io<'_>,
) -> u8 {
    let result = Store::restore(data_dir, file)
        .map(|(store, summary)| {
            drop(store);
            let view = crate::app::BackupView::new(file, Some(data_dir), &summary);
            Reply::new(crate::app::Tone::Success, vec![Message::Restored(view.clone())]).with_data(view)
        })
        .map_err(crate::app::backup_error);
    print_outcome(io, templates, lang, json, result)
}

/// `orglink sweep`: the scheduled jobs, once, now.
fn sweep(
    jobs: Vec<Job>,
    config: Config,
    data_dir: &std::path::Path,
    templates: &Templates,
    lang: Lang,
    io: &mut Io<'_>,
) -> u8 {
    let store = match Store::open(data_dir) {
        Ok(store) => store,
        Err(e) => return store_error(io, templates, lang, e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return internal(io, templates, lang, &anyhow::Error::new(e)),
    };
    let result = runtime.block_on(async {
        let aws = wiring::aws_clients(&config).await;
        let app = wiring::app(&config, templates, store.clone(), Arc::new(SystemClock), Some(aws));
        run_jobs(&app, jobs).await
    });
    let _ = store.flush();
    print_sweep(io, templates, lang, result)
}

async fn run_jobs(app: &crate::app::App, jobs: Vec<Job>) -> Result<Vec<crate::app::JobReport>, AppError> {
    let mut reports = Vec::new();
    for job in jobs {
        reports.push(app.run_job(job).await?);
    }
    Ok(reports)
}

/// Prints what a sweep did; exit 1 if a job failed.
fn print_sweep(
    io: &mut Io<'_>,
    templates: &Templates,
    lang: Lang,
    result: Result<Vec<crate::app::JobReport>, AppError>,
) -> u8 {
    match result {
        Ok(reports) => match templates.render(lang, "sweep.md", serde_json::json!({ "reports": reports })) {
            Ok(text) => {
                let _ = writeln!(io.out, "{text}");
                // A run that could not ask AWS failed, whatever else it did.
                if reports.iter().all(crate::app::JobReport::succeeded) { 0 } else { 1 }
            }
            Err(e) => internal(io, templates, lang, &anyhow::Error::new(e)),
        },
        Err(AppError::User(e)) => report(io, templates, lang, &Reply::error(e), 2),
        Err(AppError::Internal(e)) => internal(io, templates, lang, &e),
    }
}

/// The generic role template, as `publish-template` uploads it: the
/// platform's principal and the configured role name baked in, the rest
/// parameters.
pub fn role_template(config: &Config, templates: &Templates, lang: Lang) -> Result<String, minijinja::Error> {
    let settings = &config.settings;
    let partition = settings.partition;
    let context = serde_json::json!({
        "role_name": settings.role_name,
        "principal": format!("arn:{}:iam::{}:root", partition.as_str(), settings.cross_account_id),
        "read_only_policy_arn": crate::domain::ManagedPolicy::ReadOnlyAccess.arn(partition),
        "support_policy_arn": crate::domain::ManagedPolicy::SupportAccess.arn(partition),
    });
    templates.render(lang, "role_template.yaml", context)
}

/// `publish-template`: the arguments parsed (exit 2 on a bad one, nothing
/// sent), the template uploaded with orglink's own AWS identity, its URL
/// and the bucket policy it needs printed (exit 1 when S3 refused).
fn publish_template(
    config: &Config,
    bucket: &str,
    key: &str,
    region: Option<&str>,
    templates: &Templates,
    lang: Lang,
    io: &mut Io<'_>,
) -> u8 {
    use crate::domain::quick_create::{AwsRegion, BucketName, ObjectKey, bucket_policy};
    let parsed = (|| -> Result<_, ParseError> {
        let region = region.map(str::parse::<AwsRegion>).transpose()?;
        Ok((bucket.parse::<BucketName>()?, key.parse::<ObjectKey>()?, region))
    })();
    let (bucket, key, region) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return report(io, templates, lang, &Reply::error(e.into()), 2),
    };
    let body = match role_template(config, templates, lang) {
        Ok(body) => body,
        Err(e) => return internal(io, templates, lang, &anyhow::Error::new(e)),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return internal(io, templates, lang, &anyhow::Error::new(e)),
    };
    let partition = config.settings.partition;
    let (published, region) = runtime.block_on(async {
        let s3 = crate::wiring::template_bucket(config, region.map(String::from)).await;
        (s3.publish(partition, &bucket, &key, body).await, s3.region().to_owned())
    });
    let context = match &published {
        Ok(url) => serde_json::json!({
            "url": url,
            "bucket": bucket,
            "key": key,
            "region": region,
            "policy": serde_json::to_string_pretty(&bucket_policy(partition, bucket.as_str(), key.as_str()))
                .expect("JSON serialises"),
        }),
        Err(e) => serde_json::json!({ "bucket": bucket, "key": key, "region": region, "error": e.to_string() }),
    };
    let name = if published.is_ok() { "template_published.md" } else { "errors/publish_template.md" };
    let text = match templates.render(lang, name, context) {
        Ok(text) => text,
        Err(e) => return internal(io, templates, lang, &anyhow::Error::new(e)),
    };
    if published.is_ok() {
        let _ = writeln!(io.out, "{text}");
        0
    } else {
        let _ = writeln!(io.err, "{text}");
        1
    }
}

/// `doctor` found something to fix (it printed what).
#[derive(Debug, thiserror::Error)]
#[error("doctor found problems")]
struct DoctorFound;

/// The health of the configuration, the store and the AWS identity, as text,
/// judged by [`Health::healthy`](crate::health::Health::healthy).
async fn doctor(
    config: &Config,
    data_dir: Option<&std::path::Path>,
    templates: &Templates,
    lang: Lang,
) -> anyhow::Result<(String, bool)> {
    use crate::health::{Health, Identity, has_transport};
    // Doctor only reads: it never creates a store. None yet (a new
    // installation, before `serve`) is no fault: the first command that
    // writes creates it there; a directory that is not orglink's is.
    // A running server holds the store: asking it (`--version` on its
    // socket) says it answers, where opening the store would only wait for
    // its lock and fail.
    let socket = data_dir.map(crate::socket::path);
    let served = socket.as_deref().is_some_and(|path| {
        let ping = crate::socket::Request {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            user: cli_user(),
            lang,
            bold: false,
            args: vec!["--version".to_owned()],
            files: BTreeMap::new(),
        };
        matches!(crate::socket::call(path, &ping), Ok(Some(response)) if response.exit_code == 0)
    });
    let (store, store_problem) = match data_dir.filter(|_| !served).map(Store::open_existing) {
        None if served => (Ok(()), Some("served")),
        None => (Err("data directory not set".to_owned()), Some("unset")),
        Some(Ok(store)) => (store.health_check().map_err(|e| e.to_string()), None),
        Some(Err(crate::store::StoreError::Missing { .. })) => (Ok(()), Some("missing")),
        Some(Err(e)) => (Err(e.to_string()), None),
    };
    // Credentials first: without them there is nothing to ask AWS with,
    // and the SDK's chain has already said why.
    let credentials = wiring::aws_credential_source(config).await;
    let identity = match &credentials {
        Ok(_) => {
            let (aws, _) = wiring::aws_clients(config).await;
            aws.own_account().await.map_err(|e| format!("{e:#}"))
        }
        Err(e) => Err(e.clone()),
    };
    let freshdesk = match wiring::freshdesk(config) {
        None => None,
        Some(Err(e)) => Some(("unreachable", e.to_string())),
        Some(Ok(client)) => Some(match client.check_access().await {
            Ok(()) => ("ok", String::new()),
            Err(e) => freshdesk_problem(&e),
        }),
    };
    // The published template, as CloudFormation will ask for it.
    let template = match &config.settings.template {
        None => None,
        Some(location) => Some(match wiring::template_answers(&location.template_url).await {
            Ok(()) => ("ok", String::new()),
            Err(wiring::TemplateProblem::Timeout) => ("timeout", wiring::TEMPLATE_TIMEOUT.as_secs().to_string()),
            Err(wiring::TemplateProblem::Unreachable(cause)) => ("unreachable", cause),
            Err(wiring::TemplateProblem::Status(status)) => ("status", status.to_string()),
        }),
    };
    let cross = config.settings.cross_account_id.to_string();
    let d = &config.discord;
    // The token, as the gateway's supervisor first uses it: one read.
    let discord_token = match &d.token {
        None => None,
        Some(_) => Some(discord_token_problem(d).await),
    };
    let transports: Vec<&str> =
        crate::config::Transport::ALL.into_iter().filter(|t| d.runs(*t)).map(|t| t.code()).collect();
    // Registering the commands needs the application's ID: a token without
    // it starts, then fails at `register-commands`.
    let application_id_missing = d.token.is_some() && d.application_id.is_none();
    let health = Health {
        store: store.clone(),
        identity: Some(Identity::of(identity.clone(), config.settings.cross_account_id)),
        stale_jobs: 0,
        interactions: true,
    };
    // Every key set by the file or the environment; a secret as `[redacted]`.
    let sources: Vec<serde_json::Value> = config
        .sources
        .iter()
        .map(|s| serde_json::json!({ "key": s.key, "value": s.shown, "origin": s.origin.to_string() }))
        .collect();
    let context = serde_json::json!({
        "data_dir": data_dir.map(|d| d.display().to_string()),
        "store": match &store { Ok(()) => "ok", Err(e) => e.as_str() },
        "store_problem": store_problem,
        "socket": socket.map(|p| p.display().to_string()),
        "templates": crate::templates::names(Lang::En).len(),
        "templates_dir": config.templates_dir.as_ref().map(|p| p.display().to_string()),
        "transport": has_transport(d),
        "token": d.token.is_some(),
        "public_key": d.public_key.is_some(),
        "application_id": d.application_id,
        "ops_channel": d.ops_channel_id,
        "listen": config.listen.to_string(),
        "transports": transports,
        "api_base_url": d.api_base_url,
        "discord_token": discord_token.as_ref().map(|(problem, _)| *problem),
        "discord_token_detail": discord_token.as_ref().map(|(_, detail)| detail),
        "application_id_missing": application_id_missing,
        "aws_credentials": credentials.as_ref().ok().map(|source| source.unwrap_or("unknown")),
        "aws_account": identity.as_ref().ok(),
        "aws_error": identity.as_ref().err(),
        "freshdesk": freshdesk.as_ref().map(|(problem, _)| *problem),
        "freshdesk_error": freshdesk.as_ref().map(|(_, error)| error),
        "freshdesk_url": config.freshdesk.as_ref().map(|f| f.base_url.as_str()),
        "template": template.as_ref().map(|(problem, _)| *problem),
        "template_detail": template.as_ref().map(|(_, detail)| detail),
        "template_url": config.settings.template.as_ref().map(|t| t.template_url.as_str()),
        "cross_account_id": cross,
        "sources": sources,
        "backup_dir": config.settings.backup.as_ref().map(|b| b.dir.display().to_string()),
        "backup_keep": config.settings.backup.as_ref().map(|b| b.keep),
    });
    let healthy = health.healthy()
        && !application_id_missing
        && freshdesk.as_ref().is_none_or(|(problem, _)| *problem == "ok")
        && discord_token.as_ref().is_none_or(|(problem, _)| *problem == "ok")
        && template.as_ref().is_none_or(|(problem, _)| *problem == "ok");
    Ok((templates.render(lang, "doctor.md", context)?, healthy))
}

/// What `doctor`'s one Discord read (`GET /gateway/bot`, with the token)
/// found, as its template names it, and the detail shown with it.
async fn discord_token_problem(discord: &crate::config::DiscordConfig) -> (&'static str, String) {
    use crate::discord::gateway::{BotGatewayAnswer, ask_bot_gateway};
    match ask_bot_gateway(&crate::discord::http_client(discord)).await {
        BotGatewayAnswer::Gateway(gateway) => ("ok", gateway.shards.to_string()),
        BotGatewayAnswer::Rejected => ("rejected", "401".to_owned()),
        BotGatewayAnswer::Status(status) => ("failed", status),
        BotGatewayAnswer::NoAnswer(cause) => ("unreachable", cause),
        BotGatewayAnswer::Failed(cause) => ("failed", cause),
    }
}

/// What `doctor`'s one Freshdesk read found, as its template names it,
/// and the detail shown with it.
fn freshdesk_problem(error: &crate::freshdesk::FreshdeskError) -> (&'static str, String) {
    use crate::freshdesk::FreshdeskError;
    match error {
        FreshdeskError::Unauthorized => ("key_refused", "401".into()),
        FreshdeskError::Forbidden => ("key_refused", "403".into()),
        FreshdeskError::Network(cause) => ("unreachable", cause.clone()),
        FreshdeskError::Timeout => ("unreachable", error.to_string()),
        FreshdeskError::NotFound => ("not_found", String::new()),
        FreshdeskError::Invalid { .. }
        | FreshdeskError::RateLimited { .. }
        | FreshdeskError::Server { .. }
        | FreshdeskError::Unexpected { .. } => ("failed", error.to_string()),
    }
}

/// The AWS SDK's targets that warn, raw and several times, of each source
/// of credentials (and of the region) that failed: outside EC2, instance
/// metadata alone gave four lines at every start. `wiring` logs one line of
/// its own instead when no source gave credentials.
const QUIET_AWS: &str = "aws_config::imds=error,aws_config::meta::credentials=error";

/// Logs to stderr: `ORGLINK_LOG` filters (default `info`), and
/// `ORGLINK_LOG_FORMAT=json` gives one JSON object a line. Colours only on
/// a terminal: under systemd or a pipe, stderr goes to a journal or a file,
/// which would keep the escape codes.
fn init_logging() {
    use std::io::IsTerminal;
    let asked = std::env::var("ORGLINK_LOG").ok().filter(|f| !f.trim().is_empty());
    // The SDK is quieted unless the operator's filter names it.
    let directives = match asked {
        Some(asked) if asked.contains("aws_config") => asked,
        Some(asked) => format!("{asked},{QUIET_AWS}"),
        None => format!("info,{QUIET_AWS}"),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("info,{QUIET_AWS}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if std::env::var("ORGLINK_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Prints a reply: to stdout when `code` is 0, else to stderr.
fn report(io: &mut Io<'_>, templates: &Templates, lang: Lang, reply: &Reply, code: u8) -> u8 {
    let mut text = String::new();
    for message in &reply.messages {
        match message.render(templates, lang) {
            Ok(rendered) => {
                if !text.is_empty() {
                    text.push_str("\n\n");
                }
                text.push_str(&rendered.text);
            }
            Err(e) => return internal(io, templates, lang, &anyhow::Error::new(e).context("rendering a message")),
        }
    }
    let stream = if code == 0 { &mut *io.out } else { &mut *io.err };
    let _ = writeln!(stream, "{text}");
    code
}

/// Prints a short apology and, for the operator at the terminal, the cause.
fn internal(io: &mut Io<'_>, templates: &Templates, lang: Lang, error: &anyhow::Error) -> u8 {
    let apology = Message::Internal.render(templates, lang).map(|r| r.text).unwrap_or_default();
    let _ = writeln!(io.err, "{apology}\n\n{error:#}");
    1
}

/// A data directory orglink will not use, said in the user's language:
/// exit 2 (nothing was touched). Any other store failure is internal.
fn store_error(io: &mut Io<'_>, templates: &Templates, lang: Lang, error: crate::store::StoreError) -> u8 {
    use crate::store::StoreError;
    let (problem, found) = match &error {
        StoreError::NotADirectory { path } => (DataDir::NotADirectory(path), &[][..]),
        StoreError::Foreign { path, found } => (DataDir::Foreign(path), found.as_slice()),
        StoreError::Missing { path } => (DataDir::Missing(path), &[][..]),
        StoreError::Directory { .. }
        | StoreError::Sled(_)
        | StoreError::Locked { .. }
        | StoreError::SchemaMismatch { .. }
        | StoreError::UnknownData
        | StoreError::Corrupt { .. } => return internal(io, templates, lang, &anyhow::Error::new(error)),
    };
    data_dir_error(io, templates, lang, problem, found)
}

/// What is wrong with the data directory, and which it is.
enum DataDir<'a> {
    /// Neither `--data-dir`, `data_dir` nor `ORGLINK_DATA_DIR`.
    Unset,
    NotADirectory(&'a std::path::Path),
    Foreign(&'a std::path::Path),
    Missing(&'a std::path::Path),
}

fn data_dir_error(io: &mut Io<'_>, templates: &Templates, lang: Lang, problem: DataDir<'_>, found: &[String]) -> u8 {
    let (problem, dir) = match problem {
        DataDir::Unset => ("unset", None),
        DataDir::NotADirectory(dir) => ("not_a_directory", Some(dir)),
        DataDir::Foreign(dir) => ("foreign", Some(dir)),
        DataDir::Missing(dir) => ("missing", Some(dir)),
    };
    let dir = dir.map(|d| d.display().to_string());
    let context = serde_json::json!({ "problem": problem, "dir": dir, "found": found });
    let text = templates.render(lang, "errors/data_dir.md", context).unwrap_or_else(|e| e.to_string());
    let _ = writeln!(io.err, "{text}");
    2
}

fn config_error(io: &mut Io<'_>, templates: &Templates, lang: Lang, error: &ConfigError) -> u8 {
    let expected = |expected: crate::config::Expected, suggestion: Option<&str>| {
        let expected = serde_json::to_value(expected).expect("serialises");
        let context = serde_json::json!({ "expected": expected, "suggestion": suggestion });
        templates.render(lang, "errors/config_expected.md", context).unwrap_or_default()
    };
    let mut missing: &[&str] = &[];
    let (problem, key, origin, detail) = match error {
        ConfigError::Unreadable { path, source } => {
            ("unreadable", None, path.display().to_string(), source.to_string())
        }
        ConfigError::Syntax { path, message } => ("syntax", None, path.display().to_string(), message.clone()),
        ConfigError::Empty { key, origin } => ("empty", Some(*key), origin.to_string(), String::new()),
        ConfigError::Malformed { key, origin, expected: what } => {
            ("invalid", Some(*key), origin.to_string(), expected(*what, None))
        }
        ConfigError::NoScheme { key, origin, suggestion } => {
            ("invalid", Some(*key), origin.to_string(), expected(crate::config::Expected::Url, Some(suggestion)))
        }
        ConfigError::Incomplete { set, origin, missing: absent } => {
            missing = absent;
            let what = match *set {
                "discord.transports" => crate::config::Expected::Credentials,
                _ => crate::config::Expected::Complete,
            };
            ("incomplete", Some(*set), origin.to_string(), expected(what, None))
        }
        ConfigError::Invalid { key, origin, error } => {
            let detail = Message::Error(UserError::Invalid(error.clone()))
                .render(templates, lang)
                .map(|r| r.text)
                .unwrap_or_else(|_| error.to_string());
            ("invalid", Some(*key), origin.to_string(), detail)
        }
    };
    let context =
        serde_json::json!({ "problem": problem, "key": key, "origin": origin, "detail": detail, "missing": missing });
    let text = templates.render(lang, "errors/config.md", context).unwrap_or_else(|_| error.to_string());
    let _ = writeln!(io.err, "{text}");
    2
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// `--help` explains every argument of every command, and every
    /// `--tenant` says it is a Discord server ID.
    #[test]
    fn every_argument_has_help_text() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                match arg.get_help().map(ToString::to_string) {
                    None => missing.push(format!("{path} {id}: no help")),
                    Some(help) if id == "tenant" && !help.contains("Discord server ID") => {
                        missing.push(format!("{path} --tenant does not say it is a Discord server ID: {help}"))
                    }
                    Some(_) => {}
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &format!("{path} {}", sub.get_name()), missing);
                }
                assert!(sub.get_about().is_some(), "{path} {} has no description", sub.get_name());
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "orglink", &mut missing);
        assert!(missing.is_empty(), "{missing:#?}");
    }

    #[test]
    fn sweep_names_every_job() {
        let cli = Cli::command();
        let sweep = cli.find_subcommand("sweep").expect("sweep");
        let job = sweep.get_arguments().find(|a| a.get_id() == "job").expect("--job");
        let help = job.get_help().expect("help").to_string();
        for job in crate::scheduler::Job::ALL {
            assert!(help.contains(job.name()), "{} missing from: {help}", job.name());
        }
    }
}

//! Errors shown to the user, in their language: those they caused and can
//! fix and, named as ours, the failures of orglink they should know the
//! kind of (AWS could not be asked).

use crate::domain::import::RowProblem;
use crate::domain::quota::Quota;
use crate::domain::{
    AccountId, ChatId, LinkState, ParseError, Partition, TenantDecision, TenantId, TenantState, Unasked,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Invalid(#[from] ParseError),
    #[error("account {account} is not registered here")]
    AccountNotFound { account: AccountId },
    #[error("account {account} is already registered for this tenant")]
    AlreadyRegistered { account: AccountId },
    #[error("account {account} is linked through another reseller")]
    LinkedElsewhere { account: AccountId },
    #[error("account {account} has {max} open claims already")]
    TooManyClaims { account: AccountId, max: usize },
    #[error("{claims} tenants claim account {account} and none owns it: name one")]
    AmbiguousClaim { account: AccountId, claims: usize },
    #[error("tenant {to} holds its own claim on account {account} already")]
    TransferTargetHasClaim { account: AccountId, to: TenantId },
    #[error("the edit of account {account} changes nothing")]
    NothingToChange { account: AccountId },
    #[error("the role trusts the external ID of none of the {claims} claims on account {account}")]
    NoClaimTrusted { account: AccountId, claims: usize },
    #[error("account {account} is a management account: it needs consent to assignment")]
    ManagementAccount { account: AccountId },
    #[error("account {account} is {}: cannot {action} now", state.code())]
    NotNow { account: AccountId, state: LinkState, action: Action },
    #[error("the role ARN names account {arn_account}, not {account}")]
    ArnAccountMismatch { account: AccountId, arn_account: AccountId },
    #[error("not allowed: needs {permission:?}")]
    NotAllowed { permission: Permission, role: Option<ChatId> },
    #[error("orglink commands work inside a server, not in direct messages")]
    DirectMessage,
    #[error("this command or button is not known (any more)")]
    UnknownInteraction,
    #[error("no role ARN is recorded for account {account}")]
    NoRoleRecorded { account: AccountId },
    #[error("account {account} cannot be invited in state {}", state.code())]
    CannotInvite { account: AccountId, state: LinkState },
    #[error("this server is waiting for the distributor's approval")]
    TenantPending,
    #[error("the distributor has not approved this server")]
    TenantDenied,
    #[error("orglink is suspended for this server: contact the distributor")]
    TenantSuspended,
    #[error("cannot {} tenant {tenant}: it is {}", decision.code(), from.map_or("unknown", TenantState::code))]
    TenantDecision { tenant: TenantId, from: Option<TenantState>, decision: TenantDecision },
    #[error("{tenant} is the operations server: it is never held for approval")]
    OperationsServer { tenant: TenantId },
    /// The tenant used all a quota allows: nothing was done.
    #[error("over the {} quota of {limit}", quota.code())]
    QuotaExceeded { quota: Quota, limit: u32, resets_at: Option<time::OffsetDateTime> },
    #[error("the role ARN is in partition {}, orglink works in {}", arn_partition.as_str(), partition.as_str())]
    PartitionMismatch { partition: Partition, arn_partition: Partition },
    /// Rows of an import that cannot be registered: nothing was.
    #[error("{} rows of the file cannot be registered", problems.len())]
    ImportRejected { problems: Vec<RowProblem> },
    /// No notification of this number waits or was given up on.
    #[error("no notification {id} waits in the outbox or among the dead letters")]
    OutboxItemNotFound { id: crate::domain::outbox::OutboxId },
    /// A notification that is still waiting: only a dead letter is replayed.
    #[error("notification {id} is waiting to go out already, not a dead letter")]
    NotADeadLetter { id: crate::domain::outbox::OutboxId },
    /// A file given to restore that is not a sound backup: nothing was
    /// written.
    #[error("{file} cannot be restored: {problem:?}")]
    BackupUnusable { file: String, problem: crate::store::backup::Unusable },
    /// A restore goes into a new or empty directory only: nothing changed.
    #[error("{data_dir} is not empty")]
    RestoreNotEmpty { data_dir: String },
    /// The backup job was asked for and `backup.dir` is not set.
    #[error("backups are off: backup.dir is not set")]
    BackupsOff,
    /// The quick-create link was asked for and `instructions.template_url`
    /// is not set.
    #[error("no published role template: instructions.template_url is not set")]
    NoTemplateUrl,
    /// orglink's problem, not the user's: nothing was recorded.
    #[error("orglink could not ask AWS: {cause}")]
    CouldNotAskAws { cause: Unasked },
    /// A file sent from a chat larger than orglink reads (`size`: as
    /// declared; none when found while reading it).
    #[error("the attached file is larger than {max} bytes")]
    AttachmentTooLarge { size: Option<u64>, max: u64 },
    /// An attachment whose address is not on the chat's file server: it is
    /// not fetched.
    #[error("the attached file is not on Discord's file server")]
    AttachmentNotFromChat,
    /// The chat's file server did not hand over the file: not the user's
    /// doing (`ours`), nothing was recorded.
    #[error("the attached file could not be fetched: {}", cause.code())]
    AttachmentUnavailable { cause: Unfetched },
    /// A file from a chat with more rows than `CHAT_MAX_ROWS`: nothing
    /// was registered.
    #[error("the file has {rows} rows, more than the {max} a chat may send")]
    ImportTooLarge { rows: usize, max: usize },
    /// An import that would take the tenant over its open claims quota:
    /// nothing was registered.
    #[error("{rows} new registrations and {open} open exceed the open claims quota of {limit}")]
    ImportOverQuota { rows: usize, open: usize, limit: u32 },
}

/// Why a file could not be fetched from the chat's file server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfetched {
    /// No connection, or it broke off.
    Unreachable,
    /// No complete answer within the client's timeout.
    TimedOut,
    /// An HTTP status other than success.
    Status(u16),
}

impl Unfetched {
    /// Its name in templates and logs: stable.
    pub fn code(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::TimedOut => "timed_out",
            Self::Status(_) => "status",
        }
    }
}

impl UserError {
    /// A failure of orglink's own (its credentials, its identity, a service
    /// it needs), shown so the user knows it is not theirs to fix: the CLI
    /// exits 1 for it, as for any failure of ours, not 2 as for input.
    pub fn ours(&self) -> bool {
        match self {
            Self::CouldNotAskAws { .. } | Self::AttachmentUnavailable { .. } => true,
            Self::Invalid(_)
            | Self::AccountNotFound { .. }
            | Self::AlreadyRegistered { .. }
            | Self::LinkedElsewhere { .. }
            | Self::TooManyClaims { .. }
            | Self::AmbiguousClaim { .. }
            | Self::TransferTargetHasClaim { .. }
            | Self::NothingToChange { .. }
            | Self::NoClaimTrusted { .. }
            | Self::ManagementAccount { .. }
            | Self::NotNow { .. }
            | Self::ArnAccountMismatch { .. }
            | Self::NotAllowed { .. }
            | Self::DirectMessage
            | Self::UnknownInteraction
            | Self::NoRoleRecorded { .. }
            | Self::CannotInvite { .. }
            | Self::TenantPending
            | Self::TenantDenied
            | Self::TenantSuspended
            | Self::TenantDecision { .. }
            | Self::OperationsServer { .. }
            | Self::PartitionMismatch { .. }
            | Self::ImportRejected { .. }
            | Self::OutboxItemNotFound { .. }
            | Self::NotADeadLetter { .. }
            | Self::BackupUnusable { .. }
            | Self::RestoreNotEmpty { .. }
            | Self::BackupsOff
            | Self::NoTemplateUrl
            | Self::AttachmentTooLarge { .. }
            | Self::AttachmentNotFromChat
            | Self::ImportTooLarge { .. }
            | Self::ImportOverQuota { .. }
            | Self::QuotaExceeded { .. } => false,
        }
    }
}

/// What a command needs of the person who runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// The tenant's configured role for account commands, or Manage Server.
    AccountRole,
    /// Manage Server in the tenant's server.
    ManageServer,
    /// The distributor's operations role, in the operations server.
    Ops,
}

/// What a user tried, for messages that explain why not now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    RotateExternalId,
    RecordRole,
    Revive,
    Remove,
    Edit,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RotateExternalId => f.write_str("rotate the external ID"),
            Self::RecordRole => f.write_str("record another role"),
            Self::Revive => f.write_str("revive the registration"),
            Self::Remove => f.write_str("remove the registration"),
            Self::Edit => f.write_str("edit the registration"),
        }
    }
}

/// What a handler returns when it does not succeed: the user's mistake, or
/// ours (logged with context, answered with a short apology).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<ParseError> for AppError {
    fn from(e: ParseError) -> Self {
        Self::User(e.into())
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

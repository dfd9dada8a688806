//! Errors a user caused and can fix: shown to them, in their language.

use crate::domain::{AccountId, LinkState, ParseError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Invalid(#[from] ParseError),
    #[error("account {account} is not registered here")]
    AccountNotFound { account: AccountId },
    #[error("account {account} is already registered for this tenant")]
    AlreadyRegistered { account: AccountId },
    #[error("account {account} is registered by someone else")]
    RegisteredElsewhere { account: AccountId },
    #[error("account {account} is a management account: it needs consent to assignment")]
    ManagementAccount { account: AccountId },
    #[error("account {account} is {}: cannot {action} now", state.code())]
    NotNow { account: AccountId, state: LinkState, action: Action },
}

/// What a user tried, for messages that explain why not now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    RotateExternalId,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RotateExternalId => f.write_str("rotate the external ID"),
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

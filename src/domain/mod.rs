//! Pure types and rules: no I/O here.
//!
//! Every value a user can type is parsed into one of these types; a failed
//! parse is a [`ParseError`] that names the input and what was expected, and
//! that the app turns into a localised message.

/// A validated string type: trimmed of what pasting drags along, checked by
/// `$valid`, refused as `ParseError::$error`.
macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $valid:expr, $error:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::ParseError;
            fn from_str(input: &str) -> Result<Self, Self::Err> {
                let trimmed = $crate::domain::trim_pasted(input);
                let valid: fn(&str) -> bool = $valid;
                if valid(trimmed) {
                    Ok(Self(trimmed.to_owned()))
                } else {
                    Err($crate::domain::ParseError::$error { input: $crate::domain::quote_input(input) })
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::domain::ParseError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                value.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A free-text type: trimmed of what pasting drags along, then 1 to `$max`
/// characters with none that an output format cannot carry safely
/// (`names::free_text`), refused as `ParseError::$error` naming the problem.
/// A value read back from the store is taken as stored: it was accepted by
/// the rules of its day, and refusing it now would make the record
/// unreadable; every output quotes or escapes it anyway.
macro_rules! free_text_newtype {
    ($(#[$doc:meta])* $name:ident, $max:expr, $error:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize)]
        #[serde(into = "String")]
        pub struct $name(String);

        impl $name {
            /// The most characters it may hold.
            pub const MAX_CHARS: usize = $max;

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::ParseError;
            fn from_str(input: &str) -> Result<Self, Self::Err> {
                let trimmed = $crate::domain::trim_pasted(input);
                let skipped = input[..input.find(trimmed).unwrap_or(0)].chars().count();
                match $crate::domain::names::free_text(trimmed, $max, skipped) {
                    Ok(()) => Ok(Self(trimmed.to_owned())),
                    Err(problem) => {
                        Err($crate::domain::ParseError::$error { input: $crate::domain::quote_input(input), problem })
                    }
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::domain::ParseError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                value.parse()
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <String as ::serde::Deserialize>::deserialize(deserializer).map(Self)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

mod account;
mod account_id;
pub mod claims;
mod correction;
mod due;
pub mod effects;
mod email;
mod external_id;
pub mod import;
pub mod instant;
mod invitation;
mod lifecycle;
pub mod names;
pub mod outbox;
pub mod pipeline;
mod probe;
pub mod quick_create;
pub mod quota;
mod role_arn;
mod support;
mod tenant;
mod ticket;
mod verification;

#[cfg(test)]
pub(crate) use account::sample as sample_account;
pub use account::{
    Account, CheckItem, CheckStatus, ChecklistEntry, ListFilter, ManagementAccountRefused, NewAccount, PriceBookChoice,
    Progress, QueuedInvitation, Responsible, RoleRecord,
};
pub use account_id::AccountId;
pub use correction::{CorrectionRefused, Edit};
pub use due::{DueJob, DuePlan, FairShare};
pub use effects::{Audience, Effects, Notice, TicketEffect, Tone};
pub use email::Email;
pub use external_id::{ExternalId, ExternalIdPrefix};
pub use invitation::{ConstraintReason, HandshakeId, HandshakeState, Invitation};
pub use lifecycle::{BlockReason, Event, IllegalTransition, LinkState, Transition};
pub use names::{
    CorrectionReason, CustomerName, InvitationNote, PriceBookName, RoleDescription, RoleName, TenantId, TextProblem,
    TicketReason,
};
pub use probe::{BadProbePlan, ProbeOutcome, ProbePhase, ProbePlan, ProbeRecord, ProbeResult};
pub use role_arn::{Partition, RoleArn, RoleArnProblem};
pub use support::{
    AccountKind, AwsSupportTier, Lang, ManagedPolicy, SupportLevel, SupportPlanGroup, SupportTier, TierNotChecked,
};
pub use tenant::{
    Admission, ChatId, Decided, IllegalDecision, Refusal, TenantDecision, TenantPolicy, TenantSettings, TenantState,
    TenantStatus,
};
pub use ticket::{TicketKind, TicketRecord, TicketRequest};
pub use verification::{Check, CheckName, GUARD_ASSUME_ROLE_CALLS, Outcome, Problem, Unasked, VerificationReport};

/// A value typed by a user that could not be parsed. Each variant carries the
/// input as received (quoted, shortened) so the message can show it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{input} is not a 12-digit AWS account ID")]
    AccountId { input: String },
    #[error("{input} is not an e-mail address")]
    Email { input: String },
    #[error("{input} is not an IAM role ARN: {problem:?}")]
    RoleArn { input: String, problem: RoleArnProblem },
    #[error("{input} is not a valid external ID")]
    ExternalId { input: String },
    #[error("{input} is not a valid external ID prefix")]
    ExternalIdPrefix { input: String },
    #[error("{input} is not a valid IAM role name")]
    RoleName { input: String },
    #[error("{input} is not a valid tenant")]
    TenantId { input: String },
    #[error("{input} is not a valid customer name: {problem}")]
    CustomerName { input: String, problem: TextProblem },
    #[error("{input} is not a valid price book name: {problem}")]
    PriceBookName { input: String, problem: TextProblem },
    #[error("{input} is not a support tier")]
    SupportTier { input: String },
    #[error("{input} is not a support plan group")]
    SupportPlanGroup { input: String },
    #[error("{input} is not an account kind")]
    AccountKind { input: String },
    #[error("{input} is not a language")]
    Lang { input: String },
    #[error("{input} is not an instructions format")]
    Format { input: String },
    #[error("{input} is not an S3 bucket name")]
    Bucket { input: String },
    #[error("{input} is not an S3 object key")]
    ObjectKey { input: String },
    #[error("{input} is not an AWS region")]
    Region { input: String },
    #[error("{input} is not a channel, role or server ID")]
    ChatId { input: String },
    #[error("{input} is not a valid role description: {problem}")]
    RoleDescription { input: String, problem: TextProblem },
    #[error("{input} is not a readable UTF-8 CSV file")]
    ImportFile { input: String },
    #[error("{input} is not an account state")]
    LinkState { input: String },
    #[error("{input} is not a handshake ID")]
    HandshakeId { input: String },
    #[error("{input} is not a valid invitation note: {problem}")]
    InvitationNote { input: String, problem: TextProblem },
    #[error("{input} is not a valid ticket reason: {problem}")]
    TicketReason { input: String, problem: TextProblem },
    #[error("{input} is not a valid reason: {problem}")]
    CorrectionReason { input: String, problem: TextProblem },
    #[error("{input} is not an outbox item's number")]
    OutboxId { input: String },
}

/// Characters that pasting drags along and that nobody means to type.
fn is_invisible(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}')
}

/// Trims surrounding whitespace, including non-breaking and zero-width spaces.
pub fn trim_pasted(input: &str) -> &str {
    input.trim_matches(is_invisible)
}

/// The input as shown back in a message: control and invisible characters
/// escaped, shortened to a readable length.
pub fn quote_input(input: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut quoted = String::new();
    for (i, c) in input.chars().enumerate() {
        if i == MAX_CHARS {
            quoted.push('…');
            break;
        }
        // What free text refuses is shown as its code, never as itself: a
        // direction override would reorder the message around it.
        if c.is_control() || (is_invisible(c) && c != ' ') || !names::allowed_in_free_text(c) {
            quoted.extend(c.escape_unicode());
        } else {
            quoted.push(c);
        }
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_invisible_characters() {
        assert_eq!(trim_pasted("\u{feff}\u{200b} abc\u{a0}\u{2060}\n"), "abc");
        assert_eq!(trim_pasted("a b"), "a b");
    }

    #[test]
    fn quoting_escapes_and_shortens() {
        assert_eq!(quote_input("a\u{200b}b\n"), "a\\u{200b}b\\u{a}");
        assert_eq!(quote_input(&"x".repeat(200)).chars().count(), 81);
    }
}

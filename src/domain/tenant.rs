//! A tenant's own settings: where its notifications go, its language, who
//! may run account commands.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Lang, ParseError, quote_input, trim_pasted};

/// A chat platform ID (a Discord snowflake): a channel, role, server or user.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ChatId(u64);

impl ChatId {
    pub fn new(id: u64) -> Option<Self> {
        (id != 0).then_some(Self(id))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl FromStr for ChatId {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = trim_pasted(input);
        trimmed
            .parse::<u64>()
            .ok()
            .filter(|_| trimmed.bytes().all(|b| b.is_ascii_digit()))
            .and_then(Self::new)
            .ok_or_else(|| ParseError::ChatId { input: quote_input(input) })
    }
}

impl TryFrom<String> for ChatId {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ChatId> for String {
    fn from(value: ChatId) -> Self {
        value.0.to_string()
    }
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChatId({})", self.0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Where the tenant's notifications are posted.
    pub channel: Option<ChatId>,
    /// The tenant's language, used where the user's is not known.
    pub language: Option<Lang>,
    /// The role allowed to run account commands (besides Manage Server).
    pub account_role: Option<ChatId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chat_ids_are_positive_integers() {
        assert_eq!("900000000000000001".parse::<ChatId>().unwrap().get(), 900000000000000001);
        for bad in ["", "0", "-1", "+5", "1e5", "abc", "18446744073709551616"] {
            assert!(bad.parse::<ChatId>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(id in 1u64..) {
            prop_assert_eq!(id.to_string().parse::<ChatId>().unwrap().get(), id);
        }

        #[test]
        fn never_panics(input in "\\PC*") {
            let _ = input.parse::<ChatId>();
        }
    }
}

//! External IDs: the shared secret-ish value a customer's role trust policy
//! requires, so that only orglink's platform, asking on behalf of this very
//! customer, can assume the role (the confused-deputy guard).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{ParseError, quote_input, trim_pasted};

/// Crockford's base32 alphabet: no I, L, O or U, so an ID read aloud or
/// retyped from a screenshot is not ambiguous.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Random characters after the prefix: 20 × 5 = 100 bits of entropy.
const RANDOM_CHARS: usize = 20;
/// Bytes drawn to fill those 100 bits (the 4 left over are dropped).
const RANDOM_BYTES: usize = (RANDOM_CHARS * 5).div_ceil(8);

/// Whether `c` is allowed in an external ID by AWS (`[\w+=,.@:/-]`).
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c)
}

/// The prefix every generated external ID starts with (default `CA`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExternalIdPrefix(String);

impl ExternalIdPrefix {
    pub const MAX_LEN: usize = 32;
}

impl Default for ExternalIdPrefix {
    fn default() -> Self {
        Self("CA".to_owned())
    }
}

impl FromStr for ExternalIdPrefix {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.len() <= Self::MAX_LEN && input.chars().all(allowed) {
            Ok(Self(input.to_owned()))
        } else {
            Err(ParseError::ExternalIdPrefix { input: quote_input(input) })
        }
    }
}

impl TryFrom<String> for ExternalIdPrefix {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ExternalIdPrefix> for String {
    fn from(value: ExternalIdPrefix) -> Self {
        value.0
    }
}

/// An external ID as AWS accepts it: 2–1224 characters of `[\w+=,.@:/-]`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExternalId(String);

impl ExternalId {
    pub const MIN_LEN: usize = 2;
    pub const MAX_LEN: usize = 1224;

    /// A fresh external ID from the operating system's CSPRNG.
    pub fn generate(prefix: &ExternalIdPrefix) -> Self {
        let mut entropy = [0u8; RANDOM_BYTES];
        getrandom::fill(&mut entropy).expect("the operating system's random source is available");
        Self::from_entropy(prefix, entropy)
    }

    /// The external ID that `entropy` gives: the prefix, then the 100 bits in
    /// base32. Pure, so tests can pin it.
    pub fn from_entropy(prefix: &ExternalIdPrefix, entropy: [u8; RANDOM_BYTES]) -> Self {
        let bits = entropy.iter().fold(0u128, |acc, byte| (acc << 8) | u128::from(*byte));
        let mut id = String::with_capacity(prefix.0.len() + RANDOM_CHARS);
        id.push_str(&prefix.0);
        for i in (0..RANDOM_CHARS).rev() {
            id.push(ALPHABET[((bits >> (i * 5)) & 0x1f) as usize] as char);
        }
        Self(id)
    }

    /// A fresh external ID shaped like this one that is not this one: what
    /// the confused-deputy guard offers AWS to prove the role's trust policy
    /// wants this ID exactly. It keeps this ID's prefix, so a condition like
    /// `StringLike "CA*"`, which accepts every ID orglink issues (another
    /// tenant's claim on the account too), is caught. Its 100 fresh random
    /// bits make it anyone's real ID with odds of 2^-100 per ID issued.
    pub fn decoy(&self) -> Self {
        let prefix = self.generated_prefix().unwrap_or_default();
        loop {
            let decoy = Self::generate(&prefix);
            if decoy != *self {
                return decoy;
            }
        }
    }

    /// The prefix this ID was generated with, when it has the generated
    /// shape (a valid prefix, then the random characters).
    fn generated_prefix(&self) -> Option<ExternalIdPrefix> {
        let split = self.0.len().checked_sub(RANDOM_CHARS)?;
        let (head, tail) = (self.0.get(..split)?, self.0.get(split..)?);
        if tail.bytes().all(|b| ALPHABET.contains(&b)) { head.parse().ok() } else { None }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ExternalId {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = trim_pasted(input);
        if (Self::MIN_LEN..=Self::MAX_LEN).contains(&trimmed.len()) && trimmed.chars().all(allowed) {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(ParseError::ExternalId { input: quote_input(input) })
        }
    }
}

impl TryFrom<String> for ExternalId {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ExternalId> for String {
    fn from(value: ExternalId) -> Self {
        value.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debug output (logs) never shows the whole ID.
impl fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.0.chars().take(4).collect();
        write!(f, "ExternalId({shown}…)")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_have_the_prefix_and_100_random_bits() {
        let prefix = ExternalIdPrefix::default();
        let id = ExternalId::generate(&prefix);
        assert!(id.as_str().starts_with("CA"));
        assert_eq!(id.as_str().len(), 2 + RANDOM_CHARS);
        assert_eq!(id.as_str().parse::<ExternalId>().unwrap(), id);
        let all_ones = ExternalId::from_entropy(&prefix, [0xff; RANDOM_BYTES]);
        assert_eq!(all_ones.as_str(), format!("CA{}", "Z".repeat(RANDOM_CHARS)));
        let zeros = ExternalId::from_entropy(&prefix, [0; RANDOM_BYTES]);
        assert_eq!(zeros.as_str(), format!("CA{}", "0".repeat(RANDOM_CHARS)));
    }

    #[test]
    fn generated_ids_do_not_repeat() {
        let prefix = ExternalIdPrefix::default();
        let ids: HashSet<_> = (0..10_000).map(|_| ExternalId::generate(&prefix)).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn a_decoy_is_a_new_id_with_the_same_prefix() {
        for prefix in ["CA", "", "ACME-2026/"] {
            let prefix: ExternalIdPrefix = prefix.parse().unwrap();
            let id = ExternalId::generate(&prefix);
            let decoys: HashSet<_> = (0..100).map(|_| id.decoy()).collect();
            assert_eq!(decoys.len(), 100, "fresh every time");
            for decoy in &decoys {
                assert_ne!(*decoy, id);
                assert!(decoy.as_str().starts_with(&prefix.0), "{decoy} keeps {prefix:?}");
                assert_eq!(decoy.as_str().len(), id.as_str().len());
                assert_eq!(decoy.as_str().parse::<ExternalId>().unwrap(), *decoy, "AWS accepts it");
            }
        }
        // Not of the generated shape (lower case, too short): the default prefix.
        for odd in ["ca", "customer-chosen-id_1", "ab0123456789abcdefghjk"] {
            let decoy = odd.parse::<ExternalId>().unwrap().decoy();
            assert!(decoy.as_str().starts_with("CA") && decoy.as_str().len() == 2 + RANDOM_CHARS, "{decoy}");
        }
    }

    #[test]
    fn debug_does_not_reveal_the_id() {
        let id = ExternalId::from_entropy(&ExternalIdPrefix::default(), [0xab; RANDOM_BYTES]);
        assert!(!format!("{id:?}").contains(id.as_str()));
    }

    #[test]
    fn parses_what_aws_accepts_only() {
        assert!("CA".parse::<ExternalId>().is_ok());
        assert!("a_b+c=d,e.f@g:h/i-j".parse::<ExternalId>().is_ok());
        assert!("x".parse::<ExternalId>().is_err());
        assert!("has space".parse::<ExternalId>().is_err());
        assert!("ñ1".parse::<ExternalId>().is_err());
        assert!("a".repeat(1225).parse::<ExternalId>().is_err());
        assert!("a".repeat(1224).parse::<ExternalId>().is_ok());
        assert!("".parse::<ExternalIdPrefix>().is_ok());
        assert!("C A".parse::<ExternalIdPrefix>().is_err());
    }

    proptest! {
        #[test]
        fn every_generated_id_is_valid_for_aws(entropy in any::<[u8; RANDOM_BYTES]>(), prefix in "[A-Za-z0-9_+=,.@:/-]{0,32}") {
            let prefix: ExternalIdPrefix = prefix.parse().unwrap();
            let id = ExternalId::from_entropy(&prefix, entropy);
            prop_assert!(id.as_str().len() >= ExternalId::MIN_LEN);
            prop_assert!(id.as_str().chars().all(allowed));
            prop_assert_eq!(id.as_str().parse::<ExternalId>().unwrap(), id);
        }

        #[test]
        fn parsing_never_panics(input in "\\PC*") {
            let _ = input.parse::<ExternalId>();
        }
    }
}

//! The 12-digit AWS account number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ParseError;

/// An AWS account ID: exactly 12 ASCII digits (leading zeros are significant).
///
/// Parsing accepts what people paste: surrounding whitespace (including
/// non-breaking and zero-width spaces) and single spaces or dashes between
/// digit groups, as in `1234-5678-9012` or ` 1234 5678 9012 `.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId([u8; 12]);

impl AccountId {
    pub fn as_str(&self) -> &str {
        // The bytes are ASCII digits by construction.
        std::str::from_utf8(&self.0).expect("account id is ASCII")
    }

    /// The key under which the account is stored: its 12 digits.
    pub fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let digits: [u8; 12] = bytes.try_into().ok()?;
        digits.iter().all(u8::is_ascii_digit).then_some(Self(digits))
    }
}

impl FromStr for AccountId {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let refuse = || ParseError::AccountId { input: super::quote_input(input) };
        let trimmed = super::trim_pasted(input);
        let mut digits = [0u8; 12];
        let mut count = 0;
        let mut previous_was_separator = true; // no separator may come first
        for c in trimmed.chars() {
            match c {
                '0'..='9' => {
                    if count == 12 {
                        return Err(refuse());
                    }
                    digits[count] = c as u8;
                    count += 1;
                    previous_was_separator = false;
                }
                ' ' | '-' | '\u{a0}' if !previous_was_separator => previous_was_separator = true,
                _ => return Err(refuse()),
            }
        }
        if count != 12 || previous_was_separator {
            return Err(refuse());
        }
        Ok(Self(digits))
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.as_str())
    }
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Digits;
        impl serde::de::Visitor<'_> for Digits {
            type Value = AccountId;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a 12-digit AWS account ID")
            }

            // What orglink stored is its 12 digits, read as they are (every
            // record and pipeline row holds one); anything else goes
            // through the parser people's input does.
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<AccountId, E> {
                AccountId::from_bytes(s.as_bytes()).map_or_else(|| s.parse().map_err(E::custom), Ok)
            }
        }
        deserializer.deserialize_str(Digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_back_stored_digits_and_pasted_forms_alike() {
        let id: AccountId = "123456789012".parse().unwrap();
        assert_eq!(serde_json::from_str::<AccountId>("\"123456789012\"").unwrap(), id);
        assert_eq!(crate::store::codec::decode::<AccountId>(&crate::store::codec::encode(&id)).unwrap(), id);
        assert_eq!(serde_json::from_str::<AccountId>("\"1234-5678-9012\"").unwrap(), id, "as a person pastes it");
        for bad in ["\"12345678901x\"", "\"1234567890123\"", "123456789012"] {
            assert!(serde_json::from_str::<AccountId>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accepts_what_people_paste() {
        for input in
            ["123456789012", "1234-5678-9012", " 1234 5678 9012 ", "\u{200b}123456789012\u{a0}", "\t123-456-789-012\n"]
        {
            assert_eq!(input.parse::<AccountId>().unwrap().as_str(), "123456789012", "{input:?}");
        }
        assert_eq!("000000000001".parse::<AccountId>().unwrap().as_str(), "000000000001");
    }

    #[test]
    fn refuses_everything_else() {
        for input in [
            "",
            "   ",
            "12345678901",
            "1234567890123",
            "12345678901a",
            "arn:aws:iam::123456789012:role/x",
            "1234--5678-9012",
            "-123456789012",
            "123456789012-",
            "1234_5678_9012",
            "１２３４５６７８９０１２", // full-width digits
            "12345678901٢",             // Arabic-Indic digit
        ] {
            let err = input.parse::<AccountId>().unwrap_err();
            assert!(matches!(err, ParseError::AccountId { .. }), "{input:?}");
        }
    }

    proptest! {
        #[test]
        fn any_twelve_digits_round_trip(digits in "[0-9]{12}") {
            let id: AccountId = digits.parse().unwrap();
            prop_assert_eq!(id.as_str(), digits.as_str());
            prop_assert_eq!(AccountId::from_bytes(id.as_bytes()), Some(id));
        }

        #[test]
        fn grouped_with_separators_parses_to_the_digits(
            groups in proptest::collection::vec("[0-9]{1,4}", 1..12),
            sep in prop_oneof![Just(" "), Just("-")],
        ) {
            let joined: String = groups.concat();
            let input = groups.join(sep);
            let parsed = input.parse::<AccountId>();
            if joined.len() == 12 {
                prop_assert_eq!(parsed.unwrap().to_string(), joined);
            } else {
                prop_assert!(parsed.is_err());
            }
        }

        #[test]
        fn never_panics_and_only_yields_twelve_digits(input in "\\PC*") {
            if let Ok(id) = input.parse::<AccountId>() {
                prop_assert!(id.as_str().len() == 12);
                prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }
}

//! The account's root e-mail address (optional at registration).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// A syntactically valid e-mail address with a dotted domain, as AWS requires
/// for an account's root user.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Email {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let refuse = || ParseError::Email { input: super::quote_input(input) };
        let trimmed = super::trim_pasted(input);
        // AWS caps root e-mail addresses at 64 characters.
        if trimmed.len() > 64 || !trimmed.is_ascii() {
            return Err(refuse());
        }
        let parsed = email_address::EmailAddress::from_str(trimmed).map_err(|_| refuse())?;
        // Refuse forms that RFC 5322 allows but no AWS account uses: display
        // names, quoted local parts, IP-literal or dotless domains.
        let domain = parsed.domain();
        let plain_domain = domain.contains('.')
            && domain
                .split('.')
                .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if parsed.email() != trimmed || parsed.local_part().starts_with('"') || !plain_domain {
            return Err(refuse());
        }
        Ok(Self(trimmed.to_owned()))
    }
}

impl TryFrom<String> for Email {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for input in ["root@example.com", " aws+prod@sub.example.co.uk ", "a.b-c_d@x-y.io"] {
            let email: Email = input.parse().unwrap();
            assert_eq!(email.as_str(), input.trim());
        }
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for input in [
            "",
            "root",
            "root@",
            "@example.com",
            "root@localhost",
            "root@@example.com",
            "Root <root@example.com>",
            "\"quoted\"@example.com",
            "root@[127.0.0.1]",
            "root@exa mple.com",
            "root@example..com",
            "rööt@example.com",
            // Free text refuses these everywhere; an address is ASCII, so
            // it can hold none of them.
            "ro\u{2028}ot@example.com",
            "root@exa\u{202e}mple.com",
            "ro\u{200b}ot@example.com",
            "root\u{fffe}@example.com",
            "ro\u{7}ot@example.com",
            "ro\not@example.com",
        ] {
            assert!(input.parse::<Email>().is_err(), "{input:?}");
        }
        assert!(format!("{}@example.com", "a".repeat(60)).parse::<Email>().is_err());
    }

    proptest! {
        #[test]
        fn never_panics(input in "\\PC*") {
            let _ = input.parse::<Email>();
        }

        #[test]
        fn simple_addresses_round_trip(local in "[a-z0-9][a-z0-9.+_-]{0,20}[a-z0-9]", domain in "[a-z0-9]{1,10}\\.[a-z]{2,6}") {
            let input = format!("{local}@{domain}");
            if !local.contains("..") {
                prop_assert_eq!(input.parse::<Email>().unwrap().to_string(), input);
            }
        }
    }
}

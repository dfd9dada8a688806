//! Free-form names typed by users, each with its own bounds.

/// Printable text of 1 to `max` characters, no control characters.
fn printable(s: &str, max: usize) -> bool {
    let count = s.chars().count();
    (1..=max).contains(&count) && !s.chars().any(char::is_control)
}

string_newtype!(
    /// A tenant: a Discord server (its guild ID) or a name given on the CLI.
    /// 1–64 characters of letters, digits, `_`, `.` and `-`.
    TenantId,
    |s| (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
    TenantId
);

string_newtype!(
    /// The reseller's customer who owns the account (1–100 characters).
    CustomerName,
    |s| printable(s, 100),
    CustomerName
);

string_newtype!(
    /// A custom price book's name on the platform (1–100 characters).
    PriceBookName,
    |s| printable(s, 100),
    PriceBookName
);

string_newtype!(
    /// An IAM role name: 1–64 characters of letters, digits and `+=,.@-_`.
    RoleName,
    |s| (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c)),
    RoleName
);

string_newtype!(
    /// A description for the customer's role, as IAM allows it (1–1000
    /// characters, no control characters).
    RoleDescription,
    |s| printable(s, 1000),
    RoleDescription
);

string_newtype!(
    /// A note sent with an AWS Organizations invitation (AWS allows 1024
    /// characters).
    InvitationNote,
    |s| s.chars().count() <= 1024 && !s.is_empty(),
    InvitationNote
);

string_newtype!(
    /// Why a ticket is asked for (1–500 characters, no line breaks).
    TicketReason,
    |s| printable(s, 500),
    TicketReason
);

string_newtype!(
    /// Why operations removed, moved or corrected a registration, for the
    /// audit log (1–500 characters, no line breaks).
    CorrectionReason,
    |s| printable(s, 500),
    CorrectionReason
);

impl Default for RoleName {
    fn default() -> Self {
        Self("OrgLinkReadOnly".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounds() {
        assert_eq!(" acme ".parse::<TenantId>().unwrap().as_str(), "acme");
        assert_eq!("1234567890123".parse::<TenantId>().unwrap().as_str(), "1234567890123");
        assert!("".parse::<TenantId>().is_err());
        assert!("ac me".parse::<TenantId>().is_err());
        assert!("a\0b".parse::<TenantId>().is_err());
        assert!("x".repeat(65).parse::<TenantId>().is_err());

        assert_eq!("  Acme, S.L. ".parse::<CustomerName>().unwrap().as_str(), "Acme, S.L.");
        assert_eq!("Café Ñandú".parse::<CustomerName>().unwrap().as_str(), "Café Ñandú");
        assert!("".parse::<CustomerName>().is_err());
        assert!("a\nb".parse::<CustomerName>().is_err());
        assert!("é".repeat(101).parse::<CustomerName>().is_err());
        assert!("é".repeat(100).parse::<CustomerName>().is_ok());

        assert!("IONReadOnly".parse::<RoleName>().is_ok());
        assert!("a+=,.@-_1".parse::<RoleName>().is_ok());
        assert!("with space".parse::<RoleName>().is_err());
        assert!("r".repeat(65).parse::<RoleName>().is_err());
        assert!("r".repeat(64).parse::<RoleName>().is_ok());
    }

    proptest! {
        #[test]
        fn names_never_panic_and_hold_no_control_characters(input in "\\PC*|.*") {
            for ok in [
                input.parse::<TenantId>().map(String::from),
                input.parse::<CustomerName>().map(String::from),
                input.parse::<PriceBookName>().map(String::from),
                input.parse::<RoleName>().map(String::from),
            ].into_iter().flatten() {
                prop_assert!(!ok.is_empty());
                prop_assert!(!ok.chars().any(char::is_control));
            }
        }
    }
}

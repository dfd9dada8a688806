//! Free-form names typed by users, each with its own bounds.
//!
//! Free text is data wherever it lands (YAML, shell, Discord Markdown,
//! Freshdesk, logs): the characters no format can quote safely are refused
//! here, once, for every free-text value. What pasting drags along at the
//! edges (whitespace, zero-width spaces) is trimmed first, as for IDs, so a
//! stored value never holds one of them anywhere.

use serde::Serialize;

/// Why a free-text value was refused: what the message shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProblem {
    /// Nothing left once trimmed.
    Empty,
    /// More than `max` characters.
    TooLong { max: usize, length: usize },
    /// A character no output format can carry safely, at `position`
    /// (1-based, counted in characters of the input as typed).
    Character { character: char, position: usize },
}

impl TextProblem {
    /// `U+2028`.
    pub fn code_point(character: char) -> String {
        format!("U+{:04X}", u32::from(character))
    }
}

/// As templates read it: `kind`, and for a character its `code_point`,
/// `name` (where orglink knows it), `class` and `position`.
impl Serialize for TextProblem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(None)?;
        match *self {
            Self::Empty => map.serialize_entry("kind", "empty")?,
            Self::TooLong { max, length } => {
                map.serialize_entry("kind", "too_long")?;
                map.serialize_entry("max", &max)?;
                map.serialize_entry("length", &length)?;
            }
            Self::Character { character, position } => {
                map.serialize_entry("kind", "character")?;
                map.serialize_entry("code_point", &Self::code_point(character))?;
                map.serialize_entry("name", &name(character))?;
                map.serialize_entry("class", refused_class(character).unwrap_or("control"))?;
                map.serialize_entry("position", &position)?;
            }
        }
        map.end()
    }
}

impl std::fmt::Display for TextProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::Empty => f.write_str("empty"),
            Self::TooLong { max, length } => write!(f, "{length} characters, more than {max}"),
            Self::Character { character, position } => {
                let class = refused_class(character).unwrap_or("control");
                let described = name(character).unwrap_or(class);
                write!(f, "{} {described} at character {position}", Self::code_point(character))
            }
        }
    }
}

/// Format characters (Unicode category Cf, Unicode 16), bidi controls
/// among them: invisible, and able to reorder or hide what a reader sees.
const FORMAT: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// The names of the characters a tester is likeliest to meet.
fn name(c: char) -> Option<&'static str> {
    Some(match c {
        '\t' => "CHARACTER TABULATION",
        '\n' => "LINE FEED",
        '\r' => "CARRIAGE RETURN",
        '\u{7f}' => "DELETE",
        '\u{85}' => "NEXT LINE",
        '\u{ad}' => "SOFT HYPHEN",
        '\u{61c}' => "ARABIC LETTER MARK",
        '\u{200b}' => "ZERO WIDTH SPACE",
        '\u{200c}' => "ZERO WIDTH NON-JOINER",
        '\u{200d}' => "ZERO WIDTH JOINER",
        '\u{200e}' => "LEFT-TO-RIGHT MARK",
        '\u{200f}' => "RIGHT-TO-LEFT MARK",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{202a}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202b}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202c}' => "POP DIRECTIONAL FORMATTING",
        '\u{202d}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202e}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2060}' => "WORD JOINER",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE",
        '\u{feff}' => "ZERO WIDTH NO-BREAK SPACE",
        _ => return None,
    })
}

/// The class of a character free text may not hold, or `None` if it may.
fn refused_class(c: char) -> Option<&'static str> {
    let n = u32::from(c);
    if matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') {
        // Line breaks to YAML 1.1 (and JavaScript): a comment ends there.
        Some("line_break")
    } else if c.is_control() {
        Some("control")
    } else if FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&n)) {
        Some("format")
    } else if (0xFDD0..=0xFDEF).contains(&n) || n & 0xFFFE == 0xFFFE {
        // Never meant for interchange; YAML refuses U+FFFE and U+FFFF.
        Some("noncharacter")
    } else {
        None
    }
}

/// Checks trimmed free text of 1 to `max` characters; `skipped`, the
/// characters trimmed before it, makes positions count in the input as
/// typed.
pub(crate) fn free_text(text: &str, max: usize, skipped: usize) -> Result<(), TextProblem> {
    if let Some((i, c)) = text.chars().enumerate().find(|&(_, c)| refused_class(c).is_some()) {
        return Err(TextProblem::Character { character: c, position: skipped + i + 1 });
    }
    let length = text.chars().count();
    if length == 0 {
        return Err(TextProblem::Empty);
    }
    if length > max {
        return Err(TextProblem::TooLong { max, length });
    }
    Ok(())
}

/// Whether `c` may appear in free text (tests and other parsers use it).
pub fn allowed_in_free_text(c: char) -> bool {
    refused_class(c).is_none()
}

string_newtype!(
    /// A tenant: a Discord server (its guild ID) or a name given on the CLI.
    /// 1–64 characters of letters, digits, `_`, `.` and `-`.
    TenantId,
    |s| (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
    TenantId
);

free_text_newtype!(
    /// The reseller's customer who owns the account (1–100 characters).
    CustomerName,
    100,
    CustomerName
);

free_text_newtype!(
    /// A custom price book's name on the platform (1–64 characters).
    PriceBookName,
    64,
    PriceBookName
);

string_newtype!(
    /// An IAM role name: 1–64 characters of letters, digits and `+=,.@-_`.
    RoleName,
    |s| (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c)),
    RoleName
);

free_text_newtype!(
    /// A description for the customer's role: 1–1000 characters, the
    /// length IAM's CreateRole allows for `Description` (IAM API
    /// reference, CreateRole: "Maximum length of 1000").
    RoleDescription,
    1000,
    RoleDescription
);

free_text_newtype!(
    /// A note sent with an AWS Organizations invitation (AWS allows 1024
    /// characters).
    InvitationNote,
    1024,
    InvitationNote
);

free_text_newtype!(
    /// Why a ticket is asked for (1–1000 characters, no line breaks): it
    /// goes in the ticket's body, which Freshdesk does not bound, and in a
    /// Discord option, which allows 6000.
    TicketReason,
    1000,
    TicketReason
);

free_text_newtype!(
    /// Why operations removed, moved or corrected a registration, for the
    /// audit log (1–1000 characters, no line breaks).
    CorrectionReason,
    1000,
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

        assert!("p".repeat(64).parse::<PriceBookName>().is_ok());
        assert!("p".repeat(65).parse::<PriceBookName>().is_err());
        assert!("r".repeat(1000).parse::<TicketReason>().is_ok());
        assert!("r".repeat(1001).parse::<TicketReason>().is_err());
    }

    fn problem(input: &str) -> TextProblem {
        match input.parse::<CustomerName>() {
            Err(crate::domain::ParseError::CustomerName { problem, .. }) => problem,
            other => panic!("{input:?} gave {other:?}"),
        }
    }

    #[test]
    fn refusals_name_the_character_and_where_it_is() {
        let at = |code: &str, name: Option<&'static str>, class: &'static str, position| {
            let character = char::from_u32(u32::from_str_radix(&code[2..], 16).unwrap()).unwrap();
            assert_eq!((super::name(character), refused_class(character)), (name, Some(class)), "{code}");
            TextProblem::Character { character, position }
        };
        assert_eq!(problem("Acme\u{2028}Transform: x"), at("U+2028", Some("LINE SEPARATOR"), "line_break", 5));
        assert_eq!(problem("  ab\u{202e}cd"), at("U+202E", Some("RIGHT-TO-LEFT OVERRIDE"), "format", 5));
        assert_eq!(problem("a\u{fffe}"), at("U+FFFE", None, "noncharacter", 2));
        assert_eq!(problem("a\u{10ffff}"), at("U+10FFFF", None, "noncharacter", 2));
        assert_eq!(problem("a\u{fdd0}"), at("U+FDD0", None, "noncharacter", 2));
        assert_eq!(problem("a\u{85}b"), at("U+0085", Some("NEXT LINE"), "line_break", 2));
        assert_eq!(problem("a\u{2066}b"), at("U+2066", Some("LEFT-TO-RIGHT ISOLATE"), "format", 2));
        assert_eq!(problem("a\u{e0041}b"), at("U+E0041", None, "format", 2));
        assert_eq!(problem("a\u{1b}[31m"), at("U+001B", None, "control", 2));
        assert_eq!(problem(&"x".repeat(101)), TextProblem::TooLong { max: 100, length: 101 });
        assert_eq!(problem(" \u{200b} "), TextProblem::Empty);
        assert_eq!(
            problem("a\u{2028}b").to_string(),
            "U+2028 LINE SEPARATOR at character 2",
            "the English message of the error"
        );
        // Pasted at the edges, zero-width characters are trimmed like
        // spaces (the stored value holds none); inside, refused.
        assert_eq!("\u{200b}Acme\u{feff}".parse::<CustomerName>().unwrap().as_str(), "Acme");
        assert_eq!(problem("Ac\u{200b}me"), at("U+200B", Some("ZERO WIDTH SPACE"), "format", 3));
        // Hostile but printable: data, quoted where it lands.
        for name in ["$(touch x)", "`id`", "'; rm -rf ~ #", ": #", "[link](https://x) @everyone", "Ünïcødé 会社 🚀"]
        {
            assert_eq!(name.parse::<CustomerName>().unwrap().as_str(), name);
        }
    }

    #[test]
    fn a_stored_value_reads_back_as_stored() {
        // Accepted under older rules: the record must stay readable.
        let old: CustomerName = serde_json::from_str(r#""a\u2028b""#).unwrap();
        assert_eq!(old.as_str(), "a\u{2028}b");
    }

    proptest! {
        #[test]
        fn names_never_panic_and_hold_no_refused_characters(input in "\\PC*|.*|[a\u{85}\u{2028}\u{202e}\u{fffe}\u{200b} ]{0,8}") {
            for ok in [
                input.parse::<TenantId>().map(String::from),
                input.parse::<CustomerName>().map(String::from),
                input.parse::<PriceBookName>().map(String::from),
                input.parse::<RoleName>().map(String::from),
                input.parse::<RoleDescription>().map(String::from),
                input.parse::<InvitationNote>().map(String::from),
                input.parse::<TicketReason>().map(String::from),
                input.parse::<CorrectionReason>().map(String::from),
            ].into_iter().flatten() {
                prop_assert!(!ok.is_empty());
                prop_assert!(ok.chars().all(allowed_in_free_text), "{:?}", ok);
            }
        }
    }
}

//! Small closed vocabularies: support tiers and plan groups, account kinds,
//! languages.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{ParseError, quote_input, trim_pasted};

/// Finds `input` (trimmed, case-insensitive) among `(spelling, value)` pairs.
fn lookup<T: Copy>(input: &str, table: &[(&str, T)]) -> Option<T> {
    let wanted = trim_pasted(input);
    table.iter().find(|(spelling, _)| spelling.eq_ignore_ascii_case(wanted)).map(|(_, value)| *value)
}

/// The AWS support plan of the customer's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportTier {
    Business,
    Developer,
    Basic,
}

impl SupportTier {
    pub const ALL: [SupportTier; 3] = [Self::Business, Self::Developer, Self::Basic];

    /// The support plan group the platform needs for this tier; any other
    /// group makes billing reports show negative margins.
    pub fn required_group(self) -> SupportPlanGroup {
        match self {
            Self::Business => SupportPlanGroup::BusinessSupport,
            Self::Developer | Self::Basic => SupportPlanGroup::Passthrough,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Business => "business",
            Self::Developer => "developer",
            Self::Basic => "basic",
        }
    }

    /// The AWS managed policies the customer's role has for this tier:
    /// ReadOnlyAccess always; AWSSupportAccess for Business support, so
    /// that the platform can manage its cases (optional: a warning, not a
    /// failure, when missing).
    pub fn managed_policies(self) -> &'static [ManagedPolicy] {
        match self {
            Self::Business => &[ManagedPolicy::ReadOnlyAccess, ManagedPolicy::SupportAccess],
            Self::Developer | Self::Basic => &[ManagedPolicy::ReadOnlyAccess],
        }
    }
}

/// An AWS managed policy the customer's role has attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManagedPolicy {
    ReadOnlyAccess,
    SupportAccess,
}

impl ManagedPolicy {
    /// Its name in IAM.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ReadOnlyAccess => "ReadOnlyAccess",
            Self::SupportAccess => "AWSSupportAccess",
        }
    }

    /// Its ARN in `partition`.
    pub fn arn(self, partition: super::Partition) -> String {
        format!("arn:{}:iam::aws:policy/{}", partition.as_str(), self.name())
    }
}

impl FromStr for SupportTier {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        lookup(input, &[("business", Self::Business), ("developer", Self::Developer), ("basic", Self::Basic)])
            .ok_or_else(|| ParseError::SupportTier { input: quote_input(input) })
    }
}

/// The platform's support plan group of a linked account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportPlanGroup {
    Passthrough,
    BusinessSupport,
}

impl SupportPlanGroup {
    pub const ALL: [SupportPlanGroup; 2] = [Self::Passthrough, Self::BusinessSupport];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passthrough => "passthrough",
            Self::BusinessSupport => "business_support",
        }
    }
}

impl FromStr for SupportPlanGroup {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        lookup(
            input,
            &[
                ("passthrough", Self::Passthrough),
                ("business", Self::BusinessSupport),
                ("business_support", Self::BusinessSupport),
                ("business-support", Self::BusinessSupport),
                ("business support", Self::BusinessSupport),
            ],
        )
        .ok_or_else(|| ParseError::SupportPlanGroup { input: quote_input(input) })
    }
}

/// What the account is in AWS Organizations terms, as declared by the
/// reseller (and later as detected during role verification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// Not in any organization.
    #[default]
    Standalone,
    /// A member of another organization: it must leave it first.
    Member,
    /// The management (payer) account of an organization: cannot be linked
    /// by invitation; it needs a consent-to-assignment migration.
    Management,
}

impl AccountKind {
    pub const ALL: [AccountKind; 3] = [Self::Standalone, Self::Member, Self::Management];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standalone => "standalone",
            Self::Member => "member",
            Self::Management => "management",
        }
    }
}

impl FromStr for AccountKind {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        lookup(
            input,
            &[
                ("standalone", Self::Standalone),
                ("member", Self::Member),
                ("management", Self::Management),
                ("payer", Self::Management),
            ],
        )
        .ok_or_else(|| ParseError::AccountKind { input: quote_input(input) })
    }
}

/// The languages orglink speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    En,
    Es,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Self::En, Self::Es];

    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Es => "es",
        }
    }

    /// The language of a Discord or BCP 47 locale (`es-ES`, `es-419`, any
    /// `es*` is Spanish; `en*` English); `None` for any other.
    pub fn from_locale(locale: &str) -> Option<Self> {
        let primary = locale.split(['-', '_']).next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("es") {
            Some(Self::Es)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Self::En)
        } else {
            None
        }
    }
}

impl FromStr for Lang {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::from_locale(trim_pasted(input)).ok_or_else(|| ParseError::Lang { input: quote_input(input) })
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_tier_needs_its_group() {
        assert_eq!(SupportTier::Business.required_group(), SupportPlanGroup::BusinessSupport);
        assert_eq!(SupportTier::Developer.required_group(), SupportPlanGroup::Passthrough);
        assert_eq!(SupportTier::Basic.required_group(), SupportPlanGroup::Passthrough);
    }

    #[test]
    fn each_tier_has_its_managed_policies() {
        use ManagedPolicy::*;
        assert_eq!(SupportTier::Business.managed_policies(), [ReadOnlyAccess, SupportAccess]);
        assert_eq!(SupportTier::Developer.managed_policies(), [ReadOnlyAccess]);
        assert_eq!(SupportTier::Basic.managed_policies(), [ReadOnlyAccess]);
        assert_eq!(ReadOnlyAccess.arn(super::super::Partition::Aws), "arn:aws:iam::aws:policy/ReadOnlyAccess");
        assert_eq!(SupportAccess.arn(super::super::Partition::AwsCn), "arn:aws-cn:iam::aws:policy/AWSSupportAccess");
    }

    #[test]
    fn vocabularies_parse_their_own_spellings() {
        for tier in SupportTier::ALL {
            assert_eq!(tier.as_str().parse::<SupportTier>().unwrap(), tier);
        }
        for group in SupportPlanGroup::ALL {
            assert_eq!(group.as_str().parse::<SupportPlanGroup>().unwrap(), group);
        }
        for kind in AccountKind::ALL {
            assert_eq!(kind.as_str().parse::<AccountKind>().unwrap(), kind);
        }
        for lang in Lang::ALL {
            assert_eq!(lang.code().parse::<Lang>().unwrap(), lang);
        }
        assert_eq!(" Business ".parse::<SupportTier>().unwrap(), SupportTier::Business);
        assert!("enterprise".parse::<SupportTier>().is_err());
        assert!("".parse::<SupportPlanGroup>().is_err());
        assert!("org".parse::<AccountKind>().is_err());
    }

    #[test]
    fn locales_pick_a_language() {
        for es in ["es", "es-ES", "es-419", "ES_mx"] {
            assert_eq!(Lang::from_locale(es), Some(Lang::Es), "{es}");
        }
        for en in ["en-US", "en-GB", "en"] {
            assert_eq!(Lang::from_locale(en), Some(Lang::En), "{en}");
        }
        for other in ["pt-BR", "", "fr", "esperanto"] {
            assert_eq!(Lang::from_locale(other), None, "{other}");
        }
    }

    proptest! {
        #[test]
        fn vocabularies_never_panic(input in "\\PC*") {
            let _ = input.parse::<SupportTier>();
            let _ = input.parse::<SupportPlanGroup>();
            let _ = input.parse::<AccountKind>();
            let _ = input.parse::<Lang>();
        }
    }
}

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

impl SupportTier {
    /// The level AWS can tell this tier apart at: it answers Business (or
    /// higher) or not, never Basic from Developer.
    pub fn level(self) -> SupportLevel {
        match self {
            Self::Business => SupportLevel::BusinessOrHigher,
            Self::Developer | Self::Basic => SupportLevel::BasicOrDeveloper,
        }
    }
}

/// The support plan as AWS tells it: the Support API answers an account
/// with Business support or higher, and refuses one with Basic or
/// Developer support (`SubscriptionRequiredException`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportLevel {
    BusinessOrHigher,
    BasicOrDeveloper,
}

impl SupportLevel {
    /// The support plan group the platform needs at this level; the same
    /// as [`SupportTier::required_group`] of any tier of the level.
    pub fn required_group(self) -> SupportPlanGroup {
        match self {
            Self::BusinessOrHigher => SupportPlanGroup::BusinessSupport,
            Self::BasicOrDeveloper => SupportPlanGroup::Passthrough,
        }
    }

    pub fn business(self) -> bool {
        self == Self::BusinessOrHigher
    }
}

/// What a role check learned of the account's support tier from AWS
/// (`support:DescribeSeverityLevels` with the role's credentials), kept
/// with the check: AWS's answer, or why there is none. Without an answer
/// the declared tier stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AwsSupportTier {
    /// The Support API answered: Business support or higher.
    BusinessOrHigher,
    /// `SubscriptionRequiredException`: Basic or Developer support.
    BasicOrDeveloper,
    NotChecked {
        #[serde(flatten)]
        reason: TierNotChecked,
    },
}

impl Default for AwsSupportTier {
    /// A check stored before orglink asked AWS for the tier.
    fn default() -> Self {
        Self::NotChecked { reason: TierNotChecked::Earlier }
    }
}

impl AwsSupportTier {
    pub fn not_checked(reason: TierNotChecked) -> Self {
        Self::NotChecked { reason }
    }

    /// What AWS said, when it said anything.
    pub fn level(&self) -> Option<SupportLevel> {
        match self {
            Self::BusinessOrHigher => Some(SupportLevel::BusinessOrHigher),
            Self::BasicOrDeveloper => Some(SupportLevel::BasicOrDeveloper),
            Self::NotChecked { .. } => None,
        }
    }
}

/// Why AWS was not asked for the support tier, or did not tell it. None of
/// these fails the role's verification: the declared tier stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum TierNotChecked {
    /// The role does not have AWSSupportAccess (or its policies could not
    /// be read): the Support API would refuse it.
    NoSupportAccess,
    /// The role's other checks did not pass (it could not be assumed, the
    /// external ID guard failed, it belongs to another account): its
    /// credentials were not used for this.
    RoleNotChecked,
    /// AWS refused `support:DescribeSeverityLevels` to the role although it
    /// has AWSSupportAccess (a permissions boundary, a service control
    /// policy).
    AccessDenied,
    /// The Support API did not answer (unreachable, throttled, an
    /// unexpected error).
    Unavailable { detail: String },
    /// The check was made before orglink asked AWS for the tier.
    Earlier,
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
    fn each_level_needs_the_group_of_its_tiers() {
        for tier in SupportTier::ALL {
            assert_eq!(tier.level().required_group(), tier.required_group(), "{tier:?}");
        }
        assert!(SupportTier::Business.level().business());
        assert!(!SupportTier::Developer.level().business());
        assert_eq!(AwsSupportTier::BusinessOrHigher.level(), Some(SupportLevel::BusinessOrHigher));
        assert_eq!(AwsSupportTier::BasicOrDeveloper.level(), Some(SupportLevel::BasicOrDeveloper));
        assert_eq!(AwsSupportTier::not_checked(TierNotChecked::AccessDenied).level(), None);
        assert_eq!(AwsSupportTier::default(), AwsSupportTier::not_checked(TierNotChecked::Earlier));
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

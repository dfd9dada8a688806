//! The ARN of the IAM role a customer creates and pastes back.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{AccountId, ParseError, RoleName, quote_input, trim_pasted};

/// AWS partitions an IAM role can live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Partition {
    #[serde(rename = "aws")]
    Aws,
    #[serde(rename = "aws-cn")]
    AwsCn,
    #[serde(rename = "aws-us-gov")]
    AwsUsGov,
}

impl Partition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::AwsCn => "aws-cn",
            Self::AwsUsGov => "aws-us-gov",
        }
    }
}

/// Why a pasted text is not a role ARN; each has its own hint for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleArnProblem {
    /// Nothing was pasted.
    Empty,
    /// A bare 12-digit account ID instead of the role's ARN.
    AccountIdOnly,
    /// A bare role name instead of the role's ARN.
    RoleNameOnly,
    /// Not shaped like `arn:partition:service:region:account:resource`.
    NotAnArn,
    /// Spaces or line breaks inside the ARN (usually a bad copy).
    ContainsSpaces,
    /// A partition other than aws, aws-cn, aws-us-gov.
    UnknownPartition,
    /// An ARN of another service than IAM.
    NotIam,
    /// The ARN of an assumed-role session, not of the role.
    AssumedRole,
    /// IAM ARNs have no region.
    HasRegion,
    /// The account part is not 12 digits.
    BadAccount,
    /// The ARN of an IAM user.
    UserArn,
    /// The ARN of a policy (for instance ReadOnlyAccess itself).
    PolicyArn,
    /// The ARN of an IAM group.
    GroupArn,
    /// Another IAM resource (instance profile, OIDC provider...).
    OtherResource,
    /// `role/` with no name after it.
    RoleNameMissing,
    /// A role name longer than 64 characters.
    RoleNameTooLong,
    /// A role name with characters IAM does not allow.
    RoleNameInvalid,
    /// A role path IAM does not allow.
    PathInvalid,
}

impl RoleArnProblem {
    /// The stable name templates use to pick the hint.
    pub fn code(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::AccountIdOnly => "account_id_only",
            Self::RoleNameOnly => "role_name_only",
            Self::NotAnArn => "not_an_arn",
            Self::ContainsSpaces => "contains_spaces",
            Self::UnknownPartition => "unknown_partition",
            Self::NotIam => "not_iam",
            Self::AssumedRole => "assumed_role",
            Self::HasRegion => "has_region",
            Self::BadAccount => "bad_account",
            Self::UserArn => "user_arn",
            Self::PolicyArn => "policy_arn",
            Self::GroupArn => "group_arn",
            Self::OtherResource => "other_resource",
            Self::RoleNameMissing => "role_name_missing",
            Self::RoleNameTooLong => "role_name_too_long",
            Self::RoleNameInvalid => "role_name_invalid",
            Self::PathInvalid => "path_invalid",
        }
    }

    pub const ALL: [RoleArnProblem; 18] = [
        Self::Empty,
        Self::AccountIdOnly,
        Self::RoleNameOnly,
        Self::NotAnArn,
        Self::ContainsSpaces,
        Self::UnknownPartition,
        Self::NotIam,
        Self::AssumedRole,
        Self::HasRegion,
        Self::BadAccount,
        Self::UserArn,
        Self::PolicyArn,
        Self::GroupArn,
        Self::OtherResource,
        Self::RoleNameMissing,
        Self::RoleNameTooLong,
        Self::RoleNameInvalid,
        Self::PathInvalid,
    ];
}

/// `arn:<partition>:iam::<account>:role<path><name>`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoleArn {
    partition: Partition,
    account: AccountId,
    /// `/` or `/some/path/`.
    path: String,
    name: RoleName,
}

impl RoleArn {
    /// The ARN of role `name` at the root path of `account`.
    pub fn new(partition: Partition, account: AccountId, name: RoleName) -> Self {
        Self { partition, account, path: "/".to_owned(), name }
    }

    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// The account the role lives in.
    pub fn account(&self) -> AccountId {
        self.account
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn name(&self) -> &RoleName {
        &self.name
    }
}

fn parse(input: &str) -> Result<RoleArn, RoleArnProblem> {
    use RoleArnProblem as P;
    let text = trim_pasted(input);
    if text.is_empty() {
        return Err(P::Empty);
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(P::ContainsSpaces);
    }
    let mut parts = text.splitn(6, ':');
    let (Some(arn), Some(partition), Some(service), Some(region), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(if text.parse::<AccountId>().is_ok() {
            P::AccountIdOnly
        } else if text.parse::<RoleName>().is_ok() {
            P::RoleNameOnly
        } else {
            P::NotAnArn
        });
    };
    if arn != "arn" {
        return Err(P::NotAnArn);
    }
    let partition = match partition {
        "aws" => Partition::Aws,
        "aws-cn" => Partition::AwsCn,
        "aws-us-gov" => Partition::AwsUsGov,
        _ => return Err(P::UnknownPartition),
    };
    if service == "sts" && resource.starts_with("assumed-role/") {
        return Err(P::AssumedRole);
    }
    if service != "iam" {
        return Err(P::NotIam);
    }
    if !region.is_empty() {
        return Err(P::HasRegion);
    }
    let (kind, rest) = resource.split_once('/').unwrap_or((resource, ""));
    match kind {
        "role" => {}
        "user" => return Err(P::UserArn),
        "policy" => return Err(P::PolicyArn),
        "group" => return Err(P::GroupArn),
        _ => return Err(P::OtherResource),
    }
    // Strictly 12 digits inside an ARN: no separators.
    let account = account
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| AccountId::from_bytes(account.as_bytes()))
        .flatten()
        .ok_or(P::BadAccount)?;
    let (path, name) = match rest.rfind('/') {
        Some(i) => (format!("/{}", &rest[..=i]), &rest[i + 1..]),
        None => ("/".to_owned(), rest),
    };
    // IAM paths: `/` or `/` + printable ASCII (no spaces) + `/`, at most 512.
    let path_ok = path.len() <= 512 && !path.contains("//") && path.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if !path_ok {
        return Err(P::PathInvalid);
    }
    if name.is_empty() {
        return Err(P::RoleNameMissing);
    }
    if name.len() > 64 {
        return Err(P::RoleNameTooLong);
    }
    let name = name.parse::<RoleName>().map_err(|_| P::RoleNameInvalid)?;
    Ok(RoleArn { partition, account, path, name })
}

impl FromStr for RoleArn {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse(input).map_err(|problem| ParseError::RoleArn { input: quote_input(input), problem })
    }
}

impl TryFrom<String> for RoleArn {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<RoleArn> for String {
    fn from(value: RoleArn) -> Self {
        value.to_string()
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arn:{}:iam::{}:role{}{}", self.partition.as_str(), self.account, self.path, self.name)
    }
}

impl fmt::Debug for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoleArn({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn problem(input: &str) -> RoleArnProblem {
        match input.parse::<RoleArn>() {
            Err(ParseError::RoleArn { problem, .. }) => problem,
            other => panic!("{input:?} gave {other:?}"),
        }
    }

    #[test]
    fn accepts_role_arns_in_every_partition_with_paths() {
        let arn: RoleArn = "arn:aws:iam::123456789012:role/OrgLinkReadOnly".parse().unwrap();
        assert_eq!(arn.partition(), Partition::Aws);
        assert_eq!(arn.account().as_str(), "123456789012");
        assert_eq!(arn.path(), "/");
        assert_eq!(arn.name().as_str(), "OrgLinkReadOnly");

        let arn: RoleArn = "arn:aws-cn:iam::000000000001:role/team/billing/Read+Only=1,a.b@c-d_e".parse().unwrap();
        assert_eq!(arn.partition(), Partition::AwsCn);
        assert_eq!(arn.path(), "/team/billing/");
        assert_eq!(arn.name().as_str(), "Read+Only=1,a.b@c-d_e");
        assert_eq!(arn.to_string(), "arn:aws-cn:iam::000000000001:role/team/billing/Read+Only=1,a.b@c-d_e");

        let arn: RoleArn = "arn:aws-us-gov:iam::123456789012:role/x".parse().unwrap();
        assert_eq!(arn.partition(), Partition::AwsUsGov);
        let name64 = "r".repeat(64);
        assert!(format!("arn:aws:iam::123456789012:role/{name64}").parse::<RoleArn>().is_ok());
    }

    #[test]
    fn trims_what_pasting_drags_along() {
        for input in [
            "  arn:aws:iam::123456789012:role/R \n",
            "\u{a0}arn:aws:iam::123456789012:role/R\u{a0}",
            "\u{200b}arn:aws:iam::123456789012:role/R\u{feff}",
            "\u{2060}\tarn:aws:iam::123456789012:role/R\u{200d}",
        ] {
            assert_eq!(input.parse::<RoleArn>().unwrap().to_string(), "arn:aws:iam::123456789012:role/R");
        }
    }

    #[test]
    fn refuses_with_a_specific_problem() {
        use RoleArnProblem as P;
        let cases = [
            ("", P::Empty),
            (" \u{200b} ", P::Empty),
            ("123456789012", P::AccountIdOnly),
            ("1234-5678-9012", P::AccountIdOnly),
            ("OrgLinkReadOnly", P::RoleNameOnly),
            ("https://console.aws.amazon.com/iam/home#/roles/R", P::NotAnArn),
            ("arn:aws:iam::123456789012:role/ R", P::ContainsSpaces),
            ("arn:aws:iam::123456789012:role/R\nextra", P::ContainsSpaces),
            ("arn:aws-eu:iam::123456789012:role/R", P::UnknownPartition),
            ("arn:aws:s3:::bucket/key", P::NotIam),
            ("arn:aws:sts::123456789012:assumed-role/R/session", P::AssumedRole),
            ("arn:aws:iam:us-east-1:123456789012:role/R", P::HasRegion),
            ("arn:aws:iam::12345678901:role/R", P::BadAccount),
            ("arn:aws:iam::1234-5678-9012:role/R", P::BadAccount),
            ("arn:aws:iam::123456789012:user/alice", P::UserArn),
            ("arn:aws:iam::aws:policy/ReadOnlyAccess", P::PolicyArn),
            ("arn:aws:iam::123456789012:group/admins", P::GroupArn),
            ("arn:aws:iam::123456789012:instance-profile/p", P::OtherResource),
            ("arn:aws:iam::123456789012:root", P::OtherResource),
            ("arn:aws:iam::123456789012:role/", P::RoleNameMissing),
            ("arn:aws:iam::123456789012:role/path/", P::RoleNameMissing),
            ("arn:aws:iam::123456789012:role", P::RoleNameMissing),
            (&format!("arn:aws:iam::123456789012:role/{}", "r".repeat(65)), P::RoleNameTooLong),
            ("arn:aws:iam::123456789012:role/Read*Only", P::RoleNameInvalid),
            ("arn:aws:iam::123456789012:role/Rolé", P::RoleNameInvalid),
            ("arn:aws:iam::123456789012:role//R", P::PathInvalid),
            ("arn:aws:iam::123456789012:role/pä/R", P::PathInvalid),
            ("arn:aws:iam:123456789012:role/R", P::NotAnArn),
        ];
        for (input, expected) in cases {
            assert_eq!(problem(input), expected, "{input:?}");
        }
    }

    #[test]
    fn every_problem_has_a_distinct_code() {
        let codes: std::collections::HashSet<_> = RoleArnProblem::ALL.iter().map(|p| p.code()).collect();
        assert_eq!(codes.len(), RoleArnProblem::ALL.len());
    }

    proptest! {
        #[test]
        fn valid_arns_round_trip(
            partition in prop_oneof![Just("aws"), Just("aws-cn"), Just("aws-us-gov")],
            account in "[0-9]{12}",
            path in proptest::collection::vec("[a-zA-Z0-9_.-]{1,8}", 0..3),
            name in "[a-zA-Z0-9+=,.@_-]{1,64}",
            pad in prop_oneof![Just(""), Just(" "), Just("\u{200b}"), Just("\u{a0}\n")],
        ) {
            let path = if path.is_empty() { "/".to_owned() } else { format!("/{}/", path.join("/")) };
            let arn = format!("arn:{partition}:iam::{account}:role{path}{name}");
            let parsed: RoleArn = format!("{pad}{arn}{pad}").parse().unwrap();
            prop_assert_eq!(parsed.to_string(), arn);
            prop_assert_eq!(parsed.account().to_string(), account);
            prop_assert_eq!(parsed.name().as_str(), name.as_str());
        }

        #[test]
        fn never_panics(input in "\\PC*|arn:[a-z-]{0,12}:[a-z]{0,4}:[a-z0-9-]{0,10}:[0-9a-z-]{0,14}:.{0,80}") {
            if let Ok(arn) = input.parse::<RoleArn>() {
                prop_assert_eq!(arn.to_string().parse::<RoleArn>().unwrap(), arn);
            }
        }
    }
}

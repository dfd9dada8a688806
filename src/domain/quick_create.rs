//! The CloudFormation quick-create link: the AWS console opened on the
//! generic role template (`instructions.template_url`) with every parameter
//! of one account filled in. The owner ticks the IAM acknowledgement and
//! selects Create stack.

use super::{AccountId, ExternalId, Partition, RoleName};

string_newtype!(
    /// An S3 bucket name: 3 to 63 lowercase letters, digits, dots and
    /// hyphens, a letter or digit at each end, no `..`.
    BucketName,
    |s| {
        let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        (3..=63).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
            && ends(s.chars().next())
            && ends(s.chars().last())
            && !s.contains("..")
    },
    Bucket
);

string_newtype!(
    /// An S3 object key of S3's safe characters (letters, digits and
    /// `/!-_.*'()`), 1 to 1024 bytes, not starting with `/` and with no
    /// empty, `.` or `..` segment.
    ObjectKey,
    |s| {
        (1..=1024).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "/!-_.*'()".contains(c))
            && s.split('/').all(|segment| !matches!(segment, "" | "." | ".."))
    },
    ObjectKey
);

string_newtype!(
    /// An AWS region's name, such as `us-east-1`: lowercase letters, digits
    /// and hyphens.
    AwsRegion,
    |s| {
        (1..=32).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
    },
    Region
);

impl Default for ObjectKey {
    /// Where `publish-template` puts the template unless told.
    fn default() -> Self {
        Self("orglink/role-template.yaml".to_owned())
    }
}

/// The AWS console's host in each partition.
pub fn console_host(partition: Partition) -> &'static str {
    match partition {
        Partition::Aws => "console.aws.amazon.com",
        Partition::AwsCn => "console.amazonaws.cn",
        Partition::AwsUsGov => "console.amazonaws-us-gov.com",
    }
}

/// Where a template is and which console region opens it: what the
/// configuration gives the link, the same for every account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateLocation {
    /// The published generic template (`instructions.template_url`).
    pub template_url: String,
    /// The console region the stack is created in (IAM is global).
    pub console_region: String,
}

/// Everything a quick-create link fills in for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickCreate<'a> {
    pub partition: Partition,
    pub location: &'a TemplateLocation,
    pub account: AccountId,
    pub external_id: &'a ExternalId,
    pub role_name: &'a RoleName,
    /// `SupportAccess`: attach AWSSupportAccess too (Business support).
    pub support_access: bool,
}

impl QuickCreate<'_> {
    /// The stack's name: `OrgLink-` and the role's name, with each
    /// character a stack name may not hold (`+=,.@_`) as `-`.
    pub fn stack_name(&self) -> String {
        let role: String =
            self.role_name.as_str().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        format!("OrgLink-{role}")
    }

    /// `https://<console host>/cloudformation/home?region=<R>#/stacks/quickcreate?templateURL=...`,
    /// every value URL-encoded.
    pub fn url(&self) -> String {
        let params = [
            ("templateURL", self.location.template_url.clone()),
            ("stackName", self.stack_name()),
            ("param_ExternalId", self.external_id.as_str().to_owned()),
            ("param_RoleName", self.role_name.as_str().to_owned()),
            ("param_SupportAccess", self.support_access.to_string()),
        ];
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        format!(
            "https://{}/cloudformation/home?region={}#/stacks/quickcreate?{}",
            console_host(self.partition),
            encode(&self.location.console_region),
            query.join("&")
        )
    }
}

/// `value` percent-encoded: every byte but the unreserved characters of
/// RFC 3986 (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
pub fn encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => encoded.push(char::from(byte)),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// Where the S3 object `bucket`/`key` is read over HTTPS in `region` of
/// `partition` (virtual-hosted style), or under `endpoint` (path style) when
/// orglink talks to another S3 endpoint (`AWS_ENDPOINT_URL`).
pub fn s3_object_url(partition: Partition, region: &str, bucket: &str, key: &str, endpoint: Option<&str>) -> String {
    let key: Vec<String> = key.split('/').map(encode).collect();
    let key = key.join("/");
    match endpoint {
        Some(endpoint) => format!("{}/{}/{key}", endpoint.trim_end_matches('/'), encode(bucket)),
        None => {
            let suffix = match partition {
                Partition::AwsCn => "amazonaws.com.cn",
                Partition::Aws | Partition::AwsUsGov => "amazonaws.com",
            };
            format!("https://{bucket}.s3.{region}.{suffix}/{key}")
        }
    }
}

/// The bucket policy statement that lets CloudFormation, in any account,
/// read the published template: the object alone, readable by anyone (it
/// holds the platform's account ID and nothing secret).
pub fn bucket_policy(partition: Partition, bucket: &str, key: &str) -> serde_json::Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "OrgLinkTemplateReadable",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:{}:s3:::{bucket}/{key}", partition.as_str()),
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inverse of [`encode`], for the tests.
    fn decode(value: &str) -> String {
        let bytes = value.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&value[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    /// The link's query after `#/stacks/quickcreate?`, decoded.
    fn params(url: &str) -> Vec<(String, String)> {
        let (_, query) = url.split_once("#/stacks/quickcreate?").unwrap();
        query
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap();
                // Nothing a value holds survives unencoded to split on.
                assert!(!v.contains(['&', '=', '#', '?', '/', ':', '+', ' ']), "{v}");
                (k.to_owned(), decode(v))
            })
            .collect()
    }

    fn location() -> TemplateLocation {
        TemplateLocation {
            template_url: "https://b.s3.us-east-1.amazonaws.com/orglink/role.yaml?v=1&x=2".into(),
            console_region: "eu-west-1".into(),
        }
    }

    #[test]
    fn every_parameter_round_trips_through_decoding() {
        let location = location();
        let external_id: ExternalId = "CA-7f3a+b=c,d.e@f:g/h-i".parse().unwrap();
        let role_name: RoleName = "Org+Link=Read,Only.@_-x".parse().unwrap();
        let link = QuickCreate {
            partition: Partition::Aws,
            location: &location,
            account: "123456789012".parse().unwrap(),
            external_id: &external_id,
            role_name: &role_name,
            support_access: true,
        };
        let url = link.url();
        assert!(
            url.starts_with("https://console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/quickcreate?")
        );
        assert_eq!(
            params(&url),
            vec![
                ("templateURL".into(), location.template_url.clone()),
                ("stackName".into(), "OrgLink-Org-Link-Read-Only----x".into()),
                ("param_ExternalId".into(), external_id.as_str().into()),
                ("param_RoleName".into(), role_name.as_str().into()),
                ("param_SupportAccess".into(), "true".into()),
            ]
        );
        let basic = QuickCreate { support_access: false, ..link };
        assert!(params(&basic.url()).contains(&("param_SupportAccess".into(), "false".into())));
    }

    #[test]
    fn the_console_host_follows_the_partition() {
        let location = location();
        let external_id: ExternalId = "CA-1".parse().unwrap();
        let role_name = RoleName::default();
        for (partition, host) in [
            (Partition::Aws, "https://console.aws.amazon.com/"),
            (Partition::AwsCn, "https://console.amazonaws.cn/"),
            (Partition::AwsUsGov, "https://console.amazonaws-us-gov.com/"),
        ] {
            let link = QuickCreate {
                partition,
                location: &location,
                account: "123456789012".parse().unwrap(),
                external_id: &external_id,
                role_name: &role_name,
                support_access: false,
            };
            assert!(link.url().starts_with(host), "{}", link.url());
        }
    }

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(encode("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(encode("a b+c=d,e@f&g#h/ü"), "a%20b%2Bc%3Dd%2Ce%40f%26g%23h%2F%C3%BC");
        assert_eq!(decode(&encode("x%y")), "x%y");
    }

    #[test]
    fn bucket_names_and_object_keys() {
        for good in ["abc", "my-templates.example", "a1-b"] {
            assert!(good.parse::<BucketName>().is_ok(), "{good}");
        }
        for bad in ["ab", "Abc", "-abc", "abc-", "a..b", "a_b", "a b", &"a".repeat(64)] {
            assert!(bad.parse::<BucketName>().is_err(), "{bad}");
        }
        assert_eq!(ObjectKey::default().as_str(), "orglink/role-template.yaml");
        for good in ["k.yaml", "a/b/c(1).yaml", "x!*'"] {
            assert!(good.parse::<ObjectKey>().is_ok(), "{good}");
        }
        for bad in ["/k", "a//b", "a/../b", "a b", "k?x", "k#x", "é", "a/"] {
            assert!(bad.parse::<ObjectKey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn s3_urls_and_the_bucket_policy() {
        assert_eq!(
            s3_object_url(Partition::Aws, "us-east-1", "b", "a/role template.yaml", None),
            "https://b.s3.us-east-1.amazonaws.com/a/role%20template.yaml"
        );
        assert_eq!(
            s3_object_url(Partition::AwsCn, "cn-north-1", "b", "k.yaml", None),
            "https://b.s3.cn-north-1.amazonaws.com.cn/k.yaml"
        );
        assert_eq!(
            s3_object_url(Partition::Aws, "us-east-1", "b", "a/k.yaml", Some("http://127.0.0.1:4566/")),
            "http://127.0.0.1:4566/b/a/k.yaml"
        );
        let policy = bucket_policy(Partition::AwsUsGov, "b", "a/k.yaml");
        assert_eq!(policy["Statement"][0]["Resource"], "arn:aws-us-gov:s3:::b/a/k.yaml");
        assert_eq!(policy["Statement"][0]["Action"], "s3:GetObject");
    }
}

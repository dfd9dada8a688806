//! The CloudFormation quick-create link end to end, against the emulator:
//! `orglink publish-template` puts the generic template in S3, the link of
//! a registered account is read back, the template is fetched from the
//! link's bucket and key and a stack is created in the customer's account
//! with exactly the link's parameters (as the console does for the owner),
//! and the next probe run verifies the role. Nothing is pasted.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use orglink::domain::LinkState;

use crate::harness::{Keys, Orglink, PLATFORM, emulator};

const BUCKET: &str = "orglink-templates";

/// An S3 client of the emulator as `keys` (path-style, as orglink's is).
fn s3(keys: &Keys) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&emulator().sdk_config(keys)).force_path_style(true).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The platform's bucket, made once.
async fn bucket(keys: &Keys) {
    static MADE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    MADE.get_or_init(|| async {
        s3(keys).create_bucket().bucket(BUCKET).send().await.expect("the bucket is created");
    })
    .await;
}

/// A CloudFormation Query API call in the emulator as `keys`, signed as
/// the SDK signs (SigV4): no CloudFormation SDK crate to compile for this.
async fn cloudformation(keys: &Keys, params: &[(&str, &str)]) -> String {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let mut form = vec![("Version", "2010-05-15")];
    form.extend_from_slice(params);
    let body = reqwest::Url::parse_with_params("http://x/", &form).unwrap().query().unwrap().to_owned();
    let url = format!("{}/", emulator().endpoint);
    let identity = Credentials::new(&keys.access_key_id, &keys.secret_access_key, None, None, "test").into();
    let signing = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("cloudformation")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let host = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("host", host.as_str())];
    let signable =
        SignableRequest::new("POST", url.as_str(), headers.into_iter(), SignableBody::Bytes(body.as_bytes())).unwrap();
    let (instructions, _) = sign(signable, &signing).unwrap().into_parts();
    let mut request = reqwest::Client::new().post(&url).header("content-type", headers[0].1).body(body.clone());
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "CloudFormation {params:?} answered {status}: {text}");
    text
}

/// The quick-create link's parts: the console's host and region, and the
/// parameters after `#/stacks/quickcreate?`, each decoded.
fn read_link(link: &str) -> (String, String, BTreeMap<String, String>) {
    let url = reqwest::Url::parse(link).expect("the link is a URL");
    let region = url.query_pairs().find(|(k, _)| k == "region").map(|(_, v)| v.into_owned()).unwrap();
    let fragment = url.fragment().unwrap();
    let query = fragment.strip_prefix("/stacks/quickcreate?").expect("the quick-create page");
    let params = reqwest::Url::parse(&format!("http://x/?{query}")).unwrap().query_pairs().into_owned().collect();
    (url.host_str().unwrap().to_owned(), region, params)
}

/// The text after `tag` in `xml`, up to the next `<`.
fn xml_value<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    Some(&xml[start..start + xml[start..].find('<')?])
}

async fn one_click(account: &str, support: &str) {
    let platform = emulator().admin(PLATFORM, "orglink-publisher").await;
    bucket(&platform).await;
    let o = Orglink::new().aws(&platform);
    let key = format!("orglink/{account}/role-template.yaml");

    // Published once, by the distributor.
    let run = o.run(&["publish-template", "--bucket", BUCKET, "--key", &key, "--region", "us-east-1"]);
    assert_eq!(run.code, 0, "{run:?}");
    let template_url = format!("{}/{BUCKET}/{key}", emulator().endpoint);
    assert!(run.stdout.contains(&template_url), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("\"Resource\": \"arn:aws:s3:::{BUCKET}/{key}\"")), "{}", run.stdout);
    assert!(run.stdout.contains("\"Principal\": \"*\""), "{}", run.stdout);
    let o = o.env("ORGLINK_INSTRUCTIONS_TEMPLATE_URL", &template_url);

    // A reseller registers the account: the link comes first.
    let added = o.ok(&["account", "add", account, "--tenant", "acme", "--customer", "Acme", "--support", support]);
    let link = o.ok(&["instructions", account, "--format", "link"]).trim().to_owned();
    assert!(!link.contains(char::is_whitespace), "{link}");
    let first_step = added.find(&link).expect("the instructions show the link");
    assert!(first_step < added.find("1. ").unwrap(), "the link before the console steps: {added}");

    let external_id = o.account(account).unwrap().external_id.as_str().to_owned();
    let (host, region, params) = read_link(&link);
    assert_eq!((host.as_str(), region.as_str()), ("console.aws.amazon.com", "us-east-1"));
    assert_eq!(params["templateURL"], template_url);
    assert_eq!(params["param_ExternalId"], external_id);
    assert_eq!(params["param_RoleName"], "OrgLinkReadOnly");
    assert_eq!(params["param_SupportAccess"], (support == "business").to_string());

    // The owner opens the link: the console reads the template from the
    // URL's bucket and key, with the owner's identity.
    let owner = emulator().admin(account, "owner").await;
    let url = reqwest::Url::parse(&params["templateURL"]).unwrap();
    let mut path = url.path_segments().unwrap();
    let (bucket, key) = (path.next().unwrap().to_owned(), path.collect::<Vec<_>>().join("/"));
    let object = s3(&owner).get_object().bucket(&bucket).key(&key).send().await.expect("the template is readable");
    let template = String::from_utf8(object.body.collect().await.unwrap().to_vec()).unwrap();
    assert!(template.contains(&format!("arn:aws:iam::{PLATFORM}:root")), "{template}");

    // ... and creates the stack with exactly the link's parameters.
    let mut call = vec![
        ("Action", "CreateStack"),
        ("StackName", params["stackName"].as_str()),
        ("TemplateBody", template.as_str()),
        ("Capabilities.member.1", "CAPABILITY_NAMED_IAM"),
    ];
    let names: Vec<(String, String, &str)> = params
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("param_").map(|name| (name.to_owned(), v.as_str())))
        .enumerate()
        .map(|(i, (name, value))| (format!("Parameters.member.{}.ParameterKey", i + 1), name, value))
        .collect();
    let values: Vec<String> = (1..=names.len()).map(|i| format!("Parameters.member.{i}.ParameterValue")).collect();
    for ((key_field, name, value), value_field) in names.iter().zip(&values) {
        call.push((key_field.as_str(), name.as_str()));
        call.push((value_field.as_str(), value));
    }
    cloudformation(&owner, &call).await;
    let mut status = String::new();
    for _ in 0..100 {
        let described =
            cloudformation(&owner, &[("Action", "DescribeStacks"), ("StackName", params["stackName"].as_str())]).await;
        status = xml_value(&described, "StackStatus").unwrap_or_default().to_owned();
        if status != "CREATE_IN_PROGRESS" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "CREATE_COMPLETE");

    // The next probe run finds the role and verifies it: nothing pasted.
    let now = time::OffsetDateTime::now_utc();
    crate::harness::change(&o.store(), account, "test", now, |a| {
        a.probe.as_mut().expect("probing from registration").next_at = Some(now - time::Duration::minutes(1));
        Ok::<_, ()>(vec![])
    });
    let run = o.run(&["sweep", "--job", "probe_roles"]);
    assert_eq!(run.code, 0, "{run:?}");
    let verified = o.account(account).unwrap();
    assert_eq!(verified.state, LinkState::RoleVerified, "{run:?}");
    let role = verified.role.expect("the role is recorded");
    assert_eq!(role.arn.to_string(), format!("arn:aws:iam::{account}:role/OrgLinkReadOnly"));
    let report = role.report.expect("its report");
    let support_attached = support == "business";
    // With AWSSupportAccess, orglink's Support client (its endpoint from
    // AWS_ENDPOINT_URL, like every AWS client) asks the emulator, which
    // answers every account as supported; without it, AWS is not asked.
    let tier = if support_attached {
        orglink::domain::AwsSupportTier::BusinessOrHigher
    } else {
        orglink::domain::AwsSupportTier::not_checked(orglink::domain::TierNotChecked::NoSupportAccess)
    };
    assert_eq!(report.support_tier, tier, "{report:#?}");
    let report = serde_json::to_value(report).unwrap().to_string();
    assert_eq!(report.contains("support_access\",\"outcome\":\"passed"), support_attached, "{report}");
}

#[tokio::test]
async fn a_stack_made_from_the_link_is_found_and_verified_without_pasting() {
    one_click("444400000001", "basic").await;
}

#[tokio::test]
async fn with_business_support_the_link_asks_for_support_access_and_the_role_has_it() {
    one_click("444400000002", "business").await;
}

#[test]
fn without_a_template_url_nothing_changes_and_no_link_is_given() {
    let o = Orglink::new();
    let added =
        o.ok(&["account", "add", "444400000003", "--tenant", "acme", "--customer", "Acme", "--support", "basic"]);
    assert!(!added.contains("quickcreate"), "{added}");
    let run = o.run(&["instructions", "444400000003", "--format", "link"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("instructions.template_url"), "{run:?}");
}

#[test]
fn publish_template_refuses_a_bad_bucket_before_asking_aws() {
    let o = Orglink::new();
    let run = o.run(&["publish-template", "--bucket", "Not_A_Bucket"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("S3 bucket"), "{run:?}");
}

/// `doctor` asks the configured template URL as CloudFormation will: the
/// published one answers; a key with nothing at it and a closed port are
/// each named, and doctor exits 1.
#[tokio::test]
async fn doctor_checks_that_the_template_url_answers() {
    let platform = emulator().admin(PLATFORM, "orglink-publisher").await;
    bucket(&platform).await;
    let o = Orglink::new().aws(&platform);
    let key = "orglink/doctor/role-template.yaml";
    assert_eq!(o.run(&["publish-template", "--bucket", BUCKET, "--key", key]).code, 0);
    let published = format!("{}/{BUCKET}/{key}", emulator().endpoint);
    let doctor =
        |url: &str, lang: &str| o.run_with(&[("ORGLINK_INSTRUCTIONS_TEMPLATE_URL", url)], &["doctor", "--lang", lang]);

    let run = doctor(&published, "en");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(&format!("✅ Role template: {published} answers")), "{}", run.stdout);

    let missing = format!("{}/{BUCKET}/orglink/nothing-here.yaml", emulator().endpoint);
    let run = doctor(&missing, "en");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains(&format!("❌ Role template: {missing} answered HTTP 404")), "{}", run.stdout);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let closed = format!("http://{closed}/t.yaml");
    let run = doctor(&closed, "es");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains(&format!("❌ Plantilla del rol: no se pudo conectar con {closed}")), "{}", run.stdout);

    // Without the key, doctor says there is no link, and that is no fault.
    let run = o.run(&["doctor"]);
    assert!(run.stdout.contains("➖ Role template: not published"), "{}", run.stdout);
}

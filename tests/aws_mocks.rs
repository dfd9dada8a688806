//! What AWS does and the emulator does not, scripted at the SDK client
//! layer with aws-smithy-mocks: a role that becomes assumable only after a
//! few seconds, throttling, and policies spread over several pages.

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
use aws_sdk_iam::types::AttachedPolicy;
use aws_sdk_organizations::operation::describe_organization::DescribeOrganizationError;
use aws_sdk_organizations::types::error::AwsOrganizationsNotInUseException;
use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use orglink::aws::{Aws, RetryPolicy, Session, SessionFactory, VerifyRequest};
use orglink::domain::{CheckName, Outcome, Problem, SupportTier};

const ACCOUNT: &str = "555500000001";

fn denied() -> String {
    r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to perform: sts:AssumeRole</Message></Error><RequestId>1</RequestId></ErrorResponse>"#.to_owned()
}

fn throttled() -> String {
    r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>"#.to_owned()
}

fn credentials() -> AssumeRoleOutput {
    let expiration = aws_sdk_sts::primitives::DateTime::from_secs(4_000_000_000);
    AssumeRoleOutput::builder()
        .credentials(
            aws_sdk_sts::types::Credentials::builder()
                .access_key_id("ASIAEXAMPLE")
                .secret_access_key("secret")
                .session_token("token")
                .expiration(expiration)
                .build()
                .unwrap(),
        )
        .build()
}

fn request() -> VerifyRequest {
    VerifyRequest {
        account: ACCOUNT.parse().unwrap(),
        arn: format!("arn:aws:iam::{ACCOUNT}:role/OrgLinkReadOnly").parse().unwrap(),
        external_id: "CA0123456789ABCDEFGHJK".parse().unwrap(),
        tier: SupportTier::Basic,
    }
}

fn base() -> SdkConfig {
    SdkConfig::builder().behavior_version(BehaviorVersion::latest()).region(Region::new("us-east-1")).build()
}

/// The role's session: the account is right, ReadOnlyAccess is on the
/// second page of policies, and the account is in no organization.
fn session(iam_rules: Vec<Rule>) -> SessionFactory {
    let identity = mock!(aws_sdk_sts::Client::get_caller_identity)
        .then_output(|| GetCallerIdentityOutput::builder().account(ACCOUNT).build());
    let organization = mock!(aws_sdk_organizations::Client::describe_organization).then_error(|| {
        DescribeOrganizationError::AwsOrganizationsNotInUseException(
            AwsOrganizationsNotInUseException::builder().message("not in use").build(),
        )
    });
    let (identity, organization) = (Arc::new(identity), Arc::new(organization));
    let iam_rules = Arc::new(iam_rules);
    Arc::new(move |_config: &SdkConfig| Session {
        sts: mock_client!(aws_sdk_sts, RuleMode::MatchAny, [identity.as_ref()]),
        iam: mock_client!(aws_sdk_iam, RuleMode::Sequential, iam_rules.iter()),
        organizations: mock_client!(aws_sdk_organizations, RuleMode::MatchAny, [organization.as_ref()]),
    })
}

fn two_pages() -> Vec<Rule> {
    let first = mock!(aws_sdk_iam::Client::list_attached_role_policies).then_output(|| {
        ListAttachedRolePoliciesOutput::builder()
            .attached_policies(
                AttachedPolicy::builder().policy_arn("arn:aws:iam::aws:policy/job-function/ViewOnlyAccess").build(),
            )
            .is_truncated(true)
            .marker("page-2")
            .build()
    });
    let second = mock!(aws_sdk_iam::Client::list_attached_role_policies)
        .match_requests(|r| r.marker() == Some("page-2"))
        .then_output(|| {
            ListAttachedRolePoliciesOutput::builder()
                .attached_policies(
                    AttachedPolicy::builder().policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess").build(),
                )
                .is_truncated(false)
                .build()
        });
    vec![first, second]
}

fn retries(retries: u32) -> RetryPolicy {
    RetryPolicy { retries, first_delay: Duration::from_millis(5) }
}

#[tokio::test]
async fn a_role_that_becomes_assumable_after_two_retries_is_verified() {
    let with_id = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(|r| r.external_id().is_some())
        .sequence()
        .http_status(403, Some(denied()))
        .times(2)
        .output(credentials)
        .build();
    let without_id = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(|r| r.external_id().is_none())
        .sequence()
        .http_status(403, Some(denied()))
        .repeatedly()
        .build();
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&with_id, &without_id]);
    let aws = Aws::with_clients(base(), sts, session(two_pages()), retries(3));
    let report = aws.verify(&request()).await;
    assert!(report.verified(), "{report:#?}");
    assert_eq!(report.attempts, 3, "two AccessDenied, then the role was there");
    assert_eq!(with_id.num_calls(), 3);
    assert_eq!(without_id.num_calls(), 1, "the confused-deputy guard asked once");
    assert_eq!(report.outcome(CheckName::ReadOnlyAccess), Some(&Outcome::Passed), "found on page 2");

    // With fewer retries allowed than the role needs, it is No Access.
    let with_id = mock!(aws_sdk_sts::Client::assume_role)
        .sequence()
        .http_status(403, Some(denied()))
        .times(2)
        .output(credentials)
        .build();
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&with_id]);
    let aws = Aws::with_clients(base(), sts, session(two_pages()), retries(1));
    let report = aws.verify(&request()).await;
    assert_eq!(report.outcome(CheckName::AssumeRole), Some(&Outcome::Failed { problem: Problem::AccessDenied }));
    assert_eq!(report.attempts, 2);
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_and_never_reads_as_no_access() {
    let throttled_once = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(|r| r.external_id().is_some())
        .sequence()
        .http_status(400, Some(throttled()))
        .output(credentials)
        .build();
    let guard = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(|r| r.external_id().is_none())
        .sequence()
        .http_status(403, Some(denied()))
        .repeatedly()
        .build();
    let retrying = |c: aws_sdk_sts::config::Builder| {
        c.retry_config(
            aws_sdk_sts::config::retry::RetryConfig::standard().with_initial_backoff(Duration::from_millis(1)),
        )
    };
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&throttled_once, &guard], retrying);
    let aws = Aws::with_clients(base(), sts, session(two_pages()), retries(0));
    let report = aws.verify(&request()).await;
    assert!(report.verified(), "{report:#?}");
    assert_eq!(throttled_once.num_calls(), 2, "the SDK retried the throttled call");

    // Throttled for good: AWS could not be asked; that is not "access denied".
    let always =
        mock!(aws_sdk_sts::Client::assume_role).sequence().http_status(400, Some(throttled())).repeatedly().build();
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&always], retrying);
    let aws = Aws::with_clients(base(), sts, session(two_pages()), retries(3));
    let report = aws.verify(&request()).await;
    assert!(matches!(
        report.outcome(CheckName::AssumeRole),
        Some(Outcome::Failed { problem: Problem::Unavailable { .. } })
    ));
    assert_eq!(report.attempts, 1, "orglink's own retries are for AccessDenied only");
    assert_eq!(always.num_calls(), 3, "the SDK's standard retries: 3 attempts");
}

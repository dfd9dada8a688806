//! What AWS does and the emulator does not, scripted at the SDK client
//! layer with aws-smithy-mocks: a role that becomes assumable only after a
//! few seconds, throttling, policies spread over several pages, and what
//! is not called once the external ID guard fails.

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
use aws_sdk_iam::types::AttachedPolicy;
use aws_sdk_organizations::operation::describe_organization::DescribeOrganizationError;
use aws_sdk_organizations::types::error::AwsOrganizationsNotInUseException;
use aws_sdk_sts::operation::assume_role::AssumeRoleOutput;
use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
use aws_sdk_support::operation::describe_severity_levels::DescribeSeverityLevelsOutput;
use aws_sdk_support::types::SeverityLevel;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use orglink::aws::{Aws, RetryPolicy, Session, SessionFactory, VerifyRequest};
use orglink::domain::{CheckName, Outcome, Problem, SupportTier};

const ACCOUNT: &str = "555500000001";
/// The account's external ID: AssumeRole with any other is the guard's.
const EXTERNAL_ID: &str = "CA0123456789ABCDEFGHJK";

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
        external_id: EXTERNAL_ID.parse().unwrap(),
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
    let support = Arc::new(severity_levels());
    Arc::new(move |_config: &SdkConfig| Session {
        sts: mock_client!(aws_sdk_sts, RuleMode::MatchAny, [identity.as_ref()]),
        iam: mock_client!(aws_sdk_iam, RuleMode::Sequential, iam_rules.iter()),
        organizations: mock_client!(aws_sdk_organizations, RuleMode::MatchAny, [organization.as_ref()]),
        support: mock_client!(aws_sdk_support, RuleMode::MatchAny, [support.as_ref()]),
    })
}

/// `support:DescribeSeverityLevels` answered: an account with Business
/// support or higher.
fn severity_levels() -> Rule {
    mock!(aws_sdk_support::Client::describe_severity_levels).then_output(|| {
        DescribeSeverityLevelsOutput::builder()
            .severity_levels(SeverityLevel::builder().code("low").name("Low").build())
            .severity_levels(SeverityLevel::builder().code("urgent").name("Urgent").build())
            .build()
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
        .match_requests(|r| r.external_id() == Some(EXTERNAL_ID))
        .sequence()
        .http_status(403, Some(denied()))
        .times(2)
        .output(credentials)
        .build();
    let guard = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(|r| r.external_id() != Some(EXTERNAL_ID))
        .sequence()
        .http_status(403, Some(denied()))
        .repeatedly()
        .build();
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&with_id, &guard]);
    let aws = Aws::with_clients(base(), sts, session(two_pages()), retries(3));
    let report = aws.verify(&request()).await;
    assert!(report.verified(), "{report:#?}");
    assert_eq!(report.attempts, 3, "two AccessDenied, then the role was there");
    assert_eq!(with_id.num_calls(), 3);
    assert_eq!(guard.num_calls(), 2, "the confused-deputy guard asked once without an ID, once with a wrong one");
    assert_eq!(report.assume_role_calls(), 5);
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
        .match_requests(|r| r.external_id() == Some(EXTERNAL_ID))
        .sequence()
        .http_status(400, Some(throttled()))
        .output(credentials)
        .build();
    let guard = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(|r| r.external_id() != Some(EXTERNAL_ID))
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

/// How the role answers AssumeRole without an external ID or with a wrong one.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Allowed,
    Denied,
    Throttled,
}

/// orglink's STS client: the account's external ID is always accepted; the
/// guard's calls are answered `without` and `wrong`. The wrong IDs offered
/// are kept in `seen`.
fn guarded_sts(
    without: Answer,
    wrong: Answer,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
) -> (aws_sdk_sts::Client, [Rule; 3]) {
    let answer = |rule: aws_smithy_mocks::RuleBuilder<_, _, _>, answer| match answer {
        Answer::Allowed => rule.then_output(credentials),
        Answer::Denied => rule.sequence().http_status(403, Some(denied())).repeatedly().build(),
        Answer::Throttled => rule.sequence().http_status(400, Some(throttled())).repeatedly().build(),
    };
    let right = mock!(aws_sdk_sts::Client::assume_role)
        .match_requests(|r| r.external_id() == Some(EXTERNAL_ID))
        .then_output(credentials);
    let without =
        answer(mock!(aws_sdk_sts::Client::assume_role).match_requests(|r| r.external_id().is_none()), without);
    let wrong = answer(
        mock!(aws_sdk_sts::Client::assume_role).match_requests(move |r| match r.external_id() {
            Some(id) if id != EXTERNAL_ID => {
                seen.lock().unwrap().push(id.to_owned());
                true
            }
            _ => false,
        }),
        wrong,
    );
    let no_retries =
        |c: aws_sdk_sts::config::Builder| c.retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled());
    let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&right, &without, &wrong], no_retries);
    (sts, [right, without, wrong])
}

#[tokio::test]
async fn when_the_guard_fails_the_roles_credentials_are_used_for_nothing() {
    let cases = [
        (Answer::Denied, Answer::Allowed, Problem::AnyExternalIdAccepted),
        (Answer::Allowed, Answer::Denied, Problem::ExternalIdNotRequired),
        (Answer::Allowed, Answer::Allowed, Problem::ExternalIdNotRequired),
        (Answer::Allowed, Answer::Throttled, Problem::ExternalIdNotRequired),
        (Answer::Throttled, Answer::Allowed, Problem::AnyExternalIdAccepted),
    ];
    for (without, wrong, problem) in cases {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (sts, [right, without_rule, wrong_rule]) = guarded_sts(without, wrong, seen.clone());
        // The role's session: every call would be answered, and counted.
        let identity = Arc::new(
            mock!(aws_sdk_sts::Client::get_caller_identity)
                .then_output(|| GetCallerIdentityOutput::builder().account(ACCOUNT).build()),
        );
        let policies = Arc::new(mock!(aws_sdk_iam::Client::list_attached_role_policies).then_output(|| {
            ListAttachedRolePoliciesOutput::builder()
                .attached_policies(
                    AttachedPolicy::builder().policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess").build(),
                )
                .build()
        }));
        let organization = Arc::new(mock!(aws_sdk_organizations::Client::describe_organization).then_error(|| {
            DescribeOrganizationError::AwsOrganizationsNotInUseException(
                AwsOrganizationsNotInUseException::builder().message("not in use").build(),
            )
        }));
        let support = Arc::new(severity_levels());
        let sessions = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let session: SessionFactory = {
            let (identity, policies, organization, support, sessions) =
                (identity.clone(), policies.clone(), organization.clone(), support.clone(), sessions.clone());
            Arc::new(move |_config: &SdkConfig| {
                sessions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Session {
                    sts: mock_client!(aws_sdk_sts, RuleMode::MatchAny, [identity.as_ref()]),
                    iam: mock_client!(aws_sdk_iam, RuleMode::MatchAny, [policies.as_ref()]),
                    organizations: mock_client!(aws_sdk_organizations, RuleMode::MatchAny, [organization.as_ref()]),
                    support: mock_client!(aws_sdk_support, RuleMode::MatchAny, [support.as_ref()]),
                }
            })
        };
        let aws = Aws::with_clients(base(), sts, session, retries(0));
        for report in [aws.verify(&request()).await, aws.probe(&request()).await] {
            let case = format!("without {without:?}, wrong {wrong:?}: {report:#?}");
            assert!(!report.verified(), "{case}");
            assert_eq!(report.outcome(CheckName::AssumeRole), Some(&Outcome::Passed), "{case}");
            assert_eq!(
                report.outcome(CheckName::ExternalIdRequired),
                Some(&Outcome::Failed { problem: problem.clone() }),
                "{case}"
            );
            for name in [
                CheckName::CallerIdentity,
                CheckName::ReadOnlyAccess,
                CheckName::SupportAccess,
                CheckName::Organization,
            ] {
                assert_eq!(report.outcome(name), Some(&Outcome::Skipped), "{name:?} {case}");
            }
            assert_eq!(report.detected_kind, None, "{case}");
            assert_eq!(report.assume_role_calls(), 3, "{case}");
        }
        assert_eq!(
            (right.num_calls(), without_rule.num_calls(), wrong_rule.num_calls()),
            (2, 2, 2),
            "verify and probe: once each with the ID, without one and with a wrong one"
        );
        assert_eq!(sessions.load(std::sync::atomic::Ordering::SeqCst), 0, "no client was given the role's credentials");
        assert_eq!(
            (identity.num_calls(), policies.num_calls(), organization.num_calls(), support.num_calls()),
            (0, 0, 0, 0)
        );
        // The wrong IDs are fresh, shaped like the account's, and not it.
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_ne!(seen[0], seen[1]);
        for id in &seen {
            assert!(id.starts_with("CA") && id.len() == EXTERNAL_ID.len() && id != EXTERNAL_ID, "{id}");
            assert!(id.parse::<orglink::domain::ExternalId>().is_ok(), "{id}");
        }
    }

    // Both refused, but one could not be asked: not proven, nothing else runs.
    let (sts, _) = guarded_sts(Answer::Denied, Answer::Throttled, Arc::default());
    let aws = Aws::with_clients(base(), sts, session(two_pages()), retries(0));
    let report = aws.probe(&request()).await;
    assert!(matches!(
        report.outcome(CheckName::ExternalIdRequired),
        Some(Outcome::Failed { problem: Problem::Unavailable { .. } })
    ));
    assert_eq!(report.outcome(CheckName::ReadOnlyAccess), Some(&Outcome::Skipped));

    // Both refused: the other checks run with the role's credentials.
    let (sts, _) = guarded_sts(Answer::Denied, Answer::Denied, Arc::default());
    let aws = Aws::with_clients(base(), sts, session(two_pages()), retries(0));
    let report = aws.probe(&request()).await;
    assert!(report.verified(), "{report:#?}");
    assert_eq!(report.assume_role_calls(), 3);
}

mod support_tier {
    //! What AWS says of the support tier: `support:DescribeSeverityLevels`
    //! with the role's credentials, scripted (the emulator answers every
    //! account as supported). Through the app: the report, `account show`
    //! in both languages, and who hears of it.

    use std::sync::{Arc, Mutex};

    use aws_config::SdkConfig;
    use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput;
    use aws_sdk_iam::types::AttachedPolicy;
    use aws_sdk_organizations::operation::describe_organization::DescribeOrganizationError;
    use aws_sdk_organizations::types::error::AwsOrganizationsNotInUseException;
    use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use orglink::app::{AccountView, Command, Message, VerificationView};
    use orglink::aws::{Aws, Session, SessionFactory};
    use orglink::domain::{
        Audience, AwsSupportTier, Event, Lang, SupportLevel, SupportPlanGroup, SupportTier, TierNotChecked,
    };
    use orglink::templates::Templates;
    use time::macros::datetime;

    use super::{ACCOUNT, base, credentials, denied, retries, severity_levels};
    use crate::harness::{Harness, operator};

    /// How the Support API answers the role.
    #[derive(Debug, Clone, Copy)]
    enum Support {
        /// Business support or higher.
        Answers,
        SubscriptionRequired,
        AccessDenied,
        /// An endpoint without the Support API (an emulator that lacks it).
        Unknown,
    }

    fn subscription_required() -> String {
        r#"{"__type":"SubscriptionRequiredException","message":"AWS Premium Support Subscription is required to use this service."}"#.to_owned()
    }

    fn access_denied() -> String {
        format!(
            r#"{{"__type":"AccessDeniedException","Message":"User: arn:aws:sts::{ACCOUNT}:assumed-role/OrgLinkReadOnly/orglink-verify-{ACCOUNT} is not authorized to perform: support:DescribeSeverityLevels with an explicit deny in a service control policy"}}"#
        )
    }

    /// orglink's AWS side for a role with ReadOnlyAccess and
    /// AWSSupportAccess that trusts exactly the external ID in `expected`
    /// (set once the account is registered); the Support API answers
    /// `support`. Also the Support API's rule, to count its calls.
    fn aws(support: Support, expected: Arc<Mutex<String>>) -> (Aws, Arc<Rule>) {
        let right = expected.clone();
        let with_id = mock!(aws_sdk_sts::Client::assume_role)
            .match_requests(move |r| r.external_id() == Some(right.lock().unwrap().as_str()))
            .then_output(credentials);
        let guard = mock!(aws_sdk_sts::Client::assume_role)
            .match_requests(move |r| r.external_id() != Some(expected.lock().unwrap().as_str()))
            .sequence()
            .http_status(403, Some(denied()))
            .repeatedly()
            .build();
        let sts = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&with_id, &guard]);
        let identity = Arc::new(
            mock!(aws_sdk_sts::Client::get_caller_identity)
                .then_output(|| GetCallerIdentityOutput::builder().account(ACCOUNT).build()),
        );
        let policies = Arc::new(mock!(aws_sdk_iam::Client::list_attached_role_policies).then_output(|| {
            ListAttachedRolePoliciesOutput::builder()
                .attached_policies(
                    AttachedPolicy::builder().policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess").build(),
                )
                .attached_policies(
                    AttachedPolicy::builder().policy_arn("arn:aws:iam::aws:policy/AWSSupportAccess").build(),
                )
                .build()
        }));
        let organization = Arc::new(mock!(aws_sdk_organizations::Client::describe_organization).then_error(|| {
            DescribeOrganizationError::AwsOrganizationsNotInUseException(
                AwsOrganizationsNotInUseException::builder().message("not in use").build(),
            )
        }));
        let rule = |status, body: String| {
            mock!(aws_sdk_support::Client::describe_severity_levels)
                .sequence()
                .http_status(status, Some(body))
                .repeatedly()
                .build()
        };
        let support = Arc::new(match support {
            Support::Answers => severity_levels(),
            Support::SubscriptionRequired => rule(400, subscription_required()),
            Support::AccessDenied => rule(400, access_denied()),
            Support::Unknown => rule(
                400,
                r#"{"__type":"UnknownOperationException","message":"DescribeSeverityLevels is not implemented"}"#
                    .into(),
            ),
        });
        let session: SessionFactory = {
            let support = support.clone();
            Arc::new(move |_config: &SdkConfig| Session {
                sts: mock_client!(aws_sdk_sts, RuleMode::MatchAny, [identity.as_ref()]),
                iam: mock_client!(aws_sdk_iam, RuleMode::MatchAny, [policies.as_ref()]),
                organizations: mock_client!(aws_sdk_organizations, RuleMode::MatchAny, [organization.as_ref()]),
                support: mock_client!(aws_sdk_support, RuleMode::MatchAny, [support.as_ref()]),
            })
        };
        (Aws::with_clients(base(), sts, session, retries(0)), support)
    }

    /// Registers the account with `declared` support, has its role checked
    /// while the Support API answers `support`; the report, the account as
    /// `account show` renders it in both languages, and the notices.
    async fn checked(
        declared: SupportTier,
        support: Support,
    ) -> (VerificationView, [String; 2], [String; 2], Vec<(Event, Audience)>) {
        let expected = Arc::new(Mutex::new(String::new()));
        let (aws, rule) = aws(support, expected.clone());
        let h = Harness::new().at(datetime!(2026-12-01 12:00 UTC)).scripted_aws(aws).start().await;
        *expected.lock().unwrap() = h.register(ACCOUNT, declared);
        let view = h.verify(ACCOUNT, &format!("arn:aws:iam::{ACCOUNT}:role/OrgLinkReadOnly")).await.unwrap();
        assert!(view.verified, "the support tier never fails the role: {:#?}", view.report);
        assert_eq!(rule.num_calls(), 1, "asked once, with the role");
        let shown = h.app().handle(&operator(), Command::ShowAccount { account: crate::harness::id(ACCOUNT) });
        let shown = shown.unwrap();
        let t = Templates::embedded();
        let render = |m: &Message| Lang::ALL.map(|lang| m.render(&t, lang).unwrap().text);
        let report = render(&Message::Verification(Box::new(view.clone())));
        let status = render(&shown.messages[0]);
        let view_shown: AccountView = match &shown.messages[0] {
            Message::Status(v) => v.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(view_shown.aws_support_tier.as_ref(), Some(&view.report.support_tier));
        let notices = h
            .outbox()
            .into_iter()
            .filter(|i| matches!(i.event, Event::SupportTierMismatch { .. } | Event::BusinessSupportChanged { .. }))
            .map(|i| (i.event, i.audience))
            .collect();
        h.finish().await;
        (view, report, status, notices)
    }

    fn line<'a>(text: &'a str, start: &str) -> &'a str {
        text.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no line {start:?} in:\n{text}"))
    }

    #[tokio::test]
    async fn business_declared_and_confirmed() {
        let (view, [en, es], [status_en, status_es], notices) = checked(SupportTier::Business, Support::Answers).await;
        assert_eq!(view.report.support_tier, AwsSupportTier::BusinessOrHigher);
        assert!(!view.account.support_tier_mismatch);
        assert_eq!(view.account.required_support_plan_group, SupportPlanGroup::BusinessSupport);
        for text in [&en, &status_en] {
            assert_eq!(
                line(text, "AWS support plan:"),
                "AWS support plan: declared: Business · AWS says: Business or higher"
            );
            assert!(!text.contains("not the"), "{text}");
        }
        for text in [&es, &status_es] {
            assert_eq!(
                line(text, "Plan de soporte de AWS:"),
                "Plan de soporte de AWS: declarado: Business · según AWS: Business o superior"
            );
        }
        assert_eq!(notices, [], "nothing to tell");
    }

    #[tokio::test]
    async fn business_declared_but_subscription_required() {
        let (view, [en, es], [status_en, status_es], notices) =
            checked(SupportTier::Business, Support::SubscriptionRequired).await;
        assert_eq!(view.report.support_tier, AwsSupportTier::BasicOrDeveloper);
        assert!(view.account.support_tier_mismatch);
        assert_eq!(
            view.account.required_support_plan_group,
            SupportPlanGroup::Passthrough,
            "the audit goes by AWS's tier"
        );
        for text in [&en, &status_en] {
            assert_eq!(
                line(text, "AWS support plan:"),
                "AWS support plan: declared: Business · AWS says: Basic or Developer"
            );
            assert!(
                text.contains(
                    "⚠️ AWS says this account's AWS support plan is Basic or Developer, not Business as registered: \
                     it needs the support plan group Passthrough"
                ),
                "{text}"
            );
        }
        for text in [&es, &status_es] {
            assert_eq!(
                line(text, "Plan de soporte de AWS:"),
                "Plan de soporte de AWS: declarado: Business · según AWS: Basic o Developer"
            );
            assert!(
                text.contains(
                    "⚠️ Según AWS, el plan de soporte de AWS de esta cuenta es Basic o Developer, no Business como \
                     se registró: necesita el grupo de plan de soporte Passthrough"
                ),
                "{text}"
            );
        }
        let account = ACCOUNT.parse().unwrap();
        assert_eq!(
            notices,
            [
                (
                    Event::SupportTierMismatch {
                        account,
                        declared: SupportTier::Business,
                        aws: SupportLevel::BasicOrDeveloper,
                        needs: SupportPlanGroup::Passthrough,
                    },
                    Audience::TENANT
                ),
                (
                    Event::BusinessSupportChanged {
                        account,
                        declared: SupportTier::Business,
                        aws: SupportLevel::BasicOrDeveloper
                    },
                    Audience::OPS
                ),
            ]
        );
    }

    #[tokio::test]
    async fn developer_declared_but_business_answered() {
        let (view, [en, es], [status_en, status_es], notices) = checked(SupportTier::Developer, Support::Answers).await;
        assert_eq!(view.report.support_tier, AwsSupportTier::BusinessOrHigher);
        assert!(view.account.support_tier_mismatch);
        assert_eq!(view.account.required_support_plan_group, SupportPlanGroup::BusinessSupport);
        for text in [&en, &status_en] {
            assert_eq!(
                line(text, "AWS support plan:"),
                "AWS support plan: declared: Developer · AWS says: Business or higher"
            );
            assert!(text.contains("it needs the support plan group Business Support"), "{text}");
        }
        for text in [&es, &status_es] {
            assert_eq!(
                line(text, "Plan de soporte de AWS:"),
                "Plan de soporte de AWS: declarado: Developer · según AWS: Business o superior"
            );
            assert!(text.contains("necesita el grupo de plan de soporte Business Support"), "{text}");
        }
        let codes: Vec<_> = notices.iter().map(|(e, a)| (e.code(), *a)).collect();
        assert_eq!(codes, [("support_tier_mismatch", Audience::TENANT), ("business_support_changed", Audience::OPS)]);
        assert!(matches!(
            notices[1].0,
            Event::BusinessSupportChanged { declared: SupportTier::Developer, aws: SupportLevel::BusinessOrHigher, .. }
        ));
    }

    #[tokio::test]
    async fn access_denied_is_not_checked_and_the_declared_tier_stands() {
        let (view, [en, es], [status_en, status_es], notices) =
            checked(SupportTier::Business, Support::AccessDenied).await;
        assert_eq!(view.report.support_tier, AwsSupportTier::not_checked(TierNotChecked::AccessDenied));
        assert!(!view.account.support_tier_mismatch);
        assert_eq!(view.account.required_support_plan_group, SupportPlanGroup::BusinessSupport);
        for text in [&en, &status_en] {
            assert_eq!(
                line(text, "AWS support plan:"),
                "AWS support plan: declared: Business · AWS says: not checked, AWS refused the Support API to the \
                 role: the declared plan stands"
            );
        }
        for text in [&es, &status_es] {
            assert_eq!(
                line(text, "Plan de soporte de AWS:"),
                "Plan de soporte de AWS: declarado: Business · según AWS: sin comprobar, AWS denegó al rol la API \
                 de AWS Support: vale el plan declarado"
            );
        }
        assert_eq!(notices, [], "nothing learned: nothing to tell");
    }

    #[tokio::test]
    async fn no_support_api_is_not_checked_with_its_cause_and_never_fails_the_role() {
        let (view, [en, es], [status_en, _], notices) = checked(SupportTier::Developer, Support::Unknown).await;
        let AwsSupportTier::NotChecked { reason: TierNotChecked::Unavailable { detail } } = &view.report.support_tier
        else {
            panic!("{:#?}", view.report.support_tier)
        };
        assert!(detail.contains("UnknownOperationException"), "{detail}");
        assert_eq!(view.account.required_support_plan_group, SupportPlanGroup::Passthrough, "the declared tier stands");
        for text in [&en, &status_en] {
            let line = line(text, "AWS support plan:");
            assert!(
                line.starts_with(
                    "AWS support plan: declared: Developer · AWS says: not checked, the AWS Support API did not answer ("
                ),
                "{line}"
            );
            assert!(
                line.contains("UnknownOperationException") && line.ends_with("): the declared plan stands"),
                "{line}"
            );
        }
        assert!(
            line(&es, "Plan de soporte de AWS:").contains("sin comprobar, la API de AWS Support no respondió ("),
            "{es}"
        );
        assert_eq!(notices, []);
    }
}

mod organizations {
    //! The distributor's Organizations calls, scripted: several pages of
    //! handshakes, throttling mid-sweep, the daily quota.

    use aws_sdk_organizations::operation::describe_handshake::DescribeHandshakeOutput;
    use aws_sdk_organizations::operation::invite_account_to_organization::{
        InviteAccountToOrganizationError, InviteAccountToOrganizationOutput,
    };
    use aws_sdk_organizations::operation::list_handshakes_for_organization::ListHandshakesForOrganizationOutput;
    use aws_sdk_organizations::types::error::HandshakeConstraintViolationException;
    use aws_sdk_organizations::types::{
        Handshake, HandshakeConstraintViolationExceptionReason, HandshakeParty, HandshakePartyType,
        HandshakeState as AwsState,
    };
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use orglink::app::{Command, Message, Tone};
    use orglink::domain::{Event, LinkState, Transition};
    use orglink::scheduler::Job;
    use orglink::store::Store;
    use time::macros::datetime;

    use crate::harness::{Harness, operator};

    const NOW: time::OffsetDateTime = datetime!(2026-11-26 12:00 UTC);

    fn handshake(i: u64, state: AwsState) -> Handshake {
        Handshake::builder()
            .id(format!("h-{:010}", i))
            .state(state)
            .parties(
                HandshakeParty::builder().id(format!("{:012}", i)).r#type(HandshakePartyType::Account).build().unwrap(),
            )
            .requested_timestamp(aws_sdk_organizations::primitives::DateTime::from_secs(NOW.unix_timestamp() - 86_400))
            .expiration_timestamp(aws_sdk_organizations::primitives::DateTime::from_secs(
                NOW.unix_timestamp() + 14 * 86_400,
            ))
            .build()
    }

    /// orglink's app at `NOW` by its clock, its Organizations calls answered
    /// by `organizations`.
    async fn distributor(organizations: aws_sdk_organizations::Client) -> Harness {
        Harness::new().at(NOW).organizations(organizations).start().await
    }

    /// Account `i`, role verified, invited with handshake `h-000000000i`.
    fn invited(store: &Store, i: u64) {
        let (id, handshake) = (format!("{:012}", i), format!("h-{:010}", i));
        crate::harness::invited(store, &id, &handshake, NOW, NOW + time::Duration::days(14));
    }

    #[tokio::test]
    async fn one_sweep_reads_every_page_and_records_each_change_once() {
        // Three pages: 1-2, 3-4, 5; account 2 accepted, 4 declined, 5 expired on AWS's side.
        let page = |token: Option<&'static str>, items: Vec<Handshake>, next: Option<&'static str>| {
            mock!(aws_sdk_organizations::Client::list_handshakes_for_organization)
                .match_requests(move |r| r.next_token() == token)
                .then_output(move || {
                    ListHandshakesForOrganizationOutput::builder()
                        .set_handshakes(Some(items.clone()))
                        .set_next_token(next.map(str::to_owned))
                        .build()
                })
        };
        let first = page(None, vec![handshake(1, AwsState::Open), handshake(2, AwsState::Accepted)], Some("p2"));
        let second = page(Some("p2"), vec![handshake(3, AwsState::Open), handshake(4, AwsState::Declined)], Some("p3"));
        let third = page(Some("p3"), vec![handshake(5, AwsState::Expired)], None);
        let describe = mock!(aws_sdk_organizations::Client::describe_handshake)
            .then_output(|| DescribeHandshakeOutput::builder().handshake(handshake(9, AwsState::Open)).build());
        let client = mock_client!(aws_sdk_organizations, RuleMode::MatchAny, [&first, &second, &third, &describe]);
        let h = distributor(client).await;
        for i in 1..=5 {
            invited(h.store(), i);
        }
        let report = h.run(Job::PollHandshakes).await;
        assert_eq!(report.tracked, 5);
        assert_eq!(report.changed, 3);
        assert_eq!(report.aws_calls, 3, "one call per page, none per account");
        assert_eq!(describe.num_calls(), 0);
        let state = |i: u64| h.state(&format!("{:012}", i));
        assert_eq!(state(2), LinkState::Linked);
        assert_eq!(state(4), LinkState::InvitationDeclined);
        assert_eq!(state(5), LinkState::InvitationExpired);
        assert_eq!(state(1), LinkState::Invited);
        let again = h.run(Job::PollHandshakes).await;
        assert_eq!(again.changed, 0);
        let linked = h.outbox().iter().filter(|i| matches!(i.event, Event::AccountLinked { .. })).count();
        assert_eq!(linked, 1);
        h.finish().await;
    }

    #[tokio::test]
    async fn throttling_mid_sweep_marks_nothing_expired_and_the_rest_go_on() {
        let throttled = r#"{"__type":"TooManyRequestsException","Message":"Rate exceeded"}"#;
        let list = mock!(aws_sdk_organizations::Client::list_handshakes_for_organization)
            .sequence()
            .http_status(400, Some(throttled.to_owned()))
            .repeatedly()
            .build();
        // Account 11 is described fine (accepted); 12 is throttled too.
        let describe_ok = mock!(aws_sdk_organizations::Client::describe_handshake)
            .match_requests(|r| r.handshake_id() == Some("h-0000000011"))
            .then_output(|| DescribeHandshakeOutput::builder().handshake(handshake(11, AwsState::Accepted)).build());
        let describe_throttled = mock!(aws_sdk_organizations::Client::describe_handshake)
            .match_requests(|r| r.handshake_id() == Some("h-0000000012"))
            .sequence()
            .http_status(400, Some(throttled.to_owned()))
            .repeatedly()
            .build();
        let no_retries = |c: aws_sdk_organizations::config::Builder| {
            c.retry_config(aws_sdk_organizations::config::retry::RetryConfig::disabled())
        };
        let client = mock_client!(
            aws_sdk_organizations,
            RuleMode::MatchAny,
            [&list, &describe_ok, &describe_throttled],
            no_retries
        );
        let h = distributor(client).await;
        for i in 11..=12 {
            invited(h.store(), i);
        }
        let report = h.run(Job::PollHandshakes).await;
        assert_eq!(report.changed, 1);
        assert_eq!(report.unchecked.len(), 1);
        assert_eq!(report.unchecked[0].0, "000000000012");
        assert_eq!(h.state("000000000011"), LinkState::Linked);
        assert_eq!(h.state("000000000012"), LinkState::Invited, "an error never marks an invitation expired");
        assert_eq!(h.notified("000000000011").iter().filter(|c| **c == "account_linked").count(), 1);
        assert_eq!(h.notified("000000000012").last(), Some(&"invitation_sent"), "nothing after the invitation");
        h.finish().await;
    }

    #[tokio::test]
    async fn the_daily_quota_queues_the_invitation_until_aws_allows() {
        let invite = mock!(aws_sdk_organizations::Client::invite_account_to_organization)
            .sequence()
            .error(|| {
                InviteAccountToOrganizationError::HandshakeConstraintViolationException(
                    HandshakeConstraintViolationException::builder()
                        .reason(HandshakeConstraintViolationExceptionReason::HandshakeRateLimitExceeded)
                        .build(),
                )
            })
            .output(|| InviteAccountToOrganizationOutput::builder().handshake(handshake(21, AwsState::Open)).build())
            .build();
        let client = mock_client!(aws_sdk_organizations, RuleMode::Sequential, [&invite]);
        let h = distributor(client).await;
        invited(h.store(), 21);
        // Back to "role verified": the invitation is to be sent again.
        crate::harness::change(h.store(), "000000000021", "setup", NOW, |a| {
            a.apply(&Transition::InvitationExpired, NOW)
        });
        let command = Command::Invite { account: "000000000021".parse().unwrap(), note: None };
        let reply = h.app().execute(&operator(), command).await.unwrap();
        assert_eq!(reply.tone, Tone::Warning);
        assert!(matches!(reply.messages[0], Message::InvitationQueued(_)));
        let account = h.account("000000000021");
        assert!(account.queued_invitation.is_some());
        assert_eq!(account.state, LinkState::InvitationExpired, "not invited yet");
        assert!(h.events("000000000021").iter().any(|e| matches!(e, Event::InvitationQueued { .. })));

        let report = h.run(Job::SendQueuedInvitations).await;
        assert_eq!((report.tracked, report.changed), (1, 1));
        let account = h.account("000000000021");
        assert_eq!(account.state, LinkState::Invited);
        assert!(account.queued_invitation.is_none());
        assert_eq!(invite.num_calls(), 2);
        assert_eq!(h.notified("000000000021").last(), Some(&"invitation_sent"));
        h.finish().await;
    }

    #[tokio::test]
    async fn every_constraint_reason_is_explained_not_crashed_on() {
        for reason in HandshakeConstraintViolationExceptionReason::values() {
            if *reason == "HANDSHAKE_RATE_LIMIT_EXCEEDED" {
                continue;
            }
            let value = HandshakeConstraintViolationExceptionReason::from(*reason);
            let invite = mock!(aws_sdk_organizations::Client::invite_account_to_organization).then_error(move || {
                InviteAccountToOrganizationError::HandshakeConstraintViolationException(
                    HandshakeConstraintViolationException::builder().reason(value.clone()).build(),
                )
            });
            let client = mock_client!(aws_sdk_organizations, RuleMode::MatchAny, [&invite]);
            let h = distributor(client).await;
            invited(h.store(), 31);
            crate::harness::change(h.store(), "000000000031", "setup", NOW, |a| {
                a.apply(&Transition::InvitationDeclined, NOW)
            });
            let command = Command::Invite { account: "000000000031".parse().unwrap(), note: None };
            let reply = h.app().execute(&operator(), command).await.unwrap();
            assert_eq!(reply.tone, Tone::Error, "{reason}");
            for lang in orglink::domain::Lang::ALL {
                let text = reply.messages[0].render(&orglink::templates::Templates::embedded(), lang).unwrap().text;
                assert!(!text.contains(reason), "{reason} has no message of its own in {lang}: {text}");
            }
            let sent = h.notified("000000000031").iter().filter(|c| **c == "invitation_sent").count();
            assert_eq!(sent, 1, "{reason}: a refused invitation is not told as sent");
            h.finish().await;
        }
    }
}

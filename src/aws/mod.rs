//! AWS: checking a customer's role with STS, IAM and Organizations.
//!
//! Built from an `SdkConfig`, so production uses the standard credential
//! chain, profiles, region and `AWS_ENDPOINT_URL`, and tests point it at a
//! local emulator.

pub mod organizations;
pub mod s3;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::error::ProvideErrorMetadata;
use time::OffsetDateTime;

use crate::domain::{
    AccountId, AccountKind, AwsSupportTier, Check, CheckName, ExternalId, GUARD_ASSUME_ROLE_CALLS, ManagedPolicy,
    Outcome, Partition, Problem, RoleArn, SupportTier, TierNotChecked, VerificationReport,
};
use crate::metrics::Metrics;

/// The most AssumeRole calls one probe makes: one with the external ID and,
/// once the role is assumed, the guard's two (without an external ID, with
/// a wrong one). The probe job's ceiling counts a probe as this many.
pub const PROBE_ASSUME_ROLE_CALLS: u32 = 1 + GUARD_ASSUME_ROLE_CALLS;

/// How the verification retries a role that is not assumable yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Further AssumeRole attempts after an `AccessDenied`.
    pub retries: u32,
    /// The first wait; each next one doubles.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { retries: 3, first_delay: Duration::from_secs(1) }
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    pub account: AccountId,
    pub arn: RoleArn,
    pub external_id: ExternalId,
    pub tier: SupportTier,
}

/// The clients that act with a customer role's credentials.
pub struct Session {
    pub sts: aws_sdk_sts::Client,
    pub iam: aws_sdk_iam::Client,
    pub organizations: aws_sdk_organizations::Client,
    /// The AWS Support API: it answers in one region of each partition
    /// (`us-east-1` in AWS's own), whatever region orglink runs in.
    pub support: aws_sdk_support::Client,
}

/// The AWS Support API's client from `config` (its credentials and
/// endpoint, `AWS_ENDPOINT_URL` included), in the Support API's region of
/// AWS's own partition; [`Aws`] asks a role of another partition in that
/// partition's region.
pub fn support_client(config: &SdkConfig) -> aws_sdk_support::Client {
    let config = aws_sdk_support::config::Builder::from(config)
        .region(aws_sdk_support::config::Region::from_static(support_region(Partition::Aws)))
        .build();
    aws_sdk_support::Client::from_conf(config)
}

/// The one region where the AWS Support API answers, in each partition.
pub fn support_region(partition: Partition) -> &'static str {
    match partition {
        Partition::Aws => "us-east-1",
        Partition::AwsCn => "cn-north-1",
        Partition::AwsUsGov => "us-gov-west-1",
    }
}

/// Builds the clients of a session from the SDK configuration that carries
/// the role's credentials.
pub type SessionFactory = Arc<dyn Fn(&SdkConfig) -> Session + Send + Sync>;

#[derive(Clone)]
pub struct Aws {
    base: SdkConfig,
    sts: aws_sdk_sts::Client,
    session: SessionFactory,
    retry: RetryPolicy,
    /// orglink's own account once STS has named it: asked at the first
    /// `AccessDenied` (to tell whose problem it is), then kept, since the
    /// credentials of one process do not change account.
    own: Arc<tokio::sync::OnceCell<String>>,
}

/// orglink's own SDK configuration: the standard credential chain, profiles,
/// `AWS_ENDPOINT_URL`, in `region` when given.
pub async fn load_sdk_config(region: Option<String>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader.load().await
}

/// Counts each AWS operation (after the SDK's own retries) by service,
/// operation and outcome.
#[derive(Debug, Clone)]
pub(crate) struct CountCalls(Arc<Metrics>);

impl aws_sdk_sts::config::Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "orglink-metrics"
    }

    fn read_after_execution(
        &self,
        context: &aws_sdk_sts::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _: &aws_sdk_sts::config::RuntimeComponents,
        cfg: &mut aws_sdk_sts::config::ConfigBag,
    ) -> Result<(), aws_sdk_sts::error::BoxError> {
        let metadata = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>();
        let (service, operation) = metadata.map_or(("unknown", "unknown"), |m| (m.service(), m.name()));
        let status = context.response().map(|r| r.status().as_u16());
        self.0.aws_call(service, operation, crate::metrics::http_outcome(status));
        Ok(())
    }
}

/// A client of any AWS service whose calls are counted in `metrics`.
pub(crate) fn counted<C: CountedClient>(client: &C, metrics: Arc<Metrics>) -> C {
    client.with_interceptor(CountCalls(metrics))
}

/// The SDK clients orglink counts the calls of.
pub(crate) trait CountedClient {
    fn with_interceptor(&self, interceptor: CountCalls) -> Self;
}

impl CountedClient for aws_sdk_sts::Client {
    fn with_interceptor(&self, interceptor: CountCalls) -> Self {
        Self::from_conf(self.config().to_builder().interceptor(interceptor).build())
    }
}

impl CountedClient for aws_sdk_iam::Client {
    fn with_interceptor(&self, interceptor: CountCalls) -> Self {
        Self::from_conf(self.config().to_builder().interceptor(interceptor).build())
    }
}

impl CountedClient for aws_sdk_organizations::Client {
    fn with_interceptor(&self, interceptor: CountCalls) -> Self {
        Self::from_conf(self.config().to_builder().interceptor(interceptor).build())
    }
}

impl CountedClient for aws_sdk_support::Client {
    fn with_interceptor(&self, interceptor: CountCalls) -> Self {
        Self::from_conf(self.config().to_builder().interceptor(interceptor).build())
    }
}

/// An AWS error's code, for errors the SDK does not model (AccessDenied).
fn code<E: ProvideErrorMetadata>(error: &E) -> Option<&str> {
    error.code()
}

fn unavailable(error: impl std::fmt::Display) -> Problem {
    Problem::Unavailable { detail: detail(error) }
}

/// An SDK error as one line a person reads after "orglink could not ask
/// AWS: ": the SDK's chain of causes spans lines (every credential
/// provider tried), and the first 300 characters name the cause.
fn detail(error: impl std::fmt::Display) -> String {
    const MAX: usize = 300;
    let line = error.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= MAX {
        return line;
    }
    let mut cut: String = line.chars().take(MAX - 1).collect();
    cut.push('…');
    cut
}

impl Aws {
    /// orglink's own identity, as the SDK finds it (environment, profiles,
    /// instance or container credentials), in `region` if given.
    pub async fn from_environment(region: Option<String>, retry: RetryPolicy) -> Self {
        Self::new(load_sdk_config(region).await, retry)
    }

    pub fn new(base: SdkConfig, retry: RetryPolicy) -> Self {
        // STS and Organizations are global: any region will do for them.
        let base = if base.region().is_none() {
            base.into_builder().region(aws_config::Region::from_static("us-east-1")).build()
        } else {
            base
        };
        let session: SessionFactory = Arc::new(|config: &SdkConfig| Session {
            sts: aws_sdk_sts::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            organizations: aws_sdk_organizations::Client::new(config),
            support: support_client(config),
        });
        Self { sts: aws_sdk_sts::Client::new(&base), base, session, retry, own: Arc::default() }
    }

    /// With given clients: orglink's own STS client, and how to make the
    /// clients of a role's session (tests script AWS's answers this way).
    pub fn with_clients(
        base: SdkConfig,
        sts: aws_sdk_sts::Client,
        session: SessionFactory,
        retry: RetryPolicy,
    ) -> Self {
        Self { base, sts, session, retry, own: Arc::default() }
    }

    /// Counts every AWS call, orglink's own and those made with a customer
    /// role's credentials, in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.sts = counted(&self.sts, metrics.clone());
        let session = self.session.clone();
        self.session = Arc::new(move |config: &SdkConfig| {
            let s = session(config);
            Session {
                sts: counted(&s.sts, metrics.clone()),
                iam: counted(&s.iam, metrics.clone()),
                organizations: counted(&s.organizations, metrics.clone()),
                support: counted(&s.support, metrics.clone()),
            }
        });
        self
    }

    /// The account of orglink's own credentials.
    pub async fn own_account(&self) -> anyhow::Result<String> {
        let identity = self.sts.get_caller_identity().send().await?;
        identity.account().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("STS named no account"))
    }

    /// [`Aws::own_account`], asked once: a failure is not kept, so the next
    /// call asks again.
    pub async fn own_account_cached(&self) -> Result<String, String> {
        self.own
            .get_or_try_init(|| self.own_account())
            .await
            .cloned()
            .map_err(|e| detail(format_args!("orglink's own AWS identity could not be read: {e:#}")))
    }

    /// The SDK configuration with the given temporary credentials.
    fn with_credentials(&self, credentials: &aws_sdk_sts::types::Credentials) -> SdkConfig {
        let credentials = Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_owned()),
            None,
            "orglink-assumed-role",
        );
        self.base.to_builder().credentials_provider(SharedCredentialsProvider::new(credentials)).build()
    }

    fn session_name(account: AccountId) -> String {
        format!("orglink-verify-{account}")
    }

    /// AssumeRole with the external ID, retrying `AccessDenied` (a new role
    /// takes seconds to become assumable). Returns the credentials or the
    /// problem, and the number of attempts.
    async fn assume(
        &self,
        request: &VerifyRequest,
        retry: RetryPolicy,
    ) -> (Result<aws_sdk_sts::types::Credentials, Problem>, u32) {
        let mut delay = retry.first_delay;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self
                .sts
                .assume_role()
                .role_arn(request.arn.to_string())
                .role_session_name(Self::session_name(request.account))
                .external_id(request.external_id.as_str())
                .duration_seconds(900)
                .send()
                .await;
            match result {
                Ok(output) => match output.credentials {
                    Some(credentials) => return (Ok(credentials), attempts),
                    None => return (Err(unavailable("STS returned no credentials")), attempts),
                },
                Err(e) => {
                    let denied = e.as_service_error().and_then(code) == Some("AccessDenied");
                    if !denied {
                        return (Err(unavailable(aws_sdk_sts::error::DisplayErrorContext(&e))), attempts);
                    }
                    if attempts > retry.retries {
                        return (Err(Problem::AccessDenied), attempts);
                    }
                    tracing::debug!(attempts, ?delay, "the role is not assumable (yet); retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }

    /// Runs every check. Once AssumeRole succeeds, the external ID guard
    /// runs first; only when it passes are the role's credentials used, for
    /// the other checks, concurrently.
    pub async fn verify(&self, request: &VerifyRequest) -> VerificationReport {
        self.check(request, self.retry).await
    }

    /// The same checks, for a role that may not exist yet: one AssumeRole
    /// attempt, since the next probe comes anyway. Makes at most
    /// [`PROBE_ASSUME_ROLE_CALLS`] AssumeRole calls (with the external ID,
    /// then without one and with a wrong one).
    pub async fn probe(&self, request: &VerifyRequest) -> VerificationReport {
        self.check(request, RetryPolicy { retries: 0, ..self.retry }).await
    }

    async fn check(&self, request: &VerifyRequest, retry: RetryPolicy) -> VerificationReport {
        let started = Instant::now();
        let (assumed, attempts) = self.assume(request, retry).await;
        let mut checks = Vec::with_capacity(CheckName::ALL.len());
        let mut detected_kind = None;
        let mut support_tier = AwsSupportTier::not_checked(TierNotChecked::RoleNotChecked);
        // Everything but AssumeRole (and the guard, once it has run) is
        // skipped unless both pass.
        let skipped = |checks: &mut Vec<Check>, guard: Option<Outcome>| {
            for name in &CheckName::ALL[1..] {
                let outcome = match (name, &guard) {
                    (CheckName::ExternalIdRequired, Some(guard)) => guard.clone(),
                    _ => Outcome::Skipped,
                };
                checks.push(Check { name: *name, outcome });
            }
        };
        match assumed {
            Err(problem) => {
                checks.push(Check { name: CheckName::AssumeRole, outcome: Outcome::Failed { problem } });
                skipped(&mut checks, None);
            }
            Ok(credentials) => {
                checks.push(Check { name: CheckName::AssumeRole, outcome: Outcome::Passed });
                // A role that anyone in the platform's account can assume
                // (no external ID, or any) is not this claim's proof of
                // ownership: its credentials are used for nothing, and
                // nothing is learned or recorded about the account. The same
                // when the guard could not be run: it is not proven.
                match self.check_external_id_required(request).await {
                    Outcome::Passed => {
                        let session = (self.session)(&self.with_credentials(&credentials));
                        let (identity, policies, organization) = tokio::join!(
                            Self::check_identity(&session, request.account),
                            async {
                                let policies = Self::check_policies(&session, request).await;
                                let tier = if policies.support_access {
                                    Self::check_support_tier(&session, request.arn.partition()).await
                                } else {
                                    AwsSupportTier::not_checked(TierNotChecked::NoSupportAccess)
                                };
                                (policies, tier)
                            },
                            Self::check_organization(&session, request.account),
                        );
                        let (organization, kind) = organization;
                        detected_kind = kind;
                        let (policies, tier) = policies;
                        // What AWS says is of this account only if the
                        // role's credentials are this account's.
                        if identity == Outcome::Passed {
                            support_tier = tier;
                        }
                        let Policies { read_only, support, .. } = policies;
                        checks.extend([
                            Check { name: CheckName::CallerIdentity, outcome: identity },
                            Check { name: CheckName::ExternalIdRequired, outcome: Outcome::Passed },
                            Check { name: CheckName::ReadOnlyAccess, outcome: read_only },
                            Check { name: CheckName::SupportAccess, outcome: support },
                            Check { name: CheckName::Organization, outcome: organization },
                        ]);
                    }
                    guard => skipped(&mut checks, Some(guard)),
                }
            }
        }
        VerificationReport {
            account: request.account,
            checks,
            detected_kind,
            attempts,
            checked_at: OffsetDateTime::now_utc(),
            duration_ms: started.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
            support_tier,
        }
    }

    async fn check_identity(session: &Session, account: AccountId) -> Outcome {
        match session.sts.get_caller_identity().send().await {
            Ok(identity) if identity.account() == Some(account.as_str()) => Outcome::Passed,
            Ok(identity) => Outcome::Failed {
                problem: Problem::WrongAccount { reported: identity.account().unwrap_or_default().to_owned() },
            },
            Err(e) => Outcome::Failed { problem: unavailable(aws_sdk_sts::error::DisplayErrorContext(&e)) },
        }
    }

    /// The confused-deputy guard: AssumeRole must be refused both without an
    /// external ID and with a wrong one (a fresh one shaped like this
    /// account's), so that the role trusts this claim's ID exactly: a
    /// wildcard (`StringLike "*"`), a negated condition (`StringNotEquals`)
    /// or a list with a wildcard in it would let any caller in the
    /// platform's account assume it. Both are asked at once.
    async fn check_external_id_required(&self, request: &VerifyRequest) -> Outcome {
        let decoy = request.external_id.decoy();
        let (without, wrong) = tokio::join!(self.refused(request, None), self.refused(request, Some(&decoy)));
        match (without, wrong) {
            // Without any ID is the wider opening: it is the one named.
            (Ok(false), _) => Outcome::Failed { problem: Problem::ExternalIdNotRequired },
            (_, Ok(false)) => Outcome::Failed { problem: Problem::AnyExternalIdAccepted },
            (Ok(true), Ok(true)) => Outcome::Passed,
            (Err(problem), _) | (_, Err(problem)) => Outcome::Failed { problem },
        }
    }

    /// Whether AWS refuses AssumeRole with `external_id` (or none): `Ok(true)`
    /// refused, `Ok(false)` allowed, `Err` when AWS could not be asked.
    async fn refused(&self, request: &VerifyRequest, external_id: Option<&ExternalId>) -> Result<bool, Problem> {
        let result = self
            .sts
            .assume_role()
            .role_arn(request.arn.to_string())
            .role_session_name(Self::session_name(request.account))
            .set_external_id(external_id.map(|id| id.as_str().to_owned()))
            .duration_seconds(900)
            .send()
            .await;
        match result {
            Ok(_) => Ok(false),
            Err(e) if e.as_service_error().and_then(code) == Some("AccessDenied") => Ok(true),
            Err(e) => Err(unavailable(aws_sdk_sts::error::DisplayErrorContext(&e))),
        }
    }

    /// ReadOnlyAccess (required) and, for Business support, AWSSupportAccess
    /// (optional) among the role's attached policies, every page read.
    async fn check_policies(session: &Session, request: &VerifyRequest) -> Policies {
        let pages = session
            .iam
            .list_attached_role_policies()
            .role_name(request.arn.name().as_str())
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await;
        let partition = request.arn.partition();
        let support_wanted = request.tier.managed_policies().contains(&ManagedPolicy::SupportAccess);
        match pages {
            Ok(policies) => {
                let has = |policy: ManagedPolicy| {
                    policies.iter().any(|p| p.policy_arn() == Some(policy.arn(partition).as_str()))
                };
                let read_only = if has(ManagedPolicy::ReadOnlyAccess) {
                    Outcome::Passed
                } else {
                    Outcome::Failed { problem: Problem::PolicyMissing }
                };
                let support_access = has(ManagedPolicy::SupportAccess);
                let support = match (support_wanted, support_access) {
                    (false, _) => Outcome::NotApplicable,
                    (true, true) => Outcome::Passed,
                    (true, false) => Outcome::Warning { problem: Problem::PolicyMissing },
                };
                Policies { read_only, support, support_access }
            }
            Err(e) => {
                // With ReadOnlyAccess the role may list its own policies: a
                // refusal says the policy is missing.
                let denied = e.as_service_error().and_then(code).is_some_and(|c| c.contains("AccessDenied"));
                let problem = if denied {
                    Problem::PolicyMissing
                } else {
                    unavailable(aws_sdk_iam::error::DisplayErrorContext(&e))
                };
                let support = if support_wanted { Outcome::Skipped } else { Outcome::NotApplicable };
                Policies { read_only: Outcome::Failed { problem }, support, support_access: false }
            }
        }
    }

    /// The support tier AWS says the account has: `support:DescribeSeverityLevels`
    /// with the role (which has AWSSupportAccess) answers an account with
    /// Business support or higher and refuses the others with
    /// `SubscriptionRequiredException`. Any other answer leaves the tier
    /// not checked, with its cause: it never fails the role.
    async fn check_support_tier(session: &Session, partition: Partition) -> AwsSupportTier {
        let region = aws_sdk_support::config::Region::from_static(support_region(partition));
        let result = session
            .support
            .describe_severity_levels()
            .customize()
            .config_override(aws_sdk_support::config::Builder::default().region(region))
            .send()
            .await;
        match result {
            Ok(_) => AwsSupportTier::BusinessOrHigher,
            Err(e) => match e.as_service_error().and_then(code) {
                Some("SubscriptionRequiredException") => AwsSupportTier::BasicOrDeveloper,
                Some(c) if c.contains("AccessDenied") => AwsSupportTier::not_checked(TierNotChecked::AccessDenied),
                _ => AwsSupportTier::not_checked(TierNotChecked::Unavailable {
                    detail: detail(aws_sdk_support::error::DisplayErrorContext(&e)),
                }),
            },
        }
    }

    /// What AWS Organizations says the account is.
    async fn check_organization(session: &Session, account: AccountId) -> (Outcome, Option<AccountKind>) {
        match session.organizations.describe_organization().send().await {
            Ok(output) => {
                let management = output.organization().and_then(|o| o.master_account_id()) == Some(account.as_str());
                if management {
                    (Outcome::Failed { problem: Problem::ManagementAccount }, Some(AccountKind::Management))
                } else {
                    (Outcome::Warning { problem: Problem::MemberOfAnotherOrganization }, Some(AccountKind::Member))
                }
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_aws_organizations_not_in_use_exception()) => {
                (Outcome::Passed, Some(AccountKind::Standalone))
            }
            Err(e) => {
                let denied = e.as_service_error().and_then(code).is_some_and(|c| c.contains("AccessDenied"));
                let problem = if denied {
                    Problem::AccessDenied
                } else {
                    unavailable(aws_sdk_organizations::error::DisplayErrorContext(&e))
                };
                (Outcome::Failed { problem }, None)
            }
        }
    }
}

/// What the role's attached policies say: ReadOnlyAccess's check,
/// AWSSupportAccess's (optional, Business support), and whether the role
/// has AWSSupportAccess whatever the tier declared (then AWS is asked for
/// the tier).
struct Policies {
    read_only: Outcome,
    support: Outcome,
    support_access: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_one_line_of_at_most_300_characters() {
        let chain =
            "dispatch failure: no credentials found in chain. Attempted:\n  Environment: not set\n  Profile: none";
        assert_eq!(
            detail(chain),
            "dispatch failure: no credentials found in chain. Attempted: Environment: not set Profile: none"
        );
        let long = detail("é ".repeat(400));
        assert_eq!(long.chars().count(), 300);
        assert!(long.ends_with('…'));
    }
}

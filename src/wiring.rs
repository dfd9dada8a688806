//! What the configuration says is there, built once, for every front end:
//! the CLI's commands and jobs, `serve`, and `doctor` use these functions
//! and build no client of their own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};

use crate::app::App;
use crate::aws::Aws;
use crate::aws::organizations::Distributor;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::TenantId;
use crate::freshdesk::desk::TicketDesk;
use crate::freshdesk::{Freshdesk, FreshdeskError};
use crate::store::Store;
use crate::templates::Templates;

/// How long orglink waits for Freshdesk's answer to one request.
pub const FRESHDESK_TIMEOUT: Duration = Duration::from_secs(15);

/// orglink's own AWS clients: the SDK's standard chain in `aws.region`, and
/// Organizations through `aws.management_role_arn` when one is configured.
pub async fn aws_clients(config: &Config) -> (Aws, Distributor) {
    let sdk = told_once(crate::aws::load_sdk_config(config.aws.region.clone()).await);
    let distributor = Distributor::with_role(&sdk, config.aws.management_role_arn.as_ref()).await;
    (Aws::new(sdk, config.aws.retry), distributor)
}

/// The bucket `publish-template` uploads to: S3 from the same SDK
/// configuration as orglink's other AWS clients, in `region` when given.
pub async fn template_bucket(config: &Config, region: Option<String>) -> crate::aws::s3::TemplateBucket {
    let sdk = told_once(crate::aws::load_sdk_config(config.aws.region.clone()).await);
    crate::aws::s3::TemplateBucket::new(&sdk, region)
}

/// Whether [`TellFailure`] has logged a failure not yet followed by
/// success: one line per outage, for the whole process.
static CREDENTIALS_FAILURE_TOLD: AtomicBool = AtomicBool::new(false);

/// `sdk` with its credentials chain wrapped in [`TellFailure`]. The SDK's
/// own warnings of the chain and of instance metadata are quieted by
/// `cli::init_logging`: outside EC2 they were four raw lines at each start.
fn told_once(sdk: aws_config::SdkConfig) -> aws_config::SdkConfig {
    let Some(chain) = sdk.credentials_provider() else { return sdk };
    sdk.into_builder().credentials_provider(SharedCredentialsProvider::new(TellFailure(chain))).build()
}

/// The SDK's credentials chain, which logs one line of its own when no
/// source gave credentials: what was tried and why each failed.
#[derive(Debug)]
struct TellFailure(SharedCredentialsProvider);

impl ProvideCredentials for TellFailure {
    fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            let result = self.0.provide_credentials().await;
            match &result {
                Ok(_) => CREDENTIALS_FAILURE_TOLD.store(false, Ordering::Relaxed),
                Err(e) if !CREDENTIALS_FAILURE_TOLD.swap(true, Ordering::Relaxed) => tracing::warn!(
                    tried = "environment variables, profile, web identity token, container endpoint, instance metadata (IMDS)",
                    error = %causes(e),
                    "AWS credentials could not be loaded from any source: AWS calls fail until they can"
                ),
                Err(_) => {}
            }
            result
        })
    }
}

/// An error and its causes, each in its own words (without the SDK's
/// debug dump).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Where the SDK's chain found orglink's AWS credentials, as `doctor`
/// names it: `Ok(None)` when credentials resolved and the SDK did not say
/// from where, `Err` (its words) when none could be loaded.
pub async fn aws_credential_source(config: &Config) -> Result<Option<&'static str>, String> {
    use aws_credential_types::credential_feature::AwsCredentialFeature as Feature;
    let sdk = crate::aws::load_sdk_config(config.aws.region.clone()).await;
    let provider = sdk.credentials_provider().ok_or("no credentials provider is configured")?;
    let credentials = provider.provide_credentials().await.map_err(|e| causes(&e))?;
    let features = credentials.get_property::<Vec<Feature>>().cloned().unwrap_or_default();
    // The feature enum is the SDK's and grows: one it adds later is named
    // as unknown, not refused.
    let source = features.iter().find_map(|feature| match feature {
        Feature::CredentialsEnvVars => Some("environment"),
        Feature::CredentialsProfile
        | Feature::CredentialsProfileSourceProfile
        | Feature::CredentialsProfileNamedProvider
        | Feature::CredentialsProfileLogin => Some("profile"),
        Feature::CredentialsSso | Feature::CredentialsProfileSso => Some("sso"),
        Feature::CredentialsEnvVarsStsWebIdToken
        | Feature::CredentialsProfileStsWebIdToken
        | Feature::CredentialsStsAssumeRoleWebId => Some("web_identity"),
        Feature::CredentialsProcess | Feature::CredentialsProfileProcess => Some("process"),
        Feature::CredentialsHttp => Some("container"),
        Feature::CredentialsImds => Some("instance_metadata"),
        Feature::CredentialsStsAssumeRole => Some("assume_role"),
        _ => None,
    });
    Ok(source)
}

/// How long `doctor` waits for the published template's URL to answer.
pub const TEMPLATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the published template's URL did not answer, as `doctor` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateProblem {
    /// No answer within [`TEMPLATE_TIMEOUT`].
    Timeout,
    /// No connection (DNS, refused, TLS): the cause.
    Unreachable(String),
    /// An answer other than success: its HTTP status (403: the bucket
    /// policy does not let anyone read it; 404: nothing at that key).
    Status(u16),
}

/// Whether `url` (`instructions.template_url`) answers a GET with success,
/// as CloudFormation will ask it; no redirect is followed.
pub async fn template_answers(url: &str) -> Result<(), TemplateProblem> {
    let client = reqwest::Client::builder()
        .timeout(TEMPLATE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| TemplateProblem::Unreachable(causes(&e)))?;
    match client.get(url).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(TemplateProblem::Status(response.status().as_u16())),
        Err(e) if e.is_timeout() => Err(TemplateProblem::Timeout),
        Err(e) => Err(TemplateProblem::Unreachable(causes(&e))),
    }
}

/// A Freshdesk client for `doctor`'s one read, when `[freshdesk]` is set.
pub fn freshdesk(config: &Config) -> Option<Result<Freshdesk, FreshdeskError>> {
    let freshdesk = config.freshdesk.as_ref()?;
    Some(Freshdesk::new(&freshdesk.base_url, freshdesk.api_key.clone(), FRESHDESK_TIMEOUT))
}

/// The app every front end runs: the store, the settings (with the
/// operations server, which is never held for approval) and the clock, the
/// AWS clients when given (from [`aws_clients`], or built by a test against
/// an emulator), and Freshdesk when `[freshdesk]` is configured.
pub fn app(
    config: &Config,
    templates: &Templates,
    store: Store,
    clock: Arc<dyn Clock>,
    aws: Option<(Aws, Distributor)>,
) -> App {
    let mut settings = config.settings.clone();
    settings.operations_server = config.discord.ops_guild_id.map(TenantId::of_server);
    let mut app = App::new(store, settings, clock);
    if let Some((aws, distributor)) = aws {
        app = app.with_aws(aws).with_distributor(distributor);
    }
    if let Some(desk) = ticket_desk(config, templates) {
        app = app.with_ticket_desk(desk);
    }
    app
}

/// Freshdesk, when configured (a client that cannot be built is logged,
/// and tickets wait in the store as they do without Freshdesk).
fn ticket_desk(config: &Config, templates: &Templates) -> Option<TicketDesk> {
    let freshdesk = config.freshdesk.clone()?;
    TicketDesk::new(freshdesk, templates.clone(), FRESHDESK_TIMEOUT)
        .map_err(|e| tracing::error!(error = %e, "the Freshdesk client could not be built"))
        .ok()
}

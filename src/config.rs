//! One typed configuration: a TOML file, then `ORGLINK_*` environment
//! variables over it, validated at start-up with errors that name the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use crate::app::Settings;
use crate::domain::{ChatId, Email, Lang, ParseError, Partition, TenantPolicy};
use crate::scheduler::{Job, Schedule};

/// Discord's REST API, unless configured otherwise.
pub const DISCORD_API_BASE_URL: &str = "https://discord.com";

/// Where Discord serves attached files, unless configured otherwise.
pub const DISCORD_CDN_BASE_URL: &str = "https://cdn.discordapp.com";

/// A value that must never reach a log or a screen. `Debug` and `Display`
/// show `[redacted]`; [`Secret::expose`] is the only way in.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the store is: no default, since a path relative to wherever
    /// orglink runs would be a different store in each place.
    pub data_dir: Option<PathBuf>,
    pub templates_dir: Option<PathBuf>,
    /// The language used where no user's or tenant's language is known.
    pub language: Lang,
    pub settings: Settings,
    pub discord: DiscordConfig,
    /// Where `orglink serve` listens for HTTP (interactions, health, metrics).
    pub listen: std::net::SocketAddr,
    /// Where `/healthz` and `/metrics` are served instead, when set: then
    /// the public listener serves only `/interactions`.
    pub admin_listen: Option<std::net::SocketAddr>,
    /// `/healthz` fails when a job has not succeeded for this many of its
    /// intervals.
    pub health_job_intervals: u32,
    /// `/healthz` fails when the gateway, the only transport that takes
    /// interactions, has been down this long.
    pub gateway_grace: std::time::Duration,
    pub aws: AwsConfig,
    /// The scheduled jobs and their cron expressions.
    pub schedule: crate::scheduler::Schedule,
    /// Freshdesk, where orglink opens tickets (none: tickets wait).
    pub freshdesk: Option<FreshdeskConfig>,
    /// The keys set by the file or the environment (not left at their
    /// default), for `doctor`; a secret's value is never kept here.
    pub sources: Vec<Source>,
}

/// A key set by the file or the environment, as `doctor` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub key: &'static str,
    pub origin: Origin,
    /// The value as configured; `[redacted]` for a secret.
    pub shown: String,
}

#[derive(Debug, Clone)]
pub struct FreshdeskConfig {
    pub base_url: String,
    pub api_key: Secret,
    /// The requester of the tickets orglink opens.
    pub requester_email: crate::domain::Email,
    pub group_id: Option<u64>,
    /// 1 low, 2 medium, 3 high, 4 urgent.
    pub priority: u8,
    /// Added to every ticket, besides orglink's own.
    pub tags: Vec<String>,
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    /// The language of the tickets' text.
    pub language: Lang,
}

#[derive(Debug, Clone, Default)]
pub struct AwsConfig {
    /// The region for the SDK (else the SDK's own: `AWS_REGION`, profile).
    pub region: Option<String>,
    pub retry: crate::aws::RetryPolicy,
    /// Assumed for Organizations calls; without it orglink's own identity
    /// must be the distributor's management account.
    pub management_role_arn: Option<crate::domain::RoleArn>,
}

#[derive(Debug, Clone)]
pub struct DiscordConfig {
    /// The bot token: the gateway, channel notifications, command registration.
    pub token: Option<Secret>,
    pub application_id: Option<ChatId>,
    /// The application's Ed25519 public key (hex): the HTTP interactions endpoint.
    pub public_key: Option<String>,
    pub api_base_url: String,
    /// Where attachments are fetched from: an attachment elsewhere is
    /// refused unfetched.
    pub cdn_base_url: String,
    pub ops_guild_id: Option<ChatId>,
    pub ops_role_id: Option<ChatId>,
    pub ops_channel_id: Option<ChatId>,
    /// Register commands in these servers only (empty: globally).
    pub command_guild_ids: Vec<ChatId>,
    pub register_commands_on_start: bool,
    /// The transports `serve` runs (`discord.transports`); `None`: every one
    /// whose credentials are set. Read through [`DiscordConfig::runs`].
    pub transports: Option<Vec<Transport>>,
    /// How long the gateway's supervisor waits between attempts: not a key
    /// (1 s doubling to 5 minutes); the tests shorten it.
    pub reconnect: crate::backoff::Backoff,
}

/// A way interactions reach orglink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Transport {
    /// Discord's websocket gateway (needs `discord.token`).
    Gateway,
    /// `POST /interactions`, signed by Discord (needs `discord.public_key`).
    Http,
}

impl Transport {
    pub const ALL: [Self; 2] = [Self::Gateway, Self::Http];

    pub fn code(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Http => "http",
        }
    }

    /// The key whose credential it needs.
    pub fn credential_key(self) -> &'static str {
        match self {
            Self::Gateway => "discord.token",
            Self::Http => "discord.public_key",
        }
    }
}

impl DiscordConfig {
    /// Whether `serve` runs `transport`: chosen by `discord.transports`, or
    /// by default when its credential is set; never without its credential.
    pub fn runs(&self, transport: Transport) -> bool {
        let credential = match transport {
            Transport::Gateway => self.token.is_some(),
            Transport::Http => self.public_key.is_some(),
        };
        credential && self.transports.as_ref().is_none_or(|chosen| chosen.contains(&transport))
    }
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            token: None,
            application_id: None,
            public_key: None,
            api_base_url: DISCORD_API_BASE_URL.to_owned(),
            cdn_base_url: DISCORD_CDN_BASE_URL.to_owned(),
            ops_guild_id: None,
            ops_role_id: None,
            ops_channel_id: None,
            command_guild_ids: Vec::new(),
            register_commands_on_start: false,
            transports: None,
            reconnect: crate::backoff::Backoff::GATEWAY,
        }
    }
}

/// The configuration with every key at its default ([`KEYS`] declares them).
impl Default for Config {
    fn default() -> Self {
        Self::load(None, &BTreeMap::new()).expect("every default in KEYS is valid")
    }
}

/// What a malformed value should have looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    PublicKey,
    /// 64 hexadecimal characters that are not an Ed25519 public key.
    Ed25519Key,
    Url,
    /// `https://`: a secret would cross the network in clear over
    /// `http://`, which only a loopback address may use.
    Https,
    SocketAddr,
    Bool,
    Count,
    Region,
    Cron,
    /// A cron expression that parses but does not fire every year.
    CronYearly,
    Days,
    Priority,
    Json,
    Partition,
    ProbeSchedule,
    Intervals,
    Complete,
    LapseAfter,
    TenantPolicy,
    /// `gateway` or `http`.
    Transport,
    /// A duration from 0 s to an hour: `60s`, `2m`.
    Grace,
    /// Each transport named with its credential.
    Credentials,
}

/// Where a configured value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(&'static str),
    /// The default [`KEYS`] declares.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Env(var) => f.write_str(var),
            Self::Default => f.write_str("default"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("the configuration file {path} is not valid: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("configuration key {key} (from {origin}) is not valid: {error}")]
    Invalid { key: &'static str, origin: Origin, error: ParseError },
    #[error("configuration key {key} (from {origin}) must not be empty")]
    Empty { key: &'static str, origin: Origin },
    #[error("configuration key {key} (from {origin}) is not valid: expected {expected:?}")]
    Malformed { key: &'static str, origin: Origin, expected: Expected },
    /// A URL without its scheme, and what was probably meant.
    #[error("configuration key {key} (from {origin}) is not a URL: did you mean {suggestion}?")]
    NoScheme { key: &'static str, origin: Origin, suggestion: String },
    /// Part of a group of keys that go together: `set` is set (in
    /// `origin`), the `missing` ones are not.
    #[error("configuration key {set} (from {origin}) needs {} too", missing.join(", "))]
    Incomplete { set: &'static str, origin: Origin, missing: Vec<&'static str> },
}

/// A row of [`KEYS`]: `name => env, shape, default, [secret,] doc, parser`.
macro_rules! key {
    ($name:literal => $env:literal, $shape:ident, $default:expr, $($secret:ident,)? $doc:literal,
     |$d:ident, $v:ident| $set:expr) => {
        Key {
            name: $name,
            env: $env,
            shape: Shape::$shape,
            default: $default,
            secret: key!(@secret $($secret)?),
            doc: $doc,
            apply: |$d, $v| {
                $set;
                Ok(())
            },
        }
    };
    (@secret secret) => { true };
    (@secret) => { false };
}

/// Every configuration key, declared once: its name in the file, its
/// environment variable, how it is written, its default, whether it is a
/// secret, one line of documentation and the parser that puts it into
/// [`Config`]. The file, the environment, `doctor` and the test that keeps
/// `config.example.toml` in step all read this table.
pub static KEYS: &[Key] = &[
    key! {
        "data_dir" => "ORGLINK_DATA_DIR", Text, Fallback::Unset,
        "Where orglink keeps its data: a directory of its own, created owner-only (or --data-dir).",
        |d, v| d.config.data_dir = Some(PathBuf::from(nonempty(v)?))
    },
    key! {
        "templates_dir" => "ORGLINK_TEMPLATES_DIR", Text, Fallback::Unset,
        "A directory whose files override the built-in message templates, file by file.",
        |d, v| d.config.templates_dir = Some(PathBuf::from(nonempty(v)?))
    },
    key! {
        "language" => "ORGLINK_LANGUAGE", Text, Fallback::Text("en"),
        "The language used when neither the user nor the tenant chose one: en or es.",
        |d, v| d.config.language = typed(v)?
    },
    key! {
        "platform.cross_account_id" => "ORGLINK_PLATFORM_CROSS_ACCOUNT_ID", Text, Fallback::Text("328676173091"),
        "The billing platform's AWS account, which every customer role trusts.",
        |d, v| d.config.settings.cross_account_id = typed(v)?
    },
    key! {
        "platform.partition" => "ORGLINK_PLATFORM_PARTITION", Text, Fallback::Text("aws"),
        "The AWS partition of the platform and of its customers' roles: aws, aws-cn or aws-us-gov.",
        |d, v| d.config.settings.partition = partition(v)?
    },
    key! {
        "external_id.prefix" => "ORGLINK_EXTERNAL_ID_PREFIX", Text, Fallback::Text("CA"),
        "What every generated external ID starts with.",
        |d, v| d.config.settings.external_id_prefix = typed(v)?
    },
    key! {
        "instructions.role_name" => "ORGLINK_INSTRUCTIONS_ROLE_NAME", Text, Fallback::Text("OrgLinkReadOnly"),
        "The role name the IAM instructions suggest.",
        |d, v| d.config.settings.role_name = typed(v)?
    },
    key! {
        "instructions.template_url" => "ORGLINK_INSTRUCTIONS_TEMPLATE_URL", Text, Fallback::Unset,
        "The published generic role template (orglink publish-template prints it): turns on the quick-create link.",
        |d, v| d.template_url = Some(url(v)?)
    },
    key! {
        "instructions.console_region" => "ORGLINK_INSTRUCTIONS_CONSOLE_REGION", Text, Fallback::Text("us-east-1"),
        "The AWS console region the quick-create link opens (IAM is global).",
        |d, v| d.console_region = region(v)?
    },
    key! {
        "discord.token" => "ORGLINK_DISCORD_TOKEN", Text, Fallback::Unset, secret,
        "The bot token: the gateway, channel notifications, command registration.",
        |d, v| d.config.discord.token = Some(Secret::new(nonempty(v)?))
    },
    key! {
        "discord.application_id" => "ORGLINK_DISCORD_APPLICATION_ID", Scalar, Fallback::Unset,
        "The application's ID.",
        |d, v| d.config.discord.application_id = Some(typed(v)?)
    },
    key! {
        "discord.public_key" => "ORGLINK_DISCORD_PUBLIC_KEY", Text, Fallback::Unset,
        "The application's public key (64 hex characters): turns on POST /interactions.",
        |d, v| d.config.discord.public_key = Some(public_key(v)?)
    },
    key! {
        "discord.api_base_url" => "ORGLINK_DISCORD_API_BASE_URL", Text, Fallback::Text(DISCORD_API_BASE_URL),
        "Discord's REST API (tests point it at a local stand-in).",
        |d, v| d.config.discord.api_base_url = url(v)?
    },
    key! {
        "discord.cdn_base_url" => "ORGLINK_DISCORD_CDN_BASE_URL", Text, Fallback::Text(DISCORD_CDN_BASE_URL),
        "Where Discord serves attached files: /link-accounts fetches its CSV from here only.",
        |d, v| d.config.discord.cdn_base_url = url(v)?
    },
    key! {
        "discord.ops_guild_id" => "ORGLINK_DISCORD_OPS_GUILD_ID", Scalar, Fallback::Unset,
        "The distributor's operations server.",
        |d, v| d.config.discord.ops_guild_id = Some(typed(v)?)
    },
    key! {
        "discord.ops_role_id" => "ORGLINK_DISCORD_OPS_ROLE_ID", Scalar, Fallback::Unset,
        "The role that may run operations commands in the operations server.",
        |d, v| d.config.discord.ops_role_id = Some(typed(v)?)
    },
    key! {
        "discord.ops_channel_id" => "ORGLINK_DISCORD_OPS_CHANNEL_ID", Scalar, Fallback::Unset,
        "The channel for operations notices.",
        |d, v| d.config.discord.ops_channel_id = Some(typed(v)?)
    },
    key! {
        "discord.command_guild_ids" => "ORGLINK_DISCORD_COMMAND_GUILD_IDS", List, Fallback::List(&[]),
        "Register the commands in these servers only; empty registers them globally.",
        |d, v| d.config.discord.command_guild_ids = list(v, |id| Ok(id.parse()?))?
    },
    key! {
        "discord.register_commands_on_start" => "ORGLINK_DISCORD_REGISTER_COMMANDS_ON_START", Scalar,
        Fallback::Text("false"),
        "Register the commands each time `orglink serve` starts.",
        |d, v| d.config.discord.register_commands_on_start = flag(v)?
    },
    key! {
        "discord.transports" => "ORGLINK_DISCORD_TRANSPORTS", List, Fallback::Unset,
        "The transports `orglink serve` runs, of gateway and http (default: each whose credential is set; [] none).",
        |d, v| d.transports = Some(list(v, transport)?)
    },
    key! {
        "http.listen" => "ORGLINK_HTTP_LISTEN", Text, Fallback::Text("127.0.0.1:8080"),
        "Where `orglink serve` listens: with a public key, /interactions; /healthz and /metrics unless http.admin_listen is set.",
        |d, v| d.config.listen = v.text().trim().parse().map_err(|_| Problem::Malformed(Expected::SocketAddr))?
    },
    key! {
        "http.admin_listen" => "ORGLINK_HTTP_ADMIN_LISTEN", Text, Fallback::Unset,
        "Serve /healthz and /metrics here (say a loopback address) and only /interactions on http.listen.",
        |d, v| d.config.admin_listen =
            Some(v.text().trim().parse().map_err(|_| Problem::Malformed(Expected::SocketAddr))?)
    },
    key! {
        "http.health_job_intervals" => "ORGLINK_HTTP_HEALTH_JOB_INTERVALS", Scalar, Fallback::Text("3"),
        "/healthz fails when a job has not succeeded for this many of its intervals (2 to 100).",
        |d, v| d.config.health_job_intervals = number(&v.text(), 2..=100, Expected::Intervals)? as u32
    },
    key! {
        "http.gateway_grace" => "ORGLINK_HTTP_GATEWAY_GRACE", Text, Fallback::Text("60s"),
        "/healthz fails when the gateway, the only transport taking interactions, has been down this long (0s to 1h).",
        |d, v| d.config.gateway_grace = grace(v)?
    },
    key! {
        "aws.region" => "ORGLINK_AWS_REGION", Text, Fallback::Unset,
        "The region for AWS calls (else AWS_REGION or the profile's).",
        |d, v| d.config.aws.region = Some(region(v)?)
    },
    key! {
        "aws.verify_retries" => "ORGLINK_AWS_VERIFY_RETRIES", Scalar, Fallback::Text("3"),
        "How many times an AccessDenied AssumeRole is retried (at most 10).",
        |d, v| d.config.aws.retry.retries = number(&v.text(), 0..=10, Expected::Count)? as u32
    },
    key! {
        "aws.verify_retry_delay_ms" => "ORGLINK_AWS_VERIFY_RETRY_DELAY_MS", Scalar, Fallback::Text("1000"),
        "The first wait before such a retry, in milliseconds, doubled each time (at most 60000).",
        |d, v| d.config.aws.retry.first_delay = millis(v, 60_000)?
    },
    key! {
        "aws.management_role_arn" => "ORGLINK_AWS_MANAGEMENT_ROLE_ARN", Text, Fallback::Unset,
        "A role in the distributor's management account, assumed for AWS Organizations calls.",
        |d, v| d.config.aws.management_role_arn = Some(typed(v)?)
    },
    key! {
        "invitations.auto_send" => "ORGLINK_INVITATIONS_AUTO_SEND", Scalar, Fallback::Text("false"),
        "Send the AWS Organizations invitation as soon as a role is verified.",
        |d, v| d.config.settings.auto_send_invitations = flag(v)?
    },
    key! {
        "invitations.reminder_days" => "ORGLINK_INVITATIONS_REMINDER_DAYS", List, Fallback::List(&["7", "2"]),
        "Remind the tenant this many days before an invitation expires (1 to 14, once each).",
        |d, v| d.config.settings.reminder_days = reminder_days(v)?
    },
    key! {
        "claims.lapse_after" => "ORGLINK_CLAIMS_LAPSE_AFTER", Text, Fallback::Text("14d"),
        "An unverified claim lapses this long after its registration or its last instructions (1h to 90d).",
        |d, v| d.config.settings.lapse_after = lapse_after(v)?
    },
    key! {
        "tenants.policy" => "ORGLINK_TENANTS_POLICY", Text, Fallback::Text("approval"),
        "How a server that adds orglink becomes a tenant: approval (operations approve it) or open.",
        |d, v| d.config.settings.tenant_policy = TenantPolicy::from_code(&v.text()).ok_or(Problem::Malformed(Expected::TenantPolicy))?
    },
    key! {
        "probe.enabled" => "ORGLINK_PROBE_ENABLED", Scalar, Fallback::Text("true"),
        "Zero-paste verification: look for unverified accounts' roles under the suggested name.",
        |d, v| d.config.settings.probe.enabled = flag(v)?
    },
    key! {
        "probe.schedule" => "ORGLINK_PROBE_SCHEDULE", Text,
        Fallback::Text("every 2m until 30m, every 15m until 1d, every 2h until 14d"),
        "How often each account is probed, by the time since registration or the last instructions.",
        |d, v| d.config.settings.probe.plan = v.text().parse().map_err(|_| Problem::Malformed(Expected::ProbeSchedule))?
    },
    key! {
        "probe.assume_role_per_minute" => "ORGLINK_PROBE_ASSUME_ROLE_PER_MINUTE", Scalar, Fallback::Text("120"),
        "At most this many sts:AssumeRole calls in any minute, all probes together (3 to 6000: a probe makes up to 3).",
        |d, v| d.config.settings.probe.assume_role_per_minute =
            number(&v.text(), u64::from(crate::aws::PROBE_ASSUME_ROLE_CALLS)..=6_000, Expected::Count)? as u32
    },
    key! {
        "quotas.open_claims" => "ORGLINK_QUOTAS_OPEN_CLAIMS", Scalar, Fallback::Text("200"),
        "Registrations a tenant may have open at once, not yet verified nor lapsed (1 to 100000).",
        |d, v| d.config.settings.quotas.open_claims = number(&v.text(), 1..=100_000, Expected::Count)? as u32
    },
    key! {
        "quotas.tickets_per_day" => "ORGLINK_QUOTAS_TICKETS_PER_DAY", Scalar, Fallback::Text("20"),
        "Tickets a tenant may ask for (/ticket) in a UTC day (1 to 10000).",
        |d, v| d.config.settings.quotas.tickets_per_day = number(&v.text(), 1..=10_000, Expected::Count)? as u32
    },
    key! {
        "quotas.verifications_per_minute" => "ORGLINK_QUOTAS_VERIFICATIONS_PER_MINUTE", Scalar, Fallback::Text("6"),
        "Role checks a tenant may run on one account in any minute: /verify-role, the form, Check now (1 to 600).",
        |d, v| d.config.settings.quotas.verifications_per_minute =
            number(&v.text(), 1..=600, Expected::Count)? as u32
    },
    key! {
        "schedule.poll_handshakes" => "ORGLINK_SCHEDULE_POLL_HANDSHAKES", Text, Fallback::Cron(Job::PollHandshakes),
        "When to read every tracked invitation's state (cron, seconds first).",
        |d, v| d.cron.insert(Job::PollHandshakes.name().to_owned(), v.text())
    },
    key! {
        "schedule.remind_invitations" => "ORGLINK_SCHEDULE_REMIND_INVITATIONS", Text,
        Fallback::Cron(Job::RemindInvitations),
        "When to remind tenants of invitations close to expiry.",
        |d, v| d.cron.insert(Job::RemindInvitations.name().to_owned(), v.text())
    },
    key! {
        "schedule.send_queued_invitations" => "ORGLINK_SCHEDULE_SEND_QUEUED_INVITATIONS", Text,
        Fallback::Cron(Job::SendQueuedInvitations),
        "When to send the invitations the daily quota held back.",
        |d, v| d.cron.insert(Job::SendQueuedInvitations.name().to_owned(), v.text())
    },
    key! {
        "schedule.audit_support_plans" => "ORGLINK_SCHEDULE_AUDIT_SUPPORT_PLANS", Text,
        Fallback::Cron(Job::AuditSupportPlans),
        "When to warn tenants of linked accounts whose support plan group is missing or wrong.",
        |d, v| d.cron.insert(Job::AuditSupportPlans.name().to_owned(), v.text())
    },
    key! {
        "schedule.open_tickets" => "ORGLINK_SCHEDULE_OPEN_TICKETS", Text, Fallback::Cron(Job::OpenTickets),
        "When to open the Freshdesk tickets orglink requests.",
        |d, v| d.cron.insert(Job::OpenTickets.name().to_owned(), v.text())
    },
    key! {
        "schedule.probe_roles" => "ORGLINK_SCHEDULE_PROBE_ROLES", Text, Fallback::Cron(Job::ProbeRoles),
        "When to look for unverified accounts' roles ([probe] decides which are due).",
        |d, v| d.cron.insert(Job::ProbeRoles.name().to_owned(), v.text())
    },
    key! {
        "schedule.lapse_claims" => "ORGLINK_SCHEDULE_LAPSE_CLAIMS", Text, Fallback::Cron(Job::LapseClaims),
        "When to lapse the registrations whose window ended without a verified role.",
        |d, v| d.cron.insert(Job::LapseClaims.name().to_owned(), v.text())
    },
    key! {
        "schedule.ops_digest" => "ORGLINK_SCHEDULE_OPS_DIGEST", Text, Fallback::Cron(Job::OpsDigest),
        "When to send operations the daily digest (silent when nothing needs them).",
        |d, v| d.cron.insert(Job::OpsDigest.name().to_owned(), v.text())
    },
    key! {
        "backup.dir" => "ORGLINK_BACKUP_DIR", Text, Fallback::Unset,
        "Where scheduled backups are written (owner-only files, sortable by time); unset: no scheduled backups.",
        |d, v| d.backup_dir = Some(PathBuf::from(nonempty(v)?))
    },
    key! {
        "backup.schedule" => "ORGLINK_BACKUP_SCHEDULE", Text, Fallback::Cron(Job::Backup),
        "When to write a backup to backup.dir (cron, seconds first).",
        |d, v| d.cron.insert(Job::Backup.name().to_owned(), v.text())
    },
    key! {
        "backup.keep" => "ORGLINK_BACKUP_KEEP", Scalar, Fallback::Text("7"),
        "How many scheduled backups stay in backup.dir; the oldest beyond are removed (1 to 1000).",
        |d, v| d.backup_keep = number(&v.text(), 1..=1_000, Expected::Count)? as u32
    },
    key! {
        "freshdesk.base_url" => "ORGLINK_FRESHDESK_BASE_URL", Text, Fallback::Unset,
        "Where orglink opens tickets (with api_key and requester_email, or none of them).",
        |d, v| d.freshdesk.base_url = Some(url(v)?)
    },
    key! {
        "freshdesk.api_key" => "ORGLINK_FRESHDESK_API_KEY", Text, Fallback::Unset, secret,
        "Freshdesk's API key.",
        |d, v| d.freshdesk.api_key = Some(Secret::new(nonempty(v)?))
    },
    key! {
        "freshdesk.requester_email" => "ORGLINK_FRESHDESK_REQUESTER_EMAIL", Text, Fallback::Unset,
        "The requester of the tickets orglink opens.",
        |d, v| d.freshdesk.requester_email = Some(typed(v)?)
    },
    key! {
        "freshdesk.group_id" => "ORGLINK_FRESHDESK_GROUP_ID", Scalar, Fallback::Unset,
        "The group that receives the tickets.",
        |d, v| d.freshdesk.group_id = Some(number(&v.text(), 0..=u64::MAX, Expected::Count)?)
    },
    key! {
        "freshdesk.priority" => "ORGLINK_FRESHDESK_PRIORITY", Scalar, Fallback::Text("2"),
        "The tickets' priority: 1 low, 2 medium, 3 high, 4 urgent.",
        |d, v| d.freshdesk.priority = number(&v.text(), 1..=4, Expected::Priority)? as u8
    },
    key! {
        "freshdesk.tags" => "ORGLINK_FRESHDESK_TAGS", List, Fallback::List(&[]),
        "Tags added to every ticket (orglink adds its own).",
        |d, v| d.freshdesk.tags = list(v, |tag| Ok(tag.to_owned()))?
    },
    key! {
        "freshdesk.custom_fields" => "ORGLINK_FRESHDESK_CUSTOM_FIELDS", Table, Fallback::Unset,
        "Custom fields set on every ticket (in the environment, a JSON object).",
        |d, v| d.freshdesk.custom_fields = v.table()
    },
    key! {
        "freshdesk.language" => "ORGLINK_FRESHDESK_LANGUAGE", Text, Fallback::Unset,
        "The language of the tickets' text (default: language).",
        |d, v| d.freshdesk.language = Some(typed(v)?)
    },
];

/// One configuration key: see [`KEYS`].
pub struct Key {
    /// Dotted, as in the file: `section.name`.
    pub name: &'static str,
    /// `ORGLINK_` and the name in capitals, `_` for `.`.
    pub env: &'static str,
    pub shape: Shape,
    pub default: Fallback,
    /// Never shown: `doctor` says `[redacted]`.
    pub secret: bool,
    /// One line of documentation.
    pub doc: &'static str,
    apply: fn(&mut Draft, Value) -> Result<(), Problem>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("name", &self.name).field("env", &self.env).finish_non_exhaustive()
    }
}

impl Key {
    /// The key called `name` (dotted).
    pub fn named(name: &str) -> Option<&'static Key> {
        KEYS.iter().find(|k| k.name == name)
    }

    fn default_value(&self) -> Option<Value> {
        match self.default {
            Fallback::Unset => None,
            Fallback::Text(text) => Some(Value::Text(text.to_owned())),
            Fallback::List(items) => Some(Value::List(items.iter().map(|s| (*s).to_owned()).collect())),
            Fallback::Cron(job) => Some(Value::Text(job.default_cron().to_owned())),
        }
    }

    /// The default as it is written in the file; `None` when the key is
    /// unset unless configured.
    pub fn default_toml(&self) -> Option<String> {
        let scalar = |s: &str| if self.shape == Shape::Text { format!("{s:?}") } else { s.to_owned() };
        match self.default_value()? {
            Value::Text(text) => Some(scalar(&text)),
            Value::List(items) => Some(format!("[{}]", items.iter().map(|s| scalar(s)).collect::<Vec<_>>().join(", "))),
            Value::Table(_) => None,
        }
    }
}

/// How a key is written in the file; the environment always gives text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A string.
    Text,
    /// A string, an integer or a boolean, read as text (IDs, numbers, flags).
    Scalar,
    /// An array of scalars; in the environment, comma-separated.
    List,
    /// A table; in the environment, a JSON object.
    Table,
}

/// A key's default.
#[derive(Debug, Clone, Copy)]
pub enum Fallback {
    /// Unset unless configured.
    Unset,
    Text(&'static str),
    List(&'static [&'static str]),
    /// The job's own expression, [`Job::default_cron`].
    Cron(Job),
}

/// A value as configured, before its key's parser reads it.
#[derive(Debug, Clone)]
enum Value {
    Text(String),
    List(Vec<String>),
    Table(serde_json::Map<String, serde_json::Value>),
}

impl Value {
    fn text(self) -> String {
        match self {
            Self::Text(text) => text,
            other => other.to_string(),
        }
    }

    fn table(self) -> serde_json::Map<String, serde_json::Value> {
        match self {
            Self::Table(table) => table,
            _ => serde_json::Map::new(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => f.write_str(text),
            Self::List(items) => f.write_str(&items.join(", ")),
            Self::Table(table) => write!(f, "{}", serde_json::Value::Object(table.clone())),
        }
    }
}

/// What is wrong with a value, before the key and its origin are known.
enum Problem {
    Empty,
    Invalid(ParseError),
    Malformed(Expected),
    /// A URL without a scheme: the `https://` one it probably meant.
    NoScheme(String),
}

impl From<ParseError> for Problem {
    fn from(error: ParseError) -> Self {
        Self::Invalid(error)
    }
}

impl Problem {
    fn at(self, key: &'static str, origin: Origin) -> ConfigError {
        match self {
            Self::Empty => ConfigError::Empty { key, origin },
            Self::Invalid(error) => ConfigError::Invalid { key, origin, error },
            Self::Malformed(expected) => ConfigError::Malformed { key, origin, expected },
            Self::NoScheme(suggestion) => ConfigError::NoScheme { key, origin, suggestion },
        }
    }
}

/// The configuration while the keys are applied: parts that are checked
/// together once all are read.
struct Draft {
    config: Config,
    cron: BTreeMap<String, String>,
    freshdesk: FreshdeskDraft,
    /// `backup.dir`: backups are scheduled only with it.
    backup_dir: Option<PathBuf>,
    backup_keep: u32,
    /// `instructions.template_url`: the quick-create link only with it.
    template_url: Option<String>,
    console_region: String,
    /// `discord.transports`, checked against the credentials once all are
    /// read.
    transports: Option<Vec<Transport>>,
}

#[derive(Default)]
struct FreshdeskDraft {
    base_url: Option<String>,
    api_key: Option<Secret>,
    requester_email: Option<Email>,
    group_id: Option<u64>,
    priority: u8,
    tags: Vec<String>,
    custom_fields: serde_json::Map<String, serde_json::Value>,
    language: Option<Lang>,
}

// The parsers, one for each kind of value.

/// Text that must not be blank.
fn nonempty(v: Value) -> Result<String, Problem> {
    let text = v.text();
    if text.trim().is_empty() { Err(Problem::Empty) } else { Ok(text) }
}

/// A domain value, by the domain's parser (its errors are localised).
fn typed<T: FromStr<Err = ParseError>>(v: Value) -> Result<T, Problem> {
    Ok(v.text().parse()?)
}

fn flag(v: Value) -> Result<bool, Problem> {
    match v.text().trim() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(Problem::Malformed(Expected::Bool)),
    }
}

fn number(text: &str, range: RangeInclusive<u64>, expected: Expected) -> Result<u64, Problem> {
    text.trim().parse::<u64>().ok().filter(|n| range.contains(n)).ok_or(Problem::Malformed(expected))
}

fn millis(v: Value, max: u64) -> Result<Duration, Problem> {
    Ok(Duration::from_millis(number(&v.text(), 0..=max, Expected::Count)?))
}

fn list<T>(v: Value, each: impl Fn(&str) -> Result<T, Problem>) -> Result<Vec<T>, Problem> {
    match v {
        Value::List(items) => items.iter().map(|item| each(item)).collect(),
        other => Ok(vec![each(&other.text())?]),
    }
}

/// Days, latest first, each once.
fn reminder_days(v: Value) -> Result<Vec<u32>, Problem> {
    let mut days = list(v, |d| Ok(number(d, 1..=14, Expected::Days)? as u32))?;
    days.sort_unstable_by(|a, b| b.cmp(a));
    days.dedup();
    Ok(days)
}

fn transport(text: &str) -> Result<Transport, Problem> {
    Transport::ALL.into_iter().find(|t| t.code() == text.trim()).ok_or(Problem::Malformed(Expected::Transport))
}

/// A duration like `60s` or `2m`, from none to an hour.
fn grace(v: Value) -> Result<std::time::Duration, Problem> {
    humantime::parse_duration(v.text().trim())
        .ok()
        .filter(|d| *d <= std::time::Duration::from_secs(3600))
        .ok_or(Problem::Malformed(Expected::Grace))
}

/// A duration like `14d` or `36h`, from an hour to 90 days.
fn lapse_after(v: Value) -> Result<time::Duration, Problem> {
    humantime::parse_duration(v.text().trim())
        .ok()
        .and_then(|d| time::Duration::try_from(d).ok())
        .filter(|d| (time::Duration::HOUR..=time::Duration::days(90)).contains(d))
        .ok_or(Problem::Malformed(Expected::LapseAfter))
}

/// An `https://` base URL, without its trailing slashes: the services
/// behind these keys get a bot token or an API key with every request, so
/// plain `http://` is for a loopback address only (a local stand-in, as in
/// the tests).
fn url(v: Value) -> Result<String, Problem> {
    let url = v.text().trim().trim_end_matches('/').to_owned();
    if url.contains(char::is_whitespace) || url.is_empty() {
        return Err(Problem::Malformed(Expected::Url));
    }
    if !url.contains("://") {
        // `distributor.freshdesk.com`: a host, typed without its scheme.
        let suggestion = format!("https://{url}");
        return match reqwest::Url::parse(&suggestion) {
            Ok(parsed) if parsed.host_str().is_some_and(|h| h.contains('.') || is_loopback(h)) => {
                Err(Problem::NoScheme(suggestion))
            }
            _ => Err(Problem::Malformed(Expected::Url)),
        };
    }
    let parsed = reqwest::Url::parse(&url).map_err(|_| Problem::Malformed(Expected::Url))?;
    let host = parsed.host_str().ok_or(Problem::Malformed(Expected::Url))?;
    match parsed.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(host) => Ok(url),
        "http" => Err(Problem::Malformed(Expected::Https)),
        _ => Err(Problem::Malformed(Expected::Url)),
    }
}

/// Whether a URL's host is this machine: 127.0.0.0/8, ::1 or localhost.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost."),
    }
}

fn region(v: Value) -> Result<String, Problem> {
    let region = v.text().trim().to_owned();
    let valid = !region.is_empty() && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid { Ok(region) } else { Err(Problem::Malformed(Expected::Region)) }
}

fn partition(v: Value) -> Result<Partition, Problem> {
    let text = v.text();
    [Partition::Aws, Partition::AwsCn, Partition::AwsUsGov]
        .into_iter()
        .find(|p| p.as_str() == text.trim())
        .ok_or(Problem::Malformed(Expected::Partition))
}

fn public_key(v: Value) -> Result<String, Problem> {
    // 32 bytes in hex, as the developer portal shows it; `discord` makes
    // the Ed25519 verifier of it when serving.
    let key = v.text().trim().to_owned();
    match hex::decode(&key).map(|bytes| bytes.len()) {
        // The right shape is not enough: a key mistyped in one character is
        // (about half the time) no Ed25519 key at all, and would only fail
        // when `serve` starts.
        Ok(32) if crate::discord::endpoint::verifier(&key).is_some() => Ok(key),
        Ok(32) => Err(Problem::Malformed(Expected::Ed25519Key)),
        _ => Err(Problem::Malformed(Expected::PublicKey)),
    }
}

/// A key's value from the file, as its shape says it is written.
fn from_file(key: &Key, value: toml::Value) -> Result<Value, String> {
    let wrong = |found: &toml::Value, expected: &str| {
        format!("invalid type for {}: {}, expected {expected}", key.name, found.type_str())
    };
    let scalar = |v: &toml::Value| match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    };
    match (key.shape, &value) {
        (Shape::Text, toml::Value::String(text)) => Ok(Value::Text(text.clone())),
        (Shape::Text, other) => Err(wrong(other, "a string")),
        (Shape::Scalar, v) => scalar(v).map(Value::Text).ok_or_else(|| wrong(v, "a string, a number or a boolean")),
        (Shape::List, toml::Value::Array(items)) => items
            .iter()
            .map(scalar)
            .collect::<Option<Vec<_>>>()
            .map(Value::List)
            .ok_or_else(|| wrong(&value, "an array of strings or numbers")),
        (Shape::List, other) => Err(wrong(other, "an array")),
        (Shape::Table, toml::Value::Table(_)) => match serde_json::to_value(&value) {
            Ok(serde_json::Value::Object(table)) => Ok(Value::Table(table)),
            _ => Err(wrong(&value, "a table")),
        },
        (Shape::Table, other) => Err(wrong(other, "a table")),
    }
}

/// A key's value from its environment variable.
fn from_env(key: &Key, text: &str) -> Result<Value, Problem> {
    Ok(match key.shape {
        Shape::Text | Shape::Scalar => Value::Text(text.to_owned()),
        Shape::List => {
            Value::List(text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        }
        Shape::Table => Value::Table(serde_json::from_str(text).map_err(|_| Problem::Malformed(Expected::Json))?),
    })
}

/// The keys the file sets, each checked against [`KEYS`].
fn read_file(path: &Path) -> Result<Vec<(&'static Key, Value)>, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable { path: path.to_owned(), source })?;
    let syntax = |message: String| ConfigError::Syntax { path: path.to_owned(), message };
    let table: toml::Table = toml::from_str(&text).map_err(|e| syntax(e.message().to_owned()))?;
    let unknown = |name: &str| {
        let section = name.rsplit_once('.').map(|(section, _)| format!("{section}."));
        let expected: Vec<String> = KEYS
            .iter()
            .filter(|k| match &section {
                Some(section) => k.name.starts_with(section.as_str()),
                None => true,
            })
            .map(|k| format!("`{}`", k.name))
            .collect();
        syntax(format!("unknown key `{name}`, expected one of {}", expected.join(", ")))
    };
    let mut found = Vec::new();
    for (name, value) in table {
        if let Some(key) = Key::named(&name) {
            found.push((key, from_file(key, value).map_err(syntax)?));
            continue;
        }
        let toml::Value::Table(section) = value else { return Err(unknown(&name)) };
        if !KEYS.iter().any(|k| k.name.strip_prefix(name.as_str()).is_some_and(|rest| rest.starts_with('.'))) {
            return Err(unknown(&name));
        }
        for (leaf, value) in section {
            let dotted = format!("{name}.{leaf}");
            match Key::named(&dotted) {
                Some(key) => found.push((key, from_file(key, value).map_err(syntax)?)),
                None if name == "schedule" => return Err(syntax(format!("unknown job {leaf:?} in [schedule]"))),
                None => return Err(unknown(&dotted)),
            }
        }
    }
    Ok(found)
}

impl Config {
    /// Reads `file` (if given) and the environment `env` over the defaults
    /// of [`KEYS`], and validates all.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut values: BTreeMap<&'static str, (Value, Origin)> = BTreeMap::new();
        for key in KEYS {
            if let Some(value) = key.default_value() {
                values.insert(key.name, (value, Origin::Default));
            }
        }
        if let Some(path) = file {
            for (key, value) in read_file(path)? {
                values.insert(key.name, (value, Origin::File(path.to_owned())));
            }
        }
        for key in KEYS {
            if let Some(text) = env.get(key.env) {
                let origin = Origin::Env(key.env);
                let value = from_env(key, text).map_err(|p| p.at(key.name, origin.clone()))?;
                values.insert(key.name, (value, origin));
            }
        }
        let mut draft = Draft {
            config: Config::seed(),
            cron: BTreeMap::new(),
            freshdesk: FreshdeskDraft::default(),
            backup_dir: None,
            backup_keep: 0,
            template_url: None,
            console_region: String::new(),
            transports: None,
        };
        let mut origins = BTreeMap::new();
        for key in KEYS {
            let Some((value, origin)) = values.remove(key.name) else { continue };
            if origin != Origin::Default {
                let shown = if key.secret { "[redacted]".to_owned() } else { value.to_string() };
                draft.config.sources.push(Source { key: key.name, origin: origin.clone(), shown });
            }
            (key.apply)(&mut draft, value).map_err(|p| p.at(key.name, origin.clone()))?;
            origins.insert(key.name, origin);
        }
        draft.finish(&origins)
    }

    /// What [`Config::load`] starts from before every key is applied; each
    /// field a key sets is overwritten by that key's default at least.
    fn seed() -> Self {
        Self {
            data_dir: None,
            templates_dir: None,
            language: Lang::En,
            settings: Settings::default(),
            discord: DiscordConfig::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: None,
            health_job_intervals: 0,
            gateway_grace: std::time::Duration::ZERO,
            aws: AwsConfig::default(),
            schedule: Schedule::new(&BTreeMap::new()).expect("the jobs' default schedule parses"),
            freshdesk: None,
            sources: Vec::new(),
        }
    }

    /// The `ORGLINK_*` variables of the process environment and, under
    /// systemd, the credentials named like them in `$CREDENTIALS_DIRECTORY`
    /// (`LoadCredential=ORGLINK_DISCORD_TOKEN:/etc/orglink/discord_token`),
    /// so a secret need not sit in the environment, where child processes
    /// and `systemctl show` see it. A variable set in the environment wins.
    pub fn process_env() -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("ORGLINK_")).collect();
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            for (name, value) in credentials(Path::new(&dir)) {
                env.entry(name).or_insert(value);
            }
        }
        env
    }
}

/// The first job whose expression does not fire at least once in every
/// year ahead: `0 0 0 30 2 *` (February 30) parses and never runs, and a
/// job that never runs fails silently. Each of the next nine years (two
/// leap cycles and 2100's missing leap day within reach) must see a run
/// within 366 days of its start.
fn never_yearly(schedule: &Schedule, now: time::OffsetDateTime) -> Option<Job> {
    const YEAR: time::Duration = time::Duration::days(366);
    schedule.jobs().find(|&job| {
        (0..9).any(|year| {
            let from = now + time::Duration::days(365 * year);
            schedule.next(job, from).is_none_or(|next| next - from > YEAR)
        })
    })
}

/// The files of `dir` named like `ORGLINK_*` variables, as those variables:
/// each file's text without its final line break (`echo` adds one).
pub fn credentials(dir: &Path) -> BTreeMap<String, String> {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    entries
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok().filter(|n| n.starts_with("ORGLINK_"))?;
            let text = std::fs::read_to_string(entry.path()).ok()?;
            let value = text.strip_suffix('\n').map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
            Some((name, value.to_owned()))
        })
        .collect()
}

impl Draft {
    /// The checks that need several keys: the schedule, and Freshdesk
    /// (all of it or none).
    fn finish(self, origins: &BTreeMap<&'static str, Origin>) -> Result<Config, ConfigError> {
        let origin = |key: &str| origins.get(key).cloned().unwrap_or(Origin::Default);
        let Draft { mut config, cron, freshdesk: f, backup_dir, backup_keep, template_url, console_region, transports } =
            self;
        // A transport chosen without its credential would never run: a
        // mistake to name, not to pass over.
        if let Some(mut chosen) = transports {
            chosen.sort();
            chosen.dedup();
            let d = &config.discord;
            let missing: Vec<&'static str> = chosen
                .iter()
                .filter(|t| match t {
                    Transport::Gateway => d.token.is_none(),
                    Transport::Http => d.public_key.is_none(),
                })
                .map(|t| t.credential_key())
                .collect();
            if !missing.is_empty() {
                let set = "discord.transports";
                return Err(ConfigError::Incomplete { set, origin: origin(set), missing });
            }
            config.discord.transports = Some(chosen);
        }
        config.settings.template = template_url
            .map(|template_url| crate::domain::quick_create::TemplateLocation { template_url, console_region });
        config.schedule = Schedule::new(&cron).map_err(|e| {
            let key = Job::from_name(e.job).map_or("schedule", Job::config_key);
            Problem::Malformed(Expected::Cron).at(key, origin(key))
        })?;
        if let Some(job) = never_yearly(&config.schedule, time::OffsetDateTime::now_utc()) {
            let key = job.config_key();
            return Err(Problem::Malformed(Expected::CronYearly).at(key, origin(key)));
        }
        // Backups are scheduled only with a directory to write them to.
        config.settings.backup = match backup_dir {
            Some(dir) => Some(crate::app::BackupPlan { dir, keep: backup_keep }),
            None => {
                config.schedule = config.schedule.without(Job::Backup);
                None
            }
        };
        const REQUIRED: [&str; 3] = ["freshdesk.base_url", "freshdesk.api_key", "freshdesk.requester_email"];
        config.freshdesk = match (f.base_url, f.api_key, f.requester_email) {
            (None, None, None) => None,
            (Some(base_url), Some(api_key), Some(requester_email)) => Some(FreshdeskConfig {
                base_url,
                api_key,
                requester_email,
                group_id: f.group_id,
                priority: f.priority,
                tags: f.tags,
                custom_fields: f.custom_fields,
                language: f.language.unwrap_or(config.language),
            }),
            // Half a Freshdesk configuration is a mistake worth naming: the
            // key that is set, where, and the ones it needs.
            (url, key, email) => {
                let present = [url.is_some(), key.is_some(), email.is_some()];
                let missing = REQUIRED.iter().zip(present).filter(|(_, set)| !set).map(|(k, _)| *k).collect();
                let set = REQUIRED.iter().zip(present).find(|(_, set)| *set).map_or(REQUIRED[0], |(k, _)| *k);
                return Err(ConfigError::Incomplete { set, origin: origin(set), missing });
            }
        };
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_without_file_or_environment() {
        let config = Config::load(None, &BTreeMap::new()).unwrap();
        assert_eq!(config.settings.cross_account_id.as_str(), "328676173091");
        assert_eq!(config.settings.role_name.as_str(), "OrgLinkReadOnly");
        assert_eq!(config.data_dir, None);
    }

    #[test]
    fn a_template_url_turns_on_the_quick_create_link_in_its_console_region() {
        assert_eq!(Config::default().settings.template, None);
        let url = "https://b.s3.us-east-1.amazonaws.com/orglink/role-template.yaml";
        let config = Config::load(
            None,
            &env(&[("ORGLINK_INSTRUCTIONS_TEMPLATE_URL", url), ("ORGLINK_INSTRUCTIONS_CONSOLE_REGION", "eu-west-1")]),
        )
        .unwrap();
        let template = config.settings.template.unwrap();
        assert_eq!((template.template_url.as_str(), template.console_region.as_str()), (url, "eu-west-1"));
        let config = Config::load(None, &env(&[("ORGLINK_INSTRUCTIONS_TEMPLATE_URL", url)])).unwrap();
        assert_eq!(config.settings.template.unwrap().console_region, "us-east-1");
        for (key, bad) in [
            ("ORGLINK_INSTRUCTIONS_TEMPLATE_URL", "http://b.s3.amazonaws.com/t.yaml"),
            ("ORGLINK_INSTRUCTIONS_TEMPLATE_URL", "ftp://b/t.yaml"),
            ("ORGLINK_INSTRUCTIONS_TEMPLATE_URL", "not a url"),
            ("ORGLINK_INSTRUCTIONS_CONSOLE_REGION", "EU West"),
        ] {
            let err = Config::load(None, &env(&[(key, bad)])).unwrap_err();
            assert!(err.to_string().contains(key), "{key}={bad}: {err}");
        }
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orglink.toml");
        std::fs::write(&path, "[platform]\ncross_account_id = \"111111111111\"\n[instructions]\nrole_name = \"A\"\n")
            .unwrap();
        let config = Config::load(Some(&path), &env(&[("ORGLINK_PLATFORM_CROSS_ACCOUNT_ID", "222222222222")])).unwrap();
        assert_eq!(config.settings.cross_account_id.as_str(), "222222222222");
        assert_eq!(config.settings.role_name.as_str(), "A");
    }

    #[test]
    fn errors_name_the_key_and_where_it_came_from() {
        let err = Config::load(None, &env(&[("ORGLINK_PLATFORM_CROSS_ACCOUNT_ID", "12345")])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("platform.cross_account_id"), "{text}");
        assert!(text.contains("ORGLINK_PLATFORM_CROSS_ACCOUNT_ID"), "{text}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orglink.toml");
        std::fs::write(&path, "[instructions]\nrole_name = \"has space\"\n").unwrap();
        let text = Config::load(Some(&path), &BTreeMap::new()).unwrap_err().to_string();
        assert!(text.contains("instructions.role_name") && text.contains("orglink.toml"), "{text}");

        std::fs::write(&path, "[platform]\ncross_acount_id = \"111111111111\"\n").unwrap();
        let text = Config::load(Some(&path), &BTreeMap::new()).unwrap_err().to_string();
        assert!(text.contains("cross_acount_id"), "{text}");
    }

    #[test]
    fn discord_keys_are_typed() {
        let key = "67c6bd767ca099e79efac9fcce4d2022a63bf7dea780e7f3d813f694c1597089";
        let config = Config::load(
            None,
            &env(&[
                ("ORGLINK_DISCORD_TOKEN", "secret-token"),
                ("ORGLINK_DISCORD_PUBLIC_KEY", key),
                ("ORGLINK_DISCORD_COMMAND_GUILD_IDS", "1,22, 333"),
                ("ORGLINK_DISCORD_API_BASE_URL", "http://127.0.0.1:9/"),
                ("ORGLINK_DISCORD_CDN_BASE_URL", "http://127.0.0.1:10/"),
                ("ORGLINK_HTTP_LISTEN", "127.0.0.1:0"),
                ("ORGLINK_DISCORD_REGISTER_COMMANDS_ON_START", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(config.discord.command_guild_ids.iter().map(|c| c.get()).collect::<Vec<_>>(), [1, 22, 333]);
        assert_eq!(config.discord.api_base_url, "http://127.0.0.1:9");
        assert_eq!(config.discord.cdn_base_url, "http://127.0.0.1:10");
        assert_eq!(Config::default().discord.cdn_base_url, DISCORD_CDN_BASE_URL);
        assert!(config.discord.register_commands_on_start);
        assert!(!format!("{config:?}").contains("secret-token"));
        for (var, value, key) in [
            ("ORGLINK_DISCORD_PUBLIC_KEY", "abc", "discord.public_key"),
            ("ORGLINK_DISCORD_OPS_GUILD_ID", "guild", "discord.ops_guild_id"),
            ("ORGLINK_HTTP_LISTEN", "localhost", "http.listen"),
            ("ORGLINK_DISCORD_API_BASE_URL", "discord.com", "discord.api_base_url"),
            ("ORGLINK_DISCORD_CDN_BASE_URL", "http://cdn.discordapp.com", "discord.cdn_base_url"),
        ] {
            let text = Config::load(None, &env(&[(var, value)])).unwrap_err().to_string();
            assert!(text.contains(key) && text.contains(var), "{text}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orglink.toml");
        std::fs::write(&path, "[discord]\nops_guild_id = 900000000000000001\ncommand_guild_ids = [\"5\", 6]\n")
            .unwrap();
        let config = Config::load(Some(&path), &BTreeMap::new()).unwrap();
        assert_eq!(config.discord.ops_guild_id.unwrap().get(), 900000000000000001);
        assert_eq!(config.discord.command_guild_ids.len(), 2);
    }

    #[test]
    fn every_variable_is_named_after_its_key_and_every_key_once() {
        let mut names = std::collections::BTreeSet::new();
        for key in KEYS {
            assert_eq!(key.env, format!("ORGLINK_{}", key.name.replace('.', "_").to_uppercase()), "{key:?}");
            assert!(names.insert(key.name), "{} is declared twice", key.name);
            assert!(!key.doc.is_empty() && !key.doc.contains('\n'), "{key:?}: one line of documentation");
        }
        for job in Job::ALL {
            assert!(Key::named(job.config_key()).is_some(), "{job:?} has no key");
        }
    }

    #[test]
    fn the_defaults_in_the_table_are_the_ones_the_code_starts_from() {
        let config = Config::default();
        assert_eq!(format!("{:?}", config.settings), format!("{:?}", Settings::default()));
        assert_eq!(config.aws.retry, crate::aws::RetryPolicy::default());
        assert_eq!(format!("{:?}", config.aws), format!("{:?}", AwsConfig::default()));
        assert_eq!(format!("{:?}", config.discord), format!("{:?}", DiscordConfig::default()));
        assert_eq!(config.listen, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
        assert_eq!(config.health_job_intervals, 3);
        assert_eq!(config.language, Lang::En);
        assert!(config.freshdesk.is_none() && config.sources.is_empty());
        let complete = env(&[
            ("ORGLINK_FRESHDESK_BASE_URL", "https://d.freshdesk.com/"),
            ("ORGLINK_FRESHDESK_API_KEY", "k"),
            ("ORGLINK_FRESHDESK_REQUESTER_EMAIL", "ops@d.example"),
        ]);
        let freshdesk = Config::load(None, &complete).unwrap().freshdesk.unwrap();
        assert_eq!((freshdesk.priority, freshdesk.group_id, freshdesk.language), (2, None, Lang::En));
        assert_eq!(freshdesk.base_url, "https://d.freshdesk.com");
    }

    #[test]
    fn systemd_credentials_named_like_variables_are_read_as_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ORGLINK_DISCORD_TOKEN"), "from-a-credential\n").unwrap();
        std::fs::write(dir.path().join("ORGLINK_LANGUAGE"), "es").unwrap();
        std::fs::write(dir.path().join("aws_credentials"), "[default]\n").unwrap();
        let read = credentials(dir.path());
        assert_eq!(
            read.into_iter().collect::<Vec<_>>(),
            [
                ("ORGLINK_DISCORD_TOKEN".to_owned(), "from-a-credential".to_owned()),
                ("ORGLINK_LANGUAGE".to_owned(), "es".to_owned())
            ]
        );
        assert!(credentials(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn the_backup_job_is_scheduled_only_with_a_backup_directory() {
        let config = Config::load(None, &env(&[("ORGLINK_BACKUP_KEEP", "3")])).unwrap();
        assert_eq!(config.settings.backup, None);
        assert!(!config.schedule.jobs().any(|j| j == Job::Backup));
        let config =
            Config::load(None, &env(&[("ORGLINK_BACKUP_DIR", "/var/backups/orglink"), ("ORGLINK_BACKUP_KEEP", "3")]))
                .unwrap();
        let plan = crate::app::BackupPlan { dir: "/var/backups/orglink".into(), keep: 3 };
        assert_eq!(config.settings.backup, Some(plan));
        assert!(config.schedule.jobs().any(|j| j == Job::Backup));
        let err = Config::load(None, &env(&[("ORGLINK_BACKUP_DIR", "/b"), ("ORGLINK_BACKUP_KEEP", "0")])).unwrap_err();
        assert!(matches!(err, ConfigError::Malformed { key: "backup.keep", .. }), "{err:?}");
        let err = Config::load(None, &env(&[("ORGLINK_BACKUP_DIR", "/b"), ("ORGLINK_BACKUP_SCHEDULE", "daily")]))
            .unwrap_err();
        assert!(matches!(err, ConfigError::Malformed { key: "backup.schedule", .. }), "{err:?}");
    }

    #[test]
    fn the_example_documents_every_key_with_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        // It parses with the real loader, and what it sets is the default.
        let example = Config::load(Some(&path), &BTreeMap::new()).unwrap();
        assert_eq!(format!("{:?}", Config { sources: vec![], ..example }), format!("{:?}", Config::default()));
        // Blocks: runs of lines without a blank one, with their section.
        let text = std::fs::read_to_string(&path).unwrap();
        let mut blocks: Vec<(String, Vec<&str>)> = vec![(String::new(), vec![])];
        for line in text.lines().map(str::trim) {
            if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                blocks.push((section.to_owned(), vec![]));
            } else if line.is_empty() {
                let section = blocks.last().unwrap().0.clone();
                blocks.push((section, vec![]));
            } else {
                blocks.last_mut().unwrap().1.push(line);
            }
        }
        for key in KEYS {
            let (section, leaf) = key.name.rsplit_once('.').unwrap_or(("", key.name));
            let assignment = format!("{leaf} = ");
            let found = blocks.iter().filter(|(s, _)| s == section).find_map(|(_, lines)| {
                let line = lines.iter().find(|l| l.trim_start_matches("# ").starts_with(&assignment))?;
                Some((lines, *line))
            });
            let Some((block, line)) = found else { panic!("config.example.toml does not show {}", key.name) };
            assert!(
                block.iter().any(|l| l.starts_with('#') && l.contains(key.env)),
                "{} is not beside {}",
                key.env,
                key.name
            );
            match key.default_toml() {
                Some(default) => assert_eq!(line, format!("{assignment}{default}"), "{}: its default, set", key.name),
                None => assert!(line.starts_with("# "), "{}: no default, so an example commented out", key.name),
            }
        }
    }

    #[test]
    fn doctor_sees_where_each_key_was_set_but_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orglink.toml");
        std::fs::write(&path, "[discord]\ntoken = \"file-token\"\ncommand_guild_ids = [1, 2]\n").unwrap();
        let config = Config::load(Some(&path), &env(&[("ORGLINK_LANGUAGE", "es")])).unwrap();
        let shown: Vec<(&str, String, String)> =
            config.sources.iter().map(|s| (s.key, s.origin.to_string(), s.shown.clone())).collect();
        let file = path.display().to_string();
        assert_eq!(
            shown,
            [
                ("language", "ORGLINK_LANGUAGE".to_owned(), "es".to_owned()),
                ("discord.token", file.clone(), "[redacted]".to_owned()),
                ("discord.command_guild_ids", file, "1, 2".to_owned()),
            ]
        );
        assert!(!format!("{config:?}").contains("file-token"));
    }

    #[test]
    fn half_a_freshdesk_names_the_missing_key_and_where_the_rest_was_set() {
        let text = Config::load(None, &env(&[("ORGLINK_FRESHDESK_BASE_URL", "https://d.freshdesk.com")]))
            .unwrap_err()
            .to_string();
        assert!(text.contains("freshdesk.api_key") && text.contains("ORGLINK_FRESHDESK_BASE_URL"), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orglink.toml");
        std::fs::write(&path, "[schedule]\npoll_handshake = \"0 * * * * *\"\n").unwrap();
        let text = Config::load(Some(&path), &BTreeMap::new()).unwrap_err().to_string();
        assert!(text.contains("unknown job \"poll_handshake\" in [schedule]"), "{text}");
        let text = Config::load(None, &env(&[("ORGLINK_SCHEDULE_OPEN_TICKETS", "soon")])).unwrap_err().to_string();
        assert!(text.contains("schedule.open_tickets") && text.contains("ORGLINK_SCHEDULE_OPEN_TICKETS"), "{text}");
    }

    #[test]
    fn a_public_key_of_the_right_length_must_be_an_ed25519_key() {
        // 64 hexadecimal characters, but y = 2 is on no Ed25519 point.
        let not_a_point = format!("02{}", "0".repeat(62));
        let err = Config::load(None, &env(&[("ORGLINK_DISCORD_PUBLIC_KEY", &not_a_point)])).unwrap_err();
        assert!(
            matches!(err, ConfigError::Malformed { key: "discord.public_key", expected: Expected::Ed25519Key, .. }),
            "{err}"
        );
        let err = Config::load(None, &env(&[("ORGLINK_DISCORD_PUBLIC_KEY", "abcd")])).unwrap_err();
        assert!(matches!(err, ConfigError::Malformed { expected: Expected::PublicKey, .. }), "{err}");
    }

    #[test]
    fn base_urls_are_https_but_for_this_machine_and_a_missing_scheme_is_suggested() {
        let base_url = |value: &str| {
            Config::load(None, &env(&[("ORGLINK_DISCORD_API_BASE_URL", value)])).map(|c| c.discord.api_base_url)
        };
        for fine in [
            "https://discord.com/",
            "http://127.0.0.1:9",
            "http://127.8.9.10",
            "http://[::1]:8080",
            "http://localhost:1",
        ] {
            assert!(base_url(fine).is_ok(), "{fine}");
        }
        for clear in ["http://discord.com", "http://10.0.0.1:80", "http://localhost.example.com", "http://[::2]"] {
            let err = base_url(clear).unwrap_err();
            assert!(matches!(err, ConfigError::Malformed { expected: Expected::Https, .. }), "{clear}: {err}");
        }
        for bad in ["ftp://discord.com", "https://", "https://dis cord.com", "discord"] {
            let err = base_url(bad).unwrap_err();
            assert!(matches!(err, ConfigError::Malformed { expected: Expected::Url, .. }), "{bad}: {err}");
        }
        let complete = |url: &str| {
            env(&[
                ("ORGLINK_FRESHDESK_BASE_URL", url),
                ("ORGLINK_FRESHDESK_API_KEY", "k"),
                ("ORGLINK_FRESHDESK_REQUESTER_EMAIL", "ops@d.example"),
            ])
        };
        match Config::load(None, &complete("distributor.freshdesk.com")).unwrap_err() {
            ConfigError::NoScheme { key, suggestion, .. } => {
                assert_eq!((key, suggestion.as_str()), ("freshdesk.base_url", "https://distributor.freshdesk.com"))
            }
            other => panic!("{other}"),
        }
        let err = Config::load(None, &complete("http://distributor.freshdesk.com")).unwrap_err();
        assert!(matches!(err, ConfigError::Malformed { key: "freshdesk.base_url", expected: Expected::Https, .. }));
    }

    #[test]
    fn half_a_freshdesk_names_the_key_that_is_set_and_the_ones_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.toml");
        std::fs::write(&path, "[freshdesk]\nbase_url = \"https://d.freshdesk.com\"\n").unwrap();
        match Config::load(Some(&path), &BTreeMap::new()).unwrap_err() {
            ConfigError::Incomplete { set, origin, missing } => {
                assert_eq!(
                    (set, origin, missing),
                    (
                        "freshdesk.base_url",
                        Origin::File(path.clone()),
                        vec!["freshdesk.api_key", "freshdesk.requester_email"]
                    )
                );
            }
            other => panic!("{other}"),
        }
        let err = Config::load(
            Some(&path),
            &env(&[("ORGLINK_FRESHDESK_API_KEY", "k"), ("ORGLINK_FRESHDESK_BASE_URL", "https://e.freshdesk.com")]),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Incomplete { set: "freshdesk.base_url", origin: Origin::Env("ORGLINK_FRESHDESK_BASE_URL"), missing }
                if missing == &["freshdesk.requester_email"]),
            "{err}"
        );
    }

    #[test]
    fn a_schedule_that_does_not_fire_every_year_is_refused_at_load() {
        for never in ["0 0 0 30 2 *", "0 0 0 31 4 *", "0 0 0 29 2 *", "0 0 0 1 1 * 2020"] {
            let err = Config::load(None, &env(&[("ORGLINK_SCHEDULE_OPEN_TICKETS", never)])).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Malformed { key: "schedule.open_tickets", expected: Expected::CronYearly, .. }
                ),
                "{never}: {err}"
            );
        }
        // Rare, but every year: the 31st of the months that have one, a
        // Friday the 13th, once a year.
        for yearly in ["0 0 0 31 * *", "0 0 12 13 * Fri", "0 0 9 1 1 *"] {
            assert!(Config::load(None, &env(&[("ORGLINK_SCHEDULE_OPEN_TICKETS", yearly)])).is_ok(), "{yearly}");
        }
        let start = time::macros::datetime!(2027-03-01 0:00 UTC);
        assert_eq!(never_yearly(&Config::default().schedule, start), None);
    }

    #[test]
    fn transports_default_to_the_credentials_set_and_need_theirs() {
        use Transport::{Gateway, Http};
        let key = "67c6bd767ca099e79efac9fcce4d2022a63bf7dea780e7f3d813f694c1597089";
        let runs = |pairs: &[(&str, &str)]| -> Result<Vec<Transport>, ConfigError> {
            let config = Config::load(None, &env(pairs))?;
            Ok(Transport::ALL.into_iter().filter(|t| config.discord.runs(*t)).collect())
        };
        let token = ("ORGLINK_DISCORD_TOKEN", "t");
        let public_key = ("ORGLINK_DISCORD_PUBLIC_KEY", key);
        assert_eq!(runs(&[]).unwrap(), []);
        assert_eq!(runs(&[token]).unwrap(), [Gateway]);
        assert_eq!(runs(&[token, public_key]).unwrap(), [Gateway, Http]);
        // A token for notifications, interactions over HTTP: no gateway.
        let http = ("ORGLINK_DISCORD_TRANSPORTS", "http");
        assert_eq!(runs(&[token, public_key, http]).unwrap(), [Http]);
        assert_eq!(
            runs(&[token, public_key, ("ORGLINK_DISCORD_TRANSPORTS", " http , gateway,http")]).unwrap(),
            [Gateway, Http]
        );
        assert_eq!(runs(&[token, ("ORGLINK_DISCORD_TRANSPORTS", "")]).unwrap(), [], "none at all");
        match runs(&[token, http]).unwrap_err() {
            ConfigError::Incomplete { set, origin, missing } => {
                assert_eq!(set, "discord.transports");
                assert_eq!(origin, Origin::Env("ORGLINK_DISCORD_TRANSPORTS"));
                assert_eq!(missing, ["discord.public_key"]);
            }
            other => panic!("{other}"),
        }
        let err = runs(&[token, ("ORGLINK_DISCORD_TRANSPORTS", "gateway,websocket")]).unwrap_err();
        assert!(matches!(err, ConfigError::Malformed { key: "discord.transports", expected: Expected::Transport, .. }));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orglink.toml");
        std::fs::write(&path, "[discord]\ntoken = \"t\"\ntransports = [\"gateway\"]\n").unwrap();
        let config = Config::load(Some(&path), &BTreeMap::new()).unwrap();
        assert_eq!(config.discord.transports, Some(vec![Gateway]));
    }

    #[test]
    fn the_gateway_grace_is_a_duration_up_to_an_hour() {
        assert_eq!(Config::default().gateway_grace, Duration::from_secs(60));
        let grace =
            |text: &str| Config::load(None, &env(&[("ORGLINK_HTTP_GATEWAY_GRACE", text)])).map(|c| c.gateway_grace);
        assert_eq!(grace("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(grace("0s").unwrap(), Duration::ZERO);
        assert_eq!(grace("1500ms").unwrap(), Duration::from_millis(1500));
        for bad in ["61m", "soon", "-1s", ""] {
            let err = grace(bad).unwrap_err();
            assert!(matches!(err, ConfigError::Malformed { key: "http.gateway_grace", .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        assert_eq!(secret.expose(), "hunter2");
    }
}

//! One typed configuration: a TOML file, then `ORGLINK_*` environment
//! variables over it, validated at start-up with errors that name the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::app::Settings;
use crate::domain::{AccountId, ChatId, ExternalIdPrefix, Lang, ParseError, RoleName};

/// Every key, its environment variable, and its default (for documentation
/// and the tests that keep `config.example.toml` in step).
pub const KEYS: &[(&str, &str)] = &[
    ("data_dir", "ORGLINK_DATA_DIR"),
    ("templates_dir", "ORGLINK_TEMPLATES_DIR"),
    ("language", "ORGLINK_LANGUAGE"),
    ("platform.cross_account_id", "ORGLINK_PLATFORM_CROSS_ACCOUNT_ID"),
    ("platform.partition", "ORGLINK_PLATFORM_PARTITION"),
    ("external_id.prefix", "ORGLINK_EXTERNAL_ID_PREFIX"),
    ("instructions.role_name", "ORGLINK_INSTRUCTIONS_ROLE_NAME"),
    ("discord.token", "ORGLINK_DISCORD_TOKEN"),
    ("discord.application_id", "ORGLINK_DISCORD_APPLICATION_ID"),
    ("discord.public_key", "ORGLINK_DISCORD_PUBLIC_KEY"),
    ("discord.api_base_url", "ORGLINK_DISCORD_API_BASE_URL"),
    ("discord.ops_guild_id", "ORGLINK_DISCORD_OPS_GUILD_ID"),
    ("discord.ops_role_id", "ORGLINK_DISCORD_OPS_ROLE_ID"),
    ("discord.ops_channel_id", "ORGLINK_DISCORD_OPS_CHANNEL_ID"),
    ("discord.command_guild_ids", "ORGLINK_DISCORD_COMMAND_GUILD_IDS"),
    ("discord.register_commands_on_start", "ORGLINK_DISCORD_REGISTER_COMMANDS_ON_START"),
    ("http.listen", "ORGLINK_HTTP_LISTEN"),
    ("http.health_job_intervals", "ORGLINK_HTTP_HEALTH_JOB_INTERVALS"),
    ("aws.region", "ORGLINK_AWS_REGION"),
    ("aws.verify_retries", "ORGLINK_AWS_VERIFY_RETRIES"),
    ("aws.verify_retry_delay_ms", "ORGLINK_AWS_VERIFY_RETRY_DELAY_MS"),
    ("aws.management_role_arn", "ORGLINK_AWS_MANAGEMENT_ROLE_ARN"),
    ("invitations.auto_send", "ORGLINK_INVITATIONS_AUTO_SEND"),
    ("invitations.reminder_days", "ORGLINK_INVITATIONS_REMINDER_DAYS"),
    ("probe.enabled", "ORGLINK_PROBE_ENABLED"),
    ("probe.schedule", "ORGLINK_PROBE_SCHEDULE"),
    ("probe.assume_role_per_minute", "ORGLINK_PROBE_ASSUME_ROLE_PER_MINUTE"),
    ("schedule.poll_handshakes", "ORGLINK_SCHEDULE_POLL_HANDSHAKES"),
    ("schedule.remind_invitations", "ORGLINK_SCHEDULE_REMIND_INVITATIONS"),
    ("schedule.send_queued_invitations", "ORGLINK_SCHEDULE_SEND_QUEUED_INVITATIONS"),
    ("schedule.audit_support_plans", "ORGLINK_SCHEDULE_AUDIT_SUPPORT_PLANS"),
    ("schedule.open_tickets", "ORGLINK_SCHEDULE_OPEN_TICKETS"),
    ("schedule.probe_roles", "ORGLINK_SCHEDULE_PROBE_ROLES"),
    ("freshdesk.base_url", "ORGLINK_FRESHDESK_BASE_URL"),
    ("freshdesk.api_key", "ORGLINK_FRESHDESK_API_KEY"),
    ("freshdesk.requester_email", "ORGLINK_FRESHDESK_REQUESTER_EMAIL"),
    ("freshdesk.group_id", "ORGLINK_FRESHDESK_GROUP_ID"),
    ("freshdesk.priority", "ORGLINK_FRESHDESK_PRIORITY"),
    ("freshdesk.tags", "ORGLINK_FRESHDESK_TAGS"),
    ("freshdesk.custom_fields", "ORGLINK_FRESHDESK_CUSTOM_FIELDS"),
    ("freshdesk.language", "ORGLINK_FRESHDESK_LANGUAGE"),
];

/// Discord's REST API, unless configured otherwise.
pub const DISCORD_API_BASE_URL: &str = "https://discord.com";

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
    pub data_dir: PathBuf,
    pub templates_dir: Option<PathBuf>,
    /// The language used where no user's or tenant's language is known.
    pub language: Lang,
    pub settings: Settings,
    pub discord: DiscordConfig,
    /// Where `orglink serve` listens for HTTP (interactions, health, metrics).
    pub listen: std::net::SocketAddr,
    /// `/healthz` fails when a job has not succeeded for this many of its
    /// intervals.
    pub health_job_intervals: u32,
    pub aws: AwsConfig,
    /// The scheduled jobs and their cron expressions.
    pub schedule: crate::scheduler::Schedule,
    /// Freshdesk, where orglink opens tickets (none: tickets wait).
    pub freshdesk: Option<FreshdeskConfig>,
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
    pub ops_guild_id: Option<ChatId>,
    pub ops_role_id: Option<ChatId>,
    pub ops_channel_id: Option<ChatId>,
    /// Register commands in these servers only (empty: globally).
    pub command_guild_ids: Vec<ChatId>,
    pub register_commands_on_start: bool,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            token: None,
            application_id: None,
            public_key: None,
            api_base_url: DISCORD_API_BASE_URL.to_owned(),
            ops_guild_id: None,
            ops_role_id: None,
            ops_channel_id: None,
            command_guild_ids: Vec::new(),
            register_commands_on_start: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("orglink-data"),
            templates_dir: None,
            language: Lang::En,
            settings: Settings::default(),
            discord: DiscordConfig::default(),
            listen: "127.0.0.1:8080".parse().expect("a socket address"),
            health_job_intervals: 3,
            aws: AwsConfig::default(),
            schedule: crate::scheduler::Schedule::new(&BTreeMap::new()).expect("the default schedule parses"),
            freshdesk: None,
        }
    }
}

/// What a malformed value should have looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    PublicKey,
    Url,
    SocketAddr,
    Bool,
    Count,
    Region,
    Cron,
    Days,
    Priority,
    Json,
    Partition,
    ProbeSchedule,
    Intervals,
    Complete,
}

/// Where a configured value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Env(var) => f.write_str(var),
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<String>,
    templates_dir: Option<String>,
    language: Option<String>,
    #[serde(default)]
    platform: RawPlatform,
    #[serde(default)]
    external_id: RawExternalId,
    #[serde(default)]
    instructions: RawInstructions,
    #[serde(default)]
    discord: RawDiscord,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    aws: RawAws,
    #[serde(default)]
    invitations: RawInvitations,
    #[serde(default)]
    probe: RawProbe,
    #[serde(default)]
    schedule: BTreeMap<String, String>,
    #[serde(default)]
    freshdesk: RawFreshdesk,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    enabled: Option<Text>,
    schedule: Option<String>,
    assume_role_per_minute: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreshdesk {
    base_url: Option<String>,
    api_key: Option<String>,
    requester_email: Option<String>,
    group_id: Option<Text>,
    priority: Option<Text>,
    tags: Option<Vec<String>>,
    custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
    language: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInvitations {
    auto_send: Option<Text>,
    reminder_days: Option<Vec<Text>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAws {
    region: Option<String>,
    verify_retries: Option<Text>,
    verify_retry_delay_ms: Option<Text>,
    management_role_arn: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatform {
    cross_account_id: Option<String>,
    partition: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExternalId {
    prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstructions {
    role_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscord {
    token: Option<String>,
    application_id: Option<Text>,
    public_key: Option<String>,
    api_base_url: Option<String>,
    ops_guild_id: Option<Text>,
    ops_role_id: Option<Text>,
    ops_channel_id: Option<Text>,
    command_guild_ids: Option<Vec<Text>>,
    register_commands_on_start: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<String>,
    health_job_intervals: Option<Text>,
}

/// A value written as a string, a number or a boolean: IDs and flags are
/// accepted either way and validated as text.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Text {
    String(String),
    Integer(u64),
    Bool(bool),
}

impl Text {
    fn into_string(self) -> String {
        match self {
            Self::String(s) => s,
            Self::Integer(n) => n.to_string(),
            Self::Bool(b) => b.to_string(),
        }
    }
}

impl Config {
    /// Reads `file` (if given) and the environment `env`, and validates all.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut raw = RawConfig::default();
        let mut origins: BTreeMap<&'static str, Origin> = BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Unreadable { path: path.to_owned(), source })?;
            raw = toml::from_str(&text)
                .map_err(|e| ConfigError::Syntax { path: path.to_owned(), message: e.message().to_owned() })?;
            for (key, _) in KEYS {
                origins.insert(key, Origin::File(path.to_owned()));
            }
        }
        for (key, var) in KEYS {
            let Some(value) = env.get(*var) else { continue };
            let text = || Some(Text::String(value.clone()));
            let d = &mut raw.discord;
            match *key {
                "data_dir" => raw.data_dir = Some(value.clone()),
                "templates_dir" => raw.templates_dir = Some(value.clone()),
                "language" => raw.language = Some(value.clone()),
                "platform.cross_account_id" => raw.platform.cross_account_id = Some(value.clone()),
                "platform.partition" => raw.platform.partition = Some(value.clone()),
                "external_id.prefix" => raw.external_id.prefix = Some(value.clone()),
                "instructions.role_name" => raw.instructions.role_name = Some(value.clone()),
                "discord.token" => d.token = Some(value.clone()),
                "discord.application_id" => d.application_id = text(),
                "discord.public_key" => d.public_key = Some(value.clone()),
                "discord.api_base_url" => d.api_base_url = Some(value.clone()),
                "discord.ops_guild_id" => d.ops_guild_id = text(),
                "discord.ops_role_id" => d.ops_role_id = text(),
                "discord.ops_channel_id" => d.ops_channel_id = text(),
                "discord.command_guild_ids" => {
                    d.command_guild_ids = Some(
                        value.split(',').filter(|s| !s.trim().is_empty()).map(|s| Text::String(s.into())).collect(),
                    )
                }
                "discord.register_commands_on_start" => d.register_commands_on_start = text(),
                "http.listen" => raw.http.listen = Some(value.clone()),
                "http.health_job_intervals" => raw.http.health_job_intervals = text(),
                "aws.region" => raw.aws.region = Some(value.clone()),
                "aws.verify_retries" => raw.aws.verify_retries = text(),
                "aws.verify_retry_delay_ms" => raw.aws.verify_retry_delay_ms = text(),
                "aws.management_role_arn" => raw.aws.management_role_arn = Some(value.clone()),
                "invitations.auto_send" => raw.invitations.auto_send = text(),
                "invitations.reminder_days" => {
                    raw.invitations.reminder_days = Some(
                        value
                            .split(',')
                            .filter(|s| !s.trim().is_empty())
                            .map(|s| Text::String(s.trim().into()))
                            .collect(),
                    )
                }
                "probe.enabled" => raw.probe.enabled = text(),
                "probe.schedule" => raw.probe.schedule = Some(value.clone()),
                "probe.assume_role_per_minute" => raw.probe.assume_role_per_minute = text(),
                "freshdesk.base_url" => raw.freshdesk.base_url = Some(value.clone()),
                "freshdesk.api_key" => raw.freshdesk.api_key = Some(value.clone()),
                "freshdesk.requester_email" => raw.freshdesk.requester_email = Some(value.clone()),
                "freshdesk.group_id" => raw.freshdesk.group_id = text(),
                "freshdesk.priority" => raw.freshdesk.priority = text(),
                "freshdesk.tags" => {
                    raw.freshdesk.tags =
                        Some(value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
                }
                "freshdesk.custom_fields" => {
                    raw.freshdesk.custom_fields =
                        Some(serde_json::from_str(value).map_err(|_| ConfigError::Malformed {
                            key: "freshdesk.custom_fields",
                            origin: Origin::Env(var),
                            expected: Expected::Json,
                        })?)
                }
                "freshdesk.language" => raw.freshdesk.language = Some(value.clone()),
                job if job.starts_with("schedule.") => {
                    raw.schedule.insert(job.trim_start_matches("schedule.").to_owned(), value.clone());
                }
                other => unreachable!("KEYS lists {other} but load does not read it"),
            }
            origins.insert(key, Origin::Env(var));
        }
        let origin = |key: &'static str| origins.get(key).cloned().unwrap_or(Origin::Env("default"));
        let parsed = |key: &'static str, value: &str| -> Result<_, ConfigError> {
            if value.trim().is_empty() {
                return Err(ConfigError::Empty { key, origin: origin(key) });
            }
            Ok(value.to_owned())
        };
        let typed = |key: &'static str, error: ParseError| ConfigError::Invalid { key, origin: origin(key), error };

        let defaults = Config::default();
        let data_dir = match raw.data_dir {
            Some(v) => PathBuf::from(parsed("data_dir", &v)?),
            None => defaults.data_dir,
        };
        let templates_dir = raw.templates_dir.map(|v| parsed("templates_dir", &v).map(PathBuf::from)).transpose()?;
        let language = match raw.language {
            Some(v) => v.parse().map_err(|e| typed("language", e))?,
            None => defaults.language,
        };
        let mut settings = defaults.settings;
        if let Some(v) = raw.platform.cross_account_id {
            // Inside configuration an account ID is written plainly.
            settings.cross_account_id = v.parse::<AccountId>().map_err(|e| typed("platform.cross_account_id", e))?;
        }
        if let Some(v) = raw.external_id.prefix {
            settings.external_id_prefix = v.parse::<ExternalIdPrefix>().map_err(|e| typed("external_id.prefix", e))?;
        }
        if let Some(v) = raw.instructions.role_name {
            settings.role_name = v.parse::<RoleName>().map_err(|e| typed("instructions.role_name", e))?;
        }
        let malformed = |key: &'static str, expected| ConfigError::Malformed { key, origin: origin(key), expected };
        let chat_id = |key: &'static str, v: Option<Text>| -> Result<Option<ChatId>, ConfigError> {
            v.map(|v| v.into_string().parse::<ChatId>().map_err(|e| typed(key, e))).transpose()
        };
        let raw_discord = raw.discord;
        let mut discord = DiscordConfig {
            token: raw_discord.token.map(|v| parsed("discord.token", &v).map(Secret::new)).transpose()?,
            application_id: chat_id("discord.application_id", raw_discord.application_id)?,
            ops_guild_id: chat_id("discord.ops_guild_id", raw_discord.ops_guild_id)?,
            ops_role_id: chat_id("discord.ops_role_id", raw_discord.ops_role_id)?,
            ops_channel_id: chat_id("discord.ops_channel_id", raw_discord.ops_channel_id)?,
            ..DiscordConfig::default()
        };
        if let Some(key) = raw_discord.public_key {
            let key = key.trim().to_owned();
            let valid = crate::discord::endpoint::verifier(&key).is_some();
            if !valid {
                return Err(malformed("discord.public_key", Expected::PublicKey));
            }
            discord.public_key = Some(key);
        }
        if let Some(url) = raw_discord.api_base_url {
            let url = url.trim().trim_end_matches('/').to_owned();
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains(char::is_whitespace) {
                return Err(malformed("discord.api_base_url", Expected::Url));
            }
            discord.api_base_url = url;
        }
        for id in raw_discord.command_guild_ids.unwrap_or_default() {
            discord
                .command_guild_ids
                .push(id.into_string().parse::<ChatId>().map_err(|e| typed("discord.command_guild_ids", e))?);
        }
        if let Some(flag) = raw_discord.register_commands_on_start {
            discord.register_commands_on_start = match flag.into_string().trim() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => return Err(malformed("discord.register_commands_on_start", Expected::Bool)),
            };
        }
        let listen = match raw.http.listen {
            Some(v) => v.trim().parse().map_err(|_| malformed("http.listen", Expected::SocketAddr))?,
            None => defaults.listen,
        };
        let mut health_job_intervals = defaults.health_job_intervals;
        if let Some(v) = raw.http.health_job_intervals {
            health_job_intervals = v
                .into_string()
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (2..=100).contains(n))
                .ok_or_else(|| malformed("http.health_job_intervals", Expected::Intervals))?;
        }
        let mut aws = AwsConfig::default();
        if let Some(region) = raw.aws.region {
            let region = region.trim().to_owned();
            let valid =
                !region.is_empty() && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                return Err(malformed("aws.region", Expected::Region));
            }
            aws.region = Some(region);
        }
        let count = |key: &'static str, v: Text, max: u64| -> Result<u64, ConfigError> {
            v.into_string()
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| malformed(key, Expected::Count))
        };
        if let Some(v) = raw.aws.verify_retries {
            aws.retry.retries = count("aws.verify_retries", v, 10)? as u32;
        }
        if let Some(v) = raw.aws.verify_retry_delay_ms {
            aws.retry.first_delay = std::time::Duration::from_millis(count("aws.verify_retry_delay_ms", v, 60_000)?);
        }
        if let Some(flag) = raw.invitations.auto_send {
            settings.auto_send_invitations = match flag.into_string().trim() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => return Err(malformed("invitations.auto_send", Expected::Bool)),
            };
        }
        if let Some(days) = raw.invitations.reminder_days {
            let mut parsed = Vec::new();
            for d in days {
                let d = d.into_string().trim().parse::<u32>().ok().filter(|d| (1..=14).contains(d));
                parsed.push(d.ok_or_else(|| malformed("invitations.reminder_days", Expected::Days))?);
            }
            parsed.sort_unstable_by(|a, b| b.cmp(a));
            parsed.dedup();
            settings.reminder_days = parsed;
        }
        if let Some(v) = raw.platform.partition {
            settings.partition = match v.trim() {
                "aws" => crate::domain::Partition::Aws,
                "aws-cn" => crate::domain::Partition::AwsCn,
                "aws-us-gov" => crate::domain::Partition::AwsUsGov,
                _ => return Err(malformed("platform.partition", Expected::Partition)),
            };
        }
        if let Some(flag) = raw.probe.enabled {
            settings.probe.enabled = match flag.into_string().trim() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => return Err(malformed("probe.enabled", Expected::Bool)),
            };
        }
        if let Some(v) = raw.probe.schedule {
            settings.probe.plan = v.parse().map_err(|_| malformed("probe.schedule", Expected::ProbeSchedule))?;
        }
        if let Some(v) = raw.probe.assume_role_per_minute {
            let n = count("probe.assume_role_per_minute", v, 6_000)?;
            if n < 2 {
                return Err(malformed("probe.assume_role_per_minute", Expected::Count));
            }
            settings.probe.assume_role_per_minute = n as u32;
        }
        for job in raw.schedule.keys() {
            if crate::scheduler::Job::from_name(job).is_none() {
                return Err(ConfigError::Syntax {
                    path: file.map(Path::to_owned).unwrap_or_default(),
                    message: format!("unknown job {job:?} in [schedule]"),
                });
            }
        }
        let schedule = crate::scheduler::Schedule::new(&raw.schedule).map_err(|e| {
            let key =
                KEYS.iter().map(|(k, _)| *k).find(|k| k.strip_prefix("schedule.") == Some(e.job)).unwrap_or("schedule");
            malformed(key, Expected::Cron)
        })?;
        let f = raw.freshdesk;
        let freshdesk = match (f.base_url, f.api_key, f.requester_email) {
            (None, None, None) => None,
            (Some(url), Some(key), Some(email)) => {
                let url = url.trim().trim_end_matches('/').to_owned();
                if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains(char::is_whitespace) {
                    return Err(malformed("freshdesk.base_url", Expected::Url));
                }
                let priority = match f.priority {
                    Some(p) => p
                        .into_string()
                        .trim()
                        .parse::<u8>()
                        .ok()
                        .filter(|p| (1..=4).contains(p))
                        .ok_or_else(|| malformed("freshdesk.priority", Expected::Priority))?,
                    None => 2,
                };
                let group_id = match f.group_id {
                    Some(g) => Some(
                        g.into_string()
                            .trim()
                            .parse::<u64>()
                            .map_err(|_| malformed("freshdesk.group_id", Expected::Count))?,
                    ),
                    None => None,
                };
                Some(FreshdeskConfig {
                    base_url: url,
                    api_key: Secret::new(parsed("freshdesk.api_key", &key)?),
                    requester_email: email.parse().map_err(|e| typed("freshdesk.requester_email", e))?,
                    group_id,
                    priority,
                    tags: f.tags.unwrap_or_default(),
                    custom_fields: f.custom_fields.unwrap_or_default(),
                    language: match f.language {
                        Some(l) => l.parse().map_err(|e| typed("freshdesk.language", e))?,
                        None => language,
                    },
                })
            }
            // Half a Freshdesk configuration is a mistake worth naming.
            (url, key, _) => {
                let missing = if url.is_none() {
                    "freshdesk.base_url"
                } else if key.is_none() {
                    "freshdesk.api_key"
                } else {
                    "freshdesk.requester_email"
                };
                return Err(malformed(missing, Expected::Complete));
            }
        };
        if let Some(arn) = raw.aws.management_role_arn {
            aws.management_role_arn = Some(arn.parse().map_err(|e| typed("aws.management_role_arn", e))?);
        }
        Ok(Config {
            data_dir,
            templates_dir,
            language,
            settings,
            discord,
            listen,
            health_job_intervals,
            aws,
            schedule,
            freshdesk,
        })
    }

    /// The `ORGLINK_*` variables of the process environment.
    pub fn process_env() -> BTreeMap<String, String> {
        std::env::vars().filter(|(k, _)| k.starts_with("ORGLINK_")).collect()
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
        assert_eq!(config.data_dir, PathBuf::from("orglink-data"));
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
                ("ORGLINK_HTTP_LISTEN", "127.0.0.1:0"),
                ("ORGLINK_DISCORD_REGISTER_COMMANDS_ON_START", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(config.discord.command_guild_ids.iter().map(|c| c.get()).collect::<Vec<_>>(), [1, 22, 333]);
        assert_eq!(config.discord.api_base_url, "http://127.0.0.1:9");
        assert!(config.discord.register_commands_on_start);
        assert!(!format!("{config:?}").contains("secret-token"));
        for (var, value, key) in [
            ("ORGLINK_DISCORD_PUBLIC_KEY", "abc", "discord.public_key"),
            ("ORGLINK_DISCORD_OPS_GUILD_ID", "guild", "discord.ops_guild_id"),
            ("ORGLINK_HTTP_LISTEN", "localhost", "http.listen"),
            ("ORGLINK_DISCORD_API_BASE_URL", "discord.com", "discord.api_base_url"),
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
    fn secrets_are_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        assert_eq!(secret.expose(), "hunter2");
    }
}

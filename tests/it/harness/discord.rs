//! Starts the whole app the way `orglink serve` does, against a local

//! stand-in for Discord's REST API (wiremock, recording every request), a
//! store in a temporary directory, and a fresh Ed25519 key pair; posts
//! interactions signed the way Discord signs them.

#![allow(dead_code)] // each test binary uses part of it

use std::sync::Arc;

use ed25519_dalek::{Signer, SigningKey};
use orglink::clock::{Clock, SystemClock};
use orglink::config::{Config, DiscordConfig, Secret};
use orglink::domain::ChatId;
use orglink::server::{self, Running};
use orglink::store::Store;
use orglink::templates::Templates;
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const APPLICATION_ID: &str = "800000000000000001";
pub const GUILD_A: &str = "900000000000000001";
pub const GUILD_B: &str = "900000000000000501";
pub const OPS_GUILD: &str = "900000000000000100";
pub const OPS_ROLE: &str = "910000000000000100";
pub const OPS_CHANNEL: &str = "900000000000000101";
pub const TOKEN: &str = "test-bot-token-not-a-secret-elsewhere";

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/discord/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A message as Discord returns it from REST.
pub fn message_json(channel: &str) -> Value {
    let mut message = fixture("component_button")["message"].clone();
    message["channel_id"] = json!(channel);
    message
}

pub struct Harness {
    pub discord: MockServer,
    pub running: Option<Running>,
    pub store: Store,
    pub config: Config,
    signing: SigningKey,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub fn config(discord_url: &str, public_key: &str) -> Config {
    Config {
        discord: DiscordConfig {
            token: Some(Secret::new(TOKEN)),
            application_id: Some(APPLICATION_ID.parse().unwrap()),
            public_key: Some(public_key.to_owned()),
            api_base_url: discord_url.to_owned(),
            ops_guild_id: Some(OPS_GUILD.parse().unwrap()),
            ops_role_id: Some(OPS_ROLE.parse().unwrap()),
            ops_channel_id: Some(OPS_CHANNEL.parse().unwrap()),
            command_guild_ids: vec![],
            register_commands_on_start: false,
        },
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    }
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(Arc::new(SystemClock)).await
    }

    pub async fn start_with(clock: Arc<dyn Clock>) -> Self {
        Self::start_full(clock, None).await
    }

    /// With AWS (for role verification), as `serve` has it.
    pub async fn start_full(
        clock: Arc<dyn Clock>,
        aws: Option<(orglink::aws::Aws, orglink::aws::organizations::Distributor)>,
    ) -> Self {
        Self::start_configured(clock, aws, |_| {}).await
    }

    /// With AWS, and the configuration changed by `adjust` before start.
    pub async fn start_configured(
        clock: Arc<dyn Clock>,
        aws: Option<(orglink::aws::Aws, orglink::aws::organizations::Distributor)>,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let discord = MockServer::start().await;
        // Follow-ups (edits of the original response) and channel messages.
        Mock::given(method("PATCH"))
            .and(path_regex(r"^/api/v10/webhooks/\d+/[^/]+/messages/@original$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(message_json(GUILD_A)))
            .mount(&discord)
            .await;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        let signing = SigningKey::from_bytes(&seed);
        let mut config = config(&discord.uri(), &hex::encode(signing.verifying_key().to_bytes()));
        if aws.is_some() {
            config.settings.cross_account_id = "123456789012".parse().unwrap();
        }
        adjust(&mut config);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let running = server::start(config.clone(), Templates::embedded(), store.clone(), clock, aws).await.unwrap();
        Self { discord, running: Some(running), store, config, signing, client: reqwest::Client::new(), _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.as_ref().unwrap().http_addr)
    }

    /// Posts `body` signed as Discord signs it, stamped `age_secs` ago.
    pub async fn post_aged(&self, body: &[u8], age_secs: i64) -> (u16, Value) {
        let timestamp = (time::OffsetDateTime::now_utc().unix_timestamp() - age_secs).to_string();
        let signature = self.signing.sign(&[timestamp.as_bytes(), body].concat());
        let response = self
            .client
            .post(self.url("/interactions"))
            .header("X-Signature-Ed25519", hex::encode(signature.to_bytes()))
            .header("X-Signature-Timestamp", timestamp)
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn post(&self, interaction: &Value) -> (u16, Value) {
        self.post_aged(&serde_json::to_vec(interaction).unwrap(), 0).await
    }

    /// Posts and expects 200; returns the interaction response.
    pub async fn interact(&self, interaction: &Value) -> Value {
        let (status, body) = self.post(interaction).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn raw_post(&self, headers: &[(&str, &str)], body: Vec<u8>) -> u16 {
        let mut request = self.client.post(self.url("/interactions")).body(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send().await.unwrap().status().as_u16()
    }

    /// Requests Discord's stand-in received, by method and path pattern.
    pub async fn received(&self, verb: &str, path_pattern: &str) -> Vec<wiremock::Request> {
        let re = regex_lite(path_pattern);
        self.discord
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == verb && re(r.url.path()))
            .collect()
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }
}

/// A tiny matcher: `*` matches any run of characters except `/`.
fn regex_lite(pattern: &str) -> impl Fn(&str) -> bool {
    let parts: Vec<String> = pattern.split('*').map(str::to_owned).collect();
    move |path: &str| {
        let mut rest = path;
        for (i, part) in parts.iter().enumerate() {
            if i == 0 {
                let Some(r) = rest.strip_prefix(part.as_str()) else { return false };
                rest = r;
            } else {
                let Some(end) = rest.find(part.as_str()).filter(|e| !rest[..*e].contains('/')) else { return false };
                rest = &rest[end + part.len()..];
            }
        }
        rest.is_empty()
    }
}

/// An interaction from `fixture`, in `guild` with `locale`, by a member with
/// `permissions` and `roles`.
pub fn interaction(fixture_name: &str, guild: &str, locale: &str, permissions: &str, roles: &[&str]) -> Value {
    let mut i = fixture(fixture_name);
    i["guild_id"] = json!(guild);
    i["locale"] = json!(locale);
    i["member"]["permissions"] = json!(permissions);
    i["member"]["roles"] = json!(roles);
    i["channel"]["guild_id"] = json!(guild);
    i
}

/// Every permission (Manage Server included).
pub const ADMIN: &str = "2251799813685247";
/// None at all.
pub const NOBODY: &str = "0";

/// A slash command with string options.
pub fn command(
    name: &str,
    options: &[(&str, &str)],
    guild: &str,
    locale: &str,
    permissions: &str,
    roles: &[&str],
) -> Value {
    let mut i = interaction("command_link_account_es419", guild, locale, permissions, roles);
    i["data"]["name"] = json!(name);
    i["data"]["options"] =
        Value::Array(options.iter().map(|(k, v)| json!({ "name": k, "type": 3, "value": v })).collect());
    i
}

pub fn chat(id: &str) -> ChatId {
    id.parse().unwrap()
}

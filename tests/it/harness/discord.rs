//! Discord as orglink meets it: the IDs of the servers, roles and channels
//! in the tests, the configuration pointing orglink at a recorder standing
//! in for Discord's REST API, and interactions shaped like Discord's (from
//! `tests/fixtures/discord/`).

use orglink::config::{Config, DiscordConfig, Secret};
use orglink::domain::ChatId;
use serde_json::{Value, json};

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

pub fn config(discord_url: &str, public_key: &str) -> Config {
    Config {
        discord: DiscordConfig {
            token: Some(Secret::new(TOKEN)),
            application_id: Some(APPLICATION_ID.parse().unwrap()),
            public_key: Some(public_key.to_owned()),
            api_base_url: discord_url.to_owned(),
            cdn_base_url: orglink::config::DISCORD_CDN_BASE_URL.to_owned(),
            ops_guild_id: Some(OPS_GUILD.parse().unwrap()),
            ops_role_id: Some(OPS_ROLE.parse().unwrap()),
            ops_channel_id: Some(OPS_CHANNEL.parse().unwrap()),
            command_guild_ids: vec![],
            register_commands_on_start: false,
            transports: None,
            // The gateway's supervisor retries within milliseconds here.
            reconnect: orglink::backoff::Backoff {
                first: std::time::Duration::from_millis(20),
                max: std::time::Duration::from_millis(400),
            },
        },
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
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

/// The text of the embeds of a message or response `data`.
pub fn embeds_text(data: &Value) -> String {
    data["embeds"].as_array().map_or(String::new(), |embeds| {
        embeds.iter().filter_map(|e| e["description"].as_str()).collect::<Vec<_>>().join("\n")
    })
}

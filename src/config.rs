//! One typed configuration: a TOML file, then `ORGLINK_*` environment
//! variables over it, validated at start-up with errors that name the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::app::Settings;
use crate::domain::{AccountId, ExternalIdPrefix, Lang, ParseError, RoleName};

/// Every key, its environment variable, and its default (for documentation
/// and the tests that keep `config.example.toml` in step).
pub const KEYS: &[(&str, &str)] = &[
    ("data_dir", "ORGLINK_DATA_DIR"),
    ("templates_dir", "ORGLINK_TEMPLATES_DIR"),
    ("language", "ORGLINK_LANGUAGE"),
    ("platform.cross_account_id", "ORGLINK_PLATFORM_CROSS_ACCOUNT_ID"),
    ("external_id.prefix", "ORGLINK_EXTERNAL_ID_PREFIX"),
    ("instructions.role_name", "ORGLINK_INSTRUCTIONS_ROLE_NAME"),
];

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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("orglink-data"),
            templates_dir: None,
            language: Lang::En,
            settings: Settings::default(),
        }
    }
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatform {
    cross_account_id: Option<String>,
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
            let slot = match *key {
                "data_dir" => &mut raw.data_dir,
                "templates_dir" => &mut raw.templates_dir,
                "language" => &mut raw.language,
                "platform.cross_account_id" => &mut raw.platform.cross_account_id,
                "external_id.prefix" => &mut raw.external_id.prefix,
                "instructions.role_name" => &mut raw.instructions.role_name,
                other => unreachable!("KEYS lists {other} but load does not read it"),
            };
            *slot = Some(value.clone());
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
        Ok(Config { data_dir, templates_dir, language, settings })
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
    fn secrets_are_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        assert_eq!(secret.expose(), "hunter2");
    }
}

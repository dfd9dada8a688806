//! The real `orglink` binary, run as an operator would against a temporary
//! data directory, and the store it leaves behind.

use std::path::PathBuf;
use std::process::Command;

use orglink::domain::Account;
use orglink::store::{Record, Store};

use super::aws::{Keys, PLATFORM, emulator};

/// One run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// An orglink installation: a data directory and the environment it runs in.
pub struct Orglink {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Orglink {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap(), env: Vec::new() }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// With AWS: the SDK's own environment variables point it at the
    /// emulator as `keys`' identity.
    pub fn aws(self, keys: &Keys) -> Self {
        self.env("AWS_ENDPOINT_URL", &emulator().endpoint)
            .env("AWS_ACCESS_KEY_ID", &keys.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &keys.secret_access_key)
            .env("AWS_REGION", "us-east-1")
            .env("ORGLINK_PLATFORM_CROSS_ACCOUNT_ID", PLATFORM)
            .env("ORGLINK_AWS_VERIFY_RETRIES", "1")
            .env("ORGLINK_AWS_VERIFY_RETRY_DELAY_MS", "20")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `orglink --data-dir <dir> ARGS...`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(&[], args)
    }

    /// Runs with `env` set besides the installation's environment.
    pub fn run_with(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let data_dir = self.data_dir();
        let mut full = vec!["--data-dir", data_dir.to_str().expect("a UTF-8 path")];
        full.extend_from_slice(args);
        self.run_bare(env, &full)
    }

    /// Runs `orglink ARGS...` as given (no `--data-dir`), in the
    /// installation's directory.
    pub fn run_bare(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_orglink"));
        command.args(args).current_dir(self.dir.path());
        // Only what the test sets: no ORGLINK_* from the developer's shell.
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("ORGLINK_")) {
            command.env_remove(key);
        }
        command.env_remove("AWS_PROFILE");
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command.envs(env.iter().copied());
        let output = command.output().expect("the orglink binary runs");
        Run {
            code: output.status.code().expect("orglink exits normally"),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Runs and expects exit 0.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "orglink {args:?} failed: {run:?}");
        run.stdout
    }

    /// The store, opened while no orglink process runs.
    pub fn store(&self) -> Store {
        Store::open(&self.data_dir()).expect("the store opens")
    }

    /// Every stored record (empty before the store exists).
    pub fn export(&self) -> Vec<Record> {
        if !self.data_dir().exists() {
            return Vec::new();
        }
        self.store().export().unwrap()
    }

    pub fn account(&self, id: &str) -> Option<Account> {
        self.store().account(id.parse().unwrap()).unwrap()
    }
}

//! The command line while `orglink serve` holds the store: the real binary
//! both ends, its commands run by the server through the data directory's
//! socket, printed and exited as they would be locally.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use crate::harness::discord::*;
use crate::harness::{Orglink, PLATFORM};

/// AWS credentials that go nowhere, at once: these tests ask AWS nothing.
pub(crate) const OFFLINE: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIAOFFLINE"),
    ("AWS_SECRET_ACCESS_KEY", "offline"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ("AWS_MAX_ATTEMPTS", "1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("ORGLINK_PLATFORM_CROSS_ACCOUNT_ID", PLATFORM),
    ("ORGLINK_PROBE_ENABLED", "false"),
];

/// A running `orglink serve` on an installation's data directory.
pub(crate) struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
    pub(crate) socket: PathBuf,
}

impl Server {
    /// Starts it with `env` and waits until its socket is there (bound and
    /// listening at once) and its HTTP endpoint answers.
    pub(crate) async fn start(o: &Orglink, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = o.path("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_orglink"))
            .args(["--data-dir", o.data_dir().to_str().unwrap(), "serve"])
            // As systemd starts it: not where the command line runs.
            .current_dir("/")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ORGLINK_HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .envs(OFFLINE.iter().copied())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("orglink serve starts");
        let server = Self { child, port, log, socket: o.data_dir().join("orglink.sock") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.socket.exists() || reqwest::get(server.url("/healthz")).await.is_err() {
            assert!(Instant::now() < deadline, "orglink serve did not come up: {}", server.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, as systemd stops it; it must remove its socket.
    pub(crate) fn stop(mut self) -> String {
        // SAFETY: kill sends a signal to our own child; it cannot corrupt memory.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}: {}", self.log());
        assert!(!self.socket.exists(), "the socket is removed at shutdown");
        self.log()
    }
}

impl Drop for Server {
    /// A failing test leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn as_user<'a>(env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = env.to_vec();
    env.push(("USER", "ana"));
    env
}

#[tokio::test]
async fn the_command_line_runs_through_the_server_that_holds_the_store() {
    let o = Orglink::new();
    let signing = SigningKey::from_bytes(&[21; 32]);
    let public_key = hex::encode(signing.verifying_key().to_bytes());
    let server =
        Server::start(&o, &[("ORGLINK_DISCORD_PUBLIC_KEY", &public_key), ("ORGLINK_TENANTS_POLICY", "open")]).await;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let meta = std::fs::metadata(&server.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "owner-only");

    let env = as_user(OFFLINE);
    let add = ["account", "add", "123456789012", "--tenant", GUILD_A, "--customer", "Acme", "--support", "business"];
    let run = o.run_with(&env, &add);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("AWS account 123456789012 is registered for Acme"), "{}", run.stdout);

    let run = o.run_with(&env, &["account", "list", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list["accounts"][0]["id"], "123456789012");

    let run = o.run_with(&env, &["account", "show", "123456789012"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("123456789012"), "{}", run.stdout);

    // Bad input: the client's own parse, exit 2.
    let run = o.run_with(&env, &["account", "show", "12"]);
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:?}");
    assert!(run.stderr.contains("\"12\" is not valid"), "{}", run.stderr);

    // A user error from the server's app: exit 2, in the client's language.
    let through_server_es = o.run_with(&env, &["--lang", "es", "account", "show", "999999999999"]);
    assert_eq!(through_server_es.code, 2, "{through_server_es:?}");
    let through_server = o.run_with(
        &env,
        &["account", "add", "123456789012", "--tenant", GUILD_A, "--customer", "Acme", "--support", "business"],
    );
    assert_eq!(through_server.code, 2, "{through_server:?}");

    // The audit names the operator at the command line.
    let history = o.run_with(&env, &["account", "history", "123456789012"]);
    assert!(history.stdout.contains("by cli:ana"), "{history:?}");

    // Discord sees it at once: the same app, the same store.
    let mut status = command("status", &[("account_id", "123456789012")], GUILD_A, "en-US", ADMIN, &[]);
    status["id"] = json!(crate::harness::interaction_id().to_string());
    let body = serde_json::to_vec(&status).unwrap();
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let signature = signing.sign(&[timestamp.as_bytes(), &body].concat());
    let response: Value = reqwest::Client::new()
        .post(server.url("/interactions"))
        .header("X-Signature-Ed25519", hex::encode(signature.to_bytes()))
        .header("X-Signature-Timestamp", timestamp)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(embeds_text(&response["data"]).contains("Acme"), "{response}");

    // The server counts them as it counts Discord's.
    let page = reqwest::get(server.url("/metrics")).await.unwrap().text().await.unwrap();
    for counted in [
        r#"orglink_commands_total{command="account_add",outcome="ok"} 1"#,
        r#"orglink_commands_total{command="account_add",outcome="user_error"} 1"#,
        r#"orglink_commands_total{command="account_show",outcome="user_error"} 1"#,
    ] {
        assert!(page.contains(counted), "{counted}: {page}");
    }

    // Sweep runs the jobs in the server.
    let run = o.run_with(&env, &["sweep", "--job", "lapse_claims"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("lapse_claims"), "{}", run.stdout);

    // Doctor runs here, and says who holds the store.
    let run = o.run_with(&env, &["doctor"]);
    assert!(run.stdout.contains("held by the running orglink serve"), "{run:?}");

    server.stop();
    // The same refusals, locally, read the same.
    let local_es = o.run_with(&env, &["--lang", "es", "account", "show", "999999999999"]);
    assert_eq!(
        (local_es.code, &local_es.stdout, &local_es.stderr),
        (2, &through_server_es.stdout, &through_server_es.stderr)
    );
    let local = o.run_with(
        &env,
        &["account", "add", "123456789012", "--tenant", GUILD_A, "--customer", "Acme", "--support", "business"],
    );
    assert_eq!((local.code, &local.stdout, &local.stderr), (2, &through_server.stdout, &through_server.stderr));
    // And what the server recorded is there.
    assert!(o.account("123456789012").is_some());
}

#[tokio::test]
async fn serve_without_discord_runs_the_jobs_the_socket_and_health() {
    let o = Orglink::new();
    let server = Server::start(&o, &[]).await;
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["transports"], json!({ "http": { "state": "off" }, "gateway": { "state": "off" } }));
    assert_eq!(body["interactions"], "taken", "none expected: nothing to judge");
    assert_eq!(reqwest::get(server.url("/metrics")).await.unwrap().status(), 200);

    let run = o.run_with(OFFLINE, &["tenant", "list"]);
    assert_eq!(run.code, 0, "{run:?}");

    let log = server.stop();
    assert_eq!(log.matches("no Discord configured").count(), 1, "said once: {log}");
    assert!(log.contains("orglink.sock"), "{log}");
}

/// An import through the server reads the file where the command line
/// runs (a path relative to it), not where the server runs, and the
/// server never needs to see the file.
#[tokio::test]
async fn an_import_through_the_server_sends_the_file_it_names() {
    let o = Orglink::new();
    let server = Server::start(&o, &[]).await;
    std::fs::write(
        o.path("accounts.csv"),
        "account_id,customer,support\n111111111111,Acme,basic\n222222222222,Globex,business\n",
    )
    .unwrap();
    let env = as_user(OFFLINE);
    let run = o.run_with(&env, &["account", "import", "accounts.csv", "--tenant", GUILD_A, "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let imported: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(imported["accounts"].as_array().map(Vec::len), Some(2), "{imported}");
    let listed: serde_json::Value =
        serde_json::from_str(&o.run_with(&env, &["account", "list", "--json"]).stdout).unwrap();
    assert_eq!(listed["accounts"].as_array().map(Vec::len), Some(2), "{listed}");
    // A file that is not there is named, from the client's side.
    let run = o.run_with(&env, &["account", "import", "missing.csv", "--tenant", GUILD_A]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("missing.csv"), "{}", run.stderr);
    server.stop();
}

// A local AWS: one `fakecloud` per test binary on a free port, accounts
// made with its admin endpoint, SDK configurations pointed at it.
//
// No inner attributes or inner doc comments here: the benches include this
// file by path as well as the `it` harness.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use serde_json::{Value, json};

/// fakecloud's own default account: the platform's, in tests.
pub const PLATFORM: &str = "123456789012";

pub struct Emulator {
    pub endpoint: String,
    /// Holding the wrapper's stdin open keeps fakecloud alive; when the test
    /// process ends, the pipe closes and the wrapper stops fakecloud.
    _guard: Mutex<Child>,
}

/// Where the emulator binary is: `FAKECLOUD_BIN`, then PATH, then cargo's bin.
fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("FAKECLOUD_BIN") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("fakecloud"))
        .find(|p| p.is_file());
    let cargo_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/fakecloud"));
    on_path.or(cargo_bin.filter(|p| p.is_file())).unwrap_or_else(|| {
        panic!(
            "fakecloud is not installed: run the tests with scripts/test.sh, which installs it \
             (cargo install fakecloud --version 0.51.0 --locked), or set FAKECLOUD_BIN"
        )
    })
}

pub fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let script = r#""$0" --addr "$1" --log-level warn & pid=$!; read _; kill $pid; wait $pid"#;
        let mut child = Command::new("sh")
            .args(["-c", script])
            .arg(binary())
            .arg(&addr)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("fakecloud starts");
        // fakecloud says nothing when it is ready but by accepting
        // connections: trying to connect (every 50 ms, for at most 60 s) is
        // the only way to know.
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "fakecloud did not listen on {addr} within 60 s");
            assert!(child.try_wait().unwrap().is_none(), "fakecloud exited at start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.stdin.as_mut().unwrap().flush();
        Emulator { endpoint: format!("http://{addr}"), _guard: Mutex::new(child) }
    })
}

/// The distributor's organization, run by the platform's account: created
/// once per emulator, shared by every test that invites.
pub async fn distributor_keys() -> &'static Keys {
    static KEYS: tokio::sync::OnceCell<Keys> = tokio::sync::OnceCell::const_new();
    KEYS.get_or_init(|| async {
        let e = emulator();
        let keys = e.admin(PLATFORM, "orglink-distributor").await;
        aws_sdk_organizations::Client::new(&e.sdk_config(&keys)).create_organization().send().await.unwrap();
        keys
    })
    .await
}

/// Access keys of an administrator of one account.
#[derive(Debug, Clone)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Emulator {
    /// An administrator user in `account` (created if needed).
    pub async fn admin(&self, account: &str, user: &str) -> Keys {
        let response: Value = reqwest::Client::new()
            .post(format!("{}/_fakecloud/iam/create-admin", self.endpoint))
            .json(&json!({ "accountId": account, "userName": user }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Keys {
            access_key_id: response["accessKeyId"].as_str().unwrap().to_owned(),
            secret_access_key: response["secretAccessKey"].as_str().unwrap().to_owned(),
        }
    }

    pub fn sdk_config(&self, keys: &Keys) -> SdkConfig {
        let credentials = Credentials::new(&keys.access_key_id, &keys.secret_access_key, None, None, "test");
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
            .build()
    }
}

/// The customer's side: creates roles as the instructions say (or not).
pub struct Customer {
    pub iam: aws_sdk_iam::Client,
    pub organizations: aws_sdk_organizations::Client,
}

impl Customer {
    pub async fn new(account: &str) -> Self {
        let e = emulator();
        let keys = e.admin(account, "owner").await;
        let config = e.sdk_config(&keys);
        Self { iam: aws_sdk_iam::Client::new(&config), organizations: aws_sdk_organizations::Client::new(&config) }
    }

    /// Creates role `name` trusting `trusted` with `condition` (the
    /// `Condition` block, or none), and attaches `policies` (AWS managed).
    pub async fn create_role(&self, name: &str, trusted: &str, condition: Option<Value>, policies: &[&str]) -> String {
        let mut statement = json!({
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:aws:iam::{trusted}:root") },
            "Action": "sts:AssumeRole",
        });
        if let Some(condition) = condition {
            statement["Condition"] = condition;
        }
        let policy = json!({ "Version": "2012-10-17", "Statement": [statement] });
        let role = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(policy.to_string())
            .send()
            .await
            .unwrap();
        for p in policies {
            self.iam
                .attach_role_policy()
                .role_name(name)
                .policy_arn(format!("arn:aws:iam::aws:policy/{p}"))
                .send()
                .await
                .unwrap();
        }
        role.role().unwrap().arn().to_owned()
    }
}

impl Customer {
    /// The role the instructions describe: `OrgLinkReadOnly`, trusting the
    /// platform with the external ID, ReadOnlyAccess attached.
    pub async fn create_instructed_role(&self, external_id: &str) -> String {
        self.create_role("OrgLinkReadOnly", PLATFORM, Some(external_id_condition(external_id)), &["ReadOnlyAccess"])
            .await
    }
}

pub fn external_id_condition(external_id: &str) -> Value {
    json!({ "StringEquals": { "sts:ExternalId": external_id } })
}

/// Counts the `sts:AssumeRole` requests orglink's STS client puts on the
/// wire (each attempt), read from the request bodies as they leave.
#[derive(Debug, Clone, Default)]
pub struct AssumeRoleCounter(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl AssumeRoleCounter {
    /// The requests counted since the last call.
    pub fn take(&self) -> u32 {
        self.0.swap(0, std::sync::atomic::Ordering::SeqCst)
    }
}

impl aws_sdk_sts::config::Intercept for AssumeRoleCounter {
    fn name(&self) -> &'static str {
        "AssumeRoleCounter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_sts::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_sts::config::RuntimeComponents,
        _: &mut aws_sdk_sts::config::ConfigBag,
    ) -> Result<(), aws_sdk_sts::error::BoxError> {
        let body = context.request().body().bytes().unwrap_or_default();
        if body.windows(18).any(|w| w == b"Action=AssumeRole&") {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }
}

/// orglink's AWS side as `keys`, with its AssumeRole requests counted.
pub fn counted_aws(keys: &Keys, retry: orglink::aws::RetryPolicy) -> (orglink::aws::Aws, AssumeRoleCounter) {
    let config = emulator().sdk_config(keys);
    let counter = AssumeRoleCounter::default();
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&config).interceptor(counter.clone()).build(),
    );
    let session: orglink::aws::SessionFactory = std::sync::Arc::new(|c: &SdkConfig| orglink::aws::Session {
        sts: aws_sdk_sts::Client::new(c),
        iam: aws_sdk_iam::Client::new(c),
        organizations: aws_sdk_organizations::Client::new(c),
        support: orglink::aws::support_client(c),
    });
    (orglink::aws::Aws::with_clients(config, sts, session, retry), counter)
}

//! Crash safety: the real `orglink serve` process is killed with SIGKILL at
//! random moments while a scripted scenario runs against it (registrations,
//! verifications, invitations, handshakes accepted, a ticket), and
//! restarted each time. Afterwards every expected notification reached its
//! channel exactly once (Discord drops a message whose enforced nonce it
//! has seen, and so does its stand-in here), the ticket exists once in
//! Freshdesk, and every account is where the scenario left it.
//!
//! `ORGLINK_CRASH_ACCOUNTS=N` and `ORGLINK_CRASH_KILLS=N` for a longer run
//! (defaults: 24 accounts, at least 40 kills).

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use orglink::domain::LinkState;
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use crate::harness::discord::*;
use crate::harness::{Customer, PLATFORM, Recorder, alone, distributor_keys, emulator};

const TENANT_CHANNEL: &str = "900000000000000777";

/// Freshdesk with memory: tickets created are found again by tag.
#[derive(Clone, Default)]
struct Freshdesk(Arc<Mutex<Vec<Value>>>);

impl Respond for Freshdesk {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut tickets = self.0.lock().unwrap();
        let path = request.url.path();
        match (request.method.as_str(), path) {
            ("POST", "/api/v2/tickets") => {
                let body: Value = serde_json::from_slice(&request.body).unwrap();
                let ticket = json!({
                    "id": 1000 + tickets.len(),
                    "subject": body["subject"],
                    "status": 2,
                    "tags": body["tags"],
                });
                tickets.push(ticket.clone());
                ResponseTemplate::new(201).set_body_json(ticket)
            }
            ("GET", "/api/v2/search/tickets") => {
                let query = request.url.query_pairs().find(|(k, _)| k == "query").map(|(_, v)| v.into_owned());
                let tag = query.as_deref().and_then(|q| q.split("tag:'").nth(1)?.split('\'').next()).unwrap_or("");
                let results: Vec<&Value> =
                    tickets.iter().filter(|t| t["tags"].as_array().unwrap().iter().any(|x| x == tag)).collect();
                ResponseTemplate::new(200).set_body_json(json!({ "results": results, "total": results.len() }))
            }
            ("GET", "/api/v2/tickets") => ResponseTemplate::new(200).set_body_json(Value::Array(tickets.clone())),
            ("POST", p) if p.ends_with("/notes") => ResponseTemplate::new(201).set_body_json(json!({ "id": 1 })),
            _ => ResponseTemplate::new(404),
        }
    }
}

/// The `orglink serve` process, started again after each kill.
struct Server {
    child: Option<Child>,
    env: Vec<(String, String)>,
    port: u16,
    log: std::path::PathBuf,
}

impl Server {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_orglink"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("orglink serve starts");
        self.child = Some(child);
    }

    /// Waits until the HTTP endpoint answers. Another process says nothing
    /// when it is ready but by answering: asking is the only way, every
    /// 20 ms for at most 30 s.
    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("http://127.0.0.1:{}/healthz", self.port)).await.is_err() {
            assert!(Instant::now() < deadline, "orglink serve did not come up; see {}", self.log.display());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    /// A failing test leaves no server behind.
    fn drop(&mut self) {
        self.kill();
    }
}

struct Client {
    http: reqwest::Client,
    signing: SigningKey,
    port: u16,
    discord: Arc<Recorder>,
    tokens: AtomicU32,
}

impl Client {
    /// Posts `interaction` signed until the server answers 200: the process
    /// is down at random moments, and trying again (every 50 ms, for at most
    /// 120 s) is the only way to learn that it is back. Each try is a new
    /// interaction, as when the user tries again: with an ID of its own (a
    /// try the server received but did not answer would be refused as a
    /// replay).
    async fn post(&self, interaction: &Value) -> Value {
        let mut interaction = interaction.clone();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(Instant::now() < deadline, "no answer to {interaction}");
            interaction["id"] = json!(crate::harness::interaction_id().to_string());
            let body = serde_json::to_vec(&interaction).unwrap();
            let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
            let signature = self.signing.sign(&[timestamp.as_bytes(), &body].concat());
            let sent = self
                .http
                .post(format!("http://127.0.0.1:{}/interactions", self.port))
                .header("X-Signature-Ed25519", hex::encode(signature.to_bytes()))
                .header("X-Signature-Timestamp", timestamp)
                .header("Content-Type", "application/json")
                .body(body)
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            // Refused connections, cut answers and 5xx while the process
            // dies or starts: try again.
            if let Ok(response) = sent
                && response.status() == 200
                && let Ok(value) = response.json::<Value>().await
            {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a command; a deferred one is run again until its follow-up
    /// arrives (the process may die before sending it). Returns the text.
    async fn run(&self, mut interaction: Value) -> String {
        loop {
            let token = format!("crash-token-{}", self.tokens.fetch_add(1, Ordering::SeqCst));
            interaction["token"] = json!(token);
            let response = self.post(&interaction).await;
            if response["type"] != 5 {
                return text(&response["data"]);
            }
            let path = format!("/api/v10/webhooks/{APPLICATION_ID}/{token}/messages/@original");
            let edit = self
                .discord
                .wait_until_within(Duration::from_secs(5), |requests| {
                    requests.iter().rev().find(|r| r.method.as_str() == "PATCH" && r.url.path() == path).cloned()
                })
                .await;
            if let Some(edit) = edit {
                return text(&serde_json::from_slice(&edit.body).unwrap());
            }
        }
    }
}

fn text(data: &Value) -> String {
    embeds_text(data)
}

/// The channel messages Discord shows of the `requests` it received: one per
/// enforced nonce.
fn shown(requests: &[Request]) -> BTreeMap<String, (String, String)> {
    let mut by_nonce = BTreeMap::new();
    for r in requests {
        let Some(channel) = r.url.path().strip_prefix("/api/v10/channels/").and_then(|p| p.strip_suffix("/messages"))
        else {
            continue;
        };
        if r.method.as_str() != "POST" {
            continue;
        }
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["enforce_nonce"], true);
        let nonce = body["nonce"].as_str().unwrap().to_owned();
        by_nonce.entry(nonce).or_insert_with(|| (channel.to_owned(), text(&body)));
    }
    by_nonce
}

/// Everything `orglink serve` talks to, and how to start it.
struct World {
    discord: Arc<Recorder>,
    freshdesk: Freshdesk,
    _freshdesk_server: Recorder,
    signing: SigningKey,
    seed: [u8; 32],
    port: u16,
    data_dir: std::path::PathBuf,
    server: Server,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        let e = emulator();
        let keys = distributor_keys().await;

        let discord = Arc::new(Recorder::start().await);
        for (verb, pattern) in
            [("PATCH", r"^/api/v10/webhooks/.+/messages/@original$"), ("POST", r"^/api/v10/channels/\d+/messages$")]
        {
            Mock::given(method(verb))
                .and(path_regex(pattern))
                .respond_with(ResponseTemplate::new(200).set_body_json(message_json(TENANT_CHANNEL)))
                .mount(&discord.server)
                .await;
        }
        let freshdesk_server = Recorder::start().await;
        let freshdesk = Freshdesk::default();
        Mock::given(wiremock::matchers::any()).respond_with(freshdesk.clone()).mount(&freshdesk_server.server).await;

        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        let signing = SigningKey::from_bytes(&seed);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let env: Vec<(String, String)> = [
            ("ORGLINK_DATA_DIR", data_dir.to_str().unwrap()),
            ("ORGLINK_HTTP_LISTEN", &format!("127.0.0.1:{port}")),
            ("ORGLINK_LOG", "info"),
            ("ORGLINK_DISCORD_TOKEN", TOKEN),
            ("ORGLINK_DISCORD_APPLICATION_ID", APPLICATION_ID),
            ("ORGLINK_DISCORD_PUBLIC_KEY", &hex::encode(signing.verifying_key().to_bytes())),
            ("ORGLINK_DISCORD_API_BASE_URL", &discord.uri()),
            // Interactions over HTTP; the token sends notifications.
            ("ORGLINK_DISCORD_TRANSPORTS", "http"),
            ("ORGLINK_DISCORD_OPS_GUILD_ID", OPS_GUILD),
            ("ORGLINK_DISCORD_OPS_ROLE_ID", OPS_ROLE),
            ("ORGLINK_DISCORD_OPS_CHANNEL_ID", OPS_CHANNEL),
            ("ORGLINK_PLATFORM_CROSS_ACCOUNT_ID", PLATFORM),
            ("ORGLINK_AWS_VERIFY_RETRIES", "1"),
            ("ORGLINK_AWS_VERIFY_RETRY_DELAY_MS", "20"),
            ("ORGLINK_PROBE_ENABLED", "false"),
            ("ORGLINK_SCHEDULE_POLL_HANDSHAKES", "* * * * * *"),
            ("ORGLINK_SCHEDULE_OPEN_TICKETS", "* * * * * *"),
            ("ORGLINK_FRESHDESK_BASE_URL", &freshdesk_server.uri()),
            ("ORGLINK_FRESHDESK_API_KEY", "fd-crash-key"),
            ("ORGLINK_FRESHDESK_REQUESTER_EMAIL", "ops@distributor.example"),
            ("AWS_ENDPOINT_URL", &e.endpoint),
            ("AWS_ACCESS_KEY_ID", &keys.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", &keys.secret_access_key),
            ("AWS_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        // Operations approve the tests' tenants before orglink serves them.
        for tenant in crate::harness::TENANTS {
            let approved = Command::new(env!("CARGO_BIN_EXE_orglink"))
                .args(["tenant", "approve", tenant])
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .output()
                .unwrap();
            assert!(approved.status.success(), "{approved:?}");
        }
        let server = Server { child: None, env, port, log: dir.path().join("serve.log") };
        Self {
            discord,
            freshdesk,
            _freshdesk_server: freshdesk_server,
            signing,
            seed,
            port,
            data_dir,
            server,
            _dir: dir,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_what_it_started_and_exits_0() {
    let _alone = alone().await;
    let World { discord, signing, port, data_dir, mut server, _dir, .. } = World::new().await;
    server.spawn();
    server.ready().await;
    let client = Client { http: reqwest::Client::new(), signing, port, discord, tokens: AtomicU32::new(0) };
    let link = command(
        "link-account",
        &[("account_id", "777700000001"), ("customer", "Term"), ("support_tier", "basic")],
        GUILD_A,
        "en-US",
        ADMIN,
        &[],
    );
    client.run(link).await;
    let mut child = server.child.take().unwrap();
    let started = Instant::now();
    let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let pid = child.id().to_string();
    let exited = tokio::task::spawn_blocking(move || child.wait());
    let status = match tokio::time::timeout(Duration::from_secs(25), exited).await {
        Ok(waited) => waited.unwrap().unwrap(),
        Err(_) => {
            // Leave neither the process nor the thread waiting for it behind.
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("still running 25 s after SIGTERM");
        }
    };
    assert_eq!(status.code(), Some(0), "see {}", server.log.display());
    // Stopped: it no longer answers; what it stored is on disk.
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_err());
    let store = orglink::store::Store::open(&data_dir).unwrap();
    assert!(store.account("777700000001".parse().unwrap()).unwrap().is_some());
    println!("SIGTERM to exit: {} ms", started.elapsed().as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_nothing_and_repeats_nothing() {
    let _alone = alone().await;
    let setting = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let accounts = setting("ORGLINK_CRASH_ACCOUNTS", 24);
    let min_kills = setting("ORGLINK_CRASH_KILLS", 40) as u32;
    let World { discord, freshdesk, _freshdesk_server: _kept, signing, seed, port, data_dir, mut server, _dir } =
        World::new().await;
    server.spawn();
    server.ready().await;

    // The killer: SIGKILL a random 50–650 ms after each start (ready or
    // not: opening the store and starting up are crash points too), start
    // again.
    let stop = Arc::new(AtomicBool::new(false));
    let (killed, mut kills) = tokio::sync::watch::channel(0u32);
    let killer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut rng = u64::from_le_bytes(seed[..8].try_into().unwrap()) | 1;
            while !stop.load(Ordering::SeqCst) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                tokio::time::sleep(Duration::from_millis(50 + rng % 600)).await;
                server.kill();
                killed.send_modify(|n| *n += 1);
                server.spawn();
            }
            server.ready().await;
            server
        })
    };

    let client =
        Client { http: reqwest::Client::new(), signing, port, discord: discord.clone(), tokens: AtomicU32::new(0) };
    let mut config = command("orglink-config", &[], GUILD_A, "en-US", ADMIN, &[]);
    config["data"]["options"] = json!([{ "name": "channel", "type": 7, "value": TENANT_CHANNEL }]);
    client.run(config).await;
    let ids: Vec<String> = (1..=accounts).map(|n| format!("7778{n:08}")).collect();
    let ticketed = ids.last().unwrap().clone();
    for id in &ids {
        let link = command(
            "link-account",
            &[("account_id", id), ("customer", "Crash Test"), ("support_tier", "developer")],
            GUILD_A,
            "en-US",
            ADMIN,
            &[],
        );
        client.run(link).await;
        let shown = client.run(command("instructions", &[("account_id", id)], GUILD_A, "en-US", ADMIN, &[])).await;
        let external_id = shown.split("enter exactly `").nth(1).and_then(|s| s.split('`').next()).unwrap().to_owned();
        let customer = Customer::new(id).await;
        let arn = customer.create_instructed_role(&external_id).await;
        let verify = command("verify-role", &[("account_id", id), ("role_arn", &arn)], GUILD_A, "en-US", ADMIN, &[]);
        let verified = client.run(verify).await;
        assert!(verified.contains("Verified"), "{verified}");
        if *id == ticketed {
            let ticket = command(
                "ticket",
                &[("account_id", id), ("reason", "help leaving an organization")],
                GUILD_A,
                "en-US",
                ADMIN,
                &[],
            );
            client.run(ticket).await;
            continue;
        }
        let invite = command("invite", &[("account_id", id)], OPS_GUILD, "en-US", ADMIN, &[OPS_ROLE]);
        let invited = client.run(invite).await;
        let handshakes = customer.organizations.list_handshakes_for_account().send().await.unwrap();
        let open: Vec<_> =
            handshakes.handshakes().iter().filter(|h| h.state().is_some_and(|s| s.as_str() == "OPEN")).collect();
        assert_eq!(open.len(), 1, "one invitation for {id}, however often /invite ran: {invited}");
        customer.organizations.accept_handshake().handshake_id(open[0].id().unwrap()).send().await.unwrap();
    }

    // What each channel must show, once each: per linked account, on the
    // tenant's channel: registered, role verified, invitation sent, linked,
    // support plan missing; on the operations channel: linked. The ticketed
    // account: registered, verified, ticket opened (and ticket opened to ops).
    let linked = ids.len() - 1;
    let expected_tenant = linked * 5 + 3;
    let expected_ops = linked + 1;
    let counts = |requests: &[Request]| {
        let messages = shown(requests);
        let tenant = messages.values().filter(|(c, _)| c == TENANT_CHANNEL).count();
        let ops = messages.values().filter(|(c, _)| c == OPS_CHANNEL).count();
        (tenant, ops)
    };
    let all_shown = discord
        .wait_until_within(Duration::from_secs(120), |requests| {
            let (tenant, ops) = counts(requests);
            (tenant >= expected_tenant && ops >= expected_ops).then_some(())
        })
        .await;
    if all_shown.is_none() {
        let (tenant, ops) = counts(&discord.requests().await);
        panic!("after 120 s: tenant {tenant}/{expected_tenant}, ops {ops}/{expected_ops}");
    }
    // Kills go on, at least `min_kills` in all, while the jobs and the
    // notifier run with nothing new to do: restarts must not redo anything.
    kills.wait_for(|n| *n >= min_kills).await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let mut server = killer.await.unwrap();
    // A last moment for anything in flight, then the final state. (Not a
    // poll: nothing is awaited but quiet, to see that nothing more comes.)
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    let kills = *kills.borrow();

    let messages = shown(&discord.requests().await);
    let texts: Vec<&(String, String)> = messages.values().collect();
    let distinct: BTreeSet<&(String, String)> = texts.iter().copied().collect();
    assert_eq!(distinct.len(), texts.len(), "the same message under two nonces: {texts:#?}");
    assert_eq!(texts.iter().filter(|(c, _)| c == TENANT_CHANNEL).count(), expected_tenant, "{texts:#?}");
    assert_eq!(texts.iter().filter(|(c, _)| c == OPS_CHANNEL).count(), expected_ops, "{texts:#?}");
    let tickets = freshdesk.0.lock().unwrap().clone();
    assert_eq!(tickets.len(), 1, "one ticket: {tickets:#?}");

    let store = orglink::store::Store::open(&data_dir).unwrap();
    for id in &ids {
        let account = store.account(id.parse().unwrap()).unwrap().unwrap();
        if *id == ticketed {
            assert_eq!(account.state, LinkState::RoleVerified, "{id}");
            assert_eq!(account.tickets.len(), 1, "{id}");
        } else {
            assert_eq!(account.state, LinkState::Linked, "{id}");
        }
    }
    assert!(store.outbox().unwrap().is_empty(), "nothing left undelivered");
    assert!(store.ticket_requests().unwrap().is_empty(), "no ticket left waiting");
    assert!(store.dead_letters().unwrap().is_empty(), "no dead letters");
    let kept = store.export().unwrap().into_iter().filter(|(tree, _, _)| tree.as_slice() == b"delivered").count();
    assert_eq!(kept, 0, "no delivery records outlive their messages");
    println!("crash loop: {kills} kills survived, {} messages shown, {} ticket", texts.len(), tickets.len());
}

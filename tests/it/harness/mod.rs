//! The one test harness. `Harness::new()` says what a test needs (a store,
//! orglink's clock, the local AWS emulator, recorders standing in for
//! Discord and Freshdesk, the running server) and starts it; the test then
//! speaks in domain terms (register, role for, verify, invite, accept,
//! expire), asserts on the requests the recorders received and on the final
//! state, and ends with `finish()`, which fails the test if a background
//! task crashed or the outbox holds something the test did not account for.

pub mod aws;
mod cli;
pub mod discord;
pub mod gateway;
pub mod recorder;
mod samples;
pub mod shell;
pub mod watch;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use orglink::app::{Actor, App, AppError, Command, JobReport, Reply, Settings, Tone, VerificationView};
use orglink::aws::organizations::Distributor;
use orglink::aws::{Aws, RetryPolicy};
use orglink::clock::{Clock, ManualClock, SystemClock};
use orglink::config::{FreshdeskConfig, Secret};
use orglink::discord::notify::Notifier;
use orglink::domain::{Account, AccountId, Event, Lang, LinkState, SupportTier, TenantDecision};
use orglink::scheduler::Job;
use orglink::server::{self, Running};
use orglink::store::{OutboxItem, Store};
use orglink::templates::Templates;
use serde_json::Value;
use time::OffsetDateTime;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, ResponseTemplate};

pub use aws::{AssumeRoleCounter, Customer, Keys, PLATFORM, distributor_keys, emulator, external_id_condition};
pub use cli::{Orglink, Run};
pub use recorder::Recorder;
pub use samples::*;
pub use watch::Logs;

type FreshdeskChange = Box<dyn FnOnce(&mut FreshdeskConfig)>;

/// Held shared by every harness (one at a time per test: a second one
/// asked for while a test waits to be alone would wait behind it), and
/// exclusively by `alone()`.
static MACHINE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// For tests that need the machine (and the emulator) to themselves: the
/// crash tests kill and restart `orglink serve` on a timer, which a busy
/// neighbour (a thousand accounts probed) would turn into a race. Waits for
/// the running harnesses to finish and keeps new ones waiting.
pub async fn alone() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    MACHINE.write().await
}

/// What a test asks the harness for.
#[must_use]
pub struct Builder {
    at: Option<OffsetDateTime>,
    settings: Settings,
    aws: Option<RetryPolicy>,
    counted: bool,
    distributor: bool,
    on_disk: bool,
    discord: bool,
    cdn: bool,
    freshdesk: Option<FreshdeskChange>,
    logs: Option<Logs>,
    organizations: Option<aws_sdk_organizations::Client>,
    scripted: Option<Aws>,
}

impl Builder {
    /// orglink's clock is a `ManualClock` at `at`, moved by the test (the
    /// system clock otherwise).
    pub fn at(mut self, at: OffsetDateTime) -> Self {
        self.at = Some(at);
        self
    }

    pub fn settings(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(&mut self.settings);
        self
    }

    /// orglink's AWS side against the emulator, as the platform's account
    /// (the distributor, whose organization is made once per emulator);
    /// customer roles trust it.
    pub fn aws(mut self, retry: RetryPolicy) -> Self {
        self.aws = Some(retry);
        self.settings.cross_account_id = PLATFORM.parse().unwrap();
        self
    }

    /// And the AssumeRole requests it puts on the wire counted.
    pub fn counted(mut self) -> Self {
        self.counted = true;
        self
    }

    /// And it sends invitations: the distributor's Organizations client.
    pub fn distributor(mut self) -> Self {
        self.distributor = true;
        self
    }

    /// The distributor's Organizations calls go to `client` (one scripted
    /// with aws-smithy-mocks) rather than to the emulator.
    pub fn organizations(mut self, client: aws_sdk_organizations::Client) -> Self {
        self.organizations = Some(client);
        self
    }

    /// Customer roles are checked by `aws`, built from clients scripted
    /// with aws-smithy-mocks, rather than against the emulator.
    pub fn scripted_aws(mut self, aws: Aws) -> Self {
        self.scripted = Some(aws);
        self
    }

    /// The store in a directory, to be reopened (`restart`), rather than
    /// sled's temporary one.
    pub fn on_disk(mut self) -> Self {
        self.on_disk = true;
        self
    }

    /// A recorder standing in for Discord's REST API (for the notifier).
    pub fn discord(mut self) -> Self {
        self.discord = true;
        self
    }

    /// A recorder standing in for Discord's file server (`serve` only):
    /// orglink's `discord.cdn_base_url` points at it, and the test mounts
    /// the files it serves.
    pub fn cdn(mut self) -> Self {
        self.cdn = true;
        self
    }

    /// A recorder standing in for Freshdesk, and orglink's ticket desk
    /// pointed at it with the configuration `change` makes of the default.
    pub fn freshdesk(mut self, change: impl FnOnce(&mut FreshdeskConfig) + 'static) -> Self {
        self.freshdesk = Some(Box::new(change));
        self
    }

    /// Logs captured by `logs` rather than a capture of errors only.
    pub fn logs(mut self, logs: Logs) -> Self {
        self.logs = Some(logs);
        self
    }

    async fn parts(&mut self) -> Parts {
        let machine = MACHINE.read().await;
        let watch = watch::Watch::new(self.logs.take().unwrap_or_else(|| Logs::new("off")));
        let (clock, manual): (Arc<dyn Clock>, _) = match self.at {
            Some(at) => {
                let manual = Arc::new(ManualClock::new(at));
                (manual.clone(), Some(manual))
            }
            None => (Arc::new(SystemClock), None),
        };
        let dir = tempfile::tempdir().unwrap();
        let store =
            if self.on_disk { Store::open(&dir.path().join("data")).unwrap() } else { Store::temporary().unwrap() };
        approve_test_tenants(&store, &self.settings, clock.clone());
        let aws = match self.aws {
            Some(retry) => Some(AwsSide::new(retry, self.counted, self.distributor).await),
            None => None,
        };
        let freshdesk = match self.freshdesk.take() {
            Some(change) => {
                let recorder = Recorder::start().await;
                let mut config = freshdesk_config(&recorder.uri());
                change(&mut config);
                Some((recorder, config))
            }
            None => None,
        };
        Parts { machine, watch, clock, manual, dir, store, aws, freshdesk }
    }

    /// orglink's app over the store, with what was asked for.
    pub async fn start(mut self) -> Harness {
        let Parts { machine, watch, clock, manual, dir, store, aws, freshdesk } = self.parts().await;
        let discord = if self.discord { Some(Recorder::start().await) } else { None };
        let (freshdesk, desk) = freshdesk.map_or((None, None), |(r, c)| (Some(r), Some(c)));
        let mut h = Harness {
            store: Some(store),
            app: None,
            clock,
            manual,
            settings: self.settings,
            aws,
            discord,
            cdn: None,
            freshdesk,
            desk,
            organizations: self.organizations.take(),
            scripted: self.scripted.take(),
            server: None,
            dir,
            on_disk: self.on_disk,
            watch,
            accounted: RefCell::new(BTreeSet::new()),
            expected_errors: Vec::new(),
            finished: false,
            _machine: machine,
        };
        h.app = Some(h.build_app());
        h
    }

    /// orglink as `orglink serve` runs it: the HTTP endpoint (interactions
    /// signed with a fresh Ed25519 key), the notifier, the scheduler and the
    /// gateway, against a Discord recorder that accepts follow-ups and
    /// channel messages.
    pub async fn serve(mut self) -> Harness {
        let Parts { machine, watch, clock, manual, dir, store, aws, freshdesk } = self.parts().await;
        let recorder = Recorder::start().await;
        for (verb, pattern) in [
            ("PATCH", r"^/api/v10/webhooks/\d+/[^/]+/messages/@original$"),
            ("POST", r"^/api/v10/channels/\d+/messages$"),
        ] {
            Mock::given(method(verb))
                .and(path_regex(pattern))
                .respond_with(ResponseTemplate::new(200).set_body_json(discord::message_json(discord::GUILD_A)))
                .mount(&recorder.server)
                .await;
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        let signing = SigningKey::from_bytes(&seed);
        let mut config = discord::config(&recorder.uri(), &hex::encode(signing.verifying_key().to_bytes()));
        // The tests speak to the HTTP endpoint; the token sends notifications
        // (tests/it/gateway.rs runs the gateway against a fake one).
        config.discord.transports = Some(vec![orglink::config::Transport::Http]);
        config.settings = self.settings.clone();
        let cdn = if self.cdn { Some(Recorder::start().await) } else { None };
        if let Some(cdn) = &cdn {
            config.discord.cdn_base_url = cdn.uri();
        }
        let (freshdesk, desk) = freshdesk.map_or((None, None), |(r, c)| (Some(r), Some(c)));
        config.freshdesk = desk.clone();
        let pair = aws.as_ref().map(|a| (a.aws(), Distributor::new(&a.config)));
        let running =
            server::start(config.clone(), Templates::embedded(), store.clone(), clock.clone(), pair).await.unwrap();
        let app = running.bot.app().clone();
        Harness {
            store: Some(store),
            app: Some(app),
            clock,
            manual,
            settings: config.settings.clone(),
            aws,
            discord: Some(recorder),
            cdn,
            freshdesk,
            desk,
            organizations: None,
            scripted: None,
            server: Some(Server { running, signing, http: reqwest::Client::new() }),
            dir,
            on_disk: self.on_disk,
            watch,
            accounted: RefCell::new(BTreeSet::new()),
            expected_errors: Vec::new(),
            finished: false,
            _machine: machine,
        }
    }
}

struct Parts {
    machine: tokio::sync::RwLockReadGuard<'static, ()>,
    watch: watch::Watch,
    clock: Arc<dyn Clock>,
    manual: Option<Arc<ManualClock>>,
    dir: tempfile::TempDir,
    store: Store,
    aws: Option<AwsSide>,
    freshdesk: Option<(Recorder, FreshdeskConfig)>,
}

/// orglink's own AWS side.
struct AwsSide {
    keys: Keys,
    config: aws_config::SdkConfig,
    aws: Aws,
    counter: Option<AssumeRoleCounter>,
    distributor: bool,
}

impl AwsSide {
    async fn new(retry: RetryPolicy, counted: bool, distributor: bool) -> Self {
        let keys = distributor_keys().await.clone();
        let config = emulator().sdk_config(&keys);
        let (aws, counter) = if counted {
            let (aws, counter) = aws::counted_aws(&keys, retry);
            (aws, Some(counter))
        } else {
            (Aws::new(config.clone(), retry), None)
        };
        Self { keys, config, aws, counter, distributor }
    }

    fn aws(&self) -> Aws {
        self.aws.clone()
    }
}

/// A new interaction ID (a snowflake never 0, unique in this test process).
pub fn interaction_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_400_000_000_000_000_000);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

struct Server {
    running: Running,
    signing: SigningKey,
    http: reqwest::Client,
}

/// Freshdesk as the harness configures it unless a test says otherwise.
pub fn freshdesk_config(base_url: &str) -> FreshdeskConfig {
    FreshdeskConfig {
        base_url: base_url.to_owned(),
        api_key: Secret::new("fd-key"),
        requester_email: "ops@distributor.example".parse().unwrap(),
        group_id: None,
        priority: 2,
        tags: vec![],
        custom_fields: serde_json::Map::new(),
        language: Lang::En,
    }
}

/// ERROR events that report an outcome, not a failure: the notifier moves
/// the item to the dead letters and tells operations, which the tests
/// assert. Every other ERROR event of orglink's fails the test.
const OUTCOMES: [&str; 1] = ["notification undeliverable; reported to operations"];

/// How long orglink waits for Freshdesk in tests.
pub const FRESHDESK_TIMEOUT: Duration = Duration::from_millis(300);

pub fn operator() -> Actor {
    Actor::operator("ops")
}

/// A member of Discord server `guild` with Manage Server there (its
/// reseller's administrator).
pub fn server_admin(guild: &str) -> Actor {
    Actor {
        id: "discord:700000000000000001".into(),
        scope: orglink::app::Scope::Tenant(guild.parse().unwrap()),
        rights: orglink::app::Rights { manage_server: true, ..Default::default() },
        claim_of: None,
    }
}

/// The tenants the tests run as: the two Discord servers and the tenant the
/// CLI registers accounts for. Every store a harness starts has them
/// approved by operations, as an operator would, so the default policy
/// (every other server waits for approval) is the one the tests run under.
/// The operations server is not among them: it is never held.
pub const TENANTS: [&str; 3] = [discord::GUILD_A, discord::GUILD_B, "acme"];

fn approve_test_tenants(store: &Store, settings: &Settings, clock: Arc<dyn Clock>) {
    let operations = App::new(store.clone(), settings.clone(), clock);
    for tenant in TENANTS {
        let approve = Command::DecideTenant { tenant: tenant.parse().unwrap(), decision: TenantDecision::Approve };
        operations.handle(&operator(), approve).unwrap();
    }
}

pub fn id(account: &str) -> AccountId {
    account.parse().unwrap()
}

pub struct Harness {
    store: Option<Store>,
    app: Option<App>,
    clock: Arc<dyn Clock>,
    manual: Option<Arc<ManualClock>>,
    settings: Settings,
    aws: Option<AwsSide>,
    discord: Option<Recorder>,
    cdn: Option<Recorder>,
    freshdesk: Option<Recorder>,
    desk: Option<FreshdeskConfig>,
    organizations: Option<aws_sdk_organizations::Client>,
    scripted: Option<Aws>,
    server: Option<Server>,
    dir: tempfile::TempDir,
    on_disk: bool,
    watch: watch::Watch,
    /// The outbox items the test has looked at.
    accounted: RefCell<BTreeSet<u64>>,
    expected_errors: Vec<String>,
    finished: bool,
    _machine: tokio::sync::RwLockReadGuard<'static, ()>,
}

impl Harness {
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Builder {
        Builder {
            at: None,
            settings: Settings::default(),
            aws: None,
            counted: false,
            distributor: false,
            on_disk: false,
            discord: false,
            cdn: false,
            freshdesk: None,
            logs: None,
            organizations: None,
            scripted: None,
        }
    }

    fn build_app(&self) -> App {
        let mut app = App::new(self.store().clone(), self.settings.clone(), self.clock.clone());
        if let Some(aws) = &self.aws {
            app = app.with_aws(aws.aws());
            if aws.distributor {
                app = app.with_distributor(Distributor::new(&aws.config));
            }
        }
        if let Some(client) = &self.organizations {
            app = app.with_distributor(Distributor::with_client(client.clone()));
        }
        if let Some(aws) = &self.scripted {
            app = app.with_aws(aws.clone());
        }
        if let Some(config) = &self.desk {
            let desk =
                orglink::freshdesk::desk::TicketDesk::new(config.clone(), Templates::embedded(), FRESHDESK_TIMEOUT)
                    .unwrap();
            app = app.with_ticket_desk(desk);
        }
        app
    }

    pub fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    /// An error log line the test causes on purpose: `finish` lets lines
    /// containing `text` pass.
    pub fn expect_error(&mut self, text: &str) {
        self.expected_errors.push(text.to_owned());
    }

    pub fn app(&self) -> &App {
        self.app.as_ref().unwrap()
    }

    /// orglink's clock, as the test moves it.
    pub fn clock(&self) -> &ManualClock {
        self.manual.as_deref().expect("the harness was built with a manual clock (`at`)")
    }

    pub fn shared_clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub fn discord(&self) -> &Recorder {
        self.discord.as_ref().expect("the harness was built with a Discord recorder")
    }

    /// The stand-in for Discord's file server.
    pub fn cdn(&self) -> &Recorder {
        self.cdn.as_ref().expect("the harness was built with `cdn`")
    }

    pub fn freshdesk(&self) -> &Recorder {
        self.freshdesk.as_ref().expect("the harness was built with a Freshdesk recorder")
    }

    /// The AssumeRole requests counted since the last call.
    pub fn assume_role_calls(&self) -> u32 {
        self.aws.as_ref().and_then(|a| a.counter.as_ref()).expect("built with `counted`").take()
    }

    /// orglink's AWS identity.
    pub fn aws_keys(&self) -> &Keys {
        &self.aws.as_ref().expect("built with `aws`").keys
    }

    /// The distributor's own Organizations client (what an operator uses by
    /// hand).
    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::new(&self.aws.as_ref().expect("built with `aws`").config)
    }

    /// Closes the store and opens it again, with a new app over it: what
    /// orglink finds after a restart.
    pub fn restart(&mut self) {
        assert!(self.on_disk && self.server.is_none(), "restart needs `on_disk` and no server");
        self.app = None;
        if let Some(store) = self.store.take() {
            store.flush().unwrap();
        }
        self.store = Some(Store::open(&self.dir.path().join("data")).unwrap());
        self.app = Some(self.build_app());
    }

    /// Registers `account` for tenant acme as an operator; returns its
    /// external ID.
    pub fn register(&self, account: &str, tier: SupportTier) -> String {
        let new = new_account(account, "acme", tier);
        self.app().handle(&operator(), Command::AddAccount(new)).unwrap();
        self.account(account).external_id.to_string()
    }

    /// Registers `account` (Business support) as the administrator of
    /// Discord server `guild` would.
    pub fn register_in(&self, guild: &str, account: &str) {
        let new = new_account(account, guild, SupportTier::Business);
        self.app().handle(&server_admin(guild), Command::AddAccount(new)).unwrap();
    }

    /// The owner of `account` creates the role the instructions describe,
    /// with the account's external ID; returns them and the role's ARN.
    pub async fn role_for(&self, account: &str) -> (Customer, String) {
        let customer = Customer::new(account).await;
        let arn = customer.create_instructed_role(&self.account(account).external_id.to_string()).await;
        (customer, arn)
    }

    /// Verifies the role `arn` of `account` as an operator (the reply's tone
    /// says what the view says).
    pub async fn verify(&self, account: &str, arn: &str) -> Result<VerificationView, AppError> {
        let command = Command::VerifyRole { account: id(account), arn: Some(arn.parse().unwrap()), description: None };
        let reply = self.app().execute(&operator(), command).await?;
        let view: VerificationView = match &reply.messages[0] {
            orglink::app::Message::Verification(v) => (**v).clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(reply.tone == Tone::Error, !view.verified || view.report.management_account());
        Ok(view)
    }

    /// Registers `account`, has its owner create the role, verifies it.
    pub async fn verified(&self, account: &str, tier: SupportTier) -> Customer {
        self.register(account, tier);
        let (customer, arn) = self.role_for(account).await;
        let view = self.verify(account, &arn).await.unwrap();
        assert!(view.verified, "{:#?}", view.report);
        customer
    }

    /// Invites `account` into the distributor's organization as an operator.
    pub async fn invite(&self, account: &str) -> Result<Reply, AppError> {
        let command =
            Command::Invite { account: id(account), note: Some("Welcome to the distributor".parse().unwrap()) };
        self.app().execute(&operator(), command).await
    }

    /// Registers, verifies and invites `account`; returns its owner.
    pub async fn invited(&self, account: &str, tier: SupportTier) -> Customer {
        let customer = self.verified(account, tier).await;
        self.invite(account).await.unwrap();
        self.store().flush().unwrap();
        customer
    }

    /// The handshake of the invitation of `account`.
    pub fn handshake(&self, account: &str) -> String {
        self.account(account).invitation.expect("invited").handshake_id.to_string()
    }

    /// The owner of `account` accepts its invitation.
    pub async fn accept(&self, account: &str, owner: &Customer) {
        owner.organizations.accept_handshake().handshake_id(self.handshake(account)).send().await.unwrap();
    }

    /// Moves orglink's clock an hour past the expiry of the invitation of
    /// `account` (AWS's own clock does not move).
    pub fn expire(&self, account: &str) {
        let expires = self.account(account).invitation.expect("invited").expires_at;
        self.clock().set(self.now().max(expires + time::Duration::hours(1)));
    }

    pub async fn run(&self, job: Job) -> JobReport {
        self.app().run_job(job).await.unwrap()
    }

    pub fn account(&self, account: &str) -> Account {
        self.store().account(id(account)).unwrap().unwrap_or_else(|| panic!("{account} is not registered"))
    }

    pub fn state(&self, account: &str) -> LinkState {
        self.account(account).state
    }

    /// What waits in the outbox; the test has now seen it.
    pub fn outbox(&self) -> Vec<OutboxItem> {
        let items = self.store().outbox().unwrap();
        self.accounted.borrow_mut().extend(items.iter().map(|i| i.id));
        items
    }

    /// The events waiting in the outbox for `account`, oldest first; the
    /// test has now seen them.
    pub fn events(&self, account: &str) -> Vec<Event> {
        let items: Vec<OutboxItem> =
            self.store().outbox().unwrap().into_iter().filter(|i| i.event.account() == Some(id(account))).collect();
        self.accounted.borrow_mut().extend(items.iter().map(|i| i.id));
        items.into_iter().map(|i| i.event).collect()
    }

    /// Their codes.
    pub fn notified(&self, account: &str) -> Vec<&'static str> {
        self.events(account).iter().map(Event::code).collect()
    }

    /// A notifier delivering the outbox to the Discord recorder.
    pub fn notifier(&self) -> Notifier {
        let config = discord::config(&self.discord().uri(), &"00".repeat(32));
        Notifier {
            store: self.store().clone(),
            http: Arc::new(orglink::discord::http_client(&config.discord)),
            templates: Templates::embedded(),
            ops_channel: config.discord.ops_channel_id,
            default_lang: Lang::En,
            clock: self.clock.clone(),
            timeout: orglink::discord::notify::DISCORD_TIMEOUT,
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("the harness was started with `serve`")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server().running.http_addr)
    }

    /// Posts `body` signed as Discord signs it, stamped `age_secs` ago.
    pub async fn post_aged(&self, body: &[u8], age_secs: i64) -> (u16, Value) {
        self.post_stamped(body, OffsetDateTime::now_utc().unix_timestamp() - age_secs).await
    }

    /// Posts `body` signed as Discord signs it, stamped `timestamp` (Unix
    /// time): the same arguments make the same request, byte for byte.
    pub async fn post_stamped(&self, body: &[u8], timestamp: i64) -> (u16, Value) {
        let server = self.server();
        let timestamp = timestamp.to_string();
        let signature = server.signing.sign(&[timestamp.as_bytes(), body].concat());
        let response = server
            .http
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

    /// Posts `interaction` as a new one: with an ID of its own, as Discord
    /// gives each (the endpoint refuses an ID it has run).
    pub async fn post(&self, interaction: &Value) -> (u16, Value) {
        let mut interaction = interaction.clone();
        if interaction.get("id").is_some() {
            interaction["id"] = serde_json::json!(interaction_id().to_string());
        }
        self.post_aged(&serde_json::to_vec(&interaction).unwrap(), 0).await
    }

    /// Posts and expects 200; returns the interaction response.
    pub async fn interact(&self, interaction: &Value) -> Value {
        let (status, body) = self.post(interaction).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn raw_post(&self, headers: &[(&str, &str)], body: Vec<u8>) -> u16 {
        let mut request = self.server().http.post(self.url("/interactions")).body(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send().await.unwrap().status().as_u16()
    }

    /// The follow-up (the edit of the deferred response) sent for the
    /// interaction with `token`, once it arrives.
    pub async fn followup(&self, token: &str) -> wiremock::Request {
        let path = format!("/api/v10/webhooks/{}/{token}/messages/@original", discord::APPLICATION_ID);
        self.discord().wait_for("PATCH", &path).await
    }

    /// Waits until the server's notifier has handled every change made so
    /// far: it is woken, and a round that began after the wake has ended
    /// (signalled by the notifier, not polled).
    pub async fn settle(&self) {
        let bot = &self.server().running.bot;
        let mut rounds = bot.delivery_rounds.subscribe();
        for _ in 0..2 {
            let seen = *rounds.borrow_and_update();
            bot.changed.notify_one();
            rounds.wait_for(|n| *n > seen).await.unwrap();
        }
    }

    /// The end of every test: stops the server (a last delivery round for
    /// what its notifier had not sent yet), then fails if a background task
    /// panicked or logged a failure, or if the outbox holds an item the test
    /// did not look at.
    pub async fn finish(mut self) {
        self.finished = true;
        if let Some(server) = self.server.take() {
            server.running.stop().await;
            let notifier = self.notifier();
            for _ in 0..5 {
                if notifier.deliver_due().await.unwrap() == Default::default() {
                    break;
                }
            }
        }
        let panics = self.watch.panics();
        assert!(panics.is_empty(), "a background task panicked: {panics:#?}");
        let errors: Vec<String> = self
            .watch
            .logs
            .errors()
            .into_iter()
            .filter(|e| e.starts_with("orglink") && !OUTCOMES.iter().any(|x| e.contains(x)))
            .filter(|e| !self.expected_errors.iter().any(|x| e.contains(x.as_str())))
            .collect();
        assert!(errors.is_empty(), "a background task failed: {errors:#?}");
        let accounted = self.accounted.borrow();
        let left: Vec<String> = self
            .store()
            .outbox()
            .unwrap()
            .into_iter()
            .filter(|i| !accounted.contains(&i.id))
            .map(|i| format!("{} ({})", i.event.code(), i.dedupe_key))
            .collect();
        assert!(left.is_empty(), "left in the outbox, not expected by the test: {left:#?}");
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if !self.finished && !std::thread::panicking() {
            panic!("the test ended without Harness::finish");
        }
    }
}

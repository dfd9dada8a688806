//! The gateway transport: interactions arrive over Discord's websocket and
//! are answered over REST. A supervisor keeps it up: whatever ends
//! serenity's client, it is started again after a backoff
//! ([`crate::backoff`]), and its state ([`GatewayState`]) is what
//! `/healthz` and the metrics report.
//!
//! What serenity 0.12.5 lets orglink see, and so what this does:
//! - `Client::start_shards` returns only when a shard's session is refused
//!   for good (close 4004 authentication failed, or refused intents: an
//!   error), or when its shard manager is shut down (`Ok`). Everything else
//!   (a socket closed mid-session, a failed resume, an unreachable gateway)
//!   it retries itself: a resume at once, a new connection through its shard
//!   queuer every 5 s (`WAIT_BETWEEN_BOOTS_IN_SECONDS`, fixed). Its queuer
//!   cannot be stopped while it holds no shard runner (`shutdown_all` returns
//!   early on an empty runner map), so orglink never abandons a client that
//!   is still retrying: it would keep connecting in the background.
//! - So before each start the supervisor asks for the gateway itself: `GET
//!   /gateway/bot` (a 401 is a rejected token; the URL and the shard count
//!   serenity is then given), and a websocket handshake to that URL until
//!   its HELLO. An unreachable Discord is an attempt that failed, with its
//!   cause, on orglink's backoff, rather than a client retrying blind.
//! - A session is seen from serenity's events (READY, RESUMED, shard stage
//!   updates) and from its shard manager's runners (their stage, updated at
//!   each stage change and heartbeat acknowledgement), read every second:
//!   a lost session shows when serenity next updates a runner's stage or
//!   removes it to reconnect, not at the moment the socket closes; a resume
//!   quicker than that is seen only as its RESUMED.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt as _;
use serenity::all::{
    ClientBuilder, Context, EventHandler, GatewayIntents, Http, Interaction, Ready, ResumedEvent, ShardId,
    ShardStageUpdateEvent,
};
use serenity::async_trait;
use serenity::gateway::{ConnectionStage, GatewayError, ShardManager};

use super::Bot;
use crate::backoff::{Failure, Retry, random_jitter};
use crate::clock::Clock;
use crate::config::DiscordConfig;
use crate::health::{GatewayLink, Link, Moved};
use crate::metrics::Metrics;

/// How long a step of an attempt may take: the REST call, the websocket's
/// HELLO.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the shard manager's runners are read.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// How long an ended client's sessions are given to close (in the
/// background), and at shutdown (which does not wait longer: serenity waits
/// 5 s on a shard whose runner already ended).
const CLOSE_WITHIN: Duration = Duration::from_secs(10);
const CLOSE_AT_SHUTDOWN: Duration = Duration::from_secs(1);
/// The gateway API version serenity speaks.
const GATEWAY_VERSION: u8 = 10;

/// The gateway's state, shared by its supervisor, serenity's events and
/// `/healthz`.
pub struct GatewayState {
    link: Mutex<GatewayLink>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

impl GatewayState {
    pub fn new(clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Arc<Self> {
        metrics.gateway_moved(Moved { connected: Some(false), reconnect: false });
        Arc::new(Self { link: Mutex::new(GatewayLink::new(clock.now())), clock, metrics })
    }

    /// Where it stands now.
    pub fn link(&self) -> Link {
        self.lock().link.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GatewayLink> {
        self.link.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn moved(&self, change: impl FnOnce(&mut GatewayLink, time::OffsetDateTime) -> Moved) {
        let now = self.clock.now();
        let moved = change(&mut self.lock(), now);
        self.metrics.gateway_moved(moved);
    }

    fn attempt(&self) -> u64 {
        let now = self.clock.now();
        let (generation, moved) = self.lock().attempt(now);
        self.metrics.gateway_moved(moved);
        generation
    }

    fn had_session(&self) -> bool {
        self.lock().had_session()
    }
}

/// One run of serenity's client, as the supervisor starts it.
struct Generation {
    state: Arc<GatewayState>,
    number: u64,
    /// Its shard manager and shard count, once the client is built.
    shards: OnceLock<(Arc<ShardManager>, u32)>,
}

impl Generation {
    /// Reads the shard runners: all connected, or why not.
    async fn observe(&self) {
        let Some((manager, count)) = self.shards.get() else { return };
        let down = {
            let runners = manager.runners.lock().await;
            let stage = |id: &ShardId| runners.get(id).map(|r| r.stage);
            let down = (0..*count).map(ShardId).find(|id| stage(id) != Some(ConnectionStage::Connected));
            down.map(|id| match stage(&id) {
                Some(stage) => format!("the session was lost (shard {id} is {stage:?}); serenity is reconnecting"),
                None => format!("the session was lost (shard {id} is restarting); serenity is reconnecting"),
            })
        };
        let up = down.is_none();
        self.state.moved(|link, now| link.seen(self.number, now, up, down.as_deref().unwrap_or_default()));
    }
}

struct Handler {
    bot: Arc<Bot>,
    http: Arc<Http>,
    generation: Arc<Generation>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        let (id, token) = (interaction.id(), interaction.token().to_owned());
        let bot = self.bot.clone();
        match tokio::task::spawn_blocking(move || bot.respond(&interaction)).await {
            Ok(response) => super::answer_over_rest(self.http.clone(), id, token, response).await,
            Err(e) => tracing::error!(error = %e, "answering an interaction failed"),
        }
    }

    async fn ready(&self, _ctx: Context, ready: Ready) {
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "connected to the Discord gateway");
        let generation = &self.generation;
        generation.state.moved(|link, now| link.session(generation.number, now));
    }

    async fn resume(&self, _ctx: Context, _: ResumedEvent) {
        tracing::info!("resumed the Discord gateway session");
        let generation = &self.generation;
        generation.state.moved(|link, now| link.session(generation.number, now));
    }

    async fn shard_stage_update(&self, _ctx: Context, _: ShardStageUpdateEvent) {
        self.generation.observe().await;
    }
}

/// Why a run of the client ended (or did not start).
#[derive(Debug)]
struct Ended {
    cause: String,
    failure: Failure,
}

impl Ended {
    fn transient(cause: impl Into<String>) -> Self {
        Self { cause: cause.into(), failure: Failure::Transient }
    }

    fn configuration(cause: impl Into<String>) -> Self {
        Self { cause: cause.into(), failure: Failure::Configuration }
    }
}

/// Runs the gateway until `shutdown`: serenity's client, started again
/// after `config.reconnect`'s backoff whenever it ends; each failed attempt
/// logged once with its cause and the wait before the next.
pub async fn supervise(
    bot: Arc<Bot>,
    config: DiscordConfig,
    state: Arc<GatewayState>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut retry = Retry::new(config.reconnect);
    let http = Arc::new(super::http_client(&config));
    loop {
        let generation =
            Arc::new(Generation { state: state.clone(), number: state.attempt(), shards: OnceLock::new() });
        let run = tokio::spawn(run_client(bot.clone(), config.clone(), http.clone(), generation.clone()));
        let abort = run.abort_handle();
        let ended = tokio::select! {
            joined = run => joined.unwrap_or_else(|e| Ended::transient(format!("the gateway's client failed: {e}"))),
            () = &mut shutdown => {
                abort.abort();
                close(&generation, CLOSE_AT_SHUTDOWN).await;
                return;
            }
        };
        // Whatever is left of it closes in the background.
        tokio::spawn({
            let generation = generation.clone();
            async move { close(&generation, CLOSE_WITHIN).await }
        });
        if state.had_session() {
            retry.succeeded();
        }
        let delay = retry.failed(ended.failure, random_jitter());
        let configuration = ended.failure == Failure::Configuration;
        state.moved(|link, now| link.failed(generation.number, now, &ended.cause, configuration));
        let (attempt, retry_in_ms) = (retry.failures(), u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        if configuration {
            tracing::error!(
                attempt,
                cause = ended.cause,
                retry_in_ms,
                "Discord rejected discord.token: a configuration error (`orglink doctor` checks the token); trying again slowly"
            );
        } else {
            tracing::warn!(attempt, cause = ended.cause, retry_in_ms, "the Discord gateway is down; trying again");
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut shutdown => return,
        }
    }
}

/// Closes a client's sessions, if it got so far, for at most `within`.
async fn close(generation: &Generation, within: Duration) {
    if let Some((manager, _)) = generation.shards.get() {
        let _ = tokio::time::timeout(within, manager.shutdown_all()).await;
    }
}

/// What `GET /gateway/bot` answered with the configured token: the first
/// step of each of the supervisor's attempts, and `doctor`'s check of the
/// token.
pub enum BotGatewayAnswer {
    Gateway(serenity::model::gateway::BotGateway),
    /// 401: Discord rejects the token, a configuration error.
    Rejected,
    /// Another HTTP status.
    Status(String),
    /// No answer within [`STEP_TIMEOUT`], or no connection: why.
    NoAnswer(String),
    /// Anything else the request failed with.
    Failed(String),
}

/// Asks `GET /gateway/bot`, for at most [`STEP_TIMEOUT`].
pub async fn ask_bot_gateway(http: &Http) -> BotGatewayAnswer {
    match tokio::time::timeout(STEP_TIMEOUT, http.get_bot_gateway()).await {
        Err(_) => BotGatewayAnswer::NoAnswer(format!("no answer within {STEP_TIMEOUT:?}")),
        Ok(Ok(gateway)) => BotGatewayAnswer::Gateway(gateway),
        Ok(Err(serenity::Error::Http(e))) => match e.status_code() {
            Some(status) if status.as_u16() == 401 => BotGatewayAnswer::Rejected,
            Some(status) => BotGatewayAnswer::Status(status.to_string()),
            None => BotGatewayAnswer::NoAnswer(causes(&e)),
        },
        Ok(Err(e)) => BotGatewayAnswer::Failed(causes(&e)),
    }
}

/// One run of serenity's client: until it ends, with why.
async fn run_client(bot: Arc<Bot>, config: DiscordConfig, http: Arc<Http>, generation: Arc<Generation>) -> Ended {
    let gateway = match ask_bot_gateway(&http).await {
        BotGatewayAnswer::Gateway(gateway) => gateway,
        BotGatewayAnswer::Rejected => return Ended::configuration("GET /gateway/bot answered 401 Unauthorized"),
        BotGatewayAnswer::Status(status) => return Ended::transient(format!("GET /gateway/bot answered {status}")),
        BotGatewayAnswer::NoAnswer(cause) | BotGatewayAnswer::Failed(cause) => {
            return Ended::transient(format!("GET /gateway/bot: {cause}"));
        }
    };
    let limit = &gateway.session_start_limit;
    if limit.remaining == 0 {
        return Ended::transient(format!(
            "Discord's session start limit is used up for {} s more",
            limit.reset_after.div_ceil(1000)
        ));
    }
    if let Err(cause) = hello(&gateway.url).await {
        return Ended::transient(cause);
    }
    let handler = Handler { bot, http, generation: generation.clone() };
    let mut client = match ClientBuilder::new_with_http(super::http_client(&config), GatewayIntents::GUILDS)
        .event_handler(handler)
        .await
    {
        Ok(client) => client,
        Err(e) => return Ended::transient(format!("starting serenity's client: {}", causes(&e))),
    };
    // The address Discord named a moment ago, whatever serenity's own
    // `GET /gateway` found (it falls back to Discord's public one).
    *client.ws_url.lock().await = gateway.url.clone();
    let shards = gateway.shards.max(1);
    let _ = generation.shards.set((client.shard_manager.clone(), shards));
    let watch = async {
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            generation.observe().await;
        }
    };
    let result = tokio::select! {
        result = client.start_shards(shards) => result,
        () = watch => return Ended::transient("the watch of the shards ended"),
    };
    match result {
        Ok(()) => Ended::transient("serenity's shard manager stopped"),
        Err(serenity::Error::Gateway(GatewayError::InvalidAuthentication)) => {
            Ended::configuration("the gateway closed the session with 4004 (authentication failed)")
        }
        Err(serenity::Error::Gateway(
            e @ (GatewayError::InvalidGatewayIntents | GatewayError::DisallowedGatewayIntents),
        )) => Ended::configuration(format!("the gateway refused the intents: {e}")),
        Err(e) => Ended::transient(format!("serenity's client stopped: {}", causes(&e))),
    }
}

/// An error with its sources, each said once: serenity's own text for a
/// failed request is "Error while sending HTTP request.", its cause
/// (connection refused, a timeout) is in the sources.
pub fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        source = cause.source();
    }
    text
}

/// Whether the gateway at `url` answers: a websocket handshake, its HELLO
/// (op 10), then a clean close. Serenity would retry an unreachable gateway
/// every 5 s on its own, unseen; asked here, it is an attempt that failed.
async fn hello(url: &str) -> Result<(), String> {
    // As serenity builds it: parsed, so a bare host gets its path (`/`).
    let address = reqwest::Url::parse(&format!("{url}?v={GATEWAY_VERSION}&encoding=json"))
        .map_err(|e| format!("the gateway's address {url:?}: {e}"))?;
    let steps = async {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(address.as_str()).await.map_err(|e| format!("the gateway {url}: {e}"))?;
        let first = ws.next().await;
        let _ = ws.close(None).await;
        // Read the close through, so the gateway sees it answered.
        let _ = tokio::time::timeout(Duration::from_secs(1), async { while ws.next().await.is_some() {} }).await;
        match first {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))
                if serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v["op"] == 10) =>
            {
                Ok(())
            }
            Some(Ok(other)) => Err(format!("the gateway {url} did not say HELLO: {other}")),
            Some(Err(e)) => Err(format!("the gateway {url}: {e}")),
            None => Err(format!("the gateway {url} closed the connection before its HELLO")),
        }
    };
    tokio::time::timeout(STEP_TIMEOUT, steps)
        .await
        .unwrap_or_else(|_| Err(format!("the gateway {url} did not say HELLO within {STEP_TIMEOUT:?}")))
}

//! `orglink serve`: the Discord transports, the HTTP endpoint and the
//! notification loop, wired together.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinHandle;

use crate::aws::Aws;
use crate::aws::organizations::Distributor;
use crate::clock::Clock;
use crate::config::{Config, Transport};
use crate::discord::{self, Bot, OpsSpace, endpoint, notify::Notifier};
use crate::health::{self, Identity};
use crate::store::Store;
use crate::templates::Templates;
use crate::wiring;

/// How often pending notifications are retried when nothing wakes the loop.
const DELIVERY_INTERVAL: Duration = Duration::from_secs(5);

/// Why `serve` cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("discord.token and discord.application_id are needed to register commands")]
    CannotRegister,
}

/// A running server.
pub struct Running {
    /// Where the HTTP endpoint (interactions; health and metrics too unless
    /// an admin listener serves them) listens.
    pub http_addr: SocketAddr,
    /// Where `/healthz` and `/metrics` are served when `http.admin_listen`
    /// is set.
    pub admin_addr: Option<SocketAddr>,
    pub bot: Arc<Bot>,
    tasks: Vec<JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Running {
    /// Stops taking interactions and waits for the tasks to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Registers the slash commands (globally, or in the configured servers).
pub async fn register_commands(config: &Config, templates: &Templates) -> anyhow::Result<usize> {
    if config.discord.token.is_none() || config.discord.application_id.is_none() {
        return Err(ServeError::CannotRegister.into());
    }
    let http = discord::http_client(&config.discord);
    let payload = discord::spec::registration_payload(templates)?;
    if config.discord.command_guild_ids.is_empty() {
        http.create_global_commands(&payload).await.context("registering global commands")?;
    } else {
        for guild in &config.discord.command_guild_ids {
            http.create_guild_commands(guild.get().into(), &payload)
                .await
                .with_context(|| format!("registering commands in server {guild}"))?;
        }
    }
    Ok(payload.len())
}

/// Starts every configured transport and the notification loop, with the
/// app [`wiring::app`] builds (`aws`: orglink's AWS clients, if any).
pub async fn start(
    config: Config,
    templates: Templates,
    store: Store,
    clock: Arc<dyn Clock>,
    aws: Option<(Aws, Distributor)>,
) -> anyhow::Result<Running> {
    let discord_config = &config.discord;
    let discord = health::has_transport(discord_config);
    if discord_config.register_commands_on_start {
        let count = register_commands(&config, &templates).await?;
        tracing::info!(count, "slash commands registered");
    }
    let app = wiring::app(&config, &templates, store.clone(), clock.clone(), aws);
    let ops = OpsSpace { guild: discord_config.ops_guild_id, role: discord_config.ops_role_id };
    let attachments =
        discord::attachments::Attachments::new(&discord_config.cdn_base_url, discord::attachments::TIMEOUT)?;
    let bot = Arc::new(Bot::new(app, templates.clone(), ops, attachments, config.language)?);
    let http = Arc::new(discord::http_client(discord_config));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut stopping = stopping.clone();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    };
    let mut tasks = Vec::new();

    if discord_config.token.is_some() {
        let notifier = Notifier {
            store,
            http: http.clone(),
            templates,
            ops_channel: discord_config.ops_channel_id,
            default_lang: config.language,
            clock: clock.clone(),
            timeout: discord::notify::DISCORD_TIMEOUT,
        };
        tasks.push(tokio::spawn(notifier.run(
            bot.changed.clone(),
            bot.delivery_rounds.clone(),
            DELIVERY_INTERVAL,
            stopped(),
        )));
    } else {
        tracing::warn!("no discord.token: notifications wait in the outbox until one is configured");
    }
    // The gateway, supervised: started again whenever it ends, until the
    // server stops.
    let gateway = if discord_config.runs(Transport::Gateway) {
        let state = discord::gateway::GatewayState::new(clock.clone(), bot.app().metrics().clone());
        let supervised = discord::gateway::supervise(bot.clone(), discord_config.clone(), state.clone(), stopped());
        tasks.push(tokio::spawn(supervised));
        Some(state)
    } else {
        if discord_config.token.is_some() {
            tracing::info!(
                "discord.transports leaves the gateway out: no gateway connection; the token sends notifications"
            );
        }
        None
    };

    let scheduler = crate::scheduler::run(bot.app().clone(), config.schedule.clone(), clock.clone(), stopped());
    tasks.push(tokio::spawn(scheduler));

    let verifier = match discord_config.public_key.as_ref().filter(|_| discord_config.runs(Transport::Http)) {
        Some(key) => {
            Some(endpoint::verifier(key).ok_or_else(|| anyhow::anyhow!("discord.public_key is not a valid key"))?)
        }
        None => None,
    };
    // Health and metrics are served whichever transports run: beside the
    // interactions, or on their own listener (loopback, say) when one is set.
    let interactions = verifier.is_some();
    let endpoint = endpoint::Endpoint {
        bot: bot.clone(),
        verifier,
        http,
        started: clock.now(),
        clock,
        gateway,
        gateway_grace: config.gateway_grace,
        schedule: config.schedule.clone(),
        health_job_intervals: config.health_job_intervals,
        seen: Default::default(),
        store_check: Default::default(),
    };
    let public_routes = if config.admin_listen.is_some() { endpoint::Routes::Public } else { endpoint::Routes::All };
    let http_addr =
        serve_http(config.listen, endpoint::router(endpoint.clone(), public_routes), &mut tasks, stopped()).await?;
    let admin_addr = match config.admin_listen {
        Some(addr) => {
            let router = endpoint::router(endpoint, endpoint::Routes::Admin);
            Some(serve_http(addr, router, &mut tasks, stopped()).await?)
        }
        None => None,
    };
    if !discord {
        let health = admin_addr.unwrap_or(http_addr);
        tracing::info!(%health, "no Discord configured (discord.token, discord.public_key): serving the scheduled jobs, the command line's socket and /healthz, /metrics only");
    }
    match admin_addr {
        Some(admin) => {
            tracing::info!(addr = %http_addr, %admin, interactions, "serving HTTP: /interactions; /healthz and /metrics on the admin address")
        }
        None => {
            tracing::info!(addr = %http_addr, interactions, "serving HTTP: /healthz, /metrics and, with interactions, /interactions")
        }
    }
    Ok(Running { http_addr, admin_addr, bot, tasks, stop })
}

/// Binds `addr` and serves `router` there until `shutdown`; the address
/// bound (the port chosen, for port 0).
async fn serve_http(
    addr: SocketAddr,
    router: axum::Router,
    tasks: &mut Vec<JoinHandle<()>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))?;
    let bound = listener.local_addr()?;
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    }));
    Ok(bound)
}

/// The command line's socket: where it listens, and what runs a request on
/// the running server's bot (the CLI's own execution).
pub struct CliSocket {
    pub path: std::path::PathBuf,
    pub handler: Box<dyn FnOnce(Arc<Bot>) -> crate::socket::Handler + Send>,
}

/// Runs until SIGINT or SIGTERM, then stops taking interactions and ends
/// the running tasks.
pub async fn serve(
    config: Config,
    templates: Templates,
    store: Store,
    clock: Arc<dyn Clock>,
    socket: CliSocket,
) -> anyhow::Result<()> {
    let flush_store = store.clone();
    let (aws, distributor) = wiring::aws_clients(&config).await;
    check_identity(&aws, config.settings.cross_account_id).await;
    let mut running = start(config, templates, store, clock, Some((aws, distributor))).await?;
    let handler = (socket.handler)(running.bot.clone());
    let stopping = running.stop.subscribe();
    let stopped = async move {
        let mut stopping = stopping;
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    running.tasks.push(crate::socket::listen(socket.path, handler, stopped).await?);
    shutdown_signal().await;
    tracing::info!("shutting down");
    tokio::time::timeout(Duration::from_secs(20), running.stop()).await.ok();
    flush_store.flush()?;
    Ok(())
}

/// Customer roles trust the platform's cross-account ID: orglink must run as
/// that account, or every verification fails ([`Identity`], as `doctor`
/// judges it). Said at start-up; the answer is kept, so the verifications'
/// first AccessDenied need not ask again whose problem it is.
async fn check_identity(aws: &Aws, cross_account_id: crate::domain::AccountId) {
    match Identity::of(aws.own_account_cached().await, cross_account_id) {
        Identity::Platform => {
            tracing::info!(account = %cross_account_id, "AWS identity is the platform's cross-account ID")
        }
        Identity::Other(account) => tracing::warn!(
            %account,
            expected = %cross_account_id,
            "orglink's AWS identity is not the platform's cross-account ID: customer roles trust that account, so verifications will fail"
        ),
        Identity::Unknown(error) => tracing::warn!(error, "orglink's AWS identity could not be read"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

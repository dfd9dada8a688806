//! The Discord front end: slash commands over the gateway and over a signed
//! HTTP interactions endpoint, and channel notifications.
//!
//! One path, [`Bot::respond`], turns an `Interaction` into an app command
//! and the app's reply into a `CreateInteractionResponse`; the transports
//! (`endpoint`, `gateway`) only carry it. Discord types stop here.

pub mod attachments;
pub mod endpoint;
pub mod gateway;
pub mod inbound;
pub mod notify;
pub mod outbound;
pub mod replay;
pub mod spec;

use std::sync::Arc;
use std::time::Duration;

use serenity::all::{CreateInteractionResponse, Http, HttpBuilder, Interaction, InteractionId};
use serenity::builder::Builder as _;
use tracing::Instrument as _;

use crate::app::{Actor, App, AppError, Command, ImportAnswer, Message, Reply, UserError};
use crate::config::DiscordConfig;
use crate::domain::{Lang, TenantId};
use crate::templates::Templates;
use attachments::{Attached, Attachments};
pub use inbound::OpsSpace;
use inbound::{Incoming, Request};
use outbound::Ui;
pub use outbound::{FollowUp, Response};

/// An interaction as [`Bot::read`] found it, for [`Bot::answer`].
pub struct Read {
    incoming: Incoming,
    at: std::time::Instant,
}

impl Read {
    /// Whether answering it only reads a little from the store and never
    /// waits on anything else (`Command::is_quick_read`; a ping): a
    /// transport may answer it where it received it, without a hop to a
    /// blocking thread.
    pub fn is_quick(&self) -> bool {
        match &self.incoming.request {
            Ok(Request::Ping) => true,
            Ok(Request::Run { command, .. }) => command.is_quick_read(),
            Ok(
                Request::ImportFile { .. }
                | Request::SuggestAccounts { .. }
                | Request::OpenRoleModal { .. }
                | Request::DecideTenant { .. }
                | Request::PipelinePage { .. },
            ) => false,
            // Refused without the store.
            Err(_) => true,
        }
    }
}

/// Answers interactions, whichever transport brought them.
pub struct Bot {
    app: App,
    templates: Templates,
    ops: OpsSpace,
    /// Fetches the files commands carry (`/link-accounts`).
    attachments: Attachments,
    default_lang: Lang,
    ui_en: Ui,
    ui_es: Ui,
    /// Woken after each change, so notifications go out at once.
    pub changed: Arc<tokio::sync::Notify>,
    /// Delivery rounds completed by `serve`'s notifier: a round that ends
    /// after a change was woken for has seen it.
    pub delivery_rounds: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Bot {
    pub fn new(
        app: App,
        templates: Templates,
        ops: OpsSpace,
        attachments: Attachments,
        default_lang: Lang,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            ui_en: Ui::load(&templates, Lang::En)?,
            ui_es: Ui::load(&templates, Lang::Es)?,
            app,
            // Everything the bot renders is read in Discord: free text is
            // escaped.
            templates: templates.for_discord(),
            ops,
            attachments,
            default_lang,
            changed: Arc::new(tokio::sync::Notify::new()),
            delivery_rounds: Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    fn ui(&self, lang: Lang) -> &Ui {
        match lang {
            Lang::En => &self.ui_en,
            Lang::Es => &self.ui_es,
        }
    }

    /// The reply language: asked for, else the user's Discord language, else
    /// the tenant's, else the configured default.
    fn lang(&self, incoming: &Incoming, asked: Option<Lang>) -> Lang {
        asked
            .or(incoming.locale_lang)
            .or_else(|| {
                let sender = incoming.sender.as_ref()?;
                self.app.tenant_language(&sender.tenant).ok().flatten()
            })
            .unwrap_or(self.default_lang)
    }

    /// The response to `interaction`: what to answer now, and what to send
    /// after. It may wait for the disk: call it where blocking is allowed.
    pub fn respond(self: &Arc<Self>, interaction: &Interaction) -> Response {
        self.answer(self.read(interaction))
    }

    /// `interaction`, read (nothing is asked of the store yet).
    pub fn read(&self, interaction: &Interaction) -> Read {
        Read { incoming: inbound::parse(interaction, &self.ops, self.attachments.cdn()), at: std::time::Instant::now() }
    }

    /// The response to what `read` found.
    pub fn answer(self: &Arc<Self>, read: Read) -> Response {
        let Read { incoming, at: started } = read;
        let kind = match &incoming.request {
            Ok(Request::Ping) => "ping",
            Ok(Request::Run { .. } | Request::ImportFile { .. }) => "command",
            Ok(Request::SuggestAccounts { .. }) => "autocomplete",
            Ok(Request::OpenRoleModal { .. } | Request::DecideTenant { .. } | Request::PipelinePage { .. }) => {
                "component"
            }
            Err(_) => "invalid",
        };
        let response = self.respond_to(incoming);
        self.app.metrics().interaction(kind, started.elapsed().as_secs_f64());
        response
    }

    fn respond_to(self: &Arc<Self>, incoming: inbound::Incoming) -> Response {
        let tenant = incoming.sender.as_ref().map(|s| s.tenant.to_string()).unwrap_or_default();
        let span = tracing::info_span!(
            "interaction",
            tenant = %tenant,
            command = tracing::field::Empty,
            account = tracing::field::Empty
        );
        let _entered = span.enter();
        let request = match incoming.request.clone() {
            Ok(request) => request,
            Err(e) => return self.reply(Reply::error(e), self.lang(&incoming, None)),
        };
        let Some(sender) = incoming.sender.as_ref() else {
            return Response::now(CreateInteractionResponse::Pong);
        };
        match request {
            Request::Ping => Response::now(CreateInteractionResponse::Pong),
            Request::Run { command, lang } => {
                span.record("command", command.name());
                if let Some(account) = command.account() {
                    span.record("account", account.as_str());
                }
                let lang = self.lang(&incoming, lang);
                if command.is_slow() {
                    // Answer within Discord's 3 seconds; the result follows.
                    let (bot, actor) = (self.clone(), sender.actor.clone());
                    let work = async move {
                        let name = command.name();
                        let outcome = bot.app.execute(&actor, command).await;
                        let reply = bot.outcome(name, outcome);
                        let rendered = bot.render(reply, lang);
                        outbound::edit(&rendered.0, rendered.1, bot.ui(lang))
                    }
                    .instrument(span.clone());
                    return outbound::deferred(FollowUp::Later(Box::pin(work)));
                }
                let name = command.name();
                let reply = self.outcome(name, self.app.handle(&sender.actor, command));
                self.reply(reply, lang)
            }
            Request::ImportFile { file, dry_run } => {
                span.record("command", "account_import");
                let lang = self.lang(&incoming, None);
                // The file is fetched after Discord has its answer.
                let (bot, actor, tenant) = (self.clone(), sender.actor.clone(), sender.tenant.clone());
                let work = async move {
                    let outcome = bot.import_attached(&actor, tenant, &file, dry_run).await;
                    let reply = bot.outcome("account_import", outcome);
                    let rendered = bot.render(reply, lang);
                    outbound::edit(&rendered.0, rendered.1, bot.ui(lang))
                }
                .instrument(span.clone());
                outbound::deferred(FollowUp::Later(Box::pin(work)))
            }
            Request::SuggestAccounts { partial } => {
                let accounts = self.app.suggest_accounts(&sender.actor, &partial, outbound::AUTOCOMPLETE_CHOICES_MAX);
                // Autocomplete cannot show an error: no suggestions instead.
                Response::now(outbound::suggestions(&accounts.unwrap_or_default()))
            }
            Request::DecideTenant { tenant, decision, prompt } => {
                let command = crate::app::Command::DecideTenant { tenant, decision };
                let name = command.name();
                span.record("command", name);
                let lang = self.lang(&incoming, None);
                let outcome = self.app.handle(&sender.actor, command);
                let decided = outcome.is_ok();
                let (reply, rendered) = self.render(self.outcome(name, outcome), lang);
                if decided && reply.tone != crate::app::Tone::Error {
                    outbound::answer_prompt(&reply, rendered, prompt)
                } else {
                    outbound::reply(&reply, rendered, self.ui(lang))
                }
            }
            Request::PipelinePage { page } => {
                let command = crate::app::Command::Pipeline {
                    tenant: None,
                    format: crate::app::ListFormat::Text,
                    page: Some(page),
                };
                let name = command.name();
                span.record("command", name);
                let lang = self.lang(&incoming, None);
                let outcome = self.app.handle(&sender.actor, command);
                let paged = outcome.is_ok();
                let (reply, rendered) = self.render(self.outcome(name, outcome), lang);
                if paged && reply.tone != crate::app::Tone::Error {
                    outbound::update(&reply, rendered, self.ui(lang))
                } else {
                    // Refused (no longer operations?): said privately, the
                    // page stays as it was.
                    outbound::reply(&reply, rendered, self.ui(lang))
                }
            }
            Request::OpenRoleModal { account } => {
                let lang = self.lang(&incoming, None);
                match self.app.handle(&sender.actor, crate::app::Command::ShowAccount { account }) {
                    Ok(_) => Response::now(outbound::role_modal(account, self.ui(lang))),
                    Err(AppError::User(e)) => self.reply(Reply::error(e), lang),
                    Err(AppError::Internal(e)) => {
                        tracing::error!(error = format!("{e:#}"), "opening the role modal failed");
                        self.reply(Reply::new(crate::app::Tone::Error, vec![Message::Internal]), lang)
                    }
                }
            }
        }
    }

    /// `/link-accounts`: the file fetched (only for a member the door and
    /// the command's permission let through), read by the import's own
    /// reader, then imported for `tenant` as the command line imports,
    /// answered with a summary and the external IDs as a file.
    async fn import_attached(
        &self,
        actor: &Actor,
        tenant: TenantId,
        file: &Attached,
        dry_run: bool,
    ) -> Result<Reply, AppError> {
        let mut command =
            Command::ImportAccounts { tenant, rows: Default::default(), dry_run, answer: ImportAnswer::File };
        self.app.let_through(actor, command.permission()).await?;
        let text = self.attachments.fetch_text(file).await?;
        if let Command::ImportAccounts { tenant, rows, .. } = &mut command {
            *rows = crate::domain::import::read(&text, tenant);
        }
        self.app.execute(actor, command).await
    }

    /// The reply to show for a command's outcome; our own failures are
    /// logged and answered with an apology.
    fn outcome(&self, command: &'static str, outcome: Result<Reply, AppError>) -> Reply {
        use crate::metrics::CommandOutcome;
        let counted = match &outcome {
            Ok(_) => CommandOutcome::Ok,
            // AWS could not be asked: shown as such, counted as ours.
            Err(AppError::User(e)) if e.ours() => CommandOutcome::InternalError,
            Err(AppError::User(_)) => CommandOutcome::UserError,
            Err(AppError::Internal(_)) => CommandOutcome::InternalError,
        };
        self.app.metrics().command(command, counted);
        match outcome {
            Ok(reply) => {
                self.changed.notify_one();
                reply
            }
            Err(AppError::User(e)) => {
                if e.ours() {
                    tracing::error!(error = %e, "command failed");
                }
                if e == UserError::TenantPending {
                    // Operations may just have been told of a new server.
                    self.changed.notify_one();
                }
                Reply::error(e)
            }
            Err(AppError::Internal(e)) => {
                tracing::error!(error = format!("{e:#}"), "command failed");
                Reply::new(crate::app::Tone::Error, vec![Message::Internal])
            }
        }
    }

    /// Renders every message of `reply`; a template failure becomes the
    /// apology (and is logged).
    fn render(&self, reply: Reply, lang: Lang) -> (Reply, Vec<(String, Option<String>)>) {
        let mut rendered = Vec::with_capacity(reply.messages.len());
        for message in &reply.messages {
            match message.render(&self.templates, lang) {
                Ok(r) => rendered.push((r.text, r.filename)),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), template = %message.template(), "rendering failed");
                    let apology = Message::Internal.render(&self.templates, lang).map(|r| r.text).unwrap_or_default();
                    return (Reply::error(UserError::UnknownInteraction), vec![(apology, None)]);
                }
            }
        }
        (reply, rendered)
    }

    fn reply(&self, reply: Reply, lang: Lang) -> Response {
        let (reply, rendered) = self.render(reply, lang);
        outbound::reply(&reply, rendered, self.ui(lang))
    }
}

/// serenity's REST client for `config`: Discord's API or a local stand-in.
/// Its own rate limiter is off: delivery retries are orglink's (outbox).
pub fn http_client(config: &DiscordConfig) -> Http {
    let token = config.token.as_ref().map(|t| t.expose().to_owned()).unwrap_or_default();
    let mut builder = HttpBuilder::new(token).ratelimiter_disabled(true);
    if config.api_base_url != crate::config::DISCORD_API_BASE_URL {
        builder = builder.proxy(config.api_base_url.clone());
    }
    if let Some(id) = config.application_id {
        builder = builder.application_id(id.get().into());
    }
    builder.build()
}

/// Sends the follow-up of a response (an edit of the original response),
/// retrying briefly: it may reach Discord before the response it edits.
pub async fn send_followup(http: Arc<Http>, token: String, followup: Option<FollowUp>) {
    let edit = match followup {
        None => return,
        Some(FollowUp::Ready(edit)) => edit,
        Some(FollowUp::Later(work)) => work.await,
    };
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=6 {
        // A Discord that does not answer counts as a failed attempt.
        let sent = tokio::time::timeout(notify::DISCORD_TIMEOUT, edit.clone().execute(&http, &token)).await;
        let error = match sent {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {:?}", notify::DISCORD_TIMEOUT),
        };
        if attempt == 6 {
            tracing::error!(error, "the follow-up of an interaction could not be sent");
            return;
        }
        tracing::debug!(error, attempt, "follow-up not accepted yet");
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}

/// Answers an interaction over REST (the gateway transport), then follows up.
pub async fn answer_over_rest(http: Arc<Http>, id: InteractionId, token: String, response: Response) {
    let span = tracing::info_span!("answer", interaction = %id);
    async move {
        if let Err(e) = response.immediate.execute(&http, (id, &token)).await {
            tracing::error!(error = %e, "the interaction response could not be sent");
            return;
        }
        send_followup(http, token, response.followup).await;
    }
    .instrument(span)
    .await
}

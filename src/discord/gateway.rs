//! The gateway transport: interactions arrive over Discord's websocket and
//! are answered over REST.

use std::sync::Arc;

use serenity::all::{ClientBuilder, Context, EventHandler, GatewayIntents, Http, Interaction, Ready};
use serenity::async_trait;

use super::Bot;
use crate::config::DiscordConfig;

struct Handler {
    bot: Arc<Bot>,
    http: Arc<Http>,
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
    }
}

/// Connects to the gateway and answers interactions until the connection
/// ends for good.
pub async fn run(bot: Arc<Bot>, config: &DiscordConfig) -> anyhow::Result<()> {
    let http = Arc::new(super::http_client(config));
    let mut client = ClientBuilder::new_with_http(super::http_client(config), GatewayIntents::GUILDS)
        .event_handler(Handler { bot, http })
        .await?;
    client.start_autosharded().await?;
    Ok(())
}

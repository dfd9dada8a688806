//! Delivers outbox events to the tenants' channels and the operations
//! channel, through serenity's REST client.
//!
//! Each event is posted at most once per destination: a delivered part is
//! remembered under its key before the next one goes, and Discord's nonce
//! (enforced) makes a retry after a lost answer return the message already
//! created. Failures are retried with backoff; an undeliverable event is
//! kept as a dead letter and reported to operations, never dropped. A
//! suspended tenant's channel hears nothing until the tenant is resumed:
//! the items wait, and operations still hear their part at once.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use serenity::all::{ChannelId, CreateEmbed, CreateMessage, Http, HttpError, Nonce};
use time::Duration;

use super::outbound::{self, Ui};
use crate::app::{AccountView, Message, NotificationView, Offer};
use crate::clock::Clock;
use crate::domain::{ChatId, Lang, effects};
use crate::store::{OutboxItem, Store};
use crate::templates::Templates;

/// Backoff after the n-th failure: 2 s doubling, at most 15 minutes.
pub fn backoff(attempts: u32) -> Duration {
    Duration::seconds(2i64.saturating_mul(1 << attempts.min(9)).min(15 * 60))
}

/// What one delivery round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    pub retried: usize,
    pub undeliverable: usize,
    /// Waiting for their tenant to be resumed.
    pub held: usize,
}

impl DeliveryReport {
    /// Whether the round sent, retried or gave up on anything (items that
    /// wait for their tenant do not count).
    pub fn did_something(&self) -> bool {
        self.delivered + self.retried + self.undeliverable > 0
    }
}

/// How far an item got.
enum Delivered {
    /// To everyone it is for: it leaves the outbox.
    All,
    /// Its tenant's part waits for the tenant to be resumed.
    Held,
}

pub struct Notifier {
    pub store: Store,
    pub http: Arc<Http>,
    pub templates: Templates,
    pub ops_channel: Option<ChatId>,
    pub default_lang: Lang,
    pub clock: Arc<dyn Clock>,
    /// How long one message may take before it counts as not delivered.
    pub timeout: StdDuration,
}

/// How long Discord may take to answer a message, unless told otherwise.
pub const DISCORD_TIMEOUT: StdDuration = StdDuration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    Tenant,
    Ops,
}

/// How a send failed.
enum Failure {
    /// Worth another try later.
    Transient(String),
    /// Will never work as things are; the reason code names why.
    Permanent(&'static str),
}

fn classify(error: &serenity::Error) -> Failure {
    if let serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) = error {
        let status = response.status_code.as_u16();
        return match status {
            404 => Failure::Permanent("channel_not_found"),
            403 => Failure::Permanent("missing_access"),
            400 => Failure::Permanent("rejected"),
            _ => Failure::Transient(format!("Discord answered {status}")),
        };
    }
    Failure::Transient(error.to_string())
}

/// A stable nonce (at most 25 characters) for a delivery key.
fn nonce(key: &str) -> String {
    // FNV-1a: stable across releases, unlike the standard hasher.
    let hash = key.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
    format!("ol{hash:016x}")
}

/// The key that records `item` delivered to `destination`: kept while the
/// item is pending, so a retry skips the destinations it reached.
fn delivery_key(item: &OutboxItem, destination: Destination) -> String {
    format!("{}#{:?}", item.dedupe_key, destination)
}

fn delivery_keys(item: &OutboxItem) -> [String; 2] {
    [delivery_key(item, Destination::Tenant), delivery_key(item, Destination::Ops)]
}

impl Notifier {
    /// Delivers every item that is due now.
    pub async fn deliver_due(&self) -> anyhow::Result<DeliveryReport> {
        let mut report = DeliveryReport::default();
        for item in self.store.outbox_due(self.clock.now())? {
            let account = item.event.account().map(|a| a.to_string()).unwrap_or_default();
            let span = tracing::info_span!("notify", tenant = %item.tenant, event = item.event.code(), %account);
            let _entered = span.enter();
            match self.deliver(&item).await {
                Ok(Delivered::Held) => report.held += 1,
                Ok(Delivered::All) => {
                    let (done, keys) = (item.clone(), delivery_keys(&item));
                    self.write(move |store| store.outbox_delivered(&done, &keys)).await?;
                    report.delivered += 1;
                }
                Err(Failure::Transient(error)) => {
                    let next = self.clock.now() + backoff(item.attempts);
                    tracing::warn!(%error, attempts = item.attempts + 1, "notification not delivered; will retry");
                    let failed = item.clone();
                    self.write(move |store| store.outbox_retry_later(&failed, next, &error)).await?;
                    report.retried += 1;
                }
                Err(Failure::Permanent(reason)) => {
                    tracing::error!(reason, "notification undeliverable; reported to operations");
                    let notice = effects::undeliverable(&item.event, reason);
                    let (dead, keys, at) = (item.clone(), delivery_keys(&item), self.clock.now());
                    self.write(move |store| store.outbox_dead(&dead, &keys, reason, at, notice)).await?;
                    report.undeliverable += 1;
                }
            }
        }
        Ok(report)
    }

    /// Runs a store write off the async threads (it waits for the disk).
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, crate::store::StoreError> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || work(&store)).await {
            Ok(result) => result,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    async fn deliver(&self, item: &OutboxItem) -> Result<Delivered, Failure> {
        let store_error = |e: crate::store::StoreError| Failure::Transient(e.to_string());
        // A tenant's own events have no account, and an event that stands
        // alone shows only what it holds (its tenant may have no claim: a
        // registration refused); an account's are about the tenant's claim
        // on it (a tenant whose claim moved to another hears of it about the
        // account as it now is).
        let view = match item.event.account().filter(|_| !item.event.stands_alone()) {
            Some(id) => match self.store.claim(id, &item.tenant).map_err(store_error)? {
                Some(claim) => Some(AccountView::from(claim)),
                None => match self.store.account(id).map_err(store_error)? {
                    Some(account) => Some(AccountView::from(account)),
                    None => return Err(Failure::Permanent("rejected")),
                },
            },
            None => None,
        };
        let audience = item.audience;
        let settings = self.store.tenant_settings(&item.tenant).map_err(store_error)?;
        let on_hold = self.store.tenant_status(&item.tenant).map_err(store_error)?.is_some_and(|s| s.state.on_hold());
        let mut held = false;
        for (wanted, destination) in [(audience.tenant, Destination::Tenant), (audience.ops, Destination::Ops)] {
            if !wanted {
                continue;
            }
            if destination == Destination::Tenant && on_hold {
                held = true;
                continue;
            }
            let key = delivery_key(item, destination);
            if self.store.was_delivered(&key).map_err(store_error)? {
                continue;
            }
            let (channel, lang) = match destination {
                Destination::Tenant => (settings.channel, settings.language.unwrap_or(self.default_lang)),
                Destination::Ops => (self.ops_channel, self.default_lang),
            };
            let Some(channel) = channel else {
                return Err(Failure::Permanent(effects::NO_CHANNEL));
            };
            let for_ops = destination == Destination::Ops;
            let message = Message::Notification(Box::new(NotificationView {
                event: item.event.clone(),
                account: view.clone(),
                tenant: item.tenant.to_string(),
                for_ops,
            }));
            let rendering_failed = |e: anyhow::Error| {
                tracing::error!(error = format!("{e:#}"), template = %message.template(), "rendering a notification failed");
                Failure::Permanent("rejected")
            };
            let text = message.render(&self.templates.for_discord(), lang).map_err(|e| rendering_failed(e.into()))?;
            let offers = Offer::for_notice(&item.event, for_ops);
            let components = if offers.is_empty() {
                Vec::new()
            } else {
                outbound::buttons(&offers, &Ui::load(&self.templates, lang).map_err(rendering_failed)?)
            };
            let message = CreateMessage::new()
                .allowed_mentions(outbound::no_mentions())
                .embed(CreateEmbed::new().description(text.text).colour(outbound::colour(item.tone)))
                .components(components)
                .nonce(Nonce::String(nonce(&key)))
                .enforce_nonce(true);
            // A Discord that does not answer must not hold up the others.
            match tokio::time::timeout(self.timeout, ChannelId::new(channel.get()).send_message(&self.http, message))
                .await
            {
                Ok(Ok(_)) => {
                    let at = self.clock.now();
                    self.write(move |store| store.mark_delivered(&key, at)).await.map_err(store_error)?
                }
                Ok(Err(e)) => return Err(classify(&e)),
                Err(_) => return Err(Failure::Transient(format!("no answer from Discord within {:?}", self.timeout))),
            }
        }
        Ok(if held { Delivered::Held } else { Delivered::All })
    }

    /// Delivers whenever woken, and at least every `interval`, until
    /// `shutdown` resolves.
    /// Each finished round counts in `rounds`.
    pub async fn run(
        self,
        wake: Arc<tokio::sync::Notify>,
        rounds: Arc<tokio::sync::watch::Sender<u64>>,
        interval: StdDuration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            match self.deliver_due().await {
                Ok(report) if report.did_something() => tracing::info!(?report, "notifications"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = format!("{e:#}"), "the notification round failed"),
            }
            rounds.send_modify(|n| *n += 1);
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(interval) => {}
                _ = &mut shutdown => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0), Duration::seconds(2));
        assert_eq!(backoff(1), Duration::seconds(4));
        assert_eq!(backoff(5), Duration::seconds(64));
        assert_eq!(backoff(30), Duration::minutes(15));
    }

    #[test]
    fn nonces_are_short_and_stable() {
        let n = nonce("account_registered:123456789012:1#Tenant");
        assert!(n.len() <= 25);
        assert_eq!(n, nonce("account_registered:123456789012:1#Tenant"));
        assert_ne!(n, nonce("account_registered:123456789012:1#Ops"));
    }
}

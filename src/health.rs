//! What counts as healthy, in one place: `orglink doctor`, `serve`'s
//! start-up and `/healthz` all judge by [`Health::healthy`].

use time::OffsetDateTime;

use crate::config::{DiscordConfig, Transport};
use crate::domain::AccountId;

/// Whether a Discord transport runs: the gateway (a bot token) or the HTTP
/// interactions endpoint (a public key), as `discord.transports` chooses.
/// Without one, `serve` still runs the jobs, the CLI's socket and
/// `/healthz` and `/metrics`: operations work from the command line, and no
/// reseller is kept waiting on a bot that was never offered. So it is
/// reported, not judged.
pub fn has_transport(discord: &DiscordConfig) -> bool {
    Transport::ALL.into_iter().any(|t| discord.runs(t))
}

/// Where a transport stands, as `/healthz` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Link {
    /// Not run (`discord.transports`, or no credential).
    Off,
    /// Taking interactions: the HTTP endpoint listens; the gateway has a
    /// session (READY or RESUMED).
    Connected {
        #[serde(with = "crate::domain::instant")]
        since: OffsetDateTime,
    },
    /// Not (yet, or any more) taking interactions, and trying.
    Connecting {
        /// Since when it has not been connected.
        #[serde(with = "crate::domain::instant")]
        since: OffsetDateTime,
        /// The gateway's client started since then, this one included.
        attempts: u32,
        /// Why the last attempt failed, if one did.
        last_error: Option<String>,
        /// That failure is orglink's configuration (Discord rejected the
        /// token): it is retried slowly, and `doctor` shows it.
        configuration_error: bool,
    },
}

impl Link {
    /// Whether it takes interactions now, or has been down no longer than
    /// `grace` (a reconnect in progress is not an outage).
    pub fn takes_interactions(&self, now: OffsetDateTime, grace: time::Duration) -> bool {
        match self {
            Self::Off => false,
            Self::Connected { .. } => true,
            Self::Connecting { since, .. } => now - *since <= grace,
        }
    }
}

/// The gateway's state as its supervisor and serenity's events move it;
/// pure, so its rules are tested here. Each run of serenity's client is a
/// generation: what an earlier one reports, still closing, is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayLink {
    pub link: Link,
    generation: u64,
    /// Whether the current generation has had a session (so a new one is a
    /// reconnect made by serenity itself).
    had_session: bool,
}

/// What a change of the gateway's state means for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Moved {
    /// It connected or lost its connection.
    pub connected: Option<bool>,
    /// A reconnect: a client started again, or a session serenity resumed or
    /// identified again on its own.
    pub reconnect: bool,
}

impl GatewayLink {
    /// Down since `now`, before the first attempt.
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            link: Link::Connecting { since: now, attempts: 0, last_error: None, configuration_error: false },
            generation: 0,
            had_session: false,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The supervisor starts serenity's client again: a new generation.
    pub fn attempt(&mut self, now: OffsetDateTime) -> (u64, Moved) {
        self.generation += 1;
        self.had_session = false;
        let reconnect = self.generation > 1;
        let connected = matches!(self.link, Link::Connected { .. });
        self.link = match std::mem::replace(&mut self.link, Link::Off) {
            Link::Connecting { since, attempts, last_error, configuration_error } => {
                Link::Connecting { since, attempts: attempts + 1, last_error, configuration_error }
            }
            Link::Connected { .. } | Link::Off => {
                Link::Connecting { since: now, attempts: 1, last_error: None, configuration_error: false }
            }
        };
        (self.generation, Moved { connected: connected.then_some(false), reconnect })
    }

    /// Whether the current generation has had a session.
    pub fn had_session(&self) -> bool {
        self.had_session
    }

    /// Generation `generation` got a session: serenity's READY or RESUMED.
    /// A second one in the same generation is serenity's own reconnect.
    pub fn session(&mut self, generation: u64, now: OffsetDateTime) -> Moved {
        if generation != self.generation {
            return Moved::default();
        }
        let reconnect = std::mem::replace(&mut self.had_session, true);
        let mut moved = self.seen(generation, now, true, "");
        moved.reconnect = reconnect;
        moved
    }

    /// What generation `generation`'s shards were seen doing: all
    /// connected (`up`), or not, for `cause` (serenity lost the session and
    /// is reconnecting).
    pub fn seen(&mut self, generation: u64, now: OffsetDateTime, up: bool, cause: &str) -> Moved {
        if generation != self.generation {
            return Moved::default();
        }
        match (&self.link, up) {
            (Link::Connected { .. }, true) | (Link::Connecting { .. } | Link::Off, false) => Moved::default(),
            (_, true) => {
                self.link = Link::Connected { since: now };
                Moved { connected: Some(true), reconnect: false }
            }
            (Link::Connected { .. }, false) => {
                self.link = Link::Connecting {
                    since: now,
                    attempts: 1,
                    last_error: Some(cause.to_owned()),
                    configuration_error: false,
                };
                Moved { connected: Some(false), reconnect: false }
            }
        }
    }

    /// Generation `generation`'s client ended (or never started) for
    /// `cause`.
    pub fn failed(&mut self, generation: u64, now: OffsetDateTime, cause: &str, configuration: bool) -> Moved {
        if generation != self.generation {
            return Moved::default();
        }
        let (since, attempts, connected) = match &self.link {
            Link::Connecting { since, attempts, .. } => (*since, *attempts, false),
            Link::Connected { .. } | Link::Off => (now, 1, true),
        };
        self.link = Link::Connecting {
            since,
            attempts,
            last_error: Some(cause.to_owned()),
            configuration_error: configuration,
        };
        Moved { connected: connected.then_some(false), reconnect: false }
    }
}

/// Whether interactions can reach orglink: some transport that takes them
/// does, or has been down no longer than `grace`. With none run at all,
/// nothing is expected (see [`has_transport`]).
pub fn interactions_taken(links: &[Link], now: OffsetDateTime, grace: time::Duration) -> bool {
    let mut run = links.iter().filter(|l| **l != Link::Off).peekable();
    run.peek().is_none() || run.any(|l| l.takes_interactions(now, grace))
}

/// orglink's AWS identity against the platform's cross-account ID, which
/// every customer role trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// orglink runs as the platform's account.
    Platform,
    /// orglink runs as another account: every verification will fail.
    Other(String),
    /// The identity could not be read (the cause, as text).
    Unknown(String),
}

impl Identity {
    /// Judges `own`, the account orglink runs as (or why it is not known).
    pub fn of(own: Result<String, String>, cross_account_id: AccountId) -> Self {
        match own {
            Ok(account) if account == cross_account_id.as_str() => Self::Platform,
            Ok(account) => Self::Other(account),
            Err(cause) => Self::Unknown(cause),
        }
    }
}

/// What was checked. A check not made (`/healthz` does not call AWS on
/// each request, `doctor` runs no jobs) is left out of the verdict.
#[derive(Debug, Clone)]
pub struct Health {
    /// The store can be written and flushed (else why not).
    pub store: Result<(), String>,
    pub identity: Option<Identity>,
    /// Scheduled jobs that have not succeeded for too many intervals.
    pub stale_jobs: usize,
    /// Whether interactions can reach orglink ([`interactions_taken`]);
    /// `true` where not judged.
    pub interactions: bool,
}

impl Health {
    pub fn healthy(&self) -> bool {
        self.store.is_ok()
            && self.identity.as_ref().is_none_or(|i| *i == Identity::Platform)
            && self.stale_jobs == 0
            && self.interactions
    }
}

/// How long a store check stands for `/healthz`: a probe every few seconds
/// (a load balancer's, Kubernetes') does not write and flush the store each
/// time, yet a store that stopped taking writes shows within this.
pub const STORE_CHECK_FOR: time::Duration = time::Duration::seconds(10);

/// The last store check and when it was made.
#[derive(Debug, Clone, Default)]
pub struct CachedCheck {
    last: Option<(time::OffsetDateTime, Result<(), String>)>,
}

impl CachedCheck {
    /// The last result, if it was made within [`STORE_CHECK_FOR`] of `now`
    /// (a clock that went back makes it stale too).
    pub fn fresh(&self, now: time::OffsetDateTime) -> Option<Result<(), String>> {
        let (at, result) = self.last.as_ref()?;
        (*at <= now && now - *at < STORE_CHECK_FOR).then(|| result.clone())
    }

    pub fn record(&mut self, at: time::OffsetDateTime, result: Result<(), String>) {
        self.last = Some((at, result));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_check_stands_for_ten_seconds() {
        let at = time::macros::datetime!(2026-12-01 12:00 UTC);
        let mut cached = CachedCheck::default();
        assert_eq!(cached.fresh(at), None);
        cached.record(at, Err("read-only".into()));
        assert_eq!(cached.fresh(at + time::Duration::seconds(9)), Some(Err("read-only".into())));
        assert_eq!(cached.fresh(at + STORE_CHECK_FOR), None);
        assert_eq!(cached.fresh(at - time::Duration::seconds(1)), None);
    }

    const T0: OffsetDateTime = time::macros::datetime!(2026-12-01 12:00 UTC);

    fn connecting(link: &Link) -> (u32, Option<&str>, bool) {
        match link {
            Link::Connecting { attempts, last_error, configuration_error, .. } => {
                (*attempts, last_error.as_deref(), *configuration_error)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_gateway_counts_attempts_until_a_session_and_ignores_old_clients() {
        let s = time::Duration::seconds;
        let mut g = GatewayLink::new(T0);
        let (first, moved) = g.attempt(T0);
        assert_eq!(moved, Moved { connected: None, reconnect: false }, "the first start is no reconnect");
        g.failed(first, T0 + s(1), "GET /gateway/bot: connection refused", false);
        let (second, moved) = g.attempt(T0 + s(2));
        assert!(moved.reconnect);
        assert_eq!(connecting(&g.link), (2, Some("GET /gateway/bot: connection refused"), false));
        // Down since the start, whatever the attempts.
        assert!(matches!(g.link, Link::Connecting { since, .. } if since == T0));
        // The first client, closing late, changes nothing.
        assert_eq!(g.session(first, T0 + s(3)), Moved::default());
        assert_eq!(g.seen(first, T0 + s(3), true, ""), Moved::default());
        assert!(!g.had_session());
        assert_eq!(g.session(second, T0 + s(3)), Moved { connected: Some(true), reconnect: false });
        assert_eq!(g.link, Link::Connected { since: T0 + s(3) });
        assert!(g.had_session());
        assert_eq!(g.seen(second, T0 + s(4), true, ""), Moved::default(), "connected once");
        // Serenity loses the session and gets it back itself: a reconnect.
        let lost = g.seen(second, T0 + s(10), false, "session lost");
        assert_eq!(lost, Moved { connected: Some(false), reconnect: false });
        assert_eq!(connecting(&g.link), (1, Some("session lost"), false));
        assert_eq!(g.seen(second, T0 + s(11), false, "again"), Moved::default(), "already down");
        assert_eq!(g.session(second, T0 + s(12)), Moved { connected: Some(true), reconnect: true });
        // A resume too quick to be seen down is still a reconnect.
        assert_eq!(g.session(second, T0 + s(13)), Moved { connected: None, reconnect: true });
        // The client ends while connected: down from then.
        g.failed(second, T0 + s(20), "Discord rejected the token", true);
        assert_eq!(connecting(&g.link), (1, Some("Discord rejected the token"), true));
        assert!(matches!(g.link, Link::Connecting { since, .. } if since == T0 + s(20)));
    }

    #[test]
    fn health_fails_when_no_transport_has_taken_interactions_for_the_grace() {
        let s = time::Duration::seconds;
        let grace = s(60);
        let down = Link::Connecting { since: T0, attempts: 3, last_error: None, configuration_error: false };
        let up = Link::Connected { since: T0 };
        // The gateway alone, down: healthy within the grace, not after.
        assert!(interactions_taken(&[down.clone(), Link::Off], T0 + s(60), grace));
        assert!(!interactions_taken(&[down.clone(), Link::Off], T0 + s(61), grace));
        // The HTTP endpoint takes them meanwhile.
        assert!(interactions_taken(&[down.clone(), up.clone()], T0 + s(600), grace));
        assert!(interactions_taken(&[up, Link::Off], T0 + s(600), grace));
        // No transport at all: nothing to judge.
        assert!(interactions_taken(&[Link::Off, Link::Off], T0, grace));
        // No grace: down is down.
        assert!(!interactions_taken(&[down], T0 + s(1), time::Duration::ZERO));
    }

    #[test]
    fn links_show_as_healthz_reports_them() {
        let json = |l: &Link| serde_json::to_value(l).unwrap();
        assert_eq!(json(&Link::Off), serde_json::json!({ "state": "off" }));
        assert_eq!(
            json(&Link::Connected { since: T0 }),
            serde_json::json!({ "state": "connected", "since": "2026-12-01T12:00:00Z" })
        );
        let down =
            Link::Connecting { since: T0, attempts: 2, last_error: Some("refused".into()), configuration_error: false };
        assert_eq!(
            json(&down),
            serde_json::json!({ "state": "connecting", "since": "2026-12-01T12:00:00Z", "attempts": 2,
                "last_error": "refused", "configuration_error": false })
        );
    }

    #[test]
    fn every_check_made_must_pass() {
        let cross: AccountId = "123456789012".parse().unwrap();
        let ok = Health { store: Ok(()), identity: None, stale_jobs: 0, interactions: true };
        assert!(ok.healthy());
        assert!(Health { identity: Some(Identity::of(Ok("123456789012".into()), cross)), ..ok.clone() }.healthy());
        for bad in [
            Health { store: Err("full".into()), ..ok.clone() },
            Health { identity: Some(Identity::of(Ok("333300000001".into()), cross)), ..ok.clone() },
            Health { identity: Some(Identity::of(Err("no credentials".into()), cross)), ..ok.clone() },
            Health { stale_jobs: 1, ..ok.clone() },
            Health { interactions: false, ..ok.clone() },
        ] {
            assert!(!bad.healthy(), "{bad:?}");
        }
    }
}

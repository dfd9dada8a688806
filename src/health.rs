//! What counts as healthy, in one place: `orglink doctor`, `serve`'s
//! start-up and `/healthz` all judge by [`Health::healthy`].

use crate::config::DiscordConfig;
use crate::domain::AccountId;

/// Whether a Discord transport is configured: the gateway (a bot token) or
/// the HTTP interactions endpoint (a public key). Without one, `serve` still
/// runs the jobs, the CLI's socket and `/healthz` and `/metrics`: operations
/// work from the command line, and no reseller is kept waiting on a bot that
/// was never offered. So it is reported, not judged.
pub fn has_transport(discord: &DiscordConfig) -> bool {
    discord.token.is_some() || discord.public_key.is_some()
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
}

impl Health {
    pub fn healthy(&self) -> bool {
        self.store.is_ok() && self.identity.as_ref().is_none_or(|i| *i == Identity::Platform) && self.stale_jobs == 0
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

    #[test]
    fn every_check_made_must_pass() {
        let cross: AccountId = "123456789012".parse().unwrap();
        let ok = Health { store: Ok(()), identity: None, stale_jobs: 0 };
        assert!(ok.healthy());
        assert!(Health { identity: Some(Identity::of(Ok("123456789012".into()), cross)), ..ok.clone() }.healthy());
        for bad in [
            Health { store: Err("full".into()), ..ok.clone() },
            Health { identity: Some(Identity::of(Ok("333300000001".into()), cross)), ..ok.clone() },
            Health { identity: Some(Identity::of(Err("no credentials".into()), cross)), ..ok.clone() },
            Health { stale_jobs: 1, ..ok.clone() },
        ] {
            assert!(!bad.healthy(), "{bad:?}");
        }
    }
}

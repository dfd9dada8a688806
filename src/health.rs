//! What counts as healthy, in one place: `orglink doctor`, `serve`'s
//! start-up and `/healthz` all judge by [`Health::healthy`].

use crate::config::DiscordConfig;
use crate::domain::AccountId;

/// Whether a Discord transport is configured: the gateway (a bot token) or
/// the HTTP interactions endpoint (a public key). Without one, `serve` has
/// nothing to serve.
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
    /// A Discord transport is configured.
    pub transport: bool,
    pub identity: Option<Identity>,
    /// Scheduled jobs that have not succeeded for too many intervals.
    pub stale_jobs: usize,
}

impl Health {
    pub fn healthy(&self) -> bool {
        self.store.is_ok()
            && self.transport
            && self.identity.as_ref().is_none_or(|i| *i == Identity::Platform)
            && self.stale_jobs == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_made_must_pass() {
        let cross: AccountId = "123456789012".parse().unwrap();
        let ok = Health { store: Ok(()), transport: true, identity: None, stale_jobs: 0 };
        assert!(ok.healthy());
        assert!(Health { identity: Some(Identity::of(Ok("123456789012".into()), cross)), ..ok.clone() }.healthy());
        for bad in [
            Health { store: Err("full".into()), ..ok.clone() },
            Health { transport: false, ..ok.clone() },
            Health { identity: Some(Identity::of(Ok("333300000001".into()), cross)), ..ok.clone() },
            Health { identity: Some(Identity::of(Err("no credentials".into()), cross)), ..ok.clone() },
            Health { stale_jobs: 1, ..ok.clone() },
        ] {
            assert!(!bad.healthy(), "{bad:?}");
        }
    }
}

//! What operations may do with the notifications that wait to go out (the
//! outbox) and with those that could not be delivered (dead letters), and
//! why a waiting one cannot go now. Pure and table-tested; the store keeps
//! the items and decides nothing.

use serde::Serialize;

use super::{Audience, ParseError};

/// An outbox item's or dead letter's number, as `orglink outbox` shows it
/// (IDs are never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct OutboxId(u64);

impl OutboxId {
    pub fn new(id: u64) -> Self {
        Self(id)
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::str::FromStr for OutboxId {
    type Err = ParseError;

    /// Digits only, as the list shows them (a leading `#` is forgiven).
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = super::trim_pasted(input);
        let digits = trimmed.strip_prefix('#').unwrap_or(trimmed);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::OutboxId { input: super::quote_input(input) });
        }
        digits.parse().map(Self).map_err(|_| ParseError::OutboxId { input: super::quote_input(input) })
    }
}

impl std::fmt::Display for OutboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an item is: waiting to go out, or given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    Pending,
    Dead,
}

/// Why operations may not do what they asked with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxRefusal {
    /// Only a dead letter goes back to the outbox: a pending item is there
    /// already, and the notifier tries it as its backoff says.
    NotDead,
}

/// Whether an item in `queue` may be put back in the outbox, as new.
pub fn may_replay(queue: Queue) -> Result<(), OutboxRefusal> {
    match queue {
        Queue::Dead => Ok(()),
        Queue::Pending => Err(OutboxRefusal::NotDead),
    }
}

/// Whether an item in `queue` may be dropped (with a reason, audited): a
/// pending one (its tenant will never set a channel, say) and a dead
/// letter alike.
pub fn may_drop(queue: Queue) -> Result<(), OutboxRefusal> {
    match queue {
        Queue::Pending | Queue::Dead => Ok(()),
    }
}

/// Why a pending notification cannot go out as things are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Blocked {
    /// It is for the tenant, which has set no notification channel: the
    /// notifier gives it up (a dead letter that comes back once a channel
    /// is set).
    NoChannel,
    /// Its tenant is suspended: the tenant's part waits for its resumption.
    TenantSuspended,
}

/// What stops a pending notice for `audience` of a tenant that has a
/// channel (`has_channel`) or not, and is on hold (`on_hold`) or not.
pub fn blocked(audience: Audience, has_channel: bool, on_hold: bool) -> Option<Blocked> {
    if !audience.tenant {
        return None;
    }
    if on_hold {
        Some(Blocked::TenantSuspended)
    } else if !has_channel {
        Some(Blocked::NoChannel)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_letters_are_replayed_and_anything_may_be_dropped() {
        let table = [(Queue::Pending, Err(OutboxRefusal::NotDead), Ok(())), (Queue::Dead, Ok(()), Ok(()))];
        for (queue, replay, drop) in table {
            assert_eq!(may_replay(queue), replay, "{queue:?}");
            assert_eq!(may_drop(queue), drop, "{queue:?}");
        }
    }

    #[test]
    fn what_stops_a_pending_notice() {
        use Blocked::*;
        // (audience, has channel, on hold, blocked)
        let table = [
            (Audience::TENANT, false, false, Some(NoChannel)),
            (Audience::TENANT, true, false, None),
            (Audience::TENANT, true, true, Some(TenantSuspended)),
            (Audience::TENANT, false, true, Some(TenantSuspended)),
            (Audience::BOTH, false, false, Some(NoChannel)),
            (Audience::OPS, false, false, None),
            (Audience::OPS, false, true, None),
        ];
        for (audience, has_channel, on_hold, expected) in table {
            assert_eq!(blocked(audience, has_channel, on_hold), expected, "{audience:?} {has_channel} {on_hold}");
        }
    }

    #[test]
    fn ids_are_digits() {
        assert_eq!("42".parse(), Ok(OutboxId(42)));
        assert_eq!(" #7 ".parse(), Ok(OutboxId(7)));
        for bad in ["", "#", "-1", "1e3", "x", "99999999999999999999999"] {
            assert!(matches!(bad.parse::<OutboxId>(), Err(ParseError::OutboxId { .. })), "{bad:?}");
        }
    }
}

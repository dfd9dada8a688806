//! Sliding minutes: a ceiling on calls per minute, and the uses of the
//! last minute per key that a per-minute quota counts.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use time::{Duration, OffsetDateTime};

/// Calls made in the last minute, against a ceiling.
#[derive(Debug)]
pub struct RateWindow {
    per_minute: u32,
    calls: VecDeque<(OffsetDateTime, u32)>,
}

impl RateWindow {
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, calls: VecDeque::new() }
    }

    /// The calls that may still be made at `now` without going over the
    /// ceiling in any minute.
    pub fn available(&mut self, now: OffsetDateTime) -> u32 {
        while self.calls.front().is_some_and(|(at, _)| *at <= now - Duration::MINUTE) {
            self.calls.pop_front();
        }
        let made: u32 = self.calls.iter().map(|(_, n)| n).sum();
        self.per_minute.saturating_sub(made)
    }

    pub fn record(&mut self, at: OffsetDateTime, calls: u32) {
        if calls > 0 {
            self.calls.push_back((at, calls));
        }
    }
}

/// What was done in the last minute, per key (an account and its tenant).
/// In memory: a restart forgets at most a minute of it, which a per-minute
/// limit can afford; nothing here outlives its minute.
#[derive(Debug)]
pub struct LastMinute<K> {
    uses: HashMap<K, Vec<OffsetDateTime>>,
}

impl<K> Default for LastMinute<K> {
    fn default() -> Self {
        Self { uses: HashMap::new() }
    }
}

impl<K: Eq + Hash> LastMinute<K> {
    /// Records a use of `key` at `now` if `allows`, shown the uses of the
    /// last minute, says so; otherwise records nothing and returns why not.
    pub fn record_if<E>(
        &mut self,
        key: K,
        now: OffsetDateTime,
        allows: impl FnOnce(&[OffsetDateTime]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.uses.retain(|_, times| {
            times.retain(|at| *at > now - Duration::MINUTE);
            !times.is_empty()
        });
        let recent = self.uses.get(&key).map_or(&[][..], Vec::as_slice);
        allows(recent)?;
        self.uses.entry(key).or_default().push(now);
        Ok(())
    }

    /// Keys with a use in the last minute, as of the last record.
    #[cfg(test)]
    fn keys(&self) -> usize {
        self.uses.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn calls_count_for_one_minute() {
        let t = datetime!(2026-11-26 12:00 UTC);
        let mut window = RateWindow::new(10);
        assert_eq!(window.available(t), 10);
        window.record(t, 4);
        window.record(t + Duration::seconds(30), 5);
        assert_eq!(window.available(t + Duration::seconds(30)), 1);
        assert_eq!(window.available(t + Duration::seconds(59)), 1);
        assert_eq!(window.available(t + Duration::seconds(60)), 5, "the first calls are a minute old");
        assert_eq!(window.available(t + Duration::seconds(90)), 10);
        window.record(t + Duration::seconds(90), 12);
        assert_eq!(window.available(t + Duration::seconds(91)), 0, "never negative");
    }

    #[test]
    fn the_last_minute_counts_per_key_and_forgets_what_is_older() {
        let t = datetime!(2026-11-26 12:00 UTC);
        let mut last = LastMinute::default();
        let at_most_two = |recent: &[OffsetDateTime]| if recent.len() < 2 { Ok(()) } else { Err(recent.len()) };
        assert_eq!(last.record_if("a", t, at_most_two), Ok(()));
        assert_eq!(last.record_if("a", t + Duration::seconds(10), at_most_two), Ok(()));
        assert_eq!(last.record_if("a", t + Duration::seconds(20), at_most_two), Err(2), "refused: not recorded");
        assert_eq!(last.record_if("b", t + Duration::seconds(20), at_most_two), Ok(()), "another key");
        assert_eq!(last.record_if("a", t + Duration::seconds(60), at_most_two), Ok(()), "the first is a minute old");
        assert_eq!(last.record_if("c", t + Duration::seconds(200), at_most_two), Ok(()));
        assert_eq!(last.keys(), 1, "keys without a use in the last minute are forgotten");
    }
}

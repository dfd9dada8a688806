//! The interaction IDs the HTTP endpoint has run, remembered long enough
//! that a signed request replayed within its timestamp window is refused.

use std::collections::{HashSet, VecDeque};

use time::{Duration, OffsetDateTime};

/// How long an interaction ID is remembered. A timestamp is accepted up to
/// [`super::endpoint::MAX_REQUEST_AGE_SECS`] either side of the endpoint's
/// clock (in whole seconds), so one signed request can arrive at any time
/// over twice that and a second: remembered for longer (a minute to spare)
/// after it was first seen, it is never run twice.
pub const REMEMBERED_FOR: Duration = Duration::seconds(2 * super::endpoint::MAX_REQUEST_AGE_SECS + 60);

/// At most this many IDs are remembered, about 3 MiB when full: 150 a
/// second for the whole [`REMEMBERED_FOR`], far above what Discord sends
/// one bot. Past it the oldest is forgotten first; a replay of it is still
/// refused by its timestamp once that is out of the window.
pub const MAX_REMEMBERED: usize = 100_000;

/// Interaction IDs seen, in the order they were first seen, each with when
/// (Unix time, whole seconds: 16 bytes an entry).
#[derive(Debug)]
pub struct SeenInteractions {
    remembered_for: i64,
    max: usize,
    order: VecDeque<(i64, u64)>,
    ids: HashSet<u64>,
}

impl Default for SeenInteractions {
    fn default() -> Self {
        Self::new(REMEMBERED_FOR, MAX_REMEMBERED)
    }
}

impl SeenInteractions {
    pub fn new(remembered_for: Duration, max: usize) -> Self {
        let remembered_for = remembered_for.whole_seconds();
        Self { remembered_for, max: max.max(1), order: VecDeque::new(), ids: HashSet::new() }
    }

    /// Records `id` as seen at `now`: `true` the first time, `false` when it
    /// was seen in the last [`REMEMBERED_FOR`] (a replay).
    pub fn first_sighting(&mut self, id: u64, now: OffsetDateTime) -> bool {
        let now = now.unix_timestamp();
        self.forget_from(now.saturating_sub(self.remembered_for));
        if self.ids.contains(&id) {
            return false;
        }
        if self.order.len() >= self.max
            && let Some((_, oldest)) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        self.order.push_back((now, id));
        self.ids.insert(id);
        true
    }

    /// IDs remembered now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Forgets the IDs first seen at or before `cutoff`. Seen in order, so
    /// the oldest are at the front; a clock set back only keeps an ID longer.
    fn forget_from(&mut self, cutoff: i64) {
        while let Some((at, id)) = self.order.front().copied()
            && at <= cutoff
        {
            self.order.pop_front();
            self.ids.remove(&id);
        }
        // A burst's capacity is given back once it has passed.
        if self.order.capacity() > 4 * self.order.len().max(1024) {
            self.order.shrink_to_fit();
            self.ids.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T: OffsetDateTime = datetime!(2026-11-26 12:00 UTC);

    #[test]
    fn an_id_is_refused_for_longer_than_any_timestamp_is_accepted() {
        let window = Duration::seconds(crate::discord::endpoint::MAX_REQUEST_AGE_SECS);
        // Stamped a window ahead of the clock when first seen, in the same
        // second: the request is acceptable until two windows later.
        let acceptable_until = T + window * 2 + Duration::milliseconds(999);
        assert!(REMEMBERED_FOR > acceptable_until - T);
        let mut seen = SeenInteractions::default();
        assert!(seen.first_sighting(7, T));
        assert!(!seen.first_sighting(7, T + Duration::seconds(2)), "replayed 2 s later");
        assert!(!seen.first_sighting(7, acceptable_until));
        assert!(seen.first_sighting(8, T + Duration::minutes(5)));
        // Eleven minutes after it was first seen (not after its replays).
        assert!(!seen.first_sighting(7, T + REMEMBERED_FOR - Duration::seconds(1)));
        assert!(seen.first_sighting(7, T + REMEMBERED_FOR), "forgotten");
        assert!(!seen.first_sighting(8, T + REMEMBERED_FOR), "8 is 6 minutes old");
        assert_eq!(seen.len(), 2);
        assert!(seen.first_sighting(9, T + Duration::minutes(30)));
        assert_eq!(seen.len(), 1, "the others are forgotten");
    }

    #[test]
    fn past_the_bound_the_oldest_is_forgotten_first() {
        let mut seen = SeenInteractions::new(REMEMBERED_FOR, 3);
        for id in 1..=3 {
            assert!(seen.first_sighting(id, T + Duration::seconds(id as i64)));
        }
        assert!(seen.first_sighting(4, T + Duration::seconds(4)));
        assert_eq!(seen.len(), 3, "never more than the bound");
        assert!(seen.first_sighting(1, T + Duration::seconds(5)), "the oldest went first");
        assert!(!seen.first_sighting(3, T + Duration::seconds(5)));
        assert!(!seen.first_sighting(4, T + Duration::seconds(5)));
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn a_flood_stays_within_the_bound_and_its_memory_is_given_back() {
        let mut seen = SeenInteractions::default();
        for id in 0..(MAX_REMEMBERED as u64 + 5_000) {
            seen.first_sighting(id, T + Duration::milliseconds(id as i64));
            assert!(seen.len() <= MAX_REMEMBERED);
        }
        assert_eq!(seen.len(), MAX_REMEMBERED);
        assert_eq!(seen.ids.len(), MAX_REMEMBERED);
        assert!(!seen.first_sighting(MAX_REMEMBERED as u64, T + Duration::minutes(2)));
        assert!(seen.first_sighting(0, T + Duration::minutes(2)), "among the first forgotten");
        // An hour later, one ID: the flood's capacity is released.
        assert!(seen.first_sighting(u64::MAX, T + Duration::hours(1)));
        assert_eq!(seen.len(), 1);
        assert!(seen.order.capacity() < 10_000 && seen.ids.capacity() < 10_000);
    }

    #[test]
    fn a_clock_set_back_keeps_ids_no_shorter() {
        let mut seen = SeenInteractions::default();
        assert!(seen.first_sighting(1, T));
        assert!(!seen.first_sighting(1, T - Duration::hours(1)));
        assert!(seen.first_sighting(2, T - Duration::hours(1)));
        assert!(!seen.first_sighting(2, T + Duration::minutes(5)), "still remembered");
    }
}

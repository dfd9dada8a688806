//! A ceiling on calls per minute, held over a sliding window.

use std::collections::VecDeque;

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
}

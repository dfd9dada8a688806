//! How long to wait before trying again: exponential backoff with jitter,
//! a pure schedule (the jitter is given, not drawn here), so its rules are
//! tested without waiting. The gateway's supervisor uses it
//! (`discord::gateway`).

use std::time::Duration;

/// The delays: `first` after one failure, doubling with each failure in a
/// row, never more than `max`; each less by up to a quarter, by the jitter
/// drawn, so that many instances restarted together do not retry in step.
/// A quarter at most keeps each delay longer than the one before (the next
/// nominal delay is twice this one) until `max` is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The gateway's: 1 s doubling to 5 minutes.
    pub const GATEWAY: Self = Self { first: Duration::from_secs(1), max: Duration::from_secs(300) };

    /// The delay after `failures` failures in a row (1 or more), before
    /// jitter.
    pub fn nominal(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        self.first.saturating_mul(1u32 << doublings.min(31)).min(self.max)
    }

    /// The delay after `failures` failures in a row, with `jitter` (in
    /// `[0, 1)`; anything else is taken as its nearest bound) taking up to
    /// a quarter off.
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
        self.nominal(failures).mul_f64(1.0 - jitter / 4.0)
    }
}

/// Why an attempt failed, as far as waiting goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The service was unreachable, refused or failed: the next delay in
    /// the schedule.
    Transient,
    /// A configuration error (Discord rejected the token): trying again soon
    /// cannot help, so the longest delay at once. It is still tried again
    /// (slowly): the rejection may have been Discord's own passing mistake.
    Configuration,
}

/// Failures in a row, and what they make orglink wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub backoff: Backoff,
    failures: u32,
}

impl Retry {
    pub fn new(backoff: Backoff) -> Self {
        Self { backoff, failures: 0 }
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Counts a failure; the delay before the next attempt.
    pub fn failed(&mut self, failure: Failure, jitter: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        match failure {
            Failure::Transient => self.backoff.delay(self.failures, jitter),
            Failure::Configuration => self.backoff.max.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 4.0),
        }
    }

    /// A success: the next failure waits `first` again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

/// A jitter in `[0, 1)` from the OS's random source (0 if it fails: the
/// schedule without jitter is still a schedule).
pub fn random_jitter() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn one_second_doubling_to_five_minutes() {
        let b = Backoff::GATEWAY;
        let nominal: Vec<u64> = (1..=12).map(|n| b.nominal(n).as_secs()).collect();
        assert_eq!(nominal, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(b.nominal(0), S(1), "before any failure, the first delay");
        assert_eq!(b.nominal(u32::MAX), S(300), "no overflow, however many failures");
    }

    #[test]
    fn jitter_takes_up_to_a_quarter_off_and_delays_still_grow() {
        let b = Backoff::GATEWAY;
        assert_eq!(b.delay(3, 0.0), S(4));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(3500));
        assert!(b.delay(3, 0.999_999) > Duration::from_millis(3000));
        // Out of range or not a number: its nearest bound, or none.
        assert_eq!(b.delay(3, -1.0), S(4));
        assert_eq!(b.delay(3, 7.0), S(3));
        assert_eq!(b.delay(3, f64::NAN), S(4));
        // The shortest delay after n+1 failures is longer than the longest
        // after n, until the cap; and no delay passes the cap.
        for n in 1..20 {
            let (longest, shortest_next) = (b.delay(n, 0.0), b.delay(n + 1, 0.999_999));
            if b.nominal(n + 1) < b.max {
                assert!(shortest_next > longest, "{n}: {shortest_next:?} after {longest:?}");
            }
            assert!(b.delay(n, 0.0) <= b.max);
        }
    }

    #[test]
    fn a_success_starts_the_schedule_again_and_a_rejected_token_waits_longest() {
        let fast = Backoff { first: Duration::from_millis(10), max: Duration::from_millis(200) };
        let mut retry = Retry::new(fast);
        let delays: Vec<u128> = (0..6).map(|_| retry.failed(Failure::Transient, 0.0).as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 200]);
        assert_eq!(retry.failures(), 6);
        retry.succeeded();
        assert_eq!(retry.failed(Failure::Transient, 0.0), Duration::from_millis(10));
        retry.succeeded();
        assert_eq!(retry.failed(Failure::Configuration, 0.0), Duration::from_millis(200), "slow from the first");
        assert_eq!(retry.failed(Failure::Configuration, 0.5), Duration::from_millis(175));
    }

    #[test]
    fn random_jitter_stays_in_range() {
        for _ in 0..1000 {
            let j = random_jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}

//! Where "now" comes from. Every time comparison the engine makes — the Redis claim, the
//! Postgres re-check, `fired_at` — reads the injected [`Clock`], never `now()` in SQL or
//! Redis `TIME`, so a [`ManualClock`] can run months of deadlines in milliseconds.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to; clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Arc::new(Mutex::new(start)) }
    }

    /// Moves the clock forward (or back, for a negative `by`).
    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// Puts the clock at `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        // A panic elsewhere while holding the lock cannot leave a half-written timestamp.
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Redis scores are whole milliseconds. Due times round *up* and "now" rounds *down*, so a
/// score the claim considers due is always due by the Postgres re-check too (which compares
/// microseconds): otherwise a deadline 0.4 ms away could be claimed, found not yet due, and
/// put back with the same score in a tight loop.
pub(crate) fn due_score(at: DateTime<Utc>) -> i64 {
    let millis = at.timestamp_millis();
    if at.timestamp_subsec_nanos().is_multiple_of(1_000_000) { millis } else { millis + 1 }
}

/// See [`due_score`].
pub(crate) fn now_score(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_scores_round_up_and_now_scores_round_down() {
        let exact = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap_or_default();
        assert_eq!(due_score(exact), 1_700_000_000_123);
        assert_eq!(now_score(exact), 1_700_000_000_123);
        let between = exact + TimeDelta::microseconds(400);
        assert_eq!(due_score(between), 1_700_000_000_124);
        assert_eq!(now_score(between), 1_700_000_000_123);
        let before_epoch = DateTime::from_timestamp_millis(-1).unwrap_or_default() - TimeDelta::microseconds(400);
        assert!(due_score(before_epoch) as f64 >= before_epoch.timestamp_micros() as f64 / 1000.0);
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let clock = ManualClock::new(start);
        let shared = clock.clone();
        assert_eq!(clock.now(), start);
        shared.advance(TimeDelta::days(30));
        assert_eq!(clock.now(), start + TimeDelta::days(30));
        clock.set(start);
        assert_eq!(shared.now(), start);
    }
}

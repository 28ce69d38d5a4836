//! The sign-in throttle of the public listener: after `limits.sign_in_failures` wrong
//! secrets in a row for one bidder, that bidder's sign-ins are refused for
//! `limits.sign_in_lockout_ms` with 429 problem+json `sign_in_locked` and `Retry-After`
//! (whole seconds), the right secret included, so guessing a secret costs a lockout every
//! few tries. A sign-in with the right secret outside a lockout forgets the failures, and
//! failures further apart than the lockout do not add up. The bidder's open sessions keep
//! working through a lockout: it stops new sign-ins only.
//!
//! Only registered bidders are counted (a made-up bidder id has nothing to guess and is
//! answered `bad_credentials` as before), so the map holds at most one entry per bidder;
//! it is also capped at `limits.max_tracked`: when full, entries whose failures and
//! lockout are over are swept first, then the least recently failed half is dropped.
//! Dropping an entry only ever forgives. Each node keeps its own counts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::LimitsSection;

/// One bidder's recent failures.
#[derive(Debug, Clone, Copy)]
struct Failures {
    in_a_row: u32,
    last_failed: Instant,
    locked_until: Option<Instant>,
}

impl Failures {
    /// Whether forgetting the entry at `now` changes nothing.
    fn over(&self, now: Instant, lockout: Duration) -> bool {
        self.locked_until.is_none_or(|until| until <= now) && self.last_failed + lockout <= now
    }
}

/// The failure counts of every bidder, shared by the public listener's workers.
pub struct SignInThrottle {
    failures_allowed: u32,
    lockout: Duration,
    max_tracked: usize,
    failures: Mutex<HashMap<String, Failures>>,
}

impl SignInThrottle {
    pub fn new(limits: &LimitsSection) -> Self {
        SignInThrottle {
            failures_allowed: limits.sign_in_failures.max(1),
            lockout: Duration::from_millis(limits.sign_in_lockout_ms.max(1)),
            max_tracked: limits.max_tracked.max(2),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `bidder_id` may try to sign in at `now`; if not, the seconds to wait.
    pub fn check(&self, bidder_id: &str, now: Instant) -> Result<(), u64> {
        let failures = self.failures.lock();
        match failures.get(bidder_id).and_then(|entry| entry.locked_until) {
            Some(until) if until > now => {
                let wait = until.saturating_duration_since(now);
                Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong secret for the registered bidder `bidder_id` at `now`; the failure
    /// that reaches `failures_allowed` starts a lockout.
    pub fn failed(&self, bidder_id: &str, now: Instant) {
        let mut failures = self.failures.lock();
        if !failures.contains_key(bidder_id) && failures.len() >= self.max_tracked {
            self.make_room(&mut failures, now);
        }
        let entry = failures.entry(bidder_id.to_string()).or_insert(Failures {
            in_a_row: 0,
            last_failed: now,
            locked_until: None,
        });
        if entry.over(now, self.lockout) {
            entry.in_a_row = 0;
        }
        entry.in_a_row += 1;
        entry.last_failed = now;
        if entry.in_a_row >= self.failures_allowed {
            entry.in_a_row = 0;
            entry.locked_until = Some(now + self.lockout);
        }
    }

    /// A sign-in with the right secret: the bidder's failures are forgotten.
    pub fn succeeded(&self, bidder_id: &str) {
        self.failures.lock().remove(bidder_id);
    }

    /// Sweeps entries that are over; drops the least recently failed half if that was
    /// not enough.
    fn make_room(&self, failures: &mut HashMap<String, Failures>, now: Instant) {
        let lockout = self.lockout;
        failures.retain(|_, entry| !entry.over(now, lockout));
        if failures.len() < self.max_tracked {
            return;
        }
        let mut last: Vec<Instant> = failures.values().map(|entry| entry.last_failed).collect();
        let middle = last.len() / 2;
        let (_, median, _) = last.select_nth_unstable(middle);
        let median = *median;
        failures.retain(|_, entry| entry.last_failed > median);
    }

    /// Bidders with failures on record.
    pub fn tracked(&self) -> usize {
        self.failures.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(failures: u32, lockout_ms: u64, max_tracked: usize) -> SignInThrottle {
        SignInThrottle::new(&LimitsSection {
            sign_in_failures: failures,
            sign_in_lockout_ms: lockout_ms,
            max_tracked,
            ..LimitsSection::default()
        })
    }

    #[test]
    fn failures_in_a_row_lock_the_bidder_out_for_the_lockout() {
        let throttle = throttle(3, 10_000, 100);
        let start = Instant::now();
        for _ in 0..2 {
            throttle.failed("alice", start);
            assert_eq!(throttle.check("alice", start), Ok(()));
        }
        throttle.failed("alice", start);
        assert_eq!(throttle.check("alice", start), Err(10));
        let later = start + Duration::from_millis(7_500);
        assert_eq!(
            throttle.check("alice", later),
            Err(3),
            "whole seconds, rounded up"
        );
        assert_eq!(
            throttle.check("bob", start),
            Ok(()),
            "others are not locked"
        );
        assert_eq!(
            throttle.check("alice", start + Duration::from_secs(10)),
            Ok(())
        );
    }

    #[test]
    fn a_right_secret_forgets_failures_and_spread_out_failures_do_not_add_up() {
        let throttle = throttle(2, 1_000, 100);
        let start = Instant::now();
        throttle.failed("alice", start);
        throttle.succeeded("alice");
        throttle.failed("alice", start);
        assert_eq!(throttle.check("alice", start), Ok(()));
        throttle.failed("alice", start + Duration::from_millis(1_500));
        assert_eq!(
            throttle.check("alice", start + Duration::from_millis(1_500)),
            Ok(()),
            "the earlier failure is more than a lockout ago"
        );
    }

    #[test]
    fn many_bidders_failing_stay_within_max_tracked_and_a_lockout_outlives_old_failures() {
        let throttle = throttle(5, 1_000, 1_000);
        let start = Instant::now();
        for index in 0..20_000u64 {
            let at = start + Duration::from_micros(index);
            throttle.failed(&format!("bidder-{index}"), at);
        }
        assert!(throttle.tracked() <= 1_000, "{}", throttle.tracked());
        // Five seconds on, those failures are over: new ones sweep them, not a lockout.
        let later = start + Duration::from_secs(5);
        for _ in 0..5 {
            throttle.failed("alice", later);
        }
        for index in 0..900u64 {
            throttle.failed(&format!("later-{index}"), later);
        }
        assert!(throttle.tracked() <= 1_000);
        assert!(throttle.check("alice", later).is_err());
    }
}

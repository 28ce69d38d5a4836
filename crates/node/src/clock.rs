//! The node's clock, and how far it is from the cluster's.
//!
//! Every command a leader proposes is stamped with its wall clock, and the kernel closes
//! sales by those stamps: a leader whose clock runs Δ fast closes them Δ early, and since
//! command times never go backwards, later leaders inherit the jump. So each node measures
//! its clock against the other voters', NTP-style, on every health check its PeerLinks
//! make: the peer answers with its wall clock `server_time_ms`, and
//! `offset = server_time − (sent + received) / 2`, good to half the round trip.
//! `ClockCheck::decide` takes the newest samples (per peer, the one of the smallest round
//! trip of the last few) and computes this node's offset to the voters' median; a node
//! whose offset exceeds `cluster.max_clock_skew_ms` refuses to lead: it hands leadership
//! over if it has it, and does not campaign (the Supervisor acts on the decision).
//!
//! A clock can also step between two checks (an operator, a bad time source). The leader
//! compares its wall clock with the monotonic clock at every stamp (`StepGuard`): a wall
//! clock that moved more than the bound away from where the monotonic clock says it
//! should be is not used to stamp until the peers have measured it again.
//!
//! `wall_clock_ms` is the one wall clock of a node. A node whose `[faults]` are enabled
//! can be given an offset for it (`set_fault_offset_ms`), which is how the chaos harness
//! and the tests skew one node's clock without touching the machine's.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The offset fault injection adds to this node's wall clock (0 unless set).
static FAULT_OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// The largest offset fault injection may set: a day either way.
pub const MAX_FAULT_OFFSET_MS: i64 = 86_400_000;

/// The current wall-clock time in milliseconds since the Unix epoch, as this node keeps
/// it (with the fault-injected offset, if any).
pub fn wall_clock_ms() -> u64 {
    let system = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0);
    system.saturating_add_signed(FAULT_OFFSET_MS.load(Ordering::Relaxed))
}

/// Sets the fault-injected offset of this node's wall clock (clamped to a day either
/// way). Only the fault-injection endpoint calls it.
pub fn set_fault_offset_ms(offset_ms: i64) {
    let clamped = offset_ms.clamp(-MAX_FAULT_OFFSET_MS, MAX_FAULT_OFFSET_MS);
    FAULT_OFFSET_MS.store(clamped, Ordering::Relaxed);
}

/// One measurement of a peer's clock against this node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSample {
    /// The peer's clock minus this node's, at the middle of the round trip.
    pub offset_ms: i64,
    pub round_trip_ms: u64,
}

impl ClockSample {
    /// The sample of a ping sent at `sent_ms` and answered at `received_ms` (this node's
    /// clock) with the peer's `server_time_ms`.
    pub fn of(sent_ms: u64, received_ms: u64, server_time_ms: u64) -> ClockSample {
        let received_ms = received_ms.max(sent_ms);
        let middle = sent_ms + (received_ms - sent_ms) / 2;
        ClockSample {
            offset_ms: server_time_ms as i64 - middle as i64,
            round_trip_ms: received_ms - sent_ms,
        }
    }
}

/// How many samples per peer are kept; the one of the smallest round trip is used.
pub const SAMPLES_KEPT: usize = 4;

/// The newest samples of every peer's clock.
#[derive(Debug, Default)]
pub struct ClockSamples {
    by_peer: BTreeMap<u64, VecDeque<ClockSample>>,
}

impl ClockSamples {
    pub fn record(&mut self, peer: u64, sample: ClockSample) {
        let samples = self.by_peer.entry(peer).or_default();
        if samples.len() == SAMPLES_KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Forgets every sample: this node's clock stepped, so each was taken against a
    /// clock that is gone.
    pub fn clear(&mut self) {
        self.by_peer.clear();
    }

    /// Forgets a peer (it left, or stopped answering).
    pub fn forget(&mut self, peer: u64) {
        self.by_peer.remove(&peer);
    }

    pub fn is_empty(&self) -> bool {
        self.by_peer.is_empty()
    }

    /// The round trip of the newest sample of `peer`'s clock, in milliseconds.
    pub fn round_trip_ms(&self, peer: u64) -> Option<u64> {
        self.by_peer
            .get(&peer)?
            .back()
            .map(|sample| sample.round_trip_ms)
    }

    /// The best offset known for `peer`: that of its sample of the smallest round trip.
    pub fn offset_ms(&self, peer: u64) -> Option<i64> {
        let samples = self.by_peer.get(&peer)?;
        let best = samples.iter().min_by_key(|sample| sample.round_trip_ms)?;
        Some(best.offset_ms)
    }
}

/// What this node concludes about its clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ClockCheck {
    /// This node's clock minus the median of the voters' clocks (this node's included,
    /// if it votes); null until a voter other than this node has been measured.
    pub offset_to_median_ms: Option<i64>,
    /// Why this node refuses to lead, or null when it may lead.
    pub refuses_to_lead: Option<String>,
}

impl ClockCheck {
    /// Decides from the offsets measured to the voters (`voter_offsets_ms`: each peer
    /// voter's clock minus this node's, for the voters measured) whether this node's
    /// clock is within `max_skew_ms` of the voters' median. `self_votes`: whether this
    /// node is a voter itself (its own clock is then one of the median's).
    pub fn decide(voter_offsets_ms: &[i64], self_votes: bool, max_skew_ms: u64) -> ClockCheck {
        let mut clocks: Vec<i64> = voter_offsets_ms.to_vec();
        if clocks.is_empty() {
            return ClockCheck {
                offset_to_median_ms: None,
                refuses_to_lead: None,
            };
        }
        if self_votes {
            clocks.push(0);
        }
        clocks.sort_unstable();
        let middle = clocks.len() / 2;
        let median = if clocks.len() % 2 == 1 {
            clocks[middle]
        } else {
            (clocks[middle - 1] + clocks[middle]) / 2
        };
        let offset = -median;
        let refuses_to_lead = (offset.unsigned_abs() > max_skew_ms).then(|| {
            format!(
                "this node's clock is {offset} ms off the voters' median, more than cluster.max_clock_skew_ms ({max_skew_ms} ms)"
            )
        });
        ClockCheck {
            offset_to_median_ms: Some(offset),
            refuses_to_lead,
        }
    }
}

/// What the HTTP handlers read of the node's clock: the Supervisor writes it after each
/// decision, the handlers read it without a message.
#[derive(Debug)]
pub struct ClockStatus {
    /// `offset_to_median_ms`, or `i64::MIN` when unknown.
    offset_ms: AtomicI64,
    refuses_to_lead: AtomicBool,
}

impl Default for ClockStatus {
    fn default() -> Self {
        ClockStatus {
            offset_ms: AtomicI64::new(i64::MIN),
            refuses_to_lead: AtomicBool::new(false),
        }
    }
}

impl ClockStatus {
    pub fn publish(&self, check: &ClockCheck) {
        let offset = check.offset_to_median_ms.unwrap_or(i64::MIN);
        self.offset_ms.store(offset, Ordering::Relaxed);
        self.refuses_to_lead
            .store(check.refuses_to_lead.is_some(), Ordering::Relaxed);
    }

    pub fn offset_to_median_ms(&self) -> Option<i64> {
        Some(self.offset_ms.load(Ordering::Relaxed)).filter(|offset| *offset != i64::MIN)
    }

    pub fn refuses_to_lead(&self) -> bool {
        self.refuses_to_lead.load(Ordering::Relaxed)
    }

    /// The cluster's time: this node's clock corrected by its offset to the voters'
    /// median (this node's own clock until it has measured any).
    pub fn cluster_time_ms(&self) -> u64 {
        let offset = self.offset_to_median_ms().unwrap_or(0);
        wall_clock_ms().saturating_add_signed(-offset)
    }
}

/// Catches a wall clock that stepped since the peers last measured it: the wall clock
/// and the monotonic clock are read together when a measurement found the clock good
/// (`anchor`), and a stamp is trusted only while the wall clock stays within the bound
/// of where the monotonic clock puts it.
#[derive(Debug)]
pub struct StepGuard {
    anchor: Option<(u64, Instant)>,
    max_skew_ms: u64,
}

impl StepGuard {
    pub fn new(max_skew_ms: u64) -> StepGuard {
        StepGuard {
            anchor: Some((wall_clock_ms(), Instant::now())),
            max_skew_ms,
        }
    }

    /// Whether stamps are trusted (no step seen since the peers last found the clock good).
    pub fn is_anchored(&self) -> bool {
        self.anchor.is_some()
    }

    /// The peers found the clock good now.
    pub fn anchor_now(&mut self) {
        self.anchor = Some((wall_clock_ms(), Instant::now()));
    }

    /// The peers found the clock off: no stamp until they find it good again.
    pub fn drop_anchor(&mut self) {
        self.anchor = None;
    }

    /// How far `now_ms` (the wall clock) is from where the monotonic clock puts it, if
    /// more than the bound; `None` when the wall clock may stamp, and then the anchor
    /// moves to now, so that the slow drift between the two clocks never adds up to a
    /// step. A step keeps the anchor where it was: no stamp until `anchor_now`.
    pub fn stepped_ms(&mut self, now_ms: u64) -> Option<i64> {
        let Some((anchor_ms, anchor_instant)) = self.anchor else {
            return Some(i64::MAX);
        };
        let expected = anchor_ms.saturating_add(anchor_instant.elapsed().as_millis() as u64);
        let step = now_ms as i64 - expected as i64;
        if step.unsigned_abs() > self.max_skew_ms {
            return Some(step);
        }
        self.anchor = Some((now_ms, Instant::now()));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_takes_the_middle_of_the_round_trip() {
        let sample = ClockSample::of(1_000, 1_010, 3_005);
        assert_eq!(sample.round_trip_ms, 10);
        assert_eq!(sample.offset_ms, 2_000);
        // A clock that went backwards during the ping is not a negative round trip.
        assert_eq!(ClockSample::of(1_000, 990, 1_000).round_trip_ms, 0);
    }

    #[test]
    fn the_sample_of_the_smallest_round_trip_counts() {
        let mut samples = ClockSamples::default();
        samples.record(
            2,
            ClockSample {
                offset_ms: 40,
                round_trip_ms: 30,
            },
        );
        samples.record(
            2,
            ClockSample {
                offset_ms: 3,
                round_trip_ms: 1,
            },
        );
        samples.record(
            2,
            ClockSample {
                offset_ms: -25,
                round_trip_ms: 20,
            },
        );
        assert_eq!(samples.offset_ms(2), Some(3));
        for _ in 0..SAMPLES_KEPT {
            samples.record(
                2,
                ClockSample {
                    offset_ms: 9,
                    round_trip_ms: 5,
                },
            );
        }
        assert_eq!(samples.offset_ms(2), Some(9), "old samples age out");
        samples.forget(2);
        assert_eq!(samples.offset_ms(2), None);
    }

    #[test]
    fn a_leader_two_seconds_fast_refuses_to_lead_and_its_followers_do_not() {
        // The fast node sees both others 2 s behind it.
        let fast = ClockCheck::decide(&[-2_000, -2_001], true, 50);
        assert_eq!(fast.offset_to_median_ms, Some(2_000));
        assert!(fast.refuses_to_lead.is_some());
        // A follower sees the fast node 2 s ahead and the other in step.
        let follower = ClockCheck::decide(&[2_000, 1], true, 50);
        assert_eq!(follower.offset_to_median_ms, Some(-1));
        assert_eq!(follower.refuses_to_lead, None);
        // A slow node is as bad as a fast one.
        assert!(ClockCheck::decide(&[2_000, 2_000], true, 50)
            .refuses_to_lead
            .is_some());
    }

    #[test]
    fn the_bound_is_inclusive_and_nothing_measured_decides_nothing() {
        assert_eq!(
            ClockCheck::decide(&[-50, -50], true, 50).refuses_to_lead,
            None
        );
        assert!(ClockCheck::decide(&[-51, -51], true, 50)
            .refuses_to_lead
            .is_some());
        let unknown = ClockCheck::decide(&[], true, 50);
        assert_eq!(unknown.offset_to_median_ms, None);
        assert_eq!(unknown.refuses_to_lead, None);
    }

    #[test]
    fn a_standby_measures_against_the_voters_only() {
        // A standby is not one of the voters: the median is theirs.
        let standby = ClockCheck::decide(&[-100, -100, -100], false, 50);
        assert_eq!(standby.offset_to_median_ms, Some(100));
        // With an even count the median is the mean of the two middle clocks.
        assert_eq!(
            ClockCheck::decide(&[-100, -200], false, 50).offset_to_median_ms,
            Some(150)
        );
    }

    #[test]
    fn a_step_of_the_wall_clock_is_caught_at_once() {
        let mut guard = StepGuard::new(50);
        let now = wall_clock_ms();
        assert_eq!(guard.stepped_ms(now), None);
        assert!(guard
            .stepped_ms(now + 2_000)
            .is_some_and(|step| step >= 1_950));
        assert!(guard
            .stepped_ms(now - 2_000)
            .is_some_and(|step| step <= -1_950));
        // Stepped: no stamp, however often asked, until the peers measure again.
        assert!(guard.stepped_ms(now + 2_000).is_some());
        guard.drop_anchor();
        assert!(guard.stepped_ms(now).is_some(), "no anchor: no stamp");
        guard.anchor_now();
        assert_eq!(guard.stepped_ms(wall_clock_ms()), None);
    }
}

//! The Supervisor's side of the clock check (see `crate::clock`): each PeerLink report
//! brings a measurement of a peer's clock; the Supervisor decides from the voters' whether
//! this node's clock is within `max_clock_skew_ms` of their median, publishes the decision
//! (logs on a change, metrics, the ClusterView, `ClockStatus` for the handlers and the
//! peer listener) and acts on it. A node that refuses to lead turns its own elections
//! off, stamps no command (a leader forwards them, like during a switchover) and, if it
//! leads, hands leadership to the voter whose clock is closest to the median. Back
//! within the bound, it turns elections on again.

use actix::prelude::*;
use openraft::ServerState;

use super::decisions::{clock_successor, VoterClock};
use super::{Supervisor, Switchover};
use crate::actors::messages::Health;
use crate::clock::{wall_clock_ms, ClockCheck, ClockSample};

impl Supervisor {
    /// Records a peer's clock measurement (or forgets the peer when it did not answer
    /// and is down) and decides again.
    pub(super) fn note_clock(
        &mut self,
        peer: u64,
        sample: Option<ClockSample>,
        ctx: &mut Context<Self>,
    ) {
        match sample {
            Some(sample) => self.clock_samples.record(peer, sample),
            None => {
                if self.peers.get(&peer).map(|peer| peer.health) == Some(Health::Down) {
                    self.clock_samples.forget(peer);
                }
            }
        }
        self.decide_clock(ctx);
    }

    fn decide_clock(&mut self, ctx: &mut Context<Self>) {
        // A step since the last decision voids every sample taken before it: without
        // this, the samples of the old clock would find the stepped one good.
        self.check_for_step();
        let self_id = self.settings.node_id;
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let self_votes = membership.voter_ids().any(|voter| voter == self_id);
        let offsets: Vec<i64> = membership
            .voter_ids()
            .filter(|voter| *voter != self_id)
            .filter_map(|voter| self.clock_samples.offset_ms(voter))
            .collect();
        let check = ClockCheck::decide(&offsets, self_votes, self.settings.max_clock_skew_ms);
        let was_refusing = self.clock_check.refuses_to_lead.is_some();
        match (&check.refuses_to_lead, was_refusing) {
            (Some(reason), false) => {
                tracing::warn!(
                    offset_ms = check.offset_to_median_ms,
                    "{reason}: this node refuses to lead until it is back within the bound"
                );
                self.raft.runtime_config().elect(false);
            }
            (None, true) => {
                tracing::info!(
                    offset_ms = check.offset_to_median_ms,
                    "this node's clock is back within the bound of the voters' median; it may lead again"
                );
                if self.switching_to.is_none() {
                    self.raft.runtime_config().elect(true);
                }
            }
            _ => {}
        }
        // Stamps are trusted again only on a measurement that found the clock good (with
        // no voter to measure against, the step guard alone watches it).
        if check.refuses_to_lead.is_none() && check.offset_to_median_ms.is_some() {
            self.step_guard.anchor_now();
        } else if check.refuses_to_lead.is_some() {
            self.step_guard.drop_anchor();
        }
        let offset = check.offset_to_median_ms.unwrap_or(0);
        self.metrics.clock_offset_ms.set(offset);
        let refusing = i64::from(check.refuses_to_lead.is_some());
        self.metrics.clock_refuses_to_lead.set(refusing);
        self.settings.clock_status.publish(&check);
        self.clock_check = check;
        if self.clock_check.refuses_to_lead.is_some() && metrics.state == ServerState::Leader {
            self.hand_over_for_clock(ctx);
        }
    }

    /// Whether this node's clock may stamp a command now: within the bound of the voters'
    /// median as last measured, and not stepped since. A node with no voter to measure
    /// against (a cluster of one) takes a step as it comes, and says so.
    pub(super) fn clock_may_stamp(&mut self) -> bool {
        if self.clock_check.refuses_to_lead.is_some() {
            return false;
        }
        if !self.step_guard.is_anchored() && self.others_vote() {
            return false;
        }
        let Some(step) = self.step_guard.stepped_ms(wall_clock_ms()) else {
            return true;
        };
        if self.others_vote() {
            self.note_step(step);
            return false;
        }
        tracing::warn!(
            step_ms = step,
            "this node's wall clock stepped; no other voter to check it against"
        );
        self.step_guard.anchor_now();
        true
    }

    /// While stamps are trusted, looks for a step of the wall clock and, if there was
    /// one, stops trusting them until a new measurement.
    fn check_for_step(&mut self) {
        if !self.step_guard.is_anchored() || !self.others_vote() {
            return;
        }
        if let Some(step) = self.step_guard.stepped_ms(wall_clock_ms()) {
            self.note_step(step);
        }
    }

    /// The wall clock stepped: every sample was taken against the clock before it, so
    /// only new ones may decide whether this one is good; no stamp meanwhile.
    fn note_step(&mut self, step: i64) {
        tracing::warn!(
            step_ms = step,
            "this node's wall clock stepped since the peers last measured it; no command is stamped until they measure it again"
        );
        self.clock_samples.clear();
        self.step_guard.drop_anchor();
    }

    /// Whether a voter other than this node is in the membership (one to measure against).
    fn others_vote(&self) -> bool {
        let self_id = self.settings.node_id;
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|voter| voter != self_id)
    }

    /// Leading with a clock that is off: switches leadership over to the healthy voter
    /// whose clock is closest to the median (once; a switchover under way is left to run).
    fn hand_over_for_clock(&mut self, ctx: &mut Context<Self>) {
        if self.switching_to.is_some() || self.reconfiguring {
            return;
        }
        let Some(own_offset) = self.clock_check.offset_to_median_ms else {
            return;
        };
        let self_id = self.settings.node_id;
        let metrics = self.raft.metrics().borrow().clone();
        let voters: Vec<VoterClock> = metrics
            .membership_config
            .membership()
            .voter_ids()
            .map(|node_id| VoterClock {
                node_id,
                health: self.peers.get(&node_id).map(|peer| peer.health),
                offset_ms: self.clock_samples.offset_ms(node_id),
            })
            .collect();
        let Some(to_node_id) = clock_successor(self_id, own_offset, &voters) else {
            tracing::warn!(
                "no healthy voter to hand leadership to; this leader stamps nothing meanwhile"
            );
            return;
        };
        tracing::warn!(
            to_node_id,
            "handing leadership over: this node's clock is off"
        );
        ctx.address().do_send(Switchover { to_node_id });
    }
}

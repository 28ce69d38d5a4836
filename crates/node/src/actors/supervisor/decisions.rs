//! The Supervisor's decisions, as plain functions of what it observed (Raft's view of
//! this node and the membership, the PeerLinks' reports, its own flags), so they can be
//! tested report by report without a cluster: the takeover entry on becoming leader
//! (`on_raft_change`), what a peer's report sets off (`on_peer_report`, `campaign_turn`),
//! which standbys become learners (`standbys_to_add`), which voters they replace
//! (`promotion`, after `membership::repaired_voters`), and whether and to whom leadership
//! is handed over (`switchover`, `clock_successor`). The actor gathers the observation,
//! calls these and carries out what they say.

use std::collections::{BTreeMap, BTreeSet};

use crate::actors::membership::{repaired_voters, PeerHealth};
use crate::actors::messages::Health;

/// What a change of Raft's view of this node calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadershipStep {
    /// Nothing: still a follower, or still leading the term already taken over.
    Unchanged,
    /// This node led and no longer does: the ResourcePool is told.
    Lost,
    /// This node leads `term` and has not proposed its takeover entry in it yet.
    Takeover { term: u64 },
}

/// `led_term`: the term this node last took over in (cleared when it lost leadership or
/// its takeover entry was not committed).
pub fn on_raft_change(led_term: Option<u64>, is_leader: bool, term: u64) -> LeadershipStep {
    match (is_leader, led_term) {
        (false, Some(_)) => LeadershipStep::Lost,
        (false, None) => LeadershipStep::Unchanged,
        (true, Some(led)) if led == term => LeadershipStep::Unchanged,
        (true, _) => LeadershipStep::Takeover { term },
    }
}

/// What one PeerLink report sets off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportActions {
    /// The peer's process is gone (not merely slow), early in its misses: if it led,
    /// the voters campaign in turn (`campaign_turn`).
    pub campaign: bool,
    /// The peer came up: a standby is added as a learner at once.
    pub ensure_standbys: bool,
    /// The peer is down: forget retired standbys that stopped, and replace dead voters.
    pub repair: bool,
}

/// `previous`: the peer's health before this report, if it reported before.
pub fn on_peer_report(
    previous: Option<Health>,
    health: Health,
    consecutive_misses: u32,
    process_gone: bool,
) -> ReportActions {
    ReportActions {
        // Only a leader whose process is gone: a slow one (paused, overloaded, a lossy
        // link) is left to Raft's own timer, so load alone never brings an election early.
        campaign: process_gone && consecutive_misses <= 2,
        ensure_standbys: health == Health::Up && previous != Some(Health::Up),
        repair: health == Health::Down,
    }
}

/// Raft's view of this node as a follower, for `campaign_turn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerView {
    pub is_follower: bool,
    pub current_leader: Option<u64>,
}

/// This node's turn (0 first) to campaign after the leader `dead` died: only a follower
/// of that leader, that may lead (`refuses_to_lead` false), and is one of the other
/// voters, in voter order.
pub fn campaign_turn(
    self_id: u64,
    dead: u64,
    refuses_to_lead: bool,
    view: FollowerView,
    voters: &[u64],
) -> Option<u32> {
    if refuses_to_lead || !view.is_follower || view.current_leader != Some(dead) {
        return None;
    }
    voters
        .iter()
        .filter(|voter| **voter != dead)
        .position(|voter| *voter == self_id)
        .map(|turn| turn as u32)
}

/// Whether the leader may change the membership now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconfigurable {
    pub is_leader: bool,
    /// A membership change is under way.
    pub reconfiguring: bool,
}

impl Reconfigurable {
    fn now(self) -> bool {
        self.is_leader && !self.reconfiguring
    }
}

/// The configured standbys (`configured`, in configuration order) to add as learners:
/// those not in the membership (`known`), not removed by an operator while they still
/// run (`retired`), and not seen down or failing their checks (one not checked yet, as
/// at start, is added).
pub fn standbys_to_add(
    gate: Reconfigurable,
    configured: &[u64],
    known: &BTreeSet<u64>,
    retired: &BTreeSet<u64>,
    peers: &BTreeMap<u64, PeerHealth>,
) -> Vec<u64> {
    if !gate.now() {
        return Vec::new();
    }
    configured
        .iter()
        .copied()
        .filter(|node_id| !known.contains(node_id) && !retired.contains(node_id))
        .filter(|node_id| {
            peers
                .get(node_id)
                .is_none_or(|peer| peer.health == Health::Up)
        })
        .collect()
}

/// The voters after replacing the dead ones by healthy standbys, when the leader may
/// reconfigure and there is something to replace (see `membership::repaired_voters`).
pub fn promotion(
    gate: Reconfigurable,
    self_id: u64,
    voters: &BTreeSet<u64>,
    learners: &BTreeSet<u64>,
    peers: &BTreeMap<u64, PeerHealth>,
) -> Option<BTreeSet<u64>> {
    if !gate.now() {
        return None;
    }
    repaired_voters(self_id, voters, learners, peers)
}

/// What the leader sees when asked to hand leadership to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchoverView {
    pub self_id: u64,
    pub is_leader: bool,
    pub current_leader: Option<u64>,
    pub voters: Vec<u64>,
    /// The target's health as its PeerLink last reported it.
    pub target_health: Option<Health>,
    /// A switchover or a membership change is under way.
    pub busy: bool,
}

/// How a switchover goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchoverPlan {
    /// `to` leads already: done.
    AlreadyLeads,
    /// Hold the elections of these voters (neither this node nor `to`), stop this
    /// node's heartbeats, and wait for `to` to win.
    HandOver { hold_elections_on: Vec<u64> },
}

/// Whether and how to hand leadership to `to`; the refusal says why not.
pub fn switchover(view: &SwitchoverView, to: u64) -> Result<SwitchoverPlan, String> {
    if view.current_leader == Some(to) {
        return Ok(SwitchoverPlan::AlreadyLeads);
    }
    if !view.is_leader {
        return Err("this node does not lead; send the switchover to the leader".to_string());
    }
    if !view.voters.contains(&to) {
        return Err(format!("node {to} is not a voter"));
    }
    if view.target_health != Some(Health::Up) {
        return Err(format!("node {to} is not up"));
    }
    if view.busy {
        return Err("a membership change or switchover is already under way".to_string());
    }
    let hold_elections_on = view
        .voters
        .iter()
        .copied()
        .filter(|id| *id != to && *id != view.self_id)
        .collect();
    Ok(SwitchoverPlan::HandOver { hold_elections_on })
}

/// A voter's clock as this leader knows it, for `clock_successor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoterClock {
    pub node_id: u64,
    pub health: Option<Health>,
    /// Its clock minus this node's, as last measured.
    pub offset_ms: Option<i64>,
}

/// The healthy voter whose clock is closest to the voters' median, for a leader whose
/// own clock is `own_offset_ms` off it (the lowest id on a tie). `None` when no voter
/// other than `self_id` is up and measured.
pub fn clock_successor(self_id: u64, own_offset_ms: i64, voters: &[VoterClock]) -> Option<u64> {
    voters
        .iter()
        .filter(|voter| voter.node_id != self_id && voter.health == Some(Health::Up))
        .filter_map(|voter| {
            // The peer's clock minus the median: its offset to this node, plus this
            // node's offset to the median.
            let to_median = voter.offset_ms? + own_offset_ms;
            Some((to_median.unsigned_abs(), voter.node_id))
        })
        .min()
        .map(|(_, node_id)| node_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(health: Health) -> PeerHealth {
        PeerHealth {
            health,
            consecutive_misses: if health == Health::Up { 0 } else { 3 },
            last_heartbeat_ms: None,
            last_applied_index: Some(10),
        }
    }

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    const LEADING: Reconfigurable = Reconfigurable {
        is_leader: true,
        reconfiguring: false,
    };

    #[test]
    fn the_takeover_entry_is_proposed_once_per_term_led() {
        // Raft's view, change after change: follower, leader of term 3 (twice: metrics
        // change with every commit), deposed, leader of term 5.
        let mut led_term = None;
        let mut steps = Vec::new();
        for (is_leader, term) in [(false, 2), (true, 3), (true, 3), (false, 4), (true, 5)] {
            let step = on_raft_change(led_term, is_leader, term);
            led_term = match step {
                LeadershipStep::Lost => None,
                LeadershipStep::Takeover { term } => Some(term),
                LeadershipStep::Unchanged => led_term,
            };
            steps.push(step);
        }
        assert_eq!(
            steps,
            [
                LeadershipStep::Unchanged,
                LeadershipStep::Takeover { term: 3 },
                LeadershipStep::Unchanged,
                LeadershipStep::Lost,
                LeadershipStep::Takeover { term: 5 },
            ]
        );
        // A takeover entry that was not committed clears `led_term`: proposed again.
        assert_eq!(
            on_raft_change(None, true, 5),
            LeadershipStep::Takeover { term: 5 }
        );
        // A new term while leading (re-elected) takes over again.
        assert_eq!(
            on_raft_change(Some(5), true, 6),
            LeadershipStep::Takeover { term: 6 }
        );
    }

    #[test]
    fn a_peer_going_up_suspect_and_down_sets_off_its_actions_once_each() {
        let reports = [
            (Health::Up, 0, false),
            (Health::Up, 0, false),
            (Health::Suspect, 1, true),
            (Health::Suspect, 2, true),
            (Health::Down, 3, true),
            (Health::Up, 0, false),
        ];
        let mut previous = None;
        let mut actions = Vec::new();
        for (health, misses, gone) in reports {
            actions.push(on_peer_report(previous, health, misses, gone));
            previous = Some(health);
        }
        let campaign: Vec<bool> = actions.iter().map(|a| a.campaign).collect();
        let ensure: Vec<bool> = actions.iter().map(|a| a.ensure_standbys).collect();
        let repair: Vec<bool> = actions.iter().map(|a| a.repair).collect();
        // A gone process: a prompt campaign on the first two misses, not the third.
        assert_eq!(campaign, [false, false, true, true, false, false]);
        // Up for the first time, and up again after being down.
        assert_eq!(ensure, [true, false, false, false, false, true]);
        assert_eq!(repair, [false, false, false, false, true, false]);
        // A slow peer (its process still there) never sets off a campaign.
        assert!(!on_peer_report(Some(Health::Up), Health::Suspect, 1, false).campaign);
    }

    #[test]
    fn the_voters_campaign_in_turn_after_their_leader_died() {
        let voters = [1, 2, 3];
        let following = |leader| FollowerView {
            is_follower: true,
            current_leader: Some(leader),
        };
        // Leader 1 died: 2 goes first, then 3.
        assert_eq!(campaign_turn(2, 1, false, following(1), &voters), Some(0));
        assert_eq!(campaign_turn(3, 1, false, following(1), &voters), Some(1));
        // Leader 2 died: 1 first, 3 next.
        assert_eq!(campaign_turn(3, 2, false, following(2), &voters), Some(1));
        // Not this node's leader, a clock that is off, not a follower, not a voter.
        assert_eq!(campaign_turn(3, 2, false, following(1), &voters), None);
        assert_eq!(campaign_turn(2, 1, true, following(1), &voters), None);
        let candidate = FollowerView {
            is_follower: false,
            current_leader: Some(1),
        };
        assert_eq!(campaign_turn(2, 1, false, candidate, &voters), None);
        assert_eq!(campaign_turn(4, 1, false, following(1), &voters), None);
    }

    #[test]
    fn configured_standbys_become_learners_unless_known_retired_or_unhealthy() {
        let configured = [4, 5, 6, 7, 8];
        let known = set(&[1, 2, 3, 4]);
        let retired = set(&[5]);
        let peers = BTreeMap::from([
            (6, peer(Health::Suspect)),
            (7, peer(Health::Up)),
            (4, peer(Health::Up)),
        ]);
        // 4 is a member already, 5 was removed, 6 fails its checks; 8 is not checked
        // yet (as at start) and is added with 7.
        assert_eq!(
            standbys_to_add(LEADING, &configured, &known, &retired, &peers),
            vec![7, 8]
        );
        // Only a leader that is not reconfiguring.
        for gate in [
            Reconfigurable {
                is_leader: false,
                reconfiguring: false,
            },
            Reconfigurable {
                is_leader: true,
                reconfiguring: true,
            },
        ] {
            assert!(standbys_to_add(gate, &configured, &known, &retired, &peers).is_empty());
            let down = BTreeMap::from([(2, peer(Health::Down)), (4, peer(Health::Up))]);
            assert_eq!(
                promotion(gate, 1, &set(&[1, 2, 3]), &set(&[4]), &down),
                None
            );
        }
    }

    #[test]
    fn a_voter_is_replaced_from_the_report_that_finds_it_down() {
        let (voters, learners) = (set(&[1, 2, 3]), set(&[4]));
        let mut peers = BTreeMap::from([(3, peer(Health::Up)), (4, peer(Health::Up))]);
        // Voter 2's reports, tick by tick: up, suspect twice, then down at the threshold.
        let mut promoted = Vec::new();
        for health in [Health::Up, Health::Suspect, Health::Suspect, Health::Down] {
            peers.insert(2, peer(health));
            promoted.push(promotion(LEADING, 1, &voters, &learners, &peers));
        }
        assert_eq!(promoted, [None, None, None, Some(set(&[1, 3, 4]))]);
    }

    fn switchover_view() -> SwitchoverView {
        SwitchoverView {
            self_id: 1,
            is_leader: true,
            current_leader: Some(1),
            voters: vec![1, 2, 3],
            target_health: Some(Health::Up),
            busy: false,
        }
    }

    #[test]
    fn a_switchover_holds_the_other_voters_elections() {
        assert_eq!(
            switchover(&switchover_view(), 2),
            Ok(SwitchoverPlan::HandOver {
                hold_elections_on: vec![3]
            })
        );
        let done = SwitchoverView {
            current_leader: Some(2),
            is_leader: false,
            ..switchover_view()
        };
        assert_eq!(switchover(&done, 2), Ok(SwitchoverPlan::AlreadyLeads));
    }

    #[test]
    fn a_switchover_is_refused_with_its_reason() {
        let refused = |view: SwitchoverView, to: u64| switchover(&view, to).unwrap_err();
        let follower = SwitchoverView {
            is_leader: false,
            current_leader: Some(3),
            ..switchover_view()
        };
        assert!(refused(follower, 2).contains("does not lead"));
        assert_eq!(refused(switchover_view(), 4), "node 4 is not a voter");
        for health in [None, Some(Health::Suspect), Some(Health::Down)] {
            let view = SwitchoverView {
                target_health: health,
                ..switchover_view()
            };
            assert_eq!(refused(view, 2), "node 2 is not up");
        }
        let busy = SwitchoverView {
            busy: true,
            ..switchover_view()
        };
        assert!(refused(busy, 2).contains("already under way"));
    }

    #[test]
    fn leadership_goes_to_the_healthy_voter_closest_to_the_median() {
        let voter = |node_id, health, offset_ms| VoterClock {
            node_id,
            health: Some(health),
            offset_ms,
        };
        // This node is 300 ms ahead of the median: a peer 300 ms behind it is on it.
        let voters = [
            voter(1, Health::Up, Some(0)),
            voter(2, Health::Up, Some(-250)),
            voter(3, Health::Up, Some(-300)),
            voter(4, Health::Down, Some(-300)),
            voter(5, Health::Up, None),
        ];
        assert_eq!(clock_successor(1, 300, &voters), Some(3));
        // A tie goes to the lowest id.
        let tied = [
            voter(3, Health::Up, Some(-310)),
            voter(2, Health::Up, Some(-290)),
        ];
        assert_eq!(clock_successor(1, 300, &tied), Some(2));
        // No healthy, measured voter: nobody.
        let none = [
            voter(4, Health::Down, Some(-300)),
            voter(5, Health::Up, None),
        ];
        assert_eq!(clock_successor(1, 300, &none), None);
    }
}

//! The Supervisor's decisions about cluster membership, as plain functions of what it
//! sees (voters, standbys, peer health), so they can be tested without a cluster.
//!
//! The rule (docs/DESIGN.md decision 3): a voter that missed `down_after_misses` consecutive
//! health checks is replaced by a healthy standby (a Raft learner that already holds all
//! state); the dead voter is kept as a learner, so when it comes back it catches up and
//! stays a standby. A dead voter with no healthy standby to take its place is left where
//! it is: removing it alone would not restore redundancy.

use std::collections::{BTreeMap, BTreeSet};

use super::messages::Health;

/// What the Supervisor knows of one peer from its PeerLink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHealth {
    pub health: Health,
    pub consecutive_misses: u32,
    pub last_heartbeat_ms: Option<u64>,
    pub last_applied_index: Option<u64>,
}

/// The voter set after replacing dead voters by healthy standbys, or `None` when nothing
/// should change. `self_id` is the leader deciding (always healthy to itself).
pub fn repaired_voters(
    self_id: u64,
    voters: &BTreeSet<u64>,
    learners: &BTreeSet<u64>,
    peers: &BTreeMap<u64, PeerHealth>,
) -> Option<BTreeSet<u64>> {
    let is_down = |id: &u64| {
        *id != self_id
            && peers
                .get(id)
                .is_some_and(|peer| peer.health == Health::Down)
    };
    let is_up = |id: &u64| peers.get(id).is_some_and(|peer| peer.health == Health::Up);
    let dead: Vec<u64> = voters.iter().copied().filter(|id| is_down(id)).collect();
    // Healthiest standbys first: the most caught up, then the lowest id.
    let mut standbys: Vec<u64> = learners.iter().copied().filter(|id| is_up(id)).collect();
    standbys.sort_by_key(|id| {
        (
            std::cmp::Reverse(peers.get(id).and_then(|peer| peer.last_applied_index)),
            *id,
        )
    });
    let replacements = dead.len().min(standbys.len());
    if replacements == 0 {
        return None;
    }
    let mut next = voters.clone();
    for (dead_voter, standby) in dead.iter().zip(standbys.iter()).take(replacements) {
        next.remove(dead_voter);
        next.insert(*standby);
    }
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(health: Health, applied: u64) -> PeerHealth {
        PeerHealth {
            health,
            consecutive_misses: if health == Health::Up { 0 } else { 5 },
            last_heartbeat_ms: None,
            last_applied_index: Some(applied),
        }
    }

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn dead_voter_is_replaced_by_a_healthy_standby() {
        let peers = BTreeMap::from([
            (2, peer(Health::Down, 10)),
            (3, peer(Health::Up, 10)),
            (4, peer(Health::Up, 10)),
        ]);
        assert_eq!(
            repaired_voters(1, &set(&[1, 2, 3]), &set(&[4]), &peers),
            Some(set(&[1, 3, 4]))
        );
    }

    #[test]
    fn suspect_voter_is_not_replaced_yet() {
        let peers = BTreeMap::from([
            (2, peer(Health::Suspect, 10)),
            (3, peer(Health::Up, 10)),
            (4, peer(Health::Up, 10)),
        ]);
        assert_eq!(
            repaired_voters(1, &set(&[1, 2, 3]), &set(&[4]), &peers),
            None
        );
    }

    #[test]
    fn dead_voter_without_a_healthy_standby_stays() {
        let peers = BTreeMap::from([
            (2, peer(Health::Down, 10)),
            (3, peer(Health::Up, 10)),
            (4, peer(Health::Down, 10)),
        ]);
        assert_eq!(
            repaired_voters(1, &set(&[1, 2, 3]), &set(&[4]), &peers),
            None
        );
    }

    #[test]
    fn the_most_caught_up_standby_is_promoted_first() {
        let peers = BTreeMap::from([
            (2, peer(Health::Down, 10)),
            (3, peer(Health::Up, 10)),
            (4, peer(Health::Up, 7)),
            (5, peer(Health::Up, 9)),
        ]);
        assert_eq!(
            repaired_voters(1, &set(&[1, 2, 3]), &set(&[4, 5]), &peers),
            Some(set(&[1, 3, 5]))
        );
    }

    #[test]
    fn the_deciding_leader_never_counts_itself_down() {
        let peers = BTreeMap::from([(1, peer(Health::Down, 10)), (4, peer(Health::Up, 10))]);
        assert_eq!(
            repaired_voters(1, &set(&[1, 2, 3]), &set(&[4]), &peers),
            None
        );
    }
}

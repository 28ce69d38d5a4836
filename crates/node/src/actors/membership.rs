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

/// A peer's health after `misses` health checks missed in a row: `up` with none, `down`
/// from `down_after_misses` on, `suspect` between (the PeerLink's rule).
pub fn health_after(misses: u32, down_after_misses: u32) -> Health {
    match misses {
        0 => Health::Up,
        misses if misses >= down_after_misses => Health::Down,
        _ => Health::Suspect,
    }
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

    /// The membership as the Supervisor changes it: the new voter set, the replaced
    /// voters kept as learners (openraft's `retain`), as `change_membership(next, true)`.
    fn apply(voters: &mut BTreeSet<u64>, learners: &mut BTreeSet<u64>, next: BTreeSet<u64>) {
        for old in voters.difference(&next) {
            learners.insert(*old);
        }
        for new in next.difference(voters) {
            learners.remove(new);
        }
        *voters = next;
    }

    /// Over simulated time, one health check every 500 ms and `down_after_misses` = 3: a
    /// voter that stops answering is suspect, then down at its third miss, and only then
    /// replaced by the standby; brought back, it answers again as a learner and nothing
    /// changes (it is the standby now); when another voter dies later, the revived node
    /// is the standby that takes its place.
    #[test]
    fn a_dead_voter_is_replaced_then_returns_as_the_standby_over_simulated_time() {
        const DOWN_AFTER: u32 = 3;
        let (mut voters, mut learners) = (set(&[1, 2, 3]), set(&[4]));
        let mut misses: BTreeMap<u64, u32> = BTreeMap::from([(2, 0), (3, 0), (4, 0)]);
        // (time ms, the peers whose check fails at that time)
        let timeline: Vec<(u64, Vec<u64>)> = (0..20u64)
            .map(|step| {
                let at = step * 500;
                let failing = match at {
                    1_000..=2_500 => vec![2], // node 2 killed at 1 s, back at 3 s
                    6_000..=9_500 => vec![3], // node 3 killed at 6 s
                    _ => vec![],
                };
                (at, failing)
            })
            .collect();
        let mut changes = Vec::new();
        for (at, failing) in timeline {
            for (peer, missed) in misses.iter_mut() {
                *missed = if failing.contains(peer) {
                    *missed + 1
                } else {
                    0
                };
            }
            let peers: BTreeMap<u64, PeerHealth> = misses
                .iter()
                .map(|(peer, missed)| {
                    let health = health_after(*missed, DOWN_AFTER);
                    (
                        *peer,
                        PeerHealth {
                            health,
                            consecutive_misses: *missed,
                            last_heartbeat_ms: None,
                            last_applied_index: Some(at),
                        },
                    )
                })
                .collect();
            if let Some(next) = repaired_voters(1, &voters, &learners, &peers) {
                changes.push((at, next.clone()));
                apply(&mut voters, &mut learners, next);
            }
        }
        // Node 2 fails at 1.0, 1.5 and 2.0 s: down (and replaced by 4) at 2.0 s, not before.
        // Node 3 fails from 6.0 s: down at 7.0 s, replaced by the revived node 2.
        assert_eq!(
            changes,
            vec![(2_000, set(&[1, 3, 4])), (7_000, set(&[1, 2, 4]))]
        );
        assert_eq!((voters, learners), (set(&[1, 2, 4]), set(&[3])));
        assert_eq!(health_after(1, DOWN_AFTER), Health::Suspect);
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

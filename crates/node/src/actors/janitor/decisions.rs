//! The Janitor's decisions, as plain functions of what a sweep observed and of the time
//! it observed it at (`now_ms`), so they can be tested tick by tick without a node:
//! which commands the leader proposes (`proposals`), which Auction actors are replaced
//! or rebuilt (`sort_probes`), and whether openraft builds a snapshot and purges its log
//! (`compaction`). The actor gathers the observation, calls these and carries out what
//! they say.

use std::collections::HashMap;

use crate::actors::auction::SeenState;

/// What a sweep saw before proposing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderObservation {
    /// Whether this node leads (and is not handing leadership over).
    pub is_leader: bool,
    pub now_ms: u64,
    /// When the earliest-closed auction still in the live state closed, if one has.
    pub earliest_closed_at_ms: Option<u64>,
    /// When the oldest auction in the archive closed (`None`: the archive is empty, was
    /// not read, or could not be).
    pub oldest_archived_closed_at_ms: Option<u64>,
}

/// The commands a sweep proposes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Proposals {
    /// `Command::Purge`: expired sessions and idempotency records.
    pub purge: bool,
    /// `Command::Archive`: some auction closed at least `closed_linger_ms` ago.
    pub archive: bool,
    /// `Command::PruneArchive`: the archive holds an auction that closed more than
    /// `archive_retention_ms` ago (never when that is 0, which keeps everything).
    pub prune: bool,
}

/// Only the leader proposes: a follower's proposal would be forwarded to the leader,
/// which does the same on its own sweep anyway.
pub fn proposals(
    observed: &LeaderObservation,
    closed_linger_ms: u64,
    archive_retention_ms: u64,
) -> Proposals {
    if !observed.is_leader {
        return Proposals::default();
    }
    let archive = observed
        .earliest_closed_at_ms
        .is_some_and(|closed_at| closed_at.saturating_add(closed_linger_ms) <= observed.now_ms);
    let prune = archive_retention_ms != 0 && {
        let cutoff = observed.now_ms.saturating_sub(archive_retention_ms);
        observed
            .oldest_archived_closed_at_ms
            .is_some_and(|closed_at| closed_at < cutoff)
    };
    Proposals {
        purge: true,
        archive,
        prune,
    }
}

/// Why an actor's view disagrees with the state machine's, if it does. `applied` is
/// `None` when the auction is no longer in the state (archived): nothing to compare.
pub fn disagreement(seen: Option<&SeenState>, applied: Option<&SeenState>) -> Option<String> {
    let applied = applied?;
    let Some(seen) = seen else {
        return Some("the actor never read its auction".to_string());
    };
    if seen.phase != applied.phase {
        return Some(format!(
            "phase {} in the actor, {} in the state machine",
            seen.phase.as_str(),
            applied.phase.as_str()
        ));
    }
    if seen.deadline_ms != applied.deadline_ms {
        return Some(format!(
            "deadline {:?} in the actor, {:?} in the state machine",
            seen.deadline_ms, applied.deadline_ms
        ));
    }
    if seen.bid_count != applied.bid_count {
        return Some(format!(
            "{} bids in the actor, {} in the state machine",
            seen.bid_count, applied.bid_count
        ));
    }
    None
}

/// One probed actor: `None` if it did not answer within the bound, else what it saw.
pub type ProbeAnswer = (String, Option<Option<SeenState>>);

/// What the probes found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Probed {
    /// Replaced: no answer in time.
    pub stuck: Vec<String>,
    /// Rebuilt, with why: a disagreement seen in two sweeps in a row, over the same
    /// applied view.
    pub disagreeing: Vec<(String, String)>,
    /// Disagreeing for the first time (or over a state that moved since), with the
    /// applied view then: looked at again next sweep.
    pub suspects: HashMap<String, SeenState>,
}

/// Sorts probe answers. `applied` is the state machine's view of each auction still in
/// the live state; `previous` the suspects of the last sweep. (A dead actor is not here:
/// the pool counts it.)
pub fn sort_probes(
    answers: Vec<ProbeAnswer>,
    applied: &HashMap<String, SeenState>,
    previous: &HashMap<String, SeenState>,
) -> Probed {
    let mut probed = Probed::default();
    for (auction_id, answer) in answers {
        let Some(seen) = answer else {
            probed.stuck.push(auction_id);
            continue;
        };
        let applied = applied.get(&auction_id);
        let Some(reason) = disagreement(seen.as_ref(), applied) else {
            continue;
        };
        let Some(applied) = applied else { continue };
        if previous.get(&auction_id) == Some(applied) {
            probed.disagreeing.push((auction_id, reason));
        } else {
            probed.suspects.insert(auction_id, applied.clone());
        }
    }
    probed
}

/// Where the log stands, as openraft and the storage report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogObservation {
    pub applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// Bytes of log written after the latest snapshot, and that snapshot's size.
    pub log_bytes_since_snapshot: u64,
    pub snapshot_bytes: u64,
}

/// What to ask openraft for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compaction {
    pub snapshot: bool,
    /// Purge the log up to this index.
    pub purge_upto: Option<u64>,
}

/// Whether to build a snapshot: enough entries since the last one, and at least as many
/// bytes of log since it as it takes itself.
pub fn snapshot_due(
    entries_since: u64,
    after_entries: u64,
    log_bytes_since: u64,
    snapshot_bytes: u64,
) -> bool {
    entries_since >= after_entries.max(1) && log_bytes_since >= snapshot_bytes
}

/// A snapshot when `snapshot_due` (and something was applied), and a purge of the log up
/// to `log_entries_kept` entries before the latest snapshot when not purged that far yet.
pub fn compaction(
    log: &LogObservation,
    snapshot_after_entries: u64,
    log_entries_kept: u64,
) -> Compaction {
    let since_snapshot = log
        .applied_index
        .unwrap_or(0)
        .saturating_sub(log.snapshot_index.unwrap_or(0));
    let snapshot = log.applied_index.is_some()
        && snapshot_due(
            since_snapshot,
            snapshot_after_entries,
            log.log_bytes_since_snapshot,
            log.snapshot_bytes,
        );
    let purge_upto = log
        .snapshot_index
        .and_then(|index| index.checked_sub(log_entries_kept))
        .filter(|upto| log.purged_index.is_none_or(|purged| purged < *upto));
    Compaction {
        snapshot,
        purge_upto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gavel_kernel::Phase;

    fn seen(phase: Phase, deadline_ms: Option<u64>, bid_count: u64) -> SeenState {
        SeenState {
            phase,
            deadline_ms,
            bid_count,
        }
    }

    fn observed(now_ms: u64, closed: Option<u64>, archived: Option<u64>) -> LeaderObservation {
        LeaderObservation {
            is_leader: true,
            now_ms,
            earliest_closed_at_ms: closed,
            oldest_archived_closed_at_ms: archived,
        }
    }

    #[test]
    fn a_follower_proposes_nothing_whatever_is_due() {
        let follower = LeaderObservation {
            is_leader: false,
            ..observed(1_000_000, Some(0), Some(0))
        };
        assert_eq!(proposals(&follower, 10, 10), Proposals::default());
    }

    #[test]
    fn the_archive_is_proposed_from_the_tick_the_linger_has_run_out() {
        // Closed at 10 000, lingering 5 000: due at 15 000 exactly, tick after tick.
        let due: Vec<bool> = [14_998, 14_999, 15_000, 15_001]
            .into_iter()
            .map(|now| proposals(&observed(now, Some(10_000), None), 5_000, 0).archive)
            .collect();
        assert_eq!(due, [false, false, true, true]);
        // Nothing closed: nothing to archive, however late; the purge goes every sweep.
        let idle = proposals(&observed(u64::MAX, None, None), 0, 0);
        assert_eq!(
            idle,
            Proposals {
                purge: true,
                archive: false,
                prune: false
            }
        );
        // A linger that would overflow never comes due.
        assert!(!proposals(&observed(u64::MAX - 1, Some(10), None), u64::MAX, 0).archive);
    }

    #[test]
    fn the_archive_is_pruned_once_its_oldest_is_strictly_older_than_the_retention() {
        // Oldest archived closed at 1 000, kept 500: the cutoff must pass it.
        let due: Vec<bool> = [1_499, 1_500, 1_501, 1_502]
            .into_iter()
            .map(|now| proposals(&observed(now, None, Some(1_000)), 0, 500).prune)
            .collect();
        assert_eq!(due, [false, false, true, true]);
        // Retention 0 keeps everything; an empty archive has nothing to prune.
        assert!(!proposals(&observed(u64::MAX, None, Some(0)), 0, 0).prune);
        assert!(!proposals(&observed(u64::MAX, None, None), 0, 1).prune);
    }

    #[test]
    fn a_snapshot_waits_for_enough_entries_and_as_much_log_as_it_takes() {
        // Entries counted first.
        assert!(!snapshot_due(1_999, 2_000, 10 << 20, 0));
        assert!(snapshot_due(2_000, 2_000, 1, 0));
        // A 50 MB snapshot is rewritten only once 50 MB of log were written after it.
        assert!(!snapshot_due(9_000, 2_000, 49 << 20, 50 << 20));
        assert!(snapshot_due(9_000, 2_000, 50 << 20, 50 << 20));
        // A threshold of 0 still waits for one entry.
        assert!(!snapshot_due(0, 0, 0, 0));
    }

    #[test]
    fn compaction_over_successive_sweeps() {
        let mut log = LogObservation::default();
        // Nothing applied yet: no snapshot, nothing to purge.
        assert_eq!(compaction(&log, 100, 10), Compaction::default());
        // 99 applied: one short.
        log.applied_index = Some(99);
        assert!(!compaction(&log, 100, 10).snapshot);
        // 100 applied: the first snapshot.
        log.applied_index = Some(100);
        assert_eq!(
            compaction(&log, 100, 10),
            Compaction {
                snapshot: true,
                purge_upto: None
            }
        );
        // The snapshot at 100 is there: purge up to 90; 50 more entries, not due.
        log.snapshot_index = Some(100);
        log.applied_index = Some(150);
        assert_eq!(
            compaction(&log, 100, 10),
            Compaction {
                snapshot: false,
                purge_upto: Some(90)
            }
        );
        // Purged to 90 already: nothing more to purge until the next snapshot.
        log.purged_index = Some(90);
        assert_eq!(compaction(&log, 100, 10), Compaction::default());
        // A snapshot kept fewer entries than are kept before it: no purge.
        let young = LogObservation {
            applied_index: Some(5),
            snapshot_index: Some(5),
            ..LogObservation::default()
        };
        assert_eq!(compaction(&young, 100, 10).purge_upto, None);
    }

    #[test]
    fn an_actor_that_saw_the_applied_state_agrees() {
        let view = seen(Phase::TimedBidding, Some(5_000), 3);
        assert_eq!(disagreement(Some(&view), Some(&view.clone())), None);
    }

    #[test]
    fn phase_deadline_or_bid_count_behind_the_state_machine_disagrees() {
        let applied = seen(Phase::TimedBidding, Some(5_000), 3);
        let behind = [
            seen(Phase::Listing, Some(5_000), 3),
            seen(Phase::TimedBidding, Some(4_000), 3),
            seen(Phase::TimedBidding, Some(5_000), 2),
        ];
        for view in behind {
            let reason = disagreement(Some(&view), Some(&applied));
            assert!(
                reason.is_some(),
                "{view:?} should disagree with {applied:?}"
            );
        }
        let reason = disagreement(None, Some(&applied)).unwrap_or_default();
        assert!(reason.contains("never read"), "{reason}");
    }

    #[test]
    fn an_archived_auction_has_nothing_to_disagree_with() {
        let view = seen(Phase::Sold, None, 3);
        assert_eq!(disagreement(Some(&view), None), None);
    }

    #[test]
    fn a_disagreement_is_rebuilt_only_when_it_persists_over_an_unchanged_state() {
        let applied = seen(Phase::TimedBidding, Some(5_000), 3);
        let views = HashMap::from([("a1".to_string(), applied.clone())]);
        let stale = seen(Phase::Listing, Some(1), 0);
        let answers = || vec![("a1".to_string(), Some(Some(stale.clone())))];
        // First sweep: only a suspect (an event may still be on its way).
        let first = sort_probes(answers(), &views, &HashMap::new());
        assert!(first.disagreeing.is_empty());
        assert_eq!(first.suspects.get("a1"), Some(&applied));
        // Next sweep, same applied view and the actor still behind: rebuilt.
        let second = sort_probes(answers(), &views, &first.suspects);
        assert_eq!(second.disagreeing.len(), 1);
        assert_eq!(second.disagreeing[0].0, "a1");
        assert!(second.suspects.is_empty());
        // The state machine moved meanwhile: a suspect again, not rebuilt.
        let moved = HashMap::from([("a1".to_string(), seen(Phase::Scheduled, None, 9))]);
        let third = sort_probes(answers(), &views, &moved);
        assert!(third.disagreeing.is_empty());
        assert_eq!(third.suspects.get("a1"), Some(&applied));
        // No answer within the bound: stuck, whatever it saw.
        let stuck = sort_probes(vec![("a1".to_string(), None)], &views, &HashMap::new());
        assert_eq!(stuck.stuck, vec!["a1".to_string()]);
        // Archived meanwhile: nothing to compare, nothing done.
        let gone = sort_probes(answers(), &HashMap::new(), &first.suspects);
        assert_eq!(gone, Probed::default());
    }
}

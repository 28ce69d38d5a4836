//! The Janitor actor purifies the node on a timer (DESIGN.md decision 7).
//!
//! Each sweep:
//! - on the leader, it proposes `Command::Purge` so expired sessions and old idempotency
//!   records leave the replicated state, and `Command::Archive` when auctions closed more
//!   than `closed_auction_linger_ms` ago, so they move to every node's on-disk archive;
//! - on every node, it probes each Auction actor's mailbox: one that does not answer
//!   within `STUCK_AFTER` is replaced, a dead one (it panicked) is restarted, and one whose
//!   view (`SeenState`) disagrees with the state machine's in two sweeps in a row, while
//!   the state machine's stayed the same, is rebuilt. The ResourcePool also restarts
//!   actors of live auctions that stopped and releases those of auctions closed long
//!   enough ago or archived;
//! - on every node, it has openraft build a snapshot once `snapshot_after_entries` entries
//!   were applied since the last one and the log written since takes at least as many
//!   bytes as that snapshot (so rewriting a large state never costs more than the log it
//!   replaces), and purge the log up to `log_entries_kept` entries before the snapshot.
//!
//! - it hands the heap's free pages back to the operating system (`malloc_trim`).
//!
//! The last report is served at `GET /control/v1/janitor`.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use futures::future::join_all;
use serde::Serialize;

use super::auction::{Ping, SeenState};
use super::resource_pool::{ListActors, ResourcePool, Sweep};
use super::supervisor::{IsLeader, Propose, ProposeError, Supervisor};
use super::wall_clock_ms;
use gavel_kernel::{Command, Outcome};
use crate::replication::{ArchiveStore, GavelRaft, SharedState, StorageSizes};

/// An Auction actor whose mailbox is not drained within this bound is replaced.
const STUCK_AFTER: Duration = Duration::from_secs(2);

pub struct JanitorSettings {
    pub interval_ms: u64,
    pub request_retention_ms: u64,
    /// How long a closed auction stays in the live state (and its actor) before it is
    /// archived.
    pub closed_auction_linger_ms: u64,
    /// How long an archived auction stays in the archive after its close; 0 keeps it
    /// for ever.
    pub archive_retention_ms: u64,
    /// Build a snapshot once this many entries were applied since the last one.
    pub snapshot_after_entries: u64,
    /// Log entries kept before the snapshot when purging, for followers that lag a little.
    pub log_entries_kept: u64,
}

/// What the node shares with its Janitor.
pub struct JanitorHandles {
    pub supervisor: Addr<Supervisor>,
    pub pool: Addr<ResourcePool>,
    pub raft: GavelRaft,
    pub state: SharedState,
    pub archive: ArchiveStore,
    pub sizes: StorageSizes,
}

/// What the last sweep did, and totals since the node started.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct JanitorReport {
    /// When the last sweep finished; null before the first.
    pub last_sweep_at_ms: Option<u64>,
    pub sweeps: u64,
    pub sessions_expired: u64,
    pub requests_expired: u64,
    /// Auction actors the sweeps (re)started: live auctions whose actor had stopped or
    /// been replaced, or that entered the preload window.
    pub actors_started: u64,
    pub actors_stuck_replaced: u64,
    /// Auction actors found dead (they panicked); live auctions got a new actor.
    pub actors_crashed: u64,
    /// Auction actors rebuilt because their view disagreed with the state machine.
    pub actors_rebuilt: u64,
    pub auctions_released: u64,
    pub live_actors: u64,
    /// Why the last purge was not proposed, if it was not (for example: not the leader).
    pub last_purge_skipped: Option<String>,
    /// Closed auctions this node's sweeps moved to the archive (as leader).
    pub auctions_archived: u64,
    /// Why the last archive command failed, if it did.
    pub last_archive_error: Option<String>,
    /// Auctions in this node's on-disk archive.
    pub archive_size: u64,
    /// `Command::PruneArchive` entries this node's sweeps committed (as leader), each
    /// dropping archived auctions older than `janitor.archive_retention_ms`.
    pub archive_prunes: u64,
    /// Auctions in the live replicated state.
    pub state_auctions: u64,
    /// Snapshots and log purges the sweeps asked openraft for.
    pub snapshots_triggered: u64,
    pub log_purges_triggered: u64,
    /// Last log index in this node's latest snapshot, and the last purged one.
    pub last_snapshot_index: Option<u64>,
    pub last_purged_index: Option<u64>,
    /// Bytes of log written after the latest snapshot, and that snapshot's size: a
    /// snapshot is built only once the first reaches the second.
    pub log_bytes_since_snapshot: u64,
    pub last_snapshot_bytes: u64,
    pub last_applied_index: Option<u64>,
}

pub struct Janitor {
    handles: JanitorHandles,
    settings: JanitorSettings,
    report: JanitorReport,
    sweeping: bool,
    /// Actors whose view disagreed in the last sweep, with the state machine's view then.
    suspects: HashMap<String, SeenState>,
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

/// What the probes found.
#[derive(Default)]
struct Probed {
    stuck: Vec<String>,
    disagreeing: Vec<String>,
    suspects: HashMap<String, SeenState>,
}

/// One probed actor: `None` if it did not answer within `STUCK_AFTER`, else what it saw.
type ProbeAnswer = (String, Option<Option<SeenState>>);

/// Sorts probe answers: no answer in time is stuck; a disagreement seen twice with the
/// same applied view is rebuilt. (A dead actor is not here: the pool counts it.)
fn sort_probes(
    answers: Vec<ProbeAnswer>,
    state: &SharedState,
    previous: &HashMap<String, SeenState>,
) -> Probed {
    let mut probed = Probed::default();
    let state = state.read();
    for (auction_id, answer) in answers {
        let Some(seen) = answer else {
            probed.stuck.push(auction_id);
            continue;
        };
        let applied = state.kernel.auctions.get(&auction_id).map(SeenState::of);
        let Some(reason) = disagreement(seen.as_ref(), applied.as_ref()) else {
            continue;
        };
        let Some(applied) = applied else { continue };
        if previous.get(&auction_id) == Some(&applied) {
            tracing::warn!(%auction_id, %reason, "auction actor disagrees with the state machine");
            probed.disagreeing.push(auction_id);
        } else {
            probed.suspects.insert(auction_id, applied);
        }
    }
    probed
}

/// Outcome of the leader's proposals in one sweep.
type Proposed =
    Option<Result<Result<crate::actors::supervisor::Committed, ProposeError>, MailboxError>>;

impl Janitor {
    pub fn new(handles: JanitorHandles, settings: JanitorSettings) -> Self {
        Janitor {
            handles,
            settings,
            report: JanitorReport::default(),
            sweeping: false,
            suspects: HashMap::new(),
        }
    }

    /// Whether the archive holds an auction that closed more than `retention_ms` ago
    /// (never when the retention is 0, which keeps everything).
    fn prune_due(archive: &ArchiveStore, retention_ms: u64) -> bool {
        if retention_ms == 0 {
            return false;
        }
        let cutoff = wall_clock_ms().saturating_sub(retention_ms);
        match archive.oldest_closed_at_ms() {
            Ok(oldest) => oldest.is_some_and(|closed_at| closed_at < cutoff),
            Err(error) => {
                tracing::warn!(%error, "could not read the archive's oldest record");
                false
            }
        }
    }

    /// Whether some auction closed long enough ago to be archived.
    fn archive_due(state: &SharedState, linger_ms: u64) -> bool {
        let now_ms = wall_clock_ms();
        state.read().kernel.auctions.values().any(|auction| {
            auction.phase.is_closed()
                && auction
                    .closed_at_ms
                    .is_some_and(|closed_at| closed_at.saturating_add(linger_ms) <= now_ms)
        })
    }

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        if self.sweeping {
            return;
        }
        self.sweeping = true;
        let supervisor = self.handles.supervisor.clone();
        let pool = self.handles.pool.clone();
        let state = self.handles.state.clone();
        let purge = Propose {
            command: Command::Purge {
                request_retention_ms: self.settings.request_retention_ms,
            },
            actor: "janitor".to_string(),
        };
        let closed_linger_ms = self.settings.closed_auction_linger_ms;
        let archive = Propose {
            command: Command::Archive { closed_linger_ms },
            actor: "janitor".to_string(),
        };
        let retention_ms = self.settings.archive_retention_ms;
        let prune = Propose {
            command: Command::PruneArchive { retention_ms },
            actor: "janitor".to_string(),
        };
        let archive_store = self.handles.archive.clone();
        let previous = std::mem::take(&mut self.suspects);
        async move {
            // Only the leader proposes: a follower's proposal would be forwarded to the
            // leader, which does the same on its own sweep anyway.
            let (purged, archived, pruned): (Proposed, Proposed, Proposed) =
                match supervisor.send(IsLeader).await {
                    Ok(true) => {
                        let purged = Some(supervisor.send(purge).await);
                        let archived = if Self::archive_due(&state, closed_linger_ms) {
                            Some(supervisor.send(archive).await)
                        } else {
                            None
                        };
                        let pruned = if Self::prune_due(&archive_store, retention_ms) {
                            Some(supervisor.send(prune).await)
                        } else {
                            None
                        };
                        (purged, archived, pruned)
                    }
                    _ => (None, None, None),
                };
            let actors = pool.send(ListActors).await.unwrap_or_default();
            let probes = actors.into_iter().map(|(auction_id, addr)| async move {
                match tokio::time::timeout(STUCK_AFTER, addr.send(Ping)).await {
                    Ok(Ok(seen)) => Some((auction_id, Some(seen))),
                    // Dead (it panicked): the pool finds and counts it in the sweep.
                    Ok(Err(_)) => None,
                    Err(_) => Some((auction_id, None)),
                }
            });
            let answers: Vec<ProbeAnswer> = join_all(probes).await.into_iter().flatten().collect();
            let probed = sort_probes(answers, &state, &previous);
            let stuck_count = probed.stuck.len() as u64;
            let swept = pool
                .send(Sweep {
                    closed_linger_ms,
                    stuck: probed.stuck,
                    disagreeing: probed.disagreeing,
                })
                .await
                .unwrap_or_default();
            (
                purged,
                archived,
                pruned,
                stuck_count,
                swept,
                probed.suspects,
            )
        }
        .into_actor(self)
        .then(
            |(purged, archived, pruned, stuck_count, swept, suspects), janitor, _ctx| {
                janitor.suspects = suspects;
                janitor.record_proposals(purged, archived, pruned);
                let report = &mut janitor.report;
                report.actors_stuck_replaced += stuck_count;
                report.actors_started += swept.actors_started;
                report.actors_crashed += swept.actors_crashed;
                report.actors_rebuilt += swept.actors_rebuilt;
                report.auctions_released += swept.auctions_released;
                report.live_actors = swept.live_actors;
                report.archive_size = janitor.handles.archive.len() as u64;
                report.state_auctions = janitor.handles.state.read().kernel.auctions.len() as u64;
                let raft = janitor.handles.raft.clone();
                let sizes = janitor.handles.sizes.clone();
                let settings = (
                    janitor.settings.snapshot_after_entries,
                    janitor.settings.log_entries_kept,
                );
                compact_log(raft, sizes, settings.0, settings.1).into_actor(janitor)
            },
        )
        .map(|compacted, janitor, _ctx| {
            let report = &mut janitor.report;
            report.snapshots_triggered += u64::from(compacted.snapshot_triggered);
            report.log_purges_triggered += u64::from(compacted.purge_triggered);
            report.last_snapshot_index = compacted.snapshot_index;
            report.last_purged_index = compacted.purged_index;
            report.log_bytes_since_snapshot = compacted.log_bytes_since_snapshot;
            report.last_snapshot_bytes = compacted.snapshot_bytes;
            report.last_applied_index = compacted.applied_index;
            report.sweeps += 1;
            report.last_sweep_at_ms = Some(wall_clock_ms());
            release_free_heap();
            janitor.sweeping = false;
        })
        .spawn(ctx);
    }

    fn record_proposals(&mut self, purged: Proposed, archived: Proposed, pruned: Proposed) {
        let report = &mut self.report;
        report.last_purge_skipped = None;
        match purged {
            None => report.last_purge_skipped = Some("not the leader".to_string()),
            Some(Ok(Ok(committed))) => {
                if let Ok(Outcome::Purged { sessions, requests }) = committed.outcome {
                    report.sessions_expired += sessions;
                    report.requests_expired += requests;
                }
            }
            Some(Ok(Err(ProposeError::NotLeader { .. }))) => {
                report.last_purge_skipped = Some("not the leader".to_string());
            }
            Some(Ok(Err(error))) => report.last_purge_skipped = Some(error.to_string()),
            Some(Err(error)) => report.last_purge_skipped = Some(error.to_string()),
        }
        match archived {
            None => {}
            Some(Ok(Ok(committed))) => match committed.outcome {
                Ok(Outcome::Archived { auctions }) => {
                    report.auctions_archived += auctions;
                    report.last_archive_error = None;
                }
                Ok(other) => report.last_archive_error = Some(format!("answered {other:?}")),
                Err(rejection) => report.last_archive_error = Some(rejection.to_string()),
            },
            Some(Ok(Err(error))) => report.last_archive_error = Some(error.to_string()),
            Some(Err(error)) => report.last_archive_error = Some(error.to_string()),
        }
        match pruned {
            None => {}
            Some(Ok(Ok(committed))) => match committed.outcome {
                Ok(Outcome::ArchivePruned { .. }) => report.archive_prunes += 1,
                Ok(other) => report.last_archive_error = Some(format!("answered {other:?}")),
                Err(rejection) => report.last_archive_error = Some(rejection.to_string()),
            },
            Some(Ok(Err(error))) => report.last_archive_error = Some(error.to_string()),
            Some(Err(error)) => report.last_archive_error = Some(error.to_string()),
        }
    }
}

/// What `compact_log` asked for and where the log stands.
struct Compacted {
    snapshot_triggered: bool,
    purge_triggered: bool,
    snapshot_index: Option<u64>,
    purged_index: Option<u64>,
    applied_index: Option<u64>,
    log_bytes_since_snapshot: u64,
    snapshot_bytes: u64,
}

/// Whether to build a snapshot: enough entries since the last one, and at least as many
/// bytes of log since it as it takes itself.
fn snapshot_due(
    entries_since: u64,
    after_entries: u64,
    log_bytes_since: u64,
    snapshot_bytes: u64,
) -> bool {
    entries_since >= after_entries.max(1) && log_bytes_since >= snapshot_bytes
}

/// Asks openraft for a snapshot when `snapshot_due`, and for a purge of the log up to
/// `log_entries_kept` entries before the latest snapshot.
async fn compact_log(
    raft: GavelRaft,
    sizes: StorageSizes,
    snapshot_after_entries: u64,
    log_entries_kept: u64,
) -> Compacted {
    let metrics = raft.metrics().borrow().clone();
    let applied_index = metrics.last_applied.map(|log_id| log_id.index);
    let snapshot_index = metrics.snapshot.map(|log_id| log_id.index);
    let purged_index = metrics.purged.map(|log_id| log_id.index);
    let since_snapshot = applied_index
        .unwrap_or(0)
        .saturating_sub(snapshot_index.unwrap_or(0));
    let log_bytes_since_snapshot = sizes.log_bytes_after(snapshot_index);
    let snapshot_bytes = sizes.snapshot_bytes();
    let mut compacted = Compacted {
        snapshot_triggered: false,
        purge_triggered: false,
        snapshot_index,
        purged_index,
        applied_index,
        log_bytes_since_snapshot,
        snapshot_bytes,
    };
    let due = snapshot_due(
        since_snapshot,
        snapshot_after_entries,
        log_bytes_since_snapshot,
        snapshot_bytes,
    );
    if applied_index.is_some() && due {
        match raft.trigger().snapshot().await {
            Ok(()) => compacted.snapshot_triggered = true,
            Err(error) => tracing::warn!(%error, "janitor could not trigger a snapshot"),
        }
    }
    if let Some(upto) = snapshot_index.and_then(|index| index.checked_sub(log_entries_kept)) {
        if purged_index.is_none_or(|purged| purged < upto) {
            match raft.trigger().purge_log(upto).await {
                Ok(()) => compacted.purge_triggered = true,
                Err(error) => tracing::warn!(%error, "janitor could not trigger a log purge"),
            }
        }
    }
    compacted
}

/// Hands the heap's free pages back to the operating system. Auction actors, snapshots
/// and request bodies come and go in chunks of every size; glibc keeps what they freed in
/// its arenas, and without this the resident set creeps up however flat the live data is.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of glibc's arenas to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Actor for Janitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let interval = Duration::from_millis(self.settings.interval_ms);
        ctx.run_interval(interval, |janitor, ctx| janitor.sweep(ctx));
    }
}

/// The last purification report.
pub struct GetReport;

impl Message for GetReport {
    type Result = JanitorReport;
}

impl Handler<GetReport> for Janitor {
    type Result = MessageResult<GetReport>;

    fn handle(&mut self, _: GetReport, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.report.clone())
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

    #[test]
    fn a_snapshot_waits_for_enough_entries_and_as_much_log_as_it_takes() {
        // Entries counted first.
        assert!(!snapshot_due(1_999, 2_000, 10 << 20, 0));
        assert!(snapshot_due(2_000, 2_000, 1, 0));
        // A 50 MB snapshot is rewritten only once 50 MB of log were written after it.
        assert!(!snapshot_due(9_000, 2_000, 49 << 20, 50 << 20));
        assert!(snapshot_due(9_000, 2_000, 50 << 20, 50 << 20));
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

    fn shared_state_with(auction: gavel_kernel::Auction) -> SharedState {
        let mut applied = crate::replication::AppliedState::default();
        applied
            .kernel
            .auctions
            .insert(auction.spec.id.clone(), auction);
        std::sync::Arc::new(parking_lot::RwLock::new(applied))
    }

    fn auction(id: &str) -> gavel_kernel::Auction {
        gavel_kernel::Auction::new(gavel_kernel::AuctionSpec {
            id: id.to_string(),
            title: "parcel".to_string(),
            parcel_json: "{}".to_string(),
            start_price: 1000,
            increment: 100,
            increment_rule: Default::default(),
            reserve_price: None,
            price_cap: None,
            cap_confirm_ms: 60_000,
            failover_grace_ms: 60_000,
            listing_opens_at_ms: 10_000,
            listing_closes_at_ms: 20_000,
            countdown_ms: 60_000,
        })
    }

    #[test]
    fn a_disagreement_is_rebuilt_only_when_it_persists_over_an_unchanged_state() {
        let state = shared_state_with(auction("a1"));
        let applied = SeenState::of(&state.read().kernel.auctions["a1"]);
        let stale = seen(Phase::Listing, Some(1), 0);
        let answers = || vec![("a1".to_string(), Some(Some(stale.clone())))];
        // First sighting: only a suspect (an event may still be on its way).
        let first = sort_probes(answers(), &state, &HashMap::new());
        assert!(first.disagreeing.is_empty());
        assert_eq!(first.suspects.get("a1"), Some(&applied));
        // Same applied view a sweep later and the actor still behind: rebuilt.
        let second = sort_probes(answers(), &state, &first.suspects);
        assert_eq!(second.disagreeing, vec!["a1".to_string()]);
        // The state machine moved meanwhile: a suspect again, not rebuilt.
        let mut moved = HashMap::new();
        moved.insert("a1".to_string(), seen(Phase::Scheduled, None, 9));
        let third = sort_probes(answers(), &state, &moved);
        assert!(third.disagreeing.is_empty());
        // No answer within the bound: stuck, whatever it saw.
        let stuck = sort_probes(vec![("a1".to_string(), None)], &state, &HashMap::new());
        assert_eq!(stuck.stuck, vec!["a1".to_string()]);
    }
}

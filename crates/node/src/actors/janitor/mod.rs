//! The Janitor actor purifies the node on a timer (docs/DESIGN.md decision 7).
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
//! What to propose, replace, rebuild, snapshot and purge is decided by the plain
//! functions of `decisions`, from what the sweep observed and its time; the actor gathers
//! the observation and carries the decision out.
//!
//! The last report is served at `GET /control/v1/janitor`.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use futures::future::join_all;
use serde::Serialize;

use super::auction::{Ping, SeenState};
use super::messages::{Committed, IsLeader, Propose, ProposeError, Replicator};
use super::resource_pool::{ListActors, PoolSweep, Sweep};
use crate::clock::wall_clock_ms;
use crate::replication::{ArchiveStore, GavelRaft, SharedState, StorageSizes};
pub use decisions::disagreement;
use decisions::{
    compaction, proposals, sort_probes, LeaderObservation, LogObservation, ProbeAnswer,
};
use gavel_kernel::{Command, Outcome};

mod decisions;

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
    /// Where the leader's purge, archive and prune commands go (the Supervisor).
    pub supervisor: Replicator,
    /// The ResourcePool's probe list and sweep.
    pub list_actors: Recipient<ListActors>,
    pub pool_sweep: Recipient<Sweep>,
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

/// Outcome of one of the leader's proposals in a sweep.
type Proposed = Option<Result<Result<Committed, ProposeError>, MailboxError>>;

/// What the leader's proposals in one sweep came to (`None`: not proposed).
#[derive(Default)]
struct ProposalOutcomes {
    purged: Proposed,
    archived: Proposed,
    pruned: Proposed,
}

/// What the probes and the pool's sweep came to.
struct ProbeOutcome {
    stuck_count: u64,
    swept: PoolSweep,
    suspects: HashMap<String, SeenState>,
}

/// What one sweep needs, away from the actor.
struct SweepJob {
    supervisor: Replicator,
    list_actors: Recipient<ListActors>,
    pool_sweep: Recipient<Sweep>,
    state: SharedState,
    archive: ArchiveStore,
    request_retention_ms: u64,
    closed_linger_ms: u64,
    archive_retention_ms: u64,
    /// The suspects of the last sweep.
    previous: HashMap<String, SeenState>,
}

impl SweepJob {
    async fn run(self) -> (ProposalOutcomes, ProbeOutcome) {
        let proposed = self.propose().await;
        let probed = self.probe().await;
        (proposed, probed)
    }

    /// What the leader decides from: the time, the live state's closed auctions and the
    /// archive's oldest record (read only where a prune could be due).
    fn observe(&self, is_leader: bool) -> LeaderObservation {
        let earliest_closed_at_ms = is_leader
            .then(|| earliest_closed_at_ms(&self.state))
            .flatten();
        let oldest_archived_closed_at_ms = (is_leader && self.archive_retention_ms != 0)
            .then(|| match self.archive.oldest_closed_at_ms() {
                Ok(oldest) => oldest,
                Err(error) => {
                    tracing::warn!(%error, "could not read the archive's oldest record");
                    None
                }
            })
            .flatten();
        LeaderObservation {
            is_leader,
            now_ms: wall_clock_ms(),
            earliest_closed_at_ms,
            oldest_archived_closed_at_ms,
        }
    }

    /// The leader's purge, archive and prune, as `decisions::proposals` says.
    async fn propose(&self) -> ProposalOutcomes {
        let is_leader = self
            .supervisor
            .is_leader
            .send(IsLeader)
            .await
            .unwrap_or(false);
        let decided = proposals(
            &self.observe(is_leader),
            self.closed_linger_ms,
            self.archive_retention_ms,
        );
        let mut outcomes = ProposalOutcomes::default();
        if decided.purge {
            let purge = Command::Purge {
                request_retention_ms: self.request_retention_ms,
            };
            outcomes.purged = Some(self.send(purge).await);
        }
        if decided.archive {
            let closed_linger_ms = self.closed_linger_ms;
            outcomes.archived = Some(self.send(Command::Archive { closed_linger_ms }).await);
        }
        if decided.prune {
            let retention_ms = self.archive_retention_ms;
            outcomes.pruned = Some(self.send(Command::PruneArchive { retention_ms }).await);
        }
        outcomes
    }

    async fn send(
        &self,
        command: Command,
    ) -> Result<Result<Committed, ProposeError>, MailboxError> {
        let actor = "janitor".to_string();
        self.supervisor
            .propose
            .send(Propose { command, actor })
            .await
    }

    /// Probes every Auction actor's mailbox, sorts the answers (`decisions::sort_probes`)
    /// and has the pool replace, rebuild, restart and release actors.
    async fn probe(&self) -> ProbeOutcome {
        let actors = self.list_actors.send(ListActors).await.unwrap_or_default();
        let probes = actors.into_iter().map(|(auction_id, addr)| async move {
            match tokio::time::timeout(STUCK_AFTER, addr.send(Ping)).await {
                Ok(Ok(seen)) => Some((auction_id, Some(seen))),
                // Dead (it panicked): the pool finds and counts it in the sweep.
                Ok(Err(_)) => None,
                Err(_) => Some((auction_id, None)),
            }
        });
        let answers: Vec<ProbeAnswer> = join_all(probes).await.into_iter().flatten().collect();
        let applied = applied_views(&self.state, &answers);
        let probed = sort_probes(answers, &applied, &self.previous);
        for (auction_id, reason) in &probed.disagreeing {
            tracing::warn!(%auction_id, %reason, "auction actor disagrees with the state machine");
        }
        let stuck_count = probed.stuck.len() as u64;
        let sweep = Sweep {
            closed_linger_ms: self.closed_linger_ms,
            stuck: probed.stuck,
            disagreeing: probed.disagreeing.into_iter().map(|(id, _)| id).collect(),
        };
        let swept = self.pool_sweep.send(sweep).await.unwrap_or_default();
        ProbeOutcome {
            stuck_count,
            swept,
            suspects: probed.suspects,
        }
    }
}

/// When the earliest-closed auction of the live state closed.
fn earliest_closed_at_ms(state: &SharedState) -> Option<u64> {
    let state = state.read();
    state
        .kernel
        .auctions
        .values()
        .filter(|auction| auction.phase.is_closed())
        .filter_map(|auction| auction.closed_at_ms)
        .min()
}

/// The state machine's view of each probed auction still in the live state.
fn applied_views(state: &SharedState, answers: &[ProbeAnswer]) -> HashMap<String, SeenState> {
    let state = state.read();
    answers
        .iter()
        .filter_map(|(auction_id, _)| {
            let auction = state.kernel.auctions.get(auction_id)?;
            Some((auction_id.clone(), SeenState::of(auction)))
        })
        .collect()
}

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

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        if self.sweeping {
            return;
        }
        self.sweeping = true;
        let job = SweepJob {
            supervisor: self.handles.supervisor.clone(),
            list_actors: self.handles.list_actors.clone(),
            pool_sweep: self.handles.pool_sweep.clone(),
            state: self.handles.state.clone(),
            archive: self.handles.archive.clone(),
            request_retention_ms: self.settings.request_retention_ms,
            closed_linger_ms: self.settings.closed_auction_linger_ms,
            archive_retention_ms: self.settings.archive_retention_ms,
            previous: std::mem::take(&mut self.suspects),
        };
        job.run()
            .into_actor(self)
            .then(|(proposed, probed), janitor, _ctx| {
                janitor.record_proposals(proposed);
                janitor.record_probes(probed);
                let raft = janitor.handles.raft.clone();
                let sizes = janitor.handles.sizes.clone();
                let (after_entries, kept) = (
                    janitor.settings.snapshot_after_entries,
                    janitor.settings.log_entries_kept,
                );
                compact_log(raft, sizes, after_entries, kept).into_actor(janitor)
            })
            .map(|compacted, janitor, _ctx| {
                janitor.record_compaction(compacted);
                release_free_heap();
                janitor.sweeping = false;
            })
            .spawn(ctx);
    }

    fn record_probes(&mut self, probed: ProbeOutcome) {
        self.suspects = probed.suspects;
        let (report, swept) = (&mut self.report, probed.swept);
        report.actors_stuck_replaced += probed.stuck_count;
        report.actors_started += swept.actors_started;
        report.actors_crashed += swept.actors_crashed;
        report.actors_rebuilt += swept.actors_rebuilt;
        report.auctions_released += swept.auctions_released;
        report.live_actors = swept.live_actors;
        report.archive_size = self.handles.archive.len() as u64;
        report.state_auctions = self.handles.state.read().kernel.auctions.len() as u64;
    }

    fn record_compaction(&mut self, compacted: Compacted) {
        let report = &mut self.report;
        report.snapshots_triggered += u64::from(compacted.snapshot_triggered);
        report.log_purges_triggered += u64::from(compacted.purge_triggered);
        report.last_snapshot_index = compacted.log.snapshot_index;
        report.last_purged_index = compacted.log.purged_index;
        report.log_bytes_since_snapshot = compacted.log.log_bytes_since_snapshot;
        report.last_snapshot_bytes = compacted.log.snapshot_bytes;
        report.last_applied_index = compacted.log.applied_index;
        report.sweeps += 1;
        report.last_sweep_at_ms = Some(wall_clock_ms());
    }

    fn record_proposals(&mut self, outcomes: ProposalOutcomes) {
        let report = &mut self.report;
        report.last_purge_skipped = None;
        match outcomes.purged {
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
        if let Some(archived) = outcomes.archived {
            match archived
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                Ok(committed) => match committed.outcome {
                    Ok(Outcome::Archived { auctions }) => {
                        report.auctions_archived += auctions;
                        report.last_archive_error = None;
                    }
                    Ok(other) => report.last_archive_error = Some(format!("answered {other:?}")),
                    Err(rejection) => report.last_archive_error = Some(rejection.to_string()),
                },
                Err(error) => report.last_archive_error = Some(error),
            }
        }
        if let Some(pruned) = outcomes.pruned {
            match pruned
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()))
            {
                Ok(committed) => match committed.outcome {
                    Ok(Outcome::ArchivePruned { .. }) => report.archive_prunes += 1,
                    Ok(other) => report.last_archive_error = Some(format!("answered {other:?}")),
                    Err(rejection) => report.last_archive_error = Some(rejection.to_string()),
                },
                Err(error) => report.last_archive_error = Some(error),
            }
        }
    }
}

/// What `compact_log` asked for and where the log stood.
struct Compacted {
    snapshot_triggered: bool,
    purge_triggered: bool,
    log: LogObservation,
}

/// Asks openraft for a snapshot and a log purge as `decisions::compaction` says.
async fn compact_log(
    raft: GavelRaft,
    sizes: StorageSizes,
    snapshot_after_entries: u64,
    log_entries_kept: u64,
) -> Compacted {
    let metrics = raft.metrics().borrow().clone();
    let snapshot_index = metrics.snapshot.map(|log_id| log_id.index);
    let log = LogObservation {
        applied_index: metrics.last_applied.map(|log_id| log_id.index),
        snapshot_index,
        purged_index: metrics.purged.map(|log_id| log_id.index),
        log_bytes_since_snapshot: sizes.log_bytes_after(snapshot_index),
        snapshot_bytes: sizes.snapshot_bytes(),
    };
    let decided = compaction(&log, snapshot_after_entries, log_entries_kept);
    let mut compacted = Compacted {
        snapshot_triggered: false,
        purge_triggered: false,
        log,
    };
    if decided.snapshot {
        match raft.trigger().snapshot().await {
            Ok(()) => compacted.snapshot_triggered = true,
            Err(error) => tracing::warn!(%error, "janitor could not trigger a snapshot"),
        }
    }
    if let Some(upto) = decided.purge_upto {
        match raft.trigger().purge_log(upto).await {
            Ok(()) => compacted.purge_triggered = true,
            Err(error) => tracing::warn!(%error, "janitor could not trigger a log purge"),
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

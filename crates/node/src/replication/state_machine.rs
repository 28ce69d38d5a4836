//! The Raft state machine: openraft's `RaftStateMachine` over the in-memory `SharedState`.
//! `apply` hands each committed command to the kernel (`gavel_kernel::Replica::apply`,
//! which changes the kernel state and the exchange ledger) and carries out the effects it
//! answers (blank and membership entries only move `last_applied` and the membership);
//! before the commands of the first command
//! entry of each leader term it applies the takeover rule (`kernel::begin_term`, with the
//! term and leader of the entry's log id). It answers an `ApplyResponse` per entry,
//! and once the batch is applied publishes one `AppliedEvents` per entry that produced
//! events; the broadcast is bounded and never blocks the kernel. The state itself is not
//! written on apply: snapshots are (`snapshots`). `open` loads the current one, and
//! openraft then re-applies the committed entries after it
//! (`StorageHelper::get_initial_state`, called by `Raft::new`).
//! Auctions that a `Command::Archive` entry takes out of the kernel state go to the
//! node's `ArchiveStore` as the entry is applied; a snapshot also carries the newest
//! archived records (see `archive` for why, and for the bound), and installing one notes
//! the older records the node still has to fetch (`archive_fetch`). A checkpoint notes
//! the kernel state's digest and what the node's archive holds.

use std::io::Cursor;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, Snapshot, SnapshotMeta, StorageError,
    StoredMembership,
};
use tokio::sync::broadcast;

use super::archive::{ArchiveStore, ArchivedAuction};
use super::durable::Durable;
use super::error::StoreError;
use super::snapshots::{
    applied_state_from, payload_for, snapshot_error, SnapshotBuilder, SnapshotStore, StoredSnapshot,
};
use super::{AppliedEvents, AppliedState, ApplyResponse, NodeInfo, SharedState, TypeConfig};
use gavel_kernel::command::MAX_PRUNED_PER_COMMAND;
use gavel_kernel::{Applied, Command, Effect, Envelope, Replica};

/// The state machine openraft drives.
pub struct StateMachineStore {
    state: SharedState,
    events: broadcast::Sender<Arc<AppliedEvents>>,
    snapshots: SnapshotStore,
    archive: ArchiveStore,
}

impl StateMachineStore {
    /// Opens the state machine on the node's database, with the state of the stored
    /// snapshot if there is one, and the shared handle readers use.
    pub fn open(
        durable: Arc<Durable>,
        archive: ArchiveStore,
        events: broadcast::Sender<Arc<AppliedEvents>>,
    ) -> Result<(Self, SharedState), StoreError> {
        let snapshots = SnapshotStore::open(&durable)?;
        let applied = match snapshots.load()? {
            Some(stored) => applied_state_from(payload_for(&stored.meta, &stored.data)?),
            None => AppliedState::default(),
        };
        let state: SharedState = Arc::new(parking_lot::RwLock::new(applied));
        let store = StateMachineStore {
            state: state.clone(),
            events,
            snapshots,
            archive,
        };
        Ok((store, state))
    }
}

/// The write lock on the shared state, waited for without blocking the runtime's thread:
/// a snapshot being copied holds the read lock for a moment (see `build_snapshot`), and
/// everything else on this thread (Raft's core and heartbeats, the peer listener) must go
/// on meanwhile. Readers hold the lock only briefly, so the wait is the snapshot's.
async fn write_state(state: &SharedState) -> parking_lot::RwLockWriteGuard<'_, AppliedState> {
    let mut polls: u32 = 0;
    loop {
        if let Some(guard) = state.try_write() {
            return guard;
        }
        polls = polls.saturating_add(1);
        if polls < 8 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
}

/// Applies one command of a committed entry to the kernel state and the exchange ledger
/// (`gavel_kernel::Replica::apply`). A broken kernel invariant panics; it stops Raft with a
/// storage error rather than leave it waiting on a dead state machine task.
// The error type is openraft's, as `RaftStateMachine::apply` returns it.
#[allow(clippy::result_large_err)]
fn apply_envelope(
    state: &mut AppliedState,
    envelope: &Envelope,
    log_id: LogId<u64>,
) -> Result<Applied, StorageError<u64>> {
    guarded(log_id, || replica(state).apply(envelope, log_id.index))
}

/// The kernel state and the exchange ledger of the node's state, as the kernel changes
/// them.
fn replica(state: &mut AppliedState) -> Replica<'_> {
    Replica {
        state: &mut state.kernel,
        ledger: &mut state.exchange,
    }
}

/// Before the first command of a leader's term: the takeover rule (`kernel::begin_term`),
/// at the stamp of the entry's first command; its closes go to the exchange outbox too.
#[allow(clippy::result_large_err)]
fn begin_term(
    state: &mut AppliedState,
    first: &Envelope,
    log_id: LogId<u64>,
) -> Result<Option<Applied>, StorageError<u64>> {
    let leader = log_id.leader_id;
    let takeover = guarded(log_id, || {
        replica(state).begin_term(leader.term, leader.node_id, first.now_ms, first.seed)
    })?;
    if let Some(takeover) = &takeover {
        tracing::info!(
            term = leader.term,
            leader = leader.node_id,
            log_index = log_id.index,
            extended = ?takeover.result,
            "takeover applied"
        );
    }
    Ok(takeover)
}

/// Runs a kernel step, turning a panic (a broken invariant) into a storage error.
#[allow(clippy::result_large_err)]
fn guarded<T>(log_id: LogId<u64>, step: impl FnOnce() -> T) -> Result<T, StorageError<u64>> {
    std::panic::catch_unwind(AssertUnwindSafe(step)).map_err(|panic| {
        let detail = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("kernel panic");
        StoreError::KernelPanic {
            index: log_id.index,
            detail: detail.to_string(),
        }
        .into_storage(ErrorSubject::Apply(log_id), ErrorVerb::Write)
    })
}

impl StateMachineStore {
    /// Carries out what the kernel decided beside the state: archived auctions into the
    /// node's archive, a prune of it. Outbox records are the Exchange actor's, which reads
    /// them from the state.
    #[allow(clippy::result_large_err)]
    fn carry_out(&self, effect: Effect, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let written = match effect {
            Effect::Archive(auctions) if !auctions.is_empty() => {
                let archived: Vec<ArchivedAuction> = auctions
                    .into_iter()
                    .map(|auction| ArchivedAuction {
                        archived_at_index: log_id.index,
                        auction,
                    })
                    .collect();
                self.archive.put(&archived)
            }
            Effect::PruneArchive { closed_before_ms } => self
                .archive
                .prune_closed_before(closed_before_ms, MAX_PRUNED_PER_COMMAND)
                .map(|_| ()),
            Effect::Archive(_) | Effect::Outbox { .. } => Ok(()),
        };
        written.map_err(|error| error.into_storage(ErrorSubject::Apply(log_id), ErrorVerb::Write))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, NodeInfo>), StorageError<u64>> {
        let state = self.state.read();
        Ok((state.last_applied, state.membership.clone()))
    }

    // openraft's `StorageError` is the error type of the whole storage API.
    #[allow(clippy::result_large_err)]
    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResponse>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut responses = Vec::new();
        let mut published = Vec::new();
        {
            let mut state = write_state(&self.state).await;
            for entry in entries {
                let log_id = entry.log_id;
                let index = log_id.index;
                let expected = state
                    .last_applied
                    .as_ref()
                    .map_or(0, |last| last.index.saturating_add(1));
                if state.last_applied.is_some() && index != expected {
                    let error = StoreError::corrupt(
                        format!("log entry {index}"),
                        format!("applied out of order: the next index to apply is {expected}"),
                    );
                    return Err(error.into_storage(ErrorSubject::Apply(log_id), ErrorVerb::Write));
                }
                let response = match entry.payload {
                    EntryPayload::Blank => ApplyResponse::no_command(index, "blank"),
                    EntryPayload::Normal(proposal) => {
                        let mut results = Vec::with_capacity(proposal.envelopes.len());
                        let mut events = Vec::new();
                        if let Some(first) = proposal.envelopes.first() {
                            if let Some(takeover) = begin_term(&mut state, first, log_id)? {
                                events.extend(takeover.events);
                            }
                        }
                        for envelope in proposal.envelopes.iter() {
                            let state = &mut *state;
                            let applied = apply_envelope(state, envelope, log_id)?;
                            if let (Command::Checkpoint { label }, Ok(_)) =
                                (&envelope.command, &applied.result)
                            {
                                let archive = self.archive.status().map_err(|error| {
                                    error.into_storage(ErrorSubject::Apply(log_id), ErrorVerb::Read)
                                })?;
                                state.note_checkpoint(label, index, archive);
                            }
                            let Applied {
                                result,
                                events: produced,
                                effects,
                            } = applied;
                            for effect in effects {
                                self.carry_out(effect, log_id)?;
                            }
                            events.extend(produced);
                            results.push(result);
                        }
                        if !events.is_empty() {
                            published.push(Arc::new(AppliedEvents {
                                log_index: index,
                                events,
                            }));
                        }
                        ApplyResponse { results }
                    }
                    EntryPayload::Membership(membership) => {
                        state.membership = StoredMembership::new(Some(log_id), membership);
                        ApplyResponse::no_command(index, "membership")
                    }
                };
                state.last_applied = Some(log_id);
                state.last_applied_index = index;
                responses.push(response);
            }
        }
        for events in published {
            // No subscriber is fine; a lagging one finds out from its receiver.
            let _ = self.events.send(events);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            state: self.state.clone(),
            snapshots: self.snapshots.clone(),
            archive: self.archive.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, NodeInfo>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        let mut payload =
            payload_for(meta, &stored.data).map_err(snapshot_error(Some(meta), ErrorVerb::Read))?;
        // A state that breaks a kernel invariant is refused before anything is written: the
        // node keeps the state it has (and Raft stops with the error).
        gavel_kernel::invariants::check_state(&payload.kernel)
            .map_err(|violation| {
                StoreError::corrupt(
                    format!("snapshot {}", meta.snapshot_id),
                    format!("its state breaks a kernel invariant: {violation}"),
                )
            })
            .map_err(snapshot_error(Some(meta), ErrorVerb::Read))?;
        // The records the snapshot carries, and a note of those archived between what this
        // node applied and the snapshot's index (fetched from a peer by `archive_fetch`),
        // are durable before the snapshot that no longer holds those auctions is stored.
        let applied_here = self.state.read().last_applied_index;
        let snapshot_index = meta.last_log_id.map_or(0, |log_id| log_id.index);
        self.archive
            .put(&std::mem::take(&mut payload.archived))
            .and_then(|()| self.archive.begin_catch_up(applied_here, snapshot_index))
            .map_err(snapshot_error(Some(meta), ErrorVerb::Write))?;
        self.archive
            .make_durable()
            .await
            .map_err(snapshot_error(Some(meta), ErrorVerb::Write))?;
        let (saved, _) = self
            .snapshots
            .save(stored)
            .await
            .map_err(snapshot_error(Some(meta), ErrorVerb::Write))?;
        if !saved {
            // Openraft installs only snapshots ahead of what this node applied.
            tracing::warn!(snapshot = %meta, "a newer snapshot was already stored");
        }
        *write_state(&self.state).await = applied_state_from(payload);
        tracing::info!(snapshot = %meta, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        let stored = self
            .snapshots
            .load()
            .map_err(snapshot_error(None, ErrorVerb::Read))?;
        Ok(stored.map(|stored| Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}

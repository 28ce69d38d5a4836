//! The Raft state machine: openraft's `RaftStateMachine` over the in-memory `SharedState`.
//! `apply` hands each committed command to `kernel::apply` (blank and membership entries
//! only move `last_applied` and the membership), answers an `ApplyResponse` per entry,
//! and once the batch is applied publishes one `AppliedEvents` per entry that produced
//! events; the broadcast is bounded and never blocks the kernel. The state itself is not
//! written on apply: snapshots are. A snapshot is the encoded kernel state with the last
//! applied log id and membership, stored in a file of its own (`snapshot_file`) and made
//! durable before it is reported built or installed; the state is copied under the read
//! lock (cheaply: bids and request records are persistent structures) and encoded after
//! it on a thread of its own at a lower priority (`background`). `open` loads it, and
//! openraft then re-applies the committed entries after it
//! (`StorageHelper::get_initial_state`, called by `Raft::new`).
//! Auctions that a `Command::Archive` entry takes out of the kernel state go to the
//! node's `ArchiveStore` as the entry is applied; a snapshot also carries the newest
//! archived records (see `archive` for why, and for the bound).

use std::io::Cursor;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::archive::{ArchiveStore, ArchivedAuction, ARCHIVED_IN_SNAPSHOT};
use super::background::at_low_priority;
use super::codec::{decode, encode, encode_large};
use super::durable::Durable;
use super::error::{blocking, StoreError};
use super::exchange::{apply_with_ledger, ExchangeLedger};
use super::snapshot_file;
use super::{AppliedEvents, AppliedState, ApplyResponse, NodeInfo, SharedState, TypeConfig};
use crate::kernel::command::MAX_PRUNED_PER_COMMAND;
use crate::kernel::{Applied, Command, Envelope, State};

/// The current snapshot's metadata and its data, written together in one sled batch.
const KEY_META: &[u8] = b"meta";
const KEY_DATA: &[u8] = b"data";

/// The state machine openraft drives.
pub struct StateMachineStore {
    state: SharedState,
    events: broadcast::Sender<Arc<AppliedEvents>>,
    snapshots: SnapshotStore,
    archive: ArchiveStore,
}

/// Builds a snapshot of the shared state; openraft runs it beside `apply`.
pub struct SnapshotBuilder {
    state: SharedState,
    snapshots: SnapshotStore,
    archive: ArchiveStore,
}

/// The durable home of the current snapshot: its file (see `snapshot_file`). Directories
/// written before snapshots had a file hold theirs in the sled tree `snapshot`, still read
/// until the first file is written (which empties the tree).
#[derive(Clone)]
struct SnapshotStore {
    tree: sled::Tree,
    file: PathBuf,
    /// The metadata of the snapshot stored now; held while a snapshot is written.
    current: Arc<Mutex<Option<SnapshotMeta<u64, NodeInfo>>>>,
}

/// What the tree `snapshot` holds: the metadata, and the data (an encoded
/// `SnapshotPayload`) as openraft hands it around.
struct StoredSnapshot {
    meta: SnapshotMeta<u64, NodeInfo>,
    data: Vec<u8>,
}

/// A snapshot's data, as decoded.
#[derive(Deserialize)]
struct SnapshotPayload {
    kernel: State,
    last_applied: Option<LogId<u64>>,
    last_membership: StoredMembership<u64, NodeInfo>,
    /// The newest archived auctions (see `archive::ARCHIVED_IN_SNAPSHOT`).
    archived: Vec<ArchivedAuction>,
    exchange: ExchangeLedger,
}

/// A snapshot's data as written before the exchange ledger was carried in it; still read.
#[derive(Deserialize)]
struct SnapshotPayloadWithoutExchange {
    kernel: State,
    last_applied: Option<LogId<u64>>,
    last_membership: StoredMembership<u64, NodeInfo>,
    archived: Vec<ArchivedAuction>,
}

/// A snapshot's data as written before archived auctions were carried in it; still read.
#[derive(Deserialize)]
struct SnapshotPayloadWithoutArchive {
    kernel: State,
    last_applied: Option<LogId<u64>>,
    last_membership: StoredMembership<u64, NodeInfo>,
}

/// A snapshot's data, as encoded from borrowed state (same encoding as `SnapshotPayload`).
#[derive(Serialize)]
struct SnapshotPayloadRef<'a> {
    kernel: &'a State,
    last_applied: &'a Option<LogId<u64>>,
    last_membership: &'a StoredMembership<u64, NodeInfo>,
    archived: &'a [ArchivedAuction],
    exchange: &'a ExchangeLedger,
}

/// The data of a snapshot of `kernel` at `last_applied`, as `build_snapshot` encodes it
/// (a restore seeds new nodes with one).
pub(super) fn snapshot_data(
    kernel: &State,
    last_applied: &Option<LogId<u64>>,
    last_membership: &StoredMembership<u64, NodeInfo>,
    archived: &[ArchivedAuction],
    exchange: &ExchangeLedger,
) -> Result<Vec<u8>, StoreError> {
    encode(
        "snapshot",
        &SnapshotPayloadRef {
            kernel,
            last_applied,
            last_membership,
            archived,
            exchange,
        },
    )
}

fn snapshot_error(
    meta: Option<&SnapshotMeta<u64, NodeInfo>>,
    verb: ErrorVerb,
) -> impl FnOnce(StoreError) -> StorageError<u64> {
    let subject = ErrorSubject::Snapshot(meta.map(SnapshotMeta::signature));
    move |error| error.into_storage(subject, verb)
}

impl SnapshotStore {
    fn open(durable: &Durable) -> Result<Self, StoreError> {
        let tree = durable
            .db()
            .open_tree("snapshot")
            .map_err(StoreError::sled("open the snapshot tree"))?;
        let store = SnapshotStore {
            tree,
            file: snapshot_file::snapshot_path(durable.dir()),
            current: Arc::new(Mutex::new(None)),
        };
        Ok(store)
    }

    /// The stored snapshot, from its file or else from the tree. Its data is checked by
    /// whoever decodes it: `open` here, `install_snapshot` on a follower that receives it.
    fn load(&self) -> Result<Option<StoredSnapshot>, StoreError> {
        let stored = match snapshot_file::read(&self.file)? {
            Some(file) => Some(StoredSnapshot {
                meta: decode("snapshot metadata", &file.meta_record)?,
                data: file.data,
            }),
            None => self.load_from_tree()?,
        };
        *self.current.lock() = stored.as_ref().map(|stored| stored.meta.clone());
        Ok(stored)
    }

    fn load_from_tree(&self) -> Result<Option<StoredSnapshot>, StoreError> {
        let Some(meta) = self
            .tree
            .get(KEY_META)
            .map_err(StoreError::sled("read the snapshot metadata"))?
            .map(|bytes| decode::<SnapshotMeta<u64, NodeInfo>>("snapshot metadata", &bytes))
            .transpose()?
        else {
            return Ok(None);
        };
        let data = self
            .tree
            .get(KEY_DATA)
            .map_err(StoreError::sled("read the snapshot data"))?
            .ok_or_else(|| {
                StoreError::corrupt(
                    format!("snapshot {}", meta.snapshot_id),
                    "its data is missing",
                )
            })?;
        Ok(Some(StoredSnapshot {
            meta,
            data: data.to_vec(),
        }))
    }

    /// Stores `stored` durably as the current snapshot, unless the one stored already covers
    /// more of the log (a build that finished after a newer snapshot was installed).
    /// Answers whether it was stored, and hands the snapshot back.
    async fn save(&self, stored: StoredSnapshot) -> Result<(bool, StoredSnapshot), StoreError> {
        let meta_record = encode("snapshot metadata", &stored.meta)?;
        let store = self.clone();
        blocking(move || {
            let mut current = store.current.lock();
            if current
                .as_ref()
                .is_some_and(|current| current.last_log_id > stored.meta.last_log_id)
            {
                return Ok((false, stored));
            }
            snapshot_file::write(&store.file, &meta_record, &stored.data)?;
            *current = Some(stored.meta.clone());
            drop(current);
            // The file is durable: the tree's older copy is no longer read.
            if !store.tree.is_empty() {
                store
                    .tree
                    .clear()
                    .map_err(StoreError::sled("clear the snapshot tree"))?;
            }
            Ok((true, stored))
        })
        .await
    }
}

/// Decodes a snapshot's data and checks it against its metadata.
fn payload_for(
    meta: &SnapshotMeta<u64, NodeInfo>,
    data: &[u8],
) -> Result<SnapshotPayload, StoreError> {
    let what = format!("snapshot {}", meta.snapshot_id);
    let payload: SnapshotPayload = match decode(&what, data) {
        Ok(payload) => payload,
        Err(error) => {
            if let Ok(older) = decode::<SnapshotPayloadWithoutExchange>(&what, data) {
                SnapshotPayload {
                    kernel: older.kernel,
                    last_applied: older.last_applied,
                    last_membership: older.last_membership,
                    archived: older.archived,
                    exchange: ExchangeLedger::default(),
                }
            } else if let Ok(oldest) = decode::<SnapshotPayloadWithoutArchive>(&what, data) {
                SnapshotPayload {
                    kernel: oldest.kernel,
                    last_applied: oldest.last_applied,
                    last_membership: oldest.last_membership,
                    archived: Vec::new(),
                    exchange: ExchangeLedger::default(),
                }
            } else {
                return Err(error);
            }
        }
    };
    if payload.last_applied != meta.last_log_id {
        return Err(StoreError::corrupt(
            what,
            "its data and metadata name different last log ids",
        ));
    }
    if payload.last_membership != meta.last_membership {
        return Err(StoreError::corrupt(
            what,
            "its data and metadata name different memberships",
        ));
    }
    Ok(payload)
}

fn applied_state_from(payload: SnapshotPayload) -> AppliedState {
    AppliedState {
        kernel: payload.kernel,
        last_applied_index: payload
            .last_applied
            .as_ref()
            .map_or(0, |log_id| log_id.index),
        last_applied: payload.last_applied,
        membership: payload.last_membership,
        digest_cache: None,
        checkpoints: Default::default(),
        exchange: payload.exchange,
    }
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

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        // Encoding a large state takes a while: it runs on a thread of its own at a lower
        // priority (`at_low_priority`), so the node's runtime (Raft's core, heartbeats,
        // the peer listener) and its bidders come first, and `apply` goes on meanwhile.
        let state = self.state.clone();
        let archive = self.archive.clone();
        let started = std::time::Instant::now();
        // The state is copied under the read lock, at the usual priority (`apply` waits
        // for that lock): an auction's bids and a bidder's request records are
        // persistent structures, so the copy shares them and takes little time, however
        // many bids the state holds. Nothing is applied while the read lock is held, so
        // the archive holds exactly what the entries up to `last_applied` archived.
        let copied = blocking(move || {
            let state = state.read();
            let archived = archive.newest(state.last_applied_index, ARCHIVED_IN_SNAPSHOT)?;
            Ok((
                state.kernel.clone(),
                state.last_applied,
                state.membership.clone(),
                state.exchange.clone(),
                archived,
            ))
        })
        .await
        .map_err(snapshot_error(None, ErrorVerb::Read))?;
        let locked_ms = started.elapsed().as_millis() as u64;
        let (kernel, applied, membership, exchange, archived) = copied;
        // Room for as much as the previous snapshot took and a quarter more: the state
        // rarely shrinks by much between two snapshots.
        let previous = std::fs::metadata(&self.snapshots.file).map_or(0, |file| file.len());
        let capacity = (previous + previous / 4) as usize;
        let (data, last_log_id, last_membership) = at_low_priority("gavel-snapshot", move || {
            let data = encode_large(
                "snapshot",
                &SnapshotPayloadRef {
                    kernel: &kernel,
                    last_applied: &applied,
                    last_membership: &membership,
                    archived: &archived,
                    exchange: &exchange,
                },
                capacity,
            )?;
            Ok((data, applied, membership))
        })
        .await
        .map_err(snapshot_error(None, ErrorVerb::Read))?;
        let encoded_ms = started.elapsed().as_millis() as u64;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let snapshot_id = match &last_log_id {
            Some(log_id) => format!("{}-{}-{nanos:x}", log_id.leader_id, log_id.index),
            None => format!("empty-{nanos:x}"),
        };
        let stored = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id,
                last_membership,
                snapshot_id,
            },
            data,
        };
        // The auctions this snapshot no longer holds are durable in the archive first.
        self.archive
            .make_durable()
            .await
            .map_err(snapshot_error(Some(&stored.meta), ErrorVerb::Write))?;
        let failed = snapshot_error(Some(&stored.meta), ErrorVerb::Write);
        let (saved, stored) = self.snapshots.save(stored).await.map_err(failed)?;
        tracing::info!(
            snapshot = %stored.meta,
            bytes = stored.data.len(),
            saved,
            locked_ms,
            encoded_ms,
            total_ms = started.elapsed().as_millis() as u64,
            "snapshot built (not saved if a newer one was stored meanwhile)"
        );
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
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

/// Applies one command of a committed entry. A broken kernel invariant panics; it stops
/// Raft with a storage error rather than leave it waiting on a dead state machine task.
// The error type is openraft's, as `RaftStateMachine::apply` returns it.
#[allow(clippy::result_large_err)]
fn apply_envelope(
    kernel: &mut State,
    envelope: &Envelope,
    log_id: LogId<u64>,
) -> Result<Applied, StorageError<u64>> {
    std::panic::catch_unwind(AssertUnwindSafe(|| crate::kernel::apply(kernel, envelope))).map_err(
        |panic| {
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
        },
    )
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, NodeInfo>), StorageError<u64>> {
        let state = self.state.read();
        Ok((state.last_applied, state.membership.clone()))
    }

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
                        for envelope in proposal.envelopes.iter() {
                            let state = &mut *state;
                            let applied = apply_with_ledger(
                                &mut state.kernel,
                                &mut state.exchange,
                                envelope,
                                index,
                                |kernel, envelope| apply_envelope(kernel, envelope, log_id),
                            )?;
                            if let (Command::Checkpoint { label }, Ok(_)) =
                                (&envelope.command, &applied.result)
                            {
                                state.note_checkpoint(label, index);
                            }
                            if !applied.archived.is_empty() {
                                let archived: Vec<ArchivedAuction> = applied
                                    .archived
                                    .into_iter()
                                    .map(|auction| ArchivedAuction {
                                        archived_at_index: index,
                                        auction,
                                    })
                                    .collect();
                                self.archive.put(&archived).map_err(|error| {
                                    error
                                        .into_storage(ErrorSubject::Apply(log_id), ErrorVerb::Write)
                                })?;
                            }
                            if let Some(closed_before_ms) = applied.prune_closed_before_ms {
                                self.archive
                                    .prune_closed_before(closed_before_ms, MAX_PRUNED_PER_COMMAND)
                                    .map_err(|error| {
                                        error.into_storage(
                                            ErrorSubject::Apply(log_id),
                                            ErrorVerb::Write,
                                        )
                                    })?;
                            }
                            events.extend(applied.events);
                            results.push(applied.result);
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
        // The archived records are durable before the snapshot that no longer holds those
        // auctions is stored.
        self.archive
            .put(&std::mem::take(&mut payload.archived))
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

#[cfg(test)]
mod snapshot_format_tests {
    use super::*;

    /// The shape snapshots had before the exchange ledger was carried in them.
    #[derive(Serialize)]
    struct WithoutExchange<'a> {
        kernel: &'a State,
        last_applied: &'a Option<LogId<u64>>,
        last_membership: &'a StoredMembership<u64, NodeInfo>,
        archived: &'a [ArchivedAuction],
    }

    #[test]
    fn snapshots_written_before_the_exchange_ledger_still_load() {
        let kernel = State {
            clock_ms: 7,
            ..State::default()
        };
        let last_applied = Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), 9));
        let membership = StoredMembership::default();
        let data = encode(
            "snapshot",
            &WithoutExchange {
                kernel: &kernel,
                last_applied: &last_applied,
                last_membership: &membership,
                archived: &[],
            },
        )
        .unwrap();
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership.clone(),
            snapshot_id: "old".to_string(),
        };
        let payload = payload_for(&meta, &data).expect("an older snapshot loads");
        assert_eq!(payload.kernel.clock_ms, 7);
        assert_eq!(payload.exchange, ExchangeLedger::default());

        let mut ledger = ExchangeLedger::default();
        ledger.next_seq = 3;
        let current = snapshot_data(&kernel, &last_applied, &membership, &[], &ledger).unwrap();
        assert_eq!(payload_for(&meta, &current).unwrap().exchange.next_seq, 3);
    }
}

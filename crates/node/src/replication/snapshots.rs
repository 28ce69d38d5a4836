//! Snapshots of the state machine: building one (`SnapshotBuilder`, which openraft runs
//! beside `apply`) and keeping the current one durable (`SnapshotStore`). A snapshot is
//! the encoded kernel state with the last applied log id and membership, stored in a file
//! of its own (`snapshot_file`) and made durable before it is reported built or
//! installed. The state is copied under the read lock (cheaply: bids and request records
//! are persistent structures) and encoded after it on a thread of its own at a lower
//! priority (`background`). Older encodings (before the exchange ledger, before the
//! archive) are still read.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::{
    ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError,
    StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::archive::{ArchiveStore, ArchivedAuction, ARCHIVED_IN_SNAPSHOT};
use super::background::at_low_priority;
use super::codec::{decode, decode_body, encode, encode_as, encode_large_as};
use super::durable::Durable;
use super::error::{blocking, StoreError};
use super::legacy::{
    ArchivedAuctionV1, ArchivedAuctionV2, StateV1, StateV2, StateV3, AUCTIONS_FORMAT, STATE_FORMAT,
};
use super::snapshot_file;
use super::{AppliedState, NodeInfo, SharedState, TypeConfig};
use gavel_kernel::ledger::ExchangeLedger;
use gavel_kernel::State;

/// The current snapshot's metadata and its data, written together in one sled batch.
const KEY_META: &[u8] = b"meta";
const KEY_DATA: &[u8] = b"data";

/// Builds a snapshot of the shared state; openraft runs it beside `apply`.
pub struct SnapshotBuilder {
    pub(super) state: SharedState,
    pub(super) snapshots: SnapshotStore,
    pub(super) archive: ArchiveStore,
}

/// The durable home of the current snapshot: its file (see `snapshot_file`). Directories
/// written before snapshots had a file hold theirs in the sled tree `snapshot`, still read
/// until the first file is written (which empties the tree).
#[derive(Clone)]
pub(super) struct SnapshotStore {
    tree: sled::Tree,
    file: PathBuf,
    /// The metadata of the snapshot stored now; held while a snapshot is written.
    current: Arc<Mutex<Option<SnapshotMeta<u64, NodeInfo>>>>,
}

/// What the tree `snapshot` holds: the metadata, and the data (an encoded
/// `SnapshotPayload`) as openraft hands it around.
pub(super) struct StoredSnapshot {
    pub(super) meta: SnapshotMeta<u64, NodeInfo>,
    pub(super) data: Vec<u8>,
}

/// A snapshot's data, as decoded.
#[derive(Deserialize)]
pub(super) struct SnapshotPayload {
    pub(super) kernel: State,
    pub(super) last_applied: Option<LogId<u64>>,
    pub(super) last_membership: StoredMembership<u64, NodeInfo>,
    /// The newest archived auctions (see `archive::ARCHIVED_IN_SNAPSHOT`).
    pub(super) archived: Vec<ArchivedAuction>,
    pub(super) exchange: ExchangeLedger,
    /// `State::leader_term`, which the state's own encoding leaves out.
    pub(super) leader_term: u64,
}

/// A snapshot's data as written before bidders kept public keys (`legacy`, the v3
/// state; format byte `AUCTIONS_FORMAT`).
#[derive(Deserialize)]
struct SnapshotPayloadV3 {
    kernel: StateV3,
    last_applied: Option<LogId<u64>>,
    last_membership: StoredMembership<u64, NodeInfo>,
    archived: Vec<ArchivedAuction>,
    exchange: ExchangeLedger,
    leader_term: u64,
}

impl From<SnapshotPayloadV3> for SnapshotPayload {
    fn from(old: SnapshotPayloadV3) -> SnapshotPayload {
        SnapshotPayload {
            kernel: old.kernel.into(),
            last_applied: old.last_applied,
            last_membership: old.last_membership,
            archived: old.archived,
            exchange: old.exchange,
            leader_term: old.leader_term,
        }
    }
}

/// A snapshot's data as written before auctions kept the version 1.1 rules (`legacy`).
#[derive(Deserialize)]
struct SnapshotPayloadV2 {
    kernel: StateV2,
    last_applied: Option<LogId<u64>>,
    last_membership: StoredMembership<u64, NodeInfo>,
    archived: Vec<ArchivedAuctionV2>,
    exchange: ExchangeLedger,
    leader_term: u64,
}

/// A snapshot's data as written before the takeover's term was carried in it, with the
/// state in its first shape (`legacy`); still read.
#[derive(Deserialize)]
struct SnapshotPayloadWithoutLeaderTerm {
    kernel: StateV1,
    last_applied: Option<LogId<u64>>,
    last_membership: StoredMembership<u64, NodeInfo>,
    archived: Vec<ArchivedAuctionV1>,
    exchange: ExchangeLedger,
}

/// A snapshot's data as written before the exchange ledger was carried in it; still read.
#[derive(Deserialize)]
struct SnapshotPayloadWithoutExchange {
    kernel: StateV1,
    last_applied: Option<LogId<u64>>,
    last_membership: StoredMembership<u64, NodeInfo>,
    archived: Vec<ArchivedAuctionV1>,
}

/// A snapshot's data as written before archived auctions were carried in it; still read.
#[derive(Deserialize)]
struct SnapshotPayloadWithoutArchive {
    kernel: StateV1,
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
    leader_term: u64,
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
    encode_as(
        STATE_FORMAT,
        "snapshot",
        &SnapshotPayloadRef {
            kernel,
            last_applied,
            last_membership,
            archived,
            exchange,
            leader_term: kernel.leader_term,
        },
    )
}

pub(super) fn snapshot_error(
    meta: Option<&SnapshotMeta<u64, NodeInfo>>,
    verb: ErrorVerb,
) -> impl FnOnce(StoreError) -> StorageError<u64> {
    let subject = ErrorSubject::Snapshot(meta.map(SnapshotMeta::signature));
    move |error| error.into_storage(subject, verb)
}

impl SnapshotStore {
    pub(super) fn open(durable: &Durable) -> Result<Self, StoreError> {
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
    pub(super) fn load(&self) -> Result<Option<StoredSnapshot>, StoreError> {
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

    pub(super) fn load_from_tree(&self) -> Result<Option<StoredSnapshot>, StoreError> {
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
    pub(super) async fn save(
        &self,
        stored: StoredSnapshot,
    ) -> Result<(bool, StoredSnapshot), StoreError> {
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
pub(super) fn payload_for(
    meta: &SnapshotMeta<u64, NodeInfo>,
    data: &[u8],
) -> Result<SnapshotPayload, StoreError> {
    let what = format!("snapshot {}", meta.snapshot_id);
    // Written before the term was carried: the state's term is the snapshot's, a term
    // whose takeover the leader of the time had proposed.
    let leader_term = meta
        .last_log_id
        .as_ref()
        .map_or(0, |log_id| log_id.leader_id.term);
    let payload = match data.split_first() {
        Some((&STATE_FORMAT, body)) => decode_body(&what, body)?,
        Some((&AUCTIONS_FORMAT, body)) => decode_body::<SnapshotPayloadV3>(&what, body)?.into(),
        _ => decode_earlier(&what, data, leader_term)?,
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

/// Decodes a snapshot's data written in format 1, in any of the shapes it had: the v2
/// state (before auctions kept the version 1.1 rules), then the v1 ones.
fn decode_earlier(
    what: &str,
    data: &[u8],
    leader_term: u64,
) -> Result<SnapshotPayload, StoreError> {
    let error = match decode::<SnapshotPayloadV2>(what, data) {
        Ok(v2) => {
            return Ok(SnapshotPayload {
                kernel: v2.kernel.into(),
                last_applied: v2.last_applied,
                last_membership: v2.last_membership,
                archived: v2
                    .archived
                    .into_iter()
                    .map(|record| {
                        let (archived_at_index, auction) = record.into_current();
                        ArchivedAuction {
                            archived_at_index,
                            auction,
                        }
                    })
                    .collect(),
                exchange: v2.exchange,
                leader_term: v2.leader_term,
            })
        }
        Err(error) => error,
    };
    if let Ok(newer) = decode::<SnapshotPayloadWithoutLeaderTerm>(what, data) {
        Ok(SnapshotPayload {
            kernel: newer.kernel.into(),
            last_applied: newer.last_applied,
            last_membership: newer.last_membership,
            archived: newer.archived.into_iter().map(Into::into).collect(),
            exchange: newer.exchange,
            leader_term,
        })
    } else if let Ok(older) = decode::<SnapshotPayloadWithoutExchange>(what, data) {
        Ok(SnapshotPayload {
            kernel: older.kernel.into(),
            last_applied: older.last_applied,
            last_membership: older.last_membership,
            archived: older.archived.into_iter().map(Into::into).collect(),
            exchange: ExchangeLedger::default(),
            leader_term,
        })
    } else if let Ok(oldest) = decode::<SnapshotPayloadWithoutArchive>(what, data) {
        Ok(SnapshotPayload {
            kernel: oldest.kernel.into(),
            last_applied: oldest.last_applied,
            last_membership: oldest.last_membership,
            archived: Vec::new(),
            exchange: ExchangeLedger::default(),
            leader_term,
        })
    } else {
        Err(error)
    }
}

pub(super) fn applied_state_from(payload: SnapshotPayload) -> AppliedState {
    let mut kernel = payload.kernel;
    kernel.leader_term = payload.leader_term;
    AppliedState {
        kernel,
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

/// What a snapshot holds, copied out of the shared state under its read lock.
struct SnapshotCopy {
    kernel: State,
    applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, NodeInfo>,
    exchange: ExchangeLedger,
    archived: Vec<ArchivedAuction>,
}

impl SnapshotBuilder {
    /// Copies the state under the read lock, at the usual priority (`apply` waits for
    /// that lock): an auction's bids and a bidder's request records are persistent
    /// structures, so the copy shares them and takes little time, however many bids the
    /// state holds. Nothing is applied while the read lock is held, so the archive holds
    /// exactly what the entries up to `last_applied` archived.
    async fn copy_state(&self) -> Result<SnapshotCopy, StorageError<u64>> {
        let state = self.state.clone();
        let archive = self.archive.clone();
        blocking(move || {
            let state = state.read();
            let archived = archive.newest(state.last_applied_index, ARCHIVED_IN_SNAPSHOT)?;
            Ok(SnapshotCopy {
                kernel: state.kernel.clone(),
                applied: state.last_applied,
                membership: state.membership.clone(),
                exchange: state.exchange.clone(),
                archived,
            })
        })
        .await
        .map_err(snapshot_error(None, ErrorVerb::Read))
    }

    /// Encodes the copy on a thread of its own at a lower priority (`at_low_priority`),
    /// so the node's runtime (Raft's core, heartbeats, the peer listener) and its
    /// bidders come first, and `apply` goes on meanwhile.
    async fn encode_copy(&self, copy: SnapshotCopy) -> Result<Vec<u8>, StorageError<u64>> {
        // Room for as much as the previous snapshot took and a quarter more: the state
        // rarely shrinks by much between two snapshots.
        let previous = std::fs::metadata(&self.snapshots.file).map_or(0, |file| file.len());
        let capacity = (previous + previous / 4) as usize;
        at_low_priority("gavel-snapshot", move || {
            encode_large_as(
                STATE_FORMAT,
                "snapshot",
                &SnapshotPayloadRef {
                    kernel: &copy.kernel,
                    last_applied: &copy.applied,
                    last_membership: &copy.membership,
                    archived: &copy.archived,
                    exchange: &copy.exchange,
                    leader_term: copy.kernel.leader_term,
                },
                capacity,
            )
        })
        .await
        .map_err(snapshot_error(None, ErrorVerb::Read))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let started = std::time::Instant::now();
        let copy = self.copy_state().await?;
        let locked_ms = started.elapsed().as_millis() as u64;
        let (last_log_id, last_membership) = (copy.applied, copy.membership.clone());
        let data = self.encode_copy(copy).await?;
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

#[cfg(test)]
mod snapshot_format_tests {
    use super::*;

    /// The shape snapshots had before the exchange ledger was carried in them.
    #[derive(Serialize)]
    struct WithoutExchange<'a> {
        kernel: &'a StateV1,
        last_applied: &'a Option<LogId<u64>>,
        last_membership: &'a StoredMembership<u64, NodeInfo>,
        archived: &'a [ArchivedAuction],
    }

    #[test]
    fn snapshots_written_before_the_exchange_ledger_still_load() {
        let old_kernel = StateV1::at_clock(7);
        let kernel = State {
            clock_ms: 7,
            ..State::default()
        };
        let last_applied = Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), 9));
        let membership = StoredMembership::default();
        let data = encode(
            "snapshot",
            &WithoutExchange {
                kernel: &old_kernel,
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
        // Its takeover term is the snapshot's own term.
        assert_eq!(payload.leader_term, 1);

        let ledger = ExchangeLedger {
            next_seq: 3,
            ..ExchangeLedger::default()
        };
        let current = snapshot_data(&kernel, &last_applied, &membership, &[], &ledger).unwrap();
        assert_eq!(payload_for(&meta, &current).unwrap().exchange.next_seq, 3);
    }

    /// The shape snapshots had before bidders kept public keys (format byte 2).
    #[derive(Serialize)]
    struct WithoutBidderKeys<'a> {
        kernel: &'a StateV3,
        last_applied: &'a Option<LogId<u64>>,
        last_membership: &'a StoredMembership<u64, NodeInfo>,
        archived: &'a [ArchivedAuction],
        exchange: &'a ExchangeLedger,
        leader_term: u64,
    }

    #[test]
    fn snapshots_written_before_bidder_keys_still_load() {
        let mut kernel = State {
            clock_ms: 11,
            ..State::default()
        };
        let auction = gavel_kernel::Auction::new(gavel_kernel::AuctionSpec::example("lot-3"));
        kernel.auctions.insert("lot-3".to_string(), auction);
        let last_applied = Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 12));
        let membership = StoredMembership::default();
        let ledger = ExchangeLedger::default();
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership.clone(),
            snapshot_id: "v3".to_string(),
        };
        let old = encode_as(
            AUCTIONS_FORMAT,
            "snapshot",
            &WithoutBidderKeys {
                kernel: &StateV3::of(&kernel),
                last_applied: &last_applied,
                last_membership: &membership,
                archived: &[],
                exchange: &ledger,
                leader_term: 2,
            },
        )
        .unwrap();
        let read = payload_for(&meta, &old).unwrap();
        assert_eq!(read.kernel, kernel);
        assert_eq!(read.leader_term, 2);
        // The current shape carries its own format byte and the keys.
        let key = gavel_kernel::signatures::parse_key(
            gavel_kernel::signatures::Algorithm::Ed25519,
            "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        )
        .unwrap();
        kernel.bidder_keys.insert("ada".to_string(), vec![key]);
        let current = snapshot_data(&kernel, &last_applied, &membership, &[], &ledger).unwrap();
        assert_eq!(current[0], STATE_FORMAT);
        assert_eq!(payload_for(&meta, &current).unwrap().kernel, kernel);
    }

    #[test]
    fn the_takeover_term_travels_in_snapshots_beside_the_state() {
        let kernel = State {
            leader_term: 4,
            ..State::default()
        };
        let last_applied = Some(LogId::new(openraft::CommittedLeaderId::new(5, 2), 9));
        let membership = StoredMembership::default();
        let ledger = ExchangeLedger::default();
        let data = snapshot_data(&kernel, &last_applied, &membership, &[], &ledger).unwrap();
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id: "now".to_string(),
        };
        let applied = applied_state_from(payload_for(&meta, &data).unwrap());
        assert_eq!(applied.kernel.leader_term, 4);
        // Not in the state's digest: clusters that applied the same commands agree.
        assert_eq!(applied.kernel.digest(), State::default().digest());
    }

    /// The ledger's statuses and the audit trail's actions as they were encoded when they
    /// were strings.
    #[derive(Serialize, Deserialize)]
    struct StringLedgerEntry {
        log_index: u64,
        applied_at_ms: u64,
        status: String,
        detail: String,
    }

    #[derive(Serialize, Deserialize)]
    struct StringOutboundRecord {
        key: String,
        status: String,
        data: String,
    }

    #[derive(Serialize, Deserialize)]
    struct StringOperatorRecord {
        at_ms: u64,
        operator: String,
        action: String,
        target: String,
        reason: String,
        outcome: String,
    }

    #[test]
    fn typed_statuses_and_actions_encode_as_the_strings_they_were() {
        use gavel_kernel::ledger::{LedgerEntry, LedgerStatus, OutboundRecord, OutboxStatus};
        use gavel_kernel::{OperatorAction, OperatorRecord};

        let entry = LedgerEntry {
            log_index: 4,
            applied_at_ms: 5,
            status: LedgerStatus::Rejected,
            detail: "no such auction".to_string(),
        };
        let old_entry = StringLedgerEntry {
            log_index: 4,
            applied_at_ms: 5,
            status: "rejected".to_string(),
            detail: "no such auction".to_string(),
        };
        let record = OutboundRecord {
            key: "result/lot-1".to_string(),
            status: OutboxStatus::Closed,
            data: "{}".to_string(),
        };
        let old_record = StringOutboundRecord {
            key: "result/lot-1".to_string(),
            status: "closed".to_string(),
            data: "{}".to_string(),
        };
        let audit = |action: OperatorAction| OperatorRecord {
            at_ms: 6,
            operator: "operator-li".to_string(),
            action,
            target: "node 4".to_string(),
            reason: String::new(),
            outcome: "ok".to_string(),
        };
        let old_audit = |action: &str| StringOperatorRecord {
            at_ms: 6,
            operator: "operator-li".to_string(),
            action: action.to_string(),
            target: "node 4".to_string(),
            reason: String::new(),
            outcome: "ok".to_string(),
        };
        let bytes = encode("entry", &old_entry).unwrap();
        assert_eq!(encode("entry", &entry).unwrap(), bytes);
        assert_eq!(decode::<LedgerEntry>("entry", &bytes).unwrap(), entry);
        let bytes = encode("record", &old_record).unwrap();
        assert_eq!(encode("record", &record).unwrap(), bytes);
        assert_eq!(decode::<OutboundRecord>("record", &bytes).unwrap(), record);
        for (action, name) in [
            (OperatorAction::NodeAdd, "node add"),
            (OperatorAction::Suspend, "suspend"),
            (
                OperatorAction::Other("no spaces allowed".to_string()),
                "no spaces allowed",
            ),
        ] {
            let bytes = encode("audit", &old_audit(name)).unwrap();
            assert_eq!(encode("audit", &audit(action.clone())).unwrap(), bytes);
            assert_eq!(
                decode::<OperatorRecord>("audit", &bytes).unwrap(),
                audit(action)
            );
        }
    }
}

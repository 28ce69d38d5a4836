//! The Raft log on sled: openraft's `RaftLogStorage` and `RaftLogReader`. Entries live in
//! the tree `log`, keyed by their index as a big-endian u64 so sled's order is the log's
//! order; the vote, the committed log id, the last purged log id and the node id this
//! directory belongs to live in the tree `meta`. Every append batch, vote and truncation is
//! made durable (`Durable::write_durably`: flush plus one fdatasync) before openraft is told
//! it is done. The committed log id is written without a sync: losing its latest value only
//! means fewer entries are re-applied at startup until the leader commits them again.
//! Every record read back is checked (its format, and an entry's index against its key).
//! Entries are written in format 2 (a `Proposal` per entry); entries of format 1, written
//! when an entry carried a single `Envelope`, are still read, as a proposal of one.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, LogState, OptionalSend, RaftLogReader,
    StorageError, Vote,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{decode, decode_body, decode_versioned, encode, encode_as};
use super::durable::Durable;
use super::error::{blocking, StoreError};
use super::{NodeInfo, TypeConfig};
use crate::kernel::Envelope;

/// The format byte of log entries that carry a `Proposal`.
const LOG_ENTRY_FORMAT: u8 = 2;
/// The format byte of log entries written when an entry carried one `Envelope`.
const LOG_ENTRY_FORMAT_SINGLE: u8 = 1;

openraft::declare_raft_types!(
    /// The types of format-1 log entries, read back only: one `Envelope` per entry.
    SingleEnvelopeTypes:
        D = Envelope,
        R = super::ApplyResponse,
        NodeId = u64,
        Node = NodeInfo,
        Entry = openraft::Entry<SingleEnvelopeTypes>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";
const KEY_NODE_ID: &[u8] = b"node_id";

/// The Raft log of one node. Cheap to clone: clones share the database (a clone is the
/// log reader openraft's replication tasks use).
#[derive(Clone)]
pub struct LogStore {
    durable: Arc<Durable>,
    log: sled::Tree,
    meta: sled::Tree,
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_index(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::corrupt("log key", format!("{} bytes, not 8", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

fn read_failed(error: StoreError) -> StorageError<u64> {
    error.into_storage(ErrorSubject::Logs, ErrorVerb::Read)
}

impl LogStore {
    pub fn open(durable: Arc<Durable>) -> Result<Self, StoreError> {
        let db = durable.db();
        let log = db
            .open_tree("log")
            .map_err(StoreError::sled("open the log tree"))?;
        let meta = db
            .open_tree("meta")
            .map_err(StoreError::sled("open the meta tree"))?;
        Ok(LogStore { durable, log, meta })
    }

    /// Records that this directory belongs to `node_id`, or checks that it already does:
    /// a node must never run under another node's log and vote.
    pub async fn claim_node_id(&self, node_id: u64) -> Result<(), StoreError> {
        match self.read_meta::<u64>(KEY_NODE_ID, "node id")? {
            Some(stored) if stored == node_id => Ok(()),
            Some(stored) => Err(StoreError::NodeIdMismatch {
                stored,
                requested: node_id,
            }),
            None => {
                let record = encode("node id", &node_id)?;
                let meta = self.meta.clone();
                let durable = self.durable.clone();
                blocking(move || {
                    durable.write_durably(|_| {
                        meta.insert(KEY_NODE_ID, record)
                            .map_err(StoreError::sled("write the node id"))
                            .map(drop)
                    })
                })
                .await
            }
        }
    }

    fn read_meta<T: DeserializeOwned>(
        &self,
        key: &[u8],
        what: &str,
    ) -> Result<Option<T>, StoreError> {
        self.meta
            .get(key)
            .map_err(StoreError::sled("read the meta tree"))?
            .map(|bytes| decode(what, &bytes))
            .transpose()
    }

    fn write_meta<T: Serialize>(
        &self,
        key: &[u8],
        what: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let record = encode(what, value)?;
        self.meta
            .insert(key, record)
            .map_err(StoreError::sled("write the meta tree"))?;
        Ok(())
    }

    /// The entries whose indexes fall in `range`, each checked against its key.
    pub fn entries<R: RangeBounds<u64>>(
        &self,
        range: R,
    ) -> Result<Vec<Entry<TypeConfig>>, StoreError> {
        let start = match range.start_bound() {
            Bound::Included(&index) => index,
            Bound::Excluded(&index) => match index.checked_add(1) {
                Some(next) => next,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&index) => Bound::Included(index_key(index)),
            Bound::Excluded(&index) => Bound::Excluded(index_key(index)),
            Bound::Unbounded => Bound::Unbounded,
        };
        if let Bound::Excluded(end) | Bound::Included(end) = &end {
            if u64::from_be_bytes(*end) < start {
                return Ok(Vec::new());
            }
        }
        let mut entries = Vec::new();
        for item in self.log.range((Bound::Included(index_key(start)), end)) {
            let (key, bytes) = item.map_err(StoreError::sled("read the log"))?;
            entries.push(decode_entry(&key, &bytes)?);
        }
        Ok(entries)
    }

    fn last_log_id(&self) -> Result<Option<LogId<u64>>, StoreError> {
        match self.log.last().map_err(StoreError::sled("read the log"))? {
            Some((key, bytes)) => Ok(Some(decode_entry(&key, &bytes)?.log_id)),
            None => Ok(None),
        }
    }

    /// Removes the entries at `from` and after, durably.
    async fn remove_from(&self, from: u64) -> Result<(), StoreError> {
        let log = self.log.clone();
        let durable = self.durable.clone();
        blocking(move || {
            durable.write_durably(|_| {
                let mut batch = sled::Batch::default();
                for key in log.range(index_key(from)..).keys() {
                    batch.remove(key.map_err(StoreError::sled("read the log"))?);
                }
                log.apply_batch(batch)
                    .map_err(StoreError::sled("truncate the log"))
            })
        })
        .await
    }
}

fn decode_entry(key: &[u8], bytes: &[u8]) -> Result<Entry<TypeConfig>, StoreError> {
    let index = key_index(key)?;
    let entry = decode_versioned(
        &format!("log entry {index}"),
        bytes,
        &[
            (LOG_ENTRY_FORMAT, decode_body::<Entry<TypeConfig>>),
            (LOG_ENTRY_FORMAT_SINGLE, decode_single_envelope_entry),
        ],
    )?;
    if entry.log_id.index != index {
        return Err(StoreError::corrupt(
            format!("log entry {index}"),
            format!("it holds the entry of index {}", entry.log_id.index),
        ));
    }
    Ok(entry)
}

/// A format-1 entry as the proposal of its one envelope.
fn decode_single_envelope_entry(what: &str, body: &[u8]) -> Result<Entry<TypeConfig>, StoreError> {
    let entry: Entry<SingleEnvelopeTypes> = decode_body(what, body)?;
    let payload = match entry.payload {
        EntryPayload::Blank => EntryPayload::Blank,
        EntryPayload::Normal(envelope) => EntryPayload::Normal(envelope.into()),
        EntryPayload::Membership(membership) => EntryPayload::Membership(membership),
    };
    Ok(Entry {
        log_id: entry.log_id,
        payload,
    })
}

/// Encodes a log entry as it is stored.
fn encode_entry(entry: &Entry<TypeConfig>) -> Result<Vec<u8>, StoreError> {
    encode_as(LOG_ENTRY_FORMAT, "log entry", entry)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        self.entries(range).map_err(read_failed)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let last_purged_log_id: Option<LogId<u64>> = self
            .read_meta(KEY_LAST_PURGED, "last purged log id")
            .map_err(read_failed)?;
        // Entries at or below the purge mark may outlive a crash in the middle of `purge`;
        // they do not count.
        let last_log_id = self
            .last_log_id()
            .map_err(read_failed)?
            .max(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let write_failed =
            |error: StoreError| error.into_storage(ErrorSubject::Vote, ErrorVerb::Write);
        let record = encode("vote", vote).map_err(write_failed)?;
        let meta = self.meta.clone();
        let durable = self.durable.clone();
        blocking(move || {
            durable.write_durably(|_| {
                meta.insert(KEY_VOTE, record)
                    .map_err(StoreError::sled("write the vote"))
                    .map(drop)
            })
        })
        .await
        .map_err(write_failed)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        self.read_meta(KEY_VOTE, "vote")
            .map_err(|error| error.into_storage(ErrorSubject::Vote, ErrorVerb::Read))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        self.write_meta(KEY_COMMITTED, "committed log id", &committed)
            .map_err(|error| error.into_storage(ErrorSubject::Store, ErrorVerb::Write))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        let committed: Option<Option<LogId<u64>>> = self
            .read_meta(KEY_COMMITTED, "committed log id")
            .map_err(|error| error.into_storage(ErrorSubject::Store, ErrorVerb::Read))?;
        Ok(committed.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let write_failed =
            |error: StoreError| error.into_storage(ErrorSubject::Logs, ErrorVerb::Write);
        let mut batch = sled::Batch::default();
        for entry in entries {
            let index = entry.log_id.index;
            let record = encode_entry(&entry).map_err(write_failed)?;
            batch.insert(&index_key(index), record);
        }
        let log = self.log.clone();
        let durable = self.durable.clone();
        // The core waits for `callback` before its next write, so appending and syncing
        // here, then reporting, costs nothing in concurrency and keeps the order obvious.
        let result = blocking(move || {
            durable.write_durably(|_| {
                log.apply_batch(batch)
                    .map_err(StoreError::sled("append to the log"))
            })
        })
        .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(error) => {
                callback.log_io_completed(Err(error.to_io()));
                Err(write_failed(error))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        tracing::debug!(%log_id, "truncating the raft log");
        self.remove_from(log_id.index)
            .await
            .map_err(|error| error.into_storage(ErrorSubject::Logs, ErrorVerb::Delete))
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let delete_failed =
            |error: StoreError| error.into_storage(ErrorSubject::Logs, ErrorVerb::Delete);
        tracing::debug!(%log_id, "purging the raft log");
        // The purge mark first: sled recovers a prefix of its writes, so a crash can leave
        // entries below the mark (ignored) but never a mark above missing entries' hole.
        self.write_meta(KEY_LAST_PURGED, "last purged log id", &log_id)
            .map_err(delete_failed)?;
        let mut batch = sled::Batch::default();
        for key in self.log.range(..=index_key(log_id.index)).keys() {
            batch.remove(
                key.map_err(StoreError::sled("read the log"))
                    .map_err(delete_failed)?,
            );
        }
        self.log
            .apply_batch(batch)
            .map_err(StoreError::sled("purge the log"))
            .map_err(delete_failed)
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, LogId};

    use super::*;
    use crate::kernel::Command;
    use crate::replication::Proposal;

    fn envelope() -> Envelope {
        Envelope {
            now_ms: 1_700_000_000_000,
            seed: 9,
            actor: "operator".to_string(),
            command: Command::RegisterBidder {
                bidder_id: "alice".to_string(),
                name: "Alice Ltd".to_string(),
                secret_salt: "00".repeat(16),
                secret_hash: "ab".repeat(32),
            },
        }
    }

    fn open_store(dir: &std::path::Path) -> LogStore {
        let durable = Durable::open(dir).expect("open sled");
        LogStore::open(Arc::new(durable)).expect("open the log")
    }

    #[test]
    fn entries_written_with_one_envelope_each_are_read_as_proposals_of_one() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = open_store(dir.path());
        let log_id = LogId::new(CommittedLeaderId::new(2, 1), 5);
        let old: Entry<SingleEnvelopeTypes> = Entry {
            log_id,
            payload: EntryPayload::Normal(envelope()),
        };
        let record = encode_as(LOG_ENTRY_FORMAT_SINGLE, "old entry", &old).expect("encode");
        store
            .log
            .insert(index_key(5), record)
            .expect("write the old entry");

        let read = store.entries(5..=5).expect("the old entry decodes");
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].log_id, log_id);
        match &read[0].payload {
            EntryPayload::Normal(proposal) => {
                assert_eq!(*proposal, Proposal::from(envelope()))
            }
            other => panic!("expected a normal entry, read {other:?}"),
        }
    }

    #[test]
    fn entries_of_an_unknown_format_are_corrupt_not_a_panic() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = open_store(dir.path());
        let new: Entry<TypeConfig> = Entry {
            log_id: LogId::new(CommittedLeaderId::new(2, 1), 6),
            payload: EntryPayload::Normal(Proposal {
                envelopes: vec![envelope(), envelope()],
            }),
        };
        let mut record = encode_entry(&new).expect("encode");
        store
            .log
            .insert(index_key(6), record.clone())
            .expect("write");
        assert_eq!(store.entries(6..=6).expect("reads back"), vec![new]);

        record[0] = 9;
        store.log.insert(index_key(6), record).expect("write");
        match store.entries(6..=6) {
            Err(StoreError::Corrupt { .. }) => {}
            other => panic!("expected a corrupt-record error, got {other:?}"),
        }
    }
}

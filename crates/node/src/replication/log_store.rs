//! The Raft log: openraft's `RaftLogStorage` and `RaftLogReader`. Entries live in
//! segment files of their own (`segments`, under `raft/wal/`); the vote, the committed log
//! id, the last purged log id and the node id this directory belongs to live in sled's tree
//! `meta`. An append writes its entries to the page cache and returns; the log's sync
//! thread (`Syncer`) then makes them durable with one `fdatasync` for every append waiting
//! at that moment and only then tells openraft they are persisted. (openraft 0.9's core
//! waits for that before it sends the leader's new entries to the followers; the sync
//! thread keeps the node's thread free for its other tasks meanwhile.) Votes and
//! truncations are durable before the call returns; the purge mark is durable before any
//! segment is deleted. The committed log id is written without a sync: losing its latest
//! value only means fewer entries are re-applied at startup until the leader commits them
//! again. Every record read back is checked (its checksum, its format, and an entry's
//! index); the entries appended last are also kept in memory (`Recent`), so sending a new
//! entry to the followers and applying it read no file. Entries are written in format 2
//! (a `Proposal` per entry); entries of format 1, written when an entry carried a single
//! `Envelope`, are still read, as a proposal of one. A directory whose entries are still
//! in sled's tree `log` (the layout before the segment files) has them moved to the files
//! when it is opened.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

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
use super::segments::{sync_files, SegmentLog};
use super::{NodeInfo, TypeConfig};
use gavel_kernel::Envelope;
use recent::Recent;
use syncer::Syncer;

mod recent;
mod syncer;

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

/// The Raft log of one node. Cheap to clone: clones share the files, the database and
/// the sync thread (a clone is the log reader openraft's replication tasks use).
#[derive(Clone)]
pub struct LogStore {
    durable: Arc<Durable>,
    meta: sled::Tree,
    files: Arc<Mutex<SegmentLog>>,
    /// The entries appended last; locked only while `files` is, after it.
    recent: Arc<Mutex<Recent>>,
    syncer: Arc<Syncer>,
    /// The index after the last committed entry openraft told this log of
    /// (`save_committed`); 0 before it told any.
    committed_next: Arc<AtomicU64>,
}

/// The size of a node's log on disk (see `LogStore::size`).
#[derive(Clone)]
pub struct LogSize(Arc<Mutex<SegmentLog>>);

impl LogSize {
    /// The bytes the entries after `index` take on disk (all entries when `None`).
    pub fn bytes_after(&self, index: Option<u64>) -> u64 {
        self.0.lock().bytes_after(index)
    }
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
    /// Opens the log of the node whose sled database `durable` is: the meta tree, and the
    /// segment files in `<sled dir>/wal` (created if missing, a torn tail cut off). Entries
    /// still in the tree `log` are moved to the files first.
    pub fn open(durable: Arc<Durable>) -> Result<Self, StoreError> {
        let db = durable.db();
        let meta = db
            .open_tree("meta")
            .map_err(StoreError::sled("open the meta tree"))?;
        let purged: Option<LogId<u64>> = read_meta(&meta, KEY_LAST_PURGED, "last purged log id")?;
        let purged_index = purged.map(|log_id| log_id.index);
        let mut files = SegmentLog::open(&durable.dir().join("wal"), purged_index)?;
        move_sled_log(&durable, &mut files, purged_index)?;
        let syncer = Arc::new(Syncer::start(files.sync_point())?);
        Ok(LogStore {
            durable,
            meta,
            files: Arc::new(Mutex::new(files)),
            recent: Arc::new(Mutex::new(Recent::default())),
            syncer,
            committed_next: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Records that this directory belongs to `node_id`, or checks that it already does:
    /// a node must never run under another node's log and vote.
    pub async fn claim_node_id(&self, node_id: u64) -> Result<(), StoreError> {
        match read_meta::<u64>(&self.meta, KEY_NODE_ID, "node id")? {
            Some(stored) if stored == node_id => Ok(()),
            Some(stored) => Err(StoreError::NodeIdMismatch {
                stored,
                requested: node_id,
            }),
            None => {
                let record = encode("node id", &node_id)?;
                let (meta, durable) = (self.meta.clone(), self.durable.clone());
                blocking(move || {
                    put_meta_durably(&durable, &meta, KEY_NODE_ID, record, "write the node id")
                })
                .await
            }
        }
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

    /// The entries whose indexes fall in `range`, each checked against its record.
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
            Bound::Included(&index) => index.saturating_add(1),
            Bound::Excluded(&index) => index,
            Bound::Unbounded => u64::MAX,
        };
        if end <= start {
            return Ok(Vec::new());
        }
        let plan = {
            let files = self.files.lock();
            // Entries after the last one do not exist; the rest may all be in memory.
            let existing_end = files.last_index().map_or(0, |last| last.saturating_add(1));
            if let Some(entries) = self.recent.lock().get(start, end.min(existing_end)) {
                return Ok(entries);
            }
            files.plan_read(start, end)
        };
        plan.read()?
            .into_iter()
            .map(|(index, bytes)| decode_entry(index, &bytes))
            .collect()
    }

    /// A view of the log's size on disk that keeps neither the database nor the sync
    /// thread alive.
    pub fn size(&self) -> LogSize {
        LogSize(self.files.clone())
    }

    fn last_log_id(&self) -> Result<Option<LogId<u64>>, StoreError> {
        let last = self.files.lock().last_index();
        match last {
            Some(index) => Ok(self.entries(index..=index)?.pop().map(|entry| entry.log_id)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
impl LogStore {
    /// Writes raw records (index, stored bytes) after the log's end, for tests that need
    /// records `append` would never write.
    pub(crate) fn append_raw(&self, records: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let mut files = self.files.lock();
        self.recent.lock().clear();
        let written = files.append(records)?;
        sync_files(&written).map_err(StoreError::io(self.durable.dir().join("wal")))?;
        if let Some(next) = files.next_index() {
            files.sync_point().advance(next);
        }
        Ok(())
    }
}

/// Writes one record of the meta tree and makes it durable; blocks (call it through
/// `blocking`).
fn put_meta_durably(
    durable: &Durable,
    meta: &sled::Tree,
    key: &'static [u8],
    record: Vec<u8>,
    action: &'static str,
) -> Result<(), StoreError> {
    durable.write_durably(|_| {
        meta.insert(key, record)
            .map_err(StoreError::sled(action))
            .map(drop)
    })
}

fn read_meta<T: DeserializeOwned>(
    meta: &sled::Tree,
    key: &[u8],
    what: &str,
) -> Result<Option<T>, StoreError> {
    meta.get(key)
        .map_err(StoreError::sled("read the meta tree"))?
        .map(|bytes| decode(what, &bytes))
        .transpose()
}

/// Moves the entries of a directory written before the segment files (sled's tree `log`)
/// to the files, durably, then empties the tree. A crash in between leaves both; the next
/// open copies only what the files lack.
fn move_sled_log(
    durable: &Durable,
    files: &mut SegmentLog,
    purged: Option<u64>,
) -> Result<(), StoreError> {
    let tree = durable
        .db()
        .open_tree("log")
        .map_err(StoreError::sled("open the log tree"))?;
    if tree.is_empty() {
        return Ok(());
    }
    let mut records = Vec::new();
    for item in tree.iter() {
        let (key, bytes) = item.map_err(StoreError::sled("read the log"))?;
        let index = key_index(&key)?;
        if files.next_index().is_some_and(|next| index < next) {
            continue;
        }
        records.push((index, bytes.to_vec()));
    }
    tracing::info!(
        entries = records.len(),
        "moving the raft log from sled to its segment files"
    );
    let written = files.append(&records)?;
    sync_files(&written).map_err(StoreError::io(durable.dir().join("wal")))?;
    if let Some(next) = files.next_index() {
        files.sync_point().advance(next);
    }
    if let Some(purged) = purged {
        files.purge_through(purged)?;
    }
    durable.write_durably(|_| tree.clear().map_err(StoreError::sled("empty the log tree")))
}

fn decode_entry(index: u64, bytes: &[u8]) -> Result<Entry<TypeConfig>, StoreError> {
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
        let last_purged_log_id: Option<LogId<u64>> =
            read_meta(&self.meta, KEY_LAST_PURGED, "last purged log id").map_err(read_failed)?;
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
        let (meta, durable) = (self.meta.clone(), self.durable.clone());
        blocking(move || put_meta_durably(&durable, &meta, KEY_VOTE, record, "write the vote"))
            .await
            .map_err(write_failed)
    }

    /// The vote as saved, but never committed: openraft reads the vote once, at start,
    /// and a node whose committed vote names itself would resume leading its old term at
    /// once, and answer as leader while the cluster may have moved on without it. Read as
    /// uncommitted, the vote still binds the node (it grants no lower vote), and the node
    /// starts as a follower that leads again only by winning an election in a new term.
    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        let vote: Option<Vote<u64>> = read_meta(&self.meta, KEY_VOTE, "vote")
            .map_err(|error| error.into_storage(ErrorSubject::Vote, ErrorVerb::Read))?;
        Ok(vote.map(|vote| Vote {
            committed: false,
            ..vote
        }))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        let next = committed.map_or(0, |log_id| log_id.index.saturating_add(1));
        self.committed_next.fetch_max(next, Ordering::SeqCst);
        self.write_meta(KEY_COMMITTED, "committed log id", &committed)
            .map_err(|error| error.into_storage(ErrorSubject::Store, ErrorVerb::Write))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        let committed: Option<Option<LogId<u64>>> =
            read_meta(&self.meta, KEY_COMMITTED, "committed log id")
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
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let first_index = entries.first().map(|entry| entry.log_id.index);
        let through = entries
            .last()
            .map_or(0, |entry| entry.log_id.index.saturating_add(1));
        let commands: usize = entries
            .iter()
            .map(|entry| match &entry.payload {
                EntryPayload::Normal(proposal) => proposal.envelopes.len(),
                _ => 1,
            })
            .sum();
        let written = entries
            .iter()
            .map(|entry| Ok((entry.log_id.index, encode_entry(entry)?)))
            .collect::<Result<Vec<_>, StoreError>>()
            .and_then(|records| {
                if self.syncer.failed.load(Ordering::SeqCst) {
                    return Err(StoreError::Task(
                        "an earlier sync of the raft log failed".to_string(),
                    ));
                }
                let sizes = records.iter().map(|(_, record)| record.len());
                let appended: Vec<_> = entries.into_iter().zip(sizes).collect();
                let mut files = self.files.lock();
                let written = files.append(&records);
                let mut recent = self.recent.lock();
                match &written {
                    Ok(_) => recent.extend(appended),
                    // Part of it may be in the files: what they hold is read from them.
                    Err(_) => recent.clear(),
                }
                written
            });
        // Written to the page cache and readable now; durable when the sync thread says.
        let submitted = written.and_then(|files| {
            self.syncer.sync_append(
                files,
                through,
                // One command, and nothing before it waiting to commit: this append is
                // all the node has in flight.
                commands <= 1 && first_index == Some(self.committed_next.load(Ordering::SeqCst)),
                Box::new(move |result| callback.log_io_completed(result)),
            )
        });
        submitted.map_err(write_failed)
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let delete_failed =
            |error: StoreError| error.into_storage(ErrorSubject::Logs, ErrorVerb::Delete);
        tracing::debug!(%log_id, "truncating the raft log");
        self.syncer.barrier().await.map_err(delete_failed)?;
        let (files, recent) = (self.files.clone(), self.recent.clone());
        blocking(move || {
            let mut files = files.lock();
            recent.lock().truncate_from(log_id.index);
            files.truncate_from(log_id.index)
        })
        .await
        .map_err(delete_failed)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let delete_failed =
            |error: StoreError| error.into_storage(ErrorSubject::Logs, ErrorVerb::Delete);
        tracing::debug!(%log_id, "purging the raft log");
        // The purge mark is durable before any segment goes: a crash in between leaves
        // entries below the mark, which do not count, never a mark above a hole.
        let record = encode("last purged log id", &log_id).map_err(delete_failed)?;
        self.syncer.barrier().await.map_err(delete_failed)?;
        let (meta, durable) = (self.meta.clone(), self.durable.clone());
        let (files, recent) = (self.files.clone(), self.recent.clone());
        blocking(move || {
            let action = "write the purge mark";
            put_meta_durably(&durable, &meta, KEY_LAST_PURGED, record, action)?;
            let mut files = files.lock();
            recent.lock().purge_through(log_id.index);
            files.purge_through(log_id.index)
        })
        .await
        .map_err(delete_failed)
    }
}

#[cfg(test)]
mod tests;

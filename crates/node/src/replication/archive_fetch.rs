//! Filling a node's archive after it installed a snapshot: a snapshot carries only the
//! newest archived records (`archive::ARCHIVED_IN_SNAPSHOT`), so the node notes the range
//! of log indexes whose archived records it lacks (`CatchUp`, durable in the archive's
//! `archive_meta` tree before the snapshot is stored) and `ArchiveFetch` asks a peer for
//! them, `archive.chunk_auctions` records at a time, oldest first, over the peer
//! protocol (`PeerRequest::ArchiveChunk`). Progress is written after every chunk, so a
//! node restarted midway goes on where it stopped; a snapshot installed meanwhile widens
//! the range. Until the range is filled the node says its archive is catching up (node
//! status, checkpoints, `ArchiveStatus` to the leader adding it), refuses to serve chunks
//! or a backup, and answers 503 for an archived auction it does not hold yet.
//!
//! The leader is asked first, then the other members; a peer whose own archive is
//! catching up refuses. Records are checked before they are stored: in the range, in
//! order, no more than asked, none an auction the replicated state still holds. Records
//! that closed before the newest prune cutoff this node applied are not stored: every
//! other node has dropped them or is dropping them (`kernel::archived`).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::archive::{decode_archived, order_key, ArchiveStore, ArchivedAuction};
use super::codec::{decode, encode};
use super::error::{blocking, StoreError};
use super::{GavelRaft, SharedState};
use crate::config::MAX_CHUNK_AUCTIONS;
use gavel_kernel::types::validate_id;

/// The key of `archive_meta` that holds the `CatchUp` under way.
const KEY_CATCH_UP: &[u8] = b"catch_up";

/// Most bytes of records one chunk carries (at least one record is always sent), well
/// under the peer protocol's frame limit.
pub const MAX_CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// How long one chunk request may take.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the fetcher looks for a catch-up to do.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Pause after every peer failed to answer.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The archived records a node lacks: those archived by log entries after `after_index`
/// up to `up_to_index`; those up to and including `resume_after` (an archive-order
/// position) are stored already.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchUp {
    pub after_index: u64,
    pub up_to_index: u64,
    pub resume_after: Option<(u64, String)>,
}

/// One chunk of archive records, oldest first; `done` when none is left in the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveChunk {
    pub records: Vec<ArchivedAuction>,
    pub done: bool,
}

/// What a node says of its archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveStatus {
    pub catching_up: bool,
    pub auctions: u64,
    pub digest: String,
}

impl ArchiveStore {
    /// The catch-up under way, if any.
    pub fn catch_up(&self) -> Result<Option<CatchUp>, StoreError> {
        self.meta
            .get(KEY_CATCH_UP)
            .map_err(StoreError::sled("read the archive catch-up"))?
            .map(|bytes| decode("archive catch-up", &bytes))
            .transpose()
    }

    /// Whether records are still to be fetched.
    pub fn catching_up(&self) -> bool {
        !matches!(self.catch_up(), Ok(None))
    }

    /// What this node says of its archive.
    pub fn status(&self) -> Result<ArchiveStatus, StoreError> {
        let held = self.held()?;
        Ok(ArchiveStatus {
            catching_up: self.catch_up()?.is_some(),
            auctions: held.auctions,
            digest: held.digest(),
        })
    }

    fn write_catch_up(&self, catch_up: Option<&CatchUp>) -> Result<(), StoreError> {
        match catch_up {
            Some(catch_up) => self
                .meta
                .insert(KEY_CATCH_UP, encode("archive catch-up", catch_up)?)
                .map(|_| ()),
            None => self.meta.remove(KEY_CATCH_UP).map(|_| ()),
        }
        .map_err(StoreError::sled("write the archive catch-up"))
    }

    /// Notes that records archived after `after_index` up to `up_to_index` are missing
    /// (a snapshot up to `up_to_index` was installed on a node that had applied up to
    /// `after_index`); a catch-up under way is widened. Not durable until `make_durable`.
    pub fn begin_catch_up(&self, after_index: u64, up_to_index: u64) -> Result<(), StoreError> {
        let widened = match self.catch_up()? {
            Some(under_way) => CatchUp {
                after_index: under_way.after_index.min(after_index),
                up_to_index: under_way.up_to_index.max(up_to_index),
                resume_after: under_way.resume_after,
            },
            None if up_to_index <= after_index => return Ok(()),
            None => CatchUp {
                after_index,
                up_to_index,
                resume_after: None,
            },
        };
        self.write_catch_up(Some(&widened))
    }

    /// Forgets the catch-up: the archive holds every record (a restore wrote them all).
    pub fn clear_catch_up(&self) -> Result<(), StoreError> {
        self.write_catch_up(None)
    }

    /// Notes that the records up to `position` were stored.
    fn note_progress(&self, position: (u64, String)) -> Result<(), StoreError> {
        if let Some(mut catch_up) = self.catch_up()? {
            catch_up.resume_after = Some(position);
            self.write_catch_up(Some(&catch_up))?;
        }
        Ok(())
    }

    /// Ends the catch-up if its range still ends at `up_to_index` (a snapshot installed
    /// meanwhile widened it otherwise). Answers whether it ended.
    fn finish_catch_up(&self, up_to_index: u64) -> Result<bool, StoreError> {
        match self.catch_up()? {
            Some(catch_up) if catch_up.up_to_index == up_to_index => {
                self.write_catch_up(None)?;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Ok(true),
        }
    }

    /// Up to `limit` records (and about `MAX_CHUNK_BYTES`) archived after `after_index`
    /// up to `up_to_index`, past `resume_after`, oldest first: what a peer asked for.
    pub fn chunk(&self, request: &CatchUp, limit: u32) -> Result<ArchiveChunk, StoreError> {
        let start = match &request.resume_after {
            Some((index, id)) => {
                let mut key = order_key(*index, id);
                key.push(0);
                key
            }
            None => request.after_index.saturating_add(1).to_be_bytes().to_vec(),
        };
        let end = request.up_to_index.saturating_add(1).to_be_bytes();
        let limit = limit.clamp(1, MAX_CHUNK_AUCTIONS) as usize;
        let (mut records, mut bytes) = (Vec::new(), 0usize);
        for key in self.order.range(start..end.to_vec()).keys() {
            if records.len() >= limit || bytes >= MAX_CHUNK_BYTES {
                return Ok(ArchiveChunk {
                    records,
                    done: false,
                });
            }
            let key = key.map_err(StoreError::sled("read the archive order"))?;
            let id = key
                .get(8..)
                .ok_or_else(|| StoreError::corrupt("archive order", "a key is too short"))?;
            let value = self
                .records
                .get(id)
                .map_err(StoreError::sled("read an archived auction"))?
                .ok_or_else(|| StoreError::corrupt("archive", "an indexed record is missing"))?;
            bytes += value.len();
            records.push(decode_archived(&value)?);
        }
        Ok(ArchiveChunk {
            records,
            done: true,
        })
    }
}

/// How the fetcher asks a peer for a chunk: over the peer protocol, by the node's
/// `peer::PeerClients`. The error says why the peer did not answer, or what it refused.
pub trait ChunkSource: Send + Sync {
    fn archive_chunk<'a>(
        &'a self,
        peer: u64,
        address: &'a str,
        range: CatchUp,
        limit: u32,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ArchiveChunk, String>>;
}

/// Fetches what the node's archive lacks (see the module's documentation).
pub struct ArchiveFetch {
    pub node_id: u64,
    pub archive: ArchiveStore,
    pub state: SharedState,
    pub raft: GavelRaft,
    pub clients: Arc<dyn ChunkSource>,
    /// `archive.chunk_auctions`.
    pub chunk_auctions: u32,
}

/// Why a chunk was not stored.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Peer(String),
    #[error("node {peer} sent a bad chunk: {detail}")]
    BadChunk { peer: u64, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ArchiveFetch {
    /// Runs for as long as the node does.
    pub async fn run(self) {
        loop {
            let archive = self.archive.clone();
            match blocking(move || archive.catch_up()).await {
                // The snapshot that noted it is not in place yet: its state is needed to
                // check what arrives.
                Ok(Some(catch_up))
                    if self.state.read().last_applied_index < catch_up.up_to_index =>
                {
                    tokio::time::sleep(IDLE_POLL).await;
                }
                Ok(Some(catch_up)) => {
                    if let Err(error) = self.fill(catch_up).await {
                        tracing::warn!(%error, "archive catch-up: no peer could send the missing records; trying again");
                        tokio::time::sleep(RETRY_AFTER).await;
                    }
                }
                Ok(None) => tokio::time::sleep(IDLE_POLL).await,
                Err(error) => {
                    tracing::error!(%error, "cannot read the archive catch-up");
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        }
    }

    /// The peers to ask, the leader first.
    fn sources(&self) -> Vec<(u64, String)> {
        let metrics = self.raft.metrics().borrow().clone();
        let mut sources: Vec<(u64, String)> = metrics
            .membership_config
            .membership()
            .nodes()
            .filter(|(id, _)| **id != self.node_id)
            .map(|(id, info)| (*id, info.peer_addr.clone()))
            .collect();
        sources.sort_by_key(|(id, _)| Some(*id) != metrics.current_leader);
        sources
    }

    /// Fills `catch_up` from the first peer that can.
    async fn fill(&self, catch_up: CatchUp) -> Result<(), FetchError> {
        tracing::info!(
            ?catch_up,
            "archive catch-up: fetching the records the snapshot did not carry"
        );
        let mut last_error = FetchError::Peer("no peer to ask".to_string());
        for (peer, address) in self.sources() {
            match self.fill_from(peer, &address, catch_up.clone()).await {
                Ok(()) => return Ok(()),
                Err(error) => {
                    tracing::info!(peer, %error, "archive catch-up: trying another peer");
                    last_error = error;
                }
            }
        }
        Err(last_error)
    }

    async fn fill_from(
        &self,
        peer: u64,
        address: &str,
        mut catch_up: CatchUp,
    ) -> Result<(), FetchError> {
        let mut stored = 0u64;
        loop {
            let chunk = self
                .clients
                .archive_chunk(
                    peer,
                    address,
                    catch_up.clone(),
                    self.chunk_auctions,
                    CHUNK_TIMEOUT,
                )
                .await
                .map_err(FetchError::Peer)?;
            let done = chunk.done;
            let (keep, last) = self.check_chunk(peer, &catch_up, chunk)?;
            stored += keep.len() as u64;
            let archive = self.archive.clone();
            let up_to_index = catch_up.up_to_index;
            let progress = last.clone();
            let finished = blocking(move || {
                archive.put(&keep)?;
                if let Some(position) = progress {
                    archive.note_progress(position)?;
                }
                if done {
                    return archive.finish_catch_up(up_to_index);
                }
                Ok(false)
            })
            .await?;
            self.archive.make_durable().await?;
            if done {
                tracing::info!(peer, stored, finished, "archive catch-up: range filled");
                return Ok(());
            }
            if last.is_none() {
                return Err(FetchError::BadChunk {
                    peer,
                    detail: "an empty chunk that is not the last".to_string(),
                });
            }
            catch_up.resume_after = last;
        }
    }

    /// The records of `chunk` to store, and the position of its last record; an error if
    /// any record is out of the range asked for, out of order, or a live auction here.
    #[allow(clippy::type_complexity)]
    fn check_chunk(
        &self,
        peer: u64,
        asked: &CatchUp,
        chunk: ArchiveChunk,
    ) -> Result<(Vec<ArchivedAuction>, Option<(u64, String)>), FetchError> {
        let bad = |detail: String| FetchError::BadChunk { peer, detail };
        if chunk.records.len() > self.chunk_auctions.clamp(1, MAX_CHUNK_AUCTIONS) as usize {
            return Err(bad(format!(
                "{} records, more than asked",
                chunk.records.len()
            )));
        }
        let state = self.state.read();
        let ledger = &state.kernel.archived;
        let mut previous = asked
            .resume_after
            .as_ref()
            .map(|(index, id)| order_key(*index, id));
        let mut keep = Vec::with_capacity(chunk.records.len());
        let mut last = None;
        for record in chunk.records {
            let (index, id) = (record.archived_at_index, record.auction.spec.id.clone());
            validate_id("auction id", &id).map_err(|error| bad(error.to_string()))?;
            if index <= asked.after_index || index > asked.up_to_index {
                return Err(bad(format!(
                    "{id} was archived at {index}, outside the range"
                )));
            }
            let key = order_key(index, &id);
            if previous.as_ref().is_some_and(|previous| &key <= previous) {
                return Err(bad(format!("{id} is out of archive order")));
            }
            // Not `ledger.was_archived`: a state written before the ledger kept ids
            // (an upgraded cluster) does not know its older archived auctions.
            if state.kernel.auctions.contains_key(&id) {
                return Err(bad(format!("{id} is a live auction here")));
            }
            previous = Some(key);
            last = Some((index, id));
            if ledger.keeps(record.auction.closed_at_ms) {
                keep.push(record);
            }
        }
        Ok((keep, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gavel_kernel::{Auction, AuctionSpec};

    fn record(index: u64, id: &str) -> ArchivedAuction {
        ArchivedAuction {
            archived_at_index: index,
            auction: Auction::new(AuctionSpec {
                listing_opens_at_ms: 10,
                listing_closes_at_ms: 20,
                ..AuctionSpec::example(id)
            }),
        }
    }

    #[test]
    fn a_catch_up_in_small_chunks_ends_with_the_same_archive_in_any_order() {
        let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let full = ArchiveStore::open(dirs.0.path()).unwrap();
        let records: Vec<ArchivedAuction> = (1..=10)
            .map(|index| record(index * 10, &format!("lot-{index}")))
            .collect();
        for record in &records {
            full.put(std::slice::from_ref(record)).unwrap();
        }
        // A node that installed a snapshot at index 100 carrying the newest three, having
        // applied nothing before it.
        let behind = ArchiveStore::open(dirs.1.path()).unwrap();
        behind.put(&records[7..]).unwrap();
        behind.begin_catch_up(0, 100).unwrap();
        assert!(behind.catching_up());
        assert_ne!(behind.held().unwrap(), full.held().unwrap());
        // A second snapshot meanwhile widens the range; it never narrows it.
        behind.begin_catch_up(40, 100).unwrap();
        assert_eq!(behind.catch_up().unwrap().map(|c| c.after_index), Some(0));

        let mut chunks = 0;
        loop {
            let asked = behind.catch_up().unwrap().expect("under way");
            let chunk = full.chunk(&asked, 3).unwrap();
            assert!(chunk.records.len() <= 3);
            chunks += 1;
            behind.put(&chunk.records).unwrap();
            if chunk.done {
                assert!(behind.finish_catch_up(asked.up_to_index).unwrap());
                break;
            }
            let last = chunk.records.last().expect("a record");
            let position = (last.archived_at_index, last.auction.spec.id.clone());
            behind.note_progress(position).unwrap();
        }
        assert_eq!(chunks, 4, "ten records, three a chunk");
        assert!(!behind.catching_up());
        assert_eq!(behind.held().unwrap(), full.held().unwrap());
        assert_eq!(behind.len(), 10);
        // The same record again changes nothing; one record fewer changes the digest.
        behind.put(&records[..1]).unwrap();
        assert_eq!(behind.held().unwrap(), full.held().unwrap());
        behind.prune_closed_before(u64::MAX, 1).unwrap();
        assert_eq!(behind.held().unwrap().auctions, 9);
        assert_ne!(
            behind.held().unwrap().digest(),
            full.held().unwrap().digest()
        );
    }

    #[test]
    fn a_chunk_covers_only_the_range_asked() {
        let dir = tempfile::tempdir().unwrap();
        let archive = ArchiveStore::open(dir.path()).unwrap();
        let records: Vec<ArchivedAuction> = (1..=5)
            .map(|index| record(index, &format!("lot-{index}")))
            .collect();
        archive.put(&records).unwrap();
        let asked = CatchUp {
            after_index: 1,
            up_to_index: 4,
            resume_after: Some((2, "lot-2".to_string())),
        };
        let chunk = archive.chunk(&asked, 100).unwrap();
        let ids: Vec<&str> = chunk
            .records
            .iter()
            .map(|r| r.auction.spec.id.as_str())
            .collect();
        assert_eq!(ids, ["lot-3", "lot-4"]);
        assert!(chunk.done);
        // A range with nothing to fill notes nothing.
        archive.begin_catch_up(7, 7).unwrap();
        assert!(!archive.catching_up());
    }
}

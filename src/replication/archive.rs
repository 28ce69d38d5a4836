//! The node's archive of closed auctions: where `Command::Archive` puts the auctions it
//! takes out of the replicated state, so memory stays flat while every result stays
//! readable (`GET /api/v1/auctions/{id}`, `/bids`, `/control/v1/auctions/{id}/result`).
//!
//! A sled database of its own in `<data_dir>/archive` (so its size on disk shows apart
//! from the Raft log's, and its page cache is bounded by `CACHE_BYTES`), with two trees:
//! `archive` holds each archived auction whole, by id, with the log index of the entry
//! that archived it; `archive_order` indexes them by that log index, newest last. The
//! state machine writes them when it applies the entry; re-applying the same entry after
//! a restart writes the same records again, so the write needs no transaction with the
//! state. They are made durable before a snapshot that no longer holds those auctions is
//! stored, which is also before the log entries that archived them can be purged.
//!
//! Snapshots and the archive: a snapshot carries the records of the newest
//! `ARCHIVED_IN_SNAPSHOT` archived auctions (those with the newest log indexes up to the
//! snapshot's). A node that installs a snapshot writes them to its archive, so a follower
//! that was behind by fewer archived auctions than that ends with a complete archive. One
//! that missed more keeps answering for what it archived itself and for what the snapshot
//! carried; the records it missed are on every node that applied the entries (the leader
//! among them). That bound keeps a snapshot, which openraft holds in memory, small however
//! long the cluster runs.

use serde::{Deserialize, Serialize};

use std::path::Path;
use std::sync::Arc;

use super::codec::encode;
use super::durable::Durable;
use super::error::{blocking, StoreError};
use crate::kernel::Auction;

/// Archived auctions a snapshot carries, newest first.
pub const ARCHIVED_IN_SNAPSHOT: usize = 1_000;

/// sled's page cache for the archive: reads of old results are rare, and memory must not
/// grow with the archive. sled counts the cached pages' size on disk; what they take in
/// memory is several times that, so the bound is small.
const CACHE_BYTES: u64 = 1024 * 1024;

/// One archived auction and the log index of the entry that archived it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedAuction {
    pub archived_at_index: u64,
    pub auction: Auction,
}

/// Reads and writes the archive trees; cheap to clone.
#[derive(Clone)]
pub struct ArchiveStore {
    durable: Arc<Durable>,
    records: sled::Tree,
    order: sled::Tree,
}

fn order_key(index: u64, auction_id: &str) -> Vec<u8> {
    let mut key = index.to_be_bytes().to_vec();
    key.extend_from_slice(auction_id.as_bytes());
    key
}

impl ArchiveStore {
    /// Opens (or creates) the archive database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let durable = Arc::new(Durable::open_with_cache(dir, Some(CACHE_BYTES))?);
        let db = durable.db().clone();
        Ok(ArchiveStore {
            durable,
            records: db
                .open_tree("archive")
                .map_err(StoreError::sled("open the archive tree"))?,
            order: db
                .open_tree("archive_order")
                .map_err(StoreError::sled("open the archive order tree"))?,
        })
    }

    /// Stores `archived` (replacing a record of the same auction id).
    pub fn put(&self, archived: &[ArchivedAuction]) -> Result<(), StoreError> {
        for record in archived {
            let id = record.auction.spec.id.as_str();
            let bytes = encode("archived auction", record)?;
            let previous = self
                .records
                .insert(id.as_bytes(), bytes)
                .map_err(StoreError::sled("write an archived auction"))?;
            if let Some(previous) = previous {
                let previous = super::legacy::decode_archived(&previous)?;
                self.order
                    .remove(order_key(previous.archived_at_index, id))
                    .map_err(StoreError::sled("update the archive order"))?;
            }
            self.order
                .insert(order_key(record.archived_at_index, id), &[])
                .map_err(StoreError::sled("write the archive order"))?;
        }
        Ok(())
    }

    /// Makes every record written so far durable.
    pub async fn make_durable(&self) -> Result<(), StoreError> {
        let durable = self.durable.clone();
        blocking(move || durable.make_durable()).await
    }

    /// Writes a probe record to the archive database and makes it durable (see
    /// `Replication::probe_storage`).
    pub async fn probe(&self) -> Result<(), StoreError> {
        let durable = self.durable.clone();
        blocking(move || {
            durable.write_durably(|db| {
                db.open_tree("storage_probe")
                    .map_err(StoreError::sled("open the archive's probe tree"))?
                    .insert("last", &[1u8])
                    .map_err(StoreError::sled("write the archive's storage probe"))?;
                Ok(())
            })
        })
        .await
    }

    /// The archived auction `auction_id`, if this node holds it.
    pub fn get(&self, auction_id: &str) -> Result<Option<Auction>, StoreError> {
        let Some(bytes) = self
            .records
            .get(auction_id.as_bytes())
            .map_err(StoreError::sled("read an archived auction"))?
        else {
            return Ok(None);
        };
        let record = super::legacy::decode_archived(&bytes)?;
        Ok(Some(record.auction))
    }

    /// Whether `auction_id` is archived here.
    pub fn contains(&self, auction_id: &str) -> Result<bool, StoreError> {
        self.records
            .contains_key(auction_id.as_bytes())
            .map_err(StoreError::sled("read the archive"))
    }

    /// How many auctions this node has archived.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Removes archived auctions that closed before `closed_before_ms`, oldest archived
    /// first, at most `limit`; stops at the first one that closed later, so a record is
    /// never removed before one archived ahead of it. Answers how many it removed. Every
    /// node applies the same `Command::PruneArchive` at the same log index, so every
    /// archive drops the same records.
    pub fn prune_closed_before(
        &self,
        closed_before_ms: u64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        while removed < limit {
            let Some((order_key, record)) = self.oldest_record()? else {
                break;
            };
            if record.auction.closed_at_ms.unwrap_or(0) >= closed_before_ms {
                break;
            }
            self.records
                .remove(record.auction.spec.id.as_bytes())
                .map_err(StoreError::sled("remove an archived auction"))?;
            self.order
                .remove(order_key)
                .map_err(StoreError::sled("update the archive order"))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// When the oldest archived auction closed, if the archive holds any.
    pub fn oldest_closed_at_ms(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .oldest_record()?
            .map(|(_, record)| record.auction.closed_at_ms.unwrap_or(0)))
    }

    /// The first entry of the archive order and its record.
    fn oldest_record(&self) -> Result<Option<(sled::IVec, ArchivedAuction)>, StoreError> {
        let Some(key) = self
            .order
            .first()
            .map_err(StoreError::sled("read the archive order"))?
            .map(|(key, _)| key)
        else {
            return Ok(None);
        };
        let Some(id) = key.get(8..) else {
            return Err(StoreError::corrupt("archive order", "a key is too short"));
        };
        let bytes = self
            .records
            .get(id)
            .map_err(StoreError::sled("read an archived auction"))?
            .ok_or_else(|| {
                StoreError::corrupt(
                    "archive",
                    format!("{} is indexed but missing", String::from_utf8_lossy(id)),
                )
            })?;
        Ok(Some((key, super::legacy::decode_archived(&bytes)?)))
    }

    /// The newest `limit` records archived at or before log index `up_to_index`, oldest
    /// first: what a snapshot up to that index carries.
    pub fn newest(
        &self,
        up_to_index: u64,
        limit: usize,
    ) -> Result<Vec<ArchivedAuction>, StoreError> {
        let end = up_to_index.saturating_add(1).to_be_bytes();
        let mut newest = Vec::new();
        for key in self.order.range(..end.as_slice()).keys().rev() {
            if newest.len() >= limit {
                break;
            }
            let key = key.map_err(StoreError::sled("read the archive order"))?;
            let Some(id) = key.get(8..) else {
                return Err(StoreError::corrupt("archive order", "a key is too short"));
            };
            let id = String::from_utf8_lossy(id).into_owned();
            let bytes = self
                .records
                .get(id.as_bytes())
                .map_err(StoreError::sled("read an archived auction"))?
                .ok_or_else(|| {
                    StoreError::corrupt("archive", format!("{id} is indexed but missing"))
                })?;
            newest.push(super::legacy::decode_archived(&bytes)?);
        }
        newest.reverse();
        Ok(newest)
    }
}

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
//! Each write (`put`, `prune_closed_before`) is one sled transaction over both trees and
//! a third, `archive_meta`, which keeps what the archive holds: how many records and an
//! order-independent digest of them (`HeldArchive`), so two nodes' archives compare in
//! one look whatever order they were filled in.
//!
//! Snapshots and the archive: a snapshot carries only the records of the newest
//! `ARCHIVED_IN_SNAPSHOT` archived auctions, which keeps it (openraft holds it in memory)
//! small however long the cluster runs. A node that installs one stores them, notes that
//! its archive lacks what was archived between the index it had applied and the
//! snapshot's (`catch_up`), and fetches those records from a peer in bounded chunks
//! (`archive_fetch`); until that is done its archive is incomplete, and it says so.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use std::path::Path;
use std::sync::Arc;

use super::codec::{decode, encode};
use super::codec::{decode_body, decode_versioned, encode_as};
use super::durable::Durable;
use super::error::{blocking, StoreError};
use super::legacy::{ArchivedAuctionV1, ArchivedAuctionV2, AUCTIONS_FORMAT};
use gavel_kernel::Auction;

/// Archived auctions a snapshot carries (the newest): a bound that keeps snapshots small;
/// a node that installs one fetches the others (`archive_fetch`).
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

impl From<ArchivedAuctionV1> for ArchivedAuction {
    fn from(old: ArchivedAuctionV1) -> ArchivedAuction {
        let (archived_at_index, auction) = old.into_current();
        ArchivedAuction {
            archived_at_index,
            auction,
        }
    }
}

/// Encodes an archived auction record in the current shape.
pub(super) fn encode_archived(record: &ArchivedAuction) -> Result<Vec<u8>, StoreError> {
    encode_as(AUCTIONS_FORMAT, "archived auction", record)
}

/// Decodes an archived auction record: the current shape, or the v2 or v1 one
/// (`legacy`).
pub(super) fn decode_archived(bytes: &[u8]) -> Result<ArchivedAuction, StoreError> {
    decode_versioned(
        "archived auction",
        bytes,
        &[
            (AUCTIONS_FORMAT, decode_body),
            (1, decode_archived_v1_or_v2),
        ],
    )
}

fn decode_archived_v1_or_v2(what: &str, body: &[u8]) -> Result<ArchivedAuction, StoreError> {
    match decode_body::<ArchivedAuctionV2>(what, body) {
        Ok(old) => {
            let (archived_at_index, auction) = old.into_current();
            Ok(ArchivedAuction {
                archived_at_index,
                auction,
            })
        }
        Err(error) => match decode_body::<ArchivedAuctionV1>(what, body) {
            Ok(old) => Ok(old.into()),
            Err(_) => Err(error),
        },
    }
}

/// What a node's archive holds: how many records, and the sum (in four 64-bit lanes,
/// wrapping) of each stored record's SHA-256. The sum does not depend on the order the
/// records came in, so an archive filled by a catch-up and one filled entry by entry
/// agree when they hold the same records. It detects a missing, extra or differing
/// record; it is no defence against a forger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldArchive {
    pub auctions: u64,
    sum: [u64; 4],
}

impl HeldArchive {
    fn lanes(record: &[u8]) -> [u64; 4] {
        let hash = Sha256::digest(record);
        let mut lanes = [0u64; 4];
        for (lane, bytes) in lanes.iter_mut().zip(hash.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(bytes);
            *lane = u64::from_be_bytes(word);
        }
        lanes
    }

    fn add(&mut self, record: &[u8]) {
        for (lane, value) in self.sum.iter_mut().zip(Self::lanes(record)) {
            *lane = lane.wrapping_add(value);
        }
        self.auctions += 1;
    }

    fn remove(&mut self, record: &[u8]) {
        for (lane, value) in self.sum.iter_mut().zip(Self::lanes(record)) {
            *lane = lane.wrapping_sub(value);
        }
        self.auctions = self.auctions.saturating_sub(1);
    }

    /// The digest, as 64 hex digits.
    pub fn digest(&self) -> String {
        self.sum.iter().map(|lane| format!("{lane:016x}")).collect()
    }
}

/// The key of `archive_meta` that holds the `HeldArchive`.
const KEY_HELD: &[u8] = b"held";

/// Reads and writes the archive trees; cheap to clone.
#[derive(Clone)]
pub struct ArchiveStore {
    durable: Arc<Durable>,
    pub(super) records: sled::Tree,
    pub(super) order: sled::Tree,
    /// `KEY_HELD`, and the catch-up under way if any (`catch_up`).
    pub(super) meta: sled::Tree,
}

pub(super) fn order_key(index: u64, auction_id: &str) -> Vec<u8> {
    let mut key = index.to_be_bytes().to_vec();
    key.extend_from_slice(auction_id.as_bytes());
    key
}

type Abort = ConflictableTransactionError<StoreError>;

fn read_held(meta: &TransactionalTree) -> Result<HeldArchive, Abort> {
    match meta.get(KEY_HELD)? {
        Some(bytes) => decode("archive summary", &bytes).map_err(Abort::Abort),
        None => Ok(HeldArchive::default()),
    }
}

fn write_held(meta: &TransactionalTree, held: &HeldArchive) -> Result<(), Abort> {
    let bytes = encode("archive summary", held).map_err(Abort::Abort)?;
    meta.insert(KEY_HELD, bytes)?;
    Ok(())
}

fn transaction_failed(
    action: &'static str,
) -> impl FnOnce(TransactionError<StoreError>) -> StoreError {
    move |error| match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(source) => StoreError::Sled { action, source },
    }
}

impl ArchiveStore {
    /// Opens (or creates) the archive database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let durable = Arc::new(Durable::open_with_cache(dir, Some(CACHE_BYTES))?);
        let db = durable.db().clone();
        let store = ArchiveStore {
            durable,
            records: db
                .open_tree("archive")
                .map_err(StoreError::sled("open the archive tree"))?,
            order: db
                .open_tree("archive_order")
                .map_err(StoreError::sled("open the archive order tree"))?,
            meta: db
                .open_tree("archive_meta")
                .map_err(StoreError::sled("open the archive summary tree"))?,
        };
        store.summarize_older_archive()?;
        Ok(store)
    }

    /// An archive written before it kept a summary gets one, from a scan of its records.
    fn summarize_older_archive(&self) -> Result<(), StoreError> {
        let summarized = self
            .meta
            .contains_key(KEY_HELD)
            .map_err(StoreError::sled("read the archive summary"))?;
        if summarized {
            return Ok(());
        }
        let mut held = HeldArchive::default();
        for value in self.records.iter().values() {
            held.add(&value.map_err(StoreError::sled("read the archive"))?);
        }
        self.meta
            .insert(KEY_HELD, encode("archive summary", &held)?)
            .map_err(StoreError::sled("write the archive summary"))?;
        Ok(())
    }

    /// What this archive holds now.
    pub fn held(&self) -> Result<HeldArchive, StoreError> {
        match self
            .meta
            .get(KEY_HELD)
            .map_err(StoreError::sled("read the archive summary"))?
        {
            Some(bytes) => decode("archive summary", &bytes),
            None => Ok(HeldArchive::default()),
        }
    }

    /// Stores `archived` (replacing a record of the same auction id), in one transaction.
    pub fn put(&self, archived: &[ArchivedAuction]) -> Result<(), StoreError> {
        let encoded = archived
            .iter()
            .map(|record| Ok((record, encode_archived(record)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        (&self.records, &self.order, &self.meta)
            .transaction(|(records, order, meta)| {
                let mut held = read_held(meta)?;
                for (record, bytes) in &encoded {
                    let id = record.auction.spec.id.as_str();
                    if let Some(previous) = records.insert(id.as_bytes(), bytes.as_slice())? {
                        held.remove(&previous);
                        let previous = decode_archived(&previous).map_err(Abort::Abort)?;
                        order.remove(order_key(previous.archived_at_index, id))?;
                    }
                    held.add(bytes);
                    order.insert(order_key(record.archived_at_index, id), &[])?;
                }
                write_held(meta, &held)
            })
            .map_err(transaction_failed("write archived auctions"))
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
        let record = decode_archived(&bytes)?;
        Ok(Some(record.auction))
    }

    /// Whether `auction_id` is archived here.
    pub fn contains(&self, auction_id: &str) -> Result<bool, StoreError> {
        self.records
            .contains_key(auction_id.as_bytes())
            .map_err(StoreError::sled("read the archive"))
    }

    /// How many auctions this node's archive holds.
    pub fn len(&self) -> usize {
        self.held()
            .map_or_else(|_| self.records.len(), |held| held.auctions as usize)
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
            let id = record.auction.spec.id.as_bytes();
            (&self.records, &self.order, &self.meta)
                .transaction(|(records, order, meta)| {
                    let mut held = read_held(meta)?;
                    if let Some(bytes) = records.remove(id)? {
                        held.remove(&bytes);
                    }
                    order.remove(&order_key)?;
                    write_held(meta, &held)
                })
                .map_err(transaction_failed("remove an archived auction"))?;
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
        Ok(Some((key, decode_archived(&bytes)?)))
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
            newest.push(decode_archived(&bytes)?);
        }
        newest.reverse();
        Ok(newest)
    }
}

//! Backups of a running cluster, and new clusters restored from them.
//!
//! A backup is one node's applied state at one log index: the kernel state and every
//! auction in its archive, read under the state's read lock (nothing is applied
//! meanwhile, so the archive holds exactly what the entries up to that index archived).
//! The file is text then bytes:
//!
//! ```text
//! GAVEL-BACKUP 1\n
//! {"taken_at_ms":…,"node_id":…,"last_applied_index":…,…,"payload_bytes":L,"payload_sha256":"…"}\n
//! <L bytes: the payload, in the replication codec>
//! ```
//!
//! Reading one checks everything before it is used: the first line, the header (unknown
//! fields refused), the payload's length and SHA-256, a strict decode, and the kernel
//! state's digest against the header's.
//!
//! Restoring seeds a node's empty data directory so that it starts as if it had applied
//! the backup's log up to its index: the archive gets every archived auction, the state
//! machine a snapshot at log id (term 0, node 0, that index) whose membership is the new
//! cluster's voters, and the log is marked purged up to it. Every node of the new cluster
//! is seeded the same way, so they agree on the log's start; the first election (term 1)
//! finds them equal and the log goes on from the next index. Log indexes, and with them
//! the ids derived from them, continue from the backup's.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::{CommittedLeaderId, LogId, Membership, SnapshotMeta, StoredMembership};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::archive::{ArchiveStore, ArchivedAuction, ARCHIVED_IN_SNAPSHOT};
use super::codec::{decode_body, decode_versioned, encode_as};
use super::durable::Durable;
use super::error::{blocking, ReplicationError, StoreError};
use super::legacy::{StateV3, AUCTIONS_FORMAT, STATE_FORMAT};
use super::snapshots::snapshot_data;
use super::{LogStore, NodeInfo, SharedState, StateMachineStore};
use gavel_kernel::ledger::ExchangeLedger;
use gavel_kernel::State;

/// The first line of every backup file.
pub const BACKUP_MAGIC: &str = "GAVEL-BACKUP 1";

/// Longest header line accepted.
const MAX_HEADER_BYTES: usize = 4096;

/// What a backup says about itself, on its second line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupHeader {
    pub taken_at_ms: u64,
    /// The node whose applied state it is.
    pub node_id: u64,
    pub last_applied_index: u64,
    pub auctions: usize,
    pub archived_auctions: usize,
    pub bidders: usize,
    /// `State::digest` of the kernel state.
    pub state_digest: String,
    pub payload_bytes: u64,
    pub payload_sha256: String,
}

#[derive(Serialize)]
struct PayloadRef<'a> {
    kernel: &'a State,
    archived: &'a [ArchivedAuction],
    exchange: &'a ExchangeLedger,
}

#[derive(Debug, Deserialize)]
struct Payload {
    kernel: State,
    archived: Vec<ArchivedAuction>,
    exchange: ExchangeLedger,
}

/// A backup's payload as written before the commit-reveal lottery (`legacy`).
#[derive(Deserialize)]
struct PayloadV1 {
    kernel: super::legacy::StateV1,
    archived: Vec<super::legacy::ArchivedAuctionV1>,
    exchange: ExchangeLedger,
}

/// A backup's payload as written before bidders kept public keys (`legacy`, the v3
/// state; format byte `AUCTIONS_FORMAT`).
#[derive(Deserialize)]
struct PayloadV3 {
    kernel: StateV3,
    archived: Vec<ArchivedAuction>,
    exchange: ExchangeLedger,
}

/// A backup's payload as written before auctions kept the version 1.1 rules (`legacy`).
#[derive(Deserialize)]
struct PayloadV2 {
    kernel: super::legacy::StateV2,
    archived: Vec<super::legacy::ArchivedAuctionV2>,
    exchange: ExchangeLedger,
}

/// A payload in the current shape, with its state's digest.
fn decode_current(what: &str, body: &[u8]) -> Result<(Payload, String), StoreError> {
    let decoded: Payload = decode_body(what, body)?;
    let digest = decoded.kernel.digest();
    Ok((decoded, digest))
}

/// A payload with the v3 state, with its digest as v3 computed it (the one its header
/// names).
fn decode_v3(what: &str, body: &[u8]) -> Result<(Payload, String), StoreError> {
    let old: PayloadV3 = decode_body(what, body)?;
    let digest = old.kernel.digest();
    let decoded = Payload {
        kernel: old.kernel.into(),
        archived: old.archived,
        exchange: old.exchange,
    };
    Ok((decoded, digest))
}

/// A payload in an earlier shape, with its state's digest as that shape computed it (the
/// one its header names).
fn decode_v2_or_v1(what: &str, body: &[u8]) -> Result<(Payload, String), StoreError> {
    match decode_body::<PayloadV2>(what, body) {
        Ok(old) => {
            let digest = old.kernel.digest();
            let decoded = Payload {
                kernel: old.kernel.into(),
                archived: old
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
                exchange: old.exchange,
            };
            Ok((decoded, digest))
        }
        Err(error) => {
            let old: PayloadV1 = decode_body(what, body).map_err(|_| error)?;
            let digest = old.kernel.digest();
            let decoded = Payload {
                kernel: old.kernel.into(),
                archived: old.archived.into_iter().map(Into::into).collect(),
                exchange: old.exchange,
            };
            Ok((decoded, digest))
        }
    }
}

/// A backup, read and checked.
#[derive(Debug)]
pub struct Backup {
    pub header: BackupHeader,
    pub kernel: State,
    pub archived: Vec<ArchivedAuction>,
    /// The exchange keys applied and the records still waiting for the outbound spool.
    pub exchange: ExchangeLedger,
}

/// Why a backup file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("not a usable Gavel backup: {0}")]
pub struct BackupError(pub String);

/// The backup of this node's applied state now, as the bytes of a backup file.
pub fn take_backup(
    state: &SharedState,
    archive: &ArchiveStore,
    node_id: u64,
    taken_at_ms: u64,
) -> Result<Vec<u8>, StoreError> {
    let state = state.read();
    let archived = archive.newest(state.last_applied_index, usize::MAX)?;
    let payload = encode_as(
        STATE_FORMAT,
        "backup",
        &PayloadRef {
            kernel: &state.kernel,
            archived: &archived,
            exchange: &state.exchange,
        },
    )?;
    let header = BackupHeader {
        taken_at_ms,
        node_id,
        last_applied_index: state.last_applied_index,
        auctions: state.kernel.auctions.len(),
        archived_auctions: archived.len(),
        bidders: state.kernel.bidders.len(),
        state_digest: state.kernel.digest(),
        payload_bytes: payload.len() as u64,
        payload_sha256: hex::encode(Sha256::digest(&payload)),
    };
    drop(state);
    let header = serde_json::to_string(&header)
        .map_err(|error| StoreError::corrupt("backup header", error.to_string()))?;
    let mut bytes = Vec::with_capacity(BACKUP_MAGIC.len() + header.len() + payload.len() + 2);
    bytes.extend_from_slice(BACKUP_MAGIC.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(header.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(&payload);
    Ok(bytes)
}

/// The header of a backup file, unchecked (for logs and progress; `read_backup` checks).
pub fn read_header(bytes: &[u8]) -> Option<BackupHeader> {
    let (_, rest) = split_line(bytes, BACKUP_MAGIC.len() + 1)?;
    let (header, _) = split_line(rest, MAX_HEADER_BYTES)?;
    serde_json::from_slice(header).ok()
}

/// Reads and checks a backup file's bytes.
pub fn read_backup(bytes: &[u8]) -> Result<Backup, BackupError> {
    let bad = |detail: String| BackupError(detail);
    let (magic, rest) = split_line(bytes, BACKUP_MAGIC.len() + 1)
        .ok_or_else(|| bad(format!("it does not start with the line {BACKUP_MAGIC}")))?;
    if magic != BACKUP_MAGIC.as_bytes() {
        return Err(bad(format!(
            "it does not start with the line {BACKUP_MAGIC}"
        )));
    }
    let (header_line, payload) = split_line(rest, MAX_HEADER_BYTES)
        .ok_or_else(|| bad("its header line is missing or too long".to_string()))?;
    let header: BackupHeader = serde_json::from_slice(header_line)
        .map_err(|error| bad(format!("its header is not valid: {error}")))?;
    if payload.len() as u64 != header.payload_bytes {
        return Err(bad(format!(
            "its payload has {} bytes, its header says {} (truncated or appended to)",
            payload.len(),
            header.payload_bytes
        )));
    }
    let sha256 = hex::encode(Sha256::digest(payload));
    if sha256 != header.payload_sha256 {
        return Err(bad(format!(
            "its payload's SHA-256 is {sha256}, its header says {} (altered or damaged)",
            header.payload_sha256
        )));
    }
    let (decoded, digest) = decode_versioned(
        "backup",
        payload,
        &[
            (STATE_FORMAT, decode_current),
            (AUCTIONS_FORMAT, decode_v3),
            (1, decode_v2_or_v1),
        ],
    )
    .map_err(|error| bad(error.to_string()))?;
    if digest != header.state_digest {
        return Err(bad(format!(
            "its state's digest is {digest}, its header says {}",
            header.state_digest
        )));
    }
    if decoded.kernel.auctions.len() != header.auctions
        || decoded.archived.len() != header.archived_auctions
        || decoded.kernel.bidders.len() != header.bidders
    {
        return Err(bad("its counts disagree with its header".to_string()));
    }
    if let Some(late) = decoded
        .archived
        .iter()
        .find(|record| record.archived_at_index > header.last_applied_index)
    {
        return Err(bad(format!(
            "auction {} was archived at log index {}, after the backup's {}",
            late.auction.spec.id, late.archived_at_index, header.last_applied_index
        )));
    }
    Ok(Backup {
        header,
        kernel: decoded.kernel,
        archived: decoded.archived,
        exchange: decoded.exchange,
    })
}

/// The line before the first `\n` (at most `limit` bytes long, newline included), and
/// what follows it.
fn split_line(bytes: &[u8], limit: usize) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().take(limit).position(|byte| *byte == b'\n')?;
    Some((&bytes[..end], &bytes[end + 1..]))
}

/// A restore seeds only an empty data directory, for a cluster with a voter.
fn check_seedable(
    data_dir: &Path,
    voters: &BTreeMap<u64, NodeInfo>,
) -> Result<(), ReplicationError> {
    let holds_data = std::fs::read_dir(data_dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if holds_data {
        return Err(ReplicationError::DataDir(format!(
            "{} is not empty: a restore only seeds new nodes",
            data_dir.display()
        )));
    }
    if voters.is_empty() {
        return Err(ReplicationError::Options(
            "a restored cluster needs at least one voter".to_string(),
        ));
    }
    Ok(())
}

/// The snapshot a restored node starts from, and its last log id.
struct RestoredSnapshot {
    log_id: LogId<u64>,
    meta: SnapshotMeta<u64, NodeInfo>,
    data: Vec<u8>,
}

/// The backup's state at its last applied index, with `voters` as the membership and
/// the newest archived auctions.
fn restored_snapshot(
    voters: &BTreeMap<u64, NodeInfo>,
    backup: &Backup,
) -> Result<RestoredSnapshot, ReplicationError> {
    let log_id = LogId::new(
        CommittedLeaderId::new(0, 0),
        backup.header.last_applied_index,
    );
    let voter_ids: BTreeSet<u64> = voters.keys().copied().collect();
    let membership = StoredMembership::new(
        Some(log_id),
        Membership::new(vec![voter_ids], voters.clone()),
    );
    let newest_archived: Vec<ArchivedAuction> = backup
        .archived
        .iter()
        .rev()
        .take(ARCHIVED_IN_SNAPSHOT)
        .rev()
        .cloned()
        .collect();
    let data = snapshot_data(
        &backup.kernel,
        &Some(log_id),
        &membership,
        &newest_archived,
        &backup.exchange,
    )?;
    let meta = SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: membership,
        snapshot_id: format!("restored-{}-{}", log_id.index, backup.header.taken_at_ms),
    };
    Ok(RestoredSnapshot { log_id, meta, data })
}

/// Seeds the empty data directory of node `node_id` of a new cluster whose voters are
/// `voters` with `backup` (see the module's documentation).
pub async fn seed_data_dir(
    data_dir: &Path,
    node_id: u64,
    voters: &BTreeMap<u64, NodeInfo>,
    backup: &Backup,
) -> Result<(), ReplicationError> {
    check_seedable(data_dir, voters)?;
    let raft_dir = data_dir.join("raft");
    let durable = Arc::new(blocking(move || Durable::open(&raft_dir)).await?);
    let mut log_store = LogStore::open(durable.clone())?;
    log_store.claim_node_id(node_id).await?;
    let archive_dir = data_dir.join("archive");
    let archive = blocking(move || ArchiveStore::open(&archive_dir)).await?;
    archive.put(&backup.archived)?;
    archive.make_durable().await?;
    let RestoredSnapshot { log_id, meta, data } = restored_snapshot(voters, backup)?;
    let (events, _) = tokio::sync::broadcast::channel(1);
    let archive_handle = archive.clone();
    let (mut state_machine, _) = StateMachineStore::open(durable.clone(), archive, events)?;
    let storage = |error: openraft::StorageError<u64>| {
        ReplicationError::Store(StoreError::corrupt("the seeded node", error.to_string()))
    };
    state_machine
        .install_snapshot(&meta, Box::new(Cursor::new(data)))
        .await
        .map_err(storage)?;
    // The archive got every record of the backup above: nothing is left to fetch.
    archive_handle.clear_catch_up()?;
    log_store.purge(log_id).await.map_err(storage)?;
    log_store
        .save_committed(Some(log_id))
        .await
        .map_err(storage)?;
    drop(state_machine);
    drop(log_store);
    archive_handle.make_durable().await?;
    drop(archive_handle);
    blocking(move || durable.make_durable()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::AppliedState;

    fn sample() -> Vec<u8> {
        let dir = tempfile::tempdir().expect("temp dir");
        let archive = ArchiveStore::open(&dir.path().join("archive")).expect("archive");
        let mut kernel = State {
            clock_ms: 42,
            ..State::default()
        };
        kernel.bidders.insert(
            "ada".to_string(),
            gavel_kernel::state::Bidder {
                bidder_id: "ada".to_string(),
                name: "Ada".to_string(),
                secret_salt: "salt".to_string(),
                secret_hash: "hash".to_string(),
                registered_at_ms: 1,
            },
        );
        let state: SharedState = Arc::new(parking_lot::RwLock::new(AppliedState {
            kernel,
            last_applied_index: 7,
            last_applied: None,
            membership: StoredMembership::default(),
            digest_cache: None,
            checkpoints: Default::default(),
            exchange: Default::default(),
        }));
        take_backup(&state, &archive, 1, 1_000).expect("backup")
    }

    /// A backup file as written before bidders kept public keys: the v3 state under
    /// format byte 2, its header naming the v3 digest.
    fn sample_v3(kernel: &State) -> Vec<u8> {
        #[derive(Serialize)]
        struct PayloadV3Ref<'a> {
            kernel: &'a StateV3,
            archived: &'a [ArchivedAuction],
            exchange: &'a ExchangeLedger,
        }
        let old = StateV3::of(kernel);
        let payload = encode_as(
            AUCTIONS_FORMAT,
            "backup",
            &PayloadV3Ref {
                kernel: &old,
                archived: &[],
                exchange: &ExchangeLedger::default(),
            },
        )
        .expect("encode");
        let header = BackupHeader {
            taken_at_ms: 1_000,
            node_id: 1,
            last_applied_index: 7,
            auctions: kernel.auctions.len(),
            archived_auctions: 0,
            bidders: kernel.bidders.len(),
            state_digest: old.digest(),
            payload_bytes: payload.len() as u64,
            payload_sha256: hex::encode(Sha256::digest(&payload)),
        };
        let header = serde_json::to_string(&header).expect("header");
        let mut bytes = format!("{BACKUP_MAGIC}\n{header}\n").into_bytes();
        bytes.extend_from_slice(&payload);
        bytes
    }

    #[test]
    fn a_backup_written_before_bidder_keys_reads_back_with_none() {
        let current = read_backup(&sample()).expect("reads").kernel;
        let backup = read_backup(&sample_v3(&current)).expect("a v3 backup reads");
        assert_eq!(backup.kernel, current);
        assert!(backup.kernel.bidder_keys.is_empty());
        assert_eq!(backup.header.bidders, 1);
    }

    #[test]
    fn a_backup_reads_back_as_taken() {
        let backup = read_backup(&sample()).expect("reads");
        assert_eq!(backup.header.last_applied_index, 7);
        assert_eq!(backup.header.bidders, 1);
        assert_eq!(backup.kernel.clock_ms, 42);
        assert!(backup.archived.is_empty());
    }

    #[test]
    fn damaged_truncated_extended_or_foreign_files_are_refused() {
        let good = sample();
        let refused = |bytes: &[u8], why: &str| {
            let error = read_backup(bytes).expect_err("refused");
            assert!(error.0.contains(why), "{why}: {error}");
        };
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        refused(&flipped, "altered or damaged");
        refused(&good[..good.len() - 1], "truncated");
        let mut extended = good.clone();
        extended.push(0);
        refused(&extended, "truncated or appended");
        refused(b"PK\x03\x04 a zip file", "does not start");
        refused(b"", "does not start");
        let text = String::from_utf8_lossy(&good).into_owned();
        let header_start = BACKUP_MAGIC.len() + 1;
        let header_end = header_start + text[header_start..].find('\n').unwrap();
        let header: serde_json::Value =
            serde_json::from_str(&text[header_start..header_end]).unwrap();
        // A header that lies about the state (with a matching payload hash) is caught by
        // the digest.
        let mut lying = header.clone();
        lying["state_digest"] = serde_json::json!("0".repeat(64));
        let mut bytes = format!("{BACKUP_MAGIC}\n{lying}\n").into_bytes();
        bytes.extend_from_slice(&good[header_end + 1..]);
        refused(&bytes, "digest");
        let mut unknown = header;
        unknown["extra"] = serde_json::json!(1);
        let mut bytes = format!("{BACKUP_MAGIC}\n{unknown}\n").into_bytes();
        bytes.extend_from_slice(&good[header_end + 1..]);
        refused(&bytes, "header is not valid");
    }
}

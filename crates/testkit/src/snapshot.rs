//! Tampering with a stopped node's stored snapshot, as one who knows the format would: the
//! tests of `gavel ctl audit verify` alter a record offline and expect the audit to name it.

use std::path::Path;

use bincode::Options;
use sha2::{Digest, Sha256};

/// The snapshot's data as the node writes it (`replication::snapshots`): a format byte,
/// then bincode with fixed-width little-endian integers.
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotPayload {
    kernel: gavel_kernel::State,
    last_applied: Option<openraft::LogId<u64>>,
    last_membership: openraft::StoredMembership<u64, gavel::replication::NodeInfo>,
    archived: Vec<gavel::replication::archive::ArchivedAuction>,
    exchange: gavel_kernel::ledger::ExchangeLedger,
    /// The term of the last takeover applied (`State::leader_term`).
    leader_term: u64,
}

/// The format byte of snapshots in the current shape of the state.
const SNAPSHOT_FORMAT: u8 = 3;

/// Changes the kernel state in the stored snapshot under `data_dir`, in the node's own
/// encoding, and rewrites the file's checksum. Panics when the file is not a snapshot of
/// the current format.
pub fn alter_snapshot(data_dir: &Path, change: impl FnOnce(&mut gavel_kernel::State)) {
    let options = || {
        bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_little_endian()
            .reject_trailing_bytes()
    };
    // The snapshot file (`replication::snapshot_file`): a magic, the SHA-256 of the rest,
    // the metadata record's length (u64, little-endian), the metadata record, then the
    // data.
    const MAGIC: &[u8; 8] = b"GVSNAP\x02\n";
    let path = data_dir.join("raft").join("gavel-snapshot");
    let file = std::fs::read(&path).expect("a stored snapshot file");
    assert_eq!(&file[..8], MAGIC, "a checksummed snapshot file");
    let body = &file[8 + 32..];
    let mut length = [0u8; 8];
    length.copy_from_slice(&body[..8]);
    let data_start = 8 + u64::from_le_bytes(length) as usize;
    let stored = &body[data_start..];
    assert_eq!(stored[0], SNAPSHOT_FORMAT, "snapshot format byte");
    let mut payload: SnapshotPayload = options()
        .deserialize(&stored[1..])
        .expect("decode snapshot");
    change(&mut payload.kernel);
    let mut rest = body[..data_start].to_vec();
    rest.push(SNAPSHOT_FORMAT);
    options()
        .serialize_into(&mut rest, &payload)
        .expect("encode snapshot");
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&Sha256::digest(&rest));
    bytes.extend_from_slice(&rest);
    std::fs::write(&path, bytes).expect("write the altered snapshot");
}

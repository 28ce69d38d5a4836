//! The head of a segment file (`.wal`): a magic, a format number and the segment's sync
//! mark, before the records. The sync mark says "every record of this log with an index
//! below N was durable when this was written". It is kept twice, in two slots in
//! different sectors, each with a sequence number and a CRC-32; a write goes to the slot
//! the older value is in, so a write torn by a crash leaves the other slot whole. The
//! head takes the first `RECORDS_START` bytes, so records start on a page of their own.
//!
//! A mark is written after the fact (it names what an earlier sync made durable), in the
//! same file as the records, so the `fdatasync` that makes new records durable makes the
//! mark durable too and no sync is added for it. Whether or not it reaches the disk, what
//! it says is true; a mark only ever claims less than the truth, never more.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::super::error::StoreError;

/// Where a marked segment's records start.
pub(super) const RECORDS_START: u64 = 4096;

const MAGIC: [u8; 8] = *b"GAVELWAL";
const FORMAT: u32 = 1;
/// The offsets of the two slots of the sync mark.
const SLOTS: [u64; 2] = [512, 1024];
const SLOT_BYTES: usize = 20;

/// The sync mark of a segment as read or last written: its sequence number (0 before
/// any) and the index below which every record was durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct SyncMark {
    pub(super) sequence: u64,
    pub(super) synced_next: u64,
}

fn slot_checksum(sequence: u64, synced_next: u64) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&sequence.to_le_bytes());
    hasher.update(&synced_next.to_le_bytes());
    hasher.finalize()
}

/// Writes a new segment's head: the magic, the format and its first mark.
pub(super) fn write_head(
    file: &File,
    path: &Path,
    synced_next: u64,
) -> Result<SyncMark, StoreError> {
    let mut head = [0u8; 16];
    head[0..8].copy_from_slice(&MAGIC);
    head[8..12].copy_from_slice(&FORMAT.to_le_bytes());
    file.write_all_at(&head, 0).map_err(StoreError::io(path))?;
    write_mark(file, path, SyncMark::default(), synced_next)
}

/// Writes `synced_next` as the mark after `previous`, to the slot `previous` is not in.
/// Not synced here: the caller's next sync of the file carries it.
pub(super) fn write_mark(
    file: &File,
    path: &Path,
    previous: SyncMark,
    synced_next: u64,
) -> Result<SyncMark, StoreError> {
    let next = SyncMark {
        sequence: previous.sequence + 1,
        synced_next,
    };
    let mut slot = [0u8; SLOT_BYTES];
    slot[0..8].copy_from_slice(&next.sequence.to_le_bytes());
    slot[8..16].copy_from_slice(&synced_next.to_le_bytes());
    slot[16..20].copy_from_slice(&slot_checksum(next.sequence, synced_next).to_le_bytes());
    let offset = SLOTS[(next.sequence % 2) as usize];
    file.write_all_at(&slot, offset)
        .map_err(StoreError::io(path))?;
    Ok(next)
}

/// Reads a segment's head and returns its newest whole mark. A head that is not Gavel's,
/// or whose two slots both fail their check, is damage: the head is written and synced
/// when the segment is created, before any record.
pub(super) fn read_head(file: &File, path: &Path, len: u64) -> Result<SyncMark, StoreError> {
    let damaged = |offset: u64, detail: &str| StoreError::DamagedLog {
        path: path.to_path_buf(),
        offset,
        detail: detail.to_string(),
    };
    if len < RECORDS_START {
        return Err(damaged(len, "the file is shorter than a segment's head"));
    }
    let mut head = [0u8; 16];
    file.read_exact_at(&mut head, 0)
        .map_err(StoreError::io(path))?;
    if head[0..8] != MAGIC {
        return Err(damaged(
            0,
            "the segment's head does not start with its magic",
        ));
    }
    let format = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if format != FORMAT {
        return Err(damaged(8, &format!("unknown segment format {format}")));
    }
    let mut newest: Option<SyncMark> = None;
    for offset in SLOTS {
        let mut slot = [0u8; SLOT_BYTES];
        file.read_exact_at(&mut slot, offset)
            .map_err(StoreError::io(path))?;
        let [sequence, synced_next] = [0, 8].map(|at| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&slot[at..at + 8]);
            u64::from_le_bytes(bytes)
        });
        let sum = u32::from_le_bytes([slot[16], slot[17], slot[18], slot[19]]);
        if sequence == 0 || sum != slot_checksum(sequence, synced_next) {
            continue;
        }
        let mark = SyncMark {
            sequence,
            synced_next,
        };
        if newest.is_none_or(|best| best.sequence < sequence) {
            newest = Some(mark);
        }
    }
    newest.ok_or_else(|| {
        damaged(
            SLOTS[0],
            "neither copy of the segment's sync mark checks out",
        )
    })
}

//! The current snapshot as a file of its own, `<raft dir>/gavel-snapshot`, beside sled's
//! files (sled only looks at its own names there). A snapshot is as large as the kernel
//! state (tens of MB under a heavy bidding load); written into sled it became a blob that
//! had to be written and synced under the lock every log append takes
//! (`Durable::write_durably`), which held Raft's appends and heartbeats back for as long.
//! As a file it is written beside the log: to `gavel-snapshot.tmp`, fdatasync'ed, renamed
//! over the previous one and the directory fsync'ed, so a crash leaves the old snapshot or
//! the new one, never a mix. The file is its owner's alone (mode 0600, opened with
//! `O_NOFOLLOW`).
//!
//! Layout: `MAGIC` (8 bytes), the SHA-256 of everything after it (32 bytes), the metadata
//! record's length (u64, little-endian), the metadata record, then the data. Reading
//! checks the checksum before anything else, so a damaged snapshot is refused by name
//! rather than decoded; then the length against the file; the records are checked by
//! whoever decodes them. A file written by an older release, without the magic and the
//! checksum (it starts with the length), is still read, its length checked: a damaged
//! magic then reads as a length far beyond the file, and is refused too.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::StoreError;

/// The file's name in the raft directory.
pub const SNAPSHOT_FILE: &str = "gavel-snapshot";
const TEMPORARY_SUFFIX: &str = ".tmp";
const LENGTH_BYTES: usize = 8;
/// The first bytes of a snapshot file with a checksum.
const MAGIC: &[u8; 8] = b"GVSNAP\x02\n";
const CHECKSUM_BYTES: usize = 32;

/// Where the snapshot of the sled database in `raft_dir` lives.
pub fn snapshot_path(raft_dir: &Path) -> PathBuf {
    raft_dir.join(SNAPSHOT_FILE)
}

/// How much of a snapshot is written before its write-back is started, and the most
/// that is waiting to reach the disk at once (two such pieces).
const PIECE_BYTES: usize = 4 << 20;

/// Writes the snapshot durably in place of the previous one.
///
/// A snapshot is large (tens to hundreds of MB) and the log's appends beside it must be
/// synced within a heartbeat or two: written in one go and synced at the end, the whole
/// snapshot went to the disk at once, and every log sync meanwhile waited behind it
/// (60 ms and more). It is written in pieces instead, each one's write-back started
/// when it is written and waited for before the piece after next (`sync_file_range`), so
/// a log sync waits behind a few MB at most; the closing fdatasync then has little left.
pub fn write(path: &Path, meta_record: &[u8], data: &[u8]) -> Result<(), StoreError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(TEMPORARY_SUFFIX);
    let temporary = PathBuf::from(temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::private_files::FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)
        .map_err(StoreError::io(&temporary))?;
    let length = (meta_record.len() as u64).to_le_bytes();
    let mut checksum = Sha256::new();
    checksum.update(length);
    checksum.update(meta_record);
    checksum.update(data);
    let mut head = Vec::with_capacity(MAGIC.len() + CHECKSUM_BYTES + LENGTH_BYTES);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&checksum.finalize());
    head.extend_from_slice(&length);
    head.extend_from_slice(meta_record);
    let mut written: u64 = 0;
    let mut in_flight: Option<(u64, u64)> = None;
    for piece in std::iter::once(&head[..]).chain(data.chunks(PIECE_BYTES)) {
        file.write_all(piece).map_err(StoreError::io(&temporary))?;
        let range = (written, piece.len() as u64);
        written += range.1;
        write_back(&file, range, false);
        if let Some(previous) = in_flight.replace(range) {
            write_back(&file, previous, true);
        }
    }
    file.sync_data().map_err(StoreError::io(&temporary))?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(StoreError::io(path))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|dir_file| dir_file.sync_all())
            .map_err(StoreError::io(dir))?;
    }
    Ok(())
}

/// Starts the write-back of `(offset, length)` of `file`, or (`wait`) waits until it is
/// done. Only pacing: durability comes from the fdatasync after the last piece, so a
/// refusal (a file system without it) changes nothing but the pace.
fn write_back(file: &File, (offset, length): (u64, u64), wait: bool) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let flags = if wait {
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER
        } else {
            libc::SYNC_FILE_RANGE_WRITE
        };
        // SAFETY: the descriptor is the open file's; the call only schedules or waits for
        // its own pages' write-back.
        let _ =
            unsafe { libc::sync_file_range(file.as_raw_fd(), offset as i64, length as i64, flags) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, length, wait);
}

/// A snapshot file's two parts, as stored.
pub struct SnapshotFile {
    pub meta_record: Vec<u8>,
    pub data: Vec<u8>,
}

/// The metadata record and the data of the snapshot at `path`, if there is one.
pub fn read(path: &Path) -> Result<Option<SnapshotFile>, StoreError> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    let mut file = match opened {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StoreError::io(path)(error)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(StoreError::io(path))?;
    let what = || format!("snapshot file {}", path.display());
    if bytes.starts_with(MAGIC) {
        let body_start = MAGIC.len() + CHECKSUM_BYTES;
        let Some(stored) = bytes.get(MAGIC.len()..body_start) else {
            return Err(StoreError::corrupt(what(), "shorter than its header"));
        };
        let computed = Sha256::digest(&bytes[body_start..]);
        if computed.as_slice() != stored {
            return Err(StoreError::corrupt(
                what(),
                format!(
                    "its SHA-256 is {}, its header says {} (damaged on disk)",
                    hex::encode(computed),
                    hex::encode(stored)
                ),
            ));
        }
        bytes.drain(..body_start);
    }
    let Some(length) = bytes.get(..LENGTH_BYTES) else {
        return Err(StoreError::corrupt(what(), "shorter than its header"));
    };
    let mut length_bytes = [0u8; LENGTH_BYTES];
    length_bytes.copy_from_slice(length);
    let meta_end = usize::try_from(u64::from_le_bytes(length_bytes))
        .ok()
        .and_then(|length| length.checked_add(LENGTH_BYTES))
        .filter(|end| *end <= bytes.len())
        .ok_or_else(|| StoreError::corrupt(what(), "its metadata length exceeds the file"))?;
    let meta_record = bytes[LENGTH_BYTES..meta_end].to_vec();
    bytes.drain(..meta_end);
    Ok(Some(SnapshotFile {
        meta_record,
        data: bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_file_reads_back_and_replaces_the_previous_one() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = snapshot_path(dir.path());
        assert!(read(&path).expect("no file yet").is_none());
        write(&path, b"meta one", b"data one").expect("write");
        write(&path, b"meta two", b"the second data").expect("write again");
        let stored = read(&path).expect("read").expect("a snapshot");
        assert_eq!(stored.meta_record, b"meta two");
        assert_eq!(stored.data, b"the second data");
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(TEMPORARY_SUFFIX);
        assert!(!PathBuf::from(temporary).exists());
    }

    #[test]
    fn a_snapshot_file_is_private_and_a_damaged_one_is_refused_by_its_checksum() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = snapshot_path(dir.path());
        write(&path, b"meta", &[7u8; 10_000]).expect("write");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01; // one bit of the data: the lengths still agree
        std::fs::write(&path, &bytes).expect("damage");
        match read(&path) {
            Err(StoreError::Corrupt { detail, .. }) => {
                assert!(detail.contains("SHA-256"), "{detail}")
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a damaged snapshot was read"),
        }
    }

    #[test]
    fn a_snapshot_file_of_an_older_release_without_a_checksum_still_reads() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = snapshot_path(dir.path());
        let mut old = 4u64.to_le_bytes().to_vec();
        old.extend_from_slice(b"metathe data");
        std::fs::write(&path, old).expect("write");
        let stored = read(&path).expect("read").expect("a snapshot");
        assert_eq!(stored.meta_record, b"meta");
        assert_eq!(stored.data, b"the data");
    }

    #[test]
    fn a_truncated_snapshot_file_is_corrupt_not_a_panic() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = snapshot_path(dir.path());
        std::fs::write(&path, [1u8, 2, 3]).expect("write");
        assert!(matches!(read(&path), Err(StoreError::Corrupt { .. })));
        let mut claims_too_much = 1000u64.to_le_bytes().to_vec();
        claims_too_much.extend_from_slice(b"short");
        std::fs::write(&path, claims_too_much).expect("write");
        assert!(matches!(read(&path), Err(StoreError::Corrupt { .. })));
    }
}

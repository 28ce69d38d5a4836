//! The Raft log's own files: an append-only log of records in segment files under
//! `raft/wal/`, each named by the index of its first record (`00000000000000000042.wal`)
//! and preallocated to `SEGMENT_BYTES`, so that an append overwrites allocated space and
//! its `fdatasync` has no file size to commit. A segment starts with a head (`mark`): a
//! magic, a format number and its sync mark; the records follow. A record is a 16-byte
//! header — payload length (u32), CRC-32 of the index and payload (u32), index (u64), all
//! little-endian — then the payload; a zero length marks the end of a segment's records
//! (the preallocated space reads as zeros). Segments written before sync marks existed
//! (`.log`, records from byte 0) are still read; appends never go to them.
//!
//! Writes and syncs are separate steps: `append` writes the records to the page cache and
//! says which files hold them; the caller makes them durable (`sync_files`, on the log's
//! sync thread or, when the log was idle, on the caller's) before it reports them
//! persisted, and then advances the log's `SyncPoint`: the index below which every record
//! is durable.
//!
//! # What a bad record means
//!
//! A crash can leave any part of what was written since the last sync on disk or not:
//! the kernel writes dirty pages back in no promised order, so a later record may be
//! whole where an earlier one is zeros or half written. Such a tail was never reported
//! persisted and may be cut. A record that was synced is another matter: this node told
//! its leader it holds it, and a voter that forgets an entry it acknowledged can let a
//! leader be elected without a committed entry. So a bad record is cut only if it lies
//! past the durable point, and the durable point must be known after a crash. Whether a
//! valid record follows the bad one cannot tell (the write-back order above makes a
//! valid later record possible in a torn tail, and a bad length hides where the next
//! record starts); a separate marker file would cost a second `fdatasync` per sync. So
//! each segment's head carries a sync mark, rewritten with the latest `SyncPoint`
//! whenever records are written to that segment: the `fdatasync` that makes the new
//! records durable carries the mark too, at no extra sync. The mark lags by at most the
//! records written since the previous sync; it is brought up to date when the log is
//! dropped and when it is opened, after opening syncs every segment it keeps. Before a
//! new segment is created the previous one is synced, so a new segment's first mark
//! covers everything before it.
//!
//! Opening a directory checks every record: indexes run on without a gap from one
//! segment to the next (entries at or below the purge mark excepted). A record that fails
//! its check at an index the marks say was durable, or in a segment that a later
//! segment follows, is damage: opening fails with `StoreError::DamagedLog`, naming the
//! file and the byte offset, and the node does not start (`gavel node reset` clears such
//! a node so it rejoins as a standby). So does a log that ends before the marks say it
//! may. A bad record past the durable point ends the log there, as a write torn by a
//! crash: the space after the last good record is zeroed (and synced), so bytes of a torn
//! or truncated record are never read as a record after a later crash. Truncation lowers
//! the mark first, then zeroes the same way.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::error::StoreError;
use mark::{SyncMark, RECORDS_START};

mod mark;
mod open;
mod read;

/// The space each segment file is given when it is created. A record larger than what is
/// left starts a new segment; one larger than a whole segment gets a segment of its own
/// that grows past this size.
pub(crate) const SEGMENT_BYTES: u64 = 8 << 20;

const HEADER_BYTES: u64 = 16;
/// The largest payload accepted when reading (the codec's limit for any record).
const MAX_PAYLOAD_BYTES: u64 = 1 << 30;
/// Segments with a head and a sync mark.
const SEGMENT_SUFFIX: &str = ".wal";
/// Segments written before sync marks: records from byte 0, read but never appended to.
const UNMARKED_SUFFIX: &str = ".log";

/// One segment file and where its records are.
struct Segment {
    first: u64,
    path: PathBuf,
    file: Arc<File>,
    /// Offset and payload length of each record; record `k` has index `first + k`.
    records: Vec<(u64, u32)>,
    /// Where the next record goes.
    end: u64,
    /// The sync mark last written to the segment's head; `None` for a segment written
    /// before sync marks (`.log`).
    mark: Option<SyncMark>,
}

impl Segment {
    fn next_index(&self) -> u64 {
        self.first + self.records.len() as u64
    }

    /// Writes `synced_next` to the head's sync mark if it says more than the mark does.
    /// Not synced here: the next sync of the file carries it.
    fn advance_mark(&mut self, synced_next: u64) -> Result<bool, StoreError> {
        let synced_next = synced_next.min(self.next_index());
        match self.mark {
            Some(mark) if mark.synced_next < synced_next => {
                self.mark = Some(mark::write_mark(&self.file, &self.path, mark, synced_next)?);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// The index below which every record of the log is known to be durable, shared by the
/// log and whoever syncs its files (the log's sync thread). 0 before any.
#[derive(Clone, Default)]
pub(crate) struct SyncPoint(Arc<AtomicU64>);

impl SyncPoint {
    /// Every record below `next` is durable now.
    pub(crate) fn advance(&self, next: u64) {
        self.0.fetch_max(next, Ordering::SeqCst);
    }

    fn lower_to(&self, next: u64) {
        self.0.fetch_min(next, Ordering::SeqCst);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The log's segment files and an index of their records, in memory.
pub(crate) struct SegmentLog {
    dir: PathBuf,
    segments: Vec<Segment>,
    synced: SyncPoint,
}

/// The file name of the segment starting at `first`: marked (`.wal`) or not (`.log`).
fn segment_name(first: u64, marked: bool) -> String {
    let suffix = if marked {
        SEGMENT_SUFFIX
    } else {
        UNMARKED_SUFFIX
    };
    format!("{first:020}{suffix}")
}

/// The first index of a segment file's name and whether it is marked.
fn parse_segment_name(name: &str) -> Option<(u64, bool)> {
    let (digits, marked) = match name.strip_suffix(SEGMENT_SUFFIX) {
        Some(digits) => (digits, true),
        None => (name.strip_suffix(UNMARKED_SUFFIX)?, false),
    };
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, marked))
}

fn checksum(index: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

fn header(index: u64, payload: &[u8]) -> [u8; HEADER_BYTES as usize] {
    let mut header = [0u8; HEADER_BYTES as usize];
    header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4..8].copy_from_slice(&checksum(index, payload).to_le_bytes());
    header[8..16].copy_from_slice(&index.to_le_bytes());
    header
}

/// `fsync` of a directory: makes the names created or removed in it durable.
pub(crate) fn sync_dir(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(StoreError::io(path))
}

/// Writes zeros over `from..to` of `file`.
fn zero(file: &File, path: &Path, from: u64, to: u64) -> Result<(), StoreError> {
    let zeros = vec![0u8; 64 << 10];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at)
            .map_err(StoreError::io(path))?;
        at += n as u64;
    }
    Ok(())
}

impl SegmentLog {
    /// The log's durable point, for whoever syncs the files `append` returns.
    pub(crate) fn sync_point(&self) -> SyncPoint {
        self.synced.clone()
    }

    /// The index the next record must have, if the log holds a segment.
    pub(crate) fn next_index(&self) -> Option<u64> {
        self.segments.last().map(Segment::next_index)
    }

    /// The index of the last record, if any.
    pub(crate) fn last_index(&self) -> Option<u64> {
        self.next_index()
            .filter(|&next| next > self.segments[0].first)
            .map(|next| next - 1)
    }

    /// Writes records (index and payload, indexes consecutive) after the last one, to the
    /// page cache. Returns the files written, which the caller syncs before it reports
    /// them durable. A first index past the log's end starts a new log there (after a
    /// snapshot was installed and the log purged to it); one inside it is refused.
    pub(crate) fn append(
        &mut self,
        records: &[(u64, Vec<u8>)],
    ) -> Result<Vec<Arc<File>>, StoreError> {
        let mut written: Vec<Arc<File>> = Vec::new();
        let mut buffer = Vec::new();
        let mut pending: Vec<(u64, u32)> = Vec::new();
        for (index, payload) in records {
            if payload.is_empty() || payload.len() as u64 > MAX_PAYLOAD_BYTES {
                return Err(StoreError::corrupt(
                    format!("log entry {index}"),
                    format!("a record of {} bytes cannot be written", payload.len()),
                ));
            }
            let expected = self.next_index().map(|next| next + pending.len() as u64);
            match expected {
                Some(next) if *index == next => {}
                Some(next) if *index > next => {
                    tracing::info!(
                        next,
                        index,
                        "the raft log restarts past its end (a snapshot was installed)"
                    );
                    self.flush_buffer(&mut buffer, &mut pending, &mut written)?;
                    self.remove_segments_through(self.segments.len())?;
                }
                Some(next) => {
                    return Err(StoreError::corrupt(
                        "a raft log append",
                        format!("entry {index} comes before the log's next index {next}"),
                    ))
                }
                None => {}
            }
            let size = HEADER_BYTES + payload.len() as u64;
            let needs_segment = match self.segments.last() {
                None => true,
                // Written before sync marks: closed, the log goes on in a marked segment.
                Some(last) if last.mark.is_none() => true,
                Some(last) => {
                    let at = last.end + buffer.len() as u64;
                    at + size > SEGMENT_BYTES && at > RECORDS_START
                }
            };
            if needs_segment {
                self.flush_buffer(&mut buffer, &mut pending, &mut written)?;
                self.close_last_segment()?;
                self.create_segment(*index)?;
            }
            let last = self.segments.last().expect("a segment exists");
            pending.push((last.end + buffer.len() as u64, payload.len() as u32));
            buffer.extend_from_slice(&header(*index, payload));
            buffer.extend_from_slice(payload);
        }
        self.flush_buffer(&mut buffer, &mut pending, &mut written)?;
        Ok(written)
    }

    /// Writes the buffered records to the last segment.
    fn flush_buffer(
        &mut self,
        buffer: &mut Vec<u8>,
        pending: &mut Vec<(u64, u32)>,
        written: &mut Vec<Arc<File>>,
    ) -> Result<(), StoreError> {
        if buffer.is_empty() {
            return Ok(());
        }
        let synced_next = self.synced.get();
        let last = self
            .segments
            .last_mut()
            .expect("records are buffered for a segment");
        last.advance_mark(synced_next)?;
        last.file
            .write_all_at(buffer, last.end)
            .map_err(StoreError::io(&last.path))?;
        last.end += buffer.len() as u64;
        last.records.append(pending);
        if !written.iter().any(|file| Arc::ptr_eq(file, &last.file)) {
            written.push(last.file.clone());
        }
        buffer.clear();
        Ok(())
    }

    /// Makes the last segment durable before another is created, so that the new one's
    /// first sync mark can cover every record before it. An empty segment written before
    /// sync marks is removed instead (the new one takes its first index).
    fn close_last_segment(&mut self) -> Result<(), StoreError> {
        let Some(last) = self.segments.last() else {
            return Ok(());
        };
        if last.mark.is_none() && last.records.is_empty() {
            std::fs::remove_file(&last.path).map_err(StoreError::io(&last.path))?;
            self.segments.pop();
            return Ok(());
        }
        last.file.sync_data().map_err(StoreError::io(&last.path))?;
        let next = last.next_index();
        self.synced.advance(next);
        Ok(())
    }

    /// Creates the segment whose first record is `first`: allocated, its head written,
    /// synced, named durably. Every record before `first` is durable (`close_last_segment`),
    /// which its first sync mark says.
    fn create_segment(&mut self, first: u64) -> Result<(), StoreError> {
        let path = self.dir.join(segment_name(first, true));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(StoreError::io(&path))?;
        allocate(&file, &path)?;
        let mark = mark::write_head(&file, &path, first)?;
        file.sync_all().map_err(StoreError::io(&path))?;
        sync_dir(&self.dir)?;
        self.segments.push(Segment {
            first,
            path,
            file: Arc::new(file),
            records: Vec::new(),
            end: RECORDS_START,
            mark: Some(mark),
        });
        Ok(())
    }

    /// The bytes the records after `index` take in the segment files (all of them when
    /// `index` is `None`).
    pub(crate) fn bytes_after(&self, index: Option<u64>) -> u64 {
        let from = index.map_or(0, |index| index.saturating_add(1));
        let mut bytes = 0;
        for segment in &self.segments {
            if segment.next_index() <= from {
                continue;
            }
            let skip = from.saturating_sub(segment.first) as usize;
            let start = segment
                .records
                .get(skip)
                .map_or(segment.end, |&(offset, _)| offset);
            bytes += segment.end - start;
        }
        bytes
    }

    /// Removes the records at `from` and after, durably: the sync mark of the segment
    /// holding `from` is lowered to it first (synced), then later segments are deleted and
    /// the rest of that segment is zeroed and synced. A crash at any point leaves no mark
    /// claiming a record that is gone. The caller has let every pending sync finish.
    pub(crate) fn truncate_from(&mut self, from: u64) -> Result<(), StoreError> {
        self.synced.lower_to(from);
        for segment in &mut self.segments {
            if let Some(mark) = segment.mark.filter(|mark| mark.synced_next > from) {
                segment.mark = Some(mark::write_mark(&segment.file, &segment.path, mark, from)?);
                segment
                    .file
                    .sync_data()
                    .map_err(StoreError::io(&segment.path))?;
            }
        }
        let mut removed = false;
        while let Some(last) = self.segments.last() {
            if last.first < from || (last.first == from && self.segments.len() == 1) {
                break;
            }
            let last = self.segments.pop().expect("a last segment");
            std::fs::remove_file(&last.path).map_err(StoreError::io(&last.path))?;
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        if let Some(last) = self.segments.last_mut() {
            if from < last.next_index() {
                let keep = (from.max(last.first) - last.first) as usize;
                let cut = last
                    .records
                    .get(keep)
                    .map(|&(offset, _)| offset)
                    .unwrap_or(last.end);
                zero(&last.file, &last.path, cut, last.end)?;
                last.file.sync_data().map_err(StoreError::io(&last.path))?;
                last.records.truncate(keep);
                last.end = cut;
            }
        }
        Ok(())
    }

    /// Deletes the segments whose records all lie at or below `purged` (never one that
    /// holds a later record). The caller has made the purge mark durable first.
    pub(crate) fn purge_through(&mut self, purged: u64) -> Result<(), StoreError> {
        let whole = self
            .segments
            .iter()
            .take_while(|segment| segment.next_index() <= purged + 1)
            .count();
        // The last segment is where appends go; it stays unless everything is purged.
        let count = if whole == self.segments.len() {
            whole
        } else {
            whole.min(self.segments.len().saturating_sub(1))
        };
        self.remove_segments_through(count)
    }

    /// Deletes the first `count` segments.
    fn remove_segments_through(&mut self, count: usize) -> Result<(), StoreError> {
        if count == 0 {
            return Ok(());
        }
        for segment in self.segments.drain(..count) {
            match std::fs::remove_file(&segment.path) {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => return Err(StoreError::io(&segment.path)(error)),
            }
        }
        sync_dir(&self.dir)
    }
}

/// Gives a new segment its space, so appends overwrite allocated blocks.
fn allocate(file: &File, path: &Path) -> Result<(), StoreError> {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a file descriptor this function borrows.
    let status =
        unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, SEGMENT_BYTES as libc::off_t) };
    match status {
        0 => Ok(()),
        // A filesystem without fallocate: appends then extend the file instead.
        libc::EOPNOTSUPP | libc::EINVAL => Ok(()),
        code => Err(StoreError::io(path)(std::io::Error::from_raw_os_error(
            code,
        ))),
    }
}

impl Drop for SegmentLog {
    /// Brings the last segment's sync mark up to the durable point, so that after a clean
    /// stop the records synced last are known durable too.
    fn drop(&mut self) {
        let synced_next = self.synced.get();
        let Some(last) = self.segments.last_mut() else {
            return;
        };
        let result = last
            .advance_mark(synced_next)
            .and_then(|written| match written {
                true => last.file.sync_data().map_err(StoreError::io(&last.path)),
                false => Ok(()),
            });
        if let Err(error) = result {
            tracing::warn!(%error, "cannot bring the raft log's sync mark up to date");
        }
    }
}

/// Makes the writes to `files` durable: one `fdatasync` each.
pub(crate) fn sync_files(files: &[Arc<File>]) -> std::io::Result<()> {
    for file in files {
        file.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

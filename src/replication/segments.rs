//! The Raft log's own files: an append-only log of records in segment files under
//! `raft/wal/`, each named by the index of its first record (`00000000000000000042.log`)
//! and preallocated to `SEGMENT_BYTES`, so that an append overwrites allocated space and
//! its `fdatasync` has no file size to commit. A record is a 16-byte header — payload
//! length (u32), CRC-32 of the index and payload (u32), index (u64), all little-endian —
//! then the payload; a zero length marks the end of a segment's records (the
//! preallocated space reads as zeros).
//!
//! Writes and syncs are separate steps: `append` writes the records to the page cache and
//! says which files hold them; the caller makes them durable (`sync_files`, on the log's
//! sync thread or, when the log was idle, on the caller's) before it reports them
//! persisted. Opening a directory checks every
//! record: indexes run on without a gap from one segment to the next (entries at or below
//! the purge mark excepted), and a record that fails its check ends the log there. That
//! is a write torn by a crash: its records were never synced, so never reported
//! persisted, and neither was anything written after them. The space after the last good
//! record is zeroed (and synced), so bytes of a torn or truncated record are never read
//! as a record after a later crash. Truncation zeroes the same way.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::StoreError;

/// The space each segment file is given when it is created. A record larger than what is
/// left starts a new segment; one larger than a whole segment gets a segment of its own
/// that grows past this size.
pub(crate) const SEGMENT_BYTES: u64 = 8 << 20;

const HEADER_BYTES: u64 = 16;
/// The largest payload accepted when reading (the codec's limit for any record).
const MAX_PAYLOAD_BYTES: u64 = 1 << 30;
const SEGMENT_SUFFIX: &str = ".log";

/// One segment file and where its records are.
struct Segment {
    first: u64,
    path: PathBuf,
    file: Arc<File>,
    /// Offset and payload length of each record; record `k` has index `first + k`.
    records: Vec<(u64, u32)>,
    /// Where the next record goes.
    end: u64,
}

impl Segment {
    fn next_index(&self) -> u64 {
        self.first + self.records.len() as u64
    }
}

/// The log's segment files and an index of their records, in memory.
pub(crate) struct SegmentLog {
    dir: PathBuf,
    segments: Vec<Segment>,
}

/// A contiguous piece of one segment to read: the file, the byte range, and the records
/// (index, offset, length) in it.
pub(crate) struct ReadPlan {
    pieces: Vec<ReadPiece>,
}

/// The file, the byte range `[begin, finish)` and the records (index, offset, length).
type ReadPiece = (Arc<File>, u64, u64, Vec<(u64, u64, u32)>);

fn segment_name(first: u64) -> String {
    format!("{first:020}{SEGMENT_SUFFIX}")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
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

/// A segment's records (index, payload length), the offset after the last good one, and
/// whether a bad record ended the scan.
type Scanned = (Vec<(u64, u32)>, u64, bool);

/// Reads the records of one segment file from its start, as far as they check out.
/// Returns them and whether the scan stopped at a bad record (rather than at the end
/// marker or the end of the file).
fn scan(file: &File, path: &Path, first: u64) -> Result<Scanned, StoreError> {
    let len = file.metadata().map_err(StoreError::io(path))?.len();
    let mut records = Vec::new();
    let mut at = 0u64;
    let mut header = [0u8; HEADER_BYTES as usize];
    let mut payload = Vec::new();
    loop {
        if at + HEADER_BYTES > len {
            return Ok((records, at, false));
        }
        file.read_exact_at(&mut header, at)
            .map_err(StoreError::io(path))?;
        let size = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as u64;
        let sum = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        let index = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        if size == 0 {
            let torn = sum != 0 || index != 0;
            return Ok((records, at, torn));
        }
        let expected = first + records.len() as u64;
        if size > MAX_PAYLOAD_BYTES || at + HEADER_BYTES + size > len || index != expected {
            return Ok((records, at, true));
        }
        payload.resize(size as usize, 0);
        file.read_exact_at(&mut payload, at + HEADER_BYTES)
            .map_err(StoreError::io(path))?;
        if checksum(index, &payload) != sum {
            return Ok((records, at, true));
        }
        records.push((at, size as u32));
        at += HEADER_BYTES + size;
    }
}

impl SegmentLog {
    /// Opens (or creates) the log in `dir`. Segments whose records all lie at or below
    /// `purged` are removed; the rest must continue each other without a gap.
    pub(crate) fn open(dir: &Path, purged: Option<u64>) -> Result<Self, StoreError> {
        let created = !dir.is_dir();
        std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        if created {
            sync_dir(dir)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let mut firsts = Vec::new();
        for item in std::fs::read_dir(dir).map_err(StoreError::io(dir))? {
            let item = item.map_err(StoreError::io(dir))?;
            let name = item.file_name();
            match name.to_str().and_then(parse_segment_name) {
                Some(first) => firsts.push(first),
                None => {
                    tracing::warn!(file = ?name, dir = %dir.display(), "not a log segment; left alone")
                }
            }
        }
        firsts.sort_unstable();
        let mut log = SegmentLog {
            dir: dir.to_path_buf(),
            segments: Vec::new(),
        };
        let mut removed = false;
        let mut torn_at: Option<u64> = None;
        for (position, &first) in firsts.iter().enumerate() {
            let path = dir.join(segment_name(first));
            if torn_at.is_some() {
                // Written after a torn record: never synced before it, never reported.
                tracing::warn!(segment = %path.display(), "removing a log segment written after a torn record");
                std::fs::remove_file(&path).map_err(StoreError::io(&path))?;
                removed = true;
                continue;
            }
            let next_first = firsts.get(position + 1).copied();
            if let (Some(purged), Some(next)) = (purged, next_first) {
                if next <= purged.saturating_add(1) {
                    std::fs::remove_file(&path).map_err(StoreError::io(&path))?;
                    removed = true;
                    continue;
                }
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(StoreError::io(&path))?;
            let (records, end, torn) = scan(&file, &path, first)?;
            if let Some(previous) = log.segments.last() {
                let continues = previous.next_index() == first;
                let below_purge = purged.is_some_and(|purged| previous.next_index() <= purged + 1);
                if !continues && !below_purge {
                    return Err(StoreError::corrupt(
                        "the raft log",
                        format!(
                            "segment {} starts at index {first}, the one before ends before index {}",
                            path.display(),
                            previous.next_index()
                        ),
                    ));
                }
                if !continues {
                    // A snapshot was installed past the log's end: what is before lies
                    // wholly below the purge mark.
                    log.remove_segments_through(log.segments.len())?;
                }
            }
            if torn {
                let len = file.metadata().map_err(StoreError::io(&path))?.len();
                tracing::warn!(segment = %path.display(), offset = end, records = records.len(), "the raft log ends in a torn record; its space is zeroed");
                zero(&file, &path, end, len)?;
                file.sync_data().map_err(StoreError::io(&path))?;
                torn_at = Some(end);
            }
            log.segments.push(Segment {
                first,
                path,
                file: Arc::new(file),
                records,
                end,
            });
        }
        if removed {
            sync_dir(dir)?;
        }
        // Segments that lie wholly at or below the purge mark are not part of the log.
        if let Some(purged) = purged {
            if log
                .segments
                .last()
                .is_some_and(|last| last.next_index() <= purged + 1)
            {
                log.remove_segments_through(log.segments.len())?;
            }
        }
        Ok(log)
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
                Some(last) => {
                    let at = last.end + buffer.len() as u64;
                    at + size > SEGMENT_BYTES && at > 0
                }
            };
            if needs_segment {
                self.flush_buffer(&mut buffer, &mut pending, &mut written)?;
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
        let last = self
            .segments
            .last_mut()
            .expect("records are buffered for a segment");
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

    /// Creates the segment whose first record is `first`: allocated, synced, named durably.
    fn create_segment(&mut self, first: u64) -> Result<(), StoreError> {
        let path = self.dir.join(segment_name(first));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(StoreError::io(&path))?;
        allocate(&file, &path)?;
        file.sync_all().map_err(StoreError::io(&path))?;
        sync_dir(&self.dir)?;
        self.segments.push(Segment {
            first,
            path,
            file: Arc::new(file),
            records: Vec::new(),
            end: 0,
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

    /// Where the records with indexes in `start..end` are, for reading outside the lock.
    /// Indexes the log does not hold are left out.
    pub(crate) fn plan_read(&self, start: u64, end: u64) -> ReadPlan {
        let mut pieces = Vec::new();
        for segment in &self.segments {
            let from = start.max(segment.first);
            let to = end.min(segment.next_index());
            if from >= to {
                continue;
            }
            let records: Vec<(u64, u64, u32)> = (from..to)
                .map(|index| {
                    let (offset, len) = segment.records[(index - segment.first) as usize];
                    (index, offset, len)
                })
                .collect();
            let begin = records[0].1;
            let (last_offset, last_len) = {
                let last = records[records.len() - 1];
                (last.1, last.2)
            };
            let finish = last_offset + HEADER_BYTES + last_len as u64;
            pieces.push((segment.file.clone(), begin, finish, records));
        }
        ReadPlan { pieces }
    }

    /// Removes the records at `from` and after, durably: later segments are deleted, the
    /// rest of the segment holding `from` is zeroed and synced.
    pub(crate) fn truncate_from(&mut self, from: u64) -> Result<(), StoreError> {
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

impl ReadPlan {
    /// Reads the planned records: (index, payload) in index order, each checked against
    /// its header.
    pub(crate) fn read(self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for (file, begin, finish, records) in self.pieces {
            let mut bytes = vec![0u8; (finish - begin) as usize];
            file.read_exact_at(&mut bytes, begin)
                .map_err(|error| StoreError::corrupt("the raft log", error.to_string()))?;
            for (index, offset, len) in records {
                let at = (offset - begin) as usize;
                let head = &bytes[at..at + HEADER_BYTES as usize];
                let payload =
                    &bytes[at + HEADER_BYTES as usize..at + HEADER_BYTES as usize + len as usize];
                let sum = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
                let stored = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
                if stored != index || checksum(index, payload) != sum {
                    return Err(StoreError::corrupt(
                        format!("log entry {index}"),
                        "its record fails its checksum",
                    ));
                }
                out.push((index, payload.to_vec()));
            }
        }
        Ok(out)
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

/// Makes the writes to `files` durable: one `fdatasync` each.
pub(crate) fn sync_files(files: &[Arc<File>]) -> std::io::Result<()> {
    for file in files {
        file.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

//! Opening the log's directory: which segments make up the log, which bad bytes are a
//! torn tail that may be cut, and which are damage that stops the node (see the parent
//! module's "What a bad record means").

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::mark::{self, SyncMark, RECORDS_START};
use super::{
    checksum, parse_segment_name, segment_name, sync_dir, zero, Segment, SegmentLog, SyncPoint,
    HEADER_BYTES, MAX_PAYLOAD_BYTES,
};
use crate::replication::error::StoreError;

/// A segment's records (index, payload length), the offset after the last good one, and
/// what was wrong with the record there, if the scan stopped at a bad one.
type Scanned = (Vec<(u64, u32)>, u64, Option<String>);

/// Reads the records of one segment file from `start`, as far as they check out. The
/// scan stops at the end marker, the end of the file, or a bad record (then it says why).
fn scan(file: &File, path: &Path, first: u64, start: u64) -> Result<Scanned, StoreError> {
    let len = file.metadata().map_err(StoreError::io(path))?.len();
    let mut records = Vec::new();
    let mut at = start;
    let mut header = [0u8; HEADER_BYTES as usize];
    let mut payload = Vec::new();
    loop {
        if at + HEADER_BYTES > len {
            return Ok((records, at, None));
        }
        file.read_exact_at(&mut header, at)
            .map_err(StoreError::io(path))?;
        let size = u64::from(u32::from_le_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let sum = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let mut index_bytes = [0u8; 8];
        index_bytes.copy_from_slice(&header[8..16]);
        let index = u64::from_le_bytes(index_bytes);
        let expected = first + records.len() as u64;
        let bad = if size == 0 {
            if sum == 0 && index == 0 {
                return Ok((records, at, None));
            }
            Some("a record header of length 0 with a checksum or an index".to_string())
        } else if size > MAX_PAYLOAD_BYTES {
            Some(format!(
                "a record length of {size} bytes, past any Gavel writes"
            ))
        } else if at + HEADER_BYTES + size > len {
            Some(format!(
                "a record of {size} bytes running past the end of the file"
            ))
        } else if index != expected {
            Some(format!(
                "a record of index {index} where {expected} belongs"
            ))
        } else {
            payload.resize(size as usize, 0);
            file.read_exact_at(&mut payload, at + HEADER_BYTES)
                .map_err(StoreError::io(path))?;
            (checksum(index, &payload) != sum)
                .then(|| format!("the record of index {index} fails its checksum"))
        };
        if bad.is_some() {
            return Ok((records, at, bad));
        }
        records.push((at, size as u32));
        at += HEADER_BYTES + size;
    }
}

/// Creates the log's directory if it is missing, and makes its entry durable.
fn create_dir_durably(dir: &Path) -> Result<(), StoreError> {
    let created = !dir.is_dir();
    std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
    if created {
        sync_dir(dir)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// What says a segment's records were durable: every index below `synced_next` was,
/// and so was all of a segment a later marked one follows (`marked_after`).
#[derive(Clone, Copy)]
struct Durability {
    synced_next: u64,
    marked_after: bool,
}

/// A segment file opened for the log, before its records are scanned.
struct Opened {
    first: u64,
    path: std::path::PathBuf,
    file: File,
    mark: Option<SyncMark>,
}

impl SegmentLog {
    /// Opens (or creates) the log in `dir`. Segments whose records all lie at or below
    /// `purged` are removed; the rest must continue each other without a gap. A torn tail
    /// past the durable point is cut; damage before it is `StoreError::DamagedLog`. What
    /// is kept is then synced and the last segment's sync mark brought up to its end.
    pub(crate) fn open(dir: &Path, purged: Option<u64>) -> Result<Self, StoreError> {
        create_dir_durably(dir)?;
        let (opened, mut removed) = open_segments(dir, purged)?;
        // Every record below this index was durable when some mark was written.
        let synced_next = opened
            .iter()
            .filter_map(|segment| segment.mark)
            .map(|mark| mark.synced_next)
            .max()
            .unwrap_or(0);
        let mut log = SegmentLog {
            dir: dir.to_path_buf(),
            segments: Vec::new(),
            synced: SyncPoint::default(),
        };
        let marked_after: Vec<bool> = (0..opened.len())
            .map(|position| {
                opened[position + 1..]
                    .iter()
                    .any(|later| later.mark.is_some())
            })
            .collect();
        let mut torn = false;
        for (position, segment) in opened.into_iter().enumerate() {
            if torn {
                // Written after a torn record, before sync marks: never synced before it.
                let path = segment.path;
                tracing::warn!(segment = %path.display(), "removing a log segment written after a torn record");
                std::fs::remove_file(&path).map_err(StoreError::io(&path))?;
                removed = true;
                continue;
            }
            let durable = Durability {
                synced_next,
                marked_after: marked_after[position],
            };
            torn = log.admit(segment, durable, purged)?;
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
        log.check_durable_records_are_here(synced_next, purged)?;
        log.sync_all_and_mark()?;
        Ok(log)
    }

    /// Scans one opened segment and adds what it holds to the log. A bad record where the
    /// log was durable is `StoreError::DamagedLog`; past it, a torn tail is zeroed and
    /// `true` says so (every later segment goes).
    fn admit(
        &mut self,
        segment: Opened,
        durable: Durability,
        purged: Option<u64>,
    ) -> Result<bool, StoreError> {
        let Opened {
            first,
            path,
            file,
            mark,
        } = segment;
        let start = if mark.is_some() { RECORDS_START } else { 0 };
        let (records, end, bad) = scan(&file, &path, first, start)?;
        self.check_continuity(first, &path, purged)?;
        let torn = bad.is_some();
        if let Some(detail) = bad {
            let index = first + records.len() as u64;
            let synced_next = durable.synced_next;
            let why = if index < synced_next {
                format!("the log's records below index {synced_next} were durable")
            } else if durable.marked_after {
                "a later segment follows, so this one was durable".to_string()
            } else {
                String::new()
            };
            if !why.is_empty() {
                return Err(StoreError::DamagedLog {
                    path,
                    offset: end,
                    detail: format!("{detail}; {why}"),
                });
            }
            let len = file.metadata().map_err(StoreError::io(&path))?.len();
            tracing::warn!(segment = %path.display(), offset = end, records = records.len(), detail, "the raft log ends in a torn record, written after its last sync; its space is zeroed");
            zero(&file, &path, end, len)?;
            file.sync_data().map_err(StoreError::io(&path))?;
        }
        self.segments.push(Segment {
            first,
            path,
            file: Arc::new(file),
            records,
            end,
            mark,
        });
        Ok(torn)
    }

    /// A segment must start where the one before ended, unless what lies between is
    /// below the purge mark (a snapshot was installed past the log's end); then what is
    /// before goes.
    fn check_continuity(
        &mut self,
        first: u64,
        path: &Path,
        purged: Option<u64>,
    ) -> Result<(), StoreError> {
        let Some(previous) = self.segments.last() else {
            return Ok(());
        };
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
            self.remove_segments_through(self.segments.len())?;
        }
        Ok(())
    }

    /// Every record the marks say was durable, above the purge mark, must be in the log:
    /// a log that ends sooner lost records (zeros where they were, say).
    fn check_durable_records_are_here(
        &self,
        synced_next: u64,
        purged: Option<u64>,
    ) -> Result<(), StoreError> {
        let floor = purged.map_or(0, |purged| purged.saturating_add(1));
        let end = self.next_index().unwrap_or(0).max(floor);
        if synced_next <= end {
            return Ok(());
        }
        let (path, offset) = match self.segments.last() {
            Some(last) => (last.path.clone(), last.end),
            None => (self.dir.clone(), 0),
        };
        Err(StoreError::DamagedLog {
            path,
            offset,
            detail: format!(
                "the log ends before index {end}, but its records below index {synced_next} were durable"
            ),
        })
    }

    /// Makes every record found durable (a process that crashed may have left some in the
    /// page cache only) and says so in the last segment's sync mark.
    fn sync_all_and_mark(&mut self) -> Result<(), StoreError> {
        for segment in &self.segments {
            segment
                .file
                .sync_data()
                .map_err(StoreError::io(&segment.path))?;
        }
        let Some(next) = self.next_index() else {
            return Ok(());
        };
        self.synced.advance(next);
        let last = self.segments.last_mut().expect("a segment holds the log");
        if last.advance_mark(next)? {
            last.file.sync_data().map_err(StoreError::io(&last.path))?;
        }
        Ok(())
    }
}

/// Lists the segment files in `dir` in index order and opens them; those wholly at or
/// below the purge mark (a later segment starts at or below it + 1) are removed instead.
/// Says whether any was removed.
fn open_segments(dir: &Path, purged: Option<u64>) -> Result<(Vec<Opened>, bool), StoreError> {
    let mut listed = Vec::new();
    for item in std::fs::read_dir(dir).map_err(StoreError::io(dir))? {
        let item = item.map_err(StoreError::io(dir))?;
        let name = item.file_name();
        match name.to_str().and_then(parse_segment_name) {
            Some(segment) => listed.push(segment),
            None => {
                tracing::warn!(file = ?name, dir = %dir.display(), "not a log segment; left alone")
            }
        }
    }
    listed.sort_unstable();
    let mut opened = Vec::new();
    let mut removed = false;
    for (position, &(first, marked)) in listed.iter().enumerate() {
        let path = dir.join(segment_name(first, marked));
        let next_first = listed.get(position + 1).map(|&(next, _)| next);
        if let (Some(purged), Some(next)) = (purged, next_first) {
            if next <= purged.saturating_add(1) {
                std::fs::remove_file(&path).map_err(StoreError::io(&path))?;
                removed = true;
                continue;
            }
        }
        if next_first == Some(first) {
            return Err(StoreError::corrupt(
                "the raft log",
                format!("two segment files start at index {first}"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(StoreError::io(&path))?;
        let mark = if marked {
            let len = file.metadata().map_err(StoreError::io(&path))?.len();
            Some(mark::read_head(&file, &path, len)?)
        } else {
            None
        };
        opened.push(Opened {
            first,
            path,
            file,
            mark,
        });
    }
    Ok((opened, removed))
}

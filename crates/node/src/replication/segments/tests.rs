//! Tests of the segment files: spanning segments, torn tails and damaged records,
//! truncation, purging and gaps, each checked again after a reopen, on real files.

use super::*;

fn payload(index: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![(index % 251) as u8 + 1; len];
    bytes[..8].copy_from_slice(&index.to_le_bytes());
    bytes
}

fn records(range: std::ops::Range<u64>, len: usize) -> Vec<(u64, Vec<u8>)> {
    range.map(|index| (index, payload(index, len))).collect()
}

/// Appends and syncs, as the log's sync thread does: the records are durable.
fn write(log: &mut SegmentLog, range: std::ops::Range<u64>, len: usize) {
    let next = range.end;
    let files = log.append(&records(range, len)).expect("append");
    sync_files(&files).expect("sync");
    log.sync_point().advance(next);
}

/// Appends without a sync: the records a crash may tear.
fn write_unsynced(log: &mut SegmentLog, range: std::ops::Range<u64>, len: usize) {
    log.append(&records(range, len)).expect("append");
}

/// Where record `index` is: its file and offset.
fn record_at(log: &SegmentLog, index: u64) -> (Arc<File>, PathBuf, u64) {
    let segment = log
        .segments
        .iter()
        .rfind(|segment| segment.first <= index)
        .expect("a segment holds it");
    let (offset, _) = segment.records[(index - segment.first) as usize];
    (segment.file.clone(), segment.path.clone(), offset)
}

/// Opening fails with `DamagedLog` naming this file and offset.
fn assert_damaged_at(wal: &Path, path: &Path, offset: u64) {
    match SegmentLog::open(wal, None) {
        Err(StoreError::DamagedLog {
            path: named,
            offset: at,
            detail,
        }) => {
            assert_eq!((named.as_path(), at), (path, offset), "{detail}");
            let message = StoreError::DamagedLog {
                path: named,
                offset: at,
                detail,
            }
            .to_string();
            assert!(message.contains(&format!("at byte {offset}")), "{message}");
        }
        Err(other) => panic!("not DamagedLog: {other}"),
        Ok(log) => panic!("opened, ending at {:?}", log.last_index()),
    }
}

fn read(log: &SegmentLog, start: u64, end: u64) -> Vec<(u64, Vec<u8>)> {
    log.plan_read(start, end).read().expect("read")
}

fn segment_files(dir: &Path) -> Vec<u64> {
    let mut firsts: Vec<u64> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|item| parse_segment_name(item.ok()?.file_name().to_str()?))
        .map(|(first, _)| first)
        .collect();
    firsts.sort_unstable();
    firsts
}

#[test]
fn records_span_segments_and_read_back_after_a_reopen() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal = dir.path().join("wal");
    let mut log = SegmentLog::open(&wal, None).expect("open");
    assert_eq!(log.last_index(), None);
    // 1 MiB records: eight fill a segment, so 20 take three.
    write(&mut log, 1..21, 1 << 20);
    assert_eq!(segment_files(&wal).len(), 3);
    assert_eq!(read(&log, 1, 21), records(1..21, 1 << 20));
    drop(log);
    let log = SegmentLog::open(&wal, None).expect("reopen");
    assert_eq!(log.last_index(), Some(20));
    assert_eq!(read(&log, 7, 10), records(7..10, 1 << 20));
    assert_eq!(read(&log, 19, u64::MAX), records(19..21, 1 << 20));
    let record = HEADER_BYTES + (1 << 20);
    assert_eq!(log.bytes_after(None), 20 * record);
    assert_eq!(log.bytes_after(Some(7)), 13 * record);
    assert_eq!(log.bytes_after(Some(20)), 0);
}

#[test]
fn a_torn_record_written_after_the_last_sync_ends_the_log_and_its_space_is_zeroed() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal = dir.path().join("wal");
    let mut log = SegmentLog::open(&wal, None).expect("open");
    write(&mut log, 1..10, 100);
    write_unsynced(&mut log, 10..11, 100);
    let (file, _, offset) = record_at(&log, 10);
    drop(log);
    // A crash that wrote the last record's header but only part of its payload.
    file.write_all_at(&[0xAA; 20], offset + HEADER_BYTES + 50)
        .expect("tear it");
    let mut log = SegmentLog::open(&wal, None).expect("reopen");
    assert_eq!(log.last_index(), Some(9));
    let mut rest = vec![0u8; 200];
    file.read_exact_at(&mut rest, offset).expect("read");
    assert!(
        rest.iter().all(|&byte| byte == 0),
        "the torn record is zeroed"
    );
    // Appending goes on from the cut, and a shorter record leaves nothing stale.
    write(&mut log, 10..12, 10);
    drop(log);
    let log = SegmentLog::open(&wal, None).expect("reopen");
    assert_eq!(read(&log, 9, 12)[1..], records(10..12, 10)[..]);
    assert_eq!(log.last_index(), Some(11));
}

#[test]
fn a_tail_cut_mid_record_after_the_last_sync_is_dropped_and_every_earlier_record_kept() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal = dir.path().join("wal");
    let mut log = SegmentLog::open(&wal, None).expect("open");
    write(&mut log, 1..10, 300);
    write_unsynced(&mut log, 10..13, 300);
    let (file, _, offset) = record_at(&log, 12);
    drop(log);
    // A crash that left the file ending inside record 12's payload.
    file.set_len(offset + HEADER_BYTES + 100).expect("cut");
    let mut log = SegmentLog::open(&wal, None).expect("reopen");
    assert_eq!(log.last_index(), Some(11));
    assert_eq!(read(&log, 1, 12), records(1..12, 300));
    write(&mut log, 12..14, 50);
    drop(log);
    let log = SegmentLog::open(&wal, None).expect("reopen");
    assert_eq!(read(&log, 12, 14), records(12..14, 50));
}

#[test]
fn a_flipped_byte_in_a_synced_record_stops_the_open_naming_the_file_and_offset() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal = dir.path().join("wal");
    let mut log = SegmentLog::open(&wal, None).expect("open");
    write(&mut log, 1..13, 1 << 20);
    let (file, path, offset) = record_at(&log, 6);
    drop(log);
    file.write_all_at(&[0x55], offset + HEADER_BYTES + 9)
        .expect("flip a byte");
    assert_damaged_at(&wal, &path, offset);
    // Nothing was cut: every file is still there, and the open still refuses.
    assert_eq!(segment_files(&wal), vec![1, 8]);
    assert_damaged_at(&wal, &path, offset);
}

#[test]
fn damage_to_the_last_synced_record_is_found_once_the_log_was_closed() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal = dir.path().join("wal");
    let mut log = SegmentLog::open(&wal, None).expect("open");
    write(&mut log, 1..6, 100);
    // Nothing follows record 5, but it was synced before the log was closed.
    let (file, path, offset) = record_at(&log, 5);
    drop(log);
    file.write_all_at(&[0xFF, 0xFF], offset)
        .expect("flip its length");
    assert_damaged_at(&wal, &path, offset);
}

#[test]
fn damage_found_by_the_sync_mark_written_with_later_records() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal = dir.path().join("wal");
    let mut log = SegmentLog::open(&wal, None).expect("open");
    write(&mut log, 1..6, 100);
    // A later append carries the mark "below 6 is durable"; it is never synced itself,
    // and the log is never closed (a crash), yet the mark may reach the disk.
    write_unsynced(&mut log, 6..8, 100);
    let (file, path, offset) = record_at(&log, 3);
    std::mem::forget(log);
    // Zeros over a synced record's header: the log would seem to end at record 3.
    file.write_all_at(&[0u8; 16], offset).expect("zero it");
    assert_damaged_at(&wal, &path, offset);
}

#[test]
fn a_segment_that_a_later_one_follows_was_durable() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal = dir.path().join("wal");
    let mut log = SegmentLog::open(&wal, None).expect("open");
    write(&mut log, 1..8, 1 << 20);
    // Record 8 starts a new segment; the one before was synced before it was created.
    write_unsynced(&mut log, 8..9, 1 << 20);
    let (file, path, offset) = record_at(&log, 7);
    std::mem::forget(log);
    file.write_all_at(&[0x01], offset + HEADER_BYTES + 500)
        .expect("flip a byte");
    assert_damaged_at(&wal, &path, offset);
}

#[test]
fn a_segment_written_before_sync_marks_is_read_and_the_log_goes_on_in_a_marked_one() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal = dir.path().join("wal");
    std::fs::create_dir_all(&wal).expect("dir");
    let old = wal.join(segment_name(1, false));
    let mut bytes = Vec::new();
    for (index, payload) in records(1..5, 40) {
        bytes.extend_from_slice(&header(index, &payload));
        bytes.extend_from_slice(&payload);
    }
    // A torn fifth record: such a segment keeps the rule it was written under.
    bytes.extend_from_slice(&[7u8; 30]);
    std::fs::write(&old, &bytes).expect("write an unmarked segment");
    let mut log = SegmentLog::open(&wal, None).expect("open");
    assert_eq!(read(&log, 1, 10), records(1..5, 40));
    write(&mut log, 5..7, 40);
    assert_eq!(segment_files(&wal), vec![1, 5]);
    assert!(wal.join(segment_name(5, true)).is_file());
    drop(log);
    let log = SegmentLog::open(&wal, None).expect("reopen");
    assert_eq!(read(&log, 1, 10), records(1..7, 40));
}

#[test]
fn truncation_removes_records_and_later_segments_for_good() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal = dir.path().join("wal");
    let mut log = SegmentLog::open(&wal, None).expect("open");
    write(&mut log, 1..21, 1 << 20);
    log.truncate_from(6).expect("truncate");
    assert_eq!(log.last_index(), Some(5));
    assert_eq!(segment_files(&wal), vec![1]);
    // The sync mark came down with the records: a new record torn at 6 is a torn tail.
    write_unsynced(&mut log, 6..7, 30);
    let (file, _, offset) = record_at(&log, 6);
    std::mem::forget(log);
    file.write_all_at(&[9u8; 8], offset + HEADER_BYTES)
        .expect("tear it");
    let mut log = SegmentLog::open(&wal, None).expect("reopen");
    assert_eq!(log.last_index(), Some(5));
    write(&mut log, 6..8, 30);
    assert!(
        log.append(&records(5..6, 30)).is_err(),
        "no rewrite without a truncation"
    );
    drop(log);
    let mut log = SegmentLog::open(&wal, None).expect("reopen");
    assert_eq!(log.last_index(), Some(7));
    assert_eq!(read(&log, 6, 8), records(6..8, 30));
    log.truncate_from(1).expect("truncate all");
    assert_eq!(log.last_index(), None);
    write(&mut log, 1..3, 40);
    drop(log);
    let log = SegmentLog::open(&wal, None).expect("reopen");
    assert_eq!(read(&log, 1, 10), records(1..3, 40));
}

#[test]
fn purged_segments_go_and_a_log_restarts_past_the_purge_mark() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal = dir.path().join("wal");
    let mut log = SegmentLog::open(&wal, None).expect("open");
    write(&mut log, 1..21, 1 << 20);
    assert_eq!(segment_files(&wal), vec![1, 8, 15]);
    log.purge_through(10).expect("purge");
    assert_eq!(segment_files(&wal), vec![8, 15]);
    assert_eq!(read(&log, 11, 13), records(11..13, 1 << 20));
    // A snapshot installed past the end: everything goes, the log restarts after it.
    log.purge_through(30).expect("purge all");
    assert_eq!(segment_files(&wal), Vec::<u64>::new());
    write(&mut log, 31..33, 10);
    drop(log);
    let log = SegmentLog::open(&wal, Some(30)).expect("reopen");
    assert_eq!(read(&log, 1, 40), records(31..33, 10));
}

#[test]
fn a_gap_between_segments_is_corrupt_unless_below_the_purge_mark() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal = dir.path().join("wal");
    write(&mut SegmentLog::open(&wal, None).expect("open"), 1..4, 10);
    // A segment starting at 10 beside one ending at 3, as a snapshot install leaves
    // them when a crash kept its purge from deleting the older one.
    let other = dir.path().join("other");
    write(
        &mut SegmentLog::open(&other, None).expect("open"),
        10..12,
        10,
    );
    std::fs::copy(
        other.join(segment_name(10, true)),
        wal.join(segment_name(10, true)),
    )
    .expect("copy");
    assert!(matches!(
        SegmentLog::open(&wal, None),
        Err(StoreError::Corrupt { .. })
    ));
    let log = SegmentLog::open(&wal, Some(9)).expect("below the purge mark");
    assert_eq!(read(&log, 1, 20), records(10..12, 10));
    assert_eq!(segment_files(&wal), vec![10]);
}

//! Tests of the segment files: spanning segments, torn and corrupt records, truncation,
//! purging and gaps, each checked again after a reopen.

use super::*;

fn payload(index: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![(index % 251) as u8 + 1; len];
    bytes[..8].copy_from_slice(&index.to_le_bytes());
    bytes
}

fn records(range: std::ops::Range<u64>, len: usize) -> Vec<(u64, Vec<u8>)> {
    range.map(|index| (index, payload(index, len))).collect()
}

fn write(log: &mut SegmentLog, range: std::ops::Range<u64>, len: usize) {
    let files = log.append(&records(range, len)).expect("append");
    sync_files(&files).expect("sync");
}

fn read(log: &SegmentLog, start: u64, end: u64) -> Vec<(u64, Vec<u8>)> {
    log.plan_read(start, end).read().expect("read")
}

fn segment_files(dir: &Path) -> Vec<u64> {
    let mut firsts: Vec<u64> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|item| parse_segment_name(item.ok()?.file_name().to_str()?))
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
fn a_torn_last_record_ends_the_log_and_its_space_is_zeroed() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal = dir.path().join("wal");
    let mut log = SegmentLog::open(&wal, None).expect("open");
    write(&mut log, 1..11, 100);
    let (offset, _) = log.segments[0].records[9];
    let file = log.segments[0].file.clone();
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
fn a_corrupt_record_drops_it_and_every_later_segment() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let wal = dir.path().join("wal");
    let mut log = SegmentLog::open(&wal, None).expect("open");
    write(&mut log, 1..13, 1 << 20);
    let (offset, _) = log.segments[0].records[5];
    let file = log.segments[0].file.clone();
    drop(log);
    file.write_all_at(&[0x55], offset + HEADER_BYTES + 9)
        .expect("flip a byte");
    let log = SegmentLog::open(&wal, None).expect("reopen");
    assert_eq!(log.last_index(), Some(5));
    assert_eq!(segment_files(&wal), vec![1]);
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
    std::fs::copy(other.join(segment_name(10)), wal.join(segment_name(10))).expect("copy");
    assert!(matches!(
        SegmentLog::open(&wal, None),
        Err(StoreError::Corrupt { .. })
    ));
    let log = SegmentLog::open(&wal, Some(9)).expect("below the purge mark");
    assert_eq!(read(&log, 1, 20), records(10..12, 10));
    assert_eq!(segment_files(&wal), vec![10]);
}

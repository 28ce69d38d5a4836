use std::fs::File;
use std::time::{Duration, Instant};

use openraft::{CommittedLeaderId, LogId};

use super::recent::{RECENT_BYTES, RECENT_ENTRIES};
use super::syncer::{SyncDone, Syncer, IDLE_LOG_GAP};
use super::*;
use crate::replication::segments::SyncPoint;
use crate::replication::Proposal;
use gavel_kernel::Command;

fn envelope() -> Envelope {
    Envelope {
        now_ms: 1_700_000_000_000,
        seed: 9,
        actor: "operator".to_string(),
        command: Command::RegisterBidder {
            bidder_id: "alice".to_string(),
            name: "Alice Ltd".to_string(),
            secret_salt: "00".repeat(16),
            secret_hash: "ab".repeat(32),
        },
    }
}

/// Opens the log in `dir`. A store of the same directory dropped just before may still
/// hold sled's file lock for a moment (sled releases it from a thread of its own), so a
/// busy lock is waited out, up to 5 s.
fn open_store(dir: &std::path::Path) -> LogStore {
    let started = Instant::now();
    let durable = loop {
        match Durable::open(dir) {
            Ok(durable) => break durable,
            Err(error) if started.elapsed() < Duration::from_secs(5) => {
                assert!(format!("{error:?}").contains("lock"), "open sled: {error}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => panic!("open sled: {error}"),
        }
    };
    LogStore::open(Arc::new(durable)).expect("open the log")
}

#[test]
fn entries_left_in_sled_move_to_the_files_and_format_1_reads_as_a_proposal_of_one() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let old_id = LogId::new(CommittedLeaderId::new(2, 1), 5);
    let old: Entry<SingleEnvelopeTypes> = Entry {
        log_id: old_id,
        payload: EntryPayload::Normal(envelope()),
    };
    let new: Entry<TypeConfig> = Entry {
        log_id: LogId::new(CommittedLeaderId::new(2, 1), 6),
        payload: EntryPayload::Normal(Proposal {
            envelopes: vec![envelope(), envelope()].into(),
        }),
    };
    {
        let durable = Durable::open(dir.path()).expect("open sled");
        let tree = durable.db().open_tree("log").expect("the log tree");
        let record = encode_as(LOG_ENTRY_FORMAT_SINGLE, "old entry", &old).expect("encode");
        tree.insert(5u64.to_be_bytes(), record).expect("write");
        tree.insert(6u64.to_be_bytes(), encode_entry(&new).expect("encode"))
            .expect("write");
        durable.make_durable().expect("durable");
    }
    for _ in 0..2 {
        let store = open_store(dir.path());
        let read = store.entries(5..=6).expect("the moved entries decode");
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].log_id, old_id);
        match &read[0].payload {
            EntryPayload::Normal(proposal) => {
                assert_eq!(*proposal, Proposal::from(envelope()))
            }
            other => panic!("expected a normal entry, read {other:?}"),
        }
        assert_eq!(read[1], new);
        assert_eq!(store.last_log_id().expect("last"), Some(new.log_id));
        let tree = store.durable.db().open_tree("log").expect("the log tree");
        assert!(tree.is_empty(), "the sled tree is emptied");
    }
}

#[test]
fn entries_of_an_unknown_format_are_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = open_store(dir.path());
    let new: Entry<TypeConfig> = Entry {
        log_id: LogId::new(CommittedLeaderId::new(2, 1), 6),
        payload: EntryPayload::Normal(Proposal {
            envelopes: vec![envelope(), envelope()].into(),
        }),
    };
    let mut record = encode_entry(&new).expect("encode");
    store.append_raw(&[(6, record.clone())]).expect("write");
    assert_eq!(store.entries(6..=6).expect("reads back"), vec![new]);

    record[0] = 9;
    store.append_raw(&[(7, record)]).expect("write");
    match store.entries(7..=7) {
        Err(StoreError::Corrupt { .. }) => {}
        other => panic!("expected a corrupt-record error, got {other:?}"),
    }
}

/// Waits (at most 10 s) until the sync thread has done every job handed to it.
fn wait_until_idle(syncer: &Syncer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while syncer.queued.load(Ordering::SeqCst) > 0 {
        assert!(Instant::now() < deadline, "the sync thread never finished");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Each `done` that ran: its number, whether on the caller's thread, whether it succeeded.
type DoneLog = Arc<Mutex<Vec<(u32, bool, bool)>>>;

/// Records the order in which `done` ran and on which thread.
fn recorder(log: &DoneLog, number: u32) -> SyncDone {
    let log = log.clone();
    let caller = std::thread::current().id();
    Box::new(move |result| {
        let here = std::thread::current().id() == caller;
        log.lock().push((number, here, result.is_ok()));
    })
}

#[test]
fn an_append_after_an_idle_gap_is_synced_on_the_callers_thread_and_in_order() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = Arc::new(File::create(dir.path().join("segment")).expect("a file"));
    let synced = SyncPoint::default();
    let syncer = Syncer::start(synced.clone()).expect("the sync thread");
    let log = Arc::new(Mutex::new(Vec::new()));
    // Back to back: the first has no previous append, the rest come too soon.
    for number in 0..3 {
        syncer
            .sync_append(
                vec![file.clone()],
                u64::from(number) + 1,
                true,
                recorder(&log, number),
            )
            .expect("queued");
    }
    wait_until_idle(&syncer);
    // Many commands in one append: the sync thread, however idle the log.
    std::thread::sleep(IDLE_LOG_GAP * 2);
    syncer
        .sync_append(vec![file.clone()], 4, false, recorder(&log, 3))
        .expect("queued");
    wait_until_idle(&syncer);
    std::thread::sleep(IDLE_LOG_GAP * 2);
    syncer
        .sync_append(vec![file.clone()], 5, true, recorder(&log, 4))
        .expect("synced");
    // Done before `sync_append` returned, on this thread.
    assert_eq!(
        *log.lock(),
        vec![
            (0, false, true),
            (1, false, true),
            (2, false, true),
            (3, false, true),
            (4, true, true)
        ]
    );
    assert_eq!(synced.get(), 5, "the durable point follows the syncs");

    // After a failed sync nothing is reported durable again, here or there.
    syncer.failed.store(true, Ordering::SeqCst);
    std::thread::sleep(IDLE_LOG_GAP * 2);
    syncer
        .sync_append(vec![file], 6, true, recorder(&log, 5))
        .expect("answered");
    assert_eq!(log.lock().last(), Some(&(5, true, false)));
    assert_eq!(synced.get(), 5, "a failed sync makes nothing durable");
}

fn entry_at(index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(3, 1), index),
        payload: EntryPayload::Normal(Proposal::from(envelope())),
    }
}

fn indexes(entries: &[Entry<TypeConfig>]) -> Vec<u64> {
    entries.iter().map(|entry| entry.log_id.index).collect()
}

#[test]
fn recent_entries_hold_the_tail_without_gaps_and_follow_truncation_and_purge() {
    let mut recent = Recent::default();
    assert_eq!(recent.get(1, 2), None, "nothing kept yet");
    recent.extend((1..=5).map(|index| (entry_at(index), 100)).collect());
    assert_eq!(indexes(&recent.get(2, 5).expect("kept")), vec![2, 3, 4]);
    assert_eq!(recent.get(2, 5).expect("kept")[0], entry_at(2));
    // Only a range it holds whole.
    assert_eq!(recent.get(0, 3), None);
    assert_eq!(recent.get(4, 7), None);
    assert_eq!(recent.get(3, 3), None);

    recent.truncate_from(4);
    assert_eq!(recent.get(4, 5), None, "truncated entries are gone");
    assert_eq!(recent.bytes, 300);
    recent.extend(vec![(entry_at(4), 100)]);
    assert_eq!(indexes(&recent.get(1, 5).expect("kept")), vec![1, 2, 3, 4]);

    recent.purge_through(2);
    assert_eq!(recent.get(2, 3), None, "purged entries are gone");
    assert_eq!(indexes(&recent.get(3, 5).expect("kept")), vec![3, 4]);

    // An append that does not follow on replaces what was kept.
    recent.extend(vec![(entry_at(9), 100)]);
    assert_eq!(recent.get(3, 5), None);
    assert_eq!(indexes(&recent.get(9, 10).expect("kept")), vec![9]);
    assert_eq!(recent.bytes, 100);

    // Bounded in count and in bytes, dropping the oldest.
    let many = RECENT_ENTRIES as u64 + 10;
    recent.extend((10..10 + many).map(|index| (entry_at(index), 10)).collect());
    assert_eq!(recent.entries.len(), RECENT_ENTRIES);
    assert_eq!(
        recent.first_index(),
        Some(10 + many - RECENT_ENTRIES as u64)
    );
    recent.extend(vec![(entry_at(10 + many), RECENT_BYTES)]);
    assert_eq!(recent.first_index(), Some(10 + many));
    assert_eq!(recent.bytes, RECENT_BYTES);
}

#[test]
fn raw_records_written_after_the_kept_entries_are_read_from_the_files() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = open_store(dir.path());
    let records: Vec<(u64, Vec<u8>)> = (1..=3)
        .map(|index| (index, encode_entry(&entry_at(index)).expect("encode")))
        .collect();
    store.append_raw(&records).expect("write");
    store
        .recent
        .lock()
        .extend((1..=3).map(|index| (entry_at(index), 10)).collect());
    // Kept entries are served up to the files' end, never past it.
    assert_eq!(indexes(&store.entries(2..).expect("read")), vec![2, 3]);
    let fourth = encode_entry(&entry_at(4)).expect("encode");
    store.append_raw(&[(4, fourth)]).expect("write");
    assert!(
        store.recent.lock().entries.is_empty(),
        "a raw write empties them"
    );
    assert_eq!(indexes(&store.entries(2..).expect("read")), vec![2, 3, 4]);
}

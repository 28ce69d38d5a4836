//! Tests of the replication layer on a single-voter cluster: kernel commands go through
//! Raft and come back as responses and events; a node restarted on its data directory gets
//! all of its state back, from the log alone or from a snapshot plus the log after it; and
//! corrupt records on disk are typed errors, not panics.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::raft::ClientWriteResponse;
use openraft::RaftLogReader;

use super::*;
use gavel_kernel::{AuctionSpec, Command, Envelope, EventKind, IncrementRule, Outcome, Rejection};

const NOW_MS: u64 = 1_700_000_000_000;
const WAIT: Option<Duration> = Some(Duration::from_secs(10));

fn options(dir: &Path) -> ReplicationOptions {
    ReplicationOptions {
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        snapshot_every_entries: 10_000,
        event_buffer: 64,
        ..ReplicationOptions::with_defaults(1, dir.to_path_buf())
    }
}

fn info() -> NodeInfo {
    NodeInfo {
        name: "n1".to_string(),
        public_url: "http://127.0.0.1:8080".to_string(),
        control_url: "http://127.0.0.1:8081".to_string(),
        peer_addr: "127.0.0.1:8082".to_string(),
    }
}

fn envelope(offset_ms: u64, command: Command) -> Envelope {
    Envelope {
        now_ms: NOW_MS + offset_ms,
        seed: offset_ms.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        actor: "test".to_string(),
        command,
    }
}

fn register(bidder_id: &str) -> Command {
    Command::RegisterBidder {
        bidder_id: bidder_id.to_string(),
        name: format!("Bidder {bidder_id}"),
        secret_salt: "0123456789abcdef0123456789abcdef".to_string(),
        secret_hash: "ab".repeat(32),
    }
}

fn create_auction(id: &str, parcel_bytes: usize) -> Command {
    Command::CreateAuction {
        spec: AuctionSpec {
            id: id.to_string(),
            title: format!("Parcel {id}"),
            parcel_json: format!("{{\"notes\":\"{}\"}}", "x".repeat(parcel_bytes)),
            start_price: 1_000_000,
            increment: 10_000,
            increment_rule: IncrementRule::Multiple,
            reserve_price: None,
            price_cap: None,
            cap_confirm_ms: 60_000,
            failover_grace_ms: 30_000,
            listing_opens_at_ms: NOW_MS + 60_000,
            listing_closes_at_ms: NOW_MS + 3_600_000,
            countdown_ms: 60_000,
        },
    }
}

async fn start(dir: &Path) -> Replication {
    let node = open(options(dir)).await.expect("open the node");
    node.initialize_single(info()).await.expect("initialize");
    node.raft
        .wait(WAIT)
        .current_leader(1, "node 1 leads")
        .await
        .expect("a leader");
    node
}

async fn write(
    node: &Replication,
    offset_ms: u64,
    command: Command,
) -> ClientWriteResponse<TypeConfig> {
    node.raft
        .client_write(envelope(offset_ms, command).into())
        .await
        .expect("the write commits")
}

/// Creates lot-0, lot-1 and lot-2, terminates lot-0 and lot-1 (closed at offsets 10 and
/// 11) and archives them at offset 20; lot-2 stays open. The archive entry's response.
async fn archive_two_of_three_lots(node: &Replication) -> ClientWriteResponse<TypeConfig> {
    for index in 0..3u64 {
        write(node, index, create_auction(&format!("lot-{index}"), 10)).await;
    }
    let terminate = |id: &str| Command::Terminate {
        auction_id: id.to_string(),
        reason: "withdrawn".to_string(),
    };
    write(node, 10, terminate("lot-0")).await;
    write(node, 11, terminate("lot-1")).await;
    write(
        node,
        20,
        Command::Archive {
            closed_linger_ms: 5,
        },
    )
    .await
}

#[tokio::test]
async fn single_voter_commits_publishes_and_survives_restart() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let node = start(dir.path()).await;
    let mut events = node.subscribe();

    for (offset, bidder) in ["alice", "bob"].into_iter().enumerate() {
        let written = write(&node, offset as u64, register(bidder)).await;
        assert_eq!(written.data.results[0], Ok(Outcome::BidderRegistered));
    }
    let again = write(&node, 5, register("alice")).await;
    assert_eq!(again.data.results[0], Err(Rejection::BidderExists));
    let created = write(&node, 10, create_auction("lot-1", 100)).await;
    assert_eq!(
        created.data.results[0],
        Ok(Outcome::AuctionCreated { created: true })
    );

    // Registrations publish nothing; the creation publishes its events under its index.
    let published = events.recv().await.expect("an event batch");
    assert_eq!(published.log_index, created.log_id.index);
    assert!(published
        .events
        .iter()
        .any(|event| event.auction_id == "lot-1" && event.kind == EventKind::Created));

    let (digest, last_applied) = {
        let mut state = node.state.write();
        assert_eq!(state.kernel.bidders.len(), 2);
        assert_eq!(state.last_applied_index, created.log_id.index);
        (state.digest(), state.last_applied_index)
    };
    node.shutdown().await.expect("shutdown");

    // Restart on the same directory: everything is back before the node leads again.
    let node = open(options(dir.path())).await.expect("reopen");
    {
        let mut state = node.state.write();
        assert_eq!(state.last_applied_index, last_applied);
        assert!(state.kernel.bidders.contains_key("alice"));
        assert!(state.kernel.bidders.contains_key("bob"));
        assert!(state.kernel.auctions.contains_key("lot-1"));
        assert_eq!(state.digest(), digest);
        assert_eq!(state.membership.voter_ids().collect::<Vec<_>>(), vec![1]);
    }
    // Initializing a restarted node is a no-op, and it leads and commits again.
    node.initialize_single(info()).await.expect("re-initialize");
    node.raft
        .wait(WAIT)
        .current_leader(1, "node 1 leads again")
        .await
        .expect("a leader");
    let later = write(&node, 20, register("carol")).await;
    assert_eq!(later.data.results[0], Ok(Outcome::BidderRegistered));
    assert!(later.log_id.index > last_applied);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn snapshot_then_restart_restores_the_state() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let node = start(dir.path()).await;

    // Auctions with large parcels make a snapshot of several hundred KB, stored as a
    // file of its own beside sled's.
    for index in 0..10u64 {
        let written = write(
            &node,
            index,
            create_auction(&format!("lot-{index}"), 15_000),
        )
        .await;
        assert_eq!(
            written.data.results[0],
            Ok(Outcome::AuctionCreated { created: true })
        );
    }
    let before_snapshot = write(&node, 20, register("alice")).await.log_id;
    node.raft
        .trigger()
        .snapshot()
        .await
        .expect("trigger a snapshot");
    node.raft
        .wait(WAIT)
        .snapshot(before_snapshot, "snapshot built")
        .await
        .expect("the snapshot");
    node.raft
        .trigger()
        .purge_log(before_snapshot.index)
        .await
        .expect("trigger a purge");
    node.raft
        .wait(WAIT)
        .purged(Some(before_snapshot), "log purged")
        .await
        .expect("the purge");
    let snapshot_file = dir.path().join("raft").join("gavel-snapshot");
    let snapshot_bytes = std::fs::metadata(&snapshot_file).map_or(0, |file| file.len());
    assert!(
        snapshot_bytes > 150_000,
        "the snapshot should be a file of its own holding the parcels, not {snapshot_bytes} bytes"
    );

    write(&node, 30, register("bob")).await;
    let last = write(&node, 31, create_auction("lot-late", 10))
        .await
        .log_id;
    let digest = node.state.write().digest();
    node.shutdown().await.expect("shutdown");

    // The stored snapshot alone holds the state up to the snapshot.
    {
        let durable = Arc::new(Durable::open(&dir.path().join("raft")).expect("reopen sled"));
        let (events, _) = tokio::sync::broadcast::channel(1);
        let archive = ArchiveStore::open(&dir.path().join("archive")).expect("the archive");
        let (_machine, state) =
            StateMachineStore::open(durable, archive, events).expect("load the snapshot");
        let state = state.read();
        assert_eq!(state.last_applied, Some(before_snapshot));
        assert_eq!(state.kernel.auctions.len(), 10);
        assert!(state.kernel.bidders.contains_key("alice"));
        assert!(!state.kernel.bidders.contains_key("bob"));
    }

    // Reopened: the snapshot, then the entries committed after it.
    let node = open(options(dir.path())).await.expect("reopen");
    {
        let mut state = node.state.write();
        assert_eq!(state.last_applied, Some(last));
        assert!(state.kernel.bidders.contains_key("bob"));
        assert!(state.kernel.auctions.contains_key("lot-late"));
        assert_eq!(state.digest(), digest);
    }
    let snapshot = node.raft.get_snapshot().await.expect("get the snapshot");
    assert_eq!(
        snapshot.map(|snapshot| snapshot.meta.last_log_id),
        Some(Some(before_snapshot))
    );
    node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_directory_belongs_to_one_node() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let node = start(dir.path()).await;
    node.shutdown().await.expect("shutdown");
    let other = ReplicationOptions {
        node_id: 2,
        ..options(dir.path())
    };
    match open(other).await {
        Err(ReplicationError::Store(StoreError::NodeIdMismatch { stored, requested })) => {
            assert_eq!((stored, requested), (1, 2));
        }
        Err(error) => panic!("unexpected error: {error}"),
        Ok(_) => panic!("node 2 opened node 1's directory"),
    }
}

#[tokio::test]
async fn corrupt_records_are_typed_errors() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let durable = Arc::new(Durable::open(dir.path()).expect("open sled"));
    let mut log = LogStore::open(durable.clone()).expect("open the log");

    log.append_raw(&[(5, vec![1, 2, 3]), (6, vec![9, 0])])
        .expect("write garbage and an unknown format");
    for index in 5..7u64 {
        assert!(matches!(
            log.entries(index..index + 1),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(log.try_get_log_entries(index..index + 1).await.is_err());
    }
    // An empty record cannot be written: a zero length ends a segment's records.
    assert!(log.append_raw(&[(7, Vec::new())]).is_err());

    // A well-formed entry under another index.
    let entry = openraft::Entry::<TypeConfig> {
        log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), 9),
        payload: openraft::EntryPayload::Blank,
    };
    let record = codec::encode("entry", &entry).expect("encode");
    log.append_raw(&[(7, record)]).expect("write misplaced");
    assert!(matches!(log.entries(7..8), Err(StoreError::Corrupt { .. })));

    // A corrupt snapshot stops the state machine from opening.
    let snapshots = durable
        .db()
        .open_tree("snapshot")
        .expect("the snapshot tree");
    snapshots
        .insert(b"meta", vec![1, 0, 0])
        .expect("insert garbage");
    let (events, _) = tokio::sync::broadcast::channel(1);
    let archive_dir = tempfile::tempdir().expect("a temp dir");
    let archive = ArchiveStore::open(archive_dir.path()).expect("the archive");
    assert!(matches!(
        StateMachineStore::open(durable.clone(), archive.clone(), events.clone()),
        Err(StoreError::Corrupt { .. })
    ));
    // Well-formed metadata whose data is missing, then garbage.
    let meta = openraft::SnapshotMeta::<u64, NodeInfo>::default();
    let record = codec::encode("meta", &meta).expect("encode");
    snapshots.insert(b"meta", record).expect("insert metadata");
    assert!(matches!(
        StateMachineStore::open(durable.clone(), archive.clone(), events.clone()),
        Err(StoreError::Corrupt { .. })
    ));
    snapshots
        .insert(b"data", vec![1, 7])
        .expect("insert garbage");
    assert!(matches!(
        StateMachineStore::open(durable.clone(), archive.clone(), events.clone()),
        Err(StoreError::Corrupt { .. })
    ));
    // A snapshot file, which is read before the tree: garbage metadata, then data.
    let snapshot_file = dir.path().join("gavel-snapshot");
    let mut file = 3u64.to_le_bytes().to_vec();
    file.extend_from_slice(&[1, 0, 0]);
    std::fs::write(&snapshot_file, &file).expect("write a snapshot file");
    assert!(matches!(
        StateMachineStore::open(durable.clone(), archive.clone(), events.clone()),
        Err(StoreError::Corrupt { .. })
    ));
    let meta_record = codec::encode("meta", &meta).expect("encode");
    let mut file = (meta_record.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&meta_record);
    file.extend_from_slice(&[1, 7]);
    std::fs::write(&snapshot_file, &file).expect("write a snapshot file");
    assert!(matches!(
        StateMachineStore::open(durable.clone(), archive, events),
        Err(StoreError::Corrupt { .. })
    ));
}

/// Sequential and concurrent writes, for counting fdatasync calls under strace:
/// `strace -f -c -e trace=fdatasync,sync_file_range <test binary> durability_workload`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durability_workload() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let node = Arc::new(start(dir.path()).await);
    let first = node.raft.metrics().borrow().last_log_index.unwrap_or(0);
    for index in 0..100u64 {
        write(&node, index, register(&format!("seq-{index}"))).await;
    }
    let writers: Vec<_> = (0..100u64)
        .map(|index| {
            let node = node.clone();
            tokio::spawn(async move {
                write(&node, 1000 + index, register(&format!("par-{index}"))).await
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("a writer");
    }
    let last = node.raft.metrics().borrow().last_log_index.unwrap_or(0);
    assert_eq!(last - first, 200);
    assert_eq!(node.state.read().kernel.bidders.len(), 200);
    let node = Arc::try_unwrap(node).unwrap_or_else(|_| panic!("writers hold no node"));
    node.shutdown().await.expect("shutdown");
}

/// Auctions a `Command::Archive` takes out of the state are on the node's archive, stay
/// there across a restart from the snapshot, and reach a node that installs the snapshot.
#[tokio::test]
async fn archived_auctions_reach_the_archive_and_travel_in_snapshots() {
    use openraft::storage::RaftStateMachine;

    let dir = tempfile::tempdir().expect("a temp dir");
    let node = start(dir.path()).await;
    let archived = archive_two_of_three_lots(&node).await;
    assert_eq!(
        archived.data.results[0],
        Ok(Outcome::Archived { auctions: 2 }),
        "lot-2 is still open"
    );
    {
        let state = node.state.read();
        assert_eq!(
            state.kernel.auctions.keys().collect::<Vec<_>>(),
            vec!["lot-2"]
        );
    }
    let archived_lot = node.archive.get("lot-0").expect("read the archive");
    assert_eq!(
        archived_lot.map(|auction| auction.phase),
        Some(gavel_kernel::Phase::Terminated)
    );
    node.raft.trigger().snapshot().await.expect("trigger");
    node.raft
        .wait(WAIT)
        .snapshot(archived.log_id, "snapshot built")
        .await
        .expect("the snapshot");
    let snapshot = node
        .raft
        .get_snapshot()
        .await
        .expect("get the snapshot")
        .expect("a snapshot");
    node.shutdown().await.expect("shutdown");

    // Restarted: the state from the snapshot has no archived auction, the archive has both.
    let node = open(options(dir.path())).await.expect("reopen");
    assert!(!node.state.read().kernel.auctions.contains_key("lot-1"));
    assert!(node.archive.contains("lot-1").expect("read the archive"));
    node.shutdown().await.expect("shutdown");

    // Another node that installs the snapshot gets the archived records with it.
    let other = tempfile::tempdir().expect("a temp dir");
    let durable = Arc::new(Durable::open(&other.path().join("raft")).expect("open sled"));
    let (events, _) = tokio::sync::broadcast::channel(1);
    let archive = ArchiveStore::open(&other.path().join("archive")).expect("the archive");
    let (mut machine, state) =
        StateMachineStore::open(durable, archive.clone(), events).expect("open the state machine");
    machine
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .expect("install the snapshot");
    assert_eq!(state.read().kernel.auctions.len(), 1);
    assert_eq!(archive.len(), 2);
    assert!(archive.get("lot-1").expect("read").is_some());
}

/// `Command::PruneArchive` drops archived auctions that closed before the command's time
/// less the retention, oldest first, and keeps the rest; the pruned ones read as unknown.
#[tokio::test]
async fn prune_archive_drops_only_auctions_closed_before_the_retention() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let node = start(dir.path()).await;
    archive_two_of_three_lots(&node).await;
    assert_eq!(node.archive.len(), 2);
    assert_eq!(
        node.archive.oldest_closed_at_ms().expect("read"),
        Some(NOW_MS + 10)
    );

    let pruned = write(&node, 111, Command::PruneArchive { retention_ms: 100 }).await;
    assert_eq!(
        pruned.data.results[0],
        Ok(Outcome::ArchivePruned {
            closed_before_ms: NOW_MS + 11
        })
    );
    assert!(node.archive.get("lot-0").expect("read").is_none());
    assert!(node.archive.get("lot-1").expect("read").is_some());
    assert_eq!(
        node.archive.oldest_closed_at_ms().expect("read"),
        Some(NOW_MS + 11)
    );
    assert!(
        node.state.read().kernel.auctions.contains_key("lot-2"),
        "the live state is untouched"
    );

    write(&node, 1_000, Command::PruneArchive { retention_ms: 100 }).await;
    assert!(node.archive.is_empty());
    assert_eq!(node.archive.oldest_closed_at_ms().expect("read"), None);
    node.shutdown().await.expect("shutdown");

    // Restarted: the pruned auctions stay pruned.
    let node = open(options(dir.path())).await.expect("reopen");
    assert!(node.archive.is_empty());
    node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_proposal_of_several_commands_answers_each_in_order_and_survives_restart() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let node = start(dir.path()).await;
    let mut events = node.subscribe();
    let proposal = Proposal {
        envelopes: std::sync::Arc::from(vec![
            envelope(1, register("alice")),
            envelope(2, register("alice")),
            envelope(3, register("bob")),
            envelope(4, create_auction("lot-1", 10)),
        ]),
    };
    let written = node
        .raft
        .client_write(proposal)
        .await
        .expect("the proposal commits");
    assert_eq!(
        written.data.results,
        vec![
            Ok(Outcome::BidderRegistered),
            Err(Rejection::BidderExists),
            Ok(Outcome::BidderRegistered),
            Ok(Outcome::AuctionCreated { created: true }),
        ]
    );
    // The entry's events are published once, under the entry's index.
    let published = events.recv().await.expect("an event batch");
    assert_eq!(published.log_index, written.log_id.index);
    assert!(published
        .events
        .iter()
        .any(|event| event.auction_id == "lot-1"));
    node.shutdown().await.expect("shut down");

    // Restarted on its directory, the node re-applies the entry: every command of it.
    let node = open(options(dir.path())).await.expect("reopen");
    {
        let state = node.state.read();
        assert!(state.kernel.bidders.contains_key("alice"));
        assert!(state.kernel.bidders.contains_key("bob"));
        assert!(state.kernel.auctions.contains_key("lot-1"));
        assert_eq!(state.last_applied_index, written.log_id.index);
    }
    node.shutdown().await.expect("shut down");
}

/// The storage probe writes its record durably to both databases of a healthy node.
#[tokio::test]
async fn the_storage_probe_writes_both_databases() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let node = start(dir.path()).await;
    node.probe_storage().await.expect("a healthy node's probe");
    let stamp = node
        .db
        .open_tree("storage_probe")
        .expect("the probe tree")
        .get("last")
        .expect("read the probe")
        .expect("the probe record");
    assert_eq!(stamp.len(), 8);
    assert!(u64::from_be_bytes(stamp.as_ref().try_into().expect("8 bytes")) > NOW_MS);
    node.shutdown().await.expect("shutdown");
}

/// A snapshot whose state breaks a kernel invariant (here a sold auction without a
/// winner) is refused: nothing is installed, stored or put in the archive, and the node
/// keeps the state it had.
#[tokio::test]
async fn a_snapshot_that_breaks_a_kernel_invariant_is_not_installed() {
    use openraft::storage::RaftStateMachine;

    let mut kernel = State::default();
    let created = gavel_kernel::apply(&mut kernel, &envelope(0, create_auction("lot-1", 10)));
    assert!(created.result.is_ok(), "{:?}", created.result);
    let auction = kernel.auctions.get_mut("lot-1").expect("created");
    auction.phase = gavel_kernel::Phase::Sold;
    auction.deadline_ms = None;
    auction.closed_at_ms = Some(NOW_MS);
    assert!(gavel_kernel::invariants::check_state(&kernel).is_err());

    let last_applied = Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), 9));
    let membership = StoredMembership::default();
    let ledger = gavel_kernel::ExchangeLedger::default();
    let data = snapshots::snapshot_data(&kernel, &last_applied, &membership, &[], &ledger)
        .expect("encode the snapshot");
    let meta = openraft::SnapshotMeta {
        last_log_id: last_applied,
        last_membership: membership,
        snapshot_id: "broken".to_string(),
    };

    let dir = tempfile::tempdir().expect("a temp dir");
    let durable = Arc::new(Durable::open(&dir.path().join("raft")).expect("open sled"));
    let (events, _) = tokio::sync::broadcast::channel(1);
    let archive = ArchiveStore::open(&dir.path().join("archive")).expect("the archive");
    let (mut machine, state) =
        StateMachineStore::open(durable, archive.clone(), events).expect("open the state machine");
    let refused = machine
        .install_snapshot(&meta, Box::new(Cursor::new(data)))
        .await
        .expect_err("a broken state is refused");
    let message = refused.to_string();
    assert!(
        message.contains("breaks a kernel invariant") && message.contains("lot-1"),
        "{message}"
    );
    assert!(state.read().kernel.auctions.is_empty());
    assert_eq!(state.read().last_applied, None);
    assert!(machine
        .get_current_snapshot()
        .await
        .expect("read the snapshot")
        .is_none());
    assert_eq!(archive.len(), 0);
}

/// A leader that restarts does not take up its old term again: it comes back a follower
/// and leads only after winning a new election, so it never answers as the leader of a
/// term the rest of the cluster may have left while it was down.
#[tokio::test]
async fn a_restarted_leader_comes_back_a_follower_and_leads_only_in_a_new_term() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let node = start(dir.path()).await;
    write(&node, 0, register("alice")).await;
    let old_term = node.raft.metrics().borrow().current_term;
    node.shutdown().await.expect("shutdown");

    let node = open(options(dir.path())).await.expect("reopen");
    let metrics = node.raft.metrics().borrow().clone();
    assert_ne!(metrics.state, openraft::ServerState::Leader, "{metrics:?}");
    assert_eq!(metrics.current_leader, None, "{metrics:?}");
    node.raft
        .wait(WAIT)
        .current_leader(1, "node 1 leads after an election")
        .await
        .expect("a leader");
    let new_term = node.raft.metrics().borrow().current_term;
    assert!(new_term > old_term, "term {old_term} then {new_term}");
    node.shutdown().await.expect("shutdown");
}

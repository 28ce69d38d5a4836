//! Every node keeps every result. A 3-voter cluster closes and archives a few thousand
//! sales, snapshotting often, so that its log no longer starts at the beginning; then a
//! standby joins through `node add`. It catches up by snapshot, which carries only the
//! newest archived records, and fetches the others from a peer in chunks of
//! `archive.chunk_auctions` (small here). `node add` answers once that is done: the
//! standby answers every old result at once, its archive holds what the leader's does,
//! and a backup taken from it restores into a new cluster that answers them all.

use gavel_testkit as common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{try_control, Cluster};
use common::restore::{gavel, UpProcess};
use common::{auction_spec, request, wait_until, Node, ADMIN_TOKEN};
use serde_json::{json, Value};

/// Closed sales the cluster archives before the standby joins (plus one sold with bids).
const TERMINATED_SALES: usize = 4_000;
/// HTTP clients creating and closing them.
const WORKERS: usize = 8;
/// Records per archive chunk: small, so the catch-up takes many chunks.
const CHUNK_AUCTIONS: u32 = 64;

fn create_and_terminate(control_url: &str, worker: usize) {
    for number in (worker..TERMINATED_SALES).step_by(WORKERS) {
        let id = format!("t-{number:05}");
        let (status, body) = request(
            "POST",
            &format!("{control_url}/control/v1/auctions"),
            Some(ADMIN_TOKEN),
            Some(auction_spec(&id, 600_000, 60_000)),
        );
        assert_eq!(status, 201, "create {id}: {body}");
        let (status, body) = request(
            "POST",
            &format!("{control_url}/control/v1/auctions/{id}/terminate"),
            Some(ADMIN_TOKEN),
            Some(json!({"reason": "withdrawn"})),
        );
        assert_eq!(status, 200, "terminate {id}: {body}");
    }
}

fn all_ids() -> Vec<String> {
    let mut ids: Vec<String> = (0..TERMINATED_SALES)
        .map(|number| format!("t-{number:05}"))
        .collect();
    ids.push("sold-1".to_string());
    ids
}

/// The ids whose result `control_url` does not answer 200 with the closed phase.
fn unanswered(control_url: &str, ids: &[String]) -> Vec<String> {
    ids.iter()
        .filter(|id| {
            let (status, body) = request(
                "GET",
                &format!("{control_url}/control/v1/auctions/{id}/result"),
                Some(ADMIN_TOKEN),
                None,
            );
            status != 200 || !matches!(body["phase"].as_str(), Some("terminated" | "sold"))
        })
        .cloned()
        .collect()
}

fn result(control_url: &str, auction_id: &str) -> Value {
    let (status, body) = request(
        "GET",
        &format!("{control_url}/control/v1/auctions/{auction_id}/result"),
        Some(ADMIN_TOKEN),
        None,
    );
    assert_eq!(status, 200, "{auction_id}: {body}");
    body
}

/// Port bases for the restored cluster.
fn free_port_bases() -> (u16, u16, u16) {
    common::restore::free_port_bases(3, 32_700)
}

/// One auction sold to `bo` after two bids, so one archived result has a bid history.
fn sell_one(leader: &Node) {
    for bidder in ["ada", "bo"] {
        leader.register_bidder(bidder);
    }
    leader.create_auction(auction_spec("sold-1", 1_500, 1_000));
    for bidder in ["ada", "bo"] {
        leader.qualify("sold-1", bidder);
    }
    let (ada, bo) = (leader.login("ada"), leader.login("bo"));
    assert_eq!(leader.bid(&ada, "sold-1", 1_000_000, "s-1").0, 201);
    assert_eq!(leader.bid(&bo, "sold-1", 1_010_000, "s-2").0, 201);
}

/// Adds node 5 through `node add`; answers the joiner and how long the add took.
fn add_standby(cluster: &Cluster, leader: u64, dir: &Path) -> (Node, Duration) {
    let (mut joiner, joiner_peer) = cluster.configure_joiner(&dir.join("node-5"), 5);
    joiner.spawn_without_waiting();
    let add = json!({
        "node_id": 5, "name": "node-5", "peer": joiner_peer,
        "public_url": joiner.public_url, "control_url": joiner.control_url,
    });
    let started = Instant::now();
    let mut added = (0, Value::Null);
    wait_until(Duration::from_secs(60), || {
        // The node answers once the standby holds everything (up to two minutes).
        added = cluster.node(leader).control_waiting(
            "POST",
            "/control/v1/cluster/nodes",
            Some(add.clone()),
            Duration::from_secs(150),
        );
        added.0 == 201
    });
    assert_eq!(added.0, 201, "node add: {}\n{}", added.1, joiner.log_tail());
    (joiner, started.elapsed())
}

#[test]
fn a_standby_added_after_thousands_of_archived_sales_answers_every_result_and_backs_them_up() {
    let dir = common::temp_dir("archive-catch-up");
    let extra = format!("[archive]\nchunk_auctions = {CHUNK_AUCTIONS}\n");
    let cluster =
        Cluster::start_with_raft(dir.path(), 3, 0, &extra, "snapshot_every_entries = 100");
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let leader_node = cluster.node(leader);
    let started = Instant::now();
    sell_one(leader_node);
    let control_url = leader_node.control_url.clone();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let url = control_url.clone();
            std::thread::spawn(move || create_and_terminate(&url, worker))
        })
        .collect();
    for worker in workers {
        worker.join().expect("a worker");
    }
    eprintln!("{TERMINATED_SALES} sales closed in {:?}", started.elapsed());

    // The janitor archives every one, and the log is purged well past its start (more
    // entries than a snapshot keeps behind it), so a new node catches up by snapshot.
    let janitor = || try_control(leader_node, "/control/v1/janitor").unwrap_or(Value::Null);
    let archived = wait_until(Duration::from_secs(60), || {
        let report = janitor();
        report["archive_size"].as_u64() == Some(TERMINATED_SALES as u64 + 1)
            && report["state_auctions"].as_u64() == Some(0)
    });
    assert!(archived, "every sale archived: {}", janitor());
    let purged = wait_until(Duration::from_secs(30), || {
        janitor()["last_purged_index"].as_u64().unwrap_or(0) > 0
    });
    assert!(purged, "the leader's log was purged: {}", janitor());
    eprintln!("archived and purged after {:?}", started.elapsed());

    // `node add` answers once the standby holds everything, archive included.
    let (joiner, took) = add_standby(&cluster, leader, dir.path());
    eprintln!("node add answered after {took:?}");
    let log = joiner.log_text();
    assert!(
        log.contains("snapshot installed"),
        "the standby caught up by snapshot: {}",
        joiner.log_tail()
    );
    eprintln!(
        "archive catch-up on the standby: {:?}",
        log.lines()
            .filter(|line| line.contains("archive catch-up"))
            .collect::<Vec<_>>()
    );
    let ids = all_ids();
    let missing = unanswered(&joiner.control_url, &ids);
    assert!(
        missing.is_empty(),
        "{} of {} archived results unanswered by the new standby, e.g. {:?}",
        missing.len(),
        ids.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(
        result(&joiner.control_url, "sold-1"),
        result(&leader_node.control_url, "sold-1")
    );
    let status = |node: &Node| try_control(node, "/control/v1/node").unwrap_or(Value::Null);
    let (mine, leaders) = (status(&joiner), status(leader_node));
    assert_eq!(mine["archive_catching_up"], false, "{mine}");
    assert_eq!(
        mine["archive_auctions"].as_u64(),
        Some(ids.len() as u64),
        "{mine}"
    );
    assert_eq!(
        mine["archive_digest"], leaders["archive_digest"],
        "{mine} {leaders}"
    );

    // A backup taken from the standby holds every archived sale ...
    let (code, _) = request(
        "GET",
        &format!("{}/control/v1/backup", joiner.control_url),
        None,
        None,
    );
    assert_eq!(code, 401, "a backup needs the admin token");
    let bytes = {
        let response = ureq::get(&format!("{}/control/v1/backup", joiner.control_url))
            .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
            .timeout(Duration::from_secs(30))
            .call()
            .expect("the standby's backup");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).expect("read it");
        bytes
    };
    let file = dir.path().join("standby.backup");
    std::fs::write(&file, &bytes).expect("write the backup");
    drop(joiner);
    drop(cluster);

    // ... and a new cluster restored from it answers them all.
    let (public, control, peer) = free_port_bases();
    let definition = dir.path().join("restored-definition.toml");
    common::restore::write_definition(&definition, (public, control, peer));
    let restored = dir.path().join("restored");
    let restore = gavel(&[
        "cluster",
        "restore",
        "--from",
        file.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
        "--definition",
        definition.to_str().unwrap(),
        "--admin-token",
        ADMIN_TOKEN,
    ]);
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let up = UpProcess(
        Command::new(env!("CARGO_BIN_EXE_gavel"))
            .args(["cluster", "up", "--data-dir", restored.to_str().unwrap()])
            .arg("--definition")
            .arg(&definition)
            .env_remove("GAVEL_ADMIN_TOKEN")
            .stdout(std::fs::File::create(dir.path().join("up.log")).expect("log"))
            .stderr(std::fs::File::create(dir.path().join("up.err")).expect("log"))
            .spawn()
            .expect("cluster up"),
    );
    let restored_url = format!("http://127.0.0.1:{}", control + 2);
    let ready = wait_until(Duration::from_secs(30), || {
        ureq::get(&format!("{restored_url}/readyz")).call().is_ok()
    });
    assert!(
        ready,
        "the restored cluster came up: {}",
        std::fs::read_to_string(dir.path().join("up.err")).unwrap_or_default()
    );
    let missing = unanswered(&restored_url, &ids);
    assert!(
        missing.is_empty(),
        "{} of {} archived results missing after the restore, e.g. {:?}",
        missing.len(),
        ids.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(
        result(&restored_url, "sold-1")["bids"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    drop(up);
    eprintln!("done after {:?}", started.elapsed());
}

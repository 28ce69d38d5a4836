//! Backup and restore with real processes: `gavel ctl backup` against a running 3-voter
//! cluster (once while bidders bid, once after), `gavel cluster restore` into a new
//! directory, `gavel cluster up` on it; the new cluster must show every auction — live,
//! closed and archived — with the same result and bid history, take bids from the old
//! sessions where they left off, and refuse altered backup files.

use gavel_testkit as common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::bidders::{BidderPlan, Outcome};
use common::cluster::{try_control, Cluster};
use common::restore::{gavel, UpProcess};
use common::wait_until;
use common::{auction_spec, request, ADMIN_TOKEN};
use serde_json::{json, Value};

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn backup(control_url: &str, out: &Path) -> Output {
    gavel(&[
        "ctl",
        "--control",
        control_url,
        "--token",
        ADMIN_TOKEN,
        "backup",
        "--out",
        out.to_str().unwrap(),
    ])
}

fn free_port_bases(count: u16) -> (u16, u16, u16) {
    common::restore::free_port_bases(count, 32_100)
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

/// What must be identical: phase, winner, price and every bid with its hash chain link.
fn comparable(result: &Value) -> Value {
    json!({
        "phase": result["phase"],
        "winner_bidder_id": result["winner_bidder_id"],
        "final_price": result["final_price"],
        "closed_at_ms": result["closed_at_ms"],
        "bids": result["bids"],
        "chain_verified": result["chain_verified"],
    })
}

#[test]
fn a_backup_restores_into_a_new_cluster_with_identical_results_and_histories() {
    let dir = tempfile::Builder::new()
        .prefix("backup")
        .tempdir()
        .expect("temp dir");
    let cluster = Cluster::start(dir.path(), 3, 0);
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let node = cluster.node(leader);
    for bidder in ["ada", "bo", "cy"] {
        node.register_bidder(bidder);
    }
    // lot-a: sold within seconds, then archived by the janitor; lot-b: open, bid on
    // during the first backup; lot-c: terminated.
    node.create_auction(auction_spec("lot-a", 1_500, 1_000));
    node.create_auction(auction_spec("lot-b", 120_000, 60_000));
    node.create_auction(auction_spec("lot-c", 120_000, 60_000));
    for bidder in ["ada", "bo", "cy"] {
        node.qualify("lot-a", bidder);
        node.qualify("lot-b", bidder);
    }
    let ada = node.login("ada");
    let bo = node.login("bo");
    assert_eq!(node.bid(&ada, "lot-a", 1_000_000, "a-1").0, 201);
    assert_eq!(node.bid(&bo, "lot-a", 1_010_000, "a-2").0, 201);
    let (status, body) = node.control(
        "POST",
        "/control/v1/auctions/lot-c/terminate",
        Some(json!({"reason": "withdrawn by the seller"})),
    );
    assert_eq!(status, 200, "{body}");

    // Backup while bidders bid on lot-b.
    let cy = node.login("cy");
    let plans: Vec<BidderPlan> = [("ada", &ada), ("cy", &cy)]
        .iter()
        .map(|(bidder_id, token)| BidderPlan {
            bidder_id: bidder_id.to_string(),
            token: token.to_string(),
            auction_id: "lot-b".to_string(),
            public_urls: cluster.nodes.iter().map(|n| n.public_url.clone()).collect(),
            max_bids: 200,
            run_for: Duration::from_secs(4),
        })
        .collect();
    let load = std::thread::spawn(move || common::bidders::run(plans));
    std::thread::sleep(Duration::from_millis(1_500));
    let during = dir.path().join("during.backup");
    let output = backup(&cluster.node(follower).control_url, &during);
    assert!(
        output.status.success(),
        "backup under load: {}",
        text(&output)
    );
    assert!(text(&output).contains("log index"), "{}", text(&output));
    let history = load.join().expect("bidders");
    assert!(history
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Ok { .. })));
    let again = backup(&cluster.node(follower).control_url, &during);
    assert_eq!(
        again.status.code(),
        Some(2),
        "no overwrite: {}",
        text(&again)
    );

    // lot-a closes and is archived; then the backup the new cluster is built from.
    let archived = wait_until(Duration::from_secs(20), || {
        try_control(node, "/control/v1/janitor")
            .is_some_and(|report| report["auctions_archived"].as_u64().unwrap_or(0) >= 1)
            && !node
                .control("GET", "/control/v1/auctions", None)
                .1
                .as_array()
                .is_some_and(|all| all.iter().any(|auction| auction["id"] == "lot-a"))
    });
    assert!(
        archived,
        "lot-a was archived: {}",
        node.control("GET", "/control/v1/janitor", None).1
    );
    let file = dir.path().join("final.backup");
    let output = backup(&cluster.node(follower).control_url, &file);
    assert!(output.status.success(), "{}", text(&output));
    let originals: Vec<(String, Value)> = ["lot-a", "lot-b", "lot-c"]
        .iter()
        .map(|id| (id.to_string(), result(&node.control_url, id)))
        .collect();
    assert_eq!(originals[0].1["phase"], "sold");
    assert!(originals[1].1["bids"].as_array().unwrap().len() >= 2);

    // A damaged copy is refused and creates nothing.
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 0x01;
    let damaged = dir.path().join("damaged.backup");
    std::fs::write(&damaged, &bytes).unwrap();
    let refused_dir = dir.path().join("never");
    let output = gavel(&[
        "cluster",
        "restore",
        "--from",
        damaged.to_str().unwrap(),
        "--data-dir",
        refused_dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("altered or damaged"),
        "{}",
        text(&output)
    );
    assert!(
        !refused_dir.exists(),
        "nothing written for a damaged backup"
    );

    // Restore into a new directory and start it.
    let (public, control, peer) = free_port_bases(3);
    let definition = dir.path().join("restored-definition.toml");
    common::restore::write_definition(&definition, (public, control, peer));
    let restored: PathBuf = dir.path().join("restored");
    let restore_args = [
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
    ];
    let output = gavel(&restore_args);
    assert!(output.status.success(), "{}", text(&output));
    let output = gavel(&restore_args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a second restore into it is refused: {}",
        text(&output)
    );
    drop(cluster);

    let up = UpProcess(
        Command::new(env!("CARGO_BIN_EXE_gavel"))
            .args(["cluster", "up", "--data-dir", restored.to_str().unwrap()])
            .arg("--definition")
            .arg(&definition)
            .env_remove("GAVEL_ADMIN_TOKEN")
            .stdout(std::fs::File::create(dir.path().join("up.log")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("up.err")).unwrap())
            .spawn()
            .expect("cluster up"),
    );
    let control_url = format!("http://127.0.0.1:{}", control + 2);
    let public_url = format!("http://127.0.0.1:{}", public + 3);
    let ready = wait_until(Duration::from_secs(30), || {
        ureq::get(&format!("{control_url}/readyz")).call().is_ok()
    });
    assert!(
        ready,
        "the restored cluster came up: {}",
        std::fs::read_to_string(dir.path().join("up.err")).unwrap_or_default()
    );
    for (auction_id, original) in &originals {
        let same = wait_until(Duration::from_secs(10), || {
            comparable(&result(&control_url, auction_id)) == comparable(original)
        });
        assert!(
            same,
            "{auction_id}: restored {} against original {}",
            comparable(&result(&control_url, auction_id)),
            comparable(original)
        );
    }
    // The bidders' sessions came along: bidding goes on where it left off.
    let top = originals[1].1["bids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|bid| bid["amount"].as_u64())
        .max()
        .unwrap();
    let (status, receipt) = request(
        "POST",
        &format!("{public_url}/api/v1/auctions/lot-b/bids"),
        Some(&bo),
        Some(json!({"amount": top + 10_000, "request_id": "after-restore"})),
    );
    assert_eq!(status, 201, "{receipt}");
    let count = originals[1].1["bids"].as_array().unwrap().len() as u64;
    assert_eq!(receipt["seq"].as_u64(), Some(count + 1), "{receipt}");

    // `gavel cluster down` stops it from another process: `cluster up` ends cleanly, every
    // node with it, and their ports are free again; a second `down` finds nothing to stop.
    let mut up = up;
    let pid_file = restored.join("cluster-up.pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim(),
        up.0.id().to_string(),
        "cluster up records its pid"
    );
    let down = ["cluster", "down", "--data-dir", restored.to_str().unwrap()];
    let output = gavel(&down);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("is stopped"), "{}", text(&output));
    let status = up.0.try_wait().expect("cluster up's status");
    assert!(
        status.is_some_and(|status| status.success()),
        "cluster up ended cleanly: {status:?}"
    );
    assert!(!pid_file.exists(), "the pid file is removed");
    for port in (1..=3).flat_map(|k| [public + k, control + k, peer + k]) {
        let free = wait_until(Duration::from_secs(5), || {
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        });
        assert!(free, "port {port} is free once the cluster is down");
    }
    let output = gavel(&down);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("no cluster runs"),
        "{}",
        text(&output)
    );
    // A pid file naming a process that is not `cluster up` stops nothing.
    std::fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
    let output = gavel(&down);
    assert!(
        text(&output).contains("no cluster runs"),
        "{}",
        text(&output)
    );
    std::fs::write(&pid_file, "not a pid\n").unwrap();
    let output = gavel(&down);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

/// A sample of a Prometheus exposition: the first line of `name` with no labels.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(&format!("{name} ")))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[test]
fn the_leader_writes_verified_backups_on_schedule_and_keeps_the_newest() {
    let dir = tempfile::Builder::new()
        .prefix("scheduled-backups")
        .tempdir()
        .expect("temp dir");
    let backups = dir.path().join("backups");
    let extra = format!(
        "[backup]\ndir = {:?}\nevery_ms = 1000\nkeep = 2\n",
        backups.display().to_string()
    );
    let cluster = Cluster::start_with(dir.path(), 3, 0, &extra);
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let node = cluster.node(leader);
    node.create_auction(auction_spec("lot-s", 120_000, 60_000));
    node.register_bidder("ada");
    node.qualify("lot-s", "ada");
    let scrape = |url: &str| {
        ureq::get(&format!("{url}/metrics"))
            .call()
            .expect("GET /metrics")
            .into_string()
            .expect("text")
    };
    let written = wait_until(Duration::from_secs(30), || {
        metric(&scrape(&node.control_url), "gavel_backups_written_total")
            .is_some_and(|written| written >= 3.0)
    });
    let leader_metrics = scrape(&node.control_url);
    assert!(
        written,
        "the leader wrote fewer than 3 backups in 30 s:\n{leader_metrics}"
    );
    assert_eq!(
        metric(&leader_metrics, "gavel_backup_failures_total"),
        Some(0.0),
        "{leader_metrics}"
    );
    assert!(metric(&leader_metrics, "gavel_last_backup_at_ms").is_some_and(|at| at > 0.0));

    // Only the newest two are kept, every one the leader's and every one restorable.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&backups)
        .expect("the backup directory")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "backup")
        })
        .collect();
    files.sort();
    assert!(
        (1..=3).contains(&files.len()),
        "keep = 2 (one more may be on its way): {files:?}"
    );
    for file in &files {
        let bytes = std::fs::read(file).expect("a backup");
        let header = gavel::replication::backup::read_header(&bytes).expect("its header");
        assert_eq!(header.node_id, leader, "{}", file.display());
        assert!(
            gavel::replication::backup::read_backup(&bytes).is_ok(),
            "{} does not check",
            file.display()
        );
    }
    for follower in cluster
        .nodes
        .iter()
        .filter(|other| other.control_url != node.control_url)
    {
        let follower_metrics = scrape(&follower.control_url);
        assert_eq!(
            metric(&follower_metrics, "gavel_backups_written_total"),
            Some(0.0),
            "a follower wrote a backup:\n{follower_metrics}"
        );
    }
    let newest = files.last().expect("a backup");
    let (public, control, peer) = free_port_bases(3);
    let definition = dir.path().join("definition.toml");
    common::restore::write_definition(&definition, (public, control, peer));
    let restored = dir.path().join("restored");
    let output = gavel(&[
        "cluster",
        "restore",
        "--from",
        newest.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
        "--definition",
        definition.to_str().unwrap(),
        "--admin-token",
        ADMIN_TOKEN,
    ]);
    assert!(output.status.success(), "{}", text(&output));
}

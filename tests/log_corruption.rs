//! A real node's Raft log on disk, damaged: a byte flipped in a record the node made
//! durable stops the next start with exit status 65 and a message naming the segment file
//! and the byte offset; `gavel node reset` moves the node's state aside, after which the
//! node starts again and waits to rejoin as a standby.

use gavel_testkit as common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{try_control, Cluster};
use common::Node;

/// The exit status of a node whose Raft log is damaged (README, "A damaged Raft log").
const DAMAGED_LOG_EXIT_CODE: i32 = 65;
/// Where a segment's first record starts: after the segment's head.
const FIRST_RECORD_OFFSET: u64 = 4096;

/// Flips one byte of the payload of the first record in the node's first log segment.
fn flip_a_byte_of_the_first_record(data_dir: &Path) -> PathBuf {
    let segment = first_segment(data_dir);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&segment)
        .expect("open the segment");
    let mut byte = [0u8; 1];
    let at = FIRST_RECORD_OFFSET + 16 + 3;
    file.read_exact_at(&mut byte, at).expect("read");
    file.write_all_at(&[byte[0] ^ 0x20], at).expect("flip");
    file.sync_all().expect("sync");
    segment
}

/// The node's first Raft log segment file.
fn first_segment(data_dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(data_dir.join("raft/wal"))
        .expect("the log's directory")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
        .collect();
    segments.sort();
    segments.into_iter().next().expect("a log segment")
}

/// Waits for the node's process to exit and returns its exit code.
fn exit_code_within(node: &mut Node, limit: Duration) -> Option<i32> {
    let child = node.child.as_mut().expect("started");
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("wait") {
            node.child = None;
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn gavel_node_reset(data_dir: &Path, yes: bool) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gavel"));
    command.args(["node", "reset", "--data-dir"]).arg(data_dir);
    if yes {
        command.arg("--yes");
    }
    let output = command.output().expect("run gavel node reset");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn a_flipped_byte_in_a_synced_record_stops_the_node_until_it_is_reset() {
    let dir = common::temp_dir("log-damage");
    let data_dir = dir.path().join("data");
    let mut node = common::start_with(dir.path(), "");
    for number in 0..20 {
        node.register_bidder(&format!("bidder-{number}"));
    }
    node.stop_with(libc::SIGTERM);

    eprintln!("log_corruption: fault: one byte of the first log record's payload flipped");
    let segment = flip_a_byte_of_the_first_record(&data_dir);

    node.spawn_without_waiting();
    let code = exit_code_within(&mut node, Duration::from_secs(20));
    let log = node.log_tail();
    assert_eq!(code, Some(DAMAGED_LOG_EXIT_CODE), "{log}");
    assert!(
        log.contains(&segment.display().to_string())
            && log.contains(&format!("at byte {FIRST_RECORD_OFFSET}")),
        "the error names the file and offset: {log}"
    );
    let said = log.lines().filter(|line| line.starts_with("gavel:"));
    eprintln!(
        "log_corruption: the node said: {}",
        said.collect::<Vec<_>>().join(" ")
    );
    // Nothing was cut: the damaged segment is still there.
    assert!(segment.is_file());

    // Without --yes the reset only says what it would do.
    let (ok, said) = gavel_node_reset(&data_dir, false);
    assert!(ok, "{said}");
    assert!(said.contains("would move"), "{said}");
    assert!(segment.is_file(), "nothing changed without --yes");

    let (ok, said) = gavel_node_reset(&data_dir, true);
    assert!(ok, "{said}");
    assert!(!data_dir.join("raft").exists());
    let aside: Vec<PathBuf> = std::fs::read_dir(&data_dir)
        .expect("data dir")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().contains("damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "{said}");
    assert!(
        aside[0].join("raft/wal").is_dir(),
        "the damaged log is kept aside"
    );
    assert!(data_dir.join("rejoin-as-standby").is_file());

    // It starts again, and waits for a leader to add it instead of forming a cluster.
    node.spawn_without_waiting();
    let healthy = common::wait_until(Duration::from_secs(20), || {
        common::try_request("GET", &format!("{}/healthz", node.control_url), None, None)
            .is_ok_and(|(status, _)| status == 200)
    });
    assert!(healthy, "{}", node.log_tail());
    assert_eq!(
        exit_code_within(&mut node, Duration::from_millis(500)),
        None
    );
    let log = node.log_tail();
    assert!(log.contains("this node was reset"), "{log}");
    node.stop_with(libc::SIGTERM);
}

/// Each node's role as the cluster view of node `ask` says.
fn roles(cluster: &Cluster, ask: u64) -> Vec<(u64, String)> {
    let view = try_control(cluster.node(ask), "/control/v1/cluster").unwrap_or_default();
    view["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|node| {
            let id = node["node_id"].as_u64().unwrap_or(0);
            (id, node["role"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// A voter shows as the leader or a follower.
fn is_voter(roles: &[(u64, String)], id: u64) -> bool {
    has_role(roles, id, "leader") || has_role(roles, id, "follower")
}

fn has_role(roles: &[(u64, String)], id: u64, role: &str) -> bool {
    roles
        .iter()
        .any(|(node, named)| *node == id && named == role)
}

#[test]
fn a_reset_voter_rejoins_its_cluster_as_a_standby() {
    let dir = common::temp_dir("log-damage-cluster");
    let mut cluster = Cluster::start(dir.path(), 3, 1);
    let leader = cluster.leader(Duration::from_secs(20)).expect("a leader");
    let victim = (1..=3).find(|&id| id != leader).expect("a follower");
    for number in 0..10 {
        cluster
            .node(leader)
            .register_bidder(&format!("bidder-{number}"));
    }
    let applied = |node: &Node| {
        try_control(node, "/control/v1/node")
            .and_then(|status| status["last_applied_index"].as_u64())
            .unwrap_or(0)
    };
    let registered_at = applied(cluster.node(leader));
    eprintln!(
        "log_corruption: fault: node {victim}'s first log record damaged while it is stopped"
    );
    cluster.node_mut(victim).stop_with(libc::SIGTERM);
    let data_dir = cluster.node(victim).dir.join("data");
    flip_a_byte_of_the_first_record(&data_dir);
    cluster.node_mut(victim).spawn_without_waiting();
    let code = exit_code_within(cluster.node_mut(victim), Duration::from_secs(20));
    assert_eq!(
        code,
        Some(DAMAGED_LOG_EXIT_CODE),
        "{}",
        cluster.node(victim).log_tail()
    );
    // Down, it is replaced as a voter by the standby and kept as a learner.
    let replaced = common::wait_until(Duration::from_secs(30), || {
        let seen = roles(&cluster, leader);
        is_voter(&seen, 4) && has_role(&seen, victim, "standby")
    });
    assert!(replaced, "{:?}", roles(&cluster, leader));

    let (ok, said) = gavel_node_reset(&data_dir, true);
    assert!(ok, "{said}");
    cluster.node_mut(victim).spawn_without_waiting();
    // The node removes its rejoin file, then logs that it rejoined: wait for both.
    let rejoined = common::wait_until(Duration::from_secs(40), || {
        !data_dir.join("rejoin-as-standby").exists()
            && cluster
                .node(victim)
                .log_text()
                .contains("rejoined the cluster as a standby")
    });
    let log = cluster.node(victim).log_tail();
    assert!(rejoined, "{log}");
    assert!(
        cluster
            .node(victim)
            .log_text()
            .contains("rejoined the cluster as a standby"),
        "{log}"
    );
    let standby = common::wait_until(Duration::from_secs(10), || {
        has_role(&roles(&cluster, leader), victim, "standby")
    });
    let views: Vec<_> = (1..=4).map(|ask| (ask, roles(&cluster, ask))).collect();
    let tails: Vec<String> = (1..=4).map(|id| cluster.node(id).log_tail()).collect();
    assert!(standby, "{views:?}\n{}", tails.join("\n-----\n"));
    // It caught up past the bidders registered before the damage.
    let caught_up = common::wait_until(Duration::from_secs(20), || {
        applied(cluster.node(victim)) >= registered_at
    });
    assert!(caught_up, "{}", cluster.node(victim).log_tail());
}

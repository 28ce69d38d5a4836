//! A real cluster of `gavel serve` processes on loopback: three voters and a standby.
//! Each test says which fault it injects: SIGKILL of the leader while bidders bid through
//! random nodes, SIGSTOP of the leader past the election timeout, rolling restarts, and a
//! restart of the whole cluster.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::cluster::{try_control, Cluster};
use common::{auction_spec, request, Node};
use serde_json::{json, Value};

fn cluster(name: &str, voters: u64, standbys: u64) -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::Builder::new()
        .prefix(name)
        .tempdir()
        .expect("temp dir");
    let cluster = Cluster::start(dir.path(), voters, standbys);
    (dir, cluster)
}

#[test]
fn every_node_answers_and_forwards_writes_to_the_leader() {
    let (_dir, cluster) = cluster("forward", 3, 1);
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    tracing_note(&format!(
        "leader {leader}, writing through follower {follower}"
    ));
    let node = cluster.node(follower);
    node.register_bidder("ada");
    node.register_bidder("bo");
    node.create_auction(auction_spec("lot-f", 30_000, 5_000));
    node.qualify("lot-f", "ada");
    node.qualify("lot-f", "bo");
    // A token issued through one node works on every other node.
    let ada = cluster.node(4).login("ada");
    let (status, receipt) = cluster.node(leader).bid(&ada, "lot-f", 1_000_000, "ada-1");
    assert_eq!(status, 201, "{receipt}");
    let bo = cluster.node(follower).login("bo");
    let (status, receipt) = cluster.node(4).bid(&bo, "lot-f", 1_010_000, "bo-1");
    assert_eq!(status, 201, "a standby forwards the bid: {receipt}");
    assert_eq!(
        receipt["auction"]["current_price"], 1_010_000,
        "and answers from its own applied state"
    );
    for node in &cluster.nodes {
        let caught_up = wait_until(Duration::from_secs(5), || {
            node.auction("lot-f")["bid_count"] == 2
        });
        assert!(
            caught_up,
            "every node serves the same auction from its own applied state"
        );
    }
    let (_, view) = cluster.node(1).control("GET", "/control/v1/cluster", None);
    let roles: BTreeMap<u64, String> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            (
                node["node_id"].as_u64().unwrap(),
                node["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(roles.get(&4).map(String::as_str), Some("standby"), "{view}");
    assert_eq!(
        roles.values().filter(|role| *role == "leader").count(),
        1,
        "{view}"
    );
}

/// Polls `condition` every 50 ms until it holds or `limit` passes.
fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    condition()
}

fn tracing_note(text: &str) {
    eprintln!("[cluster test] {text}");
}

//! Actors that stop on a panic, on a real cluster (three voters and a standby on loopback,
//! `[faults] enabled = true`): a panic in the leader's Supervisor stops that node with
//! status 70, so another voter leads and writes go through again at once; a panic in a
//! PeerLink is repaired by the Supervisor while the node runs on.

use gavel_testkit as common;

use std::time::{Duration, Instant};

use common::cluster::{try_control, Cluster};
use common::wait_until;
use serde_json::json;

const FAULTS: &str = "[faults]\nenabled = true\n";
/// The exit status of a node that cannot go on (`FATAL_EXIT_CODE`, README).
const FATAL_EXIT_STATUS: i32 = 70;
/// Longest wait for writes to go through again after the leader's Supervisor panicked.
const RESUME_LIMIT: Duration = Duration::from_secs(10);

fn note(text: &str) {
    eprintln!("[supervision] {text}");
}

// Fault: the leader's Supervisor panics. Before, Raft went on leading from that node
// while every write, forwarded to it by the followers too, failed.
#[test]
fn a_panic_in_the_leaders_supervisor_hands_leadership_on_and_writes_resume() {
    let dir = tempfile::Builder::new()
        .prefix("supervision")
        .tempdir()
        .expect("temp dir");
    let mut cluster = Cluster::start_with(dir.path(), 3, 1, FAULTS);
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.node(follower).register_bidder("before");

    note(&format!("the Supervisor of leader {leader} panics"));
    let body = json!({"actor": "supervisor"});
    let (status, answer) =
        cluster
            .node(leader)
            .control("POST", "/control/v1/faults/panic", Some(body));
    assert_eq!(status, 202, "{answer}");
    let panicked = Instant::now();

    // Writes through a follower go through again: another voter leads. Before, none did
    // within the whole wait; how soon they do is printed (the takeover benchmark measures
    // it), and bounded only by the wait, as a machine shared with builds can take seconds.
    let mut attempts = 0;
    let written = wait_until(RESUME_LIMIT, || {
        attempts += 1;
        let body = json!({"bidder_id": format!("after-{attempts}"), "name": "After", "secret": "secret-after"});
        let (status, _) = cluster
            .node(follower)
            .control("POST", "/control/v1/bidders", Some(body));
        status == 201
    });
    let resumed_ms = panicked.elapsed().as_millis();
    assert!(
        written,
        "no write went through within {} s of the panic",
        RESUME_LIMIT.as_secs()
    );
    note(&format!("writes resumed {resumed_ms} ms after the panic"));

    let exit = cluster
        .node_mut(leader)
        .wait_for_exit(Duration::from_secs(5));
    assert_eq!(
        exit.and_then(|status| status.code()),
        Some(FATAL_EXIT_STATUS),
        "the node whose Supervisor panicked exits with status 70"
    );
    let log = cluster.node(leader).log_text();
    assert!(
        log.contains("the Supervisor actor stopped"),
        "{}",
        cluster.node(leader).log_tail()
    );
    let new_leader = cluster
        .leader(Duration::from_secs(10))
        .expect("a new leader");
    assert_ne!(new_leader, leader);
}

// Fault: a PeerLink panics. The Supervisor starts it again; the node keeps running and
// goes on seeing the peer.
#[test]
fn a_panic_in_a_peer_link_is_repaired_while_the_node_runs_on() {
    let dir = tempfile::Builder::new()
        .prefix("supervision-link")
        .tempdir()
        .expect("temp dir");
    let mut cluster = Cluster::start_with(dir.path(), 3, 1, FAULTS);
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let body = json!({"actor": "peer_link", "node_id": leader});
    let (status, answer) =
        cluster
            .node(follower)
            .control("POST", "/control/v1/faults/panic", Some(body));
    assert_eq!(status, 202, "{answer}");

    let restarted = wait_until(Duration::from_secs(5), || {
        cluster
            .node(follower)
            .log_text()
            .contains("the link to a peer stopped; starting it again")
    });
    assert!(restarted, "{}", cluster.node(follower).log_tail());
    assert!(
        cluster
            .node_mut(follower)
            .wait_for_exit(Duration::from_millis(500))
            .is_none(),
        "the node runs on"
    );
    cluster
        .node(follower)
        .register_bidder("through-the-follower");
    let view = try_control(cluster.node(follower), "/control/v1/cluster").expect("view");
    assert_eq!(view["leader_id"].as_u64(), Some(leader), "{view}");

    // Bad input changes nothing: a peer_link without a node, an auction with one.
    for body in [
        json!({"actor": "peer_link"}),
        json!({"actor": "auction", "auction_id": "x", "node_id": 1}),
        json!({"actor": "nobody"}),
    ] {
        let (status, answer) =
            cluster
                .node(follower)
                .control("POST", "/control/v1/faults/panic", Some(body));
        assert_eq!(status, 422, "{answer}");
    }
}

//! A real cluster of `gavel serve` processes on loopback: three voters and a standby.
//! Each test says which fault it injects: SIGKILL of the leader while bidders bid through
//! random nodes, SIGSTOP of the leader past the election timeout, rolling restarts, and a
//! restart of the whole cluster.

use gavel_testkit as common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::auction_spec;
use common::bidders::{BidderPlan, Outcome, Record};
use common::cluster::{try_control, Cluster};
use common::wait_until;
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
/// Registers and qualifies `count` bidders through node 1 and opens their sessions.
fn setup_bidders(cluster: &Cluster, auction_id: &str, count: usize) -> Vec<(String, String)> {
    let node = cluster.node(1);
    (0..count)
        .map(|index| {
            let bidder_id = format!("bidder-{index}");
            node.register_bidder(&bidder_id);
            node.qualify(auction_id, &bidder_id);
            let token = node.login(&bidder_id);
            (bidder_id, token)
        })
        .collect()
}

fn plans(
    cluster: &Cluster,
    auction_id: &str,
    bidders: &[(String, String)],
    run_for: Duration,
) -> Vec<BidderPlan> {
    let public_urls: Vec<String> = cluster
        .nodes
        .iter()
        .map(|node| node.public_url.clone())
        .collect();
    bidders
        .iter()
        .map(|(bidder_id, token)| BidderPlan {
            bidder_id: bidder_id.clone(),
            token: token.clone(),
            auction_id: auction_id.to_string(),
            public_urls: public_urls.clone(),
            max_bids: 400,
            run_for,
        })
        .collect()
}

/// The final record of an auction, once every live node has applied the same bids.
fn converged_result(cluster: &Cluster, auction_id: &str) -> Value {
    let mut result = Value::Null;
    let agreed = wait_until(Duration::from_secs(10), || {
        let results: Vec<Value> = cluster
            .nodes
            .iter()
            .filter(|node| node.child.is_some())
            .filter_map(|node| {
                try_control(node, &format!("/control/v1/auctions/{auction_id}/result"))
            })
            .collect();
        let counts: BTreeSet<usize> = results
            .iter()
            .map(|r| r["bids"].as_array().map_or(0, Vec::len))
            .collect();
        result = results.first().cloned().unwrap_or(Value::Null);
        counts.len() == 1 && !results.is_empty()
    });
    assert!(agreed, "live nodes did not converge on the same bids");
    result
}

/// The history checks: every receipt is in the record exactly once with its seq and
/// amount; prices strictly increase; the hash chain holds.
fn check_history(history: &[Record], result: &Value) {
    let bids = result["bids"].as_array().expect("bids");
    let mut by_id: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for bid in bids {
        by_id
            .entry(bid["bid_id"].as_str().unwrap())
            .or_default()
            .push(bid);
    }
    let mut acknowledged = 0;
    for record in history {
        if let Outcome::Ok {
            bid_id,
            seq,
            amount,
        } = &record.outcome
        {
            acknowledged += 1;
            let found = by_id
                .get(bid_id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            assert_eq!(
                found.len(),
                1,
                "acknowledged bid {bid_id} ({}) is in the history exactly once",
                record.request_id
            );
            assert_eq!(
                (found[0]["seq"].as_u64(), found[0]["amount"].as_u64()),
                (Some(*seq), Some(*amount))
            );
        }
    }
    assert!(acknowledged > 0, "no bid was acknowledged at all");
    let amounts: Vec<u64> = bids
        .iter()
        .map(|bid| bid["amount"].as_u64().unwrap())
        .collect();
    assert!(
        amounts.windows(2).all(|pair| pair[0] < pair[1]),
        "prices strictly increase: {amounts:?}"
    );
    assert_eq!(result["chain_verified"], true);
    let unknown = history
        .iter()
        .filter(|record| matches!(record.outcome, Outcome::Unknown))
        .count();
    tracing_note(&format!(
        "{} requests, {acknowledged} acknowledged, {} bids recorded, {unknown} unknown",
        history.len(),
        bids.len()
    ));
}

fn roles(cluster: &Cluster, ask: u64) -> BTreeMap<u64, String> {
    let Some(view) = try_control(cluster.node(ask), "/control/v1/cluster") else {
        return BTreeMap::new();
    };
    view["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .map(|node| {
                    (
                        node["node_id"].as_u64().unwrap_or(0),
                        node["role"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn killing_the_leader_under_load_loses_no_acknowledged_bid_and_promotes_the_standby() {
    let (_dir, mut cluster) = cluster("failover", 3, 1);
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    cluster
        .node(1)
        .create_auction(auction_spec("lot-k", 120_000, 60_000));
    let bidders = setup_bidders(&cluster, "lot-k", 4);
    let plans = plans(&cluster, "lot-k", &bidders, Duration::from_secs(6));
    let load = std::thread::spawn(move || common::bidders::run(plans));

    std::thread::sleep(Duration::from_millis(1_500));
    tracing_note(&format!("SIGKILL the leader, node {leader}"));
    cluster.node_mut(leader).kill();
    let new_leader = cluster
        .leader(Duration::from_secs(10))
        .expect("a new leader");
    assert_ne!(new_leader, leader);
    let history = load.join().expect("bidders");
    let result = converged_result(&cluster, "lot-k");
    check_history(&history, &result);

    // The standby took the dead voter's place: three voters again, without an operator.
    let promoted = wait_until(Duration::from_secs(10), || {
        let roles = roles(&cluster, new_leader);
        roles
            .get(&4)
            .is_some_and(|role| role == "follower" || role == "leader")
            && roles.get(&leader).is_some_and(|role| role == "standby")
    });
    assert!(
        promoted,
        "standby promoted, dead voter demoted: {:?}",
        roles(&cluster, new_leader)
    );

    tracing_note(&format!(
        "restart node {leader}: it catches up and stays a standby"
    ));
    cluster.node_mut(leader).spawn_without_waiting();
    let bid_count = result["bids"].as_array().unwrap().len();
    let caught_up = wait_until(Duration::from_secs(15), || {
        try_control(cluster.node(leader), "/control/v1/auctions/lot-k/result")
            .is_some_and(|r| r["bids"].as_array().map_or(0, Vec::len) == bid_count)
    });
    assert!(caught_up, "the restarted node applied every bid");
    assert_eq!(
        roles(&cluster, new_leader).get(&leader).map(String::as_str),
        Some("standby")
    );
}

fn tracing_note(text: &str) {
    eprintln!("[cluster test] {text}");
}

#[test]
fn a_stopped_leader_that_wakes_up_accepts_no_bid_as_a_stale_leader() {
    let (_dir, cluster) = cluster("sigstop", 3, 1);
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    cluster
        .node(1)
        .create_auction(auction_spec("lot-s", 120_000, 60_000));
    let bidders = setup_bidders(&cluster, "lot-s", 2);
    let (first, second) = (&bidders[0].1, &bidders[1].1);
    assert_eq!(
        cluster.node(leader).bid(first, "lot-s", 1_000_000, "s-1").0,
        201
    );

    tracing_note(&format!(
        "SIGSTOP the leader, node {leader}, past the election timeout"
    ));
    let pid = cluster.node(leader).pid().expect("leader pid");
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let others: Vec<u64> = (1..=4).filter(|id| *id != leader).collect();
    let mut new_leader = None;
    let elected = wait_until(Duration::from_secs(10), || {
        new_leader = others
            .iter()
            .filter_map(|id| try_control(cluster.node(*id), "/control/v1/cluster"))
            .filter_map(|view| view["leader_id"].as_u64())
            .find(|id| *id != leader);
        new_leader.is_some()
    });
    assert!(elected, "the others elect a new leader");
    let new_leader = new_leader.unwrap();
    let (status, receipt) = cluster
        .node(new_leader)
        .bid(second, "lot-s", 1_010_000, "s-2");
    assert_eq!(status, 201, "{receipt}");

    tracing_note("SIGCONT the old leader and bid through it at once");
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let stale = cluster.node(leader).bid(first, "lot-s", 1_020_000, "s-3");
    // Whatever the old leader answers, it cannot have committed in its old term: a
    // receipt it gives must be in the history the new leader holds.
    let result = converged_result(&cluster, "lot-s");
    let bids = result["bids"].as_array().unwrap();
    if stale.0 == 201 || stale.0 == 200 {
        let bid_id = stale.1["bid_id"].as_str().unwrap();
        assert_eq!(
            bids.iter().filter(|bid| bid["bid_id"] == bid_id).count(),
            1,
            "the receipt is in the history once"
        );
    }
    let amounts: Vec<u64> = bids
        .iter()
        .map(|bid| bid["amount"].as_u64().unwrap())
        .collect();
    assert_eq!(
        &amounts[..2],
        &[1_000_000, 1_010_000],
        "nothing the stale leader did displaced a committed bid"
    );
    assert!(amounts.windows(2).all(|pair| pair[0] < pair[1]));
    let terms: BTreeSet<u64> = (1..=4)
        .filter_map(|id| try_control(cluster.node(id), "/control/v1/cluster"))
        .filter_map(|view| view["term"].as_u64())
        .collect();
    tracing_note(&format!(
        "stale leader answered {}, terms now {terms:?}",
        stale.0
    ));
}

#[test]
fn restarting_every_node_in_turn_while_bidding_loses_no_receipt() {
    let (_dir, mut cluster) = cluster("rolling", 3, 1);
    cluster.leader(Duration::from_secs(10)).expect("a leader");
    cluster
        .node(1)
        .create_auction(auction_spec("lot-r", 120_000, 60_000));
    let bidders = setup_bidders(&cluster, "lot-r", 3);
    let plans = plans(&cluster, "lot-r", &bidders, Duration::from_secs(14));
    let load = std::thread::spawn(move || common::bidders::run(plans));
    for id in 1..=4 {
        std::thread::sleep(Duration::from_millis(700));
        tracing_note(&format!(
            "restart node {id} (SIGTERM, then start on its data directory)"
        ));
        cluster.node_mut(id).stop_with(libc::SIGTERM);
        std::thread::sleep(Duration::from_millis(300));
        cluster.node_mut(id).spawn_without_waiting();
        cluster.node_mut(id).wait_ready(Duration::from_secs(20));
    }
    let history = load.join().expect("bidders");
    let result = converged_result(&cluster, "lot-r");
    check_history(&history, &result);
}

#[test]
fn restarting_the_whole_cluster_finds_every_auction_as_it_was() {
    let (_dir, mut cluster) = cluster("full-restart", 3, 1);
    cluster.leader(Duration::from_secs(10)).expect("a leader");
    cluster
        .node(1)
        .create_auction(auction_spec("lot-a", 120_000, 60_000));
    cluster
        .node(1)
        .create_auction(auction_spec("lot-b", 120_000, 60_000));
    let bidders = setup_bidders(&cluster, "lot-a", 2);
    cluster.node(1).qualify("lot-b", "bidder-0");
    assert_eq!(
        cluster
            .node(2)
            .bid(&bidders[0].1, "lot-a", 1_000_000, "a-1")
            .0,
        201
    );
    assert_eq!(
        cluster
            .node(3)
            .bid(&bidders[1].1, "lot-a", 1_010_000, "a-2")
            .0,
        201
    );
    assert_eq!(
        cluster
            .node(4)
            .bid(&bidders[0].1, "lot-b", 1_000_000, "b-1")
            .0,
        201
    );
    let before: Vec<Value> = ["lot-a", "lot-b"]
        .iter()
        .map(|id| converged_result(&cluster, id))
        .collect();

    tracing_note("SIGTERM every node, then start them all again");
    for id in 1..=4 {
        cluster.node_mut(id).stop_with(libc::SIGTERM);
    }
    for id in 1..=4 {
        cluster.node_mut(id).spawn_without_waiting();
    }
    cluster
        .leader(Duration::from_secs(20))
        .expect("a leader after the restart");
    let after: Vec<Value> = ["lot-a", "lot-b"]
        .iter()
        .map(|id| converged_result(&cluster, id))
        .collect();
    for (before, after) in before.iter().zip(&after) {
        assert_eq!(before["bids"], after["bids"]);
        assert_eq!(before["phase"], after["phase"]);
    }
    // The sessions survived too: a retried bid answers its original receipt.
    let mut answer = (0, Value::Null);
    wait_until(Duration::from_secs(10), || {
        answer = cluster
            .node(1)
            .bid(&bidders[1].1, "lot-a", 1_010_000, "a-2");
        answer.0 < 500
    });
    assert_eq!(answer.0, 200, "{}", answer.1);
}

#[test]
fn manual_switchover_hands_leadership_to_the_named_voter() {
    let (_dir, cluster) = cluster("switchover", 3, 1);
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let target = (1..=3).find(|id| *id != leader).unwrap();
    let asked = (1..=3).find(|id| *id != leader && *id != target).unwrap();
    cluster
        .node(1)
        .create_auction(auction_spec("lot-w", 60_000, 30_000));
    let bidders = setup_bidders(&cluster, "lot-w", 2);
    // Wait until every voter is seen up by the leader (the switchover requires it).
    wait_until(Duration::from_secs(5), || {
        try_control(cluster.node(leader), "/control/v1/cluster").is_some_and(|view| {
            view["nodes"]
                .as_array()
                .is_some_and(|nodes| nodes.iter().all(|node| node["health"] == "up"))
        })
    });
    tracing_note(&format!(
        "switchover {leader} -> {target}, asked through node {asked}"
    ));
    let (status, view) = cluster.node(asked).control(
        "POST",
        "/control/v1/cluster/switchover",
        Some(json!({"to_node_id": target})),
    );
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["leader_id"], target, "{view}");
    assert_eq!(
        cluster
            .node(leader)
            .bid(&bidders[0].1, "lot-w", 1_000_000, "w-1")
            .0,
        201,
        "bidding goes on"
    );
    let (status, problem) = cluster.node(target).control(
        "POST",
        "/control/v1/cluster/switchover",
        Some(json!({"to_node_id": 4})),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("conflict")),
        "a standby cannot be made leader: {problem}"
    );
    // The switchover is in the operator audit trail, with its operator, on every node
    // (once each has applied it).
    let switchovers = |id: u64| {
        try_control(cluster.node(id), "/control/v1/audit?action=switchover")
            .and_then(|trail| trail["records"].as_array().cloned())
            .unwrap_or_default()
    };
    for id in 1..=4 {
        let recorded = wait_until(Duration::from_secs(5), || !switchovers(id).is_empty());
        assert!(recorded, "node {id} has no switchover on record");
    }
    let records = switchovers(asked);
    assert_eq!(
        records.len(),
        1,
        "only the switchover that happened: {records:?}"
    );
    assert_eq!(records[0]["operator"], "test-operator");
    assert_eq!(records[0]["target"], format!("node {target}"));
}

#[test]
fn standbys_are_added_and_removed_while_bidding_goes_on() {
    let (dir, mut cluster) = cluster("nodes", 3, 1);
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster
        .node(1)
        .create_auction(auction_spec("lot-n", 120_000, 60_000));
    let bidders = setup_bidders(&cluster, "lot-n", 3);
    // Bidders use the voters only: node 4 leaves during the run.
    let mut plans = plans(&cluster, "lot-n", &bidders, Duration::from_secs(12));
    for plan in &mut plans {
        plan.public_urls.truncate(3);
    }
    let load = std::thread::spawn(move || common::bidders::run(plans));

    // A node no configuration of the cluster names joins through `node add`.
    let (mut joiner, joiner_peer) = cluster.configure_joiner(&dir.path().join("node-5"), 5);
    joiner.spawn_without_waiting();
    let add = json!({
        "node_id": 5, "name": "node-5", "peer": joiner_peer,
        "public_url": joiner.public_url, "control_url": joiner.control_url,
    });
    tracing_note(&format!("node add 5 through follower {follower}"));
    let mut added = (0, Value::Null);
    // The joiner may still be starting: the precheck refuses until it answers.
    wait_until(Duration::from_secs(15), || {
        added =
            cluster
                .node(follower)
                .control("POST", "/control/v1/cluster/nodes", Some(add.clone()));
        added.0 == 201
    });
    assert_eq!(added.0, 201, "node add relayed to the leader: {}", added.1);
    assert_eq!(
        roles(&cluster, leader).get(&5).map(String::as_str),
        Some("standby")
    );
    let (status, again) =
        cluster
            .node(leader)
            .control("POST", "/control/v1/cluster/nodes", Some(add.clone()));
    assert_eq!(status, 200, "the same node again is no change: {again}");
    let bids_so_far = converged_result(&cluster, "lot-n")["bids"]
        .as_array()
        .map_or(0, Vec::len);
    let caught_up = wait_until(Duration::from_secs(10), || {
        try_control(&joiner, "/control/v1/auctions/lot-n/result")
            .is_some_and(|r| r["bids"].as_array().map_or(0, Vec::len) >= bids_so_far)
    });
    assert!(caught_up, "the new standby holds the auction and its bids");

    // Refusals change nothing.
    let (status, body) = cluster.node(follower).control(
        "DELETE",
        &format!("/control/v1/cluster/nodes/{leader}"),
        None,
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "a voter is not removed: {body}"
    );
    let (status, body) =
        cluster
            .node(leader)
            .control("DELETE", "/control/v1/cluster/nodes/99", None);
    assert_eq!(status, 404, "{body}");
    let (status, body) =
        cluster
            .node(leader)
            .control("DELETE", "/control/v1/cluster/nodes/zero", None);
    assert_eq!(status, 422, "{body}");
    // A node of another cluster (another secret) fails the precheck.
    let (mut stranger, stranger_peer) = cluster.configure_joiner(&dir.path().join("node-6"), 6);
    let config = std::fs::read_to_string(&stranger.config_path)
        .unwrap()
        .replace(
            common::CLUSTER_SECRET,
            "64f39c62a9fc518e6e19a71e6b42327f45c056d9f51f199ef4600cce5a209fc7",
        );
    std::fs::write(&stranger.config_path, config).unwrap();
    stranger.spawn_without_waiting();
    let stranger_up = wait_until(Duration::from_secs(15), || {
        ureq::get(&format!("{}/healthz", stranger.control_url))
            .call()
            .is_ok()
    });
    assert!(stranger_up, "the stranger started");
    let (status, body) = cluster.node(leader).control(
        "POST",
        "/control/v1/cluster/nodes",
        Some(json!({
            "node_id": 6, "name": "node-6", "peer": stranger_peer,
            "public_url": stranger.public_url, "control_url": stranger.control_url,
        })),
    );
    assert_eq!(
        status, 409,
        "a node with another secret fails the precheck: {body}"
    );
    assert!(
        body["detail"].as_str().unwrap_or("").contains("secret"),
        "{body}"
    );
    stranger.kill();
    let unreachable = json!({
        "node_id": 6, "name": "node-6", "peer": format!("127.0.0.1:{}", common::free_port()),
        "public_url": "http://127.0.0.1:1", "control_url": "http://127.0.0.1:2",
    });
    let (status, body) =
        cluster
            .node(leader)
            .control("POST", "/control/v1/cluster/nodes", Some(unreachable));
    assert_eq!(
        status, 409,
        "a node that does not answer fails the precheck: {body}"
    );
    assert!(
        body["detail"].as_str().unwrap_or("").contains("precheck"),
        "{body}"
    );
    let (status, body) = cluster.node(leader).control("POST", "/control/v1/cluster/nodes", Some(json!({
        "node_id": 7, "name": "n", "peer": "not-an-address", "public_url": "http://x", "control_url": "http://y"
    })));
    assert_eq!(status, 422, "{body}");
    assert!(!roles(&cluster, leader).contains_key(&6) && !roles(&cluster, leader).contains_key(&7));

    // The configured standby leaves: it stops, and is not added back while the leader runs.
    let configured_standby = wait_until(Duration::from_secs(10), || {
        roles(&cluster, leader)
            .get(&4)
            .is_some_and(|role| role == "standby")
    });
    assert!(configured_standby, "{:?}", roles(&cluster, leader));
    tracing_note("node remove 4");
    let (status, body) =
        cluster
            .node(follower)
            .control("DELETE", "/control/v1/cluster/nodes/4", None);
    assert_eq!(status, 200, "{body}");
    let exit = cluster.node_mut(4).wait_for_exit(Duration::from_secs(10));
    assert!(
        exit.is_some_and(|status| status.success()),
        "the removed node stops cleanly: {exit:?}"
    );
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        roles(&cluster, leader).get(&4).map(String::as_str),
        Some("removed")
    );

    // The added standby is watched like a configured one: a dead voter is replaced by it.
    let victim = (1..=3).find(|id| *id != leader && *id != follower).unwrap();
    tracing_note(&format!(
        "SIGKILL follower {victim}; node 5 should take its vote"
    ));
    cluster.node_mut(victim).kill();
    let promoted = wait_until(Duration::from_secs(15), || {
        roles(&cluster, leader)
            .get(&5)
            .is_some_and(|role| role == "follower")
    });
    assert!(
        promoted,
        "the added standby became a voter: {:?}",
        roles(&cluster, leader)
    );

    let history = load.join().expect("bidders");
    let result = converged_result(&cluster, "lot-n");
    check_history(&history, &result);
    let unknown: Vec<&Record> = history
        .iter()
        .filter(|record| matches!(record.outcome, Outcome::Unknown))
        .collect();
    assert!(unknown.is_empty(), "every bid was answered: {unknown:?}");
    let actions = audit_actions(&cluster, leader);
    assert!(
        actions.iter().any(|action| action == "node add")
            && actions.iter().any(|action| action == "node remove"),
        "both changes are on the audit trail: {actions:?}"
    );
    joiner.kill();
}

#[test]
fn voters_are_added_and_removed_live_and_never_below_three_without_force() {
    let (dir, mut cluster) = cluster("voters", 3, 0);
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    cluster
        .node(leader)
        .create_auction(auction_spec("lot-v", 120_000, 60_000));
    // Two bidders taking turns (a bidder who leads may not bid again).
    let bidders = setup_bidders(&cluster, "lot-v", 2);
    let bid = |cluster: &Cluster, amount: u64, request: &str| {
        let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
        let turn = ((amount - 1_000_000) / 10_000) as usize % 2;
        cluster
            .node(leader)
            .bid(&bidders[turn].1, "lot-v", amount, request)
            .0
    };
    assert_eq!(bid(&cluster, 1_000_000, "v-1"), 201);

    // A new node joins with a vote: 4 voters.
    let (mut joiner, joiner_peer) = cluster.configure_joiner(&dir.path().join("node-5"), 5);
    joiner.spawn_without_waiting();
    let add = json!({
        "node_id": 5, "name": "node-5", "peer": joiner_peer,
        "public_url": joiner.public_url, "control_url": joiner.control_url, "voter": true,
    });
    let mut added = (0, Value::Null);
    wait_until(Duration::from_secs(20), || {
        added = cluster.node(followers[0]).control(
            "POST",
            "/control/v1/cluster/nodes",
            Some(add.clone()),
        );
        added.0 == 201
    });
    assert_eq!(
        added.0, 201,
        "node add --voter, relayed to the leader: {}",
        added.1
    );
    let voters = |cluster: &Cluster| -> Vec<u64> {
        roles(cluster, leader)
            .into_iter()
            .filter(|(_, role)| role == "leader" || role == "follower")
            .map(|(id, _)| id)
            .collect()
    };
    assert_eq!(
        voters(&cluster),
        vec![1, 2, 3, 5],
        "{:?}",
        roles(&cluster, leader)
    );
    let (status, again) =
        cluster
            .node(leader)
            .control("POST", "/control/v1/cluster/nodes", Some(add.clone()));
    assert_eq!(status, 200, "a voter asked again is no change: {again}");
    assert_eq!(bid(&cluster, 1_010_000, "v-2"), 201);

    // A voter leaves: back to 3, and the node stops.
    let leaving = followers[1];
    let (status, body) = cluster.node(leader).control(
        "DELETE",
        &format!("/control/v1/cluster/nodes/{leaving}"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let exit = cluster
        .node_mut(leaving)
        .wait_for_exit(Duration::from_secs(10));
    assert!(
        exit.is_some_and(|status| status.success()),
        "the removed voter stops: {exit:?}"
    );
    let mut expected: Vec<u64> = vec![1, 2, 3, 5]
        .into_iter()
        .filter(|id| *id != leaving)
        .collect();
    expected.sort_unstable();
    assert_eq!(voters(&cluster), expected, "{:?}", roles(&cluster, leader));
    assert_eq!(bid(&cluster, 1_020_000, "v-3"), 201);

    // Not below 3 without force, and never the leader.
    let (status, body) = cluster.node(leader).control(
        "DELETE",
        &format!("/control/v1/cluster/nodes/{}", followers[0]),
        None,
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert!(
        body["detail"].as_str().unwrap_or("").contains("force"),
        "{body}"
    );
    let (status, body) = cluster.node(followers[0]).control(
        "DELETE",
        &format!("/control/v1/cluster/nodes/{leader}?force=true"),
        None,
    );
    assert_eq!(status, 409, "the leader is not removed: {body}");
    assert_eq!(voters(&cluster), expected, "refusals change nothing");

    // With force: 2 voters, which still commit.
    let (status, body) = cluster.node(leader).control(
        "DELETE",
        &format!("/control/v1/cluster/nodes/{}?force=true", followers[0]),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(voters(&cluster).len(), 2, "{:?}", roles(&cluster, leader));
    assert_eq!(bid(&cluster, 1_030_000, "v-4"), 201);
    let actions = audit_actions(&cluster, leader);
    assert!(
        actions.iter().any(|action| action == "node add voter")
            && actions.iter().any(|action| action == "node remove"),
        "{actions:?}"
    );
    joiner.kill();
}

/// The actions of the operator audit trail, as `leader` answers it.
fn audit_actions(cluster: &Cluster, leader: u64) -> Vec<String> {
    let audit = cluster
        .node(leader)
        .control("GET", "/control/v1/audit", None)
        .1;
    audit["records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|record| record["action"].as_str().map(str::to_string))
        .collect()
}

/// `gavel ctl migrate …` through `control_url`; its output.
fn migrate(control_url: &str, arguments: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args([
            "ctl",
            "--control",
            control_url,
            "--token",
            common::ADMIN_TOKEN,
            "migrate",
        ])
        .args(arguments)
        .env_remove("GAVEL_ADMIN_TOKEN")
        .output()
        .expect("run gavel ctl migrate")
}

fn output_text(output: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_voter_migrates_to_a_new_node_while_bidding_goes_on_and_a_failed_migration_rolls_back() {
    let (dir, mut cluster) = cluster("migrate", 3, 0);
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster
        .node(1)
        .create_auction(auction_spec("lot-m", 120_000, 60_000));
    let bidders = setup_bidders(&cluster, "lot-m", 3);
    let plans = plans(&cluster, "lot-m", &bidders, Duration::from_secs(10));
    let load = std::thread::spawn(move || common::bidders::run(plans));
    std::thread::sleep(Duration::from_millis(1_000));

    // The leader's place moves to node 4, a new node no configuration names.
    let (mut target, target_peer) = cluster.configure_joiner(&dir.path().join("node-4"), 4);
    target.spawn_without_waiting();
    let answers = wait_until(Duration::from_secs(15), || {
        ureq::get(&format!("{}/healthz", target.control_url))
            .call()
            .is_ok()
    });
    assert!(answers, "the target node started");
    let from = leader.to_string();
    let target_args = |to: &str, node: &common::Node, peer: &str| -> Vec<String> {
        vec![
            "--to".into(),
            to.into(),
            "--peer".into(),
            peer.into(),
            "--public-url".into(),
            node.public_url.clone(),
            "--control-url".into(),
            node.control_url.clone(),
        ]
    };
    let mut arguments = vec!["--from".to_string(), from.clone()];
    arguments.extend(target_args("4", &target, &target_peer));
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    tracing_note(&format!("migrate node {leader} (the leader) to node 4"));
    let output = migrate(&cluster.node(follower).control_url, &arguments);
    let text = output_text(&output);
    assert!(output.status.success(), "{text}");
    for step in [
        "step 1/5: precheck",
        "step 2/5",
        "step 3/5",
        "step 4/5",
        "step 5/5",
        "same state",
    ] {
        assert!(text.contains(step), "{step}: {text}");
    }
    let exit = cluster
        .node_mut(leader)
        .wait_for_exit(Duration::from_secs(10));
    assert!(
        exit.is_some_and(|status| status.success()),
        "the old node stops: {exit:?}"
    );
    let new_leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let roles_now = roles(&cluster, new_leader);
    assert!(
        roles_now
            .get(&4)
            .is_some_and(|role| role == "follower" || role == "leader")
            && roles_now.get(&leader).is_some_and(|role| role == "removed"),
        "{roles_now:?}"
    );

    let history = load.join().expect("bidders");
    let result = converged_result(&cluster, "lot-m");
    check_history(&history, &result);
    let unknown: Vec<&Record> = history
        .iter()
        .filter(|record| matches!(record.outcome, Outcome::Unknown))
        .collect();
    assert!(
        unknown.is_empty(),
        "no bid failed during the migration: {unknown:?}"
    );
    let on_target =
        try_control(&target, "/control/v1/auctions/lot-m/result").expect("target answers");
    assert_eq!(
        on_target["bids"], result["bids"],
        "the new voter holds every bid"
    );

    // A wrong target fails the precheck and changes nothing.
    let survivor = (1..=3)
        .find(|id| *id != leader && *id != new_leader)
        .unwrap_or(new_leader);
    let (mut spare, spare_peer) = cluster.configure_joiner(&dir.path().join("node-5"), 5);
    spare.spawn_without_waiting();
    assert!(wait_until(Duration::from_secs(15), || {
        ureq::get(&format!("{}/healthz", spare.control_url))
            .call()
            .is_ok()
    }));
    let mut wrong = vec!["--from".to_string(), survivor.to_string()];
    wrong.extend(target_args("6", &spare, &spare_peer));
    let wrong: Vec<&str> = wrong.iter().map(String::as_str).collect();
    let output = migrate(&cluster.node(new_leader).control_url, &wrong);
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("is node 5, not node 6"), "{text}");

    // Sync and verify only, then the target dies: the cutover run rolls back.
    let mut staged = vec!["--from".to_string(), survivor.to_string()];
    staged.extend(target_args("5", &spare, &spare_peer));
    staged.push("--no-cutover".to_string());
    let staged: Vec<&str> = staged.iter().map(String::as_str).collect();
    let output = migrate(&cluster.node(new_leader).control_url, &staged);
    assert!(output.status.success(), "{}", output_text(&output));
    assert_eq!(
        roles(&cluster, new_leader).get(&5).map(String::as_str),
        Some("standby")
    );
    spare.kill();
    let output = migrate(
        &cluster.node(new_leader).control_url,
        &staged[..staged.len() - 1],
    );
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("rolled back"), "{text}");
    let roles_now = roles(&cluster, new_leader);
    assert!(
        !roles_now.contains_key(&5),
        "the target left again: {roles_now:?}"
    );
    assert!(
        roles_now
            .get(&survivor)
            .is_some_and(|role| role == "follower" || role == "leader"),
        "node {survivor} still votes: {roles_now:?}"
    );
    target.kill();
}

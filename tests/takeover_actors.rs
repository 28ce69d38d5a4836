//! The takeover's actors, with real processes (docs/DESIGN.md, "Hot actors"): every node
//! keeps an Auction actor per live auction, and only the leader's have their deadline
//! timers armed. Three voters and a standby; three sales open. The leader is SIGKILLed:
//! the new leader must report an armed timer for every open sale, the standby promoted in
//! the dead voter's place a live actor for each, and the sale whose deadline falls after the
//! takeover (no bid after it) must close at its deadline by the new leader's timer — sold,
//! the close recorded by `system` after the kill, in a later term. Then the new leader is
//! killed too, and the same holds on the third node.

use gavel_testkit as common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::process::now_ms;
use common::{auction_spec, try_request, wait_until, ADMIN_TOKEN};
use serde_json::{json, Value};

/// A sale whose listing closes `closes_in_ms` from now, then 2 s of timed bidding, with a
/// 1 s failover grace (so a takeover well before the deadline leaves it as it is).
fn sale(id: &str, closes_in_ms: u64) -> Value {
    let mut spec = auction_spec(id, closes_in_ms, 2_000);
    spec["failover_grace_ms"] = json!(1_000);
    spec
}

fn node_status(cluster: &Cluster, id: u64) -> Value {
    let node = cluster.node(id);
    let (status, body) = try_request(
        "GET",
        &format!("{}/control/v1/node", node.control_url),
        Some(ADMIN_TOKEN),
        None,
    )
    .unwrap_or((0, Value::Null));
    assert_eq!(status, 200, "node {id}: {body}");
    body
}

fn cluster_view(cluster: &Cluster, id: u64) -> Value {
    cluster
        .node(id)
        .control("GET", "/control/v1/cluster", None)
        .1
}

/// Waits until node `id` reports at least `live` Auction actors and exactly `armed`
/// armed timers; answers its actors.
fn wait_for_actors(cluster: &Cluster, id: u64, live: u64, armed: u64) -> Value {
    let mut actors = Value::Null;
    let reached = wait_until(Duration::from_secs(10), || {
        actors = node_status(cluster, id)["actors"].clone();
        actors["auctions_live"]
            .as_u64()
            .is_some_and(|count| count >= live)
            && actors["timers_armed"].as_u64() == Some(armed)
    });
    assert!(
        reached,
        "node {id} reports {actors}, wanted {live}+ live actors and {armed} armed timers"
    );
    actors
}

/// The sale closes by a timer on the cluster now led by `leader`: sold, and the close in
/// the audit trail by `system`, after `killed_at_ms`.
fn closes_by_the_new_leaders_timer(cluster: &Cluster, leader: u64, id: &str, killed_at_ms: u64) {
    let sold = cluster
        .node(leader)
        .wait_for_phase(id, "sold", Duration::from_secs(20));
    assert_eq!(sold["phase"], "sold", "{sold}");
    let record = cluster
        .node(leader)
        .control("GET", &format!("/control/v1/state/auctions/{id}"), None)
        .1;
    let audit = record["audit"].as_array().cloned().unwrap_or_default();
    let closed = audit.iter().any(|entry| {
        entry["actor"] == "system"
            && entry["at_ms"].as_u64().is_some_and(|at| at > killed_at_ms)
            && entry.to_string().contains("sold")
    });
    assert!(
        closed,
        "{id}: no close by system after the kill in {audit:?}"
    );
}

#[test]
fn a_new_leader_arms_a_timer_for_every_open_sale_and_closes_them_after_two_kills() {
    let dir = common::temp_dir("takeover-actors");
    let mut cluster = Cluster::start(dir.path(), 3, 1);
    let first = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let leader = cluster.node(first);
    leader.create_auction(sale("lot-long-1", 120_000));
    leader.create_auction(sale("lot-long-2", 120_000));
    for bidder in ["ada", "bo"] {
        leader.register_bidder(bidder);
        for id in ["lot-long-1", "lot-long-2"] {
            leader.qualify(id, bidder);
        }
    }
    let (ada, bo) = (leader.login("ada"), leader.login("bo"));
    // The sale that must close after the takeover: its listing ends 8 s from now.
    leader.create_auction(sale("lot-after-1", 8_000));
    leader.qualify("lot-after-1", "ada");
    assert_eq!(leader.bid(&ada, "lot-after-1", 1_000_000, "a-1").0, 201);
    // Before: the leader arms all three; the standby (node 4) runs all three, armed none.
    wait_for_actors(&cluster, first, 3, 3);
    wait_for_actors(&cluster, 4, 3, 0);
    let deadline = cluster.node(first).auction("lot-after-1")["deadline_ms"]
        .as_u64()
        .expect("a deadline");
    assert!(
        deadline > now_ms() + 3_000,
        "the setup took too long: the deadline is too near for a takeover before it"
    );
    let term_before = cluster_view(&cluster, first)["term"].as_u64().unwrap_or(0);

    let killed_at_ms = now_ms();
    let started = Instant::now();
    cluster.node_mut(first).kill();
    let second = cluster
        .leader(Duration::from_secs(10))
        .expect("a new leader");
    assert_ne!(second, first);
    // The standby takes the dead voter's place; the new leader arms every open sale.
    let promoted = wait_until(Duration::from_secs(15), || {
        cluster_view(&cluster, second)["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|node| node["node_id"] == 4 && node["role"] == "follower")
    });
    assert!(promoted, "{}", cluster_view(&cluster, second));
    let armed = wait_for_actors(&cluster, second, 3, 3);
    wait_for_actors(&cluster, 4, 3, u64::from(second == 4) * 3);
    println!(
        "first takeover: node {second} leads {:?} after the kill, actors {armed}",
        started.elapsed()
    );
    assert!(cluster_view(&cluster, second)["term"].as_u64().unwrap_or(0) > term_before);
    closes_by_the_new_leaders_timer(&cluster, second, "lot-after-1", killed_at_ms);

    // A sale for the second takeover, then its leader dies too.
    let leader = cluster.node(second);
    leader.create_auction(sale("lot-after-2", 8_000));
    leader.qualify("lot-after-2", "bo");
    assert_eq!(leader.bid(&bo, "lot-after-2", 1_000_000, "b-1").0, 201);
    // lot-after-1 is sold: three open sales again, all armed on the leader.
    wait_for_actors(&cluster, second, 3, 3);
    let killed_at_ms = now_ms();
    cluster.node_mut(second).kill();
    let third = cluster
        .leader(Duration::from_secs(10))
        .expect("a third leader");
    assert!(third != first && third != second);
    let armed = wait_for_actors(&cluster, third, 3, 3);
    println!("second takeover: node {third} leads, actors {armed}");
    closes_by_the_new_leaders_timer(&cluster, third, "lot-after-2", killed_at_ms);
    // The two long sales are still open, each with an armed timer on the third leader.
    let actors = wait_for_actors(&cluster, third, 2, 2);
    assert_eq!(actors["restarts"]["auctions_crashed"], 0, "{actors}");

    // Every node's counts in one answer (the dashboard's node table): the killed ones none.
    let gathered = cluster
        .node(third)
        .control("GET", "/control/v1/cluster/actors", None)
        .1;
    let member = |id: u64| {
        gathered["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|node| node["node_id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(member(third)["actors"]["timers_armed"], 2, "{gathered}");
    assert!(member(first)["actors"].is_null(), "{gathered}");
    let others: Vec<u64> = (1..=4)
        .filter(|id| ![first, second, third].contains(id))
        .collect();
    for id in others {
        assert_eq!(member(id)["actors"]["timers_armed"], 0, "{gathered}");
    }

    // `gavel cluster status` shows each node's counts; the killed nodes show "-".
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args([
            "cluster",
            "status",
            "--control",
            &cluster.node(third).control_url,
        ])
        .args(["--token", ADMIN_TOKEN])
        .output()
        .expect("gavel cluster status");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{text}");
    let columns = |id: u64| -> Vec<String> {
        text.lines()
            .find(|line| line.split_whitespace().next() == Some(&id.to_string()))
            .map(|line| line.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|header| header.contains("auctions") && header.contains("timers")),
        "{text}"
    );
    let leading = columns(third);
    assert_eq!(leading.get(2).map(String::as_str), Some("leader"), "{text}");
    assert_eq!(
        leading.get(7).map(String::as_str),
        Some("2"),
        "the leader's armed timers: {text}"
    );
    assert_eq!(
        columns(first).get(6).map(String::as_str),
        Some("-"),
        "a killed node: {text}"
    );
}

//! The failover grace rule on a real cluster (three voters and a standby on loopback):
//! the leader is SIGKILLed about 100 ms before a timed-bidding deadline, twenty times, and
//! as soon as it dies a bidder hammers every live node with the same bid. The deadline
//! passes while there is no leader; the auction must not close in that gap, and the first
//! bid after the takeover must be accepted, after the old deadline, whichever node it
//! reached first.

use gavel_testkit as common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::cluster::{try_control, Cluster};
use common::{now_ms, try_request, wait_until};
use serde_json::{json, Value};

const AUCTION: &str = "lot-grace";
const ROUNDS: usize = 20;
/// Rounds tried at most: a round whose kill came too late is not counted (see below).
const MAX_ATTEMPTS: usize = 30;
const COUNTDOWN_MS: u64 = 4_000;
const GRACE_MS: u64 = 2_000;
/// How long before the deadline the leader dies.
const KILL_BEFORE_DEADLINE_MS: u64 = 100;
/// A round needs at least this long before the deadline to aim its kill.
const AIM_MS: u64 = 400;

fn note(text: &str) {
    eprintln!("[takeover grace] {text}");
}

/// Roles by node id, as `ask` sees them.
fn roles(cluster: &Cluster, ask: u64) -> Vec<(u64, String)> {
    let Some(view) = try_control(cluster.node(ask), "/control/v1/cluster") else {
        return Vec::new();
    };
    let nodes = view["nodes"].as_array().cloned().unwrap_or_default();
    nodes
        .iter()
        .map(|node| {
            let id = node["node_id"].as_u64().unwrap_or(0);
            (id, node["role"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// Waits until every node runs, one leads, two follow and one stands by; the leader.
fn healthy_leader(cluster: &Cluster) -> u64 {
    let mut leader = None;
    let healthy = wait_until(Duration::from_secs(30), || {
        let Some(id) = cluster.leader(Duration::from_secs(2)) else {
            return false;
        };
        let roles = roles(cluster, id);
        let count = |role: &str| roles.iter().filter(|(_, r)| r == role).count();
        leader = Some(id);
        roles.len() == 4 && count("leader") == 1 && count("follower") == 2 && count("standby") == 1
    });
    assert!(
        healthy,
        "the cluster did not heal: {:?}",
        leader.map(|id| roles(cluster, id))
    );
    leader.expect("a leader")
}

struct Bidder {
    token: String,
    number: u64,
}

fn auction_view(url: &str) -> Option<Value> {
    let path = format!("{url}/api/v1/auctions/{AUCTION}");
    try_request("GET", &path, None, None)
        .ok()
        .filter(|(status, _)| *status == 200)
        .map(|(_, view)| view)
}

/// The bidder who does not lead now.
fn challenger<'a>(bidders: &'a [Bidder], view: &Value) -> &'a Bidder {
    let leading = view["leading_bidder_number"].as_u64();
    bidders
        .iter()
        .find(|bidder| Some(bidder.number) != leading)
        .expect("two bidders")
}

/// Sends the same bid (one request_id) to every url at once, each thread retrying until
/// it gets an answer that is not a transient error, for at most 10 s. Answers every
/// thread's final (status, body).
fn hammer(urls: &[String], token: &str, amount: u64, request_id: &str) -> Vec<(u16, Value)> {
    let (sender, answers) = mpsc::channel();
    for url in urls {
        let sender = sender.clone();
        let url = format!("{url}/api/v1/auctions/{AUCTION}/bids");
        let token = token.to_string();
        let body = json!({"amount": amount, "request_id": request_id});
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut last = (0, Value::Null);
            while started.elapsed() < Duration::from_secs(10) {
                match try_request("POST", &url, Some(&token), Some(body.clone())) {
                    Ok((status, answer)) if status < 500 && status != 429 => {
                        last = (status, answer);
                        break;
                    }
                    Ok(answer) => last = answer,
                    Err(_) => {}
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = sender.send(last);
        });
    }
    drop(sender);
    answers.iter().collect()
}

#[test]
fn the_leader_killed_just_before_a_deadline_never_closes_the_sale_in_the_gap() {
    let dir = tempfile::Builder::new()
        .prefix("grace")
        .tempdir()
        .expect("temp dir");
    let mut cluster = Cluster::start(dir.path(), 3, 1);
    healthy_leader(&cluster);
    let node = cluster.node(1);
    let now = now_ms();
    let spec = json!({
        "id": AUCTION, "title": "Parcel under failover", "parcel": {"area_m2": 5000},
        "start_price": 1_000_000, "increment": 10_000,
        "listing_opens_at_ms": now, "listing_closes_at_ms": now + 2_000,
        "countdown_ms": COUNTDOWN_MS, "failover_grace_ms": GRACE_MS
    });
    node.create_auction(spec);
    let bidders: Vec<Bidder> = ["alice", "bob"]
        .iter()
        .map(|bidder_id| {
            node.register_bidder(bidder_id);
            let number = node.qualify(AUCTION, bidder_id);
            Bidder {
                token: node.login(bidder_id),
                number,
            }
        })
        .collect();
    for (index, bidder) in bidders.iter().enumerate() {
        let amount = 1_000_000 + 10_000 * index as u64;
        let (status, answer) =
            node.bid(&bidder.token, AUCTION, amount, &format!("listing-{index}"));
        assert_eq!(status, 201, "listing bid: {answer}");
    }
    node.wait_for_phase(AUCTION, "timed_bidding", Duration::from_secs(10));

    let mut rounds = 0;
    let mut acknowledged = bidders.len() as u64;
    for attempt in 0..MAX_ATTEMPTS {
        if rounds == ROUNDS {
            break;
        }
        let leader = healthy_leader(&cluster);
        let leader_url = cluster.node(leader).public_url.clone();
        // A node restarted a moment ago may still answer from before the last round: wait
        // for the leader's view to hold every bid acknowledged so far.
        let mut view = Value::Null;
        let current = wait_until(Duration::from_secs(10), || {
            view = auction_view(&leader_url).unwrap_or(Value::Null);
            view["bid_count"].as_u64().unwrap_or(0) >= acknowledged
        });
        assert!(
            current,
            "round {attempt}: the leader's view is behind: {view}"
        );
        assert_eq!(view["phase"], "timed_bidding", "round {attempt}: {view}");
        let deadline_ms = view["deadline_ms"].as_u64().expect("a deadline");
        let bidder = challenger(&bidders, &view);
        let amount = view["minimum_next_bid"].as_u64().expect("a minimum");
        if deadline_ms < now_ms() + AIM_MS {
            // Too close to aim: a fresh bid restarts the countdown, then try again.
            let request_id = format!("refresh-{attempt}");
            let answers = hammer(&[leader_url], &bidder.token, amount, &request_id);
            assert!(
                answers.iter().all(|(status, _)| *status == 201),
                "{answers:?}"
            );
            acknowledged += 1;
            continue;
        }
        std::thread::sleep(Duration::from_millis(
            deadline_ms - KILL_BEFORE_DEADLINE_MS - now_ms(),
        ));
        let killed_at_ms = now_ms();
        cluster.node_mut(leader).kill();
        note(&format!(
            "round {rounds}: killed leader {leader} {} ms before the deadline",
            deadline_ms as i64 - killed_at_ms as i64
        ));
        let live: Vec<String> = cluster
            .nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.public_url.clone())
            .collect();
        let request_id = format!("after-takeover-{attempt}");
        let answers = hammer(&live, &bidder.token, amount, &request_id);
        // 201 for the request that placed it, 200 for the same request_id replayed.
        for (status, answer) in &answers {
            assert!(
                matches!(status, 200 | 201),
                "round {rounds}: the first bid after the takeover was not accepted: {answer}"
            );
        }
        let accepted_at_ms = answers[0].1["accepted_at_ms"].as_u64().expect("a receipt");
        acknowledged += 1;
        if killed_at_ms >= deadline_ms {
            // The process was late to kill: the old leader may have closed the sale at
            // its deadline, rightly. Such a round tests nothing; not counted.
            note(&format!(
                "round {rounds}: the kill came after the deadline; not counted"
            ));
        } else {
            assert!(
                accepted_at_ms > deadline_ms,
                "round {rounds}: the bid was accepted at {accepted_at_ms}, before the old deadline {deadline_ms}"
            );
            rounds += 1;
        }
        let new_leader = cluster
            .leader(Duration::from_secs(10))
            .expect("a new leader");
        let after = auction_view(&cluster.node(new_leader).public_url);
        let after = after.expect("the auction after the takeover");
        assert_eq!(after["phase"], "timed_bidding", "round {rounds}: {after}");

        // The old leader comes back (as a standby once the cluster has repaired itself).
        cluster.node_mut(leader).spawn_without_waiting();
    }
    assert_eq!(rounds, ROUNDS, "rounds whose kill came before the deadline");

    // Every takeover is on record: one per round at least, as the leader's state says.
    let leader = healthy_leader(&cluster);
    let view = try_control(
        cluster.node(leader),
        &format!("/control/v1/auctions/{AUCTION}/result"),
    );
    let view = view.expect("the result view");
    let bids = view["bids"].as_array().map_or(0, Vec::len);
    assert!(bids >= 2 + ROUNDS, "bids on record: {bids}");
}

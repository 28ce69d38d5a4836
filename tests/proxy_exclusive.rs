//! Proxy bidding and mutually exclusive parcels over HTTP on a cluster of three voters
//! (docs/RULES.md, "Proxy bidding", "Mutually exclusive parcels"): a proxy maximum set on
//! one leader answers a rival's bid placed on the next one, in the same step, and is shown
//! to its owner only; and the winner of one sale of an exclusive group loses their bids in
//! the group's other sale, which goes on from the bids that remain.

use gavel_testkit as common;

use std::time::Duration;

use common::cluster::Cluster;
use common::{now_ms, wait_until, Node};
use serde_json::{json, Value};

const PROXIED: &str = "lot-proxied";
const EAST: &str = "lot-east";
const WEST: &str = "lot-west";
const MAXIMUM: u64 = 1_234_567;

fn spec(id: &str, listing_ms: u64, group: Option<&str>) -> Value {
    let now = now_ms();
    let mut spec = json!({
        "id": id, "title": format!("Parcel {id}"),
        "start_price": 1_000_000, "increment": 10_000,
        "listing_opens_at_ms": now, "listing_closes_at_ms": now + listing_ms,
        "countdown_ms": 30_000
    });
    if let Some(group) = group {
        spec["exclusive_group"] = json!(group);
    }
    spec
}

fn proxy(node: &Node, token: &str, method: &str, body: Option<Value>) -> (u16, Value) {
    node.public(
        method,
        &format!("/api/v1/auctions/{PROXIED}/proxy"),
        Some(token),
        body,
    )
}

/// The bid list of `auction_id`: (amount, the field `flag` of each bid).
fn bids(node: &Node, auction_id: &str, flag: &str) -> Vec<(u64, bool)> {
    let (status, list) = node.public(
        "GET",
        &format!("/api/v1/auctions/{auction_id}/bids"),
        None,
        None,
    );
    assert_eq!(status, 200, "{list}");
    list["bids"]
        .as_array()
        .expect("bids")
        .iter()
        .map(|bid| {
            let marked = bid[flag].as_bool().expect("a boolean mark");
            (bid["amount"].as_u64().unwrap_or(0), marked)
        })
        .collect()
}

#[test]
fn a_proxy_outlives_its_leader_and_an_exclusive_group_voids_the_winners_bids() {
    let dir = common::temp_dir("proxy-exclusive");
    let mut cluster = Cluster::start(dir.path(), 3, 0);
    let leader = cluster.leader(Duration::from_secs(30)).expect("a leader");
    let node = cluster.node(leader);
    node.create_auction(spec(PROXIED, 300_000, None));
    for bidder in ["alice", "bob", "carol"] {
        node.register_bidder(bidder);
        node.qualify(PROXIED, bidder);
    }
    let tokens: Vec<String> = ["alice", "bob", "carol"]
        .iter()
        .map(|b| node.login(b))
        .collect();

    // Alice leaves a maximum: her proxy bids the start price at once; a retry answers the
    // same; only she sees the maximum.
    let body = json!({"max_amount": MAXIMUM, "request_id": "alice-max"});
    let (status, set) = proxy(node, &tokens[0], "POST", Some(body.clone()));
    assert_eq!(status, 201, "{set}");
    assert_eq!(
        (&set["max_amount"], &set["bid"]["amount"]),
        (&json!(MAXIMUM), &json!(1_000_000))
    );
    assert!(set["bid"]["receipt_signature"].is_string(), "{set}");
    let (status, again) = proxy(node, &tokens[0], "POST", Some(body));
    assert_eq!((status, &again["bid"]["seq"]), (200, &set["bid"]["seq"]));
    let (status, own) = proxy(node, &tokens[0], "GET", None);
    assert_eq!((status, own), (200, json!({"max_amount": MAXIMUM})));
    let (status, none) = proxy(node, &tokens[1], "GET", None);
    assert_eq!((status, none["code"].as_str()), (404, Some("not_found")));
    let (status, low) = proxy(
        node,
        &tokens[1],
        "POST",
        Some(json!({"max_amount": 1_005_000, "request_id": "bob-max"})),
    );
    assert_eq!((status, low["code"].as_str()), (409, Some("below_minimum")));

    // Bob outbids her: the receipt's view already shows her proxy's answer.
    let (status, receipt) = node.bid(&tokens[1], PROXIED, 1_010_000, "b-1");
    assert_eq!(status, 201, "{receipt}");
    assert_eq!(receipt["auction"]["current_price"], 1_020_000, "{receipt}");

    // The leader dies; Carol's bid on the new leader is answered by the proxy.
    cluster.node_mut(leader).kill();
    let new_leader = cluster
        .leader(Duration::from_secs(20))
        .expect("a new leader");
    assert_ne!(new_leader, leader);
    let node = cluster.node(new_leader);
    let (status, receipt) = node.bid(&tokens[2], PROXIED, 1_100_000, "c-1");
    assert_eq!(status, 201, "{receipt}");
    assert_eq!(receipt["auction"]["current_price"], 1_110_000, "{receipt}");
    assert_eq!(
        bids(node, PROXIED, "proxy"),
        [
            (1_000_000, true),
            (1_010_000, false),
            (1_020_000, true),
            (1_100_000, false),
            (1_110_000, true),
        ]
    );
    let (status, leading) = proxy(node, &tokens[0], "DELETE", None);
    assert_eq!((status, leading["code"].as_str()), (409, Some("leading")));
    // The maximum is in no public view and no control read.
    let shown = [
        node.auction(PROXIED).to_string(),
        node.control(
            "GET",
            &format!("/control/v1/state/auctions/{PROXIED}"),
            None,
        )
        .1
        .to_string(),
        node.control(
            "GET",
            &format!("/control/v1/auctions/{PROXIED}/result"),
            None,
        )
        .1
        .to_string(),
    ];
    for text in shown {
        assert!(!text.contains(&MAXIMUM.to_string()), "{text}");
    }

    // An exclusive group of two sales: Alice bids in both and wins the east one alone.
    node.create_auction(spec(EAST, 4_000, Some("river-7")));
    node.create_auction(spec(WEST, 300_000, Some("river-7")));
    let mut numbers = Vec::new();
    for bidder in ["alice", "bob"] {
        node.qualify(EAST, bidder);
        numbers.push(node.qualify(WEST, bidder));
    }
    assert_eq!(node.bid(&tokens[0], WEST, 1_000_000, "a-w1").0, 201);
    assert_eq!(node.bid(&tokens[1], WEST, 1_010_000, "b-w1").0, 201);
    assert_eq!(node.bid(&tokens[0], WEST, 1_020_000, "a-w2").0, 201);
    assert_eq!(node.bid(&tokens[0], EAST, 1_000_000, "a-e1").0, 201);
    let east = node.wait_for_phase(EAST, "sold", Duration::from_secs(20));
    assert_eq!(east["phase"], "sold", "{east}");

    // In the west sale her bids are void, the price and leader come from Bob's bid, and
    // she may bid no more.
    let recomputed = wait_until(Duration::from_secs(10), || {
        node.auction(WEST)["current_price"] == 1_010_000
    });
    let west = node.auction(WEST);
    assert!(recomputed, "{west}");
    assert_eq!(west["leading_bidder_number"], numbers[1], "{west}");
    assert_eq!(west["minimum_next_bid"], 1_020_000, "{west}");
    assert_eq!(
        bids(node, WEST, "void"),
        [(1_000_000, true), (1_010_000, false), (1_020_000, true)]
    );
    let (status, refused) = node.bid(&tokens[0], WEST, 1_030_000, "a-w3");
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("excluded_by_group")),
        "{refused}"
    );
    let (status, result) =
        node.control("GET", &format!("/control/v1/auctions/{WEST}/result"), None);
    assert_eq!(status, 200, "{result}");
    let void: Vec<Value> = result["bids"]
        .as_array()
        .expect("bids")
        .iter()
        .map(|bid| bid["void"].clone())
        .collect();
    assert_eq!(void, [json!(true), Value::Null, json!(true)], "{result}");
    assert_eq!(result["chain_verified"], true);
}

//! The cap modes past the lottery over HTTP on a cluster of three voters (docs/RULES.md,
//! "Sealed quote (一次报价)", "Secondary bidding (竞配建 / 竞自持)"): two sales reach their
//! cap, one into a sealed-quote window, one into secondary bidding; the leader is killed
//! in the middle of both, and both go on and end on the new leader. No read of the sealed
//! sale shows a quote amount before its window closes.

use gavel_testkit as common;

use std::time::Duration;

use common::cluster::Cluster;
use common::{now_ms, Node};
use serde_json::{json, Value};

const SEALED: &str = "lot-sealed";
const SECONDARY: &str = "lot-secondary";
const CAP: u64 = 1_020_000;
/// The quotes, chosen so that no other number of the sale contains them.
const QUOTES: [u64; 3] = [1_051_234, 1_087_654, 1_063_210];

fn spec(id: &str, countdown_ms: u64, rules: Value) -> Value {
    let now = now_ms();
    let mut spec = json!({
        "id": id, "title": format!("Parcel {id}"),
        "start_price": 1_000_000, "increment": 10_000, "price_cap": CAP,
        "listing_opens_at_ms": now, "listing_closes_at_ms": now + 120_000,
        "countdown_ms": countdown_ms
    });
    if let (Some(spec), Some(rules)) = (spec.as_object_mut(), rules.as_object()) {
        spec.extend(rules.clone());
    }
    spec
}

fn quote(node: &Node, token: &str, amount: u64, request_id: &str) -> (u16, Value) {
    node.public(
        "POST",
        &format!("/api/v1/auctions/{SEALED}/sealed-quotes"),
        Some(token),
        Some(json!({"amount": amount, "request_id": request_id})),
    )
}

fn secondary_bid(node: &Node, token: &str, amount: u64, request_id: &str) -> (u16, Value) {
    node.public(
        "POST",
        &format!("/api/v1/auctions/{SECONDARY}/bids"),
        Some(token),
        Some(json!({"secondary_amount": amount, "request_id": request_id})),
    )
}

fn code(answer: &(u16, Value)) -> (u16, Option<&str>) {
    (answer.0, answer.1["code"].as_str())
}

/// Every read of the sealed sale a bidder or an operator can make, as text.
fn every_read(node: &Node) -> Vec<String> {
    let public = |path: &str| node.public("GET", path, None, None).1.to_string();
    let control = |path: &str| node.control("GET", path, None).1.to_string();
    vec![
        public(&format!("/api/v1/auctions/{SEALED}")),
        public("/api/v1/auctions"),
        public(&format!("/api/v1/auctions/{SEALED}/bids")),
        control("/control/v1/auctions"),
        control(&format!("/control/v1/auctions/{SEALED}/result")),
        control(&format!("/control/v1/state/auctions/{SEALED}")),
        control("/control/v1/audit"),
    ]
}

fn assert_no_quote_shown(node: &Node) {
    for read in every_read(node) {
        for amount in QUOTES {
            assert!(!shows_number(&read, amount), "{amount} shown: {read}");
        }
    }
}

/// Whether `text` holds `number` as a whole number (not inside a longer run of digits).
fn shows_number(text: &str, number: u64) -> bool {
    let digits = number.to_string();
    text.match_indices(&digits).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + digits.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

#[test]
fn sealed_quotes_and_secondary_bidding_continue_across_a_leader_kill() {
    let dir = common::temp_dir("cap-modes");
    let mut cluster = Cluster::start(dir.path(), 3, 0);
    let leader = cluster.leader(Duration::from_secs(30)).expect("a leader");
    let node = cluster.node(leader);
    let sealed_rules = json!({"cap_mode": "sealed_bid", "sealed_window_ms": 20_000,
        "sealed_ceiling": 1_100_000, "sealed_rule": "highest"});
    node.create_auction(spec(SEALED, 3_000, sealed_rules));
    let secondary_rules = json!({"cap_mode": "secondary", "secondary": {"label":
        "Self-held floor area", "unit": "m2", "start": 100, "increment": 10, "max": 500}});
    node.create_auction(spec(SECONDARY, 10_000, secondary_rules));
    let bidders = ["alice", "bob", "carol", "dave"];
    for bidder in bidders {
        node.register_bidder(bidder);
        node.qualify(SEALED, bidder);
        node.qualify(SECONDARY, bidder);
    }
    let tokens: Vec<String> = bidders.iter().map(|b| node.login(b)).collect();
    let [alice, bob, carol, dave] = [&tokens[0], &tokens[1], &tokens[2], &tokens[3]];
    for auction in [SEALED, SECONDARY] {
        assert_eq!(
            node.bid(alice, auction, 1_000_000, &format!("{auction}-a"))
                .0,
            201
        );
        assert_eq!(
            node.bid(bob, auction, 1_010_000, &format!("{auction}-b")).0,
            201
        );
        assert_eq!(
            node.bid(carol, auction, CAP, &format!("{auction}-c")).0,
            201
        );
    }

    // The sealed window: one quote each, in range, from a bidder holding a valid bid.
    let capped = node.auction(SEALED);
    assert_eq!(
        (capped["phase"].as_str(), capped["cap_mode"].as_str()),
        (Some("capped"), Some("sealed_bid"))
    );
    let (status, accepted) = quote(node, alice, QUOTES[0], "q-a");
    assert_eq!(status, 201, "{accepted}");
    assert!(accepted["accepted_at_ms"].as_u64().is_some(), "{accepted}");
    assert_eq!(accepted.as_object().map(|o| o.len()), Some(1), "{accepted}");
    assert_eq!(
        quote(node, alice, QUOTES[0], "q-a").0,
        200,
        "a retry answers the same quote"
    );
    assert_eq!(
        code(&quote(node, alice, QUOTES[1], "q-a2")),
        (409, Some("quote_exists"))
    );
    assert_eq!(
        code(&quote(node, bob, 1_100_001, "q-b0")),
        (409, Some("out_of_range"))
    );
    assert_eq!(
        code(&quote(node, dave, QUOTES[1], "q-d")),
        (403, Some("not_eligible"))
    );
    assert_eq!(quote(node, bob, QUOTES[1], "q-b").0, 201);
    assert_eq!(node.auction(SEALED)["sealed_quotes_count"], 2);
    assert_no_quote_shown(node);

    // Secondary bidding: the price frozen at the cap, bids on the second quantity.
    let view = node.auction(SECONDARY);
    assert_eq!(view["phase"], "secondary_bidding", "{view}");
    assert_eq!(
        code(&node.bid(alice, SECONDARY, CAP, "s-price")),
        (409, Some("auction_not_open"))
    );
    let both = node.public(
        "POST",
        &format!("/api/v1/auctions/{SECONDARY}/bids"),
        Some(alice),
        Some(json!({"amount": CAP, "secondary_amount": 100, "request_id": "s-both"})),
    );
    assert_eq!(code(&both), (422, Some("invalid_request")));
    let (status, receipt) = secondary_bid(node, alice, 100, "s-a1");
    assert_eq!(status, 201, "{receipt}");
    assert_eq!(
        (
            receipt["secondary_seq"].as_u64(),
            receipt["secondary_amount"].as_u64()
        ),
        (Some(1), Some(100))
    );
    assert_eq!(
        code(&secondary_bid(node, alice, 110, "s-a2")),
        (409, Some("already_leading"))
    );
    assert_eq!(secondary_bid(node, bob, 110, "s-b1").0, 201);

    // The leader dies in the middle of the sealed window and of secondary bidding.
    cluster.node_mut(leader).kill();
    let new_leader = cluster
        .leader(Duration::from_secs(20))
        .expect("a new leader");
    assert_ne!(new_leader, leader);
    let node = cluster.node(new_leader);
    assert_no_quote_shown(node);

    // Both sales go on on the new leader.
    assert_eq!(quote(node, carol, QUOTES[2], "q-c").0, 201);
    assert_eq!(node.auction(SEALED)["sealed_quotes_count"], 3);
    assert_no_quote_shown(node);
    assert_eq!(secondary_bid(node, alice, 120, "s-a3").0, 201);
    let shown = node.auction(SECONDARY)["secondary"].clone();
    assert_eq!(
        (shown["current"].as_u64(), shown["minimum_next"].as_u64()),
        (Some(120), Some(130)),
        "{shown}"
    );
    assert_eq!(shown["label"], "Self-held floor area");

    // A bid to the maximum ends secondary bidding at once; the winner pays the cap.
    assert_eq!(secondary_bid(node, bob, 500, "s-b2").0, 201);
    let ended = node.auction(SECONDARY);
    assert_eq!(ended["phase"], "sold", "{ended}");
    let (_, result) = node.control(
        "GET",
        &format!("/control/v1/auctions/{SECONDARY}/result"),
        None,
    );
    assert_eq!(
        (
            result["winner_bidder_id"].as_str(),
            result["final_price"].as_u64(),
            result["secondary_amount"].as_u64()
        ),
        (Some("bob"), Some(CAP), Some(500)),
        "{result}"
    );

    // The sealed window closes on the new leader: the highest quote wins at its amount,
    // and the result lists every quote.
    let sold = node.wait_for_phase(SEALED, "sold", Duration::from_secs(40));
    assert_eq!(sold["phase"], "sold", "{sold}");
    let (status, result) = node.control(
        "GET",
        &format!("/control/v1/auctions/{SEALED}/result"),
        None,
    );
    assert_eq!(status, 200, "{result}");
    assert_eq!(
        (
            result["winner_bidder_id"].as_str(),
            result["final_price"].as_u64()
        ),
        (Some("bob"), Some(QUOTES[1]))
    );
    let mut listed: Vec<u64> = result["sealed_quotes"]
        .as_array()
        .map(|quotes| quotes.iter().filter_map(|q| q["amount"].as_u64()).collect())
        .unwrap_or_default();
    listed.sort();
    assert!(shows_number(&result.to_string(), QUOTES[2]), "{result}");
    let mut expected = QUOTES.to_vec();
    expected.sort();
    assert_eq!(listed, expected, "{result}");
}

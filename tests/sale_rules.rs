//! The version 1.1 sale rules over HTTP on a cluster of three voters (docs/RULES.md,
//! "Deposits", "Who may bid in timed bidding", "Winner's confirmation"): deposits gate
//! qualification and come out of the result with their dispositions; only listing bidders
//! bid in timed bidding; and the winner's confirmation window outlives a leader: the
//! leader is killed while two sales wait for their winners, the new leader's timer marks
//! the unconfirmed one lapsed, its operator declares a default, and the other winner
//! confirms on the new leader.

use gavel_testkit as common;

use std::time::Duration;

use common::cluster::Cluster;
use common::{now_ms, wait_until, Node};
use serde_json::{json, Value};

const CONTESTED: &str = "lot-contested";
const LAPSING: &str = "lot-lapsing";
const DEPOSIT: u64 = 500_000;

fn spec(id: &str, listing_ms: u64, winner_confirm_ms: u64) -> Value {
    let now = now_ms();
    json!({
        "id": id, "title": format!("Parcel {id}"), "parcel": {"area_m2": 8000},
        "start_price": 1_000_000, "increment": 10_000,
        "listing_opens_at_ms": now, "listing_closes_at_ms": now + listing_ms,
        "countdown_ms": 3_000, "deposit": DEPOSIT,
        "timed_bidding_entry": "listing_bidders", "winner_confirm_ms": winner_confirm_ms
    })
}

fn deposit(node: &Node, auction: &str, bidder: &str, amount: u64, reference: &str) -> (u16, Value) {
    let body = json!({"bidder_id": bidder, "amount": amount, "reference": reference});
    node.control(
        "POST",
        &format!("/control/v1/auctions/{auction}/deposits"),
        Some(body),
    )
}

fn qualify(node: &Node, auction: &str, bidder: &str) -> (u16, Value) {
    let body = json!({"bidder_id": bidder});
    node.control(
        "POST",
        &format!("/control/v1/auctions/{auction}/qualifications"),
        Some(body),
    )
}

fn result(node: &Node, auction: &str) -> Value {
    let (status, view) = node.control(
        "GET",
        &format!("/control/v1/auctions/{auction}/result"),
        None,
    );
    assert_eq!(status, 200, "{view}");
    view
}

fn dispositions(view: &Value) -> Vec<(String, u64, String)> {
    view["deposits"]
        .as_array()
        .map(|deposits| {
            deposits
                .iter()
                .map(|d| {
                    let text = |field: &str| d[field].as_str().unwrap_or("").to_string();
                    (
                        text("bidder_id"),
                        d["amount"].as_u64().unwrap_or(0),
                        text("disposition"),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn deposits_listing_bidders_and_the_winners_confirmation_across_a_leader_kill() {
    let dir = common::temp_dir("sale-rules");
    let mut cluster = Cluster::start(dir.path(), 3, 0);
    let leader = cluster.leader(Duration::from_secs(30)).expect("a leader");
    let node = cluster.node(leader);
    node.create_auction(spec(CONTESTED, 5_000, 30_000));
    node.create_auction(spec(LAPSING, 5_000, 8_000));
    for bidder in ["alice", "bob", "carol"] {
        node.register_bidder(bidder);
    }

    // Deposits: no qualification before the whole deposit; deposits add up; a bank
    // reference counts once.
    let (status, refused) = qualify(node, CONTESTED, "bob");
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("deposit_missing")),
        "{refused}"
    );
    let (status, first) = deposit(node, CONTESTED, "bob", 300_000, "BOC-B1");
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        first,
        json!({"bidder_id": "bob", "deposited": 300_000, "required": DEPOSIT})
    );
    let (status, again) = deposit(node, CONTESTED, "bob", 300_000, "BOC-B1");
    assert_eq!(
        (status, &again["deposited"]),
        (200, &json!(300_000)),
        "{again}"
    );
    let (status, other) = deposit(node, CONTESTED, "alice", 300_000, "BOC-B1");
    assert_eq!(
        (status, other["code"].as_str()),
        (409, Some("conflict")),
        "{other}"
    );
    let (status, bad) = deposit(node, CONTESTED, "bob", 0, "BOC-B2");
    assert_eq!(
        (status, bad["code"].as_str()),
        (422, Some("invalid_request")),
        "{bad}"
    );
    assert_eq!(deposit(node, CONTESTED, "bob", 200_000, "BOC-B2").0, 201);
    for (auction, bidder, reference) in [
        (CONTESTED, "alice", "BOC-A1"),
        (CONTESTED, "carol", "BOC-C1"),
        (LAPSING, "alice", "BOC-A2"),
    ] {
        assert_eq!(deposit(node, auction, bidder, DEPOSIT, reference).0, 201);
    }
    for (auction, bidder) in [
        (CONTESTED, "alice"),
        (CONTESTED, "bob"),
        (CONTESTED, "carol"),
        (LAPSING, "alice"),
    ] {
        let (status, answer) = qualify(node, auction, bidder);
        assert_eq!(status, 201, "{auction} {bidder}: {answer}");
    }

    // Listing: Alice and Bob bid in the contested sale, Alice alone in the other.
    let tokens: Vec<String> = ["alice", "bob", "carol"]
        .iter()
        .map(|b| node.login(b))
        .collect();
    assert_eq!(node.bid(&tokens[0], CONTESTED, 1_000_000, "a-1").0, 201);
    assert_eq!(node.bid(&tokens[1], CONTESTED, 1_010_000, "b-1").0, 201);
    assert_eq!(node.bid(&tokens[0], LAPSING, 1_000_000, "a-2").0, 201);
    let view = node.wait_for_phase(CONTESTED, "timed_bidding", Duration::from_secs(15));
    assert_eq!(view["phase"], "timed_bidding", "{view}");
    assert_eq!(view["timed_bidding_entry"], "listing_bidders");

    // Timed bidding is for the listing's bidders only.
    let (status, refused) = node.bid(&tokens[2], CONTESTED, 1_020_000, "c-1");
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("not_eligible")),
        "{refused}"
    );
    assert_eq!(node.bid(&tokens[0], CONTESTED, 1_020_000, "a-3").0, 201);
    let sold = node.wait_for_phase(CONTESTED, "sold", Duration::from_secs(15));
    assert_eq!(
        (sold["phase"].as_str(), sold["confirmation"].as_str()),
        (Some("sold"), Some("pending")),
        "{sold}"
    );
    let lapsing = node.wait_for_phase(LAPSING, "sold", Duration::from_secs(5));
    assert_eq!(lapsing["confirmation"], "pending", "{lapsing}");
    // Only the winner confirms.
    let (status, refused) = node.public(
        "POST",
        &format!("/api/v1/auctions/{CONTESTED}/acceptance"),
        Some(&tokens[1]),
        None,
    );
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("not_winner")),
        "{refused}"
    );

    // The leader dies while both sales wait for their winners.
    cluster.node_mut(leader).kill();
    let new_leader = cluster
        .leader(Duration::from_secs(20))
        .expect("a new leader");
    assert_ne!(new_leader, leader);
    let node = cluster.node(new_leader);

    // Nobody confirms the lapsing sale: the new leader's timer marks it lapsed.
    let lapsed = wait_until(Duration::from_secs(20), || {
        result(node, LAPSING)["confirmation"] == "lapsed"
    });
    assert!(lapsed, "{}", result(node, LAPSING));
    let (status, late) = node.public(
        "POST",
        &format!("/api/v1/auctions/{LAPSING}/acceptance"),
        Some(&tokens[0]),
        None,
    );
    assert_eq!(
        (status, late["code"].as_str()),
        (409, Some("confirmation_closed")),
        "{late}"
    );
    let (status, defaulted) = node.control(
        "POST",
        &format!("/control/v1/auctions/{LAPSING}/default"),
        Some(json!({"reason": "the winner did not sign"})),
    );
    assert_eq!(status, 200, "{defaulted}");
    assert_eq!(defaulted["confirmation"], "defaulted");
    assert_eq!(
        dispositions(&defaulted),
        vec![("alice".to_string(), DEPOSIT, "forfeited".to_string())]
    );

    // The contested sale's winner confirms on the new leader, twice: the same answer.
    for _ in 0..2 {
        let (status, confirmed) = node.public(
            "POST",
            &format!("/api/v1/auctions/{CONTESTED}/acceptance"),
            Some(&tokens[0]),
            None,
        );
        assert_eq!(
            (status, &confirmed),
            (200, &json!({"confirmation": "confirmed"}))
        );
    }
    let contested = result(node, CONTESTED);
    assert_eq!(contested["confirmation"], "confirmed", "{contested}");
    assert_eq!(contested["winner_bidder_id"], "alice");
    assert_eq!(
        dispositions(&contested),
        vec![
            ("alice".to_string(), DEPOSIT, "applied_to_price".to_string()),
            ("bob".to_string(), DEPOSIT, "refund".to_string()),
            ("carol".to_string(), DEPOSIT, "refund".to_string()),
        ]
    );
    // The audit trail keeps every step, the lapse by the system in the new term.
    let (_, audit) = node.control(
        "GET",
        &format!("/control/v1/state/auctions/{LAPSING}"),
        None,
    );
    let actions: Vec<&str> = audit["audit"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .filter_map(|r| r["action"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        actions.ends_with(&[
            "sold",
            "confirmation_pending",
            "confirmation_lapsed",
            "defaulted"
        ]),
        "{actions:?}"
    );
}

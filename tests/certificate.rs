//! The printable result of a sold sale (成交确认书) on the control listener of one real
//! `gavel serve` process: `GET /control/v1/auctions/{id}/certificate` states the winner,
//! the price, every deposit's disposition, the head of the bid hash chain and the winning
//! bid's receipt signature — the receipt text signed alone, the signature the winner's
//! receipt carries when it was answered alone (as here, bids placed one at a time); it is behind
//! the admin token, answers 404 for an unknown sale and 409 for one not sold; the page
//! `/certificate` and its assets are served with the dashboard's Content-Security-Policy.

use gavel_testkit as common;

use std::time::Duration;

use common::{auction_spec, request, Node, ADMIN_TOKEN};
use serde_json::json;

const DEPOSIT: u64 = 200_000;

#[test]
fn a_sold_sale_prints_its_winner_price_deposits_and_signed_receipt() {
    let dir = common::temp_dir("certificate");
    let node = Node::start(dir.path());
    let mut spec = auction_spec("lot-print", 4_000, 1_000);
    spec["title"] = json!("苏地2026-WG-17号地块");
    spec["deposit"] = json!(DEPOSIT);
    node.create_auction(spec);
    node.create_auction(auction_spec("lot-open", 120_000, 60_000));
    for (bidder, reference) in [("alice", "bank-a"), ("bob", "bank-b")] {
        node.register_bidder(bidder);
        let (status, answer) = node.control(
            "POST",
            "/control/v1/auctions/lot-print/deposits",
            Some(json!({"bidder_id": bidder, "amount": DEPOSIT, "reference": reference})),
        );
        assert_eq!(status, 201, "{answer}");
        node.qualify("lot-print", bidder);
    }
    let alice = node.login("alice");
    let bob = node.login("bob");
    let (status, _) = node.bid(&alice, "lot-print", 1_000_000, "a-1");
    assert_eq!(status, 201);
    let (status, winning) = node.bid(&bob, "lot-print", 1_010_000, "b-1");
    assert_eq!(status, 201, "{winning}");
    let path = "/control/v1/auctions/lot-print/certificate";

    // Not before the sale is sold.
    let (status, refusal) = node.control("GET", path, None);
    assert_eq!(status, 409, "{refusal}");
    assert_eq!(refusal["code"], "conflict", "{refusal}");
    node.wait_for_phase("lot-print", "sold", Duration::from_secs(15));

    let (status, certificate) = node.control("GET", path, None);
    assert_eq!(status, 200, "{certificate}");
    assert_eq!(certificate["title"], "苏地2026-WG-17号地块");
    assert_eq!(certificate["result"]["winner_bidder_id"], "bob");
    assert_eq!(certificate["winner_name"], "Bidder bob", "{certificate}");
    assert_eq!(certificate["result"]["final_price"], 1_010_000);
    assert_eq!(certificate["bid_count"], 2);
    let dispositions: Vec<(String, String)> = certificate["result"]["deposits"]
        .as_array()
        .expect("deposits")
        .iter()
        .map(|deposit| {
            (
                deposit["bidder_id"].as_str().unwrap_or("").to_string(),
                deposit["disposition"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        dispositions.contains(&("bob".into(), "applied_to_price".into()))
            && dispositions.contains(&("alice".into(), "refund".into())),
        "{certificate}"
    );
    // The chain head is the last bid's hash; the winning bid's signature is the receipt's.
    assert_eq!(certificate["chain_head_hash"], winning["chain_hash"]);
    assert_eq!(certificate["winning_bid"]["seq"], winning["seq"]);
    assert_eq!(
        certificate["winning_bid"]["chain_hash"],
        winning["chain_hash"]
    );
    assert_eq!(
        certificate["winning_bid"]["receipt_signature"], winning["receipt_signature"],
        "{certificate}"
    );
    let (_, key) = node.public("GET", "/api/v1/receipt-key", None, None);
    assert_eq!(certificate["receipt_public_key"], key["public_key"]);

    // The token, an unknown sale, a sale still open.
    let url = format!("{}{path}", node.control_url);
    let (status, _) = request("GET", &url, None, None);
    assert_eq!(status, 401);
    let (status, _) = request("GET", &url, Some("not-the-token"), None);
    assert_eq!(status, 401);
    let (status, _) = request("GET", &url, Some(ADMIN_TOKEN), None);
    assert_eq!(status, 200);
    let (status, missing) = node.control("GET", "/control/v1/auctions/lot-none/certificate", None);
    assert_eq!(status, 404, "{missing}");
    let (status, open) = node.control("GET", "/control/v1/auctions/lot-open/certificate", None);
    assert_eq!(status, 409, "{open}");
}

#[test]
fn the_certificate_page_and_its_assets_are_served_by_the_control_listener() {
    let dir = common::temp_dir("certificate-page");
    let node = Node::start(dir.path());
    for (path, content_type) in [
        ("/certificate", "text/html"),
        ("/assets/dashboard/certificate.js", "text/javascript"),
        ("/assets/dashboard/certificate.css", "text/css"),
        ("/assets/dashboard/i18n.js", "text/javascript"),
    ] {
        let response = ureq::get(&format!("{}{path}", node.control_url))
            .call()
            .unwrap_or_else(|error| panic!("GET {path}: {error}"));
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            response
                .header("Content-Type")
                .unwrap_or("")
                .starts_with(content_type),
            "{path}"
        );
        assert!(
            response
                .header("Content-Security-Policy")
                .unwrap_or("")
                .starts_with("default-src 'self'"),
            "{path}"
        );
        let body = response.into_string().expect("body");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} points outside the cluster"
        );
    }
}

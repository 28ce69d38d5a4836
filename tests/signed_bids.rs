//! Signed bids on a real node (docs/RULES.md, "Signed bids"): a bidder's key registered
//! over the control listener and `gavel ctl bidder key`, a signed bid accepted, an
//! unsigned one refused 422 and a wrongly signed one 401; `gavel ctl audit verify`
//! passes, and fails once a kept signature is altered in the stored snapshot.

use gavel_testkit as common;

use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::cluster::Cluster;
use common::snapshot::alter_snapshot;
use common::{auction_spec, raw_request, start_with, temp_dir, wait_until, Node, ADMIN_TOKEN};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};

fn gavel_ctl(node: &Node, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args([
            "ctl",
            "--control",
            &node.control_url,
            "--token",
            ADMIN_TOKEN,
        ])
        .args(args)
        .env_remove("GAVEL_ADMIN_TOKEN")
        .output()
        .expect("run gavel ctl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn sign(key: &SigningKey, auction_id: &str, amount: u64, request_id: &str) -> String {
    let text = format!("gavel-bid\n{auction_id}\n{amount}\n{request_id}");
    STANDARD.encode(key.sign(text.as_bytes()).to_bytes())
}

fn bid(
    node: &Node,
    token: &str,
    amount: u64,
    request_id: &str,
    signature: Option<&str>,
) -> (u16, Value) {
    let mut body = json!({"amount": amount, "request_id": request_id});
    if let Some(signature) = signature {
        body["signature"] = json!(signature);
    }
    let url = format!("{}/api/v1/auctions/lot-s/bids", node.public_url);
    raw_request(
        "POST",
        &url,
        Some(token),
        "application/json",
        body.to_string().as_bytes(),
    )
}

fn register_key(node: &Node, bidder_id: &str, algorithm: &str, public_key: &str) -> (u16, Value) {
    let body = json!({"algorithm": algorithm, "public_key": public_key});
    node.control(
        "POST",
        &format!("/control/v1/bidders/{bidder_id}/keys"),
        Some(body),
    )
}

#[test]
fn signed_bids_are_verified_kept_and_audited() {
    let dir = temp_dir("signed-bids");
    let mut node = start_with(dir.path(), "\n[raft]\nsnapshot_every_entries = 1\n");
    let mut spec = auction_spec("lot-s", 60_000, 5_000);
    spec["require_signed_bids"] = json!(true);
    node.create_auction(spec);
    node.register_bidder("ivan");
    node.register_bidder("jane");
    node.qualify("lot-s", "ivan");
    node.qualify("lot-s", "jane");
    let ivan = SigningKey::from_bytes(&[11u8; 32]);
    let ivan_public = STANDARD.encode(ivan.verifying_key().as_bytes());

    // Keys: registered by the command line, the same key again 200, refusals.
    let (ok, text) = gavel_ctl(
        &node,
        &[
            "bidder",
            "key",
            "--bidder",
            "ivan",
            "--algorithm",
            "ed25519",
            "--public-key",
            &ivan_public,
        ],
    );
    assert!(ok && text.contains("ed25519:"), "{text}");
    let (status, view) = register_key(&node, "ivan", "ed25519", &ivan_public);
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["public_key"], json!(ivan_public), "{view}");
    assert!(
        view["key_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("ed25519:")),
        "{view}"
    );
    let (status, problem) = register_key(&node, "nobody", "ed25519", &ivan_public);
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("bidder_not_found"))
    );
    for bad in ["zz*zz".to_string(), STANDARD.encode([1u8; 31])] {
        let (status, problem) = register_key(&node, "jane", "ed25519", &bad);
        assert_eq!(
            (status, problem["code"].as_str()),
            (422, Some("invalid_key")),
            "{problem}"
        );
    }
    for seed in 1..8u8 {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let public = STANDARD.encode(key.verifying_key().as_bytes());
        assert_eq!(register_key(&node, "jane", "ed25519", &public).0, 201);
    }
    let jane = SigningKey::from_bytes(&[8u8; 32]);
    let jane_public = STANDARD.encode(jane.verifying_key().as_bytes());
    assert_eq!(register_key(&node, "jane", "ed25519", &jane_public).0, 201);
    let extra = SigningKey::from_bytes(&[9u8; 32]);
    let (status, problem) = register_key(
        &node,
        "jane",
        "ed25519",
        &STANDARD.encode(extra.verifying_key().as_bytes()),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("too_many_keys")),
        "{problem}"
    );
    let (status, listed) = node.control("GET", "/control/v1/bidders/jane/keys", None);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(8), "{listed}");

    // Bids: unsigned 422, wrongly signed 401, signed 201.
    let ivan_token = node.login("ivan");
    let jane_token = node.login("jane");
    let (status, problem) = bid(&node, &ivan_token, 1_000_000, "s-1", None);
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("signature_required")),
        "{problem}"
    );
    let wrong = sign(&ivan, "lot-s", 1_000_001, "s-1");
    let (status, problem) = bid(&node, &ivan_token, 1_000_000, "s-1", Some(&wrong));
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("bad_signature")),
        "{problem}"
    );
    let (status, problem) = bid(
        &node,
        &jane_token,
        1_000_000,
        "s-1",
        Some(&sign(&ivan, "lot-s", 1_000_000, "s-1")),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("bad_signature")),
        "{problem}"
    );
    let (status, receipt) = bid(
        &node,
        &ivan_token,
        1_000_000,
        "s-1",
        Some(&sign(&ivan, "lot-s", 1_000_000, "s-1")),
    );
    assert_eq!(status, 201, "{receipt}");
    let (status, receipt) = bid(
        &node,
        &jane_token,
        1_010_000,
        "s-2",
        Some(&sign(&jane, "lot-s", 1_010_000, "s-2")),
    );
    assert_eq!(status, 201, "{receipt}");
    let (status, result) = node.control("GET", "/control/v1/auctions/lot-s/result", None);
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["require_signed_bids"], json!(true), "{result}");
    assert_eq!(
        result["bid_signatures"].as_array().map(Vec::len),
        Some(2),
        "{result}"
    );
    assert_eq!(
        result["bid_signatures"][1]["request_id"],
        json!("s-2"),
        "{result}"
    );

    let (ok, text) = gavel_ctl(&node, &["audit", "verify"]);
    assert!(ok, "{text}");
    assert!(text.contains("auction lot-s: 2 bids"), "{text}");

    std::thread::sleep(Duration::from_millis(500));
    node.stop_with(libc::SIGTERM);
    let data_dir = dir.path().join("data");
    let data_dir_arg = data_dir.to_string_lossy().to_string();
    let (ok, text) = gavel_ctl(&node, &["audit", "verify", "--data-dir", &data_dir_arg]);
    assert!(ok, "{text}");
    // A kept signature replaced offline with Ivan's signature of another amount.
    let forged = sign(&ivan, "lot-s", 1_000_500, "s-1");
    alter_snapshot(&data_dir, |kernel| {
        let sale = &mut kernel.auctions.get_mut("lot-s").expect("lot-s").sale;
        sale.bid_signatures.get_mut(&1).expect("kept").signature = forged;
    });
    let (ok, text) = gavel_ctl(&node, &["audit", "verify", "--data-dir", &data_dir_arg]);
    assert!(!ok, "an altered signature passed: {text}");
    assert!(text.contains("auction lot-s: BROKEN"), "{text}");
    assert!(
        text.contains("bid record 1: its signature does not verify"),
        "{text}"
    );
}

fn sign_proxy(key: &SigningKey, auction_id: &str, max_amount: u64, request_id: &str) -> String {
    let text = format!("gavel-bid\n{auction_id}\nproxy_max={max_amount}\n{request_id}");
    STANDARD.encode(key.sign(text.as_bytes()).to_bytes())
}

fn set_proxy(node: &Node, token: &str, body: Value) -> (u16, Value) {
    let url = format!("{}/api/v1/auctions/lot-p/proxy", node.public_url);
    let body = body.to_string();
    raw_request(
        "POST",
        &url,
        Some(token),
        "application/json",
        body.as_bytes(),
    )
}

/// Where signed bids are required, a proxy maximum is taken only signed; its bids carry
/// its signature, withheld from the result while the sale is open (it would show the
/// maximum) and listed with the maximum once it is closed; the audit passes both times,
/// on a follower of a 3-voter cluster as on its leader.
#[test]
fn a_signed_proxy_maximum_stands_behind_its_bids_and_is_audited() {
    let dir = temp_dir("signed-proxy");
    let cluster = Cluster::start(dir.path(), 3, 0);
    let leader = cluster.leader(Duration::from_secs(30)).expect("a leader");
    let node = cluster.node(leader);
    let follower = (1..=3)
        .find(|&id| id != leader)
        .map(|id| cluster.node(id))
        .expect("a follower");
    let mut spec = auction_spec("lot-p", 60_000, 5_000);
    spec["require_signed_bids"] = json!(true);
    node.create_auction(spec);
    let ivan = SigningKey::from_bytes(&[11u8; 32]);
    let jane = SigningKey::from_bytes(&[12u8; 32]);
    for (bidder, key) in [("ivan", &ivan), ("jane", &jane)] {
        node.register_bidder(bidder);
        node.qualify("lot-p", bidder);
        let public = STANDARD.encode(key.verifying_key().as_bytes());
        assert_eq!(register_key(node, bidder, "ed25519", &public).0, 201);
    }
    let ivan_token = node.login("ivan");
    let jane_token = node.login("jane");
    let unsigned = json!({"max_amount": 1_100_000, "request_id": "p-1"});
    let (status, problem) = set_proxy(node, &ivan_token, unsigned);
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("signature_required")),
        "{problem}"
    );
    let of_another_maximum = sign_proxy(&ivan, "lot-p", 1_200_000, "p-1");
    let body =
        json!({"max_amount": 1_100_000, "request_id": "p-1", "signature": of_another_maximum});
    let (status, problem) = set_proxy(node, &ivan_token, body);
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("bad_signature")),
        "{problem}"
    );
    let signature = sign_proxy(&ivan, "lot-p", 1_100_000, "p-1");
    let body = json!({"max_amount": 1_100_000, "request_id": "p-1", "signature": signature});
    let (status, set) = set_proxy(node, &ivan_token, body);
    assert_eq!(status, 201, "{set}");
    assert_eq!(set["bid"]["amount"], json!(1_000_000), "{set}");
    let url = format!("{}/api/v1/auctions/lot-p/bids", node.public_url);
    let jane_bid = json!({
        "amount": 1_010_000,
        "request_id": "j-1",
        "signature": STANDARD.encode(
            jane.sign(b"gavel-bid\nlot-p\n1010000\nj-1").to_bytes()
        ),
    });
    let body = jane_bid.to_string();
    let (status, receipt) = raw_request(
        "POST",
        &url,
        Some(&jane_token),
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(status, 201, "{receipt}");

    let (status, result) = node.control("GET", "/control/v1/auctions/lot-p/result", None);
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["bids"].as_array().map(Vec::len), Some(3), "{result}");
    assert_eq!(result["bid_signatures_withheld"], json!([1, 3]), "{result}");
    assert!(!result.to_string().contains("1100000"), "{result}");
    let applied = |node: &Node, phase: &str| {
        let (_, result) = node.control("GET", "/control/v1/auctions/lot-p/result", None);
        result["bids"].as_array().map(Vec::len) == Some(3) && result["phase"] == json!(phase)
    };
    assert!(wait_until(Duration::from_secs(10), || applied(
        follower, "listing"
    )));
    for node in [node, follower] {
        let (ok, text) = gavel_ctl(node, &["audit", "verify"]);
        assert!(ok && text.contains("auction lot-p: 3 bids"), "{text}");
    }

    let body = json!({"reason": "the parcel is withdrawn"});
    let (status, view) = node.control("POST", "/control/v1/auctions/lot-p/terminate", Some(body));
    assert_eq!(status, 200, "{view}");
    let (_, result) = node.control("GET", "/control/v1/auctions/lot-p/result", None);
    assert_eq!(result.get("bid_signatures_withheld"), None, "{result}");
    let proxied: Vec<&Value> = result["bid_signatures"]
        .as_array()
        .expect("signatures")
        .iter()
        .filter(|kept| kept["proxy_max"] == json!(1_100_000))
        .collect();
    assert_eq!(proxied.len(), 2, "{result}");
    assert!(wait_until(Duration::from_secs(10), || applied(
        follower,
        "terminated"
    )));
    for node in [node, follower] {
        let (ok, text) = gavel_ctl(node, &["audit", "verify"]);
        assert!(ok && text.contains("auction lot-p: 3 bids"), "{text}");
    }
}

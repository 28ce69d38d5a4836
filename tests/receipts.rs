//! Signed bid receipts on real nodes (docs/API.md, Bid receipts): a receipt's signature
//! verifies under the key `GET /api/v1/receipt-key` shows, over the documented text, its
//! `chain_hash` is the bid's hash in the operator's result, a retry answered alone is
//! signed the same as its bid answered alone, receipts answered together share one
//! signature that the library, `gavel verify-receipt` and the bidder page's check accept,
//! `gavel verify-receipt` accepts the saved receipt and refuses a tampered one, a node
//! alone keeps its key across restarts, and every node of a cluster shows the same key.

use gavel_testkit as common;

use std::path::Path;
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::cluster::Cluster;
use common::{auction_spec, Node};
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;

/// The receipt key a node shows, checked for shape.
fn receipt_key(node: &Node) -> Value {
    let (status, answer) = node.public("GET", "/api/v1/receipt-key", None, None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["algorithm"], "ed25519", "{answer}");
    assert!(answer["previous"].is_array(), "{answer}");
    answer
}

fn verifying_key(answer: &Value) -> VerifyingKey {
    let bytes = STANDARD
        .decode(answer["public_key"].as_str().expect("public_key"))
        .expect("base64");
    VerifyingKey::from_bytes(&bytes.try_into().expect("32 bytes")).expect("an Ed25519 key")
}

/// Whether the receipt's signature holds over the text docs/API.md documents.
fn signature_holds(key: &VerifyingKey, receipt: &Value) -> bool {
    let text = format!(
        "gavel-receipt\n{}\n{}\n{}\n{}\n{}",
        receipt["auction_id"].as_str().expect("auction_id"),
        receipt["seq"].as_u64().expect("seq"),
        receipt["amount"].as_u64().expect("amount"),
        receipt["accepted_at_ms"].as_u64().expect("accepted_at_ms"),
        receipt["chain_hash"].as_str().expect("chain_hash"),
    );
    let signature = STANDARD
        .decode(
            receipt["receipt_signature"]
                .as_str()
                .expect("receipt_signature"),
        )
        .expect("base64");
    let signature = Signature::from_slice(&signature).expect("64 bytes");
    key.verify_strict(text.as_bytes(), &signature).is_ok()
}

fn bidder(node: &Node, auction_id: &str, bidder_id: &str) -> String {
    node.register_bidder(bidder_id);
    node.qualify(auction_id, bidder_id);
    node.login(bidder_id)
}

fn verify_receipt(file: &Path, key_args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gavel"))
        .arg("verify-receipt")
        .arg(file)
        .args(key_args)
        .output()
        .expect("run gavel verify-receipt")
}

#[test]
fn a_receipt_is_signed_over_its_chain_hash_and_verifies_offline() {
    let dir = tempfile::Builder::new()
        .prefix("receipts")
        .tempdir()
        .expect("temp dir");
    let mut node = Node::start(dir.path());
    node.create_auction(auction_spec("lot-r", 60_000, 60_000));
    let alice = bidder(&node, "lot-r", "alice");
    let bob = bidder(&node, "lot-r", "bob");

    let (status, first) = node.bid(&alice, "lot-r", 1_000_000, "a-1");
    assert_eq!(status, 201, "{first}");
    let (status, second) = node.bid(&bob, "lot-r", 1_010_000, "b-1");
    assert_eq!(status, 201, "{second}");

    let key_answer = receipt_key(&node);
    assert_eq!(key_answer["previous"], serde_json::json!([]));
    let key = verifying_key(&key_answer);
    for receipt in [&first, &second] {
        assert!(signature_holds(&key, receipt), "{receipt}");
        let mut tampered = receipt.clone();
        tampered["amount"] = (receipt["amount"].as_u64().unwrap() + 10_000).into();
        assert!(
            !signature_holds(&key, &tampered),
            "a changed amount must fail"
        );
    }

    // chain_hash is the bid's link in the hash chain, as the operator's result lists it.
    let (status, result) = node.control("GET", "/control/v1/auctions/lot-r/result", None);
    assert_eq!(status, 200, "{result}");
    let bids = result["bids"].as_array().expect("bids");
    assert_eq!(bids.len(), 2, "{result}");
    for (receipt, bid) in [(&first, &bids[0]), (&second, &bids[1])] {
        assert_eq!(bid["seq"], receipt["seq"]);
        assert_eq!(bid["bid_id"], receipt["bid_id"]);
        assert_eq!(bid["hash"], receipt["chain_hash"], "{result}");
    }
    assert_eq!(bids[1]["prev_hash"], first["chain_hash"]);

    // A retry of the same request answers the original receipt, signed the same.
    let (status, again) = node.bid(&alice, "lot-r", 1_000_000, "a-1");
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["chain_hash"], first["chain_hash"]);
    assert_eq!(again["receipt_signature"], first["receipt_signature"]);

    // The bidder's offline check, with the key as base64 and as the saved answer.
    let saved = dir.path().join("receipt.json");
    std::fs::write(&saved, second.to_string()).expect("save receipt");
    let key_file = dir.path().join("receipt-key.json");
    std::fs::write(&key_file, key_answer.to_string()).expect("save key");
    let public_key = key_answer["public_key"].as_str().unwrap();
    for key_args in [
        ["--key", public_key],
        ["--key-file", key_file.to_str().unwrap()],
    ] {
        let output = verify_receipt(&saved, &key_args);
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.starts_with("valid"), "{stdout}");
        assert!(
            stdout.contains("lot-r") && stdout.contains("seq 2") && stdout.contains("1010000"),
            "{stdout}"
        );
    }
    let mut tampered = second.clone();
    tampered["amount"] = 1_020_000.into();
    let forged = dir.path().join("forged.json");
    std::fs::write(&forged, tampered.to_string()).expect("save forged");
    let output = verify_receipt(&forged, &["--key", public_key]);
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad signature"), "{stderr}");
    let mut unsigned = second.clone();
    unsigned
        .as_object_mut()
        .unwrap()
        .remove("receipt_signature");
    std::fs::write(&forged, unsigned.to_string()).expect("save unsigned");
    let output = verify_receipt(&forged, &["--key", public_key]);
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("missing field receipt_signature"),
        "{stderr}"
    );

    // A node alone keeps the key it made: receipts it signed still verify after a restart.
    node.kill();
    node.spawn();
    assert_eq!(receipt_key(&node)["public_key"], key_answer["public_key"]);
}

#[test]
fn every_node_of_a_cluster_shows_and_signs_with_the_same_key() {
    let dir = tempfile::Builder::new()
        .prefix("receipts-cluster")
        .tempdir()
        .expect("temp dir");
    let cluster = Cluster::start(dir.path(), 3, 0);
    let keys: Vec<Value> = cluster
        .nodes
        .iter()
        .map(|node| receipt_key(node)["public_key"].clone())
        .collect();
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[1], keys[2]);
    let configured =
        gavel::receipts::read_key_file(&cluster.receipt_key_file).expect("the shared key file");
    assert_eq!(keys[0], configured.public_key().as_str());

    let leader = cluster
        .leader(std::time::Duration::from_secs(10))
        .expect("a leader");
    let follower = cluster
        .nodes
        .iter()
        .enumerate()
        .find(|(index, _)| *index as u64 + 1 != leader)
        .map(|(_, node)| node)
        .expect("a follower");
    let leader_node = cluster.node(leader);
    leader_node.create_auction(auction_spec("lot-c", 60_000, 60_000));
    let carol = bidder(leader_node, "lot-c", "carol");
    // Answered by a follower, which forwards the bid to the leader.
    let (status, receipt) = follower.bid(&carol, "lot-c", 1_000_000, "c-1");
    assert_eq!(status, 201, "{receipt}");
    let key = verifying_key(&receipt_key(leader_node));
    assert!(signature_holds(&key, &receipt), "{receipt}");
}

#[test]
fn a_retry_after_the_auction_is_archived_is_signed_from_the_archive() {
    let dir = tempfile::Builder::new()
        .prefix("receipts-archived")
        .tempdir()
        .expect("temp dir");
    let node = Node::start(dir.path());
    node.create_auction(auction_spec("lot-a", 300, 300));
    let dave = bidder(&node, "lot-a", "dave");
    let (status, first) = node.bid(&dave, "lot-a", 1_000_000, "d-1");
    assert_eq!(status, 201, "{first}");
    node.wait_for_phase("lot-a", "sold", std::time::Duration::from_secs(10));
    let archived = common::wait_until(std::time::Duration::from_secs(15), || {
        let (_, list) = node.public("GET", "/api/v1/auctions", None, None);
        list["auctions"]
            .as_array()
            .is_some_and(|auctions| auctions.iter().all(|auction| auction["id"] != "lot-a"))
    });
    assert!(archived, "lot-a never left the live state");
    let (status, again) = node.bid(&dave, "lot-a", 1_000_000, "d-1");
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["auction"]["phase"], "sold", "{again}");
    assert_eq!(again["chain_hash"], first["chain_hash"]);
    assert_eq!(again["receipt_signature"], first["receipt_signature"]);
    assert!(signature_holds(&verifying_key(&receipt_key(&node)), &again));
}

/// The receipts of bids answered at the same moment are signed together: each carries
/// `receipt_batch` and verifies — by the library, by `gavel verify-receipt` and by the
/// bidder page's own receipt.js (in Node.js) — and a changed amount fails in all three.
#[test]
fn receipts_answered_together_share_one_signature_and_each_verifies() {
    const AUCTIONS: usize = 24;
    const BIDS_EACH: u64 = 30;
    let dir = tempfile::Builder::new()
        .prefix("receipts-batch")
        .tempdir()
        .expect("temp dir");
    let node = Node::start(dir.path());
    let mut tokens = Vec::new();
    for index in 0..AUCTIONS {
        let auction_id = format!("lot-b{index}");
        node.create_auction(auction_spec(&auction_id, 120_000, 60_000));
        let first = bidder(&node, &auction_id, &format!("b{index}-first"));
        let second = bidder(&node, &auction_id, &format!("b{index}-second"));
        tokens.push((auction_id, [first, second]));
    }
    // Every auction's two bidders take turns, all auctions at once.
    let receipts: Vec<Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = tokens
            .iter()
            .map(|(auction_id, pair)| {
                let node = &node;
                scope.spawn(move || {
                    (0..BIDS_EACH)
                        .map(|turn| {
                            let amount = 1_000_000 + turn * 10_000;
                            let (status, receipt) = node.bid(
                                &pair[(turn % 2) as usize],
                                auction_id,
                                amount,
                                &format!("{auction_id}-{turn}"),
                            );
                            assert_eq!(status, 201, "{receipt}");
                            receipt
                        })
                        .collect::<Vec<Value>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("a bidding thread"))
            .collect()
    });
    assert_eq!(receipts.len(), AUCTIONS * BIDS_EACH as usize);

    let key_answer = receipt_key(&node);
    let key = verifying_key(&key_answer);
    let batched: Vec<&Value> = receipts
        .iter()
        .filter(|receipt| receipt.get("receipt_batch").is_some())
        .collect();
    assert!(
        !batched.is_empty(),
        "{} receipts answered {AUCTIONS} at a time and none signed together",
        receipts.len()
    );
    for receipt in &receipts {
        let fields = gavel::receipts::SignedFields {
            auction_id: receipt["auction_id"].as_str().expect("auction_id"),
            seq: receipt["seq"].as_u64().expect("seq"),
            amount: receipt["amount"].as_u64().expect("amount"),
            accepted_at_ms: receipt["accepted_at_ms"].as_u64().expect("accepted_at_ms"),
            chain_hash: receipt["chain_hash"].as_str().expect("chain_hash"),
        };
        let batch: Option<gavel::receipts::ReceiptBatch> = receipt
            .get("receipt_batch")
            .map(|batch| serde_json::from_value(batch.clone()).expect("a receipt_batch"));
        let signature = receipt["receipt_signature"].as_str().expect("signature");
        assert_eq!(
            gavel::receipts::verify_signature(&key, &fields, signature, batch.as_ref()),
            Ok(()),
            "{receipt}"
        );
        // A batch's signature is not the receipt's own.
        assert_eq!(batch.is_none(), signature_holds(&key, receipt), "{receipt}");
    }

    // The bidder's offline check of a receipt signed together, and of it changed.
    let public_key = key_answer["public_key"].as_str().unwrap();
    let saved = dir.path().join("batched.json");
    std::fs::write(&saved, batched[0].to_string()).expect("save receipt");
    let output = verify_receipt(&saved, &["--key", public_key]);
    assert!(output.status.success(), "{output:?}");
    let mut tampered = batched[0].clone();
    tampered["amount"] = (tampered["amount"].as_u64().unwrap() + 10_000).into();
    std::fs::write(&saved, tampered.to_string()).expect("save forged");
    let output = verify_receipt(&saved, &["--key", public_key]);
    assert!(!output.status.success(), "{output:?}");

    // The bidder page's check, run by Node.js on the same receipts and the changed one.
    let mut checked: Vec<Value> = batched
        .iter()
        .take(50)
        .map(|receipt| (*receipt).clone())
        .collect();
    checked.push(tampered);
    let verdicts = page_verdicts(dir.path(), public_key, &checked);
    let mut wanted = vec!["verified".to_string(); checked.len() - 1];
    wanted.push("bad".to_string());
    assert_eq!(verdicts, wanted);
}

/// What the bidder page's receipt check (assets/bidder/receipt.js, run by Node.js through
/// tests/browser/receipt.mjs) says of each of `receipts` under `public_key`.
fn page_verdicts(dir: &Path, public_key: &str, receipts: &[Value]) -> Vec<String> {
    let input = dir.join("page-check.json");
    std::fs::write(
        &input,
        serde_json::json!({"keys": [public_key], "receipts": receipts}).to_string(),
    )
    .expect("write the page's input");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/receipt.mjs");
    let output = Command::new("node")
        .arg(&script)
        .arg(&input)
        .output()
        .expect(
            "Node.js runs tests/browser/receipt.mjs (apt-get install -y nodejs; .ci/run does it)",
        );
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The page's Merkle walk against the library's trees: every receipt of batches of 2 to
/// 17 verifies, and each batch's last receipt with a changed amount does not.
#[test]
fn the_pages_check_agrees_with_the_library_for_every_batch_size_and_place() {
    let dir = tempfile::Builder::new()
        .prefix("receipts-page")
        .tempdir()
        .expect("temp dir");
    let key = gavel::receipts::parse_seed(&gavel::receipts::new_seed()).expect("a key");
    let chain_hash = "ef".repeat(32);
    let mut receipts = Vec::new();
    let mut wanted = Vec::new();
    for size in 2..=17u64 {
        let fields: Vec<(u64, u64)> = (1..=size).map(|seq| (seq, 500_000 + seq)).collect();
        let texts = fields
            .iter()
            .map(|(seq, amount)| {
                gavel::receipts::SignedFields {
                    auction_id: "lot-page",
                    seq: *seq,
                    amount: *amount,
                    accepted_at_ms: 1_700_000_000_000,
                    chain_hash: &chain_hash,
                }
                .message()
            })
            .collect();
        let signed = gavel::receipts::batch::sign_together(&key, texts);
        for ((seq, amount), signed) in fields.iter().zip(&signed) {
            receipts.push(serde_json::json!({
                "auction_id": "lot-page", "seq": seq, "amount": amount,
                "accepted_at_ms": 1_700_000_000_000u64, "chain_hash": chain_hash,
                "receipt_signature": signed.signature, "receipt_batch": signed.batch,
            }));
            wanted.push("verified".to_string());
        }
        let mut changed = receipts.last().expect("a receipt").clone();
        changed["amount"] = (changed["amount"].as_u64().unwrap() + 1).into();
        receipts.push(changed);
        wanted.push("bad".to_string());
    }
    assert_eq!(
        page_verdicts(dir.path(), &key.public_key(), &receipts),
        wanted
    );
}

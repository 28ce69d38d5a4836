//! `gavel ctl audit verify` against a real node: every hash chain intact online and on
//! the stopped node's data directory, then one bid record altered offline in the stored
//! snapshot (in the node's own encoding) fails the check, naming the auction and record.
//! A capped sale's lottery: only its commitment is shown until the draw, which publishes
//! the seed; verify re-draws it online and offline, and fails when the stored winner or
//! seed is changed.

use gavel_testkit as common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::snapshot::alter_snapshot;
use common::{auction_spec, raw_request, start_with, temp_dir, Node, ADMIN_TOKEN};
use gavel_kernel::lottery::{commitment, Lottery};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

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

#[test]
fn audit_verify_passes_on_intact_chains_and_fails_on_a_bid_altered_offline() {
    let dir = temp_dir("audit-verify");
    // A snapshot after every entry, so the bid records are on disk as records.
    let mut node = start_with(dir.path(), "\n[raft]\nsnapshot_every_entries = 1\n");
    node.create_auction(auction_spec("lot-v", 60_000, 5_000));
    node.create_auction(auction_spec("lot-w", 60_000, 5_000));
    let mut tokens = Vec::new();
    for id in ["ivan", "jane"] {
        node.register_bidder(id);
        node.qualify("lot-v", id);
        tokens.push(node.login(id));
    }
    for (index, amount) in [1_000_000u64, 1_010_000, 1_020_000, 1_030_000]
        .iter()
        .enumerate()
    {
        let (status, receipt) =
            node.bid(&tokens[index % 2], "lot-v", *amount, &format!("v-{index}"));
        assert_eq!(status, 201, "{receipt}");
    }
    let (ok, text) = gavel_ctl(&node, &["audit", "verify"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("auction lot-v: 4 bids, hash chain intact"),
        "{text}"
    );
    assert!(text.contains("auction lot-w: 0 bids"), "{text}");

    // The operator audit trail, as `gavel ctl audit list` prints it.
    let (ok, text) = gavel_ctl(&node, &["audit", "list", "--action", "qualify"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("test-operator\tqualify\tlot-v/ivan\tok"),
        "{text}"
    );
    assert!(!text.contains("register_bidder"), "{text}");
    // A running node's data directory is locked: the offline check refuses it.
    let data_dir = dir.path().join("data");
    let data_dir_arg = data_dir.to_string_lossy().to_string();
    let (ok, text) = gavel_ctl(&node, &["audit", "verify", "--data-dir", &data_dir_arg]);
    assert!(!ok && text.contains("still running"), "{text}");

    // Give the last snapshot time to be built, then stop the node.
    std::thread::sleep(Duration::from_millis(500));
    node.stop_with(libc::SIGTERM);
    let (ok, text) = gavel_ctl(&node, &["audit", "verify", "--data-dir", &data_dir_arg]);
    assert!(ok, "{text}");
    assert!(
        text.contains("auction lot-v: 4 bids, hash chain intact"),
        "{text}"
    );

    // Raise bid record 2 by 5 000 in the stored snapshot, in the node's own encoding.
    let altered_seq = alter_snapshot_bid(&data_dir, "lot-v", 1, 5_000);
    let (ok, text) = gavel_ctl(&node, &["audit", "verify", "--data-dir", &data_dir_arg]);
    assert!(!ok, "an altered record passed: {text}");
    assert!(text.contains("auction lot-v: BROKEN"), "{text}");
    assert!(
        text.contains(&format!("bid record {altered_seq} of auction lot-v")),
        "{text}"
    );
    assert!(
        text.contains("auction lot-w: 0 bids, hash chain intact"),
        "{text}"
    );
}

/// Adds `raise` to the amount of bid `index` of `auction_id` in the stored snapshot, and
/// answers that bid's seq.
fn alter_snapshot_bid(data_dir: &Path, auction_id: &str, index: usize, raise: u64) -> u64 {
    let mut seq = 0;
    alter_snapshot(data_dir, |kernel| {
        let bids = &mut kernel
            .auctions
            .get_mut(auction_id)
            .expect("the auction is in the snapshot")
            .bids;
        assert!(bids.len() > index, "the snapshot holds {} bids", bids.len());
        bids[index].amount += raise;
        seq = bids[index].seq;
    });
    seq
}

fn confirm(node: &Node, token: &str, body: &[u8]) -> (u16, Value) {
    let url = format!("{}/api/v1/auctions/lot-c/confirmations", node.public_url);
    raw_request("POST", &url, Some(token), "application/json", body)
}

/// What the node shows of `lot-c` on every read: public and control views, the result
/// and the replica read, as text.
fn everything_shown(node: &Node) -> String {
    let reads = [
        node.public("GET", "/api/v1/auctions/lot-c", None, None),
        node.control("GET", "/control/v1/auctions", None),
        node.control("GET", "/control/v1/auctions/lot-c/result", None),
        node.control("GET", "/control/v1/state/auctions/lot-c", None),
    ];
    reads
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body.to_string()
        })
        .collect()
}

#[test]
fn a_capped_lottery_shows_only_its_commitment_until_the_draw_and_verify_redraws_it() {
    let dir = temp_dir("audit-lottery");
    let mut node = start_with(dir.path(), "\n[raft]\nsnapshot_every_entries = 1\n");
    let mut spec = auction_spec("lot-c", 60_000, 5_000);
    spec["price_cap"] = json!(1_020_000);
    spec["cap_confirm_ms"] = json!(2_000);
    node.create_auction(spec);
    // The contract documents the nonce and the commitment.
    let (_, api) = node.public("GET", "/openapi.json", None, None);
    let confirm_api = &api["paths"]["/api/v1/auctions/{id}/confirmations"]["post"];
    assert!(confirm_api["requestBody"].is_object(), "{confirm_api}");
    let schemas = &api["components"]["schemas"];
    assert!(
        schemas["ConfirmRequest"]["properties"]["nonce"].is_object(),
        "{schemas}"
    );
    assert!(schemas["AuctionView"]["properties"]["lottery_commitment"].is_object());
    let mut tokens = Vec::new();
    for id in ["ivan", "jane", "kim"] {
        node.register_bidder(id);
        node.qualify("lot-c", id);
        tokens.push(node.login(id));
    }
    assert_eq!(node.bid(&tokens[0], "lot-c", 1_000_000, "c-1").0, 201);
    assert_eq!(node.bid(&tokens[1], "lot-c", 1_020_000, "c-2").0, 201);

    // Capped: the public view shows the commitment, and no lottery yet.
    let view = node.auction("lot-c");
    assert_eq!(view["phase"], "capped", "{view}");
    let committed = view["lottery_commitment"].as_str().expect("a commitment");
    assert_eq!(committed.len(), 64, "{view}");
    assert_eq!(view["lottery"], Value::Null, "{view}");
    // Confirmations: with a nonce, without a body, and refused ones that change nothing.
    assert_eq!(
        confirm(&node, &tokens[0], br#"{"nonce":"ivan-7f3a"}"#).0,
        201
    );
    assert_eq!(confirm(&node, &tokens[1], b"").0, 201);
    let (status, problem) = confirm(&node, &tokens[0], br#"{"nonce":"other"}"#);
    assert_eq!((status, problem["code"].as_str()), (409, Some("conflict")));
    let (status, problem) = confirm(&node, &tokens[1], br#"{"nonce":"not a nonce"}"#);
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("invalid_request"))
    );
    let (status, problem) = confirm(&node, &tokens[1], br#"{"nonse":"x"}"#);
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("invalid_request"))
    );
    assert_eq!(confirm(&node, &tokens[2], b"{}").0, 403);
    let shown_before_the_draw = everything_shown(&node);

    let view = node.wait_for_phase("lot-c", "sold", Duration::from_secs(10));
    assert_eq!(view["phase"], "sold", "{view}");
    let lottery = &view["lottery"];
    let seed = lottery["seed"]
        .as_str()
        .expect("the draw publishes the seed");
    let seed_bytes = hex::decode(seed).expect("hex seed");
    assert_eq!(hex::encode(Sha256::digest(&seed_bytes)), committed);
    assert_eq!(lottery["commitment"], committed);
    assert_eq!(lottery["entrants"][0]["nonce"], "ivan-7f3a", "{lottery}");
    assert_eq!(lottery["entrants"][1]["nonce"], "", "{lottery}");
    assert!(
        !shown_before_the_draw.contains(seed),
        "the seed was shown before the draw: {shown_before_the_draw}"
    );
    let seed_as_numbers = serde_json::to_string(&seed_bytes).expect("json");
    let seed_as_numbers = &seed_as_numbers[1..seed_as_numbers.len() - 1];
    assert!(!shown_before_the_draw.contains(seed_as_numbers));

    let (ok, text) = gavel_ctl(&node, &["audit", "verify"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("auction lot-c: 2 bids, hash chain intact, lottery re-drawn"),
        "{text}"
    );

    std::thread::sleep(Duration::from_millis(500));
    node.stop_with(libc::SIGTERM);
    let data_dir = dir.path().join("data");
    let data_dir_arg = data_dir.to_string_lossy().to_string();
    let (ok, text) = gavel_ctl(&node, &["audit", "verify", "--data-dir", &data_dir_arg]);
    assert!(ok, "{text}");
    assert!(
        text.contains("auction lot-c: 2 bids, hash chain intact, lottery re-drawn"),
        "{text}"
    );

    // The winner moved to the other entrant, the draw's index with it.
    let snapshot = data_dir.join("raft").join("gavel-snapshot");
    let original = std::fs::read(&snapshot).expect("the snapshot");
    alter_snapshot(&data_dir, |kernel| {
        let auction = kernel.auctions.get_mut("lot-c").expect("lot-c");
        let loser = auction.confirmations.iter().find(|confirmation| {
            Some(&confirmation.bidder_id) != auction.winner.as_ref().map(|w| &w.bidder_id)
        });
        let loser = loser.expect("two entrants").bidder_id.clone();
        let winner = auction.winner.as_mut().expect("a winner");
        let Some(Lottery::CommitReveal(draw)) = winner.lottery.as_mut() else {
            panic!("a commit-reveal draw");
        };
        draw.drawn_index = 1 - draw.drawn_index;
        winner.bidder_number = draw.entrants[draw.drawn_index as usize].bidder_number;
        winner.bidder_id = loser;
    });
    let (ok, text) = gavel_ctl(&node, &["audit", "verify", "--data-dir", &data_dir_arg]);
    assert!(!ok, "a changed winner passed: {text}");
    assert!(text.contains("auction lot-c: BROKEN"), "{text}");
    assert!(text.contains("re-draws index"), "{text}");

    // Another seed, with a commitment of its own in the draw.
    std::fs::write(&snapshot, &original).expect("put the snapshot back");
    alter_snapshot(&data_dir, |kernel| {
        let auction = kernel.auctions.get_mut("lot-c").expect("lot-c");
        let winner = auction.winner.as_mut().expect("a winner");
        let Some(Lottery::CommitReveal(draw)) = winner.lottery.as_mut() else {
            panic!("a commit-reveal draw");
        };
        draw.seed[0] ^= 1;
        draw.commitment = commitment(&draw.seed);
    });
    let (ok, text) = gavel_ctl(&node, &["audit", "verify", "--data-dir", &data_dir_arg]);
    assert!(!ok, "a changed seed passed: {text}");
    assert!(text.contains("auction lot-c: BROKEN"), "{text}");
    assert!(
        text.contains("not the one published at cap entry"),
        "{text}"
    );
}

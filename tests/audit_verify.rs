//! `gavel ctl audit verify` against a real node: every hash chain intact online and on
//! the stopped node's data directory, then one bid record altered offline in the stored
//! snapshot (in the node's own encoding) fails the check, naming the auction and record.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{auction_spec, start_with, temp_dir, Node, ADMIN_TOKEN};

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

/// The snapshot's data as the node writes it (`replication::state_machine`): a format
/// byte, then bincode with fixed-width little-endian integers.
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotPayload {
    kernel: gavel::kernel::State,
    last_applied: Option<openraft::LogId<u64>>,
    last_membership: openraft::StoredMembership<u64, gavel::replication::NodeInfo>,
    archived: Vec<gavel::replication::archive::ArchivedAuction>,
    exchange: gavel::replication::exchange::ExchangeLedger,
    /// The term of the last takeover applied (`State::leader_term`).
    leader_term: u64,
}

/// Adds `raise` to the amount of bid `index` of `auction_id` in the stored snapshot, and
/// answers that bid's seq.
fn alter_snapshot_bid(data_dir: &Path, auction_id: &str, index: usize, raise: u64) -> u64 {
    use bincode::Options;
    let options = || {
        bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_little_endian()
            .reject_trailing_bytes()
    };
    // The snapshot file (`replication::snapshot_file`): the metadata record's length (u64,
    // little-endian), the metadata record, then the data.
    let path = data_dir.join("raft").join("gavel-snapshot");
    let file = std::fs::read(&path).expect("a stored snapshot file");
    let mut length = [0u8; 8];
    length.copy_from_slice(&file[..8]);
    let data_start = 8 + u64::from_le_bytes(length) as usize;
    let stored = &file[data_start..];
    assert_eq!(stored[0], 1, "snapshot format byte");
    let mut payload: SnapshotPayload = options()
        .deserialize(&stored[1..])
        .expect("decode snapshot");
    let bids = &mut payload
        .kernel
        .auctions
        .get_mut(auction_id)
        .expect("the auction is in the snapshot")
        .bids;
    assert!(bids.len() > index, "the snapshot holds {} bids", bids.len());
    bids[index].amount += raise;
    let seq = bids[index].seq;
    let mut bytes = file[..data_start].to_vec();
    bytes.push(1u8);
    options()
        .serialize_into(&mut bytes, &payload)
        .expect("encode snapshot");
    std::fs::write(&path, bytes).expect("write the altered snapshot");
    seq
}

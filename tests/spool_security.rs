//! The spool's files are authenticated and keep no secret, with a real node: a file
//! whose HMAC is made with the spool's key applies, and what the node keeps of it in
//! `processed/` and `quarantine/*.rejected.jsonl` holds no bidder's secret; a file with
//! a plain SHA-256 checksum, one with another key's HMAC, and a symbolic link are
//! quarantined whole and nothing of them applies.

use gavel_testkit as common;

use std::path::Path;
use std::time::Duration;

use common::{request, wait_until};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const KEY_HEX: &str = "3b8e0f7a1c6d2e9f5a4b7c0d8e1f2a3b6c9d0e7f4a5b2c1d8e3f6a9b0c7d4e5f";
const OTHER_KEY_HEX: &str = "c47a19e05b3d82f6a1c9e7b4d0f28a5c3e6b91d7f04a2c8e5b1d9f3a7c6e0b42";

fn mac_line(body: &str, records: usize, key_hex: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&hex::decode(key_hex).unwrap()).unwrap();
    mac.update(body.as_bytes());
    let sum = hex::encode(mac.finalize().into_bytes());
    format!(
        "{}\n",
        json!({"checksum": format!("hmac-sha256:{sum}"), "records": records})
    )
}

fn sha256_line(body: &str, records: usize) -> String {
    let sum = hex::encode(Sha256::digest(body.as_bytes()));
    format!(
        "{}\n",
        json!({"checksum": format!("sha256:{sum}"), "records": records})
    )
}

fn register(key: &str, bidder_id: &str, secret: &str) -> Value {
    json!({"key": key, "status": "new", "data": {"type": "register_bidder",
        "bidder_id": bidder_id, "name": bidder_id, "secret": secret}})
}

/// Delivers `records` as `name`, aside then renamed in, closed by `last_line`.
fn deliver(spool: &Path, name: &str, records: &[Value], last_line: impl Fn(&str, usize) -> String) {
    let body: String = records.iter().map(|record| format!("{record}\n")).collect();
    let aside = spool.join("inbound").join(format!(".{name}.partial"));
    std::fs::write(&aside, format!("{body}{}", last_line(&body, records.len()))).unwrap();
    std::fs::rename(&aside, spool.join("inbound").join(name)).unwrap();
}

fn sign_in(node: &common::Node, bidder_id: &str, secret: &str) -> u16 {
    let body = json!({"bidder_id": bidder_id, "secret": secret});
    request(
        "POST",
        &format!("{}/api/v1/sessions", node.public_url),
        None,
        Some(body),
    )
    .0
}

#[test]
fn spool_files_without_the_spools_hmac_are_quarantined_and_kept_files_hold_no_secret() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::temp_dir("spool-security");
    let spool = dir.path().join("spool");
    let key_file = dir.path().join("spool.key");
    std::fs::write(&key_file, format!("{KEY_HEX}\n")).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let extra = format!(
        "[exchange]\ndir = \"{}\"\ninterval_ms = 100\nhmac_key_file = \"{}\"\n",
        spool.display(),
        key_file.display()
    );
    let node = common::start_with(dir.path(), &extra);
    assert!(wait_until(Duration::from_secs(10), || spool
        .join("inbound")
        .is_dir()));

    // Files the key did not write: a plain checksum, another key, a link to a good file.
    deliver(
        &spool,
        "001-plain.jsonl",
        &[register("k-mallory", "mallory", "mallory-secret-1")],
        sha256_line,
    );
    deliver(
        &spool,
        "002-other-key.jsonl",
        &[register("k-eve", "eve", "eve-secret-1")],
        |body, count| mac_line(body, count, OTHER_KEY_HEX),
    );
    let outside = dir.path().join("outside.jsonl");
    let body = format!("{}\n", register("k-trudy", "trudy", "trudy-secret-1"));
    std::fs::write(&outside, format!("{body}{}", mac_line(&body, 1, KEY_HEX))).unwrap();
    std::os::unix::fs::symlink(&outside, spool.join("inbound/003-link.jsonl")).unwrap();
    // A good file: a bidder, and a bad record holding a secret.
    let mut bad = register("k-odd", "odd", "odd-record-secret-1");
    bad["status"] = json!("done");
    deliver(
        &spool,
        "004-good.jsonl",
        &[register("k-ada", "ada", "ada-spool-secret-1"), bad],
        |body, count| mac_line(body, count, KEY_HEX),
    );

    let done = wait_until(Duration::from_secs(20), || {
        spool.join("processed/004-good.jsonl").exists()
    });
    assert!(done, "the good file was not processed: {}", node.log_tail());
    for name in ["001-plain.jsonl", "002-other-key.jsonl", "003-link.jsonl"] {
        assert!(
            spool.join("quarantine").join(name).exists(),
            "{name} quarantined"
        );
        assert!(
            !spool.join("inbound").join(name).exists(),
            "{name} left inbound/"
        );
        let reason =
            std::fs::read_to_string(spool.join("quarantine").join(format!("{name}.reason")))
                .unwrap();
        println!("{name}: {reason}");
    }
    assert_eq!(sign_in(&node, "ada", "ada-spool-secret-1"), 201);
    for (bidder, secret) in [
        ("mallory", "mallory-secret-1"),
        ("eve", "eve-secret-1"),
        ("trudy", "trudy-secret-1"),
    ] {
        assert_eq!(sign_in(&node, bidder, secret), 401, "{bidder} was applied");
    }

    let processed = std::fs::read_to_string(spool.join("processed/004-good.jsonl")).unwrap();
    let rejected =
        std::fs::read_to_string(spool.join("quarantine/004-good.jsonl.rejected.jsonl")).unwrap();
    for (what, text) in [("processed", &processed), ("rejected", &rejected)] {
        assert!(
            !text.contains("ada-spool-secret-1") && !text.contains("odd-record-secret-1"),
            "{what} keeps a secret: {text}"
        );
        assert!(text.contains("<redacted>"), "{what}: {text}");
    }
    assert!(processed.contains("\"bidder_id\":\"ada\""), "{processed}");
    assert_eq!(
        processed
            .lines()
            .last()
            .map(|line| line.starts_with("{\"checksum\":\"hmac-sha256:")),
        Some(true),
        "{processed}"
    );
    for file in [
        spool.join("processed/004-good.jsonl"),
        spool.join("quarantine/004-good.jsonl.rejected.jsonl"),
    ] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{} is {:o}", file.display(), mode & 0o777);
    }
    assert!(outside.exists(), "the link's target is left alone");
}

#[test]
fn a_node_with_a_spool_and_no_hmac_key_refuses_to_start() {
    let dir = common::temp_dir("spool-no-key");
    let extra = format!(
        "[exchange]\ndir = \"{}\"\n",
        dir.path().join("spool").display()
    );
    let mut node = common::Node::configure(
        dir.path(),
        1,
        (
            common::free_port(),
            common::free_port(),
            common::free_port(),
        ),
        &extra,
    );
    node.spawn_without_waiting();
    let status = node.wait_for_exit(Duration::from_secs(20)).expect("exits");
    assert!(!status.success());
    assert!(
        node.log_text().contains("exchange.hmac_key_file"),
        "{}",
        node.log_text()
    );
}

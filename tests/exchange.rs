//! The intranet–internet spool with real processes: a 3-voter cluster sharing one spool
//! directory. Control records arrive as files; each is applied once per key, bad ones
//! are quarantined with their reason, an incomplete file waits, results go out once per
//! key, and a leader SIGKILLed in the middle of a file leaves nothing doubled.

use gavel_testkit as common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::cluster::{try_control, Cluster};
use common::wait_until;
use common::{auction_spec, request};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// The spool's HMAC key, as hex in the key file both sides hold.
const SPOOL_KEY_HEX: &str = "9f1c2a7be04d5536a8c1f0e2b79d4a6038e5c7f1a2b4d6e8091a3c5e7f90b2d4";

/// Writes the spool's key file into `dir` (mode 0600); the `[exchange]` lines naming it.
fn spool_key_config(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("spool.key");
    std::fs::write(&path, format!("{SPOOL_KEY_HEX}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    format!("hmac_key_file = \"{}\"\n", path.display())
}

fn body_of(records: &[Value]) -> String {
    records.iter().map(|record| format!("{record}\n")).collect()
}

fn checksum_line(body: &str, records: usize) -> String {
    let key = hex::decode(SPOOL_KEY_HEX).unwrap();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(body.as_bytes());
    let sum = hex::encode(mac.finalize().into_bytes());
    format!(
        "{}\n",
        json!({"checksum": format!("hmac-sha256:{sum}"), "records": records})
    )
}

/// Writes a complete spool file the way the gateway does: aside, then renamed in.
fn deliver(spool: &Path, name: &str, records: &[Value]) {
    let body = body_of(records);
    let aside = spool.join("inbound").join(format!(".{name}.partial"));
    std::fs::write(
        &aside,
        format!("{body}{}", checksum_line(&body, records.len())),
    )
    .unwrap();
    std::fs::rename(&aside, spool.join("inbound").join(name)).unwrap();
}

fn record(key: &str, data: Value) -> Value {
    json!({"key": key, "status": "new", "data": data})
}

fn register(key: &str, bidder_id: &str) -> Value {
    record(
        key,
        json!({"type": "register_bidder", "bidder_id": bidder_id, "name": bidder_id, "secret": format!("secret-{bidder_id}")}),
    )
}

/// Every outbound record, by key, with how many times each key went out.
fn outbound(spool: &Path) -> BTreeMap<String, (usize, Value)> {
    let mut seen: BTreeMap<String, (usize, Value)> = BTreeMap::new();
    let Ok(listing) = std::fs::read_dir(spool.join("outbound")) else {
        return seen;
    };
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let (last, body) = lines.split_last().expect("a checksum line");
        let body: String = body.iter().map(|line| format!("{line}\n")).collect();
        assert_eq!(
            checksum_line(&body, lines.len() - 1).trim_end(),
            *last,
            "{name} carries its checksum line"
        );
        for line in &lines[..lines.len() - 1] {
            let value: Value = serde_json::from_str(line).unwrap();
            let key = value["key"].as_str().unwrap().to_string();
            let slot = seen.entry(key).or_insert((0, Value::Null));
            slot.0 += 1;
            slot.1 = value;
        }
    }
    seen
}

fn in_dir(spool: &Path, sub: &str, name: &str) -> bool {
    spool.join(sub).join(name).exists()
}

#[test]
fn spool_records_apply_once_results_go_out_once_and_a_leader_killed_mid_file_doubles_nothing() {
    let dir = tempfile::Builder::new()
        .prefix("exchange")
        .tempdir()
        .expect("temp dir");
    let spool = dir.path().join("spool");
    let extra = format!(
        "[exchange]\ndir = \"{}\"\ninterval_ms = 100\n{}",
        spool.display(),
        spool_key_config(dir.path())
    );
    let mut cluster = Cluster::start_with(dir.path(), 3, 0, &extra);
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    assert!(wait_until(Duration::from_secs(5), || spool
        .join("inbound")
        .is_dir()));

    // 1. Control data: bidders, auctions, qualifications; a bad record; a key again.
    deliver(
        &spool,
        "001-setup.jsonl",
        &[
            register("reg-ada", "ada"),
            register("reg-bo", "bo"),
            record(
                "new-lot-x",
                json!({"type": "create_auction", "spec": auction_spec("lot-x", 120_000, 60_000)}),
            ),
            record(
                "new-lot-s",
                json!({"type": "create_auction", "spec": auction_spec("lot-s", 1_000, 1_000)}),
            ),
            record(
                "q-ada",
                json!({"type": "qualify", "auction_id": "lot-x", "bidder_id": "ada"}),
            ),
            record(
                "q-bo",
                json!({"type": "qualify", "auction_id": "lot-x", "bidder_id": "bo"}),
            ),
            json!({"key": "odd", "status": "done", "data": {"type": "resume", "auction_id": "lot-x"}}),
            record(
                "q-ada",
                json!({"type": "terminate", "auction_id": "lot-x", "reason": "same key"}),
            ),
        ],
    );
    assert!(
        wait_until(Duration::from_secs(15), || in_dir(
            &spool,
            "processed",
            "001-setup.jsonl"
        )),
        "the file was taken"
    );
    let node = cluster.node(leader);
    let lot = node
        .control("GET", "/control/v1/auctions/lot-x/result", None)
        .1;
    assert_eq!(
        lot["phase"], "listing",
        "created, and not terminated by the repeated key: {lot}"
    );
    let ada = node.login("ada");
    let (status, receipt) = node.bid(&ada, "lot-x", 1_000_000, "ada-1");
    assert_eq!(
        status, 201,
        "ada was registered and qualified through the spool: {receipt}"
    );
    let rejected = std::fs::read_to_string(spool.join("quarantine/001-setup.jsonl.rejected.jsonl"))
        .expect("the bad record is quarantined");
    assert!(
        rejected.contains("\"line\":7") && rejected.contains("status"),
        "{rejected}"
    );
    let report = node.control("GET", "/control/v1/exchange", None).1;
    assert_eq!(
        (
            report["records_applied"].as_u64(),
            report["records_duplicate"].as_u64(),
            report["records_quarantined"].as_u64()
        ),
        (Some(6), Some(1), Some(1)),
        "{report}"
    );

    // 2. A file still arriving (no checksum line) waits; complete, it is taken.
    let partial = [register("reg-cy", "cy")];
    let body = body_of(&partial);
    let path = spool.join("inbound/002-partial.jsonl");
    std::fs::write(&path, &body).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(path.exists(), "an incomplete file is not taken");
    assert_eq!(
        node.public(
            "POST",
            "/api/v1/sessions",
            None,
            Some(json!({"bidder_id": "cy", "secret": "secret-cy"}))
        )
        .0,
        401
    );
    std::fs::write(&path, format!("{body}{}", checksum_line(&body, 1))).unwrap();
    assert!(wait_until(Duration::from_secs(10), || in_dir(
        &spool,
        "processed",
        "002-partial.jsonl"
    )));

    // 3. A big file; the leader is SIGKILLed while it works through it.
    let many: Vec<Value> = (0..400)
        .map(|index| register(&format!("many-{index:03}"), &format!("b-{index:03}")))
        .collect();
    deliver(&spool, "003-many.jsonl", &many);
    let started = wait_until(Duration::from_secs(20), || {
        try_control(cluster.node(leader), "/control/v1/exchange")
            .is_some_and(|report| report["records_applied"].as_u64().unwrap_or(0) >= 7 + 40)
    });
    assert!(started, "the leader started on the file");
    assert!(
        in_dir(&spool, "inbound", "003-many.jsonl"),
        "still in the middle of it"
    );
    eprintln!("[exchange test] SIGKILL leader {leader} in the middle of 003-many.jsonl");
    cluster.node_mut(leader).kill();
    let new_leader = cluster
        .leader(Duration::from_secs(10))
        .expect("a new leader");
    assert!(
        wait_until(Duration::from_secs(60), || in_dir(
            &spool,
            "processed",
            "003-many.jsonl"
        )),
        "the new leader finished the file"
    );
    let report = cluster
        .node(new_leader)
        .control("GET", "/control/v1/exchange", None)
        .1;
    assert!(
        report["records_duplicate"].as_u64().unwrap_or(0) >= 1,
        "the new leader read the file again from the top: {report}"
    );

    // 4. Results go out once per key, and the sold-out short auction's result with them.
    let expected_keys = 6 + 1 + 400 + 1;
    let complete = wait_until(Duration::from_secs(20), || {
        outbound(&spool).len() >= expected_keys
    });
    let out = outbound(&spool);
    assert!(
        complete,
        "{} keys out of {expected_keys}: {:?}",
        out.len(),
        out.keys().collect::<Vec<_>>()
    );
    for (key, (copies, value)) in &out {
        assert_eq!(*copies, 1, "{key} went out once");
        if key.starts_with("many-") || key.starts_with("reg-") {
            assert_eq!(
                value["status"], "applied",
                "{key} was applied once, never refused as a second registration: {value}"
            );
        }
    }
    assert!(
        !out.contains_key("odd"),
        "the quarantined record has no result"
    );
    let short = &out["result/lot-s"].1;
    assert_eq!(short["status"], "closed", "{short}");
    let login = request(
        "POST",
        &format!("{}/api/v1/sessions", cluster.node(new_leader).public_url),
        None,
        Some(json!({"bidder_id": "b-399", "secret": "secret-b-399"})),
    );
    assert_eq!(
        login.0, 201,
        "the last bidder of the file is registered: {}",
        login.1
    );
}

#[test]
fn half_duplex_takes_one_direction_per_look_and_still_gets_both_done() {
    let dir = tempfile::Builder::new()
        .prefix("exchange-half")
        .tempdir()
        .expect("temp dir");
    let spool = dir.path().join("spool");
    let extra = format!(
        "[exchange]\ndir = \"{}\"\ninterval_ms = 200\nhalf_duplex = true\n{}",
        spool.display(),
        spool_key_config(dir.path())
    );
    let cluster = Cluster::start_with(dir.path(), 1, 0, &extra);
    let node = cluster.node(1);
    assert!(wait_until(Duration::from_secs(5), || spool
        .join("inbound")
        .is_dir()));
    deliver(&spool, "001.jsonl", &[register("reg-dee", "dee")]);
    assert!(wait_until(Duration::from_secs(10), || in_dir(
        &spool,
        "processed",
        "001.jsonl"
    )));
    assert!(wait_until(Duration::from_secs(10), || outbound(&spool)
        .contains_key("reg-dee")));
    // The file is written before the outbox is cleared, and the Exchange counts it once
    // the clearing is committed: a read between the commit and the count sees the outbox
    // empty and the file not yet counted, so wait for both.
    let mut report = Value::Null;
    wait_until(Duration::from_secs(10), || {
        report = node.control("GET", "/control/v1/exchange", None).1;
        report["outbox_pending"] == 0 && report["outbound_files"] == 1
    });
    assert_eq!(report["half_duplex"], true, "{report}");
    assert_eq!(report["inbound_files_taken"], 1, "{report}");
    assert_eq!(report["outbound_files"], 1, "{report}");
    node.login("dee");
}

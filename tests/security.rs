//! Security of a real `gavel serve` process on loopback: operators act under their own
//! tokens and every control action is on record with their name; the public listener
//! rate-limits per address and per session; TLS on the public and the peer listener;
//! no secret in the node's log; `gavel ctl audit verify` online and on a data directory
//! altered offline.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cluster::Cluster;
use common::tls::{https_get, TestCertificates};
use common::{auction_spec, try_request, Node, ADMIN_TOKEN};
use serde_json::{json, Value};

const ALICE_OPS_TOKEN: &str = "alice-ops-token-DO-NOT-LOG-4f1d9a";
const BOB_OPS_TOKEN: &str = "bob-ops-token-DO-NOT-LOG-8c2e7b";

fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(name)
        .tempdir()
        .expect("temp dir")
}

fn start(dir: &Path, extra: &str) -> Node {
    let mut node = Node::configure(
        dir,
        1,
        (
            common::free_port(),
            common::free_port(),
            common::free_port(),
        ),
        extra,
    );
    node.spawn();
    node
}

fn two_operators() -> String {
    format!(
        "\n[[security.operators]]\nname = \"alice-ops\"\ntoken = \"{ALICE_OPS_TOKEN}\"\n\n[[security.operators]]\nname = \"bob-ops\"\ntoken = \"{BOB_OPS_TOKEN}\"\n"
    )
}

/// GET with optional bearer token: (status, Retry-After, body).
fn get_with_headers(url: &str, token: Option<&str>) -> (u16, Option<String>, Value) {
    let mut request = ureq::get(url).timeout(Duration::from_secs(10));
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let response = match request.call() {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("GET {url}: {error}"),
    };
    let status = response.status();
    let retry_after = response.header("Retry-After").map(String::from);
    let body =
        serde_json::from_str(&response.into_string().unwrap_or_default()).unwrap_or(Value::Null);
    (status, retry_after, body)
}

#[test]
fn every_control_action_is_recorded_with_the_operator_who_gave_it() {
    let dir = temp_dir("operators");
    let node = start(dir.path(), &two_operators());
    let as_alice = |method, path: &str, body| node.control_as(ALICE_OPS_TOKEN, method, path, body);
    let as_bob = |method, path: &str, body| node.control_as(BOB_OPS_TOKEN, method, path, body);

    assert_eq!(
        as_alice(
            "POST",
            "/control/v1/auctions",
            Some(auction_spec("lot-o", 60_000, 5_000))
        )
        .0,
        201
    );
    let bidder = json!({"bidder_id": "carol", "name": "Carol", "secret": "carol-secret-0123"});
    assert_eq!(as_alice("POST", "/control/v1/bidders", Some(bidder)).0, 201);
    let qualify = json!({"bidder_id": "carol"});
    assert_eq!(
        as_bob(
            "POST",
            "/control/v1/auctions/lot-o/qualifications",
            Some(qualify)
        )
        .0,
        201
    );
    let reason = |text: &str| Some(json!({"reason": text}));
    assert_eq!(
        as_bob(
            "POST",
            "/control/v1/auctions/lot-o/suspend",
            reason("fire drill")
        )
        .0,
        200
    );
    assert_eq!(
        as_alice(
            "POST",
            "/control/v1/auctions/lot-o/resume",
            reason("drill over")
        )
        .0,
        200
    );
    let increment = json!({"increment": 20_000, "reason": "busy lot"});
    assert_eq!(
        as_bob(
            "POST",
            "/control/v1/auctions/lot-o/increment",
            Some(increment)
        )
        .0,
        200
    );
    assert_eq!(
        as_alice(
            "POST",
            "/control/v1/auctions/lot-o/terminate",
            reason("withdrawn")
        )
        .0,
        200
    );
    // Refused (already closed): on record all the same, with its code.
    assert_eq!(
        as_bob(
            "POST",
            "/control/v1/auctions/lot-o/suspend",
            reason("too late")
        )
        .0,
        409
    );
    // The admin token acts under security.operator_name.
    node.register_bidder("dave");
    // A token nobody holds is refused and recorded nowhere.
    let (status, problem) = node.control_as(
        "not-an-operator-token-123",
        "POST",
        "/control/v1/auctions/lot-o/resume",
        reason("x"),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("unauthorized"))
    );

    let (status, trail) = as_bob("GET", "/control/v1/audit", None);
    assert_eq!(status, 200, "{trail}");
    let records: Vec<(String, String, String, String)> = trail["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|record| {
            let text = |name: &str| record[name].as_str().unwrap_or_default().to_string();
            (
                text("operator"),
                text("action"),
                text("target"),
                text("outcome"),
            )
        })
        .collect();
    let expected: Vec<(String, String, String, String)> = [
        ("alice-ops", "create_auction", "lot-o", "ok"),
        ("alice-ops", "register_bidder", "carol", "ok"),
        ("bob-ops", "qualify", "lot-o/carol", "ok"),
        ("bob-ops", "suspend", "lot-o", "ok"),
        ("alice-ops", "resume", "lot-o", "ok"),
        ("bob-ops", "change_increment", "lot-o", "ok"),
        ("alice-ops", "terminate", "lot-o", "ok"),
        ("bob-ops", "suspend", "lot-o", "auction_not_open"),
        ("test-operator", "register_bidder", "dave", "ok"),
    ]
    .iter()
    .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
    .collect();
    assert_eq!(records, expected);
    let first = &trail["records"][3];
    assert_eq!(first["reason"], "fire drill");
    assert!(first["at_ms"].as_u64().is_some_and(|at| at > 0));

    let (_, bobs) = as_alice("GET", "/control/v1/audit?operator=bob-ops&limit=2", None);
    let bobs = bobs["records"].as_array().expect("records").clone();
    assert_eq!(bobs.len(), 2);
    assert!(bobs.iter().all(|record| record["operator"] == "bob-ops"));
    assert_eq!(bobs[1]["outcome"], "auction_not_open");
    for bad in [
        "/control/v1/audit?limit=0",
        "/control/v1/audit?limit=x",
        "/control/v1/audit?colour=red",
    ] {
        let (status, problem) = node.control("GET", bad, None);
        assert_eq!(
            (status, problem["code"].as_str()),
            (422, Some("invalid_request")),
            "{bad}"
        );
    }
}

#[test]
fn public_listener_limits_each_address_with_429_and_retry_after() {
    let dir = temp_dir("per-ip");
    let node = start(
        dir.path(),
        "\n[limits]\nper_ip_per_second = 1\nper_ip_burst = 5\n",
    );
    let url = format!("{}/api/v1/time", node.public_url);
    for attempt in 0..5 {
        assert_eq!(get_with_headers(&url, None).0, 200, "request {attempt}");
    }
    let (status, retry_after, problem) = get_with_headers(&url, None);
    assert_eq!(status, 429, "{problem}");
    assert_eq!(problem["code"], "rate_limited");
    assert_eq!(retry_after.as_deref(), Some("1"));
    // The control listener is not limited.
    assert_eq!(node.control("GET", "/control/v1/cluster", None).0, 200);
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(get_with_headers(&url, None).0, 200, "a token came back");
}

#[test]
fn public_listener_limits_each_session_and_a_limited_bid_changes_nothing() {
    let dir = temp_dir("per-session");
    let node = start(
        dir.path(),
        "\n[limits]\nper_session_per_second = 1\nper_session_burst = 3\n",
    );
    node.create_auction(auction_spec("lot-r", 60_000, 5_000));
    for id in ["erin", "frank"] {
        node.register_bidder(id);
        node.qualify("lot-r", id);
    }
    let erin = node.login("erin");
    let frank = node.login("frank");
    let auction_url = format!("{}/api/v1/auctions/lot-r", node.public_url);
    assert_eq!(node.bid(&erin, "lot-r", 1_000_000, "e-1").0, 201);
    assert_eq!(get_with_headers(&auction_url, Some(&erin)).0, 200);
    assert_eq!(get_with_headers(&auction_url, Some(&erin)).0, 200);
    let (status, retry_after, problem) = get_with_headers(&auction_url, Some(&erin));
    assert_eq!(
        (status, problem["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    let (status, problem) = node.bid(&erin, "lot-r", 1_010_000, "e-2");
    assert_eq!(
        (status, problem["code"].as_str()),
        (429, Some("rate_limited"))
    );
    // Another session, and requests without a token, have buckets of their own.
    assert_eq!(node.bid(&frank, "lot-r", 1_010_000, "f-1").0, 201);
    let (status, _, view) = get_with_headers(&auction_url, None);
    assert_eq!(status, 200);
    assert_eq!(
        view["bid_count"], 2,
        "the limited bid was not placed: {view}"
    );
}

#[test]
fn no_secret_appears_in_the_node_log_even_at_debug_level() {
    let dir = temp_dir("no-secrets");
    let mut node = Node::configure(
        dir.path(),
        1,
        (
            common::free_port(),
            common::free_port(),
            common::free_port(),
        ),
        &two_operators(),
    );
    node.rust_log = "debug".to_string();
    node.spawn();
    let bidder_secret = "bidder-secret-DO-NOT-LOG-31e5";
    let wrong_secret = "wrong-secret-DO-NOT-LOG-6a0c";
    let made_up_token = "made-up-session-token-DO-NOT-LOG-b7d2";

    node.create_auction(auction_spec("lot-s", 60_000, 5_000));
    let bidder = json!({"bidder_id": "gina", "name": "Gina", "secret": bidder_secret});
    assert_eq!(
        node.control_as(ALICE_OPS_TOKEN, "POST", "/control/v1/bidders", Some(bidder))
            .0,
        201
    );
    let qualify = json!({"bidder_id": "gina"});
    assert_eq!(
        node.control_as(
            BOB_OPS_TOKEN,
            "POST",
            "/control/v1/auctions/lot-s/qualifications",
            Some(qualify)
        )
        .0,
        201
    );
    let login = json!({"bidder_id": "gina", "secret": bidder_secret});
    let (status, session) = node.public("POST", "/api/v1/sessions", None, Some(login));
    assert_eq!(status, 201);
    let session_token = session["token"].as_str().expect("token").to_string();
    let wrong = json!({"bidder_id": "gina", "secret": wrong_secret});
    assert_eq!(
        node.public("POST", "/api/v1/sessions", None, Some(wrong)).0,
        401
    );
    assert_eq!(node.bid(&session_token, "lot-s", 1_000_000, "g-1").0, 201);
    assert_eq!(node.bid(made_up_token, "lot-s", 1_010_000, "g-2").0, 401);
    assert_eq!(
        node.control_as(made_up_token, "GET", "/control/v1/audit", None)
            .0,
        401
    );
    assert_eq!(
        node.control_as(
            BOB_OPS_TOKEN,
            "POST",
            "/control/v1/auctions/lot-s/suspend",
            Some(json!({"reason": "check"}))
        )
        .0,
        200
    );
    assert_eq!(
        node.public(
            "DELETE",
            "/api/v1/sessions/current",
            Some(&session_token),
            None
        )
        .0,
        204
    );
    node.stop_with(libc::SIGTERM);

    let mut log = String::new();
    for entry in std::fs::read_dir(dir.path()).expect("test dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|extension| extension == "log") {
            log.push_str(&std::fs::read_to_string(&path).expect("read log"));
        }
    }
    assert!(
        log.contains("node serving") && log.contains("DEBUG"),
        "the log was captured at debug level"
    );
    for secret in [
        ADMIN_TOKEN,
        common::CLUSTER_SECRET,
        ALICE_OPS_TOKEN,
        BOB_OPS_TOKEN,
        bidder_secret,
        wrong_secret,
        made_up_token,
        session_token.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "the node's log holds the secret {secret:?}"
        );
    }
}

#[test]
fn public_tls_serves_a_tls_client_and_refuses_a_plaintext_one() {
    let dir = temp_dir("public-tls");
    let certificates = TestCertificates::generate(&dir.path().join("certs"));
    let public_port = common::free_port();
    let extra = format!(
        "\n[tls]\npublic_cert = \"{}\"\npublic_key = \"{}\"\n",
        certificates.cert.display(),
        certificates.key.display()
    );
    let mut node = Node::configure(
        dir.path(),
        1,
        (public_port, common::free_port(), common::free_port()),
        &extra,
    );
    node.spawn();
    let answer = https_get(certificates.client_config(), public_port, "/api/v1/time")
        .expect("a TLS client is served");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("server_time_ms"), "{answer}");
    let plain = try_request(
        "GET",
        &format!("http://127.0.0.1:{public_port}/api/v1/time"),
        None,
        None,
    );
    assert!(
        plain.is_err(),
        "a plaintext client got an HTTP answer: {plain:?}"
    );
}

#[test]
fn a_node_with_an_unreadable_certificate_refuses_to_start_naming_the_key() {
    let dir = temp_dir("bad-tls");
    let node = Node::configure(
        dir.path(),
        1,
        (common::free_port(), common::free_port(), common::free_port()),
        "\n[tls]\npublic_cert = \"/nonexistent/gavel-cert.pem\"\npublic_key = \"/nonexistent/gavel-key.pem\"\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["serve", "--config"])
        .arg(&node.config_path)
        .output()
        .expect("run gavel serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tls.public_cert") && stderr.contains("/nonexistent/gavel-cert.pem"),
        "{stderr}"
    );
}

#[test]
fn a_cluster_with_peer_tls_elects_a_leader_and_commits_a_bid() {
    let dir = temp_dir("peer-tls");
    let certificates = TestCertificates::generate(&dir.path().join("certs"));
    let extra = format!(
        "\n[tls]\npeer_cert = \"{}\"\npeer_key = \"{}\"\npeer_ca = \"{}\"\n",
        certificates.cert.display(),
        certificates.key.display(),
        certificates.ca.display()
    );
    let cluster = Cluster::start_with(dir.path(), 3, 0, &extra);
    let leader = cluster
        .leader(Duration::from_secs(20))
        .expect("a leader over peer TLS");
    // Everything goes through a follower, so forwarding crosses the TLS peer links too.
    let follower = cluster.node(if leader == 1 { 2 } else { 1 });
    follower.create_auction(auction_spec("lot-t", 60_000, 5_000));
    follower.register_bidder("hana");
    follower.qualify("lot-t", "hana");
    let token = follower.login("hana");
    let (status, receipt) = follower.bid(&token, "lot-t", 1_000_000, "h-1");
    assert_eq!(status, 201, "{receipt}");
    for node in &cluster.nodes {
        let view = node.wait_for_bid_count("lot-t", 1, Duration::from_secs(10));
        assert_eq!(view["bid_count"], 1, "{view}");
    }

    // A peer that speaks the right secret but no TLS gets nothing in.
    let peer_address = peer_address_of(&cluster.nodes[leader as usize - 1]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let plain = gavel::peer::PeerClient::new(
        leader,
        peer_address,
        99,
        std::sync::Arc::from(common::CLUSTER_SECRET.as_bytes()),
    );
    let answer = runtime.block_on(plain.ping(Duration::from_secs(3)));
    assert!(answer.is_err(), "a plaintext peer was answered: {answer:?}");
}

/// The `[listen] peer` address from a node's configuration file.
fn peer_address_of(node: &Node) -> String {
    let config = std::fs::read_to_string(&node.config_path).expect("config");
    let table: toml::Table = config.parse().expect("config TOML");
    table["listen"]["peer"]
        .as_str()
        .expect("listen.peer")
        .to_string()
}

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
    let mut node = start(dir.path(), "\n[raft]\nsnapshot_every_entries = 1\n");
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

    // Give the last snapshot time to be built, then stop the node.
    std::thread::sleep(Duration::from_millis(500));
    node.stop_with(libc::SIGTERM);
    let data_dir = dir.path().join("data");
    let data_dir_arg = data_dir.to_string_lossy().to_string();
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
    let db = sled::open(data_dir.join("raft")).expect("open the stopped node's sled");
    let tree = db.open_tree("snapshot").expect("snapshot tree");
    let stored = tree.get(b"data").expect("read").expect("a stored snapshot");
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
    let mut bytes = vec![1u8];
    options()
        .serialize_into(&mut bytes, &payload)
        .expect("encode snapshot");
    tree.insert(b"data", bytes).expect("write");
    db.flush().expect("flush");
    seq
}

#[test]
fn a_running_node_refuses_a_peer_without_the_cluster_secret() {
    let dir = temp_dir("peer-auth");
    let peer_port = common::free_port();
    let mut node = Node::configure(
        dir.path(),
        1,
        (common::free_port(), common::free_port(), peer_port),
        "",
    );
    node.spawn();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = |secret: &str| {
        gavel::peer::PeerClient::new(
            1,
            format!("127.0.0.1:{peer_port}"),
            99,
            std::sync::Arc::from(secret.as_bytes()),
        )
    };
    let stranger = client("a-wrong-cluster-secret-0123456789");
    let refused = runtime.block_on(stranger.ping(Duration::from_secs(3)));
    assert!(
        matches!(refused, Err(gavel::peer::PeerError::Handshake { .. })),
        "a peer without the secret was answered: {refused:?}"
    );
    // The same call with the secret is answered: the refusal was the secret's doing.
    let member = client(common::CLUSTER_SECRET);
    let status = runtime
        .block_on(member.ping(Duration::from_secs(3)))
        .expect("a peer with the secret is answered");
    assert_eq!(status.node_id, 1);
}

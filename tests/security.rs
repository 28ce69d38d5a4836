//! Security of a real `gavel serve` process on loopback: operators act under their own
//! tokens and every control action is on record with their name; the public listener
//! rate-limits per address and per session; no secret in the node's log, even at debug
//! level; the peer listener refuses a peer without the cluster secret. TLS is in
//! `tests/tls.rs`, `gavel ctl audit verify` in `tests/audit_verify.rs`.

use gavel_testkit as common;

use std::time::Duration;

use common::{auction_spec, start_with, temp_dir, Node, ADMIN_TOKEN};
use serde_json::{json, Value};

const ALICE_OPS_TOKEN: &str = "alice-ops-token-DO-NOT-LOG-4f1d9a";
const BOB_OPS_TOKEN: &str = "bob-ops-token-DO-NOT-LOG-8c2e7b";

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
    let node = start_with(dir.path(), &two_operators());
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
    let (_, control_api) = node.control("GET", "/openapi.json", None);
    assert!(
        control_api["paths"]["/control/v1/audit"]["get"].is_object(),
        "{control_api}"
    );
    let (_, public_api) = node.public("GET", "/openapi.json", None, None);
    let bid_responses = &public_api["paths"]["/api/v1/auctions/{id}/bids"]["post"]["responses"];
    assert!(bid_responses["429"].is_object(), "{bid_responses}");
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
    let node = start_with(
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
    let node = start_with(
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

/// The `Cache-Control` of an answer to `method` `url`, sent with `token`.
fn cache_control(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> String {
    let mut request = ureq::request(method, url).timeout(Duration::from_secs(10));
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let answer = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    let response = match answer {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("{method} {url}: {error}"),
    };
    response
        .header("Cache-Control")
        .unwrap_or("(none)")
        .to_string()
}

#[test]
fn no_cache_keeps_an_answer_of_the_api_and_the_pages_are_revalidated() {
    let dir = temp_dir("cache-control");
    let node = start_with(dir.path(), "");
    node.create_auction(auction_spec("lot-cache", 120_000, 60_000));
    node.register_bidder("alice");
    node.qualify("lot-cache", "alice");
    let (public, control) = (&node.public_url, &node.control_url);
    // A session token, a bidder's own standing, a public view, an error, an operator's
    // listing: none of them may be stored by a browser or a proxy on the way.
    let login = json!({"bidder_id": "alice", "secret": "secret-alice"});
    let session = format!("{public}/api/v1/sessions");
    assert_eq!(
        cache_control("POST", &session, None, Some(login)),
        "no-store"
    );
    let token = node.login("alice");
    let own = format!("{public}/api/v1/auctions/lot-cache/me");
    assert_eq!(cache_control("GET", &own, Some(&token), None), "no-store");
    let view = format!("{public}/api/v1/auctions/lot-cache");
    assert_eq!(cache_control("GET", &view, None, None), "no-store");
    let missing = format!("{public}/api/v1/auctions/no-such-lot");
    assert_eq!(cache_control("GET", &missing, None, None), "no-store");
    let bidders = format!("{control}/control/v1/bidders/alice/keys");
    assert_eq!(
        cache_control("GET", &bidders, Some(ADMIN_TOKEN), None),
        "no-store"
    );
    // The pages and their assets hold nothing of anyone's: kept, but asked again each
    // time, so that a node's upgrade shows at once.
    assert_eq!(
        cache_control("GET", &format!("{public}/"), None, None),
        "no-cache"
    );
    let script = format!("{public}/assets/bidder/bidder.js");
    assert_eq!(cache_control("GET", &script, None, None), "no-cache");
    assert_eq!(
        cache_control("GET", &format!("{control}/"), None, None),
        "no-cache"
    );
}

//! One real `gavel serve` process on loopback, playing complete auctions over HTTP:
//! every rule's outcome as a bidder and an operator see it, bad inputs, and a restart.

use gavel_testkit as common;

use std::time::Duration;

use common::{auction_spec, now_ms, raw_request, Node};
use serde_json::{json, Value};

fn node(name: &str) -> (tempfile::TempDir, Node) {
    let dir = tempfile::Builder::new()
        .prefix(name)
        .tempdir()
        .expect("temp dir");
    let node = Node::start(dir.path());
    (dir, node)
}

/// Registers bidders, qualifies them for the auction and opens their sessions.
fn bidders(node: &Node, auction_id: &str, ids: &[&str]) -> Vec<(String, u64)> {
    ids.iter()
        .map(|id| {
            node.register_bidder(id);
            let number = node.qualify(auction_id, id);
            (node.login(id), number)
        })
        .collect()
}

#[test]
fn complete_auction_goes_from_listing_through_timed_bidding_to_sold() {
    let (_dir, node) = node("complete");
    node.create_auction(auction_spec("lot-1", 2_000, 1_000));
    let people = bidders(&node, "lot-1", &["alice", "bob"]);
    let (alice, alice_number) = (&people[0].0, people[0].1);
    let bob = &people[1].0;

    let (status, receipt) = node.bid(alice, "lot-1", 1_000_000, "a-1");
    assert_eq!(status, 201, "{receipt}");
    assert_eq!(receipt["seq"], 1);
    assert_eq!(receipt["auction"]["current_price"], 1_000_000);
    assert_eq!(receipt["auction"]["leading_bidder_number"], alice_number);
    assert_eq!(node.bid(bob, "lot-1", 1_010_000, "b-1").0, 201);

    // Two bidders at listing close: timed bidding from the current high bid.
    let view = node.wait_for_phase("lot-1", "timed_bidding", Duration::from_secs(5));
    assert_eq!(view["phase"], "timed_bidding", "{view}");
    let (status, receipt) = node.bid(alice, "lot-1", 1_030_000, "a-2");
    assert_eq!(status, 201, "{receipt}");
    // Each timed bid resets the countdown from its acceptance time.
    let accepted_at = receipt["accepted_at_ms"].as_u64().unwrap();
    assert_eq!(receipt["auction"]["deadline_ms"], accepted_at + 1_000);

    let view = node.wait_for_phase("lot-1", "sold", Duration::from_secs(5));
    assert_eq!(view["phase"], "sold", "{view}");
    assert_eq!(view["winner_bidder_number"], alice_number);
    assert_eq!(view["current_price"], 1_030_000);
    assert_eq!(view["deadline_ms"], Value::Null);

    // Public bid history shows bidder numbers only, never identities.
    let (_, bids) = node.public("GET", "/api/v1/auctions/lot-1/bids", None, None);
    let bids = bids["bids"].as_array().unwrap().clone();
    assert_eq!(bids.len(), 3);
    assert!(!serde_json::to_string(&bids).unwrap().contains("alice"));
    assert!(bids
        .windows(2)
        .all(|pair| pair[0]["amount"].as_u64() < pair[1]["amount"].as_u64()));

    // The operator's result names the winner and carries a verified hash chain.
    let (status, result) = node.control("GET", "/control/v1/auctions/lot-1/result", None);
    assert_eq!(status, 200);
    assert_eq!(result["winner_bidder_id"], "alice");
    assert_eq!(result["final_price"], 1_030_000);
    assert_eq!(result["chain_verified"], true);

    // No bid is accepted after the close.
    let (status, problem) = node.bid(bob, "lot-1", 1_040_000, "b-late");
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("auction_not_open"))
    );
}

#[test]
fn listing_close_outcomes_follow_bids_and_reserve() {
    let (_dir, node) = node("listing-close");
    let mut no_bids = auction_spec("empty", 800, 1_000);
    no_bids["reserve_price"] = json!(1_500_000);
    node.create_auction(no_bids);
    node.create_auction(auction_spec("single", 800, 1_000));
    let mut reserved = auction_spec("reserved", 800, 1_000);
    reserved["reserve_price"] = json!(2_000_000);
    let created = node.create_auction(reserved);
    assert_eq!(
        created["reserve_price"], 2_000_000,
        "operators see the reserve"
    );
    assert!(
        node.auction("reserved").get("reserve_price").is_none(),
        "bidders never do"
    );

    let carol = bidders(&node, "single", &["carol"]);
    node.qualify("reserved", "carol");
    assert_eq!(node.bid(&carol[0].0, "single", 1_000_000, "c-1").0, 201);
    assert_eq!(node.bid(&carol[0].0, "reserved", 1_000_000, "c-2").0, 201);

    assert_eq!(
        node.wait_for_phase("empty", "unsold", Duration::from_secs(5))["phase"],
        "unsold"
    );
    let single = node.wait_for_phase("single", "sold", Duration::from_secs(5));
    assert_eq!(
        single["winner_bidder_number"], carol[0].1,
        "one bidder wins at listing close"
    );
    let reserved = node.wait_for_phase("reserved", "unsold", Duration::from_secs(5));
    assert_eq!(
        reserved["phase"], "unsold",
        "a price below the reserve does not sell"
    );
}

#[test]
fn bid_errors_carry_their_codes() {
    let (_dir, node) = node("bid-errors");
    node.create_auction(auction_spec("lot-e", 30_000, 60_000));
    let people = bidders(&node, "lot-e", &["dora", "emil"]);
    let (dora, emil) = (&people[0].0, &people[1].0);
    node.register_bidder("frank");
    let frank = node.login("frank");

    let code =
        |(status, body): (u16, Value)| (status, body["code"].as_str().unwrap_or("").to_string());
    assert_eq!(
        code(node.bid("not-a-token", "lot-e", 1_000_000, "x")),
        (401, "unauthenticated".into())
    );
    assert_eq!(
        code(node.bid(&frank, "lot-e", 1_000_000, "f-1")),
        (403, "not_qualified".into())
    );
    assert_eq!(
        code(node.bid(dora, "nope", 1_000_000, "d-0")),
        (404, "auction_not_found".into())
    );
    let (status, problem) = node.bid(dora, "lot-e", 999_999, "d-1");
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("below_minimum"))
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("1000000"),
        "{problem}"
    );
    assert_eq!(
        code(node.bid(dora, "lot-e", 1_005_000, "d-2")),
        (409, "not_on_increment".into())
    );

    let (status, first) = node.bid(dora, "lot-e", 1_000_000, "d-3");
    assert_eq!(status, 201);
    assert_eq!(
        code(node.bid(dora, "lot-e", 1_010_000, "d-4")),
        (409, "already_leading".into())
    );
    // The same request_id and body: the original receipt, not a second bid.
    let (status, again) = node.bid(dora, "lot-e", 1_000_000, "d-3");
    assert_eq!(status, 200);
    assert_eq!(again["bid_id"], first["bid_id"]);
    assert_eq!(again["auction"]["bid_count"], 1);
    assert_eq!(
        code(node.bid(dora, "lot-e", 1_020_000, "d-3")),
        (409, "request_id_reused".into())
    );
    assert_eq!(
        code(node.bid(emil, "lot-e", u64::MAX, "e-1")),
        (409, "not_on_increment".into())
    );

    // Bad bodies: unknown field, wrong type, malformed, not JSON, too large.
    let url = format!("{}/api/v1/auctions/lot-e/bids", node.public_url);
    let body = br#"{"amount": 1010000, "request_id": "e-2", "extra": 1}"#;
    assert_eq!(
        raw_request("POST", &url, Some(emil), "application/json", body).0,
        422
    );
    let body = br#"{"amount": -5, "request_id": "e-3"}"#;
    assert_eq!(
        raw_request("POST", &url, Some(emil), "application/json", body).0,
        422
    );
    let body = br#"{"amount": 100000000000000000000000, "request_id": "e-3"}"#;
    assert_eq!(
        raw_request("POST", &url, Some(emil), "application/json", body).0,
        422
    );
    let (status, problem) = raw_request(
        "POST",
        &url,
        Some(emil),
        "application/json",
        b"{\"amount\": 1,",
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_json"))
    );
    assert_eq!(
        raw_request("POST", &url, Some(emil), "application/json", b"\xff\xfe{}").0,
        400
    );
    assert_eq!(
        raw_request("POST", &url, Some(emil), "text/plain", b"{}").0,
        415
    );
    let huge = format!(
        r#"{{"amount": 1010000, "request_id": "{}"}}"#,
        "x".repeat(70 * 1024)
    );
    assert_eq!(
        raw_request(
            "POST",
            &url,
            Some(emil),
            "application/json",
            huge.as_bytes()
        )
        .0,
        413
    );
    let body = br#"{"amount": 1010000, "request_id": "has spaces/and slashes"}"#;
    assert_eq!(
        raw_request("POST", &url, Some(emil), "application/json", body).0,
        422
    );

    // None of the refused requests changed the auction.
    let view = node.auction("lot-e");
    assert_eq!(
        (view["bid_count"].as_u64(), view["current_price"].as_u64()),
        (Some(1), Some(1_000_000))
    );
    assert_eq!(code(node.bid(emil, "lot-e", 1_010_000, "e-ok")).0, 201);
}

#[test]
fn sessions_and_control_tokens_are_checked() {
    let (_dir, node) = node("auth");
    node.register_bidder("gina");
    let body = json!({"bidder_id": "gina", "secret": "wrong-secret"});
    let (status, problem) = node.public("POST", "/api/v1/sessions", None, Some(body));
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("bad_credentials"))
    );
    let body = json!({"bidder_id": "nobody", "secret": "whatever-1"});
    assert_eq!(
        node.public("POST", "/api/v1/sessions", None, Some(body)).0,
        401
    );

    let token = node.login("gina");
    assert_eq!(
        node.public("DELETE", "/api/v1/sessions/current", Some(&token), None)
            .0,
        204
    );
    assert_eq!(
        node.public("DELETE", "/api/v1/sessions/current", Some(&token), None)
            .0,
        401
    );

    let url = format!("{}/control/v1/cluster", node.control_url);
    assert_eq!(common::request("GET", &url, None, None).0, 401);
    assert_eq!(
        common::request("GET", &url, Some("not-the-admin-token-at-all"), None).0,
        401
    );
    let (status, cluster) = node.control("GET", "/control/v1/cluster", None);
    assert_eq!(status, 200);
    assert_eq!(cluster["leader_id"], 1);
    assert_eq!(cluster["nodes"][0]["role"], "leader");

    // Duplicate registration and a short secret are refused.
    let body = json!({"bidder_id": "gina", "name": "Gina", "secret": "another-secret"});
    assert_eq!(
        node.control("POST", "/control/v1/bidders", Some(body)).1["code"],
        "bidder_exists"
    );
    let body = json!({"bidder_id": "hugo", "name": "Hugo", "secret": "short"});
    assert_eq!(
        node.control("POST", "/control/v1/bidders", Some(body)).0,
        422
    );
}

#[test]
fn operator_actions_suspend_resume_increment_terminate() {
    let (_dir, node) = node("operator");
    node.create_auction(auction_spec("lot-o", 20_000, 5_000));
    let people = bidders(&node, "lot-o", &["ivan", "jana"]);
    assert_eq!(node.bid(&people[0].0, "lot-o", 1_000_000, "i-1").0, 201);

    let before = node.auction("lot-o")["deadline_ms"].as_u64().unwrap();
    let (status, view) = node.control(
        "POST",
        "/control/v1/auctions/lot-o/suspend",
        Some(json!({"reason": "power check"})),
    );
    assert_eq!((status, view["phase"].as_str()), (200, Some("suspended")));
    assert_eq!(
        node.bid(&people[1].0, "lot-o", 1_010_000, "j-1").1["code"],
        "auction_not_open"
    );
    std::thread::sleep(Duration::from_millis(300));
    let (_, view) = node.control(
        "POST",
        "/control/v1/auctions/lot-o/resume",
        Some(json!({"reason": "checked"})),
    );
    assert_eq!(view["phase"], "listing");
    let after = view["deadline_ms"].as_u64().unwrap();
    assert!(
        after >= before + 250,
        "the listing gets its remaining time back: {before} -> {after}"
    );

    let body = json!({"increment": 50_000, "reason": "operator decision"});
    let (status, view) = node.control("POST", "/control/v1/auctions/lot-o/increment", Some(body));
    assert_eq!((status, view["increment"].as_u64()), (200, Some(50_000)));
    assert_eq!(
        node.bid(&people[1].0, "lot-o", 1_010_000, "j-2").1["code"],
        "below_minimum"
    );
    assert_eq!(node.bid(&people[1].0, "lot-o", 1_050_000, "j-3").0, 201);

    let (status, view) = node.control(
        "POST",
        "/control/v1/auctions/lot-o/terminate",
        Some(json!({"reason": "court order"})),
    );
    assert_eq!((status, view["phase"].as_str()), (200, Some("terminated")));
    assert_eq!(view["winner_bidder_number"], Value::Null);
    let (status, problem) = node.control(
        "POST",
        "/control/v1/auctions/lot-o/suspend",
        Some(json!({})),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("auction_not_open"))
    );
}

#[test]
fn price_cap_leads_to_capped_and_a_recorded_lottery() {
    let (_dir, node) = node("cap");
    let mut spec = auction_spec("lot-c", 20_000, 5_000);
    spec["price_cap"] = json!(1_020_000);
    spec["cap_confirm_ms"] = json!(800);
    node.create_auction(spec);
    let people = bidders(&node, "lot-c", &["kai", "lea", "max"]);
    assert_eq!(node.bid(&people[0].0, "lot-c", 1_000_000, "k-1").0, 201);
    assert_eq!(
        node.bid(&people[1].0, "lot-c", 1_030_000, "l-0").1["code"],
        "above_cap"
    );
    let (status, receipt) = node.bid(&people[1].0, "lot-c", 1_020_000, "l-1");
    assert_eq!(
        (status, receipt["auction"]["phase"].as_str()),
        (201, Some("capped"))
    );

    let confirm = |token: &str| {
        node.public(
            "POST",
            "/api/v1/auctions/lot-c/confirmations",
            Some(token),
            None,
        )
        .0
    };
    assert_eq!(confirm(&people[0].0), 201);
    assert_eq!(confirm(&people[1].0), 201);
    assert_eq!(
        confirm(&people[2].0),
        403,
        "a bidder without a valid bid may not confirm"
    );

    let view = node.wait_for_phase("lot-c", "sold", Duration::from_secs(5));
    assert_eq!(view["phase"], "sold", "{view}");
    let lottery = &view["lottery"];
    assert_eq!(lottery["commitment"], view["lottery_commitment"], "{view}");
    let entrants: Vec<u64> = lottery["entrants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entrant| entrant["bidder_number"].as_u64().unwrap())
        .collect();
    // In the order they confirmed.
    assert_eq!(entrants, vec![people[0].1, people[1].1]);
    let drawn = entrants[lottery["drawn_index"].as_u64().unwrap() as usize];
    assert_eq!(view["winner_bidder_number"].as_u64(), Some(drawn));
    assert_eq!(view["current_price"], 1_020_000);
}

#[test]
fn a_restarted_node_has_all_its_state_sessions_included() {
    let (_dir, mut node) = node("restart");
    node.create_auction(auction_spec("lot-r", 60_000, 5_000));
    let people = bidders(&node, "lot-r", &["nina", "otto"]);
    let (status, receipt) = node.bid(&people[0].0, "lot-r", 1_000_000, "n-1");
    assert_eq!(status, 201);
    assert_eq!(node.bid(&people[1].0, "lot-r", 1_010_000, "o-1").0, 201);
    let before = node.auction("lot-r");

    node.kill();
    node.spawn();

    let after = node.auction("lot-r");
    for field in [
        "phase",
        "current_price",
        "bid_count",
        "leading_bidder_number",
        "listing_closes_at_ms",
    ] {
        assert_eq!(before[field], after[field], "{field} survives a SIGKILL");
    }
    // The session token still works, and a retried bid is answered with its receipt.
    let (status, again) = node.bid(&people[0].0, "lot-r", 1_000_000, "n-1");
    assert_eq!((status, &again["bid_id"]), (200, &receipt["bid_id"]));
    assert_eq!(node.bid(&people[0].0, "lot-r", 1_020_000, "n-2").0, 201);

    node.stop_with(libc::SIGTERM);
    node.spawn();
    assert_eq!(
        node.auction("lot-r")["bid_count"],
        3,
        "and a graceful restart too"
    );
}

#[test]
fn service_endpoints_answer() {
    let (_dir, node) = node("service");
    let (status, time) = node.public("GET", "/api/v1/time", None, None);
    assert_eq!(status, 200);
    assert!(time["server_time_ms"].as_u64().unwrap().abs_diff(now_ms()) < 5_000);
    assert_eq!(time["node_id"], 1);
    assert_eq!(node.public("GET", "/healthz", None, None).0, 200);
    assert_eq!(node.public("GET", "/readyz", None, None).0, 200);
    let (status, problem) = node.public("GET", "/no/such/path", None, None);
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));

    let (status, public_api) = node.public("GET", "/openapi.json", None, None);
    assert_eq!(status, 200);
    assert!(
        public_api["paths"]["/api/v1/auctions/{id}/bids"]["post"].is_object(),
        "{public_api}"
    );
    let (_, control_api) = common::request(
        "GET",
        &format!("{}/openapi.json", node.control_url),
        None,
        None,
    );
    assert!(control_api["paths"]["/control/v1/auctions"]["post"].is_object());

    let metrics = ureq::get(&format!("{}/metrics", node.public_url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(metrics.contains("gavel_raft_is_leader 1"), "{metrics}");
    let (status, report) = node.control("GET", "/control/v1/janitor", None);
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(800));
    let (_, report_later) = node.control("GET", "/control/v1/janitor", None);
    assert!(
        report_later["sweeps"].as_u64() > report["sweeps"].as_u64(),
        "the janitor sweeps: {report_later}"
    );
}

/// Reads server-sent events until `count` named events arrived (keep-alives skipped).
fn read_events(reader: &mut impl std::io::BufRead, count: usize) -> Vec<(String, String, Value)> {
    let mut events = Vec::new();
    let (mut id, mut name) = (String::new(), String::new());
    let mut line = String::new();
    while events.len() < count {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end();
        if let Some(value) = line.strip_prefix("id: ") {
            id = value.to_string();
        } else if let Some(value) = line.strip_prefix("event: ") {
            name = value.to_string();
        } else if let Some(value) = line.strip_prefix("data: ") {
            events.push((
                id.clone(),
                name.clone(),
                serde_json::from_str(value).unwrap_or(Value::Null),
            ));
        }
    }
    events
}

fn open_stream(
    url: &str,
    last_event_id: Option<&str>,
) -> std::io::BufReader<Box<dyn std::io::Read + Send + Sync>> {
    let mut request = ureq::get(url).timeout(Duration::from_secs(5));
    if let Some(id) = last_event_id {
        request = request.set("Last-Event-ID", id);
    }
    let response = request.call().expect("event stream");
    assert_eq!(response.content_type(), "text/event-stream");
    std::io::BufReader::new(response.into_reader())
}

#[test]
fn event_streams_push_bids_and_resume_from_last_event_id() {
    let (_dir, node) = node("events");
    node.create_auction(auction_spec("lot-v", 30_000, 5_000));
    let people = bidders(&node, "lot-v", &["pia", "quin"]);
    let url = format!("{}/api/v1/auctions/lot-v/events", node.public_url);
    let mut stream = open_stream(&url, None);
    let mut all = open_stream(&format!("{}/api/v1/events", node.public_url), None);
    let first = read_events(&mut stream, 1);
    assert_eq!(first[0].1, "auction", "the current view at connect");
    assert_eq!(read_events(&mut all, 1)[0].2["id"], "lot-v");

    assert_eq!(node.bid(&people[0].0, "lot-v", 1_000_000, "p-1").0, 201);
    // One compact frame per bid: the bid, and what it changed.
    let pushed = read_events(&mut stream, 1);
    assert_eq!((pushed[0].0.as_str(), pushed[0].1.as_str()), ("1", "bid"));
    assert_eq!(pushed[0].2["bidder_number"], people[0].1);
    assert_eq!(pushed[0].2["current_price"], 1_000_000);
    assert_eq!(pushed[0].2["leading_bidder_number"], people[0].1);
    assert_eq!(pushed[0].2["minimum_next_bid"], 1_010_000);
    assert_eq!(
        read_events(&mut all, 1)[0].2["current_price"],
        1_000_000,
        "the all-auctions stream too"
    );

    // A client that saw bid 1 and reconnects gets bid 2, which it missed, then the view.
    drop(stream);
    assert_eq!(node.bid(&people[1].0, "lot-v", 1_010_000, "q-1").0, 201);
    let mut resumed = open_stream(&url, Some("1"));
    let replay = read_events(&mut resumed, 2);
    assert_eq!((replay[0].0.as_str(), replay[0].1.as_str()), ("2", "bid"));
    assert_eq!(replay[0].2["amount"], 1_010_000);
    assert_eq!(replay[1].1, "auction");
}

/// `[host] cpu_idle_poll`: a node that may make the CPU-latency request holds it open for
/// as long as it runs; one that may not says why in its log and serves all the same.
#[test]
fn cpu_idle_poll_is_held_while_the_node_runs_or_the_log_says_why_not() {
    let request_file = std::path::Path::new("/dev/cpu_dma_latency");
    let dir = common::temp_dir("idle-poll");
    let mut node = common::start_with(dir.path(), "[host]\ncpu_idle_poll = true\n");
    let pid = node.pid().expect("running");
    let held = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the node's open files")
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == request_file));
    // Opening the file without writing to it asks for nothing.
    let allowed = std::fs::OpenOptions::new()
        .write(true)
        .open(request_file)
        .is_ok();
    let log: String = std::fs::read_dir(dir.path())
        .expect("test dir")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".log"))
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .collect();
    if allowed {
        assert!(held, "the request file is not open in the node: {log}");
        assert!(log.contains("idle CPUs poll"), "{log}");
    } else {
        assert!(!held);
        assert!(log.contains("the CPU-latency request failed"), "{log}");
    }
    assert_eq!(node.public("GET", "/readyz", None, None).0, 200);
    node.stop_with(libc::SIGTERM);
}

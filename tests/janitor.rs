//! The Janitor's purification (docs/DESIGN.md decision 7) on one real `gavel serve` process:
//! an Auction actor that panics (fault injected over the control API) ends alone, the node
//! keeps serving, and the next sweep restarts the actor so live events flow again; closed
//! auctions leave the live state for the archive and still answer, also after a restart;
//! with `janitor.archive_retention_ms` set, archived auctions are pruned and answer 404.

use gavel_testkit as common;

use std::time::{Duration, Instant};

use common::{auction_spec, free_port, Node};
use serde_json::{json, Value};

fn node_with(name: &str, extra: &str) -> (tempfile::TempDir, Node) {
    let dir = tempfile::Builder::new()
        .prefix(name)
        .tempdir()
        .expect("temp dir");
    let ports = (free_port(), free_port(), free_port());
    let mut node = Node::configure(dir.path(), 1, ports, extra);
    node.spawn();
    (dir, node)
}

fn janitor_report(node: &Node) -> Value {
    let (status, report) = node.control("GET", "/control/v1/janitor", None);
    assert_eq!(status, 200, "{report}");
    report
}

/// Polls the janitor report until `holds`, or panics with the last report after `limit`.
fn wait_for_report(node: &Node, limit: Duration, holds: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let report = janitor_report(node);
        if holds(&report) {
            return report;
        }
        assert!(
            started.elapsed() < limit,
            "the janitor did not get there: {report}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads server-sent events until `count` named events arrived or the stream ends.
fn read_events(reader: &mut impl std::io::BufRead, count: usize) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let mut name = String::new();
    let mut line = String::new();
    while events.len() < count {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end();
        if let Some(value) = line.strip_prefix("event: ") {
            name = value.to_string();
        } else if let Some(value) = line.strip_prefix("data: ") {
            let data = serde_json::from_str(value).unwrap_or(Value::Null);
            events.push((name.clone(), data));
        }
    }
    events
}

fn open_stream(url: &str) -> std::io::BufReader<Box<dyn std::io::Read + Send + Sync>> {
    let response = ureq::get(url)
        .timeout(Duration::from_secs(5))
        .call()
        .expect("event stream");
    assert_eq!(response.content_type(), "text/event-stream");
    std::io::BufReader::new(response.into_reader())
}

fn register_qualify_login(node: &Node, auction_id: &str, bidder_id: &str) -> String {
    node.register_bidder(bidder_id);
    node.qualify(auction_id, bidder_id);
    node.login(bidder_id)
}

// Fault: a panic inside an Auction actor's handler (POST /control/v1/faults/panic).
#[test]
fn a_panicking_auction_actor_ends_alone_and_the_next_sweep_restarts_it() {
    let (_dir, mut node) = node_with("panic", "\n[faults]\nenabled = true\n");
    node.create_auction(auction_spec("lot-p", 60_000, 60_000));
    let alice = register_qualify_login(&node, "lot-p", "alice");
    let events_url = format!("{}/api/v1/auctions/lot-p/events", node.public_url);
    let mut before = open_stream(&events_url);
    assert_eq!(read_events(&mut before, 1)[0].0, "auction");

    let (status, answer) = node.control(
        "POST",
        "/control/v1/faults/panic",
        Some(json!({"auction_id": "lot-p"})),
    );
    assert_eq!(status, 202, "{answer}");
    let injected = json!({"actor": "auction", "auction_id": "lot-p", "injected": true});
    assert_eq!(answer, injected);
    // The stream of the dead actor ends: its publisher went with it.
    assert!(read_events(&mut before, 1).is_empty());

    // The node itself lives on and serves.
    let child = node.child.as_mut().expect("the node runs");
    assert!(matches!(child.try_wait(), Ok(None)), "the node exited");
    assert_eq!(node.auction("lot-p")["phase"], "listing");
    let report = wait_for_report(&node, Duration::from_secs(10), |report| {
        report["actors_crashed"].as_u64() >= Some(1) && report["live_actors"].as_u64() == Some(1)
    });
    assert_eq!(report["actors_stuck_replaced"], 0, "{report}");

    // A new actor serves the auction: a bid reaches a new subscriber live.
    let mut after = open_stream(&events_url);
    assert_eq!(read_events(&mut after, 1)[0].0, "auction");
    let (status, receipt) = node.bid(&alice, "lot-p", 1_000_000, "p-1");
    assert_eq!(status, 201, "{receipt}");
    // One compact frame: the bid and what it changed.
    let pushed = read_events(&mut after, 1);
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert_eq!(pushed[0].0, "bid");
    assert_eq!(pushed[0].1["amount"], 1_000_000);
    assert_eq!(pushed[0].1["current_price"], 1_000_000, "{pushed:?}");
    assert_eq!(pushed[0].1["bid_count"], 1, "{pushed:?}");

    // Bad targets change nothing.
    let (status, problem) = node.control(
        "POST",
        "/control/v1/faults/panic",
        Some(json!({"auction_id": "no-such-lot"})),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("auction_not_found"))
    );
    let (status, problem) = node.control(
        "POST",
        "/control/v1/faults/panic",
        Some(json!({"auction_id": "lot-p", "twice": true})),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("invalid_request"))
    );
    let crashed = janitor_report(&node)["actors_crashed"].clone();
    assert_eq!(crashed, report["actors_crashed"]);
}

// Housekeeping: closed auctions leave the live state for the on-disk archive.
#[test]
fn closed_auctions_are_archived_and_still_answer_after_a_restart() {
    let (_dir, mut node) = node_with("archive", "");
    let spec = auction_spec("lot-a", 800, 500);
    node.create_auction(spec.clone());
    let alice = register_qualify_login(&node, "lot-a", "alice");
    assert_eq!(node.bid(&alice, "lot-a", 1_000_000, "a-1").0, 201);
    let sold = node.wait_for_phase("lot-a", "sold", Duration::from_secs(10));
    assert_eq!(sold["phase"], "sold", "{sold}");

    // linger 1 s, sweeps every 300 ms (tests/common): archived within a few sweeps.
    let report = wait_for_report(&node, Duration::from_secs(10), |report| {
        report["auctions_archived"].as_u64() >= Some(1)
    });
    assert_eq!(report["archive_size"], 1, "{report}");
    assert_eq!(report["state_auctions"], 0, "{report}");
    let (_, listed) = node.public("GET", "/api/v1/auctions", None, None);
    assert_eq!(
        listed["auctions"],
        json!([]),
        "the live list holds no archived auction"
    );

    let check_archived = |node: &Node| {
        let view = node.auction("lot-a");
        assert_eq!(
            (view["phase"].as_str(), view["current_price"].as_u64()),
            (Some("sold"), Some(1_000_000))
        );
        let (status, bids) = node.public("GET", "/api/v1/auctions/lot-a/bids", None, None);
        assert_eq!(
            (status, bids["bids"][0]["amount"].as_u64()),
            (200, Some(1_000_000))
        );
        let (status, result) = node.control("GET", "/control/v1/auctions/lot-a/result", None);
        assert_eq!(status, 200, "{result}");
        assert_eq!(result["winner_bidder_id"], "alice");
    };
    check_archived(&node);
    let mut stream = open_stream(&format!("{}/api/v1/auctions/lot-a/events", node.public_url));
    let replayed = read_events(&mut stream, 3);
    let names: Vec<&str> = replayed.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["bid", "closed"], "then the stream ends");

    // Still closed, not unknown: a late bid, the same spec again, another spec.
    let (status, problem) = node.bid(&alice, "lot-a", 1_100_000, "a-2");
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("auction_not_open"))
    );
    let (status, _) = node.control("POST", "/control/v1/auctions", Some(spec.clone()));
    assert_eq!(status, 200);
    let mut other = spec;
    other["title"] = json!("Another parcel");
    let (status, problem) = node.control("POST", "/control/v1/auctions", Some(other));
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("auction_exists"))
    );

    // Faults are off by default.
    let (status, problem) = node.control(
        "POST",
        "/control/v1/faults/panic",
        Some(json!({"auction_id": "lot-a"})),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("faults_disabled"))
    );

    node.kill();
    node.spawn();
    check_archived(&node);
}

#[test]
fn with_a_retention_archived_auctions_are_pruned_and_answer_404() {
    // Archived 1 s after the close (tests/common), pruned once closed 1.5 s ago.
    let (_dir, mut node) = node_with("prune", "archive_retention_ms = 1500\n");
    node.create_auction(auction_spec("lot-p", 800, 500));
    let alice = register_qualify_login(&node, "lot-p", "alice");
    assert_eq!(node.bid(&alice, "lot-p", 1_000_000, "p-1").0, 201);
    let sold = node.wait_for_phase("lot-p", "sold", Duration::from_secs(10));
    assert_eq!(sold["phase"], "sold", "{sold}");

    let report = wait_for_report(&node, Duration::from_secs(10), |report| {
        report["archive_prunes"].as_u64() >= Some(1) && report["archive_size"] == 0
    });
    assert!(report["auctions_archived"].as_u64() >= Some(1), "{report}");
    let gone = |node: &Node| {
        for path in ["/api/v1/auctions/lot-p", "/api/v1/auctions/lot-p/bids"] {
            let (status, problem) = node.public("GET", path, None, None);
            assert_eq!(
                (status, problem["code"].as_str()),
                (404, Some("auction_not_found")),
                "{path}"
            );
        }
        let (status, _) = node.control("GET", "/control/v1/auctions/lot-p/result", None);
        assert_eq!(status, 404);
    };
    gone(&node);
    node.kill();
    node.spawn();
    gone(&node);
}

//! No one client can stop a node: a real `gavel serve` process is flooded by one client
//! (sign-ins, wrong secrets, event streams, a body sent a byte at a time, a long bid
//! list) and must stay bounded, while other clients keep signing in and bidding. Every
//! load loop is bounded in count and time and aims at loopback only; "another address"
//! is 127.0.0.2, which reaches the node's 127.0.0.1 listener over loopback.

use gavel_testkit as common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{auction_spec, temp_dir, Node};
use serde_json::{json, Value};

const AUCTION: &str = "lot-bounds";

/// A node with one open auction, Alice and Bob registered and qualified.
fn node_with_auction(name: &str) -> (tempfile::TempDir, Node) {
    let dir = temp_dir(name);
    let node = Node::start(dir.path());
    node.create_auction(auction_spec(AUCTION, 120_000, 60_000));
    for bidder in ["alice", "bob"] {
        node.register_bidder(bidder);
        node.qualify(AUCTION, bidder);
    }
    (dir, node)
}

fn public_address(node: &Node) -> SocketAddr {
    let host_and_port = node.public_url.trim_start_matches("http://");
    host_and_port.parse().expect("public address")
}

/// A TCP connection to `to` from the loopback address `from` (127.0.0.0/8).
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(IpAddr::V4(from), 0))
            .expect("bind the source address");
        socket.connect(to).await.expect("connect")
    });
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    stream
}

/// Sends a request head (and `body`) on `stream`.
fn send_head(stream: &mut TcpStream, method: &str, path: &str, token: Option<&str>, body: &[u8]) {
    let auth = token.map_or(String::new(), |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(body).expect("send body");
}

/// One whole request from `from`: (status, JSON body or Null).
fn request_from(
    from: Ipv4Addr,
    node: &Node,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut stream = connect_from(from, public_address(node));
    let body = body.map(|body| body.to_string()).unwrap_or_default();
    send_head(&mut stream, method, path, token, body.as_bytes());
    let (status, _) = common::read_response_head(&mut stream);
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    (status, serde_json::from_slice(&rest).unwrap_or(Value::Null))
}

/// An event stream of the auction from `from`, left open: its status and head.
fn open_stream(from: Ipv4Addr, node: &Node) -> (TcpStream, u16, String) {
    let mut stream = connect_from(from, public_address(node));
    let head = format!(
        "GET /api/v1/auctions/{AUCTION}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("send head");
    let (status, head) = common::read_response_head(&mut stream);
    (stream, status, head)
}

fn sessions_live(node: &Node) -> Option<u64> {
    let text = ureq::get(&format!("{}/metrics", node.public_url))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("gavel_sessions_live "))
        .and_then(|value| value.trim().parse().ok())
}

// Sessions: a bidder holds at most `sessions.max_sessions_per_bidder` (8 by default);
// each sign-in over it ends the oldest, so a flood of sign-ins leaves 8 sessions in the
// replicated state and the first token opens nothing any more.
#[test]
fn a_thousand_sign_ins_leave_eight_sessions_and_the_first_token_refused() {
    let (_dir, node) = node_with_auction("bounds-sessions");
    let started = Instant::now();
    let first = node.login("alice");
    let mut last = first.clone();
    for _ in 1..1_000 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "sign-ins too slow"
        );
        last = node.login("alice");
    }
    assert_eq!(
        sessions_live(&node),
        Some(8),
        "Alice's sessions in the state"
    );
    let (status, problem) = node.bid(&first, AUCTION, 1_000_000, "first-token");
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, receipt) = node.bid(&last, AUCTION, 1_000_000, "last-token");
    assert_eq!(status, 201, "the newest session bids: {receipt}");
    let bob = node.login("bob");
    assert_eq!(node.bid(&bob, AUCTION, 1_010_000, "bob-1").0, 201);
}

// Sessions: wrong secrets in a row lock the bidder's sign-ins out, the right secret
// included, with 429 `sign_in_locked` and Retry-After; other bidders sign in as before.
#[test]
fn wrong_secrets_in_a_row_lock_the_bidder_out_with_retry_after() {
    let (_dir, node) = node_with_auction("bounds-lockout");
    let wrong = json!({"bidder_id": "alice", "secret": "not-her-secret"});
    for attempt in 0..5 {
        let (status, problem) = node.public("POST", "/api/v1/sessions", None, Some(wrong.clone()));
        assert_eq!(
            (status, problem["code"].as_str()),
            (401, Some("bad_credentials")),
            "attempt {attempt}"
        );
    }
    let right = json!({"bidder_id": "alice", "secret": "secret-alice"});
    let response = ureq::post(&format!("{}/api/v1/sessions", node.public_url)).send_json(right);
    let Err(ureq::Error::Status(429, response)) = response else {
        panic!("the sixth sign-in is not refused: {response:?}");
    };
    let retry_after: u64 = response
        .header("Retry-After")
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let problem: Value = response.into_json().expect("problem+json");
    assert_eq!(problem["code"], "sign_in_locked");
    node.login("bob");
}

// Streams: one address holding `limits.max_streams_per_ip` (100 by default) event
// streams is refused one more with 429 `too_many_streams`; another address still signs
// in, bids and opens a stream.
#[test]
fn streams_past_the_cap_from_one_address_are_refused_while_another_signs_in_and_bids() {
    let (_dir, node) = node_with_auction("bounds-streams");
    let greedy = Ipv4Addr::new(127, 0, 0, 1);
    let mut held = Vec::new();
    for index in 0..100 {
        let (stream, status, head) = open_stream(greedy, &node);
        assert_eq!(status, 200, "stream {index}: {head}");
        held.push(stream);
    }
    let (_refused, status, head) = open_stream(greedy, &node);
    assert_eq!(status, 429, "the 101st stream: {head}");
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");

    let other = Ipv4Addr::new(127, 0, 0, 2);
    let signed_in = json!({"bidder_id": "bob", "secret": "secret-bob"});
    let (status, session) = request_from(
        other,
        &node,
        "POST",
        "/api/v1/sessions",
        None,
        Some(signed_in),
    );
    assert_eq!(status, 201, "sign-in from another address: {session}");
    let token = session["token"].as_str().expect("token");
    let bid = json!({"amount": 1_000_000, "request_id": "from-127.0.0.2"});
    let path = format!("/api/v1/auctions/{AUCTION}/bids");
    let (status, receipt) = request_from(other, &node, "POST", &path, Some(token), Some(bid));
    assert_eq!(status, 201, "bid from another address: {receipt}");
    let (_stream, status, head) = open_stream(other, &node);
    assert_eq!(status, 200, "a stream from another address: {head}");
    drop(held);
}

// Bid lists page with `?after_seq=&limit=`; without parameters the list is whole, as it
// always was.
#[test]
fn bid_lists_page_after_a_seq_and_stay_whole_without_parameters() {
    let (_dir, node) = node_with_auction("bounds-pages");
    let tokens = [node.login("alice"), node.login("bob")];
    for index in 0..5u64 {
        let token = &tokens[index as usize % 2];
        let amount = 1_000_000 + index * 10_000;
        let (status, receipt) = node.bid(token, AUCTION, amount, &format!("page-{index}"));
        assert_eq!(status, 201, "{receipt}");
    }
    let bids = |query: &str| {
        node.public(
            "GET",
            &format!("/api/v1/auctions/{AUCTION}/bids{query}"),
            None,
            None,
        )
    };
    let seqs = |page: &Value| -> Vec<u64> {
        page["bids"]
            .as_array()
            .expect("bids")
            .iter()
            .filter_map(|bid| bid["seq"].as_u64())
            .collect()
    };
    let (status, whole) = bids("");
    assert_eq!((status, seqs(&whole)), (200, vec![1, 2, 3, 4, 5]));
    let (status, page) = bids("?after_seq=2&limit=2");
    assert_eq!((status, seqs(&page)), (200, vec![3, 4]));
    assert_eq!(page["next_after_seq"], 4);
    let (_, last) = bids("?after_seq=4&limit=2");
    assert_eq!(
        (seqs(&last), &last["next_after_seq"]),
        (vec![5], &Value::Null)
    );
    let (_, beyond) = bids("?after_seq=99");
    assert!(seqs(&beyond).is_empty());
    let (status, problem) = bids("?limit=0");
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("invalid_request"))
    );
}

// Connections: a body that stops arriving is answered 408 `request_timeout` once
// `http.body_read_timeout_ms` (10 s by default) has passed, and the connection closes.
#[test]
fn a_body_sent_too_slowly_is_answered_408_after_the_body_read_timeout() {
    let (_dir, node) = node_with_auction("bounds-slow-body");
    let mut stream = connect_from(Ipv4Addr::new(127, 0, 0, 1), public_address(&node));
    let head = "POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"bidder_id\"";
    stream.write_all(head.as_bytes()).expect("send head");
    let started = Instant::now();
    let (status, head) = common::read_response_head(&mut stream);
    let waited = started.elapsed();
    assert_eq!(status, 408, "after {waited:?}: {head}");
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let problem: Value = serde_json::from_slice(&rest).unwrap_or(Value::Null);
    assert_eq!(problem["code"], "request_timeout");
    // The node still answers everyone else.
    node.login("alice");
}

//! The events listener (`listen.events`) of a real `gavel serve` process: it serves the
//! event streams (and nothing that changes state) on worker threads named `gavel-events`
//! at a lower priority than the public listener's, under the same stream caps; a page of
//! the same host on another port may read and resume its streams (CORS), another site's
//! page may not; the pages are told where it is and their Content-Security-Policy lets
//! them reach it.

use gavel_testkit as common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{auction_spec, temp_dir, Node};
use serde_json::json;

const AUCTION: &str = "lot-events-listener";

/// A node with an events listener, one open auction, Alice and Bob qualified; their
/// tokens.
fn node_with_events_listener(name: &str, extra: &str) -> (tempfile::TempDir, Node, [String; 2]) {
    let dir = temp_dir(name);
    let ports = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let mut node =
        Node::configure_listeners(dir.path(), 1, ports, Some(common::free_port()), extra, None);
    node.spawn();
    node.create_auction(auction_spec(AUCTION, 120_000, 60_000));
    let tokens = ["alice", "bob"].map(|bidder| {
        node.register_bidder(bidder);
        node.qualify(AUCTION, bidder);
        node.login(bidder)
    });
    (dir, node, tokens)
}

fn address(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Sends `head` (a whole request without body) to `url`'s address; the connection and
/// the response head, read up to the blank line.
fn send(url: &str, head: &str) -> (TcpStream, u16, String) {
    let mut stream = TcpStream::connect(address(url)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream.write_all(head.as_bytes()).expect("send head");
    let (status, head) = common::read_response_head(&mut stream);
    (stream, status, head)
}

/// The origin of a page of the public listener, on the same host as the events listener.
const PAGE: &str = "http://127.0.0.1:1";

/// Opens the auction's stream on `url` from a page of `PAGE`, resuming after
/// `last_event_id` if given.
fn open_stream(url: &str, last_event_id: Option<u64>) -> (TcpStream, u16, String) {
    open_stream_from(PAGE, url, last_event_id)
}

fn open_stream_from(page: &str, url: &str, last_event_id: Option<u64>) -> (TcpStream, u16, String) {
    let resume = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
    send(
        url,
        &format!(
            "GET /api/v1/auctions/{AUCTION}/events HTTP/1.1\r\nHost: {}\r\nOrigin: {page}\r\nAccept: text/event-stream\r\n{resume}\r\n",
            address(url)
        ),
    )
}

/// Reads the stream until it holds `wanted` (or 10 s pass); what it read.
fn read_until(stream: &mut TcpStream, wanted: &str) -> String {
    let started = Instant::now();
    let mut text = String::new();
    let mut buffer = [0u8; 4096];
    while !text.contains(wanted) && started.elapsed() < Duration::from_secs(10) {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => text.push_str(&String::from_utf8_lossy(&buffer[..read])),
        }
    }
    text
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[test]
fn streams_come_from_the_events_listener_with_cors_and_resume_after_the_last_event_id() {
    let (_dir, node, tokens) = node_with_events_listener("events-listener-streams", "");
    let events_url = node
        .events_url
        .clone()
        .expect("the node has an events listener");
    let (mut stream, status, head) = open_stream(&events_url, None);
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header(&head, "access-control-allow-origin"),
        Some(PAGE),
        "{head}"
    );
    assert!(read_until(&mut stream, "event: auction").contains("event: auction"));

    for (index, amount) in [1_000_000u64, 1_010_000].into_iter().enumerate() {
        let request_id = format!("listener-{index}");
        let (status, receipt) = node.bid(&tokens[index], AUCTION, amount, &request_id);
        assert_eq!(status, 201, "{receipt}");
    }
    let live = read_until(&mut stream, "id: 2\nevent: bid");
    assert!(
        live.contains("id: 1\nevent: bid") && live.contains("id: 2\nevent: bid"),
        "{live}"
    );

    // A page that lost its stream resumes after bid 1 and gets bid 2, not bid 1 again.
    let (mut resumed, status, head) = open_stream(&events_url, Some(1));
    assert_eq!(status, 200, "{head}");
    let text = read_until(&mut resumed, "event: auction");
    assert!(
        text.contains("id: 2\nevent: bid") && !text.contains("id: 1\n"),
        "{text}"
    );

    // A browser asks before it sends Last-Event-ID from another origin.
    let (_, status, head) = send(
        &events_url,
        &format!(
            "OPTIONS /api/v1/auctions/{AUCTION}/events HTTP/1.1\r\nHost: {}\r\nOrigin: {PAGE}\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: last-event-id\r\nConnection: close\r\n\r\n",
            address(&events_url)
        ),
    );
    assert!(matches!(status, 200 | 204), "{head}");
    let allowed = header(&head, "access-control-allow-headers").unwrap_or("");
    assert!(
        allowed.to_ascii_lowercase().contains("last-event-id"),
        "{head}"
    );
}

#[test]
fn the_events_listener_changes_nothing_and_counts_against_the_same_stream_cap() {
    let extra = "[limits]\nmax_streams_per_ip = 2\n";
    let (_dir, node, [token, _]) = node_with_events_listener("events-listener-bounds", extra);
    let events_url = node.events_url.clone().expect("events listener");
    // The bid routes are not on the events listener.
    let bid = json!({"amount": 1_000_000, "request_id": "on-the-events-listener"});
    let (status, answer) = common::try_request(
        "POST",
        &format!("{events_url}/api/v1/auctions/{AUCTION}/bids"),
        Some(&token),
        Some(bid),
    )
    .expect("an answer");
    assert_eq!(status, 404, "{answer}");
    assert_eq!(node.auction(AUCTION)["bid_count"], 0);

    // One stream on each listener fills this address's two slots; a third is refused on
    // either.
    let (_public, status, head) = open_stream(&node.public_url, None);
    assert_eq!(status, 200, "{head}");
    let (_events, status, head) = open_stream(&events_url, None);
    assert_eq!(status, 200, "{head}");
    let (_refused, status, head) = open_stream(&events_url, None);
    assert_eq!(status, 429, "{head}");
    assert_eq!(
        header(&head, "access-control-allow-origin"),
        Some(PAGE),
        "{head}"
    );
}

/// The nice value and name of each thread of process `pid`.
fn threads(pid: i32) -> Vec<(String, i64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the node's threads");
    tasks
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
            // pid (comm) state ppid …: the fields after the closing parenthesis; nice is
            // the 19th field of the line, the 17th after the name.
            let (name_part, rest) = stat.rsplit_once(')')?;
            let name = name_part.split_once('(')?.1.to_string();
            let nice = rest.split_whitespace().nth(16)?.parse().ok()?;
            Some((name, nice))
        })
        .collect()
}

#[test]
fn the_events_listener_runs_on_threads_of_its_own_at_a_lower_priority() {
    let (_dir, node, _token) = node_with_events_listener("events-listener-threads", "");
    let events_url = node.events_url.clone().expect("events listener");
    // The workers start with the listener; a stream makes sure one has served.
    let (_stream, status, head) = open_stream(&events_url, None);
    assert_eq!(status, 200, "{head}");
    let threads = threads(node.pid().expect("running"));
    let events: Vec<_> = threads
        .iter()
        .filter(|(name, _)| name == "gavel-events")
        .collect();
    assert_eq!(events.len(), 1, "http.event_workers is 1: {threads:?}");
    assert!(events.iter().all(|(_, nice)| *nice == 10), "{threads:?}");
    let public_workers: Vec<_> = threads
        .iter()
        .filter(|(name, _)| name.starts_with("actix-rt|system"))
        .collect();
    assert!(!public_workers.is_empty(), "{threads:?}");
    assert!(
        public_workers.iter().all(|(_, nice)| *nice == 0),
        "{threads:?}"
    );
}

#[test]
fn the_pages_are_told_where_the_events_listener_is_and_may_reach_it() {
    let (_dir, node, _token) = node_with_events_listener("events-listener-pages", "");
    let events_url = node.events_url.clone().expect("events listener");
    for page in ["/", "/hall"] {
        let response = ureq::get(&format!("{}{page}", node.public_url))
            .call()
            .expect("the page");
        let policy = response
            .header("content-security-policy")
            .unwrap_or("")
            .to_string();
        let html = response.into_string().expect("html");
        let meta = format!("<meta name=\"gavel-events\" content=\"{events_url}\">");
        assert!(html.contains(&meta), "{page}: {html}");
        let connect = policy
            .split(';')
            .find(|directive| directive.trim().starts_with("connect-src"))
            .unwrap_or("");
        assert!(
            connect
                .split_whitespace()
                .any(|source| source == events_url),
            "{policy}"
        );
    }

    // A node without one leaves the tag empty: its pages stream from their own origin.
    let dir = temp_dir("events-listener-none");
    let plain = Node::start(dir.path());
    let html = ureq::get(&format!("{}/", plain.public_url))
        .call()
        .expect("the page")
        .into_string()
        .expect("html");
    assert!(
        html.contains("<meta name=\"gavel-events\" content=\"\">"),
        "{html}"
    );
}

#[test]
fn another_sites_page_is_refused_before_it_takes_a_stream_slot() {
    let extra = "[limits]\nmax_streams_per_ip = 1\n";
    let (_dir, node, _tokens) = node_with_events_listener("events-listener-cors", extra);
    let events_url = node.events_url.clone().expect("events listener");
    for _ in 0..3 {
        let (_stream, status, head) = open_stream_from("http://evil.example", &events_url, None);
        assert_eq!(status, 400, "{head}");
        assert_eq!(header(&head, "access-control-allow-origin"), None, "{head}");
    }
    // The refusals held no slot: this address's one slot is still free.
    let (_stream, status, head) = open_stream(&events_url, None);
    assert_eq!(status, 200, "{head}");
}

/// The node's resident memory, in KiB.
fn resident_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn a_stream_on_the_events_listener_holds_a_few_kib_of_the_nodes_memory() {
    // Few enough for the open-file limit of any test machine (1,024 is common).
    const STREAMS: u64 = 600;
    let extra = "[limits]\nper_ip_per_second = 100000\nper_ip_burst = 100000\n\
                 max_streams_per_ip = 1000\nmax_streams = 1000\n";
    let (_dir, node, _tokens) = node_with_events_listener("events-listener-memory", extra);
    let events_url = node.events_url.clone().expect("events listener");
    let pid = node.pid().expect("the node runs");
    // What the first stream sets up once (its thread's buffers, the auction's frames) is
    // not a stream's own.
    let (mut first, status, head) = open_stream(&events_url, None);
    assert_eq!(status, 200, "{head}");
    read_until(&mut first, "event: auction");
    std::thread::sleep(Duration::from_millis(300));
    let before = resident_kib(pid);
    let streams: Vec<TcpStream> = (0..STREAMS)
        .map(|_| {
            let (mut stream, status, head) = open_stream(&events_url, None);
            assert_eq!(status, 200, "{head}");
            read_until(&mut stream, "event: auction");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let after = resident_kib(pid);
    let per_stream = after.saturating_sub(before) as f64 / STREAMS as f64;
    eprintln!(
        "{per_stream:.1} KiB per stream ({before} KiB before {STREAMS} streams, {after} after)"
    );
    // Connections served by actix-http took 12 KiB each here (debug build; 10.9 KiB in a
    // release build at 10,000 streams): two 8 KiB buffers, and a task holding its future
    // twice.
    assert!(
        per_stream <= 6.0,
        "{per_stream:.1} KiB per stream ({before} KiB before {STREAMS} streams, {after} after)"
    );
    drop(streams);
}

/// The bid ids of a stream's history, read up to its `auction` view.
fn history_ids(url: &str, query: &str, last_event_id: Option<u64>) -> Result<Vec<u64>, u16> {
    let resume = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
    let (mut stream, status, head) = send(
        url,
        &format!(
            "GET /api/v1/auctions/{AUCTION}/events?{query} HTTP/1.1\r\nHost: {}\r\n{resume}\r\n",
            address(url)
        ),
    );
    if status != 200 {
        return Err(status);
    }
    assert!(head.contains("text/event-stream"), "{head}");
    let text = read_until(&mut stream, "event: auction");
    // Each `id: N` line followed by `event: bid` (the chunks' size lines sit between frames).
    Ok(text
        .match_indices("id: ")
        .filter_map(|(at, _)| {
            let (id, rest) = text[at + 4..].split_once('\n')?;
            rest.starts_with("event: bid\n")
                .then(|| id.parse().ok())
                .flatten()
        })
        .collect())
}

#[test]
fn a_new_stream_asks_for_the_newest_bids_or_starts_after_a_bid_it_holds() {
    let (_dir, node, tokens) = node_with_events_listener("events-listener-history", "");
    let events_url = node.events_url.clone().expect("events listener");
    for seq in 1..=5u64 {
        let amount = 1_000_000 + (seq - 1) * 10_000;
        let token = &tokens[(seq % 2) as usize];
        let (status, receipt) = node.bid(token, AUCTION, amount, &format!("history-{seq}"));
        assert_eq!(status, 201, "{receipt}");
    }
    for url in [&events_url, &node.public_url] {
        assert_eq!(history_ids(url, "", None), Ok(vec![1, 2, 3, 4, 5]));
        assert_eq!(history_ids(url, "history=2", None), Ok(vec![4, 5]));
        assert_eq!(history_ids(url, "history=0", None), Ok(vec![]));
        assert_eq!(history_ids(url, "history=9", None), Ok(vec![1, 2, 3, 4, 5]));
        assert_eq!(history_ids(url, "after_seq=3", None), Ok(vec![4, 5]));
        // Resuming, the browser's Last-Event-ID wins: nothing after it is left out.
        assert_eq!(history_ids(url, "history=2", Some(1)), Ok(vec![2, 3, 4, 5]));
        assert_eq!(history_ids(url, "history=10001", None), Err(422));
        assert_eq!(history_ids(url, "history=-1", None), Err(422));
    }
    // The page's standing needs no history to know a bidder has bid.
    let (status, me) = node.public(
        "GET",
        &format!("/api/v1/auctions/{AUCTION}/me"),
        Some(&tokens[1]),
        None,
    );
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["bids_placed"], 3, "{me}");
}

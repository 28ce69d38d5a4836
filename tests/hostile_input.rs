//! A catalogue of hostile requests against one real `gavel serve` process, on both
//! listeners: malformed JSON, wrong types, unknown fields, bodies over 64 KiB, numbers
//! that overflow u64, negative and float amounts, huge strings, bad UTF-8, wrong content
//! types, missing, garbage, expired and wrong-kind bearer tokens, path junk and wrong
//! methods. Each entry names the status and problem+json `code` it must get; after the
//! catalogue the node holds the same auctions and bids as before and still serves.
//!
//! Requests go over a raw TCP connection, so that bytes no HTTP library would send (bad
//! UTF-8, NUL, `..`) reach the node as written.

use gavel_testkit as common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{auction_spec, Node, ADMIN_TOKEN};
use serde_json::{json, Value};

/// Which bearer token an entry sends.
#[derive(Clone, Copy, Debug)]
enum Token {
    None,
    Admin,
    /// A live bidder session.
    Bidder,
    /// A bidder session past its lifetime.
    Expired,
    Garbage,
    /// The raw header value given, not a token.
    Header(&'static [u8]),
}

#[derive(Clone, Copy, Debug)]
enum Listener {
    Public,
    Control,
}

/// One hostile request and what it must get.
struct Entry {
    what: &'static str,
    listener: Listener,
    method: &'static str,
    /// Sent as written: raw bytes, already percent-encoded where it should be.
    path: Vec<u8>,
    token: Token,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// The problem's `code`; `None` where the request never reaches Gavel's handlers (an
    /// HTTP head the server cannot parse), and only the status is checked.
    code: Option<&'static str>,
}

fn entry(
    what: &'static str,
    listener: Listener,
    method: &'static str,
    path: impl Into<Vec<u8>>,
    token: Token,
    status: u16,
    code: &'static str,
) -> Entry {
    Entry {
        what,
        listener,
        method,
        path: path.into(),
        token,
        content_type: None,
        body: Vec::new(),
        status,
        code: Some(code),
    }
}

impl Entry {
    fn json(mut self, body: impl Into<Vec<u8>>) -> Entry {
        self.content_type = Some("application/json");
        self.body = body.into();
        self
    }

    fn typed(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Entry {
        self.content_type = Some(content_type);
        self.body = body.into();
        self
    }

    fn unparsable(mut self) -> Entry {
        self.code = None;
        self
    }
}

/// The answer to one raw request: status, headers (lower-case names) and body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Sends one HTTP/1.1 request as raw bytes on a fresh connection and reads the answer
/// until the server closes it (`Connection: close`), within 10 s.
fn send_raw(base_url: &str, head_and_body: &[u8]) -> Answer {
    let address = base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect to the node");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream.write_all(head_and_body).expect("send request");
    let mut bytes = Vec::new();
    // The server may close early on a refused body; what it answered is already read.
    let _ = stream.read_to_end(&mut bytes);
    let split = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(&bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

/// The payload of a chunked body.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    while let Some(line_end) = body.windows(2).position(|window| window == b"\r\n") {
        let size_text = String::from_utf8_lossy(&body[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.trim(), 16).unwrap_or(0);
        let start = line_end + 2;
        if size == 0 || start + size > body.len() {
            break;
        }
        payload.extend_from_slice(&body[start..start + size]);
        body = &body[(start + size + 2).min(body.len())..];
    }
    payload
}

struct Tokens {
    bidder: String,
    expired: String,
}

fn request_bytes(entry: &Entry, tokens: &Tokens) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(entry.method.as_bytes());
    bytes.push(b' ');
    bytes.extend_from_slice(&entry.path);
    bytes.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    let authorization: Option<Vec<u8>> = match entry.token {
        Token::None => None,
        Token::Admin => Some(format!("Bearer {ADMIN_TOKEN}").into_bytes()),
        Token::Bidder => Some(format!("Bearer {}", tokens.bidder).into_bytes()),
        Token::Expired => Some(format!("Bearer {}", tokens.expired).into_bytes()),
        Token::Garbage => Some(b"Bearer 0000-not-a-token-0000".to_vec()),
        Token::Header(value) => Some(value.to_vec()),
    };
    if let Some(value) = authorization {
        bytes.extend_from_slice(b"Authorization: ");
        bytes.extend_from_slice(&value);
        bytes.extend_from_slice(b"\r\n");
    }
    if let Some(content_type) = entry.content_type {
        bytes.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
    }
    if !entry.body.is_empty() || entry.method == "POST" {
        bytes.extend_from_slice(format!("Content-Length: {}\r\n", entry.body.len()).as_bytes());
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(&entry.body);
    bytes
}

const BIDS: &str = "/api/v1/auctions/lot-h/bids";
const AUCTIONS: &str = "/control/v1/auctions";

/// A bid body with `amount` written as given.
fn bid_with_amount(amount: &str) -> String {
    format!(r#"{{"amount": {amount}, "request_id": "r-1"}}"#)
}

/// An auction spec with `field` set to the JSON text `value`.
fn spec_with(field: &str, value: &str) -> Vec<u8> {
    let mut spec = auction_spec("lot-new", 60_000, 5_000);
    spec[field] = json!("PLACEHOLDER");
    serde_json::to_string(&spec)
        .expect("spec")
        .replace("\"PLACEHOLDER\"", value)
        .into_bytes()
}

fn public_catalogue() -> Vec<Entry> {
    use Listener::Public;
    let post_bid =
        |what, token, status, code| entry(what, Public, "POST", BIDS, token, status, code);
    let mut huge_body = bid_with_amount("1010000").into_bytes();
    huge_body.extend(std::iter::repeat_n(b' ', 70 * 1024));
    let long_request_id = format!(
        r#"{{"amount": 1010000, "request_id": "{}"}}"#,
        "r".repeat(60_000)
    );
    vec![
        post_bid("malformed JSON", Token::Bidder, 400, "invalid_json")
            .json(&b"{\"amount\": 1,"[..]),
        post_bid("not JSON at all", Token::Bidder, 400, "invalid_json").json(&b"amount=1"[..]),
        post_bid(
            "an array nested 5 000 deep",
            Token::Bidder,
            422,
            "invalid_request",
        )
        .json("[".repeat(5_000)),
        post_bid(
            "a JSON array, not an object",
            Token::Bidder,
            422,
            "invalid_request",
        )
        .json(&b"[1010000, \"r-1\"]"[..]),
        post_bid("amount as a string", Token::Bidder, 422, "invalid_request")
            .json(bid_with_amount("\"1010000\"")),
        post_bid(
            "amount overflowing u64",
            Token::Bidder,
            422,
            "invalid_request",
        )
        .json(bid_with_amount("18446744073709551616")),
        post_bid("amount of 10^30", Token::Bidder, 422, "invalid_request")
            .json(bid_with_amount("1000000000000000000000000000000")),
        post_bid("negative amount", Token::Bidder, 422, "invalid_request")
            .json(bid_with_amount("-1010000")),
        post_bid("i64::MIN amount", Token::Bidder, 422, "invalid_request")
            .json(bid_with_amount("-9223372036854775808")),
        post_bid("float amount", Token::Bidder, 422, "invalid_request")
            .json(bid_with_amount("1010000.5")),
        post_bid(
            "float amount with exponent",
            Token::Bidder,
            422,
            "invalid_request",
        )
        .json(bid_with_amount("1.01e6")),
        post_bid("amount null", Token::Bidder, 422, "invalid_request")
            .json(bid_with_amount("null")),
        post_bid("missing request_id", Token::Bidder, 422, "invalid_request")
            .json(&b"{\"amount\": 1010000}"[..]),
        post_bid("unknown field", Token::Bidder, 422, "invalid_request")
            .json(&br#"{"amount": 1010000, "request_id": "r-1", "bidder_id": "alice"}"#[..]),
        post_bid("duplicate field", Token::Bidder, 422, "invalid_request")
            .json(&br#"{"amount": 1, "amount": 1010000, "request_id": "r-1"}"#[..]),
        post_bid(
            "request_id of 60 000 characters",
            Token::Bidder,
            422,
            "invalid_request",
        )
        .json(long_request_id),
        post_bid(
            "request_id with a NUL",
            Token::Bidder,
            422,
            "invalid_request",
        )
        .json(&br#"{"amount": 1010000, "request_id": "r\u0000"}"#[..]),
        post_bid(
            "request_id of bad UTF-8",
            Token::Bidder,
            400,
            "invalid_json",
        )
        .json(&b"{\"amount\": 1010000, \"request_id\": \"\xff\xfe\"}"[..]),
        post_bid("lone surrogate escape", Token::Bidder, 400, "invalid_json")
            .json(&br#"{"amount": 1010000, "request_id": "\ud800"}"#[..]),
        post_bid("body over 64 KiB", Token::Bidder, 413, "payload_too_large").json(huge_body),
        post_bid(
            "text/plain body",
            Token::Bidder,
            415,
            "unsupported_media_type",
        )
        .typed("text/plain", bid_with_amount("1010000")),
        post_bid("form body", Token::Bidder, 415, "unsupported_media_type").typed(
            "application/x-www-form-urlencoded",
            &b"amount=1010000&request_id=r-1"[..],
        ),
        post_bid(
            "no content type",
            Token::Bidder,
            415,
            "unsupported_media_type",
        ),
        post_bid("no token", Token::None, 401, "unauthenticated").json(bid_with_amount("1010000")),
        post_bid("garbage token", Token::Garbage, 401, "unauthenticated")
            .json(bid_with_amount("1010000")),
        post_bid("expired session", Token::Expired, 401, "unauthenticated")
            .json(bid_with_amount("1010000")),
        post_bid("the admin token", Token::Admin, 401, "unauthenticated")
            .json(bid_with_amount("1010000")),
        post_bid(
            "Basic credentials",
            Token::Header(b"Basic YWxpY2U6c2VjcmV0"),
            401,
            "unauthenticated",
        )
        .json(bid_with_amount("1010000")),
        post_bid(
            "token of 4 KiB",
            Token::Header(&[b'a'; 4096]),
            401,
            "unauthenticated",
        )
        .json(bid_with_amount("1010000")),
        post_bid(
            "token of bad UTF-8",
            Token::Header(b"Bearer \xff\xfe\xfd"),
            401,
            "unauthenticated",
        )
        .json(bid_with_amount("1010000")),
        post_bid(
            "empty bearer",
            Token::Header(b"Bearer "),
            401,
            "unauthenticated",
        )
        .json(bid_with_amount("1010000")),
        entry(
            "open a session with bad UTF-8",
            Public,
            "POST",
            "/api/v1/sessions",
            Token::None,
            400,
            "invalid_json",
        )
        .json(&b"{\"bidder_id\": \"\xc3\x28\", \"secret\": \"x\"}"[..]),
        entry(
            "open a session with a secret of 60 000 characters",
            Public,
            "POST",
            "/api/v1/sessions",
            Token::None,
            401,
            "bad_credentials",
        )
        .json(format!(
            r#"{{"bidder_id": "alice", "secret": "{}"}}"#,
            "s".repeat(60_000)
        )),
        entry(
            "open a session for bidder ../../etc",
            Public,
            "POST",
            "/api/v1/sessions",
            Token::None,
            401,
            "bad_credentials",
        )
        .json(&br#"{"bidder_id": "../../etc", "secret": "secret-alice"}"#[..]),
        entry(
            "bid on an id of 8 000 characters",
            Public,
            "POST",
            format!("/api/v1/auctions/{}/bids", "x".repeat(8_000)),
            Token::Bidder,
            404,
            "auction_not_found",
        )
        .json(bid_with_amount("1010000")),
        entry(
            "bid on a percent-encoded NUL",
            Public,
            "POST",
            "/api/v1/auctions/lot-h%00/bids",
            Token::Bidder,
            404,
            "auction_not_found",
        )
        .json(bid_with_amount("1010000")),
        entry(
            "bid on ../",
            Public,
            "POST",
            "/api/v1/auctions/%2e%2e%2flot-h/bids",
            Token::Bidder,
            404,
            "auction_not_found",
        )
        .json(bid_with_amount("1010000")),
        entry(
            "auction id of 8 000 characters",
            Public,
            "GET",
            format!("/api/v1/auctions/{}", "x".repeat(8_000)),
            Token::None,
            404,
            "auction_not_found",
        ),
        entry(
            "auction id with a percent-encoded NUL",
            Public,
            "GET",
            "/api/v1/auctions/lot-h%00",
            Token::None,
            404,
            "auction_not_found",
        ),
        entry(
            "auction id of percent-encoded bad UTF-8",
            Public,
            "GET",
            "/api/v1/auctions/%ff%fe/bids",
            Token::None,
            404,
            "auction_not_found",
        ),
        entry(
            "auction id in Chinese",
            Public,
            "GET",
            "/api/v1/auctions/%E6%8B%8D%E5%8D%96",
            Token::None,
            404,
            "auction_not_found",
        ),
        entry(
            "auction id as raw UTF-8",
            Public,
            "GET",
            "/api/v1/auctions/\u{62cd}\u{5356}",
            Token::None,
            400,
            "",
        )
        .unparsable(),
        entry(
            "dot-dot segments",
            Public,
            "GET",
            "/api/v1/auctions/../../../etc/passwd",
            Token::None,
            404,
            "not_found",
        ),
        entry(
            "percent-encoded dot-dot",
            Public,
            "GET",
            "/api/v1/auctions/%2e%2e%2f%2e%2e%2fcontrol",
            Token::None,
            404,
            "auction_not_found",
        ),
        entry(
            "events with a junk Last-Event-ID",
            Public,
            "GET",
            "/api/v1/auctions/nope/events",
            Token::None,
            404,
            "auction_not_found",
        ),
        entry(
            "unknown path",
            Public,
            "GET",
            "/api/v2/auctions",
            Token::None,
            404,
            "not_found",
        ),
        entry(
            "a control path on the public listener",
            Public,
            "GET",
            "/control/v1/cluster",
            Token::Admin,
            404,
            "not_found",
        ),
        entry(
            "PUT an auction",
            Public,
            "PUT",
            "/api/v1/auctions/lot-h",
            Token::Bidder,
            405,
            "method_not_allowed",
        )
        .json(&b"{}"[..]),
        entry(
            "DELETE the auction list",
            Public,
            "DELETE",
            "/api/v1/auctions",
            Token::Bidder,
            405,
            "method_not_allowed",
        ),
        entry(
            "GET the session list",
            Public,
            "GET",
            "/api/v1/sessions",
            Token::Bidder,
            405,
            "method_not_allowed",
        ),
        entry(
            "PATCH bids",
            Public,
            "PATCH",
            BIDS,
            Token::Bidder,
            405,
            "method_not_allowed",
        )
        .json(bid_with_amount("1010000")),
        Entry {
            code: None,
            ..entry(
                "a raw NUL in the request line",
                Public,
                "GET",
                &b"/api/v1/auctions/lot\x00h"[..],
                Token::None,
                400,
                "",
            )
        },
        entry(
            "a request line of 40 KiB",
            Public,
            "GET",
            format!("/api/v1/auctions/{}", "x".repeat(40 * 1024)),
            Token::None,
            404,
            "auction_not_found",
        ),
    ]
}

fn control_catalogue() -> Vec<Entry> {
    use Listener::Control;
    let create =
        |what, status, code| entry(what, Control, "POST", AUCTIONS, Token::Admin, status, code);
    let with_reason = |reason: &str| format!(r#"{{"reason": "{reason}"}}"#).into_bytes();
    vec![
        entry("no token", Control, "GET", "/control/v1/cluster", Token::None, 401, "unauthorized"),
        entry("garbage token", Control, "GET", "/control/v1/cluster", Token::Garbage, 401, "unauthorized"),
        entry("a bidder token", Control, "GET", "/control/v1/cluster", Token::Bidder, 401, "unauthorized"),
        entry("an expired bidder token", Control, "GET", AUCTIONS, Token::Expired, 401, "unauthorized"),
        entry("the admin token as Basic", Control, "GET", "/control/v1/cluster", Token::Header(b"Basic aW50ZWdyYXRpb24="), 401, "unauthorized"),
        entry("the admin token with a NUL", Control, "GET", "/control/v1/cluster",
            Token::Header(b"Bearer integration-admin-token-0123456789\x00"), 400, "").unparsable(),
        entry("register with no token", Control, "POST", "/control/v1/bidders", Token::None, 401, "unauthorized")
            .json(&br#"{"bidder_id": "mallory", "name": "Mallory", "secret": "mallory-secret"}"#[..]),
        entry("register with a bidder token", Control, "POST", "/control/v1/bidders", Token::Bidder, 401, "unauthorized")
            .json(&br#"{"bidder_id": "mallory", "name": "Mallory", "secret": "mallory-secret"}"#[..]),
        entry("bidder id with a slash", Control, "POST", "/control/v1/bidders", Token::Admin, 422, "invalid_request")
            .json(&br#"{"bidder_id": "mal/lory", "name": "Mallory", "secret": "mallory-secret"}"#[..]),
        entry("bidder name with control characters", Control, "POST", "/control/v1/bidders", Token::Admin, 422, "invalid_request")
            .json(&br#"{"bidder_id": "mallory", "name": "Mal\u0000\u001blory", "secret": "mallory-secret"}"#[..]),
        entry("bidder name of 10 000 characters", Control, "POST", "/control/v1/bidders", Token::Admin, 422, "invalid_request")
            .json(format!(r#"{{"bidder_id": "mallory", "name": "{}", "secret": "mallory-secret"}}"#, "n".repeat(10_000))),
        entry("bidder secret of 1 000 characters", Control, "POST", "/control/v1/bidders", Token::Admin, 422, "invalid_request")
            .json(format!(r#"{{"bidder_id": "mallory", "name": "Mallory", "secret": "{}"}}"#, "s".repeat(1_000))),
        entry("bidder as a JSON string", Control, "POST", "/control/v1/bidders", Token::Admin, 422, "invalid_request")
            .json(&br#""mallory""#[..]),
        create("malformed spec", 400, "invalid_json").json(&b"{\"id\": \"lot-new\""[..]),
        create("start_price overflowing u64", 422, "invalid_request").json(spec_with("start_price", "18446744073709551616")),
        create("negative start_price", 422, "invalid_request").json(spec_with("start_price", "-1")),
        create("float increment", 422, "invalid_request").json(spec_with("increment", "0.5")),
        create("zero increment", 422, "invalid_request").json(spec_with("increment", "0")),
        create("listing closing at u64::MAX", 422, "invalid_request").json(spec_with("listing_closes_at_ms", "18446744073709551615")),
        create("countdown of 0", 422, "invalid_request").json(spec_with("countdown_ms", "0")),
        create("countdown as a string", 422, "invalid_request").json(spec_with("countdown_ms", "\"30s\"")),
        create("parcel as a string", 422, "invalid_request").json(spec_with("parcel", "\"big\"")),
        create("parcel nested past the parser's depth", 400, "invalid_json")
            .json(spec_with("parcel", &format!("{}{}", "[".repeat(1_000), "]".repeat(1_000)))),
        create("parcel over 16 KiB", 422, "invalid_request")
            .json(spec_with("parcel", &format!(r#"{{"notes": "{}"}}"#, "p".repeat(20_000)))),
        create("parcel over 64 KiB", 413, "payload_too_large")
            .json(spec_with("parcel", &format!(r#"{{"notes": "{}"}}"#, "p".repeat(70_000)))),
        create("title of 10 000 characters", 422, "invalid_request").json(spec_with("title", &format!("\"{}\"", "t".repeat(10_000)))),
        create("title of bad UTF-8", 400, "invalid_json").json(spec_with("title", "\"\u{0}\"").iter().map(|b| if *b == 0 { 0xff } else { *b }).collect::<Vec<u8>>()),
        create("id with a NUL", 422, "invalid_request").json(spec_with("id", r#""lot\u0000new""#)),
        create("id of 100 characters", 422, "invalid_request").json(spec_with("id", &format!("\"{}\"", "i".repeat(100)))),
        create("unknown field", 422, "invalid_request").json(spec_with("reserve", "1")),
        create("spec as text/plain", 415, "unsupported_media_type").typed("text/plain", spec_with("title", "\"x\"")),
        entry("qualify a junk bidder id", Control, "POST", "/control/v1/auctions/lot-h/qualifications", Token::Admin, 422, "invalid_request")
            .json(&br#"{"bidder_id": "../alice"}"#[..]),
        entry("qualify for an id of 8 000 characters", Control, "POST", format!("{AUCTIONS}/{}/qualifications", "x".repeat(8_000)), Token::Admin, 404, "auction_not_found")
            .json(&br#"{"bidder_id": "alice"}"#[..]),
        entry("increment overflowing u64", Control, "POST", "/control/v1/auctions/lot-h/increment", Token::Admin, 422, "invalid_request")
            .json(&br#"{"increment": 99999999999999999999999, "reason": "x"}"#[..]),
        entry("increment of 0", Control, "POST", "/control/v1/auctions/lot-h/increment", Token::Admin, 422, "invalid_request")
            .json(&br#"{"increment": 0, "reason": "x"}"#[..]),
        entry("suspend with a reason of 1 000 characters", Control, "POST", "/control/v1/auctions/lot-h/suspend", Token::Admin, 422, "invalid_request")
            .json(with_reason(&"r".repeat(1_000))),
        entry("terminate with a control character in the reason", Control, "POST", "/control/v1/auctions/lot-h/terminate", Token::Admin, 422, "invalid_request")
            .json(with_reason("court\\u0007order")),
        entry("terminate with a bidder token", Control, "POST", "/control/v1/auctions/lot-h/terminate", Token::Bidder, 401, "unauthorized")
            .json(with_reason("bidder says so")),
        entry("suspend a percent-encoded NUL id", Control, "POST", "/control/v1/auctions/%00/suspend", Token::Admin, 404, "auction_not_found")
            .json(with_reason("x")),
        entry("result of percent-encoded bad UTF-8", Control, "GET", "/control/v1/auctions/%c3%28/result", Token::Admin, 404, "auction_not_found"),
        entry("result of ../", Control, "GET", "/control/v1/auctions/%2e%2e/result", Token::Admin, 404, "auction_not_found"),
        entry("certificate of percent-encoded bad UTF-8", Control, "GET", "/control/v1/auctions/%c3%28/certificate", Token::Admin, 404, "auction_not_found"),
        entry("certificate of an open sale", Control, "GET", "/control/v1/auctions/lot-h/certificate", Token::Admin, 409, "conflict"),
        entry("certificate with a bidder token", Control, "GET", "/control/v1/auctions/lot-h/certificate", Token::Bidder, 401, "unauthorized"),
        entry("switchover to node -1", Control, "POST", "/control/v1/cluster/switchover", Token::Admin, 422, "invalid_request")
            .json(&br#"{"to_node_id": -1}"#[..]),
        entry("switchover to node 2^64", Control, "POST", "/control/v1/cluster/switchover", Token::Admin, 422, "invalid_request")
            .json(&br#"{"to_node_id": 18446744073709551616}"#[..]),
        entry("node add with node id 0", Control, "POST", "/control/v1/cluster/nodes", Token::Admin, 422, "invalid_request")
            .json(&br#"{"node_id": 0, "name": "n", "peer": "127.0.0.1:7999", "public_url": "http://127.0.0.1:1", "control_url": "http://127.0.0.1:2"}"#[..]),
        entry("node add with a host name for peer", Control, "POST", "/control/v1/cluster/nodes", Token::Admin, 422, "invalid_request")
            .json(&br#"{"node_id": 9, "name": "n", "peer": "example.com:7081", "public_url": "http://127.0.0.1:1", "control_url": "http://127.0.0.1:2"}"#[..]),
        entry("node add with port 0", Control, "POST", "/control/v1/cluster/nodes", Token::Admin, 422, "invalid_request")
            .json(&br#"{"node_id": 9, "name": "n", "peer": "127.0.0.1:0", "public_url": "http://127.0.0.1:1", "control_url": "http://127.0.0.1:2"}"#[..]),
        entry("node add with an ftp URL", Control, "POST", "/control/v1/cluster/nodes", Token::Admin, 422, "invalid_request")
            .json(&br#"{"node_id": 9, "name": "n", "peer": "127.0.0.1:7999", "public_url": "ftp://x", "control_url": "http://127.0.0.1:2"}"#[..]),
        entry("node add with a control character in the name", Control, "POST", "/control/v1/cluster/nodes", Token::Admin, 422, "invalid_request")
            .json(&br#"{"node_id": 9, "name": "n\u0000", "peer": "127.0.0.1:7999", "public_url": "http://127.0.0.1:1", "control_url": "http://127.0.0.1:2"}"#[..]),
        entry("node add with an unknown field", Control, "POST", "/control/v1/cluster/nodes", Token::Admin, 422, "invalid_request")
            .json(&br#"{"node_id": 9, "name": "n", "peer": "127.0.0.1:7999", "public_url": "http://127.0.0.1:1", "control_url": "http://127.0.0.1:2", "role": "voter"}"#[..]),
        entry("node add with a bidder token", Control, "POST", "/control/v1/cluster/nodes", Token::Bidder, 401, "unauthorized")
            .json(&br#"{"node_id": 9, "name": "n", "peer": "127.0.0.1:7999", "public_url": "http://127.0.0.1:1", "control_url": "http://127.0.0.1:2"}"#[..]),
        entry("node remove of node -1", Control, "DELETE", "/control/v1/cluster/nodes/-1", Token::Admin, 422, "invalid_request"),
        entry("node remove of node 2^64", Control, "DELETE", "/control/v1/cluster/nodes/18446744073709551616", Token::Admin, 422, "invalid_request"),
        entry("node remove of a node that is not a member", Control, "DELETE", "/control/v1/cluster/nodes/42", Token::Admin, 404, "not_found"),
        entry("node remove with force=maybe", Control, "DELETE", "/control/v1/cluster/nodes/42?force=maybe", Token::Admin, 422, "invalid_request"),
        entry("node remove with an unknown query field", Control, "DELETE", "/control/v1/cluster/nodes/42?quick=true", Token::Admin, 422, "invalid_request"),
        entry("node add with voter as a string", Control, "POST", "/control/v1/cluster/nodes", Token::Admin, 422, "invalid_request")
            .json(&br#"{"node_id": 9, "name": "n", "peer": "127.0.0.1:7999", "public_url": "http://127.0.0.1:1", "control_url": "http://127.0.0.1:2", "voter": "yes"}"#[..]),
        entry("cluster actors with a bidder token", Control, "GET", "/control/v1/cluster/actors", Token::Bidder, 401, "unauthorized"),
        entry("cluster actors without a token", Control, "GET", "/control/v1/cluster/actors", Token::None, 401, "unauthorized"),
        entry("node remove of the node asked", Control, "DELETE", "/control/v1/cluster/nodes/1", Token::Admin, 409, "conflict"),
        entry("backup with a bidder token", Control, "GET", "/control/v1/backup", Token::Bidder, 401, "unauthorized"),
        entry("POST a backup", Control, "POST", "/control/v1/backup", Token::Admin, 405, "method_not_allowed")
            .json(&b"{}"[..]),
        entry("a public path on the control listener", Control, "GET", "/api/v1/auctions", Token::Admin, 404, "not_found"),
        entry("DELETE the auctions", Control, "DELETE", AUCTIONS, Token::Admin, 405, "method_not_allowed"),
        entry("GET the bidders", Control, "GET", "/control/v1/bidders", Token::Admin, 405, "method_not_allowed"),
        entry("PUT the cluster", Control, "PUT", "/control/v1/cluster", Token::Admin, 405, "method_not_allowed")
            .json(&b"{}"[..]),
    ]
}

/// The routes of the version 1.1 sale rules, on both listeners. `lot-h` takes none of
/// them (no deposit, no cap, no signed bids), so a well-formed request is refused by the
/// rules and changes nothing either.
#[rustfmt::skip]
fn sale_rules_catalogue() -> Vec<Entry> {
    use Listener::{Control, Public};
    const QUOTES: &str = "/api/v1/auctions/lot-h/sealed-quotes";
    const PROXY: &str = "/api/v1/auctions/lot-h/proxy";
    const DEPOSITS: &str = "/control/v1/auctions/lot-h/deposits";
    const KEYS: &str = "/control/v1/bidders/alice/keys";
    let long_signature = format!(r#"{{"amount": 1010000, "request_id": "q-1", "signature": "{}"}}"#, "A".repeat(10_000));
    vec![
        entry("quote: malformed JSON", Public, "POST", QUOTES, Token::Bidder, 400, "invalid_json").json(&b"{\"amount\": 1,"[..]),
        entry("quote: amount as a string", Public, "POST", QUOTES, Token::Bidder, 422, "invalid_request").json(&br#"{"amount": "1", "request_id": "q-1"}"#[..]),
        entry("quote: amount overflowing u64", Public, "POST", QUOTES, Token::Bidder, 422, "invalid_request").json(&br#"{"amount": 18446744073709551616, "request_id": "q-1"}"#[..]),
        entry("quote: negative amount", Public, "POST", QUOTES, Token::Bidder, 422, "invalid_request").json(&br#"{"amount": -5, "request_id": "q-1"}"#[..]),
        entry("quote: unknown field", Public, "POST", QUOTES, Token::Bidder, 422, "invalid_request").json(&br#"{"amount": 1010000, "request_id": "q-1", "bidder_id": "bob"}"#[..]),
        entry("quote: a signature of 10 000 characters", Public, "POST", QUOTES, Token::Bidder, 422, "invalid_request").json(long_signature),
        entry("quote: no token", Public, "POST", QUOTES, Token::None, 401, "unauthenticated").json(&br#"{"amount": 1010000, "request_id": "q-1"}"#[..]),
        entry("quote: outside a sealed-bid window", Public, "POST", QUOTES, Token::Bidder, 409, "auction_not_open").json(&br#"{"amount": 1010000, "request_id": "q-1"}"#[..]),
        entry("quote: a signature that is not base64", Public, "POST", QUOTES, Token::Bidder, 401, "bad_signature").json(&br#"{"amount": 1010000, "request_id": "q-1", "signature": "!!"}"#[..]),
        entry("proxy: maximum of 0", Public, "POST", PROXY, Token::Bidder, 422, "invalid_request").json(&br#"{"max_amount": 0, "request_id": "p-1"}"#[..]),
        entry("proxy: float maximum", Public, "POST", PROXY, Token::Bidder, 422, "invalid_request").json(&br#"{"max_amount": 1.5, "request_id": "p-1"}"#[..]),
        entry("proxy: junk request_id", Public, "POST", PROXY, Token::Bidder, 422, "invalid_request").json(&br#"{"max_amount": 2000000, "request_id": "../p"}"#[..]),
        entry("proxy: a signature under no key of the bidder", Public, "POST", PROXY, Token::Bidder, 401, "bad_signature")
            .json(format!(r#"{{"max_amount": 2000000, "request_id": "p-1", "signature": "{}"}}"#, "A".repeat(88))),
        entry("proxy: expired token", Public, "POST", PROXY, Token::Expired, 401, "unauthenticated").json(&br#"{"max_amount": 2000000, "request_id": "p-1"}"#[..]),
        entry("proxy: withdraw with a garbage token", Public, "DELETE", PROXY, Token::Garbage, 401, "unauthenticated"),
        entry("proxy: PUT", Public, "PUT", PROXY, Token::Bidder, 405, "method_not_allowed").json(&b"{}"[..]),
        entry("bid: both amount and secondary_amount", Public, "POST", BIDS, Token::Bidder, 422, "invalid_request")
            .json(&br#"{"amount": 1010000, "secondary_amount": 5, "request_id": "r-9"}"#[..]),
        entry("bid: neither amount nor secondary_amount", Public, "POST", BIDS, Token::Bidder, 422, "invalid_request").json(&br#"{"request_id": "r-9"}"#[..]),
        entry("bid: secondary_amount outside secondary bidding", Public, "POST", BIDS, Token::Bidder, 409, "auction_not_open").json(&br#"{"secondary_amount": 5, "request_id": "r-9"}"#[..]),
        entry("acceptance: no token", Public, "POST", "/api/v1/auctions/lot-h/acceptance", Token::None, 401, "unauthenticated"),
        entry("acceptance: by a bidder who did not win", Public, "POST", "/api/v1/auctions/lot-h/acceptance", Token::Bidder, 403, "not_winner"),
        entry("receipt key: POST", Public, "POST", "/api/v1/receipt-key", Token::None, 405, "method_not_allowed").json(&b"{}"[..]),
        entry("deposit: negative amount", Control, "POST", DEPOSITS, Token::Admin, 422, "invalid_request").json(&br#"{"bidder_id": "alice", "amount": -1, "reference": "bank-1"}"#[..]),
        entry("deposit: amount overflowing u64", Control, "POST", DEPOSITS, Token::Admin, 422, "invalid_request").json(&br#"{"bidder_id": "alice", "amount": 18446744073709551616, "reference": "bank-1"}"#[..]),
        entry("deposit: a control character in the reference", Control, "POST", DEPOSITS, Token::Admin, 422, "invalid_request").json(&br#"{"bidder_id": "alice", "amount": 1, "reference": "bank\u0007"}"#[..]),
        entry("deposit: a reference of 10 000 characters", Control, "POST", DEPOSITS, Token::Admin, 422, "invalid_request")
            .json(format!(r#"{{"bidder_id": "alice", "amount": 1, "reference": "{}"}}"#, "b".repeat(10_000))),
        entry("deposit: missing reference", Control, "POST", DEPOSITS, Token::Admin, 422, "invalid_request").json(&br#"{"bidder_id": "alice", "amount": 1}"#[..]),
        entry("deposit: a bidder token", Control, "POST", DEPOSITS, Token::Bidder, 401, "unauthorized").json(&br#"{"bidder_id": "alice", "amount": 1, "reference": "bank-1"}"#[..]),
        entry("deposit: in an unknown auction", Control, "POST", "/control/v1/auctions/nope/deposits", Token::Admin, 404, "auction_not_found").json(&br#"{"bidder_id": "alice", "amount": 1, "reference": "bank-1"}"#[..]),
        entry("key: unknown algorithm", Control, "POST", KEYS, Token::Admin, 422, "invalid_key").json(&br#"{"algorithm": "rsa", "public_key": "AAAA"}"#[..]),
        entry("key: not base64", Control, "POST", KEYS, Token::Admin, 422, "invalid_key").json(&br#"{"algorithm": "ed25519", "public_key": "*not*"}"#[..]),
        entry("key: 31 bytes", Control, "POST", KEYS, Token::Admin, 422, "invalid_key").json(&br#"{"algorithm": "ed25519", "public_key": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"}"#[..]),
        entry("key: of an unknown bidder", Control, "POST", "/control/v1/bidders/nobody/keys", Token::Admin, 404, "bidder_not_found")
            .json(&br#"{"algorithm": "ed25519", "public_key": "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik="}"#[..]),
        entry("key: a junk bidder id", Control, "POST", "/control/v1/bidders/..%2fx/keys", Token::Admin, 404, "bidder_not_found")
            .json(&br#"{"algorithm": "ed25519", "public_key": "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik="}"#[..]),
        entry("key: unknown field", Control, "POST", KEYS, Token::Admin, 422, "invalid_request").json(&br#"{"algorithm": "ed25519", "public_key": "AAAA", "owner": "x"}"#[..]),
        entry("default: of an auction that is not lapsed", Control, "POST", "/control/v1/auctions/lot-h/default", Token::Admin, 409, "conflict").json(&br#"{"reason": "the winner did not pay"}"#[..]),
        entry("default: a reason with a control character", Control, "POST", "/control/v1/auctions/lot-h/default", Token::Admin, 422, "invalid_request").json(&br#"{"reason": "x\u0001"}"#[..]),
    ]
}

/// What must not change: every auction as operators see it (clock fields left out) and
/// every bid with its hash chain.
fn state_of(node: &Node) -> Value {
    let (status, mut auctions) = node.control("GET", AUCTIONS, None);
    assert_eq!(status, 200, "{auctions}");
    for auction in auctions.as_array_mut().expect("auction list") {
        auction
            .as_object_mut()
            .expect("auction")
            .remove("server_time_ms");
    }
    let (status, result) = node.control("GET", "/control/v1/auctions/lot-h/result", None);
    assert_eq!(status, 200, "{result}");
    json!({"auctions": auctions, "result": result})
}

#[test]
fn hostile_requests_get_their_problem_and_change_nothing() {
    let dir = tempfile::Builder::new()
        .prefix("hostile")
        .tempdir()
        .expect("temp dir");
    let ports = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let mut node = Node::configure(dir.path(), 1, ports, "\n[sessions]\nttl_ms = 1000\n");
    node.spawn();

    node.create_auction(auction_spec("lot-h", 600_000, 60_000));
    for bidder in ["alice", "bob"] {
        node.register_bidder(bidder);
        node.qualify("lot-h", bidder);
    }
    let expired = node.login("bob");
    let alice = node.login("alice");
    assert_eq!(node.bid(&alice, "lot-h", 1_000_000, "a-1").0, 201);
    std::thread::sleep(Duration::from_millis(1_100));
    let before = state_of(&node);

    let mut failures = Vec::new();
    let catalogues = [
        public_catalogue(),
        control_catalogue(),
        sale_rules_catalogue(),
    ];
    let entries: usize = catalogues.iter().map(Vec::len).sum();
    // Sessions live 1 s here: each catalogue gets a fresh one, so that a slow machine
    // does not turn its live-session entries into expired ones.
    for catalogue in &catalogues {
        let tokens = Tokens {
            bidder: node.login("alice"),
            expired: expired.clone(),
        };
        for entry in catalogue {
            let base_url = match entry.listener {
                Listener::Public => &node.public_url,
                Listener::Control => &node.control_url,
            };
            let answer = send_raw(base_url, &request_bytes(entry, &tokens));
            let problem: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            let got = (answer.status, problem["code"].as_str().map(str::to_string));
            let wanted = (entry.status, entry.code.map(str::to_string));
            let problem_ok = entry.code.is_none()
                || (answer.header("content-type") == Some("application/problem+json")
                    && problem["status"] == entry.status);
            let status_ok = if entry.code.is_none() {
                got.0 == wanted.0
            } else {
                got == wanted
            };
            if !(status_ok && problem_ok) {
                failures.push(format!(
                    "{:?} {} ({}): wanted {wanted:?}, got {got:?} {:?} {}",
                    entry.listener,
                    entry.method,
                    entry.what,
                    answer.header("content-type"),
                    String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
                ));
            }
            if entry.status == 405 {
                assert!(answer.header("allow").is_some(), "{}: no Allow", entry.what);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {entries} hostile requests were answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );

    assert_eq!(state_of(&node), before, "the catalogue changed the state");
    // Nothing the catalogue tried to register was registered.
    node.register_bidder("mallory");
    // And the node still serves: a fresh session bids, the admin token with a lower-case
    // scheme works.
    let bob = node.login("bob");
    let (status, receipt) = node.bid(&bob, "lot-h", 1_010_000, "b-1");
    assert_eq!(status, 201, "{receipt}");
    let cluster = send_raw(
        &node.control_url,
        format!(
            "GET /control/v1/cluster HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Authorization: bearer {ADMIN_TOKEN}\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(cluster.status, 200);
}

//! The operator dashboard on the control listener of one real `gavel serve` process:
//! the page and every asset it references are served by the node itself with the right
//! content types and `Content-Security-Policy: default-src 'self'`, nothing points
//! outside the cluster, and the stats endpoint the live charts sample is behind the
//! admin token and moves when a bid is placed.

use gavel_testkit as common;

use std::collections::BTreeSet;

use common::{auction_spec, request, Node, ADMIN_TOKEN};
use serde_json::Value;

fn node(name: &str) -> (tempfile::TempDir, Node) {
    let dir = tempfile::Builder::new()
        .prefix(name)
        .tempdir()
        .expect("temp dir");
    let node = Node::start(dir.path());
    (dir, node)
}

/// A plain GET without a token: status, content type, CSP header and body text.
struct Fetched {
    status: u16,
    content_type: String,
    content_security_policy: String,
    body: String,
}

fn fetch(url: &str) -> Fetched {
    let response = match ureq::get(url).call() {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("GET {url}: {error}"),
    };
    Fetched {
        status: response.status(),
        content_type: response.header("Content-Type").unwrap_or("").to_string(),
        content_security_policy: response
            .header("Content-Security-Policy")
            .unwrap_or("")
            .to_string(),
        body: response.into_string().unwrap_or_default(),
    }
}

/// The values of every `attribute="..."` in an HTML text.
fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let marker = format!("{attribute}=\"");
    html.match_indices(&marker)
        .filter_map(|(start, _)| {
            let rest = &html[start + marker.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

/// The module paths a script imports (`from './x.js'`), resolved against its folder.
fn imported_paths(script: &str, folder: &str) -> Vec<String> {
    script
        .match_indices("from '")
        .filter_map(|(start, _)| {
            let rest = &script[start + "from '".len()..];
            let relative = &rest[..rest.find('\'')?];
            Some(match relative.strip_prefix("./") {
                Some(file_name) => format!("{folder}{file_name}"),
                None => relative.to_string(),
            })
        })
        .collect()
}

fn expected_content_type(path: &str) -> &'static str {
    if path.ends_with(".js") {
        "text/javascript"
    } else if path.ends_with(".css") {
        "text/css"
    } else {
        panic!("unexpected asset {path}")
    }
}

fn assert_nothing_from_outside(path: &str, text: &str) {
    for outside in [
        "http://",
        "https://",
        "src=\"//",
        "href=\"//",
        "@import",
        "url(",
    ] {
        assert!(
            !text.contains(outside),
            "{path} refers to something outside the node: {outside}"
        );
    }
}

#[test]
fn dashboard_page_and_assets_are_served_locally_with_a_content_security_policy() {
    let (_dir, node) = node("dashboard-page");

    let page = fetch(&format!("{}/", node.control_url));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(
        page.content_security_policy.contains("default-src 'self'"),
        "CSP: {:?}",
        page.content_security_policy
    );
    assert!(page.body.contains("Gavel"), "{}", page.body);
    assert_nothing_from_outside("/", &page.body);

    let mut referenced: Vec<String> = attribute_values(&page.body, "src");
    referenced.extend(attribute_values(&page.body, "href"));
    // A link to the listener's other page (the printable result) is served here too.
    let (pages, referenced): (Vec<String>, Vec<String>) = referenced
        .into_iter()
        .partition(|path| path == "/certificate");
    for path in &pages {
        let linked = fetch(&format!("{}{path}", node.control_url));
        assert_eq!(linked.status, 200, "{path}");
        assert!(
            linked
                .content_security_policy
                .contains("default-src 'self'"),
            "{path}"
        );
        assert_nothing_from_outside(path, &linked.body);
    }
    assert!(!referenced.is_empty(), "the page references no assets");
    for path in &referenced {
        assert!(
            path.starts_with("/assets/dashboard/"),
            "the page references {path}, not a local dashboard asset"
        );
    }

    // Follow the module imports too: every script the browser would load.
    let mut to_fetch = referenced;
    let mut fetched = BTreeSet::new();
    while let Some(path) = to_fetch.pop() {
        if !fetched.insert(path.clone()) {
            continue;
        }
        let asset = fetch(&format!("{}{}", node.control_url, path));
        assert_eq!(asset.status, 200, "{path}: {}", asset.body);
        assert!(
            asset.content_type.starts_with(expected_content_type(&path)),
            "{path}: content type {}",
            asset.content_type
        );
        assert!(
            asset.content_security_policy.contains("default-src 'self'"),
            "{path}: CSP {:?}",
            asset.content_security_policy
        );
        assert_nothing_from_outside(&path, &asset.body);
        if path.ends_with(".js") {
            for imported in imported_paths(&asset.body, "/assets/dashboard/") {
                assert!(
                    imported.starts_with("/assets/dashboard/"),
                    "{path} imports {imported}"
                );
                to_fetch.push(imported);
            }
        }
    }
    for expected in [
        "/assets/dashboard/dashboard.js",
        "/assets/dashboard/dashboard.css",
        "/assets/dashboard/charts.js",
    ] {
        assert!(fetched.contains(expected), "{expected} never referenced");
    }

    let missing = fetch(&format!("{}/assets/dashboard/missing.js", node.control_url));
    assert_eq!(missing.status, 404);
    // The bidders' listener does not serve the operators' page or its scripts.
    let public_page = fetch(&format!("{}/", node.public_url));
    assert!(!public_page.body.contains("/assets/dashboard/"));
    let public_script = fetch(&format!(
        "{}/assets/dashboard/dashboard.js",
        node.public_url
    ));
    assert_eq!(public_script.status, 404);
}

fn stats(node: &Node) -> Value {
    let (status, body) = node.control("GET", "/control/v1/stats", None);
    assert_eq!(status, 200, "{body}");
    body
}

fn figure(stats: &Value, pointer: &str) -> u64 {
    stats
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} missing in {stats}"))
}

#[test]
fn stats_need_the_admin_token_and_move_when_a_bid_is_placed() {
    let (_dir, node) = node("dashboard-stats");
    let url = format!("{}/control/v1/stats", node.control_url);

    let (status, problem) = request("GET", &url, None, None);
    assert_eq!(status, 401, "{problem}");
    assert_eq!(problem["code"], "unauthorized");
    let (status, _) = request("GET", &url, Some("not-the-admin-token"), None);
    assert_eq!(status, 401);
    let (status, _) = request("GET", &url, Some(ADMIN_TOKEN), None);
    assert_eq!(status, 200);

    node.create_auction(auction_spec("dash-1", 60_000, 10_000));
    node.register_bidder("alice");
    node.qualify("dash-1", "alice");
    let token = node.login("alice");

    let before = stats(&node);
    assert_eq!(before["node_id"], 1);
    assert_eq!(before["is_leader"], true);
    assert!(before["commit_latency"]["buckets"]
        .as_array()
        .is_some_and(|buckets| !buckets.is_empty()));

    let (status, receipt) = node.bid(&token, "dash-1", 1_000_000, "dash-bid-1");
    assert_eq!(status, 201, "{receipt}");
    let (status, refusal) = node.bid(&token, "dash-1", 1_000_001, "dash-bid-2");
    assert_eq!(status, 409, "{refusal}");

    let after = stats(&node);
    assert_eq!(
        figure(&after, "/bids_accepted_total"),
        figure(&before, "/bids_accepted_total") + 1
    );
    assert_eq!(
        figure(&after, "/bids_recorded"),
        figure(&before, "/bids_recorded") + 1
    );
    let refused_code = refusal["code"].as_str().expect("refusal code");
    assert_eq!(
        figure(&after, &format!("/bids_rejected_total/{refused_code}")),
        1,
        "{after}"
    );
    assert!(
        figure(&after, "/commit_latency/count") >= figure(&before, "/commit_latency/count") + 2,
        "{before} -> {after}"
    );
    assert!(
        after["commit_latency"]["sum_seconds"].as_f64()
            > before["commit_latency"]["sum_seconds"].as_f64()
    );
    assert!(figure(&after, "/commands_total/ok") > figure(&before, "/commands_total/ok"));
    assert!(figure(&after, "/server_time_ms") >= figure(&before, "/server_time_ms"));
    assert_eq!(figure(&after, "/auctions_open"), 1);
}

/// What the sale panel reads of the 1.1 rules: the control view counts proxy maximums
/// (never their amounts) and says whether signed bids are required, as the public view does.
#[test]
fn the_control_view_counts_proxies_without_amounts_and_names_the_signature_rule() {
    let (_dir, node) = node("dashboard-rules");
    let mut spec = auction_spec("dash-proxies", 60_000, 60_000);
    spec["require_signed_bids"] = serde_json::json!(false);
    node.create_auction(spec);
    let mut signed = auction_spec("dash-signed", 60_000, 60_000);
    signed["require_signed_bids"] = serde_json::json!(true);
    node.create_auction(signed);
    for bidder in ["alice", "bob"] {
        node.register_bidder(bidder);
        node.qualify("dash-proxies", bidder);
    }
    let control_view = |id: &str| {
        let (status, list) = node.control("GET", "/control/v1/auctions", None);
        assert_eq!(status, 200, "{list}");
        list.as_array()
            .and_then(|auctions| auctions.iter().find(|auction| auction["id"] == id).cloned())
            .expect("the auction is listed")
    };
    let view = control_view("dash-proxies");
    assert_eq!(view["proxies_count"], 0, "{view}");

    // Off the increment grid, so no bid a proxy places carries either amount.
    const MAXIMA: [u64; 2] = [1_075_000, 1_095_000];
    for (bidder, maximum) in [("alice", MAXIMA[0]), ("bob", MAXIMA[1])] {
        let token = node.login(bidder);
        let (status, answer) = node.public(
            "POST",
            "/api/v1/auctions/dash-proxies/proxy",
            Some(&token),
            Some(
                serde_json::json!({"max_amount": maximum, "request_id": format!("{bidder}-proxy")}),
            ),
        );
        assert_eq!(status, 201, "{answer}");
    }
    let view = control_view("dash-proxies");
    assert_eq!(view["proxies_count"], 2, "{view}");
    for maximum in MAXIMA {
        assert!(!view.to_string().contains(&maximum.to_string()), "{view}");
    }
    assert_eq!(view["require_signed_bids"], false, "{view}");

    assert_eq!(control_view("dash-signed")["require_signed_bids"], true);
    assert_eq!(node.auction("dash-signed")["require_signed_bids"], true);
    assert!(node.auction("dash-signed").get("proxies_count").is_none());
}

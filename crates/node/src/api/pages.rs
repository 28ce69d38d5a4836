//! The bidder web page, served by the public listener of every node.
//!
//! `GET /` answers the page and `GET /assets/bidder/{file}` its scripts and style sheet;
//! `GET /hall` the bidding-hall screen (a public display of every live sale) and
//! `GET /assets/hall/{file}` its own. The files live in `src/api/assets/bidder/` and
//! `src/api/assets/hall/` and are compiled into the binary, so a node
//! serves the page with nothing loaded from outside the cluster (no CDN, no web fonts).
//!
//! The page talks only to the node that served it (same origin: no CORS, but for the event
//! stream on the node's events listener). It fails over
//! by navigating to another node's page and handing its session over in the URL fragment,
//! which never leaves the browser. To know where it may go, the page reads the public URLs
//! of the Raft membership, which this module writes into a `<meta name="gavel-nodes">`
//! tag; the Content-Security-Policy is `default-src 'self'` and lets the page's
//! connections (`connect-src`) reach only those same cluster nodes, which it probes for
//! liveness before it moves, and this node's events listener (`listen.events`,
//! `api::event_listener`), where both pages open their event streams when the node has
//! one: its origin is in `<meta name="gavel-events">`, and it lets pages of the same host
//! read its streams (CORS).

use actix_web::{http::header, web, HttpRequest, HttpResponse};

use super::AppState;

const INDEX_HTML: &str = include_str!("assets/bidder/index.html");
const BIDDER_JS: &str = include_str!("assets/bidder/bidder.js");
const CLUSTER_JS: &str = include_str!("assets/bidder/cluster.js");
const SIGNING_JS: &str = include_str!("assets/bidder/signing.js");
const RECEIPT_JS: &str = include_str!("assets/bidder/receipt.js");
const BIDDER_CSS: &str = include_str!("assets/bidder/bidder.css");
const I18N_JS: &str = include_str!("assets/bidder/i18n.js");
const TEXTS_JS: &str = include_str!("assets/bidder/texts.js");
const HALL_HTML: &str = include_str!("assets/hall/index.html");
const HALL_JS: &str = include_str!("assets/hall/hall.js");
const HALL_CSS: &str = include_str!("assets/hall/hall.css");

/// Where the node list goes in `index.html`.
const NODES_PLACEHOLDER: &str = "{{GAVEL_NODES}}";
/// Where the receipt keys go in `index.html` (what `GET /api/v1/receipt-key` lists: the
/// current public key, then the previous ones), so that checking a receipt costs the page
/// no request.
const RECEIPT_KEYS_PLACEHOLDER: &str = "{{GAVEL_RECEIPT_KEYS}}";
/// Where the events listener's origin goes in both pages' `<meta name="gavel-events">`
/// (empty when the node has none: the pages open their streams on their own origin).
const EVENTS_PLACEHOLDER: &str = "{{GAVEL_EVENTS}}";

/// Registers the page routes on the public listener.
pub fn public_pages(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(index))
        .route("/hall", web::get().to(hall))
        .route("/assets/bidder/{file}", web::get().to(asset))
        .route("/assets/hall/{file}", web::get().to(hall_asset));
}

/// The page, with the cluster's public URLs in its `<meta name="gavel-nodes">` tag, the
/// receipt keys in `<meta name="gavel-receipt-keys">` and the events listener's origin
/// in `<meta name="gavel-events">`.
async fn index(app: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let nodes = cluster_public_urls(&app);
    let events = events_origin(&app, &request);
    let mut keys = vec![app.receipt_key.public_key()];
    keys.extend(app.receipt_key.previous());
    let page = INDEX_HTML
        .replace(NODES_PLACEHOLDER, &escape_attribute(&nodes.join(" ")))
        .replace(RECEIPT_KEYS_PLACEHOLDER, &escape_attribute(&keys.join(" ")))
        .replace(
            EVENTS_PLACEHOLDER,
            &escape_attribute(events.as_deref().unwrap_or("")),
        );
    page_response("text/html; charset=utf-8", &connect_origins(nodes, events)).body(page)
}

/// The origin of this node's events listener as the page that `request` asked for
/// reaches it (its own host name, the listener's port), if the node has one.
fn events_origin(app: &AppState, request: &HttpRequest) -> Option<String> {
    let listener = app.events_listener?;
    let host = request.headers().get(header::HOST)?.to_str().ok()?;
    listener.origin_for(host)
}

/// Where a page may connect: the cluster's nodes, and this node's events listener.
fn connect_origins(mut nodes: Vec<String>, events: Option<String>) -> Vec<String> {
    nodes.extend(events);
    nodes
}

/// The page's scripts and style sheet; anything else is a 404.
async fn asset(app: web::Data<AppState>, file: web::Path<String>) -> HttpResponse {
    let (content_type, body) = match file.as_str() {
        "bidder.js" => ("text/javascript; charset=utf-8", BIDDER_JS),
        "cluster.js" => ("text/javascript; charset=utf-8", CLUSTER_JS),
        "signing.js" => ("text/javascript; charset=utf-8", SIGNING_JS),
        "receipt.js" => ("text/javascript; charset=utf-8", RECEIPT_JS),
        "bidder.css" => ("text/css; charset=utf-8", BIDDER_CSS),
        "i18n.js" => ("text/javascript; charset=utf-8", I18N_JS),
        "texts.js" => ("text/javascript; charset=utf-8", TEXTS_JS),
        _ => {
            return HttpResponse::NotFound()
                .content_type("text/plain; charset=utf-8")
                .body("no such asset\n")
        }
    };
    page_response(content_type, &cluster_public_urls(&app)).body(body)
}

/// The bidding-hall screen: every live sale for a public display (bidder numbers only).
async fn hall(app: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let events = events_origin(&app, &request);
    let page = HALL_HTML.replace(
        EVENTS_PLACEHOLDER,
        &escape_attribute(events.as_deref().unwrap_or("")),
    );
    let origins = connect_origins(cluster_public_urls(&app), events);
    page_response("text/html; charset=utf-8", &origins).body(page)
}

/// The hall screen's script and style sheet (it shares the bidder page's `cluster.js` and
/// `i18n.js`); anything else is a 404.
async fn hall_asset(app: web::Data<AppState>, file: web::Path<String>) -> HttpResponse {
    let (content_type, body) = match file.as_str() {
        "hall.js" => ("text/javascript; charset=utf-8", HALL_JS),
        "hall.css" => ("text/css; charset=utf-8", HALL_CSS),
        _ => {
            return HttpResponse::NotFound()
                .content_type("text/plain; charset=utf-8")
                .body("no such asset\n")
        }
    };
    page_response(content_type, &cluster_public_urls(&app)).body(body)
}

/// Headers shared by every page response: no caching (a node upgrade shows at once), no
/// content sniffing, no referrer, and the Content-Security-Policy.
fn page_response(content_type: &str, nodes: &[String]) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(nodes),
        ));
    response
}

/// `default-src 'self'`; connections may also reach the other cluster nodes (liveness
/// probes before a failover), and nothing may frame the page or change its base URL.
pub fn content_security_policy(nodes: &[String]) -> String {
    let mut connect = String::from("'self'");
    for origin in nodes {
        connect.push(' ');
        connect.push_str(origin);
    }
    format!(
        "default-src 'self'; connect-src {connect}; object-src 'none'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

/// The public URLs (as origins) of every member of the Raft membership, voters and
/// standbys, in node id order. Anything that is not a plain http(s) origin is left out,
/// since it goes into a header and a page.
fn cluster_public_urls(app: &AppState) -> Vec<String> {
    let metrics = app.raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let mut urls: Vec<String> = Vec::new();
    for (_, info) in membership.nodes() {
        if let Some(origin) = origin_of(&info.public_url) {
            if !urls.contains(&origin) {
                urls.push(origin);
            }
        }
    }
    urls
}

/// `scheme://host[:port]` of an http(s) URL without a path, or None.
fn origin_of(url: &str) -> Option<String> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))?;
    super::is_plain_authority(rest).then(|| trimmed.to_string())
}

fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_origins_are_kept() {
        assert_eq!(
            origin_of("http://127.0.0.1:8081/").as_deref(),
            Some("http://127.0.0.1:8081")
        );
        assert_eq!(
            origin_of("https://node-2.example:443").as_deref(),
            Some("https://node-2.example:443")
        );
        assert_eq!(origin_of("http://a/b"), None);
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("http://a'; script-src *"), None);
    }

    #[test]
    fn the_policy_lets_connections_reach_only_the_cluster() {
        let policy = content_security_policy(&["http://127.0.0.1:8082".to_string()]);
        assert!(policy.starts_with("default-src 'self'; connect-src 'self' http://127.0.0.1:8082;"));
    }

    #[test]
    fn every_asset_is_embedded_and_the_page_has_its_node_list_slot() {
        assert!(INDEX_HTML.contains(NODES_PLACEHOLDER));
        assert!(INDEX_HTML.contains(EVENTS_PLACEHOLDER) && HALL_HTML.contains(EVENTS_PLACEHOLDER));
        assert!(INDEX_HTML.contains("/assets/bidder/bidder.js"));
        assert!(INDEX_HTML.contains("/assets/bidder/bidder.css"));
        assert!(BIDDER_JS.contains("from './cluster.js'"));
        assert!(BIDDER_JS.contains("from './signing.js'"));
        assert!(BIDDER_JS.contains("from './texts.js'") && TEXTS_JS.contains("from './i18n.js'"));
        assert!(!CLUSTER_JS.is_empty() && !BIDDER_CSS.is_empty() && !SIGNING_JS.is_empty());
    }
}

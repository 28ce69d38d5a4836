//! The operator dashboard, served at `/` of the control listener.
//!
//! A single page of plain HTML, CSS and JavaScript, embedded in the binary with
//! `include_str!` so that nothing is fetched from outside the cluster (no CDN, no web
//! fonts, charts drawn by hand on `<canvas>`). It is in Simplified Chinese first and in
//! English on request: its texts in `texts.js`, the formats in the bidder page's `i18n.js`. The page itself is public; everything it
//! shows comes from the control API, which it calls with the admin token the operator
//! types in. Every asset is sent with `Content-Security-Policy: default-src 'self'`, so
//! the page can run only its own script and talk only to this node.
//!
//! `GET /control/v1/stats` is what the live charts sample every second: cumulative
//! counters and the commit latency histogram of this node, plus a few figures read from
//! the replicated state. The page turns the differences between two samples into rates
//! and latencies, so the node keeps no per-dashboard history.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use prometheus::core::{Collector, Metric};
use prometheus::IntCounterVec;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Operator;
use super::AppState;
use crate::actors::wall_clock_ms;

/// Only this node's own assets and API; never framed by another site.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; base-uri 'none'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("assets/dashboard/index.html");
const CERTIFICATE_HTML: &str = include_str!("assets/dashboard/certificate.html");

/// The page's scripts and stylesheet, served under `/assets/dashboard/`: file name,
/// content type, contents.
pub const ASSETS: [(&str, &str, &str); 10] = [
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dashboard/dashboard.js"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dashboard/common.js"),
    ),
    (
        "auctions.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dashboard/auctions.js"),
    ),
    (
        "sale.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dashboard/sale.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dashboard/charts.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("assets/dashboard/dashboard.css"),
    ),
    (
        "certificate.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dashboard/certificate.js"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/bidder/i18n.js"),
    ),
    (
        "texts.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dashboard/texts.js"),
    ),
    (
        "certificate.css",
        "text/css; charset=utf-8",
        include_str!("assets/dashboard/certificate.css"),
    ),
];

/// Registers the dashboard's page, its assets and the stats endpoint on the control
/// listener.
pub fn control_pages(config: &mut web::ServiceConfig) {
    config
        .route(
            "/",
            web::get().to(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/certificate",
            web::get().to(|| async { asset("text/html; charset=utf-8", CERTIFICATE_HTML) }),
        )
        .service(stats);
    for (file_name, content_type, body) in ASSETS {
        config.route(
            &format!("/assets/dashboard/{file_name}"),
            web::get().to(move || async move { asset(content_type, body) }),
        );
    }
}

/// One embedded asset with the headers every dashboard response carries.
fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// Cumulative figures of one node, sampled by the dashboard's charts. Counters only
/// grow while the process lives; a restart sets them back to zero.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatsView {
    pub node_id: u64,
    pub server_time_ms: u64,
    pub is_leader: bool,
    pub term: u64,
    pub last_applied_index: Option<u64>,
    /// Bids this node accepted from its own public listener (replays not counted).
    pub bids_accepted_total: u64,
    /// Bids this node refused, by problem `code`.
    pub bids_rejected_total: BTreeMap<String, u64>,
    /// Bids recorded in the replicated state, whichever node took them: the same on
    /// every node once applied.
    pub bids_recorded: u64,
    /// Commands this node proposed, by result (`ok`, `rejected`, `unavailable`).
    pub commands_total: BTreeMap<String, u64>,
    /// From proposal to applied answer. Observed where commands are proposed to Raft,
    /// that is on the leader.
    pub commit_latency: LatencyHistogram,
    pub auctions_open: u64,
    pub sessions_live: u64,
}

/// A Prometheus histogram as JSON: cumulative counts per upper bound.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LatencyHistogram {
    pub count: u64,
    pub sum_seconds: f64,
    pub buckets: Vec<LatencyBucket>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LatencyBucket {
    /// Upper bound of the bucket, in seconds.
    pub le_seconds: f64,
    /// Observations at or below `le_seconds` (cumulative).
    pub cumulative_count: u64,
}

/// The figures the dashboard's charts sample every second.
#[utoipa::path(tag = "control", responses(
    (status = 200, body = StatsView), (status = 401, description = "unauthorized", body = super::problem::Problem)),
    security(("admin" = [])))]
#[get("/control/v1/stats")]
pub(crate) async fn stats(app: web::Data<AppState>, _operator: Operator) -> web::Json<StatsView> {
    web::Json(stats_view(&app))
}

fn stats_view(app: &AppState) -> StatsView {
    let raft_metrics = app.raft.metrics().borrow().clone();
    let (bids_recorded, auctions_open, sessions_live) = {
        let state = app.state.read();
        let auctions = state.kernel.auctions.values();
        let (bids, open) = auctions.fold((0u64, 0u64), |(bids, open), auction| {
            (
                bids + auction.bids.len() as u64,
                open + u64::from(!auction.phase.is_closed()),
            )
        });
        (bids, open, state.kernel.sessions.len() as u64)
    };
    let metrics = &app.metrics;
    StatsView {
        node_id: app.node_id,
        server_time_ms: wall_clock_ms(),
        is_leader: raft_metrics.current_leader == Some(app.node_id),
        term: raft_metrics.current_term,
        last_applied_index: raft_metrics.last_applied.map(|log_id| log_id.index),
        bids_accepted_total: metrics.bids_accepted_total.get(),
        bids_rejected_total: counts_by_label(&metrics.bids_rejected_total),
        bids_recorded,
        commands_total: counts_by_label(&metrics.commands_total),
        commit_latency: latency_histogram(&metrics.commit_latency_seconds),
        auctions_open,
        sessions_live,
    }
}

/// The value of each series of a one-label counter, by label value. Read through
/// `collect` so that no empty series is created by looking.
fn counts_by_label(counters: &IntCounterVec) -> BTreeMap<String, u64> {
    counters
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .filter_map(|series| {
            let label = series.get_label().first()?.get_value().to_string();
            Some((label, series.get_counter().get_value() as u64))
        })
        .collect()
}

fn latency_histogram(histogram: &prometheus::Histogram) -> LatencyHistogram {
    let sample = histogram.metric();
    let sample = sample.get_histogram();
    LatencyHistogram {
        count: sample.get_sample_count(),
        sum_seconds: sample.get_sample_sum(),
        buckets: sample
            .get_bucket()
            .iter()
            .map(|bucket| LatencyBucket {
                le_seconds: bucket.get_upper_bound(),
                cumulative_count: bucket.get_cumulative_count(),
            })
            .collect(),
    }
}

//! Monitoring as shipped in `cluster/monitoring/`: the Prometheus alert rules pass
//! `promtool check rules` and their cases in `tests/monitoring/alerts_test.yml` pass
//! `promtool test rules`; every series the rules and the Grafana dashboard name is one a
//! real cluster's nodes export at `/metrics`, with the per-peer, Raft, janitor, stream,
//! disk and process figures there and plausible.
//!
//! promtool comes from Debian's `prometheus` package (.ci/run installs it); without it
//! the rules test fails, saying so.

use gavel_testkit as common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cluster::Cluster;
use common::{auction_spec, wait_until};

const RULES: &str = "cluster/monitoring/alerts.yml";
const RULE_TESTS: &str = "tests/monitoring/alerts_test.yml";
const DASHBOARD: &str = "cluster/monitoring/grafana-dashboard.json";

fn repository_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|error| panic!("{}: {error}", full.display()))
}

fn promtool(arguments: &[&str]) -> String {
    let output = Command::new("promtool")
        .args(arguments)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run promtool ({error}): install it with `apt-get install -y prometheus` (.ci/run does)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {arguments:?}:\n{text}");
    text
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let checked = promtool(&["check", "rules", RULES]);
    assert!(checked.contains("SUCCESS: 11 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", RULE_TESTS]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Every `gavel_…` name in `text`.
fn series_named(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(found) = text[at..].find("gavel_") {
        let start = at + found;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |length| start + length);
        if boundary {
            names.insert(text[start..end].to_string());
        }
        at = end;
    }
    names
}

/// The sample names of a Prometheus text exposition.
fn exported(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// The value of the first sample of `name` whose line contains `with`.
fn value(exposition: &str, name: &str, with: &str) -> Option<f64> {
    exposition
        .lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
        .find(|line| line.contains(with))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|number| number.parse().ok())
}

#[test]
fn every_series_of_the_rules_and_the_dashboard_is_exported_by_a_real_cluster() {
    let dir = common::temp_dir("monitoring");
    let cluster = Cluster::start(dir.path(), 3, 1);
    let leader = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let node = cluster.node(leader);
    node.create_auction(auction_spec("lot-m", 60_000, 60_000));
    node.register_bidder("ada");
    node.qualify("lot-m", "ada");
    let ada = node.login("ada");
    assert_eq!(node.bid(&ada, "lot-m", 1_000_000, "m-1").0, 201);
    assert_eq!(
        node.bid(&ada, "lot-m", 1_000, "m-2").0,
        409,
        "a refused bid, for the refusals' series"
    );
    let metrics_url = format!("{}/metrics", node.control_url);
    let scrape = || {
        ureq::get(&metrics_url)
            .call()
            .expect("GET /metrics")
            .into_string()
            .expect("text")
    };
    // The peers' round trips and the janitor's first sweep come within a few seconds.
    let mut exposition = String::new();
    let complete = wait_until(Duration::from_secs(20), || {
        exposition = scrape();
        ["gavel_peer_round_trip_ms", "gavel_peer_clock_offset_ms"]
            .iter()
            .all(|name| exported(&exposition).contains(*name))
            && value(&exposition, "gavel_janitor_sweeps_total", "")
                .is_some_and(|sweeps| sweeps >= 1.0)
    });
    assert!(
        complete,
        "the scrape never held every figure:\n{exposition}"
    );

    let names = exported(&exposition);
    let mut wanted = series_named(&repository_file(RULES));
    wanted.extend(series_named(&repository_file(DASHBOARD)));
    assert!(wanted.len() >= 25, "{wanted:?}");
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|name| !names.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "named by the rules or the dashboard but not exported: {missing:?}\n{exposition}"
    );

    // The figures are the cluster's: three voters, one standby, a leader, every peer up.
    assert_eq!(value(&exposition, "gavel_cluster_voters", ""), Some(3.0));
    assert_eq!(value(&exposition, "gavel_cluster_standbys", ""), Some(1.0));
    assert_eq!(value(&exposition, "gavel_raft_is_leader", ""), Some(1.0));
    assert_eq!(
        value(&exposition, "gavel_cluster_has_leader", ""),
        Some(1.0)
    );
    let peers_up = exposition
        .lines()
        .filter(|line| line.starts_with("gavel_peer_up{") && line.ends_with(" 1"))
        .count();
    assert_eq!(peers_up, 3, "{exposition}");
    assert!(
        value(&exposition, "gavel_raft_millis_since_quorum_ack", "").is_some_and(|ms| ms >= 0.0),
        "{exposition}"
    );
    assert!(value(&exposition, "gavel_raft_apply_lag", "").is_some_and(|lag| lag >= 0.0));
    assert!(value(&exposition, "gavel_disk_total_bytes", "").is_some_and(|bytes| bytes > 0.0));
    assert!(
        value(&exposition, "gavel_process_resident_memory_bytes", "")
            .is_some_and(|bytes| bytes > 1e6)
    );
    assert_eq!(
        value(&exposition, "gavel_bids_rejected_total", "code="),
        Some(1.0),
        "{exposition}"
    );

    // A follower knows the leader and leads nothing; its quorum age is -1.
    let follower = cluster
        .nodes
        .iter()
        .find(|other| other.control_url != node.control_url)
        .expect("a follower");
    let text = ureq::get(&format!("{}/metrics", follower.public_url))
        .call()
        .expect("GET")
        .into_string()
        .expect("text");
    assert_eq!(
        value(&text, "gavel_raft_is_leader", ""),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "gavel_raft_millis_since_quorum_ack", ""),
        Some(-1.0),
        "{text}"
    );

    // The dashboard is a Grafana dashboard whose every panel has queries.
    let dashboard: serde_json::Value =
        serde_json::from_str(&repository_file(DASHBOARD)).expect("JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(
            !targets.is_empty()
                && targets
                    .iter()
                    .all(|target| target["expr"].as_str().is_some_and(|expr| !expr.is_empty())),
            "{panel}"
        );
    }
}

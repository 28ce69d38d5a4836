//! A leader whose clock runs 2 s fast, on a real cluster (three voters and a standby on
//! loopback, `[faults] enabled = true` to offset one node's clock): it must stop stamping
//! at once, hand leadership over, say why (cluster view, metrics, log), never lead again
//! while its clock is off, and no sale may close early by its clock. Put right, it may
//! lead again.

use gavel_testkit as common;

use std::time::Duration;

use common::cluster::{try_control, Cluster};
use common::{now_ms, try_request, wait_until};
use serde_json::json;

const FAULTS: &str = "[faults]\nenabled = true\n";
const SKEW_MS: i64 = 2_000;
/// `cluster.max_clock_skew_ms`'s default.
const MAX_SKEW_MS: i64 = 50;

fn note(text: &str) {
    eprintln!("[clock skew] {text}");
}

fn set_offset(cluster: &Cluster, node: u64, offset_ms: i64) {
    let body = json!({"offset_ms": offset_ms});
    let (status, answer) =
        cluster
            .node(node)
            .control("POST", "/control/v1/faults/clock", Some(body));
    assert_eq!(status, 202, "{answer}");
}

/// The leader as the nodes other than `skewed` see it.
fn leader_seen_by_others(cluster: &Cluster, skewed: u64) -> Option<u64> {
    (1..=3)
        .filter(|id| *id != skewed)
        .find_map(|id| try_control(cluster.node(id), "/control/v1/cluster")?["leader_id"].as_u64())
}

#[test]
fn a_leader_whose_clock_runs_fast_hands_over_and_closes_no_sale_early() {
    let dir = tempfile::Builder::new()
        .prefix("clock-skew")
        .tempdir()
        .expect("temp dir");
    let cluster = Cluster::start_with(dir.path(), 3, 1, FAULTS);
    let skewed = cluster.leader(Duration::from_secs(10)).expect("a leader");
    let witness = (1..=3).find(|id| *id != skewed).expect("another voter");

    // A sale whose listing closes in 6 s, without bids: unsold at its close. Its failover
    // grace is short, so the handover's takeover leaves the close where it is.
    let closes_at_ms = now_ms() + 6_000;
    let spec = json!({
        "id": "lot-clock", "title": "Parcel on time", "parcel": {"area_m2": 800},
        "start_price": 1_000_000, "increment": 10_000,
        "listing_opens_at_ms": now_ms(), "listing_closes_at_ms": closes_at_ms,
        "countdown_ms": 60_000, "failover_grace_ms": 1_000
    });
    cluster.node(witness).create_auction(spec);

    note(&format!("leader {skewed}'s clock jumps {SKEW_MS} ms ahead"));
    set_offset(&cluster, skewed, SKEW_MS);
    // Commands keep coming through the skewed node: it stamps none of them.
    for index in 0..5 {
        cluster
            .node(skewed)
            .register_bidder(&format!("during-skew-{index}"));
    }

    let handed_over = wait_until(Duration::from_secs(10), || {
        leader_seen_by_others(&cluster, skewed).is_some_and(|leader| leader != skewed)
    });
    assert!(
        handed_over,
        "leadership left the skewed node: {}",
        cluster.node(skewed).log_tail()
    );

    let view = try_control(cluster.node(skewed), "/control/v1/cluster").expect("its view");
    let offset = view["clock"]["offset_to_median_ms"]
        .as_i64()
        .expect("an offset");
    assert!(
        (offset - SKEW_MS).abs() < 200,
        "measured offset {offset}: {view}"
    );
    let reason = view["clock"]["refuses_to_lead"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("max_clock_skew_ms"), "{view}");
    let metrics = ureq::get(&format!("{}/metrics", cluster.node(skewed).public_url))
        .call()
        .expect("metrics")
        .into_string()
        .expect("metrics text");
    assert!(
        metrics.contains("gavel_clock_refuses_to_lead 1"),
        "{metrics}"
    );
    assert!(cluster.node(skewed).log_text().contains("refuses to lead"));

    // The cluster's time, from the skewed node too, is the voters' time.
    let (status, time) = try_request(
        "GET",
        &format!("{}/api/v1/time", cluster.node(skewed).public_url),
        None,
        None,
    )
    .expect("time");
    assert_eq!(status, 200);
    let answered = time["server_time_ms"].as_u64().expect("a time") as i64;
    let error = answered - now_ms() as i64;
    assert!(
        error.abs() < 200,
        "the cluster's time is {error} ms off: {time}"
    );

    // The sale closes at its time, not 2 s early; the skewed node never leads meanwhile.
    let mut closed_seen_at_ms = None;
    let watched = wait_until(Duration::from_secs(15), || {
        assert_ne!(
            leader_seen_by_others(&cluster, skewed),
            Some(skewed),
            "led again"
        );
        let view = cluster.node(witness).auction("lot-clock");
        if view["phase"] == "unsold" {
            closed_seen_at_ms = Some(now_ms());
            return true;
        }
        false
    });
    assert!(
        watched,
        "the sale closed: {} / {}",
        cluster.node(witness).auction("lot-clock"),
        cluster.node(witness).log_tail()
    );
    let closed_seen_at_ms = closed_seen_at_ms.expect("seen closed");
    note(&format!(
        "closed {} ms after its listing close",
        closed_seen_at_ms as i64 - closes_at_ms as i64
    ));
    assert!(
        closed_seen_at_ms + MAX_SKEW_MS as u64 >= closes_at_ms,
        "the sale closed {} ms early",
        closes_at_ms - closed_seen_at_ms
    );

    // Put right, it may lead again: its refusal ends.
    set_offset(&cluster, skewed, 0);
    let cleared = wait_until(Duration::from_secs(10), || {
        try_control(cluster.node(skewed), "/control/v1/cluster")
            .is_some_and(|view| view["clock"]["refuses_to_lead"].is_null())
    });
    assert!(cleared, "{}", cluster.node(skewed).log_tail());

    // Bad input changes nothing.
    let (status, _) = cluster.node(skewed).control(
        "POST",
        "/control/v1/faults/clock",
        Some(json!({"offset_ms": 100_000_000_000i64})),
    );
    assert_eq!(status, 422);
}

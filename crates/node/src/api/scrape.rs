//! What each `/metrics` scrape reads afresh (`telemetry::ScrapeGauges`): the Raft log's
//! progress and membership, the cluster as the Supervisor sees it, the Janitor's report,
//! the open event streams and the data directory's file system. The actors are asked with
//! a bound, so a busy actor makes a scrape show its previous figures, never hang.

use std::time::Duration;

use super::AppState;
use crate::actors::janitor::{GetReport, JanitorReport};
use crate::actors::supervisor::{ClusterView, GetClusterView};
use crate::actors::wall_clock_ms;
use crate::telemetry::{raise_to, ScrapeGauges};

/// The longest a scrape waits for the Supervisor or the Janitor.
const ACTOR_WAIT: Duration = Duration::from_millis(500);

impl AppState {
    /// Sets every scrape-time figure; called just before the metrics are rendered.
    pub async fn refresh_scrape_gauges(&self) {
        let gauges = &self.metrics.scrape;
        self.refresh_raft_gauges(gauges);
        gauges.event_streams_open.set(self.streams.total() as i64);
        if let Ok((free, total)) = crate::disk::space(&self.data_dir) {
            gauges.disk_free_bytes.set(free as i64);
            gauges.disk_total_bytes.set(total as i64);
        }
        if let Ok(Ok(view)) =
            tokio::time::timeout(ACTOR_WAIT, self.supervisor.send(GetClusterView)).await
        {
            set_peers(gauges, &view, self.node_id, wall_clock_ms());
        }
        if let Ok(Ok(report)) = tokio::time::timeout(ACTOR_WAIT, self.janitor.send(GetReport)).await
        {
            set_janitor(gauges, &report, wall_clock_ms());
        }
    }

    fn refresh_raft_gauges(&self, gauges: &ScrapeGauges) {
        let raft = self.raft.metrics().borrow().clone();
        let last_log = raft.last_log_index.unwrap_or(0);
        let applied = raft.last_applied.map_or(0, |log_id| log_id.index);
        gauges.raft_last_log_index.set(last_log as i64);
        gauges
            .raft_apply_lag
            .set(last_log.saturating_sub(applied) as i64);
        let leading = raft.current_leader == Some(self.node_id);
        let quorum_ack = raft.millis_since_quorum_ack.filter(|_| leading);
        gauges
            .raft_millis_since_quorum_ack
            .set(quorum_ack.map_or(-1, |ms| ms as i64));
        gauges
            .cluster_has_leader
            .set(i64::from(raft.current_leader.is_some()));
        let membership = raft.membership_config.membership();
        gauges
            .cluster_voters
            .set(membership.voter_ids().count() as i64);
        gauges
            .cluster_standbys
            .set(membership.learner_ids().count() as i64);
    }
}

/// One series per peer (this node left out), labelled with its id and role; a peer that
/// left the view leaves the metrics too.
fn set_peers(gauges: &ScrapeGauges, view: &ClusterView, node_id: u64, now_ms: u64) {
    for family in [
        &gauges.peer_up,
        &gauges.peer_heartbeat_age_ms,
        &gauges.peer_round_trip_ms,
        &gauges.peer_clock_offset_ms,
    ] {
        family.reset();
    }
    for node in view.nodes.iter().filter(|node| node.node_id != node_id) {
        let peer = node.node_id.to_string();
        let labels = [peer.as_str(), node.role.as_str()];
        gauges
            .peer_up
            .with_label_values(&labels)
            .set(i64::from(node.health == "up"));
        if let Some(heartbeat) = node.last_heartbeat_ms {
            gauges
                .peer_heartbeat_age_ms
                .with_label_values(&labels)
                .set(now_ms.saturating_sub(heartbeat) as i64);
        }
        if let Some(round_trip) = node.round_trip_ms {
            gauges
                .peer_round_trip_ms
                .with_label_values(&labels)
                .set(round_trip as i64);
        }
        if let Some(offset) = node.clock_offset_ms {
            gauges
                .peer_clock_offset_ms
                .with_label_values(&labels)
                .set(offset);
        }
    }
}

fn set_janitor(gauges: &ScrapeGauges, report: &JanitorReport, now_ms: u64) {
    raise_to(&gauges.janitor.sweeps_total, report.sweeps);
    raise_to(&gauges.janitor.actors_started_total, report.actors_started);
    raise_to(&gauges.janitor.actors_crashed_total, report.actors_crashed);
    raise_to(&gauges.janitor.actors_rebuilt_total, report.actors_rebuilt);
    raise_to(
        &gauges.janitor.actors_stuck_replaced_total,
        report.actors_stuck_replaced,
    );
    raise_to(
        &gauges.janitor.auctions_archived_total,
        report.auctions_archived,
    );
    gauges.janitor.live_actors.set(report.live_actors as i64);
    gauges.janitor.last_sweep_age_ms.set(
        report
            .last_sweep_at_ms
            .map_or(-1, |at| now_ms.saturating_sub(at) as i64),
    );
}

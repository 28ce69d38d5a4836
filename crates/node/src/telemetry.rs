//! Telemetry: the Prometheus metrics of one node, served as text at `/metrics` on both
//! listeners; the Supervisor, the Proposer and the handlers update them, and each scrape
//! refreshes the figures read from elsewhere (`ScrapeGauges`) and the process's own
//! (`gavel_process_*`: CPU, memory, open files). `cluster/monitoring/` holds the alert
//! rules and the Grafana dashboard that read them.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub bids_accepted_total: IntCounter,
    pub bids_rejected_total: IntCounterVec,
    pub commands_total: IntCounterVec,
    /// From proposal to applied answer, as the Supervisor sees it: once per log entry the
    /// leader proposed (one or more commands, see `proposal_commands`).
    pub commit_latency_seconds: Histogram,
    /// Commands per log entry the leader proposed (group commit).
    pub proposal_commands: Histogram,
    pub raft_term: IntGauge,
    pub raft_last_applied_index: IntGauge,
    pub raft_is_leader: IntGauge,
    pub auctions_open: IntGauge,
    pub sessions_live: IntGauge,
    /// This node's clock minus the voters' median, as last measured (0 until measured).
    pub clock_offset_ms: IntGauge,
    /// 1 while this node's clock is too far off the voters' median for it to lead.
    pub clock_refuses_to_lead: IntGauge,
    /// Scheduled backups written and verified, and those that failed (`actors::backups`).
    pub backups_written_total: IntCounter,
    pub backup_failures_total: IntCounter,
    /// When this node last wrote a scheduled backup (ms since the epoch; 0: never).
    pub last_backup_at_ms: IntGauge,
    pub scrape: ScrapeGauges,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("gavel".to_string()), None)?;
        let bids_rejected_total = IntCounterVec::new(
            Opts::new("bids_rejected_total", "Bids refused, by code"),
            &["code"],
        )?;
        let commands_total = IntCounterVec::new(
            Opts::new("commands_total", "Commands proposed, by result"),
            &["result"],
        )?;
        let commit_latency_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "commit_latency_seconds",
                "Time from proposal to applied answer",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        )?;
        let proposal_commands = Histogram::with_opts(
            HistogramOpts::new(
                "proposal_commands",
                "Commands the leader put into one Raft log entry",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
        )?;
        registry.register(Box::new(bids_rejected_total.clone()))?;
        registry.register(Box::new(commands_total.clone()))?;
        registry.register(Box::new(commit_latency_seconds.clone()))?;
        registry.register(Box::new(proposal_commands.clone()))?;
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let scrape = ScrapeGauges::new(&registry)?;
        Ok(Metrics {
            bids_accepted_total: counter(&registry, "bids_accepted_total", "Bids accepted and committed")?,
            raft_term: gauge(&registry, "raft_term", "Current Raft term")?,
            raft_last_applied_index: gauge(&registry, "raft_last_applied_index", "Last applied log index")?,
            raft_is_leader: gauge(&registry, "raft_is_leader", "1 when this node leads")?,
            auctions_open: gauge(&registry, "auctions_open", "Auctions not yet closed")?,
            sessions_live: gauge(&registry, "sessions_live", "Sessions in the replicated state")?,
            clock_offset_ms: gauge(&registry, "clock_offset_ms", "This node's clock minus the voters' median clock, in milliseconds")?,
            clock_refuses_to_lead: gauge(&registry, "clock_refuses_to_lead", "1 while this node's clock is more than cluster.max_clock_skew_ms off the voters' median")?,
            backups_written_total: counter(
                &registry,
                "backups_written_total",
                "Scheduled backups this node wrote and verified",
            )?,
            backup_failures_total: counter(
                &registry,
                "backup_failures_total",
                "Scheduled backups that failed (not taken, not written, or not checking)",
            )?,
            last_backup_at_ms: gauge(
                &registry,
                "last_backup_at_ms",
                "When this node last wrote a scheduled backup, ms since the epoch; 0 never",
            )?,
            scrape,
            registry,
            bids_rejected_total,
            commands_total,
            commit_latency_seconds,
            proposal_commands,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if encoder
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// What `/metrics` reads afresh at every scrape besides the counters above: the Raft log's
/// progress, the cluster as the Supervisor sees it (per peer: health, heartbeat age, round
/// trip, clock offset), the Janitor's counters, the open event streams, the data
/// directory's file system and the process itself. Each is set from a snapshot just
/// before rendering.
pub struct ScrapeGauges {
    pub raft_last_log_index: IntGauge,
    /// Entries in the log not yet applied here.
    pub raft_apply_lag: IntGauge,
    /// On the leader, milliseconds since a quorum last acknowledged it; -1 elsewhere.
    pub raft_millis_since_quorum_ack: IntGauge,
    pub cluster_has_leader: IntGauge,
    pub cluster_voters: IntGauge,
    pub cluster_standbys: IntGauge,
    /// 1 while the peer answers its health checks (`up`), 0 when `suspect` or `down`.
    pub peer_up: IntGaugeVec,
    pub peer_heartbeat_age_ms: IntGaugeVec,
    pub peer_round_trip_ms: IntGaugeVec,
    pub peer_clock_offset_ms: IntGaugeVec,
    pub janitor: JanitorGauges,
    pub event_streams_open: IntGauge,
    pub disk_free_bytes: IntGauge,
    pub disk_total_bytes: IntGauge,
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
    let gauge = IntGauge::new(name, help)?;
    registry.register(Box::new(gauge.clone()))?;
    Ok(gauge)
}

fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    let counter = IntCounter::new(name, help)?;
    registry.register(Box::new(counter.clone()))?;
    Ok(counter)
}

fn peer_gauge(
    registry: &Registry,
    name: &str,
    help: &str,
) -> Result<IntGaugeVec, prometheus::Error> {
    let gauge = IntGaugeVec::new(Opts::new(name, help), &["peer", "role"])?;
    registry.register(Box::new(gauge.clone()))?;
    Ok(gauge)
}

impl ScrapeGauges {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(ScrapeGauges {
            raft_last_log_index: gauge(
                registry,
                "raft_last_log_index",
                "Last log index in this node's log",
            )?,
            raft_apply_lag: gauge(
                registry,
                "raft_apply_lag",
                "Log entries this node holds but has not applied yet",
            )?,
            raft_millis_since_quorum_ack: gauge(
                registry,
                "raft_millis_since_quorum_ack",
                "On the leader, ms since a quorum last acknowledged it; -1 on other nodes",
            )?,
            cluster_has_leader: gauge(
                registry,
                "cluster_has_leader",
                "1 when this node knows a leader",
            )?,
            cluster_voters: gauge(
                registry,
                "cluster_voters",
                "Voters in the membership this node holds",
            )?,
            cluster_standbys: gauge(
                registry,
                "cluster_standbys",
                "Standbys (learners) in the membership this node holds",
            )?,
            peer_up: peer_gauge(
                registry,
                "peer_up",
                "1 while the peer answers its health checks, 0 when suspect or down",
            )?,
            peer_heartbeat_age_ms: peer_gauge(
                registry,
                "peer_heartbeat_age_ms",
                "Ms since the peer last answered a health check",
            )?,
            peer_round_trip_ms: peer_gauge(
                registry,
                "peer_round_trip_ms",
                "Round trip of the newest health check to the peer, in ms",
            )?,
            peer_clock_offset_ms: peer_gauge(
                registry,
                "peer_clock_offset_ms",
                "The peer's clock minus this node's, in ms",
            )?,
            janitor: JanitorGauges::new(registry)?,
            event_streams_open: gauge(
                registry,
                "event_streams_open",
                "Server-sent event streams open on this node",
            )?,
            disk_free_bytes: gauge(
                registry,
                "disk_free_bytes",
                "Bytes still writable on the data directory's file system",
            )?,
            disk_total_bytes: gauge(
                registry,
                "disk_total_bytes",
                "Size of the data directory's file system in bytes",
            )?,
        })
    }
}

/// The Janitor's report as series (`gavel_janitor_*`), set at each scrape.
pub struct JanitorGauges {
    pub sweeps_total: IntCounter,
    pub actors_started_total: IntCounter,
    pub actors_crashed_total: IntCounter,
    pub actors_rebuilt_total: IntCounter,
    pub actors_stuck_replaced_total: IntCounter,
    pub auctions_archived_total: IntCounter,
    pub live_actors: IntGauge,
    pub last_sweep_age_ms: IntGauge,
}

impl JanitorGauges {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(JanitorGauges {
            sweeps_total: counter(
                registry,
                "janitor_sweeps_total",
                "Janitor sweeps on this node",
            )?,
            actors_started_total: counter(
                registry,
                "janitor_actors_started_total",
                "Auction actors the janitor (re)started",
            )?,
            actors_crashed_total: counter(
                registry,
                "janitor_actors_crashed_total",
                "Auction actors the janitor found dead (they panicked)",
            )?,
            actors_rebuilt_total: counter(
                registry,
                "janitor_actors_rebuilt_total",
                "Auction actors rebuilt because their view disagreed with the state machine",
            )?,
            actors_stuck_replaced_total: counter(
                registry,
                "janitor_actors_stuck_replaced_total",
                "Auction actors replaced because they stopped answering",
            )?,
            auctions_archived_total: counter(
                registry,
                "janitor_auctions_archived_total",
                "Closed auctions this node's sweeps archived",
            )?,
            live_actors: gauge(
                registry,
                "janitor_live_actors",
                "Auction actors running on this node",
            )?,
            last_sweep_age_ms: gauge(
                registry,
                "janitor_last_sweep_age_ms",
                "Ms since the janitor's last sweep; -1 before the first",
            )?,
        })
    }
}

/// Raises `counter` to `value` (a total read from a report; it never goes down).
pub fn raise_to(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

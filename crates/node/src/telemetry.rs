//! Telemetry: the Prometheus metrics of one node, served as text at `/metrics` on both
//! listeners; the Supervisor, the Proposer and the handlers update them.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
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
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("gavel".to_string()), None)?;
        let bids_accepted_total =
            IntCounter::new("bids_accepted_total", "Bids accepted and committed")?;
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
        let raft_term = IntGauge::new("raft_term", "Current Raft term")?;
        let raft_last_applied_index =
            IntGauge::new("raft_last_applied_index", "Last applied log index")?;
        let raft_is_leader = IntGauge::new("raft_is_leader", "1 when this node leads")?;
        let auctions_open = IntGauge::new("auctions_open", "Auctions not yet closed")?;
        let sessions_live = IntGauge::new("sessions_live", "Sessions in the replicated state")?;
        let clock_offset_ms = IntGauge::new(
            "clock_offset_ms",
            "This node's clock minus the voters' median clock, in milliseconds",
        )?;
        let clock_refuses_to_lead = IntGauge::new(
            "clock_refuses_to_lead",
            "1 while this node's clock is more than cluster.max_clock_skew_ms off the voters' median",
        )?;
        registry.register(Box::new(bids_accepted_total.clone()))?;
        registry.register(Box::new(bids_rejected_total.clone()))?;
        registry.register(Box::new(commands_total.clone()))?;
        registry.register(Box::new(commit_latency_seconds.clone()))?;
        registry.register(Box::new(proposal_commands.clone()))?;
        registry.register(Box::new(raft_term.clone()))?;
        registry.register(Box::new(raft_last_applied_index.clone()))?;
        registry.register(Box::new(raft_is_leader.clone()))?;
        registry.register(Box::new(auctions_open.clone()))?;
        registry.register(Box::new(sessions_live.clone()))?;
        registry.register(Box::new(clock_offset_ms.clone()))?;
        registry.register(Box::new(clock_refuses_to_lead.clone()))?;
        Ok(Metrics {
            registry,
            bids_accepted_total,
            bids_rejected_total,
            commands_total,
            commit_latency_seconds,
            proposal_commands,
            raft_term,
            raft_last_applied_index,
            raft_is_leader,
            auctions_open,
            sessions_live,
            clock_offset_ms,
            clock_refuses_to_lead,
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

//! The Supervisor actor owns the node's Raft handle. Every state change of Gavel is a
//! `Propose` message to it. On the leader it stamps the command with the time (never
//! going backwards) and a random seed, proposes it to openraft and answers once the entry
//! is committed and applied; on any other node it forwards the command to the leader over
//! the peer link (waiting out a short election), so clients never need to know who leads.
//! HTTP handlers, the Auction actors' deadline timers, the Janitor and the peer listener
//! (commands forwarded by other nodes) send it commands.
//!
//! It watches the cluster: Raft's metrics, and the PeerLink actors' health reports. When
//! this node becomes leader it proposes `Command::Takeover`, so that its term has a
//! stamped entry at once: the state machine applies the failover grace rule before the
//! first command of every term (`kernel::takeover`), whichever command that is. Once the
//! entry is committed it lets the ResourcePool's Auction actors propose closes, and makes sure
//! every configured standby is a Raft learner. While it leads, a voter that misses
//! `down_after_misses` checks is replaced by a healthy standby (see `membership`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use openraft::ServerState;

use super::membership::PeerHealth;
pub use super::messages::{Committed, IsLeader, LeadershipChanged, Propose, ProposeError};
use super::peer_link::PeerLinkSettings;
use crate::clock::{wall_clock_ms, ClockCheck, ClockSamples, ClockStatus, StepGuard};
use crate::peer::{ForwardError, PeerClients};
use crate::replication::{GavelRaft, NodeInfo};
use crate::telemetry::Metrics;
use gavel_kernel::{Command, Envelope};

/// A configured member of the cluster.
#[derive(Debug, Clone)]
pub struct ConfiguredMember {
    pub node_id: u64,
    pub info: NodeInfo,
    pub standby: bool,
}

pub struct SupervisorSettings {
    pub node_id: u64,
    pub mailbox_capacity: usize,
    pub members: Vec<ConfiguredMember>,
    /// How long a forwarded command may wait for a leader and its commit.
    pub forward_timeout: Duration,
    /// How the PeerLinks check the other nodes.
    pub peer_links: PeerLinkSettings,
    /// How far this node's clock may be off the voters' median for it to lead.
    pub max_clock_skew_ms: u64,
    /// Where the clock decisions are published for the HTTP handlers and the peer
    /// listener.
    pub clock_status: Arc<ClockStatus>,
}

/// How often the leader checks that every running configured standby is a learner (and
/// the Supervisor that it watches every node).
const STANDBY_CHECK: Duration = Duration::from_millis(500);

pub struct Supervisor {
    raft: GavelRaft,
    settings: SupervisorSettings,
    clients: Arc<PeerClients>,
    last_stamped_ms: u64,
    pool: Option<Recipient<LeadershipChanged>>,
    metrics: Arc<Metrics>,
    /// The term in which this node last became leader and proposed its takeover entry.
    led_term: Option<u64>,
    peers: BTreeMap<u64, PeerHealth>,
    reconfiguring: bool,
    /// While a manual switchover runs, this leader takes no new commands: it forwards
    /// them to whoever leads next, so its log stops growing and the successor can win.
    switching_to: Option<u64>,
    /// Batches this leader's commands into log entries (see `proposer`).
    proposer: Option<Proposer>,
    /// The PeerLink of every other configured or member node (see `nodes`).
    links: BTreeMap<u64, nodes::WatchedPeer>,
    /// Standbys an operator removed that still run: not added back as learners.
    retired: BTreeSet<u64>,
    /// The membership (by its log index) the links were last matched against.
    watched_membership: Option<u64>,
    /// How many PeerLinks stopped (a panic) and were started again.
    link_restarts: u64,
    /// The peers' clocks as measured, this node's conclusion, and the stamp guard (see
    /// `clock_watch`).
    clock_samples: ClockSamples,
    clock_check: ClockCheck,
    step_guard: StepGuard,
}

impl Supervisor {
    pub fn new(
        raft: GavelRaft,
        settings: SupervisorSettings,
        clients: Arc<PeerClients>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let settings_max_clock_skew_ms = settings.max_clock_skew_ms;
        Supervisor {
            raft,
            settings,
            clients,
            last_stamped_ms: 0,
            pool: None,
            metrics,
            led_term: None,
            peers: BTreeMap::new(),
            reconfiguring: false,
            switching_to: None,
            proposer: None,
            links: BTreeMap::new(),
            retired: BTreeSet::new(),
            watched_membership: None,
            link_restarts: 0,
            clock_samples: ClockSamples::default(),
            clock_check: ClockCheck::decide(&[], true, 0),
            step_guard: StepGuard::new(settings_max_clock_skew_ms),
        }
    }

    fn stamp(&mut self, command: Command, actor: String) -> Envelope {
        self.last_stamped_ms = wall_clock_ms().max(self.last_stamped_ms);
        Envelope {
            now_ms: self.last_stamped_ms,
            seed: rand::random(),
            actor,
            command,
        }
    }

    /// Stamps the command now, in proposal order, queues it for the next proposal and
    /// returns the future that answers once it is committed and applied here.
    fn replicate(
        &mut self,
        command: Command,
        actor: String,
    ) -> futures::future::Either<
        impl std::future::Future<Output = Result<Committed, ProposeError>> + 'static,
        futures::future::Ready<Result<Committed, ProposeError>>,
    > {
        // A clock that is off, or stepped since it was last measured, stamps nothing.
        if !self.clock_may_stamp() {
            let refused = Err(ProposeError::NotLeader { leader_id: None });
            return futures::future::Either::Right(futures::future::ready(refused));
        }
        let envelope = self.stamp(command, actor);
        futures::future::Either::Left(self.proposer().propose(envelope))
    }

    /// The group-commit queue, started on first use (it needs the actor's runtime).
    fn proposer(&mut self) -> &Proposer {
        let (raft, metrics) = (&self.raft, &self.metrics);
        self.proposer
            .get_or_insert_with(|| Proposer::start(raft.clone(), metrics.clone()))
    }

    fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }
}

/// Sends a command to whichever node leads, waiting out an election up to `wait`. A
/// command whose answer was lost on the way may have committed: bids carry a request_id,
/// so the client's retry is answered with the original receipt.
async fn forward_to_leader(
    raft: GavelRaft,
    clients: Arc<PeerClients>,
    self_id: u64,
    command: Command,
    actor: String,
    wait: Duration,
) -> Result<Committed, ProposeError> {
    let deadline = Instant::now() + wait;
    let mut last_leader = None;
    loop {
        let metrics = raft.metrics().borrow().clone();
        last_leader = metrics.current_leader.or(last_leader);
        let target = metrics
            .current_leader
            .filter(|leader| *leader != self_id)
            .and_then(|leader| {
                Some((
                    leader,
                    metrics
                        .membership_config
                        .membership()
                        .get_node(&leader)?
                        .peer_addr
                        .clone(),
                ))
            });
        if let Some((leader, peer_addr)) = target {
            let remaining = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100));
            match clients
                .get(leader, &peer_addr)
                .forward(command.clone(), actor.clone(), remaining)
                .await
            {
                Ok(Ok(commit)) => {
                    return Ok(Committed {
                        outcome: commit.outcome,
                        log_index: commit.log_index,
                    })
                }
                Ok(Err(ForwardError::NotLeader { .. })) => {}
                Ok(Err(ForwardError::Unavailable(detail))) => {
                    return Err(ProposeError::Fatal(detail))
                }
                // The leader may be dying; the answer is unknown, the client retries.
                Err(error) => {
                    tracing::debug!(leader, %error, "forward failed");
                    return Err(ProposeError::NotLeader {
                        leader_id: Some(leader),
                    });
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(ProposeError::NotLeader {
                leader_id: last_leader,
            });
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.settings.mailbox_capacity);
        let mut metrics = self.raft.metrics();
        let me = ctx.address();
        // Forward every change of Raft's metrics to this actor.
        actix::spawn(async move {
            loop {
                let snapshot = metrics.borrow().clone();
                let changed = RaftChanged {
                    is_leader: snapshot.state == ServerState::Leader,
                    term: snapshot.current_term,
                    membership_index: membership_index(&snapshot),
                };
                if me.try_send(changed).is_err() && !me.connected() {
                    return;
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        self.watch_peers(ctx);
        ctx.run_interval(STANDBY_CHECK, |supervisor, ctx| {
            supervisor.watch_peers(ctx);
            supervisor.ensure_standbys(ctx)
        });
    }
}

impl Handler<Propose> for Supervisor {
    type Result = ResponseFuture<Result<Committed, ProposeError>>;

    fn handle(&mut self, propose: Propose, _ctx: &mut Self::Context) -> Self::Result {
        let (raft, clients, self_id, wait) = (
            self.raft.clone(),
            self.clients.clone(),
            self.settings.node_id,
            self.settings.forward_timeout,
        );
        if !self.is_leader() || self.switching_to.is_some() || !self.clock_may_stamp() {
            return Box::pin(forward_to_leader(
                raft,
                clients,
                self_id,
                propose.command,
                propose.actor,
                wait,
            ));
        }
        let retry = (propose.command.clone(), propose.actor.clone());
        let local = self.replicate(propose.command, propose.actor);
        Box::pin(async move {
            match local.await {
                // Deposed between the check and the proposal: the new leader takes it.
                Err(ProposeError::NotLeader { .. }) => {
                    forward_to_leader(raft, clients, self_id, retry.0, retry.1, wait).await
                }
                other => other,
            }
        })
    }
}

impl Handler<IsLeader> for Supervisor {
    type Result = bool;

    fn handle(&mut self, _: IsLeader, _ctx: &mut Self::Context) -> bool {
        self.is_leader() && self.switching_to.is_none()
    }
}

/// Tells the Supervisor where to send leadership changes (the ResourcePool).
pub struct AttachPool(pub Recipient<LeadershipChanged>);

impl Message for AttachPool {
    type Result = ();
}

impl Handler<AttachPool> for Supervisor {
    type Result = ();

    fn handle(&mut self, attach: AttachPool, _ctx: &mut Self::Context) {
        self.pool = Some(attach.0);
    }
}

/// Raft's view of this node changed.
struct RaftChanged {
    is_leader: bool,
    term: u64,
    /// Where the membership Raft reports was set, to see when it changes.
    membership_index: Option<u64>,
}

fn membership_index(metrics: &openraft::RaftMetrics<u64, NodeInfo>) -> Option<u64> {
    metrics
        .membership_config
        .log_id()
        .as_ref()
        .map(|log_id| log_id.index)
}

impl Message for RaftChanged {
    type Result = ();
}

impl Handler<RaftChanged> for Supervisor {
    type Result = ();

    fn handle(&mut self, changed: RaftChanged, ctx: &mut Self::Context) {
        // Raft's metrics change with every commit; the links only with the membership.
        if changed.membership_index != self.watched_membership {
            self.watched_membership = changed.membership_index;
            self.watch_peers(ctx);
        }
        match decisions::on_raft_change(self.led_term, changed.is_leader, changed.term) {
            LeadershipStep::Unchanged => {}
            LeadershipStep::Lost => {
                self.led_term = None;
                tracing::warn!(node_id = self.settings.node_id, "lost leadership");
                if let Some(pool) = &self.pool {
                    pool.do_send(LeadershipChanged { is_leader: false });
                }
            }
            LeadershipStep::Takeover { term } => self.take_over(term, ctx),
        }
    }
}

impl Supervisor {
    /// This node leads `term`: proposes its takeover entry, then lets the Auction actors
    /// propose closes and makes sure of the standbys; retried while it still leads.
    fn take_over(&mut self, term: u64, ctx: &mut Context<Self>) {
        self.led_term = Some(term);
        tracing::info!(
            node_id = self.settings.node_id,
            term,
            "became leader; proposing its takeover entry"
        );
        let takeover = self.replicate(
            Command::Takeover {
                leader_node_id: self.settings.node_id,
            },
            "system".to_string(),
        );
        takeover
            .into_actor(self)
            .map(move |result, supervisor, ctx| match result {
                Ok(committed) => {
                    tracing::info!(log_index = committed.log_index, "takeover committed");
                    if let Some(pool) = &supervisor.pool {
                        pool.do_send(LeadershipChanged { is_leader: true });
                    }
                    supervisor.ensure_standbys(ctx);
                }
                // Not committed: try again shortly while this node still leads.
                Err(error) => {
                    tracing::warn!(%error, "takeover not committed; retrying");
                    supervisor.led_term = None;
                    ctx.run_later(Duration::from_millis(200), |supervisor, ctx| {
                        let metrics = supervisor.raft.metrics().borrow().clone();
                        ctx.notify(RaftChanged {
                            is_leader: metrics.state == ServerState::Leader,
                            term: metrics.current_term,
                            membership_index: membership_index(&metrics),
                        });
                    });
                }
            })
            .spawn(ctx);
    }
}

impl Supervisor {
    /// On the leader: adds every configured standby that is not yet in the membership as
    /// a learner, so it receives the log and holds all state.
    fn ensure_standbys(&mut self, ctx: &mut Context<Self>) {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let known: BTreeSet<u64> = membership.nodes().map(|(id, _)| *id).collect();
        let configured: Vec<u64> = self
            .settings
            .members
            .iter()
            .filter(|member| member.standby)
            .map(|member| member.node_id)
            .collect();
        let gate = self.reconfigurable(&metrics);
        let to_add =
            decisions::standbys_to_add(gate, &configured, &known, &self.retired, &self.peers);
        let missing: Vec<ConfiguredMember> = self
            .settings
            .members
            .iter()
            .filter(|member| member.standby && to_add.contains(&member.node_id))
            .cloned()
            .collect();
        if missing.is_empty() {
            return;
        }
        self.reconfiguring = true;
        let raft = self.raft.clone();
        async move {
            for member in missing {
                match raft
                    .add_learner(member.node_id, member.info.clone(), false)
                    .await
                {
                    Ok(_) => tracing::info!(node_id = member.node_id, "standby added as learner"),
                    Err(error) => {
                        tracing::warn!(node_id = member.node_id, %error, "could not add standby")
                    }
                }
            }
        }
        .into_actor(self)
        .map(|(), supervisor, _ctx| supervisor.reconfiguring = false)
        .spawn(ctx);
    }

    fn reconfigurable(&self, metrics: &openraft::RaftMetrics<u64, NodeInfo>) -> Reconfigurable {
        Reconfigurable {
            is_leader: metrics.state == ServerState::Leader,
            reconfiguring: self.reconfiguring,
        }
    }

    /// On the leader: replaces dead voters by healthy standbys.
    fn repair_membership(&mut self, ctx: &mut Context<Self>) {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let learners: BTreeSet<u64> = membership.learner_ids().collect();
        let gate = self.reconfigurable(&metrics);
        let self_id = self.settings.node_id;
        let Some(next_voters) =
            decisions::promotion(gate, self_id, &voters, &learners, &self.peers)
        else {
            return;
        };
        tracing::warn!(?voters, ?next_voters, "replacing dead voters by standbys");
        self.reconfiguring = true;
        let raft = self.raft.clone();
        async move { raft.change_membership(next_voters, true).await }
            .into_actor(self)
            .map(|result, supervisor, _ctx| {
                supervisor.reconfiguring = false;
                match result {
                    Ok(_) => tracing::info!("voters back at full strength"),
                    Err(error) => tracing::warn!(%error, "membership change failed"),
                }
            })
            .spawn(ctx);
    }
}

impl Supervisor {
    /// The leader `node_id`'s process is gone: if this node is one of the voters that
    /// could replace it, campaign in turn once the lease has run out (see `election`).
    fn campaign_if_leader_died(&self, node_id: u64) {
        let metrics = self.raft.metrics().borrow().clone();
        let voters: Vec<u64> = metrics.membership_config.membership().voter_ids().collect();
        let view = FollowerView {
            is_follower: metrics.state == ServerState::Follower,
            current_leader: metrics.current_leader,
        };
        let refuses_to_lead = self.clock_check.refuses_to_lead.is_some();
        let self_id = self.settings.node_id;
        let Some(turn) = decisions::campaign_turn(self_id, node_id, refuses_to_lead, view, &voters)
        else {
            return;
        };
        actix::spawn(election::campaign_when_lease_expires(
            self.raft.clone(),
            node_id,
            turn,
        ));
    }
}

mod clock_watch;
mod cluster_view;
mod decisions;
mod election;
mod nodes;
mod proposer;
mod switchover;

pub use super::messages::PeerReport;
pub use cluster_view::{ClusterView, GetClusterView, NodeView};
use decisions::{FollowerView, LeadershipStep, Reconfigurable};
pub use nodes::{
    AddStandby, Added, CountLinks, LinkCounts, NodeChangeError, PanicPeerLink, PromoteStandby,
    RemoveStandby, ReplaceVoter,
};
use proposer::Proposer;
pub use switchover::Switchover;

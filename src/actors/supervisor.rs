//! The Supervisor actor owns the node's Raft handle. Every state change of Gavel is a
//! `Propose` message to it: the Supervisor stamps the command with the time (never going
//! backwards) and a random seed, proposes it to openraft, and answers once the entry is
//! committed and applied. HTTP handlers, the Auction actors' deadline timers and the
//! Janitor send it commands.
//!
//! It also watches Raft's metrics. When this node becomes leader it proposes the
//! takeover command (the failover grace rule of RULES.md) and then tells the
//! ResourcePool that its Auction actors may propose closes.

use std::time::{Duration, Instant};

use actix::prelude::*;
use openraft::error::{ClientWriteError, RaftError};
use openraft::ServerState;
use serde::Serialize;

use super::resource_pool::{LeadershipChanged, ResourcePool};
use super::wall_clock_ms;
use crate::api::metrics::Metrics;
use crate::kernel::{Command, Envelope, Outcome, Rejection};
use crate::replication::{GavelRaft, NodeInfo};

/// A command to replicate. `actor` names who asked, for the audit trail.
pub struct Propose {
    pub command: Command,
    pub actor: String,
}

/// A committed command's answer, with its log index.
#[derive(Debug, Clone)]
pub struct Committed {
    pub outcome: Result<Outcome, Rejection>,
    pub log_index: u64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    /// This node is not the leader; `leader_id` is the one it knows of, if any.
    #[error("this node is not the leader (leader: {leader_id:?})")]
    NotLeader { leader_id: Option<u64> },
    #[error("replication failed: {0}")]
    Fatal(String),
}

impl Message for Propose {
    type Result = Result<Committed, ProposeError>;
}

pub struct Supervisor {
    raft: GavelRaft,
    node_id: u64,
    last_stamped_ms: u64,
    pool: Option<Addr<ResourcePool>>,
    metrics: std::sync::Arc<Metrics>,
    mailbox_capacity: usize,
    /// The term in which this node last became leader and proposed its takeover.
    led_term: Option<u64>,
}

impl Supervisor {
    pub fn new(
        raft: GavelRaft,
        node_id: u64,
        metrics: std::sync::Arc<Metrics>,
        mailbox_capacity: usize,
    ) -> Self {
        Supervisor {
            raft,
            node_id,
            last_stamped_ms: 0,
            pool: None,
            metrics,
            mailbox_capacity,
            led_term: None,
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
}

impl Supervisor {
    /// Stamps the command now, in proposal order, and returns the future that
    /// replicates it and answers once it is committed and applied.
    fn replicate(
        &mut self,
        propose: Propose,
    ) -> impl std::future::Future<Output = Result<Committed, ProposeError>> + 'static {
        let envelope = self.stamp(propose.command, propose.actor);
        let raft = self.raft.clone();
        let metrics = self.metrics.clone();
        async move {
            let started = Instant::now();
            let response = raft.client_write(envelope).await;
            metrics
                .commit_latency_seconds
                .observe(started.elapsed().as_secs_f64());
            match response {
                Ok(written) => Ok(Committed {
                    outcome: written.data.result,
                    log_index: written.log_id.index,
                }),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                    Err(ProposeError::NotLeader {
                        leader_id: forward.leader_id,
                    })
                }
                Err(other) => Err(ProposeError::Fatal(other.to_string())),
            }
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
        let mut metrics = self.raft.metrics();
        let me = ctx.address();
        // Forward every change of Raft's metrics to this actor.
        actix::spawn(async move {
            loop {
                let snapshot = metrics.borrow().clone();
                let changed = RaftChanged {
                    is_leader: snapshot.state == ServerState::Leader,
                    term: snapshot.current_term,
                };
                if me.try_send(changed).is_err() && !me.connected() {
                    return;
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
    }
}

impl Handler<Propose> for Supervisor {
    type Result = ResponseFuture<Result<Committed, ProposeError>>;

    fn handle(&mut self, propose: Propose, _ctx: &mut Self::Context) -> Self::Result {
        Box::pin(self.replicate(propose))
    }
}

/// Tells the Supervisor which ResourcePool to notify of leadership changes.
pub struct AttachPool(pub Addr<ResourcePool>);

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
}

impl Message for RaftChanged {
    type Result = ();
}

impl Handler<RaftChanged> for Supervisor {
    type Result = ();

    fn handle(&mut self, changed: RaftChanged, ctx: &mut Self::Context) {
        let took_over = changed.is_leader && self.led_term != Some(changed.term);
        if !changed.is_leader {
            if self.led_term.take().is_some() {
                tracing::warn!(node_id = self.node_id, "lost leadership");
            }
            if let Some(pool) = &self.pool {
                pool.do_send(LeadershipChanged { is_leader: false });
            }
            return;
        }
        if !took_over {
            return;
        }
        self.led_term = Some(changed.term);
        tracing::info!(
            node_id = self.node_id,
            term = changed.term,
            "became leader; proposing takeover"
        );
        let takeover = Propose {
            command: Command::Takeover {
                leader_node_id: self.node_id,
            },
            actor: "system".to_string(),
        };
        let pool = self.pool.clone();
        self.replicate(takeover)
            .into_actor(self)
            .map(move |result, actor, ctx| match result {
                Ok(committed) => {
                    tracing::info!(log_index = committed.log_index, "takeover committed");
                    if let Some(pool) = pool {
                        pool.do_send(LeadershipChanged { is_leader: true });
                    }
                }
                // Not committed: try again shortly while this node still leads.
                _ => {
                    actor.led_term = None;
                    ctx.run_later(Duration::from_millis(200), |actor, ctx| {
                        let metrics = actor.raft.metrics().borrow().clone();
                        ctx.notify(RaftChanged {
                            is_leader: metrics.state == ServerState::Leader,
                            term: metrics.current_term,
                        });
                    });
                }
            })
            .spawn(ctx);
    }
}

/// The cluster as this node sees it (API.md, ClusterView).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClusterView {
    pub cluster_id: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NodeView {
    pub node_id: u64,
    pub name: String,
    /// `leader`, `follower`, `standby` or `removed`.
    pub role: String,
    /// `up`, `suspect` or `down`.
    pub health: String,
    pub public_url: String,
    pub control_url: String,
    pub last_applied_index: Option<u64>,
    pub last_heartbeat_ms: Option<u64>,
}

pub struct GetClusterView;

impl Message for GetClusterView {
    type Result = ClusterView;
}

impl Handler<GetClusterView> for Supervisor {
    type Result = MessageResult<GetClusterView>;

    fn handle(&mut self, _: GetClusterView, _ctx: &mut Self::Context) -> Self::Result {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
        let now_ms = wall_clock_ms();
        let nodes = membership
            .nodes()
            .map(|(node_id, info): (&u64, &NodeInfo)| {
                let is_self = *node_id == self.node_id;
                let role = if metrics.current_leader == Some(*node_id) {
                    "leader"
                } else if voters.contains(node_id) {
                    "follower"
                } else {
                    "standby"
                };
                let applied = if is_self {
                    metrics.last_applied.map(|log_id| log_id.index)
                } else {
                    metrics
                        .replication
                        .as_ref()
                        .and_then(|replication| replication.get(node_id).cloned().flatten())
                        .map(|log_id| log_id.index)
                };
                NodeView {
                    node_id: *node_id,
                    name: info.name.clone(),
                    role: role.to_string(),
                    health: if is_self || applied.is_some() {
                        "up"
                    } else {
                        "suspect"
                    }
                    .to_string(),
                    public_url: info.public_url.clone(),
                    control_url: info.control_url.clone(),
                    last_applied_index: applied,
                    last_heartbeat_ms: is_self.then_some(now_ms),
                }
            })
            .collect();
        MessageResult(ClusterView {
            cluster_id: "gavel".to_string(),
            term: metrics.current_term,
            leader_id: metrics.current_leader,
            nodes,
        })
    }
}

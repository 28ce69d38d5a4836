//! The ClusterView (docs/API.md): the cluster as this node's Supervisor sees it, from Raft's
//! membership and metrics and the PeerLinks' health reports.

use std::collections::BTreeSet;

use actix::prelude::*;
use serde::Serialize;

use super::Supervisor;
use crate::clock::wall_clock_ms;
use crate::replication::NodeInfo;

/// The cluster as this node sees it (docs/API.md, ClusterView).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClusterView {
    pub cluster_id: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub nodes: Vec<NodeView>,
    /// This node's clock against the voters' median, and whether it refuses to lead.
    pub clock: crate::clock::ClockCheck,
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
    /// The node's clock minus this node's, as last measured (null for this node itself
    /// and for nodes not measured).
    pub clock_offset_ms: Option<i64>,
    /// The round trip of the newest health check's clock sample to the node, in
    /// milliseconds (null for this node itself and for nodes not measured).
    pub round_trip_ms: Option<u64>,
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
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let mut nodes: Vec<NodeView> = membership
            .nodes()
            .map(|(node_id, info): (&u64, &NodeInfo)| {
                let role = if metrics.current_leader == Some(*node_id) {
                    "leader"
                } else if voters.contains(node_id) {
                    "follower"
                } else {
                    "standby"
                };
                self.node_view(*node_id, info, role, &metrics)
            })
            .collect();
        // Configured members the membership no longer (or not yet) holds.
        for member in &self.settings.members {
            if membership.get_node(&member.node_id).is_none() {
                nodes.push(self.node_view(member.node_id, &member.info, "removed", &metrics));
            }
        }
        MessageResult(ClusterView {
            cluster_id: crate::peer::CLUSTER_NAME.to_string(),
            term: metrics.current_term,
            leader_id: metrics.current_leader,
            nodes,
            clock: self.clock_check.clone(),
        })
    }
}

impl Supervisor {
    fn node_view(
        &self,
        node_id: u64,
        info: &NodeInfo,
        role: &str,
        metrics: &openraft::RaftMetrics<u64, NodeInfo>,
    ) -> NodeView {
        let is_self = node_id == self.settings.node_id;
        let peer = self.peers.get(&node_id);
        let (health, last_heartbeat_ms, last_applied_index) = if is_self {
            (
                "up",
                Some(wall_clock_ms()),
                metrics.last_applied.map(|log_id| log_id.index),
            )
        } else {
            let replicated = metrics
                .replication
                .as_ref()
                .and_then(|replication| replication.get(&node_id).cloned().flatten())
                .map(|log_id| log_id.index);
            (
                peer.map_or("suspect", |peer| peer.health.as_str()),
                peer.and_then(|peer| peer.last_heartbeat_ms),
                replicated.or_else(|| peer.and_then(|peer| peer.last_applied_index)),
            )
        };
        NodeView {
            node_id,
            name: info.name.clone(),
            role: role.to_string(),
            health: health.to_string(),
            public_url: info.public_url.clone(),
            control_url: info.control_url.clone(),
            last_applied_index,
            last_heartbeat_ms,
            clock_offset_ms: (!is_self)
                .then(|| self.clock_samples.offset_ms(node_id))
                .flatten(),
            round_trip_ms: (!is_self)
                .then(|| self.clock_samples.round_trip_ms(node_id))
                .flatten(),
        }
    }
}

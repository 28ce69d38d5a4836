//! Manual switchover: the leader hands leadership to a named voter. It stops taking
//! commands (they are forwarded to whoever leads next), stops its heartbeats and holds
//! the other voters' elections, so the named voter's election timer fires first and it
//! wins; then everything is switched back on.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use openraft::ServerState;

use super::decisions::{self, SwitchoverPlan, SwitchoverView};
use super::Supervisor;
use crate::peer::PeerClients;
use crate::replication::GavelRaft;

/// Hands leadership to `to_node_id` (a healthy voter). Answers once it leads.
pub struct Switchover {
    pub to_node_id: u64,
}

impl Message for Switchover {
    type Result = Result<(), String>;
}

/// How long a switchover may take before it is abandoned.
const SWITCHOVER_LIMIT: Duration = Duration::from_secs(8);

impl Handler<Switchover> for Supervisor {
    type Result = ResponseActFuture<Self, Result<(), String>>;

    fn handle(&mut self, switchover: Switchover, _ctx: &mut Self::Context) -> Self::Result {
        let to = switchover.to_node_id;
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let view = SwitchoverView {
            self_id: self.settings.node_id,
            is_leader: metrics.state == ServerState::Leader,
            current_leader: metrics.current_leader,
            voters: membership.voter_ids().collect(),
            target_health: self.peers.get(&to).map(|peer| peer.health),
            busy: self.switching_to.is_some() || self.reconfiguring,
        };
        let hold_elections_on = match decisions::switchover(&view, to) {
            Err(reason) => return Box::pin(actix::fut::ready(Err(reason))),
            Ok(SwitchoverPlan::AlreadyLeads) => return Box::pin(actix::fut::ready(Ok(()))),
            Ok(SwitchoverPlan::HandOver { hold_elections_on }) => hold_elections_on,
        };
        self.switching_to = Some(to);
        tracing::warn!(to, "manual switchover: pausing proposals and heartbeats");
        let others: Vec<(u64, String)> = hold_elections_on
            .iter()
            .filter_map(|id| Some((*id, membership.get_node(id)?.peer_addr.clone())))
            .collect();
        let (raft, clients) = (self.raft.clone(), self.clients.clone());
        Box::pin(hand_over(raft, clients, others, to).into_actor(self).map(
            |result, supervisor, _ctx| {
                supervisor.switching_to = None;
                // The switchover turned elections back on: not for a clock that is off.
                if supervisor.clock_check.refuses_to_lead.is_some() {
                    supervisor.raft.runtime_config().elect(false);
                }
                result
            },
        ))
    }
}

/// Holds the `others`' elections and this node's heartbeats until `to` leads (or the
/// limit passes), then switches them all back on.
async fn hand_over(
    raft: GavelRaft,
    clients: Arc<PeerClients>,
    others: Vec<(u64, String)>,
    to: u64,
) -> Result<(), String> {
    let step = Duration::from_secs(1);
    for (id, peer_addr) in &others {
        if let Err(error) = clients
            .get(*id, peer_addr)
            .allow_election(false, step)
            .await
        {
            tracing::warn!(peer = id, %error, "could not hold elections on a voter");
        }
    }
    raft.runtime_config().elect(false);
    raft.runtime_config().heartbeat(false);
    let handed_over = raft
        .wait(Some(SWITCHOVER_LIMIT))
        .metrics(|metrics| metrics.current_leader == Some(to), "switchover")
        .await
        .is_ok();
    raft.runtime_config().heartbeat(true);
    raft.runtime_config().elect(true);
    for (id, peer_addr) in &others {
        let _ = clients.get(*id, peer_addr).allow_election(true, step).await;
    }
    if handed_over {
        Ok(())
    } else {
        Err(format!(
            "node {to} did not take over within {SWITCHOVER_LIMIT:?}"
        ))
    }
}

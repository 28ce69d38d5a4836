//! Elastic capacity: the PeerLinks the Supervisor keeps, and the operator's `node add` and
//! `node remove` of standbys while the cluster runs.
//!
//! The Supervisor watches every node it knows of: the configured members and every node
//! of Raft's membership (a standby added by an operator is in the membership only). A
//! PeerLink starts for each such node and stops once a node is neither configured nor a
//! member, so a standby added at run time is health-checked and promoted when a voter
//! dies, like a configured one. Their reports (`PeerReport`: health, the peer's view,
//! a measurement of its clock) are handled here too; a link that stopped on a panic is
//! started again.
//!
//! Adding a standby (`AddStandby`, on the leader): the precheck pings the new node on its
//! peer address — that proves it runs, speaks the peer protocol, holds the cluster
//! secret and has the node id asked for — then it becomes a Raft learner and the answer
//! comes once it has caught up with the log (or a snapshot) and its archive of closed
//! auctions holds every record (`replication::archive_fetch`). Removing one
//! (`RemoveStandby`): only a learner can be removed (a voter is handed over first, by a
//! switchover or by stopping it so a standby replaces it); it leaves the membership and
//! is told to stop. The leader does not add it back while it is still running; started
//! again on a configuration that lists it as a standby, it joins again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actix::prelude::*;
use openraft::{ChangeMembers, ServerState};

use super::Supervisor;
use crate::actors::membership::PeerHealth;
use crate::actors::messages::{Health, PeerReport};
use crate::actors::peer_link::{PeerLink, StopLink};
use crate::replication::NodeInfo;

/// How long the precheck waits for the new node's answer.
const PRECHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a new standby may take to catch up (log, snapshot and archive) before
/// `node add` gives up waiting (it stays a learner and goes on catching up).
const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);

/// A PeerLink the Supervisor runs, and the address it checks.
pub(super) struct WatchedPeer {
    peer_addr: String,
    link: Addr<PeerLink>,
}

/// Why a membership change asked by an operator was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeChangeError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// This node does not lead; the request belongs to the leader.
    #[error("this node does not lead")]
    NotLeader,
    #[error("{0}")]
    Failed(String),
}

/// Makes `node_id` (reachable at `info`) a standby: a Raft learner holding all state.
/// Answers once it has caught up. With `dry_run`, only the precheck runs.
pub struct AddStandby {
    pub node_id: u64,
    pub info: NodeInfo,
    pub dry_run: bool,
    /// The operator wants it to vote (`PromoteStandby` follows): a voter with these
    /// addresses is then no change either.
    pub voter: bool,
}

/// What `AddStandby` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    /// It already was a standby with these addresses (or a voter, when one was asked
    /// for).
    AlreadyStandby,
    /// `dry_run`: the precheck passed, nothing changed.
    Checked,
}

impl Message for AddStandby {
    type Result = Result<Added, NodeChangeError>;
}

/// Cutover of a migration: the standby `to` takes the vote of the voter `from`, which
/// leaves the cluster and is told to stop. `from` must not be this (leading) node.
pub struct ReplaceVoter {
    pub from: u64,
    pub to: u64,
}

impl Message for ReplaceVoter {
    type Result = Result<(), NodeChangeError>;
}

/// How far behind the leader's log a standby may be to take a vote in a cutover.
const CUTOVER_MAX_LAG: u64 = 1_000;

/// Takes `node_id` out of the cluster and tells it to stop: a standby, or a voter other
/// than the leader as long as at least `MIN_VOTERS` remain (fewer only with `force`).
pub struct RemoveStandby {
    pub node_id: u64,
    pub force: bool,
}

/// Gives the standby `node_id` a vote: once it is up and caught up, it joins the voters.
/// Answers whether it was given one (false: it was a voter already).
pub struct PromoteStandby {
    pub node_id: u64,
}

impl Message for PromoteStandby {
    type Result = Result<bool, NodeChangeError>;
}

/// Fewer voters than this cannot lose one and go on committing: removing a voter below
/// it takes `force`.
pub const MIN_VOTERS: usize = 3;

/// Whether the voter `node_id` may leave `voters` (decided by the leader `self_id`).
pub fn voter_removal_check(
    voters: &BTreeSet<u64>,
    self_id: u64,
    node_id: u64,
    force: bool,
) -> Result<(), NodeChangeError> {
    if node_id == self_id {
        return Err(NodeChangeError::Conflict(format!(
            "node {node_id} leads; hand leadership to another voter first (switchover)"
        )));
    }
    let remaining = voters.len().saturating_sub(1);
    if remaining == 0 {
        return Err(NodeChangeError::Conflict(format!(
            "node {node_id} is the only voter"
        )));
    }
    if remaining < MIN_VOTERS && !force {
        return Err(NodeChangeError::Conflict(format!(
            "removing voter {node_id} would leave {remaining} voters: with fewer than {MIN_VOTERS} the cluster stops at the next failure; add a voter first, or force it (gavel ctl node remove --force, ?force=true)"
        )));
    }
    Ok(())
}

impl Message for RemoveStandby {
    type Result = Result<(), NodeChangeError>;
}

impl Supervisor {
    /// Starts a PeerLink for every configured or member node without one, and stops the
    /// links of nodes that are neither any more.
    pub(super) fn watch_peers(&mut self, ctx: &mut Context<Self>) {
        let self_id = self.settings.node_id;
        let mut wanted: BTreeMap<u64, String> = self
            .settings
            .members
            .iter()
            .map(|member| (member.node_id, member.info.peer_addr.clone()))
            .collect();
        let metrics = self.raft.metrics().borrow().clone();
        for (node_id, info) in metrics.membership_config.membership().nodes() {
            wanted.insert(*node_id, info.peer_addr.clone());
        }
        wanted.remove(&self_id);
        let gone: Vec<u64> = self
            .links
            .iter()
            .filter(|(node_id, watched)| wanted.get(node_id) != Some(&watched.peer_addr))
            .map(|(node_id, _)| *node_id)
            .collect();
        // A link that stopped on a panic is started again below (see `supervision`).
        let stopped: Vec<u64> = self
            .links
            .iter()
            .filter(|(_, watched)| !watched.link.connected())
            .map(|(node_id, _)| *node_id)
            .collect();
        for node_id in stopped {
            self.links.remove(&node_id);
            self.link_restarts += 1;
            tracing::warn!(
                peer = node_id,
                restarts = self.link_restarts,
                "the link to a peer stopped; starting it again"
            );
        }
        for node_id in gone {
            if let Some(watched) = self.links.remove(&node_id) {
                watched.link.do_send(StopLink);
            }
            if !wanted.contains_key(&node_id) {
                self.peers.remove(&node_id);
                self.clients.remove(node_id);
                tracing::info!(peer = node_id, "no longer watching a node that left");
            }
        }
        for (node_id, peer_addr) in wanted {
            if self.links.contains_key(&node_id) {
                continue;
            }
            tracing::debug!(peer = node_id, %peer_addr, "watching a node");
            let link = PeerLink::new(
                self.clients.get(node_id, &peer_addr),
                ctx.address().recipient(),
                self.settings.peer_links,
            )
            .start();
            self.links.insert(node_id, WatchedPeer { peer_addr, link });
        }
    }

    /// A retired standby that is seen down has stopped: if it is started again on a
    /// configuration naming it a standby, it may join again.
    pub(super) fn forget_stopped_retirees(&mut self) {
        let peers = &self.peers;
        self.retired.retain(|node_id| {
            peers
                .get(node_id)
                .is_some_and(|peer| peer.health != Health::Down)
        });
    }
}

impl Handler<AddStandby> for Supervisor {
    type Result = ResponseActFuture<Self, Result<Added, NodeChangeError>>;

    fn handle(&mut self, add: AddStandby, _ctx: &mut Self::Context) -> Self::Result {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let observed = MembershipView {
            is_leader: metrics.state == ServerState::Leader,
            nodes: membership
                .nodes()
                .map(|(id, info)| (*id, info.clone()))
                .collect(),
            voters: membership.voter_ids().collect(),
            busy: self.reconfiguring || self.switching_to.is_some(),
        };
        match add_standby_check(&observed, add.node_id, &add.info, add.voter) {
            Ok(None) => {}
            Ok(Some(added)) => return Box::pin(actix::fut::ready(Ok(added))),
            Err(error) => return Box::pin(actix::fut::ready(Err(error))),
        }
        let dry_run = add.dry_run;
        if !dry_run {
            self.reconfiguring = true;
            self.retired.remove(&add.node_id);
        }
        let (raft, client) = (
            self.raft.clone(),
            self.clients.get(add.node_id, &add.info.peer_addr),
        );
        Box::pin(add_standby(raft, client, add).into_actor(self).map(
            move |result, supervisor, ctx| {
                if !dry_run {
                    supervisor.reconfiguring = false;
                    supervisor.watch_peers(ctx);
                }
                result
            },
        ))
    }
}

/// The membership as the leader sees it when an operator asks for a change.
struct MembershipView {
    is_leader: bool,
    nodes: BTreeMap<u64, NodeInfo>,
    voters: BTreeSet<u64>,
    /// A membership change or a switchover is under way.
    busy: bool,
}

/// Whether `node_id` at `info` may be added as a standby: `Ok(None)` to go on with the
/// precheck, `Ok(Some(_))` when there is nothing to do, or why not.
fn add_standby_check(
    observed: &MembershipView,
    node_id: u64,
    info: &NodeInfo,
    wants_vote: bool,
) -> Result<Option<Added>, NodeChangeError> {
    if !observed.is_leader {
        return Err(NodeChangeError::NotLeader);
    }
    if let Some(known) = observed.nodes.get(&node_id) {
        let is_voter = observed.voters.contains(&node_id);
        if known == info && (!is_voter || wants_vote) {
            return Ok(Some(Added::AlreadyStandby));
        }
        return Err(NodeChangeError::Conflict(format!(
            "node {node_id} is already a {} of the cluster{}",
            if is_voter { "voter" } else { "standby" },
            if known == info {
                ""
            } else {
                " with other addresses"
            }
        )));
    }
    if let Some((other, _)) = observed
        .nodes
        .iter()
        .find(|(_, known)| known.peer_addr == info.peer_addr)
    {
        return Err(NodeChangeError::Conflict(format!(
            "peer address {} already belongs to node {other}",
            info.peer_addr
        )));
    }
    if observed.busy {
        return Err(NodeChangeError::Conflict(
            "a membership change or switchover is already under way".to_string(),
        ));
    }
    Ok(None)
}

/// The precheck (the node runs, is authenticated by the cluster secret and is the node
/// asked for), then, unless `dry_run`, the new learner and the wait for it to catch up.
async fn add_standby(
    raft: crate::replication::GavelRaft,
    client: std::sync::Arc<crate::peer::PeerClient>,
    add: AddStandby,
) -> Result<Added, NodeChangeError> {
    let AddStandby {
        node_id,
        info,
        dry_run,
        ..
    } = add;
    let status = client.ping(PRECHECK_TIMEOUT).await.map_err(|error| {
        NodeChangeError::Conflict(format!(
            "precheck failed: node {node_id} does not answer on {} with this cluster's secret: {error}",
            info.peer_addr
        ))
    })?;
    if status.node_id != node_id {
        return Err(NodeChangeError::Conflict(format!(
            "precheck failed: {} is node {}, not node {node_id}",
            info.peer_addr, status.node_id
        )));
    }
    if dry_run {
        return Ok(Added::Checked);
    }
    tracing::info!(node_id, peer = %info.peer_addr, "adding a standby; waiting for it to catch up");
    let added = tokio::time::timeout(CATCH_UP_LIMIT, async {
        // openraft's own wait ends while the learner is up to
        // `replication_lag_threshold` entries behind; this one ends once it has
        // applied the entry that added it and holds its whole archive.
        let added = raft.add_learner(node_id, info, false).await;
        if let Ok(added) = &added {
            caught_up(&client, added.log_id.index).await;
        }
        added.map(|_| ())
    })
    .await;
    match added {
        Ok(Ok(())) => Ok(Added::Added),
        Ok(Err(error)) => Err(NodeChangeError::Failed(format!(
            "could not add node {node_id}: {error}"
        ))),
        Err(_) => Err(NodeChangeError::Failed(format!(
            "node {node_id} is a standby now but did not catch up within {} s; it goes on catching up",
            CATCH_UP_LIMIT.as_secs()
        ))),
    }
}

/// How often the leader asks a new standby how far it has caught up.
const CATCH_UP_POLL: Duration = Duration::from_millis(100);

/// Returns once the standby behind `client` has applied the log up to `index` (the
/// entry that added it) and says its archive holds every record (it fetches what a
/// snapshot did not carry: `replication::archive_fetch`). The caller bounds the wait.
async fn caught_up(client: &crate::peer::PeerClient, index: u64) {
    loop {
        match client.archive_status(PRECHECK_TIMEOUT).await {
            Ok(status) if status.last_applied_index >= index && !status.archive.catching_up => {
                let auctions = status.archive.auctions;
                tracing::info!(
                    peer = client.target(),
                    auctions,
                    "the new standby has caught up, archive included"
                );
                return;
            }
            Ok(status) => {
                let (applied, auctions) = (status.last_applied_index, status.archive.auctions);
                tracing::debug!(
                    peer = client.target(),
                    applied,
                    auctions,
                    "the new standby is catching up"
                );
            }
            Err(error) => {
                tracing::debug!(peer = client.target(), %error, "cannot ask the new standby how far it is");
            }
        }
        tokio::time::sleep(CATCH_UP_POLL).await;
    }
}

impl Handler<ReplaceVoter> for Supervisor {
    type Result = ResponseActFuture<Self, Result<(), NodeChangeError>>;

    fn handle(&mut self, replace: ReplaceVoter, _ctx: &mut Self::Context) -> Self::Result {
        let refuse =
            |error: NodeChangeError| -> Self::Result { Box::pin(actix::fut::ready(Err(error))) };
        let ReplaceVoter { from, to } = replace;
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.state != ServerState::Leader {
            return refuse(NodeChangeError::NotLeader);
        }
        if from == self.settings.node_id {
            return refuse(NodeChangeError::Conflict(format!(
                "node {from} leads; hand leadership to another voter first (switchover)"
            )));
        }
        let membership = metrics.membership_config.membership().clone();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        if !voters.contains(&from) {
            return refuse(NodeChangeError::Conflict(format!(
                "node {from} is not a voter"
            )));
        }
        let Some(info) = membership.get_node(&from).cloned() else {
            return refuse(NodeChangeError::Conflict(format!(
                "node {from} is not a member"
            )));
        };
        if voters.contains(&to) || membership.get_node(&to).is_none() {
            return refuse(NodeChangeError::Conflict(format!(
                "node {to} is not a standby of the cluster; add it first"
            )));
        }
        if self.peers.get(&to).map(|peer| peer.health) != Some(Health::Up) {
            return refuse(NodeChangeError::Conflict(format!("node {to} is not up")));
        }
        let last_log = metrics.last_log_index.unwrap_or(0);
        let matched = metrics
            .replication
            .as_ref()
            .and_then(|replication| replication.get(&to).cloned().flatten())
            .map_or(0, |log_id| log_id.index);
        if last_log.saturating_sub(matched) > CUTOVER_MAX_LAG {
            return refuse(NodeChangeError::Conflict(format!(
                "node {to} is {} entries behind; let it catch up first",
                last_log.saturating_sub(matched)
            )));
        }
        if self.reconfiguring || self.switching_to.is_some() {
            return refuse(NodeChangeError::Conflict(
                "a membership change or switchover is already under way".to_string(),
            ));
        }
        self.reconfiguring = true;
        self.retired.insert(from);
        let mut next = voters;
        next.remove(&from);
        next.insert(to);
        tracing::warn!(from, to, ?next, "cutover: a standby takes a voter's place");
        let (raft, client) = (self.raft.clone(), self.clients.get(from, &info.peer_addr));
        Box::pin(
            async move {
                raft.change_membership(next, false).await.map_err(|error| {
                    NodeChangeError::Failed(format!("the cutover did not happen: {error}"))
                })?;
                if let Err(error) = client.retire(from, PRECHECK_TIMEOUT).await {
                    tracing::info!(node_id = from, %error, "replaced node not told to stop (it may be down)");
                }
                Ok(())
            }
            .into_actor(self)
            .map(move |result, supervisor, ctx| {
                supervisor.reconfiguring = false;
                if result.is_err() {
                    supervisor.retired.remove(&from);
                }
                supervisor.watch_peers(ctx);
                result
            }),
        )
    }
}

impl Handler<RemoveStandby> for Supervisor {
    type Result = ResponseActFuture<Self, Result<(), NodeChangeError>>;

    fn handle(&mut self, remove: RemoveStandby, _ctx: &mut Self::Context) -> Self::Result {
        let refuse =
            |error: NodeChangeError| -> Self::Result { Box::pin(actix::fut::ready(Err(error))) };
        let node_id = remove.node_id;
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.state != ServerState::Leader {
            return refuse(NodeChangeError::NotLeader);
        }
        let membership = metrics.membership_config.membership().clone();
        let Some(info) = membership.get_node(&node_id).cloned() else {
            return refuse(NodeChangeError::NotFound(format!(
                "node {node_id} is not a member of the cluster"
            )));
        };
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let is_voter = voters.contains(&node_id);
        if is_voter {
            if let Err(refused) =
                voter_removal_check(&voters, self.settings.node_id, node_id, remove.force)
            {
                return refuse(refused);
            }
        }
        if self.reconfiguring || self.switching_to.is_some() {
            return refuse(NodeChangeError::Conflict(
                "a membership change or switchover is already under way".to_string(),
            ));
        }
        self.reconfiguring = true;
        self.retired.insert(node_id);
        let (raft, client) = (
            self.raft.clone(),
            self.clients.get(node_id, &info.peer_addr),
        );
        Box::pin(
            async move {
                let removed: BTreeSet<u64> = BTreeSet::from([node_id]);
                if is_voter {
                    // Its vote first (kept as a learner), then the node itself.
                    tracing::warn!(node_id, "an operator removes a voter");
                    raft.change_membership(ChangeMembers::RemoveVoters(removed.clone()), true)
                        .await
                        .map_err(|error| {
                            NodeChangeError::Failed(format!(
                                "could not take node {node_id}'s vote: {error}"
                            ))
                        })?;
                }
                raft.change_membership(ChangeMembers::RemoveNodes(removed), false)
                    .await
                    .map_err(|error| {
                        NodeChangeError::Failed(format!("could not remove node {node_id}: {error}"))
                    })?;
                // Out of the membership: tell it to stop (it may be down already).
                if let Err(error) = client.retire(node_id, PRECHECK_TIMEOUT).await {
                    tracing::info!(node_id, %error, "removed node not told to stop (it may be down)");
                }
                Ok(())
            }
            .into_actor(self)
            .map(move |result, supervisor, ctx| {
                supervisor.reconfiguring = false;
                if result.is_err() {
                    supervisor.retired.remove(&node_id);
                }
                supervisor.watch_peers(ctx);
                result
            }),
        )
    }
}

/// Fault injection: the PeerLink to `node_id` panics. Answers whether there was one.
pub struct PanicPeerLink {
    pub node_id: u64,
}

impl Message for PanicPeerLink {
    type Result = bool;
}

impl Handler<PanicPeerLink> for Supervisor {
    type Result = bool;

    fn handle(&mut self, panic: PanicPeerLink, _ctx: &mut Self::Context) -> bool {
        match self.links.get(&panic.node_id) {
            Some(watched) => {
                watched
                    .link
                    .do_send(crate::actors::supervision::InjectPanic);
                true
            }
            None => false,
        }
    }
}

impl Handler<PeerReport> for Supervisor {
    type Result = ();

    fn handle(&mut self, report: PeerReport, ctx: &mut Self::Context) {
        let previous = self.peers.get(&report.node_id).map(|peer| peer.health);
        if previous != Some(report.health) {
            tracing::info!(
                peer = report.node_id,
                health = report.health.as_str(),
                "peer health changed"
            );
        }
        let last_applied_index = report
            .status
            .as_ref()
            .and_then(|status| status.last_applied_index)
            .or_else(|| {
                self.peers
                    .get(&report.node_id)
                    .and_then(|peer| peer.last_applied_index)
            });
        self.peers.insert(
            report.node_id,
            PeerHealth {
                health: report.health,
                consecutive_misses: report.consecutive_misses,
                last_heartbeat_ms: report.last_heartbeat_ms,
                last_applied_index,
            },
        );
        let actions = super::decisions::on_peer_report(
            previous,
            report.health,
            report.consecutive_misses,
            report.process_gone,
        );
        if actions.campaign {
            self.campaign_if_leader_died(report.node_id);
        }
        self.note_clock(report.node_id, report.clock, ctx);
        // A standby that comes up is added as a learner at once, not at the next check.
        if actions.ensure_standbys {
            self.ensure_standbys(ctx);
        }
        if actions.repair {
            self.forget_stopped_retirees();
            self.repair_membership(ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(peer_addr: &str) -> NodeInfo {
        NodeInfo {
            name: format!("node at {peer_addr}"),
            public_url: String::new(),
            control_url: String::new(),
            peer_addr: peer_addr.to_string(),
        }
    }

    fn view() -> MembershipView {
        MembershipView {
            is_leader: true,
            nodes: BTreeMap::from([
                (1, info("127.0.0.1:7001")),
                (2, info("127.0.0.1:7002")),
                (4, info("127.0.0.1:7004")),
            ]),
            voters: BTreeSet::from([1, 2]),
            busy: false,
        }
    }

    #[test]
    fn a_new_node_on_a_free_address_goes_on_to_the_precheck() {
        assert_eq!(
            add_standby_check(&view(), 5, &info("127.0.0.1:7005"), false),
            Ok(None)
        );
    }

    #[test]
    fn the_same_standby_again_is_nothing_to_do() {
        assert_eq!(
            add_standby_check(&view(), 4, &info("127.0.0.1:7004"), false),
            Ok(Some(Added::AlreadyStandby))
        );
    }

    #[test]
    fn an_add_is_refused_off_the_leader_for_a_member_a_taken_address_or_while_busy() {
        let follower = MembershipView {
            is_leader: false,
            ..view()
        };
        assert_eq!(
            add_standby_check(&follower, 5, &info("127.0.0.1:7005"), false),
            Err(NodeChangeError::NotLeader)
        );
        let conflict = |observed: &MembershipView, node_id, addr| match add_standby_check(
            observed,
            node_id,
            &info(addr),
            false,
        ) {
            Err(NodeChangeError::Conflict(reason)) => reason,
            other => panic!("expected a conflict, got {other:?}"),
        };
        assert_eq!(
            conflict(&view(), 2, "127.0.0.1:7002"),
            "node 2 is already a voter of the cluster"
        );
        assert_eq!(
            conflict(&view(), 4, "127.0.0.1:7009"),
            "node 4 is already a standby of the cluster with other addresses"
        );
        assert_eq!(
            conflict(&view(), 5, "127.0.0.1:7002"),
            "peer address 127.0.0.1:7002 already belongs to node 2"
        );
        let busy = MembershipView {
            busy: true,
            ..view()
        };
        assert!(conflict(&busy, 5, "127.0.0.1:7005").contains("already under way"));
    }
}

impl Handler<PromoteStandby> for Supervisor {
    type Result = ResponseActFuture<Self, Result<bool, NodeChangeError>>;

    fn handle(&mut self, promote: PromoteStandby, _ctx: &mut Self::Context) -> Self::Result {
        let node_id = promote.node_id;
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let lag = metrics.last_log_index.unwrap_or(0).saturating_sub(
            metrics
                .replication
                .as_ref()
                .and_then(|replication| replication.get(&node_id).cloned().flatten())
                .map_or(0, |log_id| log_id.index),
        );
        let is_leader = metrics.state == ServerState::Leader;
        if is_leader && membership.voter_ids().any(|id| id == node_id) {
            return Box::pin(actix::fut::ready(Ok(false)));
        }
        let refused = if !is_leader {
            Some(NodeChangeError::NotLeader)
        } else if membership.get_node(&node_id).is_none() {
            Some(NodeChangeError::NotFound(format!(
                "node {node_id} is not a member of the cluster"
            )))
        } else if self.peers.get(&node_id).map(|peer| peer.health) != Some(Health::Up) {
            Some(NodeChangeError::Conflict(format!(
                "node {node_id} is not up"
            )))
        } else if lag > CUTOVER_MAX_LAG {
            Some(NodeChangeError::Conflict(format!(
                "node {node_id} is {lag} entries behind; let it catch up first"
            )))
        } else if self.reconfiguring || self.switching_to.is_some() {
            Some(NodeChangeError::Conflict(
                "a membership change or switchover is already under way".to_string(),
            ))
        } else {
            None
        };
        if let Some(error) = refused {
            return Box::pin(actix::fut::ready(Err(error)));
        }
        self.reconfiguring = true;
        let raft = self.raft.clone();
        tracing::warn!(node_id, "an operator gives a standby a vote");
        Box::pin(
            async move {
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), true)
                    .await
                    .map(|_| true)
                    .map_err(|error| {
                        NodeChangeError::Failed(format!(
                            "node {node_id} did not become a voter: {error}"
                        ))
                    })
            }
            .into_actor(self)
            .map(|result, supervisor, ctx| {
                supervisor.reconfiguring = false;
                supervisor.watch_peers(ctx);
                result
            }),
        )
    }
}

#[cfg(test)]
mod voter_removal_tests {
    use super::*;

    #[test]
    fn a_voter_leaves_only_while_three_remain_unless_forced_and_never_the_leader() {
        let four = BTreeSet::from([1, 2, 3, 4]);
        let three = BTreeSet::from([1, 2, 3]);
        assert_eq!(voter_removal_check(&four, 1, 4, false), Ok(()));
        assert!(
            matches!(voter_removal_check(&three, 1, 3, false), Err(NodeChangeError::Conflict(detail)) if detail.contains("leave 2 voters"))
        );
        assert_eq!(voter_removal_check(&three, 1, 3, true), Ok(()));
        assert!(
            matches!(voter_removal_check(&four, 1, 1, true), Err(NodeChangeError::Conflict(detail)) if detail.contains("leads"))
        );
        assert!(voter_removal_check(&BTreeSet::from([1, 2]), 1, 2, true).is_ok());
        assert!(voter_removal_check(&BTreeSet::from([2]), 1, 2, true).is_err());
    }
}

/// The PeerLinks this Supervisor runs, and how many it started again after a panic.
pub struct CountLinks;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounts {
    pub peer_links: u64,
    pub restarts: u64,
}

impl Message for CountLinks {
    type Result = LinkCounts;
}

impl Handler<CountLinks> for Supervisor {
    type Result = MessageResult<CountLinks>;

    fn handle(&mut self, _: CountLinks, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(LinkCounts {
            peer_links: self.links.len() as u64,
            restarts: self.link_restarts,
        })
    }
}

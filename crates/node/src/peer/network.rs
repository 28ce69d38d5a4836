//! The Raft network between peers. `PeerNetworkFactory` hands openraft one `PeerNetwork`
//! per target node, each a thin adapter over the node's shared `PeerClient` for that
//! node's peer address: every RPC is one authenticated request/response on the peer
//! transport, bounded by the RPC's hard TTL. Failing to reach or hear from the peer
//! (refused, handshake failed, timed out, connection lost, bad frame) is `Unreachable`, so
//! openraft backs off before it retries; an append batch too large for one frame is
//! `PayloadTooLarge`, so openraft splits it; an error the remote Raft answered travels back
//! as a typed `RemoteError`. A node opened without peers (a single voter, tests) has
//! `replication::UnreachableNetworkFactory` instead.

use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, PayloadTooLarge, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::client::{PeerClient, PeerClients, PeerError};
use crate::replication::{NodeInfo, TypeConfig};

/// Hands openraft a `PeerNetwork` per target, over the node's shared peer clients.
#[derive(Clone)]
pub struct PeerNetworkFactory {
    clients: Arc<PeerClients>,
}

impl PeerNetworkFactory {
    pub fn new(clients: Arc<PeerClients>) -> Self {
        PeerNetworkFactory { clients }
    }

    /// The peer clients it hands out (the node forwards requests with the same ones).
    pub fn clients(&self) -> &Arc<PeerClients> {
        &self.clients
    }
}

/// Openraft's connection to one target node.
pub struct PeerNetwork {
    target: u64,
    node: NodeInfo,
    client: Arc<PeerClient>,
}

impl PeerNetwork {
    /// A failure to reach or hear from the peer. `entries` is the size of the append batch
    /// that failed, if it was one.
    fn transport_error<E: std::error::Error>(
        &self,
        error: PeerError,
        entries: Option<usize>,
    ) -> RPCError<u64, NodeInfo, E> {
        match (error, entries) {
            (PeerError::TooLarge { .. }, Some(entries)) if entries > 1 => {
                RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(entries as u64 / 2))
            }
            (error, _) => RPCError::Unreachable(Unreachable::new(&error)),
        }
    }

    /// An error the remote node's Raft answered.
    fn remote_error<E: std::error::Error>(&self, error: E) -> RPCError<u64, NodeInfo, E> {
        RPCError::RemoteError(RemoteError::new_with_node(
            self.target,
            self.node.clone(),
            error,
        ))
    }

    // The error type is openraft's, as `RaftNetwork` returns it.
    #[allow(clippy::result_large_err)]
    fn answer<T, E: std::error::Error>(
        &self,
        result: Result<Result<T, E>, PeerError>,
        entries: Option<usize>,
    ) -> Result<T, RPCError<u64, NodeInfo, E>> {
        match result {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(remote)) => Err(self.remote_error(remote)),
            Err(error) => Err(self.transport_error(error, entries)),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: u64, node: &NodeInfo) -> Self::Network {
        PeerNetwork {
            target,
            node: node.clone(),
            client: self.clients.get(target, &node.peer_addr),
        }
    }
}

/// Times an empty append (a heartbeat, or openraft telling followers the new commit
/// index) lets the node's other tasks run before it is sent. openraft sends the commit
/// index the moment an entry commits, before the entry is applied and its writer
/// answered; on one thread those sends (a wake-up of each follower) would come first.
/// Four rounds of the scheduler take the answer from the state machine through the
/// Proposer and the Supervisor to the HTTP worker. The next entry for that follower
/// waits behind the heartbeat's round trip either way.
const YIELDS_BEFORE_HEARTBEAT: usize = 4;

impl RaftNetwork<TypeConfig> for PeerNetwork {
    /// After an unreachable peer: retry soon (a restarted node is caught up quickly and
    /// does not time out into an election), then back off to one attempt every 500 ms.
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(
            (0u32..).map(|attempt| {
                std::time::Duration::from_millis((50u64 << attempt.min(4)).min(500))
            }),
        )
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        let entries = rpc.entries.len();
        if entries == 0 {
            for _ in 0..YIELDS_BEFORE_HEARTBEAT {
                tokio::task::yield_now().await;
            }
        }
        let result = self.client.append_entries(rpc, option.hard_ttl()).await;
        self.answer(result, Some(entries))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, NodeInfo, RaftError<u64, InstallSnapshotError>>,
    > {
        let result = self.client.install_snapshot(rpc, option.hard_ttl()).await;
        self.answer(result, None)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        let result = self.client.vote(rpc, option.hard_ttl()).await;
        self.answer(result, None)
    }
}

//! The Raft network of a node opened without peers (a single voter, tests):
//! `UnreachableNetworkFactory` hands openraft connections on which every RPC to another
//! node answers `Unreachable`. A node in a cluster uses `peer::PeerNetworkFactory`, over
//! the peer transport.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::{NodeInfo, TypeConfig};

/// Why a peer cannot be reached by a node opened without a peer network.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no peer network: node {target} at {peer_addr:?} cannot be reached")]
pub struct NoPeerTransport {
    pub target: u64,
    pub peer_addr: String,
}

/// Hands out `UnreachableNetwork`s.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnreachableNetworkFactory;

/// A connection to a peer that always fails as `Unreachable`.
#[derive(Debug, Clone)]
pub struct UnreachableNetwork {
    why: NoPeerTransport,
}

impl UnreachableNetwork {
    fn unreachable<E: std::error::Error>(&self) -> RPCError<u64, NodeInfo, E> {
        RPCError::Unreachable(Unreachable::new(&self.why))
    }
}

impl RaftNetworkFactory<TypeConfig> for UnreachableNetworkFactory {
    type Network = UnreachableNetwork;

    async fn new_client(&mut self, target: u64, node: &NodeInfo) -> Self::Network {
        UnreachableNetwork {
            why: NoPeerTransport {
                target,
                peer_addr: node.peer_addr.clone(),
            },
        }
    }
}

impl RaftNetwork<TypeConfig> for UnreachableNetwork {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        Err(self.unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, NodeInfo, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(self.unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        Err(self.unreachable())
    }
}

//! Gavel's peer transport: how nodes talk to each other on the peer listener (intranet
//! zone, port 7080+k). Raft's RPCs (append entries, vote, install snapshot), commands
//! forwarded by a node that does not lead to the one that does, archived auctions for a
//! node that fills its archive after a snapshot (`replication::archive_fetch`), and pings
//! all travel as length-prefixed bincode frames (`protocol`) over TCP connections that
//! first pass a mutual challenge–response handshake keyed by the cluster secret (`auth`)
//! and are authenticated frame by frame afterwards (`channel`). `server` answers them for one
//! node's Raft and its `CommandSink`; `client` calls one peer over a small pool of
//! authenticated connections, and `network::PeerNetworkFactory` hands openraft those
//! clients. With `[tls]` peer settings, every connection is TLS first (`crate::tls`), and
//! the handshake runs inside it.

pub mod auth;
pub mod channel;
pub mod client;
pub mod network;
pub mod protocol;
pub mod server;
#[cfg(test)]
mod tests;

use futures::future::BoxFuture;

use gavel_kernel::Command;

pub use auth::{HandshakeError, CLUSTER_NAME, MIN_SECRET_BYTES};
pub use channel::SecureChannel;
pub use client::{PeerClient, PeerClients, PeerError};
pub use network::{PeerNetwork, PeerNetworkFactory};
pub use protocol::{
    ForwardError, ForwardedCommit, FrameError, NodeArchiveStatus, PeerRequest, PeerResponse,
    PeerStatus, MAX_FRAME_BYTES,
};
pub use server::{PeerServer, PeerServerLimits};

/// The byte stream under a peer connection: plain TCP, or TLS over TCP.
pub trait PeerIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync> PeerIo for T {}

/// A peer connection's stream, whichever it is.
pub type PeerStream = Box<dyn PeerIo>;

/// Where the peer server hands a forwarded command: the node proposes it through its own
/// Raft handle (the Supervisor actor) and answers once it committed, or why it did not.
pub trait CommandSink: Send + Sync + 'static {
    fn propose(
        &self,
        command: Command,
        actor: String,
    ) -> BoxFuture<'static, Result<ForwardedCommit, ForwardError>>;

    /// The leader took this node out of the cluster: stop it. The default (a node that
    /// cannot be stopped this way) does nothing.
    fn retire(&self) {}
}

//! Tests of the peer transport on loopback, every wait bounded. `cluster`: a three-voter
//! Raft cluster over real TCP replicates kernel commands, elects a new leader when its
//! leader stops and commits on it, forwarding included. `server`: a client without the
//! secret gets nothing in; bad frames after a good handshake close their connection and
//! nothing else; a forwarded command reaches the node's `CommandSink` and its answer comes
//! back. `hostile_bytes`: the decoders refuse truncated, oversized and garbage input
//! cleanly. This file holds what they share: test nodes and command sinks.

mod cluster;
mod gone;
mod hostile_bytes;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::VoteRequest;
use openraft::Vote;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::*;
use crate::replication::{self, GavelRaft, NodeInfo, Replication, ReplicationOptions};
use gavel_kernel::{Command, Envelope, Outcome};

const WAIT: Duration = Duration::from_secs(10);
const CALL: Duration = Duration::from_secs(5);

fn secret() -> Arc<[u8]> {
    Arc::from(&b"the gavel test cluster secret"[..])
}

fn register(bidder_id: &str) -> Command {
    Command::RegisterBidder {
        bidder_id: bidder_id.to_string(),
        name: format!("Bidder {bidder_id}"),
        secret_salt: "0123456789abcdef0123456789abcdef".to_string(),
        secret_hash: "ab".repeat(32),
    }
}

/// Proposes forwarded commands through a node's own Raft, as the node's Supervisor does.
struct RaftSink {
    raft: GavelRaft,
}

impl CommandSink for RaftSink {
    fn propose(
        &self,
        command: Command,
        actor: String,
    ) -> BoxFuture<'static, Result<ForwardedCommit, ForwardError>> {
        let raft = self.raft.clone();
        async move {
            let envelope = Envelope {
                now_ms: 1_700_000_000_000,
                seed: 7,
                actor,
                command,
            };
            match raft.client_write(envelope.into()).await {
                Ok(written) => Ok(ForwardedCommit {
                    outcome: written
                        .data
                        .first()
                        .cloned()
                        .unwrap_or_else(|| panic!("one result")),
                    log_index: written.log_id.index,
                }),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                    Err(ForwardError::NotLeader {
                        leader_id: forward.leader_id,
                    })
                }
                Err(error) => Err(ForwardError::Unavailable(error.to_string())),
            }
        }
        .boxed()
    }
}

/// Records what was forwarded and answers a fixed commit.
#[derive(Default)]
struct RecordingSink {
    seen: Mutex<Vec<(Command, String)>>,
}

impl CommandSink for RecordingSink {
    fn propose(
        &self,
        command: Command,
        actor: String,
    ) -> BoxFuture<'static, Result<ForwardedCommit, ForwardError>> {
        self.seen.lock().push((command, actor));
        futures::future::ready(Ok(ForwardedCommit {
            outcome: Ok(Outcome::BidderRegistered),
            log_index: 42,
        }))
        .boxed()
    }
}

/// One node: its replication layer and its peer server on an ephemeral loopback port.
struct TestNode {
    id: u64,
    address: SocketAddr,
    replication: Replication,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TestNode {
    /// Starts node `id`; `peered` gives it the peer network, otherwise it reaches no one.
    async fn start(id: u64, sink: Option<Arc<dyn CommandSink>>, peered: bool) -> TestNode {
        let dir = tempfile::tempdir().expect("a temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let options = ReplicationOptions::with_defaults(id, dir.path().to_path_buf());
        let replication = if peered {
            let clients = Arc::new(PeerClients::new(id, secret()));
            replication::open_with_network(options, PeerNetworkFactory::new(clients)).await
        } else {
            replication::open(options).await
        }
        .expect("open the node");
        let raft = replication.raft.clone();
        let sink = sink.unwrap_or_else(|| Arc::new(RaftSink { raft: raft.clone() }));
        let (shutdown, stop) = watch::channel(false);
        let server = tokio::spawn(PeerServer::serve(listener, raft, sink, secret(), stop));
        TestNode {
            id,
            address,
            replication,
            shutdown,
            server,
            _dir: dir,
        }
    }

    fn info(&self) -> NodeInfo {
        NodeInfo {
            name: format!("n{}", self.id),
            public_url: format!("http://127.0.0.1:{}", 8080 + self.id),
            control_url: format!("http://127.0.0.1:{}", 9080 + self.id),
            peer_addr: self.address.to_string(),
        }
    }

    fn client(&self, from_node_id: u64, secret: Arc<[u8]>) -> PeerClient {
        PeerClient::new(self.id, self.address.to_string(), from_node_id, secret)
    }

    async fn wait_applied(&self, index: u64) {
        self.replication
            .raft
            .wait(Some(WAIT))
            .applied_index_at_least(Some(index), "entries applied")
            .await
            .unwrap_or_else(|error| panic!("node {} did not apply {index}: {error}", self.id));
    }

    fn has_bidder(&self, bidder_id: &str) -> bool {
        self.replication
            .state
            .read()
            .kernel
            .bidders
            .contains_key(bidder_id)
    }

    async fn stop(self) {
        self.shutdown.send_replace(true);
        tokio::time::timeout(WAIT, self.server)
            .await
            .expect("the peer server stops")
            .expect("the peer server task");
        self.replication.shutdown().await.expect("raft shuts down");
    }
}

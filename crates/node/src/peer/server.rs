//! The peer listener's server. It accepts TCP connections from other nodes, runs the
//! handshake on each (bounded in time, and in how many may be unauthenticated at once),
//! then answers one request at a time per connection: Raft's RPCs go to this node's Raft,
//! forwarded commands to its `CommandSink`, pings are answered from Raft's metrics. No
//! request frame is read before the handshake succeeded; a bad frame closes its connection
//! and nothing else. It runs until `shutdown` turns true (or its sender is dropped), then
//! closes every connection.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::auth::{server_handshake, HandshakeError};
use super::protocol::{FrameError, NodeArchiveStatus, PeerRequest, PeerResponse, PeerStatus};
use super::{CommandSink, PeerStream};
use crate::replication::archive::ArchiveStore;
use crate::replication::archive_fetch::CatchUp;
use crate::replication::GavelRaft;

/// How much one peer server takes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerServerLimits {
    /// A connection that has not finished its handshake by then is closed.
    pub handshake_timeout: Duration,
    /// Connections from a member's address still in their handshake; more are closed at
    /// once.
    pub max_handshaking: usize,
    /// Connections from any other address still in their handshake, counted apart: a
    /// stranger's idle sockets cannot take the members' slots.
    pub max_stranger_handshaking: usize,
    /// Connections in all; more are closed at once.
    pub max_connections: usize,
    /// An authenticated connection that sends no request for this long is closed (clients
    /// drop pooled connections well before: `client::MAX_IDLE`).
    pub idle_timeout: Duration,
}

impl Default for PeerServerLimits {
    /// 2 s handshakes, 32 of them at once from members and 8 from other addresses, 256
    /// connections, 120 s idle.
    fn default() -> Self {
        PeerServerLimits {
            handshake_timeout: Duration::from_secs(2),
            max_handshaking: 32,
            max_stranger_handshaking: 8,
            max_connections: 256,
            idle_timeout: Duration::from_secs(120),
        }
    }
}

/// Pause after a failed `accept` (out of file descriptors, say) before the next one.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Answers other nodes' requests for this node.
pub struct PeerServer {
    node_id: u64,
    raft: GavelRaft,
    sink: Arc<dyn CommandSink>,
    secret: Arc<[u8]>,
    limits: PeerServerLimits,
    /// TLS first on every connection, when the cluster uses it.
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Set while this node rejoins after `gavel node reset`: it grants no vote and is
    /// not let campaign (`replication::reset`).
    votes_withheld: Arc<std::sync::atomic::AtomicBool>,
    /// This node's clock check: a node whose clock is off keeps its elections off.
    clock: Arc<crate::clock::ClockStatus>,
    /// The addresses of the configured members; with those of the Raft membership, the
    /// addresses whose connections get the members' handshake slots.
    member_addresses: Vec<IpAddr>,
    /// The node's archive, for peers that fill theirs (`replication::archive_fetch`).
    archive: Option<ArchiveStore>,
}

impl PeerServer {
    /// A server for `raft` with the default limits.
    pub fn new(raft: GavelRaft, sink: Arc<dyn CommandSink>, secret: Arc<[u8]>) -> Self {
        let node_id = raft.metrics().borrow().id;
        PeerServer {
            node_id,
            raft,
            sink,
            secret,
            limits: PeerServerLimits::default(),
            tls: None,
            votes_withheld: Arc::default(),
            clock: Arc::default(),
            member_addresses: Vec::new(),
            archive: None,
        }
    }

    /// Gives the configured members' addresses the members' handshake slots.
    pub fn with_member_addresses(mut self, addresses: Vec<IpAddr>) -> Self {
        self.member_addresses = addresses.into_iter().map(|ip| ip.to_canonical()).collect();
        self
    }

    /// Whether `remote` is the address of a configured member or of a node in the Raft
    /// membership (a standby added while the cluster ran included).
    fn is_member_address(&self, remote: IpAddr) -> bool {
        let remote = remote.to_canonical();
        if self.member_addresses.contains(&remote) {
            return true;
        }
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let found = membership.nodes().any(|(_, info)| {
            info.peer_addr
                .parse::<SocketAddr>()
                .is_ok_and(|address| address.ip().to_canonical() == remote)
        });
        found
    }

    /// Keeps elections off while `clock` says this node's clock is off.
    pub fn with_clock_status(mut self, clock: Arc<crate::clock::ClockStatus>) -> Self {
        self.clock = clock;
        self
    }

    /// Serves archive chunks and status from `archive`.
    pub fn with_archive(mut self, archive: ArchiveStore) -> Self {
        self.archive = Some(archive);
        self
    }

    /// Grants no vote and refuses to allow elections while `withheld` is set.
    pub fn withholding_votes(mut self, withheld: Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.votes_withheld = withheld;
        self
    }

    fn withholding_votes_now(&self) -> bool {
        self.votes_withheld
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Accepts only TLS connections, through `acceptor`, before the handshake.
    pub fn with_tls(mut self, acceptor: Option<tokio_rustls::TlsAcceptor>) -> Self {
        self.tls = acceptor;
        self
    }

    pub fn with_limits(mut self, limits: PeerServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves `listener` with the default limits until `shutdown` turns true.
    pub async fn serve(
        listener: TcpListener,
        raft: GavelRaft,
        sink: Arc<dyn CommandSink>,
        secret: Arc<[u8]>,
        shutdown: watch::Receiver<bool>,
    ) {
        PeerServer::new(raft, sink, secret)
            .run(listener, shutdown)
            .await
    }

    /// Serves `listener` until `shutdown` turns true or its sender is dropped, then closes
    /// every connection (requests under way are abandoned; their clients time out).
    pub async fn run(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let server = Arc::new(self);
        let handshaking = Arc::new(Semaphore::new(server.limits.max_handshaking));
        let strangers = Arc::new(Semaphore::new(server.limits.max_stranger_handshaking));
        let connections = Arc::new(Semaphore::new(server.limits.max_connections));
        let mut tasks = JoinSet::new();
        tracing::info!(node_id = server.node_id, address = ?listener.local_addr().ok(), "peer listener started");
        while !*shutdown.borrow() {
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                Some(finished) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(error) = finished {
                        tracing::error!(%error, "a peer connection task failed");
                    }
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, remote)) => {
                        let member = server.is_member_address(remote.ip());
                        let slots = if member { &handshaking } else { &strangers };
                        let permits = connections
                            .clone()
                            .try_acquire_owned()
                            .and_then(|connection| Ok((connection, slots.clone().try_acquire_owned()?)));
                        let Ok((connection, handshake)) = permits else {
                            // A stranger's flood is not worth a warning per socket.
                            if member {
                                tracing::warn!(%remote, "too many peer connections; closing this one");
                            } else {
                                tracing::debug!(%remote, "too many connections from addresses that are not members; closing this one");
                            }
                            continue;
                        };
                        tasks.spawn(server.clone().connection(stream, remote, handshake, connection));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "peer listener cannot accept");
                        tokio::time::sleep(ACCEPT_RETRY).await;
                    }
                },
            }
        }
        tasks.shutdown().await;
        tracing::info!(node_id = server.node_id, "peer listener stopped");
    }

    /// One connection: the handshake, then requests and responses until it closes.
    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        remote: SocketAddr,
        handshake: OwnedSemaphorePermit,
        _connection: OwnedSemaphorePermit,
    ) {
        // Requests and responses are small and latency-bound: no Nagle delay.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%remote, %error, "cannot set TCP_NODELAY");
        }
        // TLS (if any) and the handshake share one time limit.
        let handshake_result = tokio::time::timeout(self.limits.handshake_timeout, async {
            let stream: PeerStream = match &self.tls {
                None => Box::new(stream),
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => Box::new(tls),
                    Err(error) => return Err(HandshakeError::Frame(FrameError::Io(error))),
                },
            };
            server_handshake(stream, self.node_id, &self.secret).await
        })
        .await;
        drop(handshake);
        let mut channel = match handshake_result {
            Ok(Ok(channel)) => channel,
            Ok(Err(error)) => {
                tracing::warn!(%remote, %error, "peer handshake failed; closing");
                return;
            }
            Err(_) => {
                tracing::warn!(%remote, "peer handshake timed out; closing");
                return;
            }
        };
        let peer = channel.peer_node_id();
        tracing::debug!(%remote, peer, "peer connection authenticated");
        loop {
            let request = tokio::time::timeout(
                self.limits.idle_timeout,
                channel.recv::<PeerRequest>("peer request"),
            )
            .await;
            let request = match request {
                Ok(Ok(request)) => request,
                Ok(Err(FrameError::Closed)) => return,
                Ok(Err(error)) => {
                    tracing::warn!(%remote, peer, %error, "bad frame from peer; closing");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, peer, "idle peer connection; closing");
                    return;
                }
            };
            let response = self.dispatch(request, peer).await;
            if let Err(error) = channel.send("peer response", &response).await {
                tracing::warn!(%remote, peer, %error, "cannot answer peer; closing");
                return;
            }
        }
    }

    async fn dispatch(&self, request: PeerRequest, peer: u64) -> PeerResponse {
        match request {
            PeerRequest::AppendEntries(rpc) => {
                PeerResponse::AppendEntries(self.raft.append_entries(rpc).await)
            }
            PeerRequest::Vote(rpc) => {
                let mut answer = self.raft.vote(rpc).await;
                if let (Ok(response), true) = (&mut answer, self.withholding_votes_now()) {
                    // Raft keeps track of the term; the candidate gets no vote from a
                    // node that may have forgotten entries it acknowledged.
                    response.vote_granted = false;
                }
                PeerResponse::Vote(answer)
            }
            PeerRequest::InstallSnapshot(rpc) => {
                PeerResponse::InstallSnapshot(self.raft.install_snapshot(rpc).await)
            }
            PeerRequest::Forward { command, actor } => {
                PeerResponse::Forward(self.sink.propose(command, actor).await)
            }
            PeerRequest::Ping { from_node_id } => {
                tracing::trace!(from_node_id, "ping");
                PeerResponse::Pong(self.status())
            }
            PeerRequest::AllowElection { enabled: true } if self.withholding_votes_now() => {
                tracing::info!("elections stay off while this node rejoins as a standby");
                PeerResponse::Done
            }
            PeerRequest::AllowElection { enabled: true } if self.clock.refuses_to_lead() => {
                tracing::info!(
                    "elections stay off while this node's clock is off the voters' median"
                );
                PeerResponse::Done
            }
            PeerRequest::AllowElection { enabled } => {
                tracing::info!(enabled, "elections allowed by the leader's switchover");
                self.raft.runtime_config().elect(enabled);
                PeerResponse::Done
            }
            PeerRequest::Retire { node_id } => self.retire(node_id, peer),
            PeerRequest::ArchiveChunk { range, limit } => self.archive_chunk(range, limit).await,
            PeerRequest::ArchiveStatus => self.archive_status().await,
        }
    }

    /// Archived records for a peer that fills its archive; refused while this node's own
    /// archive is catching up (it may lack them too) or for a range that makes no sense.
    async fn archive_chunk(&self, range: CatchUp, limit: u32) -> PeerResponse {
        let Some(archive) = self.archive.clone() else {
            return PeerResponse::Refused("this node serves no archive".to_string());
        };
        let resume_in_range = range
            .resume_after
            .as_ref()
            .is_none_or(|(index, _)| *index > range.after_index && *index <= range.up_to_index);
        if range.after_index >= range.up_to_index || !resume_in_range {
            return PeerResponse::Refused(format!("not a range of log indexes: {range:?}"));
        }
        let answer = tokio::task::spawn_blocking(move || {
            if archive.catch_up()?.is_some() {
                return Ok(Err("this node's archive is catching up itself".to_string()));
            }
            archive.chunk(&range, limit).map(Ok)
        })
        .await;
        match answer {
            Ok(Ok(Ok(chunk))) => PeerResponse::ArchiveChunk(chunk),
            Ok(Ok(Err(reason))) => PeerResponse::Refused(reason),
            Ok(Err(error)) => PeerResponse::Refused(format!("cannot read the archive: {error}")),
            Err(error) => PeerResponse::Refused(format!("cannot read the archive: {error}")),
        }
    }

    async fn archive_status(&self) -> PeerResponse {
        let Some(archive) = self.archive.clone() else {
            return PeerResponse::Refused("this node serves no archive".to_string());
        };
        // Applied index first: a catch-up noted after it was read is still seen below.
        let last_applied_index = self
            .raft
            .metrics()
            .borrow()
            .last_applied
            .map_or(0, |log_id| log_id.index);
        match tokio::task::spawn_blocking(move || archive.status()).await {
            Ok(Ok(archive)) => PeerResponse::ArchiveStatus(NodeArchiveStatus {
                last_applied_index,
                archive,
            }),
            Ok(Err(error)) => PeerResponse::Refused(format!("cannot read the archive: {error}")),
            Err(error) => PeerResponse::Refused(format!("cannot read the archive: {error}")),
        }
    }

    /// Stops this node if it is the one named, and the request comes from the leader it
    /// follows or it is not a voter in its own view (a node taken out of the membership
    /// may never receive the entry that took it out: the leader stops replicating to it).
    fn retire(&self, node_id: u64, from_peer: u64) -> PeerResponse {
        if node_id != self.node_id {
            return PeerResponse::Refused(format!(
                "this is node {}, not node {node_id}",
                self.node_id
            ));
        }
        let metrics = self.raft.metrics().borrow().clone();
        let is_voter = metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|voter| voter == node_id);
        if is_voter && metrics.current_leader != Some(from_peer) {
            return PeerResponse::Refused(format!(
                "node {node_id} is a voter and node {from_peer} is not its leader"
            ));
        }
        tracing::warn!(node_id, "taken out of the cluster by the leader; stopping");
        self.sink.retire();
        PeerResponse::Done
    }

    /// This node's view of the cluster, from Raft's metrics.
    fn status(&self) -> PeerStatus {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        PeerStatus {
            node_id: self.node_id,
            term: metrics.current_term,
            leader_id: metrics.current_leader,
            last_applied_index: metrics.last_applied.map(|log_id| log_id.index),
            server_time_ms: crate::clock::wall_clock_ms(),
        }
    }
}

//! The client side of the peer transport. A `PeerClient` calls one peer node: it takes an
//! idle authenticated connection from its small pool or dials and handshakes a new one,
//! sends one request, waits for its response, and puts the connection back only after a
//! whole successful exchange (any error drops it). Each call is bounded by its own
//! timeout, dialing and handshaking by `CONNECT_TIMEOUT`. `PeerClients` keeps one client
//! per peer node and replaces it when the node's address changes; openraft's network and
//! the node's request forwarding share it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::Mutex;
use tokio::net::TcpStream;

use super::auth::{client_handshake, HandshakeError};
use super::channel::{SecureChannel, TAG_BYTES};
use super::protocol::{
    encode, ForwardError, ForwardedCommit, FrameError, NodeArchiveStatus, PeerRequest,
    PeerResponse, PeerStatus, MAX_FRAME_BYTES,
};
use super::PeerStream;
use crate::replication::archive_fetch::{ArchiveChunk, CatchUp, ChunkSource};
use crate::replication::TypeConfig;
use gavel_kernel::Command;

/// Longest time to dial a peer and finish the handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A pooled connection idle longer than this is dropped rather than reused (the server
/// closes idle connections after `PeerServerLimits::idle_timeout`, 120 s by default).
pub const MAX_IDLE: Duration = Duration::from_secs(30);
/// Idle connections kept per peer; openraft sends to a peer on one or two streams.
pub const MAX_POOLED: usize = 4;

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot connect to node {target} at {address}: {source}")]
    Connect {
        target: u64,
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("node {target} at {address}: no {what} within {after:?}")]
    Timeout {
        target: u64,
        address: String,
        what: &'static str,
        after: Duration,
    },
    #[error("handshake with node {target} at {address} failed: {source}")]
    Handshake {
        target: u64,
        address: String,
        #[source]
        source: HandshakeError,
    },
    #[error("TLS with node {target} at {address} failed: {detail}")]
    Tls {
        target: u64,
        address: String,
        detail: String,
    },
    #[error("peer connection I/O failed: {0}")]
    Io(#[source] std::io::Error),
    #[error("bad frame from or for a peer: {0}")]
    Decode(#[source] FrameError),
    /// The request does not fit in a frame (an append batch to split, say).
    #[error("a request of {length} bytes does not fit in a frame of {max} bytes")]
    TooLarge { length: u64, max: u32 },
    /// The peer answered something other than what was asked.
    #[error("the peer answered wrongly: {0}")]
    Remote(String),
}

impl PeerError {
    /// Whether the failure says the peer's process is gone: its port refused the
    /// connection, or it closed or reset one. A peer that is alive but slow (paused,
    /// overloaded, behind a lossy link) times out instead.
    pub fn peer_process_gone(&self) -> bool {
        use std::io::ErrorKind;
        let gone = |kind: ErrorKind| {
            matches!(
                kind,
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            )
        };
        match self {
            PeerError::Connect { source, .. } => source.kind() == ErrorKind::ConnectionRefused,
            PeerError::Io(source) => gone(source.kind()),
            PeerError::Handshake {
                source: HandshakeError::Frame(frame),
                ..
            } => match frame {
                FrameError::Closed => true,
                FrameError::Io(source) => gone(source.kind()),
                _ => false,
            },
            _ => false,
        }
    }
}

impl From<FrameError> for PeerError {
    fn from(error: FrameError) -> Self {
        match error {
            FrameError::Closed => PeerError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the peer closed the connection",
            )),
            FrameError::Io(error) => PeerError::Io(error),
            FrameError::TooLarge { length, max } => PeerError::TooLarge { length, max },
            other => PeerError::Decode(other),
        }
    }
}

/// The authenticated connections a client uses.
type Connection = SecureChannel<PeerStream>;

/// Calls one peer node.
pub struct PeerClient {
    target: u64,
    address: String,
    self_node_id: u64,
    secret: Arc<[u8]>,
    /// TLS under the handshake, when the cluster uses it.
    tls: Option<tokio_rustls::TlsConnector>,
    /// Idle connections with the time each was put back; most recent last.
    idle: Mutex<Vec<(Connection, Instant)>>,
}

impl PeerClient {
    /// A client of node `target` at `address` (`host:port`), calling as `self_node_id`.
    pub fn new(target: u64, address: String, self_node_id: u64, secret: Arc<[u8]>) -> Self {
        PeerClient {
            target,
            address,
            self_node_id,
            secret,
            tls: None,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Dials every connection with TLS first (peer certificates checked by `connector`).
    pub fn with_tls(mut self, connector: Option<tokio_rustls::TlsConnector>) -> Self {
        self.tls = connector;
        self
    }

    pub fn target(&self) -> u64 {
        self.target
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `request` and waits for its response, all within `timeout`.
    pub async fn call(
        &self,
        request: PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, PeerError> {
        let what = request.kind();
        let idempotent = request.is_idempotent();
        let payload = encode("peer request", &request)?;
        drop(request);
        if payload.len() + TAG_BYTES > MAX_FRAME_BYTES as usize {
            return Err(PeerError::TooLarge {
                length: payload.len() as u64,
                max: MAX_FRAME_BYTES,
            });
        }
        tokio::time::timeout(timeout, self.exchange(&payload, idempotent))
            .await
            .map_err(|_| self.timeout(what, timeout))?
    }

    /// One exchange on a pooled connection, or on a new one. A pooled connection the peer
    /// has closed meanwhile fails at once; an idempotent request is then sent again on a
    /// fresh connection, a forwarded command is not (it may have been received).
    async fn exchange(&self, payload: &[u8], idempotent: bool) -> Result<PeerResponse, PeerError> {
        if let Some(mut connection) = self.take_idle() {
            match round_trip(&mut connection, payload).await {
                Ok(response) => {
                    self.put_back(connection);
                    return Ok(response);
                }
                Err(PeerError::Io(error)) if idempotent => {
                    tracing::debug!(target = self.target, %error, "pooled peer connection failed; redialing");
                }
                Err(error) => return Err(error),
            }
        }
        let mut connection = self.dial().await?;
        let response = round_trip(&mut connection, payload).await?;
        self.put_back(connection);
        Ok(response)
    }

    async fn dial(&self) -> Result<Connection, PeerError> {
        let connecting = async {
            let stream =
                TcpStream::connect(&self.address)
                    .await
                    .map_err(|source| PeerError::Connect {
                        target: self.target,
                        address: self.address.clone(),
                        source,
                    })?;
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(target = self.target, %error, "cannot set TCP_NODELAY");
            }
            let stream: PeerStream = match &self.tls {
                None => Box::new(stream),
                Some(connector) => Box::new(self.tls_connect(connector, stream).await?),
            };
            client_handshake(stream, self.self_node_id, Some(self.target), &self.secret)
                .await
                .map_err(|source| PeerError::Handshake {
                    target: self.target,
                    address: self.address.clone(),
                    source,
                })
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| self.timeout("connection", CONNECT_TIMEOUT))?
    }

    async fn tls_connect(
        &self,
        connector: &tokio_rustls::TlsConnector,
        stream: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, PeerError> {
        let tls_failed = |detail: String| PeerError::Tls {
            target: self.target,
            address: self.address.clone(),
            detail,
        };
        let name = crate::tls::peer_server_name(&self.address).map_err(tls_failed)?;
        connector
            .connect(name, stream)
            .await
            .map_err(|error| tls_failed(error.to_string()))
    }

    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock();
        idle.retain(|(_, since)| since.elapsed() < MAX_IDLE);
        idle.pop().map(|(connection, _)| connection)
    }

    fn put_back(&self, connection: Connection) {
        let mut idle = self.idle.lock();
        if idle.len() < MAX_POOLED {
            idle.push((connection, Instant::now()));
        }
    }

    fn timeout(&self, what: &'static str, after: Duration) -> PeerError {
        PeerError::Timeout {
            target: self.target,
            address: self.address.clone(),
            what,
            after,
        }
    }

    pub async fn append_entries(
        &self,
        rpc: AppendEntriesRequest<TypeConfig>,
        timeout: Duration,
    ) -> Result<Result<AppendEntriesResponse<u64>, RaftError<u64>>, PeerError> {
        match self.call(PeerRequest::AppendEntries(rpc), timeout).await? {
            PeerResponse::AppendEntries(answer) => Ok(answer),
            other => Err(unexpected("append_entries", &other)),
        }
    }

    pub async fn vote(
        &self,
        rpc: VoteRequest<u64>,
        timeout: Duration,
    ) -> Result<Result<VoteResponse<u64>, RaftError<u64>>, PeerError> {
        match self.call(PeerRequest::Vote(rpc), timeout).await? {
            PeerResponse::Vote(answer) => Ok(answer),
            other => Err(unexpected("vote", &other)),
        }
    }

    #[allow(clippy::type_complexity)]
    pub async fn install_snapshot(
        &self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        timeout: Duration,
    ) -> Result<Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>, PeerError>
    {
        match self
            .call(PeerRequest::InstallSnapshot(rpc), timeout)
            .await?
        {
            PeerResponse::InstallSnapshot(answer) => Ok(answer),
            other => Err(unexpected("install_snapshot", &other)),
        }
    }

    /// Asks the peer (the leader, presumably) to propose `command` on behalf of `actor`.
    pub async fn forward(
        &self,
        command: Command,
        actor: String,
        timeout: Duration,
    ) -> Result<Result<ForwardedCommit, ForwardError>, PeerError> {
        match self
            .call(PeerRequest::Forward { command, actor }, timeout)
            .await?
        {
            PeerResponse::Forward(answer) => Ok(answer),
            other => Err(unexpected("forward", &other)),
        }
    }

    /// Tells the peer whether it may start elections (a manual switchover).
    pub async fn allow_election(&self, enabled: bool, timeout: Duration) -> Result<(), PeerError> {
        match self
            .call(PeerRequest::AllowElection { enabled }, timeout)
            .await?
        {
            PeerResponse::Done => Ok(()),
            other => Err(unexpected("allow_election", &other)),
        }
    }

    /// Tells node `node_id` (this client's target) that it left the cluster and stops.
    pub async fn retire(&self, node_id: u64, timeout: Duration) -> Result<(), PeerError> {
        match self.call(PeerRequest::Retire { node_id }, timeout).await? {
            PeerResponse::Done => Ok(()),
            PeerResponse::Refused(reason) => Err(PeerError::Remote(reason)),
            other => Err(unexpected("retire", &other)),
        }
    }

    /// Asks the peer for archived records in `range` (see `replication::archive_fetch`);
    /// `Err` holds the peer's reason for refusing.
    pub async fn archive_chunk(
        &self,
        range: CatchUp,
        limit: u32,
        timeout: Duration,
    ) -> Result<Result<ArchiveChunk, String>, PeerError> {
        match self
            .call(PeerRequest::ArchiveChunk { range, limit }, timeout)
            .await?
        {
            PeerResponse::ArchiveChunk(chunk) => Ok(Ok(chunk)),
            PeerResponse::Refused(reason) => Ok(Err(reason)),
            other => Err(unexpected("archive_chunk", &other)),
        }
    }

    /// Asks the peer how complete its archive is.
    pub async fn archive_status(&self, timeout: Duration) -> Result<NodeArchiveStatus, PeerError> {
        match self.call(PeerRequest::ArchiveStatus, timeout).await? {
            PeerResponse::ArchiveStatus(status) => Ok(status),
            PeerResponse::Refused(reason) => Err(PeerError::Remote(reason)),
            other => Err(unexpected("archive_status", &other)),
        }
    }

    pub async fn ping(&self, timeout: Duration) -> Result<PeerStatus, PeerError> {
        let request = PeerRequest::Ping {
            from_node_id: self.self_node_id,
        };
        match self.call(request, timeout).await? {
            PeerResponse::Pong(status) => Ok(status),
            other => Err(unexpected("ping", &other)),
        }
    }
}

async fn round_trip(
    connection: &mut Connection,
    payload: &[u8],
) -> Result<PeerResponse, PeerError> {
    connection.send_payload(payload).await?;
    Ok(connection.recv("peer response").await?)
}

fn unexpected(asked: &str, answered: &PeerResponse) -> PeerError {
    PeerError::Remote(format!("asked {asked}, answered {}", answered.kind()))
}

/// One `PeerClient` per peer node, shared by everything on this node that calls peers.
pub struct PeerClients {
    self_node_id: u64,
    secret: Arc<[u8]>,
    tls: Option<tokio_rustls::TlsConnector>,
    clients: Mutex<HashMap<u64, Arc<PeerClient>>>,
}

impl PeerClients {
    pub fn new(self_node_id: u64, secret: Arc<[u8]>) -> Self {
        PeerClients {
            self_node_id,
            secret,
            tls: None,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Every client dials with TLS first (see `PeerClient::with_tls`).
    pub fn with_tls(mut self, connector: Option<tokio_rustls::TlsConnector>) -> Self {
        self.tls = connector;
        self
    }

    pub fn self_node_id(&self) -> u64 {
        self.self_node_id
    }

    /// The client of `node_id` at `peer_addr`; a client of the node at another address is
    /// replaced (its pooled connections close when its last user drops it).
    pub fn get(&self, node_id: u64, peer_addr: &str) -> Arc<PeerClient> {
        let mut clients = self.clients.lock();
        match clients.get(&node_id) {
            Some(client) if client.address == peer_addr => client.clone(),
            _ => {
                let client = Arc::new(
                    PeerClient::new(
                        node_id,
                        peer_addr.to_string(),
                        self.self_node_id,
                        self.secret.clone(),
                    )
                    .with_tls(self.tls.clone()),
                );
                clients.insert(node_id, client.clone());
                client
            }
        }
    }

    /// Forgets the client of a node that left the cluster.
    pub fn remove(&self, node_id: u64) -> Option<Arc<PeerClient>> {
        self.clients.lock().remove(&node_id)
    }
}

impl ChunkSource for PeerClients {
    fn archive_chunk<'a>(
        &'a self,
        peer: u64,
        address: &'a str,
        range: CatchUp,
        limit: u32,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ArchiveChunk, String>> {
        let client = self.get(peer, address);
        Box::pin(async move {
            client
                .archive_chunk(range, limit, timeout)
                .await
                .map_err(|error| error.to_string())?
        })
    }
}

//! The peer protocol's messages and its framing. Every message travels as one frame,
//! `[u32 big-endian length][bincode payload]`; once the handshake (`auth`) has succeeded,
//! each payload is followed by a 32-byte HMAC tag and the length covers both. The length is
//! checked against a maximum before anything is allocated, decoding is strict (fixed-width
//! integers, no trailing bytes, a byte limit), and every failure is a `FrameError`: the
//! connection that carried a bad frame is closed, nothing panics. `channel` adds the tags.

use bincode::Options;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::replication::archive_fetch::{ArchiveChunk, ArchiveStatus, CatchUp};
use crate::replication::TypeConfig;
use gavel_kernel::{Command, Outcome, Rejection};

/// Largest frame either side sends or accepts once authenticated (a snapshot chunk is
/// 3 MiB by default, an append batch rarely more than a few hundred KiB).
pub const MAX_FRAME_BYTES: u32 = 16 * 1024 * 1024;

/// Largest frame accepted before the handshake succeeded: handshake messages are tiny, so
/// an unauthenticated peer cannot make a node allocate more than this.
pub const MAX_HANDSHAKE_FRAME_BYTES: u32 = 1024;

/// What one node asks another, one request at a time per connection.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A command received by a node that does not lead, for the leader to propose.
    /// `actor` is who asked (an operator, a bidder id, `system`).
    Forward {
        command: Command,
        actor: String,
    },
    Ping {
        from_node_id: u64,
    },
    /// Sent by the leader during a manual switchover: a voter that is not the chosen
    /// successor stops starting elections (`enabled: false`) until told again.
    AllowElection {
        enabled: bool,
    },
    /// Sent by the leader to a standby it has taken out of the cluster (`node remove`):
    /// the node named stops. A node that is a voter in its own view refuses.
    Retire {
        node_id: u64,
    },
    /// Archived records a node lacks after installing a snapshot (`archive_fetch`):
    /// those archived after `after_index` up to `up_to_index`, past `resume_after`, at
    /// most `limit` of them.
    ArchiveChunk {
        range: CatchUp,
        limit: u32,
    },
    /// Whether the node's archive is complete, how many records it holds, their digest.
    ArchiveStatus,
}

impl PeerRequest {
    /// The request's kind, for logs and errors (never its content).
    pub fn kind(&self) -> &'static str {
        match self {
            PeerRequest::AppendEntries(_) => "append_entries",
            PeerRequest::Vote(_) => "vote",
            PeerRequest::InstallSnapshot(_) => "install_snapshot",
            PeerRequest::Forward { .. } => "forward",
            PeerRequest::Ping { .. } => "ping",
            PeerRequest::AllowElection { .. } => "allow_election",
            PeerRequest::Retire { .. } => "retire",
            PeerRequest::ArchiveChunk { .. } => "archive_chunk",
            PeerRequest::ArchiveStatus => "archive_status",
        }
    }

    /// Whether sending it twice is harmless: Raft's RPCs and pings are, a forwarded
    /// command may not be (it could commit twice).
    pub fn is_idempotent(&self) -> bool {
        !matches!(self, PeerRequest::Forward { .. })
    }
}

/// The answer to a `PeerRequest`, of the same kind. Raft's own errors travel typed, so the
/// caller hands openraft exactly what the remote node's Raft answered.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    Forward(Result<ForwardedCommit, ForwardError>),
    Pong(PeerStatus),
    /// The request was carried out.
    Done,
    /// The request was understood and refused, for the reason given.
    Refused(String),
    ArchiveChunk(ArchiveChunk),
    ArchiveStatus(NodeArchiveStatus),
}

impl PeerResponse {
    /// The response's kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerResponse::AppendEntries(_) => "append_entries",
            PeerResponse::Vote(_) => "vote",
            PeerResponse::InstallSnapshot(_) => "install_snapshot",
            PeerResponse::Forward(_) => "forward",
            PeerResponse::Pong(_) => "pong",
            PeerResponse::Done => "done",
            PeerResponse::Refused(_) => "refused",
            PeerResponse::ArchiveChunk(_) => "archive_chunk",
            PeerResponse::ArchiveStatus(_) => "archive_status",
        }
    }
}

/// A forwarded command, committed by the leader: what the kernel answered and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedCommit {
    pub outcome: Result<Outcome, Rejection>,
    pub log_index: u64,
}

/// Why a forwarded command was not committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardError {
    /// The node asked does not lead (any more); `leader_id` is the leader it knows of.
    #[error("node is not the leader (leader: {leader_id:?})")]
    NotLeader { leader_id: Option<u64> },
    /// The leader could not propose it now (stopping, overloaded, storage failure).
    #[error("the command could not be proposed: {0}")]
    Unavailable(String),
}

/// What a node says of its archive, and how far it has applied the log (a node that has
/// not yet installed the snapshot it is being sent has nothing to catch up on yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeArchiveStatus {
    pub last_applied_index: u64,
    pub archive: ArchiveStatus,
}

/// How a node sees the cluster, answered to a ping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub node_id: u64,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub last_applied_index: Option<u64>,
    /// The answering node's wall clock, for spotting clock skew between nodes.
    pub server_time_ms: u64,
}

/// A frame that could not be read, written or trusted.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The other side closed the connection between two frames.
    #[error("the connection was closed")]
    Closed,
    #[error("frame of {length} bytes exceeds the limit of {max} bytes")]
    TooLarge { length: u64, max: u32 },
    #[error("peer connection I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot decode {what}: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: bincode::Error,
    },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: bincode::Error,
    },
    /// An authenticated frame whose tag does not match: forged, replayed or corrupted.
    #[error("frame authentication failed")]
    Forged,
}

fn codec() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
        .with_limit(u64::from(MAX_FRAME_BYTES))
}

/// Encodes `value` as a frame payload; `what` names it in the error.
pub fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, FrameError> {
    codec()
        .serialize(value)
        .map_err(|source| FrameError::Encode { what, source })
}

/// Decodes a frame payload strictly; `what` names it in the error.
pub fn decode<T: DeserializeOwned>(what: &'static str, payload: &[u8]) -> Result<T, FrameError> {
    codec()
        .deserialize(payload)
        .map_err(|source| FrameError::Decode { what, source })
}

/// Writes one frame made of `parts` (payload, then tag if any) and flushes it.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    parts: &[&[u8]],
    max: u32,
) -> Result<(), FrameError> {
    let length: usize = parts.iter().map(|part| part.len()).sum();
    let length = u32::try_from(length)
        .ok()
        .filter(|length| *length <= max)
        .ok_or(FrameError::TooLarge {
            length: length as u64,
            max,
        })?;
    let mut frame = Vec::with_capacity(4 + length as usize);
    frame.extend_from_slice(&length.to_be_bytes());
    for part in parts {
        frame.extend_from_slice(part);
    }
    writer.write_all(&frame).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads one frame's bytes, refusing a length over `max` before allocating. A connection
/// closed before the first byte of a frame is `Closed`; closed inside a frame, `Io`.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: u32,
) -> Result<Vec<u8>, FrameError> {
    let mut prefix = [0u8; 4];
    let first = reader.read(&mut prefix).await?;
    if first == 0 {
        return Err(FrameError::Closed);
    }
    reader.read_exact(&mut prefix[first..]).await?;
    let length = u32::from_be_bytes(prefix);
    if length > max {
        return Err(FrameError::TooLarge {
            length: u64::from(length),
            max,
        });
    }
    // Memory grows with the bytes that arrive, not with the length announced: a peer that
    // announces the maximum and sends nothing costs a few KiB, not 16 MiB.
    let length = length as usize;
    let mut frame = Vec::new();
    while frame.len() < length {
        let start = frame.len();
        let step = (length - start).min(FRAME_READ_CHUNK_BYTES);
        frame.resize(start + step, 0);
        reader.read_exact(&mut frame[start..]).await?;
    }
    Ok(frame)
}

/// How much more of a frame `read_frame` makes room for before those bytes arrived.
const FRAME_READ_CHUNK_BYTES: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use openraft::error::Fatal;
    use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageError, StorageIOError, Vote};

    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_raft_errors_keep_their_type() {
        let storage = StorageError::IO {
            source: StorageIOError::new(
                ErrorSubject::<u64>::Logs,
                ErrorVerb::Write,
                AnyError::error("disk full"),
            ),
        };
        let responses = vec![
            PeerResponse::Vote(Err(RaftError::Fatal(Fatal::StorageError(storage)))),
            PeerResponse::AppendEntries(Ok(AppendEntriesResponse::HigherVote(Vote::new(3, 2)))),
            PeerResponse::Forward(Err(ForwardError::NotLeader { leader_id: Some(2) })),
        ];
        let (mut left, mut right) = tokio::io::duplex(1 << 16);
        for response in &responses {
            let payload = encode("response", response).expect("encode");
            write_frame(&mut left, &[&payload], MAX_FRAME_BYTES)
                .await
                .expect("write");
        }
        for expected in &responses {
            let frame = read_frame(&mut right, MAX_FRAME_BYTES).await.expect("read");
            let decoded: PeerResponse = decode("response", &frame).expect("decode");
            assert_eq!(format!("{decoded:?}"), format!("{expected:?}"));
        }
        drop(left);
        assert!(matches!(
            read_frame(&mut right, MAX_FRAME_BYTES).await,
            Err(FrameError::Closed)
        ));
    }

    #[tokio::test]
    async fn oversized_lengths_and_garbage_are_errors_not_panics() {
        let (mut left, mut right) = tokio::io::duplex(1 << 16);
        left.write_all(&u32::MAX.to_be_bytes())
            .await
            .expect("write");
        assert!(matches!(
            read_frame(&mut right, MAX_FRAME_BYTES).await,
            Err(FrameError::TooLarge { .. })
        ));
        for garbage in [&[][..], &[9, 9, 9, 9][..], &[0xff; 64][..]] {
            assert!(matches!(
                decode::<PeerRequest>("request", garbage),
                Err(FrameError::Decode { .. })
            ));
        }
        // A valid request followed by a trailing byte is refused too.
        let mut payload =
            encode("request", &PeerRequest::Ping { from_node_id: 1 }).expect("encode");
        payload.push(0);
        assert!(decode::<PeerRequest>("request", &payload).is_err());
        // A frame cut short by a closed connection is an I/O error.
        left.write_all(&[0, 0, 0, 10, 1, 2]).await.expect("write");
        drop(left);
        assert!(matches!(
            read_frame(&mut right, MAX_FRAME_BYTES).await,
            Err(FrameError::Io(_))
        ));
    }
}

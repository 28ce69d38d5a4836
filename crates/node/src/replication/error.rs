//! The replication layer's typed errors: `StoreError` for what the disk did or held (sled,
//! file I/O, corrupt records) and `ReplicationError` for opening and driving a node. Inside
//! openraft's storage traits a `StoreError` travels as openraft's `StorageError`, which
//! stops the Raft node: a node never runs on storage it cannot trust.

use std::path::PathBuf;
use std::time::Duration;

use openraft::error::{Fatal, InitializeError, RaftError};
use openraft::{AnyError, ConfigError, ErrorSubject, ErrorVerb, StorageError, StorageIOError};

use super::NodeInfo;

/// A failure of the replication layer's storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled failed to {action}: {source}")]
    Sled {
        action: &'static str,
        #[source]
        source: sled::Error,
    },
    #[error("I/O on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a storage call took longer than {0} s")]
    Stalled(u64),
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: bincode::Error,
    },
    /// A record read back from disk (or received as a snapshot) is not what was written.
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: String, detail: String },
    /// A record of the Raft log that was durable reads back wrong: the node must not run
    /// on this log, which has lost entries it may have acknowledged.
    #[error(
        "the raft log is damaged in {} at byte {offset}: {detail}; entries this node made durable are lost, so it will not start (see `gavel node reset`)",
        path.display()
    )]
    DamagedLog {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    /// Applying a committed command broke a kernel invariant: this replica cannot go on.
    #[error("the kernel panicked applying log entry {index}: {detail}")]
    KernelPanic { index: u64, detail: String },
    #[error("this data directory belongs to node {stored}, not to node {requested}")]
    NodeIdMismatch { stored: u64, requested: u64 },
    #[error("a storage task failed: {0}")]
    Task(String),
}

impl StoreError {
    pub(crate) fn sled(action: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
        move |source| StoreError::Sled { action, source }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }

    /// This error as openraft's storage error about `subject`.
    pub(crate) fn into_storage(
        self,
        subject: ErrorSubject<u64>,
        verb: ErrorVerb,
    ) -> StorageError<u64> {
        StorageError::IO {
            source: StorageIOError::new(subject, verb, AnyError::new(&self)),
        }
    }
}

/// Runs blocking storage work off the async executor and flattens a failed task into a
/// `StoreError`.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::time::timeout(STORAGE_STALL_LIMIT, tokio::task::spawn_blocking(work)).await {
        Ok(joined) => joined.map_err(|join| StoreError::Task(join.to_string()))?,
        Err(_) => Err(StoreError::Stalled(STORAGE_STALL_LIMIT.as_secs())),
    }
}

/// The longest a storage call may take. A disk that stops answering (full, failing, or
/// a sled writer stuck behind a failed flush) must not leave the node alive but unable
/// to vote or apply: past this bound the call fails, Raft stops on the error, and the
/// node exits so that its service manager restarts it from its durable log.
pub(crate) const STORAGE_STALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A failure to open or drive the replication layer.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("invalid replication options: {0}")]
    Options(String),
    /// A data directory that cannot be read offline: missing, or in use by a node.
    #[error("{0}")]
    DataDir(String),
    #[error("invalid raft configuration: {0}")]
    Config(Box<ConfigError>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("raft stopped: {0}")]
    Fatal(Box<Fatal<u64>>),
    #[error("cluster initialization failed: {0}")]
    Initialize(Box<RaftError<u64, InitializeError<u64, NodeInfo>>>),
    #[error("raft's tasks still held the storage {0:?} after shutdown")]
    ShutdownTimeout(Duration),
}

impl ReplicationError {
    /// Whether this is a Raft log that lost records it had made durable.
    pub fn is_damaged_log(&self) -> bool {
        matches!(self, ReplicationError::Store(StoreError::DamagedLog { .. }))
    }
}

impl From<RaftError<u64, InitializeError<u64, NodeInfo>>> for ReplicationError {
    fn from(error: RaftError<u64, InitializeError<u64, NodeInfo>>) -> Self {
        ReplicationError::Initialize(Box::new(error))
    }
}

impl From<ConfigError> for ReplicationError {
    fn from(error: ConfigError) -> Self {
        ReplicationError::Config(Box::new(error))
    }
}

impl From<Fatal<u64>> for ReplicationError {
    fn from(error: Fatal<u64>) -> Self {
        ReplicationError::Fatal(Box::new(error))
    }
}

//! Gavel's replication layer: openraft's type configuration for Gavel, the Raft log in
//! segment files of its own made durable with fdatasync (`log_store`, `segments`), Raft's
//! metadata in sled (`durable`: sled with fdatasync), the state machine that
//! feeds every committed entry to `kernel::apply` and publishes the events it produced
//! (`state_machine`), the Raft network of a node without peers (`network`; a cluster's
//! is `peer::PeerNetworkFactory`), and
//! `open_with_network` (`open` for a node without peers), which assembles them into a
//! running Raft node on one data directory. A node restarted on its data directory loads
//! its latest snapshot and re-applies the committed log entries after it before `open`
//! returns, so its `SharedState` is whole from the start; `restore_offline` does the same
//! for a stopped node's directory without starting Raft. Closed auctions that the
//! janitor archived live on disk in `data_dir/archive` (see `archive`); a node that
//! installed a snapshot fetches the ones it lacks from a peer (`archive_fetch`). A node
//! whose log is damaged is cleared by `reset` and rejoins as a standby.

pub mod archive;
pub mod archive_fetch;
mod background;
pub mod backup;
mod codec;
mod durable;
mod error;
mod legacy;
mod log_store;
mod network;
mod offline;
pub mod reset;
mod segments;
mod snapshot_file;
mod snapshots;
mod state_machine;
#[cfg(test)]
mod takeover_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InitializeError, RaftError};
use openraft::network::RaftNetworkFactory;
use openraft::{Config, LogId, SnapshotPolicy, StoredMembership};
use serde::{Deserialize, Serialize};

use gavel_kernel::{Envelope, Event, Outcome, Rejection, State};

pub use archive::ArchiveStore;
pub use durable::Durable;
pub use error::{ReplicationError, StoreError};
pub use log_store::LogStore;
pub use network::{NoPeerTransport, UnreachableNetwork, UnreachableNetworkFactory};
pub use offline::restore_offline;
pub use snapshots::SnapshotBuilder;
pub use state_machine::StateMachineStore;

openraft::declare_raft_types!(
    /// Openraft's types for Gavel: a log entry carries a `Proposal`, the kernel
    /// `Envelope`s the leader proposed together.
    pub TypeConfig:
        D = Proposal,
        R = ApplyResponse,
        NodeId = u64,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A running Raft node of Gavel.
pub type GavelRaft = openraft::Raft<TypeConfig>;

/// The applied state every reader of this node sees: shared, read-mostly.
pub type SharedState = Arc<parking_lot::RwLock<AppliedState>>;

/// How Raft members find each other and where their listeners are.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct NodeInfo {
    pub name: String,
    pub public_url: String,
    pub control_url: String,
    pub peer_addr: String,
}

/// The payload of one Raft log entry: commands proposed together (group commit), applied
/// in their order as if each had an entry of its own. Batching them costs one log append
/// and one fdatasync per batch on every voter instead of one per command; each command
/// still gets its own answer (`ApplyResponse::results`). The commands are shared, not
/// copied, by the copies of an entry that go to the followers and to the state machine;
/// they are encoded as a sequence, as when they were a `Vec`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub envelopes: std::sync::Arc<[Envelope]>,
}

impl From<Envelope> for Proposal {
    fn from(envelope: Envelope) -> Self {
        Proposal {
            envelopes: std::sync::Arc::new([envelope]),
        }
    }
}

/// What applying one committed log entry answered: one result per envelope of its
/// `Proposal`, in order. Entries that carry no kernel command (the blank entry of a new
/// leader, membership changes) answer one `Err(Rejection::Conflict(..))` naming the entry;
/// nobody proposes those through `client_write`, and `change_membership` callers read the
/// response's `membership`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ApplyResponse {
    pub results: Vec<Result<Outcome, Rejection>>,
}

impl ApplyResponse {
    fn no_command(index: u64, kind: &str) -> Self {
        ApplyResponse {
            results: vec![Err(Rejection::Conflict(format!(
                "log entry {index} is a {kind} entry and carries no command"
            )))],
        }
    }

    /// The answer to the first (for a single-command proposal: the only) command.
    pub fn first(&self) -> Option<&Result<Outcome, Rejection>> {
        self.results.first()
    }
}

/// The state machine's state: the kernel state plus where in the log it stands.
#[derive(Debug, Clone, Default)]
pub struct AppliedState {
    pub kernel: State,
    /// Index of the last applied log entry (0 before anything was applied).
    pub last_applied_index: u64,
    /// The full id (term, leader, index) of the last applied entry.
    pub last_applied: Option<LogId<u64>>,
    /// The last membership configuration applied.
    pub membership: StoredMembership<u64, NodeInfo>,
    /// `(last_applied_index, digest)` of the last digest computed by `digest`.
    pub digest_cache: Option<(u64, String)>,
    /// The newest `Command::Checkpoint`s this node applied, oldest first (at most
    /// `CHECKPOINTS_KEPT`); not replicated, not in snapshots.
    pub checkpoints: std::collections::VecDeque<CheckpointDigest>,
    /// Exchange keys applied and records waiting for the outbound spool
    /// (`gavel_kernel::ledger`).
    pub exchange: gavel_kernel::ledger::ExchangeLedger,
}

/// How many checkpoint digests a node keeps.
pub const CHECKPOINTS_KEPT: usize = 32;

/// The digest of the kernel state right after a `Command::Checkpoint` was applied, and
/// what the node's archive of closed auctions held then. Two nodes that applied the same
/// log note the same `digest` (it covers the chain of archived records, see
/// `kernel::archived`); their archives are the same when `archive_auctions` and
/// `archive_digest` are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CheckpointDigest {
    pub label: String,
    pub log_index: u64,
    pub digest: String,
    /// Archived auctions the node held.
    pub archive_auctions: u64,
    /// The order-independent digest of those records (`archive::HeldArchive`).
    pub archive_digest: String,
    /// The node was still fetching archived records a snapshot did not carry.
    pub archive_catching_up: bool,
}

impl AppliedState {
    /// Notes the state's digest now under `label` (a checkpoint applied at `log_index`),
    /// with what the node's archive holds.
    pub fn note_checkpoint(
        &mut self,
        label: &str,
        log_index: u64,
        archive: archive_fetch::ArchiveStatus,
    ) {
        if self.checkpoints.len() >= CHECKPOINTS_KEPT {
            self.checkpoints.pop_front();
        }
        let digest = self.kernel.digest();
        self.checkpoints.push_back(CheckpointDigest {
            label: label.to_string(),
            log_index,
            digest,
            archive_auctions: archive.auctions,
            archive_digest: archive.digest,
            archive_catching_up: archive.catching_up,
        });
    }

    /// `State::digest` of the kernel state, recomputed only when entries were applied since.
    pub fn digest(&mut self) -> String {
        match &self.digest_cache {
            Some((index, digest)) if *index == self.last_applied_index => digest.clone(),
            _ => {
                let digest = self.kernel.digest();
                self.digest_cache = Some((self.last_applied_index, digest.clone()));
                digest
            }
        }
    }
}

/// The events one committed log entry (every command of its `Proposal`) produced,
/// published after its batch was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedEvents {
    pub log_index: u64,
    pub events: Vec<Event>,
}

/// How to open a node's replication layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationOptions {
    pub node_id: u64,
    /// The node's data directory; the Raft log and snapshots live in `data_dir/raft`, the
    /// archive of closed auctions in `data_dir/archive`.
    pub data_dir: PathBuf,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_every_entries: u64,
    /// Capacity of the event broadcast; slow subscribers lag rather than block the kernel.
    pub event_buffer: usize,
}

impl ReplicationOptions {
    /// Options with LAN defaults: 50 ms heartbeats, 150–300 ms election timeouts, a snapshot
    /// every 10 000 entries and room for 4096 unread event batches.
    pub fn with_defaults(node_id: u64, data_dir: PathBuf) -> Self {
        ReplicationOptions {
            node_id,
            data_dir,
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            snapshot_every_entries: 10_000,
            event_buffer: 4096,
        }
    }

    /// Openraft's configuration for these options, validated.
    pub fn raft_config(&self) -> Result<Config, ReplicationError> {
        if self.snapshot_every_entries == 0 {
            return Err(ReplicationError::Options(
                "snapshot_every_entries must be at least 1".to_string(),
            ));
        }
        if self.event_buffer == 0 {
            return Err(ReplicationError::Options(
                "event_buffer must be at least 1".to_string(),
            ));
        }
        let config = Config {
            cluster_name: "gavel".to_string(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every_entries),
            max_in_snapshot_log_to_keep: MAX_IN_SNAPSHOT_LOG_TO_KEEP,
            ..Default::default()
        };
        Ok(config.validate()?)
    }
}

/// What a storage probe writes: the wall clock in milliseconds.
fn probe_stamp() -> [u8; 8] {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0);
    now_ms.to_be_bytes()
}

/// Log entries kept after a snapshot, so a briefly lagging follower catches up from the log.
pub const MAX_IN_SNAPSHOT_LOG_TO_KEEP: u64 = 1000;

/// sled's page cache for the Raft database (log, snapshot): its default, 1 GiB, would let
/// the node's memory grow with every entry ever written (sled counts cached pages at their
/// size on disk, and they take several times that in memory). The log is purged behind
/// snapshots, so what is read back is recent.
pub const RAFT_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// How long `shutdown` waits for openraft's tasks to release the storage.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// One node's replication layer, running.
pub struct Replication {
    pub node_id: u64,
    pub raft: GavelRaft,
    pub state: SharedState,
    pub events: tokio::sync::broadcast::Sender<Arc<AppliedEvents>>,
    pub db: sled::Db,
    /// Closed auctions that left the state (see `archive`).
    pub archive: ArchiveStore,
    /// The sizes the Janitor weighs before it asks for a snapshot.
    pub sizes: StorageSizes,
    durable: Arc<Durable>,
}

/// How large the log and the latest snapshot are on disk. A snapshot rewrites the whole
/// state; the log after it only grows with what was written since. The Janitor asks for a
/// snapshot once the log since the last one is at least as large as that snapshot, so the
/// snapshots never write more than the log does, whatever the size of the state.
#[derive(Clone)]
pub struct StorageSizes {
    log: log_store::LogSize,
    snapshot_file: PathBuf,
}

impl StorageSizes {
    /// The bytes the log entries after `index` take (all of them when `None`).
    pub fn log_bytes_after(&self, index: Option<u64>) -> u64 {
        self.log.bytes_after(index)
    }

    /// The size of the latest snapshot's file; 0 when there is none.
    pub fn snapshot_bytes(&self) -> u64 {
        std::fs::metadata(&self.snapshot_file).map_or(0, |metadata| metadata.len())
    }
}

/// Opens a node that cannot reach any peer (`UnreachableNetworkFactory`): a single voter,
/// or a test. A node of a cluster is opened with `open_with_network`.
pub async fn open(options: ReplicationOptions) -> Result<Replication, ReplicationError> {
    open_with_network(options, UnreachableNetworkFactory).await
}

/// Opens the node's storage in `options.data_dir/raft`, restores its state (snapshot, then
/// the committed entries after it) and starts Raft, which reaches its peers through
/// `network` (a `peer::PeerNetworkFactory` over the node's `peer::PeerClients` in a cluster).
/// The node still has to be initialized once (`initialize`), which is a no-op on a node
/// restarted on its data directory.
pub async fn open_with_network<N>(
    options: ReplicationOptions,
    network: N,
) -> Result<Replication, ReplicationError>
where
    N: RaftNetworkFactory<TypeConfig>,
{
    let config = Arc::new(options.raft_config()?);
    let dir = options.data_dir.join("raft");
    let durable = Arc::new(
        error::blocking(move || Durable::open_with_cache(&dir, Some(RAFT_CACHE_BYTES))).await?,
    );

    let log_store = LogStore::open(durable.clone())?;
    log_store.claim_node_id(options.node_id).await?;
    let sizes = StorageSizes {
        log: log_store.size(),
        snapshot_file: snapshot_file::snapshot_path(durable.dir()),
    };
    let archive_dir = options.data_dir.join("archive");
    let archive = error::blocking(move || ArchiveStore::open(&archive_dir)).await?;
    let (events, _) = tokio::sync::broadcast::channel(options.event_buffer);
    let (state_machine, state) =
        StateMachineStore::open(durable.clone(), archive.clone(), events.clone())?;

    let raft =
        openraft::Raft::new(options.node_id, config, network, log_store, state_machine).await?;
    Ok(Replication {
        node_id: options.node_id,
        raft,
        state,
        events,
        archive,
        sizes,
        db: durable.db().clone(),
        durable,
    })
}

impl Replication {
    /// Forms the cluster with these voters. A node that already holds a log or a vote (it
    /// was initialized before, or joined a cluster) is left as it is, and this succeeds.
    pub async fn initialize(
        &self,
        members: BTreeMap<u64, NodeInfo>,
    ) -> Result<(), ReplicationError> {
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(already))) => {
                tracing::info!(%already, "raft already initialized");
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Writes a small probe record to the Raft database and to the archive and makes both
    /// durable, each within `STORAGE_STALL_LIMIT`. A disk that filled or failed can leave
    /// sled's background flusher failed while no Raft call has yet failed (a follower
    /// with nothing to append); this finds it, so the node can exit and be restarted
    /// instead of staying up with a frozen state.
    pub async fn probe_storage(&self) -> Result<(), StoreError> {
        let durable = self.durable.clone();
        error::blocking(move || {
            durable.write_durably(|db| {
                let probes = db
                    .open_tree("storage_probe")
                    .map_err(StoreError::sled("open the storage probe tree"))?;
                probes
                    .insert("last", &probe_stamp())
                    .map_err(StoreError::sled("write the storage probe"))?;
                Ok(())
            })
        })
        .await?;
        self.archive.probe().await
    }

    /// Forms a cluster of this node alone.
    pub async fn initialize_single(&self, info: NodeInfo) -> Result<(), ReplicationError> {
        self.initialize(BTreeMap::from([(self.node_id, info)]))
            .await
    }

    /// A new subscription to the events of every entry applied from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<AppliedEvents>> {
        self.events.subscribe()
    }

    /// Stops Raft and waits until its tasks have released the storage, so the same data
    /// directory can be opened again (sled locks it while open). Clones of `raft` held
    /// elsewhere answer `Fatal::Stopped` afterwards.
    pub async fn shutdown(self) -> Result<(), ReplicationError> {
        let Replication {
            raft,
            db,
            durable,
            archive,
            ..
        } = self;
        raft.shutdown()
            .await
            .map_err(|join| StoreError::Task(join.to_string()))?;
        drop(db);
        archive.make_durable().await?;
        drop(archive);
        // The state machine worker and any snapshot build end shortly after the core.
        let deadline = tokio::time::Instant::now() + SHUTDOWN_WAIT;
        while Arc::strong_count(&durable) > 1 {
            if tokio::time::Instant::now() >= deadline {
                return Err(ReplicationError::ShutdownTimeout(SHUTDOWN_WAIT));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        error::blocking(move || durable.close()).await?;
        Ok(())
    }
}

//! A node's configuration: one TOML file (documented key by key in `config/node.toml`),
//! then `GAVEL_ADMIN_TOKEN` from the environment, then the cluster secret's file
//! (`secrets`), then validation. The node starts only
//! from a `Config` that passed `validate`; every error names the key at fault.
//!
//! Every key has a default except `node.id`. Defaults that depend on the node (its name,
//! data directory, ports and the one-member cluster) follow docs/API.md: node k listens on
//! 127.0.0.1 at 8080+k (public), 9080+k (control) and 7080+k (peer).

use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The environment variable whose value, when set and not empty, replaces
/// `security.admin_token`.
pub const ADMIN_TOKEN_ENV: &str = "GAVEL_ADMIN_TOKEN";

/// Shortest admin token and operator token accepted (the cluster secret has a rule of
/// its own: `secrets`).
pub const MIN_SECRET_CHARS: usize = 16;

const PUBLIC_PORT_BASE: u64 = 8080;
const CONTROL_PORT_BASE: u64 = 9080;
const PEER_PORT_BASE: u64 = 7080;

/// A configuration that cannot be used, with a message fit for an operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {}{location} is not valid: {message}", .path.display())]
    Parse {
        path: PathBuf,
        location: String,
        message: String,
    },
    /// `key` is the dotted TOML key, e.g. `raft.election_timeout_min_ms`.
    #[error("{key} {problem}")]
    Invalid { key: String, problem: String },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// The key at fault, for a value that was read but is not acceptable.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Everything a node needs to know before it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ConfigFile")]
pub struct Config {
    pub node: NodeSection,
    pub listen: ListenSection,
    pub security: SecuritySection,
    pub cluster: ClusterSection,
    pub raft: RaftSection,
    pub sessions: SessionsSection,
    pub janitor: JanitorSection,
    pub pool: PoolSection,
    pub http: HttpSection,
    pub limits: LimitsSection,
    pub tls: TlsSection,
    pub faults: FaultsSection,
    pub exchange: ExchangeSection,
    pub host: HostSection,
    pub archive: ArchiveSection,
    pub backup: BackupSection,
}

/// `[node]`: who this node is and where it keeps its state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeSection {
    /// Raft node id, 1 or more, unique in the cluster. The only required key.
    pub id: u64,
    /// Shown in logs and in the cluster view. Default `node-<id>`.
    pub name: String,
    /// Raft log, state machine and snapshots. Default `data/node-<id>`, relative to
    /// the working directory of the process.
    pub data_dir: PathBuf,
}

/// `[listen]`: the listeners of docs/API.md, bound separately so that the public one
/// can face the internet while control and peer stay on the intranet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListenSection {
    /// Bidders and browsers. Default 127.0.0.1:8080+id.
    pub public: SocketAddr,
    /// Operators, with the admin token. Default 127.0.0.1:9080+id.
    pub control: SocketAddr,
    /// Other nodes only, with the cluster secret. Default 127.0.0.1:7080+id.
    pub peer: SocketAddr,
    /// Event streams only, served by worker threads of their own at a lower scheduling
    /// priority, so that writing to thousands of watchers does not hold bids up (the bid
    /// routes stay on `public`, which serves the streams too). Off by default; when set,
    /// on the public listener's address (or all addresses), the pages open their streams
    /// here (same host, this port; CORS lets them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<SocketAddr>,
}

/// `[security]`: the secrets. Debug output never shows them.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySection {
    /// Bearer token of the control listener, 16 characters or more. A node refuses to
    /// start without one; `GAVEL_ADMIN_TOKEN` replaces it when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    /// Shared by the nodes of one cluster to authenticate peer traffic: 32 random bytes
    /// or more, as hex or base64 (`gavel cluster secret` makes one; `config::secrets`).
    /// Required, here or in `cluster_secret_file`, when the cluster has more than one
    /// member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_secret: Option<String>,
    /// A file holding the cluster secret alone, read when the node starts, instead of
    /// `cluster_secret`; not readable by every user of the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_secret_file: Option<PathBuf>,
    /// A file holding the base64 of the 32-byte Ed25519 seed of the cluster's receipt
    /// key, which signs every bid receipt (`receipts`; `gavel cluster receipt-key`
    /// makes one): the same file on every node, not readable by every user of the host.
    /// Required when the cluster has more than one member; a node alone without one
    /// makes a key in its data directory on its first start and keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_key_file: Option<PathBuf>,
    /// The public keys (base64) of receipt keys this cluster signed with before, listed
    /// by `GET /api/v1/receipt-key` as `previous`, so receipts signed before a rotation
    /// still verify.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub receipt_key_previous: Vec<String>,
    /// The operator name the admin token acts under in the audit trail.
    pub operator_name: String,
    /// More operators, each with a control token of their own (`[[security.operators]]`):
    /// every control action is recorded with the name of the operator whose token it
    /// carried.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<OperatorToken>,
}

impl Default for SecuritySection {
    fn default() -> Self {
        SecuritySection {
            admin_token: None,
            cluster_secret: None,
            cluster_secret_file: None,
            receipt_key_file: None,
            receipt_key_previous: Vec::new(),
            operator_name: "operator".to_string(),
            operators: Vec::new(),
        }
    }
}

impl fmt::Debug for SecuritySection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |secret: &Option<String>| secret.as_ref().map(|_| "<redacted>");
        formatter
            .debug_struct("SecuritySection")
            .field("admin_token", &redact(&self.admin_token))
            .field("cluster_secret", &redact(&self.cluster_secret))
            .field("cluster_secret_file", &self.cluster_secret_file)
            .field("receipt_key_file", &self.receipt_key_file)
            .field("receipt_key_previous", &self.receipt_key_previous)
            .field("operator_name", &self.operator_name)
            .field("operators", &self.operators)
            .finish()
    }
}

/// `[cluster]`: every node of the cluster, this one included.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterSection {
    /// Default: this node alone, as a voter.
    pub members: Vec<Member>,
    /// How often each node's PeerLink health-checks every other node. Default 100 ms.
    pub check_interval_ms: u64,
    /// A peer that misses this many checks in a row is `down`; the leader then replaces a
    /// down voter by a healthy standby. Default 3 (about 300 ms on the default interval).
    pub down_after_misses: u32,
    /// A node whose clock is further than this from the voters' median refuses to lead
    /// (`clock`). Default 50 ms.
    pub max_clock_skew_ms: u64,
}

/// Default `cluster.max_clock_skew_ms`.
pub const DEFAULT_MAX_CLOCK_SKEW_MS: u64 = 50;

/// Default `cluster.check_interval_ms`, tuned for a LAN.
pub const DEFAULT_CHECK_INTERVAL_MS: u64 = 100;
/// Default `cluster.down_after_misses`.
pub const DEFAULT_DOWN_AFTER_MISSES: u32 = 3;

/// One node of the cluster as the others see it (`[[cluster.members]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub id: u64,
    pub name: String,
    /// Where the other nodes reach its peer listener.
    pub peer: SocketAddr,
    /// Base URL of its public listener, e.g. `http://127.0.0.1:8081`.
    pub public_url: String,
    /// Base URL of its control listener, e.g. `http://127.0.0.1:9081`.
    pub control_url: String,
    pub role: Role,
}

/// What a member is when the cluster starts: a voter replicates and votes; a standby
/// is a Raft learner that holds all state and is promoted when a voter dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Voter,
    Standby,
}

/// `[raft]`: consensus timing, in milliseconds, and log compaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSection {
    /// How often the leader sends heartbeats.
    pub heartbeat_interval_ms: u64,
    /// A follower that hears no leader for a random time between min and max starts an
    /// election (after the leader lease, = max); min must exceed the heartbeat interval,
    /// max must exceed min. A leader whose process is gone is replaced as soon as the lease
    /// has run out (`actors::supervisor::election`).
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// openraft takes a snapshot (and the log before it is purged) at the latest every
    /// this many applied entries; an entry holds up to 128 commands the leader proposed
    /// together. Sooner, the Janitor asks for one every 2000 entries (or this many, if
    /// fewer) once the log written since the last snapshot is as large as that snapshot.
    pub snapshot_every_entries: u64,
}

impl Default for RaftSection {
    fn default() -> Self {
        RaftSection {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            snapshot_every_entries: 50_000,
        }
    }
}

/// `[sessions]`: bidder sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsSection {
    /// How long a session token stays valid after login. Default 12 hours.
    pub ttl_ms: u64,
    /// Most sessions one bidder holds; a sign-in over it ends the bidder's oldest. It
    /// bounds what sign-ins add to every replica's state (each is a replicated entry kept
    /// until it expires). The node that takes a sign-in puts its own value into the
    /// command, so keep it equal on every node. Default 8 (1 to 1000).
    pub max_sessions_per_bidder: u32,
}

impl Default for SessionsSection {
    fn default() -> Self {
        SessionsSection {
            ttl_ms: 43_200_000,
            max_sessions_per_bidder: 8,
        }
    }
}

/// `[janitor]`: the purification sweeps (docs/DESIGN.md decision 7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JanitorSection {
    /// Time between two sweeps.
    pub interval_ms: u64,
    /// How long a bid's `request_id` is remembered, so a retry within it gets the
    /// original receipt. Default 24 hours.
    pub request_retention_ms: u64,
    /// How long a closed auction stays in the live state, its actor running for late
    /// readers, before the janitor archives it (its views are then read from the archive).
    pub closed_auction_linger_ms: u64,
    /// How long an archived auction stays in the node's archive after its close; then
    /// the janitor prunes it from every node. 0, the default, keeps every one for ever.
    pub archive_retention_ms: u64,
}

impl Default for JanitorSection {
    fn default() -> Self {
        JanitorSection {
            interval_ms: 5_000,
            request_retention_ms: 86_400_000,
            closed_auction_linger_ms: 60_000,
            archive_retention_ms: 0,
        }
    }
}

/// `[pool]`: the auction actors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSection {
    /// Start an auction's actor this long before its listing opens. Default 10 minutes.
    pub preload_ms: u64,
    /// Bound of each auction actor's mailbox.
    pub mailbox_capacity: usize,
    /// Live events kept per auction for subscribers and `Last-Event-ID` resumption.
    pub event_buffer: usize,
}

impl Default for PoolSection {
    fn default() -> Self {
        PoolSection {
            preload_ms: 600_000,
            mailbox_capacity: 1024,
            event_buffer: 4096,
        }
    }
}

/// `[http]`: the HTTP servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Worker threads per listener.
    pub workers: usize,
    /// Worker threads of the events listener (`listen.events`), at nice 10. Default 1.
    pub event_workers: usize,
    /// Concurrent connections per listener; more wait in the accept queue.
    pub max_connections: usize,
    /// A request body that has not arrived in full this long after the node began to
    /// read it is answered 408 `request_timeout` and its connection closed, so a client
    /// sending a byte at a time cannot hold a connection. Default 10000 (100 to 600000).
    pub body_read_timeout_ms: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            workers: 2,
            event_workers: 1,
            max_connections: 25_000,
            body_read_timeout_ms: 10_000,
        }
    }
}

/// `[faults]`: fault injection for chaos tests. Off by default; when on, the control
/// listener accepts `POST /control/v1/faults/panic`, which makes an actor panic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultsSection {
    pub enabled: bool,
}

/// `[host]`: what the node asks of the machine it runs on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostSection {
    /// Keep idle CPUs polling instead of halting, for as long as the node runs (a PM QoS
    /// request of 0 µs on `/dev/cpu_dma_latency`, which needs root). A halted CPU takes
    /// tens of microseconds to wake on a virtual machine, and a bid waits for several
    /// wake-ups (its request, each peer message, the log's sync); polling removes them
    /// at the cost of idle CPUs running at full power. The request is machine-wide and
    /// ends with the process. Default false.
    pub cpu_idle_poll: bool,
}

/// Most records one archive chunk carries, whatever the asker wants: the upper bound of
/// `archive.chunk_auctions`, and what a node serving chunks holds each request to.
pub const MAX_CHUNK_AUCTIONS: u32 = 10_000;

/// `[archive]`: the on-disk archive of closed auctions, as a node that installed a
/// snapshot fills it from a peer (`replication::archive_fetch`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveSection {
    /// Archived auctions asked for in one peer request while the archive catches up
    /// (a chunk also stops at about 8 MiB). Default 500 (1 to 10000).
    pub chunk_auctions: u32,
}

impl Default for ArchiveSection {
    fn default() -> Self {
        ArchiveSection {
            chunk_auctions: 500,
        }
    }
}

/// `[backup]`: scheduled backups, written by the leader (`actors::backups`). Off unless
/// `dir` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSection {
    /// Where the backups go: `gavel-backup-{log index}-{taken at ms}.backup`, each
    /// written whole, synced and read back before it counts. Every node may name the same
    /// directory (only the leader writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Time between two backups. Default one hour (1000 to 604800000, a week).
    pub every_ms: u64,
    /// Backups kept: older ones are removed after each new one. Default 48 (1 to 10000).
    pub keep: u32,
}

impl Default for BackupSection {
    fn default() -> Self {
        BackupSection {
            dir: None,
            every_ms: 3_600_000,
            keep: 48,
        }
    }
}

/// `[exchange]`: the intranet–internet spool (docs/DESIGN.md decision 6). Off unless `dir`
/// is set; every node of the cluster must see the same directory (the leader's Exchange
/// actor reads and writes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExchangeSection {
    /// The spool: `inbound/` (files from the intranet), `outbound/` (results and bids for
    /// it), `quarantine/` (what could not be applied, with the reason), `processed/`.
    pub dir: Option<PathBuf>,
    /// The file holding the spool's HMAC key (32 random bytes or more, hex or base64,
    /// `gavel cluster secret --out FILE`; not readable by every user). Every file, both
    /// ways, ends with the HMAC-SHA256 of its records under this key; an inbound file
    /// without a valid one is quarantined. Required when `dir` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac_key_file: Option<PathBuf>,
    /// Time between two looks at the spool. Default 1000 ms (10 to 600000).
    pub interval_ms: u64,
    /// One direction at a time, as an isolation gateway that ferries files one way at
    /// a time: each look either reads the inbound spool or writes the outbound one, in
    /// turn. Default false (both each time).
    pub half_duplex: bool,
    /// How long the key of an applied record is kept: a record sent again within it
    /// changes nothing; after it, the key is forgotten (so the ledger stays bounded) and
    /// the same record would apply again. Default 30 days (60000 or more).
    pub key_retention_ms: u64,
}

impl Default for ExchangeSection {
    fn default() -> Self {
        ExchangeSection {
            dir: None,
            hmac_key_file: None,
            interval_ms: 1_000,
            half_duplex: false,
            key_retention_ms: 30 * 24 * 3_600_000,
        }
    }
}

impl Config {
    /// Reads and parses `path`. Call `apply_environment` and `validate` before use.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses TOML text; `origin` only names the file in error messages.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: origin.to_path_buf(),
            location: error
                .span()
                .map(|span| line_and_column(text, span.start))
                .unwrap_or_default(),
            message: error.message().to_string(),
        })?;
        Config::try_from(file)
    }

    /// The configuration of node `id` with every other key at its default.
    pub fn for_node(id: u64) -> Result<Config, ConfigError> {
        Config::try_from(ConfigFile {
            node: NodeFile {
                id: Some(id),
                ..NodeFile::default()
            },
            ..ConfigFile::default()
        })
    }

    /// Lets the environment override the file: `GAVEL_ADMIN_TOKEN` wins over
    /// `security.admin_token`.
    pub fn apply_environment(&mut self) {
        self.apply_admin_token_override(std::env::var(ADMIN_TOKEN_ENV).ok());
    }

    /// `apply_environment` with the variable's value passed in; an empty value counts as
    /// unset.
    pub fn apply_admin_token_override(&mut self, value: Option<String>) {
        if let Some(token) = value.filter(|token| !token.is_empty()) {
            self.security.admin_token = Some(token);
        }
    }

    /// Checks every value, and how values relate to each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_node_and_listen()?;
        self.validate_members()?;
        self.validate_security()?;
        self.validate_raft()?;
        self.validate_timers_and_limits()?;
        self.validate_backup()?;
        self.validate_rate_limits()?;
        self.validate_tls()
    }

    /// `validate`, plus what a serving node needs: an admin token, or an operator token,
    /// and the secret files it names read (`load_secret_files`).
    pub fn validate_for_serving(&self) -> Result<(), ConfigError> {
        self.validate()?;
        self.validate_secret_files_read()?;
        if self.security.admin_token.is_none() && self.security.operators.is_empty() {
            return Err(ConfigError::invalid(
                "security.admin_token",
                format!("is not set, and the node refuses to start without it: set it in the config file or in {ADMIN_TOKEN_ENV} ({MIN_SECRET_CHARS} characters or more)"),
            ));
        }
        Ok(())
    }

    /// This node's entry in `cluster.members` (present once `validate` passed).
    pub fn this_member(&self) -> Option<&Member> {
        self.cluster
            .members
            .iter()
            .find(|member| member.id == self.node.id)
    }
}
/// ` (line L, column C)` of a byte offset, for parse errors.
fn line_and_column(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |tail| tail.chars().count())
        + 1;
    format!(" (line {line}, column {column})")
}

mod file;
pub mod secrets;
mod security;
mod validate;
pub use crate::tls::TlsSection;
use file::{ConfigFile, NodeFile};
pub use security::{LimitsSection, OperatorToken};
pub(crate) use validate::is_http_url;
use validate::{all_hold, require, AT_LEAST_ONE, TOO_SHORT};

#[cfg(test)]
mod tests;

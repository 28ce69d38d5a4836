//! The configuration file as written: what may be left out is optional here, and the
//! defaults that depend on `node.id` are filled in on the way to a `Config`.

use super::*;

/// The file as written: what may be left out is optional here, and `Config::try_from`
/// fills in the defaults that depend on `node.id`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    #[serde(default)]
    pub(super) node: NodeFile,
    #[serde(default)]
    pub(super) listen: ListenFile,
    #[serde(default)]
    pub(super) security: SecuritySection,
    #[serde(default)]
    pub(super) cluster: ClusterFile,
    #[serde(default)]
    pub(super) raft: RaftSection,
    #[serde(default)]
    pub(super) sessions: SessionsSection,
    #[serde(default)]
    pub(super) janitor: JanitorSection,
    #[serde(default)]
    pub(super) pool: PoolSection,
    #[serde(default)]
    pub(super) http: HttpSection,
    #[serde(default)]
    pub(super) limits: LimitsSection,
    #[serde(default)]
    pub(super) tls: TlsSection,
    #[serde(default)]
    pub(super) faults: FaultsSection,
    #[serde(default)]
    pub(super) exchange: ExchangeSection,
    #[serde(default)]
    pub(super) host: HostSection,
    #[serde(default)]
    pub(super) archive: ArchiveSection,
    #[serde(default)]
    pub(super) backup: BackupSection,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NodeFile {
    pub(super) id: Option<u64>,
    pub(super) name: Option<String>,
    pub(super) data_dir: Option<PathBuf>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListenFile {
    pub(super) public: Option<SocketAddr>,
    pub(super) control: Option<SocketAddr>,
    pub(super) peer: Option<SocketAddr>,
    pub(super) events: Option<SocketAddr>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClusterFile {
    pub(super) members: Option<Vec<Member>>,
    pub(super) check_interval_ms: Option<u64>,
    pub(super) down_after_misses: Option<u32>,
    pub(super) max_clock_skew_ms: Option<u64>,
}

impl TryFrom<ConfigFile> for Config {
    type Error = ConfigError;

    fn try_from(file: ConfigFile) -> Result<Config, ConfigError> {
        let id = file.node.id.ok_or_else(|| {
            ConfigError::invalid("node.id", "is required (an integer, 1 or more)")
        })?;
        let node = NodeSection {
            id,
            name: file.node.name.unwrap_or_else(|| format!("node-{id}")),
            data_dir: file
                .node
                .data_dir
                .unwrap_or_else(|| PathBuf::from(format!("data/node-{id}"))),
        };
        let listen = ListenSection {
            public: or_default_address(file.listen.public, "listen.public", PUBLIC_PORT_BASE, id)?,
            control: or_default_address(
                file.listen.control,
                "listen.control",
                CONTROL_PORT_BASE,
                id,
            )?,
            peer: or_default_address(file.listen.peer, "listen.peer", PEER_PORT_BASE, id)?,
            events: file.listen.events,
        };
        let members = file
            .cluster
            .members
            .unwrap_or_else(|| vec![lone_voter(&node, &listen)]);
        Ok(Config {
            node,
            listen,
            security: file.security,
            cluster: ClusterSection {
                members,
                check_interval_ms: file
                    .cluster
                    .check_interval_ms
                    .unwrap_or(DEFAULT_CHECK_INTERVAL_MS),
                down_after_misses: file
                    .cluster
                    .down_after_misses
                    .unwrap_or(DEFAULT_DOWN_AFTER_MISSES),
                max_clock_skew_ms: file
                    .cluster
                    .max_clock_skew_ms
                    .unwrap_or(DEFAULT_MAX_CLOCK_SKEW_MS),
            },
            raft: file.raft,
            sessions: file.sessions,
            janitor: file.janitor,
            pool: file.pool,
            http: file.http,
            limits: file.limits,
            tls: file.tls,
            faults: file.faults,
            exchange: file.exchange,
            host: file.host,
            archive: file.archive,
            backup: file.backup,
        })
    }
}

fn or_default_address(
    given: Option<SocketAddr>,
    key: &str,
    port_base: u64,
    id: u64,
) -> Result<SocketAddr, ConfigError> {
    if let Some(address) = given {
        return Ok(address);
    }
    let port = port_base
        .checked_add(id)
        .and_then(|port| u16::try_from(port).ok())
        .ok_or_else(|| {
            ConfigError::invalid(
                key,
                format!("has no default for node.id {id} ({port_base}+{id} is not a port): set it"),
            )
        })?;
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

pub(super) fn lone_voter(node: &NodeSection, listen: &ListenSection) -> Member {
    Member {
        id: node.id,
        name: node.name.clone(),
        peer: listen.peer,
        public_url: format!("http://{}", listen.public),
        control_url: format!("http://{}", listen.control),
        role: Role::Voter,
    }
}

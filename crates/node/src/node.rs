//! Starts one Gavel node and stops it: storage and Raft, the actors, the public listener
//! (rate-limited, HTTPS when `[tls]` says so), the control listener (one credential per
//! operator), the peer listener (TLS under the handshake when configured), and the
//! shutdown on SIGINT or SIGTERM. Certificates are loaded before anything else.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;

use crate::actors::exchange::{Exchange, ExchangeSettings};
use crate::actors::janitor::{Janitor, JanitorHandles, JanitorSettings};
use crate::actors::messages::Replicator;
use crate::actors::peer_link::PeerLinkSettings;
use crate::actors::resource_pool::{PoolSettings, ResourcePool};
use crate::actors::supervision::{singleton_stopped, Singleton};
use crate::actors::supervisor::{
    AttachPool, ConfiguredMember, Propose, ProposeError, Supervisor, SupervisorSettings,
};
use crate::api::auth::OperatorCredential;
use crate::api::body_timeout::{limit_body_time, BodyReadTimeout};
use crate::api::limits::{limit_requests, RateLimiter};
use crate::api::{self, AppState};
use crate::config::Config;
use crate::config::Role;
use crate::peer::{
    CommandSink, ForwardError, ForwardedCommit, PeerClients, PeerNetworkFactory, PeerServer,
};
use crate::replication::{self, NodeInfo, ReplicationOptions};
use crate::telemetry::Metrics;
use gavel_kernel::Command;

/// The Janitor has openraft snapshot after at most this many entries (sooner if
/// `raft.snapshot_every_entries` is lower), so the log on disk stays short.
const JANITOR_SNAPSHOT_AFTER_ENTRIES: u64 = 2_000;

/// Runs a node until it is told to stop. Blocks the calling thread.
pub fn run(config: Config) -> anyhow::Result<()> {
    limit_malloc_arenas();
    actix_rt::System::new().block_on(serve(config))
}

/// glibc arenas a node uses unless `MALLOC_ARENA_MAX` says otherwise.
const MALLOC_ARENAS: i32 = 2;

/// Bounds glibc's malloc arenas (8 per core by default). Every thread that allocates
/// while the others hold their arenas gets one of its own, and each keeps what was freed
/// in it: in the 100k soak (BENCHMARKS.md, runs 3 and 4) two arenas kept the resident set
/// within 78–84 MiB from 20k lifecycles on, where the default rose to 100 MiB, at about
/// 8% of the bid throughput at 64 connections. `MALLOC_ARENA_MAX` in the environment
/// still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes a glibc malloc setting; called before the node
        // starts its threads.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
    }
}

/// `[host] cpu_idle_poll`: a node that cannot make the request says why and runs on; it
/// is only slower.
fn request_idle_poll() -> Option<crate::host::IdlePoll> {
    match crate::host::IdlePoll::request() {
        Ok(held) => {
            tracing::info!(
                file = crate::host::CPU_LATENCY_FILE,
                "idle CPUs poll while this node runs (host.cpu_idle_poll)"
            );
            Some(held)
        }
        Err(error) => {
            tracing::warn!(
                file = crate::host::CPU_LATENCY_FILE,
                %error,
                "host.cpu_idle_poll is set but the CPU-latency request failed; idle CPUs are left to halt"
            );
            None
        }
    }
}

/// The configured members, with what Raft needs to know of each.
fn configured_members(config: &Config) -> Vec<ConfiguredMember> {
    config
        .cluster
        .members
        .iter()
        .map(|member| ConfiguredMember {
            node_id: member.id,
            info: NodeInfo {
                name: member.name.clone(),
                public_url: member.public_url.clone(),
                control_url: member.control_url.clone(),
                peer_addr: member.peer.to_string(),
            },
            standby: member.role == Role::Standby,
        })
        .collect()
}

/// Hands commands forwarded by other nodes to this node's Supervisor, and notifies
/// `retired` when the leader takes this node out of the cluster.
struct SupervisorSink {
    supervisor: actix::Addr<Supervisor>,
    retired: Arc<tokio::sync::Notify>,
}

impl CommandSink for SupervisorSink {
    fn propose(
        &self,
        command: Command,
        actor: String,
    ) -> futures::future::BoxFuture<'static, Result<ForwardedCommit, ForwardError>> {
        let supervisor = self.supervisor.clone();
        Box::pin(async move {
            match supervisor.send(Propose { command, actor }).await {
                Ok(Ok(committed)) => Ok(ForwardedCommit {
                    outcome: committed.outcome,
                    log_index: committed.log_index,
                }),
                Ok(Err(ProposeError::NotLeader { leader_id })) => {
                    Err(ForwardError::NotLeader { leader_id })
                }
                Ok(Err(ProposeError::Fatal(detail))) => Err(ForwardError::Unavailable(detail)),
                Err(mailbox) => Err(ForwardError::Unavailable(mailbox.to_string())),
            }
        })
    }

    fn retire(&self) {
        self.retired.notify_one();
    }
}

/// Runs the node: binds its listeners, opens its storage, starts its actors, then its
/// peer and HTTP listeners, and waits for a reason to stop.
async fn serve(config: Config) -> anyhow::Result<()> {
    // Held until the node stops.
    let _idle_poll = config.host.cpu_idle_poll.then(request_idle_poll).flatten();
    // Certificates are checked before anything is bound or opened.
    let public_tls = crate::tls::public_server_config(&config.tls)?;
    let peer_tls = crate::tls::peer_tls(&config.tls)?;
    let listeners = bind_listeners(&config)?;
    // After the data directory exists: a node alone may keep its key there.
    let receipt_key = Arc::new(
        config
            .receipt_key()
            .context("cannot load the receipt key")?,
    );
    tracing::info!(public_key = %receipt_key.public_key(), "bid receipts are signed with this key");
    let members = configured_members(&config);
    let (clients, secret) = peer_clients(&config, peer_tls.as_ref());
    let (replication, votes_withheld) = open_storage(&config, &members, &clients).await?;
    let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
    let clock_status = Arc::new(crate::clock::ClockStatus::default());
    let supervisor = start_supervisor(
        &config,
        members,
        &replication,
        &clients,
        &metrics,
        &clock_status,
    );
    let retired = Arc::new(tokio::sync::Notify::new());
    let peer_side = start_peer_side(
        &config,
        &replication,
        PeerSideHandles {
            supervisor: supervisor.clone(),
            retired: retired.clone(),
            clients,
            secret,
            acceptor: peer_tls.map(|tls| tls.acceptor),
            votes_withheld,
            clock_status: clock_status.clone(),
        },
        listeners.peer,
    );
    let actors = start_actors(&config, &replication, supervisor, &metrics)?;
    let singletons = actors.singletons();
    let app_state = app_state(
        &config,
        &replication,
        actors,
        metrics,
        clock_status,
        receipt_key,
    )?;
    let http = start_http(
        &config,
        public_tls,
        HttpListeners {
            public: listeners.public,
            control: listeners.control,
            events: listeners.events,
        },
        app_state,
    )?;
    let stop = Stopping {
        retired,
        singletons,
        peer_side,
    };
    wait_and_stop(config.node.id, replication, http, stop).await
}

/// The node's listeners, bound before anything else starts.
struct Listeners {
    public: std::net::TcpListener,
    control: std::net::TcpListener,
    peer: tokio::net::TcpListener,
    /// `listen.events`, when set.
    events: Option<std::net::TcpListener>,
}

/// The listeners the HTTP servers serve on.
struct HttpListeners {
    public: std::net::TcpListener,
    control: std::net::TcpListener,
    events: Option<std::net::TcpListener>,
}

/// Creates the data directory and binds every listener: a busy or foreign address stops
/// the node before it opens its storage or starts an actor.
fn bind_listeners(config: &Config) -> anyhow::Result<Listeners> {
    std::fs::create_dir_all(&config.node.data_dir).with_context(|| {
        format!(
            "cannot create node.data_dir {}",
            config.node.data_dir.display()
        )
    })?;
    let bind = |what: &str, address: std::net::SocketAddr| {
        std::net::TcpListener::bind(address)
            .with_context(|| format!("cannot bind {what} {address}"))
    };
    let public = bind("listen.public", config.listen.public)?;
    let control = bind("listen.control", config.listen.control)?;
    let peer = bind("listen.peer", config.listen.peer)?;
    let events = match config.listen.events {
        Some(address) => Some(bind("listen.events", address)?),
        None => None,
    };
    peer.set_nonblocking(true)
        .context("cannot configure listen.peer")?;
    let peer = tokio::net::TcpListener::from_std(peer).context("cannot use listen.peer")?;
    Ok(Listeners {
        public,
        control,
        peer,
        events,
    })
}

/// The links to the other nodes, and the cluster secret they prove.
fn peer_clients(
    config: &Config,
    peer_tls: Option<&crate::tls::PeerTls>,
) -> (Arc<PeerClients>, Arc<[u8]>) {
    // Without a configured secret the node has no peers; a random one keeps the peer
    // listener closed to everyone.
    let secret: Arc<[u8]> = match &config.security.cluster_secret {
        Some(secret) => Arc::from(secret.as_bytes()),
        None => Arc::from(rand::random::<[u8; 32]>().as_slice()),
    };
    let clients = Arc::new(
        PeerClients::new(config.node.id, secret.clone())
            .with_tls(peer_tls.map(|tls| tls.connector.clone())),
    );
    (clients, secret)
}

/// Opens the replicated log and state machine, and starts the cluster (a voter) or
/// waits to be added (a standby, or a node `gavel node reset` cleared, whatever its
/// configuration says). Also answers whether this node withholds its votes meanwhile.
async fn open_storage(
    config: &Config,
    members: &[ConfiguredMember],
    clients: &Arc<PeerClients>,
) -> anyhow::Result<(replication::Replication, Arc<AtomicBool>)> {
    let node_id = config.node.id;
    let replication = replication::open_with_network(
        ReplicationOptions {
            node_id,
            data_dir: config.node.data_dir.clone(),
            heartbeat_interval_ms: config.raft.heartbeat_interval_ms,
            election_timeout_min_ms: config.raft.election_timeout_min_ms,
            election_timeout_max_ms: config.raft.election_timeout_max_ms,
            snapshot_every_entries: config.raft.snapshot_every_entries,
            event_buffer: config.pool.event_buffer,
        },
        PeerNetworkFactory::new(clients.clone()),
    )
    .await
    .context("cannot open the replicated log and state machine")?;
    let voters: BTreeMap<u64, NodeInfo> = members
        .iter()
        .filter(|member| !member.standby)
        .map(|member| (member.node_id, member.info.clone()))
        .collect();
    let votes_withheld = Arc::new(AtomicBool::new(false));
    if replication::reset::rejoining(&config.node.data_dir) {
        tokio::spawn(replication::reset::rejoin_as_standby(
            replication.raft.clone(),
            node_id,
            config.node.data_dir.clone(),
            votes_withheld.clone(),
        ));
    } else if voters.contains_key(&node_id) {
        replication
            .initialize(voters)
            .await
            .context("cannot initialize the cluster membership")?;
    }
    Ok((replication, votes_withheld))
}

fn start_supervisor(
    config: &Config,
    members: Vec<ConfiguredMember>,
    replication: &replication::Replication,
    clients: &Arc<PeerClients>,
    metrics: &Arc<Metrics>,
    clock_status: &Arc<crate::clock::ClockStatus>,
) -> Addr<Supervisor> {
    let forward_timeout_ms = config
        .raft
        .election_timeout_max_ms
        .saturating_mul(4)
        .max(2_000);
    Supervisor::new(
        replication.raft.clone(),
        SupervisorSettings {
            node_id: config.node.id,
            mailbox_capacity: config.pool.mailbox_capacity,
            members,
            forward_timeout: std::time::Duration::from_millis(forward_timeout_ms),
            peer_links: PeerLinkSettings {
                check_interval_ms: config.cluster.check_interval_ms,
                down_after_misses: config.cluster.down_after_misses,
            },
            max_clock_skew_ms: config.cluster.max_clock_skew_ms,
            clock_status: clock_status.clone(),
        },
        clients.clone(),
        metrics.clone(),
    )
    .start()
}

/// What the peer listener and the archive fetch need.
struct PeerSideHandles {
    supervisor: Addr<Supervisor>,
    retired: Arc<tokio::sync::Notify>,
    clients: Arc<PeerClients>,
    secret: Arc<[u8]>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    votes_withheld: Arc<AtomicBool>,
    clock_status: Arc<crate::clock::ClockStatus>,
}

/// The peer listener's and the archive fetch's tasks, and how to stop the listener.
struct PeerSide {
    stop_peer: tokio::sync::watch::Sender<bool>,
    peer_server: tokio::task::JoinHandle<()>,
    archive_fetch: tokio::task::JoinHandle<()>,
}

/// Starts the peer listener (commands forwarded by other nodes go to the Supervisor) and
/// the archive fetch, which fills the archive with what an installed snapshot did not
/// carry and runs until the node stops.
fn start_peer_side(
    config: &Config,
    replication: &replication::Replication,
    handles: PeerSideHandles,
    listener: tokio::net::TcpListener,
) -> PeerSide {
    let (stop_peer, peer_stopped) = tokio::sync::watch::channel(false);
    let sink = SupervisorSink {
        supervisor: handles.supervisor,
        retired: handles.retired,
    };
    let member_addresses = config
        .cluster
        .members
        .iter()
        .map(|member| member.peer.ip())
        .collect();
    let peer_server = tokio::spawn(
        PeerServer::new(replication.raft.clone(), Arc::new(sink), handles.secret)
            .with_tls(handles.acceptor)
            .withholding_votes(handles.votes_withheld)
            .with_clock_status(handles.clock_status)
            .with_member_addresses(member_addresses)
            .with_archive(replication.archive.clone())
            .run(listener, peer_stopped),
    );
    let archive_fetch = tokio::spawn(
        replication::archive_fetch::ArchiveFetch {
            node_id: config.node.id,
            archive: replication.archive.clone(),
            state: replication.state.clone(),
            raft: replication.raft.clone(),
            clients: handles.clients,
            chunk_auctions: config.archive.chunk_auctions,
        }
        .run(),
    );
    PeerSide {
        stop_peer,
        peer_server,
        archive_fetch,
    }
}

/// The node-wide actors.
struct Actors {
    supervisor: Addr<Supervisor>,
    pool: Addr<ResourcePool>,
    janitor: Addr<Janitor>,
    exchange: Option<Addr<Exchange>>,
    /// Scheduled backups, when `[backup] dir` is set (not a singleton: a node without
    /// them still serves; a failed backup is counted and logged).
    _backups: Option<Addr<crate::actors::backups::Backups>>,
    secret_hasher: Arc<crate::model::bidder_secret::SecretHasher>,
}

impl Actors {
    /// The actors the node cannot serve without (see `actors::supervision`).
    fn singletons(&self) -> Vec<Singleton> {
        let mut singletons = vec![
            Singleton::new("Supervisor", self.supervisor.clone()),
            Singleton::new("ResourcePool", self.pool.clone()),
            Singleton::new("Janitor", self.janitor.clone()),
        ];
        if let Some(exchange) = &self.exchange {
            singletons.push(Singleton::new("Exchange", exchange.clone()));
        }
        singletons
    }
}

/// Starts the ResourcePool, the Janitor and (when `[exchange] dir` is set) the Exchange,
/// each holding the Supervisor as the messages it sends it.
fn start_actors(
    config: &Config,
    replication: &replication::Replication,
    supervisor: Addr<Supervisor>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Actors> {
    let pool = ResourcePool::new(
        replication.state.clone(),
        supervisor.clone().recipient(),
        PoolSettings {
            preload_ms: config.pool.preload_ms,
            mailbox_capacity: config.pool.mailbox_capacity,
            event_buffer: config.pool.event_buffer,
        },
        replication.events.subscribe(),
    )
    .start();
    supervisor.do_send(AttachPool(pool.clone().recipient()));
    let janitor = start_janitor(config, replication, &supervisor, &pool);
    let secret_hasher = Arc::new(crate::model::bidder_secret::SecretHasher::new(
        config.limits.secret_hash_concurrency,
    ));
    let exchange = start_exchange(config, replication, &supervisor, &secret_hasher)?;
    let backups = config.backup.dir.clone().map(|dir| {
        crate::actors::backups::Backups::new(
            crate::actors::backups::BackupSettings {
                dir,
                every_ms: config.backup.every_ms,
                keep: config.backup.keep,
            },
            config.node.id,
            replication.raft.clone(),
            replication.state.clone(),
            replication.archive.clone(),
            metrics.clone(),
        )
        .start()
    });
    Ok(Actors {
        supervisor,
        pool,
        janitor,
        exchange,
        _backups: backups,
        secret_hasher,
    })
}

fn start_janitor(
    config: &Config,
    replication: &replication::Replication,
    supervisor: &Addr<Supervisor>,
    pool: &Addr<ResourcePool>,
) -> Addr<Janitor> {
    Janitor::new(
        JanitorHandles {
            supervisor: Replicator::of(supervisor),
            list_actors: pool.clone().recipient(),
            pool_sweep: pool.clone().recipient(),
            raft: replication.raft.clone(),
            state: replication.state.clone(),
            archive: replication.archive.clone(),
            sizes: replication.sizes.clone(),
        },
        JanitorSettings {
            interval_ms: config.janitor.interval_ms,
            request_retention_ms: config.janitor.request_retention_ms,
            closed_auction_linger_ms: config.janitor.closed_auction_linger_ms,
            archive_retention_ms: config.janitor.archive_retention_ms,
            snapshot_after_entries: config
                .raft
                .snapshot_every_entries
                .min(JANITOR_SNAPSHOT_AFTER_ENTRIES),
            log_entries_kept: replication::MAX_IN_SNAPSHOT_LOG_TO_KEEP,
        },
    )
    .start()
}

/// The Exchange actor, when `[exchange] dir` and its key are set.
fn start_exchange(
    config: &Config,
    replication: &replication::Replication,
    supervisor: &Addr<Supervisor>,
    secret_hasher: &Arc<crate::model::bidder_secret::SecretHasher>,
) -> anyhow::Result<Option<Addr<Exchange>>> {
    let spool_key = config
        .spool_key()
        .context("cannot read exchange.hmac_key_file")?
        .map(crate::exchange::SpoolKey::new);
    let Some((dir, hmac_key)) = config.exchange.dir.clone().zip(spool_key) else {
        return Ok(None);
    };
    let settings = ExchangeSettings {
        dir,
        interval_ms: config.exchange.interval_ms,
        half_duplex: config.exchange.half_duplex,
        key_retention_ms: config.exchange.key_retention_ms,
        hmac_key,
    };
    let exchange = Exchange::new(
        settings,
        Replicator::of(supervisor),
        replication.state.clone(),
        secret_hasher.clone(),
    );
    Ok(Some(exchange.start()))
}

/// What the HTTP handlers share.
fn app_state(
    config: &Config,
    replication: &replication::Replication,
    actors: Actors,
    metrics: Arc<Metrics>,
    clock: Arc<crate::clock::ClockStatus>,
    receipt_key: Arc<crate::receipts::ReceiptKey>,
) -> anyhow::Result<web::Data<AppState>> {
    Ok(web::Data::new(AppState {
        node_id: config.node.id,
        node_name: config.node.name.clone(),
        data_dir: config.node.data_dir.clone(),
        supervisor: actors.supervisor,
        pool: actors.pool,
        janitor: actors.janitor,
        exchange: actors.exchange,
        state: replication.state.clone(),
        archive: replication.archive.clone(),
        faults_enabled: config.faults.enabled,
        events_listener: config
            .listen
            .events
            .map(|address| api::event_listener::EventsListener {
                port: address.port(),
                tls: config.tls.public_cert.is_some(),
            }),
        applied_events: replication.events.clone(),
        lobby_frames: Arc::default(),
        history_frames: Arc::default(),
        raft: replication.raft.clone(),
        metrics,
        operators: operator_credentials(config)?,
        session_ttl_ms: config.sessions.ttl_ms,
        max_sessions_per_bidder: config.sessions.max_sessions_per_bidder,
        sign_in_throttle: api::sign_in::SignInThrottle::new(&config.limits),
        secret_hasher: actors.secret_hasher,
        streams: Arc::new(api::stream_slots::StreamSlots::new(&config.limits)),
        clock,
        receipt_signer: Arc::new(crate::receipts::ReceiptSigner::start(receipt_key.clone())?),
        receipt_key,
    }))
}

/// The public, control and events HTTP servers, running.
struct Http {
    public: actix_web::dev::Server,
    control: actix_web::dev::Server,
    events: Option<actix_web::dev::Server>,
}

/// Starts the public listener (rate-limited, HTTPS when `[tls]` says so), the events
/// listener when `listen.events` is set (the same limits and TLS), and the control
/// listener.
fn start_http(
    config: &Config,
    public_tls: Option<rustls::ServerConfig>,
    listeners: HttpListeners,
    app_state: web::Data<AppState>,
) -> anyhow::Result<Http> {
    let body_read_timeout = web::Data::new(BodyReadTimeout(std::time::Duration::from_millis(
        config.http.body_read_timeout_ms,
    )));
    let limiter = web::Data::new(RateLimiter::new(&config.limits));
    let events = match listeners.events {
        Some(listener) => Some(start_events(
            config,
            public_tls.clone(),
            listener,
            app_state.clone(),
            limiter.clone(),
        )?),
        None => None,
    };
    let public = start_public(
        config,
        public_tls,
        listeners.public,
        (app_state.clone(), limiter),
        body_read_timeout.clone(),
    )?;
    let control = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(body_read_timeout.clone())
            .wrap(actix_web::middleware::from_fn(limit_body_time))
            .wrap(api::no_store())
            .configure(api::configure_common)
            .configure(api::control::configure)
            .default_service(web::to(api::not_found))
    })
    .workers(1)
    .disable_signals()
    .listen(listeners.control)
    .context("cannot serve on listen.control")?
    .run();
    tracing::info!(
        node_id = config.node.id,
        public = %config.listen.public,
        control = %config.listen.control,
        events = ?config.listen.events,
        public_tls = config.tls.public_cert.is_some(),
        peer_tls = config.tls.peer_cert.is_some(),
        "node serving"
    );
    Ok(Http {
        public,
        control,
        events,
    })
}

fn start_public(
    config: &Config,
    public_tls: Option<rustls::ServerConfig>,
    listener: std::net::TcpListener,
    (public_state, limiter): (web::Data<AppState>, web::Data<RateLimiter>),
    body_read_timeout: web::Data<BodyReadTimeout>,
) -> anyhow::Result<actix_web::dev::Server> {
    let public = HttpServer::new(move || {
        App::new()
            .app_data(public_state.clone())
            .app_data(limiter.clone())
            .app_data(body_read_timeout.clone())
            .wrap(actix_web::middleware::from_fn(limit_body_time))
            .wrap(actix_web::middleware::from_fn(limit_requests))
            .wrap(api::no_store())
            .configure(api::configure_common)
            .configure(api::public::configure)
            .default_service(web::to(api::not_found))
    })
    .workers(config.http.workers)
    .max_connections(config.http.max_connections)
    .disable_signals();
    Ok(match public_tls {
        Some(tls) => public.listen_rustls_0_23(listener, tls),
        None => public.listen(listener),
    }
    .context("cannot serve on listen.public")?
    .run())
}

/// The events listener (`api::event_listener`): the event streams alone, on worker
/// threads at a lower priority, under the public listener's rate limits and TLS, each
/// connection served by `api::event_server` (no actix-http buffers per watcher).
fn start_events(
    config: &Config,
    tls: Option<rustls::ServerConfig>,
    listener: std::net::TcpListener,
    state: web::Data<AppState>,
    limiter: web::Data<RateLimiter>,
) -> anyhow::Result<actix_web::dev::Server> {
    let app = move || {
        // Runs on each worker's own thread, as it starts.
        api::event_listener::prepare_worker_thread();
        App::new()
            .app_data(state.clone())
            .app_data(limiter.clone())
            .wrap(actix_web::middleware::from_fn(limit_requests))
            .wrap(api::event_listener::cors())
            .configure(api::event_listener::configure)
            .default_service(web::to(api::not_found))
    };
    let limits =
        api::event_server::Limits::new(config.http.event_workers, config.http.max_connections);
    api::event_server::serve(listener, tls, limits, app).context("cannot serve on listen.events")
}

/// What ends a running node besides its listeners, and what it stops on the way out.
struct Stopping {
    retired: Arc<tokio::sync::Notify>,
    singletons: Vec<Singleton>,
    peer_side: PeerSide,
}

/// Waits for a reason to stop — a listener ends, SIGINT or SIGTERM, a node-wide actor or
/// the Raft core stops, a storage probe fails, or the operator retires this node — then
/// stops the listeners and Raft (or exits at once on a fatal error).
async fn wait_and_stop(
    node_id: u64,
    replication: replication::Replication,
    http: Http,
    stop: Stopping,
) -> anyhow::Result<()> {
    let public_handle = http.public.handle();
    let control_handle = http.control.handle();
    let events_handle = http.events.as_ref().map(|events| events.handle());
    let events = async move {
        match http.events {
            Some(events) => events.await,
            None => std::future::pending().await,
        }
    };
    let servers = futures::future::try_join3(http.public, http.control, events);
    tokio::select! {
        result = servers => {
            result.context("a listener stopped")?;
        }
        signal = shutdown_signal() => tracing::info!(signal, "stopping"),
        stopped = singleton_stopped(stop.singletons) => {
            // See `actors::supervision`: without this actor the node cannot serve, and
            // while it runs on, its Raft core may go on leading a cluster it cannot serve.
            tracing::error!(actor = stopped, "a node-wide actor stopped; the node exits so that another leads and its service manager restarts it");
            eprintln!("gavel: node stopped with an error: the {stopped} actor stopped");
            std::process::exit(FATAL_EXIT_CODE);
        }
        () = stop.retired.notified() => {
            tracing::warn!(node_id, "removed from the cluster by an operator; stopping");
        }
        fatal = storage_failed(&replication) => {
            tracing::error!(%fatal, "a storage probe failed; the node exits so that its service manager restarts it from its durable log");
            eprintln!("gavel: node stopped with an error: a storage probe failed: {fatal}");
            std::process::exit(FATAL_EXIT_CODE);
        }
        fatal = raft_stopped(replication.raft.clone()) => {
            tracing::error!(%fatal, "the Raft core stopped; the node exits so that its service manager restarts it from its durable log");
            // No graceful stop: the storage call that failed may still hold a thread
            // (a stalled disk), and the runtime would wait for it forever. Every
            // acknowledged write is already on disk, so ending here loses nothing.
            eprintln!("gavel: node stopped with an error: the Raft core stopped: {fatal}");
            std::process::exit(FATAL_EXIT_CODE);
        }
    }
    if let Some(events_handle) = events_handle {
        events_handle.stop(true).await;
    }
    public_handle.stop(true).await;
    control_handle.stop(true).await;
    let peer_side = stop.peer_side;
    let _ = peer_side.stop_peer.send(true);
    let _ = peer_side.peer_server.await;
    peer_side.archive_fetch.abort();
    let _ = peer_side.archive_fetch.await;
    if let Err(error) = replication.raft.shutdown().await {
        tracing::warn!(%error, "raft did not shut down cleanly");
    }
    tracing::info!(node_id, "node stopped");
    Ok(())
}

/// How often `storage_failed` probes the node's databases.
const STORAGE_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves when a storage probe fails (see `Replication::probe_storage`): a failed or
/// full disk that Raft's own calls have not run into yet.
async fn storage_failed(replication: &replication::Replication) -> String {
    loop {
        tokio::time::sleep(STORAGE_PROBE_INTERVAL).await;
        if let Err(error) = replication.probe_storage().await {
            return error.to_string();
        }
    }
}

/// The exit status of a node whose Raft core stopped, or one of whose node-wide actors
/// stopped (EX_SOFTWARE).
pub const FATAL_EXIT_CODE: i32 = 70;

/// The exit status of a node that will not start because its Raft log lost records it
/// had made durable (EX_DATAERR): restarting cannot help; `gavel node reset` clears it.
pub const DAMAGED_LOG_EXIT_CODE: u8 = 65;

/// Whether a node stopped because its Raft log is damaged (`DAMAGED_LOG_EXIT_CODE`).
pub fn is_damaged_log(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<replication::ReplicationError>()
            .is_some_and(replication::ReplicationError::is_damaged_log)
    })
}

/// Resolves once the Raft core has stopped on a fatal error (a log write failed, say on
/// a full disk), naming it. Such a node can neither vote nor apply: it must restart.
async fn raft_stopped(raft: replication::GavelRaft) -> String {
    let mut metrics = raft.metrics();
    loop {
        if let Err(fatal) = &metrics.borrow().running_state {
            return fatal.to_string();
        }
        if metrics.changed().await.is_err() {
            return "the Raft core ended".to_string();
        }
    }
}

/// The operators the control listener accepts: the admin token under `operator_name`,
/// then every `[[security.operators]]` entry.
fn operator_credentials(config: &Config) -> anyhow::Result<Vec<OperatorCredential>> {
    let security = &config.security;
    let admin = security
        .admin_token
        .as_deref()
        .map(|token| OperatorCredential::new(&security.operator_name, token));
    let operators: Vec<OperatorCredential> = admin
        .into_iter()
        .chain(
            security
                .operators
                .iter()
                .map(|operator| OperatorCredential::new(&operator.name, &operator.token)),
        )
        .collect();
    anyhow::ensure!(
        !operators.is_empty(),
        "security.admin_token is not set (nor GAVEL_ADMIN_TOKEN), and no [[security.operators]]"
    );
    Ok(operators)
}

/// Resolves on SIGINT or SIGTERM, naming the signal.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

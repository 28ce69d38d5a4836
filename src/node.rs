//! Starts one Gavel node and stops it: storage and Raft, the actors, the public and
//! control listeners, and the shutdown on SIGINT or SIGTERM.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::Actor;
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use sha2::{Digest, Sha256};

use crate::actors::janitor::{Janitor, JanitorSettings};
use crate::actors::resource_pool::{PoolSettings, ResourcePool};
use crate::actors::supervisor::{AttachPool, Supervisor};
use crate::api::metrics::Metrics;
use crate::api::{self, AppState};
use crate::config::Config;
use crate::replication::{self, NodeInfo, ReplicationOptions};

/// Runs a node until it is told to stop. Blocks the calling thread.
pub fn run(config: Config) -> anyhow::Result<()> {
    actix_rt::System::new().block_on(serve(config))
}

/// The voters of the configured cluster, as Raft membership.
fn initial_voters(config: &Config) -> BTreeMap<u64, NodeInfo> {
    config
        .cluster
        .members
        .iter()
        .filter(|member| member.role == crate::config::Role::Voter)
        .map(|member| {
            let info = NodeInfo {
                name: member.name.clone(),
                public_url: member.public_url.clone(),
                control_url: member.control_url.clone(),
                peer_addr: member.peer.to_string(),
            };
            (member.id, info)
        })
        .collect()
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let node_id = config.node.id;
    std::fs::create_dir_all(&config.node.data_dir).with_context(|| {
        format!(
            "cannot create node.data_dir {}",
            config.node.data_dir.display()
        )
    })?;
    let replication = replication::open(ReplicationOptions {
        node_id,
        data_dir: config.node.data_dir.clone(),
        heartbeat_interval_ms: config.raft.heartbeat_interval_ms,
        election_timeout_min_ms: config.raft.election_timeout_min_ms,
        election_timeout_max_ms: config.raft.election_timeout_max_ms,
        snapshot_every_entries: config.raft.snapshot_every_entries,
        event_buffer: config.pool.event_buffer,
    })
    .await
    .context("cannot open the replicated log and state machine")?;
    replication
        .initialize(initial_voters(&config))
        .await
        .context("cannot initialize the cluster membership")?;

    let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
    let supervisor = Supervisor::new(
        replication.raft.clone(),
        node_id,
        metrics.clone(),
        config.pool.mailbox_capacity,
    )
    .start();
    let pool = ResourcePool::new(
        replication.state.clone(),
        supervisor.clone(),
        PoolSettings {
            preload_ms: config.pool.preload_ms,
            mailbox_capacity: config.pool.mailbox_capacity,
            event_buffer: config.pool.event_buffer,
        },
        replication.events.subscribe(),
    )
    .start();
    supervisor.do_send(AttachPool(pool.clone()));
    let janitor = Janitor::new(
        supervisor.clone(),
        pool.clone(),
        JanitorSettings {
            interval_ms: config.janitor.interval_ms,
            request_retention_ms: config.janitor.request_retention_ms,
            closed_auction_linger_ms: config.janitor.closed_auction_linger_ms,
        },
    )
    .start();

    let admin_token = config
        .security
        .admin_token
        .clone()
        .context("security.admin_token is not set (nor GAVEL_ADMIN_TOKEN)")?;
    let app_state = web::Data::new(AppState {
        node_id,
        supervisor,
        pool,
        janitor,
        state: replication.state.clone(),
        raft: replication.raft.clone(),
        metrics,
        admin_token_hash: Sha256::digest(admin_token.as_bytes()).into(),
        operator_name: config.security.operator_name.clone(),
        session_ttl_ms: config.sessions.ttl_ms,
    });

    let public_state = app_state.clone();
    let public = HttpServer::new(move || {
        App::new()
            .app_data(public_state.clone())
            .configure(api::configure_common)
            .configure(api::public::configure)
            .default_service(web::to(api::not_found))
    })
    .workers(config.http.workers)
    .max_connections(config.http.max_connections)
    .disable_signals()
    .bind(config.listen.public)
    .with_context(|| format!("cannot bind listen.public {}", config.listen.public))?
    .run();
    let control_state = app_state.clone();
    let control = HttpServer::new(move || {
        App::new()
            .app_data(control_state.clone())
            .configure(api::configure_common)
            .configure(api::control::configure)
            .default_service(web::to(api::not_found))
    })
    .workers(1)
    .disable_signals()
    .bind(config.listen.control)
    .with_context(|| format!("cannot bind listen.control {}", config.listen.control))?
    .run();
    tracing::info!(node_id, public = %config.listen.public, control = %config.listen.control, "node serving");

    let public_handle = public.handle();
    let control_handle = control.handle();
    let servers = futures::future::try_join(public, control);
    tokio::select! {
        result = servers => {
            result.context("a listener stopped")?;
        }
        signal = shutdown_signal() => tracing::info!(signal, "stopping"),
    }
    public_handle.stop(true).await;
    control_handle.stop(true).await;
    if let Err(error) = replication.raft.shutdown().await {
        tracing::warn!(%error, "raft did not shut down cleanly");
    }
    tracing::info!(node_id, "node stopped");
    Ok(())
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

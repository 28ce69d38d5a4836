//! What `GET /control/v1/node` says of the actors a node runs (docs/DESIGN.md, "The
//! actors"): every node keeps an Auction actor per live auction (hot actors) and arms
//! their deadline timers only while it leads; the ResourcePool, the Supervisor, its
//! PeerLinks and the Janitor run everywhere, the Exchange where its spool is configured.
//! The counts come from the actors themselves, each asked with a bound.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::actors::janitor::GetReport;
use crate::actors::resource_pool::CountActors;
use crate::actors::supervisor::CountLinks;

/// How long the count waits for each actor asked.
const ASK_WAIT: Duration = Duration::from_secs(2);

/// The actors of one node, by kind.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct NodeActors {
    /// Auction actors running: one per live auction (and per auction opening within
    /// `pool.preload_ms`), on every node.
    pub auctions_live: u64,
    /// Auction actors whose deadline timer is armed: on the leader, each with a deadline;
    /// elsewhere none.
    pub timers_armed: u64,
    pub supervisor: u64,
    pub resource_pool: u64,
    /// One per other node of the configuration or the membership.
    pub peer_links: u64,
    pub janitor: u64,
    /// 1 where `[exchange] dir` is set.
    pub exchange: u64,
    pub restarts: ActorRestarts,
}

/// Actors started again since the node started.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ActorRestarts {
    /// Auction actors the Janitor's sweeps (re)started.
    pub auctions_started: u64,
    /// Found dead (a panic) and replaced.
    pub auctions_crashed: u64,
    /// Rebuilt because their view disagreed with the state machine.
    pub auctions_rebuilt: u64,
    /// Replaced because their mailbox stopped moving.
    pub auctions_stuck_replaced: u64,
    /// PeerLinks started again after a panic.
    pub peer_links: u64,
}

/// Asks the pool, the Supervisor and the Janitor; an actor that does not answer within
/// `ASK_WAIT` counts as 0 in its own figures.
pub async fn node_actors(app: &AppState) -> NodeActors {
    let counts = tokio::time::timeout(ASK_WAIT, app.pool.send(CountActors)).await;
    let links = tokio::time::timeout(ASK_WAIT, app.supervisor.send(CountLinks)).await;
    let report = tokio::time::timeout(ASK_WAIT, app.janitor.send(GetReport)).await;
    let mut actors = NodeActors {
        supervisor: u64::from(links.as_ref().is_ok_and(|answer| answer.is_ok())),
        resource_pool: u64::from(counts.as_ref().is_ok_and(|answer| answer.is_ok())),
        janitor: u64::from(report.as_ref().is_ok_and(|answer| answer.is_ok())),
        exchange: u64::from(
            app.exchange
                .as_ref()
                .is_some_and(|exchange| exchange.connected()),
        ),
        ..NodeActors::default()
    };
    if let Ok(Ok(counts)) = counts {
        actors.auctions_live = counts.auctions_live;
        actors.timers_armed = counts.timers_armed;
    }
    if let Ok(Ok(links)) = links {
        actors.peer_links = links.peer_links;
        actors.restarts.peer_links = links.restarts;
    }
    if let Ok(Ok(report)) = report {
        actors.restarts.auctions_started = report.actors_started;
        actors.restarts.auctions_crashed = report.actors_crashed;
        actors.restarts.auctions_rebuilt = report.actors_rebuilt;
        actors.restarts.auctions_stuck_replaced = report.actors_stuck_replaced;
    }
    actors
}

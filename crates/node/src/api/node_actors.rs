//! What `GET /control/v1/node` says of the actors a node runs (docs/DESIGN.md, "The
//! actors"): every node keeps an Auction actor per live auction (hot actors) and arms
//! their deadline timers only while it leads; the ResourcePool, the Supervisor, its
//! PeerLinks and the Janitor run everywhere, the Exchange where its spool is configured.
//! The counts come from the actors themselves, each asked with a bound.

use std::time::Duration;

use actix_web::get;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use crate::actors::janitor::GetReport;
use crate::actors::resource_pool::CountActors;
use crate::actors::supervisor::CountLinks;

/// How long the count waits for each actor asked.
const ASK_WAIT: Duration = Duration::from_secs(2);

/// The actors of one node, by kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
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

/// One member's actors, as `GET /control/v1/cluster/actors` gathered them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberActors {
    pub node_id: u64,
    /// Absent when the node did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actors: Option<NodeActors>,
    /// Why there are no counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every member's actors, by node id.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClusterActors {
    pub nodes: Vec<MemberActors>,
}

/// Every node's actors by kind (each node's `GET /control/v1/node`, asked with the
/// caller's token, 3 s at most each; this node's read directly): what the dashboard's node
/// table shows, since a page may only talk to the node that served it.
#[utoipa::path(tag = "control", responses((status = 200, body = ClusterActors)), security(("admin" = [])))]
#[get("/control/v1/cluster/actors")]
pub async fn cluster_actors(
    app: actix_web::web::Data<AppState>,
    _operator: super::auth::Operator,
    request: actix_web::HttpRequest,
) -> Result<actix_web::web::Json<ClusterActors>, crate::model::error::ApiError> {
    let view = app
        .supervisor
        .send(crate::actors::supervisor::GetClusterView)
        .await?;
    let token = super::auth::bearer_token(&request)
        .unwrap_or_default()
        .to_string();
    let asked = view
        .nodes
        .iter()
        .filter(|node| node.role != "removed")
        .map(|node| {
            let (node_id, url, token, app) = (
                node.node_id,
                format!("{}/control/v1/node", node.control_url.trim_end_matches('/')),
                token.clone(),
                app.clone(),
            );
            async move {
                let answer = if node_id == app.node_id {
                    Ok(node_actors(&app).await)
                } else {
                    remote_actors(url, token).await
                };
                match answer {
                    Ok(actors) => MemberActors {
                        node_id,
                        actors: Some(actors),
                        error: None,
                    },
                    Err(error) => MemberActors {
                        node_id,
                        actors: None,
                        error: Some(error),
                    },
                }
            }
        });
    let nodes = futures::future::join_all(asked).await;
    Ok(actix_web::web::Json(ClusterActors { nodes }))
}

/// Another node's actors, from its control listener.
async fn remote_actors(url: String, token: String) -> Result<NodeActors, String> {
    actix_web::web::block(move || {
        let response = ureq::get(&url)
            .timeout(Duration::from_secs(3))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .map_err(|error| error.to_string())?;
        let status: serde_json::Value = response.into_json().map_err(|error| error.to_string())?;
        serde_json::from_value(status["actors"].clone()).map_err(|error| error.to_string())
    })
    .await
    .map_err(|error| error.to_string())?
}

//! What `gavel ctl migrate` needs besides adding and removing standbys: each node's
//! version and disk (`GET /control/v1/node`, for the precheck), checkpoints that every
//! node digests at the same log index (to verify the target holds the same state), and
//! the cutover (`POST /control/v1/cluster/replace`).

use actix_web::http::Method;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::auth::Operator;
use super::cluster_nodes::{node_change_error, record, relay_to_leader};
use super::problem::Problem;
use super::AppState;
use crate::actors::supervisor::{
    ClusterView, GetClusterView, NodeChangeError, Propose, ReplaceVoter,
};
use crate::model::error::ApiError;
use crate::model::requests::{JsonObject, ReplaceRequest};
use crate::replication::CheckpointDigest;
use gavel_kernel::{Command, Outcome};

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(node_status)
        .service(take_checkpoint)
        .service(checkpoint)
        .service(replace);
}

/// This node: who it is, which Gavel it runs, where it stands, and its disk.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NodeStatus {
    pub node_id: u64,
    pub name: String,
    /// The Gavel version this node runs.
    pub version: String,
    pub last_applied_index: u64,
    /// Bytes its data directory occupies.
    pub data_dir_bytes: u64,
    /// Bytes still free on the data directory's file system.
    pub free_disk_bytes: u64,
    /// Closed auctions in this node's archive.
    pub archive_auctions: u64,
    /// Their order-independent digest: equal on nodes whose archives hold the same records.
    pub archive_digest: String,
    /// The node is still fetching archived auctions a snapshot did not carry.
    pub archive_catching_up: bool,
    /// The actors it runs, by kind, and their restarts.
    pub actors: super::node_actors::NodeActors,
}

#[utoipa::path(tag = "control", responses((status = 200, body = NodeStatus),
    (status = 503, description = "unavailable: the data directory or the archive cannot be read", body = Problem)),
    security(("admin" = [])))]
#[get("/control/v1/node")]
async fn node_status(
    app: web::Data<AppState>,
    _operator: Operator,
) -> Result<web::Json<NodeStatus>, ApiError> {
    let (data_dir, archive) = (app.data_dir.clone(), app.archive.clone());
    let (used, free, archive) = web::block(move || {
        Ok::<_, String>((
            crate::disk::disk_usage(&data_dir).map_err(|error| error.to_string())?,
            crate::disk::free_bytes(&data_dir).map_err(|error| error.to_string())?,
            archive.status().map_err(|error| error.to_string())?,
        ))
    })
    .await
    .map_err(|error| ApiError::Unavailable(error.to_string()))?
    .map_err(|error| {
        ApiError::Unavailable(format!("cannot measure the data directory: {error}"))
    })?;
    // Asked before the state is read: no lock is held while the actors answer.
    let actors = super::node_actors::node_actors(&app).await;
    Ok(web::Json(NodeStatus {
        node_id: app.node_id,
        name: app.node_name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        last_applied_index: app.state.read().last_applied_index,
        data_dir_bytes: used,
        free_disk_bytes: free,
        archive_auctions: archive.auctions,
        archive_digest: archive.digest,
        archive_catching_up: archive.catching_up,
        actors,
    }))
}

/// A checkpoint proposed through the log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckpointTaken {
    pub label: String,
    pub log_index: u64,
}

/// Proposes a checkpoint: every node notes its state's digest, and what its archive of
/// closed auctions holds, right after applying it.
#[utoipa::path(tag = "control", responses((status = 201, body = CheckpointTaken),
    (status = 503, description = "no_leader", body = Problem)), security(("admin" = [])))]
#[post("/control/v1/cluster/checkpoints")]
async fn take_checkpoint(
    app: web::Data<AppState>,
    operator: Operator,
) -> Result<HttpResponse, ApiError> {
    let label = format!("checkpoint-{}", uuid::Uuid::new_v4().simple());
    let command = Command::Checkpoint {
        label: label.clone(),
    };
    let committed = app
        .supervisor
        .send(Propose {
            command,
            actor: operator.0,
        })
        .await?
        .map_err(ApiError::from)?;
    match committed.outcome {
        Ok(Outcome::CheckpointTaken) => Ok(HttpResponse::Created().json(CheckpointTaken {
            label,
            log_index: committed.log_index,
        })),
        Ok(other) => Err(super::public::unexpected(other)),
        Err(rejection) => Err(rejection.into()),
    }
}

/// The digest this node noted for a checkpoint (it keeps the newest 32).
#[utoipa::path(tag = "control", params(("label" = String, Path)), responses(
    (status = 200, body = CheckpointDigest),
    (status = 404, description = "not_found: not applied here (yet), or too old", body = Problem)),
    security(("admin" = [])))]
#[get("/control/v1/state/checkpoints/{label}")]
async fn checkpoint(
    app: web::Data<AppState>,
    _operator: Operator,
    path: web::Path<String>,
) -> Result<web::Json<CheckpointDigest>, ApiError> {
    let label = path.into_inner();
    let state = app.state.read();
    state
        .checkpoints
        .iter()
        .find(|checkpoint| checkpoint.label == label)
        .cloned()
        .map(web::Json)
        .ok_or_else(|| ApiError::NotFound(format!("no checkpoint {label} applied on this node")))
}

/// The cutover of a migration: the standby `to_node_id` takes the vote of the voter
/// `from_node_id`, which leaves the cluster and is told to stop. The leader cannot be
/// replaced: hand leadership over first.
#[utoipa::path(tag = "control", request_body = ReplaceRequest, responses(
    (status = 200, description = "done; the cluster as it is now", body = ClusterView),
    (status = 409, description = "conflict: not a voter and a caught-up standby, the leader, or a change under way", body = Problem),
    (status = 422, description = "invalid_request", body = Problem),
    (status = 503, description = "no_leader, or the change failed", body = Problem)),
    security(("admin" = [])))]
#[post("/control/v1/cluster/replace")]
async fn replace(
    app: web::Data<AppState>,
    operator: Operator,
    request: HttpRequest,
    body: web::Json<JsonObject<ReplaceRequest>>,
) -> Result<HttpResponse, ApiError> {
    let ReplaceRequest {
        from_node_id: from,
        to_node_id: to,
    } = body.into_inner().into_inner();
    if from == 0 || to == 0 || from == to {
        return Err(ApiError::invalid(
            "from_node_id and to_node_id must be two different node ids, 1 or more".to_string(),
        ));
    }
    match app.supervisor.send(ReplaceVoter { from, to }).await? {
        Err(NodeChangeError::NotLeader) => {
            let body = serde_json::json!({ "from_node_id": from, "to_node_id": to });
            return relay_to_leader(
                &app,
                &request,
                Method::POST,
                "/control/v1/cluster/replace",
                Some(body),
            )
            .await;
        }
        other => other.map_err(node_change_error)?,
    }
    tracing::warn!(operator = %operator.0, from, to, "cutover done");
    record(
        &app,
        &operator,
        "migrate",
        format!("node {from} to node {to}"),
    )
    .await;
    Ok(HttpResponse::Ok().json(app.supervisor.send(GetClusterView).await?))
}

//! Cluster changes an operator makes on the control listener: adding and removing standby
//! nodes while the cluster runs (`gavel ctl node add|remove`), and handing leadership
//! over (`switchover`, in `control`). Each is made by the leader's Supervisor; sent to a
//! node that does not lead, the request is relayed to the leader's control listener with
//! the same token and its answer passed back.

use actix_web::http::{Method, StatusCode};
use actix_web::{delete, post, web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::auth::Operator;
use super::problem::Problem;
use super::AppState;
use crate::actors::supervisor::{
    AddStandby, Added, ClusterView, GetClusterView, NodeChangeError, PromoteStandby, RemoveStandby,
};
use crate::config::is_http_url;
use crate::model::error::ApiError;
use crate::model::requests::{JsonObject, NodeRequest};
use crate::replication::NodeInfo;
use gavel_kernel::types::validate_text;
use gavel_kernel::{Command, Rejection};

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(add_node).service(remove_node);
}

/// How long a relayed request may take: adding a standby waits for it to catch up.
const RELAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(150);

/// Adds a running node as a standby (a Raft learner that holds all state and is promoted
/// when a voter dies). The precheck reaches the node on its peer address with the
/// cluster secret; the answer comes once the node has caught up.
#[utoipa::path(tag = "control", request_body = NodeRequest, responses(
    (status = 201, description = "added; the cluster as it is now", body = ClusterView),
    (status = 200, description = "already a standby with these addresses, or dry_run and the precheck passed", body = ClusterView),
    (status = 409, description = "conflict: already a member, the precheck failed, or a change under way", body = Problem),
    (status = 422, description = "invalid_request", body = Problem),
    (status = 503, description = "no_leader, or the change failed", body = Problem)),
    security(("admin" = [])))]
#[post("/control/v1/cluster/nodes")]
async fn add_node(
    app: web::Data<AppState>,
    operator: Operator,
    request: HttpRequest,
    body: web::Json<JsonObject<NodeRequest>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner().into_inner();
    let (dry_run, voter) = (body.dry_run, body.voter);
    let (node_id, info) = node_info(body)?;
    let relayed = serde_json::json!({
        "node_id": node_id,
        "name": info.name,
        "peer": info.peer_addr,
        "public_url": info.public_url,
        "control_url": info.control_url,
        "dry_run": dry_run,
        "voter": voter,
    });
    let target = format!("node {node_id} at {}", info.peer_addr);
    let answer = app
        .supervisor
        .send(AddStandby {
            node_id,
            info,
            dry_run,
            voter,
        })
        .await?;
    let added = match answer {
        Err(NodeChangeError::NotLeader) => {
            return relay_to_leader(
                &app,
                &request,
                Method::POST,
                "/control/v1/cluster/nodes",
                Some(relayed),
            )
            .await
        }
        other => other.map_err(node_change_error)?,
    };
    if added == Added::Added {
        tracing::info!(operator = %operator.0, node_id, "standby added");
        record(&app, &operator, "node add", target.clone()).await;
    }
    let promoted =
        voter && added != Added::Checked && promote(&app, &operator, node_id, &target).await?;
    let view = app.supervisor.send(GetClusterView).await?;
    Ok(if added == Added::Added || promoted {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// Gives the standby `node_id` a vote; answers whether it was not a voter before.
async fn promote(
    app: &AppState,
    operator: &Operator,
    node_id: u64,
    target: &str,
) -> Result<bool, ApiError> {
    let promoted = app
        .supervisor
        .send(PromoteStandby { node_id })
        .await?
        .map_err(node_change_error)?;
    if promoted {
        tracing::info!(operator = %operator.0, node_id, "voter added");
        record(app, operator, "node add voter", target.to_string()).await;
    }
    Ok(promoted)
}

/// `?force=true` on a node removal.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct RemoveQuery {
    /// Remove a voter even when fewer than 3 would remain.
    #[serde(default)]
    force: bool,
}

/// Takes a node out of the cluster; the node is told to stop. A standby, or a voter other
/// than the leader while 3 voters remain (fewer only with `force`).
#[utoipa::path(tag = "control", params(("id" = u64, Path, minimum = 1), RemoveQuery), responses(
    (status = 200, description = "removed; the cluster as it is now", body = ClusterView),
    (status = 404, description = "not_found: not a member", body = Problem),
    (status = 409, description = "conflict: the leader, a voter when fewer than 3 would remain (without force), or a change under way", body = Problem),
    (status = 422, description = "invalid_request: not a node id", body = Problem),
    (status = 503, description = "no_leader, or the change failed", body = Problem)),
    security(("admin" = [])))]
#[delete("/control/v1/cluster/nodes/{id}")]
async fn remove_node(
    app: web::Data<AppState>,
    operator: Operator,
    request: HttpRequest,
    path: web::Path<String>,
    query: web::Query<RemoveQuery>,
) -> Result<HttpResponse, ApiError> {
    let force = query.force;
    let node_id: u64 = path.parse().ok().filter(|id| *id >= 1).ok_or_else(|| {
        ApiError::invalid("the node id must be an integer, 1 or more".to_string())
    })?;
    if node_id == app.node_id {
        return Err(Rejection::Conflict(format!(
            "node {node_id} answers this request; send it to another node"
        ))
        .into());
    }
    match app
        .supervisor
        .send(RemoveStandby { node_id, force })
        .await?
    {
        Err(NodeChangeError::NotLeader) => {
            let path = format!("/control/v1/cluster/nodes/{node_id}?force={force}");
            return relay_to_leader(&app, &request, Method::DELETE, &path, None).await;
        }
        other => other.map_err(node_change_error)?,
    }
    tracing::info!(operator = %operator.0, node_id, force, "node removed");
    record(&app, &operator, "node remove", format!("node {node_id}")).await;
    Ok(HttpResponse::Ok().json(app.supervisor.send(GetClusterView).await?))
}

/// The id and addresses of the node a request names, checked.
fn node_info(request: NodeRequest) -> Result<(u64, NodeInfo), ApiError> {
    if request.node_id == 0 {
        return Err(ApiError::invalid("node_id must be 1 or more".to_string()));
    }
    validate_text("name", &request.name, true)?;
    let peer: std::net::SocketAddr = request.peer.parse().map_err(|_| {
        ApiError::invalid("peer must be an IP address and port, like 10.0.0.5:7081".to_string())
    })?;
    if peer.port() == 0 {
        return Err(ApiError::invalid(
            "peer must name a port other than 0".to_string(),
        ));
    }
    for (field, url) in [
        ("public_url", &request.public_url),
        ("control_url", &request.control_url),
    ] {
        validate_text(field, url, true)?;
        if !is_http_url(url) || url.contains(char::is_whitespace) {
            return Err(ApiError::invalid(format!(
                "{field} must start with http:// or https:// and hold no spaces"
            )));
        }
    }
    Ok((
        request.node_id,
        NodeInfo {
            name: request.name,
            public_url: request.public_url,
            control_url: request.control_url,
            peer_addr: peer.to_string(),
        },
    ))
}

pub(super) fn node_change_error(error: NodeChangeError) -> ApiError {
    match error {
        NodeChangeError::Invalid(detail) => ApiError::invalid(detail),
        NodeChangeError::NotFound(detail) => ApiError::NotFound(detail),
        NodeChangeError::Conflict(detail) => Rejection::Conflict(detail).into(),
        NodeChangeError::NotLeader => ApiError::NoLeader,
        NodeChangeError::Failed(detail) => ApiError::Unavailable(detail),
    }
}

/// Puts a cluster change on the operator audit trail once it is made.
pub(super) async fn record(app: &AppState, operator: &Operator, action: &str, target: String) {
    let command = Command::RecordOperatorAction {
        action: action.to_string(),
        target,
        reason: String::new(),
    };
    if let Err(error) = app.propose(command, operator.0.clone()).await {
        tracing::warn!(%error, action, "cluster change made but not recorded in the audit trail");
    }
}

/// The leader's control URL, or `NoLeader`.
pub(super) async fn leader_control_url(app: &AppState) -> Result<String, ApiError> {
    let view = app.supervisor.send(GetClusterView).await?;
    let leader = view.leader_id.ok_or(ApiError::NoLeader)?;
    view.nodes
        .iter()
        .find(|node| node.node_id == leader)
        .map(|node| node.control_url.clone())
        .ok_or(ApiError::NoLeader)
}

/// Sends the request to the leader's control listener, with the token it came with, and
/// relays the answer.
pub(super) async fn relay_to_leader(
    app: &AppState,
    request: &HttpRequest,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<HttpResponse, ApiError> {
    let leader_url = leader_control_url(app).await?;
    let token = super::auth::bearer_token(request)
        .unwrap_or_default()
        .to_string();
    let url = format!("{leader_url}{path}");
    let answer = web::block(move || {
        let call = ureq::request(method.as_str(), &url)
            .timeout(RELAY_TIMEOUT)
            .set("Authorization", &format!("Bearer {token}"));
        let sent = match body {
            Some(body) => call.send_json(body),
            None => call.call(),
        };
        match sent {
            Ok(response) | Err(ureq::Error::Status(_, response)) => {
                let status = response.status();
                let content_type = response.content_type().to_string();
                Ok((
                    status,
                    content_type,
                    response.into_string().unwrap_or_default(),
                ))
            }
            Err(error) => Err(error.to_string()),
        }
    })
    .await
    .map_err(|error| ApiError::Unavailable(error.to_string()))?
    .map_err(|error| ApiError::Unavailable(format!("the leader did not answer: {error}")))?;
    let (status, content_type, text) = answer;
    let status =
        StatusCode::from_u16(status).map_err(|error| ApiError::Unavailable(error.to_string()))?;
    Ok(HttpResponse::build(status)
        .content_type(content_type)
        .body(text))
}

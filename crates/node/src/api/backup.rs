//! `GET /control/v1/backup`: a backup of this node's applied state (see
//! `replication::backup`), taken while the cluster runs. A node whose archive is still
//! being filled from its peers (`replication::archive_fetch`) refuses: the backup would
//! miss closed sales. `gavel ctl backup` asks the leader.

use actix_web::{get, web, HttpResponse};

use super::auth::Operator;
use super::problem::Problem;
use super::AppState;
use crate::actors::wall_clock_ms;
use crate::model::error::ApiError;
use crate::replication::backup::take_backup;

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(backup);
}

/// The backup file: a header line (`GAVEL-BACKUP 1`), a JSON header with the log index,
/// counts, digest and the payload's SHA-256, then the payload. `X-Gavel-Backup-Index`
/// names the log index it is consistent at.
#[utoipa::path(tag = "control", responses(
    (status = 200, description = "the backup file", content_type = "application/octet-stream", body = String),
    (status = 503, description = "unavailable: the state could not be read, or this node's archive is still being filled from its peers", body = Problem)),
    security(("admin" = [])))]
#[get("/control/v1/backup")]
async fn backup(app: web::Data<AppState>, operator: Operator) -> Result<HttpResponse, ApiError> {
    let (state, archive, node_id) = (app.state.clone(), app.archive.clone(), app.node_id);
    let bytes = web::block(move || {
        if archive.catching_up() {
            return Ok(None);
        }
        take_backup(&state, &archive, node_id, wall_clock_ms()).map(Some)
    })
    .await
    .map_err(|error| ApiError::Unavailable(error.to_string()))?
    .map_err(|error| ApiError::Unavailable(format!("cannot take a backup: {error}")))?
    .ok_or_else(|| {
        ApiError::Unavailable(
            "this node's archive is still fetching closed auctions from its peers; a backup now would miss some: try again shortly, or take it from the leader".to_string(),
        )
    })?;
    let index = crate::replication::backup::read_header(&bytes)
        .map(|header| header.last_applied_index)
        .unwrap_or_default();
    tracing::info!(operator = %operator.0, bytes = bytes.len(), index, "backup taken");
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("X-Gavel-Backup-Index", index.to_string()))
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"gavel-{node_id}-{index}.backup\""),
        ))
        .body(bytes))
}

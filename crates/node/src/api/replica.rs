//! What this replica has applied, for checkers that compare replicas: where it stands in
//! the log, a digest of its whole kernel state, and an auction as the kernel holds it
//! (bids with their hash links, audit trail, reserve; the lottery's seed only once the
//! auction closed). Control listener only.
//!
//! `gavel chaos` reads these from every node after healing a fault: replicas that applied
//! the same log must answer the same digest, and each copy of an auction must satisfy the
//! kernel's named invariants.

use actix_web::{get, web};
use serde::Serialize;

use super::auth::Operator;
use super::problem::Problem;
use super::AppState;
use crate::model::error::ApiError;
use gavel_kernel::{Auction, Rejection};

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(replica_state).service(replica_auction);
}

/// This replica's place in the log and a digest of everything it applied.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplicaState {
    pub node_id: u64,
    /// Index of the last applied log entry (0 before anything was applied).
    pub last_applied_index: u64,
    /// SHA-256 over the canonical encoding of the kernel state at that index: equal on
    /// every replica that applied the same log.
    pub digest: String,
    /// Ids of the auctions in the state, ascending.
    pub auction_ids: Vec<String>,
}

#[utoipa::path(tag = "control", responses((status = 200, body = ReplicaState)), security(("admin" = [])))]
#[get("/control/v1/state")]
async fn replica_state(app: web::Data<AppState>, _operator: Operator) -> web::Json<ReplicaState> {
    let mut state = app.state.write();
    web::Json(ReplicaState {
        node_id: app.node_id,
        last_applied_index: state.last_applied_index,
        digest: state.digest(),
        auction_ids: state.kernel.auctions.keys().cloned().collect(),
    })
}

/// An auction as this replica's kernel holds it, but for the lottery's secret while the
/// auction is open (`Auction::without_open_secrets`).
#[utoipa::path(tag = "control", params(("id" = String, Path)), responses(
    (status = 200, description = "the kernel's auction record, as JSON", body = Object),
    (status = 404, description = "auction_not_found", body = Problem)), security(("admin" = [])))]
#[get("/control/v1/state/auctions/{id}")]
async fn replica_auction(
    app: web::Data<AppState>,
    _operator: Operator,
    path: web::Path<String>,
) -> Result<web::Json<Auction>, ApiError> {
    let state = app.state.read();
    let auction = state
        .kernel
        .auctions
        .get(path.as_str())
        .ok_or(Rejection::AuctionNotFound)?;
    Ok(web::Json(auction.without_open_secrets()))
}

//! Fault injection for tests and chaos runs (`/control/v1/faults/*`), behind the admin
//! token like the rest of the control listener. Compiled only with the `faults` feature,
//! and even then answered only by a node whose `[faults] enabled = true`: a production
//! build has no such routes at all.

use actix_web::{post, web, HttpResponse};
use utoipa::OpenApi;

use super::auth::Operator;
use super::doc_modifiers::{AdminAuth, ProblemResponses};
use super::problem::Problem;
use super::AppState;
use crate::actors::resource_pool::RunningActor;
use crate::actors::supervision::InjectPanic;
use crate::actors::supervisor::PanicPeerLink;
use crate::model::error::ApiError;
use crate::model::requests::{ClockFaultRequest, FaultRequest, FaultTarget};
use crate::model::views::{ClockFaultInjected, FaultInjected};
use gavel_kernel::Rejection;

/// The fault routes, added to the control listener.
pub fn configure(config: &mut web::ServiceConfig) {
    config.service(inject_panic).service(inject_clock_offset);
}

/// The fault routes' part of the control listener's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(inject_panic, inject_clock_offset),
    modifiers(&AdminAuth, &ProblemResponses)
)]
pub struct FaultsApi;

/// Fault injection for chaos tests: makes one actor panic inside a handler. An Auction
/// actor's panic ends that actor alone (the Janitor's next sweep restarts it), a
/// PeerLink's is restarted by the Supervisor, and a node-wide actor's stops the node
/// (see `actors::supervision`). Answers 404 `faults_disabled` unless the node's
/// `[faults] enabled = true`.
#[utoipa::path(tag = "control", request_body = FaultRequest, responses(
    (status = 202, body = FaultInjected),
    (status = 404, description = "faults_disabled, auction_not_found (no live actor), not_found (no link to that node, or no Exchange)", body = Problem),
    (status = 422, description = "invalid_request", body = Problem)), security(("admin" = [])))]
#[post("/control/v1/faults/panic")]
async fn inject_panic(
    app: web::Data<AppState>,
    operator: Operator,
    body: web::Json<FaultRequest>,
) -> Result<HttpResponse, ApiError> {
    if !app.faults_enabled {
        return Err(ApiError::FaultsDisabled);
    }
    let FaultRequest {
        actor,
        auction_id,
        node_id,
    } = body.into_inner();
    let needs = |name: &str, given: bool, wanted: bool| {
        if given == wanted {
            return Ok(());
        }
        let verb = if wanted { "needs" } else { "takes no" };
        Err(ApiError::invalid(format!(
            "actor {} {verb} {name}",
            actor.as_str()
        )))
    };
    needs(
        "auction_id",
        auction_id.is_some(),
        actor == FaultTarget::Auction,
    )?;
    needs("node_id", node_id.is_some(), actor == FaultTarget::PeerLink)?;
    tracing::warn!(operator = %operator.0, actor = actor.as_str(), ?auction_id, ?node_id, "fault injected: actor panic");
    match actor {
        FaultTarget::Auction => {
            let auction_id = auction_id.clone().unwrap_or_default();
            gavel_kernel::types::validate_id("auction_id", &auction_id)?;
            let running = app.pool.send(RunningActor { auction_id }).await?;
            running
                .ok_or(Rejection::AuctionNotFound)?
                .do_send(InjectPanic);
        }
        FaultTarget::PeerLink => {
            let node_id = node_id.unwrap_or_default();
            if !app.supervisor.send(PanicPeerLink { node_id }).await? {
                return Err(ApiError::NotFound(format!("no link to node {node_id}")));
            }
        }
        FaultTarget::Supervisor => app.supervisor.do_send(InjectPanic),
        FaultTarget::ResourcePool => app.pool.do_send(InjectPanic),
        FaultTarget::Janitor => app.janitor.do_send(InjectPanic),
        FaultTarget::Exchange => match &app.exchange {
            Some(spool) => spool.do_send(InjectPanic),
            None => {
                return Err(ApiError::NotFound(
                    "this node runs no Exchange ([exchange] dir is not set)".to_string(),
                ))
            }
        },
    }
    Ok(HttpResponse::Accepted().json(FaultInjected {
        actor: actor.as_str().to_string(),
        auction_id,
        node_id,
        injected: true,
    }))
}

/// Fault injection for chaos tests: offsets this node's wall clock by `offset_ms` (0 puts
/// it back), as a clock that runs fast or slow would. Every stamp, health check and time
/// this node answers uses it; the other nodes measure it and, past
/// `cluster.max_clock_skew_ms`, this node refuses to lead. Answers 404 `faults_disabled`
/// unless the node's `[faults] enabled = true`.
#[utoipa::path(tag = "control", request_body = ClockFaultRequest, responses(
    (status = 202, body = ClockFaultInjected),
    (status = 404, description = "faults_disabled", body = Problem),
    (status = 422, description = "invalid_request", body = Problem)), security(("admin" = [])))]
#[post("/control/v1/faults/clock")]
async fn inject_clock_offset(
    app: web::Data<AppState>,
    operator: Operator,
    body: web::Json<ClockFaultRequest>,
) -> Result<HttpResponse, ApiError> {
    if !app.faults_enabled {
        return Err(ApiError::FaultsDisabled);
    }
    let offset_ms = body.into_inner().offset_ms;
    let limit = crate::clock::MAX_FAULT_OFFSET_MS;
    if offset_ms.unsigned_abs() > limit.unsigned_abs() {
        return Err(ApiError::invalid(format!(
            "offset_ms must be between -{limit} and {limit}"
        )));
    }
    tracing::warn!(operator = %operator.0, offset_ms, "fault injected: clock offset");
    crate::clock::set_fault_offset_ms(offset_ms);
    Ok(HttpResponse::Accepted().json(ClockFaultInjected {
        offset_ms,
        injected: true,
    }))
}

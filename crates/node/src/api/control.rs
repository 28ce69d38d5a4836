//! The control listener: what operators call, behind the admin token (docs/API.md, Control
//! listener). Every action is proposed with the operator's name for the audit trail.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use super::auth::Operator;
use super::doc_modifiers::{AdminAuth, ProblemResponses};
use super::problem::Problem;
use super::public::unexpected;
use super::AppState;
use super::{
    audit, backup, certificate, cluster_nodes, dashboard, migration, node_actors, replica,
};
use crate::actors::exchange::{ExchangeReport, GetExchangeReport};
use crate::actors::janitor::{GetReport, JanitorReport};
use crate::actors::supervisor::{ClusterView, GetClusterView, Switchover};
use crate::actors::wall_clock_ms;
use crate::model::error::ApiError;
use crate::model::requests::{
    auction_path_id, create_auction_command, AuctionSpecRequest, BidderKeyRequest, BidderRequest,
    DepositRequest, IncrementRequest, JsonObject, QualificationRequest, ReasonRequest,
    SwitchoverRequest,
};
use crate::model::views::{
    BidderCreated, BidderKeyList, BidderKeyView, ControlAuctionView, DepositView,
    QualificationView, ResultView,
};
use gavel_kernel::{Command, Outcome, Rejection};

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(register_bidder)
        .service(register_bidder_key)
        .service(bidder_keys)
        .service(create_auction)
        .service(list_auctions)
        .service(qualify)
        .service(record_deposit)
        .service(default_winner)
        .service(suspend)
        .service(resume)
        .service(terminate)
        .service(change_increment)
        .service(result)
        .service(super::certificate::certificate)
        .service(cluster)
        .service(super::node_actors::cluster_actors)
        .service(switchover)
        .configure(super::cluster_nodes::configure)
        .configure(super::backup::configure)
        .configure(super::migration::configure)
        .service(janitor)
        .service(exchange)
        .configure(super::replica::configure)
        .service(super::audit::audit_trail)
        .configure(super::dashboard::control_pages)
        .route("/openapi.json", web::get().to(control_document));
    #[cfg(feature = "faults")]
    config.configure(super::faults::configure);
}

fn auction_view(app: &AppState, auction_id: &str) -> Result<ControlAuctionView, ApiError> {
    let now_ms = wall_clock_ms();
    app.read_auction(auction_id, |auction| {
        ControlAuctionView::new(auction, now_ms)
    })
}

#[utoipa::path(tag = "control", request_body = BidderRequest, responses(
    (status = 201, body = BidderCreated), (status = 409, description = "bidder_exists", body = Problem),
    (status = 422, description = "invalid_request", body = Problem),
    (status = 429, description = "rate_limited: the node's secret hashing stayed busy for 5 s; with Retry-After", body = Problem)),
    security(("admin" = [])))]
#[post("/control/v1/bidders")]
async fn register_bidder(
    app: web::Data<AppState>,
    operator: Operator,
    body: web::Json<JsonObject<BidderRequest>>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner().into_inner();
    request.validate()?;
    let secret_hash = app.secret_hasher.hash(request.secret.clone()).await?;
    let command = Command::RegisterBidder {
        secret_hash,
        secret_salt: String::new(),
        bidder_id: request.bidder_id.clone(),
        name: request.name.clone(),
    };
    app.propose(command, operator.0).await?;
    Ok(HttpResponse::Created().json(BidderCreated {
        bidder_id: request.bidder_id,
        name: request.name,
    }))
}

/// A bidder id from a path: an unknown one when it is not an id.
fn bidder_path_id(id: String) -> Result<String, ApiError> {
    match gavel_kernel::types::validate_id("id", &id) {
        Ok(()) => Ok(id),
        Err(_) => Err(ApiError::Rejected(Rejection::BidderNotFound)),
    }
}

/// Registers a public key of a bidder for signed bids (docs/RULES.md, "Signed bids");
/// the same key again answers 200.
#[utoipa::path(tag = "control", params(("id" = String, Path, description = "bidder id")), request_body = BidderKeyRequest, responses(
    (status = 201, body = BidderKeyView), (status = 200, description = "the bidder held this key already", body = BidderKeyView),
    (status = 404, description = "bidder_not_found", body = Problem),
    (status = 409, description = "too_many_keys: the bidder holds the most keys they may (8)", body = Problem),
    (status = 422, description = "invalid_key: not base64, a wrong length, not a point of the curve, or an unknown algorithm; invalid_request", body = Problem)),
    security(("admin" = [])))]
#[post("/control/v1/bidders/{id}/keys")]
async fn register_bidder_key(
    app: web::Data<AppState>,
    operator: Operator,
    path: web::Path<String>,
    body: web::Json<JsonObject<BidderKeyRequest>>,
) -> Result<HttpResponse, ApiError> {
    let bidder_id = bidder_path_id(path.into_inner())?;
    let request = body.into_inner().into_inner();
    let command = Command::RegisterBidderKey {
        bidder_id,
        algorithm: request.algorithm,
        public_key: request.public_key,
    };
    match app.propose(command, operator.0).await? {
        Outcome::BidderKeyRegistered {
            bidder_id,
            algorithm,
            public_key,
            key_id,
            created,
        } => {
            let view = BidderKeyView {
                bidder_id,
                algorithm,
                public_key,
                key_id,
            };
            Ok(if created {
                HttpResponse::Created().json(view)
            } else {
                HttpResponse::Ok().json(view)
            })
        }
        other => Err(unexpected(other)),
    }
}

/// A bidder's public keys for signed bids, in the order registered.
#[utoipa::path(tag = "control", params(("id" = String, Path, description = "bidder id")), responses(
    (status = 200, body = BidderKeyList), (status = 404, description = "bidder_not_found", body = Problem)),
    security(("admin" = [])))]
#[get("/control/v1/bidders/{id}/keys")]
async fn bidder_keys(
    app: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<BidderKeyList>, ApiError> {
    let bidder_id = bidder_path_id(path.into_inner())?;
    let state = app.state.read();
    if !state.kernel.bidders.contains_key(&bidder_id) {
        return Err(ApiError::Rejected(Rejection::BidderNotFound));
    }
    let keys = state
        .kernel
        .bidder_keys
        .get(&bidder_id)
        .map(|keys| {
            keys.iter()
                .map(|key| BidderKeyView {
                    bidder_id: bidder_id.clone(),
                    algorithm: key.algorithm.as_str().to_string(),
                    public_key: key.public_key.clone(),
                    key_id: key.key_id.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(web::Json(BidderKeyList { bidder_id, keys }))
}

/// Creates an auction; the same id and spec again answers 200, a different spec 409.
#[utoipa::path(tag = "control", request_body = AuctionSpecRequest, responses(
    (status = 201, body = ControlAuctionView), (status = 200, description = "already created with this spec", body = ControlAuctionView),
    (status = 409, description = "auction_exists", body = Problem), (status = 422, description = "invalid_request", body = Problem)),
    security(("admin" = [])))]
#[post("/control/v1/auctions")]
async fn create_auction(
    app: web::Data<AppState>,
    operator: Operator,
    body: web::Json<JsonObject<AuctionSpecRequest>>,
) -> Result<HttpResponse, ApiError> {
    let (spec, rules) = body.into_inner().into_inner().into_spec()?;
    let auction_id = spec.id.clone();
    // An archived auction keeps its id: the same spec again is the idempotent answer,
    // another one a conflict, as for a live auction.
    let live = app.state.read().kernel.auctions.contains_key(&auction_id);
    if !live {
        if let Ok(Some(archived)) = app.archive.get(&auction_id) {
            if archived.spec != spec || archived.sale.rules != rules {
                return Err(Rejection::AuctionExists.into());
            }
            let view = ControlAuctionView::new(&archived, wall_clock_ms());
            return Ok(HttpResponse::Ok().json(view));
        }
    }
    match app
        .propose(create_auction_command(spec, rules), operator.0)
        .await?
    {
        Outcome::AuctionCreated { created } => {
            let view = auction_view(&app, &auction_id)?;
            Ok(if created {
                HttpResponse::Created().json(view)
            } else {
                HttpResponse::Ok().json(view)
            })
        }
        other => Err(unexpected(other)),
    }
}

/// Every auction, with its reserve price.
#[utoipa::path(tag = "control", responses((status = 200, body = Vec<ControlAuctionView>)), security(("admin" = [])))]
#[get("/control/v1/auctions")]
async fn list_auctions(
    app: web::Data<AppState>,
    _operator: Operator,
) -> web::Json<Vec<ControlAuctionView>> {
    let now_ms = wall_clock_ms();
    let state = app.state.read();
    web::Json(
        state
            .kernel
            .auctions
            .values()
            .map(|auction| ControlAuctionView::new(auction, now_ms))
            .collect(),
    )
}

/// Qualifies a registered bidder for an auction and gives them a bidder number.
#[utoipa::path(tag = "control", params(("id" = String, Path)), request_body = QualificationRequest, responses(
    (status = 201, body = QualificationView), (status = 200, description = "already qualified", body = QualificationView),
    (status = 404, description = "auction_not_found, bidder_not_found", body = Problem),
    (status = 409, description = "auction_not_open", body = Problem)), security(("admin" = [])))]
#[post("/control/v1/auctions/{id}/qualifications")]
async fn qualify(
    app: web::Data<AppState>,
    operator: Operator,
    path: web::Path<String>,
    body: web::Json<JsonObject<QualificationRequest>>,
) -> Result<HttpResponse, ApiError> {
    let auction_id = auction_path_id(path.into_inner())?;
    let request = body.into_inner().into_inner();
    request.validate()?;
    let bidder_id = request.bidder_id;
    let command = Command::Qualify {
        auction_id,
        bidder_id: bidder_id.clone(),
    };
    match app.propose(command, operator.0).await? {
        Outcome::Qualified {
            bidder_number,
            created,
        } => {
            let view = QualificationView {
                bidder_id,
                bidder_number,
            };
            Ok(if created {
                HttpResponse::Created().json(view)
            } else {
                HttpResponse::Ok().json(view)
            })
        }
        other => Err(unexpected(other)),
    }
}

/// Records a bidder's deposit for an auction from a bank receipt, once per `reference`;
/// deposits add up. Answers what the bidder has deposited and what the auction requires.
#[utoipa::path(tag = "control", params(("id" = String, Path)), request_body = DepositRequest, responses(
    (status = 201, body = DepositView), (status = 200, description = "the same reference again: nothing changed", body = DepositView),
    (status = 404, description = "auction_not_found, bidder_not_found", body = Problem),
    (status = 409, description = "auction_not_open; conflict: the reference was recorded for another deposit, or the auction holds the most deposits it may", body = Problem),
    (status = 422, description = "invalid_request", body = Problem)), security(("admin" = [])))]
#[post("/control/v1/auctions/{id}/deposits")]
async fn record_deposit(
    app: web::Data<AppState>,
    operator: Operator,
    path: web::Path<String>,
    body: web::Json<JsonObject<DepositRequest>>,
) -> Result<HttpResponse, ApiError> {
    let auction_id = auction_path_id(path.into_inner())?;
    let command = body.into_inner().into_inner().into_command(auction_id)?;
    match app.propose(command, operator.0).await? {
        Outcome::DepositRecorded {
            bidder_id,
            deposited,
            required,
            created,
        } => {
            let view = DepositView {
                bidder_id,
                deposited,
                required,
            };
            Ok(if created {
                HttpResponse::Created().json(view)
            } else {
                HttpResponse::Ok().json(view)
            })
        }
        other => Err(unexpected(other)),
    }
}

/// Declares the winner of a sale whose confirmation lapsed in default: their deposit is
/// forfeited. Answers the result.
#[utoipa::path(tag = "control", params(("id" = String, Path)), request_body = ReasonRequest, responses(
    (status = 200, body = ResultView), (status = 404, description = "auction_not_found", body = Problem),
    (status = 409, description = "conflict: the sale's confirmation is not lapsed", body = Problem),
    (status = 422, description = "invalid_request", body = Problem)), security(("admin" = [])))]
#[post("/control/v1/auctions/{id}/default")]
async fn default_winner(
    app: web::Data<AppState>,
    operator: Operator,
    path: web::Path<String>,
    body: web::Json<JsonObject<ReasonRequest>>,
) -> Result<web::Json<ResultView>, ApiError> {
    let auction_id = auction_path_id(path.into_inner())?;
    let request = body.into_inner().into_inner();
    request.validate()?;
    let command = Command::DefaultWinner {
        auction_id: auction_id.clone(),
        reason: request.reason,
    };
    app.propose(command, operator.0).await?;
    Ok(web::Json(app.read_auction(&auction_id, ResultView::new)?))
}

async fn phase_action(
    app: web::Data<AppState>,
    operator: Operator,
    auction_id: String,
    command: Command,
) -> Result<web::Json<ControlAuctionView>, ApiError> {
    app.propose(command, operator.0).await?;
    Ok(web::Json(auction_view(&app, &auction_id)?))
}

#[utoipa::path(tag = "control", params(("id" = String, Path)), request_body = ReasonRequest, responses(
    (status = 200, body = ControlAuctionView), (status = 404, description = "auction_not_found", body = Problem),
    (status = 409, description = "auction_not_open", body = Problem)), security(("admin" = [])))]
#[post("/control/v1/auctions/{id}/suspend")]
async fn suspend(
    app: web::Data<AppState>,
    operator: Operator,
    path: web::Path<String>,
    body: web::Json<JsonObject<ReasonRequest>>,
) -> Result<web::Json<ControlAuctionView>, ApiError> {
    let auction_id = auction_path_id(path.into_inner())?;
    let request = body.into_inner().into_inner();
    request.validate()?;
    let command = Command::Suspend {
        auction_id: auction_id.clone(),
        reason: request.reason,
    };
    phase_action(app, operator, auction_id, command).await
}

#[utoipa::path(tag = "control", params(("id" = String, Path)), request_body = ReasonRequest, responses(
    (status = 200, body = ControlAuctionView), (status = 404, description = "auction_not_found", body = Problem),
    (status = 409, description = "conflict: not suspended", body = Problem)), security(("admin" = [])))]
#[post("/control/v1/auctions/{id}/resume")]
async fn resume(
    app: web::Data<AppState>,
    operator: Operator,
    path: web::Path<String>,
    body: web::Json<JsonObject<ReasonRequest>>,
) -> Result<web::Json<ControlAuctionView>, ApiError> {
    let auction_id = auction_path_id(path.into_inner())?;
    let request = body.into_inner().into_inner();
    request.validate()?;
    let command = Command::Resume {
        auction_id: auction_id.clone(),
        reason: request.reason,
    };
    phase_action(app, operator, auction_id, command).await
}

#[utoipa::path(tag = "control", params(("id" = String, Path)), request_body = ReasonRequest, responses(
    (status = 200, body = ControlAuctionView), (status = 404, description = "auction_not_found", body = Problem),
    (status = 409, description = "auction_not_open", body = Problem)), security(("admin" = [])))]
#[post("/control/v1/auctions/{id}/terminate")]
async fn terminate(
    app: web::Data<AppState>,
    operator: Operator,
    path: web::Path<String>,
    body: web::Json<JsonObject<ReasonRequest>>,
) -> Result<web::Json<ControlAuctionView>, ApiError> {
    let auction_id = auction_path_id(path.into_inner())?;
    let request = body.into_inner().into_inner();
    request.validate()?;
    let command = Command::Terminate {
        auction_id: auction_id.clone(),
        reason: request.reason,
    };
    phase_action(app, operator, auction_id, command).await
}

#[utoipa::path(tag = "control", params(("id" = String, Path)), request_body = IncrementRequest, responses(
    (status = 200, body = ControlAuctionView), (status = 404, description = "auction_not_found", body = Problem),
    (status = 409, description = "auction_not_open", body = Problem), (status = 422, description = "invalid_request", body = Problem)),
    security(("admin" = [])))]
#[post("/control/v1/auctions/{id}/increment")]
async fn change_increment(
    app: web::Data<AppState>,
    operator: Operator,
    path: web::Path<String>,
    body: web::Json<JsonObject<IncrementRequest>>,
) -> Result<web::Json<ControlAuctionView>, ApiError> {
    let auction_id = auction_path_id(path.into_inner())?;
    let request = body.into_inner().into_inner();
    request.validate()?;
    let command = Command::ChangeIncrement {
        auction_id: auction_id.clone(),
        increment: request.increment,
        reason: request.reason,
    };
    phase_action(app, operator, auction_id, command).await
}

/// The result with every bid and its hash chain link.
#[utoipa::path(tag = "control", params(("id" = String, Path)), responses(
    (status = 200, body = ResultView), (status = 404, description = "auction_not_found", body = Problem),
    (status = 503, description = "unavailable: archived, and this node is still fetching its record from its peers", body = Problem)), security(("admin" = [])))]
#[get("/control/v1/auctions/{id}/result")]
async fn result(
    app: web::Data<AppState>,
    _operator: Operator,
    path: web::Path<String>,
) -> Result<web::Json<ResultView>, ApiError> {
    Ok(web::Json(app.read_auction(path.as_str(), ResultView::new)?))
}

#[utoipa::path(tag = "control", responses((status = 200, body = ClusterView),
    (status = 503, description = "unavailable", body = Problem)), security(("admin" = [])))]
#[get("/control/v1/cluster")]
async fn cluster(
    app: web::Data<AppState>,
    _operator: Operator,
) -> Result<web::Json<ClusterView>, ApiError> {
    Ok(web::Json(app.supervisor.send(GetClusterView).await?))
}

/// Hands leadership to `to_node_id` and answers once it leads. Sent to a node that does
/// not lead, the request is passed on to the leader's control listener.
#[utoipa::path(tag = "control", request_body = SwitchoverRequest, responses(
    (status = 200, body = ClusterView),
    (status = 409, description = "conflict: not a healthy voter, or a change under way", body = Problem),
    (status = 503, description = "no_leader", body = Problem)),
    security(("admin" = [])))]
#[post("/control/v1/cluster/switchover")]
async fn switchover(
    app: web::Data<AppState>,
    operator: Operator,
    request: HttpRequest,
    body: web::Json<JsonObject<SwitchoverRequest>>,
) -> Result<HttpResponse, ApiError> {
    let to_node_id = body.into_inner().into_inner().to_node_id;
    let view = app.supervisor.send(GetClusterView).await?;
    let leader = view.leader_id.ok_or(ApiError::NoLeader)?;
    if leader != app.node_id {
        let body = serde_json::json!({ "to_node_id": to_node_id });
        return super::cluster_nodes::relay_to_leader(
            &app,
            &request,
            actix_web::http::Method::POST,
            "/control/v1/cluster/switchover",
            Some(body),
        )
        .await;
    }
    tracing::info!(operator = %operator.0, to_node_id, "switchover requested");
    app.supervisor
        .send(Switchover { to_node_id })
        .await?
        .map_err(|reason| ApiError::Rejected(Rejection::Conflict(reason)))?;
    // On record once done, proposed through the new leader.
    let record = Command::RecordOperatorAction {
        action: "switchover".to_string(),
        target: format!("node {to_node_id}"),
        reason: format!("leadership handed over by node {}", app.node_id),
    };
    if let Err(error) = app.propose(record, operator.0).await {
        tracing::warn!(%error, to_node_id, "switchover done but not recorded in the audit trail");
    }
    Ok(HttpResponse::Ok().json(app.supervisor.send(GetClusterView).await?))
}

#[utoipa::path(tag = "control", responses((status = 200, body = JanitorReport),
    (status = 503, description = "unavailable", body = Problem)), security(("admin" = [])))]
#[get("/control/v1/janitor")]
async fn janitor(
    app: web::Data<AppState>,
    _operator: Operator,
) -> Result<web::Json<JanitorReport>, ApiError> {
    Ok(web::Json(app.janitor.send(GetReport).await?))
}

/// What the Exchange actor did (the intranet–internet spool); `enabled: false` when
/// `[exchange] dir` is not set.
#[utoipa::path(tag = "control", responses((status = 200, body = ExchangeReport),
    (status = 503, description = "unavailable", body = Problem)), security(("admin" = [])))]
#[get("/control/v1/exchange")]
async fn exchange(
    app: web::Data<AppState>,
    _operator: Operator,
) -> Result<web::Json<ExchangeReport>, ApiError> {
    Ok(web::Json(match &app.exchange {
        Some(exchange) => exchange.send(GetExchangeReport).await?,
        None => ExchangeReport::default(),
    }))
}

/// The control listener's OpenAPI document (without the fault routes), served at
/// `/openapi.json` by `control_openapi`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Gavel control API", description = "Operations: bidders, auctions, qualifications, phase actions, cluster, janitor, the operator audit trail."),
    paths(register_bidder, register_bidder_key, bidder_keys, create_auction, list_auctions, qualify, record_deposit, default_winner,
        suspend, resume, terminate, change_increment, result, certificate::certificate,
        cluster, node_actors::cluster_actors, switchover, cluster_nodes::add_node, cluster_nodes::remove_node, backup::backup, migration::node_status, migration::take_checkpoint, migration::checkpoint, migration::replace, janitor, exchange, dashboard::stats, audit::audit_trail,
        replica::replica_state, replica::replica_auction),
    modifiers(&AdminAuth, &ProblemResponses)
)]
pub struct ControlApi;

async fn control_document() -> HttpResponse {
    HttpResponse::Ok().json(control_openapi())
}

/// The control listener's document as this build serves it: with the fault routes
/// when it was built with the `faults` feature.
pub fn control_openapi() -> utoipa::openapi::OpenApi {
    #[allow(unused_mut)]
    let mut document = ControlApi::openapi();
    #[cfg(feature = "faults")]
    document.merge(super::faults::FaultsApi::openapi());
    document
}

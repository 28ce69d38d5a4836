//! The public listener: what bidders and their browsers call (docs/API.md, Public listener).

use actix_web::{delete, get, post, web, HttpMessage, HttpRequest, HttpResponse};
use utoipa::OpenApi;

use super::auth::session_token_hash;
use super::doc_modifiers::{ProblemResponses, RateLimitedResponses, SessionAuth};
use super::events;
use super::problem::Problem;
use super::AppState;
use crate::actors::wall_clock_ms;
use crate::model::bidder_secret::Verdict;
use crate::model::credentials::{new_token, sha256_hex};
use crate::model::error::ApiError;
use crate::model::requests::SessionRequest;
use crate::model::requests::{
    auction_path_id, BidRequest, BidsQuery, ConfirmRequest, JsonObject, ProxyRequest,
    SealedQuoteRequest,
};
use crate::model::views::{
    AcceptanceView, AuctionList, AuctionView, BidList, BidMarks, BidReceipt, BidView,
    ConfirmationView, PlacedBid, ProxyView, ReceiptKeyView, SealedQuoteView, SecondaryBidReceipt,
    SessionCreated, TimeView,
};
use gavel_kernel::{Command, Outcome, Receipt};

pub fn configure(config: &mut web::ServiceConfig) {
    // actix tries the routes in order, matching each pattern with a `{id}` against the
    // path: the bid route, by far the busiest, goes first.
    config
        .service(place_bid)
        .service(server_time)
        .service(receipt_key)
        .service(create_session)
        .service(delete_session)
        .service(list_auctions)
        .service(get_auction)
        .service(list_bids)
        .service(confirm)
        .service(submit_sealed_quote)
        .service(accept_sale)
        .service(set_proxy)
        .service(get_proxy)
        .service(withdraw_proxy)
        .service(super::bidder_view::my_auction)
        .service(super::events::auction_events)
        .service(super::events::all_events)
        .route("/openapi.json", web::get().to(public_document))
        .configure(super::pages::public_pages);
}

/// The cluster's clock bidders sync to: this node's, corrected by its measured offset to
/// the voters' median, so every node answers the same time within the round trip.
#[utoipa::path(tag = "public", responses((status = 200, body = TimeView)))]
#[get("/api/v1/time")]
async fn server_time(app: web::Data<AppState>) -> web::Json<TimeView> {
    web::Json(TimeView {
        server_time_ms: app.clock.cluster_time_ms(),
        node_id: app.node_id,
        clock_offset_ms: app.clock.offset_to_median_ms(),
    })
}

/// The public key the cluster signs bid receipts with, and the keys it signed with
/// before a rotation: what a bidder checks a saved receipt against (`gavel
/// verify-receipt`). Every node of a cluster answers the same.
#[utoipa::path(tag = "public", responses((status = 200, body = ReceiptKeyView)))]
#[get("/api/v1/receipt-key")]
async fn receipt_key(app: web::Data<AppState>) -> web::Json<ReceiptKeyView> {
    web::Json(ReceiptKeyView::new(&app.receipt_key))
}

/// Opens a session with a bidder's id and secret, checked against the bidder's Argon2id
/// record off the HTTP workers (a record from an older release, a salted SHA-256, is
/// replaced by an Argon2id one on the way). A bidder holds at most
/// `sessions.max_sessions_per_bidder` sessions: this one ends the oldest when they hold
/// that many. Wrong secrets in a row lock the bidder's sign-ins out for a while.
#[utoipa::path(tag = "public", request_body = SessionRequest, responses(
    (status = 201, body = SessionCreated),
    (status = 401, description = "bad_credentials", body = Problem),
    (status = 422, description = "invalid_request", body = Problem),
    (status = 429, description = "rate_limited (also when the node's secret hashing stays busy for 5 s), or sign_in_locked after too many wrong secrets for the bidder; with Retry-After (seconds)", body = Problem)))]
#[post("/api/v1/sessions")]
async fn create_session(
    app: web::Data<AppState>,
    body: web::Json<JsonObject<SessionRequest>>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner().into_inner();
    let now = std::time::Instant::now();
    app.sign_in_throttle
        .check(&request.bidder_id, now)
        .map_err(|retry_after_s| ApiError::SignInLocked { retry_after_s })?;
    let record = {
        let state = app.state.read();
        state
            .kernel
            .bidders
            .get(&request.bidder_id)
            .map(|bidder| (bidder.secret_salt.clone(), bidder.secret_hash.clone()))
    };
    let Some((salt, stored_hash)) = record else {
        return Err(ApiError::BadCredentials);
    };
    let verdict = app
        .secret_hasher
        .verify(salt, stored_hash.clone(), request.secret)
        .await?;
    match verdict {
        Verdict::Match { upgrade } => {
            app.sign_in_throttle.succeeded(&request.bidder_id);
            if let Some(new_secret_hash) = upgrade {
                upgrade_secret_hash(&app, &request.bidder_id, stored_hash, new_secret_hash).await;
            }
        }
        Verdict::Mismatch => {
            app.sign_in_throttle.failed(&request.bidder_id, now);
            return Err(ApiError::BadCredentials);
        }
    }
    let token = new_token();
    let expires_at_ms = wall_clock_ms().saturating_add(app.session_ttl_ms);
    let command = Command::OpenSession {
        token_hash: sha256_hex(token.as_bytes()),
        bidder_id: request.bidder_id.clone(),
        expires_at_ms,
        max_sessions_per_bidder: app.max_sessions_per_bidder,
    };
    match app.propose(command, request.bidder_id.clone()).await? {
        Outcome::SessionOpened {
            bidder_id,
            expires_at_ms,
        } => Ok(HttpResponse::Created().json(SessionCreated {
            token,
            bidder_id,
            expires_at_ms,
        })),
        other => Err(unexpected(other)),
    }
}

/// Replaces a bidder's SHA-256 record, whose secret was just verified, by its Argon2id
/// replacement. A refusal (another node upgraded it first) or a failure leaves the old
/// record, to be upgraded at a later sign-in: the sign-in goes on either way.
async fn upgrade_secret_hash(
    app: &AppState,
    bidder_id: &str,
    old_secret_hash: String,
    new_secret_hash: String,
) {
    let command = Command::UpgradeSecretHash {
        bidder_id: bidder_id.to_string(),
        old_secret_hash,
        new_secret_hash,
    };
    match app.propose(command, bidder_id.to_string()).await {
        Ok(_) => tracing::info!(bidder_id, "bidder secret record upgraded to Argon2id"),
        Err(error) => tracing::warn!(bidder_id, %error, "bidder secret record not upgraded"),
    }
}

/// Ends the caller's session on every node.
#[utoipa::path(tag = "public", responses((status = 204), (status = 401, description = "unauthenticated", body = Problem)),
    security(("session" = [])))]
#[delete("/api/v1/sessions/current")]
async fn delete_session(
    app: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let token_hash = session_token_hash(&request)?;
    app.propose(Command::CloseSession { token_hash }, "bidder".to_string())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(tag = "public", responses((status = 200, body = AuctionList)))]
#[get("/api/v1/auctions")]
async fn list_auctions(app: web::Data<AppState>) -> web::Json<AuctionList> {
    let now_ms = wall_clock_ms();
    let state = app.state.read();
    let auctions = state
        .kernel
        .auctions
        .values()
        .map(|auction| AuctionView::new(auction, now_ms))
        .collect();
    web::Json(AuctionList { auctions })
}

#[utoipa::path(tag = "public", params(("id" = String, Path, description = "auction id")), responses(
    (status = 200, body = AuctionView),
    (status = 404, description = "auction_not_found", body = Problem),
    (status = 503, description = "unavailable: archived, and this node is still fetching its record from its peers", body = Problem)))]
#[get("/api/v1/auctions/{id}")]
async fn get_auction(
    app: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<AuctionView>, ApiError> {
    let now_ms = wall_clock_ms();
    let view = app.read_auction(path.as_str(), |auction| AuctionView::new(auction, now_ms))?;
    Ok(web::Json(view))
}

/// Accepted bids, oldest first, by bidder number only: every bid, or with `after_seq`
/// or `limit`, one page of them.
#[utoipa::path(tag = "public", params(("id" = String, Path, description = "auction id"), BidsQuery), responses(
    (status = 200, body = BidList),
    (status = 404, description = "auction_not_found", body = Problem),
    (status = 503, description = "unavailable: archived, and this node is still fetching its record from its peers", body = Problem),
    (status = 422, description = "invalid_request: limit out of range, or a parameter that is not a number", body = Problem)))]
#[get("/api/v1/auctions/{id}/bids")]
async fn list_bids(
    app: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<BidsQuery>,
) -> Result<web::Json<BidList>, ApiError> {
    let (after_seq, limit) = query.page()?;
    // A copy of the persistent vector is a few pointers: the views are built after the
    // state's lock is released, however long the history.
    let (bids, marks) = app.read_auction(path.as_str(), |auction| {
        let first_seq = after_seq.saturating_add(1);
        (auction.bids.clone(), BidMarks::from_seq(auction, first_seq))
    })?;
    // A bid's seq is its place in the vector plus one.
    let skipped = usize::try_from(after_seq)
        .unwrap_or(usize::MAX)
        .min(bids.len());
    let page: Vec<BidView> = bids
        .skip(skipped)
        .iter()
        .take(limit)
        .map(|bid| marks.view(bid))
        .collect();
    let next_after_seq = match page.last() {
        Some(last) if (last.seq as usize) < bids.len() => Some(last.seq),
        _ => None,
    };
    Ok(web::Json(BidList {
        bids: page,
        next_after_seq,
    }))
}

/// Places a bid: on the price (`amount`), or in `secondary_bidding` on the second
/// quantity (`secondary_amount`). The receipt is sent only once the bid is committed; the
/// same request_id with the same body answers the original receipt (200).
#[utoipa::path(tag = "public", params(("id" = String, Path, description = "auction id")), request_body = BidRequest,
    responses(
        (status = 201, body = PlacedBid), (status = 200, description = "a retry: the original receipt", body = PlacedBid),
        (status = 401, description = "unauthenticated; bad_signature: the signature does not verify under any of the bidder's keys", body = Problem), (status = 403, description = "not_qualified, not_eligible, excluded_by_group", body = Problem),
        (status = 404, description = "auction_not_found", body = Problem),
        (status = 409, description = "auction_not_open, below_minimum, not_on_increment, already_leading, above_cap, out_of_range, request_id_reused", body = Problem),
        (status = 422, description = "invalid_request (also: both or neither of amount and secondary_amount); signature_required: the auction accepts signed bids only", body = Problem),
        (status = 429, description = "rate_limited, with Retry-After (seconds)", body = Problem),
        (status = 503, description = "no_leader", body = Problem)),
    security(("session" = [])))]
#[post("/api/v1/auctions/{id}/bids")]
async fn place_bid(
    app: web::Data<AppState>,
    path: web::Path<String>,
    request: HttpRequest,
    body: web::Json<JsonObject<BidRequest>>,
) -> Result<HttpResponse, ApiError> {
    let token_hash = session_token_hash(&request)?;
    let auction_id = auction_path_id(path.into_inner())?;
    let command = body
        .into_inner()
        .into_inner()
        .into_command(auction_id, token_hash)?;
    let result = app.propose(command, "bidder".to_string()).await;
    if let Err(ApiError::Rejected(rejection)) = &result {
        app.metrics
            .bids_rejected_total
            .with_label_values(&[rejection.code()])
            .inc();
    }
    match result? {
        Outcome::BidAccepted { receipt, replayed } => {
            let body = signed_receipt(&app, &receipt).await?;
            bid_answer(&app, PlacedBid::Price(body), replayed)
        }
        Outcome::SecondaryBidAccepted { receipt, replayed } => {
            let now_ms = wall_clock_ms();
            let view = app.read_auction(&receipt.auction_id, |auction| {
                AuctionView::new(auction, now_ms)
            })?;
            let body = SecondaryBidReceipt {
                auction_id: receipt.auction_id,
                secondary_seq: receipt.seq,
                secondary_amount: receipt.secondary_amount,
                accepted_at_ms: receipt.accepted_at_ms,
                auction: view,
            };
            bid_answer(&app, PlacedBid::Secondary(body), replayed)
        }
        other => Err(unexpected(other)),
    }
}

/// 201 for a new bid (counted), 200 for a retry answered with the original receipt.
fn bid_answer(app: &AppState, body: PlacedBid, replayed: bool) -> Result<HttpResponse, ApiError> {
    if replayed {
        Ok(HttpResponse::Ok().json(body))
    } else {
        app.metrics.bids_accepted_total.inc();
        Ok(HttpResponse::Created().json(body))
    }
}

/// Under `cap_mode` `sealed_bid`, in `capped`: the caller, holding a valid bid, submits
/// their one sealed quote, between price_cap and sealed_ceiling. No one sees the amount
/// before the window closes; the answer is only when it was accepted. The same
/// request_id and amount again answers 200 with the same time.
#[utoipa::path(tag = "public", params(("id" = String, Path, description = "auction id")), request_body = SealedQuoteRequest,
    responses(
        (status = 201, body = SealedQuoteView), (status = 200, description = "a retry: the quote already placed", body = SealedQuoteView),
        (status = 401, description = "unauthenticated; bad_signature: the signature does not verify under any of the bidder's keys", body = Problem),
        (status = 403, description = "not_qualified, not_eligible: no valid bid held", body = Problem),
        (status = 404, description = "auction_not_found", body = Problem),
        (status = 409, description = "auction_not_open, quote_exists, out_of_range", body = Problem),
        (status = 422, description = "invalid_request; signature_required: the auction accepts signed bids only", body = Problem),
        (status = 503, description = "no_leader", body = Problem)),
    security(("session" = [])))]
#[post("/api/v1/auctions/{id}/sealed-quotes")]
async fn submit_sealed_quote(
    app: web::Data<AppState>,
    path: web::Path<String>,
    request: HttpRequest,
    body: web::Json<JsonObject<SealedQuoteRequest>>,
) -> Result<HttpResponse, ApiError> {
    let token_hash = session_token_hash(&request)?;
    let auction_id = auction_path_id(path.into_inner())?;
    let command = body
        .into_inner()
        .into_inner()
        .into_command(auction_id, token_hash)?;
    match app.propose(command, "bidder".to_string()).await? {
        Outcome::SealedQuoteAccepted {
            accepted_at_ms,
            replayed,
        } => {
            let body = SealedQuoteView { accepted_at_ms };
            Ok(if replayed {
                HttpResponse::Ok().json(body)
            } else {
                HttpResponse::Created().json(body)
            })
        }
        other => Err(unexpected(other)),
    }
}

/// The signed receipt of a committed bid. The bid is applied here before its answer goes
/// out: its record, found by seq (its place in the vector plus one) in the live state or
/// the archive, gives the chain hash the receipt signs. The signing thread signs it with
/// the other receipts waiting at the same moment, if any.
async fn signed_receipt(app: &AppState, receipt: &Receipt) -> Result<BidReceipt, ApiError> {
    let now_ms = wall_clock_ms();
    let (view, chain_hash) = app.read_auction(&receipt.auction_id, |auction| {
        let record = usize::try_from(receipt.seq)
            .ok()
            .and_then(|seq| seq.checked_sub(1))
            .and_then(|index| auction.bids.get(index))
            .filter(|record| record.seq == receipt.seq && record.bid_id == receipt.bid_id);
        (
            AuctionView::new(auction, now_ms),
            record.map(|record| record.hash.clone()),
        )
    })?;
    let signed = match chain_hash.as_deref() {
        Some(chain_hash) => Some(
            app.receipt_signer
                .sign(&crate::receipts::SignedFields {
                    auction_id: &receipt.auction_id,
                    seq: receipt.seq,
                    amount: receipt.amount,
                    accepted_at_ms: receipt.accepted_at_ms,
                    chain_hash,
                })
                .await,
        ),
        None => None,
    };
    Ok(BidReceipt::new(receipt, view, chain_hash, signed))
}

/// Sets or raises the caller's hidden proxy maximum (委托出价; docs/RULES.md, "Proxy
/// bidding"). Whenever the caller is outbid, the kernel bids the minimum for them in the
/// same step, up to the maximum. When the proxy bid at once, `bid` is that bid's signed
/// receipt. The same request_id with the same body answers as the first time (200).
#[utoipa::path(tag = "public", params(("id" = String, Path, description = "auction id")), request_body = ProxyRequest,
    responses(
        (status = 201, body = ProxyView), (status = 200, description = "a retry: the first answer", body = ProxyView),
        (status = 401, description = "unauthenticated; bad_signature: the signature does not verify under any of the bidder's keys", body = Problem),
        (status = 403, description = "not_qualified, not_eligible (timed bidding for listing bidders only), excluded_by_group", body = Problem),
        (status = 404, description = "auction_not_found", body = Problem),
        (status = 409, description = "auction_not_open, below_minimum, request_id_reused, or conflict: a maximum can only be raised", body = Problem),
        (status = 422, description = "invalid_request; signature_required: the auction accepts signed bids only", body = Problem),
        (status = 503, description = "no_leader", body = Problem)),
    security(("session" = [])))]
#[post("/api/v1/auctions/{id}/proxy")]
async fn set_proxy(
    app: web::Data<AppState>,
    path: web::Path<String>,
    request: HttpRequest,
    body: web::Json<JsonObject<ProxyRequest>>,
) -> Result<HttpResponse, ApiError> {
    let token_hash = session_token_hash(&request)?;
    let proxy = body.into_inner().into_inner();
    let command = proxy.into_command(auction_path_id(path.into_inner())?, token_hash)?;
    match app.propose(command, "bidder".to_string()).await? {
        Outcome::ProxySet {
            max_amount,
            receipt,
            replayed,
        } => {
            let bid = match receipt {
                Some(receipt) => Some(signed_receipt(&app, &receipt).await?),
                None => None,
            };
            let body = ProxyView { max_amount, bid };
            Ok(if replayed {
                HttpResponse::Ok().json(body)
            } else {
                HttpResponse::Created().json(body)
            })
        }
        other => Err(unexpected(other)),
    }
}

/// The caller's own proxy maximum in the auction, as this node has applied it; no one
/// else's is ever shown.
#[utoipa::path(tag = "public", params(("id" = String, Path, description = "auction id")),
    responses(
        (status = 200, body = ProxyView),
        (status = 401, description = "unauthenticated", body = Problem),
        (status = 404, description = "auction_not_found, or not_found: the caller has no proxy maximum here", body = Problem),
        (status = 503, description = "unavailable: archived, and this node is still fetching its record from its peers", body = Problem)),
    security(("session" = [])))]
#[get("/api/v1/auctions/{id}/proxy")]
async fn get_proxy(
    app: web::Data<AppState>,
    path: web::Path<String>,
    request: HttpRequest,
) -> Result<web::Json<ProxyView>, ApiError> {
    let token_hash = session_token_hash(&request)?;
    let bidder_id = {
        let state = app.state.read();
        state
            .kernel
            .session_bidder(&token_hash, wall_clock_ms())
            .map(str::to_string)
            .ok_or(ApiError::Unauthenticated)?
    };
    let max_amount = app.read_auction(path.as_str(), |auction| {
        auction
            .sale
            .proxies
            .get(&bidder_id)
            .map(|proxy| proxy.max_amount)
    })?;
    let max_amount = max_amount.ok_or_else(|| {
        ApiError::NotFound("no proxy maximum of yours in this auction".to_string())
    })?;
    Ok(web::Json(ProxyView {
        max_amount,
        bid: None,
    }))
}

/// Withdraws the caller's proxy maximum; refused while the caller holds the highest bid.
/// Withdrawing when there is none answers 204 as well.
#[utoipa::path(tag = "public", params(("id" = String, Path, description = "auction id")),
    responses(
        (status = 204),
        (status = 401, description = "unauthenticated", body = Problem),
        (status = 403, description = "not_qualified", body = Problem),
        (status = 404, description = "auction_not_found", body = Problem),
        (status = 409, description = "leading: the caller holds the highest bid", body = Problem),
        (status = 503, description = "no_leader", body = Problem)),
    security(("session" = [])))]
#[delete("/api/v1/auctions/{id}/proxy")]
async fn withdraw_proxy(
    app: web::Data<AppState>,
    path: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let token_hash = session_token_hash(&request)?;
    let command = Command::WithdrawProxy {
        auction_id: auction_path_id(path.into_inner())?,
        token_hash,
    };
    match app.propose(command, "bidder".to_string()).await? {
        Outcome::ProxyWithdrawn { .. } => Ok(HttpResponse::NoContent().finish()),
        other => Err(unexpected(other)),
    }
}

/// In `capped`: the caller, holding a valid bid, joins the lottery, optionally with a
/// nonce of their own that the draw mixes with the committed seed. The first confirmation
/// stands: the same again answers 201, another nonce 409 `conflict`.
#[utoipa::path(tag = "public", params(("id" = String, Path, description = "auction id")),
    request_body(content = Option<ConfirmRequest>, description = "optional; no body is no nonce"),
    responses(
    (status = 201, body = ConfirmationView), (status = 401, description = "unauthenticated", body = Problem),
    (status = 403, description = "not_qualified, not_eligible", body = Problem),
    (status = 409, description = "auction_not_open, or conflict: already confirmed with another nonce", body = Problem),
    (status = 422, description = "invalid_request: a bad body or nonce", body = Problem)),
    security(("session" = [])))]
#[post("/api/v1/auctions/{id}/confirmations")]
async fn confirm(
    app: web::Data<AppState>,
    path: web::Path<String>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let token_hash = session_token_hash(&request)?;
    let auction_id = auction_path_id(path.into_inner())?;
    // Without a nonce, the command every node has always known.
    let command = match ConfirmRequest::parse(request.content_type(), &body)?.nonce {
        Some(nonce) if !nonce.is_empty() => Command::ConfirmWithNonce {
            auction_id,
            token_hash,
            nonce,
        },
        _ => Command::Confirm {
            auction_id,
            token_hash,
        },
    };
    app.propose(command, "bidder".to_string()).await?;
    Ok(HttpResponse::Created().json(ConfirmationView { confirmed: true }))
}

/// The winner confirms a sale within its confirmation window (成交确认). Confirming again
/// answers 200 as well.
#[utoipa::path(tag = "public", params(("id" = String, Path, description = "auction id")),
    responses(
    (status = 200, body = AcceptanceView), (status = 401, description = "unauthenticated", body = Problem),
    (status = 403, description = "not_winner", body = Problem),
    (status = 404, description = "auction_not_found", body = Problem),
    (status = 409, description = "confirmation_closed: lapsed, defaulted, or no confirmation step", body = Problem)),
    security(("session" = [])))]
#[post("/api/v1/auctions/{id}/acceptance")]
async fn accept_sale(
    app: web::Data<AppState>,
    path: web::Path<String>,
    request: HttpRequest,
) -> Result<web::Json<AcceptanceView>, ApiError> {
    let token_hash = session_token_hash(&request)?;
    let auction_id = auction_path_id(path.into_inner())?;
    let command = Command::AcceptSale {
        auction_id,
        token_hash,
    };
    match app.propose(command, "bidder".to_string()).await? {
        Outcome::SaleAccepted { .. } => Ok(web::Json(AcceptanceView {
            confirmation: "confirmed".to_string(),
        })),
        other => Err(unexpected(other)),
    }
}

/// A command answered with an outcome of another command: a bug, reported as such.
pub fn unexpected(outcome: Outcome) -> ApiError {
    tracing::error!(?outcome, "command answered with an unexpected outcome");
    ApiError::Unavailable("unexpected outcome".to_string())
}

/// The public listener's OpenAPI document, served at `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "Gavel public API", description = "Bidding: sessions, auctions, bids, live events. Any request over the per-address or per-session rate limit is answered 429 rate_limited with Retry-After (seconds). A bidder holds at most sessions.max_sessions_per_bidder sessions (a new sign-in ends the oldest); wrong secrets in a row lock the bidder's sign-ins out (429 sign_in_locked); event streams are capped per address and per node (429 too_many_streams); a request body must arrive within http.body_read_timeout_ms (408 request_timeout)."),
    paths(server_time, receipt_key, create_session, delete_session, list_auctions,
        get_auction, list_bids, place_bid, confirm, submit_sealed_quote, accept_sale, set_proxy, get_proxy, withdraw_proxy,
        events::auction_events, events::all_events, super::bidder_view::my_auction),
    modifiers(&SessionAuth, &RateLimitedResponses, &ProblemResponses)
)]
pub struct PublicApi;

async fn public_document() -> HttpResponse {
    HttpResponse::Ok().json(PublicApi::openapi())
}

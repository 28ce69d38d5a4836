//! The sale's result for print (成交确认书), on the control listener.
//!
//! `GET /control/v1/auctions/{id}/certificate` answers what the printed result states: the
//! sale (title, parcel, start price), its result with every deposit's disposition and every
//! bid, the winner's identity (bidder id, registered name, bidder number), the head of the
//! bid hash chain, and the winning bid's receipt signature — the receipt text signed alone
//! (the signature the winner's receipt carries when it was answered alone; one answered
//! in a batch carries a batch signature instead, and both verify), so `gavel
//! verify-receipt` checks the printed figures against the cluster's public key. Only a sold sale has one (409
//! `conflict` before, or for a sale that ended otherwise).
//!
//! `GET /certificate?auction={id}` is the page that prints it (`assets/dashboard/certificate.js`):
//! public like the dashboard, it reads the data with the operator's token from the
//! dashboard's tab, lays it out on A4 and leaves the printing (to paper or PDF) to the
//! browser.

use actix_web::{get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Operator;
use super::problem::Problem;
use super::AppState;
use crate::actors::wall_clock_ms;
use crate::model::error::ApiError;
use crate::model::views::ResultView;
use gavel_kernel::Rejection;

/// The winning bid as its receipt states it, with the receipt's signature.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WinningBid {
    pub seq: u64,
    pub amount: u64,
    pub accepted_at_ms: u64,
    /// The bid record's hash in the auction's chain (hex SHA-256).
    pub chain_hash: String,
    /// Base64 Ed25519 signature of the receipt text, signed alone (docs/API.md, Bid
    /// receipts).
    pub receipt_signature: String,
}

/// What the printed result of a sold sale states.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CertificateView {
    pub auction_id: String,
    pub title: String,
    /// The parcel's descriptive fields, as given at creation.
    #[schema(value_type = Object)]
    pub parcel: serde_json::Value,
    pub start_price: u64,
    /// Bids counted (void ones left out).
    pub bid_count: u64,
    /// The winner's registered name; absent if the registry no longer holds the bidder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winner_name: Option<String>,
    /// The hash of the last bid record: the head of the auction's hash chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_head_hash: Option<String>,
    /// The winning bid and its receipt signature; absent when the sale was won by other
    /// means than a price bid (a sealed quote, a secondary bid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winning_bid: Option<WinningBid>,
    /// The public key the signature verifies under (standard base64).
    pub receipt_public_key: String,
    pub result: ResultView,
    /// The node that answered, and when.
    pub node_id: u64,
    pub issued_at_ms: u64,
}

/// The result of a sold sale, for print.
#[utoipa::path(tag = "control", params(("id" = String, Path)), responses(
    (status = 200, body = CertificateView), (status = 404, description = "auction_not_found", body = Problem),
    (status = 409, description = "conflict: the sale is not sold", body = Problem),
    (status = 503, description = "unavailable: archived, and this node is still fetching its record from its peers", body = Problem)),
    security(("admin" = [])))]
#[get("/control/v1/auctions/{id}/certificate")]
pub async fn certificate(
    app: web::Data<AppState>,
    _operator: Operator,
    path: web::Path<String>,
) -> Result<web::Json<CertificateView>, ApiError> {
    let auction_id = path.into_inner();
    let (mut view, winning) = app.read_auction(&auction_id, |auction| {
        let result = ResultView::new(auction);
        let winning = winning_bid(&result);
        let view = CertificateView {
            auction_id: auction.spec.id.clone(),
            title: auction.spec.title.clone(),
            parcel: serde_json::from_str(&auction.spec.parcel_json)
                .unwrap_or(serde_json::Value::Null),
            start_price: auction.spec.start_price,
            bid_count: result.bids.iter().filter(|bid| !bid.void).count() as u64,
            winner_name: None,
            chain_head_hash: result.bids.last().map(|bid| bid.hash.clone()),
            winning_bid: None,
            receipt_public_key: app.receipt_key.public_key(),
            result,
            node_id: app.node_id,
            issued_at_ms: wall_clock_ms(),
        };
        (view, winning)
    })?;
    if view.result.phase != "sold" {
        return Err(ApiError::Rejected(Rejection::Conflict(format!(
            "auction {auction_id} is {}: only a sold sale has a result to print",
            view.result.phase
        ))));
    }
    view.winner_name = view.result.winner_bidder_id.as_ref().and_then(|bidder_id| {
        let state = app.state.read();
        state
            .kernel
            .bidders
            .get(bidder_id)
            .map(|bidder| bidder.name.clone())
    });
    view.winning_bid = winning.map(|(seq, amount, accepted_at_ms, chain_hash)| WinningBid {
        receipt_signature: app.receipt_key.sign(&crate::receipts::SignedFields {
            auction_id: &auction_id,
            seq,
            amount,
            accepted_at_ms,
            chain_hash: &chain_hash,
        }),
        seq,
        amount,
        accepted_at_ms,
        chain_hash,
    });
    Ok(web::Json(view))
}

/// The winner's last counted bid at the final price: (seq, amount, accepted_at_ms, hash).
fn winning_bid(result: &ResultView) -> Option<(u64, u64, u64, String)> {
    let number = result.winner_bidder_number?;
    let price = result.final_price?;
    result
        .bids
        .iter()
        .rev()
        .find(|bid| !bid.void && bid.bidder_number == number && bid.amount == price)
        .map(|bid| (bid.seq, bid.amount, bid.accepted_at_ms, bid.hash.clone()))
}

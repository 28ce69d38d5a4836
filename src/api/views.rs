//! What the HTTP API answers (API.md). Bidders appear only by their bidder number; the
//! reserve price appears only in the control listener's views.

use serde::Serialize;
use utoipa::ToSchema;

use crate::kernel::state::Lottery;
use crate::kernel::{Auction, BidRecord, Receipt};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuctionView {
    pub id: String,
    pub title: String,
    /// scheduled, listing, timed_bidding, capped, suspended, sold, unsold or terminated.
    pub phase: String,
    pub start_price: u64,
    /// The increment in force.
    pub increment: u64,
    /// `multiple` or `at_least`.
    pub increment_rule: String,
    pub price_cap: Option<u64>,
    pub current_price: Option<u64>,
    pub leading_bidder_number: Option<u32>,
    /// The lowest amount the next bid may carry while bidding is open.
    pub minimum_next_bid: Option<u64>,
    pub bid_count: u64,
    pub listing_opens_at_ms: u64,
    pub listing_closes_at_ms: u64,
    /// When the current phase ends; null once closed or while suspended.
    pub deadline_ms: Option<u64>,
    pub countdown_ms: u64,
    pub winner_bidder_number: Option<u32>,
    /// The lottery that picked the winner in `capped`, if one was drawn.
    pub lottery: Option<LotteryView>,
    /// The parcel's descriptive fields as given at creation.
    #[schema(value_type = Object)]
    pub parcel: serde_json::Value,
    pub server_time_ms: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LotteryView {
    pub seed: u64,
    pub entrants: Vec<u32>,
    pub drawn_index: u64,
}

impl From<&Lottery> for LotteryView {
    fn from(lottery: &Lottery) -> Self {
        LotteryView {
            seed: lottery.seed,
            entrants: lottery.entrants.clone(),
            drawn_index: lottery.drawn_index,
        }
    }
}

impl AuctionView {
    pub fn new(auction: &Auction, server_time_ms: u64) -> Self {
        let open = matches!(
            auction.phase,
            crate::kernel::Phase::Listing | crate::kernel::Phase::TimedBidding
        );
        AuctionView {
            id: auction.spec.id.clone(),
            title: auction.spec.title.clone(),
            phase: auction.phase.as_str().to_string(),
            start_price: auction.spec.start_price,
            increment: auction.increment,
            increment_rule: match auction.spec.increment_rule {
                crate::kernel::IncrementRule::Multiple => "multiple",
                crate::kernel::IncrementRule::AtLeast => "at_least",
            }
            .to_string(),
            price_cap: auction.spec.price_cap,
            current_price: auction.current_price(),
            leading_bidder_number: auction.highest_bid().map(|bid| bid.bidder_number),
            minimum_next_bid: open
                .then(|| crate::kernel::bidding::minimum_next_bid(auction).ok())
                .flatten(),
            bid_count: auction.bids.len() as u64,
            listing_opens_at_ms: auction.spec.listing_opens_at_ms,
            listing_closes_at_ms: auction.spec.listing_closes_at_ms,
            deadline_ms: auction.deadline_ms,
            countdown_ms: auction.spec.countdown_ms,
            winner_bidder_number: auction.winner.as_ref().map(|winner| winner.bidder_number),
            lottery: auction
                .winner
                .as_ref()
                .and_then(|winner| winner.lottery.as_ref())
                .map(LotteryView::from),
            parcel: serde_json::from_str(&auction.spec.parcel_json)
                .unwrap_or(serde_json::Value::Null),
            server_time_ms,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuctionList {
    pub auctions: Vec<AuctionView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BidView {
    pub seq: u64,
    pub bidder_number: u32,
    pub amount: u64,
    pub accepted_at_ms: u64,
}

impl From<&BidRecord> for BidView {
    fn from(bid: &BidRecord) -> Self {
        BidView {
            seq: bid.seq,
            bidder_number: bid.bidder_number,
            amount: bid.amount,
            accepted_at_ms: bid.accepted_at_ms,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BidList {
    pub bids: Vec<BidView>,
    /// When more bids follow the last one listed (a page cut at `limit`), the
    /// `after_seq` that asks for the next page; null when the list reaches the newest bid.
    pub next_after_seq: Option<u64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BidReceipt {
    pub bid_id: String,
    pub seq: u64,
    pub auction_id: String,
    pub amount: u64,
    pub accepted_at_ms: u64,
    pub auction: AuctionView,
}

impl BidReceipt {
    pub fn new(receipt: &Receipt, auction: AuctionView) -> Self {
        BidReceipt {
            bid_id: receipt.bid_id.clone(),
            seq: receipt.seq,
            auction_id: receipt.auction_id.clone(),
            amount: receipt.amount,
            accepted_at_ms: receipt.accepted_at_ms,
            auction,
        }
    }
}

/// The answer to a confirmation in `capped`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfirmationView {
    pub confirmed: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimeView {
    /// The cluster's time: this node's clock corrected by its offset to the voters'
    /// median clock.
    pub server_time_ms: u64,
    pub node_id: u64,
    /// This node's own clock minus the voters' median, as last measured (null until
    /// measured, or on a cluster of one).
    pub clock_offset_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionCreated {
    pub token: String,
    pub bidder_id: String,
    pub expires_at_ms: u64,
}

/// An auction as operators see it: the bidder view plus the reserve price.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ControlAuctionView {
    #[serde(flatten)]
    pub auction: AuctionView,
    pub reserve_price: Option<u64>,
}

impl ControlAuctionView {
    pub fn new(auction: &Auction, server_time_ms: u64) -> Self {
        ControlAuctionView {
            auction: AuctionView::new(auction, server_time_ms),
            reserve_price: auction.spec.reserve_price,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BidderCreated {
    pub bidder_id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QualificationView {
    pub bidder_id: String,
    pub bidder_number: u32,
}

/// The answer of `POST /control/v1/faults/panic`: the fault was sent to the actor.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FaultInjected {
    /// `auction`, `supervisor`, `resource_pool`, `janitor`, `exchange` or `peer_link`.
    pub actor: String,
    /// The auction whose actor panics, for `auction`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auction_id: Option<String>,
    /// The peer whose link panics, for `peer_link`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<u64>,
    pub injected: bool,
}

/// The answer of `POST /control/v1/faults/clock`: the node's clock now runs this far off.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClockFaultInjected {
    pub offset_ms: i64,
    pub injected: bool,
}

/// One accepted bid in the operators' result, with its place in the hash chain.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResultBid {
    pub seq: u64,
    pub bid_id: String,
    pub bidder_id: String,
    pub bidder_number: u32,
    pub amount: u64,
    pub accepted_at_ms: u64,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResultView {
    pub phase: String,
    pub winner_bidder_id: Option<String>,
    pub winner_bidder_number: Option<u32>,
    pub final_price: Option<u64>,
    pub closed_at_ms: Option<u64>,
    pub lottery: Option<LotteryView>,
    /// Whether the bid records form an intact hash chain.
    pub chain_verified: bool,
    pub bids: Vec<ResultBid>,
}

impl ResultView {
    pub fn new(auction: &Auction) -> Self {
        ResultView {
            phase: auction.phase.as_str().to_string(),
            winner_bidder_id: auction
                .winner
                .as_ref()
                .map(|winner| winner.bidder_id.clone()),
            winner_bidder_number: auction.winner.as_ref().map(|winner| winner.bidder_number),
            final_price: auction.winner.as_ref().map(|winner| winner.price),
            closed_at_ms: auction.closed_at_ms,
            lottery: auction
                .winner
                .as_ref()
                .and_then(|winner| winner.lottery.as_ref())
                .map(LotteryView::from),
            chain_verified: crate::kernel::chain::verify_chain(&auction.spec.id, &auction.bids)
                .is_ok(),
            bids: auction
                .bids
                .iter()
                .map(|bid| ResultBid {
                    seq: bid.seq,
                    bid_id: bid.bid_id.clone(),
                    bidder_id: bid.bidder_id.clone(),
                    bidder_number: bid.bidder_number,
                    amount: bid.amount,
                    accepted_at_ms: bid.accepted_at_ms,
                    prev_hash: bid.prev_hash.clone(),
                    hash: bid.hash.clone(),
                })
                .collect(),
        }
    }
}

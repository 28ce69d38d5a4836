//! The result of a sale as data: the phase, the winner, the price, the lottery as anyone
//! re-draws it, and every accepted bid with its place in the hash chain. The exchange
//! ledger spools it out when an auction closes (`ledger`); the control API answers the
//! same fields (`GET /control/v1/auctions/{id}/result`, docs/API.md).

use serde::{Deserialize, Serialize};

use super::chain::verify_chain;
use super::deposits::dispositions;
use super::lottery::Lottery;
use super::state::Auction;

/// `LotteryResult::rule` of a commit–reveal draw.
pub const COMMIT_REVEAL: &str = "commit_reveal";
/// `LotteryResult::rule` of a draw made before seeds were committed.
pub const SPLITMIX64: &str = "splitmix64";

/// An auction's result. The field order is the serialized order: do not reorder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleResult {
    pub phase: String,
    pub winner_bidder_id: Option<String>,
    pub winner_bidder_number: Option<u32>,
    pub final_price: Option<u64>,
    pub closed_at_ms: Option<u64>,
    /// SHA-256 of the lottery's seed, published when the auction entered `capped`.
    pub lottery_commitment: Option<String>,
    pub lottery: Option<LotteryResult>,
    /// Whether the bid records form an intact hash chain.
    pub chain_verified: bool,
    pub bids: Vec<ResultBid>,
    /// Every bidder's deposits with their disposition (none: the auction took none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deposits: Vec<ResultDeposit>,
    /// The winner's confirmation: `pending`, `confirmed`, `lapsed` or `defaulted` (none:
    /// the auction has no confirmation step, or no winner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<String>,
    /// `cap_mode = sealed_bid`, once the auction has closed: every sealed quote, by
    /// ascending bidder number (none while the window is open, or without quotes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed_quotes: Vec<ResultQuote>,
    /// `cap_mode = secondary`: the highest secondary bid (none without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_amount: Option<u64>,
}

/// One sealed quote of a closed auction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultQuote {
    pub bidder_number: u32,
    pub amount: u64,
}

/// A bidder's deposits for an auction, added up, and what becomes of them: `held` while
/// the auction is open, then `applied_to_price` (the winner's), `refund`, or `forfeited`
/// (a winner in default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultDeposit {
    pub bidder_id: String,
    pub amount: u64,
    pub disposition: String,
}

/// One accepted bid of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultBid {
    pub seq: u64,
    pub bid_id: String,
    pub bidder_id: String,
    pub bidder_number: u32,
    pub amount: u64,
    pub accepted_at_ms: u64,
    pub prev_hash: String,
    pub hash: String,
    /// Whether the bid is void (docs/RULES.md, "Mutually exclusive parcels"): kept in the
    /// chain, not counted. Written only when true, so a result without void bids reads
    /// as before.
    #[serde(default, skip_serializing_if = "is_false")]
    pub void: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A drawn lottery as published (`lottery` documents the draw).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotteryResult {
    /// `commit_reveal`; `splitmix64` for a draw made before seeds were committed.
    pub rule: String,
    /// `commit_reveal`: the seed's 32 bytes as 64 hex digits. `splitmix64`: the seed as a
    /// decimal integer.
    pub seed: String,
    /// SHA-256 of the seed's 32 bytes as 64 hex digits; none for `splitmix64`.
    pub commitment: Option<String>,
    /// In the order the draw indexes.
    pub entrants: Vec<LotteryEntrantResult>,
    pub drawn_index: u64,
}

/// One entrant of a lottery: a confirmed bidder's number and their nonce (empty: none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotteryEntrantResult {
    pub bidder_number: u32,
    pub nonce: String,
}

impl From<&Lottery> for LotteryResult {
    fn from(lottery: &Lottery) -> Self {
        match lottery {
            Lottery::SplitMix64 {
                seed,
                entrants,
                drawn_index,
            } => LotteryResult {
                rule: SPLITMIX64.to_string(),
                seed: seed.to_string(),
                commitment: None,
                entrants: entrants
                    .iter()
                    .map(|&bidder_number| LotteryEntrantResult {
                        bidder_number,
                        nonce: String::new(),
                    })
                    .collect(),
                drawn_index: *drawn_index,
            },
            Lottery::CommitReveal(draw) => LotteryResult {
                rule: COMMIT_REVEAL.to_string(),
                seed: hex::encode(draw.seed),
                commitment: Some(hex::encode(draw.commitment)),
                entrants: draw
                    .entrants
                    .iter()
                    .map(|entrant| LotteryEntrantResult {
                        bidder_number: entrant.bidder_number,
                        nonce: entrant.nonce.clone(),
                    })
                    .collect(),
                drawn_index: draw.drawn_index,
            },
        }
    }
}

/// The sealed quotes of a closed auction by ascending bidder number; none while it is
/// open (a quote is secret until the window closes).
fn closed_quotes(auction: &Auction) -> Vec<ResultQuote> {
    if !auction.phase.is_closed() {
        return Vec::new();
    }
    let mut quotes: Vec<ResultQuote> = auction
        .sale
        .sealed_quotes
        .iter()
        .filter_map(|(bidder_id, quote)| {
            Some(ResultQuote {
                bidder_number: auction.bidder_number_of(bidder_id)?,
                amount: quote.amount,
            })
        })
        .collect();
    quotes.sort_by_key(|quote| quote.bidder_number);
    quotes
}

impl SaleResult {
    /// The result of `auction` as it stands.
    pub fn of(auction: &Auction) -> Self {
        let winner = auction.winner.as_ref();
        SaleResult {
            phase: auction.phase.as_str().to_string(),
            winner_bidder_id: winner.map(|winner| winner.bidder_id.clone()),
            winner_bidder_number: winner.map(|winner| winner.bidder_number),
            final_price: winner.map(|winner| winner.price),
            closed_at_ms: auction.closed_at_ms,
            lottery_commitment: auction.lottery_commitment.map(hex::encode),
            lottery: winner
                .and_then(|winner| winner.lottery.as_ref())
                .map(LotteryResult::from),
            chain_verified: verify_chain(&auction.spec.id, &auction.bids).is_ok(),
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
                    void: auction.is_void(bid.seq),
                })
                .collect(),
            deposits: dispositions(auction)
                .into_iter()
                .map(|(bidder_id, amount, disposition)| ResultDeposit {
                    bidder_id,
                    amount,
                    disposition: disposition.as_str().to_string(),
                })
                .collect(),
            confirmation: auction
                .sale
                .confirmation
                .as_ref()
                .map(|confirmation| confirmation.status.as_str().to_string()),
            sealed_quotes: closed_quotes(auction),
            secondary_amount: auction.sale.secondary_bids.last().map(|bid| bid.amount),
        }
    }

    /// The JSON text the outbox carries: the result as a JSON value, written out (the
    /// encoding the spool has always had).
    pub fn to_outbox_json(&self) -> String {
        serde_json::to_value(self).unwrap_or_default().to_string()
    }
}

//! Why the kernel refused a command. Each variant is one `code` of the HTTP contract
//! (docs/API.md); `api::problem` is the one place that turns them into problem+json.

use serde::{Deserialize, Serialize};

use super::money::Money;

/// A command the kernel refused. Refusals are ordinary outcomes, not failures: a losing
/// bid is a `Rejection`, a broken invariant is a panic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("the request is invalid: {0}")]
    InvalidRequest(String),
    #[error("no valid session")]
    Unauthenticated,
    #[error("the bidder is not qualified for this auction")]
    NotQualified,
    #[error("no such auction")]
    AuctionNotFound,
    #[error("no such bidder")]
    BidderNotFound,
    #[error("the auction is not open for this action (phase: {phase})")]
    AuctionNotOpen { phase: String },
    #[error("the amount is below the minimum acceptable bid of {minimum}")]
    BelowMinimum { minimum: Money },
    #[error("the amount is not on the increment: the next valid amounts are {minimum} plus multiples of {increment}")]
    NotOnIncrement { minimum: Money, increment: Money },
    #[error("the bidder already holds the highest bid")]
    AlreadyLeading,
    #[error("the amount is above the price cap of {cap}")]
    AboveCap { cap: Money },
    #[error("the request_id was already used with a different request")]
    RequestIdReused,
    #[error("an auction with this id exists with a different specification")]
    AuctionExists,
    #[error("a bidder with this id exists")]
    BidderExists,
    #[error("only a bidder holding a valid bid may confirm")]
    NotEligible,
    #[error("the action does not apply in this state: {0}")]
    Conflict(String),
    #[error("the bidder's deposit for this auction has not been recorded in full: {deposited} of {required}")]
    DepositMissing { deposited: Money, required: Money },
    #[error("only bidders who bid during the listing may bid in timed bidding")]
    NotAListingBidder,
    #[error("only the winner may confirm the sale")]
    NotWinner,
    #[error("the sale can no longer be confirmed (confirmation: {status})")]
    ConfirmationClosed { status: String },
    #[error("the bidder won another auction of this auction's exclusive group: their qualification here is withdrawn")]
    ExcludedByGroup,
    #[error("the bidder holds the highest bid: their proxy maximum cannot be withdrawn now")]
    Leading,
    #[error("the bidder has already submitted a sealed quote; it cannot be changed")]
    QuoteExists,
    #[error("the amount must lie between {minimum} and {maximum}")]
    OutOfRange { minimum: Money, maximum: Money },
    #[error("only a bidder holding a valid bid may take part once the cap is reached")]
    NoValidBid,
    /// A public key that is not one of its algorithm (docs/RULES.md, "Signed bids").
    #[error("the public key is not valid: {0}")]
    InvalidKey(String),
    #[error("the bidder already holds {max} public keys")]
    TooManyKeys { max: usize },
    #[error("this auction accepts only signed bids: the bid must carry a signature")]
    SignatureRequired,
    #[error("the signature does not verify under any of the bidder's public keys")]
    BadSignature,
}

impl Rejection {
    /// The stable snake_case code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::InvalidRequest(_) => "invalid_request",
            Rejection::Unauthenticated => "unauthenticated",
            Rejection::NotQualified => "not_qualified",
            Rejection::AuctionNotFound => "auction_not_found",
            Rejection::BidderNotFound => "bidder_not_found",
            Rejection::AuctionNotOpen { .. } => "auction_not_open",
            Rejection::BelowMinimum { .. } => "below_minimum",
            Rejection::NotOnIncrement { .. } => "not_on_increment",
            Rejection::AlreadyLeading => "already_leading",
            Rejection::AboveCap { .. } => "above_cap",
            Rejection::RequestIdReused => "request_id_reused",
            Rejection::AuctionExists => "auction_exists",
            Rejection::BidderExists => "bidder_exists",
            Rejection::NotEligible => "not_eligible",
            Rejection::Conflict(_) => "conflict",
            Rejection::DepositMissing { .. } => "deposit_missing",
            Rejection::NotAListingBidder => "not_eligible",
            Rejection::NotWinner => "not_winner",
            Rejection::ConfirmationClosed { .. } => "confirmation_closed",
            Rejection::ExcludedByGroup => "excluded_by_group",
            Rejection::Leading => "leading",
            Rejection::QuoteExists => "quote_exists",
            Rejection::OutOfRange { .. } => "out_of_range",
            Rejection::NoValidBid => "not_eligible",
            Rejection::InvalidKey(_) => "invalid_key",
            Rejection::TooManyKeys { .. } => "too_many_keys",
            Rejection::SignatureRequired => "signature_required",
            Rejection::BadSignature => "bad_signature",
        }
    }

    /// The HTTP status the contract gives this code.
    pub fn http_status(&self) -> u16 {
        match self {
            Rejection::InvalidRequest(_)
            | Rejection::InvalidKey(_)
            | Rejection::SignatureRequired => 422,
            Rejection::Unauthenticated | Rejection::BadSignature => 401,
            Rejection::NotQualified
            | Rejection::NotEligible
            | Rejection::NotAListingBidder
            | Rejection::NotWinner
            | Rejection::ExcludedByGroup
            | Rejection::NoValidBid => 403,
            Rejection::AuctionNotFound | Rejection::BidderNotFound => 404,
            _ => 409,
        }
    }
}

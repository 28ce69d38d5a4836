//! Deposits (docs/RULES.md, "Deposits"): recorded per bidder and auction from a bank
//! receipt, once per `reference`, adding up; an auction with a `deposit` qualifies only
//! bidders whose deposits reach it; at close every deposit gets a disposition.

use super::auction::{Auction, Phase};
use super::command::Outcome;
use super::money::Money;
use super::phases::not_open;
use super::rejection::Rejection;
use super::sale::{ConfirmationStatus, Deposit, MAX_DEPOSITS_PER_AUCTION};
use super::types::validate_id;

/// A deposit as an operator or the inbound spool records it.
pub struct DepositRequest<'a> {
    pub bidder_id: &'a str,
    pub amount: Money,
    pub reference: &'a str,
}

/// Checks a deposit's fields, before anything is looked up.
pub fn validate(request: &DepositRequest<'_>) -> Result<(), Rejection> {
    validate_id("bidder_id", request.bidder_id)?;
    validate_id("reference", request.reference)?;
    if request.amount == 0 {
        return Err(Rejection::InvalidRequest(
            "amount must be positive".to_string(),
        ));
    }
    Ok(())
}

/// Records a deposit in `auction` (already advanced to `now_ms`). The same reference
/// with the same bidder and amount again changes nothing; with anything else it is
/// refused.
pub fn record(
    auction: &mut Auction,
    now_ms: u64,
    actor: &str,
    request: &DepositRequest<'_>,
) -> Result<Outcome, Rejection> {
    let answer = |auction: &Auction, created| Outcome::DepositRecorded {
        bidder_id: request.bidder_id.to_string(),
        deposited: auction.sale.deposited_by(request.bidder_id),
        required: auction.sale.rules.deposit,
        created,
    };
    if let Some(existing) = auction.sale.deposits.get(request.reference) {
        return if existing.bidder_id == request.bidder_id && existing.amount == request.amount {
            Ok(answer(auction, false))
        } else {
            Err(Rejection::Conflict(format!(
                "reference {} was recorded for a different deposit",
                request.reference
            )))
        };
    }
    if auction.phase.is_closed() {
        return Err(not_open(auction));
    }
    if auction.sale.deposits.len() >= MAX_DEPOSITS_PER_AUCTION {
        return Err(Rejection::Conflict(format!(
            "this auction holds the most deposits it may ({MAX_DEPOSITS_PER_AUCTION})"
        )));
    }
    auction.sale.add_deposit(
        request.reference,
        Deposit {
            bidder_id: request.bidder_id.to_string(),
            amount: request.amount,
            recorded_at_ms: now_ms,
        },
    );
    auction.record(
        now_ms,
        actor,
        "deposit_recorded",
        format!(
            "{} paid {} (reference {})",
            request.bidder_id, request.amount, request.reference
        ),
    );
    Ok(answer(auction, true))
}

/// Whether `bidder_id` may be qualified for `auction` as far as deposits go.
pub fn check_qualification(auction: &Auction, bidder_id: &str) -> Result<(), Rejection> {
    let required = auction.sale.rules.deposit;
    let deposited = auction.sale.deposited_by(bidder_id);
    if deposited < required {
        return Err(Rejection::DepositMissing {
            deposited,
            required,
        });
    }
    Ok(())
}

/// What becomes of a deposit (docs/RULES.md, "Deposits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The auction is still open: the deposit is held.
    Held,
    /// The winner's deposit counts towards the price.
    AppliedToPrice,
    /// Returned to the bidder.
    Refund,
    /// Kept: the winner defaulted.
    Forfeited,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Held => "held",
            Disposition::AppliedToPrice => "applied_to_price",
            Disposition::Refund => "refund",
            Disposition::Forfeited => "forfeited",
        }
    }
}

/// Every bidder's deposits, added up, with their disposition, by bidder id.
pub fn dispositions(auction: &Auction) -> Vec<(String, Money, Disposition)> {
    let winner = auction
        .winner
        .as_ref()
        .filter(|_| auction.phase == Phase::Sold)
        .map(|winner| winner.bidder_id.as_str());
    let defaulted = auction
        .sale
        .confirmation
        .as_ref()
        .is_some_and(|confirmation| confirmation.status == ConfirmationStatus::Defaulted);
    auction
        .sale
        .deposits_by_bidder()
        .into_iter()
        .map(|(bidder_id, amount)| {
            let disposition = if !auction.phase.is_closed() {
                Disposition::Held
            } else if Some(bidder_id) != winner {
                Disposition::Refund
            } else if defaulted {
                Disposition::Forfeited
            } else {
                Disposition::AppliedToPrice
            };
            (bidder_id.to_string(), amount, disposition)
        })
        .collect()
}

//! Secondary bidding (竞配建 / 竞自持), `cap_mode = secondary` (docs/RULES.md, "Secondary
//! bidding"): reaching the cap freezes the price at `price_cap` and the auction enters
//! `secondary_bidding`, where bidders holding a valid bid bid on a second quantity under
//! the timed-bidding rules: every accepted secondary bid sets `deadline = accepted_at +
//! countdown_ms`, the leader cannot bid again, the first bid is at least `start` and each
//! later one a whole number of increments above the current value (or `max` itself). The
//! first bid to reach `max` closes the auction at once. The highest secondary bid wins at
//! `price_cap`; with none, the bidder who reached the cap wins at `price_cap`.
//!
//! Secondary bids are kept in `SaleState::secondary_bids`, in order, each with its
//! request_id for retries; they are not hash-chained (the price bids are).

use super::auction::{Auction, Phase, Winner};
use super::closing::{close, event};
use super::command::{Outcome, SecondaryReceipt};
use super::event::{Event, EventKind};
use super::rejection::Rejection;
use super::sale::{SecondaryBid, SecondarySpec};
use super::signatures::KeptSignature;

/// Enters `secondary_bidding` at `now_ms`, with a full countdown.
pub fn enter(auction: &mut Auction, now_ms: u64, events: &mut Vec<Event>) {
    auction.enter(Phase::SecondaryBidding);
    let deadline = now_ms.saturating_add(auction.spec.countdown_ms);
    auction.deadline_ms = Some(deadline);
    auction.sale.secondary_entered_at_ms = Some(now_ms);
    let cap = auction.spec.price_cap.unwrap_or_default();
    auction.record(
        now_ms,
        "system",
        "secondary_bidding_started",
        format!("price frozen at {cap}; deadline {deadline}"),
    );
    events.push(event(auction, EventKind::Phase));
}

/// The second quantity's specification of an auction under `cap_mode = secondary`.
pub fn spec(auction: &Auction) -> Option<&SecondarySpec> {
    auction.sale.rules.secondary.as_ref()
}

/// The current secondary value: the last accepted secondary bid that counts (a bid of a
/// bidder an exclusive group excluded does not).
pub fn current(auction: &Auction) -> Option<&SecondaryBid> {
    counted(auction).next_back()
}

/// The secondary bids that count, oldest first: every one but those of excluded bidders.
pub fn counted(auction: &Auction) -> impl DoubleEndedIterator<Item = &SecondaryBid> {
    let excluded = &auction.sale.excluded;
    let bids = auction.sale.secondary_bids.iter();
    bids.filter(move |bid| !excluded.contains(&bid.bidder_id))
}

/// The lowest secondary amount the next bid may carry: `start` for the first, then the
/// current value plus one increment (at most `max`).
pub fn minimum_next(auction: &Auction) -> Option<u64> {
    let spec = spec(auction)?;
    Some(match current(auction) {
        None => spec.start,
        Some(bid) => bid.amount.saturating_add(spec.increment).min(spec.max),
    })
}

/// A secondary bid, the session already resolved to `bidder_id`.
pub struct SecondaryRequest<'a> {
    pub auction_id: &'a str,
    pub bidder_id: &'a str,
    pub amount: u64,
    pub request_id: &'a str,
}

fn receipt(auction_id: &str, bid: &SecondaryBid) -> SecondaryReceipt {
    SecondaryReceipt {
        auction_id: auction_id.to_string(),
        seq: bid.seq,
        secondary_amount: bid.amount,
        accepted_at_ms: bid.accepted_at_ms,
    }
}

/// The answer to a request_id the bidder used before in this auction: the receipt again
/// for the same amount, `request_id_reused` for another; `None` for a new one.
pub fn replayed(
    auction: &Auction,
    request: &SecondaryRequest<'_>,
) -> Option<Result<Outcome, Rejection>> {
    let earlier =
        auction.sale.secondary_bids.iter().find(|bid| {
            bid.bidder_id == request.bidder_id && bid.request_id == request.request_id
        })?;
    Some(if earlier.amount == request.amount {
        Ok(Outcome::SecondaryBidAccepted {
            receipt: receipt(request.auction_id, earlier),
            replayed: true,
        })
    } else {
        Err(Rejection::RequestIdReused)
    })
}

/// Checks a secondary amount against the rules, without changing anything.
fn check_amount(auction: &Auction, bidder_id: &str, amount: u64) -> Result<(), Rejection> {
    let (Some(spec), Some(minimum)) = (spec(auction), minimum_next(auction)) else {
        return Err(not_open(auction));
    };
    let current = current(auction);
    if current.is_some_and(|bid| bid.bidder_id == bidder_id) {
        return Err(Rejection::AlreadyLeading);
    }
    if amount < minimum {
        return Err(Rejection::BelowMinimum { minimum });
    }
    if amount > spec.max {
        return Err(Rejection::OutOfRange {
            minimum,
            maximum: spec.max,
        });
    }
    if let Some(bid) = current {
        if amount != spec.max && !(amount - bid.amount).is_multiple_of(spec.increment) {
            return Err(Rejection::NotOnIncrement {
                minimum,
                increment: spec.increment,
            });
        }
    }
    Ok(())
}

fn not_open(auction: &Auction) -> Rejection {
    Rejection::AuctionNotOpen {
        phase: auction.phase.as_str().to_string(),
    }
}

/// Places a secondary bid in `auction` (already advanced to `now_ms`; retries already
/// answered by `replayed`), with the bidder's signature of it if signed. A bid that
/// reaches `max` closes the auction at once.
pub fn place(
    auction: &mut Auction,
    now_ms: u64,
    request: &SecondaryRequest<'_>,
    signature: Option<KeptSignature>,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    let bidder_number = auction
        .bidder_number_of(request.bidder_id)
        .ok_or(Rejection::NotQualified)?;
    if auction.sale.excluded.contains(request.bidder_id) {
        return Err(Rejection::ExcludedByGroup);
    }
    if auction.phase != Phase::SecondaryBidding {
        return Err(not_open(auction));
    }
    if !auction
        .counted_bids()
        .any(|bid| bid.bidder_id == request.bidder_id)
    {
        return Err(Rejection::NoValidBid);
    }
    check_amount(auction, request.bidder_id, request.amount)?;
    let bid = SecondaryBid {
        seq: auction.sale.secondary_bids.len() as u64 + 1,
        bidder_id: request.bidder_id.to_string(),
        bidder_number,
        amount: request.amount,
        accepted_at_ms: now_ms,
        request_id: request.request_id.to_string(),
        signature,
    };
    let answer = receipt(request.auction_id, &bid);
    auction.sale.secondary_bids.push(bid);
    auction.deadline_ms = Some(now_ms.saturating_add(auction.spec.countdown_ms));
    events.push(event(auction, EventKind::SecondaryBid { seq: answer.seq }));
    if spec(auction).is_some_and(|spec| request.amount >= spec.max) {
        finish(auction, now_ms, events);
    }
    Ok(Outcome::SecondaryBidAccepted {
        receipt: answer,
        replayed: false,
    })
}

/// The winner: the highest secondary bid's bidder, else the bidder who reached the cap;
/// at `price_cap` either way.
fn winner(auction: &Auction) -> Option<Winner> {
    let cap_bid = auction.highest_bid()?;
    let price = auction.spec.price_cap.unwrap_or(cap_bid.amount);
    let (bidder_id, bidder_number) = match current(auction) {
        Some(bid) => (bid.bidder_id.clone(), bid.bidder_number),
        None => (cap_bid.bidder_id.clone(), cap_bid.bidder_number),
    };
    Some(Winner {
        bidder_id,
        bidder_number,
        price,
        lottery: None,
    })
}

/// Closes secondary bidding at `closed_at_ms`: its deadline passed, or a bid reached `max`.
pub fn finish(auction: &mut Auction, closed_at_ms: u64, events: &mut Vec<Event>) {
    let winner = winner(auction);
    close(auction, closed_at_ms, winner, events);
}

/// The secondary-bidding invariant: the secondary bids that count strictly increase and
/// stay within `[start, max]`; the winner holds the highest of them (the cap bid when
/// there is none) at `price_cap`. Answers what does not hold.
pub fn check_winner(auction: &Auction, winner: &Winner) -> Result<(), String> {
    let bids: Vec<&SecondaryBid> = counted(auction).collect();
    let increasing = bids.windows(2).all(|pair| pair[0].amount < pair[1].amount);
    let within = spec(auction).is_some_and(|spec| {
        bids.iter()
            .all(|bid| bid.amount >= spec.start && bid.amount <= spec.max)
    });
    if !increasing || !within {
        return Err("secondary bids do not increase within [start, max]".to_string());
    }
    match self::winner(auction) {
        Some(expected) if &expected == winner => Ok(()),
        _ => Err("the winner is not the highest secondary bidder at the price cap".to_string()),
    }
}

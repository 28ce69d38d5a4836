//! Time transitions and operator phase changes: opening, listing close, the end of timed
//! bidding, suspension and resume, termination, and the takeover grace rule.
//!
//! Deadlines are values in the state. `advance` applies every transition that is due at
//! the command's time; it runs before any command touches an auction, so a bid that
//! arrives after the deadline finds the auction already closed.

use std::collections::BTreeMap;

use super::acceptance;
use super::auction::{Auction, Phase, Suspension, Winner};
use super::cap;
use super::closing::{close, event};
use super::event::{Event, EventKind};
use super::rejection::Rejection;
use super::secondary;

/// One hour: the listing resume bound of docs/RULES.md.
pub const ONE_HOUR_MS: u64 = 3_600_000;

/// Auction `auction_id` of `auctions`, with its due time transitions applied at `now_ms`.
pub fn advanced<'a>(
    auctions: &'a mut BTreeMap<String, Auction>,
    auction_id: &str,
    now_ms: u64,
    seed: u64,
    events: &mut Vec<Event>,
) -> Result<&'a mut Auction, Rejection> {
    let auction = auctions
        .get_mut(auction_id)
        .ok_or(Rejection::AuctionNotFound)?;
    advance(auction, now_ms, seed, events);
    Ok(auction)
}

/// Applies every time transition due at `now_ms`: the phases' deadlines, then the end of
/// a winner's confirmation window.
pub fn advance(auction: &mut Auction, now_ms: u64, seed: u64, events: &mut Vec<Event>) {
    advance_phases(auction, now_ms, seed, events);
    acceptance::lapse_if_due(auction, now_ms, events);
}

fn advance_phases(auction: &mut Auction, now_ms: u64, seed: u64, events: &mut Vec<Event>) {
    while let Some(deadline) = auction.deadline_ms {
        match auction.phase {
            Phase::Scheduled if now_ms >= deadline => {
                auction.enter(Phase::Listing);
                auction.deadline_ms = Some(auction.spec.listing_closes_at_ms);
                auction.record(deadline, "system", "listing_opened", String::new());
                events.push(event(auction, EventKind::Phase));
            }
            Phase::Listing if now_ms > deadline => close_listing(auction, deadline, events),
            Phase::TimedBidding if now_ms > deadline => {
                let high_bidder = auction.highest_bid().map(|bid| bid.bidder_id.clone());
                finish(auction, deadline, high_bidder, events);
            }
            Phase::Capped if now_ms > deadline => cap::draw(auction, deadline, seed, events),
            Phase::SecondaryBidding if now_ms > deadline => {
                secondary::finish(auction, deadline, events)
            }
            _ => return,
        }
    }
}

/// Listing close: no bids, unsold; one bidder, that bidder (if the reserve is met); two
/// or more, timed bidding from the current high bid.
fn close_listing(auction: &mut Auction, closed_at_ms: u64, events: &mut Vec<Event>) {
    match auction.distinct_bidders() {
        0 => finish(auction, closed_at_ms, None, events),
        1 => {
            let only = auction.highest_bid().map(|bid| bid.bidder_id.clone());
            finish(auction, closed_at_ms, only, events);
        }
        _ => {
            auction.enter(Phase::TimedBidding);
            let deadline = closed_at_ms.saturating_add(auction.spec.countdown_ms);
            auction.deadline_ms = Some(deadline);
            auction.record(
                closed_at_ms,
                "system",
                "timed_bidding_started",
                format!("deadline {deadline}"),
            );
            events.push(event(auction, EventKind::Phase));
        }
    }
}

/// Closes the auction at `closed_at_ms`: sold to `candidate` at the high bid if it meets
/// the reserve, else unsold.
pub fn finish(
    auction: &mut Auction,
    closed_at_ms: u64,
    candidate: Option<String>,
    events: &mut Vec<Event>,
) {
    let price = auction.current_price();
    let meets_reserve = match (price, auction.spec.reserve_price) {
        (Some(price), Some(reserve)) => price >= reserve,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let winner = candidate.filter(|_| meets_reserve).and_then(|bidder_id| {
        Some(Winner {
            bidder_number: auction.bidder_number_of(&bidder_id)?,
            price: price?,
            bidder_id,
            lottery: None,
        })
    });
    close(auction, closed_at_ms, winner, events);
}

/// Freezes an open auction, keeping its remaining time.
pub fn suspend(
    auction: &mut Auction,
    now_ms: u64,
    actor: &str,
    reason: &str,
    events: &mut Vec<Event>,
) -> Result<(), Rejection> {
    let deadline = match (auction.phase.is_open(), auction.deadline_ms) {
        (true, Some(deadline)) => deadline,
        _ => return Err(not_open(auction)),
    };
    auction.suspension = Some(Suspension {
        from_phase: auction.phase,
        remaining_ms: deadline.saturating_sub(now_ms),
        suspended_at_ms: now_ms,
        reason: reason.to_string(),
    });
    auction.enter(Phase::Suspended);
    auction.deadline_ms = None;
    auction.record(now_ms, actor, "suspended", reason.to_string());
    events.push(event(auction, EventKind::Phase));
    Ok(())
}

/// Unfreezes a suspended auction. A listing gets its remaining time back (when the
/// freeze began in the final hour that is at most one hour); timed bidding restarts
/// with a full countdown, and so does secondary bidding; a capped auction gets its
/// remaining confirm (or sealed-quote) window back.
pub fn resume(
    auction: &mut Auction,
    now_ms: u64,
    seed: u64,
    actor: &str,
    reason: &str,
    events: &mut Vec<Event>,
) -> Result<(), Rejection> {
    let Some(suspension) = auction.suspension.take() else {
        return Err(Rejection::Conflict(
            "the auction is not suspended".to_string(),
        ));
    };
    let remaining_ms = match suspension.from_phase {
        Phase::TimedBidding | Phase::SecondaryBidding => auction.spec.countdown_ms,
        Phase::Listing if suspension.remaining_ms <= ONE_HOUR_MS => {
            suspension.remaining_ms.min(ONE_HOUR_MS)
        }
        _ => suspension.remaining_ms,
    };
    let deadline = now_ms.saturating_add(remaining_ms);
    auction.enter(suspension.from_phase);
    auction.deadline_ms = Some(deadline);
    auction.record(
        now_ms,
        actor,
        "resumed",
        format!("{reason}; deadline {deadline}"),
    );
    events.push(event(auction, EventKind::Phase));
    events.push(event(
        auction,
        EventKind::Extended {
            deadline_ms: deadline,
        },
    ));
    // An increment changed during the freeze can leave the high bid within one increment
    // of the cap: price bidding then stops.
    if matches!(auction.phase, Phase::Listing | Phase::TimedBidding) && cap::cap_reached(auction) {
        cap::reach_cap(auction, now_ms, seed, events);
    }
    Ok(())
}

/// Closes an auction with no winner by operator decision.
pub fn terminate(
    auction: &mut Auction,
    now_ms: u64,
    actor: &str,
    reason: &str,
    events: &mut Vec<Event>,
) -> Result<(), Rejection> {
    if auction.phase.is_closed() {
        return Err(not_open(auction));
    }
    auction.enter(Phase::Terminated);
    auction.deadline_ms = None;
    auction.suspension = None;
    auction.winner = None;
    auction.closed_at_ms = Some(now_ms);
    auction.record(now_ms, actor, "terminated", reason.to_string());
    events.push(event(auction, EventKind::Closed));
    Ok(())
}

/// The failover grace rule: an open auction whose deadline passed during the leaderless
/// gap, or falls less than `failover_grace_ms` after the takeover, gets
/// `deadline = takeover + failover_grace_ms`. Returns whether the deadline moved.
pub fn apply_takeover_grace(
    auction: &mut Auction,
    takeover_ms: u64,
    leader_node_id: u64,
    events: &mut Vec<Event>,
) -> bool {
    let Some(deadline) = auction.deadline_ms.filter(|_| auction.phase.is_open()) else {
        return false;
    };
    let extended = takeover_ms.saturating_add(auction.spec.failover_grace_ms);
    if deadline >= extended {
        return false;
    }
    auction.deadline_ms = Some(extended);
    auction.record(
        takeover_ms,
        "system",
        "takeover_extension",
        format!("leader {leader_node_id} took over; deadline {deadline} -> {extended}"),
    );
    events.push(event(
        auction,
        EventKind::Extended {
            deadline_ms: extended,
        },
    ));
    true
}

pub fn not_open(auction: &Auction) -> Rejection {
    Rejection::AuctionNotOpen {
        phase: auction.phase.as_str().to_string(),
    }
}

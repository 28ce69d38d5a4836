//! Closing an auction with its result: what every way to a final phase but termination
//! shares (the listing's close and the end of timed bidding in `phases`, the lottery's
//! draw in `cap`).

use super::acceptance;
use super::auction::{Auction, Phase, Winner};
use super::event::{Event, EventKind};

/// An event about `auction`.
pub(super) fn event(auction: &Auction, kind: EventKind) -> Event {
    Event {
        auction_id: auction.spec.id.clone(),
        kind,
    }
}

/// Moves the auction to its final phase.
pub fn close(
    auction: &mut Auction,
    closed_at_ms: u64,
    winner: Option<Winner>,
    events: &mut Vec<Event>,
) {
    auction.enter(if winner.is_some() {
        Phase::Sold
    } else {
        Phase::Unsold
    });
    let detail = match &winner {
        Some(winner) => format!("bidder number {} at {}", winner.bidder_number, winner.price),
        None => "no winner".to_string(),
    };
    auction.winner = winner;
    auction.deadline_ms = None;
    auction.closed_at_ms = Some(closed_at_ms);
    auction.record(closed_at_ms, "system", auction.phase.as_str(), detail);
    acceptance::open_window(auction, closed_at_ms);
    events.push(event(auction, EventKind::Closed));
}

//! Mutually exclusive parcels (docs/RULES.md, "Mutually exclusive parcels"): when a
//! bidder wins an auction of an `exclusive_group`, their qualification for the group's
//! other open auctions is withdrawn. Their bids there become void (kept in the chain,
//! never counted for price, leader or winner), their lottery confirmation and proxy
//! there go, and further bids and confirmations are refused (`excluded_by_group`).
//!
//! The rule crosses auctions, so it runs on the whole state after each command (and after
//! a takeover's transitions), from the `Closed` events that command produced: every
//! auction that closed `sold` in it with a group excludes its winner from the others, in
//! the state's order. An exclusion can close another auction (its due transitions are
//! applied first): that close is an event of the same command and is handled in turn.

use std::collections::BTreeSet;

use super::closing::event;
use super::event::{Event, EventKind};
use super::phases::advance;
use super::proxy;
use super::state::{Auction, Phase, State};

/// Applies the exclusions of the auctions that closed `sold` in `events` (and of those
/// the exclusions themselves close). Answers the auctions whose bids or bidders changed.
pub(crate) fn apply(
    state: &mut State,
    now_ms: u64,
    seed: u64,
    events: &mut Vec<Event>,
) -> BTreeSet<String> {
    let mut touched = BTreeSet::new();
    let mut index = 0;
    while index < events.len() {
        let closed =
            (events[index].kind == EventKind::Closed).then(|| events[index].auction_id.clone());
        index += 1;
        let Some((group, winner)) = closed.and_then(|id| sold_in_group(state, &id)) else {
            continue;
        };
        let siblings: Vec<String> = state
            .auctions
            .iter()
            .filter(|(_, auction)| {
                !auction.phase.is_closed()
                    && auction.sale.rules.exclusive_group.as_deref() == Some(group.as_str())
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in siblings {
            let Some(auction) = state.auctions.get_mut(&id) else {
                continue;
            };
            advance(auction, now_ms, seed, events);
            if !auction.phase.is_closed() && exclude(auction, &winner, now_ms, seed, events) {
                touched.insert(id);
            }
        }
    }
    touched
}

/// The group and the winner of `auction_id`, if it is sold and in a group.
fn sold_in_group(state: &State, auction_id: &str) -> Option<(String, String)> {
    let auction = state.auctions.get(auction_id)?;
    if auction.phase != Phase::Sold {
        return None;
    }
    let group = auction.sale.rules.exclusive_group.clone()?;
    let winner = auction.winner.as_ref()?.bidder_id.clone();
    Some((group, winner))
}

/// Withdraws `bidder_id`'s qualification for `auction` (open): voids their bids, drops
/// their confirmation and proxy, and lets the other proxies answer the price that
/// remains. Answers whether anything changed.
fn exclude(
    auction: &mut Auction,
    bidder_id: &str,
    now_ms: u64,
    seed: u64,
    events: &mut Vec<Event>,
) -> bool {
    if !auction.sale.excluded.insert(bidder_id.to_string()) {
        return false;
    }
    let void: Vec<u64> = auction
        .bids
        .iter()
        .filter(|bid| bid.bidder_id == bidder_id)
        .map(|bid| bid.seq)
        .collect();
    auction.sale.voided.extend(void.iter().copied());
    auction
        .confirmations
        .retain(|confirmation| confirmation.bidder_id != bidder_id);
    auction.sale.proxies.remove(bidder_id);
    // Their sealed quote goes too; their secondary bids no longer count
    // (`secondary::counted`).
    auction.sale.sealed_quotes.remove(bidder_id);
    let who = match auction.bidder_number_of(bidder_id) {
        Some(number) => format!("bidder number {number}"),
        None => "a bidder not qualified here".to_string(),
    };
    let detail = format!(
        "{who} won another auction of the group; {} bids void",
        void.len()
    );
    auction.record(now_ms, "system", "excluded_by_group", detail);
    if !void.is_empty() {
        events.push(event(auction, EventKind::Voided));
    }
    proxy::resolve(auction, now_ms, seed, events);
    true
}

//! The price cap: when the high bid reaches `price_cap` (or lies less than one increment
//! below it) price bidding stops and the auction enters `capped`; bidders holding a
//! valid bid may confirm within `cap_confirm_ms`; then a deterministic lottery among
//! those who confirmed picks the winner (no one confirmed: the cap bidder wins).

use super::event::{Event, EventKind};
use super::phases::close;
use super::state::{Auction, Lottery, Phase, Winner};

/// Whether the high bid has reached the cap.
pub fn cap_reached(auction: &Auction) -> bool {
    match (auction.spec.price_cap, auction.current_price()) {
        (Some(cap), Some(price)) => price >= cap || cap - price < auction.increment,
        _ => false,
    }
}

/// Enters `capped` at `now_ms` and opens the confirm window.
pub fn enter_capped(auction: &mut Auction, now_ms: u64, events: &mut Vec<Event>) {
    let deadline = now_ms.saturating_add(auction.spec.cap_confirm_ms);
    auction.phase = Phase::Capped;
    auction.deadline_ms = Some(deadline);
    auction.record(
        now_ms,
        "system",
        "capped",
        format!("confirm until {deadline}"),
    );
    events.push(Event {
        auction_id: auction.spec.id.clone(),
        kind: EventKind::Phase,
    });
}

/// SplitMix64: a small, well-mixed deterministic generator, the same on every replica.
pub fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The index the lottery draws among `entrant_count` entrants for `seed`. Published with
/// the result so anyone can recompute it.
pub fn draw_index(seed: u64, entrant_count: usize) -> u64 {
    if entrant_count == 0 {
        return 0;
    }
    splitmix64(seed) % entrant_count as u64
}

/// Closes a capped auction at the end of its confirm window. With one entrant the draw
/// is trivially that entrant; it is still recorded as a lottery.
pub fn draw(auction: &mut Auction, closed_at_ms: u64, seed: u64, events: &mut Vec<Event>) {
    let Some(price) = auction.current_price() else {
        close(auction, closed_at_ms, None, events);
        return;
    };
    if auction
        .spec
        .reserve_price
        .is_some_and(|reserve| price < reserve)
    {
        close(auction, closed_at_ms, None, events);
        return;
    }
    let mut entrants: Vec<(u32, String)> = auction
        .confirmations
        .iter()
        .filter_map(|bidder_id| Some((auction.bidder_number_of(bidder_id)?, bidder_id.clone())))
        .collect();
    entrants.sort();
    let winner = if entrants.is_empty() {
        auction.highest_bid().map(|bid| Winner {
            bidder_id: bid.bidder_id.clone(),
            bidder_number: bid.bidder_number,
            price,
            lottery: None,
        })
    } else {
        let drawn_index = draw_index(seed, entrants.len());
        let (bidder_number, bidder_id) = entrants[drawn_index as usize].clone();
        Some(Winner {
            bidder_id,
            bidder_number,
            price,
            lottery: Some(Lottery {
                seed,
                entrants: entrants.iter().map(|(number, _)| *number).collect(),
                drawn_index,
            }),
        })
    };
    close(auction, closed_at_ms, winner, events);
}

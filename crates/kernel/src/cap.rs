//! The price cap: when the high bid reaches `price_cap` (or lies less than one increment
//! below it) price bidding stops and the auction enters `capped`, committing to the
//! lottery's seed; bidders holding a valid bid may confirm within `cap_confirm_ms`; then
//! the lottery among those who confirmed picks the winner (no one confirmed: the cap
//! bidder wins). The draw itself, and how anyone checks it, is `lottery`'s.
//!
//! That is `cap_mode = lottery`, the default. Under `sealed_bid` the auction enters
//! `capped` the same way (seed committed) for `sealed_window_ms`, and the quotes decide
//! (`sealed`); under `secondary` it enters `secondary_bidding` instead (`secondary`).

use super::auction::{Auction, Phase, Winner};
use super::closing::close;
use super::event::{Event, EventKind};
use super::lottery::{self, CommitReveal, Lottery, LotteryEntrant};
use super::sale::CapMode;
use super::sealed;
use super::secondary;

/// Whether the high bid has reached the cap.
pub fn cap_reached(auction: &Auction) -> bool {
    match (auction.spec.price_cap, auction.current_price()) {
        (Some(cap), Some(price)) => price >= cap || cap - price < auction.increment,
        _ => false,
    }
}

/// Stops price bidding at `now_ms`, the cap being reached: `capped` (the lottery's
/// confirmations, or the sealed quotes' window), or `secondary_bidding`, as the auction's
/// `cap_mode` says.
pub fn reach_cap(auction: &mut Auction, now_ms: u64, seed: u64, events: &mut Vec<Event>) {
    match auction.sale.rules.cap_mode {
        CapMode::Secondary => secondary::enter(auction, now_ms, events),
        CapMode::Lottery | CapMode::SealedBid => enter_capped(auction, now_ms, seed, events),
    }
}

/// Enters `capped` at `now_ms`, draws the lottery seed from the auction's pool and the
/// leader's `seed` of this entry, publishes only its commitment, and opens the confirm
/// window (under `sealed_bid`, the quotes' window).
fn enter_capped(auction: &mut Auction, now_ms: u64, seed: u64, events: &mut Vec<Event>) {
    let sealed_window = auction
        .sale
        .rules
        .sealed_window_ms
        .filter(|_| auction.sale.rules.cap_mode == CapMode::SealedBid);
    let window = sealed_window.unwrap_or(auction.spec.cap_confirm_ms);
    let deadline = now_ms.saturating_add(window);
    lottery::mix(&mut auction.lottery_secret.pool, seed);
    let lottery_seed = lottery::seed_from_pool(&auction.lottery_secret.pool);
    let commitment = lottery::commitment(&lottery_seed);
    auction.lottery_secret.seed = Some(lottery_seed);
    auction.lottery_commitment = Some(commitment);
    auction.enter(Phase::Capped);
    auction.deadline_ms = Some(deadline);
    auction.record(
        now_ms,
        "system",
        "capped",
        format!(
            "{} until {deadline}; lottery commitment {}",
            if sealed_window.is_some() {
                "sealed quotes"
            } else {
                "confirm"
            },
            hex::encode(commitment)
        ),
    );
    events.push(Event {
        auction_id: auction.spec.id.clone(),
        kind: EventKind::Phase,
    });
}

/// Closes a capped auction at the end of its confirm window. With one entrant the draw
/// is trivially that entrant; it is still recorded as a lottery. `seed` (the entry's that
/// closes the window) is used only by an auction that entered `capped` without a
/// committed seed (see `lottery`'s module doc).
pub fn draw(auction: &mut Auction, closed_at_ms: u64, seed: u64, events: &mut Vec<Event>) {
    if auction.sale.rules.cap_mode == CapMode::SealedBid {
        sealed::close_window(auction, closed_at_ms, events);
        return;
    }
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
    let winner = if auction.confirmations.is_empty() {
        auction.highest_bid().map(|bid| Winner {
            bidder_id: bid.bidder_id.clone(),
            bidder_number: bid.bidder_number,
            price,
            lottery: None,
        })
    } else {
        match auction.lottery_secret.seed {
            Some(committed_seed) => commit_reveal_winner(auction, committed_seed, price),
            None => splitmix64_winner(auction, seed, price),
        }
    };
    close(auction, closed_at_ms, winner, events);
}

/// The confirmed bidders in log order, with their numbers.
fn entrants(auction: &Auction) -> Vec<(String, LotteryEntrant)> {
    auction
        .confirmations
        .iter()
        .filter_map(|confirmation| {
            let bidder_number = auction.bidder_number_of(&confirmation.bidder_id)?;
            let entrant = LotteryEntrant {
                bidder_number,
                nonce: confirmation.nonce.clone(),
            };
            Some((confirmation.bidder_id.clone(), entrant))
        })
        .collect()
}

fn commit_reveal_winner(auction: &Auction, seed: lottery::Bytes32, price: u64) -> Option<Winner> {
    let (bidder_ids, entrants): (Vec<String>, Vec<LotteryEntrant>) =
        entrants(auction).into_iter().unzip();
    let drawn_index = lottery::draw_index(&auction.spec.id, &seed, &entrants);
    let bidder_id = bidder_ids.get(drawn_index as usize)?.clone();
    let bidder_number = entrants.get(drawn_index as usize)?.bidder_number;
    Some(Winner {
        bidder_id,
        bidder_number,
        price,
        lottery: Some(Lottery::CommitReveal(CommitReveal {
            seed,
            commitment: lottery::commitment(&seed),
            entrants,
            drawn_index,
        })),
    })
}

/// The draw of an auction that entered `capped` before seeds were committed.
fn splitmix64_winner(auction: &Auction, seed: u64, price: u64) -> Option<Winner> {
    let mut entrants: Vec<(u32, String)> = entrants(auction)
        .into_iter()
        .map(|(bidder_id, entrant)| (entrant.bidder_number, bidder_id))
        .collect();
    entrants.sort();
    let drawn_index = lottery::splitmix64_draw_index(seed, entrants.len());
    let (bidder_number, bidder_id) = entrants.get(drawn_index as usize)?.clone();
    Some(Winner {
        bidder_id,
        bidder_number,
        price,
        lottery: Some(Lottery::SplitMix64 {
            seed,
            entrants: entrants.iter().map(|(number, _)| *number).collect(),
            drawn_index,
        }),
    })
}

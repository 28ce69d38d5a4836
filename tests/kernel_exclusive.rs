//! Mutually exclusive parcels (docs/RULES.md, "Mutually exclusive parcels"), one test per
//! rule, each quoting it. Two sales of the group `district-7`: `a1` (`common_kernel`'s,
//! listing until 100 000 ms) and `a2` (listing until 500 000 ms); `a3` of another group.
//! Alice, Bob and Carol are qualified for all of them.

mod common_kernel;

use common_kernel::{spec, with, Harness, AUCTION};
use gavel_kernel::invariants::{check_auction, void_bids_never_count};
use gavel_kernel::sale::SaleRules;
use gavel_kernel::sale_result::SaleResult;
use gavel_kernel::{Command, EventKind, Outcome, Phase, Rejection};

fn group(name: &str) -> SaleRules {
    SaleRules {
        exclusive_group: Some(name.to_string()),
        ..SaleRules::default()
    }
}

fn sales() -> Harness {
    let mut harness = Harness::default();
    let later = |id: &str| with(spec(id), |s| s.listing_closes_at_ms = 500_000);
    harness.create_with_rules(0, spec(AUCTION), group("district-7"));
    harness.create_with_rules(0, later("a2"), group("district-7"));
    harness.create_with_rules(0, later("a3"), group("district-8"));
    for (seed, bidder) in [(11, "alice"), (12, "bob"), (13, "carol")] {
        harness.register(bidder);
        for auction_id in [AUCTION, "a2", "a3"] {
            harness.qualify(seed, auction_id, bidder);
        }
    }
    harness
}

fn bid(harness: &mut Harness, auction_id: &str, now_ms: u64, bidder_id: &str, amount: u64) {
    let request_id = format!("r-{}", harness.log.len());
    let placed = harness.bid_in(auction_id, now_ms, bidder_id, amount, &request_id);
    assert!(
        matches!(placed, Ok(Outcome::BidAccepted { .. })),
        "{bidder_id} bidding {amount} in {auction_id}: {placed:?}"
    );
}

fn leader(harness: &Harness, auction_id: &str) -> Option<(String, u64)> {
    let auction = harness.auction(auction_id);
    let bid = auction.highest_bid()?;
    Some((bid.bidder_id.clone(), bid.amount))
}

/// Alice and Bob bid in `a2` and `a3`; Alice alone bids in `a1`, which closes sold to
/// her at 100 001.
fn alice_wins_a1() -> Harness {
    let mut harness = sales();
    for auction_id in ["a2", "a3"] {
        bid(&mut harness, auction_id, 20_000, "alice", 1_000);
        bid(&mut harness, auction_id, 21_000, "bob", 1_100);
        bid(&mut harness, auction_id, 22_000, "alice", 1_200);
    }
    bid(&mut harness, AUCTION, 23_000, "alice", 1_000);
    harness.advance(100_001);
    assert_eq!(harness.summary(), "sold at 100000 to alice for 1000");
    harness
}

// "When a bidder wins an auction of a group ... their earlier bids there are voided (kept
// in the history marked `void`, not counted for price, leader or winner; the current
// price and leader are recomputed from the remaining bids)."
#[test]
fn mutually_exclusive_parcels_the_winner_loses_their_bids_in_the_group() {
    let harness = alice_wins_a1();
    let a2 = harness.auction("a2");
    assert_eq!(a2.bids.len(), 3, "the history keeps every bid");
    let void: Vec<bool> = a2.bids.iter().map(|b| a2.is_void(b.seq)).collect();
    assert_eq!(void, [true, false, true]);
    assert_eq!(leader(&harness, "a2"), Some(("bob".to_string(), 1_100)));
    assert_eq!(a2.current_price(), Some(1_100));
    let result = SaleResult::of(a2);
    assert!(
        result.chain_verified,
        "the chain still covers the void bids"
    );
    assert_eq!(
        result.bids.iter().map(|b| b.void).collect::<Vec<_>>(),
        [true, false, true]
    );
    assert_eq!(check_auction(a2), Ok(()));
    // Another group is not touched.
    assert_eq!(leader(&harness, "a3"), Some(("alice".to_string(), 1_200)));
    assert!(harness.auction("a3").sale.voided.is_empty());
}

// "further bids get `excluded_by_group`" (and so does a qualification).
#[test]
fn mutually_exclusive_parcels_further_bids_are_refused() {
    let mut harness = alice_wins_a1();
    let refused = harness.bid_in("a2", 110_000, "alice", 1_300, "after");
    assert_eq!(refused, Err(Rejection::ExcludedByGroup));
    assert_eq!(Rejection::ExcludedByGroup.code(), "excluded_by_group");
    assert_eq!(Rejection::ExcludedByGroup.http_status(), 403);
    let qualify = Command::Qualify {
        auction_id: "a2".to_string(),
        bidder_id: "alice".to_string(),
    };
    assert_eq!(
        harness.run(110_000, qualify),
        Err(Rejection::ExcludedByGroup)
    );
    // Prices increase over the bids that count: Carol's 1200 follows Bob's 1100, though
    // a void bid of 1200 stands before it in the history.
    bid(&mut harness, "a2", 120_000, "carol", 1_200);
    assert_eq!(leader(&harness, "a2"), Some(("carol".to_string(), 1_200)));
    assert_eq!(check_auction(harness.auction("a2")), Ok(()));
}

// "not counted for ... winner": at its listing's close `a2` has one bidder whose bids
// count, Bob, and is sold to him at his bid.
#[test]
fn mutually_exclusive_parcels_a_void_bid_never_wins() {
    let mut harness = alice_wins_a1();
    let advance = Command::Advance {
        auction_id: "a2".to_string(),
    };
    assert_eq!(harness.run(500_001, advance), Ok(Outcome::AuctionUpdated));
    let a2 = harness.auction("a2");
    assert_eq!(a2.phase, Phase::Sold);
    let winner = a2.winner.as_ref().expect("a winner");
    assert_eq!((winner.bidder_id.as_str(), winner.price), ("bob", 1_100));
    assert_eq!(void_bids_never_count(a2), Ok(()));
}

// The exclusion is applied in the step that sold the first auction, whatever closed it:
// here a bid in `a2` finds `a1` still open, and the timer's command closes it.
#[test]
fn mutually_exclusive_parcels_apply_in_the_closing_step() {
    let mut harness = sales();
    bid(&mut harness, "a2", 20_000, "bob", 1_000);
    bid(&mut harness, AUCTION, 21_000, "bob", 1_000);
    bid(&mut harness, "a2", 22_000, "carol", 1_100);
    let applied = harness.run_with(
        100_001,
        7,
        "system",
        Command::Advance {
            auction_id: AUCTION.to_string(),
        },
    );
    assert!(applied
        .events
        .iter()
        .any(|event| event.auction_id == "a2" && event.kind == EventKind::Voided));
    assert!(harness.auction("a2").sale.excluded.contains("bob"));
    assert_eq!(leader(&harness, "a2"), Some(("carol".to_string(), 1_100)));
}

// "the current price and leader are recomputed from the remaining bids", and proxies go
// on from there: once Alice's 1500 is void Carol leads at her proxy's 1100, and her proxy
// answers Bob's next bid (docs/RULES.md, "Proxy bidding").
#[test]
fn mutually_exclusive_parcels_proxies_answer_the_recomputed_price() {
    let mut harness = sales();
    bid(&mut harness, "a2", 20_000, "bob", 1_000);
    let command = Command::SetProxy {
        auction_id: "a2".to_string(),
        token_hash: harness.token("carol"),
        max_amount: 1_300,
        request_id: "carol-max".to_string(),
    };
    assert!(harness.run(21_000, command).is_ok());
    bid(&mut harness, "a2", 22_000, "alice", 1_500);
    assert_eq!(leader(&harness, "a2"), Some(("alice".to_string(), 1_500)));
    bid(&mut harness, AUCTION, 23_000, "alice", 1_000);
    harness.advance(100_001);
    assert_eq!(leader(&harness, "a2"), Some(("carol".to_string(), 1_100)));
    bid(&mut harness, "a2", 110_000, "bob", 1_200);
    assert_eq!(leader(&harness, "a2"), Some(("carol".to_string(), 1_300)));
    assert_eq!(check_auction(harness.auction("a2")), Ok(()));
}

/// `a2` of the group under `rules` with a cap of 1 500: Bob bids 1 000 and Alice reaches
/// the cap at 22 000; Alice alone bids in `a1`, which closes sold to her at 100 001 and
/// excludes her from `a2`, still past its cap.
fn alice_wins_a1_while_a2_is_past_the_cap(rules: SaleRules) -> Harness {
    let mut harness = Harness::default();
    let capped = with(spec("a2"), |s| s.price_cap = Some(1_500));
    harness.create_with_rules(0, spec(AUCTION), group("district-7"));
    harness.create_with_rules(0, capped, rules);
    for (seed, bidder) in [(11, "alice"), (12, "bob")] {
        harness.register(bidder);
        harness.qualify(seed, AUCTION, bidder);
        harness.qualify(seed, "a2", bidder);
    }
    bid(&mut harness, "a2", 20_000, "bob", 1_000);
    bid(&mut harness, "a2", 22_000, "alice", 1_500);
    bid(&mut harness, AUCTION, 23_000, "alice", 1_000);
    harness
}

fn after_cap(
    auction_id: &str,
    harness: &Harness,
    bidder: &str,
    amount: u64,
    secondary: bool,
) -> Command {
    let (auction_id, token_hash) = (auction_id.to_string(), harness.token(bidder));
    let request_id = format!("after-cap-{}", harness.log.len());
    match secondary {
        false => Command::SubmitSealedQuote {
            auction_id,
            token_hash,
            amount,
            request_id,
        },
        true => Command::PlaceSecondaryBid {
            auction_id,
            token_hash,
            secondary_amount: amount,
            request_id,
        },
    }
}

// "their confirmation in `capped` and their proxy there are dropped; further bids,
// proxies, confirmations and qualifications there are refused with `excluded_by_group`":
// a sealed quote is a bid past the cap. The excluded bidder's quote goes, they may quote
// no more, and they never win (before, the void bids still entitled them to quote, and
// their winning quote broke the kernel's invariant that no excluded bidder wins).
#[test]
fn mutually_exclusive_parcels_the_winner_quotes_no_more_in_a_sealed_window() {
    let rules = SaleRules {
        cap_mode: gavel_kernel::sale::CapMode::SealedBid,
        sealed_window_ms: Some(200_000),
        sealed_ceiling: Some(3_000),
        ..group("district-7")
    };
    let mut harness = alice_wins_a1_while_a2_is_past_the_cap(rules);
    let quote = after_cap("a2", &harness, "alice", 3_000, false);
    assert!(harness.run(50_000, quote).is_ok(), "quoted before her win");
    let quote = after_cap("a2", &harness, "bob", 1_600, false);
    assert!(harness.run(60_000, quote).is_ok());
    harness.advance(100_001);
    let a2 = harness.auction("a2");
    assert_eq!(a2.phase, Phase::Capped);
    assert!(a2.sale.excluded.contains("alice"));
    assert!(
        !a2.sale.sealed_quotes.contains_key("alice"),
        "her quote went"
    );
    let quote = after_cap("a2", &harness, "alice", 2_900, false);
    assert_eq!(harness.run(110_000, quote), Err(Rejection::ExcludedByGroup));
    let close = Command::Advance {
        auction_id: "a2".to_string(),
    };
    assert_eq!(harness.run(222_001, close), Ok(Outcome::AuctionUpdated));
    let a2 = harness.auction("a2");
    let winner = a2.winner.as_ref().expect("sold");
    assert_eq!((winner.bidder_id.as_str(), winner.price), ("bob", 1_600));
    assert_eq!(check_auction(a2), Ok(()));
}

// The same under `cap_mode = secondary`: the excluded bidder's secondary bids no longer
// count (the current value is recomputed from the others'), and they may bid no more.
#[test]
fn mutually_exclusive_parcels_the_winner_loses_their_secondary_bids() {
    let rules = SaleRules {
        cap_mode: gavel_kernel::sale::CapMode::Secondary,
        secondary: Some(gavel_kernel::sale::SecondarySpec {
            label: "self-held area".to_string(),
            unit: "m2".to_string(),
            start: 10,
            increment: 5,
            max: 100,
        }),
        ..group("district-7")
    };
    let mut harness = alice_wins_a1_while_a2_is_past_the_cap(rules);
    let secondary = after_cap("a2", &harness, "alice", 20, true);
    assert!(harness.run(50_000, secondary).is_ok(), "bid before her win");
    harness.advance(100_001);
    assert_eq!(harness.auction("a2").phase, Phase::SecondaryBidding);
    let secondary = after_cap("a2", &harness, "alice", 25, true);
    assert_eq!(
        harness.run(110_000, secondary),
        Err(Rejection::ExcludedByGroup)
    );
    // Bob starts from `start` again: Alice's 20 no longer stands.
    let secondary = after_cap("a2", &harness, "bob", 10, true);
    assert!(harness.run(120_000, secondary).is_ok());
    let close = Command::Advance {
        auction_id: "a2".to_string(),
    };
    assert_eq!(harness.run(360_001, close), Ok(Outcome::AuctionUpdated));
    let a2 = harness.auction("a2");
    let winner = a2.winner.as_ref().expect("sold");
    assert_eq!((winner.bidder_id.as_str(), winner.price), ("bob", 1_500));
    assert_eq!(check_auction(a2), Ok(()));
}

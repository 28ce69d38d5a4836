//! One test per auction rule (the modules under `src/kernel/` state them); each names
//! the section it checks. The
//! default auction (`common_kernel::spec`): start 1000, increment 100 (`multiple`),
//! listing from 10 000 ms to 100 000 ms, countdown and failover grace 240 000 ms,
//! confirm window 60 000 ms. Alice, Bob and Carol are qualified bidders.
//! `Harness::summary` reads "phase until deadline" or "phase at close to winner for price".

mod common_kernel;

use std::collections::BTreeSet;

use common_kernel::model::{rules_commitment, rules_draw};
use common_kernel::{below, capped_sale, not_open, off_grid, sale, spec, timed_sale};
use common_kernel::{replay, Harness, AUCTION, DEFAULT_SEED};
use common_kernel::{token_hash, with, with_cap, with_reserve};
use gavel::model::views::{AuctionView, ControlAuctionView, ResultView};
use gavel_kernel::chain::verify_chain;
use gavel_kernel::invariants::{check_auction, no_bid_while_suspended, Violation};
use gavel_kernel::ledger::{ExchangeLedger, OutboxStatus, Replica};
use gavel_kernel::lottery::{CommitReveal, Lottery};
use gavel_kernel::sale_result::SaleResult;
use gavel_kernel::{Auction, Effect, Envelope, Outcome, Rejection};
use gavel_kernel::{AuctionSpec, Command, EventKind, IncrementRule};

// Prices: "First valid bid ≥ start_price".
#[test]
fn bid_below_start_price_is_refused() {
    let mut harness = sale(spec(AUCTION));
    assert_eq!(harness.refuse(20_000, "alice", 999), below(1000));
    assert!(harness.a1().bids.is_empty());
    assert_eq!(harness.a1().rejections["below_minimum"], 1);
}

// Prices: `multiple`: the first bid is start_price plus whole increments; every later bid
// the current price plus a whole, positive number of increments.
#[test]
fn first_bid_must_be_start_price_plus_whole_increments() {
    let mut harness = sale(spec(AUCTION));
    assert_eq!(harness.refuse(20_000, "alice", 1050), off_grid(1000, 100));
    harness.accept(20_000, "alice", 1200);
    assert_eq!(harness.refuse(21_000, "bob", 1350), off_grid(1300, 100));
    assert_eq!(harness.refuse(21_000, "bob", 1200), below(1300));
    harness.accept(22_000, "bob", 1400);
    assert_eq!(harness.a1().current_price(), Some(1400));
}

// Prices: `at_least`: any amount at or above the minimum.
#[test]
fn at_least_rule_accepts_any_amount_above_minimum() {
    let rule = IncrementRule::AtLeast;
    let mut harness = sale(with(spec(AUCTION), |s| s.increment_rule = rule));
    harness.accept(20_000, "alice", 1001);
    assert_eq!(harness.refuse(21_000, "bob", 1100), below(1101));
    harness.accept(21_000, "bob", 1101);
    harness.accept(22_000, "alice", 1234);
    assert_eq!(harness.a1().current_price(), Some(1234));
}

// Time: "A bid counts if it is accepted at or before the current deadline"; the kernel
// checks the time itself, so a late bid finds the auction closed.
#[test]
fn bid_after_deadline_is_refused_and_closes_the_auction() {
    let mut harness = sale(spec(AUCTION));
    harness.accept(100_000, "alice", 1000);
    let late = Command::PlaceBid {
        auction_id: AUCTION.into(),
        token_hash: harness.token("bob"),
        amount: 1100,
        request_id: "late".into(),
    };
    let applied = harness.run_with(100_001, DEFAULT_SEED, "bob", late);
    assert_eq!(applied.result, Err(not_open("sold")));
    let kinds: Vec<EventKind> = applied.events.into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::Closed]);
    assert_eq!(harness.summary(), "sold at 100000 to alice for 1000");
    assert_eq!(harness.a1().bids.len(), 1);
}

// Bidders: "The bidder who holds the highest bid cannot bid again until outbid".
#[test]
fn leading_bidder_cannot_bid_again() {
    let mut harness = sale(spec(AUCTION));
    harness.accept(20_000, "alice", 1000);
    let refused = harness.refuse(21_000, "alice", 1100);
    assert_eq!(refused, Rejection::AlreadyLeading);
    harness.accept(22_000, "bob", 1100);
    harness.accept(23_000, "alice", 1200);
}

// Bidders: a bidder "must be qualified ... for each auction before bidding".
#[test]
fn unqualified_bidder_cannot_bid() {
    let mut harness = sale(spec(AUCTION));
    harness.register("dave");
    let refused = harness.refuse(20_000, "dave", 1000);
    assert_eq!(refused, Rejection::NotQualified);
}

// Time: "At listing close: no bids → unsold".
#[test]
fn listing_close_without_bids_is_unsold() {
    let mut harness = sale(spec(AUCTION));
    harness.advance(100_000);
    assert_eq!(harness.summary(), "listing until 100000");
    harness.advance(100_001);
    assert_eq!(harness.summary(), "unsold at 100000");
}

// Time: "bids from only one bidder → that bidder wins if the price meets the reserve".
#[test]
fn listing_close_with_one_bidder_sells_when_reserve_met() {
    let mut harness = sale(with_reserve(1100));
    harness.accept(20_000, "alice", 1100);
    harness.advance(150_000);
    assert_eq!(harness.summary(), "sold at 100000 to alice for 1100");
    let winner = harness.a1().winner.clone().unwrap();
    let alice = harness.a1().bidder_number_of("alice");
    assert_eq!(Some(winner.bidder_number), alice);
}

// Time: one bidder whose price is below the reserve → `unsold`.
#[test]
fn listing_close_with_one_bidder_is_unsold_below_reserve() {
    let mut harness = sale(with_reserve(1100));
    harness.accept(20_000, "alice", 1000);
    harness.advance(150_000);
    assert_eq!(harness.summary(), "unsold at 100000");
}

// Time: two or more bidders → `timed_bidding` from the current high bid, with
// deadline = listing_closes_at + countdown_ms.
#[test]
fn two_bidders_at_listing_close_start_timed_bidding() {
    let harness = timed_sale(spec(AUCTION));
    assert_eq!(harness.summary(), "timed_bidding until 340000");
    assert_eq!(harness.a1().current_price(), Some(1100));
}

// Time: in timed bidding each accepted bid sets deadline = accepted_at + countdown_ms.
#[test]
fn timed_bid_resets_countdown() {
    let mut harness = timed_sale(spec(AUCTION));
    harness.accept(300_000, "alice", 1200);
    assert_eq!(harness.summary(), "timed_bidding until 540000");
    harness.accept(540_000, "bob", 1300);
    assert_eq!(harness.summary(), "timed_bidding until 780000");
}

// Time: "every qualified bidder may bid"; when the deadline passes the high bid wins.
#[test]
fn timed_bidding_ends_sold_to_highest() {
    let mut harness = timed_sale(spec(AUCTION));
    harness.accept(200_000, "carol", 1200);
    harness.advance(440_000);
    assert_eq!(harness.summary(), "timed_bidding until 440000");
    harness.advance(440_001);
    assert_eq!(harness.summary(), "sold at 440000 to carol for 1200");
}

// Time: at the end of timed bidding a high bid below the reserve is `unsold`.
#[test]
fn timed_bidding_below_reserve_ends_unsold() {
    let mut harness = timed_sale(with_reserve(5000));
    harness.advance(340_001);
    assert_eq!(harness.summary(), "unsold at 340000");
}

// Time: "before that the auction is `scheduled` and refuses bids".
#[test]
fn scheduled_auction_refuses_bids() {
    let mut harness = sale(spec(AUCTION));
    assert_eq!(harness.summary(), "scheduled until 10000");
    assert_eq!(harness.refuse(9_999, "alice", 1000), not_open("scheduled"));
    harness.accept(10_000, "alice", 1000);
    assert_eq!(harness.summary(), "listing until 100000");
}

// Prices: an increment change "is an event and applies to bids from then on".
#[test]
fn operator_increment_change_applies_to_later_bids() {
    let mut harness = sale(spec(AUCTION));
    harness.accept(20_000, "alice", 1000);
    let applied = harness.change_increment(21_000, 500);
    assert_eq!(applied.result, Ok(Outcome::AuctionUpdated));
    let kinds: Vec<EventKind> = applied.events.into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::Increment]);
    assert_eq!(harness.refuse(22_000, "bob", 1100), below(1500));
    assert_eq!(harness.refuse(22_000, "bob", 1700), off_grid(1500, 500));
    harness.accept(23_000, "bob", 1500);
    let audit = harness.a1().audit.last().unwrap().clone();
    let expected = ("operator-li", "increment_changed", 21_000);
    let actual = (audit.actor.as_str(), audit.action.as_str(), audit.at_ms);
    assert_eq!(actual, expected);
}

// Price cap: "When the high bid reaches price_cap (or lies less than one increment below
// it), price bidding stops and the auction enters `capped`".
#[test]
fn reaching_price_cap_enters_capped() {
    let mut harness = sale(with_cap(1500));
    harness.accept(20_000, "alice", 1400);
    // Exactly one increment below the cap: bidding goes on.
    assert_eq!(harness.summary(), "listing until 100000");
    harness.accept(21_000, "bob", 1500);
    assert_eq!(harness.summary(), "capped until 81000");
    assert_eq!(harness.refuse(22_000, "alice", 1500), not_open("capped"));

    let at_least = IncrementRule::AtLeast;
    let mut near = sale(with(with_cap(1500), |s| s.increment_rule = at_least));
    near.accept(20_000, "alice", 1401);
    // Less than one increment below the cap.
    assert_eq!(near.summary(), "capped until 80000");
}

// Price cap: bids above the cap are refused.
#[test]
fn bid_above_cap_is_refused() {
    let mut harness = sale(with_cap(1500));
    let refused = harness.refuse(20_000, "alice", 1600);
    assert_eq!(refused, Rejection::AboveCap { cap: 1500 });
    assert_eq!(harness.summary(), "listing until 100000");
}

// Price cap: "no one [confirmed] → the cap bidder wins".
#[test]
fn cap_without_confirmations_goes_to_cap_bidder() {
    let mut harness = capped_sale();
    harness.advance(90_000);
    assert_eq!(harness.summary(), "capped until 90000");
    harness.advance(90_001);
    assert_eq!(harness.summary(), "sold at 90000 to carol for 1500");
    assert_eq!(harness.a1().winner.as_ref().unwrap().lottery, None);
}

/// `capped_sale`, but Carol's bid that reaches the cap carries `seed`: the seed of the
/// entry that enters `capped`.
fn capped_with_seed(seed: u64) -> Harness {
    let mut harness = sale(with_cap(1500));
    harness.accept(20_000, "alice", 1000);
    harness.accept(25_000, "bob", 1100);
    let reach_cap = Command::PlaceBid {
        auction_id: AUCTION.to_string(),
        token_hash: harness.token("carol"),
        amount: 1500,
        request_id: "carol-cap".to_string(),
    };
    let applied = harness.run_with(30_000, seed, "carol", reach_cap);
    assert!(applied.result.is_ok(), "{applied:?}");
    assert_eq!(harness.summary(), "capped until 90000");
    harness
}

/// The auction's commit-reveal draw, once drawn.
fn commit_reveal(harness: &Harness) -> (gavel_kernel::state::Winner, CommitReveal) {
    let winner = harness.a1().winner.clone().expect("sold");
    match winner.lottery.clone() {
        Some(Lottery::CommitReveal(draw)) => (winner, draw),
        other => panic!("not a commit-reveal draw: {other:?}"),
    }
}

/// What a view of the auction shows, as JSON text: bidders', operators', the replica read
/// and the audit trail.
fn everything_shown(harness: &Harness) -> String {
    let auction = harness.a1();
    let shown = [
        serde_json::to_string(&AuctionView::new(auction, 0)),
        serde_json::to_string(&ControlAuctionView::new(auction, 0)),
        serde_json::to_string(&auction.without_open_secrets()),
        serde_json::to_string(&auction.audit),
    ];
    shown.into_iter().map(|text| text.expect("json")).collect()
}

// Price cap, `cap_mode` lottery (1.1): "entering `capped` publishes SHA-256(seed)"; the
// seed itself is shown nowhere until the draw, which publishes it.
#[test]
fn entering_capped_publishes_the_commitment_and_hides_the_seed() {
    let mut harness = capped_sale();
    let commitment = harness
        .a1()
        .lottery_commitment
        .expect("a commitment at cap entry");
    let public = serde_json::to_value(AuctionView::new(harness.a1(), 0)).expect("json");
    assert_eq!(public["lottery_commitment"], hex::encode(commitment));
    assert_eq!(public["lottery"], serde_json::Value::Null);
    let capped = harness
        .a1()
        .audit
        .iter()
        .find(|r| r.action == "capped")
        .cloned();
    assert!(capped.unwrap().detail.contains(&hex::encode(commitment)));
    harness.confirm_with_nonce(40_000, "alice", "a1b2").unwrap();
    let shown_before_the_draw = everything_shown(&harness);

    harness.advance(90_001);
    let (_, draw) = commit_reveal(&harness);
    assert_eq!(rules_commitment(&draw.seed), commitment);
    assert_eq!(draw.commitment, commitment);
    let seed_hex = hex::encode(draw.seed);
    assert!(!shown_before_the_draw.contains(&seed_hex));
    let seed_bytes = serde_json::to_string(&draw.seed).expect("json");
    assert!(!shown_before_the_draw.contains(&seed_bytes[1..seed_bytes.len() - 1]));
    let after = serde_json::to_value(AuctionView::new(harness.a1(), 0)).expect("json");
    assert_eq!(after["lottery"]["seed"], seed_hex);
    assert_eq!(after["lottery"]["commitment"], hex::encode(commitment));
}

// Price cap: the winner is drawn among those who confirmed, from the seed committed at cap
// entry and the confirmations in log order (1.1); the entry that closes the window
// changes nothing, and any seed lets each confirmer win.
#[test]
fn cap_lottery_draws_from_the_committed_seed_among_confirmers() {
    let mut winners = BTreeSet::new();
    for capping_seed in 0..32 {
        let mut harness = capped_with_seed(capping_seed);
        for (at, bidder) in [(40_000, "alice"), (41_000, "bob"), (42_000, "bob")] {
            assert_eq!(harness.confirm(at, bidder), Ok(Outcome::Confirmed));
        }
        let number = |bidder| harness.a1().bidder_number_of(bidder).unwrap();
        let entrants = vec![
            (number("alice"), String::new()),
            (number("bob"), String::new()),
        ];
        let mut other_close = Harness {
            state: harness.state.clone(),
            ..Harness::default()
        };
        harness.advance_with_seed(95_000, 1);
        other_close.advance_with_seed(95_000, 2);
        assert_eq!(harness.a1().winner, other_close.a1().winner);
        let (winner, draw) = commit_reveal(&harness);
        let published: Vec<(u32, String)> = (draw.entrants.iter())
            .map(|e| (e.bidder_number, e.nonce.clone()))
            .collect();
        assert_eq!(published, entrants);
        let index = rules_draw(AUCTION, &draw.seed, &entrants);
        assert_eq!(draw.drawn_index, index as u64);
        assert_eq!(
            (entrants[index].0, winner.price),
            (winner.bidder_number, 1500)
        );
        winners.insert(winner.bidder_id);
    }
    let confirmers = BTreeSet::from(["alice".to_string(), "bob".to_string()]);
    // Only confirmers win, and each of them can.
    assert_eq!(winners, confirmers);
}

// `cap_mode` lottery (1.1): "confirmations may carry a bidder nonce; the draw uses the
// seed mixed with the confirmations in log order": the same nonces in the same order
// always draw the same winner, and a bidder's nonce can change it.
#[test]
fn nonces_and_their_order_change_the_draw_deterministically() {
    let capped = capped_sale();
    let draw = |confirmations: &[(&str, &str)]| {
        let mut harness = Harness {
            state: capped.state.clone(),
            tokens: capped.tokens.clone(),
            ..Harness::default()
        };
        for (offset, (bidder, nonce)) in confirmations.iter().enumerate() {
            let at = 40_000 + offset as u64;
            harness.confirm_with_nonce(at, bidder, nonce).unwrap();
        }
        harness.advance(90_001);
        let (winner, draw) = commit_reveal(&harness);
        let entrants: Vec<(u32, String)> = (draw.entrants.iter())
            .map(|e| (e.bidder_number, e.nonce.clone()))
            .collect();
        assert_eq!(
            draw.drawn_index as usize,
            rules_draw(AUCTION, &draw.seed, &entrants)
        );
        (winner.bidder_id, entrants)
    };
    let mut winners = BTreeSet::new();
    for nonce in 0..32 {
        let nonce = format!("n{nonce}");
        let confirmations = [("alice", "fixed"), ("bob", nonce.as_str())];
        let (winner, entrants) = draw(&confirmations);
        assert_eq!(draw(&confirmations).0, winner, "same nonces, same winner");
        assert_eq!(
            entrants[1].1, nonce,
            "entrants in log order with their nonces"
        );
        winners.insert(winner);
    }
    assert_eq!(winners.len(), 2, "Bob's nonce alone decides between both");
    // The order of the confirmations is part of the draw.
    let (_, forward) = draw(&[("alice", "x"), ("bob", "y")]);
    let (_, backward) = draw(&[("bob", "y"), ("alice", "x")]);
    assert_eq!(forward, backward.into_iter().rev().collect::<Vec<_>>());
}

// `cap_mode` lottery (1.1): a bidder's first confirmation stands; a nonce is at most 64
// characters of A-Z, a-z, 0-9, '_', '-'; a refused confirmation changes nothing.
#[test]
fn a_confirmation_keeps_its_first_nonce_and_a_bad_nonce_is_refused() {
    let mut harness = capped_sale();
    assert_eq!(
        harness.confirm_with_nonce(40_000, "alice", "x"),
        Ok(Outcome::Confirmed)
    );
    assert_eq!(
        harness.confirm_with_nonce(40_001, "alice", "x"),
        Ok(Outcome::Confirmed)
    );
    let conflict = harness
        .confirm_with_nonce(40_002, "alice", "y")
        .unwrap_err();
    assert_eq!(conflict.code(), "conflict");
    assert_eq!(
        harness.confirm(40_003, "alice").unwrap_err().code(),
        "conflict"
    );
    for bad in ["a b".to_string(), "x".repeat(65), "x:y".to_string()] {
        let refused = harness.confirm_with_nonce(40_004, "bob", &bad).unwrap_err();
        assert_eq!(refused.code(), "invalid_request", "{bad:?}");
    }
    let confirmed: Vec<(String, String)> = (harness.a1().confirmations.iter())
        .map(|c| (c.bidder_id.clone(), c.nonce.clone()))
        .collect();
    assert_eq!(confirmed, vec![("alice".to_string(), "x".to_string())]);
}

// Price cap as first written: an auction already `capped` when its nodes learned to commit
// to seeds has no committed seed; it is drawn as before, `splitmix64(seed) % entrants`
// over ascending numbers with the seed of the entry closing the window, and re-draws.
#[test]
fn an_auction_capped_without_a_committed_seed_draws_as_before() {
    let mut harness = capped_sale();
    harness.confirm(40_000, "bob").unwrap();
    harness.confirm(41_000, "alice").unwrap();
    let auction = harness.state.auctions.get_mut(AUCTION).unwrap();
    auction.lottery_secret = Default::default();
    auction.lottery_commitment = None;
    harness.advance_with_seed(95_000, 0x5eed);
    let winner = harness.a1().winner.clone().expect("sold");
    let mut numbers: Vec<u32> = ["alice", "bob"]
        .map(|b| harness.a1().bidder_number_of(b).unwrap())
        .into();
    numbers.sort();
    let splitmix64 = |seed: u64| {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let drawn_index = splitmix64(0x5eed) % 2;
    let expected = Lottery::SplitMix64 {
        seed: 0x5eed,
        entrants: numbers.clone(),
        drawn_index,
    };
    assert_eq!(winner.lottery, Some(expected));
    assert_eq!(winner.bidder_number, numbers[drawn_index as usize]);
    check_auction(harness.a1()).expect("a splitmix64 draw re-draws");
}

// Price cap: "Bidders holding a valid bid may confirm participation within cap_confirm_ms".
#[test]
fn confirm_requires_a_valid_bid() {
    let mut harness = sale(with_cap(1500));
    harness.register("dave");
    harness.accept(20_000, "alice", 1000);
    assert_eq!(harness.confirm(21_000, "alice"), Err(not_open("listing")));
    harness.accept(22_000, "bob", 1500);
    let (carol, dave) = (
        harness.confirm(23_000, "carol"),
        harness.confirm(23_000, "dave"),
    );
    assert_eq!(carol, Err(Rejection::NotEligible));
    assert_eq!(dave, Err(Rejection::NotQualified));
    harness.tokens.insert("mallory".into(), token_hash(99));
    let mallory = harness.confirm(23_000, "mallory");
    assert_eq!(mallory, Err(Rejection::Unauthenticated));
    assert_eq!(harness.confirm(82_001, "alice"), Err(not_open("sold")));
    assert!(harness.a1().confirmations.is_empty());
}

// Suspension: "Suspend freezes the auction: no bids; the remaining time is kept. On
// resume, a listing gets its remaining time back".
#[test]
fn suspend_freezes_and_listing_resume_restores_remaining_time() {
    let mut harness = sale(spec(AUCTION));
    harness.operator(40_000, "suspend").unwrap();
    assert_eq!(harness.summary(), "suspended");
    let suspension = harness.a1().suspension.clone().unwrap();
    assert_eq!(suspension.remaining_ms, 60_000);
    harness.advance(900_000);
    assert_eq!(harness.summary(), "suspended"); // a frozen auction does not close
    harness.operator(1_000_000, "resume").unwrap();
    assert_eq!(harness.summary(), "listing until 1060000");
    assert_eq!(harness.a1().audit.last().unwrap().actor, "operator-li");
}

// Suspension: "timed bidding restarts with a full countdown".
#[test]
fn timed_bidding_resume_restarts_full_countdown() {
    let mut harness = timed_sale(spec(AUCTION));
    harness.operator(330_000, "suspend").unwrap();
    harness.operator(1_000_000, "resume").unwrap();
    assert_eq!(harness.summary(), "timed_bidding until 1240000");
}

// Suspension: a suspended auction takes no bids; only a suspended auction resumes.
#[test]
fn suspended_auction_refuses_bids() {
    let mut harness = sale(spec(AUCTION));
    harness.operator(20_000, "suspend").unwrap();
    assert_eq!(harness.refuse(21_000, "alice", 1000), not_open("suspended"));
    let again = harness.operator(22_000, "suspend");
    assert_eq!(again, Err(not_open("suspended")));
    harness.operator(23_000, "resume").unwrap();
    let resumed_twice = harness.operator(24_000, "resume");
    assert!(matches!(resumed_twice, Err(Rejection::Conflict(_))));
    harness.accept(25_000, "alice", 1000);
}

// Suspension: the named invariant the cluster checker applies to every replica's copy
// finds a bid timed inside a suspension.
#[test]
fn invariant_finds_a_bid_inside_a_suspension() {
    let mut harness = sale(spec(AUCTION));
    harness.accept(19_000, "alice", 1000);
    harness.operator(20_000, "suspend").unwrap();
    harness.operator(23_000, "resume").unwrap();
    harness.accept(25_000, "bob", 1100);
    assert_eq!(no_bid_while_suspended(harness.a1()), Ok(()));
    assert_eq!(check_auction(harness.a1()), Ok(()));
    let mut altered = harness.a1().clone();
    altered.bids[1].accepted_at_ms = 21_000;
    let violation = no_bid_while_suspended(&altered);
    assert_eq!(
        violation,
        Err(Violation::BidWhileSuspended(AUCTION.to_string()))
    );
    harness.operator(30_000, "suspend").unwrap();
    let mut still_frozen = harness.a1().clone();
    still_frozen.bids[1].accepted_at_ms = 40_000;
    assert!(no_bid_while_suspended(&still_frozen).is_err());
}

// Phases: an operator may terminate an auction: "closed with no winner".
#[test]
fn terminate_closes_without_winner() {
    let mut harness = sale(spec(AUCTION));
    harness.accept(20_000, "alice", 1000);
    harness.operator(30_000, "terminate").unwrap();
    assert_eq!(harness.summary(), "terminated at 30000");
    assert_eq!(harness.a1().bids.len(), 1);
    assert_eq!(harness.refuse(31_000, "bob", 1100), not_open("terminated"));
    let again = harness.operator(32_000, "terminate");
    assert_eq!(again, Err(not_open("terminated")));
}

// Suspension and takeover: a deadline less than failover_grace_ms after the takeover, or
// one that passed during the leaderless gap, becomes takeover + failover_grace_ms.
#[test]
fn takeover_extends_deadlines_inside_grace() {
    let mut harness = timed_sale(spec(AUCTION));
    let (extended, events) = harness.takeover(200_000);
    assert_eq!(extended, vec![AUCTION.to_string()]);
    let extension = EventKind::Extended {
        deadline_ms: 440_000,
    };
    assert_eq!(events, vec![extension]);
    assert_eq!(harness.summary(), "timed_bidding until 440000");
    // The deadline 440 000 passes while there is no leader (last command at 200 000).
    let (extended, _) = harness.takeover(500_000);
    assert_eq!(extended, vec![AUCTION.to_string()]);
    assert_eq!(harness.summary(), "timed_bidding until 740000");
    let audit = harness.a1().audit.last().unwrap().clone();
    assert_eq!(audit.action, "takeover_extension");
    assert_eq!(harness.state.takeovers.len(), 2);
}

// Suspension and takeover: the new leader's *first* command records the takeover, even
// when that command is a bid. The deadline (340 000) passed in the leaderless gap; the
// bid at 400 000 finds it extended to 640 000 and is accepted, and restarts the countdown.
#[test]
fn a_bid_that_is_a_new_leaders_first_command_finds_the_grace_applied() {
    let mut harness = timed_sale(spec(AUCTION));
    harness.new_leader();
    harness.accept(400_000, "alice", 1200);
    let (extended, events) = harness.takeover_outcome();
    assert_eq!(extended, vec![AUCTION.to_string()]);
    let extension = EventKind::Extended {
        deadline_ms: 640_000,
    };
    assert_eq!(events, vec![extension]);
    assert_eq!(harness.summary(), "timed_bidding until 640000");
    assert_eq!(
        harness.state.takeovers.last().map(|t| t.at_ms),
        Some(400_000)
    );
    // Later commands of the same term are not takeovers.
    harness.accept(401_000, "bob", 1300);
    assert!(harness.last_takeover.is_none());
    assert_eq!(harness.state.takeovers.len(), 1);
}

// Suspension and takeover: deadlines at least failover_grace_ms away are left alone.
#[test]
fn takeover_leaves_far_deadlines_alone() {
    let mut harness = sale(with(spec(AUCTION), |s| s.listing_closes_at_ms = 1_000_000));
    harness.advance(20_000);
    let (extended, events) = harness.takeover(30_000);
    assert!(extended.is_empty() && events.is_empty());
    assert_eq!(harness.summary(), "listing until 1000000");
}

// Suspension and takeover: only deadlines that passed *during the leaderless gap* are
// extended. A deadline that passed before the old leader's last command had already
// closed its auction (the kernel applies closes lazily): a takeover must not reopen it.
#[test]
fn takeover_does_not_reopen_an_auction_whose_deadline_passed_before_the_gap() {
    let mut harness = sale(spec(AUCTION));
    harness.accept(20_000, "alice", 1000);
    harness.create(0, spec("other"));
    let last = Command::Advance {
        auction_id: "other".into(),
    };
    assert_eq!(harness.run(150_000, last), Ok(Outcome::AuctionUpdated));
    let (extended, _) = harness.takeover(160_000);
    assert!(extended.is_empty(), "extended {extended:?}");
    assert_eq!(harness.summary(), "sold at 100000 to alice for 1000");
}

// Suspension and takeover: a listing that opened during the leaderless gap is open at
// the takeover, so its close, less than failover_grace_ms away, is extended.
#[test]
fn takeover_extends_a_listing_that_opened_during_the_gap() {
    let mut harness = sale(with(spec(AUCTION), |s| s.listing_closes_at_ms = 200_000));
    let (extended, _) = harness.takeover(150_000);
    assert_eq!(extended, vec![AUCTION.to_string()]);
    assert_eq!(harness.summary(), "listing until 390000");
}

// Idempotency (API contract): a retried bid, same request_id and body, gets the original
// receipt and is not placed twice.
#[test]
fn request_id_replay_returns_original_receipt() {
    let mut harness = sale(spec(AUCTION));
    let first = harness.bid_in(AUCTION, 20_000, "alice", 1000, "r1");
    harness.accept(21_000, "bob", 1100);
    let again = harness.bid_in(AUCTION, 30_000, "alice", 1000, "r1");
    let Ok(Outcome::BidAccepted { receipt, .. }) = first.clone() else {
        panic!("{first:?}")
    };
    let replayed = Outcome::BidAccepted {
        receipt: receipt.clone(),
        replayed: true,
    };
    assert_eq!(again, Ok(replayed));
    assert_eq!((receipt.seq, receipt.accepted_at_ms), (1, 20_000));
    assert_eq!(receipt.bid_id, harness.a1().bids[0].bid_id);
    assert_eq!(harness.a1().bids.len(), 2);
}

// Idempotency: a request_id used again with another body is refused.
#[test]
fn request_id_reused_with_other_amount_is_refused() {
    let mut harness = sale(spec(AUCTION));
    harness.create(0, spec("a2"));
    harness.qualify(1, "a2", "alice");
    harness
        .bid_in(AUCTION, 20_000, "alice", 1000, "r1")
        .unwrap();
    harness.accept(21_000, "bob", 1100);
    let reused = Err(Rejection::RequestIdReused);
    assert_eq!(harness.bid_in(AUCTION, 22_000, "alice", 1200, "r1"), reused);
    assert_eq!(harness.bid_in("a2", 22_000, "alice", 1000, "r1"), reused);
    // request_ids belong to one bidder: Bob's "r1" is his own.
    let bob = harness.bid_in(AUCTION, 23_000, "bob", 1300, "r1");
    assert_eq!(bob, Err(Rejection::AlreadyLeading));
    assert_eq!(harness.a1().bids.len(), 2);
}

// Bidders: a bid needs a live session.
#[test]
fn expired_session_is_unauthenticated() {
    let mut harness = sale(spec(AUCTION));
    harness.register_until("dave", 30_000);
    harness.qualify(4, AUCTION, "dave");
    harness.accept(29_999, "dave", 1000);
    let expired = harness.refuse(30_000, "dave", 1200);
    assert_eq!(expired, Rejection::Unauthenticated);
    let token_hash = harness.token("alice");
    harness
        .run(31_000, Command::CloseSession { token_hash })
        .unwrap();
    let closed = harness.refuse(31_000, "alice", 1100);
    assert_eq!(closed, Rejection::Unauthenticated);
}

// Bidders: the bidder number is "unique in that auction and not derived from the identity".
#[test]
fn bidder_numbers_are_unique_and_not_the_identity() {
    let mut harness = Harness::default();
    harness.create(0, spec(AUCTION));
    harness.create(0, spec("a2"));
    let mut numbers = BTreeSet::new();
    for index in 0..40 {
        let bidder = format!("bidder-{index}");
        harness.register(&bidder);
        let number = harness.qualify(DEFAULT_SEED, AUCTION, &bidder);
        assert!((1000..10_000).contains(&number), "number {number}");
        assert!(numbers.insert(number), "number {number} given twice");
    }
    let in_a1 = harness.a1().bidder_number_of("bidder-0").unwrap();
    assert_eq!(harness.qualify(99, AUCTION, "bidder-0"), in_a1); // qualified once
    let in_a2 = harness.qualify(987_654, "a2", "bidder-0");
    assert_ne!(in_a1, in_a2); // the same identity, an unrelated number elsewhere
    harness.accept(20_000, "bidder-3", 1000);
    let number = harness.a1().bidder_number_of("bidder-3");
    assert_eq!(Some(harness.a1().bids[0].bidder_number), number);
}

// Prices: "an amount that would overflow is an invalid request, not a wrap".
#[test]
fn overflowing_amount_is_invalid_not_wrapped() {
    let mut harness = sale(with(spec(AUCTION), |s| s.start_price = u64::MAX - 150));
    harness.accept(20_000, "alice", u64::MAX - 150);
    harness.accept(21_000, "bob", u64::MAX - 50);
    let refused = harness.refuse(22_000, "alice", u64::MAX);
    let invalid = matches!(refused, Rejection::InvalidRequest(_));
    assert!(invalid, "{refused:?}");
    assert_eq!(harness.a1().current_price(), Some(u64::MAX - 50));
}

// Audit: "Accepted bids are append-only and hash-chained per auction".
#[test]
fn hash_chain_detects_altered_record() {
    let mut harness = sale(spec(AUCTION));
    harness.accept(20_000, "alice", 1000);
    harness.accept(21_000, "bob", 1100);
    harness.accept(22_000, "alice", 1200);
    let auction = harness.a1().clone();
    let broken_at =
        |bids: &imbl::Vector<_>| verify_chain(AUCTION, bids).err().map(|broken| broken.seq);
    assert_eq!(broken_at(&auction.bids), None);
    let mut altered = auction.clone();
    altered.bids[1].amount = 1150;
    assert_eq!(broken_at(&altered.bids), Some(2));
    let violation = check_auction(&altered);
    assert!(matches!(violation, Err(Violation::ChainBroken(..))));
    let mut removed = auction.bids.clone();
    removed.remove(1);
    assert_eq!(broken_at(&removed), Some(3));
    let mut renumbered = auction.bids.clone();
    renumbered[2].bidder_number += 1;
    assert_eq!(broken_at(&renumbered), Some(3));
    let other_auction = verify_chain("a2", &auction.bids);
    assert!(other_auction.is_err(), "the chain is bound to its auction");
}

// Housekeeping: expired sessions and idempotency records past retention are dropped.
#[test]
fn purge_drops_expired_sessions_and_old_requests() {
    let mut harness = sale(spec(AUCTION));
    harness.register_until("dave", 50_000);
    harness
        .bid_in(AUCTION, 20_000, "alice", 1000, "old")
        .unwrap();
    harness.bid_in(AUCTION, 60_000, "bob", 1100, "new").unwrap();
    let purge = Command::Purge {
        request_retention_ms: 30_000,
    };
    let purged = Outcome::Purged {
        sessions: 1,
        requests: 1,
    };
    assert_eq!(harness.run(70_000, purge), Ok(purged));
    let state = &harness.state;
    assert!(!state.sessions.contains_key(&harness.token("dave")));
    assert!(!state.requests.contains_key("alice"));
    assert!(state.requests["bob"].contains_key("new"));
}

// Housekeeping (docs/DESIGN.md decision 7): closed auctions leave the state once they lingered
// long enough, handed to the shell whole (winner, bids, audit); open ones stay.
#[test]
fn archive_takes_out_only_auctions_closed_long_enough() {
    let mut harness = sale(spec(AUCTION));
    harness.create(0, spec("a2"));
    harness.accept(20_000, "alice", 1000);
    harness.advance(100_001);
    assert!(harness.a1().phase.is_closed(), "{}", harness.summary());
    let archive = |linger_ms| Command::Archive {
        closed_linger_ms: linger_ms,
    };
    let too_early = harness.run_with(140_000, DEFAULT_SEED, "janitor", archive(50_000));
    assert_eq!(too_early.result, Ok(Outcome::Archived { auctions: 0 }));
    assert_eq!(too_early.effects, vec![Effect::Archive(Vec::new())]);
    let due = harness.run_with(150_000, DEFAULT_SEED, "janitor", archive(50_000));
    assert_eq!(due.result, Ok(Outcome::Archived { auctions: 1 }));
    let archived: Vec<&Auction> = due.archived().collect();
    assert_eq!(archived.len(), 1);
    let archived = archived[0];
    assert_eq!(archived.spec.id, AUCTION);
    assert_eq!(archived.bids.len(), 1);
    assert!(archived.winner.is_some());
    assert!(!harness.state.auctions.contains_key(AUCTION));
    assert!(
        harness.state.auctions.contains_key("a2"),
        "a2 is not closed"
    );
    let again = harness.run_with(200_000, DEFAULT_SEED, "janitor", archive(0));
    assert_eq!(again.result, Ok(Outcome::Archived { auctions: 0 }));
}

// Time: times are the leader's clock when it accepts the command; a new leader's lagging
// clock must not move the state's time backwards.
#[test]
fn clock_never_goes_backwards() {
    let mut harness = sale(spec(AUCTION));
    harness.accept(50_000, "alice", 1000);
    let receipt = harness.accept(1_000, "bob", 1100);
    assert_eq!(receipt.accepted_at_ms, 50_000);
    assert_eq!(harness.state.clock_ms, 50_000);
    // Timed bidding began at 100 000; a bid stamped 50 000 by a lagging leader counts at
    // 150 000 and the countdown restarts from there, not from the stale stamp.
    harness.advance(150_000);
    let receipt = harness.accept(50_000, "alice", 1200);
    assert_eq!(receipt.accepted_at_ms, 150_000);
    assert_eq!(harness.summary(), "timed_bidding until 390000");
}

// Prices and Time: an auction's numbers are validated before use; the refusal names the
// field.
#[test]
fn auction_spec_validation_names_the_field() {
    type Change = fn(&mut AuctionSpec);
    let cases: [(&str, Change); 10] = [
        ("id", |s| s.id = "bad id!".into()),
        ("title", |s| s.title = " ".into()),
        ("start_price", |s| s.start_price = 0),
        ("increment", |s| s.increment = 0),
        ("listing_closes_at_ms", |s| s.listing_closes_at_ms = 10_000),
        ("countdown_ms", |s| s.countdown_ms = 0),
        ("cap_confirm_ms", |s| s.cap_confirm_ms = 24 * 3_600_000 + 1),
        ("failover_grace_ms", |s| s.failover_grace_ms = 0),
        ("price_cap", |s| s.price_cap = Some(999)),
        ("reserve_price", |s| {
            (s.price_cap, s.reserve_price) = (Some(2000), Some(2001))
        }),
    ];
    let mut harness = Harness::default();
    for (field, change) in cases {
        let spec = with(spec(AUCTION), change);
        match harness.run(0, Command::CreateAuction { spec }) {
            Err(Rejection::InvalidRequest(detail)) => assert!(detail.contains(field), "{detail}"),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(harness.state.auctions.is_empty());
}

// Operations: creating the same auction again is harmless; another spec is refused.
#[test]
fn create_auction_is_idempotent_for_same_spec() {
    let mut harness = sale(spec(AUCTION));
    harness.accept(20_000, "alice", 1000);
    let before = harness.a1().clone();
    let same = Command::CreateAuction {
        spec: spec(AUCTION),
    };
    let unchanged = Outcome::AuctionCreated { created: false };
    assert_eq!(harness.run(30_000, same), Ok(unchanged));
    let spec = with(spec(AUCTION), |s| s.start_price = 5);
    let other = harness.run(30_000, Command::CreateAuction { spec });
    assert_eq!(other, Err(Rejection::AuctionExists));
    assert_eq!(harness.a1().bids, before.bids);
    assert_eq!(harness.a1().spec, before.spec);
}

// Price cap with Prices: when a larger increment leaves the high bid less than one
// increment below the cap, price bidding stops and the auction enters `capped`: at once
// if it is open, on resume if it is suspended.
#[test]
fn increment_change_that_brings_the_cap_within_one_increment_enters_capped() {
    let mut harness = sale(with_cap(1500));
    harness.accept(20_000, "alice", 1200);
    harness.change_increment(30_000, 400).result.unwrap();
    assert_eq!(harness.summary(), "capped until 90000");
    assert_eq!(harness.confirm(31_000, "alice"), Ok(Outcome::Confirmed));
    assert_eq!(harness.refuse(31_000, "bob", 1500), not_open("capped"));

    let mut suspended = sale(with_cap(1500));
    suspended.accept(20_000, "alice", 1200);
    suspended.operator(25_000, "suspend").unwrap();
    suspended.change_increment(30_000, 400).result.unwrap();
    suspended.operator(40_000, "resume").unwrap();
    assert_eq!(suspended.summary(), "capped until 100000");
}

// Phases and Audit: every replica that applies the same log holds the same state, and
// draws the same lottery winner.
#[test]
fn replaying_the_log_gives_the_same_state() {
    let mut harness = capped_sale();
    harness.confirm_with_nonce(40_000, "alice", "7f3a").unwrap();
    harness.confirm(41_000, "bob").unwrap();
    harness.advance(100_000);
    let replica = replay(&harness.log);
    assert_eq!(replica.digest(), harness.state.digest());
    assert!(replica == harness.state);
    assert!(replica.auctions[AUCTION]
        .winner
        .as_ref()
        .unwrap()
        .lottery
        .is_some());
}

// Operator audit trail: every control command, accepted or refused, is recorded with the
// operator who gave it; bidder and system commands are not.
#[test]
fn control_commands_are_recorded_with_their_operator_and_bids_are_not() {
    let mut harness = sale(spec(AUCTION));
    harness.accept(20_000, "alice", 1000);
    harness.operator(21_000, "suspend").expect("suspend");
    assert!(harness.operator(21_500, "suspend").is_err());
    let record = Command::RecordOperatorAction {
        action: "switchover".into(),
        target: "node 2".into(),
        reason: String::new(),
    };
    harness.run_with(22_000, DEFAULT_SEED, "operator-wang", record);
    let bad_action = Command::RecordOperatorAction {
        action: "no spaces allowed".into(),
        target: "node 2".into(),
        reason: String::new(),
    };
    let refused = harness.run_with(22_500, DEFAULT_SEED, "operator-wang", bad_action);
    assert!(matches!(refused.result, Err(Rejection::InvalidRequest(_))));

    let trail: Vec<(String, String, String, String)> = harness
        .state
        .operator_audit
        .iter()
        .map(|r| {
            (
                r.operator.clone(),
                r.action.to_string(),
                r.target.clone(),
                r.outcome.clone(),
            )
        })
        .collect();
    let owned = |(a, b, c, d): (&str, &str, &str, &str)| {
        (a.to_string(), b.to_string(), c.to_string(), d.to_string())
    };
    let expected: Vec<_> = [
        ("operator-li", "create_auction", AUCTION, "ok"),
        ("operator-li", "register_bidder", "alice", "ok"),
        ("operator-li", "qualify", "a1/alice", "ok"),
        ("operator-li", "register_bidder", "bob", "ok"),
        ("operator-li", "qualify", "a1/bob", "ok"),
        ("operator-li", "register_bidder", "carol", "ok"),
        ("operator-li", "qualify", "a1/carol", "ok"),
        ("operator-li", "suspend", AUCTION, "ok"),
        ("operator-li", "suspend", AUCTION, "auction_not_open"),
        ("operator-wang", "switchover", "node 2", "ok"),
        (
            "operator-wang",
            "no spaces allowed",
            "node 2",
            "invalid_request",
        ),
    ]
    .into_iter()
    .map(owned)
    .collect();
    assert_eq!(trail, expected);
}

// The node records its cluster changes (`node add`, `node remove`, `migrate`,
// `switchover`) on the audit trail with `RecordOperatorAction`: each is an action of the
// trail, recorded as done, spaces and all.
#[test]
fn cluster_changes_are_recorded_as_done() {
    let mut harness = Harness::default();
    for (now_ms, action) in [
        (1_000, "node add"),
        (2_000, "node remove"),
        (3_000, "migrate"),
        (4_000, "switchover"),
    ] {
        let record = Command::RecordOperatorAction {
            action: action.into(),
            target: "node 4".into(),
            reason: String::new(),
        };
        let applied = harness.run_with(now_ms, DEFAULT_SEED, "operator-wang", record);
        assert_eq!(
            applied.result,
            Ok(Outcome::OperatorActionRecorded),
            "{action}"
        );
        let recorded = harness.state.operator_audit.back().expect("recorded");
        assert_eq!(
            (recorded.action.as_str(), recorded.outcome.as_str()),
            (action, "ok")
        );
    }
    assert_eq!(
        harness.state.operator_audit[0].action,
        gavel_kernel::OperatorAction::NodeAdd
    );
}

// The exchange outbox carries each closed auction's result as the kernel builds it
// (`gavel_kernel::sale_result`); it is the control API's `ResultView`, field for field,
// and the outbox's text is the one the spool wrote when it was built from `ResultView`.
#[test]
fn the_outbox_result_of_a_sold_a_failed_and_a_terminated_auction_is_the_api_result() {
    let sold = {
        let mut harness = capped_sale();
        harness.confirm(40_000, "alice").expect("alice confirms");
        harness.confirm(41_000, "bob").expect("bob confirms");
        harness
    };
    let unsold = sale(spec(AUCTION));
    let terminated = {
        let mut harness = sale(spec(AUCTION));
        harness.accept(20_000, "alice", 1000);
        harness
    };
    let closing = [
        (
            sold,
            200_000,
            Command::Advance {
                auction_id: AUCTION.to_string(),
            },
            "sold",
        ),
        (
            unsold,
            200_000,
            Command::Advance {
                auction_id: AUCTION.to_string(),
            },
            "unsold",
        ),
        (
            terminated,
            50_000,
            Command::Terminate {
                auction_id: AUCTION.to_string(),
                reason: "withdrawn".to_string(),
            },
            "terminated",
        ),
    ];
    for (mut harness, now_ms, command, phase) in closing {
        let mut ledger = ExchangeLedger {
            active: true,
            ..ExchangeLedger::default()
        };
        let envelope = Envelope {
            now_ms,
            seed: DEFAULT_SEED,
            actor: "operator-li".to_string(),
            command,
        };
        let applied = Replica {
            state: &mut harness.state,
            ledger: &mut ledger,
        }
        .apply(&envelope, 42);
        assert!(applied.result.is_ok(), "{:?}", applied.result);
        let auction = harness.a1();
        assert_eq!(auction.phase.as_str(), phase);
        let view = ResultView::new(auction);
        // The sale went to a lottery among the two who confirmed: every field is filled.
        assert_eq!(phase == "sold", view.lottery.is_some());
        let kernel = SaleResult::of(auction);
        assert_eq!(
            serde_json::to_string(&kernel).expect("kernel result"),
            serde_json::to_string(&view).expect("view")
        );
        let record = ledger.outbox.values().last().expect("the result spooled");
        assert_eq!(record.key, format!("result/{AUCTION}"));
        assert_eq!(record.status, OutboxStatus::Closed);
        assert_eq!(
            record.data,
            serde_json::to_value(&view).expect("view").to_string()
        );
        assert_eq!(applied.effects, vec![Effect::Outbox { seq: 0 }]);
    }
}

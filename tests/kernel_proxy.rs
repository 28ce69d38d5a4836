//! Proxy bidding (docs/RULES.md, "Proxy bidding"), one test per rule, each quoting it.
//! The base sale is `common_kernel`'s: start 1000, increment 100 (`multiple`), listing
//! from 10 000 ms to 100 000 ms, countdown 240 000 ms; Alice, Bob and Carol are qualified.

mod common_kernel;

use std::time::{Duration, Instant};

use common_kernel::{sale, spec, timed_sale, with, with_cap, Harness, AUCTION};
use gavel_kernel::invariants::check_auction;
use gavel_kernel::sale::{SaleRules, TimedBiddingEntry};
use gavel_kernel::{Command, IncrementRule, Outcome, Phase, Receipt, Rejection};

fn set_proxy(
    harness: &mut Harness,
    now_ms: u64,
    bidder_id: &str,
    max_amount: u64,
    request_id: &str,
) -> Result<Outcome, Rejection> {
    let command = Command::SetProxy {
        auction_id: AUCTION.to_string(),
        token_hash: harness.token(bidder_id),
        max_amount,
        request_id: request_id.to_string(),
    };
    harness.run(now_ms, command)
}

/// Sets a maximum that must be accepted; answers the receipt of the bid it placed for
/// its bidder at once, if any.
fn proxy(harness: &mut Harness, now_ms: u64, bidder_id: &str, max_amount: u64) -> Option<Receipt> {
    let request_id = format!("proxy-{}", harness.log.len());
    match set_proxy(harness, now_ms, bidder_id, max_amount, &request_id) {
        Ok(Outcome::ProxySet {
            max_amount: answered,
            receipt,
            replayed: false,
        }) if answered == max_amount => receipt,
        other => panic!("{bidder_id} setting a maximum of {max_amount}: {other:?}"),
    }
}

fn withdraw(harness: &mut Harness, now_ms: u64, bidder_id: &str) -> Result<Outcome, Rejection> {
    let command = Command::WithdrawProxy {
        auction_id: AUCTION.to_string(),
        token_hash: harness.token(bidder_id),
    };
    harness.run(now_ms, command)
}

/// The history of `a1`: (bidder, amount, placed by a proxy).
fn history(harness: &Harness) -> Vec<(String, u64, bool)> {
    let auction = harness.a1();
    auction
        .bids
        .iter()
        .map(|bid| {
            let proxy = auction.is_proxy_bid(bid.seq);
            (bid.bidder_id.clone(), bid.amount, proxy)
        })
        .collect()
}

fn entry(bidder_id: &str, amount: u64, proxy: bool) -> (String, u64, bool) {
    (bidder_id.to_string(), amount, proxy)
}

fn leader(harness: &Harness) -> Option<(String, u64)> {
    let auction = harness.a1();
    auction
        .highest_bid()
        .map(|bid| (bid.bidder_id.clone(), bid.amount))
}

// "Whenever that bidder is outbid, the kernel places the minimum acceptable bid for them
// in the same step, up to the maximum, marked `proxy` in the history."
#[test]
fn proxy_bidding_outbid_bidder_is_answered_at_the_minimum() {
    let mut harness = sale(spec(AUCTION));
    let first = proxy(&mut harness, 20_000, "alice", 2_000).expect("a bid at once");
    assert_eq!((first.seq, first.amount), (1, 1_000));
    harness.accept(30_000, "bob", 1_100);
    assert_eq!(
        history(&harness),
        [
            entry("alice", 1_000, true),
            entry("bob", 1_100, false),
            entry("alice", 1_200, true),
        ]
    );
    // The answer came in the bid's own step, stamped with its time.
    assert_eq!(harness.a1().bids[2].accepted_at_ms, 30_000);
    harness.accept(40_000, "carol", 1_500);
    assert_eq!(leader(&harness), Some(("alice".to_string(), 1_600)));
}

// "Two proxies resolve at once: the higher maximum leads at the lower maximum plus one
// increment."
#[test]
fn proxy_bidding_two_proxies_resolve_in_one_step() {
    let mut harness = sale(spec(AUCTION));
    proxy(&mut harness, 20_000, "alice", 2_000);
    let bids_before = harness.a1().bids.len();
    let answer = proxy(&mut harness, 30_000, "bob", 1_550).expect("bob's proxy bid");
    assert_eq!(
        answer.amount, 1_500,
        "the lower maximum, on the increment grid"
    );
    assert_eq!(
        harness.a1().bids.len(),
        bids_before + 2,
        "one step, two bids"
    );
    assert_eq!(leader(&harness), Some(("alice".to_string(), 1_600)));
    assert_eq!(
        history(&harness)[1..],
        [entry("bob", 1_500, true), entry("alice", 1_600, true)]
    );
    // Bob's proxy is spent: a bid of his own is needed now.
    harness.accept(40_000, "bob", 1_700);
    assert_eq!(leader(&harness), Some(("alice".to_string(), 1_800)));
}

// "equal maxima → the earlier proxy leads" (never above its own maximum).
#[test]
fn proxy_bidding_equal_maxima_the_earlier_leads() {
    let mut harness = sale(spec(AUCTION));
    proxy(&mut harness, 20_000, "alice", 1_500);
    proxy(&mut harness, 30_000, "bob", 1_500);
    assert_eq!(leader(&harness), Some(("alice".to_string(), 1_500)));
    assert_eq!(
        history(&harness)[1..],
        [entry("bob", 1_400, true), entry("alice", 1_500, true)]
    );
    // Bob's proxy is spent at his maximum: he cannot tie it by hand either.
    assert_eq!(
        harness.refuse(40_000, "bob", 1_500),
        Rejection::BelowMinimum { minimum: 1_600 }
    );
}

// "Proxy bids ... stop at the cap": a proxy bid reaching the cap enters `capped` as any
// bid does, and no proxy bids after it.
#[test]
fn proxy_bidding_stops_at_the_cap() {
    let mut harness = sale(with_cap(1_500));
    proxy(&mut harness, 20_000, "alice", 5_000);
    proxy(&mut harness, 30_000, "bob", 5_000);
    assert_eq!(harness.a1().phase, Phase::Capped);
    assert_eq!(leader(&harness), Some(("alice".to_string(), 1_500)));
    assert_eq!(
        history(&harness)[1..],
        [entry("bob", 1_400, true), entry("alice", 1_500, true)]
    );
    // A manual bid reaching the cap: the outbid proxy does not answer.
    let mut harness = sale(with_cap(1_500));
    proxy(&mut harness, 20_000, "alice", 5_000);
    harness.accept(30_000, "bob", 1_500);
    assert_eq!(harness.a1().phase, Phase::Capped);
    assert_eq!(leader(&harness), Some(("bob".to_string(), 1_500)));
}

// "up to the maximum": a proxy never bids above it.
#[test]
fn proxy_bidding_never_bids_above_the_maximum() {
    let mut harness = sale(spec(AUCTION));
    proxy(&mut harness, 20_000, "alice", 1_250);
    harness.accept(30_000, "bob", 1_100);
    assert_eq!(leader(&harness), Some(("alice".to_string(), 1_200)));
    harness.accept(40_000, "bob", 1_300);
    assert_eq!(leader(&harness), Some(("bob".to_string(), 1_300)));
    let auction = harness.a1();
    assert!(auction
        .bids
        .iter()
        .filter(|bid| auction.is_proxy_bid(bid.seq))
        .all(|bid| bid.amount <= 1_250));
    assert_eq!(check_auction(auction), Ok(()));
}

// "A maximum can be raised, or withdrawn while its bidder does not lead."
#[test]
fn proxy_bidding_withdrawal_is_refused_while_leading() {
    let mut harness = sale(spec(AUCTION));
    proxy(&mut harness, 20_000, "alice", 2_000);
    assert_eq!(
        withdraw(&mut harness, 21_000, "alice"),
        Err(Rejection::Leading)
    );
    assert_eq!(Rejection::Leading.code(), "leading");
    proxy(&mut harness, 22_000, "bob", 3_000);
    assert_eq!(leader(&harness), Some(("bob".to_string(), 2_100)));
    assert_eq!(
        withdraw(&mut harness, 23_000, "alice"),
        Ok(Outcome::ProxyWithdrawn { withdrawn: true })
    );
    assert_eq!(
        withdraw(&mut harness, 24_000, "bob"),
        Err(Rejection::Leading)
    );
    // Alice's proxy is gone: Carol outbids Bob's proxy, and only Bob's answers.
    harness.accept(25_000, "carol", 2_200);
    assert_eq!(leader(&harness), Some(("bob".to_string(), 2_300)));
    assert!(!harness.a1().sale.proxies.contains_key("alice"));
}

// "A maximum can be raised" (and only raised).
#[test]
fn proxy_bidding_a_maximum_can_be_raised() {
    let mut harness = sale(spec(AUCTION));
    proxy(&mut harness, 20_000, "alice", 1_200);
    harness.accept(21_000, "bob", 1_300);
    assert_eq!(leader(&harness), Some(("bob".to_string(), 1_300)));
    let raised = proxy(&mut harness, 22_000, "alice", 1_800).expect("answers at once");
    assert_eq!(raised.amount, 1_400);
    let lower = set_proxy(&mut harness, 23_000, "alice", 1_700, "lower").expect_err("refused");
    assert_eq!(lower.code(), "conflict");
    assert_eq!(harness.a1().sale.proxies["alice"].max_amount, 1_800);
}

// "idempotency by request_id for SetProxy (same request again → same answer)".
#[test]
fn proxy_bidding_the_same_request_answers_the_same() {
    let mut harness = sale(spec(AUCTION));
    harness.accept(20_000, "bob", 1_000);
    let first = set_proxy(&mut harness, 21_000, "alice", 2_000, "p-1").expect("set");
    let again = set_proxy(&mut harness, 22_000, "alice", 2_000, "p-1").expect("replayed");
    let (
        Outcome::ProxySet {
            receipt: Some(first),
            replayed: false,
            ..
        },
        Outcome::ProxySet {
            receipt: Some(again),
            replayed: true,
            ..
        },
    ) = (first, again)
    else {
        panic!("a receipt each time");
    };
    assert_eq!(first, again);
    assert_eq!(harness.a1().bids.len(), 2);
    assert_eq!(
        set_proxy(&mut harness, 23_000, "alice", 2_500, "p-1"),
        Err(Rejection::RequestIdReused)
    );
}

// "a proxy never outbids its own bidder" (`already_leading`); a maximum below the
// minimum is refused.
#[test]
fn proxy_bidding_never_outbids_its_own_bidder() {
    let mut harness = sale(spec(AUCTION));
    harness.accept(20_000, "alice", 1_000);
    assert_eq!(proxy(&mut harness, 21_000, "alice", 2_000), None);
    assert_eq!(harness.a1().bids.len(), 1);
    assert_eq!(
        set_proxy(&mut harness, 22_000, "bob", 1_050, "low"),
        Err(Rejection::BelowMinimum { minimum: 1_100 })
    );
}

// "Proxy bids reset the countdown like any bid."
#[test]
fn proxy_bidding_in_timed_bidding_resets_the_countdown() {
    let mut harness = timed_sale(spec(AUCTION));
    let answer = proxy(&mut harness, 200_000, "alice", 2_000).expect("at once");
    assert_eq!(answer.amount, 1_200);
    assert_eq!(harness.a1().deadline_ms, Some(440_000));
    harness.accept(300_000, "bob", 1_300);
    assert_eq!(leader(&harness), Some(("alice".to_string(), 1_400)));
    assert_eq!(harness.a1().deadline_ms, Some(540_000));
}

// "timed_bidding_entry=listing_bidders": a bidder who did not bid in the listing has no
// proxy bidding in timed bidding.
#[test]
fn proxy_bidding_in_timed_bidding_is_for_listing_bidders_only() {
    let mut harness = Harness::default();
    let rules = SaleRules {
        timed_bidding_entry: TimedBiddingEntry::ListingBidders,
        ..SaleRules::default()
    };
    harness.create_with_rules(0, spec(AUCTION), rules);
    for (seed, bidder) in [(11, "alice"), (12, "bob"), (13, "carol")] {
        harness.register(bidder);
        harness.qualify(seed, AUCTION, bidder);
    }
    // Alice's proxy bid in the listing makes her a listing bidder.
    proxy(&mut harness, 20_000, "alice", 2_000);
    harness.accept(30_000, "bob", 1_100);
    harness.advance(100_001);
    assert_eq!(harness.a1().phase, Phase::TimedBidding);
    let refused = set_proxy(&mut harness, 110_000, "carol", 5_000, "late").expect_err("refused");
    assert_eq!(refused, Rejection::NotAListingBidder);
    harness.accept(120_000, "bob", 1_300);
    assert_eq!(leader(&harness), Some(("alice".to_string(), 1_400)));
}

// "The resolution must be done in one step with arithmetic": a maximum of 10^15 with an
// increment of 1 answers at once.
#[test]
fn proxy_bidding_a_huge_price_range_resolves_without_a_loop() {
    let huge = 1_000_000_000_000_000;
    let spec = with(spec(AUCTION), |s| {
        s.increment = 1;
        s.increment_rule = IncrementRule::Multiple;
    });
    let mut harness = sale(spec);
    let started = Instant::now();
    proxy(&mut harness, 20_000, "alice", huge);
    proxy(&mut harness, 21_000, "bob", huge - 1);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        harness.refuse(22_000, "carol", 5_000).code(),
        "below_minimum"
    );
    assert_eq!(leader(&harness), Some(("alice".to_string(), huge)));
    assert_eq!(
        history(&harness)[1..3],
        [entry("bob", huge - 1, true), entry("alice", huge, true)]
    );
    assert_eq!(harness.a1().bids.len(), 3);
}

// "never reveal a maximum": the kernel's record as reads show it carries none.
#[test]
fn proxy_bidding_reads_of_the_record_show_no_maximum() {
    let mut harness = sale(spec(AUCTION));
    proxy(&mut harness, 20_000, "alice", 987_654);
    let shown = serde_json::to_string(&harness.a1().without_open_secrets()).expect("json");
    assert!(!shown.contains("987654"), "{shown}");
    assert_eq!(harness.a1().sale.proxies["alice"].max_amount, 987_654);
}

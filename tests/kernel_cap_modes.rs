//! The cap modes past the lottery (docs/RULES.md, "Sealed quote (一次报价)" and
//! "Secondary bidding (竞配建 / 竞自持)"), one test per rule, each quoting it. The sale is
//! `common_kernel`'s (start 1000, increment 100, listing from 10 000 ms to 100 000 ms,
//! countdown and failover grace 240 000 ms) with a price cap of 1500: Alice bids 1000,
//! Bob 1100, and Carol reaches the cap with 1500 at 30 000 ms. Dave is qualified but
//! never bids.

mod common_kernel;

use common_kernel::{not_open, replay, spec, with, Harness, AUCTION};
use gavel::model::views::{AuctionView, BidView, ControlAuctionView, ResultView};
use gavel_kernel::invariants::check_auction;
use gavel_kernel::lottery;
use gavel_kernel::sale::{CapMode, SaleRules, SealedRule, SecondarySpec};
use gavel_kernel::sale_result::{ResultQuote, SaleResult};
use gavel_kernel::sealed::winning_amount;
use gavel_kernel::{Applied, Command, EventKind, Outcome, Phase, Rejection};

const CAP: u64 = 1500;
const CEILING: u64 = 3000;
const WINDOW_MS: u64 = 60_000;

fn sealed_rules(rule: Option<SealedRule>) -> SaleRules {
    SaleRules {
        cap_mode: CapMode::SealedBid,
        sealed_window_ms: Some(WINDOW_MS),
        sealed_ceiling: Some(CEILING),
        sealed_rule: rule,
        ..SaleRules::default()
    }
}

fn secondary_rules() -> SaleRules {
    SaleRules {
        cap_mode: CapMode::Secondary,
        secondary: Some(SecondarySpec {
            label: "Self-held floor area".to_string(),
            unit: "m2".to_string(),
            start: 100,
            increment: 10,
            max: 300,
        }),
        ..SaleRules::default()
    }
}

/// The sale under `rules`, capped by Carol at 30 000 ms.
fn capped_under(rules: SaleRules) -> Harness {
    capped_with_bidders(rules, false)
}

/// The same, Dave bidding 1200 at 27 000 ms when `dave_bids`.
fn capped_with_bidders(rules: SaleRules, dave_bids: bool) -> Harness {
    let mut harness = Harness::default();
    let capped = with(spec(AUCTION), |s| s.price_cap = Some(CAP));
    harness.create_with_rules(0, capped, rules);
    for (seed, bidder) in [(11, "alice"), (12, "bob"), (13, "carol"), (14, "dave")] {
        harness.register(bidder);
        harness.qualify(seed, AUCTION, bidder);
    }
    harness.accept(20_000, "alice", 1000);
    harness.accept(25_000, "bob", 1100);
    if dave_bids {
        harness.accept(27_000, "dave", 1200);
    }
    harness.accept(30_000, "carol", CAP);
    harness
}

fn quote_applied(
    harness: &mut Harness,
    now_ms: u64,
    bidder: &str,
    amount: u64,
    request_id: &str,
) -> Applied {
    let command = Command::SubmitSealedQuote {
        auction_id: AUCTION.to_string(),
        token_hash: harness.token(bidder),
        amount,
        request_id: request_id.to_string(),
    };
    harness.run_with(now_ms, 7, bidder, command)
}

fn quote(
    harness: &mut Harness,
    now_ms: u64,
    bidder: &str,
    amount: u64,
) -> Result<Outcome, Rejection> {
    let request_id = format!("quote-{bidder}-{amount}");
    quote_applied(harness, now_ms, bidder, amount, &request_id).result
}

fn secondary_with(
    harness: &mut Harness,
    now_ms: u64,
    bidder: &str,
    amount: u64,
    request_id: &str,
) -> Result<Outcome, Rejection> {
    let command = Command::PlaceSecondaryBid {
        auction_id: AUCTION.to_string(),
        token_hash: harness.token(bidder),
        secondary_amount: amount,
        request_id: request_id.to_string(),
    };
    harness.run(now_ms, command)
}

fn secondary(
    harness: &mut Harness,
    now_ms: u64,
    bidder: &str,
    amount: u64,
) -> Result<Outcome, Rejection> {
    let request_id = format!("secondary-{}", harness.log.len());
    secondary_with(harness, now_ms, bidder, amount, &request_id)
}

fn accepted_secondary(harness: &mut Harness, now_ms: u64, bidder: &str, amount: u64) {
    match secondary(harness, now_ms, bidder, amount) {
        Ok(Outcome::SecondaryBidAccepted {
            receipt,
            replayed: false,
        }) => {
            assert_eq!(
                (receipt.secondary_amount, receipt.accepted_at_ms),
                (amount, now_ms)
            );
        }
        other => panic!("{bidder} bidding {amount} secondary at {now_ms}: {other:?}"),
    }
}

fn quotes_of(harness: &Harness) -> Vec<(u32, u64)> {
    SaleResult::of(harness.a1())
        .sealed_quotes
        .into_iter()
        .map(
            |ResultQuote {
                 bidder_number,
                 amount,
             }| (bidder_number, amount),
        )
        .collect()
}

fn number(harness: &Harness, bidder: &str) -> u32 {
    harness.a1().qualified[bidder]
}

fn assert_invariants(harness: &Harness) {
    check_auction(harness.a1()).expect("invariants hold");
    assert_eq!(replay(&harness.log).auctions, harness.state.auctions);
}

// Sealed quote: "entering `capped`, each bidder who holds a valid bid may submit one
// sealed quote in `[price_cap, sealed_ceiling]` within `sealed_window_ms`."
#[test]
fn sealed_quote_window_opens_at_the_cap_for_sealed_window_ms() {
    let mut harness = capped_under(sealed_rules(None));
    assert_eq!(harness.a1().phase, Phase::Capped);
    assert_eq!(
        harness.summary(),
        format!("capped until {}", 30_000 + WINDOW_MS)
    );
    assert!(
        harness.a1().lottery_commitment.is_some(),
        "the seed is committed at cap entry"
    );
    assert_eq!(harness.refuse(31_000, "alice", CAP), not_open("capped"));
    // Confirmations are the lottery's: a sealed-quote window takes none.
    assert_eq!(harness.confirm(31_000, "alice"), Err(not_open("capped")));
    assert_invariants(&harness);
}

// Sealed quote: a quote lies in `[price_cap, sealed_ceiling]` (`out_of_range`); one per
// bidder (`quote_exists`; the same request again answers the same quote); only from a
// bidder holding a valid bid (`not_eligible`); only within the window (`auction_not_open`).
#[test]
fn sealed_quote_one_per_bidder_in_range_from_a_valid_bidder_within_the_window() {
    let mut harness = capped_under(sealed_rules(None));
    let range = Rejection::OutOfRange {
        minimum: CAP,
        maximum: CEILING,
    };
    assert_eq!(
        quote(&mut harness, 31_000, "alice", CAP - 1),
        Err(range.clone())
    );
    assert_eq!(
        quote(&mut harness, 31_000, "alice", CEILING + 1),
        Err(range)
    );
    assert_eq!(
        quote(&mut harness, 32_000, "alice", CAP),
        Ok(Outcome::SealedQuoteAccepted {
            accepted_at_ms: 32_000,
            replayed: false
        })
    );
    assert_eq!(
        quote(&mut harness, 33_000, "alice", CAP),
        Ok(Outcome::SealedQuoteAccepted {
            accepted_at_ms: 32_000,
            replayed: true
        })
    );
    assert_eq!(
        quote(&mut harness, 34_000, "alice", 2000),
        Err(Rejection::QuoteExists)
    );
    assert_eq!(
        quote(&mut harness, 34_000, "dave", 2000),
        Err(Rejection::NoValidBid)
    );
    assert_eq!(Rejection::NoValidBid.code(), "not_eligible");
    assert_eq!(Rejection::NoValidBid.http_status(), 403);
    assert_eq!(harness.a1().sale.sealed_quotes.len(), 1);
    harness.advance(30_000 + WINDOW_MS + 1);
    assert_eq!(
        quote(&mut harness, 200_000, "bob", 2000),
        Err(not_open("sold"))
    );
    assert_invariants(&harness);
}

// Sealed quote: a quote before the cap is refused: the window has not opened.
#[test]
fn sealed_quote_before_the_cap_is_refused() {
    let mut harness = Harness::default();
    let capped = with(spec(AUCTION), |s| s.price_cap = Some(CAP));
    harness.create_with_rules(0, capped, sealed_rules(None));
    harness.register("alice");
    harness.qualify(11, AUCTION, "alice");
    harness.accept(20_000, "alice", 1000);
    assert_eq!(
        quote(&mut harness, 21_000, "alice", 2000),
        Err(not_open("listing"))
    );
}

// Sealed quote: "`highest` (the highest quote) ... Final price = the winning quote."
#[test]
fn sealed_quote_highest_wins_at_its_quote() {
    let mut harness = capped_under(sealed_rules(None));
    for (bidder, amount) in [("alice", 2000), ("bob", 2500), ("carol", 1800)] {
        assert!(quote(&mut harness, 40_000, bidder, amount).is_ok());
    }
    harness.advance(30_000 + WINDOW_MS + 1);
    assert_eq!(
        harness.summary(),
        format!("sold at {} to bob for 2500", 30_000 + WINDOW_MS)
    );
    assert!(harness
        .a1()
        .winner
        .as_ref()
        .is_some_and(|w| w.lottery.is_none()));
    let mut expected = vec![
        (number(&harness, "alice"), 2000),
        (number(&harness, "bob"), 2500),
        (number(&harness, "carol"), 1800),
    ];
    expected.sort();
    assert_eq!(quotes_of(&harness), expected);
    assert_invariants(&harness);
}

// Sealed quote: "`closest_to_average` (the quote nearest the mean of all valid quotes,
// integer arithmetic, nearest-below on a tie of distance)".
#[test]
fn sealed_quote_closest_to_average_takes_the_lower_on_a_tie_of_distance() {
    // Mean 7400 / 4 = 1850: Bob's 1700 and Carol's 2000 both lie 150 away; the lower wins.
    let rules = sealed_rules(Some(SealedRule::ClosestToAverage));
    let mut harness = capped_with_bidders(rules, true);
    for (bidder, amount) in [
        ("alice", 1500),
        ("bob", 1700),
        ("carol", 2000),
        ("dave", 2200),
    ] {
        assert!(quote(&mut harness, 40_000, bidder, amount).is_ok());
    }
    harness.advance(30_000 + WINDOW_MS + 1);
    assert_eq!(
        harness.summary(),
        format!("sold at {} to bob for 1700", 30_000 + WINDOW_MS)
    );
    assert_invariants(&harness);

    // The rule itself: the mean is an integer (rounded down) and a tie of distance goes
    // to the lower quote.
    let rule = SealedRule::ClosestToAverage;
    assert_eq!(winning_amount(rule, &[1500, 1700, 2000, 2200]), Some(1700));
    // 4505 / 3 = 1501 (not 1501.67): 1500 and 1502 lie 1 away, the lower wins.
    assert_eq!(winning_amount(rule, &[1500, 1502, 1503]), Some(1500));
    assert_eq!(winning_amount(rule, &[]), None);
    assert_eq!(
        winning_amount(SealedRule::Highest, &[1500, 2200, 1700]),
        Some(2200)
    );
    let huge = u64::MAX - 1;
    assert_eq!(winning_amount(rule, &[huge, huge, u64::MAX]), Some(huge));
}

// Sealed quote: "a tie of equal quotes is drawn by the lottery above among the tied",
// with the seed committed at cap entry, the tied in ascending bidder-number order; anyone
// re-draws it.
#[test]
fn sealed_quote_tie_is_drawn_by_the_committed_seed_and_redraws() {
    let mut harness = capped_under(sealed_rules(None));
    for (bidder, amount) in [("alice", 2500), ("bob", 2500), ("carol", 2000)] {
        assert!(quote(&mut harness, 40_000, bidder, amount).is_ok());
    }
    let commitment = harness
        .a1()
        .lottery_commitment
        .expect("committed at cap entry");
    harness.advance(30_000 + WINDOW_MS + 1);
    let auction = harness.a1();
    let winner = auction.winner.clone().expect("sold");
    assert_eq!(winner.price, 2500);
    let draw = winner.lottery.clone().expect("a draw among the tied");
    let mut tied = vec![number(&harness, "alice"), number(&harness, "bob")];
    tied.sort();
    assert_eq!(draw.entrant_numbers(), tied);
    assert!(tied.contains(&winner.bidder_number));
    lottery::redraw(AUCTION, &draw, Some(&commitment), winner.bidder_number).expect("re-draws");
    // Published as a commit-reveal draw: the seed's SHA-256 is the commitment.
    let result = SaleResult::of(auction);
    let published = result.lottery.expect("the draw is in the result");
    assert_eq!(published.commitment, Some(hex::encode(commitment)));
    // Another winner would not re-draw.
    let loser = tied
        .iter()
        .copied()
        .find(|n| *n != winner.bidder_number)
        .expect("two tied");
    assert!(lottery::redraw(AUCTION, &draw, Some(&commitment), loser).is_err());
    assert_invariants(&harness);
}

// Sealed quote: "No quote → the bidder who reached the cap wins at the cap."
#[test]
fn sealed_quote_none_leaves_the_cap_bidder_the_winner_at_the_cap() {
    let mut harness = capped_under(sealed_rules(None));
    harness.advance(30_000 + WINDOW_MS + 1);
    assert_eq!(
        harness.summary(),
        format!("sold at {} to carol for {CAP}", 30_000 + WINDOW_MS)
    );
    assert!(quotes_of(&harness).is_empty());
    assert_invariants(&harness);
}

/// Whether `text` holds `number` as a whole number (not inside a longer run of digits).
fn shows_number(text: &str, number: u64) -> bool {
    let digits = number.to_string();
    text.match_indices(&digits).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + digits.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// Every text a bidder, a subscriber or an operator can read of the auction now.
fn every_reading(harness: &Harness) -> Vec<String> {
    let auction = harness.a1();
    let json = |value: serde_json::Result<String>| value.expect("encode");
    let mut readings = vec![
        json(serde_json::to_string(&AuctionView::new(auction, 45_000))),
        json(serde_json::to_string(&ControlAuctionView::new(
            auction, 45_000,
        ))),
        json(serde_json::to_string(&auction.without_open_secrets())),
        json(serde_json::to_string(&ResultView::new(auction))),
        SaleResult::of(auction).to_outbox_json(),
    ];
    readings.extend(
        auction
            .bids
            .iter()
            .map(|bid| json(serde_json::to_string(&BidView::of(auction, bid)))),
    );
    readings.extend(auction.audit.iter().map(|record| format!("{record:?}")));
    readings
}

// Sealed quote: "No quote is shown to anyone — bidders, events, control reads — before the
// window closes." Every view and record read during the window holds no quote amount;
// after the close the result lists them.
#[test]
fn sealed_quote_is_never_visible_before_the_window_closes() {
    let mut harness = capped_under(sealed_rules(None));
    let secret_amounts = [2345_u64, 2777];
    for (bidder, amount) in [("alice", secret_amounts[0]), ("bob", secret_amounts[1])] {
        let applied = quote_applied(&mut harness, 40_000, bidder, amount, &format!("q-{bidder}"));
        assert!(matches!(
            applied.result,
            Ok(Outcome::SealedQuoteAccepted { .. })
        ));
        assert_eq!(
            applied
                .events
                .iter()
                .map(|e| e.kind.clone())
                .collect::<Vec<_>>(),
            vec![EventKind::SealedQuote]
        );
        assert!(!shows_number(&format!("{:?}", applied.events), amount));
    }
    let view = AuctionView::new(harness.a1(), 45_000);
    assert_eq!(view.sealed_quotes_count, 2);
    for reading in every_reading(&harness) {
        for amount in secret_amounts {
            assert!(
                !shows_number(&reading, amount),
                "{amount} shown in {reading}"
            );
        }
    }
    // Suspended, the window is not closed either.
    assert!(harness.operator(50_000, "suspend").is_ok());
    for reading in every_reading(&harness) {
        assert!(
            !shows_number(&reading, 2345) && !shows_number(&reading, 2777),
            "{reading}"
        );
    }
    assert!(harness.operator(60_000, "resume").is_ok());
    // The window had 40 000 ms left when suspended: it ends at 100 000.
    assert_eq!(harness.summary(), "capped until 100000");
    harness.advance(100_001);
    let result = serde_json::to_string(&ResultView::new(harness.a1())).expect("encode");
    assert!(
        shows_number(&result, 2345) && shows_number(&result, 2777),
        "{result}"
    );
    assert_eq!(harness.summary(), "sold at 100000 to bob for 2777");
    assert_invariants(&harness);
}

// Sealed quote, invariant: "the winner's price equals the winning quote": a record whose
// winner's price differs from the winning quote is a broken invariant.
#[test]
fn sealed_quote_invariant_names_a_price_that_is_not_the_winning_quote() {
    let mut harness = capped_under(sealed_rules(None));
    assert!(quote(&mut harness, 40_000, "alice", 2000).is_ok());
    harness.advance(30_000 + WINDOW_MS + 1);
    let mut altered = harness.a1().clone();
    if let Some(winner) = altered.winner.as_mut() {
        winner.price = 1999;
    }
    let violation = check_auction(&altered).expect_err("broken");
    assert!(
        violation.to_string().contains("winning quote"),
        "{violation}"
    );
}

// Sealed quote: "quotes secret until the window closes", as the audit checks it on the
// record: an audit record before the close that names a quote, or a quote dated outside
// its window, is a broken invariant; the record as the kernel kept it passes, before and
// after the close.
#[test]
fn sealed_quote_secrecy_is_checked_on_the_record() {
    let mut harness = capped_under(sealed_rules(None));
    assert!(quote(&mut harness, 40_000, "alice", 2345).is_ok());
    assert!(quote(&mut harness, 41_000, "bob", 2777).is_ok());
    check_auction(harness.a1()).expect("the open window's record holds");
    let mut leaked = harness.a1().clone();
    let record = leaked.audit.back_mut().expect("a record");
    record.detail = format!("{} quoted 2777", record.detail);
    let violation = check_auction(&leaked).expect_err("a leak");
    assert!(
        violation.to_string().contains("names a sealed quote"),
        "{violation}"
    );
    let mut early = harness.a1().clone();
    early
        .sale
        .sealed_quotes
        .get_mut("alice")
        .expect("quote")
        .accepted_at_ms = 29_000;
    let violation = check_auction(&early).expect_err("early");
    assert!(
        violation.to_string().contains("outside its window"),
        "{violation}"
    );

    harness.advance(30_000 + WINDOW_MS + 1);
    assert_eq!(harness.a1().phase, Phase::Sold);
    // After the close the records name the winning quote, as they may.
    assert!(harness
        .a1()
        .audit
        .iter()
        .any(|record| shows_number(&record.detail, 2777)));
    check_auction(harness.a1()).expect("the closed record holds");
    let mut late = harness.a1().clone();
    late.sale
        .sealed_quotes
        .get_mut("bob")
        .expect("quote")
        .accepted_at_ms = 30_000 + WINDOW_MS + 5;
    let violation = check_auction(&late).expect_err("late");
    assert!(
        violation.to_string().contains("outside its window"),
        "{violation}"
    );
    // A leak before the close is found in the closed record too.
    let mut leaked = harness.a1().clone();
    let quoted = leaked
        .audit
        .iter_mut()
        .find(|record| record.action == "sealed_quote")
        .expect("a quote record");
    quoted.detail = "bidder number 1, quote 2345".to_string();
    assert!(check_auction(&leaked).is_err());
}

// Secondary bidding: "entering the cap freezes the price at `price_cap` and bidding moves
// to a second quantity"; phase `secondary_bidding` with a full countdown.
#[test]
fn secondary_bidding_begins_at_the_cap_with_the_price_frozen() {
    let mut harness = capped_under(secondary_rules());
    assert_eq!(harness.summary(), "secondary_bidding until 270000");
    assert_eq!(harness.a1().phase.as_str(), "secondary_bidding");
    assert_eq!(
        harness.refuse(40_000, "alice", CAP),
        not_open("secondary_bidding")
    );
    assert_eq!(
        harness.confirm(40_000, "alice"),
        Err(not_open("secondary_bidding"))
    );
    let view = AuctionView::new(harness.a1(), 40_000);
    let shown = view.secondary.expect("the second quantity is shown");
    assert_eq!(
        (shown.label.as_str(), shown.unit.as_str()),
        ("Self-held floor area", "m2")
    );
    assert_eq!((shown.current, shown.minimum_next), (None, Some(100)));
    assert_invariants(&harness);
}

// Secondary bidding: "every accepted secondary bid resets `deadline = accepted_at +
// countdown_ms`; the leader cannot bid again; whole increments above the current value,
// the first at least `start`"; the value never exceeds `max` (`out_of_range`).
#[test]
fn secondary_bidding_follows_the_timed_bidding_rules() {
    let mut harness = capped_under(secondary_rules());
    assert_eq!(
        secondary(&mut harness, 40_000, "alice", 99),
        Err(Rejection::BelowMinimum { minimum: 100 })
    );
    accepted_secondary(&mut harness, 40_000, "alice", 105);
    assert_eq!(harness.summary(), "secondary_bidding until 280000");
    assert_eq!(
        secondary(&mut harness, 50_000, "alice", 115),
        Err(Rejection::AlreadyLeading)
    );
    assert_eq!(
        secondary(&mut harness, 50_000, "bob", 110),
        Err(Rejection::BelowMinimum { minimum: 115 })
    );
    assert_eq!(
        secondary(&mut harness, 50_000, "bob", 120),
        Err(Rejection::NotOnIncrement {
            minimum: 115,
            increment: 10
        })
    );
    assert_eq!(
        secondary(&mut harness, 50_000, "bob", 301),
        Err(Rejection::OutOfRange {
            minimum: 115,
            maximum: 300
        })
    );
    accepted_secondary(&mut harness, 60_000, "bob", 135);
    assert_eq!(harness.summary(), "secondary_bidding until 300000");
    assert_eq!(
        secondary(&mut harness, 70_000, "dave", 145),
        Err(Rejection::NoValidBid)
    );
    let shown = AuctionView::new(harness.a1(), 70_000)
        .secondary
        .expect("shown");
    assert_eq!(
        (
            shown.current,
            shown.leading_bidder_number,
            shown.minimum_next
        ),
        (Some(135), Some(number(&harness, "bob")), Some(145))
    );
    // "The highest secondary bid wins at `price_cap`."
    harness.advance(300_001);
    assert_eq!(
        harness.summary(),
        format!("sold at 300000 to bob for {CAP}")
    );
    assert_eq!(SaleResult::of(harness.a1()).secondary_amount, Some(135));
    assert_eq!(
        secondary(&mut harness, 300_002, "alice", 145),
        Err(not_open("sold"))
    );
    assert_invariants(&harness);
}

// Secondary bidding: "The first bid to reach `max` ends it at once."
#[test]
fn secondary_bidding_ends_at_once_when_a_bid_reaches_max() {
    let mut harness = capped_under(secondary_rules());
    accepted_secondary(&mut harness, 40_000, "alice", 100);
    // `max` itself is always a valid amount above the current value.
    accepted_secondary(&mut harness, 41_000, "carol", 300);
    assert_eq!(
        harness.summary(),
        format!("sold at 41000 to carol for {CAP}")
    );
    assert_eq!(SaleResult::of(harness.a1()).secondary_amount, Some(300));
    assert_invariants(&harness);
}

// Secondary bidding: with no secondary bid, the bidder who reached the cap wins at the cap.
#[test]
fn secondary_bidding_without_a_bid_leaves_the_cap_bidder_the_winner() {
    let mut harness = capped_under(secondary_rules());
    harness.advance(270_001);
    assert_eq!(
        harness.summary(),
        format!("sold at 270000 to carol for {CAP}")
    );
    let result = serde_json::to_value(SaleResult::of(harness.a1())).expect("encode");
    assert!(result.get("secondary_amount").is_none(), "{result}");
    assert!(result.get("sealed_quotes").is_none(), "{result}");
    assert_invariants(&harness);
}

// Secondary bidding: "Idempotency by request_id as for bids."
#[test]
fn secondary_bidding_retries_answer_the_original_receipt() {
    let mut harness = capped_under(secondary_rules());
    let first = secondary_with(&mut harness, 40_000, "alice", 100, "s-1");
    let again = secondary_with(&mut harness, 45_000, "alice", 100, "s-1");
    match (first, again) {
        (
            Ok(Outcome::SecondaryBidAccepted {
                receipt,
                replayed: false,
            }),
            Ok(Outcome::SecondaryBidAccepted {
                receipt: replay,
                replayed: true,
            }),
        ) => assert_eq!(receipt, replay),
        other => panic!("{other:?}"),
    }
    assert_eq!(harness.a1().sale.secondary_bids.len(), 1);
    assert_eq!(
        secondary_with(&mut harness, 45_000, "alice", 110, "s-1"),
        Err(Rejection::RequestIdReused)
    );
    // A request_id of a price bid is the bidder's too.
    let price_request = harness
        .log
        .iter()
        .find_map(|logged| match &logged.envelope.command {
            Command::PlaceBid {
                request_id,
                token_hash,
                ..
            } if *token_hash == harness.token("bob") => Some(request_id.clone()),
            _ => None,
        });
    let price_request = price_request.expect("bob bid on the price");
    assert_eq!(
        secondary_with(&mut harness, 45_000, "bob", 110, &price_request),
        Err(Rejection::RequestIdReused)
    );
    assert_invariants(&harness);
}

// Secondary bidding and suspension: an operator may suspend `secondary_bidding`; no
// secondary bid is taken while suspended; on resume it restarts with a full countdown.
#[test]
fn secondary_bidding_suspends_and_resumes_with_a_full_countdown() {
    let mut harness = capped_under(secondary_rules());
    accepted_secondary(&mut harness, 40_000, "alice", 100);
    assert_eq!(
        harness.operator(50_000, "suspend"),
        Ok(Outcome::AuctionUpdated)
    );
    assert_eq!(harness.summary(), "suspended");
    assert_eq!(
        secondary(&mut harness, 60_000, "bob", 110),
        Err(not_open("suspended"))
    );
    assert_eq!(
        harness.operator(500_000, "resume"),
        Ok(Outcome::AuctionUpdated)
    );
    assert_eq!(harness.summary(), "secondary_bidding until 740000");
    accepted_secondary(&mut harness, 510_000, "bob", 110);
    assert_invariants(&harness);
}

// Secondary bidding and the takeover grace rule: an open phase with a deadline, extended
// to `takeover + failover_grace_ms` when its deadline falls inside the grace.
#[test]
fn secondary_bidding_gets_the_takeover_grace() {
    let mut harness = capped_under(secondary_rules());
    accepted_secondary(&mut harness, 40_000, "alice", 100);
    let (extended, kinds) = harness.takeover(279_000);
    assert_eq!(extended, vec![AUCTION.to_string()]);
    assert!(matches!(
        kinds.as_slice(),
        [EventKind::Extended {
            deadline_ms: 519_000
        }]
    ));
    assert_eq!(harness.summary(), "secondary_bidding until 519000");
    accepted_secondary(&mut harness, 300_000, "bob", 110);
    assert_eq!(harness.summary(), "secondary_bidding until 540000");
    assert_invariants(&harness);
}

// Phases: listing or timed bidding → secondary_bidding → sold, unsold, suspended or
// terminated; suspended → secondary_bidding; nothing else enters it.
#[test]
fn secondary_bidding_is_entered_and_left_only_along_its_transitions() {
    use Phase::*;
    let all = [
        Scheduled,
        Listing,
        TimedBidding,
        Capped,
        Suspended,
        Sold,
        Unsold,
        Terminated,
        SecondaryBidding,
    ];
    let into: Vec<Phase> = all
        .into_iter()
        .filter(|from| from.may_enter(SecondaryBidding))
        .collect();
    assert_eq!(into, vec![Listing, TimedBidding, Suspended]);
    let out: Vec<Phase> = all
        .into_iter()
        .filter(|to| SecondaryBidding.may_enter(*to))
        .collect();
    assert_eq!(out, vec![Suspended, Sold, Unsold, Terminated]);
    assert!(SecondaryBidding.is_open());
    let mut harness = capped_under(secondary_rules());
    assert_eq!(
        harness.operator(40_000, "terminate"),
        Ok(Outcome::AuctionUpdated)
    );
    assert_eq!(harness.summary(), "terminated at 40000");
}

// Creation: a cap mode other than the lottery needs a price cap and its own parameters.
#[test]
fn cap_modes_are_refused_without_their_parameters() {
    let mut harness = Harness::default();
    let uncapped = spec(AUCTION);
    for rules in [sealed_rules(None), secondary_rules()] {
        let command = Command::CreateAuctionWithRules {
            spec: uncapped.clone(),
            rules: Box::new(rules),
        };
        assert!(matches!(
            harness.run(0, command),
            Err(Rejection::InvalidRequest(_))
        ));
    }
    let capped = with(spec(AUCTION), |s| s.price_cap = Some(CAP));
    let low_ceiling = SaleRules {
        sealed_ceiling: Some(CAP - 1),
        ..sealed_rules(None)
    };
    let command = Command::CreateAuctionWithRules {
        spec: capped,
        rules: Box::new(low_ceiling),
    };
    assert!(matches!(
        harness.run(0, command),
        Err(Rejection::InvalidRequest(_))
    ));
}

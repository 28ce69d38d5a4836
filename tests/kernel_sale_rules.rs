//! The version 1.1 rules the kernel runs (docs/RULES.md, "Additions, version 1.1"), one
//! test per rule, each naming its section. The base sale is `common_kernel`'s: start 1000,
//! increment 100, listing from 10 000 ms to 100 000 ms, countdown 240 000 ms; Alice, Bob
//! and Carol are registered.

mod common_kernel;

use common_kernel::{spec, token_hash, Harness, AUCTION};
use gavel_kernel::sale::{SaleRules, TimedBiddingEntry, MAX_DEPOSITS_PER_AUCTION};
use gavel_kernel::sale_result::{ResultDeposit, SaleResult};
use gavel_kernel::{Command, Outcome, Rejection};

/// A sale under `rules` with Alice, Bob and Carol registered (not qualified).
fn sale_with(rules: SaleRules) -> Harness {
    let mut harness = Harness::default();
    harness.create_with_rules(0, spec(AUCTION), rules);
    for bidder in ["alice", "bob", "carol"] {
        harness.register(bidder);
    }
    harness
}

fn deposit(
    harness: &mut Harness,
    bidder_id: &str,
    amount: u64,
    reference: &str,
) -> Result<Outcome, Rejection> {
    let command = Command::RecordDeposit {
        auction_id: AUCTION.to_string(),
        bidder_id: bidder_id.to_string(),
        amount,
        reference: reference.to_string(),
    };
    harness.run(5_000, command)
}

fn try_qualify(harness: &mut Harness, bidder_id: &str) -> Result<Outcome, Rejection> {
    let command = Command::Qualify {
        auction_id: AUCTION.to_string(),
        bidder_id: bidder_id.to_string(),
    };
    harness.run(6_000, command)
}

fn deposits_of(harness: &Harness) -> Vec<(String, u64, String)> {
    SaleResult::of(harness.a1())
        .deposits
        .into_iter()
        .map(
            |ResultDeposit {
                 bidder_id,
                 amount,
                 disposition,
             }| (bidder_id, amount, disposition),
        )
        .collect()
}

fn entry(bidder_id: &str, amount: u64, disposition: &str) -> (String, u64, String) {
    (bidder_id.to_string(), amount, disposition.to_string())
}

// Deposits: "Qualification for an auction with a deposit is refused (`deposit_missing`)
// until the bidder's recorded deposits reach it"; deposits add up.
#[test]
fn qualification_waits_for_the_whole_deposit_and_deposits_add_up() {
    let mut harness = sale_with(SaleRules {
        deposit: 500,
        ..SaleRules::default()
    });
    assert_eq!(
        try_qualify(&mut harness, "alice"),
        Err(Rejection::DepositMissing {
            deposited: 0,
            required: 500
        })
    );
    let first = deposit(&mut harness, "alice", 300, "BOC-1").expect("recorded");
    assert_eq!(
        first,
        Outcome::DepositRecorded {
            bidder_id: "alice".to_string(),
            deposited: 300,
            required: 500,
            created: true
        }
    );
    assert_eq!(
        try_qualify(&mut harness, "alice")
            .expect_err("short")
            .code(),
        "deposit_missing"
    );
    deposit(&mut harness, "alice", 200, "BOC-2").expect("recorded");
    assert!(matches!(
        try_qualify(&mut harness, "alice"),
        Ok(Outcome::Qualified { created: true, .. })
    ));
    assert_eq!(harness.a1().rejections["deposit_missing"], 2);
}

// Deposits: "idempotent by the receipt's `reference`".
#[test]
fn a_deposit_is_recorded_once_per_reference() {
    let mut harness = sale_with(SaleRules {
        deposit: 500,
        ..SaleRules::default()
    });
    deposit(&mut harness, "alice", 300, "BOC-1").expect("recorded");
    let again = deposit(&mut harness, "alice", 300, "BOC-1").expect("the same receipt");
    assert!(
        matches!(
            again,
            Outcome::DepositRecorded {
                deposited: 300,
                created: false,
                ..
            }
        ),
        "{again:?}"
    );
    let other =
        deposit(&mut harness, "bob", 300, "BOC-1").expect_err("another deposit, same reference");
    assert_eq!(other.code(), "conflict");
    assert_eq!(harness.a1().sale.deposited_by("alice"), 300);
    assert_eq!(harness.a1().sale.deposited_by("bob"), 0);
    // Bad input changes nothing.
    assert_eq!(
        deposit(&mut harness, "alice", 0, "BOC-9")
            .expect_err("zero")
            .code(),
        "invalid_request"
    );
    assert_eq!(
        deposit(&mut harness, "alice", 5, "no spaces")
            .expect_err("bad ref")
            .code(),
        "invalid_request"
    );
    assert_eq!(
        deposit(&mut harness, "dave", 5, "BOC-9"),
        Err(Rejection::BidderNotFound)
    );
    assert_eq!(harness.a1().sale.deposits.len(), 1);
}

// Deposits: a bound on what one auction records.
#[test]
fn an_auction_records_at_most_its_bound_of_deposits() {
    let mut harness = sale_with(SaleRules {
        deposit: 1,
        ..SaleRules::default()
    });
    for index in 0..MAX_DEPOSITS_PER_AUCTION {
        deposit(&mut harness, "alice", 1, &format!("r{index}")).expect("under the bound");
    }
    let refused = deposit(&mut harness, "bob", 1, "one-more").expect_err("over the bound");
    assert_eq!(refused.code(), "conflict");
    assert_eq!(harness.a1().sale.deposits.len(), MAX_DEPOSITS_PER_AUCTION);
}

// Deposits: "At close every deposit gets a disposition in the result: the winner's
// `applied_to_price`, everyone else's `refund`".
#[test]
fn at_close_the_winners_deposit_is_applied_and_the_others_refunded() {
    let mut harness = sale_with(SaleRules {
        deposit: 500,
        ..SaleRules::default()
    });
    for (bidder, reference) in [("alice", "A-1"), ("bob", "B-1"), ("carol", "C-1")] {
        deposit(&mut harness, bidder, 500, reference).expect("recorded");
        try_qualify(&mut harness, bidder).expect("qualified");
    }
    assert_eq!(deposits_of(&harness)[0], entry("alice", 500, "held"));
    harness.accept(20_000, "alice", 1000);
    harness.advance(100_001);
    assert_eq!(harness.summary(), "sold at 100000 to alice for 1000");
    assert_eq!(
        deposits_of(&harness),
        vec![
            entry("alice", 500, "applied_to_price"),
            entry("bob", 500, "refund"),
            entry("carol", 500, "refund")
        ]
    );
}

// Deposits: "a terminated sale refunds all".
#[test]
fn a_terminated_sale_refunds_every_deposit() {
    let mut harness = sale_with(SaleRules {
        deposit: 500,
        ..SaleRules::default()
    });
    deposit(&mut harness, "alice", 700, "A-1").expect("recorded");
    try_qualify(&mut harness, "alice").expect("qualified");
    harness.accept(20_000, "alice", 1000);
    let terminate = Command::Terminate {
        auction_id: AUCTION.to_string(),
        reason: "withdrawn".to_string(),
    };
    harness.run(30_000, terminate).expect("terminated");
    assert_eq!(deposits_of(&harness), vec![entry("alice", 700, "refund")]);
}

// Who may bid in timed bidding: `listing_bidders`: "only bidders who placed a valid bid
// during listing may bid after it closes; others get `not_eligible`".
#[test]
fn with_listing_bidders_only_listing_bidders_bid_in_timed_bidding() {
    let rules = SaleRules {
        timed_bidding_entry: TimedBiddingEntry::ListingBidders,
        ..SaleRules::default()
    };
    let mut harness = sale_with(rules);
    for bidder in ["alice", "bob", "carol"] {
        try_qualify(&mut harness, bidder).expect("qualified");
    }
    harness.accept(20_000, "alice", 1000);
    harness.accept(30_000, "bob", 1100);
    harness.advance(100_001);
    assert_eq!(harness.summary(), "timed_bidding until 340000");
    let refused = harness.refuse(110_000, "carol", 1200);
    assert_eq!(refused, Rejection::NotAListingBidder);
    assert_eq!(
        (refused.code(), refused.http_status()),
        ("not_eligible", 403)
    );
    harness.accept(120_000, "alice", 1200);
    assert_eq!(harness.a1().bids.len(), 3);
}

// Who may bid in timed bidding: the default, `all_qualified`.
#[test]
fn by_default_every_qualified_bidder_bids_in_timed_bidding() {
    let mut harness = sale_with(SaleRules::default());
    for bidder in ["alice", "bob", "carol"] {
        try_qualify(&mut harness, bidder).expect("qualified");
    }
    harness.accept(20_000, "alice", 1000);
    harness.accept(30_000, "bob", 1100);
    harness.advance(100_001);
    harness.accept(110_000, "carol", 1200);
}

/// Alice wins at 1000 at 100 000 under a confirmation window of 60 000 ms, with a
/// deposit of 500 each; Bob's deposit is refunded.
fn won_with_confirmation() -> Harness {
    let rules = SaleRules {
        deposit: 500,
        winner_confirm_ms: Some(60_000),
        ..SaleRules::default()
    };
    let mut harness = sale_with(rules);
    for (bidder, reference) in [("alice", "A-1"), ("bob", "B-1")] {
        deposit(&mut harness, bidder, 500, reference).expect("recorded");
        try_qualify(&mut harness, bidder).expect("qualified");
    }
    harness.accept(20_000, "alice", 1000);
    harness.advance(100_001);
    assert_eq!(harness.summary(), "sold at 100000 to alice for 1000");
    harness
}

fn accept_sale(harness: &mut Harness, now_ms: u64, bidder_id: &str) -> Result<Outcome, Rejection> {
    let command = Command::AcceptSale {
        auction_id: AUCTION.to_string(),
        token_hash: harness.token(bidder_id),
    };
    harness.run(now_ms, command)
}

fn confirmation(harness: &Harness) -> Option<String> {
    SaleResult::of(harness.a1()).confirmation
}

// Winner's confirmation: "a sale ends in `sold` with `confirmation: pending`; the winner
// confirms on the bidder page or API within the window (`confirmed`)".
#[test]
fn the_winner_confirms_within_the_window() {
    let mut harness = won_with_confirmation();
    assert_eq!(confirmation(&harness).as_deref(), Some("pending"));
    assert!(
        !harness.a1().is_settled(),
        "a pending sale stays in the live state"
    );
    assert_eq!(harness.a1().due_at_ms(), Some(160_001));
    assert_eq!(
        accept_sale(&mut harness, 120_000, "bob"),
        Err(Rejection::NotWinner)
    );
    assert_eq!(
        accept_sale(&mut harness, 160_000, "alice"),
        Ok(Outcome::SaleAccepted { replayed: false })
    );
    assert_eq!(
        accept_sale(&mut harness, 160_500, "alice"),
        Ok(Outcome::SaleAccepted { replayed: true })
    );
    assert_eq!(confirmation(&harness).as_deref(), Some("confirmed"));
    assert!(harness.a1().is_settled());
    assert_eq!(harness.a1().due_at_ms(), None);
    assert_eq!(
        deposits_of(&harness)[0],
        entry("alice", 500, "applied_to_price")
    );
}

// Winner's confirmation: "else it becomes `lapsed` and the operator decides (a `default`
// action forfeits the winner's deposit). The result and the audit keep each step."
#[test]
fn an_unconfirmed_sale_lapses_and_the_operator_may_declare_a_default() {
    let mut harness = won_with_confirmation();
    let early = Command::DefaultWinner {
        auction_id: AUCTION.to_string(),
        reason: "no show".to_string(),
    };
    assert_eq!(
        harness
            .run(150_000, early.clone())
            .expect_err("still pending")
            .code(),
        "conflict"
    );
    harness.advance(160_001);
    assert_eq!(confirmation(&harness).as_deref(), Some("lapsed"));
    let late = accept_sale(&mut harness, 170_000, "alice").expect_err("too late");
    assert_eq!(
        (late.code(), late.http_status()),
        ("confirmation_closed", 409)
    );
    assert_eq!(harness.run(180_000, early), Ok(Outcome::WinnerDefaulted));
    assert_eq!(confirmation(&harness).as_deref(), Some("defaulted"));
    assert_eq!(
        deposits_of(&harness),
        vec![
            entry("alice", 500, "forfeited"),
            entry("bob", 500, "refund")
        ]
    );
    let steps: Vec<&str> = harness
        .a1()
        .audit
        .iter()
        .map(|record| record.action.as_str())
        .collect();
    let tail = &steps[steps.len() - 4..];
    assert_eq!(
        tail,
        [
            "sold",
            "confirmation_pending",
            "confirmation_lapsed",
            "defaulted"
        ]
    );
    assert!(harness.a1().is_settled());
}

// Winner's confirmation: without `winner_confirm_ms` a sale has no confirmation step.
#[test]
fn without_a_window_a_sale_is_settled_at_close() {
    let mut harness = sale_with(SaleRules::default());
    try_qualify(&mut harness, "alice").expect("qualified");
    harness.accept(20_000, "alice", 1000);
    harness.advance(100_001);
    assert_eq!(confirmation(&harness), None);
    assert!(harness.a1().is_settled());
    let refused = accept_sale(&mut harness, 110_000, "alice").expect_err("nothing to confirm");
    assert_eq!(refused.code(), "confirmation_closed");
    let _ = token_hash(1);
}

// Every addition "is an auction parameter, off by default": parameters that do not fit
// together (a sealed window without the sealed mode, a cap mode past the cap without a
// cap) are refused at creation, naming the field, and nothing is created.
#[test]
fn rules_that_do_not_fit_together_are_refused_at_creation() {
    let mut harness = Harness::default();
    let cases = [
        SaleRules {
            sealed_window_ms: Some(60_000),
            ..SaleRules::default()
        },
        SaleRules {
            cap_mode: gavel_kernel::sale::CapMode::SealedBid,
            sealed_window_ms: Some(60_000),
            sealed_ceiling: Some(5_000),
            ..SaleRules::default()
        },
        SaleRules {
            exclusive_group: Some("east bank".to_string()),
            ..SaleRules::default()
        },
    ];
    for rules in cases {
        let command = Command::CreateAuctionWithRules {
            spec: spec(AUCTION),
            rules: Box::new(rules.clone()),
        };
        let refused = harness.run(0, command).expect_err("refused");
        assert_eq!(refused.code(), "invalid_request", "{rules:?}");
    }
    assert!(harness.state.auctions.is_empty());
}

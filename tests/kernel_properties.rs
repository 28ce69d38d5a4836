//! Random command sequences run against the kernel and against a small reference model
//! written from docs/RULES.md (`common_kernel::model`: phase, price, leader, deadline,
//! winner), which predicts every answer and every auction's state. After every step
//! the kernel must agree with the model and `invariants::check_auction` must hold; at
//! the end, replaying the envelope log on a fresh `State` must give the same answers and
//! the same state. proptest prints the failing scenario (its `seed` included) and
//! shrinks it.
//!
//! Auctions run under random version 1.1 rules too (docs/RULES.md "Deposits", "Who may
//! bid in timed bidding", "Winner's confirmation"): a deposit that one bidder falls short
//! of (refused qualification), timed bidding for listing bidders only, and a winner's
//! confirmation window, with the winner's confirmations and operators' defaults among the
//! steps; the deposits' dispositions are checked against the outcome. They mix the other
//! modes of version 1.1 as well ("Proxy bidding", "Mutually exclusive parcels", "Sealed
//! quote", "Secondary bidding", "Signed bids"): proxy maximums set, raised and withdrawn;
//! both auctions of a scenario in one exclusive group; `cap_mode` `sealed_bid` (either
//! rule) or `secondary`, with quotes and secondary bids among the steps; auctions that
//! require signed bids, with valid, invalid and missing Ed25519 signatures. What the model
//! predicts exactly and what is left to invariants is listed in `common_kernel::model`.
//! The invariants of those modes are checked after every step as well: a void bid never
//! counts (the price and the leader are those of the newest bid that is not void, and the
//! void bids are exactly the excluded bidders'); a proxy bid is never above its maximum
//! nor the cap; no excluded bidder wins; no sealed quote amount is in any event, nor, while
//! the auction is not closed, in any view, control read, kernel record read, result, bid
//! or audit line of it.
//!
//! The scenarios also carry exchange records (`Command::Exchange`, keys drawn from a few so
//! that they repeat), exports and prunes: after every step the exchange ledger must keep
//! its rules (docs/DESIGN.md decision 6), checked against what the test itself kept of
//! the keys and the outbox: each key applied once until it is pruned, outbox records
//! numbered in the order they were put there, one per fresh record and one per auction
//! closed (and per later change of its winner's confirmation) once the spool is in use, none lost but by an export, and never more than
//! `MAX_OUTBOX`.

mod common_kernel;

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common_kernel::model::{bidder_id, nonce_is_valid, takes_bids, ModelAuction, ModelWinner};
use common_kernel::model::{rules_commitment, rules_draw};
use common_kernel::model::{OperatorAction, Signing, View};
use common_kernel::{replay_with_ledger, spec, Harness};
use ed25519_dalek::{Signer, SigningKey};
use gavel::model::views::{AuctionView, BidView, ControlAuctionView, ResultView};
use gavel_kernel::invariants::check_auction;
use gavel_kernel::ledger::{ExchangeLedger, OutboxStatus, MAX_OUTBOX};
use gavel_kernel::lottery::Lottery;
use gavel_kernel::sale::TimedBiddingEntry;
use gavel_kernel::sale::{CapMode, ConfirmationStatus, SaleRules, SealedRule, SecondarySpec};
use gavel_kernel::sale_result::SaleResult;
use gavel_kernel::signatures::bid_text;
use gavel_kernel::Phase;
use gavel_kernel::{apply, Applied, Auction, AuctionSpec, Command, Effect, Envelope};
use gavel_kernel::{Event, EventKind, IncrementRule, Outcome, Receipt, Rejection};
use proptest::prelude::*;

/// Bidders b0 and b1 keep their sessions, b2's expires (or is closed), b3's expires at
/// 1 ms.
const BIDDERS: usize = 4;

// ----- Generated scenarios ------------------------------------------------------------

#[derive(Debug, Clone)]
enum Amount {
    /// The model's minimum plus whole increments.
    Steps(u64),
    /// The model's minimum plus a small offset, often off the increment grid.
    Offset(i64),
    Raw(u64),
}

/// A bid. `bidder: None` is whichever of b0 and b1 does not lead; `reused_request:
/// Some(n)` uses request_id `r{n}`, shared by all of that bidder's bids. `signing`
/// applies where the auction requires signed bids, and elsewhere too when `sign_anyway`.
#[derive(Debug, Clone)]
struct Bid {
    auction: usize,
    bidder: Option<usize>,
    amount: Amount,
    reused_request: Option<u8>,
    signing: Signing,
    sign_anyway: bool,
}

/// A proxy maximum set or raised: its amount as `Amount` (from the model's minimum), and
/// `reused_request: Some(n)` uses request_id `p{n}`.
#[derive(Debug, Clone)]
struct Proxy {
    auction: usize,
    bidder: Option<usize>,
    max: Amount,
    reused_request: Option<u8>,
}

/// A sealed quote's amount: the cap itself, `QUOTE_BASE` above it plus a little (so that
/// quotes tie, and are told apart from every other number in a serialized text), above
/// the ceiling, or below the cap.
#[derive(Debug, Clone, Copy)]
enum QuoteAmount {
    Cap,
    Above(u64),
    OverCeiling,
    UnderCap,
}

/// A sealed quote or a secondary bid; `reused_request: Some(n)` uses request_id `q{n}`
/// (a quote) or `r0` / `s{n}` (a secondary bid: `r0` may be a price bid's).
#[derive(Debug, Clone)]
struct AfterCap<A> {
    auction: usize,
    bidder: Option<usize>,
    amount: A,
    reused_request: Option<u8>,
}

/// A secondary amount: the model's minimum plus whole increments, `max`, or a small
/// offset from the minimum.
#[derive(Debug, Clone, Copy)]
enum SecondaryAmount {
    Steps(u64),
    Max,
    Offset(i64),
}

/// Sealed quotes range from the cap to this far above it; quotes the test submits above
/// the cap lie at least `QUOTE_BASE` above it.
const QUOTE_BASE: u64 = 7_000_000;
const CEILING_ABOVE_CAP: u64 = QUOTE_BASE + 3;

/// What reaching the cap leads to.
#[derive(Debug, Clone, Copy)]
enum CapChoice {
    Lottery,
    Sealed {
        window_ms: u64,
        closest: bool,
    },
    Secondary {
        start: u64,
        increment: u64,
        span: u64,
    },
}

/// The version 1.1 rules of a generated auction.
#[derive(Debug, Clone, Copy)]
struct Rules {
    deposit: bool,
    listing_bidders_only: bool,
    winner_confirm_ms: Option<u64>,
    cap: CapChoice,
    signed: bool,
}

/// The deposit an auction with `Rules::deposit` requires; b3 pays only half of it.
const DEPOSIT: u64 = 100;

impl Rules {
    /// The auction's rules, in exclusive group `g1` when `grouped`.
    fn sale_rules(self, spec: &AuctionSpec, grouped: bool) -> SaleRules {
        let cap = spec.price_cap.unwrap_or_default();
        let (cap_mode, sealed_window_ms, sealed_ceiling, sealed_rule, secondary) = match self.cap {
            CapChoice::Lottery => (CapMode::Lottery, None, None, None, None),
            CapChoice::Sealed { window_ms, closest } => {
                let rule = if closest {
                    SealedRule::ClosestToAverage
                } else {
                    SealedRule::Highest
                };
                let ceiling = Some(cap + CEILING_ABOVE_CAP);
                (
                    CapMode::SealedBid,
                    Some(window_ms),
                    ceiling,
                    Some(rule),
                    None,
                )
            }
            CapChoice::Secondary {
                start,
                increment,
                span,
            } => {
                let secondary = SecondarySpec {
                    label: "配建面积".to_string(),
                    unit: "m2".to_string(),
                    start,
                    increment,
                    max: start + span,
                };
                (CapMode::Secondary, None, None, None, Some(secondary))
            }
        };
        SaleRules {
            cap_mode,
            sealed_window_ms,
            sealed_ceiling,
            sealed_rule,
            secondary,
            require_signed_bids: self.signed,
            exclusive_group: grouped.then(|| "g1".to_string()),
            deposit: if self.deposit { DEPOSIT } else { 0 },
            timed_bidding_entry: if self.listing_bidders_only {
                TimedBiddingEntry::ListingBidders
            } else {
                TimedBiddingEntry::AllQualified
            },
            winner_confirm_ms: self.winner_confirm_ms,
        }
    }
}

/// One step's command. Auction indexes wrap around the number of auctions.
#[derive(Debug, Clone)]
enum Action {
    /// (auction, bidder): the winner's confirmation of a sale.
    AcceptSale(usize, usize),
    /// An operator declares the winner of a sale in default.
    DefaultWinner(usize),
    Bid(Bid),
    SetProxy(Proxy),
    /// (auction, bidder)
    WithdrawProxy(usize, usize),
    /// A sealed quote in an auction under `sealed_bid`, a secondary bid under
    /// `secondary`; the other one when `true` (and in a lottery auction).
    AfterCap(AfterCap<(QuoteAmount, SecondaryAmount)>, bool),
    /// The previous bid command again, unchanged: a client's retry.
    RetryLastBid,
    /// (auction, bidder, nonce); `Confirm` without a nonce when it is empty.
    Confirm(usize, usize, &'static str),
    Advance(usize),
    Operator(usize, OperatorAction),
    /// A leader change after a leaderless gap of this many milliseconds.
    Takeover(u64),
    CloseSessionOfBidder2,
    /// An exchange record: its key `k{n}` (a few, so keys repeat) and what it carries.
    Exchange(u8, Carried),
    /// The outbox exported through its newest record but this many.
    ExchangeExported(u64),
    /// Keys applied longer ago than this many milliseconds forgotten.
    ExchangePrune(u64),
}

/// What an exchange record carries: a command the exchange may carry (a new bidder, a
/// termination of an auction that does not exist), or one it may not (a checkpoint).
#[derive(Debug, Clone, Copy)]
enum Carried {
    NewBidder,
    TerminateUnknown,
    Checkpoint,
}

#[derive(Debug, Clone)]
struct Scenario {
    seed: u64,
    /// Each auction, whether b2 is qualified for it (b0, b1 always are, b3 unless the
    /// auction takes a deposit), and its version 1.1 rules.
    auctions: Vec<(AuctionSpec, bool, Rules)>,
    /// Whether the auctions form one exclusive group.
    grouped: bool,
    bidder_2_expires_at_ms: u64,
    /// Wait, then act.
    steps: Vec<(u64, Action)>,
}

fn cap_choice() -> impl Strategy<Value = CapChoice> {
    let sealed = (100..=1200u64, any::<bool>())
        .prop_map(|(window_ms, closest)| CapChoice::Sealed { window_ms, closest });
    let secondary =
        (1..=5u64, 1..=3u64, 0..=10u64).prop_map(|(start, increment, span)| CapChoice::Secondary {
            start,
            increment,
            span,
        });
    prop_oneof![2 => Just(CapChoice::Lottery), 1 => sealed, 1 => secondary]
}

fn rules() -> impl Strategy<Value = Rules> {
    let window = prop_oneof![2 => Just(None), 1 => (20..=400u64).prop_map(Some)];
    let signed = prop::bool::weighted(0.2);
    (any::<bool>(), any::<bool>(), window, cap_choice(), signed).prop_map(
        |(deposit, listing, winner_confirm_ms, cap, signed)| Rules {
            deposit,
            listing_bidders_only: listing,
            winner_confirm_ms,
            cap,
            signed,
        },
    )
}

/// A cap mode other than the lottery needs a cap: three increments above the start
/// when the spec drew none.
fn auction_spec() -> impl Strategy<Value = (AuctionSpec, bool, Rules)> {
    (base_auction_spec(), rules()).prop_map(|((mut spec, b2), rules)| {
        if !matches!(rules.cap, CapChoice::Lottery) && spec.price_cap.is_none() {
            let cap = spec.start_price + 3 * spec.increment;
            spec.price_cap = Some(cap);
            spec.reserve_price = spec.reserve_price.map(|reserve| reserve.min(cap));
        }
        (spec, b2, rules)
    })
}

fn base_auction_spec() -> impl Strategy<Value = (AuctionSpec, bool)> {
    let prices = (
        1..=50u64,
        1..=10u64,
        any::<bool>(),
        prop::option::of(0..=8u64),
    );
    let times = (prop::option::of(1..=12u64), 0..=300u64, 300..=1500u64);
    let durations = (50..=400u64, 100..=600u64, 50..=400u64, any::<bool>());
    (prices, times, durations).prop_map(|(prices, times, durations)| {
        let (start_price, increment, at_least, reserve_steps) = prices;
        let (cap_steps, opens_at_ms, listing_ms) = times;
        let (countdown_ms, cap_confirm_ms, failover_grace_ms, bidder_2_qualified) = durations;
        let price_cap = cap_steps.map(|steps| start_price + steps * increment);
        let reserve = reserve_steps.map(|steps| start_price + steps * increment);
        let spec = AuctionSpec {
            start_price,
            increment,
            increment_rule: if at_least {
                IncrementRule::AtLeast
            } else {
                IncrementRule::Multiple
            },
            reserve_price: reserve.map(|reserve| price_cap.map_or(reserve, |cap| reserve.min(cap))),
            price_cap,
            cap_confirm_ms,
            failover_grace_ms,
            listing_opens_at_ms: opens_at_ms,
            listing_closes_at_ms: opens_at_ms + listing_ms,
            countdown_ms,
            ..spec("unnamed")
        };
        (spec, bidder_2_qualified)
    })
}

fn operator_action() -> impl Strategy<Value = OperatorAction> {
    prop_oneof![
        2 => Just(OperatorAction::Suspend),
        4 => Just(OperatorAction::Resume),
        2 => (1..=15u64).prop_map(OperatorAction::ChangeIncrement),
    ]
}

/// No nonce, one of two, or one the rules refuse.
fn nonce() -> impl Strategy<Value = &'static str> {
    prop_oneof![4 => Just(""), 3 => Just("n1"), 2 => Just("n-2_x"), 1 => Just("not a nonce")]
}

fn carried() -> impl Strategy<Value = Carried> {
    prop_oneof![
        3 => Just(Carried::NewBidder),
        1 => Just(Carried::TerminateUnknown),
        1 => Just(Carried::Checkpoint),
    ]
}

fn signing() -> impl Strategy<Value = Signing> {
    prop_oneof![
        8 => Just(Signing::Valid),
        1 => Just(Signing::Unsigned),
        1 => Just(Signing::Invalid),
    ]
}

fn after_cap_actions() -> impl Strategy<Value = Action> {
    let reused = prop_oneof![3 => Just(None), 2 => (0..3u8).prop_map(Some)];
    let bidder = prop_oneof![8 => 0..2usize, 3 => Just(2usize), 1 => Just(3usize)];
    let bid_by = prop_oneof![Just(None), bidder.prop_map(Some)];
    let quote = prop_oneof![
        2 => Just(QuoteAmount::Cap),
        6 => (0..3u64).prop_map(QuoteAmount::Above),
        1 => Just(QuoteAmount::OverCeiling),
        1 => Just(QuoteAmount::UnderCap),
    ];
    let secondary = prop_oneof![
        6 => (0..=2u64).prop_map(SecondaryAmount::Steps),
        2 => Just(SecondaryAmount::Max),
        2 => (-2..=3i64).prop_map(SecondaryAmount::Offset),
    ];
    (
        0..2usize,
        bid_by,
        (quote, secondary),
        reused,
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(auction, bidder, (quote, secondary), reused_request, other_mode)| {
                Action::AfterCap(
                    AfterCap {
                        auction,
                        bidder,
                        amount: (quote, secondary),
                        reused_request,
                    },
                    other_mode,
                )
            },
        )
}

fn proxy_actions() -> impl Strategy<Value = Action> {
    let max = prop_oneof![
        6 => (0..=8u64).prop_map(Amount::Steps),
        3 => (-3..=9i64).prop_map(Amount::Offset),
        1 => (1..=400u64).prop_map(Amount::Raw),
    ];
    let reused = prop_oneof![3 => Just(None), 2 => (0..3u8).prop_map(Some)];
    let bidder = prop_oneof![8 => 0..2usize, 3 => Just(2usize), 1 => Just(3usize)];
    let bid_by = prop_oneof![Just(None), bidder.clone().prop_map(Some)];
    prop_oneof![
        3 => (0..2usize, bid_by, max, reused).prop_map(|(auction, bidder, max, reused_request)| {
            Action::SetProxy(Proxy { auction, bidder, max, reused_request })
        }),
        1 => (0..2usize, bidder).prop_map(|(auction, bidder)| Action::WithdrawProxy(auction, bidder)),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    let amount = prop_oneof![
        6 => (0..=3u64).prop_map(Amount::Steps),
        3 => (-3..=6i64).prop_map(Amount::Offset),
        1 => (1..=400u64).prop_map(Amount::Raw),
    ];
    let reused = prop_oneof![3 => Just(None), 2 => (0..3u8).prop_map(Some)];
    let auction = 0..2usize;
    let bidder = prop_oneof![8 => 0..2usize, 3 => Just(2usize), 1 => Just(3usize)];
    let bid_by = prop_oneof![Just(None), bidder.clone().prop_map(Some)];
    let signed = (signing(), prop::bool::weighted(0.1));
    prop_oneof![
        30 => (auction.clone(), bid_by, amount, reused, signed).prop_map(|(auction, bidder, amount, reused_request, (signing, sign_anyway))| {
            Action::Bid(Bid { auction, bidder, amount, reused_request, signing, sign_anyway })
        }),
        8 => proxy_actions(),
        12 => after_cap_actions(),
        4 => Just(Action::RetryLastBid),
        3 => (auction.clone(), 0..3usize).prop_map(|(auction, bidder)| Action::AcceptSale(auction, bidder)),
        1 => auction.clone().prop_map(Action::DefaultWinner),
        6 => (auction.clone(), bidder, nonce()).prop_map(|(auction, bidder, nonce)| Action::Confirm(auction, bidder, nonce)),
        3 => auction.clone().prop_map(Action::Advance),
        8 => (auction.clone(), operator_action()).prop_map(|(auction, action)| Action::Operator(auction, action)),
        2 => (0..=600u64).prop_map(Action::Takeover),
        1 => Just(Action::CloseSessionOfBidder2),
        4 => (0..4u8, carried()).prop_map(|(key, carried)| Action::Exchange(key, carried)),
        1 => (0..3u64).prop_map(Action::ExchangeExported),
        1 => (0..=400u64).prop_map(Action::ExchangePrune),
        // Rarely a terminate: it ends the interesting part of an auction's life.
        1 => (auction, 0..5u8).prop_map(|(auction, roll)| match roll {
            0 => Action::Operator(auction, OperatorAction::Terminate),
            _ => Action::Advance(auction),
        }),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let wait_ms = prop_oneof![3 => 0..=25u64, 1 => 26..=200u64];
    let steps = prop::collection::vec((wait_ms, action()), 5..=80);
    let auctions = prop::collection::vec(auction_spec(), 1..=2);
    (any::<u64>(), auctions, any::<bool>(), 100..=4000u64, steps).prop_map(
        |(seed, auctions, grouped, bidder_2_expires_at_ms, steps)| Scenario {
            seed,
            grouped: grouped && auctions.len() > 1,
            auctions,
            bidder_2_expires_at_ms,
            steps,
        },
    )
}

// ----- Running a scenario against both ------------------------------------------------

const UPDATED: Result<Outcome, Rejection> = Ok(Outcome::AuctionUpdated);
const UNAUTHENTICATED: Result<Outcome, Rejection> = Err(Rejection::Unauthenticated);

struct Run {
    harness: Harness,
    /// The answers of the commands after the setup, in order.
    results: Vec<Result<Outcome, Rejection>>,
    now_ms: u64,
    seed: u64,
    fresh_requests: u64,
    last_bid: Option<(usize, usize, u64, String, Signing)>,
    /// Each bidder's signing key; b3's is registered nowhere.
    signing_keys: Vec<SigningKey>,
    /// Every sealed quote amount submitted and accepted so far.
    quoted: BTreeSet<u64>,
    model: Vec<ModelAuction>,
    session_expiry_ms: [Option<u64>; BIDDERS],
    /// Accepted requests: (bidder, request_id) to (auction, amount, receipt).
    requests: BTreeMap<(usize, String), (usize, u64, Receipt)>,
    /// Bidder numbers per auction, as the kernel handed them out.
    numbers: Vec<BTreeMap<usize, u32>>,
    /// Per auction, the lottery commitment the kernel published at cap entry: it must
    /// never change, and the draw must reveal its seed.
    commitments: Vec<Option<[u8; 32]>>,
    /// What the last command answered, with its events and effects.
    last_applied: Option<Applied>,
    /// The exchange keys applied and not forgotten, with when the ledger says they were
    /// applied.
    keys: BTreeMap<String, u64>,
    /// The exchange record the last step applied for the first time, with the status its
    /// outbound record must carry.
    fresh_record: Option<(String, OutboxStatus)>,
    /// Whether an exchange record was ever applied: the spool is in use from then on.
    spool_in_use: bool,
    /// Outbound records taken out by exports so far.
    exported: u64,
    /// New bidders registered through the exchange so far.
    exchange_bidders: u64,
}

impl Run {
    fn apply(&mut self, command: Command) -> Result<Outcome, Rejection> {
        let applied = self.harness.run_with(self.now_ms, self.seed, "op", command);
        self.results.push(applied.result.clone());
        self.last_applied = Some(applied.clone());
        applied.result
    }

    fn id(&self, auction: usize) -> String {
        self.model[auction].spec.id.clone()
    }

    fn start(scenario: &Scenario) -> Run {
        let expiry_ms = [u64::MAX, u64::MAX, scenario.bidder_2_expires_at_ms, 1];
        let mut run = Run {
            harness: Harness::default(),
            results: Vec::new(),
            now_ms: 0,
            seed: scenario.seed,
            fresh_requests: 0,
            last_bid: None,
            signing_keys: (0..BIDDERS)
                .map(|bidder| SigningKey::from_bytes(&[bidder as u8 + 1; 32]))
                .collect(),
            quoted: BTreeSet::new(),
            model: Vec::new(),
            session_expiry_ms: expiry_ms.map(Some),
            requests: BTreeMap::new(),
            numbers: Vec::new(),
            commitments: Vec::new(),
            last_applied: None,
            keys: BTreeMap::new(),
            fresh_record: None,
            spool_in_use: false,
            exported: 0,
            exchange_bidders: 0,
        };
        for (bidder, expires_at_ms) in expiry_ms.into_iter().enumerate() {
            run.harness
                .register_until(&bidder_id(bidder), expires_at_ms);
        }
        // Signed bids: b0, b1 and b2 register their keys; b3 has none.
        for bidder in 0..3 {
            let public_key = run.signing_keys[bidder].verifying_key();
            let command = Command::RegisterBidderKey {
                bidder_id: bidder_id(bidder),
                algorithm: "ed25519".to_string(),
                public_key: STANDARD.encode(public_key.as_bytes()),
            };
            assert!(run.harness.run(0, command).is_ok());
        }
        for (index, (spec, bidder_2_qualified, rules)) in scenario.auctions.iter().enumerate() {
            let id = format!("lot{index}");
            let candidates = [0, 1, 2, 3].into_iter();
            let candidates = candidates.filter(|&bidder| bidder != 2 || *bidder_2_qualified);
            let spec = AuctionSpec { id, ..spec.clone() };
            let rules = rules.sale_rules(&spec, scenario.grouped);
            run.create(index, spec, rules, candidates.collect());
        }
        run
    }

    /// Creates auction `index` under `rules`, records the deposits (b3 pays half), and
    /// qualifies the candidates whose deposits reach the auction's.
    fn create(
        &mut self,
        index: usize,
        spec: AuctionSpec,
        rules: SaleRules,
        candidates: Vec<usize>,
    ) {
        if rules.is_default() {
            self.harness.create(0, spec.clone());
        } else {
            self.harness
                .create_with_rules(0, spec.clone(), rules.clone());
        }
        let mut qualified = BTreeSet::new();
        for &bidder in &candidates {
            let paid = if bidder == 3 {
                rules.deposit / 2
            } else {
                rules.deposit
            };
            if paid > 0 {
                let deposit = Command::RecordDeposit {
                    auction_id: spec.id.clone(),
                    bidder_id: bidder_id(bidder),
                    amount: paid,
                    reference: format!("bank-{index}-{bidder}"),
                };
                assert!(self.harness.run(0, deposit).is_ok());
            }
            if paid < rules.deposit {
                let qualify = Command::Qualify {
                    auction_id: spec.id.clone(),
                    bidder_id: bidder_id(bidder),
                };
                let refused = self
                    .harness
                    .run(0, qualify)
                    .expect_err("short of the deposit");
                assert_eq!(refused.code(), "deposit_missing");
            } else {
                qualified.insert(bidder);
            }
        }
        let mut numbers = BTreeMap::new();
        for &bidder in &qualified {
            // Each qualification draws its number from its own seed.
            let seed = self.seed.wrapping_add((index * BIDDERS + bidder) as u64);
            let number = self.harness.qualify(seed, &spec.id, &bidder_id(bidder));
            numbers.insert(bidder, number);
        }
        let distinct: BTreeSet<&u32> = numbers.values().collect();
        assert_eq!(distinct.len(), numbers.len(), "bidder numbers are unique");
        self.numbers.push(numbers);
        self.commitments.push(None);
        let mut model = ModelAuction::with_rules(spec, rules, qualified);
        model.catch_up(0);
        self.model.push(model);
    }

    fn session_valid(&self, bidder: usize) -> bool {
        self.session_expiry_ms[bidder].is_some_and(|expires_at_ms| expires_at_ms > self.now_ms)
    }

    /// The kernel's auction as it stands at `now_ms`: a copy of the state brought up to
    /// date by an `Advance`, so closes the kernel applies lazily do not hide.
    fn observe(&self, auction: usize) -> Auction {
        let (mut copy, auction_id) = (self.harness.state.clone(), self.id(auction));
        let command = Command::Advance {
            auction_id: auction_id.clone(),
        };
        // Another seed than the log's: a draw depends only on the seed committed at cap
        // entry, never on the entry that closes the confirm window.
        let (now_ms, seed, actor) = (self.now_ms, !self.seed, "observer".to_string());
        apply(
            &mut copy,
            &Envelope {
                now_ms,
                seed,
                actor,
                command,
            },
        );
        copy.auctions[&auction_id].clone()
    }

    fn step(&mut self, wait_ms: u64, action: &Action) {
        // The exchange's own commands (exports, prunes, repeated or refused records) do not
        // move the kernel's clock (`ledger`), and the takeover rule's leaderless gap
        // begins at that clock; they come at the time of the command before, where the
        // model's gap begins too.
        let ledger_only = matches!(
            action,
            Action::Exchange(..) | Action::ExchangeExported(_) | Action::ExchangePrune(_)
        );
        if !ledger_only {
            self.now_ms += wait_ms;
        }
        if let Action::Takeover(gap_ms) = action {
            return self.takeover(*gap_ms);
        }
        let now_ms = self.now_ms;
        self.model
            .iter_mut()
            .for_each(|model| model.catch_up(now_ms));
        let count = self.model.len();
        match action {
            Action::Bid(bid) => self.bid(bid),
            Action::SetProxy(proxy) => self.set_proxy(proxy),
            Action::WithdrawProxy(auction, bidder) => self.withdraw_proxy(auction % count, *bidder),
            Action::AfterCap(after_cap, other_mode) => {
                let auction = after_cap.auction % count;
                let sealed = self.model[auction].rules.cap_mode == CapMode::SealedBid;
                let (quote, secondary) = after_cap.amount;
                let (bidder, reused_request) = (after_cap.bidder, after_cap.reused_request);
                match sealed != *other_mode {
                    true => self.quote(&AfterCap {
                        auction,
                        bidder,
                        amount: quote,
                        reused_request,
                    }),
                    false => {
                        let amount = secondary;
                        self.secondary_bid(&AfterCap {
                            auction,
                            bidder,
                            amount,
                            reused_request,
                        })
                    }
                }
            }
            Action::RetryLastBid => match self.last_bid.clone() {
                Some((auction, bidder, amount, request_id, signing)) => {
                    self.place_bid(auction, bidder, amount, request_id, signing)
                }
                // Every step applies a command: the model has caught up to its time.
                None => self.step(0, &Action::Advance(0)),
            },
            Action::Confirm(auction, bidder, nonce) => {
                self.confirm(auction % count, *bidder, nonce)
            }
            Action::Advance(auction) => {
                let auction_id = self.id(auction % count);
                assert_eq!(self.apply(Command::Advance { auction_id }), UPDATED);
            }
            Action::Operator(auction, action) => self.operator(auction % count, *action),
            Action::AcceptSale(auction, bidder) => self.accept_sale(auction % count, *bidder),
            Action::DefaultWinner(auction) => {
                let auction = auction % count;
                let expected = self.model[auction].default_winner();
                let command = Command::DefaultWinner {
                    auction_id: self.id(auction),
                    reason: "did not sign".to_string(),
                };
                let answer = self.apply(command).map_err(|rejection| rejection.code());
                assert_eq!(answer, expected, "default");
            }
            Action::CloseSessionOfBidder2 => {
                // Closing a live session succeeds; closing one that is gone or expired is
                // refused as unauthenticated. Either way it is gone afterwards.
                let expected = if self.session_valid(2) {
                    Ok(Outcome::SessionClosed)
                } else {
                    Err(Rejection::Unauthenticated)
                };
                self.session_expiry_ms[2] = None;
                let token_hash = self.harness.token("b2");
                let closed = self.apply(Command::CloseSession { token_hash });
                assert_eq!(closed, expected);
            }
            Action::Exchange(key, carried) => self.exchange(format!("k{key}"), *carried),
            Action::ExchangeExported(back) => {
                let through = self.harness.ledger.next_seq.saturating_sub(1 + back);
                let before = self.harness.ledger.outbox.clone();
                let answer = self.apply(Command::ExchangeExported { through });
                assert_eq!(answer, Ok(Outcome::ExchangeExported { through }));
                self.exported += before.range(..=through).count() as u64;
            }
            Action::ExchangePrune(retention_ms) => {
                let before_ms = now_ms.saturating_sub(*retention_ms);
                let forgotten = self.keys.values().filter(|&&at| at < before_ms).count();
                self.keys
                    .retain(|_, applied_at_ms| *applied_at_ms >= before_ms);
                let answer = self.apply(Command::ExchangePrune {
                    retention_ms: *retention_ms,
                });
                let keys = forgotten as u64;
                assert_eq!(answer, Ok(Outcome::ExchangePruned { keys }));
            }
            Action::Takeover(_) => unreachable!("handled above"),
        }
    }

    /// An exchange record: a key not applied (or forgotten) applies its command once; a
    /// key applied before changes nothing.
    fn exchange(&mut self, key: String, carried: Carried) {
        self.exchange_bidders += 1;
        let command = match carried {
            Carried::NewBidder => Command::RegisterBidder {
                bidder_id: format!("x{}", self.exchange_bidders),
                name: "From the intranet".to_string(),
                secret_salt: format!("{:032x}", self.exchange_bidders),
                secret_hash: format!("{:064x}", self.exchange_bidders),
            },
            Carried::TerminateUnknown => Command::Terminate {
                auction_id: "not-here".to_string(),
                reason: "withdrawn".to_string(),
            },
            Carried::Checkpoint => Command::Checkpoint {
                label: "x".to_string(),
            },
        };
        let fresh = !self.keys.contains_key(&key);
        let rejected = match carried {
            _ if !fresh => None,
            Carried::NewBidder => None,
            Carried::TerminateUnknown => Some("auction_not_found"),
            Carried::Checkpoint => Some("invalid_request"),
        };
        let answer = self.apply(Command::Exchange {
            key: key.clone(),
            command: Box::new(command),
        });
        let expected = Outcome::ExchangeApplied {
            duplicate: !fresh,
            rejected: rejected.map(str::to_string),
        };
        assert_eq!(answer, Ok(expected), "record {key}");
        if fresh {
            let entry = &self.harness.ledger.applied[&key];
            // The ledger notes when the record was applied.
            assert_eq!(entry.applied_at_ms, self.now_ms, "{key} applied at");
            self.keys.insert(key.clone(), self.now_ms);
            let status = match rejected {
                None => OutboxStatus::Applied,
                Some(_) => OutboxStatus::Rejected,
            };
            self.fresh_record = Some((key, status));
            self.spool_in_use = true;
        }
    }

    /// The exchange ledger's rules, after a step, against `before` (the ledger before it).
    fn check_ledger(&mut self, before: &ExchangeLedger) {
        let ledger = &self.harness.ledger;
        let applied = self
            .last_applied
            .as_ref()
            .expect("every step applies a command");
        let takeover = self.harness.last_takeover.as_ref();
        let closed = |events: &[Event]| -> Vec<(String, OutboxStatus)> {
            let closes = events
                .iter()
                .filter(|event| matches!(event.kind, EventKind::Closed | EventKind::Settled));
            closes
                .map(|event| (format!("result/{}", event.auction_id), OutboxStatus::Closed))
                .collect()
        };
        // In the order they were applied: the takeover's closes, the record, the command's.
        let mut expected = Vec::new();
        if before.active {
            expected.extend(takeover.map_or(Vec::new(), |t| closed(&t.events)));
        }
        expected.extend(self.fresh_record.take());
        if self.spool_in_use {
            expected.extend(closed(&applied.events));
        }
        assert_eq!(ledger.active, self.spool_in_use, "the spool is in use");

        // Each key applied once: the ledger holds exactly the keys the test kept.
        let keys: BTreeMap<String, u64> = ledger
            .applied
            .iter()
            .map(|(key, entry)| (key.clone(), entry.applied_at_ms))
            .collect();
        assert_eq!(keys, self.keys);

        // New records numbered on from the last, in order, none skipped.
        assert_eq!(
            ledger.next_seq,
            before.next_seq + expected.len() as u64,
            "expected {expected:?}; the outbox: {:?}; events {:?}",
            ledger.outbox,
            applied.events
        );
        let new: Vec<(u64, (String, OutboxStatus))> = ledger
            .outbox
            .range(before.next_seq..)
            .map(|(seq, record)| (*seq, (record.key.clone(), record.status)))
            .collect();
        let numbered: Vec<(u64, (String, OutboxStatus))> =
            (before.next_seq..).zip(expected).collect();
        assert_eq!(new, numbered, "the records this step put in the outbox");
        let announced: Vec<u64> = takeover
            .into_iter()
            .chain([applied])
            .flat_map(|applied| &applied.effects)
            .filter_map(|effect| match effect {
                Effect::Outbox { seq } => Some(*seq),
                _ => None,
            })
            .collect();
        let numbers: Vec<u64> = new.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(announced, numbers, "each record is announced as an effect");
        for (seq, (key, status)) in &new {
            if *status != OutboxStatus::Closed {
                continue;
            }
            // A closed auction's result: its final phase and every bid.
            let auction = &self.harness.state.auctions[key.trim_start_matches("result/")];
            let data: serde_json::Value =
                serde_json::from_str(&ledger.outbox[seq].data).expect("JSON");
            assert!(auction.phase.is_closed());
            assert_eq!(data["phase"], auction.phase.as_str());
            // The result as it stands after the step: a later confirmation, lapse or
            // default comes as a new record with the new dispositions.
            assert_eq!(
                ledger.outbox[seq].data,
                SaleResult::of(auction).to_outbox_json()
            );
            assert_eq!(
                data["bids"].as_array().map(Vec::len),
                Some(auction.bids.len())
            );
        }

        // Older records stay as they were until an export takes them out.
        for (seq, record) in &before.outbox {
            match ledger.outbox.get(seq) {
                Some(kept) => assert_eq!(kept, record, "record {seq} changed"),
                None => assert!(
                    self.exported > 0 && ledger.outbox.range(..=seq).next().is_none(),
                    "record {seq} left the outbox without an export"
                ),
            }
        }
        assert!(ledger.outbox.len() <= MAX_OUTBOX);
        assert_eq!(ledger.dropped, 0, "the outbox never filled up");
        let accounted = ledger.outbox.len() as u64 + ledger.dropped + self.exported;
        assert_eq!(
            ledger.next_seq, accounted,
            "every record is kept, dropped or exported"
        );
    }

    fn bid(&mut self, bid: &Bid) {
        let auction = bid.auction % self.model.len();
        let model = &self.model[auction];
        let bidder = bid.bidder.unwrap_or(usize::from(model.leader() == Some(0)));
        let amount = match bid.amount {
            Amount::Steps(steps) => model.minimum() + steps * model.increment,
            Amount::Offset(offset) => (model.minimum() as i64 + offset).max(1) as u64,
            Amount::Raw(raw) => raw,
        };
        self.fresh_requests += 1;
        let request_id = match bid.reused_request {
            Some(index) => format!("r{index}"),
            None => format!("fresh{}", self.fresh_requests),
        };
        let signing = match model.rules.require_signed_bids || bid.sign_anyway {
            true => bid.signing,
            false => Signing::Unsigned,
        };
        self.place_bid(auction, bidder, amount, request_id, signing);
    }

    /// The bid command: `PlaceSignedBid` with a signature over the bid's text (or, when
    /// `Invalid`, over another amount), or `PlaceBid`.
    fn bid_command(
        &self,
        auction: usize,
        bidder: usize,
        amount: u64,
        request_id: String,
        signing: Signing,
    ) -> Command {
        let (auction_id, token_hash) = (self.id(auction), self.harness.token(&bidder_id(bidder)));
        let signed_amount = match signing {
            Signing::Unsigned => {
                return Command::PlaceBid {
                    auction_id,
                    token_hash,
                    amount,
                    request_id,
                };
            }
            Signing::Valid => amount,
            Signing::Invalid => amount + 1,
        };
        let text = bid_text(&auction_id, signed_amount, &request_id);
        let signature = STANDARD.encode(self.signing_keys[bidder].sign(text.as_bytes()).to_bytes());
        Command::PlaceSignedBid {
            auction_id,
            token_hash,
            amount,
            request_id,
            signature,
        }
    }

    fn place_bid(
        &mut self,
        auction: usize,
        bidder: usize,
        amount: u64,
        request_id: String,
        signing: Signing,
    ) {
        self.last_bid = Some((auction, bidder, amount, request_id.clone(), signing));
        let before = self.observe(auction);
        let request = request_id.clone();
        let command = self.bid_command(auction, bidder, amount, request_id, signing);
        let result = self.apply(command);
        // b3 holds no key: no signature of theirs verifies.
        let signing = match (signing, bidder) {
            (Signing::Valid, 3) => Signing::Invalid,
            (signing, _) => signing,
        };
        if !self.session_valid(bidder) {
            return assert_eq!(result, UNAUTHENTICATED);
        }
        if let Some((earlier_auction, earlier_amount, receipt)) =
            self.requests.get(&(bidder, request.clone()))
        {
            let (receipt, replayed) = (receipt.clone(), true);
            let expected = match (*earlier_auction, *earlier_amount) == (auction, amount) {
                true => Ok(Outcome::BidAccepted { receipt, replayed }),
                false => Err(Rejection::RequestIdReused),
            };
            return assert_eq!(result, expected, "request_id {request} again");
        }
        let model = &mut self.model[auction];
        let refusals = model.bid_refusals(bidder, amount, signing);
        match result {
            Ok(Outcome::BidAccepted {
                receipt,
                replayed: false,
            }) => {
                assert!(
                    refusals.is_empty(),
                    "accepted {amount}; the model refuses: {refusals:?}"
                );
                // Independently of the model: the kernel's own auction was open, in time.
                let in_time = before.deadline_ms >= Some(self.now_ms);
                assert!(
                    takes_bids(before.phase) && in_time,
                    "accepted in {before:?}"
                );
                let expected = (model.bids.len() as u64 + 1, amount, self.now_ms);
                assert_eq!(
                    (receipt.seq, receipt.amount, receipt.accepted_at_ms),
                    expected
                );
                model.accept_bid(bidder, amount, self.now_ms, signing == Signing::Valid);
                self.requests
                    .insert((bidder, request), (auction, amount, receipt));
            }
            Err(rejection) => {
                let code = rejection.code();
                assert!(
                    refusals.contains(&code),
                    "{rejection:?}; the model: {refusals:?}"
                );
                let detail_right = match rejection {
                    Rejection::BelowMinimum { minimum } => minimum == model.minimum(),
                    Rejection::AboveCap { cap } => Some(cap) == model.spec.price_cap,
                    Rejection::NotOnIncrement { minimum, increment } => {
                        (minimum, increment) == (model.minimum(), model.increment)
                    }
                    Rejection::AuctionNotOpen { ref phase } => phase == model.phase.as_str(),
                    _ => true,
                };
                assert!(detail_right, "wrong detail in {rejection:?}");
            }
            other => panic!("unexpected answer to a bid: {other:?}"),
        }
    }

    /// The bidder an action names, or whichever of b0 and b1 does not lead.
    fn bidder_or_challenger(&self, auction: usize, bidder: Option<usize>) -> usize {
        bidder.unwrap_or(usize::from(self.model[auction].leader() == Some(0)))
    }

    /// Proxy bidding: setting or raising a maximum.
    fn set_proxy(&mut self, proxy: &Proxy) {
        let auction = proxy.auction % self.model.len();
        let bidder = self.bidder_or_challenger(auction, proxy.bidder);
        let model = &self.model[auction];
        let max = match proxy.max {
            Amount::Steps(steps) => model.minimum() + steps * model.increment,
            Amount::Offset(offset) => (model.minimum() as i64 + offset).max(1) as u64,
            Amount::Raw(raw) => raw,
        };
        self.fresh_requests += 1;
        let request_id = match proxy.reused_request {
            Some(index) => format!("p{index}"),
            None => format!("fresh{}", self.fresh_requests),
        };
        let (auction_id, token_hash) = (self.id(auction), self.harness.token(&bidder_id(bidder)));
        let command = Command::SetProxy {
            auction_id,
            token_hash,
            max_amount: max,
            request_id: request_id.clone(),
        };
        let result = self.apply(command);
        if !self.session_valid(bidder) {
            return assert_eq!(result, UNAUTHENTICATED);
        }
        let model = &mut self.model[auction];
        let expected = model.set_proxy(bidder, max, &request_id, self.now_ms);
        let answer = match result {
            Ok(Outcome::ProxySet {
                max_amount,
                receipt,
                replayed,
            }) => {
                let receipt = receipt.map(|r| (r.seq, r.amount, r.accepted_at_ms));
                Ok((max_amount, receipt, replayed))
            }
            Err(rejection) => Err(rejection.code()),
            other => panic!("unexpected answer to a proxy maximum: {other:?}"),
        };
        let expected = expected.map(|(max_amount, seq, replayed)| {
            let receipt = seq.map(|seq| {
                let (_, amount, at_ms) = model.bids[seq as usize - 1];
                (seq, amount, at_ms)
            });
            (max_amount, receipt, replayed)
        });
        assert_eq!(
            answer, expected,
            "proxy maximum {max} of b{bidder} ({request_id})"
        );
    }

    fn withdraw_proxy(&mut self, auction: usize, bidder: usize) {
        let (auction_id, token_hash) = (self.id(auction), self.harness.token(&bidder_id(bidder)));
        let result = self.apply(Command::WithdrawProxy {
            auction_id,
            token_hash,
        });
        if !self.session_valid(bidder) {
            return assert_eq!(result, UNAUTHENTICATED);
        }
        let expected = self.model[auction].withdraw_proxy(bidder);
        let expected = expected.map(|withdrawn| Outcome::ProxyWithdrawn { withdrawn });
        assert_eq!(
            result.map_err(|r| r.code()),
            expected,
            "withdrawal of b{bidder}'s proxy"
        );
    }

    /// Sealed quote, `cap_mode = sealed_bid`.
    fn quote(&mut self, quote: &AfterCap<QuoteAmount>) {
        let auction = quote.auction % self.model.len();
        let bidder = self.bidder_or_challenger(auction, quote.bidder);
        let model = &self.model[auction];
        // Without a cap (a lottery auction without one) the quote is of any amount.
        let cap = model.spec.price_cap.unwrap_or(model.spec.start_price + 1);
        let amount = match quote.amount {
            QuoteAmount::Cap => cap,
            QuoteAmount::Above(extra) => cap + QUOTE_BASE + extra,
            QuoteAmount::OverCeiling => cap + CEILING_ABOVE_CAP + 1,
            QuoteAmount::UnderCap => cap - 1,
        };
        self.fresh_requests += 1;
        let request_id = match quote.reused_request {
            Some(index) => format!("q{index}"),
            None => format!("fresh{}", self.fresh_requests),
        };
        let (auction_id, token_hash) = (self.id(auction), self.harness.token(&bidder_id(bidder)));
        let command = Command::SubmitSealedQuote {
            auction_id,
            token_hash,
            amount,
            request_id: request_id.clone(),
        };
        let result = self.apply(command);
        if !self.session_valid(bidder) {
            return assert_eq!(result, UNAUTHENTICATED);
        }
        let expected = self.model[auction].quote(bidder, amount, &request_id, self.now_ms);
        let expected = expected.map(|(accepted_at_ms, replayed)| Outcome::SealedQuoteAccepted {
            accepted_at_ms,
            replayed,
        });
        if expected.is_ok() {
            self.quoted.insert(amount);
        }
        assert_eq!(
            result.map_err(|r| r.code()),
            expected,
            "quote {amount} of b{bidder}"
        );
    }

    /// Secondary bidding, `cap_mode = secondary`.
    fn secondary_bid(&mut self, bid: &AfterCap<SecondaryAmount>) {
        let auction = bid.auction % self.model.len();
        let bidder = self.bidder_or_challenger(auction, bid.bidder);
        let model = &self.model[auction];
        let amount = match (&model.rules.secondary, bid.amount) {
            (None, _) => 1,
            (Some(spec), SecondaryAmount::Steps(steps)) => {
                model.secondary_minimum() + steps * spec.increment
            }
            (Some(spec), SecondaryAmount::Max) => spec.max,
            (Some(_), SecondaryAmount::Offset(offset)) => {
                (model.secondary_minimum() as i64 + offset).max(1) as u64
            }
        };
        self.fresh_requests += 1;
        let request_id = match bid.reused_request {
            Some(0) => "r0".to_string(),
            Some(index) => format!("s{index}"),
            None => format!("fresh{}", self.fresh_requests),
        };
        let (auction_id, token_hash) = (self.id(auction), self.harness.token(&bidder_id(bidder)));
        let command = Command::PlaceSecondaryBid {
            auction_id: auction_id.clone(),
            token_hash,
            secondary_amount: amount,
            request_id: request_id.clone(),
        };
        let result = self.apply(command);
        if !self.session_valid(bidder) {
            return assert_eq!(result, UNAUTHENTICATED);
        }
        let receipt =
            |seq: u64, amount: u64, accepted_at_ms: u64| gavel_kernel::command::SecondaryReceipt {
                auction_id: auction_id.clone(),
                seq,
                secondary_amount: amount,
                accepted_at_ms,
            };
        let model = &mut self.model[auction];
        let earlier = model
            .secondary
            .iter()
            .enumerate()
            .find(|(_, earlier)| earlier.bidder == bidder && earlier.request_id == request_id);
        let expected = match earlier {
            Some((index, earlier)) if earlier.amount == amount => {
                Ok(Outcome::SecondaryBidAccepted {
                    receipt: receipt(index as u64 + 1, amount, earlier.at_ms),
                    replayed: true,
                })
            }
            Some(_) => Err("request_id_reused"),
            None if self.requests.contains_key(&(bidder, request_id.clone())) => {
                Err("request_id_reused")
            }
            None => model
                .secondary_bid(bidder, amount, &request_id, self.now_ms)
                .map(|seq| Outcome::SecondaryBidAccepted {
                    receipt: receipt(seq, amount, self.now_ms),
                    replayed: false,
                }),
        };
        assert_eq!(
            result.map_err(|r| r.code()),
            expected,
            "secondary bid {amount} of b{bidder}"
        );
    }

    /// Exclusive groups: every auction the kernel closed sold in this step (its `Closed`
    /// events, the takeover's first) excludes its winner from the group's other
    /// auctions that are not closed, in the order of their ids. The winner is the one the
    /// kernel drew (`check_winner` checks it against the rules).
    fn apply_exclusions(&mut self, grouped: bool) {
        if !grouped {
            return;
        }
        let takeover = self.harness.last_takeover.iter();
        let applied = self.last_applied.iter();
        let events = takeover
            .chain(applied)
            .flat_map(|applied| applied.events.iter());
        let closed: Vec<String> = events
            .filter(|event| event.kind == EventKind::Closed)
            .map(|event| event.auction_id.clone())
            .collect();
        for auction_id in closed {
            let Some(auction) = self
                .model
                .iter()
                .position(|model| model.spec.id == auction_id)
            else {
                continue;
            };
            if self.model[auction].phase != Phase::Sold {
                continue;
            }
            let winner = &self.harness.state.auctions[&auction_id].winner;
            let winner = winner.as_ref().expect("a sold auction has a winner");
            let bidder: usize = winner.bidder_id[1..].parse().expect("b{n}");
            let now_ms = self.now_ms;
            for sibling in (0..self.model.len()).filter(|&sibling| sibling != auction) {
                let model = &mut self.model[sibling];
                if !model.phase.is_closed() {
                    model.exclude(bidder, now_ms);
                }
            }
        }
    }

    /// The invariants of the version 1.1 modes, after every step, on the kernel's
    /// auction as it stands (`observed`) and as the state holds it (`real`).
    fn check_sale_invariants(&self, auction: usize, observed: &Auction, real: &Auction) {
        let model = &self.model[auction];
        for auction in [observed, real] {
            // A void bid never counts: the price and the leader are the newest bid that
            // is not void, and exactly the excluded bidders' bids are void.
            let counted = auction
                .bids
                .iter()
                .rev()
                .find(|bid| !auction.sale.voided.contains(&bid.seq));
            let counted = counted.map(|bid| (bid.bidder_id.clone(), bid.amount));
            let highest = auction
                .highest_bid()
                .map(|bid| (bid.bidder_id.clone(), bid.amount));
            assert_eq!(
                highest, counted,
                "the leader and price come from bids that count"
            );
            for bid in &auction.bids {
                let excluded = auction.sale.excluded.contains(&bid.bidder_id);
                assert_eq!(
                    auction.is_void(bid.seq),
                    excluded,
                    "void exactly when excluded"
                );
            }
            // A proxy never bids above its maximum, nor above the cap.
            for (seq, kept_max) in &auction.sale.proxy_bids {
                let amount = auction.bids[*seq as usize - 1].amount;
                let max = model.proxy_bids.get(seq).copied();
                assert!(
                    Some(amount) <= max && amount <= *kept_max,
                    "proxy bid {seq} above its maximum"
                );
                let cap = auction.spec.price_cap.unwrap_or(u64::MAX);
                assert!(amount <= cap, "proxy bid {seq} above the cap");
            }
            // One winner at most (an `Option`), and never an excluded bidder.
            if let Some(winner) = &auction.winner {
                assert!(
                    !auction.sale.excluded.contains(&winner.bidder_id),
                    "an excluded bidder won"
                );
            }
        }
        assert_eq!(
            (
                observed.current_price(),
                observed.highest_bid().map(|b| b.bidder_id.clone())
            ),
            (model.price(), model.leader().map(bidder_id)),
            "price and leader"
        );
        self.check_quotes_hidden(real);
    }

    /// No sealed quote amount is in anything a reader sees of the auction before its
    /// window closes: the views, the control read, the kernel record a read shows, the
    /// result, the bids, the audit trail.
    fn check_quotes_hidden(&self, real: &Auction) {
        if real.phase.is_closed() || real.sale.sealed_quotes.is_empty() {
            return;
        }
        let json = |value: serde_json::Result<String>| value.expect("encode");
        let mut readings = vec![
            json(serde_json::to_string(&AuctionView::new(real, self.now_ms))),
            json(serde_json::to_string(&ControlAuctionView::new(
                real,
                self.now_ms,
            ))),
            json(serde_json::to_string(&real.without_open_secrets())),
            json(serde_json::to_string(&ResultView::new(real))),
            SaleResult::of(real).to_outbox_json(),
        ];
        let bids = real
            .bids
            .iter()
            .map(|bid| json(serde_json::to_string(&BidView::of(real, bid))));
        readings.extend(bids);
        readings.extend(real.audit.iter().map(|record| format!("{record:?}")));
        for quote in real
            .sale
            .sealed_quotes
            .values()
            .filter(|quote| quote.amount >= QUOTE_BASE)
        {
            let amount = quote.amount.to_string();
            for reading in &readings {
                assert!(
                    !reading.contains(&amount),
                    "quote {amount} shown in {reading}"
                );
            }
        }
    }

    /// No event ever names a sealed quote's amount: a `SealedQuote` event carries the
    /// auction only, and no event's serialized form holds an amount quoted so far.
    fn check_events_hide_quotes(&self) {
        let takeover = self.harness.last_takeover.iter();
        let applied = self.last_applied.iter();
        for event in takeover
            .chain(applied)
            .flat_map(|applied| applied.events.iter())
        {
            let text = serde_json::to_string(event).expect("encode");
            if event.kind == EventKind::SealedQuote {
                let bare =
                    serde_json::json!({"auction_id": event.auction_id, "kind": "SealedQuote"});
                assert_eq!(text, bare.to_string(), "a sealed quote's event");
            }
            for amount in self.quoted.iter().filter(|&&amount| amount >= QUOTE_BASE) {
                assert!(
                    !text.contains(&amount.to_string()),
                    "quote {amount} in {text}"
                );
            }
        }
    }

    fn confirm(&mut self, auction: usize, bidder: usize, nonce: &str) {
        let (auction_id, token_hash) = (self.id(auction), self.harness.token(&bidder_id(bidder)));
        let result = self.apply(match nonce {
            "" => Command::Confirm {
                auction_id,
                token_hash,
            },
            nonce => Command::ConfirmWithNonce {
                auction_id,
                token_hash,
                nonce: nonce.to_string(),
            },
        });
        if !nonce_is_valid(nonce) {
            return assert!(matches!(result, Err(Rejection::InvalidRequest(_))));
        }
        if !self.session_valid(bidder) {
            return assert_eq!(result, UNAUTHENTICATED);
        }
        let model = &mut self.model[auction];
        let refusals = model.confirm_refusals(bidder, nonce);
        match result {
            Ok(Outcome::Confirmed) if refusals.is_empty() => model.confirm(bidder, nonce),
            Err(rejection) if refusals.contains(&rejection.code()) => {}
            other => panic!("confirm answered {other:?}; the model expects {refusals:?}"),
        }
    }

    /// Winner's confirmation: only the winner (as the kernel drew them, checked on its
    /// own by `check_winner`) confirms, within the window.
    fn accept_sale(&mut self, auction: usize, bidder: usize) {
        let (auction_id, token_hash) = (self.id(auction), self.harness.token(&bidder_id(bidder)));
        let winner = self.observe(auction).winner.map(|winner| winner.bidder_id);
        let result = self.apply(Command::AcceptSale {
            auction_id,
            token_hash,
        });
        if !self.session_valid(bidder) {
            return assert_eq!(result, UNAUTHENTICATED);
        }
        let is_winner = winner == Some(bidder_id(bidder));
        let expected = self.model[auction].accept_sale(is_winner);
        assert_eq!(
            result.map_err(|rejection| rejection.code()),
            expected,
            "acceptance"
        );
    }

    fn operator(&mut self, auction: usize, action: OperatorAction) {
        let (auction_id, reason) = (self.id(auction), "board decision".to_string());
        let expected = self.model[auction].operator(action, self.now_ms);
        let command = match action {
            OperatorAction::Suspend => Command::Suspend { auction_id, reason },
            OperatorAction::Resume => Command::Resume { auction_id, reason },
            OperatorAction::Terminate => Command::Terminate { auction_id, reason },
            OperatorAction::ChangeIncrement(increment) => Command::ChangeIncrement {
                auction_id,
                increment,
                reason,
            },
        };
        // Compared by code: the texts of conflicts are not part of the rules.
        let code = |result: Result<Outcome, Rejection>| result.map_err(|r| r.code());
        assert_eq!(code(self.apply(command)), code(expected), "{action:?}");
    }

    /// Takeover (see `ModelAuction::take_over`); the model still stands at the time of
    /// the previous command, which is when the leaderless gap began.
    fn takeover(&mut self, gap_ms: u64) {
        self.now_ms += gap_ms;
        let now_ms = self.now_ms;
        let extended = self.model.iter_mut().filter_map(|model| {
            let moved = model.take_over(now_ms);
            moved.then(|| model.spec.id.clone())
        });
        let extended: Vec<String> = extended.collect();
        self.harness.new_leader();
        let takeover = Command::Takeover { leader_node_id: 9 };
        let nothing_more = Ok(Outcome::TakeoverRecorded {
            extended: Vec::new(),
        });
        assert_eq!(self.apply(takeover), nothing_more);
        assert_eq!(self.harness.takeover_outcome().0, extended);
    }

    fn check_against_model(&mut self) {
        for auction in 0..self.model.len() {
            let now = self.harness.state.auctions[&self.id(auction)].lottery_commitment;
            match self.commitments[auction] {
                Some(first) => assert_eq!(now, Some(first), "the commitment never changes"),
                None => self.commitments[auction] = now,
            }
        }
        for (auction, model) in self.model.iter().enumerate() {
            let observed = self.observe(auction);
            let real = &self.harness.state.auctions[&self.id(auction)];
            for auction in [real, &observed] {
                check_auction(auction).unwrap_or_else(|broken| panic!("invariant: {broken}"));
            }
            assert_eq!(View::of(&observed), model.view());
            self.check_sale_invariants(auction, &observed, real);
            self.check_winner(auction, &observed);
            self.check_deposits(auction, &observed);
        }
    }

    /// Deposits: held while open; at close the winner's applied to the price (forfeited
    /// once in default), everyone else's refunded.
    fn check_deposits(&self, auction: usize, observed: &Auction) {
        let model = &self.model[auction];
        let winner = observed
            .winner
            .as_ref()
            .map(|winner| winner.bidder_id.clone());
        let defaulted = matches!(model.confirmation, Some((ConfirmationStatus::Defaulted, _)));
        let mut expected = Vec::new();
        for bidder in 0..BIDDERS {
            let paid = if bidder == 3 {
                model.rules.deposit / 2
            } else {
                model.rules.deposit
            };
            let candidate = bidder != 2 || self.numbers[auction].contains_key(&2);
            if paid == 0 || !candidate {
                continue;
            }
            let disposition = match (model.phase.is_closed(), winner == Some(bidder_id(bidder))) {
                (false, _) => "held",
                (true, true) if model.phase == Phase::Sold && defaulted => "forfeited",
                (true, true) if model.phase == Phase::Sold => "applied_to_price",
                (true, _) => "refund",
            };
            expected.push((bidder_id(bidder), paid, disposition.to_string()));
        }
        let shown: Vec<(String, u64, String)> = SaleResult::of(observed)
            .deposits
            .into_iter()
            .map(|deposit| (deposit.bidder_id, deposit.amount, deposit.disposition))
            .collect();
        assert_eq!(shown, expected, "deposits and their dispositions");
    }

    fn check_winner(&self, auction: usize, observed: &Auction) {
        let model = &self.model[auction];
        let Some(winner) = &observed.winner else {
            return assert_eq!(model.winner, None, "the kernel found no winner");
        };
        match &model.winner {
            Some(ModelWinner::Bidder(bidder)) => {
                assert_eq!(
                    Some(*bidder),
                    model.leader(),
                    "the winner holds the highest bid"
                );
                let expected = (bidder_id(*bidder), model.price(), None);
                let lottery = winner.lottery.clone();
                assert_eq!(
                    (winner.bidder_id.clone(), Some(winner.price), lottery),
                    expected
                );
            }
            Some(ModelWinner::Lottery(confirmations)) => {
                let Some(Lottery::CommitReveal(draw)) = &winner.lottery else {
                    panic!("a drawn winner shows a commit-reveal draw: {winner:?}");
                };
                let committed = self.commitments[auction].expect("committed at cap entry");
                assert_eq!(
                    rules_commitment(&draw.seed),
                    committed,
                    "the seed is the committed one"
                );
                let numbers = &self.numbers[auction];
                let entrants: Vec<(u32, String)> = confirmations
                    .iter()
                    .map(|(bidder, nonce)| (numbers[bidder], nonce.clone()))
                    .collect();
                let published: Vec<(u32, String)> = draw
                    .entrants
                    .iter()
                    .map(|e| (e.bidder_number, e.nonce.clone()))
                    .collect();
                assert_eq!(
                    published, entrants,
                    "entrants in log order with their nonces"
                );
                let index = rules_draw(&self.id(auction), &draw.seed, &entrants);
                assert_eq!(draw.drawn_index, index as u64, "the draw follows the rules");
                let (drawn_bidder, _) = &confirmations[index];
                assert_eq!(winner.bidder_id, bidder_id(*drawn_bidder));
                assert_eq!(winner.bidder_number, entrants[index].0);
                assert_eq!(Some(winner.price), model.price());
            }
            Some(ModelWinner::AtPrice(bidder, price)) => {
                let expected = (bidder_id(*bidder), *price, None);
                let lottery = winner.lottery.clone();
                assert_eq!((winner.bidder_id.clone(), winner.price, lottery), expected);
            }
            Some(ModelWinner::Sealed(amount, tied)) => {
                assert_eq!(winner.price, *amount, "the winning quote is the price");
                let numbers = &self.numbers[auction];
                let mut entrants: Vec<(u32, usize)> =
                    tied.iter().map(|b| (numbers[b], *b)).collect();
                entrants.sort();
                let [(_, only)] = entrants.as_slice() else {
                    let Some(Lottery::CommitReveal(draw)) = &winner.lottery else {
                        panic!("a draw among tied quotes shows a commit-reveal draw: {winner:?}");
                    };
                    let committed = self.commitments[auction].expect("committed at cap entry");
                    assert_eq!(
                        rules_commitment(&draw.seed),
                        committed,
                        "the committed seed"
                    );
                    let lines: Vec<(u32, String)> = entrants
                        .iter()
                        .map(|(number, _)| (*number, String::new()))
                        .collect();
                    let index = rules_draw(&self.id(auction), &draw.seed, &lines);
                    assert_eq!(draw.drawn_index, index as u64, "the draw follows the rules");
                    return assert_eq!(winner.bidder_id, bidder_id(entrants[index].1));
                };
                assert_eq!(
                    (winner.bidder_id.clone(), winner.lottery.clone()),
                    (bidder_id(*only), None)
                );
            }
            None => panic!("the kernel sold to {winner:?}; the model expects no winner"),
        }
    }
}

fn run_scenario(scenario: &Scenario) {
    let mut run = Run::start(scenario);
    run.check_against_model();
    for (wait_ms, action) in &scenario.steps {
        let before = run.harness.ledger.clone();
        run.step(*wait_ms, action);
        run.apply_exclusions(scenario.grouped);
        run.check_ledger(&before);
        run.check_events_hide_quotes();
        run.check_against_model();
    }
    let (mut replica, mut ledger) = (Default::default(), ExchangeLedger::default());
    let setup_commands = run.harness.log.len() - run.results.len();
    for (index, logged) in run.harness.log.iter().enumerate() {
        let log_index = index as u64 + 1;
        let answer = common_kernel::apply_logged(&mut replica, &mut ledger, logged, log_index);
        if let Some(original) = index.checked_sub(setup_commands).map(|i| &run.results[i]) {
            assert_eq!(
                &answer.1.result, original,
                "replayed answer to {:?}",
                logged.envelope.command
            );
        }
    }
    assert_eq!(replica.digest(), run.harness.state.digest());
    assert!(
        replica == run.harness.state,
        "replaying the log gives another state"
    );
    assert_eq!(ledger, run.harness.ledger, "replaying gives another ledger");
    assert_eq!(replay_with_ledger(&run.harness.log).1, ledger);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// docs/RULES.md as a whole: the kernel and the reference model agree on every step.
    #[test]
    fn kernel_agrees_with_reference_model(scenario in scenario()) {
        run_scenario(&scenario);
    }
}

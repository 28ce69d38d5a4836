//! Shared helpers for the kernel tests: a default auction spec, well-formed hashes, a
//! `Harness` that stamps envelopes, applies them, keeps the log for replay, and knows
//! each bidder's session token by the bidder's name; and `model`, the reference model
//! of docs/RULES.md that the property tests compare the kernel with.

#![allow(dead_code)]

use std::collections::BTreeMap;

use gavel_kernel::sale::SaleRules;
use gavel_kernel::{
    Applied, Auction, AuctionSpec, Command, Envelope, EventKind, ExchangeLedger, Outcome, Receipt,
    Rejection, Replica, State,
};

/// The seed every envelope carries unless a test says otherwise.
pub const DEFAULT_SEED: u64 = 7;
/// Sessions opened by `Harness::register` live until then.
pub const FAR_FUTURE_MS: u64 = 1_000_000_000_000;
/// The auction the convenience methods act on.
pub const AUCTION: &str = "a1";

/// A session token hash: 64 hex digits derived from a small number.
pub fn token_hash(n: u64) -> String {
    format!("{n:064x}")
}

/// An auction spec with the defaults the rule tests start from: start 1000, increment
/// 100 (`multiple`), listing from 10 000 ms to 100 000 ms, countdown and failover grace
/// 240 000 ms, confirm window 60 000 ms, no reserve and no cap.
pub fn spec(id: &str) -> AuctionSpec {
    AuctionSpec {
        title: "Parcel 2024-17".to_string(),
        failover_grace_ms: 240_000,
        countdown_ms: 240_000,
        ..AuctionSpec::example(id)
    }
}

/// `base` with one change applied.
pub fn with(mut base: AuctionSpec, change: impl FnOnce(&mut AuctionSpec)) -> AuctionSpec {
    change(&mut base);
    base
}

pub fn not_open(phase: &str) -> Rejection {
    Rejection::AuctionNotOpen {
        phase: phase.to_string(),
    }
}

pub fn below(minimum: u64) -> Rejection {
    Rejection::BelowMinimum { minimum }
}

pub fn off_grid(minimum: u64, increment: u64) -> Rejection {
    Rejection::NotOnIncrement { minimum, increment }
}

pub fn with_cap(cap: u64) -> AuctionSpec {
    with(spec(AUCTION), |s| s.price_cap = Some(cap))
}

pub fn with_reserve(reserve: u64) -> AuctionSpec {
    with(spec(AUCTION), |s| s.reserve_price = Some(reserve))
}

/// The node id the harness's leaders have; only the takeover records show it.
pub const LEADER_NODE_ID: u64 = 2;

/// One command entry of the log: the leader term it was proposed in, and the envelope.
#[derive(Debug, Clone)]
pub struct LoggedCommand {
    pub term: u64,
    pub envelope: Envelope,
}

/// Applies a command as the state machine does, to the state and the exchange ledger,
/// as the entry at `log_index`: the takeover rule first when the command is the first of
/// its term, then the command. Answers both.
pub fn apply_logged(
    state: &mut State,
    ledger: &mut ExchangeLedger,
    logged: &LoggedCommand,
    log_index: u64,
) -> (Option<Applied>, Applied) {
    let envelope = &logged.envelope;
    let mut replica = Replica { state, ledger };
    let takeover = replica.begin_term(logged.term, LEADER_NODE_ID, envelope.now_ms, envelope.seed);
    (takeover, replica.apply(envelope, log_index))
}

/// The state and the exchange ledger a replica holds after applying `log` from the start
/// (the first command at log index 1).
pub fn replay_with_ledger(log: &[LoggedCommand]) -> (State, ExchangeLedger) {
    let (mut replica, mut ledger) = (State::default(), ExchangeLedger::default());
    for (index, logged) in log.iter().enumerate() {
        apply_logged(&mut replica, &mut ledger, logged, index as u64 + 1);
    }
    (replica, ledger)
}

/// The state a replica holds after applying `log` from the start.
pub fn replay(log: &[LoggedCommand]) -> State {
    replay_with_ledger(log).0
}

/// A state plus the commands applied to it, in order, each in its leader's term.
#[derive(Default)]
pub struct Harness {
    pub state: State,
    /// The exchange ledger beside the state (`gavel_kernel::ledger`).
    pub ledger: ExchangeLedger,
    pub log: Vec<LoggedCommand>,
    /// The term of the leader stamping commands now; `new_leader` moves to the next.
    pub term: u64,
    /// What the takeover rule did before the last command, if it was the first of a term.
    pub last_takeover: Option<Applied>,
    /// Session token hash by bidder id.
    pub tokens: BTreeMap<String, String>,
}

impl Harness {
    /// Applies `command` at `now_ms` as `actor` with `seed` in the current term (after the
    /// takeover rule, if it is the term's first command), and logs it.
    pub fn run_with(&mut self, now_ms: u64, seed: u64, actor: &str, command: Command) -> Applied {
        let logged = LoggedCommand {
            term: self.term,
            envelope: Envelope {
                now_ms,
                seed,
                actor: actor.to_string(),
                command,
            },
        };
        let log_index = self.log.len() as u64 + 1;
        let (takeover, applied) =
            apply_logged(&mut self.state, &mut self.ledger, &logged, log_index);
        self.last_takeover = takeover;
        self.log.push(logged);
        applied
    }

    /// A new leader is elected: the commands from now on are of the next term.
    pub fn new_leader(&mut self) {
        self.term += 1;
    }

    /// Applies `command` at `now_ms` as the operator `operator-li`, with the default seed.
    pub fn run(&mut self, now_ms: u64, command: Command) -> Result<Outcome, Rejection> {
        self.run_with(now_ms, DEFAULT_SEED, "operator-li", command)
            .result
    }

    /// Registers `bidder_id` at time 0 with a session until `expires_at_ms`.
    pub fn register_until(&mut self, bidder_id: &str, expires_at_ms: u64) {
        let number = self.tokens.len() as u64 + 1;
        let register = Command::RegisterBidder {
            bidder_id: bidder_id.to_string(),
            name: format!("Bidder {bidder_id}"),
            secret_salt: format!("{number:032x}"),
            secret_hash: format!("{:064x}", number + 1_000_000),
        };
        assert_eq!(self.run(0, register), Ok(Outcome::BidderRegistered));
        let open = Command::OpenSession {
            token_hash: token_hash(number),
            bidder_id: bidder_id.to_string(),
            expires_at_ms,
            max_sessions_per_bidder: 8,
        };
        assert!(self.run(0, open).is_ok());
        self.tokens
            .insert(bidder_id.to_string(), token_hash(number));
    }

    pub fn register(&mut self, bidder_id: &str) {
        self.register_until(bidder_id, FAR_FUTURE_MS);
    }

    pub fn token(&self, bidder_id: &str) -> String {
        self.tokens[bidder_id].clone()
    }

    pub fn create(&mut self, now_ms: u64, spec: AuctionSpec) {
        let created = self.run(now_ms, Command::CreateAuction { spec });
        assert_eq!(created, Ok(Outcome::AuctionCreated { created: true }));
    }

    /// Creates an auction under the version 1.1 `rules`.
    pub fn create_with_rules(&mut self, now_ms: u64, spec: AuctionSpec, rules: SaleRules) {
        let rules = Box::new(rules);
        let created = self.run(now_ms, Command::CreateAuctionWithRules { spec, rules });
        assert_eq!(created, Ok(Outcome::AuctionCreated { created: true }));
    }

    /// Qualifies the bidder, drawing the number from `seed`; returns the bidder number.
    pub fn qualify(&mut self, seed: u64, auction_id: &str, bidder_id: &str) -> u32 {
        let command = Command::Qualify {
            auction_id: auction_id.to_string(),
            bidder_id: bidder_id.to_string(),
        };
        match self.run_with(0, seed, "operator-li", command).result {
            Ok(Outcome::Qualified { bidder_number, .. }) => bidder_number,
            other => panic!("qualify {bidder_id} in {auction_id}: {other:?}"),
        }
    }

    /// A bid by `bidder_id` (through their session) in `auction_id`.
    pub fn bid_in(
        &mut self,
        auction_id: &str,
        now_ms: u64,
        bidder_id: &str,
        amount: u64,
        request_id: &str,
    ) -> Result<Outcome, Rejection> {
        let command = Command::PlaceBid {
            auction_id: auction_id.to_string(),
            token_hash: self.token(bidder_id),
            amount,
            request_id: request_id.to_string(),
        };
        self.run(now_ms, command)
    }

    /// A bid in `a1` with a fresh request_id.
    pub fn bid(&mut self, now_ms: u64, bidder_id: &str, amount: u64) -> Result<Outcome, Rejection> {
        let request_id = format!("request-{}", self.log.len());
        self.bid_in(AUCTION, now_ms, bidder_id, amount, &request_id)
    }

    /// A bid in `a1` that must be accepted; returns its receipt.
    pub fn accept(&mut self, now_ms: u64, bidder_id: &str, amount: u64) -> Receipt {
        match self.bid(now_ms, bidder_id, amount) {
            Ok(Outcome::BidAccepted {
                receipt,
                replayed: false,
            }) if receipt.amount == amount => receipt,
            other => panic!("{bidder_id} bidding {amount} at {now_ms}: {other:?}"),
        }
    }

    /// A bid in `a1` that must be refused; returns why.
    pub fn refuse(&mut self, now_ms: u64, bidder_id: &str, amount: u64) -> Rejection {
        match self.bid(now_ms, bidder_id, amount) {
            Err(rejection) => rejection,
            accepted => panic!("{bidder_id} bidding {amount} at {now_ms}: {accepted:?}"),
        }
    }

    /// Applies the time transitions of `a1` due at `now_ms`.
    pub fn advance(&mut self, now_ms: u64) {
        self.advance_with_seed(now_ms, DEFAULT_SEED);
    }

    pub fn advance_with_seed(&mut self, now_ms: u64, seed: u64) {
        let advance = Command::Advance {
            auction_id: AUCTION.to_string(),
        };
        let applied = self.run_with(now_ms, seed, "system", advance);
        assert_eq!(applied.result, Ok(Outcome::AuctionUpdated));
    }

    pub fn confirm(&mut self, now_ms: u64, bidder_id: &str) -> Result<Outcome, Rejection> {
        let command = Command::Confirm {
            auction_id: AUCTION.to_string(),
            token_hash: self.token(bidder_id),
        };
        self.run(now_ms, command)
    }

    /// A confirmation in `a1` carrying the bidder's `nonce`.
    pub fn confirm_with_nonce(
        &mut self,
        now_ms: u64,
        bidder_id: &str,
        nonce: &str,
    ) -> Result<Outcome, Rejection> {
        let command = Command::ConfirmWithNonce {
            auction_id: AUCTION.to_string(),
            token_hash: self.token(bidder_id),
            nonce: nonce.to_string(),
        };
        self.run(now_ms, command)
    }

    /// An operator action on `a1`: "suspend", "resume" or "terminate".
    pub fn operator(&mut self, now_ms: u64, action: &str) -> Result<Outcome, Rejection> {
        let (auction_id, reason) = (AUCTION.to_string(), format!("{action} by the board"));
        let command = match action {
            "suspend" => Command::Suspend { auction_id, reason },
            "resume" => Command::Resume { auction_id, reason },
            "terminate" => Command::Terminate { auction_id, reason },
            other => panic!("no operator action {other}"),
        };
        self.run(now_ms, command)
    }

    pub fn change_increment(&mut self, now_ms: u64, increment: u64) -> Applied {
        let command = Command::ChangeIncrement {
            auction_id: AUCTION.to_string(),
            increment,
            reason: "market conditions".to_string(),
        };
        self.run_with(now_ms, DEFAULT_SEED, "operator-li", command)
    }

    /// A new leader's first command at `now_ms` (the `Takeover` a leader proposes once
    /// elected); returns the auctions the takeover rule extended and its events.
    pub fn takeover(&mut self, now_ms: u64) -> (Vec<String>, Vec<EventKind>) {
        self.new_leader();
        let command = Command::Takeover {
            leader_node_id: LEADER_NODE_ID,
        };
        self.run_with(now_ms, 5, "system", command);
        self.takeover_outcome()
    }

    /// What the takeover rule did before the last command: the extended auctions and the
    /// events. Panics if that command was not the first of its term.
    pub fn takeover_outcome(&self) -> (Vec<String>, Vec<EventKind>) {
        let takeover = self
            .last_takeover
            .clone()
            .expect("the last command was the first of a new term");
        let kinds = takeover.events.into_iter().map(|event| event.kind);
        match takeover.result {
            Ok(Outcome::TakeoverRecorded { extended }) => (extended, kinds.collect()),
            other => panic!("takeover: {other:?}"),
        }
    }

    pub fn auction(&self, auction_id: &str) -> &Auction {
        &self.state.auctions[auction_id]
    }

    pub fn a1(&self) -> &Auction {
        self.auction(AUCTION)
    }

    /// `a1` in one line: "listing until 100000", "suspended", "unsold at 100000",
    /// "sold at 440000 to carol for 1200".
    pub fn summary(&self) -> String {
        let auction = self.a1();
        let phase = auction.phase.as_str();
        match (auction.deadline_ms, auction.closed_at_ms, &auction.winner) {
            (Some(deadline), _, _) => format!("{phase} until {deadline}"),
            (None, Some(closed), Some(winner)) => {
                let (bidder, price) = (&winner.bidder_id, winner.price);
                format!("{phase} at {closed} to {bidder} for {price}")
            }
            (None, Some(closed), None) => format!("{phase} at {closed}"),
            (None, None, _) => phase.to_string(),
        }
    }
}

/// Alice, Bob and Carol, registered with sessions and qualified for `spec` at time 0.
pub fn sale(spec: AuctionSpec) -> Harness {
    let mut harness = Harness::default();
    let id = spec.id.clone();
    harness.create(0, spec);
    for (seed, bidder) in [(11, "alice"), (12, "bob"), (13, "carol")] {
        harness.register(bidder);
        harness.qualify(seed, &id, bidder);
    }
    harness
}

/// Alice bids 1000 and Bob 1100 in the listing, which closes at 100 000 into timed
/// bidding with deadline 100 000 + 240 000.
pub fn timed_sale(spec: AuctionSpec) -> Harness {
    let mut harness = sale(spec);
    harness.accept(20_000, "alice", 1000);
    harness.accept(30_000, "bob", 1100);
    harness.advance(100_001);
    assert_eq!(harness.a1().deadline_ms, Some(340_000));
    harness
}

/// Cap 1500: Alice bids 1000, Bob 1100, Carol reaches the cap at 30 000; the confirm
/// window ends at 90 000.
pub fn capped_sale() -> Harness {
    let mut harness = sale(with(spec(AUCTION), |s| s.price_cap = Some(1500)));
    harness.accept(20_000, "alice", 1000);
    harness.accept(25_000, "bob", 1100);
    harness.accept(30_000, "carol", 1500);
    assert_eq!(harness.a1().deadline_ms, Some(90_000));
    harness
}

/// A reference model of docs/RULES.md, written from the rules and not from the kernel: one
/// auction's phase, price, leader, deadline and winner. It is evaluated eagerly: after
/// `catch_up(now)` it is the auction as it stands at `now`. Bidders are small numbers;
/// their ids are `b0`, `b1`, ….
pub mod model {
    use std::collections::BTreeSet;

    use gavel_kernel::sale::{ConfirmationStatus, SaleRules, TimedBiddingEntry};
    use gavel_kernel::{Auction, AuctionSpec, IncrementRule, Outcome, Phase, Rejection};
    use sha2::{Digest, Sha256};

    /// Price cap, `cap_mode` `lottery`: the commitment published at cap entry is the
    /// SHA-256 of the seed's bytes.
    pub fn rules_commitment(seed: &[u8]) -> [u8; 32] {
        Sha256::digest(seed).into()
    }

    /// Price cap, `cap_mode` `lottery`: "the draw uses the seed mixed with the
    /// confirmations in log order", as README's "Checking a lottery" writes it out: the
    /// SHA-256 of `gavel-lottery`, the auction id, the seed in hex and one
    /// `number:nonce` line per confirmation; its first 8 bytes, big-endian, modulo the
    /// number of entrants, index them.
    pub fn rules_draw(auction_id: &str, seed: &[u8], entrants: &[(u32, String)]) -> usize {
        let mut text = format!("gavel-lottery\n{auction_id}\n{}\n", hex::encode(seed));
        for (number, nonce) in entrants {
            text += &format!("{number}:{nonce}\n");
        }
        let digest = Sha256::digest(text.as_bytes());
        let first: [u8; 8] = digest[..8].try_into().expect("8 bytes");
        (u64::from_be_bytes(first) % entrants.len() as u64) as usize
    }

    /// A nonce the rules accept: at most 64 characters of `A-Z a-z 0-9 _ -`.
    pub fn nonce_is_valid(nonce: &str) -> bool {
        nonce.len() <= 64
            && nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    pub fn bidder_id(bidder: usize) -> String {
        format!("b{bidder}")
    }

    pub fn takes_bids(phase: Phase) -> bool {
        matches!(phase, Phase::Listing | Phase::TimedBidding)
    }

    pub fn has_running_clock(phase: Phase) -> bool {
        matches!(phase, Phase::Listing | Phase::TimedBidding | Phase::Capped)
    }

    fn is_final(phase: Phase) -> bool {
        matches!(phase, Phase::Sold | Phase::Unsold | Phase::Terminated)
    }

    #[derive(Debug, Clone, PartialEq)]
    pub enum ModelWinner {
        Bidder(usize),
        /// A lottery among these confirmations (bidder, nonce), in log order; the winner
        /// is the one `rules_draw` picks with the seed committed at cap entry.
        Lottery(Vec<(usize, String)>),
    }

    #[derive(Debug, Clone, Copy)]
    pub enum OperatorAction {
        Suspend,
        Resume,
        Terminate,
        ChangeIncrement(u64),
    }

    /// The parts of an auction the model predicts exactly.
    #[derive(Debug, PartialEq)]
    pub struct View {
        pub phase: Phase,
        pub deadline_ms: Option<u64>,
        pub closed_at_ms: Option<u64>,
        pub increment: u64,
        /// (bidder, amount, accepted at): an acknowledged bid is never lost.
        pub bids: Vec<(String, u64, u64)>,
        /// (bidder, nonce), in log order.
        pub confirmations: Vec<(String, String)>,
        /// Whether a lottery commitment is published (from cap entry on).
        pub committed: bool,
        /// The winner's confirmation and its window's end.
        pub confirmation: Option<(ConfirmationStatus, u64)>,
    }

    impl View {
        pub fn of(auction: &Auction) -> View {
            let bids = auction.bids.iter();
            let bid = |bid: &gavel_kernel::BidRecord| {
                (bid.bidder_id.clone(), bid.amount, bid.accepted_at_ms)
            };
            View {
                phase: auction.phase,
                deadline_ms: auction.deadline_ms,
                closed_at_ms: auction.closed_at_ms,
                increment: auction.increment,
                bids: bids.map(bid).collect(),
                confirmations: auction
                    .confirmations
                    .iter()
                    .map(|c| (c.bidder_id.clone(), c.nonce.clone()))
                    .collect(),
                committed: auction.lottery_commitment.is_some(),
                confirmation: auction
                    .sale
                    .confirmation
                    .as_ref()
                    .map(|c| (c.status, c.deadline_ms)),
            }
        }
    }

    #[derive(Debug, Clone)]
    pub struct ModelAuction {
        pub spec: AuctionSpec,
        pub phase: Phase,
        pub deadline_ms: Option<u64>,
        pub increment: u64,
        /// (bidder, amount, accepted at)
        pub bids: Vec<(usize, u64, u64)>,
        /// The phase a suspension froze, and the time it had left.
        pub frozen: Option<(Phase, u64)>,
        /// (bidder, nonce), in log order; a bidder's first confirmation stands.
        pub confirmers: Vec<(usize, String)>,
        /// Whether the auction entered `capped`, committing to its lottery seed.
        pub committed: bool,
        pub winner: Option<ModelWinner>,
        pub closed_at_ms: Option<u64>,
        pub qualified: BTreeSet<usize>,
        /// The version 1.1 rules the auction runs under.
        pub rules: SaleRules,
        /// Bidders who bid during the listing.
        pub listing_bidders: BTreeSet<usize>,
        /// Winner's confirmation: its state and the window's end.
        pub confirmation: Option<(ConfirmationStatus, u64)>,
    }

    impl ModelAuction {
        /// A new auction: scheduled until its listing opens.
        pub fn new(spec: AuctionSpec, qualified: BTreeSet<usize>) -> Self {
            ModelAuction::with_rules(spec, SaleRules::default(), qualified)
        }

        /// A new auction under the version 1.1 `rules`.
        pub fn with_rules(spec: AuctionSpec, rules: SaleRules, qualified: BTreeSet<usize>) -> Self {
            ModelAuction {
                rules,
                listing_bidders: BTreeSet::new(),
                confirmation: None,
                phase: Phase::Scheduled,
                deadline_ms: Some(spec.listing_opens_at_ms),
                increment: spec.increment,
                spec,
                bids: Vec::new(),
                frozen: None,
                confirmers: Vec::new(),
                committed: false,
                winner: None,
                closed_at_ms: None,
                qualified,
            }
        }

        pub fn price(&self) -> Option<u64> {
            self.bids.last().map(|bid| bid.1)
        }

        pub fn leader(&self) -> Option<usize> {
            self.bids.last().map(|bid| bid.0)
        }

        /// The lowest acceptable amount: the start price, then price plus increment.
        pub fn minimum(&self) -> u64 {
            let increment = self.increment;
            self.price()
                .map_or(self.spec.start_price, |price| price + increment)
        }

        pub fn view(&self) -> View {
            let bid = |bid: &(usize, u64, u64)| (bidder_id(bid.0), bid.1, bid.2);
            View {
                phase: self.phase,
                deadline_ms: self.deadline_ms,
                closed_at_ms: self.closed_at_ms,
                increment: self.increment,
                bids: self.bids.iter().map(bid).collect(),
                confirmations: self
                    .confirmers
                    .iter()
                    .map(|(bidder, nonce)| (bidder_id(*bidder), nonce.clone()))
                    .collect(),
                committed: self.committed,
                confirmation: self.confirmation,
            }
        }

        /// Sold to `winner` if the price meets the reserve, else unsold. Winner's
        /// confirmation: a sale with a window is `pending` until `at + window`.
        fn close(&mut self, at_ms: u64, winner: Option<ModelWinner>) {
            let reserve = self.spec.reserve_price.unwrap_or(0);
            let reserve_met = self.price().is_some_and(|price| price >= reserve);
            self.winner = winner.filter(|_| reserve_met);
            self.phase = self.winner.as_ref().map_or(Phase::Unsold, |_| Phase::Sold);
            (self.deadline_ms, self.closed_at_ms) = (None, Some(at_ms));
            if let (Phase::Sold, Some(window_ms)) = (self.phase, self.rules.winner_confirm_ms) {
                self.confirmation = Some((ConfirmationStatus::Pending, at_ms + window_ms));
            }
        }

        /// Every transition that time makes due at `now_ms`; a pending confirmation whose
        /// window has ended lapses.
        pub fn catch_up(&mut self, now_ms: u64) {
            self.catch_up_phases(now_ms);
            if let Some((ConfirmationStatus::Pending, deadline)) = self.confirmation {
                if now_ms > deadline {
                    self.confirmation = Some((ConfirmationStatus::Lapsed, deadline));
                }
            }
        }

        /// The winner `bidder` (as the kernel drew them) confirms the sale.
        pub fn accept_sale(&mut self, bidder_is_winner: bool) -> Result<Outcome, &'static str> {
            if self.phase != Phase::Sold || !bidder_is_winner {
                return Err("not_winner");
            }
            match self.confirmation {
                Some((ConfirmationStatus::Pending, deadline)) => {
                    self.confirmation = Some((ConfirmationStatus::Confirmed, deadline));
                    Ok(Outcome::SaleAccepted { replayed: false })
                }
                Some((ConfirmationStatus::Confirmed, _)) => {
                    Ok(Outcome::SaleAccepted { replayed: true })
                }
                _ => Err("confirmation_closed"),
            }
        }

        /// An operator declares the winner of a lapsed sale in default.
        pub fn default_winner(&mut self) -> Result<Outcome, &'static str> {
            match self.confirmation {
                Some((ConfirmationStatus::Lapsed, deadline)) => {
                    self.confirmation = Some((ConfirmationStatus::Defaulted, deadline));
                    Ok(Outcome::WinnerDefaulted)
                }
                _ => Err("conflict"),
            }
        }

        fn catch_up_phases(&mut self, now_ms: u64) {
            while let Some(deadline) = self.deadline_ms {
                let leader = self.leader().map(ModelWinner::Bidder);
                let lottery = Some(ModelWinner::Lottery(self.confirmers.clone()));
                match self.phase {
                    Phase::Scheduled if now_ms >= deadline => {
                        self.phase = Phase::Listing;
                        self.deadline_ms = Some(self.spec.listing_closes_at_ms);
                    }
                    Phase::Listing if now_ms > deadline => {
                        let bidders: BTreeSet<usize> = self.bids.iter().map(|b| b.0).collect();
                        if bidders.len() >= 2 {
                            self.phase = Phase::TimedBidding;
                            self.deadline_ms = Some(deadline + self.spec.countdown_ms);
                        } else {
                            self.close(deadline, leader);
                        }
                    }
                    Phase::TimedBidding if now_ms > deadline => self.close(deadline, leader),
                    Phase::Capped if now_ms > deadline && self.confirmers.is_empty() => {
                        self.close(deadline, leader)
                    }
                    Phase::Capped if now_ms > deadline => self.close(deadline, lottery),
                    _ => return,
                }
            }
        }

        /// Price cap: reached when the high bid lies less than one increment below it.
        fn enter_capped_if_reached(&mut self, now_ms: u64) {
            let reached = match (self.spec.price_cap, self.price()) {
                (Some(cap), Some(price)) => price + self.increment > cap,
                _ => false,
            };
            if takes_bids(self.phase) && reached {
                self.committed = true;
                self.phase = Phase::Capped;
                self.deadline_ms = Some(now_ms + self.spec.cap_confirm_ms);
            }
        }

        /// Every rule the bid breaks (the kernel must report one of them).
        pub fn bid_refusals(&self, bidder: usize, amount: u64) -> Vec<&'static str> {
            let base = self.price().unwrap_or(self.spec.start_price);
            let above_cap = self.spec.price_cap.is_some_and(|cap| amount > cap);
            let on_grid = self.spec.increment_rule == IncrementRule::AtLeast
                || amount < base
                || (amount - base).is_multiple_of(self.increment);
            let listing_only = self.rules.timed_bidding_entry == TimedBiddingEntry::ListingBidders;
            let broken = [
                (!self.qualified.contains(&bidder), "not_qualified"),
                (!takes_bids(self.phase), "auction_not_open"),
                (
                    listing_only
                        && self.phase == Phase::TimedBidding
                        && !self.listing_bidders.contains(&bidder),
                    "not_eligible",
                ),
                (self.leader() == Some(bidder), "already_leading"),
                (amount < self.minimum(), "below_minimum"),
                (above_cap, "above_cap"),
                (!on_grid, "not_on_increment"),
            ];
            broken
                .into_iter()
                .filter(|rule| rule.0)
                .map(|rule| rule.1)
                .collect()
        }

        /// Every rule a confirmation with `nonce` breaks (a bidder's first confirmation
        /// stands: the same nonce again is harmless, another one a conflict).
        pub fn confirm_refusals(&self, bidder: usize, nonce: &str) -> Vec<&'static str> {
            let has_bid = self.bids.iter().any(|bid| bid.0 == bidder);
            let earlier = self.confirmers.iter().find(|(b, _)| *b == bidder);
            let broken = [
                (!nonce_is_valid(nonce), "invalid_request"),
                (!self.qualified.contains(&bidder), "not_qualified"),
                (self.phase != Phase::Capped, "auction_not_open"),
                (!has_bid, "not_eligible"),
                (earlier.is_some_and(|(_, n)| n != nonce), "conflict"),
            ];
            broken
                .into_iter()
                .filter(|rule| rule.0)
                .map(|rule| rule.1)
                .collect()
        }

        /// Records an accepted confirmation (the first of a bidder stands).
        pub fn confirm(&mut self, bidder: usize, nonce: &str) {
            if !self.confirmers.iter().any(|(b, _)| *b == bidder) {
                self.confirmers.push((bidder, nonce.to_string()));
            }
        }

        pub fn accept_bid(&mut self, bidder: usize, amount: u64, now_ms: u64) {
            if self.phase == Phase::Listing {
                self.listing_bidders.insert(bidder);
            }
            self.bids.push((bidder, amount, now_ms));
            if self.phase == Phase::TimedBidding {
                self.deadline_ms = Some(now_ms + self.spec.countdown_ms);
            }
            self.enter_capped_if_reached(now_ms);
        }

        /// Applies an operator action; returns the expected answer.
        pub fn operator(
            &mut self,
            action: OperatorAction,
            now_ms: u64,
        ) -> Result<Outcome, Rejection> {
            let phase = self.phase.as_str().to_string();
            match (action, self.deadline_ms) {
                (OperatorAction::Suspend, Some(deadline)) if has_running_clock(self.phase) => {
                    self.frozen = Some((self.phase, deadline - now_ms));
                    (self.phase, self.deadline_ms) = (Phase::Suspended, None);
                }
                (OperatorAction::Resume, _) => {
                    let not_suspended = || Rejection::Conflict("not suspended".to_string());
                    let (phase, remaining_ms) = self.frozen.take().ok_or_else(not_suspended)?;
                    // Timed bidding restarts with a full countdown.
                    let timed = phase == Phase::TimedBidding;
                    let countdown_ms = self.spec.countdown_ms;
                    let time_ms = if timed { countdown_ms } else { remaining_ms };
                    (self.phase, self.deadline_ms) = (phase, Some(now_ms + time_ms));
                    self.enter_capped_if_reached(now_ms);
                }
                (OperatorAction::Terminate, _) if !is_final(self.phase) => {
                    (self.phase, self.deadline_ms, self.frozen) = (Phase::Terminated, None, None);
                    (self.winner, self.closed_at_ms) = (None, Some(now_ms));
                }
                (OperatorAction::ChangeIncrement(increment), _) if !is_final(self.phase) => {
                    self.increment = increment;
                    self.enter_capped_if_reached(now_ms);
                }
                _ => return Err(Rejection::AuctionNotOpen { phase }),
            }
            Ok(Outcome::AuctionUpdated)
        }

        /// A leader change at `takeover_ms`, the model standing at the last command's time:
        /// a listing that opened during the gap is open; an open auction whose deadline
        /// passed during the gap or falls less than the grace after the takeover gets
        /// `takeover + grace`. Returns whether the deadline moved.
        pub fn take_over(&mut self, takeover_ms: u64) -> bool {
            if self.phase == Phase::Scheduled && self.spec.listing_opens_at_ms <= takeover_ms {
                self.phase = Phase::Listing;
                self.deadline_ms = Some(self.spec.listing_closes_at_ms);
            }
            let grace_end_ms = takeover_ms + self.spec.failover_grace_ms;
            let inside_grace = self.deadline_ms.is_some_and(|at| at < grace_end_ms);
            let extended = has_running_clock(self.phase) && inside_grace;
            if extended {
                self.deadline_ms = Some(grace_end_ms);
            }
            self.catch_up(takeover_ms);
            extended
        }
    }
}

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

/// The reference model of docs/RULES.md the property tests compare the kernel with.
pub mod model;

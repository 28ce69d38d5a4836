//! The replicated state. Every field is derived from the log alone, so replicas that
//! applied the same entries hold equal states (compared by `State::digest`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use imbl::Vector;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::archived::ArchiveLedger;
pub use super::lottery::{Confirmation, Lottery, LotterySecret};
use super::operator::OperatorAction;
use super::requests::RequestRecords;
use super::sessions::Sessions;
use super::types::{AuctionSpec, BidderNumber, Money};

/// The whole kernel state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The latest command time applied; command times never go backwards past it.
    pub clock_ms: u64,
    /// The Raft term whose takeover was applied last (`takeover::begin_term`). Not in the
    /// state's encoding, so not in its digest: two clusters that applied the same commands
    /// (a migration's source and target) differ in terms only. Snapshots carry it beside
    /// the state; a backup does not, and a restored cluster's first term is a takeover.
    #[serde(skip)]
    pub leader_term: u64,
    pub bidders: BTreeMap<String, Bidder>,
    /// Sessions by the SHA-256 hash of their token, with each bidder's oldest first.
    pub sessions: Sessions,
    pub auctions: BTreeMap<String, Auction>,
    /// Idempotency records: bidder id, then request_id (`RequestRecords`, persistent
    /// maps: a bidder's records grow with every bid, and a clone of the state (a
    /// snapshot's) shares them instead of copying them).
    pub requests: BTreeMap<String, RequestRecords>,
    /// When each leader took over, oldest first (bounded by `MAX_TAKEOVERS_KEPT`).
    pub takeovers: Vec<TakeoverRecord>,
    /// Every control action, oldest first, with the operator who gave it (bounded by
    /// `MAX_OPERATOR_RECORDS`; the Raft log keeps the rest until it is compacted).
    pub operator_audit: VecDeque<OperatorRecord>,
    /// What the state remembers of the auctions it archived: their ids, a chain over
    /// their records, the newest prune cutoff (`archived`).
    pub archived: ArchiveLedger,
}

/// How many operator audit records the state keeps.
pub const MAX_OPERATOR_RECORDS: usize = 10_000;

/// One control action: who gave it, when, on what, why, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRecord {
    pub at_ms: u64,
    pub operator: String,
    pub action: OperatorAction,
    /// The bidder, auction (`auction/bidder` for a qualification) or node acted on.
    pub target: String,
    pub reason: String,
    /// `ok`, or the rejection code the command was refused with.
    pub outcome: String,
}

/// How many takeover records the state keeps.
pub const MAX_TAKEOVERS_KEPT: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bidder {
    pub bidder_id: String,
    pub name: String,
    pub secret_salt: String,
    pub secret_hash: String,
    pub registered_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub bidder_id: String,
    pub opened_at_ms: u64,
    pub expires_at_ms: u64,
}

/// What a bid's request_id was used for, and what it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub auction_id: String,
    pub amount: Money,
    pub receipt: super::command::Receipt,
    pub recorded_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeoverRecord {
    pub leader_node_id: u64,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Scheduled,
    Listing,
    TimedBidding,
    Capped,
    Suspended,
    Sold,
    Unsold,
    Terminated,
}

impl Phase {
    /// The API's name of the phase.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Scheduled => "scheduled",
            Phase::Listing => "listing",
            Phase::TimedBidding => "timed_bidding",
            Phase::Capped => "capped",
            Phase::Suspended => "suspended",
            Phase::Sold => "sold",
            Phase::Unsold => "unsold",
            Phase::Terminated => "terminated",
        }
    }

    /// Sold, unsold and terminated are final.
    pub fn is_closed(self) -> bool {
        matches!(self, Phase::Sold | Phase::Unsold | Phase::Terminated)
    }

    /// Phases with a running deadline that may be suspended or extended.
    pub fn is_open(self) -> bool {
        matches!(self, Phase::Listing | Phase::TimedBidding | Phase::Capped)
    }
}

/// One accepted bid, hash-chained to the one before it (see `chain`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidRecord {
    pub seq: u64,
    pub bid_id: String,
    pub bidder_id: String,
    pub bidder_number: BidderNumber,
    pub amount: Money,
    pub accepted_at_ms: u64,
    pub prev_hash: String,
    pub hash: String,
}

/// A frozen auction: what it was doing and how much time it had left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    pub from_phase: Phase,
    pub remaining_ms: u64,
    pub suspended_at_ms: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Winner {
    pub bidder_id: String,
    pub bidder_number: BidderNumber,
    pub price: Money,
    pub lottery: Option<Lottery>,
}

/// One line of an auction's audit trail: phase changes, extensions, operator actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at_ms: u64,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// Most audit records kept per auction; the log keeps all of them.
pub const MAX_AUDIT_RECORDS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auction {
    pub spec: AuctionSpec,
    pub phase: Phase,
    /// The increment in force (an operator may change it).
    pub increment: Money,
    /// When the current phase ends; `None` once closed or while suspended.
    pub deadline_ms: Option<u64>,
    pub suspension: Option<Suspension>,
    /// Bidder id to bidder number.
    pub qualified: BTreeMap<String, BidderNumber>,
    /// Oldest first. A persistent vector: cloning an auction (a snapshot does, under the
    /// state's lock) shares its bids, and the next bid copies one chunk, not all of them.
    pub bids: Vector<BidRecord>,
    /// Bidders who confirmed in `capped`, in log order, each with their nonce.
    pub confirmations: Vec<Confirmation>,
    /// The lottery's secret pool and seed (`kernel::lottery`): never shown while the
    /// auction is open; the draw publishes the seed.
    pub lottery_secret: LotterySecret,
    /// SHA-256 of the lottery seed: set when the auction enters `capped`, public from then.
    pub lottery_commitment: Option<super::lottery::Bytes32>,
    pub winner: Option<Winner>,
    pub closed_at_ms: Option<u64>,
    /// Count of refused commands by rejection code.
    pub rejections: BTreeMap<String, u64>,
    pub audit: Vector<AuditRecord>,
}

impl Auction {
    pub fn new(spec: AuctionSpec) -> Self {
        Auction {
            increment: spec.increment,
            deadline_ms: Some(spec.listing_opens_at_ms),
            phase: Phase::Scheduled,
            spec,
            suspension: None,
            qualified: BTreeMap::new(),
            bids: Vector::new(),
            confirmations: Vec::new(),
            lottery_secret: LotterySecret::default(),
            lottery_commitment: None,
            winner: None,
            closed_at_ms: None,
            rejections: BTreeMap::new(),
            audit: Vector::new(),
        }
    }

    pub fn highest_bid(&self) -> Option<&BidRecord> {
        self.bids.last()
    }

    pub fn current_price(&self) -> Option<Money> {
        self.highest_bid().map(|bid| bid.amount)
    }

    /// The number of distinct bidders with an accepted bid.
    pub fn distinct_bidders(&self) -> usize {
        self.bids
            .iter()
            .map(|bid| bid.bidder_id.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    }

    pub fn bidder_number_of(&self, bidder_id: &str) -> Option<BidderNumber> {
        self.qualified.get(bidder_id).copied()
    }

    /// The auction without the lottery's secret while it is open: what a read of the
    /// kernel's record may show. A closed auction has nothing left to hide.
    pub fn without_open_secrets(&self) -> Auction {
        let mut copy = self.clone();
        if !self.phase.is_closed() {
            copy.lottery_secret = LotterySecret::default();
        }
        copy
    }

    pub(crate) fn record(&mut self, at_ms: u64, actor: &str, action: &str, detail: String) {
        if self.audit.len() >= MAX_AUDIT_RECORDS {
            self.audit.pop_front();
        }
        self.audit.push_back(AuditRecord {
            at_ms,
            actor: actor.to_string(),
            action: action.to_string(),
            detail,
        });
    }
}

impl State {
    /// A SHA-256 over the canonical encoding of the state: equal on replicas that
    /// applied the same log.
    pub fn digest(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    /// The bidder a live session token hash belongs to, at time `now_ms`.
    pub fn session_bidder(&self, token_hash: &str, now_ms: u64) -> Option<&str> {
        self.sessions
            .get(token_hash)
            .filter(|session| session.expires_at_ms > now_ms)
            .map(|session| session.bidder_id.as_str())
    }
}

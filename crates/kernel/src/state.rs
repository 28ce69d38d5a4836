//! The replicated state. Every field is derived from the log alone, so replicas that
//! applied the same entries hold equal states (compared by `State::digest`).

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::archived::ArchiveLedger;
pub use super::auction::{
    Auction, AuditRecord, BidRecord, Phase, Suspension, Winner, MAX_AUDIT_RECORDS,
};
pub use super::lottery::{Confirmation, Lottery, LotterySecret};
use super::operator::OperatorAction;
pub use super::requests::RequestRecord;
use super::requests::RequestRecords;
pub use super::sessions::Session;
use super::sessions::Sessions;
pub use super::signatures::BidderKeys;

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
    /// The public keys each bidder registered for signed bids (`signed_bids`), as JSON
    /// text, so data added to them later needs no new shape of the state.
    #[serde(with = "super::sale::json_text")]
    pub bidder_keys: BidderKeys,
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
pub struct TakeoverRecord {
    pub leader_node_id: u64,
    pub at_ms: u64,
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

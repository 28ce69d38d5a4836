//! The kernel state as Gavel wrote it before the commit–reveal lottery (the first
//! on-disk shape, "v1"): snapshots, backups and archived auctions written then are still
//! read. Only what changed since is restated here — an auction's confirmations (a set of
//! bidder ids, without nonces) and its winner's lottery (a SplitMix64 draw); the rest of
//! the state has the same shape and reuses the kernel's types. Each shape converts into
//! the current one: a lottery drawn then stays a `Lottery::SplitMix64` and re-draws by
//! its own rule, and an auction still open has no committed seed (its draw, if any, is
//! made the old way).
//!
//! The second shape ("v2", format byte 1 like v1) is the state from the commit–reveal
//! lottery until auctions kept the version 1.1 rules (`Auction::sale`): every auction
//! then reads with the base rules. Records in the current shape carry format byte
//! `AUCTIONS_FORMAT`, so a record's shape is known from its first byte, never guessed.
//!
//! The third shape ("v3", format byte 2) is the state from the version 1.1 rules until
//! bidders kept public keys for signed bids (`State::bidder_keys`): its bidders then hold
//! no key. Its auctions have the current shape, so an archived auction record (which holds
//! an auction, not the state) is still written under format byte 2; snapshots and backups,
//! which hold the state, are written under `STATE_FORMAT`.
//!
//! The encoding is positional (bincode), so the field order is the order written then.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use imbl::Vector;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use gavel_kernel::archived::ArchiveLedger;
use gavel_kernel::lottery::{Bytes32, Confirmation, Lottery, LotterySecret};
use gavel_kernel::requests::RequestRecords;
use gavel_kernel::sessions::Sessions;
use gavel_kernel::state::{
    Auction, AuditRecord, BidRecord, Bidder, OperatorRecord, Phase, State, Suspension,
    TakeoverRecord, Winner,
};
use gavel_kernel::types::{AuctionSpec, BidderNumber, Money};

/// The format byte of the records that hold auctions in the current shape: archived
/// auctions, and snapshots and backups of the v3 state; format 1 holds the v1 and v2
/// shapes.
pub(crate) const AUCTIONS_FORMAT: u8 = 2;

/// The format byte of the records that hold the state in the current shape (snapshots,
/// backups); format `AUCTIONS_FORMAT` holds the v3 state.
pub(crate) const STATE_FORMAT: u8 = 3;

/// `State` in the v3 shape: the current one without `bidder_keys`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StateV3 {
    clock_ms: u64,
    bidders: BTreeMap<String, Bidder>,
    sessions: Sessions,
    auctions: BTreeMap<String, Auction>,
    requests: BTreeMap<String, RequestRecords>,
    takeovers: Vec<TakeoverRecord>,
    operator_audit: VecDeque<OperatorRecord>,
    archived: ArchiveLedger,
}

impl StateV3 {
    /// The state's digest as v3 computed it: what a backup written then names.
    pub(super) fn digest(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }
}

impl From<StateV3> for State {
    fn from(old: StateV3) -> State {
        State {
            clock_ms: old.clock_ms,
            leader_term: 0,
            bidders: old.bidders,
            sessions: old.sessions,
            auctions: old.auctions,
            requests: old.requests,
            takeovers: old.takeovers,
            operator_audit: old.operator_audit,
            archived: old.archived,
            bidder_keys: Default::default(),
        }
    }
}

/// `State` in the v2 shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StateV2 {
    clock_ms: u64,
    bidders: BTreeMap<String, Bidder>,
    sessions: Sessions,
    auctions: BTreeMap<String, AuctionV2>,
    requests: BTreeMap<String, RequestRecords>,
    takeovers: Vec<TakeoverRecord>,
    operator_audit: VecDeque<OperatorRecord>,
    archived: ArchiveLedger,
}

/// `Auction` in the v2 shape: the current one without `sale`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AuctionV2 {
    spec: AuctionSpec,
    phase: Phase,
    increment: Money,
    deadline_ms: Option<u64>,
    suspension: Option<Suspension>,
    qualified: BTreeMap<String, BidderNumber>,
    bids: Vector<BidRecord>,
    confirmations: Vec<Confirmation>,
    lottery_secret: LotterySecret,
    lottery_commitment: Option<Bytes32>,
    winner: Option<Winner>,
    closed_at_ms: Option<u64>,
    rejections: BTreeMap<String, u64>,
    audit: Vector<AuditRecord>,
}

/// `ArchivedAuction` in the v2 shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ArchivedAuctionV2 {
    archived_at_index: u64,
    auction: AuctionV2,
}

impl StateV2 {
    /// The state's digest as v2 computed it: what a backup written then names.
    pub(super) fn digest(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }
}

impl From<StateV2> for State {
    fn from(old: StateV2) -> State {
        State {
            clock_ms: old.clock_ms,
            leader_term: 0,
            bidders: old.bidders,
            sessions: old.sessions,
            auctions: old
                .auctions
                .into_iter()
                .map(|(id, auction)| (id, Auction::from(auction)))
                .collect(),
            requests: old.requests,
            takeovers: old.takeovers,
            operator_audit: old.operator_audit,
            archived: old.archived,
            bidder_keys: Default::default(),
        }
    }
}

impl From<AuctionV2> for Auction {
    fn from(old: AuctionV2) -> Auction {
        let mut auction = Auction::new(old.spec);
        auction.phase = old.phase;
        auction.increment = old.increment;
        auction.deadline_ms = old.deadline_ms;
        auction.suspension = old.suspension;
        auction.qualified = old.qualified;
        auction.bids = old.bids;
        auction.confirmations = old.confirmations;
        auction.lottery_secret = old.lottery_secret;
        auction.lottery_commitment = old.lottery_commitment;
        auction.winner = old.winner;
        auction.closed_at_ms = old.closed_at_ms;
        auction.rejections = old.rejections;
        auction.audit = old.audit;
        auction
    }
}

impl ArchivedAuctionV2 {
    /// The index of the entry that archived the auction, and the auction now.
    pub(super) fn into_current(self) -> (u64, Auction) {
        (self.archived_at_index, self.auction.into())
    }
}

/// `State` in the v1 shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StateV1 {
    clock_ms: u64,
    bidders: BTreeMap<String, Bidder>,
    sessions: Sessions,
    auctions: BTreeMap<String, AuctionV1>,
    requests: BTreeMap<String, RequestRecords>,
    takeovers: Vec<TakeoverRecord>,
    operator_audit: VecDeque<OperatorRecord>,
}

/// `Auction` in the v1 shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AuctionV1 {
    spec: AuctionSpec,
    phase: Phase,
    increment: Money,
    deadline_ms: Option<u64>,
    suspension: Option<Suspension>,
    qualified: BTreeMap<String, BidderNumber>,
    bids: Vector<BidRecord>,
    confirmations: BTreeSet<String>,
    winner: Option<WinnerV1>,
    closed_at_ms: Option<u64>,
    rejections: BTreeMap<String, u64>,
    audit: Vector<AuditRecord>,
}

/// `Winner` in the v1 shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WinnerV1 {
    bidder_id: String,
    bidder_number: BidderNumber,
    price: Money,
    lottery: Option<LotteryV1>,
}

/// The v1 lottery: a SplitMix64 draw over the ascending bidder numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LotteryV1 {
    seed: u64,
    entrants: Vec<BidderNumber>,
    drawn_index: u64,
}

/// `ArchivedAuction` in the v1 shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ArchivedAuctionV1 {
    archived_at_index: u64,
    auction: AuctionV1,
}

impl StateV1 {
    /// The state's digest as v1 computed it (`State::digest` over this shape): what a
    /// backup written then names in its header.
    pub(super) fn digest(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }
}

impl From<StateV1> for State {
    fn from(old: StateV1) -> State {
        State {
            clock_ms: old.clock_ms,
            leader_term: 0,
            bidders: old.bidders,
            sessions: old.sessions,
            auctions: old
                .auctions
                .into_iter()
                .map(|(id, auction)| (id, Auction::from(auction)))
                .collect(),
            requests: old.requests,
            takeovers: old.takeovers,
            operator_audit: old.operator_audit,
            // v1 kept no ledger of archived ids; the HTTP handler's look into the node's
            // own archive still refuses the ids archived before.
            archived: Default::default(),
            bidder_keys: Default::default(),
        }
    }
}

impl From<AuctionV1> for Auction {
    fn from(old: AuctionV1) -> Auction {
        let mut auction = Auction::new(old.spec);
        auction.phase = old.phase;
        auction.increment = old.increment;
        auction.deadline_ms = old.deadline_ms;
        auction.suspension = old.suspension;
        auction.qualified = old.qualified;
        auction.bids = old.bids;
        // v1 kept no order and no nonces; its draw sorted the entrants by number.
        auction.confirmations = old
            .confirmations
            .into_iter()
            .map(|bidder_id| Confirmation {
                bidder_id,
                nonce: String::new(),
            })
            .collect();
        auction.lottery_secret = LotterySecret::default();
        auction.lottery_commitment = None;
        auction.winner = old.winner.map(|winner| Winner {
            bidder_id: winner.bidder_id,
            bidder_number: winner.bidder_number,
            price: winner.price,
            lottery: winner.lottery.map(|lottery| Lottery::SplitMix64 {
                seed: lottery.seed,
                entrants: lottery.entrants,
                drawn_index: lottery.drawn_index,
            }),
        });
        auction.closed_at_ms = old.closed_at_ms;
        auction.rejections = old.rejections;
        auction.audit = old.audit;
        auction
    }
}

impl ArchivedAuctionV1 {
    /// The index of the log entry that archived the auction, and the auction in the
    /// current shape (`archive::ArchivedAuction` is built from them).
    pub(super) fn into_current(self) -> (u64, Auction) {
        (self.archived_at_index, self.auction.into())
    }
}

#[cfg(test)]
impl StateV3 {
    /// `state` in the v3 shape (its bidders' keys left out), for the tests of older
    /// encodings.
    pub(super) fn of(state: &State) -> StateV3 {
        StateV3 {
            clock_ms: state.clock_ms,
            bidders: state.bidders.clone(),
            sessions: state.sessions.clone(),
            auctions: state.auctions.clone(),
            requests: state.requests.clone(),
            takeovers: state.takeovers.clone(),
            operator_audit: state.operator_audit.clone(),
            archived: state.archived.clone(),
        }
    }
}

#[cfg(test)]
impl StateV1 {
    /// An empty v1 state at `clock_ms`, for the tests of older encodings.
    pub(super) fn at_clock(clock_ms: u64) -> StateV1 {
        StateV1 {
            clock_ms,
            bidders: BTreeMap::new(),
            sessions: Sessions::default(),
            auctions: BTreeMap::new(),
            requests: BTreeMap::new(),
            takeovers: Vec::new(),
            operator_audit: VecDeque::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::archive::{decode_archived, encode_archived, ArchivedAuction};
    use crate::replication::codec::encode;

    fn sold_by_lottery() -> AuctionV1 {
        let spec = AuctionSpec {
            title: "Parcel sold in v1".to_string(),
            price_cap: Some(1_500),
            listing_opens_at_ms: 10,
            listing_closes_at_ms: 20,
            ..AuctionSpec::example("lot-v1")
        };
        AuctionV1 {
            spec,
            phase: Phase::Sold,
            increment: 100,
            deadline_ms: None,
            suspension: None,
            qualified: BTreeMap::from([("alice".to_string(), 11), ("bob".to_string(), 12)]),
            bids: Vector::new(),
            confirmations: BTreeSet::from(["bob".to_string(), "alice".to_string()]),
            winner: Some(WinnerV1 {
                bidder_id: "bob".to_string(),
                bidder_number: 12,
                price: 1_500,
                lottery: Some(LotteryV1 {
                    seed: 42,
                    entrants: vec![11, 12],
                    drawn_index: 1,
                }),
            }),
            closed_at_ms: Some(99),
            rejections: BTreeMap::new(),
            audit: Vector::new(),
        }
    }

    #[test]
    fn an_auction_archived_in_v1_reads_back_with_its_draw() {
        let old = ArchivedAuctionV1 {
            archived_at_index: 7,
            auction: sold_by_lottery(),
        };
        let bytes = encode("archived auction", &old).expect("encode");
        let record = decode_archived(&bytes).expect("a v1 record decodes");
        assert_eq!(record.archived_at_index, 7);
        let auction = record.auction;
        assert_eq!(auction.phase, Phase::Sold);
        let winner = auction.winner.expect("a winner");
        assert_eq!(
            winner.lottery,
            Some(Lottery::SplitMix64 {
                seed: 42,
                entrants: vec![11, 12],
                drawn_index: 1
            })
        );
        let confirmed: Vec<&str> = auction
            .confirmations
            .iter()
            .map(|confirmation| confirmation.bidder_id.as_str())
            .collect();
        assert_eq!(confirmed, ["alice", "bob"]);
        // A record in the current shape decodes as itself.
        let current = ArchivedAuction {
            archived_at_index: 8,
            auction: Auction::from(sold_by_lottery()),
        };
        let bytes = encode_archived(&current).expect("encode");
        assert_eq!(decode_archived(&bytes).expect("decodes"), current);
    }

    /// `auction` in the v2 shape, as Gavel wrote it before auctions kept the version 1.1
    /// rules.
    fn as_v2(auction: &Auction) -> AuctionV2 {
        AuctionV2 {
            spec: auction.spec.clone(),
            phase: auction.phase,
            increment: auction.increment,
            deadline_ms: auction.deadline_ms,
            suspension: auction.suspension.clone(),
            qualified: auction.qualified.clone(),
            bids: auction.bids.clone(),
            confirmations: auction.confirmations.clone(),
            lottery_secret: auction.lottery_secret.clone(),
            lottery_commitment: auction.lottery_commitment,
            winner: auction.winner.clone(),
            closed_at_ms: auction.closed_at_ms,
            rejections: auction.rejections.clone(),
            audit: auction.audit.clone(),
        }
    }

    #[test]
    fn an_auction_archived_in_v2_reads_back_under_the_base_rules() {
        let current = Auction::from(sold_by_lottery());
        let old = ArchivedAuctionV2 {
            archived_at_index: 9,
            auction: as_v2(&current),
        };
        let bytes = encode("archived auction", &old).expect("encode");
        assert_eq!(bytes[0], 1, "v2 records carry format byte 1");
        let record = decode_archived(&bytes).expect("a v2 record decodes");
        assert_eq!(record.archived_at_index, 9);
        assert_eq!(record.auction, current);
        assert!(record.auction.sale.rules.is_default());
        // The current shape carries its own format byte and its rules.
        let mut with_rules = current.clone();
        with_rules.sale.rules.deposit = 500;
        let record = ArchivedAuction {
            archived_at_index: 10,
            auction: with_rules,
        };
        let bytes = encode_archived(&record).expect("encode");
        assert_eq!(bytes[0], AUCTIONS_FORMAT);
        assert_eq!(decode_archived(&bytes).expect("decodes"), record);
    }

    #[test]
    fn a_v2_state_converts_and_keeps_its_own_digest() {
        let mut state = State {
            clock_ms: 5,
            ..State::default()
        };
        let auction = Auction::from(sold_by_lottery());
        let old = StateV2 {
            clock_ms: 5,
            bidders: BTreeMap::new(),
            sessions: Sessions::default(),
            auctions: BTreeMap::from([("lot-v1".to_string(), as_v2(&auction))]),
            requests: BTreeMap::new(),
            takeovers: Vec::new(),
            operator_audit: VecDeque::new(),
            archived: ArchiveLedger::default(),
        };
        let digest = old.digest();
        state.auctions.insert("lot-v1".to_string(), auction);
        assert_eq!(State::from(old), state);
        assert_ne!(state.digest(), digest, "the current shape has more to it");
    }

    #[test]
    fn a_v3_state_converts_with_no_keys_and_keeps_its_own_digest() {
        let mut state = State {
            clock_ms: 6,
            ..State::default()
        };
        let mut auction = Auction::from(sold_by_lottery());
        auction.sale.rules.deposit = 500;
        state.auctions.insert("lot-v1".to_string(), auction);
        let old = StateV3::of(&state);
        // The v3 digest is the digest of the state of then: the same fields, in order.
        let digest = old.digest();
        let bytes = encode("state", &old).expect("encode");
        let read: StateV3 = crate::replication::codec::decode("state", &bytes).expect("decode");
        assert_eq!(read.digest(), digest);
        let converted = State::from(read);
        assert_eq!(converted, state);
        assert!(converted.bidder_keys.is_empty());
        assert_ne!(
            converted.digest(),
            digest,
            "the current shape has more to it"
        );
        // The current shape differs from v3 by the keys only: its encoding is v3's with
        // the keys' JSON text after it.
        let current = encode("state", &state).expect("encode");
        assert_eq!(&current[..bytes.len()], &bytes[..]);
        assert_eq!(&current[bytes.len() + 8..], b"{}");
    }

    #[test]
    fn a_v1_state_converts_with_its_auctions_and_keeps_its_own_digest() {
        let mut old = StateV1::at_clock(5);
        old.auctions.insert("lot-v1".to_string(), sold_by_lottery());
        let digest = old.digest();
        let state = State::from(old.clone());
        assert_eq!(state.clock_ms, 5);
        assert!(state.auctions["lot-v1"].winner.is_some());
        assert_eq!(old.digest(), digest, "v1's digest is of v1's shape");
        assert_ne!(state.digest(), digest, "the current shape has more to it");
    }
}

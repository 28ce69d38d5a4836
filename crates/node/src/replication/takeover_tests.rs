//! The takeover rule as the state machine applies it: the first command entry of a new
//! leader term gets the failover grace rule before any of its commands, whatever that
//! first command is (a bid that reached the new leader before its own takeover entry).

use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

use super::archive::ArchiveStore;
use super::durable::Durable;
use super::state_machine::StateMachineStore;
use super::{ApplyResponse, Proposal, SharedState, TypeConfig};
use gavel_kernel::{AuctionSpec, Command, Envelope, EventKind, Outcome, Phase};

const START_MS: u64 = 1_700_000_000_000;
const LISTING_CLOSES_MS: u64 = START_MS + 10_000;
const COUNTDOWN_MS: u64 = 5_000;
const GRACE_MS: u64 = 30_000;

fn at(now_ms: u64, actor: &str, command: Command) -> Envelope {
    Envelope {
        now_ms,
        seed: now_ms,
        actor: actor.to_string(),
        command,
    }
}

fn entry(term: u64, leader: u64, index: u64, envelopes: Vec<Envelope>) -> Entry<TypeConfig> {
    let log_id = LogId::new(CommittedLeaderId::new(term, leader), index);
    let payload = if envelopes.is_empty() {
        EntryPayload::Blank
    } else {
        EntryPayload::Normal(Proposal {
            envelopes: Arc::from(envelopes),
        })
    };
    Entry { log_id, payload }
}

fn bid(now_ms: u64, bidder: &str, amount: u64, request_id: &str) -> Envelope {
    let command = Command::PlaceBid {
        auction_id: "lot".to_string(),
        token_hash: token(bidder),
        amount,
        request_id: request_id.to_string(),
    };
    at(now_ms, bidder, command)
}

fn token(bidder: &str) -> String {
    format!("{:0>64}", hex::encode(bidder))
}

/// Term 1, leader 1: two bidders, an auction whose listing closes at
/// `LISTING_CLOSES_MS` with two bids in it, so it enters timed bidding with the deadline
/// `LISTING_CLOSES_MS + COUNTDOWN_MS`.
fn first_term() -> Vec<Entry<TypeConfig>> {
    let spec = AuctionSpec {
        title: "Lot".to_string(),
        failover_grace_ms: GRACE_MS,
        listing_opens_at_ms: START_MS,
        listing_closes_at_ms: LISTING_CLOSES_MS,
        countdown_ms: COUNTDOWN_MS,
        ..AuctionSpec::example("lot")
    };
    let mut setup = vec![at(START_MS, "op", Command::CreateAuction { spec })];
    for bidder in ["alice", "bob"] {
        let register = Command::RegisterBidder {
            bidder_id: bidder.to_string(),
            name: bidder.to_string(),
            secret_salt: "0123456789abcdef0123456789abcdef".to_string(),
            secret_hash: "ab".repeat(32),
        };
        let session = Command::OpenSession {
            token_hash: token(bidder),
            bidder_id: bidder.to_string(),
            expires_at_ms: START_MS + 3_600_000,
            max_sessions_per_bidder: 8,
        };
        let qualify = Command::Qualify {
            auction_id: "lot".to_string(),
            bidder_id: bidder.to_string(),
        };
        setup.extend([register, session, qualify].map(|c| at(START_MS, "op", c)));
    }
    vec![
        entry(1, 1, 1, Vec::new()),
        entry(1, 1, 2, setup),
        entry(1, 1, 3, vec![bid(START_MS + 1_000, "alice", 1_000, "a1")]),
        entry(1, 1, 4, vec![bid(START_MS + 2_000, "bob", 1_100, "b1")]),
        // Listing closes with two bidders: timed bidding until +COUNTDOWN_MS.
        entry(
            1,
            1,
            5,
            vec![bid(LISTING_CLOSES_MS + 100, "alice", 1_200, "a2")],
        ),
    ]
}

async fn open(dir: &std::path::Path) -> (StateMachineStore, SharedState) {
    let durable = Arc::new(Durable::open(&dir.join("raft")).expect("durable"));
    let archive = ArchiveStore::open(&dir.join("archive")).expect("archive");
    let (events, _) = tokio::sync::broadcast::channel(64);
    StateMachineStore::open(durable, archive, events).expect("state machine")
}

fn outcome(response: &ApplyResponse) -> &Result<Outcome, gavel_kernel::Rejection> {
    &response.results[0]
}

// Failover grace: the leader of term 1 dies 100 ms before the countdown ends; term 2's
// leader is elected after the deadline, and the first command it applies is a bid. The
// takeover comes first: the deadline that passed in the gap moves to the bid's stamp
// plus the grace, and the bid is accepted.
#[tokio::test]
async fn a_bid_first_in_a_new_term_finds_the_takeover_applied() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut machine, state) = open(dir.path()).await;
    machine.apply(first_term()).await.expect("term 1");
    let deadline_ms = LISTING_CLOSES_MS + 100 + COUNTDOWN_MS;
    {
        let state = state.read();
        let auction = &state.kernel.auctions["lot"];
        assert_eq!(auction.phase, Phase::TimedBidding);
        assert_eq!(auction.deadline_ms, Some(deadline_ms));
    }

    // Term 2 opens with openraft's blank entry, then a bid 400 ms after the deadline.
    let bid_ms = deadline_ms + 400;
    let term_two = vec![
        entry(2, 3, 6, Vec::new()),
        entry(2, 3, 7, vec![bid(bid_ms, "bob", 1_300, "b2")]),
    ];
    let responses = machine.apply(term_two).await.expect("term 2");
    assert!(
        matches!(outcome(&responses[1]), Ok(Outcome::BidAccepted { .. })),
        "the first bid after the takeover is accepted: {:?}",
        outcome(&responses[1])
    );
    let state = state.read();
    let auction = &state.kernel.auctions["lot"];
    assert_eq!(auction.phase, Phase::TimedBidding);
    // The grace moved the deadline to bid_ms + GRACE_MS; the bid then restarted the
    // countdown from its own time, as every bid in timed bidding does.
    assert_eq!(auction.deadline_ms, Some(bid_ms + COUNTDOWN_MS));
    assert_eq!(auction.bids.len(), 4);
    let takeover = state.kernel.takeovers.last().expect("a takeover record");
    assert_eq!((takeover.leader_node_id, takeover.at_ms), (3, bid_ms));
    assert_eq!(state.kernel.leader_term, 2);
    let extension = auction
        .audit
        .iter()
        .rev()
        .find(|record| record.action == "takeover_extension");
    assert!(extension.is_some(), "the extension is in the audit trail");
}

// The takeover is applied once per term: later entries of the term, and the new leader's
// own takeover entry after a bid, change no deadline.
#[tokio::test]
async fn the_takeover_is_applied_once_per_term() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut machine, state) = open(dir.path()).await;
    machine.apply(first_term()).await.expect("term 1");
    let deadline_ms = LISTING_CLOSES_MS + 100 + COUNTDOWN_MS;
    let first_ms = deadline_ms + 400;
    let takeover = Command::Takeover { leader_node_id: 3 };
    let term_two = vec![
        entry(2, 3, 6, Vec::new()),
        entry(2, 3, 7, vec![at(first_ms, "system", takeover)]),
        entry(
            2,
            3,
            8,
            vec![at(
                first_ms + 10_000,
                "system",
                Command::Advance {
                    auction_id: "lot".to_string(),
                },
            )],
        ),
    ];
    let responses = machine.apply(term_two).await.expect("term 2");
    assert_eq!(
        outcome(&responses[1]),
        &Ok(Outcome::TakeoverRecorded {
            extended: Vec::new()
        })
    );
    let state = state.read();
    assert_eq!(state.kernel.takeovers.len(), 2, "term 1's and term 2's");
    assert_eq!(
        state.kernel.auctions["lot"].deadline_ms,
        Some(first_ms + GRACE_MS)
    );
}

// Events of the takeover go out with the entry's: an extension before the bid.
#[tokio::test]
async fn the_takeover_events_come_before_the_commands_events() {
    let dir = tempfile::tempdir().expect("dir");
    let durable = Arc::new(Durable::open(&dir.path().join("raft")).expect("durable"));
    let archive = ArchiveStore::open(&dir.path().join("archive")).expect("archive");
    let (events, mut receiver) = tokio::sync::broadcast::channel(64);
    let (mut machine, _) = StateMachineStore::open(durable, archive, events).expect("open");
    machine.apply(first_term()).await.expect("term 1");
    while receiver.try_recv().is_ok() {}
    let bid_ms = LISTING_CLOSES_MS + 100 + COUNTDOWN_MS + 400;
    let term_two = vec![entry(2, 3, 6, vec![bid(bid_ms, "bob", 1_300, "b2")])];
    machine.apply(term_two).await.expect("term 2");
    let published = receiver.try_recv().expect("the entry's events");
    let kinds: Vec<&EventKind> = published.events.iter().map(|event| &event.kind).collect();
    assert!(
        matches!(kinds.first(), Some(EventKind::Extended { .. })),
        "the extension first: {kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|kind| matches!(kind, EventKind::Bid { .. })),
        "{kinds:?}"
    );
}

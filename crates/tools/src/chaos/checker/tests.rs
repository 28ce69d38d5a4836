//! The checker finds each kind of wrong history it names, and passes a right one. The
//! auction is built by the kernel itself, so its hash chain is real.

use super::*;
use gavel_kernel::{apply, AuctionSpec, Command, Envelope, Outcome, State};

const AUCTION: &str = "chaos-a1";

fn run(state: &mut State, now_ms: u64, command: Command) -> Outcome {
    let envelope = Envelope {
        now_ms,
        seed: now_ms,
        actor: "test".to_string(),
        command,
    };
    match apply(state, &envelope).result {
        Ok(outcome) => outcome,
        Err(rejection) => panic!("refused: {rejection:?}"),
    }
}

/// Alice bids 1000, Bob 1100, Alice 1200; returns the state and the three receipts'
/// (bid_id, seq).
fn sale() -> (State, Vec<(String, u64)>) {
    let mut state = State::default();
    let spec = AuctionSpec {
        title: "Parcel".to_string(),
        listing_opens_at_ms: 0,
        ..AuctionSpec::example(AUCTION)
    };
    run(&mut state, 0, Command::CreateAuction { spec });
    for bidder in ["alice", "bob"] {
        run(
            &mut state,
            1,
            Command::RegisterBidder {
                bidder_id: bidder.to_string(),
                name: bidder.to_string(),
                secret_salt: "00".repeat(16),
                secret_hash: "ab".repeat(32),
            },
        );
        run(
            &mut state,
            2,
            Command::OpenSession {
                token_hash: token(bidder),
                bidder_id: bidder.to_string(),
                expires_at_ms: 1_000_000,
                max_sessions_per_bidder: 8,
            },
        );
        run(
            &mut state,
            3,
            Command::Qualify {
                auction_id: AUCTION.to_string(),
                bidder_id: bidder.to_string(),
            },
        );
    }
    let mut receipts = Vec::new();
    for (at, bidder, amount) in [(10, "alice", 1000), (20, "bob", 1100), (30, "alice", 1200)] {
        let outcome = run(
            &mut state,
            at,
            Command::PlaceBid {
                auction_id: AUCTION.to_string(),
                token_hash: token(bidder),
                amount,
                request_id: format!("{bidder}-{amount}"),
            },
        );
        let Outcome::BidAccepted { receipt, .. } = outcome else {
            panic!("not a bid: {outcome:?}");
        };
        receipts.push((receipt.bid_id, receipt.seq));
    }
    (state, receipts)
}

/// A session token hash of 64 hex digits, one per bidder.
fn token(bidder: &str) -> String {
    let digit = if bidder == "alice" { "a" } else { "b" };
    digit.repeat(64)
}

fn op(bidder: &str, amount: u64, outcome: BidOutcome) -> BidOp {
    BidOp {
        bidder_id: bidder.to_string(),
        request_id: format!("{bidder}-{amount}"),
        amount,
        outcome,
        started_ms: 0,
        ended_ms: 40,
    }
}

fn acked(receipt: &(String, u64)) -> BidOutcome {
    BidOutcome::Acknowledged {
        bid_id: receipt.0.clone(),
        seq: receipt.1,
    }
}

fn history(receipts: &[(String, u64)]) -> Vec<BidOp> {
    vec![
        op("alice", 1000, acked(&receipts[0])),
        op("bob", 1100, BidOutcome::Unknown),
        op("bob", 1100, acked(&receipts[1])),
        op("alice", 1200, acked(&receipts[2])),
        op(
            "bob",
            1200,
            BidOutcome::Refused {
                code: "below_minimum".to_string(),
            },
        ),
    ]
}

fn replicas(state: &State, nodes: u64) -> Vec<ReplicaReport> {
    let auction = state.auctions.get(AUCTION).cloned();
    (1..=nodes)
        .map(|node_id| ReplicaReport {
            node_id,
            state: Ok((42, state.digest())),
            auction: auction.clone(),
        })
        .collect()
}

#[test]
fn a_right_history_passes() {
    let (state, receipts) = sale();
    let findings = check_round(&history(&receipts), &[], &replicas(&state, 3), 0);
    assert_eq!(findings, Vec::new());
}

#[test]
fn a_missing_acknowledged_bid_is_lost() {
    let (mut state, receipts) = sale();
    let auction = state.auctions.get_mut(AUCTION).unwrap();
    auction.bids.pop_back();
    let findings = check_round(&history(&receipts), &[], &replicas(&state, 3), 0);
    assert!(findings.iter().any(
        |finding| matches!(finding, Finding::Lost { request_id, .. } if request_id == "alice-1200")
    ));
}

#[test]
fn a_bid_committed_twice_is_doubled() {
    let (mut state, receipts) = sale();
    let auction = state.auctions.get_mut(AUCTION).unwrap();
    let mut copy = auction.bids[2].clone();
    copy.seq = 4;
    copy.bid_id = "another-id".to_string();
    auction.bids.push_back(copy);
    let findings = check_round(&history(&receipts), &[], &replicas(&state, 3), 0);
    assert!(findings.contains(&Finding::Doubled {
        bidder_id: "alice".to_string(),
        amount: 1200,
        copies: 2
    }));
    // The kernel's own invariant sees it too: the price did not increase.
    assert!(findings.iter().any(|finding| matches!(
        finding,
        Finding::Invariant {
            violation: Violation::PricesNotIncreasing(_),
            ..
        }
    )));
}

#[test]
fn a_committed_bid_whose_sends_were_refused_is_a_phantom() {
    let (state, receipts) = sale();
    let mut refused = history(&receipts);
    refused[0].outcome = BidOutcome::Refused {
        code: "not_open".to_string(),
    };
    let findings = check_round(&refused, &[], &replicas(&state, 3), 0);
    assert!(findings
        .iter()
        .any(|finding| matches!(finding, Finding::Phantom { amount: 1000, .. })));
    let unsent: Vec<BidOp> = history(&receipts).into_iter().skip(1).collect();
    let findings = check_round(&unsent, &[], &replicas(&state, 3), 0);
    assert!(findings.iter().any(|finding| matches!(
        finding,
        Finding::Phantom { amount: 1000, detail, .. } if detail == "no bidder sent it"
    )));
}

#[test]
fn replicas_that_disagree_or_do_not_answer_fail() {
    let (state, receipts) = sale();
    let mut reports = replicas(&state, 3);
    reports[1].state = Ok((42, "0".repeat(64)));
    reports[2].state = Err("connection refused".to_string());
    let findings = check_round(&history(&receipts), &[], &reports, 0);
    assert!(findings
        .iter()
        .any(|finding| matches!(finding, Finding::Diverged { .. })));
    assert!(findings
        .iter()
        .any(|finding| matches!(finding, Finding::NotRecovered { node_id: 3, .. })));
}

#[test]
fn an_altered_copy_breaks_the_kernels_invariants() {
    let (state, receipts) = sale();
    let mut reports = replicas(&state, 2);
    if let Some(auction) = reports[1].auction.as_mut() {
        auction.bids[1].amount = 1150;
    }
    let findings = check_round(&history(&receipts), &[], &reports, 0);
    assert!(findings.iter().any(|finding| matches!(
        finding,
        Finding::Invariant {
            node_id: 2,
            violation: Violation::ChainBroken(..)
        }
    )));
}

#[test]
fn a_bid_acknowledged_after_the_close_fails() {
    let (state, receipts) = sale();
    let late = vec![op("bob", 5000, acked(&("late".to_string(), 9)))];
    let findings = check_round(&history(&receipts), &late, &replicas(&state, 3), 0);
    assert!(findings.contains(&Finding::AcceptedAfterClose {
        request_id: "bob-5000".to_string()
    }));
}

#[test]
fn an_open_auction_without_a_bid_after_healing_made_no_progress() {
    let (state, receipts) = sale();
    let findings = check_round(&history(&receipts), &[], &replicas(&state, 3), 50);
    assert!(findings
        .iter()
        .any(|finding| matches!(finding, Finding::NoProgress { .. })));
    let findings = check_round(&history(&receipts), &[], &replicas(&state, 3), 39);
    assert_eq!(findings, Vec::new());
    // Closed soon after the heal (its deadline ran out during the fault): not judged.
    let mut closed_soon = replicas(&state, 1);
    if let Some(auction) = closed_soon[0].auction.as_mut() {
        auction.closed_at_ms = Some(50 + PROGRESS_WINDOW_MS - 1);
    }
    let findings = check_round(&history(&receipts), &[], &closed_soon, 50);
    assert!(!findings
        .iter()
        .any(|finding| matches!(finding, Finding::NoProgress { .. })));
}

//! The history checker: what the bidders were told against what every replica holds.
//!
//! Inputs are each bidder's history (every bid sent, acknowledged, refused or unknown),
//! the bids probed after the close, and every node's final answer: its place in the log,
//! its state digest and its copy of the auction. The auction rules themselves are not
//! restated here: each copy must pass the kernel's named invariants
//! (`kernel::invariants::check_auction`: prices strictly increase, one winner holding
//! the highest bid, no bid after close or inside a suspension, an intact hash chain).
//! On top, the checker finds what only a history shows: an acknowledged bid missing or
//! changed (lost), one request committed twice (doubled), a committed bid no bidder sent
//! or whose every send was refused (phantom), a bid acknowledged after the close, and
//! replicas that did not recover or disagree.

use std::collections::BTreeMap;

use crate::bench::load::{BidOp, BidOutcome};
use gavel_kernel::invariants::{check_auction, Violation};
use gavel_kernel::Auction;

/// What one node answered after healing.
#[derive(Debug, Clone)]
pub struct ReplicaReport {
    pub node_id: u64,
    /// `(last_applied_index, digest)`, or why the node did not answer.
    pub state: Result<(u64, String), String>,
    /// The node's copy of the round's auction, if it answered.
    pub auction: Option<Auction>,
}

/// One thing wrong, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    NotRecovered {
        node_id: u64,
        detail: String,
    },
    Diverged {
        detail: String,
    },
    Invariant {
        node_id: u64,
        violation: Violation,
    },
    Lost {
        request_id: String,
        detail: String,
    },
    Doubled {
        bidder_id: String,
        amount: u64,
        copies: usize,
    },
    Phantom {
        bidder_id: String,
        amount: u64,
        detail: String,
    },
    AcceptedAfterClose {
        request_id: String,
    },
    NoProgress {
        detail: String,
    },
    /// An acknowledged bid stamped further from the time it was sent and answered than
    /// `cluster.max_clock_skew_ms`: a clock that was off stamped it (and would bend the
    /// auction's deadlines by as much).
    Mistimed {
        request_id: String,
        detail: String,
    },
    /// The harness could not carry the round out (no leader, a refused setup call).
    RoundAborted {
        detail: String,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::NotRecovered { node_id, detail } => {
                write!(f, "node {node_id} did not recover: {detail}")
            }
            Finding::Diverged { detail } => write!(f, "replicas diverged: {detail}"),
            Finding::Invariant { node_id, violation } => {
                write!(f, "node {node_id}: invariant broken: {violation}")
            }
            Finding::Lost { request_id, detail } => {
                write!(f, "acknowledged bid {request_id} lost: {detail}")
            }
            Finding::Doubled {
                bidder_id,
                amount,
                copies,
            } => write!(f, "bid of {bidder_id} at {amount} committed {copies} times"),
            Finding::Phantom {
                bidder_id,
                amount,
                detail,
            } => write!(f, "committed bid of {bidder_id} at {amount}: {detail}"),
            Finding::AcceptedAfterClose { request_id } => {
                write!(f, "bid {request_id} acknowledged after the close")
            }
            Finding::NoProgress { detail } => write!(f, "no progress after healing: {detail}"),
            Finding::Mistimed { request_id, detail } => {
                write!(f, "bid {request_id} mistimed: {detail}")
            }
            Finding::RoundAborted { detail } => write!(f, "round aborted: {detail}"),
        }
    }
}

/// Checks one round. `history` is every bid the bidders sent while the auction was
/// open; `after_close` the bids sent once it had closed (none may be acknowledged);
/// `healed_at_ms` when the fault was healed (bids must commit again after it while the
/// auction is open).
pub fn check_round(
    history: &[BidOp],
    after_close: &[BidOp],
    replicas: &[ReplicaReport],
    healed_at_ms: u64,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    check_replicas(replicas, &mut findings);
    for op in after_close {
        if matches!(op.outcome, BidOutcome::Acknowledged { .. }) {
            findings.push(Finding::AcceptedAfterClose {
                request_id: op.request_id.clone(),
            });
        }
    }
    let copies: Vec<(u64, &Auction)> = replicas
        .iter()
        .filter_map(|replica| Some((replica.node_id, replica.auction.as_ref()?)))
        .collect();
    for (node_id, auction) in &copies {
        if let Err(violation) = check_auction(auction) {
            findings.push(Finding::Invariant {
                node_id: *node_id,
                violation,
            });
        }
    }
    // The history is judged against the copy of a node that applied the most (a node
    // still lagging is reported by `check_replicas`, not as lost bids).
    let newest = replicas
        .iter()
        .filter_map(|replica| {
            let index = replica.state.as_ref().ok()?.0;
            Some((index, replica.node_id, replica.auction.as_ref()?))
        })
        .max_by_key(|(index, node_id, _)| (*index, std::cmp::Reverse(*node_id)))
        .map(|(_, node_id, auction)| (node_id, auction))
        .or_else(|| copies.first().copied());
    match newest {
        Some((_, auction)) => {
            check_history(history, auction, &mut findings);
            check_progress(history, auction, healed_at_ms, &mut findings);
            check_stamps(history, auction, &mut findings);
        }
        None => findings.push(Finding::Diverged {
            detail: "no node holds the auction".to_string(),
        }),
    }
    findings
}

/// Every node answered, at the same log index with the same digest.
fn check_replicas(replicas: &[ReplicaReport], findings: &mut Vec<Finding>) {
    let mut answers: BTreeMap<(u64, &str), Vec<u64>> = BTreeMap::new();
    for replica in replicas {
        match &replica.state {
            Ok((index, digest)) => answers
                .entry((*index, digest.as_str()))
                .or_default()
                .push(replica.node_id),
            Err(detail) => findings.push(Finding::NotRecovered {
                node_id: replica.node_id,
                detail: detail.clone(),
            }),
        }
    }
    if answers.len() > 1 {
        let detail = answers
            .iter()
            .map(|((index, digest), nodes)| {
                let short = digest.get(..12).unwrap_or(digest);
                format!("nodes {nodes:?} at index {index} digest {short}")
            })
            .collect::<Vec<_>>()
            .join("; ");
        findings.push(Finding::Diverged { detail });
    }
}

/// How long an auction must stay open after the heal before a lack of acknowledged bids
/// counts as no progress (bidders need a moment to learn of a new leader).
pub const PROGRESS_WINDOW_MS: u64 = 3_000;

/// Healing a fault must bring bidding back: an auction still open well after the heal
/// must have taken an acknowledged bid since.
fn check_progress(
    history: &[BidOp],
    auction: &Auction,
    healed_at_ms: u64,
    findings: &mut Vec<Finding>,
) {
    let open_after_heal = auction
        .closed_at_ms
        .is_none_or(|closed| closed > healed_at_ms.saturating_add(PROGRESS_WINDOW_MS));
    let acknowledged_after = history.iter().any(|op| {
        op.ended_ms > healed_at_ms && matches!(op.outcome, BidOutcome::Acknowledged { .. })
    });
    if open_after_heal && !acknowledged_after {
        findings.push(Finding::NoProgress {
            detail: format!(
                "the auction stayed open (closed at {:?}) and no bid was acknowledged after {healed_at_ms}",
                auction.closed_at_ms
            ),
        });
    }
}

/// The bidders' history against the committed bids of one replica's copy.
fn check_history(history: &[BidOp], auction: &Auction, findings: &mut Vec<Finding>) {
    // A bidder never sends one amount under two request_ids unless the first ended
    // unanswered, so (bidder, amount) names the requests a committed bid can stem from.
    let mut sent: BTreeMap<(&str, u64), Vec<&BidOp>> = BTreeMap::new();
    for op in history {
        sent.entry((op.bidder_id.as_str(), op.amount))
            .or_default()
            .push(op);
    }
    let mut committed: BTreeMap<(&str, u64), Vec<&str>> = BTreeMap::new();
    for bid in &auction.bids {
        committed
            .entry((bid.bidder_id.as_str(), bid.amount))
            .or_default()
            .push(bid.bid_id.as_str());
    }
    for ((bidder_id, amount), bid_ids) in &committed {
        if bid_ids.len() > 1 {
            findings.push(Finding::Doubled {
                bidder_id: bidder_id.to_string(),
                amount: *amount,
                copies: bid_ids.len(),
            });
        }
        let sends = sent.get(&(*bidder_id, *amount));
        let detail = match sends {
            None => Some("no bidder sent it"),
            Some(ops)
                if ops
                    .iter()
                    .all(|op| matches!(op.outcome, BidOutcome::Refused { .. })) =>
            {
                Some("every send of it was refused")
            }
            Some(_) => None,
        };
        if let Some(detail) = detail {
            findings.push(Finding::Phantom {
                bidder_id: bidder_id.to_string(),
                amount: *amount,
                detail: detail.to_string(),
            });
        }
    }
    for op in history {
        let BidOutcome::Acknowledged { bid_id, seq } = &op.outcome else {
            continue;
        };
        let found = auction.bids.iter().find(|bid| &bid.bid_id == bid_id);
        let detail = match found {
            None => Some(format!("bid {bid_id} (seq {seq}) is not in the auction")),
            Some(bid) if bid.bidder_id != op.bidder_id || bid.amount != op.amount => Some(format!(
                "bid {bid_id} holds {} at {}, the receipt was for {} at {}",
                bid.bidder_id, bid.amount, op.bidder_id, op.amount
            )),
            Some(bid) if bid.seq != *seq => Some(format!(
                "bid {bid_id} has seq {}, the receipt said {seq}",
                bid.seq
            )),
            Some(_) => None,
        };
        if let Some(detail) = detail {
            findings.push(Finding::Lost {
                request_id: op.request_id.clone(),
                detail,
            });
        }
    }
}

/// How far a bid's stamp may lie outside the time between its first send and its
/// answer: the bound within which a node's clock may lead (`cluster.max_clock_skew_ms`'s
/// default). The chaos nodes share the machine's clock, so only an injected offset that a
/// node stamped with can exceed it.
pub const STAMP_TOLERANCE_MS: u64 = gavel::config::DEFAULT_MAX_CLOCK_SKEW_MS;

/// Every acknowledged bid was stamped within `STAMP_TOLERANCE_MS` of the time it was in
/// flight: deadlines (and closes) follow the stamps, so a sale closes neither early nor
/// late by more than the bound.
fn check_stamps(history: &[BidOp], auction: &Auction, findings: &mut Vec<Finding>) {
    for op in history {
        let BidOutcome::Acknowledged { bid_id, .. } = &op.outcome else {
            continue;
        };
        let Some(bid) = auction.bids.iter().find(|bid| &bid.bid_id == bid_id) else {
            continue;
        };
        let earliest = op.started_ms.saturating_sub(STAMP_TOLERANCE_MS);
        let latest = op.ended_ms.saturating_add(STAMP_TOLERANCE_MS);
        if !(earliest..=latest).contains(&bid.accepted_at_ms) {
            findings.push(Finding::Mistimed {
                request_id: op.request_id.clone(),
                detail: format!(
                    "stamped {} while in flight {}..{}",
                    bid.accepted_at_ms, op.started_ms, op.ended_ms
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests;

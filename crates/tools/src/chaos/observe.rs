//! How the chaos harness watches the cluster it broke: waiting for every node to be up,
//! for the auction to close and for the replicas to agree, probing bids after the close,
//! and reading every replica's state and copy of the auction for the checker.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use super::checker::{Finding, ReplicaReport};
use super::{Harness, INCREMENT, START_PRICE, WAIT_LIMIT};
use crate::bench::load::{BidOp, BidOutcome, Bidder};
use gavel_kernel::Auction;
use gavel_testkit::local::{self, check_interrupt};

impl Harness {
    /// Each node's count of crashed actors its janitor restarted (`None`: no answer).
    pub(super) fn crashed_counts(&self) -> Vec<(u64, Option<u64>)> {
        self.cluster
            .ids()
            .into_iter()
            .map(|id| {
                let count = match self.cluster.control(id, "GET", "/control/v1/janitor", None) {
                    Ok((200, report)) => report["actors_crashed"].as_u64(),
                    _ => None,
                };
                (id, count)
            })
            .collect()
    }

    /// After a `panic` round: every node whose actor was made to panic must report, within
    /// `WAIT_LIMIT`, that its janitor restarted a crashed actor.
    pub(super) fn unrestarted_actors(
        &self,
        before: &[(u64, Option<u64>)],
    ) -> anyhow::Result<Vec<Finding>> {
        let started = Instant::now();
        loop {
            check_interrupt()?;
            let now = self.crashed_counts();
            // A node restarted meanwhile started every actor afresh, its counters too.
            let missing: Vec<u64> = before
                .iter()
                .zip(&now)
                .filter(|((id, _), _)| !self.restarted.contains(id))
                .filter(|((_, was), (_, is))| match (was, is) {
                    (Some(was), Some(is)) => is <= was,
                    _ => true,
                })
                .map(|((id, _), _)| *id)
                .collect();
            if missing.is_empty() {
                return Ok(Vec::new());
            }
            if started.elapsed() > WAIT_LIMIT {
                return Ok(missing
                    .into_iter()
                    .map(|node_id| Finding::NotRecovered {
                        node_id,
                        detail: "its janitor did not restart the crashed auction actor".to_string(),
                    })
                    .collect());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the leader sees every node up; `None` if not within `WAIT_LIMIT`.
    pub(super) fn wait_all_up(
        &mut self,
        notes: &mut Vec<String>,
    ) -> anyhow::Result<Option<Instant>> {
        let started = Instant::now();
        let count = self.cluster.ids().len();
        while started.elapsed() < WAIT_LIMIT {
            check_interrupt()?;
            // A node may exit late (a storage call stalls before it fails): restart
            // it as its service manager would.
            self.restart_exited(notes)?;
            if let Some((_, view)) = self.cluster.leader() {
                if view.nodes.len() == count && view.nodes.iter().all(|node| node.health == "up") {
                    return Ok(Some(Instant::now()));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(None)
    }

    /// Polls the auction until it has closed (countdown plus takeover grace, bounded).
    pub(super) fn wait_closed(&self, auction_id: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        let agent = local::agent();
        while started.elapsed() < WAIT_LIMIT {
            check_interrupt()?;
            for node in &self.cluster.nodes {
                let url = format!("{}/api/v1/auctions/{auction_id}", node.public_url);
                if let Ok((200, view)) = local::request(&agent, "GET", &url, None, None) {
                    let phase = view["phase"].as_str().unwrap_or_default();
                    if ["sold", "unsold", "terminated"].contains(&phase) {
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "{auction_id} did not close within {} s",
            WAIT_LIMIT.as_secs()
        )
    }

    /// One bid from each bidder once the auction has closed, each through another node.
    pub(super) fn bid_after_close(
        &self,
        auction_id: &str,
        bidders: &[Bidder],
        history: &[BidOp],
    ) -> anyhow::Result<Vec<BidOp>> {
        let agent = local::agent();
        let highest = history
            .iter()
            .map(|op| op.amount)
            .max()
            .unwrap_or(START_PRICE);
        let urls = self.cluster.public_urls();
        let mut ops = Vec::new();
        for (index, bidder) in bidders.iter().enumerate() {
            let amount = highest + INCREMENT * (10 + index as u64);
            let request_id = format!("{}-after-close", bidder.bidder_id);
            let url = format!(
                "{}/api/v1/auctions/{auction_id}/bids",
                urls[index % urls.len()]
            );
            let body = json!({"amount": amount, "request_id": request_id});
            let started_ms = local::now_ms();
            let outcome =
                match local::request(&agent, "POST", &url, Some(&bidder.token), Some(body)) {
                    Ok((200 | 201, receipt)) => BidOutcome::Acknowledged {
                        bid_id: receipt["bid_id"].as_str().unwrap_or_default().to_string(),
                        seq: receipt["seq"].as_u64().unwrap_or(0),
                    },
                    Ok((_, problem)) => BidOutcome::Refused {
                        code: problem["code"].as_str().unwrap_or_default().to_string(),
                    },
                    Err(_) => BidOutcome::Unknown,
                };
            ops.push(BidOp {
                bidder_id: bidder.bidder_id.clone(),
                request_id,
                amount,
                outcome,
                started_ms,
                ended_ms: local::now_ms(),
            });
        }
        Ok(ops)
    }

    /// Waits until every node answers with the same log index and digest; `None` if that
    /// did not happen within `WAIT_LIMIT` (the checker then names who disagrees).
    pub(super) fn wait_converged(
        &mut self,
        notes: &mut Vec<String>,
    ) -> anyhow::Result<Option<Instant>> {
        let started = Instant::now();
        while started.elapsed() < WAIT_LIMIT {
            check_interrupt()?;
            // A node may exit late (a storage call stalls before it fails): restart
            // it as its service manager would.
            self.restart_exited(notes)?;
            let states: Vec<Option<(u64, String)>> = self
                .cluster
                .ids()
                .into_iter()
                .map(|id| self.replica_state(id).ok())
                .collect();
            let first = states.first().cloned().flatten();
            if first.is_some() && states.iter().all(|state| *state == first) {
                return Ok(Some(Instant::now()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(None)
    }

    pub(super) fn replica_state(&self, id: u64) -> anyhow::Result<(u64, String)> {
        match self.cluster.control(id, "GET", "/control/v1/state", None)? {
            (200, state) => Ok((
                state["last_applied_index"].as_u64().unwrap_or(0),
                state["digest"].as_str().unwrap_or_default().to_string(),
            )),
            (status, answer) => bail!("GET /control/v1/state answered {status}: {answer}"),
        }
    }

    /// Every node's report, taken again (for up to `WAIT_LIMIT`) until all answered at
    /// the same log index: the janitor and deadline timers keep appending entries, so a
    /// reading taken while one node applies the newest entry is a lag, not a divergence.
    pub(super) fn replica_reports(&self, auction_id: &str) -> anyhow::Result<Vec<ReplicaReport>> {
        let started = Instant::now();
        loop {
            check_interrupt()?;
            let reports = self.replica_reports_once(auction_id);
            let indexes: std::collections::BTreeSet<Option<u64>> = reports
                .iter()
                .map(|report| report.state.as_ref().ok().map(|(index, _)| *index))
                .collect();
            if indexes.len() == 1 || started.elapsed() > WAIT_LIMIT {
                return Ok(reports);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(super) fn replica_reports_once(&self, auction_id: &str) -> Vec<ReplicaReport> {
        self.cluster
            .ids()
            .into_iter()
            .map(|node_id| {
                let state = self
                    .replica_state(node_id)
                    .map_err(|error| format!("{error:#}"));
                let path = format!("/control/v1/state/auctions/{auction_id}");
                let auction = match self.cluster.control(node_id, "GET", &path, None) {
                    Ok((200, auction)) => serde_json::from_value::<Auction>(auction).ok(),
                    _ => None,
                };
                ReplicaReport {
                    node_id,
                    state,
                    auction,
                }
            })
            .collect()
    }
}

//! The bidding load of a benchmark: one thread per bidder, each bidding on one auction
//! through a random node for as long as the run lasts. A bid that gets no answer, or a
//! 5xx (`no_leader` during an election), is retried with the same `request_id` on
//! another random node, so it is committed at most once (docs/API.md).
//!
//! Every acknowledged bid is logged with the moment the attempt that got its receipt
//! was sent and the moment the receipt arrived: that is what lets the takeover
//! benchmark find the first bid committed after a kill.
//!
//! Everything is bounded: the threads stop when told to, at a deadline, or once the
//! whole load has sent `max_requests` requests; one bid's retries last at most
//! `RETRY_WINDOW`, and every request times out (`local::agent`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use serde_json::{json, Value};

use gavel_testkit::local;

/// How long one bid is retried before its outcome is logged as unknown.
const RETRY_WINDOW: Duration = Duration::from_secs(10);
/// Pause between two tries of one bid, and after a failed read: it bounds the
/// resolution of "kill to first committed bid" (several bidders retry at once).
const RETRY_PAUSE: Duration = Duration::from_millis(30);

/// A registered, qualified bidder with an open session.
#[derive(Debug, Clone)]
pub struct Bidder {
    pub bidder_id: String,
    pub token: String,
    /// The number qualification gave it: lets it see when it already leads.
    pub bidder_number: u64,
}

#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub auction_id: String,
    /// Every node's public URL; a killed node just fails and the bid goes elsewhere.
    pub public_urls: Vec<String>,
    pub bidders: Vec<Bidder>,
    pub deadline: Instant,
    pub max_requests: usize,
}

/// A bid that got a receipt: it is committed on a majority of voters.
#[derive(Debug, Clone)]
pub struct Ack {
    pub request_id: String,
    pub bid_id: String,
    pub seq: u64,
    pub amount: u64,
    /// 201 for a new bid, 200 for the original receipt of a retried request_id.
    pub status: u16,
    pub accepted_at_ms: u64,
    /// When the attempt that got the receipt was sent.
    pub sent: Instant,
    /// When the receipt arrived.
    pub received: Instant,
}

/// How one bid ended for the bidder that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BidOutcome {
    /// A receipt: the bid is committed.
    Acknowledged { bid_id: String, seq: u64 },
    /// A 4xx answer with this problem code: the bid is not committed.
    Refused { code: String },
    /// No answer within the retry window: committed or not, nobody was told.
    Unknown,
}

/// One bid a bidder sent (with all its retries), in the order the bids ended.
#[derive(Debug, Clone)]
pub struct BidOp {
    pub bidder_id: String,
    pub request_id: String,
    pub amount: u64,
    pub outcome: BidOutcome,
    /// When the bid was first sent (ms since the Unix epoch).
    pub started_ms: u64,
    /// When the outcome was known (ms since the Unix epoch).
    pub ended_ms: u64,
}

/// What the load did, in receipt order.
#[derive(Debug, Default)]
pub struct LoadLog {
    pub acks: Vec<Ack>,
    /// Every bid sent and how it ended: the history a checker reads.
    pub history: Vec<BidOp>,
    /// Refusals by problem `code` (lost races such as `below_minimum` are normal).
    pub refused: BTreeMap<String, usize>,
    /// Bids still unanswered after `RETRY_WINDOW`: committed or not, nobody was told.
    pub unknown: usize,
    pub requests: usize,
    /// Why the threads stopped early (auction closed, request cap, deadline), if they did.
    pub stopped_early: Vec<String>,
}

struct Shared {
    plan: LoadPlan,
    stop: AtomicBool,
    requests: AtomicUsize,
    log: Mutex<LoadLog>,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, LoadLog> {
        // A bidder thread that panicked cannot leave the log half-written: every
        // change is a single push or increment.
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Why the bidders should stop now, if they should.
    fn stop_reason(&self) -> Option<String> {
        if self.stop.load(Ordering::SeqCst) || local::interrupted() {
            return Some(String::new());
        }
        if Instant::now() >= self.plan.deadline {
            return Some("the load reached its deadline".to_string());
        }
        if self.requests.load(Ordering::SeqCst) >= self.plan.max_requests {
            return Some(format!(
                "the load reached its cap of {} requests",
                self.plan.max_requests
            ));
        }
        None
    }

    fn random_url(&self) -> &str {
        self.plan
            .public_urls
            .choose(&mut rand::thread_rng())
            .map_or("", String::as_str)
    }

    fn request(
        &self,
        agent: &ureq::Agent,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Option<(u16, Value)> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        local::request(agent, method, url, token, body).ok()
    }
}

/// The running bidder threads.
pub struct Load {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(plan: LoadPlan) -> Load {
        let bidders = plan.bidders.clone();
        let shared = Arc::new(Shared {
            plan,
            stop: AtomicBool::new(false),
            requests: AtomicUsize::new(0),
            log: Mutex::new(LoadLog::default()),
        });
        let threads = bidders
            .into_iter()
            .map(|bidder| {
                let shared = shared.clone();
                std::thread::spawn(move || bid_loop(&shared, &bidder))
            })
            .collect();
        Load { shared, threads }
    }

    /// When the first receipt arrived for a bid committed after `since` (the
    /// attempt was sent at or after `since`, and the bid is new: 201, or a replayed
    /// receipt accepted at or after `since_wall_ms`).
    pub fn first_commit_after(&self, since: Instant, since_wall_ms: u64) -> Option<Instant> {
        let log = self.shared.log();
        log.acks
            .iter()
            .rev()
            .take_while(|ack| ack.received >= since)
            .filter(|ack| ack.sent >= since)
            .filter(|ack| ack.status == 201 || ack.accepted_at_ms >= since_wall_ms)
            .map(|ack| ack.received)
            .min()
    }

    pub fn acknowledged(&self) -> usize {
        self.shared.log().acks.len()
    }

    /// Whether every bidder thread has stopped on its own (auction closed, caps).
    pub fn finished(&self) -> bool {
        self.threads.iter().all(JoinHandle::is_finished)
    }

    /// Stops the bidders, waits for their bids in flight, and returns the log.
    pub fn stop(mut self) -> LoadLog {
        self.shared.stop.store(true, Ordering::SeqCst);
        for thread in std::mem::take(&mut self.threads) {
            if thread.join().is_err() {
                self.shared
                    .log()
                    .stopped_early
                    .push("a bidder thread panicked".to_string());
            }
        }
        let mut log = std::mem::take(&mut *self.shared.log());
        log.requests = self.shared.requests.load(Ordering::SeqCst);
        log
    }
}

impl Drop for Load {
    /// A load dropped on an error path tells its threads to stop (each ends within
    /// `RETRY_WINDOW` plus one request timeout) without waiting for them.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

fn bid_loop(shared: &Shared, bidder: &Bidder) {
    let agent = local::agent();
    let auction_path = format!("/api/v1/auctions/{}", shared.plan.auction_id);
    let mut bids_sent = 0_u64;
    loop {
        if let Some(reason) = shared.stop_reason() {
            if !reason.is_empty() {
                shared
                    .log()
                    .stopped_early
                    .push(format!("{}: {reason}", bidder.bidder_id));
            }
            return;
        }
        let url = format!("{}{auction_path}", shared.random_url());
        let Some((200, view)) = shared.request(&agent, "GET", &url, None, None) else {
            std::thread::sleep(RETRY_PAUSE);
            continue;
        };
        if view["phase"] == "suspended" {
            // Frozen by an operator: wait for the resume (the stop reasons bound it).
            std::thread::sleep(RETRY_PAUSE);
            continue;
        }
        if view["phase"] != "listing" && view["phase"] != "timed_bidding" {
            shared.log().stopped_early.push(format!(
                "{}: the auction is {}",
                bidder.bidder_id, view["phase"]
            ));
            return;
        }
        let (Some(amount), false) = (
            view["minimum_next_bid"].as_u64(),
            view["leading_bidder_number"].as_u64() == Some(bidder.bidder_number),
        ) else {
            // Leading already (or no minimum shown): let the others bid first.
            std::thread::sleep(RETRY_PAUSE);
            continue;
        };
        // Unique per bidder and auction: idempotency records are kept per bidder.
        let request_id = format!("{}.{bids_sent}", shared.plan.auction_id);
        bids_sent += 1;
        bid_with_retries(shared, &agent, bidder, &request_id, amount);
    }
}

/// One bid, retried with the same request_id on random nodes while no node answers or
/// a node answers 5xx, for at most `RETRY_WINDOW`; its outcome goes into the log.
fn bid_with_retries(
    shared: &Shared,
    agent: &ureq::Agent,
    bidder: &Bidder,
    request_id: &str,
    amount: u64,
) {
    let body = json!({"amount": amount, "request_id": request_id});
    let started_ms = local::now_ms();
    let record = |outcome: BidOutcome| BidOp {
        bidder_id: bidder.bidder_id.clone(),
        request_id: request_id.to_string(),
        amount,
        outcome,
        started_ms,
        ended_ms: local::now_ms(),
    };
    let started = Instant::now();
    while started.elapsed() < RETRY_WINDOW {
        let url = format!(
            "{}/api/v1/auctions/{}/bids",
            shared.random_url(),
            shared.plan.auction_id
        );
        let sent = Instant::now();
        let answer = shared.request(agent, "POST", &url, Some(&bidder.token), Some(body.clone()));
        let received = Instant::now();
        match answer {
            Some((status @ (200 | 201), receipt)) => {
                let bid_id = receipt["bid_id"].as_str().unwrap_or_default().to_string();
                let seq = receipt["seq"].as_u64().unwrap_or(0);
                let mut log = shared.log();
                log.history.push(record(BidOutcome::Acknowledged {
                    bid_id: bid_id.clone(),
                    seq,
                }));
                log.acks.push(Ack {
                    request_id: request_id.to_string(),
                    bid_id,
                    seq,
                    amount,
                    status,
                    accepted_at_ms: receipt["accepted_at_ms"].as_u64().unwrap_or(0),
                    sent,
                    received,
                });
                return;
            }
            Some((status, problem)) if status < 500 => {
                let code = problem["code"]
                    .as_str()
                    .map_or_else(|| format!("http_{status}"), str::to_string);
                let mut log = shared.log();
                *log.refused.entry(code.clone()).or_default() += 1;
                log.history.push(record(BidOutcome::Refused { code }));
                return;
            }
            _ => std::thread::sleep(RETRY_PAUSE),
        }
    }
    let mut log = shared.log();
    log.unknown += 1;
    log.history.push(record(BidOutcome::Unknown));
}

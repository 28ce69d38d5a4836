//! Bidder clients for the cluster tests: threads that bid through random nodes and keep
//! a history of what they asked and what they were told (ok, refused, or unknown after
//! retrying the same request_id). Every loop is bounded in count and in time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use serde_json::{json, Value};

/// What one bid request ended as.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A receipt: the bid is committed.
    Ok {
        bid_id: String,
        seq: u64,
        amount: u64,
    },
    /// Refused with a code (a lost race: below_minimum, already_leading, ...).
    Refused(String),
    /// No answer after every retry: it may or may not have committed.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub bidder_id: String,
    pub request_id: String,
    pub amount: u64,
    pub outcome: Outcome,
}

pub struct BidderPlan {
    pub bidder_id: String,
    pub token: String,
    pub auction_id: String,
    /// Public URLs of the nodes (a killed node just fails and is retried elsewhere).
    pub public_urls: Vec<String>,
    pub max_bids: usize,
    pub run_for: Duration,
}

/// Runs every plan on its own thread; returns the joined history.
pub fn run(plans: Vec<BidderPlan>) -> Vec<Record> {
    let history = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = plans
        .into_iter()
        .map(|plan| {
            let history = history.clone();
            std::thread::spawn(move || bid_loop(plan, &history))
        })
        .collect();
    for thread in threads {
        thread.join().expect("bidder thread");
    }
    let records = history.lock().expect("history").clone();
    records
}

fn random_url(urls: &[String]) -> &str {
    urls.choose(&mut rand::thread_rng())
        .map(String::as_str)
        .unwrap_or_default()
}

fn try_request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    super::try_request(method, url, token, body).ok()
}

fn bid_loop(plan: BidderPlan, history: &Mutex<Vec<Record>>) {
    let started = Instant::now();
    let mut sent = 0;
    while sent < plan.max_bids && started.elapsed() < plan.run_for {
        let url = format!(
            "{}/api/v1/auctions/{}",
            random_url(&plan.public_urls),
            plan.auction_id
        );
        let Some((200, view)) = try_request("GET", &url, None, None) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if view["phase"] != "listing" && view["phase"] != "timed_bidding" {
            break;
        }
        let amount = view["minimum_next_bid"].as_u64().unwrap_or(0);
        let request_id = format!("{}-{sent}", plan.bidder_id);
        sent += 1;
        let outcome = bid_with_retries(&plan, amount, &request_id);
        history.lock().expect("history").push(Record {
            bidder_id: plan.bidder_id.clone(),
            request_id,
            amount,
            outcome,
        });
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One bid, retried with the same request_id on random nodes while no node answers or
/// there is no leader: at most 40 tries over about 8 s.
fn bid_with_retries(plan: &BidderPlan, amount: u64, request_id: &str) -> Outcome {
    let body = json!({"amount": amount, "request_id": request_id});
    for _ in 0..40 {
        let url = format!(
            "{}/api/v1/auctions/{}/bids",
            random_url(&plan.public_urls),
            plan.auction_id
        );
        match try_request("POST", &url, Some(&plan.token), Some(body.clone())) {
            Some((200 | 201, receipt)) => {
                return Outcome::Ok {
                    bid_id: receipt["bid_id"].as_str().unwrap_or_default().to_string(),
                    seq: receipt["seq"].as_u64().unwrap_or(0),
                    amount,
                }
            }
            Some((status, problem)) if status < 500 => {
                return Outcome::Refused(problem["code"].as_str().unwrap_or("unknown").to_string())
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    Outcome::Unknown
}

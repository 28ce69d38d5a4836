//! What the takeover benchmark prints: a row per kill, the summary figures, and the
//! check of the final bid history against every receipt the bidders were given.
//! Plain data in, text out, so it is unit-tested.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use super::load::LoadLog;

/// What happened to one kill of the leader.
#[derive(Debug, Clone, Default)]
pub struct KillRecord {
    pub number: usize,
    pub killed: Option<u64>,
    pub new_leader: Option<u64>,
    /// From the SIGKILL to the first receipt of a bid sent and committed after it.
    pub first_commit: Option<Duration>,
    /// From the SIGKILL to a ClusterView with every configured voter up, the killed
    /// node not among them.
    pub full_strength: Option<Duration>,
    /// From the restart of the killed node to its showing as an up standby.
    pub rejoined: Option<Duration>,
    /// Why the kill counts as failed; empty when it succeeded.
    pub failures: Vec<String>,
}

impl KillRecord {
    pub fn succeeded(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The final history checked against the receipts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryCheck {
    /// Distinct acknowledged bids (a replayed receipt counts once).
    pub acknowledged: usize,
    pub recorded: usize,
    /// Acknowledged bid ids absent from the history.
    pub missing: Vec<String>,
    /// Acknowledged bid ids present more than once.
    pub duplicated: Vec<String>,
    /// Acknowledged bids whose recorded seq or amount differs from the receipt.
    pub mismatched: Vec<String>,
    pub prices_strictly_increase: bool,
    /// `chain_verified` of the result, when the node reports it.
    pub chain_verified: Option<bool>,
}

impl HistoryCheck {
    pub fn passed(&self) -> bool {
        self.acknowledged > 0
            && self.missing.is_empty()
            && self.duplicated.is_empty()
            && self.mismatched.is_empty()
            && self.prices_strictly_increase
            && self.chain_verified != Some(false)
    }
}

/// Checks `result` (GET /control/v1/auctions/{id}/result) against every receipt.
pub fn check_history(log: &LoadLog, result: &Value) -> HistoryCheck {
    let bids = result["bids"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut recorded: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for bid in bids {
        recorded
            .entry(bid["bid_id"].as_str().unwrap_or_default())
            .or_default()
            .push(bid);
    }
    let mut receipts = BTreeMap::new();
    for ack in &log.acks {
        receipts.insert(
            ack.bid_id.as_str(),
            (ack.seq, ack.amount, ack.request_id.as_str()),
        );
    }
    let mut check = HistoryCheck {
        acknowledged: receipts.len(),
        recorded: bids.len(),
        chain_verified: result["chain_verified"].as_bool(),
        ..HistoryCheck::default()
    };
    for (bid_id, (seq, amount, request_id)) in receipts {
        let named = format!("{bid_id} (request {request_id})");
        match recorded.get(bid_id).map(Vec::as_slice).unwrap_or_default() {
            [] => check.missing.push(named),
            [bid] => {
                if bid["seq"].as_u64() != Some(seq) || bid["amount"].as_u64() != Some(amount) {
                    check.mismatched.push(named);
                }
            }
            _ => check.duplicated.push(named),
        }
    }
    let amounts: Vec<Option<u64>> = bids.iter().map(|bid| bid["amount"].as_u64()).collect();
    check.prices_strictly_increase =
        amounts.iter().all(Option::is_some) && amounts.windows(2).all(|pair| pair[0] < pair[1]);
    check
}

/// The nearest-rank percentile `quantile` (0 < quantile <= 1) of `values`.
pub fn percentile(values: &[Duration], quantile: f64) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied()
}

fn millis(value: Option<Duration>) -> String {
    value.map_or_else(|| "-".to_string(), |value| value.as_millis().to_string())
}

fn node(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_string(), |id| id.to_string())
}

/// One row per kill.
pub fn kill_table(kills: &[KillRecord]) -> String {
    let mut text = format!(
        "{:>4}  {:>6}  {:>10}  {:>19}  {:>21}  {:>13}  {}\n",
        "kill",
        "killed",
        "new leader",
        "kill→first bid ms",
        "kill→full strength ms",
        "rejoin ms",
        "result"
    );
    for kill in kills {
        let result = if kill.succeeded() {
            "ok".to_string()
        } else {
            format!("failed: {}", kill.failures.join("; "))
        };
        let _ = writeln!(
            text,
            "{:>4}  {:>6}  {:>10}  {:>19}  {:>21}  {:>13}  {result}",
            kill.number,
            node(kill.killed),
            node(kill.new_leader),
            millis(kill.first_commit),
            millis(kill.full_strength),
            millis(kill.rejoined),
        );
    }
    text
}

fn figure_line(name: &str, values: &[Duration]) -> String {
    if values.is_empty() {
        return format!("{name}: no measurement\n");
    }
    let total: Duration = values.iter().sum();
    format!(
        "{name}: p50 {} ms, p99 {} ms, max {} ms, mean {} ms (n = {})\n",
        millis(percentile(values, 0.50)),
        millis(percentile(values, 0.99)),
        millis(values.iter().max().copied()),
        (total / values.len() as u32).as_millis(),
        values.len()
    )
}

/// The old system's measured takeover (its published report): 19-25 s, mean about 22 s.
pub const OLD_SYSTEM_TAKEOVER_MS_MEAN: u64 = 22_000;

/// The summary below the table.
pub fn summary(kills: &[KillRecord], log: &LoadLog, check: &HistoryCheck) -> String {
    let succeeded = kills.iter().filter(|kill| kill.succeeded()).count();
    let rate = if kills.is_empty() {
        0.0
    } else {
        100.0 * succeeded as f64 / kills.len() as f64
    };
    let first: Vec<Duration> = kills.iter().filter_map(|kill| kill.first_commit).collect();
    let full: Vec<Duration> = kills.iter().filter_map(|kill| kill.full_strength).collect();
    let mut text = format!(
        "takeovers: {succeeded} of {} succeeded ({rate:.0}%)\n",
        kills.len()
    );
    text.push_str(&figure_line("kill → first committed bid", &first));
    text.push_str(&figure_line("kill → voters at full strength", &full));
    if let Some(median) = percentile(&full, 0.5).filter(|median| !median.is_zero()) {
        let _ = writeln!(
            text,
            "old system (its published report): 19-25 s per takeover, mean ≈ 22 s, 100% of 500; median here to full strength is {:.0}x shorter",
            OLD_SYSTEM_TAKEOVER_MS_MEAN as f64 / median.as_secs_f64() / 1000.0
        );
    }
    let replayed = log.acks.iter().filter(|ack| ack.status == 200).count();
    let refused: Vec<String> = log
        .refused
        .iter()
        .map(|(code, count)| format!("{code} {count}"))
        .collect();
    let _ = writeln!(
        text,
        "bids: {} acknowledged ({replayed} of them original receipts of a retried request_id), refused: {}, unknown after retries: {}; {} requests",
        log.acks.len(),
        if refused.is_empty() { "none".to_string() } else { refused.join(", ") },
        log.unknown,
        log.requests
    );
    for reason in &log.stopped_early {
        let _ = writeln!(text, "bidder stopped early: {reason}");
    }
    let verdict = if check.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(
        text,
        "history check: {verdict}: {} distinct acknowledged bids, {} in the final history; missing {}, duplicated {}, mismatched {}; prices strictly increase: {}; hash chain verified: {}",
        check.acknowledged,
        check.recorded,
        listed(&check.missing),
        listed(&check.duplicated),
        listed(&check.mismatched),
        check.prices_strictly_increase,
        check.chain_verified.map_or("not reported".to_string(), |verified| verified.to_string()),
    );
    text
}

/// A count, with the first few ids when there are any.
fn listed(ids: &[String]) -> String {
    match ids {
        [] => "0".to_string(),
        _ => format!(
            "{} ({}{})",
            ids.len(),
            ids[..ids.len().min(5)].join(", "),
            if ids.len() > 5 { ", …" } else { "" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::json;

    use super::super::load::Ack;
    use super::*;

    fn ack(bid_id: &str, seq: u64, amount: u64) -> Ack {
        let now = Instant::now();
        Ack {
            request_id: format!("r-{bid_id}"),
            bid_id: bid_id.to_string(),
            seq,
            amount,
            status: 201,
            accepted_at_ms: 0,
            sent: now,
            received: now,
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.5), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&values, 0.99), Some(Duration::from_millis(20)));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn every_receipt_once_in_order_passes() {
        let log = LoadLog {
            acks: vec![ack("a", 1, 100), ack("b", 2, 200), ack("a", 1, 100)],
            ..LoadLog::default()
        };
        let result = json!({"chain_verified": true, "bids": [
            {"bid_id": "a", "seq": 1, "amount": 100},
            {"bid_id": "b", "seq": 2, "amount": 200},
            {"bid_id": "c", "seq": 3, "amount": 300}]});
        let check = check_history(&log, &result);
        assert!(check.passed(), "{check:?}");
        assert_eq!((check.acknowledged, check.recorded), (2, 3));
    }

    #[test]
    fn a_lost_a_doubled_or_a_lower_bid_fails() {
        let log = LoadLog {
            acks: vec![ack("a", 1, 100), ack("b", 2, 200)],
            ..LoadLog::default()
        };
        let lost = check_history(
            &log,
            &json!({"bids": [{"bid_id": "a", "seq": 1, "amount": 100}]}),
        );
        assert_eq!(lost.missing, vec!["b (request r-b)".to_string()]);
        let doubled = json!({"bids": [{"bid_id": "a", "seq": 1, "amount": 100}, {"bid_id": "a", "seq": 2, "amount": 150}, {"bid_id": "b", "seq": 3, "amount": 200}]});
        assert_eq!(
            check_history(&log, &doubled).duplicated,
            vec!["a (request r-a)".to_string()]
        );
        let lower = json!({"bids": [{"bid_id": "b", "seq": 2, "amount": 200}, {"bid_id": "a", "seq": 1, "amount": 100}]});
        assert!(!check_history(&log, &lower).prices_strictly_increase);
        assert!(!check_history(&log, &lower).passed());
    }
}

//! `gavel ctl audit`: the audit commands. `verify` recomputes every auction's bid hash
//! chain (`kernel::chain::verify_chain`), re-draws every capped lottery from its
//! published seed and entrants and checks the seed against the commitment published at
//! cap entry (`kernel::lottery::redraw`), and checks the named invariants
//! (`kernel::invariants`), and the signature kept with every signed bid against its
//! bidder's registered keys (docs/RULES.md, "Signed bids"), either online, from a running node's control listener (each
//! auction's result carries its bid records with their hashes and its lottery), or
//! offline, from a stopped node's data directory restored the way the node restores it
//! (`replication::restore_offline`). It prints one line per auction and fails naming each
//! auction, bid record and lottery that does not hold. `list` prints the operator audit
//! trail.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::control_api::{path_segment, ApiRequest, ControlArgs};
use super::Failure;
use gavel::model::views::{hex_32, LotteryView};
use gavel::model::views::{BidderKeyList, ResultBidSignature};
use gavel_kernel::chain::verify_chain;
use gavel_kernel::lottery::redraw;
use gavel_kernel::signatures::{self, Algorithm, BidderKey, Statement};
use gavel_kernel::{invariants, BidRecord};

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check every auction's bid hash chain, lottery and invariants; exits 1 naming what
    /// is broken.
    Verify {
        /// Check a stopped node's data directory (`node.data_dir`) instead of asking the
        /// control listener.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// The operator audit trail: every control action with its operator, oldest first.
    List {
        #[arg(long)]
        operator: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
}

/// What was found wrong with one auction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub auction_id: String,
    pub problem: String,
}

/// Checks one auction's bid records: the chain first (it names the broken record), then
/// that prices strictly increase.
pub fn check_bids<'a, I>(auction_id: &str, bids: I) -> Result<(), Finding>
where
    I: IntoIterator<Item = &'a BidRecord> + Copy,
{
    let finding = |problem: String| Finding {
        auction_id: auction_id.to_string(),
        problem,
    };
    verify_chain(auction_id, bids).map_err(|broken| finding(broken.to_string()))?;
    if let Some((earlier, later)) = bids
        .into_iter()
        .zip(bids.into_iter().skip(1))
        .find(|(earlier, later)| earlier.amount >= later.amount)
    {
        return Err(finding(format!(
            "bid record {} is not above bid record {}",
            later.seq, earlier.seq
        )));
    }
    Ok(())
}

pub fn run(command: &AuditCommand, control: &ControlArgs) -> Result<(), Failure> {
    match command {
        AuditCommand::Verify {
            data_dir: Some(dir),
        } => report(verify_offline(dir)?),
        AuditCommand::Verify { data_dir: None } => report(verify_online(control)?),
        AuditCommand::List {
            operator,
            action,
            limit,
        } => {
            let mut query = Vec::new();
            for (name, value) in [("operator", operator.clone()), ("action", action.clone())] {
                if let Some(value) = value {
                    query.push(format!("{name}={}", path_segment(&value)));
                }
            }
            if let Some(limit) = limit {
                query.push(format!("limit={limit}"));
            }
            let path = if query.is_empty() {
                "/control/v1/audit".to_string()
            } else {
                format!("/control/v1/audit?{}", query.join("&"))
            };
            let reply = control.send(&ApiRequest::get_control(path))?;
            let records = reply
                .as_ref()
                .and_then(|reply| reply.get("records"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for record in records {
                let field = |name: &str| record.get(name).map_or(String::new(), plain);
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    field("at_ms"),
                    field("operator"),
                    field("action"),
                    field("target"),
                    field("outcome"),
                    field("reason")
                );
            }
            Ok(())
        }
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// What was checked of one auction, and what was found wrong.
#[derive(Debug)]
struct Checked {
    auction_id: String,
    bid_count: usize,
    /// Whether a lottery was re-drawn.
    lottery: bool,
    finding: Option<Finding>,
}

fn report(checked: Vec<Checked>) -> Result<(), Failure> {
    let mut broken = Vec::new();
    let (mut bid_total, mut lottery_total) = (0, 0);
    for Checked {
        auction_id,
        bid_count,
        lottery,
        finding,
    } in &checked
    {
        bid_total += bid_count;
        match finding {
            None if *lottery => {
                lottery_total += 1;
                println!("auction {auction_id}: {bid_count} bids, hash chain intact, lottery re-drawn and seed matches its commitment");
            }
            None => println!("auction {auction_id}: {bid_count} bids, hash chain intact"),
            Some(finding) => {
                println!("auction {auction_id}: BROKEN: {}", finding.problem);
                broken.push(format!("{} ({})", finding.auction_id, finding.problem));
            }
        }
    }
    if broken.is_empty() {
        println!(
            "audit verify: {} auctions, {bid_total} bids, {lottery_total} lotteries: every hash chain intact, every lottery re-drawn",
            checked.len()
        );
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "audit verify: {} of {} auctions failed: {}",
            broken.len(),
            checked.len(),
            broken.join("; ")
        )))
    }
}

fn verify_offline(data_dir: &Path) -> Result<Vec<Checked>, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::failed(format!("cannot start a runtime: {error}")))?;
    let applied = runtime
        .block_on(gavel::replication::restore_offline(data_dir))
        .map_err(|error| {
            Failure::failed(format!(
                "audit verify: cannot restore the state of {}: {error}",
                data_dir.display()
            ))
        })?;
    Ok(applied
        .kernel
        .auctions
        .values()
        .map(|auction| {
            let id = auction.spec.id.clone();
            // The invariants include the lottery's re-draw (`invariants::lottery_redraws`).
            let keys = &applied.kernel.bidder_keys;
            let finding = check_bids(&id, &auction.bids).err().or_else(|| {
                invariants::check_auction(auction)
                    .and_then(|()| invariants::bid_signatures_verify(auction, keys))
                    .err()
                    .map(|violation| Finding {
                        auction_id: id.clone(),
                        problem: violation.to_string(),
                    })
            });
            let lottery = auction
                .winner
                .as_ref()
                .is_some_and(|winner| winner.lottery.is_some());
            Checked {
                auction_id: id,
                bid_count: auction.bids.len(),
                lottery,
                finding,
            }
        })
        .collect())
}

fn verify_online(control: &ControlArgs) -> Result<Vec<Checked>, Failure> {
    let listed = control.send(&ApiRequest::get_control("/control/v1/auctions"))?;
    let ids: Vec<String> = listed
        .as_ref()
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::failed("the auction list is not a JSON array"))?
        .iter()
        .filter_map(|auction| auction.get("id").and_then(Value::as_str).map(String::from))
        .collect();
    let mut checked = Vec::with_capacity(ids.len());
    let mut keys = KeysByBidder::default();
    for id in ids {
        let path = format!("/control/v1/auctions/{}/result", path_segment(&id));
        let result = control.send(&ApiRequest::get_control(path))?;
        let bids = result
            .as_ref()
            .and_then(|result| result.get("bids"))
            .cloned()
            .ok_or_else(|| Failure::failed(format!("the result of auction {id} has no bids")))?;
        let bids: Vec<BidRecord> = serde_json::from_value(bids).map_err(|error| {
            Failure::failed(format!("the bids of auction {id} cannot be read: {error}"))
        })?;
        let lottery = result.as_ref().and_then(|result| result.get("lottery"));
        let lottery = lottery.filter(|lottery| !lottery.is_null());
        let finding = check_bids(&id, &bids).err().or_else(|| {
            let result = result.as_ref()?;
            let problem = check_published_lottery(&id, result)
                .and_then(|()| check_published_signatures(&id, result, &bids, &mut keys, control))
                .err()?;
            Some(Finding {
                auction_id: id.clone(),
                problem,
            })
        });
        checked.push(Checked {
            auction_id: id,
            bid_count: bids.len(),
            lottery: lottery.is_some(),
            finding,
        });
    }
    Ok(checked)
}

/// Bidders' public keys as the control listener lists them, fetched once per bidder.
#[derive(Default)]
struct KeysByBidder(std::collections::BTreeMap<String, Vec<BidderKey>>);

impl KeysByBidder {
    fn of(&mut self, bidder_id: &str, control: &ControlArgs) -> Result<&[BidderKey], String> {
        if !self.0.contains_key(bidder_id) {
            let path = format!("/control/v1/bidders/{}/keys", path_segment(bidder_id));
            let listed = control
                .send(&ApiRequest::get_control(path))
                .map_err(|failure| failure.message)?
                .ok_or("the bidder's keys were not answered")?;
            let listed: BidderKeyList = serde_json::from_value(listed).map_err(|error| {
                format!("the keys of bidder {bidder_id} cannot be read: {error}")
            })?;
            let keys = listed
                .keys
                .iter()
                .map(|key| {
                    let parsed = Algorithm::named(&key.algorithm)
                        .and_then(|algorithm| signatures::parse_key(algorithm, &key.public_key))
                        .map_err(|rejection| format!("key {}: {rejection}", key.key_id))?;
                    match parsed.key_id == key.key_id {
                        true => Ok(parsed),
                        false => Err(format!("key {} is listed under another id", parsed.key_id)),
                    }
                })
                .collect::<Result<Vec<_>, String>>()?;
            self.0.insert(bidder_id.to_string(), keys);
        }
        Ok(self.0.get(bidder_id).map_or(&[][..], Vec::as_slice))
    }
}

/// Checks the signatures a result publishes with its bids: every bid of an auction that
/// required signed bids has one (or, while the sale is open, is a proxy's bid whose
/// signature is withheld with its maximum), and each verifies, over the bid's text (a proxy's bid:
/// its bidder's signed maximum, which it does not exceed), under the key it names among
/// its bidder's registered keys.
fn check_published_signatures(
    auction_id: &str,
    result: &Value,
    bids: &[BidRecord],
    keys: &mut KeysByBidder,
    control: &ControlArgs,
) -> Result<(), String> {
    let kept: Vec<ResultBidSignature> = match result.get("bid_signatures") {
        Some(kept) => serde_json::from_value(kept.clone())
            .map_err(|error| format!("the bid signatures cannot be read: {error}"))?,
        None => Vec::new(),
    };
    let withheld: Vec<u64> = match result.get("bid_signatures_withheld") {
        Some(seqs) => serde_json::from_value(seqs.clone())
            .map_err(|error| format!("the withheld bid signatures cannot be read: {error}"))?,
        None => Vec::new(),
    };
    let required = result.get("require_signed_bids") == Some(&Value::Bool(true));
    let covered = |seq: u64| kept.iter().any(|kept| kept.seq == seq) || withheld.contains(&seq);
    if let Some(bid) = bids.iter().find(|bid| required && !covered(bid.seq)) {
        return Err(format!("bid record {} has no signature kept", bid.seq));
    }
    for signature in &kept {
        let problem = |detail: &str| format!("bid record {}: {detail}", signature.seq);
        let bid = bids
            .iter()
            .find(|bid| bid.seq == signature.seq)
            .ok_or_else(|| problem("no such bid record"))?;
        let held = keys.of(&bid.bidder_id, control)?;
        let key = held
            .iter()
            .find(|key| key.key_id == signature.key_id)
            .ok_or_else(|| problem("its key is not one of its bidder's keys"))?;
        let statement = match signature.proxy_max {
            Some(max) if bid.amount > max => {
                return Err(problem(&format!("above the signed proxy maximum {max}")))
            }
            Some(max) => Statement::ProxyMax(max),
            None => Statement::Bid(bid.amount),
        };
        let text = signatures::signed_text(auction_id, statement, &signature.request_id);
        if !signatures::verifies(key, &text, &signature.signature) {
            return Err(problem("its signature does not verify under its key"));
        }
    }
    Ok(())
}

/// Re-draws the lottery a result publishes, if it has one, against the commitment it
/// published at cap entry and its winner.
fn check_published_lottery(auction_id: &str, result: &Value) -> Result<(), String> {
    let Some(lottery) = result.get("lottery").filter(|lottery| !lottery.is_null()) else {
        return Ok(());
    };
    let view: LotteryView = serde_json::from_value(lottery.clone())
        .map_err(|error| format!("the lottery cannot be read: {error}"))?;
    let lottery = view.to_lottery()?;
    let committed = match result.get("lottery_commitment").and_then(Value::as_str) {
        Some(text) => Some(hex_32("lottery_commitment", text)?),
        None if view.rule == "commit_reveal" => {
            return Err(
                "a commit-reveal lottery without a commitment published at cap entry".to_string(),
            )
        }
        None => None,
    };
    let winner = result
        .get("winner_bidder_number")
        .and_then(Value::as_u64)
        .and_then(|number| u32::try_from(number).ok())
        .ok_or("a lottery without a winner")?;
    redraw(auction_id, &lottery, committed.as_ref(), winner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gavel_kernel::chain::{bid_hash, bid_id_from_hash, BidFields, GENESIS_HASH};

    fn chain(amounts: &[u64]) -> Vec<BidRecord> {
        let mut prev = GENESIS_HASH.to_string();
        let mut bids = Vec::new();
        for (index, amount) in amounts.iter().enumerate() {
            let seq = index as u64 + 1;
            let fields = BidFields {
                auction_id: "lot",
                seq,
                bidder_id: "ann",
                bidder_number: 1,
                amount: *amount,
                accepted_at_ms: 1_000 + seq,
            };
            let hash = bid_hash(&prev, &fields);
            bids.push(BidRecord {
                seq,
                bid_id: bid_id_from_hash(&hash),
                bidder_id: "ann".to_string(),
                bidder_number: 1,
                amount: *amount,
                accepted_at_ms: 1_000 + seq,
                prev_hash: prev.clone(),
                hash: hash.clone(),
            });
            prev = hash;
        }
        bids
    }

    #[test]
    fn an_intact_chain_passes_and_an_altered_amount_is_named_by_its_record() {
        let mut bids = chain(&[100, 200, 300]);
        assert_eq!(check_bids("lot", &bids), Ok(()));
        bids[1].amount = 250;
        let finding = check_bids("lot", &bids).unwrap_err();
        assert_eq!(finding.auction_id, "lot");
        assert!(
            finding.problem.contains("bid record 2 of auction lot"),
            "{finding:?}"
        );
    }
}

//! Proxy bidding (docs/RULES.md, "Proxy bidding"): a bidder leaves a hidden maximum, and
//! whenever they are outbid the kernel places the minimum acceptable bid for them in the
//! same step, up to that maximum. The proxies that compete are resolved at once, with
//! arithmetic: the strongest (highest maximum, the earlier of equal ones) leads at one
//! increment above what the runner-up can bid, never above its own maximum or the cap.
//! At most two bids are placed per step, whatever the price range between them.
//!
//! A proxy bid is an ordinary bid of the hash chain, placed with `bidding::append_bid`;
//! its seq and the maximum it was placed under are kept in `SaleState::proxy_bids`. A
//! maximum the bidder signed (required where the auction takes signed bids only) is the
//! bidder's statement behind each bid placed under it: its signature is kept with each
//! of them, marked with the maximum it covers.

use std::cmp::Ordering;

use super::bidding::{
    append_bid, check_amount, check_entry, check_not_excluded, minimum_next_bid,
    note_listing_bidder,
};
use super::command::{Outcome, Receipt};
use super::event::Event;
use super::phases::{advanced, not_open};
use super::rejection::Rejection;
use super::sale::{ProxyAnswer, ProxyMaximum};
use super::signatures::{BidderKeys, KeptSignature, Statement};
use super::signed_bids;
use super::state::{Auction, Phase, State};
use super::types::{validate_id, IncrementRule, Money};

/// A request to set or raise a maximum.
pub struct ProxyRequest<'a> {
    pub auction_id: &'a str,
    pub token_hash: &'a str,
    pub max_amount: Money,
    pub request_id: &'a str,
    /// The bidder's signature of the maximum (`Statement::ProxyMax`), if signed: required
    /// in an auction with `require_signed_bids`, where it is the bidder's signed statement
    /// behind every bid the proxy places.
    pub signature: Option<&'a str>,
}

/// Sets or raises the caller's maximum, then lets the proxies answer; the same
/// request_id with the same maximum answers as the first time.
pub fn set(
    state: &mut State,
    now_ms: u64,
    seed: u64,
    request: ProxyRequest<'_>,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    validate_id("request_id", request.request_id)?;
    if request.max_amount == 0 {
        return Err(Rejection::InvalidRequest(
            "max_amount must be positive".to_string(),
        ));
    }
    let bidder_id = state
        .session_bidder(request.token_hash, now_ms)
        .ok_or(Rejection::Unauthenticated)?
        .to_string();
    let auction = advanced(
        &mut state.auctions,
        request.auction_id,
        now_ms,
        seed,
        events,
    )?;
    let bidder_number = auction
        .bidder_number_of(&bidder_id)
        .ok_or(Rejection::NotQualified)?;
    if let Some(answer) = replayed(auction, &bidder_id, &request) {
        return answer;
    }
    let signature = check_maximum(auction, &state.bidder_keys, &bidder_id, &request)?;
    auction.sale.proxy_order += 1;
    let maximum = ProxyMaximum {
        max_amount: request.max_amount,
        order: auction.sale.proxy_order,
        set_at_ms: now_ms,
        signature,
    };
    auction.sale.proxies.insert(bidder_id.clone(), maximum);
    // The maximum stays hidden: the audit trail names the bidder only.
    let detail = format!("bidder number {bidder_number}");
    auction.record(now_ms, &bidder_id, "proxy_set", detail);
    let placed = resolve(auction, now_ms, seed, events);
    let receipt = placed
        .into_iter()
        .rev()
        .find(|(bidder, _)| *bidder == bidder_id)
        .map(|(_, receipt)| receipt);
    let answer = ProxyAnswer {
        max_amount: request.max_amount,
        bid_seq: receipt.as_ref().map(|receipt| receipt.seq),
    };
    auction
        .sale
        .proxy_requests
        .entry(bidder_id)
        .or_default()
        .insert(request.request_id.to_string(), answer);
    Ok(Outcome::ProxySet {
        max_amount: request.max_amount,
        receipt,
        replayed: false,
    })
}

/// Checks a new maximum of `bidder_id` (its signature, the bidder's standing, the phase,
/// the amount) without changing anything; answers the signature to keep with it.
fn check_maximum(
    auction: &Auction,
    keys: &BidderKeys,
    bidder_id: &str,
    request: &ProxyRequest<'_>,
) -> Result<Option<KeptSignature>, Rejection> {
    let statement = (Statement::ProxyMax(request.max_amount), request.request_id);
    let signature = signed_bids::check(keys, auction, bidder_id, statement, request.signature)?;
    check_not_excluded(auction, bidder_id)?;
    if !matches!(auction.phase, Phase::Listing | Phase::TimedBidding) {
        return Err(not_open(auction));
    }
    check_entry(auction, bidder_id)?;
    let minimum = minimum_next_bid(auction)?;
    if request.max_amount < minimum {
        return Err(Rejection::BelowMinimum { minimum });
    }
    if let Some(existing) = auction.sale.proxies.get(bidder_id) {
        if request.max_amount <= existing.max_amount {
            return Err(Rejection::Conflict(
                "a proxy maximum can only be raised; withdraw it to set a lower one".to_string(),
            ));
        }
    }
    Ok(signature)
}

/// The answer to a request_id the bidder used before for a maximum in this auction.
fn replayed(
    auction: &Auction,
    bidder_id: &str,
    request: &ProxyRequest<'_>,
) -> Option<Result<Outcome, Rejection>> {
    let answer = auction
        .sale
        .proxy_requests
        .get(bidder_id)?
        .get(request.request_id)?;
    if answer.max_amount != request.max_amount {
        return Some(Err(Rejection::RequestIdReused));
    }
    let receipt = answer.bid_seq.and_then(|seq| receipt_of(auction, seq));
    Some(Ok(Outcome::ProxySet {
        max_amount: answer.max_amount,
        receipt,
        replayed: true,
    }))
}

/// The receipt of the bid numbered `seq`.
fn receipt_of(auction: &Auction, seq: u64) -> Option<Receipt> {
    let bid = auction
        .bids
        .get(usize::try_from(seq).ok()?.checked_sub(1)?)?;
    Some(Receipt {
        bid_id: bid.bid_id.clone(),
        seq: bid.seq,
        auction_id: auction.spec.id.clone(),
        amount: bid.amount,
        accepted_at_ms: bid.accepted_at_ms,
    })
}

/// Withdraws the caller's maximum, unless they hold the highest bid.
pub fn withdraw(
    state: &mut State,
    now_ms: u64,
    seed: u64,
    auction_id: &str,
    token_hash: &str,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    let bidder_id = state
        .session_bidder(token_hash, now_ms)
        .ok_or(Rejection::Unauthenticated)?
        .to_string();
    let auction = advanced(&mut state.auctions, auction_id, now_ms, seed, events)?;
    if auction.bidder_number_of(&bidder_id).is_none() {
        return Err(Rejection::NotQualified);
    }
    if auction
        .highest_bid()
        .is_some_and(|bid| bid.bidder_id == bidder_id)
    {
        return Err(Rejection::Leading);
    }
    let withdrawn = auction.sale.proxies.remove(&bidder_id).is_some();
    if withdrawn {
        auction.record(now_ms, &bidder_id, "proxy_withdrawn", String::new());
    }
    Ok(Outcome::ProxyWithdrawn { withdrawn })
}

/// A proxy that may bid now, with what it can bid.
#[derive(Debug, Clone)]
struct Contender {
    bidder_id: String,
    max_amount: Money,
    order: u64,
    /// The highest amount it may bid now (the current price for the leader's own proxy
    /// when it cannot raise it).
    reach: Money,
}

/// The stronger first: the higher maximum, then the earlier one.
fn stronger_first(a: &Contender, b: &Contender) -> Ordering {
    b.max_amount.cmp(&a.max_amount).then(a.order.cmp(&b.order))
}

/// The highest valid next bid of at most `limit` (and the cap), on the increment grid
/// when the rule is `multiple`; `None` below the minimum.
fn highest_valid(auction: &Auction, limit: Money) -> Option<Money> {
    let limit = auction.spec.price_cap.map_or(limit, |cap| limit.min(cap));
    let minimum = minimum_next_bid(auction).ok()?;
    if limit < minimum {
        return None;
    }
    Some(match auction.spec.increment_rule {
        IncrementRule::AtLeast => limit,
        IncrementRule::Multiple => {
            let base = auction.current_price().unwrap_or(auction.spec.start_price);
            base + (limit - base) / auction.increment * auction.increment
        }
    })
}

/// Whether `bidder_id`'s proxy may bid in the auction's phase.
fn may_bid(auction: &Auction, bidder_id: &str) -> bool {
    auction.bidder_number_of(bidder_id).is_some()
        && check_not_excluded(auction, bidder_id).is_ok()
        && check_entry(auction, bidder_id).is_ok()
}

/// The proxies that take part now, strongest first: every one that can beat the current
/// price for a bidder who does not lead, and the leader's own.
fn contenders(auction: &Auction) -> Vec<Contender> {
    let leader = auction.highest_bid().map(|bid| bid.bidder_id.as_str());
    let price = auction.current_price();
    let mut ranked: Vec<Contender> = auction
        .sale
        .proxies
        .iter()
        .filter(|(bidder_id, _)| may_bid(auction, bidder_id))
        .filter_map(|(bidder_id, proxy)| {
            let reach = match highest_valid(auction, proxy.max_amount) {
                Some(reach) => reach,
                None if leader == Some(bidder_id.as_str()) => price?,
                None => return None,
            };
            Some(Contender {
                bidder_id: bidder_id.clone(),
                max_amount: proxy.max_amount,
                order: proxy.order,
                reach,
            })
        })
        .collect();
    ranked.sort_by(stronger_first);
    ranked
}

/// The proxy bids of this step, in order: none, the strongest alone at the minimum, or
/// the runner-up at its last valid bid and the strongest one increment above it (never
/// above the strongest's reach). When the runner-up is the leader's own proxy, its bid
/// would outbid its own bidder: the strongest answers directly at one increment above
/// the runner-up's reach.
fn plan(auction: &Auction) -> Vec<(String, Money)> {
    let ranked = contenders(auction);
    let Some(top) = ranked.first() else {
        return Vec::new();
    };
    let Ok(minimum) = minimum_next_bid(auction) else {
        return Vec::new();
    };
    let leader = auction.highest_bid().map(|bid| bid.bidder_id.as_str());
    let top_leads = leader == Some(top.bidder_id.as_str());
    let Some(runner) = ranked.get(1) else {
        return if top_leads {
            Vec::new()
        } else {
            vec![(top.bidder_id.clone(), minimum)]
        };
    };
    let increment = auction.increment;
    let answer = runner.reach.saturating_add(increment).min(top.reach);
    if leader == Some(runner.bidder_id.as_str()) {
        return vec![(top.bidder_id.clone(), answer.max(minimum))];
    }
    let runner_bid = answer
        .checked_sub(increment)
        .and_then(|limit| highest_valid(auction, runner.max_amount.min(limit)));
    match runner_bid {
        Some(runner_bid) => vec![
            (runner.bidder_id.clone(), runner_bid),
            (top.bidder_id.clone(), answer),
        ],
        None if top_leads => Vec::new(),
        None => vec![(top.bidder_id.clone(), minimum)],
    }
}

/// Lets the proxies answer the auction's current price: places this step's proxy bids
/// (at most two), each an ordinary bid checked as any bid is. Answers the bids placed,
/// by bidder id, in order. Stops when a bid reaches the cap.
pub(crate) fn resolve(
    auction: &mut Auction,
    now_ms: u64,
    seed: u64,
    events: &mut Vec<Event>,
) -> Vec<(String, Receipt)> {
    if auction.sale.proxies.is_empty()
        || !matches!(auction.phase, Phase::Listing | Phase::TimedBidding)
    {
        return Vec::new();
    }
    let mut placed = Vec::new();
    for (bidder_id, amount) in plan(auction) {
        if !matches!(auction.phase, Phase::Listing | Phase::TimedBidding) {
            break;
        }
        if let Err(rejection) = check_amount(auction, &bidder_id, amount) {
            panic!(
                "kernel invariant broken: proxy_bid_valid: auction {}: {amount}: {rejection}",
                auction.spec.id
            );
        }
        let (Some(number), Some(proxy)) = (
            auction.bidder_number_of(&bidder_id),
            auction.sale.proxies.get(&bidder_id),
        ) else {
            break;
        };
        let max_amount = proxy.max_amount;
        let kept = proxy.signature.clone().map(|signature| KeptSignature {
            proxy_max: Some(max_amount),
            ..signature
        });
        note_listing_bidder(auction, &bidder_id);
        let receipt = append_bid(auction, now_ms, seed, (&bidder_id, number), amount, events);
        auction.sale.proxy_bids.insert(receipt.seq, max_amount);
        if let Some(kept) = kept {
            auction.sale.bid_signatures.insert(receipt.seq, kept);
        }
        placed.push((bidder_id, receipt));
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::AuctionSpec;

    fn contender(bidder_id: &str, max_amount: Money, order: u64) -> Contender {
        Contender {
            bidder_id: bidder_id.to_string(),
            max_amount,
            order,
            reach: max_amount,
        }
    }

    #[test]
    fn the_higher_maximum_ranks_first_and_the_earlier_of_equal_ones() {
        let mut ranked = [
            contender("b", 500, 2),
            contender("c", 900, 3),
            contender("a", 500, 1),
        ];
        ranked.sort_by(stronger_first);
        let names: Vec<&str> = ranked.iter().map(|c| c.bidder_id.as_str()).collect();
        assert_eq!(names, ["c", "a", "b"]);
    }

    #[test]
    fn the_highest_valid_bid_is_on_the_grid_and_under_the_cap() {
        let mut auction = Auction::new(AuctionSpec {
            price_cap: Some(5_050),
            ..AuctionSpec::example("lot-1")
        });
        let start = auction.spec.start_price;
        let increment = auction.increment;
        assert_eq!(highest_valid(&auction, start - 1), None);
        assert_eq!(
            highest_valid(&auction, start + increment + 1),
            Some(start + increment)
        );
        auction.spec.increment_rule = IncrementRule::AtLeast;
        assert_eq!(highest_valid(&auction, start + 7), Some(start + 7));
        assert_eq!(highest_valid(&auction, u64::MAX), Some(5_050));
    }
}

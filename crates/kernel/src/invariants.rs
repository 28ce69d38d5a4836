//! The named invariants of an auction. The kernel asserts them after every command that
//! touched an auction (a violation is a bug and stops the node); property tests and the
//! cluster checkers call the same functions.

use std::collections::BTreeSet;

use super::auction::{Auction, Phase};
use super::chain::verify_chain;
use super::sale::CapMode;
use super::sealed;
use super::secondary;
use super::signatures::{self, BidderKeys, KeptSignature, Statement};
use super::state::State;

/// A broken invariant, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("auction {0}: accepted prices do not strictly increase")]
    PricesNotIncreasing(String),
    #[error("auction {0}: a winner without the highest bid or outside a sold auction")]
    WrongWinner(String),
    #[error("auction {0}: a bid accepted after the auction closed")]
    BidAfterClose(String),
    #[error("auction {0}: {1}")]
    ChainBroken(String, String),
    #[error("auction {0}: deadline and phase disagree")]
    DeadlineMismatch(String),
    #[error("auction {0}: a bid from a bidder without qualification")]
    UnqualifiedBid(String),
    #[error("auction {0}: a bid accepted while the auction was suspended")]
    BidWhileSuspended(String),
    #[error("auction {0}: {1}")]
    LotteryMismatch(String, String),
    #[error("auction {0}: a proxy bid above the maximum it was placed under")]
    ProxyAboveMaximum(String),
    #[error("auction {0}: a void bid counts, or a bid of an excluded bidder is not void")]
    VoidBidCounted(String),
    #[error("auction {0}: {1}")]
    CapModeMismatch(String, String),
    #[error("auction {0}: {1}")]
    SignatureMismatch(String, String),
}

/// Every accepted bid that counts is higher than the one that counts before it (void
/// bids are skipped; the hash chain still links them all).
pub fn prices_strictly_increase(auction: &Auction) -> Result<(), Violation> {
    let increasing = auction
        .counted_bids()
        .zip(auction.counted_bids().skip(1))
        .all(|(earlier, later)| earlier.amount < later.amount);
    if increasing {
        Ok(())
    } else {
        Err(Violation::PricesNotIncreasing(auction.spec.id.clone()))
    }
}

/// At most one winner; only a sold auction has one; the winner holds the highest bid,
/// unless the capped lottery drew it from the confirmed bidders. Past the cap under
/// `cap_mode = sealed_bid` the winner's price is the winning quote, and under `secondary`
/// the winner holds the highest secondary bid at the cap (`after_cap_winner`).
pub fn single_winner_holds_highest_bid(auction: &Auction) -> Result<(), Violation> {
    let wrong = || Err(Violation::WrongWinner(auction.spec.id.clone()));
    match (&auction.winner, auction.phase) {
        (None, Phase::Sold) => wrong(),
        (None, _) => Ok(()),
        (Some(_), phase) if phase != Phase::Sold => wrong(),
        (Some(winner), _) if past_cap_by_mode(auction) => after_cap_winner(auction, winner),
        (Some(winner), _) => {
            let Some(highest) = auction.highest_bid() else {
                return wrong();
            };
            if winner.price != highest.amount {
                return wrong();
            }
            match &winner.lottery {
                None if winner.bidder_id != highest.bidder_id => wrong(),
                Some(lottery) if lottery.drawn_number() != Some(winner.bidder_number) => wrong(),
                _ => Ok(()),
            }
        }
    }
}

/// Whether the auction went past the cap under `sealed_bid` or `secondary`.
fn past_cap_by_mode(auction: &Auction) -> bool {
    match auction.sale.rules.cap_mode {
        CapMode::Lottery => false,
        CapMode::SealedBid => auction.lottery_commitment.is_some(),
        CapMode::Secondary => auction.sale.secondary_entered_at_ms.is_some(),
    }
}

/// The winner of an auction decided past the cap by sealed quotes (`sealed::check_winner`:
/// the winner's price equals the winning quote) or by secondary bids
/// (`secondary::check_winner`).
pub fn after_cap_winner(
    auction: &Auction,
    winner: &super::auction::Winner,
) -> Result<(), Violation> {
    let checked = match auction.sale.rules.cap_mode {
        CapMode::SealedBid => sealed::check_winner(auction, winner),
        CapMode::Secondary => secondary::check_winner(auction, winner),
        CapMode::Lottery => Ok(()),
    };
    checked.map_err(|problem| Violation::CapModeMismatch(auction.spec.id.clone(), problem))
}

/// A drawn lottery re-draws to its winner from what it publishes, and its seed matches
/// the commitment published when the auction entered `capped` (`lottery::redraw`); an
/// auction that entered `capped` shows its commitment from then on.
pub fn lottery_redraws(auction: &Auction) -> Result<(), Violation> {
    let mismatch = |problem: String| Violation::LotteryMismatch(auction.spec.id.clone(), problem);
    if auction.phase == Phase::Capped
        && auction.lottery_secret.seed.is_some()
        && auction.lottery_commitment.is_none()
    {
        return Err(mismatch(
            "capped with a seed but no published commitment".to_string(),
        ));
    }
    let Some(winner) = &auction.winner else {
        return Ok(());
    };
    let Some(lottery) = &winner.lottery else {
        return Ok(());
    };
    if matches!(lottery, super::lottery::Lottery::CommitReveal(_))
        && auction.lottery_commitment.is_none()
    {
        return Err(mismatch(
            "a commit-reveal lottery without a commitment published at cap entry".to_string(),
        ));
    }
    super::lottery::redraw(
        &auction.spec.id,
        lottery,
        auction.lottery_commitment.as_ref(),
        winner.bidder_number,
    )
    .map_err(mismatch)
}

/// A proxy never bids above its maximum: every proxy bid is at most the maximum it was
/// placed under, and never above the cap (docs/RULES.md, "Proxy bidding").
pub fn proxy_bids_within_maximum(auction: &Auction) -> Result<(), Violation> {
    let maximum_and_cap = |maximum: &u64| match auction.spec.price_cap {
        Some(cap) => (*maximum).min(cap),
        None => *maximum,
    };
    let within = auction.sale.proxy_bids.iter().all(|(seq, maximum)| {
        usize::try_from(*seq)
            .ok()
            .and_then(|seq| seq.checked_sub(1))
            .and_then(|index| auction.bids.get(index))
            .is_some_and(|bid| bid.seq == *seq && bid.amount <= maximum_and_cap(maximum))
    });
    if within {
        Ok(())
    } else {
        Err(Violation::ProxyAboveMaximum(auction.spec.id.clone()))
    }
}

/// The leader, the price and the winner never come from a void bid: the highest bid
/// counts, and no excluded bidder wins, stands in the lottery or holds a sealed quote
/// (docs/RULES.md,
/// "Mutually exclusive parcels"). Checked after every command.
pub fn winner_and_leader_counted(auction: &Auction) -> Result<(), Violation> {
    let excluded = &auction.sale.excluded;
    let counted = auction
        .highest_bid()
        .is_none_or(|bid| !auction.is_void(bid.seq) && !excluded.contains(&bid.bidder_id));
    let winner_counted = auction
        .winner
        .as_ref()
        .is_none_or(|winner| !excluded.contains(&winner.bidder_id));
    let entrants_counted = auction
        .confirmations
        .iter()
        .all(|confirmation| !excluded.contains(&confirmation.bidder_id));
    let quotes_counted = auction
        .sale
        .sealed_quotes
        .keys()
        .all(|bidder_id| !excluded.contains(bidder_id));
    if counted && winner_counted && entrants_counted && quotes_counted {
        Ok(())
    } else {
        Err(Violation::VoidBidCounted(auction.spec.id.clone()))
    }
}

/// Exactly the bids of excluded bidders are void, and the leader and the winner come from
/// bids that count (`winner_and_leader_counted`).
pub fn void_bids_never_count(auction: &Auction) -> Result<(), Violation> {
    let excluded = &auction.sale.excluded;
    let void_exactly_excluded = auction
        .bids
        .iter()
        .all(|bid| auction.is_void(bid.seq) == excluded.contains(&bid.bidder_id));
    let void_known =
        auction.sale.voided.iter().all(|seq| {
            usize::try_from(*seq).is_ok_and(|seq| seq >= 1 && seq <= auction.bids.len())
        });
    if !(void_exactly_excluded && void_known) {
        return Err(Violation::VoidBidCounted(auction.spec.id.clone()));
    }
    winner_and_leader_counted(auction)
}

/// No bid carries a time after the auction's close.
pub fn no_bid_after_close(auction: &Auction) -> Result<(), Violation> {
    match auction.closed_at_ms {
        Some(closed_at)
            if auction
                .bids
                .iter()
                .any(|bid| bid.accepted_at_ms > closed_at) =>
        {
            Err(Violation::BidAfterClose(auction.spec.id.clone()))
        }
        _ => Ok(()),
    }
}

/// No bid carries a time strictly inside a suspension: between a `suspended` record of
/// the audit trail and the `resumed` or closing record after it. (A bid in the same
/// millisecond as the suspension is ordered by the log, not by time, and is not judged.)
pub fn no_bid_while_suspended(auction: &Auction) -> Result<(), Violation> {
    let mut frozen: Vec<(u64, u64)> = Vec::new();
    let mut open_since: Option<u64> = None;
    for record in &auction.audit {
        match (record.action.as_str(), open_since) {
            ("suspended", None) => open_since = Some(record.at_ms),
            ("suspended", Some(_)) => {}
            (_, Some(since)) => {
                frozen.push((since, record.at_ms));
                open_since = None;
            }
            (_, None) => {}
        }
    }
    if let Some(since) = open_since {
        frozen.push((since, u64::MAX));
    }
    let inside = auction.bids.iter().any(|bid| {
        frozen
            .iter()
            .any(|&(from, to)| bid.accepted_at_ms > from && bid.accepted_at_ms < to)
    });
    if inside {
        Err(Violation::BidWhileSuspended(auction.spec.id.clone()))
    } else {
        Ok(())
    }
}

/// Every bid comes from a bidder qualified for the auction, under their number.
pub fn bids_from_qualified_bidders(auction: &Auction) -> Result<(), Violation> {
    let all_qualified = auction
        .bids
        .iter()
        .all(|bid| auction.qualified.get(&bid.bidder_id) == Some(&bid.bidder_number));
    if all_qualified {
        Ok(())
    } else {
        Err(Violation::UnqualifiedBid(auction.spec.id.clone()))
    }
}

/// An open or scheduled auction has a deadline; a suspended or closed one has none.
pub fn deadline_matches_phase(auction: &Auction) -> Result<(), Violation> {
    let expects_deadline = matches!(
        auction.phase,
        Phase::Scheduled
            | Phase::Listing
            | Phase::TimedBidding
            | Phase::Capped
            | Phase::SecondaryBidding
    );
    if expects_deadline == auction.deadline_ms.is_some()
        && (auction.phase == Phase::Suspended) == auction.suspension.is_some()
    {
        Ok(())
    } else {
        Err(Violation::DeadlineMismatch(auction.spec.id.clone()))
    }
}

/// The bid records form an intact hash chain.
pub fn hash_chain_intact(auction: &Auction) -> Result<(), Violation> {
    verify_chain(&auction.spec.id, &auction.bids)
        .map_err(|broken| Violation::ChainBroken(auction.spec.id.clone(), broken.to_string()))
}

/// All of the above.
pub fn check_auction(auction: &Auction) -> Result<(), Violation> {
    prices_strictly_increase(auction)?;
    single_winner_holds_highest_bid(auction)?;
    lottery_redraws(auction)?;
    no_bid_after_close(auction)?;
    no_bid_while_suspended(auction)?;
    bids_from_qualified_bidders(auction)?;
    deadline_matches_phase(auction)?;
    proxy_bids_within_maximum(auction)?;
    void_bids_never_count(auction)?;
    signed_bids_kept(auction)?;
    sealed_quotes_kept_secret(auction)?;
    hash_chain_intact(auction)
}

/// A sealed quote stays secret until its window closes (docs/RULES.md, "Sealed quote"):
/// every quote was taken in the window (not before the bid that reached the cap, not
/// after the window's close), and no audit record before the close (the
/// `sealed_decided` record) names a quote's amount — the price cap aside, which is
/// public. Where the trail no longer holds the close (older records dropped), the
/// records are not checked.
pub fn sealed_quotes_kept_secret(auction: &Auction) -> Result<(), Violation> {
    let quotes = &auction.sale.sealed_quotes;
    if quotes.is_empty() {
        return Ok(());
    }
    let broken = |detail: String| Err(Violation::CapModeMismatch(auction.spec.id.clone(), detail));
    let decided = auction
        .audit
        .iter()
        .position(|record| record.action == "sealed_decided");
    let closed_at = decided.map(|index| auction.audit[index].at_ms);
    let opened_at = auction.highest_bid().map(|bid| bid.accepted_at_ms);
    for (bidder_id, quote) in quotes {
        let early = opened_at.is_some_and(|opened| quote.accepted_at_ms < opened);
        let late = closed_at.is_some_and(|closed| quote.accepted_at_ms > closed);
        if early || late {
            return broken(format!(
                "the sealed quote of {bidder_id} was taken outside its window"
            ));
        }
    }
    let checked = match decided {
        Some(index) => index,
        None if auction.phase.is_closed() => 0,
        None => auction.audit.len(),
    };
    let secret: BTreeSet<String> = quotes
        .values()
        .map(|quote| quote.amount)
        .filter(|amount| Some(*amount) != auction.spec.price_cap)
        .map(|amount| amount.to_string())
        .collect();
    let named = |detail: &str| {
        detail
            .split(|c: char| !c.is_ascii_digit())
            .any(|number| secret.contains(number))
    };
    match auction
        .audit
        .iter()
        .take(checked)
        .find(|record| named(&record.detail))
    {
        Some(record) => broken(format!(
            "the audit record {} at {} names a sealed quote before its window closed",
            record.action, record.at_ms
        )),
        None => Ok(()),
    }
}

/// In an auction that requires signed bids, every bid, sealed quote and secondary bid
/// has its signature kept; and no signature is kept for a bid the auction does not have
/// (docs/RULES.md, "Signed bids").
pub fn signed_bids_kept(auction: &Auction) -> Result<(), Violation> {
    let mismatch = |detail: String| {
        Err(Violation::SignatureMismatch(
            auction.spec.id.clone(),
            detail,
        ))
    };
    let kept = &auction.sale.bid_signatures;
    if let Some((&seq, _)) = kept.last_key_value() {
        if seq == 0 || seq > auction.bids.len() as u64 {
            return mismatch(format!(
                "a signature kept for bid record {seq}, which it does not have"
            ));
        }
    }
    if !auction.sale.rules.require_signed_bids {
        return Ok(());
    }
    if let Some(bid) = auction.bids.iter().find(|bid| !kept.contains_key(&bid.seq)) {
        return mismatch(format!("bid record {} has no signature kept", bid.seq));
    }
    let sale = &auction.sale;
    if let Some((bidder, _)) = sale
        .sealed_quotes
        .iter()
        .find(|(_, q)| q.signature.is_none())
    {
        return mismatch(format!(
            "the sealed quote of {bidder} has no signature kept"
        ));
    }
    if let Some(bid) = sale
        .secondary_bids
        .iter()
        .find(|bid| bid.signature.is_none())
    {
        return mismatch(format!("secondary bid {} has no signature kept", bid.seq));
    }
    Ok(())
}

/// Every signature kept in `auction` verifies, over the text of what it signs, under the
/// key it names among `keys` (the state's `bidder_keys`): each bid's (a proxy's bid: its
/// bidder's signed maximum, which the bid does not exceed), each sealed quote's and each
/// secondary bid's. What the audit checks; the kernel verified each one before taking it.
pub fn bid_signatures_verify(auction: &Auction, keys: &BidderKeys) -> Result<(), Violation> {
    let id = &auction.spec.id;
    let verify = |what: String, bidder_id: &str, statement: Statement, kept: &KeptSignature| {
        let mismatch = |detail: &str| {
            Err(Violation::SignatureMismatch(
                id.clone(),
                format!("{what}: {detail}"),
            ))
        };
        let key = keys
            .get(bidder_id)
            .and_then(|held| held.iter().find(|key| key.key_id == kept.key_id));
        let Some(key) = key else {
            return mismatch("its key is not one of its bidder's keys");
        };
        let text = signatures::signed_text(id, statement, &kept.request_id);
        match signatures::verifies(key, &text, &kept.signature) {
            true => Ok(()),
            false => mismatch("its signature does not verify under its key"),
        }
    };
    for (seq, kept) in &auction.sale.bid_signatures {
        let what = format!("bid record {seq}");
        let Some(bid) = usize::try_from(*seq)
            .ok()
            .and_then(|seq| seq.checked_sub(1))
            .and_then(|index| auction.bids.get(index))
        else {
            return Err(Violation::SignatureMismatch(
                id.clone(),
                format!("{what}: no such bid record"),
            ));
        };
        let statement = match kept.proxy_max {
            Some(max) if bid.amount > max => {
                return Err(Violation::SignatureMismatch(
                    id.clone(),
                    format!("{what}: above the signed proxy maximum {max}"),
                ))
            }
            Some(max) => Statement::ProxyMax(max),
            None => Statement::Bid(bid.amount),
        };
        verify(what, &bid.bidder_id, statement, kept)?;
    }
    for (bidder_id, quote) in &auction.sale.sealed_quotes {
        if let Some(kept) = &quote.signature {
            let what = format!("the sealed quote of {bidder_id}");
            verify(what, bidder_id, Statement::Sealed(quote.amount), kept)?;
        }
    }
    for bid in &auction.sale.secondary_bids {
        if let Some(kept) = &bid.signature {
            let what = format!("secondary bid {}", bid.seq);
            verify(what, &bid.bidder_id, Statement::Secondary(bid.amount), kept)?;
        }
    }
    Ok(())
}

/// Every auction of a whole state, each checked in full (`check_auction`): what a
/// snapshot must satisfy before a node installs it.
pub fn check_state(state: &State) -> Result<(), Violation> {
    state.auctions.values().try_for_each(check_auction)
}

//! Bids and confirmations: who may bid, the minimum, the increment rules, the cap, the
//! countdown reset, exactly-once request_ids and the hash-chained bid record.

use super::cap;
use super::chain::{bid_hash, bid_id_from_hash, BidFields, GENESIS_HASH};
use super::command::{Outcome, Receipt};
use super::event::{Event, EventKind};
use super::lottery::{self, Confirmation};
use super::phases::{advance, advanced, not_open};
use super::rejection::Rejection;
use super::requests::RequestKey;
use super::sale::{CapMode, TimedBiddingEntry};
use super::sealed::{self, QuoteRequest};
use super::secondary::{self, SecondaryRequest};
use super::signatures::Statement;
use super::signed_bids;
use super::state::{Auction, BidRecord, Phase, RequestRecord, State};
use super::types::{validate_id, BidderNumber, IncrementRule, Money};

/// The lowest amount the next bid may carry.
pub fn minimum_next_bid(auction: &Auction) -> Result<Money, Rejection> {
    match auction.current_price() {
        None => Ok(auction.spec.start_price),
        Some(price) => price
            .checked_add(auction.increment)
            .ok_or_else(|| Rejection::InvalidRequest("the next bid would overflow".to_string())),
    }
}

/// Checks an amount against the price rules, without changing anything.
pub fn check_amount(auction: &Auction, bidder_id: &str, amount: Money) -> Result<(), Rejection> {
    if auction
        .highest_bid()
        .is_some_and(|bid| bid.bidder_id == bidder_id)
    {
        return Err(Rejection::AlreadyLeading);
    }
    let minimum = minimum_next_bid(auction)?;
    if amount < minimum {
        return Err(Rejection::BelowMinimum { minimum });
    }
    if let Some(cap) = auction.spec.price_cap {
        if amount > cap {
            return Err(Rejection::AboveCap { cap });
        }
    }
    if auction.spec.increment_rule == IncrementRule::Multiple {
        let base = auction.current_price().unwrap_or(auction.spec.start_price);
        if !(amount - base).is_multiple_of(auction.increment) {
            return Err(Rejection::NotOnIncrement {
                minimum,
                increment: auction.increment,
            });
        }
    }
    Ok(())
}

/// Whether `bidder_id` may bid in the auction's phase: with `timed_bidding_entry =
/// listing_bidders`, timed bidding is for those who bid during the listing only.
pub(crate) fn check_entry(auction: &Auction, bidder_id: &str) -> Result<(), Rejection> {
    let listing_only = auction.sale.rules.timed_bidding_entry == TimedBiddingEntry::ListingBidders;
    if listing_only
        && auction.phase == Phase::TimedBidding
        && !auction.sale.listing_bidders.contains(bidder_id)
    {
        return Err(Rejection::NotAListingBidder);
    }
    Ok(())
}

/// Remembers a bidder whose valid bid is being placed during the listing, where the
/// auction's timed bidding is for listing bidders only.
pub(crate) fn note_listing_bidder(auction: &mut Auction, bidder_id: &str) {
    if auction.phase == Phase::Listing
        && auction.sale.rules.timed_bidding_entry == TimedBiddingEntry::ListingBidders
    {
        auction.sale.listing_bidders.insert(bidder_id.to_string());
    }
}

/// The request of a bid command.
pub struct BidRequest<'a> {
    pub auction_id: &'a str,
    pub token_hash: &'a str,
    pub amount: Money,
    pub request_id: &'a str,
    /// The bidder's signature of the bid (`signed_bids`), standard base64; `None`: unsigned.
    pub signature: Option<&'a str>,
}

/// Places a bid at `now_ms`, or answers the original receipt for a repeated request_id.
pub fn place_bid(
    state: &mut State,
    now_ms: u64,
    seed: u64,
    request: BidRequest<'_>,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    validate_id("request_id", request.request_id)?;
    if request.amount == 0 {
        return Err(Rejection::InvalidRequest(
            "amount must be positive".to_string(),
        ));
    }
    let bidder_id = state
        .session_bidder(request.token_hash, now_ms)
        .ok_or(Rejection::Unauthenticated)?
        .to_string();
    let request_key = RequestKey::of(request.request_id);
    if let Some(answer) = replayed(state, &bidder_id, request_key, &request) {
        return answer;
    }
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
    let statement = (Statement::Bid(request.amount), request.request_id);
    let kept = signed_bids::check(
        &state.bidder_keys,
        auction,
        &bidder_id,
        statement,
        request.signature,
    )?;
    check_not_excluded(auction, &bidder_id)?;
    if !matches!(auction.phase, Phase::Listing | Phase::TimedBidding) {
        return Err(not_open(auction));
    }
    check_entry(auction, &bidder_id)?;
    check_amount(auction, &bidder_id, request.amount)?;
    note_listing_bidder(auction, &bidder_id);
    let receipt = append_bid(
        auction,
        now_ms,
        seed,
        (&bidder_id, bidder_number),
        request.amount,
        events,
    );
    if let Some(kept) = kept {
        auction.sale.bid_signatures.insert(receipt.seq, kept);
    }
    state.requests.entry(bidder_id).or_default().insert(
        request_key,
        request.request_id.to_string(),
        RequestRecord {
            auction_id: request.auction_id.to_string(),
            amount: request.amount,
            receipt: receipt.clone(),
            recorded_at_ms: now_ms,
        },
    );
    Ok(Outcome::BidAccepted {
        receipt,
        replayed: false,
    })
}

/// The answer to a request_id the bidder used before: its receipt again for the same
/// request, a refusal for a different one; `None` for a new request_id.
fn replayed(
    state: &State,
    bidder_id: &str,
    request_key: RequestKey,
    request: &BidRequest<'_>,
) -> Option<Result<Outcome, Rejection>> {
    let (recorded_id, previous) = state
        .requests
        .get(bidder_id)
        .and_then(|records| records.get(request_key))?;
    // A different id under the same key (a SHA-256 collision) is refused, never
    // answered with another request's receipt nor recorded over it.
    Some(
        if recorded_id == request.request_id
            && previous.auction_id == request.auction_id
            && previous.amount == request.amount
        {
            Ok(Outcome::BidAccepted {
                receipt: previous.receipt.clone(),
                replayed: true,
            })
        } else {
            Err(Rejection::RequestIdReused)
        },
    )
}

/// Refuses a bidder whose qualification an exclusive group withdrew (docs/RULES.md,
/// "Mutually exclusive parcels").
pub(crate) fn check_not_excluded(auction: &Auction, bidder_id: &str) -> Result<(), Rejection> {
    if auction.sale.excluded.contains(bidder_id) {
        return Err(Rejection::ExcludedByGroup);
    }
    Ok(())
}

/// Appends an accepted bid of `amount` by `bidder` (id and number) to the auction's hash
/// chain: the countdown restarts in timed bidding, and a bid that reaches the cap stops
/// price bidding. The auction is open for bids (its deadline not passed) and the amount
/// was checked. Answers its receipt.
pub(crate) fn append_bid(
    auction: &mut Auction,
    now_ms: u64,
    seed: u64,
    bidder: (&str, BidderNumber),
    amount: Money,
    events: &mut Vec<Event>,
) -> Receipt {
    let (bidder_id, bidder_number) = bidder;
    assert!(
        now_ms <= auction.deadline_ms.unwrap_or(0),
        "kernel: accepting a bid after the deadline"
    );
    let seq = auction.bids.len() as u64 + 1;
    // The chain links every record, void or not.
    let prev_hash = auction
        .bids
        .last()
        .map_or(GENESIS_HASH.to_string(), |bid| bid.hash.clone());
    let auction_id = auction.spec.id.clone();
    let hash = bid_hash(
        &prev_hash,
        &BidFields {
            auction_id: &auction_id,
            seq,
            bidder_id,
            bidder_number,
            amount,
            accepted_at_ms: now_ms,
        },
    );
    let bid_id = bid_id_from_hash(&hash);
    lottery::mix(&mut auction.lottery_secret.pool, seed);
    auction.bids.push_back(BidRecord {
        seq,
        bid_id: bid_id.clone(),
        bidder_id: bidder_id.to_string(),
        bidder_number,
        amount,
        accepted_at_ms: now_ms,
        prev_hash,
        hash,
    });
    if auction.phase == Phase::TimedBidding {
        auction.deadline_ms = Some(now_ms.saturating_add(auction.spec.countdown_ms));
    }
    events.push(Event {
        auction_id: auction_id.clone(),
        kind: EventKind::Bid { seq },
    });
    if cap::cap_reached(auction) {
        cap::reach_cap(auction, now_ms, seed, events);
    }
    Receipt {
        bid_id,
        seq,
        auction_id,
        amount,
        accepted_at_ms: now_ms,
    }
}

/// What a confirmation asks: the auction, the caller's session, and their nonce (empty:
/// none).
pub struct ConfirmRequest<'a> {
    pub auction_id: &'a str,
    pub token_hash: &'a str,
    pub nonce: &'a str,
}

/// In `capped`: a bidder holding a valid bid joins the lottery with their nonce. The
/// first confirmation stands: repeating it with the same nonce is harmless, with another
/// nonce a conflict.
pub fn confirm(
    state: &mut State,
    now_ms: u64,
    seed: u64,
    request: ConfirmRequest<'_>,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    lottery::validate_nonce(request.nonce)?;
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
    if auction.bidder_number_of(&bidder_id).is_none() {
        return Err(Rejection::NotQualified);
    }
    check_not_excluded(auction, &bidder_id)?;
    // Under `sealed_bid`, `capped` takes quotes, not confirmations.
    if auction.phase != Phase::Capped || auction.sale.rules.cap_mode != CapMode::Lottery {
        return Err(not_open(auction));
    }
    if !auction.counted_bids().any(|bid| bid.bidder_id == bidder_id) {
        return Err(Rejection::NotEligible);
    }
    let earlier = auction
        .confirmations
        .iter()
        .find(|confirmation| confirmation.bidder_id == bidder_id);
    match earlier {
        Some(earlier) if earlier.nonce == request.nonce => {}
        Some(_) => {
            return Err(Rejection::Conflict(
                "already confirmed with another nonce; the first confirmation stands".to_string(),
            ))
        }
        None => {
            auction.confirmations.push(Confirmation {
                bidder_id,
                nonce: request.nonce.to_string(),
            });
            events.push(Event {
                auction_id: request.auction_id.to_string(),
                kind: EventKind::Confirmation,
            });
        }
    }
    Ok(Outcome::Confirmed)
}

/// What a sealed quote or a secondary bid asks: the auction, the caller's session, the
/// amount, the request_id, and the bidder's signature of it if signed.
pub struct AfterCapRequest<'a> {
    pub auction_id: &'a str,
    pub token_hash: &'a str,
    pub amount: u64,
    pub request_id: &'a str,
    pub signature: Option<&'a str>,
}

impl AfterCapRequest<'_> {
    /// Checks the request's own fields, and answers the caller's bidder id.
    fn bidder_id(&self, state: &State, now_ms: u64) -> Result<String, Rejection> {
        validate_id("request_id", self.request_id)?;
        if self.amount == 0 {
            return Err(Rejection::InvalidRequest(
                "amount must be positive".to_string(),
            ));
        }
        state
            .session_bidder(self.token_hash, now_ms)
            .map(str::to_string)
            .ok_or(Rejection::Unauthenticated)
    }
}

/// Under `cap_mode = sealed_bid`: the caller's one sealed quote (`sealed`).
pub fn submit_sealed_quote(
    state: &mut State,
    now_ms: u64,
    seed: u64,
    request: AfterCapRequest<'_>,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    let bidder_id = request.bidder_id(state, now_ms)?;
    let auction = advanced(
        &mut state.auctions,
        request.auction_id,
        now_ms,
        seed,
        events,
    )?;
    let quote = QuoteRequest {
        bidder_id: &bidder_id,
        amount: request.amount,
        request_id: request.request_id,
    };
    auction
        .bidder_number_of(&bidder_id)
        .ok_or(Rejection::NotQualified)?;
    if let Some(answer) = sealed::replayed(auction, &quote) {
        return answer;
    }
    let statement = (Statement::Sealed(request.amount), request.request_id);
    let kept = signed_bids::check(
        &state.bidder_keys,
        auction,
        &bidder_id,
        statement,
        request.signature,
    )?;
    sealed::submit(auction, now_ms, &quote, kept, events)
}

/// Under `cap_mode = secondary`: a bid on the second quantity (`secondary`). A request_id
/// is the bidder's across price and secondary bids: one used for a price bid is
/// `request_id_reused` here.
pub fn place_secondary_bid(
    state: &mut State,
    now_ms: u64,
    seed: u64,
    request: AfterCapRequest<'_>,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    let bidder_id = request.bidder_id(state, now_ms)?;
    let used_for_a_price_bid = state
        .requests
        .get(&bidder_id)
        .and_then(|records| records.get(RequestKey::of(request.request_id)))
        .is_some();
    let auction = state
        .auctions
        .get_mut(request.auction_id)
        .ok_or(Rejection::AuctionNotFound)?;
    let secondary_request = SecondaryRequest {
        auction_id: request.auction_id,
        bidder_id: &bidder_id,
        amount: request.amount,
        request_id: request.request_id,
    };
    if let Some(answer) = secondary::replayed(auction, &secondary_request) {
        return answer;
    }
    if used_for_a_price_bid {
        return Err(Rejection::RequestIdReused);
    }
    auction
        .bidder_number_of(&bidder_id)
        .ok_or(Rejection::NotQualified)?;
    let statement = (Statement::Secondary(request.amount), request.request_id);
    let kept = signed_bids::check(
        &state.bidder_keys,
        auction,
        &bidder_id,
        statement,
        request.signature,
    )?;
    advance(auction, now_ms, seed, events);
    secondary::place(auction, now_ms, &secondary_request, kept, events)
}

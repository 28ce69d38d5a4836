//! A reference model of docs/RULES.md, written from the rules and not from the kernel: one
//! auction's phase, price, leader, deadline and winner. It is evaluated eagerly: after
//! `catch_up(now)` it is the auction as it stands at `now`. Bidders are small numbers;
//! their ids are `b0`, `b1`, ….
//!
//! What it predicts exactly, for every command: the answer (accepted, or the rejection
//! code; for bids, the set of codes the rules allow), and the phase, deadline, increment,
//! every bid (with the void ones and the ones a proxy placed, under which maximum), the
//! lottery confirmations, the winner's confirmation, and for the version 1.1 modes:
//!
//! - proxy bidding: the maximums, the bids the proxies place (by the arithmetic of
//!   "Competing proxies resolve at once"), the answers to setting and withdrawing;
//! - exclusive groups: who is excluded where, which bids are void, the price and leader
//!   recomputed and the proxies' answers to them. The model does not know *when* the
//!   kernel applies a close (closes are applied lazily, when a command touches the
//!   auction): the test tells it, from the kernel's `Closed` events, and the model then
//!   excludes the winner (`exclude`);
//! - `cap_mode = sealed_bid`: the window, every quote's answer, the winning amount under
//!   both rules (`highest`, `closest_to_average`) and the tied bidders; the draw among
//!   several tied bidders is checked by the test with `rules_draw` and the seed the kernel
//!   reveals (its commitment checked against the one published at cap entry);
//! - `cap_mode = secondary`: the phase, every secondary bid's answer and receipt, the
//!   close at `max` and the winner at the cap;
//! - signed bids: which bids are refused for their signature, and which accepted bids
//!   keep one.
//!
//! What it leaves to invariants (checked by the test and `gavel_kernel::invariants`):
//! bid ids and hashes (the chain), bidder numbers, the lottery seed itself, and the
//! secrecy of sealed quotes and proxy maximums.

use std::collections::{BTreeMap, BTreeSet};

use gavel_kernel::sale::{CapMode, ConfirmationStatus, SaleRules, SealedRule, TimedBiddingEntry};
use gavel_kernel::{Auction, AuctionSpec, IncrementRule, Outcome, Phase, Rejection};
use sha2::{Digest, Sha256};

/// Price cap, `cap_mode` `lottery`: the commitment published at cap entry is the
/// SHA-256 of the seed's bytes.
pub fn rules_commitment(seed: &[u8]) -> [u8; 32] {
    Sha256::digest(seed).into()
}

/// Price cap, `cap_mode` `lottery`: "the draw uses the seed mixed with the
/// confirmations in log order", as README's "Checking a lottery" writes it out: the
/// SHA-256 of `gavel-lottery`, the auction id, the seed in hex and one
/// `number:nonce` line per confirmation; its first 8 bytes, big-endian, modulo the
/// number of entrants, index them.
pub fn rules_draw(auction_id: &str, seed: &[u8], entrants: &[(u32, String)]) -> usize {
    let mut text = format!("gavel-lottery\n{auction_id}\n{}\n", hex::encode(seed));
    for (number, nonce) in entrants {
        text += &format!("{number}:{nonce}\n");
    }
    let digest = Sha256::digest(text.as_bytes());
    let first: [u8; 8] = digest[..8].try_into().expect("8 bytes");
    (u64::from_be_bytes(first) % entrants.len() as u64) as usize
}

/// Sealed quote: the winning amount under `rule` ("the highest quote"; "the quote nearest
/// the mean of all quotes, the mean in integer arithmetic ... on a tie of distance the
/// lower quote").
pub fn rules_winning_quote(rule: SealedRule, amounts: &[u64]) -> Option<u64> {
    let highest = amounts.iter().copied().max()?;
    match rule {
        SealedRule::Highest => Some(highest),
        SealedRule::ClosestToAverage => {
            let mean =
                (amounts.iter().map(|&a| a as u128).sum::<u128>() / amounts.len() as u128) as u64;
            let distance = |amount: u64| amount.abs_diff(mean);
            let nearest = amounts.iter().map(|&a| distance(a)).min()?;
            amounts
                .iter()
                .copied()
                .filter(|&a| distance(a) == nearest)
                .min()
        }
    }
}

/// A nonce the rules accept: at most 64 characters of `A-Z a-z 0-9 _ -`.
pub fn nonce_is_valid(nonce: &str) -> bool {
    nonce.len() <= 64
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub fn bidder_id(bidder: usize) -> String {
    format!("b{bidder}")
}

pub fn takes_bids(phase: Phase) -> bool {
    matches!(phase, Phase::Listing | Phase::TimedBidding)
}

pub fn has_running_clock(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::Listing | Phase::TimedBidding | Phase::Capped | Phase::SecondaryBidding
    )
}

fn is_final(phase: Phase) -> bool {
    matches!(phase, Phase::Sold | Phase::Unsold | Phase::Terminated)
}

#[derive(Debug, Clone, PartialEq)]
pub enum ModelWinner {
    /// The bidder holding the highest bid that counts, at its amount.
    Bidder(usize),
    /// A lottery among these confirmations (bidder, nonce), in log order; the winner
    /// is the one `rules_draw` picks with the seed committed at cap entry.
    Lottery(Vec<(usize, String)>),
    /// A winner at a set price: the highest secondary bidder (or the cap bidder) at the
    /// cap; the cap bidder at the cap when no sealed quote came.
    AtPrice(usize, u64),
    /// Sealed quotes: these bidders quoted the winning amount. One wins outright; several
    /// are drawn with the committed seed, in ascending bidder-number order, each with the
    /// empty nonce.
    Sealed(u64, Vec<usize>),
}

#[derive(Debug, Clone, Copy)]
pub enum OperatorAction {
    Suspend,
    Resume,
    Terminate,
    ChangeIncrement(u64),
}

/// How a price bid is signed: not at all, with the bidder's registered key over the
/// bid's text, or with a signature that does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    Unsigned,
    Valid,
    Invalid,
}

/// The parts of an auction the model predicts exactly.
#[derive(Debug, PartialEq)]
pub struct View {
    pub phase: Phase,
    pub deadline_ms: Option<u64>,
    pub closed_at_ms: Option<u64>,
    pub increment: u64,
    /// (bidder, amount, accepted at): an acknowledged bid is never lost.
    pub bids: Vec<(String, u64, u64)>,
    /// The seqs of the void bids.
    pub voided: Vec<u64>,
    /// The bids proxies placed: seq, and the maximum each was placed under.
    pub proxy_bids: Vec<(u64, u64)>,
    /// The seqs of the bids kept with a verified signature.
    pub signed: Vec<u64>,
    /// (bidder, nonce), in log order.
    pub confirmations: Vec<(String, String)>,
    /// Whether a lottery commitment is published (from cap entry on).
    pub committed: bool,
    /// The winner's confirmation and its window's end.
    pub confirmation: Option<(ConfirmationStatus, u64)>,
    /// Bidders an exclusive group excluded.
    pub excluded: Vec<String>,
    /// The proxy maximums standing.
    pub proxies: Vec<(String, u64)>,
    /// The sealed quotes (bidder, amount).
    pub quotes: Vec<(String, u64)>,
    /// The secondary bids (bidder, amount, accepted at, void).
    pub secondary: Vec<(String, u64, u64, bool)>,
}

impl View {
    pub fn of(auction: &Auction) -> View {
        let bids = auction.bids.iter();
        let bid =
            |bid: &gavel_kernel::BidRecord| (bid.bidder_id.clone(), bid.amount, bid.accepted_at_ms);
        let sale = &auction.sale;
        View {
            phase: auction.phase,
            deadline_ms: auction.deadline_ms,
            closed_at_ms: auction.closed_at_ms,
            increment: auction.increment,
            bids: bids.map(bid).collect(),
            voided: sale.voided.iter().copied().collect(),
            proxy_bids: sale
                .proxy_bids
                .iter()
                .map(|(seq, max)| (*seq, *max))
                .collect(),
            signed: sale.bid_signatures.keys().copied().collect(),
            confirmations: auction
                .confirmations
                .iter()
                .map(|c| (c.bidder_id.clone(), c.nonce.clone()))
                .collect(),
            committed: auction.lottery_commitment.is_some(),
            confirmation: sale
                .confirmation
                .as_ref()
                .map(|c| (c.status, c.deadline_ms)),
            excluded: sale.excluded.iter().cloned().collect(),
            proxies: sale
                .proxies
                .iter()
                .map(|(b, p)| (b.clone(), p.max_amount))
                .collect(),
            quotes: sale
                .sealed_quotes
                .iter()
                .map(|(b, q)| (b.clone(), q.amount))
                .collect(),
            secondary: sale
                .secondary_bids
                .iter()
                .map(|s| {
                    (
                        s.bidder_id.clone(),
                        s.amount,
                        s.accepted_at_ms,
                        sale.excluded.contains(&s.bidder_id),
                    )
                })
                .collect(),
        }
    }
}

/// A secondary bid as the model keeps it.
#[derive(Debug, Clone)]
pub struct ModelSecondaryBid {
    pub bidder: usize,
    pub amount: u64,
    pub at_ms: u64,
    pub request_id: String,
}

/// What a proxy request_id answered: the maximum and the seq of the bid placed for its
/// bidder in that step.
pub type ProxyAnswer = (u64, Option<u64>);

#[derive(Debug, Clone)]
pub struct ModelAuction {
    pub spec: AuctionSpec,
    pub phase: Phase,
    pub deadline_ms: Option<u64>,
    pub increment: u64,
    /// (bidder, amount, accepted at); the seq is the place from 1.
    pub bids: Vec<(usize, u64, u64)>,
    /// The phase a suspension froze, and the time it had left.
    pub frozen: Option<(Phase, u64)>,
    /// (bidder, nonce), in log order; a bidder's first confirmation stands.
    pub confirmers: Vec<(usize, String)>,
    /// Whether the auction entered `capped`, committing to its lottery seed.
    pub committed: bool,
    pub winner: Option<ModelWinner>,
    pub closed_at_ms: Option<u64>,
    pub qualified: BTreeSet<usize>,
    /// The version 1.1 rules the auction runs under.
    pub rules: SaleRules,
    /// Bidders who bid during the listing.
    pub listing_bidders: BTreeSet<usize>,
    /// Winner's confirmation: its state and the window's end.
    pub confirmation: Option<(ConfirmationStatus, u64)>,
    /// Void bids, by seq.
    pub voided: BTreeSet<u64>,
    /// Bidders excluded by the exclusive group.
    pub excluded: BTreeSet<usize>,
    /// Proxy maximums: bidder to (maximum, order set or last raised).
    pub proxies: BTreeMap<usize, (u64, u64)>,
    pub proxy_order: u64,
    pub proxy_requests: BTreeMap<(usize, String), ProxyAnswer>,
    /// Bids placed by a proxy: seq to the maximum.
    pub proxy_bids: BTreeMap<u64, u64>,
    /// Seqs of the bids accepted with a valid signature.
    pub signed: BTreeSet<u64>,
    /// Sealed quotes: bidder to (amount, request_id, accepted at).
    pub quotes: BTreeMap<usize, (u64, String, u64)>,
    pub secondary: Vec<ModelSecondaryBid>,
}

impl ModelAuction {
    /// A new auction: scheduled until its listing opens.
    pub fn new(spec: AuctionSpec, qualified: BTreeSet<usize>) -> Self {
        ModelAuction::with_rules(spec, SaleRules::default(), qualified)
    }

    /// A new auction under the version 1.1 `rules`.
    pub fn with_rules(spec: AuctionSpec, rules: SaleRules, qualified: BTreeSet<usize>) -> Self {
        ModelAuction {
            rules,
            listing_bidders: BTreeSet::new(),
            confirmation: None,
            phase: Phase::Scheduled,
            deadline_ms: Some(spec.listing_opens_at_ms),
            increment: spec.increment,
            spec,
            bids: Vec::new(),
            frozen: None,
            confirmers: Vec::new(),
            committed: false,
            winner: None,
            closed_at_ms: None,
            qualified,
            voided: BTreeSet::new(),
            excluded: BTreeSet::new(),
            proxies: BTreeMap::new(),
            proxy_order: 0,
            proxy_requests: BTreeMap::new(),
            proxy_bids: BTreeMap::new(),
            signed: BTreeSet::new(),
            quotes: BTreeMap::new(),
            secondary: Vec::new(),
        }
    }

    /// The bids that count (not void), with their seqs.
    pub fn counted(&self) -> impl DoubleEndedIterator<Item = (u64, &(usize, u64, u64))> {
        let seqs = self.bids.iter().enumerate();
        let seqs = seqs.map(|(index, bid)| (index as u64 + 1, bid));
        seqs.filter(|(seq, _)| !self.voided.contains(seq))
    }

    pub fn price(&self) -> Option<u64> {
        self.counted().next_back().map(|(_, bid)| bid.1)
    }

    pub fn leader(&self) -> Option<usize> {
        self.counted().next_back().map(|(_, bid)| bid.0)
    }

    fn holds_counted_bid(&self, bidder: usize) -> bool {
        self.counted().any(|(_, bid)| bid.0 == bidder)
    }

    /// The lowest acceptable amount: the start price, then price plus increment.
    pub fn minimum(&self) -> u64 {
        let increment = self.increment;
        self.price()
            .map_or(self.spec.start_price, |price| price + increment)
    }

    fn listing_only(&self) -> bool {
        self.rules.timed_bidding_entry == TimedBiddingEntry::ListingBidders
    }

    /// Whether `bidder` may bid in the phase (`listing_bidders`: timed bidding is for the
    /// listing's bidders only).
    fn may_enter(&self, bidder: usize) -> bool {
        !(self.listing_only()
            && self.phase == Phase::TimedBidding
            && !self.listing_bidders.contains(&bidder))
    }

    pub fn view(&self) -> View {
        let bid = |bid: &(usize, u64, u64)| (bidder_id(bid.0), bid.1, bid.2);
        View {
            phase: self.phase,
            deadline_ms: self.deadline_ms,
            closed_at_ms: self.closed_at_ms,
            increment: self.increment,
            bids: self.bids.iter().map(bid).collect(),
            voided: self.voided.iter().copied().collect(),
            proxy_bids: self.proxy_bids.iter().map(|(s, m)| (*s, *m)).collect(),
            signed: self.signed.iter().copied().collect(),
            confirmations: self
                .confirmers
                .iter()
                .map(|(bidder, nonce)| (bidder_id(*bidder), nonce.clone()))
                .collect(),
            committed: self.committed,
            confirmation: self.confirmation,
            excluded: self.excluded.iter().map(|b| bidder_id(*b)).collect(),
            proxies: self
                .proxies
                .iter()
                .map(|(b, (max, _))| (bidder_id(*b), *max))
                .collect(),
            quotes: self
                .quotes
                .iter()
                .map(|(b, q)| (bidder_id(*b), q.0))
                .collect(),
            secondary: self
                .secondary
                .iter()
                .map(|s| {
                    (
                        bidder_id(s.bidder),
                        s.amount,
                        s.at_ms,
                        self.excluded.contains(&s.bidder),
                    )
                })
                .collect(),
        }
    }

    /// Sold to `winner` if the price meets the reserve, else unsold.
    fn close(&mut self, at_ms: u64, winner: Option<ModelWinner>) {
        let reserve = self.spec.reserve_price.unwrap_or(0);
        let reserve_met = self.price().is_some_and(|price| price >= reserve);
        self.close_with(at_ms, winner.filter(|_| reserve_met));
    }

    /// Sold to `winner`, unsold without one. Winner's confirmation: a sale with a window
    /// is `pending` until `at + window`.
    fn close_with(&mut self, at_ms: u64, winner: Option<ModelWinner>) {
        self.winner = winner;
        self.phase = self.winner.as_ref().map_or(Phase::Unsold, |_| Phase::Sold);
        (self.deadline_ms, self.closed_at_ms) = (None, Some(at_ms));
        if let (Phase::Sold, Some(window_ms)) = (self.phase, self.rules.winner_confirm_ms) {
            self.confirmation = Some((ConfirmationStatus::Pending, at_ms + window_ms));
        }
    }

    fn cap(&self) -> u64 {
        self.spec
            .price_cap
            .expect("a cap mode past the cap has a cap")
    }

    /// Sealed quote, at the end of the window: the rule's winning quote and who quoted it;
    /// no quote: the cap bidder at the cap.
    fn close_sealed(&mut self, at_ms: u64) {
        let amounts: Vec<u64> = self.quotes.values().map(|quote| quote.0).collect();
        let winner = match rules_winning_quote(self.rules.sealed_rule(), &amounts) {
            None => self
                .leader()
                .map(|bidder| ModelWinner::AtPrice(bidder, self.cap())),
            Some(amount) => {
                let tied = self.quotes.iter().filter(|(_, quote)| quote.0 == amount);
                Some(ModelWinner::Sealed(
                    amount,
                    tied.map(|(bidder, _)| *bidder).collect(),
                ))
            }
        };
        self.close_with(at_ms, winner);
    }

    /// The secondary bid that stands: the newest of a bidder not excluded.
    pub fn secondary_current(&self) -> Option<&ModelSecondaryBid> {
        let standing = self.secondary.iter().rev();
        standing
            .into_iter()
            .find(|bid| !self.excluded.contains(&bid.bidder))
    }

    /// Secondary bidding's end: the highest secondary bid wins at the cap, else the cap
    /// bidder.
    fn close_secondary(&mut self, at_ms: u64) {
        let bidder = self
            .secondary_current()
            .map(|bid| bid.bidder)
            .or(self.leader());
        let winner = bidder.map(|bidder| ModelWinner::AtPrice(bidder, self.cap()));
        self.close_with(at_ms, winner);
    }

    /// Every transition that time makes due at `now_ms`; a pending confirmation whose
    /// window has ended lapses.
    pub fn catch_up(&mut self, now_ms: u64) {
        self.catch_up_phases(now_ms);
        if let Some((ConfirmationStatus::Pending, deadline)) = self.confirmation {
            if now_ms > deadline {
                self.confirmation = Some((ConfirmationStatus::Lapsed, deadline));
            }
        }
    }

    /// The winner `bidder` (as the kernel drew them) confirms the sale.
    pub fn accept_sale(&mut self, bidder_is_winner: bool) -> Result<Outcome, &'static str> {
        if self.phase != Phase::Sold || !bidder_is_winner {
            return Err("not_winner");
        }
        match self.confirmation {
            Some((ConfirmationStatus::Pending, deadline)) => {
                self.confirmation = Some((ConfirmationStatus::Confirmed, deadline));
                Ok(Outcome::SaleAccepted { replayed: false })
            }
            Some((ConfirmationStatus::Confirmed, _)) => {
                Ok(Outcome::SaleAccepted { replayed: true })
            }
            _ => Err("confirmation_closed"),
        }
    }

    /// An operator declares the winner of a lapsed sale in default.
    pub fn default_winner(&mut self) -> Result<Outcome, &'static str> {
        match self.confirmation {
            Some((ConfirmationStatus::Lapsed, deadline)) => {
                self.confirmation = Some((ConfirmationStatus::Defaulted, deadline));
                Ok(Outcome::WinnerDefaulted)
            }
            _ => Err("conflict"),
        }
    }

    fn catch_up_phases(&mut self, now_ms: u64) {
        while let Some(deadline) = self.deadline_ms {
            let leader = self.leader().map(ModelWinner::Bidder);
            let lottery = Some(ModelWinner::Lottery(self.confirmers.clone()));
            let sealed = self.rules.cap_mode == CapMode::SealedBid;
            match self.phase {
                Phase::Scheduled if now_ms >= deadline => {
                    self.phase = Phase::Listing;
                    self.deadline_ms = Some(self.spec.listing_closes_at_ms);
                }
                Phase::Listing if now_ms > deadline => {
                    let bidders: BTreeSet<usize> = self.counted().map(|(_, b)| b.0).collect();
                    if bidders.len() >= 2 {
                        self.phase = Phase::TimedBidding;
                        self.deadline_ms = Some(deadline + self.spec.countdown_ms);
                    } else {
                        self.close(deadline, leader);
                    }
                }
                Phase::TimedBidding if now_ms > deadline => self.close(deadline, leader),
                Phase::Capped if now_ms > deadline && sealed => self.close_sealed(deadline),
                Phase::Capped if now_ms > deadline && self.confirmers.is_empty() => {
                    self.close(deadline, leader)
                }
                Phase::Capped if now_ms > deadline => self.close(deadline, lottery),
                Phase::SecondaryBidding if now_ms > deadline => self.close_secondary(deadline),
                _ => return,
            }
        }
    }

    /// Price cap: reached when the high bid lies less than one increment below it. Then
    /// the cap mode: `capped` for the confirmations (or the sealed quotes' window), or
    /// `secondary_bidding` with a full countdown.
    fn enter_capped_if_reached(&mut self, now_ms: u64) {
        let reached = match (self.spec.price_cap, self.price()) {
            (Some(cap), Some(price)) => price + self.increment > cap,
            _ => false,
        };
        if !(takes_bids(self.phase) && reached) {
            return;
        }
        let (phase, window_ms) = match self.rules.cap_mode {
            CapMode::Lottery => (Phase::Capped, self.spec.cap_confirm_ms),
            CapMode::SealedBid => (Phase::Capped, self.rules.sealed_window_ms.expect("window")),
            CapMode::Secondary => (Phase::SecondaryBidding, self.spec.countdown_ms),
        };
        self.committed |= phase == Phase::Capped;
        self.phase = phase;
        self.deadline_ms = Some(now_ms + window_ms);
    }

    /// Every rule the bid breaks (the kernel must report one of them).
    pub fn bid_refusals(&self, bidder: usize, amount: u64, signing: Signing) -> Vec<&'static str> {
        let base = self.price().unwrap_or(self.spec.start_price);
        let above_cap = self.spec.price_cap.is_some_and(|cap| amount > cap);
        let on_grid = self.spec.increment_rule == IncrementRule::AtLeast
            || amount < base
            || (amount - base).is_multiple_of(self.increment);
        let unsigned = signing == Signing::Unsigned;
        let broken = [
            (!self.qualified.contains(&bidder), "not_qualified"),
            (
                self.rules.require_signed_bids && unsigned,
                "signature_required",
            ),
            (signing == Signing::Invalid, "bad_signature"),
            (self.excluded.contains(&bidder), "excluded_by_group"),
            (!takes_bids(self.phase), "auction_not_open"),
            (!self.may_enter(bidder), "not_eligible"),
            (self.leader() == Some(bidder), "already_leading"),
            (amount < self.minimum(), "below_minimum"),
            (above_cap, "above_cap"),
            (!on_grid, "not_on_increment"),
        ];
        broken
            .into_iter()
            .filter(|rule| rule.0)
            .map(|rule| rule.1)
            .collect()
    }

    /// Every rule a confirmation with `nonce` breaks (a bidder's first confirmation
    /// stands: the same nonce again is harmless, another one a conflict).
    pub fn confirm_refusals(&self, bidder: usize, nonce: &str) -> Vec<&'static str> {
        let earlier = self.confirmers.iter().find(|(b, _)| *b == bidder);
        let lottery_window = self.phase == Phase::Capped && self.rules.cap_mode == CapMode::Lottery;
        let broken = [
            (!nonce_is_valid(nonce), "invalid_request"),
            (!self.qualified.contains(&bidder), "not_qualified"),
            (self.excluded.contains(&bidder), "excluded_by_group"),
            (!lottery_window, "auction_not_open"),
            (!self.holds_counted_bid(bidder), "not_eligible"),
            (earlier.is_some_and(|(_, n)| n != nonce), "conflict"),
        ];
        broken
            .into_iter()
            .filter(|rule| rule.0)
            .map(|rule| rule.1)
            .collect()
    }

    /// Records an accepted confirmation (the first of a bidder stands).
    pub fn confirm(&mut self, bidder: usize, nonce: &str) {
        if !self.confirmers.iter().any(|(b, _)| *b == bidder) {
            self.confirmers.push((bidder, nonce.to_string()));
        }
    }

    /// Appends a bid (the countdown restarts in timed bidding; the cap may be reached);
    /// answers its seq.
    fn push_bid(&mut self, bidder: usize, amount: u64, now_ms: u64) -> u64 {
        if self.phase == Phase::Listing {
            self.listing_bidders.insert(bidder);
        }
        self.bids.push((bidder, amount, now_ms));
        if self.phase == Phase::TimedBidding {
            self.deadline_ms = Some(now_ms + self.spec.countdown_ms);
        }
        self.enter_capped_if_reached(now_ms);
        self.bids.len() as u64
    }

    /// An accepted bid of the bidder's own, then the proxies' answer to it.
    pub fn accept_bid(&mut self, bidder: usize, amount: u64, now_ms: u64, signed: bool) {
        let seq = self.push_bid(bidder, amount, now_ms);
        if signed {
            self.signed.insert(seq);
        }
        self.resolve_proxies(now_ms);
    }

    /// The highest valid next bid of at most `limit` (and the cap), on the grid under
    /// `multiple`; none below the minimum.
    fn highest_valid(&self, limit: u64) -> Option<u64> {
        let limit = self.spec.price_cap.map_or(limit, |cap| limit.min(cap));
        let minimum = self.minimum();
        if limit < minimum {
            return None;
        }
        Some(match self.spec.increment_rule {
            IncrementRule::AtLeast => limit,
            IncrementRule::Multiple => {
                let base = self.price().unwrap_or(self.spec.start_price);
                base + (limit - base) / self.increment * self.increment
            }
        })
    }

    /// "Competing proxies resolve at once": of the proxies that can bid (qualified, not
    /// excluded, entitled in the phase; the leader's own always counts, at the price), the
    /// strongest (higher maximum, then earlier) leads at the runner-up's highest valid bid
    /// plus one increment, never above its own reach; the runner-up's bid is placed first.
    /// A lone proxy that does not lead bids the minimum; a leader is never outbid by its own.
    fn proxy_plan(&self) -> Vec<(usize, u64)> {
        let leader = self.leader();
        let mut ranked: Vec<(usize, u64, u64, u64)> = Vec::new();
        for (&bidder, &(max, order)) in &self.proxies {
            let able = self.qualified.contains(&bidder)
                && !self.excluded.contains(&bidder)
                && self.may_enter(bidder);
            let reach = match self.highest_valid(max) {
                _ if !able => continue,
                Some(reach) => reach,
                None if leader == Some(bidder) => self.price().expect("a leader has a price"),
                None => continue,
            };
            ranked.push((bidder, max, order, reach));
        }
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
        let minimum = self.minimum();
        let (top, runner) = match ranked.as_slice() {
            [] => return Vec::new(),
            [top] if leader == Some(top.0) => return Vec::new(),
            [top] => return vec![(top.0, minimum)],
            [top, runner, ..] => (*top, *runner),
        };
        let answer = (runner.3 + self.increment).min(top.3);
        if leader == Some(runner.0) {
            return vec![(top.0, answer.max(minimum))];
        }
        let runner_limit = answer
            .checked_sub(self.increment)
            .map(|limit| limit.min(runner.1));
        match runner_limit.and_then(|limit| self.highest_valid(limit)) {
            Some(runner_bid) => vec![(runner.0, runner_bid), (top.0, answer)],
            None if leader == Some(top.0) => Vec::new(),
            None => vec![(top.0, minimum)],
        }
    }

    /// The proxies answer the current price (at most two bids; none once the cap is
    /// reached). Answers the bids placed, (bidder, seq).
    pub fn resolve_proxies(&mut self, now_ms: u64) -> Vec<(usize, u64)> {
        let mut placed = Vec::new();
        if !takes_bids(self.phase) {
            return placed;
        }
        for (bidder, amount) in self.proxy_plan() {
            if !takes_bids(self.phase) {
                break;
            }
            let max = self.proxies[&bidder].0;
            let seq = self.push_bid(bidder, amount, now_ms);
            self.proxy_bids.insert(seq, max);
            placed.push((bidder, seq));
        }
        placed
    }

    /// Proxy bidding, setting or raising a maximum (the session and the auction already
    /// checked). Answers the rejection code, or the maximum and the seq of the bid placed
    /// for the bidder in this step, and whether it is a replay.
    pub fn set_proxy(
        &mut self,
        bidder: usize,
        max: u64,
        request_id: &str,
        now_ms: u64,
    ) -> Result<(u64, Option<u64>, bool), &'static str> {
        if !self.qualified.contains(&bidder) {
            return Err("not_qualified");
        }
        if let Some(&(earlier_max, seq)) =
            self.proxy_requests.get(&(bidder, request_id.to_string()))
        {
            return match earlier_max == max {
                true => Ok((max, seq, true)),
                false => Err("request_id_reused"),
            };
        }
        let existing = self.proxies.get(&bidder).map(|proxy| proxy.0);
        // The model leaves maximums unsigned: refused wherever bids must be signed.
        let refusals = [
            (self.rules.require_signed_bids, "signature_required"),
            (self.excluded.contains(&bidder), "excluded_by_group"),
            (!takes_bids(self.phase), "auction_not_open"),
            (!self.may_enter(bidder), "not_eligible"),
            (max < self.minimum(), "below_minimum"),
            (existing.is_some_and(|existing| max <= existing), "conflict"),
        ];
        if let Some((_, code)) = refusals.into_iter().find(|rule| rule.0) {
            return Err(code);
        }
        self.proxy_order += 1;
        self.proxies.insert(bidder, (max, self.proxy_order));
        let placed = self.resolve_proxies(now_ms);
        let seq = placed
            .iter()
            .rev()
            .find(|(b, _)| *b == bidder)
            .map(|(_, seq)| *seq);
        self.proxy_requests
            .insert((bidder, request_id.to_string()), (max, seq));
        Ok((max, seq, false))
    }

    /// Withdraws the bidder's maximum, unless they lead; answers whether there was one.
    pub fn withdraw_proxy(&mut self, bidder: usize) -> Result<bool, &'static str> {
        if !self.qualified.contains(&bidder) {
            return Err("not_qualified");
        }
        if self.leader() == Some(bidder) {
            return Err("leading");
        }
        Ok(self.proxies.remove(&bidder).is_some())
    }

    /// Sealed quote (the session and the auction already checked): the answer, `Ok(at,
    /// replayed)` or the rejection code.
    pub fn quote(
        &mut self,
        bidder: usize,
        amount: u64,
        request_id: &str,
        now_ms: u64,
    ) -> Result<(u64, bool), &'static str> {
        if !self.qualified.contains(&bidder) {
            return Err("not_qualified");
        }
        if let Some((earlier, earlier_request, at_ms)) = self.quotes.get(&bidder) {
            return match (*earlier, earlier_request.as_str()) == (amount, request_id) {
                true => Ok((*at_ms, true)),
                false => Err("quote_exists"),
            };
        }
        let window = self.phase == Phase::Capped && self.rules.cap_mode == CapMode::SealedBid;
        let ceiling = self.rules.sealed_ceiling.unwrap_or(0);
        // The model leaves quotes unsigned: refused wherever bids must be signed.
        let refusals = [
            (self.rules.require_signed_bids, "signature_required"),
            (self.excluded.contains(&bidder), "excluded_by_group"),
            (!window, "auction_not_open"),
            (!self.holds_counted_bid(bidder), "not_eligible"),
            (
                window && (amount < self.cap() || amount > ceiling),
                "out_of_range",
            ),
        ];
        if let Some((_, code)) = refusals.into_iter().find(|rule| rule.0) {
            return Err(code);
        }
        self.quotes
            .insert(bidder, (amount, request_id.to_string(), now_ms));
        Ok((now_ms, false))
    }

    /// The lowest secondary amount the next bid may carry.
    pub fn secondary_minimum(&self) -> u64 {
        let spec = self.rules.secondary.as_ref().expect("secondary rules");
        self.secondary_current().map_or(spec.start, |bid| {
            (bid.amount + spec.increment).min(spec.max)
        })
    }

    /// A secondary bid (the session, the auction, and the request_id's replays already
    /// checked): the bid's seq among the secondary bids, or the rejection code.
    pub fn secondary_bid(
        &mut self,
        bidder: usize,
        amount: u64,
        request_id: &str,
        now_ms: u64,
    ) -> Result<u64, &'static str> {
        if !self.qualified.contains(&bidder) {
            return Err("not_qualified");
        }
        let (max, increment) = match &self.rules.secondary {
            Some(spec) => (spec.max, spec.increment),
            None => (u64::MAX, 1),
        };
        let in_phase = self.phase == Phase::SecondaryBidding;
        let current = self.secondary_current().cloned();
        let minimum = if in_phase {
            self.secondary_minimum()
        } else {
            0
        };
        let off_grid = current.as_ref().is_some_and(|bid| {
            amount != max && !amount.wrapping_sub(bid.amount).is_multiple_of(increment)
        });
        // The model leaves secondary bids unsigned: refused wherever bids must be signed.
        let refusals = [
            (self.rules.require_signed_bids, "signature_required"),
            (self.excluded.contains(&bidder), "excluded_by_group"),
            (self.phase != Phase::SecondaryBidding, "auction_not_open"),
            (!self.holds_counted_bid(bidder), "not_eligible"),
            (
                current.as_ref().is_some_and(|bid| bid.bidder == bidder),
                "already_leading",
            ),
            (amount < minimum, "below_minimum"),
            (amount > max, "out_of_range"),
            (off_grid, "not_on_increment"),
        ];
        if let Some((_, code)) = refusals.into_iter().find(|rule| rule.0) {
            return Err(code);
        }
        self.secondary.push(ModelSecondaryBid {
            bidder,
            amount,
            at_ms: now_ms,
            request_id: request_id.to_string(),
        });
        self.deadline_ms = Some(now_ms + self.spec.countdown_ms);
        if amount >= max {
            self.close_secondary(now_ms);
        }
        Ok(self.secondary.len() as u64)
    }

    /// Exclusive groups: `bidder` won another auction of the group. Their bids here
    /// become void, their confirmation, proxy and sealed quote go (their secondary bids
    /// no longer count), and the other proxies answer the price that remains. Answers
    /// whether anything changed.
    pub fn exclude(&mut self, bidder: usize, now_ms: u64) -> bool {
        if is_final(self.phase) || !self.excluded.insert(bidder) {
            return false;
        }
        let seqs = 1u64..;
        let void = seqs.zip(&self.bids).filter(|(_, bid)| bid.0 == bidder);
        let void: Vec<u64> = void.map(|(seq, _)| seq).collect();
        self.voided.extend(void);
        self.confirmers.retain(|(b, _)| *b != bidder);
        self.proxies.remove(&bidder);
        self.quotes.remove(&bidder);
        self.resolve_proxies(now_ms);
        true
    }

    /// Applies an operator action; returns the expected answer.
    pub fn operator(&mut self, action: OperatorAction, now_ms: u64) -> Result<Outcome, Rejection> {
        let phase = self.phase.as_str().to_string();
        match (action, self.deadline_ms) {
            (OperatorAction::Suspend, Some(deadline)) if has_running_clock(self.phase) => {
                self.frozen = Some((self.phase, deadline - now_ms));
                (self.phase, self.deadline_ms) = (Phase::Suspended, None);
            }
            (OperatorAction::Resume, _) => {
                let not_suspended = || Rejection::Conflict("not suspended".to_string());
                let (phase, remaining_ms) = self.frozen.take().ok_or_else(not_suspended)?;
                // Timed bidding restarts with a full countdown, and so does secondary
                // bidding.
                let countdown = matches!(phase, Phase::TimedBidding | Phase::SecondaryBidding);
                let countdown_ms = self.spec.countdown_ms;
                let time_ms = if countdown {
                    countdown_ms
                } else {
                    remaining_ms
                };
                (self.phase, self.deadline_ms) = (phase, Some(now_ms + time_ms));
                self.enter_capped_if_reached(now_ms);
            }
            (OperatorAction::Terminate, _) if !is_final(self.phase) => {
                (self.phase, self.deadline_ms, self.frozen) = (Phase::Terminated, None, None);
                (self.winner, self.closed_at_ms) = (None, Some(now_ms));
            }
            (OperatorAction::ChangeIncrement(increment), _) if !is_final(self.phase) => {
                self.increment = increment;
                self.enter_capped_if_reached(now_ms);
            }
            _ => return Err(Rejection::AuctionNotOpen { phase }),
        }
        Ok(Outcome::AuctionUpdated)
    }

    /// A leader change at `takeover_ms`, the model standing at the last command's time:
    /// a listing that opened during the gap is open; an open auction whose deadline
    /// passed during the gap or falls less than the grace after the takeover gets
    /// `takeover + grace`. Returns whether the deadline moved.
    pub fn take_over(&mut self, takeover_ms: u64) -> bool {
        if self.phase == Phase::Scheduled && self.spec.listing_opens_at_ms <= takeover_ms {
            self.phase = Phase::Listing;
            self.deadline_ms = Some(self.spec.listing_closes_at_ms);
        }
        let grace_end_ms = takeover_ms + self.spec.failover_grace_ms;
        let inside_grace = self.deadline_ms.is_some_and(|at| at < grace_end_ms);
        let extended = has_running_clock(self.phase) && inside_grace;
        if extended {
            self.deadline_ms = Some(grace_end_ms);
        }
        self.catch_up(takeover_ms);
        extended
    }
}

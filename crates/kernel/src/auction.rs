//! An auction as the state holds it: its specification, phase, deadline, bids (each
//! hash-chained to the one before, `chain`), lottery and audit trail. `Auction::enter` is
//! the only way its phase changes, along the transitions `Phase::may_enter` allows
//! (docs/RULES.md, "Phases").

use std::collections::{BTreeMap, BTreeSet};

use imbl::Vector;
use serde::{Deserialize, Serialize};

use super::lottery::{Bytes32, Confirmation, Lottery, LotterySecret};
use super::sale::{ConfirmationStatus, SaleRules, SaleState};
use super::types::{AuctionSpec, BidderNumber, Money};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Scheduled,
    Listing,
    TimedBidding,
    Capped,
    Suspended,
    Sold,
    Unsold,
    Terminated,
    /// `cap_mode = secondary`: bidding on the second quantity at the frozen cap price.
    /// Last, so that the binary records of the phases before it keep their numbers.
    SecondaryBidding,
}

impl Phase {
    /// The API's name of the phase.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Scheduled => "scheduled",
            Phase::Listing => "listing",
            Phase::TimedBidding => "timed_bidding",
            Phase::Capped => "capped",
            Phase::Suspended => "suspended",
            Phase::Sold => "sold",
            Phase::Unsold => "unsold",
            Phase::Terminated => "terminated",
            Phase::SecondaryBidding => "secondary_bidding",
        }
    }

    /// Sold, unsold and terminated are final.
    pub fn is_closed(self) -> bool {
        matches!(self, Phase::Sold | Phase::Unsold | Phase::Terminated)
    }

    /// Phases with a running deadline that may be suspended or extended.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Phase::Listing | Phase::TimedBidding | Phase::Capped | Phase::SecondaryBidding
        )
    }

    /// Whether an auction in this phase may enter `next` (docs/RULES.md, "Phases"): a
    /// scheduled auction opens its listing; a listing goes on to timed bidding; price
    /// bidding (listing, timed bidding) reaches the cap (`capped`, or `secondary_bidding`
    /// under `cap_mode = secondary`); an open auction closes sold or unsold, or is
    /// suspended; a suspended one resumes where it was; anything not yet closed may be
    /// terminated. A final phase is never left.
    pub fn may_enter(self, next: Phase) -> bool {
        use Phase::*;
        matches!(
            (self, next),
            (Scheduled, Listing)
                | (Listing, TimedBidding)
                | (Listing | TimedBidding, Capped | SecondaryBidding)
                | (
                    Listing | TimedBidding | Capped | SecondaryBidding,
                    Sold | Unsold | Suspended
                )
                | (
                    Suspended,
                    Listing | TimedBidding | Capped | SecondaryBidding
                )
                | (
                    Scheduled | Listing | TimedBidding | Capped | SecondaryBidding | Suspended,
                    Terminated
                )
        )
    }
}

/// One accepted bid, hash-chained to the one before it (see `chain`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidRecord {
    pub seq: u64,
    pub bid_id: String,
    pub bidder_id: String,
    pub bidder_number: BidderNumber,
    pub amount: Money,
    pub accepted_at_ms: u64,
    pub prev_hash: String,
    pub hash: String,
}

/// A frozen auction: what it was doing and how much time it had left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    pub from_phase: Phase,
    pub remaining_ms: u64,
    pub suspended_at_ms: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Winner {
    pub bidder_id: String,
    pub bidder_number: BidderNumber,
    pub price: Money,
    pub lottery: Option<Lottery>,
}

/// One line of an auction's audit trail: phase changes, extensions, operator actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at_ms: u64,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// Most audit records kept per auction; the log keeps all of them.
pub const MAX_AUDIT_RECORDS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auction {
    pub spec: AuctionSpec,
    pub phase: Phase,
    /// The increment in force (an operator may change it).
    pub increment: Money,
    /// When the current phase ends; `None` once closed or while suspended.
    pub deadline_ms: Option<u64>,
    pub suspension: Option<Suspension>,
    /// Bidder id to bidder number.
    pub qualified: BTreeMap<String, BidderNumber>,
    /// Oldest first. A persistent vector: cloning an auction (a snapshot does, under the
    /// state's lock) shares its bids, and the next bid copies one chunk, not all of them.
    pub bids: Vector<BidRecord>,
    /// Bidders who confirmed in `capped`, in log order, each with their nonce.
    pub confirmations: Vec<Confirmation>,
    /// The lottery's secret pool and seed (`kernel::lottery`): never shown while the
    /// auction is open; the draw publishes the seed.
    pub lottery_secret: LotterySecret,
    /// SHA-256 of the lottery seed: set when the auction enters `capped`, public from then.
    pub lottery_commitment: Option<Bytes32>,
    pub winner: Option<Winner>,
    pub closed_at_ms: Option<u64>,
    /// Count of refused commands by rejection code.
    pub rejections: BTreeMap<String, u64>,
    pub audit: Vector<AuditRecord>,
    /// The version 1.1 rules and what they keep (`sale`), as JSON text in the binary
    /// records, so that later rules add fields without a new shape of the state.
    #[serde(with = "super::sale::json_text")]
    pub sale: SaleState,
}

impl Auction {
    pub fn new(spec: AuctionSpec) -> Self {
        Auction::with_rules(spec, SaleRules::default())
    }

    /// A new auction under the version 1.1 `rules`.
    pub fn with_rules(spec: AuctionSpec, rules: SaleRules) -> Self {
        Auction {
            increment: spec.increment,
            deadline_ms: Some(spec.listing_opens_at_ms),
            phase: Phase::Scheduled,
            spec,
            suspension: None,
            qualified: BTreeMap::new(),
            bids: Vector::new(),
            confirmations: Vec::new(),
            lottery_secret: LotterySecret::default(),
            lottery_commitment: None,
            winner: None,
            closed_at_ms: None,
            rejections: BTreeMap::new(),
            audit: Vector::new(),
            sale: SaleState {
                rules,
                ..SaleState::default()
            },
        }
    }

    /// Whether the auction still waits for a time to come: an open or scheduled auction
    /// for its deadline, a sold one for the end of its winner's confirmation window.
    pub fn awaits_time(&self) -> bool {
        !self.phase.is_closed() || self.confirmation_pending()
    }

    /// Whether a sold auction's winner has yet to confirm.
    pub fn confirmation_pending(&self) -> bool {
        self.sale
            .confirmation
            .as_ref()
            .is_some_and(|confirmation| confirmation.status == ConfirmationStatus::Pending)
    }

    /// When the auction's next time transition is due: a scheduled auction opens at its
    /// deadline, an open phase ends just after it, a pending confirmation lapses just
    /// after its window. `None` when nothing waits for time.
    pub fn due_at_ms(&self) -> Option<u64> {
        if let Some(deadline) = self.deadline_ms {
            return Some(if self.phase == Phase::Scheduled {
                deadline
            } else {
                deadline.saturating_add(1)
            });
        }
        self.sale
            .confirmation
            .as_ref()
            .filter(|confirmation| confirmation.status == ConfirmationStatus::Pending)
            .map(|confirmation| confirmation.deadline_ms.saturating_add(1))
    }

    /// Whether the auction's record is complete and may leave the live state: closed,
    /// and no winner's confirmation left to decide.
    pub fn is_settled(&self) -> bool {
        self.phase.is_closed()
            && !matches!(
                self.sale.confirmation.as_ref().map(|c| c.status),
                Some(ConfirmationStatus::Pending | ConfirmationStatus::Lapsed)
            )
    }

    /// Moves the auction to `phase`: the only place its phase changes. A transition
    /// `Phase::may_enter` does not allow is a broken kernel invariant (`legal_transition`),
    /// and panics as `apply` does for the others.
    pub(crate) fn enter(&mut self, phase: Phase) {
        if !self.phase.may_enter(phase) {
            panic!(
                "kernel invariant broken: legal_transition: auction {}: {} -> {}",
                self.spec.id,
                self.phase.as_str(),
                phase.as_str()
            );
        }
        self.phase = phase;
    }

    /// The highest bid that counts: the newest that is not void (docs/RULES.md,
    /// "Mutually exclusive parcels"). The hash chain goes on from `bids.last()` instead.
    pub fn highest_bid(&self) -> Option<&BidRecord> {
        if self.sale.voided.is_empty() {
            return self.bids.last();
        }
        self.bids.iter().rev().find(|bid| !self.is_void(bid.seq))
    }

    pub fn current_price(&self) -> Option<Money> {
        self.highest_bid().map(|bid| bid.amount)
    }

    /// Whether the bid numbered `seq` was voided.
    pub fn is_void(&self, seq: u64) -> bool {
        self.sale.voided.contains(&seq)
    }

    /// Whether the bid numbered `seq` was placed by a proxy.
    pub fn is_proxy_bid(&self, seq: u64) -> bool {
        self.sale.proxy_bids.contains_key(&seq)
    }

    /// The bids that count, oldest first: every bid but the void ones.
    pub fn counted_bids(&self) -> impl Iterator<Item = &BidRecord> {
        self.bids.iter().filter(|bid| !self.is_void(bid.seq))
    }

    /// The number of distinct bidders with a bid that counts.
    pub fn distinct_bidders(&self) -> usize {
        self.counted_bids()
            .map(|bid| bid.bidder_id.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    }

    pub fn bidder_number_of(&self, bidder_id: &str) -> Option<BidderNumber> {
        self.qualified.get(bidder_id).copied()
    }

    /// The auction without the lottery's secret, the sealed quotes and the signatures of
    /// signed proxy maximums while it is open, and without the proxy maximums ever: what
    /// a read of the kernel's record may show. Which bids a proxy placed stays; the
    /// maximums they were placed under read as 0 (once the sale is closed, a signed
    /// maximum shows in the signature kept with the bids placed under it).
    pub fn without_open_secrets(&self) -> Auction {
        let mut copy = self.clone();
        if !self.phase.is_closed() {
            copy.lottery_secret = LotterySecret::default();
            copy.sale.sealed_quotes.clear();
            // A signed proxy maximum's signature, kept with the bids placed under it,
            // would show the maximum.
            copy.sale
                .bid_signatures
                .retain(|_, kept| kept.proxy_max.is_none());
        }
        let sale = &mut copy.sale;
        sale.proxies.clear();
        sale.proxy_requests.clear();
        sale.proxy_bids
            .values_mut()
            .for_each(|maximum| *maximum = 0);
        copy
    }

    pub(crate) fn record(&mut self, at_ms: u64, actor: &str, action: &str, detail: String) {
        if self.audit.len() >= MAX_AUDIT_RECORDS {
            self.audit.pop_front();
        }
        self.audit.push_back(AuditRecord {
            at_ms,
            actor: actor.to_string(),
            action: action.to_string(),
            detail,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auction() -> Auction {
        Auction::new(AuctionSpec {
            title: "A parcel".to_string(),
            ..AuctionSpec::example("lot-1")
        })
    }

    #[test]
    fn an_auction_goes_through_its_phases_in_order() {
        let mut lot = auction();
        for phase in [
            Phase::Listing,
            Phase::Suspended,
            Phase::Listing,
            Phase::TimedBidding,
            Phase::Capped,
            Phase::Sold,
        ] {
            lot.enter(phase);
            assert_eq!(lot.phase, phase);
        }
    }

    #[test]
    #[should_panic(
        expected = "kernel invariant broken: legal_transition: auction lot-1: sold -> listing"
    )]
    fn a_closed_auction_never_opens_again() {
        let mut lot = auction();
        lot.enter(Phase::Listing);
        lot.enter(Phase::Sold);
        lot.enter(Phase::Listing);
    }

    #[test]
    #[should_panic(expected = "legal_transition: auction lot-1: scheduled -> timed_bidding")]
    fn a_scheduled_auction_opens_its_listing_first() {
        auction().enter(Phase::TimedBidding);
    }

    #[test]
    fn only_termination_leaves_a_scheduled_auction_other_than_its_listing() {
        let all = [
            Phase::Scheduled,
            Phase::Listing,
            Phase::TimedBidding,
            Phase::Capped,
            Phase::Suspended,
            Phase::Sold,
            Phase::Unsold,
            Phase::Terminated,
            Phase::SecondaryBidding,
        ];
        let from_scheduled: Vec<Phase> = all
            .into_iter()
            .filter(|next| Phase::Scheduled.may_enter(*next))
            .collect();
        assert_eq!(from_scheduled, vec![Phase::Listing, Phase::Terminated]);
        for closed in [Phase::Sold, Phase::Unsold, Phase::Terminated] {
            assert!(all.iter().all(|next| !closed.may_enter(*next)));
        }
        assert!(all.iter().all(|phase| !phase.may_enter(*phase)));
    }
}

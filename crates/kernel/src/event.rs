//! What a command changed, published to the live event streams of every node. Events
//! name what changed; subscribers read the values from the applied state.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub auction_id: String,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// The auction was created.
    Created,
    /// A bid was accepted; `seq` indexes the auction's bid records (1-based).
    Bid { seq: u64 },
    /// The phase changed (opened, timed bidding, capped, suspended, resumed).
    Phase,
    /// The deadline moved for a reason other than a bid (takeover grace, resume).
    Extended { deadline_ms: u64 },
    /// The increment was changed by an operator.
    Increment,
    /// A bidder confirmed in `capped`.
    Confirmation,
    /// The auction reached a final phase: sold, unsold or terminated.
    Closed,
    /// A sold auction's winner's confirmation changed: confirmed, lapsed or defaulted.
    /// Its result changed with it (the deposits' dispositions among others).
    Settled,
    /// A bidder's bids were voided (they won another auction of the exclusive group):
    /// the price and the leader may have changed.
    Voided,
    /// A sealed quote was accepted (`cap_mode = sealed_bid`); its amount stays secret
    /// until the window closes.
    SealedQuote,
    /// A secondary bid was accepted (`cap_mode = secondary`); `seq` indexes the auction's
    /// secondary bids (1-based).
    SecondaryBid { seq: u64 },
}

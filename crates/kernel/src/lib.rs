//! The auction kernel: every rule of RULES.md as plain data and functions.
//!
//! `apply(&mut State, &Envelope) -> Applied` is the only way state changes. It is
//! synchronous and deterministic: the time (`Envelope::now_ms`) and the random seed
//! (`Envelope::seed`) arrive inside the envelope, stamped by the leader when it proposes,
//! so every replica that applies the same log computes the same state. Nothing here knows
//! of actix, tokio, sled or HTTP; the replication layer calls `apply` for each committed
//! log entry and the actors and handlers only read the resulting state.
//!
//! - `types`: identifiers, money and the auction specification, with their validation.
//! - `command`: the commands and the envelope they travel in.
//! - `state`: the replicated state (bidders, sessions, auctions, idempotency records);
//!   `bidders` registers bidders and checks the stored form of their secrets;
//!   `sessions` keeps the sessions and their per-bidder cap.
//! - `rejection`: why a command was refused; the variants are the API's error codes.
//! - `event`: what changed, for the live event streams.
//! - `apply`: dispatch of commands; `phases`, `bidding`, `cap` hold the rules themselves;
//!   `housekeeping` the janitor's purge and archive.
//! - `lottery`: the capped lottery's commit–reveal: seed, commitment, draw and re-draw.
//! - `chain`: the per-auction hash chain of accepted bids.
//! - `takeover`: the takeover rule, applied before the first command of each leader term.
//! - `archived`: what the state remembers of archived auctions (ids, a chain, the prune
//!   cutoff).
//! - `invariants`: the named invariants, asserted after every command and reused by tests.

pub mod apply;
pub mod archived;
pub mod bidders;
pub mod bidding;
mod cap;
pub mod chain;
pub mod command;
pub mod event;
mod housekeeping;
pub mod invariants;
pub mod ledger;
pub mod lottery;
pub mod operator;
mod phases;
pub mod rejection;
pub mod requests;
pub mod sale_result;
pub mod sessions;
pub mod state;
pub mod takeover;
pub mod types;

pub use apply::{apply, Applied, Effect};
pub use command::{Command, Envelope, Outcome, Receipt};
pub use event::{Event, EventKind};
pub use ledger::{ExchangeLedger, Replica};
pub use operator::OperatorAction;
pub use rejection::Rejection;
pub use state::{Auction, BidRecord, OperatorRecord, Phase, State};
pub use takeover::begin_term;
pub use types::{AuctionSpec, IncrementRule, Money};

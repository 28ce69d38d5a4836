//! The auction kernel: every rule of docs/RULES.md as plain data and functions.
//!
//! `Replica::apply` (in `ledger`) is the only way the replicated state changes: it applies
//! one committed command to the kernel `State` and the exchange ledger beside it, through
//! `apply(&mut State, &Envelope) -> Applied` for everything but the exchange's own
//! commands. It is synchronous and deterministic: the time (`Envelope::now_ms`) and the
//! random seed (`Envelope::seed`) arrive inside the envelope, stamped by the leader when it
//! proposes, so every replica that applies the same log computes the same state. What the
//! shell must do besides (store archived auctions, prune its archive) comes back as data,
//! `Applied::effects`. Nothing here knows of actix, tokio, sled or HTTP; the replication
//! layer calls `Replica::apply` for each committed log entry and the actors and handlers
//! only read the resulting state.
//!
//! Modules, each importing only those listed before it uses (the graph is acyclic):
//! - `money`: amounts and bidder numbers; `rejection`: why a command was refused (the
//!   variants are the API's error codes); `types`: identifiers and the auction
//!   specification, with their validation.
//! - `operator`: the actions of the operator audit trail; `command`: the commands and the
//!   envelope they travel in; `event`: what changed, for the live event streams.
//! - `auction`: an auction, its phases and `Auction::enter`, the one place its phase
//!   changes, along the legal transitions; `chain`: the per-auction hash chain of accepted
//!   bids; `lottery`: the capped lottery's commit–reveal.
//! - `state`: the replicated state (bidders, sessions, auctions, idempotency records);
//!   `signatures`: bidders' public keys and the verification of signed bids;
//!   `sale`: the version 1.1 rules an auction runs under and what it keeps for them;
//!   `sessions` and `requests` hold the sessions and the idempotency records; `archived`
//!   what the state remembers of archived auctions.
//! - the rules: `bidders` (registration, stored secrets), `signin` (sessions), `deposits`
//!   (deposits and the qualification gate), `acceptance` (the winner's confirmation), `closing`,
//!   `sealed` and `secondary` (the cap modes past the cap: sealed quotes, secondary
//!   bidding), `phases` and `cap` (phase changes), `signed_bids` (bidders' keys, the
//!   signature a bid must carry), `bidding`, `proxy` (proxy bidding, on top of
//!   `bidding`), `exclusive` (mutually exclusive parcels, across the auctions of a group),
//!   `housekeeping` (purge, archive), `takeover` (the takeover rule, applied before the
//!   first command of each leader term).
//! - `invariants`: the named invariants, asserted after every command and reused by tests.
//! - `apply`: dispatch of commands by group, and the effects; `ledger`: the exchange
//!   ledger and `Replica`; `sale_result`: an auction's result as the outbox spools it.

mod acceptance;
pub mod apply;
pub mod archived;
pub mod auction;
pub mod bidders;
pub mod bidding;
mod cap;
pub mod chain;
mod closing;
pub mod command;
pub mod deposits;
pub mod event;
mod exclusive;
mod housekeeping;
pub mod invariants;
pub mod ledger;
pub mod lottery;
pub mod money;
pub mod operator;
mod phases;
pub mod proxy;
pub mod rejection;
pub mod requests;
pub mod sale;
pub mod sale_result;
pub mod sealed;
pub mod secondary;
pub mod sessions;
pub mod signatures;
pub mod signed_bids;
mod signin;
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

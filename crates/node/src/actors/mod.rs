//! The node's actors, one per file (or folder).
//!
//! - `supervisor`: owns the Raft handle; every command is proposed through it, stamped
//!   with the leader's time and seed. Watches Raft metrics and reacts to leadership.
//! - `resource_pool`: starts an `auction` actor for every auction that is live or opens
//!   soon, routes applied events to them, and lets closed ones go.
//! - `auction`: one per live auction: its deadline timer proposes the close, and it
//!   publishes the auction's live events to subscribers.
//! - `janitor`: purification sweeps on a timer, with a report of what it did; what a
//!   sweep does is decided by plain functions of what it observed (`janitor::decisions`).
//! - `peer_link`: one per peer node: owns the link, runs the health checks, reports the
//!   peer as up, suspect or down to the Supervisor; `membership` holds the Supervisor's
//!   decisions about replacing dead voters.
//! - `exchange`: on the leader, moves records between the intranet spool and the log.
//! - `supervision`: what happens when an actor stops on a panic, kind by kind.
//! - `messages`: what the actors send each other. An actor holds a `Recipient` of each
//!   message it sends, not the address of the actor that handles it, and no actor module
//!   imports another that imports it back: the Supervisor starts the PeerLinks and is
//!   sent `Propose`, `IsLeader` and `PeerReport`; it sends `LeadershipChanged` to the
//!   ResourcePool. Its own decisions are plain functions too (`supervisor::decisions`).

pub mod auction;
pub mod backups;
pub mod exchange;
pub mod janitor;
pub mod membership;
pub mod messages;
pub mod peer_link;
pub mod resource_pool;
pub mod supervision;
pub mod supervisor;

/// The node's wall clock (see `clock`).
pub use crate::clock::wall_clock_ms;

//! The messages the actors send each other, below every actor: an actor names the
//! messages it sends (and holds a `Recipient` of each) rather than the actor that handles
//! them, so no actor module imports another that imports it back.
//!
//! - `Propose`, `IsLeader`: to the Supervisor, from the Auction actors, the Janitor, the
//!   Exchange, the HTTP handlers and the peer listener (`Replicator` bundles the two);
//! - `PeerReport` (with `Health`): from each PeerLink to the Supervisor;
//! - `LeadershipChanged`: from the Supervisor to the ResourcePool.

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::clock::ClockSample;
use crate::peer::PeerStatus;
use gavel_kernel::{Command, Outcome, Rejection};

/// A command to replicate. `actor` names who asked, for the audit trail.
pub struct Propose {
    pub command: Command,
    pub actor: String,
}

/// A committed command's answer, with its log index.
#[derive(Debug, Clone)]
pub struct Committed {
    pub outcome: Result<Outcome, Rejection>,
    pub log_index: u64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    /// No leader could take the command in time; `leader_id` is the last one known.
    #[error("no leader took the command (leader: {leader_id:?})")]
    NotLeader { leader_id: Option<u64> },
    #[error("replication failed: {0}")]
    Fatal(String),
}

impl Message for Propose {
    type Result = Result<Committed, ProposeError>;
}

/// Whether this node leads now (and is not handing leadership over).
pub struct IsLeader;

impl Message for IsLeader {
    type Result = bool;
}

/// Where an actor that proposes commands, and only on the leader, sends them: the
/// Supervisor, as the two messages it takes for that.
#[derive(Clone)]
pub struct Replicator {
    pub propose: Recipient<Propose>,
    pub is_leader: Recipient<IsLeader>,
}

impl Replicator {
    /// The two recipients of one actor (the Supervisor).
    pub fn of<A>(address: &Addr<A>) -> Self
    where
        A: Actor + Handler<Propose> + Handler<IsLeader>,
        A::Context: ToEnvelope<A, Propose> + ToEnvelope<A, IsLeader>,
    {
        Replicator {
            propose: address.clone().recipient(),
            is_leader: address.clone().recipient(),
        }
    }
}

/// How a peer looks from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Up,
    Suspect,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Suspect => "suspect",
            Health::Down => "down",
        }
    }
}

/// A PeerLink's health check result.
pub struct PeerReport {
    pub node_id: u64,
    pub health: Health,
    pub consecutive_misses: u32,
    pub last_heartbeat_ms: Option<u64>,
    pub status: Option<PeerStatus>,
    /// The missed check found the peer's process gone (refused, closed or reset), not
    /// merely slow.
    pub process_gone: bool,
    /// The answered check's measurement of the peer's clock.
    pub clock: Option<ClockSample>,
}

impl Message for PeerReport {
    type Result = ();
}

/// This node gained or lost leadership.
pub struct LeadershipChanged {
    pub is_leader: bool,
}

impl Message for LeadershipChanged {
    type Result = ();
}

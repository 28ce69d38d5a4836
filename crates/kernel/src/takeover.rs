//! The takeover rule, applied by the log itself: the first command entry of every Raft
//! term is the first of a new leader, and before any command of that entry runs, the
//! kernel records the takeover at the entry's stamp and applies the failover grace rule
//! to every open auction (see `phases::apply_takeover_grace`).
//!
//! The term comes from the entry's log id, which every replica sees the same, so the rule
//! needs no separate proposal and no message can overtake it: a bid that reaches a new
//! leader before anything else is applied after the takeover, not before it. The last term
//! whose takeover was applied is kept in `State::leader_term`.

use super::apply::Applied;
use super::command::Outcome;
use super::event::Event;
use super::exclusive;
use super::phases::{self, advance};
use super::state::{Phase, State, TakeoverRecord, MAX_TAKEOVERS_KEPT};

/// Called before the commands of each command entry of the log, with the entry's term and
/// leader and the stamp of its first command. The first time a term is seen, records the
/// takeover and applies the grace rule; answers what that changed. Any other time, changes
/// nothing and answers `None`.
///
/// Terms are compared for equality, not order: a cluster restored from a backup starts
/// again at low terms, and its first leader's takeover is still a takeover.
pub fn begin_term(
    state: &mut State,
    term: u64,
    leader_node_id: u64,
    now_ms: u64,
    seed: u64,
) -> Option<Applied> {
    if state.leader_term == term {
        return None;
    }
    state.leader_term = term;
    let last_command_ms = state.clock_ms;
    let now_ms = now_ms.max(state.clock_ms);
    state.clock_ms = now_ms;
    let mut events = Vec::new();
    let extended = take_over(
        state,
        now_ms,
        last_command_ms,
        seed,
        leader_node_id,
        &mut events,
    );
    // The auctions the takeover closed sold exclude their winners from their groups.
    exclusive::apply(state, now_ms, seed, &mut events);
    Some(Applied {
        result: Ok(Outcome::TakeoverRecorded { extended }),
        events,
        effects: Vec::new(),
    })
}

/// Records a takeover at `now_ms` by `leader_node_id` and applies the grace rule to every
/// open auction; answers the auctions whose deadline moved. `last_command_ms` is the time
/// of the last command before it, when the leaderless gap began.
fn take_over(
    state: &mut State,
    now_ms: u64,
    last_command_ms: u64,
    seed: u64,
    leader_node_id: u64,
    events: &mut Vec<Event>,
) -> Vec<String> {
    let mut extended = Vec::new();
    for auction in state.auctions.values_mut() {
        // A deadline that passed before the gap had closed its auction already (closes
        // are applied lazily), and the grace rule must not reopen it. A listing that
        // opened during the gap is open at the takeover: its close falls under the rule.
        advance(auction, last_command_ms, seed, events);
        if auction.phase == Phase::Scheduled {
            let opened_by_ms = now_ms.min(auction.spec.listing_closes_at_ms);
            advance(auction, opened_by_ms, seed, events);
        }
        if phases::apply_takeover_grace(auction, now_ms, leader_node_id, events) {
            extended.push(auction.spec.id.clone());
        }
    }
    if state.takeovers.len() >= MAX_TAKEOVERS_KEPT {
        state.takeovers.remove(0);
    }
    state.takeovers.push(TakeoverRecord {
        leader_node_id,
        at_ms: now_ms,
    });
    extended
}

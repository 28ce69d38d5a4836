//! The janitor's commands: `Purge` drops expired sessions and idempotency records,
//! `Archive` takes closed auctions out of the replicated state for the shell to store.

use super::command::{Outcome, MAX_ARCHIVED_PER_COMMAND};
use super::state::{Auction, State};

pub(super) fn purge(state: &mut State, now_ms: u64, request_retention_ms: u64) -> Outcome {
    let sessions = state.sessions.remove_expired(now_ms);
    let mut requests = 0u64;
    state.requests.retain(|_, records| {
        requests += records.remove_expired(now_ms, request_retention_ms);
        !records.is_empty()
    });
    Outcome::Purged { sessions, requests }
}

/// Takes the auctions that closed at least `closed_linger_ms` before `now_ms` out of the
/// state, oldest close first (ties by id), at most `MAX_ARCHIVED_PER_COMMAND`, and notes
/// them in the state's archive ledger in that order.
pub(super) fn archive(state: &mut State, now_ms: u64, closed_linger_ms: u64) -> Vec<Auction> {
    let mut due: Vec<(u64, String)> = state
        .auctions
        .values()
        .filter_map(|auction| {
            let closed_at_ms = auction.closed_at_ms?;
            (auction.is_settled() && closed_at_ms.saturating_add(closed_linger_ms) <= now_ms)
                .then(|| (closed_at_ms, auction.spec.id.clone()))
        })
        .collect();
    due.sort();
    due.truncate(MAX_ARCHIVED_PER_COMMAND);
    let archived: Vec<Auction> = due
        .into_iter()
        .filter_map(|(_, auction_id)| state.auctions.remove(&auction_id))
        .collect();
    for auction in &archived {
        state.archived.note_archived(auction);
    }
    archived
}

//! Sign-in and sign-out: the rules of `Command::OpenSession` and `Command::CloseSession`
//! over the sessions the state keeps (`sessions`).

use super::command::Outcome;
use super::rejection::Rejection;
use super::sessions::{Session, MAX_SESSIONS_PER_BIDDER_LIMIT};
use super::state::State;
use super::types::validate_hash;

/// Applies a sign-in: checks the token hash, the bidder and the expiry, then opens the
/// session, within `max_per_bidder` when the command carries a cap.
pub(super) fn open(
    state: &mut State,
    now_ms: u64,
    token_hash: &str,
    bidder_id: &str,
    expires_at_ms: u64,
    max_per_bidder: Option<u32>,
) -> Result<Outcome, Rejection> {
    if max_per_bidder.is_some_and(|cap| !(1..=MAX_SESSIONS_PER_BIDDER_LIMIT).contains(&cap)) {
        return Err(Rejection::InvalidRequest(format!(
            "max_sessions_per_bidder must be between 1 and {MAX_SESSIONS_PER_BIDDER_LIMIT}"
        )));
    }
    validate_hash("token_hash", token_hash)?;
    if !state.bidders.contains_key(bidder_id) {
        return Err(Rejection::BidderNotFound);
    }
    if expires_at_ms <= now_ms {
        return Err(Rejection::InvalidRequest(
            "the session would already be expired".to_string(),
        ));
    }
    let session = Session {
        bidder_id: bidder_id.to_string(),
        opened_at_ms: now_ms,
        expires_at_ms,
    };
    match max_per_bidder {
        Some(cap) => {
            state
                .sessions
                .open_within(token_hash.to_string(), session, cap as usize);
        }
        None => state.sessions.insert(token_hash.to_string(), session),
    }
    Ok(Outcome::SessionOpened {
        bidder_id: bidder_id.to_string(),
        expires_at_ms,
    })
}

/// Applies a sign-out: the session ends; one unknown or already expired is refused.
pub(super) fn close(
    state: &mut State,
    now_ms: u64,
    token_hash: &str,
) -> Result<Outcome, Rejection> {
    match state.sessions.remove(token_hash) {
        Some(session) if session.expires_at_ms > now_ms => Ok(Outcome::SessionClosed),
        _ => Err(Rejection::Unauthenticated),
    }
}

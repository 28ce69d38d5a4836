//! Bidder sessions (`State::sessions`): each live session by the SHA-256 hash of its
//! token, and beside them, each bidder's sessions from the oldest, so that the per-bidder
//! cap ends a bidder's oldest session without looking at anyone else's.
//!
//! A bidder holds at most `max_sessions_per_bidder` sessions (the command that opens one
//! carries the cap, `Command::OpenSession`): a sign-in over it ends the bidder's oldest,
//! the one opened first, ties broken by token hash, so every replica ends the same one.
//! Without the cap every sign-in was kept until it expired (12 h by default), and a
//! flood of sign-ins grew every replica's state without bound.
//!
//! The per-bidder index is derived from the sessions: it is kept as sessions open and
//! end, rebuilt as they are decoded, and neither encoded nor compared. The encoding is
//! the map of sessions by token hash, as before the index existed, so snapshots and the
//! state's digest read and compare as they did.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest cap a command may carry: it bounds the sessions one bidder can hold in
/// every replica's state, whatever a proposer asks. `config` refuses a larger setting.
pub const MAX_SESSIONS_PER_BIDDER_LIMIT: u32 = 1_000;

/// One bidder session, under the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub bidder_id: String,
    pub opened_at_ms: u64,
    pub expires_at_ms: u64,
}

/// The sessions of every bidder.
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    by_token_hash: BTreeMap<String, Session>,
    /// Bidder id to that bidder's sessions as `(opened_at_ms, token_hash)`, oldest first.
    by_bidder: BTreeMap<String, BTreeSet<(u64, String)>>,
}

impl PartialEq for Sessions {
    fn eq(&self, other: &Self) -> bool {
        self.by_token_hash == other.by_token_hash
    }
}

impl Eq for Sessions {}

impl Sessions {
    pub fn get(&self, token_hash: &str) -> Option<&Session> {
        self.by_token_hash.get(token_hash)
    }

    pub fn contains_key(&self, token_hash: &str) -> bool {
        self.by_token_hash.contains_key(token_hash)
    }

    /// Sessions held, live or expired but not yet purged.
    pub fn len(&self) -> usize {
        self.by_token_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token_hash.is_empty()
    }

    /// How many sessions `bidder_id` holds, live or expired but not yet purged.
    pub fn count_of(&self, bidder_id: &str) -> usize {
        self.by_bidder.get(bidder_id).map_or(0, BTreeSet::len)
    }

    /// Every session, by token hash.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Session)> {
        self.by_token_hash.iter()
    }

    /// Adds `session` under `token_hash` (replacing a session under the same hash), with
    /// no cap: how sessions opened before the cap existed are replayed.
    pub fn insert(&mut self, token_hash: String, session: Session) {
        self.remove(&token_hash);
        self.by_bidder
            .entry(session.bidder_id.clone())
            .or_default()
            .insert((session.opened_at_ms, token_hash.clone()));
        self.by_token_hash.insert(token_hash, session);
    }

    /// Adds `session` under `token_hash`, first ending the bidder's oldest sessions until
    /// fewer than `max_per_bidder` are left; answers how many were ended.
    pub fn open_within(
        &mut self,
        token_hash: String,
        session: Session,
        max_per_bidder: usize,
    ) -> u64 {
        self.remove(&token_hash);
        let mut ended = 0;
        while self.count_of(&session.bidder_id) >= max_per_bidder.max(1) {
            let oldest = self
                .by_bidder
                .get(&session.bidder_id)
                .and_then(|sessions| sessions.first())
                .map(|(_, oldest)| oldest.clone());
            match oldest {
                Some(oldest) => {
                    self.remove(&oldest);
                    ended += 1;
                }
                None => break,
            }
        }
        self.insert(token_hash, session);
        ended
    }

    /// Ends the session under `token_hash`, answering it if there was one.
    pub fn remove(&mut self, token_hash: &str) -> Option<Session> {
        let session = self.by_token_hash.remove(token_hash)?;
        if let Some(of_bidder) = self.by_bidder.get_mut(&session.bidder_id) {
            of_bidder.remove(&(session.opened_at_ms, token_hash.to_string()));
            if of_bidder.is_empty() {
                self.by_bidder.remove(&session.bidder_id);
            }
        }
        Some(session)
    }

    /// Ends every session that has expired at `now_ms`; answers how many.
    pub fn remove_expired(&mut self, now_ms: u64) -> u64 {
        let expired: Vec<String> = self
            .by_token_hash
            .iter()
            .filter(|(_, session)| session.expires_at_ms <= now_ms)
            .map(|(token_hash, _)| token_hash.clone())
            .collect();
        for token_hash in &expired {
            self.remove(token_hash);
        }
        expired.len() as u64
    }
}

impl FromIterator<(String, Session)> for Sessions {
    fn from_iter<I: IntoIterator<Item = (String, Session)>>(iter: I) -> Self {
        let mut sessions = Sessions::default();
        for (token_hash, session) in iter {
            sessions.insert(token_hash, session);
        }
        sessions
    }
}

impl Serialize for Sessions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.by_token_hash.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Sessions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let by_token_hash = BTreeMap::<String, Session>::deserialize(deserializer)?;
        Ok(by_token_hash.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(bidder_id: &str, opened_at_ms: u64) -> Session {
        Session {
            bidder_id: bidder_id.to_string(),
            opened_at_ms,
            expires_at_ms: opened_at_ms + 1_000,
        }
    }

    fn hash(n: u64) -> String {
        format!("{n:064x}")
    }

    #[test]
    fn a_bidder_over_the_cap_loses_the_oldest_session_and_no_one_else_does() {
        let mut sessions = Sessions::default();
        sessions.open_within(hash(100), session("bob", 1), 2);
        for n in 1..=5 {
            sessions.open_within(hash(n), session("alice", 10 + n), 2);
        }
        assert_eq!(sessions.count_of("alice"), 2);
        assert!(sessions.contains_key(&hash(4)) && sessions.contains_key(&hash(5)));
        assert!(!sessions.contains_key(&hash(1)));
        assert_eq!(sessions.count_of("bob"), 1, "another bidder keeps theirs");
    }

    #[test]
    fn sessions_opened_at_the_same_time_end_in_token_hash_order() {
        let mut sessions = Sessions::default();
        sessions.open_within(hash(9), session("alice", 5), 2);
        sessions.open_within(hash(3), session("alice", 5), 2);
        assert_eq!(sessions.open_within(hash(7), session("alice", 5), 2), 1);
        assert!(
            !sessions.contains_key(&hash(3)),
            "the lowest hash goes first"
        );
        assert!(sessions.contains_key(&hash(7)) && sessions.contains_key(&hash(9)));
    }

    #[test]
    fn sessions_above_a_lowered_cap_are_all_trimmed_at_the_next_sign_in() {
        let mut sessions: Sessions = (1..=6).map(|n| (hash(n), session("alice", n))).collect();
        assert_eq!(sessions.open_within(hash(7), session("alice", 7), 3), 4);
        assert_eq!(sessions.count_of("alice"), 3);
    }

    #[test]
    fn the_index_follows_removals_and_expiry_and_is_rebuilt_on_decode() {
        let mut sessions = Sessions::default();
        sessions.open_within(hash(1), session("alice", 1), 8);
        sessions.open_within(hash(2), session("alice", 5_000), 8);
        sessions.open_within(hash(3), session("bob", 2), 8);
        assert_eq!(sessions.remove_expired(2_000), 2);
        assert_eq!(
            (sessions.count_of("alice"), sessions.count_of("bob")),
            (1, 0)
        );
        let binary = bincode::serialize(&sessions).expect("encode");
        let as_map: BTreeMap<String, Session> = bincode::deserialize(&binary).expect("a map");
        assert_eq!(as_map.len(), 1);
        let mut back: Sessions = bincode::deserialize(&binary).expect("decode");
        assert_eq!(back, sessions);
        assert_eq!(back.count_of("alice"), 1);
        assert_eq!(back.remove_expired(u64::MAX), 1);
    }
}

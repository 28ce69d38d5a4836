//! The kernel's rules for bidder sessions: a bidder holds at most the cap the sign-in
//! carries (`sessions.max_sessions_per_bidder`, 8 by default), and a sign-in over it
//! ends that bidder's oldest session, the same one on every replica. Alice, Bob and
//! Carol are qualified for the default auction (`common_kernel::sale`) with one session
//! each, opened at time 0.

mod common_kernel;

use common_kernel::{sale, spec, token_hash, Harness, AUCTION};
use gavel_kernel::{Command, Outcome, Rejection};

/// Alice's `n`th extra sign-in: a token hash no harness session uses.
fn alice_token(n: u64) -> String {
    token_hash(1_000_000 + n)
}

fn sign_in(
    harness: &mut Harness,
    now_ms: u64,
    token_hash: String,
    cap: u32,
) -> Result<Outcome, Rejection> {
    let command = Command::OpenSession {
        token_hash,
        bidder_id: "alice".to_string(),
        expires_at_ms: now_ms + 43_200_000,
        max_sessions_per_bidder: cap,
    };
    harness.run_with(now_ms, 1, "alice", command).result
}

fn bid_with(
    harness: &mut Harness,
    now_ms: u64,
    token_hash: String,
    amount: u64,
) -> Result<Outcome, Rejection> {
    let command = Command::PlaceBid {
        auction_id: AUCTION.to_string(),
        token_hash,
        amount,
        request_id: format!("request-{now_ms}"),
    };
    harness.run(now_ms, command)
}

// A flood of sign-ins by one bidder leaves that bidder `cap` sessions, the newest, and
// the first token no longer opens anything; other bidders keep theirs.
#[test]
fn a_thousand_sign_ins_leave_eight_sessions_and_the_first_token_refused() {
    let mut harness = sale(spec(AUCTION));
    let sessions_before = harness.state.sessions.len();
    for n in 0..1_000 {
        let opened = sign_in(&mut harness, 1_000 + n, alice_token(n), 8);
        assert!(
            matches!(opened, Ok(Outcome::SessionOpened { .. })),
            "{opened:?}"
        );
    }
    assert_eq!(harness.state.sessions.count_of("alice"), 8);
    assert_eq!(harness.state.sessions.len(), sessions_before - 1 + 8);
    for n in 992..1_000 {
        assert!(
            harness.state.sessions.contains_key(&alice_token(n)),
            "session {n}"
        );
    }
    let first = bid_with(&mut harness, 20_000, alice_token(0), 1000);
    assert_eq!(first, Err(Rejection::Unauthenticated));
    let harness_session = harness.token("alice");
    assert_eq!(
        bid_with(&mut harness, 20_001, harness_session, 1000),
        Err(Rejection::Unauthenticated),
        "the session opened before the flood was the oldest of all"
    );
    assert!(bid_with(&mut harness, 20_002, alice_token(999), 1000).is_ok());
    assert!(
        harness.bid(20_003, "bob", 1100).is_ok(),
        "Bob keeps his session"
    );
}

// Sign-ins stamped with the same time end the session of the lowest token hash first,
// so every replica that applies the same log holds the same sessions.
#[test]
fn replicas_end_the_same_session_when_sign_ins_share_a_time() {
    let mut replicas = [sale(spec(AUCTION)), sale(spec(AUCTION))];
    for replica in &mut replicas {
        for n in [7, 3, 9, 1] {
            sign_in(replica, 5_000, alice_token(n), 2).expect("signed in");
        }
    }
    let [first, second] = &replicas;
    assert_eq!(first.state, second.state);
    assert_eq!(first.state.digest(), second.state.digest());
    assert_eq!(first.state.sessions.count_of("alice"), 2);
    // The session from time 0 goes first; then, all at 5000, the lower hash of the two
    // held: 3 (when 9 signs in), then 7 (when 1 does). The newest always stays.
    let held: Vec<bool> = [1, 3, 7, 9]
        .map(|n| first.state.sessions.contains_key(&alice_token(n)))
        .to_vec();
    assert_eq!(held, [true, false, false, true]);
}

// The cap travels in the command: one outside 1..=1000 is refused and opens nothing.
#[test]
fn a_sign_in_with_a_cap_out_of_range_is_refused_and_changes_nothing() {
    let mut harness = sale(spec(AUCTION));
    let before = harness.state.clone();
    for cap in [0, 1_001, u32::MAX] {
        let refused = sign_in(&mut harness, 1_000, alice_token(1), cap);
        assert!(
            matches!(refused, Err(Rejection::InvalidRequest(_))),
            "{refused:?}"
        );
    }
    // The clock moved to the commands' time; nothing else did.
    harness.state.clock_ms = before.clock_ms;
    assert_eq!(harness.state, before);
}

// Sign-ins written to the log before sessions had a cap replay as they did, without it;
// the next capped sign-in brings the bidder back under the cap.
#[test]
fn sign_ins_from_before_the_cap_replay_uncapped_and_the_next_one_trims() {
    let mut harness = sale(spec(AUCTION));
    for n in 0..12 {
        let old = Command::OpenSessionUncapped {
            token_hash: alice_token(n),
            bidder_id: "alice".to_string(),
            expires_at_ms: 43_200_000,
        };
        assert!(harness.run(1_000 + n, old).is_ok());
    }
    assert_eq!(harness.state.sessions.count_of("alice"), 13);
    sign_in(&mut harness, 2_000, alice_token(100), 8).expect("signed in");
    assert_eq!(harness.state.sessions.count_of("alice"), 8);
    assert!(harness.state.sessions.contains_key(&alice_token(100)));
    assert!(!harness.state.sessions.contains_key(&alice_token(4)));
    assert!(harness.state.sessions.contains_key(&alice_token(5)));
}

// Purge and sign-out keep the per-bidder count exact: a bidder below the cap after
// sessions ended loses nothing at the next sign-in.
#[test]
fn ended_sessions_no_longer_count_against_the_cap() {
    let mut harness = sale(spec(AUCTION));
    sign_in(&mut harness, 1_000, alice_token(1), 3).expect("signed in");
    let close = Command::CloseSession {
        token_hash: alice_token(1),
    };
    assert_eq!(harness.run(1_500, close), Ok(Outcome::SessionClosed));
    assert_eq!(harness.state.sessions.count_of("alice"), 1);
    sign_in(&mut harness, 2_000, alice_token(2), 3).expect("signed in");
    sign_in(&mut harness, 2_001, alice_token(3), 3).expect("signed in");
    assert!(harness.state.sessions.contains_key(&harness.token("alice")));
    assert_eq!(harness.state.sessions.count_of("alice"), 3);
}

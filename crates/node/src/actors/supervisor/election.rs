//! A prompt election after the leader died. openraft 0.9 lets a follower campaign only
//! after the leader lease (the election timeout's maximum) plus a random election timeout
//! have passed without a word from the leader, and voters refuse any candidate while
//! their own lease runs; with the defaults that is 450–600 ms of a leaderless cluster
//! after every leader death, more when the first candidate's log is behind. When this
//! node's PeerLink finds the leader's process gone (its port refuses connections, or it
//! closed or reset one: a killed or crashed node, not a slow one), the Supervisor runs
//! `campaign_when_lease_expires`: once the lease has run out here (so the other voters'
//! leases have too, give or take the spread of one heartbeat), and no leader has been
//! heard from meanwhile, the voters ask for votes in turn, the first
//! `FIRST_CAMPAIGN_AFTER_LEASE` after the lease and each next one `CAMPAIGN_STAGGER`
//! later, so they do not split the vote. A leader that is alive keeps its port and its
//! connections open, and refreshes the lease with its heartbeats, so it is never
//! challenged by this, however loaded or paused; Raft's own timer stays in place for
//! everything else (a paused or partitioned leader, a lost host).

use std::time::Duration;

use openraft::ServerState;

use crate::replication::GavelRaft;

/// How long after its lease ran out the first voter in turn campaigns.
pub const FIRST_CAMPAIGN_AFTER_LEASE: Duration = Duration::from_millis(20);

/// How much later each next voter in turn campaigns, if still no leader won.
pub const CAMPAIGN_STAGGER: Duration = Duration::from_millis(100);

/// Gives up (Raft's own timer remains) after this long.
const GIVE_UP_AFTER: Duration = Duration::from_secs(3);

/// Waits until this node has heard nothing from a leader for the leader lease plus its
/// turn (`turn` 0 first), then starts an election unless by then a live leader (other
/// than `dead_leader`) is known, an election is under way, or this node leads.
pub async fn campaign_when_lease_expires(raft: GavelRaft, dead_leader: u64, turn: u32) {
    let lease = Duration::from_millis(raft.config().election_timeout_max);
    let after_lease = FIRST_CAMPAIGN_AFTER_LEASE + CAMPAIGN_STAGGER * turn;
    let started = tokio::time::Instant::now();
    while started.elapsed() < GIVE_UP_AFTER {
        let heard = raft
            .with_raft_state(|state| (state.vote_last_modified(), state.vote_ref().is_committed()))
            .await;
        // An uncommitted vote: an election is under way (this node granted a candidate its
        // vote, or saw a greater term); Raft's own timer, not a prompt, takes it from there.
        let Ok((Some(last_heard), true)) = heard else {
            return;
        };
        let due = last_heard + lease + after_lease;
        if tokio::time::Instant::now() < due {
            tokio::time::sleep_until(due).await;
            // Heard from someone meanwhile? Then `due` moved: look again.
            continue;
        }
        let metrics = raft.metrics().borrow().clone();
        let live_leader = metrics
            .current_leader
            .is_some_and(|leader| leader != dead_leader);
        if metrics.state != ServerState::Follower || live_leader {
            return;
        }
        tracing::info!(
            dead_leader,
            turn,
            "leader process gone and its lease expired: starting an election"
        );
        if let Err(error) = raft.trigger().elect().await {
            tracing::warn!(%error, "could not start an election");
        }
        return;
    }
}

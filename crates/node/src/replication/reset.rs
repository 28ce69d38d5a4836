//! Clearing a node whose Raft log is damaged (`gavel node reset`), and its way back.
//!
//! A node whose log lost entries it had made durable refuses to start
//! (`StoreError::DamagedLog`): it may have acknowledged them, and a voter that forgets
//! what it acknowledged can help elect a leader that lacks a committed entry. The reset
//! moves the node's Raft storage and archive aside, into `DIR/damaged-<unix ms>/`, for
//! inspection (nothing is deleted), and leaves the file `DIR/rejoin-as-standby`. The
//! node's configuration, and so its id and addresses, are not in the data directory and
//! stay as they were.
//!
//! A node started on a directory holding that file does not form a cluster of its own
//! even if its configuration names it a voter; it waits for the leader, which catches it
//! up by snapshot and log. Until the cluster's membership names it a learner (a standby),
//! it grants no vote and does not campaign: while it is still a voter in the leader's
//! view, its empty log and vote must not count in an election. Once it is a learner the
//! file is removed and it is a standby like any other, which the Supervisor may promote
//! again when a voter dies.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::durable::Durable;
use super::error::{ReplicationError, StoreError};
use super::segments::sync_dir;
use super::GavelRaft;

/// The file in a data directory that says the node was reset and rejoins as a standby.
pub const REJOIN_FILE: &str = "rejoin-as-standby";

/// The parts of a data directory a reset moves aside: the Raft storage (log, vote,
/// state, snapshots) and the archive of closed auctions, both rebuilt from the cluster.
const NODE_STATE: [&str; 2] = ["raft", "archive"];

/// What `reset` will do to a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetPlan {
    pub data_dir: PathBuf,
    /// The directories that move aside, each to `aside` under its own name.
    pub moved: Vec<PathBuf>,
    pub aside: PathBuf,
}

/// Looks at `data_dir` and says what a reset would move. Fails on a directory that holds
/// no Gavel node data, or that a running node holds.
pub fn plan_reset(data_dir: &Path) -> Result<ResetPlan, ReplicationError> {
    let raft = data_dir.join("raft");
    if !raft.join("db").is_file() {
        return Err(ReplicationError::DataDir(format!(
            "{} holds no Gavel node data ({} is missing)",
            data_dir.display(),
            raft.join("db").display()
        )));
    }
    // sled locks its database while a node runs on it.
    match Durable::open(&raft) {
        Ok(durable) => Arc::new(durable).close()?,
        Err(error @ StoreError::Sled { .. }) => {
            return Err(ReplicationError::DataDir(format!(
                "cannot open {} (is a node still running on it?): {error}",
                raft.display()
            )))
        }
        Err(other) => return Err(other.into()),
    }
    let stamp_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    Ok(ResetPlan {
        data_dir: data_dir.to_path_buf(),
        moved: NODE_STATE
            .iter()
            .map(|name| data_dir.join(name))
            .filter(|path| path.exists())
            .collect(),
        aside: data_dir.join(format!("damaged-{stamp_ms}")),
    })
}

/// Carries out `plan`: the node's state moves aside and the rejoin file is written, all
/// durably (a crash midway leaves the node unable to start on half a state, never
/// starting as a voter on an empty one: the rejoin file is written first).
pub fn reset(plan: &ResetPlan) -> Result<(), ReplicationError> {
    let rejoin = plan.data_dir.join(REJOIN_FILE);
    std::fs::write(
        &rejoin,
        "This node was reset by `gavel node reset`: it rejoins its cluster as a standby.\n",
    )
    .map_err(StoreError::io(&rejoin))?;
    std::fs::File::open(&rejoin)
        .and_then(|file| file.sync_all())
        .map_err(StoreError::io(&rejoin))?;
    std::fs::create_dir(&plan.aside).map_err(StoreError::io(&plan.aside))?;
    for path in &plan.moved {
        let name = path.file_name().unwrap_or(path.as_os_str());
        std::fs::rename(path, plan.aside.join(name)).map_err(StoreError::io(path))?;
    }
    sync_dir(&plan.aside)?;
    sync_dir(&plan.data_dir)?;
    Ok(())
}

/// Whether the node on `data_dir` was reset and has not yet rejoined as a standby.
pub fn rejoining(data_dir: &Path) -> bool {
    data_dir.join(REJOIN_FILE).exists()
}

/// Keeps a reset node from voting and campaigning until the membership names it a
/// learner, then removes the rejoin file and lets it take part like any standby.
/// `withheld` is the flag the peer server reads before it answers a vote request; it is
/// set, and elections turned off, before this returns the future to run.
pub fn rejoin_as_standby(
    raft: GavelRaft,
    node_id: u64,
    data_dir: PathBuf,
    withheld: Arc<AtomicBool>,
) -> impl std::future::Future<Output = ()> {
    withheld.store(true, Ordering::SeqCst);
    raft.runtime_config().elect(false);
    tracing::warn!(
        node_id,
        "this node was reset: it waits for the leader, grants no vote and does not campaign until it is a standby"
    );
    wait_until_standby(raft, node_id, data_dir, withheld)
}

async fn wait_until_standby(
    raft: GavelRaft,
    node_id: u64,
    data_dir: PathBuf,
    withheld: Arc<AtomicBool>,
) {
    let mut metrics = raft.metrics();
    let mut said_voter = false;
    loop {
        let (voter, learner) = {
            let seen = metrics.borrow();
            let membership = seen.membership_config.membership();
            let voter = membership.voter_ids().any(|id| id == node_id);
            let learner = membership.learner_ids().any(|id| id == node_id);
            (voter, learner)
        };
        if learner && !voter {
            break;
        }
        if voter && !said_voter {
            said_voter = true;
            tracing::warn!(
                node_id,
                "the cluster still counts this reset node as a voter; it neither votes nor campaigns until a standby has taken its place"
            );
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
    let rejoin = data_dir.join(REJOIN_FILE);
    let removed = std::fs::remove_file(&rejoin)
        .map_err(StoreError::io(&rejoin))
        .and_then(|()| sync_dir(&data_dir));
    if let Err(error) = removed {
        tracing::error!(%error, "cannot remove the rejoin file; the node goes on withholding its vote");
        return;
    }
    withheld.store(false, Ordering::SeqCst);
    raft.runtime_config().elect(true);
    tracing::info!(node_id, "rejoined the cluster as a standby");
}

//! Restoring a stopped node's state from its data directory without starting Raft, for
//! offline checks (`gavel ctl audit verify --data-dir`). It goes the way a starting node
//! does: `StateMachineStore::open` loads the durable snapshot, then the committed log
//! entries after it are read from the `LogStore` and handed to the same state machine's
//! `apply` (what openraft's startup re-apply does). Nothing is proposed, voted or
//! snapshotted, so the data directory is read, not changed, beyond the repairs any
//! opening of the log makes (a torn last record zeroed, the sync mark brought up to
//! date, entries in sled's older layout moved to the log's files): a node started on it
//! would make them too. The directory is locked by sled while a node runs on it: a
//! running node's directory cannot be opened here.

use std::path::Path;
use std::sync::Arc;

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::RaftLogReader;

use super::archive::ArchiveStore;
use super::durable::Durable;
use super::error::{blocking, ReplicationError, StoreError};
use super::{AppliedState, LogStore, StateMachineStore};

/// The applied state a node restarted on `data_dir` would have: its snapshot plus every
/// committed entry after it.
pub async fn restore_offline(data_dir: &Path) -> Result<AppliedState, ReplicationError> {
    let dir = data_dir.join("raft");
    if !dir.join("db").is_file() {
        return Err(ReplicationError::DataDir(format!(
            "{} holds no Gavel node data ({} is missing)",
            data_dir.display(),
            dir.join("db").display()
        )));
    }
    let opened_dir = dir.clone();
    let durable =
        blocking(move || Durable::open(&opened_dir))
            .await
            .map_err(|error| match error {
                StoreError::Sled { .. } => ReplicationError::DataDir(format!(
                    "cannot open {} (is a node still running on it?): {error}",
                    dir.display()
                )),
                other => other.into(),
            })?;
    let durable = Arc::new(durable);
    let mut log_store = LogStore::open(durable.clone())?;
    let (events, _) = tokio::sync::broadcast::channel(1);
    // Replaying archive commands writes the auctions they take out to an archive: a
    // scratch one, so that the node's directory is only read.
    let scratch = std::env::temp_dir().join(format!(
        "gavel-offline-archive-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let scratch_dir = scratch.clone();
    let archive = blocking(move || ArchiveStore::open(&scratch_dir)).await?;
    let (mut state_machine, state) = StateMachineStore::open(durable.clone(), archive, events)?;
    let restored = replay_committed(&mut log_store, &mut state_machine, &state).await;
    drop(state_machine);
    drop(log_store);
    let _ = std::fs::remove_dir_all(&scratch);
    restored?;
    let applied = state.read().clone();
    Ok(applied)
}

async fn replay_committed(
    log_store: &mut LogStore,
    state_machine: &mut StateMachineStore,
    state: &super::SharedState,
) -> Result<(), ReplicationError> {
    let storage = |error: openraft::StorageError<u64>| {
        ReplicationError::Store(StoreError::corrupt("the raft log", error.to_string()))
    };
    let committed = log_store.read_committed().await.map_err(storage)?;
    let next = state
        .read()
        .last_applied
        .map_or(0, |log_id| log_id.index.saturating_add(1));
    let Some(committed) = committed.filter(|committed| committed.index >= next) else {
        return Ok(());
    };
    let entries = log_store
        .try_get_log_entries(next..=committed.index)
        .await
        .map_err(storage)?;
    let expected = committed.index - next + 1;
    if entries.len() as u64 != expected {
        return Err(ReplicationError::Store(StoreError::corrupt(
            "the raft log",
            format!(
                "entries {next} to {} are committed but only {} of them are stored",
                committed.index,
                entries.len()
            ),
        )));
    }
    state_machine.apply(entries).await.map_err(storage)?;
    Ok(())
}

//! The Backups actor: scheduled backups (`[backup] dir, every_ms, keep`), written by the
//! leader only.
//!
//! Every `every_ms` the actor of the node that leads takes a backup of its applied state
//! (`replication::backup::take_backup`, the same file `GET /control/v1/backup` answers),
//! off the actor's thread, and writes it as
//! `gavel-backup-{last applied index, 12 digits}-{taken at ms}.backup`: into a hidden
//! temporary file first, synced, renamed into place, the directory synced. It then reads
//! the file back and checks it as a restore would (`read_backup`: magic line, header,
//! payload length and SHA-256, strict decode, state digest); a file that fails is removed
//! and counted as a failure, never left to be trusted. Only then are the oldest backups
//! beyond `keep` removed (and any temporary file a crash left behind). A node that does
//! not lead, or whose archive is still being filled from its peers (its backup would
//! miss closed sales), writes nothing. `gavel_backups_written_total`,
//! `gavel_backup_failures_total` and `gavel_last_backup_age_ms` tell the operators.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::actors::wall_clock_ms;
use crate::replication::archive::ArchiveStore;
use crate::replication::backup::{read_backup, read_header, take_backup};
use crate::replication::{GavelRaft, SharedState};
use crate::telemetry::Metrics;

const PREFIX: &str = "gavel-backup-";
const SUFFIX: &str = ".backup";

#[derive(Debug, Clone)]
pub struct BackupSettings {
    pub dir: PathBuf,
    pub every_ms: u64,
    pub keep: u32,
}

pub struct Backups {
    settings: BackupSettings,
    node_id: u64,
    raft: GavelRaft,
    state: SharedState,
    archive: ArchiveStore,
    metrics: Arc<Metrics>,
    busy: bool,
}

impl Backups {
    pub fn new(
        settings: BackupSettings,
        node_id: u64,
        raft: GavelRaft,
        state: SharedState,
        archive: ArchiveStore,
        metrics: Arc<Metrics>,
    ) -> Self {
        Backups {
            settings,
            node_id,
            raft,
            state,
            archive,
            metrics,
            busy: false,
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let leads = self.raft.metrics().borrow().current_leader == Some(self.node_id);
        if self.busy || !leads {
            return;
        }
        self.busy = true;
        let (settings, state, archive, node_id) = (
            self.settings.clone(),
            self.state.clone(),
            self.archive.clone(),
            self.node_id,
        );
        let work = tokio::task::spawn_blocking(move || {
            if archive.catching_up() {
                return Err("this node's archive is still filling from its peers".to_string());
            }
            write_backup(&settings, &state, &archive, node_id, wall_clock_ms())
        });
        async move {
            work.await
                .map_err(|error| error.to_string())
                .and_then(|done| done)
        }
        .into_actor(self)
        .map(|outcome, backups, _ctx| {
            backups.busy = false;
            backups.record(outcome);
        })
        .spawn(ctx);
    }

    fn record(&self, outcome: Result<Written, String>) {
        match outcome {
            Ok(written) => {
                self.metrics.backups_written_total.inc();
                self.metrics
                    .last_backup_at_ms
                    .set(written.taken_at_ms as i64);
                tracing::info!(
                    path = %written.path.display(),
                    index = written.index,
                    bytes = written.bytes,
                    removed = written.removed,
                    "scheduled backup written and verified"
                );
            }
            Err(error) => {
                self.metrics.backup_failures_total.inc();
                tracing::error!(%error, dir = %self.settings.dir.display(), "scheduled backup failed");
            }
        }
    }
}

impl Actor for Backups {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Err(error) = std::fs::create_dir_all(&self.settings.dir) {
            tracing::error!(%error, dir = %self.settings.dir.display(), "cannot create the backup directory");
        }
        let every = Duration::from_millis(self.settings.every_ms);
        ctx.run_interval(every, |backups, ctx| backups.tick(ctx));
    }
}

/// One backup written, checked and rotated.
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    pub index: u64,
    pub bytes: usize,
    pub taken_at_ms: u64,
    /// Older backups removed after it.
    pub removed: usize,
}

/// Takes a backup of `state` and `archive`, writes it into `settings.dir` durably, reads
/// it back and checks it, then keeps the newest `settings.keep`.
pub fn write_backup(
    settings: &BackupSettings,
    state: &SharedState,
    archive: &ArchiveStore,
    node_id: u64,
    now_ms: u64,
) -> Result<Written, String> {
    let dir = &settings.dir;
    std::fs::create_dir_all(dir)
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let bytes = take_backup(state, archive, node_id, now_ms)
        .map_err(|error| format!("cannot take a backup: {error}"))?;
    let index = read_header(&bytes)
        .map(|header| header.last_applied_index)
        .ok_or("the backup just taken has no readable header")?;
    let name = format!("{PREFIX}{index:012}-{now_ms}{SUFFIX}");
    let path = dir.join(&name);
    write_durably(dir, &name, &bytes)?;
    let written = std::fs::read(&path)
        .map_err(|error| format!("cannot read {} back: {error}", path.display()));
    if let Err(problem) = written.and_then(|read| {
        read_backup(&read)
            .map(|_| ())
            .map_err(|error| format!("{} does not check: {error}", path.display()))
    }) {
        let _ = std::fs::remove_file(&path);
        return Err(problem);
    }
    let removed = rotate(dir, settings.keep as usize)?;
    Ok(Written {
        path,
        index,
        bytes: bytes.len(),
        taken_at_ms: now_ms,
        removed,
    })
}

fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let temporary = dir.join(format!(".{name}.tmp"));
    let failed = |what: &str, error: std::io::Error| {
        format!("cannot {what} {}: {error}", temporary.display())
    };
    let mut file = std::fs::File::create(&temporary).map_err(|error| failed("create", error))?;
    file.write_all(bytes)
        .map_err(|error| failed("write", error))?;
    file.sync_all().map_err(|error| failed("sync", error))?;
    drop(file);
    std::fs::rename(&temporary, dir.join(name)).map_err(|error| failed("rename", error))?;
    std::fs::File::open(dir)
        .and_then(|directory| directory.sync_all())
        .map_err(|error| format!("cannot sync {}: {error}", dir.display()))
}

/// Removes every backup of `dir` but the newest `keep` (by name: log index, then time),
/// and any temporary file left behind. Answers how many backups it removed.
fn rotate(dir: &Path, keep: usize) -> Result<usize, String> {
    let mut backups = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|error| format!("cannot list {}: {error}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!(".{PREFIX}")) && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        } else if name.starts_with(PREFIX) && name.ends_with(SUFFIX) {
            backups.push(name);
        }
    }
    backups.sort();
    let excess = backups.len().saturating_sub(keep);
    for name in &backups[..excess] {
        std::fs::remove_file(dir.join(name))
            .map_err(|error| format!("cannot remove {name}: {error}"))?;
    }
    Ok(excess)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_newest_and_clears_temporary_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (index, at) in [(5u64, 100u64), (12, 200), (9, 300), (12, 150)] {
            let name = format!("{PREFIX}{index:012}-{at}{SUFFIX}");
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::write(
            dir.path()
                .join(format!(".{PREFIX}000000000013-400{SUFFIX}.tmp")),
            b"half",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"the operator's").unwrap();
        assert_eq!(rotate(dir.path(), 2).unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                format!("{PREFIX}000000000012-150{SUFFIX}"),
                format!("{PREFIX}000000000012-200{SUFFIX}"),
                "notes.txt".to_string(),
            ]
        );
    }
}

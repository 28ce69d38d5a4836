//! The Exchange actor: the intranet–internet spool (docs/DESIGN.md decision 6).
//!
//! Files cross the air gap as JSON lines, one record `{key, status, data}` per line, and
//! a last line `{"checksum": "hmac-sha256:<hex>", "records": N}`, the HMAC-SHA256 under
//! the spool's key of every byte before it (`crate::exchange`). A file is taken only when
//! it is complete: its name ends in `.jsonl` (writers write another name and rename), it
//! is a regular file (opened `O_NOFOLLOW`: a symbolic link is quarantined, never
//! followed) and its checksum line is there. A file whose MAC is wrong, or that has a
//! plain SHA-256 checksum, is quarantined whole and nothing of it applies. Every file
//! Gavel writes is mode 0600, created `O_EXCL` beside its place, synced, renamed, and its
//! directory synced. Only the leader's Exchange actor works the spool, every
//! `interval_ms`:
//!
//! - inbound: the oldest complete file in `inbound/`; each record with a good shape
//!   (status `new`, a key of 1–64 characters `A-Za-z0-9_.-`, `data` one of the control
//!   commands: `register_bidder`, `qualify`, `create_auction`, `suspend`, `resume`,
//!   `terminate`) is proposed as `Command::Exchange`, which the state machine applies once
//!   per key (`gavel_kernel::ledger`); a bad record goes to
//!   `quarantine/<file>.rejected.jsonl` with its line number and reason; then a copy of
//!   the file goes to `processed/` and the file leaves `inbound/`. Neither copy holds a
//!   bidder's secret: every `secret` is replaced by `<redacted>` (the processed copy
//!   gets a new MAC). A file whose MAC is wrong goes to `quarantine/` whole,
//!   with a `.reason` file. A leader that dies within a file leaves it in `inbound/`; the
//!   next leader takes it again and the keys already applied change nothing.
//! - outbound: the records of the replicated outbox (each exchange record's result, each
//!   closed auction's result and bids) go to `outbound/gavel-<first>-<last>.jsonl`
//!   (written aside, synced, renamed, the directory synced, with the MAC line), then
//!   `Command::ExchangeExported` takes them out of the outbox. A leader that dies between
//!   the two leaves them in the outbox, and the next one writes the same file again
//!   (same name, same records).
//!
//! `half_duplex` alternates the two directions, one per look.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use parking_lot::Mutex;
use serde::Serialize;

use super::messages::{IsLeader, Propose, Replicator};
use crate::exchange::{
    parse_file, processed_copy, redacted_line, with_mac, write_aside_then_rename, FileProblem,
    Inbound, Line, SpoolKey, MAX_FILE_BYTES,
};
use crate::model::bidder_secret::SecretHasher;
use crate::replication::SharedState;
use gavel_kernel::ledger::MAX_OUTBOUND_PER_FILE;
use gavel_kernel::{Command, Outcome};

/// An inbound `.jsonl` file still without its checksum line after this long is
/// quarantined as incomplete.
const INCOMPLETE_AFTER: Duration = Duration::from_secs(600);
/// Who proposes the spool's commands, for the audit trail.
const ACTOR: &str = "exchange";

pub struct ExchangeSettings {
    pub dir: PathBuf,
    pub interval_ms: u64,
    pub half_duplex: bool,
    /// Keys applied longer ago than this are forgotten (`Command::ExchangePrune`).
    pub key_retention_ms: u64,
    /// Authenticates every file, both ways (`exchange.hmac_key_file`).
    pub hmac_key: SpoolKey,
}

/// What the Exchange actor did since the node started (`GET /control/v1/exchange`).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ExchangeReport {
    pub enabled: bool,
    pub half_duplex: bool,
    pub inbound_files_taken: u64,
    pub records_applied: u64,
    /// Records whose key was applied before: nothing changed.
    pub records_duplicate: u64,
    /// Records applied as refused by the kernel (their result says why).
    pub records_refused: u64,
    /// Records that could not be read, in `quarantine/` with the reason.
    pub records_quarantined: u64,
    pub files_quarantined: u64,
    pub outbound_files: u64,
    pub outbound_records: u64,
    /// Records waiting in the replicated outbox.
    pub outbox_pending: u64,
    /// Records dropped unwritten because the outbox was full (`MAX_OUTBOX`).
    pub outbox_dropped: u64,
    /// Keys of applied records kept in the replicated ledger, and forgotten so far.
    pub keys_kept: u64,
    pub keys_pruned: u64,
    /// The inbound file being worked through, and how far: records done of all.
    pub current_file: Option<String>,
    pub current_file_done: u64,
    pub current_file_records: u64,
    pub last_error: Option<String>,
}

pub struct Exchange {
    settings: ExchangeSettings,
    supervisor: Replicator,
    state: SharedState,
    /// Updated record by record, so the report shows a file's progress.
    report: Arc<Mutex<ExchangeReport>>,
    busy: bool,
    /// Under `half_duplex`: whether the next look is outbound.
    outbound_turn: bool,
    /// The node's hasher of bidders' secrets (Argon2id, bounded concurrency).
    hasher: Arc<SecretHasher>,
}

impl Exchange {
    pub fn new(
        settings: ExchangeSettings,
        supervisor: Replicator,
        state: SharedState,
        hasher: Arc<SecretHasher>,
    ) -> Self {
        let report = ExchangeReport {
            enabled: true,
            half_duplex: settings.half_duplex,
            ..ExchangeReport::default()
        };
        Exchange {
            settings,
            supervisor,
            state,
            report: Arc::new(Mutex::new(report)),
            busy: false,
            outbound_turn: false,
            hasher,
        }
    }

    fn look(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        self.busy = true;
        let (inbound, outbound) = if self.settings.half_duplex {
            self.outbound_turn = !self.outbound_turn;
            (!self.outbound_turn, self.outbound_turn)
        } else {
            (true, true)
        };
        let work = Work {
            dir: self.settings.dir.clone(),
            supervisor: self.supervisor.clone(),
            state: self.state.clone(),
            report: self.report.clone(),
            key_retention_ms: self.settings.key_retention_ms,
            hasher: self.hasher.clone(),
            key: self.settings.hmac_key.clone(),
        };
        async move {
            let leads = work
                .supervisor
                .is_leader
                .send(IsLeader)
                .await
                .unwrap_or(false);
            if !leads {
                return Ok(());
            }
            if inbound {
                work.inbound().await?;
            }
            if outbound {
                work.outbound().await?;
            }
            work.prune_keys().await
        }
        .into_actor(self)
        .map(|outcome: Result<(), String>, exchange, _ctx| {
            exchange.busy = false;
            if let Err(error) = outcome {
                tracing::warn!(%error, "exchange spool");
                exchange.report.lock().last_error = Some(error);
            }
        })
        .spawn(ctx);
    }
}

impl Actor for Exchange {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        for sub in ["inbound", "outbound", "quarantine", "processed"] {
            let path = self.settings.dir.join(sub);
            if let Err(error) = std::fs::create_dir_all(&path) {
                tracing::error!(%error, path = %path.display(), "cannot create the exchange spool");
                self.report.lock().last_error =
                    Some(format!("cannot create {}: {error}", path.display()));
            }
        }
        let interval = Duration::from_millis(self.settings.interval_ms);
        ctx.run_interval(interval, |exchange, ctx| exchange.look(ctx));
    }
}

/// The Exchange actor's report.
pub struct GetExchangeReport;

impl Message for GetExchangeReport {
    type Result = ExchangeReport;
}

impl Handler<GetExchangeReport> for Exchange {
    type Result = MessageResult<GetExchangeReport>;

    fn handle(&mut self, _: GetExchangeReport, _ctx: &mut Self::Context) -> Self::Result {
        let mut report = self.report.lock().clone();
        let state = self.state.read();
        report.outbox_pending = state.exchange.outbox.len() as u64;
        report.outbox_dropped = state.exchange.dropped;
        report.keys_kept = state.exchange.applied.len() as u64;
        MessageResult(report)
    }
}

/// One look at the spool, away from the actor.
struct Work {
    dir: PathBuf,
    supervisor: Replicator,
    state: SharedState,
    report: Arc<Mutex<ExchangeReport>>,
    key_retention_ms: u64,
    hasher: Arc<SecretHasher>,
    key: SpoolKey,
}

impl Work {
    async fn propose(&self, command: Command) -> Result<Outcome, String> {
        let committed = self
            .supervisor
            .propose
            .send(Propose {
                command,
                actor: ACTOR.to_string(),
            })
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| error.to_string())?;
        committed.outcome.map_err(|rejection| rejection.to_string())
    }

    /// Has the keys older than the retention forgotten, when there are any.
    async fn prune_keys(&self) -> Result<(), String> {
        let oldest = self.state.read().exchange.oldest_applied_ms();
        let cutoff = crate::clock::wall_clock_ms().saturating_sub(self.key_retention_ms);
        if oldest.is_none_or(|oldest| oldest >= cutoff) {
            return Ok(());
        }
        let outcome = self
            .propose(Command::ExchangePrune {
                retention_ms: self.key_retention_ms,
            })
            .await?;
        if let Outcome::ExchangePruned { keys } = outcome {
            self.report.lock().keys_pruned += keys;
        }
        Ok(())
    }

    /// Takes the oldest complete inbound file, if any.
    async fn inbound(&self) -> Result<(), String> {
        let (dir, key) = (self.dir.clone(), self.key.clone());
        let taken = blocking(move || next_inbound(&dir, &key)).await?;
        let Some((path, parsed)) = taken else {
            return Ok(());
        };
        let name = file_name(&path);
        let lines = match parsed {
            Err(reason) => {
                let dir = self.dir.clone();
                blocking(move || quarantine_file(&dir, &path, &reason)).await?;
                self.report.lock().files_quarantined += 1;
                return Ok(());
            }
            Ok(lines) => lines,
        };
        {
            let mut report = self.report.lock();
            report.current_file = Some(name.clone());
            report.current_file_done = 0;
            report.current_file_records = lines.len() as u64;
        }
        let processed = processed_copy(&lines, &self.key);
        let mut rejected = Vec::new();
        for line in lines {
            self.report.lock().current_file_done += 1;
            match line.record {
                Err(reason) => rejected.push(serde_json::json!({
                    "line": line.number, "key": line.key, "reason": reason,
                    "record": redacted_line(&line.text),
                })),
                Ok((key, inbound)) => self.apply_record(key, inbound).await?,
            }
        }
        self.report.lock().records_quarantined += rejected.len() as u64;
        self.file_done(path, name, rejected, processed).await
    }

    /// Proposes one well-formed inbound record (its secret hashed first) and counts what
    /// became of it.
    async fn apply_record(&self, key: String, inbound: Inbound) -> Result<(), String> {
        let secret_hash = match inbound.secret() {
            Some(secret) => Some(
                self.hasher
                    .hash(secret.to_string())
                    .await
                    .map_err(|error| error.to_string())?,
            ),
            None => None,
        };
        let command = inbound.into_command(secret_hash);
        let outcome = self
            .propose(Command::Exchange {
                key,
                command: Box::new(command),
            })
            .await?;
        let mut report = self.report.lock();
        match outcome {
            Outcome::ExchangeApplied {
                duplicate: true, ..
            } => report.records_duplicate += 1,
            Outcome::ExchangeApplied {
                rejected: Some(_), ..
            } => report.records_refused += 1,
            _ => report.records_applied += 1,
        }
        Ok(())
    }

    /// A worked-through inbound file: its rejected records to quarantine/, its processed
    /// copy to processed/, and the file out of inbound/.
    async fn file_done(
        &self,
        path: PathBuf,
        name: String,
        rejected: Vec<serde_json::Value>,
        processed: Vec<u8>,
    ) -> Result<(), String> {
        let dir = self.dir.clone();
        blocking(move || {
            if !rejected.is_empty() {
                let text: String = rejected
                    .iter()
                    .map(|record| format!("{record}\n"))
                    .collect();
                write_aside_then_rename(
                    &dir.join("quarantine")
                        .join(format!("{name}.rejected.jsonl")),
                    text.as_bytes(),
                )?;
            }
            write_aside_then_rename(&dir.join("processed").join(&name), &processed)?;
            std::fs::remove_file(&path)
                .and_then(|()| crate::private_files::sync_parent(&path))
                .map_err(|error| format!("cannot remove {} from inbound/: {error}", path.display()))
        })
        .await?;
        let mut report = self.report.lock();
        report.inbound_files_taken += 1;
        report.current_file = None;
        Ok(())
    }

    /// Writes the outbox's oldest records to one outbound file, then has them taken out.
    async fn outbound(&self) -> Result<(), String> {
        let records: Vec<(u64, serde_json::Value)> = {
            let state = self.state.read();
            state
                .exchange
                .outbox
                .iter()
                .take(MAX_OUTBOUND_PER_FILE)
                .map(|(seq, record)| {
                    let data: serde_json::Value =
                        serde_json::from_str(&record.data).unwrap_or(serde_json::Value::Null);
                    (
                        *seq,
                        serde_json::json!({"key": record.key, "status": record.status, "data": data}),
                    )
                })
                .collect()
        };
        let (Some(first), Some(last)) = (records.first().map(|r| r.0), records.last().map(|r| r.0))
        else {
            return Ok(());
        };
        let body: String = records
            .iter()
            .map(|(_, record)| format!("{record}\n"))
            .collect();
        let file = with_mac(body.as_bytes(), records.len(), &self.key);
        let path = self
            .dir
            .join("outbound")
            .join(format!("gavel-{first:020}-{last:020}.jsonl"));
        blocking(move || write_aside_then_rename(&path, &file)).await?;
        self.propose(Command::ExchangeExported { through: last })
            .await?;
        let mut report = self.report.lock();
        report.outbound_files += 1;
        report.outbound_records += records.len() as u64;
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| error.to_string())?
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// An inbound file and its lines, or why the whole file is refused.
type InboundFile = (PathBuf, Result<Vec<Line>, String>);

/// The oldest complete inbound file and its lines (or why the whole file is refused);
/// incomplete files are passed over, and quarantined once old.
fn next_inbound(dir: &Path, key: &SpoolKey) -> Result<Option<InboundFile>, String> {
    let inbound = dir.join("inbound");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&inbound)
        .map_err(|error| format!("cannot list {}: {error}", inbound.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "jsonl")
                && !file_name(path).starts_with('.')
        })
        .collect();
    names.sort();
    for path in names {
        // The entry itself, not what a link points at.
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if metadata.file_type().is_symlink() {
            return Ok(Some((path, Err("a symbolic link, not a file".to_string()))));
        }
        if !metadata.is_file() {
            continue;
        }
        if metadata.len() > MAX_FILE_BYTES {
            return Ok(Some((
                path,
                Err(format!("larger than {MAX_FILE_BYTES} bytes")),
            )));
        }
        let bytes = read_no_follow(&path)?;
        match parse_file(&bytes, key) {
            Err(FileProblem::Incomplete(reason)) => {
                let age = std::fs::metadata(&path)
                    .and_then(|meta| meta.modified())
                    .ok()
                    .and_then(|modified| SystemTime::now().duration_since(modified).ok())
                    .unwrap_or_default();
                if age >= INCOMPLETE_AFTER {
                    return Ok(Some((
                        path,
                        Err(format!("incomplete for {} s: {reason}", age.as_secs())),
                    )));
                }
            }
            Err(FileProblem::Bad(reason)) => return Ok(Some((path, Err(reason)))),
            Ok(lines) => return Ok(Some((path, Ok(lines)))),
        }
    }
    Ok(None)
}

/// The bytes of the regular file at `path` (`O_NOFOLLOW`), at most `MAX_FILE_BYTES`.
fn read_no_follow(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let failed = |error: std::io::Error| format!("cannot read {}: {error}", path.display());
    let file = crate::private_files::open_no_follow(path).map_err(failed)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    Ok(bytes)
}

/// Moves a refused file to `quarantine/` with a `.reason` file beside it.
fn quarantine_file(dir: &Path, path: &Path, reason: &str) -> Result<(), String> {
    let name = file_name(path);
    let quarantine = dir.join("quarantine");
    write_aside_then_rename(
        &quarantine.join(format!("{name}.reason")),
        format!("{reason}\n").as_bytes(),
    )?;
    let moved = quarantine.join(&name);
    std::fs::rename(path, &moved)
        .and_then(|()| crate::private_files::sync_parent(&moved))
        .and_then(|()| crate::private_files::sync_parent(path))
        .map_err(|error| format!("cannot move {} to quarantine/: {error}", path.display()))?;
    tracing::warn!(file = %name, %reason, "exchange file quarantined");
    Ok(())
}

//! The Exchange actor: the intranet–internet spool (DESIGN.md decision 6).
//!
//! Files cross the air gap as JSON lines, one record `{key, status, data}` per line, and
//! a last line `{"checksum": "sha256:<hex>", "records": N}` over every byte before it. A
//! file is taken only when it is complete: its name ends in `.jsonl` (writers write
//! another name and rename) and its checksum line is there and right. Only the leader's
//! Exchange actor works the spool, every `interval_ms`:
//!
//! - inbound: the oldest complete file in `inbound/`; each record with a good shape
//!   (status `new`, a key of 1–64 characters `A-Za-z0-9_.-`, `data` one of the control
//!   commands: `register_bidder`, `qualify`, `create_auction`, `suspend`, `resume`,
//!   `terminate`) is proposed as `Command::Exchange`, which the state machine applies once
//!   per key (`replication::exchange`); a bad record goes to
//!   `quarantine/<file>.rejected.jsonl` with its line number and reason; then the file
//!   moves to `processed/`. A file whose checksum is wrong goes to `quarantine/` whole,
//!   with a `.reason` file. A leader that dies within a file leaves it in `inbound/`; the
//!   next leader takes it again and the keys already applied change nothing.
//! - outbound: the records of the replicated outbox (each exchange record's result, each
//!   closed auction's result and bids) go to `outbound/gavel-<first>-<last>.jsonl`
//!   (written aside, synced, renamed, with the checksum line), then
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
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::supervisor::{IsLeader, Propose, Supervisor};
use crate::api::requests::AuctionSpecRequest;
use crate::kernel::types::{validate_id, validate_text};
use crate::kernel::{Command, Outcome};
use crate::replication::exchange::MAX_OUTBOUND_PER_FILE;
use crate::replication::SharedState;

/// Largest inbound file taken.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Most records in one inbound file.
const MAX_RECORDS: usize = 10_000;
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
    supervisor: Addr<Supervisor>,
    state: SharedState,
    /// Updated record by record, so the report shows a file's progress.
    report: Arc<Mutex<ExchangeReport>>,
    busy: bool,
    /// Under `half_duplex`: whether the next look is outbound.
    outbound_turn: bool,
}

impl Exchange {
    pub fn new(
        settings: ExchangeSettings,
        supervisor: Addr<Supervisor>,
        state: SharedState,
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
        };
        async move {
            let leads = work.supervisor.send(IsLeader).await.unwrap_or(false);
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
    supervisor: Addr<Supervisor>,
    state: SharedState,
    report: Arc<Mutex<ExchangeReport>>,
    key_retention_ms: u64,
}

impl Work {
    async fn propose(&self, command: Command) -> Result<Outcome, String> {
        let committed = self
            .supervisor
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
        let cutoff = crate::actors::wall_clock_ms().saturating_sub(self.key_retention_ms);
        if !oldest.is_some_and(|oldest| oldest < cutoff) {
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
        let dir = self.dir.clone();
        let taken = blocking(move || next_inbound(&dir)).await?;
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
        let mut rejected = Vec::new();
        for line in lines {
            self.report.lock().current_file_done += 1;
            match line.record {
                Err(reason) => rejected.push(serde_json::json!({
                    "line": line.number, "key": line.key, "reason": reason, "record": line.text,
                })),
                Ok((key, command)) => {
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
                }
            }
        }
        self.report.lock().records_quarantined += rejected.len() as u64;
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
            std::fs::rename(&path, dir.join("processed").join(&name))
                .map_err(|error| format!("cannot move {} to processed/: {error}", path.display()))
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
        let file = with_checksum(body.as_bytes(), records.len());
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

/// `body` with its checksum line.
pub fn with_checksum(body: &[u8], records: usize) -> Vec<u8> {
    let mut file = body.to_vec();
    let line = serde_json::json!({
        "checksum": format!("sha256:{}", hex::encode(Sha256::digest(body))),
        "records": records,
    });
    file.extend_from_slice(format!("{line}\n").as_bytes());
    file
}

/// One line of an inbound file, read.
struct Line {
    number: usize,
    key: Option<String>,
    text: String,
    record: Result<(String, Command), String>,
}

/// The oldest complete inbound file and its lines (or why the whole file is refused);
/// incomplete files are passed over, and quarantined once old.
fn next_inbound(dir: &Path) -> Result<Option<(PathBuf, Result<Vec<Line>, String>)>, String> {
    let inbound = dir.join("inbound");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&inbound)
        .map_err(|error| format!("cannot list {}: {error}", inbound.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "jsonl")
                && !file_name(path).starts_with('.')
                && path.is_file()
        })
        .collect();
    names.sort();
    for path in names {
        let size = std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0);
        if size > MAX_FILE_BYTES {
            return Ok(Some((
                path,
                Err(format!("larger than {MAX_FILE_BYTES} bytes")),
            )));
        }
        let bytes = std::fs::read(&path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        match parse_file(&bytes) {
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

enum FileProblem {
    /// No checksum line yet: the file may still be arriving.
    Incomplete(String),
    Bad(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksumLine {
    checksum: String,
    records: usize,
}

fn parse_file(bytes: &[u8]) -> Result<Vec<Line>, FileProblem> {
    let text = std::str::from_utf8(bytes)
        .map_err(|error| FileProblem::Bad(format!("not UTF-8: {error}")))?;
    let body_and_last = text.trim_end_matches('\n');
    let (body, last) = match body_and_last.rfind('\n') {
        Some(split) => (&text[..split + 1], &body_and_last[split + 1..]),
        None => ("", body_and_last),
    };
    let checksum: ChecksumLine = serde_json::from_str(last)
        .map_err(|_| FileProblem::Incomplete("no checksum line at its end".to_string()))?;
    let expected = format!("sha256:{}", hex::encode(Sha256::digest(body.as_bytes())));
    if checksum.checksum != expected {
        return Err(FileProblem::Bad(format!(
            "checksum {} does not match its records ({expected})",
            checksum.checksum
        )));
    }
    let lines: Vec<&str> = body
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    if lines.len() != checksum.records {
        return Err(FileProblem::Bad(format!(
            "{} records, its checksum line says {}",
            lines.len(),
            checksum.records
        )));
    }
    if lines.len() > MAX_RECORDS {
        return Err(FileProblem::Bad(format!("more than {MAX_RECORDS} records")));
    }
    Ok(lines
        .into_iter()
        .enumerate()
        .map(|(index, line)| {
            let key = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|value| value["key"].as_str().map(str::to_string));
            Line {
                number: index + 1,
                key,
                text: line.to_string(),
                record: parse_record(line),
            }
        })
        .collect())
}

/// `{key, status, data}` from the intranet.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundRecord {
    key: String,
    status: String,
    data: RecordData,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RecordData {
    RegisterBidder {
        bidder_id: String,
        name: String,
        secret: String,
    },
    Qualify {
        auction_id: String,
        bidder_id: String,
    },
    CreateAuction {
        spec: AuctionSpecRequest,
    },
    Suspend {
        auction_id: String,
        #[serde(default)]
        reason: String,
    },
    Resume {
        auction_id: String,
        #[serde(default)]
        reason: String,
    },
    Terminate {
        auction_id: String,
        #[serde(default)]
        reason: String,
    },
}

fn parse_record(line: &str) -> Result<(String, Command), String> {
    let record: InboundRecord =
        serde_json::from_str(line).map_err(|error| format!("not a record: {error}"))?;
    validate_id("key", &record.key).map_err(|error| error.to_string())?;
    if record.status != "new" {
        return Err(format!("status must be \"new\", not {:?}", record.status));
    }
    let invalid = |error: crate::kernel::Rejection| error.to_string();
    let command = match record.data {
        RecordData::RegisterBidder {
            bidder_id,
            name,
            secret,
        } => {
            validate_id("bidder_id", &bidder_id).map_err(invalid)?;
            validate_text("name", &name, true).map_err(invalid)?;
            let length = secret.chars().count();
            if !(8..=256).contains(&length) {
                return Err("secret must be 8 to 256 characters".to_string());
            }
            let salt = crate::api::auth::new_salt();
            Command::RegisterBidder {
                secret_hash: crate::api::auth::secret_hash(&salt, &secret),
                secret_salt: salt,
                bidder_id,
                name,
            }
        }
        RecordData::Qualify {
            auction_id,
            bidder_id,
        } => {
            validate_id("auction_id", &auction_id).map_err(invalid)?;
            validate_id("bidder_id", &bidder_id).map_err(invalid)?;
            Command::Qualify {
                auction_id,
                bidder_id,
            }
        }
        RecordData::CreateAuction { spec } => Command::CreateAuction {
            spec: spec.into_spec().map_err(|error| error.to_string())?,
        },
        RecordData::Suspend { auction_id, reason } => {
            phase_command(&auction_id, &reason)?;
            Command::Suspend { auction_id, reason }
        }
        RecordData::Resume { auction_id, reason } => {
            phase_command(&auction_id, &reason)?;
            Command::Resume { auction_id, reason }
        }
        RecordData::Terminate { auction_id, reason } => {
            phase_command(&auction_id, &reason)?;
            Command::Terminate { auction_id, reason }
        }
    };
    Ok((record.key, command))
}

fn phase_command(auction_id: &str, reason: &str) -> Result<(), String> {
    validate_id("auction_id", auction_id).map_err(|error| error.to_string())?;
    validate_text("reason", reason, false).map_err(|error| error.to_string())
}

/// Moves a refused file to `quarantine/` with a `.reason` file beside it.
fn quarantine_file(dir: &Path, path: &Path, reason: &str) -> Result<(), String> {
    let name = file_name(path);
    let quarantine = dir.join("quarantine");
    write_aside_then_rename(
        &quarantine.join(format!("{name}.reason")),
        format!("{reason}\n").as_bytes(),
    )?;
    std::fs::rename(path, quarantine.join(&name))
        .map_err(|error| format!("cannot move {} to quarantine/: {error}", path.display()))?;
    tracing::warn!(file = %name, %reason, "exchange file quarantined");
    Ok(())
}

/// Writes `bytes` to a hidden file beside `path`, syncs it, renames it to `path`.
fn write_aside_then_rename(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let failed = |error: std::io::Error| format!("cannot write {}: {error}", path.display());
    let aside = path.with_file_name(format!(".{}.partial", file_name(path)));
    let mut file = std::fs::File::create(&aside).map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    drop(file);
    std::fs::rename(&aside, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(lines: &[&str]) -> Vec<u8> {
        let body: String = lines.iter().map(|line| format!("{line}\n")).collect();
        with_checksum(body.as_bytes(), lines.len())
    }

    #[test]
    fn complete_files_are_read_and_bad_records_named() {
        let bytes = file(&[
            r#"{"key":"k-1","status":"new","data":{"type":"qualify","auction_id":"lot-1","bidder_id":"ada"}}"#,
            r#"{"key":"k-2","status":"done","data":{"type":"qualify","auction_id":"lot-1","bidder_id":"ada"}}"#,
            r#"{"key":"k 3","status":"new","data":{"type":"qualify","auction_id":"lot-1","bidder_id":"ada"}}"#,
            r#"{"key":"k-4","status":"new","data":{"type":"place_bid","auction_id":"lot-1"}}"#,
            r#"{"key":"k-5","status":"new","data":{"type":"register_bidder","bidder_id":"bo","name":"Bo","secret":"short"}}"#,
            r#"not json"#,
        ]);
        let lines = parse_file(&bytes).ok().expect("complete");
        assert!(matches!(&lines[0].record, Ok((key, Command::Qualify { .. })) if key == "k-1"));
        for (index, why) in [
            (1, "status"),
            (2, "key"),
            (3, "unknown variant"),
            (4, "secret"),
            (5, "not a record"),
        ] {
            let reason = lines[index].record.as_ref().err().expect("refused");
            assert!(reason.contains(why), "line {}: {reason}", index + 1);
        }
        assert_eq!(lines[1].key.as_deref(), Some("k-2"));
    }

    #[test]
    fn a_file_without_its_checksum_line_waits_and_a_wrong_one_is_refused() {
        let record = r#"{"key":"k-1","status":"new","data":{"type":"resume","auction_id":"a"}}"#;
        assert!(matches!(
            parse_file(format!("{record}\n").as_bytes()),
            Err(FileProblem::Incomplete(_))
        ));
        let mut bytes = file(&[record]);
        bytes[10] = b'X';
        assert!(matches!(parse_file(&bytes), Err(FileProblem::Bad(_))));
        let body = format!("{record}\n");
        let mut miscounted = body.as_bytes().to_vec();
        miscounted.extend_from_slice(
            format!(
                "{{\"checksum\":\"sha256:{}\",\"records\":2}}\n",
                hex::encode(Sha256::digest(body.as_bytes()))
            )
            .as_bytes(),
        );
        assert!(matches!(parse_file(&miscounted), Err(FileProblem::Bad(_))));
        assert!(parse_file(&file(&[record])).is_ok());
    }
}

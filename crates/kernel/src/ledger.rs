//! The exchange ledger: what the replicated state keeps so that every intranet record is
//! applied once and every result goes out once (docs/DESIGN.md decision 6; the node's
//! Exchange actor reads and writes the spool files).
//!
//! - `applied`: every key of a `Command::Exchange` applied, with what its command came to.
//!   A record proposed again (a retry, a new leader re-reading a file it did not finish)
//!   finds its key and changes nothing.
//! - `outbox`: the records waiting for the outbound spool, by sequence number: the result
//!   of each exchange record (status `applied` or `rejected`), and each auction's result
//!   with every bid once it closes (status `closed`, key `result/<auction id>`, the data a
//!   `SaleResult`). The leader's Exchange actor writes them to a file, then proposes
//!   `Command::ExchangeExported`, which takes them out.
//!
//! It changes only as entries are applied, and only here (`Replica`), so every replica
//! holds the same ledger; it travels in snapshots beside the kernel state.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::apply::{apply, Applied, Effect};
use super::command::{Command, Envelope, Outcome, MAX_PRUNED_PER_COMMAND};
use super::event::{Event, EventKind};
use super::rejection::Rejection;
use super::sale_result::SaleResult;
use super::state::State;
use super::takeover;

/// Most records one outbound file holds.
pub const MAX_OUTBOUND_PER_FILE: usize = 1_000;

/// Most records the outbox holds; beyond it the oldest are dropped and counted (a spool
/// nobody drains must not grow the state for ever).
pub const MAX_OUTBOX: usize = 100_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeLedger {
    pub applied: BTreeMap<String, LedgerEntry>,
    pub outbox: BTreeMap<u64, OutboundRecord>,
    /// The sequence number the next outbound record gets.
    pub next_seq: u64,
    /// Set by the first exchange record: from then on closed auctions' results are
    /// spooled out too. A cluster that never uses the spool keeps an empty outbox.
    pub active: bool,
    /// Outbound records dropped unwritten because the outbox was full.
    pub dropped: u64,
}

/// One applied exchange record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub log_index: u64,
    pub applied_at_ms: u64,
    /// `applied`, or `rejected` with the kernel's message in `detail`.
    pub status: LedgerStatus,
    pub detail: String,
}

/// One record for the management side: `{key, status, data}` with `data` as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRecord {
    pub key: String,
    pub status: OutboxStatus,
    pub data: String,
}

/// What an exchange record's command came to. Serialized as its name (`applied`,
/// `rejected`): a string, in JSON and in the binary snapshot encoding alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum LedgerStatus {
    Applied,
    Rejected,
}

/// The status of an outbound record: an exchange record's (`applied`, `rejected`) or an
/// auction's result (`closed`). Serialized as its name, a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum OutboxStatus {
    Applied,
    Rejected,
    Closed,
}

impl LedgerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerStatus::Applied => "applied",
            LedgerStatus::Rejected => "rejected",
        }
    }
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Applied => "applied",
            OutboxStatus::Rejected => "rejected",
            OutboxStatus::Closed => "closed",
        }
    }
}

impl From<LedgerStatus> for OutboxStatus {
    fn from(status: LedgerStatus) -> Self {
        match status {
            LedgerStatus::Applied => OutboxStatus::Applied,
            LedgerStatus::Rejected => OutboxStatus::Rejected,
        }
    }
}

impl From<LedgerStatus> for String {
    fn from(status: LedgerStatus) -> Self {
        status.as_str().to_string()
    }
}

impl From<OutboxStatus> for String {
    fn from(status: OutboxStatus) -> Self {
        status.as_str().to_string()
    }
}

impl TryFrom<String> for LedgerStatus {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        [LedgerStatus::Applied, LedgerStatus::Rejected]
            .into_iter()
            .find(|status| status.as_str() == name)
            .ok_or_else(|| format!("unknown exchange ledger status {name:?}"))
    }
}

impl TryFrom<String> for OutboxStatus {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        [
            OutboxStatus::Applied,
            OutboxStatus::Rejected,
            OutboxStatus::Closed,
        ]
        .into_iter()
        .find(|status| status.as_str() == name)
        .ok_or_else(|| format!("unknown outbox status {name:?}"))
    }
}

impl fmt::Display for LedgerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for OutboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an exchange record may carry this command: the control data of the intranet.
pub fn allowed_in_exchange(command: &Command) -> bool {
    matches!(
        command,
        Command::RegisterBidder { .. }
            | Command::Qualify { .. }
            | Command::CreateAuction { .. }
            | Command::CreateAuctionWithRules { .. }
            | Command::RecordDeposit { .. }
            | Command::Suspend { .. }
            | Command::Resume { .. }
            | Command::Terminate { .. }
    )
}

impl ExchangeLedger {
    /// Forgets the keys applied before `before_ms`, oldest first, at most
    /// `MAX_PRUNED_PER_COMMAND`; answers how many.
    fn prune_applied_before(&mut self, before_ms: u64) -> u64 {
        let mut old: Vec<(u64, String)> = self
            .applied
            .iter()
            .filter(|(_, entry)| entry.applied_at_ms < before_ms)
            .map(|(key, entry)| (entry.applied_at_ms, key.clone()))
            .collect();
        old.sort();
        old.truncate(MAX_PRUNED_PER_COMMAND);
        for (_, key) in &old {
            self.applied.remove(key);
        }
        old.len() as u64
    }

    /// When the oldest key kept was applied.
    pub fn oldest_applied_ms(&self) -> Option<u64> {
        self.applied.values().map(|entry| entry.applied_at_ms).min()
    }

    /// Once the spool is in use, puts the result of every auction that `events` closed, or
    /// whose winner's confirmation changed after the close (`Settled`: the result comes
    /// again, under the same key, with the new dispositions), in the outbox; answers the
    /// effects for the records it put there.
    fn note_closes(&mut self, kernel: &State, events: &[Event]) -> Vec<Effect> {
        if !self.active {
            return Vec::new();
        }
        let mut effects = Vec::new();
        for event in events {
            if matches!(event.kind, EventKind::Closed | EventKind::Settled) {
                if let Some(auction) = kernel.auctions.get(&event.auction_id) {
                    let data = SaleResult::of(auction).to_outbox_json();
                    let key = format!("result/{}", event.auction_id);
                    effects.push(self.push(key, OutboxStatus::Closed, data));
                }
            }
        }
        effects
    }

    /// Appends a record to the outbox (dropping the oldest when it is full).
    fn push(&mut self, key: String, status: OutboxStatus, data: String) -> Effect {
        while self.outbox.len() >= MAX_OUTBOX {
            self.outbox.pop_first();
            self.dropped += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outbox
            .insert(seq, OutboundRecord { key, status, data });
        Effect::Outbox { seq }
    }

    /// Applies a `Command::Exchange` record not applied before: its command through the
    /// kernel if the exchange may carry it, then the key and its result in the ledger.
    fn apply_record(
        &mut self,
        kernel: &mut State,
        envelope: &Envelope,
        log_index: u64,
        key: &str,
        command: &Command,
    ) -> Applied {
        self.active = true;
        let mut applied = if allowed_in_exchange(command) {
            let inner = Envelope {
                now_ms: envelope.now_ms,
                seed: envelope.seed,
                actor: envelope.actor.clone(),
                command: command.clone(),
            };
            apply(kernel, &inner)
        } else {
            Applied::answer(Err(Rejection::InvalidRequest(
                "this command cannot come through the exchange".to_string(),
            )))
        };
        let rejected = applied
            .result
            .as_ref()
            .err()
            .map(|rejection| rejection.code().to_string());
        let (status, detail) = match &applied.result {
            Ok(_) => (LedgerStatus::Applied, String::new()),
            Err(rejection) => (LedgerStatus::Rejected, rejection.to_string()),
        };
        self.applied.insert(
            key.to_string(),
            LedgerEntry {
                log_index,
                applied_at_ms: kernel.clock_ms,
                status,
                detail: detail.clone(),
            },
        );
        let data = serde_json::json!({
            "log_index": log_index,
            "applied_at_ms": kernel.clock_ms,
            "code": rejected,
            "detail": detail,
        });
        let effect = self.push(key.to_string(), status.into(), data.to_string());
        applied.effects.push(effect);
        applied.result = Ok(Outcome::ExchangeApplied {
            duplicate: false,
            rejected,
        });
        applied
    }
}

/// The replicated state of a node: the kernel state and the exchange ledger beside it,
/// borrowed together. `Replica::apply` is the one entry point the replication layer calls
/// for each committed command, and `Replica::begin_term` before the first command of each
/// leader term; nothing else changes either.
pub struct Replica<'a> {
    pub state: &'a mut State,
    pub ledger: &'a mut ExchangeLedger,
}

impl Replica<'_> {
    /// Applies one committed envelope, the entry at `log_index`: exchange commands to the
    /// ledger (and a record's command to the kernel state), the rest by `apply`; then the
    /// result of every auction the command closed goes to the outbox. Deterministic, as
    /// `apply` is.
    pub fn apply(&mut self, envelope: &Envelope, log_index: u64) -> Applied {
        let (state, ledger) = (&mut *self.state, &mut *self.ledger);
        let mut applied = match &envelope.command {
            Command::Exchange { key, .. } if ledger.applied.contains_key(key) => {
                Applied::answer(Ok(Outcome::ExchangeApplied {
                    duplicate: true,
                    rejected: None,
                }))
            }
            Command::Exchange { key, command } => {
                ledger.apply_record(state, envelope, log_index, key, command)
            }
            Command::ExchangePrune { retention_ms } => {
                let before_ms = envelope
                    .now_ms
                    .max(state.clock_ms)
                    .saturating_sub(*retention_ms);
                let keys = ledger.prune_applied_before(before_ms);
                Applied::answer(Ok(Outcome::ExchangePruned { keys }))
            }
            Command::ExchangeExported { through } => {
                ledger.outbox.retain(|seq, _| seq > through);
                Applied::answer(Ok(Outcome::ExchangeExported { through: *through }))
            }
            _ => apply(state, envelope),
        };
        let closes = ledger.note_closes(state, &applied.events);
        applied.effects.extend(closes);
        applied
    }

    /// The takeover rule (`takeover::begin_term`) before the first command of a leader's
    /// term; the auctions it closes have their results put in the outbox.
    pub fn begin_term(
        &mut self,
        term: u64,
        leader_node_id: u64,
        now_ms: u64,
        seed: u64,
    ) -> Option<Applied> {
        let mut applied = takeover::begin_term(self.state, term, leader_node_id, now_ms, seed)?;
        let closes = self.ledger.note_closes(self.state, &applied.events);
        applied.effects.extend(closes);
        Some(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuctionSpec, Command, Envelope, Outcome, State};

    fn envelope(now_ms: u64, command: Command) -> Envelope {
        Envelope {
            now_ms,
            seed: 1,
            actor: "exchange".to_string(),
            command,
        }
    }

    fn register(key: &str, bidder_id: &str) -> Command {
        // The stored form of a SHA-256 secret: 32 hex digits of salt, 64 of hash.
        let salt = "0123456789abcdef0123456789abcdef".to_string();
        Command::Exchange {
            key: key.to_string(),
            command: Box::new(Command::RegisterBidder {
                bidder_id: bidder_id.to_string(),
                name: bidder_id.to_string(),
                secret_hash: "ab".repeat(32),
                secret_salt: salt,
            }),
        }
    }

    fn run(
        kernel: &mut State,
        ledger: &mut ExchangeLedger,
        now_ms: u64,
        command: Command,
    ) -> Outcome {
        let applied = Replica {
            state: kernel,
            ledger,
        }
        .apply(&envelope(now_ms, command), now_ms);
        applied.result.expect("an outcome")
    }

    #[test]
    fn a_key_applies_once_until_it_is_pruned_and_only_control_commands_pass() {
        let (mut kernel, mut ledger) = (State::default(), ExchangeLedger::default());
        let applied = |duplicate, rejected: Option<&str>| Outcome::ExchangeApplied {
            duplicate,
            rejected: rejected.map(str::to_string),
        };
        assert_eq!(
            run(&mut kernel, &mut ledger, 1_000, register("k1", "ada")),
            applied(false, None)
        );
        assert_eq!(
            run(&mut kernel, &mut ledger, 2_000, register("k1", "ada")),
            applied(true, None)
        );
        assert_eq!(
            run(&mut kernel, &mut ledger, 5_000, register("k2", "bo")),
            applied(false, None)
        );
        assert_eq!(
            ledger.outbox.len(),
            2,
            "one result per key, none for the duplicate"
        );
        assert_eq!(
            run(
                &mut kernel,
                &mut ledger,
                5_500,
                Command::ExchangePrune {
                    retention_ms: 2_000
                }
            ),
            Outcome::ExchangePruned { keys: 1 }
        );
        assert!(!ledger.applied.contains_key("k1") && ledger.applied.contains_key("k2"));
        // Forgotten, the same record applies again: the kernel refuses the second bidder.
        assert_eq!(
            run(&mut kernel, &mut ledger, 6_000, register("k1", "ada")),
            applied(false, Some("bidder_exists"))
        );
        let bid = Command::Exchange {
            key: "k3".to_string(),
            command: Box::new(Command::ExchangePrune { retention_ms: 0 }),
        };
        assert_eq!(
            run(&mut kernel, &mut ledger, 7_000, bid),
            applied(false, Some("invalid_request"))
        );
        assert_eq!(ledger.applied.len(), 3);
        assert_eq!(
            run(
                &mut kernel,
                &mut ledger,
                8_000,
                Command::ExchangeExported { through: 1 }
            ),
            Outcome::ExchangeExported { through: 1 }
        );
        assert_eq!(
            ledger.outbox.keys().copied().collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    #[test]
    fn a_spool_record_cannot_reuse_an_archived_auction_id() {
        let (mut kernel, mut ledger) = (State::default(), ExchangeLedger::default());
        let create = |key: &str, title: &str| Command::Exchange {
            key: key.to_string(),
            command: Box::new(Command::CreateAuction {
                spec: AuctionSpec {
                    title: title.to_string(),
                    ..AuctionSpec::example("lot-9")
                },
            }),
        };
        let applied = |rejected: Option<&str>| Outcome::ExchangeApplied {
            duplicate: false,
            rejected: rejected.map(str::to_string),
        };
        assert_eq!(
            run(&mut kernel, &mut ledger, 1_000, create("k1", "first")),
            applied(None)
        );
        let terminate = Command::Terminate {
            auction_id: "lot-9".to_string(),
            reason: "withdrawn".to_string(),
        };
        run(&mut kernel, &mut ledger, 2_000, terminate);
        let archive = Command::Archive {
            closed_linger_ms: 0,
        };
        assert_eq!(
            run(&mut kernel, &mut ledger, 3_000, archive),
            Outcome::Archived { auctions: 1 }
        );
        // A new record (new key) with the archived id: refused, nothing created.
        assert_eq!(
            run(&mut kernel, &mut ledger, 4_000, create("k2", "second")),
            applied(Some("auction_exists"))
        );
        assert!(kernel.auctions.is_empty());
        // The same record once its key was forgotten: refused too.
        run(
            &mut kernel,
            &mut ledger,
            5_000,
            Command::ExchangePrune { retention_ms: 0 },
        );
        assert_eq!(
            run(&mut kernel, &mut ledger, 6_000, create("k1", "first")),
            applied(Some("auction_exists"))
        );
        assert!(kernel.auctions.is_empty());
    }

    #[test]
    fn statuses_are_their_names_in_json_and_in_bincode() {
        let ledger = [LedgerStatus::Applied, LedgerStatus::Rejected];
        let outbox = [
            OutboxStatus::Applied,
            OutboxStatus::Rejected,
            OutboxStatus::Closed,
        ];
        let names = ledger
            .iter()
            .map(|status| {
                (
                    bincode::serialize(status),
                    serde_json::to_string(status),
                    status.as_str(),
                )
            })
            .chain(outbox.iter().map(|status| {
                (
                    bincode::serialize(status),
                    serde_json::to_string(status),
                    status.as_str(),
                )
            }));
        let expected = ["applied", "rejected", "applied", "rejected", "closed"];
        for ((bytes, json, name), expected) in names.zip(expected) {
            assert_eq!(name, expected);
            assert_eq!(bytes.unwrap(), bincode::serialize(expected).unwrap());
            assert_eq!(json.unwrap(), format!("\"{expected}\""));
        }
        let entry = LedgerEntry {
            log_index: 3,
            applied_at_ms: 4,
            status: LedgerStatus::Rejected,
            detail: "no".to_string(),
        };
        let bytes = bincode::serialize(&entry).unwrap();
        assert_eq!(bincode::deserialize::<LedgerEntry>(&bytes).unwrap(), entry);
        assert!(serde_json::from_str::<OutboxStatus>("\"new\"").is_err());
    }
}

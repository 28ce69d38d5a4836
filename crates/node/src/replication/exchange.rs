//! The exchange ledger: what the state machine keeps so that every intranet record is
//! applied once and every result goes out once (DESIGN.md decision 6; the Exchange actor
//! in `actors::exchange` reads and writes the spool files).
//!
//! - `applied`: every key of a `Command::Exchange` applied, with what its command came to.
//!   A record proposed again (a retry, a new leader re-reading a file it did not finish)
//!   finds its key and changes nothing.
//! - `outbox`: the records waiting for the outbound spool, by sequence number: the result
//!   of each exchange record (status `applied` or `rejected`), and each auction's result
//!   with every bid once it closes (status `closed`, key `result/<auction id>`). The
//!   leader's Exchange actor writes them to a file, then proposes
//!   `Command::ExchangeExported`, which takes them out.
//!
//! It changes only as entries are applied, so every replica holds the same ledger; it
//! travels in snapshots beside the kernel state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use gavel_kernel::{Applied, Command, Envelope, Event, EventKind, Outcome, State};

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
    /// `applied`, or `rejected` with the kernel's code in `detail`.
    pub status: String,
    pub detail: String,
}

/// One record for the management side: `{key, status, data}` with `data` as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRecord {
    pub key: String,
    pub status: String,
    pub data: String,
}

/// Whether an exchange record may carry this command: the control data of the intranet.
pub fn allowed_in_exchange(command: &Command) -> bool {
    matches!(
        command,
        Command::RegisterBidder { .. }
            | Command::Qualify { .. }
            | Command::CreateAuction { .. }
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
        old.truncate(gavel_kernel::command::MAX_PRUNED_PER_COMMAND);
        for (_, key) in &old {
            self.applied.remove(key);
        }
        old.len() as u64
    }

    /// When the oldest key kept was applied.
    pub fn oldest_applied_ms(&self) -> Option<u64> {
        self.applied.values().map(|entry| entry.applied_at_ms).min()
    }

    /// Once the spool is in use, puts the result of every auction that `events` closed in
    /// the outbox. Called for every change the kernel applies, the takeover rule's too.
    pub fn note_closes(&mut self, kernel: &State, events: &[Event]) {
        if !self.active {
            return;
        }
        for event in events {
            if event.kind == EventKind::Closed {
                if let Some(auction) = kernel.auctions.get(&event.auction_id) {
                    let result = crate::model::views::ResultView::new(auction);
                    let data = serde_json::to_value(&result).unwrap_or_default();
                    self.push(format!("result/{}", event.auction_id), "closed", data);
                }
            }
        }
    }

    fn push(&mut self, key: String, status: &str, data: serde_json::Value) {
        while self.outbox.len() >= MAX_OUTBOX {
            self.outbox.pop_first();
            self.dropped += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outbox.insert(
            seq,
            OutboundRecord {
                key,
                status: status.to_string(),
                data: data.to_string(),
            },
        );
    }
}

/// Applies one envelope with the ledger: exchange commands here, the rest by `apply`
/// (the kernel); then a closed auction's result goes to the outbox.
pub fn apply_with_ledger<E>(
    kernel: &mut State,
    ledger: &mut ExchangeLedger,
    envelope: &Envelope,
    log_index: u64,
    apply: impl Fn(&mut State, &Envelope) -> Result<Applied, E>,
) -> Result<Applied, E> {
    let unchanged = |outcome: Outcome| Applied {
        result: Ok(outcome),
        events: Vec::new(),
        archived: Vec::new(),
        prune_closed_before_ms: None,
    };
    let applied = match &envelope.command {
        Command::Exchange { key, .. } if ledger.applied.contains_key(key) => {
            unchanged(Outcome::ExchangeApplied {
                duplicate: true,
                rejected: None,
            })
        }
        Command::Exchange { key, command } => {
            ledger.active = true;
            let mut applied = if allowed_in_exchange(command) {
                let inner = Envelope {
                    now_ms: envelope.now_ms,
                    seed: envelope.seed,
                    actor: envelope.actor.clone(),
                    command: (**command).clone(),
                };
                apply(kernel, &inner)?
            } else {
                Applied {
                    result: Err(gavel_kernel::Rejection::InvalidRequest(
                        "this command cannot come through the exchange".to_string(),
                    )),
                    ..unchanged(Outcome::OperatorActionRecorded)
                }
            };
            let rejected = applied
                .result
                .as_ref()
                .err()
                .map(|rejection| rejection.code().to_string());
            let detail = match &applied.result {
                Ok(_) => String::new(),
                Err(rejection) => rejection.to_string(),
            };
            let status = if rejected.is_some() {
                "rejected"
            } else {
                "applied"
            };
            ledger.applied.insert(
                key.clone(),
                LedgerEntry {
                    log_index,
                    applied_at_ms: kernel.clock_ms,
                    status: status.to_string(),
                    detail: detail.clone(),
                },
            );
            ledger.push(
                key.clone(),
                status,
                serde_json::json!({
                    "log_index": log_index,
                    "applied_at_ms": kernel.clock_ms,
                    "code": rejected,
                    "detail": detail,
                }),
            );
            applied.result = Ok(Outcome::ExchangeApplied {
                duplicate: false,
                rejected,
            });
            applied
        }
        Command::ExchangePrune { retention_ms } => {
            let before_ms = envelope
                .now_ms
                .max(kernel.clock_ms)
                .saturating_sub(*retention_ms);
            let keys = ledger.prune_applied_before(before_ms);
            unchanged(Outcome::ExchangePruned { keys })
        }
        Command::ExchangeExported { through } => {
            ledger.outbox.retain(|seq, _| seq > through);
            unchanged(Outcome::ExchangeExported { through: *through })
        }
        _ => apply(kernel, envelope)?,
    };
    ledger.note_closes(kernel, &applied.events);
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(now_ms: u64, command: Command) -> Envelope {
        Envelope {
            now_ms,
            seed: 1,
            actor: "exchange".to_string(),
            command,
        }
    }

    fn register(key: &str, bidder_id: &str) -> Command {
        let salt = crate::model::credentials::new_salt();
        Command::Exchange {
            key: key.to_string(),
            command: Box::new(Command::RegisterBidder {
                bidder_id: bidder_id.to_string(),
                name: bidder_id.to_string(),
                secret_hash: crate::model::credentials::secret_hash(&salt, "a-long-secret"),
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
        let applied = apply_with_ledger(
            kernel,
            ledger,
            &envelope(now_ms, command),
            now_ms,
            |kernel, envelope| Ok::<_, ()>(gavel_kernel::apply(kernel, envelope)),
        )
        .expect("applied");
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
                spec: gavel_kernel::AuctionSpec {
                    id: "lot-9".to_string(),
                    title: title.to_string(),
                    parcel_json: "{}".to_string(),
                    start_price: 1000,
                    increment: 100,
                    increment_rule: gavel_kernel::IncrementRule::Multiple,
                    reserve_price: None,
                    price_cap: None,
                    cap_confirm_ms: 60_000,
                    failover_grace_ms: 60_000,
                    listing_opens_at_ms: 10_000,
                    listing_closes_at_ms: 100_000,
                    countdown_ms: 60_000,
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
}

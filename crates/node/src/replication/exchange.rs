//! The exchange ledger lives in the kernel (`gavel_kernel::ledger`), where every change
//! to the replicated state is made; it is named here for the node's readers (the Exchange
//! actor in `actors::exchange` reads and writes the spool files).

pub use gavel_kernel::ledger::{
    allowed_in_exchange, ExchangeLedger, LedgerEntry, LedgerStatus, OutboundRecord, OutboxStatus,
    MAX_OUTBOUND_PER_FILE, MAX_OUTBOX,
};

#[cfg(test)]
mod tests {
    use super::*;
    use gavel_kernel::{Command, Envelope, Outcome, State};

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
        let applied = gavel_kernel::Replica {
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

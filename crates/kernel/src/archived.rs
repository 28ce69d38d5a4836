//! What the replicated state remembers of the auctions it archived (`Command::Archive`
//! takes closed auctions out of the state; the shell writes them to each node's on-disk
//! archive). The records themselves leave the state; three facts about them stay:
//!
//! - every id ever archived, pruned ones included, so `CreateAuction` refuses an id that
//!   once named another sale, whichever path the command came by (control API, spool);
//! - a SHA-256 chain over the archived auctions in the order they were archived, so the
//!   state's digest (`State::digest`, which migrations and checkpoints compare) covers the
//!   results that left the state: two replicas or two clusters with the same digest
//!   archived the very same records;
//! - the newest `Command::PruneArchive` cutoff, so a node that fills its archive late
//!   (after installing a snapshot) does not store records every other node dropped.
//!
//! The id set grows by one short id (at most `types::MAX_ID_LEN` bytes) per sale ever
//! held, and is never pruned: an id must not name two sales. A trading centre that holds
//! ten thousand sales a year adds well under a megabyte a year to each replica; the sales
//! themselves, with their bids, take far more in the archive.

use imbl::OrdSet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::auction::Auction;

/// The archive's trace in the replicated state (see the module's documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveLedger {
    /// Every auction id ever archived, pruned or not. A persistent set: a snapshot's copy
    /// of the state shares it.
    pub ids: OrdSet<String>,
    /// How many auctions were archived, in all.
    pub archived_total: u64,
    /// Hex SHA-256 chain over the archived auctions in archive order: each link is
    /// SHA-256(previous link ‖ SHA-256(the auction's canonical JSON)); empty before the
    /// first.
    pub chain: String,
    /// The newest `Command::PruneArchive` cutoff applied: archived auctions that closed
    /// before it have left, or are leaving, every node's archive. 0 when none was.
    pub pruned_before_ms: u64,
}

impl ArchiveLedger {
    /// Notes `auction` as archived, after every one archived before it.
    pub fn note_archived(&mut self, auction: &Auction) {
        let record = serde_json::to_vec(auction).unwrap_or_default();
        let mut link = Sha256::new();
        link.update(self.chain.as_bytes());
        link.update(Sha256::digest(&record));
        self.chain = hex::encode(link.finalize());
        self.archived_total += 1;
        self.ids.insert(auction.spec.id.clone());
    }

    /// Notes a `Command::PruneArchive` with this cutoff; cutoffs never move back.
    pub fn note_pruned_before(&mut self, closed_before_ms: u64) {
        self.pruned_before_ms = self.pruned_before_ms.max(closed_before_ms);
    }

    /// Whether `auction_id` was ever archived.
    pub fn was_archived(&self, auction_id: &str) -> bool {
        self.ids.contains(auction_id)
    }

    /// Whether an archived auction that closed at `closed_at_ms` is still kept (not due
    /// for pruning at the newest cutoff).
    pub fn keeps(&self, closed_at_ms: Option<u64>) -> bool {
        closed_at_ms.unwrap_or(0) >= self.pruned_before_ms
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::{apply, AuctionSpec, Command, Envelope, Outcome, Rejection};
    use crate::{Phase, State};

    pub(crate) fn spec(id: &str, title: &str) -> AuctionSpec {
        AuctionSpec {
            title: title.to_string(),
            ..AuctionSpec::example(id)
        }
    }

    fn run(state: &mut State, now_ms: u64, command: Command) -> Result<Outcome, Rejection> {
        let envelope = Envelope {
            now_ms,
            seed: 1,
            actor: "operator".to_string(),
            command,
        };
        apply(state, &envelope).result
    }

    /// `lot-1` created, terminated at 2 000 ms and archived at 3 000 ms.
    fn archived_lot() -> State {
        let mut state = State::default();
        let create = Command::CreateAuction {
            spec: spec("lot-1", "The first sale"),
        };
        assert!(run(&mut state, 1_000, create).is_ok());
        let terminate = Command::Terminate {
            auction_id: "lot-1".to_string(),
            reason: "withdrawn".to_string(),
        };
        assert!(run(&mut state, 2_000, terminate).is_ok());
        let archive = Command::Archive {
            closed_linger_ms: 0,
        };
        assert_eq!(
            run(&mut state, 3_000, archive),
            Ok(Outcome::Archived { auctions: 1 })
        );
        state
    }

    #[test]
    fn an_archived_id_is_never_created_again_even_after_pruning() {
        let mut state = archived_lot();
        assert!(state.auctions.is_empty());
        assert!(state.archived.was_archived("lot-1"));
        for title in ["The first sale", "Another parcel"] {
            let again = Command::CreateAuction {
                spec: spec("lot-1", title),
            };
            assert_eq!(run(&mut state, 4_000, again), Err(Rejection::AuctionExists));
        }
        // Pruned from every archive, the id still names the first sale.
        let prune = Command::PruneArchive { retention_ms: 0 };
        assert!(run(&mut state, 5_000, prune).is_ok());
        assert_eq!(state.archived.pruned_before_ms, 5_000);
        let again = Command::CreateAuction {
            spec: spec("lot-1", "Another parcel"),
        };
        assert_eq!(run(&mut state, 6_000, again), Err(Rejection::AuctionExists));
        assert!(state.auctions.is_empty());
    }

    #[test]
    fn the_ledger_chains_archived_records_into_the_digest() {
        let state = archived_lot();
        assert_eq!(state.archived.archived_total, 1);
        assert_eq!(state.archived.chain.len(), 64);
        // The same log gives the same chain; a different archived record another one.
        assert_eq!(archived_lot().archived.chain, state.archived.chain);
        assert_eq!(archived_lot().digest(), state.digest());
        let mut other = archived_lot();
        let mut changed = other.clone();
        changed.archived = Default::default();
        let mut auction = crate::Auction::new(spec("lot-1", "The first sale"));
        auction.enter(Phase::Terminated);
        changed.archived.note_archived(&auction);
        assert_ne!(changed.archived.chain, state.archived.chain);
        assert_ne!(changed.digest(), state.digest());
        other.archived.note_pruned_before(1);
        assert_ne!(other.digest(), state.digest());
    }
}

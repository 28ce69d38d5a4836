//! The commands that change the state, the envelope the leader stamps them in, and what
//! a successful command answers.

use serde::{Deserialize, Serialize};

use super::operator::OperatorAction;
use super::sale::SaleRules;
use super::types::{AuctionSpec, BidderNumber, Money};

/// One replicated log entry's payload. The leader fills `now_ms` and `seed` when it
/// proposes; `actor` names who asked (an operator's name, a bidder id, or `system`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub now_ms: u64,
    pub seed: u64,
    pub actor: String,
    pub command: Command,
}

/// Every state change of Gavel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Registers a bidder. The secret arrives only hashed: an Argon2id PHC string in
    /// `secret_hash` with `secret_salt` empty, or (records from before Argon2id) a salted
    /// SHA-256 (`kernel::bidders`).
    RegisterBidder {
        bidder_id: String,
        name: String,
        secret_salt: String,
        secret_hash: String,
    },
    /// A session opened before sessions had a per-bidder cap. No node proposes it any
    /// more; log entries written then still decode (the binary encoding names a variant
    /// by its place) and apply as they did, without the cap.
    OpenSessionUncapped {
        token_hash: String,
        bidder_id: String,
        expires_at_ms: u64,
    },
    /// Ends a session on every node.
    CloseSession {
        token_hash: String,
    },
    CreateAuction {
        spec: AuctionSpec,
    },
    Qualify {
        auction_id: String,
        bidder_id: String,
    },
    PlaceBid {
        auction_id: String,
        token_hash: String,
        amount: Money,
        request_id: String,
    },
    /// In `capped`: a bidder holding a valid bid joins the lottery.
    Confirm {
        auction_id: String,
        token_hash: String,
    },
    Suspend {
        auction_id: String,
        reason: String,
    },
    Resume {
        auction_id: String,
        reason: String,
    },
    Terminate {
        auction_id: String,
        reason: String,
    },
    ChangeIncrement {
        auction_id: String,
        increment: Money,
        reason: String,
    },
    /// Proposed by an auction's deadline timer: applies the time transitions that are due.
    Advance {
        auction_id: String,
    },
    /// Proposed by a new leader as soon as it is elected, so its term has a stamped entry
    /// at once. Changes nothing itself: the takeover is recorded, and the failover grace
    /// rule applied, before the first command of every term (`takeover::begin_term`).
    Takeover {
        leader_node_id: u64,
    },
    /// Proposed by the janitor: drops expired sessions and idempotency records older than
    /// `request_retention_ms`.
    Purge {
        request_retention_ms: u64,
    },
    /// Records an operator action that changes no kernel state (a manual switchover) in
    /// the operator audit trail, so every control action is on record with its operator.
    /// `action` is the name of an `OperatorAction` (`switchover`, `node add`, …); any other
    /// is refused (and recorded as refused).
    RecordOperatorAction {
        action: String,
        target: String,
        reason: String,
    },
    /// Proposed by the leader's janitor: closed auctions that closed at least
    /// `closed_linger_ms` before the command's time leave the replicated state (at most
    /// `MAX_ARCHIVED_PER_COMMAND` of them, oldest close first). The state machine shell
    /// writes what left to the node's on-disk archive.
    Archive {
        closed_linger_ms: u64,
    },
    /// Proposed by the leader's janitor when `janitor.archive_retention_ms` is set:
    /// archived auctions that closed more than `retention_ms` before the command's time
    /// leave every node's on-disk archive (at most `MAX_PRUNED_PER_COMMAND` of them, oldest
    /// archived first). The kernel state does not change; the state machine shell prunes.
    PruneArchive {
        retention_ms: u64,
    },
    /// Asked by an operator's migration to compare replicas: the state does not change,
    /// and every node notes the digest of its state right after applying it, under
    /// `label` (an id), so digests taken at exactly the same place in the log compare.
    Checkpoint {
        label: String,
    },
    /// A control record from the intranet's inbound spool (the Exchange actor): `command`
    /// is applied once per `key`, whatever the number of times the record is proposed;
    /// the kernel keeps the keys (`ledger`).
    Exchange {
        key: String,
        command: Box<Command>,
    },
    /// The leader's Exchange actor wrote the outbound records up to `through` (their
    /// sequence number) to the outbound spool: they leave every node's outbox.
    ExchangeExported {
        through: u64,
    },
    /// Proposed by the leader's Exchange actor: exchange keys applied more than
    /// `retention_ms` before the command's time are forgotten (at most
    /// `MAX_PRUNED_PER_COMMAND`, oldest first), so the ledger stays bounded.
    ExchangePrune {
        retention_ms: u64,
    },
    /// Opens a session whose token is known only by its SHA-256 hash. The proposer has
    /// checked the bidder's secret; the kernel checks that the bidder exists. A bidder
    /// keeps at most `max_sessions_per_bidder` sessions (the proposing node's
    /// `sessions.max_sessions_per_bidder`, 1 to `MAX_SESSIONS_PER_BIDDER_LIMIT`): this
    /// one ends the bidder's oldest when they hold that many (`kernel::sessions`).
    OpenSession {
        token_hash: String,
        bidder_id: String,
        expires_at_ms: u64,
        max_sessions_per_bidder: u32,
    },
    /// In `capped`: a bidder holding a valid bid joins the lottery with a nonce of their
    /// own, mixed into the draw (`kernel::lottery`). `Confirm` is the same with no nonce.
    ConfirmWithNonce {
        auction_id: String,
        token_hash: String,
        nonce: String,
    },
    /// Proposed by the node that signed a bidder in against an older record (a salted
    /// SHA-256): the record becomes `new_secret_hash`, an Argon2id PHC string of the same
    /// secret. Applied only while the bidder's stored hash still is `old_secret_hash`, the
    /// one the proposer verified the secret against, so a race cannot replace a newer
    /// record (`kernel::bidders`).
    UpgradeSecretHash {
        bidder_id: String,
        old_secret_hash: String,
        new_secret_hash: String,
    },
    /// Creates an auction under the version 1.1 rules (`kernel::sale`); `CreateAuction`
    /// is the same with every rule at its default. Sent only when a rule is set, so a
    /// log of base-rule auctions reads as before.
    CreateAuctionWithRules {
        spec: AuctionSpec,
        #[serde(with = "super::sale::json_text")]
        rules: Box<SaleRules>,
    },
    /// Records a bidder's deposit for an auction from a bank receipt, once per
    /// `reference` (`kernel::deposits`).
    RecordDeposit {
        auction_id: String,
        bidder_id: String,
        amount: Money,
        reference: String,
    },
    /// The winner confirms a sale within its confirmation window (`kernel::acceptance`).
    AcceptSale {
        auction_id: String,
        token_hash: String,
    },
    /// An operator declares the winner of a lapsed sale in default: the winner's deposit
    /// is forfeited.
    DefaultWinner {
        auction_id: String,
        reason: String,
    },
    /// A bidder sets or raises their hidden proxy maximum (`kernel::proxy`); the proxy
    /// may bid for them at once. Idempotent by `request_id`.
    SetProxy {
        auction_id: String,
        token_hash: String,
        max_amount: Money,
        request_id: String,
    },
    /// A bidder withdraws their proxy maximum, while they do not lead.
    WithdrawProxy {
        auction_id: String,
        token_hash: String,
    },
    /// `cap_mode = sealed_bid`, in `capped`: a bidder holding a valid bid submits their one
    /// sealed quote (`kernel::sealed`).
    SubmitSealedQuote {
        auction_id: String,
        token_hash: String,
        amount: Money,
        request_id: String,
    },
    /// `cap_mode = secondary`, in `secondary_bidding`: a bid on the second quantity
    /// (`kernel::secondary`).
    PlaceSecondaryBid {
        auction_id: String,
        token_hash: String,
        secondary_amount: u64,
        request_id: String,
    },
    /// Registers a public key of a bidder for signed bids (`kernel::signed_bids`):
    /// `algorithm` is `ed25519` or `sm2`, `public_key` standard base64. The same key again
    /// changes nothing.
    RegisterBidderKey {
        bidder_id: String,
        algorithm: String,
        public_key: String,
    },
    /// `PlaceBid` with the bidder's signature (standard base64) over the bid's canonical
    /// text (`kernel::signatures::bid_text`): checked against the bidder's keys and kept
    /// with the bid.
    PlaceSignedBid {
        auction_id: String,
        token_hash: String,
        amount: Money,
        request_id: String,
        signature: String,
    },
    /// `SubmitSealedQuote` with the bidder's signature (standard base64) of the quote
    /// (`signatures::Statement::Sealed`): checked and kept with the quote.
    SubmitSignedSealedQuote {
        auction_id: String,
        token_hash: String,
        amount: Money,
        request_id: String,
        signature: String,
    },
    /// `PlaceSecondaryBid` with the bidder's signature of the secondary amount
    /// (`signatures::Statement::Secondary`): checked and kept with the bid.
    PlaceSignedSecondaryBid {
        auction_id: String,
        token_hash: String,
        secondary_amount: u64,
        request_id: String,
        signature: String,
    },
    /// `SetProxy` with the bidder's signature of the maximum
    /// (`signatures::Statement::ProxyMax`): checked, kept with the maximum and with every
    /// bid the proxy places under it.
    SetSignedProxy {
        auction_id: String,
        token_hash: String,
        max_amount: Money,
        request_id: String,
        signature: String,
    },
}

/// Most auctions one `Command::Archive` moves out, so one log entry stays small.
pub const MAX_ARCHIVED_PER_COMMAND: usize = 1000;

/// Most archived auctions one `Command::PruneArchive` removes, so applying it stays short.
pub const MAX_PRUNED_PER_COMMAND: usize = 1000;

impl Command {
    /// The auction a command is about, if any.
    pub fn auction_id(&self) -> Option<&str> {
        match self {
            Command::Qualify { auction_id, .. }
            | Command::PlaceBid { auction_id, .. }
            | Command::PlaceSignedBid { auction_id, .. }
            | Command::Confirm { auction_id, .. }
            | Command::ConfirmWithNonce { auction_id, .. }
            | Command::Suspend { auction_id, .. }
            | Command::Resume { auction_id, .. }
            | Command::Terminate { auction_id, .. }
            | Command::ChangeIncrement { auction_id, .. }
            | Command::Advance { auction_id }
            | Command::RecordDeposit { auction_id, .. }
            | Command::AcceptSale { auction_id, .. }
            | Command::DefaultWinner { auction_id, .. }
            | Command::SetProxy { auction_id, .. }
            | Command::WithdrawProxy { auction_id, .. }
            | Command::SubmitSealedQuote { auction_id, .. }
            | Command::PlaceSecondaryBid { auction_id, .. }
            | Command::SubmitSignedSealedQuote { auction_id, .. }
            | Command::PlaceSignedSecondaryBid { auction_id, .. }
            | Command::SetSignedProxy { auction_id, .. } => Some(auction_id),
            Command::CreateAuction { spec } | Command::CreateAuctionWithRules { spec, .. } => {
                Some(&spec.id)
            }
            _ => None,
        }
    }

    /// What the operator audit trail records of a control command: `(action, target,
    /// reason)`. Bidder and system commands (sessions, bids, timers, purges) answer `None`.
    pub fn operator_action(&self) -> Option<(OperatorAction, String, String)> {
        let (action, target, reason) = match self {
            Command::RegisterBidder { bidder_id, .. } => (
                OperatorAction::RegisterBidder,
                bidder_id.clone(),
                String::new(),
            ),
            Command::CreateAuction { spec } | Command::CreateAuctionWithRules { spec, .. } => (
                OperatorAction::CreateAuction,
                spec.id.clone(),
                String::new(),
            ),
            Command::Qualify {
                auction_id,
                bidder_id,
            } => (
                OperatorAction::Qualify,
                format!("{auction_id}/{bidder_id}"),
                String::new(),
            ),
            Command::Suspend { auction_id, reason } => {
                (OperatorAction::Suspend, auction_id.clone(), reason.clone())
            }
            Command::Resume { auction_id, reason } => {
                (OperatorAction::Resume, auction_id.clone(), reason.clone())
            }
            Command::Terminate { auction_id, reason } => (
                OperatorAction::Terminate,
                auction_id.clone(),
                reason.clone(),
            ),
            Command::ChangeIncrement {
                auction_id,
                increment,
                reason,
            } => (
                OperatorAction::ChangeIncrement,
                auction_id.clone(),
                format!("increment {increment}: {reason}"),
            ),
            Command::RecordDeposit {
                auction_id,
                bidder_id,
                amount,
                reference,
            } => (
                OperatorAction::RecordDeposit,
                format!("{auction_id}/{bidder_id}"),
                format!("{amount} ({reference})"),
            ),
            Command::DefaultWinner { auction_id, reason } => (
                OperatorAction::DefaultWinner,
                auction_id.clone(),
                reason.clone(),
            ),
            Command::RegisterBidderKey {
                bidder_id,
                algorithm,
                public_key,
            } => (
                OperatorAction::RegisterBidderKey,
                bidder_id.clone(),
                format!("{algorithm} {public_key}"),
            ),
            Command::RecordOperatorAction {
                action,
                target,
                reason,
            } => {
                let action = OperatorAction::from(action.clone());
                return Some((action, target.clone(), reason.clone()));
            }
            _ => return None,
        };
        Some((action, target, reason))
    }
}

/// What a committed bid answers; kept with its request_id so a retry gets it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub bid_id: String,
    pub seq: u64,
    pub auction_id: String,
    pub amount: Money,
    pub accepted_at_ms: u64,
}

/// What a command that was not refused answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    BidderRegistered,
    SessionOpened {
        bidder_id: String,
        expires_at_ms: u64,
    },
    SessionClosed,
    /// `created` is false when the same spec was sent again (idempotent create).
    AuctionCreated {
        created: bool,
    },
    /// `created` is false when the bidder was already qualified.
    Qualified {
        bidder_number: BidderNumber,
        created: bool,
    },
    /// `replayed` is true when the request_id was seen before with the same body.
    BidAccepted {
        receipt: Receipt,
        replayed: bool,
    },
    Confirmed,
    /// Suspend, resume, terminate, increment change, advance.
    AuctionUpdated,
    TakeoverRecorded {
        extended: Vec<String>,
    },
    Purged {
        sessions: u64,
        requests: u64,
    },
    OperatorActionRecorded,
    /// How many closed auctions left the replicated state for the archive.
    Archived {
        auctions: u64,
    },
    /// Archived auctions that closed before `closed_before_ms` leave the archive.
    ArchivePruned {
        closed_before_ms: u64,
    },
    /// Every node noted its state's digest under the checkpoint's label.
    CheckpointTaken,
    /// An exchange record: `duplicate` when its key was applied before (nothing changed),
    /// else what its command came to (`rejected` holds the kernel's code).
    ExchangeApplied {
        duplicate: bool,
        rejected: Option<String>,
    },
    /// Outbound records up to this sequence number left the outbox.
    ExchangeExported {
        through: u64,
    },
    /// How many exchange keys were forgotten.
    ExchangePruned {
        keys: u64,
    },
    /// A bidder's secret record is now Argon2id.
    SecretHashUpgraded,
    /// A deposit: the bidder's deposits for the auction now add up to `deposited`, of
    /// `required`. `created` is false when the reference was recorded before.
    DepositRecorded {
        bidder_id: String,
        deposited: Money,
        required: Money,
        created: bool,
    },
    /// The winner confirmed the sale (`replayed`: they had already).
    SaleAccepted {
        replayed: bool,
    },
    /// The winner of a lapsed sale was declared in default.
    WinnerDefaulted,
    /// A proxy maximum was set or raised; `receipt` is the bid its proxy placed for the
    /// bidder in the same step, if any (`replayed`: the request_id was seen before).
    ProxySet {
        max_amount: Money,
        receipt: Option<Receipt>,
        replayed: bool,
    },
    /// The caller's proxy maximum was withdrawn (`withdrawn` is false when there was none).
    ProxyWithdrawn {
        withdrawn: bool,
    },
    /// A sealed quote was accepted at `accepted_at_ms` (`replayed`: the same request
    /// again, answered with the quote it placed).
    SealedQuoteAccepted {
        accepted_at_ms: u64,
        replayed: bool,
    },
    /// A secondary bid was accepted (`replayed`: the same request again).
    SecondaryBidAccepted {
        receipt: SecondaryReceipt,
        replayed: bool,
    },
    /// A bidder's public key for signed bids; `created` is false when the bidder held
    /// it already.
    BidderKeyRegistered {
        bidder_id: String,
        algorithm: String,
        public_key: String,
        key_id: String,
        created: bool,
    },
}

/// What an accepted secondary bid answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondaryReceipt {
    pub auction_id: String,
    /// The bid's place among the auction's secondary bids, from 1.
    pub seq: u64,
    pub secondary_amount: u64,
    pub accepted_at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first two commands as the log wrote them before sessions had a cap.
    #[derive(Serialize)]
    enum CommandBeforeTheCap {
        #[allow(dead_code)]
        RegisterBidder,
        OpenSession {
            token_hash: String,
            bidder_id: String,
            expires_at_ms: u64,
        },
    }

    #[test]
    fn a_sign_in_logged_before_the_cap_decodes_as_an_uncapped_one() {
        let old = CommandBeforeTheCap::OpenSession {
            token_hash: "ab".repeat(32),
            bidder_id: "alice".to_string(),
            expires_at_ms: 42,
        };
        let bytes = bincode::serialize(&old).expect("encode");
        let read: Command = bincode::deserialize(&bytes).expect("decode");
        assert_eq!(
            read,
            Command::OpenSessionUncapped {
                token_hash: "ab".repeat(32),
                bidder_id: "alice".to_string(),
                expires_at_ms: 42,
            }
        );
    }
}

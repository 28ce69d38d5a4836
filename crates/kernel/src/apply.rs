//! The one entry point that changes the state: `apply` dispatches a command to its rule,
//! counts refusals per auction, and asserts the named invariants of the auction it
//! touched.

use super::acceptance;
use super::bidders;
use super::bidding::ConfirmRequest;
use super::bidding::{self, AfterCapRequest, BidRequest};
use super::cap;
use super::command::{Command, Envelope, Outcome};
use super::deposits::{self, DepositRequest};
use super::event::{Event, EventKind};
use super::exclusive;
use super::housekeeping;
use super::invariants;
use super::lottery::{self, splitmix64};
use super::operator::OperatorAction;
use super::phases::{self, advance, advanced, not_open};
use super::proxy::{self, ProxyRequest};
use super::rejection::Rejection;
use super::sale::SaleRules;
use super::signed_bids;
use super::signin;
use super::state::{Auction, OperatorRecord, Phase, State, MAX_OPERATOR_RECORDS};
use super::types::{validate_id, validate_text, AuctionSpec, BidderNumber, Money};

/// What applying one command produced: its answer, the events to publish, and the
/// effects the shell has to carry out. A refused command may still carry events, for
/// example when the bid that came too late closed the auction on its way in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub result: Result<Outcome, Rejection>,
    pub events: Vec<Event>,
    /// What the shell has to do beside the state, in order.
    pub effects: Vec<Effect>,
}

/// What the shell does because of a command: the kernel state holds the decision, the
/// shell's stores carry it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The auctions a `Command::Archive` took out of the state, for the shell to store.
    Archive(Vec<Auction>),
    /// Set by a `Command::PruneArchive`: archived auctions that closed before this time
    /// leave the shell's archive.
    PruneArchive { closed_before_ms: u64 },
    /// A record was put in the exchange outbox with this sequence number, for the
    /// leader's Exchange actor to write out (`ledger`).
    Outbox { seq: u64 },
}

impl Applied {
    /// An answer without events or effects.
    pub fn answer(result: Result<Outcome, Rejection>) -> Self {
        Applied {
            result,
            events: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// The auctions an `Effect::Archive` hands on, if any.
    pub fn archived(&self) -> impl Iterator<Item = &Auction> {
        self.effects.iter().flat_map(|effect| match effect {
            Effect::Archive(auctions) => auctions.as_slice(),
            _ => &[],
        })
    }
}

/// Applies one committed command to the kernel state. Deterministic: the same state and
/// envelope give the same result on every replica. The replication layer calls it through
/// `ledger::Replica::apply`, which keeps the exchange ledger beside the state.
pub fn apply(state: &mut State, envelope: &Envelope) -> Applied {
    // Command times never go backwards, whatever a new leader's clock says.
    let now_ms = envelope.now_ms.max(state.clock_ms);
    state.clock_ms = now_ms;
    let mut events = Vec::new();
    if let Command::Archive { closed_linger_ms } = &envelope.command {
        // Touches no single auction: nothing to count or check below.
        let archived = housekeeping::archive(state, now_ms, *closed_linger_ms);
        let result = Ok(Outcome::Archived {
            auctions: archived.len() as u64,
        });
        return Applied {
            result,
            events,
            effects: vec![Effect::Archive(archived)],
        };
    }
    if let Command::PruneArchive { retention_ms } = &envelope.command {
        let closed_before_ms = now_ms.saturating_sub(*retention_ms);
        state.archived.note_pruned_before(closed_before_ms);
        return Applied {
            result: Ok(Outcome::ArchivePruned { closed_before_ms }),
            events,
            effects: vec![Effect::PruneArchive { closed_before_ms }],
        };
    }
    let result = dispatch(state, now_ms, envelope, &mut events);
    record_operator_action(state, now_ms, envelope, &result);

    if let Some(auction) = envelope
        .command
        .auction_id()
        .and_then(|id| state.auctions.get_mut(id))
    {
        if let Err(rejection) = &result {
            *auction
                .rejections
                .entry(rejection.code().to_string())
                .or_insert(0) += 1;
        }
        if let Err(violation) = check_latest(auction) {
            panic!("kernel invariant broken: {violation}");
        }
    }
    // The exclusive groups cross auctions: the ones this command sold exclude their
    // winners from the others of their group.
    for id in exclusive::apply(state, now_ms, envelope.seed, &mut events) {
        if let Some(Err(violation)) = state.auctions.get(&id).map(check_latest) {
            panic!("kernel invariant broken: {violation}");
        }
    }
    Applied {
        result,
        events,
        effects: Vec::new(),
    }
}

/// Appends a control command, accepted or refused, to the operator audit trail.
fn record_operator_action(
    state: &mut State,
    now_ms: u64,
    envelope: &Envelope,
    result: &Result<Outcome, Rejection>,
) {
    let Some((action, target, reason)) = envelope.command.operator_action() else {
        return;
    };
    if state.operator_audit.len() >= MAX_OPERATOR_RECORDS {
        state.operator_audit.pop_front();
    }
    state.operator_audit.push_back(OperatorRecord {
        at_ms: now_ms,
        operator: envelope.actor.clone(),
        action,
        target,
        reason,
        outcome: match result {
            Ok(_) => "ok".to_string(),
            Err(rejection) => rejection.code().to_string(),
        },
    });
}

/// The invariants, checked on the newest bid only, so a command costs the same however
/// many bids an auction holds; `invariants::check_auction` checks the whole record.
fn check_latest(auction: &Auction) -> Result<(), invariants::Violation> {
    use invariants::Violation;
    let id = || auction.spec.id.clone();
    let count = auction.bids.len();
    if let Some(bid) = auction.bids.last() {
        let previous = count.checked_sub(2).map(|index| &auction.bids[index]);
        // Prices increase over the bids that count: a void bid is skipped.
        let previous_counted = auction
            .bids
            .iter()
            .rev()
            .skip(1)
            .find(|earlier| !auction.is_void(earlier.seq));
        if !auction.is_void(bid.seq)
            && previous_counted.is_some_and(|previous| previous.amount >= bid.amount)
        {
            return Err(Violation::PricesNotIncreasing(id()));
        }
        if auction
            .sale
            .proxy_bids
            .get(&bid.seq)
            .is_some_and(|maximum| {
                bid.amount > *maximum || auction.spec.price_cap.is_some_and(|cap| bid.amount > cap)
            })
        {
            return Err(Violation::ProxyAboveMaximum(id()));
        }
        if auction.sale.excluded.contains(&bid.bidder_id) && !auction.is_void(bid.seq) {
            return Err(Violation::VoidBidCounted(id()));
        }
        if auction
            .closed_at_ms
            .is_some_and(|closed_at| bid.accepted_at_ms > closed_at)
        {
            return Err(Violation::BidAfterClose(id()));
        }
        if auction.qualified.get(&bid.bidder_id) != Some(&bid.bidder_number) {
            return Err(Violation::UnqualifiedBid(id()));
        }
        let expected_prev = previous.map_or(super::chain::GENESIS_HASH, |previous| {
            previous.hash.as_str()
        });
        if bid.prev_hash != expected_prev || bid.seq != count as u64 {
            return Err(Violation::ChainBroken(id(), "the newest link".to_string()));
        }
    }
    invariants::single_winner_holds_highest_bid(auction)?;
    invariants::lottery_redraws(auction)?;
    invariants::winner_and_leader_counted(auction)?;
    signed_bid_kept(auction)?;
    invariants::deadline_matches_phase(auction)
}

/// The newest bid and secondary bid, and every sealed quote, of an auction that requires
/// signed bids have their signatures kept (`invariants::signed_bids_kept` checks every
/// record).
fn signed_bid_kept(auction: &Auction) -> Result<(), invariants::Violation> {
    let sale = &auction.sale;
    if !sale.rules.require_signed_bids {
        return Ok(());
    }
    let missing = |what: String| {
        Err(invariants::Violation::SignatureMismatch(
            auction.spec.id.clone(),
            format!("{what} has no signature kept"),
        ))
    };
    if let Some(bid) = auction.bids.last() {
        if !sale.bid_signatures.contains_key(&bid.seq) {
            return missing(format!("bid record {}", bid.seq));
        }
    }
    if let Some(bid) = sale
        .secondary_bids
        .last()
        .filter(|bid| bid.signature.is_none())
    {
        return missing(format!("secondary bid {}", bid.seq));
    }
    match sale
        .sealed_quotes
        .iter()
        .find(|(_, quote)| quote.signature.is_none())
    {
        Some((bidder_id, _)) => missing(format!("the sealed quote of {bidder_id}")),
        None => Ok(()),
    }
}

/// Sends a command to the rules of its group (bidders, sessions, auction administration,
/// bidding, housekeeping). The match is exhaustive: a new command is routed here.
fn dispatch(
    state: &mut State,
    now_ms: u64,
    envelope: &Envelope,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    let command = &envelope.command;
    match command {
        Command::RegisterBidder { .. }
        | Command::UpgradeSecretHash { .. }
        | Command::RegisterBidderKey { .. } => dispatch_bidders(state, now_ms, command),
        Command::OpenSession { .. }
        | Command::OpenSessionUncapped { .. }
        | Command::CloseSession { .. } => dispatch_sessions(state, now_ms, command),
        Command::CreateAuction { .. }
        | Command::CreateAuctionWithRules { .. }
        | Command::RecordDeposit { .. }
        | Command::DefaultWinner { .. }
        | Command::Qualify { .. }
        | Command::Suspend { .. }
        | Command::Resume { .. }
        | Command::Terminate { .. }
        | Command::ChangeIncrement { .. } => {
            dispatch_auction_admin(state, now_ms, envelope, events)
        }
        Command::PlaceBid { .. }
        | Command::PlaceSignedBid { .. }
        | Command::SetProxy { .. }
        | Command::SetSignedProxy { .. }
        | Command::WithdrawProxy { .. } => {
            dispatch_proxy_bidding(state, now_ms, envelope.seed, command, events)
        }
        Command::Confirm { .. }
        | Command::ConfirmWithNonce { .. }
        | Command::AcceptSale { .. }
        | Command::Advance { .. } => {
            dispatch_bidding(state, now_ms, envelope.seed, command, events)
        }
        Command::SubmitSealedQuote { .. }
        | Command::PlaceSecondaryBid { .. }
        | Command::SubmitSignedSealedQuote { .. }
        | Command::PlaceSignedSecondaryBid { .. } => {
            dispatch_after_cap(state, now_ms, envelope.seed, command, events)
        }
        Command::Takeover { .. }
        | Command::Purge { .. }
        | Command::RecordOperatorAction { .. }
        | Command::Checkpoint { .. }
        | Command::Archive { .. }
        | Command::PruneArchive { .. }
        | Command::Exchange { .. }
        | Command::ExchangeExported { .. }
        | Command::ExchangePrune { .. } => dispatch_housekeeping(state, now_ms, command),
    }
}

/// A command `dispatch` routed to a group that does not handle it.
fn misrouted(command: &Command) -> ! {
    unreachable!("kernel: {command:?} dispatched to the wrong group")
}

fn dispatch_bidders(
    state: &mut State,
    now_ms: u64,
    command: &Command,
) -> Result<Outcome, Rejection> {
    match command {
        Command::RegisterBidder {
            bidder_id,
            name,
            secret_salt,
            secret_hash,
        } => bidders::register(state, now_ms, bidder_id, name, secret_salt, secret_hash),
        Command::UpgradeSecretHash {
            bidder_id,
            old_secret_hash,
            new_secret_hash,
        } => bidders::upgrade_secret_hash(state, bidder_id, old_secret_hash, new_secret_hash),
        Command::RegisterBidderKey {
            bidder_id,
            algorithm,
            public_key,
        } => signed_bids::register_key(state, now_ms, bidder_id, algorithm, public_key),
        other => misrouted(other),
    }
}

fn dispatch_sessions(
    state: &mut State,
    now_ms: u64,
    command: &Command,
) -> Result<Outcome, Rejection> {
    match command {
        Command::OpenSession {
            token_hash,
            bidder_id,
            expires_at_ms,
            max_sessions_per_bidder,
        } => signin::open(
            state,
            now_ms,
            token_hash,
            bidder_id,
            *expires_at_ms,
            Some(*max_sessions_per_bidder),
        ),
        Command::OpenSessionUncapped {
            token_hash,
            bidder_id,
            expires_at_ms,
        } => signin::open(state, now_ms, token_hash, bidder_id, *expires_at_ms, None),
        Command::CloseSession { token_hash } => signin::close(state, now_ms, token_hash),
        other => misrouted(other),
    }
}

/// The operators' commands on auctions: create, qualify, suspend, resume, terminate,
/// change the increment.
fn dispatch_auction_admin(
    state: &mut State,
    now_ms: u64,
    envelope: &Envelope,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    let seed = envelope.seed;
    let actor = envelope.actor.as_str();
    match &envelope.command {
        Command::CreateAuction { spec } => {
            let rules = SaleRules::default();
            create_auction(state, now_ms, seed, actor, spec, &rules, events)
        }
        Command::CreateAuctionWithRules { spec, rules } => {
            create_auction(state, now_ms, seed, actor, spec, rules.as_ref(), events)
        }
        Command::RecordDeposit {
            auction_id,
            bidder_id,
            amount,
            reference,
        } => {
            let request = DepositRequest {
                bidder_id,
                amount: *amount,
                reference,
            };
            deposits::validate(&request)?;
            if !state.bidders.contains_key(bidder_id) {
                return Err(Rejection::BidderNotFound);
            }
            let auction = advanced(&mut state.auctions, auction_id, now_ms, seed, events)?;
            deposits::record(auction, now_ms, actor, &request)
        }
        Command::DefaultWinner { auction_id, reason } => {
            validate_text("reason", reason, false)?;
            let auction = advanced(&mut state.auctions, auction_id, now_ms, seed, events)?;
            acceptance::default_winner(auction, now_ms, actor, reason, events)
        }
        Command::Qualify {
            auction_id,
            bidder_id,
        } => qualify(state, now_ms, seed, actor, auction_id, bidder_id, events),
        Command::Suspend { auction_id, reason } => {
            validate_text("reason", reason, false)?;
            let auction = advanced(&mut state.auctions, auction_id, now_ms, seed, events)?;
            phases::suspend(auction, now_ms, actor, reason, events)
                .map(|()| Outcome::AuctionUpdated)
        }
        Command::Resume { auction_id, reason } => {
            validate_text("reason", reason, false)?;
            let auction = advanced(&mut state.auctions, auction_id, now_ms, seed, events)?;
            phases::resume(auction, now_ms, seed, actor, reason, events)
                .map(|()| Outcome::AuctionUpdated)
        }
        Command::Terminate { auction_id, reason } => {
            validate_text("reason", reason, false)?;
            let auction = advanced(&mut state.auctions, auction_id, now_ms, seed, events)?;
            phases::terminate(auction, now_ms, actor, reason, events)
                .map(|()| Outcome::AuctionUpdated)
        }
        Command::ChangeIncrement {
            auction_id,
            increment,
            reason,
        } => change_increment(
            state, now_ms, seed, actor, auction_id, *increment, reason, events,
        ),
        other => misrouted(other),
    }
}

/// The bidders' commands (bids, confirmations) and the timer's `Advance`.
fn dispatch_bidding(
    state: &mut State,
    now_ms: u64,
    seed: u64,
    command: &Command,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    let confirm = |auction_id, token_hash, nonce| ConfirmRequest {
        auction_id,
        token_hash,
        nonce,
    };
    match command {
        Command::Confirm {
            auction_id,
            token_hash,
        } => {
            let request = confirm(auction_id, token_hash, "");
            bidding::confirm(state, now_ms, seed, request, events)
        }
        Command::ConfirmWithNonce {
            auction_id,
            token_hash,
            nonce,
        } => {
            let request = confirm(auction_id, token_hash, nonce);
            bidding::confirm(state, now_ms, seed, request, events)
        }
        Command::Advance { auction_id } => {
            advanced(&mut state.auctions, auction_id, now_ms, seed, events)?;
            Ok(Outcome::AuctionUpdated)
        }
        Command::AcceptSale {
            auction_id,
            token_hash,
        } => {
            let bidder_id = state
                .session_bidder(token_hash, now_ms)
                .ok_or(Rejection::Unauthenticated)?
                .to_string();
            let auction = advanced(&mut state.auctions, auction_id, now_ms, seed, events)?;
            acceptance::accept(auction, now_ms, &bidder_id, events)
        }
        other => misrouted(other),
    }
}

/// The request of a bid command, signed or not.
fn bid_request(command: &Command) -> Option<BidRequest<'_>> {
    match command {
        Command::PlaceBid {
            auction_id,
            token_hash,
            amount,
            request_id,
        } => Some(BidRequest {
            auction_id,
            token_hash,
            amount: *amount,
            request_id,
            signature: None,
        }),
        Command::PlaceSignedBid {
            auction_id,
            token_hash,
            amount,
            request_id,
            signature,
        } => Some(BidRequest {
            auction_id,
            token_hash,
            amount: *amount,
            request_id,
            signature: Some(signature),
        }),
        _ => None,
    }
}

/// The commands that place bids: a bid, after which the proxies answer (docs/RULES.md,
/// "Proxy bidding"), and setting or withdrawing a proxy maximum.
fn dispatch_proxy_bidding(
    state: &mut State,
    now_ms: u64,
    seed: u64,
    command: &Command,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    match command {
        Command::PlaceBid { .. } | Command::PlaceSignedBid { .. } => {
            let request = bid_request(command).unwrap_or_else(|| misrouted(command));
            let auction_id = request.auction_id;
            let outcome = bidding::place_bid(state, now_ms, seed, request, events)?;
            if let (
                Outcome::BidAccepted {
                    replayed: false, ..
                },
                Some(auction),
            ) = (&outcome, state.auctions.get_mut(auction_id))
            {
                proxy::resolve(auction, now_ms, seed, events);
            }
            Ok(outcome)
        }
        Command::SetProxy { .. } | Command::SetSignedProxy { .. } => {
            let request = proxy_request(command).unwrap_or_else(|| misrouted(command));
            proxy::set(state, now_ms, seed, request, events)
        }
        Command::WithdrawProxy {
            auction_id,
            token_hash,
        } => proxy::withdraw(state, now_ms, seed, auction_id, token_hash, events),
        other => misrouted(other),
    }
}

/// The bidders' commands past the cap: sealed quotes and secondary bids, signed or not.
fn dispatch_after_cap(
    state: &mut State,
    now_ms: u64,
    seed: u64,
    command: &Command,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    let (request, sealed) = after_cap_request(command).unwrap_or_else(|| misrouted(command));
    match sealed {
        true => bidding::submit_sealed_quote(state, now_ms, seed, request, events),
        false => bidding::place_secondary_bid(state, now_ms, seed, request, events),
    }
}

/// The request of a proxy maximum, signed or not.
fn proxy_request(command: &Command) -> Option<ProxyRequest<'_>> {
    let (auction_id, token_hash, max_amount, request_id, signature) = match command {
        Command::SetProxy {
            auction_id,
            token_hash,
            max_amount,
            request_id,
        } => (auction_id, token_hash, max_amount, request_id, None),
        Command::SetSignedProxy {
            auction_id,
            token_hash,
            max_amount,
            request_id,
            signature,
        } => (
            auction_id,
            token_hash,
            max_amount,
            request_id,
            Some(signature),
        ),
        _ => return None,
    };
    Some(ProxyRequest {
        auction_id,
        token_hash,
        max_amount: *max_amount,
        request_id,
        signature: signature.map(String::as_str),
    })
}

/// The request of a command past the cap, and whether it is a sealed quote (else a
/// secondary bid).
fn after_cap_request(command: &Command) -> Option<(AfterCapRequest<'_>, bool)> {
    let (auction_id, token_hash, amount, request_id, signature, sealed) = match command {
        Command::SubmitSealedQuote {
            auction_id,
            token_hash,
            amount,
            request_id,
        } => (auction_id, token_hash, amount, request_id, None, true),
        Command::SubmitSignedSealedQuote {
            auction_id,
            token_hash,
            amount,
            request_id,
            signature,
        } => (
            auction_id,
            token_hash,
            amount,
            request_id,
            Some(signature),
            true,
        ),
        Command::PlaceSecondaryBid {
            auction_id,
            token_hash,
            secondary_amount,
            request_id,
        } => (
            auction_id,
            token_hash,
            secondary_amount,
            request_id,
            None,
            false,
        ),
        Command::PlaceSignedSecondaryBid {
            auction_id,
            token_hash,
            secondary_amount,
            request_id,
            signature,
        } => (
            auction_id,
            token_hash,
            secondary_amount,
            request_id,
            Some(signature),
            false,
        ),
        _ => return None,
    };
    let request = AfterCapRequest {
        auction_id,
        token_hash,
        amount: *amount,
        request_id,
        signature: signature.map(String::as_str),
    };
    Some((request, sealed))
}

/// The system's commands: the takeover's stamp, purges, records, checkpoints, and the
/// commands `apply` and `ledger::Replica::apply` take before dispatching.
fn dispatch_housekeeping(
    state: &mut State,
    now_ms: u64,
    command: &Command,
) -> Result<Outcome, Rejection> {
    match command {
        // The takeover itself was applied before the first command of this leader's term
        // (`takeover::begin_term`); the command only puts a stamped entry in the log as
        // soon as the leader is elected.
        Command::Takeover { .. } => Ok(Outcome::TakeoverRecorded {
            extended: Vec::new(),
        }),
        Command::Purge {
            request_retention_ms,
        } => Ok(housekeeping::purge(state, now_ms, *request_retention_ms)),
        Command::RecordOperatorAction {
            action,
            target,
            reason,
        } => {
            if OperatorAction::named(action).is_none() {
                return Err(Rejection::InvalidRequest(format!(
                    "action must be one of the audit trail's actions, not {action:?}"
                )));
            }
            validate_text("target", target, true)?;
            validate_text("reason", reason, false)?;
            Ok(Outcome::OperatorActionRecorded)
        }
        Command::Checkpoint { label } => {
            validate_id("label", label)?;
            Ok(Outcome::CheckpointTaken)
        }
        // `apply` handles it before dispatching, to hand the archived auctions on.
        Command::Archive { .. } | Command::PruneArchive { .. } => Err(Rejection::Conflict(
            "archive commands are applied by apply itself".to_string(),
        )),
        // `ledger::Replica::apply` keeps the exchange ledger and hands the inner command
        // here.
        Command::Exchange { .. }
        | Command::ExchangeExported { .. }
        | Command::ExchangePrune { .. } => Err(Rejection::Conflict(
            "exchange commands are applied by the state machine".to_string(),
        )),
        other => misrouted(other),
    }
}

fn create_auction(
    state: &mut State,
    now_ms: u64,
    seed: u64,
    actor: &str,
    spec: &AuctionSpec,
    rules: &SaleRules,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    spec.validate()?;
    rules.validate_for(spec)?;
    // An archived (or archived and pruned) id named another sale: it is never reused.
    if state.archived.was_archived(&spec.id) {
        return Err(Rejection::AuctionExists);
    }
    if let Some(existing) = state.auctions.get(&spec.id) {
        return if &existing.spec == spec && &existing.sale.rules == rules {
            Ok(Outcome::AuctionCreated { created: false })
        } else {
            Err(Rejection::AuctionExists)
        };
    }
    if spec.listing_closes_at_ms <= now_ms {
        return Err(Rejection::InvalidRequest(
            "listing_closes_at_ms is in the past".to_string(),
        ));
    }
    let mut auction = Auction::with_rules(spec.clone(), rules.clone());
    auction.lottery_secret.pool = lottery::initial_pool(&spec.id, seed);
    auction.record(now_ms, actor, "created", String::new());
    events.push(Event {
        auction_id: spec.id.clone(),
        kind: EventKind::Created,
    });
    advance(&mut auction, now_ms, seed, events);
    state.auctions.insert(spec.id.clone(), auction);
    Ok(Outcome::AuctionCreated { created: true })
}

/// Lowest and count of bidder numbers handed out in one auction.
const FIRST_BIDDER_NUMBER: u64 = 1000;
const BIDDER_NUMBER_SPACE: u64 = 9000;

fn qualify(
    state: &mut State,
    now_ms: u64,
    seed: u64,
    actor: &str,
    auction_id: &str,
    bidder_id: &str,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    if !state.bidders.contains_key(bidder_id) {
        return Err(Rejection::BidderNotFound);
    }
    let auction = advanced(&mut state.auctions, auction_id, now_ms, seed, events)?;
    if auction.sale.excluded.contains(bidder_id) {
        return Err(Rejection::ExcludedByGroup);
    }
    if let Some(bidder_number) = auction.bidder_number_of(bidder_id) {
        return Ok(Outcome::Qualified {
            bidder_number,
            created: false,
        });
    }
    if auction.phase.is_closed() {
        return Err(not_open(auction));
    }
    deposits::check_qualification(auction, bidder_id)?;
    if auction.qualified.len() as u64 >= BIDDER_NUMBER_SPACE {
        return Err(Rejection::Conflict(
            "no bidder numbers left in this auction".to_string(),
        ));
    }
    // A number drawn from the leader's seed, not derived from the identity; probe upwards
    // from the drawn number to the first free one.
    let taken: std::collections::BTreeSet<BidderNumber> =
        auction.qualified.values().copied().collect();
    let start = splitmix64(seed) % BIDDER_NUMBER_SPACE;
    let bidder_number = (0..BIDDER_NUMBER_SPACE)
        .map(|offset| {
            (FIRST_BIDDER_NUMBER + (start + offset) % BIDDER_NUMBER_SPACE) as BidderNumber
        })
        .find(|number| !taken.contains(number))
        .ok_or_else(|| Rejection::Conflict("no bidder numbers left in this auction".to_string()))?;
    auction
        .qualified
        .insert(bidder_id.to_string(), bidder_number);
    lottery::mix(&mut auction.lottery_secret.pool, seed);
    auction.record(
        now_ms,
        actor,
        "qualified",
        format!("bidder number {bidder_number}"),
    );
    Ok(Outcome::Qualified {
        bidder_number,
        created: true,
    })
}

#[allow(clippy::too_many_arguments)]
fn change_increment(
    state: &mut State,
    now_ms: u64,
    seed: u64,
    actor: &str,
    auction_id: &str,
    increment: Money,
    reason: &str,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    validate_text("reason", reason, false)?;
    if increment == 0 {
        return Err(Rejection::InvalidRequest(
            "increment must be positive".to_string(),
        ));
    }
    let auction = advanced(&mut state.auctions, auction_id, now_ms, seed, events)?;
    if auction.phase.is_closed() {
        return Err(not_open(auction));
    }
    let previous = auction.increment;
    auction.increment = increment;
    auction.record(
        now_ms,
        actor,
        "increment_changed",
        format!("{previous} -> {increment}: {reason}"),
    );
    events.push(Event {
        auction_id: auction_id.to_string(),
        kind: EventKind::Increment,
    });
    // A larger increment can leave the high bid less than one increment below the cap.
    if matches!(auction.phase, Phase::Listing | Phase::TimedBidding) && cap::cap_reached(auction) {
        cap::reach_cap(auction, now_ms, seed, events);
    }
    Ok(Outcome::AuctionUpdated)
}

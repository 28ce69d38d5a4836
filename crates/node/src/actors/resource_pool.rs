//! The ResourcePool actor keeps one Auction actor per live auction on this node.
//!
//! Like the resource pool of the trading kernels Gavel replaces, it preloads auctions
//! that open soon (within `pool.preload_ms`), starts their actors, routes the events the
//! state machine applied to them, and lets closed auctions go from memory once they have
//! lingered long enough for their subscribers to see the result. It runs on every node:
//! followers publish events from their own applied state; only the leader's actors
//! propose closes.
//!
//! An actor that panicked (its address no longer connected) is counted as crashed and
//! replaced: at once if an event or a subscriber needs it, else by the Janitor's next
//! sweep. Auctions archived out of the state release their actors on that sweep too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use super::auction::{AuctionActor, AuctionChanged, Ping, SetLeader, Stop};
use super::messages::{LeadershipChanged, Propose};
use crate::clock::wall_clock_ms;
use crate::replication::{AppliedEvents, SharedState};

/// How often the pool looks for auctions to preload.
const LOAD_INTERVAL: Duration = Duration::from_secs(1);

pub struct PoolSettings {
    pub preload_ms: u64,
    pub mailbox_capacity: usize,
    pub event_buffer: usize,
}

pub struct ResourcePool {
    state: SharedState,
    supervisor: Recipient<Propose>,
    settings: PoolSettings,
    actors: HashMap<String, Addr<AuctionActor>>,
    is_leader: bool,
    events: Option<tokio::sync::broadcast::Receiver<Arc<AppliedEvents>>>,
    /// Actors found dead (a panic) since the last sweep.
    crashed_since_sweep: u64,
}

impl ResourcePool {
    pub fn new(
        state: SharedState,
        supervisor: Recipient<Propose>,
        settings: PoolSettings,
        events: tokio::sync::broadcast::Receiver<Arc<AppliedEvents>>,
    ) -> Self {
        ResourcePool {
            state,
            supervisor,
            settings,
            actors: HashMap::new(),
            is_leader: false,
            events: Some(events),
            crashed_since_sweep: 0,
        }
    }

    /// The auction's actor, started if it is not running.
    fn ensure_actor(&mut self, auction_id: &str) -> Addr<AuctionActor> {
        match self.actors.get(auction_id) {
            Some(addr) if addr.connected() => return addr.clone(),
            Some(_) => {
                tracing::warn!(%auction_id, "restarting an auction actor that stopped (crashed)");
                self.crashed_since_sweep += 1;
            }
            None => {}
        }
        let addr = AuctionActor::new(
            auction_id.to_string(),
            self.state.clone(),
            self.supervisor.clone(),
            self.is_leader,
            self.settings.event_buffer,
            self.settings.mailbox_capacity,
        )
        .start();
        self.actors.insert(auction_id.to_string(), addr.clone());
        addr
    }

    /// Starts the actors of every open auction and of those opening within the preload
    /// window. Returns how many were (re)started.
    fn load_live(&mut self) -> usize {
        let horizon_ms = wall_clock_ms().saturating_add(self.settings.preload_ms);
        let wanted: Vec<String> = {
            let state = self.state.read();
            state
                .kernel
                .auctions
                .values()
                .filter(|auction| {
                    auction.awaits_time() && auction.spec.listing_opens_at_ms <= horizon_ms
                })
                .map(|auction| auction.spec.id.clone())
                .collect()
        };
        let mut started = 0;
        for auction_id in wanted {
            let running = self
                .actors
                .get(&auction_id)
                .is_some_and(|addr| addr.connected());
            if !running {
                self.ensure_actor(&auction_id);
                started += 1;
            }
        }
        started
    }
}

impl Actor for ResourcePool {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.settings.mailbox_capacity);
        if let Some(events) = self.events.take() {
            ctx.add_stream(BroadcastStream::new(events));
        }
        self.load_live();
        ctx.run_interval(LOAD_INTERVAL, |pool, _ctx| {
            pool.load_live();
        });
    }
}

impl StreamHandler<Result<Arc<AppliedEvents>, BroadcastStreamRecvError>> for ResourcePool {
    fn handle(
        &mut self,
        item: Result<Arc<AppliedEvents>, BroadcastStreamRecvError>,
        _ctx: &mut Self::Context,
    ) {
        match item {
            Ok(applied) => {
                let mut by_auction: HashMap<&str, Vec<gavel_kernel::EventKind>> = HashMap::new();
                for event in &applied.events {
                    by_auction
                        .entry(event.auction_id.as_str())
                        .or_default()
                        .push(event.kind.clone());
                }
                for (auction_id, kinds) in by_auction {
                    self.ensure_actor(auction_id)
                        .do_send(AuctionChanged { kinds });
                }
            }
            Err(BroadcastStreamRecvError::Lagged(missed)) => {
                // The pool fell behind the state machine: every actor re-reads its state.
                tracing::warn!(
                    missed,
                    "resource pool lagged behind applied events; refreshing every auction"
                );
                for addr in self.actors.values() {
                    addr.do_send(AuctionChanged { kinds: Vec::new() });
                }
            }
        }
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {
        tracing::info!("applied event stream ended");
    }
}

impl Handler<LeadershipChanged> for ResourcePool {
    type Result = ();

    fn handle(&mut self, changed: LeadershipChanged, _ctx: &mut Self::Context) {
        self.is_leader = changed.is_leader;
        if changed.is_leader {
            self.load_live();
        }
        for addr in self.actors.values() {
            addr.do_send(SetLeader(changed.is_leader));
        }
    }
}

/// A receiver of one auction's live events; `None` if there is no such auction.
pub struct SubscribeAuction {
    pub auction_id: String,
}

impl Message for SubscribeAuction {
    type Result = Option<Addr<AuctionActor>>;
}

impl Handler<SubscribeAuction> for ResourcePool {
    type Result = Option<Addr<AuctionActor>>;

    fn handle(&mut self, subscribe: SubscribeAuction, _ctx: &mut Self::Context) -> Self::Result {
        if !self
            .state
            .read()
            .kernel
            .auctions
            .contains_key(&subscribe.auction_id)
        {
            return None;
        }
        Some(self.ensure_actor(&subscribe.auction_id))
    }
}

/// What one sweep of the pool did (see the Janitor).
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct PoolSweep {
    pub actors_started: u64,
    pub auctions_released: u64,
    /// Actors found dead since the last sweep (restarted if their auction is live).
    pub actors_crashed: u64,
    /// Actors replaced because their view disagreed with the state machine.
    pub actors_rebuilt: u64,
    pub live_actors: u64,
}

/// The Janitor's sweep: restart actors of live auctions that stopped, release actors of
/// auctions closed more than `closed_linger_ms` ago or archived, replace the `stuck` ones
/// and rebuild the `disagreeing` ones.
pub struct Sweep {
    pub closed_linger_ms: u64,
    pub stuck: Vec<String>,
    pub disagreeing: Vec<String>,
}

impl Message for Sweep {
    type Result = PoolSweep;
}

impl Handler<Sweep> for ResourcePool {
    type Result = MessageResult<Sweep>;

    fn handle(&mut self, sweep: Sweep, _ctx: &mut Self::Context) -> Self::Result {
        let now_ms = wall_clock_ms();
        let mut report = PoolSweep::default();
        for auction_id in &sweep.stuck {
            if let Some(addr) = self.actors.remove(auction_id) {
                tracing::warn!(%auction_id, "replacing a stuck auction actor");
                addr.do_send(Stop);
            }
        }
        for auction_id in &sweep.disagreeing {
            if let Some(addr) = self.actors.remove(auction_id) {
                tracing::warn!(%auction_id, "rebuilding an auction actor whose view disagrees with the state machine");
                addr.do_send(Stop);
                report.actors_rebuilt += 1;
            }
        }
        let crashed = self
            .actors
            .values()
            .filter(|addr| !addr.connected())
            .count();
        if crashed > 0 {
            tracing::warn!(crashed, "auction actors stopped (crashed); restarting them");
        }
        report.actors_crashed = std::mem::take(&mut self.crashed_since_sweep) + crashed as u64;
        let released: Vec<String> = {
            let state = self.state.read();
            self.actors
                .keys()
                .filter(|auction_id| {
                    let closed_at_ms = state
                        .kernel
                        .auctions
                        .get(*auction_id)
                        // A sale waiting for its winner's confirmation keeps its actor
                        // (its timer marks the confirmation lapsed).
                        .map(|auction| {
                            auction
                                .closed_at_ms
                                .filter(|_| !auction.confirmation_pending())
                        });
                    release_due(closed_at_ms, sweep.closed_linger_ms, now_ms)
                })
                .cloned()
                .collect()
        };
        for auction_id in released {
            if let Some(addr) = self.actors.remove(&auction_id) {
                if addr.connected() {
                    addr.do_send(Stop);
                }
                report.auctions_released += 1;
            }
        }
        // Actors of live auctions that stopped (or were just replaced) start again here.
        self.actors.retain(|_, addr| addr.connected());
        report.actors_started = self.load_live() as u64;
        report.live_actors = self.actors.len() as u64;
        MessageResult(report)
    }
}

/// Whether a sweep at `now_ms` lets an auction's actor go: its auction left the live
/// state (`closed_at_ms` is `None`: archived), or closed at least `closed_linger_ms` ago.
fn release_due(closed_at_ms: Option<Option<u64>>, closed_linger_ms: u64, now_ms: u64) -> bool {
    match closed_at_ms {
        None => true,
        Some(closed_at) => {
            closed_at.is_some_and(|closed_at| closed_at.saturating_add(closed_linger_ms) <= now_ms)
        }
    }
}

/// The running actors, for the Janitor's stuck probe.
pub struct ListActors;

impl Message for ListActors {
    type Result = Vec<(String, Recipient<Ping>)>;
}

impl Handler<ListActors> for ResourcePool {
    type Result = MessageResult<ListActors>;

    fn handle(&mut self, _: ListActors, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.actors
                .iter()
                .map(|(id, addr)| (id.clone(), addr.clone().recipient()))
                .collect(),
        )
    }
}

/// How long `CountActors` waits for the actors' answers.
const COUNT_WAIT: Duration = Duration::from_secs(1);

/// The Auction actors running on this node, and how many have their deadline timer
/// armed (on the leader, every open auction with a deadline); an actor that does not
/// answer within a second counts as not armed.
pub struct CountActors;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActorCounts {
    pub auctions_live: u64,
    pub timers_armed: u64,
}

impl Message for CountActors {
    type Result = ActorCounts;
}

impl Handler<CountActors> for ResourcePool {
    type Result = ResponseFuture<ActorCounts>;

    fn handle(&mut self, _: CountActors, _ctx: &mut Self::Context) -> Self::Result {
        let actors: Vec<Addr<AuctionActor>> = self.actors.values().cloned().collect();
        Box::pin(async move {
            let asked = actors
                .iter()
                .map(|actor| actor.send(super::auction::TimerArmed));
            let armed = tokio::time::timeout(COUNT_WAIT, futures::future::join_all(asked))
                .await
                .map_or(0, |answers| {
                    answers
                        .into_iter()
                        .filter(|armed| matches!(armed, Ok(true)))
                        .count()
                });
            ActorCounts {
                auctions_live: actors.len() as u64,
                timers_armed: armed as u64,
            }
        })
    }
}

/// The running actor of one auction, if there is one (not started on demand).
pub struct RunningActor {
    pub auction_id: String,
}

impl Message for RunningActor {
    type Result = Option<Addr<AuctionActor>>;
}

impl Handler<RunningActor> for ResourcePool {
    type Result = Option<Addr<AuctionActor>>;

    fn handle(&mut self, running: RunningActor, _ctx: &mut Self::Context) -> Self::Result {
        self.actors
            .get(&running.auction_id)
            .filter(|addr| addr.connected())
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::release_due;

    #[test]
    fn an_actor_is_released_from_the_sweep_its_linger_runs_out_at() {
        // Closed at 1 000, lingering 500: kept through 1 499, released from 1 500 on.
        let released: Vec<bool> = [1_000, 1_499, 1_500, 1_501]
            .into_iter()
            .map(|now| release_due(Some(Some(1_000)), 500, now))
            .collect();
        assert_eq!(released, [false, false, true, true]);
        // Still open: kept however late; archived: released at once.
        assert!(!release_due(Some(None), 0, u64::MAX));
        assert!(release_due(None, u64::MAX, 0));
    }
}

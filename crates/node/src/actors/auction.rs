//! The Auction actor: one per live auction, started by the ResourcePool on every node,
//! leader or not, and kept for as long as the auction is live: a takeover neither starts
//! nor stops it, it only arms or disarms its timer (`SetLeader`; docs/DESIGN.md, "Hot
//! actors").
//!
//! It owns the auction's deadline timer: when the deadline passes on the leader, the
//! timer proposes `Command::Advance` through the Supervisor, and the kernel decides from
//! the command's time whether the phase really ends. The timer never changes state itself.
//! It also publishes the auction's live events (rendered once, shared by every
//! subscriber) on a bounded broadcast channel that the event streams read.
//!
//! It keeps what it last read of its auction (`SeenState`: phase, deadline, bid count);
//! the Janitor's probe (`Ping`) answers with it, and the Janitor rebuilds an actor whose
//! view stays behind the state machine's. `InjectPanic` (fault injection, only when the
//! node's `[faults]` are enabled) makes the actor panic inside a handler, which ends this
//! actor alone; the Janitor's next sweep restarts it.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::web::Bytes;
use tokio::sync::broadcast;

use super::messages::Propose;
use super::supervision::InjectPanic;
use crate::clock::wall_clock_ms;
use crate::model::views::{AuctionView, LiveBidView, SecondaryBidView};
use crate::replication::SharedState;
use gavel_kernel::{Auction, Command, EventKind, Phase};

/// One server-sent event, rendered once into the bytes every subscriber writes. `id` is
/// the auction's bid count when it was sent (a bid's: its seq): a client resuming from it
/// is sent every later bid.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub id: u64,
    pub name: &'static str,
    /// The whole frame: `id`, `event` and `data` lines and the blank line after them.
    pub frame: Bytes,
}

impl LiveEvent {
    pub fn new(id: u64, name: &'static str, data: &str) -> Self {
        LiveEvent {
            id,
            name,
            frame: sse_frame(id, name, data),
        }
    }
}

/// One server-sent event's frame.
pub fn sse_frame(id: u64, name: &str, data: &str) -> Bytes {
    Bytes::from(format!("id: {id}\nevent: {name}\ndata: {data}\n\n"))
}

/// What an Auction actor last read of its auction; compared by the Janitor with the state
/// machine's own view (`SeenState::of` the applied auction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenState {
    pub phase: Phase,
    pub deadline_ms: Option<u64>,
    pub bid_count: u64,
}

impl SeenState {
    pub fn of(auction: &Auction) -> Self {
        SeenState {
            phase: auction.phase,
            deadline_ms: auction.deadline_ms,
            bid_count: auction.bids.len() as u64,
        }
    }
}

/// The shortest wait before re-proposing a close that did not take effect.
const RETRY_ADVANCE_MS: u64 = 50;

pub struct AuctionActor {
    auction_id: String,
    state: SharedState,
    supervisor: Recipient<Propose>,
    publisher: broadcast::Sender<Arc<LiveEvent>>,
    is_leader: bool,
    timer: Option<SpawnHandle>,
    mailbox_capacity: usize,
    /// What the actor last read of its auction; `None` while the auction is not in the
    /// applied state.
    seen: Option<SeenState>,
}

impl AuctionActor {
    pub fn new(
        auction_id: String,
        state: SharedState,
        supervisor: Recipient<Propose>,
        is_leader: bool,
        event_buffer: usize,
        mailbox_capacity: usize,
    ) -> Self {
        let (publisher, _) = broadcast::channel(event_buffer.max(16));
        AuctionActor {
            auction_id,
            state,
            supervisor,
            publisher,
            is_leader,
            timer: None,
            mailbox_capacity,
            seen: None,
        }
    }

    /// Re-reads what the actor keeps of its auction.
    fn refresh_seen(&mut self) {
        let state = self.state.read();
        self.seen = state
            .kernel
            .auctions
            .get(&self.auction_id)
            .map(SeenState::of);
    }

    /// Re-arms the deadline timer from the applied state.
    fn schedule(&mut self, ctx: &mut Context<Self>, minimum_delay_ms: u64) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        if !self.is_leader {
            return;
        }
        let due_at_ms = {
            let state = self.state.read();
            let Some(auction) = state.kernel.auctions.get(&self.auction_id) else {
                return;
            };
            // Scheduled auctions open at their deadline; open phases end just after it,
            // and so does a winner's confirmation window.
            let Some(due_at_ms) = auction.due_at_ms() else {
                return;
            };
            due_at_ms
        };
        let delay_ms = due_at_ms
            .saturating_sub(wall_clock_ms())
            .max(minimum_delay_ms);
        self.timer = Some(
            ctx.run_later(Duration::from_millis(delay_ms), |actor, ctx| {
                actor.timer = None;
                actor.propose_advance(ctx);
            }),
        );
    }

    fn propose_advance(&mut self, ctx: &mut Context<Self>) {
        let propose = Propose {
            command: Command::Advance {
                auction_id: self.auction_id.clone(),
            },
            actor: "system".to_string(),
        };
        self.supervisor
            .send(propose)
            .into_actor(self)
            .map(|result, actor, ctx| {
                match result {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => tracing::debug!(auction_id = %actor.auction_id, %error, "advance not committed"),
                    Err(error) => tracing::debug!(auction_id = %actor.auction_id, %error, "supervisor unavailable"),
                }
                actor.schedule(ctx, RETRY_ADVANCE_MS);
            })
            .spawn(ctx);
    }

    /// Publishes what the state machine applied: each new bid as one compact `bid` event
    /// (`LiveBidView`); the full `auction` (or `closed`) view only when something besides
    /// bids changed. Each event is rendered once, whatever the number of subscribers.
    fn publish(&self, kinds: &[EventKind]) {
        if self.publisher.receiver_count() == 0 {
            return;
        }
        let now_ms = wall_clock_ms();
        let state = self.state.read();
        let Some(auction) = state.kernel.auctions.get(&self.auction_id) else {
            return;
        };
        let id = auction.bids.len() as u64;
        let send = |id: u64, name: &'static str, data: String| {
            // No receiver is fine; a lagging one catches up from the state itself.
            let _ = self
                .publisher
                .send(Arc::new(LiveEvent::new(id, name, &data)));
        };
        for kind in kinds {
            match kind {
                EventKind::Bid { seq } => {
                    if let Some(bid) = auction.bids.get((*seq as usize).saturating_sub(1)) {
                        send(*seq, "bid", json(&LiveBidView::of(auction, bid, now_ms)));
                    }
                }
                // Carries the price bids' count as its id, as `auction` events do, so a
                // stream resumes after the price bids it had.
                EventKind::SecondaryBid { seq } => {
                    let index = (*seq as usize).saturating_sub(1);
                    if let Some(bid) = auction.sale.secondary_bids.get(index) {
                        send(id, "secondary_bid", json(&SecondaryBidView::of(bid)));
                    }
                }
                _ => {}
            }
        }
        let only_bids = kinds
            .iter()
            .all(|kind| matches!(kind, EventKind::Bid { .. }));
        if only_bids && !kinds.is_empty() {
            return;
        }
        let view = json(&AuctionView::new(auction, now_ms));
        if kinds.contains(&EventKind::Closed) {
            send(id, "closed", view);
        } else {
            send(id, "auction", view);
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}

impl Actor for AuctionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
        self.refresh_seen();
        self.schedule(ctx, 0);
    }
}

/// Events the state machine applied for this auction.
pub struct AuctionChanged {
    pub kinds: Vec<EventKind>,
}

impl Message for AuctionChanged {
    type Result = ();
}

impl Handler<AuctionChanged> for AuctionActor {
    type Result = ();

    fn handle(&mut self, changed: AuctionChanged, ctx: &mut Self::Context) {
        self.refresh_seen();
        self.publish(&changed.kinds);
        self.schedule(ctx, 0);
    }
}

/// Whether this node leads, so whether the timer may propose.
pub struct SetLeader(pub bool);

impl Message for SetLeader {
    type Result = ();
}

impl Handler<SetLeader> for AuctionActor {
    type Result = ();

    fn handle(&mut self, SetLeader(is_leader): SetLeader, ctx: &mut Self::Context) {
        self.is_leader = is_leader;
        self.schedule(ctx, 0);
    }
}

/// A receiver of this auction's live events.
pub struct Subscribe;

impl Message for Subscribe {
    type Result = broadcast::Receiver<Arc<LiveEvent>>;
}

impl Handler<Subscribe> for AuctionActor {
    type Result = MessageResult<Subscribe>;

    fn handle(&mut self, _: Subscribe, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.publisher.subscribe())
    }
}

/// Whether the actor's deadline timer is armed (it leads and its auction has a deadline):
/// what `GET /control/v1/node` counts as armed timers.
pub struct TimerArmed;

impl Message for TimerArmed {
    type Result = bool;
}

impl Handler<TimerArmed> for AuctionActor {
    type Result = bool;

    fn handle(&mut self, _: TimerArmed, _ctx: &mut Self::Context) -> bool {
        self.timer.is_some()
    }
}

/// Answers at once with what the actor last read of its auction: the Janitor's probe for
/// a stuck mailbox and for a view that disagrees with the state machine.
pub struct Ping;

impl Message for Ping {
    type Result = Option<SeenState>;
}

impl Handler<Ping> for AuctionActor {
    type Result = MessageResult<Ping>;

    fn handle(&mut self, _: Ping, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.seen.clone())
    }
}

impl Handler<InjectPanic> for AuctionActor {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _ctx: &mut Self::Context) {
        panic!(
            "fault injected: the Auction actor of {} panics on request",
            self.auction_id
        );
    }
}

/// Stops the actor (the auction closed, or the actor is being replaced).
pub struct Stop;

impl Message for Stop {
    type Result = ();
}

impl Handler<Stop> for AuctionActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

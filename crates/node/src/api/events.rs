//! Server-sent events of one auction, from this node's own applied state.
//!
//! On connect the stream sends every bid after `Last-Event-ID` (a bid's id is its `seq`),
//! every secondary bid (`cap_mode` `secondary`, each time: they are few, and their id is
//! the price bids' count), then the current `auction` view; then the Auction actor's live
//! events, each rendered once into shared bytes (`LiveEvent::frame`) that every stream
//! writes as they are: a live bid is one compact `bid` frame (`LiveBidView`), the full view
//! follows only other changes. A `: keep-alive` comment goes out every 15 s. The kernel
//! never waits for a stream: one too slow for the actor's bounded buffer is sent, in one
//! write, what it missed, read from the state (`LiveStream::caught_up`: the bids and the
//! view, or a `resync` event past `MAX_CATCH_UP_BIDS`), then goes on from the newest event;
//! the ids stay bid seqs, so a reconnection with `Last-Event-ID` still misses nothing. The
//! stream ends after the `closed` event. The history is read from a copy of the auction's
//! persistent bid vector, taken under the state's lock in the time of one view; its frames
//! are rendered once per node and shared by every stream that connects
//! (`history_frames`), so a crowd connecting to a long sale costs one rendering of it.
//!
//! Each stream holds a slot of `stream_slots` while it runs: a client address, or the
//! node, with as many streams open as it may hold is answered 429 `too_many_streams`.
//!
//! `GET /api/v1/events` streams every auction: an `auction` view of each at connect (and
//! again after a reconnect, so nothing is missed), then one `auction` (or `closed`) view
//! of every auction a committed command changed, with the log index as the event id.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{Bytes, BytesMut};
use actix_web::{get, web, HttpRequest, HttpResponse};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use futures::StreamExt;
use imbl::Vector;

use super::history_frames::{bid_frame, HistoryFrames};
use super::limits::RateLimiter;
use super::problem::Problem;
use super::stream_slots::StreamPermit;
use super::AppState;
use crate::actors::auction::{sse_frame, LiveEvent, Subscribe};
use crate::actors::resource_pool::SubscribeAuction;
use crate::actors::wall_clock_ms;
use crate::model::error::ApiError;
use crate::model::requests::StreamQuery;
use crate::model::views::{AuctionView, BidMarks, SecondaryBidView};
use crate::replication::SharedState;
use gavel_kernel::{Auction, BidRecord, Rejection};

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Most missed bids a stream that fell behind is sent in its catch-up write; past this,
/// it is sent a `resync` event with the current view, and the page reads the bids it
/// missed from the bid list.
const MAX_CATCH_UP_BIDS: usize = 256;

/// Most bytes of waiting events one write of a stream gathers (`LiveStream::take_waiting`).
const MAX_WRITE_BYTES: usize = 64 * 1024;

/// The shortest time between two writes of live events on one stream of the public
/// listener: under a burst of bids a stream writes them together, at most 20 times a
/// second, instead of once each (what a node with thousands of watchers spends is one send
/// per stream and write, on the workers that also answer the bids).
const MIN_WRITE_INTERVAL: Duration = Duration::from_millis(50);

/// A listener's shortest time between two writes of one stream, in its app data
/// (`MIN_WRITE_INTERVAL` without).
#[derive(Debug, Clone, Copy)]
pub struct WriteInterval(pub Duration);

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}

/// Live updates of one auction: `auction`, `bid`, `secondary_bid` and `closed` events.
#[utoipa::path(tag = "public", params(("id" = String, Path, description = "auction id"),
    ("Last-Event-ID" = Option<u64>, Header, description = "resume after this bid seq"), StreamQuery),
    responses((status = 200, content_type = "text/event-stream", description = "the event stream"),
    (status = 404, description = "auction_not_found", body = Problem),
    (status = 422, description = "invalid_request: Last-Event-ID or a query parameter is not a number, or history is out of range", body = Problem),
    (status = 429, description = "too_many_streams: this address (limits.max_streams_per_ip) or this node (limits.max_streams) holds as many streams as it may; or rate_limited; with Retry-After (seconds)", body = Problem),
    (status = 503, description = "unavailable", body = Problem)))]
#[get("/api/v1/auctions/{id}/events")]
pub async fn auction_events(
    app: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<StreamQuery>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let auction_id = path.into_inner();
    let last_event_id = match request.headers().get("Last-Event-ID") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::invalid("Last-Event-ID must be a bid sequence number".to_string())
                })?,
        ),
    };
    query.validate()?;
    let starts = |start: &StreamStart| query.start_after(last_event_id, start.bids.len() as u64);
    let permit = stream_slot(&app, &request)?;
    // Subscribe before reading the state, so nothing falls between the two.
    let subscribed = app
        .pool
        .send(SubscribeAuction {
            auction_id: auction_id.clone(),
        })
        .await?;
    let Some(actor) = subscribed else {
        // An archived auction is closed: its bids and the `closed` event, then the end.
        let start = app.read_auction(&auction_id, StreamStart::of)?;
        let after = starts(&start);
        let (initial, _, _) = start.frames_after(&app.history_frames, &auction_id, after);
        return Ok(event_stream(initial, permit));
    };
    let receiver = actor.send(Subscribe).await?;

    let start = {
        let state = app.state.read();
        let auction = state
            .kernel
            .auctions
            .get(&auction_id)
            .ok_or(Rejection::AuctionNotFound)?;
        StreamStart::of(auction)
    };
    let after = starts(&start);
    let (initial, last_sent_seq, closed) =
        start.frames_after(&app.history_frames, &auction_id, after);
    let live = LiveStream {
        receiver,
        keep_alive: tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE),
        last_sent_seq,
        done: closed,
        catch_up: Some((app.state.clone(), auction_id)),
        last_write: None,
        write_interval: request
            .app_data::<WriteInterval>()
            .map_or(MIN_WRITE_INTERVAL, |interval| interval.0),
    };
    Ok(event_stream(initial.chain(live.into_stream()), permit))
}

/// A slot for one more stream from the request's client, or 429 `too_many_streams`.
fn stream_slot(app: &AppState, request: &HttpRequest) -> Result<StreamPermit, ApiError> {
    let peer = request.peer_addr().map(|address| address.ip());
    let client = match request.app_data::<web::Data<RateLimiter>>() {
        Some(limiter) => limiter.client_ip(
            peer,
            request
                .headers()
                .get("x-forwarded-for")
                .and_then(|value| value.to_str().ok()),
        ),
        None => peer,
    };
    app.streams.acquire(client)
}

/// The response of an event stream that holds `permit` for as long as it runs.
fn event_stream(
    frames: impl futures::Stream<Item = Result<Bytes, actix_web::Error>> + 'static,
    permit: StreamPermit,
) -> HttpResponse {
    let frames = frames.map(move |frame| {
        let _held_until_the_stream_ends = &permit;
        frame
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(frames)
}

/// What a stream of one auction starts from, copied out under the state's lock: the
/// bids share the state's persistent vector (the copy is a few pointers, whatever the
/// history), so the lock is held for one view, and the history's frames are taken after
/// it is released, from those the node keeps rendered (`HistoryFrames`).
struct StreamStart {
    bids: Vector<BidRecord>,
    marks: BidMarks,
    /// Every secondary bid (`cap_mode` `secondary`): sent in full at every connect, as
    /// they carry no event id of their own.
    secondary_bids: Vec<SecondaryBidView>,
    view: AuctionView,
    closed: bool,
}

impl StreamStart {
    fn of(auction: &Auction) -> Self {
        StreamStart {
            bids: auction.bids.clone(),
            marks: BidMarks::of(auction),
            secondary_bids: SecondaryBidView::after(auction, 0),
            view: AuctionView::new(auction, wall_clock_ms()),
            closed: auction.phase.is_closed(),
        }
    }

    /// The bids after `last_event_id` (a bid's id is its seq, its place in the vector
    /// plus one) and the current `auction` (or `closed`) event; the bid count, and whether
    /// the auction is closed.
    fn frames_after(
        self,
        history: &HistoryFrames,
        auction_id: &str,
        last_event_id: u64,
    ) -> (
        impl futures::Stream<Item = Result<Bytes, actix_web::Error>>,
        u64,
        bool,
    ) {
        let bid_count = self.bids.len() as u64;
        let name = if self.closed { "closed" } else { "auction" };
        let view = sse_frame(bid_count, name, &json(&self.view));
        let skipped = usize::try_from(last_event_id)
            .unwrap_or(usize::MAX)
            .min(self.bids.len());
        let bids = history.frames_after(auction_id, &self.bids, &self.marks, skipped);
        let secondary = self
            .secondary_bids
            .into_iter()
            .map(move |bid| sse_frame(bid_count, "secondary_bid", &json(&bid)));
        let frames = futures::stream::iter(
            bids.into_iter()
                .chain(secondary)
                .chain(std::iter::once(view))
                .map(Ok),
        );
        (frames, bid_count, self.closed)
    }
}

struct LiveStream {
    receiver: broadcast::Receiver<Arc<LiveEvent>>,
    keep_alive: tokio::time::Interval,
    last_sent_seq: u64,
    done: bool,
    /// Where a stream that fell behind reads what it missed: the node's state and the
    /// auction's id. `None`: such a stream ends instead.
    catch_up: Option<(SharedState, String)>,
    /// When this stream last wrote events: the next write waits until `write_interval`
    /// after it, gathering what came meanwhile.
    last_write: Option<tokio::time::Instant>,
    write_interval: Duration,
}

impl LiveStream {
    fn into_stream(self) -> impl futures::Stream<Item = Result<Bytes, actix_web::Error>> {
        futures::stream::unfold(self, |mut live| async move {
            loop {
                if live.done {
                    return None;
                }
                tokio::select! {
                    received = live.receiver.recv() => match received {
                        Ok(event) => {
                            let mut pending = BytesMut::new();
                            live.take(&event, &mut pending);
                            if pending.is_empty() {
                                continue;
                            }
                            // A busy auction: one write per interval, with every event
                            // of it; a quiet one writes at once.
                            if let Some(last) = live.last_write {
                                tokio::time::sleep_until(last + live.write_interval).await;
                            }
                            live.take_waiting(&mut pending);
                            live.last_write = Some(tokio::time::Instant::now());
                            return Some((Ok(pending.freeze()), live));
                        }
                        // Too slow for the bounded buffer: one write of what it missed,
                        // from the state, then on from the newest event.
                        Err(RecvError::Lagged(_)) => match live.caught_up() {
                            Some(frames) => return Some((Ok(frames), live)),
                            None => return None,
                        },
                        // The auction's actor stopped: end the stream; the client
                        // resumes with Last-Event-ID.
                        Err(RecvError::Closed) => return None,
                    },
                    _ = live.keep_alive.tick() => {
                        return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), live));
                    }
                }
            }
        })
    }

    /// Adds `event` to the pending write, unless it is a bid already sent.
    fn take(&mut self, event: &LiveEvent, pending: &mut BytesMut) {
        if event.name == "bid" {
            if event.id <= self.last_sent_seq {
                return;
            }
            self.last_sent_seq = event.id;
        }
        if event.name == "closed" {
            self.done = true;
        }
        pending.extend_from_slice(&event.frame);
    }

    /// Adds the events already waiting (up to `MAX_WRITE_BYTES`) to the pending write: a
    /// stream that its client reads more slowly than events come writes them in one go
    /// instead of one write each. Lagging behind the buffer meanwhile adds the catch-up.
    fn take_waiting(&mut self, pending: &mut BytesMut) {
        while !self.done && pending.len() < MAX_WRITE_BYTES {
            match self.receiver.try_recv() {
                Ok(event) => self.take(&event, pending),
                Err(TryRecvError::Lagged(_)) => {
                    if let Some(frames) = self.caught_up() {
                        pending.extend_from_slice(&frames);
                    }
                    return;
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Closed) => return,
            }
        }
    }

    /// What a stream that fell behind is sent in one write instead of the events it
    /// missed: the bids after the last one it was sent and the current view, or, past
    /// `MAX_CATCH_UP_BIDS` bids, a `resync` event with the view (its id the bid count).
    /// The receiver moves to the newest event first, so nothing falls between the two;
    /// an event already covered by the catch-up is skipped as a repeated bid is. `None`
    /// when there is no state to read (the stream then ends).
    fn caught_up(&mut self) -> Option<Bytes> {
        let (state, auction_id) = self.catch_up.as_ref()?;
        self.receiver = self.receiver.resubscribe();
        let (bids, marks, view, closed) = {
            let state = state.read();
            let auction = state.kernel.auctions.get(auction_id)?;
            let first = usize::try_from(self.last_sent_seq).unwrap_or(usize::MAX);
            let missed = auction.bids.len().saturating_sub(first);
            let bids = (missed <= MAX_CATCH_UP_BIDS)
                .then(|| auction.bids.clone().slice(first.min(auction.bids.len())..));
            let marks = BidMarks::from_seq(auction, self.last_sent_seq + 1);
            let view = AuctionView::new(auction, wall_clock_ms());
            (bids, marks, view, auction.phase.is_closed())
        };
        let mut text = Vec::new();
        let name = match (&bids, closed) {
            (_, true) => "closed",
            (Some(_), false) => "auction",
            (None, false) => "resync",
        };
        for bid in bids.iter().flatten() {
            text.extend_from_slice(&bid_frame(&marks, bid));
        }
        text.extend_from_slice(&sse_frame(view.bid_count, name, &json(&view)));
        self.last_sent_seq = self.last_sent_seq.max(view.bid_count);
        self.done = closed;
        Some(Bytes::from(text))
    }
}

/// Live views of every auction: `auction` and `closed` events.
#[utoipa::path(tag = "public", responses((status = 200, content_type = "text/event-stream", description = "the event stream"),
    (status = 429, description = "too_many_streams: this address (limits.max_streams_per_ip) or this node (limits.max_streams) holds as many streams as it may; or rate_limited; with Retry-After (seconds)", body = Problem)))]
#[get("/api/v1/events")]
pub async fn all_events(
    app: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let permit = stream_slot(&app, &request)?;
    // Subscribe before reading the state, so nothing falls between the two.
    let receiver = app.applied_events.subscribe();
    let initial: Vec<Bytes> = {
        let state = app.state.read();
        let now_ms = wall_clock_ms();
        state
            .kernel
            .auctions
            .values()
            .map(|auction| {
                let name = if auction.phase.is_closed() {
                    "closed"
                } else {
                    "auction"
                };
                sse_frame(
                    state.last_applied_index,
                    name,
                    &json(&AuctionView::new(auction, now_ms)),
                )
            })
            .collect()
    };
    let live = AllAuctions {
        receiver,
        keep_alive: tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE),
        state: app.state.clone(),
        rendered: app.lobby_frames.clone(),
    };
    let stream = futures::stream::iter(initial.into_iter().map(Ok::<Bytes, actix_web::Error>))
        .chain(live.into_stream());
    Ok(event_stream(stream, permit))
}

/// The all-auctions stream's frames of one log entry, kept for the next stream that asks
/// for the same entry: each entry's views are rendered once, whatever the number of
/// streams.
#[derive(Default)]
pub struct LobbyFrames(parking_lot::Mutex<Option<(u64, Bytes)>>);

impl LobbyFrames {
    /// The frames of the entry `log_index`, rendered by `render` unless they are kept.
    fn get_or_render(&self, log_index: u64, render: impl FnOnce() -> Bytes) -> Bytes {
        let mut kept = self.0.lock();
        if let Some((index, frames)) = kept.as_ref() {
            if *index == log_index {
                return frames.clone();
            }
        }
        let frames = render();
        *kept = Some((log_index, frames.clone()));
        frames
    }
}

struct AllAuctions {
    receiver: broadcast::Receiver<Arc<crate::replication::AppliedEvents>>,
    keep_alive: tokio::time::Interval,
    state: crate::replication::SharedState,
    rendered: Arc<LobbyFrames>,
}

impl AllAuctions {
    /// The views of the auctions one committed command changed, rendered once per entry.
    fn frames(&self, applied: &crate::replication::AppliedEvents) -> Bytes {
        self.rendered
            .get_or_render(applied.log_index, || self.render(applied))
    }

    fn render(&self, applied: &crate::replication::AppliedEvents) -> Bytes {
        let state = self.state.read();
        let now_ms = wall_clock_ms();
        let touched: BTreeSet<&str> = applied
            .events
            .iter()
            .map(|event| event.auction_id.as_str())
            .collect();
        let mut frames = BytesMut::new();
        for auction in touched
            .into_iter()
            .filter_map(|id| state.kernel.auctions.get(id))
        {
            let name = if auction.phase.is_closed() {
                "closed"
            } else {
                "auction"
            };
            let view = json(&AuctionView::new(auction, now_ms));
            frames.extend_from_slice(&sse_frame(applied.log_index, name, &view));
        }
        frames.freeze()
    }

    fn into_stream(self) -> impl futures::Stream<Item = Result<Bytes, actix_web::Error>> {
        futures::stream::unfold(self, |mut live| async move {
            loop {
                tokio::select! {
                    received = live.receiver.recv() => match received {
                        Ok(applied) => {
                            let frames = live.frames(&applied);
                            if frames.is_empty() {
                                continue;
                            }
                            return Some((Ok(frames), live));
                        }
                        // Too slow for the bounded buffer: cut off; the client reconnects
                        // and is sent every auction's view again.
                        Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
                    },
                    _ = live.keep_alive.tick() => {
                        return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), live));
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live_event(id: u64, name: &'static str) -> Arc<LiveEvent> {
        Arc::new(LiveEvent::new(id, name, "{}"))
    }

    fn stream_of(receiver: broadcast::Receiver<Arc<LiveEvent>>) -> LiveStream {
        LiveStream {
            receiver,
            keep_alive: tokio::time::interval_at(
                tokio::time::Instant::now() + KEEP_ALIVE,
                KEEP_ALIVE,
            ),
            last_sent_seq: 0,
            done: false,
            catch_up: None,
            last_write: None,
            write_interval: MIN_WRITE_INTERVAL,
        }
    }

    #[tokio::test]
    async fn a_consumer_that_falls_behind_with_no_state_to_read_is_cut_off() {
        let (publisher, receiver) = broadcast::channel(4);
        let stream = stream_of(receiver).into_stream();
        futures::pin_mut!(stream);
        // The publisher never waits: ten events into a buffer of four, nobody reading.
        for seq in 1..=10 {
            let _ = publisher.send(live_event(seq, "bid"));
        }
        let next = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;
        assert!(
            matches!(next, Ok(None)),
            "the lagging stream ends; the client resumes with Last-Event-ID"
        );
    }

    /// A node state holding auction `lot` with `bids` bids, alternating between two
    /// bidders from 1000 by 100, in its listing.
    fn state_with_bids(bids: u64) -> SharedState {
        use gavel_kernel::{AuctionSpec, Command, Envelope};
        let mut kernel = gavel_kernel::State::default();
        let mut run = |now_ms: u64, command: Command| {
            let envelope = Envelope {
                now_ms,
                seed: now_ms,
                actor: "test".to_string(),
                command,
            };
            let applied = gavel_kernel::apply(&mut kernel, &envelope);
            assert!(applied.result.is_ok(), "{:?}", applied.result);
        };
        let token = |bidder: &str| format!("{:0>64}", hex::encode(bidder));
        run(
            0,
            Command::CreateAuction {
                spec: AuctionSpec::example("lot"),
            },
        );
        for bidder in ["alice", "bob"] {
            run(
                0,
                Command::RegisterBidder {
                    bidder_id: bidder.to_string(),
                    name: bidder.to_string(),
                    secret_salt: "0123456789abcdef0123456789abcdef".to_string(),
                    secret_hash: "ab".repeat(32),
                },
            );
            run(
                0,
                Command::OpenSession {
                    token_hash: token(bidder),
                    bidder_id: bidder.to_string(),
                    expires_at_ms: 1_000_000,
                    max_sessions_per_bidder: 8,
                },
            );
            run(
                0,
                Command::Qualify {
                    auction_id: "lot".to_string(),
                    bidder_id: bidder.to_string(),
                },
            );
        }
        for seq in 1..=bids {
            let bidder = if seq % 2 == 1 { "alice" } else { "bob" };
            run(
                20_000 + seq,
                Command::PlaceBid {
                    auction_id: "lot".to_string(),
                    token_hash: token(bidder),
                    amount: 900 + 100 * seq,
                    request_id: format!("r-{seq}"),
                },
            );
        }
        let applied = crate::replication::AppliedState {
            kernel,
            ..Default::default()
        };
        Arc::new(parking_lot::RwLock::new(applied))
    }

    /// The frames of one write: (event name, id) of each.
    fn events_of(bytes: &Bytes) -> Vec<(String, u64)> {
        let text = String::from_utf8_lossy(bytes).to_string();
        text.split("\n\n")
            .filter(|frame| !frame.is_empty())
            .map(|frame| {
                let field = |name: &str| {
                    frame
                        .lines()
                        .find_map(|line| line.strip_prefix(name))
                        .unwrap_or_default()
                        .to_string()
                };
                (field("event: "), field("id: ").parse().unwrap_or(0))
            })
            .collect()
    }

    #[tokio::test]
    async fn a_consumer_that_falls_behind_is_sent_what_it_missed_in_one_write_and_goes_on() {
        let state = state_with_bids(12);
        let (publisher, receiver) = broadcast::channel(4);
        let mut live = stream_of(receiver);
        live.last_sent_seq = 2;
        live.catch_up = Some((state, "lot".to_string()));
        let stream = live.into_stream();
        futures::pin_mut!(stream);
        // Ten bid events into a buffer of four, nobody reading: the stream lags.
        for seq in 3..=12 {
            let _ = publisher.send(live_event(seq, "bid"));
        }
        let next = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;
        let Ok(Some(Ok(write))) = next else {
            panic!("the lagging stream ended: {next:?}");
        };
        let mut wanted: Vec<(String, u64)> = (3..=12).map(|seq| ("bid".to_string(), seq)).collect();
        wanted.push(("auction".to_string(), 12));
        assert_eq!(events_of(&write), wanted);
        // It goes on from the newest event, and skips bids it was already sent.
        let _ = publisher.send(live_event(12, "bid"));
        let _ = publisher.send(live_event(13, "bid"));
        let next = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;
        let Ok(Some(Ok(write))) = next else {
            panic!("the stream ended after catching up: {next:?}");
        };
        assert_eq!(events_of(&write), [("bid".to_string(), 13)]);
    }

    #[tokio::test]
    async fn a_consumer_too_far_behind_is_sent_a_resync_with_the_view() {
        let state = state_with_bids(MAX_CATCH_UP_BIDS as u64 + 10);
        let (publisher, receiver) = broadcast::channel(4);
        let mut live = stream_of(receiver);
        live.catch_up = Some((state, "lot".to_string()));
        let stream = live.into_stream();
        futures::pin_mut!(stream);
        for seq in 1..=10 {
            let _ = publisher.send(live_event(seq, "bid"));
        }
        let next = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;
        let Ok(Some(Ok(write))) = next else {
            panic!("the lagging stream ended: {next:?}");
        };
        let count = MAX_CATCH_UP_BIDS as u64 + 10;
        assert_eq!(events_of(&write), [("resync".to_string(), count)]);
        assert!(write.len() < 4_096, "{} bytes", write.len());
    }

    #[test]
    fn the_all_auctions_frames_of_an_entry_are_rendered_once() {
        let kept = LobbyFrames::default();
        let mut renders = 0;
        for _ in 0..3 {
            let frames = kept.get_or_render(7, || {
                renders += 1;
                Bytes::from_static(b"seven")
            });
            assert_eq!(&frames[..], b"seven");
        }
        assert_eq!(renders, 1);
        let frames = kept.get_or_render(8, || {
            renders += 1;
            Bytes::from_static(b"eight")
        });
        assert_eq!((&frames[..], renders), (&b"eight"[..], 2));
    }

    #[tokio::test]
    async fn a_consumer_that_keeps_up_gets_every_bid_once_and_ends_after_closed() {
        let (publisher, receiver) = broadcast::channel(16);
        let stream = stream_of(receiver).into_stream();
        futures::pin_mut!(stream);
        let mut names = Vec::new();
        let mut writes = 0;
        for event in [
            live_event(1, "bid"),
            live_event(1, "bid"),
            live_event(1, "auction"),
            live_event(2, "bid"),
            live_event(2, "closed"),
        ] {
            let _ = publisher.send(event);
            // Read as the events come: one write each (the repeated bid none).
            if let Ok(Some(Ok(write))) =
                tokio::time::timeout(Duration::from_millis(100), stream.next()).await
            {
                writes += 1;
                names.extend(events_of(&write).into_iter().map(|(name, _)| name));
            }
        }
        assert_eq!(
            names,
            ["bid", "auction", "bid", "closed"],
            "the repeated bid 1 is skipped"
        );
        assert_eq!(writes, 4);
        let end = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;
        assert!(matches!(end, Ok(None)), "the stream ends after closed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_events_goes_out_in_one_write_per_interval() {
        let (publisher, receiver) = broadcast::channel(64);
        let stream = stream_of(receiver).into_stream();
        futures::pin_mut!(stream);
        let _ = publisher.send(live_event(1, "bid"));
        let first = stream.next().await.expect("a write").expect("bytes");
        assert_eq!(
            events_of(&first),
            [("bid".to_string(), 1)],
            "a quiet stream writes at once"
        );
        let started = tokio::time::Instant::now();
        let reader = async {
            let write = stream.next().await.expect("a write").expect("bytes");
            (write, started.elapsed())
        };
        let publisher_side = async {
            for seq in 2..=6 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let _ = publisher.send(live_event(seq, "bid"));
            }
        };
        let ((write, waited), ()) = tokio::join!(reader, publisher_side);
        let sent: Vec<u64> = events_of(&write).into_iter().map(|(_, id)| id).collect();
        assert_eq!(sent, [2, 3, 4, 5, 6], "the burst in one write");
        assert!(waited >= MIN_WRITE_INTERVAL, "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_listener_with_a_shorter_interval_writes_a_burst_sooner() {
        let (publisher, receiver) = broadcast::channel(64);
        let interval = Duration::from_millis(10);
        let stream = LiveStream {
            write_interval: interval,
            ..stream_of(receiver)
        }
        .into_stream();
        futures::pin_mut!(stream);
        let _ = publisher.send(live_event(1, "bid"));
        stream.next().await.expect("a write").expect("bytes");
        let started = tokio::time::Instant::now();
        let _ = publisher.send(live_event(2, "bid"));
        let _ = publisher.send(live_event(3, "bid"));
        let write = stream.next().await.expect("a write").expect("bytes");
        let sent: Vec<u64> = events_of(&write).into_iter().map(|(_, id)| id).collect();
        assert_eq!(sent, [2, 3], "the burst in one write");
        let waited = started.elapsed();
        assert!(
            waited >= interval && waited < MIN_WRITE_INTERVAL,
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn events_waiting_for_a_slow_reader_go_out_in_one_write() {
        let (publisher, receiver) = broadcast::channel(64);
        let stream = stream_of(receiver).into_stream();
        futures::pin_mut!(stream);
        for seq in 1..=20 {
            let _ = publisher.send(live_event(seq, "bid"));
        }
        let next = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;
        let Ok(Some(Ok(write))) = next else {
            panic!("no write: {next:?}");
        };
        let sent: Vec<u64> = events_of(&write).into_iter().map(|(_, id)| id).collect();
        assert_eq!(
            sent,
            (1..=20).collect::<Vec<u64>>(),
            "every waiting bid, in order, once"
        );
        let _ = publisher.send(live_event(21, "bid"));
        let next = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;
        let Ok(Some(Ok(write))) = next else {
            panic!("no write: {next:?}");
        };
        assert_eq!(events_of(&write), [("bid".to_string(), 21)]);
    }
}

//! Server-sent events of one auction, from this node's own applied state.
//!
//! On connect the stream sends every bid after `Last-Event-ID` (a bid's id is its `seq`),
//! then the current `auction` view; then the Auction actor's live events. A `: keep-alive`
//! comment goes out every 15 s. A consumer too slow to keep up with the actor's bounded
//! buffer is cut off (it reconnects with `Last-Event-ID` and misses nothing); the kernel
//! never waits for it. The stream ends after the `closed` event.
//!
//! `GET /api/v1/events` streams every auction: an `auction` view of each at connect (and
//! again after a reconnect, so nothing is missed), then one `auction` (or `closed`) view
//! of every auction a committed command changed, with the log index as the event id.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{get, web, HttpRequest, HttpResponse};
use tokio::sync::broadcast::{self, error::RecvError};

use super::problem::{ApiError, Problem};
use super::views::{AuctionView, BidView};
use super::AppState;
use crate::actors::auction::{LiveEvent, Subscribe};
use crate::actors::resource_pool::SubscribeAuction;
use crate::actors::wall_clock_ms;
use crate::kernel::Rejection;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn frame(id: u64, name: &str, data: &str) -> Bytes {
    Bytes::from(format!("id: {id}\nevent: {name}\ndata: {data}\n\n"))
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}

/// Live updates of one auction: `auction`, `bid` and `closed` events.
#[utoipa::path(tag = "public", params(("id" = String, Path, description = "auction id"),
    ("Last-Event-ID" = Option<u64>, Header, description = "resume after this bid seq")),
    responses((status = 200, content_type = "text/event-stream", description = "the event stream"),
    (status = 404, description = "auction_not_found", body = Problem),
    (status = 422, description = "invalid_request: Last-Event-ID is not a bid seq", body = Problem),
    (status = 503, description = "unavailable", body = Problem)))]
#[get("/api/v1/auctions/{id}/events")]
pub async fn auction_events(
    app: web::Data<AppState>,
    path: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let auction_id = path.into_inner();
    let last_event_id = match request.headers().get("Last-Event-ID") {
        None => 0,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::invalid("Last-Event-ID must be a bid sequence number".to_string())
            })?,
    };
    // Subscribe before reading the state, so nothing falls between the two.
    let subscribed = app
        .pool
        .send(SubscribeAuction {
            auction_id: auction_id.clone(),
        })
        .await?;
    let Some(actor) = subscribed else {
        // An archived auction is closed: its bids and the `closed` event, then the end.
        let (initial, _, _) = app.read_auction(&auction_id, |auction| {
            initial_frames(auction, last_event_id)
        })?;
        let stream = futures::stream::iter(initial.into_iter().map(Ok::<Bytes, actix_web::Error>));
        return Ok(HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header(("Cache-Control", "no-cache"))
            .insert_header(("X-Accel-Buffering", "no"))
            .streaming(stream));
    };
    let receiver = actor.send(Subscribe).await?;

    let (initial, last_sent_seq, closed) = {
        let state = app.state.read();
        let auction = state
            .kernel
            .auctions
            .get(&auction_id)
            .ok_or(Rejection::AuctionNotFound)?;
        initial_frames(auction, last_event_id)
    };

    let live = LiveStream {
        receiver,
        keep_alive: tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE),
        last_sent_seq,
        done: closed,
    };
    let stream = futures::stream::iter(initial.into_iter().map(Ok::<Bytes, actix_web::Error>))
        .chain(live.into_stream());
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

/// The bids after `last_event_id` and the current `auction` (or `closed`) event; the bid
/// count, and whether the auction is closed.
fn initial_frames(auction: &crate::kernel::Auction, last_event_id: u64) -> (Vec<Bytes>, u64, bool) {
    let mut initial: Vec<Bytes> = auction
        .bids
        .iter()
        .filter(|bid| bid.seq > last_event_id)
        .map(|bid| frame(bid.seq, "bid", &json(&BidView::from(bid))))
        .collect();
    let bid_count = auction.bids.len() as u64;
    let closed = auction.phase.is_closed();
    let name = if closed { "closed" } else { "auction" };
    initial.push(frame(
        bid_count,
        name,
        &json(&AuctionView::new(auction, wall_clock_ms())),
    ));
    (initial, bid_count, closed)
}

use futures::StreamExt;

struct LiveStream {
    receiver: broadcast::Receiver<Arc<LiveEvent>>,
    keep_alive: tokio::time::Interval,
    last_sent_seq: u64,
    done: bool,
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
                            if event.name == "bid" {
                                if event.id <= live.last_sent_seq {
                                    continue;
                                }
                                live.last_sent_seq = event.id;
                            }
                            if event.name == "closed" {
                                live.done = true;
                            }
                            return Some((Ok(frame(event.id, event.name, &event.data)), live));
                        }
                        // Too slow for the bounded buffer, or the auction's actor stopped:
                        // end the stream; the client resumes with Last-Event-ID.
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

/// Live views of every auction: `auction` and `closed` events.
#[utoipa::path(tag = "public", responses((status = 200, content_type = "text/event-stream", description = "the event stream")))]
#[get("/api/v1/events")]
pub async fn all_events(app: web::Data<AppState>) -> HttpResponse {
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
                frame(
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
    };
    let stream = futures::stream::iter(initial.into_iter().map(Ok::<Bytes, actix_web::Error>))
        .chain(live.into_stream());
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}

struct AllAuctions {
    receiver: broadcast::Receiver<Arc<crate::replication::AppliedEvents>>,
    keep_alive: tokio::time::Interval,
    state: crate::replication::SharedState,
}

impl AllAuctions {
    /// The views of the auctions one committed command changed.
    fn frames(&self, applied: &crate::replication::AppliedEvents) -> Bytes {
        let state = self.state.read();
        let now_ms = wall_clock_ms();
        let touched: BTreeSet<&str> = applied
            .events
            .iter()
            .map(|event| event.auction_id.as_str())
            .collect();
        let mut text = String::new();
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
            text.push_str(&format!(
                "id: {}\nevent: {name}\ndata: {view}\n\n",
                applied.log_index
            ));
        }
        Bytes::from(text)
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
        Arc::new(LiveEvent {
            id,
            name,
            data: "{}".to_string(),
        })
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
        }
    }

    #[tokio::test]
    async fn a_consumer_that_falls_behind_the_bounded_buffer_is_cut_off() {
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

    #[tokio::test]
    async fn a_consumer_that_keeps_up_gets_every_bid_once_and_ends_after_closed() {
        let (publisher, receiver) = broadcast::channel(16);
        let stream = stream_of(receiver).into_stream();
        futures::pin_mut!(stream);
        for event in [
            live_event(1, "bid"),
            live_event(1, "bid"),
            live_event(1, "auction"),
            live_event(2, "bid"),
            live_event(2, "closed"),
        ] {
            let _ = publisher.send(event);
        }
        let mut names = Vec::new();
        while let Ok(Some(Ok(frame))) =
            tokio::time::timeout(Duration::from_secs(1), stream.next()).await
        {
            let text = String::from_utf8_lossy(&frame).to_string();
            names.push(
                text.lines()
                    .find_map(|line| line.strip_prefix("event: "))
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        assert_eq!(
            names,
            ["bid", "auction", "bid", "closed"],
            "the repeated bid 1 is skipped"
        );
    }
}

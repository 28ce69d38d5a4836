//! How often a busy event stream writes: stream writing gives way to bids.
//!
//! The public listener's workers both answer bids and write event streams. A stream that
//! keeps receiving events writes at most once per interval, gathering what came meanwhile
//! (`events::LiveStream`). While bids queue up on this node — more than
//! `CROWD_BIDS_IN_FLIGHT` being answered at once, the crowd at a contested deadline — the
//! interval grows from `QUIET_WRITE_INTERVAL` to `CROWD_WRITE_INTERVAL`, so thousands of
//! watchers cost the workers a fifth of the writes and the bids get the time. A watcher
//! then sees other bidders' prices up to a quarter of a second late (the bidder's own
//! receipt comes in the bid's answer, at once); the events, their ids and their order are
//! the same. A lone bid, or a few at once, changes nothing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The shortest time between two writes of live events on one stream while bids are
/// few: under a burst of events a stream writes them together, at most 20 times a second.
pub const QUIET_WRITE_INTERVAL: Duration = Duration::from_millis(50);

/// The same while bids queue up: at most 4 writes a second per stream.
pub const CROWD_WRITE_INTERVAL: Duration = Duration::from_millis(250);

/// Bids answered at once past which this node counts as crowded.
pub const CROWD_BIDS_IN_FLIGHT: usize = 4;

/// The bids this node is answering, shared by its workers and its streams.
#[derive(Debug, Default)]
pub struct WritePacing {
    bids_in_flight: AtomicUsize,
}

impl WritePacing {
    /// Counts a bid until the returned guard is dropped (its answer is written).
    pub fn bid_started(self: &Arc<Self>) -> BidInFlight {
        self.bids_in_flight.fetch_add(1, Ordering::Relaxed);
        BidInFlight(Arc::clone(self))
    }

    pub fn bids_in_flight(&self) -> usize {
        self.bids_in_flight.load(Ordering::Relaxed)
    }

    /// The shortest time between two writes of one stream, now.
    pub fn write_interval(&self) -> Duration {
        if self.bids_in_flight() > CROWD_BIDS_IN_FLIGHT {
            CROWD_WRITE_INTERVAL
        } else {
            QUIET_WRITE_INTERVAL
        }
    }
}

/// One bid being answered (`WritePacing::bid_started`).
#[derive(Debug)]
pub struct BidInFlight(Arc<WritePacing>);

impl Drop for BidInFlight {
    fn drop(&mut self) {
        self.0.bids_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_write_less_often_only_while_bids_queue_up() {
        let pacing = Arc::new(WritePacing::default());
        assert_eq!(pacing.write_interval(), QUIET_WRITE_INTERVAL);
        let mut bids: Vec<BidInFlight> = (0..CROWD_BIDS_IN_FLIGHT)
            .map(|_| pacing.bid_started())
            .collect();
        assert_eq!(pacing.write_interval(), QUIET_WRITE_INTERVAL, "a few bids");
        bids.push(pacing.bid_started());
        assert_eq!(pacing.write_interval(), CROWD_WRITE_INTERVAL, "a crowd");
        bids.pop();
        assert_eq!(pacing.write_interval(), QUIET_WRITE_INTERVAL);
        drop(bids);
        assert_eq!(pacing.bids_in_flight(), 0);
    }
}

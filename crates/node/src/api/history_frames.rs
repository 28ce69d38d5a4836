//! The `bid` frames of auctions' histories, rendered once per node and shared by every
//! stream that connects.
//!
//! A stream of one auction starts with every bid after its `Last-Event-ID`: when a crowd
//! of pages connects to a sale that already holds thousands of bids, formatting each
//! page's copy of the history is most of what the node does. Here the history is cut into
//! chunks of `CHUNK_BIDS` bids; a full chunk's frames are rendered the first time a stream
//! needs them and kept as one buffer that every later stream writes as it is (a stream
//! resuming in the middle of a chunk writes a slice of it). The bids after the last full
//! chunk are rendered for each stream, as they were before.
//!
//! A committed bid never changes, but its marks do (a bid voided later; `BidMarks`): each
//! kept chunk remembers the marks it was rendered with and the hash of its last bid (the
//! bids are hash-chained, so that hash stands for every bid of the chunk), and is rendered
//! again when either differs from the state the stream copied. What is kept is bounded in
//! bytes (`HistoryFrames::new`); past the bound, the auctions used least recently are
//! dropped first.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use actix_web::web::Bytes;
use imbl::Vector;

use crate::actors::auction::sse_frame;
use crate::model::views::{BidMarks, MarkedSeqs};
use gavel_kernel::BidRecord;

/// Bids per kept chunk: large enough that a stream writes a history in few buffers, small
/// enough that the bids after the last full chunk are quickly rendered per stream.
pub const CHUNK_BIDS: usize = 128;

/// Most bytes of rendered history the node keeps over every auction (a bid's frame is
/// about 150 bytes: some 400,000 bids).
pub const MAX_KEPT_BYTES: usize = 64 * 1024 * 1024;

/// One bid as a `bid` event of the stream (its id the bid's seq).
pub fn bid_frame(marks: &BidMarks, bid: &BidRecord) -> Bytes {
    let view = serde_json::to_string(&marks.view(bid)).unwrap_or_else(|_| "{}".to_string());
    sse_frame(bid.seq, "bid", &view)
}

/// The kept chunks of every auction, and how many bytes they hold.
pub struct HistoryFrames {
    kept: parking_lot::Mutex<Kept>,
    max_bytes: usize,
}

#[derive(Default)]
struct Kept {
    auctions: HashMap<String, KeptAuction>,
    bytes: usize,
    /// Counts the calls, to tell which auction was used least recently.
    uses: u64,
}

#[derive(Default)]
struct KeptAuction {
    /// Chunk `i` holds the frames of the bids with seq `i * CHUNK_BIDS + 1` to
    /// `(i + 1) * CHUNK_BIDS`; `None` where no stream needed it yet.
    chunks: Vec<Option<Chunk>>,
    last_used: u64,
}

struct Chunk {
    frames: Bytes,
    /// Where each bid's frame starts in `frames`.
    starts: Vec<usize>,
    /// The hash of the chunk's last bid.
    last_hash: String,
    marks: MarkedSeqs,
}

impl Chunk {
    fn render(bids: &Vector<BidRecord>, index: usize, marks: &BidMarks) -> Chunk {
        let range = index * CHUNK_BIDS..(index + 1) * CHUNK_BIDS;
        let mut frames = Vec::with_capacity(CHUNK_BIDS * 160);
        let mut starts = Vec::with_capacity(CHUNK_BIDS);
        for bid in bids.focus().narrow(range.clone()).into_iter() {
            starts.push(frames.len());
            frames.extend_from_slice(&bid_frame(marks, bid));
        }
        Chunk {
            frames: Bytes::from(frames),
            starts,
            last_hash: bids[range.end - 1].hash.clone(),
            marks: marks.marked_in(chunk_seqs(index)),
        }
    }

    fn holds(&self, bids: &Vector<BidRecord>, index: usize, marks: &BidMarks) -> bool {
        bids[(index + 1) * CHUNK_BIDS - 1].hash == self.last_hash
            && marks.marked_in(chunk_seqs(index)) == self.marks
    }

    /// The frames of the chunk's bids from its `skip`-th on.
    fn frames_from(&self, skip: usize) -> Bytes {
        match skip {
            0 => self.frames.clone(),
            _ => self.frames.slice(self.starts[skip]..),
        }
    }
}

/// The seqs of chunk `index`'s bids.
fn chunk_seqs(index: usize) -> RangeInclusive<u64> {
    let first = (index * CHUNK_BIDS) as u64 + 1;
    first..=first + CHUNK_BIDS as u64 - 1
}

impl Default for HistoryFrames {
    fn default() -> Self {
        HistoryFrames::new(MAX_KEPT_BYTES)
    }
}

impl HistoryFrames {
    /// Keeping at most `max_bytes` of rendered frames.
    pub fn new(max_bytes: usize) -> Self {
        HistoryFrames {
            kept: parking_lot::Mutex::default(),
            max_bytes,
        }
    }

    /// The `bid` frames of `auction_id`'s bids after the first `skip`, in order, as a few
    /// buffers: the kept chunks (rendered now where missing or out of date) and the bids
    /// after the last full chunk. `bids` and `marks` are a copy of the auction's state.
    pub fn frames_after(
        &self,
        auction_id: &str,
        bids: &Vector<BidRecord>,
        marks: &BidMarks,
        skip: usize,
    ) -> Vec<Bytes> {
        let full_chunks = bids.len() / CHUNK_BIDS;
        let mut frames = Vec::new();
        if skip < full_chunks * CHUNK_BIDS {
            let mut kept = self.kept.lock();
            kept.uses += 1;
            let now = kept.uses;
            let mut added = 0isize;
            let auction = kept.auctions.entry(auction_id.to_string()).or_default();
            auction.last_used = now;
            if auction.chunks.len() < full_chunks {
                auction.chunks.resize_with(full_chunks, || None);
            }
            for index in skip / CHUNK_BIDS..full_chunks {
                let slot = &mut auction.chunks[index];
                if !slot
                    .as_ref()
                    .is_some_and(|chunk| chunk.holds(bids, index, marks))
                {
                    let chunk = Chunk::render(bids, index, marks);
                    added += chunk.frames.len() as isize;
                    if let Some(old) = slot.replace(chunk) {
                        added -= old.frames.len() as isize;
                    }
                }
                let chunk = slot.as_ref().expect("rendered above");
                frames.push(chunk.frames_from(skip.saturating_sub(index * CHUNK_BIDS)));
            }
            kept.bytes = kept.bytes.saturating_add_signed(added);
            kept.shrink_to(self.max_bytes);
        }
        let mut tail = Vec::new();
        for bid in bids.skip(skip.max(full_chunks * CHUNK_BIDS)).iter() {
            tail.extend_from_slice(&bid_frame(marks, bid));
        }
        if !tail.is_empty() {
            frames.push(Bytes::from(tail));
        }
        frames
    }

    /// Bytes of rendered frames kept.
    pub fn kept_bytes(&self) -> usize {
        self.kept.lock().bytes
    }
}

impl Kept {
    /// Drops the auctions used least recently until at most `max_bytes` are kept.
    fn shrink_to(&mut self, max_bytes: usize) {
        while self.bytes > max_bytes {
            let Some(oldest) = self
                .auctions
                .iter()
                .min_by_key(|(_, auction)| auction.last_used)
                .map(|(id, _)| id.clone())
            else {
                return;
            };
            if let Some(auction) = self.auctions.remove(&oldest) {
                let held: usize = auction
                    .chunks
                    .iter()
                    .flatten()
                    .map(|c| c.frames.len())
                    .sum();
                self.bytes = self.bytes.saturating_sub(held);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gavel_kernel::Money;

    fn bid(seq: u64) -> BidRecord {
        BidRecord {
            seq,
            bid_id: format!("bid-{seq}"),
            bidder_id: format!("bidder-{}", seq % 7),
            bidder_number: (seq % 7) as _,
            amount: (1_000_000 + seq * 10_000) as Money,
            accepted_at_ms: 1_700_000_000_000 + seq,
            prev_hash: format!("h{}", seq - 1),
            hash: format!("h{seq}"),
        }
    }

    fn bids(count: u64) -> Vector<BidRecord> {
        (1..=count).map(bid).collect()
    }

    /// Every bid after the first `skip`, rendered one by one.
    fn one_by_one(bids: &Vector<BidRecord>, marks: &BidMarks, skip: usize) -> Vec<u8> {
        bids.skip(skip.min(bids.len()))
            .iter()
            .flat_map(|bid| bid_frame(marks, bid).to_vec())
            .collect()
    }

    fn joined(frames: &[Bytes]) -> Vec<u8> {
        frames.iter().flat_map(|frame| frame.to_vec()).collect()
    }

    #[test]
    fn the_frames_are_the_bids_after_skip_rendered_one_by_one() {
        let history = HistoryFrames::default();
        let marks = BidMarks::default();
        for count in [0, 1, 127, 128, 129, 300, 512] {
            let bids = bids(count);
            for skip in [0, 1, 127, 128, 129, 255, 256, 300, 511, 512, 600] {
                assert_eq!(
                    joined(&history.frames_after("a", &bids, &marks, skip)),
                    one_by_one(&bids, &marks, skip),
                    "{count} bids after {skip}"
                );
            }
        }
    }

    #[test]
    fn every_stream_writes_the_same_rendered_chunks() {
        let history = HistoryFrames::default();
        let marks = BidMarks::default();
        let bids = bids(300);
        let first = history.frames_after("a", &bids, &marks, 0);
        let second = history.frames_after("a", &bids, &marks, 0);
        let resumed = history.frames_after("a", &bids, &marks, 130);
        assert_eq!(first.len(), 3, "two chunks and the tail");
        assert_eq!(
            first[0].as_ptr(),
            second[0].as_ptr(),
            "the first chunk is shared"
        );
        assert_eq!(
            first[1].as_ptr(),
            second[1].as_ptr(),
            "the second chunk is shared"
        );
        assert_ne!(
            first[2].as_ptr(),
            second[2].as_ptr(),
            "the tail is rendered per stream"
        );
        // Resuming after 130 bids writes a slice of the second chunk, not a new copy.
        let second_chunk = first[1].as_ptr_range();
        assert!(second_chunk.contains(&resumed[0].as_ptr()));
        assert_eq!(history.kept_bytes(), first[0].len() + first[1].len());
    }

    #[test]
    fn a_bid_marked_after_its_chunk_was_rendered_is_sent_with_its_new_mark() {
        let history = HistoryFrames::default();
        let bids = bids(256);
        let unmarked = BidMarks::default();
        history.frames_after("a", &bids, &unmarked, 0);
        let marks = BidMarks::voiding([5]);
        let frames = history.frames_after("a", &bids, &marks, 0);
        assert_eq!(joined(&frames), one_by_one(&bids, &marks, 0));
        assert_ne!(joined(&frames), one_by_one(&bids, &unmarked, 0));
        let text = String::from_utf8_lossy(&frames[0]);
        let fifth = text.lines().find(|line| line.contains("\"seq\":5,"));
        assert!(
            fifth.is_some_and(|line| line.contains("\"void\":true")),
            "{fifth:?}"
        );
    }

    #[test]
    fn another_history_under_the_same_id_is_rendered_anew() {
        let history = HistoryFrames::default();
        let marks = BidMarks::default();
        history.frames_after("a", &bids(128), &marks, 0);
        let mut other = bids(128);
        other[127].hash = "another".to_string();
        other[127].amount += 1;
        let frames = history.frames_after("a", &other, &marks, 0);
        assert_eq!(joined(&frames), one_by_one(&other, &marks, 0));
    }

    #[test]
    fn what_is_kept_stays_within_its_bound_dropping_the_auction_used_least_recently() {
        let marks = BidMarks::default();
        let bids = bids(256);
        let one_auction = {
            let history = HistoryFrames::default();
            history.frames_after("a", &bids, &marks, 0);
            history.kept_bytes()
        };
        let history = HistoryFrames::new(2 * one_auction);
        for id in ["a", "b", "c", "a", "d"] {
            history.frames_after(id, &bids, &marks, 0);
            assert!(history.kept_bytes() <= 2 * one_auction, "after {id}");
        }
        let kept = history.kept.lock();
        let mut ids: Vec<&str> = kept.auctions.keys().map(String::as_str).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["a", "d"], "b and c were used least recently");
        drop(kept);
        // A history larger than the bound is still sent whole, and not kept.
        let small = HistoryFrames::new(one_auction / 4);
        let frames = small.frames_after("a", &bids, &marks, 0);
        assert_eq!(joined(&frames), one_by_one(&bids, &marks, 0));
        assert_eq!(small.kept_bytes(), 0);
    }
}

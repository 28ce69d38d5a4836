//! The entries a node appended last, kept in memory beside the segment files (`Recent`).

use std::collections::VecDeque;

use openraft::Entry;

use crate::replication::TypeConfig;

/// Most entries `Recent` keeps.
pub(super) const RECENT_ENTRIES: usize = 256;
/// Most bytes (as stored) of the entries `Recent` keeps.
pub(super) const RECENT_BYTES: usize = 8 << 20;

/// The entries appended last, in index order with no gap, each with its stored size:
/// the leader sends a new entry to every follower and applies it once committed, and a
/// follower applies what it appended, so these reads take a copy from memory instead of
/// reading, checking and decoding the record again. Kept equal to the files' tail:
/// changed only under the `files` lock, cut with every truncation and purge, emptied
/// when an append does not follow on.
#[derive(Default)]
pub(super) struct Recent {
    pub(super) entries: VecDeque<(Entry<TypeConfig>, usize)>,
    pub(super) bytes: usize,
}

impl Recent {
    pub(super) fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(entry, _)| entry.log_id.index)
    }

    /// Adds entries just written after the files' previous end.
    pub(super) fn extend(&mut self, appended: Vec<(Entry<TypeConfig>, usize)>) {
        let follows = match (self.entries.back(), appended.first()) {
            (Some((last, _)), Some((first, _))) => {
                last.log_id.index.checked_add(1) == Some(first.log_id.index)
            }
            _ => true,
        };
        if !follows {
            self.clear();
        }
        for (entry, bytes) in appended {
            self.bytes += bytes;
            self.entries.push_back((entry, bytes));
        }
        while self.entries.len() > RECENT_ENTRIES || self.bytes > RECENT_BYTES {
            match self.entries.pop_front() {
                Some((_, bytes)) => self.bytes -= bytes,
                None => break,
            }
        }
    }

    /// Copies of the entries `start..end`, if it holds every one of them.
    pub(super) fn get(&self, start: u64, end: u64) -> Option<Vec<Entry<TypeConfig>>> {
        let first = self.first_index()?;
        let next = first + self.entries.len() as u64;
        if start < first || end > next || end <= start {
            return None;
        }
        let range = (start - first) as usize..(end - first) as usize;
        Some(
            self.entries
                .range(range)
                .map(|(entry, _)| entry.clone())
                .collect(),
        )
    }

    /// Drops the entries from index `from` on.
    pub(super) fn truncate_from(&mut self, from: u64) {
        while let Some((last, _)) = self.entries.back() {
            if last.log_id.index < from {
                break;
            }
            if let Some((_, bytes)) = self.entries.pop_back() {
                self.bytes -= bytes;
            }
        }
    }

    /// Drops the entries up to and including index `upto`.
    pub(super) fn purge_through(&mut self, upto: u64) {
        while self.first_index().is_some_and(|first| first <= upto) {
            if let Some((_, bytes)) = self.entries.pop_front() {
                self.bytes -= bytes;
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

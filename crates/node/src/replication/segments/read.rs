//! Reading records back: `SegmentLog::plan_read` says where they are while the log is
//! locked; `ReadPlan::read` reads and checks them after the lock is released.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::{checksum, SegmentLog, HEADER_BYTES};
use crate::replication::error::StoreError;

/// A contiguous piece of one segment to read: the file, the byte range, and the records
/// (index, offset, length) in it.
pub(crate) struct ReadPlan {
    pieces: Vec<ReadPiece>,
}

/// The file, the byte range `[begin, finish)` and the records (index, offset, length).
type ReadPiece = (Arc<File>, u64, u64, Vec<(u64, u64, u32)>);

impl SegmentLog {
    /// Where the records with indexes in `start..end` are, for reading outside the lock.
    /// Indexes the log does not hold are left out.
    pub(crate) fn plan_read(&self, start: u64, end: u64) -> ReadPlan {
        let mut pieces = Vec::new();
        for segment in &self.segments {
            let from = start.max(segment.first);
            let to = end.min(segment.next_index());
            if from >= to {
                continue;
            }
            let records: Vec<(u64, u64, u32)> = (from..to)
                .map(|index| {
                    let (offset, len) = segment.records[(index - segment.first) as usize];
                    (index, offset, len)
                })
                .collect();
            let begin = records[0].1;
            let (last_offset, last_len) = {
                let last = records[records.len() - 1];
                (last.1, last.2)
            };
            let finish = last_offset + HEADER_BYTES + last_len as u64;
            pieces.push((segment.file.clone(), begin, finish, records));
        }
        ReadPlan { pieces }
    }
}

impl ReadPlan {
    /// Reads the planned records: (index, payload) in index order, each checked against
    /// its header.
    pub(crate) fn read(self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for (file, begin, finish, records) in self.pieces {
            let mut bytes = vec![0u8; (finish - begin) as usize];
            file.read_exact_at(&mut bytes, begin)
                .map_err(|error| StoreError::corrupt("the raft log", error.to_string()))?;
            for (index, offset, len) in records {
                let at = (offset - begin) as usize;
                let head = &bytes[at..at + HEADER_BYTES as usize];
                let payload =
                    &bytes[at + HEADER_BYTES as usize..at + HEADER_BYTES as usize + len as usize];
                let sum = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
                let stored = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
                if stored != index || checksum(index, payload) != sum {
                    return Err(StoreError::corrupt(
                        format!("log entry {index}"),
                        "its record fails its checksum",
                    ));
                }
                out.push((index, payload.to_vec()));
            }
        }
        Ok(out)
    }
}

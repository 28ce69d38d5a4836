//! The log's sync thread (`Syncer`), which makes appended entries durable.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::replication::error::StoreError;
use crate::replication::segments::{sync_files, SyncPoint};

/// What the sync thread does when the files it synced are durable (or failed to be).
pub(super) type SyncDone = Box<dyn FnOnce(std::io::Result<()>) + Send>;

/// Files to make durable, the index after the last record written to them (0 for none),
/// and what to do then. A job with no files is a barrier: it runs once every job queued
/// before it is done.
struct SyncJob {
    files: Vec<Arc<File>>,
    through: u64,
    done: SyncDone,
}

/// The log's sync thread: it takes every job queued, syncs each file they name once, then
/// runs their `done` in queue order, after advancing the log's `SyncPoint` past their
/// records (each job's records were written after every earlier job's, which an earlier
/// batch or this one synced). After a failed sync every later job fails too: what the
/// kernel dropped from its cache after a failed `fdatasync` cannot be synced again.
pub(super) struct Syncer {
    jobs: mpsc::Sender<SyncJob>,
    pub(super) failed: Arc<AtomicBool>,
    /// Jobs handed to the thread and not yet done.
    pub(super) queued: Arc<AtomicUsize>,
    /// When the last append was synced or handed over (for `sync_append`).
    pub(super) last_append: Mutex<Option<Instant>>,
    synced: SyncPoint,
}

/// An append of a single command right after the last committed entry (nothing else in
/// flight) that comes this long after the previous one, with the sync thread idle, is
/// synced on the caller's thread: a lightly loaded node (one bidder at a time) saves the
/// two thread hand-offs of the sync thread. A busy node keeps its Raft thread free while
/// the disk works: under load the leader puts many commands in one entry (group commit)
/// and has two entries in flight, so its appends can be far apart, yet each one's sync
/// would hold up the replies and answers of the rest.
pub(super) const IDLE_LOG_GAP: Duration = Duration::from_micros(400);

impl Syncer {
    pub(super) fn start(synced: SyncPoint) -> Result<Syncer, StoreError> {
        let (jobs, queue) = mpsc::channel::<SyncJob>();
        let failed = Arc::new(AtomicBool::new(false));
        let thread_failed = failed.clone();
        let queued = Arc::new(AtomicUsize::new(0));
        let thread_queued = queued.clone();
        let thread_synced = synced.clone();
        std::thread::Builder::new()
            .name("gavel-log-sync".to_string())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    batch.extend(queue.try_iter());
                    let mut files: Vec<Arc<File>> = Vec::new();
                    for file in batch.iter().flat_map(|job| job.files.iter()) {
                        if !files.iter().any(|known| Arc::ptr_eq(known, file)) {
                            files.push(file.clone());
                        }
                    }
                    let result = if thread_failed.load(Ordering::SeqCst) {
                        Err("an earlier sync of the raft log failed".to_string())
                    } else {
                        sync_files(&files).map_err(|error| {
                            thread_failed.store(true, Ordering::SeqCst);
                            format!("syncing the raft log: {error}")
                        })
                    };
                    if result.is_ok() {
                        let through = batch.iter().map(|job| job.through).max();
                        thread_synced.advance(through.unwrap_or(0));
                    }
                    let jobs = batch.len();
                    for job in batch {
                        (job.done)(result.clone().map_err(std::io::Error::other));
                    }
                    thread_queued.fetch_sub(jobs, Ordering::SeqCst);
                }
            })
            .map_err(|error| {
                StoreError::Task(format!("cannot start the log's sync thread: {error}"))
            })?;
        Ok(Syncer {
            jobs,
            failed,
            queued,
            last_append: Mutex::new(None),
            synced,
        })
    }

    pub(super) fn submit(
        &self,
        files: Vec<Arc<File>>,
        through: u64,
        done: SyncDone,
    ) -> Result<(), StoreError> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let job = SyncJob {
            files,
            through,
            done,
        };
        self.jobs.send(job).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            StoreError::Task("the log's sync thread has stopped".to_string())
        })
    }

    /// Makes an append's files durable and then runs `done`: here and now when the log
    /// was idle (`alone`: a single command with nothing else in flight; nothing queued on
    /// the sync thread; the previous append `IDLE_LOG_GAP` or more ago), else on the sync
    /// thread. Either way `done` runs after every earlier append's, and never before its
    /// files are synced and the `SyncPoint` is past `through` (the index after the
    /// append's last record); its errors read as the sync thread's.
    pub(super) fn sync_append(
        &self,
        files: Vec<Arc<File>>,
        through: u64,
        alone: bool,
        done: SyncDone,
    ) -> Result<(), StoreError> {
        let now = Instant::now();
        let previous = self.last_append.lock().replace(now);
        let idle = alone
            && previous.is_some_and(|at| now.duration_since(at) >= IDLE_LOG_GAP)
            && self.queued.load(Ordering::SeqCst) == 0;
        if !idle {
            return self.submit(files, through, done);
        }
        let result = if self.failed.load(Ordering::SeqCst) {
            Err("an earlier sync of the raft log failed".to_string())
        } else {
            sync_files(&files).map_err(|error| {
                self.failed.store(true, Ordering::SeqCst);
                format!("syncing the raft log: {error}")
            })
        };
        if result.is_ok() {
            self.synced.advance(through);
        }
        done(result.map_err(std::io::Error::other));
        Ok(())
    }

    /// Waits until every sync queued before it is done.
    pub(super) async fn barrier(&self) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(
            Vec::new(),
            0,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        )?;
        rx.await
            .map_err(|_| StoreError::Task("the log's sync thread has stopped".to_string()))?
            .map_err(|error| StoreError::Task(error.to_string()))
    }
}

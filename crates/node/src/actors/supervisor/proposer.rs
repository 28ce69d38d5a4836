//! Group commit on the leader. openraft 0.9 makes each `client_write` a log entry of its
//! own, replicated and acknowledged entry by entry, so one command per log entry costs
//! every voter an append, a message and a sync per command. The
//! Supervisor therefore hands stamped commands to the `Proposer`, whose task puts every
//! command that arrived while earlier entries were being written into one `Proposal`
//! (one log entry, one append and one fdatasync on every voter), at most
//! `MAX_COMMANDS_PER_PROPOSAL`. At most `MAX_PROPOSALS_IN_FLIGHT` proposals are written at
//! once: enough that the leader's next append overlaps the followers' sync of the previous
//! one, few enough that commands arriving meanwhile wait and form the next batch. Each
//! command still gets its own answer, sent once its entry is committed and applied, so an
//! answered command is on disk on a majority exactly as before.
//!
//! Proposals enter Raft in the order the commands were stamped (one task, FIFO queue), so
//! stamps never go backwards in the log.

use std::sync::Arc;
use std::time::Instant;

use openraft::error::ClientWriteError;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::actors::messages::{Committed, ProposeError};
use crate::replication::{GavelRaft, Proposal};
use crate::telemetry::Metrics;
use gavel_kernel::Envelope;

/// Most commands in one log entry. A command's body is at most `api::MAX_BODY_BYTES`
/// (64 KiB), so an entry stays far below the peer link's 16 MiB frame.
pub const MAX_COMMANDS_PER_PROPOSAL: usize = 128;

/// Most proposals submitted to Raft and not yet answered.
pub const MAX_PROPOSALS_IN_FLIGHT: usize = 2;

/// Commands waiting for a proposal; a full queue makes proposers wait (backpressure).
const QUEUE_CAPACITY: usize = 8192;

type Answer = oneshot::Sender<Result<Committed, ProposeError>>;

/// The leader's group-commit queue; cheap to clone.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<(Envelope, Answer)>,
}

impl Proposer {
    /// Starts the batching task on the current runtime; it ends when every `Proposer`
    /// clone is dropped.
    pub fn start(raft: GavelRaft, metrics: Arc<Metrics>) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(raft, metrics, receiver));
        Proposer { queue }
    }

    /// Queues a stamped command now (in call order) and returns the future of its answer,
    /// once its entry is committed and applied here.
    pub fn propose(
        &self,
        envelope: Envelope,
    ) -> impl std::future::Future<Output = Result<Committed, ProposeError>> + 'static {
        let (answer, answered) = oneshot::channel();
        // `try_send` keeps the call order; only a full queue waits, in a task of its own.
        let queued = match self.queue.try_send((envelope, answer)) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(item)) => Some((self.queue.clone(), item)),
            Err(mpsc::error::TrySendError::Closed((_, answer))) => {
                let _ = answer.send(Err(stopped()));
                None
            }
        };
        async move {
            if let Some((queue, item)) = queued {
                if let Err(mpsc::error::SendError((_, answer))) = queue.send(item).await {
                    let _ = answer.send(Err(stopped()));
                }
            }
            answered.await.unwrap_or_else(|_| Err(stopped()))
        }
    }
}

fn stopped() -> ProposeError {
    ProposeError::Fatal("the proposer stopped".to_string())
}

async fn run(
    raft: GavelRaft,
    metrics: Arc<Metrics>,
    mut receiver: mpsc::Receiver<(Envelope, Answer)>,
) {
    let in_flight = Arc::new(Semaphore::new(MAX_PROPOSALS_IN_FLIGHT));
    loop {
        // Waiting for a slot first lets commands pile up into the next batch.
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = receiver.recv().await else {
            return;
        };
        let mut envelopes = Vec::with_capacity(receiver.len().min(MAX_COMMANDS_PER_PROPOSAL) + 1);
        let mut answers = Vec::with_capacity(envelopes.capacity());
        let (envelope, answer) = first;
        envelopes.push(envelope);
        answers.push(answer);
        while envelopes.len() < MAX_COMMANDS_PER_PROPOSAL {
            match receiver.try_recv() {
                Ok((envelope, answer)) => {
                    envelopes.push(envelope);
                    answers.push(answer);
                }
                Err(_) => break,
            }
        }
        metrics.proposal_commands.observe(envelopes.len() as f64);
        let started = Instant::now();
        let written = match raft
            .client_write_ff(Proposal {
                envelopes: envelopes.into(),
            })
            .await
        {
            Ok(written) => written,
            Err(fatal) => {
                answer_all(answers, Err(ProposeError::Fatal(fatal.to_string())));
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let response = written.await;
            metrics
                .commit_latency_seconds
                .observe(started.elapsed().as_secs_f64());
            drop(slot);
            match response {
                Ok(Ok(written)) => {
                    let log_index = written.log_id.index;
                    let results = written.data.results;
                    if results.len() != answers.len() {
                        let error = ProposeError::Fatal(format!(
                            "log entry {log_index} answered {} results for {} commands",
                            results.len(),
                            answers.len()
                        ));
                        answer_all(answers, Err(error));
                        return;
                    }
                    for (answer, outcome) in answers.into_iter().zip(results) {
                        let _ = answer.send(Ok(Committed { outcome, log_index }));
                    }
                }
                Ok(Err(ClientWriteError::ForwardToLeader(forward))) => answer_all(
                    answers,
                    Err(ProposeError::NotLeader {
                        leader_id: forward.leader_id,
                    }),
                ),
                Ok(Err(other)) => answer_all(answers, Err(ProposeError::Fatal(other.to_string()))),
                Err(_) => answer_all(answers, Err(stopped())),
            }
        });
    }
}

fn answer_all(answers: Vec<Answer>, result: Result<Committed, ProposeError>) {
    for answer in answers {
        let _ = answer.send(result.clone());
    }
}

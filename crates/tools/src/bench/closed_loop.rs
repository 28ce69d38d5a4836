//! The closed-loop write load of `gavel bench bids`: N keep-alive HTTP/1.1 connections
//! (the raw client of `wire`), each sending its next write as soon as the previous one
//! was answered, against one server: Gavel's leader or etcd's.
//!
//! Each connection owns one `Stream` of writes (one auction, or one etcd key) that
//! turns a sequence number into a request and judges the answer; a write is retried
//! with the same request after an error, so every acknowledged write is a new committed
//! one. Only writes sent after the warm-up and acknowledged before the deadline count.
//! Bounded three ways: the deadline, a cap on the requests of the whole level, and a
//! timeout on every request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{timeout, Instant};

use super::wire::HttpConnection;

/// Longest wait for one answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an error before the retry, so a failing server is not spun on.
const ERROR_PAUSE: Duration = Duration::from_millis(20);

/// One HTTP request of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteRequest {
    pub path: String,
    pub token: Option<String>,
    pub body: String,
}

/// How the server answered one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A new committed write (Gavel: 201 with a receipt; etcd: 200 with a header).
    Acknowledged,
    /// The original receipt of a retried request (Gavel: 200): committed before.
    Replayed,
    /// A refusal with this code: not committed; the stream moves on.
    Refused(String),
    /// No usable answer (5xx, unexpected status): retried.
    Failed(String),
}

/// The writes of one connection: the `sequence`th write, and how to read its answer.
pub trait Stream: Send + 'static {
    fn request(&self, sequence: u64) -> WriteRequest;
    fn judge(&self, status: u16, body: &[u8]) -> Answer;
}

/// One level of the load.
#[derive(Debug, Clone)]
pub struct LevelPlan {
    pub address: SocketAddr,
    pub warmup: Duration,
    pub measure: Duration,
    /// Requests of the whole level, over every connection, retries included.
    pub max_requests: u64,
}

/// What one level measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LevelOutcome {
    pub connections: usize,
    /// Latencies of the counted acknowledged writes, in microseconds, ascending.
    pub latencies_us: Vec<u64>,
    /// The measured window: from the end of the warm-up to the deadline, or to the last
    /// answer if the request cap stopped the level earlier.
    pub window: Duration,
    pub requests: u64,
    pub replayed: u64,
    pub refused: u64,
    pub failed: u64,
    pub first_problem: Option<String>,
    pub capped: bool,
}

impl LevelOutcome {
    /// Acknowledged writes per second in the measured window.
    pub fn per_second(&self) -> f64 {
        match self.window.as_secs_f64() {
            seconds if seconds > 0.0 => self.latencies_us.len() as f64 / seconds,
            _ => 0.0,
        }
    }
}

struct Shared {
    plan: LevelPlan,
    measure_from: Instant,
    deadline: Instant,
    requests: AtomicU64,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    replayed: u64,
    refused: u64,
    failed: u64,
    first_problem: Option<String>,
    capped: bool,
    last_answer: Option<Instant>,
}

/// Runs one connection per stream until the deadline or the request cap.
pub async fn run_level<S: Stream>(plan: LevelPlan, streams: Vec<S>) -> LevelOutcome {
    let connections = streams.len();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        measure_from: start + plan.warmup,
        deadline: start + plan.warmup + plan.measure,
        plan,
        requests: AtomicU64::new(0),
    });
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|stream| tokio::spawn(connection(shared.clone(), stream)))
        .collect();
    let mut outcome = LevelOutcome {
        connections,
        ..LevelOutcome::default()
    };
    let mut last_answer = shared.measure_from;
    for task in tasks {
        let tally = match task.await {
            Ok(tally) => tally,
            Err(error) => Tally {
                failed: 1,
                first_problem: Some(format!("a connection task failed: {error}")),
                ..Tally::default()
            },
        };
        outcome.latencies_us.extend(tally.latencies_us);
        outcome.replayed += tally.replayed;
        outcome.refused += tally.refused;
        outcome.failed += tally.failed;
        outcome.capped |= tally.capped;
        outcome.first_problem = outcome.first_problem.or(tally.first_problem);
        last_answer = last_answer.max(tally.last_answer.unwrap_or(last_answer));
    }
    outcome.latencies_us.sort_unstable();
    outcome.requests = shared.requests.load(Ordering::SeqCst);
    let window_end = match outcome.capped {
        true => last_answer.min(shared.deadline),
        false => shared.deadline,
    };
    outcome.window = window_end.saturating_duration_since(shared.measure_from);
    outcome
}

async fn connection<S: Stream>(shared: Arc<Shared>, stream: S) -> Tally {
    let mut http = HttpConnection::new(shared.plan.address);
    let mut tally = Tally::default();
    let mut sequence = 0_u64;
    while Instant::now() < shared.deadline {
        if shared.requests.fetch_add(1, Ordering::SeqCst) >= shared.plan.max_requests {
            tally.capped = true;
            break;
        }
        let request = stream.request(sequence);
        let sent = Instant::now();
        let answer = timeout(
            REQUEST_TIMEOUT,
            http.send(
                "POST",
                &request.path,
                request.token.as_deref(),
                Some(&request.body),
            ),
        )
        .await;
        let received = Instant::now();
        let answer = match answer {
            Ok(Ok((status, body))) => stream.judge(status, &body),
            Ok(Err(error)) => Answer::Failed(format!("{}: {error}", request.path)),
            Err(_) => Answer::Failed(format!("{}: no answer within 10 s", request.path)),
        };
        match answer {
            Answer::Acknowledged => {
                sequence += 1;
                if sent >= shared.measure_from && received <= shared.deadline {
                    tally
                        .latencies_us
                        .push((received - sent).as_micros() as u64);
                    tally.last_answer = Some(received);
                }
            }
            Answer::Replayed => {
                sequence += 1;
                tally.replayed += 1;
            }
            Answer::Refused(code) => {
                sequence += 1;
                tally.refused += 1;
                tally
                    .first_problem
                    .get_or_insert(format!("refused: {code}"));
            }
            Answer::Failed(problem) => {
                tally.failed += 1;
                tally.first_problem.get_or_insert(problem);
                http.close();
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
    tally
}

/// The nearest-rank `quantile` (0 < q <= 1) of ascending values.
pub fn quantile(sorted: &[u64], quantile: f64) -> Option<u64> {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=1000).collect();
        assert_eq!(quantile(&values, 0.5), Some(500));
        assert_eq!(quantile(&values, 0.99), Some(990));
        assert_eq!(quantile(&values, 0.999), Some(999));
        assert_eq!(quantile(&[7], 0.999), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }

    /// Answers every request on every connection with `201 {"ok":true}`.
    async fn answering_server() -> SocketAddr {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut socket = BufReader::new(socket);
                    loop {
                        let mut length = 0;
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if let Some(value) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                length = value.trim().parse().unwrap_or(0);
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0; length];
                        if socket.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let answer =
                            "HTTP/1.1 201 Created\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";
                        if socket.get_mut().write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        address
    }

    struct Counting;

    impl Stream for Counting {
        fn request(&self, sequence: u64) -> WriteRequest {
            WriteRequest {
                path: "/write".to_string(),
                token: None,
                body: format!("{{\"sequence\":{sequence}}}"),
            }
        }

        fn judge(&self, status: u16, body: &[u8]) -> Answer {
            match (status, body) {
                (201, b"{\"ok\":true}") => Answer::Acknowledged,
                _ => Answer::Failed(format!("{status}")),
            }
        }
    }

    #[test]
    fn a_level_stops_at_its_request_cap_long_before_its_deadline() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(async {
            let plan = LevelPlan {
                address: answering_server().await,
                warmup: Duration::ZERO,
                measure: Duration::from_secs(30),
                max_requests: 200,
            };
            run_level(plan, (0..4).map(|_| Counting).collect::<Vec<_>>()).await
        });
        assert!(outcome.capped);
        assert_eq!(
            outcome.latencies_us.len(),
            200,
            "every request below the cap acknowledged"
        );
        assert_eq!(outcome.failed, 0, "{:?}", outcome.first_problem);
        assert!(
            outcome.window < Duration::from_secs(10),
            "window {:?}",
            outcome.window
        );
        assert!(outcome.per_second() > 0.0);
    }

    #[test]
    fn throughput_is_counted_acknowledgements_over_the_window() {
        let outcome = LevelOutcome {
            latencies_us: vec![1; 500],
            window: Duration::from_secs(10),
            ..LevelOutcome::default()
        };
        assert_eq!(outcome.per_second(), 50.0);
        assert_eq!(LevelOutcome::default().per_second(), 0.0);
    }
}

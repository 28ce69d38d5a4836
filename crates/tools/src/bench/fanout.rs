//! `gavel bench fanout`: how fast one node pushes a bid to thousands of watchers of one
//! auction, and what each open event stream costs it in memory.
//!
//! For each watcher count the run starts a fresh `gavel serve` node on loopback (after
//! raising the open-file limit, which the node inherits), opens one auction and `N` event
//! streams `/api/v1/auctions/{id}/events` from async TCP clients, and waits until every
//! stream has delivered its first `auction` event. It reads the node's resident memory
//! (VmRSS in /proc/<pid>/status) before and after. Then it places `bids` bids one at a
//! time, each once the previous one reached every watcher (or `DELIVERY_LIMIT` passed),
//! and records on the bench process's one monotonic clock the time from sending a bid to
//! each watcher parsing its `bid` event. Reported: p50/p99/max over all (bid, watcher)
//! pairs; the earliest watcher's latency (the commit before the fan-out); the pairs never
//! delivered; the watchers the node cut off; memory per watcher; and the CPU time the node
//! and the bench spent per bid, because on one machine the clients share its cores.
//!
//! Goal (docs/DESIGN.md decision 5, push instead of polling): 10,000 watchers, p99 ≤ 100 ms.
//! Also here, shared with `requests`: the event-stream reader and the process helpers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};

use super::requests::{this_executable, BenchNode, Streams, INCREMENT, START_PRICE};
use super::wire::{read_chunk_into, read_head};
use gavel_testkit::local::{check_interrupt, now_ms, Interrupt};

/// Longest wait for one bid to reach every watcher before the next is sent.
const DELIVERY_LIMIT: Duration = Duration::from_secs(5);
/// Streams being opened at once (the rest wait), so the node's accept queue never overflows.
const OPENING_AT_ONCE: usize = 256;
/// Longest wait for one stream's response and first event.
const OPEN_LIMIT: Duration = Duration::from_secs(30);
/// Watchers that connect from one loopback source address (127.0.0.1, then 127.0.0.2, …):
/// one source address to the node's one port has about 28,000 ephemeral ports, so
/// 50,000 watchers need two or more.
const WATCHERS_PER_SOURCE: usize = 16_000;

/// The loopback source address of watcher `index` (0-based).
fn source_address(index: usize) -> std::net::IpAddr {
    let host = 1 + index / WATCHERS_PER_SOURCE;
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, host.min(254) as u8))
}

/// `gavel bench fanout`: bid-to-watcher latency and memory per event-stream watcher.
#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    /// Watchers of one auction per level, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 5_000, 10_000])]
    pub watchers: Vec<usize>,
    /// Bids per level, placed one at a time.
    #[arg(long, default_value_t = 50)]
    pub bids: usize,
    /// Pause after a bid has reached every watcher, before the next.
    #[arg(long, default_value_t = 20)]
    pub gap_ms: u64,
    /// Where the run's directory (node config, data, log) goes; default the temporary
    /// directory, removed after the run.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The gavel executable that runs the node; default this one.
    #[arg(long, value_name = "FILE", default_value_os_t = this_executable())]
    pub binary: PathBuf,
    /// Which listener the watchers connect to: the node's events listener, as the pages
    /// do when the node has one, or the public listener.
    #[arg(long, value_enum, default_value_t = Streams::Events)]
    pub streams: Streams,
}

/// What one level measured.
#[derive(Default)]
struct Level {
    watchers: usize,
    ready: usize,
    failed: usize,
    cut_off: usize,
    latencies_us: Vec<u64>,
    /// Per bid, the earliest watcher's latency.
    first_watcher_us: Vec<u64>,
    undelivered: usize,
    rss_kib: [u64; 3],
    opening: Duration,
    cpu_node: Duration,
    cpu_bench: Duration,
    first_failure: Option<String>,
}

/// What one watcher saw: when each bid's event arrived (index: the bid's seq).
struct WatcherReport {
    arrived: Vec<Option<Instant>>,
    ready: bool,
    cut_off: bool,
    failure: Option<String>,
}

/// Runs every level on a fresh node, prints the table, stops every node.
pub fn run_fanout(args: FanoutArgs) -> anyhow::Result<()> {
    let most = args.watchers.iter().copied().max().unwrap_or(0);
    if most == 0 || args.watchers.contains(&0) || args.bids == 0 {
        bail!("--watchers needs one or more counts, each 1 or more, and --bids 1 or more");
    }
    let open_files = raise_open_files(most as u64 + 1024)?;
    let _interrupt = Interrupt::install();
    let (directory, temporary) = run_directory(args.data_dir.as_ref(), "fanout")?;
    println!(
        "gavel bench fanout: watchers {:?}, {} bids per level, on the {} listener, node {}; open files {open_files}",
        args.watchers,
        args.bids,
        args.streams,
        args.binary.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let progress = progress_bar(args.watchers.len() as u64, "fanout");
    let mut levels = Vec::new();
    for &watchers in &args.watchers {
        let level_directory = directory.join(format!("watchers-{watchers}"));
        let level = measure(&runtime, &args, watchers, &level_directory, &progress)?;
        progress.println(row(&level));
        levels.push(level);
        progress.inc(1);
    }
    progress.finish_and_clear();
    println!("\n{HEADER}");
    for level in &levels {
        println!("{}", row(level));
    }
    println!("goals: every bid to every watcher; 10,000 watchers p99 ≤ 30 ms; 50,000 watchers ≤ 6 KiB of node memory per watcher");
    for level in &levels {
        let (watchers, opening) = (level.watchers, level.opening.as_secs_f64());
        println!("{watchers} watchers: all streams open after {opening:.1} s");
        if let Some(failure) = &level.first_failure {
            println!(
                "{watchers} watchers: {} failed; the first: {failure}",
                level.failed
            );
        }
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&directory);
    }
    Ok(())
}

/// The table, in Markdown.
const HEADER: &str = "| watchers | ready | failed | cut off | first watcher ms (p50) | p50 ms | p99 ms | max ms | undelivered | node RSS MiB before / open / after bids | KiB per watcher | CPU ms per bid node / bench |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

fn row(level: &Level) -> String {
    let ms = |values: &[u64], p: f64| {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        percentile(&sorted, p).map_or("-".to_string(), |us| format!("{:.1}", us as f64 / 1000.0))
    };
    let [before, open, after] = level.rss_kib.map(|kib| kib as f64 / 1024.0);
    let per_watcher =
        level.rss_kib[1].saturating_sub(level.rss_kib[0]) as f64 / level.ready.max(1) as f64;
    let per_bid =
        |cpu: Duration| cpu.as_secs_f64() * 1000.0 / level.first_watcher_us.len().max(1) as f64;
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {before:.1} / {open:.1} / {after:.1} | {per_watcher:.1} | {:.1} / {:.1} |",
        level.watchers, level.ready, level.failed, level.cut_off, ms(&level.first_watcher_us, 50.0),
        ms(&level.latencies_us, 50.0), ms(&level.latencies_us, 99.0), ms(&level.latencies_us, 100.0),
        level.undelivered, per_bid(level.cpu_node), per_bid(level.cpu_bench)
    )
}

/// One level: a fresh node, `count` watchers, the bids; the node is stopped at the end.
fn measure(
    runtime: &tokio::runtime::Runtime,
    args: &FanoutArgs,
    count: usize,
    directory: &Path,
    progress: &ProgressBar,
) -> anyhow::Result<Level> {
    progress.set_message(format!("{count} watchers: starting the node"));
    let node = BenchNode::start(
        &args.binary,
        directory,
        (2, args.streams),
        Duration::from_secs(3_600),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let mut level = Level {
        watchers: count,
        ..Level::default()
    };
    level.rss_kib[0] = resident_kib(node.pid)?;

    let bids = args.bids;
    let shared = Arc::new(Shared {
        delivered: (0..=bids).map(|_| AtomicUsize::new(0)).collect(),
        settled: AtomicUsize::new(0),
        gone: AtomicUsize::new(0),
        opening: Semaphore::new(OPENING_AT_ONCE),
    });
    let (stop, stopped) = watch::channel(false);
    let path = format!("/api/v1/auctions/{}/events", node.auction_id);
    let opening = Instant::now();
    let handles: Vec<_> = (0..count)
        .map(|index| {
            runtime.spawn(watch_auction(
                source_address(index),
                node.streams_address,
                path.clone(),
                bids,
                shared.clone(),
                stopped.clone(),
            ))
        })
        .collect();
    let open_limit = OPEN_LIMIT + Duration::from_millis(count as u64 * 5);
    while shared.settled.load(Ordering::SeqCst) < count && opening.elapsed() < open_limit {
        check_interrupt()?;
        progress.set_message(format!(
            "{count} watchers: {} open",
            shared.settled.load(Ordering::SeqCst)
        ));
        std::thread::sleep(Duration::from_millis(20));
    }
    level.opening = opening.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    level.rss_kib[1] = resident_kib(node.pid)?;

    let agent = gavel_testkit::local::agent();
    let bid_url = format!(
        "{}/api/v1/auctions/{}/bids",
        node.public_url, node.auction_id
    );
    let mut sent_at: Vec<Option<Instant>> = vec![None; bids + 1];
    let (cpu_node, cpu_bench) = (cpu_time(&node.pid.to_string())?, cpu_time("self")?);
    for (seq, sent) in sent_at.iter_mut().enumerate().skip(1) {
        check_interrupt()?;
        progress.set_message(format!("{count} watchers: bid {seq}/{bids}"));
        let amount = START_PRICE + (seq as u64 - 1) * INCREMENT;
        let body = json!({"amount": amount, "request_id": format!("fanout-{}-{seq}", now_ms())});
        *sent = Some(Instant::now());
        let (status, receipt) = gavel_testkit::local::request(
            &agent,
            "POST",
            &bid_url,
            Some(&node.tokens[seq % 2]),
            Some(body),
        )
        .map_err(|error| anyhow!("POST {bid_url}: {error}"))?;
        if status != 201 || receipt["seq"].as_u64() != Some(seq as u64) {
            bail!("bid {seq} answered {status}: {receipt}");
        }
        let answered = Instant::now();
        while shared.delivered[seq].load(Ordering::SeqCst) + shared.gone.load(Ordering::SeqCst)
            < count
            && answered.elapsed() < DELIVERY_LIMIT
        {
            std::thread::sleep(Duration::from_micros(500));
        }
        std::thread::sleep(Duration::from_millis(args.gap_ms));
    }
    level.cpu_node = cpu_time(&node.pid.to_string())?.saturating_sub(cpu_node);
    level.cpu_bench = cpu_time("self")?.saturating_sub(cpu_bench);
    level.rss_kib[2] = resident_kib(node.pid)?;
    let _ = stop.send(true);
    let reports: Vec<WatcherReport> = runtime.block_on(async {
        let mut reports = Vec::with_capacity(handles.len());
        for handle in handles {
            if let Ok(Ok(report)) = tokio::time::timeout(Duration::from_secs(10), handle).await {
                reports.push(report);
            }
        }
        reports
    });
    node.stop();

    level.failed = count - reports.len();
    level.first_watcher_us = vec![u64::MAX; bids + 1];
    for report in reports {
        if !report.ready {
            level.failed += 1;
            level.first_failure = level.first_failure.take().or(report.failure);
            continue;
        }
        level.ready += 1;
        level.cut_off += report.cut_off as usize;
        for (seq, arrived) in report.arrived.iter().enumerate().skip(1) {
            let Some((sent, arrived)) = sent_at[seq].zip(*arrived) else {
                level.undelivered += 1;
                continue;
            };
            let latency_us = arrived.saturating_duration_since(sent).as_micros() as u64;
            level.latencies_us.push(latency_us);
            level.first_watcher_us[seq] = level.first_watcher_us[seq].min(latency_us);
        }
    }
    level.first_watcher_us.retain(|us| *us != u64::MAX);
    Ok(level)
}

/// The counters the watchers share with the bench's thread.
struct Shared {
    /// Per bid seq: how many watchers have it.
    delivered: Vec<AtomicUsize>,
    /// Watchers that have their first `auction` event, or failed to get it.
    settled: AtomicUsize,
    /// Watchers whose stream failed or ended: the bench stops waiting for them.
    gone: AtomicUsize,
    /// Permits to open a stream.
    opening: Semaphore,
}

/// One watcher: opens the stream, waits for its first `auction` event, then notes when
/// each `bid` event arrives, until `stopped` or the node ends the stream.
async fn watch_auction(
    source: std::net::IpAddr,
    address: SocketAddr,
    path: String,
    bids: usize,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) -> WatcherReport {
    let mut report = WatcherReport {
        arrived: vec![None; bids + 1],
        ready: false,
        cut_off: false,
        failure: None,
    };
    let permit = shared.opening.acquire().await;
    let opened = tokio::time::timeout(OPEN_LIMIT, async {
        let mut stream = EventStream::open_from(source, address, &path).await?;
        while let Some(event) = stream.next_event().await? {
            if event.name == "auction" {
                return Ok(stream);
            }
        }
        Err(std::io::Error::other(
            "the stream ended before its first auction event",
        ))
    })
    .await;
    drop(permit);
    shared.settled.fetch_add(1, Ordering::SeqCst);
    let failure = match opened {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "no auction event within {} s",
            OPEN_LIMIT.as_secs()
        )),
    };
    let mut stream = match failure {
        Ok(stream) => stream,
        Err(failure) => {
            report.failure = Some(failure);
            shared.gone.fetch_add(1, Ordering::SeqCst);
            return report;
        }
    };
    report.ready = true;
    loop {
        tokio::select! {
            event = stream.next_event() => match event {
                Ok(Some(event)) if event.name == "bid" => {
                    let arrived = Instant::now();
                    let seq = event.id.unwrap_or(0) as usize;
                    if let Some(slot @ None) = report.arrived.get_mut(seq) {
                        *slot = Some(arrived);
                        shared.delivered[seq].fetch_add(1, Ordering::SeqCst);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    report.cut_off = true;
                    shared.gone.fetch_add(1, Ordering::SeqCst);
                    return report;
                }
            },
            _ = stopped.changed() => return report,
        }
    }
}

/// One server-sent event: its name (`bid`, `auction`, `closed`), id and data.
pub(super) struct ServerEvent {
    pub name: String,
    pub id: Option<u64>,
    pub data: Vec<u8>,
}

/// An open `text/event-stream` response, read event by event.
pub(super) struct EventStream {
    stream: BufReader<TcpStream>,
    chunked: bool,
    /// Body bytes read; those from `returned` on are not yet returned as events.
    pending: Vec<u8>,
    /// How many bytes of `pending` were returned as events: they are dropped only before
    /// the next read, so a write of many events costs one move, not one per event.
    returned: usize,
}

impl EventStream {
    /// Connects and sends GET `path`; an error unless the node answers 200.
    pub(super) async fn open(address: SocketAddr, path: &str) -> std::io::Result<EventStream> {
        let connected = TcpStream::connect(address).await?;
        Self::request(BufReader::with_capacity(2048, connected), address, path).await
    }

    /// As `open`, connecting from the loopback address `source`.
    pub(super) async fn open_from(
        source: std::net::IpAddr,
        address: SocketAddr,
        path: &str,
    ) -> std::io::Result<EventStream> {
        if !source.is_loopback() || !address.ip().is_loopback() {
            return Err(std::io::Error::other(
                "event streams are opened on loopback only",
            ));
        }
        let socket = tokio::net::TcpSocket::new_v4()?;
        // The port is chosen at connect, for the whole address pair, as a plain connect
        // does: bound alone, ports in TIME_WAIT from an earlier level or run would be
        // out of reach and the ephemeral range would run out.
        let no_port: libc::c_int = 1;
        // SAFETY: a valid socket and an int option of the right size.
        let set = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                std::ptr::addr_of!(no_port).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if set != 0 {
            return Err(std::io::Error::last_os_error());
        }
        socket.bind(SocketAddr::new(source, 0))?;
        let connected = socket.connect(address).await?;
        Self::request(BufReader::with_capacity(2048, connected), address, path).await
    }

    /// Sends GET `path` on the connected `stream`; an error unless the node answers 200.
    async fn request(
        mut stream: BufReader<TcpStream>,
        address: SocketAddr,
        path: &str,
    ) -> std::io::Result<EventStream> {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n");
        stream.get_mut().write_all(request.as_bytes()).await?;
        let head = read_head(&mut stream).await?;
        if head.status != 200 {
            return Err(std::io::Error::other(format!(
                "the event stream answered {}",
                head.status
            )));
        }
        Ok(EventStream {
            stream,
            chunked: head.chunked,
            pending: Vec::new(),
            returned: 0,
        })
    }

    /// The next event (comments such as `: keep-alive` skipped), or `None` once the node
    /// has ended the stream.
    pub(super) async fn next_event(&mut self) -> std::io::Result<Option<ServerEvent>> {
        loop {
            if let Some(end) = blank_line(&self.pending[self.returned..]) {
                let frame = self.returned..self.returned + end;
                self.returned += end + 2;
                match parse_event(&self.pending[frame]) {
                    Some(event) => return Ok(Some(event)),
                    None => continue,
                }
            }
            self.pending.drain(..self.returned);
            self.returned = 0;
            let more = if self.chunked {
                read_chunk_into(&mut self.stream, &mut self.pending).await?
            } else {
                let buffered = self.stream.fill_buf().await?;
                let length = buffered.len();
                self.pending.extend_from_slice(buffered);
                self.stream.consume(length);
                length > 0
            };
            if !more {
                return Ok(None);
            }
        }
    }
}

/// Where the first empty line (`\n\n`) of `bytes` begins.
fn blank_line(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = bytes[from..].iter().position(|byte| *byte == b'\n') {
        let at = from + offset;
        if bytes.get(at + 1) == Some(&b'\n') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The event in one frame's lines, or `None` for a frame of comments only.
fn parse_event(frame: &[u8]) -> Option<ServerEvent> {
    let mut event = ServerEvent {
        name: "message".to_string(),
        id: None,
        data: Vec::new(),
    };
    let mut has_field = false;
    for line in frame.split(|byte| *byte == b'\n') {
        if let Some(name) = line.strip_prefix(b"event: ") {
            event.name = String::from_utf8_lossy(name).into_owned();
            has_field = true;
        } else if let Some(data) = line.strip_prefix(b"data: ") {
            event.data.extend_from_slice(data);
            has_field = true;
        } else if let Some(id) = line.strip_prefix(b"id: ") {
            event.id = std::str::from_utf8(id)
                .ok()
                .and_then(|id| id.trim().parse().ok());
        }
    }
    has_field.then_some(event)
}

/// A progress bar over `length` steps, drawn only on a terminal.
pub(super) fn progress_bar(length: u64, name: &str) -> ProgressBar {
    let progress = ProgressBar::new(length);
    let template = format!("{{spinner}} {name} {{pos}}/{{len}} [{{bar:30}}] {{elapsed}} {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        progress.set_style(style.progress_chars("=> "));
    }
    progress.enable_steady_tick(Duration::from_millis(200));
    progress
}

/// Raises this process's open-file limit (soft, and hard if allowed) to at least
/// `wanted`; children inherit it. The soft limit now in force; an error if below `wanted`.
pub(super) fn raise_open_files(wanted: u64) -> anyhow::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        bail!(
            "getrlimit(RLIMIT_NOFILE): {}",
            std::io::Error::last_os_error()
        );
    }
    if limit.rlim_cur >= wanted {
        return Ok(limit.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: limit.rlim_max.max(wanted),
    };
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return Ok(wanted);
    }
    bail!(
        "the open-file limit is {} (hard {}) and cannot be raised to {wanted}: raise `ulimit -n`",
        limit.rlim_cur,
        limit.rlim_max
    )
}

/// A fresh directory for one run under `data_dir` or the temporary directory, and
/// whether it is temporary.
pub(super) fn run_directory(
    data_dir: Option<&PathBuf>,
    name: &str,
) -> anyhow::Result<(PathBuf, bool)> {
    let parent = data_dir.cloned().unwrap_or_else(std::env::temp_dir);
    let run = format!("gavel-bench-{name}-{}-{}", std::process::id(), now_ms());
    let directory = std::path::absolute(parent.join(run)).context("cannot resolve --data-dir")?;
    std::fs::create_dir_all(&directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    Ok((directory, data_dir.is_none()))
}

/// The nearest-rank `p`th percentile of an ascending slice.
pub(super) fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// The pid of this process's child whose command line holds `argument` (a node's config
/// path, unique to the run).
pub(super) fn child_pid(argument: &Path) -> anyhow::Result<u32> {
    let wanted = argument.as_os_str().as_encoded_bytes();
    for entry in std::fs::read_dir("/proc")
        .context("cannot read /proc")?
        .flatten()
    {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let command_line = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if command_line
            .split(|byte| *byte == 0)
            .any(|part| part == wanted)
            && status_field(pid, "PPid:").is_some_and(|parent| parent == std::process::id() as u64)
        {
            return Ok(pid);
        }
    }
    bail!("no child process runs with {}", argument.display())
}

/// A numeric field of /proc/<pid>/status (such as `VmRSS:` in kB).
fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let value = status.lines().find_map(|line| line.strip_prefix(name))?;
    value.trim().trim_end_matches("kB").trim().parse().ok()
}

pub(super) fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    status_field(pid, "VmRSS:").ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// User plus system CPU time of `/proc/<process>` (a pid or `self`), all its threads.
pub(super) fn cpu_time(process: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat"))
        .with_context(|| format!("cannot read /proc/{process}/stat"))?;
    // The fields after the command name, which is in parentheses and may hold spaces;
    // utime and stime are the 12th and 13th of them.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = fields
        .iter()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_micros(ticks * 1_000_000 / per_second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchers_are_spread_over_loopback_source_addresses() {
        assert_eq!(source_address(0).to_string(), "127.0.0.1");
        assert_eq!(
            source_address(WATCHERS_PER_SOURCE - 1).to_string(),
            "127.0.0.1"
        );
        assert_eq!(source_address(WATCHERS_PER_SOURCE).to_string(), "127.0.0.2");
        assert_eq!(source_address(49_999).to_string(), "127.0.0.4");
    }

    /// A node's answer: a stream's head, then `chunks` as HTTP chunks, then the end.
    async fn serve_once(chunks: Vec<String>) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await.unwrap();
            let mut answer = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".to_string();
            for chunk in chunks {
                answer.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
            }
            answer.push_str("0\r\n\r\n");
            socket.write_all(answer.as_bytes()).await.unwrap();
        });
        address
    }

    #[tokio::test]
    async fn events_come_out_in_order_however_the_writes_cut_them() {
        let frames: Vec<String> = (1..=300)
            .map(|seq| format!("id: {seq}\nevent: bid\ndata: {{\"seq\":{seq}}}\n\n"))
            .collect();
        let all = frames.concat();
        // One write of 200 events, a comment, then the rest cut in the middle of a frame.
        let cut = all.len() - 7;
        let first: String = frames[..200].concat();
        let chunks = vec![
            first.clone(),
            ": keep-alive\n\n".to_string(),
            all[first.len()..cut].to_string(),
            all[cut..].to_string(),
        ];
        let address = serve_once(chunks).await;
        let mut stream = EventStream::open(address, "/events").await.unwrap();
        for seq in 1..=300u64 {
            let event = stream.next_event().await.unwrap().expect("an event");
            assert_eq!((event.name.as_str(), event.id), ("bid", Some(seq)));
            assert_eq!(event.data, format!("{{\"seq\":{seq}}}").into_bytes());
        }
        assert!(stream.next_event().await.unwrap().is_none(), "the end");
    }
}

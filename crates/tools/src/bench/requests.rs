//! `gavel bench requests`: how many HTTP requests a bidder's page sends, the old way and
//! Gavel's way, counted as real traffic to a real node.
//!
//! The old trading system's page asked the server for its time every 500 ms; its fix
//! (fetch the time once, then every 5 minutes, and count locally) cut the requests by
//! 67.5% with 50/500/1000/2000 virtual users (the old system's published report). For each user count this
//! benchmark runs both pages, one after the other, for `duration_s` each against one
//! `gavel serve` node on loopback:
//! - the old page: every `poll_ms`, GET `/api/v1/time` and GET `/api/v1/auctions/{id}`;
//! - Gavel's page (docs/DESIGN.md decision 5, `crates/node/src/api/assets/bidder/bidder.js`): 2 samples of
//!   `/api/v1/time` to sync its clock, one event stream `/api/v1/auctions/{id}/events?history=100`
//!   kept open (one request), one sample again when `resync_s` pass without an accepted
//!   bid confirming the clock (the page looks every 15 s) and after a dropped stream is
//!   reopened;
//!
//! and on both, a quote after every think time, at the bid the page believes acceptable.
//! Every virtual user is a bidder of its own on a keep-alive connection, with the same
//! quote instants on both pages (seeded by its index). A request is counted when the
//! bench writes it to the node; beside the counts: the bids the node accepted, the
//! errors, and the p99 of the bids' answer times (what the load does to bidding).
//! By default the think time is shortened (3 s for the old 30 s) so that a one-minute run
//! holds 20 quotes; the polling and re-sync periods are never shortened.
//!
//! Shared with `fanout`: `BenchNode` (a node with an auction and bidders) and the raw
//! HTTP/1.1 client (`HttpConnection`); `fanout` holds the event-stream reader.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::time::{sleep_until, timeout, timeout_at, Instant};

use super::fanout::{
    child_pid, cpu_time, percentile, progress_bar, raise_open_files, run_directory, EventStream,
};
use super::wire::HttpConnection;
use gavel_testkit::local::{check_interrupt, now_ms, Interrupt, LocalCluster};

/// Longest wait for one HTTP answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Samples of `/api/v1/time` of the page's first clock sync, as `cluster.js` takes them.
const SYNC_SAMPLES: u64 = 2;
/// How often the page looks whether its clock needs a re-sync (`bidder.js`: 15 s).
const CLOCK_CHECK: Duration = Duration::from_secs(15);
/// Samples of every later sync (the periodic one, and after a dropped stream).
const RESYNC_SAMPLES: u64 = 1;
/// The page waits this long before it reopens a dropped event stream.
const STREAM_REOPEN_PAUSE: Duration = Duration::from_secs(1);
/// The first seconds of a run, when every page opens its stream and is sent the sale's
/// history: bids sent after it are reported apart too.
const CONNECT_WINDOW: Duration = Duration::from_secs(10);
/// A cap on event-stream openings per user and run.
const MAX_STREAM_OPENS: u64 = 20;
pub(super) const START_PRICE: u64 = 1_000_000;
pub(super) const INCREMENT: u64 = 10_000;

/// `gavel bench requests`: requests per user of the old polling page and of Gavel's page.
#[derive(Debug, Clone, clap::Args)]
pub struct RequestsArgs {
    /// Virtual users per level, comma-separated (the old system's test: 50,500,1000,2000).
    #[arg(long, value_delimiter = ',', default_values_t = [50, 500, 1000, 2000])]
    pub users: Vec<usize>,
    /// Length of each run (one per page and level), in seconds.
    #[arg(long, default_value_t = 60)]
    pub duration_s: u64,
    /// Think time between a user's quotes. The old test used 30 s; 3 s puts 20 quotes
    /// into a one-minute run. The polling and re-sync periods are not shortened.
    #[arg(long, default_value_t = 3_000)]
    pub think_ms: u64,
    /// Most quotes per user and run (the old test: 100).
    #[arg(long, default_value_t = 100)]
    pub quotes: u32,
    /// The old page's polling period for the time and the auction.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
    /// Gavel's page re-syncs its clock this often (bidder.js: 5 minutes).
    #[arg(long, default_value_t = 300)]
    pub resync_s: u64,
    /// Where the run's directory (node config, data, log) goes; default the temporary
    /// directory, removed after the run.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The gavel executable that runs the node; default this one.
    #[arg(long, value_name = "FILE", default_value_os_t = this_executable())]
    pub binary: PathBuf,
    /// Where Gavel's page opens its event stream: the node's events listener, as the page
    /// does when the node has one (the local cluster's nodes do), or the public listener.
    #[arg(long, value_enum, default_value_t = Streams::Events)]
    pub streams: Streams,
}

/// Which listener the benchmark's event streams go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Streams {
    /// `listen.events`: worker threads of their own, at a lower priority.
    Events,
    /// The public listener, whose workers also answer the bids.
    Public,
}

impl std::fmt::Display for Streams {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Streams::Events => "events",
            Streams::Public => "public",
        })
    }
}

/// The address of a node's `http://` URL.
fn loopback_address(url: &str) -> anyhow::Result<SocketAddr> {
    Ok(url.trim_start_matches("http://").parse()?)
}

pub(super) fn this_executable() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("gavel"))
}

/// One `gavel serve` node (its process stops when this is dropped) with one open
/// auction and `bidders` qualified, logged-in bidders.
pub(super) struct BenchNode {
    cluster: LocalCluster,
    pub pid: u32,
    pub address: SocketAddr,
    /// Where the benchmark opens its event streams (`--streams`).
    pub streams_address: SocketAddr,
    pub public_url: String,
    pub auction_id: String,
    pub tokens: Vec<String>,
}

impl BenchNode {
    pub(super) fn start(
        binary: &Path,
        directory: &Path,
        (bidders, streams): (usize, Streams),
        listing: Duration,
    ) -> anyhow::Result<BenchNode> {
        let mut placement = gavel_testkit::local::NodePlacement::loopback()?;
        if streams == Streams::Events {
            placement.events_port = Some(gavel_testkit::process::free_port()?);
        }
        let cluster = LocalCluster::start_placed(binary, directory, 1, &[placement], "")?;
        let pid = child_pid(&directory.join("node-1").join("gavel.toml"))?;
        let (leader, _) = cluster
            .wait_for_leader(Duration::from_secs(30))?
            .ok_or_else(|| anyhow!("the node elected no leader within 30 s"))?;
        let public_url = cluster.node(leader)?.public_url.clone();
        let address = loopback_address(&public_url).context("the node's public URL")?;
        if !address.ip().is_loopback() {
            bail!("the benchmark only talks to loopback, not {public_url}");
        }
        let streams_address = match &cluster.node(leader)?.events_url {
            Some(url) => loopback_address(url).context("the events listener")?,
            None => address,
        };
        let now = now_ms();
        let auction_id = format!("bench-{now}");
        let spec = json!({
            "id": auction_id, "title": "Benchmark parcel",
            "parcel": {"district": "benchmark", "area_m2": 10000, "use": "residential"},
            "start_price": START_PRICE, "increment": INCREMENT, "countdown_ms": 60_000,
            "listing_opens_at_ms": now, "listing_closes_at_ms": now + listing.as_millis() as u64,
        });
        cluster.control_expect(leader, "POST", "/control/v1/auctions", spec, &[200, 201])?;
        let agent = gavel_testkit::local::agent();
        let mut tokens = Vec::with_capacity(bidders);
        for index in 0..bidders {
            check_interrupt()?;
            let bidder_id = format!("bench-bidder-{index}");
            let secret = format!("secret-{:032x}", rand::random::<u128>());
            let registration = json!({"bidder_id": bidder_id, "name": bidder_id, "secret": secret});
            cluster.control_expect(leader, "POST", "/control/v1/bidders", registration, &[201])?;
            let qualifications = format!("/control/v1/auctions/{auction_id}/qualifications");
            cluster.control_expect(
                leader,
                "POST",
                &qualifications,
                json!({"bidder_id": bidder_id}),
                &[201],
            )?;
            let login = json!({"bidder_id": bidder_id, "secret": secret});
            let url = format!("{public_url}/api/v1/sessions");
            let (status, session) =
                gavel_testkit::local::request(&agent, "POST", &url, None, Some(login))
                    .map_err(|error| anyhow!("POST {url}: {error}"))?;
            match (status, session["token"].as_str()) {
                (201, Some(token)) => tokens.push(token.to_string()),
                _ => bail!("login of {bidder_id} answered {status}: {session}"),
            }
        }
        Ok(BenchNode {
            cluster,
            pid,
            address,
            streams_address,
            public_url,
            auction_id,
            tokens,
        })
    }

    /// Stops the node (SIGKILL; dropping a `BenchNode` does the same).
    pub(super) fn stop(self) {
        drop(self.cluster);
    }
}

/// What one run of one page measured, summed over its users.
#[derive(Default)]
struct Counts {
    reads: u64,
    streams: u64,
    bids: u64,
    bids_accepted: u64,
    errors: u64,
    stream_reopens: u64,
    polls_skipped: u64,
    bid_times_us: Vec<u64>,
    /// Those of the bids sent `CONNECT_WINDOW` or more after the run's start, once the
    /// pages' streams are open and their histories sent.
    settled_bid_times_us: Vec<u64>,
    first_error: Option<String>,
}

impl Counts {
    fn requests(&self) -> u64 {
        self.reads + self.streams + self.bids
    }

    fn add(&mut self, other: Counts) {
        self.reads += other.reads;
        self.streams += other.streams;
        self.bids += other.bids;
        self.bids_accepted += other.bids_accepted;
        self.errors += other.errors;
        self.stream_reopens += other.stream_reopens;
        self.polls_skipped += other.polls_skipped;
        self.bid_times_us.extend(other.bid_times_us);
        self.settled_bid_times_us.extend(other.settled_bid_times_us);
        self.first_error = self.first_error.take().or(other.first_error);
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }
}

/// The fixed facts of one run, shared by its users.
struct Plan {
    gavel_page: bool,
    address: SocketAddr,
    streams_address: SocketAddr,
    auction_path: String,
    start: Instant,
    deadline: Instant,
    think: Duration,
    poll: Duration,
    resync: Duration,
    quotes: u32,
}

/// What a page does at one instant, besides its event stream.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Poll,
    /// The first clock sync.
    SyncClock,
    /// A look whether the clock went unconfirmed for the re-sync period (then one sample).
    CheckClock,
    Quote,
}

/// Runs both pages at every user count against one node, prints the table, stops the node.
pub fn run_requests(args: RequestsArgs) -> anyhow::Result<()> {
    let most_users = args.users.iter().copied().max().unwrap_or(0);
    if most_users == 0 || args.users.contains(&0) {
        bail!("--users needs one or more counts, each 1 or more");
    }
    if args.duration_s == 0 || args.think_ms == 0 || args.poll_ms == 0 || args.resync_s == 0 {
        bail!("--duration-s, --think-ms, --poll-ms and --resync-s must be 1 or more");
    }
    let open_files = raise_open_files(most_users as u64 * 3 + 1024)?;
    let _interrupt = Interrupt::install();
    let (directory, temporary) = run_directory(args.data_dir.as_ref(), "requests")?;
    println!(
        "gavel bench requests: users {:?}, {} s per page, think {} ms, at most {} quotes, old page polls every {} ms, Gavel's re-syncs every {} s; streams on the {} listener; node {}; open files {open_files}",
        args.users, args.duration_s, args.think_ms, args.quotes, args.poll_ms, args.resync_s, args.streams, args.binary.display()
    );
    let runs = args.users.len() as u64 * 2;
    let listing = Duration::from_secs(runs * (args.duration_s + 30) + 3_600);
    let node = BenchNode::start(
        &args.binary,
        &directory,
        (most_users, args.streams),
        listing,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let progress = progress_bar(runs, "requests");
    let mut rows = Vec::new();
    let mut cpu_uses = Vec::new();
    for &users in &args.users {
        let mut pages = Vec::new();
        for gavel_page in [false, true] {
            check_interrupt()?;
            let name = if gavel_page {
                "Gavel's page"
            } else {
                "old page"
            };
            progress.set_message(format!("{users} users, {name}"));
            let start = Instant::now() + Duration::from_millis(200);
            let plan = Plan {
                gavel_page,
                address: node.address,
                streams_address: node.streams_address,
                auction_path: format!("/api/v1/auctions/{}", node.auction_id),
                start,
                deadline: start + Duration::from_secs(args.duration_s),
                think: Duration::from_millis(args.think_ms),
                poll: Duration::from_millis(args.poll_ms),
                resync: Duration::from_secs(args.resync_s),
                quotes: args.quotes,
            };
            let before = CpuUse::now(node.pid)?;
            pages.push(runtime.block_on(run_page(plan, &node.tokens[..users]))?);
            cpu_uses.push((users, name, CpuUse::now(node.pid)?.since(&before)));
            progress.inc(1);
            std::thread::sleep(Duration::from_secs(2));
        }
        let gavel = pages
            .pop()
            .ok_or_else(|| anyhow!("no run of Gavel's page"))?;
        let old = pages
            .pop()
            .ok_or_else(|| anyhow!("no run of the old page"))?;
        progress.println(row(users, &old, &gavel));
        rows.push((users, old, gavel));
    }
    progress.finish_and_clear();
    println!("\n{HEADER}");
    for (users, old, gavel) in &rows {
        println!("{}", row(*users, old, gavel));
    }
    println!("the old system's fix cut requests by 67.5%; Gavel's goal is 99% or more");
    for (users, old, gavel) in &rows {
        for (name, counts) in [("old page", old), ("Gavel's page", gavel)] {
            let (errors, skipped) = (counts.errors, counts.polls_skipped);
            if let Some(error) = &counts.first_error {
                println!("{users} users, {name}: {errors} errors; the first: {error}");
            }
            if skipped > 0 {
                println!("{users} users, {name}: {skipped} polls skipped, a period late");
            }
            println!(
                "{users} users, {name}: bid p99 {} ms from {} s after the start (the streams open, the history sent)",
                p99_ms(&counts.settled_bid_times_us),
                CONNECT_WINDOW.as_secs()
            );
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |cpus| cpus.get());
    for (users, name, used) in &cpu_uses {
        println!("{users} users, {name}: {}", used.describe(cpus));
    }
    node.stop();
    if temporary {
        let _ = std::fs::remove_dir_all(&directory);
    }
    Ok(())
}

/// The CPU time the node and this load generator have used, and when.
struct CpuUse {
    node: Duration,
    bench: Duration,
    at: std::time::Instant,
}

impl CpuUse {
    fn now(node_pid: u32) -> anyhow::Result<CpuUse> {
        Ok(CpuUse {
            node: cpu_time(&node_pid.to_string())?,
            bench: cpu_time("self")?,
            at: std::time::Instant::now(),
        })
    }

    /// What was used between `earlier` and this.
    fn since(&self, earlier: &CpuUse) -> CpuUsed {
        CpuUsed {
            node: self.node.saturating_sub(earlier.node),
            bench: self.bench.saturating_sub(earlier.bench),
            wall: self.at.saturating_duration_since(earlier.at),
        }
    }
}

/// The CPU time the node and the load generator used over one run of a page.
struct CpuUsed {
    node: Duration,
    bench: Duration,
    wall: Duration,
}

impl CpuUsed {
    /// The CPU seconds of each, and their share of the machine's `cpus` over the run.
    fn describe(&self, cpus: usize) -> String {
        let wall = self.wall.as_secs_f64().max(0.001);
        let share = |used: Duration| 100.0 * used.as_secs_f64() / (wall * cpus as f64);
        format!(
            "CPU s node {:.1} ({:.0}% of {cpus} CPUs), load generator {:.1} ({:.0}%), over {wall:.1} s",
            self.node.as_secs_f64(),
            share(self.node),
            self.bench.as_secs_f64(),
            share(self.bench)
        )
    }
}

/// The table, in Markdown.
const HEADER: &str = "| users | requests/user old | requests/user Gavel | reduction | reads/user old | reads/user Gavel | reads reduction | bids/user old / Gavel | accepted bids old / Gavel | errors old / Gavel | bid p99 ms old / Gavel | stream reopens |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

fn row(users: usize, old: &Counts, gavel: &Counts) -> String {
    let per_user = |value: u64| value as f64 / users as f64;
    let reduction = |old: u64, new: u64| 100.0 * (1.0 - new as f64 / old.max(1) as f64);
    let p99_ms = |counts: &Counts| p99_ms(&counts.bid_times_us);
    let (old_reads, gavel_reads) = (old.reads + old.streams, gavel.reads + gavel.streams);
    format!(
        "| {users} | {:.1} | {:.1} | {:.2}% | {:.1} | {:.1} | {:.2}% | {:.1} / {:.1} | {} / {} | {} / {} | {} / {} | {} |",
        per_user(old.requests()), per_user(gavel.requests()), reduction(old.requests(), gavel.requests()),
        per_user(old_reads), per_user(gavel_reads), reduction(old_reads, gavel_reads),
        per_user(old.bids), per_user(gavel.bids), old.bids_accepted, gavel.bids_accepted, old.errors, gavel.errors, p99_ms(old), p99_ms(gavel), gavel.stream_reopens
    )
}

/// The 99th percentile of `times_us`, in ms, or "-" for none.
fn p99_ms(times_us: &[u64]) -> String {
    let mut sorted = times_us.to_vec();
    sorted.sort_unstable();
    percentile(&sorted, 99.0).map_or("-".to_string(), |us| format!("{:.1}", us as f64 / 1000.0))
}

/// All users of one run, one task each; their counts summed.
async fn run_page(plan: Plan, tokens: &[String]) -> anyhow::Result<Counts> {
    let plan = Arc::new(plan);
    let handles: Vec<_> = (0..tokens.len() as u64)
        .zip(tokens.iter().cloned())
        .map(|(index, token)| tokio::spawn(virtual_user(plan.clone(), index, token)))
        .collect();
    let mut total = Counts::default();
    for handle in handles {
        total.add(handle.await.context("a virtual user panicked")?);
    }
    Ok(total)
}

/// Instants from `first`, one `period` apart, before `deadline`.
fn every(first: Instant, period: Duration, deadline: Instant) -> impl Iterator<Item = Instant> {
    (0u32..)
        .map(move |number| first + period * number)
        .take_while(move |at| *at < deadline)
}

/// One user's page for the whole run. It opens within the first poll period; its first
/// quote falls within one think time after that.
async fn virtual_user(plan: Arc<Plan>, index: u64, token: String) -> Counts {
    let mut random = rand::rngs::StdRng::seed_from_u64(index);
    let opened = plan.start + plan.poll.mul_f64(random.gen());
    let first_quote = opened + plan.think.mul_f64(random.gen());
    let quotes = every(first_quote, plan.think, plan.deadline).take(plan.quotes as usize);
    let mut schedule: Vec<(Instant, Action)> = quotes.map(|at| (at, Action::Quote)).collect();
    let (period, action) = match plan.gavel_page {
        true => (CLOCK_CHECK, Action::CheckClock),
        false => (plan.poll, Action::Poll),
    };
    let times = every(opened, period, plan.deadline).enumerate();
    schedule.extend(times.map(|(number, at)| match (number, action) {
        (0, Action::CheckClock) => (at, Action::SyncClock),
        _ => (at, action),
    }));
    schedule.sort();
    let next_bid = AtomicU64::new(0);
    let (mut page, mut stream) = (Tab::new(plan.address), Tab::new(plan.address));
    let acting = page.act(&plan, &schedule, &token, &next_bid);
    let following = async {
        if plan.gavel_page {
            sleep_until(opened).await;
            stream.follow(&plan, &next_bid).await;
        }
    };
    let _ = timeout_at(plan.deadline + REQUEST_TIMEOUT * 2, async {
        tokio::join!(acting, following)
    })
    .await;
    page.counts.add(stream.counts);
    page.counts
}

/// One browser tab's keep-alive connection and what it has sent.
struct Tab {
    connection: HttpConnection,
    counts: Counts,
    /// When the page's clock was last synced or confirmed by a receipt.
    clock_confirmed: Instant,
}

impl Tab {
    fn new(address: SocketAddr) -> Tab {
        Tab {
            connection: HttpConnection::new(address),
            counts: Counts::default(),
            clock_confirmed: Instant::now(),
        }
    }

    /// The page's schedule: polls (old), clock syncs (Gavel) and quotes at the bid the
    /// page last learned to be acceptable.
    async fn act(
        &mut self,
        plan: &Plan,
        schedule: &[(Instant, Action)],
        token: &str,
        next_bid: &AtomicU64,
    ) {
        let bids_path = format!("{}/bids", plan.auction_path);
        for &(at, action) in schedule {
            sleep_until(at).await;
            let now = Instant::now();
            if now >= plan.deadline {
                return;
            }
            match action {
                // A poll a whole period late is skipped, as a busy page's timer would be.
                Action::Poll if now > at + plan.poll => self.counts.polls_skipped += 1,
                Action::Poll => {
                    self.get("/api/v1/time").await;
                    let view = self.get(&plan.auction_path).await;
                    learn_next_bid(next_bid, &view.unwrap_or(Value::Null));
                }
                Action::SyncClock => self.sync_clock(SYNC_SAMPLES).await,
                Action::CheckClock if now >= self.clock_confirmed + plan.resync => {
                    self.sync_clock(RESYNC_SAMPLES).await
                }
                Action::CheckClock => {}
                Action::Quote => {
                    let amount = next_bid.load(Ordering::Relaxed).max(START_PRICE);
                    let request_id = format!("{:032x}", rand::random::<u128>());
                    let body = json!({"amount": amount, "request_id": request_id}).to_string();
                    self.counts.bids += 1;
                    let started = Instant::now();
                    let receipt = self
                        .send("POST", &bids_path, Some(token), Some(&body))
                        .await;
                    let answered_us = started.elapsed().as_micros() as u64;
                    let answered = receipt.is_some().then_some(answered_us);
                    self.counts.bid_times_us.extend(answered);
                    if started >= plan.start + CONNECT_WINDOW {
                        self.counts.settled_bid_times_us.extend(answered);
                    }
                    if receipt.is_some_and(|receipt| receipt["seq"].is_u64()) {
                        // A new receipt confirms the page's clock (bidder.js, confirmClock).
                        self.clock_confirmed = Instant::now();
                        self.counts.bids_accepted += 1;
                        next_bid.fetch_max(amount + INCREMENT, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Gavel's page: one event stream kept open until the deadline; if the node ends it
    /// early, reopened after a pause, with a clock re-sync, as the page does.
    async fn follow(&mut self, plan: &Plan, next_bid: &AtomicU64) {
        // The bidder page asks for the newest 100 bids of the history (`HISTORY_AT_CONNECT`
        // in bidder.js), not every bid.
        let path = format!("{}/events?history=100", plan.auction_path);
        for _ in 0..MAX_STREAM_OPENS {
            self.counts.streams += 1;
            match timeout(
                REQUEST_TIMEOUT,
                EventStream::open(plan.streams_address, &path),
            )
            .await
            {
                Ok(Ok(mut stream)) => {
                    let mut connected = false;
                    loop {
                        tokio::select! {
                            event = stream.next_event() => match event {
                                // The history sent at connect is read, not parsed: the view
                                // after it carries the next minimum. Then the bids only.
                                // Parsing every history bid and view of 2,000 pages (a page
                                // does it on its own machine) would make the bench, not the
                                // node, the bottleneck.
                                Ok(Some(event)) if !connected && event.name == "bid" => {}
                                Ok(Some(event)) if !connected || event.name == "bid" => {
                                    connected = true;
                                    learn_next_bid(next_bid, &serde_json::from_slice(&event.data).unwrap_or(Value::Null));
                                }
                                Ok(Some(_)) => {}
                                Ok(None) | Err(_) => break,
                            },
                            _ = sleep_until(plan.deadline) => return,
                        }
                    }
                }
                Ok(Err(error)) => self.counts.error(format!("event stream: {error}")),
                Err(_) => self
                    .counts
                    .error("event stream: no answer within 10 s".to_string()),
            }
            if Instant::now() + STREAM_REOPEN_PAUSE >= plan.deadline {
                return;
            }
            self.counts.stream_reopens += 1;
            tokio::time::sleep(STREAM_REOPEN_PAUSE).await;
            self.sync_clock(RESYNC_SAMPLES).await;
        }
    }

    /// A clock sync: `samples` GETs of `/api/v1/time`, one after another.
    async fn sync_clock(&mut self, samples: u64) {
        for _ in 0..samples {
            self.get("/api/v1/time").await;
        }
        self.clock_confirmed = Instant::now();
    }

    async fn get(&mut self, path: &str) -> Option<Value> {
        self.counts.reads += 1;
        self.send("GET", path, None, None).await
    }

    /// One request; the answer's body as JSON. A refused bid (409) is an answer; no
    /// answer, a 5xx or any other status is an error.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Option<Value> {
        let answer = timeout(
            REQUEST_TIMEOUT,
            self.connection.send(method, path, token, body),
        );
        let failure = match answer.await {
            Ok(Ok((status, body))) => {
                if matches!(status, 200 | 201 | 409) {
                    return serde_json::from_slice(&body).ok();
                }
                format!("answered {status}: {}", String::from_utf8_lossy(&body))
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => "no answer within 10 s".to_string(),
        };
        self.connection.close();
        self.counts.error(format!("{method} {path}: {failure}"));
        None
    }
}

/// Raises the page's idea of the next acceptable bid from an AuctionView or a BidView.
fn learn_next_bid(next_bid: &AtomicU64, view: &Value) {
    if let Some(minimum) = view["minimum_next_bid"].as_u64() {
        next_bid.fetch_max(minimum, Ordering::Relaxed);
    } else if let Some(amount) = view["amount"].as_u64() {
        next_bid.fetch_max(amount.saturating_add(INCREMENT), Ordering::Relaxed);
    }
}

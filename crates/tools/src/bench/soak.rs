//! `gavel bench soak`: does a node stay flat however long it runs (docs/DESIGN.md decision 7)?
//!
//! It starts one real `gavel serve` node on loopback with a short janitor interval and
//! linger, registers a fixed pool of bidders once, then runs `--lifecycles` complete
//! auction lifecycles from `--concurrency` worker threads. One lifecycle: create an
//! auction whose listing opens now and closes after `--listing-ms`, qualify two bidders,
//! three alternating bids in the listing, then wait for the close: two bidders take it to
//! timed bidding, whose `--countdown-ms` passes with no bid, so it is sold (the Auction
//! actor's timer proposes both closes). The janitor later archives it.
//!
//! Every `--report-every` lifecycles it samples the node from outside: resident memory
//! (VmRSS in /proc/<pid>/status), live Auction actors and auctions in the live state
//! (from `GET /control/v1/janitor`), and the size of the data directory on disk. At the
//! end it prints each figure's last sample over the one after the first interval, against
//! the goal of 1.1×; the data directory also without `archive/`, the archive of closed
//! auctions, which grows with every sale by design (results are kept). Every wait is bounded (HTTP timeouts, `CLOSE_LIMIT`, `--time-limit-s`)
//! and it talks to 127.0.0.1 only.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use gavel::disk::disk_usage;
use serde_json::{json, Value};

use super::fanout::{child_pid, progress_bar, resident_kib, run_directory};
use super::requests::this_executable;
use gavel_testkit::local::{
    agent, check_interrupt, interrupted, now_ms, request, Interrupt, LocalCluster,
};

/// The goal: the last sample of each figure within this factor of the first.
pub const FLAT_GOAL: f64 = 1.1;
/// Longest wait for one auction to close after its deadline.
const CLOSE_LIMIT: Duration = Duration::from_secs(30);
/// A run with this many failed lifecycles in a row stops: the node is not serving.
const FAILURES_IN_A_ROW_LIMIT: u64 = 200;
const START_PRICE: u64 = 1_000_000;
const INCREMENT: u64 = 10_000;

/// `gavel bench soak`: auction lifecycles against one node; memory, actors and disk.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Complete auction lifecycles to run.
    #[arg(long, default_value_t = 100_000)]
    pub lifecycles: u64,
    /// Sample the node every this many finished lifecycles.
    #[arg(long, default_value_t = 10_000)]
    pub report_every: u64,
    /// Lifecycles running at once (one worker thread each).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Registered bidders, reused by every auction (two per auction).
    #[arg(long, default_value_t = 64)]
    pub bidders: usize,
    /// Listing length of each auction.
    #[arg(long, default_value_t = 600)]
    pub listing_ms: u64,
    /// Countdown of timed bidding; no bid comes in it, so it is how long after listing
    /// close the auction is sold.
    #[arg(long, default_value_t = 200)]
    pub countdown_ms: u64,
    /// The node's `janitor.interval_ms`.
    #[arg(long, default_value_t = 500)]
    pub janitor_interval_ms: u64,
    /// The node's `janitor.closed_auction_linger_ms`: closed auctions are archived after it.
    #[arg(long, default_value_t = 2_000)]
    pub linger_ms: u64,
    /// The node's `janitor.request_retention_ms`: bids' request_ids are forgotten after it.
    #[arg(long, default_value_t = 30_000)]
    pub request_retention_ms: u64,
    /// The node's `janitor.archive_retention_ms`: archived auctions are pruned this long
    /// after their close (0 keeps them all, and the archive grows with every sale).
    #[arg(long, default_value_t = 60_000)]
    pub archive_retention_ms: u64,
    /// Stop (and report what ran) after this long.
    #[arg(long, default_value_t = 7_200)]
    pub time_limit_s: u64,
    /// Where the run's directory (node config, data, log) goes; default the temporary
    /// directory, removed after the run.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The gavel executable that runs the node; default this one.
    #[arg(long, value_name = "FILE", default_value_os_t = this_executable())]
    pub binary: PathBuf,
}

/// One sample of the node.
#[derive(Debug, Clone)]
struct Sample {
    lifecycles: u64,
    elapsed: Duration,
    rss_kib: u64,
    live_actors: u64,
    state_auctions: u64,
    archived: u64,
    data_dir_bytes: u64,
    /// The part of it that is the archive of closed auctions (`<data_dir>/archive`).
    archive_bytes: u64,
    snapshot_index: Option<u64>,
    purged_index: Option<u64>,
}

/// What the workers share.
struct Run {
    control_url: String,
    public_url: String,
    admin_token: String,
    tokens: Vec<(String, String)>,
    args: SoakArgs,
    next: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    failed_in_a_row: AtomicU64,
    sold: AtomicU64,
    stop: AtomicBool,
    first_failure: Mutex<Option<String>>,
    deadline: Instant,
}

impl Run {
    fn fail(&self, message: String) {
        self.failed.fetch_add(1, Ordering::SeqCst);
        let in_a_row = self.failed_in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
        if in_a_row >= FAILURES_IN_A_ROW_LIMIT {
            self.stop.store(true, Ordering::SeqCst);
        }
        if let Ok(mut first) = self.first_failure.lock() {
            first.get_or_insert(message);
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || interrupted() || Instant::now() >= self.deadline
    }
}

fn validate(args: &SoakArgs) -> anyhow::Result<()> {
    let checks = [
        ("--lifecycles", args.lifecycles >= 1),
        ("--report-every", args.report_every >= 1),
        ("--concurrency", (1..=1_024).contains(&args.concurrency)),
        ("--bidders", (2..=10_000).contains(&args.bidders)),
        ("--listing-ms", args.listing_ms >= 1),
        ("--countdown-ms", args.countdown_ms >= 1),
        ("--janitor-interval-ms", args.janitor_interval_ms >= 1),
        ("--request-retention-ms", args.request_retention_ms >= 1),
        ("--time-limit-s", args.time_limit_s >= 1),
    ];
    match checks.iter().find(|(_, holds)| !holds) {
        Some((name, _)) => bail!(
            "{name} is out of range (concurrency 1-1024, bidders 2-10000, the others 1 or more)"
        ),
        None => Ok(()),
    }
}

/// Runs the soak, prints a row per sample and the summary, stops the node.
pub fn run_soak(args: SoakArgs) -> anyhow::Result<()> {
    validate(&args)?;
    let _interrupt = Interrupt::install();
    let (directory, temporary) = run_directory(args.data_dir.as_ref(), "soak")?;
    let extra = format!(
        "[janitor]\ninterval_ms = {}\nclosed_auction_linger_ms = {}\nrequest_retention_ms = {}\narchive_retention_ms = {}\n",
        args.janitor_interval_ms, args.linger_ms, args.request_retention_ms, args.archive_retention_ms
    );
    println!(
        "gavel bench soak: {} lifecycles ({} at once, listing {} ms, countdown {} ms, 3 bids, 2 of {} bidders each); janitor every {} ms, archive after {} ms, prune the archive {} ms after the close; node {}; run directory {}",
        args.lifecycles, args.concurrency, args.listing_ms, args.countdown_ms, args.bidders,
        args.janitor_interval_ms, args.linger_ms, args.archive_retention_ms, args.binary.display(), directory.display()
    );
    let cluster = LocalCluster::start_with(&args.binary, &directory, 1, 0, &extra)?;
    let node_directory = directory.join("node-1");
    let pid = child_pid(&node_directory.join("gavel.toml"))?;
    let node = cluster.node(1)?;
    for url in [&node.public_url, &node.control_url] {
        if !url.starts_with("http://127.0.0.1:") {
            bail!("the soak only talks to 127.0.0.1, not {url}");
        }
    }
    cluster
        .wait_for_leader(Duration::from_secs(30))?
        .ok_or_else(|| anyhow!("the node elected no leader within 30 s"))?;
    let tokens = register_bidders(&cluster, &node.public_url, args.bidders)?;
    let run = Arc::new(Run {
        control_url: node.control_url.clone(),
        public_url: node.public_url.clone(),
        admin_token: cluster.admin_token.clone(),
        tokens,
        deadline: Instant::now() + Duration::from_secs(args.time_limit_s),
        args: args.clone(),
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        failed_in_a_row: AtomicU64::new(0),
        sold: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        first_failure: Mutex::new(None),
    });
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let run = run.clone();
            std::thread::spawn(move || worker(&run))
        })
        .collect();
    let data_dir = node_directory.join("data");
    let samples = watch(&run, pid, &data_dir, started);
    run.stop.store(true, Ordering::SeqCst);
    for worker in workers {
        let _ = worker.join();
    }
    let samples = samples?;
    println!("\n{}", table(&samples));
    println!("{}", summary(&run, &samples, started.elapsed()));
    drop(cluster);
    if temporary {
        let _ = std::fs::remove_dir_all(&directory);
    }
    check_interrupt()
}

/// Registers `count` bidders and logs each in; their (bidder id, token).
fn register_bidders(
    cluster: &LocalCluster,
    public_url: &str,
    count: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let agent = agent();
    let mut tokens = Vec::with_capacity(count);
    for index in 0..count {
        check_interrupt()?;
        let bidder_id = format!("soak-bidder-{index}");
        let secret = format!("secret-{:032x}", rand::random::<u128>());
        let registration = json!({"bidder_id": bidder_id, "name": bidder_id, "secret": secret});
        cluster.control_expect(1, "POST", "/control/v1/bidders", registration, &[201])?;
        let login = json!({"bidder_id": bidder_id, "secret": secret});
        let url = format!("{public_url}/api/v1/sessions");
        let (status, session) = request(&agent, "POST", &url, None, Some(login))
            .map_err(|error| anyhow!("POST {url}: {error}"))?;
        match (status, session["token"].as_str()) {
            (201, Some(token)) => tokens.push((bidder_id, token.to_string())),
            _ => bail!("login of {bidder_id} answered {status}: {session}"),
        }
    }
    Ok(tokens)
}

/// Takes lifecycles until there are none left or the run stops.
fn worker(run: &Run) {
    let agent = agent();
    while !run.stopping() {
        let number = run.next.fetch_add(1, Ordering::SeqCst);
        if number >= run.args.lifecycles {
            return;
        }
        match lifecycle(run, &agent, number) {
            Ok(sold) => {
                run.failed_in_a_row.store(0, Ordering::SeqCst);
                if sold {
                    run.sold.fetch_add(1, Ordering::SeqCst);
                }
            }
            Err(error) => run.fail(format!("lifecycle {number}: {error:#}")),
        }
        run.done.fetch_add(1, Ordering::SeqCst);
    }
}

/// One auction from creation to close; whether it was sold.
fn lifecycle(run: &Run, agent: &ureq::Agent, number: u64) -> anyhow::Result<bool> {
    let args = &run.args;
    let auction_id = format!("soak-{number}");
    let opens_at_ms = now_ms();
    let closes_at_ms = opens_at_ms + args.listing_ms;
    let spec = json!({
        "id": auction_id, "title": "Soak parcel",
        "parcel": {"district": "soak", "area_m2": 1000},
        "start_price": START_PRICE, "increment": INCREMENT, "countdown_ms": args.countdown_ms,
        "listing_opens_at_ms": opens_at_ms, "listing_closes_at_ms": closes_at_ms,
    });
    // Whether the listing was still open; an error for any other refusal.
    let control = |path: &str, body: Value| -> anyhow::Result<bool> {
        let url = format!("{}{path}", run.control_url);
        let (status, answer) = request(agent, "POST", &url, Some(&run.admin_token), Some(body))
            .map_err(|error| anyhow!("POST {url}: {error}"))?;
        match (status, answer["code"].as_str()) {
            (200 | 201, _) => Ok(true),
            (409, Some("auction_not_open")) => Ok(false),
            _ => bail!("POST {path} answered {status}: {answer}"),
        }
    };
    control("/control/v1/auctions", spec)?;
    let first = (number as usize * 2) % run.tokens.len();
    let pair = [
        &run.tokens[first],
        &run.tokens[(first + 1) % run.tokens.len()],
    ];
    let qualifications = format!("/control/v1/auctions/{auction_id}/qualifications");
    let mut open = true;
    for (bidder_id, _) in pair {
        // A slow machine may reach the listing's close before the qualifications: the
        // auction then closes unsold, which is still a complete lifecycle.
        open = open && control(&qualifications, json!({"bidder_id": bidder_id}))?;
    }
    let bids_url = format!("{}/api/v1/auctions/{auction_id}/bids", run.public_url);
    for round in (0..3u64).take_while(|_| open) {
        let (_, token) = pair[(round % 2) as usize];
        let amount = START_PRICE + round * INCREMENT;
        let body = json!({"amount": amount, "request_id": format!("{auction_id}-{round}")});
        let (status, answer) = request(agent, "POST", &bids_url, Some(token), Some(body))
            .map_err(|error| anyhow!("POST {bids_url}: {error}"))?;
        match (status, answer["code"].as_str()) {
            (200 | 201, _) => {}
            // The listing ended before the bid got in (a slow machine): the auction
            // still closes, with the bids it has.
            (409, Some("auction_not_open")) => break,
            _ => bail!("bid {round} on {auction_id} answered {status}: {answer}"),
        }
    }
    let due = closes_at_ms + args.countdown_ms;
    std::thread::sleep(Duration::from_millis(due.saturating_sub(now_ms()) + 20));
    let view_url = format!("{}/api/v1/auctions/{auction_id}", run.public_url);
    let waited = Instant::now();
    loop {
        let (status, view) = request(agent, "GET", &view_url, None, None)
            .map_err(|error| anyhow!("GET {view_url}: {error}"))?;
        match (status, view["phase"].as_str()) {
            (200, Some("sold")) => return Ok(true),
            (200, Some("unsold" | "terminated")) => return Ok(false),
            (200, _) if waited.elapsed() < CLOSE_LIMIT && !run.stopping() => {
                std::thread::sleep(Duration::from_millis(100));
            }
            _ => bail!("{auction_id} not closed in time: {status} {view}"),
        }
    }
}

/// Samples the node every `report_every` finished lifecycles until the workers are done.
fn watch(run: &Run, pid: u32, data_dir: &Path, started: Instant) -> anyhow::Result<Vec<Sample>> {
    let agent = agent();
    let progress = progress_bar(run.args.lifecycles, "lifecycles");
    let mut samples = Vec::new();
    let mut next_sample = run.args.report_every.min(run.args.lifecycles);
    if progress.is_hidden() {
        println!("{HEADER}");
    }
    loop {
        let done = run.done.load(Ordering::SeqCst);
        progress.set_position(done);
        progress.set_message(format!(
            "{} failed, {} sold",
            run.failed.load(Ordering::SeqCst),
            run.sold.load(Ordering::SeqCst)
        ));
        let finished = done >= run.args.lifecycles;
        if done >= next_sample || (finished && samples.is_empty()) {
            let sample = sample(run, &agent, pid, data_dir, done, started.elapsed())?;
            // A hidden bar (output not a terminal) would swallow the row.
            if progress.is_hidden() {
                println!("{}", row(&sample));
            } else {
                progress.println(row(&sample));
            }
            samples.push(sample);
            next_sample = next_sample.saturating_add(run.args.report_every);
        }
        if finished || run.stopping() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    progress.finish_and_clear();
    Ok(samples)
}

fn sample(
    run: &Run,
    agent: &ureq::Agent,
    pid: u32,
    data_dir: &Path,
    lifecycles: u64,
    elapsed: Duration,
) -> anyhow::Result<Sample> {
    let url = format!("{}/control/v1/janitor", run.control_url);
    let (status, report) = request(agent, "GET", &url, Some(&run.admin_token), None)
        .map_err(|error| anyhow!("GET {url}: {error}"))?;
    if status != 200 {
        bail!("GET {url} answered {status}: {report}");
    }
    Ok(Sample {
        lifecycles,
        elapsed,
        rss_kib: resident_kib(pid)?,
        live_actors: report["live_actors"].as_u64().unwrap_or(0),
        state_auctions: report["state_auctions"].as_u64().unwrap_or(0),
        archived: report["archive_size"].as_u64().unwrap_or(0),
        data_dir_bytes: disk_usage(data_dir)
            .with_context(|| format!("cannot measure {}", data_dir.display()))?,
        archive_bytes: disk_usage(&data_dir.join("archive"))
            .with_context(|| format!("cannot measure {}/archive", data_dir.display()))?,
        snapshot_index: report["last_snapshot_index"].as_u64(),
        purged_index: report["last_purged_index"].as_u64(),
    })
}

const HEADER: &str = "lifecycles  elapsed s  RSS MiB  live actors  live-state auctions  archived  data dir MiB  of it archive MiB  snapshot at  purged to";

fn mib(value: u64) -> f64 {
    value as f64 / (1024.0 * 1024.0)
}

fn row(sample: &Sample) -> String {
    let index = |value: Option<u64>| value.map_or_else(|| "-".to_string(), |v| v.to_string());
    format!(
        "{:>10}  {:>9.0}  {:>7.1}  {:>11}  {:>19}  {:>8}  {:>12.1}  {:>17.1}  {:>11}  {:>9}",
        sample.lifecycles,
        sample.elapsed.as_secs_f64(),
        sample.rss_kib as f64 / 1024.0,
        sample.live_actors,
        sample.state_auctions,
        sample.archived,
        mib(sample.data_dir_bytes),
        mib(sample.archive_bytes),
        index(sample.snapshot_index),
        index(sample.purged_index),
    )
}

fn table(samples: &[Sample]) -> String {
    let mut text = format!("{HEADER}\n");
    for sample in samples {
        let _ = writeln!(text, "{}", row(sample));
    }
    text
}

/// `last / first` and whether it meets the goal (0 to 0 counts as flat).
fn ratio_line(name: &str, first: f64, last: f64) -> String {
    let ratio = if first > 0.0 {
        last / first
    } else if last > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    let verdict = if ratio <= FLAT_GOAL { "met" } else { "NOT met" };
    format!("{name}: {first:.1} -> {last:.1}, ratio {ratio:.2} (goal ≤ {FLAT_GOAL}×: {verdict})")
}

fn summary(run: &Run, samples: &[Sample], elapsed: Duration) -> String {
    let done = run.done.load(Ordering::SeqCst);
    let failed = run.failed.load(Ordering::SeqCst);
    let mut text = format!(
        "{done} lifecycles in {:.0} s ({:.1}/s): {} sold, {failed} failed\n",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64().max(0.001),
        run.sold.load(Ordering::SeqCst),
    );
    if let Ok(first) = run.first_failure.lock() {
        if let Some(failure) = first.as_ref() {
            let _ = writeln!(text, "first failure: {failure}");
        }
    }
    match (samples.first(), samples.last()) {
        (Some(first), Some(last)) if samples.len() >= 2 => {
            let _ = writeln!(
                text,
                "last sample ({} lifecycles) over the first ({}):",
                last.lifecycles, first.lifecycles
            );
            let lines = [
                ratio_line(
                    "RSS MiB",
                    first.rss_kib as f64 / 1024.0,
                    last.rss_kib as f64 / 1024.0,
                ),
                ratio_line(
                    "live actors",
                    first.live_actors as f64,
                    last.live_actors as f64,
                ),
                ratio_line(
                    "data dir MiB",
                    mib(first.data_dir_bytes),
                    mib(last.data_dir_bytes),
                ),
                ratio_line(
                    "data dir without the archive MiB",
                    mib(first.data_dir_bytes.saturating_sub(first.archive_bytes)),
                    mib(last.data_dir_bytes.saturating_sub(last.archive_bytes)),
                ),
            ];
            for line in lines {
                let _ = writeln!(text, "  {line}");
            }
        }
        _ => text.push_str(
            "fewer than two samples: no ratio (raise --lifecycles or lower --report-every)\n",
        ),
    }
    text
}

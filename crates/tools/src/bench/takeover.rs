//! `gavel bench takeover`: how fast a real local cluster takes over from a dead leader
//! while bidders bid, and whether any acknowledged bid is lost or doubled on the way.
//!
//! The run starts `voters` voters and `standbys` standbys as `gavel serve` processes on
//! loopback, opens one long auction and keeps `bidders` bidder threads bidding through
//! random nodes. Then, `kills` times: find the leader, SIGKILL it, and measure
//! - kill → first committed bid: until the first receipt of a bid sent after the kill;
//! - kill → full strength: until a node's ClusterView shows the configured number of
//!   voters, all `up`, the killed node not among them (a standby was promoted);
//!
//! then restart the killed node on its data, wait until it is an `up` standby, let the
//! bidders bid for `settle_ms`, and kill again. Every wait is bounded by `WAIT_LIMIT`; a
//! kill whose wait runs out counts as failed. At the end the final bid history must hold
//! every acknowledged bid exactly once, at strictly increasing prices.
//!
//! This is the figure to set beside the old system's (its published report): 500 takeovers,
//! 100% success, 19-25 s each.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use super::load::{Bidder, Load, LoadPlan};
use super::report::{self, HistoryCheck, KillRecord};
use super::results::{self, Machine};
use super::takeover_batches::{self, BatchRow};
use gavel_testkit::local::{self, check_interrupt, now_ms, sleep_checked, Interrupt, LocalCluster};

/// Longest wait for any one thing (a leader, a committed bid, full strength, a rejoin).
const WAIT_LIMIT: Duration = Duration::from_secs(15);
/// How often the benchmark looks at the bids and the cluster while it waits.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// A cap on the load's requests per kill, so that a run cannot go on without end.
const MAX_REQUESTS_PER_KILL: usize = 20_000;
/// Longest wait for, and largest accepted, final result of the auction.
const RESULT_TIMEOUT: Duration = Duration::from_secs(60);
const RESULT_LIMIT_BYTES: u64 = 1 << 30;
const AUCTION_START_PRICE: u64 = 1_000_000;
const AUCTION_INCREMENT: u64 = 10_000;

/// `gavel bench takeover`: kill the leader of a local cluster again and again.
#[derive(Debug, Clone, clap::Args)]
pub struct TakeoverArgs {
    /// How many times to SIGKILL the leader (per batch).
    #[arg(long, default_value_t = 20)]
    pub kills: usize,
    /// Batches of `--kills` kills each, on the same cluster and load, reported per
    /// batch as the old system's table (5 batches of 100).
    #[arg(long, default_value_t = 1)]
    pub batches: usize,
    /// Voters of the local cluster (3 or more: one must be able to die).
    #[arg(long, default_value_t = 3)]
    pub voters: u64,
    /// Standbys of the local cluster (1 or more: one replaces each dead voter).
    #[arg(long, default_value_t = 1)]
    pub standbys: u64,
    /// Bidder threads bidding through random nodes for the whole run.
    #[arg(long, default_value_t = 4)]
    pub bidders: usize,
    /// Where the run's fresh directory (node configs, data, logs) goes; default the
    /// system's temporary directory, removed after a run that passed.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The gavel executable that runs the nodes; default this one.
    #[arg(long, value_name = "FILE", default_value_os_t = this_executable())]
    pub binary: PathBuf,
    /// How long the bidders bid between a rejoin and the next kill.
    #[arg(long, default_value_t = 1500)]
    pub settle_ms: u64,
    /// Where the Markdown table and the SVG plot of the run go.
    #[arg(long, value_name = "DIR", default_value = results::DEFAULT_RESULTS_DIR)]
    pub results_dir: PathBuf,
}

impl TakeoverArgs {
    /// Every kill of the run, all batches together.
    fn total_kills(&self) -> usize {
        self.kills.saturating_mul(self.batches)
    }
}

fn this_executable() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("gavel"))
}

/// Runs the benchmark, prints the table and the summary, and stops every node. An
/// error if the cluster could not be set up, the run was interrupted, or the final
/// history check failed; failed kills are reported, not errors.
pub fn run_takeover(args: TakeoverArgs) -> anyhow::Result<()> {
    check_args(&args)?;
    let _interrupt = Interrupt::install();
    let (directory, temporary) = run_directory(&args)?;
    let batches = match args.batches {
        1 => String::new(),
        batches => format!(" in {batches} batches ({} kills)", args.total_kills()),
    };
    let machine = Machine::here();
    println!(
        "gavel bench takeover: {} kills of the leader{batches}; {} voters and {} standby(s) running {}; {} bidders; files in {}",
        args.kills, args.voters, args.standbys, args.binary.display(), args.bidders, directory.display()
    );
    let started_ms = now_ms();
    let mut cluster = LocalCluster::start(&args.binary, &directory, args.voters, args.standbys)?;
    let settle = Duration::from_millis(args.settle_ms);
    let total_kills = u32::try_from(args.total_kills()).context("too many kills")?;
    let budget = settle + (WAIT_LIMIT * 3 + settle) * total_kills + Duration::from_secs(60);
    let (auction_id, bidders) = set_up_auction(&cluster, args.bidders, budget)?;
    let load = Load::start(LoadPlan {
        auction_id: auction_id.clone(),
        public_urls: cluster.public_urls(),
        bidders,
        deadline: Instant::now() + budget,
        max_requests: MAX_REQUESTS_PER_KILL * (args.total_kills() + 1),
    });
    sleep_checked(settle)?;
    let kills = kill_repeatedly(&mut cluster, &load, &args)?;
    let log = load.stop();
    // The figures are printed and written even when the final history cannot be read.
    let history = converged_result(&cluster, &auction_id);
    let check = match &history {
        Ok(history) => report::check_history(&log, history),
        Err(_) => HistoryCheck::default(),
    };
    println!("\n{}", report::kill_table(&kills));
    let mut summary = report::summary(&kills, &log, &check);
    if let Err(error) = &history {
        summary.push_str(&format!("the final history could not be read: {error:#}\n"));
    }
    print!("{summary}");
    let rows = takeover_batches::batch_rows(&kills, args.kills);
    if args.batches > 1 {
        println!("\n{}", takeover_batches::batch_table(&rows).text());
    }
    match write_takeover_results(&args, &machine, started_ms, &kills, &rows, &summary) {
        Ok(written) => println!("results written: {}", written.join(", ")),
        Err(error) => println!("warning: results not written: {error:#}"),
    }
    drop(cluster);
    let clean = check.passed() && kills.iter().all(KillRecord::succeeded);
    if temporary && clean {
        let _ = std::fs::remove_dir_all(&directory);
    } else {
        println!(
            "node configs, data and logs kept in {}",
            directory.display()
        );
    }
    history?;
    if !check.passed() {
        bail!("the final bid history does not match the receipts the bidders got");
    }
    Ok(())
}

fn check_args(args: &TakeoverArgs) -> anyhow::Result<()> {
    if args.voters < 3 {
        bail!("--voters must be 3 or more: with fewer, killing one voter leaves no majority");
    }
    if args.standbys < 1 {
        bail!("--standbys must be 1 or more: a standby replaces the dead voter");
    }
    if args.kills == 0 || args.bidders == 0 || args.batches == 0 {
        bail!("--kills, --batches and --bidders must be 1 or more");
    }
    Ok(())
}

/// A fresh directory for this run under `--data-dir` or the temporary directory, and
/// whether it is temporary.
fn run_directory(args: &TakeoverArgs) -> anyhow::Result<(PathBuf, bool)> {
    let parent = args.data_dir.clone().unwrap_or_else(std::env::temp_dir);
    let name = format!("gavel-bench-takeover-{}-{}", std::process::id(), now_ms());
    let directory = std::path::absolute(parent.join(name)).context("cannot resolve --data-dir")?;
    std::fs::create_dir_all(&directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    Ok((directory, args.data_dir.is_none()))
}

/// Registers and qualifies the bidders, opens one auction whose listing outlasts
/// `budget`, and logs every bidder in. Returns the auction id and the bidders.
fn set_up_auction(
    cluster: &LocalCluster,
    count: usize,
    budget: Duration,
) -> anyhow::Result<(String, Vec<Bidder>)> {
    let (leader, _) = cluster
        .wait_for_leader(Duration::from_secs(30))?
        .ok_or_else(|| anyhow!("the cluster elected no leader within 30 s"))?;
    let now = now_ms();
    let auction_id = format!("bench-takeover-{now}");
    let spec = json!({
        "id": auction_id,
        "title": "Takeover benchmark parcel",
        "parcel": {"district": "benchmark", "area_m2": 10000, "use": "residential"},
        "start_price": AUCTION_START_PRICE,
        "increment": AUCTION_INCREMENT,
        "listing_opens_at_ms": now,
        "listing_closes_at_ms": now + budget.as_millis() as u64 + 600_000,
        "countdown_ms": 60_000
    });
    cluster.control_expect(leader, "POST", "/control/v1/auctions", spec, &[200, 201])?;
    let mut bidders = Vec::with_capacity(count);
    for index in 0..count {
        let bidder_id = format!("bench-bidder-{index}");
        let secret = format!("secret-{:032x}", rand::random::<u128>());
        let registration = json!({"bidder_id": bidder_id, "name": format!("Benchmark bidder {index}"), "secret": secret});
        cluster.control_expect(leader, "POST", "/control/v1/bidders", registration, &[201])?;
        let qualification = cluster.control_expect(
            leader,
            "POST",
            &format!("/control/v1/auctions/{auction_id}/qualifications"),
            json!({"bidder_id": bidder_id}),
            &[201],
        )?;
        let bidder_number = qualification["bidder_number"]
            .as_u64()
            .ok_or_else(|| anyhow!("qualification answered no bidder_number: {qualification}"))?;
        let login_url = format!("{}/api/v1/sessions", cluster.node(leader)?.public_url);
        let login = json!({"bidder_id": bidder_id, "secret": secret});
        let (status, session) = gavel_testkit::local::request(
            &gavel_testkit::local::agent(),
            "POST",
            &login_url,
            None,
            Some(login),
        )
        .map_err(|error| anyhow!("POST {login_url}: {error}"))?;
        let token = match (status, session["token"].as_str()) {
            (201, Some(token)) => token.to_string(),
            _ => bail!("login of {bidder_id} answered {status}: {session}"),
        };
        bidders.push(Bidder {
            bidder_id,
            token,
            bidder_number,
        });
    }
    Ok((auction_id, bidders))
}

/// The kills, one record each, with a progress bar. Stops early, with the kills done
/// so far, when there is no leader to kill or the bidders have stopped.
fn kill_repeatedly(
    cluster: &mut LocalCluster,
    load: &Load,
    args: &TakeoverArgs,
) -> anyhow::Result<Vec<KillRecord>> {
    let progress = local::progress_bar("takeover", args.total_kills() as u64);
    let mut kills = Vec::with_capacity(args.total_kills());
    for number in 1..=args.total_kills() {
        if load.finished() {
            progress.println("the bidders stopped (see the summary): no more kills");
            break;
        }
        let record = kill_once(cluster, load, args.voters, number)?;
        progress.set_message(format!(
            "last: node {} killed, first bid {} ms, full strength {} ms, {}; {} bids acknowledged",
            record.killed.map_or("-".to_string(), |id| id.to_string()),
            record
                .first_commit
                .map_or("-".to_string(), |d| d.as_millis().to_string()),
            record
                .full_strength
                .map_or("-".to_string(), |d| d.as_millis().to_string()),
            if record.succeeded() { "ok" } else { "FAILED" },
            load.acknowledged()
        ));
        progress.inc(1);
        let no_leader = record.killed.is_none();
        kills.push(record);
        if no_leader {
            progress.println("no leader to kill: the run stops here");
            break;
        }
        sleep_checked(Duration::from_millis(args.settle_ms))?;
    }
    progress.finish_and_clear();
    Ok(kills)
}

/// One kill of the leader, measured; then the killed node's restart as a standby.
fn kill_once(
    cluster: &mut LocalCluster,
    load: &Load,
    voters: u64,
    number: usize,
) -> anyhow::Result<KillRecord> {
    let mut record = KillRecord {
        number,
        ..KillRecord::default()
    };
    let Some((leader, _)) = cluster.wait_for_leader(WAIT_LIMIT)? else {
        record
            .failures
            .push(format!("no leader within {} s", WAIT_LIMIT.as_secs()));
        return Ok(record);
    };
    record.killed = Some(leader);
    let killed_at_ms = now_ms();
    let killed_at = Instant::now();
    cluster.kill(leader)?;
    while (record.first_commit.is_none() || record.full_strength.is_none())
        && killed_at.elapsed() < WAIT_LIMIT
    {
        check_interrupt()?;
        if record.first_commit.is_none() {
            record.first_commit = load
                .first_commit_after(killed_at, killed_at_ms)
                .map(|received| received - killed_at);
        }
        if record.full_strength.is_none() {
            if let Some(new_leader) = full_strength_leader(cluster, leader, voters) {
                record.full_strength = Some(killed_at.elapsed());
                record.new_leader = new_leader;
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    if record.first_commit.is_none() {
        record.failures.push(format!(
            "no bid committed within {} s",
            WAIT_LIMIT.as_secs()
        ));
    }
    if record.full_strength.is_none() {
        record.failures.push(format!(
            "voters not back to {voters} up within {} s",
            WAIT_LIMIT.as_secs()
        ));
    }
    if record.new_leader.is_none() {
        record.new_leader = cluster.leader().map(|(id, _)| id);
    }
    match rejoin_as_standby(cluster, leader) {
        Ok(Some(rejoined)) => record.rejoined = Some(rejoined),
        Ok(None) => record.failures.push(format!(
            "node {leader} not an up standby within {} s of its restart",
            WAIT_LIMIT.as_secs()
        )),
        Err(error) => {
            check_interrupt()?;
            record
                .failures
                .push(format!("restart of node {leader}: {error:#}"));
        }
    }
    Ok(record)
}

/// If some running node's ClusterView shows `voters` voters, all up, none of them
/// `killed`: that view's leader (which may still be unknown to it).
fn full_strength_leader(cluster: &LocalCluster, killed: u64, voters: u64) -> Option<Option<u64>> {
    cluster
        .ids()
        .into_iter()
        .filter(|id| *id != killed)
        .find_map(|id| {
            let view = cluster.cluster_view(id)?;
            let mut count = 0;
            for voter in view.voters() {
                if voter.node_id == killed || voter.health != "up" {
                    return None;
                }
                count += 1;
            }
            (count == voters).then_some(view.leader_id)
        })
}

/// Restarts `killed` on its config and data; how long until the leader's view shows it
/// as an up standby, or `None` after `WAIT_LIMIT`.
fn rejoin_as_standby(cluster: &mut LocalCluster, killed: u64) -> anyhow::Result<Option<Duration>> {
    let restarted_at = Instant::now();
    cluster.spawn(killed)?;
    while restarted_at.elapsed() < WAIT_LIMIT {
        check_interrupt()?;
        let standby_up = cluster.leader().and_then(|(_, view)| {
            view.node(killed)
                .map(|node| node.role == "standby" && node.health == "up")
        });
        if standby_up == Some(true) {
            return Ok(Some(restarted_at.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(None)
}

/// Node `id`'s answer to the control GET `path` as JSON, read in full: after hundreds of
/// kills an auction's result holds tens of thousands of bids, past the 10 MB that
/// `ureq`'s `into_string` (and so `LocalCluster::control`) accepts.
fn read_result(cluster: &LocalCluster, id: u64, path: &str) -> Option<Value> {
    let url = format!("{}{path}", cluster.node(id).ok()?.control_url);
    let agent = ureq::AgentBuilder::new().timeout(RESULT_TIMEOUT).build();
    let response = agent
        .get(&url)
        .set("Authorization", &format!("Bearer {}", cluster.admin_token))
        .call()
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    serde_json::from_reader(std::io::Read::take(
        response.into_reader(),
        RESULT_LIMIT_BYTES,
    ))
    .ok()
}

/// The auction's result once every running node reports the same number of bids.
fn converged_result(cluster: &LocalCluster, auction_id: &str) -> anyhow::Result<Value> {
    let path = format!("/control/v1/auctions/{auction_id}/result");
    let started = Instant::now();
    loop {
        check_interrupt()?;
        let results: Vec<Value> = cluster
            .ids()
            .into_iter()
            .filter(|id| cluster.is_running(*id))
            .filter_map(|id| read_result(cluster, id, &path))
            .collect();
        let counts: Vec<usize> = results
            .iter()
            .map(|result| result["bids"].as_array().map_or(0, Vec::len))
            .collect();
        let agreed = !results.is_empty() && counts.iter().all(|count| *count == counts[0]);
        if agreed || started.elapsed() > WAIT_LIMIT {
            if !agreed {
                println!("warning: the running nodes did not agree on the bid count within {} s: {counts:?}", WAIT_LIMIT.as_secs());
            }
            return results
                .into_iter()
                .max_by_key(|result| result["bids"].as_array().map_or(0, Vec::len))
                .ok_or_else(|| anyhow!("no node answered {path}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The run as Markdown (command, machine, batch table, summary, per-kill table) and the
/// per-kill plot, in `--results-dir`; the paths written.
fn write_takeover_results(
    args: &TakeoverArgs,
    machine: &Machine,
    started_ms: u64,
    kills: &[KillRecord],
    rows: &[BatchRow],
    summary: &str,
) -> anyhow::Result<Vec<String>> {
    let command: Vec<String> = std::env::args().collect();
    let goal = match rows.last().is_some_and(takeover_batches::meets_goal) {
        true => "met",
        false => "not met",
    };
    let markdown = format!(
        "# gavel bench takeover, {}\n\n`{}`\n\nMachine: {}.\n\n{}\nGoal (100% of kills, kill → first committed bid p99 < 1 s, overall): {goal}.\n\n```\n{summary}```\n\n{}",
        results::stamp(started_ms),
        command.join(" "),
        machine.describe(),
        takeover_batches::batch_table(rows).markdown(),
        takeover_batches::kill_rows(kills, args.kills).markdown(),
    );
    let plot = takeover_batches::kill_plot(kills);
    let stem = format!("takeover-{}", results::stamp(started_ms));
    let written = results::write_results(&args.results_dir, &stem, &markdown, &[("kills", &plot)])?;
    Ok(written
        .iter()
        .map(|path| path.display().to_string())
        .collect())
}

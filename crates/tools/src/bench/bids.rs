//! `gavel bench bids`: committed bids per second and their latency on a 3-voter Gavel
//! cluster on loopback, side by side with a 3-member etcd cluster doing the same
//! replicated, fsynced write per request, and both set against the machine's floor.
//!
//! For each connection count (1, 16, 64, 256 by default) and each system, one level:
//! that many keep-alive connections (`closed_loop`), each writing as fast as it is
//! answered for a warm-up and then `--seconds`, to the leader.
//! - Gavel: each connection bids on an auction of its own, fresh for the level, on
//!   which two bidders take turns at strictly increasing amounts (a bidder may not
//!   outbid itself), so every bid is accepted and committed: no `below_minimum`.
//! - etcd: each connection puts its own key (`POST /v3/kv/put`) with the amount.
//!
//! The levels alternate between the systems, so a noisy machine disturbs both alike.
//! Before the levels and again after them, the floor (`floor`): fdatasync in the run's
//! directory and a loopback round trip; the lower of the two medians of each counts. After them: the tables, Gavel/etcd ratios, the goals, and the
//! Markdown and SVG plots in `--results-dir`. Both clusters are stopped at the end, on
//! errors and on Ctrl-C too.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use super::bids_figures::{self as figures, LevelFigures, ETCD, GAVEL};
use super::closed_loop::{self, Answer, LevelPlan, Stream, WriteRequest};
use super::etcd::{self, EtcdCluster, EtcdStream};
use super::fanout::{progress_bar, raise_open_files, run_directory};
use super::floor;
use super::requests::this_executable;
use super::results::{self, Machine};
use gavel_testkit::local::{self, check_interrupt, now_ms, Interrupt, LocalCluster};

const START_PRICE: u64 = 1_000_000;
const INCREMENT: u64 = 10_000;
/// Parallel setup requests (auction creation, qualification) before a level.
const SETUP_THREADS: usize = 8;

/// `gavel bench bids`: Gavel's bid throughput and latency beside etcd's puts.
#[derive(Debug, Clone, clap::Args)]
pub struct BidsArgs {
    /// Concurrent keep-alive connections per level, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64, 256])]
    pub connections: Vec<usize>,
    /// Measured seconds per level and system.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Unmeasured warm-up before each level's measured seconds.
    #[arg(long, default_value_t = 1000)]
    pub warmup_ms: u64,
    /// Most requests per level and system (warm-up and retries included).
    #[arg(long, default_value_t = 500_000)]
    pub max_requests: u64,
    /// The etcd executable (Debian: `apt-get install -y etcd-server`).
    #[arg(long, value_name = "FILE", default_value = "etcd")]
    pub etcd: PathBuf,
    /// Run Gavel alone (etcd is not started even when it is installed).
    #[arg(long)]
    pub gavel_only: bool,
    /// Where the run's directory (configs, data, logs of both clusters) goes; default
    /// the temporary directory, removed after the run.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The gavel executable that runs the nodes; default this one.
    #[arg(long, value_name = "FILE", default_value_os_t = this_executable())]
    pub binary: PathBuf,
    /// Where the Markdown tables and SVG plots go.
    #[arg(long, value_name = "DIR", default_value = results::DEFAULT_RESULTS_DIR)]
    pub results_dir: PathBuf,
    /// Idle CPUs poll instead of halting for the whole run: the nodes run with
    /// `[host] cpu_idle_poll = true`, and the bench holds the same machine-wide request
    /// itself, so etcd and the floor are measured on the machine as Gavel is (needs root).
    #[arg(long)]
    pub cpu_idle_poll: bool,
}

/// Runs the benchmark, prints its tables, writes its results, stops both clusters.
pub fn run_bids(args: BidsArgs) -> anyhow::Result<()> {
    let most = args.connections.iter().copied().max().unwrap_or(0);
    if most == 0 || args.connections.contains(&0) || args.seconds == 0 || args.max_requests == 0 {
        bail!("--connections needs counts of 1 or more; --seconds and --max-requests 1 or more");
    }
    let etcd_version = etcd::version(&args.etcd);
    if etcd_version.is_none() && !args.gavel_only {
        bail!("{}", etcd::INSTALL_HINT);
    }
    let etcd_version = if args.gavel_only { None } else { etcd_version };
    raise_open_files(most as u64 * 4 + 1024)?;
    let _idle_poll = match args.cpu_idle_poll {
        true => Some(gavel::host::IdlePoll::request().with_context(|| {
            format!(
                "--cpu-idle-poll: cannot make the CPU-latency request on {} (it needs root)",
                gavel::host::CPU_LATENCY_FILE
            )
        })?),
        false => None,
    };
    let _interrupt = Interrupt::install();
    let machine = Machine::here();
    let idle = gavel::host::idle_policy(args.cpu_idle_poll);
    let started_ms = now_ms();
    let (directory, temporary) = run_directory(args.data_dir.as_ref(), "bids")?;
    println!(
        "gavel bench bids: connections {:?}, {} s per level (after {} ms warm-up), at most {} requests per level; Gavel: 3 voters running {}; etcd: {}; files in {}\nmachine: {}; {idle}",
        args.connections, args.seconds, args.warmup_ms, args.max_requests, args.binary.display(),
        etcd_version.as_deref().unwrap_or("not run"), directory.display(), machine.describe()
    );
    let outcome = measure_all(&args, &directory, etcd_version.is_some());
    if temporary && outcome.is_ok() {
        let _ = std::fs::remove_dir_all(&directory);
    } else if outcome.is_err() {
        println!(
            "node configs, data and logs kept in {}",
            directory.display()
        );
    }
    let (levels, floor) = outcome?;
    let ratios = figures::ratios(&levels);
    let goals = figures::goals(&ratios, Some(&floor), &levels);
    let gavel_single = levels
        .iter()
        .find(|level| level.system == GAVEL && level.connections == 1)
        .and_then(|level| level.p50_us);
    let levels_table = figures::levels_table(&levels);
    let ratios_table = figures::ratios_table(&ratios);
    let floor_table = figures::floor_table(&floor, gavel_single);
    println!("\n{}", levels_table.text());
    if !ratios.is_empty() {
        println!("{}", ratios_table.text());
    }
    println!("{}", floor_table.text());
    print!("{}", figures::goals_text(&goals));
    print!("{}", figures::problems_text(&levels));
    let command: Vec<String> = std::env::args().collect();
    let markdown = format!(
        "# gavel bench bids, {}\n\n`{}`\n\nMachine: {}; {idle}. etcd: {}.\n\n{}\n{}\nFloor: fdatasync median of {} samples, loopback round trip median of {} samples.\n\n{}\n{}\n{}",
        results::stamp(started_ms),
        command.join(" "),
        machine.describe(),
        etcd_version.as_deref().unwrap_or("not run"),
        levels_table.markdown(),
        ratios_table.markdown(),
        floor.fdatasync_samples,
        floor.round_trip_samples,
        floor_table.markdown(),
        figures::goals_text(&goals),
        figures::problems_text(&levels),
    );
    let plots = figures::plots(&levels);
    let named: Vec<(&str, &results::Plot)> =
        plots.iter().map(|(name, plot)| (*name, plot)).collect();
    let stem = format!("bids-{}", results::stamp(started_ms));
    let written = results::write_results(&args.results_dir, &stem, &markdown, &named)?;
    let written: Vec<String> = written
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    println!("results written: {}", written.join(", "));
    Ok(())
}

/// Starts both clusters, measures the floor and every level; the clusters stop when
/// this returns, whatever it returns.
fn measure_all(
    args: &BidsArgs,
    directory: &std::path::Path,
    with_etcd: bool,
) -> anyhow::Result<(Vec<LevelFigures>, floor::Floor)> {
    let host = match args.cpu_idle_poll {
        true => "[host]\ncpu_idle_poll = true\n",
        false => "",
    };
    let cluster = LocalCluster::start_with(&args.binary, directory, 3, 0, host)?;
    let tokens = log_in_bidders(&cluster)?;
    let floor_before = floor::measure(directory)?;
    println!("floor before the levels: {}", floor_before.describe());
    let etcd = match with_etcd {
        true => Some(EtcdCluster::start(&args.etcd, directory)?),
        false => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let systems = if etcd.is_some() { 2 } else { 1 };
    let progress = progress_bar((args.connections.len() * systems) as u64, "bids");
    let mut levels = Vec::new();
    for (round, &connections) in args.connections.iter().enumerate() {
        let plan = |address| LevelPlan {
            address,
            warmup: Duration::from_millis(args.warmup_ms),
            measure: Duration::from_secs(args.seconds),
            max_requests: args.max_requests,
        };
        check_interrupt()?;
        progress.set_message(format!("{GAVEL}, {connections} connections (setting up)"));
        let (address, streams) = gavel_streams(&cluster, &tokens, round, connections)?;
        progress.set_message(format!("{GAVEL}, {connections} connections"));
        let outcome = runtime.block_on(closed_loop::run_level(plan(address), streams));
        let figures = LevelFigures::of(GAVEL, &outcome);
        progress.println(level_line(&figures));
        levels.push(figures);
        progress.inc(1);
        if let Some(etcd) = &etcd {
            check_interrupt()?;
            progress.set_message(format!("{ETCD}, {connections} connections"));
            let address = etcd.leader_address()?;
            let streams = (0..connections)
                .map(|connection| EtcdStream {
                    key: format!("bids/{round}/{connection}"),
                    start_amount: START_PRICE,
                    increment: INCREMENT,
                })
                .collect();
            let outcome = runtime.block_on(closed_loop::run_level(plan(address), streams));
            let figures = LevelFigures::of(ETCD, &outcome);
            progress.println(level_line(&figures));
            levels.push(figures);
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    drop(etcd);
    drop(cluster);
    // Measured again with both clusters stopped; on a shared machine the quieter of
    // the two measurements is the better estimate of a floor.
    let floor_after = floor::measure(directory)?;
    println!("floor after the levels:  {}", floor_after.describe());
    Ok((levels, floor_before.lower(&floor_after)))
}

fn level_line(level: &LevelFigures) -> String {
    let ms =
        |us: Option<u64>| us.map_or("-".to_string(), |us| format!("{:.2}", us as f64 / 1000.0));
    format!(
        "{:>5} {:>3} connections: {:>7.0} bids/s, p50 {} ms, p99 {} ms, p999 {} ms; {} refused, {} errors",
        level.system,
        level.connections,
        level.per_second,
        ms(level.p50_us),
        ms(level.p99_us),
        ms(level.p999_us),
        level.refused,
        level.failed
    )
}

/// Registers the two bidders that take turns on every auction and logs them in on the
/// leader; their session tokens.
fn log_in_bidders(cluster: &LocalCluster) -> anyhow::Result<[String; 2]> {
    let leader = leader(cluster)?;
    let public_url = cluster.node(leader)?.public_url.clone();
    let agent = local::agent();
    let mut tokens = Vec::with_capacity(2);
    for index in 0..2 {
        let bidder_id = format!("bench-bidder-{index}");
        let secret = format!("secret-{:032x}", rand::random::<u128>());
        let registration = json!({"bidder_id": bidder_id, "name": bidder_id, "secret": secret});
        cluster.control_expect(leader, "POST", "/control/v1/bidders", registration, &[201])?;
        let login = json!({"bidder_id": bidder_id, "secret": secret});
        let url = format!("{public_url}/api/v1/sessions");
        let (status, session) = local::request(&agent, "POST", &url, None, Some(login))
            .map_err(|error| anyhow!("POST {url}: {error}"))?;
        match (status, session["token"].as_str()) {
            (201, Some(token)) => tokens.push(token.to_string()),
            _ => bail!("login of {bidder_id} answered {status}: {session}"),
        }
    }
    let second = tokens.pop().ok_or_else(|| anyhow!("no second token"))?;
    let first = tokens.pop().ok_or_else(|| anyhow!("no first token"))?;
    Ok([first, second])
}

fn leader(cluster: &LocalCluster) -> anyhow::Result<u64> {
    cluster
        .wait_for_leader(Duration::from_secs(30))?
        .map(|(leader, _)| leader)
        .ok_or_else(|| anyhow!("the Gavel cluster elected no leader within 30 s"))
}

/// A fresh auction per connection with both bidders qualified, on the current leader;
/// the leader's public address and the streams.
fn gavel_streams(
    cluster: &LocalCluster,
    tokens: &[String; 2],
    round: usize,
    connections: usize,
) -> anyhow::Result<(SocketAddr, Vec<GavelStream>)> {
    let leader = leader(cluster)?;
    let public_url = &cluster.node(leader)?.public_url;
    let address: SocketAddr = public_url
        .trim_start_matches("http://")
        .parse()
        .context("the leader's public URL")?;
    if !address.ip().is_loopback() {
        bail!("the benchmark only talks to loopback, not {public_url}");
    }
    let now = now_ms();
    let auction_ids: Vec<String> = (0..connections)
        .map(|connection| format!("bench-bids-{now}-{round}-{connection}"))
        .collect();
    let chunk = connections.div_ceil(SETUP_THREADS).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = auction_ids
            .chunks(chunk)
            .map(|ids| scope.spawn(move || set_up_auctions(cluster, leader, ids, now)))
            .collect();
        workers.into_iter().try_for_each(|worker| {
            worker
                .join()
                .map_err(|_| anyhow!("an auction setup thread panicked"))?
        })
    })?;
    let streams = auction_ids
        .into_iter()
        .map(|auction_id| GavelStream {
            bids_path: format!("/api/v1/auctions/{auction_id}/bids"),
            auction_id,
            tokens: tokens.clone(),
        })
        .collect();
    Ok((address, streams))
}

fn set_up_auctions(
    cluster: &LocalCluster,
    leader: u64,
    auction_ids: &[String],
    now: u64,
) -> anyhow::Result<()> {
    for auction_id in auction_ids {
        check_interrupt()?;
        let spec = json!({
            "id": auction_id, "title": "Bid throughput benchmark parcel",
            "parcel": {"district": "benchmark", "area_m2": 10000, "use": "residential"},
            "start_price": START_PRICE, "increment": INCREMENT, "countdown_ms": 60_000,
            "listing_opens_at_ms": now, "listing_closes_at_ms": now + 6 * 3_600_000,
        });
        cluster.control_expect(leader, "POST", "/control/v1/auctions", spec, &[200, 201])?;
        let qualifications = format!("/control/v1/auctions/{auction_id}/qualifications");
        for index in 0..2 {
            let bidder = json!({"bidder_id": format!("bench-bidder-{index}")});
            cluster.control_expect(leader, "POST", &qualifications, bidder, &[201])?;
        }
    }
    Ok(())
}

/// One connection's bids: on its own auction, the two bidders in turn, the `n`th bid
/// at the start price plus `n` increments.
pub struct GavelStream {
    auction_id: String,
    bids_path: String,
    tokens: [String; 2],
}

impl Stream for GavelStream {
    fn request(&self, sequence: u64) -> WriteRequest {
        let amount = START_PRICE.saturating_add(INCREMENT.saturating_mul(sequence));
        // Unique per bidder: a retry of the same sequence number replays its receipt.
        let request_id = format!("{}-{sequence}", self.auction_id);
        WriteRequest {
            path: self.bids_path.clone(),
            token: Some(self.tokens[(sequence % 2) as usize].clone()),
            body: json!({"amount": amount, "request_id": request_id}).to_string(),
        }
    }

    fn judge(&self, status: u16, body: &[u8]) -> Answer {
        let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match status {
            201 if answer["seq"].is_u64() => Answer::Acknowledged,
            200 if answer["seq"].is_u64() => Answer::Replayed,
            400..=499 => Answer::Refused(
                answer["code"]
                    .as_str()
                    .map_or_else(|| format!("http_{status}"), str::to_string),
            ),
            _ => Answer::Failed(format!(
                "Gavel answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> GavelStream {
        GavelStream {
            auction_id: "a-1".into(),
            bids_path: "/api/v1/auctions/a-1/bids".into(),
            tokens: ["alice".into(), "bob".into()],
        }
    }

    #[test]
    fn two_bidders_take_turns_at_strictly_increasing_amounts() {
        let stream = stream();
        let bids: Vec<(Option<String>, Value)> = (0..3)
            .map(|sequence| {
                let request = stream.request(sequence);
                (request.token, serde_json::from_str(&request.body).unwrap())
            })
            .collect();
        let tokens: Vec<&str> = bids
            .iter()
            .filter_map(|(token, _)| token.as_deref())
            .collect();
        assert_eq!(tokens, ["alice", "bob", "alice"]);
        let amounts: Vec<u64> = bids
            .iter()
            .filter_map(|(_, body)| body["amount"].as_u64())
            .collect();
        assert_eq!(
            amounts,
            [
                START_PRICE,
                START_PRICE + INCREMENT,
                START_PRICE + 2 * INCREMENT
            ]
        );
        assert_eq!(bids[1].1["request_id"], "a-1-1");
    }

    #[test]
    fn only_a_new_receipt_is_a_new_acknowledged_bid() {
        let stream = stream();
        let receipt = br#"{"bid_id":"b","seq":4,"amount":1040000}"#;
        assert_eq!(stream.judge(201, receipt), Answer::Acknowledged);
        assert_eq!(stream.judge(200, receipt), Answer::Replayed);
        assert_eq!(
            stream.judge(409, br#"{"code":"below_minimum"}"#),
            Answer::Refused("below_minimum".into())
        );
        assert!(matches!(
            stream.judge(503, b"{\"code\":\"no_leader\"}"),
            Answer::Failed(_)
        ));
        assert!(matches!(stream.judge(201, b"not json"), Answer::Failed(_)));
    }
}

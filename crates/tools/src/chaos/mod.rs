//! `gavel chaos`: fault injection against a real cluster, with a history checker.
//!
//! Each node runs as its own host: a network namespace with a veth into a bridge
//! (`net`), its data on a small filesystem of its own (`disk`). Bidders bid through
//! every node all along, retrying each bid with its request_id, and every round injects
//! one kind of fault (`faults`), heals it, has an operator suspend and resume the
//! auction, lets the auction close, and waits until every node has recovered and
//! applied the same log. Then the `checker` judges the bidders' histories and every
//! node's copy of the auction. A node that exits during a fault is restarted on healing,
//! as its service manager would.
//!
//! Every round has its own seed (printed when it fails): `--replay SEED` with the same
//! `--kinds` runs that round again with the same choices (victims, timings, loss rates);
//! the machine's timing is not replayed. Everything is bounded: each wait has a limit,
//! the bidders a request cap and a deadline; only the harness's own namespaces are
//! addressed. Needs root (namespaces, mounts) and Debian's iproute2, nftables and
//! e2fsprogs.

pub mod checker;
mod disk;
mod faults;
mod net;
mod observe;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::bench::load::{BidOutcome, Bidder, Load, LoadPlan};
use checker::check_round;
use disk::DataDisk;
pub use faults::FaultKind;
use faults::{heal, inject, Target};
use gavel_testkit::local::{
    self, check_interrupt, sleep_checked, Interrupt, LocalCluster, NodePlacement,
};
use net::Network;
use report::{failure_text, report, RoundRecord};

const VOTERS: u64 = 3;
const STANDBYS: u64 = 1;
const START_PRICE: u64 = 100_000;
const INCREMENT: u64 = 1_000;
/// Each node's data filesystem (sparse: only what is written takes disk). Room for the
/// archive of a long run: a 256 MiB image filled up after about 180 rounds.
const DISK_MIB: u64 = 1024;
/// The longest wait for a leader, a restarted node, or replicas to agree.
const WAIT_LIMIT: Duration = Duration::from_secs(30);
const COUNTDOWN_MS: u64 = 1_500;
/// The listing outlasts the fault, its healing and the operator's suspension (at most
/// about 6.5 s), so the auction cannot close for want of bids while the cluster is
/// broken; timed bidding follows once the bidders stop.
const LISTING_MS: u64 = 8_000;
/// Appended to every node's configuration.
const NODE_EXTRA_CONFIG: &str = "[faults]\nenabled = true\n";

#[derive(Debug, clap::Args)]
pub struct ChaosArgs {
    /// Rounds of each fault kind.
    #[arg(long, default_value_t = 1)]
    pub rounds_per_kind: u32,
    /// The fault kinds, comma-separated; default all of them.
    #[arg(long, value_delimiter = ',', value_enum)]
    pub kinds: Vec<FaultKind>,
    /// The run's seed; each round's seed derives from it. Default: random.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run one round of each of `--kinds` with this round seed (printed by a failure).
    #[arg(long, value_name = "ROUND_SEED")]
    pub replay: Option<u64>,
    /// The private /24 for the namespaces, as its first three octets.
    #[arg(long, default_value = "10.213.0")]
    pub subnet: String,
    /// Bidder threads bidding through every node.
    #[arg(long, default_value_t = 4)]
    pub bidders: usize,
    /// Where node configs, images and logs go; default a fresh temporary directory,
    /// removed after a run that passed.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// The gavel executable that runs the nodes; default this one.
    #[arg(long, value_name = "FILE")]
    pub binary: Option<PathBuf>,
}

/// Everything a run owns. Field order is drop order: nodes stop before their disks are
/// unmounted, and disks go before the namespaces.
struct Harness {
    cluster: LocalCluster,
    disks: Vec<DataDisk>,
    network: Network,
    bidders: Vec<(String, String)>,
    bidder_count: usize,
    /// Nodes restarted during the current round (their counters started again).
    restarted: std::collections::BTreeSet<u64>,
}

pub fn run_chaos(args: ChaosArgs) -> anyhow::Result<()> {
    check_prerequisites(&args)?;
    let _interrupt = Interrupt::install();
    let kinds = if args.kinds.is_empty() {
        FaultKind::ALL.to_vec()
    } else {
        args.kinds.clone()
    };
    let seed = args.seed.unwrap_or_else(rand::random);
    let (directory, temporary) = match &args.work_dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("gavel-chaos-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    let binary = match &args.binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe().context("cannot find the gavel executable")?,
    };
    let plan: Vec<(FaultKind, u64)> = match args.replay {
        Some(round_seed) => kinds.iter().map(|&kind| (kind, round_seed)).collect(),
        None => {
            let mut seeds = StdRng::seed_from_u64(seed);
            (0..args.rounds_per_kind)
                .flat_map(|_| kinds.iter().copied())
                .map(|kind| (kind, seeds.gen::<u64>()))
                .collect()
        }
    };
    println!(
        "gavel chaos: {} rounds ({} kinds), seed {seed}; {VOTERS} voters + {STANDBYS} standby in namespaces on {}.0/24; files in {}",
        plan.len(),
        kinds.len(),
        args.subnet,
        directory.display()
    );
    let mut harness = Harness::start(&binary, &directory, &args)?;
    if !harness.network.has_netem() {
        println!("note: this kernel has no tc netem; `degrade` delays with a token bucket's queue instead");
    }
    let progress = local::progress_bar("chaos", plan.len() as u64);
    let mut records = Vec::with_capacity(plan.len());
    for (number, &(kind, round_seed)) in plan.iter().enumerate() {
        check_interrupt()?;
        progress.set_message(format!("round {}: {}", number + 1, kind.name()));
        let record = match harness.round(number + 1, kind, round_seed) {
            Ok(record) => record,
            Err(error) if local::interrupted() => return Err(error),
            // The round could not be carried out (no leader, a refused setup call): that
            // is a failure of the cluster under test, not a reason to stop the run.
            Err(error) => RoundRecord::aborted(kind, round_seed, &error),
        };
        if !record.findings.is_empty() {
            let logs: Vec<PathBuf> = harness
                .cluster
                .ids()
                .into_iter()
                .filter_map(|id| harness.cluster.log_path(id).ok().map(PathBuf::from))
                .collect();
            let text = failure_text(number + 1, &record, &logs);
            progress.suspend(|| println!("{text}"));
        }
        if progress.is_hidden() {
            // Not a terminal (a log file, CI): one line per round instead of the bar.
            println!(
                "round {}/{}: {} {} ({}; {} bids acknowledged)",
                number + 1,
                plan.len(),
                kind.name(),
                if record.findings.is_empty() {
                    "passed"
                } else {
                    "FAILED"
                },
                record.fault,
                record.acknowledged
            );
        }
        records.push(record);
        progress.inc(1);
    }
    progress.finish_and_clear();
    drop(harness);
    print!("{}", report(&records));
    let failed = records.iter().filter(|r| !r.findings.is_empty()).count();
    if failed == 0 && temporary {
        let _ = std::fs::remove_dir_all(&directory);
    } else if failed > 0 {
        println!("node logs and data kept in {}", directory.display());
    }
    if failed > 0 {
        bail!("{failed} of {} rounds failed", records.len());
    }
    Ok(())
}

fn check_prerequisites(args: &ChaosArgs) -> anyhow::Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("gavel chaos needs root: it creates network namespaces and mounts filesystem images");
    }
    let octets: Vec<&str> = args.subnet.split('.').collect();
    if octets.len() != 3 || octets.iter().any(|octet| octet.parse::<u8>().is_err()) {
        bail!(
            "--subnet must be three octets such as 10.213.0, not {:?}",
            args.subnet
        );
    }
    if octets[0] != "10" && !(octets[0] == "192" && octets[1] == "168") {
        bail!("--subnet must be private (10.x.y or 192.168.x)");
    }
    if args.bidders == 0 || args.bidders > 64 {
        bail!("--bidders must be between 1 and 64");
    }
    if args.rounds_per_kind == 0 || args.rounds_per_kind > 10_000 {
        bail!("--rounds-per-kind must be between 1 and 10000");
    }
    for (program, package) in [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("tc", "iproute2"),
        ("mkfs.ext4", "e2fsprogs"),
    ] {
        let found = std::process::Command::new(program)
            .arg("-V")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok();
        if !found {
            bail!("gavel chaos needs {program} (Debian package {package})");
        }
    }
    Ok(())
}

impl Harness {
    fn start(
        binary: &std::path::Path,
        directory: &std::path::Path,
        args: &ChaosArgs,
    ) -> anyhow::Result<Harness> {
        let ids: Vec<u64> = (1..=VOTERS + STANDBYS).collect();
        let network = Network::create(&args.subnet, &ids)?;
        let mut disks = Vec::new();
        let mut placements = Vec::new();
        for &id in &ids {
            let disk = DataDisk::create(
                &directory.join(format!("node-{id}.img")),
                &directory.join(format!("node-{id}-data")),
                DISK_MIB,
            )?;
            placements.push(NodePlacement {
                ip: network.node_ip(id),
                ports: (8080, 9080, 7080),
                events_port: None,
                netns: Some(network.netns(id)),
                data_dir: Some(disk.mount_point.join("gavel")),
            });
            disks.push(disk);
        }
        let cluster =
            LocalCluster::start_placed(binary, directory, VOTERS, &placements, NODE_EXTRA_CONFIG)?;
        let mut harness = Harness {
            cluster,
            disks,
            network,
            bidders: Vec::new(),
            bidder_count: args.bidders,
            restarted: Default::default(),
        };
        harness.register_bidders()?;
        Ok(harness)
    }

    fn leader(&self) -> anyhow::Result<u64> {
        self.cluster
            .wait_for_leader(WAIT_LIMIT)?
            .map(|(id, _)| id)
            .ok_or_else(|| anyhow!("no leader within {} s", WAIT_LIMIT.as_secs()))
    }

    /// A control request to the leader, retried (with a new leader) until `WAIT_LIMIT`.
    fn control(
        &self,
        method: &str,
        path: &str,
        body: Value,
        expected: &[u16],
    ) -> anyhow::Result<Value> {
        let started = Instant::now();
        loop {
            check_interrupt()?;
            let leader = self.leader()?;
            match self
                .cluster
                .control(leader, method, path, Some(body.clone()))
            {
                Ok((status, answer)) if expected.contains(&status) => return Ok(answer),
                Ok((status, answer)) if status < 500 => {
                    bail!("{method} {path} answered {status}: {answer}")
                }
                _ if started.elapsed() > WAIT_LIMIT => bail!(
                    "{method} {path}: no answer within {} s",
                    WAIT_LIMIT.as_secs()
                ),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn register_bidders(&mut self) -> anyhow::Result<()> {
        for index in 0..self.bidder_count {
            let bidder_id = format!("chaos-bidder-{index}");
            let secret = format!("secret-{:032x}", rand::random::<u128>());
            let registration = json!({"bidder_id": bidder_id, "name": format!("Chaos bidder {index}"), "secret": secret});
            self.control("POST", "/control/v1/bidders", registration, &[201])?;
            self.bidders.push((bidder_id, secret));
        }
        Ok(())
    }

    /// Qualifies every bidder for `auction_id` and logs each in.
    fn bidders_for(&self, auction_id: &str) -> anyhow::Result<Vec<Bidder>> {
        let agent = local::agent();
        let mut bidders = Vec::new();
        for (bidder_id, secret) in &self.bidders {
            let qualification = self.control(
                "POST",
                &format!("/control/v1/auctions/{auction_id}/qualifications"),
                json!({"bidder_id": bidder_id}),
                &[201],
            )?;
            let bidder_number = qualification["bidder_number"]
                .as_u64()
                .ok_or_else(|| anyhow!("qualification without bidder_number: {qualification}"))?;
            let leader = self.leader()?;
            let url = format!("{}/api/v1/sessions", self.cluster.node(leader)?.public_url);
            let login = json!({"bidder_id": bidder_id, "secret": secret});
            let (status, session) = local::request(&agent, "POST", &url, None, Some(login))
                .map_err(|error| anyhow!("POST {url}: {error}"))?;
            let token = match (status, session["token"].as_str()) {
                (201, Some(token)) => token.to_string(),
                _ => bail!("login of {bidder_id} answered {status}: {session}"),
            };
            bidders.push(Bidder {
                bidder_id: bidder_id.clone(),
                token,
                bidder_number,
            });
        }
        Ok(bidders)
    }

    fn round(&mut self, number: usize, kind: FaultKind, seed: u64) -> anyhow::Result<RoundRecord> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut notes = Vec::new();
        self.restarted.clear();
        let now = local::now_ms();
        let auction_id = format!("chaos-{number:04}-{}", kind.name());
        let spec = json!({
            "id": auction_id,
            "title": format!("Chaos round {number}: {}", kind.name()),
            "parcel": {"district": "chaos"},
            "start_price": START_PRICE,
            "increment": INCREMENT,
            "listing_opens_at_ms": now,
            "listing_closes_at_ms": now + LISTING_MS,
            "countdown_ms": COUNTDOWN_MS,
            "failover_grace_ms": COUNTDOWN_MS
        });
        self.control("POST", "/control/v1/auctions", spec, &[201])?;
        let bidders = self.bidders_for(&auction_id)?;
        let load = Load::start(LoadPlan {
            auction_id: auction_id.clone(),
            public_urls: self.cluster.public_urls(),
            bidders: bidders.clone(),
            deadline: Instant::now() + Duration::from_secs(60),
            max_requests: 20_000,
        });
        sleep_checked(Duration::from_millis(rng.gen_range(1200..=1800)))?;
        let leader = self.leader()?;
        let hold = faults::hold(&mut rng);
        let crashed_before = if kind == FaultKind::Panic {
            Some(self.crashed_counts())
        } else {
            None
        };
        let mut target = Target {
            cluster: &mut self.cluster,
            network: &self.network,
            disks: &self.disks,
            leader,
            auction_id: &auction_id,
        };
        let (injected, fault) = inject(kind, &mut target, &mut rng)?;
        sleep_checked(hold)?;
        heal(&injected, &mut target)?;
        let healed = Instant::now();
        let healed_at_ms = local::now_ms();
        self.restart_exited(&mut notes)?;
        let recovery = self
            .wait_all_up(&mut notes)?
            .map(|at| at.duration_since(healed));
        if recovery.is_none() {
            notes.push(format!(
                "not every node up within {} s of healing",
                WAIT_LIMIT.as_secs()
            ));
        }
        sleep_checked(Duration::from_millis(1000))?;
        let reason = json!({"reason": "chaos: operator check"});
        let suspended = self.control(
            "POST",
            &format!("/control/v1/auctions/{auction_id}/suspend"),
            reason.clone(),
            &[200],
        );
        if let Err(error) = &suspended {
            notes.push(format!("suspend not done: {error:#}"));
        }
        sleep_checked(Duration::from_millis(300))?;
        if suspended.is_ok() {
            self.control(
                "POST",
                &format!("/control/v1/auctions/{auction_id}/resume"),
                reason,
                &[200],
            )?;
        }
        sleep_checked(Duration::from_millis(500))?;
        let log = load.stop();
        notes.push(format!("refused by code: {:?}", log.refused));
        self.wait_closed(&auction_id)?;
        let after_close = self.bid_after_close(&auction_id, &bidders, &log.history)?;
        self.restart_exited(&mut notes)?;
        if self.wait_converged(&mut notes)?.is_none() {
            notes.push(format!(
                "replicas did not agree within {} s",
                WAIT_LIMIT.as_secs()
            ));
        }
        let replicas = self.replica_reports(&auction_id)?;
        let mut findings = check_round(&log.history, &after_close, &replicas, healed_at_ms);
        if let Some(before) = crashed_before {
            findings.extend(self.unrestarted_actors(&before)?);
        }
        let count = |matches: fn(&BidOutcome) -> bool| {
            log.history.iter().filter(|op| matches(&op.outcome)).count()
        };
        Ok(RoundRecord {
            kind,
            seed,
            fault,
            findings,
            acknowledged: count(|o| matches!(o, BidOutcome::Acknowledged { .. })),
            refused: count(|o| matches!(o, BidOutcome::Refused { .. })),
            unknown: count(|o| matches!(o, BidOutcome::Unknown)),
            restarts: notes.iter().filter(|note| note.contains("exited")).count(),
            recovery,
            notes,
        })
    }

    /// Restarts every node whose process exited (as its service manager would).
    fn restart_exited(&mut self, notes: &mut Vec<String>) -> anyhow::Result<()> {
        for id in self.cluster.ids() {
            if let Some(status) = self.cluster.reap_exited(id)? {
                notes.push(format!("node {id} exited ({status}); restarted"));
                self.restarted.insert(id);
            }
            if !self.cluster.is_running(id) {
                self.cluster.spawn(id)?;
            }
        }
        Ok(())
    }
}

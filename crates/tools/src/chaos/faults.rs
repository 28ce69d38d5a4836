//! The faults `gavel chaos` injects, one kind per round, and how each is healed.

use std::time::Duration;

use anyhow::{anyhow, bail};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::json;

use super::disk::DataDisk;
use super::net::Network;
use gavel_testkit::local::LocalCluster;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum FaultKind {
    /// SIGKILL of the leader; healed by restarting it.
    KillLeader,
    /// SIGKILL of a follower voter; healed by restarting it.
    KillFollower,
    /// SIGSTOP of the leader, then SIGCONT.
    Pause,
    /// The leader cut off from every other node (bidders still reach it).
    PartitionLeader,
    /// Two nodes cut off from the other two.
    Split,
    /// The leader's packets to the other nodes (or theirs to it) dropped, one way only.
    OneWay,
    /// Random loss and delay between every node and the others.
    Degrade,
    /// The leader's data filesystem filled up.
    DiskFull,
    /// A panic inside the round auction's actor on every node.
    Panic,
    /// The leader's clock set 2 s fast or slow (fault injection); healed by setting it
    /// back. It must hand leadership over and stamp nothing meanwhile.
    ClockSkew,
}

impl FaultKind {
    pub const ALL: [FaultKind; 10] = [
        FaultKind::KillLeader,
        FaultKind::KillFollower,
        FaultKind::Pause,
        FaultKind::PartitionLeader,
        FaultKind::Split,
        FaultKind::OneWay,
        FaultKind::Degrade,
        FaultKind::DiskFull,
        FaultKind::Panic,
        FaultKind::ClockSkew,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillLeader => "kill-leader",
            FaultKind::KillFollower => "kill-follower",
            FaultKind::Pause => "pause",
            FaultKind::PartitionLeader => "partition-leader",
            FaultKind::Split => "split",
            FaultKind::OneWay => "one-way",
            FaultKind::Degrade => "degrade",
            FaultKind::DiskFull => "disk-full",
            FaultKind::Panic => "panic",
            FaultKind::ClockSkew => "clock-skew",
        }
    }
}

/// What a round broke, so `heal` can undo it.
pub enum Injected {
    Killed(u64),
    Paused(u64),
    Cut(Vec<u64>),
    Filled(u64),
    Skewed(u64),
    Nothing,
}

/// The cluster as a fault sees it.
pub struct Target<'a> {
    pub cluster: &'a mut LocalCluster,
    pub network: &'a Network,
    pub disks: &'a [DataDisk],
    pub leader: u64,
    pub auction_id: &'a str,
}

/// Injects `kind`; returns what to heal and a line for the report.
pub fn inject(
    kind: FaultKind,
    target: &mut Target<'_>,
    rng: &mut StdRng,
) -> anyhow::Result<(Injected, String)> {
    let leader = target.leader;
    let ids = target.cluster.ids();
    let others: Vec<u64> = ids.iter().copied().filter(|&id| id != leader).collect();
    match kind {
        FaultKind::KillLeader => {
            target.cluster.kill(leader)?;
            Ok((
                Injected::Killed(leader),
                format!("SIGKILL node {leader} (leader)"),
            ))
        }
        FaultKind::KillFollower => {
            let followers = voter_followers(target.cluster, leader);
            let victim = *followers
                .choose(rng)
                .ok_or_else(|| anyhow!("no follower voter to kill"))?;
            target.cluster.kill(victim)?;
            Ok((
                Injected::Killed(victim),
                format!("SIGKILL node {victim} (follower)"),
            ))
        }
        FaultKind::Pause => {
            target.cluster.signal(leader, libc::SIGSTOP)?;
            Ok((
                Injected::Paused(leader),
                format!("SIGSTOP node {leader} (leader)"),
            ))
        }
        FaultKind::PartitionLeader => {
            target.network.cut(leader, &others, true, true)?;
            Ok((
                Injected::Cut(vec![leader]),
                format!("node {leader} (leader) cut off from {others:?}"),
            ))
        }
        FaultKind::Split => {
            let mut shuffled = others.clone();
            shuffled.shuffle(rng);
            let half = ids.len() / 2;
            let mut side_a = vec![leader];
            side_a.extend(shuffled.iter().take(half.saturating_sub(1)));
            let side_b: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| !side_a.contains(id))
                .collect();
            for &id in &side_a {
                target.network.cut(id, &side_b, true, true)?;
            }
            for &id in &side_b {
                target.network.cut(id, &side_a, true, true)?;
            }
            Ok((
                Injected::Cut(ids.clone()),
                format!("split {side_a:?} | {side_b:?}"),
            ))
        }
        FaultKind::OneWay => {
            let outbound = rng.gen_bool(0.5);
            target.network.cut(leader, &others, !outbound, outbound)?;
            let direction = if outbound { "from" } else { "to" };
            Ok((
                Injected::Cut(vec![leader]),
                format!("packets {direction} node {leader} (leader) dropped, one way"),
            ))
        }
        FaultKind::Degrade => {
            let percent = rng.gen_range(5..=20);
            let delay_ms = rng.gen_range(20..=80);
            let mut applied = String::new();
            for &id in &ids {
                applied = target.network.degrade(id, percent, delay_ms)?;
            }
            Ok((Injected::Cut(ids.clone()), format!("every node: {applied}")))
        }
        FaultKind::DiskFull => {
            let disk = target
                .disks
                .get(leader as usize - 1)
                .ok_or_else(|| anyhow!("node {leader} has no data disk"))?;
            let written = disk.fill()?;
            Ok((
                Injected::Filled(leader),
                format!(
                    "node {leader} (leader) data disk filled ({} MiB)",
                    written >> 20
                ),
            ))
        }
        FaultKind::Panic => {
            let mut injected = Vec::new();
            for &id in &ids {
                let (status, answer) = target.cluster.control(
                    id,
                    "POST",
                    "/control/v1/faults/panic",
                    Some(json!({"auction_id": target.auction_id})),
                )?;
                match status {
                    202 => injected.push(id),
                    404 if answer["code"] == "auction_not_found" => {}
                    _ => bail!("node {id} refused the injected panic: {status} {answer}"),
                }
            }
            if injected.is_empty() {
                bail!("no node ran an actor for {} to panic", target.auction_id);
            }
            Ok((
                Injected::Nothing,
                format!("panic in the auction actor on nodes {injected:?}"),
            ))
        }
        FaultKind::ClockSkew => {
            let offset_ms = if rng.gen_bool(0.5) {
                CLOCK_SKEW_MS
            } else {
                -CLOCK_SKEW_MS
            };
            set_clock_offset(target, leader, offset_ms)?;
            Ok((
                Injected::Skewed(leader),
                format!("node {leader} (leader) clock offset {offset_ms:+} ms"),
            ))
        }
    }
}

/// How far `clock-skew` moves the leader's clock, either way.
const CLOCK_SKEW_MS: i64 = 2_000;

/// Sets node `id`'s clock offset through its fault-injection endpoint.
fn set_clock_offset(target: &mut Target<'_>, id: u64, offset_ms: i64) -> anyhow::Result<()> {
    let body = json!({"offset_ms": offset_ms});
    let (status, answer) =
        target
            .cluster
            .control(id, "POST", "/control/v1/faults/clock", Some(body))?;
    if status != 202 {
        bail!("node {id} refused the clock offset: {status} {answer}");
    }
    Ok(())
}

/// Undoes what `inject` did. A node that exited meanwhile is restarted by the caller.
pub fn heal(injected: &Injected, target: &mut Target<'_>) -> anyhow::Result<()> {
    match injected {
        Injected::Killed(id) => target.cluster.spawn(*id),
        Injected::Paused(id) => target.cluster.signal(*id, libc::SIGCONT),
        Injected::Cut(ids) => {
            for &id in ids {
                target.network.heal(id)?;
            }
            Ok(())
        }
        Injected::Filled(id) => match target.disks.get(*id as usize - 1) {
            Some(disk) => disk.free(),
            None => Ok(()),
        },
        Injected::Skewed(id) => set_clock_offset(target, *id, 0),
        Injected::Nothing => Ok(()),
    }
}

/// Voters other than the leader, from the leader's view.
fn voter_followers(cluster: &LocalCluster, leader: u64) -> Vec<u64> {
    cluster
        .cluster_view(leader)
        .map(|view| {
            view.voters()
                .map(|node| node.node_id)
                .filter(|&id| id != leader && cluster.is_running(id))
                .collect()
        })
        .unwrap_or_default()
}

/// How long a fault lasts before it is healed: 1–2.5 s.
pub fn hold(rng: &mut StdRng) -> Duration {
    Duration::from_millis(rng.gen_range(1000..=2500))
}

//! `gavel bench limiter`: the cost of the public listener's rate limits per request,
//! measured in-process on the node library's own `RateLimiter` (the middleware calls
//! `check_request` once per request, before any handler).
//!
//! Two workloads, each on `threads` threads at once (the public listener's workers share
//! one limiter) over `rounds` rounds, reported as the median nanoseconds per check and
//! checks per second:
//! - `steady`: clients that come back: each check names one of `clients` addresses and
//!   its session token, within generous limits, so every check passes and finds its keys;
//! - `flood`: a new address and a new token on every check against a `max_tracked` of
//!   `clients`, so the maps stay full and make room again and again.
//!
//! Addresses and tokens are made before the clock starts; the SHA-256 of each token,
//! which the limiter computes on every check, is part of what is measured.

use std::net::IpAddr;
use std::sync::Barrier;
use std::time::Instant;

use gavel::api::limits::RateLimiter;
use gavel::config::LimitsSection;

/// `gavel bench limiter`: nanoseconds per rate-limit check, steady clients and a flood.
#[derive(Debug, Clone, clap::Args)]
pub struct LimiterArgs {
    /// Threads checking at once (the node's public workers).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Checks per thread per round.
    #[arg(long, default_value_t = 500_000)]
    pub checks: usize,
    /// Distinct clients of the steady workload, and max_tracked of the flood.
    #[arg(long, default_value_t = 10_000)]
    pub clients: usize,
    /// Rounds of each workload; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

/// One workload's keys: the address and token of each check, per thread.
struct Workload {
    name: &'static str,
    limits: LimitsSection,
    keys: Vec<Vec<(IpAddr, String)>>,
}

fn steady(args: &LimiterArgs) -> Workload {
    let clients: Vec<(IpAddr, String)> = (0..args.clients)
        .map(|index| (address(index), format!("steady-session-token-{index:08}")))
        .collect();
    let keys = (0..args.threads)
        .map(|thread| {
            (0..args.checks)
                .map(|check| clients[(check * 7919 + thread * 104_729) % clients.len()].clone())
                .collect()
        })
        .collect();
    Workload {
        name: "steady",
        limits: LimitsSection {
            per_ip_per_second: 1_000_000,
            per_ip_burst: 1_000_000,
            per_session_per_second: 1_000_000,
            per_session_burst: 1_000_000,
            max_tracked: args.clients * 2,
            ..LimitsSection::default()
        },
        keys,
    }
}

fn flood(args: &LimiterArgs) -> Workload {
    let keys = (0..args.threads)
        .map(|thread| {
            (0..args.checks)
                .map(|check| {
                    let index = thread * args.checks + check;
                    (address(index), format!("flood-session-token-{index:010}"))
                })
                .collect()
        })
        .collect();
    Workload {
        name: "flood",
        limits: LimitsSection {
            max_tracked: args.clients,
            ..LimitsSection::default()
        },
        keys,
    }
}

/// A distinct IPv4 address per index (10.0.0.0/8 and up; never contacted).
fn address(index: usize) -> IpAddr {
    IpAddr::from((0x0a00_0000u32).wrapping_add(index as u32).to_be_bytes())
}

/// One round: every thread runs its checks on a fresh limiter; nanoseconds per check
/// (wall time of the slowest thread over all checks) and the refusals seen.
fn round(workload: &Workload) -> (f64, usize) {
    let limiter = RateLimiter::new(&workload.limits);
    let barrier = Barrier::new(workload.keys.len());
    let (elapsed, refused) = std::thread::scope(|scope| {
        let handles: Vec<_> = workload
            .keys
            .iter()
            .map(|keys| {
                let (limiter, barrier) = (&limiter, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let started = Instant::now();
                    let mut refused = 0;
                    for (ip, token) in keys {
                        if limiter.check_request(Some(*ip), Some(token)).is_err() {
                            refused += 1;
                        }
                    }
                    (started.elapsed(), refused)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("limiter bench thread"))
            .fold(
                (std::time::Duration::ZERO, 0),
                |(slowest, refused), (elapsed, more)| (slowest.max(elapsed), refused + more),
            )
    });
    let checks: usize = workload.keys.iter().map(Vec::len).sum();
    (elapsed.as_nanos() as f64 / checks as f64, refused)
}

pub fn run_limiter(args: LimiterArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.threads >= 1 && args.checks >= 1 && args.clients >= 2 && args.rounds >= 1,
        "--threads, --checks and --rounds must be at least 1, --clients at least 2"
    );
    println!(
        "rate-limit checks: {} threads × {} checks, {} clients, {} rounds (median)",
        args.threads, args.checks, args.clients, args.rounds
    );
    println!("| workload | ns per check | checks/s | refused |");
    println!("|---|---:|---:|---:|");
    for workload in [steady(&args), flood(&args)] {
        let mut figures: Vec<(f64, usize)> = (0..args.rounds).map(|_| round(&workload)).collect();
        figures.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (ns, refused) = figures[figures.len() / 2];
        println!(
            "| {} | {:.0} | {:.0} | {} |",
            workload.name,
            ns,
            1e9 / ns,
            refused
        );
    }
    Ok(())
}

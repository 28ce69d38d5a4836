//! The Janitor actor purifies the node on a timer (DESIGN.md decision 7).
//!
//! Each sweep: on the leader, it proposes `Command::Purge` so expired sessions and old
//! idempotency records leave the replicated state; on every node, it probes each
//! Auction actor's mailbox (an actor that does not answer within `STUCK_AFTER` is
//! replaced), and has the ResourcePool restart actors of live auctions that stopped and
//! release those of auctions closed long enough ago. The last report is served at
//! `GET /control/v1/janitor`.

use std::time::Duration;

use actix::prelude::*;
use futures::future::join_all;
use serde::Serialize;

use super::auction::Ping;
use super::resource_pool::{ListActors, ResourcePool, Sweep};
use super::supervisor::{IsLeader, Propose, ProposeError, Supervisor};
use super::wall_clock_ms;
use crate::kernel::{Command, Outcome};

/// An Auction actor whose mailbox is not drained within this bound is replaced.
const STUCK_AFTER: Duration = Duration::from_secs(2);

pub struct JanitorSettings {
    pub interval_ms: u64,
    pub request_retention_ms: u64,
    pub closed_auction_linger_ms: u64,
}

/// What the last sweep did, and totals since the node started.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct JanitorReport {
    /// When the last sweep finished; null before the first.
    pub last_sweep_at_ms: Option<u64>,
    pub sweeps: u64,
    pub sessions_expired: u64,
    pub requests_expired: u64,
    /// Auction actors the sweeps (re)started: live auctions whose actor had stopped or
    /// been replaced, or that entered the preload window.
    pub actors_started: u64,
    pub actors_stuck_replaced: u64,
    pub auctions_released: u64,
    pub live_actors: u64,
    /// Why the last purge was not proposed, if it was not (for example: not the leader).
    pub last_purge_skipped: Option<String>,
}

pub struct Janitor {
    supervisor: Addr<Supervisor>,
    pool: Addr<ResourcePool>,
    settings: JanitorSettings,
    report: JanitorReport,
    sweeping: bool,
}

impl Janitor {
    pub fn new(
        supervisor: Addr<Supervisor>,
        pool: Addr<ResourcePool>,
        settings: JanitorSettings,
    ) -> Self {
        Janitor {
            supervisor,
            pool,
            settings,
            report: JanitorReport::default(),
            sweeping: false,
        }
    }

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        if self.sweeping {
            return;
        }
        self.sweeping = true;
        let supervisor = self.supervisor.clone();
        let pool = self.pool.clone();
        let purge = Propose {
            command: Command::Purge {
                request_retention_ms: self.settings.request_retention_ms,
            },
            actor: "janitor".to_string(),
        };
        let closed_linger_ms = self.settings.closed_auction_linger_ms;
        async move {
            // Only the leader purges: a follower's proposal would be forwarded to the
            // leader, which purges on its own sweep anyway.
            let purged = match supervisor.send(IsLeader).await {
                Ok(true) => Some(supervisor.send(purge).await),
                _ => None,
            };
            let actors = pool.send(ListActors).await.unwrap_or_default();
            let probes = actors.into_iter().map(|(auction_id, addr)| async move {
                match tokio::time::timeout(STUCK_AFTER, addr.send(Ping)).await {
                    Ok(Ok(())) => None,
                    _ => Some(auction_id),
                }
            });
            let stuck: Vec<String> = join_all(probes).await.into_iter().flatten().collect();
            let stuck_count = stuck.len() as u64;
            let swept = pool
                .send(Sweep {
                    closed_linger_ms,
                    stuck,
                })
                .await
                .unwrap_or_default();
            (purged, stuck_count, swept)
        }
        .into_actor(self)
        .map(|(purged, stuck_count, swept), janitor, _ctx| {
            let report = &mut janitor.report;
            report.last_purge_skipped = None;
            match purged {
                None => report.last_purge_skipped = Some("not the leader".to_string()),
                Some(Ok(Ok(committed))) => {
                    if let Ok(Outcome::Purged { sessions, requests }) = committed.outcome {
                        report.sessions_expired += sessions;
                        report.requests_expired += requests;
                    }
                }
                Some(Ok(Err(ProposeError::NotLeader { .. }))) => {
                    report.last_purge_skipped = Some("not the leader".to_string());
                }
                Some(Ok(Err(error))) => report.last_purge_skipped = Some(error.to_string()),
                Some(Err(error)) => report.last_purge_skipped = Some(error.to_string()),
            }
            report.actors_stuck_replaced += stuck_count;
            report.actors_started += swept.actors_started;
            report.auctions_released += swept.auctions_released;
            report.live_actors = swept.live_actors;
            report.sweeps += 1;
            report.last_sweep_at_ms = Some(wall_clock_ms());
            janitor.sweeping = false;
        })
        .spawn(ctx);
    }
}

impl Actor for Janitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let interval = Duration::from_millis(self.settings.interval_ms);
        ctx.run_interval(interval, |janitor, ctx| janitor.sweep(ctx));
    }
}

/// The last purification report.
pub struct GetReport;

impl Message for GetReport {
    type Result = JanitorReport;
}

impl Handler<GetReport> for Janitor {
    type Result = MessageResult<GetReport>;

    fn handle(&mut self, _: GetReport, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.report.clone())
    }
}

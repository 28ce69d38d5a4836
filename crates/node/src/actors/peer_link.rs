//! The PeerLink actor: one per other node of the cluster. It owns the link to that peer
//! (the shared `PeerClient` every caller on this node uses for it), runs the health check
//! — a ping every `check_interval_ms` — and reports the peer to the Supervisor as `up`,
//! `suspect` (one or more checks missed) or `down` (`down_after_misses` checks missed in a
//! row), with the time of the last answer, and whether the last miss says the peer's
//! process is gone (connection refused, closed or reset) rather than slow. Each answered
//! check is also a measurement of the peer's clock against this node's (`clock`).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::messages::{Health, PeerReport};
use crate::clock::{wall_clock_ms, ClockSample};
use crate::peer::PeerClient;

/// How far the wall clock may move apart from the monotonic clock during one health
/// check for it to count as a measurement of the peer's clock.
const CLOCK_STEADY_MS: i64 = 5;

#[derive(Debug, Clone, Copy)]
pub struct PeerLinkSettings {
    pub check_interval_ms: u64,
    pub down_after_misses: u32,
}

pub struct PeerLink {
    client: Arc<PeerClient>,
    supervisor: Recipient<PeerReport>,
    settings: PeerLinkSettings,
    consecutive_misses: u32,
    last_heartbeat_ms: Option<u64>,
    checking: bool,
}

impl PeerLink {
    pub fn new(
        client: Arc<PeerClient>,
        supervisor: Recipient<PeerReport>,
        settings: PeerLinkSettings,
    ) -> Self {
        PeerLink {
            client,
            supervisor,
            settings,
            consecutive_misses: 0,
            last_heartbeat_ms: None,
            checking: false,
        }
    }

    fn health(&self) -> Health {
        crate::actors::membership::health_after(
            self.consecutive_misses,
            self.settings.down_after_misses,
        )
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
        if self.checking {
            return;
        }
        self.checking = true;
        let client = self.client.clone();
        // A check that takes longer than the interval counts as missed.
        let timeout = Duration::from_millis(self.settings.check_interval_ms.max(50));
        let sent_ms = wall_clock_ms();
        let sent = std::time::Instant::now();
        async move { client.ping(timeout).await }
            .into_actor(self)
            .map(move |answer, link, _ctx| {
                link.checking = false;
                let mut clock = None;
                let (status, process_gone) = match answer {
                    Ok(status) => {
                        let received_ms = wall_clock_ms();
                        link.consecutive_misses = 0;
                        link.last_heartbeat_ms = Some(received_ms);
                        // A clock that stepped during the ping measures nothing.
                        let round_trip_ms = sent.elapsed().as_millis() as i64;
                        let wall_ms = received_ms as i64 - sent_ms as i64;
                        if (wall_ms - round_trip_ms).abs() <= CLOCK_STEADY_MS {
                            clock = Some(ClockSample::of(sent_ms, received_ms, status.server_time_ms));
                        }
                        (Some(status), false)
                    }
                    Err(error) => {
                        link.consecutive_misses = link.consecutive_misses.saturating_add(1);
                        tracing::debug!(peer = link.client.target(), %error, misses = link.consecutive_misses, "health check missed");
                        (None, error.peer_process_gone())
                    }
                };
                link.supervisor.do_send(PeerReport {
                    node_id: link.client.target(),
                    health: link.health(),
                    consecutive_misses: link.consecutive_misses,
                    last_heartbeat_ms: link.last_heartbeat_ms,
                    status,
                    process_gone,
                    clock,
                });
            })
            .spawn(ctx);
    }
}

impl Actor for PeerLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(16);
        tracing::debug!(peer = self.client.target(), "peer link started");
        let interval = Duration::from_millis(self.settings.check_interval_ms);
        self.check(ctx);
        ctx.run_interval(interval, |link, ctx| link.check(ctx));
    }
}

/// Stops the link (the peer left the cluster).
pub struct StopLink;

impl Message for StopLink {
    type Result = ();
}

impl Handler<StopLink> for PeerLink {
    type Result = ();

    fn handle(&mut self, _: StopLink, ctx: &mut Self::Context) {
        tracing::debug!(peer = self.client.target(), "peer link stopped");
        ctx.stop();
    }
}

//! The HTTP listeners of a node.
//!
//! - `public`: bidders (sessions, auctions, bids, confirmations, live events).
//!   `bidder_view` answers a bidder's own standing in an auction (`…/me`).
//! - `control`: operators (bidders, auctions, qualifications, phase actions, cluster,
//!   janitor), behind the operators' tokens; `audit` lists every control action with
//!   the operator who gave it.
//! - `events`: server-sent event streams built from the Auction actors' publishers, on
//!   the public listener and on `event_listener` (`listen.events`), whose workers give
//!   way to the bids.
//! - `pages` and `dashboard`: the bidder page (public `/`) and the operator dashboard
//!   (control `/`), with their assets embedded in the binary.
//! - `problem` turns every error (`model::error::ApiError`) into problem+json; `auth`
//!   reads the bearer tokens and authenticates operators (the hashes are
//!   `model::credentials`; bidders' secrets are hashed by `model::bidder_secret`); what
//!   the API accepts and answers is `model::requests` and `model::views`; `openapi`
//!   publishes what the node accepts; `limits` rate-limits the public
//!   listener per client address and per session, `sign_in` throttles wrong secrets per
//!   bidder, `stream_slots` caps the event streams per address and per node; `replica`
//!   shows what this replica applied (log index, state digest, raw auctions) to checkers
//!   comparing replicas.
//!
//! `body_timeout` bounds the time a request's body may take to arrive, on both listeners.
//!
//! Handlers read views from the node's own applied state and send every change to the
//! Supervisor as a command.

pub mod audit;
pub mod auth;
pub mod backup;
pub mod bidder_view;
pub mod body_timeout;
pub mod certificate;
pub mod cluster_nodes;
pub mod control;
pub mod dashboard;
mod doc_modifiers;
pub mod event_listener;
pub mod event_server;
pub mod events;
#[cfg(feature = "faults")]
pub mod faults;
pub mod history_frames;
pub mod limits;
pub mod migration;
pub mod node_actors;
pub mod openapi;
pub mod pages;
pub mod problem;
pub mod public;
pub mod replica;
mod scrape;
pub mod sign_in;
pub mod stream_slots;

use std::sync::Arc;

use actix::Addr;
use actix_web::{web, HttpResponse};

use crate::actors::janitor::Janitor;
use crate::actors::resource_pool::ResourcePool;
use crate::actors::supervisor::{Propose, Supervisor};
use crate::model::error::ApiError;
use crate::replication::{ArchiveStore, GavelRaft, SharedState};
use crate::telemetry::Metrics;
use gavel_kernel::{Auction, Command, Outcome, Rejection};

/// Whether `text` is a plain host, or host and port, that may go into a header and a
/// page as it is: letters, digits and `.-:[]` only, not empty.
pub(crate) fn is_plain_authority(text: &str) -> bool {
    let allowed =
        |character: char| character.is_ascii_alphanumeric() || ".-:[]".contains(character);
    !text.is_empty() && text.chars().all(allowed)
}

/// Largest request body either listener reads (docs/API.md).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a handler waits for this node to apply a command committed elsewhere.
const APPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What every handler of a node shares.
pub struct AppState {
    pub node_id: u64,
    /// `node.name` and `node.data_dir`, for `GET /control/v1/node`.
    pub node_name: String,
    pub data_dir: std::path::PathBuf,
    pub supervisor: Addr<Supervisor>,
    pub pool: Addr<ResourcePool>,
    pub janitor: Addr<Janitor>,
    /// The Exchange actor, when `[exchange] dir` is set.
    pub exchange: Option<Addr<crate::actors::exchange::Exchange>>,
    pub state: SharedState,
    /// Closed auctions that left the state; their views are read from here.
    pub archive: ArchiveStore,
    /// `[faults] enabled`: whether the fault injection endpoints answer.
    pub faults_enabled: bool,
    /// The events listener (`listen.events`), where the pages open their streams.
    pub events_listener: Option<event_listener::EventsListener>,
    /// Every committed command's events, for the all-auctions stream.
    pub applied_events: tokio::sync::broadcast::Sender<Arc<crate::replication::AppliedEvents>>,
    /// The all-auctions stream's frames of the newest log entry, rendered by the first
    /// stream that needs them and written as they are by every other.
    pub lobby_frames: Arc<events::LobbyFrames>,
    /// The bid frames of auctions' histories, rendered once and sent by every stream that
    /// connects.
    pub history_frames: Arc<history_frames::HistoryFrames>,
    pub raft: GavelRaft,
    pub metrics: Arc<Metrics>,
    /// Every operator allowed on the control listener, by the SHA-256 of their token;
    /// the tokens themselves are not kept.
    pub operators: Vec<auth::OperatorCredential>,
    pub session_ttl_ms: u64,
    /// `sessions.max_sessions_per_bidder`, carried in every sign-in this node proposes.
    pub max_sessions_per_bidder: u32,
    /// Wrong secrets per bidder, and the lockouts they started.
    pub sign_in_throttle: sign_in::SignInThrottle,
    /// Hashes and checks bidders' secrets off the async workers, a bounded number at once
    /// (shared with the Exchange actor).
    pub secret_hasher: std::sync::Arc<crate::model::bidder_secret::SecretHasher>,
    /// The event streams open on this node, per client address and in all.
    pub streams: std::sync::Arc<stream_slots::StreamSlots>,
    /// This node's clock against the voters' median (the Supervisor keeps it).
    pub clock: Arc<crate::clock::ClockStatus>,
    /// The cluster's receipt key: signs every bid receipt this node answers.
    pub receipt_key: Arc<crate::receipts::ReceiptKey>,
    /// The thread that signs receipts with it, those answered together under one
    /// signature (`crate::receipts::batch`).
    pub receipt_signer: Arc<crate::receipts::ReceiptSigner>,
}

impl AppState {
    /// `view` of the auction `auction_id`, from the live state or, once archived, from
    /// this node's archive; 404 `auction_not_found` if neither holds it (503 if it was
    /// archived and this node's archive is still being filled from its peers).
    pub fn read_auction<T>(
        &self,
        auction_id: &str,
        view: impl FnOnce(&Auction) -> T,
    ) -> Result<T, ApiError> {
        {
            let state = self.state.read();
            if let Some(auction) = state.kernel.auctions.get(auction_id) {
                return Ok(view(auction));
            }
        }
        match self.archive.get(auction_id) {
            Ok(Some(auction)) => Ok(view(&auction)),
            Ok(None) if self.archive_is_fetching(auction_id) => Err(ApiError::Unavailable(
                "this auction is archived and this node is still fetching its record from its peers; try again shortly".to_string(),
            )),
            Ok(None) => Err(Rejection::AuctionNotFound.into()),
            Err(error) => {
                tracing::error!(%error, %auction_id, "cannot read the archive");
                Err(ApiError::Unavailable(
                    "the auction archive cannot be read".to_string(),
                ))
            }
        }
    }

    /// Whether `auction_id` was archived and this node's archive is still being filled
    /// (`replication::archive_fetch`), so its record may yet arrive.
    fn archive_is_fetching(&self, auction_id: &str) -> bool {
        self.state.read().kernel.archived.was_archived(auction_id) && self.archive.catching_up()
    }

    /// Proposes a command and waits for its committed answer.
    pub async fn propose(&self, command: Command, actor: String) -> Result<Outcome, ApiError> {
        let auction_id = command.auction_id().map(str::to_string);
        let committed = self.supervisor.send(Propose { command, actor }).await?;
        let committed = match committed {
            Ok(committed) => committed,
            Err(error) => {
                self.metrics
                    .commands_total
                    .with_label_values(&["unavailable"])
                    .inc();
                return Err(error.into());
            }
        };
        // Read your writes: views built after this see the command, on any node. The
        // leader answers only after applying, so there the state is already there; a node
        // that forwarded the command waits for its own state machine.
        let applied_here = self.state.read().last_applied_index >= committed.log_index;
        if !applied_here {
            let wait = self.raft.wait(Some(APPLY_WAIT));
            if let Err(error) = wait
                .applied_index_at_least(Some(committed.log_index), "read your writes")
                .await
            {
                tracing::debug!(%error, log_index = committed.log_index, "local state still behind the commit");
            }
        }
        let result = if committed.outcome.is_ok() {
            "ok"
        } else {
            "rejected"
        };
        self.metrics
            .commands_total
            .with_label_values(&[result])
            .inc();
        match committed.outcome {
            // An archived auction is closed, not unknown: answer as the kernel did before
            // it was archived.
            Err(Rejection::AuctionNotFound) => match auction_id {
                Some(auction_id) => Err(self
                    .read_auction(&auction_id, |auction| Rejection::AuctionNotOpen {
                        phase: auction.phase.as_str().to_string(),
                    })
                    .unwrap_or(Rejection::AuctionNotFound)
                    .into()),
                None => Err(Rejection::AuctionNotFound.into()),
            },
            outcome => Ok(outcome?),
        }
    }

    /// Refreshes the gauges that are read from Raft and the state, then renders.
    pub fn render_metrics(&self) -> String {
        let raft_metrics = self.raft.metrics().borrow().clone();
        self.metrics.raft_term.set(raft_metrics.current_term as i64);
        self.metrics
            .raft_last_applied_index
            .set(raft_metrics.last_applied.map_or(0, |log_id| log_id.index) as i64);
        self.metrics
            .raft_is_leader
            .set(i64::from(raft_metrics.current_leader == Some(self.node_id)));
        {
            let state = self.state.read();
            let open = state
                .kernel
                .auctions
                .values()
                .filter(|auction| !auction.phase.is_closed())
                .count();
            self.metrics.auctions_open.set(open as i64);
            self.metrics
                .sessions_live
                .set(state.kernel.sessions.len() as i64);
        }
        self.metrics.render()
    }
}

/// Body and path limits and error mapping shared by both listeners.
pub fn configure_common(config: &mut web::ServiceConfig) {
    config
        .app_data(
            web::JsonConfig::default()
                .limit(MAX_BODY_BYTES)
                .content_type_required(true)
                .error_handler(problem::json_error),
        )
        .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
        .app_data(web::PathConfig::default().error_handler(problem::path_error))
        .app_data(web::QueryConfig::default().error_handler(audit::query_error))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics_text));
}

/// Answers every request no route took, as problem+json: 405 (with `Allow`) when the
/// path exists under other methods, 404 otherwise.
pub async fn not_found(request: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    match request.resource_map().match_pattern(request.path()) {
        Some(pattern) => Err(ApiError::MethodNotAllowed {
            allow: openapi::allowed_methods(&pattern),
        }),
        None => Err(ApiError::NotFound("no such endpoint".to_string())),
    }
}

/// `Cache-Control: no-store` on every answer that does not say otherwise: no browser or
/// proxy keeps a session token, a bidder's standing, a receipt or a view that will be
/// stale in a second. The pages and their assets say `no-cache` themselves (they hold
/// nothing of anyone's; kept, but asked again each time), and so do the event streams.
pub fn no_store() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add((actix_web::http::header::CACHE_CONTROL, "no-store"))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// Ready once a leader is known and this node has applied entries.
async fn readyz(app: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let metrics = app.raft.metrics().borrow().clone();
    if metrics.current_leader.is_some() && metrics.last_applied.is_some() {
        Ok(HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n"))
    } else {
        Err(ApiError::NoLeader)
    }
}

async fn metrics_text(app: web::Data<AppState>) -> HttpResponse {
    app.refresh_scrape_gauges().await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(app.render_metrics())
}

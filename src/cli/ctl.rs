//! `gavel ctl`: operator commands over the control API of docs/API.md (blocking HTTP with
//! `ureq`). Each command becomes one `ApiRequest`; the reply is printed as pretty JSON.
//! An HTTP error prints the problem's `code` and `detail` and exits 1.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::Failure;
use gavel::config::ADMIN_TOKEN_ENV;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Long enough for a switchover, which answers once the new leader leads, and for a new
/// standby to catch up (`node add` answers then; the leader waits up to 120 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

/// Where a node's control listener is, and the token it wants.
#[derive(Debug, Clone, clap::Args)]
pub struct ControlArgs {
    /// Base URL of a node's control listener.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        default_value = "http://127.0.0.1:9081"
    )]
    pub control: String,
    /// An operator token: the admin token (`gavel cluster up` prints it) or one of
    /// `[[security.operators]]`.
    #[arg(long, global = true, value_name = "T", env = ADMIN_TOKEN_ENV, hide_env_values = true)]
    pub token: Option<String>,
}

impl ControlArgs {
    /// The operator token given, if any.
    pub(super) fn token(&self) -> Option<String> {
        self.token.clone().filter(|token| !token.is_empty())
    }

    /// Sends a request to the control listener, with the admin token.
    pub(super) fn send(&self, request: &ApiRequest) -> Result<Option<Value>, Failure> {
        let token = self.token.as_deref().filter(|token| !token.is_empty()).ok_or_else(|| {
            Failure::unusable(format!(
                "no admin token: pass --token or set {ADMIN_TOKEN_ENV} (`gavel cluster up` prints it and keeps it in DIR/cluster.toml)"
            ))
        })?;
        send(&self.control, Some(token), request)
    }
}

#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    #[command(flatten)]
    pub control: ControlArgs,
    /// Base URL of a node's public listener (used by `auction list`).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub public: String,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CtlCommand {
    /// Bidder registration.
    #[command(subcommand)]
    Bidder(BidderCommand),
    /// Auctions: creation, qualification, supervision, results.
    #[command(subcommand)]
    Auction(AuctionCommand),
    /// The ClusterView as JSON (`gavel cluster status` shows it as a table).
    Cluster,
    /// Make another voter the leader; answers once it leads.
    Switchover {
        #[arg(long, value_name = "NODE_ID")]
        to: u64,
    },
    /// Add or remove standby nodes while the cluster runs.
    #[command(subcommand)]
    Node(NodeCommand),
    /// The janitor's last purification report.
    Janitor,
    /// Move a voter's place to a new node while bidding goes on: precheck, full sync,
    /// catch-up, verification, cutover; rolls back on failure.
    Migrate(super::migrate::MigrateArgs),
    /// Write a checksummed backup of the running cluster (taken on its leader) to FILE.
    Backup {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// The audit: verify every bid hash chain, list the operator audit trail.
    #[command(subcommand)]
    Audit(super::audit::AuditCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum BidderCommand {
    /// Register a bidder (the secret is stored only as a salted hash).
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        secret: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// Add a running node as a standby; answers once it has caught up. Start it first
    /// with a configuration that lists it as a standby, with this cluster's secret.
    Add {
        #[arg(long, value_name = "NODE_ID")]
        id: u64,
        /// Shown in the cluster view. Default `node-<id>`.
        #[arg(long)]
        name: Option<String>,
        /// Its peer listener, as the other nodes reach it (`IP:PORT`).
        #[arg(long, value_name = "IP:PORT")]
        peer: String,
        /// Its public listener's URL.
        #[arg(long, value_name = "URL")]
        public_url: String,
        /// Its control listener's URL.
        #[arg(long, value_name = "URL")]
        control_url: String,
    },
    /// Take a standby out of the cluster; it stops. Voters are refused.
    Remove {
        #[arg(long, value_name = "NODE_ID")]
        id: u64,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum AuctionCommand {
    /// Create an auction from an AuctionSpec JSON file, sent as is.
    Create {
        #[arg(long, value_name = "SPEC.json")]
        file: PathBuf,
    },
    /// Qualify a bidder for an auction; prints the bidder number it got.
    Qualify {
        #[arg(long)]
        auction: String,
        #[arg(long)]
        bidder: String,
    },
    /// Suspend bidding.
    Suspend(ReasonArgs),
    /// Resume a suspended auction.
    Resume(ReasonArgs),
    /// End an auction without a sale.
    Terminate(ReasonArgs),
    /// Change the bid increment.
    Increment {
        #[arg(long)]
        auction: String,
        #[arg(long, value_name = "N")]
        increment: u64,
        #[arg(long)]
        reason: String,
    },
    /// The result: phase, winner, final price and every bid.
    Result {
        #[arg(long)]
        auction: String,
    },
    /// Every auction, as bidders see them (from the public listener).
    List,
}

#[derive(Debug, clap::Args)]
pub struct ReasonArgs {
    #[arg(long)]
    pub auction: String,
    /// Recorded with the change.
    #[arg(long)]
    pub reason: String,
}

/// The listener a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listener {
    Control,
    Public,
}

/// One HTTP request of the API.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ApiRequest {
    pub listener: Listener,
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
}

impl ApiRequest {
    pub fn get_control(path: impl Into<String>) -> Self {
        ApiRequest {
            listener: Listener::Control,
            method: "GET",
            path: path.into(),
            body: None,
        }
    }

    pub fn post_control(path: impl Into<String>, body: Value) -> Self {
        ApiRequest {
            listener: Listener::Control,
            method: "POST",
            path: path.into(),
            body: Some(body),
        }
    }

    fn get_public(path: impl Into<String>) -> Self {
        ApiRequest {
            listener: Listener::Public,
            method: "GET",
            path: path.into(),
            body: None,
        }
    }
}

pub fn run(args: CtlArgs) -> Result<(), Failure> {
    if let CtlCommand::Audit(command) = &args.command {
        return super::audit::run(command, &args.control);
    }
    if let CtlCommand::Migrate(migrate) = &args.command {
        return super::migrate::migrate(&args.control, migrate);
    }
    if let CtlCommand::Backup { out } = &args.command {
        return super::backup::backup(&args.control, out);
    }
    let request = request_for(&args.command)?;
    let reply = match request.listener {
        Listener::Control => args.control.send(&request)?,
        Listener::Public => send(&args.public, None, &request)?,
    };
    match reply {
        Some(Value::String(text)) => println!("{text}"),
        Some(value) => println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
        ),
        None => println!("done"),
    }
    Ok(())
}

/// The request a command sends.
fn request_for(command: &CtlCommand) -> Result<ApiRequest, Failure> {
    Ok(match command {
        CtlCommand::Bidder(BidderCommand::Add { id, name, secret }) => ApiRequest::post_control(
            "/control/v1/bidders",
            json!({"bidder_id": id, "name": name, "secret": secret}),
        ),
        CtlCommand::Auction(command) => auction_request(command)?,
        CtlCommand::Cluster => ApiRequest::get_control("/control/v1/cluster"),
        CtlCommand::Switchover { to } => {
            ApiRequest::post_control("/control/v1/cluster/switchover", json!({"to_node_id": to}))
        }
        CtlCommand::Node(NodeCommand::Add {
            id,
            name,
            peer,
            public_url,
            control_url,
        }) => ApiRequest::post_control(
            "/control/v1/cluster/nodes",
            json!({
                "node_id": id,
                "name": name.clone().unwrap_or_else(|| format!("node-{id}")),
                "peer": peer,
                "public_url": public_url,
                "control_url": control_url,
            }),
        ),
        CtlCommand::Node(NodeCommand::Remove { id }) => ApiRequest {
            listener: Listener::Control,
            method: "DELETE",
            path: format!("/control/v1/cluster/nodes/{id}"),
            body: None,
        },
        CtlCommand::Janitor => ApiRequest::get_control("/control/v1/janitor"),
        CtlCommand::Audit(_) | CtlCommand::Backup { .. } | CtlCommand::Migrate(_) => {
            return Err(Failure::unusable(
                "audit, backup and migrate commands send several requests",
            ))
        }
    })
}

fn auction_request(command: &AuctionCommand) -> Result<ApiRequest, Failure> {
    let auction_path =
        |id: &str, tail: &str| format!("/control/v1/auctions/{}{tail}", path_segment(id));
    let with_reason = |tail: &str, args: &ReasonArgs| {
        ApiRequest::post_control(
            auction_path(&args.auction, tail),
            json!({"reason": args.reason}),
        )
    };
    Ok(match command {
        AuctionCommand::Create { file } => {
            ApiRequest::post_control("/control/v1/auctions", read_json_file(file)?)
        }
        AuctionCommand::Qualify { auction, bidder } => ApiRequest::post_control(
            auction_path(auction, "/qualifications"),
            json!({"bidder_id": bidder}),
        ),
        AuctionCommand::Suspend(args) => with_reason("/suspend", args),
        AuctionCommand::Resume(args) => with_reason("/resume", args),
        AuctionCommand::Terminate(args) => with_reason("/terminate", args),
        AuctionCommand::Increment {
            auction,
            increment,
            reason,
        } => ApiRequest::post_control(
            auction_path(auction, "/increment"),
            json!({"increment": increment, "reason": reason}),
        ),
        AuctionCommand::Result { auction } => {
            ApiRequest::get_control(auction_path(auction, "/result"))
        }
        AuctionCommand::List => ApiRequest::get_public("/api/v1/auctions"),
    })
}

fn read_json_file(path: &std::path::Path) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| Failure::unusable(format!("cannot read {}: {error}", path.display())))?;
    serde_json::from_str(&text).map_err(|error| {
        Failure::unusable(format!("{} is not valid JSON: {error}", path.display()))
    })
}

/// Percent-encodes an id for use as one path segment.
pub(super) fn path_segment(text: &str) -> String {
    let keep = |byte: u8| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
    text.bytes()
        .map(|byte| {
            if keep(byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// Sends `request` to the listener at `base_url`. `Ok(None)` is a success without a body.
fn send(
    base_url: &str,
    token: Option<&str>,
    request: &ApiRequest,
) -> Result<Option<Value>, Failure> {
    let url = format!("{}{}", base_url.trim_end_matches('/'), request.path);
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build();
    let mut call = agent.request(request.method, &url);
    if let Some(token) = token {
        call = call.set("Authorization", &format!("Bearer {token}"));
    }
    let outcome = match &request.body {
        Some(body) => call.send_json(body),
        None => call.call(),
    };
    match outcome {
        Ok(response) => read_body(response, &url).map(|text| parse_body(&text)),
        Err(ureq::Error::Status(status, response)) => {
            let body = response.into_string().unwrap_or_default();
            Err(Failure::failed(describe_http_error(
                request.method,
                &url,
                status,
                &body,
            )))
        }
        Err(ureq::Error::Transport(transport)) => {
            // ureq's message starts with the URL; say it once.
            let text = transport.to_string();
            let cause = text.strip_prefix(&format!("{url}: ")).unwrap_or(&text);
            Err(Failure::failed(format!("cannot reach {url}: {cause}")))
        }
    }
}

fn read_body(response: ureq::Response, url: &str) -> Result<String, Failure> {
    response
        .into_string()
        .map_err(|error| Failure::failed(format!("cannot read the reply of {url}: {error}")))
}

/// JSON when it is JSON, else the text as is; nothing for an empty body.
fn parse_body(text: &str) -> Option<Value> {
    if text.trim().is_empty() {
        return None;
    }
    Some(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())))
}

/// `POST URL: 409 auction_exists: detail`, from a problem+json body when there is one.
fn describe_http_error(method: &str, url: &str, status: u16, body: &str) -> String {
    let problem: Option<Value> = serde_json::from_str(body).ok();
    match problem
        .as_ref()
        .and_then(|problem| Some((problem.get("code")?.as_str()?, problem)))
    {
        Some((code, problem)) => {
            let detail = problem
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or("(no detail)");
            format!("{method} {url}: {status} {code}: {detail}")
        }
        None => {
            let excerpt: String = body.trim().chars().take(300).collect();
            format!("{method} {url}: HTTP {status}: {excerpt}")
        }
    }
}

#[cfg(test)]
#[path = "ctl_tests.rs"]
mod tests;

//! `gavel ctl`: operator commands over the control API of docs/API.md (blocking HTTP with
//! `ureq`). Each command becomes one `ApiRequest`; the reply is printed as pretty JSON.
//! An HTTP error prints the problem's `code` and `detail` and exits 1.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::control_api::{path_segment, send, ApiRequest, ControlArgs, Listener};
use super::Failure;

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
    /// Register a public key of a bidder for signed bids; prints the key with its id.
    Key {
        #[arg(long, value_name = "ID")]
        bidder: String,
        /// `ed25519` or `sm2`.
        #[arg(long, value_parser = ["ed25519", "sm2"])]
        algorithm: String,
        /// Standard base64 of the public key.
        #[arg(long, value_name = "B64")]
        public_key: String,
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
        /// Give it a vote once it has caught up (or give an existing standby one).
        #[arg(long)]
        voter: bool,
    },
    /// Take a node out of the cluster; it stops. A voter only while 3 voters remain
    /// (fewer with --force); never the leader (switch over first).
    Remove {
        #[arg(long, value_name = "NODE_ID")]
        id: u64,
        /// Remove a voter even when fewer than 3 would remain.
        #[arg(long)]
        force: bool,
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
    /// Record a bidder's deposit for an auction from a bank receipt (once per reference);
    /// prints what the bidder has deposited and what the auction requires.
    Deposit {
        #[arg(long)]
        auction: String,
        #[arg(long)]
        bidder: String,
        #[arg(long, value_name = "N")]
        amount: u64,
        /// The bank receipt's reference.
        #[arg(long)]
        reference: String,
    },
    /// Declare the winner of a sale whose confirmation lapsed in default (the deposit is
    /// forfeited); prints the result.
    Default(ReasonArgs),
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
        CtlCommand::Bidder(BidderCommand::Key {
            bidder,
            algorithm,
            public_key,
        }) => ApiRequest::post_control(
            format!("/control/v1/bidders/{}/keys", path_segment(bidder)),
            json!({"algorithm": algorithm, "public_key": public_key}),
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
            voter,
        }) => ApiRequest::post_control(
            "/control/v1/cluster/nodes",
            json!({
                "node_id": id,
                "name": name.clone().unwrap_or_else(|| format!("node-{id}")),
                "peer": peer,
                "public_url": public_url,
                "control_url": control_url,
                "voter": voter,
            }),
        ),
        CtlCommand::Node(NodeCommand::Remove { id, force }) => ApiRequest {
            listener: Listener::Control,
            method: "DELETE",
            path: format!("/control/v1/cluster/nodes/{id}?force={force}"),
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
        AuctionCommand::Deposit {
            auction,
            bidder,
            amount,
            reference,
        } => ApiRequest::post_control(
            auction_path(auction, "/deposits"),
            json!({"bidder_id": bidder, "amount": amount, "reference": reference}),
        ),
        AuctionCommand::Default(args) => with_reason("/default", args),
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

#[cfg(test)]
#[path = "ctl_tests.rs"]
mod tests;

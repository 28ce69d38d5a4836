//! The `gavel` command line. `main.rs` calls `main()`; everything else lives here:
//! - `serve`: run one node from a config file (`gavel::node::run`);
//! - `cluster`: start a local cluster of child processes (`cluster up`), or show a
//!   cluster's state (`cluster status`); `local_cluster` plans the files it writes;
//! - `ctl`: operator commands over the control API of docs/API.md (each an HTTP request
//!   of `control_api`, the client of a node's listeners); `audit` holds
//!   `gavel ctl audit verify` (every bid hash chain, online or on a stopped node's data
//!   directory) and `gavel ctl audit list`;
//! - `node`: commands on a stopped node's own files (`node reset`);
//! - `receipt`: `verify-receipt`, a bidder's offline check of a signed bid receipt.
//!
//! Exit codes: 0 success, 1 the command failed (an HTTP error, a node that stopped with
//! an error), 2 unusable input (bad arguments or configuration), 65 a node that will not
//! start because its Raft log is damaged (`gavel::node::DAMAGED_LOG_EXIT_CODE`), 70 a
//! running node whose Raft core or storage failed (`gavel::node::FATAL_EXIT_CODE`).

mod audit;
mod backup;
mod cluster;
mod cluster_down;
mod control_api;
mod ctl;
mod local_cluster;
mod migrate;
mod node;
mod receipt;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use gavel::config::Config;

pub use cluster::ClusterCommand;
pub use ctl::CtlArgs;

/// `gavel chaos`: its nodes are this binary, and its faults need the fault-injection
/// routes, which only a build with the `faults` feature has.
fn chaos(args: gavel_tools::chaos::ChaosArgs) -> Result<(), Failure> {
    if !cfg!(feature = "faults") {
        return Err(Failure::unusable(
            "gavel chaos injects faults through routes this build does not have; \
             build it with `cargo build --features faults` (or run `cargo run --features faults -- chaos …`)",
        ));
    }
    gavel_tools::chaos::run_chaos(args).map_err(|error| Failure::failed(format!("{error:#}")))
}

/// Gavel: a clustered, highly available online auction kernel.
#[derive(Debug, Parser)]
#[command(name = "gavel", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one node until it is stopped (SIGTERM or Ctrl-C).
    Serve(ServeArgs),
    /// Start a local cluster, or show a cluster's state.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Operator commands over a node's control API.
    Ctl(CtlArgs),
    /// Commands on a stopped node's data directory.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Benchmarks that drive a real local cluster and print their figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Fault injection in network namespaces with a history checker (needs root).
    Chaos(gavel_tools::chaos::ChaosArgs),
    /// Check a saved bid receipt's signature offline against the cluster's public
    /// receipt key (GET /api/v1/receipt-key): prints "valid: ..." or what is wrong.
    VerifyReceipt(receipt::VerifyReceiptArgs),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Kill the leader K times under bidding load; time each takeover.
    Takeover(gavel_tools::bench::TakeoverArgs),
    /// Requests per bidder: the old page's polling against Gavel's pushed page.
    Requests(gavel_tools::bench::requests::RequestsArgs),
    /// Live-event fan-out: N watchers on one node, bid-to-watcher latency and memory.
    Fanout(gavel_tools::bench::fanout::FanoutArgs),
    /// Auction lifecycles against one node: memory, actors and disk stay flat?
    Soak(gavel_tools::bench::soak::SoakArgs),
    /// Committed bids/s and latency at 1-256 connections, beside etcd and the floor.
    Bids(gavel_tools::bench::bids::BidsArgs),
    /// The public rate limits' cost per request, in process: steady clients and a flood.
    Limiter(gavel_tools::bench::limiter::LimiterArgs),
}

fn bench(command: BenchCommand) -> Result<(), Failure> {
    let result = match command {
        BenchCommand::Takeover(args) => gavel_tools::bench::run_takeover(args),
        BenchCommand::Requests(args) => gavel_tools::bench::requests::run_requests(args),
        BenchCommand::Fanout(args) => gavel_tools::bench::fanout::run_fanout(args),
        BenchCommand::Soak(args) => gavel_tools::bench::soak::run_soak(args),
        BenchCommand::Bids(args) => gavel_tools::bench::bids::run_bids(args),
        BenchCommand::Limiter(args) => gavel_tools::bench::limiter::run_limiter(args),
    };
    result.map_err(|error| Failure::failed(format!("{error:#}")))
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The node's TOML configuration (see config/node.toml).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Why a command failed: printed as `gavel: <message>`, then the process exits with
/// `exit_code`.
#[derive(Debug)]
pub struct Failure {
    pub exit_code: u8,
    pub message: String,
}

impl Failure {
    /// The command could not do its work (exit code 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Failure {
            exit_code: 1,
            message: message.into(),
        }
    }

    /// The input cannot be used (exit code 2).
    pub fn unusable(message: impl Into<String>) -> Self {
        Failure {
            exit_code: 2,
            message: message.into(),
        }
    }
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    run(Cli::parse())
}

/// Runs a parsed command line and turns its outcome into the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let outcome = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Cluster(command) => cluster::run(command),
        Command::Ctl(args) => ctl::run(args),
        Command::Node(command) => node::run(command),
        Command::Bench(command) => bench(command),
        Command::Chaos(args) => chaos(args),
        Command::VerifyReceipt(args) => receipt::run(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("gavel: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}

/// `gavel serve --config FILE`.
fn serve(args: ServeArgs) -> Result<(), Failure> {
    // Everything the node creates, sled's files included, is its own alone.
    gavel::private_files::restrict_umask();
    let config = load_config_for_serving(&args.config)
        .map_err(|error| Failure::unusable(error.to_string()))?;
    init_tracing();
    match gavel::private_files::restrict_tree(&config.node.data_dir) {
        Ok(0) => {}
        Ok(changed) => tracing::info!(
            changed,
            data_dir = %config.node.data_dir.display(),
            "files of the data directory made private to the node's user"
        ),
        Err(error) => tracing::warn!(%error, "cannot make the data directory private"),
    }
    tracing::info!(node_id = config.node.id, name = %config.node.name, config = %args.config.display(), "starting node");
    gavel::node::run(config).map_err(|error| {
        let message = format!("node stopped with an error: {error:#}");
        match gavel::node::is_damaged_log(&error) {
            true => Failure {
                exit_code: gavel::node::DAMAGED_LOG_EXIT_CODE,
                message,
            },
            false => Failure::failed(message),
        }
    })
}

/// The file, then the environment (`GAVEL_ADMIN_TOKEN` wins), then the cluster secret's
/// file, then every check.
pub fn load_config_for_serving(
    path: &std::path::Path,
) -> Result<Config, gavel::config::ConfigError> {
    let mut config = Config::load(path)?;
    config.apply_environment();
    config.load_secret_files()?;
    config.validate_for_serving()?;
    Ok(config)
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second initialisation (only possible in tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_takes_a_config_file() {
        let cli = Cli::try_parse_from(["gavel", "serve", "--config", "node.toml"]).unwrap();
        assert!(
            matches!(cli.command, Command::Serve(ServeArgs { config }) if config.as_path() == std::path::Path::new("node.toml"))
        );
        assert!(Cli::try_parse_from(["gavel", "serve"]).is_err());
    }

    #[test]
    fn node_reset_takes_a_data_dir_and_acts_only_with_yes() {
        let cli = Cli::try_parse_from(["gavel", "node", "reset", "--data-dir", "d"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Node(node::NodeCommand::Reset { yes: false, .. })
        ));
        let cli =
            Cli::try_parse_from(["gavel", "node", "reset", "--data-dir", "d", "--yes"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Node(node::NodeCommand::Reset { yes: true, .. })
        ));
        assert!(Cli::try_parse_from(["gavel", "node", "reset"]).is_err());
    }
}

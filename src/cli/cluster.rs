//! `gavel cluster up` runs a local cluster in the foreground: it writes the files that
//! `local_cluster` plans, starts `gavel serve` once per node as a child process, and
//! stops them all on Ctrl-C or SIGTERM (SIGTERM to each, then SIGKILL after 10 s).
//! `gavel cluster status` shows a cluster's ClusterView as a table. `gavel cluster secret`
//! makes a new cluster secret (`config::secrets`), `gavel cluster receipt-key` a new
//! receipt key (`gavel::receipts`).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::process::Child;
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::control_api::{ApiRequest, ControlArgs};
use super::local_cluster::{ClusterPlan, ClusterRequest, LocalClusterDefinition, PlannedNode};
use super::Failure;
use gavel::config::ADMIN_TOKEN_ENV;

/// How long the nodes get to stop after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Start a local cluster on loopback in the foreground; Ctrl-C stops every node.
    /// Rerun on the same --data-dir to restart the same cluster with its state.
    Up(UpArgs),
    /// Stop the local cluster `gavel cluster up` runs on --data-dir (from another
    /// terminal): its nodes stop in order, as on Ctrl-C.
    Down(DownArgs),
    /// Show a cluster's nodes, roles and health.
    Status(StatusArgs),
    /// Build a new local cluster in --data-dir from a backup (`gavel ctl backup`); then
    /// start it with `gavel cluster up --data-dir DIR`.
    Restore(super::backup::RestoreArgs),
    /// Make a new cluster secret (32 random bytes, hex) for `security.cluster_secret_file`
    /// (or `security.cluster_secret`): printed, or written to a new file of mode 0600.
    Secret(SecretArgs),
    /// Make a new receipt key file for `security.receipt_key_file` (the base64 of a
    /// 32-byte Ed25519 seed, mode 0600; an existing file is not replaced) and print its
    /// public key. Give every node of the cluster the same file.
    ReceiptKey(ReceiptKeyArgs),
}

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// The cluster's directory [default: ./gavel-data, from the definition].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Cluster definition whose data_dir is the default, instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub definition: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ReceiptKeyArgs {
    /// The new key file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct SecretArgs {
    /// Write the secret to this new file (mode 0600; an existing file is not replaced)
    /// instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Voting nodes [default: 3, from the definition; a rerun keeps the recorded number].
    #[arg(long, value_name = "N")]
    pub voters: Option<u64>,
    /// Standby nodes [default: 1, from the definition; a rerun keeps the recorded number].
    #[arg(long, value_name = "M")]
    pub standbys: Option<u64>,
    /// Where the cluster keeps its record, node configs, logs and data
    /// [default: ./gavel-data, from the definition].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Admin token of every node [default: the one recorded in DIR/cluster.toml, else a
    /// new random one].
    #[arg(long, value_name = "T", env = ADMIN_TOKEN_ENV, hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Cluster definition to use instead of the built-in cluster/local.toml.
    #[arg(long, value_name = "FILE")]
    pub definition: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub control: ControlArgs,
}

pub fn run(command: ClusterCommand) -> Result<(), Failure> {
    match command {
        ClusterCommand::Up(args) => up(args),
        ClusterCommand::Down(args) => down(args),
        ClusterCommand::Status(args) => status(args),
        ClusterCommand::Restore(args) => super::backup::restore(args),
        ClusterCommand::Secret(args) => secret(args),
        ClusterCommand::ReceiptKey(args) => receipt_key(args),
    }
}

/// `gavel cluster receipt-key --out FILE`: a new receipt key in a new private file; its
/// public key printed (stdout), what `GET /api/v1/receipt-key` will answer.
fn receipt_key(args: ReceiptKeyArgs) -> Result<(), Failure> {
    let key = gavel::receipts::write_new_key_file(&args.out).map_err(|error| {
        Failure::failed(format!("cannot create {}: {error}", args.out.display()))
    })?;
    eprintln!(
        "wrote a new receipt key to {} (mode 0600); copy it to every node and set security.receipt_key_file (when it replaces a key, list the old public key in security.receipt_key_previous)",
        args.out.display()
    );
    println!("{}", key.public_key());
    Ok(())
}

/// `gavel cluster secret`: a new cluster secret, printed or in a new private file.
fn secret(args: SecretArgs) -> Result<(), Failure> {
    let secret = gavel::config::secrets::new_cluster_secret();
    let Some(path) = args.out else {
        println!("{secret}");
        return Ok(());
    };
    let written = gavel::private_files::create_new(&path).and_then(|mut file| {
        use std::io::Write;
        file.write_all(format!("{secret}\n").as_bytes())?;
        file.sync_all()
    });
    written
        .map_err(|error| Failure::failed(format!("cannot create {}: {error}", path.display())))?;
    eprintln!(
        "wrote a new cluster secret to {} (mode 0600); copy it to every node and set security.cluster_secret_file",
        path.display()
    );
    Ok(())
}

fn down(args: DownArgs) -> Result<(), Failure> {
    let directory = match args.data_dir {
        Some(directory) => directory,
        None => match &args.definition {
            Some(path) => LocalClusterDefinition::load(path)?,
            None => LocalClusterDefinition::built_in()?,
        }
        .data_dir
        .clone(),
    };
    super::cluster_down::down(&directory)
}

fn up(args: UpArgs) -> Result<(), Failure> {
    let definition = match &args.definition {
        Some(path) => LocalClusterDefinition::load(path)?,
        None => LocalClusterDefinition::built_in()?,
    };
    let directory = args
        .data_dir
        .clone()
        .unwrap_or_else(|| definition.data_dir.clone());
    let request = ClusterRequest {
        voters: args.voters,
        standbys: args.standbys,
        admin_token: args.admin_token,
    };
    let plan = ClusterPlan::new(&directory, &request, &definition)?;
    check_ports_are_free(&plan)?;
    plan.write()?;
    let _running = super::cluster_down::record_running(&directory)?;
    let executable = std::env::current_exe().map_err(|error| {
        Failure::failed(format!(
            "cannot find the gavel executable to start the nodes: {error}"
        ))
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::failed(format!("cannot start the async runtime: {error}")))?;
    runtime.block_on(supervise(&plan, &executable))
}

/// Fails early, with the address, when another process holds a port a node needs.
fn check_ports_are_free(plan: &ClusterPlan) -> Result<(), Failure> {
    for node in &plan.nodes {
        let listen = &node.config.listen;
        for (listener, address) in [
            ("public", listen.public),
            ("control", listen.control),
            ("peer", listen.peer),
        ] {
            std::net::TcpListener::bind(address).map_err(|error| {
                Failure::failed(format!(
                    "{address} ({listener} listener of node {}) is not free: {error}; is another cluster running?",
                    node.config.node.id
                ))
            })?;
        }
    }
    Ok(())
}

/// A node started by `cluster up`.
struct RunningNode {
    id: u64,
    log_path: PathBuf,
    child: Child,
}

/// Starts every node, waits for a stop signal while reporting nodes that exit on their
/// own, then stops the rest.
async fn supervise(plan: &ClusterPlan, executable: &Path) -> Result<(), Failure> {
    let mut signals = StopSignals::install()?;
    let mut running = Vec::with_capacity(plan.nodes.len());
    for node in &plan.nodes {
        match spawn_node(executable, node) {
            Ok(started) => running.push(started),
            Err(failure) => {
                stop_all(running, &mut signals).await;
                return Err(failure);
            }
        }
    }
    print_cluster(plan);
    let stopped_by = tokio::select! {
        signal_name = signals.next() => Some(signal_name),
        () = watch_until_all_exit(&mut running) => None,
    };
    match stopped_by {
        Some(signal_name) => {
            println!(
                "gavel: {signal_name} received; stopping {} node(s)",
                running.len()
            );
            stop_all(running, &mut signals).await;
            Ok(())
        }
        None => Err(Failure::failed(format!(
            "every node has stopped; see the node.log files in {}",
            plan.directory.display()
        ))),
    }
}

fn spawn_node(executable: &Path, node: &PlannedNode) -> Result<RunningNode, Failure> {
    let id = node.config.node.id;
    let cannot_start =
        |error: std::io::Error| Failure::failed(format!("cannot start node {id}: {error}"));
    let log = open_log(&node.log_path, id).map_err(cannot_start)?;
    let mut command = tokio::process::Command::new(executable);
    command
        .arg("serve")
        .arg("--config")
        .arg(&node.config_path)
        // The config file holds the token; an inherited variable must not override it.
        .env_remove(ADMIN_TOKEN_ENV)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(cannot_start)?)
        .stderr(log)
        // Its own process group: Ctrl-C reaches `cluster up` only, which stops the
        // nodes in order.
        .process_group(0);
    die_with_parent(&mut command);
    let child = command.spawn().map_err(cannot_start)?;
    Ok(RunningNode {
        id,
        log_path: node.log_path.clone(),
        child,
    })
}

/// Opens the node's log for appending and marks where this run starts.
fn open_log(path: &Path, id: u64) -> std::io::Result<std::fs::File> {
    use std::io::Write;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(
        log,
        "--- gavel cluster up: starting node {id} at {} ms since the epoch ---",
        wall_clock_ms()
    )?;
    Ok(log)
}

fn wall_clock_ms() -> u128 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since_epoch
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or_default()
}

/// On Linux, a node gets SIGTERM when `cluster up` dies, even by SIGKILL, so no node
/// outlives it holding its ports.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // prctl(2), which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut tokio::process::Command) {}

fn print_cluster(plan: &ClusterPlan) {
    let record = &plan.record;
    println!(
        "gavel: local cluster in {}: {} voter(s), {} standby(s)",
        plan.directory.display(),
        record.voters,
        record.standbys
    );
    for node in &plan.nodes {
        let config = &node.config;
        let role = config.this_member().map_or("?", |member| {
            if member.role == gavel::config::Role::Voter {
                "voter"
            } else {
                "standby"
            }
        });
        let events = config
            .listen
            .events
            .map_or_else(String::new, |address| format!("  events http://{address}"));
        println!(
            "  node {} ({role})  public http://{}  control http://{}{events}  log {}",
            config.node.id,
            config.listen.public,
            config.listen.control,
            node.log_path.display()
        );
    }
    println!("admin token: {}", record.admin_token);
    let first_control = plan
        .nodes
        .first()
        .map(|node| node.config.listen.control.to_string())
        .unwrap_or_default();
    println!(
        "  {ADMIN_TOKEN_ENV}={} gavel cluster status --control http://{first_control}",
        record.admin_token
    );
    println!("Ctrl-C stops every node.");
}

/// Waits for nodes to exit, reporting each, until none is left; the others keep running.
async fn watch_until_all_exit(running: &mut Vec<RunningNode>) {
    while !running.is_empty() {
        let (status, index) = {
            let waits = running.iter_mut().map(|node| Box::pin(node.child.wait()));
            let (status, index, _others) = futures::future::select_all(waits).await;
            (status, index)
        };
        let node = running.remove(index);
        eprintln!(
            "gavel: node {} exited on its own ({}); see {}; {} node(s) still running",
            node.id,
            describe_exit(status),
            node.log_path.display(),
            running.len()
        );
    }
}

/// SIGTERM to every node, up to `STOP_GRACE` for them to exit, then SIGKILL to the
/// rest. A second Ctrl-C or SIGTERM skips the wait.
async fn stop_all(mut running: Vec<RunningNode>, signals: &mut StopSignals) {
    for node in &running {
        if let Some(pid) = node.child.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) with a pid of our own unreaped child; no memory involved.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    let all_exited = futures::future::join_all(running.iter_mut().map(|node| node.child.wait()));
    tokio::select! {
        _ = tokio::time::timeout(STOP_GRACE, all_exited) => {}
        _ = signals.next() => eprintln!("gavel: second stop signal; killing the nodes now"),
    }
    for node in &mut running {
        let status = match node.child.try_wait() {
            Ok(Some(status)) => Ok(status),
            _ => {
                eprintln!(
                    "gavel: node {} did not stop within {} s; killing it",
                    node.id,
                    STOP_GRACE.as_secs()
                );
                node.child
                    .kill()
                    .await
                    .and_then(|()| node.child.try_wait())
                    .map(|status| status.unwrap_or_default())
            }
        };
        println!(
            "gavel: node {} stopped ({})",
            node.id,
            describe_exit(status)
        );
    }
}

fn describe_exit(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => status.to_string(),
        },
        Err(error) => format!("cannot tell how: {error}"),
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, either of which stops the cluster.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn install() -> Result<Self, Failure> {
        let install = |kind| {
            signal(kind)
                .map_err(|error| Failure::failed(format!("cannot handle stop signals: {error}")))
        };
        Ok(StopSignals {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "Ctrl-C",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// `gavel cluster status`.
fn status(args: StatusArgs) -> Result<(), Failure> {
    let mut view = args
        .control
        .send(&ApiRequest::get_control("/control/v1/cluster"))?
        .unwrap_or(Value::Null);
    // Each node's actors, from its own control listener (a node that does not answer
    // shows "-").
    let token = args.control.token();
    if let Some(nodes) = view["nodes"].as_array_mut() {
        for node in nodes {
            let status = node["control_url"].as_str().and_then(|url| {
                super::control_api::send(
                    url,
                    token.as_deref(),
                    &ApiRequest::get_control("/control/v1/node"),
                )
                .ok()
                .flatten()
            });
            let actors = status
                .map(|status| status["actors"].clone())
                .unwrap_or(Value::Null);
            node["auctions"] = actors["auctions_live"].clone();
            node["timers"] = actors["timers_armed"].clone();
            node["links"] = actors["peer_links"].clone();
            node["restarts"] = restarts(&actors["restarts"]);
        }
    }
    print!("{}", render_cluster_view(&view));
    Ok(())
}

/// Every restart a node's actors had, added up (`-` when unknown).
fn restarts(restarts: &Value) -> Value {
    match restarts.as_object() {
        Some(counts) => counts
            .values()
            .filter_map(Value::as_u64)
            .sum::<u64>()
            .into(),
        None => Value::Null,
    }
}

/// The table's columns: the ClusterView's, then each node's own actor counts (Auction
/// actors, armed deadline timers, PeerLinks, restarts).
const STATUS_COLUMNS: [&str; 10] = [
    "node_id",
    "name",
    "role",
    "health",
    "last_applied_index",
    "public_url",
    "auctions",
    "timers",
    "links",
    "restarts",
];

/// A ClusterView as a heading line and a table, one row per node.
fn render_cluster_view(view: &Value) -> String {
    let heading = format!(
        "cluster {}  term {}  leader {}\n",
        cell(&view["cluster_id"]),
        cell(&view["term"]),
        cell(&view["leader_id"])
    );
    let nodes = view["nodes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|node| {
            STATUS_COLUMNS
                .iter()
                .map(|column| cell(&node[*column]))
                .collect()
        })
        .collect();
    heading + &render_table(&STATUS_COLUMNS, &rows)
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut table = line(headers.to_vec());
    for row in rows {
        table += &line(row.iter().map(String::as_str).collect());
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_view_renders_as_an_aligned_table() {
        let view = serde_json::json!({
            "cluster_id": "c1", "term": 3, "leader_id": 1,
            "nodes": [
                {"node_id": 1, "name": "node-1", "role": "leader", "health": "up", "last_applied_index": 42, "public_url": "http://127.0.0.1:8081",
                    "auctions": 3, "timers": 3, "links": 1, "restarts": 0},
                {"node_id": 2, "name": "node-2", "role": "standby", "health": "down", "last_applied_index": null, "public_url": "http://127.0.0.1:8082"}
            ]
        });
        let expected = "cluster c1  term 3  leader 1\n\
            node_id  name    role     health  last_applied_index  public_url             auctions  timers  links  restarts\n\
            1        node-1  leader   up      42                  http://127.0.0.1:8081  3         3       1      0\n\
            2        node-2  standby  down    -                   http://127.0.0.1:8082  -         -       -      -\n";
        assert_eq!(render_cluster_view(&view), expected);
    }

    #[test]
    fn restarts_add_up_every_kind() {
        let counts =
            serde_json::json!({"auctions_started": 2, "auctions_crashed": 1, "peer_links": 3});
        assert_eq!(restarts(&counts), serde_json::json!(6));
        assert_eq!(restarts(&Value::Null), Value::Null);
    }
}

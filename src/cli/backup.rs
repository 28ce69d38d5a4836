//! `gavel ctl backup --out FILE` (a backup of the running cluster, from its leader) and
//! `gavel cluster restore --from FILE --data-dir DIR` (a new local cluster seeded with
//! it). The file format and the seeding are `replication::backup`'s.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::control_api::{ApiRequest, ControlArgs};
use super::local_cluster::{ClusterPlan, ClusterRequest, LocalClusterDefinition};
use super::Failure;
use gavel::config::{Config, Role};
use gavel::replication::backup::{read_backup, seed_data_dir, Backup};
use gavel::replication::NodeInfo;

/// Longest backup accepted either way.
const MAX_BACKUP_BYTES: u64 = 4 << 30;

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file (`gavel ctl backup --out FILE`).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// The new cluster's directory; must not hold a cluster yet. Start it afterwards with
    /// `gavel cluster up --data-dir DIR`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Voting nodes [default: 3, from the definition].
    #[arg(long, value_name = "N")]
    pub voters: Option<u64>,
    /// Standby nodes [default: 1, from the definition].
    #[arg(long, value_name = "M")]
    pub standbys: Option<u64>,
    /// Admin token of every node [default: a new random one, kept in DIR/cluster.toml].
    #[arg(long, value_name = "T", env = gavel::config::ADMIN_TOKEN_ENV, hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Cluster definition to use instead of the built-in cluster/local.toml (ports).
    #[arg(long, value_name = "FILE")]
    pub definition: Option<PathBuf>,
}

/// `gavel ctl backup --out FILE`.
pub fn backup(control: &ControlArgs, out: &Path) -> Result<(), Failure> {
    if out.exists() {
        return Err(Failure::unusable(format!(
            "{} exists; name a new file (a backup never overwrites one)",
            out.display()
        )));
    }
    let view = control
        .send(&ApiRequest::get_control("/control/v1/cluster"))?
        .unwrap_or(Value::Null);
    let leader_url = leader_control_url(&view).ok_or_else(|| {
        Failure::failed("the cluster has no leader now; retry shortly".to_string())
    })?;
    let token = control.token().unwrap_or_default();
    eprintln!("taking the backup from the leader at {leader_url}");
    let bytes = download(&format!("{leader_url}/control/v1/backup"), &token)?;
    let checked = read_backup(&bytes).map_err(|error| {
        Failure::failed(format!("the leader's backup does not check out: {error}"))
    })?;
    write_durably(out, &bytes)?;
    print_summary(
        &format!("backup written to {}", out.display()),
        &checked,
        bytes.len(),
    );
    Ok(())
}

fn leader_control_url(view: &Value) -> Option<String> {
    let leader = view["leader_id"].as_u64()?;
    view["nodes"]
        .as_array()?
        .iter()
        .find(|node| node["node_id"].as_u64() == Some(leader))?["control_url"]
        .as_str()
        .map(|url| url.trim_end_matches('/').to_string())
}

/// GETs `url`'s body with a progress bar.
fn download(url: &str, token: &str) -> Result<Vec<u8>, Failure> {
    let response = ureq::get(url)
        .timeout(Duration::from_secs(600))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .map_err(|error| match error {
            ureq::Error::Status(status, response) => Failure::failed(format!(
                "GET {url}: HTTP {status}: {}",
                response.into_string().unwrap_or_default()
            )),
            other => Failure::failed(format!("cannot reach {url}: {other}")),
        })?;
    let length: Option<u64> = response
        .header("Content-Length")
        .and_then(|length| length.parse().ok());
    let progress = indicatif::ProgressBar::new(length.unwrap_or(0));
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} backup {bytes}/{total_bytes} [{bar:30}] {elapsed}",
    ) {
        progress.set_style(style.progress_chars("=> "));
    }
    let mut reader = response.into_reader().take(MAX_BACKUP_BYTES + 1);
    let mut bytes = Vec::with_capacity(length.unwrap_or(0).min(MAX_BACKUP_BYTES) as usize);
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let read = reader
            .read(&mut chunk)
            .map_err(|error| Failure::failed(format!("the backup download broke off: {error}")))?;
        if read == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..read]);
        progress.set_position(bytes.len() as u64);
    }
    progress.finish_and_clear();
    if bytes.len() as u64 > MAX_BACKUP_BYTES {
        return Err(Failure::failed(
            "the backup is larger than 4 GiB".to_string(),
        ));
    }
    Ok(bytes)
}

/// Writes `bytes` to a temporary file beside `out` (mode 0600: a backup holds every
/// bidder's record), syncs it, renames it to `out` and syncs the directory: `out` is
/// whole or absent.
fn write_durably(out: &Path, bytes: &[u8]) -> Result<(), Failure> {
    if out.file_name().is_none() {
        return Err(Failure::unusable(format!(
            "{} is not a file name",
            out.display()
        )));
    }
    gavel::private_files::write_aside_then_rename(out, bytes)
        .map_err(|error| Failure::failed(format!("cannot write {}: {error}", out.display())))
}

fn print_summary(title: &str, backup: &Backup, bytes: usize) {
    let header = &backup.header;
    println!("{title}");
    println!("  taken from node    {}", header.node_id);
    println!("  log index          {}", header.last_applied_index);
    println!(
        "  auctions           {} live, {} archived",
        header.auctions, header.archived_auctions
    );
    println!("  bidders            {}", header.bidders);
    println!("  state digest       {}", header.state_digest);
    println!("  payload sha256     {}", header.payload_sha256);
    println!("  size               {bytes} bytes");
}

/// `gavel cluster restore --from FILE --data-dir DIR`.
pub fn restore(args: RestoreArgs) -> Result<(), Failure> {
    let bytes = read_file(&args.from)?;
    let backup = read_backup(&bytes)
        .map_err(|error| Failure::unusable(format!("{}: {error}", args.from.display())))?;
    let definition = match &args.definition {
        Some(path) => LocalClusterDefinition::load(path)?,
        None => LocalClusterDefinition::built_in()?,
    };
    let request = ClusterRequest {
        voters: args.voters,
        standbys: args.standbys,
        admin_token: args.admin_token.clone(),
    };
    let plan = ClusterPlan::new(&args.data_dir, &request, &definition)?;
    if plan.record_path().exists() {
        return Err(Failure::unusable(format!(
            "{} already holds a cluster ({} exists); restore into a new directory",
            plan.directory.display(),
            plan.record_path().display()
        )));
    }
    for node in &plan.nodes {
        let data_dir = &node.config.node.data_dir;
        let holds_data = std::fs::read_dir(data_dir)
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(false);
        if holds_data {
            return Err(Failure::unusable(format!(
                "{} is not empty; restore into a new directory",
                data_dir.display()
            )));
        }
    }
    plan.write()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::failed(format!("cannot start the async runtime: {error}")))?;
    let progress = gavel_testkit::local::progress_bar("seeding nodes", plan.nodes.len() as u64);
    for node in &plan.nodes {
        let config = &node.config;
        runtime
            .block_on(seed_data_dir(
                &config.node.data_dir,
                config.node.id,
                &voters_of(config),
                &backup,
            ))
            .map_err(|error| {
                Failure::failed(format!(
                    "cannot seed node {} in {}: {error}",
                    config.node.id,
                    config.node.data_dir.display()
                ))
            })?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    print_summary(
        &format!(
            "restored into {} ({} voters, {} standbys)",
            plan.directory.display(),
            plan.record.voters,
            plan.record.standbys
        ),
        &backup,
        bytes.len(),
    );
    println!(
        "start it with: gavel cluster up --data-dir {}",
        plan.directory.display()
    );
    Ok(())
}

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    let cannot = |error: std::io::Error| {
        Failure::unusable(format!("cannot read {}: {error}", path.display()))
    };
    let length = std::fs::metadata(path).map_err(cannot)?.len();
    if length > MAX_BACKUP_BYTES {
        return Err(Failure::unusable(format!(
            "{} is larger than 4 GiB: not a Gavel backup",
            path.display()
        )));
    }
    std::fs::read(path).map_err(cannot)
}

/// The voters of a node's configuration, as Raft's membership names them.
fn voters_of(config: &Config) -> BTreeMap<u64, NodeInfo> {
    config
        .cluster
        .members
        .iter()
        .filter(|member| member.role == Role::Voter)
        .map(|member| {
            (
                member.id,
                NodeInfo {
                    name: member.name.clone(),
                    public_url: member.public_url.clone(),
                    control_url: member.control_url.clone(),
                    peer_addr: member.peer.to_string(),
                },
            )
        })
        .collect()
}

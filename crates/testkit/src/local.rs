//! A local cluster of real `gavel serve` child processes on loopback, for the
//! benchmarks: it writes each node's TOML on free 127.0.0.1 ports into a fresh
//! directory, starts, kills and restarts the nodes, and talks to them over HTTP.
//!
//! Nothing outlives the benchmark: dropping a `LocalCluster` SIGKILLs and reaps every
//! child, which covers errors and panics; `Interrupt` turns Ctrl-C or SIGTERM into a
//! flag that every wait checks, so the run unwinds through that drop; and on Linux each
//! child asks the kernel to SIGKILL it when the thread that started it dies, which
//! covers a benchmark that is itself killed. The children run in their own process
//! group, so a Ctrl-C in the terminal reaches only the benchmark, which then stops them.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;
use serde_json::Value;

use crate::process::{self, NodeConfig, Spawn};

/// Longest wait for a single HTTP answer from a node.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// Set by the SIGINT/SIGTERM handler that `Interrupt` installs.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_signal: libc::c_int) {
    // A second Ctrl-C while the run unwinds ends it at once; the children still die,
    // through their parent-death signal.
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        unsafe { libc::_exit(130) };
    }
}

/// While alive, SIGINT and SIGTERM only set a flag (see `interrupted`); dropping it
/// restores the previous handlers.
pub struct Interrupt {
    previous: [(libc::c_int, libc::sighandler_t); 2],
}

impl Interrupt {
    pub fn install() -> Interrupt {
        INTERRUPTED.store(false, Ordering::SeqCst);
        let handler = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
        let previous = [libc::SIGINT, libc::SIGTERM]
            .map(|signal| (signal, unsafe { libc::signal(signal, handler) }));
        Interrupt { previous }
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        for (signal, handler) in self.previous {
            unsafe { libc::signal(signal, handler) };
        }
    }
}

/// Whether Ctrl-C or SIGTERM arrived since `Interrupt::install`.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// An error if the run was interrupted; every bounded wait calls it.
pub fn check_interrupt() -> anyhow::Result<()> {
    if interrupted() {
        bail!("interrupted: stopping every node");
    }
    Ok(())
}

/// A ticking progress bar `label pos/len [bar] elapsed msg` for `len` steps.
pub fn progress_bar(label: &str, len: u64) -> indicatif::ProgressBar {
    let progress = indicatif::ProgressBar::new(len);
    let template = format!("{{spinner}} {label} {{pos}}/{{len}} [{{bar:30}}] {{elapsed}} {{msg}}");
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        progress.set_style(style.progress_chars("=> "));
    }
    progress.enable_steady_tick(Duration::from_millis(200));
    progress
}

/// Sleeps `duration` in short steps, stopping early with an error when interrupted.
pub fn sleep_checked(duration: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        check_interrupt()?;
        std::thread::sleep(
            Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())),
        );
    }
    Ok(())
}

/// How a node sees the cluster: the parts of the ClusterView (docs/API.md) the benchmark reads.
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterView {
    pub term: u64,
    pub leader_id: Option<u64>,
    pub nodes: Vec<NodeState>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NodeState {
    pub node_id: u64,
    /// `leader`, `follower`, `standby` or `removed`.
    pub role: String,
    /// `up`, `suspect` or `down`.
    pub health: String,
}

impl ClusterView {
    pub fn node(&self, node_id: u64) -> Option<&NodeState> {
        self.nodes.iter().find(|node| node.node_id == node_id)
    }

    /// The voters (leader and followers) this view shows.
    pub fn voters(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes
            .iter()
            .filter(|node| node.role == "leader" || node.role == "follower")
    }
}

/// One node: where it listens, where its files are, and its process while it runs.
pub struct LocalNode {
    pub id: u64,
    pub public_url: String,
    pub control_url: String,
    /// The events listener's URL, if the node has one.
    pub events_url: Option<String>,
    /// The network namespace the node runs in (`ip netns exec`), if not the caller's.
    netns: Option<String>,
    config_path: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
}

/// Where one node runs: the address its three listeners bind, their ports (public,
/// control, peer), and optionally an events listener's port, a network namespace and a
/// data directory of its own.
#[derive(Debug, Clone)]
pub struct NodePlacement {
    pub ip: String,
    pub ports: (u16, u16, u16),
    pub events_port: Option<u16>,
    pub netns: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl NodePlacement {
    /// On 127.0.0.1, on three free ports, with its data beside its config.
    pub fn loopback() -> anyhow::Result<NodePlacement> {
        Ok(NodePlacement {
            ip: "127.0.0.1".to_string(),
            ports: (free_port()?, free_port()?, free_port()?),
            events_port: None,
            netns: None,
            data_dir: None,
        })
    }
}

/// The nodes of one local cluster; dropping it stops them all.
pub struct LocalCluster {
    pub nodes: Vec<LocalNode>,
    pub admin_token: String,
    binary: PathBuf,
    agent: ureq::Agent,
}

impl LocalCluster {
    /// Writes the configs of `voters` voters and `standbys` standbys (ids 1..) under
    /// `directory`, starts every node and waits until each answers `/readyz`.
    pub fn start(
        binary: &Path,
        directory: &Path,
        voters: u64,
        standbys: u64,
    ) -> anyhow::Result<LocalCluster> {
        LocalCluster::start_with(binary, directory, voters, standbys, "")
    }

    /// `start`, with `extra` TOML sections (such as `[janitor]`) in every node's config.
    pub fn start_with(
        binary: &Path,
        directory: &Path,
        voters: u64,
        standbys: u64,
        extra: &str,
    ) -> anyhow::Result<LocalCluster> {
        let placements = (1..=voters + standbys)
            .map(|_| NodePlacement::loopback())
            .collect::<anyhow::Result<Vec<_>>>()?;
        LocalCluster::start_placed(binary, directory, voters, &placements, extra)
    }

    /// Like `start`, with each node where `placements` puts it (one per node: the first
    /// `voters` are voters, the rest standbys) and `extra_config` appended to every
    /// node's TOML.
    pub fn start_placed(
        binary: &Path,
        directory: &Path,
        voters: u64,
        placements: &[NodePlacement],
        extra_config: &str,
    ) -> anyhow::Result<LocalCluster> {
        let admin_token = random_secret("bench-admin");
        let cluster_secret = gavel::config::secrets::new_cluster_secret();
        std::fs::create_dir_all(directory)
            .with_context(|| format!("cannot create {}", directory.display()))?;
        let receipt_key_file = directory.join("receipt-key");
        if !receipt_key_file.exists() {
            gavel::receipts::write_new_key_file(&receipt_key_file)
                .with_context(|| format!("cannot write {}", receipt_key_file.display()))?;
        }
        let mut members = String::new();
        for (index, place) in placements.iter().enumerate() {
            let id = index as u64 + 1;
            let role = if id <= voters { "voter" } else { "standby" };
            let ip = &place.ip;
            let (public, control, peer) = place.ports;
            members.push_str(&format!(
                "\n[[cluster.members]]\nid = {id}\nname = \"node-{id}\"\npeer = \"{ip}:{peer}\"\npublic_url = \"http://{ip}:{public}\"\ncontrol_url = \"http://{ip}:{control}\"\nrole = \"{role}\"\n"
            ));
        }
        let mut cluster = LocalCluster {
            nodes: Vec::new(),
            admin_token: admin_token.clone(),
            binary: binary.to_path_buf(),
            agent: agent(),
        };
        for (index, place) in placements.iter().enumerate() {
            let id = index as u64 + 1;
            let node_directory = directory.join(format!("node-{id}"));
            let data = place
                .data_dir
                .clone()
                .unwrap_or_else(|| node_directory.join("data"));
            for directory in [&node_directory, &data] {
                std::fs::create_dir_all(directory)
                    .with_context(|| format!("cannot create {}", directory.display()))?;
            }
            let extra = format!(
                "[http]\n# Up to 50,000 watchers of `bench fanout` on one node.\nmax_connections = 60000\n\n[limits]\n# Every virtual user of a benchmark shares 127.0.0.1, and load bidders bid as fast\n# as the cluster answers: the benchmarks measure Gavel, not its rate limits.\nper_ip_per_second = 1000000\nper_ip_burst = 1000000\nper_session_per_second = 1000000\nper_session_burst = 1000000\nmax_streams_per_ip = 60000\nmax_streams = 60000\n\n{extra_config}\n{members}"
            );
            let config = NodeConfig {
                id,
                ip: &place.ip,
                ports: place.ports,
                events_port: place.events_port,
                data_dir: &data,
                admin_token: &admin_token,
                cluster_secret: &cluster_secret,
                receipt_key_file: Some(&receipt_key_file),
                operator_name: "bench",
                extra: &extra,
            };
            let (public_url, control_url) = config.urls();
            let events_url = config.events_url();
            let config_path = node_directory.join("gavel.toml");
            std::fs::write(&config_path, config.to_toml())
                .with_context(|| format!("cannot write {}", config_path.display()))?;
            cluster.nodes.push(LocalNode {
                id,
                public_url,
                control_url,
                events_url,
                netns: place.netns.clone(),
                config_path,
                log_path: node_directory.join("node.log"),
                child: None,
            });
        }
        for id in cluster.ids() {
            cluster.spawn(id)?;
        }
        for id in cluster.ids() {
            cluster.wait_ready(id, Duration::from_secs(60))?;
        }
        Ok(cluster)
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|node| node.id).collect()
    }

    pub fn node(&self, id: u64) -> anyhow::Result<&LocalNode> {
        self.nodes
            .iter()
            .find(|node| node.id == id)
            .ok_or_else(|| anyhow!("no node {id} in this cluster"))
    }

    fn node_mut(&mut self, id: u64) -> anyhow::Result<&mut LocalNode> {
        self.nodes
            .iter_mut()
            .find(|node| node.id == id)
            .ok_or_else(|| anyhow!("no node {id} in this cluster"))
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.node(id).is_ok_and(|node| node.child.is_some())
    }

    pub fn public_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| node.public_url.clone())
            .collect()
    }

    /// Starts node `id` on its config (and data), its stderr appended to its log.
    pub fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let binary = self.binary.clone();
        let node = self.node_mut(id)?;
        if node.child.is_some() {
            bail!("node {id} is already running");
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .with_context(|| format!("cannot open {}", node.log_path.display()))?;
        let rust_log = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string());
        let child = process::spawn_node(Spawn {
            binary: &binary,
            config_path: &node.config_path,
            log,
            rust_log: &rust_log,
            netns: node.netns.as_deref(),
            detached: true,
        })
        .with_context(|| format!("cannot start {}", binary.display()))?;
        node.child = Some(child);
        Ok(())
    }

    /// Waits until node `id` answers `/readyz` with 200, or fails after `limit` or when
    /// the process exits.
    pub fn wait_ready(&mut self, id: u64, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let url = format!("{}/readyz", self.node(id)?.public_url);
        while started.elapsed() < limit {
            check_interrupt()?;
            let node = self.node_mut(id)?;
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    node.child = None;
                    bail!(
                        "node {id} exited before it was ready ({status}); see {}",
                        node.log_path.display()
                    );
                }
            }
            if self
                .agent
                .get(&url)
                .call()
                .is_ok_and(|answer| answer.status() == 200)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "node {id} not ready within {} s; see {}",
            limit.as_secs(),
            self.node(id)?.log_path.display()
        )
    }

    /// SIGKILLs node `id` and reaps it.
    pub fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        let node = self.node_mut(id)?;
        if let Some(mut child) = node.child.take() {
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
            child
                .wait()
                .with_context(|| format!("cannot reap node {id}"))?;
        }
        Ok(())
    }

    /// Sends `signal` (SIGSTOP, SIGCONT, …) to node `id` if it runs.
    pub fn signal(&self, id: u64, signal: libc::c_int) -> anyhow::Result<()> {
        if let Some(child) = &self.node(id)?.child {
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        }
        Ok(())
    }

    /// If node `id` was started and has exited since, reaps it and says how it ended.
    pub fn reap_exited(&mut self, id: u64) -> anyhow::Result<Option<String>> {
        let node = self.node_mut(id)?;
        let Some(child) = node.child.as_mut() else {
            return Ok(None);
        };
        match child.try_wait() {
            Ok(Some(status)) => {
                node.child = None;
                Ok(Some(status.to_string()))
            }
            _ => Ok(None),
        }
    }

    /// The file node `id`'s stderr goes to.
    pub fn log_path(&self, id: u64) -> anyhow::Result<&Path> {
        Ok(&self.node(id)?.log_path)
    }

    /// One control-API request to node `id` with the admin token.
    pub fn control(
        &self,
        id: u64,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.node(id)?.control_url);
        request(&self.agent, method, &url, Some(&self.admin_token), body)
            .map_err(|error| anyhow!("{method} {url}: {error}"))
    }

    /// A control request that must answer one of `expected`; else an error with the body.
    pub fn control_expect(
        &self,
        id: u64,
        method: &str,
        path: &str,
        body: Value,
        expected: &[u16],
    ) -> anyhow::Result<Value> {
        let (status, answer) = self.control(id, method, path, Some(body))?;
        if !expected.contains(&status) {
            bail!("{method} {path} on node {id} answered {status}: {answer}");
        }
        Ok(answer)
    }

    /// Node `id`'s ClusterView, or `None` if it does not answer (killed, starting).
    pub fn cluster_view(&self, id: u64) -> Option<ClusterView> {
        if !self.is_running(id) {
            return None;
        }
        match self.control(id, "GET", "/control/v1/cluster", None) {
            Ok((200, view)) => serde_json::from_value(view).ok(),
            _ => None,
        }
    }

    /// The leader of the highest term any running node knows, once that leader's own
    /// view agrees, with that view. (A restarted former leader may briefly claim its old
    /// term; the highest term wins over it.)
    pub fn leader(&self) -> Option<(u64, ClusterView)> {
        let views: Vec<(u64, ClusterView)> = self
            .ids()
            .into_iter()
            .filter_map(|id| Some((id, self.cluster_view(id)?)))
            .collect();
        let newest = views.iter().map(|(_, view)| view.term).max()?;
        let leader = views
            .iter()
            .filter(|(_, view)| view.term == newest)
            .find_map(|(_, view)| view.leader_id)?;
        let (_, leader_view) = views.into_iter().find(|(id, _)| *id == leader)?;
        (leader_view.term == newest && leader_view.leader_id == Some(leader))
            .then_some((leader, leader_view))
    }

    /// Polls `leader` every 50 ms until there is one, or `limit` passes.
    pub fn wait_for_leader(&self, limit: Duration) -> anyhow::Result<Option<(u64, ClusterView)>> {
        let started = Instant::now();
        while started.elapsed() < limit {
            check_interrupt()?;
            if let Some(found) = self.leader() {
                return Ok(Some(found));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(None)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
                let _ = child.wait();
            }
        }
    }
}

/// One HTTP request with an optional bearer token and JSON body: the status and the
/// body as JSON (`Null` if not JSON), or an error when no HTTP answer came.
pub fn request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    process::http(agent, method, url, token, body)
}

/// A new agent whose requests time out after `HTTP_TIMEOUT`.
pub fn agent() -> ureq::Agent {
    process::agent_with_timeout(HTTP_TIMEOUT)
}

pub use crate::process::free_port;

/// A fresh secret for one run: `prefix` and 32 random hex digits.
fn random_secret(prefix: &str) -> String {
    format!("{prefix}-{:032x}", rand::random::<u128>())
}

pub use crate::process::now_ms;

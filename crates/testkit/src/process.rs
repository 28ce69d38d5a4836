//! What every harness of this crate does the same way: free loopback ports, a node's
//! configuration file, starting its process, and one HTTP request. The integration
//! tests' `Node` (panics on failure) and the tools' `LocalCluster` (errors as values)
//! are two faces of these.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::bail;
use serde_json::Value;

/// Ports `free_port` hands out: below Linux's ephemeral range (32768–60999 by default).
/// A port the kernel picked for `bind(0)` is an ephemeral one, and between its release
/// and a node binding it an outgoing connection (a peer link, a bidder, a readiness
/// probe) could take it and leave the node unable to start.
pub const HARNESS_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A free TCP port on loopback (bound, then released for a node to take), never one
/// this process handed out before.
pub fn free_port() -> anyhow::Result<u16> {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let span = u64::from(HARNESS_PORTS.end - HARNESS_PORTS.start);
    // Start at a place that differs between processes, then walk the range.
    let start = (u64::from(std::process::id()) ^ now_ms()) % span;
    for step in 0..span {
        let port = HARNESS_PORTS.start + ((start + step * 7919) % span) as u16;
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return Ok(port);
        }
    }
    bail!("no free loopback port in {HARNESS_PORTS:?}")
}

/// Milliseconds since the Unix epoch, the unit of every `*_ms` of the API.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// One node's configuration file, as a harness writes it.
pub struct NodeConfig<'a> {
    pub id: u64,
    /// The address the three listeners bind.
    pub ip: &'a str,
    /// Public, control and peer ports.
    pub ports: (u16, u16, u16),
    /// The events listener's port (`listen.events`), if it has one.
    pub events_port: Option<u16>,
    pub data_dir: &'a Path,
    pub admin_token: &'a str,
    pub cluster_secret: &'a str,
    /// `security.receipt_key_file`: the key file every node of a cluster shares (none: a
    /// node alone keeps a key of its own in its data directory).
    pub receipt_key_file: Option<&'a Path>,
    /// The name the audit trail records for the admin token's actions.
    pub operator_name: &'a str,
    /// More TOML, appended as it is (sections such as `[janitor]`, `[cluster]`).
    pub extra: &'a str,
}

impl NodeConfig<'_> {
    /// The TOML text of the configuration.
    pub fn to_toml(&self) -> String {
        let NodeConfig { id, ip, .. } = *self;
        let (public, control, peer) = self.ports;
        let events = self
            .events_port
            .map_or_else(String::new, |port| format!("events = \"{ip}:{port}\"\n"));
        format!(
            "[node]\nid = {id}\nname = \"node-{id}\"\ndata_dir = {data}\n\n[listen]\npublic = \"{ip}:{public}\"\ncontrol = \"{ip}:{control}\"\npeer = \"{ip}:{peer}\"\n{events}\n[security]\nadmin_token = \"{admin_token}\"\ncluster_secret = \"{cluster_secret}\"\n{receipt_key}operator_name = \"{operator}\"\n\n{extra}",
            data = toml::Value::String(self.data_dir.display().to_string()),
            admin_token = self.admin_token,
            cluster_secret = self.cluster_secret,
            receipt_key = self.receipt_key_file.map_or_else(String::new, |path| format!(
                "receipt_key_file = {}\n",
                toml::Value::String(path.display().to_string())
            )),
            operator = self.operator_name,
            extra = self.extra,
        )
    }

    /// The events listener's URL, if the node has one.
    pub fn events_url(&self) -> Option<String> {
        self.events_port
            .map(|port| format!("http://{}:{port}", self.ip))
    }

    /// The public and control URLs of the node.
    pub fn urls(&self) -> (String, String) {
        let (public, control, _) = self.ports;
        (
            format!("http://{}:{public}", self.ip),
            format!("http://{}:{control}", self.ip),
        )
    }
}

/// How a node process is started.
pub struct Spawn<'a> {
    pub binary: &'a Path,
    pub config_path: &'a Path,
    /// Where stdout and stderr go.
    pub log: File,
    /// `RUST_LOG` of the process.
    pub rust_log: &'a str,
    /// The network namespace to run in (`ip netns exec`, which execs the node in place:
    /// the child's pid is the node's), if not the caller's.
    pub netns: Option<&'a str>,
    /// A process group of its own (a Ctrl-C in the terminal reaches only the harness,
    /// which then stops the node) and, on Linux, SIGKILL when the thread that started it
    /// dies (a harness killed outright leaves no node behind). For the tools' long runs;
    /// the tests start nodes from short-lived threads and keep neither.
    pub detached: bool,
}

/// Starts `gavel serve` as `spawn` says.
pub fn spawn_node(spawn: Spawn<'_>) -> std::io::Result<Child> {
    let mut command = match spawn.netns {
        Some(netns) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", netns]).arg(spawn.binary);
            command
        }
        None => Command::new(spawn.binary),
    };
    let stdout = spawn.log.try_clone()?;
    command
        .args(["serve", "--config"])
        .arg(spawn.config_path)
        .env_remove("GAVEL_ADMIN_TOKEN")
        .env("RUST_LOG", spawn.rust_log)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(spawn.log);
    if spawn.detached {
        command.process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and touches only the child's own state.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    command.spawn()
}

/// One HTTP request with an optional bearer token and JSON body: the status and the
/// body as JSON (`Null` if not JSON), or an error when no HTTP answer came (refused,
/// reset, timed out).
pub fn http(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let mut request = agent.request(method, url);
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let result = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => return Err(error.to_string()),
    };
    let status = response.status();
    let text = response.into_string().map_err(|error| error.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// An agent whose requests time out after `timeout`.
pub fn agent_with_timeout(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(timeout).build()
}

/// The newest of a node directory's log files named `node-*.log`.
pub fn newest_log(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("node-") && name.ends_with(".log"))
        })
        .max()
}

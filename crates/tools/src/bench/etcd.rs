//! A 3-member etcd cluster on loopback, the reference `gavel bench bids` sets Gavel
//! beside: three `etcd` processes (Debian's `etcd-server`, 3.4.x) with their own data
//! directories under the run's directory, on free 127.0.0.1 ports, written to through
//! etcd's JSON gateway (`POST /v3/kv/put`, base64 key and value): like a Gavel bid,
//! each put is a Raft write that a majority has fsynced before it is answered.
//!
//! Nothing outlives the benchmark: dropping an `EtcdCluster` SIGKILLs and reaps every
//! member and removes their data; each member also asks the kernel to SIGKILL it when
//! the thread that started it dies.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use serde_json::{json, Value};

use super::closed_loop::{Answer, Stream, WriteRequest};
use gavel_testkit::local::{self, check_interrupt};

/// Members of the cluster.
const MEMBERS: usize = 3;

/// What to tell a user whose machine has no etcd.
pub const INSTALL_HINT: &str =
    "etcd is not installed: `apt-get install -y etcd-server` (Debian's etcd 3.4), or pass --etcd FILE; --gavel-only runs Gavel alone";

/// The running members; dropping it stops them and removes their data.
pub struct EtcdCluster {
    pub client_urls: Vec<String>,
    children: Vec<Child>,
    directory: PathBuf,
    agent: ureq::Agent,
}

/// Whether `binary` runs (`etcd --version`), with the version line it printed.
pub fn version(binary: &Path) -> Option<String> {
    let output = Command::new(binary).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    output
        .status
        .success()
        .then(|| text.lines().next().unwrap_or("etcd").trim().to_string())
}

impl EtcdCluster {
    /// Starts the members under `directory/etcd` and waits until each answers `/health`.
    pub fn start(binary: &Path, directory: &Path) -> anyhow::Result<EtcdCluster> {
        let directory = directory.join("etcd");
        std::fs::create_dir_all(&directory)
            .with_context(|| format!("cannot create {}", directory.display()))?;
        let ports: Vec<(u16, u16)> = (0..MEMBERS)
            .map(|_| Ok((local::free_port()?, local::free_port()?)))
            .collect::<anyhow::Result<_>>()?;
        let initial_cluster: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(index, (_, peer))| format!("member-{index}=http://127.0.0.1:{peer}"))
            .collect();
        let token = format!("gavel-bench-{:016x}", rand::random::<u64>());
        let mut cluster = EtcdCluster {
            client_urls: Vec::new(),
            children: Vec::new(),
            directory: directory.clone(),
            agent: local::agent(),
        };
        for (index, (client, peer)) in ports.iter().enumerate() {
            let client_url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let log_path = directory.join(format!("member-{index}.log"));
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .with_context(|| format!("cannot open {}", log_path.display()))?;
            let mut command = Command::new(binary);
            command
                .arg(format!("--name=member-{index}"))
                .arg(format!(
                    "--data-dir={}",
                    directory.join(format!("member-{index}")).display()
                ))
                .arg(format!("--listen-client-urls={client_url}"))
                .arg(format!("--advertise-client-urls={client_url}"))
                .arg(format!("--listen-peer-urls={peer_url}"))
                .arg(format!("--initial-advertise-peer-urls={peer_url}"))
                .arg(format!("--initial-cluster={}", initial_cluster.join(",")))
                .arg(format!("--initial-cluster-token={token}"))
                .arg("--initial-cluster-state=new")
                .arg("--logger=zap")
                .arg("--log-level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .process_group(0);
            #[cfg(target_os = "linux")]
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = command
                .spawn()
                .with_context(|| format!("cannot start {}", binary.display()))?;
            cluster.children.push(child);
            cluster.client_urls.push(client_url);
        }
        cluster.wait_healthy(Duration::from_secs(30))?;
        Ok(cluster)
    }

    fn wait_healthy(&mut self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < limit {
            check_interrupt()?;
            for (index, child) in self.children.iter_mut().enumerate() {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!(
                        "etcd member {index} exited ({status}); see {}",
                        self.directory.join(format!("member-{index}.log")).display()
                    );
                }
            }
            let healthy = self.client_urls.iter().all(|url| {
                local::request(&self.agent, "GET", &format!("{url}/health"), None, None)
                    .is_ok_and(|(status, body)| status == 200 && body["health"] == "true")
            });
            if healthy && self.leader_address().is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "etcd not healthy within {} s; see {}",
            limit.as_secs(),
            self.directory.display()
        )
    }

    /// The client address of the member that leads (from `/v3/maintenance/status`).
    pub fn leader_address(&self) -> anyhow::Result<SocketAddr> {
        for url in &self.client_urls {
            let status_url = format!("{url}/v3/maintenance/status");
            let Ok((200, status)) =
                local::request(&self.agent, "POST", &status_url, None, Some(json!({})))
            else {
                continue;
            };
            if leads(&status) {
                return url
                    .trim_start_matches("http://")
                    .parse()
                    .context("an etcd client URL");
            }
        }
        Err(anyhow!("no etcd member reports itself as the leader"))
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// Whether a `/v3/maintenance/status` answer comes from the leader: its member id is
/// the leader id (the gateway writes 64-bit ids as strings).
fn leads(status: &Value) -> bool {
    let id = |value: &Value| match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    match (id(&status["header"]["member_id"]), id(&status["leader"])) {
        (Some(member), Some(leader)) => member == leader && member != "0",
        _ => false,
    }
}

/// One connection's writes to etcd: key `bids/{run}/{connection}`, the value the bid
/// amount, one put per write (the same key over and over, as one auction's price).
pub struct EtcdStream {
    pub key: String,
    pub start_amount: u64,
    pub increment: u64,
}

impl Stream for EtcdStream {
    fn request(&self, sequence: u64) -> WriteRequest {
        let amount = self
            .start_amount
            .saturating_add(self.increment.saturating_mul(sequence));
        WriteRequest {
            path: "/v3/kv/put".to_string(),
            token: None,
            body: put_body(&self.key, &amount.to_string()),
        }
    }

    fn judge(&self, status: u16, body: &[u8]) -> Answer {
        let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match status {
            200 if answer["header"]["revision"].is_string() => Answer::Acknowledged,
            _ => Answer::Failed(format!(
                "etcd answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
        }
    }
}

/// The JSON body of a put through the gateway.
pub fn put_body(key: &str, value: &str) -> String {
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    json!({"key": encode(key), "value": encode(value)}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_carries_base64_key_and_value() {
        let body: Value = serde_json::from_str(&put_body("bids/1", "1000000")).unwrap();
        assert_eq!(body["key"], "Ymlkcy8x");
        assert_eq!(body["value"], "MTAwMDAwMA==");
    }

    #[test]
    fn the_leader_is_the_member_whose_id_is_the_leader_id() {
        let status = json!({"header": {"member_id": "123", "raft_term": "2"}, "leader": "123"});
        assert!(leads(&status));
        let follower = json!({"header": {"member_id": "456"}, "leader": "123"});
        assert!(!leads(&follower));
        let electing = json!({"header": {"member_id": "0"}, "leader": "0"});
        assert!(!leads(&electing));
    }

    #[test]
    fn only_a_put_answered_with_a_revision_is_acknowledged() {
        let stream = EtcdStream {
            key: "bids/1".into(),
            start_amount: 100,
            increment: 10,
        };
        let put: Value = serde_json::from_str(&stream.request(2).body).unwrap();
        assert_eq!(put["value"], "MTIw");
        let ok =
            br#"{"header":{"cluster_id":"1","member_id":"2","revision":"17","raft_term":"2"}}"#;
        assert_eq!(stream.judge(200, ok), Answer::Acknowledged);
        assert!(matches!(
            stream.judge(503, b"{\"error\":\"etcdserver: leader changed\"}"),
            Answer::Failed(_)
        ));
        assert!(matches!(stream.judge(200, b"{}"), Answer::Failed(_)));
    }
}

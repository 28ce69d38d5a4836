//! A multi-node Gavel cluster of real processes on loopback, for the cluster tests.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, Node};

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The TOML every node's configuration ends with (raft, cluster and its members).
    shared_config: String,
    /// The receipt key file every node's configuration names.
    pub receipt_key_file: std::path::PathBuf,
    /// One cluster at a time per test binary: four nodes per test on a small CI machine
    /// are enough load; more would test the scheduler, not Gavel.
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

static ONE_CLUSTER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Cluster {
    /// Starts `voters` voters and `standbys` standbys (node ids 1..) under `dir` and waits
    /// until every voter is ready.
    pub fn start(dir: &Path, voters: u64, standbys: u64) -> Cluster {
        Cluster::start_with(dir, voters, standbys, "")
    }

    /// `start`, with `extra` TOML added to every node's configuration.
    pub fn start_with(dir: &Path, voters: u64, standbys: u64, extra: &str) -> Cluster {
        Cluster::start_with_raft(dir, voters, standbys, extra, "")
    }

    /// `start`, every node with an events listener (`listen.events`) besides its three.
    pub fn start_with_event_listeners(dir: &Path, voters: u64, standbys: u64) -> Cluster {
        Cluster::start_nodes(dir, (voters, standbys), "", "", true)
    }

    /// `start_with`, with `raft` TOML lines added to every node's `[raft]` section.
    pub fn start_with_raft(
        dir: &Path,
        voters: u64,
        standbys: u64,
        extra: &str,
        raft: &str,
    ) -> Cluster {
        Cluster::start_nodes(dir, (voters, standbys), extra, raft, false)
    }

    fn start_nodes(
        dir: &Path,
        (voters, standbys): (u64, u64),
        extra: &str,
        raft: &str,
        event_listeners: bool,
    ) -> Cluster {
        let guard = ONE_CLUSTER_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = voters + standbys;
        let ports: Vec<(u16, u16, u16)> = (0..count)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut members = String::new();
        for (index, (public, control, peer)) in ports.iter().enumerate() {
            let id = index as u64 + 1;
            let role = if id <= voters { "voter" } else { "standby" };
            members.push_str(&format!(
                "\n[[cluster.members]]\nid = {id}\nname = \"node-{id}\"\npeer = \"127.0.0.1:{peer}\"\npublic_url = \"http://127.0.0.1:{public}\"\ncontrol_url = \"http://127.0.0.1:{control}\"\nrole = \"{role}\"\n"
            ));
        }
        let extra = format!(
            "{extra}\n[raft]\nheartbeat_interval_ms = 50\nelection_timeout_min_ms = 250\nelection_timeout_max_ms = 500\n{raft}\n\n[cluster]\ncheck_interval_ms = 100\ndown_after_misses = 3\n{members}"
        );
        std::fs::create_dir_all(dir).expect("test dir");
        let receipt_key_file = dir.join("receipt-key");
        if !receipt_key_file.exists() {
            gavel::receipts::write_new_key_file(&receipt_key_file).expect("receipt key file");
        }
        let mut nodes: Vec<Node> = ports
            .iter()
            .enumerate()
            .map(|(index, ports)| {
                let id = index as u64 + 1;
                Node::configure_listeners(
                    &dir.join(format!("node-{id}")),
                    id,
                    *ports,
                    event_listeners.then(free_port),
                    &extra,
                    Some(&receipt_key_file),
                )
            })
            .collect();
        for node in nodes.iter_mut() {
            node.spawn_without_waiting();
        }
        for node in nodes.iter_mut().take(voters as usize) {
            node.wait_ready(Duration::from_secs(30));
        }
        Cluster {
            nodes,
            shared_config: extra,
            receipt_key_file,
            _one_at_a_time: guard,
        }
    }

    /// The node id that every live voter agrees leads, waiting up to `limit`.
    pub fn leader(&self, limit: Duration) -> Option<u64> {
        let started = Instant::now();
        while started.elapsed() < limit {
            for node in self.nodes.iter().filter(|node| node.child.is_some()) {
                if let Some(view) = try_control(node, "/control/v1/cluster") {
                    if let Some(leader) = view["leader_id"].as_u64() {
                        let leader_alive = self
                            .nodes
                            .get(leader as usize - 1)
                            .is_some_and(|node| node.child.is_some());
                        if leader_alive {
                            return Some(leader);
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Configures node `id` under `dir` as a standby that is not in the other nodes'
    /// configurations (its own lists every member and itself), for `node add`; returns
    /// the node and its peer address.
    pub fn configure_joiner(&self, dir: &Path, id: u64) -> (Node, String) {
        let (public, control, peer) = (free_port(), free_port(), free_port());
        let extra = format!(
            "{}\n[[cluster.members]]\nid = {id}\nname = \"node-{id}\"\npeer = \"127.0.0.1:{peer}\"\npublic_url = \"http://127.0.0.1:{public}\"\ncontrol_url = \"http://127.0.0.1:{control}\"\nrole = \"standby\"\n",
            self.shared_config
        );
        let node = Node::configure_with_receipt_key(
            dir,
            id,
            (public, control, peer),
            &extra,
            Some(&self.receipt_key_file),
        );
        (node, format!("127.0.0.1:{peer}"))
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[id as usize - 1]
    }

    pub fn node_mut(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[id as usize - 1]
    }
}

/// A control GET that tolerates a dead node.
pub fn try_control(node: &Node, path: &str) -> Option<Value> {
    let response = ureq::get(&format!("{}{}", node.control_url, path))
        .set("Authorization", &format!("Bearer {}", super::ADMIN_TOKEN))
        .timeout(Duration::from_secs(2))
        .call()
        .ok()?;
    serde_json::from_str(&response.into_string().ok()?).ok()
}

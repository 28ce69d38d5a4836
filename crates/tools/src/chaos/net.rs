//! The chaos harness's network: one Linux network namespace per node, each with a veth
//! pair into a bridge the harness owns, on a private /24. The harness itself (bidders,
//! control calls) stays in its own namespace and reaches the nodes through the bridge's
//! address; nothing else is ever addressed.
//!
//! Faults are rules inside a node's namespace: an nftables table `gavel_chaos` that drops
//! traffic to or from chosen peers (partitions, one-way loss, random loss), and a tc
//! qdisc on the node's interface for latency (netem where the kernel has it, otherwise a
//! token bucket whose queue delays what exceeds its rate). Healing deletes them.
//!
//! Everything is created under names that carry the harness's pid and removed when
//! `Network` drops, on errors and panics too; namespaces left by a harness that was
//! itself SIGKILLed are swept at the next start (their pid no longer runs).

use std::process::Command;

use anyhow::{bail, Context};

/// Prefix of every namespace the harness creates: `gavel-chaos-<pid>-n<node>`.
const NETNS_PREFIX: &str = "gavel-chaos-";

/// The namespaces, bridge and addresses of one run.
pub struct Network {
    pid: u32,
    bridge: String,
    /// `a.b.c`: nodes are `a.b.c.<id>`, the harness `a.b.c.254`.
    subnet: String,
    node_ids: Vec<u64>,
    netem: bool,
}

impl Network {
    /// Sweeps leftovers of dead runs, checks `subnet` is free, then builds the bridge and
    /// one namespace per node id.
    pub fn create(subnet: &str, node_ids: &[u64]) -> anyhow::Result<Network> {
        sweep_leftovers();
        let addresses = output("ip", &["-o", "-4", "addr", "show"])?;
        if addresses.contains(&format!(" {subnet}.")) {
            bail!("{subnet}.0/24 is already in use on this machine; choose another with --subnet");
        }
        let pid = std::process::id();
        let mut network = Network {
            pid,
            bridge: format!("gvc{pid}br"),
            subnet: subnet.to_string(),
            node_ids: Vec::new(),
            netem: false,
        };
        run("ip", &["link", "add", &network.bridge, "type", "bridge"])?;
        let harness_ip = format!("{}/24", network.harness_ip());
        run("ip", &["addr", "add", &harness_ip, "dev", &network.bridge])?;
        run("ip", &["link", "set", &network.bridge, "up"])?;
        for &id in node_ids {
            network.add_node(id)?;
        }
        network.netem = network.probe_netem();
        Ok(network)
    }

    fn add_node(&mut self, id: u64) -> anyhow::Result<()> {
        let netns = self.netns(id);
        let host_side = format!("gvc{}h{id}", self.pid);
        let node_side = format!("gvc{}n{id}", self.pid);
        run("ip", &["netns", "add", &netns])?;
        self.node_ids.push(id);
        run(
            "ip",
            &[
                "link", "add", &host_side, "type", "veth", "peer", "name", &node_side,
            ],
        )?;
        run("ip", &["link", "set", &node_side, "netns", &netns])?;
        run("ip", &["link", "set", &host_side, "master", &self.bridge])?;
        run("ip", &["link", "set", &host_side, "up"])?;
        let address = format!("{}/24", self.node_ip(id));
        self.exec(id, &["ip", "link", "set", "lo", "up"])?;
        self.exec(id, &["ip", "link", "set", &node_side, "name", "eth0"])?;
        self.exec(id, &["ip", "addr", "add", &address, "dev", "eth0"])?;
        self.exec(id, &["ip", "link", "set", "eth0", "up"])?;
        Ok(())
    }

    /// Whether this kernel has tc's netem (some VM kernels are built without it).
    fn probe_netem(&self) -> bool {
        let Some(&id) = self.node_ids.first() else {
            return false;
        };
        let added = self
            .exec(
                id,
                &[
                    "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
                ],
            )
            .is_ok();
        if added {
            let _ = self.exec(id, &["tc", "qdisc", "del", "dev", "lo", "root"]);
        }
        added
    }

    pub fn netns(&self, id: u64) -> String {
        format!("{NETNS_PREFIX}{}-n{id}", self.pid)
    }

    pub fn node_ip(&self, id: u64) -> String {
        format!("{}.{id}", self.subnet)
    }

    pub fn harness_ip(&self) -> String {
        format!("{}.254", self.subnet)
    }

    pub fn has_netem(&self) -> bool {
        self.netem
    }

    /// Runs a command inside node `id`'s namespace.
    fn exec(&self, id: u64, command: &[&str]) -> anyhow::Result<()> {
        let netns = self.netns(id);
        let mut args = vec!["netns", "exec", netns.as_str()];
        args.extend_from_slice(command);
        run("ip", &args)
    }

    /// Loads an nftables ruleset into node `id`'s namespace (replacing the harness's table).
    fn nft(&self, id: u64, rules: &str) -> anyhow::Result<()> {
        let script = format!(
            "table inet gavel_chaos\ndelete table inet gavel_chaos\ntable inet gavel_chaos {{\n{rules}\n}}\n"
        );
        let netns = self.netns(id);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &netns, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("cannot run nft (Debian package nftables)")?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin.write_all(script.as_bytes())?;
        }
        let finished = child.wait_with_output()?;
        if !finished.status.success() {
            bail!(
                "nft in {netns}: {}",
                String::from_utf8_lossy(&finished.stderr).trim()
            );
        }
        Ok(())
    }

    /// Node `id` drops everything it would receive from or send to the nodes `peers`
    /// (`inbound`/`outbound` choose the directions). The harness's address stays reachable.
    pub fn cut(&self, id: u64, peers: &[u64], inbound: bool, outbound: bool) -> anyhow::Result<()> {
        if peers.is_empty() {
            return Ok(());
        }
        let set = self.address_set(peers);
        let mut rules = String::new();
        if inbound {
            rules.push_str(&format!(
                "chain input {{ type filter hook input priority 0; ip saddr {set} drop; }}\n"
            ));
        }
        if outbound {
            rules.push_str(&format!(
                "chain output {{ type filter hook output priority 0; ip daddr {set} drop; }}\n"
            ));
        }
        self.nft(id, &rules)
    }

    /// Node `id` loses `percent`% of the packets between it and the other nodes, both
    /// ways, and (where netem exists) delays its outgoing packets by `delay_ms` ± a
    /// quarter; without netem, a 2 Mbit/s token bucket with a 100 ms queue stands in for
    /// the delay. Returns what was applied, for the report.
    pub fn degrade(&self, id: u64, percent: u32, delay_ms: u64) -> anyhow::Result<String> {
        let others: Vec<u64> = self.node_ids.iter().copied().filter(|&n| n != id).collect();
        let set = self.address_set(&others);
        let percent = percent.min(100);
        self.nft(
            id,
            &format!(
                "chain input {{ type filter hook input priority 0; ip saddr {set} numgen random mod 100 < {percent} drop; }}\n\
                 chain output {{ type filter hook output priority 0; ip daddr {set} numgen random mod 100 < {percent} drop; }}\n"
            ),
        )?;
        if self.netem {
            let delay = format!("{delay_ms}ms");
            let jitter = format!("{}ms", delay_ms / 4);
            self.exec(
                id,
                &[
                    "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", &delay, &jitter,
                ],
            )?;
            Ok(format!("{percent}% loss, netem delay {delay_ms} ms"))
        } else {
            self.exec(
                id,
                &[
                    "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "2mbit", "burst",
                    "16kb", "latency", "100ms",
                ],
            )?;
            Ok(format!(
                "{percent}% loss, tbf 2 Mbit/s with a 100 ms queue (no netem in this kernel)"
            ))
        }
    }

    /// Removes every rule and qdisc the harness put into node `id`'s namespace.
    pub fn heal(&self, id: u64) -> anyhow::Result<()> {
        self.nft(id, "")?;
        let _ = self.exec(id, &["tc", "qdisc", "del", "dev", "eth0", "root"]);
        Ok(())
    }

    fn address_set(&self, ids: &[u64]) -> String {
        let addresses: Vec<String> = ids.iter().map(|&id| self.node_ip(id)).collect();
        format!("{{ {} }}", addresses.join(", "))
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for &id in &self.node_ids {
            let _ = run("ip", &["netns", "del", &self.netns(id)]);
        }
        let _ = run("ip", &["link", "del", &self.bridge]);
    }
}

/// Deletes the namespaces and bridges of harness runs whose process is gone.
fn sweep_leftovers() {
    let Ok(list) = output("ip", &["netns", "list"]) else {
        return;
    };
    for name in list
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        let Some(rest) = name.strip_prefix(NETNS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run("ip", &["netns", "del", name]);
            let _ = run("ip", &["link", "del", &format!("gvc{pid}br")]);
        }
    }
}

/// Runs a command to completion; an error carries its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    output(program, args).map(drop)
}

/// Runs a command to completion and answers its stdout; an error carries its stderr.
fn output(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let finished = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !finished.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&finished.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&finished.stdout).into_owned())
}

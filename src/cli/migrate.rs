//! `gavel ctl migrate --from N --to M …`: moves voter N's place to a new node M while
//! bidding goes on, in the steps cloud migration tools take:
//!
//! 1. precheck: a leader is elected, N is a voter, M answers on its control listener as
//!    node M with the same Gavel version and enough free disk (twice the leader's data
//!    directory), and the leader reaches M on its peer address with the cluster secret;
//! 2. full sync: M becomes a standby (a Raft learner), by snapshot and log, until caught up;
//! 3. incremental catch-up: M applies the log up to where the leader stood when the step
//!    began;
//! 4. verification: a checkpoint goes through the log and the leader and M must note the
//!    same state digest for it, and archives of closed auctions holding the same records;
//! 5. cutover: if N leads, leadership goes to another voter first; then M takes N's vote
//!    and N leaves the cluster and stops.
//!
//! A failure once M is in the cluster (steps 2–5, or any step when an earlier
//! `--no-cutover` run made M a standby) rolls back: M leaves the cluster again (and
//! stops) and N stays a voter. `--no-cutover` stops after step 4 (M stays a synced,
//! verified standby); a later run cuts over.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::control_api::{ApiRequest, ControlArgs};
use super::Failure;

#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// The voter whose place moves.
    #[arg(long, value_name = "NODE_ID")]
    pub from: u64,
    /// The new node (already running, configured as a standby of this cluster).
    #[arg(long, value_name = "NODE_ID")]
    pub to: u64,
    /// Shown in the cluster view. Default `node-<to>`.
    #[arg(long)]
    pub name: Option<String>,
    /// The new node's peer listener, as the other nodes reach it (`IP:PORT`).
    #[arg(long, value_name = "IP:PORT")]
    pub peer: String,
    /// The new node's public listener's URL.
    #[arg(long, value_name = "URL")]
    pub public_url: String,
    /// The new node's control listener's URL (the precheck asks it directly).
    #[arg(long, value_name = "URL")]
    pub control_url: String,
    /// Stop after verification: the new node stays a synced standby.
    #[arg(long)]
    pub no_cutover: bool,
    /// How long the catch-up and the verification may each take, in seconds.
    #[arg(long, value_name = "S", default_value_t = 60)]
    pub step_timeout_s: u64,
}

const STEPS: u64 = 5;

/// Extra free disk the target needs beyond twice the leader's data directory.
const DISK_HEADROOM: u64 = 64 * 1024 * 1024;

struct Migration<'a> {
    control: &'a ControlArgs,
    args: &'a MigrateArgs,
    progress: indicatif::ProgressBar,
    step_timeout: Duration,
}

pub fn migrate(control: &ControlArgs, args: &MigrateArgs) -> Result<(), Failure> {
    if args.from == args.to || args.from == 0 || args.to == 0 {
        return Err(Failure::unusable(
            "--from and --to must be two different node ids, 1 or more",
        ));
    }
    let progress = indicatif::ProgressBar::new(STEPS);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} migrate [{bar:20}] {pos}/{len} {msg}")
    {
        progress.set_style(style.progress_chars("=> "));
    }
    progress.enable_steady_tick(Duration::from_millis(200));
    let migration = Migration {
        control,
        args,
        progress,
        step_timeout: Duration::from_secs(args.step_timeout_s.max(1)),
    };
    let outcome = migration.run();
    migration.progress.finish_and_clear();
    outcome
}

impl Migration<'_> {
    fn step(&self, number: u64, text: &str) {
        self.progress.set_position(number - 1);
        self.progress.set_message(text.to_string());
        self.say(&format!("step {number}/{STEPS}: {text}"));
    }

    fn done(&self, text: &str) {
        self.say(&format!("  ok: {text}"));
    }

    /// A line above the progress bar, or on stderr when there is no terminal to draw on.
    fn say(&self, line: &str) {
        if self.progress.is_hidden() {
            eprintln!("{line}");
        } else {
            self.progress.println(line);
        }
    }

    fn run(&self) -> Result<(), Failure> {
        let (from, to) = (self.args.from, self.args.to);
        self.step(1, "precheck");
        let result = match self.precheck() {
            Ok(already_standby) => self.sync_verify_cut_over(already_standby),
            // Nothing changed in this run; only a target an earlier `--no-cutover` run
            // made a standby is taken out again below.
            Err(failure) if !self.target_is_standby() => return Err(failure),
            Err(failure) => Err(failure),
        };
        match result {
            Ok(()) => {
                self.progress.set_position(STEPS);
                if self.args.no_cutover {
                    println!("node {to} is a synced, verified standby; run again without --no-cutover to cut over from node {from}");
                } else {
                    println!("migrated: node {to} votes in node {from}'s place; node {from} left the cluster and stops");
                }
                Ok(())
            }
            Err(failure) => {
                self.say(&format!("failed: {}; rolling back", failure.message));
                match self.roll_back() {
                    Ok(note) => Err(Failure::failed(format!(
                        "migration failed and was rolled back ({note}): {}",
                        failure.message
                    ))),
                    Err(rollback) => Err(Failure::failed(format!(
                        "migration failed: {}; the rollback failed too: {} (check `gavel cluster status`)",
                        failure.message, rollback.message
                    ))),
                }
            }
        }
    }

    /// Step 1. Returns whether the target already is a standby (an earlier
    /// `--no-cutover` run).
    fn precheck(&self) -> Result<bool, Failure> {
        let to = self.args.to;
        let view = self.cluster_view()?;
        let leader = view["leader_id"]
            .as_u64()
            .ok_or_else(|| Failure::failed("precheck failed: no leader is elected now"))?;
        let already_standby = self.precheck_roles(&view)?;
        let leader_url = control_url_of(&view, leader)
            .ok_or_else(|| Failure::failed("precheck failed: the leader has no control URL"))?;
        let (version, free, needed) = self.precheck_target(&leader_url)?;
        if !already_standby {
            // The leader reaches the target's peer listener with the cluster secret.
            self.control
                .send(&ApiRequest::post_control(
                    "/control/v1/cluster/nodes",
                    self.node_body(true),
                ))
                .map_err(|failure| {
                    Failure::failed(format!("precheck failed: {}", failure.message))
                })?;
        }
        self.done(&format!(
            "leader node {leader}; node {to} runs Gavel {version}, {free} bytes free ({needed} needed), reachable with the cluster secret"
        ));
        Ok(already_standby)
    }

    /// The source must be a voter, the target not yet a member (or a standby already:
    /// then `true`).
    fn precheck_roles(&self, view: &Value) -> Result<bool, Failure> {
        let (from, to) = (self.args.from, self.args.to);
        let role = |id: u64| {
            view["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|node| node["node_id"].as_u64() == Some(id))
                .and_then(|node| node["role"].as_str())
                .map(str::to_string)
        };
        match role(from).as_deref() {
            Some("leader") | Some("follower") => {}
            other => {
                return Err(Failure::failed(format!(
                    "precheck failed: node {from} is not a voter ({})",
                    other.unwrap_or("not a member")
                )))
            }
        }
        match role(to).as_deref() {
            None | Some("removed") => Ok(false),
            Some("standby") => Ok(true),
            Some(other) => Err(Failure::failed(format!(
                "precheck failed: node {to} is already a {other}"
            ))),
        }
    }

    /// The target is the node asked for, runs the leader's version and has room for
    /// twice the leader's data; answers its version, its free bytes and those needed.
    fn precheck_target(&self, leader_url: &str) -> Result<(Value, u64, u64), Failure> {
        let to = self.args.to;
        let leader_node = self.get_at(leader_url, "/control/v1/node")?;
        let target = self
            .get_at(
                self.args.control_url.trim_end_matches('/'),
                "/control/v1/node",
            )
            .map_err(|failure| {
                Failure::failed(format!(
                    "precheck failed: the target's control listener: {}",
                    failure.message
                ))
            })?;
        if target["node_id"].as_u64() != Some(to) {
            return Err(Failure::failed(format!(
                "precheck failed: {} is node {}, not node {to}",
                self.args.control_url, target["node_id"]
            )));
        }
        if target["version"] != leader_node["version"] {
            return Err(Failure::failed(format!(
                "precheck failed: node {to} runs Gavel {}, the leader {}",
                target["version"], leader_node["version"]
            )));
        }
        let needed = leader_node["data_dir_bytes"]
            .as_u64()
            .unwrap_or(0)
            .saturating_mul(2)
            .saturating_add(DISK_HEADROOM);
        let free = target["free_disk_bytes"].as_u64().unwrap_or(0);
        if free < needed {
            return Err(Failure::failed(format!(
                "precheck failed: node {to} has {free} bytes free, {needed} needed (twice the leader's data plus 64 MiB)"
            )));
        }
        Ok((target["version"].clone(), free, needed))
    }

    /// Steps 2 to 5.
    fn sync_verify_cut_over(&self, already_standby: bool) -> Result<(), Failure> {
        self.full_sync(already_standby)?;
        self.catch_up()?;
        let (view, leader) = self.verify()?;
        if self.args.no_cutover {
            return Ok(());
        }
        self.cut_over(&view, leader)
    }

    /// Step 2: the target becomes a standby (unless it is one already).
    fn full_sync(&self, already_standby: bool) -> Result<(), Failure> {
        let to = self.args.to;
        self.step(2, "full sync (snapshot and log to the new standby)");
        let started = Instant::now();
        if !already_standby {
            self.control.send(&ApiRequest::post_control(
                "/control/v1/cluster/nodes",
                self.node_body(false),
            ))?;
        }
        self.done(&format!(
            "node {to} is a standby ({} ms)",
            started.elapsed().as_millis()
        ));
        Ok(())
    }

    /// Step 3: the target applies the log up to where the leader was.
    fn catch_up(&self) -> Result<(), Failure> {
        let to = self.args.to;
        self.step(3, "incremental catch-up");
        let target_index = self.leader_applied_index()?;
        let deadline = Instant::now() + self.step_timeout;
        loop {
            let view = self.cluster_view()?;
            let node = node_of(&view, to);
            if node.and_then(|node| node["health"].as_str()) == Some("down") {
                return Err(Failure::failed(format!(
                    "node {to} went down during the catch-up"
                )));
            }
            let applied = node.and_then(|node| node["last_applied_index"].as_u64());
            if applied.is_some_and(|applied| applied >= target_index) {
                self.done(&format!("node {to} applied the log up to {target_index}"));
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Failure::failed(format!(
                    "node {to} did not reach log index {target_index} within {} s (at {applied:?})",
                    self.step_timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Step 4: the leader and the target hold the same state at one checkpoint. Answers
    /// the cluster view then, and the leader.
    fn verify(&self) -> Result<(Value, u64), Failure> {
        let to = self.args.to;
        self.step(4, "verification (state digests at one checkpoint)");
        let taken = self
            .control
            .send(&ApiRequest::post_control(
                "/control/v1/cluster/checkpoints",
                json!({}),
            ))?
            .unwrap_or(Value::Null);
        let label = taken["label"]
            .as_str()
            .ok_or_else(|| Failure::failed("the checkpoint has no label"))?
            .to_string();
        let view = self.cluster_view()?;
        let leader = view["leader_id"]
            .as_u64()
            .ok_or_else(|| Failure::failed("no leader during the verification"))?;
        let leader_url = control_url_of(&view, leader)
            .ok_or_else(|| Failure::failed("the leader has no control URL"))?;
        let path = format!("/control/v1/state/checkpoints/{label}");
        let leader_noted = self.wait_for_checkpoint(&leader_url, &path)?;
        let target_noted =
            self.wait_for_checkpoint(self.args.control_url.trim_end_matches('/'), &path)?;
        compare_checkpoints(&label, to, &leader_noted, &target_noted)?;
        self.done(&format!(
            "node {leader} and node {to} hold the same state and archive ({} closed auctions) at log index {}: {}",
            leader_noted.archive_auctions, taken["log_index"], leader_noted.digest
        ));
        Ok((view, leader))
    }

    /// Step 5: leadership moves off the source if it leads, then the target takes its
    /// vote.
    fn cut_over(&self, view: &Value, leader: u64) -> Result<(), Failure> {
        let (from, to) = (self.args.from, self.args.to);
        self.step(5, "cutover");
        if leader == from {
            let successor = view["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|node| {
                    node["role"] == "follower"
                        && node["health"] == "up"
                        && node["node_id"]
                            .as_u64()
                            .is_some_and(|id| id != from && id != to)
                })
                .and_then(|node| node["node_id"].as_u64())
                .ok_or_else(|| {
                    Failure::failed(format!(
                        "node {from} leads and no other healthy voter can take over"
                    ))
                })?;
            self.control.send(&ApiRequest::post_control(
                "/control/v1/cluster/switchover",
                json!({ "to_node_id": successor }),
            ))?;
            self.done(&format!(
                "leadership handed from node {from} to node {successor}"
            ));
        }
        self.control.send(&ApiRequest::post_control(
            "/control/v1/cluster/replace",
            json!({ "from_node_id": from, "to_node_id": to }),
        ))?;
        self.done(&format!("node {to} votes; node {from} left the cluster"));
        Ok(())
    }

    /// Takes the target out of the cluster again, unless the cutover did happen.
    fn roll_back(&self) -> Result<String, Failure> {
        let (from, to) = (self.args.from, self.args.to);
        let view = self.cluster_view()?;
        let role = node_of(&view, to).and_then(|node| node["role"].as_str());
        match role {
            Some("leader") | Some("follower") => Ok(format!(
                "nothing to undo: node {to} already votes in node {from}'s place"
            )),
            Some("standby") => {
                self.control.send(&ApiRequest {
                    listener: super::control_api::Listener::Control,
                    method: "DELETE",
                    path: format!("/control/v1/cluster/nodes/{to}"),
                    body: None,
                })?;
                Ok(format!("node {to} removed; node {from} still votes"))
            }
            _ => Ok(format!("node {to} was not added; node {from} still votes")),
        }
    }

    fn target_is_standby(&self) -> bool {
        self.cluster_view().is_ok_and(|view| {
            node_of(&view, self.args.to).and_then(|node| node["role"].as_str()) == Some("standby")
        })
    }

    fn node_body(&self, dry_run: bool) -> Value {
        let to = self.args.to;
        json!({
            "node_id": to,
            "name": self.args.name.clone().unwrap_or_else(|| format!("node-{to}")),
            "peer": self.args.peer,
            "public_url": self.args.public_url,
            "control_url": self.args.control_url,
            "dry_run": dry_run,
        })
    }

    fn cluster_view(&self) -> Result<Value, Failure> {
        Ok(self
            .control
            .send(&ApiRequest::get_control("/control/v1/cluster"))?
            .unwrap_or(Value::Null))
    }

    fn leader_applied_index(&self) -> Result<u64, Failure> {
        let view = self.cluster_view()?;
        let leader = view["leader_id"]
            .as_u64()
            .ok_or_else(|| Failure::failed("no leader during the catch-up"))?;
        node_of(&view, leader)
            .and_then(|node| node["last_applied_index"].as_u64())
            .ok_or_else(|| Failure::failed("the leader reports no applied index"))
    }

    fn get_at(&self, base_url: &str, path: &str) -> Result<Value, Failure> {
        let at = ControlArgs {
            control: base_url.to_string(),
            token: self.control.token(),
        };
        Ok(at
            .send(&ApiRequest::get_control(path))?
            .unwrap_or(Value::Null))
    }

    /// What `base_url`'s node noted at the checkpoint, once it has applied it.
    fn wait_for_checkpoint(&self, base_url: &str, path: &str) -> Result<Noted, Failure> {
        let deadline = Instant::now() + self.step_timeout;
        loop {
            match self.get_at(base_url, path) {
                Ok(checkpoint) => {
                    return Noted::from_json(&checkpoint)
                        .ok_or_else(|| Failure::failed(format!("{base_url}{path}: no digest")))
                }
                Err(failure) if failure.message.contains(" 404 ") => {}
                Err(failure) => return Err(failure),
            }
            if Instant::now() >= deadline {
                return Err(Failure::failed(format!(
                    "{base_url} did not apply the checkpoint within {} s",
                    self.step_timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What one node noted at a checkpoint: its state's digest and its archive's.
struct Noted {
    digest: String,
    archive_auctions: u64,
    archive_digest: String,
    archive_catching_up: bool,
}

impl Noted {
    fn from_json(checkpoint: &Value) -> Option<Noted> {
        Some(Noted {
            digest: checkpoint["digest"].as_str()?.to_string(),
            archive_auctions: checkpoint["archive_auctions"].as_u64()?,
            archive_digest: checkpoint["archive_digest"].as_str()?.to_string(),
            archive_catching_up: checkpoint["archive_catching_up"].as_bool()?,
        })
    }
}

/// The target holds what the leader holds at the checkpoint: the same state, and an
/// archive of closed auctions with the same records.
fn compare_checkpoints(
    label: &str,
    to: u64,
    leader: &Noted,
    target: &Noted,
) -> Result<(), Failure> {
    if leader.digest != target.digest {
        return Err(Failure::failed(format!(
            "verification failed: at {label} the leader's state digest is {}, node {to}'s {}",
            leader.digest, target.digest
        )));
    }
    if target.archive_catching_up {
        return Err(Failure::failed(format!(
            "verification failed: at {label} node {to} was still fetching closed auctions for its archive"
        )));
    }
    if (leader.archive_auctions, &leader.archive_digest)
        != (target.archive_auctions, &target.archive_digest)
    {
        return Err(Failure::failed(format!(
            "verification failed: at {label} the leader's archive holds {} closed auctions (digest {}), node {to}'s {} (digest {})",
            leader.archive_auctions, leader.archive_digest, target.archive_auctions, target.archive_digest
        )));
    }
    Ok(())
}

fn node_of(view: &Value, id: u64) -> Option<&Value> {
    view["nodes"]
        .as_array()?
        .iter()
        .find(|node| node["node_id"].as_u64() == Some(id))
}

fn control_url_of(view: &Value, id: u64) -> Option<String> {
    node_of(view, id)?["control_url"]
        .as_str()
        .map(|url| url.trim_end_matches('/').to_string())
}

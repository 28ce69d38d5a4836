//! Gavel's local-cluster harness: real `gavel serve` processes on free loopback ports,
//! started, stopped, killed and talked to over HTTP.
//!
//! - the crate root: one node (`Node`) on free ports for the integration tests, with the
//!   HTTP helpers they use (`request`, `control`, `bid`, waits for a phase or bid count);
//! - `cluster`: several such nodes as a cluster (`Cluster`), its leader and its joiners;
//! - `local`: the cluster the benchmarks and the chaos harness drive (`LocalCluster`):
//!   errors as values instead of panics, nodes placed on loopback or in network
//!   namespaces, and Ctrl-C handling that never leaves a child running;
//! - `bidders`: bidder threads that bid with retries and log every outcome;
//! - `restore`: the `gavel` command line run from a test, and free port bases;
//! - `tls`: test certificates and an HTTPS client.
//!
//! Every node runs the `gavel` binary that `gavel_binary` finds.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use process::{NodeConfig, Spawn};

use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "integration-admin-token-0123456789";
pub const CLUSTER_SECRET: &str = "8ea7550d9e3468905e97f68a9d904e1aee81555bce788b65e3e8e19bff871bbe";

/// A free TCP port on loopback (bound, then released for the node to take), never one
/// this test process handed out before (`process::free_port`).
pub fn free_port() -> u16 {
    process::free_port().expect("a free loopback port")
}

/// Polls `condition` every 50 ms for up to `limit`; whether it came true.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    condition()
}

pub use process::now_ms;

/// A temporary directory named after the test.
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(name)
        .tempdir()
        .expect("temp dir")
}

/// Starts node 1 alone in `dir` on free ports, with `extra` TOML in its configuration.
pub fn start_with(dir: &Path, extra: &str) -> Node {
    let mut node = Node::configure(dir, 1, (free_port(), free_port(), free_port()), extra);
    node.spawn();
    node
}

/// One running node: its process, ports and data directory.
pub struct Node {
    pub child: Option<Child>,
    pub public_url: String,
    pub control_url: String,
    /// The events listener's URL (`listen.events`), if the node has one.
    pub events_url: Option<String>,
    pub config_path: PathBuf,
    pub dir: PathBuf,
    /// `RUST_LOG` of the process; `info` unless a test asks for more.
    pub rust_log: String,
}

impl Node {
    /// Writes a one-voter configuration into `dir` and starts the node.
    pub fn start(dir: &Path) -> Node {
        let node = Node::configure(dir, 1, (free_port(), free_port(), free_port()), "");
        node.spawned()
    }

    fn spawned(mut self) -> Node {
        self.spawn();
        self
    }

    /// Writes node `id`'s configuration into `dir` (ports: public, control, peer), with
    /// `extra` TOML appended (the cluster section of a multi-node test).
    pub fn configure(dir: &Path, id: u64, ports: (u16, u16, u16), extra: &str) -> Node {
        Node::configure_with_receipt_key(dir, id, ports, extra, None)
    }

    /// `configure`, with the cluster's receipt key file (`security.receipt_key_file`).
    pub fn configure_with_receipt_key(
        dir: &Path,
        id: u64,
        ports: (u16, u16, u16),
        extra: &str,
        receipt_key_file: Option<&Path>,
    ) -> Node {
        Node::configure_listeners(dir, id, ports, None, extra, receipt_key_file)
    }

    /// `configure_with_receipt_key`, with an events listener on `events_port` if given.
    pub fn configure_listeners(
        dir: &Path,
        id: u64,
        ports: (u16, u16, u16),
        events_port: Option<u16>,
        extra: &str,
        receipt_key_file: Option<&Path>,
    ) -> Node {
        std::fs::create_dir_all(dir).expect("test dir");
        let data_dir = dir.join("data");
        let extra =
            format!("[janitor]\ninterval_ms = 300\nclosed_auction_linger_ms = 1000\n{extra}");
        let config = NodeConfig {
            id,
            ip: "127.0.0.1",
            ports,
            events_port,
            data_dir: &data_dir,
            admin_token: ADMIN_TOKEN,
            cluster_secret: CLUSTER_SECRET,
            receipt_key_file,
            operator_name: "test-operator",
            extra: &extra,
        };
        let config_path = dir.join("gavel.toml");
        std::fs::write(&config_path, config.to_toml()).expect("write config");
        let (public_url, control_url) = config.urls();
        Node {
            child: None,
            public_url,
            control_url,
            events_url: config.events_url(),
            config_path,
            dir: dir.to_path_buf(),
            rust_log: "info".to_string(),
        }
    }

    /// Starts (or restarts) the process on the same configuration and waits until ready.
    pub fn spawn(&mut self) {
        self.spawn_without_waiting();
        self.wait_ready(Duration::from_secs(20));
    }

    /// Waits up to `limit` for the process to exit on its own; its exit status.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Starts the process without waiting for it to be ready.
    pub fn spawn_without_waiting(&mut self) {
        let log = std::fs::File::create(self.dir.join(format!("node-{}.log", now_ms())))
            .expect("log file");
        let child = process::spawn_node(Spawn {
            binary: &crate::gavel_binary(),
            config_path: &self.config_path,
            log,
            rust_log: &self.rust_log,
            netns: None,
            detached: false,
        })
        .expect("start gavel");
        self.child = Some(child);
    }

    /// The last lines of the node's newest log file, for a failure message (the test's
    /// temporary directory is gone once the test has failed).
    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The whole of the node's newest log file.
    pub fn log_text(&self) -> String {
        let newest = process::newest_log(&self.dir);
        newest
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|child| child.id() as i32)
    }

    pub fn wait_ready(&mut self, limit: Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "gavel exited before it was ready: {status}; logs in {}:\n{}",
                        self.dir.display(),
                        self.log_tail()
                    );
                }
            }
            // The control listener is plain HTTP whether or not the public one is TLS.
            if let Ok(response) = ureq::get(&format!("{}/readyz", self.control_url)).call() {
                if response.status() == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "gavel not ready within {limit:?}; logs in {}",
            self.dir.display()
        );
    }

    /// Sends a signal to the process and waits for it to exit.
    pub fn stop_with(&mut self, signal: i32) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(child.id() as i32, signal);
            }
            let _ = child.wait();
        }
    }

    pub fn kill(&mut self) {
        self.stop_with(libc::SIGKILL);
    }

    // --- HTTP helpers; each returns (status, body as JSON or Null) ---

    pub fn public(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        request(method, &format!("{}{}", self.public_url, path), token, body)
    }

    pub fn control(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        request(
            method,
            &format!("{}{}", self.control_url, path),
            Some(ADMIN_TOKEN),
            body,
        )
    }

    /// A control request that may take up to `limit` to be answered: one the node answers
    /// only once work it waits for is done (`node add` answers once the new standby has
    /// caught up, which the node waits for up to two minutes).
    pub fn control_waiting(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        limit: Duration,
    ) -> (u16, Value) {
        let url = format!("{}{}", self.control_url, path);
        let agent = process::agent_with_timeout(limit);
        process::http(&agent, method, &url, Some(ADMIN_TOKEN), body)
            .unwrap_or_else(|error| panic!("{method} {url}: {error}"))
    }

    /// A control request with another operator's token.
    pub fn control_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        request(
            method,
            &format!("{}{}", self.control_url, path),
            Some(token),
            body,
        )
    }

    pub fn register_bidder(&self, bidder_id: &str) {
        let body = json!({"bidder_id": bidder_id, "name": format!("Bidder {bidder_id}"), "secret": format!("secret-{bidder_id}")});
        let (status, answer) = self.control("POST", "/control/v1/bidders", Some(body));
        assert_eq!(status, 201, "register {bidder_id}: {answer}");
    }

    /// Opens a session for a registered bidder; returns the token.
    pub fn login(&self, bidder_id: &str) -> String {
        let body = json!({"bidder_id": bidder_id, "secret": format!("secret-{bidder_id}")});
        let (status, answer) = self.public("POST", "/api/v1/sessions", None, Some(body));
        assert_eq!(status, 201, "login {bidder_id}: {answer}");
        answer["token"].as_str().expect("token").to_string()
    }

    pub fn qualify(&self, auction_id: &str, bidder_id: &str) -> u64 {
        let (status, answer) = self.control(
            "POST",
            &format!("/control/v1/auctions/{auction_id}/qualifications"),
            Some(json!({"bidder_id": bidder_id})),
        );
        assert_eq!(status, 201, "qualify {bidder_id}: {answer}");
        answer["bidder_number"].as_u64().expect("bidder_number")
    }

    pub fn create_auction(&self, spec: Value) -> Value {
        let (status, answer) = self.control("POST", "/control/v1/auctions", Some(spec));
        assert_eq!(status, 201, "create auction: {answer}");
        answer
    }

    pub fn bid(
        &self,
        token: &str,
        auction_id: &str,
        amount: u64,
        request_id: &str,
    ) -> (u16, Value) {
        self.public(
            "POST",
            &format!("/api/v1/auctions/{auction_id}/bids"),
            Some(token),
            Some(json!({"amount": amount, "request_id": request_id})),
        )
    }

    pub fn auction(&self, auction_id: &str) -> Value {
        let (status, answer) =
            self.public("GET", &format!("/api/v1/auctions/{auction_id}"), None, None);
        assert_eq!(status, 200, "get auction: {answer}");
        answer
    }

    /// Polls the auction until it holds `count` bids or the time limit; the last view.
    pub fn wait_for_bid_count(&self, auction_id: &str, count: u64, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let (status, view) =
                self.public("GET", &format!("/api/v1/auctions/{auction_id}"), None, None);
            if (status == 200 && view["bid_count"] == count) || started.elapsed() > limit {
                return view;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls the auction until `phase` or the time limit; returns the last view.
    pub fn wait_for_phase(&self, auction_id: &str, phase: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let view = self.auction(auction_id);
            if view["phase"] == phase || started.elapsed() > limit {
                return view;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP request with an optional bearer token and JSON body; panics if no answer.
pub fn request(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    try_request(method, url, token, body).unwrap_or_else(|error| panic!("{method} {url}: {error}"))
}

/// One HTTP request; an error when no HTTP answer came (refused, reset, timed out).
pub fn try_request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    // A fresh agent per request, as a bidder's retry would open a fresh connection: no
    // pooled connection to a node a test killed is ever reused.
    let agent = process::agent_with_timeout(Duration::from_secs(10));
    process::http(&agent, method, url, token, body)
}

/// The status of an HTTP/1.1 response read from `stream` and its head, read a byte at a
/// time up to the blank line (at most 16 KiB), so that what follows stays in the stream.
pub fn read_response_head(stream: &mut impl std::io::Read) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16_384 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    (status, head)
}

/// Sends raw bytes with a content type; for malformed-input tests.
pub fn raw_request(
    method: &str,
    url: &str,
    token: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (u16, Value) {
    let mut request = ureq::request(method, url)
        .timeout(Duration::from_secs(10))
        .set("Content-Type", content_type);
    if let Some(token) = token {
        request = request.set("Authorization", &format!("Bearer {token}"));
    }
    let response = match request.send_bytes(body) {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("{method} {url}: {error}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// An auction spec whose listing opens now and closes after `listing_ms`.
pub fn auction_spec(id: &str, listing_ms: u64, countdown_ms: u64) -> Value {
    let now = now_ms();
    json!({
        "id": id,
        "title": format!("Parcel {id}"),
        "parcel": {"district": "Gusu", "area_m2": 12000, "use": "residential"},
        "start_price": 1_000_000,
        "increment": 10_000,
        "listing_opens_at_ms": now,
        "listing_closes_at_ms": now + listing_ms,
        "countdown_ms": countdown_ms
    })
}
pub mod bidders;
pub mod cluster;
pub mod local;
pub mod process;
pub mod restore;
pub mod snapshot;
pub mod tls;

/// The `gavel` executable the nodes run: `GAVEL_BIN` when set; the running program
/// itself when it is `gavel` (`gavel bench`, `gavel chaos`); otherwise the `gavel`
/// Cargo built beside the running test (an integration test runs from
/// `target/<profile>/deps/`, the binary sits in `target/<profile>/`).
pub fn gavel_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("GAVEL_BIN") {
        return PathBuf::from(path);
    }
    let current = std::env::current_exe().expect("the running executable");
    if current.file_stem().is_some_and(|stem| stem == "gavel") {
        return current;
    }
    let profile_dir = current
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test executable in target/<profile>/deps");
    profile_dir.join(format!("gavel{}", std::env::consts::EXE_SUFFIX))
}

//! Bidders' secrets with real processes: a node seeded with a bidder record from before
//! Argon2id (a salted SHA-256) signs the bidder in with the old secret and replaces the
//! record by an Argon2id one on the way; a wrong secret is refused before and after, and
//! a backup taken afterwards holds the new record only.

use gavel_testkit as common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{request, Node, ADMIN_TOKEN};
use gavel::model::credentials::{new_salt, secret_hash};
use gavel::replication::backup::{read_backup, seed_data_dir, Backup, BackupHeader};
use gavel::replication::NodeInfo;
use gavel_kernel::state::Bidder;
use gavel_kernel::State;
use serde_json::json;

const OLD_SECRET: &str = "old-secret-from-before";

/// Seeds `node`'s empty data directory with a state holding bidder `ada`, whose record is
/// a salted SHA-256 of `OLD_SECRET`.
fn seed_with_sha256_bidder(node: &Node, peer: &str) {
    let salt = new_salt();
    let mut kernel = State::default();
    kernel.bidders.insert(
        "ada".to_string(),
        Bidder {
            bidder_id: "ada".to_string(),
            name: "Ada".to_string(),
            secret_hash: secret_hash(&salt, OLD_SECRET),
            secret_salt: salt,
            registered_at_ms: 1,
        },
    );
    let backup = Backup {
        header: BackupHeader {
            taken_at_ms: 1,
            node_id: 1,
            last_applied_index: 5,
            auctions: 0,
            archived_auctions: 0,
            bidders: 1,
            state_digest: kernel.digest(),
            payload_bytes: 0,
            payload_sha256: String::new(),
        },
        kernel,
        archived: Vec::new(),
        exchange: Default::default(),
    };
    let voters = BTreeMap::from([(
        1,
        NodeInfo {
            name: "node-1".to_string(),
            public_url: node.public_url.clone(),
            control_url: node.control_url.clone(),
            peer_addr: peer.to_string(),
        },
    )]);
    let data_dir = node.dir.join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(seed_data_dir(&data_dir, 1, &voters, &backup))
        .expect("seeded");
}

fn sign_in(node: &Node, secret: &str) -> u16 {
    let body = json!({"bidder_id": "ada", "secret": secret});
    request(
        "POST",
        &format!("{}/api/v1/sessions", node.public_url),
        None,
        Some(body),
    )
    .0
}

/// The bidder's stored record, read from a new backup of the running node in `dir`.
fn stored_record(node: &Node, dir: &Path) -> Bidder {
    stored_record_of(node, dir, "ada")
}

/// Bidder `bidder_id`'s stored record, read from a new backup of the running node in
/// `dir`.
fn stored_record_of(node: &Node, dir: &Path, bidder_id: &str) -> Bidder {
    static TAKEN: AtomicUsize = AtomicUsize::new(0);
    let out = dir.join(format!("{}.backup", TAKEN.fetch_add(1, Ordering::Relaxed)));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args([
            "ctl",
            "--control",
            &node.control_url,
            "--token",
            ADMIN_TOKEN,
        ])
        .args(["backup", "--out"])
        .arg(&out)
        .env_remove("GAVEL_ADMIN_TOKEN")
        .output()
        .expect("run gavel ctl backup");
    assert!(output.status.success(), "{output:?}");
    let backup = read_backup(&std::fs::read(&out).expect("read backup")).expect("backup");
    backup.kernel.bidders[bidder_id].clone()
}

#[test]
fn signing_in_with_a_sha256_record_upgrades_it_to_argon2id() {
    let dir = common::temp_dir("secret-upgrade");
    let peer_port = common::free_port();
    let ports = (common::free_port(), common::free_port(), peer_port);
    let mut node = Node::configure(dir.path(), 1, ports, "");
    seed_with_sha256_bidder(&node, &format!("127.0.0.1:{peer_port}"));
    node.spawn();
    let before = stored_record(&node, dir.path());
    assert_eq!(before.secret_hash.len(), 64, "seeded as SHA-256");

    assert_eq!(sign_in(&node, "a-wrong-secret"), 401, "{}", node.log_tail());
    assert_eq!(
        stored_record(&node, dir.path()),
        before,
        "a wrong secret changes nothing"
    );
    assert_eq!(sign_in(&node, OLD_SECRET), 201, "{}", node.log_tail());
    let upgraded = common::wait_until(Duration::from_secs(5), || {
        stored_record(&node, dir.path())
            .secret_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    });
    assert!(upgraded, "the record is not Argon2id: {}", node.log_tail());
    let after = stored_record(&node, dir.path());
    assert_eq!(after.secret_salt, "", "the salt is inside the PHC string");
    assert!(!after.secret_hash.contains(OLD_SECRET));

    // The upgraded record takes the same secret, and still refuses a wrong one.
    assert_eq!(sign_in(&node, OLD_SECRET), 201, "{}", node.log_tail());
    assert_eq!(sign_in(&node, "a-wrong-secret"), 401);
    assert_eq!(
        stored_record(&node, dir.path()).secret_hash,
        after.secret_hash,
        "an Argon2id record is not hashed again"
    );
}

#[test]
fn a_bidder_registered_now_is_stored_as_argon2id_and_signs_in() {
    let dir = common::temp_dir("secret-register");
    let node = Node::start(dir.path());
    let (status, _) = request(
        "POST",
        &format!("{}/control/v1/bidders", node.control_url),
        Some(ADMIN_TOKEN),
        Some(json!({"bidder_id": "ada", "name": "Ada", "secret": "a-new-long-secret"})),
    );
    assert_eq!(status, 201, "{}", node.log_tail());
    let record = stored_record(&node, dir.path());
    assert!(record.secret_hash.starts_with("$argon2id$"), "{record:?}");
    assert_eq!(sign_in(&node, "a-new-long-secret"), 201);
    assert_eq!(sign_in(&node, "a-new-long-secreT"), 401);
}

#[test]
fn a_node_refuses_to_start_on_a_placeholder_or_short_cluster_secret() {
    for (name, secret) in [
        (
            "placeholder",
            "replace-with-the-same-long-random-secret-on-every-node",
        ),
        ("short", "0123456789abcdef0123456789abcdef"),
    ] {
        let dir = common::temp_dir(name);
        let ports = (
            common::free_port(),
            common::free_port(),
            common::free_port(),
        );
        let mut node = Node::configure(dir.path(), 1, ports, "");
        let config = std::fs::read_to_string(&node.config_path).expect("config");
        std::fs::write(
            &node.config_path,
            config.replace(common::CLUSTER_SECRET, secret),
        )
        .expect("write config");
        node.spawn_without_waiting();
        let status = node.wait_for_exit(Duration::from_secs(20)).expect("exits");
        assert!(!status.success(), "{name}: {status:?}");
        let log = node.log_text();
        assert!(
            log.contains("security.cluster_secret") && log.contains("gavel cluster secret"),
            "{name}: {log}"
        );
        assert!(!dir.path().join("data").exists(), "{name}: nothing written");
    }
}

/// Every file and directory under `root` whose group or others have any permission.
fn open_to_others(root: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path).expect("metadata");
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                pending.push(entry.expect("entry").path());
            }
        }
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            found.push(format!("{} {:o}", path.display(), mode & 0o777));
        }
    }
    found
}

#[test]
fn a_node_writes_its_data_files_snapshot_and_backups_for_its_user_only() {
    let dir = common::temp_dir("private-files");
    let node = common::start_with(dir.path(), "[raft]\nsnapshot_every_entries = 5\n");
    for index in 0..12 {
        let (status, _) = request(
            "POST",
            &format!("{}/control/v1/bidders", node.control_url),
            Some(ADMIN_TOKEN),
            Some(
                json!({"bidder_id": format!("b{index}"), "name": "B", "secret": "a-long-secret-1"}),
            ),
        );
        assert_eq!(status, 201, "{}", node.log_tail());
    }
    let data = dir.path().join("data");
    let snapshot = data.join("raft").join("gavel-snapshot");
    assert!(
        common::wait_until(Duration::from_secs(20), || snapshot.exists()),
        "no snapshot was taken: {}",
        node.log_tail()
    );
    let backup_dir = dir.path().join("backups");
    std::fs::create_dir(&backup_dir).expect("backup dir");
    stored_record_of(&node, &backup_dir, "b0");
    let mut open = open_to_others(&data);
    open.extend(
        open_to_others(&backup_dir)
            .into_iter()
            .filter(|entry| !entry.starts_with(&format!("{} ", backup_dir.display()))),
    );
    assert!(open.is_empty(), "readable by others: {open:#?}");
}

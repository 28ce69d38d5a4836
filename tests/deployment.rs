//! The deployment files of cluster/: every node configuration loads and validates with the
//! real loader once the operator has made the cluster secret's and the receipt key's
//! files (the files carry no secret), every node signs receipts with the same key, the nginx upstream lists every member's public listener, and nginx accepts
//! the file (when nginx is installed).

use std::path::{Path, PathBuf};
use std::process::Command;

use gavel::config::Config;

fn node_configs(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read cluster dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            node_configs(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "toml") {
            let text = std::fs::read_to_string(&path).expect("read toml");
            // A node configuration has a [node] table; local.toml is a cluster definition.
            if text.lines().any(|line| line.trim() == "[node]") {
                found.push(path);
            }
        }
    }
}

/// The cluster secret's file an operator makes with `gavel cluster secret --out`.
fn made_secret_file(dir: &Path) -> PathBuf {
    let path = dir.join("cluster-secret");
    let output = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["cluster", "secret", "--out"])
        .arg(&path)
        .output()
        .expect("run gavel cluster secret");
    assert!(output.status.success(), "{output:?}");
    path
}

/// The receipt key's file an operator makes with `gavel cluster receipt-key --out`, and
/// the public key the command printed.
fn made_receipt_key_file(dir: &Path) -> (PathBuf, String) {
    let path = dir.join("receipt-key");
    let output = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["cluster", "receipt-key", "--out"])
        .arg(&path)
        .output()
        .expect("run gavel cluster receipt-key");
    assert!(output.status.success(), "{output:?}");
    let public_key = String::from_utf8(output.stdout).expect("utf-8");
    (path, public_key.trim().to_string())
}

fn three_hosts() -> Vec<Config> {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = made_secret_file(dir.path());
    let (receipt_key_file, public_key) = made_receipt_key_file(dir.path());
    let mut paths = Vec::new();
    node_configs(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster/three-hosts"),
        &mut paths,
    );
    paths.sort();
    assert!(
        paths.len() >= 4,
        "node configs under cluster/three-hosts: {paths:?}"
    );
    paths
        .iter()
        .map(|path| {
            let mut config = Config::load(path).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(config.security.admin_token, None, "{}", path.display());
            assert_eq!(config.security.cluster_secret, None, "{}", path.display());
            assert_eq!(
                config.security.cluster_secret_file.as_deref(),
                Some(Path::new("/etc/gavel/cluster-secret")),
                "{}",
                path.display()
            );
            config.apply_admin_token_override(Some("deployment-test-admin-token-0123".into()));
            assert_eq!(
                config.security.receipt_key_file.as_deref(),
                Some(Path::new("/etc/gavel/receipt-key")),
                "{}",
                path.display()
            );
            config.security.cluster_secret_file = Some(secret_file.clone());
            config.security.receipt_key_file = Some(receipt_key_file.clone());
            config
                .load_secret_files()
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            let key = config
                .receipt_key()
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert_eq!(key.public_key(), public_key, "{}", path.display());
            config
                .validate_for_serving()
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            config
        })
        .collect()
}

#[test]
fn the_shipped_configs_carry_no_usable_secret_and_do_not_serve_without_the_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster/three-hosts/node-1.toml");
    let mut config = Config::load(&path).expect("loads");
    config.apply_admin_token_override(Some("deployment-test-admin-token-0123".into()));
    let dir = tempfile::tempdir().expect("temp dir");
    config.security.cluster_secret_file = Some(dir.path().join("not-made-yet"));
    let error = config.load_secret_files().expect_err("no file");
    assert_eq!(error.key(), Some("security.cluster_secret_file"));
    assert!(config.validate_for_serving().is_err());
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(!text.contains("cluster_secret ="), "no secret in the file");
}

#[test]
fn every_node_config_under_cluster_loads_and_lists_the_same_members() {
    let configs = three_hosts();
    let first = &configs[0].cluster.members;
    for config in &configs {
        assert_eq!(&config.cluster.members, first, "node {}", config.node.id);
        let me = config.this_member().expect("this node is a member");
        assert_eq!(me.id, config.node.id);
        assert_eq!(me.peer, config.listen.peer, "node {}", config.node.id);
    }
    let mut ids: Vec<u64> = configs.iter().map(|config| config.node.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), configs.len(), "one file per node id");
}

fn nginx_conf() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster/nginx/gavel.conf"))
        .expect("cluster/nginx/gavel.conf")
}

#[test]
fn the_nginx_upstream_lists_every_public_listener_and_no_control_listener() {
    let configs = three_hosts();
    let conf = nginx_conf();
    for member in &configs[0].cluster.members {
        let address = member.public_url.trim_start_matches("http://");
        assert!(
            conf.contains(&format!("server {address} ")),
            "{address} missing from the upstream"
        );
        let control = member.control_url.trim_start_matches("http://");
        assert!(!conf.contains(control), "{control} must not be proxied");
    }
}

#[test]
fn nginx_accepts_the_configuration() {
    if Command::new("nginx").arg("-v").output().is_err() {
        println!("SKIPPED: nginx is not on PATH (.ci/run installs nginx-light)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let main = dir.path().join("nginx.conf");
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster/nginx/gavel.conf");
    let prefix = dir.path().display();
    std::fs::write(
        &main,
        format!(
            "pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\nevents {{}}\nhttp {{\n access_log off;\n client_body_temp_path {prefix}/body;\n proxy_temp_path {prefix}/proxy;\n fastcgi_temp_path {prefix}/fastcgi;\n uwsgi_temp_path {prefix}/uwsgi;\n scgi_temp_path {prefix}/scgi;\n include {};\n}}\n",
            include.display()
        ),
    )
    .expect("write nginx.conf");
    let output = Command::new("nginx")
        .arg("-t")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&main)
        .output()
        .expect("run nginx -t");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "nginx -t failed:\n{stderr}");
    println!("{stderr}");
}

/// The configuration the .deb installs as /etc/gavel/node-1.toml: a node alone that
/// serves with the token the package writes beside it, keeps its data where the unit
/// lets it write, and holds no secret (tests/package/check.sh serves it for real).
#[test]
fn the_packaged_node_config_serves_alone_under_var_lib_gavel() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster/package/node-1.toml");
    let mut config = Config::load(&path).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.security.admin_token, None);
    assert_eq!(config.security.cluster_secret, None);
    assert!(config.cluster.members.len() <= 1, "a node alone");
    assert!(
        config.node.data_dir.starts_with("/var/lib/gavel"),
        "{}",
        config.node.data_dir.display()
    );
    // Without the token the node refuses to serve; with the package's, it serves.
    assert!(config.validate_for_serving().is_err());
    config.apply_admin_token_override(Some("0123456789abcdef0123456789abcdef".into()));
    config.load_secret_files().expect("no secret files to load");
    config.validate_for_serving().expect("serves alone");
}

#[test]
fn systemd_accepts_the_unit_template() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIPPED: systemd-analyze is not on PATH");
        return;
    }
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster/systemd/gavel@.service"),
    )
    .expect("cluster/systemd/gavel@.service");
    assert!(unit.contains("ExecStart=/usr/bin/gavel serve --config /etc/gavel/%i.toml"));
    assert!(unit.contains("Restart=on-failure"));
    // The installed binary's path, replaced by the one just built so verify finds it.
    let dir = tempfile::tempdir().expect("temp dir");
    let instance = dir.path().join("gavel@node-1.service");
    std::fs::write(
        &instance,
        unit.replace("/usr/bin/gavel", env!("CARGO_BIN_EXE_gavel")),
    )
    .expect("write unit");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&instance)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

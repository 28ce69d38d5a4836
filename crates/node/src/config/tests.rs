//! Tests of configuration loading and validation.
use super::file::lone_voter;
use super::*;

fn node_one() -> Config {
    Config::for_node(1).expect("node 1 has defaults")
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"))
}

#[test]
fn defaults_follow_the_node_id_and_are_valid() {
    let config = node_one();
    assert_eq!(config.node.name, "node-1");
    assert_eq!(config.node.data_dir, PathBuf::from("data/node-1"));
    assert_eq!(config.listen.public, "127.0.0.1:8081".parse().unwrap());
    assert_eq!(config.listen.control, "127.0.0.1:9081".parse().unwrap());
    assert_eq!(config.listen.peer, "127.0.0.1:7081".parse().unwrap());
    assert_eq!(
        config.cluster.members,
        vec![lone_voter(&config.node, &config.listen)]
    );
    assert_eq!(config.raft, RaftSection::default());
    config.validate().expect("defaults are valid");
    assert_eq!(parse("[node]\nid = 1\n").unwrap(), config);
}

#[test]
fn a_node_without_an_admin_token_refuses_to_serve() {
    let error = node_one().validate_for_serving().unwrap_err();
    assert_eq!(error.key(), Some("security.admin_token"));
    assert!(error.to_string().contains(ADMIN_TOKEN_ENV));
}

#[test]
fn each_bad_value_names_its_key() {
    type Breakage = fn(&mut Config);
    let cases: Vec<(&str, Breakage)> = vec![
        ("node.id", |c| c.node.id = 0),
        ("node.name", |c| c.node.name = " ".into()),
        ("node.data_dir", |c| c.node.data_dir = PathBuf::new()),
        ("listen.public", |c| c.listen.public.set_port(0)),
        ("listen", |c| c.listen.control = c.listen.public),
        ("listen.events", |c| c.listen.events = Some(c.listen.peer)),
        ("listen", |c| {
            c.listen.events = Some("127.0.0.1:8181".parse().unwrap());
            c.listen.control = c.listen.public;
        }),
        ("listen.events", |c| {
            c.listen.events = Some("127.0.0.2:8181".parse().unwrap())
        }),
        ("listen.events", |c| {
            c.listen.events = Some("127.0.0.1:0".parse().unwrap())
        }),
        ("http.event_workers", |c| c.http.event_workers = 0),
        ("http.event_workers", |c| c.http.event_workers = 65),
        ("security.admin_token", |c| {
            c.security.admin_token = Some("short".into())
        }),
        ("security.cluster_secret", |c| {
            c.security.cluster_secret = Some("short".into())
        }),
        ("security.cluster_secret", |c| {
            c.security.cluster_secret =
                Some("replace-with-the-same-long-random-secret-on-every-node".into())
        }),
        ("security.operator_name", |c| {
            c.security.operator_name = String::new()
        }),
        ("cluster.members", |c| c.cluster.members.clear()),
        ("cluster.members", |c| c.cluster.members[0].id = 9),
        ("cluster.members", |c| {
            c.cluster.members[0].role = Role::Standby
        }),
        ("cluster.members[0].public_url", |c| {
            c.cluster.members[0].public_url = "127.0.0.1:8081".into()
        }),
        ("cluster.members[0].control_url", |c| {
            c.cluster.members[0].control_url = "ftp://x".into()
        }),
        ("cluster.members[0].name", |c| {
            c.cluster.members[0].name = String::new()
        }),
        ("cluster.members[1].id", |c| {
            c.cluster.members.push(c.cluster.members[0].clone())
        }),
        ("security.cluster_secret", |c| {
            let mut second = c.cluster.members[0].clone();
            second.id = 2;
            second.peer.set_port(7082);
            c.cluster.members.push(second);
        }),
        ("raft.heartbeat_interval_ms", |c| {
            c.raft.heartbeat_interval_ms = 0
        }),
        ("raft.election_timeout_min_ms", |c| {
            c.raft.election_timeout_min_ms = c.raft.heartbeat_interval_ms
        }),
        ("raft.election_timeout_max_ms", |c| {
            c.raft.election_timeout_max_ms = c.raft.election_timeout_min_ms
        }),
        ("raft.snapshot_every_entries", |c| {
            c.raft.snapshot_every_entries = 0
        }),
        ("sessions.ttl_ms", |c| c.sessions.ttl_ms = 0),
        ("sessions.max_sessions_per_bidder", |c| {
            c.sessions.max_sessions_per_bidder = 0
        }),
        ("sessions.max_sessions_per_bidder", |c| {
            c.sessions.max_sessions_per_bidder = 1_001
        }),
        ("janitor.interval_ms", |c| c.janitor.interval_ms = 0),
        ("janitor.request_retention_ms", |c| {
            c.janitor.request_retention_ms = 0
        }),
        ("pool.mailbox_capacity", |c| c.pool.mailbox_capacity = 0),
        ("pool.event_buffer", |c| c.pool.event_buffer = 0),
        ("http.workers", |c| c.http.workers = 0),
        ("http.max_connections", |c| c.http.max_connections = 0),
        ("http.body_read_timeout_ms", |c| {
            c.http.body_read_timeout_ms = 99
        }),
        ("limits.per_ip_per_second", |c| {
            c.limits.per_ip_per_second = 0
        }),
        ("limits.per_session_burst", |c| {
            c.limits.per_session_burst = 0
        }),
        ("limits.max_tracked", |c| c.limits.max_tracked = 1),
        ("limits.sign_in_failures", |c| c.limits.sign_in_failures = 0),
        ("limits.sign_in_lockout_ms", |c| {
            c.limits.sign_in_lockout_ms = 999
        }),
        ("limits.max_streams_per_ip", |c| {
            c.limits.max_streams_per_ip = 0
        }),
        ("limits.max_streams", |c| {
            c.limits.max_streams = c.http.max_connections + 1
        }),
        ("limits.secret_hash_concurrency", |c| {
            c.limits.secret_hash_concurrency = 0
        }),
        ("exchange.hmac_key_file", |c| {
            c.exchange.dir = Some("spool".into())
        }),
        ("backup.every_ms", |c| c.backup.every_ms = 999),
        ("backup.every_ms", |c| c.backup.every_ms = 604_800_001),
        ("backup.keep", |c| c.backup.keep = 0),
        ("backup.dir", |c| c.backup.dir = Some("".into())),
        ("limits.secret_hash_concurrency", |c| {
            c.limits.secret_hash_concurrency = 65
        }),
        ("tls", |c| c.tls.public_cert = Some("cert.pem".into())),
        ("tls", |c| c.tls.peer_key = Some("key.pem".into())),
        ("tls.peer_ca", |c| {
            c.tls.peer_cert = Some("cert.pem".into());
            c.tls.peer_key = Some("key.pem".into());
        }),
        ("security.operators[0].name", |c| {
            c.security.operators = vec![operator("bad name", "a-long-enough-token-1")]
        }),
        ("security.operators[1].name", |c| {
            c.security.operators = vec![
                operator("ann", "a-long-enough-token-1"),
                operator("ann", "a-long-enough-token-2"),
            ]
        }),
        ("security.operators[0].name", |c| {
            c.security.operators = vec![operator("operator", "a-long-enough-token-1")]
        }),
        ("security.operators[0].token", |c| {
            c.security.operators = vec![operator("ann", "short")]
        }),
        ("security.operators[1].token", |c| {
            c.security.operators = vec![
                operator("ann", "a-long-enough-token-1"),
                operator("ben", "a-long-enough-token-1"),
            ]
        }),
    ];
    for (key, breakage) in cases {
        let mut config = node_one();
        breakage(&mut config);
        let error = config.validate().expect_err(key);
        assert_eq!(error.key(), Some(key), "{error}");
        assert!(error.to_string().starts_with(key), "{error}");
    }
}

fn operator(name: &str, token: &str) -> OperatorToken {
    OperatorToken {
        name: name.to_string(),
        token: token.to_string(),
    }
}

#[test]
fn operators_limits_and_tls_parse_and_tokens_stay_out_of_debug_output() {
    let config = parse(
        "[node]\nid = 1\n[security]\n[[security.operators]]\nname = \"ann\"\ntoken = \"ann-token-0123456789\"\n\n[limits]\nper_ip_per_second = 7\n\n[tls]\npublic_cert = \"c.pem\"\npublic_key = \"k.pem\"\n",
    )
    .expect("parses");
    assert_eq!(
        config.security.operators,
        vec![operator("ann", "ann-token-0123456789")]
    );
    assert_eq!(config.limits.per_ip_per_second, 7);
    assert_eq!(
        config.limits.per_ip_burst,
        LimitsSection::default().per_ip_burst
    );
    assert_eq!(config.tls.public_cert, Some(PathBuf::from("c.pem")));
    config.validate().expect("valid");
    // An operator token is enough to serve without an admin token.
    config
        .validate_for_serving()
        .expect("serves with an operator token");
    let debug = format!("{config:?}");
    assert!(
        debug.contains("ann") && !debug.contains("ann-token-0123456789"),
        "{debug}"
    );
}

#[test]
fn election_timeout_message_names_both_keys() {
    let mut config = node_one();
    config.raft.election_timeout_min_ms = config.raft.heartbeat_interval_ms;
    let message = config.validate().unwrap_err().to_string();
    assert!(
        message.starts_with(
            "raft.election_timeout_min_ms must be greater than raft.heartbeat_interval_ms"
        ),
        "{message}"
    );
}

#[test]
fn environment_admin_token_wins_over_the_file() {
    let mut config =
        parse("[node]\nid = 1\n[security]\nadmin_token = \"from-the-file-0123\"\n").unwrap();
    config.apply_admin_token_override(None);
    assert_eq!(
        config.security.admin_token.as_deref(),
        Some("from-the-file-0123")
    );
    config.apply_admin_token_override(Some(String::new()));
    assert_eq!(
        config.security.admin_token.as_deref(),
        Some("from-the-file-0123")
    );
    config.apply_admin_token_override(Some("from-the-environment".into()));
    assert_eq!(
        config.security.admin_token.as_deref(),
        Some("from-the-environment")
    );
    config
        .validate_for_serving()
        .expect("token set and long enough");
}

#[test]
fn unknown_keys_are_refused_in_every_section() {
    for text in [
        "[node]\nid = 1\nbogus_key = 1\n",
        "bogus_key = 1\n[node]\nid = 1\n",
        "[node]\nid = 1\n[raft]\nbogus_key = 1\n",
    ] {
        let message = parse(text).unwrap_err().to_string();
        assert!(message.contains("bogus_key"), "{message}");
    }
    let member = "[node]\nid = 1\n[[cluster.members]]\nid = 1\nname = \"a\"\npeer = \"127.0.0.1:7081\"\npublic_url = \"http://a\"\ncontrol_url = \"http://b\"\nrole = \"voter\"\nbogus_key = 1\n";
    assert!(parse(member).unwrap_err().to_string().contains("bogus_key"));
}

#[test]
fn missing_node_id_is_named() {
    assert_eq!(parse("").unwrap_err().key(), Some("node.id"));
    let message = parse("[node]\nid = \"one\"\n").unwrap_err().to_string();
    assert!(message.contains("test.toml (line 2"), "{message}");
}

#[test]
fn default_port_that_does_not_fit_is_named() {
    assert_eq!(
        Config::for_node(60_000).unwrap_err().key(),
        Some("listen.public")
    );
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let mut config = node_one();
    config.apply_admin_token_override(Some("very-secret-admin-token".into()));
    assert!(!format!("{config:?}").contains("very-secret"));
}

#[test]
fn serialized_config_reads_back_the_same() {
    let mut config = node_one();
    config.security.cluster_secret = Some(secrets::new_cluster_secret());
    config.security.cluster_secret_file = Some("/etc/gavel/cluster-secret".into());
    let text = toml::to_string_pretty(&config).unwrap();
    assert_eq!(parse(&text).unwrap(), config);
}

#[test]
fn shipped_node_toml_parses_validates_and_documents_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/node.toml");
    let config = Config::load(&path).unwrap_or_else(|error| panic!("{error}"));
    config.validate().unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        config,
        node_one(),
        "config/node.toml must show node 1 with every default"
    );
}

#[test]
fn faults_are_off_unless_enabled_and_the_section_is_checked() {
    assert!(!node_one().faults.enabled);
    let enabled = parse("[node]\nid = 1\n[faults]\nenabled = true\n").unwrap();
    assert!(enabled.faults.enabled);
    let message = parse("[node]\nid = 1\n[faults]\nenabled = \"yes\"\n")
        .unwrap_err()
        .to_string();
    assert!(message.contains("line 4"), "{message}");
    let message = parse("[node]\nid = 1\n[faults]\npanic_rate = 1\n")
        .unwrap_err()
        .to_string();
    assert!(message.contains("panic_rate"), "{message}");
}

#[test]
fn cpu_idle_poll_is_off_unless_asked_for_and_the_section_is_checked() {
    assert!(!node_one().host.cpu_idle_poll);
    let on = parse("[node]\nid = 1\n[host]\ncpu_idle_poll = true\n").unwrap();
    assert!(on.host.cpu_idle_poll);
    let message = parse("[node]\nid = 1\n[host]\ncpu_idle_poll = 1\n")
        .unwrap_err()
        .to_string();
    assert!(message.contains("line 4"), "{message}");
    let message = parse("[node]\nid = 1\n[host]\nidle = true\n")
        .unwrap_err()
        .to_string();
    assert!(message.contains("idle"), "{message}");
}

#[test]
fn the_receipt_key_settings_are_read_from_the_file_and_the_previous_keys_checked() {
    let previous = crate::receipts::parse_seed(&crate::receipts::new_seed())
        .expect("seed")
        .public_key();
    let config = parse(&format!(
        "[node]\nid = 1\n[security]\nreceipt_key_file = \"/etc/gavel/receipt-key\"\nreceipt_key_previous = [\"{previous}\"]\n"
    ))
    .expect("parses");
    assert_eq!(
        config.security.receipt_key_file.as_deref(),
        Some(Path::new("/etc/gavel/receipt-key"))
    );
    assert_eq!(config.security.receipt_key_previous, vec![previous]);
    config.validate().expect("valid");
    let error = parse("[node]\nid = 1\n[security]\nreceipt_key_previous = [\"AAAA\"]\n")
        .and_then(|config| config.validate().map(|()| config))
        .expect_err("3 bytes");
    assert_eq!(error.key(), Some("security.receipt_key_previous[0]"));
}

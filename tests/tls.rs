//! TLS on a real `gavel serve` process on loopback, with certificates made at test time:
//! the public listener serves a TLS client and refuses a plaintext one; an unreadable
//! certificate stops the node naming its key; a three-node cluster with peer TLS elects a
//! leader and commits a bid forwarded over TLS, and refuses a plaintext peer; the events
//! listener speaks TLS with the public listener's certificate and streams over it.

use gavel_testkit as common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use common::cluster::Cluster;
use common::tls::{https_get, TestCertificates};
use common::{auction_spec, temp_dir, try_request, Node};

#[test]
fn public_tls_serves_a_tls_client_and_refuses_a_plaintext_one() {
    let dir = temp_dir("public-tls");
    let certificates = TestCertificates::generate(&dir.path().join("certs"));
    let public_port = common::free_port();
    let extra = format!(
        "\n[tls]\npublic_cert = \"{}\"\npublic_key = \"{}\"\n",
        certificates.cert.display(),
        certificates.key.display()
    );
    let mut node = Node::configure(
        dir.path(),
        1,
        (public_port, common::free_port(), common::free_port()),
        &extra,
    );
    node.spawn();
    let answer = https_get(certificates.client_config(), public_port, "/api/v1/time")
        .expect("a TLS client is served");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("server_time_ms"), "{answer}");
    let plain = try_request(
        "GET",
        &format!("http://127.0.0.1:{public_port}/api/v1/time"),
        None,
        None,
    );
    assert!(
        plain.is_err(),
        "a plaintext client got an HTTP answer: {plain:?}"
    );
}

#[test]
fn the_events_listener_streams_over_tls_with_the_public_certificate() {
    let dir = temp_dir("events-tls");
    let certificates = TestCertificates::generate(&dir.path().join("certs"));
    let events_port = common::free_port();
    let extra = format!(
        "\n[tls]\npublic_cert = \"{}\"\npublic_key = \"{}\"\n",
        certificates.cert.display(),
        certificates.key.display()
    );
    let ports = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let mut node = Node::configure_listeners(dir.path(), 1, ports, Some(events_port), &extra, None);
    node.spawn();
    node.create_auction(auction_spec("lot-events-tls", 120_000, 60_000));

    let health = https_get(certificates.client_config(), events_port, "/healthz")
        .expect("a TLS client is served");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok\n"), "{health}");

    // A stream over TLS: its head, then the auction's view.
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")
        .expect("server name")
        .to_owned();
    let connection =
        rustls::ClientConnection::new(certificates.client_config(), name).expect("client");
    let socket = std::net::TcpStream::connect(("127.0.0.1", events_port)).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut stream = rustls::StreamOwned::new(connection, socket);
    write!(
        stream,
        "GET /api/v1/auctions/lot-events-tls/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .expect("request");
    let mut text = String::new();
    let mut buffer = [0u8; 4096];
    while !text.contains("event: auction") {
        let read = stream.read(&mut buffer).expect("the stream");
        assert!(read > 0, "the stream ended: {text}");
        text.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("content-type: text/event-stream"), "{text}");

    let plain = try_request(
        "GET",
        &format!("http://127.0.0.1:{events_port}/healthz"),
        None,
        None,
    );
    assert!(
        plain.is_err(),
        "a plaintext client got an HTTP answer: {plain:?}"
    );
}

#[test]
fn a_node_with_an_unreadable_certificate_refuses_to_start_naming_the_key() {
    let dir = temp_dir("bad-tls");
    let node = Node::configure(
        dir.path(),
        1,
        (common::free_port(), common::free_port(), common::free_port()),
        "\n[tls]\npublic_cert = \"/nonexistent/gavel-cert.pem\"\npublic_key = \"/nonexistent/gavel-key.pem\"\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_gavel"))
        .args(["serve", "--config"])
        .arg(&node.config_path)
        .output()
        .expect("run gavel serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tls.public_cert") && stderr.contains("/nonexistent/gavel-cert.pem"),
        "{stderr}"
    );
}

#[test]
fn a_cluster_with_peer_tls_elects_a_leader_and_commits_a_bid() {
    let dir = temp_dir("peer-tls");
    let certificates = TestCertificates::generate(&dir.path().join("certs"));
    let extra = format!(
        "\n[tls]\npeer_cert = \"{}\"\npeer_key = \"{}\"\npeer_ca = \"{}\"\n",
        certificates.cert.display(),
        certificates.key.display(),
        certificates.ca.display()
    );
    let cluster = Cluster::start_with(dir.path(), 3, 0, &extra);
    let leader = cluster
        .leader(Duration::from_secs(20))
        .expect("a leader over peer TLS");
    // Everything goes through a follower, so forwarding crosses the TLS peer links too.
    let follower = cluster.node(if leader == 1 { 2 } else { 1 });
    follower.create_auction(auction_spec("lot-t", 60_000, 5_000));
    follower.register_bidder("hana");
    follower.qualify("lot-t", "hana");
    let token = follower.login("hana");
    let (status, receipt) = follower.bid(&token, "lot-t", 1_000_000, "h-1");
    assert_eq!(status, 201, "{receipt}");
    for node in &cluster.nodes {
        let view = node.wait_for_bid_count("lot-t", 1, Duration::from_secs(10));
        assert_eq!(view["bid_count"], 1, "{view}");
    }

    // A peer that speaks the right secret but no TLS gets nothing in.
    let peer_address = peer_address_of(&cluster.nodes[leader as usize - 1]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let plain = gavel::peer::PeerClient::new(
        leader,
        peer_address,
        99,
        std::sync::Arc::from(common::CLUSTER_SECRET.as_bytes()),
    );
    let answer = runtime.block_on(plain.ping(Duration::from_secs(3)));
    assert!(answer.is_err(), "a plaintext peer was answered: {answer:?}");
}

/// The `[listen] peer` address from a node's configuration file.
fn peer_address_of(node: &Node) -> String {
    let config = std::fs::read_to_string(&node.config_path).expect("config");
    let table: toml::Table = config.parse().expect("config TOML");
    table["listen"]["peer"]
        .as_str()
        .expect("listen.peer")
        .to_string()
}

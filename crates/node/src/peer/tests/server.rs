//! One node's peer server against clients that hold the secret, clients that do not, and
//! clients that send bad frames.

use super::*;

#[tokio::test]
async fn a_client_without_the_secret_gets_nothing_in() {
    let sink = Arc::new(RecordingSink::default());
    let node = TestNode::start(1, Some(sink.clone()), false).await;
    let vote = VoteRequest::new(Vote::new(5, 9), None);

    let impostor = node.client(9, Arc::from(&b"a guessed, wrong cluster secret"[..]));
    let voted = impostor.vote(vote.clone(), CALL).await;
    assert!(
        matches!(voted, Err(PeerError::Handshake { .. })),
        "{voted:?}"
    );
    let forwarded = impostor
        .forward(register("mallory"), "x".to_string(), CALL)
        .await;
    assert!(matches!(forwarded, Err(PeerError::Handshake { .. })));

    // Raw bytes instead of a handshake: a request frame is never read, the server closes.
    let mut raw = TcpStream::connect(node.address).await.expect("connect");
    let request = protocol::encode("request", &PeerRequest::Vote(vote.clone())).expect("encode");
    let mut frame = (request.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&request);
    raw.write_all(&frame).await.expect("write");
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(WAIT, raw.read(&mut buffer))
        .await
        .expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    assert!(sink.seen.lock().is_empty());
    let metrics = node.replication.raft.metrics().borrow().clone();
    assert_eq!((metrics.current_term, metrics.vote), (0, Vote::default()));

    // The same vote with the secret does reach Raft.
    let granted = node
        .client(9, secret())
        .vote(vote, CALL)
        .await
        .expect("answered")
        .expect("raft answers");
    assert!(granted.vote_granted);
    assert_eq!(node.replication.raft.metrics().borrow().current_term, 5);
    node.stop().await;
}

#[tokio::test]
async fn bad_frames_after_the_handshake_close_only_their_connection() {
    let node = TestNode::start(1, None, false).await;
    let connect = || async {
        let stream = TcpStream::connect(node.address).await.expect("connect");
        auth::client_handshake(stream, 9, Some(1), &secret())
            .await
            .expect("handshake")
    };
    let closed = |mut channel: SecureChannel<TcpStream>| async move {
        let answer = tokio::time::timeout(WAIT, channel.recv::<PeerResponse>("response"))
            .await
            .expect("closed in time");
        assert!(answer.is_err(), "the server answered a bad frame");
    };

    // A length far over the limit.
    let mut channel = connect().await;
    channel
        .stream_mut()
        .write_all(&u32::MAX.to_be_bytes())
        .await
        .expect("write");
    closed(channel).await;
    // Garbage that is properly authenticated: it does not decode.
    let mut channel = connect().await;
    channel.send_payload(&[0xff; 100]).await.expect("write");
    closed(channel).await;
    // A valid request with a wrong tag.
    let mut channel = connect().await;
    let request =
        protocol::encode("request", &PeerRequest::Ping { from_node_id: 9 }).expect("encode");
    let mut frame = ((request.len() + 32) as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&request);
    frame.extend_from_slice(&[0u8; 32]);
    channel.stream_mut().write_all(&frame).await.expect("write");
    closed(channel).await;

    // The server still answers a well-behaved peer.
    let status = node.client(9, secret()).ping(CALL).await.expect("pong");
    assert_eq!(status.node_id, 1);
    node.stop().await;
}

#[tokio::test]
async fn a_forwarded_command_reaches_the_sink_and_its_answer_returns() {
    let sink = Arc::new(RecordingSink::default());
    let node = TestNode::start(1, Some(sink.clone()), false).await;
    let client = node.client(2, secret());
    for round in 0..3 {
        let answer = client
            .forward(register("alice"), format!("operator-{round}"), CALL)
            .await
            .expect("answered");
        assert_eq!(
            answer,
            Ok(ForwardedCommit {
                outcome: Ok(Outcome::BidderRegistered),
                log_index: 42,
            })
        );
    }
    let status = client.ping(CALL).await.expect("pong");
    assert_eq!((status.node_id, status.leader_id), (1, None));
    assert!(status.server_time_ms > 1_600_000_000_000);
    let seen = sink.seen.lock().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2], (register("alice"), "operator-2".to_string()));
    node.stop().await;
}

// Idle sockets from an address that is no member's fill only the strangers' handshake
// slots: a member still gets in.
#[tokio::test]
async fn a_strangers_idle_sockets_cannot_lock_a_member_out() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    let options = ReplicationOptions::with_defaults(1, dir.path().to_path_buf());
    let replication = replication::open(options).await.expect("open the node");
    let raft = replication.raft.clone();
    let sink = Arc::new(RaftSink { raft: raft.clone() });
    let (shutdown, stop) = watch::channel(false);
    let limits = PeerServerLimits {
        handshake_timeout: Duration::from_secs(30),
        ..PeerServerLimits::default()
    };
    let server = PeerServer::new(raft, sink, secret())
        .with_limits(limits.clone())
        .with_member_addresses(vec!["127.0.0.1".parse().expect("an address")]);
    let served = tokio::spawn(server.run(listener, stop));

    // More idle sockets than there are handshake slots in all, from 127.0.0.2.
    let mut idle = Vec::new();
    for _ in 0..(limits.max_handshaking + limits.max_stranger_handshaking + 8) {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind("127.0.0.2:0".parse().expect("an address"))
            .expect("bind 127.0.0.2");
        idle.push(socket.connect(address).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let member = PeerClient::new(1, address.to_string(), 9, secret());
    let vote = VoteRequest::new(Vote::new(5, 9), None);
    let answered = member.vote(vote, CALL).await;
    assert!(
        matches!(answered, Ok(Ok(_))),
        "a member's request went unanswered: {answered:?}"
    );
    drop(idle);
    shutdown.send_replace(true);
    let _ = served.await;
    replication.raft.shutdown().await.expect("shutdown");
}

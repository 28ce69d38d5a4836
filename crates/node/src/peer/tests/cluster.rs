//! A three-voter cluster over real TCP on loopback: replication, a leader that stops, a
//! new leader that commits, and forwarding to it.

use std::collections::BTreeMap;

use super::*;

/// The leader every node in `nodes` agrees on, other than `not`.
async fn agreed_leader(nodes: &[TestNode], not: Option<u64>) -> u64 {
    let mut leaders = Vec::new();
    for node in nodes {
        let metrics = node
            .replication
            .raft
            .wait(Some(WAIT))
            .metrics(
                |metrics| metrics.current_leader.is_some() && metrics.current_leader != not,
                "a new leader",
            )
            .await
            .unwrap_or_else(|error| panic!("node {} sees no leader: {error}", node.id));
        leaders.extend(metrics.current_leader);
    }
    leaders.dedup();
    assert_eq!(
        leaders.len(),
        1,
        "nodes disagree on the leader: {leaders:?}"
    );
    leaders[0]
}

async fn write(node: &TestNode, command: Command) -> u64 {
    let envelope = Envelope {
        now_ms: 1_700_000_000_000,
        seed: 1,
        actor: "test".to_string(),
        command,
    };
    let written = node
        .replication
        .raft
        .client_write(envelope.into())
        .await
        .expect("the leader commits");
    assert_eq!(written.data.results[0], Ok(Outcome::BidderRegistered));
    written.log_id.index
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_voters_replicate_over_tcp_and_survive_the_leader() {
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(TestNode::start(id, None, true).await);
    }
    let members: BTreeMap<u64, NodeInfo> =
        nodes.iter().map(|node| (node.id, node.info())).collect();
    nodes[0]
        .replication
        .initialize(members)
        .await
        .expect("initialize three voters on node 1");

    tracing::info!("phase 1: the first leader replicates to every node");
    let leader_id = agreed_leader(&nodes, None).await;
    let leader = nodes
        .iter()
        .find(|node| node.id == leader_id)
        .expect("leader");
    let mut last = 0;
    for bidder in ["alice", "bob", "carol"] {
        last = write(leader, register(bidder)).await;
    }
    for node in &nodes {
        node.wait_applied(last).await;
        for bidder in ["alice", "bob", "carol"] {
            assert!(node.has_bidder(bidder), "node {} lacks {bidder}", node.id);
        }
    }

    tracing::info!(
        leader_id,
        "phase 2: the leader stops; the others elect a new one"
    );
    let position = nodes
        .iter()
        .position(|node| node.id == leader_id)
        .expect("leader");
    nodes.remove(position).stop().await;
    let new_leader_id = agreed_leader(&nodes, Some(leader_id)).await;
    let new_leader = nodes
        .iter()
        .find(|node| node.id == new_leader_id)
        .expect("leader");
    let follower = nodes
        .iter()
        .find(|node| node.id != new_leader_id)
        .expect("follower");
    let index = write(new_leader, register("dave")).await;

    tracing::info!("phase 3: the follower forwards a command to the new leader");
    let forwarded = new_leader
        .client(follower.id, secret())
        .forward(register("erin"), "operator".to_string(), CALL)
        .await
        .expect("the leader answers")
        .expect("the leader commits");
    assert_eq!(forwarded.outcome, Ok(Outcome::BidderRegistered));
    assert!(forwarded.log_index > index);
    let refused = follower
        .client(new_leader_id, secret())
        .forward(register("frank"), "operator".to_string(), CALL)
        .await
        .expect("the follower answers");
    assert_eq!(
        refused,
        Err(ForwardError::NotLeader {
            leader_id: Some(new_leader_id)
        })
    );
    for node in &nodes {
        node.wait_applied(forwarded.log_index).await;
        assert!(node.has_bidder("dave") && node.has_bidder("erin"));
        assert!(!node.has_bidder("frank"));
    }
    for node in nodes {
        node.stop().await;
    }
}

//! A killed peer and a slow peer look different to a client: the first refuses or drops
//! the connection (`peer_process_gone`), the second only times out. The Supervisor's
//! prompt election relies on telling them apart.

use std::sync::Arc;
use std::time::Duration;

use crate::peer::PeerClient;

fn client(address: String) -> PeerClient {
    PeerClient::new(
        2,
        address,
        1,
        Arc::from(b"a secret of the cluster".as_slice()),
    )
}

#[tokio::test]
async fn a_port_nobody_listens_on_means_the_process_is_gone() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    drop(listener);
    let error = client(address)
        .ping(Duration::from_millis(500))
        .await
        .expect_err("nobody answers");
    assert!(
        error.peer_process_gone(),
        "refused should read as gone: {error}"
    );
}

#[tokio::test]
async fn a_peer_that_accepts_and_then_closes_is_gone() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let closer = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        drop(stream);
    });
    let error = client(address)
        .ping(Duration::from_millis(500))
        .await
        .expect_err("the peer hung up");
    closer.await.expect("the closer ran");
    assert!(
        error.peer_process_gone(),
        "a closed connection should read as gone: {error}"
    );
}

#[tokio::test]
async fn a_peer_that_accepts_and_stays_silent_is_slow_not_gone() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let silent = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(stream);
    });
    let error = client(address)
        .ping(Duration::from_millis(200))
        .await
        .expect_err("the peer never answers in time");
    assert!(!error.peer_process_gone(), "a timeout is not gone: {error}");
    silent.abort();
}

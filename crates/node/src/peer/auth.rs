//! The peer handshake, which opens a `channel::SecureChannel`. Both ends prove that they
//! hold the cluster secret without sending it, each over a fresh nonce chosen by the other,
//! so a captured handshake cannot be replayed:
//! 1. client → `Hello { cluster, node_id, client_nonce, mac }`
//! 2. server → `Welcome { node_id, server_nonce, mac }`, the mac covering both nonces
//! 3. client → `Proof { mac }`, over both nonces under another label
//! 4. server → `Accepted`, already on the authenticated channel.
//!
//! Every mac is HMAC-SHA256 keyed by the secret over a label and length-prefixed fields,
//! checked in constant time (`verify_slice`). Each direction then gets its own session key
//! derived from both nonces, which tags every later frame (`channel`).

use hmac::Mac;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use super::channel::{HmacSha256, SecureChannel, TAG_BYTES};
use super::protocol::{
    decode, encode, read_frame, write_frame, FrameError, MAX_HANDSHAKE_FRAME_BYTES,
};

/// The cluster name both ends must agree on (openraft's `cluster_name` too).
pub const CLUSTER_NAME: &str = "gavel";
/// A cluster secret shorter than this is refused: it would be guessable.
pub const MIN_SECRET_BYTES: usize = 16;
const NONCE_BYTES: usize = 32;

const LABEL_HELLO: &[u8] = b"gavel-peer-v1/hello";
const LABEL_WELCOME: &[u8] = b"gavel-peer-v1/welcome";
const LABEL_PROOF: &[u8] = b"gavel-peer-v1/proof";
const LABEL_CLIENT_KEY: &[u8] = b"gavel-peer-v1/key/client-to-server";
const LABEL_SERVER_KEY: &[u8] = b"gavel-peer-v1/key/server-to-client";

/// Step 1, client → server. Public (its fields are not) so that the fuzz target and the
/// hostile-bytes tests can feed the decoder what an unauthenticated peer may send.
#[derive(Serialize, Deserialize)]
pub struct Hello {
    cluster: String,
    node_id: u64,
    client_nonce: [u8; NONCE_BYTES],
    mac: [u8; TAG_BYTES],
}

/// Step 2, server → client.
#[derive(Serialize, Deserialize)]
pub struct Welcome {
    node_id: u64,
    server_nonce: [u8; NONCE_BYTES],
    mac: [u8; TAG_BYTES],
}

/// Step 3, client → server.
#[derive(Serialize, Deserialize)]
pub struct Proof {
    mac: [u8; TAG_BYTES],
}

/// Step 4, server → client, the first frame on the authenticated channel.
#[derive(Serialize, Deserialize)]
pub struct Accepted;

/// Why a handshake failed. The server answers none of these: it closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the cluster secret has {length} bytes; at least {MIN_SECRET_BYTES} are needed")]
    WeakSecret { length: usize },
    #[error("the peer belongs to cluster {0:?}")]
    WrongCluster(String),
    /// The other side does not hold the cluster secret (or replayed an old handshake).
    #[error("the peer's {step} does not prove the cluster secret")]
    BadMac { step: &'static str },
    #[error("expected node {expected} at this address, node {actual} answered")]
    UnexpectedNode { expected: u64, actual: u64 },
}

fn keyed(key: &[u8]) -> Result<HmacSha256, HandshakeError> {
    if key.len() < MIN_SECRET_BYTES {
        return Err(HandshakeError::WeakSecret { length: key.len() });
    }
    HmacSha256::new_from_slice(key).map_err(|_| HandshakeError::WeakSecret { length: key.len() })
}

/// The mac of `label` and `fields`, each field prefixed by its length so no two field
/// lists share an encoding.
fn mac_over(key: &[u8], label: &[u8], fields: &[&[u8]]) -> Result<HmacSha256, HandshakeError> {
    let mut mac = keyed(key)?;
    mac.update(label);
    for field in fields {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field);
    }
    Ok(mac)
}

fn tag(key: &[u8], label: &[u8], fields: &[&[u8]]) -> Result<[u8; TAG_BYTES], HandshakeError> {
    Ok(mac_over(key, label, fields)?.finalize().into_bytes().into())
}

fn verify(
    key: &[u8],
    label: &[u8],
    fields: &[&[u8]],
    received: &[u8],
    step: &'static str,
) -> Result<(), HandshakeError> {
    mac_over(key, label, fields)?
        .verify_slice(received)
        .map_err(|_| HandshakeError::BadMac { step })
}

fn nonce() -> [u8; NONCE_BYTES] {
    let mut nonce = [0u8; NONCE_BYTES];
    OsRng.fill_bytes(&mut nonce);
    nonce
}

async fn send_plain<T: Serialize>(
    stream: &mut (impl AsyncWrite + Unpin),
    what: &'static str,
    value: &T,
) -> Result<(), FrameError> {
    write_frame(stream, &[&encode(what, value)?], MAX_HANDSHAKE_FRAME_BYTES).await
}

async fn recv_plain<T: DeserializeOwned>(
    stream: &mut (impl AsyncRead + Unpin),
    what: &'static str,
) -> Result<T, FrameError> {
    decode(what, &read_frame(stream, MAX_HANDSHAKE_FRAME_BYTES).await?)
}

/// Both ends' view of one handshake: who is who and the two nonces.
struct Transcript {
    client_node_id: [u8; 8],
    server_node_id: [u8; 8],
    client_nonce: [u8; NONCE_BYTES],
    server_nonce: [u8; NONCE_BYTES],
}

impl Transcript {
    fn fields(&self) -> [&[u8]; 5] {
        [
            CLUSTER_NAME.as_bytes(),
            &self.client_node_id,
            &self.server_node_id,
            &self.client_nonce,
            &self.server_nonce,
        ]
    }
}

/// Proves the secret to the server at the other end of `stream` as node `node_id`, and
/// checks that the server holds it too and is node `expected_server` (if given).
pub async fn client_handshake<S>(
    mut stream: S,
    node_id: u64,
    expected_server: Option<u64>,
    secret: &[u8],
) -> Result<SecureChannel<S>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let client_nonce = nonce();
    let client_node_id = node_id.to_be_bytes();
    let hello_fields: [&[u8]; 3] = [CLUSTER_NAME.as_bytes(), &client_node_id, &client_nonce];
    let hello = Hello {
        cluster: CLUSTER_NAME.to_string(),
        node_id,
        client_nonce,
        mac: tag(secret, LABEL_HELLO, &hello_fields)?,
    };
    send_plain(&mut stream, "hello", &hello).await?;

    let welcome: Welcome = recv_plain(&mut stream, "welcome").await?;
    let transcript = Transcript {
        client_node_id,
        server_node_id: welcome.node_id.to_be_bytes(),
        client_nonce,
        server_nonce: welcome.server_nonce,
    };
    let fields = transcript.fields();
    verify(secret, LABEL_WELCOME, &fields, &welcome.mac, "welcome")?;
    if let Some(expected) = expected_server.filter(|expected| *expected != welcome.node_id) {
        return Err(HandshakeError::UnexpectedNode {
            expected,
            actual: welcome.node_id,
        });
    }
    let proof = Proof {
        mac: tag(secret, LABEL_PROOF, &fields)?,
    };
    send_plain(&mut stream, "proof", &proof).await?;

    let keys = [LABEL_CLIENT_KEY, LABEL_SERVER_KEY];
    let mut channel = open_channel(stream, &transcript, secret, keys, welcome.node_id)?;
    let Accepted = channel.recv("accepted").await?;
    Ok(channel)
}

/// Checks that the client at the other end of `stream` holds the secret, proves it back as
/// node `node_id`, and opens the channel. Reads nothing but handshake frames.
pub async fn server_handshake<S>(
    mut stream: S,
    node_id: u64,
    secret: &[u8],
) -> Result<SecureChannel<S>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    keyed(secret)?;
    let hello: Hello = recv_plain(&mut stream, "hello").await?;
    if hello.cluster != CLUSTER_NAME {
        return Err(HandshakeError::WrongCluster(hello.cluster));
    }
    let client_node_id = hello.node_id.to_be_bytes();
    let hello_fields: [&[u8]; 3] = [
        CLUSTER_NAME.as_bytes(),
        &client_node_id,
        &hello.client_nonce,
    ];
    verify(secret, LABEL_HELLO, &hello_fields, &hello.mac, "hello")?;

    let transcript = Transcript {
        client_node_id,
        server_node_id: node_id.to_be_bytes(),
        client_nonce: hello.client_nonce,
        server_nonce: nonce(),
    };
    let fields = transcript.fields();
    let welcome = Welcome {
        node_id,
        server_nonce: transcript.server_nonce,
        mac: tag(secret, LABEL_WELCOME, &fields)?,
    };
    send_plain(&mut stream, "welcome", &welcome).await?;

    let proof: Proof = recv_plain(&mut stream, "proof").await?;
    verify(secret, LABEL_PROOF, &fields, &proof.mac, "proof")?;

    let keys = [LABEL_SERVER_KEY, LABEL_CLIENT_KEY];
    let mut channel = open_channel(stream, &transcript, secret, keys, hello.node_id)?;
    channel.send("accepted", &Accepted).await?;
    Ok(channel)
}

/// The channel after `transcript`'s handshake, with its session keys derived from both
/// nonces under `[send label, receive label]`.
fn open_channel<S>(
    stream: S,
    transcript: &Transcript,
    secret: &[u8],
    [send_label, recv_label]: [&[u8]; 2],
    peer_node_id: u64,
) -> Result<SecureChannel<S>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let session_key = |label| keyed(&tag(secret, label, &transcript.fields())?);
    let keys = [session_key(send_label)?, session_key(recv_label)?];
    Ok(SecureChannel::new(stream, keys, peer_node_id))
}

#[cfg(test)]
mod tests {
    use tokio::io::DuplexStream;

    use super::*;

    const SECRET: &[u8] = b"correct horse battery staple";

    type Ends = (
        Result<SecureChannel<DuplexStream>, HandshakeError>,
        Result<SecureChannel<DuplexStream>, HandshakeError>,
    );

    /// Client node 3 (with `secret`, expecting `expected`) meets server node 7.
    async fn handshake(secret: &[u8], expected: Option<u64>) -> Ends {
        let (client_end, server_end) = tokio::io::duplex(1 << 16);
        tokio::join!(
            client_handshake(client_end, 3, expected, secret),
            server_handshake(server_end, 7, SECRET),
        )
    }

    #[tokio::test]
    async fn matching_secrets_open_a_channel_both_ways() {
        let (client, server) = handshake(SECRET, Some(7)).await;
        let (mut client, mut server) = (client.expect("client"), server.expect("server"));
        assert_eq!((client.peer_node_id(), server.peer_node_id()), (7, 3));
        client.send("n", &41u64).await.expect("send");
        assert_eq!(server.recv::<u64>("n").await.expect("recv"), 41);
        server.send("n", &42u64).await.expect("send");
        assert_eq!(client.recv::<u64>("n").await.expect("recv"), 42);
    }

    #[tokio::test]
    async fn a_wrong_secret_a_short_secret_and_the_wrong_node_are_refused() {
        let (client, server) = handshake(b"not the cluster secret", None).await;
        assert!(client.is_err());
        assert!(matches!(
            server,
            Err(HandshakeError::BadMac { step: "hello" })
        ));
        let (client, _) = handshake(b"short", None).await;
        assert!(matches!(
            client,
            Err(HandshakeError::WeakSecret { length: 5 })
        ));
        let (client, server) = handshake(SECRET, Some(2)).await;
        assert!(matches!(
            client,
            Err(HandshakeError::UnexpectedNode {
                expected: 2,
                actual: 7
            })
        ));
        assert!(server.is_err(), "the server never saw a proof");
    }
}

//! The authenticated channel a successful handshake (`auth`) opens on a connection. Each
//! direction has its own session key; every frame carries an HMAC-SHA256 tag over its
//! sequence number and payload, checked in constant time before the payload is decoded, so
//! nothing can be injected, replayed, reordered or cut short within a session. The channel
//! is authenticated, not encrypted: peer traffic stays in the intranet zone, and with the
//! `[tls]` peer settings the whole connection runs inside TLS (`crate::tls`).

use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};

use super::protocol::{decode, encode, read_frame, write_frame, FrameError, MAX_FRAME_BYTES};

/// Length of a frame's authentication tag (HMAC-SHA256).
pub const TAG_BYTES: usize = 32;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A connection after a successful handshake (`auth`): every frame is tagged with the session key
/// of its direction over its sequence number, and checked before it is decoded.
pub struct SecureChannel<S> {
    stream: S,
    /// Keyed once per session; cloned per frame.
    send_mac: HmacSha256,
    recv_mac: HmacSha256,
    send_sequence: u64,
    recv_sequence: u64,
    peer_node_id: u64,
}

/// The tag of the frame numbered `sequence` carrying `payload`.
fn frame_tag(session: &HmacSha256, sequence: u64, payload: &[u8]) -> HmacSha256 {
    let mut mac = session.clone();
    mac.update(&sequence.to_be_bytes());
    mac.update(payload);
    mac
}

impl<S: AsyncRead + AsyncWrite + Unpin> SecureChannel<S> {
    /// A channel on `stream` whose frames are tagged with `[send key, receive key]`; only
    /// the handshake (`auth`) opens one.
    pub(crate) fn new(stream: S, [send_mac, recv_mac]: [HmacSha256; 2], peer_node_id: u64) -> Self {
        SecureChannel {
            stream,
            send_mac,
            recv_mac,
            send_sequence: 0,
            recv_sequence: 0,
            peer_node_id,
        }
    }

    /// The node id the other end proved in the handshake.
    pub fn peer_node_id(&self) -> u64 {
        self.peer_node_id
    }

    /// Sends `value` as one authenticated frame.
    pub async fn send<T: Serialize>(
        &mut self,
        what: &'static str,
        value: &T,
    ) -> Result<(), FrameError> {
        let payload = encode(what, value)?;
        self.send_payload(&payload).await
    }

    /// Sends an already encoded payload as one authenticated frame.
    pub async fn send_payload(&mut self, payload: &[u8]) -> Result<(), FrameError> {
        if payload.len() + TAG_BYTES > MAX_FRAME_BYTES as usize {
            return Err(FrameError::TooLarge {
                length: (payload.len() + TAG_BYTES) as u64,
                max: MAX_FRAME_BYTES,
            });
        }
        let tag = frame_tag(&self.send_mac, self.send_sequence, payload).finalize();
        write_frame(
            &mut self.stream,
            &[payload, &tag.into_bytes()],
            MAX_FRAME_BYTES,
        )
        .await?;
        self.send_sequence = self.send_sequence.wrapping_add(1);
        Ok(())
    }

    /// Receives one authenticated frame and decodes it; a frame whose tag does not match
    /// is `Forged` and is never decoded.
    pub async fn recv<T: DeserializeOwned>(&mut self, what: &'static str) -> Result<T, FrameError> {
        let frame = read_frame(&mut self.stream, MAX_FRAME_BYTES).await?;
        let split = frame
            .len()
            .checked_sub(TAG_BYTES)
            .ok_or(FrameError::Forged)?;
        let (payload, tag) = frame.split_at(split);
        frame_tag(&self.recv_mac, self.recv_sequence, payload)
            .verify_slice(tag)
            .map_err(|_| FrameError::Forged)?;
        self.recv_sequence = self.recv_sequence.wrapping_add(1);
        decode(what, payload)
    }

    /// The underlying stream, for tests that misbehave on purpose.
    #[cfg(test)]
    pub(crate) fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tagged_frames_pass_and_replayed_or_forged_ones_do_not() {
        let key = |byte: u8| HmacSha256::new_from_slice(&[byte; 32]).expect("any key length");
        let (left, right) = tokio::io::duplex(1 << 16);
        let mut sender = SecureChannel::new(left, [key(1), key(2)], 7);
        let mut receiver = SecureChannel::new(right, [key(2), key(1)], 3);
        sender.send("n", &41u64).await.expect("send");
        assert_eq!(receiver.recv::<u64>("n").await.expect("recv"), 41);
        // Frame 0 again, verbatim: its sequence number is stale now.
        let payload = encode("n", &1u64).expect("encode");
        let tag = frame_tag(&key(1), 0, &payload).finalize().into_bytes();
        write_frame(&mut sender.stream, &[&payload, &tag], MAX_FRAME_BYTES)
            .await
            .expect("write");
        assert!(matches!(
            receiver.recv::<u64>("n").await,
            Err(FrameError::Forged)
        ));
        // Too short to hold a tag.
        write_frame(&mut receiver.stream, &[&[1, 2, 3]], MAX_FRAME_BYTES)
            .await
            .expect("write");
        assert!(matches!(
            sender.recv::<u64>("n").await,
            Err(FrameError::Forged)
        ));
    }
}

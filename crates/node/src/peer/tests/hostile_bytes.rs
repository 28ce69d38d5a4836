//! Hostile bytes at the peer listener's decoders: truncated frames, length prefixes up to
//! `u32::MAX`, garbage, out-of-range enum tags, and every valid message cut short or with
//! any eight of its bytes turned into a huge length. Each must be a `FrameError` (or, for
//! a mutation that happens to stay valid, a message), never a panic, and nothing may be
//! allocated past the limits. `fuzz/` runs the same decoders on random bytes.

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, SnapshotMeta, Vote};
use tokio::io::AsyncWriteExt;

use super::super::auth::{server_handshake, Accepted, Hello, Proof, Welcome};
use super::super::protocol::{
    decode, encode, read_frame, FrameError, PeerRequest, PeerResponse, MAX_FRAME_BYTES,
    MAX_HANDSHAKE_FRAME_BYTES,
};
use gavel_kernel::{Command, Envelope};

/// Decodes `payload` as every message type a peer may receive; panics only if a decoder
/// does (the test's point).
fn decode_as_everything(payload: &[u8]) {
    let _ = decode::<PeerRequest>("request", payload);
    let _ = decode::<PeerResponse>("response", payload);
    let _ = decode::<Hello>("hello", payload);
    let _ = decode::<Welcome>("welcome", payload);
    let _ = decode::<Proof>("proof", payload);
    let _ = decode::<Accepted>("accepted", payload);
}

/// Valid requests of each kind, with strings, vectors and options to corrupt.
fn valid_requests() -> Vec<PeerRequest> {
    let log_id = LogId::new(CommittedLeaderId::new(3, 1), 7);
    let envelope = Envelope {
        now_ms: 1_700_000_000_000,
        seed: 42,
        actor: "operator".to_string(),
        command: Command::RegisterBidder {
            bidder_id: "alice".to_string(),
            name: "Alice Ltd".to_string(),
            secret_salt: "00".repeat(16),
            secret_hash: "ab".repeat(32),
        },
    };
    vec![
        PeerRequest::AppendEntries(AppendEntriesRequest {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id),
            entries: vec![
                Entry {
                    log_id,
                    payload: EntryPayload::Normal(envelope.clone().into()),
                },
                Entry {
                    log_id,
                    payload: EntryPayload::Blank,
                },
            ],
            leader_commit: Some(log_id),
        }),
        PeerRequest::Vote(VoteRequest::new(Vote::new(4, 2), Some(log_id))),
        PeerRequest::InstallSnapshot(InstallSnapshotRequest {
            vote: Vote::new_committed(3, 1),
            meta: SnapshotMeta::default(),
            offset: 0,
            data: vec![1, 2, 3, 4, 5, 6, 7, 8],
            done: true,
        }),
        PeerRequest::Forward {
            command: envelope.command,
            actor: "bidder".to_string(),
        },
        PeerRequest::Ping { from_node_id: 2 },
        PeerRequest::AllowElection { enabled: false },
    ]
}

#[test]
fn garbage_payloads_and_out_of_range_tags_are_decode_errors() {
    let mut huge_string = vec![3, 0, 0, 0, 0, 0, 0, 0]; // Forward, RegisterBidder
    huge_string.extend_from_slice(&u64::MAX.to_le_bytes()); // bidder_id's length
    let mut huge_vec = vec![0, 0, 0, 0]; // AppendEntries
    huge_vec.extend_from_slice(&[0xff; 64]);
    let corpus: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![99, 0, 0, 0],
        vec![0xff; 4],
        vec![0xff; 1024],
        vec![5, 0, 0, 0, 2], // AllowElection with a bool of 2
        huge_string,
        huge_vec,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(),
    ];
    for payload in &corpus {
        assert!(
            matches!(
                decode::<PeerRequest>("request", payload),
                Err(FrameError::Decode { .. })
            ),
            "{payload:?} decoded as a request"
        );
        assert!(matches!(
            decode::<Hello>("hello", payload),
            Err(FrameError::Decode { .. })
        ));
        decode_as_everything(payload);
    }
}

#[test]
fn every_truncation_and_every_blown_up_length_of_valid_messages_is_handled() {
    for request in valid_requests() {
        let payload = encode("request", &request).expect("encode");
        assert!(decode::<PeerRequest>("request", &payload).is_ok());
        for cut in 0..payload.len() {
            assert!(
                decode::<PeerRequest>("request", &payload[..cut]).is_err(),
                "{} cut at {cut} still decodes",
                request.kind()
            );
            decode_as_everything(&payload[..cut]);
        }
        for offset in 0..payload.len() {
            for filler in [0xff_u8, 0x7f] {
                let mut mutated = payload.clone();
                let end = (offset + 8).min(mutated.len());
                mutated[offset..end].fill(filler);
                decode_as_everything(&mutated);
            }
        }
    }
}

#[tokio::test]
async fn frames_with_huge_or_cut_lengths_are_errors() {
    let frame_with = |length: u32, body: &[u8]| {
        let mut bytes = length.to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        bytes
    };
    let cases: Vec<(Vec<u8>, u32, &str)> = vec![
        (vec![], MAX_FRAME_BYTES, "closed"),
        (vec![0, 0], MAX_FRAME_BYTES, "io"),
        (frame_with(u32::MAX, &[]), MAX_FRAME_BYTES, "too_large"),
        (
            frame_with(MAX_FRAME_BYTES + 1, &[]),
            MAX_FRAME_BYTES,
            "too_large",
        ),
        (
            frame_with(MAX_HANDSHAKE_FRAME_BYTES + 1, &[0; 16]),
            MAX_HANDSHAKE_FRAME_BYTES,
            "too_large",
        ),
        // The maximum announced, three bytes sent: an error once the stream ends.
        (
            frame_with(MAX_FRAME_BYTES, &[1, 2, 3]),
            MAX_FRAME_BYTES,
            "io",
        ),
        (frame_with(10, &[1, 2]), MAX_HANDSHAKE_FRAME_BYTES, "io"),
        (frame_with(0, &[]), MAX_HANDSHAKE_FRAME_BYTES, "empty"),
    ];
    for (bytes, max, expected) in cases {
        let mut reader: &[u8] = &bytes;
        let outcome = match read_frame(&mut reader, max).await {
            Err(FrameError::Closed) => "closed",
            Err(FrameError::Io(_)) => "io",
            Err(FrameError::TooLarge { .. }) => "too_large",
            Ok(frame) if frame.is_empty() => "empty",
            other => panic!("{bytes:?}: unexpected {other:?}"),
        };
        assert_eq!(outcome, expected, "{bytes:?} with a limit of {max}");
    }
}

#[tokio::test]
async fn a_server_handshake_fed_garbage_fails_cleanly() {
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0, 0, 0, 4, 1, 2, 3, 4],
        vec![0, 0, 0x04, 0x01],
        vec![0xff; 64],
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
    ];
    for bytes in garbage {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        client.write_all(&bytes).await.expect("write");
        drop(client);
        let outcome = server_handshake(server, 1, b"the gavel test cluster secret").await;
        assert!(outcome.is_err(), "{bytes:?} opened a channel");
    }
}

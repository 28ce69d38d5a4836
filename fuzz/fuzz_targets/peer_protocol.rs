//! Arbitrary bytes at the peer listener's decoders: as one frame payload (every message
//! type a peer may receive), as a stream of frames, and as what the other side of a
//! handshake sends, to a server and to a client. Nothing may panic, and no length prefix
//! may make the node allocate past the limits (`-rss_limit_mb` and `-malloc_limit_mb` in
//! fuzz/run.sh catch that).

#![no_main]

use std::sync::OnceLock;

use gavel::peer::auth::{client_handshake, server_handshake, Accepted, Hello, Proof, Welcome};
use gavel::peer::protocol::{
    decode, read_frame, PeerRequest, PeerResponse, MAX_FRAME_BYTES, MAX_HANDSHAKE_FRAME_BYTES,
};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;

const SECRET: &[u8] = b"the gavel fuzzing cluster secret";
/// Frames read from one input at most.
const MAX_FRAMES_PER_INPUT: usize = 64;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fn decode_as_everything(payload: &[u8]) {
    let _ = decode::<PeerRequest>("request", payload);
    let _ = decode::<PeerResponse>("response", payload);
    let _ = decode::<Hello>("hello", payload);
    let _ = decode::<Welcome>("welcome", payload);
    let _ = decode::<Proof>("proof", payload);
    let _ = decode::<Accepted>("accepted", payload);
}

fuzz_target!(|data: &[u8]| {
    decode_as_everything(data);
    runtime().block_on(async {
        for max in [MAX_HANDSHAKE_FRAME_BYTES, MAX_FRAME_BYTES] {
            let mut reader = data;
            for _ in 0..MAX_FRAMES_PER_INPUT {
                match read_frame(&mut reader, max).await {
                    Ok(frame) => decode_as_everything(&frame),
                    Err(_) => break,
                }
            }
        }
        let peer = tokio::io::join(data, tokio::io::sink());
        let _ = server_handshake(peer, 1, SECRET).await;
        let peer = tokio::io::join(data, tokio::io::sink());
        let _ = client_handshake(peer, 2, Some(1), SECRET).await;
    });
});

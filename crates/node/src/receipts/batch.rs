//! Receipts signed together: one Ed25519 signature for every receipt that waits to be
//! signed at the same moment.
//!
//! The receipts of bids committed together are answered together; signing each of them
//! was a fifth of the leader's CPU at 64 connections. The `ReceiptSigner` thread takes
//! every receipt text waiting for it, and:
//! - one alone is signed as it always was (the six-line text of `super`);
//! - two or more become the leaves of an RFC 6962 Merkle tree (a leaf's hash is
//!   SHA-256 of `0x00` and the receipt text, a node's of `0x01` and its two children), and
//!   the key signs the batch text
//!
//! ```text
//! gavel-receipt-batch
//! {size}
//! {root}
//! ```
//!
//! (three lines joined by `\n`, the size in decimal, the root in lowercase hex); each
//! receipt then carries `receipt_batch` — its `index` among the `size` leaves and the
//! `path`, the RFC 6962 inclusion proof (the sibling hashes from the leaf up, lowercase
//! hex) — from which anyone recomputes the root and checks the one signature
//! (RFC 9162, section 2.1.3.2).

use std::sync::mpsc;
use std::sync::Arc;

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use serde::{Deserialize, Serialize};
use sha2_merkle::Sha256;
use utoipa::ToSchema;

use super::{ReceiptKey, SignedFields};

/// The first line of the text a batch's signature covers.
pub const BATCH_DOMAIN: &str = "gavel-receipt-batch";

/// Most receipts signed under one signature: the proof of each is at most 10 hashes.
pub const MAX_BATCH: usize = 1024;

/// Bytes of a SHA-256 hash.
const HASH_BYTES: usize = 32;

/// Where a receipt signed in a batch sits in it (module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptBatch {
    /// Receipts the signature covers, 2 or more.
    pub size: u64,
    /// This receipt's place among them, from 0.
    pub index: u64,
    /// The RFC 6962 inclusion proof: sibling hashes from the leaf up, lowercase hex.
    pub path: Vec<String>,
}

/// A receipt's signature, and its place in a batch when it was signed in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSignature {
    /// Standard base64 of the Ed25519 signature.
    pub signature: String,
    pub batch: Option<ReceiptBatch>,
}

/// The text a batch's signature covers.
pub fn batch_message(size: u64, root: &[u8]) -> String {
    format!("{BATCH_DOMAIN}\n{size}\n{}", hex::encode(root))
}

/// Signs `messages` (receipt texts) together: the plain signature for one, a Merkle batch
/// for more. Answers in the order given.
pub fn sign_together(key: &ReceiptKey, messages: Vec<String>) -> Vec<ReceiptSignature> {
    if messages.len() <= 1 {
        return messages
            .iter()
            .map(|message| ReceiptSignature {
                signature: key.sign_text(message),
                batch: None,
            })
            .collect();
    }
    let size = messages.len() as u64;
    let mut tree = MemoryBackedTree::<Sha256, String>::new();
    for message in messages {
        tree.push(message);
    }
    let root = tree.root();
    let signature = key.sign_text(&batch_message(size, root.as_bytes()));
    (0..size)
        .map(|index| {
            let proof = tree.prove_inclusion(index as usize);
            ReceiptSignature {
                signature: signature.clone(),
                batch: Some(ReceiptBatch {
                    size,
                    index,
                    path: proof
                        .as_bytes()
                        .chunks(HASH_BYTES)
                        .map(hex::encode)
                        .collect(),
                }),
            }
        })
        .collect()
}

/// The text the signature of a receipt signed in `batch` covers: the batch text of the
/// root its proof leads to. An error names what is malformed or does not lead anywhere.
pub fn signed_batch_text(
    fields: &SignedFields<'_>,
    batch: &ReceiptBatch,
) -> Result<String, String> {
    if batch.size < 2 || batch.size > MAX_BATCH as u64 {
        return Err(format!("receipt_batch.size must be 2 to {MAX_BATCH}"));
    }
    if batch.index >= batch.size {
        return Err("receipt_batch.index must be below its size".to_string());
    }
    let mut path = Vec::with_capacity(batch.path.len());
    for hash in &batch.path {
        let lowercase_hex = hash.len() == 2 * HASH_BYTES
            && hash
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        let mut sibling = [0u8; HASH_BYTES];
        if !lowercase_hex || hex::decode_to_slice(hash, &mut sibling).is_err() {
            return Err(
                "receipt_batch.path holds a hash that is not 64 lowercase hex digits".into(),
            );
        }
        path.push(sibling);
    }
    let root = root_of(&fields.message(), batch.index, batch.size, &path)?;
    Ok(batch_message(batch.size, &root))
}

/// The root the leaf `message` at `index` and its inclusion proof `path` lead to in a
/// tree of `size` leaves: RFC 9162's walk (section 2.1.3.2). ct-merkle only checks a
/// proof against a root it is given; here the root is what the signature is checked
/// over. The tests hold this walk to ct-merkle's trees.
fn root_of(
    message: &str,
    index: u64,
    size: u64,
    path: &[[u8; HASH_BYTES]],
) -> Result<[u8; HASH_BYTES], String> {
    let mut node_index = index;
    let mut last_index = size - 1;
    let mut hash = leaf_hash(message.as_bytes());
    for sibling in path {
        if last_index == 0 {
            return Err("receipt_batch.path is longer than its size allows".to_string());
        }
        if node_index & 1 == 1 || node_index == last_index {
            hash = node_hash(sibling, &hash);
            while node_index & 1 == 0 && node_index != 0 {
                node_index >>= 1;
                last_index >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        node_index >>= 1;
        last_index >>= 1;
    }
    if last_index != 0 {
        return Err("receipt_batch.path is shorter than its size needs".to_string());
    }
    Ok(hash)
}

fn leaf_hash(data: &[u8]) -> [u8; HASH_BYTES] {
    use sha2_merkle::Digest;
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

fn node_hash(left: &[u8], right: &[u8]) -> [u8; HASH_BYTES] {
    use sha2_merkle::Digest;
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// One receipt text waiting for its signature.
struct Request {
    message: String,
    answer: tokio::sync::oneshot::Sender<ReceiptSignature>,
}

/// The thread that signs receipts, every receipt waiting at once under one signature.
/// A receipt asked for alone is signed alone, as soon as the thread wakes.
pub struct ReceiptSigner {
    key: Arc<ReceiptKey>,
    requests: mpsc::Sender<Request>,
}

impl ReceiptSigner {
    /// Starts the signing thread (`gavel-receipts`); it ends when the signer is dropped.
    pub fn start(key: Arc<ReceiptKey>) -> std::io::Result<ReceiptSigner> {
        let (requests, waiting) = mpsc::channel::<Request>();
        let thread_key = key.clone();
        std::thread::Builder::new()
            .name("gavel-receipts".to_string())
            .spawn(move || sign_as_they_come(&thread_key, &waiting))?;
        Ok(ReceiptSigner { key, requests })
    }

    /// The signature of `fields`, signed with whatever else is waiting. Should the thread
    /// be gone, signed here alone.
    pub async fn sign(&self, fields: &SignedFields<'_>) -> ReceiptSignature {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let request = Request {
            message: fields.message(),
            answer,
        };
        if self.requests.send(request).is_ok() {
            if let Ok(signature) = answered.await {
                return signature;
            }
        }
        ReceiptSignature {
            signature: self.key.sign(fields),
            batch: None,
        }
    }
}

fn sign_as_they_come(key: &ReceiptKey, waiting: &mpsc::Receiver<Request>) {
    while let Ok(first) = waiting.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let (messages, answers): (Vec<String>, Vec<_>) = batch
            .into_iter()
            .map(|request| (request.message, request.answer))
            .unzip();
        for (answer, signature) in answers.into_iter().zip(sign_together(key, messages)) {
            // A request whose client went away has no one to answer.
            let _ = answer.send(signature);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ReceiptKey {
        ReceiptKey::from_seed(&[7u8; 32])
    }

    fn fields(seq: u64) -> (String, u64) {
        (format!("hash-{seq:064}"), seq)
    }

    fn message(seq: u64) -> String {
        let (hash, seq) = fields(seq);
        SignedFields {
            auction_id: "lot-7",
            seq,
            amount: 1_000 + seq,
            accepted_at_ms: 1_700_000_000_000 + seq,
            chain_hash: &hash,
        }
        .message()
    }

    fn verify_at(seq: u64, signed: &ReceiptSignature) -> Result<(), String> {
        let (hash, seq) = fields(seq);
        let fields = SignedFields {
            auction_id: "lot-7",
            seq,
            amount: 1_000 + seq,
            accepted_at_ms: 1_700_000_000_000 + seq,
            chain_hash: &hash,
        };
        super::super::verify_signature(
            &key().verifying_key(),
            &fields,
            &signed.signature,
            signed.batch.as_ref(),
        )
        .map_err(|error| error.to_string())
    }

    #[test]
    fn one_receipt_alone_is_signed_as_before() {
        let signed = sign_together(&key(), vec![message(1)]);
        assert_eq!(signed.len(), 1);
        assert_eq!(signed[0].batch, None);
        assert_eq!(signed[0].signature, key().sign_text(&message(1)));
        assert_eq!(verify_at(1, &signed[0]), Ok(()));
    }

    #[test]
    fn every_receipt_of_every_batch_size_verifies_under_one_signature() {
        for size in 2..=17u64 {
            let signed = sign_together(&key(), (1..=size).map(message).collect());
            assert_eq!(signed.len() as u64, size);
            for (index, receipt) in signed.iter().enumerate() {
                let batch = receipt.batch.as_ref().expect("a batch");
                assert_eq!((batch.size, batch.index), (size, index as u64));
                assert_eq!(receipt.signature, signed[0].signature, "one signature");
                assert_eq!(
                    verify_at(index as u64 + 1, receipt),
                    Ok(()),
                    "size {size} index {index}"
                );
            }
        }
    }

    #[test]
    fn the_root_is_rfc_6962s_for_three_leaves() {
        // MTH({a, b, c}) = H(0x01 || H(0x01 || H(0x00 a) || H(0x00 b)) || H(0x00 c)).
        let leaves: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let expected = node_hash(
            &node_hash(&leaf_hash(b"a"), &leaf_hash(b"b")),
            &leaf_hash(b"c"),
        );
        let mut tree = MemoryBackedTree::<Sha256, String>::new();
        leaves.into_iter().for_each(|leaf| tree.push(leaf));
        assert_eq!(tree.root().as_bytes().as_slice(), expected.as_slice());
    }

    #[test]
    fn a_tampered_receipt_index_path_or_size_does_not_verify() {
        let signed = sign_together(&key(), (1..=5).map(message).collect());
        // Another receipt's fields under this receipt's proof.
        assert!(verify_at(2, &signed[2]).is_err());
        let mut wrong_index = signed[2].clone();
        wrong_index.batch.as_mut().unwrap().index = 1;
        assert!(verify_at(3, &wrong_index).is_err());
        let mut wrong_size = signed[2].clone();
        wrong_size.batch.as_mut().unwrap().size = 6;
        assert!(verify_at(3, &wrong_size).is_err());
        let mut wrong_path = signed[2].clone();
        wrong_path.batch.as_mut().unwrap().path[0] = "00".repeat(32);
        assert!(verify_at(3, &wrong_path).is_err());
        let mut short_path = signed[2].clone();
        short_path.batch.as_mut().unwrap().path.pop();
        assert!(verify_at(3, &short_path).is_err());
        let mut not_hex = signed[2].clone();
        not_hex.batch.as_mut().unwrap().path[0] = "zz".into();
        assert!(verify_at(3, &not_hex).is_err());
        // Without its batch, the batch signature is no plain receipt signature.
        let mut unbatched = signed[2].clone();
        unbatched.batch = None;
        assert!(verify_at(3, &unbatched).is_err());
        assert_eq!(verify_at(3, &signed[2]), Ok(()));
    }

    #[test]
    fn the_thread_signs_every_receipt_waiting_under_one_signature() {
        let (requests, waiting) = mpsc::channel::<Request>();
        let mut answers = Vec::new();
        for seq in 1..=200u64 {
            let (answer, answered) = tokio::sync::oneshot::channel();
            requests
                .send(Request {
                    message: message(seq),
                    answer,
                })
                .expect("queued");
            answers.push((seq, answered));
        }
        drop(requests);
        // All 200 wait when the thread's loop starts: one batch, one signature.
        sign_as_they_come(&key(), &waiting);
        let mut signatures = std::collections::BTreeSet::new();
        for (seq, mut answered) in answers {
            let signed = answered.try_recv().expect("answered");
            assert_eq!(signed.batch.as_ref().map(|batch| batch.size), Some(200));
            assert_eq!(verify_at(seq, &signed), Ok(()), "seq {seq}");
            signatures.insert(signed.signature);
        }
        assert_eq!(signatures.len(), 1);
    }

    #[tokio::test]
    async fn a_receipt_asked_for_alone_is_signed_alone_by_the_thread() {
        let signer = ReceiptSigner::start(Arc::new(key())).expect("thread");
        let (hash, seq) = fields(1);
        let alone = signer
            .sign(&SignedFields {
                auction_id: "lot-7",
                seq,
                amount: 1_001,
                accepted_at_ms: 1_700_000_000_001,
                chain_hash: &hash,
            })
            .await;
        assert_eq!(alone.batch, None);
        assert_eq!(alone.signature, key().sign_text(&message(1)));
    }

    #[test]
    fn a_path_hash_in_uppercase_is_refused_as_the_page_refuses_it() {
        let signed = sign_together(&key(), (1..=3).map(message).collect());
        let mut upper = signed[0].clone();
        let path = &mut upper.batch.as_mut().unwrap().path;
        path[0] = path[0].to_uppercase();
        assert_ne!(
            path[0],
            signed[0].batch.as_ref().unwrap().path[0],
            "a hash with a letter"
        );
        let refusal = verify_at(1, &upper).unwrap_err();
        assert!(refusal.contains("lowercase"), "{refusal}");
    }
}

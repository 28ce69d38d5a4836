//! Signed bid receipts: the cluster's Ed25519 receipt key, the text it signs, and the
//! check a bidder runs offline (`gavel verify-receipt`; docs/API.md, Bid receipts).
//!
//! Every receipt of an accepted bid carries `chain_hash`, the bid record's hash in its
//! auction's hash chain (`gavel_kernel::chain`), and `receipt_signature`, the standard
//! base64 of the Ed25519 signature of the receipt's canonical text:
//!
//! ```text
//! gavel-receipt
//! {auction_id}
//! {seq}
//! {amount}
//! {accepted_at_ms}
//! {chain_hash}
//! ```
//!
//! six lines joined by `\n`, no newline after the last; numbers in decimal, the chain
//! hash in lowercase hex as the chain writes it. An auction id is letters, digits, `_`,
//! `-` and `.` only (the kernel's id rule), so the text reads back one way only. Receipts
//! answered at the same moment are signed together, under one signature of a Merkle
//! root, each with `receipt_batch`, its inclusion proof (`batch`); a receipt answered
//! alone is signed alone, as above.
//!
//! The key is one per cluster: a file holding the base64 of its 32-byte seed
//! (`security.receipt_key_file`, made by `gavel cluster receipt-key`), the same file on
//! every node, or, on a node alone without one, a key the node makes under its data
//! directory on its first start and keeps (`DATA_DIR_KEY_FILE`).

pub mod batch;

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

pub use batch::{ReceiptBatch, ReceiptSignature, ReceiptSigner};

/// What `GET /api/v1/receipt-key` answers as `algorithm`.
pub const ALGORITHM: &str = "ed25519";

/// The first line of every signed receipt text.
pub const DOMAIN: &str = "gavel-receipt";

/// Bytes of an Ed25519 seed and of a public key.
pub const KEY_BYTES: usize = 32;

/// The key file a node without `security.receipt_key_file` keeps in its data directory.
pub const DATA_DIR_KEY_FILE: &str = "receipt-key";

/// Longest key file read: a seed is 44 characters of base64.
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// The fields of a receipt the signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFields<'a> {
    pub auction_id: &'a str,
    pub seq: u64,
    pub amount: u64,
    pub accepted_at_ms: u64,
    pub chain_hash: &'a str,
}

impl SignedFields<'_> {
    /// The canonical text the receipt key signs (this module's documentation).
    pub fn message(&self) -> String {
        format!(
            "{DOMAIN}\n{}\n{}\n{}\n{}\n{}",
            self.auction_id, self.seq, self.amount, self.accepted_at_ms, self.chain_hash
        )
    }
}

/// The cluster's receipt key, and the public keys of the keys it replaced.
#[derive(Clone)]
pub struct ReceiptKey {
    signing: SigningKey,
    previous: Vec<VerifyingKey>,
}

impl std::fmt::Debug for ReceiptKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ReceiptKey")
            .field("public_key", &self.public_key())
            .field("previous", &self.previous())
            .finish()
    }
}

impl ReceiptKey {
    /// The key of a 32-byte seed.
    pub fn from_seed(seed: &[u8; KEY_BYTES]) -> Self {
        ReceiptKey {
            signing: SigningKey::from_bytes(seed),
            previous: Vec::new(),
        }
    }

    /// The key every node of a cluster derives from the cluster secret when no key file is
    /// named: the seed is SHA-256 of a fixed label and the secret, so nodes that share the
    /// secret sign alike, and the key cannot be derived without the secret.
    pub fn derived_from_cluster_secret(secret: &str) -> Self {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(b"gavel-receipt-key\n");
        hasher.update(secret.as_bytes());
        let seed: [u8; KEY_BYTES] = hasher.finalize().into();
        ReceiptKey::from_seed(&seed)
    }

    /// The same key, listing `previous` public keys as the ones it replaced.
    pub fn with_previous(mut self, previous: Vec<VerifyingKey>) -> Self {
        self.previous = previous;
        self
    }

    /// The standard base64 of the signature of `fields`, alone.
    pub fn sign(&self, fields: &SignedFields<'_>) -> String {
        self.sign_text(&fields.message())
    }

    /// The standard base64 of the signature of `text` (a receipt's or a batch's).
    pub fn sign_text(&self, text: &str) -> String {
        STANDARD.encode(self.signing.sign(text.as_bytes()).to_bytes())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The public key, standard base64.
    pub fn public_key(&self) -> String {
        STANDARD.encode(self.verifying_key().as_bytes())
    }

    /// The public keys of the keys this one replaced, standard base64, as configured.
    pub fn previous(&self) -> Vec<String> {
        self.previous
            .iter()
            .map(|key| STANDARD.encode(key.as_bytes()))
            .collect()
    }
}

/// A new seed from the operating system's generator, as standard base64: what a key
/// file holds.
pub fn new_seed() -> String {
    STANDARD.encode(rand::random::<[u8; KEY_BYTES]>())
}

/// Exactly 32 bytes written as standard base64 (padded or not; surrounding whitespace
/// ignored); `what` names them in the refusal.
fn decode_32(text: &str, what: &str) -> Result<[u8; KEY_BYTES], String> {
    let text = text.trim();
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .map_err(|_| format!("{what} is not standard base64"))?;
    <[u8; KEY_BYTES]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{what} holds {} bytes, not {KEY_BYTES}", bytes.len()))
}

/// The key a seed's base64 writes.
pub fn parse_seed(text: &str) -> Result<ReceiptKey, String> {
    decode_32(text, "the receipt key seed").map(|seed| ReceiptKey::from_seed(&seed))
}

/// A public key's base64, checked to be a point of the curve.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = decode_32(text, "the public key")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "the public key is not an Ed25519 key".into())
}

/// Why a receipt's signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("receipt_signature is not standard base64 of 64 bytes")]
    Malformed,
    #[error("receipt_signature does not match the receipt's fields under this key")]
    Mismatch,
    #[error("{0}")]
    Batch(String),
}

/// Whether `signature` (standard base64) signs `fields` alone under `key`.
pub fn verify(
    key: &VerifyingKey,
    fields: &SignedFields<'_>,
    signature: &str,
) -> Result<(), SignatureError> {
    verify_signature(key, fields, signature, None)
}

/// Whether `signature` (standard base64) signs `fields` under `key`: alone, or, with
/// `batch`, as one of the receipts of a batch (`batch`'s documentation).
pub fn verify_signature(
    key: &VerifyingKey,
    fields: &SignedFields<'_>,
    signature: &str,
    batch: Option<&ReceiptBatch>,
) -> Result<(), SignatureError> {
    let bytes = STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Malformed)?;
    let signature = Signature::from_slice(&bytes).map_err(|_| SignatureError::Malformed)?;
    let text = match batch {
        None => fields.message(),
        Some(batch) => batch::signed_batch_text(fields, batch).map_err(SignatureError::Batch)?,
    };
    key.verify_strict(text.as_bytes(), &signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// Reads the key file at `path`: a private file (not readable by every user of the host)
/// holding a seed's base64. The error names the file.
pub fn read_key_file(path: &Path) -> Result<ReceiptKey, String> {
    let unreadable = |error: std::io::Error| format!("cannot read {}: {error}", path.display());
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    if metadata.len() > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "{} is larger than {MAX_KEY_FILE_BYTES} bytes",
            path.display()
        ));
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode();
        if mode & 0o007 != 0 {
            return Err(format!(
                "{} can be read by every user of the host (mode {:o}): chmod 0600 it (or 0640 with the node's group)",
                path.display(),
                mode & 0o777
            ));
        }
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    parse_seed(&text).map_err(|problem| {
        format!(
            "{}: {problem}; make a key file with `gavel cluster receipt-key --out FILE`",
            path.display()
        )
    })
}

/// Writes a new key file at `path`, which must not exist: a new seed, mode 0600.
pub fn write_new_key_file(path: &Path) -> std::io::Result<ReceiptKey> {
    use std::io::Write;
    let seed = new_seed();
    let mut file = crate::private_files::create_new(path)?;
    file.write_all(format!("{seed}\n").as_bytes())?;
    file.sync_all()?;
    crate::private_files::sync_parent(path)?;
    parse_seed(&seed).map_err(std::io::Error::other)
}

/// The key a node signs with: `configured` (the key file), else the one it keeps in
/// `data_dir`, made on its first start.
pub fn node_key(configured: Option<&Path>, data_dir: &Path) -> Result<ReceiptKey, String> {
    if let Some(path) = configured {
        return read_key_file(path);
    }
    let path: PathBuf = data_dir.join(DATA_DIR_KEY_FILE);
    match write_new_key_file(&path) {
        Ok(key) => {
            tracing::info!(file = %path.display(), public_key = %key.public_key(), "made this node's receipt key");
            Ok(key)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(&path),
        Err(error) => Err(format!("cannot write {}: {error}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "5f1d6c0a4e2b9b7d3c1e8f0a6b4d2c9e7f5a3b1c8d6e4f2a0b9c7d5e3f1a2b4c";

    fn fields(amount: u64) -> SignedFields<'static> {
        SignedFields {
            auction_id: "lot-7",
            seq: 3,
            amount,
            accepted_at_ms: 1_700_000_000_123,
            chain_hash: HASH,
        }
    }

    #[test]
    fn the_signed_text_is_six_lines_in_the_documented_order() {
        assert_eq!(
            fields(1_500).message(),
            format!("gavel-receipt\nlot-7\n3\n1500\n1700000000123\n{HASH}")
        );
    }

    #[test]
    fn a_signature_verifies_and_a_tampered_field_or_another_key_does_not() {
        let key = parse_seed(&new_seed()).expect("seed");
        let signature = key.sign(&fields(1_500));
        assert_eq!(signature, key.sign(&fields(1_500)), "deterministic");
        let public = parse_public_key(&key.public_key()).expect("public key");
        assert_eq!(verify(&public, &fields(1_500), &signature), Ok(()));
        assert_eq!(
            verify(&public, &fields(1_501), &signature),
            Err(SignatureError::Mismatch)
        );
        let other_hash = SignedFields {
            chain_hash: GENESIS,
            ..fields(1_500)
        };
        assert_eq!(
            verify(&public, &other_hash, &signature),
            Err(SignatureError::Mismatch)
        );
        let other = parse_seed(&new_seed()).expect("seed").verifying_key();
        assert_eq!(
            verify(&other, &fields(1_500), &signature),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&public, &fields(1_500), "not base64!"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&public, &fields(1_500), &STANDARD.encode([7u8; 63])),
            Err(SignatureError::Malformed)
        );
    }

    const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn seeds_and_public_keys_must_be_base64_of_32_bytes() {
        assert!(parse_seed(&format!("  {}\n", new_seed())).is_ok());
        assert!(
            parse_seed(new_seed().trim_end_matches('=')).is_ok(),
            "unpadded"
        );
        let short = parse_seed(&STANDARD.encode([1u8; 31])).expect_err("31 bytes");
        assert!(short.contains("31 bytes"), "{short}");
        let bad = parse_seed("zz*zz").expect_err("not base64");
        assert!(bad.contains("base64"), "{bad}");
        assert!(parse_public_key(&STANDARD.encode([1u8; 33])).is_err());
        let key = parse_seed(&new_seed()).expect("seed");
        assert_eq!(
            parse_public_key(&key.public_key()).expect("public"),
            key.verifying_key()
        );
    }

    #[test]
    fn a_key_file_is_read_checked_and_named_in_every_refusal() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("receipt-key");
        let key = write_new_key_file(&path).expect("write");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let read = read_key_file(&path).expect("read");
        assert_eq!(read.public_key(), key.public_key());
        assert!(write_new_key_file(&path).is_err(), "never overwritten");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = read_key_file(&path).expect_err("every user");
        assert!(
            error.contains("every user") && error.contains("receipt-key"),
            "{error}"
        );

        let bad = dir.path().join("bad");
        std::fs::write(&bad, "not a key\n").expect("write");
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let error = read_key_file(&bad).expect_err("bad");
        assert!(error.contains(&bad.display().to_string()), "{error}");
        assert!(error.contains("base64"), "{error}");
    }

    #[test]
    fn a_node_without_a_key_file_makes_one_in_its_data_dir_and_keeps_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = node_key(None, dir.path()).expect("made");
        assert!(dir.path().join(DATA_DIR_KEY_FILE).exists());
        let again = node_key(None, dir.path()).expect("read back");
        assert_eq!(first.public_key(), again.public_key());
        let configured = dir.path().join("cluster-key");
        let cluster = write_new_key_file(&configured).expect("write");
        let used = node_key(Some(&configured), dir.path()).expect("configured");
        assert_eq!(used.public_key(), cluster.public_key());
        assert_ne!(used.public_key(), first.public_key());
    }
}

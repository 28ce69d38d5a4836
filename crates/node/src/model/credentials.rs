//! Credentials, without HTTP: hashes and random tokens. Session tokens are kept only as
//! SHA-256 hashes and compared in constant time. Bidders' secrets are Argon2id
//! (`bidder_secret`); the salted SHA-256 here only reads the records of older releases
//! until they are upgraded.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Hex SHA-256 of a value.
pub fn sha256_hex(value: &[u8]) -> String {
    hex::encode(Sha256::digest(value))
}

/// A bidder's secret record as older releases stored it: SHA-256 over the salt and the
/// secret. Read at sign-in, then replaced by an Argon2id record.
pub fn secret_hash(salt_hex: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt_hex.as_bytes());
    hasher.update(b":");
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// A new random salt (16 bytes, hex).
pub fn new_salt() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A new session token (32 random bytes, hex). Only its hash is replicated.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Whether two hex hashes are equal, compared in constant time.
pub fn hashes_equal(left: &str, right: &str) -> bool {
    left.len() == right.len() && bool::from(left.as_bytes().ct_eq(right.as_bytes()))
}

//! Hashing and checking bidders' secrets with Argon2id, off the async workers.
//!
//! A secret is stored as an Argon2id PHC string (`kernel::bidders` for the two record
//! forms). The parameters are OWASP's first choice for Argon2id: 19 MiB of memory, two
//! passes, one lane (`ARGON2_MEMORY_KIB`, `ARGON2_TIME_COST`, `ARGON2_PARALLELISM`): about
//! 20–40 ms of one CPU per hash on current server cores, slow enough that a stolen
//! backup's records cost an attacker that much per guess, fast enough for a sign-in.
//!
//! Hashing that long on an HTTP worker would stall every bid that worker serves, so each
//! hash runs on the blocking thread pool, and at most `limits.secret_hash_concurrency` run
//! at once on a node (one by default: a sign-in flood then takes at most one CPU, and at
//! most that many times 19 MiB). A sign-in that waits longer than `HASH_QUEUE_WAIT` for
//! its turn is answered 429 `rate_limited` with `Retry-After: 1`.
//!
//! Verifying a record from before Argon2id (a salted SHA-256) also computes its Argon2id
//! replacement, which the sign-in handler proposes as `Command::UpgradeSecretHash`.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use super::credentials::{hashes_equal, secret_hash as sha256_secret_hash};
use super::error::ApiError;
use gavel_kernel::bidders::{secret_record, SecretRecord};

/// Argon2id memory cost, in KiB (19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
/// Argon2id passes over the memory.
pub const ARGON2_TIME_COST: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_PARALLELISM: u32 = 1;
/// Longest a sign-in or registration waits for a turn to hash.
pub const HASH_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// What checking a secret against a bidder's record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The secret is wrong (or the record unreadable).
    Mismatch,
    /// The secret is right. `upgrade`: the record was a salted SHA-256, and this is the
    /// same secret as an Argon2id record, to replace it.
    Match { upgrade: Option<String> },
}

/// Why hashing failed: the parameters or the output were refused by the library, which
/// does not happen with the constants above.
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the secret: {0}")]
pub struct HashError(String);

/// The Argon2id hasher with Gavel's parameters.
fn argon2id() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_TIME_COST,
        ARGON2_PARALLELISM,
        None,
    )
    .map_err(|error| HashError(error.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A new Argon2id record of `secret`, with a fresh 16-byte salt. Slow: call it through
/// `SecretHasher` on a node.
pub fn hash_secret(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|error| HashError(error.to_string()))?;
    argon2id()?
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| HashError(error.to_string()))
}

/// Checks `secret` against a bidder's stored `secret_salt` and `secret_hash`. Slow for
/// an Argon2id record, and for a matching SHA-256 one (its replacement is hashed).
pub fn verify_secret(salt: &str, stored_hash: &str, secret: &str) -> Result<Verdict, HashError> {
    match secret_record(salt, stored_hash) {
        // The kernel bounded the record's parameters when it stored it.
        Ok(SecretRecord::Argon2id(phc)) => {
            let Ok(parsed) = PasswordHash::new(phc) else {
                return Ok(Verdict::Mismatch);
            };
            let matches = Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok();
            Ok(if matches {
                Verdict::Match { upgrade: None }
            } else {
                Verdict::Mismatch
            })
        }
        Ok(SecretRecord::Sha256 { salt_hex, hash_hex }) => {
            if hashes_equal(hash_hex, &sha256_secret_hash(salt_hex, secret)) {
                Ok(Verdict::Match {
                    upgrade: Some(hash_secret(secret)?),
                })
            } else {
                Ok(Verdict::Mismatch)
            }
        }
        Err(_) => Ok(Verdict::Mismatch),
    }
}

/// Runs hashes on the blocking pool, at most `concurrency` at once. Shared by the
/// listeners and the Exchange actor of a node.
pub struct SecretHasher {
    turns: Arc<Semaphore>,
}

impl SecretHasher {
    /// A hasher running at most `concurrency` (1 or more) hashes at once.
    pub fn new(concurrency: usize) -> Self {
        SecretHasher {
            turns: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// `work` on the blocking pool once a turn is free; 429 `rate_limited` if none frees
    /// within `HASH_QUEUE_WAIT`.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let turn = tokio::time::timeout(HASH_QUEUE_WAIT, self.turns.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::RateLimited { retry_after_s: 1 })?
            .map_err(|_| ApiError::Unavailable("the secret hasher is closed".to_string()))?;
        let result = tokio::task::spawn_blocking(move || {
            let result = work();
            drop(turn);
            result
        })
        .await
        .map_err(|error| ApiError::Unavailable(format!("secret hashing failed: {error}")))?;
        result.map_err(|error| ApiError::Unavailable(error.to_string()))
    }

    /// A new Argon2id record of `secret`.
    pub async fn hash(&self, secret: String) -> Result<String, ApiError> {
        self.run(move || hash_secret(&secret)).await
    }

    /// `verify_secret`, on the blocking pool.
    pub async fn verify(
        &self,
        salt: String,
        stored_hash: String,
        secret: String,
    ) -> Result<Verdict, ApiError> {
        self.run(move || verify_secret(&salt, &stored_hash, &secret))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::credentials::new_salt;

    #[test]
    fn a_new_record_is_argon2id_with_the_stated_parameters_and_checks_its_secret() {
        let record = hash_secret("a-long-secret").expect("hashed");
        assert!(
            record.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{record}"
        );
        assert!(secret_record("", &record).is_ok(), "the kernel accepts it");
        assert_eq!(
            verify_secret("", &record, "a-long-secret").expect("verified"),
            Verdict::Match { upgrade: None }
        );
        assert_eq!(
            verify_secret("", &record, "a-wrong-secret").expect("verified"),
            Verdict::Mismatch
        );
        assert_ne!(
            record,
            hash_secret("a-long-secret").expect("hashed"),
            "salted"
        );
    }

    #[test]
    fn a_matching_sha256_record_comes_with_its_argon2id_replacement() {
        let salt = new_salt();
        let old = sha256_secret_hash(&salt, "old-secret-1");
        assert_eq!(
            verify_secret(&salt, &old, "wrong").expect("verified"),
            Verdict::Mismatch
        );
        let Verdict::Match {
            upgrade: Some(record),
        } = verify_secret(&salt, &old, "old-secret-1").expect("verified")
        else {
            panic!("no upgrade");
        };
        assert_eq!(
            verify_secret("", &record, "old-secret-1").expect("verified"),
            Verdict::Match { upgrade: None }
        );
    }

    #[test]
    fn hashing_takes_tens_of_milliseconds_not_seconds() {
        let started = std::time::Instant::now();
        hash_secret("timing").expect("hashed");
        let took = started.elapsed();
        println!("one Argon2id hash: {took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}

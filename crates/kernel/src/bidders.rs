//! Bidders and the stored form of their secrets.
//!
//! A bidder's secret reaches the state only hashed, in one of two forms, told apart by
//! the shape of `Bidder::secret_hash`:
//!
//! - Argon2id (every record written now): `secret_hash` is a PHC string
//!   `$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>` (salt and hash in
//!   unpadded standard base64) and `secret_salt` is empty: the salt is inside the string.
//! - SHA-256 (records written before): `secret_salt` is 32 hex digits and `secret_hash`
//!   is 64 hex digits, the SHA-256 of `salt ":" secret`. The node that signs such a bidder
//!   in proposes `Command::UpgradeSecretHash`, which replaces it by an Argon2id record.
//!
//! The kernel never sees a secret: it checks the shape of what it stores, and that an
//! upgrade replaces the record its proposer verified the secret against, so a late or
//! repeated upgrade cannot overwrite a newer record. The parameters of an Argon2id record
//! are bounded here (`MAX_ARGON2_MEMORY_KIB`, ...) so no stored record can make a sign-in
//! cost more than the bounds allow.

use super::command::Outcome;
use super::rejection::Rejection;
use super::state::{Bidder, State};
use super::types::validate_hash;
use super::types::{validate_id, validate_text};

/// The PHC prefix of every Argon2id record (algorithm and version 0x13).
pub const ARGON2ID_PREFIX: &str = "$argon2id$v=19$";
/// Longest Argon2id record accepted.
pub const MAX_SECRET_HASH_CHARS: usize = 256;
/// Largest Argon2id memory cost a stored record may name, in KiB (64 MiB).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 65_536;
/// Most Argon2id passes a stored record may name.
pub const MAX_ARGON2_TIME_COST: u32 = 10;
/// Most Argon2id lanes a stored record may name.
pub const MAX_ARGON2_PARALLELISM: u32 = 4;

/// The stored form of a bidder's secret, read from `secret_salt` and `secret_hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretRecord<'a> {
    /// An Argon2id PHC string, parameters within the bounds.
    Argon2id(&'a str),
    /// A salted SHA-256, from before Argon2id: to be upgraded at the next sign-in.
    Sha256 {
        salt_hex: &'a str,
        hash_hex: &'a str,
    },
}

/// Reads and checks a stored secret record.
pub fn secret_record<'a>(salt: &'a str, hash: &'a str) -> Result<SecretRecord<'a>, Rejection> {
    if hash.starts_with(ARGON2ID_PREFIX) {
        if !salt.is_empty() {
            return Err(invalid(
                "secret_salt must be empty for an Argon2id secret_hash",
            ));
        }
        check_argon2id(hash)?;
        return Ok(SecretRecord::Argon2id(hash));
    }
    validate_hash("secret_hash", hash)?;
    if salt.len() != 32 || !salt.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(invalid("secret_salt must be 32 hex digits"));
    }
    Ok(SecretRecord::Sha256 {
        salt_hex: salt,
        hash_hex: hash,
    })
}

/// The Argon2id parameters of a PHC string: memory (KiB), passes and lanes.
pub fn argon2id_parameters(phc: &str) -> Option<(u32, u32, u32)> {
    let rest = phc.strip_prefix(ARGON2ID_PREFIX)?;
    let mut fields = rest.split('$');
    let parameters = fields.next()?;
    let mut values = parameters.split(',');
    let mut number = |name: &str| -> Option<u32> {
        let text = values.next()?.strip_prefix(name)?;
        if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    let parsed = (number("m=")?, number("t=")?, number("p=")?);
    values.next().is_none().then_some(parsed)
}

fn check_argon2id(phc: &str) -> Result<(), Rejection> {
    const SHAPE: &str = "secret_hash must be $argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>";
    if phc.len() > MAX_SECRET_HASH_CHARS {
        return Err(invalid(SHAPE));
    }
    let (memory_kib, passes, lanes) = argon2id_parameters(phc).ok_or_else(|| invalid(SHAPE))?;
    let within = (8..=MAX_ARGON2_MEMORY_KIB).contains(&memory_kib)
        && (1..=MAX_ARGON2_TIME_COST).contains(&passes)
        && (1..=MAX_ARGON2_PARALLELISM).contains(&lanes)
        && memory_kib >= 8 * lanes;
    if !within {
        return Err(invalid(
            "secret_hash names Argon2id parameters out of bounds",
        ));
    }
    let fields: Vec<&str> = phc[ARGON2ID_PREFIX.len()..].split('$').collect();
    let base64 = |text: &str, chars: std::ops::RangeInclusive<usize>| {
        chars.contains(&text.len())
            && text
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/')
    };
    // Parameters, salt (8 to 48 bytes), hash (16 to 64 bytes), nothing more.
    if fields.len() == 3 && base64(fields[1], 11..=64) && base64(fields[2], 22..=86) {
        Ok(())
    } else {
        Err(invalid(SHAPE))
    }
}

fn invalid(problem: &str) -> Rejection {
    Rejection::InvalidRequest(problem.to_string())
}

/// `Command::RegisterBidder`.
pub(super) fn register(
    state: &mut State,
    now_ms: u64,
    bidder_id: &str,
    name: &str,
    secret_salt: &str,
    secret_hash: &str,
) -> Result<Outcome, Rejection> {
    validate_id("bidder_id", bidder_id)?;
    validate_text("name", name, true)?;
    secret_record(secret_salt, secret_hash)?;
    if state.bidders.contains_key(bidder_id) {
        return Err(Rejection::BidderExists);
    }
    state.bidders.insert(
        bidder_id.to_string(),
        Bidder {
            bidder_id: bidder_id.to_string(),
            name: name.to_string(),
            secret_salt: secret_salt.to_string(),
            secret_hash: secret_hash.to_string(),
            registered_at_ms: now_ms,
        },
    );
    Ok(Outcome::BidderRegistered)
}

/// `Command::UpgradeSecretHash`: the bidder's record becomes `new_secret_hash` (Argon2id
/// only), if it still is `old_secret_hash`.
pub(super) fn upgrade_secret_hash(
    state: &mut State,
    bidder_id: &str,
    old_secret_hash: &str,
    new_secret_hash: &str,
) -> Result<Outcome, Rejection> {
    if !new_secret_hash.starts_with(ARGON2ID_PREFIX) {
        return Err(invalid("new_secret_hash must be an Argon2id record"));
    }
    secret_record("", new_secret_hash)?;
    let bidder = state
        .bidders
        .get_mut(bidder_id)
        .ok_or(Rejection::BidderNotFound)?;
    if bidder.secret_hash != old_secret_hash {
        return Err(Rejection::Conflict(
            "the bidder's secret record changed since the secret was verified".to_string(),
        ));
    }
    bidder.secret_salt = String::new();
    bidder.secret_hash = new_secret_hash.to_string();
    Ok(Outcome::SecretHashUpgraded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ZXhhbXBsZWhhc2hleGFtcGxlaGFzaGV4YW1wbGVoYXM";

    #[test]
    fn both_record_forms_are_recognised_and_malformed_ones_refused() {
        assert_eq!(secret_record("", PHC), Ok(SecretRecord::Argon2id(PHC)));
        let salt = "0".repeat(32);
        let hash = "a".repeat(64);
        assert!(matches!(
            secret_record(&salt, &hash),
            Ok(SecretRecord::Sha256 { .. })
        ));
        assert!(secret_record(&salt, PHC).is_err(), "salt beside a PHC");
        assert!(secret_record("", &hash).is_err(), "SHA-256 without salt");
        for bad in [
            "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$ZXhhbXBsZWhhc2hleGFtcGxl",
            "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ZXhhbXBsZWhhc2hleGFtcGxl",
            "$argon2id$v=19$m=19456,t=99,p=1$c29tZXNhbHRzb21lc2FsdA$ZXhhbXBsZWhhc2hleGFtcGxl",
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ZXhh$extra",
            "$argon2id$v=19$m=19456,t=2,p=1,x=3$c29tZXNhbHRzb21lc2FsdA$ZXhhbXBsZWhhc2hleGFtcGxl",
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ZXhhbXBsZW!hc2hleGFtcGxl",
        ] {
            assert!(secret_record("", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_upgrade_replaces_only_the_record_it_names_and_never_with_sha256() {
        let mut state = State::default();
        let (salt, old) = ("0".repeat(32), "a".repeat(64));
        register(&mut state, 1, "ada", "Ada", &salt, &old).expect("registered");
        assert_eq!(
            upgrade_secret_hash(&mut state, "ada", &old, &"b".repeat(64)),
            Err(invalid("new_secret_hash must be an Argon2id record"))
        );
        assert!(matches!(
            upgrade_secret_hash(&mut state, "ada", &"c".repeat(64), PHC),
            Err(Rejection::Conflict(_))
        ));
        assert_eq!(
            upgrade_secret_hash(&mut state, "ada", &old, PHC),
            Ok(Outcome::SecretHashUpgraded)
        );
        let bidder = &state.bidders["ada"];
        assert_eq!(
            (bidder.secret_salt.as_str(), bidder.secret_hash.as_str()),
            ("", PHC)
        );
        // The same upgrade again names a record that is gone: refused, nothing changes.
        assert!(matches!(
            upgrade_secret_hash(&mut state, "ada", &old, PHC),
            Err(Rejection::Conflict(_))
        ));
        assert_eq!(
            upgrade_secret_hash(&mut state, "bo", &old, PHC),
            Err(Rejection::BidderNotFound)
        );
    }
}

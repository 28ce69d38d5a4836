//! Bidders' public keys and the signatures of signed bids (docs/RULES.md, "Signed
//! bids"): the algorithms, the keys as registered, the canonical text a bid's signature
//! covers, and its verification. Pure data and functions: the rules that use them on the
//! state are in `signed_bids`.
//!
//! A bid's signature covers four lines joined by `\n`, no newline after the last:
//!
//! ```text
//! gavel-bid
//! {auction_id}
//! {amount}
//! {request_id}
//! ```
//!
//! The other statements a bidder signs have the same four lines with the third naming
//! what is signed: `secondary_amount={n}` for a bid on the second quantity,
//! `sealed_amount={n}` for a sealed quote, `proxy_max={n}` for a proxy maximum. So a
//! signature over one kind of statement never verifies as another.
//!
//! Keys and signatures travel as standard base64 (padded or not). `ed25519`: a 32-byte
//! public key, a 64-byte signature, checked strictly (RFC 8032 with the small-order and
//! non-canonical encodings refused). `sm2` (GM/T 0003.2, GB/T 32918.2; SM3 digest): a
//! SEC1 public key on the SM2 recommended curve (65 bytes uncompressed or 33
//! compressed), a 64-byte signature `r ‖ s`, with the default signer ID of GM/T 0009,
//! `1234567812345678`.

use std::collections::BTreeMap;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::money::Money;
use super::rejection::Rejection;

/// The first line of every signed bid text.
pub const DOMAIN: &str = "gavel-bid";

/// Most public keys one bidder holds.
pub const MAX_KEYS_PER_BIDDER: usize = 8;

/// The signer ID of SM2 signatures (the default of GM/T 0009).
pub const SM2_SIGNER_ID: &str = "1234567812345678";

/// Longest base64 text read for a key or a signature.
const MAX_BASE64_CHARS: usize = 256;

/// The signature algorithms a bidder's key may be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    Ed25519,
    Sm2,
}

impl Algorithm {
    /// The API's name of the algorithm.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Sm2 => "sm2",
        }
    }

    /// The algorithm called `name`.
    pub fn named(name: &str) -> Result<Algorithm, Rejection> {
        match name {
            "ed25519" => Ok(Algorithm::Ed25519),
            "sm2" => Ok(Algorithm::Sm2),
            other => Err(Rejection::InvalidKey(format!(
                "algorithm {other:?} is not one of ed25519, sm2"
            ))),
        }
    }
}

/// One registered public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidderKey {
    pub algorithm: Algorithm,
    /// Standard base64 of the key's bytes, padded (as `key_bytes` reads it).
    pub public_key: String,
    /// `key_id` of the key.
    pub key_id: String,
    pub registered_at_ms: u64,
}

/// Every bidder's keys, by bidder id, in the order registered.
pub type BidderKeys = BTreeMap<String, Vec<BidderKey>>;

/// What an auction keeps of a signed statement: the key that verified it, the signature,
/// and the statement's request_id (the signed text's last line, which the records do not
/// hold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptSignature {
    pub key_id: String,
    pub request_id: String,
    /// Standard base64, as the bidder sent it (trimmed).
    pub signature: String,
    /// Kept with a bid a proxy placed: the signature is the bidder's over this proxy
    /// maximum (`Statement::ProxyMax`), not over the bid's amount. Left out of the text
    /// when `None`, so the signatures of bidders' own bids are written as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_max: Option<Money>,
}

/// What a signature states, the third line of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statement {
    /// A bid at this price.
    Bid(Money),
    /// A bid of this amount on the second quantity.
    Secondary(u64),
    /// A sealed quote of this amount.
    Sealed(Money),
    /// A proxy maximum: bids up to this price, placed for the bidder.
    ProxyMax(Money),
}

impl Statement {
    /// The third line of the statement's text.
    fn line(self) -> String {
        match self {
            Statement::Bid(amount) => amount.to_string(),
            Statement::Secondary(amount) => format!("secondary_amount={amount}"),
            Statement::Sealed(amount) => format!("sealed_amount={amount}"),
            Statement::ProxyMax(amount) => format!("proxy_max={amount}"),
        }
    }
}

/// A key's id: the algorithm's name, `:`, and the first 16 hex digits of the SHA-256 of
/// the name, a zero byte and the key's bytes.
pub fn key_id(algorithm: Algorithm, key: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(algorithm.as_str().as_bytes());
    hasher.update([0u8]);
    hasher.update(key);
    let digest = hex::encode(hasher.finalize());
    format!("{}:{}", algorithm.as_str(), &digest[..16])
}

/// The canonical text a bid's signature covers (this module's documentation).
pub fn bid_text(auction_id: &str, amount: Money, request_id: &str) -> String {
    signed_text(auction_id, Statement::Bid(amount), request_id)
}

/// The canonical text a signature of `statement` covers (this module's documentation).
pub fn signed_text(auction_id: &str, statement: Statement, request_id: &str) -> String {
    format!("{DOMAIN}\n{auction_id}\n{}\n{request_id}", statement.line())
}

/// Bytes written as standard base64, padded or not; `None` for anything else.
fn base64_bytes(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_BASE64_CHARS {
        return None;
    }
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()
}

/// A public key checked for its algorithm: the key as kept (padded base64) and its id.
pub fn parse_key(algorithm: Algorithm, public_key: &str) -> Result<BidderKey, Rejection> {
    let invalid = |detail: String| Rejection::InvalidKey(detail);
    let bytes = base64_bytes(public_key)
        .ok_or_else(|| invalid("public_key is not standard base64".to_string()))?;
    match algorithm {
        Algorithm::Ed25519 => {
            let array = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                invalid(format!(
                    "an ed25519 public key is 32 bytes, not {}",
                    bytes.len()
                ))
            })?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&array)
                .map_err(|_| invalid("public_key is not a point of Ed25519".to_string()))?;
            if key.is_weak() {
                return Err(invalid("public_key is a point of small order".to_string()));
            }
        }
        Algorithm::Sm2 => {
            if !matches!(bytes.len(), 33 | 65) {
                return Err(invalid(format!(
                    "an sm2 public key is a SEC1 point of 33 or 65 bytes, not {}",
                    bytes.len()
                )));
            }
            sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_SIGNER_ID, &bytes)
                .map_err(|_| invalid("public_key is not a point of the SM2 curve".to_string()))?;
        }
    }
    Ok(BidderKey {
        algorithm,
        public_key: STANDARD.encode(&bytes),
        key_id: key_id(algorithm, &bytes),
        registered_at_ms: 0,
    })
}

/// Whether `signature` (standard base64) signs `text` under `key`, a key `parse_key`
/// accepted. A signature that is not base64 of 64 bytes does not.
pub fn verifies(key: &BidderKey, text: &str, signature: &str) -> bool {
    let (Some(key_bytes), Some(signature)) =
        (base64_bytes(&key.public_key), base64_bytes(signature))
    else {
        return false;
    };
    match key.algorithm {
        Algorithm::Ed25519 => {
            let Ok(array) = <[u8; 32]>::try_from(key_bytes.as_slice()) else {
                return false;
            };
            let (Ok(public), Ok(signature)) = (
                ed25519_dalek::VerifyingKey::from_bytes(&array),
                ed25519_dalek::Signature::from_slice(&signature),
            ) else {
                return false;
            };
            public.verify_strict(text.as_bytes(), &signature).is_ok()
        }
        Algorithm::Sm2 => {
            use sm2::dsa::signature::Verifier;
            let (Ok(public), Ok(signature)) = (
                sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_SIGNER_ID, &key_bytes),
                sm2::dsa::Signature::from_slice(&signature),
            ) else {
                return false;
            };
            public.verify(text.as_bytes(), &signature).is_ok()
        }
    }
}

/// The first of `keys` under which `signature` signs the text of `(auction_id,
/// statement, request_id)`, as kept with what it signs.
pub fn verify_any(
    keys: &[BidderKey],
    (auction_id, statement, request_id): (&str, Statement, &str),
    signature: &str,
) -> Option<KeptSignature> {
    let text = signed_text(auction_id, statement, request_id);
    keys.iter()
        .find(|key| verifies(key, &text, signature))
        .map(|key| KeptSignature {
            key_id: key.key_id.clone(),
            request_id: request_id.to_string(),
            signature: signature.trim().to_string(),
            proxy_max: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;

    /// GM/T 0003.5-2012 (GB/T 32918.5-2017) Annex A: the signature example on the
    /// recommended curve, message "message digest", signer ID 1234567812345678.
    const SM2_PUBLIC: &str = "0409F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";
    const SM2_SIGNATURE: &str = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";

    fn b64_of_hex(text: &str) -> String {
        STANDARD.encode(hex::decode(text).expect("hex"))
    }

    #[test]
    fn the_signed_text_is_four_lines_in_the_documented_order() {
        assert_eq!(
            bid_text("lot-7", 1_500, "r-1"),
            "gavel-bid\nlot-7\n1500\nr-1"
        );
    }

    #[test]
    fn each_kind_of_statement_names_itself_on_the_third_line() {
        let texts = [
            signed_text("lot-7", Statement::Secondary(30), "r-1"),
            signed_text("lot-7", Statement::Sealed(1_500), "r-1"),
            signed_text("lot-7", Statement::ProxyMax(1_500), "r-1"),
        ];
        assert_eq!(
            texts,
            [
                "gavel-bid\nlot-7\nsecondary_amount=30\nr-1",
                "gavel-bid\nlot-7\nsealed_amount=1500\nr-1",
                "gavel-bid\nlot-7\nproxy_max=1500\nr-1",
            ]
        );
        let signing = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let key = parse_key(
            Algorithm::Ed25519,
            &STANDARD.encode(signing.verifying_key().as_bytes()),
        )
        .expect("a key");
        let signature = STANDARD.encode(signing.sign(texts[1].as_bytes()).to_bytes());
        let keys = std::slice::from_ref(&key);
        assert!(verify_any(keys, ("lot-7", Statement::Sealed(1_500), "r-1"), &signature).is_some());
        for other in [Statement::Bid(1_500), Statement::ProxyMax(1_500)] {
            assert_eq!(verify_any(keys, ("lot-7", other, "r-1"), &signature), None);
        }
    }

    #[test]
    fn the_standard_sm2_example_verifies_and_a_flipped_bit_does_not() {
        let key = parse_key(Algorithm::Sm2, &b64_of_hex(SM2_PUBLIC)).expect("an SM2 key");
        assert!(key.key_id.starts_with("sm2:"), "{}", key.key_id);
        let signature = b64_of_hex(SM2_SIGNATURE);
        assert!(verifies(&key, "message digest", &signature));
        assert!(!verifies(&key, "message digesT", &signature));
        let mut flipped = hex::decode(SM2_SIGNATURE).expect("hex");
        flipped[63] ^= 1;
        assert!(!verifies(
            &key,
            "message digest",
            &STANDARD.encode(&flipped)
        ));
        let mut flipped = hex::decode(SM2_SIGNATURE).expect("hex");
        flipped[0] ^= 0x80;
        assert!(!verifies(
            &key,
            "message digest",
            &STANDARD.encode(&flipped)
        ));
    }

    #[test]
    fn an_sm2_key_must_be_a_point_of_the_curve() {
        let mut off_curve = hex::decode(SM2_PUBLIC).expect("hex");
        off_curve[64] ^= 1;
        let refused = parse_key(Algorithm::Sm2, &STANDARD.encode(&off_curve));
        assert!(
            matches!(refused, Err(Rejection::InvalidKey(_))),
            "{refused:?}"
        );
        let short = parse_key(Algorithm::Sm2, &STANDARD.encode([4u8; 40]));
        assert!(matches!(short, Err(Rejection::InvalidKey(_))), "{short:?}");
    }

    #[test]
    fn an_ed25519_signature_verifies_under_its_key_only() {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let public = STANDARD.encode(signing.verifying_key().as_bytes());
        let key = parse_key(Algorithm::Ed25519, &public).expect("a key");
        assert_eq!(key.public_key, public);
        let text = bid_text("lot-7", 1_500, "r-1");
        let signature = STANDARD.encode(signing.sign(text.as_bytes()).to_bytes());
        assert!(verifies(&key, &text, &signature));
        assert!(!verifies(
            &key,
            &bid_text("lot-7", 1_501, "r-1"),
            &signature
        ));
        assert!(!verifies(&key, &text, "not base64!"));
        assert!(!verifies(&key, &text, &STANDARD.encode([1u8; 63])));
        let other = ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]);
        let other = parse_key(
            Algorithm::Ed25519,
            &STANDARD.encode(other.verifying_key().as_bytes()),
        )
        .expect("a key");
        let bid = ("lot-7", Statement::Bid(1_500), "r-1");
        assert_eq!(
            verify_any(std::slice::from_ref(&other), bid, &signature),
            None
        );
        let kept = verify_any(&[other, key.clone()], bid, &signature).expect("verifies");
        assert_eq!(kept.key_id, key.key_id);
        assert_eq!(kept.request_id, "r-1");
    }

    #[test]
    fn ed25519_keys_must_be_32_bytes_of_a_point_of_large_order() {
        for bad in ["zz*zz", "", &STANDARD.encode([1u8; 31])] {
            let refused = parse_key(Algorithm::Ed25519, bad);
            assert!(matches!(refused, Err(Rejection::InvalidKey(_))), "{bad}");
        }
        // The identity point (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let refused = parse_key(Algorithm::Ed25519, &STANDARD.encode(identity));
        assert!(
            matches!(refused, Err(Rejection::InvalidKey(_))),
            "{refused:?}"
        );
        assert!(Algorithm::named("rsa").is_err());
    }
}

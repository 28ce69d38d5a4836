//! `gavel verify-receipt FILE --key BASE64 | --key-file FILE`: checks a saved bid receipt
//! (the JSON answer of `POST /api/v1/auctions/{id}/bids`) against the cluster's receipt
//! key, offline (`gavel::receipts`; docs/API.md, Bid receipts). A receipt cannot vouch
//! for itself: the key is given, as its base64 or as a file holding either the base64
//! or the JSON answer of `GET /api/v1/receipt-key` (whose `previous` keys are tried too).
//!
//! Exit codes: 0 valid; 1 the receipt is not valid (bad JSON, a missing or mistyped
//! field, a signature that does not match); 2 unusable arguments (an unreadable file, a
//! key that is not an Ed25519 public key).

use std::path::PathBuf;

use ed25519_dalek::VerifyingKey;
use serde_json::Value;

use super::Failure;
use gavel::receipts::{self, SignatureError, SignedFields};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("public_key").required(true).args(["key", "key_file"])))]
pub struct VerifyReceiptArgs {
    /// The saved receipt: the JSON body of a 201 or 200 answer to a bid.
    #[arg(value_name = "FILE")]
    pub receipt: PathBuf,
    /// The cluster's public receipt key, base64 (`public_key` of GET /api/v1/receipt-key).
    #[arg(long, value_name = "BASE64")]
    pub key: Option<String>,
    /// A file holding the public key's base64, or the saved JSON answer of
    /// GET /api/v1/receipt-key (its previous keys are tried too).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

/// What a valid receipt says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub auction_id: String,
    pub seq: u64,
    pub amount: u64,
    pub accepted_at_ms: u64,
    /// Which of the keys signed it: 0 the current one, then the previous ones in order.
    pub key_index: usize,
}

pub fn run(args: VerifyReceiptArgs) -> Result<(), Failure> {
    let keys = match (&args.key, &args.key_file) {
        (Some(key), _) => vec![parse_key(key)?],
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                Failure::unusable(format!("cannot read {}: {error}", path.display()))
            })?;
            keys_from_text(&text)
                .map_err(|problem| Failure::unusable(format!("{}: {problem}", path.display())))?
        }
        (None, None) => {
            return Err(Failure::unusable(
                "give the cluster's public key: --key BASE64 or --key-file FILE (from GET /api/v1/receipt-key)",
            ))
        }
    };
    let text = std::fs::read_to_string(&args.receipt).map_err(|error| {
        Failure::unusable(format!("cannot read {}: {error}", args.receipt.display()))
    })?;
    let verified = verify_receipt(&text, &keys).map_err(|problem| {
        Failure::failed(format!(
            "invalid receipt {}: {problem}",
            args.receipt.display()
        ))
    })?;
    let by = match verified.key_index {
        0 => "the current key".to_string(),
        index => format!("previous key {index}"),
    };
    println!(
        "valid: sale {}, bid seq {}, amount {}, accepted at {} ms since the Unix epoch (signed by {by})",
        verified.auction_id, verified.seq, verified.amount, verified.accepted_at_ms
    );
    Ok(())
}

fn parse_key(text: &str) -> Result<VerifyingKey, Failure> {
    receipts::parse_public_key(text).map_err(Failure::unusable)
}

/// The keys a key file gives: a bare base64 public key, or the JSON answer of
/// `GET /api/v1/receipt-key` (`public_key`, then every `previous` one).
fn keys_from_text(text: &str) -> Result<Vec<VerifyingKey>, String> {
    let Ok(Value::Object(answer)) = serde_json::from_str::<Value>(text) else {
        return receipts::parse_public_key(text).map(|key| vec![key]);
    };
    let current = answer
        .get("public_key")
        .and_then(Value::as_str)
        .ok_or("the receipt-key answer has no public_key string")?;
    let previous = match answer.get("previous") {
        None => Vec::new(),
        Some(Value::Array(keys)) => keys
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .ok_or("previous holds something other than strings")?,
        Some(_) => return Err("previous is not a list".into()),
    };
    std::iter::once(current)
        .chain(previous)
        .map(receipts::parse_public_key)
        .collect()
}

/// Checks a receipt's JSON against `keys` (the current key first): what it says when one
/// of them signed it, else exactly what is wrong.
pub fn verify_receipt(text: &str, keys: &[VerifyingKey]) -> Result<Verified, String> {
    let receipt: Value =
        serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Object(fields) = receipt else {
        return Err("not a JSON object".into());
    };
    let string = |name: &str| -> Result<String, String> {
        match fields.get(name) {
            None => Err(format!("missing field {name}")),
            Some(Value::String(value)) => Ok(value.clone()),
            Some(_) => Err(format!("field {name} is not a string")),
        }
    };
    let number = |name: &str| -> Result<u64, String> {
        match fields.get(name) {
            None => Err(format!("missing field {name}")),
            Some(value) => value
                .as_u64()
                .ok_or_else(|| format!("field {name} is not a whole number")),
        }
    };
    let auction_id = string("auction_id")?;
    let seq = number("seq")?;
    let amount = number("amount")?;
    let accepted_at_ms = number("accepted_at_ms")?;
    let chain_hash = string("chain_hash")?;
    let signature = string("receipt_signature")?;
    let batch: Option<receipts::ReceiptBatch> = match fields.get("receipt_batch") {
        None | Some(Value::Null) => None,
        Some(value) => Some(serde_json::from_value(value.clone()).map_err(|error| {
            format!("receipt_batch is not {{\"size\", \"index\", \"path\"}}: {error}")
        })?),
    };
    let signed = SignedFields {
        auction_id: &auction_id,
        seq,
        amount,
        accepted_at_ms,
        chain_hash: &chain_hash,
    };
    let mut mismatch = None;
    for (key_index, key) in keys.iter().enumerate() {
        match receipts::verify_signature(key, &signed, &signature, batch.as_ref()) {
            Ok(()) => {
                return Ok(Verified {
                    auction_id,
                    seq,
                    amount,
                    accepted_at_ms,
                    key_index,
                })
            }
            Err(error @ (SignatureError::Malformed | SignatureError::Batch(_))) => {
                return Err(error.to_string())
            }
            Err(error) => mismatch = Some(error),
        }
    }
    let many = if keys.len() > 1 {
        " (nor under any previous key)"
    } else {
        ""
    };
    Err(format!(
        "bad signature: {}{many}",
        mismatch.map_or_else(|| "no key given".to_string(), |error| error.to_string())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_receipt(key: &receipts::ReceiptKey) -> Value {
        let chain_hash = "ab".repeat(32);
        let signature = key.sign(&SignedFields {
            auction_id: "lot-1",
            seq: 2,
            amount: 120_000,
            accepted_at_ms: 1_700_000_000_000,
            chain_hash: &chain_hash,
        });
        serde_json::json!({
            "bid_id": "00000000-0000-0000-0000-000000000000",
            "seq": 2, "auction_id": "lot-1", "amount": 120_000,
            "accepted_at_ms": 1_700_000_000_000u64, "auction": {},
            "chain_hash": chain_hash, "receipt_signature": signature,
        })
    }

    fn new_key() -> receipts::ReceiptKey {
        receipts::parse_seed(&receipts::new_seed()).unwrap()
    }

    #[test]
    fn a_receipt_signed_in_a_batch_is_valid_and_its_proof_is_checked() {
        let key = new_key();
        let keys = [key.verifying_key()];
        let chain_hash = "cd".repeat(32);
        let texts: Vec<String> = (1..=3u64)
            .map(|seq| {
                SignedFields {
                    auction_id: "lot-1",
                    seq,
                    amount: 100_000 + seq,
                    accepted_at_ms: 1_700_000_000_000,
                    chain_hash: &chain_hash,
                }
                .message()
            })
            .collect();
        let signed = receipts::batch::sign_together(&key, texts);
        let receipt = serde_json::json!({
            "seq": 2, "auction_id": "lot-1", "amount": 100_002,
            "accepted_at_ms": 1_700_000_000_000u64, "chain_hash": chain_hash,
            "receipt_signature": signed[1].signature, "receipt_batch": signed[1].batch,
        });
        let verified = verify_receipt(&receipt.to_string(), &keys).unwrap();
        assert_eq!((verified.seq, verified.amount), (2, 100_002));
        let mut moved = receipt.clone();
        moved["receipt_batch"]["index"] = 0.into();
        assert!(verify_receipt(&moved.to_string(), &keys)
            .unwrap_err()
            .starts_with("bad signature"));
        let mut malformed = receipt.clone();
        malformed["receipt_batch"]["path"] = serde_json::json!(["xyz"]);
        assert!(verify_receipt(&malformed.to_string(), &keys)
            .unwrap_err()
            .contains("receipt_batch.path"));
        let mut not_a_batch = receipt;
        not_a_batch["receipt_batch"] = serde_json::json!("two");
        assert!(verify_receipt(&not_a_batch.to_string(), &keys)
            .unwrap_err()
            .starts_with("receipt_batch is not"));
    }

    #[test]
    fn a_signed_receipt_is_valid_and_every_tampering_says_what_is_wrong() {
        let key = new_key();
        let receipt = signed_receipt(&key);
        let keys = [key.verifying_key()];
        let verified = verify_receipt(&receipt.to_string(), &keys).unwrap();
        assert_eq!(
            (verified.seq, verified.amount, verified.key_index),
            (2, 120_000, 0)
        );

        let mut tampered = receipt.clone();
        tampered["amount"] = 120_001.into();
        let problem = verify_receipt(&tampered.to_string(), &keys).unwrap_err();
        assert!(problem.starts_with("bad signature"), "{problem}");

        let mut missing = receipt.clone();
        missing.as_object_mut().unwrap().remove("chain_hash");
        assert_eq!(
            verify_receipt(&missing.to_string(), &keys).unwrap_err(),
            "missing field chain_hash"
        );
        let problem = verify_receipt("{\"seq\": 2", &keys).unwrap_err();
        assert!(problem.starts_with("not JSON"), "{problem}");
        let other = [new_key().verifying_key()];
        let problem = verify_receipt(&receipt.to_string(), &other).unwrap_err();
        assert!(problem.starts_with("bad signature"), "{problem}");
    }

    #[test]
    fn a_receipt_key_answer_gives_the_current_and_previous_keys() {
        let (old, current) = (new_key(), new_key());
        let answer = serde_json::json!({
            "algorithm": "ed25519", "public_key": current.public_key(),
            "previous": [old.public_key()],
        });
        let keys = keys_from_text(&answer.to_string()).unwrap();
        assert_eq!(keys, vec![current.verifying_key(), old.verifying_key()]);
        let verified = verify_receipt(&signed_receipt(&old).to_string(), &keys).unwrap();
        assert_eq!(verified.key_index, 1);
        let bare = keys_from_text(&format!("{}\n", current.public_key())).unwrap();
        assert_eq!(bare, vec![current.verifying_key()]);
        assert!(keys_from_text("{\"algorithm\": \"ed25519\"}").is_err());
    }
}

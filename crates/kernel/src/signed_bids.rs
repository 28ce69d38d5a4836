//! Signed bids (docs/RULES.md, "Signed bids"): the bidders' public keys, registered by
//! an operator, and the check a bid's signature passes before the bid is placed. The
//! check is in the kernel, so every replica verifies the same signature against the same
//! keys and agrees; what verified is kept with the bid (`SaleState::bid_signatures`).

use super::command::Outcome;
use super::rejection::Rejection;
use super::signatures::MAX_KEYS_PER_BIDDER;
use super::signatures::{self, Algorithm, BidderKeys, KeptSignature, Statement};
use super::state::{Auction, State};

/// Registers a public key of `bidder_id`. The same key again answers it with `created`
/// false; a key beyond `MAX_KEYS_PER_BIDDER` is refused.
pub fn register_key(
    state: &mut State,
    now_ms: u64,
    bidder_id: &str,
    algorithm: &str,
    public_key: &str,
) -> Result<Outcome, Rejection> {
    let algorithm = Algorithm::named(algorithm)?;
    let mut key = signatures::parse_key(algorithm, public_key)?;
    if !state.bidders.contains_key(bidder_id) {
        return Err(Rejection::BidderNotFound);
    }
    let keys = state.bidder_keys.entry(bidder_id.to_string()).or_default();
    let created = !keys.iter().any(|held| held.key_id == key.key_id);
    if created {
        if keys.len() >= MAX_KEYS_PER_BIDDER {
            return Err(Rejection::TooManyKeys {
                max: MAX_KEYS_PER_BIDDER,
            });
        }
        key.registered_at_ms = now_ms;
        keys.push(key.clone());
    }
    Ok(Outcome::BidderKeyRegistered {
        bidder_id: bidder_id.to_string(),
        algorithm: algorithm.as_str().to_string(),
        public_key: key.public_key,
        key_id: key.key_id,
        created,
    })
}

/// Checks the signature of a bidder's request in `auction` (a bid, a secondary bid, a
/// sealed quote or a proxy maximum: `statement`) against the bidder's keys. A signed
/// request must verify, wherever it is made; an unsigned one is refused where the auction
/// requires signed bids. Answers what to keep with what it placed (`None` for an unsigned
/// one).
pub fn check(
    keys: &BidderKeys,
    auction: &Auction,
    bidder_id: &str,
    (statement, request_id): (Statement, &str),
    signature: Option<&str>,
) -> Result<Option<KeptSignature>, Rejection> {
    let Some(signature) = signature else {
        return match auction.sale.rules.require_signed_bids {
            true => Err(Rejection::SignatureRequired),
            false => Ok(None),
        };
    };
    let keys = keys.get(bidder_id).map_or(&[][..], Vec::as_slice);
    let fields = (auction.spec.id.as_str(), statement, request_id);
    signatures::verify_any(keys, fields, signature)
        .map(Some)
        .ok_or(Rejection::BadSignature)
}

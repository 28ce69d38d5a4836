//! The per-auction hash chain of accepted bids: each record's hash covers the previous
//! record's hash and every field of the bid, so an altered or removed record breaks the
//! chain from that point on and a result can be verified from the record alone.

use sha2::{Digest, Sha256};

use super::auction::BidRecord;
use super::types::{BidderNumber, Money};

/// The `prev_hash` of an auction's first bid.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields a bid record's hash covers.
pub struct BidFields<'a> {
    pub auction_id: &'a str,
    pub seq: u64,
    pub bidder_id: &'a str,
    pub bidder_number: BidderNumber,
    pub amount: Money,
    pub accepted_at_ms: u64,
}

/// The hash of one bid record chained to `prev_hash`.
pub fn bid_hash(prev_hash: &str, fields: &BidFields<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    for part in [
        fields.auction_id.as_bytes(),
        fields.seq.to_string().as_bytes(),
        fields.bidder_id.as_bytes(),
        fields.bidder_number.to_string().as_bytes(),
        fields.amount.to_string().as_bytes(),
        fields.accepted_at_ms.to_string().as_bytes(),
    ] {
        hasher.update(b"|");
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// A bid's public id: the first 16 bytes of its hash, written as a UUID.
pub fn bid_id_from_hash(hash: &str) -> String {
    let mut bytes = [0u8; 16];
    if let Ok(decoded) = hex::decode(hash.get(..32).unwrap_or_default()) {
        bytes.copy_from_slice(&decoded);
    }
    uuid::Uuid::from_bytes(bytes).to_string()
}

/// Where a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bid record {seq} of auction {auction_id} does not match the hash chain: {reason}")]
pub struct ChainBreak {
    pub auction_id: String,
    pub seq: u64,
    pub reason: &'static str,
}

/// Recomputes every hash of an auction's bid records.
pub fn verify_chain<'a>(
    auction_id: &str,
    bids: impl IntoIterator<Item = &'a BidRecord>,
) -> Result<(), ChainBreak> {
    let mut prev = GENESIS_HASH.to_string();
    for (index, bid) in bids.into_iter().enumerate() {
        let broken = |reason| ChainBreak {
            auction_id: auction_id.to_string(),
            seq: bid.seq,
            reason,
        };
        if bid.seq != index as u64 + 1 {
            return Err(broken("sequence number out of order"));
        }
        if bid.prev_hash != prev {
            return Err(broken("prev_hash differs from the previous record's hash"));
        }
        let expected = bid_hash(
            &prev,
            &BidFields {
                auction_id,
                seq: bid.seq,
                bidder_id: &bid.bidder_id,
                bidder_number: bid.bidder_number,
                amount: bid.amount,
                accepted_at_ms: bid.accepted_at_ms,
            },
        );
        if bid.hash != expected {
            return Err(broken("hash differs from the recomputed hash"));
        }
        if bid.bid_id != bid_id_from_hash(&bid.hash) {
            return Err(broken("bid_id differs from the hash"));
        }
        prev = bid.hash.clone();
    }
    Ok(())
}

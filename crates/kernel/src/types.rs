//! Identifiers, money and the auction specification, with the validation every input
//! from outside gets before it can reach the state.

use serde::{Deserialize, Serialize};

use super::rejection::Rejection;

pub use super::money::{BidderNumber, Money};

/// Longest identifier (auction, bidder, request) the kernel accepts.
pub const MAX_ID_LEN: usize = 64;
/// Longest free text (titles, names, reasons) the kernel accepts.
pub const MAX_TEXT_LEN: usize = 512;
/// Longest serialized parcel description the kernel accepts.
pub const MAX_PARCEL_JSON_LEN: usize = 16 * 1024;
/// Longest countdown, confirm window or grace period: one day.
pub const MAX_DURATION_MS: u64 = 24 * 3_600_000;

/// Checks an identifier: 1 to 64 characters of `[A-Za-z0-9_.-]`.
pub fn validate_id(field: &str, value: &str) -> Result<(), Rejection> {
    let ok = !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Rejection::InvalidRequest(format!(
            "{field} must be 1 to {MAX_ID_LEN} characters of A-Z, a-z, 0-9, '_', '-', '.'"
        )))
    }
}

/// Checks free text: at most 512 characters, no control characters.
pub fn validate_text(field: &str, value: &str, required: bool) -> Result<(), Rejection> {
    if required && value.trim().is_empty() {
        return Err(Rejection::InvalidRequest(format!(
            "{field} must not be empty"
        )));
    }
    if value.chars().count() > MAX_TEXT_LEN {
        return Err(Rejection::InvalidRequest(format!(
            "{field} is longer than {MAX_TEXT_LEN} characters"
        )));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(Rejection::InvalidRequest(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

/// How later bids relate to the increment (docs/RULES.md, Prices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IncrementRule {
    /// The first bid is `start_price` plus whole increments; later bids are the current
    /// price plus a whole, positive number of increments.
    #[default]
    Multiple,
    /// Any amount at or above the minimum.
    AtLeast,
}

/// Everything an operator fixes when creating an auction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionSpec {
    pub id: String,
    pub title: String,
    /// Free-form descriptive fields of the parcel, kept as a JSON text.
    pub parcel_json: String,
    pub start_price: Money,
    pub increment: Money,
    pub increment_rule: IncrementRule,
    /// Secret: never shown to bidders.
    pub reserve_price: Option<Money>,
    pub price_cap: Option<Money>,
    pub cap_confirm_ms: u64,
    pub failover_grace_ms: u64,
    pub listing_opens_at_ms: u64,
    pub listing_closes_at_ms: u64,
    pub countdown_ms: u64,
}

impl AuctionSpec {
    /// A minimal valid specification, the one place tests and examples start from (a
    /// field added to the specification is added here once): sale `id` titled "Parcel
    /// {id}", no parcel fields, start 1000 with increments of 100 (`multiple`), listing
    /// from 10 000 ms to 100 000 ms, one-minute countdown, confirm window and failover
    /// grace, no reserve and no cap. Change what a case needs with `..example(id)`.
    pub fn example(id: &str) -> AuctionSpec {
        AuctionSpec {
            id: id.to_string(),
            title: format!("Parcel {id}"),
            parcel_json: "{}".to_string(),
            start_price: 1000,
            increment: 100,
            increment_rule: IncrementRule::Multiple,
            reserve_price: None,
            price_cap: None,
            cap_confirm_ms: 60_000,
            failover_grace_ms: 60_000,
            listing_opens_at_ms: 10_000,
            listing_closes_at_ms: 100_000,
            countdown_ms: 60_000,
        }
    }

    /// Checks every field; the first problem found is named in the rejection.
    pub fn validate(&self) -> Result<(), Rejection> {
        validate_id("id", &self.id)?;
        validate_text("title", &self.title, true)?;
        if self.parcel_json.len() > MAX_PARCEL_JSON_LEN {
            return Err(invalid("parcel is larger than 16 KiB"));
        }
        if self.start_price == 0 {
            return Err(invalid("start_price must be positive"));
        }
        if self.increment == 0 {
            return Err(invalid("increment must be positive"));
        }
        if self.listing_closes_at_ms <= self.listing_opens_at_ms {
            return Err(invalid(
                "listing_closes_at_ms must be after listing_opens_at_ms",
            ));
        }
        if self.countdown_ms == 0 || self.countdown_ms > MAX_DURATION_MS {
            return Err(invalid("countdown_ms must be between 1 and 86400000"));
        }
        if self.cap_confirm_ms == 0 || self.cap_confirm_ms > MAX_DURATION_MS {
            return Err(invalid("cap_confirm_ms must be between 1 and 86400000"));
        }
        if self.failover_grace_ms == 0 || self.failover_grace_ms > MAX_DURATION_MS {
            return Err(invalid("failover_grace_ms must be between 1 and 86400000"));
        }
        // Deadlines are computed as `time + duration`; keep every such sum representable.
        if self.listing_closes_at_ms > u64::MAX / 4 {
            return Err(invalid("listing_closes_at_ms is out of range"));
        }
        if let Some(cap) = self.price_cap {
            if cap < self.start_price {
                return Err(invalid("price_cap must be at least start_price"));
            }
            if let Some(reserve) = self.reserve_price {
                if reserve > cap {
                    return Err(invalid("reserve_price must not exceed price_cap"));
                }
            }
        }
        Ok(())
    }
}

fn invalid(detail: &str) -> Rejection {
    Rejection::InvalidRequest(detail.to_string())
}

/// A SHA-256 hash as 64 hex digits.
pub(super) fn validate_hash(field: &str, value: &str) -> Result<(), Rejection> {
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(Rejection::InvalidRequest(format!(
            "{field} must be 64 hex digits"
        )))
    }
}

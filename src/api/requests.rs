//! What the HTTP API accepts. Unknown fields are refused (422); each request is checked
//! before it becomes a command, and the kernel checks again what only it can know.

use serde::Deserialize;
use utoipa::ToSchema;

use super::problem::ApiError;
use crate::kernel::{AuctionSpec, IncrementRule};

/// Shortest and longest bidder secret accepted at registration.
pub const SECRET_MIN_LEN: usize = 8;
pub const SECRET_MAX_LEN: usize = 256;

/// Default confirm window of a capped auction: five minutes.
pub const DEFAULT_CAP_CONFIRM_MS: u64 = 300_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub bidder_id: String,
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidRequest {
    /// In the smallest currency unit.
    pub amount: u64,
    /// Chosen by the client; a retry with the same request_id and body returns the
    /// original receipt instead of bidding twice.
    pub request_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidderRequest {
    pub bidder_id: String,
    pub name: String,
    /// 8 to 256 characters; stored only as a salted hash.
    pub secret: String,
}

impl BidderRequest {
    pub fn validate_secret(&self) -> Result<(), ApiError> {
        let length = self.secret.chars().count();
        if (SECRET_MIN_LEN..=SECRET_MAX_LEN).contains(&length) {
            Ok(())
        } else {
            Err(ApiError::invalid(format!(
                "secret must be {SECRET_MIN_LEN} to {SECRET_MAX_LEN} characters"
            )))
        }
    }
}

/// AuctionSpec of API.md.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuctionSpecRequest {
    pub id: String,
    pub title: String,
    /// Free-form descriptive fields of the parcel (a JSON object).
    #[schema(value_type = Object)]
    #[serde(default)]
    pub parcel: Option<serde_json::Value>,
    pub start_price: u64,
    pub increment: u64,
    /// `multiple` (default) or `at_least`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub increment_rule: Option<IncrementRule>,
    pub reserve_price: Option<u64>,
    pub price_cap: Option<u64>,
    /// Default 300000 (five minutes).
    pub cap_confirm_ms: Option<u64>,
    /// Default: the auction's countdown_ms.
    pub failover_grace_ms: Option<u64>,
    pub listing_opens_at_ms: u64,
    pub listing_closes_at_ms: u64,
    pub countdown_ms: u64,
}

impl AuctionSpecRequest {
    pub fn into_spec(self) -> Result<AuctionSpec, ApiError> {
        let parcel = self.parcel.unwrap_or_else(|| serde_json::json!({}));
        if !parcel.is_object() {
            return Err(ApiError::invalid(
                "parcel must be a JSON object".to_string(),
            ));
        }
        Ok(AuctionSpec {
            id: self.id,
            title: self.title,
            parcel_json: parcel.to_string(),
            start_price: self.start_price,
            increment: self.increment,
            increment_rule: self.increment_rule.unwrap_or_default(),
            reserve_price: self.reserve_price,
            price_cap: self.price_cap,
            cap_confirm_ms: self.cap_confirm_ms.unwrap_or(DEFAULT_CAP_CONFIRM_MS),
            failover_grace_ms: self.failover_grace_ms.unwrap_or(self.countdown_ms),
            listing_opens_at_ms: self.listing_opens_at_ms,
            listing_closes_at_ms: self.listing_closes_at_ms,
            countdown_ms: self.countdown_ms,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QualificationRequest {
    pub bidder_id: String,
}

/// `POST /control/v1/faults/panic`: the auction whose actor is to panic.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    pub auction_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncrementRequest {
    pub increment: u64,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverRequest {
    pub to_node_id: u64,
}

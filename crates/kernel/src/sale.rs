//! The sale rules of version 1.1 (docs/RULES.md, "Additions, version 1.1") and what an
//! auction keeps for them: the rules an auction was created with (`SaleRules`), the
//! deposits recorded for it, who bid in its listing, and the winner's confirmation
//! (`SaleState`).
//!
//! Both travel as JSON text inside the binary records (`json_text`): a rule or a field
//! added later is a `#[serde(default)]` field here, read from every record written before
//! it, with no new shape of the state to keep.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::money::Money;
use super::rejection::Rejection;
use super::signatures::KeptSignature;
use super::types::{validate_id, MAX_DURATION_MS};

/// Who may bid once the listing has closed (docs/RULES.md, "Who may bid in timed
/// bidding").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimedBiddingEntry {
    /// Every qualified bidder.
    #[default]
    AllQualified,
    /// Only bidders who placed a valid bid during the listing.
    ListingBidders,
}

/// What happens when the price reaches the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CapMode {
    /// Confirmations, then the commit–reveal lottery (`cap`, `lottery`).
    #[default]
    Lottery,
    /// One sealed quote per bidder (not yet implemented: refused at creation).
    SealedBid,
    /// Bidding on a second quantity (not yet implemented: refused at creation).
    Secondary,
}

/// How sealed quotes are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SealedRule {
    #[default]
    Highest,
    ClosestToAverage,
}

/// The second quantity of `cap_mode = secondary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondarySpec {
    pub label: String,
    pub unit: String,
    pub start: u64,
    pub increment: u64,
    pub max: u64,
}

/// The version 1.1 parameters of an auction; every one off by default, so an auction
/// without them runs the base rules exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SaleRules {
    /// The deposit each bidder must have paid before qualifying; 0: none.
    pub deposit: Money,
    pub timed_bidding_entry: TimedBiddingEntry,
    pub cap_mode: CapMode,
    pub sealed_window_ms: Option<u64>,
    pub sealed_ceiling: Option<Money>,
    pub sealed_rule: Option<SealedRule>,
    pub secondary: Option<SecondarySpec>,
    pub require_signed_bids: bool,
    pub exclusive_group: Option<String>,
    /// How long the winner has to confirm the sale; none: no confirmation step.
    pub winner_confirm_ms: Option<u64>,
}

/// The parameters this release accepts; the others of docs/RULES.md are refused with a
/// clear error until their rules are in the kernel.
const NOT_YET: &str = "is not supported by this release of Gavel yet";

impl SaleRules {
    /// Whether every parameter is at its default (an auction of the base rules).
    pub fn is_default(&self) -> bool {
        self == &SaleRules::default()
    }

    /// Checks every parameter; the first problem found is named in the rejection.
    pub fn validate(&self) -> Result<(), Rejection> {
        let invalid = |detail: String| Err(Rejection::InvalidRequest(detail));
        if self.cap_mode != CapMode::Lottery {
            return invalid(format!("cap_mode {:?} {NOT_YET}", self.cap_mode));
        }
        if self.sealed_window_ms.is_some()
            || self.sealed_ceiling.is_some()
            || self.sealed_rule.is_some()
        {
            return invalid("sealed_window_ms, sealed_ceiling and sealed_rule apply only to cap_mode sealed_bid".to_string());
        }
        if self.secondary.is_some() {
            return invalid("secondary applies only to cap_mode secondary".to_string());
        }
        if let Some(group) = &self.exclusive_group {
            validate_id("exclusive_group", group)?;
            return invalid(format!("exclusive_group {NOT_YET}"));
        }
        if let Some(window) = self.winner_confirm_ms {
            if window == 0 || window > MAX_DURATION_MS {
                return invalid("winner_confirm_ms must be between 1 and 86400000".to_string());
            }
        }
        Ok(())
    }
}

/// Most deposits (distinct bank references) one auction records.
pub const MAX_DEPOSITS_PER_AUCTION: usize = 20_000;

/// One deposit as recorded from a bank receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    pub bidder_id: String,
    pub amount: Money,
    pub recorded_at_ms: u64,
}

/// Where the winner's confirmation of a sale stands (docs/RULES.md, "Winner's
/// confirmation").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmationStatus {
    Pending,
    Confirmed,
    Lapsed,
    Defaulted,
}

impl ConfirmationStatus {
    /// The API's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmationStatus::Pending => "pending",
            ConfirmationStatus::Confirmed => "confirmed",
            ConfirmationStatus::Lapsed => "lapsed",
            ConfirmationStatus::Defaulted => "defaulted",
        }
    }
}

/// The winner's confirmation of a sold auction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinnerConfirmation {
    pub status: ConfirmationStatus,
    /// The end of the window: confirmed at or before it, lapsed after it.
    pub deadline_ms: u64,
    /// When the status last changed.
    pub changed_at_ms: u64,
}

/// What an auction keeps for the version 1.1 rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SaleState {
    pub rules: SaleRules,
    /// Deposits by bank reference.
    pub deposits: BTreeMap<String, Deposit>,
    /// Each bidder's deposits added up (kept with `deposits`, by `record_deposit`).
    pub deposit_totals: BTreeMap<String, Money>,
    /// Bidders who placed a valid bid during the listing (kept only when
    /// `timed_bidding_entry` is `listing_bidders`).
    pub listing_bidders: BTreeSet<String>,
    pub confirmation: Option<WinnerConfirmation>,
    /// The signature each signed bid was accepted with, by the bid's seq (docs/RULES.md,
    /// "Signed bids"). Left out of the text when empty, so auctions without signed bids
    /// keep the text they had.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bid_signatures: BTreeMap<u64, KeptSignature>,
}

impl SaleState {
    /// The deposits recorded for `bidder_id`, added up.
    pub fn deposited_by(&self, bidder_id: &str) -> Money {
        self.deposit_totals.get(bidder_id).copied().unwrap_or(0)
    }

    /// Every bidder's deposits added up, by bidder id.
    pub fn deposits_by_bidder(&self) -> BTreeMap<&str, Money> {
        self.deposit_totals
            .iter()
            .map(|(bidder_id, total)| (bidder_id.as_str(), *total))
            .collect()
    }

    /// Records a deposit under its bank reference (new), and adds it to its bidder's total.
    pub fn add_deposit(&mut self, reference: &str, deposit: Deposit) {
        let total = self
            .deposit_totals
            .entry(deposit.bidder_id.clone())
            .or_insert(0);
        *total = total.saturating_add(deposit.amount);
        self.deposits.insert(reference.to_string(), deposit);
    }
}

/// A serde adapter that writes a value as its JSON text, whatever the outer format: the
/// binary records of the log and of snapshots hold the version 1.1 data this way, so
/// fields added later with `#[serde(default)]` read from every earlier record.
pub mod json_text {
    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(value).map_err(S::Error::custom)?;
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(deserializer)?;
        serde_json::from_str(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_from_json_with_every_field_missing_are_the_base_rules() {
        let rules: SaleRules = serde_json::from_str("{}").expect("decode");
        assert!(rules.is_default());
        assert_eq!(rules.validate(), Ok(()));
    }

    #[test]
    fn a_parameter_this_release_does_not_run_is_refused_by_name() {
        let sealed = SaleRules {
            cap_mode: CapMode::SealedBid,
            ..SaleRules::default()
        };
        let refused = sealed.validate().expect_err("refused");
        assert!(refused.to_string().contains("SealedBid"), "{refused}");
        let signed = SaleRules {
            require_signed_bids: true,
            ..SaleRules::default()
        };
        assert_eq!(signed.validate(), Ok(()));
        let window = SaleRules {
            winner_confirm_ms: Some(0),
            ..SaleRules::default()
        };
        assert!(window.validate().is_err());
    }

    #[test]
    fn deposits_add_up_per_bidder() {
        let mut sale = SaleState::default();
        for (reference, bidder_id, amount) in [
            ("r1", "alice", 300),
            ("r2", "bob", 50),
            ("r3", "alice", 200),
        ] {
            sale.add_deposit(
                reference,
                Deposit {
                    bidder_id: bidder_id.to_string(),
                    amount,
                    recorded_at_ms: 1,
                },
            );
        }
        assert_eq!(sale.deposited_by("alice"), 500);
        assert_eq!(sale.deposited_by("carol"), 0);
        assert_eq!(sale.deposits_by_bidder().get("bob"), Some(&50));
    }
}

//! The sale rules of version 1.1 (docs/RULES.md, "Additions, version 1.1") and what an
//! auction keeps for them: the rules an auction was created with (`SaleRules`), the
//! deposits recorded for it, who bid in its listing, the winner's confirmation, the
//! proxy maximums and the bids voided by an exclusive group (`SaleState`).
//!
//! Both travel as JSON text inside the binary records (`json_text`): a rule or a field
//! added later is a `#[serde(default)]` field here, read from every record written before
//! it, with no new shape of the state to keep.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::money::{BidderNumber, Money};
use super::rejection::Rejection;
use super::signatures::KeptSignature;
use super::types::{validate_id, validate_text, AuctionSpec, MAX_DURATION_MS};

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
    /// One sealed quote per bidder holding a valid bid, within a window (`sealed`).
    SealedBid,
    /// Bidding on a second quantity at the frozen cap price (`secondary`).
    Secondary,
}

/// How sealed quotes are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SealedRule {
    /// The highest quote wins.
    #[default]
    Highest,
    /// The quote nearest the mean of all quotes wins (the lower one on a tie of distance).
    ClosestToAverage,
}

/// Longest `label` or `unit` of a secondary quantity.
pub const MAX_SECONDARY_TEXT_LEN: usize = 64;

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

impl TimedBiddingEntry {
    /// The API's name of the rule.
    pub fn as_str(self) -> &'static str {
        match self {
            TimedBiddingEntry::AllQualified => "all_qualified",
            TimedBiddingEntry::ListingBidders => "listing_bidders",
        }
    }
}

impl CapMode {
    /// The API's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            CapMode::Lottery => "lottery",
            CapMode::SealedBid => "sealed_bid",
            CapMode::Secondary => "secondary",
        }
    }
}

impl SaleRules {
    /// Whether every parameter is at its default (an auction of the base rules).
    pub fn is_default(&self) -> bool {
        self == &SaleRules::default()
    }

    /// The rule that decides sealed quotes (`highest` unless set).
    pub fn sealed_rule(&self) -> SealedRule {
        self.sealed_rule.unwrap_or_default()
    }

    /// Checks every parameter, and those that depend on the auction's `spec` (a cap
    /// mode other than the lottery needs a `price_cap`); the first problem found is named
    /// in the rejection.
    pub fn validate_for(&self, spec: &AuctionSpec) -> Result<(), Rejection> {
        self.validate()?;
        if self.cap_mode == CapMode::Lottery {
            return Ok(());
        }
        let Some(cap) = spec.price_cap else {
            return Err(Rejection::InvalidRequest(
                "cap_mode sealed_bid and secondary need a price_cap".to_string(),
            ));
        };
        if self.sealed_ceiling.is_some_and(|ceiling| ceiling < cap) {
            return Err(Rejection::InvalidRequest(
                "sealed_ceiling must be at least price_cap".to_string(),
            ));
        }
        Ok(())
    }

    /// Checks every parameter that does not depend on the auction's spec; the first
    /// problem found is named in the rejection.
    pub fn validate(&self) -> Result<(), Rejection> {
        let invalid = |detail: String| Err(Rejection::InvalidRequest(detail));
        self.validate_cap_mode()?;
        if let Some(group) = &self.exclusive_group {
            validate_id("exclusive_group", group)?;
        }
        if let Some(window) = self.winner_confirm_ms {
            if window == 0 || window > MAX_DURATION_MS {
                return invalid("winner_confirm_ms must be between 1 and 86400000".to_string());
            }
        }
        Ok(())
    }

    /// The parameters of the cap mode: each mode's own, and none of another's.
    fn validate_cap_mode(&self) -> Result<(), Rejection> {
        let invalid = |detail: &str| Err(Rejection::InvalidRequest(detail.to_string()));
        let sealed = self.cap_mode == CapMode::SealedBid;
        let sealed_fields = self.sealed_window_ms.is_some()
            || self.sealed_ceiling.is_some()
            || self.sealed_rule.is_some();
        if sealed_fields && !sealed {
            return invalid(
                "sealed_window_ms, sealed_ceiling and sealed_rule apply only to cap_mode sealed_bid",
            );
        }
        if self.secondary.is_some() != (self.cap_mode == CapMode::Secondary) {
            return invalid(
                "secondary is required with cap_mode secondary, and applies only to it",
            );
        }
        if sealed {
            match self.sealed_window_ms {
                Some(window) if (1..=MAX_DURATION_MS).contains(&window) => {}
                _ => return invalid("sealed_window_ms must be between 1 and 86400000"),
            }
            if self.sealed_ceiling.is_none() {
                return invalid("cap_mode sealed_bid needs a sealed_ceiling");
            }
        }
        match &self.secondary {
            Some(secondary) => secondary.validate(),
            None => Ok(()),
        }
    }
}

impl SecondarySpec {
    /// `label` and `unit`: 1 to 64 characters (no control characters); `start` and
    /// `increment` at least 1; `max` at least `start`.
    pub fn validate(&self) -> Result<(), Rejection> {
        for (field, text) in [
            ("secondary.label", &self.label),
            ("secondary.unit", &self.unit),
        ] {
            validate_text(field, text, true)?;
            if text.chars().count() > MAX_SECONDARY_TEXT_LEN {
                return Err(Rejection::InvalidRequest(format!(
                    "{field} is longer than {MAX_SECONDARY_TEXT_LEN} characters"
                )));
            }
        }
        let invalid = |detail: &str| Err(Rejection::InvalidRequest(detail.to_string()));
        if self.start == 0 {
            return invalid("secondary.start must be at least 1");
        }
        if self.increment == 0 {
            return invalid("secondary.increment must be at least 1");
        }
        if self.max < self.start {
            return invalid("secondary.max must be at least secondary.start");
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
    /// Hidden proxy maximums by bidder id (docs/RULES.md, "Proxy bidding"). Never shown
    /// but to their owner.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub proxies: BTreeMap<String, ProxyMaximum>,
    /// The order of the last maximum set or raised: each one takes the next.
    #[serde(skip_serializing_if = "is_zero")]
    pub proxy_order: u64,
    /// What each bidder's proxy request_ids answered, by bidder id then request_id.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_requests: BTreeMap<String, BTreeMap<String, ProxyAnswer>>,
    /// The bids a proxy placed: seq, and the maximum it was placed under.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_bids: BTreeMap<u64, Money>,
    /// Void bids (docs/RULES.md, "Mutually exclusive parcels"), by seq: kept in the
    /// chain, never counted for price, leader or winner.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub voided: BTreeSet<u64>,
    /// Bidders who won another auction of the group: their bids here are void and they
    /// may bid no more.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub excluded: BTreeSet<String>,
    /// `cap_mode = sealed_bid`: each bidder's sealed quote, by bidder id. Secret until
    /// the window closes (`Auction::without_open_secrets`). The fields below are left out
    /// of the JSON text while empty, so the records of auctions without them are written
    /// as before.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sealed_quotes: BTreeMap<String, SealedQuote>,
    /// `cap_mode = secondary`: when the auction entered `secondary_bidding`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secondary_entered_at_ms: Option<u64>,
    /// `cap_mode = secondary`: the accepted secondary bids, oldest first, each higher
    /// than the one before.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secondary_bids: Vec<SecondaryBid>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// A bidder's hidden maximum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyMaximum {
    pub max_amount: Money,
    /// When it was set or last raised, as `SaleState::proxy_order`: of equal maximums,
    /// the earlier leads.
    pub order: u64,
    pub set_at_ms: u64,
    /// The bidder's signature of this maximum, if signed: kept with every bid the proxy
    /// places under it. Left out of the text when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<KeptSignature>,
}

/// What a request to set a maximum answered: the maximum, and the seq of the bid the
/// proxy placed for its bidder in the same step, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyAnswer {
    pub max_amount: Money,
    pub bid_seq: Option<u64>,
}

/// A bidder's sealed quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedQuote {
    pub amount: Money,
    pub accepted_at_ms: u64,
    /// The request_id it came with: the same again answers the same quote.
    pub request_id: String,
    /// The bidder's signature of the quote, if signed. Left out of the text when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<KeptSignature>,
}

/// One accepted bid on the secondary quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondaryBid {
    /// From 1, in the order accepted.
    pub seq: u64,
    pub bidder_id: String,
    pub bidder_number: BidderNumber,
    pub amount: u64,
    pub accepted_at_ms: u64,
    /// The request_id it came with: the same again answers the same bid.
    pub request_id: String,
    /// The bidder's signature of the bid, if signed. Left out of the text when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<KeptSignature>,
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
    fn the_api_names_are_the_serialized_names() {
        let text = |value: &dyn erased::Named| value.json();
        for mode in [CapMode::Lottery, CapMode::SealedBid, CapMode::Secondary] {
            assert_eq!(text(&mode), format!("\"{}\"", mode.as_str()));
        }
        for entry in [
            TimedBiddingEntry::AllQualified,
            TimedBiddingEntry::ListingBidders,
        ] {
            assert_eq!(text(&entry), format!("\"{}\"", entry.as_str()));
        }
    }

    /// Serialization of either enum, for the test above.
    mod erased {
        pub trait Named {
            fn json(&self) -> String;
        }
        impl<T: serde::Serialize> Named for T {
            fn json(&self) -> String {
                serde_json::to_string(self).expect("encode")
            }
        }
    }

    #[test]
    fn rules_read_from_json_with_every_field_missing_are_the_base_rules() {
        let rules: SaleRules = serde_json::from_str("{}").expect("decode");
        assert!(rules.is_default());
        assert_eq!(rules.validate(), Ok(()));
    }

    #[test]
    fn parameters_out_of_range_are_refused_by_name() {
        let signed = SaleRules {
            require_signed_bids: true,
            ..SaleRules::default()
        };
        assert_eq!(signed.validate(), Ok(()));
        let group = SaleRules {
            exclusive_group: Some("bad group".to_string()),
            ..SaleRules::default()
        };
        assert!(group.validate().is_err());
        let group = SaleRules {
            exclusive_group: Some("district-7".to_string()),
            ..SaleRules::default()
        };
        assert_eq!(group.validate(), Ok(()));
        let window = SaleRules {
            winner_confirm_ms: Some(0),
            ..SaleRules::default()
        };
        assert!(window.validate().is_err());
    }

    fn sealed(window_ms: u64, ceiling: u64) -> SaleRules {
        SaleRules {
            cap_mode: CapMode::SealedBid,
            sealed_window_ms: Some(window_ms),
            sealed_ceiling: Some(ceiling),
            ..SaleRules::default()
        }
    }

    fn secondary(start: u64, increment: u64, max: u64) -> SaleRules {
        SaleRules {
            cap_mode: CapMode::Secondary,
            secondary: Some(SecondarySpec {
                label: "Affordable housing".to_string(),
                unit: "m2".to_string(),
                start,
                increment,
                max,
            }),
            ..SaleRules::default()
        }
    }

    #[test]
    fn the_cap_modes_need_a_cap_and_their_own_parameters() {
        let capped = AuctionSpec {
            price_cap: Some(5000),
            ..AuctionSpec::example("lot")
        };
        let uncapped = AuctionSpec::example("lot");
        assert_eq!(sealed(60_000, 5000).validate_for(&capped), Ok(()));
        assert!(sealed(60_000, 5000).validate_for(&uncapped).is_err());
        assert!(sealed(60_000, 4999).validate_for(&capped).is_err());
        assert!(sealed(0, 6000).validate_for(&capped).is_err());
        assert!(sealed(MAX_DURATION_MS + 1, 6000)
            .validate_for(&capped)
            .is_err());
        let no_ceiling = SaleRules {
            sealed_ceiling: None,
            ..sealed(60_000, 6000)
        };
        assert!(no_ceiling.validate_for(&capped).is_err());
        assert_eq!(sealed(60_000, 6000).sealed_rule(), SealedRule::Highest);

        assert_eq!(secondary(1, 1, 1).validate_for(&capped), Ok(()));
        assert!(secondary(1, 1, 1).validate_for(&uncapped).is_err());
        assert!(secondary(0, 1, 10).validate().is_err());
        assert!(secondary(1, 0, 10).validate().is_err());
        assert!(secondary(5, 1, 4).validate().is_err());
        let mut long_label = secondary(1, 1, 10);
        if let Some(spec) = long_label.secondary.as_mut() {
            spec.label = "x".repeat(MAX_SECONDARY_TEXT_LEN + 1);
        }
        assert!(long_label.validate().is_err());
        let missing = SaleRules {
            secondary: None,
            ..secondary(1, 1, 10)
        };
        assert!(missing.validate().is_err());
        let stray = SaleRules {
            sealed_window_ms: Some(1000),
            ..secondary(1, 1, 10)
        };
        assert!(stray.validate().is_err());
    }

    #[test]
    fn a_state_without_the_cap_mode_fields_writes_them_not() {
        let text = serde_json::to_string(&SaleState::default()).expect("encode");
        for field in ["sealed_quotes", "secondary_entered_at_ms", "secondary_bids"] {
            assert!(!text.contains(field), "{text}");
        }
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

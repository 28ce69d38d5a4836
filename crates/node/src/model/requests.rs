//! What the HTTP API accepts. Unknown fields are refused (422); each request is checked
//! here, before it becomes a command, so a malformed one is never proposed (nor written
//! to the Raft log), and the kernel checks again what only it can know.

use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::error::ApiError;
use gavel_kernel::sale::{CapMode, SaleRules, SealedRule, SecondarySpec, TimedBiddingEntry};
use gavel_kernel::types::{validate_id, validate_text};
use gavel_kernel::{AuctionSpec, Command, IncrementRule, Rejection};

/// The command that creates an auction of `spec` under `rules`: `CreateAuction` for the
/// base rules (as every earlier release wrote it), `CreateAuctionWithRules` otherwise.
pub fn create_auction_command(spec: AuctionSpec, rules: SaleRules) -> Command {
    if rules.is_default() {
        Command::CreateAuction { spec }
    } else {
        Command::CreateAuctionWithRules {
            spec,
            rules: Box::new(rules),
        }
    }
}

/// A request body that must be a JSON object. Serde's derived structs also accept an
/// array of their fields in order (`[1010000, "r-1"]` as a bid); the API does not.
pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = JsonObject<T>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(JsonObject)
    }
}

/// The auction id of a path: one that cannot name an auction answers 404 at once.
pub fn auction_path_id(id: String) -> Result<String, ApiError> {
    match validate_id("id", &id) {
        Ok(()) => Ok(id),
        Err(_) => Err(ApiError::Rejected(Rejection::AuctionNotFound)),
    }
}

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

/// A bid: `{"amount","request_id"}` on the price, or in `secondary_bidding`
/// `{"secondary_amount","request_id"}` on the second quantity; exactly one of the two
/// amounts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidRequest {
    /// The price, in the smallest currency unit.
    #[schema(minimum = 1)]
    pub amount: Option<u64>,
    /// In `secondary_bidding` (`cap_mode` `secondary`): the amount of the second quantity.
    #[schema(minimum = 1)]
    pub secondary_amount: Option<u64>,
    /// Chosen by the client; a retry with the same request_id and body returns the
    /// original receipt instead of bidding twice.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub request_id: String,
    /// The bidder's signature of the bid, standard base64, under one of their
    /// registered public keys (docs/RULES.md, "Signed bids"): of the text
    /// `gavel-bid\n{auction_id}\n{amount}\n{request_id}`, or for a secondary bid
    /// `gavel-bid\n{auction_id}\nsecondary_amount={secondary_amount}\n{request_id}`.
    /// Required by an auction with `require_signed_bids`; checked wherever it is sent.
    #[schema(max_length = 256)]
    pub signature: Option<String>,
}

/// Longest `signature` a request may carry (an SM2 or Ed25519 signature is 88
/// characters).
pub const MAX_SIGNATURE_CHARS: usize = 256;

/// Refuses a `signature` longer than `MAX_SIGNATURE_CHARS`.
fn check_signature_length(signature: Option<&String>) -> Result<(), ApiError> {
    match signature {
        Some(signature) if signature.len() > MAX_SIGNATURE_CHARS => Err(ApiError::invalid(
            format!("signature must be at most {MAX_SIGNATURE_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

impl BidRequest {
    /// The command placing this bid in `auction_id` through the session `token_hash`:
    /// a price bid (signed when it carries a signature) or a secondary bid.
    pub fn into_command(self, auction_id: String, token_hash: String) -> Result<Command, ApiError> {
        validate_id("request_id", &self.request_id)?;
        check_signature_length(self.signature.as_ref())?;
        let request_id = self.request_id;
        match (self.amount, self.secondary_amount, self.signature) {
            (Some(amount), None, Some(signature)) => Ok(Command::PlaceSignedBid {
                auction_id,
                token_hash,
                amount,
                request_id,
                signature,
            }),
            (Some(amount), None, None) => Ok(Command::PlaceBid {
                auction_id,
                token_hash,
                amount,
                request_id,
            }),
            (None, Some(secondary_amount), Some(signature)) => {
                Ok(Command::PlaceSignedSecondaryBid {
                    auction_id,
                    token_hash,
                    secondary_amount,
                    request_id,
                    signature,
                })
            }
            (None, Some(secondary_amount), None) => Ok(Command::PlaceSecondaryBid {
                auction_id,
                token_hash,
                secondary_amount,
                request_id,
            }),
            _ => Err(ApiError::invalid(
                "a bid carries exactly one of amount and secondary_amount".to_string(),
            )),
        }
    }
}

/// `POST /control/v1/bidders/{id}/keys`: a public key for signed bids.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidderKeyRequest {
    /// `ed25519` (a 32-byte key) or `sm2` (a SEC1 point of the SM2 curve, 65 bytes
    /// uncompressed or 33 compressed).
    #[schema(pattern = "^(ed25519|sm2)$")]
    pub algorithm: String,
    /// Standard base64 of the key's bytes.
    #[schema(max_length = 256)]
    pub public_key: String,
}

/// A sealed quote (`cap_mode` `sealed_bid`, in `capped`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedQuoteRequest {
    /// In the smallest currency unit, between price_cap and sealed_ceiling.
    #[schema(minimum = 1)]
    pub amount: u64,
    /// Chosen by the client; a retry with the same request_id and amount answers the
    /// quote already placed.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub request_id: String,
    /// The bidder's signature of the quote, standard base64 (docs/RULES.md, "Signed
    /// bids"): of `gavel-bid\n{auction_id}\nsealed_amount={amount}\n{request_id}`.
    /// Required by an auction with `require_signed_bids`.
    #[schema(max_length = 256)]
    pub signature: Option<String>,
}

impl SealedQuoteRequest {
    /// The command submitting this quote in `auction_id` through the session `token_hash`.
    pub fn into_command(self, auction_id: String, token_hash: String) -> Result<Command, ApiError> {
        validate_id("request_id", &self.request_id)?;
        check_signature_length(self.signature.as_ref())?;
        let (amount, request_id) = (self.amount, self.request_id);
        Ok(match self.signature {
            Some(signature) => Command::SubmitSignedSealedQuote {
                auction_id,
                token_hash,
                amount,
                request_id,
                signature,
            },
            None => Command::SubmitSealedQuote {
                auction_id,
                token_hash,
                amount,
                request_id,
            },
        })
    }
}

/// A hidden proxy maximum (docs/RULES.md, "Proxy bidding"): `{"max_amount","request_id"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyRequest {
    /// The most the proxy may bid for the caller, in the smallest currency unit; need not
    /// be on the increment grid. Never shown to anyone but the caller.
    pub max_amount: u64,
    /// Chosen by the client; a retry with the same request_id and body answers as the
    /// first time.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub request_id: String,
    /// The bidder's signature of the maximum, standard base64 (docs/RULES.md, "Signed
    /// bids"): of `gavel-bid\n{auction_id}\nproxy_max={max_amount}\n{request_id}`.
    /// Required by an auction with `require_signed_bids`, where it stands behind every
    /// bid the proxy places.
    #[schema(max_length = 256)]
    pub signature: Option<String>,
}

impl ProxyRequest {
    /// The command setting this maximum in `auction_id` through the session `token_hash`.
    pub fn into_command(self, auction_id: String, token_hash: String) -> Result<Command, ApiError> {
        validate_id("request_id", &self.request_id)?;
        if self.max_amount == 0 {
            return Err(ApiError::invalid("max_amount must be positive".to_string()));
        }
        check_signature_length(self.signature.as_ref())?;
        let (max_amount, request_id) = (self.max_amount, self.request_id);
        Ok(match self.signature {
            Some(signature) => Command::SetSignedProxy {
                auction_id,
                token_hash,
                max_amount,
                request_id,
                signature,
            },
            None => Command::SetProxy {
                auction_id,
                token_hash,
                max_amount,
                request_id,
            },
        })
    }
}

/// The optional body of a confirmation in `capped`: `{"nonce"?}`. No body, or `{}`, is a
/// confirmation without a nonce.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// Mixed into the lottery's draw with the committed seed (README, "Checking a
    /// lottery"): up to 64 characters of A-Z, a-z, 0-9, '_', '-'. A random one (say 32 hex
    /// digits) makes the draw unpredictable to anyone who does not learn it.
    #[schema(pattern = "^[A-Za-z0-9_-]{0,64}$")]
    pub nonce: Option<String>,
}

impl ConfirmRequest {
    /// Reads an optional JSON object body (`content_type`, when there is a body, must be
    /// JSON) and checks the nonce. Errors as for every JSON body: 415 for another media
    /// type, 400 `invalid_json` for malformed JSON, 422 for a well-formed wrong one.
    pub fn parse(content_type: &str, body: &[u8]) -> Result<ConfirmRequest, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(ConfirmRequest::default());
        }
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !(essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let request: JsonObject<ConfirmRequest> =
            serde_json::from_slice(body).map_err(|error| match error.is_data() {
                true => ApiError::invalid(error.to_string()),
                false => ApiError::InvalidJson(error.to_string()),
            })?;
        let request = request.into_inner();
        gavel_kernel::lottery::validate_nonce(request.nonce.as_deref().unwrap_or(""))?;
        Ok(request)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BidderRequest {
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub bidder_id: String,
    /// 1 to 512 characters, no control characters.
    #[schema(min_length = 1, max_length = 512)]
    pub name: String,
    /// 8 to 256 characters; stored only as a salted hash.
    #[schema(min_length = 8, max_length = 256)]
    pub secret: String,
}

impl BidderRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        validate_id("bidder_id", &self.bidder_id)?;
        validate_text("name", &self.name, true)?;
        self.validate_secret()
    }

    fn validate_secret(&self) -> Result<(), ApiError> {
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

/// AuctionSpec of docs/API.md.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuctionSpecRequest {
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub id: String,
    /// 1 to 512 characters, no control characters.
    #[schema(min_length = 1, max_length = 512)]
    pub title: String,
    /// Free-form descriptive fields of the parcel (a JSON object).
    #[schema(value_type = Object)]
    #[serde(default)]
    pub parcel: Option<serde_json::Value>,
    #[schema(minimum = 1)]
    pub start_price: u64,
    #[schema(minimum = 1)]
    pub increment: u64,
    /// `multiple` (default) or `at_least`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub increment_rule: Option<IncrementRule>,
    pub reserve_price: Option<u64>,
    pub price_cap: Option<u64>,
    /// Default 300000 (five minutes); at most one day.
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub cap_confirm_ms: Option<u64>,
    /// Default: the auction's countdown_ms; at most one day.
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub failover_grace_ms: Option<u64>,
    pub listing_opens_at_ms: u64,
    /// After listing_opens_at_ms and after now.
    pub listing_closes_at_ms: u64,
    /// At most one day.
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub countdown_ms: u64,
    /// The deposit each bidder must have paid (recorded with `POST
    /// /control/v1/auctions/{id}/deposits`) before qualifying; default 0: none.
    pub deposit: Option<u64>,
    /// `all_qualified` (default) or `listing_bidders`.
    #[schema(value_type = Option<String>)]
    pub timed_bidding_entry: Option<TimedBiddingEntry>,
    /// `lottery` (default), `sealed_bid` or `secondary`; the last two need a price_cap.
    #[schema(value_type = Option<String>)]
    pub cap_mode: Option<CapMode>,
    /// With `cap_mode` `sealed_bid` only, and required with it: how long quotes are
    /// taken once the cap is reached (at most one day).
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub sealed_window_ms: Option<u64>,
    /// With `cap_mode` `sealed_bid` only, and required with it: the highest quote
    /// accepted (at least price_cap).
    pub sealed_ceiling: Option<u64>,
    /// With `cap_mode` `sealed_bid` only: `highest` (default) or `closest_to_average`.
    #[schema(value_type = Option<String>)]
    pub sealed_rule: Option<SealedRule>,
    /// With `cap_mode` `secondary` only, and required with it:
    /// `{"label","unit","start","increment","max"}` (label and unit 1 to 64 characters;
    /// start and increment at least 1; max at least start).
    #[schema(value_type = Option<Object>)]
    pub secondary: Option<SecondarySpec>,
    /// Whether the auction accepts signed bids only (docs/RULES.md, "Signed bids");
    /// default false.
    pub require_signed_bids: Option<bool>,
    /// Refused by this release.
    pub exclusive_group: Option<String>,
    /// How long the winner has to confirm the sale (at most one day); default: no
    /// confirmation step.
    #[schema(minimum = 1, maximum = 86_400_000)]
    pub winner_confirm_ms: Option<u64>,
}

impl AuctionSpecRequest {
    /// The kernel's spec, checked as the kernel checks it (but for the clock, which only
    /// the kernel reads).
    pub fn into_spec(self) -> Result<(AuctionSpec, SaleRules), ApiError> {
        let rules = self.rules();
        let spec = self.into_unchecked_spec()?;
        spec.validate()?;
        rules.validate_for(&spec)?;
        Ok((spec, rules))
    }

    /// The version 1.1 rules the request sets (each absent one at its default).
    fn rules(&self) -> SaleRules {
        SaleRules {
            deposit: self.deposit.unwrap_or(0),
            timed_bidding_entry: self.timed_bidding_entry.unwrap_or_default(),
            cap_mode: self.cap_mode.unwrap_or_default(),
            sealed_window_ms: self.sealed_window_ms,
            sealed_ceiling: self.sealed_ceiling,
            sealed_rule: self.sealed_rule,
            secondary: self.secondary.clone(),
            require_signed_bids: self.require_signed_bids.unwrap_or(false),
            exclusive_group: self.exclusive_group.clone(),
            winner_confirm_ms: self.winner_confirm_ms,
        }
    }

    fn into_unchecked_spec(self) -> Result<AuctionSpec, ApiError> {
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
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub bidder_id: String,
}

impl QualificationRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        Ok(validate_id("bidder_id", &self.bidder_id)?)
    }
}

/// `POST /control/v1/auctions/{id}/deposits`: a deposit from a bank receipt.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositRequest {
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub bidder_id: String,
    #[schema(minimum = 1)]
    pub amount: u64,
    /// The bank receipt's reference: a deposit is recorded once per reference.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub reference: String,
}

impl DepositRequest {
    /// The checked command recording the deposit in `auction_id`.
    pub fn into_command(self, auction_id: String) -> Result<Command, ApiError> {
        gavel_kernel::deposits::validate(&gavel_kernel::deposits::DepositRequest {
            bidder_id: &self.bidder_id,
            amount: self.amount,
            reference: &self.reference,
        })?;
        Ok(Command::RecordDeposit {
            auction_id,
            bidder_id: self.bidder_id,
            amount: self.amount,
            reference: self.reference,
        })
    }
}

/// `POST /control/v1/faults/panic`: the actor that is to panic. `auction` (the default)
/// needs `auction_id`, `peer_link` needs `node_id` (the peer's); the node-wide actors
/// need neither.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    #[serde(default)]
    pub actor: FaultTarget,
    pub auction_id: Option<String>,
    pub node_id: Option<u64>,
}

/// `POST /control/v1/faults/clock`: the offset to give this node's wall clock.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockFaultRequest {
    /// Milliseconds, at most a day either way; 0 puts the clock back.
    pub offset_ms: i64,
}

/// An actor that fault injection can make panic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    #[default]
    Auction,
    Supervisor,
    ResourcePool,
    Janitor,
    Exchange,
    PeerLink,
}

impl FaultTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultTarget::Auction => "auction",
            FaultTarget::Supervisor => "supervisor",
            FaultTarget::ResourcePool => "resource_pool",
            FaultTarget::Janitor => "janitor",
            FaultTarget::Exchange => "exchange",
            FaultTarget::PeerLink => "peer_link",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    /// At most 512 characters, no control characters.
    #[serde(default)]
    #[schema(max_length = 512)]
    pub reason: String,
}

impl ReasonRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        Ok(validate_text("reason", &self.reason, false)?)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncrementRequest {
    /// Positive, in the smallest currency unit.
    #[schema(minimum = 1)]
    pub increment: u64,
    /// At most 512 characters, no control characters.
    #[serde(default)]
    #[schema(max_length = 512)]
    pub reason: String,
}

impl IncrementRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.increment == 0 {
            return Err(ApiError::invalid("increment must be positive".to_string()));
        }
        Ok(validate_text("reason", &self.reason, false)?)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverRequest {
    pub to_node_id: u64,
}

/// `POST /control/v1/cluster/nodes`: a running node to add as a standby, with the
/// addresses the other nodes and clients reach it at (as in `[[cluster.members]]`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeRequest {
    /// 1 or more, unique in the cluster.
    #[schema(minimum = 1)]
    pub node_id: u64,
    #[schema(max_length = 512)]
    pub name: String,
    /// The node's peer listener, `host:port` with an IP address.
    pub peer: String,
    /// `http://` or `https://`.
    #[schema(max_length = 512)]
    pub public_url: String,
    /// `http://` or `https://`.
    #[schema(max_length = 512)]
    pub control_url: String,
    /// Run the precheck only (the node answers on its peer address with the cluster's
    /// secret, as this node id); change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Give the node a vote once it has caught up (a standby already in the cluster is
    /// given one too). Default false: a standby.
    #[serde(default)]
    pub voter: bool,
}

/// `POST /control/v1/cluster/replace`: the cutover of a migration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceRequest {
    /// The voter that leaves (it is told to stop).
    #[schema(minimum = 1)]
    pub from_node_id: u64,
    /// The standby that takes its vote.
    #[schema(minimum = 1)]
    pub to_node_id: u64,
}

/// Most bids one page of `GET /api/v1/auctions/{id}/bids` holds, and the default once
/// either parameter is given.
pub const MAX_BIDS_PER_PAGE: usize = 10_000;
pub const DEFAULT_BIDS_PER_PAGE: usize = 1_000;

/// The most bids of its history a new event stream may ask for with `history`.
pub const MAX_STREAM_HISTORY: u64 = 10_000;

/// Where a new event stream of one auction starts (a `Last-Event-ID` header, when sent,
/// takes precedence over both).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this bid seq, as `Last-Event-ID` does: a page that opens a new stream
    /// resumes after the newest bid it holds.
    pub after_seq: Option<u64>,
    /// Only the newest this many bids of the history (0 to 10000), not every bid: a page
    /// shows the last ones and reads earlier ones from the bid list when asked.
    pub history: Option<u64>,
}

impl StreamQuery {
    /// The seq the stream starts after, given the `Last-Event-ID` header's and the number
    /// of bids the auction holds.
    pub fn start_after(&self, last_event_id: Option<u64>, bid_count: u64) -> u64 {
        match (last_event_id, self.after_seq, self.history) {
            (Some(seq), _, _) | (None, Some(seq), _) => seq,
            (None, None, Some(newest)) => bid_count.saturating_sub(newest),
            (None, None, None) => 0,
        }
    }

    /// Refuses a `history` beyond `MAX_STREAM_HISTORY`.
    pub fn validate(&self) -> Result<(), ApiError> {
        match self.history {
            Some(history) if history > MAX_STREAM_HISTORY => Err(ApiError::invalid(format!(
                "history must be between 0 and {MAX_STREAM_HISTORY}"
            ))),
            _ => Ok(()),
        }
    }
}

/// A page of an auction's bids. Without either parameter the answer is every bid, as it
/// always was; with one, at most `limit` bids after `after_seq`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BidsQuery {
    /// Only bids with a greater seq (bids are numbered from 1); default 0.
    pub after_seq: Option<u64>,
    /// At most this many bids, 1 to 10000; default 1000 once a parameter is given.
    pub limit: Option<usize>,
}

impl BidsQuery {
    /// `(after_seq, limit)` of the page asked for; every bid when neither was given.
    pub fn page(&self) -> Result<(u64, usize), ApiError> {
        if self.after_seq.is_none() && self.limit.is_none() {
            return Ok((0, usize::MAX));
        }
        let limit = self.limit.unwrap_or(DEFAULT_BIDS_PER_PAGE);
        if !(1..=MAX_BIDS_PER_PAGE).contains(&limit) {
            return Err(ApiError::invalid(format!(
                "limit must be between 1 and {MAX_BIDS_PER_PAGE}"
            )));
        }
        Ok((self.after_seq.unwrap_or(0), limit))
    }
}

//! What the HTTP API answers (docs/API.md). Bidders appear only by their bidder number; the
//! reserve price appears only in the control listener's views.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use gavel_kernel::lottery::{Bytes32, CommitReveal, Lottery, LotteryEntrant};
use gavel_kernel::{Auction, BidRecord, Receipt};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuctionView {
    pub id: String,
    pub title: String,
    /// scheduled, listing, timed_bidding, capped, secondary_bidding, suspended, sold,
    /// unsold or terminated.
    pub phase: String,
    pub start_price: u64,
    /// The increment in force.
    pub increment: u64,
    /// `multiple` or `at_least`.
    pub increment_rule: String,
    pub price_cap: Option<u64>,
    pub current_price: Option<u64>,
    pub leading_bidder_number: Option<u32>,
    /// The lowest amount the next bid may carry while bidding is open.
    pub minimum_next_bid: Option<u64>,
    pub bid_count: u64,
    pub listing_opens_at_ms: u64,
    pub listing_closes_at_ms: u64,
    /// When the current phase ends; null once closed or while suspended.
    pub deadline_ms: Option<u64>,
    pub countdown_ms: u64,
    pub winner_bidder_number: Option<u32>,
    /// SHA-256 of the lottery's seed, 64 hex digits, published when the auction entered
    /// `capped` (the seed itself is published only with the draw, in `lottery`).
    pub lottery_commitment: Option<String>,
    /// The lottery that picked the winner in `capped`, if one was drawn.
    pub lottery: Option<LotteryView>,
    /// The parcel's descriptive fields as given at creation.
    #[schema(value_type = Object)]
    pub parcel: serde_json::Value,
    pub server_time_ms: u64,
    /// What reaching the cap leads to: `lottery`, `sealed_bid` or `secondary`.
    pub cap_mode: String,
    /// The deposit each bidder must have paid before qualifying; 0: none.
    pub deposit: u64,
    /// `all_qualified` or `listing_bidders`.
    pub timed_bidding_entry: String,
    /// The winner's confirmation window; null: the sale has no confirmation step.
    pub winner_confirm_ms: Option<u64>,
    /// The winner's confirmation of a sold auction: `pending`, `confirmed`, `lapsed` or
    /// `defaulted`; null when there is none.
    pub confirmation: Option<String>,
    /// Until when a pending confirmation may be given.
    pub confirmation_deadline_ms: Option<u64>,
    /// How many sealed quotes were submitted (`cap_mode` `sealed_bid`; 0 otherwise). The
    /// amounts are in the result once the window has closed.
    pub sealed_quotes_count: u64,
    /// The second quantity of `cap_mode` `secondary`; null for the other modes.
    pub secondary: Option<SecondaryView>,
    /// Whether the auction accepts signed bids only (docs/RULES.md, "Signed bids").
    pub require_signed_bids: bool,
}

/// The second quantity bid on in `secondary_bidding`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecondaryView {
    pub label: String,
    pub unit: String,
    /// The highest secondary bid; null before the first.
    pub current: Option<u64>,
    pub leading_bidder_number: Option<u32>,
    /// The lowest secondary amount the next bid may carry, while secondary bidding is on.
    pub minimum_next: Option<u64>,
}

/// One accepted secondary bid, as the auction's event stream sends it (`secondary_bid`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecondaryBidView {
    /// The bid's place among the auction's secondary bids, from 1.
    pub secondary_seq: u64,
    pub bidder_number: u32,
    pub secondary_amount: u64,
    pub accepted_at_ms: u64,
}

impl SecondaryBidView {
    /// The auction's secondary bids numbered `after_seq + 1` on, oldest first.
    pub fn after(auction: &Auction, after_seq: u64) -> Vec<SecondaryBidView> {
        auction
            .sale
            .secondary_bids
            .iter()
            .filter(|bid| bid.seq > after_seq)
            .map(SecondaryBidView::of)
            .collect()
    }

    pub fn of(bid: &gavel_kernel::sale::SecondaryBid) -> SecondaryBidView {
        SecondaryBidView {
            secondary_seq: bid.seq,
            bidder_number: bid.bidder_number,
            secondary_amount: bid.amount,
            accepted_at_ms: bid.accepted_at_ms,
        }
    }
}

impl SecondaryView {
    fn of(auction: &Auction) -> Option<SecondaryView> {
        let spec = gavel_kernel::secondary::spec(auction)?;
        let current = gavel_kernel::secondary::current(auction);
        let bidding = auction.phase == gavel_kernel::Phase::SecondaryBidding;
        Some(SecondaryView {
            label: spec.label.clone(),
            unit: spec.unit.clone(),
            current: current.map(|bid| bid.amount),
            leading_bidder_number: current.map(|bid| bid.bidder_number),
            minimum_next: bidding
                .then(|| gavel_kernel::secondary::minimum_next(auction))
                .flatten(),
        })
    }
}

/// A drawn lottery, as anyone re-draws it (`kernel::lottery` documents the draw).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LotteryView {
    /// `commit_reveal`; `splitmix64` for a draw made before seeds were committed.
    pub rule: String,
    /// `commit_reveal`: the seed's 32 bytes as 64 hex digits. `splitmix64`: the seed as a
    /// decimal integer.
    pub seed: String,
    /// SHA-256 of the seed's 32 bytes, 64 hex digits, as published when the auction
    /// entered `capped`; null for `splitmix64`.
    pub commitment: Option<String>,
    /// In the order the draw indexes: confirmation (log) order for `commit_reveal`,
    /// ascending bidder numbers for `splitmix64`.
    pub entrants: Vec<LotteryEntrantView>,
    pub drawn_index: u64,
}

/// One entrant of a lottery: a confirmed bidder's number and the nonce they gave
/// (empty: none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LotteryEntrantView {
    pub bidder_number: u32,
    pub nonce: String,
}

use gavel_kernel::sale_result::{LotteryResult, SaleResult, COMMIT_REVEAL, SPLITMIX64};

impl From<&Lottery> for LotteryView {
    fn from(lottery: &Lottery) -> Self {
        LotteryView::from(LotteryResult::from(lottery))
    }
}

impl From<LotteryResult> for LotteryView {
    fn from(lottery: LotteryResult) -> Self {
        LotteryView {
            rule: lottery.rule,
            seed: lottery.seed,
            commitment: lottery.commitment,
            entrants: lottery
                .entrants
                .into_iter()
                .map(|entrant| LotteryEntrantView {
                    bidder_number: entrant.bidder_number,
                    nonce: entrant.nonce,
                })
                .collect(),
            drawn_index: lottery.drawn_index,
        }
    }
}

impl LotteryView {
    /// The kernel's lottery this view publishes, for a re-draw; what cannot be read is
    /// named.
    pub fn to_lottery(&self) -> Result<Lottery, String> {
        match self.rule.as_str() {
            SPLITMIX64 => Ok(Lottery::SplitMix64 {
                seed: self
                    .seed
                    .parse()
                    .map_err(|_| format!("the seed {:?} is not an integer", self.seed))?,
                entrants: self.entrants.iter().map(|e| e.bidder_number).collect(),
                drawn_index: self.drawn_index,
            }),
            COMMIT_REVEAL => {
                let commitment = self
                    .commitment
                    .as_deref()
                    .ok_or("the lottery has no commitment")?;
                Ok(Lottery::CommitReveal(CommitReveal {
                    seed: hex_32("seed", &self.seed)?,
                    commitment: hex_32("commitment", commitment)?,
                    entrants: self
                        .entrants
                        .iter()
                        .map(|entrant| LotteryEntrant {
                            bidder_number: entrant.bidder_number,
                            nonce: entrant.nonce.clone(),
                        })
                        .collect(),
                    drawn_index: self.drawn_index,
                }))
            }
            other => Err(format!("unknown lottery rule {other:?}")),
        }
    }
}

/// 32 bytes from 64 hex digits.
pub fn hex_32(field: &str, text: &str) -> Result<Bytes32, String> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes)
        .map_err(|_| format!("the {field} {text:?} is not 64 hex digits"))?;
    Ok(bytes)
}

/// The lowest bid the auction takes next, while it takes price bids.
fn minimum_next_bid(auction: &Auction) -> Option<u64> {
    let open = matches!(
        auction.phase,
        gavel_kernel::Phase::Listing | gavel_kernel::Phase::TimedBidding
    );
    open.then(|| gavel_kernel::bidding::minimum_next_bid(auction).ok())
        .flatten()
}

impl AuctionView {
    pub fn new(auction: &Auction, server_time_ms: u64) -> Self {
        let rules = &auction.sale.rules;
        let confirmation = auction.sale.confirmation.as_ref();
        AuctionView {
            id: auction.spec.id.clone(),
            title: auction.spec.title.clone(),
            phase: auction.phase.as_str().to_string(),
            start_price: auction.spec.start_price,
            increment: auction.increment,
            increment_rule: match auction.spec.increment_rule {
                gavel_kernel::IncrementRule::Multiple => "multiple",
                gavel_kernel::IncrementRule::AtLeast => "at_least",
            }
            .to_string(),
            price_cap: auction.spec.price_cap,
            current_price: auction.current_price(),
            leading_bidder_number: auction.highest_bid().map(|bid| bid.bidder_number),
            minimum_next_bid: minimum_next_bid(auction),
            bid_count: auction.bids.len() as u64,
            listing_opens_at_ms: auction.spec.listing_opens_at_ms,
            listing_closes_at_ms: auction.spec.listing_closes_at_ms,
            deadline_ms: auction.deadline_ms,
            countdown_ms: auction.spec.countdown_ms,
            winner_bidder_number: auction.winner.as_ref().map(|winner| winner.bidder_number),
            lottery_commitment: auction.lottery_commitment.map(hex::encode),
            lottery: auction
                .winner
                .as_ref()
                .and_then(|winner| winner.lottery.as_ref())
                .map(LotteryView::from),
            parcel: serde_json::from_str(&auction.spec.parcel_json)
                .unwrap_or(serde_json::Value::Null),
            server_time_ms,
            cap_mode: rules.cap_mode.as_str().to_string(),
            deposit: rules.deposit,
            timed_bidding_entry: rules.timed_bidding_entry.as_str().to_string(),
            winner_confirm_ms: rules.winner_confirm_ms,
            confirmation: confirmation.map(|c| c.status.as_str().to_string()),
            confirmation_deadline_ms: confirmation.map(|c| c.deadline_ms),
            sealed_quotes_count: auction.sale.sealed_quotes.len() as u64,
            secondary: SecondaryView::of(auction),
            require_signed_bids: rules.require_signed_bids,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuctionList {
    pub auctions: Vec<AuctionView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BidView {
    pub seq: u64,
    pub bidder_number: u32,
    pub amount: u64,
    pub accepted_at_ms: u64,
    /// Placed by the bidder's proxy (docs/RULES.md, "Proxy bidding").
    pub proxy: bool,
    /// Void: its bidder won another auction of the exclusive group; kept in the history,
    /// not counted for price, leader or winner.
    pub void: bool,
}

impl BidView {
    /// The view of `bid`, a bid of `auction`.
    pub fn of(auction: &Auction, bid: &BidRecord) -> Self {
        BidMarks::from_seq(auction, bid.seq).view(bid)
    }
}

/// A live `bid` event of an auction's stream (docs/API.md, "Events"): the bid, and what
/// the page shows that it changed, so that one frame carries a bid instead of a bid and
/// a whole AuctionView. The rest of the view changes only with a phase, a rule or an
/// operator's action, which send the full `auction` view.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveBidView {
    #[serde(flatten)]
    pub bid: BidView,
    pub phase: &'static str,
    pub current_price: Option<u64>,
    pub leading_bidder_number: Option<u32>,
    pub minimum_next_bid: Option<u64>,
    pub bid_count: u64,
    pub deadline_ms: Option<u64>,
    pub server_time_ms: u64,
}

impl LiveBidView {
    /// The event of `bid`, a bid of `auction`, with the auction as it stands now.
    pub fn of(auction: &Auction, bid: &BidRecord, server_time_ms: u64) -> Self {
        LiveBidView {
            bid: BidView::of(auction, bid),
            phase: auction.phase.as_str(),
            current_price: auction.current_price(),
            leading_bidder_number: auction.highest_bid().map(|bid| bid.bidder_number),
            minimum_next_bid: minimum_next_bid(auction),
            bid_count: auction.bids.len() as u64,
            deadline_ms: auction.deadline_ms,
            server_time_ms,
        }
    }
}

/// Which bids of an auction a proxy placed and which are void, copied out of the state
/// (for the seqs from `first_seq` on, or all of them) to build bid views after its lock
/// is released.
#[derive(Debug, Clone, Default)]
pub struct BidMarks {
    proxy: std::collections::BTreeSet<u64>,
    void: std::collections::BTreeSet<u64>,
}

impl BidMarks {
    pub fn of(auction: &Auction) -> Self {
        BidMarks::from_seq(auction, 0)
    }

    /// The marks of the bids numbered `first_seq` or more.
    pub fn from_seq(auction: &Auction, first_seq: u64) -> Self {
        let sale = &auction.sale;
        BidMarks {
            proxy: sale
                .proxy_bids
                .range(first_seq..)
                .map(|(seq, _)| *seq)
                .collect(),
            void: sale.voided.range(first_seq..).copied().collect(),
        }
    }

    /// The marked seqs among `seqs`: what a rendering of those bids depends on.
    pub fn marked_in(&self, seqs: std::ops::RangeInclusive<u64>) -> MarkedSeqs {
        MarkedSeqs {
            proxy: self.proxy.range(seqs.clone()).copied().collect(),
            void: self.void.range(seqs).copied().collect(),
        }
    }

    /// Marks that void `seqs` and nothing else.
    #[cfg(test)]
    pub fn voiding(seqs: impl IntoIterator<Item = u64>) -> Self {
        BidMarks {
            proxy: Default::default(),
            void: seqs.into_iter().collect(),
        }
    }

    pub fn view(&self, bid: &BidRecord) -> BidView {
        BidView {
            seq: bid.seq,
            bidder_number: bid.bidder_number,
            amount: bid.amount,
            accepted_at_ms: bid.accepted_at_ms,
            proxy: self.proxy.contains(&bid.seq),
            void: self.void.contains(&bid.seq),
        }
    }
}

/// The proxy-placed and void seqs among some bids (`BidMarks::marked_in`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedSeqs {
    proxy: Vec<u64>,
    void: Vec<u64>,
}

/// The caller's own proxy maximum (docs/RULES.md, "Proxy bidding"), and when it was just
/// set, the receipt of the bid its proxy placed for the caller at once, if any.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProxyView {
    pub max_amount: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bid: Option<BidReceipt>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BidList {
    pub bids: Vec<BidView>,
    /// When more bids follow the last one listed (a page cut at `limit`), the
    /// `after_seq` that asks for the next page; null when the list reaches the newest bid.
    pub next_after_seq: Option<u64>,
}

/// The receipt of an accepted bid, signed by the cluster's receipt key
/// (`crate::receipts`; docs/API.md, Bid receipts).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BidReceipt {
    pub bid_id: String,
    pub seq: u64,
    pub auction_id: String,
    pub amount: u64,
    pub accepted_at_ms: u64,
    pub auction: AuctionView,
    /// The bid record's hash in its auction's hash chain (hex SHA-256), read from the
    /// record the receipt's AuctionView comes from; absent, with `receipt_signature`,
    /// only if that record lacked the bid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_hash: Option<String>,
    /// Base64 Ed25519 signature, by the key `GET /api/v1/receipt-key` shows, of
    /// `gavel-receipt\n{auction_id}\n{seq}\n{amount}\n{accepted_at_ms}\n{chain_hash}`, or,
    /// with `receipt_batch`, of the batch text its proof leads to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_signature: Option<String>,
    /// Present when the receipt was signed together with others answered at the same
    /// moment: its place among them and its Merkle inclusion proof (docs/API.md, Bid
    /// receipts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_batch: Option<crate::receipts::ReceiptBatch>,
}

impl BidReceipt {
    /// The receipt's answer, with its signature when `chain_hash`, the bid record's hash,
    /// is known (and so was signed).
    pub fn new(
        receipt: &Receipt,
        auction: AuctionView,
        chain_hash: Option<String>,
        signed: Option<crate::receipts::ReceiptSignature>,
    ) -> Self {
        let (receipt_signature, receipt_batch) = match signed {
            Some(signed) => (Some(signed.signature), signed.batch),
            None => (None, None),
        };
        BidReceipt {
            bid_id: receipt.bid_id.clone(),
            seq: receipt.seq,
            auction_id: receipt.auction_id.clone(),
            amount: receipt.amount,
            accepted_at_ms: receipt.accepted_at_ms,
            auction,
            chain_hash,
            receipt_signature,
            receipt_batch,
        }
    }
}

/// The cluster's receipt key (`GET /api/v1/receipt-key`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReceiptKeyView {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The public key receipts are signed with now: standard base64 of 32 bytes.
    pub public_key: String,
    /// Public keys receipts were signed with before a rotation
    /// (`security.receipt_key_previous`), newest first as configured; empty when none.
    pub previous: Vec<String>,
}

impl ReceiptKeyView {
    pub fn new(key: &crate::receipts::ReceiptKey) -> Self {
        ReceiptKeyView {
            algorithm: crate::receipts::ALGORITHM.to_string(),
            public_key: key.public_key(),
            previous: key.previous(),
        }
    }
}

/// The answer to an accepted sealed quote: when it was accepted (never its amount).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SealedQuoteView {
    pub accepted_at_ms: u64,
}

/// The receipt of an accepted secondary bid.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecondaryBidReceipt {
    pub auction_id: String,
    /// The bid's place among the auction's secondary bids, from 1.
    pub secondary_seq: u64,
    pub secondary_amount: u64,
    pub accepted_at_ms: u64,
    pub auction: AuctionView,
}

/// What `POST /api/v1/auctions/{id}/bids` answers: a price bid's receipt, or in
/// `secondary_bidding` a secondary bid's.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PlacedBid {
    Price(BidReceipt),
    Secondary(SecondaryBidReceipt),
}

/// The answer to a confirmation in `capped`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfirmationView {
    pub confirmed: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimeView {
    /// The cluster's time: this node's clock corrected by its offset to the voters'
    /// median clock.
    pub server_time_ms: u64,
    pub node_id: u64,
    /// This node's own clock minus the voters' median, as last measured (null until
    /// measured, or on a cluster of one).
    pub clock_offset_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionCreated {
    pub token: String,
    pub bidder_id: String,
    pub expires_at_ms: u64,
}

/// An auction as operators see it: the bidder view plus the reserve price and how many
/// proxy maximums are set (never their amounts).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ControlAuctionView {
    #[serde(flatten)]
    pub auction: AuctionView,
    pub reserve_price: Option<u64>,
    /// How many bidders hold a proxy maximum in this auction now (docs/RULES.md, "Proxy
    /// bidding"); the maximums themselves are shown to their owners only.
    pub proxies_count: u64,
}

impl ControlAuctionView {
    pub fn new(auction: &Auction, server_time_ms: u64) -> Self {
        ControlAuctionView {
            auction: AuctionView::new(auction, server_time_ms),
            reserve_price: auction.spec.reserve_price,
            proxies_count: auction.sale.proxies.len() as u64,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BidderCreated {
    pub bidder_id: String,
    pub name: String,
}

/// A bidder's public key for signed bids, as registered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BidderKeyView {
    pub bidder_id: String,
    /// `ed25519` or `sm2`.
    pub algorithm: String,
    /// Standard base64 of the key's bytes.
    pub public_key: String,
    /// `{algorithm}:` and 16 hex digits; named by the signatures it verified.
    pub key_id: String,
}

/// A bidder's public keys, in the order registered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BidderKeyList {
    pub bidder_id: String,
    pub keys: Vec<BidderKeyView>,
}

/// The answer to the winner's confirmation of a sale.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AcceptanceView {
    /// `confirmed`.
    pub confirmation: String,
}

/// A bidder's deposits for an auction after one was recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DepositView {
    pub bidder_id: String,
    /// Everything recorded for the bidder in this auction, added up.
    pub deposited: u64,
    /// What the auction requires before qualifying (0: no deposit).
    pub required: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QualificationView {
    pub bidder_id: String,
    pub bidder_number: u32,
}

/// The answer of `POST /control/v1/faults/panic`: the fault was sent to the actor.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FaultInjected {
    /// `auction`, `supervisor`, `resource_pool`, `janitor`, `exchange` or `peer_link`.
    pub actor: String,
    /// The auction whose actor panics, for `auction`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auction_id: Option<String>,
    /// The peer whose link panics, for `peer_link`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<u64>,
    pub injected: bool,
}

/// The answer of `POST /control/v1/faults/clock`: the node's clock now runs this far off.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClockFaultInjected {
    pub offset_ms: i64,
    pub injected: bool,
}

/// One accepted bid in the operators' result, with its place in the hash chain.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResultBid {
    pub seq: u64,
    pub bid_id: String,
    pub bidder_id: String,
    pub bidder_number: u32,
    pub amount: u64,
    pub accepted_at_ms: u64,
    pub prev_hash: String,
    pub hash: String,
    /// Present, and true, only for a void bid (docs/RULES.md, "Mutually exclusive
    /// parcels"): kept in the chain, not counted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub void: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResultView {
    pub phase: String,
    pub winner_bidder_id: Option<String>,
    pub winner_bidder_number: Option<u32>,
    pub final_price: Option<u64>,
    pub closed_at_ms: Option<u64>,
    /// SHA-256 of the lottery's seed, published when the auction entered `capped`.
    pub lottery_commitment: Option<String>,
    pub lottery: Option<LotteryView>,
    /// Whether the bid records form an intact hash chain.
    pub chain_verified: bool,
    pub bids: Vec<ResultBid>,
    /// Every bidder's deposits, added up, with their disposition: `held` while the sale
    /// is open, then `applied_to_price` (the winner's), `refund` or `forfeited` (a winner
    /// in default). Absent when the sale took no deposit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deposits: Vec<ResultDeposit>,
    /// The winner's confirmation: `pending`, `confirmed`, `lapsed` or `defaulted`. Absent
    /// when the sale has no confirmation step or no winner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<String>,
    /// `cap_mode` `sealed_bid`, once closed: every sealed quote by ascending bidder
    /// number. Absent while the window is open, or without quotes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sealed_quotes: Vec<ResultQuote>,
    /// `cap_mode` `secondary`: the highest secondary bid. Absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secondary_amount: Option<u64>,
    /// Whether the auction accepted signed bids only (docs/RULES.md, "Signed bids").
    /// Absent when it did not.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_signed_bids: bool,
    /// The signature kept with each signed bid, by seq. Absent when no bid was signed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bid_signatures: Vec<ResultBidSignature>,
    /// While the sale is open: the seqs of bids a proxy placed under a signed maximum,
    /// whose signatures would show the hidden maximum and are listed in `bid_signatures`
    /// once the sale closes. Absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bid_signatures_withheld: Vec<u64>,
}

/// The signature a bid was accepted with: it signs `gavel-bid\n{auction_id}\n{amount}\n{request_id}`
/// under the bidder's key `key_id` — or, for a bid a proxy placed (`proxy_max` present),
/// `gavel-bid\n{auction_id}\nproxy_max={proxy_max}\n{request_id}`, the bidder's signed
/// maximum the bid stays within.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResultBidSignature {
    pub seq: u64,
    pub key_id: String,
    pub request_id: String,
    /// Standard base64.
    pub signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_max: Option<u64>,
}

/// One sealed quote in a result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResultQuote {
    pub bidder_number: u32,
    pub amount: u64,
}

/// A bidder's deposits in a result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResultDeposit {
    pub bidder_id: String,
    pub amount: u64,
    /// `held`, `applied_to_price`, `refund` or `forfeited`.
    pub disposition: String,
}

impl ResultView {
    /// The kernel's result of the auction (`gavel_kernel::sale_result`), as the API shows
    /// it: the same fields, so the same JSON as the exchange outbox's results.
    pub fn new(auction: &Auction) -> Self {
        let mut view = ResultView::from(SaleResult::of(auction));
        view.require_signed_bids = auction.sale.rules.require_signed_bids;
        let open = !auction.phase.is_closed();
        let (withheld, shown): (Vec<_>, Vec<_>) = auction
            .sale
            .bid_signatures
            .iter()
            .partition(|(_, kept)| open && kept.proxy_max.is_some());
        view.bid_signatures_withheld = withheld.into_iter().map(|(seq, _)| *seq).collect();
        view.bid_signatures = shown
            .into_iter()
            .map(|(seq, kept)| ResultBidSignature {
                seq: *seq,
                key_id: kept.key_id.clone(),
                request_id: kept.request_id.clone(),
                signature: kept.signature.clone(),
                proxy_max: kept.proxy_max,
            })
            .collect();
        view
    }
}

impl From<SaleResult> for ResultView {
    fn from(result: SaleResult) -> Self {
        ResultView {
            phase: result.phase,
            winner_bidder_id: result.winner_bidder_id,
            winner_bidder_number: result.winner_bidder_number,
            final_price: result.final_price,
            closed_at_ms: result.closed_at_ms,
            lottery_commitment: result.lottery_commitment,
            lottery: result.lottery.map(LotteryView::from),
            chain_verified: result.chain_verified,
            bids: result
                .bids
                .into_iter()
                .map(|bid| ResultBid {
                    seq: bid.seq,
                    bid_id: bid.bid_id,
                    bidder_id: bid.bidder_id,
                    bidder_number: bid.bidder_number,
                    amount: bid.amount,
                    accepted_at_ms: bid.accepted_at_ms,
                    prev_hash: bid.prev_hash,
                    hash: bid.hash,
                    void: bid.void,
                })
                .collect(),
            deposits: result
                .deposits
                .into_iter()
                .map(|deposit| ResultDeposit {
                    bidder_id: deposit.bidder_id,
                    amount: deposit.amount,
                    disposition: deposit.disposition,
                })
                .collect(),
            confirmation: result.confirmation,
            sealed_quotes: result
                .sealed_quotes
                .into_iter()
                .map(|quote| ResultQuote {
                    bidder_number: quote.bidder_number,
                    amount: quote.amount,
                })
                .collect(),
            secondary_amount: result.secondary_amount,
            require_signed_bids: false,
            bid_signatures: Vec::new(),
            bid_signatures_withheld: Vec::new(),
        }
    }
}

/// A bidder's own standing in one auction (`GET /api/v1/auctions/{id}/me`), read from
/// the node's applied state: what the bidder page shows as "you are bidder N", the
/// deposit, whether a bid would be taken now, and the winner's confirmation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MyAuctionView {
    /// The caller's bidder number in this auction (您的竞买号); null until qualified.
    pub bidder_number: Option<u32>,
    pub qualified: bool,
    /// The deposit the auction requires before qualifying; 0: none.
    pub deposit_required: u64,
    /// The caller's deposits recorded for this auction, added up.
    pub deposited: u64,
    /// Whether the caller holds the highest bid.
    pub leading: bool,
    /// How many accepted bids of the caller the auction holds (void ones included).
    pub bids_placed: u64,
    /// Whether a bid from the caller would pass the checks that do not depend on its
    /// amount, as the state stands.
    pub may_bid: bool,
    /// Why not, when `may_bid` is false: the code a bid would be refused with
    /// (`not_qualified`, `auction_not_open`, `not_eligible`, `already_leading`), or
    /// `deposit_missing` for a bidder not qualified whose deposit falls short.
    pub reason: Option<String>,
    /// Whether the caller won the auction.
    pub winner: bool,
    /// The winner's confirmation of the sale: `pending`, `confirmed`, `lapsed` or
    /// `defaulted`; null when there is none.
    pub confirmation: Option<String>,
}

impl MyAuctionView {
    pub fn new(auction: &Auction, bidder_id: &str) -> Self {
        use gavel_kernel::sale::TimedBiddingEntry;
        use gavel_kernel::Phase;
        let sale = &auction.sale;
        let bidder_number = auction.bidder_number_of(bidder_id);
        let deposit_required = sale.rules.deposit;
        let deposited = sale.deposited_by(bidder_id);
        let leading = auction
            .highest_bid()
            .is_some_and(|bid| bid.bidder_id == bidder_id);
        // The order of the kernel's checks of a bid (`gavel_kernel::bidding::place_bid`).
        let reason = if bidder_number.is_none() {
            Some(if deposited < deposit_required {
                "deposit_missing"
            } else {
                "not_qualified"
            })
        } else if !matches!(auction.phase, Phase::Listing | Phase::TimedBidding) {
            Some("auction_not_open")
        } else if auction.phase == Phase::TimedBidding
            && sale.rules.timed_bidding_entry == TimedBiddingEntry::ListingBidders
            && !sale.listing_bidders.contains(bidder_id)
        {
            Some("not_eligible")
        } else if leading {
            Some("already_leading")
        } else {
            None
        };
        MyAuctionView {
            bidder_number,
            qualified: bidder_number.is_some(),
            deposit_required,
            deposited,
            leading,
            bids_placed: auction
                .bids
                .iter()
                .filter(|bid| bid.bidder_id == bidder_id)
                .count() as u64,
            may_bid: reason.is_none(),
            reason: reason.map(str::to_string),
            winner: auction
                .winner
                .as_ref()
                .is_some_and(|winner| winner.bidder_id == bidder_id),
            confirmation: sale
                .confirmation
                .as_ref()
                .map(|confirmation| confirmation.status.as_str().to_string()),
        }
    }
}

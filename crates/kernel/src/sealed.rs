//! The sealed quote (一次报价), `cap_mode = sealed_bid` (docs/RULES.md, "Sealed quote"):
//! reaching the cap enters `capped` for `sealed_window_ms`, committing to the lottery's
//! seed as every cap entry does (`cap::enter_capped`). In the window each bidder holding a
//! valid bid may submit one quote in `[price_cap, sealed_ceiling]`; no quote is shown
//! before the window closes. At its end `sealed_rule` decides: the highest quote, or the
//! quote nearest the mean of all quotes (integer mean, rounded down; on a tie of distance
//! the lower quote). Bidders tied on the winning amount are drawn by the committed seed
//! (`lottery::draw_index`), the entrants in ascending bidder-number order, each with the
//! empty nonce. No quote: the bidder who reached the cap wins at `price_cap`. The price
//! is the winning quote.

use super::auction::{Auction, Phase, Winner};
use super::closing::close;
use super::command::Outcome;
use super::event::{Event, EventKind};
use super::lottery::{self, CommitReveal, Lottery, LotteryEntrant};
use super::money::{BidderNumber, Money};
use super::rejection::Rejection;
use super::sale::{CapMode, SealedQuote, SealedRule};
use super::signatures::KeptSignature;

/// A quote as a bidder submits it, the session already resolved to `bidder_id`.
pub struct QuoteRequest<'a> {
    pub bidder_id: &'a str,
    pub amount: Money,
    pub request_id: &'a str,
}

/// Whether the auction takes sealed quotes now: `capped` under `cap_mode = sealed_bid`.
pub fn window_open(auction: &Auction) -> bool {
    auction.phase == Phase::Capped && auction.sale.rules.cap_mode == CapMode::SealedBid
}

/// The answer to a quote by a bidder who has quoted: the same request again answers the
/// quote it placed; any other quote is `quote_exists`. `None` for a bidder's first quote.
pub fn replayed(
    auction: &Auction,
    request: &QuoteRequest<'_>,
) -> Option<Result<Outcome, Rejection>> {
    let quote = auction.sale.sealed_quotes.get(request.bidder_id)?;
    Some(
        if quote.request_id == request.request_id && quote.amount == request.amount {
            Ok(Outcome::SealedQuoteAccepted {
                accepted_at_ms: quote.accepted_at_ms,
                replayed: true,
            })
        } else {
            Err(Rejection::QuoteExists)
        },
    )
}

/// Submits a quote in `auction` (already advanced to `now_ms`), with the bidder's
/// signature of it if signed; retries are answered by `replayed`, also here.
pub fn submit(
    auction: &mut Auction,
    now_ms: u64,
    request: &QuoteRequest<'_>,
    signature: Option<KeptSignature>,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    let bidder_number = auction
        .bidder_number_of(request.bidder_id)
        .ok_or(Rejection::NotQualified)?;
    if let Some(answer) = replayed(auction, request) {
        return answer;
    }
    // An exclusive group's winner elsewhere quotes no more (their quote went with it).
    if auction.sale.excluded.contains(request.bidder_id) {
        return Err(Rejection::ExcludedByGroup);
    }
    if !window_open(auction) {
        return Err(Rejection::AuctionNotOpen {
            phase: auction.phase.as_str().to_string(),
        });
    }
    if !auction
        .counted_bids()
        .any(|bid| bid.bidder_id == request.bidder_id)
    {
        return Err(Rejection::NoValidBid);
    }
    let (minimum, maximum) = range(auction);
    if request.amount < minimum || request.amount > maximum {
        return Err(Rejection::OutOfRange { minimum, maximum });
    }
    auction.sale.sealed_quotes.insert(
        request.bidder_id.to_string(),
        SealedQuote {
            amount: request.amount,
            accepted_at_ms: now_ms,
            request_id: request.request_id.to_string(),
            signature,
        },
    );
    // The audit trail names who quoted, never the amount, until the window closes.
    auction.record(
        now_ms,
        request.bidder_id,
        "sealed_quote",
        format!("bidder number {bidder_number}"),
    );
    events.push(Event {
        auction_id: auction.spec.id.clone(),
        kind: EventKind::SealedQuote,
    });
    Ok(Outcome::SealedQuoteAccepted {
        accepted_at_ms: now_ms,
        replayed: false,
    })
}

/// The quotes an auction accepts: `[price_cap, sealed_ceiling]`.
pub fn range(auction: &Auction) -> (Money, Money) {
    let minimum = auction.spec.price_cap.unwrap_or(0);
    let maximum = auction.sale.rules.sealed_ceiling.unwrap_or(minimum);
    (minimum, maximum)
}

/// The winning amount among `amounts` under `rule`; none when there is no quote.
pub fn winning_amount(rule: SealedRule, amounts: &[Money]) -> Option<Money> {
    match rule {
        SealedRule::Highest => amounts.iter().copied().max(),
        SealedRule::ClosestToAverage => {
            if amounts.is_empty() {
                return None;
            }
            let sum: u128 = amounts.iter().map(|&amount| u128::from(amount)).sum();
            // The mean of amounts that each fit in a u64 fits in a u64.
            let mean = (sum / amounts.len() as u128) as u64;
            amounts
                .iter()
                .copied()
                .min_by_key(|&amount| (amount.abs_diff(mean), amount))
        }
    }
}

/// What the quotes decide: the winning amount and the bidders who quoted it, by
/// ascending bidder number (the order a draw among them indexes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub amount: Money,
    pub tied: Vec<(BidderNumber, String)>,
}

/// The decision of the auction's quotes; none when there is no quote.
pub fn decide(auction: &Auction) -> Option<Decision> {
    let quotes = &auction.sale.sealed_quotes;
    let amounts: Vec<Money> = quotes.values().map(|quote| quote.amount).collect();
    let amount = winning_amount(auction.sale.rules.sealed_rule(), &amounts)?;
    let mut tied: Vec<(BidderNumber, String)> = quotes
        .iter()
        .filter(|(_, quote)| quote.amount == amount)
        .filter_map(|(bidder_id, _)| {
            Some((auction.bidder_number_of(bidder_id)?, bidder_id.clone()))
        })
        .collect();
    tied.sort();
    Some(Decision { amount, tied })
}

/// The winner the quotes give: the one bidder who quoted the winning amount, or the one
/// the committed seed draws among several; with no quote, the bidder who reached the cap
/// at `price_cap`.
fn winner(auction: &Auction) -> Option<Winner> {
    let Some(decision) = decide(auction) else {
        let cap_bid = auction.highest_bid()?;
        return Some(Winner {
            bidder_id: cap_bid.bidder_id.clone(),
            bidder_number: cap_bid.bidder_number,
            price: auction.spec.price_cap.unwrap_or(cap_bid.amount),
            lottery: None,
        });
    };
    if let [(bidder_number, bidder_id)] = decision.tied.as_slice() {
        return Some(Winner {
            bidder_id: bidder_id.clone(),
            bidder_number: *bidder_number,
            price: decision.amount,
            lottery: None,
        });
    }
    // Every auction that enters `capped` commits to a seed first.
    let seed = auction.lottery_secret.seed?;
    let entrants: Vec<LotteryEntrant> = decision
        .tied
        .iter()
        .map(|(bidder_number, _)| LotteryEntrant {
            bidder_number: *bidder_number,
            nonce: String::new(),
        })
        .collect();
    let drawn_index = lottery::draw_index(&auction.spec.id, &seed, &entrants);
    let (bidder_number, bidder_id) = decision.tied.get(drawn_index as usize)?.clone();
    Some(Winner {
        bidder_id,
        bidder_number,
        price: decision.amount,
        lottery: Some(Lottery::CommitReveal(CommitReveal {
            seed,
            commitment: lottery::commitment(&seed),
            entrants,
            drawn_index,
        })),
    })
}

/// Closes a sealed-quote auction at the end of its window with the winner its quotes
/// decide.
pub fn close_window(auction: &mut Auction, closed_at_ms: u64, events: &mut Vec<Event>) {
    let winner = winner(auction);
    let decided = match decide(auction) {
        Some(decision) => format!(
            "{} quotes, rule {:?}: winning quote {} by {} bidder(s)",
            auction.sale.sealed_quotes.len(),
            auction.sale.rules.sealed_rule(),
            decision.amount,
            decision.tied.len()
        ),
        None => "no quote: the cap bidder wins at the cap".to_string(),
    };
    auction.record(closed_at_ms, "system", "sealed_decided", decided);
    close(auction, closed_at_ms, winner, events);
}

/// The sealed-quote invariant: the winner's price is the winning quote of the rule, the
/// winner quoted it (drawn among the tied when several did), and with no quote the cap
/// bidder won at the cap. Answers what does not hold.
pub fn check_winner(auction: &Auction, winner: &Winner) -> Result<(), String> {
    let Some(decision) = decide(auction) else {
        let cap_bidder = auction.highest_bid().map(|bid| bid.bidder_id.as_str());
        let cap_price = auction.spec.price_cap.or(auction.current_price());
        return if cap_bidder == Some(winner.bidder_id.as_str()) && Some(winner.price) == cap_price {
            Ok(())
        } else {
            Err("with no sealed quote, the winner is not the cap bidder at the cap".to_string())
        };
    };
    if winner.price != decision.amount {
        return Err(format!(
            "the winner's price {} is not the winning quote {}",
            winner.price, decision.amount
        ));
    }
    let quoted = auction.sale.sealed_quotes.get(&winner.bidder_id);
    if quoted.map(|quote| quote.amount) != Some(winner.price) {
        return Err("the winner did not quote the winning amount".to_string());
    }
    let tied_numbers: Vec<BidderNumber> = decision.tied.iter().map(|(number, _)| *number).collect();
    match (&winner.lottery, tied_numbers.len()) {
        (None, 1) => Ok(()),
        (Some(lottery), count) if count > 1 && lottery.entrant_numbers() == tied_numbers => Ok(()),
        _ => Err("the draw among tied quotes is not over the tied bidders".to_string()),
    }
}

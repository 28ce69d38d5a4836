//! A bidder's own view of one auction (docs/API.md, Public listener): `GET
//! /api/v1/auctions/{id}/me`, what the bidder page shows beside the auction's public view
//! (the caller's bidder number, deposit, whether a bid would be taken, the winner's
//! confirmation). Read from this node's applied state; the session too, so a token that
//! this node has not applied yet answers 401 like one that has ended.

use actix_web::{get, web, HttpRequest};

use super::auth::session_token_hash;
use super::problem::Problem;
use super::AppState;
use crate::actors::wall_clock_ms;
use crate::model::error::ApiError;
use crate::model::views::MyAuctionView;

/// The caller's standing in an auction: bidder number, deposit, leading, whether a bid
/// would be taken now (and why not), winner and confirmation.
#[utoipa::path(tag = "public", params(("id" = String, Path, description = "auction id")), responses(
    (status = 200, body = MyAuctionView),
    (status = 401, description = "unauthenticated: no token, or no live session for it on this node", body = Problem),
    (status = 404, description = "auction_not_found", body = Problem),
    (status = 503, description = "unavailable: archived, and this node is still fetching its record from its peers", body = Problem)),
    security(("session" = [])))]
#[get("/api/v1/auctions/{id}/me")]
pub(super) async fn my_auction(
    app: web::Data<AppState>,
    path: web::Path<String>,
    request: HttpRequest,
) -> Result<web::Json<MyAuctionView>, ApiError> {
    let token_hash = session_token_hash(&request)?;
    let bidder_id = app
        .state
        .read()
        .kernel
        .session_bidder(&token_hash, wall_clock_ms())
        .map(str::to_string)
        .ok_or(ApiError::Unauthenticated)?;
    let view = app.read_auction(path.as_str(), |auction| {
        MyAuctionView::new(auction, &bidder_id)
    })?;
    Ok(web::Json(view))
}

#[cfg(test)]
mod tests {
    use gavel_kernel::auction::Winner;
    use gavel_kernel::sale::{
        ConfirmationStatus, Deposit, SaleRules, TimedBiddingEntry, WinnerConfirmation,
    };
    use gavel_kernel::{Auction, AuctionSpec, BidRecord, Phase};

    use crate::model::views::MyAuctionView;

    fn auction(rules: SaleRules) -> Auction {
        let mut auction = Auction::with_rules(AuctionSpec::example("parcel"), rules);
        auction.phase = Phase::Listing;
        auction
    }

    fn bid(auction: &mut Auction, bidder_id: &str, amount: u64) {
        let bidder_number = auction.bidder_number_of(bidder_id).expect("qualified");
        let seq = auction.bids.len() as u64 + 1;
        auction.bids.push_back(BidRecord {
            seq,
            bid_id: format!("b{seq}"),
            bidder_id: bidder_id.to_string(),
            bidder_number,
            amount,
            accepted_at_ms: seq,
            prev_hash: String::new(),
            hash: String::new(),
        });
    }

    fn reason(view: &MyAuctionView) -> Option<&str> {
        view.reason.as_deref()
    }

    #[test]
    fn a_bidder_without_the_deposit_is_told_so_and_one_with_it_may_bid() {
        let mut auction = auction(SaleRules {
            deposit: 500,
            ..SaleRules::default()
        });
        let deposit = |amount| Deposit {
            bidder_id: "alice".to_string(),
            amount,
            recorded_at_ms: 1,
        };
        auction.sale.add_deposit("r1", deposit(200));
        let short = MyAuctionView::new(&auction, "alice");
        assert_eq!((short.deposit_required, short.deposited), (500, 200));
        assert_eq!((short.qualified, short.bidder_number), (false, None));
        assert_eq!(reason(&short), Some("deposit_missing"));
        assert!(!short.may_bid);

        auction.sale.add_deposit("r2", deposit(300));
        assert_eq!(
            reason(&MyAuctionView::new(&auction, "alice")),
            Some("not_qualified")
        );
        auction.qualified.insert("alice".to_string(), 7);
        let qualified = MyAuctionView::new(&auction, "alice");
        assert_eq!(qualified.bidder_number, Some(7));
        assert!(qualified.qualified && qualified.may_bid, "{qualified:?}");
        assert_eq!(reason(&qualified), None);
    }

    #[test]
    fn leading_timed_bidding_entry_and_closed_phases_are_reasons_not_to_bid() {
        let mut auction = auction(SaleRules {
            timed_bidding_entry: TimedBiddingEntry::ListingBidders,
            ..SaleRules::default()
        });
        auction.qualified.insert("alice".to_string(), 1);
        auction.qualified.insert("bob".to_string(), 2);
        bid(&mut auction, "alice", 1000);
        auction.sale.listing_bidders.insert("alice".to_string());
        let alice = MyAuctionView::new(&auction, "alice");
        assert!(alice.leading && !alice.may_bid);
        assert_eq!(reason(&alice), Some("already_leading"));
        let bob = MyAuctionView::new(&auction, "bob");
        assert!(!bob.leading && bob.may_bid, "{bob:?}");

        auction.phase = Phase::TimedBidding;
        assert_eq!(
            reason(&MyAuctionView::new(&auction, "bob")),
            Some("not_eligible")
        );
        auction.phase = Phase::Suspended;
        assert_eq!(
            reason(&MyAuctionView::new(&auction, "bob")),
            Some("auction_not_open")
        );
    }

    #[test]
    fn the_winner_sees_the_confirmation_and_the_others_see_they_did_not_win() {
        let mut auction = auction(SaleRules {
            winner_confirm_ms: Some(60_000),
            ..SaleRules::default()
        });
        auction.qualified.insert("alice".to_string(), 1);
        auction.qualified.insert("bob".to_string(), 2);
        bid(&mut auction, "alice", 1000);
        auction.phase = Phase::Sold;
        auction.winner = Some(Winner {
            bidder_id: "alice".to_string(),
            bidder_number: 1,
            price: 1000,
            lottery: None,
        });
        auction.sale.confirmation = Some(WinnerConfirmation {
            status: ConfirmationStatus::Pending,
            deadline_ms: 90_000,
            changed_at_ms: 30_000,
        });
        let alice = MyAuctionView::new(&auction, "alice");
        assert!(alice.winner && alice.leading);
        assert_eq!(alice.confirmation.as_deref(), Some("pending"));
        assert_eq!(reason(&alice), Some("auction_not_open"));
        let bob = MyAuctionView::new(&auction, "bob");
        assert!(!bob.winner && !bob.leading);
        assert_eq!(bob.confirmation.as_deref(), Some("pending"));
        assert_eq!(bob.deposit_required, 0);
    }
}

//! The winner's confirmation (docs/RULES.md, "Winner's confirmation"): with
//! `winner_confirm_ms`, a sale closes `sold` with its confirmation `pending`; the winner
//! confirms within the window (`confirmed`), else it becomes `lapsed` at the window's end
//! (applied by the first command after it, the auction's timer proposes one), and an
//! operator may then declare the winner in default (`defaulted`: the deposit is
//! forfeited). Every step is in the audit trail, and each change after the close is a
//! `Settled` event (the exchange outbox spools the result again).

use super::auction::{Auction, Phase};
use super::closing::event;
use super::command::Outcome;
use super::event::{Event, EventKind};
use super::rejection::Rejection;
use super::sale::{ConfirmationStatus, WinnerConfirmation};

/// Opens the confirmation window of an auction that just closed `sold` at
/// `closed_at_ms`, if its rules have one.
pub fn open_window(auction: &mut Auction, closed_at_ms: u64) {
    let Some(window_ms) = auction.sale.rules.winner_confirm_ms else {
        return;
    };
    if auction.phase != Phase::Sold {
        return;
    }
    let deadline_ms = closed_at_ms.saturating_add(window_ms);
    auction.sale.confirmation = Some(WinnerConfirmation {
        status: ConfirmationStatus::Pending,
        deadline_ms,
        changed_at_ms: closed_at_ms,
    });
    auction.record(
        closed_at_ms,
        "system",
        "confirmation_pending",
        format!("the winner may confirm until {deadline_ms}"),
    );
}

/// Marks a pending confirmation whose window ended before `now_ms` as lapsed.
pub fn lapse_if_due(auction: &mut Auction, now_ms: u64, events: &mut Vec<Event>) {
    let Some(confirmation) = auction.sale.confirmation.as_mut() else {
        return;
    };
    if confirmation.status != ConfirmationStatus::Pending || now_ms <= confirmation.deadline_ms {
        return;
    }
    let lapsed_at_ms = confirmation.deadline_ms;
    confirmation.status = ConfirmationStatus::Lapsed;
    confirmation.changed_at_ms = lapsed_at_ms;
    auction.record(
        lapsed_at_ms,
        "system",
        "confirmation_lapsed",
        "the winner did not confirm in time".to_string(),
    );
    events.push(event(auction, EventKind::Settled));
}

/// The winner `bidder_id` confirms the sale at `now_ms` (the auction already advanced).
pub fn accept(
    auction: &mut Auction,
    now_ms: u64,
    bidder_id: &str,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    let winner = auction
        .winner
        .as_ref()
        .map(|winner| winner.bidder_id.as_str());
    if auction.phase != Phase::Sold || winner != Some(bidder_id) {
        return Err(Rejection::NotWinner);
    }
    let Some(confirmation) = auction.sale.confirmation.as_mut() else {
        return Err(Rejection::ConfirmationClosed {
            status: "none".to_string(),
        });
    };
    match confirmation.status {
        ConfirmationStatus::Confirmed => return Ok(Outcome::SaleAccepted { replayed: true }),
        ConfirmationStatus::Pending => {}
        other => {
            return Err(Rejection::ConfirmationClosed {
                status: other.as_str().to_string(),
            })
        }
    }
    confirmation.status = ConfirmationStatus::Confirmed;
    confirmation.changed_at_ms = now_ms;
    auction.record(now_ms, bidder_id, "confirmed", String::new());
    events.push(event(auction, EventKind::Settled));
    Ok(Outcome::SaleAccepted { replayed: false })
}

/// An operator declares the winner of a lapsed sale in default.
pub fn default_winner(
    auction: &mut Auction,
    now_ms: u64,
    actor: &str,
    reason: &str,
    events: &mut Vec<Event>,
) -> Result<Outcome, Rejection> {
    let status = auction
        .sale
        .confirmation
        .as_ref()
        .map_or("none", |confirmation| confirmation.status.as_str());
    if status != ConfirmationStatus::Lapsed.as_str() {
        return Err(Rejection::Conflict(format!(
            "only a lapsed sale's winner may be declared in default (confirmation: {status})"
        )));
    }
    if let Some(confirmation) = auction.sale.confirmation.as_mut() {
        confirmation.status = ConfirmationStatus::Defaulted;
        confirmation.changed_at_ms = now_ms;
    }
    auction.record(now_ms, actor, "defaulted", reason.to_string());
    events.push(event(auction, EventKind::Settled));
    Ok(Outcome::WinnerDefaulted)
}

//! The two numbers every other module names: amounts of money and bidder numbers.

/// An amount in the smallest currency unit. Never a float; arithmetic is checked.
pub type Money = u64;
/// The number a qualification gives a bidder in one auction; the only identity bidders see.
pub type BidderNumber = u32;

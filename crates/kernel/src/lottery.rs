//! The capped lottery (摇号) as a commit–reveal that anyone can check afterwards.
//!
//! # What happens
//! 1. **Seed.** Every auction keeps a secret 32-byte pool that the leaders' random
//!    envelope seeds are mixed into: at creation, at each qualification and at each
//!    accepted bid. When the auction enters `capped`, the seed of that envelope is mixed in
//!    too and the lottery seed is drawn from the pool:
//!    `seed = SHA-256("gavel-lottery-seed\n" ‖ pool)`. Each envelope seed is 64 random
//!    bits; the pool gathers them so the seed is out of reach of a brute-force search of
//!    its commitment (at least two envelopes, creation and the capping one, feed it).
//! 2. **Commit.** Entering `capped` publishes only `commitment = SHA-256(seed)` (the 32
//!    seed bytes as they are), as `lottery_commitment` in the auction views and the
//!    `capped` line of the audit trail.
//! 3. **Confirm.** A bidder holding a valid bid confirms, optionally with a `nonce` of
//!    their own (at most 64 characters of `A-Z a-z 0-9 _ -`; none is the empty string).
//!    Confirmations are kept in log order; the first one of a bidder stands.
//! 4. **Draw.** When the confirm window ends, the draw is the SHA-256 of this text, with
//!    `\n` ending every line, the last included:
//!    ```text
//!    gavel-lottery
//!    {auction_id}
//!    {seed as 64 lowercase hex digits}
//!    {bidder_number}:{nonce}        one line per confirmation, in log order
//!    ```
//!    The first 8 bytes of that digest, read as a big-endian unsigned integer, modulo the
//!    number of entrants, is the index of the winner among the entrants in that same
//!    order. The modulo's bias is below `entrants / 2^64`, at most 9000 / 2^64 ≈ 5·10⁻¹⁶
//!    (an auction hands out at most 9000 bidder numbers): no one can tell it from uniform.
//! 5. **Reveal.** The result publishes the seed, the commitment, the entrants with their
//!    nonces and the drawn index. Anyone re-draws it: SHA-256 of the seed's bytes must be
//!    the commitment published at cap entry, and the digest above must give the index.
//!    `gavel ctl audit verify` does both for every auction, and so does the kernel's
//!    invariant check after every command (`invariants::lottery_redraws`).
//!
//! # What it guarantees, and what not
//! - The leader cannot change the seed after cap entry: the commitment binds it, and
//!   every replica applies the same log.
//! - The seed is chosen before any confirmation exists, and the draw depends on every
//!   entrant's number and nonce in log order: a seed cannot be picked to favour a bidder
//!   whose nonce is not yet known, and a bidder who gives a random nonce (say 32 hex
//!   digits) makes the draw unpredictable to anyone who does not learn that nonce first.
//! - Bidders see nothing of the seed before the draw: views, events, control reads and
//!   logs show only the commitment.
//! - It is not secret from the cluster itself: every replica holds the seed in its state,
//!   and anyone with a node's disk, a backup, or the Raft log can read it, and with it
//!   every nonce confirmed so far. Such a party could predict the draw, and a leader that
//!   refused or delayed confirmations could steer it. The commit–reveal makes any change
//!   of seed, entrants, nonces or winner after the fact detectable; it does not make a
//!   dishonest operator harmless before the draw.
//!
//! Lotteries drawn before the commit–reveal (`Lottery::SplitMix64`) are kept as drawn:
//! `splitmix64(seed) % entrants` over the entrants' numbers in ascending order, with the
//! seed of the entry that closed the confirm window. An auction that was already `capped`
//! when its nodes learned the commit–reveal has no committed seed and is drawn that way.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::rejection::Rejection;
use super::types::BidderNumber;

/// Longest nonce a confirmation may carry.
pub const MAX_NONCE_LEN: usize = 64;

/// 32 bytes: a pool, a seed or a commitment.
pub type Bytes32 = [u8; 32];

/// One confirmation in `capped`: who confirmed, with the nonce they gave (empty: none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub bidder_id: String,
    pub nonce: String,
}

/// The lottery's secret inputs. Shown to no one while the auction is open (the replica
/// read redacts it); the seed is published with the draw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotterySecret {
    /// Envelope seeds mixed so far; all zeros until the auction's creation fills it.
    pub pool: Bytes32,
    /// The seed drawn when the auction entered `capped`.
    pub seed: Option<Bytes32>,
}

/// One entrant of a commit–reveal draw: a confirmed bidder's number and nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotteryEntrant {
    pub bidder_number: BidderNumber,
    pub nonce: String,
}

/// A commit–reveal draw, as published with the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitReveal {
    pub seed: Bytes32,
    /// SHA-256 of `seed`, as published when the auction entered `capped`.
    pub commitment: Bytes32,
    /// In confirmation (log) order: the order the draw indexes.
    pub entrants: Vec<LotteryEntrant>,
    pub drawn_index: u64,
}

/// The outcome of a lottery among confirmed bidders in `capped`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lottery {
    /// A draw made before the commit–reveal (see the module doc).
    SplitMix64 {
        seed: u64,
        /// Ascending: the order the draw indexes.
        entrants: Vec<BidderNumber>,
        drawn_index: u64,
    },
    CommitReveal(CommitReveal),
}

impl Lottery {
    /// The entrants' bidder numbers in the order the draw indexes.
    pub fn entrant_numbers(&self) -> Vec<BidderNumber> {
        match self {
            Lottery::SplitMix64 { entrants, .. } => entrants.clone(),
            Lottery::CommitReveal(draw) => draw
                .entrants
                .iter()
                .map(|entrant| entrant.bidder_number)
                .collect(),
        }
    }

    pub fn drawn_index(&self) -> u64 {
        match self {
            Lottery::SplitMix64 { drawn_index, .. } => *drawn_index,
            Lottery::CommitReveal(draw) => draw.drawn_index,
        }
    }

    /// The bidder number at the drawn index, if the index lies among the entrants.
    pub fn drawn_number(&self) -> Option<BidderNumber> {
        let index = usize::try_from(self.drawn_index()).ok()?;
        self.entrant_numbers().get(index).copied()
    }
}

/// Checks a confirmation's nonce: at most 64 characters of `A-Z a-z 0-9 _ -` (empty: none).
pub fn validate_nonce(nonce: &str) -> Result<(), Rejection> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if nonce.len() <= MAX_NONCE_LEN && nonce.bytes().all(allowed) {
        Ok(())
    } else {
        Err(Rejection::InvalidRequest(format!(
            "nonce must be at most {MAX_NONCE_LEN} characters of A-Z, a-z, 0-9, '_', '-'"
        )))
    }
}

/// The pool of a new auction, from the seed of the entry that created it.
pub fn initial_pool(auction_id: &str, envelope_seed: u64) -> Bytes32 {
    let mut hasher = Sha256::new();
    hasher.update(format!("gavel-lottery-pool\n{auction_id}\n").as_bytes());
    hasher.update(envelope_seed.to_le_bytes());
    hasher.finalize().into()
}

/// Mixes an envelope seed into a pool.
pub fn mix(pool: &mut Bytes32, envelope_seed: u64) {
    let mut hasher = Sha256::new();
    hasher.update(*pool);
    hasher.update(envelope_seed.to_le_bytes());
    *pool = hasher.finalize().into();
}

/// The lottery seed drawn from a pool.
pub fn seed_from_pool(pool: &Bytes32) -> Bytes32 {
    let mut hasher = Sha256::new();
    hasher.update(b"gavel-lottery-seed\n");
    hasher.update(pool);
    hasher.finalize().into()
}

/// The commitment to a seed: SHA-256 of its 32 bytes.
pub fn commitment(seed: &Bytes32) -> Bytes32 {
    Sha256::digest(seed).into()
}

/// The text whose SHA-256 decides a commit–reveal draw (see the module doc).
pub fn draw_text(auction_id: &str, seed: &Bytes32, entrants: &[LotteryEntrant]) -> String {
    let mut text = format!("gavel-lottery\n{auction_id}\n{}\n", hex::encode(seed));
    for entrant in entrants {
        text.push_str(&format!("{}:{}\n", entrant.bidder_number, entrant.nonce));
    }
    text
}

/// The index a commit–reveal draw picks among `entrants` (0 when there are none).
pub fn draw_index(auction_id: &str, seed: &Bytes32, entrants: &[LotteryEntrant]) -> u64 {
    if entrants.is_empty() {
        return 0;
    }
    let digest = Sha256::digest(draw_text(auction_id, seed, entrants).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % entrants.len() as u64
}

/// SplitMix64: the generator of the draws made before the commit–reveal.
pub fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The index a draw made before the commit–reveal picks among `entrant_count` entrants.
pub fn splitmix64_draw_index(seed: u64, entrant_count: usize) -> u64 {
    if entrant_count == 0 {
        return 0;
    }
    splitmix64(seed) % entrant_count as u64
}

/// Re-draws a published lottery and checks it against what was published: the seed
/// against the commitment in the draw and the one published at cap entry
/// (`committed_at_cap`, when known), the drawn index against a fresh draw, and the
/// winner's number against the entrant at that index. Answers what does not hold.
pub fn redraw(
    auction_id: &str,
    lottery: &Lottery,
    committed_at_cap: Option<&Bytes32>,
    winner_number: BidderNumber,
) -> Result<(), String> {
    let (expected_index, count) = match lottery {
        Lottery::SplitMix64 { seed, entrants, .. } => {
            if entrants.windows(2).any(|pair| pair[0] >= pair[1]) {
                return Err("the lottery's entrants are not in ascending order".to_string());
            }
            (splitmix64_draw_index(*seed, entrants.len()), entrants.len())
        }
        Lottery::CommitReveal(draw) => {
            if commitment(&draw.seed) != draw.commitment {
                return Err("the lottery's seed does not match its commitment".to_string());
            }
            if committed_at_cap.is_some_and(|committed| *committed != draw.commitment) {
                return Err(
                    "the lottery's commitment is not the one published at cap entry".to_string(),
                );
            }
            let index = draw_index(auction_id, &draw.seed, &draw.entrants);
            (index, draw.entrants.len())
        }
    };
    if count == 0 {
        return Err("the lottery has no entrants".to_string());
    }
    if lottery.drawn_index() != expected_index {
        return Err(format!(
            "the lottery re-draws index {expected_index}, not the published {}",
            lottery.drawn_index()
        ));
    }
    if lottery.drawn_number() != Some(winner_number) {
        return Err(format!(
            "the winner {winner_number} is not the entrant the lottery drew"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entrant(bidder_number: BidderNumber, nonce: &str) -> LotteryEntrant {
        LotteryEntrant {
            bidder_number,
            nonce: nonce.to_string(),
        }
    }

    #[test]
    fn the_draw_text_is_the_documented_one() {
        let seed = [0xab; 32];
        let text = draw_text("lot-1", &seed, &[entrant(1234, ""), entrant(1002, "x-9")]);
        let expected = format!(
            "gavel-lottery\nlot-1\n{}\n1234:\n1002:x-9\n",
            "ab".repeat(32)
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn the_commitment_is_the_sha256_of_the_seed_bytes() {
        // SHA-256 of 32 zero bytes.
        let expected = "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925";
        assert_eq!(hex::encode(commitment(&[0; 32])), expected);
    }

    #[test]
    fn nonces_are_bounded_and_plain() {
        assert!(validate_nonce("").is_ok());
        assert!(validate_nonce(&"a".repeat(MAX_NONCE_LEN)).is_ok());
        assert!(validate_nonce(&"a".repeat(MAX_NONCE_LEN + 1)).is_err());
        for bad in ["a b", "a:b", "a\nb", "ü"] {
            assert!(validate_nonce(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_redraw_names_a_changed_seed_index_or_winner() {
        let seed = [7; 32];
        let entrants = vec![entrant(1001, "a"), entrant(1002, "b"), entrant(1003, "")];
        let drawn_index = draw_index("lot", &seed, &entrants);
        let winner = entrants[drawn_index as usize].bidder_number;
        let draw = CommitReveal {
            seed,
            commitment: commitment(&seed),
            entrants,
            drawn_index,
        };
        let lottery = Lottery::CommitReveal(draw.clone());
        let committed = commitment(&seed);
        assert_eq!(redraw("lot", &lottery, Some(&committed), winner), Ok(()));

        let other_seed = Lottery::CommitReveal(CommitReveal {
            seed: [8; 32],
            ..draw.clone()
        });
        let error = redraw("lot", &other_seed, Some(&committed), winner).unwrap_err();
        assert!(error.contains("commitment"), "{error}");
        let other_index = Lottery::CommitReveal(CommitReveal {
            drawn_index: (drawn_index + 1) % 3,
            ..draw.clone()
        });
        let error = redraw("lot", &other_index, Some(&committed), winner).unwrap_err();
        assert!(error.contains("re-draws"), "{error}");
        let error = redraw("lot", &lottery, Some(&committed), 9999).unwrap_err();
        assert!(error.contains("winner"), "{error}");
    }
}

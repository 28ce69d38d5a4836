//! Signed bids in the kernel (docs/RULES.md, "Signed bids"). The base sale is
//! `common_kernel`'s (start 1000, increment 100, listing from 10 000 ms); Alice and Bob
//! are registered and qualified.

mod common_kernel;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common_kernel::{spec, with, Harness, AUCTION};
use ed25519_dalek::{Signer, SigningKey};
use gavel_kernel::invariants;
use gavel_kernel::sale::{CapMode, SaleRules, SecondarySpec};
use gavel_kernel::signatures::{bid_text, signed_text, Statement, MAX_KEYS_PER_BIDDER};
use gavel_kernel::{Command, Outcome, Rejection};

const NOW: u64 = 20_000;

fn signed_sale(require_signed_bids: bool) -> Harness {
    let mut harness = Harness::default();
    let rules = SaleRules {
        require_signed_bids,
        ..SaleRules::default()
    };
    harness.create_with_rules(0, spec(AUCTION), rules);
    for bidder in ["alice", "bob"] {
        harness.register(bidder);
        harness.qualify(7, AUCTION, bidder);
    }
    harness
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn public(key: &SigningKey) -> String {
    STANDARD.encode(key.verifying_key().as_bytes())
}

fn register_key(
    harness: &mut Harness,
    bidder_id: &str,
    algorithm: &str,
    public_key: &str,
) -> Result<Outcome, Rejection> {
    let command = Command::RegisterBidderKey {
        bidder_id: bidder_id.to_string(),
        algorithm: algorithm.to_string(),
        public_key: public_key.to_string(),
    };
    harness.run(1_000, command)
}

fn sign(key: &SigningKey, amount: u64, request_id: &str) -> String {
    let text = bid_text(AUCTION, amount, request_id);
    STANDARD.encode(key.sign(text.as_bytes()).to_bytes())
}

fn signed_bid(
    harness: &mut Harness,
    bidder_id: &str,
    amount: u64,
    request_id: &str,
    signature: &str,
) -> Result<Outcome, Rejection> {
    let command = Command::PlaceSignedBid {
        auction_id: AUCTION.to_string(),
        token_hash: harness.token(bidder_id),
        amount,
        request_id: request_id.to_string(),
        signature: signature.to_string(),
    };
    harness.run(NOW, command)
}

/// "A bidder may register public keys (`ed25519`; `sm2` per GM/T 0003)": once each, up
/// to the bound, only valid keys, only of registered bidders.
#[test]
fn signed_bids_a_bidder_registers_a_bounded_number_of_valid_keys() {
    let mut harness = signed_sale(true);
    let first = register_key(&mut harness, "alice", "ed25519", &public(&key(1)));
    let Ok(Outcome::BidderKeyRegistered {
        key_id, created, ..
    }) = first
    else {
        panic!("{first:?}")
    };
    assert!(created && key_id.starts_with("ed25519:"), "{key_id}");
    let again = register_key(&mut harness, "alice", "ed25519", &public(&key(1)));
    assert!(
        matches!(&again, Ok(Outcome::BidderKeyRegistered { created: false, key_id: same, .. }) if *same == key_id),
        "{again:?}"
    );
    for seed in 2..=MAX_KEYS_PER_BIDDER as u8 {
        assert!(register_key(&mut harness, "alice", "ed25519", &public(&key(seed))).is_ok());
    }
    assert_eq!(
        harness.state.bidder_keys["alice"].len(),
        MAX_KEYS_PER_BIDDER
    );
    assert_eq!(
        register_key(&mut harness, "alice", "ed25519", &public(&key(99))),
        Err(Rejection::TooManyKeys {
            max: MAX_KEYS_PER_BIDDER
        })
    );
    // A key held already is still answered at the bound.
    assert!(register_key(&mut harness, "alice", "ed25519", &public(&key(3))).is_ok());
    assert_eq!(
        register_key(&mut harness, "nobody", "ed25519", &public(&key(1))),
        Err(Rejection::BidderNotFound)
    );
    for (algorithm, bad) in [
        ("ed25519", "not base64!".to_string()),
        ("ed25519", STANDARD.encode([1u8; 31])),
        ("sm2", STANDARD.encode([4u8; 65])),
        ("rsa", public(&key(1))),
    ] {
        let refused = register_key(&mut harness, "bob", algorithm, &bad);
        assert!(
            matches!(refused, Err(Rejection::InvalidKey(_))),
            "{algorithm} {bad}: {refused:?}"
        );
    }
    assert!(!harness.state.bidder_keys.contains_key("bob"));
}

/// "An auction with `require_signed_bids` accepts only bids signed over the canonical
/// text `gavel-bid\n{auction_id}\n{amount}\n{request_id}` ...; the signature is kept with
/// the bid."
#[test]
fn signed_bids_only_a_bid_signed_under_a_registered_key_is_accepted_and_kept() {
    let mut harness = signed_sale(true);
    let alice = key(1);
    assert!(register_key(&mut harness, "alice", "ed25519", &public(&alice)).is_ok());
    harness.advance(NOW);
    assert_eq!(
        harness.bid(NOW, "alice", 1_000),
        Err(Rejection::SignatureRequired)
    );
    // Signed over another amount, another request_id, or by a key not registered.
    let wrong = [
        sign(&alice, 1_100, "r-1"),
        sign(&alice, 1_000, "r-2"),
        sign(&key(2), 1_000, "r-1"),
        "bm90IGEgc2lnbmF0dXJl".to_string(),
    ];
    for signature in wrong {
        assert_eq!(
            signed_bid(&mut harness, "alice", 1_000, "r-1", &signature),
            Err(Rejection::BadSignature)
        );
    }
    // Bob has no key: nothing he signs verifies.
    assert_eq!(
        signed_bid(
            &mut harness,
            "bob",
            1_000,
            "b-1",
            &sign(&key(5), 1_000, "b-1")
        ),
        Err(Rejection::BadSignature)
    );
    assert!(harness.a1().bids.is_empty());
    let signature = sign(&alice, 1_000, "r-1");
    let accepted = signed_bid(&mut harness, "alice", 1_000, "r-1", &signature);
    assert!(
        matches!(
            accepted,
            Ok(Outcome::BidAccepted {
                replayed: false,
                ..
            })
        ),
        "{accepted:?}"
    );
    let kept = &harness.a1().sale.bid_signatures[&1];
    assert_eq!(kept.signature, signature);
    assert_eq!(kept.request_id, "r-1");
    assert_eq!(kept.key_id, harness.state.bidder_keys["alice"][0].key_id);
    // The same request again answers the receipt, and keeps nothing more.
    let replay = signed_bid(&mut harness, "alice", 1_000, "r-1", &signature);
    assert!(matches!(
        replay,
        Ok(Outcome::BidAccepted { replayed: true, .. })
    ));
    assert_eq!(harness.a1().bids.len(), 1);
    assert_eq!(
        invariants::bid_signatures_verify(harness.a1(), &harness.state.bidder_keys),
        Ok(())
    );
    assert_eq!(invariants::signed_bids_kept(harness.a1()), Ok(()));
}

/// "... and checked again by the audit": an altered amount or signature no longer
/// verifies, and a bid without its signature is named.
#[test]
fn signed_bids_the_audit_check_names_an_altered_bid() {
    let mut harness = signed_sale(true);
    let alice = key(1);
    assert!(register_key(&mut harness, "alice", "ed25519", &public(&alice)).is_ok());
    harness.advance(NOW);
    assert!(signed_bid(
        &mut harness,
        "alice",
        1_000,
        "r-1",
        &sign(&alice, 1_000, "r-1")
    )
    .is_ok());
    let keys = harness.state.bidder_keys.clone();
    let mut altered = harness.a1().clone();
    altered.bids[0].amount = 1_050;
    let found = invariants::bid_signatures_verify(&altered, &keys).expect_err("found");
    assert!(found.to_string().contains("bid record 1"), "{found}");
    let mut altered = harness.a1().clone();
    let kept = altered.sale.bid_signatures.get_mut(&1).expect("kept");
    kept.signature = sign(&alice, 1_001, "r-1");
    assert!(invariants::bid_signatures_verify(&altered, &keys).is_err());
    let mut altered = harness.a1().clone();
    altered.sale.bid_signatures.clear();
    let found = invariants::signed_bids_kept(&altered).expect_err("found");
    assert!(found.to_string().contains("no signature kept"), "{found}");
    let mut other_keys = keys.clone();
    other_keys.insert("alice".to_string(), Vec::new());
    assert!(invariants::bid_signatures_verify(harness.a1(), &other_keys).is_err());
}

/// Where signed bids are not required, an unsigned bid is accepted as before, and a
/// signed one is checked and kept all the same.
#[test]
fn signed_bids_a_signature_sent_where_none_is_required_is_still_checked() {
    let mut harness = signed_sale(false);
    let alice = key(1);
    assert!(register_key(&mut harness, "alice", "ed25519", &public(&alice)).is_ok());
    harness.advance(NOW);
    harness.accept(NOW, "bob", 1_000);
    assert_eq!(
        signed_bid(
            &mut harness,
            "alice",
            1_100,
            "r-1",
            &sign(&alice, 1_000, "r-1")
        ),
        Err(Rejection::BadSignature)
    );
    assert!(signed_bid(
        &mut harness,
        "alice",
        1_100,
        "r-1",
        &sign(&alice, 1_100, "r-1")
    )
    .is_ok());
    let kept: Vec<u64> = harness.a1().sale.bid_signatures.keys().copied().collect();
    assert_eq!(kept, [2]);
    assert_eq!(invariants::check_auction(harness.a1()), Ok(()));
    // An auction without signed bids keeps the sale text it always had.
    let mut unsigned = signed_sale(false);
    unsigned.advance(NOW);
    unsigned.accept(NOW, "bob", 1_000);
    let text = serde_json::to_string(&unsigned.a1().sale).expect("json");
    assert!(!text.contains("bid_signatures"), "{text}");
}

/// The state's keys travel in its binary encoding, and replicas replaying the log agree.
#[test]
fn signed_bids_replicas_replaying_the_log_hold_the_same_keys_and_signatures() {
    let mut harness = signed_sale(true);
    let alice = key(1);
    assert!(register_key(&mut harness, "alice", "ed25519", &public(&alice)).is_ok());
    harness.advance(NOW);
    assert!(signed_bid(
        &mut harness,
        "alice",
        1_000,
        "r-1",
        &sign(&alice, 1_000, "r-1")
    )
    .is_ok());
    let replayed = common_kernel::replay(&harness.log);
    assert_eq!(replayed.digest(), harness.state.digest());
    let bytes = bincode::serialize(&harness.state).expect("encode");
    let decoded: gavel_kernel::State = bincode::deserialize(&bytes).expect("decode");
    assert_eq!(decoded.bidder_keys, harness.state.bidder_keys);
    assert_eq!(decoded.auctions[AUCTION].sale, harness.a1().sale);
}

fn sign_statement(key: &SigningKey, statement: Statement, request_id: &str) -> String {
    let text = signed_text(AUCTION, statement, request_id);
    STANDARD.encode(key.sign(text.as_bytes()).to_bytes())
}

/// A sale of signed bids with a price cap of 1500 under `cap_mode`: Alice (key 1) bids
/// 1000 and Bob (key 2) reaches the cap at `NOW`, both signed.
fn signed_and_capped(cap_mode: CapMode) -> Harness {
    let mut harness = Harness::default();
    let rules = SaleRules {
        require_signed_bids: true,
        cap_mode,
        sealed_window_ms: Some(60_000),
        sealed_ceiling: Some(3_000),
        secondary: Some(SecondarySpec {
            label: "Self-held floor area".to_string(),
            unit: "m2".to_string(),
            start: 100,
            increment: 10,
            max: 300,
        }),
        ..SaleRules::default()
    };
    let rules = match cap_mode {
        CapMode::SealedBid => SaleRules {
            secondary: None,
            ..rules
        },
        _ => SaleRules {
            sealed_window_ms: None,
            sealed_ceiling: None,
            ..rules
        },
    };
    let capped = with(spec(AUCTION), |s| s.price_cap = Some(1_500));
    harness.create_with_rules(0, capped, rules);
    for (seed, bidder) in [(1, "alice"), (2, "bob")] {
        harness.register(bidder);
        harness.qualify(7, AUCTION, bidder);
        assert!(register_key(&mut harness, bidder, "ed25519", &public(&key(seed))).is_ok());
    }
    harness.advance(NOW - 1_000);
    for (seed, bidder, amount) in [(1, "alice", 1_000), (2, "bob", 1_500)] {
        let request_id = format!("{bidder}-{amount}");
        let signature = sign(&key(seed), amount, &request_id);
        let placed = signed_bid(&mut harness, bidder, amount, &request_id, &signature);
        assert!(placed.is_ok(), "{placed:?}");
    }
    harness
}

fn after_cap(
    harness: &mut Harness,
    sealed: bool,
    bidder_id: &str,
    amount: u64,
    request_id: &str,
    signature: Option<String>,
) -> Result<Outcome, Rejection> {
    let (auction_id, token_hash) = (AUCTION.to_string(), harness.token(bidder_id));
    let request_id = request_id.to_string();
    let command = match (sealed, signature) {
        (true, None) => Command::SubmitSealedQuote {
            auction_id,
            token_hash,
            amount,
            request_id,
        },
        (true, Some(signature)) => Command::SubmitSignedSealedQuote {
            auction_id,
            token_hash,
            amount,
            request_id,
            signature,
        },
        (false, None) => Command::PlaceSecondaryBid {
            auction_id,
            token_hash,
            secondary_amount: amount,
            request_id,
        },
        (false, Some(signature)) => Command::PlaceSignedSecondaryBid {
            auction_id,
            token_hash,
            secondary_amount: amount,
            request_id,
            signature,
        },
    };
    harness.run(NOW + 1_000, command)
}

/// "(and the same with `secondary_amount`, `sealed_amount` or `proxy_max` for those
/// bids)": where signed bids are required, a sealed quote and a secondary bid must carry
/// the bidder's signature of their own text; a signature of another statement, or of
/// another amount, does not pass; what verified is kept and checked by the audit.
#[test]
fn signed_bids_sealed_quotes_and_secondary_bids_are_signed_statements_too() {
    for (cap_mode, sealed, amount) in [
        (CapMode::SealedBid, true, 1_800),
        (CapMode::Secondary, false, 120),
    ] {
        let mut harness = signed_and_capped(cap_mode);
        let statement = match sealed {
            true => Statement::Sealed(amount),
            false => Statement::Secondary(amount),
        };
        let alice = key(1);
        let unsigned = after_cap(&mut harness, sealed, "alice", amount, "q-1", None);
        assert_eq!(unsigned, Err(Rejection::SignatureRequired), "{cap_mode:?}");
        for wrong in [
            sign(&alice, amount, "q-1"),
            sign_statement(&alice, Statement::ProxyMax(amount), "q-1"),
            sign_statement(&alice, statement, "q-2"),
            sign_statement(&key(2), statement, "q-1"),
        ] {
            let refused = after_cap(&mut harness, sealed, "alice", amount, "q-1", Some(wrong));
            assert_eq!(refused, Err(Rejection::BadSignature), "{cap_mode:?}");
        }
        let signature = sign_statement(&alice, statement, "q-1");
        let taken = after_cap(
            &mut harness,
            sealed,
            "alice",
            amount,
            "q-1",
            Some(signature.clone()),
        );
        assert!(taken.is_ok(), "{cap_mode:?}: {taken:?}");
        // A retry is answered as the first time, signed or not.
        let retried = after_cap(&mut harness, sealed, "alice", amount, "q-1", None);
        assert_eq!(retried, taken.map(replayed), "{cap_mode:?}");
        let sale = &harness.a1().sale;
        let kept = match sealed {
            true => sale.sealed_quotes["alice"].signature.clone(),
            false => sale.secondary_bids[0].signature.clone(),
        };
        assert_eq!(kept.map(|kept| kept.signature), Some(signature));
        let keys = &harness.state.bidder_keys;
        assert_eq!(invariants::check_auction(harness.a1()), Ok(()));
        assert_eq!(
            invariants::bid_signatures_verify(harness.a1(), keys),
            Ok(())
        );
        // The audit names a quote or secondary bid whose amount was altered.
        let mut altered = harness.a1().clone();
        match sealed {
            true => {
                altered
                    .sale
                    .sealed_quotes
                    .get_mut("alice")
                    .expect("quote")
                    .amount += 100
            }
            false => altered.sale.secondary_bids[0].amount += 10,
        }
        assert!(
            invariants::bid_signatures_verify(&altered, keys).is_err(),
            "{cap_mode:?}"
        );
        // And one kept without its signature.
        let mut stripped = harness.a1().clone();
        match sealed {
            true => {
                stripped
                    .sale
                    .sealed_quotes
                    .get_mut("alice")
                    .expect("quote")
                    .signature = None
            }
            false => stripped.sale.secondary_bids[0].signature = None,
        }
        assert!(
            invariants::signed_bids_kept(&stripped).is_err(),
            "{cap_mode:?}"
        );
    }
}

fn replayed(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::SealedQuoteAccepted { accepted_at_ms, .. } => Outcome::SealedQuoteAccepted {
            accepted_at_ms,
            replayed: true,
        },
        Outcome::SecondaryBidAccepted { receipt, .. } => Outcome::SecondaryBidAccepted {
            receipt,
            replayed: true,
        },
        other => other,
    }
}

fn set_proxy(
    harness: &mut Harness,
    bidder_id: &str,
    max_amount: u64,
    request_id: &str,
    signature: Option<String>,
) -> Result<Outcome, Rejection> {
    let (auction_id, token_hash) = (AUCTION.to_string(), harness.token(bidder_id));
    let request_id = request_id.to_string();
    let command = match signature {
        None => Command::SetProxy {
            auction_id,
            token_hash,
            max_amount,
            request_id,
        },
        Some(signature) => Command::SetSignedProxy {
            auction_id,
            token_hash,
            max_amount,
            request_id,
            signature,
        },
    };
    harness.run(NOW, command)
}

/// A proxy bids without its bidder, so where signed bids are required a maximum is taken
/// only as the bidder's signed statement (`proxy_max`), and each bid the proxy places
/// keeps that signature, marked with the maximum it covers; the audit checks the bid
/// stays within it.
#[test]
fn signed_bids_a_proxy_bids_on_its_bidders_signed_maximum() {
    let mut harness = signed_sale(true);
    let (alice, bob) = (key(1), key(2));
    assert!(register_key(&mut harness, "alice", "ed25519", &public(&alice)).is_ok());
    assert!(register_key(&mut harness, "bob", "ed25519", &public(&bob)).is_ok());
    harness.advance(NOW);
    assert_eq!(
        set_proxy(&mut harness, "alice", 5_000, "p-1", None),
        Err(Rejection::SignatureRequired)
    );
    let of_a_bid = sign(&alice, 5_000, "p-1");
    assert_eq!(
        set_proxy(&mut harness, "alice", 5_000, "p-1", Some(of_a_bid)),
        Err(Rejection::BadSignature)
    );
    assert!(harness.a1().sale.proxies.is_empty());
    let maximum = sign_statement(&alice, Statement::ProxyMax(5_000), "p-1");
    let set = set_proxy(&mut harness, "alice", 5_000, "p-1", Some(maximum.clone()));
    assert!(matches!(set, Ok(Outcome::ProxySet { .. })), "{set:?}");
    // Bob's signed bid outbids the proxy's first bid; the proxy answers at once.
    let bob_bid = sign(&bob, 1_100, "b-1");
    assert!(signed_bid(&mut harness, "bob", 1_100, "b-1", &bob_bid).is_ok());
    let auction = harness.a1();
    assert_eq!(
        auction
            .bids
            .iter()
            .map(|bid| (bid.bidder_id.as_str(), bid.amount))
            .collect::<Vec<_>>(),
        [("alice", 1_000), ("bob", 1_100), ("alice", 1_200)]
    );
    for seq in [1, 3] {
        let kept = &auction.sale.bid_signatures[&seq];
        assert_eq!(
            (kept.proxy_max, kept.signature.as_str()),
            (Some(5_000), maximum.as_str())
        );
    }
    let keys = &harness.state.bidder_keys;
    assert_eq!(invariants::check_auction(auction), Ok(()));
    assert_eq!(invariants::bid_signatures_verify(auction, keys), Ok(()));
    // While the sale is open, a read of the record shows no signed maximum.
    let shown = auction.without_open_secrets();
    assert_eq!(shown.sale.bid_signatures.keys().collect::<Vec<_>>(), [&2]);
    let text = serde_json::to_string(&shown).expect("json");
    assert!(!text.contains("5000") && !text.contains(&maximum), "{text}");
    // A kept maximum lowered below the bid, or changed, is named by the audit.
    for altered_max in [1_100, 6_000] {
        let mut altered = auction.clone();
        altered
            .sale
            .bid_signatures
            .get_mut(&3)
            .expect("kept")
            .proxy_max = Some(altered_max);
        assert!(
            invariants::bid_signatures_verify(&altered, keys).is_err(),
            "{altered_max}"
        );
    }
}

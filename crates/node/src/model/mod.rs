//! What the node's parts share about the auctions, below the HTTP layer: the views the
//! API answers, the live events carry and the spool writes out (`views`); the requests
//! the API accepts and the spool's auction specifications are checked as (`requests`);
//! every error a request is answered with and its stable code (`error`); credentials:
//! token and secret hashes (`credentials`) and the Argon2id hashing of bidders' secrets
//! off the async workers (`bidder_secret`). Built from the kernel's state; nothing here
//! knows of actix-web.

pub mod bidder_secret;
pub mod credentials;
pub mod error;
pub mod requests;
pub mod views;

//! What the node's parts share about the auctions, below the HTTP layer: the views the
//! API answers, the live events carry and the spool writes out (`views`). Built from the
//! kernel's state; nothing here knows of actix-web.

pub mod views;

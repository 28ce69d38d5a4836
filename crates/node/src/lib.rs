//! Gavel: a clustered, highly available online auction kernel for public sales of
//! land-use rights.
//!
//! # Layout
//! The modules are layers, bottom first; each uses only its own layer and those below it
//! (`tests/architecture.rs` checks it; `gavel_kernel`, the pure auction rules, is below
//! them all):
//! - `clock`: the node's wall clock, and its offset to the voters' median, measured on
//!   the PeerLinks' health checks; a node too far off refuses to lead. `disk`: what a
//!   data directory occupies and what its file system has left. `host`: what a node asks
//!   of the machine (idle CPUs that poll). `private_files`: files only the node's user
//!   reads. `tls`: the `[tls]` section and the certificates of the public and peer
//!   listeners. `receipts`: the cluster's Ed25519 receipt key, the text of a bid
//!   receipt it signs, and the thread that signs the receipts answered together under
//!   one Merkle root (`receipts::batch`).
//! - `config`: node configuration, validated before use.
//! - `telemetry`: the Prometheus metrics.
//! - `model`: what the HTTP layer, the actors and the spool share: views, requests,
//!   errors and their codes, credentials.
//! - `exchange`: the spool's file format (records, checksum line).
//! - `replication`: openraft's type configuration, the Raft log in segment files of its
//!   own (made durable with fdatasync), Raft's metadata in sled, the state machine that
//!   feeds committed entries to the kernel, the on-disk archive of closed auctions that
//!   left the replicated state (filled from a peer after a snapshot install:
//!   `archive_fetch`), the exchange ledger (spool keys applied, records waiting to go
//!   out), and backups and the seeding of a restored cluster.
//! - `peer`: the peer listener and client: Raft RPCs (`peer::network` is openraft's
//!   network over it), request forwarding and archive chunks between nodes,
//!   authenticated by the cluster secret.
//! - `actors`: one actix actor per file. The `Supervisor` owns the node's Raft handle and
//!   proposes every command; the `ResourcePool` starts an `Auction` actor per live
//!   auction (deadline timers, live events); the `Janitor` purifies on a timer (restarts
//!   crashed or stuck actors, archives closed auctions, has Raft snapshot and purge); the
//!   `Exchange` works the intranet–internet spool on the leader. The Supervisor also
//!   makes the operators' membership changes (standbys added and removed, a migration's
//!   cutover).
//! - `api`: the HTTP listeners. `api::public` serves bidders, `api::control` serves
//!   operators, `api::pages` and `api::dashboard` their web pages; `api::problem` is the
//!   one mapping from errors to problem+json.
//! - `node`: starts one node: storage, Raft, actors and listeners, and stops them.

pub mod actors;
pub mod api;
pub mod clock;
pub mod config;
pub mod disk;
pub mod exchange;
pub mod host;
pub mod model;
pub mod node;
pub mod peer;
pub mod private_files;
pub mod receipts;
pub mod replication;
pub mod telemetry;
pub mod tls;

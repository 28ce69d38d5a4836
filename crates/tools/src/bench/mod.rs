//! Benchmark commands that drive a real local cluster and print their figures. Each
//! starts `gavel serve` child processes on loopback, puts them under load and faults,
//! measures from the outside, as a client would, and stops every child when it ends.
//!
//! - `takeover`: `gavel bench takeover`, SIGKILL the leader again and again while
//!   bidders bid; time to the first committed bid and to full strength, and a check
//!   that no acknowledged bid was lost or doubled.
//! - `bids`: `gavel bench bids`, committed bids per second and latency at 1 to 256
//!   connections on a 3-voter cluster, beside a 3-member etcd cluster (`etcd`) doing a
//!   put per request, and the machine's floor (`floor`); `closed_loop` is the
//!   keep-alive connection load both systems get, `bids_figures` the tables and goals.
//! - `limiter`: `gavel bench limiter`, the public rate limits' cost per request, in
//!   process, for clients that come back and for a flood of new ones.
//! - `local`: the local cluster of child processes (configs on free ports, start, kill,
//!   restart, ClusterView) and the interrupt handling that makes sure none outlives
//!   the run.
//! - `load`: bidder threads that bid through random nodes with request_id retries and
//!   log when each receipt arrived.
//! - `report`: the per-kill table, the summary figures and the history check.
//! - `soak`: `gavel bench soak`, 100k auction lifecycles against one node; resident
//!   memory, live actors and data-directory size every 10k, and whether they stay flat.
//! - `takeover_batches`: the kills grouped in batches, as the old system's table.
//! - `results`: summary tables, their Markdown and SVG plots in the results folder.

pub mod bids;
mod bids_figures;
mod closed_loop;
mod etcd;
pub mod fanout;
mod floor;
pub mod limiter;
pub(crate) mod load;
mod report;
pub mod requests;
mod results;
pub mod soak;
pub mod takeover;
mod takeover_batches;
mod wire;

pub use takeover::{run_takeover, TakeoverArgs};

//! Gavel's tools: the benchmarks (`bench`) and the chaos harness (`chaos`), reached
//! through `gavel bench …` and `gavel chaos …`. They drive real nodes from the outside,
//! as clients and as an operator's faults would, through the local-cluster harness of
//! `gavel-testkit`; the node library knows nothing of them.

pub mod bench;
pub mod chaos;

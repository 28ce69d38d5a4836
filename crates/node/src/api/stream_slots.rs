//! Caps on the event streams a node holds open: at most `limits.max_streams_per_ip` per
//! client address (an IPv6 address by its /64, the address a trusted proxy saw for the
//! proxy's requests, as for the rate limits) and `limits.max_streams` in all. A stream
//! over either is answered 429 problem+json `too_many_streams` with `Retry-After`, before
//! anything is read or subscribed. A stream is a long-lived connection and a subscription
//! to an auction's publisher: without a cap, one client could hold every connection the
//! listener accepts and lock every other bidder out.
//!
//! A `StreamPermit` holds one slot and gives it back when it is dropped, which is when
//! the stream ends (closed auction, lagging consumer, or a client that went away and was
//! noticed at the next write: a keep-alive goes out every 15 s). The counts are bounded
//! by the caps themselves: an address appears only while it holds a stream.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use super::limits::client_network;
use crate::config::LimitsSection;
use crate::model::error::ApiError;

/// The streams open on one node.
pub struct StreamSlots {
    per_ip_max: usize,
    total_max: usize,
    open: Mutex<OpenStreams>,
}

#[derive(Default)]
struct OpenStreams {
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// One open stream's slot, given back on drop.
pub struct StreamPermit {
    slots: Arc<StreamSlots>,
    ip: Option<IpAddr>,
}

impl StreamSlots {
    pub fn new(limits: &LimitsSection) -> Self {
        StreamSlots {
            per_ip_max: limits.max_streams_per_ip.max(1),
            total_max: limits.max_streams.max(1),
            open: Mutex::new(OpenStreams::default()),
        }
    }

    /// A slot for a stream from `ip` (none when the listener does not know the peer's
    /// address: then only the node's cap applies), or 429 `too_many_streams`.
    pub fn acquire(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<StreamPermit, ApiError> {
        let ip = ip.map(client_network);
        let mut open = self.open.lock();
        if open.total >= self.total_max {
            return Err(ApiError::TooManyStreams { scope: "this node" });
        }
        if let Some(ip) = ip {
            let count = open.per_ip.entry(ip).or_insert(0);
            if *count >= self.per_ip_max {
                return Err(ApiError::TooManyStreams {
                    scope: "this address",
                });
            }
            *count += 1;
        }
        open.total += 1;
        Ok(StreamPermit {
            slots: self.clone(),
            ip,
        })
    }

    /// Streams open on this node, in all.
    pub fn total(&self) -> usize {
        self.open.lock().total
    }

    /// Streams open: (from `ip`, in all).
    pub fn open(&self, ip: IpAddr) -> (usize, usize) {
        let open = self.open.lock();
        let from_ip = open.per_ip.get(&client_network(ip)).copied().unwrap_or(0);
        (from_ip, open.total)
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(ip) = self.ip {
            if let Some(count) = open.per_ip.get_mut(&ip) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.per_ip.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(per_ip: usize, total: usize) -> Arc<StreamSlots> {
        Arc::new(StreamSlots::new(&LimitsSection {
            max_streams_per_ip: per_ip,
            max_streams: total,
            ..LimitsSection::default()
        }))
    }

    fn refused_scope(result: Result<StreamPermit, ApiError>) -> &'static str {
        match result {
            Err(ApiError::TooManyStreams { scope }) => scope,
            Err(other) => panic!("refused for another reason: {other}"),
            Ok(_) => panic!("not refused"),
        }
    }

    #[test]
    fn one_address_past_its_cap_is_refused_while_another_gets_a_stream() {
        let slots = slots(3, 100);
        let greedy = IpAddr::from([127, 0, 0, 1]);
        let held: Vec<StreamPermit> = (0..3)
            .map(|_| slots.acquire(Some(greedy)).expect("under the cap"))
            .collect();
        assert_eq!(refused_scope(slots.acquire(Some(greedy))), "this address");
        let other = slots.acquire(Some(IpAddr::from([127, 0, 0, 2])));
        assert!(other.is_ok());
        assert_eq!(slots.open(greedy), (3, 4));
        drop(held);
        assert_eq!(slots.open(greedy), (0, 1));
        assert!(
            slots.acquire(Some(greedy)).is_ok(),
            "slots come back on drop"
        );
    }

    #[test]
    fn the_node_cap_holds_across_addresses_and_unknown_peers() {
        let slots = slots(10, 4);
        let held: Vec<StreamPermit> = (1..=3u8)
            .map(|last| {
                slots
                    .acquire(Some(IpAddr::from([10, 0, 0, last])))
                    .expect("slot")
            })
            .collect();
        let unknown = slots.acquire(None).expect("a fourth");
        assert_eq!(refused_scope(slots.acquire(None)), "this node");
        let another = slots.acquire(Some(IpAddr::from([10, 0, 0, 9])));
        assert_eq!(refused_scope(another), "this node");
        drop(unknown);
        assert!(slots.acquire(None).is_ok());
        drop(held);
    }

    #[test]
    fn one_ipv6_network_shares_its_cap() {
        let slots = slots(2, 100);
        let host = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 7, 0, 0, 0, last]));
        let _first = slots.acquire(host(1)).expect("slot");
        let _second = slots.acquire(host(2)).expect("slot");
        assert_eq!(refused_scope(slots.acquire(host(3))), "this address");
    }
}

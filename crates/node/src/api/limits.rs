//! Rate limits of the public listener: a token bucket per client IP address and one per
//! session (bearer token), checked by `limit_requests` before any handler runs. A request
//! that finds either bucket empty is answered 429 problem+json `rate_limited` with a
//! `Retry-After` header (whole seconds) and changes nothing.
//!
//! Memory is bounded: each map holds at most `max_tracked` buckets. When a map is full,
//! the buckets that have refilled completely (their client went quiet) are swept first,
//! since a fresh bucket would be the same; if it is still full, the least recently used
//! half is dropped. Dropping a bucket only ever forgives a client, never refuses one, so
//! a flood of addresses or made-up tokens costs memory up to the cap and nothing else.
//! Sessions are keyed by the SHA-256 of their token: no token is kept. The address is the
//! TCP peer's (an IPv6 address counts by its /64 network): a proxy in front of the node
//! makes every client share its address. Each node keeps its own buckets.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::auth::bearer_token;
use crate::config::LimitsSection;
use crate::model::error::ApiError;

/// A token bucket: `tokens` left at `updated`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// How fast one kind of bucket refills and how much it holds.
#[derive(Debug, Clone, Copy)]
struct Rate {
    per_second: f64,
    burst: f64,
}

impl Rate {
    /// Takes one token at `now`, or answers how many seconds until one is there.
    fn take(self, bucket: &mut Bucket, now: Instant) -> Result<(), u64> {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait_s = (1.0 - bucket.tokens) / self.per_second;
            Err((wait_s.ceil() as u64).max(1))
        }
    }

    /// Whether the bucket would be full again at `now`: forgetting it changes nothing.
    fn refilled(self, bucket: &Bucket, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens + elapsed * self.per_second >= self.burst
    }
}

/// The buckets of one kind, capped at `max_tracked`.
struct Buckets<K> {
    rate: Rate,
    max_tracked: usize,
    map: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(per_second: u32, burst: u32, max_tracked: usize) -> Self {
        Buckets {
            rate: Rate {
                per_second: f64::from(per_second.max(1)),
                burst: f64::from(burst.max(1)),
            },
            max_tracked: max_tracked.max(2),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, key: &K, now: Instant) -> Result<(), u64> {
        let mut map = self.map.lock();
        if let Some(bucket) = map.get_mut(key) {
            return self.rate.take(bucket, now);
        }
        if map.len() >= self.max_tracked {
            self.make_room(&mut map, now);
        }
        let mut bucket = Bucket {
            tokens: self.rate.burst,
            updated: now,
        };
        let taken = self.rate.take(&mut bucket, now);
        map.insert(key.clone(), bucket);
        taken
    }

    /// Sweeps refilled buckets; drops the least recently used half if that was not enough.
    fn make_room(&self, map: &mut HashMap<K, Bucket>, now: Instant) {
        let rate = self.rate;
        map.retain(|_, bucket| !rate.refilled(bucket, now));
        if map.len() < self.max_tracked {
            return;
        }
        let mut updated: Vec<Instant> = map.values().map(|bucket| bucket.updated).collect();
        let middle = updated.len() / 2;
        let (_, median, _) = updated.select_nth_unstable(middle);
        let median = *median;
        map.retain(|_, bucket| bucket.updated > median);
    }

    fn len(&self) -> usize {
        self.map.lock().len()
    }
}

/// The public listener's rate limits, shared by its workers.
pub struct RateLimiter {
    per_ip: Buckets<IpAddr>,
    per_session: Buckets<[u8; 32]>,
    trusted_proxies: Vec<IpAddr>,
}

impl RateLimiter {
    pub fn new(limits: &LimitsSection) -> Self {
        RateLimiter {
            trusted_proxies: limits.trusted_proxies.clone(),
            per_ip: Buckets::new(
                limits.per_ip_per_second,
                limits.per_ip_burst,
                limits.max_tracked,
            ),
            per_session: Buckets::new(
                limits.per_session_per_second,
                limits.per_session_burst,
                limits.max_tracked,
            ),
        }
    }

    /// Counts one request from `ip` with `token` (if any) at `now`; on refusal, the
    /// seconds until the client may try again.
    pub fn check(&self, ip: Option<IpAddr>, token: Option<&str>, now: Instant) -> Result<(), u64> {
        if let Some(ip) = ip {
            self.per_ip.take(&client_network(ip), now)?;
        }
        if let Some(token) = token {
            let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            self.per_session.take(&key, now)?;
        }
        Ok(())
    }

    /// Counts one request now: what the middleware calls.
    pub fn check_request(&self, ip: Option<IpAddr>, token: Option<&str>) -> Result<(), u64> {
        self.check(ip, token, Instant::now())
    }

    /// The address a request counts against: the peer's, or for a peer that is a trusted
    /// proxy, the last address of `X-Forwarded-For` (the one the proxy saw) when it parses.
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        forwarded_for
            .and_then(|header| header.rsplit(',').next())
            .and_then(|last| last.trim().parse::<IpAddr>().ok())
            .or(Some(peer))
    }

    /// Buckets held: (per IP, per session).
    pub fn tracked(&self) -> (usize, usize) {
        (self.per_ip.len(), self.per_session.len())
    }
}

/// The key of a client address: an IPv4 address as is, an IPv6 address by its /64
/// network, since one IPv6 host usually holds a whole /64 and could rotate through it.
pub(crate) fn client_network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(network.into())
        }
    }
}

/// The middleware (`actix_web::middleware::from_fn`) that applies the `RateLimiter` in
/// the app data to every request.
pub async fn limit_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let verdict = match request.app_data::<web::Data<RateLimiter>>() {
        Some(limiter) => limiter.check_request(
            limiter.client_ip(
                request.peer_addr().map(|address| address.ip()),
                request
                    .headers()
                    .get("x-forwarded-for")
                    .and_then(|value| value.to_str().ok()),
            ),
            bearer_token(request.request()),
        ),
        None => Ok(()),
    };
    match verdict {
        Ok(()) => Ok(next.call(request).await?.map_into_left_body()),
        Err(retry_after_s) => {
            let response = ApiError::RateLimited { retry_after_s }.error_response();
            Ok(request.into_response(response).map_into_right_body())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(per_second: u32, burst: u32, max_tracked: usize) -> LimitsSection {
        LimitsSection {
            per_ip_per_second: per_second,
            per_ip_burst: burst,
            per_session_per_second: per_second,
            per_session_burst: burst,
            max_tracked,
            ..LimitsSection::default()
        }
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy = IpAddr::from([127, 0, 0, 9]);
        let mut section = limits(1, 1, 100);
        section.trusted_proxies = vec![proxy];
        let limiter = RateLimiter::new(&section);
        let client = IpAddr::from([203, 0, 113, 5]);
        // From the proxy: the last address of the header, the one the proxy saw.
        assert_eq!(
            limiter.client_ip(Some(proxy), Some("198.51.100.1, 203.0.113.5")),
            Some(client)
        );
        // Junk or no header: the proxy's own address.
        assert_eq!(
            limiter.client_ip(Some(proxy), Some("not-an-ip")),
            Some(proxy)
        );
        assert_eq!(limiter.client_ip(Some(proxy), None), Some(proxy));
        // From anyone else the header is ignored: a client cannot pick its address.
        let other = IpAddr::from([192, 0, 2, 7]);
        assert_eq!(
            limiter.client_ip(Some(other), Some("203.0.113.5")),
            Some(other)
        );
        // Two clients behind the proxy have buckets of their own.
        let now = Instant::now();
        let first = limiter.client_ip(Some(proxy), Some("203.0.113.5"));
        let second = limiter.client_ip(Some(proxy), Some("203.0.113.6"));
        assert_eq!(limiter.check(first, None, now), Ok(()));
        assert_eq!(limiter.check(first, None, now), Err(1));
        assert_eq!(limiter.check(second, None, now), Ok(()));
    }

    #[test]
    fn a_bucket_refuses_past_its_burst_and_refills_at_its_rate() {
        let limiter = RateLimiter::new(&limits(2, 3, 100));
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(ip, None, start), Ok(()));
        }
        assert_eq!(limiter.check(ip, None, start), Err(1));
        // Half a second at 2 per second is one token.
        let later = start + Duration::from_millis(500);
        assert_eq!(limiter.check(ip, None, later), Ok(()));
        assert_eq!(limiter.check(ip, None, later), Err(1));
        // Another address has its own bucket.
        assert_eq!(
            limiter.check(Some(IpAddr::from([10, 0, 0, 2])), None, later),
            Ok(())
        );
    }

    #[test]
    fn one_ipv6_network_shares_a_bucket() {
        let limiter = RateLimiter::new(&limits(1, 2, 100));
        let now = Instant::now();
        let host = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 7, 0, 0, 0, last]));
        assert_eq!(limiter.check(host(1), None, now), Ok(()));
        assert_eq!(limiter.check(host(2), None, now), Ok(()));
        assert_eq!(limiter.check(host(3), None, now), Err(1));
        let other_network = Some(IpAddr::from([0x2001, 0xdb8, 0, 8, 0, 0, 0, 1]));
        assert_eq!(limiter.check(other_network, None, now), Ok(()));
    }

    #[test]
    fn sessions_have_their_own_buckets_and_retry_after_is_whole_seconds() {
        let limiter = RateLimiter::new(&LimitsSection {
            per_session_per_second: 1,
            per_session_burst: 1,
            ..limits(1_000, 1_000, 100)
        });
        let now = Instant::now();
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        assert_eq!(limiter.check(ip, Some("token-a"), now), Ok(()));
        // 0.1 s after, 0.9 s are missing: rounded up to one whole second.
        let soon = now + Duration::from_millis(100);
        assert_eq!(limiter.check(ip, Some("token-a"), soon), Err(1));
        assert_eq!(limiter.check(ip, Some("token-b"), soon), Ok(()));
        assert_eq!(limiter.check(ip, None, soon), Ok(()));
        assert_eq!(
            limiter.check(ip, Some("token-a"), now + Duration::from_secs(1)),
            Ok(())
        );
    }

    #[test]
    fn a_flood_of_addresses_and_tokens_stays_within_max_tracked() {
        let limiter = RateLimiter::new(&limits(1, 5, 1_000));
        let now = Instant::now();
        for index in 0..50_000u32 {
            let ip = IpAddr::from(index.to_be_bytes());
            let token = format!("made-up-token-{index}");
            let at = now + Duration::from_micros(u64::from(index));
            assert!(limiter.check(Some(ip), Some(&token), at).is_ok());
        }
        let (ips, sessions) = limiter.tracked();
        assert!(ips <= 1_000 && sessions <= 1_000, "{ips} {sessions}");
        assert!(ips > 0 && sessions > 0);
    }

    #[test]
    fn quiet_clients_are_swept_before_busy_ones_are_dropped() {
        let limiter = RateLimiter::new(&limits(1, 2, 4));
        let start = Instant::now();
        let busy = Some(IpAddr::from([192, 0, 2, 1]));
        assert_eq!(limiter.check(busy, None, start), Ok(()));
        assert_eq!(limiter.check(busy, None, start), Ok(()));
        for last in 2..=4u8 {
            let quiet = Some(IpAddr::from([192, 0, 2, last]));
            assert_eq!(limiter.check(quiet, None, start), Ok(()));
        }
        assert_eq!(limiter.tracked().0, 4);
        // 1.5 s later the quiet buckets are full again and the busy one is not: a new
        // address sweeps the quiet ones and the busy one keeps what it has (1.5 tokens).
        let later = start + Duration::from_millis(1_500);
        assert_eq!(
            limiter.check(Some(IpAddr::from([192, 0, 2, 9])), None, later),
            Ok(())
        );
        assert_eq!(limiter.tracked().0, 2);
        assert_eq!(limiter.check(busy, None, later), Ok(()));
        assert_eq!(limiter.check(busy, None, later), Err(1));
    }
}

//! Rate limits of the public listener: one GCRA limiter per client IP address and one per
//! session (bearer token), checked by `limit_requests` before any handler runs. A request
//! that either limiter refuses is answered 429 problem+json `rate_limited` with a
//! `Retry-After` header (whole seconds) and changes nothing.
//!
//! The limiters are `governor`'s keyed GCRA (a rate per second and a burst, the same as a
//! token bucket of that size refilled at that rate) over `BoundedStore`, Gavel's own key
//! store, because governor's stores grow without a bound. Memory is bounded: each store
//! holds at most `max_tracked` keys. When a store is full, the keys whose limit has fully
//! recovered (their client went quiet) are swept first, since a fresh key would be the
//! same; if it is still full, the half with the oldest state is dropped. Dropping a key
//! only ever forgives a client, never refuses one, so a flood of addresses or made-up
//! tokens costs memory up to the cap and nothing else. Sessions are keyed by the SHA-256
//! of their token: no token is kept. The address is the TCP peer's (an IPv6 address counts
//! by its /64 network): a proxy in front of the node makes every client share its
//! address. Each node keeps its own limiters.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use governor::clock::{Clock, QuantaClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::StateStore;
use governor::Quota;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::auth::bearer_token;
use crate::config::LimitsSection;
use crate::model::error::ApiError;

/// A keyed store for governor that holds at most `capacity` keys: each key's theoretical
/// arrival time (GCRA's whole state), in nanoseconds from `start`.
struct BoundedStore<K, C: Clock> {
    capacity: usize,
    clock: C,
    /// Read before the limiter reads its own start, so "now" here is never behind the
    /// limiter's: a key swept as recovered is at most nanoseconds from fresh.
    start: C::Instant,
    map: Mutex<HashMap<K, Nanos>>,
}

impl<K: Hash + Eq, C: Clock> BoundedStore<K, C> {
    fn new(capacity: usize, clock: C) -> Self {
        BoundedStore {
            capacity: capacity.max(2),
            start: clock.now(),
            clock,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Sweeps the keys whose limit has recovered (arrival time not after now); drops the
    /// half with the oldest arrival times if that was not enough.
    fn make_room(&self, map: &mut HashMap<K, Nanos>) {
        let now = self.clock.now().duration_since(self.start);
        map.retain(|_, arrival| *arrival > now);
        if map.len() < self.capacity {
            return;
        }
        let mut arrivals: Vec<Nanos> = map.values().copied().collect();
        // The lower median: of an even count, exactly the newer half stays.
        let middle = (arrivals.len() - 1) / 2;
        let (_, median, _) = arrivals.select_nth_unstable(middle);
        let median = *median;
        map.retain(|_, arrival| *arrival > median);
    }
}

impl<K: Hash + Eq + Clone, C: Clock> StateStore for BoundedStore<K, C> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, decide: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut map = self.map.lock();
        if let Some(arrival) = map.get_mut(key) {
            let (outcome, next) = decide(Some(*arrival))?;
            *arrival = next;
            return Ok(outcome);
        }
        let (outcome, next) = decide(None)?;
        if map.len() >= self.capacity {
            self.make_room(&mut map);
        }
        map.insert(key.clone(), next);
        Ok(outcome)
    }
}

impl<K: Hash + Eq + Clone, C: Clock> ShrinkableKeyedStateStore<K> for BoundedStore<K, C> {
    fn retain_recent(&self, drop_below: Nanos) {
        self.map.lock().retain(|_, arrival| *arrival > drop_below);
    }

    fn len(&self) -> usize {
        self.map.lock().len()
    }

    fn is_empty(&self) -> bool {
        self.map.lock().is_empty()
    }
}

type Keyed<K, C> =
    governor::RateLimiter<K, BoundedStore<K, C>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One kind of limit: a keyed GCRA limiter at `per_second` with `burst`, over at most
/// `max_tracked` keys.
fn keyed<K: Hash + Eq + Clone, C: Clock + Clone>(
    per_second: u32,
    burst: u32,
    max_tracked: usize,
    clock: &C,
) -> Keyed<K, C> {
    let per_second = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::per_second(per_second).allow_burst(burst);
    let store = BoundedStore::new(max_tracked, clock.clone());
    governor::RateLimiter::new(quota, store, clock.clone())
}

/// Takes one cell for `key`, or answers the whole seconds until one is there (at least 1).
fn take<K: Hash + Eq + Clone, C: Clock>(
    limiter: &Keyed<K, C>,
    key: &K,
    clock: &C,
) -> Result<(), u64> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(clock.now());
        (wait.as_secs_f64().ceil() as u64).max(1)
    })
}

/// The public listener's rate limits, shared by its workers. `C` is the clock: the
/// monotonic clock in a node, a fake one in tests.
pub struct RateLimiter<C: Clock = QuantaClock> {
    clock: C,
    per_ip: Keyed<IpAddr, C>,
    per_session: Keyed<[u8; 32], C>,
    trusted_proxies: Vec<IpAddr>,
}

impl RateLimiter {
    pub fn new(limits: &LimitsSection) -> Self {
        RateLimiter::with_clock(limits, QuantaClock::default())
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    pub fn with_clock(limits: &LimitsSection, clock: C) -> Self {
        RateLimiter {
            trusted_proxies: limits.trusted_proxies.clone(),
            per_ip: keyed(
                limits.per_ip_per_second,
                limits.per_ip_burst,
                limits.max_tracked,
                &clock,
            ),
            per_session: keyed(
                limits.per_session_per_second,
                limits.per_session_burst,
                limits.max_tracked,
                &clock,
            ),
            clock,
        }
    }

    /// Counts one request from `ip` with `token` (if any), now: what the middleware
    /// calls. On refusal, the seconds until the client may try again.
    pub fn check_request(&self, ip: Option<IpAddr>, token: Option<&str>) -> Result<(), u64> {
        if let Some(ip) = ip {
            take(&self.per_ip, &client_network(ip), &self.clock)?;
        }
        if let Some(token) = token {
            let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            take(&self.per_session, &key, &self.clock)?;
        }
        Ok(())
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

    /// Keys held: (per IP, per session).
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
    use governor::clock::FakeRelativeClock;
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

    /// A limiter on a clock the test moves.
    fn limiter(section: &LimitsSection) -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (RateLimiter::with_clock(section, clock.clone()), clock)
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy = IpAddr::from([127, 0, 0, 9]);
        let mut section = limits(1, 1, 100);
        section.trusted_proxies = vec![proxy];
        let (limiter, _clock) = limiter(&section);
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
        // Two clients behind the proxy have limits of their own.
        let first = limiter.client_ip(Some(proxy), Some("203.0.113.5"));
        let second = limiter.client_ip(Some(proxy), Some("203.0.113.6"));
        assert_eq!(limiter.check_request(first, None), Ok(()));
        assert_eq!(limiter.check_request(first, None), Err(1));
        assert_eq!(limiter.check_request(second, None), Ok(()));
    }

    #[test]
    fn a_limit_refuses_past_its_burst_and_recovers_at_its_rate() {
        let (limiter, clock) = limiter(&limits(2, 3, 100));
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..3 {
            assert_eq!(limiter.check_request(ip, None), Ok(()));
        }
        assert_eq!(limiter.check_request(ip, None), Err(1));
        // Half a second at 2 per second is one more request.
        clock.advance(Duration::from_millis(500));
        assert_eq!(limiter.check_request(ip, None), Ok(()));
        assert_eq!(limiter.check_request(ip, None), Err(1));
        // Another address has its own limit.
        assert_eq!(
            limiter.check_request(Some(IpAddr::from([10, 0, 0, 2])), None),
            Ok(())
        );
        // After a quiet 1.5 s the whole burst is there again, and no more.
        clock.advance(Duration::from_millis(1_500));
        for _ in 0..3 {
            assert_eq!(limiter.check_request(ip, None), Ok(()));
        }
        assert_eq!(limiter.check_request(ip, None), Err(1));
    }

    #[test]
    fn a_refusal_costs_nothing_and_the_next_request_passes_on_time() {
        // One request per second: a request refused 1 ms early costs the client nothing.
        let (limiter, clock) = limiter(&limits(1, 1, 100));
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        assert_eq!(limiter.check_request(ip, None), Ok(()));
        assert_eq!(limiter.check_request(ip, None), Err(1));
        clock.advance(Duration::from_millis(999));
        assert_eq!(limiter.check_request(ip, None), Err(1));
        clock.advance(Duration::from_millis(1));
        assert_eq!(limiter.check_request(ip, None), Ok(()));
    }

    #[test]
    fn one_ipv6_network_shares_a_limit() {
        let (limiter, _clock) = limiter(&limits(1, 2, 100));
        let host = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 7, 0, 0, 0, last]));
        assert_eq!(limiter.check_request(host(1), None), Ok(()));
        assert_eq!(limiter.check_request(host(2), None), Ok(()));
        assert_eq!(limiter.check_request(host(3), None), Err(1));
        let other_network = Some(IpAddr::from([0x2001, 0xdb8, 0, 8, 0, 0, 0, 1]));
        assert_eq!(limiter.check_request(other_network, None), Ok(()));
    }

    #[test]
    fn sessions_have_their_own_limits_and_retry_after_is_whole_seconds() {
        let (limiter, clock) = limiter(&LimitsSection {
            per_session_per_second: 1,
            per_session_burst: 1,
            ..limits(1_000, 1_000, 100)
        });
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        assert_eq!(limiter.check_request(ip, Some("token-a")), Ok(()));
        // 0.1 s after, 0.9 s are missing: rounded up to one whole second.
        clock.advance(Duration::from_millis(100));
        assert_eq!(limiter.check_request(ip, Some("token-a")), Err(1));
        assert_eq!(limiter.check_request(ip, Some("token-b")), Ok(()));
        assert_eq!(limiter.check_request(ip, None), Ok(()));
        clock.advance(Duration::from_millis(900));
        assert_eq!(limiter.check_request(ip, Some("token-a")), Ok(()));
    }

    #[test]
    fn a_flood_of_addresses_and_tokens_stays_within_max_tracked() {
        let (limiter, clock) = limiter(&limits(1, 5, 1_000));
        for index in 0..50_000u32 {
            let ip = IpAddr::from(index.to_be_bytes());
            let token = format!("made-up-token-{index}");
            clock.advance(Duration::from_micros(1));
            assert!(limiter.check_request(Some(ip), Some(&token)).is_ok());
        }
        let (ips, sessions) = limiter.tracked();
        assert!(ips <= 1_000 && sessions <= 1_000, "{ips} {sessions}");
        assert!(ips > 0 && sessions > 0);
    }

    #[test]
    fn quiet_clients_are_swept_before_busy_ones_are_dropped() {
        let (limiter, clock) = limiter(&limits(1, 2, 4));
        let busy = Some(IpAddr::from([192, 0, 2, 1]));
        assert_eq!(limiter.check_request(busy, None), Ok(()));
        assert_eq!(limiter.check_request(busy, None), Ok(()));
        for last in 2..=4u8 {
            let quiet = Some(IpAddr::from([192, 0, 2, last]));
            assert_eq!(limiter.check_request(quiet, None), Ok(()));
        }
        assert_eq!(limiter.tracked().0, 4);
        // 1.5 s later the quiet clients' limits have recovered and the busy one's has not:
        // a new address sweeps the quiet ones and the busy one keeps what it has (one
        // request now, the next at 2 s).
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(
            limiter.check_request(Some(IpAddr::from([192, 0, 2, 9])), None),
            Ok(())
        );
        assert_eq!(limiter.tracked().0, 2);
        assert_eq!(limiter.check_request(busy, None), Ok(()));
        assert_eq!(limiter.check_request(busy, None), Err(1));
    }

    #[test]
    fn a_full_store_of_busy_clients_drops_the_older_half() {
        let (limiter, clock) = limiter(&limits(1, 10, 4));
        // Four busy clients, the later ones busier: none recovers within the test.
        for last in 1..=4u8 {
            for _ in 0..last {
                let ip = Some(IpAddr::from([192, 0, 2, last]));
                assert_eq!(limiter.check_request(ip, None), Ok(()));
            }
            clock.advance(Duration::from_millis(10));
        }
        assert_eq!(
            limiter.check_request(Some(IpAddr::from([192, 0, 2, 9])), None),
            Ok(())
        );
        // Two of four are left after the drop, plus the new one.
        assert_eq!(limiter.tracked().0, 3);
        // The dropped, least busy client starts afresh: its whole burst is there.
        for _ in 0..10 {
            assert_eq!(
                limiter.check_request(Some(IpAddr::from([192, 0, 2, 1])), None),
                Ok(())
            );
        }
    }
}

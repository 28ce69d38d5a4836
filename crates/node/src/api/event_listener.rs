//! The events listener (`listen.events`): the event streams on worker threads of their
//! own, at a lower scheduling priority than the workers that answer bids.
//!
//! A node that sends every bid to thousands of watchers spends most of its CPU writing to
//! them. On the public listener those writes run on the same workers as the bids, and a
//! bid waits behind them. On this listener they run on `http.event_workers` threads named
//! `gavel-events`, at nice 10 (`host::lower_this_thread_priority`): when the CPUs are
//! short the kernel's scheduler gives them to the bid workers first. A stream kept off
//! the CPU meanwhile falls behind and is then sent what it missed in one write
//! (`events::LiveStream`), so a starved stream costs less, not more. Since they give way
//! to the bids, these streams write a burst of bids every 10 ms rather than every 50 ms:
//! the bidders see the price sooner (`gavel bench requests`, 2,000 users: 8% more
//! accepted bids than at 50 ms; bid p99 median 71.8 ms against 43.9 ms, in runs that
//! overlap; 016a9e8, docs/benchmarks-history.md).
//!
//! Its connections are served by `event_server` rather than actix-http: a waiting stream
//! holds its task and its body, not two 8 KiB buffers.
//!
//! The listener serves the same two routes as the public one (which keeps serving them)
//! under the same rate limits and stream slots, with the public listener's TLS. The pages
//! open their streams here (`origin_for`: the page's own host, this port, the public
//! listener's scheme, written into the page's `<meta name="gavel-events">` and its
//! connect-src); CORS lets a page of the same host (`same_host`) read them and resume
//! them with `Last-Event-ID` (the streams are public views, opened without
//! credentials), and refuses another site's page before it takes a stream slot.

use std::time::Duration;

use actix_web::web;

/// The name of the listener's worker threads, as `top -H` and `/proc/<pid>/task` show it.
pub const WORKER_NAME: &str = "gavel-events";

/// The shortest time between two writes of one stream here: shorter than the public
/// listener's, since these writes give way to the bids by their priority; a stream kept
/// waiting gathers what came meanwhile into one write anyway.
const WRITE_INTERVAL: Duration = Duration::from_millis(10);

/// How long a browser may keep the answer to a preflight.
const PREFLIGHT_MAX_AGE_S: usize = 600;

/// Where this node's events listener is, as the pages need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsListener {
    pub port: u16,
    /// Whether it speaks TLS (as the public listener does).
    pub tls: bool,
}

impl EventsListener {
    /// The origin a page served to `host` (the request's `Host`, port or not) opens its
    /// streams on: the same host name, this listener's port. `None` for a host that is
    /// not a plain name or address (it goes into a header and a page).
    pub fn origin_for(&self, host: &str) -> Option<String> {
        let name = host_name(host)?;
        let scheme = if self.tls { "https" } else { "http" };
        Some(format!("{scheme}://{name}:{}", self.port))
    }
}

/// The host name of a `Host` value (`example:8081`, `example`, `[::1]:8081`, `[::1]`):
/// a name or IPv4 address without `:`, or an IPv6 address in brackets; `None` for
/// anything else.
fn host_name(host: &str) -> Option<&str> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') => (name, Some(port)),
        _ => (host, None),
    };
    if port.is_some_and(|port| port.parse::<u16>().is_err()) || name.len() > 253 {
        return None;
    }
    let bracketed = name.starts_with('[') && name.ends_with(']') && name.len() > 2;
    let plain = if bracketed {
        name[1..name.len() - 1]
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    } else {
        super::is_plain_authority(name) && !name.contains([':', '[', ']'])
    };
    plain.then_some(name)
}

/// Whether a page of `origin` may read the streams of a request for `host`: the page's
/// host is the one it asked this listener for (the public listener's page, on another
/// port of the same host). Another site's pages may not, so that no other site can make
/// its visitors' browsers hold the node's stream slots.
fn same_host(origin: &str, host: &str) -> bool {
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match (origin_host.and_then(host_name), host_name(host)) {
        (Some(page), Some(listener)) => page.eq_ignore_ascii_case(listener),
        _ => false,
    }
}

/// Called by each worker of the events listener as it builds its app, on the worker's
/// own thread: names the thread `gavel-events` and lowers its priority, once.
pub fn prepare_worker_thread() {
    thread_local! {
        static PREPARED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if PREPARED.with(|prepared| prepared.replace(true)) {
        return;
    }
    name_this_thread(WORKER_NAME);
    crate::host::lower_this_thread_priority();
}

/// Sets the calling thread's name as the kernel shows it (15 bytes at most).
fn name_this_thread(name: &str) {
    let Ok(name) = std::ffi::CString::new(name) else {
        return;
    };
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of the calling thread's new name.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}

/// The listener's CORS: a page of the same host (`same_host`) may read the streams (no
/// credentials), and may send `Last-Event-ID` when it resumes one; a request from
/// another site's page is refused (400) before it takes a stream slot.
pub fn cors() -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allowed_origin_fn(|origin, request| {
            let host = request.headers().get(actix_web::http::header::HOST);
            match (origin.to_str(), host.and_then(|host| host.to_str().ok())) {
                (Ok(origin), Some(host)) => same_host(origin, host),
                _ => false,
            }
        })
        .block_on_origin_mismatch(true)
        .allowed_methods(["GET"])
        .allowed_headers(["Last-Event-ID", "Cache-Control"])
        .max_age(PREFLIGHT_MAX_AGE_S)
}

/// The routes of the events listener: the two event streams, and the health checks.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .app_data(super::events::WriteInterval(WRITE_INTERVAL))
        .app_data(web::QueryConfig::default().error_handler(super::audit::query_error))
        .service(super::events::auction_events)
        .service(super::events::all_events)
        .route("/healthz", web::get().to(super::healthz));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_opens_its_streams_on_its_own_host_at_the_listeners_port() {
        let plain = EventsListener {
            port: 8181,
            tls: false,
        };
        let origin = |host: &str| plain.origin_for(host);
        assert_eq!(
            origin("127.0.0.1:8081").as_deref(),
            Some("http://127.0.0.1:8181")
        );
        assert_eq!(
            origin("bids.example.cn").as_deref(),
            Some("http://bids.example.cn:8181")
        );
        assert_eq!(origin("[::1]:8081").as_deref(), Some("http://[::1]:8181"));
        assert_eq!(origin("[::1]").as_deref(), Some("http://[::1]:8181"));
        let tls = EventsListener {
            port: 8443,
            tls: true,
        };
        assert_eq!(
            tls.origin_for("a.example:443").as_deref(),
            Some("https://a.example:8443")
        );
        for hostile in [
            "",
            "a b",
            "a'; script-src *",
            "a\"><script>",
            "a/b",
            "a:b:c",
            "host:",
            "[zz]:1",
            "[]",
            "a:99999",
        ] {
            assert_eq!(origin(hostile), None, "{hostile:?}");
        }
    }

    #[test]
    fn only_pages_of_the_same_host_may_read_the_streams() {
        assert!(same_host("http://127.0.0.1:8081", "127.0.0.1:8181"));
        assert!(same_host("https://Bids.Example.cn", "bids.example.cn:8443"));
        assert!(same_host("http://[::1]:8081", "[::1]:8181"));
        assert!(!same_host("http://evil.example", "bids.example.cn:8181"));
        assert!(!same_host("http://127.0.0.2:8081", "127.0.0.1:8181"));
        assert!(!same_host("null", "127.0.0.1:8181"));
        assert!(!same_host("http://127.0.0.1:8081", "a b"));
    }
}

//! The events listener's connections: HTTP/1.1 served without actix-http's dispatcher.
//!
//! An event stream's connection lives as long as its watcher does; on a node with tens of
//! thousands of watchers what each connection holds is most of the node's memory, and what
//! each write costs is most of its CPU. actix-http's dispatcher keeps a read buffer and a
//! write buffer of 8 KiB each for every connection, and copies each frame into the write
//! buffer before it goes out; with its task holding its future twice, 10.7 KiB per stream
//! at 10,000 watchers in `gavel bench fanout`, against 2.3 KiB here (BENCHMARKS.md). Here a
//! connection holds its request's head only until it is parsed (`httparse`), then nothing
//! but the response's body: each frame goes from the buffer it was rendered into, shared
//! by every stream, to the socket in one vectored write.
//!
//! The request is still answered by the listener's actix-web app — its routes, CORS, rate
//! limits, stream slots and errors are the public listener's — and the connection is closed
//! after the one answer (`Connection: close`: a browser opens one connection per event
//! stream anyway).
//!
//! Bounds (`Limits`): a request head of at most `MAX_HEAD_BYTES` and `MAX_HEADERS` headers,
//! complete within 5 s of the connection (with TLS, the handshake included), else 431, 400
//! or 408; `http.max_connections` connections per worker; a piece of an answer that cannot
//! be written within 60 s (a client that stopped reading) ends the connection, and its
//! close takes 2 s at most; a client that closes its end, or sends anything while its
//! stream is written, ends the stream at once and frees its stream slot; with TLS, at most
//! 16 KiB wait encrypted per connection.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_service::IntoServiceFactory;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{
    fn_factory, fn_service, AppConfig, Server, Service, ServiceFactory, ServiceResponse,
};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode, Uri, Version};
use actix_web::web::{Buf, Bytes, BytesMut};
use actix_web::HttpResponse;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest request head read: a browser's GET of a stream is well under 2 KiB.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// The most headers a request may have.
pub const MAX_HEADERS: usize = 32;
/// The most a TLS session keeps encrypted and unsent for a client slow to read.
const TLS_BUFFER_LIMIT: usize = 16 * 1024;
/// How long a connection's end may take: its last bytes, and the client's leftovers read.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The listener's threads and the bounds of its connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub threads: usize,
    /// Connections per thread.
    pub max_connections: usize,
    /// How long a connection has to send its request's whole head (and finish TLS).
    pub head_timeout: Duration,
    /// How long one piece of an answer (a frame, or one 128-bid chunk of a history) may
    /// take to be written before the connection is given up.
    pub write_timeout: Duration,
}

impl Limits {
    /// The bounds of a node's events listener: `threads` workers of `max_connections`.
    pub fn new(threads: usize, max_connections: usize) -> Self {
        Limits {
            threads,
            max_connections,
            head_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `listener` with the app `app` builds (one per worker thread, as
/// `actix_web::HttpServer` would), over TLS when `tls` is given.
pub fn serve<F, I, T, B>(
    listener: std::net::TcpListener,
    tls: Option<rustls::ServerConfig>,
    limits: Limits,
    app: F,
) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<T, actix_http::Request>,
    T: ServiceFactory<
            actix_http::Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let tls = tls.map(|mut config| {
        // HTTP/1.1 only, whatever the public listener's configuration offers.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let server = Server::build()
        .workers(limits.threads)
        .max_concurrent_connections(limits.max_connections)
        .disable_signals()
        .listen("events", listener, move || {
            let app = app().into_factory();
            let tls = tls.clone();
            fn_factory(move || {
                let service = app.new_service(AppConfig::default());
                let tls = tls.clone();
                async move {
                    let service = Rc::new(service.await?);
                    Ok::<_, ()>(fn_service(move |stream: tokio::net::TcpStream| {
                        let service = Rc::clone(&service);
                        let tls = tls.clone();
                        // Boxed: actix-server keeps the future it is given beside the one
                        // it awaits, so what is not boxed here costs every stream twice.
                        Box::pin(async move {
                            connection(stream, tls, limits, service.as_ref()).await;
                            Ok::<_, ()>(())
                        })
                    }))
                }
            })
        })?
        .run();
    Ok(server)
}

/// One connection: its request, answered, then closed.
async fn connection<S, B>(
    stream: tokio::net::TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    service: &S,
) where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    // A frame goes out as soon as it is written: these are small writes a watcher waits for.
    let _ = stream.set_nodelay(true);
    // The TLS handshake and the request's head share one deadline.
    let head_deadline = tokio::time::Instant::now() + limits.head_timeout;
    match tls {
        None => answer(stream, peer, head_deadline, limits, service).await,
        Some(acceptor) => {
            // Boxed, as the request's answer below: what only the start of a connection
            // needs is not kept in every stream's task for as long as it lives.
            let handshake =
                tokio::time::timeout_at(head_deadline, Box::pin(acceptor.accept(stream))).await;
            if let Ok(Ok(mut stream)) = handshake {
                stream.get_mut().1.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
                // Boxed: a TLS stream is several KiB, which a plain one need not hold.
                Box::pin(answer(stream, peer, head_deadline, limits, service)).await;
            }
        }
    }
}

async fn answer<IO, S, B>(
    mut stream: IO,
    peer: SocketAddr,
    head_deadline: tokio::time::Instant,
    limits: Limits,
    service: &S,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let head = match tokio::time::timeout_at(head_deadline, read_head(&mut stream, peer)).await {
        Err(_elapsed) => Err(Some(StatusCode::REQUEST_TIMEOUT)),
        Ok(head) => head,
    };
    let request = match head {
        Ok(request) => request,
        Err(refusal) => {
            if let Some(status) = refusal {
                let head = response_head(status, &HeaderMap::new(), Some(0), false);
                let _ = write_timed(&mut stream, head, limits.write_timeout).await;
            }
            close(&mut stream).await;
            return;
        }
    };
    let omit_body = request.head().method == Method::HEAD;
    let http10 = request.head().version == Version::HTTP_10;
    let response: HttpResponse<BoxBody> = match Box::pin(service.call(request)).await {
        Ok(response) => response.map_into_boxed_body().into_parts().1,
        Err(error) => error.error_response(),
    };
    let framing = Framing { omit_body, http10 };
    let _ = write_response(&mut stream, response, framing, limits.write_timeout).await;
    close(&mut stream).await;
}

/// Ends a connection: the answer's last bytes sent (with TLS, and its `close_notify`),
/// then what the client still sends read and dropped for a moment, as it may have sent
/// more than its head (a body, another request), and closing with bytes unread would
/// reset the connection before the client has read its answer. A second at most for each.
async fn close<IO: AsyncRead + AsyncWrite + Unpin>(stream: &mut IO) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
    let drain = async {
        let mut sink = [0u8; 256];
        let mut left = MAX_HEAD_BYTES * 8;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(read) => left = left.saturating_sub(read),
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain).await;
}

/// Why a request is not answered: with this status, or (`None`) not at all (the client
/// closed its end before sending a head).
type Refusal = Option<StatusCode>;

/// Reads the request head: the bytes up to the blank line, at most `MAX_HEAD_BYTES`.
/// Whatever follows it (a body, a pipelined request) is not read: the connection closes
/// after its answer.
async fn read_head<IO: AsyncRead + Unpin>(
    stream: &mut IO,
    peer: SocketAddr,
) -> Result<actix_http::Request, Refusal> {
    let mut buffer = BytesMut::with_capacity(1024);
    loop {
        if buffer.len() >= MAX_HEAD_BYTES {
            return Err(Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
        }
        let room = MAX_HEAD_BYTES - buffer.len();
        let read = (&mut *stream).take(room as u64).read_buf(&mut buffer).await;
        match read {
            Ok(0) | Err(_) => return Err(None),
            Ok(_) => {}
        }
        if let Some(request) = parse_head(&buffer, peer)? {
            return Ok(request);
        }
    }
}

/// The request in `bytes`, once they hold its whole head; `None` while they do not yet.
fn parse_head(bytes: &[u8], peer: SocketAddr) -> Result<Option<actix_http::Request>, Refusal> {
    let bad = Some(StatusCode::BAD_REQUEST);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE))
        }
        Err(_) => return Err(bad),
    }
    let (Some(method), Some(path), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(bad);
    };
    let mut request = actix_http::Request::new();
    let head = request.head_mut();
    head.method = Method::from_bytes(method.as_bytes()).map_err(|_| bad)?;
    head.uri = path.parse::<Uri>().map_err(|_| bad)?;
    head.version = match version {
        0 => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    head.peer_addr = Some(peer);
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| bad)?;
        let value = HeaderValue::from_bytes(header.value).map_err(|_| bad)?;
        head.headers.append(name, value);
    }
    Ok(Some(request))
}

/// How an answer goes out, from what the request asked for.
#[derive(Debug, Clone, Copy)]
struct Framing {
    /// A `HEAD` request: the head of the answer alone.
    omit_body: bool,
    /// An HTTP/1.0 client, which does not read chunks: a stream's end is the connection's.
    http10: bool,
}

/// The answer's head, then its body: whole, for a body of known size (an error, a
/// preflight, `/healthz`); in chunks as the body yields them, for a stream
/// (close-delimited for an HTTP/1.0 client).
async fn write_response<IO: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut IO,
    response: HttpResponse<BoxBody>,
    framing: Framing,
    timeout: Duration,
) -> io::Result<()> {
    let status = response.status();
    // 1xx, 204 and 304 have no body, and say no length.
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let length = match response.body().size() {
        _ if bodiless => None,
        BodySize::None => Some(0),
        BodySize::Sized(length) => Some(length),
        BodySize::Stream => None,
    };
    let omit_body = framing.omit_body || bodiless;
    let chunked = length.is_none() && !framing.http10 && !omit_body;
    let head = response_head(status, response.headers(), length, chunked);
    if omit_body {
        return write_timed(stream, head, timeout).await;
    }
    let body = response.into_body();
    if length.is_some() {
        let body = actix_web::body::to_bytes(body)
            .await
            .map_err(|_| io::Error::other("the answer's body failed"))?;
        return write_timed(stream, head.chain(body), timeout).await;
    }
    write_timed(stream, head, timeout).await?;
    write_stream(stream, body, chunked, timeout).await
}

/// Writes a stream's frames as its body yields them, until it ends, its client goes away
/// (closes its end, or sends anything more) or stops reading.
async fn write_stream<IO: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut IO,
    body: BoxBody,
    chunked: bool,
    timeout: Duration,
) -> io::Result<()> {
    let mut body = pin!(body);
    let mut probe = [0u8; 1];
    loop {
        let frame = tokio::select! {
            biased;
            _ = stream.read(&mut probe) => return Ok(()),
            frame = poll_fn(|context| body.as_mut().poll_next(context)) => frame,
        };
        match frame {
            None => break,
            Some(Err(_)) => return Ok(()),
            Some(Ok(frame)) if frame.is_empty() => {}
            Some(Ok(frame)) if chunked => {
                let piece = ChunkSize::of(frame.len()).chain(frame).chain(&b"\r\n"[..]);
                write_timed(stream, piece, timeout).await?;
            }
            Some(Ok(frame)) => write_timed(stream, frame, timeout).await?,
        }
    }
    if chunked {
        write_timed(stream, &b"0\r\n\r\n"[..], timeout).await?;
    }
    Ok(())
}

/// Writes all of `piece` (in one vectored write when the socket takes it) and flushes it
/// (with TLS, out of the session's buffer onto the socket), or fails when the client
/// leaves it unread for longer than `timeout`.
async fn write_timed<IO: AsyncWrite + Unpin>(
    stream: &mut IO,
    mut piece: impl Buf,
    timeout: Duration,
) -> io::Result<()> {
    let write = async {
        stream.write_all_buf(&mut piece).await?;
        stream.flush().await
    };
    match tokio::time::timeout(timeout, write).await {
        Ok(written) => written,
        Err(_elapsed) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// A chunk's size line (`1A2\r\n`), written without an allocation per frame and stream.
struct ChunkSize {
    line: [u8; 18],
    start: usize,
}

impl ChunkSize {
    fn of(length: usize) -> Self {
        let mut line = [0u8; 18];
        line[16..].copy_from_slice(b"\r\n");
        let (mut start, mut rest) = (16, length);
        loop {
            start -= 1;
            line[start] = b"0123456789ABCDEF"[rest % 16];
            rest /= 16;
            if rest == 0 {
                return ChunkSize { line, start };
            }
        }
    }
}

impl Buf for ChunkSize {
    fn remaining(&self) -> usize {
        self.line.len() - self.start
    }

    fn chunk(&self) -> &[u8] {
        &self.line[self.start..]
    }

    fn advance(&mut self, count: usize) {
        self.start = (self.start + count).min(self.line.len());
    }
}

/// The status line and headers of an answer: the app's headers, with the framing this
/// connection uses (`Content-Length`, or chunks), `Connection: close` and `Date`.
fn response_head(
    status: StatusCode,
    headers: &HeaderMap,
    length: Option<u64>,
    chunked: bool,
) -> Bytes {
    let mut head = BytesMut::with_capacity(256);
    let reason = status.canonical_reason().unwrap_or("");
    head.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", status.as_str()).as_bytes());
    let framing = [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
        header::DATE,
    ];
    for (name, value) in headers.iter().filter(|(name, _)| !framing.contains(name)) {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    match (length, chunked) {
        (Some(length), _) => {
            head.extend_from_slice(format!("content-length: {length}\r\n").as_bytes())
        }
        (None, true) => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        (None, false) => {}
    }
    let date = httpdate::fmt_http_date(SystemTime::now());
    head.extend_from_slice(format!("connection: close\r\ndate: {date}\r\n\r\n").as_bytes());
    head.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use actix_web::{web, App};
    use tokio::sync::broadcast;

    /// What the test app's streams send: a frame, or their end.
    type Events = broadcast::Sender<Option<Bytes>>;

    /// Counts the test app's streams alive: one is dropped when its connection's task
    /// lets go of it.
    struct Alive(Arc<AtomicUsize>);

    impl Alive {
        fn new(count: &Arc<AtomicUsize>) -> Self {
            count.fetch_add(1, Ordering::SeqCst);
            Alive(count.clone())
        }
    }

    impl Drop for Alive {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The test app: `/stream` sends what `events` carries until told to end, `/flood`
    /// sends 64 KiB pieces for ever, anything else answers `ok\n` to any method.
    fn app(
        events: Events,
        alive: Arc<AtomicUsize>,
    ) -> App<
        impl ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody>,
            Error = actix_web::Error,
            InitError = (),
        >,
    > {
        let stream_alive = alive.clone();
        App::new()
            .route(
                "/stream",
                web::get().to(move || {
                    let alive = Alive::new(&stream_alive);
                    let frames = futures::stream::unfold(
                        (events.subscribe(), alive),
                        |(mut receiver, alive)| async move {
                            match receiver.recv().await {
                                Ok(Some(frame)) => {
                                    Some((Ok::<_, actix_web::Error>(frame), (receiver, alive)))
                                }
                                _ => None,
                            }
                        },
                    );
                    async move { HttpResponse::Ok().streaming(frames) }
                }),
            )
            .route(
                "/flood",
                web::get().to(move || {
                    let alive = Alive::new(&alive);
                    let piece = Bytes::from(vec![b'x'; 64 * 1024]);
                    let frames = futures::stream::repeat(piece).map(move |piece| {
                        let _held = &alive;
                        Ok::<_, actix_web::Error>(piece)
                    });
                    async move { HttpResponse::Ok().streaming(frames) }
                }),
            )
            .route(
                "/nothing",
                web::get().to(|| async { HttpResponse::NoContent().finish() }),
            )
            .default_service(web::to(|| async { HttpResponse::Ok().body("ok\n") }))
    }

    use futures::StreamExt as _;

    struct Served {
        address: std::net::SocketAddr,
        events: Events,
        alive: Arc<AtomicUsize>,
        handle: actix_web::dev::ServerHandle,
    }

    fn serve_test_app(head_timeout_ms: u64, write_timeout_ms: u64) -> Served {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let (events, _) = broadcast::channel(16);
        let alive = Arc::new(AtomicUsize::new(0));
        let limits = Limits {
            threads: 1,
            max_connections: 64,
            head_timeout: Duration::from_millis(head_timeout_ms),
            write_timeout: Duration::from_millis(write_timeout_ms),
        };
        let (app_events, app_alive) = (events.clone(), alive.clone());
        let (sender, receiver) = std::sync::mpsc::channel();
        // The server on a system of its own, as a node runs it; the test is its client.
        std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = serve(listener, None, limits, move || {
                    app(app_events.clone(), app_alive.clone())
                })
                .expect("serve");
                sender.send(server.handle()).expect("handle");
                server.await
            })
        });
        let handle = receiver.recv().expect("the server started");
        Served {
            address,
            events,
            alive,
            handle,
        }
    }

    impl Served {
        fn send(&self, request: &[u8]) -> TcpStream {
            let mut stream = TcpStream::connect(self.address).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            stream.write_all(request).expect("send");
            stream
        }

        fn stop(self) {
            futures::executor::block_on(self.handle.stop(false));
        }

        /// Waits up to 5 s for `count` streams alive; whether they were.
        fn wait_alive(&self, count: usize) -> bool {
            let started = Instant::now();
            while self.alive.load(Ordering::SeqCst) != count {
                if started.elapsed() > Duration::from_secs(5) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            true
        }
    }

    /// Everything the server sends until it closes the connection.
    fn read_to_end(stream: &mut TcpStream) -> String {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn split(answer: &str) -> (&str, &str) {
        answer.split_once("\r\n\r\n").expect("a head and a body")
    }

    #[test]
    fn a_chunk_size_line_is_the_length_in_hex() {
        let line = |length: usize| {
            let mut size = ChunkSize::of(length);
            size.copy_to_bytes(size.remaining())
        };
        assert_eq!(line(0), "0\r\n");
        assert_eq!(line(9), "9\r\n");
        assert_eq!(line(0x1A2), "1A2\r\n");
        assert_eq!(line(usize::MAX), "FFFFFFFFFFFFFFFF\r\n");
        let mut size = ChunkSize::of(0xABC);
        size.advance(2);
        assert_eq!(size.chunk(), b"C\r\n");
    }

    #[test]
    fn a_stream_goes_out_in_chunks_and_the_connection_closes_after_it() {
        let served = serve_test_app(5_000, 5_000);
        let mut stream = served.send(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(served.wait_alive(1));
        for frame in ["data: 1\n\n", "data: 22\n\n"] {
            served.events.send(Some(Bytes::from(frame))).expect("sent");
        }
        served.events.send(None).expect("sent");
        let answer = read_to_end(&mut stream);
        let (head, body) = split(&answer);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        for line in ["transfer-encoding: chunked", "connection: close", "date: "] {
            assert!(head.contains(line), "{line} in {head}");
        }
        assert_eq!(body, "9\r\ndata: 1\n\n\r\nA\r\ndata: 22\n\n\r\n0\r\n\r\n");
        assert!(served.wait_alive(0));
        served.stop();
    }

    #[test]
    fn an_http_1_0_client_reads_a_stream_to_the_connections_end() {
        let served = serve_test_app(5_000, 5_000);
        let mut stream = served.send(b"GET /stream HTTP/1.0\r\n\r\n");
        assert!(served.wait_alive(1));
        served
            .events
            .send(Some(Bytes::from("data: 1\n\n")))
            .expect("sent");
        served.events.send(None).expect("sent");
        let answer = read_to_end(&mut stream);
        let (head, body) = split(&answer);
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert_eq!(body, "data: 1\n\n");
        served.stop();
    }

    #[test]
    fn an_answer_of_known_size_has_its_length_and_a_head_request_gets_the_head_alone() {
        let served = serve_test_app(5_000, 5_000);
        let answer = read_to_end(&mut served.send(b"GET /other HTTP/1.1\r\nHost: a\r\n\r\n"));
        let (head, body) = split(&answer);
        assert!(head.contains("content-length: 3\r\n"), "{head}");
        assert_eq!(body, "ok\n");
        // A client that closes its sending side after its request still gets the answer.
        let mut half_closed = served.send(b"GET /other HTTP/1.1\r\nHost: a\r\n\r\n");
        half_closed
            .shutdown(std::net::Shutdown::Write)
            .expect("half close");
        assert!(read_to_end(&mut half_closed).ends_with("\r\n\r\nok\n"));
        // A request that sent a body along still gets its answer whole.
        let mut with_body = served.send(
            &[
                &b"GET /other HTTP/1.1\r\nHost: a\r\nContent-Length: 65536\r\n\r\n"[..],
                &[b'z'; 65_536],
            ]
            .concat(),
        );
        assert!(read_to_end(&mut with_body).ends_with("\r\n\r\nok\n"));
        // 204: neither a length nor a body.
        let answer = read_to_end(&mut served.send(b"GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(
            answer.starts_with("HTTP/1.1 204 No Content\r\n"),
            "{answer}"
        );
        assert!(!answer.contains("content-length"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n"), "{answer}");
        let answer = read_to_end(&mut served.send(b"HEAD /other HTTP/1.1\r\nHost: a\r\n\r\n"));
        let (head, body) = split(&answer);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(body, "");
        served.stop();
    }

    #[test]
    fn a_bad_an_oversized_or_a_slow_head_is_refused_and_the_connection_closed() {
        let served = serve_test_app(300, 5_000);
        let status = |request: &[u8]| {
            let answer = read_to_end(&mut served.send(request));
            answer.get(9..12).unwrap_or_default().to_string()
        };
        assert_eq!(status(b"NOT A REQUEST\r\n\r\n"), "400");
        assert_eq!(
            status(b"GET /other HTTP/1.1\r\nBad\x01Name: x\r\n\r\n"),
            "400"
        );
        assert_eq!(status(b"GET /other HTTP/1.1\r\nHost: a\x7f\r\n\r\n"), "400");
        let long = format!(
            "GET /other HTTP/1.1\r\nX-Long: {}\r\n\r\n",
            "y".repeat(9_000)
        );
        assert_eq!(status(long.as_bytes()), "431");
        let many: String = (0..40).map(|n| format!("X-{n}: y\r\n")).collect();
        let many = format!("GET /other HTTP/1.1\r\n{many}\r\n");
        assert_eq!(status(many.as_bytes()), "431");
        // Half a head, then nothing: refused once the head's time is up.
        let started = Instant::now();
        assert_eq!(status(b"GET /other HTTP/1.1\r\nHost: a\r\n"), "408");
        assert!(started.elapsed() < Duration::from_secs(3));
        // A well-formed request still gets its answer.
        assert_eq!(status(b"GET /other HTTP/1.1\r\nHost: a\r\n\r\n"), "200");
        served.stop();
    }

    #[test]
    fn a_client_that_goes_away_frees_its_stream_at_once() {
        let served = serve_test_app(5_000, 5_000);
        let stream = served.send(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(served.wait_alive(1));
        drop(stream);
        // No event is sent: the stream ends because its client closed its end.
        assert!(served.wait_alive(0), "the stream outlived its client");
        served.stop();
    }

    #[test]
    fn a_client_that_stops_reading_is_cut_off_after_the_write_timeout() {
        let served = serve_test_app(5_000, 300);
        let _unread = served.send(b"GET /flood HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(served.wait_alive(1));
        // The socket's buffers fill, a write waits 300 ms, and the stream is let go.
        assert!(
            served.wait_alive(0),
            "the stream was kept for a client not reading"
        );
        served.stop();
    }
}

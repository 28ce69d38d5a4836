//! The body read timeout of both listeners: a request's body must have arrived in full
//! within `http.body_read_timeout_ms` of the handler starting to read it, or the request
//! is answered 408 problem+json `request_timeout` and its connection closed. actix-web
//! bounds the time to read a request's headers (`client_request_timeout`), not its body:
//! without this, a client that announces a body and sends it a byte at a time holds a
//! connection, and the handler's task, for as long as it likes.
//!
//! `limit_body_time` (a `middleware::from_fn`) wraps the payload of every request that
//! announces a body in a `TimedPayload`; the deadline's timer starts at the first read.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{web, HttpMessage};
use futures::Stream;

/// `http.body_read_timeout_ms`, in the app data of both listeners.
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

/// The message the payload error carries; `problem::json_error` knows it by its kind.
pub const BODY_TIMED_OUT: &str = "the request body did not arrive in time";

/// A payload that fails with `TimedOut` once its time is up.
struct TimedPayload {
    inner: Payload,
    limit: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    timed_out: bool,
}

impl Stream for TimedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.timed_out {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(context) {
            return Poll::Ready(item);
        }
        let limit = self.limit;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match deadline.as_mut().poll(context) {
            Poll::Ready(()) => {
                self.timed_out = true;
                let error = std::io::Error::new(std::io::ErrorKind::TimedOut, BODY_TIMED_OUT);
                Poll::Ready(Some(Err(PayloadError::Io(error))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether the request announces a body: a length other than 0, or chunks.
fn announces_body(request: &ServiceRequest) -> bool {
    let headers = request.headers();
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .map(str::trim);
    headers.contains_key(header::TRANSFER_ENCODING) || length.is_some_and(|length| length != "0")
}

/// The middleware that puts every announced body under the `BodyReadTimeout` in the
/// app data (none there: bodies are read without a time limit).
pub async fn limit_body_time(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = request
        .app_data::<web::Data<BodyReadTimeout>>()
        .map(|limit| limit.0);
    if let Some(limit) = limit.filter(|_| announces_body(&request)) {
        let inner = request.take_payload();
        let timed = TimedPayload {
            inner,
            limit,
            deadline: None,
            timed_out: false,
        };
        request.set_payload(Payload::Stream {
            payload: Box::pin(timed),
        });
    }
    next.call(request).await
}

/// Whether a payload error is the body read timeout's.
pub fn is_body_timeout(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_body_that_stops_arriving_fails_with_a_timeout_once() {
        let stalled = futures::stream::pending::<Result<Bytes, PayloadError>>();
        let mut timed = TimedPayload {
            inner: Payload::Stream {
                payload: Box::pin(stalled),
            },
            limit: Duration::from_millis(50),
            deadline: None,
            timed_out: false,
        };
        let started = std::time::Instant::now();
        let first = timed.next().await;
        assert!(
            matches!(&first, Some(Err(error)) if is_body_timeout(error)),
            "{first:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(timed.next().await.is_none());
    }

    #[tokio::test]
    async fn a_body_that_arrives_in_time_is_passed_on_whole() {
        let chunks = [b"{\"a\":".as_slice(), b"1}".as_slice()]
            .map(|chunk| Ok::<Bytes, PayloadError>(Bytes::from_static(chunk)));
        let timed = TimedPayload {
            inner: Payload::Stream {
                payload: Box::pin(futures::stream::iter(chunks)),
            },
            limit: Duration::from_secs(5),
            deadline: None,
            timed_out: false,
        };
        let chunks: Vec<Bytes> = timed.map(|chunk| chunk.expect("no error")).collect().await;
        assert_eq!(chunks.concat(), b"{\"a\":1}");
    }
}

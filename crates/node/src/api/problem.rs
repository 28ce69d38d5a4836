//! The one place where errors become HTTP responses: `application/problem+json`
//! (RFC 9457) with the stable `code` of API.md.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::actors::supervisor::ProposeError;
use gavel_kernel::Rejection;

/// The `Retry-After` of a stream refused for the stream caps: streams end when their
/// clients go, so a slot is likely free again within seconds.
const STREAM_RETRY_AFTER_S: u64 = 5;

/// Every error an HTTP handler can answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Rejected(#[from] Rejection),
    #[error("unknown bidder or wrong secret")]
    BadCredentials,
    #[error("a valid session token is required: Authorization: Bearer <token>")]
    Unauthenticated,
    #[error("a valid admin token is required: Authorization: Bearer <token>")]
    AdminUnauthorized,
    #[error("no leader is elected at the moment; retry shortly")]
    NoLeader,
    #[error("the node cannot serve this request now: {0}")]
    Unavailable(String),
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error("the request body did not arrive within the body read timeout")]
    BodyTimeout,
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("{0}")]
    NotFound(String),
    #[error("too many requests from this client; retry in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("too many wrong secrets for this bidder; sign-ins are refused for {retry_after_s} s")]
    SignInLocked { retry_after_s: u64 },
    /// `scope` says whose cap was reached: this client address's, or the node's.
    #[error("too many event streams open from {scope}; close one or retry later")]
    TooManyStreams { scope: &'static str },
    /// The path exists, not with this method; `allow` lists the methods it has.
    #[error("this endpoint answers {allow} only")]
    MethodNotAllowed { allow: String },
    #[error("fault injection is disabled on this node ([faults] enabled = false)")]
    FaultsDisabled,
}

impl ApiError {
    pub fn invalid(detail: String) -> Self {
        ApiError::Rejected(Rejection::InvalidRequest(detail))
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Rejected(rejection) => rejection.code(),
            ApiError::BadCredentials => "bad_credentials",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::AdminUnauthorized => "unauthorized",
            ApiError::NoLeader => "no_leader",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::BodyTimeout => "request_timeout",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::NotFound(_) => "not_found",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::SignInLocked { .. } => "sign_in_locked",
            ApiError::TooManyStreams { .. } => "too_many_streams",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::FaultsDisabled => "faults_disabled",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::Rejected(_) => "The request was refused",
            ApiError::BadCredentials | ApiError::Unauthenticated | ApiError::AdminUnauthorized => {
                "Not authenticated"
            }
            ApiError::NoLeader | ApiError::Unavailable(_) => "Service unavailable",
            ApiError::PayloadTooLarge => "Payload too large",
            ApiError::BodyTimeout => "Request timeout",
            ApiError::InvalidJson(_) => "Malformed request body",
            ApiError::UnsupportedMediaType => "Unsupported media type",
            ApiError::RateLimited { .. }
            | ApiError::SignInLocked { .. }
            | ApiError::TooManyStreams { .. } => "Too many requests",
            ApiError::MethodNotAllowed { .. } => "Method not allowed",
            ApiError::NotFound(_) | ApiError::FaultsDisabled => "Not found",
        }
    }
}

impl From<ProposeError> for ApiError {
    fn from(error: ProposeError) -> Self {
        match error {
            ProposeError::NotLeader { .. } => ApiError::NoLeader,
            ProposeError::Fatal(detail) => ApiError::Unavailable(detail),
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(error: actix::MailboxError) -> Self {
        ApiError::Unavailable(error.to_string())
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    pub detail: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        let status = match self {
            ApiError::Rejected(rejection) => rejection.http_status(),
            ApiError::BadCredentials | ApiError::Unauthenticated | ApiError::AdminUnauthorized => {
                401
            }
            ApiError::NoLeader | ApiError::Unavailable(_) => 503,
            ApiError::PayloadTooLarge => 413,
            ApiError::BodyTimeout => 408,
            ApiError::InvalidJson(_) => 400,
            ApiError::UnsupportedMediaType => 415,
            ApiError::RateLimited { .. }
            | ApiError::SignInLocked { .. }
            | ApiError::TooManyStreams { .. } => 429,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::NotFound(_) | ApiError::FaultsDisabled => 404,
        };
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let problem = Problem {
            problem_type: format!("https://gavel.invalid/problems/{}", self.code()),
            title: self.title().to_string(),
            status: status.as_u16(),
            code: self.code().to_string(),
            detail: self.to_string(),
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        match self {
            ApiError::NoLeader | ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::RateLimited { retry_after_s } | ApiError::SignInLocked { retry_after_s } => {
                response.insert_header((header::RETRY_AFTER, retry_after_s.to_string()));
            }
            ApiError::TooManyStreams { .. } => {
                response.insert_header((header::RETRY_AFTER, STREAM_RETRY_AFTER_S.to_string()));
            }
            _ => {}
        }
        if matches!(
            self,
            ApiError::Unauthenticated | ApiError::AdminUnauthorized
        ) {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            response.insert_header((header::ALLOW, allow.as_str()));
        }
        response.json(problem)
    }
}

/// Turns actix's body errors into problems: too large (413), not JSON (415), too slow
/// to arrive (408 `request_timeout`), malformed (400), or well-formed but wrong fields
/// (422 `invalid_request`).
pub fn json_error(
    error: actix_web::error::JsonPayloadError,
    _request: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    let api_error = match &error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Payload(payload) if super::body_timeout::is_body_timeout(payload) => {
            ApiError::BodyTimeout
        }
        JsonPayloadError::Deserialize(inner) if inner.is_data() => {
            ApiError::invalid(inner.to_string())
        }
        JsonPayloadError::Deserialize(inner) => ApiError::InvalidJson(inner.to_string()),
        other => ApiError::InvalidJson(other.to_string()),
    };
    api_error.into()
}

/// Path segments that do not parse answer 404, not 400.
pub fn path_error(
    error: actix_web::error::PathError,
    _request: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::NotFound(error.to_string()).into()
}

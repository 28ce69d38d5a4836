//! Every error the node answers a request with, and its stable `code` (docs/API.md).
//! The handlers, the actors and the spool share it; how it becomes an HTTP response
//! (status, headers, problem+json) is `api::problem`'s business.

use gavel_kernel::Rejection;

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

    pub fn title(&self) -> &'static str {
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

impl From<actix::MailboxError> for ApiError {
    fn from(error: actix::MailboxError) -> Self {
        ApiError::Unavailable(error.to_string())
    }
}

//! The one place where errors become HTTP responses: `application/problem+json`
//! (RFC 9457) with the stable `code` of docs/API.md.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::actors::supervisor::ProposeError;
use crate::model::error::ApiError;

/// The `Retry-After` of a stream refused for the stream caps: streams end when their
/// clients go, so a slot is likely free again within seconds.
const STREAM_RETRY_AFTER_S: u64 = 5;

impl From<ProposeError> for ApiError {
    fn from(error: ProposeError) -> Self {
        match error {
            ProposeError::NotLeader { .. } => ApiError::NoLeader,
            ProposeError::Fatal(detail) => ApiError::Unavailable(detail),
        }
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

//! What every operation of the listeners' OpenAPI documents shares, added by utoipa
//! modifiers: the bearer security schemes (`SessionAuth`, `AdminAuth`), the errors every
//! operation of a kind answers (a body that is not JSON, too large or of the wrong type,
//! or too slow to arrive; a missing token; a path that names nothing; no leader:
//! `ProblemResponses`), the public listener's rate limit (`RateLimitedResponses`), and
//! every error's real media type, `application/problem+json`.

use utoipa::openapi::path::{HttpMethod, Operation, ParameterIn};
use utoipa::openapi::response::Response;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::Modify;

pub(super) struct SessionAuth;

impl Modify for SessionAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub(super) struct AdminAuth;

impl Modify for AdminAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The media type of every error (RFC 9457).
const PROBLEM_MEDIA_TYPE: &str = "application/problem+json";

/// Adds the error responses operations share and serves every error as problem+json.
pub(super) struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        const METHODS: [HttpMethod; 5] = [
            HttpMethod::Get,
            HttpMethod::Post,
            HttpMethod::Put,
            HttpMethod::Delete,
            HttpMethod::Patch,
        ];
        for item in openapi.paths.paths.values_mut() {
            for method in METHODS {
                let operation = match method {
                    HttpMethod::Get => item.get.as_mut(),
                    HttpMethod::Post => item.post.as_mut(),
                    HttpMethod::Put => item.put.as_mut(),
                    HttpMethod::Delete => item.delete.as_mut(),
                    _ => item.patch.as_mut(),
                };
                if let Some(operation) = operation {
                    add_shared_errors(operation, method != HttpMethod::Get);
                    serve_errors_as_problems(operation);
                }
            }
        }
    }
}

/// The public listener's rate limits apply to every request it takes: every public
/// operation may answer 429.
pub(super) struct RateLimitedResponses;

impl Modify for RateLimitedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                operation
                    .responses
                    .responses
                    .entry("429".to_string())
                    .or_insert_with(|| {
                        RefOr::T(problem_response(
                            "rate_limited: over the per-address or per-session rate limit; retry after Retry-After (seconds)",
                        ))
                    });
            }
        }
    }
}

/// The errors an operation answers by its shape, each added unless the handler's own
/// annotation already documents that status.
fn add_shared_errors(operation: &mut Operation, writes: bool) {
    let mut shared: Vec<(&str, &str)> = Vec::new();
    if operation.request_body.is_some() {
        shared.extend([
            ("400", "invalid_json: the body is not well-formed JSON"),
            ("413", "payload_too_large: the body is over 64 KiB"),
            (
                "408",
                "request_timeout: the body did not arrive in full within http.body_read_timeout_ms",
            ),
            (
                "415",
                "unsupported_media_type: the body is not application/json",
            ),
            (
                "422",
                "invalid_request: unknown fields, wrong types or invalid values",
            ),
        ]);
    }
    if operation.security.is_some() {
        shared.push((
            "401",
            "unauthenticated or unauthorized: no valid bearer token",
        ));
    }
    let has_path_parameter = operation
        .parameters
        .iter()
        .flatten()
        .any(|parameter| matches!(parameter.parameter_in, ParameterIn::Path));
    if has_path_parameter {
        shared.push(("404", "not_found or auction_not_found"));
    }
    if writes {
        shared.push(("503", "no_leader or unavailable: retry after Retry-After"));
    }
    for (status, description) in shared {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(problem_response(description)));
    }
}

fn problem_response(description: &str) -> Response {
    let mut response = Response::new(description);
    let schema = RefOr::Ref(Ref::from_schema_name("Problem"));
    response
        .content
        .insert(PROBLEM_MEDIA_TYPE.to_string(), Content::new(Some(schema)));
    response
}

/// Every 4xx and 5xx response carries a Problem, whatever media type its annotation
/// defaulted to.
fn serve_errors_as_problems(operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        let content = response
            .content
            .shift_remove("application/json")
            .unwrap_or_else(|| Content::new(Some(RefOr::Ref(Ref::from_schema_name("Problem")))));
        response.content.clear();
        response
            .content
            .insert(PROBLEM_MEDIA_TYPE.to_string(), content);
    }
}

//! Credentials on the wire: the bearer token of a request, the hash of a session token
//! (sessions are kept only as SHA-256 hashes, `model::credentials`), and the operators of
//! the control listener, whose tokens are compared in constant time.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::model::credentials::sha256_hex;
use crate::model::error::ApiError;

/// The bearer token of a request, if it carries one.
pub fn bearer_token(request: &HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    // The scheme is case-insensitive (RFC 9110, section 11.1).
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty() && token.len() <= 512).then_some(token)
}

/// The hash of the request's session token. Whether it names a live session is the
/// kernel's decision, made on the leader, so a token works on every node even before
/// this node has applied the session.
pub fn session_token_hash(request: &HttpRequest) -> Result<String, ApiError> {
    let token = bearer_token(request).ok_or(ApiError::Unauthenticated)?;
    Ok(sha256_hex(token.as_bytes()))
}

/// An operator the control listener accepts: a name and the SHA-256 of its token.
#[derive(Clone)]
pub struct OperatorCredential {
    pub name: String,
    pub token_hash: [u8; 32],
}

impl OperatorCredential {
    pub fn new(name: &str, token: &str) -> Self {
        OperatorCredential {
            name: name.to_string(),
            token_hash: Sha256::digest(token.as_bytes()).into(),
        }
    }
}

impl std::fmt::Debug for OperatorCredential {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OperatorCredential")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// An authenticated operator on the control listener: the request carried the token of
/// one of the configured operators. Holds the operator's name for the audit trail.
pub struct Operator(pub String);

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        std::future::ready(authenticate_operator(request))
    }
}

fn authenticate_operator(request: &HttpRequest) -> Result<Operator, ApiError> {
    let app = request
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Unavailable("node state missing".to_string()))?;
    let token = bearer_token(request).ok_or(ApiError::AdminUnauthorized)?;
    let presented = Sha256::digest(token.as_bytes());
    // Every credential is compared, in constant time, whichever matches.
    let mut matched = None;
    for credential in &app.operators {
        if bool::from(presented.as_slice().ct_eq(&credential.token_hash)) {
            matched = Some(credential.name.clone());
        }
    }
    matched.map(Operator).ok_or(ApiError::AdminUnauthorized)
}

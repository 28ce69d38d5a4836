//! Credentials: session tokens are kept only as SHA-256 hashes; the admin token is
//! compared in constant time. Bidders' secrets are Argon2id (`bidder_secret`); the salted
//! SHA-256 here only reads the records of older releases until they are upgraded.

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::problem::ApiError;
use super::AppState;

/// Hex SHA-256 of a value.
pub fn sha256_hex(value: &[u8]) -> String {
    hex::encode(Sha256::digest(value))
}

/// A bidder's secret record as older releases stored it: SHA-256 over the salt and the
/// secret. Read at sign-in, then replaced by an Argon2id record.
pub fn secret_hash(salt_hex: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt_hex.as_bytes());
    hasher.update(b":");
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// A new random salt (16 bytes, hex).
pub fn new_salt() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A new session token (32 random bytes, hex). Only its hash is replicated.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Whether two hex hashes are equal, compared in constant time.
pub fn hashes_equal(left: &str, right: &str) -> bool {
    left.len() == right.len() && bool::from(left.as_bytes().ct_eq(right.as_bytes()))
}

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

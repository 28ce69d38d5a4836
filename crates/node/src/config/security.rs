//! The security sections of the configuration: operators and their tokens
//! (`[[security.operators]]`), the public listener's rate limits (`[limits]`) and the
//! optional TLS files (`[tls]`, whose section is `crate::tls::TlsSection`), with their
//! validation. The certificate files themselves are read and checked when the node starts
//! (`crate::tls`).

use super::*;

/// One operator's control token (`[[security.operators]]`). Debug output never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorToken {
    /// 1 to 64 characters of A-Z, a-z, 0-9, '_', '-', '.'; unique, and not the
    /// `operator_name` of the admin token.
    pub name: String,
    /// Bearer token of this operator, 16 characters or more, unique.
    pub token: String,
}

impl fmt::Debug for OperatorToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("OperatorToken")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `[limits]`: rate limits of the public listener (`api::limits`), a rate and a burst per
/// client IP address and per session token. A client over either gets 429 `rate_limited`
/// with `Retry-After`. Every client of a benchmark on loopback (or of a proxy not listed in
/// `trusted_proxies`) shares one address: raise the per-IP rate for those.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Requests per second one client address may sustain. Default 1000.
    pub per_ip_per_second: u32,
    /// Requests one client address may send at once after a quiet spell. Default 2000.
    pub per_ip_burst: u32,
    /// Requests per second one session token may sustain. Default 50.
    pub per_session_per_second: u32,
    /// Requests one session token may send at once. Default 100.
    pub per_session_burst: u32,
    /// Most clients tracked per kind (addresses, sessions); the quiet ones are forgotten
    /// first. Default 100000.
    pub max_tracked: usize,
    /// Addresses of reverse proxies (nginx) in front of the public listener. For a
    /// request from one of them, the per-IP limit counts the address the proxy saw: the
    /// last one in `X-Forwarded-For`. Empty by default: the header is then ignored, so a
    /// client cannot pick its own address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Wrong secrets in a row after which a bidder's sign-ins are refused for
    /// `sign_in_lockout_ms` (429 `sign_in_locked` with `Retry-After`). Default 5 (1 to 1000).
    pub sign_in_failures: u32,
    /// How long such a lockout lasts, and how far apart two failures may be to count as
    /// in a row. Default 60000 (1000 to 86400000).
    pub sign_in_lockout_ms: u64,
    /// Event streams one client address (an IPv6 address by its /64) may hold open on
    /// this node; one more is answered 429 `too_many_streams`. Default 100.
    pub max_streams_per_ip: usize,
    /// Event streams this node holds open for all clients together; one more is
    /// answered 429 `too_many_streams`. Default 10000 (at most `http.max_connections`).
    pub max_streams: usize,
    /// Argon2id hashes of bidders' secrets (sign-ins, registrations, spool records) this
    /// node runs at once, each on a blocking thread: about 20–40 ms of one CPU and 19 MiB
    /// each. A sign-in that waits 5 s for its turn is answered 429 `rate_limited`.
    /// Default 1, so a sign-in flood takes at most one CPU from bidding (1 to 64).
    pub secret_hash_concurrency: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            per_ip_per_second: 1_000,
            per_ip_burst: 2_000,
            per_session_per_second: 50,
            per_session_burst: 100,
            max_tracked: 100_000,
            trusted_proxies: Vec::new(),
            sign_in_failures: 5,
            sign_in_lockout_ms: 60_000,
            max_streams_per_ip: 100,
            max_streams: 10_000,
            secret_hash_concurrency: 1,
        }
    }
}

impl Config {
    pub(super) fn validate_rate_limits(&self) -> Result<(), ConfigError> {
        let limits = &self.limits;
        all_hold(&[
            (
                "limits.per_ip_per_second",
                limits.per_ip_per_second >= 1,
                AT_LEAST_ONE,
            ),
            (
                "limits.per_ip_burst",
                limits.per_ip_burst >= 1,
                AT_LEAST_ONE,
            ),
            (
                "limits.per_session_per_second",
                limits.per_session_per_second >= 1,
                AT_LEAST_ONE,
            ),
            (
                "limits.per_session_burst",
                limits.per_session_burst >= 1,
                AT_LEAST_ONE,
            ),
            (
                "limits.max_tracked",
                limits.max_tracked >= 2,
                "must be 2 or more",
            ),
            (
                "limits.sign_in_failures",
                (1..=1_000).contains(&limits.sign_in_failures),
                "must be between 1 and 1000",
            ),
            (
                "limits.sign_in_lockout_ms",
                (1_000..=86_400_000).contains(&limits.sign_in_lockout_ms),
                "must be between 1000 and 86400000",
            ),
            (
                "limits.max_streams_per_ip",
                limits.max_streams_per_ip >= 1,
                AT_LEAST_ONE,
            ),
            (
                "limits.secret_hash_concurrency",
                (1..=64).contains(&limits.secret_hash_concurrency),
                "must be between 1 and 64",
            ),
            (
                "limits.max_streams",
                (1..=self.http.max_connections).contains(&limits.max_streams),
                "must be between 1 and http.max_connections",
            ),
        ])
    }

    /// Certificate and key come in pairs, and peer TLS names its trusted CAs. Whether the
    /// files hold what they should is checked when the node loads them (`crate::tls`).
    pub(super) fn validate_tls(&self) -> Result<(), ConfigError> {
        let tls = &self.tls;
        let pair = |cert: &Option<PathBuf>, key: &Option<PathBuf>| cert.is_some() == key.is_some();
        require(
            pair(&tls.public_cert, &tls.public_key),
            "tls",
            "public_cert and public_key go together: set both or neither",
        )?;
        require(
            pair(&tls.peer_cert, &tls.peer_key),
            "tls",
            "peer_cert and peer_key go together: set both or neither",
        )?;
        require(
            tls.peer_cert.is_some() == tls.peer_ca.is_some(),
            "tls.peer_ca",
            "must be set exactly when peer TLS is on (peer_cert and peer_key): it names the CA that signs the other nodes' peer certificates",
        )
    }

    pub(super) fn validate_operators(&self) -> Result<(), ConfigError> {
        let security = &self.security;
        let mut names = BTreeSet::from([security.operator_name.as_str()]);
        let mut tokens: BTreeSet<&str> = security.admin_token.iter().map(String::as_str).collect();
        for (index, operator) in security.operators.iter().enumerate() {
            let key = |field: &str| format!("security.operators[{index}].{field}");
            require(is_operator_name(&operator.name), key("name"), OPERATOR_NAME)?;
            require(
                names.insert(operator.name.as_str()),
                key("name"),
                format!("repeats the operator name {:?}", operator.name),
            )?;
            require(
                operator.token.chars().count() >= MIN_SECRET_CHARS,
                key("token"),
                TOO_SHORT,
            )?;
            require(
                tokens.insert(operator.token.as_str()),
                key("token"),
                "repeats another operator's token (or the admin token)",
            )?;
        }
        Ok(())
    }
}

const OPERATOR_NAME: &str = "must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '-', '.'";

fn is_operator_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.'))
}

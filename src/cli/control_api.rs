//! The HTTP client of the command line: one `ApiRequest` to a node's control or public
//! listener (blocking HTTP with `ureq`), with the operator token of `ControlArgs` on the
//! control listener. A reply is JSON when it is JSON; an HTTP error becomes a `Failure`
//! naming the problem's `code` and `detail`. `ctl`, `audit`, `backup` and `migrate`
//! send their requests through it.

use std::time::Duration;

use serde_json::Value;

use super::Failure;
use gavel::config::ADMIN_TOKEN_ENV;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Long enough for a switchover, which answers once the new leader leads, and for a new
/// standby to catch up (`node add` answers then; the leader waits up to 120 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

/// Where a node's control listener is, and the token it wants.
#[derive(Debug, Clone, clap::Args)]
pub struct ControlArgs {
    /// Base URL of a node's control listener.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        default_value = "http://127.0.0.1:9081"
    )]
    pub control: String,
    /// An operator token: the admin token (`gavel cluster up` prints it) or one of
    /// `[[security.operators]]`.
    #[arg(long, global = true, value_name = "T", env = ADMIN_TOKEN_ENV, hide_env_values = true)]
    pub token: Option<String>,
}

impl ControlArgs {
    /// The operator token given, if any.
    pub(super) fn token(&self) -> Option<String> {
        self.token.clone().filter(|token| !token.is_empty())
    }

    /// Sends a request to the control listener, with the admin token.
    pub(super) fn send(&self, request: &ApiRequest) -> Result<Option<Value>, Failure> {
        let token = self.token.as_deref().filter(|token| !token.is_empty()).ok_or_else(|| {
            Failure::unusable(format!(
                "no admin token: pass --token or set {ADMIN_TOKEN_ENV} (`gavel cluster up` prints it and keeps it in DIR/cluster.toml)"
            ))
        })?;
        send(&self.control, Some(token), request)
    }
}

/// The listener a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listener {
    Control,
    Public,
}

/// One HTTP request of the API.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ApiRequest {
    pub listener: Listener,
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
}

impl ApiRequest {
    pub fn get_control(path: impl Into<String>) -> Self {
        ApiRequest {
            listener: Listener::Control,
            method: "GET",
            path: path.into(),
            body: None,
        }
    }

    pub fn post_control(path: impl Into<String>, body: Value) -> Self {
        ApiRequest {
            listener: Listener::Control,
            method: "POST",
            path: path.into(),
            body: Some(body),
        }
    }

    pub fn get_public(path: impl Into<String>) -> Self {
        ApiRequest {
            listener: Listener::Public,
            method: "GET",
            path: path.into(),
            body: None,
        }
    }
}

/// Percent-encodes an id for use as one path segment.
pub(super) fn path_segment(text: &str) -> String {
    let keep = |byte: u8| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
    text.bytes()
        .map(|byte| {
            if keep(byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// Sends `request` to the listener at `base_url`. `Ok(None)` is a success without a body.
pub(super) fn send(
    base_url: &str,
    token: Option<&str>,
    request: &ApiRequest,
) -> Result<Option<Value>, Failure> {
    let url = format!("{}{}", base_url.trim_end_matches('/'), request.path);
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build();
    let mut call = agent.request(request.method, &url);
    if let Some(token) = token {
        call = call.set("Authorization", &format!("Bearer {token}"));
    }
    let outcome = match &request.body {
        Some(body) => call.send_json(body),
        None => call.call(),
    };
    match outcome {
        Ok(response) => read_body(response, &url).map(|text| parse_body(&text)),
        Err(ureq::Error::Status(status, response)) => {
            let body = response.into_string().unwrap_or_default();
            Err(Failure::failed(describe_http_error(
                request.method,
                &url,
                status,
                &body,
            )))
        }
        Err(ureq::Error::Transport(transport)) => {
            // ureq's message starts with the URL; say it once.
            let text = transport.to_string();
            let cause = text.strip_prefix(&format!("{url}: ")).unwrap_or(&text);
            Err(Failure::failed(format!("cannot reach {url}: {cause}")))
        }
    }
}

fn read_body(response: ureq::Response, url: &str) -> Result<String, Failure> {
    response
        .into_string()
        .map_err(|error| Failure::failed(format!("cannot read the reply of {url}: {error}")))
}

/// JSON when it is JSON, else the text as is; nothing for an empty body.
fn parse_body(text: &str) -> Option<Value> {
    if text.trim().is_empty() {
        return None;
    }
    Some(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())))
}

/// `POST URL: 409 auction_exists: detail`, from a problem+json body when there is one.
fn describe_http_error(method: &str, url: &str, status: u16, body: &str) -> String {
    let problem: Option<Value> = serde_json::from_str(body).ok();
    match problem
        .as_ref()
        .and_then(|problem| Some((problem.get("code")?.as_str()?, problem)))
    {
        Some((code, problem)) => {
            let detail = problem
                .get("detail")
                .and_then(Value::as_str)
                .unwrap_or("(no detail)");
            format!("{method} {url}: {status} {code}: {detail}")
        }
        None => {
            let excerpt: String = body.trim().chars().take(300).collect();
            format!("{method} {url}: HTTP {status}: {excerpt}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_errors_show_the_problem_code_and_detail() {
        let problem = r#"{"type":"about:blank","title":"Conflict","status":409,"code":"auction_exists","detail":"a1 exists with another spec"}"#;
        assert_eq!(
            describe_http_error("POST", "http://n/control/v1/auctions", 409, problem),
            "POST http://n/control/v1/auctions: 409 auction_exists: a1 exists with another spec"
        );
        assert_eq!(
            describe_http_error("GET", "http://n/x", 502, "Bad Gateway"),
            "GET http://n/x: HTTP 502: Bad Gateway"
        );
    }

    #[test]
    fn unreachable_node_is_named_in_the_message() {
        // Port 1 on loopback: nothing listens there, so the connection is refused.
        let failure = send(
            "http://127.0.0.1:1",
            None,
            &ApiRequest::get_control("/control/v1/cluster"),
        )
        .unwrap_err();
        assert!(
            failure
                .message
                .starts_with("cannot reach http://127.0.0.1:1/control/v1/cluster"),
            "{}",
            failure.message
        );
    }
}

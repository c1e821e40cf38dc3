//! The client's errors: what went wrong, in words a person reads, and the
//! class a program branches on ([`ErrorClass`]).

use http::StatusCode;
use std::time::Duration;

/// A client error.
///
/// ```
/// use abacus::client::{ClientError, ErrorClass};
/// let e = ClientError::Connect {
///     url: "http://127.0.0.1:8002/".into(),
///     reason: "connection refused".into(),
/// };
/// assert_eq!(
///     e.to_string(),
///     "cannot connect to http://127.0.0.1:8002/ (connection refused) — is the server running? \
///      start it with `abacus serve`"
/// );
/// assert_eq!(e.class(), ErrorClass::Transport);
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection to the server could be made (refused, unreachable,
    /// host not found, TLS handshake failed).
    #[error("cannot connect to {url} ({reason}) — {}", connect_hint(url))]
    Connect {
        /// The URL the client was sending to.
        url: String,
        /// Why, in words (`connection refused`, `host not found` …).
        reason: String,
    },
    /// No answer within the call's deadline.
    #[error("no answer from {url} within {} ms", after.as_millis())]
    Timeout {
        /// The URL the client was sending to.
        url: String,
        /// The deadline.
        after: Duration,
    },
    /// The client's circuit breaker is open: the server failed repeatedly,
    /// and is not called again until the breaker's pause ends.
    #[error("{url} failed repeatedly; not calling it again for a while (circuit breaker open)")]
    Unavailable {
        /// The server's URL.
        url: String,
    },
    /// The request could not be sent or the reply not read.
    #[error("transport error: {0}")]
    Transport(String),
    /// The server answered with an A2A error.
    #[error("{0}")]
    Remote(RemoteError),
    /// The server answered with a non-success HTTP status and no A2A error.
    #[error("HTTP {0}: {1}")]
    Status(StatusCode, String),
    /// The reply was not valid JSON, or not the A2A type expected.
    #[error("invalid reply: {0}")]
    Invalid(String),
    /// A stream ended before its task reached a final state or asked for
    /// input (and without an error): the answer is incomplete, not empty.
    #[error("the stream ended before the task finished")]
    Truncated,
    /// The agent card names no interface this client can use.
    #[error("the agent offers no interface this client speaks: {0}")]
    NoInterface(String),
}

/// What kind of failure an error is: a CLI's exit code, a caller's retry
/// decision.
///
/// ```
/// use abacus::client::{ClientError, ErrorClass};
/// assert_eq!(ClientError::Truncated.class(), ErrorClass::Transport);
/// assert_eq!(ClientError::Invalid("x".into()).class(), ErrorClass::Protocol);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The server could not be reached, did not answer in time, or the
    /// connection broke: nothing is known about the request's outcome.
    Transport,
    /// The server answered, with an error or with something that is not
    /// A2A.
    Protocol,
}

impl ClientError {
    /// The class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            ClientError::Connect { .. }
            | ClientError::Timeout { .. }
            | ClientError::Unavailable { .. }
            | ClientError::Transport(_)
            | ClientError::Truncated => ErrorClass::Transport,
            ClientError::Remote(_)
            | ClientError::Status(..)
            | ClientError::Invalid(_)
            | ClientError::NoInterface(_) => ErrorClass::Protocol,
        }
    }

    /// The A2A error the server answered with, if that is what this is.
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            ClientError::Remote(r) => Some(r),
            _ => None,
        }
    }
}

/// An A2A error as the server sent it, on any binding: the JSON-RPC code
/// (for HTTP+JSON and gRPC, the code of its `ErrorInfo.reason`), the
/// reason and the message.
///
/// ```
/// use abacus::client::RemoteError;
/// let e = RemoteError::new(-32001, "task t-1 was not found");
/// assert_eq!(e.reason, "TASK_NOT_FOUND");
/// assert_eq!(e.to_string(), "TASK_NOT_FOUND (-32001): task t-1 was not found");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteError {
    /// The JSON-RPC error code (`-32001` task not found …).
    pub code: i32,
    /// The upper-case reason (`TASK_NOT_FOUND`).
    pub reason: String,
    /// The server's message.
    pub message: String,
    /// The error's details as sent (`ErrorInfo` and friends), or null.
    pub details: serde_json::Value,
}

impl RemoteError {
    /// An error of `code`, its reason from the A2A error table.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        RemoteError {
            code,
            reason: crate::protocol::error_reason(code).to_string(),
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// An error named by its reason (HTTP+JSON, gRPC), its code from the
    /// table; an unknown reason keeps `fallback_code`.
    pub fn from_reason(reason: &str, fallback_code: i32, message: impl Into<String>) -> Self {
        let code = crate::protocol::ERROR_KINDS
            .iter()
            .find(|k| k.reason == reason)
            .map_or(fallback_code, |k| k.code);
        RemoteError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// The `reason` of the first `ErrorInfo` among `details`.
    pub(crate) fn reason_in(details: &serde_json::Value) -> Option<&str> {
        details.as_array()?.iter().find_map(|d| {
            d["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("google.rpc.ErrorInfo"))
                .then(|| d["reason"].as_str())
                .flatten()
        })
    }
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.code, self.message)
    }
}

/// What to try when `url` cannot be reached: a local server is most
/// often simply not started.
fn connect_hint(url: &str) -> &'static str {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let local = ["127.", "localhost", "[::1]", "0.0.0.0"]
        .iter()
        .any(|l| host.starts_with(l));
    if local {
        "is the server running? start it with `abacus serve`"
    } else {
        "is the server running, and is the URL right?"
    }
}

/// A send error of the HTTP client as the caller should read it: a
/// connection that could not be made says where to and why, in words.
pub(crate) fn transport(url: &str, e: hyper_util::client::legacy::Error) -> ClientError {
    if !e.is_connect() {
        return ClientError::Transport(error_chain(&e));
    }
    connect_error(url, &e)
}

/// The `Connect` error for `e`: the innermost cause says what happened;
/// the outer ones only "client error (Connect)".
pub(crate) fn connect_error(url: &str, e: &(dyn std::error::Error + 'static)) -> ClientError {
    let mut cause: &(dyn std::error::Error + 'static) = e;
    let mut io_kind = None;
    while let Some(next) = cause.source() {
        if let Some(io) = next.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        cause = next;
    }
    let reason = match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_string(),
        Some(std::io::ErrorKind::TimedOut) => "timed out".to_string(),
        Some(std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable) => {
            "unreachable".to_string()
        }
        _ => {
            let text = cause.to_string();
            if text.contains("lookup address") || text.contains("not known") {
                "host not found".to_string()
            } else {
                text
            }
        }
    };
    ClientError::Connect {
        url: url.to_string(),
        reason,
    }
}

/// `error: cause: cause`, without repeats (hyper's top-level messages
/// alone say little).
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_depends_on_whether_the_server_is_local() {
        for local in [
            "http://127.0.0.1:8002/",
            "http://localhost:8002",
            "https://user:pw@[::1]:8443/a2a",
        ] {
            assert!(connect_hint(local).contains("abacus serve"), "{local}");
        }
        for remote in ["https://agents.example.com/", "http://10.0.0.7:8002/"] {
            assert!(!connect_hint(remote).contains("abacus serve"), "{remote}");
        }
    }

    #[test]
    fn a_reason_names_its_code_and_an_unknown_one_keeps_the_fallback() {
        let e = RemoteError::from_reason("TASK_NOT_CANCELABLE", -32603, "done already");
        assert_eq!(e.code, -32002);
        let e = RemoteError::from_reason("SOMETHING_NEW", -32603, "?");
        assert_eq!((e.code, e.reason.as_str()), (-32603, "SOMETHING_NEW"));
        let details = serde_json::json!([
            {"@type": "type.googleapis.com/google.rpc.BadRequest"},
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "TASK_NOT_FOUND"}
        ]);
        assert_eq!(RemoteError::reason_in(&details), Some("TASK_NOT_FOUND"));
    }
}

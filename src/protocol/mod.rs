//! A2A v1.0 wire types and the request/response values that flow through the stack.
//!
//! The data model (Message, Part, Task, AgentCard, the streaming events, the
//! error codes) comes from the official `a2a-lf` crate and is re-exported
//! here as [`types`]. This module adds what a server needs around it:
//! the typed [`A2ARequest`] decoded once at the edge, the [`A2AResponse`]
//! the core service produces, and the JSON-RPC envelope codec.

pub mod jsonrpc;
mod request;
mod response;

pub use a2a as types;
pub use a2a::error_code;
pub use a2a::{A2AError, JsonRpcId};
pub use request::{A2ARequest, Call, RequestMeta};
pub use response::{A2AResponse, EventStream, Reply, StreamItem, Unary};

/// JSON-RPC codes of this server's own failures, in the implementation-defined
/// server-error range (-32000 to -32099) outside the codes A2A assigns.
pub mod server_error {
    /// The request ran past its deadline (timeout layer).
    pub const TIMEOUT: i32 = -32060;
    /// Too many requests in flight; retry later (concurrency layer).
    pub const OVERLOADED: i32 = -32061;
    /// A dependency is failing and its circuit breaker is open.
    pub const UNAVAILABLE: i32 = -32062;
}

/// A short upper-case name for an error code (`TASK_NOT_FOUND`, `OVERLOADED`).
///
/// ```
/// assert_eq!(abacus::protocol::error_reason(-32001), "TASK_NOT_FOUND");
/// assert_eq!(abacus::protocol::error_reason(abacus::protocol::server_error::TIMEOUT), "DEADLINE_EXCEEDED");
/// ```
pub fn error_reason(code: i32) -> &'static str {
    match code {
        server_error::TIMEOUT => "DEADLINE_EXCEEDED",
        server_error::OVERLOADED => "OVERLOADED",
        server_error::UNAVAILABLE => "UNAVAILABLE",
        other => a2a::error_reason(other),
    }
}

/// The texts of every part in a reply (message, task status, artifacts,
/// stream events), leaving out the history.
///
/// ```
/// let reply = serde_json::json!({"message": {"parts": [{"text": "4"}]}});
/// assert_eq!(abacus::protocol::reply_texts(&reply), ["4"]);
/// ```
pub fn reply_texts(v: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(parts) = o.get("parts").and_then(serde_json::Value::as_array) {
                    out.extend(
                        parts
                            .iter()
                            .filter_map(|p| p["text"].as_str().map(String::from)),
                    );
                }
                for (k, child) in o {
                    if k != "parts" && k != "history" {
                        walk(child, out);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

/// The protocol version this server speaks, as sent in the `A2A-Version` header.
pub const PROTOCOL_VERSION: &str = "1.0";

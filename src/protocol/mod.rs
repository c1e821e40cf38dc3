//! A2A v1.0 wire types and the request/response values that flow through the stack.
//!
//! The data model (Message, Part, Task, AgentCard, the streaming events, the
//! error codes) comes from the official `a2a-lf` crate and is re-exported
//! here as [`types`]. This module adds what a server needs around it:
//! the typed [`A2ARequest`] decoded once at the edge (the operations in one
//! table, [`Method`]), the [`A2AResponse`] the core service produces, the
//! error table of every binding ([`ERROR_KINDS`], [`ToRpcError`]) and the
//! JSON-RPC envelope codec.

mod errors;
mod json;
pub mod jsonrpc;
mod method;
mod request;
mod response;

pub use a2a as types;
pub use a2a::error_code;
pub use a2a::{A2AError, JsonRpcId};
pub(crate) use errors::timeout_error;
pub use errors::{
    error_kind, error_reason, http_error_body, rpc_error_for_ref, server_error, wire_error,
    ErrorKind, ErrorTableRevision, ToRpcError, ERROR_KINDS, ERROR_TABLE_REVISION, V1_0_1_CHANGES,
};
pub use method::Method;
pub use request::{A2ARequest, Binding, Call, Principal, PushCall, RequestMeta};
pub use response::{A2AResponse, EventStream, Reply, StreamEvent, StreamItem, Unary};

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

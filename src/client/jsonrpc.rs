//! The JSON-RPC binding: `POST` of a JSON-RPC 2.0 envelope; streams as SSE
//! of envelopes.

use super::call::{Call, Reply};
use super::conn::{self, Http};
use super::error::{ClientError, RemoteError};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// The JSON-RPC endpoint of one agent.
#[derive(Clone)]
pub(crate) struct JsonRpc {
    pub(crate) http: Http,
    pub(crate) url: Arc<str>,
    pub(crate) next_id: Arc<AtomicI64>,
}

impl JsonRpc {
    pub(crate) async fn call(self, call: Call) -> Result<Reply, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let envelope = json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": call.method().name(),
            "params": call.params(),
        });
        let streaming = matches!(call, Call::Stream(_) | Call::Subscribe(..));
        let accept = if streaming {
            "text/event-stream"
        } else {
            "application/json"
        };
        let body = serde_json::to_vec(&envelope).unwrap_or_default();
        let mut req = conn::request(http::Method::POST, &self.url, Some(body), accept)?;
        if let Call::Subscribe(_, Some(last)) = &call {
            if let Ok(v) = http::HeaderValue::from_str(last) {
                req.headers_mut().insert("last-event-id", v);
            }
        }
        let resp = self.http.send(req, &self.url).await?;
        if streaming && resp.status().is_success() && conn::is_sse(&resp) {
            let events = conn::events(resp.into_body(), self.http.max_event_bytes, result);
            return Ok(Reply::Events(events));
        }
        let (status, bytes) = conn::body(resp).await?;
        // A JSON-RPC error comes with any status; only a body that is not
        // JSON-RPC is an HTTP error.
        let v = conn::json(status, &bytes)?;
        if v.get("error").is_none() && !status.is_success() {
            return Err(ClientError::Status(status, conn::snippet(&bytes)));
        }
        call.typed(result(v)?)
    }
}

/// The `result` of a reply envelope, or its `error` as a [`RemoteError`].
fn result(mut v: Value) -> Result<Value, ClientError> {
    if let Some(e) = v.get_mut("error") {
        let code = e["code"]
            .as_i64()
            .and_then(|c| i32::try_from(c).ok())
            .unwrap_or(crate::protocol::error_code::INTERNAL_ERROR);
        let message = e["message"].as_str().unwrap_or_default().to_string();
        let details = e.get_mut("data").map(Value::take).unwrap_or(Value::Null);
        let mut remote = match RemoteError::reason_in(&details) {
            Some(reason) => RemoteError::from_reason(reason, code, message),
            None => RemoteError::new(code, message),
        };
        remote.code = code;
        remote.details = details;
        return Err(ClientError::Remote(remote));
    }
    match v.get_mut("result") {
        Some(r) => Ok(r.take()),
        None => Err(ClientError::Invalid(
            "a JSON-RPC reply with neither result nor error".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_keeps_its_code_and_takes_the_reason_of_its_error_info() {
        let v = json!({"jsonrpc": "2.0", "id": 1, "error": {
            "code": -32001, "message": "no such task",
            "data": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "TASK_NOT_FOUND", "domain": "a2a-protocol.org"}]
        }});
        let Err(ClientError::Remote(e)) = result(v) else {
            panic!("an error")
        };
        assert_eq!((e.code, e.reason.as_str()), (-32001, "TASK_NOT_FOUND"));
        assert_eq!(e.message, "no such task");
        let v = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "bad"}});
        let Err(ClientError::Remote(e)) = result(v) else {
            panic!("an error")
        };
        assert_eq!(e.reason, "INVALID_PARAMS");
        assert!(matches!(
            result(json!({"id": 1})),
            Err(ClientError::Invalid(_))
        ));
    }
}

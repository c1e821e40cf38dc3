//! The HTTP+JSON binding: one route per operation (`POST /message:send`,
//! `GET /tasks/{id}` …), errors as `google.rpc.Status` bodies, streams as
//! SSE of bare `StreamResponse`s.

use super::call::{Call, Reply};
use super::conn::{self, Http};
use super::error::{ClientError, RemoteError};
use http::Method as Verb;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use std::sync::Arc;

/// Escaped in a path segment or query value: all but RFC 3986 unreserved.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The HTTP+JSON endpoint of one agent (its base URL, without a trailing
/// slash).
#[derive(Clone)]
pub(crate) struct Rest {
    pub(crate) http: Http,
    pub(crate) base: Arc<str>,
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// The query of a GET: the request's scalar fields but those in the path.
fn query(params: &Value, skip: &[&str]) -> String {
    let mut pairs = Vec::new();
    if let Some(fields) = params.as_object() {
        for (k, v) in fields {
            if skip.contains(&k.as_str()) {
                continue;
            }
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            pairs.push(format!("{}={}", enc(k), enc(&text)));
        }
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

/// Verb, path (after the base and tenant), body of `call`.
fn route(call: &Call) -> (Verb, String, Option<Value>) {
    let params = call.params();
    let id = |p: &Value, k: &str| enc(p[k].as_str().unwrap_or_default());
    let path_only = ["id", "tenant"];
    match call {
        Call::Send(_) => (Verb::POST, "/message:send".into(), Some(params)),
        Call::Stream(_) => (Verb::POST, "/message:stream".into(), Some(params)),
        Call::Get(_) => (
            Verb::GET,
            format!("/tasks/{}{}", id(&params, "id"), query(&params, &path_only)),
            None,
        ),
        Call::List(_) => (
            Verb::GET,
            format!("/tasks{}", query(&params, &["tenant"])),
            None,
        ),
        Call::Cancel(_) => {
            let mut body = params.clone();
            if let Some(o) = body.as_object_mut() {
                o.remove("id");
                o.remove("tenant");
            }
            (
                Verb::POST,
                format!("/tasks/{}:cancel", id(&params, "id")),
                Some(body),
            )
        }
        Call::Subscribe(..) => (
            Verb::GET,
            format!("/tasks/{}:subscribe", id(&params, "id")),
            None,
        ),
        Call::CreatePush(_) => (
            Verb::POST,
            format!("/tasks/{}/pushNotificationConfigs", id(&params, "taskId")),
            Some(params),
        ),
        Call::ListPush(_) => (
            Verb::GET,
            format!(
                "/tasks/{}/pushNotificationConfigs{}",
                id(&params, "taskId"),
                query(&params, &["taskId", "tenant"])
            ),
            None,
        ),
        Call::GetPush(_) | Call::DeletePush(_) => (
            if matches!(call, Call::GetPush(_)) {
                Verb::GET
            } else {
                Verb::DELETE
            },
            format!(
                "/tasks/{}/pushNotificationConfigs/{}",
                id(&params, "taskId"),
                id(&params, "id")
            ),
            None,
        ),
        Call::ExtendedCard(_) => (Verb::GET, "/extendedAgentCard".into(), None),
    }
}

impl Rest {
    pub(crate) async fn call(self, call: Call) -> Result<Reply, ClientError> {
        let (verb, path, body) = route(&call);
        let tenant = call.params()["tenant"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(|t| format!("/{}", enc(t)))
            .unwrap_or_default();
        let url = format!("{}{tenant}{path}", self.base);
        let streaming = matches!(call, Call::Stream(_) | Call::Subscribe(..));
        let accept = if streaming {
            "text/event-stream"
        } else {
            "application/json"
        };
        let body = body.map(|b| serde_json::to_vec(&b).unwrap_or_default());
        let mut req = conn::request(verb, &url, body, accept)?;
        if let Call::Subscribe(_, Some(last)) = &call {
            if let Ok(v) = http::HeaderValue::from_str(last) {
                req.headers_mut().insert("last-event-id", v);
            }
        }
        let resp = self.http.send(req, &url).await?;
        if streaming && resp.status().is_success() && conn::is_sse(&resp) {
            let events = conn::events(resp.into_body(), self.http.max_event_bytes, bare_event);
            return Ok(Reply::Events(events));
        }
        let (status, bytes) = conn::body(resp).await?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) if v["error"].is_object() => status_error(status, v),
                _ => ClientError::Status(status, conn::snippet(&bytes)),
            });
        }
        if matches!(call, Call::DeletePush(_)) {
            return Ok(Reply::Done);
        }
        call.typed(conn::json(status, &bytes)?)
    }
}

/// A streamed event of HTTP+JSON: the `StreamResponse` itself, or an
/// AIP-193 error.
fn bare_event(v: Value) -> Result<Value, ClientError> {
    if v.get("error").is_some() {
        return Err(status_error(http::StatusCode::OK, v));
    }
    Ok(v)
}

/// An AIP-193 error body as a [`RemoteError`]: its `ErrorInfo.reason`
/// names the A2A error; without one, the HTTP status says what it can.
fn status_error(status: http::StatusCode, mut v: Value) -> ClientError {
    let e = &mut v["error"];
    let message = e["message"].as_str().unwrap_or_default().to_string();
    let details = e.get_mut("details").map(Value::take).unwrap_or(Value::Null);
    let fallback = match status.as_u16() {
        400 => crate::protocol::error_code::INVALID_PARAMS,
        404 => crate::protocol::error_code::TASK_NOT_FOUND,
        _ => crate::protocol::error_code::INTERNAL_ERROR,
    };
    let mut remote = match RemoteError::reason_in(&details) {
        Some(reason) => RemoteError::from_reason(reason, fallback, message),
        None => RemoteError::new(fallback, message),
    };
    remote.details = details;
    ClientError::Remote(remote)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::{GetTaskRequest, ListTasksRequest, TaskState};

    #[test]
    fn ids_are_escaped_and_scalars_become_the_query() {
        let get = Call::Get(GetTaskRequest {
            id: "a/b c".into(),
            history_length: Some(2),
            tenant: None,
        });
        let (verb, path, body) = route(&get);
        assert_eq!(verb, Verb::GET);
        assert_eq!(path, "/tasks/a%2Fb%20c?historyLength=2");
        assert!(body.is_none());
        let list = Call::List(ListTasksRequest {
            context_id: Some("c 1".into()),
            status: Some(TaskState::Working),
            page_size: Some(5),
            page_token: None,
            history_length: None,
            status_timestamp_after: None,
            include_artifacts: None,
            tenant: None,
        });
        let (_, path, _) = route(&list);
        assert!(path.starts_with("/tasks?"), "{path}");
        for part in ["contextId=c%201", "status=TASK_STATE_WORKING", "pageSize=5"] {
            assert!(path.contains(part), "{path} lacks {part}");
        }
    }

    #[test]
    fn an_error_body_names_the_a2a_error() {
        let v = serde_json::json!({"error": {"code": 404, "status": "NOT_FOUND", "message": "no task t",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "TASK_NOT_FOUND"}]}});
        let ClientError::Remote(e) = status_error(http::StatusCode::NOT_FOUND, v) else {
            panic!("remote")
        };
        assert_eq!((e.code, e.message.as_str()), (-32001, "no task t"));
    }
}

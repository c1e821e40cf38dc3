//! The HTTP+JSON (REST) binding, A2A §11: one route per operation, the
//! operation's proto-JSON request in the body (`POST`) or in the path and
//! query (`GET`, `DELETE`), its proto-JSON response as the body, errors as
//! HTTP statuses with a `google.rpc.Status` body (AIP-193), streams as
//! server-sent events whose `data` is a `StreamResponse`.
//!
//! Every route also exists under a tenant, `/{tenant}/tasks/{id}`; the
//! path's tenant is the request's (it wins over a `tenant` in the body).
//!
//! | route                                              | operation                          |
//! |----------------------------------------------------|------------------------------------|
//! | `POST /message:send`                               | SendMessage                        |
//! | `POST /message:stream`                             | SendStreamingMessage (SSE)         |
//! | `GET /tasks/{id}?historyLength=`                   | GetTask                            |
//! | `GET /tasks?contextId=&status=&pageSize=&pageToken=…` | ListTasks                       |
//! | `POST /tasks/{id}:cancel`                          | CancelTask                         |
//! | `GET` or `POST /tasks/{id}:subscribe`              | SubscribeToTask (SSE)              |
//! | `POST /tasks/{id}/pushNotificationConfigs`         | CreateTaskPushNotificationConfig   |
//! | `GET /tasks/{id}/pushNotificationConfigs`          | ListTaskPushNotificationConfigs    |
//! | `GET /tasks/{id}/pushNotificationConfigs/{configId}` | GetTaskPushNotificationConfig    |
//! | `DELETE /tasks/{id}/pushNotificationConfigs/{configId}` | DeleteTaskPushNotificationConfig |
//! | `GET /extendedAgentCard`                           | GetExtendedAgentCard               |
//!
//! `SubscribeToTask` takes both `GET` and `POST`: the specification's text
//! says `POST`, its proto's HTTP annotation `GET`.

use super::body::ResponseBody;
use super::jsonrpc::{content_type_error, has_json_body};
use super::meta::{check_version, request_meta};
use super::read::{read_body, BodyError};
use super::routes::{Params, RouteTable};
use super::sse::{SseBody, SseEncoding};
use super::{record_error, HttpOptions};
use crate::protocol::{
    error_code, error_kind, http_error_body, server_error, A2AError, A2ARequest, A2AResponse,
    Binding, Method,
};
use bytes::Bytes;
use http::{header, HeaderValue, Method as Verb, Request, Response};
use serde_json::{Map, Value};
use std::borrow::Cow;
use tower::{BoxError, Service};

/// The routes of one operation: path without and with a tenant, HTTP methods.
struct Row {
    path: &'static str,
    tenant_path: &'static str,
    verbs: &'static [Verb],
    method: Method,
}

const POST: &[Verb] = &[Verb::POST];
const GET: &[Verb] = &[Verb::GET];

/// Every route of the binding, in the order they are tried.
const ROWS: [Row; 11] = [
    row(
        "/message:send",
        "/{tenant}/message:send",
        POST,
        Method::SendMessage,
    ),
    row(
        "/message:stream",
        "/{tenant}/message:stream",
        POST,
        Method::SendStreamingMessage,
    ),
    row("/tasks/{id}", "/{tenant}/tasks/{id}", GET, Method::GetTask),
    row("/tasks", "/{tenant}/tasks", GET, Method::ListTasks),
    row(
        "/tasks/{id}:cancel",
        "/{tenant}/tasks/{id}:cancel",
        POST,
        Method::CancelTask,
    ),
    row(
        "/tasks/{id}:subscribe",
        "/{tenant}/tasks/{id}:subscribe",
        &[Verb::GET, Verb::POST],
        Method::SubscribeToTask,
    ),
    row(
        "/tasks/{id}/pushNotificationConfigs",
        "/{tenant}/tasks/{id}/pushNotificationConfigs",
        POST,
        Method::CreateTaskPushNotificationConfig,
    ),
    row(
        "/tasks/{id}/pushNotificationConfigs",
        "/{tenant}/tasks/{id}/pushNotificationConfigs",
        GET,
        Method::ListTaskPushNotificationConfigs,
    ),
    row(
        "/tasks/{id}/pushNotificationConfigs/{configId}",
        "/{tenant}/tasks/{id}/pushNotificationConfigs/{configId}",
        GET,
        Method::GetTaskPushNotificationConfig,
    ),
    row(
        "/tasks/{id}/pushNotificationConfigs/{configId}",
        "/{tenant}/tasks/{id}/pushNotificationConfigs/{configId}",
        &[Verb::DELETE],
        Method::DeleteTaskPushNotificationConfig,
    ),
    row(
        "/extendedAgentCard",
        "/{tenant}/extendedAgentCard",
        GET,
        Method::GetExtendedAgentCard,
    ),
];

const fn row(
    path: &'static str,
    tenant_path: &'static str,
    verbs: &'static [Verb],
    method: Method,
) -> Row {
    Row {
        path,
        tenant_path,
        verbs,
        method,
    }
}

/// Adds the binding's routes to `table`, those without a tenant first (so
/// `/tasks/{id}` is a task even when the id could be read as a tenant).
pub(crate) fn routes<H>(mut table: RouteTable<H>, handler: impl Fn(Method) -> H) -> RouteTable<H> {
    for r in &ROWS {
        table = table.route(r.path, r.verbs, handler(r.method));
    }
    for r in &ROWS {
        table = table.route(r.tenant_path, r.verbs, handler(r.method));
    }
    table
}

/// Handles one request routed to `method` through `stack`.
pub(crate) async fn handle<S, B>(
    stack: S,
    opts: &HttpOptions,
    peer: Option<std::net::SocketAddr>,
    method: Method,
    params: Params,
    req: Request<B>,
) -> Response<ResponseBody>
where
    S: Service<A2ARequest, Response = A2AResponse>,
    S::Error: Into<BoxError>,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let body = match read_body(&parts, body, opts).await {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let mut meta = request_meta(&parts, peer, Binding::Rest);
    if let Err(e) = check_version(meta.version.as_deref()) {
        return error(&e);
    }
    if !body.is_empty() && !has_json_body(&parts.headers) {
        return error(&content_type_error());
    }
    let mut request = match decode(method, &params, parts.uri.query(), &body) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    meta.tenant = match params.get("tenant") {
        Some(t) => Some(percent_decode(t).into_owned()),
        None => request.call.tenant().map(String::from),
    };
    request.meta = meta;
    let request_id = request.meta.request_id;
    let span = tracing::debug_span!(
        "request",
        request_id,
        method = method.name(),
        binding = "rest"
    );
    match super::call_stack(stack, request, span).await {
        Ok(A2AResponse::Unary(u)) => match u.outcome {
            Ok(reply) => match serde_json::to_vec(&reply) {
                Ok(buf) => json_response(http::StatusCode::OK, buf),
                Err(_) => error(&A2AError::internal("reply could not be serialized")),
            },
            Err(e) => {
                if e.code == error_code::INTERNAL_ERROR {
                    tracing::warn!(request_id, method = method.name(), code = e.code, error = %e.message, "request failed");
                }
                error(&e)
            }
        },
        Ok(A2AResponse::Stream(events)) => {
            let sse = SseBody::new(SseEncoding::Rest, events, opts.sse_keep_alive)
                .ready()
                .await;
            let mut resp = Response::new(ResponseBody::Sse(Box::new(sse)));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        Err(e) => error(&e),
    }
}

/// The request of `method` from the path parameters, the query and the body.
///
/// Bodies of the send methods are decoded as they are (the hot path);
/// every other operation's parameters are gathered into one proto-JSON
/// object, path parameters winning over the body and the query, and
/// decoded by the same table as JSON-RPC's (`Method::decode`), so errors
/// name the offending field the same way.
fn decode(
    method: Method,
    params: &Params,
    query: Option<&str>,
    body: &Bytes,
) -> Result<A2ARequest, A2AError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| A2AError::parse_error("request body is not UTF-8"))?;
    if matches!(method, Method::SendMessage | Method::SendStreamingMessage) {
        if text.trim().is_empty() {
            return Err(A2AError::invalid_params(
                "the body must be a SendMessageRequest",
            ));
        }
        check_object(text)?;
        // Malformed JSON is told from a request of the wrong shape on the
        // error path only: the body is parsed once when it is good.
        return method.decode(text).map(A2ARequest::new).map_err(|e| {
            match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Err(syntax) if !syntax.is_data() => {
                    A2AError::parse_error(format!("invalid JSON: {syntax}"))
                }
                _ => e,
            }
        });
    }
    let mut fields = if text.trim().is_empty() {
        Map::new()
    } else {
        check_object(text)?;
        serde_json::from_str::<Map<String, Value>>(text)
            .map_err(|e| A2AError::parse_error(format!("invalid JSON: {e}")))?
    };
    for (key, value) in query_pairs(query.unwrap_or("")) {
        fields.insert(key.clone(), query_value(&key, value)?);
    }
    let (id_field, config_field) = match method {
        Method::CreateTaskPushNotificationConfig
        | Method::GetTaskPushNotificationConfig
        | Method::ListTaskPushNotificationConfigs
        | Method::DeleteTaskPushNotificationConfig => ("taskId", Some("id")),
        _ => ("id", None),
    };
    if let Some(id) = params.get("id") {
        fields.insert(id_field.into(), percent_decode(id).into_owned().into());
    }
    if let (Some(name), Some(id)) = (config_field, params.get("configId")) {
        fields.insert(name.into(), percent_decode(id).into_owned().into());
    }
    let json = Value::Object(fields).to_string();
    method.decode(&json).map(A2ARequest::new)
}

/// A body must be a JSON object; anything else is a parse error (not JSON)
/// or a request of the wrong shape.
fn check_object(text: &str) -> Result<(), A2AError> {
    if text.trim_start().starts_with('{') {
        return Ok(());
    }
    match serde_json::from_str::<serde::de::IgnoredAny>(text) {
        Ok(_) => Err(A2AError::invalid_request("the body must be a JSON object")),
        Err(e) => Err(A2AError::parse_error(format!("invalid JSON: {e}"))),
    }
}

/// The typed value of a query parameter (A2A §11.5): integers and booleans
/// as JSON numbers and booleans, a task state by its proto name or its
/// short one (`working`, `input-required`), everything else a string.
fn query_value(key: &str, value: String) -> Result<Value, A2AError> {
    match key {
        "historyLength" | "history_length" | "pageSize" | "page_size" => {
            value.parse::<i64>().map(Value::from).map_err(|_| {
                A2AError::invalid_params(format!("{key} must be an integer, not {value:?}"))
            })
        }
        "includeArtifacts" | "include_artifacts" => match value.as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(A2AError::invalid_params(format!(
                "{key} must be true or false, not {value:?}"
            ))),
        },
        "status" => Ok(Value::from(task_state_name(&value))),
        _ => Ok(Value::from(value)),
    }
}

/// `TASK_STATE_WORKING` for `working`, `Working` or itself.
fn task_state_name(value: &str) -> String {
    let upper = value.trim().to_ascii_uppercase().replace('-', "_");
    if upper.starts_with("TASK_STATE_") {
        upper
    } else {
        format!("TASK_STATE_{upper}")
    }
}

/// The decoded `key=value` pairs of a query string (`+` is a space).
fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| percent_decode(&s.replace('+', " ")).into_owned();
        (decode(k), decode(v))
    })
}

/// A percent-decoded path segment or query item (invalid UTF-8 replaced).
fn percent_decode(s: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
}

fn json_response(status: http::StatusCode, body: Vec<u8>) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The error answer: the status of the error table, an AIP-193 body,
/// `Retry-After` for a rate-limited caller; counted in `a2a_errors_total`.
fn error(e: &A2AError) -> Response<ResponseBody> {
    record_error(e);
    let mut resp = json_response(error_kind(e.code).http_status, http_error_body(e));
    if let Some(secs) = server_error::retry_after_secs(e) {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// A body that was not read: 413, 408 (closing the connection) or 400.
fn body_error(e: BodyError) -> Response<ResponseBody> {
    let mut resp = error(&A2AError::invalid_request(e.message()));
    *resp.status_mut() = e.status();
    if let BodyError::TimedOut(_) = e {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::TaskState;
    use crate::protocol::Call;

    fn params(pairs: &[(&'static str, &str)]) -> Params {
        let mut p = Params::default();
        for (k, v) in pairs {
            p.push(k, v);
        }
        p
    }

    #[test]
    fn list_tasks_reads_typed_query_parameters() {
        let q = "contextId=c%201&status=working&pageSize=2&pageToken=abc&includeArtifacts=true&historyLength=0";
        let req = decode(
            Method::ListTasks,
            &Params::default(),
            Some(q),
            &Bytes::new(),
        )
        .unwrap();
        let Call::ListTasks(list) = req.call else {
            panic!("{:?}", req.call)
        };
        assert_eq!(list.context_id.as_deref(), Some("c 1"));
        assert_eq!(list.status, Some(TaskState::Working));
        assert_eq!(list.page_size, Some(2));
        assert_eq!(list.page_token.as_deref(), Some("abc"));
        assert_eq!(list.include_artifacts, Some(true));
        assert_eq!(list.history_length, Some(0));
        let bad = decode(
            Method::ListTasks,
            &Params::default(),
            Some("pageSize=ten"),
            &Bytes::new(),
        );
        assert_eq!(bad.unwrap_err().code, error_code::INVALID_PARAMS);
        let state = decode(
            Method::ListTasks,
            &Params::default(),
            Some("status=TASK_STATE_INPUT_REQUIRED"),
            &Bytes::new(),
        );
        let Call::ListTasks(list) = state.unwrap().call else {
            panic!()
        };
        assert_eq!(list.status, Some(TaskState::InputRequired));
    }

    #[test]
    fn path_parameters_win_and_are_percent_decoded() {
        let body = Bytes::from_static(br#"{"id":"other","metadata":{"why":"test"}}"#);
        let req = decode(Method::CancelTask, &params(&[("id", "t%2F1")]), None, &body).unwrap();
        let Call::CancelTask(cancel) = req.call else {
            panic!()
        };
        assert_eq!(cancel.id, "t/1");
        assert!(cancel.metadata.is_some());
        let req = decode(
            Method::GetTaskPushNotificationConfig,
            &params(&[("id", "t1"), ("configId", "c1")]),
            None,
            &Bytes::new(),
        )
        .unwrap();
        let Call::PushConfig(crate::protocol::PushCall::Get(get)) = req.call else {
            panic!()
        };
        assert_eq!((get.task_id.as_str(), get.id.as_str()), ("t1", "c1"));
    }

    #[test]
    fn bodies_must_be_json_objects() {
        let send = |b: &'static [u8]| {
            decode(
                Method::SendMessage,
                &Params::default(),
                None,
                &Bytes::from_static(b),
            )
            .unwrap_err()
            .code
        };
        assert_eq!(send(b"{nope"), error_code::PARSE_ERROR);
        assert_eq!(send(b"[1]"), error_code::INVALID_REQUEST);
        assert_eq!(send(b""), error_code::INVALID_PARAMS);
        assert_eq!(send(br#"{"message":{}}"#), error_code::INVALID_PARAMS);
        assert_eq!(
            task_state_name("input-required"),
            "TASK_STATE_INPUT_REQUIRED"
        );
    }
}

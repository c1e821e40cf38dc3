//! The JSON-RPC 2.0 binding: `POST /` with a JSON-RPC request body, answered
//! with a JSON-RPC reply, or with server-sent events for the streaming
//! methods. The JSON-RPC id lives here only: it is kept aside while the
//! binding-neutral [`A2ARequest`] goes through the stack, and stamped on the
//! reply and on every event.

use super::body::ResponseBody;
use super::meta::{check_version, request_meta};
use super::read::{read_body, BodyError};
use super::sse::{SseBody, SseEncoding};
use super::{record_error, HttpOptions};
use crate::protocol::jsonrpc::{decode_request, encode_reply};
use crate::protocol::{
    error_code, server_error, A2AError, A2ARequest, A2AResponse, JsonRpcId, Reply,
};
use http::{header, HeaderValue, Request, Response};
use tower::{BoxError, Service};

/// Handles one JSON-RPC request through `stack`.
pub(crate) async fn handle<S, B>(
    stack: S,
    opts: &HttpOptions,
    peer: Option<std::net::SocketAddr>,
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
    let is_json = has_json_body(&parts.headers);
    let (id, mut request) = match decode_request(&body) {
        Ok(r) => r,
        Err((id, e)) if is_json => return reply(&id, Err(e)),
        Err((id, _)) => return reply(&id, Err(content_type_error())),
    };
    if !is_json {
        return reply(&id, Err(content_type_error()));
    }
    request.meta = request_meta(&parts, peer, crate::protocol::Binding::JsonRpc);
    if let Err(e) = check_version(request.meta.version.as_deref()) {
        return reply(&id, Err(e));
    }
    request.meta.tenant = request.call.tenant().map(String::from);
    let request_id = request.meta.request_id;
    let method = request.call.method().name();
    // At debug level every log line of the request carries its id and
    // method. The span is debug, not info: formatting its fields cost
    // more than a cached reply. No message content is logged: it may
    // hold user data.
    let span = tracing::debug_span!("request", request_id, method);
    match super::call_stack(stack, request, span).await {
        Ok(A2AResponse::Unary(u)) => {
            if let Err(e) = &u.outcome {
                if e.code == error_code::INTERNAL_ERROR {
                    tracing::warn!(request_id, method, code = e.code, error = %e.message, "request failed");
                }
            }
            reply(&id, u.outcome)
        }
        Ok(A2AResponse::Stream(events)) => {
            let sse = SseBody::new(SseEncoding::JsonRpc(id), events, opts.sse_keep_alive)
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
        Err(e) => reply(&id, Err(e)),
    }
}

/// A JSON-RPC reply; errors are counted in `a2a_errors_total`.
///
/// Every JSON-RPC error travels in HTTP 200, a rate-limited one too (the
/// official SDK clients read the error from a 200 reply only), which also
/// carries `Retry-After` in whole seconds for HTTP-level clients and proxies.
fn reply(id: &JsonRpcId, outcome: Result<Reply, A2AError>) -> Response<ResponseBody> {
    let mut retry_after = None;
    if let Err(e) = &outcome {
        record_error(e);
        retry_after = server_error::retry_after_secs(e);
    }
    let mut buf = Vec::with_capacity(384);
    encode_reply(&mut buf, id, &outcome);
    let mut resp = Response::new(ResponseBody::from(buf));
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// A body that was not read: 413, 408 (closing the connection, as the
/// rest of the body may still be on its way) or a JSON-RPC error.
fn body_error(e: BodyError) -> Response<ResponseBody> {
    let mut resp = reply(
        &JsonRpcId::Null,
        Err(A2AError::invalid_request(e.message())),
    );
    match e {
        BodyError::Unreadable => {}
        BodyError::TooLarge(_) => *resp.status_mut() = e.status(),
        BodyError::TimedOut(_) => {
            *resp.status_mut() = e.status();
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    resp
}

/// True when `headers` declare a JSON body (`application/json`, or a
/// `+json` type such as `application/a2a+json`).
pub(crate) fn has_json_body(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_type)
}

/// `application/json` or any `+json` media type.
pub(crate) fn is_json_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5].contains('/')
            && essence.to_ascii_lowercase().ends_with("+json"))
}

/// The error of a body that is not declared JSON, on every JSON binding.
pub(crate) fn content_type_error() -> A2AError {
    A2AError::new(
        error_code::CONTENT_TYPE_NOT_SUPPORTED,
        "Content-Type must be application/json (or application/a2a+json)",
    )
}

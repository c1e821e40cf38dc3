//! The JSON-RPC 2.0 binding: `POST /` with a JSON-RPC request body, answered
//! with a JSON-RPC reply, or with server-sent events for the streaming
//! methods. The JSON-RPC id lives here only: it is kept aside while the
//! binding-neutral [`A2ARequest`] goes through the stack, and stamped on the
//! reply and on every event.

use super::body::ResponseBody;
use super::meta::{check_version, request_meta};
use super::sse::{SseBody, SseEncoding};
use super::{record_error, HttpOptions};
use crate::protocol::jsonrpc::{decode_request, encode_reply};
use crate::protocol::{
    error_code, rpc_error_for_ref, server_error, A2AError, A2ARequest, A2AResponse, JsonRpcId,
    Reply,
};
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use std::future::Future;
use std::task::Poll;
use tower::{BoxError, Service, ServiceExt};
use tracing::Instrument;

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
    let max = opts.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large(max);
    }
    let (parts, body) = req.into_parts();
    let mut collect = std::pin::pin!(Limited::new(body, max).collect());
    // A small body is usually in by now: the deadline's timer only for the rest.
    let first = std::future::poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await;
    let collected = match first {
        Poll::Ready(r) => Ok(r),
        Poll::Pending => tokio::time::timeout(opts.body_timeout, collect).await,
    };
    let body = match collected {
        Err(_) => return body_timed_out(opts.body_timeout),
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(max),
        Ok(Err(_)) => {
            return reply(
                &JsonRpcId::Null,
                Err(A2AError::invalid_request("request body could not be read")),
            )
        }
    };
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_type);
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
    match stack.oneshot(request).instrument(span).await {
        Ok(A2AResponse::Unary(u)) => {
            if let Err(e) = &u.outcome {
                if e.code == error_code::INTERNAL_ERROR {
                    tracing::warn!(request_id, method, code = e.code, error = %e.message, "request failed");
                }
            }
            reply(&id, u.outcome)
        }
        Ok(A2AResponse::Stream(events)) => {
            let sse = SseBody::new(SseEncoding::JsonRpc(id), events, opts.sse_keep_alive);
            let mut resp = Response::new(ResponseBody::Sse(Box::new(sse)));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        Err(e) => reply(&id, Err(rpc_error_for_ref(e.into().as_ref()))),
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

fn too_large(max: usize) -> Response<ResponseBody> {
    let mut resp = reply(
        &JsonRpcId::Null,
        Err(A2AError::invalid_request(format!(
            "request body larger than {max} bytes"
        ))),
    );
    *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    resp
}

/// 408 for a body that did not arrive in time; the connection is closed, as
/// the rest of the body may still be on its way.
fn body_timed_out(limit: std::time::Duration) -> Response<ResponseBody> {
    let mut resp = reply(
        &JsonRpcId::Null,
        Err(A2AError::invalid_request(format!(
            "request body not received within {} ms",
            limit.as_millis()
        ))),
    );
    *resp.status_mut() = StatusCode::REQUEST_TIMEOUT;
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// `application/json` or any `+json` media type.
pub(crate) fn is_json_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5].contains('/')
            && essence.to_ascii_lowercase().ends_with("+json"))
}

fn content_type_error() -> A2AError {
    A2AError::new(
        error_code::CONTENT_TYPE_NOT_SUPPORTED,
        "Content-Type must be application/json",
    )
}

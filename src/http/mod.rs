//! The HTTP edge: hyper serving the tower stack directly.
//!
//! [`HttpApp`] is the whole edge as one `tower::Service<http::Request<B>>`:
//! one route table (404 and 405 with `Allow` computed from it), and one
//! sibling module per binding, each a thin decoder into [`A2ARequest`] and
//! encoder of [`A2AResponse`] that fills [`RequestMeta`] through
//! [`request_meta`]:
//!
//! | module      | route            | binding                                  |
//! |-------------|------------------|------------------------------------------|
//! | `jsonrpc`   | `POST /`         | JSON-RPC 2.0, SSE for streaming methods  |
//! | `rest`      | `POST /message:send`, `GET /tasks/{id}` … (and under `/{tenant}`) | HTTP+JSON, SSE for streaming methods |
//! | `ws`        | `GET /stream`    | WebSocket, one stream per message        |
//! | [`grpc`]    | `content-type: application/grpc` | gRPC (`lf.a2a.v1.A2AService`) |
//!
//! The agent card lives at `/.well-known/agent-card.json`; extra `GET`
//! routes (health, metrics) come from [`HttpOptions::routes`]; the browser
//! playground ([`playground`]) is `GET /` for `Accept: text/html` when
//! [`HttpOptions::playground`] serves it.
//!
//! [`grpc`]: crate::grpc
//! [`A2ARequest`]: crate::protocol::A2ARequest
//! [`A2AResponse`]: crate::protocol::A2AResponse
//! [`RequestMeta`]: crate::protocol::RequestMeta

mod app;
mod body;
mod jsonrpc;
mod meta;
pub mod playground;
mod read;
mod rest;
mod routes;
mod server;
pub(crate) mod sse;
mod sse_decode;
pub mod tls;
pub mod ws;

pub use app::{GetRoute, HttpApp, HttpOptions};
pub use body::ResponseBody;
pub(crate) use meta::check_version;
pub use meta::{request_meta, PeerAddr, EXTENSIONS_HEADER, TIMEOUT_HEADER, VERSION_HEADER};
pub use playground::Playground;
pub(crate) use server::serve_app;
pub use server::{serve, serve_routes, serve_with, shutdown_signal, ServeOptions};
pub use sse_decode::{SseDecoder, SseError, SseEvent, DEFAULT_MAX_EVENT_BYTES};

use crate::protocol::{error_reason, A2AError, ERROR_KINDS};

/// Calls `stack` with `request` in `span`. The stack's error becomes the
/// A2A error here, so a binding may await a stream's first events after
/// it even when that error type is not `Send`.
pub(crate) async fn call_stack<S>(
    stack: S,
    request: crate::protocol::A2ARequest,
    span: tracing::Span,
) -> Result<crate::protocol::A2AResponse, A2AError>
where
    S: tower::Service<crate::protocol::A2ARequest, Response = crate::protocol::A2AResponse>,
    S::Error: Into<tower::BoxError>,
{
    use tower::ServiceExt as _;
    use tracing::Instrument as _;
    stack
        .oneshot(request)
        .instrument(span)
        .await
        .map_err(|e| crate::protocol::rpc_error_for_ref(e.into().as_ref()))
}

/// The metric every error sent to a client is counted in, by reason.
const ERRORS_METRIC: &str = "a2a_errors_total";

/// `a2a_errors_total{error_type}`: one per error sent, labelled with the
/// error's reason (`TASK_NOT_FOUND`, `OVERLOADED`, …).
pub(crate) fn record_error(e: &A2AError) {
    metrics::counter!(ERRORS_METRIC, "error_type" => error_reason(e.code)).increment(1);
}

/// Registers `a2a_errors_total` at 0 for every reason, so rates and alerts
/// work before the first error.
pub(crate) fn register_error_counters() {
    for kind in &ERROR_KINDS {
        metrics::counter!(ERRORS_METRIC, "error_type" => kind.reason).increment(0);
    }
}

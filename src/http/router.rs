use super::body::ResponseBody;
use super::sse::SseBody;
use crate::card::ServedCard;
use crate::protocol::jsonrpc::{decode_request, encode_reply};
use crate::protocol::{A2AError, A2ARequest, A2AResponse, JsonRpcId, PROTOCOL_VERSION};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::{BoxError, Service, ServiceExt};
use tracing::Instrument;

/// An extra `GET` route (health, metrics): returns status, content type, body.
pub type GetRoute =
    Arc<dyn Fn() -> BoxFuture<'static, (StatusCode, &'static str, Bytes)> + Send + Sync>;

/// Limits and behaviour of the HTTP adapter.
///
/// ```
/// let opts = abacus::http::HttpOptions::default();
/// assert_eq!(opts.max_body_bytes, 1 << 20);
/// ```
#[derive(Clone)]
pub struct HttpOptions {
    /// Largest accepted request body in bytes (413 above).
    pub max_body_bytes: usize,
    /// Interval of `: keep-alive` comments on quiet SSE streams.
    pub sse_keep_alive: Duration,
    /// `Cache-Control: max-age` of the agent card, in seconds.
    pub card_max_age: u32,
    /// Extra `GET` routes by exact path.
    pub routes: HashMap<&'static str, GetRoute>,
    /// Cap on the deadline a client may ask for with `X-Timeout-Ms`.
    pub max_client_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_body_bytes: 1 << 20,
            sse_keep_alive: Duration::from_secs(15),
            card_max_age: 300,
            routes: HashMap::new(),
            max_client_timeout: Duration::from_secs(300),
        }
    }
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("sse_keep_alive", &self.sse_keep_alive)
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The hyper-facing application: routes requests, decodes JSON-RPC into
/// [`A2ARequest`]s for the stack `S` and encodes its answers.
///
/// ```no_run
/// # async fn run(core: abacus::core::Core) -> std::io::Result<()> {
/// use abacus::card::ServedCard;
/// use abacus::http::{serve, HttpApp, HttpOptions};
///
/// let card = ServedCard::new(core.card().clone(), "http://127.0.0.1:8002/");
/// let app = HttpApp::new(core, card, HttpOptions::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8002").await?;
/// serve(listener, app, std::future::pending(), std::time::Duration::from_secs(10)).await
/// # }
/// ```
pub struct HttpApp<S> {
    stack: S,
    shared: Arc<Shared>,
}

struct Shared {
    card: ServedCard,
    /// `Cache-Control` of the card, formatted once.
    card_cache_control: HeaderValue,
    opts: HttpOptions,
    next_request_id: AtomicU64,
}

impl<S: Clone> Clone for HttpApp<S> {
    fn clone(&self) -> Self {
        HttpApp {
            stack: self.stack.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S> HttpApp<S>
where
    S: Service<A2ARequest, Response = A2AResponse> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    /// An application serving `stack` and `card`.
    pub fn new(stack: S, card: ServedCard, opts: HttpOptions) -> Self {
        HttpApp {
            stack,
            shared: Arc::new(Shared {
                card,
                card_cache_control: HeaderValue::from_str(&format!(
                    "public, max-age={}",
                    opts.card_max_age
                ))
                .unwrap_or(HeaderValue::from_static("no-cache")),
                opts,
                next_request_id: AtomicU64::new(1),
            }),
        }
    }

    /// Handles one HTTP request.
    pub async fn handle<B>(self, req: Request<B>) -> Response<ResponseBody>
    where
        B: http_body::Body + Send,
        B::Error: Into<BoxError>,
    {
        let path = req.uri().path();
        match (req.method(), path) {
            (&Method::POST, "/") => self.rpc(req).await,
            (&Method::GET, "/stream") => self.websocket(req),
            (_, "/stream") => method_not_allowed("GET"),
            (_, "/") => method_not_allowed("POST"),
            (&Method::GET | &Method::HEAD, "/.well-known/agent-card.json") => self.card(&req),
            (_, "/.well-known/agent-card.json") => method_not_allowed("GET, HEAD"),
            (m, p) => match self.shared.opts.routes.get(p) {
                Some(route) if m == Method::GET || m == Method::HEAD => {
                    let (status, ctype, body) = route().await;
                    let mut resp = Response::new(ResponseBody::from(body));
                    *resp.status_mut() = status;
                    resp.headers_mut()
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
                    resp.headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    resp
                }
                Some(_) => method_not_allowed("GET, HEAD"),
                None => plain(StatusCode::NOT_FOUND, "not found\n"),
            },
        }
    }

    /// Upgrades `GET /stream` to the WebSocket protocol of [`super::ws`].
    fn websocket<B>(self, mut req: Request<B>) -> Response<ResponseBody> {
        if !hyper_tungstenite::is_upgrade_request(&req) {
            let mut resp = plain(
                StatusCode::UPGRADE_REQUIRED,
                "/stream is a WebSocket endpoint\n",
            );
            resp.headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            return resp;
        }
        let config = super::ws::ws_config(self.shared.opts.max_body_bytes);
        match hyper_tungstenite::upgrade(&mut req, Some(config)) {
            Ok((response, socket)) => {
                tokio::spawn(super::ws::serve_socket(socket, self.stack));
                response.map(|_| ResponseBody::empty())
            }
            Err(e) => {
                tracing::debug!(error = %e, "bad websocket upgrade");
                plain(StatusCode::BAD_REQUEST, "bad WebSocket upgrade request\n")
            }
        }
    }

    fn card<B>(&self, req: &Request<B>) -> Response<ResponseBody> {
        let card = &self.shared.card;
        let fresh = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == card.etag().as_bytes() || v == "*");
        let mut resp = if fresh {
            let mut r = Response::new(ResponseBody::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        } else if req.method() == Method::HEAD {
            Response::new(ResponseBody::empty())
        } else {
            Response::new(ResponseBody::from(card.bytes().clone()))
        };
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, json_type());
        h.insert(header::ETAG, card.etag().clone());
        h.insert(header::LAST_MODIFIED, card.last_modified().clone());
        h.insert(
            header::CACHE_CONTROL,
            self.shared.card_cache_control.clone(),
        );
        resp
    }

    async fn rpc<B>(self, req: Request<B>) -> Response<ResponseBody>
    where
        B: http_body::Body + Send,
        B::Error: Into<BoxError>,
    {
        let max = self.shared.opts.max_body_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return too_large(max);
        }
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, max).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(max),
            Err(_) => {
                return rpc_reply(
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
        let mut request = match decode_request(&body) {
            Ok(r) => r,
            Err((id, e)) if is_json => return rpc_reply(&id, Err(e)),
            Err((id, _)) => return rpc_reply(&id, Err(content_type_error())),
        };
        if !is_json {
            return rpc_reply(&request.id, Err(content_type_error()));
        }
        if let Err(e) = check_version(&parts.headers) {
            return rpc_reply(&request.id, Err(e));
        }
        request.meta.request_id = self.shared.next_request_id.fetch_add(1, Ordering::Relaxed);
        request.meta.timeout = parts
            .headers
            .get("x-timeout-ms")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(|ms| Duration::from_millis(ms).min(self.shared.opts.max_client_timeout));
        let id = request.id.clone();
        let keep_alive = self.shared.opts.sse_keep_alive;
        let request_id = request.meta.request_id;
        let method = request.call.method();
        // At debug level every log line of the request carries its id and
        // method. The span is debug, not info: formatting its fields cost
        // more than a cached reply. No message content is logged: it may
        // hold user data.
        let span = tracing::debug_span!("request", request_id, method);
        let result = self.stack.oneshot(request).instrument(span).await;
        match result {
            // The adapter's own copy of the id: a cached reply carries none.
            Ok(A2AResponse::Unary(u)) => {
                if let Err(e) = &u.outcome {
                    count_error(e);
                    if e.code == crate::protocol::error_code::INTERNAL_ERROR {
                        tracing::warn!(request_id, method, code = e.code, error = %e.message, "request failed");
                    }
                }
                rpc_reply(&id, u.outcome)
            }
            Ok(A2AResponse::Stream { id, events }) => {
                let mut resp = Response::new(ResponseBody::Sse(Box::new(SseBody::new(
                    id, events, keep_alive,
                ))));
                let h = resp.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream"),
                );
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                resp
            }
            Err(e) => {
                let e = rpc_error_for(e.into());
                count_error(&e);
                rpc_reply(&id, Err(e))
            }
        }
    }
}

/// Maps an error from the tower stack to the JSON-RPC error sent to the client.
///
/// Layer errors know nothing of A2A; this is where they get their codes.
pub fn rpc_error_for(e: BoxError) -> A2AError {
    rpc_error_for_ref(e.as_ref())
}

/// [`rpc_error_for`] on a borrowed error.
pub fn rpc_error_for_ref(e: &(dyn std::error::Error + Send + Sync + 'static)) -> A2AError {
    if let Some(a2a) = e.downcast_ref::<A2AError>() {
        return a2a.clone();
    }
    A2AError::internal(format!("internal error: {e}"))
}

/// `a2a_errors_total{error_type}` for every JSON-RPC error sent.
fn count_error(e: &A2AError) {
    metrics::counter!("a2a_errors_total", "error_type" => crate::protocol::error_reason(e.code))
        .increment(1);
}

fn check_version(headers: &http::HeaderMap) -> Result<(), A2AError> {
    match headers.get("a2a-version").map(|v| v.to_str()) {
        Some(Ok(v)) if v.trim() == PROTOCOL_VERSION || v.trim().starts_with("1.0.") => Ok(()),
        Some(Ok(v)) => Err(A2AError::version_not_supported(v.trim())),
        Some(Err(_)) => Err(A2AError::version_not_supported("(not text)")),
        None => Err(A2AError::version_not_supported(
            "0.3 (no A2A-Version header; this server speaks 1.0)",
        )),
    }
}

fn is_json_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[..essence.len() - 5].contains('/')
            && essence.to_ascii_lowercase().ends_with("+json"))
}

fn content_type_error() -> A2AError {
    A2AError::new(
        crate::protocol::error_code::CONTENT_TYPE_NOT_SUPPORTED,
        "Content-Type must be application/json",
    )
}

fn json_type() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

fn rpc_reply(
    id: &JsonRpcId,
    outcome: Result<crate::protocol::Reply, A2AError>,
) -> Response<ResponseBody> {
    let mut buf = Vec::with_capacity(384);
    encode_reply(&mut buf, id, &outcome);
    let mut resp = Response::new(ResponseBody::from(buf));
    resp.headers_mut().insert(header::CONTENT_TYPE, json_type());
    resp
}

fn too_large(max: usize) -> Response<ResponseBody> {
    let mut resp = rpc_reply(
        &JsonRpcId::Null,
        Err(A2AError::invalid_request(format!(
            "request body larger than {max} bytes"
        ))),
    );
    *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    resp
}

fn plain(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn method_not_allowed(allow: &'static str) -> Response<ResponseBody> {
    let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

//! [`HttpApp`]: the whole HTTP edge as one `tower::Service`.

use super::body::ResponseBody;
use super::playground::{self, Asset, Playground};
use super::routes::{not_routed, plain, Lookup, RouteTable, GET};
use super::{jsonrpc, rest, ws};
use crate::card::ServedCard;
use crate::protocol::{A2ARequest, A2AResponse, Method as Operation};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{BoxError, Service};

/// An extra `GET` route (health, metrics): returns status, content type, body.
pub type GetRoute =
    Arc<dyn Fn() -> BoxFuture<'static, (StatusCode, &'static str, Bytes)> + Send + Sync>;

/// Limits and behaviour of the HTTP edge.
///
/// ```
/// let opts = abacus::http::HttpOptions::default();
/// assert_eq!(opts.max_body_bytes, 1 << 20);
/// assert_eq!(opts.body_timeout.as_secs(), 30);
/// ```
#[derive(Clone)]
pub struct HttpOptions {
    /// Largest accepted request body (and WebSocket message, and gRPC
    /// request message) in bytes (413 above; `OUT_OF_RANGE` on gRPC).
    pub max_body_bytes: usize,
    /// Deadline for receiving a whole request body (408 and the connection
    /// closed after it): a client trickling its body cannot hold a request open.
    pub body_timeout: Duration,
    /// Interval of `: keep-alive` comments on quiet SSE streams.
    pub sse_keep_alive: Duration,
    /// `Cache-Control: max-age` of the agent card, in seconds.
    pub card_max_age: u32,
    /// Extra `GET` routes by exact path.
    pub routes: HashMap<&'static str, GetRoute>,
    /// Whether the browser playground is served (`GET /` for
    /// `Accept: text/html`, `/playground.js`, `/playground.css`); off by
    /// default here, `abacus::Server` turns it on from its config.
    pub playground: Playground,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_body_bytes: crate::config::defaults::MAX_BODY_BYTES,
            body_timeout: Duration::from_millis(crate::config::defaults::BODY_TIMEOUT_MS),
            sse_keep_alive: Duration::from_secs(15),
            card_max_age: 300,
            routes: HashMap::new(),
            playground: Playground::Off,
        }
    }
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_timeout", &self.body_timeout)
            .field("sse_keep_alive", &self.sse_keep_alive)
            .field("card_max_age", &self.card_max_age)
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .field("playground", &self.playground)
            .finish()
    }
}

/// What a route of the A2A edge does.
enum Handler {
    /// The JSON-RPC binding (`POST /`).
    JsonRpc,
    /// The WebSocket binding (`GET /stream`).
    WebSocket,
    /// A route of the HTTP+JSON binding, by operation.
    Rest(Operation),
    /// The agent card.
    Card,
    /// An extra `GET` route.
    Get(GetRoute),
    /// A file of the playground.
    Playground(Asset),
}

/// The HTTP edge: routes requests, hands each binding's decoded
/// [`A2ARequest`] to the stack `S` and encodes its answers. A
/// `tower::Service<http::Request<B>>`, so it can be wrapped in tower-http
/// layers (trace, CORS, compression) or mounted in an axum `Router`.
///
/// Routes: `POST /` (JSON-RPC, SSE for the streaming methods), the
/// HTTP+JSON routes (`POST /message:send`, `GET /tasks/{id}` …, each also
/// under `/{tenant}`), `GET /stream` (WebSocket),
/// `GET /.well-known/agent-card.json`, the extra `GET` routes of
/// [`HttpOptions::routes`] and, when [`HttpOptions::playground`] says so,
/// the playground's page (`GET /` for `Accept: text/html`) and files;
/// other paths are 404, other methods 405 with `Allow`.
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
    /// The client of this clone's connection, when the server said so.
    peer: Option<SocketAddr>,
}

struct Shared {
    card: ServedCard,
    /// `Cache-Control` of the card, formatted once.
    card_cache_control: HeaderValue,
    opts: HttpOptions,
    routes: RouteTable<Handler>,
}

impl<S: Clone> Clone for HttpApp<S> {
    fn clone(&self) -> Self {
        HttpApp {
            stack: self.stack.clone(),
            shared: self.shared.clone(),
            peer: self.peer,
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
        super::register_error_counters();
        let mut routes = RouteTable::new()
            .route("/", &[Method::POST], Handler::JsonRpc)
            .route("/stream", &[Method::GET], Handler::WebSocket)
            .route("/.well-known/agent-card.json", GET, Handler::Card);
        if opts.playground == Playground::Served {
            // After `POST /`: the page takes only what JSON-RPC does not.
            for (path, asset) in Asset::ROUTES {
                routes = routes.route(path, GET, Handler::Playground(asset));
            }
        }
        routes = rest::routes(routes, Handler::Rest);
        for (path, route) in &opts.routes {
            if !routes.has(path) {
                routes = routes.exact(path, GET, Handler::Get(route.clone()));
            }
        }
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
                routes,
            }),
            peer: None,
        }
    }

    /// Whether this application serves the playground.
    pub fn playground(&self) -> Playground {
        self.shared.opts.playground
    }

    /// Sets the client address of every request this clone handles; the
    /// server gives each connection's clone its peer this way, which spares
    /// a [`PeerAddr`](super::PeerAddr) in every request's extensions (read
    /// when this is unset).
    ///
    /// ```
    /// # fn f(app: abacus::http::HttpApp<abacus::core::Core>) {
    /// let app = app.peer("127.0.0.1:5000".parse().unwrap());
    /// # let _ = app;
    /// # }
    /// ```
    pub fn peer(mut self, addr: SocketAddr) -> Self {
        self.peer = Some(addr);
        self
    }

    /// Handles one HTTP request: gRPC ones (`content-type:
    /// application/grpc`) go to the gRPC binding ([`crate::grpc`]) whatever
    /// their path, the others by the route table.
    pub async fn handle<B>(self, req: Request<B>) -> Response<ResponseBody>
    where
        S: Sync,
        B: http_body::Body + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let shared = &self.shared;
        if crate::grpc::is_grpc(req.headers()) {
            let (max, timeout) = (shared.opts.max_body_bytes, shared.opts.body_timeout);
            return crate::grpc::handle(self.stack, max, timeout, self.peer, req).await;
        }
        match shared.routes.find(req.method(), req.uri().path()) {
            Lookup::Route(Handler::JsonRpc, _) => {
                jsonrpc::handle(self.stack, &shared.opts, self.peer, req).await
            }
            Lookup::Route(Handler::WebSocket, _) => {
                ws::upgrade(self.stack, shared.opts.max_body_bytes, self.peer, req)
            }
            Lookup::Route(Handler::Rest(op), params) => {
                let op = *op;
                rest::handle(self.stack, &shared.opts, self.peer, op, params, req).await
            }
            Lookup::Route(Handler::Card, _) => card(shared, &req),
            Lookup::Route(Handler::Get(route), _) => get_route(route).await,
            Lookup::Route(Handler::Playground(asset), _) => playground::respond(*asset, &req),
            other => not_routed(other),
        }
    }
}

impl<S, B> Service<Request<B>> for HttpApp<S>
where
    S: Service<A2ARequest, Response = A2AResponse> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<ResponseBody>, Infallible>>;

    /// Always ready: readiness of the stack is asked per request (the
    /// concurrency layer sheds load there with a clear error).
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let app = self.clone();
        // A disabled span (tracing off) costs a branch; its fields are not
        // even evaluated.
        let span = tracing::info_span!(
            target: crate::otel::TARGET,
            "a2a.request",
            otel.kind = "server",
            http.request.method = %req.method(),
            url.path = req.uri().path(),
            a2a.binding = tracing::field::Empty,
            a2a.method = tracing::field::Empty,
            a2a.task_id = tracing::field::Empty,
        );
        crate::otel::set_parent(&span, req.headers());
        Box::pin(tracing::Instrument::instrument(
            async move { Ok(app.handle(req).await) },
            span,
        ))
    }
}

/// Answers an extra `GET` route.
pub(crate) async fn get_route(route: &GetRoute) -> Response<ResponseBody> {
    let (status, ctype, body) = route().await;
    let mut resp = Response::new(ResponseBody::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn card<B>(shared: &Shared, req: &Request<B>) -> Response<ResponseBody> {
    let card = &shared.card;
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
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::ETAG, card.etag().clone());
    h.insert(header::LAST_MODIFIED, card.last_modified().clone());
    h.insert(header::CACHE_CONTROL, shared.card_cache_control.clone());
    resp
}

/// The `/stream` answer to a request that is not a WebSocket upgrade.
pub(crate) fn upgrade_required() -> Response<ResponseBody> {
    let mut resp = plain(
        StatusCode::UPGRADE_REQUIRED,
        "/stream is a WebSocket endpoint\n",
    );
    resp.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    resp
}

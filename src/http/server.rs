use super::app::{get_route, GetRoute, HttpApp};
use super::body::ResponseBody;
use super::meta::PeerAddr;
use super::routes::{not_routed, Lookup, RouteTable, GET};
use super::tls::{client_identity, ServerTls, RELOAD_POLL};
use crate::protocol::{A2ARequest, A2AResponse};
use abacus_layers::auth::TlsClientIdentity;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::{BoxError, Service, ServiceExt};

/// Limits on the connections [`serve_with`] keeps open, and their TLS.
///
/// ```
/// let opts = abacus::http::ServeOptions::default();
/// assert_eq!(opts.idle_timeout.as_secs(), 60);
/// assert_eq!(opts.max_connections, 10_000);
/// assert!(opts.tls.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// A connection with no request in progress is closed after this long:
    /// before its first byte, while its request headers trickle in, and
    /// between keep-alive requests (HTTP/1.1 and HTTP/2). Zero turns it off.
    pub idle_timeout: Duration,
    /// Most connections open at once (WebSockets included); beyond it new
    /// connections wait in the listen backlog until one closes. Zero means
    /// no limit.
    pub max_connections: usize,
    /// Serve HTTPS (HTTP/1.1 and h2 by ALPN) instead of plain HTTP. The
    /// handshake counts against `max_connections` and must finish within
    /// `idle_timeout` (10 s when that is off).
    pub tls: Option<ServerTls>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            idle_timeout: Duration::from_millis(crate::config::defaults::IDLE_TIMEOUT_MS),
            max_connections: crate::config::defaults::MAX_CONNECTIONS,
            tls: None,
        }
    }
}

/// Serves `app` on `listener` (HTTP/1.1 and h2c, with upgrades) until
/// `shutdown` resolves, then stops accepting and lets in-flight requests
/// and streams finish for up to `drain` before closing the remaining
/// connections. Each request carries the client's [`PeerAddr`] in its
/// extensions. Connections are bounded by the default [`ServeOptions`].
///
/// `app` is any tower service of HTTP requests: an [`HttpApp`](super::HttpApp),
/// or one wrapped in tower-http layers.
///
/// ```no_run
/// # async fn run(app: abacus::http::HttpApp<abacus::core::Core>) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// abacus::http::serve(listener, app, abacus::http::shutdown_signal(), std::time::Duration::from_secs(10)).await
/// # }
/// ```
pub async fn serve<S, B>(
    listener: TcpListener,
    app: S,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()>
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    serve_with(listener, app, shutdown, drain, &ServeOptions::default()).await
}

/// [`serve`] with the connection limits of `opts`.
///
/// ```no_run
/// # async fn run(app: abacus::http::HttpApp<abacus::core::Core>) -> std::io::Result<()> {
/// use abacus::http::{serve_with, shutdown_signal, ServeOptions};
/// use std::time::Duration;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let opts = ServeOptions { idle_timeout: Duration::from_secs(5), max_connections: 100, ..Default::default() };
/// serve_with(listener, app, shutdown_signal(), Duration::from_secs(10), &opts).await
/// # }
/// ```
pub async fn serve_with<S, B>(
    listener: TcpListener,
    app: S,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
    opts: &ServeOptions,
) -> std::io::Result<()>
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    accept_loop(listener, app, PeerVia::Extension, shutdown, drain, opts).await
}

/// [`serve_with`] for an [`HttpApp`]: each connection's clone is told its
/// peer once ([`HttpApp::peer`]) instead of every request carrying it.
pub(crate) async fn serve_app<S>(
    listener: TcpListener,
    app: HttpApp<S>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
    opts: &ServeOptions,
) -> std::io::Result<()>
where
    S: Service<A2ARequest, Response = A2AResponse> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    let peer_via = PeerVia::Service(HttpApp::peer);
    accept_loop(listener, app, peer_via, shutdown, drain, opts).await
}

/// How the requests of a connection learn the client's address.
enum PeerVia<S> {
    /// A [`PeerAddr`] in every request's extensions: works for any service.
    Extension,
    /// Given once to the connection's clone of the service.
    Service(fn(S, SocketAddr) -> S),
}

async fn accept_loop<S, B>(
    listener: TcpListener,
    app: S,
    peer_via: PeerVia<S>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
    opts: &ServeOptions,
) -> std::io::Result<()>
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let idle = (!opts.idle_timeout.is_zero()).then_some(opts.idle_timeout);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // HTTP/1.1: the header timer starts before the first byte and again
    // after each reply, so it is the idle timeout too.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle);
    // HTTP/2: pings find dead peers; live idle ones are closed by `drive`.
    let mut h2 = builder.http2();
    h2.timer(TokioTimer::new());
    if let Some(idle) = idle {
        h2.keep_alive_interval(idle)
            .keep_alive_timeout(idle.min(Duration::from_secs(20)));
    }
    let max = match opts.max_connections {
        0 => Semaphore::MAX_PERMITS,
        n => n.min(Semaphore::MAX_PERMITS),
    };
    let limit = Arc::new(Semaphore::new(max));
    let (closing_tx, closing_rx) = watch::channel(());
    // TLS only: connections are served from their own task after the
    // handshake, with the reloader running beside the loop.
    let tls = opts.tls.as_ref().map(|tls| {
        let reloader = tokio::spawn(tls.clone().watch(RELOAD_POLL));
        let handshake = idle.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        (
            tls,
            Arc::new(builder.clone()),
            handshake,
            AbortOnDrop(reloader),
        )
    });
    tokio::pin!(shutdown);
    loop {
        // A permit before accepting: at the limit, clients wait in the
        // backlog while the open connections keep being served.
        let permit = match limit.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                tracing::debug!(max, "connection limit reached; not accepting");
                tokio::select! {
                    p = limit.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = &mut shutdown => break,
                }
            }
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (app, insert_peer) = match peer_via {
                    PeerVia::Extension => (app.clone(), true),
                    PeerVia::Service(with_peer) => (with_peer(app.clone(), peer), false),
                };
                // The permit lives with the socket, so an upgraded WebSocket
                // (or a TLS handshake) keeps counting until it closes.
                let permitted = Permitted { stream, _permit: permit };
                if let Some((tls, builder, handshake, _)) = &tls {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
                    let (builder, handshake) = (builder.clone(), *handshake);
                    let closing = closing_rx.clone();
                    tokio::spawn(async move {
                        let stream = match tokio::time::timeout(handshake, acceptor.accept(permitted)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                        };
                        let identity = client_identity(stream.get_ref().1);
                        let activity = Activity::default();
                        let service = connection_service(app, peer, insert_peer, identity, activity.clone());
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        drive(conn, activity, idle, closing).await;
                    });
                    continue;
                }
                let activity = Activity::default();
                let service = connection_service(app, peer, insert_peer, None, activity.clone());
                let io = TokioIo::new(permitted);
                let conn = builder.serve_connection_with_upgrades(io, service).into_owned();
                tokio::spawn(drive(conn, activity, idle, closing_rx.clone()));
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    drop(tls);
    drop(closing_rx);
    tracing::info!(
        drain_secs = drain.as_secs_f64(),
        "shutting down: draining connections"
    );
    let _ = closing_tx.send(());
    tokio::select! {
        _ = closing_tx.closed() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(drain) => tracing::warn!("drain deadline reached; closing remaining connections"),
    }
    Ok(())
}

/// The TLS handshake's bound when the idle timeout is off.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Aborts a background task when the accept loop ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The hyper service of one connection: the peer (and the verified TLS
/// client's identity) into each request, and each reply counted as
/// activity until its body ends.
fn connection_service<S, B>(
    app: S,
    peer: SocketAddr,
    insert_peer: bool,
    identity: Option<TlsClientIdentity>,
    busy: Activity,
) -> impl hyper::service::Service<
    http::Request<Incoming>,
    Response = http::Response<Tracked<B>>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<Tracked<B>>, Infallible>> + Send + 'static,
> + Send
       + 'static
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
{
    hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
        if insert_peer {
            req.extensions_mut().insert(PeerAddr(peer));
        }
        if let Some(id) = &identity {
            req.extensions_mut().insert(id.clone());
        }
        let guard = busy.start();
        let reply = app.clone().oneshot(req);
        async move {
            let resp = reply.await?;
            Ok::<_, Infallible>(resp.map(|body| Tracked { body, _busy: guard }))
        }
    })
}

/// Runs one connection: closes it gracefully on server shutdown or after
/// `idle` with no request in progress, and drops it after a second `idle`
/// (a peer that never finishes a graceful close, e.g. an HTTP/2 client that
/// does not answer GOAWAY's ping).
async fn drive<C>(
    conn: C,
    activity: Activity,
    idle: Option<Duration>,
    mut closing: watch::Receiver<()>,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    tokio::pin!(conn);
    let quiet = activity.quiet_for(idle);
    tokio::pin!(quiet);
    let mut asked = false;
    let result = loop {
        tokio::select! {
            r = conn.as_mut() => break r,
            _ = closing.changed(), if !asked => {
                asked = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = &mut quiet => {
                if asked {
                    tracing::debug!("idle connection did not close; dropping it");
                    return;
                }
                asked = true;
                conn.as_mut().graceful_shutdown();
                quiet.set(activity.quiet_for(idle));
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Requests in progress on one connection (a reply counts until its body
/// is sent or dropped), and when the last one ended.
///
/// Plain atomics, read by one timer per idle period: a watch channel here
/// woke the connection task twice per request and cost a third of the
/// throughput.
#[derive(Clone)]
struct Activity(Arc<ActivityState>);

struct ActivityState {
    in_flight: AtomicUsize,
    /// When the last request ended (or the connection opened), in
    /// microseconds since `opened`.
    last_end_us: AtomicU64,
    opened: Instant,
}

/// One request in progress.
struct Busy(Arc<ActivityState>);

impl Default for Activity {
    fn default() -> Self {
        Activity(Arc::new(ActivityState {
            in_flight: AtomicUsize::new(0),
            last_end_us: AtomicU64::new(0),
            opened: Instant::now(),
        }))
    }
}

impl ActivityState {
    fn last_end(&self) -> Instant {
        self.opened + Duration::from_micros(self.last_end_us.load(Ordering::Acquire))
    }
}

impl Activity {
    fn start(&self) -> Busy {
        self.0.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.0.clone())
    }

    /// Resolves once no request has been in progress for `idle`.
    async fn quiet_for(&self, idle: Option<Duration>) {
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        let state = &self.0;
        let mut deadline = state.last_end() + idle;
        loop {
            tokio::time::sleep_until(deadline).await;
            if state.in_flight.load(Ordering::Acquire) > 0 {
                deadline = Instant::now() + idle;
                continue;
            }
            let quiet_until = state.last_end() + idle;
            if quiet_until <= Instant::now() {
                return;
            }
            deadline = quiet_until;
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let since_open = self.0.opened.elapsed().as_micros();
        self.0.last_end_us.store(
            u64::try_from(since_open).unwrap_or(u64::MAX),
            Ordering::Release,
        );
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// A reply body that keeps its request counted as in progress.
    struct Tracked<B> {
        #[pin]
        body: B,
        _busy: Busy,
    }
}

impl<B: http_body::Body> http_body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A socket holding its place under the connection limit.
struct Permitted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Permitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Permitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves only `GET` routes (no A2A) on `listener` until `shutdown`
/// resolves: the separate metrics port.
///
/// ```no_run
/// # async fn run(metrics: abacus::http::GetRoute) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9090").await?;
/// abacus::http::serve_routes(listener, [("/metrics", metrics)], std::future::pending()).await
/// # }
/// ```
pub async fn serve_routes(
    listener: TcpListener,
    routes: impl IntoIterator<Item = (&'static str, GetRoute)>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let table = routes
        .into_iter()
        .fold(RouteTable::new(), |t, (path, route)| {
            t.exact(path, GET, route)
        });
    let table = Arc::new(table);
    let app = tower::service_fn(move |req: http::Request<Incoming>| {
        let table = table.clone();
        async move {
            let resp: http::Response<ResponseBody> =
                match table.find(req.method(), req.uri().path()) {
                    Lookup::Route(route, _) => get_route(route).await,
                    other => not_routed(other),
                };
            Ok::<_, Infallible>(resp)
        }
    });
    serve(listener, app, shutdown, Duration::ZERO).await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

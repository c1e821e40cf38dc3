use super::app::{get_route, GetRoute};
use super::body::ResponseBody;
use super::meta::PeerAddr;
use super::routes::{not_routed, Lookup, RouteTable, GET};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::{BoxError, Service, ServiceExt};

/// Serves `app` on `listener` (HTTP/1.1 and h2c, with upgrades) until
/// `shutdown` resolves, then stops accepting and lets in-flight requests
/// and streams finish for up to `drain` before closing the remaining
/// connections. Each request carries the client's [`PeerAddr`] in its
/// extensions.
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
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
                let app = app.clone();
                let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                    req.extensions_mut().insert(PeerAddr(peer));
                    app.clone().oneshot(req)
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(
        drain_secs = drain.as_secs_f64(),
        "shutting down: draining connections"
    );
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(drain) => tracing::warn!("drain deadline reached; closing remaining connections"),
    }
    Ok(())
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
    let table = std::sync::Arc::new(table);
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

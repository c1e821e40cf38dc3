//! Reusing abacus in your own axum app: the layers (a concurrency limit
//! that sheds load, a timeout, request metrics) on ordinary HTTP routes,
//! and the whole A2A edge of the math agent mounted at `/a2a`.
//!
//! ```text
//! cargo run --example axum_reuse          # listens on 127.0.0.1:3000
//! curl localhost:3000/hello
//! curl localhost:3000/metrics
//! curl localhost:3000/a2a/.well-known/agent-card.json
//! ```

use abacus::card::ServedCard;
use abacus::core::Core;
use abacus::http::{HttpApp, HttpOptions};
use abacus::math::{Limits, MathAgent};
use abacus::stack::{A2ALayers, StackConfig};
use abacus_layers::concurrency::{ConcurrencyLimitError, ConcurrencyLimitLayer};
use abacus_layers::metrics::MetricsLayer;
use abacus_layers::timeout::{TimeoutError, TimeoutLayer};
use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::time::Duration;
use tower::ServiceBuilder;

/// The app: `/hello`, `/slow` (sleeps longer than the timeout) and `/metrics`.
pub fn app(
    metrics: Option<&'static abacus_layers::metrics::prometheus::PrometheusHandle>,
) -> Router {
    let layers = ServiceBuilder::new()
        // Layer errors (overload, timeout) become plain HTTP answers.
        .layer(HandleErrorLayer::new(handle_layer_error))
        .layer(MetricsLayer::new().label("app", "axum_reuse"))
        .layer(ConcurrencyLimitLayer::new(32).load_shed(true))
        .layer(TimeoutLayer::new(Duration::from_millis(200)));
    let mut router = Router::new()
        .route(
            "/hello",
            get(|| async { "hello from axum behind abacus layers\n" }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "too late"
            }),
        )
        .layer(layers);
    if let Some(handle) = metrics {
        router = router.route("/metrics", get(move || async move { handle.render() }));
    }
    router
}

/// Mounts the math agent's A2A edge (JSON-RPC at `/a2a/`, its agent card,
/// WebSocket streaming) in `router`, behind the default abacus stack.
/// `base_url` is where clients reach `router` (the card names the endpoint).
pub fn with_a2a(router: Router, base_url: &str) -> Router {
    let core = Core::builder(MathAgent::new(Limits::default()), MathAgent::card()).build();
    let layers = A2ALayers::new(&StackConfig::default(), &core);
    let card = ServedCard::new(core.card().clone(), &format!("{base_url}/a2a/"));
    let edge = HttpApp::new(layers.default_stack(core), card, HttpOptions::default());
    router.nest_service("/a2a", edge)
}

/// The layers' own failures, typed: no downcasting.
type LayerError = ConcurrencyLimitError<TimeoutError<std::convert::Infallible>>;

async fn handle_layer_error(err: LayerError) -> impl IntoResponse {
    match err {
        ConcurrencyLimitError::Overloaded => (
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded, retry later\n".to_string(),
        ),
        ConcurrencyLimitError::Inner(TimeoutError::Elapsed(e)) => {
            (StatusCode::GATEWAY_TIMEOUT, format!("timed out: {e}\n"))
        }
        ConcurrencyLimitError::Inner(TimeoutError::Inner(never)) => match never {},
    }
}

#[allow(dead_code)] // the integration test includes this file for `app`
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let metrics = abacus_layers::metrics::prometheus::install()
        .ok()
        .map(|h| &*Box::leak(Box::new(h)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("listening on {base}");
    axum::serve(listener, with_a2a(app(metrics), &base)).await
}

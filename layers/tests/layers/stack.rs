//! The layers composed as the server and an axum user would.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use abacus_layers::cache::CacheLayer;
use abacus_layers::circuit_breaker::CircuitBreakerLayer;
use abacus_layers::concurrency::ConcurrencyLimitLayer;
use abacus_layers::metrics::MetricsLayer;
use abacus_layers::retry::RetryLayer;
use abacus_layers::timeout::{TimeoutKind, TimeoutLayer};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt, service_fn};

use crate::common::*;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// metrics ─► concurrency limit ─► timeout ─► cache ─► circuit breaker ─► core
#[tokio::test(start_paused = true)]
async fn server_stack_with_streams() {
    let m = TestMetrics::install();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let core = service_fn(move |n: u32| {
        c.fetch_add(1, Ordering::SeqCst);
        async move {
            Ok::<_, std::io::Error>(if n == 0 {
                Resp::Stream(timed_stream(vec![(secs(1), 1), (secs(1), 2), (secs(5), 3)]))
            } else {
                Resp::Unary(n * 10)
            })
        }
    });
    let (limit, limit_handle) = ConcurrencyLimitLayer::pair(8);
    let breaker = CircuitBreakerLayer::builder().name("core").build();
    let breaker_handle = breaker.handle();
    let svc: BoxCloneSyncService<u32, Resp, BoxError> = ServiceBuilder::new()
        .boxed_clone_sync()
        .map_err(|e: abacus_layers::concurrency::ConcurrencyLimitError<_>| BoxError::from(e))
        .layer(MetricsLayer::new().label("agent_name", "test"))
        .layer(limit.load_shed(true))
        .layer(TimeoutLayer::new(secs(30)).idle_timeout(secs(2)))
        .layer(CacheLayer::builder().build_mapped(
            |n: &u32| (*n != 0).then_some(*n),
            |r: &Resp| match r {
                Resp::Unary(n) => Some(*n),
                Resp::Stream(_) => None,
            },
            Resp::Unary,
        ))
        .layer(breaker)
        .service(core);

    assert_eq!(svc.clone().oneshot(4).await.unwrap().unary(), 40);
    assert_eq!(svc.clone().oneshot(4).await.unwrap().unary(), 40);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let mut s = svc.clone().oneshot(0).await.unwrap().stream();
    assert_eq!(limit_handle.in_flight(), 1);
    assert_eq!(
        m.gauge("requests_in_flight", &[("agent_name", "test")]),
        1.0
    );
    assert_eq!(s.next().await, Some(Event::Item(1)));
    assert_eq!(s.next().await, Some(Event::Item(2)));
    assert_eq!(s.next().await, Some(Event::TimedOut(TimeoutKind::Idle)));
    assert_eq!(s.next().await, None);
    assert_eq!(limit_handle.in_flight(), 0);
    assert_eq!(
        m.gauge("requests_in_flight", &[("agent_name", "test")]),
        0.0
    );
    assert_eq!(m.counter("requests_total", &[("status", "ok")]), 3);
    assert_eq!(
        m.histogram("request_duration_seconds", &[("status", "ok")])[2],
        4.0
    );
    assert_eq!(
        breaker_handle.state(),
        abacus_layers::circuit_breaker::CircuitState::Closed
    );
}

/// An axum-style stack over `http::Response<B>`: bodies are wrapped, not boxed.
#[tokio::test]
async fn http_stack() {
    let (limit, handle) = ConcurrencyLimitLayer::pair(2);
    let svc = ServiceBuilder::new()
        .layer(MetricsLayer::new())
        .layer(limit)
        .layer(TimeoutLayer::new(secs(5)).idle_timeout(secs(5)))
        .service(service_fn(|_: http::Request<()>| async {
            Ok::<_, std::io::Error>(http::Response::new(Full::new(Bytes::from("ok"))))
        }));
    let res = svc.oneshot(http::Request::new(())).await.unwrap();
    assert_eq!(handle.in_flight(), 1);
    // Body type: GuardedBody<GuardedBody<TimeoutBody<Full<Bytes>>, Permit>, MetricsGuard>
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "ok");
    assert_eq!(handle.in_flight(), 0);
}

/// The client stack: timeout ─► retry ─► circuit breaker ─► client.
#[tokio::test(start_paused = true)]
async fn client_stack() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let client = service_fn(move |_: ()| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < 2 {
                Err(std::io::Error::other("flaky"))
            } else {
                Ok(Resp::Unary(1))
            }
        }
    });
    let svc = ServiceBuilder::new()
        .layer(TimeoutLayer::new(secs(10)))
        .layer(RetryLayer::new().max_attempts(3).seed(7))
        .layer(
            CircuitBreakerLayer::builder()
                .consecutive_failures(5)
                .build(),
        )
        .service(client);
    assert_eq!(svc.oneshot(()).await.unwrap().unary(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

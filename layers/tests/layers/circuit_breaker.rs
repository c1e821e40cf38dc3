use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use abacus_layers::circuit_breaker::{
    CircuitBreakerError, CircuitBreakerLayer, CircuitState, Transition,
};
use tower::{Layer, ServiceExt, service_fn};
use tower_test::mock;

use crate::common::*;

use CircuitState::{Closed, HalfOpen, Open};

type Events = Arc<Mutex<Vec<(CircuitState, CircuitState)>>>;

fn recorder() -> (Events, impl Fn(&Transition) + Send + Sync + 'static) {
    let events: Events = Arc::default();
    let e = events.clone();
    (events, move |t: &Transition| {
        e.lock().unwrap().push((t.from, t.to))
    })
}

/// `true` requests fail; counts calls.
fn switch(
    calls: Arc<AtomicUsize>,
) -> impl tower::Service<bool, Response = &'static str, Error = std::io::Error, Future = impl Send> + Clone
{
    service_fn(move |fail: bool| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            if fail {
                Err(std::io::Error::other("down"))
            } else {
                Ok("up")
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn opens_after_consecutive_failures_and_rejects_without_calling_inner() {
    let (events, listener) = recorder();
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(3)
        .failure_rate_threshold(2.0)
        .on_state_change(listener)
        .build();
    let handle = layer.handle();
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = layer.layer(switch(calls.clone()));

    // A success resets the run.
    for fail in [true, true, false, true, true] {
        let _ = svc.clone().oneshot(fail).await;
    }
    assert_eq!(handle.state(), Closed);
    let _ = svc.clone().oneshot(true).await;
    assert_eq!(handle.state(), Open);
    assert_eq!(*events.lock().unwrap(), vec![(Closed, Open)]);

    let before = calls.load(Ordering::SeqCst);
    for _ in 0..5 {
        let err = svc.clone().oneshot(false).await.unwrap_err();
        assert!(matches!(err, CircuitBreakerError::Open));
    }
    assert_eq!(calls.load(Ordering::SeqCst), before);
}

#[tokio::test(start_paused = true)]
async fn open_breaker_does_not_ready_the_inner_service() {
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(1)
        .build();
    let (mut svc, mut handle) = mock::spawn_layer::<(), (), _>(layer);
    assert!(svc.poll_ready().is_ready());
    let fut = svc.call(());
    handle
        .next_request()
        .await
        .unwrap()
        .1
        .send_error(std::io::Error::other("x"));
    assert!(fut.await.is_err());

    // The inner service will never be ready again; the breaker still answers.
    handle.allow(0);
    assert!(svc.poll_ready().is_ready());
    assert!(svc.call(()).await.unwrap_err().is_open());
}

#[tokio::test(start_paused = true)]
async fn opens_on_failure_rate_once_minimum_calls_reached() {
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(0)
        .failure_rate_threshold(0.5)
        .minimum_calls(10)
        .build();
    let handle = layer.handle();
    let svc = layer.layer(switch(Arc::default()));
    // 4 failures, 5 successes: 9 calls, below the minimum.
    for i in 0..9 {
        let _ = svc.clone().oneshot(i % 2 == 1).await;
    }
    assert_eq!(handle.window_counts(), (9, 4));
    assert_eq!(handle.state(), Closed);
    // 10th call fails: 5/10 = 50 %.
    let _ = svc.clone().oneshot(true).await;
    assert_eq!(handle.state(), Open);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_below_threshold_stays_closed() {
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(0)
        .failure_rate_threshold(0.5)
        .minimum_calls(4)
        .build();
    let handle = layer.handle();
    let svc = layer.layer(switch(Arc::default()));
    for fail in [true, false, false, false, true, false, false, false] {
        let _ = svc.clone().oneshot(fail).await;
    }
    assert_eq!(handle.state(), Closed);
}

#[tokio::test(start_paused = true)]
async fn old_failures_leave_the_window() {
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(0)
        .failure_rate_threshold(0.5)
        .minimum_calls(4)
        .sliding_window(secs(10))
        .build();
    let handle = layer.handle();
    let svc = layer.layer(switch(Arc::default()));
    for _ in 0..3 {
        let _ = svc.clone().oneshot(true).await;
    }
    tokio::time::advance(secs(11)).await;
    assert_eq!(handle.window_counts(), (0, 0));
    // One more failure: 1 call in the window, below the minimum.
    let _ = svc.clone().oneshot(true).await;
    assert_eq!(handle.state(), Closed);
}

#[tokio::test(start_paused = true)]
async fn half_open_after_duration_then_closes_after_successes() {
    let (events, listener) = recorder();
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(1)
        .open_duration(secs(30))
        .half_open_successes(2)
        .on_state_change(listener)
        .build();
    let handle = layer.handle();
    let svc = layer.layer(switch(Arc::default()));

    let _ = svc.clone().oneshot(true).await;
    assert_eq!(handle.state(), Open);
    tokio::time::advance(secs(29)).await;
    assert!(svc.clone().oneshot(false).await.unwrap_err().is_open());
    assert_eq!(handle.state(), Open);

    tokio::time::advance(secs(1)).await;
    assert_eq!(svc.clone().oneshot(false).await.unwrap(), "up");
    assert_eq!(handle.state(), HalfOpen);
    assert_eq!(svc.clone().oneshot(false).await.unwrap(), "up");
    assert_eq!(handle.state(), Closed);
    assert_eq!(
        *events.lock().unwrap(),
        vec![(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
    );
}

#[tokio::test(start_paused = true)]
async fn failed_probe_reopens() {
    let (events, listener) = recorder();
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(1)
        .open_duration(secs(5))
        .on_state_change(listener)
        .build();
    let handle = layer.handle();
    let svc = layer.layer(switch(Arc::default()));
    let _ = svc.clone().oneshot(true).await;
    tokio::time::advance(secs(5)).await;
    assert!(matches!(
        svc.clone().oneshot(true).await,
        Err(CircuitBreakerError::Inner(_))
    ));
    assert_eq!(handle.state(), Open);
    // The open period starts again.
    tokio::time::advance(secs(4)).await;
    assert!(svc.clone().oneshot(false).await.unwrap_err().is_open());
    tokio::time::advance(secs(1)).await;
    assert!(svc.clone().oneshot(false).await.is_ok());
    assert_eq!(handle.state(), Closed);
    assert_eq!(
        *events.lock().unwrap(),
        vec![
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn probe_limit_in_half_open() {
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(1)
        .open_duration(secs(1))
        .half_open_max_probes(1)
        .build();
    let handle = layer.handle();
    let (mut svc, mut mock_handle) = mock::spawn_layer::<u32, u32, _>(layer);

    assert!(svc.poll_ready().is_ready());
    let f = svc.call(0);
    mock_handle
        .next_request()
        .await
        .unwrap()
        .1
        .send_error(std::io::Error::other("x"));
    assert!(f.await.is_err());
    assert_eq!(handle.state(), Open);
    tokio::time::advance(secs(1)).await;

    // One probe in flight...
    assert!(svc.poll_ready().is_ready());
    let probe = svc.call(1);
    assert_eq!(handle.state(), HalfOpen);
    let (_, send_probe) = mock_handle.next_request().await.unwrap();

    // ...so the next call is rejected without reaching the inner service.
    assert!(svc.poll_ready().is_ready());
    assert!(svc.call(2).await.unwrap_err().is_open());

    send_probe.send_response(1);
    assert_eq!(probe.await.unwrap(), 1);
    assert_eq!(handle.state(), Closed);
}

#[tokio::test(start_paused = true)]
async fn dropped_probe_frees_its_slot() {
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(1)
        .open_duration(secs(1))
        .build();
    let handle = layer.handle();
    let (mut svc, mut mock_handle) = mock::spawn_layer::<u32, u32, _>(layer);
    assert!(svc.poll_ready().is_ready());
    let f = svc.call(0);
    mock_handle
        .next_request()
        .await
        .unwrap()
        .1
        .send_error(std::io::Error::other("x"));
    let _ = f.await;
    tokio::time::advance(secs(1)).await;

    assert!(svc.poll_ready().is_ready());
    drop(svc.call(1)); // the client went away
    assert_eq!(handle.state(), HalfOpen);
    assert!(svc.poll_ready().is_ready());
    let probe = svc.call(2);
    let (_, send) = mock_handle.next_request().await.unwrap(); // request 1
    drop(send);
    let (req, send) = mock_handle.next_request().await.unwrap();
    assert_eq!(req, 2);
    send.send_response(2);
    assert_eq!(probe.await.unwrap(), 2);
    assert_eq!(handle.state(), Closed);
}

#[tokio::test(start_paused = true)]
async fn custom_failure_classifier() {
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(2)
        .failure_if(|r: &Result<u16, std::io::Error>| matches!(r, Ok(s) if *s >= 500) || r.is_err())
        .build();
    let handle = layer.handle();
    let svc = layer.layer(service_fn(|status: u16| async move {
        Ok::<_, std::io::Error>(status)
    }));
    let _ = svc.clone().oneshot(404).await;
    let _ = svc.clone().oneshot(503).await;
    assert_eq!(handle.state(), Closed);
    let _ = svc.clone().oneshot(502).await;
    assert_eq!(handle.state(), Open);
}

#[tokio::test(start_paused = true)]
async fn state_exposed_as_metrics() {
    let m = TestMetrics::install();
    let layer = CircuitBreakerLayer::builder()
        .name("upstream")
        .consecutive_failures(1)
        .open_duration(secs(1))
        .build();
    let svc = layer.layer(switch(Arc::default()));
    assert_eq!(
        m.gauge("circuit_breaker_state", &[("breaker", "upstream")]),
        0.0
    );
    let _ = svc.clone().oneshot(true).await;
    assert_eq!(
        m.gauge("circuit_breaker_state", &[("breaker", "upstream")]),
        1.0
    );
    tokio::time::advance(secs(1)).await;
    let _ = svc.clone().oneshot(false).await;
    assert_eq!(
        m.gauge("circuit_breaker_state", &[("breaker", "upstream")]),
        0.0
    );
    let t = |from, to| {
        m.counter(
            "circuit_breaker_transitions_total",
            &[("breaker", "upstream"), ("from", from), ("to", to)],
        )
    };
    assert_eq!(t("closed", "open"), 1);
    assert_eq!(t("open", "half_open"), 1);
    assert_eq!(t("half_open", "closed"), 1);
    assert_eq!(t("half_open", "open"), 0);
}

#[tokio::test(start_paused = true)]
async fn clones_share_state() {
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(1)
        .build();
    let a = layer.layer(switch(Arc::default()));
    let b = layer.clone().layer(switch(Arc::default()));
    let _ = a.oneshot(true).await;
    assert!(b.clone().oneshot(false).await.unwrap_err().is_open());
    assert_eq!(b.handle().state(), Open);
}

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use abacus_layers::rate_limit::{Quota, RateLimitError, RateLimitLayer, RateLimited};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use tower_test::mock;

use crate::common::*;

/// Echoes its request (the key); counts calls.
fn echo(
    calls: Arc<AtomicUsize>,
) -> impl Service<u32, Response = u32, Error = std::io::Error, Future = impl Send> + Clone {
    service_fn(move |n: u32| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok(n) }
    })
}

/// The wait of a refusal, or `None` if the request was admitted.
async fn wait_of<S>(svc: &S, key: u32) -> Option<Duration>
where
    S: Service<u32, Response = u32, Error = RateLimitError<std::io::Error>> + Clone,
{
    match svc.clone().oneshot(key).await {
        Ok(n) => {
            assert_eq!(n, key);
            None
        }
        Err(RateLimitError::Limited(RateLimited { retry_after })) => Some(retry_after),
        Err(RateLimitError::Inner(e)) => panic!("inner error: {e}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_limit_holds_per_key_and_other_keys_are_unaffected() {
    let layer = RateLimitLayer::builder(Quota::per_second(10).with_burst(3))
        .key(|n: &u32| *n)
        .build();
    let handle = layer.handle();
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = layer.layer(echo(calls.clone()));

    for _ in 0..3 {
        assert_eq!(wait_of(&svc, 1).await, None);
    }
    for _ in 0..5 {
        assert!(wait_of(&svc, 1).await.is_some());
    }
    // Key 1 used its burst; key 2 has its own.
    for _ in 0..3 {
        assert_eq!(wait_of(&svc, 2).await, None);
    }
    assert!(wait_of(&svc, 2).await.is_some());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        6,
        "refusals never reach the inner service"
    );
    assert_eq!((handle.allowed(), handle.limited()), (6, 6));
    assert_eq!(handle.tracked_keys(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_the_wait_the_gcra_computes() {
    // 5 a second: one request every 200 ms, 3 at once.
    let svc = RateLimitLayer::builder(Quota::per_second(5).with_burst(3))
        .key(|n: &u32| *n)
        .build()
        .layer(echo(Arc::default()));

    for _ in 0..3 {
        assert_eq!(wait_of(&svc, 1).await, None);
    }
    assert_eq!(wait_of(&svc, 1).await, Some(ms(200)));
    tokio::time::advance(ms(150)).await;
    assert_eq!(wait_of(&svc, 1).await, Some(ms(50)));
    tokio::time::advance(ms(50)).await;
    // Exactly when it said: admitted, and the next one waits a whole interval.
    assert_eq!(wait_of(&svc, 1).await, None);
    assert_eq!(wait_of(&svc, 1).await, Some(ms(200)));
    // The steady rate: one every 200 ms.
    for _ in 0..10 {
        tokio::time::advance(ms(200)).await;
        assert_eq!(wait_of(&svc, 1).await, None);
        assert_eq!(wait_of(&svc, 1).await, Some(ms(200)));
    }
    // Quiet for long: the burst again, not more.
    tokio::time::advance(secs(60)).await;
    for _ in 0..3 {
        assert_eq!(wait_of(&svc, 1).await, None);
    }
    assert_eq!(wait_of(&svc, 1).await, Some(ms(200)));
}

#[tokio::test(start_paused = true)]
async fn per_key_quotas_override_the_default() {
    let svc = RateLimitLayer::builder(Quota::per_second(1))
        .key(|n: &u32| *n)
        .quota_for(7, Quota::per_second(100).with_burst(5))
        .quota_lookup(|n: &u32| (*n >= 100).then(|| Quota::per_minute(60).with_burst(2)))
        .quota_for(100, Quota::per_second(1).with_burst(4))
        .build()
        .layer(echo(Arc::default()));

    let admitted = async |key: u32| {
        let mut n = 0;
        while wait_of(&svc, key).await.is_none() {
            n += 1;
        }
        n
    };
    assert_eq!(admitted(1).await, 1, "the default");
    assert_eq!(admitted(7).await, 5, "quota_for");
    assert_eq!(admitted(200).await, 2, "quota_lookup");
    assert_eq!(admitted(100).await, 4, "quota_for before quota_lookup");
    // Each key waits by its own interval.
    assert_eq!(wait_of(&svc, 7).await, Some(ms(10)));
    assert_eq!(wait_of(&svc, 200).await, Some(secs(1)));
}

#[tokio::test(start_paused = true)]
async fn a_refusal_does_not_wait_for_the_inner_service() {
    let layer = RateLimitLayer::builder(Quota::per_second(1))
        .key(|n: &u32| *n)
        .build();
    let (mut svc, mut handle) = mock::spawn_layer::<u32, u32, _>(layer);
    handle.allow(0);

    // Ready although the inner service is not: it is readied per admitted call.
    assert!(svc.poll_ready().is_ready());
    let mut admitted = svc.call(1);
    assert!(poll_once(&mut admitted).is_pending());
    // Key 1 again: refused at once, while the inner service is still not ready.
    assert!(svc.poll_ready().is_ready());
    let mut refused = svc.call(1);
    match poll_once(&mut refused) {
        std::task::Poll::Ready(Err(RateLimitError::Limited(r))) => {
            assert_eq!(r.retry_after, secs(1));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    handle.allow(1);
    let serve = async {
        let (req, respond) = handle.next_request().await.unwrap();
        assert_eq!(req, 1);
        respond.send_response(10);
    };
    let (admitted, ()) = tokio::join!(admitted, serve);
    assert_eq!(admitted.unwrap(), 10);
}

#[tokio::test(start_paused = true)]
async fn idle_keys_are_forgotten_by_the_periodic_sweep() {
    let layer = RateLimitLayer::builder(Quota::per_second(10).with_burst(2))
        .key(|n: &u32| *n)
        .sweep_every(secs(1))
        .build();
    let handle = layer.handle();
    let svc = layer.layer(echo(Arc::default()));

    for key in 0..50 {
        assert_eq!(wait_of(&svc, key).await, None);
    }
    assert_eq!(handle.tracked_keys(), 50);
    // Half a sweep period: not due yet, every key kept.
    tokio::time::advance(ms(500)).await;
    assert_eq!(wait_of(&svc, 0).await, None);
    assert_eq!(handle.tracked_keys(), 50);
    // Past the period: the first request sweeps; only key 0 (just used) is left.
    tokio::time::advance(ms(600)).await;
    assert_eq!(wait_of(&svc, 1).await, None);
    assert_eq!(
        handle.tracked_keys(),
        1,
        "key 1, inserted again after the sweep"
    );
    // A forgotten key lost nothing: its burst, exactly.
    assert_eq!(wait_of(&svc, 1).await, None);
    assert!(wait_of(&svc, 1).await.is_some());
    // The handle sweeps on demand too.
    tokio::time::advance(secs(1)).await;
    assert_eq!(handle.sweep(), 1);
    assert_eq!(handle.tracked_keys(), 0);
    assert_eq!(handle.evicted(), 0, "idle keys are forgotten, not evicted");
}

#[tokio::test(start_paused = true)]
async fn a_hundred_thousand_distinct_keys_keep_the_map_under_its_cap() {
    const CAP: usize = 10_000;
    // One an hour: every key stays active for an hour, so only the cap
    // bounds the map.
    let layer = RateLimitLayer::builder(Quota::per_hour(1))
        .key(|n: &u32| *n)
        .max_keys(CAP)
        .sweep_every(secs(60))
        .build();
    let handle = layer.handle();
    let mut svc = layer.layer(service_fn(
        |n: u32| async move { Ok::<_, std::io::Error>(n) },
    ));

    let mut most = 0;
    for key in 0..100_000u32 {
        let fut = svc.ready().await.unwrap().call(key);
        assert_eq!(
            fut.await.unwrap(),
            key,
            "no new key is refused for a full map"
        );
        most = most.max(handle.tracked_keys());
        tokio::time::advance(Duration::from_micros(10)).await;
    }
    assert!(most <= CAP, "{most} keys tracked, cap {CAP}");
    assert!(handle.tracked_keys() > CAP / 2);
    assert!(handle.evicted() >= 90_000, "{}", handle.evicted());
    // The newest keys were kept: key 99 999 is still limited.
    assert!(svc.ready().await.unwrap().call(99_999).await.is_err());
    // A key evicted long ago starts afresh.
    assert!(svc.ready().await.unwrap().call(0).await.is_ok());

    // After the idle period, the next request's sweep empties the map.
    tokio::time::advance(Duration::from_secs(3600)).await;
    svc.ready().await.unwrap().call(1).await.unwrap();
    assert_eq!(handle.tracked_keys(), 1);
}

#[tokio::test(start_paused = true)]
async fn idle_keys_make_room_before_any_active_key_is_evicted() {
    let layer = RateLimitLayer::builder(Quota::per_second(10))
        .key(|n: &u32| *n)
        .max_keys(100)
        .sweep_every(secs(3600))
        .build();
    let handle = layer.handle();
    let svc = layer.layer(echo(Arc::default()));
    for key in 0..100 {
        assert_eq!(wait_of(&svc, key).await, None);
    }
    tokio::time::advance(secs(1)).await;
    // Every key is idle now: the full map forgets them instead of evicting.
    for key in 100..150 {
        assert_eq!(wait_of(&svc, key).await, None);
    }
    assert_eq!(handle.tracked_keys(), 50);
    assert_eq!(handle.evicted(), 0);
}

#[test]
fn the_cap_holds_across_threads_and_one_key_never_exceeds_its_burst() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        const CAP: usize = 1_000;
        let layer = RateLimitLayer::builder(Quota::per_hour(1))
            .key(|n: &u32| *n)
            .quota_for(u32::MAX, Quota::per_hour(1).with_burst(100))
            .max_keys(CAP)
            .build();
        let handle = layer.handle();
        let svc = layer.layer(echo(Arc::default()));
        let tasks: Vec<_> = (0..4u32)
            .map(|t| {
                let svc = svc.clone();
                let handle = handle.clone();
                tokio::spawn(async move {
                    let (mut admitted, mut most) = (0, 0);
                    for i in 0..5_000u32 {
                        // Every other request for the shared key.
                        let key = if i % 2 == 0 {
                            u32::MAX
                        } else {
                            t * 1_000_000 + i
                        };
                        let ok = svc.clone().oneshot(key).await.is_ok();
                        if key == u32::MAX && ok {
                            admitted += 1;
                        }
                        most = most.max(handle.tracked_keys());
                    }
                    (admitted, most)
                })
            })
            .collect();
        let (mut admitted, mut most) = (0, 0);
        for t in tasks {
            let (a, m) = t.await.unwrap();
            admitted += a;
            most = most.max(m);
        }
        assert_eq!(admitted, 100, "the shared key's burst, exactly");
        // Over the cap by at most the callers inserting during an eviction.
        assert!(most <= CAP + 4, "{most}");
    });
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn counters_by_outcome_through_the_metrics_facade() {
    let metrics = TestMetrics::install();
    let layer = RateLimitLayer::builder(Quota::per_second(1))
        .metric_name("a2a_rate_limit_total")
        .label("listener", "public")
        .keep_handles(true)
        .build();
    // Registered at zero when built (with kept handles).
    let allowed = || {
        metrics.counter(
            "a2a_rate_limit_total",
            &[("outcome", "allowed"), ("listener", "public")],
        )
    };
    let limited = || {
        metrics.counter(
            "a2a_rate_limit_total",
            &[("outcome", "limited"), ("listener", "public")],
        )
    };
    assert_eq!((allowed(), limited()), (0, 0));
    let svc = layer.layer(echo(Arc::default()));
    for _ in 0..3 {
        let _ = svc.clone().oneshot(0).await;
    }
    assert_eq!((allowed(), limited()), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn the_refusal_is_a_plain_error_for_a_box_error_stack() {
    let svc = RateLimitLayer::new(Quota::per_second(2).with_burst(1))
        .layer(echo(Arc::default()))
        .map_err(|e| -> BoxError {
            match e {
                RateLimitError::Limited(r) => r.into(),
                RateLimitError::Inner(e) => e.into(),
            }
        });
    svc.clone().oneshot(1).await.unwrap();
    let err = svc.oneshot(1).await.unwrap_err();
    let limited = err.downcast_ref::<RateLimited>().expect("a RateLimited");
    assert_eq!(limited.retry_after, ms(500));
    assert_eq!(limited.retry_after_secs(), 1);
    assert_eq!(err.to_string(), "rate limited: retry in 0.500 s");
}

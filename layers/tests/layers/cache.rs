use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use abacus_layers::cache::{CacheError, CacheLayer};
use tower::{Layer, ServiceExt, service_fn};

use crate::common::*;

/// Squares its input after `delay`; counts calls. Input 0 fails.
fn squarer(
    calls: Arc<AtomicUsize>,
    delay: Duration,
) -> impl tower::Service<u64, Response = u64, Error = std::io::Error, Future = impl Send + 'static>
+ Clone
+ Send
+ 'static {
    service_fn(move |n: u64| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(delay).await;
            if n == 0 {
                Err(std::io::Error::other("zero"))
            } else {
                Ok(n * n)
            }
        }
    })
}

#[tokio::test]
async fn hit_and_miss() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::builder().build(|n: &u64| Some(*n), |_: &u64| true);
    let handle = layer.handle();
    let svc = layer.layer(squarer(calls.clone(), Duration::ZERO));
    assert_eq!(svc.clone().oneshot(3).await.unwrap(), 9);
    assert_eq!(svc.clone().oneshot(3).await.unwrap(), 9);
    assert_eq!(svc.clone().oneshot(4).await.unwrap(), 16);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!((handle.hits(), handle.misses()), (1, 2));
}

#[tokio::test]
async fn requests_without_a_key_bypass_the_cache() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::builder().build(|n: &u64| (*n % 2 == 0).then_some(*n), |_: &u64| true);
    let handle = layer.handle();
    let svc = layer.layer(squarer(calls.clone(), Duration::ZERO));
    for _ in 0..3 {
        assert_eq!(svc.clone().oneshot(3).await.unwrap(), 9);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!((handle.hits(), handle.misses()), (0, 0));
    // Errors of requests without a key are owned; of cacheable requests, shared.
    assert!(matches!(svc.clone().oneshot(1).await, Ok(1)));
    assert!(matches!(svc.oneshot(0).await, Err(CacheError::Shared(_))));
}

#[tokio::test]
async fn predicate_can_refuse_a_response() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::builder().build(|n: &u64| Some(*n), |sq: &u64| *sq < 100);
    let svc = layer.layer(squarer(calls.clone(), Duration::ZERO));
    svc.clone().oneshot(20).await.unwrap();
    svc.clone().oneshot(20).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    svc.clone().oneshot(5).await.unwrap();
    svc.clone().oneshot(5).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn single_flight_under_100_concurrent_misses() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::builder().build(|n: &u64| Some(*n), |_: &u64| true);
    let handle = layer.handle();
    let svc = layer.layer(squarer(calls.clone(), ms(50)));
    let results = futures_util::future::join_all((0..100).map(|_| svc.clone().oneshot(7))).await;
    assert!(results.iter().all(|r| *r.as_ref().unwrap() == 49));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!((handle.hits(), handle.misses()), (99, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_across_threads() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::builder().build(|n: &u64| Some(*n), |_: &u64| true);
    let svc = layer.layer(squarer(calls.clone(), ms(50)));
    let tasks: Vec<_> = (0..100)
        .map(|_| tokio::spawn(svc.clone().oneshot(8)))
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 64);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_share_one_error() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::builder().build(|n: &u64| Some(*n), |_: &u64| true);
    let svc = layer.layer(squarer(calls.clone(), ms(50)));
    let results = futures_util::future::join_all((0..10).map(|_| svc.clone().oneshot(0))).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    for r in &results {
        assert_eq!(r.as_ref().unwrap_err().get_ref().to_string(), "zero");
    }
    assert!(results.iter().all(|r| r.as_ref().unwrap_err().is_shared()));
    // Errors are not cached.
    svc.oneshot(0).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn entries_expire_after_ttl() {
    // moka has its own clock: use a short real TTL.
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::builder()
        .time_to_live(ms(300))
        .build(|n: &u64| Some(*n), |_: &u64| true);
    let handle = layer.handle();
    let svc = layer.layer(squarer(calls.clone(), Duration::ZERO));
    svc.clone().oneshot(2).await.unwrap();
    svc.clone().oneshot(2).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::sleep(ms(700)).await;
    svc.clone().oneshot(2).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!((handle.hits(), handle.misses()), (1, 2));
}

#[tokio::test]
async fn size_bounded() {
    let layer = CacheLayer::builder()
        .max_capacity(5)
        .build(|n: &u64| Some(*n), |_: &u64| true);
    let handle = layer.handle();
    let svc = layer.layer(squarer(Arc::default(), Duration::ZERO));
    for n in 1..=50 {
        svc.clone().oneshot(n).await.unwrap();
    }
    handle.cache().run_pending_tasks().await;
    assert!(handle.entry_count() <= 5, "{}", handle.entry_count());
}

#[tokio::test]
async fn weigher_bounds_total_weight() {
    let layer = CacheLayer::builder()
        .max_capacity(100)
        .weigher(|_k: &u64, v: &String| v.len() as u32)
        .build(|n: &u64| Some(*n), |_: &String| true);
    let handle = layer.handle();
    let svc = layer.layer(service_fn(|n: u64| async move {
        Ok::<_, std::io::Error>("x".repeat(40 + n as usize % 2))
    }));
    for n in 1..=20 {
        svc.clone().oneshot(n).await.unwrap();
    }
    handle.cache().run_pending_tasks().await;
    assert!(handle.cache().weighted_size() <= 100);
    assert!(handle.entry_count() <= 2);
}

/// The server's case: cache the serialized unary body, never a stream.
#[tokio::test(start_paused = true)]
async fn unary_bodies_cached_streams_not() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let inner = service_fn(move |n: u32| {
        c.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(ms(10)).await;
            Ok::<_, std::io::Error>(if n % 2 == 0 {
                Resp::Unary(n)
            } else {
                Resp::Stream(timed_stream(vec![(ms(1), n)]))
            })
        }
    });
    let layer = CacheLayer::builder().build_mapped(
        |n: &u32| Some(*n),
        |res: &Resp| match res {
            Resp::Unary(n) => Some(*n),
            Resp::Stream(_) => None,
        },
        Resp::Unary,
    );
    let svc = layer.layer(inner);

    assert_eq!(svc.clone().oneshot(2).await.unwrap().unary(), 2);
    assert_eq!(svc.clone().oneshot(2).await.unwrap().unary(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Three concurrent misses for a streamed response: each gets its own stream.
    let results = futures_util::future::join_all((0..3).map(|_| svc.clone().oneshot(3))).await;
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    for r in results {
        assert_eq!(collect(r.unwrap().stream()).await, vec![Event::Item(3)]);
    }
}

#[tokio::test]
async fn hits_and_misses_as_metrics() {
    let m = TestMetrics::install();
    let layer = CacheLayer::builder()
        .metric_name("a2a_cache_requests_total")
        .build(|n: &u64| Some(*n), |_: &u64| true);
    let svc = layer.layer(squarer(Arc::default(), Duration::ZERO));
    for n in [1, 1, 1, 2] {
        svc.clone().oneshot(n).await.unwrap();
    }
    assert_eq!(
        m.counter("a2a_cache_requests_total", &[("result", "hit")]),
        2
    );
    assert_eq!(
        m.counter("a2a_cache_requests_total", &[("result", "miss")]),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn refused_keys_stop_waiting_for_each_other() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = CacheLayer::builder().build(|n: &u64| Some(*n), |sq: &u64| *sq < 100);
    let handle = layer.handle();
    let svc = layer.layer(squarer(calls.clone(), ms(50)));
    let burst = || futures_util::future::join_all((0..10).map(|_| svc.clone().oneshot(20)));

    // Cold: nothing tells the response is uncacheable before it arrives, so
    // the others wait for the first, then each calls the service.
    let started = tokio::time::Instant::now();
    assert!(burst().await.iter().all(|r| *r.as_ref().unwrap() == 400));
    assert_eq!(started.elapsed(), ms(100));
    assert_eq!(calls.load(Ordering::SeqCst), 10);

    // The key is known to be refused now: all ten run at once.
    let started = tokio::time::Instant::now();
    assert!(burst().await.iter().all(|r| *r.as_ref().unwrap() == 400));
    assert_eq!(started.elapsed(), ms(50));
    assert_eq!(calls.load(Ordering::SeqCst), 20);
    assert_eq!((handle.hits(), handle.misses()), (0, 20));

    // Other keys still coalesce.
    let results = futures_util::future::join_all((0..10).map(|_| svc.clone().oneshot(3))).await;
    assert!(results.iter().all(|r| *r.as_ref().unwrap() == 9));
    assert_eq!(calls.load(Ordering::SeqCst), 21);
}

#[tokio::test]
async fn a_refused_key_is_cached_once_its_response_may_be() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    // Answers with the number of calls so far; the first answer is refused.
    let svc = service_fn(move |n: u64| {
        let call = counter.fetch_add(1, Ordering::SeqCst) as u64 + 1;
        async move {
            if n == 0 {
                Err(std::io::Error::other("zero"))
            } else {
                Ok(call)
            }
        }
    });
    let layer = CacheLayer::builder().build(|n: &u64| Some(*n), |call: &u64| *call >= 2);
    let handle = layer.handle();
    let svc = layer.layer(svc);
    assert_eq!(svc.clone().oneshot(1).await.unwrap(), 1);
    assert_eq!(
        svc.clone().oneshot(1).await.unwrap(),
        2,
        "refused key: its own call"
    );
    assert_eq!(svc.clone().oneshot(1).await.unwrap(), 2, "now cached");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!((handle.hits(), handle.misses()), (1, 2));
    // A refused key's error belongs to its caller (no single flight).
    let layer = CacheLayer::builder().build(|_: &u64| Some(()), |_: &u64| false);
    let svc = layer.layer(squarer(Arc::new(AtomicUsize::new(0)), Duration::ZERO));
    assert_eq!(svc.clone().oneshot(5).await.unwrap(), 25);
    assert!(matches!(svc.oneshot(0).await, Err(CacheError::Inner(_))));
}

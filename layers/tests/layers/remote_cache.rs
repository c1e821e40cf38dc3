use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use abacus_layers::cache::CacheLayer;
use abacus_layers::circuit_breaker::{CircuitBreakerLayer, CircuitState};
use abacus_layers::remote_cache::{RemoteCacheHandle, RemoteCacheLayer, RemoteOp};
use abacus_layers::timeout::TimeoutLayer;
use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

use crate::common::*;

/// What the fake store does with a `Get`.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Answers from its map.
    Works,
    /// Fails every operation.
    Fails,
    /// Answers a `Get` after 10 s (a frozen store).
    Hangs,
}

/// A store over a map, with every operation it was sent, and writes that
/// may be held back until `release` is notified.
#[derive(Clone)]
struct Store {
    map: Arc<Mutex<HashMap<String, Bytes>>>,
    ops: Arc<Mutex<Vec<RemoteOp>>>,
    mode: Arc<Mutex<Mode>>,
    hold_writes: Arc<Mutex<bool>>,
    release: Arc<Notify>,
}

impl Store {
    fn new(mode: Mode) -> Self {
        Self {
            map: Arc::default(),
            ops: Arc::default(),
            mode: Arc::new(Mutex::new(mode)),
            hold_writes: Arc::default(),
            release: Arc::new(Notify::new()),
        }
    }

    fn put(&self, key: &str, value: &'static [u8]) {
        self.map
            .lock()
            .unwrap()
            .insert(key.into(), Bytes::from_static(value));
    }

    fn get(&self, key: &str) -> Option<Bytes> {
        self.map.lock().unwrap().get(key).cloned()
    }

    fn ops(&self) -> Vec<RemoteOp> {
        self.ops.lock().unwrap().clone()
    }

    fn gets(&self) -> usize {
        self.ops()
            .iter()
            .filter(|op| matches!(op, RemoteOp::Get(_)))
            .count()
    }

    fn service(
        &self,
    ) -> impl Service<
        RemoteOp,
        Response = Option<Bytes>,
        Error = std::io::Error,
        Future = impl Send + 'static,
    > + Clone
    + Send
    + 'static {
        let store = self.clone();
        service_fn(move |op: RemoteOp| {
            let store = store.clone();
            async move {
                store.ops.lock().unwrap().push(op.clone());
                let mode = *store.mode.lock().unwrap();
                match (mode, op) {
                    (Mode::Fails, _) => Err(std::io::Error::other("store down")),
                    (Mode::Hangs, RemoteOp::Get(key)) => {
                        tokio::time::sleep(secs(10)).await;
                        Ok(store.get(&key))
                    }
                    (_, RemoteOp::Get(key)) => Ok(store.get(&key)),
                    (_, RemoteOp::Set { key, value, .. }) => {
                        let hold = *store.hold_writes.lock().unwrap();
                        if hold {
                            store.release.notified().await;
                        }
                        store.map.lock().unwrap().insert(key, value);
                        Ok(None)
                    }
                }
            }
        })
    }
}

/// Squares its input; counts calls. Input 0 fails.
fn squarer(
    calls: Arc<AtomicUsize>,
) -> impl Service<u64, Response = u64, Error = std::io::Error, Future = impl Send + 'static>
+ Clone
+ Send
+ 'static {
    service_fn(move |n: u64| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(std::io::Error::other("zero"))
            } else {
                Ok(n * n)
            }
        }
    })
}

fn key(n: &u64) -> Option<String> {
    // Odd numbers are not cacheable.
    (n % 2 == 0).then(|| format!("sq:{n}"))
}

fn encode(sq: &u64) -> Option<Bytes> {
    // Squares above 10 000 may not be stored.
    (*sq <= 10_000).then(|| Bytes::from(sq.to_string()))
}

fn decode(b: Bytes) -> Option<u64> {
    std::str::from_utf8(&b).ok()?.parse().ok()
}

fn counts(h: &RemoteCacheHandle) -> (u64, u64, u64) {
    (h.hits(), h.misses(), h.errors())
}

/// Lets the detached writes run until `done` holds (bounded).
async fn settle(done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the detached writes did not finish");
}

#[tokio::test]
async fn a_hit_is_the_stored_value_and_the_inner_service_is_not_called() {
    let store = Store::new(Mode::Works);
    // Not the square: the answer can only come from the store.
    store.put("sq:4", b"17");
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = RemoteCacheLayer::builder(store.service()).build(key, encode, decode);
    let handle = layer.handle();
    let svc = layer.layer(squarer(calls.clone()));
    assert_eq!(svc.oneshot(4).await.unwrap(), 17);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(counts(&handle), (1, 0, 0));
    assert_eq!(store.ops(), [RemoteOp::Get("sq:4".into())]);
}

#[tokio::test]
async fn a_miss_calls_the_inner_service_and_writes_its_response_detached() {
    let store = Store::new(Mode::Works);
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = RemoteCacheLayer::builder(store.service())
        .time_to_live(secs(60))
        .build(key, encode, decode);
    let handle = layer.handle();
    let svc = layer.layer(squarer(calls.clone()));
    assert_eq!(svc.clone().oneshot(6).await.unwrap(), 36);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(counts(&handle), (0, 1, 0));
    settle(|| handle.writes() == 1).await;
    assert_eq!(
        store.ops(),
        [
            RemoteOp::Get("sq:6".into()),
            RemoteOp::Set {
                key: "sq:6".into(),
                value: Bytes::from_static(b"36"),
                ttl: secs(60)
            }
        ]
    );
    // The next request for it is a hit.
    assert_eq!(svc.oneshot(6).await.unwrap(), 36);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(counts(&handle), (1, 1, 0));
    assert_eq!(handle.writes_in_flight(), 0);
}

#[tokio::test]
async fn requests_without_a_key_and_responses_that_do_not_encode_skip_the_store() {
    let store = Store::new(Mode::Works);
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = RemoteCacheLayer::builder(store.service()).build(key, encode, decode);
    let handle = layer.handle();
    let svc = layer.layer(squarer(calls.clone()));
    // Odd: no key, the store is never asked, nothing is counted.
    assert_eq!(svc.clone().oneshot(3).await.unwrap(), 9);
    assert!(store.ops().is_empty());
    assert_eq!(counts(&handle), (0, 0, 0));
    // 200² = 40 000 may not be stored: looked up, not written.
    assert_eq!(svc.clone().oneshot(200).await.unwrap(), 40_000);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(store.ops(), [RemoteOp::Get("sq:200".into())]);
    assert_eq!(counts(&handle), (0, 1, 0));
    // The inner service's errors are the caller's, and are not written.
    assert_eq!(svc.oneshot(0).await.unwrap_err().to_string(), "zero");
    assert_eq!(handle.writes(), 0);
}

#[tokio::test]
async fn a_failing_store_is_a_miss_and_the_inner_service_answers() {
    let store = Store::new(Mode::Fails);
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = RemoteCacheLayer::builder(store.service()).build(key, encode, decode);
    let handle = layer.handle();
    let svc = layer.layer(squarer(calls.clone()));
    for _ in 0..3 {
        assert_eq!(svc.clone().oneshot(8).await.unwrap(), 64);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(counts(&handle), (0, 0, 3));
    // The writes were tried and failed, quietly.
    settle(|| handle.write_errors() == 3).await;
    assert_eq!(handle.writes(), 0);
}

#[tokio::test]
async fn a_value_that_does_not_decode_is_a_miss_and_is_replaced() {
    let store = Store::new(Mode::Works);
    store.put("sq:10", b"\xff not a number");
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = RemoteCacheLayer::builder(store.service()).build(key, encode, decode);
    let handle = layer.handle();
    let svc = layer.layer(squarer(calls.clone()));
    assert_eq!(svc.oneshot(10).await.unwrap(), 100);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(counts(&handle), (0, 1, 0));
    settle(|| handle.writes() == 1).await;
    assert_eq!(store.get("sq:10").unwrap(), "100");
}

#[tokio::test(start_paused = true)]
async fn a_slow_store_under_a_timeout_costs_the_timeout_only() {
    let store = Store::new(Mode::Hangs);
    let calls = Arc::new(AtomicUsize::new(0));
    let remote = TimeoutLayer::new(ms(50)).layer(store.service());
    let layer = RemoteCacheLayer::builder(remote).build(key, encode, decode);
    let handle = layer.handle();
    let svc = layer.layer(squarer(calls.clone()));
    let start = Instant::now();
    assert_eq!(svc.oneshot(12).await.unwrap(), 144);
    // The store would have answered after 10 s; the request took the timeout.
    assert_eq!(start.elapsed(), ms(50));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(counts(&handle), (0, 0, 1));
}

#[tokio::test(start_paused = true)]
async fn a_breaker_around_the_store_stops_asking_it_and_probes_later() {
    let store = Store::new(Mode::Fails);
    let calls = Arc::new(AtomicUsize::new(0));
    let breaker = CircuitBreakerLayer::builder()
        .name("store")
        .consecutive_failures(2)
        .open_duration(secs(5))
        .build();
    let breaker_handle = breaker.handle();
    let remote = ServiceBuilder::new()
        .layer(breaker)
        .layer(TimeoutLayer::new(ms(50)))
        .service(store.service());
    let layer = RemoteCacheLayer::builder(remote).build(key, encode, decode);
    let handle = layer.handle();
    let svc = layer.layer(squarer(calls.clone()));
    // Two lookups fail (their writes may fail too): the breaker opens.
    assert_eq!(svc.clone().oneshot(2).await.unwrap(), 4);
    assert_eq!(svc.clone().oneshot(2).await.unwrap(), 4);
    settle(|| handle.write_errors() + handle.writes_dropped() == 2).await;
    assert_eq!(breaker_handle.state(), CircuitState::Open);
    let sent = store.ops().len();
    for _ in 0..20 {
        assert_eq!(svc.clone().oneshot(2).await.unwrap(), 4);
    }
    settle(|| handle.write_errors() == 22).await;
    // Nothing reached the store while open; every request was answered.
    assert_eq!(store.ops().len(), sent);
    assert_eq!(calls.load(Ordering::SeqCst), 22);
    assert_eq!(counts(&handle), (0, 0, 22));
    // The store is back: after the open duration a probe finds it.
    *store.mode.lock().unwrap() = Mode::Works;
    store.put("sq:2", b"4");
    tokio::time::advance(secs(5)).await;
    assert_eq!(svc.oneshot(2).await.unwrap(), 4);
    assert_eq!(breaker_handle.state(), CircuitState::Closed);
    assert_eq!(counts(&handle), (1, 0, 22));
    assert_eq!(calls.load(Ordering::SeqCst), 22);
}

#[tokio::test]
async fn writes_are_not_awaited_and_are_bounded() {
    let store = Store::new(Mode::Works);
    *store.hold_writes.lock().unwrap() = true;
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = RemoteCacheLayer::builder(store.service())
        .max_writes_in_flight(1)
        .build(key, encode, decode);
    let handle = layer.handle();
    let svc = layer.layer(squarer(calls.clone()));
    // The write of 14 is held by the store: the request is answered anyway.
    assert_eq!(svc.clone().oneshot(14).await.unwrap(), 196);
    settle(|| store.ops().len() == 2).await;
    assert_eq!(handle.writes_in_flight(), 1);
    // Its slot is the only one: the write of 16 is dropped.
    assert_eq!(svc.clone().oneshot(16).await.unwrap(), 256);
    assert_eq!(handle.writes_dropped(), 1);
    store.release.notify_one();
    settle(|| handle.writes() == 1).await;
    assert_eq!(handle.writes_in_flight(), 0);
    assert_eq!(store.get("sq:14").unwrap(), "196");
    assert_eq!(store.get("sq:16"), None);
    // A free slot again: the next miss is written.
    *store.hold_writes.lock().unwrap() = false;
    assert_eq!(svc.oneshot(18).await.unwrap(), 324);
    settle(|| handle.writes() == 2).await;
    assert_eq!(store.get("sq:18").unwrap(), "324");
}

#[tokio::test]
async fn a_store_hit_fills_the_in_process_cache_in_front() {
    let store = Store::new(Mode::Works);
    store.put("sq:20", b"400");
    let calls = Arc::new(AtomicUsize::new(0));
    let l1 = CacheLayer::builder().build(|n: &u64| key(n), |_: &u64| true);
    let l1_handle = l1.handle();
    let l2 = RemoteCacheLayer::builder(store.service()).build(key, encode, decode);
    let l2_handle = l2.handle();
    let svc = ServiceBuilder::new()
        .layer(l1)
        .layer(l2)
        .service(squarer(calls.clone()));
    for _ in 0..3 {
        assert_eq!(svc.clone().oneshot(20).await.unwrap(), 400);
    }
    // The store was asked once: then the in-process cache answered.
    assert_eq!(store.gets(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(counts(&l2_handle), (1, 0, 0));
    assert_eq!((l1_handle.hits(), l1_handle.misses()), (2, 1));
}

#[tokio::test]
async fn lookups_and_writes_are_counted_as_metrics() {
    let m = TestMetrics::install();
    let store = Store::new(Mode::Works);
    store.put("sq:2", b"4");
    let layer = RemoteCacheLayer::builder(store.service())
        .metric_name("l2_requests_total")
        .writes_metric_name("l2_writes_total")
        .build(key, encode, decode);
    let handle = layer.handle();
    let svc = layer.layer(squarer(Arc::default()));
    svc.clone().oneshot(2).await.unwrap();
    svc.clone().oneshot(4).await.unwrap();
    settle(|| handle.writes() == 1).await;
    *store.mode.lock().unwrap() = Mode::Fails;
    svc.oneshot(6).await.unwrap();
    settle(|| handle.write_errors() == 1).await;
    let requests = |result| m.counter("l2_requests_total", &[("result", result)]);
    let writes = |result| m.counter("l2_writes_total", &[("result", result)]);
    assert_eq!(
        (requests("hit"), requests("miss"), requests("error")),
        (1, 1, 1)
    );
    assert_eq!(
        (writes("done"), writes("error"), writes("dropped")),
        (1, 1, 0)
    );
}

//! Shared test helpers: an A2A-like response enum, controllable streams, a
//! metrics recorder.
#![allow(dead_code)]

use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use abacus_layers::stream::{
    GuardedStream, StreamTimeout, StreamTimeouts, TimeoutStream, TrackEnd,
};
use abacus_layers::timeout::TimeoutKind;
use futures_core::Stream;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};
use tokio::sync::mpsc;

pub type EventStream = Pin<Box<dyn Stream<Item = Event> + Send>>;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Item(u32),
    TimedOut(TimeoutKind),
}

/// Mirrors the server's `A2AResponse`: unary, or a boxed stream of events.
pub enum Resp {
    Unary(u32),
    Stream(EventStream),
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resp::Unary(n) => write!(f, "Unary({n})"),
            Resp::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

impl Resp {
    pub fn unary(self) -> u32 {
        match self {
            Resp::Unary(n) => n,
            Resp::Stream(_) => panic!("expected a unary response"),
        }
    }

    pub fn stream(self) -> EventStream {
        match self {
            Resp::Stream(s) => s,
            Resp::Unary(_) => panic!("expected a stream"),
        }
    }
}

impl TrackEnd for Resp {
    type Output<G: Send + Sync + 'static> = Self;

    fn track_end<G: Send + Sync + 'static>(self, guard: G) -> Self {
        match self {
            Resp::Unary(n) => Resp::Unary(n),
            Resp::Stream(s) => Resp::Stream(Box::pin(GuardedStream::new(s, guard))),
        }
    }
}

impl StreamTimeout for Resp {
    type Output = Self;

    fn stream_timeout(self, timeouts: StreamTimeouts) -> Self {
        match self {
            Resp::Stream(s) if !timeouts.is_none() => {
                Resp::Stream(Box::pin(TimeoutStream::new(s, timeouts, |e| {
                    Event::TimedOut(e.kind())
                })))
            }
            other => other,
        }
    }
}

/// A stream fed by hand.
pub fn channel_stream() -> (mpsc::UnboundedSender<u32>, EventStream) {
    let (tx, rx) = mpsc::unbounded_channel();
    let s = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|n| (Event::Item(n), rx))
    });
    (tx, Box::pin(s))
}

/// A stream yielding `item` after each `delay` (tokio time).
pub fn timed_stream(items: Vec<(Duration, u32)>) -> EventStream {
    let s = futures_util::stream::unfold(items.into_iter(), |mut it| async move {
        let (delay, n) = it.next()?;
        tokio::time::sleep(delay).await;
        Some((Event::Item(n), it))
    });
    Box::pin(s)
}

pub async fn collect(s: EventStream) -> Vec<Event> {
    s.collect().await
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Poll a future once.
pub fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    Pin::new(f).poll(&mut cx)
}

/// A tiny in-memory recorder (non-destructive reads, unlike metrics-util's
/// `DebuggingRecorder`, whose snapshots reset gauges).
#[derive(Default)]
struct Recorder {
    metrics: Mutex<HashMap<(u8, Key), Metric>>,
}

#[derive(Clone)]
enum Metric {
    Counter(Arc<AtomicU64>),
    Gauge(Arc<AtomicU64>),
    Histogram(Arc<Hist>),
}

#[derive(Default)]
struct Hist(Mutex<Vec<f64>>);

impl metrics::HistogramFn for Hist {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

impl Recorder {
    fn get(&self, kind: u8, key: &Key, make: impl FnOnce() -> Metric) -> Metric {
        self.metrics
            .lock()
            .unwrap()
            .entry((kind, key.clone()))
            .or_insert_with(make)
            .clone()
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match self.get(0, key, || Metric::Counter(Arc::default())) {
            Metric::Counter(c) => Counter::from_arc(c),
            _ => unreachable!(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        match self.get(1, key, || Metric::Gauge(Arc::default())) {
            Metric::Gauge(g) => Gauge::from_arc(g),
            _ => unreachable!(),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match self.get(2, key, || Metric::Histogram(Arc::default())) {
            Metric::Histogram(h) => Histogram::from_arc(h),
            _ => unreachable!(),
        }
    }
}

/// A thread-local metrics recorder for a test (current-thread runtime).
pub struct TestMetrics {
    recorder: &'static Recorder,
    _guard: metrics::LocalRecorderGuard<'static>,
}

impl TestMetrics {
    pub fn install() -> Self {
        let recorder: &'static Recorder = Box::leak(Box::default());
        let guard = metrics::set_default_local_recorder(recorder);
        Self {
            recorder,
            _guard: guard,
        }
    }

    fn find(&self, kind: u8, name: &str, labels: &[(&str, &str)]) -> Option<Metric> {
        let metrics = self.recorder.metrics.lock().unwrap();
        let found: Vec<_> = metrics
            .iter()
            .filter(|((k, key), _)| {
                *k == kind
                    && key.name() == name
                    && labels
                        .iter()
                        .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
            })
            .map(|(_, m)| m.clone())
            .collect();
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} series",
            found.len()
        );
        found.into_iter().next()
    }

    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.find(0, name, labels) {
            Some(Metric::Counter(c)) => c.load(Ordering::SeqCst),
            _ => 0,
        }
    }

    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.find(1, name, labels) {
            Some(Metric::Gauge(g)) => f64::from_bits(g.load(Ordering::SeqCst)),
            _ => 0.0,
        }
    }

    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        match self.find(2, name, labels) {
            Some(Metric::Histogram(h)) => h.0.lock().unwrap().clone(),
            _ => Vec::new(),
        }
    }
}

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tower::ServiceExt;
use tower_layer::Layer;
use tower_service::Service;

use super::{RemoteCache, RemoteOp};

#[cfg(feature = "metrics")]
type MetricName = ::metrics::SharedString;
#[cfg(not(feature = "metrics"))]
type MetricName = ();

/// What a lookup found.
#[derive(Clone, Copy)]
pub(super) enum Lookup {
    Hit = 0,
    Miss = 1,
    Error = 2,
}

/// What became of a detached write.
#[derive(Clone, Copy)]
enum Write {
    Done = 0,
    Failed = 1,
    Dropped = 2,
}

/// The counters of a layer, shared with its handles and its detached
/// writes (which hold this, not the layer's functions).
pub(super) struct Stats {
    lookups: [AtomicU64; 3],
    writes: [AtomicU64; 3],
    in_flight: AtomicUsize,
    max_in_flight: usize,
    #[cfg(feature = "metrics")]
    lookup_metrics: [crate::util::kept::KeptCounter; 3],
    #[cfg(feature = "metrics")]
    write_metrics: [crate::util::kept::KeptCounter; 3],
    #[cfg(feature = "metrics")]
    keep_handles: bool,
}

#[cfg(feature = "metrics")]
fn counters(name: &MetricName, results: [&'static str; 3]) -> [crate::util::kept::KeptCounter; 3] {
    results.map(|result| {
        crate::util::kept::KeptCounter::new(::metrics::Key::from_parts(
            name.clone(),
            vec![::metrics::Label::from_static_parts("result", result)],
        ))
    })
}

impl Stats {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn new(
        lookups_name: &MetricName,
        writes_name: &MetricName,
        keep_handles: bool,
        max_in_flight: usize,
    ) -> Self {
        Self {
            lookups: Default::default(),
            writes: Default::default(),
            in_flight: AtomicUsize::new(0),
            max_in_flight,
            #[cfg(feature = "metrics")]
            lookup_metrics: counters(lookups_name, ["hit", "miss", "error"]),
            #[cfg(feature = "metrics")]
            write_metrics: counters(writes_name, ["done", "error", "dropped"]),
            #[cfg(feature = "metrics")]
            keep_handles,
        }
    }

    #[inline]
    pub(super) fn lookup(&self, found: Lookup) {
        self.lookups[found as usize].fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.lookup_metrics[found as usize].increment(self.keep_handles, 1);
    }

    fn write(&self, outcome: Write) {
        self.writes[outcome as usize].fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.write_metrics[outcome as usize].increment(self.keep_handles, 1);
    }

    /// Takes a write slot, or `None` when every slot is taken.
    fn reserve(self: &Arc<Self>) -> Option<Slot> {
        let taken = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_in_flight).then_some(n + 1)
            });
        taken.is_ok().then(|| Slot(self.clone()))
    }
}

/// A write in flight: frees its slot when dropped (finished, or its task
/// cancelled with the runtime).
struct Slot(Arc<Stats>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// State shared by a layer, its services and their response futures.
pub(super) struct Shared<R, KF, EF, DF> {
    pub(super) remote: R,
    pub(super) key_fn: KF,
    pub(super) encode: EF,
    pub(super) decode: DF,
    ttl: Duration,
    pub(super) stats: Arc<Stats>,
}

impl<R, KF, EF, DF> Shared<R, KF, EF, DF> {
    /// Stores `value` under `key` without waiting: spawned on the current
    /// Tokio runtime, or dropped when the slots are taken (or there is no
    /// runtime). The write runs in the caller's `tracing` span, so a trace
    /// shows it under the request that caused it.
    pub(super) fn write(&self, key: String, value: Bytes)
    where
        R: Service<RemoteOp, Response = Option<Bytes>> + Clone + Send + 'static,
        R::Future: Send + 'static,
    {
        let Some(slot) = self.stats.reserve() else {
            self.stats.write(Write::Dropped);
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            drop(slot);
            self.stats.write(Write::Dropped);
            return;
        };
        let set = RemoteOp::Set {
            key,
            value,
            ttl: self.ttl,
        };
        let write = self.remote.clone().oneshot(set);
        runtime.spawn(tracing::Instrument::in_current_span(detached(write, slot)));
    }
}

async fn detached<F, E>(write: F, slot: Slot)
where
    F: Future<Output = Result<Option<Bytes>, E>>,
{
    let outcome = match write.await {
        Ok(_) => Write::Done,
        Err(_) => Write::Failed,
    };
    slot.0.write(outcome);
}

/// Configures a [`RemoteCacheLayer`]; finish with [`build`](Self::build).
///
/// Defaults: entries live one hour in the store, at most 64 writes in
/// flight, metrics `remote_cache_requests_total{result}` and
/// `remote_cache_writes_total{result}`.
///
/// # Example
///
/// ```
/// use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
/// use bytes::Bytes;
/// use std::time::Duration;
///
/// let store = tower::service_fn(|_op: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
/// let layer = RemoteCacheLayer::builder(store)
///     .time_to_live(Duration::from_secs(600))
///     .max_writes_in_flight(16)
///     .build(
///         |req: &String| Some(req.clone()),
///         |res: &String| Some(Bytes::from(res.clone())),
///         |bytes: Bytes| String::from_utf8(bytes.to_vec()).ok(),
///     );
/// # let _ = layer;
/// ```
pub struct RemoteCacheBuilder<R> {
    remote: R,
    ttl: Duration,
    max_writes_in_flight: usize,
    metric_name: MetricName,
    writes_metric_name: MetricName,
    keep_handles: bool,
}

impl<R> RemoteCacheBuilder<R> {
    fn new(remote: R) -> Self {
        Self {
            remote,
            ttl: Duration::from_secs(3600),
            max_writes_in_flight: 64,
            #[cfg(feature = "metrics")]
            metric_name: ::metrics::SharedString::const_str("remote_cache_requests_total"),
            #[cfg(not(feature = "metrics"))]
            metric_name: (),
            #[cfg(feature = "metrics")]
            writes_metric_name: ::metrics::SharedString::const_str("remote_cache_writes_total"),
            #[cfg(not(feature = "metrics"))]
            writes_metric_name: (),
            keep_handles: false,
        }
    }

    /// How long the store keeps an entry (the `ttl` of every
    /// [`RemoteOp::Set`]; default one hour).
    ///
    /// # Example
    ///
    /// ```
    /// # let store = tower::service_fn(|_: abacus_layers::remote_cache::RemoteOp| async { Ok::<Option<bytes::Bytes>, std::io::Error>(None) });
    /// let b = abacus_layers::remote_cache::RemoteCacheLayer::builder(store)
    ///     .time_to_live(std::time::Duration::from_secs(60));
    /// # let _ = b;
    /// ```
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// At most this many detached writes at once (default 64); a response
    /// computed while they are all in flight is not written.
    ///
    /// # Example
    ///
    /// ```
    /// # let store = tower::service_fn(|_: abacus_layers::remote_cache::RemoteOp| async { Ok::<Option<bytes::Bytes>, std::io::Error>(None) });
    /// let b = abacus_layers::remote_cache::RemoteCacheLayer::builder(store).max_writes_in_flight(8);
    /// # let _ = b;
    /// ```
    pub fn max_writes_in_flight(mut self, max: usize) -> Self {
        self.max_writes_in_flight = max;
        self
    }

    /// The lookup counter's name (default `remote_cache_requests_total`;
    /// `result` is `hit`, `miss` or `error`).
    ///
    /// # Example
    ///
    /// ```
    /// # let store = tower::service_fn(|_: abacus_layers::remote_cache::RemoteOp| async { Ok::<Option<bytes::Bytes>, std::io::Error>(None) });
    /// let b = abacus_layers::remote_cache::RemoteCacheLayer::builder(store)
    ///     .metric_name("a2a_cache_l2_requests_total");
    /// # let _ = b;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metric_name(mut self, name: impl Into<::metrics::SharedString>) -> Self {
        self.metric_name = name.into();
        self
    }

    /// The write counter's name (default `remote_cache_writes_total`;
    /// `result` is `done`, `error` or `dropped`).
    ///
    /// # Example
    ///
    /// ```
    /// # let store = tower::service_fn(|_: abacus_layers::remote_cache::RemoteOp| async { Ok::<Option<bytes::Bytes>, std::io::Error>(None) });
    /// let b = abacus_layers::remote_cache::RemoteCacheLayer::builder(store)
    ///     .writes_metric_name("a2a_cache_l2_writes_total");
    /// # let _ = b;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn writes_metric_name(mut self, name: impl Into<::metrics::SharedString>) -> Self {
        self.writes_metric_name = name.into();
        self
    }

    /// Register the counters once and keep their handles (see
    /// [`CacheBuilder::keep_handles`](crate::cache::CacheBuilder::keep_handles)
    /// for when that is right).
    ///
    /// # Example
    ///
    /// ```
    /// # let store = tower::service_fn(|_: abacus_layers::remote_cache::RemoteOp| async { Ok::<Option<bytes::Bytes>, std::io::Error>(None) });
    /// let b = abacus_layers::remote_cache::RemoteCacheLayer::builder(store).keep_handles(true);
    /// # let _ = b;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn keep_handles(mut self, keep: bool) -> Self {
        self.keep_handles = keep;
        self
    }

    /// The layer: `key` names a request in the store (`None`: not
    /// cacheable, the request goes straight to the inner service), `encode`
    /// turns a response into the stored value (`None`: it may not be
    /// stored), `decode` turns a stored value back into a response (`None`:
    /// not a value it understands, a miss).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
    /// use bytes::Bytes;
    ///
    /// # let store = tower::service_fn(|_: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
    /// let layer = RemoteCacheLayer::builder(store).build(
    ///     |n: &u64| Some(format!("square:{n}")),
    ///     |sq: &u64| Some(Bytes::from(sq.to_string())),
    ///     |b: Bytes| std::str::from_utf8(&b).ok()?.parse::<u64>().ok(),
    /// );
    /// # let _ = layer;
    /// ```
    pub fn build<Req, Res, KF, EF, DF>(
        self,
        key: KF,
        encode: EF,
        decode: DF,
    ) -> RemoteCacheLayer<R, KF, EF, DF>
    where
        KF: Fn(&Req) -> Option<String>,
        EF: Fn(&Res) -> Option<Bytes>,
        DF: Fn(Bytes) -> Option<Res>,
    {
        let stats = Stats::new(
            &self.metric_name,
            &self.writes_metric_name,
            self.keep_handles,
            self.max_writes_in_flight,
        );
        RemoteCacheLayer {
            shared: Arc::new(Shared {
                remote: self.remote,
                key_fn: key,
                encode,
                decode,
                ttl: self.ttl,
                stats: Arc::new(stats),
            }),
        }
    }
}

/// Applies [`RemoteCache`] to services; all of them share one store client
/// and one set of counters. Build one with [`RemoteCacheLayer::builder`].
///
/// # Example
///
/// ```
/// use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
/// use bytes::Bytes;
/// use tower::{Layer, service_fn};
///
/// let store = service_fn(|_op: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
/// let layer = RemoteCacheLayer::builder(store).build(
///     |req: &String| Some(req.clone()),
///     |res: &String| Some(Bytes::from(res.clone())),
///     |b: Bytes| String::from_utf8(b.to_vec()).ok(),
/// );
/// let svc = layer.layer(service_fn(|req: String| async move { Ok::<_, std::io::Error>(req) }));
/// # let _ = svc;
/// ```
pub struct RemoteCacheLayer<R, KF, EF, DF> {
    shared: Arc<Shared<R, KF, EF, DF>>,
}

impl RemoteCacheLayer<(), (), (), ()> {
    /// Configure a layer whose store is the service `remote`.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
    /// let store = tower::service_fn(|_: RemoteOp| async { Ok::<Option<bytes::Bytes>, std::io::Error>(None) });
    /// let builder = RemoteCacheLayer::builder(store);
    /// # let _ = builder;
    /// ```
    pub fn builder<R>(remote: R) -> RemoteCacheBuilder<R> {
        RemoteCacheBuilder::new(remote)
    }
}

impl<R, KF, EF, DF> RemoteCacheLayer<R, KF, EF, DF> {
    /// A handle with the layer's counters.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
    /// use bytes::Bytes;
    /// # let store = tower::service_fn(|_: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
    /// let layer = RemoteCacheLayer::builder(store)
    ///     .build(|n: &u8| Some(n.to_string()), |_: &u8| None, |_: Bytes| None::<u8>);
    /// assert_eq!(layer.handle().hits(), 0);
    /// ```
    pub fn handle(&self) -> RemoteCacheHandle {
        RemoteCacheHandle {
            stats: self.shared.stats.clone(),
        }
    }
}

impl<R, KF, EF, DF> Clone for RemoteCacheLayer<R, KF, EF, DF> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<R, KF, EF, DF> fmt::Debug for RemoteCacheLayer<R, KF, EF, DF> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteCacheLayer")
            .field("ttl", &self.shared.ttl)
            .finish_non_exhaustive()
    }
}

impl<S, R, KF, EF, DF> Layer<S> for RemoteCacheLayer<R, KF, EF, DF> {
    type Service = RemoteCache<S, R, KF, EF, DF>;

    fn layer(&self, inner: S) -> Self::Service {
        RemoteCache {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Reads a remote cache's counters; cheap to clone.
///
/// Lookups: [`hits`](Self::hits) + [`misses`](Self::misses) +
/// [`errors`](Self::errors) is the number of cacheable requests. Detached
/// writes: [`writes`](Self::writes) (stored), [`write_errors`](Self::write_errors)
/// (the store failed), [`writes_dropped`](Self::writes_dropped) (every slot
/// was taken) and [`writes_in_flight`](Self::writes_in_flight).
///
/// # Example
///
/// ```
/// use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
/// use bytes::Bytes;
/// # let store = tower::service_fn(|_: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
/// let layer = RemoteCacheLayer::builder(store)
///     .build(|n: &u8| Some(n.to_string()), |_: &u8| None, |_: Bytes| None::<u8>);
/// let h = layer.handle();
/// assert_eq!((h.hits(), h.misses(), h.errors(), h.writes_in_flight()), (0, 0, 0, 0));
/// ```
#[derive(Clone)]
pub struct RemoteCacheHandle {
    stats: Arc<Stats>,
}

impl RemoteCacheHandle {
    fn lookups(&self, found: Lookup) -> u64 {
        self.stats.lookups[found as usize].load(Ordering::Relaxed)
    }

    fn writes_of(&self, outcome: Write) -> u64 {
        self.stats.writes[outcome as usize].load(Ordering::Relaxed)
    }

    /// Requests answered from the store (the inner service not called).
    ///
    /// # Example
    ///
    /// ```
    /// # use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
    /// # use bytes::Bytes;
    /// # let store = tower::service_fn(|_: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
    /// # let layer = RemoteCacheLayer::builder(store).build(|n: &u8| Some(n.to_string()), |_: &u8| None, |_: Bytes| None::<u8>);
    /// assert_eq!(layer.handle().hits(), 0);
    /// ```
    pub fn hits(&self) -> u64 {
        self.lookups(Lookup::Hit)
    }

    /// Cacheable requests the store had no value for (or one that did not
    /// decode).
    ///
    /// # Example
    ///
    /// ```
    /// # use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
    /// # use bytes::Bytes;
    /// # let store = tower::service_fn(|_: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
    /// # let layer = RemoteCacheLayer::builder(store).build(|n: &u8| Some(n.to_string()), |_: &u8| None, |_: Bytes| None::<u8>);
    /// assert_eq!(layer.handle().misses(), 0);
    /// ```
    pub fn misses(&self) -> u64 {
        self.lookups(Lookup::Miss)
    }

    /// Cacheable requests whose lookup failed (the store's error, a timeout,
    /// an open breaker): answered by the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// # use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
    /// # use bytes::Bytes;
    /// # let store = tower::service_fn(|_: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
    /// # let layer = RemoteCacheLayer::builder(store).build(|n: &u8| Some(n.to_string()), |_: &u8| None, |_: Bytes| None::<u8>);
    /// assert_eq!(layer.handle().errors(), 0);
    /// ```
    pub fn errors(&self) -> u64 {
        self.lookups(Lookup::Error)
    }

    /// Detached writes the store acknowledged.
    ///
    /// # Example
    ///
    /// ```
    /// # use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
    /// # use bytes::Bytes;
    /// # let store = tower::service_fn(|_: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
    /// # let layer = RemoteCacheLayer::builder(store).build(|n: &u8| Some(n.to_string()), |_: &u8| None, |_: Bytes| None::<u8>);
    /// assert_eq!(layer.handle().writes(), 0);
    /// ```
    pub fn writes(&self) -> u64 {
        self.writes_of(Write::Done)
    }

    /// Detached writes that failed.
    ///
    /// # Example
    ///
    /// ```
    /// # use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
    /// # use bytes::Bytes;
    /// # let store = tower::service_fn(|_: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
    /// # let layer = RemoteCacheLayer::builder(store).build(|n: &u8| Some(n.to_string()), |_: &u8| None, |_: Bytes| None::<u8>);
    /// assert_eq!(layer.handle().write_errors(), 0);
    /// ```
    pub fn write_errors(&self) -> u64 {
        self.writes_of(Write::Failed)
    }

    /// Writes not sent: every slot was taken (or no Tokio runtime ran).
    ///
    /// # Example
    ///
    /// ```
    /// # use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
    /// # use bytes::Bytes;
    /// # let store = tower::service_fn(|_: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
    /// # let layer = RemoteCacheLayer::builder(store).build(|n: &u8| Some(n.to_string()), |_: &u8| None, |_: Bytes| None::<u8>);
    /// assert_eq!(layer.handle().writes_dropped(), 0);
    /// ```
    pub fn writes_dropped(&self) -> u64 {
        self.writes_of(Write::Dropped)
    }

    /// Detached writes not finished yet.
    ///
    /// # Example
    ///
    /// ```
    /// # use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
    /// # use bytes::Bytes;
    /// # let store = tower::service_fn(|_: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
    /// # let layer = RemoteCacheLayer::builder(store).build(|n: &u8| Some(n.to_string()), |_: &u8| None, |_: Bytes| None::<u8>);
    /// assert_eq!(layer.handle().writes_in_flight(), 0);
    /// ```
    pub fn writes_in_flight(&self) -> usize {
        self.stats.in_flight.load(Ordering::Acquire)
    }
}

impl fmt::Debug for RemoteCacheHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteCacheHandle")
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .field("errors", &self.errors())
            .field("writes", &self.writes())
            .field("write_errors", &self.write_errors())
            .field("writes_dropped", &self.writes_dropped())
            .finish()
    }
}

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tower_layer::Layer;

use super::Cache;
use super::policy::{CloneIf, MapCached, OnePerEntry, Weigh};

/// Hit and miss counters (and their metrics).
pub(super) struct Stats {
    hits: AtomicU64,
    misses: AtomicU64,
    #[cfg(feature = "metrics")]
    metrics: [crate::util::kept::KeptCounter; 2],
    #[cfg(feature = "metrics")]
    keep_handles: bool,
}

impl Stats {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn new(metric_name: &MetricName, keep_handles: bool) -> Self {
        Self {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            metrics: ["hit", "miss"].map(|result| {
                crate::util::kept::KeptCounter::new(::metrics::Key::from_parts(
                    metric_name.clone(),
                    vec![::metrics::Label::from_static_parts("result", result)],
                ))
            }),
            #[cfg(feature = "metrics")]
            keep_handles,
        }
    }

    #[inline]
    pub(super) fn record(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics[usize::from(!hit)].increment(self.keep_handles, 1);
    }
}

#[cfg(feature = "metrics")]
type MetricName = ::metrics::SharedString;
#[cfg(not(feature = "metrics"))]
type MetricName = ();

/// Most keys remembered as refused by the policy.
const MAX_REFUSED: u64 = 100_000;

/// State shared by a cache layer, its services and handles.
pub(super) struct Shared<K, V, KF, P> {
    pub(super) cache: moka::future::Cache<K, V>,
    /// Hashes of keys whose last response the policy refused: their
    /// requests do not wait in the single flight.
    pub(super) refused: moka::future::Cache<u64, ()>,
    pub(super) hasher: std::collections::hash_map::RandomState,
    pub(super) key_fn: KF,
    pub(super) policy: P,
    pub(super) stats: Stats,
}

/// Configures a [`CacheLayer`]; finish with one of the `build*` methods.
///
/// Defaults: 10 000 entries, time to live one hour, no time to idle.
///
/// # Example
///
/// ```
/// use abacus_layers::cache::CacheLayer;
/// use std::time::Duration;
///
/// let layer = CacheLayer::builder()
///     .max_capacity(64 * 1024 * 1024)
///     .weigher(|_key: &String, body: &Vec<u8>| body.len() as u32)
///     .time_to_live(Duration::from_secs(600))
///     .build(|req: &String| Some(req.clone()), |_res: &Vec<u8>| true);
/// # let _ = layer;
/// ```
pub struct CacheBuilder<W = OnePerEntry> {
    max_capacity: u64,
    weigher: W,
    ttl: Option<Duration>,
    tti: Option<Duration>,
    metric_name: MetricName,
    keep_handles: bool,
}

impl CacheBuilder {
    fn new() -> Self {
        Self {
            max_capacity: 10_000,
            weigher: OnePerEntry,
            ttl: Some(Duration::from_secs(3600)),
            tti: None,
            #[cfg(feature = "metrics")]
            metric_name: ::metrics::SharedString::const_str("cache_requests_total"),
            #[cfg(not(feature = "metrics"))]
            metric_name: (),
            keep_handles: false,
        }
    }
}

impl<W> CacheBuilder<W> {
    /// The maximum number of entries, or the maximum total weight when a
    /// [`weigher`](Self::weigher) is set.
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::cache::CacheLayer::builder().max_capacity(1_000);
    /// # let _ = b;
    /// ```
    pub fn max_capacity(mut self, capacity: u64) -> Self {
        self.max_capacity = capacity;
        self
    }

    /// Weigh entries (say by body size) instead of counting them.
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::cache::CacheLayer::builder()
    ///     .weigher(|_k: &u64, v: &String| v.len() as u32);
    /// # let _ = b;
    /// ```
    pub fn weigher<X>(self, weigher: X) -> CacheBuilder<X> {
        CacheBuilder {
            max_capacity: self.max_capacity,
            weigher,
            ttl: self.ttl,
            tti: self.tti,
            metric_name: self.metric_name,
            keep_handles: self.keep_handles,
        }
    }

    /// Entries expire this long after they were inserted (default one hour).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = abacus_layers::cache::CacheLayer::builder().time_to_live(Duration::from_secs(60));
    /// # let _ = b;
    /// ```
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Entries also expire after this long without a hit.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = abacus_layers::cache::CacheLayer::builder().time_to_idle(Duration::from_secs(60));
    /// # let _ = b;
    /// ```
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.tti = Some(tti);
        self
    }

    /// The hit/miss counter's name (default `cache_requests_total`).
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::cache::CacheLayer::builder().metric_name("a2a_cache_requests_total");
    /// # let _ = b;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metric_name(mut self, name: impl Into<::metrics::SharedString>) -> Self {
        self.metric_name = name.into();
        self
    }

    /// Register the hit and miss counters once and keep their handles,
    /// instead of a registry lookup per request: right for a server with
    /// one global recorder; leave it off where a test swaps thread-local
    /// recorders under the same layer (the first would keep the counts).
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::cache::CacheLayer::builder().keep_handles(true);
    /// # let _ = b;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn keep_handles(mut self, keep: bool) -> Self {
        self.keep_handles = keep;
        self
    }

    /// Cache responses as they are (`Res: Clone`) when `cacheable` allows.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::cache::CacheLayer;
    /// let layer = CacheLayer::builder().build(
    ///     |req: &(String, u32)| Some(req.clone()),
    ///     |res: &String| res.len() < 4096,
    /// );
    /// # let _ = layer;
    /// ```
    pub fn build<Req, Res, K, KF, CF>(
        self,
        key: KF,
        cacheable: CF,
    ) -> CacheLayer<K, Res, KF, CloneIf<CF>>
    where
        K: Hash + Eq + Send + Sync + 'static,
        Res: Clone + Send + Sync + 'static,
        KF: Fn(&Req) -> Option<K>,
        CF: Fn(&Res) -> bool,
        W: Weigh<K, Res>,
    {
        self.build_with_policy(key, CloneIf(cacheable))
    }

    /// Cache a value derived from the response (e.g. the serialized body of
    /// a unary response): `to_cached` returns `None` for responses that may
    /// not be cached (streams), `to_response` rebuilds a response on a hit.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::cache::CacheLayer;
    /// use std::sync::Arc;
    ///
    /// enum Response { Unary(Arc<[u8]>), Streamed }
    /// let layer = CacheLayer::builder().build_mapped(
    ///     |req: &String| Some(req.clone()),
    ///     |res: &Response| match res { Response::Unary(b) => Some(b.clone()), Response::Streamed => None },
    ///     Response::Unary,
    /// );
    /// # let _ = layer;
    /// ```
    pub fn build_mapped<Req, Res, K, V, KF, TF, FF>(
        self,
        key: KF,
        to_cached: TF,
        to_response: FF,
    ) -> CacheLayer<K, V, KF, MapCached<TF, FF>>
    where
        K: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        KF: Fn(&Req) -> Option<K>,
        TF: Fn(&Res) -> Option<V>,
        FF: Fn(V) -> Res,
        W: Weigh<K, V>,
    {
        self.build_with_policy(
            key,
            MapCached {
                to_cached,
                to_response,
            },
        )
    }

    /// Build with any [`CachePolicy`](super::CachePolicy).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::cache::{CacheLayer, CloneIf};
    /// let layer = CacheLayer::builder()
    ///     .build_with_policy::<String, u64, _, _>(|req: &String| Some(req.clone()), CloneIf(|_: &u64| true));
    /// # let _ = layer;
    /// ```
    pub fn build_with_policy<K, V, KF, P>(self, key: KF, policy: P) -> CacheLayer<K, V, KF, P>
    where
        K: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        W: Weigh<K, V>,
    {
        let weigher = self.weigher;
        let mut builder = moka::future::Cache::builder()
            .max_capacity(self.max_capacity)
            .weigher(move |k: &K, v: &V| weigher.weigh(k, v));
        if let Some(ttl) = self.ttl {
            builder = builder.time_to_live(ttl);
        }
        if let Some(tti) = self.tti {
            builder = builder.time_to_idle(tti);
        }
        // A hash per key: bounded like the cache, forgotten like its entries.
        let mut refused =
            moka::future::Cache::builder().max_capacity(self.max_capacity.min(MAX_REFUSED));
        if let Some(ttl) = self.ttl {
            refused = refused.time_to_live(ttl);
        }
        CacheLayer {
            shared: Arc::new(Shared {
                cache: builder.build(),
                refused: refused.build(),
                hasher: std::collections::hash_map::RandomState::new(),
                key_fn: key,
                policy,
                stats: Stats::new(&self.metric_name, self.keep_handles),
            }),
        }
    }
}

impl<W> fmt::Debug for CacheBuilder<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("max_capacity", &self.max_capacity)
            .field("time_to_live", &self.ttl)
            .field("time_to_idle", &self.tti)
            .finish_non_exhaustive()
    }
}

/// Applies [`Cache`] to services; all of them share one moka cache.
///
/// `K` is the key, `V` the cached value, `KF` the key extractor and `P` the
/// [`CachePolicy`](super::CachePolicy). Build one with [`CacheLayer::builder`].
///
/// # Example
///
/// ```
/// use abacus_layers::cache::CacheLayer;
/// use tower::{Layer, service_fn};
///
/// let layer = CacheLayer::builder().build(|n: &u64| Some(*n), |_res: &u64| true);
/// let svc = layer.layer(service_fn(|n: u64| async move { Ok::<_, std::io::Error>(n * n) }));
/// # let _ = svc;
/// ```
pub struct CacheLayer<K, V, KF, P> {
    pub(super) shared: Arc<Shared<K, V, KF, P>>,
}

impl CacheLayer<(), (), (), ()> {
    /// Configure a cache layer.
    ///
    /// # Example
    ///
    /// ```
    /// let builder = abacus_layers::cache::CacheLayer::builder();
    /// # let _ = builder;
    /// ```
    pub fn builder() -> CacheBuilder {
        CacheBuilder::new()
    }
}

impl<K, V, KF, P> CacheLayer<K, V, KF, P> {
    /// A handle with the hit/miss counters and the moka cache.
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::cache::CacheLayer::builder().build(|n: &u8| Some(*n), |_: &u8| true);
    /// assert_eq!(layer.handle().hits(), 0);
    /// ```
    pub fn handle(&self) -> CacheHandle<K, V, KF, P> {
        CacheHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<K, V, KF, P> Clone for CacheLayer<K, V, KF, P> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K, V, KF, P> fmt::Debug for CacheLayer<K, V, KF, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheLayer").finish_non_exhaustive()
    }
}

impl<S, K, V, KF, P> Layer<S> for CacheLayer<K, V, KF, P> {
    type Service = Cache<S, K, V, KF, P>;

    fn layer(&self, inner: S) -> Self::Service {
        Cache {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// Reads a cache's statistics; cheap to clone.
///
/// # Example
///
/// ```
/// let layer = abacus_layers::cache::CacheLayer::builder().build(|n: &u8| Some(*n), |_: &u8| true);
/// let handle = layer.handle();
/// assert_eq!((handle.hits(), handle.misses(), handle.entry_count()), (0, 0, 0));
/// ```
pub struct CacheHandle<K, V, KF, P> {
    shared: Arc<Shared<K, V, KF, P>>,
}

impl<K, V, KF, P> CacheHandle<K, V, KF, P> {
    /// Requests answered from the cache.
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::cache::CacheLayer::builder().build(|n: &u8| Some(*n), |_: &u8| true);
    /// assert_eq!(layer.handle().hits(), 0);
    /// ```
    pub fn hits(&self) -> u64 {
        self.shared.stats.hits.load(Ordering::Relaxed)
    }

    /// Cacheable requests that called the inner service (or shared the error
    /// of a concurrent call).
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::cache::CacheLayer::builder().build(|n: &u8| Some(*n), |_: &u8| true);
    /// assert_eq!(layer.handle().misses(), 0);
    /// ```
    pub fn misses(&self) -> u64 {
        self.shared.stats.misses.load(Ordering::Relaxed)
    }
}

impl<K, V, KF, P> CacheHandle<K, V, KF, P>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Entries in the cache (approximate: moka applies writes lazily).
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::cache::CacheLayer::builder().build(|n: &u8| Some(*n), |_: &u8| true);
    /// assert_eq!(layer.handle().entry_count(), 0);
    /// ```
    pub fn entry_count(&self) -> u64 {
        self.shared.cache.entry_count()
    }

    /// Drop every entry.
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::cache::CacheLayer::builder().build(|n: &u8| Some(*n), |_: &u8| true);
    /// layer.handle().invalidate_all();
    /// ```
    pub fn invalidate_all(&self) {
        self.shared.cache.invalidate_all();
    }

    /// The moka cache itself (to invalidate one key, iterate, ...).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = abacus_layers::cache::CacheLayer::builder().build(|n: &u8| Some(*n), |_: &u8| true);
    /// layer.handle().cache().invalidate(&1).await;
    /// # }
    /// ```
    pub fn cache(&self) -> &moka::future::Cache<K, V> {
        &self.shared.cache
    }
}

impl<K, V, KF, P> Clone for CacheHandle<K, V, KF, P> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K, V, KF, P> fmt::Debug for CacheHandle<K, V, KF, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheHandle")
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish_non_exhaustive()
    }
}

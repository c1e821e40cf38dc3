use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::RateLimit;
use super::state::{Limiter, Quota, QuotaLookup, Settings};

/// What a request is limited by: its key (a client, a user, an address).
///
/// Implemented for every `Fn(&Req) -> K`, and by [`GlobalKey`] (one key
/// for all requests).
///
/// # Example
///
/// ```
/// use abacus_layers::rate_limit::KeyFn;
///
/// /// Requests keyed by their first byte.
/// struct FirstByte;
/// impl KeyFn<Vec<u8>> for FirstByte {
///     type Key = Option<u8>;
///     fn key(&self, req: &Vec<u8>) -> Option<u8> { req.first().copied() }
/// }
/// assert_eq!(FirstByte.key(&vec![7, 1]), Some(7));
/// let by_len = |req: &String| req.len();
/// assert_eq!(KeyFn::key(&by_len, &"abc".to_string()), 3);
/// ```
pub trait KeyFn<Req> {
    /// The key type: hashed, compared and kept while the key is active.
    type Key;

    /// The key of `req`.
    fn key(&self, req: &Req) -> Self::Key;
}

impl<Req, K, F> KeyFn<Req> for F
where
    F: Fn(&Req) -> K,
{
    type Key = K;

    #[inline]
    fn key(&self, req: &Req) -> K {
        self(req)
    }
}

/// One key for every request: the layer limits the service as a whole.
///
/// # Example
///
/// ```
/// use abacus_layers::rate_limit::{GlobalKey, KeyFn};
/// assert_eq!(GlobalKey.key(&"any request"), ());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalKey;

impl<Req> KeyFn<Req> for GlobalKey {
    type Key = ();

    #[inline]
    fn key(&self, _req: &Req) {}
}

/// The counters of allowed and limited requests.
#[cfg(feature = "metrics")]
pub(super) struct Counters {
    /// `[allowed, limited]`.
    counters: [crate::util::kept::KeptCounter; 2],
    keep_handles: bool,
}

#[cfg(feature = "metrics")]
impl Counters {
    #[inline]
    pub(super) fn record(&self, allowed: bool) {
        self.counters[usize::from(!allowed)].increment(self.keep_handles, 1);
    }

    /// Register both series at zero, so rates and alerts work before the
    /// first request.
    fn register(&self) {
        for c in &self.counters {
            c.increment(self.keep_handles, 0);
        }
    }
}

/// State shared by a layer, its services and its handle.
pub(super) struct Shared<K, F> {
    pub(super) limiter: Arc<Limiter<K>>,
    pub(super) key_fn: F,
    #[cfg(feature = "metrics")]
    pub(super) counters: Counters,
}

/// Configures a [`RateLimitLayer`]; finish with [`build`](Self::build).
///
/// Defaults: every request under one key ([`GlobalKey`]; set yours with
/// [`key`](Self::key)), at most 100 000 tracked keys, idle keys swept every
/// 10 s.
///
/// # Example
///
/// ```
/// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
/// use std::time::Duration;
///
/// let layer = RateLimitLayer::builder(Quota::per_second(100))
///     .key(|user: &String| user.clone())
///     .quota_for("batch-job".to_string(), Quota::per_second(1000))
///     .max_keys(50_000)
///     .sweep_every(Duration::from_secs(30))
///     .build();
/// # let _ = layer;
/// ```
pub struct RateLimitBuilder<K, F> {
    key_fn: F,
    default: Quota,
    overrides: HashMap<K, Quota>,
    lookup: Option<QuotaLookup<K>>,
    max_keys: usize,
    sweep_every: Duration,
    #[cfg(feature = "metrics")]
    metric_name: ::metrics::SharedString,
    #[cfg(feature = "metrics")]
    labels: Vec<::metrics::Label>,
    #[cfg(feature = "metrics")]
    keep_handles: bool,
}

impl RateLimitBuilder<(), GlobalKey> {
    fn new(quota: Quota) -> Self {
        Self {
            key_fn: GlobalKey,
            default: quota,
            overrides: HashMap::new(),
            lookup: None,
            max_keys: 100_000,
            sweep_every: Duration::from_secs(10),
            #[cfg(feature = "metrics")]
            metric_name: ::metrics::SharedString::const_str("rate_limit_total"),
            #[cfg(feature = "metrics")]
            labels: Vec::new(),
            #[cfg(feature = "metrics")]
            keep_handles: false,
        }
    }

    /// Limit each key on its own: `key` names the key of a request (a
    /// closure `Fn(&Req) -> K`, or any [`KeyFn`]). Call it first: the
    /// per-key quotas are set in terms of the key.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// use std::net::{IpAddr, SocketAddr};
    ///
    /// // By client address, port left out.
    /// let layer = RateLimitLayer::builder(Quota::per_second(10))
    ///     .key(|peer: &SocketAddr| -> IpAddr { peer.ip() })
    ///     .build();
    /// # let _ = layer;
    /// ```
    pub fn key<Req, K, F>(self, key: F) -> RateLimitBuilder<K, F>
    where
        F: KeyFn<Req, Key = K>,
    {
        RateLimitBuilder {
            key_fn: key,
            default: self.default,
            overrides: HashMap::new(),
            lookup: None,
            max_keys: self.max_keys,
            sweep_every: self.sweep_every,
            #[cfg(feature = "metrics")]
            metric_name: self.metric_name,
            #[cfg(feature = "metrics")]
            labels: self.labels,
            #[cfg(feature = "metrics")]
            keep_handles: self.keep_handles,
        }
    }
}

impl<K, F> RateLimitBuilder<K, F> {
    /// A quota of its own for `key` (instead of the default).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// let layer = RateLimitLayer::builder(Quota::per_second(10))
    ///     .key(|user: &&'static str| *user)
    ///     .quota_for("alice", Quota::per_second(100))
    ///     .quota_for("guest", Quota::per_minute(10))
    ///     .build();
    /// # let _ = layer;
    /// ```
    pub fn quota_for(mut self, key: K, quota: Quota) -> Self
    where
        K: Hash + Eq,
    {
        self.overrides.insert(key, quota);
        self
    }

    /// Ask `lookup` for the quota of keys without one of
    /// [`quota_for`](Self::quota_for); `None` is the default quota. It is
    /// called on every request (keep it cheap), so a key's quota may
    /// change while it is tracked: its next request is judged by the new one.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// let layer = RateLimitLayer::builder(Quota::per_second(10))
    ///     .key(|user: &String| user.clone())
    ///     .quota_lookup(|user: &String| user.starts_with("svc-").then(|| Quota::per_second(500)))
    ///     .build();
    /// # let _ = layer;
    /// ```
    pub fn quota_lookup<L>(mut self, lookup: L) -> Self
    where
        L: Fn(&K) -> Option<Quota> + Send + Sync + 'static,
    {
        self.lookup = Some(Box::new(lookup));
        self
    }

    /// Track at most `n` keys (at least 1). When the map is full, idle keys
    /// are forgotten first (forgetting them changes nothing: they have
    /// their whole burst again); if none is idle, the keys closest to idle
    /// are evicted down to 7/8 of `n` and start afresh. No request is ever
    /// refused because the map is full.
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::rate_limit::RateLimitLayer::builder(
    ///     abacus_layers::rate_limit::Quota::per_second(10),
    /// )
    /// .max_keys(10_000)
    /// .build();
    /// assert_eq!(layer.handle().max_keys(), 10_000);
    /// ```
    pub fn max_keys(mut self, n: usize) -> Self {
        self.max_keys = n.max(1);
        self
    }

    /// Forget idle keys at most this often (checked on requests; there is
    /// no timer task).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = abacus_layers::rate_limit::RateLimitLayer::builder(
    ///     abacus_layers::rate_limit::Quota::per_second(10),
    /// )
    /// .sweep_every(Duration::from_secs(60));
    /// # let _ = b;
    /// ```
    pub fn sweep_every(mut self, every: Duration) -> Self {
        self.sweep_every = every;
        self
    }

    /// The name of the counter of requests by outcome (default
    /// `rate_limit_total`, labelled `outcome="allowed"|"limited"`).
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::rate_limit::RateLimitLayer::builder(
    ///     abacus_layers::rate_limit::Quota::per_second(10),
    /// )
    /// .metric_name("a2a_rate_limit_total");
    /// # let _ = b;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metric_name(mut self, name: impl Into<::metrics::SharedString>) -> Self {
        self.metric_name = name.into();
        self
    }

    /// A constant label on the counter (besides `outcome`).
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::rate_limit::RateLimitLayer::builder(
    ///     abacus_layers::rate_limit::Quota::per_second(10),
    /// )
    /// .label("listener", "public");
    /// # let _ = b;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn label(
        mut self,
        key: impl Into<::metrics::SharedString>,
        value: impl Into<::metrics::SharedString>,
    ) -> Self {
        self.labels.push(::metrics::Label::new(key, value));
        self
    }

    /// Register both counters once (at zero, when the layer is built) and
    /// keep their handles, instead of a registry lookup per request: right
    /// for a server with one global recorder; leave it off where a test
    /// swaps thread-local recorders under the same layer.
    ///
    /// # Example
    ///
    /// ```
    /// let b = abacus_layers::rate_limit::RateLimitLayer::builder(
    ///     abacus_layers::rate_limit::Quota::per_second(10),
    /// )
    /// .keep_handles(true);
    /// # let _ = b;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn keep_handles(mut self, keep: bool) -> Self {
        self.keep_handles = keep;
        self
    }

    /// Build the layer and its shared state.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// let layer = RateLimitLayer::builder(Quota::per_second(10)).build();
    /// assert_eq!(layer.handle().tracked_keys(), 0);
    /// ```
    pub fn build(self) -> RateLimitLayer<K, F>
    where
        K: Hash + Eq + Send + Sync + 'static,
    {
        let limiter = Arc::new(Limiter::new(Settings {
            default: self.default,
            overrides: self.overrides,
            lookup: self.lookup,
            max_keys: self.max_keys,
            sweep_every: self.sweep_every,
        }));
        #[cfg(feature = "metrics")]
        let counters = {
            let counters = Counters {
                counters: ["allowed", "limited"].map(|outcome| {
                    let mut labels = vec![::metrics::Label::from_static_parts("outcome", outcome)];
                    labels.extend(self.labels.iter().cloned());
                    crate::util::kept::KeptCounter::new(::metrics::Key::from_parts(
                        self.metric_name.clone(),
                        labels,
                    ))
                }),
                keep_handles: self.keep_handles,
            };
            if self.keep_handles {
                counters.register();
            }
            counters
        };
        RateLimitLayer {
            shared: Arc::new(Shared {
                limiter,
                key_fn: self.key_fn,
                #[cfg(feature = "metrics")]
                counters,
            }),
        }
    }
}

impl<K, F> fmt::Debug for RateLimitBuilder<K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitBuilder")
            .field("default", &self.default)
            .field("overrides", &self.overrides.len())
            .field("max_keys", &self.max_keys)
            .field("sweep_every", &self.sweep_every)
            .finish_non_exhaustive()
    }
}

/// Applies [`RateLimit`] to services; all of them share one limiter.
///
/// # Example
///
/// ```
/// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
/// use tower::{Layer, service_fn};
///
/// let layer = RateLimitLayer::new(Quota::per_second(50));
/// let svc = layer.layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
/// # let _ = svc;
/// ```
pub struct RateLimitLayer<K, F> {
    pub(super) shared: Arc<Shared<K, F>>,
}

impl RateLimitLayer<(), GlobalKey> {
    /// One limit for the service as a whole (every request under one key).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// let layer = RateLimitLayer::new(Quota::per_second(1000).with_burst(50));
    /// # let _ = layer;
    /// ```
    pub fn new(quota: Quota) -> Self {
        Self::builder(quota).build()
    }

    /// Configure a limiter whose keys get `quota` unless told otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// let layer = RateLimitLayer::builder(Quota::per_minute(600))
    ///     .key(|user: &u64| *user)
    ///     .build();
    /// # let _ = layer;
    /// ```
    pub fn builder(quota: Quota) -> RateLimitBuilder<(), GlobalKey> {
        RateLimitBuilder::new(quota)
    }
}

impl<K, F> RateLimitLayer<K, F>
where
    K: Hash + Eq + Send + Sync + 'static,
{
    /// A handle reading this limiter's counts.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// let handle = RateLimitLayer::new(Quota::per_second(1)).handle();
    /// assert_eq!((handle.allowed(), handle.limited()), (0, 0));
    /// ```
    pub fn handle(&self) -> RateLimitHandle {
        RateLimitHandle {
            limiter: self.shared.limiter.clone(),
        }
    }
}

impl<K, F> Clone for RateLimitLayer<K, F> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K, F> fmt::Debug for RateLimitLayer<K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limiter", &self.shared.limiter)
            .finish_non_exhaustive()
    }
}

impl<S, K, F> Layer<S> for RateLimitLayer<K, F> {
    type Service = RateLimit<S, K, F>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, self.shared.clone())
    }
}

/// What a handle reads, whatever the key type.
trait Stats: Send + Sync {
    fn allowed(&self) -> u64;
    fn limited(&self) -> u64;
    fn evicted(&self) -> u64;
    fn tracked(&self) -> usize;
    fn max_keys(&self) -> usize;
    fn sweep_now(&self) -> usize;
}

impl<K: Hash + Eq + Send + Sync> Stats for Limiter<K> {
    fn allowed(&self) -> u64 {
        Limiter::allowed(self)
    }
    fn limited(&self) -> u64 {
        Limiter::limited(self)
    }
    fn evicted(&self) -> u64 {
        Limiter::evicted(self)
    }
    fn tracked(&self) -> usize {
        Limiter::tracked(self)
    }
    fn max_keys(&self) -> usize {
        Limiter::max_keys(self)
    }
    fn sweep_now(&self) -> usize {
        Limiter::sweep_now(self)
    }
}

/// Reads a rate limiter's counts; cheap to clone.
///
/// # Example
///
/// ```
/// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = RateLimitLayer::new(Quota::per_second(1));
/// let handle = layer.handle();
/// let svc = layer.layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
/// let _ = svc.clone().oneshot(1).await;
/// let _ = svc.oneshot(2).await;
/// assert_eq!((handle.allowed(), handle.limited(), handle.tracked_keys()), (1, 1, 1));
/// # }
/// ```
#[derive(Clone)]
pub struct RateLimitHandle {
    limiter: Arc<dyn Stats>,
}

impl RateLimitHandle {
    /// Requests let through so far.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// assert_eq!(RateLimitLayer::new(Quota::per_second(1)).handle().allowed(), 0);
    /// ```
    pub fn allowed(&self) -> u64 {
        self.limiter.allowed()
    }

    /// Requests refused so far.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// assert_eq!(RateLimitLayer::new(Quota::per_second(1)).handle().limited(), 0);
    /// ```
    pub fn limited(&self) -> u64 {
        self.limiter.limited()
    }

    /// Active keys evicted so far because the map was full (idle keys
    /// forgotten are not counted: forgetting them changes nothing).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// assert_eq!(RateLimitLayer::new(Quota::per_second(1)).handle().evicted(), 0);
    /// ```
    pub fn evicted(&self) -> u64 {
        self.limiter.evicted()
    }

    /// Keys tracked now.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// assert_eq!(RateLimitLayer::new(Quota::per_second(1)).handle().tracked_keys(), 0);
    /// ```
    pub fn tracked_keys(&self) -> usize {
        self.limiter.tracked()
    }

    /// The most keys tracked at once.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// let layer = RateLimitLayer::builder(Quota::per_second(1)).max_keys(5).build();
    /// assert_eq!(layer.handle().max_keys(), 5);
    /// ```
    pub fn max_keys(&self) -> usize {
        self.limiter.max_keys()
    }

    /// Forget the idle keys now (as the periodic sweep does); returns how
    /// many were forgotten (0 if another sweep is running).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// assert_eq!(RateLimitLayer::new(Quota::per_second(1)).handle().sweep(), 0);
    /// ```
    pub fn sweep(&self) -> usize {
        self.limiter.sweep_now()
    }
}

impl fmt::Debug for RateLimitHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitHandle")
            .field("allowed", &self.allowed())
            .field("limited", &self.limited())
            .field("tracked_keys", &self.tracked_keys())
            .field("max_keys", &self.max_keys())
            .finish()
    }
}

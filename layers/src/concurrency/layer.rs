use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tower_layer::Layer;

use super::ConcurrencyLimit;

type WaitHook = Arc<dyn Fn(Duration) + Send + Sync>;

#[derive(Clone)]
pub(super) struct Config {
    pub(super) semaphore: Arc<Semaphore>,
    pub(super) max: usize,
    pub(super) shed: bool,
    pub(super) on_wait: Option<WaitHook>,
    #[cfg(feature = "metrics")]
    pub(super) wait_histogram: Option<crate::util::kept::KeptHistogram>,
    #[cfg(feature = "metrics")]
    pub(super) keep_handles: bool,
}

/// Applies [`ConcurrencyLimit`] to services; all of them share one semaphore.
///
/// # Example
///
/// ```
/// use abacus_layers::concurrency::ConcurrencyLimitLayer;
/// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
///
/// let waited_us = Arc::new(AtomicU64::new(0));
/// let w = waited_us.clone();
/// let layer = ConcurrencyLimitLayer::new(256)
///     .load_shed(true)
///     .on_queue_wait(move |d| { w.fetch_add(d.as_micros() as u64, Ordering::Relaxed); });
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct ConcurrencyLimitLayer {
    pub(super) config: Arc<Config>,
}

impl ConcurrencyLimitLayer {
    /// At most `max` requests in flight; further requests wait for a permit.
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::concurrency::ConcurrencyLimitLayer::new(64);
    /// assert_eq!(layer.handle().max(), 64);
    /// ```
    pub fn new(max: usize) -> Self {
        Self::with_semaphore(Arc::new(Semaphore::new(max)), max)
    }

    /// Use an existing semaphore created with `max` permits (for example one
    /// kept across rebuilds of the service stack).
    ///
    /// If the semaphore is closed, requests fail with
    /// [`Overloaded`](super::ConcurrencyLimitError::Overloaded).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::concurrency::ConcurrencyLimitLayer;
    /// use std::sync::Arc;
    /// use tokio::sync::Semaphore;
    ///
    /// let sem = Arc::new(Semaphore::new(8));
    /// let layer = ConcurrencyLimitLayer::with_semaphore(sem.clone(), 8);
    /// assert_eq!(layer.handle().available_permits(), 8);
    /// ```
    pub fn with_semaphore(semaphore: Arc<Semaphore>, max: usize) -> Self {
        Self {
            config: Arc::new(Config {
                semaphore,
                max,
                shed: false,
                on_wait: None,
                #[cfg(feature = "metrics")]
                wait_histogram: None,
                #[cfg(feature = "metrics")]
                keep_handles: false,
            }),
        }
    }

    /// Shed load: when no permit is free, fail at once with
    /// [`Overloaded`](super::ConcurrencyLimitError::Overloaded) instead of
    /// waiting.
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::concurrency::ConcurrencyLimitLayer::new(64).load_shed(true);
    /// # let _ = layer;
    /// ```
    pub fn load_shed(mut self, shed: bool) -> Self {
        Arc::make_mut(&mut self.config).shed = shed;
        self
    }

    /// Call `f` with the time each request waited for its permit
    /// ([`Duration::ZERO`] when one was free at once). Shed requests are not
    /// reported.
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::concurrency::ConcurrencyLimitLayer::new(64)
    ///     .on_queue_wait(|waited| println!("waited {waited:?}"));
    /// # let _ = layer;
    /// ```
    pub fn on_queue_wait<F>(mut self, f: F) -> Self
    where
        F: Fn(Duration) + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.config).on_wait = Some(Arc::new(f));
        self
    }

    /// Record each request's wait for a permit (in seconds, zero when one was
    /// free) in a histogram with this name, through the `metrics` facade.
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::concurrency::ConcurrencyLimitLayer::new(64)
    ///     .queue_wait_histogram("a2a_queue_wait_seconds");
    /// # let _ = layer;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn queue_wait_histogram(mut self, name: impl Into<::metrics::SharedString>) -> Self {
        let key = ::metrics::Key::from_name(name);
        Arc::make_mut(&mut self.config).wait_histogram =
            Some(crate::util::kept::KeptHistogram::new(key));
        self
    }

    /// Register the wait histogram once and keep its handle, instead of a
    /// registry lookup per request: right for a server with one global
    /// recorder; leave it off where a test swaps thread-local recorders
    /// under the same layer (the first would keep the samples).
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::concurrency::ConcurrencyLimitLayer::new(64)
    ///     .queue_wait_histogram("a2a_queue_wait_seconds")
    ///     .keep_handles(true);
    /// # let _ = layer;
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn keep_handles(mut self, keep: bool) -> Self {
        Arc::make_mut(&mut self.config).keep_handles = keep;
        self
    }

    /// A handle reading the limiter's state.
    ///
    /// # Example
    ///
    /// ```
    /// let handle = abacus_layers::concurrency::ConcurrencyLimitLayer::new(4).handle();
    /// assert_eq!(handle.in_flight(), 0);
    /// ```
    pub fn handle(&self) -> ConcurrencyHandle {
        ConcurrencyHandle {
            semaphore: self.config.semaphore.clone(),
            max: self.config.max,
        }
    }

    /// A layer and its handle.
    ///
    /// # Example
    ///
    /// ```
    /// let (layer, handle) = abacus_layers::concurrency::ConcurrencyLimitLayer::pair(4);
    /// assert_eq!(handle.available_permits(), 4);
    /// # let _ = layer;
    /// ```
    pub fn pair(max: usize) -> (Self, ConcurrencyHandle) {
        let layer = Self::new(max);
        let handle = layer.handle();
        (layer, handle)
    }
}

impl fmt::Debug for ConcurrencyLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimitLayer")
            .field("max", &self.config.max)
            .field("available", &self.config.semaphore.available_permits())
            .field("shed", &self.config.shed)
            .finish()
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimit::from_config(inner, self.config.clone())
    }
}

/// Reads a concurrency limiter's state; cheap to clone.
///
/// # Example
///
/// ```
/// use abacus_layers::concurrency::ConcurrencyLimitLayer;
/// let (_layer, handle) = ConcurrencyLimitLayer::pair(10);
/// assert_eq!((handle.in_flight(), handle.available_permits(), handle.max()), (0, 10, 10));
/// ```
#[derive(Clone, Debug)]
pub struct ConcurrencyHandle {
    semaphore: Arc<Semaphore>,
    max: usize,
}

impl ConcurrencyHandle {
    /// Requests holding a permit: readied or called, or streaming.
    ///
    /// # Example
    ///
    /// ```
    /// let (_l, h) = abacus_layers::concurrency::ConcurrencyLimitLayer::pair(2);
    /// assert_eq!(h.in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> usize {
        self.max.saturating_sub(self.semaphore.available_permits())
    }

    /// Free permits.
    ///
    /// # Example
    ///
    /// ```
    /// let (_l, h) = abacus_layers::concurrency::ConcurrencyLimitLayer::pair(2);
    /// assert_eq!(h.available_permits(), 2);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// The configured limit.
    ///
    /// # Example
    ///
    /// ```
    /// let (_l, h) = abacus_layers::concurrency::ConcurrencyLimitLayer::pair(2);
    /// assert_eq!(h.max(), 2);
    /// ```
    pub fn max(&self) -> usize {
        self.max
    }
}

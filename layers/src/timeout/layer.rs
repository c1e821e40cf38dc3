use std::time::Duration;

use tower_layer::Layer;

use super::Timeout;

/// Computes a per-request timeout that overrides the layer's default.
///
/// Implemented for every `Fn(&Req) -> Option<Duration>`; `None` means "use
/// the default". [`NoOverride`] is the default implementation.
///
/// # Example
///
/// ```
/// use abacus_layers::timeout::RequestTimeout;
/// use std::time::Duration;
///
/// let f = |req: &String| req.starts_with("batch").then(|| Duration::from_secs(60));
/// assert_eq!(f.request_timeout(&"batch job".to_string()), Some(Duration::from_secs(60)));
/// ```
pub trait RequestTimeout<Req> {
    /// The timeout for `req`, or `None` for the default.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::{NoOverride, RequestTimeout};
    /// assert_eq!(NoOverride.request_timeout(&"req"), None);
    /// ```
    fn request_timeout(&self, req: &Req) -> Option<Duration>;
}

impl<Req, F> RequestTimeout<Req> for F
where
    F: Fn(&Req) -> Option<Duration>,
{
    #[inline]
    fn request_timeout(&self, req: &Req) -> Option<Duration> {
        self(req)
    }
}

/// No per-request override: every request gets the layer's default.
///
/// # Example
///
/// ```
/// use abacus_layers::timeout::{NoOverride, TimeoutLayer};
/// let _layer: TimeoutLayer<NoOverride> = TimeoutLayer::new(std::time::Duration::from_secs(1));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NoOverride;

impl<Req> RequestTimeout<Req> for NoOverride {
    #[inline]
    fn request_timeout(&self, _req: &Req) -> Option<Duration> {
        None
    }
}

/// Applies [`Timeout`] to services: request, first-item and idle timeouts.
///
/// All timeouts are optional; [`TimeoutLayer::default`] sets none.
///
/// # Example
///
/// ```
/// use abacus_layers::timeout::TimeoutLayer;
/// use std::time::Duration;
///
/// let layer = TimeoutLayer::new(Duration::from_secs(30))
///     .first_item_timeout(Duration::from_secs(10))
///     .idle_timeout(Duration::from_secs(60));
/// # let _ = layer;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TimeoutLayer<T = NoOverride> {
    pub(super) config: Config,
    pub(super) per_request: T,
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Config {
    pub(super) request: Option<Duration>,
    pub(super) first_item: Option<Duration>,
    pub(super) idle: Option<Duration>,
}

impl Default for TimeoutLayer {
    /// No timeouts.
    fn default() -> Self {
        Self {
            config: Config::default(),
            per_request: NoOverride,
        }
    }
}

impl TimeoutLayer {
    /// A layer whose requests must complete (or start streaming) within
    /// `request_timeout`.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::TimeoutLayer;
    /// let layer = TimeoutLayer::new(std::time::Duration::from_secs(30));
    /// assert_eq!(layer.get_request_timeout(), Some(std::time::Duration::from_secs(30)));
    /// ```
    pub fn new(request_timeout: Duration) -> Self {
        Self::default().request_timeout(request_timeout)
    }
}

impl<T> TimeoutLayer<T> {
    /// Set the default request timeout.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::TimeoutLayer;
    /// use std::time::Duration;
    /// let layer = TimeoutLayer::default().request_timeout(Duration::from_secs(5));
    /// # let _ = layer;
    /// ```
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request = Some(timeout);
        self
    }

    /// Require the first item of a streamed response within `timeout` of the
    /// request's start.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::TimeoutLayer;
    /// use std::time::Duration;
    /// let layer = TimeoutLayer::default().first_item_timeout(Duration::from_secs(10));
    /// # let _ = layer;
    /// ```
    pub fn first_item_timeout(mut self, timeout: Duration) -> Self {
        self.config.first_item = Some(timeout);
        self
    }

    /// Allow at most `timeout` between two items of a streamed response.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::TimeoutLayer;
    /// use std::time::Duration;
    /// let layer = TimeoutLayer::default().idle_timeout(Duration::from_secs(60));
    /// # let _ = layer;
    /// ```
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle = Some(timeout);
        self
    }

    /// Override the request timeout per request: `f(&req)` returns
    /// `Some(timeout)` to override, `None` to use the default.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::TimeoutLayer;
    /// use std::time::Duration;
    ///
    /// struct Req { deadline_ms: Option<u64> }
    /// let layer = TimeoutLayer::new(Duration::from_secs(30))
    ///     .per_request_timeout(|r: &Req| r.deadline_ms.map(Duration::from_millis));
    /// # let _ = layer;
    /// ```
    pub fn per_request_timeout<F>(self, f: F) -> TimeoutLayer<F> {
        TimeoutLayer {
            config: self.config,
            per_request: f,
        }
    }

    /// The default request timeout.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::TimeoutLayer;
    /// assert_eq!(TimeoutLayer::default().get_request_timeout(), None);
    /// ```
    pub fn get_request_timeout(&self) -> Option<Duration> {
        self.config.request
    }
}

impl<S, T: Clone> Layer<S> for TimeoutLayer<T> {
    type Service = Timeout<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            config: self.config,
            per_request: self.per_request.clone(),
        }
    }
}

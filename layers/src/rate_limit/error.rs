use std::fmt;
use std::time::Duration;

/// A request refused by the rate limit: its key has used its quota. The
/// inner service was not called.
///
/// A plain error type (as tower's `Overloaded`), so it converts into
/// `tower::BoxError`; [`RateLimitError`] wraps it with the inner service's
/// error.
///
/// # Example
///
/// ```
/// use abacus_layers::rate_limit::RateLimited;
/// use std::time::Duration;
///
/// let e = RateLimited { retry_after: Duration::from_millis(1500) };
/// assert_eq!(e.retry_after_secs(), 2);
/// assert_eq!(e.to_string(), "rate limited: retry in 1.500 s");
/// let boxed: Box<dyn std::error::Error + Send + Sync> = e.into();
/// assert!(boxed.downcast_ref::<RateLimited>().is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// How long until the same request would be admitted.
    pub retry_after: Duration,
}

impl RateLimited {
    /// [`retry_after`](Self::retry_after) in whole seconds, rounded up (as
    /// an HTTP `Retry-After` header wants it); at least 1.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::RateLimited;
    /// use std::time::Duration;
    /// let secs = |ms| RateLimited { retry_after: Duration::from_millis(ms) }.retry_after_secs();
    /// assert_eq!((secs(1), secs(1000), secs(1001)), (1, 1, 2));
    /// ```
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.retry_after;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Rounded up to the millisecond: never earlier than allowed.
        let ms = self.retry_after.as_nanos().div_ceil(1_000_000);
        write!(f, "rate limited: retry in {}.{:03} s", ms / 1000, ms % 1000)
    }
}

impl std::error::Error for RateLimited {}

/// The error of [`RateLimit`](super::RateLimit).
///
/// # Example
///
/// ```
/// use abacus_layers::rate_limit::{RateLimitError, RateLimited};
/// use std::time::Duration;
///
/// let e: RateLimitError<std::io::Error> =
///     RateLimited { retry_after: Duration::from_secs(1) }.into();
/// assert_eq!(e.rate_limited().map(|r| r.retry_after), Some(Duration::from_secs(1)));
/// ```
#[derive(Debug)]
pub enum RateLimitError<E> {
    /// The key's quota is used up; the inner service was neither readied
    /// nor called.
    Limited(RateLimited),
    /// The inner service failed.
    Inner(E),
}

impl<E> RateLimitError<E> {
    /// The refusal, if this is one.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::RateLimitError;
    /// assert!(RateLimitError::Inner("boom").rate_limited().is_none());
    /// ```
    pub fn rate_limited(&self) -> Option<&RateLimited> {
        match self {
            RateLimitError::Limited(r) => Some(r),
            RateLimitError::Inner(_) => None,
        }
    }

    /// The inner error, if any.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::RateLimitError;
    /// assert_eq!(RateLimitError::Inner("boom").into_inner(), Some("boom"));
    /// ```
    pub fn into_inner(self) -> Option<E> {
        match self {
            RateLimitError::Inner(e) => Some(e),
            RateLimitError::Limited(_) => None,
        }
    }
}

impl<E> From<RateLimited> for RateLimitError<E> {
    fn from(r: RateLimited) -> Self {
        RateLimitError::Limited(r)
    }
}

impl<E: fmt::Display> fmt::Display for RateLimitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimitError::Limited(r) => r.fmt(f),
            RateLimitError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RateLimitError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RateLimitError::Limited(_) => None,
            RateLimitError::Inner(e) => e.source(),
        }
    }
}

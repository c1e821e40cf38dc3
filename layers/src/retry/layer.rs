use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::{Backoff, Retry, RetryBudget};
use crate::util::rng::SeedRng;

/// Decides whether a result is worth retrying.
///
/// Implemented for every `Fn(&Result<Res, E>) -> bool`. The default,
/// [`RetryOnError`], retries every error and no response.
///
/// # Example
///
/// ```
/// use abacus_layers::retry::RetryPredicate;
///
/// // Retry errors and HTTP 503 responses.
/// let p = |r: &Result<http::StatusCode, std::io::Error>| match r {
///     Ok(status) => *status == http::StatusCode::SERVICE_UNAVAILABLE,
///     Err(_) => true,
/// };
/// assert!(p.should_retry(&Ok(http::StatusCode::SERVICE_UNAVAILABLE)));
/// assert!(!p.should_retry(&Ok(http::StatusCode::OK)));
/// ```
pub trait RetryPredicate<Res, E> {
    /// `true` to retry (budget, attempts and total delay permitting).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::{RetryOnError, RetryPredicate};
    /// assert!(RetryOnError.should_retry(&Err::<(), _>("boom")));
    /// ```
    fn should_retry(&self, result: &Result<Res, E>) -> bool;

    /// The wait the result itself asks for before the next attempt (an
    /// HTTP `Retry-After`, say), used instead of the backoff's delay for
    /// that retry; `None`, the default, leaves it to the backoff. Only asked
    /// of results [`should_retry`](Self::should_retry) retries. The wait
    /// still counts against [`max_total_delay`](RetryLayer::max_total_delay):
    /// a wait that would pass it gives up at once ([`GiveUp::MaxTotalDelay`](super::GiveUp::MaxTotalDelay))
    /// instead of sleeping past a deadline.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::{RetryOnError, RetryPredicate};
    /// assert_eq!(RetryOnError.retry_after(&Err::<(), _>("boom")), None);
    /// ```
    fn retry_after(&self, result: &Result<Res, E>) -> Option<Duration> {
        let _ = result;
        None
    }
}

impl<Res, E, F> RetryPredicate<Res, E> for F
where
    F: Fn(&Result<Res, E>) -> bool,
{
    #[inline]
    fn should_retry(&self, result: &Result<Res, E>) -> bool {
        self(result)
    }
}

/// Retry every error, never a response.
///
/// # Example
///
/// ```
/// use abacus_layers::retry::{RetryOnError, RetryPredicate};
/// assert!(!RetryOnError.should_retry(&Ok::<_, ()>(1)));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RetryOnError;

impl<Res, E> RetryPredicate<Res, E> for RetryOnError {
    #[inline]
    fn should_retry(&self, result: &Result<Res, E>) -> bool {
        result.is_err()
    }
}

/// A predicate and a function that reads a server-given wait from a
/// result: what [`RetryLayer::retry_after`] makes.
///
/// # Example
///
/// ```
/// use abacus_layers::retry::{RetryPredicate, WithRetryAfter};
/// use std::time::Duration;
///
/// let p = WithRetryAfter::new(
///     |r: &Result<(), u64>| r.is_err(),
///     |r: &Result<(), u64>| r.as_ref().err().map(|secs| Duration::from_secs(*secs)),
/// );
/// assert!(p.should_retry(&Err(2)));
/// assert_eq!(p.retry_after(&Err(2)), Some(Duration::from_secs(2)));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct WithRetryAfter<P, F> {
    predicate: P,
    wait: F,
}

impl<P, F> WithRetryAfter<P, F> {
    /// Retries what `predicate` retries, waiting what `wait` reads from the
    /// result when it reads anything.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::{RetryOnError, RetryPredicate, WithRetryAfter};
    /// use std::time::Duration;
    /// let p = WithRetryAfter::new(RetryOnError, |_: &Result<(), ()>| None::<Duration>);
    /// assert_eq!(p.retry_after(&Err(())), None);
    /// ```
    pub fn new(predicate: P, wait: F) -> Self {
        Self { predicate, wait }
    }
}

impl<Res, E, P, F> RetryPredicate<Res, E> for WithRetryAfter<P, F>
where
    P: RetryPredicate<Res, E>,
    F: Fn(&Result<Res, E>) -> Option<Duration>,
{
    #[inline]
    fn should_retry(&self, result: &Result<Res, E>) -> bool {
        self.predicate.should_retry(result)
    }

    fn retry_after(&self, result: &Result<Res, E>) -> Option<Duration> {
        (self.wait)(result).or_else(|| self.predicate.retry_after(result))
    }
}

#[derive(Clone, Debug)]
pub(super) struct Config {
    pub(super) max_attempts: u32,
    pub(super) backoff: Backoff,
    pub(super) max_total_delay: Option<Duration>,
    pub(super) budget: Option<Arc<RetryBudget>>,
    pub(super) rng: Arc<SeedRng>,
}

/// Applies [`Retry`] to services.
///
/// Defaults: 3 attempts, [`Backoff::default`] (100 ms doubling to 10 s, full
/// jitter), no total-delay cap, [`RetryBudget::default`] (20 % over 10 s plus
/// 10/s), retry on any error, a random seed. Clones share the budget and the
/// random stream.
///
/// # Example
///
/// ```
/// use abacus_layers::retry::{Backoff, Jitter, RetryLayer};
/// use std::time::Duration;
///
/// let layer = RetryLayer::new()
///     .max_attempts(5)
///     .backoff(Backoff::exponential(Duration::from_millis(20), Duration::from_secs(1)).jitter(Jitter::Decorrelated))
///     .max_total_delay(Duration::from_secs(3));
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct RetryLayer<P = RetryOnError> {
    pub(super) config: Arc<Config>,
    pub(super) predicate: P,
}

impl RetryLayer {
    /// A layer with the defaults.
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::retry::RetryLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                max_attempts: 3,
                backoff: Backoff::default(),
                max_total_delay: None,
                budget: Some(Arc::new(RetryBudget::default())),
                rng: Arc::new(SeedRng::from_entropy()),
            }),
            predicate: RetryOnError,
        }
    }
}

impl Default for RetryLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> RetryLayer<P> {
    /// Make at most `attempts` calls per request, the first included
    /// (`1` disables retrying; `0` is treated as `1`).
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::retry::RetryLayer::new().max_attempts(4);
    /// # let _ = layer;
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        Arc::make_mut(&mut self.config).max_attempts = attempts.max(1);
        self
    }

    /// Set the backoff between attempts.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::{Backoff, RetryLayer};
    /// use std::time::Duration;
    /// let layer = RetryLayer::new()
    ///     .backoff(Backoff::exponential(Duration::from_millis(10), Duration::from_millis(500)));
    /// # let _ = layer;
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        Arc::make_mut(&mut self.config).backoff = backoff;
        self
    }

    /// Give up rather than sleep past `total` in all (the sum of the delays
    /// of one request).
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::retry::RetryLayer::new()
    ///     .max_total_delay(std::time::Duration::from_secs(2));
    /// # let _ = layer;
    /// ```
    pub fn max_total_delay(mut self, total: Duration) -> Self {
        Arc::make_mut(&mut self.config).max_total_delay = Some(total);
        self
    }

    /// Use `budget` (pass an `Arc<RetryBudget>` to share one between layers).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::{RetryBudget, RetryLayer};
    /// use std::{sync::Arc, time::Duration};
    ///
    /// let shared = Arc::new(RetryBudget::new(Duration::from_secs(10), 1, 0.1));
    /// let a = RetryLayer::new().budget(shared.clone());
    /// let b = RetryLayer::new().budget(shared);
    /// # let _ = (a, b);
    /// ```
    pub fn budget(mut self, budget: impl Into<Arc<RetryBudget>>) -> Self {
        Arc::make_mut(&mut self.config).budget = Some(budget.into());
        self
    }

    /// Retry without a budget (only attempts and total delay limit retries).
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::retry::RetryLayer::new().without_budget();
    /// assert!(layer.get_budget().is_none());
    /// ```
    pub fn without_budget(mut self) -> Self {
        Arc::make_mut(&mut self.config).budget = None;
        self
    }

    /// Seed the jitter's random stream (for deterministic tests).
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::retry::RetryLayer::new().seed(42);
    /// # let _ = layer;
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        Arc::make_mut(&mut self.config).rng = Arc::new(SeedRng::new(seed));
        self
    }

    /// Decide what is retried.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::RetryLayer;
    /// #[derive(Debug)]
    /// enum Error { Timeout, BadRequest }
    /// let layer = RetryLayer::new()
    ///     .retry_if(|r: &Result<String, Error>| matches!(r, Err(Error::Timeout)));
    /// # let _ = layer;
    /// ```
    pub fn retry_if<Q>(self, predicate: Q) -> RetryLayer<Q> {
        RetryLayer {
            config: self.config,
            predicate,
        }
    }

    /// Honour a wait the result asks for: `wait(&result)` returning
    /// `Some(delay)` makes the next attempt come after `delay` instead of the
    /// backoff's delay (see [`RetryPredicate::retry_after`]); what is retried
    /// is still the predicate's decision. For HTTP, read `Retry-After` of a
    /// 429 or 503 here.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::RetryLayer;
    /// use std::time::Duration;
    ///
    /// #[derive(Debug)]
    /// enum Error { Busy { retry_after: Option<Duration> }, Down }
    /// let layer = RetryLayer::new()
    ///     .max_total_delay(Duration::from_secs(30))
    ///     .retry_if(|r: &Result<String, Error>| r.is_err())
    ///     .retry_after(|r: &Result<String, Error>| match r {
    ///         Err(Error::Busy { retry_after }) => *retry_after,
    ///         _ => None,
    ///     });
    /// # let _ = layer;
    /// ```
    pub fn retry_after<F>(self, wait: F) -> RetryLayer<WithRetryAfter<P, F>> {
        RetryLayer {
            config: self.config,
            predicate: WithRetryAfter::new(self.predicate, wait),
        }
    }

    /// The budget, if any.
    ///
    /// # Example
    ///
    /// ```
    /// let layer = abacus_layers::retry::RetryLayer::new();
    /// assert!(layer.get_budget().is_some());
    /// ```
    pub fn get_budget(&self) -> Option<&Arc<RetryBudget>> {
        self.config.budget.as_ref()
    }
}

impl<P> fmt::Debug for RetryLayer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("max_attempts", &self.config.max_attempts)
            .field("backoff", &self.config.backoff)
            .field("max_total_delay", &self.config.max_total_delay)
            .field("budget", &self.config.budget)
            .finish_non_exhaustive()
    }
}

impl<S, P: Clone> Layer<S> for RetryLayer<P> {
    type Service = Retry<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            config: self.config.clone(),
            predicate: self.predicate.clone(),
        }
    }
}

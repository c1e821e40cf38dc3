use std::fmt;
use std::time::Duration;

/// Which deadline passed.
///
/// # Example
///
/// ```
/// use abacus_layers::timeout::{Elapsed, TimeoutKind};
/// use std::time::Duration;
/// let e = Elapsed::new(TimeoutKind::Idle, Duration::from_secs(15));
/// assert_eq!(e.kind(), TimeoutKind::Idle);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// The response future did not resolve in time.
    Request,
    /// A stream did not yield its first item in time.
    FirstItem,
    /// A stream stayed silent for longer than the idle timeout.
    Idle,
}

/// A deadline passed.
///
/// # Example
///
/// ```
/// use abacus_layers::timeout::{Elapsed, TimeoutKind};
/// use std::time::Duration;
/// let e = Elapsed::new(TimeoutKind::Request, Duration::from_secs(30));
/// assert_eq!(e.to_string(), "request timed out after 30s");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Elapsed {
    kind: TimeoutKind,
    after: Duration,
}

impl Elapsed {
    /// A new `Elapsed` (useful in tests of code that handles timeouts).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::{Elapsed, TimeoutKind};
    /// let e = Elapsed::new(TimeoutKind::FirstItem, std::time::Duration::from_secs(5));
    /// # let _ = e;
    /// ```
    pub const fn new(kind: TimeoutKind, after: Duration) -> Self {
        Self { kind, after }
    }

    /// Which deadline passed.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::{Elapsed, TimeoutKind};
    /// let e = Elapsed::new(TimeoutKind::Idle, std::time::Duration::from_secs(1));
    /// assert_eq!(e.kind(), TimeoutKind::Idle);
    /// ```
    pub const fn kind(&self) -> TimeoutKind {
        self.kind
    }

    /// The timeout that was exceeded.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::{Elapsed, TimeoutKind};
    /// use std::time::Duration;
    /// let e = Elapsed::new(TimeoutKind::Idle, Duration::from_secs(1));
    /// assert_eq!(e.after(), Duration::from_secs(1));
    /// ```
    pub const fn after(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TimeoutKind::Request => write!(f, "request timed out after {:?}", self.after),
            TimeoutKind::FirstItem => write!(f, "no first stream item within {:?}", self.after),
            TimeoutKind::Idle => write!(f, "stream idle for more than {:?}", self.after),
        }
    }
}

impl std::error::Error for Elapsed {}

/// The error of [`Timeout`](super::Timeout) (and of a
/// [`TimeoutBody`](crate::stream::TimeoutBody)).
///
/// # Example
///
/// ```
/// use abacus_layers::timeout::{Elapsed, TimeoutError, TimeoutKind};
/// use std::time::Duration;
///
/// let e: TimeoutError<std::io::Error> =
///     TimeoutError::Elapsed(Elapsed::new(TimeoutKind::Request, Duration::from_secs(1)));
/// assert!(e.is_elapsed());
/// assert!(e.into_inner().is_none());
/// ```
#[derive(Debug)]
pub enum TimeoutError<E> {
    /// A deadline passed.
    Elapsed(Elapsed),
    /// The inner service (or body) failed.
    Inner(E),
}

impl<E> TimeoutError<E> {
    /// `true` if a deadline passed.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::TimeoutError;
    /// assert!(!TimeoutError::Inner("boom").is_elapsed());
    /// ```
    pub fn is_elapsed(&self) -> bool {
        matches!(self, TimeoutError::Elapsed(_))
    }

    /// The inner error, if this is not a timeout.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::TimeoutError;
    /// assert_eq!(TimeoutError::Inner("boom").into_inner(), Some("boom"));
    /// ```
    pub fn into_inner(self) -> Option<E> {
        match self {
            TimeoutError::Inner(e) => Some(e),
            TimeoutError::Elapsed(_) => None,
        }
    }
}

impl<E> From<Elapsed> for TimeoutError<E> {
    fn from(e: Elapsed) -> Self {
        TimeoutError::Elapsed(e)
    }
}

impl<E: fmt::Display> fmt::Display for TimeoutError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeoutError::Elapsed(e) => e.fmt(f),
            TimeoutError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for TimeoutError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TimeoutError::Elapsed(_) => None,
            // Transparent: the inner error's message is ours.
            TimeoutError::Inner(e) => e.source(),
        }
    }
}

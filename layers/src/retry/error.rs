use std::fmt;

/// Why [`Retry`](super::Retry) stopped retrying a retryable result.
///
/// # Example
///
/// ```
/// use abacus_layers::retry::GiveUp;
/// assert_eq!(GiveUp::Budget.to_string(), "retry budget exhausted");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUp {
    /// `max_attempts` attempts were made.
    MaxAttempts,
    /// The next delay would exceed `max_total_delay`.
    MaxTotalDelay,
    /// The retry budget is empty.
    Budget,
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GiveUp::MaxAttempts => "maximum attempts reached",
            GiveUp::MaxTotalDelay => "maximum total retry delay reached",
            GiveUp::Budget => "retry budget exhausted",
        })
    }
}

/// The error of [`Retry`](super::Retry).
///
/// # Example
///
/// ```
/// use abacus_layers::retry::{GiveUp, RetryError};
///
/// let e = RetryError::Exhausted { error: "boom", attempts: 3, reason: GiveUp::MaxAttempts };
/// assert_eq!(e.attempts(), Some(3));
/// assert_eq!(*e.inner(), "boom");
/// ```
#[derive(Debug)]
pub enum RetryError<E> {
    /// The inner service failed with an error the predicate does not retry
    /// (or its `poll_ready` failed).
    Inner(E),
    /// The last attempt failed with a retryable error, but retrying stopped.
    Exhausted {
        /// The last attempt's error.
        error: E,
        /// Attempts made, the first call included.
        attempts: u32,
        /// Why retrying stopped.
        reason: GiveUp,
    },
}

impl<E> RetryError<E> {
    /// The inner service's error.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::RetryError;
    /// assert_eq!(*RetryError::Inner(5).inner(), 5);
    /// ```
    pub fn inner(&self) -> &E {
        match self {
            RetryError::Inner(e) | RetryError::Exhausted { error: e, .. } => e,
        }
    }

    /// Consume `self`, returning the inner service's error.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::RetryError;
    /// assert_eq!(RetryError::Inner(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> E {
        match self {
            RetryError::Inner(e) | RetryError::Exhausted { error: e, .. } => e,
        }
    }

    /// Attempts made, if retrying was given up.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::RetryError;
    /// assert_eq!(RetryError::Inner(5).attempts(), None);
    /// ```
    pub fn attempts(&self) -> Option<u32> {
        match self {
            RetryError::Exhausted { attempts, .. } => Some(*attempts),
            RetryError::Inner(_) => None,
        }
    }

    /// Why retrying was given up, if it was.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::{GiveUp, RetryError};
    /// let e = RetryError::Exhausted { error: (), attempts: 2, reason: GiveUp::Budget };
    /// assert_eq!(e.reason(), Some(GiveUp::Budget));
    /// ```
    pub fn reason(&self) -> Option<GiveUp> {
        match self {
            RetryError::Exhausted { reason, .. } => Some(*reason),
            RetryError::Inner(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryError::Inner(e) => e.fmt(f),
            RetryError::Exhausted {
                error,
                attempts,
                reason,
            } => write!(f, "{error} (gave up after {attempts} attempts: {reason})"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RetryError::Inner(e) => e.source(),
            RetryError::Exhausted { error, .. } => Some(error),
        }
    }
}

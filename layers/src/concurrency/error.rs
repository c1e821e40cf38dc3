use std::fmt;

/// The error of [`ConcurrencyLimit`](super::ConcurrencyLimit).
///
/// # Example
///
/// ```
/// use abacus_layers::concurrency::ConcurrencyLimitError;
///
/// let e: ConcurrencyLimitError<std::io::Error> = ConcurrencyLimitError::Overloaded;
/// assert!(e.is_overloaded());
/// assert_eq!(e.to_string(), "service overloaded: concurrency limit reached");
/// ```
#[derive(Debug)]
pub enum ConcurrencyLimitError<E> {
    /// Load shedding is on and no permit was free (or the shared semaphore
    /// was closed). The inner service was not called.
    Overloaded,
    /// The inner service failed.
    Inner(E),
}

impl<E> ConcurrencyLimitError<E> {
    /// `true` for [`Overloaded`](Self::Overloaded).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::concurrency::ConcurrencyLimitError;
    /// assert!(!ConcurrencyLimitError::Inner("boom").is_overloaded());
    /// ```
    pub fn is_overloaded(&self) -> bool {
        matches!(self, ConcurrencyLimitError::Overloaded)
    }

    /// The inner error, if any.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::concurrency::ConcurrencyLimitError;
    /// assert_eq!(ConcurrencyLimitError::Inner("boom").into_inner(), Some("boom"));
    /// ```
    pub fn into_inner(self) -> Option<E> {
        match self {
            ConcurrencyLimitError::Inner(e) => Some(e),
            ConcurrencyLimitError::Overloaded => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for ConcurrencyLimitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConcurrencyLimitError::Overloaded => {
                f.write_str("service overloaded: concurrency limit reached")
            }
            ConcurrencyLimitError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ConcurrencyLimitError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConcurrencyLimitError::Overloaded => None,
            ConcurrencyLimitError::Inner(e) => e.source(),
        }
    }
}

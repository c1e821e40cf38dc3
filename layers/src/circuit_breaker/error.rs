use std::fmt;

/// The error of [`CircuitBreaker`](super::CircuitBreaker).
///
/// # Example
///
/// ```
/// use abacus_layers::circuit_breaker::CircuitBreakerError;
///
/// let e: CircuitBreakerError<std::io::Error> = CircuitBreakerError::Open;
/// assert!(e.is_open());
/// assert_eq!(e.to_string(), "circuit breaker is open");
/// ```
#[derive(Debug)]
pub enum CircuitBreakerError<E> {
    /// The breaker is open (or half-open with all probe slots taken): the
    /// inner service was not called.
    Open,
    /// The inner service failed.
    Inner(E),
}

impl<E> CircuitBreakerError<E> {
    /// `true` for [`Open`](Self::Open).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::CircuitBreakerError;
    /// assert!(!CircuitBreakerError::Inner(()).is_open());
    /// ```
    pub fn is_open(&self) -> bool {
        matches!(self, CircuitBreakerError::Open)
    }

    /// The inner error, if any.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::CircuitBreakerError;
    /// assert_eq!(CircuitBreakerError::Inner(1).into_inner(), Some(1));
    /// ```
    pub fn into_inner(self) -> Option<E> {
        match self {
            CircuitBreakerError::Inner(e) => Some(e),
            CircuitBreakerError::Open => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for CircuitBreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CircuitBreakerError::Open => f.write_str("circuit breaker is open"),
            CircuitBreakerError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CircuitBreakerError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CircuitBreakerError::Open => None,
            CircuitBreakerError::Inner(e) => e.source(),
        }
    }
}

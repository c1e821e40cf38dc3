use std::fmt;
use std::sync::Arc;

/// The error of [`Cache`](super::Cache): the inner service's error.
///
/// An error on a cacheable request is [`Shared`](Self::Shared): every caller
/// that waited for the same miss gets the same `Arc`. Requests without a key,
/// callers that had to send their own request because a concurrent
/// response could not be cached, and requests for a key whose last response
/// could not be cached get [`Inner`](Self::Inner).
///
/// # Example
///
/// ```
/// use abacus_layers::cache::CacheError;
/// use std::sync::Arc;
///
/// let e = CacheError::Shared(Arc::new(std::io::Error::other("down")));
/// assert!(e.is_shared());
/// assert_eq!(e.get_ref().to_string(), "down");
/// ```
#[derive(Debug)]
pub enum CacheError<E> {
    /// The inner service failed for this caller alone.
    Inner(E),
    /// The inner service failed on a cache miss (shared with any concurrent
    /// callers of the same key).
    Shared(Arc<E>),
}

impl<E> CacheError<E> {
    /// The inner error.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::cache::CacheError;
    /// assert_eq!(*CacheError::Inner(3).get_ref(), 3);
    /// ```
    pub fn get_ref(&self) -> &E {
        match self {
            CacheError::Inner(e) => e,
            CacheError::Shared(e) => e,
        }
    }

    /// `true` if the error is shared with other callers.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::cache::CacheError;
    /// assert!(!CacheError::Inner(3).is_shared());
    /// ```
    pub fn is_shared(&self) -> bool {
        matches!(self, CacheError::Shared(_))
    }
}

impl<E: fmt::Display> fmt::Display for CacheError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get_ref().fmt(f)
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CacheError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.get_ref().source()
    }
}

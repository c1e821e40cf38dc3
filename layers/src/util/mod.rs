//! Small crate-private helpers.

#[cfg(any(feature = "retry", feature = "circuit-breaker"))]
pub(crate) mod window;

#[cfg(feature = "retry")]
pub(crate) mod rng;

#[cfg(all(
    feature = "metrics",
    any(
        feature = "cache",
        feature = "concurrency",
        feature = "rate-limit",
        feature = "remote-cache"
    )
))]
pub(crate) mod kept;

/// Lock a std mutex, ignoring poisoning (our critical sections never panic
/// half-way through an update that matters).
#[cfg(any(feature = "retry", feature = "circuit-breaker"))]
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

//! Time budget, cancellation and progress throttling for one query.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::MathError;

/// The time budget of one query: a deadline plus a cancellation flag.
///
/// Long computations call [`Budget::check`] regularly and stop with
/// [`MathError::TimedOut`] or [`MathError::Cancelled`]. Clones share the
/// cancellation flag, so a clone can be handed to another thread.
///
/// ```rust
/// use std::time::Duration;
/// use abacus::math::{Budget, MathError};
///
/// let budget = Budget::new(Duration::from_secs(5));
/// assert!(budget.check().is_ok());
/// budget.cancel_handle().cancel();
/// assert_eq!(budget.check(), Err(MathError::Cancelled));
/// ```
#[derive(Debug, Clone)]
pub struct Budget {
    deadline: Option<Instant>,
    cancelled: Arc<AtomicBool>,
}

impl Budget {
    /// A budget whose deadline is `limit` from now.
    pub fn new(limit: Duration) -> Self {
        Budget {
            deadline: Instant::now().checked_add(limit),
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A budget with no deadline; it can still be cancelled.
    pub fn unlimited() -> Self {
        Budget {
            deadline: None,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A handle that cancels this budget (and all its clones) from anywhere.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle(Arc::clone(&self.cancelled))
    }

    /// `Err(Cancelled)` once cancelled, `Err(TimedOut)` once past the deadline, else `Ok(())`.
    ///
    /// Cheap (an atomic load and a monotonic clock read); long loops call it
    /// every few thousand operations.
    pub fn check(&self) -> Result<(), MathError> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(MathError::Cancelled);
        }
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Err(MathError::TimedOut),
            _ => Ok(()),
        }
    }
}

/// Cancels the [`Budget`] it was taken from; cheap to clone and `Send + Sync`.
#[derive(Debug, Clone)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    /// Requests cancellation; the computation stops at its next [`Budget::check`].
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelHandle::cancel`] has been called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// At most this many progress lines are sent per query.
pub(crate) const MAX_PROGRESS_LINES: usize = 20;

/// Forwards progress lines to the caller's sink, at most [`MAX_PROGRESS_LINES`] of them.
pub(crate) struct Progress<'a> {
    sink: &'a mut dyn FnMut(String),
    sent: usize,
}

impl<'a> Progress<'a> {
    pub(crate) fn new(sink: &'a mut dyn FnMut(String)) -> Self {
        Progress { sink, sent: 0 }
    }

    /// Sends the line built by `line` unless the quota is used up (then `line` is not called).
    pub(crate) fn emit(&mut self, line: impl FnOnce() -> String) {
        if self.sent < MAX_PROGRESS_LINES {
            self.sent += 1;
            (self.sink)(line());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_expires() {
        let budget = Budget::new(Duration::from_millis(0));
        assert_eq!(budget.check(), Err(MathError::TimedOut));
        let budget = Budget::new(Duration::from_secs(60));
        assert_eq!(budget.check(), Ok(()));
        assert_eq!(Budget::unlimited().check(), Ok(()));
    }

    #[test]
    fn cancel_is_shared_by_clones() {
        let budget = Budget::new(Duration::from_secs(60));
        let clone = budget.clone();
        let handle = clone.cancel_handle();
        assert!(!handle.is_cancelled());
        std::thread::spawn(move || handle.cancel()).join().unwrap();
        assert_eq!(budget.check(), Err(MathError::Cancelled));
        assert_eq!(clone.check(), Err(MathError::Cancelled));
    }

    #[test]
    fn progress_is_throttled() {
        let mut lines = Vec::new();
        let mut sink = |l: String| lines.push(l);
        let mut p = Progress::new(&mut sink);
        for i in 0..100 {
            p.emit(|| format!("line {i}"));
        }
        assert_eq!(lines.len(), MAX_PROGRESS_LINES);
        assert_eq!(lines[0], "line 0");
    }
}

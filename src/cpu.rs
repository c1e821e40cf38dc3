//! A bounded pool for CPU-heavy agent work: at most `workers` jobs run at
//! once on blocking threads, at most `queue` wait, and beyond that a job is
//! refused at once. The runtime's worker threads, which serve health, the
//! agent card, metrics and cheap requests, are never starved by a crowd of
//! computations (tokio's blocking pool alone would grow to 512 threads).

use crate::protocol::{server_error, A2AError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The pool is full: every worker is busy and the queue too.
///
/// ```
/// let e: abacus::protocol::A2AError = abacus::cpu::CpuBusy.into();
/// assert_eq!(e.code, abacus::protocol::server_error::OVERLOADED);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("server overloaded: every CPU worker is busy and the queue is full; retry later")]
pub struct CpuBusy;

impl From<CpuBusy> for A2AError {
    fn from(e: CpuBusy) -> Self {
        A2AError::new(server_error::OVERLOADED, e.to_string())
    }
}

/// A bounded pool of CPU workers. Cheap to clone; clones share the pool.
///
/// ```
/// # async fn demo() -> Result<(), abacus::cpu::CpuBusy> {
/// let pool = abacus::cpu::CpuPool::new(2, 8);
/// let slot = pool.reserve().await?; // waits in the queue, or is refused at once
/// let sum = slot.run(|| (1..=100u64).sum::<u64>()).await;
/// assert_eq!(sum, Some(5050));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct CpuPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    workers: usize,
}

impl CpuPool {
    /// A pool of `workers` (at least 1) with room for `queue` waiting jobs.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        CpuPool {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(workers)),
                waiting: AtomicUsize::new(0),
                queue,
                workers,
            }),
        }
    }

    /// One worker per core.
    pub fn per_core(queue: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores, queue)
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// Jobs waiting for a worker right now.
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// A worker for one job: at once when one is free, after a wait in the
    /// queue otherwise, or [`CpuBusy`] at once when the queue is full.
    pub async fn reserve(&self) -> Result<CpuSlot, CpuBusy> {
        let inner = &self.inner;
        if let Ok(permit) = inner.permits.clone().try_acquire_owned() {
            return Ok(CpuSlot { permit });
        }
        if inner.waiting.fetch_add(1, Ordering::AcqRel) >= inner.queue {
            inner.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(CpuBusy);
        }
        let _waiting = Waiting(&inner.waiting);
        match inner.permits.clone().acquire_owned().await {
            Ok(permit) => Ok(CpuSlot { permit }),
            // The semaphore is never closed.
            Err(_) => Err(CpuBusy),
        }
    }
}

/// Leaves the queue when the wait ends, however it ends (a dropped future too).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A reserved worker of a [`CpuPool`], held until its job ends.
#[derive(Debug)]
pub struct CpuSlot {
    permit: OwnedSemaphorePermit,
}

impl CpuSlot {
    /// Runs `job` on a blocking thread; `None` if it panicked.
    pub async fn run<T: Send + 'static>(
        self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let permit = self.permit;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_workers_and_queue_jobs_are_refused_at_once() {
        let pool = CpuPool::new(1, 1);
        let running = pool.reserve().await.unwrap();
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.reserve().await.map(|_| ()) })
        };
        while pool.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.reserve().await.unwrap_err(), CpuBusy);
        drop(running);
        assert_eq!(queued.await.unwrap(), Ok(()));
        assert_eq!(pool.waiting(), 0);
        let slot = pool.reserve().await.unwrap();
        assert_eq!(slot.run(|| 6 * 7).await, Some(42));
    }

    #[tokio::test]
    async fn a_dropped_wait_leaves_the_queue() {
        let pool = CpuPool::new(1, 1);
        let _running = pool.reserve().await.unwrap();
        let wait = pool.reserve();
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(10), wait).await;
        assert!(timed_out.is_err());
        assert_eq!(pool.waiting(), 0);
    }
}

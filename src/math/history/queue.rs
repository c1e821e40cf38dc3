//! Background batching for the SQL backends: `record` puts an entry on a
//! bounded queue and a task writes batches of them.

use super::similarity::rank;
use super::{HistoryEntry, HistoryOptions, HistoryStats};
use crate::store::StoreError;
use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The backend side of a [`HistoryQueue`].
#[async_trait]
pub(super) trait HistorySink: Send + Sync + 'static {
    /// Writes one batch in one transaction.
    async fn write(&self, batch: Vec<HistoryEntry>) -> Result<(), StoreError>;
    /// Deletes all but the newest `keep` rows.
    async fn prune(&self, keep: usize) -> Result<(), StoreError>;
}

enum QueueMsg {
    Entry(HistoryEntry),
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub accepted: AtomicU64,
    pub dropped: AtomicU64,
    pub written: AtomicU64,
    pub failed: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> HistoryStats {
        HistoryStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// Entries written between two prunes at most (besides the time limit).
const PRUNE_EVERY: usize = 1_000;

/// A bounded queue of history entries and the task that writes them.
///
/// The task ends (after writing what is queued) when the queue is dropped.
pub(super) struct HistoryQueue {
    tx: mpsc::Sender<QueueMsg>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for HistoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryQueue")
            .field("stats", &self.counters.snapshot())
            .finish()
    }
}

impl HistoryQueue {
    /// Starts the writer task on the current Tokio runtime.
    pub fn start(sink: Arc<dyn HistorySink>, options: &HistoryOptions) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::Backend("the history writer needs a Tokio runtime".into()))?;
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        runtime.spawn(run_writer(rx, sink, options.clone(), counters.clone()));
        Ok(Self { tx, counters })
    }

    /// Queues an entry without waiting.
    pub fn record(&self, entry: HistoryEntry) {
        match self.tx.try_send(QueueMsg::Entry(entry)) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if dropped.is_power_of_two() {
                    tracing::warn!(dropped = dropped + 1, "history queue full; entry dropped");
                }
            }
        }
    }

    /// Waits until everything queued before the call is written and pruned.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (reply, done) = oneshot::channel();
        self.tx
            .send(QueueMsg::Flush(reply))
            .await
            .map_err(|_| StoreError::Backend("history writer stopped".into()))?;
        done.await
            .map_err(|_| StoreError::Backend("history writer stopped".into()))?
    }

    /// Counters so far.
    pub fn stats(&self) -> HistoryStats {
        self.counters.snapshot()
    }
}

async fn run_writer(
    mut rx: mpsc::Receiver<QueueMsg>,
    sink: Arc<dyn HistorySink>,
    options: HistoryOptions,
    counters: Arc<Counters>,
) {
    let batch_size = options.batch_size.max(1);
    let mut batch: Vec<HistoryEntry> = Vec::with_capacity(batch_size);
    // The first failure since the last flush, reported by the next flush.
    let mut failure: Option<String> = None;
    let mut since_prune = 0usize;
    let mut last_prune = tokio::time::Instant::now();
    let mut closed = false;
    while !closed {
        let mut flushes = Vec::new();
        match rx.recv().await {
            None => break,
            Some(QueueMsg::Entry(e)) => batch.push(e),
            Some(QueueMsg::Flush(reply)) => flushes.push(reply),
        }
        if flushes.is_empty() {
            // Gather more entries until the batch is full, a flush is asked
            // for or the oldest entry has waited flush_interval.
            let deadline = tokio::time::Instant::now() + options.flush_interval;
            while batch.len() < batch_size {
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Some(QueueMsg::Entry(e)) => batch.push(e),
                        Some(QueueMsg::Flush(reply)) => {
                            flushes.push(reply);
                            break;
                        }
                        None => {
                            closed = true;
                            break;
                        }
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
        }
        if !batch.is_empty() {
            let n = batch.len();
            match sink
                .write(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(batch_size),
                ))
                .await
            {
                Ok(()) => {
                    counters.written.fetch_add(n as u64, Ordering::Relaxed);
                    since_prune += n;
                }
                Err(e) => {
                    counters.failed.fetch_add(n as u64, Ordering::Relaxed);
                    tracing::warn!(error = %e, entries = n, "history write failed");
                    failure.get_or_insert_with(|| e.to_string());
                }
            }
        }
        let prune_due = since_prune > 0
            && (!flushes.is_empty()
                || since_prune >= PRUNE_EVERY
                || last_prune.elapsed() >= options.prune_interval);
        if prune_due {
            if let Err(e) = sink.prune(options.retention).await {
                tracing::warn!(error = %e, "history prune failed");
                failure.get_or_insert_with(|| e.to_string());
            }
            since_prune = 0;
            last_prune = tokio::time::Instant::now();
        }
        if !flushes.is_empty() {
            let result = match failure.take() {
                None => Ok(()),
                Some(e) => Err(StoreError::Backend(e)),
            };
            for reply in flushes {
                // The caller may have given up waiting; nothing to do then.
                let _ = reply.send(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(StoreError::Backend(e.to_string())),
                });
            }
        }
    }
}

/// Candidates fetched per similarity search, at most.
const MAX_CANDIDATES: usize = 500;

/// How a SQL history store finds candidates; [`sql_history_store!`] adds
/// the rest of [`HistoryStore`](super::HistoryStore), which is the same for
/// every SQL store (writes go through its `queue: HistoryQueue`).
#[async_trait]
pub(super) trait SqlHistory: Send + Sync + 'static {
    /// Up to about `want` entries (per way of searching) that may be
    /// similar to `query`, as pairs of insertion sequence and entry, in any
    /// order, possibly repeated.
    async fn candidates(
        &self,
        query: &str,
        want: i64,
    ) -> Result<Vec<(i64, HistoryEntry)>, StoreError>;
}

/// [`HistoryStore::similar`](super::HistoryStore::similar) of a
/// [`SqlHistory`]: its candidates, ranked.
pub(super) async fn similar<T: SqlHistory>(
    store: &T,
    query: &str,
    limit: usize,
) -> Result<Vec<HistoryEntry>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    // Ten candidates per wanted entry, within bounds.
    let want = limit.saturating_mul(10).clamp(50, MAX_CANDIDATES);
    let want = i64::try_from(want).unwrap_or(50);
    let candidates = store.candidates(query, want).await?;
    Ok(rank(query, candidates, limit))
}

/// Implements [`HistoryStore`](super::HistoryStore) for a [`SqlHistory`]
/// type with a `queue` field, named `$kind` (a macro, not a blanket impl,
/// so that the docs list the impl).
macro_rules! sql_history_store {
    ($store:ty, $kind:literal) => {
        #[async_trait::async_trait]
        impl $crate::math::history::HistoryStore for $store {
            fn record(&self, entry: $crate::math::history::HistoryEntry) {
                self.queue.record(entry);
            }

            async fn similar(
                &self,
                query: &str,
                limit: usize,
            ) -> Result<Vec<$crate::math::history::HistoryEntry>, $crate::store::StoreError> {
                $crate::math::history::queue::similar(self, query, limit).await
            }

            async fn flush(&self) -> Result<(), $crate::store::StoreError> {
                self.queue.flush().await
            }

            fn stats(&self) -> $crate::math::history::HistoryStats {
                self.queue.stats()
            }

            fn kind(&self) -> &'static str {
                $kind
            }
        }
    };
}
pub(super) use sql_history_store;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// A sink that waits for a permit per batch and can be told to fail.
    struct GatedSink {
        gate: tokio::sync::Semaphore,
        fail: std::sync::atomic::AtomicBool,
        rows: Mutex<Vec<HistoryEntry>>,
        prunes: AtomicU64,
    }

    #[async_trait]
    impl HistorySink for GatedSink {
        async fn write(&self, batch: Vec<HistoryEntry>) -> Result<(), StoreError> {
            self.gate.acquire().await.expect("gate").forget();
            if self.fail.load(Ordering::SeqCst) {
                return Err(StoreError::Backend("disk on fire".into()));
            }
            self.rows.lock().expect("rows").extend(batch);
            Ok(())
        }

        async fn prune(&self, keep: usize) -> Result<(), StoreError> {
            self.prunes.fetch_add(1, Ordering::SeqCst);
            let mut rows = self.rows.lock().expect("rows");
            let excess = rows.len().saturating_sub(keep);
            rows.drain(..excess);
            Ok(())
        }
    }

    fn gated_sink() -> Arc<GatedSink> {
        Arc::new(GatedSink {
            gate: tokio::sync::Semaphore::new(0),
            fail: false.into(),
            rows: Mutex::new(Vec::new()),
            prunes: AtomicU64::new(0),
        })
    }

    #[tokio::test]
    async fn queue_drops_and_counts_when_full() {
        let sink = gated_sink();
        let queue = HistoryQueue::start(
            sink.clone(),
            &HistoryOptions {
                queue_capacity: 4,
                batch_size: 2,
                retention: 3,
                ..HistoryOptions::default()
            },
        )
        .expect("queue");
        // The writer is stuck on the closed gate: the queue fills up and
        // `record` drops instead of waiting.
        for i in 0..50 {
            queue.record(HistoryEntry::new(format!("q{i}"), "r", Duration::ZERO, "t"));
        }
        let stats = queue.stats();
        assert_eq!(stats.accepted + stats.dropped, 50);
        assert!(stats.dropped >= 40, "{stats:?}");
        sink.gate.add_permits(1_000);
        queue.flush().await.expect("flush");
        let stats = queue.stats();
        assert_eq!(stats.written, stats.accepted);
        // Retention is enforced on flush; the newest rows are kept.
        let rows = sink.rows.lock().expect("rows");
        assert_eq!(rows.len(), 3);
        assert!(sink.prunes.load(Ordering::SeqCst) >= 1);
    }

    #[tokio::test]
    async fn failed_writes_are_reported_by_flush() {
        let sink = gated_sink();
        sink.gate.add_permits(1_000);
        sink.fail.store(true, Ordering::SeqCst);
        let queue = HistoryQueue::start(sink.clone(), &HistoryOptions::default()).expect("queue");
        queue.record(HistoryEntry::new("q", "r", Duration::ZERO, "t"));
        assert!(queue.flush().await.is_err());
        assert_eq!(queue.stats().failed, 1);
        // The failure is reported once; later flushes are clean again.
        sink.fail.store(false, Ordering::SeqCst);
        queue.record(HistoryEntry::new("q", "r", Duration::ZERO, "t"));
        queue.flush().await.expect("flush");
        assert_eq!(queue.stats().written, 1);
    }

    #[tokio::test]
    async fn queue_writes_without_flush() {
        let sink = gated_sink();
        sink.gate.add_permits(1_000);
        let queue = HistoryQueue::start(sink.clone(), &HistoryOptions::default()).expect("queue");
        queue.record(HistoryEntry::new("q", "r", Duration::ZERO, "t"));
        // Written by the interval timer alone (bounded wait, no flush).
        for _ in 0..200 {
            if queue.stats().written == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(queue.stats().written, 1);
        assert_eq!(sink.rows.lock().expect("rows").len(), 1);
    }
}

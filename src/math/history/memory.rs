//! Query history in process memory.

use super::queue::Counters;
use super::similarity::{jaccard, normalize, trigrams, Trigram};
use super::{HistoryEntry, HistoryOptions, HistoryStats, HistoryStore, SIMILARITY_THRESHOLD};
use crate::store::StoreError;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

struct RingEntry {
    seq: i64,
    entry: HistoryEntry,
    trigrams: Vec<Trigram>,
}

struct Ring {
    entries: VecDeque<RingEntry>,
    next_seq: i64,
}

/// Query history in a bounded ring in process memory; lost on restart.
///
/// `record` appends to a small staging buffer (a lock held for a push) and
/// moves a full buffer into the ring only if the ring's lock is free, so a
/// running similarity scan never blocks a request; `similar` and `flush`
/// drain the buffer first, so entries are visible at once.
pub struct MemoryHistoryStore {
    options: HistoryOptions,
    staging: Mutex<Vec<RingEntry>>,
    ring: Mutex<Ring>,
    counters: Counters,
}

impl std::fmt::Debug for MemoryHistoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryHistoryStore")
            .field("retention", &self.options.retention)
            .field("stats", &self.counters.snapshot())
            .finish()
    }
}

impl Default for MemoryHistoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryHistoryStore {
    /// A store keeping the default 100 000 newest entries.
    pub fn new() -> Self {
        Self::with_options(HistoryOptions::default())
    }

    /// A store keeping at most `retention` entries.
    pub fn with_retention(retention: usize) -> Self {
        Self::with_options(HistoryOptions {
            retention,
            ..HistoryOptions::default()
        })
    }

    /// A store with the given options (`flush_interval` and
    /// `prune_interval` do not apply: retention is enforced on every move
    /// into the ring).
    pub fn with_options(options: HistoryOptions) -> Self {
        Self {
            staging: Mutex::new(Vec::new()),
            ring: Mutex::new(Ring {
                entries: VecDeque::new(),
                next_seq: 0,
            }),
            counters: Counters::default(),
            options,
        }
    }

    fn move_into(&self, ring: &mut Ring, staged: Vec<RingEntry>) {
        let n = staged.len() as u64;
        for mut item in staged {
            item.seq = ring.next_seq;
            ring.next_seq += 1;
            ring.entries.push_back(item);
        }
        while ring.entries.len() > self.options.retention {
            ring.entries.pop_front();
        }
        self.counters.written.fetch_add(n, Ordering::Relaxed);
    }

    fn drain_into(&self, ring: &mut Ring) {
        let staged = std::mem::take(&mut *lock(&self.staging));
        self.move_into(ring, staged);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl HistoryStore for MemoryHistoryStore {
    fn record(&self, entry: HistoryEntry) {
        let item = RingEntry {
            seq: 0,
            trigrams: trigrams(&normalize(&entry.query)),
            entry,
        };
        let mut staging = lock(&self.staging);
        if staging.len() >= self.options.queue_capacity.max(1) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        staging.push(item);
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        if staging.len() >= self.options.batch_size.max(1) {
            if let Ok(mut ring) = self.ring.try_lock() {
                let staged = std::mem::take(&mut *staging);
                drop(staging);
                self.move_into(&mut ring, staged);
            }
        }
    }

    async fn similar(&self, query: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let wanted = trigrams(&normalize(query));
        let mut ring = lock(&self.ring);
        self.drain_into(&mut ring);
        let mut hits: Vec<(f64, i64, &HistoryEntry)> = ring
            .entries
            .iter()
            .filter_map(|e| {
                let score = jaccard(&wanted, &e.trigrams);
                (score >= SIMILARITY_THRESHOLD).then_some((score, e.seq, &e.entry))
            })
            .collect();
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
        Ok(hits
            .into_iter()
            .take(limit)
            .map(|(_, _, e)| e.clone())
            .collect())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let mut ring = lock(&self.ring);
        self.drain_into(&mut ring);
        Ok(())
    }

    fn stats(&self) -> HistoryStats {
        self.counters.snapshot()
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn memory_history_conformance() {
        super::super::conformance::history_suite(|retention| async move {
            Some(Box::new(MemoryHistoryStore::with_retention(retention)) as Box<dyn HistoryStore>)
        })
        .await;
    }

    #[tokio::test]
    async fn memory_history_drops_when_staging_full() {
        let store = MemoryHistoryStore::with_options(HistoryOptions {
            queue_capacity: 3,
            batch_size: 1_000,
            ..HistoryOptions::default()
        });
        // A batch larger than the queue: nothing moves to the ring before
        // the flush, so the staging buffer fills up.
        for i in 0..5 {
            store.record(HistoryEntry::new(format!("q{i}"), "r", Duration::ZERO, "t"));
        }
        let stats = store.stats();
        assert_eq!((stats.accepted, stats.dropped), (3, 2));
        store.flush().await.ok();
        assert_eq!(store.stats().written, 3);
    }

    #[tokio::test]
    async fn open_builds_memory_store() {
        let config = crate::store::StoreConfig {
            kind: crate::store::StoreKind::Memory,
            memory_capacity: 7,
            ..Default::default()
        };
        let stores = crate::store::open(&config).await.expect("open");
        let history = super::super::open(&stores.backend, HistoryOptions::default())
            .await
            .expect("history");
        assert_eq!(history.kind(), "memory");
    }
}

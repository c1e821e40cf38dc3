//! Query history of the math agent: what was asked, what was answered and
//! how long it took, searchable for similar earlier queries.
//!
//! # Writes
//!
//! [`HistoryStore::record`] never waits: the SQL backends put the entry on a
//! bounded queue drained by a background task ([`HistoryQueue`]), which
//! writes batches of up to [`HistoryOptions::batch_size`] entries at least
//! every [`HistoryOptions::flush_interval`]. When the queue is full the entry
//! is dropped and counted ([`HistoryStats::dropped`]): history is a
//! convenience and must never slow down or fail a request.
//!
//! # Similarity
//!
//! Every backend ranks by the same measure, so results do not depend on the
//! backend: queries are normalized (lowercased, all whitespace removed, so
//! `2 + 2` and `2+2` are the same query) and compared by the Jaccard index
//! of their character trigram sets, padded like `pg_trgm` does (two spaces
//! before, one after). Entries scoring at least [`SIMILARITY_THRESHOLD`]
//! are returned, best first, newest first among equals. The backends differ
//! only in how they find candidates cheaply (SQLite: FTS5 trigram index;
//! PostgreSQL: `pg_trgm` GiST nearest neighbours; memory: a scan).

use super::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Default number of history rows kept.
pub(crate) const DEFAULT_RETENTION: usize = 100_000;

/// Minimum trigram similarity (0..=1) for [`HistoryStore::similar`].
pub const SIMILARITY_THRESHOLD: f64 = 0.3;

/// Normalized queries longer than this many characters are cut before
/// indexing and comparing, which bounds the cost of a similarity search.
pub(crate) const MAX_NORMALIZED_CHARS: usize = 256;

/// One answered query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The user's query text.
    pub query: String,
    /// The agent's answer.
    pub result: String,
    /// Time the agent took to answer.
    pub processing_time: Duration,
    /// Version of the agent that answered.
    pub agent_version: String,
    /// When the query was answered. The SQL backends store microseconds.
    pub created_at: DateTime<Utc>,
}

impl HistoryEntry {
    /// An entry created now (truncated to microseconds, the precision the SQL
    /// backends keep, so entries read back compare equal).
    pub fn new(
        query: impl Into<String>,
        result: impl Into<String>,
        processing_time: Duration,
        agent_version: impl Into<String>,
    ) -> Self {
        let now = Utc::now();
        let created_at = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        Self {
            query: query.into(),
            result: result.into(),
            processing_time,
            agent_version: agent_version.into(),
            created_at,
        }
    }
}

/// Tuning of a history store.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    /// Maximum rows kept; older rows are pruned (default 100 000).
    pub retention: usize,
    /// Entries waiting to be written before new ones are dropped
    /// (default 10 000).
    pub queue_capacity: usize,
    /// Maximum entries per write (default 256).
    pub batch_size: usize,
    /// Longest time an entry waits in the queue (default 100 ms).
    pub flush_interval: Duration,
    /// Longest time between two prunes while entries are written
    /// (default 60 s). A prune also runs after every 1 000 written entries
    /// and on [`HistoryStore::flush`].
    pub prune_interval: Duration,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        Self {
            retention: DEFAULT_RETENTION,
            queue_capacity: 10_000,
            batch_size: 256,
            flush_interval: Duration::from_millis(100),
            prune_interval: Duration::from_secs(60),
        }
    }
}

/// Counters of a history store since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryStats {
    /// Entries accepted by [`HistoryStore::record`].
    pub accepted: u64,
    /// Entries dropped because the queue was full or the writer had stopped.
    pub dropped: u64,
    /// Entries written to the backend.
    pub written: u64,
    /// Entries lost because their write failed.
    pub failed: u64,
}

/// Where answered queries are kept.
#[async_trait]
pub trait HistoryStore: Send + Sync + 'static {
    /// Queues `entry` for writing and returns at once; drops (and counts) it
    /// when the queue is full.
    fn record(&self, entry: HistoryEntry);
    /// Up to `limit` earlier entries whose query is similar to `query`, most
    /// similar first (see the module docs for the measure). Entries become
    /// visible once their batch is written (at most about
    /// [`HistoryOptions::flush_interval`] after `record`).
    async fn similar(&self, query: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError>;
    /// Writes everything recorded before this call and enforces retention.
    /// Reports a write failure that happened since the previous flush.
    async fn flush(&self) -> Result<(), StoreError>;
    /// Counters since the store was opened.
    fn stats(&self) -> HistoryStats;
    /// A short name for logs and health output (`memory`, `sqlite`, `postgres`).
    fn kind(&self) -> &'static str;
}

// ---------------------------------------------------------------------------
// Similarity
// ---------------------------------------------------------------------------

/// A query's comparable form: lowercase with all whitespace removed, cut to
/// [`MAX_NORMALIZED_CHARS`] characters.
pub(crate) fn normalize(query: &str) -> String {
    query
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .take(MAX_NORMALIZED_CHARS)
        .collect()
}

/// One character trigram.
pub(crate) type Trigram = [char; 3];

/// The sorted, distinct trigrams of a normalized query, padded with two
/// spaces in front and one behind (as `pg_trgm` pads words).
pub(crate) fn trigrams(normalized: &str) -> Vec<Trigram> {
    let padded: Vec<char> = "  "
        .chars()
        .chain(normalized.chars())
        .chain(std::iter::once(' '))
        .collect();
    let mut out: Vec<Trigram> = padded.windows(3).map(|w| [w[0], w[1], w[2]]).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The unpadded trigrams of a normalized query in first-seen order without
/// repeats, as SQLite's FTS5 `trigram` tokenizer indexes them.
pub(crate) fn plain_trigrams(normalized: &str, max: usize) -> Vec<String> {
    let chars: Vec<char> = normalized.chars().collect();
    let mut out: Vec<String> = Vec::new();
    for w in chars.windows(3) {
        let t: String = w.iter().collect();
        if !out.contains(&t) {
            out.push(t);
            if out.len() >= max {
                break;
            }
        }
    }
    out
}

/// Jaccard index of two sorted, distinct trigram sets.
pub(crate) fn jaccard(a: &[Trigram], b: &[Trigram]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - common;
    common as f64 / union as f64
}

/// Scores `candidates` (pairs of insertion sequence and entry, in any order,
/// possibly repeated) against `query` and keeps the best `limit` of those at
/// or above [`SIMILARITY_THRESHOLD`]: highest score first, then newest
/// (highest sequence) first.
pub(crate) fn rank(
    query: &str,
    candidates: Vec<(i64, HistoryEntry)>,
    limit: usize,
) -> Vec<HistoryEntry> {
    let wanted = trigrams(&normalize(query));
    let mut scored: Vec<(f64, i64, HistoryEntry)> = candidates
        .into_iter()
        .filter_map(|(seq, entry)| {
            let score = jaccard(&wanted, &trigrams(&normalize(&entry.query)));
            (score >= SIMILARITY_THRESHOLD).then_some((score, seq, entry))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.truncate(limit);
    scored.into_iter().map(|(_, _, entry)| entry).collect()
}

/// Saturating conversion of a duration to nanoseconds for storage.
pub(crate) fn duration_to_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A stored nanosecond count back to a duration (negative counts read as 0).
pub(crate) fn nanos_to_duration(n: i64) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(0))
}

// ---------------------------------------------------------------------------
// Background batching for the SQL backends
// ---------------------------------------------------------------------------

/// The backend side of a [`HistoryQueue`].
#[async_trait]
pub(crate) trait HistorySink: Send + Sync + 'static {
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
struct Counters {
    accepted: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> HistoryStats {
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
pub(crate) struct HistoryQueue {
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

// ---------------------------------------------------------------------------
// Memory backend
// ---------------------------------------------------------------------------

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

    #[test]
    fn normalization_ignores_case_and_spaces() {
        assert_eq!(normalize("  What IS 2 +\t2 "), "whatis2+2");
        assert_eq!(trigrams(&normalize("2 + 2")), trigrams(&normalize("2+2")));
    }

    #[test]
    fn jaccard_bounds() {
        let a = trigrams("abc");
        assert_eq!(jaccard(&a, &a), 1.0);
        assert_eq!(jaccard(&a, &trigrams("xyz")), 0.0);
        let s = jaccard(&trigrams("integratex^2"), &trigrams("integratex^3"));
        assert!(s > SIMILARITY_THRESHOLD && s < 1.0, "{s}");
    }

    #[test]
    fn plain_trigrams_match_fts() {
        assert_eq!(plain_trigrams("abcab", 10), vec!["abc", "bca", "cab"]);
        assert!(plain_trigrams("ab", 10).is_empty());
        assert_eq!(plain_trigrams("abcdef", 2).len(), 2);
    }

    #[tokio::test]
    async fn memory_history_conformance() {
        super::super::conformance::history_suite(|retention| async move {
            Some(Box::new(MemoryHistoryStore::with_retention(retention)) as Box<dyn HistoryStore>)
        })
        .await;
    }

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
            lock(&self.rows).extend(batch);
            Ok(())
        }

        async fn prune(&self, keep: usize) -> Result<(), StoreError> {
            self.prunes.fetch_add(1, Ordering::SeqCst);
            let mut rows = lock(&self.rows);
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
        let rows = lock(&sink.rows);
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
        assert_eq!(lock(&sink.rows).len(), 1);
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
}

//! Query history of the math agent: what was asked, what was answered and
//! how long it took, searchable for similar earlier queries.
//!
//! # Writes
//!
//! [`HistoryStore::record`] never waits: the SQL backends put the entry on a
//! bounded queue drained by a background task, which
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

//!
//! # Storage
//!
//! The history is the math agent's own store, kept in the framework's
//! database when there is one: [`open`] takes the [`Backend`] the task
//! store was opened on and creates the history tables next to the tasks.
//! On SQLite the history shares the database's writer thread (its batches
//! join the task saves' group commits); on PostgreSQL, its pool.
//!
//! ```
//! use abacus::math::history::{self, HistoryEntry, HistoryOptions};
//! use abacus::store::{StoreConfig, StoreKind};
//! use std::time::Duration;
//!
//! # async fn demo() -> Result<(), abacus::store::StoreError> {
//! let config = StoreConfig { kind: StoreKind::Memory, ..StoreConfig::default() };
//! let stores = abacus::store::open(&config).await?;
//! let history = history::open(&stores.backend, HistoryOptions::default()).await?;
//! history.record(HistoryEntry::new("2 + 2", "4", Duration::from_millis(1), "0.1.0"));
//! history.flush().await?;
//! assert_eq!(history.similar("2+2", 5).await?[0].result, "4");
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

mod memory;
mod postgres;
mod queue;
mod similarity;
mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

pub use memory::MemoryHistoryStore;
pub use postgres::PostgresHistoryStore;
pub use sqlite::SqliteHistoryStore;

use crate::store::{Backend, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// Default number of history rows kept (`--history-retention`).
pub const DEFAULT_RETENTION: usize = crate::config::defaults::HISTORY_RETENTION;

/// Minimum trigram similarity (0..=1) for [`HistoryStore::similar`].
pub const SIMILARITY_THRESHOLD: f64 = 0.3;

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

/// The history store for the database the task store was opened on: in the
/// same SQLite file or PostgreSQL database (tables created or migrated
/// first), or in memory for the memory backend. Must be called inside a
/// Tokio runtime (the SQL stores' batching task is spawned there).
pub async fn open(
    backend: &Backend,
    options: HistoryOptions,
) -> Result<Arc<dyn HistoryStore>, StoreError> {
    Ok(match backend {
        Backend::Memory => Arc::new(MemoryHistoryStore::with_options(options)),
        Backend::Sqlite(db) => Arc::new(SqliteHistoryStore::open(db, options).await?),
        Backend::Postgres(db) => Arc::new(PostgresHistoryStore::open(db, options).await?),
    })
}

//! Query history in SQLite.

use super::writer::{HistoryRow, WriteOp, Writer};
use super::{backend, ReadPool};
use crate::store::history::{
    duration_to_nanos, nanos_to_duration, normalize, plain_trigrams, rank, HistoryEntry,
    HistoryQueue, HistorySink, HistoryStats, HistoryStore,
};
use crate::store::StoreError;
use async_trait::async_trait;
use chrono::DateTime;
use rusqlite::params;
use std::sync::Arc;

/// Candidates fetched from the FTS index per similarity search, at most.
const MAX_CANDIDATES: usize = 500;
/// Trigrams of the query used for the FTS search, at most.
const MAX_QUERY_TRIGRAMS: usize = 32;

// ---------------------------------------------------------------------------
// History store
// ---------------------------------------------------------------------------

pub(super) struct SqliteHistorySink {
    pub writer: Writer,
}

#[async_trait]
impl HistorySink for SqliteHistorySink {
    async fn write(&self, batch: Vec<HistoryEntry>) -> Result<(), StoreError> {
        let rows = batch
            .into_iter()
            .map(|e| HistoryRow {
                norm: normalize(&e.query),
                query: e.query,
                result: e.result,
                processing_ns: duration_to_nanos(e.processing_time),
                agent_version: e.agent_version,
                created_us: e.created_at.timestamp_micros(),
            })
            .collect();
        self.writer.submit(WriteOp::InsertHistory(rows)).await
    }

    async fn prune(&self, keep: usize) -> Result<(), StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.writer.submit(WriteOp::PruneHistory { keep }).await
    }
}

/// Query history in the SQLite file of a [`SqliteTaskStore`](super::SqliteTaskStore)
/// (see [`SqliteTaskStore::history_store`](super::SqliteTaskStore::history_store)).
///
/// Similar queries are found with an FTS5 index using the `trigram`
/// tokenizer (compiled into the bundled SQLite) over the normalized query:
/// the query's trigrams are OR-ed, the best 500 candidates by bm25 plus
/// exact matches (needed for queries shorter than three characters, which
/// have no FTS trigram) are then ranked by trigram similarity.
pub struct SqliteHistoryStore {
    pub(super) queue: HistoryQueue,
    pub(super) readers: Arc<ReadPool>,
}

impl std::fmt::Debug for SqliteHistoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteHistoryStore")
            .field("path", &self.readers.path)
            .field("queue", &self.queue)
            .finish()
    }
}

fn history_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, HistoryEntry)> {
    let created_us: i64 = r.get(5)?;
    let created_at = DateTime::from_timestamp_micros(created_us).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            5,
            rusqlite::types::Type::Integer,
            format!("timestamp {created_us} out of range").into(),
        )
    })?;
    Ok((
        r.get(0)?,
        HistoryEntry {
            query: r.get(1)?,
            result: r.get(2)?,
            processing_time: nanos_to_duration(r.get(3)?),
            agent_version: r.get(4)?,
            created_at,
        },
    ))
}

#[async_trait]
impl HistoryStore for SqliteHistoryStore {
    fn record(&self, entry: HistoryEntry) {
        self.queue.record(entry);
    }

    async fn similar(&self, query: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let norm = normalize(query);
        // FTS5 reads its query as a C string: leave out trigrams with NUL
        // (the exact-match lookup below still finds such queries).
        let fts_query = plain_trigrams(&norm, MAX_QUERY_TRIGRAMS)
            .iter()
            .filter(|t| !t.contains('\0'))
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" OR ");
        let want = i64::try_from(limit.saturating_mul(10).clamp(50, MAX_CANDIDATES)).unwrap_or(50);
        let candidates = self
            .readers
            .run(move |conn| {
                const COLUMNS: &str = "h.id, h.query, h.result, h.processing_ns, \
                                       h.agent_version, h.created_us";
                let mut out = Vec::new();
                if !fts_query.is_empty() {
                    let mut stmt = conn
                        .prepare_cached(&format!(
                            "SELECT {COLUMNS} FROM history_fts
                             JOIN history h ON h.id = history_fts.rowid
                             WHERE history_fts MATCH ?1
                             ORDER BY history_fts.rank LIMIT ?2"
                        ))
                        .map_err(|e| backend("prepare similar", e))?;
                    let rows = stmt
                        .query_map(params![fts_query, want], history_row)
                        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                        .map_err(|e| backend("similar", e))?;
                    out.extend(rows);
                }
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM history h WHERE h.norm = ?1
                         ORDER BY h.id DESC LIMIT ?2"
                    ))
                    .map_err(|e| backend("prepare similar", e))?;
                let rows = stmt
                    .query_map(params![norm, want], history_row)
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| backend("similar", e))?;
                out.extend(rows);
                Ok(out)
            })
            .await?;
        Ok(rank(query, candidates, limit))
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.queue.flush().await
    }

    fn stats(&self) -> HistoryStats {
        self.queue.stats()
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

//! Query history in PostgreSQL.

use super::{pg, pool_err};
use crate::store::history::{
    duration_to_nanos, nanos_to_duration, normalize, rank, HistoryEntry, HistoryQueue, HistorySink,
    HistoryStats, HistoryStore,
};
use crate::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

/// Candidates fetched per similarity search, at most.
const MAX_CANDIDATES: i64 = 500;
/// Newest rows considered by the fallback similarity search.
const RECENT_WINDOW: i64 = 1_000;

/// PostgreSQL text cannot contain NUL.
fn no_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{fffd}")
    } else {
        s
    }
}

pub(super) struct PostgresHistorySink {
    pub pool: Pool,
}

#[async_trait]
impl HistorySink for PostgresHistorySink {
    async fn write(&self, batch: Vec<HistoryEntry>) -> Result<(), StoreError> {
        let n = batch.len();
        let (mut query, mut norm, mut result, mut nanos, mut version, mut created) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for e in batch {
            let q = no_nul(e.query);
            norm.push(normalize(&q));
            query.push(q);
            result.push(no_nul(e.result));
            nanos.push(duration_to_nanos(e.processing_time));
            version.push(no_nul(e.agent_version));
            created.push(e.created_at);
        }
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO history
                    (query, norm, result, processing_ns, agent_version, created_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[],
                                      $4::int8[], $5::text[], $6::timestamptz[])",
            )
            .await
            .map_err(|e| pg("prepare history insert", e))?;
        client
            .execute(&stmt, &[&query, &norm, &result, &nanos, &version, &created])
            .await
            .map_err(|e| pg("insert history", e))?;
        Ok(())
    }

    async fn prune(&self, keep: usize) -> Result<(), StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let client = self.pool.get().await.map_err(pool_err)?;
        client
            .execute(
                "DELETE FROM history WHERE id <= (
                    SELECT id FROM history ORDER BY id DESC OFFSET $1 LIMIT 1
                 )",
                &[&keep],
            )
            .await
            .map_err(|e| pg("prune history", e))?;
        Ok(())
    }
}

/// Query history in the database of a [`PostgresTaskStore`](super::PostgresTaskStore)
/// (see [`PostgresTaskStore::history_store`](super::PostgresTaskStore::history_store) and the module docs).
pub struct PostgresHistoryStore {
    pub(super) queue: HistoryQueue,
    pub(super) pool: Pool,
    pub(super) trigram: bool,
}

impl std::fmt::Debug for PostgresHistoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresHistoryStore")
            .field("trigram", &self.trigram)
            .field("queue", &self.queue)
            .finish()
    }
}

impl PostgresHistoryStore {
    #[cfg(test)]
    pub(super) fn without_trigram(mut self) -> Self {
        self.trigram = false;
        self
    }
}

const HISTORY_COLUMNS: &str = "id, query, result, processing_ns, agent_version, created_at";

#[async_trait]
impl HistoryStore for PostgresHistoryStore {
    fn record(&self, entry: HistoryEntry) {
        self.queue.record(entry);
    }

    async fn similar(&self, query: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let norm = normalize(&no_nul(query.to_string()));
        let want = i64::try_from(limit.saturating_mul(10))
            .unwrap_or(i64::MAX)
            .clamp(50, MAX_CANDIDATES);
        let client = self.pool.get().await.map_err(pool_err)?;
        let rows = if self.trigram {
            let stmt = client
                .prepare_cached(&format!(
                    "(SELECT {HISTORY_COLUMNS} FROM history
                      ORDER BY norm <-> $1::text LIMIT $2)
                     UNION
                     (SELECT {HISTORY_COLUMNS} FROM history WHERE norm = $1::text
                      ORDER BY id DESC LIMIT $2)"
                ))
                .await
                .map_err(|e| pg("prepare similar", e))?;
            client
                .query(&stmt, &[&norm, &want])
                .await
                .map_err(|e| pg("similar", e))?
        } else {
            let prefix: String = norm.chars().take(3).collect();
            let stmt = client
                .prepare_cached(&format!(
                    "(SELECT {HISTORY_COLUMNS} FROM history WHERE left(norm, 3) = $1::text
                      ORDER BY id DESC LIMIT $2)
                     UNION
                     (SELECT {HISTORY_COLUMNS} FROM history ORDER BY id DESC LIMIT $3)
                     UNION
                     (SELECT {HISTORY_COLUMNS} FROM history WHERE norm = $4::text
                      ORDER BY id DESC LIMIT $2)"
                ))
                .await
                .map_err(|e| pg("prepare similar", e))?;
            client
                .query(&stmt, &[&prefix, &want, &RECENT_WINDOW, &norm])
                .await
                .map_err(|e| pg("similar", e))?
        };
        drop(client);
        let mut candidates = Vec::with_capacity(rows.len());
        for row in &rows {
            let decoded = (|| -> Result<(i64, HistoryEntry), tokio_postgres::Error> {
                let created_at: DateTime<Utc> = row.try_get(5)?;
                Ok((
                    row.try_get(0)?,
                    HistoryEntry {
                        query: row.try_get(1)?,
                        result: row.try_get(2)?,
                        processing_time: nanos_to_duration(row.try_get(3)?),
                        agent_version: row.try_get(4)?,
                        created_at,
                    },
                ))
            })();
            candidates.push(decoded.map_err(|e| StoreError::Corrupt(format!("history row: {e}")))?);
        }
        Ok(rank(query, candidates, limit))
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.queue.flush().await
    }

    fn stats(&self) -> HistoryStats {
        self.queue.stats()
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}

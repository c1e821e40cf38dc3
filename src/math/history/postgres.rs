//! Query history in PostgreSQL.
//!
//! Similarity uses `pg_trgm` when the extension exists or can be created
//! (it is a trusted extension since PostgreSQL 13, so a database owner can
//! create it): a GiST trigram index serves nearest-neighbour candidates
//! (`ORDER BY norm <-> $1`). Without it, candidates are the rows sharing the
//! first three characters of the normalized query (an expression index on
//! `left(norm, 3)`), the 1 000 newest rows and exact matches. Either way the
//! candidates are ranked by the backend-independent similarity of
//! [`super`]. PostgreSQL text cannot hold NUL characters, so
//! history strings are stored with NUL replaced by U+FFFD.

use super::queue::{sql_history_store, HistoryQueue, HistorySink, SqlHistory};
use super::similarity::{duration_to_nanos, nanos_to_duration, normalize};
use super::{HistoryEntry, HistoryOptions};
use crate::store::{Migration, Migrations, PostgresDatabase, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

/// Newest rows considered by the fallback similarity search.
const RECENT_WINDOW: i64 = 1_000;

/// The history table. Numbered as in the single version list of earlier
/// builds, which this schema adopts.
const SCHEMA: Migrations<'static> = Migrations::new(
    "math_history",
    &[Migration {
        version: 2,
        sql: "CREATE TABLE history (
            id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            query          TEXT NOT NULL,
            norm           TEXT NOT NULL,
            result         TEXT NOT NULL,
            processing_ns  BIGINT NOT NULL,
            agent_version  TEXT NOT NULL,
            created_at     TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX history_by_norm ON history (norm);
        CREATE INDEX history_by_prefix ON history (left(norm, 3));",
    }],
)
.adopting(&[2]);

/// Applies the history schema and sets up trigram search, in one
/// transaction under the migration lock; returns whether `pg_trgm` is
/// usable.
async fn migrate(db: &PostgresDatabase) -> Result<bool, StoreError> {
    let mut client = db.client().await?;
    let mut tx = client
        .transaction()
        .await
        .map_err(|e| StoreError::postgres("begin migration", e))?;
    PostgresDatabase::migrate_in(&tx, &SCHEMA).await?;
    // Trigram search is optional: try inside savepoints so a refusal (no
    // permission, extension not installed) leaves the migration intact.
    let create_ext = if db.schema().is_some() {
        // Keep the extension out of a private schema that may be dropped.
        "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"
    } else {
        "CREATE EXTENSION IF NOT EXISTS pg_trgm"
    };
    let mut trigram = false;
    {
        let sp = tx
            .savepoint("trgm")
            .await
            .map_err(|e| StoreError::postgres("savepoint", e))?;
        // IF NOT EXISTS succeeds without privileges when it is installed.
        let created = sp.batch_execute(create_ext).await;
        if let Err(e) = &created {
            tracing::debug!(error = %e, "cannot create pg_trgm");
        }
        if created.is_ok() {
            match sp
                .batch_execute(
                    "CREATE INDEX IF NOT EXISTS history_norm_trgm
                     ON history USING gist (norm gist_trgm_ops)",
                )
                .await
            {
                Ok(()) => {
                    sp.commit()
                        .await
                        .map_err(|e| StoreError::postgres("release savepoint", e))?;
                    trigram = true;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "no trigram index");
                    sp.rollback()
                        .await
                        .map_err(|e| StoreError::postgres("rollback savepoint", e))?;
                }
            }
        } else {
            sp.rollback()
                .await
                .map_err(|e| StoreError::postgres("rollback savepoint", e))?;
        }
    }
    tx.commit()
        .await
        .map_err(|e| StoreError::postgres("commit migration", e))?;
    Ok(trigram)
}

/// PostgreSQL text cannot contain NUL.
fn no_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{fffd}")
    } else {
        s
    }
}

struct PostgresHistorySink {
    db: PostgresDatabase,
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
        let client = self.db.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO history
                    (query, norm, result, processing_ns, agent_version, created_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[],
                                      $4::int8[], $5::text[], $6::timestamptz[])",
            )
            .await
            .map_err(|e| StoreError::postgres("prepare history insert", e))?;
        client
            .execute(&stmt, &[&query, &norm, &result, &nanos, &version, &created])
            .await
            .map_err(|e| StoreError::postgres("insert history", e))?;
        Ok(())
    }

    async fn prune(&self, keep: usize) -> Result<(), StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let client = self.db.client().await?;
        client
            .execute(
                "DELETE FROM history WHERE id <= (
                    SELECT id FROM history ORDER BY id DESC OFFSET $1 LIMIT 1
                 )",
                &[&keep],
            )
            .await
            .map_err(|e| StoreError::postgres("prune history", e))?;
        Ok(())
    }
}

/// Query history in the table `history` of a [`PostgresDatabase`] (see the
/// module docs for how similar queries are found).
pub struct PostgresHistoryStore {
    queue: HistoryQueue,
    db: PostgresDatabase,
    trigram: bool,
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
    /// Creates or migrates the history table in `db` and starts the
    /// batching task on the current Tokio runtime.
    pub async fn open(db: &PostgresDatabase, options: HistoryOptions) -> Result<Self, StoreError> {
        let trigram = migrate(db).await?;
        if !trigram {
            tracing::info!("pg_trgm unavailable; history similarity uses prefix and recency");
        }
        let sink = std::sync::Arc::new(PostgresHistorySink { db: db.clone() });
        Ok(Self {
            queue: HistoryQueue::start(sink, &options)?,
            db: db.clone(),
            trigram,
        })
    }

    /// Whether similarity search uses `pg_trgm`.
    pub fn has_trigram(&self) -> bool {
        self.trigram
    }

    #[cfg(test)]
    pub(super) fn without_trigram(mut self) -> Self {
        self.trigram = false;
        self
    }
}

const HISTORY_COLUMNS: &str = "id, query, result, processing_ns, agent_version, created_at";

sql_history_store!(PostgresHistoryStore, "postgres");

#[async_trait]
impl SqlHistory for PostgresHistoryStore {
    async fn candidates(
        &self,
        query: &str,
        want: i64,
    ) -> Result<Vec<(i64, HistoryEntry)>, StoreError> {
        let norm = normalize(&no_nul(query.to_string()));
        let prefix: String;
        let (sql, params): (String, Vec<&(dyn ToSql + Sync)>) = if self.trigram {
            let sql = format!(
                "(SELECT {HISTORY_COLUMNS} FROM history
                  ORDER BY norm <-> $1::text LIMIT $2)
                 UNION
                 (SELECT {HISTORY_COLUMNS} FROM history WHERE norm = $1::text
                  ORDER BY id DESC LIMIT $2)"
            );
            (sql, vec![&norm, &want])
        } else {
            prefix = norm.chars().take(3).collect();
            let sql = format!(
                "(SELECT {HISTORY_COLUMNS} FROM history WHERE left(norm, 3) = $1::text
                  ORDER BY id DESC LIMIT $2)
                 UNION
                 (SELECT {HISTORY_COLUMNS} FROM history ORDER BY id DESC LIMIT $3)
                 UNION
                 (SELECT {HISTORY_COLUMNS} FROM history WHERE norm = $4::text
                  ORDER BY id DESC LIMIT $2)"
            );
            (sql, vec![&prefix, &want, &RECENT_WINDOW, &norm])
        };
        let client = self.db.client().await?;
        let stmt = client
            .prepare_cached(&sql)
            .await
            .map_err(|e| StoreError::postgres("prepare similar", e))?;
        let rows = client
            .query(&stmt, &params)
            .await
            .map_err(|e| StoreError::postgres("similar", e))?;
        drop(client);
        rows.iter()
            .map(|row| {
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
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| StoreError::Corrupt(format!("history row: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::history::{HistoryStats, HistoryStore};
    use crate::store::pg_testing::{
        connect_in_schema, database_url, futures_join_all, versions, SchemaGuard,
    };
    use crate::store::{Backend, PostgresTaskStore, StoreConfig};

    /// A history store that keeps its schema alive.
    struct Guarded {
        inner: PostgresHistoryStore,
        _store: PostgresTaskStore,
        _guard: SchemaGuard,
    }

    #[async_trait]
    impl HistoryStore for Guarded {
        fn record(&self, entry: HistoryEntry) {
            self.inner.record(entry);
        }
        async fn similar(&self, q: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
            self.inner.similar(q, limit).await
        }
        async fn flush(&self) -> Result<(), StoreError> {
            self.inner.flush().await
        }
        fn stats(&self) -> HistoryStats {
            self.inner.stats()
        }
        fn kind(&self) -> &'static str {
            self.inner.kind()
        }
    }

    async fn history_suite(trigram: bool) {
        let Some(url) = database_url() else {
            return;
        };
        super::super::conformance::history_suite(|retention| {
            let url = url.clone();
            async move {
                let (store, guard) = connect_in_schema(&url).await;
                let options = HistoryOptions {
                    retention,
                    ..HistoryOptions::default()
                };
                let mut history = PostgresHistoryStore::open(store.database(), options)
                    .await
                    .expect("history store");
                assert!(history.has_trigram(), "pg_trgm should be available in CI");
                if !trigram {
                    history = history.without_trigram();
                }
                Some(Box::new(Guarded {
                    inner: history,
                    _store: store,
                    _guard: guard,
                }) as Box<dyn HistoryStore>)
            }
        })
        .await;
    }

    #[tokio::test]
    async fn history_conformance_trigram() {
        history_suite(true).await;
    }

    #[tokio::test]
    async fn history_conformance_fallback() {
        history_suite(false).await;
    }

    #[tokio::test]
    async fn history_migrations_run_once_and_concurrently() {
        let Some(url) = database_url() else {
            return;
        };
        let (store, _guard) = connect_in_schema(&url).await;
        let opens = (0..4).map(|_| {
            let db = store.database().clone();
            async move { PostgresHistoryStore::open(&db, HistoryOptions::default()).await }
        });
        for h in futures_join_all(opens).await {
            assert!(h.expect("history store").has_trigram());
        }
        assert_eq!(versions(store.database(), "math_history").await, [2]);
    }

    #[tokio::test]
    async fn open_follows_the_postgres_backend() {
        let Some(url) = database_url() else {
            return;
        };
        let config = StoreConfig {
            database_url: Some(url),
            ..Default::default()
        };
        let stores = crate::store::open(&config).await.expect("open");
        assert!(matches!(stores.backend, Backend::Postgres(_)));
        let history = super::super::open(&stores.backend, HistoryOptions::default())
            .await
            .expect("history");
        assert_eq!(history.kind(), "postgres");
    }
}

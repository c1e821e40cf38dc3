//! Query history in SQLite.

use super::queue::{sql_history_store, HistoryQueue, HistorySink, SqlHistory};
use super::similarity::{duration_to_nanos, nanos_to_duration, normalize, plain_trigrams};
use super::{HistoryEntry, HistoryOptions};
use crate::store::{Migration, Migrations, SqliteDatabase, StoreError};
use async_trait::async_trait;
use chrono::DateTime;
use rusqlite::{params, Connection};
use std::sync::Arc;

/// Trigrams of the query used for the FTS search, at most.
const MAX_QUERY_TRIGRAMS: usize = 32;

/// The history tables. Numbered as in the single version list of earlier
/// builds, which this schema adopts.
const SCHEMA: Migrations<'static> = Migrations::new(
    "math_history",
    &[
        Migration {
            version: 2,
            sql: "CREATE TABLE history (
                id             INTEGER PRIMARY KEY,
                query          TEXT NOT NULL,
                norm           TEXT NOT NULL,
                result         TEXT NOT NULL,
                processing_ns  INTEGER NOT NULL,
                agent_version  TEXT NOT NULL,
                created_us     INTEGER NOT NULL
            );
            CREATE INDEX history_by_norm ON history (norm);
            CREATE VIRTUAL TABLE history_fts USING fts5(
                norm, content='history', content_rowid='id', tokenize='trigram'
            );
            CREATE TRIGGER history_fts_insert AFTER INSERT ON history BEGIN
                INSERT INTO history_fts (rowid, norm) VALUES (new.id, new.norm);
            END;
            CREATE TRIGGER history_fts_delete AFTER DELETE ON history BEGIN
                INSERT INTO history_fts (history_fts, rowid, norm)
                    VALUES ('delete', old.id, old.norm);
            END;",
        },
        Migration {
            version: 3,
            // Rows are indexed per batch (one FTS5 segment per batch instead
            // of one per row; see `insert_history`).
            sql: "DROP TRIGGER history_fts_insert;",
        },
    ],
)
.adopting(&[2, 3]);

/// A history entry as the insert binds it.
struct HistoryRow {
    query: String,
    norm: String,
    result: String,
    processing_ns: i64,
    agent_version: String,
    created_us: i64,
}

/// Writes through the database's writer thread, in its group commits.
struct SqliteHistorySink {
    db: SqliteDatabase,
}

#[async_trait]
impl HistorySink for SqliteHistorySink {
    async fn write(&self, batch: Vec<HistoryEntry>) -> Result<(), StoreError> {
        let rows: Vec<HistoryRow> = batch
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
        self.db.write(move |conn| insert_history(conn, &rows)).await
    }

    async fn prune(&self, keep: usize) -> Result<(), StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.db
            .write(move |conn| {
                // Ids are rowids, assigned max + 1 and only ever deleted from
                // the oldest end, so the newest `keep` rows are those above
                // max - keep: two index seeks instead of walking `keep` rows
                // (which ran every 1000 inserts).
                conn.execute(
                    "DELETE FROM history WHERE id <= (SELECT max(id) FROM history) - ?1",
                    params![keep],
                )
                .map_err(|e| StoreError::sqlite("prune history", e))?;
                Ok(())
            })
            .await
    }
}

/// Inserts a batch of history rows, then adds them to the FTS index with
/// one statement. FTS5 writes its pending index to disk at every statement
/// that touches it, so indexing row by row (a trigger) made one segment per
/// row and then merged them: a fifth of the CPU when every query is new.
/// A batch that fails at row k keeps (and indexes) rows 0..k, which is
/// harmless for a log.
fn insert_history(conn: &Connection, rows: &[HistoryRow]) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO history
                (query, norm, result, processing_ns, agent_version, created_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(|e| StoreError::sqlite("prepare history insert", e))?;
    let mut inserted: Option<(i64, i64)> = None;
    let mut result = Ok(());
    for r in rows {
        let done = stmt.execute(params![
            r.query,
            r.norm,
            r.result,
            r.processing_ns,
            r.agent_version,
            r.created_us
        ]);
        if let Err(e) = done {
            result = Err(StoreError::sqlite("insert history", e));
            break;
        }
        let id = conn.last_insert_rowid();
        inserted = Some(inserted.map_or((id, id), |(first, _)| (first, id)));
    }
    // Index whatever was inserted, even after a failure: the delete trigger
    // (retention) expects every row in the index.
    if let Some((first, last)) = inserted {
        conn.prepare_cached(
            "INSERT INTO history_fts (rowid, norm)
             SELECT id, norm FROM history WHERE id BETWEEN ?1 AND ?2",
        )
        .and_then(|mut st| st.execute(params![first, last]))
        .map_err(|e| StoreError::sqlite("index history", e))?;
    }
    result
}

/// Query history in the tables `history` and `history_fts` of a
/// [`SqliteDatabase`], written through its writer thread.
///
/// Similar queries are found with an FTS5 index using the `trigram`
/// tokenizer (compiled into the bundled SQLite) over the normalized query:
/// the query's trigrams are OR-ed, the best 500 candidates by bm25 plus
/// exact matches (needed for queries shorter than three characters, which
/// have no FTS trigram) are then ranked by trigram similarity.
pub struct SqliteHistoryStore {
    queue: HistoryQueue,
    db: SqliteDatabase,
}

impl std::fmt::Debug for SqliteHistoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteHistoryStore")
            .field("path", &self.db.path())
            .field("queue", &self.queue)
            .finish()
    }
}

impl SqliteHistoryStore {
    /// Creates or migrates the history tables in `db` and starts the
    /// batching task on the current Tokio runtime.
    pub async fn open(db: &SqliteDatabase, options: HistoryOptions) -> Result<Self, StoreError> {
        db.migrate(SCHEMA).await?;
        let sink = Arc::new(SqliteHistorySink { db: db.clone() });
        Ok(Self {
            queue: HistoryQueue::start(sink, &options)?,
            db: db.clone(),
        })
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

/// The columns [`history_row`] reads.
const COLUMNS: &str = "h.id, h.query, h.result, h.processing_ns, h.agent_version, h.created_us";

sql_history_store!(SqliteHistoryStore, "sqlite");

/// Newest history rows ranked for similarity (see `candidates`).
const SIMILAR_WINDOW: i64 = 5_000;

#[async_trait]
impl SqlHistory for SqliteHistoryStore {
    async fn candidates(
        &self,
        query: &str,
        want: i64,
    ) -> Result<Vec<(i64, HistoryEntry)>, StoreError> {
        let norm = normalize(query);
        // FTS5 reads its query as a C string: leave out trigrams with NUL
        // (the exact-match lookup below still finds such queries).
        let fts_query = plain_trigrams(&norm, MAX_QUERY_TRIGRAMS)
            .iter()
            .filter(|t| !t.contains('\0'))
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" OR ");
        self.db
            .read(move |conn| {
                let sqlite = |e| StoreError::sqlite("similar", e);
                let mut out = Vec::new();
                if !fts_query.is_empty() {
                    // Ranking reads every matching row: only the newest
                    // SIMILAR_WINDOW rows are ranked, so the cost stays flat
                    // as the history grows (FTS5 bounds the rowid itself).
                    let newest: i64 = conn
                        .query_row("SELECT IFNULL(MAX(id), 0) FROM history", [], |r| r.get(0))
                        .map_err(sqlite)?;
                    let mut stmt = conn
                        .prepare_cached(&format!(
                            "SELECT {COLUMNS} FROM history_fts
                             JOIN history h ON h.id = history_fts.rowid
                             WHERE history_fts MATCH ?1 AND history_fts.rowid > ?3
                             ORDER BY history_fts.rank LIMIT ?2"
                        ))
                        .map_err(sqlite)?;
                    let after = newest - SIMILAR_WINDOW;
                    let rows = stmt
                        .query_map(params![fts_query, want, after], history_row)
                        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                        .map_err(sqlite)?;
                    out.extend(rows);
                }
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM history h WHERE h.norm = ?1
                         ORDER BY h.id DESC LIMIT ?2"
                    ))
                    .map_err(sqlite)?;
                let rows = stmt
                    .query_map(params![norm, want], history_row)
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(sqlite)?;
                out.extend(rows);
                Ok(out)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::history::{HistoryEntry, HistoryStore};
    use crate::store::conformance::task;
    use crate::store::{Backend, SqliteTaskStore, StoreConfig, StoreKind, TaskOwner, TaskStore};
    use std::time::Duration;

    /// The recorded versions of the history schema.
    fn versions(conn: &Connection) -> Vec<i64> {
        conn.prepare(
            "SELECT version FROM schema_versions WHERE component = 'math_history' ORDER BY version",
        )
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("versions")
    }

    #[tokio::test]
    async fn history_conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abacus.db");
        super::super::conformance::history_suite(|retention| {
            let path = path.clone();
            async move {
                // A new file per call: the suite checks retention from empty.
                let path = path.with_extension(format!("{retention}.db"));
                let store = SqliteTaskStore::open(path).await.expect("open");
                let options = HistoryOptions {
                    retention,
                    ..HistoryOptions::default()
                };
                let history = SqliteHistoryStore::open(store.database(), options)
                    .await
                    .expect("history store");
                Some(Box::new(history) as Box<dyn HistoryStore>)
            }
        })
        .await;
    }

    #[tokio::test]
    async fn reopen_keeps_tasks_and_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abacus.db");
        let mut saved = Vec::new();
        {
            let store = SqliteTaskStore::open(&path).await.expect("open");
            let history = SqliteHistoryStore::open(store.database(), HistoryOptions::default())
                .await
                .expect("history");
            for i in 0..5 {
                let t = task(&format!("reopen-{i}"), "ctx", a2a::TaskState::Completed, i);
                store.save(&t, &TaskOwner::anonymous()).await.expect("save");
                saved.push(t);
            }
            history.record(HistoryEntry::new("2+2", "4", Duration::from_millis(3), "t"));
            history.flush().await.expect("flush");
        }
        let store = SqliteTaskStore::open(&path).await.expect("reopen");
        for t in &saved {
            assert_eq!(
                store
                    .get(&t.id, &TaskOwner::anonymous())
                    .await
                    .expect("get")
                    .as_ref(),
                Some(t)
            );
        }
        let history = SqliteHistoryStore::open(store.database(), HistoryOptions::default())
            .await
            .expect("history");
        let hits = history.similar("2 + 2", 5).await.expect("similar");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].result, "4");
    }

    #[tokio::test]
    async fn history_migrations_are_recorded_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abacus.db");
        for _ in 0..2 {
            let store = SqliteTaskStore::open(&path).await.expect("open");
            SqliteHistoryStore::open(store.database(), HistoryOptions::default())
                .await
                .expect("history");
        }
        let conn = Connection::open(&path).expect("open raw");
        assert_eq!(versions(&conn), [2, 3]);
    }

    /// A file written by a build that kept one version list for every
    /// component: the history adopts its versions and runs nothing again
    /// (which would fail: the tables exist), and its rows are still found.
    #[tokio::test]
    async fn legacy_version_list_is_adopted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abacus.db");
        {
            let store = SqliteTaskStore::open(&path).await.expect("open");
            let history = SqliteHistoryStore::open(store.database(), HistoryOptions::default())
                .await
                .expect("history");
            history.record(HistoryEntry::new(
                "7*6",
                "42",
                Duration::from_millis(1),
                "t",
            ));
            history.flush().await.expect("flush");
        }
        // Turn the file back into an old one: the single version list, and
        // the task table before its owner columns (and the event log).
        Connection::open(&path)
            .and_then(|c| {
                c.execute_batch(
                    "DROP TABLE task_events;
                     DROP INDEX tasks_by_lease_until;
                     DROP INDEX tasks_by_lease_owner;
                     ALTER TABLE tasks DROP COLUMN seq;
                     ALTER TABLE tasks DROP COLUMN lease_owner;
                     ALTER TABLE tasks DROP COLUMN lease_until;
                     DROP INDEX tasks_by_owner;
                     ALTER TABLE tasks DROP COLUMN owner;
                     ALTER TABLE tasks DROP COLUMN tenant;
                     CREATE INDEX tasks_by_status ON tasks (status_ts DESC, id);
                     DROP TABLE schema_versions;
                     CREATE TABLE schema_migrations (
                         version INTEGER PRIMARY KEY, applied_us INTEGER NOT NULL
                     );
                     INSERT INTO schema_migrations VALUES (1, 0), (2, 0), (3, 0);",
                )
            })
            .expect("legacy ledger");
        let store = SqliteTaskStore::open(&path)
            .await
            .expect("open legacy file");
        let history = SqliteHistoryStore::open(store.database(), HistoryOptions::default())
            .await
            .expect("history on a legacy file");
        let hits = history.similar("7 * 6", 5).await.expect("similar");
        assert_eq!(hits.len(), 1);
        drop((history, store));
        let conn = Connection::open(&path).expect("open raw");
        assert_eq!(versions(&conn), [2, 3]);
    }

    #[tokio::test]
    async fn open_follows_the_sqlite_backend() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = StoreConfig {
            kind: StoreKind::Sqlite,
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let stores = crate::store::open(&config).await.expect("open");
        assert!(matches!(stores.backend, Backend::Sqlite(_)));
        let history = super::super::open(&stores.backend, HistoryOptions::default())
            .await
            .expect("history");
        assert_eq!(history.kind(), "sqlite");
    }
}

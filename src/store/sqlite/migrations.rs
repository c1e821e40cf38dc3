//! The SQLite schema and how it is applied.

use super::backend;
use super::StoreError;
use chrono::Utc;
use rusqlite::{params, Connection};

/// Versioned schema changes, applied in order at open. Never edit an entry
/// that has shipped; append a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE tasks (
            id          TEXT PRIMARY KEY NOT NULL,
            context_id  TEXT NOT NULL,
            state       TEXT NOT NULL,
            status_ts   INTEGER NOT NULL, -- ns since epoch; i64::MIN = none
            updated_us  INTEGER NOT NULL, -- wall clock of the last save
            doc         TEXT NOT NULL     -- the task as JSON
        );
        CREATE INDEX tasks_by_status ON tasks (status_ts DESC, id);
        CREATE INDEX tasks_by_context ON tasks (context_id, status_ts DESC, id);
        CREATE INDEX tasks_by_state ON tasks (state, status_ts DESC, id);",
    ),
    (
        2,
        "CREATE TABLE history (
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
    ),
    (
        3,
        // Rows are indexed per batch by the writer (one FTS5 segment per
        // batch instead of one per row; see `insert_history`).
        "DROP TRIGGER history_fts_insert;",
    ),
];

/// Applies the migrations this build knows and the file lacks, in one
/// `IMMEDIATE` transaction (so two processes opening a new file at once do
/// not both migrate it).
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     INTEGER PRIMARY KEY,
            applied_us  INTEGER NOT NULL
        )",
    )
    .map_err(|e| backend("create schema_migrations", e))?;
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| backend("begin migration", e))?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(|e| backend("read schema version", e))?;
    if current > latest {
        return Err(StoreError::Backend(format!(
            "sqlite: schema version {current} is newer than this build supports ({latest})"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.execute_batch(sql)
            .map_err(|e| backend(&format!("migration {version}"), e))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_us) VALUES (?1, ?2)",
            params![version, Utc::now().timestamp_micros()],
        )
        .map_err(|e| backend("record migration", e))?;
    }
    tx.commit().map_err(|e| backend("commit migration", e))
}

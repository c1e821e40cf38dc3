//! How SQLite applies [`Migrations`] (planned by the shared SQL layer).

use super::Sqlite;
use crate::store::sql::migrate::{plan, LEGACY_VERSIONS};
use crate::store::sql::Dialect;
use crate::store::{Migrations, StoreError};
use chrono::Utc;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

/// Applies what `schema` lacks; `conn` must be in a write transaction.
fn apply(conn: &Connection, schema: &Migrations<'_>) -> Result<(), StoreError> {
    let ledger = &Sqlite::statements().ledger;
    let component = schema.component();
    conn.execute_batch(&ledger.create)
        .map_err(|e| StoreError::sqlite("create schema_versions", e))?;
    let current: i64 = conn
        .query_row(&ledger.current, [component], |row| row.get(0))
        .map_err(|e| StoreError::sqlite("read schema version", e))?;
    let legacy = if current == 0 && schema.adopts_legacy() {
        legacy_versions(conn)?
    } else {
        Vec::new()
    };
    let plan = plan::<Sqlite>(schema, current, &legacy)?;
    let now = Utc::now().timestamp_micros();
    let record = |version: i64| {
        conn.execute(&ledger.record, params![component, version, now])
            .map_err(|e| StoreError::sqlite("record migration", e))
    };
    for version in plan.adopt {
        record(version)?;
    }
    for step in plan.apply {
        conn.execute_batch(step.sql).map_err(|e| {
            StoreError::sqlite(&format!("migration {component} {}", step.version), e)
        })?;
        record(step.version)?;
    }
    Ok(())
}

/// The versions recorded by builds that kept one list for all components.
fn legacy_versions(conn: &Connection) -> Result<Vec<i64>, StoreError> {
    let exists = conn
        .query_row(Sqlite::LEGACY_LEDGER_EXISTS, [], |_| Ok(()))
        .optional()
        .map_err(|e| StoreError::sqlite("find schema_migrations", e))?
        .is_some();
    if !exists {
        return Ok(Vec::new());
    }
    conn.prepare(LEGACY_VERSIONS)
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .map_err(|e| StoreError::sqlite("read schema_migrations", e))
}

/// Applies `schema` in an `IMMEDIATE` transaction of its own (so two
/// processes opening a new file at once do not both migrate it).
pub(super) fn apply_immediate(
    conn: &Connection,
    schema: &Migrations<'_>,
) -> Result<(), StoreError> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
        .map_err(|e| StoreError::sqlite("begin migration", e))?;
    apply(&tx, schema)?;
    tx.commit()
        .map_err(|e| StoreError::sqlite("commit migration", e))
}

/// Applies `schema` inside the writer's open transaction, all or nothing.
pub(super) fn apply_atomically(
    conn: &Connection,
    schema: &Migrations<'_>,
) -> Result<(), StoreError> {
    conn.execute_batch("SAVEPOINT migrate")
        .map_err(|e| StoreError::sqlite("begin migration", e))?;
    match apply(conn, schema) {
        Ok(()) => conn
            .execute_batch("RELEASE migrate")
            .map_err(|e| StoreError::sqlite("commit migration", e)),
        Err(e) => {
            // The batch goes on; nothing of this schema stays in it.
            let _ = conn.execute_batch("ROLLBACK TO migrate; RELEASE migrate");
            Err(e)
        }
    }
}

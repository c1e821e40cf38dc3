//! How PostgreSQL applies [`Migrations`] (planned by the shared SQL layer).

use super::{Postgres, PostgresDatabase};
use crate::store::sql::migrate::{plan, task_migrations, LEGACY_VERSIONS, TASKS};
use crate::store::sql::Dialect;
use crate::store::{Migrations, StoreError};
use chrono::Utc;
use tokio_postgres::Transaction;

/// Key of the advisory lock serializing migrations across replicas.
const MIGRATION_LOCK: i64 = 0x6162_6163_7573; // "abacus"

/// Waits until no other replica migrates; held until `tx` ends.
pub(super) async fn lock(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| StoreError::postgres("migration lock", e))?;
    Ok(())
}

/// Applies what `migrations` lacks; `tx` must hold the migration lock.
pub(super) async fn apply(
    tx: &Transaction<'_>,
    migrations: &Migrations<'_>,
) -> Result<(), StoreError> {
    let ledger = &Postgres::statements().ledger;
    let component = migrations.component();
    tx.batch_execute(&ledger.create)
        .await
        .map_err(|e| StoreError::postgres("create schema_versions", e))?;
    let current: i64 = tx
        .query_one(&ledger.current, &[&component])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| StoreError::postgres("read schema version", e))?;
    let legacy = if current == 0 && migrations.adopts_legacy() {
        legacy_versions(tx).await?
    } else {
        Vec::new()
    };
    let plan = plan::<Postgres>(migrations, current, &legacy)?;
    let now = Utc::now().timestamp_micros();
    for version in plan.adopt {
        record(tx, component, version, now).await?;
    }
    for step in plan.apply {
        tx.batch_execute(step.sql).await.map_err(|e| {
            StoreError::postgres(&format!("migration {component} {}", step.version), e)
        })?;
        record(tx, component, step.version, now).await?;
    }
    Ok(())
}

async fn record(
    tx: &Transaction<'_>,
    component: &str,
    version: i64,
    now: i64,
) -> Result<(), StoreError> {
    let ledger = &Postgres::statements().ledger;
    tx.execute(&ledger.record, &[&component, &version, &now])
        .await
        .map_err(|e| StoreError::postgres("record migration", e))?;
    Ok(())
}

/// The versions recorded by builds that kept one list for all components.
async fn legacy_versions(tx: &Transaction<'_>) -> Result<Vec<i64>, StoreError> {
    let exists = tx
        .query_opt(Postgres::LEGACY_LEDGER_EXISTS, &[])
        .await
        .map_err(|e| StoreError::postgres("find schema_migrations", e))?
        .is_some();
    if !exists {
        return Ok(Vec::new());
    }
    tx.query(LEGACY_VERSIONS, &[])
        .await
        .and_then(|rows| rows.iter().map(|row| row.try_get(0)).collect())
        .map_err(|e| StoreError::postgres("read schema_migrations", e))
}

/// The framework's own schema: the private schema, if any, and the task
/// table, in one transaction under the migration lock.
pub(super) async fn migrate_tasks(db: &PostgresDatabase) -> Result<(), StoreError> {
    let mut client = db.client().await?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| StoreError::postgres("begin migration", e))?;
    lock(&tx).await?;
    if let Some(schema) = db.schema() {
        // Validated at connect: a plain identifier.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(|e| StoreError::postgres("create schema", e))?;
    }
    let steps = task_migrations::<Postgres>();
    apply(&tx, &Migrations::new(TASKS, &steps).adopting(&[1])).await?;
    tx.commit()
        .await
        .map_err(|e| StoreError::postgres("commit migration", e))
}

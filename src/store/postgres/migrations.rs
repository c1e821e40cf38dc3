//! The PostgreSQL schema and how it is applied.

use super::{pg, pool_err};
use crate::store::StoreError;
use deadpool_postgres::Pool;

/// Versioned schema changes, applied in order at start. Never edit an entry
/// that has shipped; append a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"CREATE TABLE tasks (
            id          TEXT COLLATE "C" PRIMARY KEY,
            context_id  TEXT NOT NULL,
            state       TEXT NOT NULL,
            status_ts   BIGINT NOT NULL,  -- ns since epoch; i64::MIN = none
            updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
            doc         JSON NOT NULL
        );
        CREATE INDEX tasks_by_status ON tasks (status_ts DESC, id);
        CREATE INDEX tasks_by_context ON tasks (context_id, status_ts DESC, id);
        CREATE INDEX tasks_by_state ON tasks (state, status_ts DESC, id);"#,
    ),
    (
        2,
        r#"CREATE TABLE history (
            id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            query          TEXT NOT NULL,
            norm           TEXT NOT NULL,
            result         TEXT NOT NULL,
            processing_ns  BIGINT NOT NULL,
            agent_version  TEXT NOT NULL,
            created_at     TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX history_by_norm ON history (norm);
        CREATE INDEX history_by_prefix ON history (left(norm, 3));"#,
    ),
];

/// Key of the advisory lock serializing migrations across replicas.
const MIGRATION_LOCK: i64 = 0x6162_6163_7573; // "abacus"

/// Applies pending migrations and sets up trigram search; returns whether
/// `pg_trgm` is usable.
pub(super) async fn migrate(pool: &Pool, schema: Option<&str>) -> Result<bool, StoreError> {
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    let mut client = pool.get().await.map_err(pool_err)?;
    let mut tx = client
        .transaction()
        .await
        .map_err(|e| pg("begin migration", e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| pg("migration lock", e))?;
    if let Some(schema) = schema {
        // Validated by the caller: a plain identifier.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(|e| pg("create schema", e))?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     BIGINT PRIMARY KEY,
            applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(|e| pg("create schema_migrations", e))?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await
        .map_err(|e| pg("read schema version", e))?
        .get(0);
    if current > latest {
        return Err(StoreError::Backend(format!(
            "postgres: schema version {current} is newer than this build supports ({latest})"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| pg(&format!("migration {version}"), e))?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(|e| pg("record migration", e))?;
    }
    // Trigram search is optional: try inside savepoints so a refusal (no
    // permission, extension not installed) leaves the migration intact.
    let create_ext = if schema.is_some() {
        // Keep the extension out of a private schema that may be dropped.
        "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"
    } else {
        "CREATE EXTENSION IF NOT EXISTS pg_trgm"
    };
    let mut trigram = false;
    {
        let sp = tx.savepoint("trgm").await.map_err(|e| pg("savepoint", e))?;
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
                    sp.commit().await.map_err(|e| pg("release savepoint", e))?;
                    trigram = true;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "no trigram index");
                    sp.rollback()
                        .await
                        .map_err(|e| pg("rollback savepoint", e))?;
                }
            }
        } else {
            sp.rollback()
                .await
                .map_err(|e| pg("rollback savepoint", e))?;
        }
    }
    tx.commit().await.map_err(|e| pg("commit migration", e))?;
    Ok(trigram)
}

//! Push configs and the outbox in SQLite.

use super::sql::{in_delivery_order, sql_limit, OutboxRow, PushSql, COMPONENT};
use super::{
    config_id, decode_config, encode_config, Notification, OutboxClaim, PushStore, Takeover,
};
use crate::protocol::types::TaskPushNotificationConfig;
use crate::store::sqlite::Sqlite;
use crate::store::{Migration, Migrations, SqliteDatabase, StoreError, TaskOwner};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

fn statements() -> &'static PushSql {
    static STATEMENTS: LazyLock<PushSql> = LazyLock::new(PushSql::new::<Sqlite>);
    &STATEMENTS
}

fn schema() -> Migrations<'static> {
    static STEPS: LazyLock<[Migration<'static>; 3]> = LazyLock::new(|| statements().migrations());
    Migrations::new(COMPONENT, &*STEPS)
}

/// Runs `f` all or nothing inside the writer's open transaction, which
/// other writes share (see [`SqliteDatabase::write`]).
fn atomically<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("SAVEPOINT push")
        .map_err(|e| StoreError::sqlite("savepoint", e))?;
    match f(conn) {
        Ok(value) => {
            conn.execute_batch("RELEASE push")
                .map_err(|e| StoreError::sqlite("release savepoint", e))?;
            Ok(value)
        }
        Err(e) => {
            // The batch goes on; nothing of this call stays in it.
            let _ = conn.execute_batch("ROLLBACK TO push; RELEASE push");
            Err(e)
        }
    }
}

fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        event_id: r.get(0)?,
        config_id: r.get(1)?,
        seq: r.get(2)?,
        principal: r.get(3)?,
        tenant: r.get(4)?,
        task_id: r.get(5)?,
        config: r.get(6)?,
        payload: r.get(7)?,
        created_us: r.get(8)?,
        traceparent: r.get(9)?,
        tracestate: r.get(10)?,
    })
}

/// Push configs and the outbox in the tables `push_configs` and
/// `push_outbox` of a [`SqliteDatabase`]: writes go through its writer
/// thread (so they join the task saves' group commits and are durable on
/// return), reads through its read connections.
///
/// ```
/// use abacus::store::{PushStore, SqlitePushStore, SqliteTaskStore};
/// # async fn demo(dir: &std::path::Path) -> Result<(), abacus::store::StoreError> {
/// let tasks = SqliteTaskStore::open(dir.join("abacus.db")).await?;
/// let push = SqlitePushStore::open(tasks.database()).await?;
/// assert_eq!((push.kind(), push.depth().await?), ("sqlite", 0));
/// # Ok(())
/// # }
/// # let dir = tempfile::tempdir().unwrap();
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo(dir.path())).unwrap();
/// ```
#[derive(Clone)]
pub struct SqlitePushStore {
    db: SqliteDatabase,
}

impl std::fmt::Debug for SqlitePushStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlitePushStore")
            .field("path", &self.db.path())
            .finish()
    }
}

impl SqlitePushStore {
    /// Creates or migrates the push tables in `db` (ledger component
    /// `push`).
    pub async fn open(db: &SqliteDatabase) -> Result<Self, StoreError> {
        db.migrate(schema()).await?;
        Ok(Self { db: db.clone() })
    }
}

#[async_trait]
impl PushStore for SqlitePushStore {
    async fn put_config(
        &self,
        owner: &TaskOwner,
        config: &TaskPushNotificationConfig,
    ) -> Result<(), StoreError> {
        let id = config_id(config)?.to_owned();
        let doc = encode_config(config)?;
        let (owner, task_id) = (owner.clone(), config.task_id.clone());
        self.db
            .write(move |conn| {
                conn.prepare_cached(&statements().put_config)
                    .and_then(|mut stmt| {
                        stmt.execute(params![owner.principal(), owner.tenant(), task_id, id, doc])
                    })
                    .map_err(|e| StoreError::sqlite("put push config", e))?;
                Ok(())
            })
            .await
    }

    async fn get_config(
        &self,
        owner: &TaskOwner,
        task_id: &str,
        id: &str,
    ) -> Result<Option<TaskPushNotificationConfig>, StoreError> {
        let (owner, task_id, id) = (owner.clone(), task_id.to_owned(), id.to_owned());
        let doc: Option<String> = self
            .db
            .read(move |conn| {
                conn.prepare_cached(&statements().get_config)
                    .and_then(|mut stmt| {
                        stmt.query_row(
                            params![owner.principal(), owner.tenant(), task_id, id],
                            |r| r.get(0),
                        )
                        .optional()
                    })
                    .map_err(|e| StoreError::sqlite("get push config", e))
            })
            .await?;
        doc.as_deref().map(decode_config).transpose()
    }

    async fn list_configs(
        &self,
        owner: &TaskOwner,
        task_id: &str,
    ) -> Result<Vec<TaskPushNotificationConfig>, StoreError> {
        let (owner, task_id) = (owner.clone(), task_id.to_owned());
        let docs: Vec<String> = self
            .db
            .read(move |conn| {
                conn.prepare_cached(&statements().list_configs)
                    .and_then(|mut stmt| {
                        stmt.query_map(params![owner.principal(), owner.tenant(), task_id], |r| {
                            r.get(0)
                        })?
                        .collect()
                    })
                    .map_err(|e| StoreError::sqlite("list push configs", e))
            })
            .await?;
        docs.iter().map(|doc| decode_config(doc)).collect()
    }

    async fn delete_config(
        &self,
        owner: &TaskOwner,
        task_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let (owner, task_id, id) = (owner.clone(), task_id.to_owned(), id.to_owned());
        let removed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&removed);
        self.db
            .write(move |conn| {
                atomically(conn, |conn| {
                    let key = params![owner.principal(), owner.tenant(), task_id, id];
                    let sql = statements();
                    let configs = conn
                        .prepare_cached(&sql.delete_config)
                        .and_then(|mut stmt| stmt.execute(key))
                        .map_err(|e| StoreError::sqlite("delete push config", e))?;
                    conn.prepare_cached(&sql.delete_config_outbox)
                        .and_then(|mut stmt| stmt.execute(key))
                        .map_err(|e| StoreError::sqlite("delete push notifications", e))?;
                    flag.store(configs > 0, Ordering::Relaxed);
                    Ok(())
                })
            })
            .await?;
        // Read after the commit was acknowledged.
        Ok(removed.load(Ordering::Relaxed))
    }

    async fn enqueue_claimed(
        &self,
        batch: &[Notification],
        claim: &OutboxClaim,
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let rows = OutboxRow::batch(batch)?;
        let (by, until) = (claim.replica.clone(), claim.until.timestamp_micros());
        self.db
            .write(move |conn| {
                atomically(conn, |conn| {
                    let mut stmt = conn
                        .prepare_cached(&statements().enqueue)
                        .map_err(|e| StoreError::sqlite("prepare enqueue", e))?;
                    for r in &rows {
                        stmt.execute(params![
                            r.event_id,
                            r.config_id,
                            r.seq,
                            r.principal,
                            r.tenant,
                            r.task_id,
                            r.config,
                            r.payload,
                            r.created_us,
                            r.traceparent,
                            r.tracestate,
                            by,
                            until
                        ])
                        .map_err(|e| StoreError::sqlite("enqueue push notification", e))?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn pending(&self, after_seq: i64, limit: usize) -> Result<Vec<Notification>, StoreError> {
        let limit = sql_limit(limit);
        self.db
            .read(move |conn| {
                let rows: Vec<OutboxRow> = conn
                    .prepare_cached(&statements().pending)
                    .and_then(|mut stmt| {
                        stmt.query_map(params![after_seq, limit], outbox_row)?
                            .collect()
                    })
                    .map_err(|e| StoreError::sqlite("pending push notifications", e))?;
                rows.into_iter().map(OutboxRow::decode).collect()
            })
            .await
    }

    async fn claim_pending(
        &self,
        claim: &OutboxClaim,
        takeover: Takeover,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let limit = sql_limit(limit);
        let (by, until) = (claim.replica.clone(), claim.until.timestamp_micros());
        let now = chrono::Utc::now().timestamp_micros();
        let claimed = self
            .db
            .write_returning(move |conn| {
                conn.prepare_cached(&statements().claim[takeover.index()])
                    .and_then(|mut stmt| {
                        stmt.query_map(params![by, until, after_seq, limit, now], outbox_row)?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(|e| StoreError::sqlite("claim push notifications", e))
            })
            .await?;
        in_delivery_order(claimed)
    }

    async fn renew_claims(&self, claim: &OutboxClaim) -> Result<u64, StoreError> {
        let (by, until) = (claim.replica.clone(), claim.until.timestamp_micros());
        let held = self
            .db
            .write_returning(move |conn| {
                conn.prepare_cached(&statements().renew)
                    .and_then(|mut stmt| stmt.execute(params![by, until]))
                    .map_err(|e| StoreError::sqlite("renew push claims", e))
            })
            .await?;
        Ok(held as u64)
    }

    async fn settle(&self, event_id: &str, config_id: &str) -> Result<(), StoreError> {
        let (event_id, config_id) = (event_id.to_owned(), config_id.to_owned());
        self.db
            .write(move |conn| {
                conn.prepare_cached(&statements().settle)
                    .and_then(|mut stmt| stmt.execute(params![event_id, config_id]))
                    .map_err(|e| StoreError::sqlite("settle push notification", e))?;
                Ok(())
            })
            .await
    }

    async fn depth(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .db
            .read(|conn| {
                conn.prepare_cached(&statements().depth)
                    .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
                    .map_err(|e| StoreError::sqlite("push outbox depth", e))
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests;

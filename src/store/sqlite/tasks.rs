//! Tasks in SQLite.

use super::writer::{TaskRow, WriteOp, WriteRequest};
use super::{Sqlite, SqliteDatabase, SqliteSync};
use crate::store::query::TaskFilter;
use crate::store::sql::{page_from_rows, Dialect, ListSql};
use crate::store::{
    decode_task, encode_task, state_name, status_key, ListQuery, StoreError, TaskOwner, TaskPage,
    TaskStore,
};
use a2a::Task;
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Tasks in a SQLite file (see the module docs for durability and threads).
///
/// Cloning is cheap and shares the file, writer thread and read pool.
#[derive(Clone)]
pub struct SqliteTaskStore {
    db: SqliteDatabase,
}

impl std::fmt::Debug for SqliteTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTaskStore")
            .field("path", &self.db.path())
            .finish()
    }
}

impl SqliteTaskStore {
    /// The tasks of an opened database.
    pub fn new(db: SqliteDatabase) -> Self {
        Self { db }
    }

    /// Opens (creating if needed) the database file at `path`, e.g.
    /// `./data/abacus.db`, with [`SqliteSync::Full`] (see
    /// [`SqliteDatabase::open`]).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteSync::Full).await
    }

    /// [`SqliteTaskStore::open`] with a chosen [`SqliteSync`] mode.
    pub async fn open_with(path: impl AsRef<Path>, sync: SqliteSync) -> Result<Self, StoreError> {
        Ok(Self::new(SqliteDatabase::open(path, sync).await?))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// The database, for stores that keep their own tables in the same file.
    pub fn database(&self) -> &SqliteDatabase {
        &self.db
    }
}

fn task_row(task: &Task, owner: &TaskOwner) -> Result<TaskRow, StoreError> {
    Ok(TaskRow {
        id: task.id.clone(),
        context_id: task.context_id.clone(),
        state: state_name(&task.status.state)?,
        status_ts: status_key(task.status.timestamp),
        doc: encode_task(task)?,
        owner: owner.clone(),
    })
}

#[async_trait]
impl TaskStore for SqliteTaskStore {
    async fn save(&self, task: &Task, owner: &TaskOwner) -> Result<(), StoreError> {
        let row = task_row(task, owner)?;
        self.db.writer().submit(WriteOp::SaveTask(row)).await
    }

    fn save_detached(self: Arc<Self>, task: Task, owner: TaskOwner) {
        let row = match task_row(&task, &owner) {
            Ok(row) => row,
            Err(e) => {
                tracing::warn!(task_id = %task.id, error = %e, "background task save failed");
                return;
            }
        };
        // The writer thread is FIFO: queued behind earlier writes, ahead of
        // later ones. Nobody waits for the reply.
        let (reply, _) = oneshot::channel();
        let req = WriteRequest {
            op: WriteOp::SaveTask(row),
            reply,
        };
        let writer = self.db.writer();
        if let Err(mpsc::error::TrySendError::Full(req)) = writer.tx.try_send(req) {
            let writer = writer.clone();
            tokio::spawn(async move {
                let _ = writer.tx.send(req).await;
            });
        }
    }

    async fn get(&self, id: &str, owner: &TaskOwner) -> Result<Option<Task>, StoreError> {
        let id = id.to_owned();
        let owner = owner.clone();
        let doc: Option<String> = self
            .db
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(&Sqlite::statements().get)
                    .map_err(|e| StoreError::sqlite("prepare get", e))?;
                stmt.query_row(params![id, owner.principal(), owner.tenant()], |row| {
                    row.get(0)
                })
                .optional()
                .map_err(|e| StoreError::sqlite("get task", e))
            })
            .await?;
        doc.as_deref().map(decode_task).transpose()
    }

    async fn list(&self, query: &ListQuery) -> Result<TaskPage, StoreError> {
        let sql = ListSql::new::<Sqlite>(&TaskFilter::new(query)?)?;
        let page_size = sql.page_size;
        let (total, rows) = self
            .db
            .read(move |conn| {
                // One read transaction: the count and the page see the same
                // snapshot.
                let tx = conn
                    .transaction()
                    .map_err(|e| StoreError::sqlite("begin read", e))?;
                let total: i64 = tx
                    .prepare_cached(&sql.count)
                    .and_then(|mut s| {
                        let args = &sql.args[..sql.count_args];
                        s.query_row(rusqlite::params_from_iter(args), |r| r.get(0))
                    })
                    .map_err(|e| StoreError::sqlite("count tasks", e))?;
                let rows = tx
                    .prepare_cached(&sql.page)
                    .and_then(|mut s| {
                        s.query_map(rusqlite::params_from_iter(&sql.args), |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                        })?
                        .collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(|e| StoreError::sqlite("list tasks", e))?;
                Ok((total, rows))
            })
            .await?;
        page_from_rows(rows.into_iter().map(Ok), page_size, total)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .read(|conn| {
                conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                    .map(|_| ())
                    .map_err(|e| StoreError::sqlite("ping", e))
            })
            .await
    }

    /// Through the writer thread, so it fails as task saves would.
    async fn heartbeat(&self) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp_micros();
        self.db
            .write(move |conn| {
                conn.prepare_cached(&Sqlite::statements().heartbeat)
                    .and_then(|mut stmt| stmt.execute(params![now]))
                    .map(|_| ())
                    .map_err(|e| StoreError::sqlite("heartbeat", e))
            })
            .await
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

//! Tasks in SQLite.

use super::history::{SqliteHistorySink, SqliteHistoryStore};
use super::writer::{TaskRow, WriteOp, WriteRequest, Writer};
use super::{backend, open_writer, ReadPool, Sqlite, SqliteSync, READERS};
use crate::store::history::{HistoryOptions, HistoryQueue};
use crate::store::query::TaskFilter;
use crate::store::sql::{page_from_rows, Dialect, ListSql};
use crate::store::{
    decode_task, encode_task, state_name, status_key, ListQuery, StoreError, TaskPage, TaskStore,
};
use a2a::Task;
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, Semaphore};

// ---------------------------------------------------------------------------
// Task store
// ---------------------------------------------------------------------------

struct Shared {
    path: PathBuf,
    writer: Writer,
    readers: Arc<ReadPool>,
}

/// Tasks in a SQLite file (see the module docs for durability and threads).
///
/// Cloning is cheap and shares the file, writer thread and read pool.
#[derive(Clone)]
pub struct SqliteTaskStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTaskStore")
            .field("path", &self.shared.path)
            .finish()
    }
}

impl SqliteTaskStore {
    /// Opens (creating if needed) the database file at `path`, e.g.
    /// `./data/abacus.db`, applies pending migrations and starts the writer
    /// thread. The parent directory must exist.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteSync::Full).await
    }

    /// [`SqliteTaskStore::open`] with a chosen [`SqliteSync`] mode.
    pub async fn open_with(path: impl AsRef<Path>, sync: SqliteSync) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let writer_path = path.clone();
        let conn = tokio::task::spawn_blocking(move || open_writer(&writer_path, sync))
            .await
            .map_err(|e| backend("open task", e))??;
        let writer = Writer::spawn(conn)?;
        Ok(Self {
            shared: Arc::new(Shared {
                readers: Arc::new(ReadPool {
                    path: path.clone(),
                    idle: Mutex::new(Vec::new()),
                    permits: Arc::new(Semaphore::new(READERS)),
                }),
                path,
                writer,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The query history kept in the same file, written through the same
    /// writer thread. Must be called inside a Tokio runtime (its batching
    /// task is spawned there).
    pub fn history_store(&self, options: HistoryOptions) -> Result<SqliteHistoryStore, StoreError> {
        let sink = Arc::new(SqliteHistorySink {
            writer: self.shared.writer.clone(),
        });
        Ok(SqliteHistoryStore {
            queue: HistoryQueue::start(sink, &options)?,
            readers: Arc::clone(&self.shared.readers),
        })
    }
}

fn task_row(task: &Task) -> Result<TaskRow, StoreError> {
    Ok(TaskRow {
        id: task.id.clone(),
        context_id: task.context_id.clone(),
        state: state_name(&task.status.state)?,
        status_ts: status_key(task.status.timestamp),
        doc: encode_task(task)?,
    })
}

#[async_trait]
impl TaskStore for SqliteTaskStore {
    async fn save(&self, task: &Task) -> Result<(), StoreError> {
        let row = task_row(task)?;
        self.shared.writer.submit(WriteOp::SaveTask(row)).await
    }

    fn save_detached(self: Arc<Self>, task: Task) {
        let row = match task_row(&task) {
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
        if let Err(mpsc::error::TrySendError::Full(req)) = self.shared.writer.tx.try_send(req) {
            let writer = self.shared.writer.clone();
            tokio::spawn(async move {
                let _ = writer.tx.send(req).await;
            });
        }
    }

    async fn get(&self, id: &str) -> Result<Option<Task>, StoreError> {
        let id = id.to_owned();
        let doc: Option<String> = self
            .shared
            .readers
            .run(move |conn| {
                let mut stmt = conn
                    .prepare_cached(&Sqlite::statements().get)
                    .map_err(|e| backend("prepare get", e))?;
                stmt.query_row(params![id], |row| row.get(0))
                    .optional()
                    .map_err(|e| backend("get task", e))
            })
            .await?;
        doc.as_deref().map(decode_task).transpose()
    }

    async fn list(&self, query: &ListQuery) -> Result<TaskPage, StoreError> {
        let sql = ListSql::new::<Sqlite>(&TaskFilter::new(query)?)?;
        let page_size = sql.page_size;
        let (total, rows) = self
            .shared
            .readers
            .run(move |conn| {
                // One read transaction: the count and the page see the same
                // snapshot.
                let tx = conn.transaction().map_err(|e| backend("begin read", e))?;
                let total: i64 = tx
                    .prepare_cached(&sql.count)
                    .and_then(|mut s| {
                        let args = &sql.args[..sql.count_args];
                        s.query_row(rusqlite::params_from_iter(args), |r| r.get(0))
                    })
                    .map_err(|e| backend("count tasks", e))?;
                let rows = tx
                    .prepare_cached(&sql.page)
                    .and_then(|mut s| {
                        s.query_map(rusqlite::params_from_iter(&sql.args), |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                        })?
                        .collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(|e| backend("list tasks", e))?;
                Ok((total, rows))
            })
            .await?;
        page_from_rows(rows.into_iter().map(Ok), page_size, total)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.shared
            .readers
            .run(|conn| {
                conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                    .map(|_| ())
                    .map_err(|e| backend("ping", e))
            })
            .await
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

//! Tasks in SQLite.

use super::writer::{AppendRow, TaskRow, WriteOp, WriteRequest};
use super::{Sqlite, SqliteDatabase, SqliteSync};
use crate::store::log::{check_sequence, Claim, ExpiredLease, Lease, LoggedEvent, LoggedTask};
use crate::store::query::TaskFilter;
use crate::store::sql::{
    claim_undecided, decode_event, encode_event, lease_args, limit_arg, micros, not_claimed,
    page_from_rows, seq_arg, Dialect, ListSql, LoggedRow, NotClaimed, CLAIM_ATTEMPTS,
};
use crate::store::{
    decode_task, encode_task, state_name, status_key, ListQuery, StoreError, TaskOwner, TaskPage,
    TaskStore,
};
use a2a::Task;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
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

    /// Runs `f` on the writer thread and returns what it returned once its
    /// transaction committed.
    async fn write_returning<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.db.write_returning(f).await
    }
}

/// The row of `get_logged` (or of `claim`'s `RETURNING`).
fn logged_row(row: &Row<'_>) -> rusqlite::Result<LoggedRow> {
    Ok(LoggedRow {
        doc: row.get(0)?,
        seq: row.get(1)?,
        lease_owner: row.get(2)?,
        lease_until: row.get(3)?,
    })
}

fn get_logged(
    conn: &Connection,
    id: &str,
    owner: &TaskOwner,
) -> Result<Option<LoggedRow>, StoreError> {
    conn.prepare_cached(&Sqlite::statements().get_logged)
        .and_then(|mut stmt| {
            stmt.query_row(params![id, owner.principal(), owner.tenant()], logged_row)
                .optional()
        })
        .map_err(|e| StoreError::sqlite("get logged task", e))
}

/// Counts the rows a one-statement write changes.
fn execute(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
    what: &str,
) -> Result<u64, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute(args))
        .map(|n| n as u64)
        .map_err(|e| StoreError::sqlite(what, e))
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

    async fn append(
        &self,
        task: &Task,
        owner: &TaskOwner,
        after: u64,
        events: &[LoggedEvent],
        lease: Lease<'_>,
    ) -> Result<(), StoreError> {
        let seq = seq_arg(check_sequence(&task.id, after, events)?)?;
        let (lease_owner, lease_until) = lease_args(lease);
        let events = events
            .iter()
            .map(|e| Ok((seq_arg(e.seq)?, encode_event(e)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let row = AppendRow {
            task: task_row(task, owner)?,
            after: seq_arg(after)?,
            seq,
            lease_owner: lease_owner.map(str::to_owned),
            lease_until,
            events,
            appended_at: micros(Utc::now()),
        };
        self.db
            .writer()
            .submit(WriteOp::Append(Box::new(row)))
            .await
    }

    async fn get_logged(
        &self,
        id: &str,
        owner: &TaskOwner,
    ) -> Result<Option<LoggedTask>, StoreError> {
        let id = id.to_owned();
        let owner = owner.clone();
        let row = self
            .db
            .read(move |conn| get_logged(conn, &id, &owner))
            .await?;
        row.map(LoggedRow::decode).transpose()
    }

    async fn events_after(
        &self,
        id: &str,
        owner: &TaskOwner,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let id = id.to_owned();
        let owner = owner.clone();
        let after = seq_arg(after).unwrap_or(i64::MAX);
        let limit = limit_arg(limit);
        let rows: Vec<(i64, String)> = self
            .db
            .read(move |conn| {
                conn.prepare_cached(&Sqlite::statements().events_after)
                    .and_then(|mut stmt| {
                        stmt.query_map(
                            params![id, after, owner.principal(), owner.tenant(), limit],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )?
                        .collect()
                    })
                    .map_err(|e| StoreError::sqlite("read events", e))
            })
            .await?;
        rows.iter()
            .map(|(seq, doc)| decode_event(*seq, doc))
            .collect()
    }

    async fn claim(
        &self,
        id: &str,
        owner: &TaskOwner,
        replica: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let (until_us, now_us) = (micros(until), micros(now));
        // One writer: nothing changes the task between the statements, so
        // the first attempt decides; the loop only bounds the impossible.
        for _ in 0..CLAIM_ATTEMPTS {
            let args = (id.to_owned(), owner.clone(), replica.to_owned());
            let (claimed, found) = self
                .write_returning(move |conn| {
                    let (id, owner, replica) = args;
                    let claimed = conn
                        .prepare_cached(&Sqlite::statements().claim)
                        .and_then(|mut stmt| {
                            stmt.query_row(
                                params![
                                    id,
                                    owner.principal(),
                                    owner.tenant(),
                                    replica,
                                    until_us,
                                    now_us
                                ],
                                logged_row,
                            )
                            .optional()
                        })
                        .map_err(|e| StoreError::sqlite("claim lease", e))?;
                    match claimed {
                        Some(row) => Ok((Some(row), None)),
                        None => Ok((None, get_logged(conn, &id, &owner)?)),
                    }
                })
                .await?;
            if let Some(row) = claimed {
                return Ok(Claim::Acquired(row.decode()?));
            }
            let found = found.map(LoggedRow::decode).transpose()?;
            if let NotClaimed::Final(claim) = not_claimed(found, replica, now) {
                return Ok(*claim);
            }
        }
        Err(claim_undecided(id))
    }

    async fn renew_leases(&self, replica: &str, until: DateTime<Utc>) -> Result<u64, StoreError> {
        let replica = replica.to_owned();
        let until = micros(until);
        self.write_returning(move |conn| {
            execute(
                conn,
                &Sqlite::statements().renew_leases,
                params![replica, until],
                "renew leases",
            )
        })
        .await
    }

    async fn release_lease(&self, id: &str, replica: &str) -> Result<(), StoreError> {
        let (id, replica) = (id.to_owned(), replica.to_owned());
        self.db
            .write(move |conn| {
                execute(
                    conn,
                    &Sqlite::statements().release_lease,
                    params![id, replica],
                    "release lease",
                )
                .map(|_| ())
            })
            .await
    }

    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ExpiredLease>, StoreError> {
        let now = micros(now);
        let limit = limit_arg(limit);
        self.db
            .read(move |conn| {
                conn.prepare_cached(&Sqlite::statements().expired_leases)
                    .and_then(|mut stmt| {
                        stmt.query_map(params![now, limit], |r| {
                            let (principal, tenant): (String, String) = (r.get(1)?, r.get(2)?);
                            Ok(ExpiredLease {
                                task_id: r.get(0)?,
                                owner: TaskOwner::from_stored(&principal, &tenant),
                                replica: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                            })
                        })?
                        .collect()
                    })
                    .map_err(|e| StoreError::sqlite("expired leases", e))
            })
            .await
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let before = micros(before);
        self.write_returning(move |conn| {
            execute(
                conn,
                &Sqlite::statements().prune_events,
                params![before],
                "prune events",
            )
        })
        .await
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

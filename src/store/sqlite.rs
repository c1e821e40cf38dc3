//! SQLite backend: one database file, WAL mode, a dedicated writer thread
//! with group commit and a small pool of read connections.
//!
//! # Durability
//!
//! The write connection runs `journal_mode=WAL`. With [`SqliteSync::Normal`] (the
//! server's default) a committed transaction's WAL frames are in the
//! kernel's page cache when `COMMIT` returns: a [`TaskStore::save`] that
//! returned survives `kill -9` of the process, but an OS crash or power loss
//! may lose the last transactions. With [`SqliteSync::Full`] the WAL is fsynced on
//! every commit, so saves also survive an OS crash, at the price of one
//! fsync per commit. That price is paid per *batch*: while one transaction
//! is being synced, the saves that arrive meanwhile queue up and the writer
//! commits all of them together in the next transaction.
//!
//! # Threads
//!
//! All rusqlite calls run off the async reactor:
//!
//! * Writes go through a bounded channel to one `std::thread` that owns the
//!   only write connection. SQLite allows one writer at a time anyway, and a
//!   single owner makes group commit natural: the thread blocks for the
//!   first request, takes every request already queued (up to
//!   [`MAX_BATCH`]; before committing a small batch it yields its CPU
//!   [`GROUP_COMMIT_YIELDS`] times so that writers on the same core can
//!   join it), runs the requests (a failed statement is undone by SQLite and
//!   fails only its own caller), commits once and answers every waiter
//!   through its oneshot channel.
//! * Reads run on `tokio::task::spawn_blocking` with a connection taken from
//!   a pool of at most [`READERS`] read-only connections (a semaphore bounds
//!   them, so reads cannot flood the blocking pool). Reads do not go through
//!   the writer thread because WAL lets readers work on a consistent
//!   snapshot while a write transaction is open or being fsynced: a `get`
//!   never waits behind a batch commit. A committed write is visible to
//!   every read that starts after its `save` returned.

use super::history::{
    duration_to_nanos, nanos_to_duration, normalize, plain_trigrams, rank, HistoryEntry,
    HistoryOptions, HistoryQueue, HistorySink, HistoryStats, HistoryStore,
};
use super::query::TaskFilter;
use super::sql::{page_from_rows, Dialect, ListSql, SqlArg, Statements};
use super::{
    decode_task, encode_task, state_name, status_key, ListQuery, StoreError, TaskPage, TaskStore,
};
use a2a::Task;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most write requests committed in one transaction.
const MAX_BATCH: usize = 256;
/// Write requests waiting for the writer thread before `save` waits for room.
const WRITE_QUEUE: usize = 1024;
/// Times the writer yields its CPU to let writes join a batch before it
/// commits one (see `writer_loop`).
const GROUP_COMMIT_YIELDS: u32 = 2;
/// Read connections kept open at most.
const READERS: usize = 4;
/// How long a connection waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Candidates fetched from the FTS index per similarity search, at most.
const MAX_CANDIDATES: usize = 500;
/// Trigrams of the query used for the FTS search, at most.
const MAX_QUERY_TRIGRAMS: usize = 32;

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

/// The SQLite spelling of the shared SQL.
pub(crate) struct Sqlite;

impl Dialect for Sqlite {
    const UPDATED_COLUMN: (&'static str, &'static str) = ("updated_us", "INTEGER NOT NULL");
    // SQLite has no microsecond clock: the writer binds it.
    const UPDATED_VALUE: Option<&'static str> = None;
    const DOC_FROM_TEXT: &'static str = "";
    const DOC_AS_TEXT: &'static str = "doc";
    // Count and page run in one read transaction instead.
    const COUNT_IN_PAGE: bool = false;

    fn param(n: usize) -> String {
        format!("?{n}")
    }

    fn statements() -> &'static Statements {
        static STATEMENTS: LazyLock<Statements> = LazyLock::new(Statements::new::<Sqlite>);
        &STATEMENTS
    }
}

impl rusqlite::ToSql for SqlArg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            SqlArg::Text(s) => ValueRef::Text(s.as_bytes()),
            SqlArg::Int(n) => ValueRef::Integer(*n),
        }))
    }
}

fn backend(context: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("sqlite {context}: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Connections and migrations
// ---------------------------------------------------------------------------

/// How hard a commit is pushed to disk (`PRAGMA synchronous`).
///
/// ```
/// use abacus::store::SqliteSync;
/// assert_eq!("full".parse::<SqliteSync>().unwrap(), SqliteSync::Full);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// Survives a killed process; an OS crash may lose the last commits.
    #[default]
    Normal,
    /// Also survives an OS crash or power loss: one fsync per commit batch.
    Full,
}

impl std::str::FromStr for SqliteSync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Ok(SqliteSync::Normal),
            "full" => Ok(SqliteSync::Full),
            other => Err(format!(
                "unknown sqlite sync mode {other:?} (normal or full)"
            )),
        }
    }
}

impl std::fmt::Display for SqliteSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SqliteSync::Normal => "normal",
            SqliteSync::Full => "full",
        })
    }
}

fn open_writer(path: &Path, sync: SqliteSync) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| backend(&format!("open {}", path.display()), e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| backend("busy_timeout", e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| backend("journal_mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "sqlite: cannot enable WAL (journal_mode is {mode})"
        )));
    }
    // See the module docs.
    let (pragma, level) = match sync {
        SqliteSync::Normal => ("NORMAL", 1),
        SqliteSync::Full => ("FULL", 2),
    };
    conn.pragma_update(None, "synchronous", pragma)
        .map_err(|e| backend("synchronous", e))?;
    let synchronous: i64 = conn
        .query_row("PRAGMA synchronous", [], |row| row.get(0))
        .map_err(|e| backend("synchronous", e))?;
    if synchronous != level {
        return Err(StoreError::Backend(format!(
            "sqlite: synchronous is {synchronous}, wanted {pragma} ({level})"
        )));
    }
    // Truncate the WAL file back to 64 MiB after checkpoints.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(|e| backend("journal_size_limit", e))?;
    conn.set_prepared_statement_cache_capacity(32);
    migrate(&conn)?;
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| backend(&format!("open {}", path.display()), e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| backend("busy_timeout", e))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| backend("query_only", e))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Applies the migrations this build knows and the file lacks, in one
/// `IMMEDIATE` transaction (so two processes opening a new file at once do
/// not both migrate it).
fn migrate(conn: &Connection) -> Result<(), StoreError> {
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

// ---------------------------------------------------------------------------
// Writer thread
// ---------------------------------------------------------------------------

struct TaskRow {
    id: String,
    context_id: String,
    state: String,
    status_ts: i64,
    doc: String,
}

struct HistoryRow {
    query: String,
    norm: String,
    result: String,
    processing_ns: i64,
    agent_version: String,
    created_us: i64,
}

enum WriteOp {
    SaveTask(TaskRow),
    InsertHistory(Vec<HistoryRow>),
    PruneHistory { keep: i64 },
}

struct WriteRequest {
    op: WriteOp,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The sending side of the writer thread.
#[derive(Clone)]
struct Writer {
    tx: mpsc::Sender<WriteRequest>,
}

impl Writer {
    fn spawn(conn: Connection) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("abacus-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| backend("spawn writer thread", e))?;
        Ok(Self { tx })
    }

    /// Sends `op` and waits until the transaction holding it committed.
    async fn submit(&self, op: WriteOp) -> Result<(), StoreError> {
        let (reply, done) = oneshot::channel();
        self.tx
            .send(WriteRequest { op, reply })
            .await
            .map_err(|_| StoreError::Backend("sqlite writer thread stopped".into()))?;
        done.await
            .map_err(|_| StoreError::Backend("sqlite writer thread stopped".into()))?
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<WriteRequest>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Ends when every sender (stores, history queue) is gone.
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        let mut yields = 0;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(req) => batch.push(req),
                Err(mpsc::error::TryRecvError::Empty) if yields < GROUP_COMMIT_YIELDS => {
                    std::thread::yield_now();
                    yields += 1;
                }
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, &mut batch);
    }
}

/// Runs every request of `batch` in one transaction (a failed statement
/// fails only its request), commits, then answers every waiter.
fn commit_batch(conn: &mut Connection, batch: &mut Vec<WriteRequest>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let msg = format!("sqlite begin: {e}");
        for req in batch.drain(..) {
            let _ = req.reply.send(Err(StoreError::Backend(msg.clone())));
        }
        return;
    }
    // A later save of the same task in this batch supersedes an earlier one
    // (a "working" state queued just before "completed"): write it once.
    let mut last_save: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, req) in batch.iter().enumerate() {
        if let WriteOp::SaveTask(row) = &req.op {
            last_save.insert(row.id.as_str(), i);
        }
    }
    let results: Vec<Result<(), StoreError>> = batch
        .iter()
        .enumerate()
        .map(|(i, req)| match &req.op {
            WriteOp::SaveTask(row) if last_save.get(row.id.as_str()) != Some(&i) => Ok(()),
            // No savepoints: SQLite undoes a failed statement by itself, and
            // each savepoint would make FTS5 write its pending index to disk.
            // A history batch that fails at row k keeps (and indexes) rows
            // 0..k, which is harmless for a log.
            op => apply(conn, op),
        })
        .collect();
    // Some errors (I/O, disk full) make SQLite roll the whole transaction
    // back; then nothing of the batch was written.
    let outcome = if conn.is_autocommit() {
        Err("sqlite transaction was rolled back".to_string())
    } else {
        conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            format!("sqlite commit: {e}")
        })
    };
    for (req, result) in batch.drain(..).zip(results) {
        let answer = match &outcome {
            Ok(()) => result,
            Err(msg) => Err(match result {
                Err(e) => e,
                Ok(()) => StoreError::Backend(msg.clone()),
            }),
        };
        // The caller may have stopped waiting (request cancelled): the write
        // still happened, nobody to tell.
        let _ = req.reply.send(answer);
    }
}

fn apply(conn: &Connection, op: &WriteOp) -> Result<(), StoreError> {
    match op {
        WriteOp::SaveTask(row) => {
            let mut stmt = conn
                .prepare_cached(&Sqlite::statements().upsert)
                .map_err(|e| backend("prepare save", e))?;
            stmt.execute(params![
                row.id,
                row.context_id,
                row.state,
                row.status_ts,
                row.doc,
                Utc::now().timestamp_micros()
            ])
            .map_err(|e| backend("save task", e))?;
            Ok(())
        }
        WriteOp::InsertHistory(rows) => insert_history(conn, rows),
        WriteOp::PruneHistory { keep } => {
            // Ids are rowids, assigned max + 1 and only ever deleted from
            // the oldest end, so the newest `keep` rows are those above
            // max - keep: two index seeks instead of walking `keep` rows
            // (which ran every 1000 inserts).
            conn.execute(
                "DELETE FROM history WHERE id <= (SELECT max(id) FROM history) - ?1",
                params![keep],
            )
            .map_err(|e| backend("prune history", e))?;
            Ok(())
        }
    }
}

/// Inserts a batch of history rows, then adds them to the FTS index with
/// one statement. FTS5 writes its pending index to disk at every statement
/// that touches it, so indexing row by row (a trigger) made one segment per
/// row and then merged them: a fifth of the CPU when every query is new.
fn insert_history(conn: &Connection, rows: &[HistoryRow]) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO history
                (query, norm, result, processing_ns, agent_version, created_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(|e| backend("prepare history insert", e))?;
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
            result = Err(backend("insert history", e));
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
        .map_err(|e| backend("index history", e))?;
    }
    result
}

// ---------------------------------------------------------------------------
// Read pool
// ---------------------------------------------------------------------------

struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    /// Runs `f` with a read connection on the blocking thread pool.
    async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("sqlite read pool closed".into()))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = lock(&pool.idle).pop();
            let mut conn = match idle {
                Some(conn) => conn,
                None => open_reader(&pool.path)?,
            };
            let out = f(&mut conn);
            lock(&pool.idle).push(conn);
            out
        })
        .await
        .map_err(|e| backend("read task", e))?
    }
}

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

// ---------------------------------------------------------------------------
// History store
// ---------------------------------------------------------------------------

struct SqliteHistorySink {
    writer: Writer,
}

#[async_trait]
impl HistorySink for SqliteHistorySink {
    async fn write(&self, batch: Vec<HistoryEntry>) -> Result<(), StoreError> {
        let rows = batch
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
        self.writer.submit(WriteOp::InsertHistory(rows)).await
    }

    async fn prune(&self, keep: usize) -> Result<(), StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.writer.submit(WriteOp::PruneHistory { keep }).await
    }
}

/// Query history in the SQLite file of a [`SqliteTaskStore`]
/// (see [`SqliteTaskStore::history_store`]).
///
/// Similar queries are found with an FTS5 index using the `trigram`
/// tokenizer (compiled into the bundled SQLite) over the normalized query:
/// the query's trigrams are OR-ed, the best 500 candidates by bm25 plus
/// exact matches (needed for queries shorter than three characters, which
/// have no FTS trigram) are then ranked by trigram similarity.
pub struct SqliteHistoryStore {
    queue: HistoryQueue,
    readers: Arc<ReadPool>,
}

impl std::fmt::Debug for SqliteHistoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteHistoryStore")
            .field("path", &self.readers.path)
            .field("queue", &self.queue)
            .finish()
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

#[async_trait]
impl HistoryStore for SqliteHistoryStore {
    fn record(&self, entry: HistoryEntry) {
        self.queue.record(entry);
    }

    async fn similar(&self, query: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let norm = normalize(query);
        // FTS5 reads its query as a C string: leave out trigrams with NUL
        // (the exact-match lookup below still finds such queries).
        let fts_query = plain_trigrams(&norm, MAX_QUERY_TRIGRAMS)
            .iter()
            .filter(|t| !t.contains('\0'))
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" OR ");
        let want = i64::try_from(limit.saturating_mul(10).clamp(50, MAX_CANDIDATES)).unwrap_or(50);
        let candidates = self
            .readers
            .run(move |conn| {
                const COLUMNS: &str = "h.id, h.query, h.result, h.processing_ns, \
                                       h.agent_version, h.created_us";
                let mut out = Vec::new();
                if !fts_query.is_empty() {
                    let mut stmt = conn
                        .prepare_cached(&format!(
                            "SELECT {COLUMNS} FROM history_fts
                             JOIN history h ON h.id = history_fts.rowid
                             WHERE history_fts MATCH ?1
                             ORDER BY history_fts.rank LIMIT ?2"
                        ))
                        .map_err(|e| backend("prepare similar", e))?;
                    let rows = stmt
                        .query_map(params![fts_query, want], history_row)
                        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                        .map_err(|e| backend("similar", e))?;
                    out.extend(rows);
                }
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM history h WHERE h.norm = ?1
                         ORDER BY h.id DESC LIMIT ?2"
                    ))
                    .map_err(|e| backend("prepare similar", e))?;
                let rows = stmt
                    .query_map(params![norm, want], history_row)
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| backend("similar", e))?;
                out.extend(rows);
                Ok(out)
            })
            .await?;
        Ok(rank(query, candidates, limit))
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.queue.flush().await
    }

    fn stats(&self) -> HistoryStats {
        self.queue.stats()
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{self, task, Fixture};
    use super::*;
    use std::io::{BufRead, BufReader};

    async fn fixture() -> Option<Fixture> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteTaskStore::open(dir.path().join("abacus.db"))
            .await
            .expect("open sqlite store");
        Some(Fixture::new(store, dir))
    }

    conformance::task_store_conformance!(fixture());

    #[tokio::test]
    async fn history_conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abacus.db");
        conformance::history_suite(|retention| {
            let path = path.clone();
            async move {
                // A new file per call: the suite checks retention from empty.
                let path = path.with_extension(format!("{retention}.db"));
                let store = SqliteTaskStore::open(path).await.expect("open");
                let history = store
                    .history_store(HistoryOptions {
                        retention,
                        ..HistoryOptions::default()
                    })
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
            let history = store
                .history_store(HistoryOptions::default())
                .expect("history");
            for i in 0..5 {
                let t = task(&format!("reopen-{i}"), "ctx", a2a::TaskState::Completed, i);
                store.save(&t).await.expect("save");
                saved.push(t);
            }
            history.record(HistoryEntry::new("2+2", "4", Duration::from_millis(3), "t"));
            history.flush().await.expect("flush");
        }
        let store = SqliteTaskStore::open(&path).await.expect("reopen");
        for t in &saved {
            assert_eq!(store.get(&t.id).await.expect("get").as_ref(), Some(t));
        }
        let history = store
            .history_store(HistoryOptions::default())
            .expect("history");
        let hits = history.similar("2 + 2", 5).await.expect("similar");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].result, "4");
    }

    #[tokio::test]
    async fn migrations_are_recorded_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abacus.db");
        drop(SqliteTaskStore::open(&path).await.expect("open"));
        drop(SqliteTaskStore::open(&path).await.expect("open again"));
        let conn = Connection::open(&path).expect("open raw");
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("versions");
        assert_eq!(versions, vec![1, 2, 3]);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abacus.db");
        drop(SqliteTaskStore::open(&path).await.expect("open"));
        Connection::open(&path)
            .and_then(|c| c.execute("INSERT INTO schema_migrations VALUES (999, 0)", []))
            .expect("bump version");
        let err = SqliteTaskStore::open(&path).await.expect_err("must refuse");
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[tokio::test]
    async fn not_a_database_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abacus.db");
        std::fs::write(
            &path,
            b"this is not a sqlite file, just some bytes...........",
        )
        .expect("write");
        assert!(SqliteTaskStore::open(&path).await.is_err());
    }

    #[tokio::test]
    async fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no/such/dir/abacus.db");
        assert!(SqliteTaskStore::open(&path).await.is_err());
    }

    #[tokio::test]
    async fn open_creates_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = super::super::StoreConfig {
            kind: super::super::StoreKind::Sqlite,
            data_dir: dir.path().join("nested/data"),
            ..Default::default()
        };
        let stores = super::super::open(&config).await.expect("open");
        assert_eq!(stores.tasks.kind(), "sqlite");
        assert_eq!(stores.history.kind(), "sqlite");
        assert!(config.sqlite_path().exists());
    }

    const KILL_ENV: &str = "ABACUS_STORE_KILL9_DB";

    /// Child half of [`saves_survive_kill_9`]: saves tasks forever from 8
    /// concurrent tasks, printing `saved <id>` after each `save` returned.
    /// Does nothing unless started by that test.
    #[test]
    fn kill9_child() {
        let Ok(path) = std::env::var(KILL_ENV) else {
            return;
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let store = SqliteTaskStore::open(&path).await.expect("open");
            let mut workers = Vec::new();
            for w in 0..8 {
                let store = store.clone();
                workers.push(tokio::spawn(async move {
                    // Bounded in case the parent never kills us.
                    for i in 0..20_000 {
                        let t = task(&format!("k{w}-{i}"), "kill", a2a::TaskState::Working, i);
                        store.save(&t).await.expect("save");
                        println!("saved {}", t.id);
                    }
                }));
            }
            for w in workers {
                let _ = w.await;
            }
        });
    }

    /// Every save acknowledged before `kill -9` is in the file afterwards.
    #[tokio::test]
    async fn saves_survive_kill_9() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abacus.db");
        let module = module_path!();
        let test_name = match module.split_once("::") {
            Some((_crate, rest)) => format!("{rest}::kill9_child"),
            None => "kill9_child".to_string(),
        };
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                test_name.as_str(),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(KILL_ENV, &path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let acked = tokio::task::spawn_blocking(move || {
            let mut acked = Vec::new();
            let mut lines = BufReader::new(stdout).lines();
            while acked.len() < 300 {
                match lines.next() {
                    Some(Ok(line)) => {
                        if let Some(id) = line.strip_prefix("saved ") {
                            acked.push(id.to_string());
                        }
                    }
                    _ => break,
                }
            }
            // SIGKILL mid-stream, then collect what it had printed already.
            child.kill().expect("kill");
            for line in lines.map_while(Result::ok) {
                if let Some(id) = line.strip_prefix("saved ") {
                    acked.push(id.to_string());
                }
            }
            let _ = child.wait();
            acked
        })
        .await
        .expect("reader");
        assert!(
            acked.len() >= 300,
            "child acknowledged only {}",
            acked.len()
        );
        let store = SqliteTaskStore::open(&path).await.expect("reopen");
        for id in &acked {
            assert!(
                store.get(id).await.expect("get").is_some(),
                "acknowledged task {id} lost"
            );
        }
    }
}

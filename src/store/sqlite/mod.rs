//! SQLite backend: one database file, WAL mode, a dedicated writer thread
//! with group commit and a small pool of read connections.
//!
//! # Durability
//!
//! The write connection runs `journal_mode=WAL`. With [`SqliteSync::Normal`] (the
//! server's default) a committed transaction's WAL frames are in the
//! kernel's page cache when `COMMIT` returns: a
//! [`TaskStore::save`](super::TaskStore::save) that
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
//!
//! # Sharing the file
//!
//! [`SqliteDatabase`] is the handle to all of this. The task store is one
//! user; an agent keeps its own tables in the same file through the same
//! handle ([`SqliteDatabase::migrate`], [`SqliteDatabase::write`],
//! [`SqliteDatabase::read`]), so its writes join the task saves' group
//! commits instead of competing with them for SQLite's single write lock.

mod migrations;
mod tasks;
#[cfg(test)]
pub(crate) mod tests;
mod writer;

pub use tasks::SqliteTaskStore;

use super::sql::migrate::{task_migrations, TASKS};
use super::sql::{Dialect, SqlArg, Statements};
use super::{Migrations, StoreError};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use writer::{WriteOp, Writer};

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

/// The SQLite spelling of the shared SQL.
pub(crate) struct Sqlite;

impl Dialect for Sqlite {
    const NAME: &'static str = "sqlite";
    const PLACEHOLDER: char = '?';
    const INT64: &'static str = "INTEGER";
    const ID_TYPE: &'static str = "TEXT";
    const DOC_TYPE: &'static str = "TEXT";
    const LEGACY_LEDGER_EXISTS: &'static str =
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'";
    const UPDATED_COLUMN: (&'static str, &'static str) = ("updated_us", "INTEGER NOT NULL");
    // SQLite has no microsecond clock: the writer binds it.
    const UPDATED_VALUE: Option<&'static str> = None;
    const DOC_FROM_TEXT: &'static str = "";
    const DOC_AS_TEXT: &'static str = "doc";
    // Count and page run in one read transaction instead.
    const COUNT_IN_PAGE: bool = false;
    const ARRAY_PARAMS: bool = false;
    const SKIP_LOCKED: &'static str = "";

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

impl StoreError {
    /// A SQLite failure while doing `context`, for stores that keep their
    /// own tables in a [`SqliteDatabase`].
    ///
    /// ```
    /// use abacus::store::StoreError;
    /// let e = StoreError::sqlite("insert note", "disk I/O error");
    /// assert_eq!(e.to_string(), "store backend error: sqlite insert note: disk I/O error");
    /// ```
    pub fn sqlite(context: &str, e: impl std::fmt::Display) -> Self {
        Self::Backend(format!("sqlite {context}: {e}"))
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Database
// ---------------------------------------------------------------------------

struct Shared {
    path: PathBuf,
    writer: Writer,
    readers: Arc<ReadPool>,
}

/// A SQLite database file: one writer thread with group commit and a pool
/// of read connections (see the module docs), shared by the task store and
/// whatever store an agent keeps in the same file.
///
/// Cloning is cheap and shares the file, the writer thread and the read
/// pool; the writer thread ends when the last clone is dropped.
///
/// ```
/// use abacus::store::{Migration, Migrations, SqliteDatabase, SqliteSync, StoreError};
///
/// const NOTES: Migrations = Migrations::new(
///     "notes",
///     &[Migration { version: 1, sql: "CREATE TABLE notes (body TEXT NOT NULL)" }],
/// );
///
/// # async fn demo(dir: &std::path::Path) -> Result<(), StoreError> {
/// let db = SqliteDatabase::open(dir.join("abacus.db"), SqliteSync::Normal).await?;
/// db.migrate(NOTES).await?;
/// db.write(|conn| {
///     conn.execute("INSERT INTO notes (body) VALUES ('hello')", [])
///         .map_err(|e| StoreError::sqlite("insert note", e))?;
///     Ok(())
/// })
/// .await?;
/// let notes: i64 = db
///     .read(|conn| {
///         conn.query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
///             .map_err(|e| StoreError::sqlite("count notes", e))
///     })
///     .await?;
/// assert_eq!(notes, 1);
/// # Ok(())
/// # }
/// # let dir = tempfile::tempdir().unwrap();
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo(dir.path())).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteDatabase {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDatabase")
            .field("path", &self.shared.path)
            .finish()
    }
}

impl SqliteDatabase {
    /// Opens (creating if needed) the database file at `path`, e.g.
    /// `./data/abacus.db`, applies the task store's pending migrations and
    /// starts the writer thread. The parent directory must exist.
    pub async fn open(path: impl AsRef<Path>, sync: SqliteSync) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let writer_path = path.clone();
        let conn = tokio::task::spawn_blocking(move || open_writer(&writer_path, sync))
            .await
            .map_err(|e| StoreError::sqlite("open task", e))??;
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

    /// Runs `f` on the writer thread in its next transaction and returns
    /// once that transaction committed.
    ///
    /// Writes are committed in groups, so `f` shares its transaction with
    /// other writes, task saves among them: a failing statement is undone
    /// by SQLite and fails only this call, but the statements `f` ran before
    /// it stay. Use a savepoint when they must apply all or not at all.
    /// Every write waits while `f` runs: keep it short.
    pub async fn write<F>(&self, f: F) -> Result<(), StoreError>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        self.shared.writer.submit(WriteOp::Run(Box::new(f))).await
    }

    /// [`SqliteDatabase::write`] returning what `f` returned, once its
    /// transaction committed.
    pub(crate) async fn write_returning<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let slot = Arc::new(std::sync::Mutex::new(None));
        let out = Arc::clone(&slot);
        self.write(move |conn| {
            let value = f(conn)?;
            *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
            Ok(())
        })
        .await?;
        let value = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        value.ok_or_else(|| StoreError::Backend("sqlite write returned nothing".into()))
    }

    /// Runs `f` with a read-only connection on the blocking thread pool. It
    /// sees every write whose call returned before it started; a
    /// transaction it opens reads one snapshot.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.shared.readers.run(f).await
    }

    /// Applies what the file lacks of `schema`, all or nothing, on the
    /// writer thread.
    pub async fn migrate(&self, schema: Migrations<'static>) -> Result<(), StoreError> {
        self.write(move |conn| migrations::apply_atomically(conn, &schema))
            .await
    }

    fn writer(&self) -> &Writer {
        &self.shared.writer
    }
}

// ---------------------------------------------------------------------------
// Connections
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
    .map_err(|e| StoreError::sqlite(&format!("open {}", path.display()), e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| StoreError::sqlite("busy_timeout", e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| StoreError::sqlite("journal_mode", e))?;
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
        .map_err(|e| StoreError::sqlite("synchronous", e))?;
    let synchronous: i64 = conn
        .query_row("PRAGMA synchronous", [], |row| row.get(0))
        .map_err(|e| StoreError::sqlite("synchronous", e))?;
    if synchronous != level {
        return Err(StoreError::Backend(format!(
            "sqlite: synchronous is {synchronous}, wanted {pragma} ({level})"
        )));
    }
    // Truncate the WAL file back to 64 MiB after checkpoints.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(|e| StoreError::sqlite("journal_size_limit", e))?;
    // Every append of a batch runs in a savepoint, whose statement journal
    // keeps the original of each page it changes. On disk (the default
    // past 64 KiB) that journal was 70 % of the writer's `pwrite` calls;
    // it only serves a rollback inside the open transaction, so memory is
    // enough: a crash loses nothing the WAL had.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(|e| StoreError::sqlite("temp_store", e))?;
    conn.set_prepared_statement_cache_capacity(32);
    // The task table belongs to every database the framework opens.
    let steps = task_migrations::<Sqlite>();
    migrations::apply_immediate(&conn, &Migrations::new(TASKS, &steps).adopting(&[1]))?;
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::sqlite(&format!("open {}", path.display()), e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| StoreError::sqlite("busy_timeout", e))?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| StoreError::sqlite("query_only", e))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
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
        .map_err(|e| StoreError::sqlite("read task", e))?
    }
}

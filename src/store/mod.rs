//! Task persistence: the [`TaskStore`] trait and its implementations.
//!
//! The core service keeps live tasks in memory while an agent works on them
//! and writes every state change through a `TaskStore`. A store's `save`
//! returns only once the write is durable for that backend, so a task whose
//! terminal state was reported to a client survives a crash.
//!
//! Three backends provide a [`TaskStore`]:
//!
//! * SQLite ([`SqliteTaskStore`], the default): one file under the data
//!   directory, written by a dedicated thread with group commit.
//! * PostgreSQL ([`PostgresTaskStore`]): a pooled `tokio-postgres` client,
//!   chosen when a `DATABASE_URL` is configured; replicas may share it, and
//!   signal each other through its [`PostgresBackplane`].
//! * Memory ([`MemoryTaskStore`]): bounded and lost on restart.
//!
//! The two SQL backends share their SQL (the statements, the migration
//! ledger and a dialect trait for what differs, in `store/sql`), and the
//! filters of a [`ListQuery`] are written once for SQL and memory.
//!
//! Push-notification configs and the outbox of notifications awaiting
//! delivery live next to the tasks, in the same database ([`push`]): a
//! [`PushStore`] per backend ([`SqlitePushStore`], [`PostgresPushStore`],
//! [`MemoryPushStore`]), sharing their SQL as the task stores do.
//!
//! The server builds its [`Stores`] with [`open`] from a [`StoreConfig`]. The
//! returned [`Backend`] lets an agent keep its own tables in the same
//! database: a [`SqliteDatabase`] (the shared writer thread and readers) or
//! a [`PostgresDatabase`] (the pool), each applying the agent's
//! [`Migrations`] next to the task store's.

mod log;
mod memory;
mod postgres;
pub mod push;
mod query;
mod sql;
mod sqlite;
mod timed;
mod token;

#[cfg(test)]
pub(crate) mod conformance;
#[cfg(test)]
pub(crate) use postgres::testing as pg_testing;

pub(crate) use log::conflict as log_conflict;
pub use log::{
    Backplane, Claim, ExpiredLease, Lease, LeaseHolder, LoggedEvent, LoggedTask, Signal,
};
pub use memory::{MemoryTaskStore, MemoryTaskStoreBuilder};
pub use postgres::{PostgresBackplane, PostgresDatabase, PostgresOptions, PostgresTaskStore};
pub use push::{
    MemoryPushStore, Notification, OutboxClaim, PostgresPushStore, PushStore, SqlitePushStore,
    Takeover,
};
pub use sql::migrate::{Migration, Migrations};
pub use sqlite::{SqliteDatabase, SqliteSync, SqliteTaskStore};
pub use timed::TimedStore;

/// The pool of [`PostgresDatabase::pool`].
pub use deadpool_postgres;
/// The SQLite client library the [`SqliteDatabase`] closures are given.
pub use rusqlite;
/// The PostgreSQL client library behind [`PostgresDatabase`].
pub use tokio_postgres;

use crate::protocol::Principal;
use a2a::{Task, TaskState};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// A failure of the storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or answered with an error.
    #[error("store backend error: {0}")]
    Backend(String),
    /// A stored record could not be decoded.
    #[error("corrupt stored record: {0}")]
    Corrupt(String),
    /// A page token that this store did not issue.
    #[error("invalid page token")]
    InvalidPageToken,
    /// The write lost a race: another replica wrote the task since (see
    /// [`TaskStore::append`]).
    #[error("{0}")]
    Conflict(String),
}

/// Whom a task belongs to: the principal that created it, within the
/// tenant it was created in. Every read and write of a task names its
/// owner, and a store answers only with tasks of that owner, so another
/// caller's task is indistinguishable from one that does not exist.
///
/// The anonymous owner (no authentication configured) and the default
/// tenant are the empty strings.
///
/// ```
/// use abacus::protocol::Principal;
/// use abacus::store::TaskOwner;
/// let alice = TaskOwner::new(&Principal::new("alice"), Some("acme"));
/// assert_eq!((alice.principal(), alice.tenant()), ("alice", "acme"));
/// assert_eq!(TaskOwner::anonymous(), TaskOwner::new(&Principal::default(), None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskOwner {
    principal: Arc<str>,
    tenant: Arc<str>,
}

/// The one shared empty string: an anonymous call in the default tenant
/// (every call without authentication) allocates nothing for its owner.
fn empty() -> Arc<str> {
    static EMPTY: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));
    Arc::clone(&EMPTY)
}

impl Default for TaskOwner {
    fn default() -> Self {
        TaskOwner {
            principal: empty(),
            tenant: empty(),
        }
    }
}

impl TaskOwner {
    /// The owner of tasks created by `principal` in `tenant`.
    pub fn new(principal: &Principal, tenant: Option<&str>) -> Self {
        TaskOwner {
            principal: principal.subject().map_or_else(empty, Arc::from),
            tenant: tenant.map_or_else(empty, Arc::from),
        }
    }

    /// The owner as a store keeps it (empty strings for the anonymous
    /// owner and the default tenant).
    pub(crate) fn from_stored(principal: &str, tenant: &str) -> Self {
        let keep = |s: &str| if s.is_empty() { empty() } else { Arc::from(s) };
        TaskOwner {
            principal: keep(principal),
            tenant: keep(tenant),
        }
    }

    /// Nobody in particular: the owner of every task when no
    /// authentication is configured.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// The principal's subject; empty for the anonymous owner.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// The tenant; empty for the default tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
}

/// Filters and paging for [`TaskStore::list`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only tasks of this owner (always applied).
    pub owner: TaskOwner,
    /// Only tasks of this context.
    pub context_id: Option<String>,
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// Only tasks whose status timestamp is after this instant.
    pub status_after: Option<DateTime<Utc>>,
    /// Maximum tasks in one page (already clamped by the caller, >= 1).
    pub page_size: usize,
    /// Opaque token from a previous page's `next_page_token`.
    pub page_token: Option<String>,
}

/// One page of [`TaskStore::list`] results, newest status first.
#[derive(Debug, Clone, Default)]
pub struct TaskPage {
    /// Tasks of this page, ordered by status timestamp descending, then id.
    pub tasks: Vec<Task>,
    /// Token for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
    /// Number of tasks matching the filters over all pages.
    pub total_size: usize,
}

/// Where tasks live between requests.
///
/// Implementations must be cheap to share (`Arc<dyn TaskStore>`).
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// Inserts or replaces `task` (keyed by `task.id`) of `owner`. Returns
    /// once durable. A stored task of another owner is left as it is.
    async fn save(&self, task: &Task, owner: &TaskOwner) -> Result<(), StoreError>;
    /// Loads a task by id; `None` when there is none of `owner`.
    async fn get(&self, id: &str, owner: &TaskOwner) -> Result<Option<Task>, StoreError>;
    /// Lists tasks matching `query` (of `query.owner`), newest status first.
    async fn list(&self, query: &ListQuery) -> Result<TaskPage, StoreError>;
    /// Saves without waiting: for intermediate states that a crash may lose.
    /// Stores keep the newest status per task (by status timestamp), so a
    /// late detached write never overwrites a newer, awaited one.
    fn save_detached(self: Arc<Self>, task: Task, owner: TaskOwner) {
        tokio::spawn(async move {
            if let Err(e) = self.save(&task, &owner).await {
                tracing::warn!(task_id = %task.id, error = %e, "background task save failed");
            }
        });
    }

    /// Appends `events` to the log of `task` and saves `task`, the state
    /// after the last of them, with `lease`, in one transaction; returns
    /// once durable. The events' sequence numbers are `after + 1`,
    /// `after + 2`, … in order; `events` may be empty (the task and lease
    /// are saved, the log stays as it is).
    ///
    /// Fails with [`StoreError::Conflict`], writing nothing, unless the
    /// stored task's log ends at `after` (a task not yet stored counts as
    /// ending at 0, and is inserted): one writer per task at a time, and a
    /// log without gaps or duplicates. A stored task of another owner is a
    /// conflict too.
    async fn append(
        &self,
        task: &Task,
        owner: &TaskOwner,
        after: u64,
        events: &[LoggedEvent],
        lease: Lease<'_>,
    ) -> Result<(), StoreError>;
    /// A task with the sequence number of its last logged event and its
    /// lease; `None` when there is none of `owner`.
    async fn get_logged(
        &self,
        id: &str,
        owner: &TaskOwner,
    ) -> Result<Option<LoggedTask>, StoreError>;
    /// Up to `limit` logged events of task `id` (of `owner`) after
    /// sequence number `after`, in order. Events older than the log's
    /// retention may be gone: the first one returned is then later than
    /// `after + 1`.
    async fn events_after(
        &self,
        id: &str,
        owner: &TaskOwner,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StoreError>;
    /// Takes the lease of task `id` for `replica` until `until` if it is
    /// free, ended before `now` or already `replica`'s; terminal tasks are
    /// never leased.
    async fn claim(
        &self,
        id: &str,
        owner: &TaskOwner,
        replica: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;
    /// Extends every lease `replica` holds to `until`; returns how many.
    async fn renew_leases(&self, replica: &str, until: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Gives up `replica`'s lease of task `id`; nothing when another holds it.
    async fn release_lease(&self, id: &str, replica: &str) -> Result<(), StoreError>;
    /// Up to `limit` tasks, not terminal, whose lease ended before `now`.
    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ExpiredLease>, StoreError>;
    /// Deletes the logged events appended before `before`; returns how many.
    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// A cheap round-trip used by readiness checks.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// A small durable write, used by readiness checks to prove that saves
    /// would succeed (a full disk or a read-only file fails it while reads
    /// still work). The default is [`TaskStore::ping`].
    async fn heartbeat(&self) -> Result<(), StoreError> {
        self.ping().await
    }
    /// A short name for logs and health output (`memory`, `sqlite`, `postgres`).
    fn kind(&self) -> &'static str;
}

/// Which backend [`open`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreKind {
    /// PostgreSQL when [`StoreConfig::database_url`] is set, SQLite otherwise.
    #[default]
    Auto,
    /// A SQLite file `abacus.db` under [`StoreConfig::data_dir`].
    Sqlite,
    /// PostgreSQL at [`StoreConfig::database_url`] (required).
    Postgres,
    /// Process memory, bounded by capacity and TTL; lost on restart.
    Memory,
}

impl FromStr for StoreKind {
    type Err = String;

    /// Parses `auto`, `sqlite`, `postgres` (or `postgresql`) and `memory`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" | "pg" => Ok(Self::Postgres),
            "memory" | "mem" => Ok(Self::Memory),
            other => Err(format!(
                "unknown store kind {other:?} (expected auto, sqlite, postgres or memory)"
            )),
        }
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Memory => "memory",
        })
    }
}

/// Settings for [`open`].
#[derive(Clone)]
pub struct StoreConfig {
    /// Which backend to use; [`StoreKind::Auto`] picks PostgreSQL when
    /// `database_url` is set and SQLite otherwise.
    pub kind: StoreKind,
    /// Directory of the SQLite file (`abacus.db`); created if missing.
    pub data_dir: PathBuf,
    /// PostgreSQL connection string (`postgres://user:pass@host:port/db`).
    pub database_url: Option<String>,
    /// Maximum number of tasks the memory backend keeps.
    pub memory_capacity: usize,
    /// How long the memory backend keeps a task after it reached a terminal
    /// state.
    pub memory_ttl: Duration,
    /// How hard SQLite commits are pushed to disk.
    pub sqlite_sync: SqliteSync,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Auto,
            data_dir: PathBuf::from("./data"),
            database_url: None,
            memory_capacity: memory::DEFAULT_CAPACITY,
            memory_ttl: memory::DEFAULT_TTL,
            sqlite_sync: SqliteSync::Normal,
        }
    }
}

impl std::fmt::Debug for StoreConfig {
    /// Never prints the database URL, which may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("kind", &self.kind)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("memory_capacity", &self.memory_capacity)
            .field("memory_ttl", &self.memory_ttl)
            .field("sqlite_sync", &self.sqlite_sync)
            .finish()
    }
}

impl StoreConfig {
    /// The backend [`open`] builds for this configuration.
    pub fn effective_kind(&self) -> StoreKind {
        match self.kind {
            StoreKind::Auto if self.database_url.is_some() => StoreKind::Postgres,
            StoreKind::Auto => StoreKind::Sqlite,
            kind => kind,
        }
    }

    /// The SQLite file used by [`StoreKind::Sqlite`].
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("abacus.db")
    }
}

/// The database a store was opened on, for stores an agent keeps next to
/// the tasks (see [`crate::math::history::open`] for one).
///
/// ```
/// use abacus::store::{Backend, StoreConfig, StoreKind};
/// # async fn demo(dir: &std::path::Path) -> Result<(), abacus::store::StoreError> {
/// let config = StoreConfig {
///     kind: StoreKind::Sqlite,
///     data_dir: dir.to_path_buf(),
///     ..StoreConfig::default()
/// };
/// let stores = abacus::store::open(&config).await?;
/// match &stores.backend {
///     Backend::Sqlite(db) => assert_eq!(db.path(), config.sqlite_path()),
///     other => panic!("expected SQLite, got {other:?}"),
/// }
/// assert_eq!(stores.backend.kind(), stores.tasks.kind());
/// assert_eq!(stores.push.kind(), "sqlite");
/// # Ok(())
/// # }
/// # let dir = tempfile::tempdir().unwrap();
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo(dir.path())).unwrap();
/// ```
#[derive(Debug, Clone)]
pub enum Backend {
    /// Process memory: nothing to share; agents keep their own in memory.
    Memory,
    /// A SQLite file: its writer thread and read connections.
    Sqlite(SqliteDatabase),
    /// A PostgreSQL database: its connection pool.
    Postgres(PostgresDatabase),
}

impl Backend {
    /// A short name (`memory`, `sqlite`, `postgres`), as [`TaskStore::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// The stores the server runs on and the database under them, built by
/// [`open`]: the tasks, the push configs and notification outbox kept next
/// to them (same file, same database or memory, see [`push::open`]), and
/// the backend itself for agent-owned stores.
#[derive(Clone)]
pub struct Stores {
    /// Task persistence.
    pub tasks: Arc<dyn TaskStore>,
    /// Push configs and the outbox, in the same database as `tasks`.
    pub push: Arc<dyn PushStore>,
    /// How replicas sharing `tasks` signal each other (PostgreSQL's
    /// `LISTEN`/`NOTIFY`); `None` for stores one process owns.
    pub backplane: Option<Arc<dyn Backplane>>,
    /// The database `tasks` lives in, for agent-owned stores.
    pub backend: Backend,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("tasks", &self.tasks.kind())
            .field("push", &self.push.kind())
            .field("backplane", &self.backplane.is_some())
            .field("backend", &self.backend)
            .finish()
    }
}

/// Opens the configured backend: creates the data directory or connects to
/// PostgreSQL, runs the task and push stores' schema migrations and starts
/// the SQLite writer thread.
pub async fn open(config: &StoreConfig) -> Result<Stores, StoreError> {
    let mut backplane: Option<Arc<dyn Backplane>> = None;
    let (tasks, backend): (Arc<dyn TaskStore>, Backend) = match config.effective_kind() {
        StoreKind::Memory => {
            let tasks = MemoryTaskStore::builder()
                .capacity(config.memory_capacity)
                .ttl(config.memory_ttl)
                .build();
            (Arc::new(tasks), Backend::Memory)
        }
        StoreKind::Postgres => {
            let url = config.database_url.as_deref().ok_or_else(|| {
                StoreError::Backend("the postgres store needs a database URL".into())
            })?;
            let db = PostgresDatabase::connect(url).await?;
            backplane = Some(Arc::new(PostgresBackplane::start(&db)));
            (
                Arc::new(PostgresTaskStore::new(db.clone())),
                Backend::Postgres(db),
            )
        }
        StoreKind::Sqlite | StoreKind::Auto => {
            let dir = config.data_dir.clone();
            tokio::task::spawn_blocking(move || std::fs::create_dir_all(&dir))
                .await
                .map_err(|e| StoreError::Backend(format!("create data directory: {e}")))?
                .map_err(|e| {
                    StoreError::Backend(format!(
                        "create data directory {}: {e}",
                        config.data_dir.display()
                    ))
                })?;
            let db = SqliteDatabase::open(config.sqlite_path(), config.sqlite_sync).await?;
            (
                Arc::new(SqliteTaskStore::new(db.clone())),
                Backend::Sqlite(db),
            )
        }
    };
    Ok(Stores {
        push: push::open(&backend).await?,
        backplane,
        tasks,
        backend,
    })
}

/// The sort key of a status timestamp: nanoseconds since the Unix epoch,
/// saturated to the `i64` range; a missing timestamp sorts after all others
/// (`i64::MIN`). Shared by all backends so they order and page identically.
pub(crate) fn status_key(ts: Option<DateTime<Utc>>) -> i64 {
    match ts {
        None => i64::MIN,
        Some(ts) => time_key(ts),
    }
}

/// Nanoseconds since the epoch, saturated to `(i64::MIN, i64::MAX]`.
pub(crate) fn time_key(ts: DateTime<Utc>) -> i64 {
    match ts.timestamp_nanos_opt() {
        Some(n) => n.max(i64::MIN + 1),
        None if ts.timestamp() < 0 => i64::MIN + 1,
        None => i64::MAX,
    }
}

/// The stored spelling of a task state (`TASK_STATE_COMPLETED`, ...), the
/// same as on the wire.
pub(crate) fn state_name(state: &TaskState) -> Result<String, StoreError> {
    match serde_json::to_value(state) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(other) => Err(StoreError::Corrupt(format!(
            "task state serialized as {other}"
        ))),
        Err(e) => Err(StoreError::Corrupt(format!("task state: {e}"))),
    }
}

/// Serializes a task for storage.
pub(crate) fn encode_task(task: &Task) -> Result<String, StoreError> {
    serde_json::to_string(task).map_err(|e| StoreError::Corrupt(format!("encode task: {e}")))
}

/// Decodes a stored task document.
pub(crate) fn decode_task(doc: &str) -> Result<Task, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("decode task: {e}")))
}

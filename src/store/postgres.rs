//! PostgreSQL backend: `tokio-postgres` behind a `deadpool-postgres` pool,
//! plain SQL, a `schema_migrations` table applied at start.
//!
//! * Durability: each `save` is one autocommit `INSERT .. ON CONFLICT`
//!   statement; with the server's default `synchronous_commit = on` it
//!   returns only after the commit record is flushed to the server's WAL.
//! * Several replicas may share one database: migrations run in one
//!   transaction holding a transaction-level advisory lock, so concurrent
//!   starts apply them once.
//! * Tasks are stored as a `json` document plus indexed columns (`id`,
//!   `context_id`, `state`, `status_ts`, `updated_at`). The document column
//!   is `json`, not `jsonb`, on purpose: `jsonb` rejects the string escape
//!   `\u0000` (which clients may send inside a message), and rewrites
//!   numbers and key order, while `json` keeps the exact text so a task
//!   reads back identical. Nothing queries inside the document; cast to
//!   `jsonb` ad hoc if needed. `id` uses the `"C"` collation so tasks sort
//!   by id byte-wise as in the other backends.
//! * Connections: a pool recycles a connection only if it is not closed, so
//!   after the server went away and came back, dead connections are
//!   replaced on their next checkout; [`TaskStore::ping`] runs `SELECT 1`
//!   under a timeout and discards the connection it used when that fails.
//! * TLS is not supported (`NoTls`): use it on a trusted network or through
//!   a local proxy; `sslmode=require` URLs fail to connect.
//!
//! Query history uses `pg_trgm` when the extension exists or can be created
//! (it is a trusted extension since PostgreSQL 13, so a database owner can
//! create it): a GiST trigram index serves nearest-neighbour candidates
//! (`ORDER BY norm <-> $1`). Without it, candidates are the rows sharing the
//! first three characters of the normalized query (an expression index on
//! `left(norm, 3)`), the 1 000 newest rows and exact matches. Either way the
//! candidates are ranked by the backend-independent similarity of
//! [`super::history`]. PostgreSQL text cannot hold NUL characters, so history
//! strings are stored with NUL replaced by U+FFFD.

use super::history::{
    duration_to_nanos, nanos_to_duration, normalize, rank, HistoryEntry, HistoryOptions,
    HistoryQueue, HistorySink, HistoryStats, HistoryStore,
};
use super::query::TaskFilter;
use super::sql::{page_from_rows, Dialect, ListSql, SqlArg, Statements};
use super::{
    decode_task, encode_task, state_name, status_key, ListQuery, StoreError, TaskPage, TaskStore,
};
use a2a::Task;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::sync::LazyLock;
use std::time::Duration;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::NoTls;

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
/// Longest wait for a pooled connection, a new connection or a recycle.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time [`TaskStore::ping`] waits for `SELECT 1`.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Candidates fetched per similarity search, at most.
const MAX_CANDIDATES: i64 = 500;
/// Newest rows considered by the fallback similarity search.
const RECENT_WINDOW: i64 = 1_000;

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Pool size (default 16).
    pub max_connections: usize,
    /// Schema for the tables (created if missing; `None` = the server's
    /// default `search_path`). Must be a plain lowercase identifier. Lets
    /// several deployments or test runs share a database.
    pub schema: Option<String>,
    /// Connect timeout used when the URL sets none (default 5 s).
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            schema: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL spelling of the shared SQL.
pub(crate) struct Postgres;

impl Dialect for Postgres {
    const UPDATED_COLUMN: (&'static str, &'static str) =
        ("updated_at", "TIMESTAMPTZ NOT NULL DEFAULT now()");
    const UPDATED_VALUE: Option<&'static str> = Some("now()");
    const DOC_FROM_TEXT: &'static str = "::text::json";
    const DOC_AS_TEXT: &'static str = "doc::text";
    // One statement, one snapshot.
    const COUNT_IN_PAGE: bool = true;

    fn param(n: usize) -> String {
        format!("${n}")
    }

    fn statements() -> &'static Statements {
        static STATEMENTS: LazyLock<Statements> = LazyLock::new(Statements::new::<Postgres>);
        &STATEMENTS
    }
}

impl ToSql for SqlArg {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            SqlArg::Text(s) => s.to_sql(ty, out),
            SqlArg::Int(n) => n.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <String as ToSql>::accepts(ty) || <i64 as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

fn pg(context: &str, e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Backend(format!(
            "postgres {context}: {} ({})",
            db.message(),
            db.code().code()
        )),
        None => StoreError::Backend(format!("postgres {context}: {e}")),
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg("connect", e),
        other => StoreError::Backend(format!("postgres pool: {other}")),
    }
}

fn valid_schema(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && s.len() <= 63
}

/// Tasks in PostgreSQL (see the module docs).
///
/// Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct PostgresTaskStore {
    pool: Pool,
    trigram: bool,
}

impl std::fmt::Debug for PostgresTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTaskStore")
            .field("pool", &self.pool.status())
            .field("trigram", &self.trigram)
            .finish()
    }
}

impl PostgresTaskStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`,
    /// the `DATABASE_URL` format), runs migrations and returns the store.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Like [`PostgresTaskStore::connect`] with explicit options.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        // The parse error never echoes the URL, which may hold a password.
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("invalid database URL: {e}")))?;
        Self::from_config(config, options).await
    }

    /// Connects with an already parsed configuration.
    pub async fn from_config(
        mut config: tokio_postgres::Config,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("abacus");
        }
        if let Some(schema) = &options.schema {
            if !valid_schema(schema) {
                return Err(StoreError::Backend(format!(
                    "postgres: invalid schema name {schema:?}"
                )));
            }
            let mut opts = config.get_options().unwrap_or_default().to_string();
            if !opts.is_empty() {
                opts.push(' ');
            }
            opts.push_str(&format!("-c search_path={schema},public"));
            config.options(opts);
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(format!("postgres pool: {e}")))?;
        let trigram = migrate(&pool, options.schema.as_deref()).await?;
        if !trigram {
            tracing::info!("pg_trgm unavailable; history similarity uses prefix and recency");
        }
        Ok(Self { pool, trigram })
    }

    /// Whether history similarity search uses `pg_trgm`.
    pub fn has_trigram(&self) -> bool {
        self.trigram
    }

    /// The query history kept in the same database. Must be called inside a
    /// Tokio runtime (its batching task is spawned there).
    pub fn history_store(
        &self,
        options: HistoryOptions,
    ) -> Result<PostgresHistoryStore, StoreError> {
        let sink = std::sync::Arc::new(PostgresHistorySink {
            pool: self.pool.clone(),
        });
        Ok(PostgresHistoryStore {
            queue: HistoryQueue::start(sink, &options)?,
            pool: self.pool.clone(),
            trigram: self.trigram,
        })
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }
}

/// Applies pending migrations and sets up trigram search; returns whether
/// `pg_trgm` is usable.
async fn migrate(pool: &Pool, schema: Option<&str>) -> Result<bool, StoreError> {
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

#[async_trait]
impl TaskStore for PostgresTaskStore {
    async fn save(&self, task: &Task) -> Result<(), StoreError> {
        let state = state_name(&task.status.state)?;
        let key = status_key(task.status.timestamp);
        let doc = encode_task(task)?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&Postgres::statements().upsert)
            .await
            .map_err(|e| pg("prepare save", e))?;
        client
            .execute(&stmt, &[&task.id, &task.context_id, &state, &key, &doc])
            .await
            .map_err(|e| pg("save task", e))?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Task>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&Postgres::statements().get)
            .await
            .map_err(|e| pg("prepare get", e))?;
        let row = client
            .query_opt(&stmt, &[&id])
            .await
            .map_err(|e| pg("get task", e))?;
        match row {
            None => Ok(None),
            Some(row) => {
                let doc: String = row
                    .try_get(0)
                    .map_err(|e| StoreError::Corrupt(format!("task document: {e}")))?;
                decode_task(&doc).map(Some)
            }
        }
    }

    async fn list(&self, query: &ListQuery) -> Result<TaskPage, StoreError> {
        let sql = ListSql::new::<Postgres>(&TaskFilter::new(query)?)?;
        let params: Vec<&(dyn ToSql + Sync)> =
            sql.args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        let client = self.client().await?;
        let rows = client
            .query(&sql.page, &params)
            .await
            .map_err(|e| pg("list tasks", e))?;
        let total: i64 = match rows.first() {
            Some(row) => row
                .try_get(0)
                .map_err(|e| StoreError::Corrupt(format!("count: {e}")))?,
            // An empty page has no row to carry the count.
            None => client
                .query_one(&sql.count, &params[..sql.count_args])
                .await
                .map_err(|e| pg("count tasks", e))?
                .try_get(0)
                .map_err(|e| StoreError::Corrupt(format!("count: {e}")))?,
        };
        drop(client);
        let rows = rows.iter().map(|row| {
            let key: i64 = row
                .try_get(1)
                .map_err(|e| StoreError::Corrupt(format!("status_ts: {e}")))?;
            let doc: String = row
                .try_get(2)
                .map_err(|e| StoreError::Corrupt(format!("task document: {e}")))?;
            Ok((key, doc))
        });
        page_from_rows(rows, sql.page_size, total)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = tokio::time::timeout(PING_TIMEOUT, self.pool.get())
            .await
            .map_err(|_| StoreError::Backend("postgres ping: timed out".into()))?
            .map_err(pool_err)?;
        match tokio::time::timeout(PING_TIMEOUT, client.simple_query("SELECT 1")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                // Do not hand this connection out again.
                drop(Object::take(client));
                Err(pg("ping", e))
            }
            Err(_) => {
                drop(Object::take(client));
                Err(StoreError::Backend("postgres ping: timed out".into()))
            }
        }
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}

/// PostgreSQL text cannot contain NUL.
fn no_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{fffd}")
    } else {
        s
    }
}

struct PostgresHistorySink {
    pool: Pool,
}

#[async_trait]
impl HistorySink for PostgresHistorySink {
    async fn write(&self, batch: Vec<HistoryEntry>) -> Result<(), StoreError> {
        let n = batch.len();
        let (mut query, mut norm, mut result, mut nanos, mut version, mut created) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for e in batch {
            let q = no_nul(e.query);
            norm.push(normalize(&q));
            query.push(q);
            result.push(no_nul(e.result));
            nanos.push(duration_to_nanos(e.processing_time));
            version.push(no_nul(e.agent_version));
            created.push(e.created_at);
        }
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO history
                    (query, norm, result, processing_ns, agent_version, created_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[],
                                      $4::int8[], $5::text[], $6::timestamptz[])",
            )
            .await
            .map_err(|e| pg("prepare history insert", e))?;
        client
            .execute(&stmt, &[&query, &norm, &result, &nanos, &version, &created])
            .await
            .map_err(|e| pg("insert history", e))?;
        Ok(())
    }

    async fn prune(&self, keep: usize) -> Result<(), StoreError> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let client = self.pool.get().await.map_err(pool_err)?;
        client
            .execute(
                "DELETE FROM history WHERE id <= (
                    SELECT id FROM history ORDER BY id DESC OFFSET $1 LIMIT 1
                 )",
                &[&keep],
            )
            .await
            .map_err(|e| pg("prune history", e))?;
        Ok(())
    }
}

/// Query history in the database of a [`PostgresTaskStore`]
/// (see [`PostgresTaskStore::history_store`] and the module docs).
pub struct PostgresHistoryStore {
    queue: HistoryQueue,
    pool: Pool,
    trigram: bool,
}

impl std::fmt::Debug for PostgresHistoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresHistoryStore")
            .field("trigram", &self.trigram)
            .field("queue", &self.queue)
            .finish()
    }
}

impl PostgresHistoryStore {
    #[cfg(test)]
    fn without_trigram(mut self) -> Self {
        self.trigram = false;
        self
    }
}

const HISTORY_COLUMNS: &str = "id, query, result, processing_ns, agent_version, created_at";

#[async_trait]
impl HistoryStore for PostgresHistoryStore {
    fn record(&self, entry: HistoryEntry) {
        self.queue.record(entry);
    }

    async fn similar(&self, query: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let norm = normalize(&no_nul(query.to_string()));
        let want = i64::try_from(limit.saturating_mul(10))
            .unwrap_or(i64::MAX)
            .clamp(50, MAX_CANDIDATES);
        let client = self.pool.get().await.map_err(pool_err)?;
        let rows = if self.trigram {
            let stmt = client
                .prepare_cached(&format!(
                    "(SELECT {HISTORY_COLUMNS} FROM history
                      ORDER BY norm <-> $1::text LIMIT $2)
                     UNION
                     (SELECT {HISTORY_COLUMNS} FROM history WHERE norm = $1::text
                      ORDER BY id DESC LIMIT $2)"
                ))
                .await
                .map_err(|e| pg("prepare similar", e))?;
            client
                .query(&stmt, &[&norm, &want])
                .await
                .map_err(|e| pg("similar", e))?
        } else {
            let prefix: String = norm.chars().take(3).collect();
            let stmt = client
                .prepare_cached(&format!(
                    "(SELECT {HISTORY_COLUMNS} FROM history WHERE left(norm, 3) = $1::text
                      ORDER BY id DESC LIMIT $2)
                     UNION
                     (SELECT {HISTORY_COLUMNS} FROM history ORDER BY id DESC LIMIT $3)
                     UNION
                     (SELECT {HISTORY_COLUMNS} FROM history WHERE norm = $4::text
                      ORDER BY id DESC LIMIT $2)"
                ))
                .await
                .map_err(|e| pg("prepare similar", e))?;
            client
                .query(&stmt, &[&prefix, &want, &RECENT_WINDOW, &norm])
                .await
                .map_err(|e| pg("similar", e))?
        };
        drop(client);
        let mut candidates = Vec::with_capacity(rows.len());
        for row in &rows {
            let decoded = (|| -> Result<(i64, HistoryEntry), tokio_postgres::Error> {
                let created_at: DateTime<Utc> = row.try_get(5)?;
                Ok((
                    row.try_get(0)?,
                    HistoryEntry {
                        query: row.try_get(1)?,
                        result: row.try_get(2)?,
                        processing_time: nanos_to_duration(row.try_get(3)?),
                        agent_version: row.try_get(4)?,
                        created_at,
                    },
                ))
            })();
            candidates.push(decoded.map_err(|e| StoreError::Corrupt(format!("history row: {e}")))?);
        }
        Ok(rank(query, candidates, limit))
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.queue.flush().await
    }

    fn stats(&self) -> HistoryStats {
        self.queue.stats()
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{self, task, Fixture};
    use super::*;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    fn database_url() -> Option<String> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                eprintln!("DATABASE_URL not set: skipping PostgreSQL test");
                None
            }
        }
    }

    /// Drops its test schema when the test ends.
    struct SchemaGuard {
        url: String,
        schema: String,
    }

    impl Drop for SchemaGuard {
        fn drop(&mut self) {
            let url = self.url.clone();
            let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
            // Tests run inside a runtime, which cannot block on another:
            // clean up from a plain thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    if let Ok((client, conn)) = tokio_postgres::connect(&url, NoTls).await {
                        let conn = tokio::spawn(conn);
                        let _ = client.batch_execute(&sql).await;
                        drop(client);
                        let _ = conn.await;
                    }
                });
            })
            .join();
        }
    }

    fn unique_schema() -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = Utc::now().timestamp_subsec_nanos();
        format!(
            "abacus_test_{}_{}_{}",
            std::process::id(),
            nanos,
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    async fn connect_in_schema(url: &str) -> (PostgresTaskStore, SchemaGuard) {
        let schema = unique_schema();
        let store = PostgresTaskStore::connect_with(
            url,
            PostgresOptions {
                schema: Some(schema.clone()),
                max_connections: 4,
                ..PostgresOptions::default()
            },
        )
        .await
        .expect("connect to DATABASE_URL");
        let guard = SchemaGuard {
            url: url.to_string(),
            schema,
        };
        (store, guard)
    }

    async fn fixture() -> Option<Fixture> {
        let url = database_url()?;
        let (store, guard) = connect_in_schema(&url).await;
        Some(Fixture::new(store, guard))
    }

    conformance::task_store_conformance!(fixture());

    /// A history store that keeps its schema alive.
    struct Guarded {
        inner: PostgresHistoryStore,
        _store: PostgresTaskStore,
        _guard: SchemaGuard,
    }

    #[async_trait]
    impl HistoryStore for Guarded {
        fn record(&self, entry: HistoryEntry) {
            self.inner.record(entry);
        }
        async fn similar(&self, q: &str, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
            self.inner.similar(q, limit).await
        }
        async fn flush(&self) -> Result<(), StoreError> {
            self.inner.flush().await
        }
        fn stats(&self) -> HistoryStats {
            self.inner.stats()
        }
        fn kind(&self) -> &'static str {
            self.inner.kind()
        }
    }

    async fn history_suite(trigram: bool) {
        let Some(url) = database_url() else {
            return;
        };
        conformance::history_suite(|retention| {
            let url = url.clone();
            async move {
                let (store, guard) = connect_in_schema(&url).await;
                assert!(store.has_trigram(), "pg_trgm should be available in CI");
                let mut history = store
                    .history_store(HistoryOptions {
                        retention,
                        ..HistoryOptions::default()
                    })
                    .expect("history store");
                if !trigram {
                    history = history.without_trigram();
                }
                Some(Box::new(Guarded {
                    inner: history,
                    _store: store,
                    _guard: guard,
                }) as Box<dyn HistoryStore>)
            }
        })
        .await;
    }

    #[tokio::test]
    async fn history_conformance_trigram() {
        history_suite(true).await;
    }

    #[tokio::test]
    async fn history_conformance_fallback() {
        history_suite(false).await;
    }

    #[tokio::test]
    async fn bad_urls_are_errors() {
        assert!(PostgresTaskStore::connect("not a url at all")
            .await
            .is_err());
        // Nothing listens on port 1.
        let err = PostgresTaskStore::connect("postgres://u:secret@127.0.0.1:1/db")
            .await
            .expect_err("must fail");
        assert!(!err.to_string().contains("secret"), "{err}");
        let bad_schema = PostgresOptions {
            schema: Some("x; DROP TABLE tasks".into()),
            ..PostgresOptions::default()
        };
        assert!(
            PostgresTaskStore::connect_with("postgres://u@127.0.0.1:1/db", bad_schema)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn migrations_run_once_and_concurrently() {
        let Some(url) = database_url() else {
            return;
        };
        let schema = unique_schema();
        let _guard = SchemaGuard {
            url: url.clone(),
            schema: schema.clone(),
        };
        let options = PostgresOptions {
            schema: Some(schema),
            max_connections: 2,
            ..PostgresOptions::default()
        };
        // Several replicas starting at once on an empty schema.
        let starts = (0..4).map(|_| {
            let (url, options) = (url.clone(), options.clone());
            async move { PostgresTaskStore::connect_with(&url, options).await }
        });
        let stores: Vec<_> = futures_join_all(starts).await;
        for s in &stores {
            assert!(s.is_ok(), "{s:?}");
        }
        let store = stores.into_iter().flatten().next().expect("a store");
        let client = store.client().await.expect("client");
        let versions: Vec<i64> = client
            .query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
            .await
            .expect("versions")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, vec![1, 2]);
    }

    /// `join_all` without a futures dependency.
    async fn futures_join_all<F, T>(futs: impl Iterator<Item = F>) -> Vec<T>
    where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let handles: Vec<_> = futs.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("join"));
        }
        out
    }

    #[tokio::test]
    async fn open_picks_postgres_when_url_is_set() {
        let Some(url) = database_url() else {
            return;
        };
        let config = super::super::StoreConfig {
            database_url: Some(url),
            ..Default::default()
        };
        let stores = super::super::open(&config).await.expect("open");
        assert_eq!(stores.tasks.kind(), "postgres");
        assert_eq!(stores.history.kind(), "postgres");
        stores.tasks.ping().await.expect("ping");
    }

    /// A TCP forwarder that can be taken down and brought back on the same
    /// port, standing in for a database restart.
    struct Proxy {
        addr: SocketAddr,
        target: SocketAddr,
        accept: Option<JoinHandle<()>>,
        conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    }

    impl Proxy {
        async fn start(target: SocketAddr) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let mut proxy = Proxy {
                addr,
                target,
                accept: None,
                conns: Arc::default(),
            };
            proxy.serve(listener);
            proxy
        }

        fn serve(&mut self, listener: TcpListener) {
            let target = self.target;
            let conns = self.conns.clone();
            self.accept = Some(tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let conn = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    conns.lock().expect("conns").push(conn);
                }
            }));
        }

        /// Stops listening and cuts every forwarded connection.
        async fn down(&mut self) {
            if let Some(accept) = self.accept.take() {
                accept.abort();
                let _ = accept.await;
            }
            let conns: Vec<_> = self.conns.lock().expect("conns").drain(..).collect();
            for c in conns {
                c.abort();
                let _ = c.await;
            }
        }

        async fn up(&mut self) {
            let listener = TcpListener::bind(self.addr).await.expect("rebind");
            self.serve(listener);
        }
    }

    #[tokio::test]
    async fn ping_fails_while_down_and_recovers() {
        let Some(url) = database_url() else {
            return;
        };
        let real: tokio_postgres::Config = url.parse().expect("DATABASE_URL");
        let host = match real.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_string(),
        };
        let port = real.get_ports().first().copied().unwrap_or(5432);
        let target = tokio::net::lookup_host((host.as_str(), port))
            .await
            .expect("resolve")
            .next()
            .expect("an address");
        let mut proxy = Proxy::start(target).await;

        let schema = unique_schema();
        let _guard = SchemaGuard {
            url: url.clone(),
            schema: schema.clone(),
        };
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(proxy.addr.port())
            .connect_timeout(Duration::from_secs(2));
        if let Some(user) = real.get_user() {
            config.user(user);
        }
        if let Some(password) = real.get_password() {
            config.password(password);
        }
        if let Some(db) = real.get_dbname() {
            config.dbname(db);
        }
        let store = PostgresTaskStore::from_config(
            config,
            PostgresOptions {
                schema: Some(schema),
                max_connections: 2,
                ..PostgresOptions::default()
            },
        )
        .await
        .expect("connect through proxy");
        store.ping().await.expect("ping while up");
        let t = task("survivor", "ctx", a2a::TaskState::Working, 1);
        store.save(&t).await.expect("save while up");

        proxy.down().await;
        assert!(store.ping().await.is_err(), "ping must fail while down");
        assert!(store.ping().await.is_err(), "ping must keep failing");
        assert!(store.get("survivor").await.is_err());

        proxy.up().await;
        // The pool replaces dead connections on checkout; allow a few
        // attempts for the closed sockets to be noticed.
        let mut recovered = false;
        for _ in 0..50 {
            if store.ping().await.is_ok() {
                recovered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(recovered, "ping did not recover after the server came back");
        assert_eq!(
            store.get("survivor").await.expect("get after recovery"),
            Some(t)
        );
        proxy.down().await;
    }
}

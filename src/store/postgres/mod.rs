//! PostgreSQL backend: `tokio-postgres` behind a `deadpool-postgres` pool,
//! the shared SQL of [`super::sql`], migrations applied at start.
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
//!   replaced on their next checkout; [`TaskStore::ping`](super::TaskStore::ping) runs `SELECT 1`
//!   under a timeout and discards the connection it used when that fails.
//! * Every wait is bounded, so a store that cannot answer gives the clear
//!   store error instead of a hang: for a pooled connection and a new one
//!   (5 s), and for the task store's statements
//!   ([`PostgresOptions::query_timeout`]). A frozen server or a network
//!   partition keeps sockets open with no answer, so a connection whose
//!   statement timed out is dropped, not pooled again. Such a statement may
//!   still take effect.
//! * TLS is not supported (`NoTls`): use it on a trusted network or through
//!   a local proxy; `sslmode=require` URLs fail to connect.

/// Runs `body` on a pooled connection (`client`) within the database's
/// query timeout; a statement that got no answer in time drops its
/// connection ([`abandon`]) and is a store error. A macro rather than a
/// function: the body borrows the client across its awaits.
macro_rules! bounded {
    ($db:expr, $what:expr, |$client:ident| $body:expr) => {{
        #[allow(unused_mut)]
        let mut $client = $db.client().await?;
        let limit = $db.query_timeout();
        let outcome = tokio::time::timeout(limit, async { $body }).await;
        match outcome {
            Ok(done) => done,
            Err(_) => Err($crate::store::postgres::abandon($client, $what, limit)),
        }
    }};
}
pub(in crate::store) use bounded;

mod listen;
mod migrations;
mod tasks;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use listen::PostgresBackplane;
pub use tasks::PostgresTaskStore;

use super::sql::{Dialect, SqlArg, Statements};
use super::{Migrations, StoreError};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::NoTls;

/// Longest wait for a pooled connection, a new connection or a recycle.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time [`TaskStore::ping`](super::TaskStore::ping) waits for `SELECT 1`.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// Longest wait for the answer to one task store call's statements
    /// (default 10 s, below the default request deadline of 30 s).
    pub query_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            schema: None,
            connect_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(10),
        }
    }
}

/// The PostgreSQL spelling of the shared SQL.
pub(crate) struct Postgres;

impl Dialect for Postgres {
    const NAME: &'static str = "postgres";
    const PLACEHOLDER: char = '$';
    const INT64: &'static str = "BIGINT";
    const ID_TYPE: &'static str = r#"TEXT COLLATE "C""#;
    // `json` keeps the exact text (see the module docs).
    const DOC_TYPE: &'static str = "JSON";
    // Not `to_regclass`: it would find another deployment's table through
    // the search path.
    const LEGACY_LEDGER_EXISTS: &'static str = "SELECT 1 FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_name = 'schema_migrations'";
    const UPDATED_COLUMN: (&'static str, &'static str) =
        ("updated_at", "TIMESTAMPTZ NOT NULL DEFAULT now()");
    const UPDATED_VALUE: Option<&'static str> = Some("now()");
    const DOC_FROM_TEXT: &'static str = "::text::json";
    const DOC_AS_TEXT: &'static str = "doc::text";
    // One statement, one snapshot.
    const COUNT_IN_PAGE: bool = true;
    const ARRAY_PARAMS: bool = true;
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

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

impl StoreError {
    /// A PostgreSQL failure while doing `context`, with the server's
    /// message and SQLSTATE when it sent one; for stores that keep their own
    /// tables in a [`PostgresDatabase`].
    pub fn postgres(context: &str, e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => Self::Backend(format!(
                "postgres {context}: {} ({})",
                db.message(),
                db.code().code()
            )),
            None => Self::Backend(format!("postgres {context}: {e}")),
        }
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => StoreError::postgres("connect", e),
        other => StoreError::Backend(format!("postgres pool: {other}")),
    }
}

/// The error of a statement that got no answer in `after`. The connection
/// is dropped rather than pooled again: its answer may never come.
pub(in crate::store) fn abandon(client: Object, what: &str, after: Duration) -> StoreError {
    drop(Object::take(client));
    StoreError::Backend(format!("postgres {what}: no answer in {after:?}"))
}

fn valid_schema(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && s.len() <= 63
}

/// A PostgreSQL database behind a connection pool, shared by the task store
/// and whatever store an agent keeps in the same database.
///
/// Cloning is cheap and shares the pool.
///
/// ```no_run
/// use abacus::store::{Migration, Migrations, PostgresDatabase, StoreError};
///
/// const NOTES: Migrations = Migrations::new(
///     "notes",
///     &[Migration { version: 1, sql: "CREATE TABLE notes (body TEXT NOT NULL)" }],
/// );
///
/// # async fn demo() -> Result<(), StoreError> {
/// let db = PostgresDatabase::connect("postgres://abacus:abacus@127.0.0.1:5432/abacus").await?;
/// db.migrate(&NOTES).await?;
/// let client = db.client().await?;
/// client
///     .execute("INSERT INTO notes (body) VALUES ($1)", &[&"hello"])
///     .await
///     .map_err(|e| StoreError::postgres("insert note", e))?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresDatabase {
    pool: Pool,
    /// The pool's connection settings, for connections outside it (the
    /// backplane's listener).
    config: Arc<tokio_postgres::Config>,
    schema: Option<Arc<str>>,
    query_timeout: Duration,
}

impl std::fmt::Debug for PostgresDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDatabase")
            .field("pool", &self.pool.status())
            .field("schema", &self.schema)
            .field("query_timeout", &self.query_timeout)
            .finish()
    }
}

impl PostgresDatabase {
    /// Connects to `url` (`postgres://user:password@host:port/database`,
    /// the `DATABASE_URL` format) and applies the task store's pending
    /// migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Like [`PostgresDatabase::connect`] with explicit options.
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
            config.clone(),
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
        let db = Self {
            pool,
            config: Arc::new(config),
            schema: options.schema.map(Arc::from),
            query_timeout: options.query_timeout,
        };
        migrations::migrate_tasks(&db).await?;
        Ok(db)
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The connection settings of the pool's connections (schema and
    /// timeouts applied).
    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The private schema holding the tables ([`PostgresOptions::schema`]),
    /// if one was chosen.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// [`PostgresOptions::query_timeout`], for stores that keep their own
    /// tables here and want the same bound.
    pub fn query_timeout(&self) -> Duration {
        self.query_timeout
    }

    /// A pooled connection.
    pub async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }

    /// Runs one write statement (prepared once per connection) within the
    /// query timeout; returns the rows it changed.
    pub(in crate::store) async fn count(
        &self,
        sql: &str,
        args: &[&(dyn ToSql + Sync)],
        what: &str,
    ) -> Result<u64, StoreError> {
        bounded!(self, what, |client| {
            let stmt = client
                .prepare_cached(sql)
                .await
                .map_err(|e| StoreError::postgres(&format!("prepare {what}"), e))?;
            client
                .execute(&stmt, args)
                .await
                .map_err(|e| StoreError::postgres(what, e))
        })
    }

    /// Runs one query within the query timeout; returns its rows.
    pub(in crate::store) async fn rows(
        &self,
        sql: &str,
        args: &[&(dyn ToSql + Sync)],
        what: &str,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        bounded!(self, what, |client| {
            let stmt = client
                .prepare_cached(sql)
                .await
                .map_err(|e| StoreError::postgres(&format!("prepare {what}"), e))?;
            client
                .query(&stmt, args)
                .await
                .map_err(|e| StoreError::postgres(what, e))
        })
    }

    /// Runs a query of at most one row within the query timeout.
    pub(in crate::store) async fn row(
        &self,
        sql: &str,
        args: &[&(dyn ToSql + Sync)],
        what: &str,
    ) -> Result<Option<tokio_postgres::Row>, StoreError> {
        bounded!(self, what, |client| {
            let stmt = client
                .prepare_cached(sql)
                .await
                .map_err(|e| StoreError::postgres(&format!("prepare {what}"), e))?;
            client
                .query_opt(&stmt, args)
                .await
                .map_err(|e| StoreError::postgres(what, e))
        })
    }

    /// Applies what the database lacks of `migrations` in one transaction.
    pub async fn migrate(&self, migrations: &Migrations<'_>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| StoreError::postgres("begin migration", e))?;
        Self::migrate_in(&tx, migrations).await?;
        tx.commit()
            .await
            .map_err(|e| StoreError::postgres("commit migration", e))
    }

    /// Applies what the database lacks of `migrations` inside `tx`, after
    /// taking the lock that serializes migrations across replicas (held
    /// until `tx` ends, so setup that follows in `tx` is serialized too).
    pub async fn migrate_in(
        tx: &tokio_postgres::Transaction<'_>,
        migrations: &Migrations<'_>,
    ) -> Result<(), StoreError> {
        migrations::lock(tx).await?;
        migrations::apply(tx, migrations).await
    }
}

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

mod history;
mod migrations;
mod tasks;
#[cfg(test)]
mod tests;

pub use history::PostgresHistoryStore;
pub use tasks::PostgresTaskStore;

use super::sql::{Dialect, SqlArg, Statements};
use super::StoreError;
use std::sync::LazyLock;
use std::time::Duration;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

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

pub(super) fn pg(context: &str, e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Backend(format!(
            "postgres {context}: {} ({})",
            db.message(),
            db.code().code()
        )),
        None => StoreError::Backend(format!("postgres {context}: {e}")),
    }
}

pub(super) fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg("connect", e),
        other => StoreError::Backend(format!("postgres pool: {other}")),
    }
}

pub(super) fn valid_schema(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && s.len() <= 63
}

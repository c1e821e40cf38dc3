//! Tasks in PostgreSQL.

use super::history::{PostgresHistorySink, PostgresHistoryStore};
use super::migrations::migrate;
use super::{pg, pool_err, valid_schema, Postgres, PostgresOptions, PING_TIMEOUT, POOL_TIMEOUT};
use crate::store::history::{HistoryOptions, HistoryQueue};
use crate::store::query::TaskFilter;
use crate::store::sql::{page_from_rows, Dialect, ListSql};
use crate::store::{
    decode_task, encode_task, state_name, status_key, ListQuery, StoreError, TaskPage, TaskStore,
};
use a2a::Task;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

/// Tasks in PostgreSQL (see the module docs).
///
/// Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct PostgresTaskStore {
    pub(super) pool: Pool,
    pub(super) trigram: bool,
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

    pub(super) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }
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

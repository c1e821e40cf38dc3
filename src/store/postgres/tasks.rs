//! Tasks in PostgreSQL.

use super::{pool_err, Postgres, PostgresDatabase, PostgresOptions, PING_TIMEOUT};
use crate::store::query::TaskFilter;
use crate::store::sql::{page_from_rows, Dialect, ListSql};
use crate::store::{
    decode_task, encode_task, state_name, status_key, ListQuery, StoreError, TaskOwner, TaskPage,
    TaskStore,
};
use a2a::Task;
use async_trait::async_trait;
use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;

/// Tasks in PostgreSQL (see the module docs).
///
/// Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct PostgresTaskStore {
    db: PostgresDatabase,
}

impl std::fmt::Debug for PostgresTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTaskStore")
            .field("pool", &self.db.pool().status())
            .finish()
    }
}

impl PostgresTaskStore {
    /// The tasks of a connected database.
    pub fn new(db: PostgresDatabase) -> Self {
        Self { db }
    }

    /// Connects to `url` (see [`PostgresDatabase::connect`]).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Like [`PostgresTaskStore::connect`] with explicit options.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        Ok(Self::new(
            PostgresDatabase::connect_with(url, options).await?,
        ))
    }

    /// Connects with an already parsed configuration.
    pub async fn from_config(
        config: tokio_postgres::Config,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        Ok(Self::new(
            PostgresDatabase::from_config(config, options).await?,
        ))
    }

    /// The database, for stores that keep their own tables in it.
    pub fn database(&self) -> &PostgresDatabase {
        &self.db
    }

    /// Runs a write statement, prepared once per connection.
    async fn execute(
        &self,
        sql: &str,
        args: &[&(dyn ToSql + Sync)],
        what: &str,
    ) -> Result<(), StoreError> {
        bounded!(self, what, |client| {
            let stmt = client
                .prepare_cached(sql)
                .await
                .map_err(|e| StoreError::postgres(&format!("prepare {what}"), e))?;
            client
                .execute(&stmt, args)
                .await
                .map_err(|e| StoreError::postgres(what, e))?;
            Ok(())
        })
    }
}

#[async_trait]
impl TaskStore for PostgresTaskStore {
    async fn save(&self, task: &Task, owner: &TaskOwner) -> Result<(), StoreError> {
        let state = state_name(&task.status.state)?;
        let key = status_key(task.status.timestamp);
        let doc = encode_task(task)?;
        let (principal, tenant) = (owner.principal(), owner.tenant());
        let args: [&(dyn ToSql + Sync); 7] = [
            &task.id,
            &task.context_id,
            &state,
            &key,
            &doc,
            &principal,
            &tenant,
        ];
        self.execute(&Postgres::statements().upsert, &args, "save task")
            .await
    }

    async fn get(&self, id: &str, owner: &TaskOwner) -> Result<Option<Task>, StoreError> {
        let (principal, tenant) = (owner.principal(), owner.tenant());
        let row = bounded!(self, "get task", |client| {
            let stmt = client
                .prepare_cached(&Postgres::statements().get)
                .await
                .map_err(|e| StoreError::postgres("prepare get", e))?;
            client
                .query_opt(&stmt, &[&id, &principal, &tenant])
                .await
                .map_err(|e| StoreError::postgres("get task", e))
        })?;
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
        // The connection goes back to the pool before the rows are decoded.
        let (rows, total) = bounded!(self, "list tasks", |client| {
            let rows = client
                .query(&sql.page, &params)
                .await
                .map_err(|e| StoreError::postgres("list tasks", e))?;
            let total: i64 = match rows.first() {
                Some(row) => row
                    .try_get(0)
                    .map_err(|e| StoreError::Corrupt(format!("count: {e}")))?,
                // An empty page has no row to carry the count.
                None => client
                    .query_one(&sql.count, &params[..sql.count_args])
                    .await
                    .map_err(|e| StoreError::postgres("count tasks", e))?
                    .try_get(0)
                    .map_err(|e| StoreError::Corrupt(format!("count: {e}")))?,
            };
            Ok((rows, total))
        })?;
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
        let client = tokio::time::timeout(PING_TIMEOUT, self.db.pool().get())
            .await
            .map_err(|_| StoreError::Backend("postgres ping: timed out".into()))?
            .map_err(pool_err)?;
        match tokio::time::timeout(PING_TIMEOUT, client.simple_query("SELECT 1")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                // Do not hand this connection out again.
                drop(Object::take(client));
                Err(StoreError::postgres("ping", e))
            }
            Err(_) => {
                drop(Object::take(client));
                Err(StoreError::Backend("postgres ping: timed out".into()))
            }
        }
    }

    async fn heartbeat(&self) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp_micros();
        self.execute(&Postgres::statements().heartbeat, &[&now], "heartbeat")
            .await
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}

//! Push configs and the outbox in PostgreSQL.

use super::sql::{in_delivery_order, sql_limit, OutboxRow, PushSql, COMPONENT};
use super::{
    config_id, decode_config, encode_config, Notification, OutboxClaim, PushStore, Takeover,
};
use crate::protocol::types::TaskPushNotificationConfig;
use crate::store::postgres::{bounded, Postgres};
use crate::store::{Migration, Migrations, PostgresDatabase, StoreError, TaskOwner};
use async_trait::async_trait;
use std::sync::LazyLock;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

fn statements() -> &'static PushSql {
    static STATEMENTS: LazyLock<PushSql> = LazyLock::new(PushSql::new::<Postgres>);
    &STATEMENTS
}

fn schema() -> Migrations<'static> {
    static STEPS: LazyLock<[Migration<'static>; 3]> = LazyLock::new(|| statements().migrations());
    Migrations::new(COMPONENT, &*STEPS)
}

/// Maps a failure of `what` to the store error.
fn pg(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::postgres(what, e)
}

fn text(row: &Row, i: usize) -> Result<String, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("push row column {i}: {e}")))
}

fn optional_text(row: &Row, i: usize) -> Result<Option<String>, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("push row column {i}: {e}")))
}

fn int(row: &Row, i: usize) -> Result<i64, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("push row column {i}: {e}")))
}

fn outbox_row(row: &Row) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        event_id: text(row, 0)?,
        config_id: text(row, 1)?,
        seq: int(row, 2)?,
        principal: text(row, 3)?,
        tenant: text(row, 4)?,
        task_id: text(row, 5)?,
        config: text(row, 6)?,
        payload: text(row, 7)?,
        created_us: int(row, 8)?,
        traceparent: optional_text(row, 9)?,
        tracestate: optional_text(row, 10)?,
    })
}

/// Push configs and the outbox in the tables `push_configs` and
/// `push_outbox` of a [`PostgresDatabase`], through its pool. Every call
/// is one statement or one transaction, committed (and so durable with
/// the server's default `synchronous_commit`) on return, and bounded by
/// [`PostgresDatabase::query_timeout`].
///
/// ```no_run
/// use abacus::store::{PostgresDatabase, PostgresPushStore, PushStore};
/// # async fn demo() -> Result<(), abacus::store::StoreError> {
/// let db = PostgresDatabase::connect("postgres://abacus:abacus@127.0.0.1:5432/abacus").await?;
/// let push = PostgresPushStore::open(&db).await?;
/// println!("{} notifications pending", push.depth().await?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresPushStore {
    db: PostgresDatabase,
}

impl std::fmt::Debug for PostgresPushStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresPushStore")
            .field("db", &self.db)
            .finish()
    }
}

impl PostgresPushStore {
    /// Creates or migrates the push tables in `db` (ledger component
    /// `push`), serialized with other replicas' migrations.
    pub async fn open(db: &PostgresDatabase) -> Result<Self, StoreError> {
        db.migrate(&schema()).await?;
        Ok(Self { db: db.clone() })
    }
}

#[async_trait]
impl PushStore for PostgresPushStore {
    async fn put_config(
        &self,
        owner: &TaskOwner,
        config: &TaskPushNotificationConfig,
    ) -> Result<(), StoreError> {
        let id = config_id(config)?;
        let doc = encode_config(config)?;
        let (principal, tenant) = (owner.principal(), owner.tenant());
        let args: [&(dyn ToSql + Sync); 5] = [&principal, &tenant, &config.task_id, &id, &doc];
        self.db
            .count(&statements().put_config, &args, "put push config")
            .await
            .map(drop)
    }

    async fn get_config(
        &self,
        owner: &TaskOwner,
        task_id: &str,
        id: &str,
    ) -> Result<Option<TaskPushNotificationConfig>, StoreError> {
        let (principal, tenant) = (owner.principal(), owner.tenant());
        let args: [&(dyn ToSql + Sync); 4] = [&principal, &tenant, &task_id, &id];
        let rows = self
            .db
            .rows(&statements().get_config, &args, "get push config")
            .await?;
        rows.first()
            .map(|row| decode_config(&text(row, 0)?))
            .transpose()
    }

    async fn list_configs(
        &self,
        owner: &TaskOwner,
        task_id: &str,
    ) -> Result<Vec<TaskPushNotificationConfig>, StoreError> {
        let (principal, tenant) = (owner.principal(), owner.tenant());
        let args: [&(dyn ToSql + Sync); 3] = [&principal, &tenant, &task_id];
        let rows = self
            .db
            .rows(&statements().list_configs, &args, "list push configs")
            .await?;
        rows.iter()
            .map(|row| decode_config(&text(row, 0)?))
            .collect()
    }

    async fn delete_config(
        &self,
        owner: &TaskOwner,
        task_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let (principal, tenant) = (owner.principal(), owner.tenant());
        let key: [&(dyn ToSql + Sync); 4] = [&principal, &tenant, &task_id, &id];
        let sql = statements();
        bounded!(self.db, "delete push config", |client| {
            let tx = client.transaction().await.map_err(pg("begin"))?;
            let configs = tx.prepare_cached(&sql.delete_config).await;
            let configs = tx
                .execute(&configs.map_err(pg("prepare delete"))?, &key)
                .await
                .map_err(pg("delete push config"))?;
            let outbox = tx.prepare_cached(&sql.delete_config_outbox).await;
            tx.execute(&outbox.map_err(pg("prepare delete"))?, &key)
                .await
                .map_err(pg("delete push notifications"))?;
            tx.commit().await.map_err(pg("commit"))?;
            Ok(configs > 0)
        })
    }

    async fn enqueue_claimed(
        &self,
        batch: &[Notification],
        claim: &OutboxClaim,
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let rows = OutboxRow::batch(batch)?;
        let (by, until) = (claim.replica.as_str(), claim.until.timestamp_micros());
        let sql = &statements().enqueue;
        bounded!(self.db, "enqueue push notifications", |client| {
            let tx = client.transaction().await.map_err(pg("begin"))?;
            let stmt = tx
                .prepare_cached(sql)
                .await
                .map_err(pg("prepare enqueue"))?;
            for r in &rows {
                let args: [&(dyn ToSql + Sync); 13] = [
                    &r.event_id,
                    &r.config_id,
                    &r.seq,
                    &r.principal,
                    &r.tenant,
                    &r.task_id,
                    &r.config,
                    &r.payload,
                    &r.created_us,
                    &r.traceparent,
                    &r.tracestate,
                    &by,
                    &until,
                ];
                tx.execute(&stmt, &args)
                    .await
                    .map_err(pg("enqueue push notification"))?;
            }
            tx.commit().await.map_err(pg("commit"))
        })
    }

    async fn pending(&self, after_seq: i64, limit: usize) -> Result<Vec<Notification>, StoreError> {
        let limit = sql_limit(limit);
        let rows = self
            .db
            .rows(
                &statements().pending,
                &[&after_seq, &limit],
                "pending push notifications",
            )
            .await?;
        rows.iter()
            .map(|row| outbox_row(row).and_then(OutboxRow::decode))
            .collect()
    }

    async fn claim_pending(
        &self,
        claim: &OutboxClaim,
        takeover: Takeover,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let limit = sql_limit(limit);
        let (by, until) = (claim.replica.as_str(), claim.until.timestamp_micros());
        let now = chrono::Utc::now().timestamp_micros();
        let rows = self
            .db
            .rows(
                &statements().claim[takeover.index()],
                &[&by, &until, &after_seq, &limit, &now],
                "claim push notifications",
            )
            .await?;
        let rows = rows.iter().map(outbox_row).collect::<Result<Vec<_>, _>>()?;
        in_delivery_order(rows)
    }

    async fn renew_claims(&self, claim: &OutboxClaim) -> Result<u64, StoreError> {
        let until = claim.until.timestamp_micros();
        self.db
            .count(
                &statements().renew,
                &[&claim.replica, &until],
                "renew push claims",
            )
            .await
    }

    async fn settle(&self, event_id: &str, config_id: &str) -> Result<(), StoreError> {
        self.db
            .count(
                &statements().settle,
                &[&event_id, &config_id],
                "settle push notification",
            )
            .await
            .map(drop)
    }

    async fn depth(&self) -> Result<u64, StoreError> {
        let rows = self
            .db
            .rows(&statements().depth, &[], "push outbox depth")
            .await?;
        let n = rows.first().map(|row| int(row, 0)).transpose()?;
        Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or_default())
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pg_testing::{
        connect_in_schema, database_url, futures_join_all, versions, SchemaGuard,
    };
    use crate::store::push::conformance::{self, notification, PushFixture};
    use crate::store::{Backend, PostgresTaskStore, StoreConfig};

    async fn store_in_schema() -> Option<(PostgresPushStore, PostgresTaskStore, SchemaGuard)> {
        let url = database_url()?;
        let (tasks, guard) = connect_in_schema(&url).await;
        let push = PostgresPushStore::open(tasks.database())
            .await
            .expect("open push store");
        Some((push, tasks, guard))
    }

    async fn fixture() -> Option<PushFixture> {
        let (push, tasks, guard) = store_in_schema().await?;
        Some(PushFixture::new(push, (tasks, guard)))
    }

    conformance::push_store_conformance!(fixture());

    #[tokio::test]
    async fn push_migrations_run_once_and_concurrently() {
        let Some((push, tasks, _guard)) = store_in_schema().await else {
            return;
        };
        let opens = (0..4).map(|_| {
            let db = tasks.database().clone();
            async move { PostgresPushStore::open(&db).await }
        });
        for opened in futures_join_all(opens).await {
            opened.expect("push store");
        }
        assert_eq!(versions(tasks.database(), "push").await, [1, 2, 3]);
        assert_eq!(push.depth().await.expect("depth"), 0);
    }

    /// A row the server refuses half-way through a batch (text cannot hold
    /// NUL) leaves nothing of the batch.
    #[tokio::test]
    async fn a_failing_batch_leaves_nothing() {
        let Some((push, _tasks, _guard)) = store_in_schema().await else {
            return;
        };
        let mut bad = notification("e2", "hook", 2);
        bad.payload = "nul \0 inside".into();
        let err = push
            .enqueue(&[notification("e1", "hook", 1), bad])
            .await
            .expect_err("NUL in text");
        assert!(err.to_string().contains("enqueue"), "{err}");
        assert_eq!(push.depth().await.expect("depth"), 0);
        // The connection is usable again.
        push.enqueue(&[notification("e3", "hook", 3)])
            .await
            .expect("enqueue after a failure");
        assert_eq!(push.depth().await.expect("depth"), 1);
    }

    #[tokio::test]
    async fn open_follows_the_postgres_backend() {
        let Some(url) = database_url() else {
            return;
        };
        let config = StoreConfig {
            database_url: Some(url),
            ..Default::default()
        };
        let stores = crate::store::open(&config).await.expect("open");
        assert!(matches!(stores.backend, Backend::Postgres(_)));
        assert_eq!(stores.push.kind(), "postgres");
        let push = super::super::open(&stores.backend).await.expect("push");
        assert_eq!(push.kind(), "postgres");
        push.depth().await.expect("depth");
    }
}

//! Tasks in PostgreSQL.

use super::listen::{Channels, NOTIFY};
use super::{pool_err, Postgres, PostgresDatabase, PostgresOptions, PING_TIMEOUT};
use crate::store::log::{
    check_sequence, conflict, Claim, ExpiredLease, Lease, LoggedEvent, LoggedTask,
};
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
use deadpool_postgres::Object;
use std::sync::Arc;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// Tasks in PostgreSQL (see the module docs).
///
/// Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct PostgresTaskStore {
    db: PostgresDatabase,
    /// Where appends are announced.
    events_channel: Arc<str>,
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
        let events_channel = Arc::from(Channels::of(db.schema()).events);
        Self { db, events_channel }
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
        self.db.count(sql, args, what).await.map(|_| ())
    }
}

/// The row of `get_logged` (or of `claim`'s `RETURNING`).
fn logged_row(row: &Row) -> Result<LoggedRow, StoreError> {
    let corrupt = |e: tokio_postgres::Error| StoreError::Corrupt(format!("logged task: {e}"));
    Ok(LoggedRow {
        doc: row.try_get(0).map_err(corrupt)?,
        seq: row.try_get(1).map_err(corrupt)?,
        lease_owner: row.try_get(2).map_err(corrupt)?,
        lease_until: row.try_get(3).map_err(corrupt)?,
    })
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
        let row = self
            .db
            .row(
                &Postgres::statements().get,
                &[&id, &principal, &tenant],
                "get task",
            )
            .await?;
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
        let (rows, total) = bounded!(self.db, "list tasks", |client| {
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

    async fn append(
        &self,
        task: &Task,
        owner: &TaskOwner,
        after: u64,
        events: &[LoggedEvent],
        lease: Lease<'_>,
    ) -> Result<(), StoreError> {
        let last = check_sequence(&task.id, after, events)?;
        let (seq, after_arg) = (seq_arg(last)?, seq_arg(after)?);
        let state = state_name(&task.status.state)?;
        let key = status_key(task.status.timestamp);
        let doc = encode_task(task)?;
        let (principal, tenant) = (owner.principal(), owner.tenant());
        let (lease_owner, lease_until) = lease_args(lease);
        let mut seqs = Vec::with_capacity(events.len());
        let mut docs = Vec::with_capacity(events.len());
        for event in events {
            seqs.push(seq_arg(event.seq)?);
            docs.push(encode_event(event)?);
        }
        let appended_at = micros(Utc::now());
        let payload = format!("{last} {}", task.id);
        let statements = Postgres::statements();
        let upsert = if after == 0 {
            &statements.append_insert
        } else {
            &statements.append_update
        };
        let insert_events = statements
            .insert_events
            .as_deref()
            .ok_or_else(|| StoreError::Backend("postgres: no event insert".into()))?;
        let task_args: [&(dyn ToSql + Sync); 11] = [
            &task.id,
            &task.context_id,
            &state,
            &key,
            &doc,
            &principal,
            &tenant,
            &seq,
            &lease_owner,
            &lease_until,
            &after_arg,
        ];
        let channel: &str = &self.events_channel;
        bounded!(self.db, "append", |client| {
            let tx = client
                .transaction()
                .await
                .map_err(|e| StoreError::postgres("begin append", e))?;
            let upsert = tx
                .prepare_cached(upsert)
                .await
                .map_err(|e| StoreError::postgres("prepare append", e))?;
            let (written, logged, notified) = if events.is_empty() {
                let written = tx.execute(&upsert, &task_args).await;
                (written, Ok(0), Ok(0))
            } else {
                let insert = tx
                    .prepare_cached(insert_events)
                    .await
                    .map_err(|e| StoreError::postgres("prepare append events", e))?;
                let notify = tx
                    .prepare_cached(NOTIFY)
                    .await
                    .map_err(|e| StoreError::postgres("prepare notify", e))?;
                // Pipelined: one round trip. On a conflict the events fail
                // or are rolled back with the rest.
                let event_args: [&(dyn ToSql + Sync); 4] = [&task.id, &seqs, &docs, &appended_at];
                let notify_args: [&(dyn ToSql + Sync); 2] = [&channel, &payload];
                futures_util::join!(
                    tx.execute(&upsert, &task_args),
                    tx.execute(&insert, &event_args),
                    tx.execute(&notify, &notify_args),
                )
            };
            let written = written.map_err(|e| StoreError::postgres("append task", e))?;
            if written == 0 {
                let _ = tx.rollback().await;
                return Err(conflict(&task.id, after));
            }
            logged.map_err(|e| StoreError::postgres("append events", e))?;
            notified.map_err(|e| StoreError::postgres("notify append", e))?;
            tx.commit()
                .await
                .map_err(|e| StoreError::postgres("commit append", e))
        })
    }

    async fn get_logged(
        &self,
        id: &str,
        owner: &TaskOwner,
    ) -> Result<Option<LoggedTask>, StoreError> {
        let (principal, tenant) = (owner.principal(), owner.tenant());
        let row = self
            .db
            .row(
                &Postgres::statements().get_logged,
                &[&id, &principal, &tenant],
                "get logged task",
            )
            .await?;
        row.as_ref()
            .map(|row| logged_row(row)?.decode())
            .transpose()
    }

    async fn events_after(
        &self,
        id: &str,
        owner: &TaskOwner,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let (principal, tenant) = (owner.principal(), owner.tenant());
        let after = seq_arg(after).unwrap_or(i64::MAX);
        let limit = limit_arg(limit);
        let rows = self
            .db
            .rows(
                &Postgres::statements().events_after,
                &[&id, &after, &principal, &tenant, &limit],
                "read events",
            )
            .await?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row
                    .try_get(0)
                    .map_err(|e| StoreError::Corrupt(format!("event number: {e}")))?;
                let doc: &str = row
                    .try_get(1)
                    .map_err(|e| StoreError::Corrupt(format!("event document: {e}")))?;
                decode_event(seq, doc)
            })
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
        let (principal, tenant) = (owner.principal(), owner.tenant());
        let (until_us, now_us) = (micros(until), micros(now));
        let statements = Postgres::statements();
        for _ in 0..CLAIM_ATTEMPTS {
            let (claimed, found) = bounded!(self.db, "claim lease", |client| {
                let claim = client
                    .prepare_cached(&statements.claim)
                    .await
                    .map_err(|e| StoreError::postgres("prepare claim lease", e))?;
                let claimed = client
                    .query_opt(
                        &claim,
                        &[&id, &principal, &tenant, &replica, &until_us, &now_us],
                    )
                    .await
                    .map_err(|e| StoreError::postgres("claim lease", e))?;
                if claimed.is_some() {
                    return Ok((claimed, None));
                }
                let get = client
                    .prepare_cached(&statements.get_logged)
                    .await
                    .map_err(|e| StoreError::postgres("prepare get logged task", e))?;
                let found = client
                    .query_opt(&get, &[&id, &principal, &tenant])
                    .await
                    .map_err(|e| StoreError::postgres("get logged task", e))?;
                Ok::<_, StoreError>((None, found))
            })?;
            if let Some(row) = claimed {
                return Ok(Claim::Acquired(logged_row(&row)?.decode()?));
            }
            let found = found
                .as_ref()
                .map(|row| logged_row(row)?.decode())
                .transpose()?;
            // Between the two statements the lease may have ended or been
            // released: then the claim is tried again.
            if let NotClaimed::Final(claim) = not_claimed(found, replica, now) {
                return Ok(*claim);
            }
        }
        Err(claim_undecided(id))
    }

    async fn renew_leases(&self, replica: &str, until: DateTime<Utc>) -> Result<u64, StoreError> {
        let until = micros(until);
        self.db
            .count(
                &Postgres::statements().renew_leases,
                &[&replica, &until],
                "renew leases",
            )
            .await
    }

    async fn release_lease(&self, id: &str, replica: &str) -> Result<(), StoreError> {
        self.execute(
            &Postgres::statements().release_lease,
            &[&id, &replica],
            "release lease",
        )
        .await
    }

    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ExpiredLease>, StoreError> {
        let now = micros(now);
        let limit = limit_arg(limit);
        let rows = self
            .db
            .rows(
                &Postgres::statements().expired_leases,
                &[&now, &limit],
                "expired leases",
            )
            .await?;
        rows.iter()
            .map(|row| {
                let corrupt =
                    |e: tokio_postgres::Error| StoreError::Corrupt(format!("expired lease: {e}"));
                let principal: &str = row.try_get(1).map_err(corrupt)?;
                let tenant: &str = row.try_get(2).map_err(corrupt)?;
                let replica: Option<String> = row.try_get(3).map_err(corrupt)?;
                Ok(ExpiredLease {
                    task_id: row.try_get(0).map_err(corrupt)?,
                    owner: TaskOwner::from_stored(principal, tenant),
                    replica: replica.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let before = micros(before);
        self.db
            .count(
                &Postgres::statements().prune_events,
                &[&before],
                "prune events",
            )
            .await
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}

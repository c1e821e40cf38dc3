//! Push-notification persistence: the configs clients register on their
//! tasks, and the outbox of notifications accepted for delivery.
//!
//! Both live in the task store's database (same SQLite file, same
//! PostgreSQL database, or memory), so a notification written to the outbox
//! is as durable as the task state it announces. The delivery side
//! (`crate::push`) writes each event's notifications with
//! [`PushStore::enqueue`] before the event is acknowledged, removes them
//! with [`PushStore::settle`] once delivered or given up, and on start
//! resumes whatever [`PushStore::pending`] returns.
//!
//! ```
//! use abacus::protocol::types::TaskPushNotificationConfig;
//! use abacus::store::{MemoryPushStore, PushStore, TaskOwner};
//! # async fn demo() -> Result<(), abacus::store::StoreError> {
//! let store = MemoryPushStore::new();
//! let owner = TaskOwner::anonymous();
//! let config = TaskPushNotificationConfig {
//!     url: "https://hooks.example.com/a2a".into(),
//!     id: Some("hook-1".into()),
//!     task_id: "task-1".into(),
//!     token: None,
//!     authentication: None,
//!     tenant: None,
//! };
//! store.put_config(&owner, &config).await?;
//! assert_eq!(store.list_configs(&owner, "task-1").await?, vec![config]);
//! assert!(store.get_config(&TaskOwner::anonymous(), "task-2", "hook-1").await?.is_none());
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

mod memory;
mod postgres;
mod sql;
mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

pub use memory::MemoryPushStore;
pub use postgres::PostgresPushStore;
pub use sqlite::SqlitePushStore;

use super::{Backend, StoreError, TaskOwner};
use crate::protocol::types::TaskPushNotificationConfig;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// One notification in the outbox: one event of a task, for one of its
/// configs.
///
/// The config is a snapshot taken when the event happened (URL, token,
/// credentials), so a pending notification is delivered as it was accepted
/// even if the config changes later; deleting the config drops it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Delivery order within a task: strictly increasing in the order the
    /// task's events happened (assigned by the caller).
    pub seq: i64,
    /// The event's stable id (`X-A2A-Event-Id`), the same for every config
    /// the event goes to and across retries and restarts.
    pub event_id: String,
    /// Whose task it is.
    pub owner: TaskOwner,
    /// The task the event belongs to.
    pub task_id: String,
    /// Where and how to deliver it; `config.id` is always set.
    pub config: TaskPushNotificationConfig,
    /// The body: one `StreamResponse` as JSON.
    pub payload: String,
    /// When the event was accepted; the delivery deadline counts from here.
    /// The SQL backends keep microseconds.
    pub created_at: DateTime<Utc>,
    /// The W3C `traceparent` of the span that accepted the event (when
    /// traces are exported), sent with the webhook so the delivery joins
    /// the request's trace, even after a restart.
    pub traceparent: Option<String>,
    /// The W3C `tracestate` that goes with [`traceparent`](Self::traceparent).
    pub tracestate: Option<String>,
}

impl Notification {
    /// The config id (configs in the outbox always have one).
    pub fn config_id(&self) -> &str {
        self.config.id.as_deref().unwrap_or_default()
    }
}

/// Who delivers a notification: the replica holding its claim, and until
/// when no other replica may take it over. Renewed while the replica
/// lives ([`PushStore::renew_claims`]); once it lapses, another replica's
/// [`PushStore::claim_pending`] takes the notification.
///
/// ```
/// use abacus::store::OutboxClaim;
/// use std::time::Duration;
/// let claim = OutboxClaim::for_lease("replica-a", Duration::from_secs(30));
/// assert!(claim.until > chrono::Utc::now());
/// assert_eq!(claim.replica, "replica-a");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxClaim {
    /// The replica id (`--replica-id`).
    pub replica: String,
    /// When the claim lapses.
    pub until: DateTime<Utc>,
}

impl OutboxClaim {
    /// A claim by `replica` lasting `lease` from now.
    pub fn for_lease(replica: &str, lease: std::time::Duration) -> Self {
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        Self {
            replica: replica.to_owned(),
            until: Utc::now()
                .checked_add_signed(lease)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    /// No claim: the next [`PushStore::claim_pending`] of any replica
    /// takes the notification.
    pub fn unclaimed() -> Self {
        Self {
            replica: String::new(),
            until: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

/// Which pending notifications [`PushStore::claim_pending`] takes.
///
/// ```
/// use abacus::store::Takeover;
/// assert_ne!(Takeover::All, Takeover::Expired);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// Every one: the store has one process (SQLite, memory), so whatever
    /// is pending at start is this process's to deliver.
    All,
    /// The caller's own (left by an earlier run under the same replica
    /// id) and those whose claim lapsed: a replica starting on a shared
    /// store.
    OwnAndExpired,
    /// Other replicas' whose claim lapsed: the periodic takeover of a
    /// dead replica's deliveries.
    Expired,
}

impl Takeover {
    /// Position in the SQL backends' statement table.
    fn index(self) -> usize {
        match self {
            Takeover::All => 0,
            Takeover::OwnAndExpired => 1,
            Takeover::Expired => 2,
        }
    }

    /// Whether a notification claimed as `held` is taken by `by` at `now`.
    fn takes(self, held: &OutboxClaim, by: &str, now: DateTime<Utc>) -> bool {
        match self {
            Takeover::All => true,
            Takeover::OwnAndExpired => held.replica == by || held.until < now,
            Takeover::Expired => held.replica != by && held.until < now,
        }
    }
}

/// Where push configs and the notification outbox live.
///
/// Every config is scoped to its task and owner: a config of another
/// owner's task is indistinguishable from one that does not exist. A config
/// is identified by `(owner, task_id, config.id)`; a notification by
/// `(event_id, config id)`.
#[async_trait]
pub trait PushStore: Send + Sync + 'static {
    /// Inserts `config` (its `task_id` and `id` set by the caller) for
    /// `owner`, or replaces the one with the same task and id. Durable on
    /// return.
    async fn put_config(
        &self,
        owner: &TaskOwner,
        config: &TaskPushNotificationConfig,
    ) -> Result<(), StoreError>;
    /// The config `id` of task `task_id`, if `owner` has it.
    async fn get_config(
        &self,
        owner: &TaskOwner,
        task_id: &str,
        id: &str,
    ) -> Result<Option<TaskPushNotificationConfig>, StoreError>;
    /// Every config of task `task_id` of `owner`, in the order they were
    /// first created.
    async fn list_configs(
        &self,
        owner: &TaskOwner,
        task_id: &str,
    ) -> Result<Vec<TaskPushNotificationConfig>, StoreError>;
    /// Removes config `id` of the task and its pending notifications.
    /// Returns whether a config was removed (deleting twice is not an
    /// error for the caller to report).
    async fn delete_config(
        &self,
        owner: &TaskOwner,
        task_id: &str,
        id: &str,
    ) -> Result<bool, StoreError>;
    /// Writes `batch` to the outbox, all or nothing, claimed by `claim`.
    /// Durable on return: what was enqueued survives a crash (`kill -9`)
    /// of the process. A notification already in the outbox (same event
    /// id and config id) is left as it is.
    async fn enqueue_claimed(
        &self,
        batch: &[Notification],
        claim: &OutboxClaim,
    ) -> Result<(), StoreError>;
    /// Writes `batch` unclaimed ([`OutboxClaim::unclaimed`]): the next
    /// claim of any replica takes it.
    async fn enqueue(&self, batch: &[Notification]) -> Result<(), StoreError> {
        self.enqueue_claimed(batch, &OutboxClaim::unclaimed()).await
    }
    /// Up to `limit` pending notifications with `seq > after_seq`, by
    /// ascending `seq`, whoever holds them (read only).
    async fn pending(&self, after_seq: i64, limit: usize) -> Result<Vec<Notification>, StoreError>;
    /// Claims, for `claim`, up to `limit` pending notifications with
    /// `seq > after_seq` that `takeover` selects, and returns them by
    /// ascending `seq`: how deliveries resume after a restart, and how a
    /// dead replica's are taken over. Replicas claiming at once never get
    /// the same notification.
    async fn claim_pending(
        &self,
        claim: &OutboxClaim,
        takeover: Takeover,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError>;
    /// Extends every claim `claim.replica` holds to `claim.until`; returns
    /// how many notifications it holds.
    async fn renew_claims(&self, claim: &OutboxClaim) -> Result<u64, StoreError>;
    /// Removes a delivered (or given up) notification; removing one that
    /// is not there is not an error.
    async fn settle(&self, event_id: &str, config_id: &str) -> Result<(), StoreError>;
    /// Number of notifications in the outbox.
    async fn depth(&self) -> Result<u64, StoreError>;
    /// A short name for logs (`memory`, `sqlite`, `postgres`).
    fn kind(&self) -> &'static str;
}

/// The push store for the database the task store was opened on: in the
/// same SQLite file or PostgreSQL database (tables created or migrated
/// first), or in memory for the memory backend.
pub async fn open(backend: &Backend) -> Result<Arc<dyn PushStore>, StoreError> {
    Ok(match backend {
        Backend::Memory => Arc::new(MemoryPushStore::new()),
        Backend::Sqlite(db) => Arc::new(SqlitePushStore::open(db).await?),
        Backend::Postgres(db) => Arc::new(PostgresPushStore::open(db).await?),
    })
}

/// The id of a config about to be stored: stores key configs by it, so
/// one without an id is refused rather than stored under `""`.
fn config_id(config: &TaskPushNotificationConfig) -> Result<&str, StoreError> {
    config
        .id
        .as_deref()
        .ok_or_else(|| StoreError::Backend("push config without an id".into()))
}

/// Serializes a config for storage.
fn encode_config(config: &TaskPushNotificationConfig) -> Result<String, StoreError> {
    serde_json::to_string(config)
        .map_err(|e| StoreError::Corrupt(format!("encode push config: {e}")))
}

/// Decodes a stored config.
fn decode_config(doc: &str) -> Result<TaskPushNotificationConfig, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("decode push config: {e}")))
}

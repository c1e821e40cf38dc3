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
}

impl Notification {
    /// The config id (configs in the outbox always have one).
    pub fn config_id(&self) -> &str {
        self.config.id.as_deref().unwrap_or_default()
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
    /// Writes `batch` to the outbox, all or nothing. Durable on return:
    /// what was enqueued survives a crash (`kill -9`) of the process.
    /// A notification already in the outbox (same event id and config id)
    /// is left as it is.
    async fn enqueue(&self, batch: &[Notification]) -> Result<(), StoreError>;
    /// Up to `limit` pending notifications with `seq > after_seq`, by
    /// ascending `seq`: how deliveries resume after a restart.
    async fn pending(&self, after_seq: i64, limit: usize) -> Result<Vec<Notification>, StoreError>;
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

//! Task persistence (temporary dev copy).
mod memory;
pub use memory::MemoryTaskStore;
use a2a::{Task, TaskState};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
/// A failure of the storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// backend
    #[error("store backend error: {0}")]
    Backend(String),
    /// corrupt
    #[error("corrupt stored record: {0}")]
    Corrupt(String),
    /// token
    #[error("invalid page token")]
    InvalidPageToken,
}
/// q
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// c
    pub context_id: Option<String>,
    /// s
    pub state: Option<TaskState>,
    /// a
    pub status_after: Option<DateTime<Utc>>,
    /// p
    pub page_size: usize,
    /// t
    pub page_token: Option<String>,
}
/// p
#[derive(Debug, Clone, Default)]
pub struct TaskPage {
    /// t
    pub tasks: Vec<Task>,
    /// n
    pub next_page_token: Option<String>,
    /// s
    pub total_size: usize,
}
/// store
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// s
    async fn save(&self, task: &Task) -> Result<(), StoreError>;
    /// g
    async fn get(&self, id: &str) -> Result<Option<Task>, StoreError>;
    /// l
    async fn list(&self, query: &ListQuery) -> Result<TaskPage, StoreError>;
    /// p
    async fn ping(&self) -> Result<(), StoreError> { Ok(()) }
    /// k
    fn kind(&self) -> &'static str;
}

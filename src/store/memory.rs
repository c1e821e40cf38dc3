use super::{ListQuery, StoreError, TaskPage, TaskStore};
use a2a::Task;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
/// m
#[derive(Debug, Default)]
pub struct MemoryTaskStore { tasks: Mutex<HashMap<String, Task>> }
impl MemoryTaskStore { /// n
 pub fn new() -> Self { Self::default() } }
#[async_trait]
impl TaskStore for MemoryTaskStore {
    async fn save(&self, task: &Task) -> Result<(), StoreError> { self.tasks.lock().unwrap().insert(task.id.clone(), task.clone()); Ok(()) }
    async fn get(&self, id: &str) -> Result<Option<Task>, StoreError> { Ok(self.tasks.lock().unwrap().get(id).cloned()) }
    async fn list(&self, q: &ListQuery) -> Result<TaskPage, StoreError> {
        let map = self.tasks.lock().unwrap();
        let mut v: Vec<&Task> = map.values().filter(|t| q.context_id.as_ref().is_none_or(|c| &t.context_id == c)).filter(|t| q.state.as_ref().is_none_or(|s| &t.status.state == s)).collect();
        v.sort_by(|a, b| b.status.timestamp.cmp(&a.status.timestamp).then_with(|| a.id.cmp(&b.id)));
        let start = match &q.page_token { None => 0, Some(t) => t.parse::<usize>().map_err(|_| StoreError::InvalidPageToken)? };
        if start > v.len() { return Err(StoreError::InvalidPageToken); }
        let end = (start + q.page_size.max(1)).min(v.len());
        Ok(TaskPage { tasks: v[start..end].iter().map(|t| (*t).clone()).collect(), next_page_token: (end < v.len()).then(|| end.to_string()), total_size: v.len() })
    }
    fn kind(&self) -> &'static str { "memory" }
}

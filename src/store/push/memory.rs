//! Push configs and the outbox in process memory.

use super::{config_id, Notification, OutboxClaim, PushStore, Takeover};
use crate::protocol::types::TaskPushNotificationConfig;
use crate::store::{StoreError, TaskOwner};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

/// A task's configs are found by owner and task id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TaskKey {
    owner: TaskOwner,
    task_id: String,
}

impl TaskKey {
    fn new(owner: &TaskOwner, task_id: &str) -> Self {
        Self {
            owner: owner.clone(),
            task_id: task_id.to_owned(),
        }
    }
}

/// The outbox in delivery order: `seq`, then event id and config id, as
/// the SQL backends order it.
type OutboxKey = (i64, String, String);

#[derive(Default)]
struct Inner {
    /// Each task's configs in creation order (a task has a handful).
    configs: HashMap<TaskKey, Vec<TaskPushNotificationConfig>>,
    outbox: BTreeMap<OutboxKey, Notification>,
    /// `seq` and claim of each outbox entry by (event id, config id).
    seqs: HashMap<(String, String), (i64, OutboxClaim)>,
}

impl Inner {
    fn remove(&mut self, event_id: &str, config_id: &str) {
        let key = (event_id.to_owned(), config_id.to_owned());
        if let Some((seq, _)) = self.seqs.remove(&key) {
            let (event_id, config_id) = key;
            self.outbox.remove(&(seq, event_id, config_id));
        }
    }
}

/// Push configs and a bounded outbox in process memory; lost on restart,
/// for the memory task store.
///
/// At most [`MemoryPushStore::DEFAULT_CAPACITY`] notifications (or the
/// capacity given to [`MemoryPushStore::with_capacity`]) wait in the
/// outbox: an `enqueue` beyond it fails instead of growing without bound.
///
/// ```
/// use abacus::store::{MemoryPushStore, PushStore};
/// # async fn demo() -> Result<(), abacus::store::StoreError> {
/// let store = MemoryPushStore::with_capacity(1_000);
/// assert_eq!(store.depth().await?, 0);
/// assert!(store.pending(0, 10).await?.is_empty());
/// # Ok(())
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
pub struct MemoryPushStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryPushStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryPushStore")
            .field("capacity", &self.capacity)
            .field("tasks_with_configs", &inner.configs.len())
            .field("depth", &inner.outbox.len())
            .finish()
    }
}

impl Default for MemoryPushStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryPushStore {
    /// The outbox capacity of [`MemoryPushStore::new`].
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty store holding at most [`MemoryPushStore::DEFAULT_CAPACITY`]
    /// pending notifications.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// An empty store holding at most `capacity` pending notifications.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The most notifications the outbox holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl PushStore for MemoryPushStore {
    async fn put_config(
        &self,
        owner: &TaskOwner,
        config: &TaskPushNotificationConfig,
    ) -> Result<(), StoreError> {
        let id = config_id(config)?;
        let mut inner = self.lock();
        let configs = inner
            .configs
            .entry(TaskKey::new(owner, &config.task_id))
            .or_default();
        match configs.iter_mut().find(|c| c.id.as_deref() == Some(id)) {
            Some(stored) => *stored = config.clone(),
            None => configs.push(config.clone()),
        }
        Ok(())
    }

    async fn get_config(
        &self,
        owner: &TaskOwner,
        task_id: &str,
        id: &str,
    ) -> Result<Option<TaskPushNotificationConfig>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .configs
            .get(&TaskKey::new(owner, task_id))
            .and_then(|configs| configs.iter().find(|c| c.id.as_deref() == Some(id)))
            .cloned())
    }

    async fn list_configs(
        &self,
        owner: &TaskOwner,
        task_id: &str,
    ) -> Result<Vec<TaskPushNotificationConfig>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .configs
            .get(&TaskKey::new(owner, task_id))
            .cloned()
            .unwrap_or_default())
    }

    async fn delete_config(
        &self,
        owner: &TaskOwner,
        task_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let key = TaskKey::new(owner, task_id);
        let mut inner = self.lock();
        let mut removed = false;
        if let Some(configs) = inner.configs.get_mut(&key) {
            let before = configs.len();
            configs.retain(|c| c.id.as_deref() != Some(id));
            removed = configs.len() < before;
            if configs.is_empty() {
                inner.configs.remove(&key);
            }
        }
        // A scan: deletes are rare next to enqueues and settles.
        let doomed: Vec<String> = inner
            .outbox
            .values()
            .filter(|n| n.owner == *owner && n.task_id == task_id && n.config_id() == id)
            .map(|n| n.event_id.clone())
            .collect();
        for event_id in doomed {
            inner.remove(&event_id, id);
        }
        Ok(removed)
    }

    async fn enqueue_claimed(
        &self,
        batch: &[Notification],
        claim: &OutboxClaim,
    ) -> Result<(), StoreError> {
        for n in batch {
            config_id(&n.config)?;
        }
        let mut inner = self.lock();
        // Only what is not there yet counts, a duplicate in the batch once.
        let mut seen = HashSet::with_capacity(batch.len());
        let fresh: Vec<&Notification> = batch
            .iter()
            .filter(|n| seen.insert((n.event_id.as_str(), n.config_id())))
            .filter(|n| {
                let key = (n.event_id.clone(), n.config_id().to_owned());
                !inner.seqs.contains_key(&key)
            })
            .collect();
        if inner.outbox.len().saturating_add(fresh.len()) > self.capacity {
            return Err(StoreError::Backend(format!(
                "push outbox full ({} of {} notifications pending)",
                inner.outbox.len(),
                self.capacity
            )));
        }
        for n in fresh {
            let (event_id, config_id) = (n.event_id.clone(), n.config_id().to_owned());
            inner.seqs.insert(
                (event_id.clone(), config_id.clone()),
                (n.seq, claim.clone()),
            );
            inner.outbox.insert((n.seq, event_id, config_id), n.clone());
        }
        Ok(())
    }

    async fn pending(&self, after_seq: i64, limit: usize) -> Result<Vec<Notification>, StoreError> {
        let Some(first) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let inner = self.lock();
        Ok(inner
            .outbox
            .range((first, String::new(), String::new())..)
            .take(limit)
            .map(|(_, n)| n.clone())
            .collect())
    }

    async fn claim_pending(
        &self,
        claim: &OutboxClaim,
        takeover: Takeover,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        let Some(first) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let now = chrono::Utc::now();
        let mut inner = self.lock();
        let Inner { outbox, seqs, .. } = &mut *inner;
        let mut taken = Vec::new();
        for ((_, event_id, config_id), n) in outbox.range((first, String::new(), String::new())..) {
            if taken.len() >= limit {
                break;
            }
            let key = (event_id.clone(), config_id.clone());
            if let Some((_, held)) = seqs.get_mut(&key) {
                if takeover.takes(held, &claim.replica, now) {
                    *held = claim.clone();
                    taken.push(n.clone());
                }
            }
        }
        Ok(taken)
    }

    async fn renew_claims(&self, claim: &OutboxClaim) -> Result<u64, StoreError> {
        let mut held = 0;
        for (_, c) in self.lock().seqs.values_mut() {
            if c.replica == claim.replica {
                c.until = claim.until;
                held += 1;
            }
        }
        Ok(held)
    }

    async fn settle(&self, event_id: &str, config_id: &str) -> Result<(), StoreError> {
        self.lock().remove(event_id, config_id);
        Ok(())
    }

    async fn depth(&self) -> Result<u64, StoreError> {
        Ok(self.lock().outbox.len() as u64)
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::push::conformance::{self, notification, PushFixture};

    async fn fixture() -> Option<PushFixture> {
        Some(PushFixture::new(MemoryPushStore::new(), ()))
    }

    conformance::push_store_conformance!(fixture());

    #[tokio::test]
    async fn a_full_outbox_refuses_the_whole_batch() {
        let store = MemoryPushStore::with_capacity(3);
        let a = notification("e1", "hook", 1);
        store
            .enqueue(std::slice::from_ref(&a))
            .await
            .expect("first");
        let batch = [
            notification("e2", "hook", 2),
            notification("e3", "hook", 3),
            notification("e4", "hook", 4),
        ];
        let err = store.enqueue(&batch).await.expect_err("over capacity");
        assert!(err.to_string().contains("push outbox full"), "{err}");
        assert_eq!(store.depth().await.expect("depth"), 1);
        // Duplicates take no room: the one already there and one repeated.
        let fits = [a, batch[0].clone(), batch[0].clone(), batch[1].clone()];
        store.enqueue(&fits).await.expect("fits");
        assert_eq!(store.depth().await.expect("depth"), 3);
        store.settle("e1", "hook").await.expect("settle");
        store.enqueue(&batch[2..]).await.expect("room again");
        assert_eq!(store.capacity(), 3);
        assert_eq!(
            MemoryPushStore::default().capacity(),
            MemoryPushStore::DEFAULT_CAPACITY
        );
    }

    #[tokio::test]
    async fn open_builds_a_memory_store() {
        let config = crate::store::StoreConfig {
            kind: crate::store::StoreKind::Memory,
            ..Default::default()
        };
        let stores = crate::store::open(&config).await.expect("open");
        assert_eq!(stores.push.kind(), "memory");
        let push = super::super::open(&stores.backend).await.expect("push");
        assert_eq!(push.kind(), "memory");
    }
}

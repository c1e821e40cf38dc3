//! A bounded in-process task store.
//!
//! Tasks live in `N` shards (`N` = 16, fewer for small capacities), each a
//! `Mutex<HashMap>` chosen by a hash of the task id, so concurrent requests
//! on different tasks rarely meet on a lock. Every shard holds at most
//! `capacity / N` tasks (the remainder spread over the first shards), so the
//! store as a whole never exceeds its capacity; because ids hash unevenly a
//! full shard may start evicting a little before the whole store is full.
//!
//! Eviction, when a save would overflow its shard:
//! 1. terminal tasks (completed, failed, canceled, rejected) whose TTL ran
//!    out are dropped first (they are also dropped lazily by reads and on
//!    every save),
//! 2. then the terminal task that became terminal longest ago,
//! 3. only when the shard holds no terminal task at all, the non-terminal
//!    task that was saved longest ago (so the store stays bounded even if
//!    clients abandon tasks in `working`).
//!
//! Time is `tokio::time::Instant`, so tests can drive TTLs with a paused
//! clock.
//!
//! Each task's event log lives with the task (the newest
//! [`MAX_EVENTS`] events, each with the wall-clock time it was appended, for
//! [`TaskStore::prune_events`]) and goes with it when it is evicted; so does
//! its lease. An append checks and writes the log under the shard's lock.

use super::log::{self, Claim, ExpiredLease, Lease, LeaseHolder, LoggedEvent, LoggedTask};
use super::query::TaskFilter;
use super::token::finish_page;
use super::{status_key, ListQuery, StoreError, TaskOwner, TaskPage, TaskStore};
use a2a::Task;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Default maximum number of tasks (`--memory-capacity`).
pub(crate) const DEFAULT_CAPACITY: usize = crate::config::defaults::MEMORY_CAPACITY;
/// Default time a terminal task is kept (`--memory-ttl-secs`).
pub(crate) const DEFAULT_TTL: Duration =
    Duration::from_secs(crate::config::defaults::MEMORY_TTL_SECS);
/// Most shards a store uses.
const MAX_SHARDS: usize = 16;
/// Fewest tasks per shard before the store uses fewer shards.
const MIN_PER_SHARD: usize = 64;
/// Most logged events kept per task; older ones are dropped.
pub(crate) const MAX_EVENTS: usize = 1024;

struct Entry {
    task: Arc<Task>,
    owner: TaskOwner,
    /// Key of this task in the shard's `terminal` or `live` order.
    order: u64,
    /// When the task was saved in a terminal state (`None` while live).
    terminal_since: Option<Instant>,
    /// The task's event log and lease.
    log: Log,
}

/// The event log and lease of one task: kept by `save`, written by
/// `append`.
#[derive(Default)]
struct Log {
    /// The sequence number of the last appended event (0: none yet).
    seq: u64,
    /// The newest events (at most [`MAX_EVENTS`]), oldest first, each with
    /// the time it was appended.
    events: VecDeque<(DateTime<Utc>, LoggedEvent)>,
    lease: Option<LeaseHolder>,
}

impl Entry {
    fn logged(&self) -> LoggedTask {
        LoggedTask {
            task: (*self.task).clone(),
            seq: self.log.seq,
            lease: self.log.lease.clone(),
        }
    }
}

#[derive(Default)]
struct Shard {
    capacity: usize,
    tasks: HashMap<String, Entry>,
    /// Terminal tasks by the order they became terminal (oldest first).
    terminal: BTreeMap<u64, String>,
    /// Live tasks by the order they were last saved (oldest first).
    live: BTreeMap<u64, String>,
}

impl Shard {
    fn remove(&mut self, id: &str) -> Option<Entry> {
        let entry = self.tasks.remove(id)?;
        if entry.terminal_since.is_some() {
            self.terminal.remove(&entry.order);
        } else {
            self.live.remove(&entry.order);
        }
        Some(entry)
    }

    /// Drops terminal tasks whose TTL ran out. Terminal tasks expire in the
    /// order they became terminal, so only the front needs checking.
    fn expire(&mut self, now: Instant, ttl: Duration) {
        while let Some((_, id)) = self.terminal.first_key_value() {
            let expired = self
                .tasks
                .get(id)
                .and_then(|e| e.terminal_since)
                .is_none_or(|since| now.saturating_duration_since(since) >= ttl);
            if !expired {
                break;
            }
            let id = id.clone();
            if self.remove(&id).is_none() {
                // Inconsistent index (cannot happen); drop the stale key.
                self.terminal.pop_first();
            }
        }
    }

    /// Evicts one task: the oldest terminal, else the least recently saved
    /// live one.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .terminal
            .first_key_value()
            .or_else(|| self.live.first_key_value())
            .map(|(_, id)| id.clone());
        match victim {
            Some(id) => self.remove(&id).is_some(),
            None => false,
        }
    }

    fn is_expired(&self, entry: &Entry, now: Instant, ttl: Duration) -> bool {
        entry
            .terminal_since
            .is_some_and(|since| now.saturating_duration_since(since) >= ttl)
    }
}

/// Builder for [`MemoryTaskStore`].
#[derive(Debug, Clone)]
pub struct MemoryTaskStoreBuilder {
    capacity: usize,
    ttl: Duration,
}

impl Default for MemoryTaskStoreBuilder {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            ttl: DEFAULT_TTL,
        }
    }
}

impl MemoryTaskStoreBuilder {
    /// Maximum number of tasks kept (at least 1; default 10 000).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// How long a task is kept after it was saved in a terminal state
    /// (default 1 hour).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The store.
    pub fn build(self) -> MemoryTaskStore {
        let n = (self.capacity / MIN_PER_SHARD).clamp(1, MAX_SHARDS);
        let base = self.capacity / n;
        let extra = self.capacity % n;
        let shards = (0..n)
            .map(|i| {
                Mutex::new(Shard {
                    capacity: base + usize::from(i < extra),
                    ..Shard::default()
                })
            })
            .collect();
        MemoryTaskStore {
            shards,
            hasher: RandomState::new(),
            order: AtomicU64::new(0),
            capacity: self.capacity,
            ttl: self.ttl,
        }
    }
}

/// Tasks kept in process memory, bounded by capacity and TTL; lost on
/// restart (see the module docs for sharding and eviction).
pub struct MemoryTaskStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    order: AtomicU64,
    capacity: usize,
    ttl: Duration,
}

impl std::fmt::Debug for MemoryTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTaskStore")
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl Default for MemoryTaskStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryTaskStore {
    /// An empty store with the default capacity (10 000) and TTL (1 hour).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to set capacity and TTL.
    pub fn builder() -> MemoryTaskStoreBuilder {
        MemoryTaskStoreBuilder::default()
    }

    /// An empty store holding at most `capacity` tasks, default TTL.
    pub fn with_capacity(capacity: usize) -> Self {
        Self::builder().capacity(capacity).build()
    }

    /// An empty store with the default capacity whose terminal tasks expire
    /// after `ttl`.
    pub fn with_ttl(ttl: Duration) -> Self {
        Self::builder().ttl(ttl).build()
    }

    /// The maximum number of tasks kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of tasks held now (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).tasks.len()).sum()
    }

    /// Whether the store holds no task.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, id: &str) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(id) % self.shards.len() as u64) as usize;
        lock(&self.shards[i])
    }
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryTaskStore {
    fn insert(&self, task: &Task, owner: &TaskOwner) {
        let now = Instant::now();
        let mut shard = self.shard(&task.id);
        shard.expire(now, self.ttl);
        if let Some(kept) = shard.tasks.get(&task.id) {
            // Never replace another owner's task, nor a newer status (as
            // the SQL upsert guards).
            if &kept.owner != owner
                || status_key(kept.task.status.timestamp) > status_key(task.status.timestamp)
            {
                return;
            }
        }
        // A saved task keeps its log and lease.
        let log = shard.remove(&task.id).map(|e| e.log).unwrap_or_default();
        self.place(&mut shard, Arc::new(task.clone()), owner.clone(), now, log);
    }

    /// Puts `task` into `shard` (from which any older version was removed)
    /// as its most recently saved task, evicting others if it is full.
    fn place(&self, shard: &mut Shard, task: Arc<Task>, owner: TaskOwner, now: Instant, log: Log) {
        let order = self.order.fetch_add(1, Ordering::Relaxed);
        let terminal = task.status.state.is_terminal();
        let id = task.id.clone();
        while shard.tasks.len() >= shard.capacity && shard.evict_one() {}
        if terminal {
            shard.terminal.insert(order, id.clone());
        } else {
            shard.live.insert(order, id.clone());
        }
        let entry = Entry {
            task,
            owner,
            order,
            terminal_since: terminal.then_some(now),
            log,
        };
        shard.tasks.insert(id, entry);
    }

    /// The live (not expired) entry of task `id` of `owner`, with its shard
    /// locked; an expired one is dropped on the way.
    fn with_entry<R>(
        &self,
        id: &str,
        owner: &TaskOwner,
        f: impl FnOnce(&mut Entry) -> R,
    ) -> Option<R> {
        let now = Instant::now();
        let mut shard = self.shard(id);
        let expired = match shard.tasks.get(id) {
            None => return None,
            Some(entry) if &entry.owner != owner => return None,
            Some(entry) => shard.is_expired(entry, now, self.ttl),
        };
        if expired {
            shard.remove(id);
            return None;
        }
        shard.tasks.get_mut(id).map(f)
    }

    /// Calls `f` on every entry of every shard, expired ones dropped first.
    fn for_each_entry(&self, mut f: impl FnMut(&str, &mut Entry)) {
        let now = Instant::now();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            shard.expire(now, self.ttl);
            for (id, entry) in shard.tasks.iter_mut() {
                f(id, entry);
            }
        }
    }
}

#[async_trait]
impl TaskStore for MemoryTaskStore {
    async fn save(&self, task: &Task, owner: &TaskOwner) -> Result<(), StoreError> {
        self.insert(task, owner);
        Ok(())
    }

    fn save_detached(self: Arc<Self>, task: Task, owner: TaskOwner) {
        self.insert(&task, &owner);
    }

    async fn get(&self, id: &str, owner: &TaskOwner) -> Result<Option<Task>, StoreError> {
        let now = Instant::now();
        let mut shard = self.shard(id);
        let found = match shard.tasks.get(id) {
            None => return Ok(None),
            Some(entry) if &entry.owner != owner => return Ok(None),
            Some(entry) if shard.is_expired(entry, now, self.ttl) => None,
            Some(entry) => Some(Arc::clone(&entry.task)),
        };
        if found.is_none() {
            shard.remove(id);
        }
        drop(shard);
        // Clone outside the lock.
        Ok(found.map(|t| (*t).clone()))
    }

    async fn list(&self, query: &ListQuery) -> Result<TaskPage, StoreError> {
        let filter = TaskFilter::new(query)?;
        let now = Instant::now();
        let mut total = 0usize;
        let mut page: Vec<(i64, Arc<Task>)> = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            shard.expire(now, self.ttl);
            for entry in shard.tasks.values() {
                let t = &entry.task;
                let key = status_key(t.status.timestamp);
                if !filter.matches(t, &entry.owner, key) {
                    continue;
                }
                total += 1;
                if filter.after_token(key, &t.id) {
                    page.push((key, Arc::clone(t)));
                }
            }
        }
        let page_size = filter.page_size();
        let order = |a: &(i64, Arc<Task>), b: &(i64, Arc<Task>)| {
            b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id))
        };
        let has_more = page.len() > page_size;
        if has_more {
            page.select_nth_unstable_by(page_size, order);
            page.truncate(page_size);
        }
        page.sort_unstable_by(order);
        let last_key = page.last().map(|(key, _)| *key);
        let tasks = page.into_iter().map(|(_, t)| (*t).clone()).collect();
        let total = i64::try_from(total).unwrap_or(i64::MAX);
        Ok(finish_page(tasks, has_more, last_key, total))
    }

    async fn append(
        &self,
        task: &Task,
        owner: &TaskOwner,
        after: u64,
        events: &[LoggedEvent],
        lease: Lease<'_>,
    ) -> Result<(), StoreError> {
        let last = log::check_sequence(&task.id, after, events)?;
        // Everything that allocates, before the lock.
        let appended_at = Utc::now();
        let keep = events.len().saturating_sub(MAX_EVENTS);
        let new_events: Vec<(DateTime<Utc>, LoggedEvent)> = events[keep..]
            .iter()
            .map(|e| (appended_at, e.clone()))
            .collect();
        let stored = Arc::new(task.clone());
        let lease = match lease {
            Lease::Hold { replica, until } => Some(LeaseHolder {
                replica: replica.to_string(),
                until,
            }),
            Lease::Release => None,
        };
        let now = Instant::now();
        let mut shard = self.shard(&task.id);
        shard.expire(now, self.ttl);
        let mut log = match shard.tasks.get(&task.id) {
            Some(kept) if &kept.owner != owner || kept.log.seq != after => {
                return Err(log::conflict(&task.id, after));
            }
            Some(_) => shard.remove(&task.id).map(|e| e.log).unwrap_or_default(),
            None if after != 0 => return Err(log::conflict(&task.id, after)),
            None => Log::default(),
        };
        let overflow = (log.events.len() + new_events.len()).saturating_sub(MAX_EVENTS);
        log.events.drain(..overflow.min(log.events.len()));
        log.events.extend(new_events);
        log.seq = last;
        log.lease = lease;
        self.place(&mut shard, stored, owner.clone(), now, log);
        Ok(())
    }

    async fn get_logged(
        &self,
        id: &str,
        owner: &TaskOwner,
    ) -> Result<Option<LoggedTask>, StoreError> {
        let found = self.with_entry(id, owner, |entry| {
            (
                Arc::clone(&entry.task),
                entry.log.seq,
                entry.log.lease.clone(),
            )
        });
        // Clone the task outside the lock.
        Ok(found.map(|(task, seq, lease)| LoggedTask {
            task: (*task).clone(),
            seq,
            lease,
        }))
    }

    async fn events_after(
        &self,
        id: &str,
        owner: &TaskOwner,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        let found = self.with_entry(id, owner, |entry| {
            let events = &entry.log.events;
            let start = events.partition_point(|(_, e)| e.seq <= after);
            events
                .range(start..)
                .take(limit)
                .map(|(_, e)| e.clone())
                .collect()
        });
        Ok(found.unwrap_or_default())
    }

    async fn claim(
        &self,
        id: &str,
        owner: &TaskOwner,
        replica: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let claim = self.with_entry(id, owner, |entry| {
            if entry.task.status.state.is_terminal() {
                return Claim::Terminal(entry.logged());
            }
            match &entry.log.lease {
                Some(held) if held.replica != replica && held.until >= now => {
                    Claim::Held(entry.logged())
                }
                _ => {
                    entry.log.lease = Some(LeaseHolder {
                        replica: replica.to_string(),
                        until,
                    });
                    Claim::Acquired(entry.logged())
                }
            }
        });
        Ok(claim.unwrap_or(Claim::Missing))
    }

    async fn renew_leases(&self, replica: &str, until: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut renewed = 0;
        self.for_each_entry(|_, entry| {
            if let Some(held) = &mut entry.log.lease {
                if held.replica == replica {
                    held.until = until;
                    renewed += 1;
                }
            }
        });
        Ok(renewed)
    }

    async fn release_lease(&self, id: &str, replica: &str) -> Result<(), StoreError> {
        let mut shard = self.shard(id);
        if let Some(entry) = shard.tasks.get_mut(id) {
            if entry
                .log
                .lease
                .as_ref()
                .is_some_and(|held| held.replica == replica)
            {
                entry.log.lease = None;
            }
        }
        Ok(())
    }

    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ExpiredLease>, StoreError> {
        let mut expired: Vec<(DateTime<Utc>, ExpiredLease)> = Vec::new();
        self.for_each_entry(|id, entry| {
            if entry.task.status.state.is_terminal() {
                return;
            }
            if let Some(held) = &entry.log.lease {
                if held.until < now {
                    expired.push((
                        held.until,
                        ExpiredLease {
                            task_id: id.to_string(),
                            owner: entry.owner.clone(),
                            replica: held.replica.clone(),
                        },
                    ));
                }
            }
        });
        // The longest expired first, as the SQL stores answer.
        expired.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.task_id.cmp(&b.1.task_id)));
        Ok(expired.into_iter().take(limit).map(|(_, e)| e).collect())
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut pruned = 0;
        self.for_each_entry(|_, entry| {
            // Appended in order: the old ones are at the front.
            while entry.log.events.front().is_some_and(|(at, _)| *at < before) {
                entry.log.events.pop_front();
                pruned += 1;
            }
        });
        Ok(pruned)
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{task, Fixture};
    use super::super::TaskOwner;
    use super::*;
    use a2a::TaskState;

    async fn fixture() -> Option<Fixture> {
        Some(Fixture::new(MemoryTaskStore::new(), ()))
    }

    super::super::conformance::task_store_conformance!(fixture());
    super::super::conformance::task_log_conformance!(fixture());

    #[tokio::test]
    async fn log_keeps_the_newest_events_and_goes_with_its_task() {
        use super::super::conformance::events;
        use super::super::Lease;
        let store = MemoryTaskStore::with_capacity(1);
        let anon = TaskOwner::anonymous();
        let t = task("long", "c", TaskState::Working, 0);
        store
            .append(&t, &anon, 0, &events(&t, 1, 1000), Lease::Release)
            .await
            .expect("append");
        store
            .append(&t, &anon, 1000, &events(&t, 1001, 1100), Lease::Release)
            .await
            .expect("append more");
        let log = store
            .events_after("long", &anon, 0, 5000)
            .await
            .expect("events_after");
        assert_eq!(log.len(), MAX_EVENTS);
        assert_eq!(
            log.first().map(|e| e.seq),
            Some(1100 - MAX_EVENTS as u64 + 1)
        );
        assert_eq!(log.last().map(|e| e.seq), Some(1100));
        // More than fit in one append: the newest are kept.
        let u = task("longer", "c", TaskState::Working, 0);
        store
            .append(&u, &anon, 0, &events(&u, 1, 2000), Lease::Release)
            .await
            .expect("append many");
        assert_eq!(store.len(), 1, "capacity 1 evicted the other task");
        let log = store
            .events_after("longer", &anon, 0, 5000)
            .await
            .expect("events_after");
        assert_eq!(log.len(), MAX_EVENTS);
        assert_eq!(
            log.first().map(|e| e.seq),
            Some(2000 - MAX_EVENTS as u64 + 1)
        );
        // The evicted task's log went with it: it starts again at 0.
        assert!(store
            .events_after("long", &anon, 0, 10)
            .await
            .expect("events_after evicted")
            .is_empty());
        assert!(store
            .get_logged("long", &anon)
            .await
            .expect("get")
            .is_none());
    }

    #[tokio::test]
    async fn misnumbered_events_are_refused() {
        use super::super::conformance::events;
        use super::super::Lease;
        let store = MemoryTaskStore::new();
        let anon = TaskOwner::anonymous();
        let t = task("num", "c", TaskState::Working, 0);
        let result = store
            .append(&t, &anon, 0, &events(&t, 2, 3), Lease::Release)
            .await;
        assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
        assert!(store.get("num", &anon).await.expect("get").is_none());
    }

    async fn ids(store: &MemoryTaskStore) -> Vec<String> {
        let page = store
            .list(&ListQuery {
                page_size: 1000,
                ..ListQuery::default()
            })
            .await
            .expect("list");
        let mut ids: Vec<String> = page.tasks.into_iter().map(|t| t.id).collect();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn capacity_evicts_oldest_terminal_first() {
        let store = MemoryTaskStore::with_capacity(4);
        let save = |id: &str, state: TaskState| {
            let t = task(id, "c", state, 0);
            let store = &store;
            async move { store.save(&t, &TaskOwner::anonymous()).await }
        };
        save("w1", TaskState::Working).await.expect("save");
        save("w2", TaskState::InputRequired).await.expect("save");
        save("c1", TaskState::Completed).await.expect("save");
        save("c2", TaskState::Failed).await.expect("save");
        assert_eq!(store.len(), 4);
        save("c3", TaskState::Canceled).await.expect("save");
        assert_eq!(ids(&store).await, ["c2", "c3", "w1", "w2"]);
        // Re-saving a terminal task makes it the youngest terminal one.
        save("c2", TaskState::Failed).await.expect("save");
        save("c4", TaskState::Rejected).await.expect("save");
        assert_eq!(ids(&store).await, ["c2", "c4", "w1", "w2"]);
        // No terminal task left to evict: the least recently saved live one.
        for id in ["w3", "w4", "w5"] {
            save(id, TaskState::Working).await.expect("save");
            assert!(store.len() <= 4);
        }
        assert_eq!(ids(&store).await, ["w2", "w3", "w4", "w5"]);
        // Updating a task in place never evicts another.
        save("w2", TaskState::Completed).await.expect("save");
        assert_eq!(ids(&store).await, ["w2", "w3", "w4", "w5"]);
    }

    #[tokio::test]
    async fn never_grows_past_capacity() {
        let store = MemoryTaskStore::with_capacity(1000);
        for i in 0..5000 {
            let state = if i % 3 == 0 {
                TaskState::Completed
            } else {
                TaskState::Working
            };
            store
                .save(
                    &task(&format!("t{i}"), "c", state, i),
                    &TaskOwner::anonymous(),
                )
                .await
                .expect("save");
        }
        assert!(store.len() <= 1000, "{}", store.len());
        // The newest task is always kept.
        assert!(store
            .get("t4999", &TaskOwner::anonymous())
            .await
            .expect("get")
            .is_some());
    }

    #[tokio::test]
    async fn default_capacity_keeps_many_tasks() {
        let store = MemoryTaskStore::new();
        assert_eq!(store.capacity(), 10_000);
        for i in 0..2000 {
            store
                .save(
                    &task(&format!("t{i}"), "c", TaskState::Completed, i),
                    &TaskOwner::anonymous(),
                )
                .await
                .expect("save");
        }
        assert_eq!(store.len(), 2000);
    }

    #[tokio::test(start_paused = true)]
    async fn terminal_tasks_expire_after_ttl() {
        let store = MemoryTaskStore::with_ttl(Duration::from_secs(10));
        store
            .save(
                &task("done", "c", TaskState::Completed, 1),
                &TaskOwner::anonymous(),
            )
            .await
            .expect("save");
        store
            .save(
                &task("busy", "c", TaskState::Working, 2),
                &TaskOwner::anonymous(),
            )
            .await
            .expect("save");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(store
            .get("done", &TaskOwner::anonymous())
            .await
            .expect("get")
            .is_some());
        // A later terminal save restarts the clock of that task only.
        store
            .save(
                &task("done2", "c", TaskState::Failed, 3),
                &TaskOwner::anonymous(),
            )
            .await
            .expect("save");
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(store
            .get("done", &TaskOwner::anonymous())
            .await
            .expect("get")
            .is_none());
        assert!(store
            .get("busy", &TaskOwner::anonymous())
            .await
            .expect("get")
            .is_some());
        assert_eq!(ids(&store).await, ["busy", "done2"]);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(ids(&store).await, ["busy"]);
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn open_builds_memory_store() {
        let config = super::super::StoreConfig {
            kind: super::super::StoreKind::Memory,
            memory_capacity: 7,
            ..Default::default()
        };
        let stores = super::super::open(&config).await.expect("open");
        assert_eq!(stores.tasks.kind(), "memory");
        assert!(matches!(stores.backend, super::super::Backend::Memory));
    }
}

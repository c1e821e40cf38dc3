//! Store latency: a [`TaskStore`] that times every call of the one it
//! wraps, as `a2a_store_operation_seconds{backend, operation}`, and counts
//! the failed ones in `a2a_store_errors_total{backend, operation}`.

use super::{
    Claim, ExpiredLease, Lease, ListQuery, LoggedEvent, LoggedTask, StoreError, TaskOwner,
    TaskPage, TaskStore,
};
use crate::protocol::types::Task;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use metrics::{Counter, Histogram};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// The operations timed; each indexes its handles.
#[derive(Clone, Copy)]
enum Op {
    Save,
    Get,
    List,
    Append,
    GetLogged,
    EventsAfter,
    Claim,
    RenewLeases,
    ReleaseLease,
    ExpiredLeases,
    PruneEvents,
}

/// The `operation` label of each [`Op`], in order.
const OPERATIONS: [&str; 11] = [
    "save",
    "get",
    "list",
    "append",
    "get_logged",
    "events_after",
    "claim",
    "renew_leases",
    "release_lease",
    "expired_leases",
    "prune_events",
];

/// One operation's metric handles, registered once.
struct Handles {
    seconds: Histogram,
    errors: Counter,
}

/// Times each call of `inner`.
///
/// ```
/// use abacus::store::{MemoryTaskStore, TaskStore, TimedStore};
/// use std::sync::Arc;
/// let store: Arc<dyn TaskStore> = Arc::new(TimedStore::new(Arc::new(MemoryTaskStore::new())));
/// assert_eq!(store.kind(), "memory");
/// ```
pub struct TimedStore {
    inner: Arc<dyn TaskStore>,
    handles: [Handles; OPERATIONS.len()],
}

impl TimedStore {
    /// Wraps `inner`; the handles come from the recorder installed now
    /// (install it first, or the timings go nowhere).
    pub fn new(inner: Arc<dyn TaskStore>) -> Self {
        let backend = inner.kind();
        let handles = OPERATIONS.map(|operation| Handles {
            seconds: metrics::histogram!(
                "a2a_store_operation_seconds",
                "backend" => backend,
                "operation" => operation
            ),
            errors: metrics::counter!(
                "a2a_store_errors_total",
                "backend" => backend,
                "operation" => operation
            ),
        });
        Self { inner, handles }
    }

    async fn timed<T>(
        &self,
        op: Op,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let start = Instant::now();
        let result = call.await;
        let h = &self.handles[op as usize];
        h.seconds.record(start.elapsed().as_secs_f64());
        if result.is_err() {
            h.errors.increment(1);
        }
        result
    }
}

#[async_trait]
impl TaskStore for TimedStore {
    async fn save(&self, task: &Task, owner: &TaskOwner) -> Result<(), StoreError> {
        self.timed(Op::Save, self.inner.save(task, owner)).await
    }

    async fn get(&self, id: &str, owner: &TaskOwner) -> Result<Option<Task>, StoreError> {
        self.timed(Op::Get, self.inner.get(id, owner)).await
    }

    async fn list(&self, query: &ListQuery) -> Result<TaskPage, StoreError> {
        self.timed(Op::List, self.inner.list(query)).await
    }

    fn save_detached(self: Arc<Self>, task: Task, owner: TaskOwner) {
        // The backend's own detached path (SQLite queues it to its writer).
        self.inner.clone().save_detached(task, owner);
    }

    async fn append(
        &self,
        task: &Task,
        owner: &TaskOwner,
        after: u64,
        events: &[LoggedEvent],
        lease: Lease<'_>,
    ) -> Result<(), StoreError> {
        self.timed(
            Op::Append,
            self.inner.append(task, owner, after, events, lease),
        )
        .await
    }

    async fn get_logged(
        &self,
        id: &str,
        owner: &TaskOwner,
    ) -> Result<Option<LoggedTask>, StoreError> {
        self.timed(Op::GetLogged, self.inner.get_logged(id, owner))
            .await
    }

    async fn events_after(
        &self,
        id: &str,
        owner: &TaskOwner,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StoreError> {
        self.timed(
            Op::EventsAfter,
            self.inner.events_after(id, owner, after, limit),
        )
        .await
    }

    async fn claim(
        &self,
        id: &str,
        owner: &TaskOwner,
        replica: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        self.timed(Op::Claim, self.inner.claim(id, owner, replica, until, now))
            .await
    }

    async fn renew_leases(&self, replica: &str, until: DateTime<Utc>) -> Result<u64, StoreError> {
        self.timed(Op::RenewLeases, self.inner.renew_leases(replica, until))
            .await
    }

    async fn release_lease(&self, id: &str, replica: &str) -> Result<(), StoreError> {
        self.timed(Op::ReleaseLease, self.inner.release_lease(id, replica))
            .await
    }

    async fn expired_leases(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ExpiredLease>, StoreError> {
        self.timed(Op::ExpiredLeases, self.inner.expired_leases(now, limit))
            .await
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.timed(Op::PruneEvents, self.inner.prune_events(before))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn heartbeat(&self) -> Result<(), StoreError> {
        self.inner.heartbeat().await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

//! The store sink of one running task: its events, numbered, appended to
//! the task's log in order, with the state they lead to and the lease.
//!
//! Events queue here and are written by one append at a time, so the
//! store sees them in order even when intermediate ones are written off
//! the emitter's path: whatever is queued when an append starts goes in
//! that append (group commit per task), and a final state awaits the
//! append that carries it, and so every event before it.

use super::bus::Bus;
use super::running::is_final;
use crate::protocol::types::Task;
use crate::store::{Lease, LoggedEvent, StoreError, TaskOwner, TaskStore};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Who this replica is, for the leases of the tasks it runs.
#[derive(Debug, Clone)]
pub(crate) struct Replica {
    /// `--replica-id`.
    pub(crate) id: Arc<str>,
    /// `--lease-secs`.
    pub(crate) lease: Duration,
}

impl Replica {
    /// The end of a lease taken or renewed now.
    pub(crate) fn lease_until(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.lease
    }
}

/// What the stores, the bus and the replica settings every task log
/// shares.
#[derive(Clone)]
pub(crate) struct LogContext {
    pub(crate) store: Arc<dyn TaskStore>,
    pub(crate) bus: Arc<Bus>,
    pub(crate) replica: Replica,
}

/// Where the stored log ends, and how the last append failed.
struct Durable {
    seq: u64,
    /// When the last append failed, and why (cleared by a success).
    failed: Option<(Instant, String)>,
}

#[derive(Default)]
struct Pending {
    events: Vec<LoggedEvent>,
    /// The state after the last queued event (or a state to save as it is).
    task: Option<Task>,
}

/// One task's queue of events on their way to the store.
pub(crate) struct TaskLog {
    task_id: String,
    owner: TaskOwner,
    ctx: LogContext,
    pending: Mutex<Pending>,
    /// The store's log position and the last failure; held for the length
    /// of an append, which is what keeps appends in order.
    durable: tokio::sync::Mutex<Durable>,
    /// A detached flush is spawned and has not taken the queue yet.
    scheduled: AtomicBool,
    /// Another replica wrote the task: nothing more is written from here.
    lost: AtomicBool,
    /// When the last append succeeded (lease renewal is due after a third
    /// of the lease).
    last_write: Mutex<Instant>,
}

impl TaskLog {
    /// The log of a task whose stored log ends at `seq`.
    pub(crate) fn new(task_id: String, owner: TaskOwner, ctx: LogContext, seq: u64) -> Arc<Self> {
        Arc::new(TaskLog {
            task_id,
            owner,
            ctx,
            pending: Mutex::new(Pending::default()),
            durable: tokio::sync::Mutex::new(Durable { seq, failed: None }),
            scheduled: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            last_write: Mutex::new(Instant::now()),
        })
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `event` and `task`, the state after it.
    pub(crate) fn push(&self, event: LoggedEvent, task: Task) {
        let mut p = self.pending();
        p.events.push(event);
        p.task = Some(task);
    }

    /// Queues `task` to be saved as it is (with the lease) unless a state
    /// is queued already: for a task that must be stored before it has an
    /// event, and for lease renewal.
    pub(crate) fn touch(&self, task: impl FnOnce() -> Task) {
        let mut p = self.pending();
        if p.task.is_none() {
            p.task = Some(task());
        }
    }

    /// Writes the queue off the caller's path (a crash may lose it; the
    /// next awaited flush writes it at the latest).
    pub(crate) fn schedule(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let log = self.clone();
        tokio::spawn(async move {
            log.scheduled.store(false, Ordering::Release);
            if let Err(e) = log.flush().await {
                tracing::warn!(task_id = %log.task_id, error = %e, "task events not stored yet");
            }
        });
    }

    /// Writes everything queued, in order; returns once it is durable (or
    /// the append carrying it failed). Events of a failed append stay
    /// queued for the next one, unless another replica took the task.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        let asked = Instant::now();
        let mut durable = self.durable.lock().await;
        if self.lost.load(Ordering::Acquire) {
            return Err(crate::store::log_conflict(&self.task_id, durable.seq));
        }
        if let Some((at, why)) = &durable.failed {
            // The append we waited for failed meanwhile: the store is down
            // now, and trying again would double the caller's wait.
            if *at >= asked {
                return Err(StoreError::Backend(why.clone()));
            }
        }
        let (events, task) = {
            let mut p = self.pending();
            (std::mem::take(&mut p.events), p.task.take())
        };
        let Some(task) = task else {
            return Ok(());
        };
        let replica = &self.ctx.replica;
        let lease = if is_final(&task.status.state) {
            Lease::Release
        } else {
            Lease::Hold {
                replica: &replica.id,
                until: replica.lease_until(),
            }
        };
        let after = durable.seq;
        let span = tracing::info_span!(
            target: crate::otel::TARGET,
            "store.append",
            a2a.task_id = %self.task_id,
            events = events.len()
        );
        let write = self
            .ctx
            .store
            .append(&task, &self.owner, after, &events, lease);
        match tracing::Instrument::instrument(write, span).await {
            Ok(()) => {
                durable.seq = after + events.len() as u64;
                durable.failed = None;
                *self.last_write.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                if !events.is_empty() {
                    self.ctx.bus.published(&self.task_id, durable.seq);
                }
                Ok(())
            }
            Err(e @ StoreError::Conflict(_)) => {
                self.lost.store(true, Ordering::Release);
                *self.pending() = Pending::default();
                Err(e)
            }
            Err(e) => {
                let why = match &e {
                    StoreError::Backend(why) => why.clone(),
                    other => other.to_string(),
                };
                durable.failed = Some((Instant::now(), why));
                let mut p = self.pending();
                let mut requeued = events;
                requeued.append(&mut p.events);
                p.events = requeued;
                p.task.get_or_insert(task);
                Err(e)
            }
        }
    }

    /// Whether the lease is due for renewal: the last append is older than
    /// a third of the lease.
    pub(crate) fn renewal_due(&self) -> bool {
        let last = *self.last_write.lock().unwrap_or_else(|e| e.into_inner());
        last.elapsed() >= self.ctx.replica.lease / 3
    }

    /// The exchange ended here with `error`, which the log will not show:
    /// followers on this replica hear of it.
    pub(crate) fn failed(&self, error: &crate::protocol::A2AError) {
        self.ctx.bus.failed(&self.task_id, error);
    }
}

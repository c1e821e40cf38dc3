//! The task event log and task leases: what lets several replicas share
//! their tasks.
//!
//! Every task event (status and artifact updates) gets a per-task sequence
//! number, 1, 2, 3, … and is appended to the store together with the task
//! state it leads to, in one transaction ([`TaskStore::append`]). An append
//! names the sequence number it continues from, so two writers of one task
//! can never both succeed: the log has no gaps and no duplicates, and the
//! stored task is always the state after its last logged event.
//!
//! The replica running a task holds its lease ([`Lease`]): it is written
//! with the task's appends, renewed in one statement for all of a replica's
//! tasks ([`TaskStore::renew_leases`]), and claimed by another replica once
//! it has expired ([`TaskStore::expired_leases`], [`TaskStore::claim`]).

use super::{StoreError, TaskOwner};
use a2a::{StreamResponse, Task};
use chrono::{DateTime, Utc};

/// One event of a task's log.
///
/// ```
/// use abacus::store::LoggedEvent;
/// use abacus::protocol::types::{StreamResponse, TaskState, TaskStatus, TaskStatusUpdateEvent};
/// let event = StreamResponse::StatusUpdate(TaskStatusUpdateEvent {
///     task_id: "t".into(),
///     context_id: "c".into(),
///     status: TaskStatus { state: TaskState::Working, message: None, timestamp: None },
///     metadata: None,
/// });
/// let logged = LoggedEvent { seq: 1, event };
/// assert_eq!(logged.seq, 1);
/// ```
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    /// The per-task sequence number: 1 for a task's first event.
    pub seq: u64,
    /// A status or artifact update.
    pub event: StreamResponse,
}

/// A stored task with its place in the log and its lease.
#[derive(Debug, Clone)]
pub struct LoggedTask {
    /// The task as of event `seq`.
    pub task: Task,
    /// The sequence number of its last logged event (0: none yet).
    pub seq: u64,
    /// Who runs it, if anyone holds a lease (expired or not).
    pub lease: Option<LeaseHolder>,
}

/// The replica holding a task's lease, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The replica's id (`--replica-id`).
    pub replica: String,
    /// The lease ends here unless renewed.
    pub until: DateTime<Utc>,
}

/// What an append does to the task's lease.
#[derive(Debug, Clone, Copy)]
pub enum Lease<'a> {
    /// This replica runs the task: hold the lease until `until`.
    Hold {
        /// This replica's id.
        replica: &'a str,
        /// The end of the lease.
        until: DateTime<Utc>,
    },
    /// The execution is over (final state): nobody holds the lease.
    Release,
}

/// The outcome of [`TaskStore::claim`].
#[derive(Debug, Clone)]
pub enum Claim {
    /// The lease is now this replica's (it was free, expired or already ours).
    Acquired(LoggedTask),
    /// The task is in a terminal state: nobody runs it any more; no lease
    /// was taken.
    Terminal(LoggedTask),
    /// Another replica holds an unexpired lease.
    Held(LoggedTask),
    /// No task of that id and owner.
    Missing,
}

/// A task whose lease expired: its replica stopped renewing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredLease {
    /// The task.
    pub task_id: String,
    /// Its owner.
    pub owner: TaskOwner,
    /// The replica that held the lease.
    pub replica: String,
}

/// Why an append was refused although the store works.
pub(crate) fn conflict(task_id: &str, after: u64) -> StoreError {
    StoreError::Conflict(format!(
        "task {task_id} was written by another replica (its log no longer ends at event {after})"
    ))
}

/// Checks that `events` are numbered `after + 1`, `after + 2`, … as
/// [`TaskStore::append`](super::TaskStore::append) requires; returns the
/// sequence number of the last (`after` when there are none).
pub(crate) fn check_sequence(
    task_id: &str,
    after: u64,
    events: &[LoggedEvent],
) -> Result<u64, StoreError> {
    let mut expected = after;
    for event in events {
        expected = expected
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend(format!("task {task_id}: event log overflow")))?;
        if event.seq != expected {
            return Err(StoreError::Backend(format!(
                "task {task_id}: appended event numbered {} where {expected} belongs",
                event.seq
            )));
        }
    }
    Ok(expected)
}

/// What one replica tells the others, through a [`Backplane`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Events of `task_id` up to `seq` are in the log.
    Event {
        /// The task.
        task_id: String,
        /// Its last logged event.
        seq: u64,
    },
    /// A caller asked to cancel `task_id`: its runner should.
    Cancel {
        /// The task.
        task_id: String,
    },
    /// The backplane (re)connected: signals sent meanwhile may be lost, so
    /// every follower re-reads the log.
    Resync,
}

/// How replicas sharing one database signal each other: PostgreSQL's
/// `LISTEN`/`NOTIFY` for [`PostgresDatabase`](super::PostgresDatabase).
/// Stores that one process owns (SQLite, memory) have none.
#[async_trait::async_trait]
pub trait Backplane: Send + Sync + 'static {
    /// Every replica's signals, this one's included; a [`Signal::Resync`]
    /// after each (re)connection. Called once, by the core.
    fn signals(&self) -> tokio::sync::mpsc::Receiver<Signal>;
    /// Asks the replica running `task_id` to cancel it.
    async fn request_cancel(&self, task_id: &str) -> Result<(), StoreError>;
}

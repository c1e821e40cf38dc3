//! The core's background work, what makes replicas sharing a store act as
//! one server:
//!
//! * **renewal**: the lease of every task this replica runs is renewed
//!   once a third of it has passed since its last write;
//! * **reaping**: a task whose lease ran out (its replica stopped) is
//!   claimed and ended `FAILED` with a status message that says so, or run
//!   again from its last message when the agent allows it
//!   ([`Agent::rerun_after_failover`](crate::agent::Agent::rerun_after_failover));
//!   one that was waiting for input just loses the lease;
//! * **retention**: logged events older than the retention are deleted;
//! * **signals**: the backplane's events wake this replica's followers,
//!   and its cancel requests reach the tasks running here.
//!
//! Each loop holds the core weakly and ends when the core is dropped.

use super::running::{agent_text, Emit, Running};
use super::service::{Inner, Reopened};
use crate::agent::{RequestContext, TaskUpdater};
use crate::protocol::types::Role;
use crate::protocol::types::{StreamResponse, TaskState, TaskStatus, TaskStatusUpdateEvent};
use crate::protocol::Principal;
use crate::store::{ExpiredLease, Signal};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Expired leases handled per scan.
const REAP_BATCH: usize = 64;
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Starts the loops, when there is a runtime to run them.
pub(super) fn start(inner: &Arc<Inner>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let lease = inner.log.replica.lease;
    spawn_every(inner, lease / 3, |inner| async move { renew(&inner) });
    spawn_every(
        inner,
        (lease / 2).min(Duration::from_secs(5)),
        |inner| async move { reap(&inner).await },
    );
    spawn_every(inner, PRUNE_EVERY, |inner| async move {
        let before = chrono::Utc::now() - inner.retention;
        if let Err(e) = inner.store.prune_events(before).await {
            tracing::warn!(error = %e, "task event log not pruned");
        }
    });
    if let Some(backplane) = &inner.backplane {
        let mut signals = backplane.signals();
        let weak = Arc::downgrade(inner);
        tokio::spawn(async move {
            while let Some(signal) = signals.recv().await {
                let Some(inner) = weak.upgrade() else { return };
                on_signal(&inner, signal);
            }
        });
    }
}

/// Runs `work` every `period` (first after one period) until the core is
/// dropped.
fn spawn_every<F, Fut>(inner: &Arc<Inner>, period: Duration, work: F)
where
    F: Fn(Arc<Inner>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let period = period.max(Duration::from_millis(50));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            work(inner).await;
        }
    });
}

/// Renews the leases that are due, each with an append of its task's
/// current state (so a lease is only ever extended by the replica whose
/// log position the store still has).
fn renew(inner: &Inner) {
    for entry in inner.running.iter() {
        let running = entry.value().clone();
        if !running.is_executing() || !running.log.renewal_due() {
            continue;
        }
        tokio::spawn(async move { running.renew().await });
    }
}

/// Ends the tasks whose replica stopped renewing their leases.
async fn reap(inner: &Arc<Inner>) {
    let expired = match inner
        .store
        .expired_leases(chrono::Utc::now(), REAP_BATCH)
        .await
    {
        Ok(expired) => expired,
        Err(e) => {
            tracing::warn!(error = %e, "expired task leases not read");
            return;
        }
    };
    for lease in expired {
        if inner.running.contains_key(&lease.task_id) {
            continue;
        }
        if let Err(e) = end_orphan(inner, &lease).await {
            tracing::warn!(task_id = %lease.task_id, error = %e.message, "orphaned task not ended");
        }
    }
}

/// Claims one orphaned task and ends it `FAILED` (or, if it was waiting
/// for input, only frees its lease: nothing was running).
async fn end_orphan(
    inner: &Arc<Inner>,
    lease: &ExpiredLease,
) -> Result<(), crate::protocol::A2AError> {
    let Reopened::Here(running) = inner.reopen(&lease.task_id, &lease.owner).await? else {
        return Ok(()); // claimed by another replica first
    };
    let state = running.snapshot().status.state;
    if state.is_terminal() || running.is_executing() {
        return Ok(());
    }
    if matches!(state, TaskState::InputRequired | TaskState::AuthRequired) {
        inner.unregister(&running);
        let _ = inner
            .store
            .release_lease(&lease.task_id, &inner.log.replica.id)
            .await;
        return Ok(());
    }
    if inner.agent.rerun_after_failover() && rerun(inner, &running, lease) {
        return Ok(());
    }
    let reason = format!(
        "the replica running this task ({}) stopped before it finished; ended by replica {}",
        lease.replica, inner.log.replica.id
    );
    tracing::warn!(task_id = %lease.task_id, replica = %lease.replica, "ending a task whose replica stopped");
    let event = TaskStatusUpdateEvent {
        task_id: running.task_id.clone(),
        context_id: running.context_id.clone(),
        status: TaskStatus {
            state: TaskState::Failed,
            message: Some(agent_text(&running.task_id, &running.context_id, reason)),
            timestamp: Some(chrono::Utc::now()),
        },
        metadata: None,
    };
    let ended = running
        .emit(Emit::Event(StreamResponse::StatusUpdate(event)))
        .await;
    inner.unregister(&running);
    ended
}

/// Runs an orphaned task's last user message again, for an agent that
/// allows it; false when the task has none (or an execution runs).
fn rerun(inner: &Arc<Inner>, running: &Arc<Running>, lease: &ExpiredLease) -> bool {
    let task = running.snapshot();
    let Some(message) = task
        .history
        .iter()
        .flatten()
        .rev()
        .find(|m| m.role == Role::User)
        .cloned()
    else {
        return false;
    };
    if !running.resume_execution() {
        return false;
    }
    tracing::warn!(task_id = %lease.task_id, replica = %lease.replica, "running again a task whose replica stopped");
    let principal = match lease.owner.principal() {
        "" => Principal::default(),
        subject => Principal::new(subject),
    };
    let ctx = RequestContext {
        task_id: running.task_id.clone(),
        context_id: running.context_id.clone(),
        message,
        task: Some(task),
        streaming: false,
        principal,
        cancel: running.cancel.clone(),
    };
    let updater = TaskUpdater {
        running: running.clone(),
    };
    inner.clone().start(running.clone(), ctx, updater);
    true
}

/// One signal of the backplane.
fn on_signal(inner: &Arc<Inner>, signal: Signal) {
    match signal {
        Signal::Event { task_id, seq } => inner.log.bus.published(&task_id, seq),
        Signal::Resync => inner.log.bus.resync(),
        Signal::Cancel { task_id } => {
            let Some(running) = inner.running.get(&task_id).map(|r| r.clone()) else {
                return;
            };
            let inner = inner.clone();
            tokio::spawn(async move {
                if let Err(e) = inner.cancel_here(running).await {
                    tracing::info!(%task_id, error = %e.message, "cancel asked by another replica not done");
                }
            });
        }
    }
}

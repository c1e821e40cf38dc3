//! The live state of a task while an agent works on it.

use crate::protocol::types::{
    A2AError, Message, StreamResponse, Task, TaskState, TaskStatus, TaskStatusUpdateEvent,
};
use crate::store::TaskStore;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

/// Events buffered per subscriber before it counts as lagging.
const SUBSCRIBER_BUFFER: usize = 64;

/// What an agent emits through its `TaskUpdater`.
pub(crate) enum Emit {
    Reply(Message),
    Event(StreamResponse),
}

/// A task being worked on: its snapshot, its subscribers, its cancel token.
pub(crate) struct Running {
    pub(crate) task_id: String,
    pub(crate) context_id: String,
    pub(crate) cancel: CancellationToken,
    /// An agent execution is in progress on this task.
    executing: AtomicBool,
    state: Mutex<RunState>,
    /// Serializes emitters so a status change is stored before the next event.
    emit_lock: tokio::sync::Mutex<()>,
    settled: Notify,
    store: Arc<dyn TaskStore>,
}

pub(crate) struct RunState {
    pub(crate) task: Task,
    /// A task event was emitted, so the task exists for clients.
    pub(crate) materialized: bool,
    /// A direct reply ended the exchange.
    pub(crate) reply: Option<Message>,
    /// The current execution reached a final state or replied.
    settled: bool,
    /// Created on the first subscription only: unary calls never pay for it.
    tx: Option<broadcast::Sender<StreamResponse>>,
}

impl RunState {
    /// The current execution reached a final state or replied.
    pub(crate) fn is_settled(&self) -> bool {
        self.settled
    }
}

/// Terminal or interrupted: the agent's execution ends here.
pub(crate) fn is_final(state: &TaskState) -> bool {
    state.is_terminal() || matches!(state, TaskState::InputRequired | TaskState::AuthRequired)
}

impl Running {
    pub(crate) fn new(task: Task, materialized: bool, store: Arc<dyn TaskStore>) -> Arc<Self> {
        Arc::new(Running {
            task_id: task.id.clone(),
            context_id: task.context_id.clone(),
            cancel: CancellationToken::new(),
            executing: AtomicBool::new(false),
            state: Mutex::new(RunState {
                task,
                materialized,
                reply: None,
                settled: false,
                tx: None,
            }),
            emit_lock: tokio::sync::Mutex::new(()),
            settled: Notify::new(),
            store,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the task for a new agent execution with the user's `message`
    /// appended to its history. False when an execution is already running.
    pub(crate) fn begin_execution(&self, message: Option<Message>) -> bool {
        if self.executing.swap(true, Ordering::AcqRel) {
            return false;
        }
        let mut st = self.lock();
        st.settled = false;
        if let Some(m) = message {
            st.task.history.get_or_insert_with(Vec::new).push(m);
        }
        true
    }

    /// Ends the current execution. Returns true when the handle must stay
    /// registered: the task is interrupted and clients are subscribed to it.
    pub(crate) fn end_execution(&self) -> bool {
        self.executing.store(false, Ordering::Release);
        let st = self.lock();
        !st.task.status.state.is_terminal()
            && st.tx.as_ref().is_some_and(|tx| tx.receiver_count() > 0)
    }

    /// Live event subscriptions.
    pub(crate) fn subscriber_count(&self) -> usize {
        self.lock().tx.as_ref().map_or(0, |tx| tx.receiver_count())
    }

    /// True while an agent execution runs on this task.
    pub(crate) fn is_executing(&self) -> bool {
        self.executing.load(Ordering::Acquire)
    }

    /// The current task snapshot.
    pub(crate) fn snapshot(&self) -> Task {
        self.lock().task.clone()
    }

    /// The current snapshot and a receiver of every later event, atomically.
    pub(crate) fn subscribe(&self) -> (Task, bool, broadcast::Receiver<StreamResponse>) {
        let mut st = self.lock();
        let rx = match &st.tx {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(SUBSCRIBER_BUFFER);
                st.tx = Some(tx);
                rx
            }
        };
        (st.task.clone(), st.materialized, rx)
    }

    /// Waits until the exchange settles (final state or reply).
    pub(crate) async fn settled(&self) {
        loop {
            let notified = self.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().is_settled() {
                return;
            }
            notified.await;
        }
    }

    /// Applies an agent event: validates it, stores status changes durably,
    /// then updates the snapshot and notifies subscribers.
    pub(crate) async fn emit(&self, emit: Emit) -> Result<(), A2AError> {
        let _serial = self.emit_lock.lock().await;
        match emit {
            Emit::Reply(message) => {
                let mut st = self.lock();
                if st.materialized || st.reply.is_some() {
                    return Err(A2AError::invalid_agent_response());
                }
                st.reply = Some(message.clone());
                st.settled = true;
                if let Some(tx) = &st.tx {
                    let _ = tx.send(StreamResponse::Message(message));
                }
                drop(st);
                self.settled.notify_waiters();
                Ok(())
            }
            Emit::Event(StreamResponse::StatusUpdate(ev)) => {
                let next = {
                    let st = self.lock();
                    check_open(&st)?;
                    let mut next = st.task.clone();
                    apply_status(&mut next, &ev);
                    next
                };
                let settled = is_final(&next.status.state);
                if settled {
                    // Durable before anyone hears of it.
                    self.store
                        .save(&next)
                        .await
                        .map_err(|e| A2AError::internal(format!("task not stored: {e}")))?;
                } else {
                    // Intermediate states may be lost in a crash; don't wait.
                    self.store.clone().save_detached(next.clone());
                }
                {
                    let mut st = self.lock();
                    st.task = next;
                    st.materialized = true;
                    st.settled |= settled;
                    if let Some(tx) = &st.tx {
                        let _ = tx.send(StreamResponse::StatusUpdate(ev));
                    }
                }
                if settled {
                    self.settled.notify_waiters();
                }
                Ok(())
            }
            Emit::Event(StreamResponse::ArtifactUpdate(ev)) => {
                let mut st = self.lock();
                check_open(&st)?;
                let artifacts = st.task.artifacts.get_or_insert_with(Vec::new);
                match artifacts
                    .iter_mut()
                    .find(|a| a.artifact_id == ev.artifact.artifact_id)
                {
                    Some(existing) if ev.append == Some(true) => {
                        existing.parts.extend(ev.artifact.parts.iter().cloned())
                    }
                    Some(existing) => *existing = ev.artifact.clone(),
                    None => artifacts.push(ev.artifact.clone()),
                }
                st.materialized = true;
                if let Some(tx) = &st.tx {
                    let _ = tx.send(StreamResponse::ArtifactUpdate(ev));
                }
                Ok(())
            }
            Emit::Event(_) => Err(A2AError::invalid_agent_response()),
        }
    }

    /// Ends an execution that returned without a final state.
    pub(crate) async fn finish_unsettled(&self, error: Option<A2AError>) {
        if self.lock().is_settled() {
            return;
        }
        let reason = match error {
            Some(e) => format!("agent error: {}", e.message),
            None => "agent finished without a final state".to_string(),
        };
        let ev = TaskStatusUpdateEvent {
            task_id: self.task_id.clone(),
            context_id: self.context_id.clone(),
            status: TaskStatus {
                state: TaskState::Failed,
                message: Some(agent_text(&self.task_id, &self.context_id, reason)),
                timestamp: Some(chrono::Utc::now()),
            },
            metadata: None,
        };
        if self
            .emit(Emit::Event(StreamResponse::StatusUpdate(ev)))
            .await
            .is_err()
        {
            // Not even the failure could be stored: wake waiters anyway so no
            // request hangs; they see the last state.
            self.lock().settled = true;
            self.settled.notify_waiters();
        }
    }
}

fn check_open(st: &RunState) -> Result<(), A2AError> {
    if st.task.status.state.is_terminal() {
        return Err(A2AError::unsupported_operation(format!(
            "task {} is already in a terminal state",
            st.task.id
        )));
    }
    if st.reply.is_some() {
        return Err(A2AError::invalid_agent_response());
    }
    Ok(())
}

fn apply_status(task: &mut Task, ev: &TaskStatusUpdateEvent) {
    if let Some(msg) = &ev.status.message {
        task.history.get_or_insert_with(Vec::new).push(msg.clone());
    }
    task.status = ev.status.clone();
}

pub(crate) fn agent_text(task_id: &str, context_id: &str, text: String) -> Message {
    Message {
        message_id: crate::protocol::types::new_message_id(),
        context_id: Some(context_id.to_string()),
        task_id: Some(task_id.to_string()),
        role: crate::protocol::types::Role::Agent,
        parts: vec![crate::protocol::types::Part::text(text)],
        metadata: None,
        extensions: None,
        reference_task_ids: None,
    }
}

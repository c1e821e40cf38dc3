//! The live state of a task while an agent works on it: one state machine
//! ([`Phase`]) and one [`Running::emit`] through which every task event
//! passes on its way to the sinks.

use super::log::{LogContext, TaskLog};
use crate::protocol::types::{
    A2AError, Message, StreamResponse, Task, TaskPushNotificationConfig, TaskState, TaskStatus,
    TaskStatusUpdateEvent,
};
use crate::protocol::{server_error, StreamEvent, StreamItem};
use crate::push::Pusher;
use crate::store::{LoggedEvent, StoreError, TaskOwner};
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

/// Where a task stands in its lifecycle, as far as an execution goes.
///
/// ```text
///            begin_execution                 task event          final state
///   Idle ───────────────────► Started(_) ───────────────► Working ───────────► Settled
///    ▲                             │ direct reply (new task only)                 │
///    │                             ▼                                              │
///    └──────────── end_execution ◄─ Replied ◄─────────────────────────────────────┘
/// ```
///
/// A status event on an `Idle` task (a cancel while it waits for input)
/// leaves it `Idle`; `Settled` and `Replied` stay so until the execution ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No execution runs: a stored task reopened for a message, a
    /// subscriber or a cancel.
    Idle,
    /// An execution runs and has emitted nothing yet.
    Started(Origin),
    /// An execution runs and has emitted task events.
    Working,
    /// The execution answered with a direct message: no task exists for
    /// clients.
    Replied,
    /// The execution reached a final state (terminal or interrupted) and
    /// has not returned yet.
    Settled,
}

/// Whether clients already know the task an execution works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Created by this message: the agent may still answer with a direct
    /// reply instead.
    New,
    /// A stored or interrupted task continued by this message.
    Known,
}

impl Phase {
    fn is_executing(self) -> bool {
        self != Phase::Idle
    }

    /// The exchange is over for anyone waiting on the reply.
    fn is_settled(self) -> bool {
        matches!(self, Phase::Idle | Phase::Replied | Phase::Settled)
    }

    /// Clients know the task: it was stored before, or the agent emitted a
    /// task event.
    fn task_is_known(self) -> bool {
        !matches!(self, Phase::Started(Origin::New) | Phase::Replied)
    }

    /// The phase after a task event that leaves the task in a final state
    /// (`Settled`) or not.
    fn after_event(self, settles: Settles) -> Phase {
        match (self, settles) {
            (Phase::Started(_) | Phase::Working, Settles::Yes) => Phase::Settled,
            (Phase::Started(_) | Phase::Working, Settles::No) => Phase::Working,
            (other, _) => other,
        }
    }
}

/// Whether an event brings the task to a final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settles {
    Yes,
    No,
}

/// A task being worked on: its snapshot, its subscribers, its cancel token.
pub(crate) struct Running {
    pub(crate) task_id: String,
    pub(crate) context_id: String,
    /// Who may see, continue, cancel and follow it.
    pub(crate) owner: TaskOwner,
    pub(crate) cancel: CancellationToken,
    state: Mutex<RunState>,
    /// Serializes emitters, so that each event reaches every sink before
    /// the next one starts (a status change is stored before the next
    /// event is applied).
    emit_lock: tokio::sync::Mutex<()>,
    settled: Notify,
    /// The store sink: the task's event log.
    pub(crate) log: Arc<TaskLog>,
    /// The push sink, when push notifications are enabled.
    push: Option<Pusher>,
    /// A final state is on its way to the store: its event (or the store's
    /// error) is the next thing subscribers hear (see [`Running::settling`]).
    settling: AtomicBool,
}

/// Marks a final state in flight for as long as it lives.
struct Settling<'a>(&'a AtomicBool);

impl<'a> Settling<'a> {
    fn start(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::Release);
        Settling(flag)
    }
}

impl Drop for Settling<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

pub(crate) struct RunState {
    pub(crate) task: Task,
    /// The sequence number of the last event applied to `task`.
    pub(crate) seq: u64,
    phase: Phase,
    /// A direct reply ended the exchange.
    pub(crate) reply: Option<Message>,
    /// The current execution's state could not be stored: the exchange
    /// ends with this error, never with a state that is not stored.
    pub(crate) failure: Option<A2AError>,
    /// Created on the first subscription only: unary calls never pay for it.
    tx: Option<broadcast::Sender<StreamItem>>,
    /// The task's push configs (empty for almost every task: then the push
    /// sink costs nothing).
    push_configs: Vec<TaskPushNotificationConfig>,
    /// A new task's config from its first message, stored with the first
    /// task event (a direct reply leaves nothing behind).
    unsaved_push: Option<TaskPushNotificationConfig>,
}

/// The error of a state the store could not save.
pub(crate) fn store_unavailable(e: &StoreError) -> A2AError {
    A2AError::new(
        server_error::STORE_UNAVAILABLE,
        format!("task store unavailable, the task's state was not saved: {e}"),
    )
}

/// Terminal or interrupted: the agent's execution ends here.
pub(crate) fn is_final(state: &TaskState) -> bool {
    state.is_terminal() || matches!(state, TaskState::InputRequired | TaskState::AuthRequired)
}

impl Running {
    /// A live handle for `task`, whose log ends at event `seq`, in
    /// `phase`: a new task starts executing at once (`Started(New)`), a
    /// stored one waits (`Idle`).
    pub(crate) fn new(
        task: Task,
        owner: TaskOwner,
        phase: Phase,
        seq: u64,
        ctx: &LogContext,
        push: Option<Pusher>,
    ) -> Arc<Self> {
        let log = TaskLog::new(task.id.clone(), owner.clone(), ctx.clone(), seq);
        Arc::new(Running {
            task_id: task.id.clone(),
            context_id: task.context_id.clone(),
            owner,
            cancel: CancellationToken::new(),
            state: Mutex::new(RunState {
                task,
                seq,
                phase,
                reply: None,
                failure: None,
                tx: None,
                push_configs: Vec::new(),
                unsaved_push: None,
            }),
            emit_lock: tokio::sync::Mutex::new(()),
            settled: Notify::new(),
            log,
            push,
            settling: AtomicBool::new(false),
        })
    }

    /// Whether a final state is being stored: its event, or the error that
    /// replaces it, comes next. Streams wait for it to send the events
    /// before it in the same write (see `SseBody::ready`).
    pub(crate) fn settling(&self) -> bool {
        self.settling.load(Ordering::Acquire)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims an idle task for a new agent execution with the user's
    /// `message` appended to its history. False when an execution runs.
    pub(crate) fn begin_execution(&self, message: Message) -> bool {
        let mut st = self.lock();
        if st.phase.is_executing() {
            return false;
        }
        st.phase = Phase::Started(Origin::Known);
        st.failure = None;
        st.task.history.get_or_insert_with(Vec::new).push(message);
        true
    }

    /// Claims an idle task for running its last message again (after the
    /// replica that ran it stopped). False when an execution runs.
    pub(crate) fn resume_execution(&self) -> bool {
        let mut st = self.lock();
        if st.phase.is_executing() {
            return false;
        }
        st.phase = Phase::Started(Origin::Known);
        st.failure = None;
        true
    }

    /// Ends the current execution.
    pub(crate) fn end_execution(&self) {
        self.lock().phase = Phase::Idle;
        self.settled.notify_waiters();
    }

    /// Adds `config`, or replaces the one with its id.
    pub(crate) fn set_push_config(&self, config: TaskPushNotificationConfig) {
        let mut st = self.lock();
        match st.push_configs.iter_mut().find(|c| c.id == config.id) {
            Some(existing) => *existing = config,
            None => st.push_configs.push(config),
        }
    }

    /// Adds the config of a new task's first message, to be stored with
    /// the task's first event.
    pub(crate) fn set_unsaved_push_config(&self, config: TaskPushNotificationConfig) {
        self.lock().unsaved_push = Some(config.clone());
        self.set_push_config(config);
    }

    /// Removes the config `id`.
    pub(crate) fn remove_push_config(&self, id: &str) {
        self.lock()
            .push_configs
            .retain(|c| c.id.as_deref() != Some(id));
    }

    /// Live event subscriptions.
    pub(crate) fn subscriber_count(&self) -> usize {
        self.lock().tx.as_ref().map_or(0, |tx| tx.receiver_count())
    }

    /// True while an agent execution runs on this task.
    pub(crate) fn is_executing(&self) -> bool {
        self.lock().phase.is_executing()
    }

    /// The exchange settled: a final state, a direct reply, or no execution.
    pub(crate) fn is_settled(&self) -> bool {
        self.lock().phase.is_settled()
    }

    /// The current task snapshot.
    pub(crate) fn snapshot(&self) -> Task {
        self.lock().task.clone()
    }

    /// The current snapshot, whether clients know the task yet, and a
    /// receiver of every later event, atomically.
    pub(crate) fn subscribe(&self) -> Subscription {
        let mut st = self.lock();
        let rx = match &st.tx {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(SUBSCRIBER_BUFFER);
                st.tx = Some(tx);
                rx
            }
        };
        Subscription {
            task: st.task.clone(),
            seq: st.seq,
            known: st.phase.task_is_known(),
            rx,
        }
    }

    /// Waits until the exchange settles (final state, reply, or the end of
    /// the execution).
    pub(crate) async fn settled(&self) {
        loop {
            let notified = self.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_settled() {
                return;
            }
            notified.await;
        }
    }

    /// Applies one agent event. Every task event passes here, and reaches
    /// the sinks in this order:
    ///
    /// 1. **the store**: a final state is written and awaited before anyone
    ///    hears of it, so a state a client saw survives a crash;
    ///    intermediate states are written without waiting (a crash may lose
    ///    them; the store keeps the newest status, so a late write never
    ///    overwrites a newer one); artifacts are stored with the next status;
    /// 2. **the push outbox**, for a task with push configs: one
    ///    notification per config, written and awaited (an acknowledged
    ///    event is never lost) and delivered off the emitter's path (a slow
    ///    receiver never slows the task);
    /// 3. **the snapshot and live subscribers**, under one lock, so that a
    ///    new subscriber sees either the old snapshot and the event, or the
    ///    new snapshot; nobody hears of an event a crash could lose.
    ///
    /// Emitters are serialized, so each event is through every sink before
    /// the next is validated.
    pub(crate) async fn emit(&self, emit: Emit) -> Result<(), A2AError> {
        let _serial = self.emit_lock.lock().await;
        match emit {
            Emit::Reply(message) => self.reply(message),
            Emit::Event(StreamResponse::StatusUpdate(ev)) => {
                let (next, seq, push) = {
                    let st = self.lock();
                    check_open(&st)?;
                    let mut next = st.task.clone();
                    apply_status(&mut next, &ev);
                    (next, st.seq + 1, st.push_configs.clone())
                };
                let settles = if is_final(&next.status.state) {
                    Settles::Yes
                } else {
                    Settles::No
                };
                let event = StreamResponse::StatusUpdate(ev);
                // Cleared however this ends: published, failed or dropped.
                let _settling = (settles == Settles::Yes).then(|| Settling::start(&self.settling));
                self.store_sink(seq, &event, next.clone(), settles).await?;
                self.push_sink(&push, &event).await?;
                self.publish(StreamEvent::logged(seq, event), settles, |st| {
                    st.task = next;
                    st.seq = seq;
                });
                Ok(())
            }
            Emit::Event(StreamResponse::ArtifactUpdate(ev)) => {
                let (next, seq, push) = {
                    let st = self.lock();
                    check_open(&st)?;
                    let mut next = st.task.clone();
                    apply_artifact(&mut next, ev.artifact.clone(), ev.append == Some(true));
                    (next, st.seq + 1, st.push_configs.clone())
                };
                let event = StreamResponse::ArtifactUpdate(ev);
                self.store_sink(seq, &event, next.clone(), Settles::No)
                    .await?;
                self.push_sink(&push, &event).await?;
                self.publish(StreamEvent::logged(seq, event), Settles::No, |st| {
                    st.task = next;
                    st.seq = seq;
                });
                Ok(())
            }
            Emit::Event(_) => Err(A2AError::invalid_agent_response()),
        }
    }

    /// A direct reply: allowed only as the whole answer to a new task.
    fn reply(&self, message: Message) -> Result<(), A2AError> {
        let mut st = self.lock();
        if st.phase != Phase::Started(Origin::New) {
            return Err(A2AError::invalid_agent_response());
        }
        st.reply = Some(message.clone());
        st.phase = Phase::Replied;
        if let Some(tx) = &st.tx {
            let _ = tx.send(Ok(StreamResponse::Message(message).into()));
        }
        drop(st);
        self.settled.notify_waiters();
        Ok(())
    }

    /// Sink 1: the store, the task's event log (see [`Running::emit`] for
    /// the durability rule). A final state that cannot be stored ends the
    /// exchange with the store's error: waiters and subscribers get it
    /// instead of the state.
    async fn store_sink(
        &self,
        seq: u64,
        event: &StreamResponse,
        next: Task,
        settles: Settles,
    ) -> Result<(), A2AError> {
        let logged = LoggedEvent {
            seq,
            event: event.clone(),
        };
        self.log.push(logged, next);
        match settles {
            Settles::Yes => self.flush().await,
            Settles::No => {
                self.log.schedule();
                Ok(())
            }
        }
    }

    /// Stores the task as it is now, with the lease, and waits for it:
    /// serialized with the emitters, so the state written is the one after
    /// the last event queued.
    pub(crate) async fn persist(&self) -> Result<(), StoreError> {
        let _serial = self.emit_lock.lock().await;
        self.log.touch(|| self.snapshot());
        self.log.flush().await
    }

    /// Renews the lease (see [`Running::persist`]); a lease another replica
    /// has taken over ends this execution.
    pub(crate) async fn renew(&self) {
        match self.persist().await {
            Ok(()) => {}
            Err(e @ StoreError::Conflict(_)) => {
                tracing::warn!(task_id = %self.task_id, error = %e, "task taken over by another replica");
                self.cancel.cancel();
                self.fail(A2AError::new(
                    server_error::STORE_UNAVAILABLE,
                    format!("the task's state was not saved: {e}"),
                ));
            }
            Err(e) => {
                tracing::warn!(task_id = %self.task_id, error = %e, "task lease not renewed");
            }
        }
    }

    /// Writes every queued event and state and waits for it; a failure
    /// ends the exchange with the store's error.
    pub(crate) async fn flush(&self) -> Result<(), A2AError> {
        match self.log.flush().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let error = match &e {
                    StoreError::Conflict(_) => {
                        // Our lease ran out and another replica took the
                        // task over: this execution must stop.
                        self.cancel.cancel();
                        A2AError::new(
                            server_error::STORE_UNAVAILABLE,
                            format!("the task's state was not saved: {e}"),
                        )
                    }
                    _ => store_unavailable(&e),
                };
                tracing::warn!(task_id = %self.task_id, error = %e, "task state not stored");
                self.fail(error.clone());
                Err(error)
            }
        }
    }

    /// Sink 2: the push outbox (see [`Running::emit`]). An event whose
    /// notifications cannot be written ends the exchange like a state the
    /// store cannot save.
    async fn push_sink(
        &self,
        configs: &[TaskPushNotificationConfig],
        event: &StreamResponse,
    ) -> Result<(), A2AError> {
        let Some(pusher) = self.push.as_ref().filter(|_| !configs.is_empty()) else {
            return Ok(());
        };
        let unsaved = self.lock().unsaved_push.take();
        let accepted = async {
            if let Some(config) = &unsaved {
                pusher.store().put_config(&self.owner, config).await?;
            }
            pusher
                .accept(&self.owner, &self.task_id, configs, event)
                .await
        };
        match accepted.await {
            Ok(()) => Ok(()),
            Err(e) => {
                let error = A2AError::new(
                    server_error::STORE_UNAVAILABLE,
                    format!(
                        "push notification outbox unavailable, the event was not accepted: {e}"
                    ),
                );
                tracing::warn!(task_id = %self.task_id, error = %e, "push notifications not written");
                self.fail(error.clone());
                Err(error)
            }
        }
    }

    /// Ends the current exchange with `error`: waiters return it, live
    /// subscribers get it as their stream's last event.
    fn fail(&self, error: A2AError) {
        let mut st = self.lock();
        st.phase = st.phase.after_event(Settles::Yes);
        if let Some(tx) = &st.tx {
            let _ = tx.send(Err(error.clone()));
        }
        self.log.failed(&error);
        st.failure = Some(error);
        drop(st);
        self.settled.notify_waiters();
    }

    /// Sink 3: applies the event to the snapshot and hands it to live
    /// subscribers, atomically.
    fn publish(&self, event: StreamEvent, settles: Settles, apply: impl FnOnce(&mut RunState)) {
        let mut st = self.lock();
        apply(&mut st);
        st.phase = st.phase.after_event(settles);
        if let Some(tx) = &st.tx {
            let _ = tx.send(Ok(event));
        }
        drop(st);
        if settles == Settles::Yes {
            self.settled.notify_waiters();
        }
    }

    /// Ends an execution that returned without a final state.
    pub(crate) async fn finish_unsettled(&self, error: Option<A2AError>) {
        let phase = self.lock().phase;
        if phase.is_settled() {
            return;
        }
        if let (Phase::Started(Origin::New), Some(e)) = (phase, &error) {
            // Nothing was emitted, so no task exists for clients: the
            // request is answered with the agent's error (a full CPU pool
            // is -32061 at once, not a failed task).
            self.fail(e.clone());
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
        // Should not even the failure be stored, the exchange ends with the
        // store's error (`fail`), and `end_execution` wakes the waiters.
        let _ = self
            .emit(Emit::Event(StreamResponse::StatusUpdate(ev)))
            .await;
    }
}

/// What [`Running::subscribe`] hands a new subscriber.
pub(crate) struct Subscription {
    /// The snapshot the subscriber starts from.
    pub(crate) task: Task,
    /// The sequence number of the last event in `task`.
    pub(crate) seq: u64,
    /// Clients know the task (else the answer may still be a direct reply).
    pub(crate) known: bool,
    /// Every event after the snapshot, or the error that ends the stream.
    pub(crate) rx: broadcast::Receiver<StreamItem>,
}

fn check_open(st: &RunState) -> Result<(), A2AError> {
    if st.task.status.state.is_terminal() {
        return Err(A2AError::unsupported_operation(format!(
            "task {} is already in a terminal state",
            st.task.id
        )));
    }
    if st.phase == Phase::Replied {
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

fn apply_artifact(task: &mut Task, artifact: crate::protocol::types::Artifact, append: bool) {
    let artifacts = task.artifacts.get_or_insert_with(Vec::new);
    match artifacts
        .iter_mut()
        .find(|a| a.artifact_id == artifact.artifact_id)
    {
        Some(existing) if append => existing.parts.extend(artifact.parts),
        Some(existing) => *existing = artifact,
        None => artifacts.push(artifact),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_task_may_reply_until_it_emits_a_task_event() {
        let new = Phase::Started(Origin::New);
        assert!(!new.task_is_known());
        assert!(!new.is_settled());
        assert_eq!(new.after_event(Settles::No), Phase::Working);
        assert!(Phase::Working.task_is_known());
        assert_eq!(Phase::Working.after_event(Settles::Yes), Phase::Settled);
        assert!(Phase::Settled.is_settled());
        assert!(Phase::Started(Origin::Known).task_is_known());
    }

    #[test]
    fn events_on_an_idle_or_settled_task_keep_its_phase() {
        assert_eq!(Phase::Idle.after_event(Settles::Yes), Phase::Idle);
        assert_eq!(Phase::Settled.after_event(Settles::No), Phase::Settled);
        assert!(Phase::Idle.is_settled());
        assert!(!Phase::Idle.is_executing());
    }
}

//! Event streams of one client: a running task's broadcast (the reply to
//! SendStreamingMessage), or a task's log followed from the store
//! (SubscribeToTask, on any replica, resumable with `Last-Event-ID`).

use super::bus::Watch;
use super::running::{is_final, store_unavailable, Running, Subscription};
use crate::protocol::types::{StreamResponse, Task, TaskState};
use crate::protocol::{A2AError, EventStream, StreamEvent, StreamItem};
use crate::store::{LoggedEvent, TaskOwner, TaskStore};
use futures_util::stream::{self, StreamExt};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};

struct Follow {
    running: Arc<Running>,
    rx: broadcast::Receiver<StreamItem>,
    /// The Task to send first (and the sequence number of its last event),
    /// once we know the agent answers with a task.
    first: Option<(Task, u64)>,
    /// Send `first` before anything else (known task) or only before the
    /// first task event (a new exchange may still be a direct reply).
    first_now: bool,
    pending: Option<StreamEvent>,
    end_at: EndAt,
    done: bool,
}

/// Where a stream of task events ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndAt {
    /// At a terminal state, or when the task asks for input (the reply to
    /// one message: SendStreamingMessage).
    Final,
    /// At a terminal state only (SubscribeToTask).
    Terminal,
}

impl EndAt {
    fn reached(self, state: &TaskState) -> bool {
        match self {
            EndAt::Final => is_final(state),
            EndAt::Terminal => state.is_terminal(),
        }
    }
}

/// Events of a task from the subscription's snapshot on: the Task object
/// first, then every status and artifact update, ending where `end_at`
/// says. A direct reply makes a one-event stream.
pub(crate) fn follow(running: Arc<Running>, sub: Subscription, end_at: EndAt) -> EventStream {
    let Subscription {
        task,
        seq,
        known,
        rx,
    } = sub;
    let running_hint = running.clone();
    let state = Follow {
        running,
        rx,
        end_at,
        done: known && end_at.reached(&task.status.state),
        first: Some((task, seq)),
        first_now: known,
        pending: None,
    };
    let events = stream::unfold(state, |mut st| async move {
        if st.first_now {
            if let Some((task, seq)) = st.first.take() {
                return Some((Ok(snapshot(task, seq)), st));
            }
        }
        if let Some(ev) = st.pending.take() {
            st.done = ends(&ev.response, st.end_at);
            return Some((Ok(ev), st));
        }
        if st.done {
            return None;
        }
        let ev = match st.rx.recv().await {
            Ok(Ok(ev)) => ev,
            // The state could not be stored: the error is the last event.
            Ok(Err(e)) => {
                st.done = true;
                return Some((Err(e), st));
            }
            Err(RecvError::Lagged(_)) => {
                // A slow client missed events: resynchronise with a snapshot
                // (or the failure that ended the exchange).
                st.first = None;
                let failure = st.running.lock().failure.clone();
                if let Some(e) = failure {
                    st.done = true;
                    return Some((Err(e), st));
                }
                let (task, seq) = {
                    let run = st.running.lock();
                    (run.task.clone(), run.seq)
                };
                st.done = st.end_at.reached(&task.status.state);
                return Some((Ok(snapshot(task, seq)), st));
            }
            Err(RecvError::Closed) => return None,
        };
        if let StreamResponse::Message(_) = ev.response {
            st.done = true;
            return Some((Ok(ev), st));
        }
        if let Some((task, seq)) = st.first.take() {
            st.pending = Some(ev);
            return Some((Ok(snapshot(task, seq)), st));
        }
        st.done = ends(&ev.response, st.end_at);
        Some((Ok(ev), st))
    });
    Box::pin(Hinted {
        inner: events.boxed(),
        running: Some(running_hint),
    })
}

/// [`follow`]'s events, with a lower size hint of one while a final state
/// is being stored: its event, or the error that replaces it, comes next.
/// The SSE body uses it to send the events before it in the same write.
struct Hinted {
    inner: EventStream,
    /// `None` once the stream ended.
    running: Option<Arc<Running>>,
}

impl futures_util::Stream for Hinted {
    type Item = StreamItem;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<StreamItem>> {
        let next = self.inner.poll_next_unpin(cx);
        if let std::task::Poll::Ready(None) = next {
            self.running = None;
        }
        next
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.running {
            Some(running) if running.settling() => (1, None),
            Some(_) => (0, None),
            None => (0, Some(0)),
        }
    }
}

/// A Task event that includes the log up to `seq`.
fn snapshot(task: Task, seq: u64) -> StreamEvent {
    StreamEvent::logged(seq, StreamResponse::Task(task))
}

/// Events read from the log in one go.
const LOG_PAGE: usize = 256;

/// Where following a task's log starts.
pub(crate) enum Start {
    /// With this snapshot (the Task event), then every later event.
    Snapshot(Box<Task>, u64),
    /// With the events after this sequence number (a reconnecting client's
    /// `Last-Event-ID`).
    After(u64),
}

struct LogFollow {
    store: Arc<dyn TaskStore>,
    owner: TaskOwner,
    task_id: String,
    watch: Watch,
    /// The last event sent.
    after: u64,
    first: Option<StreamEvent>,
    queue: VecDeque<LoggedEvent>,
    done: bool,
}

impl LogFollow {
    /// The next events after `self.after`, or the snapshot that replaces
    /// the ones the log no longer keeps.
    async fn read(&mut self) -> Result<(), A2AError> {
        let events = self
            .store
            .events_after(&self.task_id, &self.owner, self.after, LOG_PAGE)
            .await
            .map_err(|e| store_unavailable(&e))?;
        match events.first() {
            Some(first) if first.seq > self.after + 1 => {
                // Pruned by retention: start again from the stored task.
                let logged = self
                    .store
                    .get_logged(&self.task_id, &self.owner)
                    .await
                    .map_err(|e| store_unavailable(&e))?
                    .ok_or_else(|| A2AError::task_not_found(&self.task_id))?;
                self.first = Some(snapshot(logged.task, logged.seq));
                self.after = logged.seq;
            }
            _ => self.queue.extend(events),
        }
        Ok(())
    }
}

/// A task's events from its log, on whichever replica runs it, ending at
/// a terminal state: `start` first, then each later event once it is
/// stored. `watch` must have been taken before `start` was read, so no
/// event appended in between is missed.
pub(crate) fn follow_log(
    store: Arc<dyn TaskStore>,
    watch: Watch,
    owner: TaskOwner,
    task_id: String,
    start: Start,
) -> EventStream {
    let (first, after) = match start {
        Start::Snapshot(task, seq) => (Some(snapshot(*task, seq)), seq),
        Start::After(seq) => (None, seq),
    };
    let state = LogFollow {
        store,
        owner,
        task_id,
        watch,
        after,
        first,
        queue: VecDeque::new(),
        done: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(first) = st.first.take() {
                st.done = ends(&first.response, EndAt::Terminal);
                return Some((Ok(first), st));
            }
            if st.done {
                return None;
            }
            if let Some(logged) = st.queue.pop_front() {
                st.after = logged.seq;
                st.done = ends(&logged.event, EndAt::Terminal);
                return Some((Ok(StreamEvent::logged(logged.seq, logged.event)), st));
            }
            if let Err(e) = st.read().await {
                st.done = true;
                return Some((Err(e), st));
            }
            if st.first.is_some() || !st.queue.is_empty() {
                continue;
            }
            match st.watch.changed().await {
                Some(tick) => {
                    if let Some(e) = tick.failure.filter(|_| tick.seq <= st.after) {
                        // The exchange ended here without a stored state.
                        st.done = true;
                        return Some((Err(e), st));
                    }
                }
                None => {
                    st.done = true;
                    return Some((Err(A2AError::internal("the task's event feed closed")), st));
                }
            }
        }
    })
    .boxed()
}

fn ends(ev: &StreamResponse, end_at: EndAt) -> bool {
    match ev {
        StreamResponse::StatusUpdate(s) => end_at.reached(&s.status.state),
        StreamResponse::Task(t) => end_at.reached(&t.status.state),
        StreamResponse::Message(_) => true,
        StreamResponse::ArtifactUpdate(_) => false,
    }
}

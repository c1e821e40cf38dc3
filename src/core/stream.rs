//! Turning a running task's broadcast into the event stream of one client.

use super::running::{is_final, Running, Subscription};
use crate::protocol::types::{StreamResponse, Task, TaskState};
use crate::protocol::{EventStream, StreamItem};
use futures_util::stream::{self, StreamExt};
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};

struct Follow {
    running: Arc<Running>,
    rx: broadcast::Receiver<StreamItem>,
    /// The Task to send first, once we know the agent answers with a task.
    first: Option<Task>,
    /// Send `first` before anything else (known task) or only before the
    /// first task event (a new exchange may still be a direct reply).
    first_now: bool,
    pending: Option<StreamResponse>,
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
    let Subscription { task, known, rx } = sub;
    let state = Follow {
        running,
        rx,
        end_at,
        done: known && end_at.reached(&task.status.state),
        first: Some(task),
        first_now: known,
        pending: None,
    };
    stream::unfold(state, |mut st| async move {
        if st.first_now {
            if let Some(task) = st.first.take() {
                return Some((Ok(StreamResponse::Task(task)), st));
            }
        }
        if let Some(ev) = st.pending.take() {
            st.done = ends(&ev, st.end_at);
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
                let task = st.running.snapshot();
                st.done = ends(&StreamResponse::Task(task.clone()), st.end_at);
                return Some((Ok(StreamResponse::Task(task)), st));
            }
            Err(RecvError::Closed) => return None,
        };
        if let StreamResponse::Message(_) = ev {
            st.done = true;
            return Some((Ok(ev), st));
        }
        if let Some(task) = st.first.take() {
            st.pending = Some(ev);
            return Some((Ok(StreamResponse::Task(task)), st));
        }
        st.done = ends(&ev, st.end_at);
        Some((Ok(ev), st))
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

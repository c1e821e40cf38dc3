//! Turning a running task's broadcast into the event stream of one client.

use super::running::{is_final, Running};
use crate::protocol::types::{StreamResponse, Task};
use crate::protocol::EventStream;
use futures_util::stream::{self, StreamExt};
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};

struct Follow {
    running: Arc<Running>,
    rx: broadcast::Receiver<StreamResponse>,
    /// The Task to send first, once we know the agent answers with a task.
    first: Option<Task>,
    /// Send `first` before anything else (known task) or only before the
    /// first task event (a new exchange may still be a direct reply).
    first_now: bool,
    pending: Option<StreamResponse>,
    /// End at terminal states only, not when the task asks for input.
    terminal_only: bool,
    done: bool,
}

/// Events of a task from `initial` on: the Task object first, then every
/// status and artifact update, ending after a terminal state (or, unless
/// `terminal_only`, an interrupted one). A direct reply makes a one-event stream.
pub(crate) fn follow(
    running: Arc<Running>,
    initial: Task,
    known_task: bool,
    terminal_only: bool,
    rx: broadcast::Receiver<StreamResponse>,
) -> EventStream {
    let ends_now = if terminal_only {
        initial.status.state.is_terminal()
    } else {
        is_final(&initial.status.state)
    };
    let state = Follow {
        running,
        rx,
        terminal_only,
        done: known_task && ends_now,
        first: Some(initial),
        first_now: known_task,
        pending: None,
    };
    stream::unfold(state, |mut st| async move {
        if st.first_now {
            if let Some(task) = st.first.take() {
                return Some((Ok(StreamResponse::Task(task)), st));
            }
        }
        if let Some(ev) = st.pending.take() {
            st.done = ends(&ev, st.terminal_only);
            return Some((Ok(ev), st));
        }
        if st.done {
            return None;
        }
        let ev = match st.rx.recv().await {
            Ok(ev) => ev,
            Err(RecvError::Lagged(_)) => {
                // A slow client missed events: resynchronise with a snapshot.
                st.first = None;
                let task = st.running.snapshot();
                st.done = ends(&StreamResponse::Task(task.clone()), st.terminal_only);
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
        st.done = ends(&ev, st.terminal_only);
        Some((Ok(ev), st))
    })
    .boxed()
}

fn ends(ev: &StreamResponse, terminal_only: bool) -> bool {
    let last = |s: &crate::protocol::types::TaskState| {
        if terminal_only {
            s.is_terminal()
        } else {
            is_final(s)
        }
    };
    match ev {
        StreamResponse::StatusUpdate(s) => last(&s.status.state),
        StreamResponse::Task(t) => last(&t.status.state),
        StreamResponse::Message(_) => true,
        StreamResponse::ArtifactUpdate(_) => false,
    }
}

//! A task's event stream as the caller sees it: it ends with the event
//! that finishes the exchange, or with an error, never silently; and when
//! the connection drops first, it resumes with `SubscribeToTask` after the
//! last event seen (`Last-Event-ID`).

use super::call::{Call, Event, Events, Reply};
use super::error::{ClientError, ErrorClass};
use super::stack::ClientService;
use crate::protocol::types::{StreamResponse, SubscribeToTaskRequest, TaskState};
use futures_util::stream::{self, BoxStream, StreamExt};
use std::time::Duration;
use tower::ServiceExt;

/// The events of one streaming call, in order; see the module docs.
pub type EventStream = BoxStream<'static, Result<Event, ClientError>>;

/// Whether `response` ends the exchange: a direct message, or a task or
/// status in a final or interrupted state.
///
/// ```
/// use abacus::client::ends_stream;
/// use abacus::protocol::types::{Message, Part, Role, StreamResponse};
/// let reply = StreamResponse::Message(Message::new(Role::Agent, vec![Part::text("4")]));
/// assert!(ends_stream(&reply));
/// ```
pub fn ends_stream(response: &StreamResponse) -> bool {
    let state = match response {
        StreamResponse::Message(_) => return true,
        StreamResponse::Task(t) => &t.status.state,
        StreamResponse::StatusUpdate(s) => &s.status.state,
        StreamResponse::ArtifactUpdate(_) => return false,
    };
    state.is_terminal() || matches!(state, TaskState::InputRequired | TaskState::AuthRequired)
}

/// The task an event belongs to.
fn task_of(response: &StreamResponse) -> Option<&str> {
    match response {
        StreamResponse::Task(t) => Some(&t.id),
        StreamResponse::StatusUpdate(s) => Some(&s.task_id),
        StreamResponse::ArtifactUpdate(a) => Some(&a.task_id),
        StreamResponse::Message(m) => m.task_id.as_deref(),
    }
}

struct Follow {
    service: ClientService,
    events: Option<Events>,
    task_id: Option<String>,
    tenant: Option<String>,
    last_id: Option<String>,
    /// Resumes since the last event that arrived.
    failed_resumes: u32,
    max_resumes: u32,
    done: bool,
}

impl Follow {
    /// After a broken stream: whether to resume (and the wait first), or
    /// the error to end with.
    fn after_break(&mut self, error: ClientError) -> Result<Duration, ClientError> {
        let resumable = error.class() == ErrorClass::Transport
            && self.task_id.is_some()
            && self.failed_resumes < self.max_resumes;
        if !resumable {
            return Err(error);
        }
        self.failed_resumes += 1;
        self.events = None;
        // 100 ms, 200 ms, 400 ms … at most 5 s.
        Ok(Duration::from_millis(100 << self.failed_resumes.min(6)).min(Duration::from_secs(5)))
    }

    async fn resume(&mut self) -> Result<(), ClientError> {
        let request = SubscribeToTaskRequest {
            id: self.task_id.clone().unwrap_or_default(),
            tenant: self.tenant.clone(),
        };
        let call = Call::Subscribe(request, self.last_id.clone());
        match self.service.clone().oneshot(call).await? {
            Reply::Events(e) => {
                self.events = Some(e);
                Ok(())
            }
            other => Err(super::call::unexpected(other)),
        }
    }
}

/// Follows `events`, resuming up to `max_resumes` times in a row.
pub(crate) fn follow(
    service: ClientService,
    events: Events,
    task_id: Option<String>,
    tenant: Option<String>,
    max_resumes: u32,
) -> EventStream {
    let state = Follow {
        service,
        events: Some(events),
        task_id,
        tenant,
        last_id: None,
        failed_resumes: 0,
        max_resumes,
        done: false,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if st.events.is_none() {
                if let Err(e) = st.resume().await {
                    match st.after_break(e) {
                        Ok(wait) => {
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        Err(e) => {
                            st.done = true;
                            return Some((Err(e), st));
                        }
                    }
                }
            }
            let Some(events) = st.events.as_mut() else {
                continue;
            };
            let broken = match events.next().await {
                Some(Ok(ev)) => {
                    st.failed_resumes = 0;
                    if ev.id.is_some() {
                        st.last_id.clone_from(&ev.id);
                    }
                    if st.task_id.is_none() {
                        st.task_id = task_of(&ev.response).map(String::from);
                    }
                    st.done = ends_stream(&ev.response);
                    return Some((Ok(ev), st));
                }
                Some(Err(e)) => e,
                None => ClientError::Truncated,
            };
            match st.after_break(broken) {
                Ok(wait) => tokio::time::sleep(wait).await,
                Err(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
            }
        }
    })
    .boxed()
}

use a2a::{A2AError, ListTasksResponse, Message, StreamResponse, Task};
use futures_util::stream::BoxStream;
use serde::Serialize;
use serde_json::Value;

/// One event of a streamed reply, or the error that ends the stream.
pub type StreamItem = Result<StreamEvent, A2AError>;

/// One event of a stream and its place in the task's event log: the
/// sequence number SSE sends as the event's `id:`, which a reconnecting
/// client names in `Last-Event-ID` to get every later event.
///
/// ```
/// use abacus::protocol::StreamEvent;
/// use abacus::protocol::types::{Message, Part, Role, StreamResponse};
/// let reply = StreamResponse::Message(Message::new(Role::Agent, vec![Part::text("4")]));
/// let event = StreamEvent::from(reply);
/// assert_eq!(event.seq, None); // a direct reply is not a task event
/// let event = StreamEvent::logged(3, event.response);
/// assert_eq!(event.seq, Some(3));
/// ```
#[derive(Debug, Clone)]
pub struct StreamEvent {
    /// The sequence number of the task event (for a Task snapshot: of the
    /// last event it includes); `None` for what is not in a task's log.
    pub seq: Option<u64>,
    /// The event.
    pub response: StreamResponse,
}

impl StreamEvent {
    /// The event `seq` of a task's log.
    pub fn logged(seq: u64, response: StreamResponse) -> Self {
        StreamEvent {
            seq: Some(seq),
            response,
        }
    }
}

impl From<StreamResponse> for StreamEvent {
    fn from(response: StreamResponse) -> Self {
        StreamEvent {
            seq: None,
            response,
        }
    }
}

/// The events of a streamed reply. The stream ends after the terminal event.
pub type EventStream = BoxStream<'static, StreamItem>;

/// What the core service answers: one reply, or a stream of events.
///
/// It knows nothing of the binding: the JSON-RPC adapter adds the request
/// id, the SSE and WebSocket adapters frame the events.
///
/// ```
/// use abacus::protocol::{A2AResponse, Reply};
/// use abacus::protocol::types::{Message, Part, Role};
///
/// let reply = Reply::Message(Box::new(Message::new(Role::Agent, vec![Part::text("4")])));
/// let resp = A2AResponse::ok(reply);
/// assert!(resp.is_success());
/// ```
pub enum A2AResponse {
    /// A single reply.
    Unary(Unary),
    /// A stream of events (SSE, WebSocket).
    Stream(EventStream),
}

impl std::fmt::Debug for A2AResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            A2AResponse::Unary(u) => f.debug_tuple("Unary").field(u).finish(),
            A2AResponse::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl A2AResponse {
    /// A successful unary reply.
    pub fn ok(reply: Reply) -> Self {
        A2AResponse::Unary(Unary {
            outcome: Ok(reply),
            cached: false,
        })
    }

    /// A unary error reply.
    pub fn error(error: A2AError) -> Self {
        A2AResponse::Unary(Unary {
            outcome: Err(error),
            cached: false,
        })
    }

    /// True unless this is a unary error reply.
    pub fn is_success(&self) -> bool {
        match self {
            A2AResponse::Unary(u) => u.outcome.is_ok(),
            A2AResponse::Stream(_) => true,
        }
    }

    /// The A2A error code of a unary error reply.
    pub fn error_code(&self) -> Option<i32> {
        match self {
            A2AResponse::Unary(Unary {
                outcome: Err(e), ..
            }) => Some(e.code),
            _ => None,
        }
    }
}

/// A unary reply.
#[derive(Debug, Clone)]
pub struct Unary {
    /// The result or the error.
    pub outcome: Result<Reply, A2AError>,
    /// Served from the response cache: ids inside must be re-stamped.
    pub cached: bool,
}

/// The `result` member of a successful reply, typed.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `{"task": ...}` (SendMessage).
    SendTask(Box<Task>),
    /// `{"message": ...}` (SendMessage answered directly).
    Message(Box<Message>),
    /// A bare Task (GetTask, CancelTask).
    Task(Box<Task>),
    /// ListTasks result.
    Tasks(ListTasksResponse),
    /// Any other JSON value (extended agent card, push configs).
    Json(Value),
}

impl Serialize for Reply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Reply::SendTask(t) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("task", t)?;
                m.end()
            }
            Reply::Message(msg) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("message", msg)?;
                m.end()
            }
            Reply::Task(t) => t.serialize(s),
            Reply::Tasks(l) => l.serialize(s),
            Reply::Json(v) => v.serialize(s),
        }
    }
}

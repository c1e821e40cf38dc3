use a2a::{A2AError, JsonRpcId, ListTasksResponse, Message, StreamResponse, Task};
use futures_util::stream::BoxStream;
use serde::Serialize;
use serde_json::Value;

/// One event of a streamed reply, or the error that ends the stream.
pub type StreamItem = Result<StreamResponse, A2AError>;

/// The events of a streamed reply. The stream ends after the terminal event.
pub type EventStream = BoxStream<'static, StreamItem>;

/// What the core service answers: one JSON-RPC reply, or a stream of them.
///
/// ```
/// use abacus::protocol::{A2AResponse, JsonRpcId, Reply};
/// use abacus::protocol::types::{Message, Part, Role};
///
/// let reply = Reply::Message(Box::new(Message::new(Role::Agent, vec![Part::text("4")])));
/// let resp = A2AResponse::ok(JsonRpcId::Number(7), reply);
/// assert!(resp.is_success());
/// ```
pub enum A2AResponse {
    /// A single JSON-RPC reply.
    Unary(Unary),
    /// A stream of JSON-RPC replies sharing the request id (SSE, WebSocket).
    Stream {
        /// The request id every event carries.
        id: JsonRpcId,
        /// The events.
        events: EventStream,
    },
}

impl std::fmt::Debug for A2AResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            A2AResponse::Unary(u) => f.debug_tuple("Unary").field(u).finish(),
            A2AResponse::Stream { id, .. } => f.debug_struct("Stream").field("id", id).finish(),
        }
    }
}

impl A2AResponse {
    /// A successful unary reply.
    pub fn ok(id: JsonRpcId, reply: Reply) -> Self {
        A2AResponse::Unary(Unary {
            id,
            outcome: Ok(reply),
            cached: false,
        })
    }

    /// A unary JSON-RPC error reply.
    pub fn error(id: JsonRpcId, error: A2AError) -> Self {
        A2AResponse::Unary(Unary {
            id,
            outcome: Err(error),
            cached: false,
        })
    }

    /// True unless this is a unary error reply.
    pub fn is_success(&self) -> bool {
        match self {
            A2AResponse::Unary(u) => u.outcome.is_ok(),
            A2AResponse::Stream { .. } => true,
        }
    }

    /// The JSON-RPC error code of a unary error reply.
    pub fn error_code(&self) -> Option<i32> {
        match self {
            A2AResponse::Unary(Unary {
                outcome: Err(e), ..
            }) => Some(e.code),
            _ => None,
        }
    }
}

/// A unary JSON-RPC reply.
#[derive(Debug, Clone)]
pub struct Unary {
    /// The request id.
    pub id: JsonRpcId,
    /// The `result` or the `error`.
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

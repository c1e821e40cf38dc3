//! One A2A operation on its way down the client stack ([`Call`]), and what
//! comes back up ([`Reply`]): the same values on every binding.

use super::error::ClientError;
use crate::protocol::types::{
    AgentCard, CancelTaskRequest, DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest, GetTaskPushNotificationConfigRequest, GetTaskRequest,
    ListTaskPushNotificationConfigsRequest, ListTaskPushNotificationConfigsResponse,
    ListTasksRequest, ListTasksResponse, SendMessageRequest, SendMessageResponse, StreamResponse,
    SubscribeToTaskRequest, Task, TaskPushNotificationConfig,
};
use crate::protocol::Method;
use futures_util::stream::BoxStream;
use serde_json::Value;

/// A request of one A2A operation. Clones are cheap enough to retry.
#[derive(Debug, Clone)]
pub(crate) enum Call {
    Send(SendMessageRequest),
    Stream(SendMessageRequest),
    Get(GetTaskRequest),
    List(ListTasksRequest),
    Cancel(CancelTaskRequest),
    /// With the id of the last event seen, to resume after it.
    Subscribe(SubscribeToTaskRequest, Option<String>),
    CreatePush(TaskPushNotificationConfig),
    GetPush(GetTaskPushNotificationConfigRequest),
    ListPush(ListTaskPushNotificationConfigsRequest),
    DeletePush(DeleteTaskPushNotificationConfigRequest),
    ExtendedCard(GetExtendedAgentCardRequest),
}

impl Call {
    /// The operation.
    pub(crate) fn method(&self) -> Method {
        match self {
            Call::Send(_) => Method::SendMessage,
            Call::Stream(_) => Method::SendStreamingMessage,
            Call::Get(_) => Method::GetTask,
            Call::List(_) => Method::ListTasks,
            Call::Cancel(_) => Method::CancelTask,
            Call::Subscribe(..) => Method::SubscribeToTask,
            Call::CreatePush(_) => Method::CreateTaskPushNotificationConfig,
            Call::GetPush(_) => Method::GetTaskPushNotificationConfig,
            Call::ListPush(_) => Method::ListTaskPushNotificationConfigs,
            Call::DeletePush(_) => Method::DeleteTaskPushNotificationConfig,
            Call::ExtendedCard(_) => Method::GetExtendedAgentCard,
        }
    }

    /// Whether sending it twice has the effect of sending it once, so a
    /// failed attempt may be sent again. A message is not (the agent would
    /// work twice), nor is a cancel (the second one finds the task
    /// canceled and fails), nor a create.
    pub(crate) fn idempotent(&self) -> bool {
        matches!(
            self,
            Call::Get(_)
                | Call::List(_)
                | Call::Subscribe(..)
                | Call::GetPush(_)
                | Call::ListPush(_)
                | Call::DeletePush(_)
                | Call::ExtendedCard(_)
        )
    }

    /// The request's params as JSON (the JSON-RPC `params`, the HTTP+JSON
    /// body or query).
    pub(crate) fn params(&self) -> Value {
        let v = match self {
            Call::Send(r) | Call::Stream(r) => serde_json::to_value(r),
            Call::Get(r) => serde_json::to_value(r),
            Call::List(r) => serde_json::to_value(r),
            Call::Cancel(r) => serde_json::to_value(r),
            Call::Subscribe(r, _) => serde_json::to_value(r),
            Call::CreatePush(r) => serde_json::to_value(r),
            Call::GetPush(r) => serde_json::to_value(r),
            Call::ListPush(r) => serde_json::to_value(r),
            Call::DeletePush(r) => serde_json::to_value(r),
            Call::ExtendedCard(r) => serde_json::to_value(r),
        };
        // Plain structs of strings and maps always serialize.
        v.unwrap_or(Value::Null)
    }

    /// A JSON result of this call as its typed reply.
    pub(crate) fn typed(&self, result: Value) -> Result<Reply, ClientError> {
        fn de<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ClientError> {
            serde_path_to_error::deserialize(v)
                .map_err(|e| ClientError::Invalid(format!("at {}: {}", e.path(), e.inner())))
        }
        Ok(match self {
            Call::Send(_) => Reply::Send(de(result)?),
            Call::Get(_) | Call::Cancel(_) => Reply::Task(Box::new(de(result)?)),
            Call::List(_) => Reply::Tasks(de(result)?),
            Call::CreatePush(_) | Call::GetPush(_) => Reply::Push(de(result)?),
            Call::ListPush(_) => Reply::Pushes(de(result)?),
            Call::DeletePush(_) => Reply::Done,
            Call::ExtendedCard(_) => Reply::Card(Box::new(de(result)?)),
            Call::Stream(_) | Call::Subscribe(..) => {
                return Err(ClientError::Invalid(
                    "a unary reply to a streaming call".into(),
                ))
            }
        })
    }
}

/// One streamed event and its id (SSE `id:`; none on gRPC).
#[derive(Debug, Clone)]
pub struct Event {
    /// The id to resume after (`Last-Event-ID`), when the server gave one.
    pub id: Option<String>,
    /// The event.
    pub response: StreamResponse,
}

/// A stream of events as a binding delivers them.
pub(crate) type Events = BoxStream<'static, Result<Event, ClientError>>;

/// The typed answer of a [`Call`].
pub(crate) enum Reply {
    Send(SendMessageResponse),
    Task(Box<Task>),
    Tasks(ListTasksResponse),
    Push(TaskPushNotificationConfig),
    Pushes(ListTaskPushNotificationConfigsResponse),
    Card(Box<AgentCard>),
    Done,
    Events(Events),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reply::Send(_) => "Reply::Send",
            Reply::Task(_) => "Reply::Task",
            Reply::Tasks(_) => "Reply::Tasks",
            Reply::Push(_) => "Reply::Push",
            Reply::Pushes(_) => "Reply::Pushes",
            Reply::Card(_) => "Reply::Card",
            Reply::Done => "Reply::Done",
            Reply::Events(_) => "Reply::Events",
        })
    }
}

/// A mismatched reply: a binding answered with another kind than asked.
pub(crate) fn unexpected(reply: Reply) -> ClientError {
    ClientError::Invalid(format!("unexpected {reply:?}"))
}

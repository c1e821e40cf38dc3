use a2a::{
    CancelTaskRequest, GetTaskRequest, JsonRpcId, ListTasksRequest, SendMessageRequest,
    SubscribeToTaskRequest,
};
use serde_json::Value;
use std::time::Duration;

/// One decoded A2A call: what the HTTP adapter hands to the tower stack.
///
/// Decoding happens once, at the edge; layers and the core service see typed
/// data only. `A2ARequest` is `Clone` so retry and cache layers can use it.
///
/// ```
/// use abacus::protocol::{A2ARequest, Call, JsonRpcId};
/// use abacus::protocol::types::GetTaskRequest;
///
/// let req = A2ARequest::new(
///     JsonRpcId::Number(1),
///     Call::GetTask(GetTaskRequest { id: "t-1".into(), history_length: None, tenant: None }),
/// );
/// assert_eq!(req.call.method(), "GetTask");
/// ```
#[derive(Debug, Clone)]
pub struct A2ARequest {
    /// The JSON-RPC id, echoed in every reply and every stream event.
    pub id: JsonRpcId,
    /// The method and its typed parameters.
    pub call: Call,
    /// Transport-level facts about the request.
    pub meta: RequestMeta,
}

impl A2ARequest {
    /// A request with default metadata.
    pub fn new(id: JsonRpcId, call: Call) -> Self {
        Self {
            id,
            call,
            meta: RequestMeta::default(),
        }
    }
}

/// Facts from the transport that layers may use.
///
/// ```
/// use abacus::protocol::RequestMeta;
/// use std::time::Duration;
///
/// let meta = RequestMeta { timeout: Some(Duration::from_secs(2)), ..Default::default() };
/// assert!(meta.timeout.is_some());
/// ```
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// A per-request deadline asked for by the client (`A2A-Timeout-Ms` header
    /// or `metadata.timeoutMs`), honoured by the timeout layer up to its maximum.
    pub timeout: Option<Duration>,
    /// Server-assigned request id used in logs.
    pub request_id: u64,
}

/// The JSON-RPC methods of the A2A v1.0 binding with their typed parameters.
///
/// ```
/// use abacus::protocol::Call;
/// assert!(Call::from_method_name("SendStreamingMessage").is_some());
/// assert!(Call::from_method_name("message/send").is_none());
/// ```
#[derive(Debug, Clone)]
pub enum Call {
    /// `SendMessage`.
    SendMessage(SendMessageRequest),
    /// `SendStreamingMessage` (answered with SSE).
    SendStreamingMessage(SendMessageRequest),
    /// `GetTask`.
    GetTask(GetTaskRequest),
    /// `ListTasks`.
    ListTasks(ListTasksRequest),
    /// `CancelTask`.
    CancelTask(CancelTaskRequest),
    /// `SubscribeToTask` (answered with SSE).
    SubscribeToTask(SubscribeToTaskRequest),
    /// One of the four push-notification config methods, by name, with raw params.
    PushConfig(&'static str, Value),
    /// `GetExtendedAgentCard`.
    GetExtendedAgentCard,
}

/// The method names of the binding, in one place.
pub(crate) const METHODS: [&str; 11] = [
    "SendMessage",
    "SendStreamingMessage",
    "GetTask",
    "ListTasks",
    "CancelTask",
    "SubscribeToTask",
    "CreateTaskPushNotificationConfig",
    "GetTaskPushNotificationConfig",
    "ListTaskPushNotificationConfigs",
    "DeleteTaskPushNotificationConfig",
    "GetExtendedAgentCard",
];

impl Call {
    /// The JSON-RPC method name.
    pub fn method(&self) -> &'static str {
        match self {
            Call::SendMessage(_) => "SendMessage",
            Call::SendStreamingMessage(_) => "SendStreamingMessage",
            Call::GetTask(_) => "GetTask",
            Call::ListTasks(_) => "ListTasks",
            Call::CancelTask(_) => "CancelTask",
            Call::SubscribeToTask(_) => "SubscribeToTask",
            Call::PushConfig(name, _) => name,
            Call::GetExtendedAgentCard => "GetExtendedAgentCard",
        }
    }

    /// The interned method name if `name` is a method of the binding.
    pub fn from_method_name(name: &str) -> Option<&'static str> {
        METHODS.iter().copied().find(|m| *m == name)
    }

    /// True for the methods answered with an event stream.
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            Call::SendStreamingMessage(_) | Call::SubscribeToTask(_)
        )
    }

    /// The message of a send call.
    pub fn message(&self) -> Option<&a2a::Message> {
        match self {
            Call::SendMessage(r) | Call::SendStreamingMessage(r) => Some(&r.message),
            _ => None,
        }
    }
}

use super::method::Method;
use a2a::{
    CancelTaskRequest, DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest, GetTaskRequest, ListTaskPushNotificationConfigsRequest,
    ListTasksRequest, SendMessageRequest, SubscribeToTaskRequest, TaskPushNotificationConfig,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// One decoded A2A call: what every binding hands to the tower stack.
///
/// Decoding happens once, at the edge; layers and the core service see typed
/// data only, and nothing of the binding it came from (the JSON-RPC id stays
/// with the JSON-RPC adapter). `A2ARequest` is `Clone` so retry and cache
/// layers can use it.
///
/// ```
/// use abacus::protocol::{A2ARequest, Call, Method};
/// use abacus::protocol::types::GetTaskRequest;
///
/// let req = A2ARequest::new(Call::GetTask(GetTaskRequest {
///     id: "t-1".into(),
///     history_length: None,
///     tenant: None,
/// }));
/// assert_eq!(req.call.method(), Method::GetTask);
/// ```
#[derive(Debug, Clone)]
pub struct A2ARequest {
    /// The method and its typed parameters.
    pub call: Call,
    /// What the binding knows about the request besides the call.
    pub meta: RequestMeta,
}

impl A2ARequest {
    /// A request with default metadata.
    pub fn new(call: Call) -> Self {
        Self {
            call,
            meta: RequestMeta::default(),
        }
    }
}

/// What every binding knows about a request besides the call itself, filled
/// the same way by all of them (see `abacus::http::request_meta`).
///
/// ```
/// use abacus::protocol::RequestMeta;
/// use std::time::Duration;
///
/// let meta = RequestMeta { timeout: Some(Duration::from_secs(2)), ..Default::default() };
/// assert!(meta.timeout.is_some());
/// assert!(meta.principal.is_anonymous());
/// ```
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// Server-assigned request id, for logs.
    pub request_id: u64,
    /// The deadline the client asked for with the `X-Timeout-Ms` header
    /// (milliseconds). The timeout layer honours it up to its configured
    /// maximum.
    pub timeout: Option<Duration>,
    /// The `A2A-Version` header, trimmed; `None` when absent.
    pub version: Option<String>,
    /// The extension URIs of the `A2A-Extensions` header.
    pub extensions: Vec<String>,
    /// The tenant the call addresses (from its parameters or the binding's path).
    pub tenant: Option<String>,
    /// The client's address, when the transport knows it.
    pub peer: Option<SocketAddr>,
    /// Who is calling, as authenticated by the edge.
    pub principal: Principal,
    /// The protocol binding the request came in on (the `binding` label of
    /// the request metrics).
    pub binding: Binding,
    /// The `Last-Event-ID` header, trimmed: the sequence number of the last
    /// task event a reconnecting subscriber saw (SubscribeToTask replays
    /// every later one).
    pub last_event_id: Option<String>,
}

/// The protocol binding a request came in on.
///
/// ```
/// use abacus::protocol::Binding;
/// assert_eq!(Binding::Rest.as_str(), "rest");
/// assert_eq!(Binding::default(), Binding::Local);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Binding {
    /// A request made in code (tests, an embedding application), not
    /// received from the network.
    #[default]
    Local,
    /// JSON-RPC 2.0 over HTTP (`POST /`, SSE for streams).
    JsonRpc,
    /// HTTP+JSON (REST): `POST /message:send`, `GET /tasks/{id}` ...
    Rest,
    /// gRPC (`lf.a2a.v1.A2AService`).
    Grpc,
    /// JSON-RPC messages over a WebSocket (`GET /stream`).
    WebSocket,
}

impl Binding {
    /// Every binding.
    pub const ALL: [Binding; 5] = [
        Binding::Local,
        Binding::JsonRpc,
        Binding::Rest,
        Binding::Grpc,
        Binding::WebSocket,
    ];

    /// The short name: `local`, `jsonrpc`, `rest`, `grpc`, `ws`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Binding::Local => "local",
            Binding::JsonRpc => "jsonrpc",
            Binding::Rest => "rest",
            Binding::Grpc => "grpc",
            Binding::WebSocket => "ws",
        }
    }
}

impl std::fmt::Display for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller of a request. Anonymous unless an
/// authentication layer has established who is calling.
///
/// ```
/// use abacus::protocol::Principal;
/// assert!(Principal::default().is_anonymous());
/// let alice = Principal::new("alice");
/// assert_eq!(alice.subject(), Some("alice"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Principal {
    subject: Option<Arc<str>>,
}

impl Principal {
    /// The caller known by `subject` (a user, a key name, a certificate subject).
    pub fn new(subject: impl Into<Arc<str>>) -> Self {
        Principal {
            subject: Some(subject.into()),
        }
    }

    /// True when nobody was authenticated.
    pub fn is_anonymous(&self) -> bool {
        self.subject.is_none()
    }

    /// The authenticated subject.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
}

/// The A2A v1.0 operations with their typed parameters.
///
/// ```
/// use abacus::protocol::{Call, Method};
/// assert_eq!(Method::from_name("SendStreamingMessage"), Some(Method::SendStreamingMessage));
/// assert!(Method::from_name("message/send").is_none());
/// ```
#[derive(Debug, Clone)]
pub enum Call {
    /// `SendMessage`.
    SendMessage(SendMessageRequest),
    /// `SendStreamingMessage` (answered with a stream).
    SendStreamingMessage(SendMessageRequest),
    /// `GetTask`.
    GetTask(GetTaskRequest),
    /// `ListTasks`.
    ListTasks(ListTasksRequest),
    /// `CancelTask`.
    CancelTask(CancelTaskRequest),
    /// `SubscribeToTask` (answered with a stream).
    SubscribeToTask(SubscribeToTaskRequest),
    /// One of the four push-notification config methods.
    PushConfig(PushCall),
    /// `GetExtendedAgentCard`.
    GetExtendedAgentCard,
}

impl Call {
    /// The operation.
    pub fn method(&self) -> Method {
        match self {
            Call::SendMessage(_) => Method::SendMessage,
            Call::SendStreamingMessage(_) => Method::SendStreamingMessage,
            Call::GetTask(_) => Method::GetTask,
            Call::ListTasks(_) => Method::ListTasks,
            Call::CancelTask(_) => Method::CancelTask,
            Call::SubscribeToTask(_) => Method::SubscribeToTask,
            Call::PushConfig(push) => push.method(),
            Call::GetExtendedAgentCard => Method::GetExtendedAgentCard,
        }
    }

    /// True for the methods answered with an event stream.
    pub fn is_streaming(&self) -> bool {
        self.method().is_streaming()
    }

    /// The message of a send call.
    pub fn message(&self) -> Option<&a2a::Message> {
        match self {
            Call::SendMessage(r) | Call::SendStreamingMessage(r) => Some(&r.message),
            _ => None,
        }
    }

    /// The tenant named in the call's parameters.
    pub fn tenant(&self) -> Option<&str> {
        let tenant = match self {
            Call::SendMessage(r) | Call::SendStreamingMessage(r) => &r.tenant,
            Call::GetTask(r) => &r.tenant,
            Call::ListTasks(r) => &r.tenant,
            Call::CancelTask(r) => &r.tenant,
            Call::SubscribeToTask(r) => &r.tenant,
            Call::PushConfig(PushCall::Create(r)) => &r.tenant,
            Call::PushConfig(PushCall::Get(r)) => &r.tenant,
            Call::PushConfig(PushCall::List(r)) => &r.tenant,
            Call::PushConfig(PushCall::Delete(r)) => &r.tenant,
            Call::GetExtendedAgentCard => return None,
        };
        tenant.as_deref().filter(|t| !t.is_empty())
    }
}

/// The push-notification config methods with their typed parameters.
///
/// ```
/// use abacus::protocol::{Method, PushCall};
/// use abacus::protocol::types::GetTaskPushNotificationConfigRequest;
/// let get = PushCall::Get(GetTaskPushNotificationConfigRequest {
///     task_id: "t1".into(),
///     id: "hook".into(),
///     tenant: None,
/// });
/// assert_eq!(get.method(), Method::GetTaskPushNotificationConfig);
/// assert_eq!(get.task_id(), "t1");
/// ```
#[derive(Debug, Clone)]
pub enum PushCall {
    /// `CreateTaskPushNotificationConfig`.
    Create(TaskPushNotificationConfig),
    /// `GetTaskPushNotificationConfig`.
    Get(GetTaskPushNotificationConfigRequest),
    /// `ListTaskPushNotificationConfigs`.
    List(ListTaskPushNotificationConfigsRequest),
    /// `DeleteTaskPushNotificationConfig`.
    Delete(DeleteTaskPushNotificationConfigRequest),
}

impl PushCall {
    /// The operation.
    pub fn method(&self) -> Method {
        match self {
            PushCall::Create(_) => Method::CreateTaskPushNotificationConfig,
            PushCall::Get(_) => Method::GetTaskPushNotificationConfig,
            PushCall::List(_) => Method::ListTaskPushNotificationConfigs,
            PushCall::Delete(_) => Method::DeleteTaskPushNotificationConfig,
        }
    }

    /// The task the call is about.
    pub fn task_id(&self) -> &str {
        match self {
            PushCall::Create(r) => &r.task_id,
            PushCall::Get(r) => &r.task_id,
            PushCall::List(r) => &r.task_id,
            PushCall::Delete(r) => &r.task_id,
        }
    }
}

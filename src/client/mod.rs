//! An A2A v1.0 client: any agent, any binding, the same layers outbound.
//!
//! [`Client::builder`] takes an agent's base URL; [`ClientBuilder::connect`]
//! reads its agent card (ETag-aware, [`CardResolver`]), picks the binding
//! from the card's `supportedInterfaces` (the card's order, or the caller's
//! [`prefer`](ClientBuilder::prefer)), and stacks the client layers over
//! it:
//!
//! | layer | what it does | set by |
//! |---|---|---|
//! | deadline | bounds a whole call, retries included | [`deadline`](ClientBuilder::deadline) |
//! | retry | jittered exponential backoff, a retry budget; idempotent calls only, or any call whose connection was never made | [`max_attempts`](ClientBuilder::max_attempts) |
//! | circuit breaker | stops calling a server that keeps failing | [`breaker`](ClientBuilder::breaker) |
//! | attempt timeout | bounds one attempt (a stream: until its first byte) | [`timeout`](ClientBuilder::timeout) |
//!
//! Connections are pooled and reused (HTTP/1.1 or h2, rustls). Streams
//! ([`EventStream`]) end with the event that finishes the exchange or with
//! an error, never silently, and resume after the last event seen when
//! the connection drops. Errors are typed: [`ClientError`], with the A2A
//! error the server sent as [`RemoteError`] and a class
//! ([`ErrorClass`]) to branch on.
//!
//! ```no_run
//! use abacus::client::Client;
//! use abacus::protocol::types::SendMessageResponse;
//! # async fn run() -> Result<(), abacus::client::ClientError> {
//! let client = Client::builder("http://127.0.0.1:8002/").connect().await?;
//! match client.send_text("6 * 7").await? {
//!     SendMessageResponse::Message(m) => println!("{m:?}"),
//!     SendMessageResponse::Task(t) => println!("task {} is {:?}", t.id, t.status.state),
//! }
//! # Ok(()) }
//! ```
//!
//! A stream, from any binding:
//!
//! ```no_run
//! use abacus::client::{text_request, Client};
//! use abacus::protocol::Binding;
//! use futures_util::StreamExt;
//! # async fn run() -> Result<(), abacus::client::ClientError> {
//! let client = Client::builder("http://127.0.0.1:8002/")
//!     .prefer([Binding::Grpc, Binding::JsonRpc])
//!     .api_key("k-alice")
//!     .connect()
//!     .await?;
//! let mut events = client.send_streaming_message(text_request("factorial 30")).await?;
//! while let Some(event) = events.next().await {
//!     println!("{:?}", event?.response);
//! }
//! # Ok(()) }
//! ```
//!
//! [`JsonRpcClient`] is the raw JSON-RPC client under it all: JSON values in
//! and out, for tests and tools that want the exact wire form.

mod call;
mod card;
pub(crate) mod conn;
mod error;
mod grpc;
mod jsonrpc;
mod raw;
mod rest;
mod stack;
mod stream;

pub use call::Event;
pub use card::{pick_interface, CardResolver};
pub(crate) use error::error_chain;
pub use error::{ClientError, ErrorClass, RemoteError};
pub use raw::JsonRpcClient;
pub use stream::{ends_stream, EventStream};

use crate::protocol::types::{
    AgentCard, CancelTaskRequest, DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest, GetTaskPushNotificationConfigRequest, GetTaskRequest,
    ListTaskPushNotificationConfigsRequest, ListTaskPushNotificationConfigsResponse,
    ListTasksRequest, ListTasksResponse, Message, Part, Role, SendMessageRequest,
    SendMessageResponse, SubscribeToTaskRequest, Task, TaskPushNotificationConfig,
};
use crate::protocol::Binding;
use call::{unexpected, Call, Reply};
use futures_util::stream::{BoxStream, StreamExt};
use http::{HeaderName, HeaderValue};
use stack::{ClientService, Limits, Transport};
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// Builds a [`Client`]; every setting has a default fit for a CLI.
///
/// ```
/// use std::time::Duration;
/// use abacus::client::Client;
/// use abacus::protocol::Binding;
/// let builder = Client::builder("https://agents.example.com/math")
///     .prefer([Binding::Grpc, Binding::JsonRpc])
///     .bearer_token("t-123")
///     .timeout(Duration::from_secs(10))
///     .max_attempts(2);
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base: String,
    prefer: Vec<Binding>,
    interface: Option<(Binding, String)>,
    ca: Option<PathBuf>,
    api_key: Option<String>,
    bearer: Option<String>,
    limits: Limits,
    connect_timeout: Duration,
    max_event_bytes: usize,
    max_resumes: u32,
}

impl ClientBuilder {
    /// The bindings to use, best first; the first one the card offers is
    /// taken. Default: the card's own order.
    pub fn prefer(mut self, bindings: impl IntoIterator<Item = Binding>) -> Self {
        self.prefer = bindings.into_iter().collect();
        self
    }

    /// Talk to `url` over `binding` without reading the card.
    pub fn interface(mut self, binding: Binding, url: impl Into<String>) -> Self {
        self.interface = Some((binding, url.into()));
        self
    }

    /// Verify `https` servers against the CAs of this PEM bundle instead
    /// of the system's trust store.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(path.into());
        self
    }

    /// Send this API key, in the header the card's API-key scheme names
    /// (`X-API-Key` when it names none).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Send `Authorization: Bearer <token>`.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// Bound on one attempt (a stream: until its response starts).
    /// Default 60 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.limits.attempt_timeout = timeout;
        self
    }

    /// Bound on a whole call, retries included. Default 120 s.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.limits.deadline = deadline;
        self
    }

    /// Attempts per call, the first included (1: no retries). Default 3.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.limits.max_attempts = attempts;
        self
    }

    /// Open the breaker after `failures` failures in a row, for `open`.
    /// Default 5 failures, 10 s.
    pub fn breaker(mut self, failures: u32, open: Duration) -> Self {
        self.limits.breaker_failures = failures;
        self.limits.breaker_open = open;
        self
    }

    /// Largest streamed event accepted, in bytes. Default 16 MiB.
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.max_event_bytes = bytes;
        self
    }

    /// Resumes of a dropped stream in a row before giving up (0: never).
    /// Default 5.
    pub fn resume_attempts(mut self, resumes: u32) -> Self {
        self.max_resumes = resumes;
        self
    }

    /// Reads the card (unless [`interface`](Self::interface) was given),
    /// picks the binding and builds the stack.
    pub async fn connect(self) -> Result<Client, ClientError> {
        let connector = conn::connector(self.ca.as_deref(), self.connect_timeout)?;
        let plain = conn::Http {
            pool: conn::pool(connector.clone()),
            headers: http::HeaderMap::new(),
            max_event_bytes: self.max_event_bytes,
        };
        let resolver =
            CardResolver::with_http(&self.base, plain.clone(), self.limits.attempt_timeout);
        let (card, binding, url, tenant) = match &self.interface {
            Some((binding, url)) => (None, *binding, url.clone(), None),
            None => {
                let card = resolver.resolve().await?;
                let (binding, iface) = pick_interface(&card, &self.prefer)?;
                let tenant = iface.tenant.clone().filter(|t| !t.is_empty());
                let (url, tenant) = (iface.url.clone(), tenant);
                (Some(card), binding, url, tenant)
            }
        };
        let headers = self.headers(card.as_ref())?;
        let with_headers = conn::Http {
            headers: headers.clone(),
            ..plain
        };
        let transport = match binding {
            Binding::JsonRpc => Transport::JsonRpc(jsonrpc::JsonRpc {
                http: with_headers,
                url: url.as_str().into(),
                next_id: Arc::new(AtomicI64::new(1)),
            }),
            Binding::Rest => Transport::Rest(rest::Rest {
                http: with_headers,
                base: url.trim_end_matches('/').into(),
            }),
            Binding::Grpc => Transport::Grpc(grpc::Grpc {
                pool: grpc::pool(connector),
                origin: grpc::origin(&url)?,
                url: url.as_str().into(),
                headers,
            }),
            other => {
                return Err(ClientError::NoInterface(format!(
                    "{} is not a binding this client speaks",
                    other.as_str()
                )))
            }
        };
        Ok(Client {
            service: stack::build(transport, &url, &self.limits),
            card: card.map(Arc::new),
            resolver: Arc::new(resolver),
            binding,
            url: url.into(),
            tenant,
            max_resumes: self.max_resumes,
        })
    }

    /// `A2A-Version` and the credentials, marked sensitive.
    fn headers(&self, card: Option<&AgentCard>) -> Result<http::HeaderMap, ClientError> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "a2a-version",
            HeaderValue::from_static(crate::protocol::PROTOCOL_VERSION),
        );
        headers.insert(
            ::http::header::USER_AGENT,
            HeaderValue::from_static(concat!("abacus/", env!("CARGO_PKG_VERSION"))),
        );
        let secret = |v: String, what: &str| {
            HeaderValue::from_str(&v)
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| {
                    ClientError::Transport(format!("the {what} is not a valid header value"))
                })
        };
        if let Some(key) = &self.api_key {
            headers.insert(api_key_header(card), secret(key.clone(), "API key")?);
        }
        if let Some(token) = &self.bearer {
            headers.insert(
                ::http::header::AUTHORIZATION,
                secret(format!("Bearer {token}"), "bearer token")?,
            );
        }
        Ok(headers)
    }
}

/// The header of the card's first API-key scheme sent in a header.
fn api_key_header(card: Option<&AgentCard>) -> HeaderName {
    use crate::protocol::types::SecurityScheme;
    card.and_then(|c| c.security_schemes.as_ref())
        .and_then(|schemes| {
            let mut names: Vec<_> = schemes.keys().collect();
            names.sort();
            names.into_iter().find_map(|n| match &schemes[n] {
                SecurityScheme::ApiKey(k) if k.location.eq_ignore_ascii_case("header") => {
                    HeaderName::from_bytes(k.name.as_bytes()).ok()
                }
                _ => None,
            })
        })
        .unwrap_or(HeaderName::from_static("x-api-key"))
}

/// An A2A client of one agent over one binding (see the module docs).
/// Clones share the connections, the breaker and the card.
#[derive(Clone)]
pub struct Client {
    service: ClientService,
    card: Option<Arc<AgentCard>>,
    resolver: Arc<CardResolver>,
    binding: Binding,
    url: Arc<str>,
    tenant: Option<String>,
    max_resumes: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("binding", &self.binding)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder for the agent at `base_url` (its card at
    /// `<base_url>/.well-known/agent-card.json`, or `base_url` itself when
    /// it ends in `.json`).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base_url.into(),
            prefer: Vec::new(),
            interface: None,
            ca: None,
            api_key: None,
            bearer: None,
            limits: Limits {
                attempt_timeout: Duration::from_secs(60),
                deadline: Duration::from_secs(120),
                max_attempts: 3,
                breaker_failures: 5,
                breaker_open: Duration::from_secs(10),
            },
            connect_timeout: Duration::from_secs(5),
            max_event_bytes: crate::http::DEFAULT_MAX_EVENT_BYTES,
            max_resumes: 5,
        }
    }

    /// The binding in use.
    pub fn binding(&self) -> Binding {
        self.binding
    }

    /// The URL of the interface in use.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The card read at connect (none when an interface was given).
    pub fn card(&self) -> Option<&AgentCard> {
        self.card.as_deref()
    }

    /// The card as the server has it now (a conditional GET: unchanged
    /// cards are not sent again).
    pub async fn fetch_card(&self) -> Result<AgentCard, ClientError> {
        self.resolver.resolve().await
    }

    async fn run(&self, call: Call) -> Result<Reply, ClientError> {
        self.service.clone().oneshot(call).await
    }

    fn tenant(&self, t: &mut Option<String>) {
        if t.is_none() {
            t.clone_from(&self.tenant);
        }
    }

    /// `SendMessage`: the agent's direct reply or its task.
    pub async fn send_message(
        &self,
        mut request: SendMessageRequest,
    ) -> Result<SendMessageResponse, ClientError> {
        self.tenant(&mut request.tenant);
        match self.run(Call::Send(request)).await? {
            Reply::Send(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// `SendMessage` of one text part.
    pub async fn send_text(&self, text: &str) -> Result<SendMessageResponse, ClientError> {
        self.send_message(text_request(text)).await
    }

    /// `SendStreamingMessage`: the task's events as they happen; a dropped
    /// connection resumes with `SubscribeToTask` after the last event.
    pub async fn send_streaming_message(
        &self,
        mut request: SendMessageRequest,
    ) -> Result<EventStream, ClientError> {
        self.tenant(&mut request.tenant);
        let task_id = request.message.task_id.clone();
        let tenant = request.tenant.clone();
        match self.run(Call::Stream(request)).await? {
            Reply::Events(e) => Ok(stream::follow(
                self.service.clone(),
                e,
                task_id,
                tenant,
                self.max_resumes,
            )),
            other => Err(unexpected(other)),
        }
    }

    /// `SubscribeToTask`: the task's snapshot, then its events; resumes
    /// like [`send_streaming_message`](Self::send_streaming_message).
    pub async fn subscribe_to_task(
        &self,
        mut request: SubscribeToTaskRequest,
    ) -> Result<EventStream, ClientError> {
        self.tenant(&mut request.tenant);
        let (id, tenant) = (request.id.clone(), request.tenant.clone());
        match self.run(Call::Subscribe(request, None)).await? {
            Reply::Events(e) => Ok(stream::follow(
                self.service.clone(),
                e,
                Some(id),
                tenant,
                self.max_resumes,
            )),
            other => Err(unexpected(other)),
        }
    }

    /// `GetTask`.
    pub async fn get_task(&self, mut request: GetTaskRequest) -> Result<Task, ClientError> {
        self.tenant(&mut request.tenant);
        match self.run(Call::Get(request)).await? {
            Reply::Task(t) => Ok(*t),
            other => Err(unexpected(other)),
        }
    }

    /// `ListTasks`: one page.
    pub async fn list_tasks(
        &self,
        mut request: ListTasksRequest,
    ) -> Result<ListTasksResponse, ClientError> {
        self.tenant(&mut request.tenant);
        match self.run(Call::List(request)).await? {
            Reply::Tasks(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// Every task `request` selects, page after page (each page one
    /// `ListTasks` call, made when the previous one is used up).
    pub fn list_all_tasks(
        &self,
        request: ListTasksRequest,
    ) -> BoxStream<'static, Result<Task, ClientError>> {
        let client = self.clone();
        let pages = futures_util::stream::unfold(Some(request), move |next| {
            let client = client.clone();
            async move {
                let request = next?;
                match client.list_tasks(request.clone()).await {
                    Ok(page) => {
                        let more = (!page.next_page_token.is_empty()).then(|| ListTasksRequest {
                            page_token: Some(page.next_page_token.clone()),
                            ..request
                        });
                        let tasks: Vec<Result<Task, ClientError>> =
                            page.tasks.into_iter().map(Ok).collect();
                        Some((futures_util::stream::iter(tasks), more))
                    }
                    Err(e) => Some((futures_util::stream::iter(vec![Err(e)]), None)),
                }
            }
        });
        pages.flatten().boxed()
    }

    /// `CancelTask`: the task as canceled.
    pub async fn cancel_task(&self, mut request: CancelTaskRequest) -> Result<Task, ClientError> {
        self.tenant(&mut request.tenant);
        match self.run(Call::Cancel(request)).await? {
            Reply::Task(t) => Ok(*t),
            other => Err(unexpected(other)),
        }
    }

    /// `CreateTaskPushNotificationConfig`.
    pub async fn create_push_config(
        &self,
        mut config: TaskPushNotificationConfig,
    ) -> Result<TaskPushNotificationConfig, ClientError> {
        self.tenant(&mut config.tenant);
        match self.run(Call::CreatePush(config)).await? {
            Reply::Push(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// `GetTaskPushNotificationConfig`.
    pub async fn get_push_config(
        &self,
        mut request: GetTaskPushNotificationConfigRequest,
    ) -> Result<TaskPushNotificationConfig, ClientError> {
        self.tenant(&mut request.tenant);
        match self.run(Call::GetPush(request)).await? {
            Reply::Push(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// `ListTaskPushNotificationConfigs`.
    pub async fn list_push_configs(
        &self,
        mut request: ListTaskPushNotificationConfigsRequest,
    ) -> Result<ListTaskPushNotificationConfigsResponse, ClientError> {
        self.tenant(&mut request.tenant);
        match self.run(Call::ListPush(request)).await? {
            Reply::Pushes(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// `DeleteTaskPushNotificationConfig`.
    pub async fn delete_push_config(
        &self,
        mut request: DeleteTaskPushNotificationConfigRequest,
    ) -> Result<(), ClientError> {
        self.tenant(&mut request.tenant);
        match self.run(Call::DeletePush(request)).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// `GetExtendedAgentCard` (authenticated callers).
    pub async fn extended_card(&self) -> Result<AgentCard, ClientError> {
        let mut request = GetExtendedAgentCardRequest { tenant: None };
        self.tenant(&mut request.tenant);
        match self.run(Call::ExtendedCard(request)).await? {
            Reply::Card(c) => Ok(*c),
            other => Err(unexpected(other)),
        }
    }
}

/// A `SendMessage` request of one user text part.
///
/// ```
/// let r = abacus::client::text_request("2 + 2");
/// assert_eq!(r.message.parts.len(), 1);
/// ```
pub fn text_request(text: &str) -> SendMessageRequest {
    message_request(Message::new(Role::User, vec![Part::text(text)]))
}

/// A `SendMessage` request of `message`, nothing else set.
pub fn message_request(message: Message) -> SendMessageRequest {
    SendMessageRequest {
        message,
        configuration: None,
        metadata: None,
        tenant: None,
    }
}

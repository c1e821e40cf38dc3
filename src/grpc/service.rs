//! [`GrpcService`]: the eleven rpcs of `lf.a2a.v1.A2AService` over the stack.

use super::pb;
use super::status::fail;
use crate::http::check_version;
use crate::protocol::{
    rpc_error_for_ref, A2AError, A2ARequest, A2AResponse, Call, EventStream, PushCall, Reply,
    RequestMeta,
};
use a2a::{
    AgentCard, ListTaskPushNotificationConfigsResponse, StreamResponse, TaskPushNotificationConfig,
};
use a2a_pb::pbconv;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tonic::{Request, Response, Status};
use tower::{BoxError, Service, ServiceExt};
use tracing::Instrument;

/// The events of a streaming rpc, each a `StreamResponse` message; an
/// error ends the stream with its status.
type GrpcEvents = BoxStream<'static, Result<pb::StreamResponse, Status>>;

/// The tonic `A2aService` over an A2A stack `S`: each rpc decodes its
/// proto request into an [`A2ARequest`], calls a clone of the stack and
/// encodes its answer.
///
/// [`HttpApp`](crate::http::HttpApp) serves it on the API port; to serve it
/// with tonic's own server instead, wrap it in the generated
/// `A2aServiceServer`. The request's [`RequestMeta`] is taken from the
/// request extensions when the edge put one there (as `HttpApp` does),
/// else read from the gRPC metadata the same way
/// ([`grpc_meta`](super::grpc_meta)).
///
/// ```
/// use abacus::grpc::{pb::a2a_service_server::A2aServiceServer, GrpcService};
/// # fn f(core: abacus::core::Core) {
/// let server = A2aServiceServer::new(GrpcService::new(core)).max_decoding_message_size(1 << 20);
/// # let _ = server;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct GrpcService<S> {
    stack: S,
}

impl<S> GrpcService<S> {
    /// The service calling `stack` for every rpc.
    pub fn new(stack: S) -> Self {
        GrpcService { stack }
    }
}

impl<S> GrpcService<S>
where
    S: Service<A2ARequest, Response = A2AResponse> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    /// Decodes `request` with `decode`, checks its version and calls the
    /// stack; every error is a counted status.
    async fn call<T>(
        &self,
        request: Request<T>,
        decode: impl FnOnce(T) -> Result<(Call, String), A2AError>,
    ) -> Result<A2AResponse, Status> {
        let peer = request.remote_addr();
        let (metadata, extensions, message) = request.into_parts();
        let mut meta = match extensions.get::<RequestMeta>() {
            Some(meta) => meta.clone(),
            None => {
                let (mut parts, ()) = http::Request::new(()).into_parts();
                parts.headers = metadata.into_headers();
                parts.extensions = extensions;
                super::grpc_meta(&parts, peer)
            }
        };
        check_version(meta.version.as_deref()).map_err(|e| fail(&e))?;
        let (call, tenant) = decode(message).map_err(|e| fail(&e))?;
        meta.tenant = Some(tenant).filter(|t| !t.is_empty());
        let request_id = meta.request_id;
        let method = call.method().name();
        // As on JSON-RPC: a debug span with the request id and method, no
        // message content (it may hold user data).
        let span = tracing::debug_span!("request", request_id, method);
        let request = A2ARequest { call, meta };
        self.stack
            .clone()
            .oneshot(request)
            .instrument(span)
            .await
            .map_err(|e| fail(&rpc_error_for_ref(e.into().as_ref())))
    }

    /// A unary rpc: the reply, or its error as a status.
    async fn unary<T>(
        &self,
        request: Request<T>,
        decode: impl FnOnce(T) -> Result<(Call, String), A2AError>,
    ) -> Result<Reply, Status> {
        match self.call(request, decode).await? {
            A2AResponse::Unary(u) => u.outcome.map_err(|e| fail(&e)),
            A2AResponse::Stream(_) => Err(unexpected("a stream")),
        }
    }

    /// A streaming rpc: its events; an error before the first is the
    /// status of the call, a unary reply a stream of that one event.
    async fn stream<T>(
        &self,
        request: Request<T>,
        decode: impl FnOnce(T) -> Result<(Call, String), A2AError>,
    ) -> Result<Response<GrpcEvents>, Status> {
        let events = match self.call(request, decode).await? {
            A2AResponse::Stream(events) => events,
            A2AResponse::Unary(u) => {
                let event = match u.outcome.map_err(|e| fail(&e))? {
                    Reply::SendTask(t) | Reply::Task(t) => StreamResponse::Task(*t),
                    Reply::Message(m) => StreamResponse::Message(*m),
                    _ => return Err(unexpected("a reply that is no event")),
                };
                futures_util::stream::once(std::future::ready(Ok(event.into()))).boxed()
            }
        };
        Ok(Response::new(grpc_events(events)))
    }
}

/// The stack's events as `StreamResponse` messages, ending after the first
/// error (its status).
fn grpc_events(events: EventStream) -> GrpcEvents {
    events
        .scan(false, |failed, item| {
            let next = match item {
                _ if *failed => None,
                Ok(event) => Some(Ok(pbconv::to_proto_stream_response(&event.response))),
                Err(e) => {
                    *failed = true;
                    Some(Err(fail(&e)))
                }
            };
            std::future::ready(next)
        })
        .boxed()
}

/// The status of a stack answer the rpc has no form for.
fn unexpected(what: &str) -> Status {
    fail(&A2AError::internal(format!(
        "the stack answered with {what} where the rpc has none"
    )))
}

/// A task reply as a proto `Task`.
fn task(reply: Reply) -> Result<pb::Task, Status> {
    match reply {
        Reply::Task(t) | Reply::SendTask(t) => Ok(pbconv::to_proto_task(&t)),
        _ => Err(unexpected("a reply that is no task")),
    }
}

/// A JSON reply (extended card, push configs) as the a2a-lf type `T`.
fn json<T: DeserializeOwned>(reply: Reply) -> Result<T, Status> {
    match reply {
        Reply::Json(v) => serde_json::from_value(v).map_err(|e| {
            fail(&A2AError::internal(format!(
                "the stack's reply does not decode: {e}"
            )))
        }),
        _ => Err(unexpected("a reply that is no JSON")),
    }
}

/// The a2a-lf form of a send request. The message and its id are required,
/// as the JSON bindings require them (proto3 cannot tell an empty id from
/// none, so an empty one is missing).
fn send_request(r: &pb::SendMessageRequest) -> Result<a2a::SendMessageRequest, A2AError> {
    match &r.message {
        None => Err(A2AError::invalid_params(
            "invalid params: missing field `message`",
        )),
        Some(m) if m.message_id.is_empty() => Err(A2AError::invalid_params(
            "invalid params: message: missing field `messageId`",
        )),
        Some(_) => Ok(pbconv::from_proto_send_message_request(r)),
    }
}

#[async_trait::async_trait]
impl<S> pb::a2a_service_server::A2aService for GrpcService<S>
where
    S: Service<A2ARequest, Response = A2AResponse> + Clone + Send + Sync + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let reply = self
            .unary(request, |r| {
                Ok((Call::SendMessage(send_request(&r)?), r.tenant))
            })
            .await?;
        use pb::send_message_response::Payload;
        let payload = match reply {
            Reply::SendTask(t) | Reply::Task(t) => Payload::Task(pbconv::to_proto_task(&t)),
            Reply::Message(m) => Payload::Message(pbconv::to_proto_message(&m)),
            _ => return Err(unexpected("a reply that is no task or message")),
        };
        Ok(Response::new(pb::SendMessageResponse {
            payload: Some(payload),
        }))
    }

    type SendStreamingMessageStream = GrpcEvents;

    async fn send_streaming_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<GrpcEvents>, Status> {
        self.stream(request, |r| {
            Ok((Call::SendStreamingMessage(send_request(&r)?), r.tenant))
        })
        .await
    }

    async fn get_task(
        &self,
        request: Request<pb::GetTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let reply = self
            .unary(request, |r| {
                let call = Call::GetTask(pbconv::from_proto_get_task_request(&r));
                Ok((call, r.tenant))
            })
            .await?;
        task(reply).map(Response::new)
    }

    async fn list_tasks(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        let reply = self
            .unary(request, |r| {
                let call = Call::ListTasks(pbconv::from_proto_list_tasks_request(&r));
                Ok((call, r.tenant))
            })
            .await?;
        match reply {
            Reply::Tasks(list) => Ok(Response::new(pbconv::to_proto_list_tasks_response(&list))),
            _ => Err(unexpected("a reply that is no task list")),
        }
    }

    async fn cancel_task(
        &self,
        request: Request<pb::CancelTaskRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let reply = self
            .unary(request, |r| {
                let call = Call::CancelTask(pbconv::from_proto_cancel_task_request(&r));
                Ok((call, r.tenant))
            })
            .await?;
        task(reply).map(Response::new)
    }

    type SubscribeToTaskStream = GrpcEvents;

    async fn subscribe_to_task(
        &self,
        request: Request<pb::SubscribeToTaskRequest>,
    ) -> Result<Response<GrpcEvents>, Status> {
        self.stream(request, |r| {
            let call = Call::SubscribeToTask(pbconv::from_proto_subscribe_to_task_request(&r));
            Ok((call, r.tenant))
        })
        .await
    }

    async fn create_task_push_notification_config(
        &self,
        request: Request<pb::TaskPushNotificationConfig>,
    ) -> Result<Response<pb::TaskPushNotificationConfig>, Status> {
        let reply = self
            .unary(request, |r| {
                let call = Call::PushConfig(PushCall::Create(
                    pbconv::from_proto_task_push_notification_config(&r),
                ));
                Ok((call, r.tenant))
            })
            .await?;
        let config: TaskPushNotificationConfig = json(reply)?;
        Ok(Response::new(
            pbconv::to_proto_task_push_notification_config(&config),
        ))
    }

    async fn get_task_push_notification_config(
        &self,
        request: Request<pb::GetTaskPushNotificationConfigRequest>,
    ) -> Result<Response<pb::TaskPushNotificationConfig>, Status> {
        let reply = self
            .unary(request, |r| {
                let call = Call::PushConfig(PushCall::Get(
                    pbconv::from_proto_get_task_push_notification_config_request(&r),
                ));
                Ok((call, r.tenant))
            })
            .await?;
        let config: TaskPushNotificationConfig = json(reply)?;
        Ok(Response::new(
            pbconv::to_proto_task_push_notification_config(&config),
        ))
    }

    async fn list_task_push_notification_configs(
        &self,
        request: Request<pb::ListTaskPushNotificationConfigsRequest>,
    ) -> Result<Response<pb::ListTaskPushNotificationConfigsResponse>, Status> {
        let reply = self
            .unary(request, |r| {
                let call = Call::PushConfig(PushCall::List(
                    pbconv::from_proto_list_task_push_notification_configs_request(&r),
                ));
                Ok((call, r.tenant))
            })
            .await?;
        let list: ListTaskPushNotificationConfigsResponse = json(reply)?;
        Ok(Response::new(
            pbconv::to_proto_list_task_push_notification_configs_response(&list),
        ))
    }

    async fn get_extended_agent_card(
        &self,
        request: Request<pb::GetExtendedAgentCardRequest>,
    ) -> Result<Response<pb::AgentCard>, Status> {
        let reply = self
            .unary(request, |r| Ok((Call::GetExtendedAgentCard, r.tenant)))
            .await?;
        let card: AgentCard = json(reply)?;
        Ok(Response::new(pbconv::to_proto_agent_card(&card)))
    }

    async fn delete_task_push_notification_config(
        &self,
        request: Request<pb::DeleteTaskPushNotificationConfigRequest>,
    ) -> Result<Response<()>, Status> {
        self.unary(request, |r| {
            let call = Call::PushConfig(PushCall::Delete(
                pbconv::from_proto_delete_task_push_notification_config_request(&r),
            ));
            Ok((call, r.tenant))
        })
        .await?;
        Ok(Response::new(()))
    }
}

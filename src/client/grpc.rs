//! The gRPC binding: `lf.a2a.v1.A2AService` through the official `a2a-pb`
//! tonic client, over the same rustls connector as the HTTP bindings (h2
//! only: h2c for `http`, ALPN h2 for `https`).

use super::call::{Call, Event, Reply};
use super::error::{connect_error, ClientError, RemoteError};
use a2a_pb::pbconv as conv;
use a2a_pb::proto::a2a_service_client::A2aServiceClient;
use futures_util::StreamExt;
use http::{HeaderMap, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic_types::StatusExt;

/// The h2 pool of the gRPC binding.
pub(crate) type Pool = HyperClient<HttpsConnector<HttpConnector>, tonic::body::Body>;

/// An h2-only pool over `connector`.
pub(crate) fn pool(connector: HttpsConnector<HttpConnector>) -> Pool {
    HyperClient::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector)
}

/// The gRPC endpoint of one agent.
#[derive(Clone)]
pub(crate) struct Grpc {
    pub(crate) pool: Pool,
    pub(crate) origin: Uri,
    pub(crate) url: Arc<str>,
    /// `A2A-Version` and credentials, as metadata.
    pub(crate) headers: HeaderMap,
}

/// A card's gRPC URL as an origin: `host:port` means plain h2c.
pub(crate) fn origin(url: &str) -> Result<Uri, ClientError> {
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    full.trim_end_matches('/')
        .parse()
        .map_err(|e| ClientError::NoInterface(format!("gRPC URL {url:?}: {e}")))
}

impl Grpc {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        for (name, value) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                MetadataKey::from_bytes(name.as_str().as_bytes()),
                MetadataValue::try_from(value.as_bytes()),
            ) {
                req.metadata_mut().insert(k, v);
            }
        }
        req
    }

    pub(crate) async fn call(self, call: Call) -> Result<Reply, ClientError> {
        let mut client = A2aServiceClient::with_origin(self.pool.clone(), self.origin.clone());
        let url = self.url.clone();
        let fail = |s: tonic::Status| status_error(&url, s);
        Ok(match &call {
            Call::Send(r) => {
                let reply = client
                    .send_message(self.request(conv::to_proto_send_message_request(r)))
                    .await
                    .map_err(fail)?;
                let reply = conv::from_proto_send_message_response(reply.get_ref())
                    .ok_or_else(|| ClientError::Invalid("an empty SendMessageResponse".into()))?;
                Reply::Send(reply)
            }
            Call::Stream(r) => {
                let stream = client
                    .send_streaming_message(self.request(conv::to_proto_send_message_request(r)))
                    .await
                    .map_err(fail)?;
                events(stream.into_inner(), url.clone())
            }
            Call::Subscribe(r, _) => {
                // gRPC has no event ids: a resumed subscription starts
                // again from the task's snapshot.
                let stream = client
                    .subscribe_to_task(self.request(conv::to_proto_subscribe_to_task_request(r)))
                    .await
                    .map_err(fail)?;
                events(stream.into_inner(), url.clone())
            }
            Call::Get(r) => {
                let t = client
                    .get_task(self.request(conv::to_proto_get_task_request(r)))
                    .await
                    .map_err(fail)?;
                Reply::Task(Box::new(conv::from_proto_task(t.get_ref())))
            }
            Call::List(r) => {
                let l = client
                    .list_tasks(self.request(conv::to_proto_list_tasks_request(r)))
                    .await
                    .map_err(fail)?;
                Reply::Tasks(conv::from_proto_list_tasks_response(l.get_ref()))
            }
            Call::Cancel(r) => {
                let t = client
                    .cancel_task(self.request(conv::to_proto_cancel_task_request(r)))
                    .await
                    .map_err(fail)?;
                Reply::Task(Box::new(conv::from_proto_task(t.get_ref())))
            }
            Call::CreatePush(r) => {
                let c = client
                    .create_task_push_notification_config(
                        self.request(conv::to_proto_task_push_notification_config(r)),
                    )
                    .await
                    .map_err(fail)?;
                Reply::Push(conv::from_proto_task_push_notification_config(c.get_ref()))
            }
            Call::GetPush(r) => {
                let c = client
                    .get_task_push_notification_config(
                        self.request(conv::to_proto_get_task_push_notification_config_request(r)),
                    )
                    .await
                    .map_err(fail)?;
                Reply::Push(conv::from_proto_task_push_notification_config(c.get_ref()))
            }
            Call::ListPush(r) => {
                let l = client
                    .list_task_push_notification_configs(self.request(
                        conv::to_proto_list_task_push_notification_configs_request(r),
                    ))
                    .await
                    .map_err(fail)?;
                Reply::Pushes(
                    conv::from_proto_list_task_push_notification_configs_response(l.get_ref()),
                )
            }
            Call::DeletePush(r) => {
                client
                    .delete_task_push_notification_config(self.request(
                        conv::to_proto_delete_task_push_notification_config_request(r),
                    ))
                    .await
                    .map_err(fail)?;
                Reply::Done
            }
            Call::ExtendedCard(r) => {
                let c = client
                    .get_extended_agent_card(
                        self.request(conv::to_proto_get_extended_agent_card_request(r)),
                    )
                    .await
                    .map_err(fail)?;
                Reply::Card(Box::new(conv::from_proto_agent_card(c.get_ref())))
            }
        })
    }
}

fn events(stream: tonic::codec::Streaming<a2a_pb::proto::StreamResponse>, url: Arc<str>) -> Reply {
    Reply::Events(
        stream
            .map(move |item| {
                let pb = item.map_err(|s| status_error(&url, s))?;
                let response = conv::from_proto_stream_response(&pb)
                    .ok_or_else(|| ClientError::Invalid("an empty StreamResponse".into()))?;
                Ok(Event { id: None, response })
            })
            .boxed(),
    )
}

/// A status as the client error it stands for: a connection that could
/// not be made, a transport failure, or the A2A error of its `ErrorInfo`.
fn status_error(url: &str, s: tonic::Status) -> ClientError {
    use std::error::Error as _;
    let mut source = s.source();
    while let Some(e) = source {
        if let Some(h) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            if h.is_connect() {
                return connect_error(url, h);
            }
        }
        source = e.source();
    }
    let details = s.get_error_details();
    if let Some(info) = details.error_info() {
        let fallback = crate::protocol::error_code::INTERNAL_ERROR;
        return ClientError::Remote(RemoteError::from_reason(
            &info.reason,
            fallback,
            s.message(),
        ));
    }
    use crate::protocol::error_code as code;
    let a2a = match s.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled => {
            return ClientError::Transport(format!("gRPC {:?}: {}", s.code(), s.message()))
        }
        tonic::Code::NotFound => code::TASK_NOT_FOUND,
        tonic::Code::InvalidArgument => code::INVALID_PARAMS,
        tonic::Code::Unimplemented => code::UNSUPPORTED_OPERATION,
        _ => code::INTERNAL_ERROR,
    };
    ClientError::Remote(RemoteError::new(a2a, s.message()))
}

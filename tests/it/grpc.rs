//! The gRPC binding against real servers on 127.0.0.1, with the official
//! `a2a-pb` tonic client: every kind of rpc, errors as statuses with their
//! `ErrorInfo`, `grpc-timeout`, authentication and `--grpc-port`.

use crate::common::{bound_memory_config, get, raw_request, sample, TestServer};
use abacus::agent::{Agent, RequestContext, TaskUpdater};
use abacus::card::CardBuilder;
use abacus::grpc::pb::a2a_service_client::A2aServiceClient;
use abacus::grpc::pb::{self, part, send_message_response, stream_response, TaskState};
use abacus::protocol::types::{A2AError, Part};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// "slow" works until canceled; anything else is worked on, answered with
/// an artifact echoing it, and completed.
struct Script;

#[async_trait::async_trait]
impl Agent for Script {
    async fn execute(&self, ctx: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        let text = ctx.text();
        up.start_work().await?;
        if text == "slow" {
            tokio::select! {
                _ = ctx.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_secs(30)) => return up.fail("nobody canceled").await,
            }
        }
        up.add_artifact(vec![Part::text(format!("echo: {text}"))])
            .await?;
        up.complete(None).await
    }
}

async fn script_server() -> TestServer {
    TestServer::start(Script, CardBuilder::new("script", "test agent").build()).await
}

type Client = A2aServiceClient<Channel>;

/// A client of the gRPC target at `url` (`http://127.0.0.1:PORT/`).
async fn client(url: &str) -> Client {
    A2aServiceClient::connect(url.trim_end_matches('/').to_string())
        .await
        .unwrap()
}

/// `message` as a request speaking A2A 1.0.
fn req<T>(message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut()
        .insert("a2a-version", MetadataValue::from_static("1.0"));
    r
}

/// `req` with an API key.
fn keyed<T>(message: T, key: &'static str) -> Request<T> {
    let mut r = req(message);
    r.metadata_mut()
        .insert("x-api-key", MetadataValue::from_static(key));
    r
}

fn send(text: &str) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        message: Some(pb::Message {
            message_id: uuid::Uuid::new_v4().to_string(),
            role: pb::Role::User as i32,
            parts: vec![pb::Part {
                content: Some(part::Content::Text(text.into())),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `send`, answered with the task at once (`returnImmediately`).
fn send_now(text: &str) -> pb::SendMessageRequest {
    pb::SendMessageRequest {
        configuration: Some(pb::SendMessageConfiguration {
            return_immediately: true,
            ..Default::default()
        }),
        ..send(text)
    }
}

fn get_task(id: &str, history_length: Option<i32>) -> pb::GetTaskRequest {
    pb::GetTaskRequest {
        id: id.into(),
        history_length,
        ..Default::default()
    }
}

fn cancel(id: &str) -> pb::CancelTaskRequest {
    pb::CancelTaskRequest {
        id: id.into(),
        ..Default::default()
    }
}

/// The task of a SendMessage reply.
fn task_of(reply: pb::SendMessageResponse) -> pb::Task {
    match reply.payload {
        Some(send_message_response::Payload::Task(t)) => t,
        other => panic!("not a task: {other:?}"),
    }
}

fn state(task: &pb::Task) -> TaskState {
    let state = task.status.as_ref().map_or(0, |s| s.state);
    TaskState::try_from(state).unwrap_or(TaskState::Unspecified)
}

fn texts(parts: &[pb::Part]) -> Vec<String> {
    parts
        .iter()
        .filter_map(|p| match &p.content {
            Some(part::Content::Text(t)) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

/// The status's code and its `ErrorInfo` reason, checking the domain.
fn code_and_reason(status: &Status) -> (Code, String) {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.domain, "a2a-protocol.org", "{status:?}");
    (status.code(), info.reason)
}

/// A slow task of `client`, working; its id.
async fn slow_task(client: &mut Client) -> String {
    let task = task_of(
        client
            .send_message(req(send_now("slow")))
            .await
            .unwrap()
            .into_inner(),
    );
    task.id
}

#[tokio::test]
async fn send_message_answers_the_math_agent_on_the_api_port_the_card_names() {
    let s = TestServer::math().await;
    let (_, card) = s.get_json(".well-known/agent-card.json").await;
    let grpc: Vec<&Value> = card["supportedInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["protocolBinding"] == "GRPC")
        .collect();
    let port = s.url.trim_end_matches('/').rsplit(':').next().unwrap();
    assert_eq!(grpc[0]["url"], format!("127.0.0.1:{port}"), "{card}");

    let mut c = client(&s.url).await;
    let reply = c
        .send_message(req(send("6 * 7")))
        .await
        .unwrap()
        .into_inner();
    match reply.payload {
        Some(send_message_response::Payload::Message(m)) => {
            assert_eq!(texts(&m.parts), ["42"]);
            assert_eq!(m.role, pb::Role::Agent as i32);
        }
        other => panic!("not a message: {other:?}"),
    }
    s.stop().await;
}

#[tokio::test]
async fn send_streaming_message_streams_every_event_in_order_to_the_end() {
    let s = script_server().await;
    let mut c = client(&s.url).await;
    let mut events = c
        .send_streaming_message(req(send("hello")))
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while let Some(event) = events.next().await {
        seen.push(event.unwrap().payload.expect("an event has a payload"));
    }
    use stream_response::Payload;
    let Some(Payload::Task(first)) = seen.first() else {
        panic!("the first event is not the task: {seen:?}");
    };
    let states: Vec<i32> = seen
        .iter()
        .filter_map(|e| match e {
            Payload::StatusUpdate(u) => u.status.as_ref().map(|s| s.state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [TaskState::Working as i32, TaskState::Completed as i32],
        "{seen:?}"
    );
    let artifact = seen
        .iter()
        .position(|e| matches!(e, Payload::ArtifactUpdate(_)))
        .expect("an artifact event");
    assert!(matches!(&seen[artifact], Payload::ArtifactUpdate(a)
            if a.task_id == first.id && texts(&a.artifact.as_ref().unwrap().parts) == ["echo: hello"]));
    // The artifact comes between working and completed, which ends the stream.
    assert!(artifact > 1 && artifact < seen.len() - 1, "{seen:?}");
    assert!(matches!(seen.last(), Some(Payload::StatusUpdate(u)) if u.task_id == first.id));
    s.stop().await;
}

#[tokio::test]
async fn get_task_honours_history_length() {
    let s = script_server().await;
    let mut c = client(&s.url).await;
    let task = task_of(c.send_message(req(send("hi"))).await.unwrap().into_inner());
    assert_eq!(state(&task), TaskState::Completed);
    let got = c
        .get_task(req(get_task(&task.id, None)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.id, task.id);
    assert_eq!(got.history.len(), 1);
    assert_eq!(texts(&got.history[0].parts), ["hi"]);
    assert_eq!(texts(&got.artifacts[0].parts), ["echo: hi"]);
    let trimmed = c
        .get_task(req(get_task(&task.id, Some(0))))
        .await
        .unwrap()
        .into_inner();
    assert!(trimmed.history.is_empty(), "{trimmed:?}");
    s.stop().await;
}

#[tokio::test]
async fn list_tasks_pages_through_every_task_with_page_tokens() {
    let s = script_server().await;
    let mut c = client(&s.url).await;
    let mut created = Vec::new();
    for i in 0..5 {
        let reply = c.send_message(req(send(&format!("task {i}")))).await;
        created.push(task_of(reply.unwrap().into_inner()).id);
    }
    let (mut listed, mut pages, mut token) = (Vec::new(), Vec::new(), String::new());
    loop {
        let page = c
            .list_tasks(req(pb::ListTasksRequest {
                page_size: Some(2),
                page_token: token.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        pages.push(page.tasks.len());
        listed.extend(page.tasks.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        assert!(pages.len() < 10, "the pages never end");
    }
    assert_eq!(pages, [2, 2, 1]);
    created.sort();
    listed.sort();
    assert_eq!(listed, created);
    // A token that is none of the server's.
    let bad = c
        .list_tasks(req(pb::ListTasksRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        code_and_reason(&bad),
        (Code::InvalidArgument, "INVALID_PARAMS".into())
    );
    s.stop().await;
}

#[tokio::test]
async fn cancel_task_cancels_a_running_task_and_refuses_a_finished_one() {
    let s = script_server().await;
    let mut c = client(&s.url).await;
    let id = slow_task(&mut c).await;
    let canceled = c.cancel_task(req(cancel(&id))).await.unwrap().into_inner();
    assert_eq!(canceled.id, id);
    assert_eq!(state(&canceled), TaskState::Canceled);
    let again = c.cancel_task(req(cancel(&id))).await.unwrap_err();
    assert_eq!(
        code_and_reason(&again),
        (Code::FailedPrecondition, "TASK_NOT_CANCELABLE".into())
    );
    let done = task_of(c.send_message(req(send("x"))).await.unwrap().into_inner());
    let refused = c.cancel_task(req(cancel(&done.id))).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    s.stop().await;
}

#[tokio::test]
async fn subscribe_to_task_follows_a_running_task_to_its_end() {
    let s = script_server().await;
    let mut c = client(&s.url).await;
    let id = slow_task(&mut c).await;
    let mut events = c
        .subscribe_to_task(req(pb::SubscribeToTaskRequest {
            id: id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let first = events.next().await.unwrap().unwrap().payload;
    match first {
        Some(stream_response::Payload::Task(t)) => {
            assert_eq!(t.id, id);
            assert_eq!(state(&t), TaskState::Working);
        }
        other => panic!("the first event is not the task: {other:?}"),
    }
    c.cancel_task(req(cancel(&id))).await.unwrap();
    let mut last = None;
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("the stream ends after the task does")
    {
        last = event.unwrap().payload;
    }
    match last {
        Some(stream_response::Payload::StatusUpdate(u)) => {
            assert_eq!(u.status.unwrap().state, TaskState::Canceled as i32);
        }
        other => panic!("the last event is not the cancellation: {other:?}"),
    }
    // A finished task has nothing to follow; an unknown one is not found.
    let finished = c
        .subscribe_to_task(req(pb::SubscribeToTaskRequest {
            id: id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        code_and_reason(&finished),
        (Code::Unimplemented, "UNSUPPORTED_OPERATION".into())
    );
    let unknown = c
        .subscribe_to_task(req(pb::SubscribeToTaskRequest {
            id: "no-such-task".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(code_and_reason(&unknown).0, Code::NotFound);
    s.stop().await;
}

#[tokio::test]
async fn errors_are_statuses_with_their_error_info_and_are_counted() {
    let s = script_server().await;
    let mut c = client(&s.url).await;

    let missing = c
        .get_task(req(get_task("no-such-task", None)))
        .await
        .unwrap_err();
    assert_eq!(
        code_and_reason(&missing),
        (Code::NotFound, "TASK_NOT_FOUND".into())
    );
    assert!(missing.message().contains("no-such-task"), "{missing:?}");

    let prometheus = abacus::telemetry::prometheus().expect("no other recorder in this test");
    let counted = || {
        sample(
            &prometheus.render(),
            "a2a_errors_total",
            "error_type",
            "VERSION_NOT_SUPPORTED",
        )
        .unwrap_or(0.0)
    };
    let before = counted();
    let mut wrong = Request::new(send("6 * 7"));
    wrong
        .metadata_mut()
        .insert("a2a-version", MetadataValue::from_static("99.0"));
    let wrong = c.send_message(wrong).await.unwrap_err();
    assert_eq!(
        code_and_reason(&wrong),
        (Code::Unimplemented, "VERSION_NOT_SUPPORTED".into())
    );
    // No version at all means 0.3, which this server does not speak.
    let unversioned = c
        .get_task(Request::new(get_task("t", None)))
        .await
        .unwrap_err();
    assert_eq!(code_and_reason(&unversioned).0, Code::Unimplemented);
    assert!(counted() >= before + 2.0);

    let push = c
        .create_task_push_notification_config(req(pb::TaskPushNotificationConfig {
            task_id: "t".into(),
            url: "https://example.com/hook".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        code_and_reason(&push),
        (
            Code::Unimplemented,
            "PUSH_NOTIFICATION_NOT_SUPPORTED".into()
        )
    );
    let listed = c
        .list_task_push_notification_configs(req(pb::ListTaskPushNotificationConfigsRequest {
            task_id: "t".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(code_and_reason(&listed).0, Code::Unimplemented);

    // No message to send; no extended card on this agent.
    let empty = c
        .send_message(req(pb::SendMessageRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(
        code_and_reason(&empty),
        (Code::InvalidArgument, "INVALID_PARAMS".into())
    );
    let card = c
        .get_extended_agent_card(req(pb::GetExtendedAgentCardRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(
        code_and_reason(&card),
        (Code::Unimplemented, "UNSUPPORTED_OPERATION".into())
    );

    // An rpc the service does not have, even over HTTP/1.1: a trailers-only
    // answer in the headers.
    let (status, headers, body) = raw_request(
        &format!("{}lf.a2a.v1.A2AService/Nope", s.url),
        "POST",
        Bytes::new(),
        &[("content-type", "application/grpc"), ("a2a-version", "1.0")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers["grpc-status"],
        (Code::Unimplemented as i32).to_string()
    );
    assert!(headers.contains_key("grpc-status-details-bin"));
    assert!(body.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn a_message_above_the_body_limit_is_refused() {
    let opts = abacus::http::HttpOptions {
        max_body_bytes: 1024,
        ..Default::default()
    };
    let s = TestServer::start_with(Script, CardBuilder::new("s", "t").build(), opts).await;
    let mut c = client(&s.url).await;
    let big = c
        .send_message(req(send(&"x".repeat(4096))))
        .await
        .unwrap_err();
    assert_eq!(big.code(), Code::OutOfRange, "{big:?}");
    assert!(c.send_message(req(send("small"))).await.is_ok());
    s.stop().await;
}

#[tokio::test]
async fn an_expired_grpc_timeout_is_deadline_exceeded() {
    let s = script_server().await;
    // A client without a deadline of its own (tonic's channel enforces
    // grpc-timeout locally too): what comes back is the server's answer.
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<tonic::body::Body>();
    let origin: http::Uri = s.url.trim_end_matches('/').parse().unwrap();
    let mut c = A2aServiceClient::with_origin(http, origin);
    let mut slow = req(send("slow"));
    slow.metadata_mut()
        .insert("grpc-timeout", MetadataValue::from_static("200m"));
    let expired = tokio::time::timeout(Duration::from_secs(20), c.send_message(slow))
        .await
        .expect("the server answers within its deadline")
        .unwrap_err();
    assert_eq!(
        code_and_reason(&expired),
        (Code::DeadlineExceeded, "DEADLINE_EXCEEDED".into())
    );
    // A deadline that leaves time is no error.
    let mut quick = req(send("quick"));
    quick
        .metadata_mut()
        .insert("grpc-timeout", MetadataValue::from_static("20S"));
    assert!(c.send_message(quick).await.is_ok());
    s.stop().await;
}

/// A client that sends the first bytes of a request message and then
/// nothing more gets a status once the body timeout passes: it cannot hold
/// the call (and the stack) open.
#[tokio::test]
async fn a_request_message_that_stops_arriving_is_refused_in_bounded_time() {
    let opts = abacus::http::HttpOptions {
        body_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let s = TestServer::start_with(Script, CardBuilder::new("s", "t").build(), opts).await;
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::StreamBody<
            futures_util::stream::BoxStream<
                'static,
                Result<http_body::Frame<Bytes>, std::io::Error>,
            >,
        >>();
    // A gRPC frame header announcing 100 bytes, then 10 of them, then silence.
    let mut first = vec![0u8, 0, 0, 0, 100];
    first.extend_from_slice(&[0u8; 10]);
    let frames =
        futures_util::stream::once(async move { Ok(http_body::Frame::data(Bytes::from(first))) })
            .chain(futures_util::stream::pending())
            .boxed();
    let req = http::Request::post(format!("{}lf.a2a.v1.A2AService/SendMessage", s.url))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("a2a-version", "1.0")
        .body(http_body_util::StreamBody::new(frames))
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(20), async {
        let resp = http.request(req).await.unwrap();
        let headers = resp.headers().clone();
        let trailers = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .ok()
            .and_then(|c| c.trailers().cloned());
        let status = headers
            .get("grpc-status")
            .or_else(|| trailers.as_ref().and_then(|t| t.get("grpc-status")))
            .map(|v| v.to_str().unwrap().to_string());
        status
    })
    .await
    .expect("the server answers once the body timeout passes");
    let code = answer.expect("a grpc-status");
    assert_ne!(code, "0", "a trickled request must not succeed");
    // The server still answers others.
    let mut c = client(&s.url).await;
    assert!(c.send_message(req_of("after")).await.is_ok());
    s.stop().await;
}

fn req_of(text: &str) -> Request<pb::SendMessageRequest> {
    req(send(text))
}

/// `Script` served by `abacus::Server` with `config_of` applied to a memory
/// store config: the API URL and the sender that stops it.
async fn serve_script(
    config_of: impl FnOnce(&mut abacus::config::Config),
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let (listener, mut config) = bound_memory_config().await;
    config_of(&mut config);
    let url = format!("http://127.0.0.1:{}/", config.port);
    let card = CardBuilder::new("script", "test agent").build();
    let server = abacus::Server::new(Script, card).config(config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_on(listener, async move {
        let _ = stopped.await;
    }));
    for _ in 0..100 {
        if get(&format!("{url}health")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (url, stop)
}

#[tokio::test]
async fn api_keys_guard_grpc_calls_and_a_task_stays_its_owners() {
    let (url, stop) = serve_script(|c| {
        c.api_keys = Some("alice:k-alice, bob:k-bob".into());
        c.bearer_tokens = Some("ci:t0ken".into());
    })
    .await;
    let mut c = client(&url).await;
    let refused = c.send_message(req(send("hi"))).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("X-API-Key"), "{refused:?}");
    assert_eq!(
        refused.metadata().get("www-authenticate").unwrap(),
        "ApiKey header=\"x-api-key\", Bearer"
    );
    let wrong = c.send_message(keyed(send("hi"), "k-mallory")).await;
    assert_eq!(wrong.unwrap_err().code(), Code::Unauthenticated);

    let task = task_of(
        c.send_message(keyed(send("hi"), "k-alice"))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(state(&task), TaskState::Completed);
    // A bearer token travels in `authorization`, as over HTTP.
    let mut bearer = req(get_task(&task.id, None));
    bearer
        .metadata_mut()
        .insert("authorization", MetadataValue::from_static("Bearer t0ken"));
    let ci = c.get_task(bearer).await.unwrap_err();
    assert_eq!(
        ci.code(),
        Code::NotFound,
        "authenticated, but not alice: {ci:?}"
    );
    let mine = c.get_task(keyed(get_task(&task.id, None), "k-alice")).await;
    assert_eq!(mine.unwrap().into_inner().id, task.id);
    // Bob gets what a task that does not exist gets.
    let theirs = c
        .get_task(keyed(get_task(&task.id, None), "k-bob"))
        .await
        .unwrap_err();
    assert_eq!(
        code_and_reason(&theirs),
        (Code::NotFound, "TASK_NOT_FOUND".into())
    );
    let listed = c
        .list_tasks(keyed(pb::ListTasksRequest::default(), "k-bob"))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.tasks.is_empty(), "{listed:?}");
    let _ = stop.send(());
}

#[tokio::test]
async fn grpc_port_serves_on_its_own_port_with_the_same_authentication() {
    let (url, stop) = serve_script(|c| {
        c.grpc_port = Some(0);
        c.api_keys = Some("alice:k-alice".into());
    })
    .await;
    let (_, card) = get(&format!("{url}.well-known/agent-card.json"))
        .await
        .unwrap();
    let card: Value = serde_json::from_str(&card).unwrap();
    let target = card["supportedInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["protocolBinding"] == "GRPC")
        .and_then(|i| i["url"].as_str())
        .unwrap_or_else(|| panic!("no GRPC interface: {card}"))
        .to_string();
    let api = url.trim_end_matches('/').trim_start_matches("http://");
    assert!(target.starts_with("127.0.0.1:"), "{target}");
    assert_ne!(target, api, "the card names the gRPC port");

    let mut c = client(&format!("http://{target}")).await;
    let refused = c.send_message(req(send("hi"))).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let task = task_of(
        c.send_message(keyed(send("hi"), "k-alice"))
            .await
            .unwrap()
            .into_inner(),
    );
    // The API port serves gRPC as well, the same tasks.
    let mut on_api = client(&url).await;
    let got = on_api
        .get_task(keyed(get_task(&task.id, None), "k-alice"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.id, task.id);
    let _ = stop.send(());
}

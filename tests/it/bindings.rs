//! The same scenarios through every binding (JSON-RPC, HTTP+JSON, gRPC),
//! so a fix in one cannot break another unseen: each test runs once per
//! binding against a real server on 127.0.0.1 and asserts the same
//! proto-JSON results and the same error reasons.

use crate::common::{eventually, raw_request, TestServer};
use crate::protocol::{script_server, ScriptAgent};
use a2a_pb::protojson as pj;
use abacus::card::CardBuilder;
use abacus::grpc::pb::{self, a2a_service_client::A2aServiceClient};
use abacus::http::{SseDecoder, SseEvent};
use abacus::protocol::Method;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;

/// An A2A error as every binding reports it: the `ErrorInfo` reason, and
/// the binding's own status (JSON-RPC code, HTTP status, gRPC code).
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    reason: String,
    status: String,
}

type Outcome = Result<Value, Failure>;
type Events = BoxStream<'static, Outcome>;

/// One binding, as a client of a [`TestServer`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire {
    JsonRpc,
    Rest,
    Grpc,
}

const WIRES: [Wire; 3] = [Wire::JsonRpc, Wire::Rest, Wire::Grpc];

/// A proto-JSON value as the protobuf message `P`, through the
/// proto-JSON-capable generated type `J` of the same message.
fn to_pb<J, P>(v: Value) -> P
where
    J: serde::de::DeserializeOwned + prost::Message,
    P: prost::Message + Default,
{
    let json: J = serde_json::from_value(v).unwrap();
    P::decode(json.encode_to_vec().as_slice()).unwrap()
}

/// A protobuf message as proto-JSON, through `J`.
fn from_pb<P: prost::Message, J: serde::Serialize + prost::Message + Default>(p: &P) -> Value {
    let json = J::decode(p.encode_to_vec().as_slice()).unwrap();
    serde_json::to_value(json).unwrap()
}

/// A gRPC status as a [`Failure`]: its `ErrorInfo` reason and code.
fn grpc_failure(status: &tonic::Status) -> Failure {
    use tonic_types::StatusExt;
    Failure {
        reason: status
            .get_details_error_info()
            .map_or("(no ErrorInfo)".into(), |i| i.reason),
        status: format!("{:?}", status.code()),
    }
}

/// A tonic request with `headers` as metadata.
fn grpc_request<T>(message: T, headers: &[(&'static str, &str)]) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    for (k, v) in headers {
        req.metadata_mut().insert(*k, v.parse().unwrap());
    }
    req
}

async fn grpc_client(s: &TestServer) -> A2aServiceClient<tonic::transport::Channel> {
    A2aServiceClient::connect(s.url.trim_end_matches('/').to_string())
        .await
        .unwrap()
}

/// The `ErrorInfo` reason among `details`.
fn reason(details: &Value) -> String {
    details
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
        .and_then(|d| d["reason"].as_str())
        .unwrap_or("(no ErrorInfo)")
        .to_string()
}

impl Wire {
    /// Calls a unary operation with its proto-JSON parameters.
    async fn call(self, s: &TestServer, method: Method, params: Value) -> Outcome {
        self.call_with(s, method, params, &[("a2a-version", "1.0")])
            .await
    }

    async fn call_with(
        self,
        s: &TestServer,
        method: Method,
        params: Value,
        headers: &[(&'static str, &str)],
    ) -> Outcome {
        match self {
            Wire::Grpc => {
                let mut client = grpc_client(s).await;
                macro_rules! unary {
                    ($rpc:ident, $req:ident, $resp:ident) => {{
                        let msg = to_pb::<pj::$req, pb::$req>(params);
                        match client.$rpc(grpc_request(msg, headers)).await {
                            Ok(r) => Ok(from_pb::<_, pj::$resp>(&r.into_inner())),
                            Err(status) => Err(grpc_failure(&status)),
                        }
                    }};
                }
                match method {
                    Method::SendMessage => {
                        unary!(send_message, SendMessageRequest, SendMessageResponse)
                    }
                    Method::GetTask => unary!(get_task, GetTaskRequest, Task),
                    Method::ListTasks => unary!(list_tasks, ListTasksRequest, ListTasksResponse),
                    Method::CancelTask => unary!(cancel_task, CancelTaskRequest, Task),
                    Method::CreateTaskPushNotificationConfig => unary!(
                        create_task_push_notification_config,
                        TaskPushNotificationConfig,
                        TaskPushNotificationConfig
                    ),
                    Method::GetTaskPushNotificationConfig => unary!(
                        get_task_push_notification_config,
                        GetTaskPushNotificationConfigRequest,
                        TaskPushNotificationConfig
                    ),
                    Method::ListTaskPushNotificationConfigs => unary!(
                        list_task_push_notification_configs,
                        ListTaskPushNotificationConfigsRequest,
                        ListTaskPushNotificationConfigsResponse
                    ),
                    Method::DeleteTaskPushNotificationConfig => {
                        let msg = to_pb::<
                            pj::DeleteTaskPushNotificationConfigRequest,
                            pb::DeleteTaskPushNotificationConfigRequest,
                        >(params);
                        match client
                            .delete_task_push_notification_config(grpc_request(msg, headers))
                            .await
                        {
                            Ok(_) => Ok(json!({})),
                            Err(status) => Err(grpc_failure(&status)),
                        }
                    }
                    Method::GetExtendedAgentCard => {
                        unary!(
                            get_extended_agent_card,
                            GetExtendedAgentCardRequest,
                            AgentCard
                        )
                    }
                    other => panic!("no gRPC call written for {other}"),
                }
            }
            Wire::JsonRpc => {
                let body =
                    json!({"jsonrpc": "2.0", "id": 1, "method": method.name(), "params": params});
                let mut all = vec![("content-type", "application/json")];
                all.extend_from_slice(headers);
                let (status, v) = s.post_raw(body.to_string(), &all).await;
                assert_eq!(status, 200, "{v}");
                match v.get("error") {
                    Some(e) => Err(Failure {
                        reason: reason(&e["data"]),
                        status: e["code"].to_string(),
                    }),
                    None => Ok(v["result"].clone()),
                }
            }
            Wire::Rest => {
                let (verb, path, body) = rest_route(method, &params);
                let mut all = vec![("content-type", "application/json")];
                all.extend_from_slice(headers);
                let url = format!("{}{}", s.url.trim_end_matches('/'), path);
                let (status, _, bytes) = raw_request(&url, verb, body, &all).await;
                let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if status >= 400 {
                    assert_eq!(v["error"]["code"], status, "{v}");
                    Err(Failure {
                        reason: reason(&v["error"]["details"]),
                        status: status.to_string(),
                    })
                } else {
                    assert_eq!(status, 200, "{v}");
                    Ok(v)
                }
            }
        }
    }

    /// Calls a streaming operation; an error before the stream is its only item.
    async fn stream(self, s: &TestServer, method: Method, params: Value) -> Events {
        match self {
            Wire::Grpc => {
                let mut client = grpc_client(s).await;
                let headers = [("a2a-version", "1.0")];
                let started = match method {
                    Method::SendStreamingMessage => {
                        let msg = to_pb::<pj::SendMessageRequest, pb::SendMessageRequest>(params);
                        client
                            .send_streaming_message(grpc_request(msg, &headers))
                            .await
                    }
                    Method::SubscribeToTask => {
                        let msg =
                            to_pb::<pj::SubscribeToTaskRequest, pb::SubscribeToTaskRequest>(params);
                        client.subscribe_to_task(grpc_request(msg, &headers)).await
                    }
                    other => panic!("{other} does not stream"),
                };
                match started {
                    Err(status) => stream::once(async move { Err(grpc_failure(&status)) }).boxed(),
                    Ok(events) => events
                        .into_inner()
                        .map(|item| match item {
                            Ok(event) => Ok(from_pb::<_, pj::StreamResponse>(&event)),
                            Err(status) => Err(grpc_failure(&status)),
                        })
                        .boxed(),
                }
            }
            Wire::JsonRpc => {
                let body =
                    json!({"jsonrpc": "2.0", "id": 1, "method": method.name(), "params": params});
                sse(
                    &s.url,
                    "POST",
                    "",
                    Bytes::from(body.to_string()),
                    |v: Value| match v.get("error") {
                        Some(e) => Err(Failure {
                            reason: reason(&e["data"]),
                            status: e["code"].to_string(),
                        }),
                        None => Ok(v["result"].clone()),
                    },
                )
                .await
            }
            Wire::Rest => {
                let (verb, path, body) = rest_route(method, &params);
                sse(
                    s.url.trim_end_matches('/'),
                    verb,
                    &path,
                    body,
                    |v: Value| match v.get("error") {
                        Some(e) => Err(Failure {
                            reason: reason(&e["details"]),
                            status: e["code"].to_string(),
                        }),
                        None => Ok(v),
                    },
                )
                .await
            }
        }
    }
}

/// The HTTP+JSON route of `method` with `params`: verb, path and query, body.
fn rest_route(method: Method, params: &Value) -> (&'static str, String, Bytes) {
    let id = params["id"].as_str().unwrap_or("");
    let query = |keys: &[&str]| {
        let pairs: Vec<String> = keys
            .iter()
            .filter_map(|k| {
                let v = params.get(*k)?;
                let text = v
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string());
                Some(format!("{k}={}", text.replace(' ', "%20")))
            })
            .collect();
        if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", pairs.join("&"))
        }
    };
    let body = || Bytes::from(params.to_string());
    match method {
        Method::SendMessage => ("POST", "/message:send".into(), body()),
        Method::SendStreamingMessage => ("POST", "/message:stream".into(), body()),
        Method::GetTask => (
            "GET",
            format!("/tasks/{id}{}", query(&["historyLength"])),
            Bytes::new(),
        ),
        Method::ListTasks => (
            "GET",
            format!(
                "/tasks{}",
                query(&[
                    "contextId",
                    "status",
                    "pageSize",
                    "pageToken",
                    "historyLength",
                    "includeArtifacts"
                ])
            ),
            Bytes::new(),
        ),
        Method::CancelTask => ("POST", format!("/tasks/{id}:cancel"), Bytes::new()),
        Method::SubscribeToTask => ("GET", format!("/tasks/{id}:subscribe"), Bytes::new()),
        Method::CreateTaskPushNotificationConfig => {
            let task = params["taskId"].as_str().unwrap_or("");
            (
                "POST",
                format!("/tasks/{task}/pushNotificationConfigs"),
                body(),
            )
        }
        Method::GetTaskPushNotificationConfig
        | Method::ListTaskPushNotificationConfigs
        | Method::DeleteTaskPushNotificationConfig => {
            let task = params["taskId"].as_str().unwrap_or("");
            let verb = match method {
                Method::DeleteTaskPushNotificationConfig => "DELETE",
                _ => "GET",
            };
            let path = match params["id"].as_str() {
                Some(config) => format!("/tasks/{task}/pushNotificationConfigs/{config}"),
                None => format!("/tasks/{task}/pushNotificationConfigs"),
            };
            (verb, path, Bytes::new())
        }
        Method::GetExtendedAgentCard => ("GET", "/extendedAgentCard".into(), Bytes::new()),
    }
}

/// A server-sent event stream (or the error reply instead of one), each
/// event's `data` mapped by `each`.
async fn sse(
    base: &str,
    verb: &str,
    path: &str,
    body: Bytes,
    each: fn(Value) -> Outcome,
) -> Events {
    let req = http::Request::builder()
        .method(verb)
        .uri(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header("a2a-version", "1.0")
        .body(Full::new(body))
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let is_sse = resp.headers()["content-type"]
        .as_bytes()
        .starts_with(b"text/event-stream");
    let mut body = resp.into_body();
    if !is_sse {
        let bytes = body.collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let item = match each(v.clone()) {
            Err(f) => Err(f),
            Ok(_) => panic!("HTTP {status} without a stream: {v}"),
        };
        return stream::once(async move { item }).boxed();
    }
    let mut decoder = SseDecoder::new();
    let mut ready: VecDeque<SseEvent> = VecDeque::new();
    stream::poll_fn(move |cx| loop {
        if let Some(ev) = ready.pop_front() {
            let v: Value = serde_json::from_str(&ev.data).unwrap();
            return std::task::Poll::Ready(Some(each(v)));
        }
        match futures_util::ready!(http_body::Body::poll_frame(
            std::pin::Pin::new(&mut body),
            cx
        )) {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let mut out = Vec::new();
                    decoder.feed(&data, &mut out).unwrap();
                    ready.extend(out);
                }
            }
            Some(Err(e)) => panic!("stream broke: {e}"),
            None => return std::task::Poll::Ready(None),
        }
    })
    .boxed()
}

fn message(id: &str, text: &str) -> Value {
    json!({"message": {"messageId": id, "role": "ROLE_USER", "parts": [{"text": text}]}})
}

fn unique(wire: Wire, name: &str) -> String {
    format!("{name}-{wire:?}-{}", uuid::Uuid::new_v4())
}

/// The one key of a `StreamResponse` or `SendMessageResponse`.
fn kind(v: &Value) -> String {
    v.as_object().unwrap().keys().next().unwrap().clone()
}

/// A task the agent keeps working on until it is canceled; returns its id.
async fn slow_task(wire: Wire, s: &TestServer) -> String {
    let mut params = message(&unique(wire, "slow"), "slow");
    params["configuration"] = json!({"returnImmediately": true});
    let r = wire.call(s, Method::SendMessage, params).await.unwrap();
    r["task"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn send_answers_a_task_or_a_message() {
    let s = script_server().await;
    for wire in WIRES {
        let r = wire
            .call(
                &s,
                Method::SendMessage,
                message(&unique(wire, "m"), "hello"),
            )
            .await
            .unwrap();
        assert_eq!(
            r["task"]["status"]["state"], "TASK_STATE_COMPLETED",
            "{wire:?} {r}"
        );
        assert_eq!(
            r["task"]["artifacts"][0]["parts"][0]["text"], "echo: hello",
            "{wire:?}"
        );
        let r = wire
            .call(
                &s,
                Method::SendMessage,
                message(&unique(wire, "m"), "reply"),
            )
            .await
            .unwrap();
        assert_eq!(r["message"]["parts"][0]["text"], "direct", "{wire:?} {r}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_stream_has_the_task_then_its_updates_to_the_terminal_state() {
    let s = script_server().await;
    for wire in WIRES {
        let events: Vec<Value> = wire
            .stream(
                &s,
                Method::SendStreamingMessage,
                message(&unique(wire, "st"), "hi"),
            )
            .await
            .map(|e| e.unwrap())
            .collect()
            .await;
        let kinds: Vec<String> = events.iter().map(kind).collect();
        assert_eq!(
            kinds,
            ["task", "statusUpdate", "artifactUpdate", "statusUpdate"],
            "{wire:?}"
        );
        assert_eq!(
            events[3]["statusUpdate"]["status"]["state"],
            "TASK_STATE_COMPLETED"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn get_task_honours_history_length() {
    let s = script_server().await;
    for wire in WIRES {
        let r = wire
            .call(
                &s,
                Method::SendMessage,
                message(&unique(wire, "g"), "hello"),
            )
            .await
            .unwrap();
        let id = r["task"]["id"].as_str().unwrap();
        let full = wire
            .call(&s, Method::GetTask, json!({"id": id}))
            .await
            .unwrap();
        assert_eq!(full["id"], id, "{wire:?}");
        assert!(
            !full["history"].as_array().unwrap().is_empty(),
            "{wire:?} {full}"
        );
        let none = wire
            .call(&s, Method::GetTask, json!({"id": id, "historyLength": 0}))
            .await
            .unwrap();
        assert!(
            none.get("history")
                .is_none_or(|h| h.as_array().unwrap().is_empty()),
            "{wire:?} {none}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn list_tasks_filters_by_context_and_pages() {
    let s = script_server().await;
    for wire in WIRES {
        let ctx = unique(wire, "ctx");
        for i in 0..5 {
            let mut params = message(&unique(wire, &format!("l{i}")), "x");
            params["message"]["contextId"] = json!(ctx);
            wire.call(&s, Method::SendMessage, params).await.unwrap();
        }
        let p1 = wire
            .call(
                &s,
                Method::ListTasks,
                json!({"contextId": ctx, "pageSize": 3}),
            )
            .await
            .unwrap();
        assert_eq!(p1["totalSize"], 5, "{wire:?} {p1}");
        assert_eq!(p1["tasks"].as_array().unwrap().len(), 3, "{wire:?}");
        let token = p1["nextPageToken"].as_str().unwrap().to_string();
        assert!(!token.is_empty());
        let p2 = wire
            .call(
                &s,
                Method::ListTasks,
                json!({"contextId": ctx, "pageSize": 3, "pageToken": token}),
            )
            .await
            .unwrap();
        assert_eq!(p2["tasks"].as_array().unwrap().len(), 2, "{wire:?} {p2}");
        let completed = wire
            .call(
                &s,
                Method::ListTasks,
                json!({"contextId": ctx, "status": "TASK_STATE_WORKING"}),
            )
            .await
            .unwrap();
        assert_eq!(
            completed["tasks"].as_array().map_or(0, Vec::len),
            0,
            "{wire:?} {completed}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn cancel_then_cancel_again_is_not_cancelable() {
    let s = script_server().await;
    for wire in WIRES {
        let id = slow_task(wire, &s).await;
        let c = wire
            .call(&s, Method::CancelTask, json!({"id": id}))
            .await
            .unwrap();
        assert_eq!(c["status"]["state"], "TASK_STATE_CANCELED", "{wire:?} {c}");
        let again = wire
            .call(&s, Method::CancelTask, json!({"id": id}))
            .await
            .unwrap_err();
        assert_eq!(again.reason, "TASK_NOT_CANCELABLE", "{wire:?}");
    }
    eventually(|| s.core.running_tasks() == 0).await;
    assert_eq!(s.core.running_tasks(), 0);
    s.stop().await;
}

#[tokio::test]
async fn subscribe_follows_a_running_task_until_it_is_canceled() {
    let s = script_server().await;
    for wire in WIRES {
        let id = slow_task(wire, &s).await;
        let mut events = wire
            .stream(&s, Method::SubscribeToTask, json!({"id": id}))
            .await;
        let first = events.next().await.unwrap().unwrap();
        assert_eq!(first["task"]["id"], id.as_str(), "{wire:?} {first}");
        wire.call(&s, Method::CancelTask, json!({"id": id}))
            .await
            .unwrap();
        let mut last = Value::Null;
        while let Some(ev) = events.next().await {
            last = ev.unwrap();
        }
        assert_eq!(
            last["statusUpdate"]["status"]["state"], "TASK_STATE_CANCELED",
            "{wire:?} {last}"
        );
        let done = wire
            .stream(&s, Method::SubscribeToTask, json!({"id": id}))
            .await;
        let only: Vec<Outcome> = done.collect().await;
        assert_eq!(only.len(), 1, "{wire:?}");
        assert_eq!(
            only[0].as_ref().unwrap_err().reason,
            "UNSUPPORTED_OPERATION",
            "{wire:?}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn errors_carry_the_same_reason_on_every_binding() {
    let s = script_server().await;
    for wire in WIRES {
        // The reason, then the status on JSON-RPC, HTTP+JSON and gRPC.
        let cases: [(Method, Value, &str, [&str; 3]); 5] = [
            (
                Method::GetTask,
                json!({"id": "no-such-task"}),
                "TASK_NOT_FOUND",
                ["-32001", "404", "NotFound"],
            ),
            (
                Method::CancelTask,
                json!({"id": "no-such-task"}),
                "TASK_NOT_FOUND",
                ["-32001", "404", "NotFound"],
            ),
            (
                Method::CreateTaskPushNotificationConfig,
                json!({"taskId": "t", "url": "https://example.com/hook"}),
                "PUSH_NOTIFICATION_NOT_SUPPORTED",
                ["-32003", "400", "Unimplemented"],
            ),
            (
                Method::SendMessage,
                json!({}),
                "INVALID_PARAMS",
                ["-32602", "400", "InvalidArgument"],
            ),
            (
                Method::SendMessage,
                json!({"message": {"role": "ROLE_USER", "parts": [{"text": "no id"}]}}),
                "INVALID_PARAMS",
                ["-32602", "400", "InvalidArgument"],
            ),
        ];
        for (method, params, want, statuses) in cases {
            let e = wire.call(&s, method, params).await.unwrap_err();
            let status = statuses[wire as usize];
            assert_eq!(
                (e.reason.as_str(), e.status.as_str()),
                (want, status),
                "{wire:?} {method}"
            );
        }
        let old = wire
            .call_with(
                &s,
                Method::GetTask,
                json!({"id": "x"}),
                &[("a2a-version", "0.3")],
            )
            .await
            .unwrap_err();
        assert_eq!(old.reason, "VERSION_NOT_SUPPORTED", "{wire:?}");
        let unsigned = wire
            .call(&s, Method::GetExtendedAgentCard, json!({}))
            .await
            .unwrap_err();
        assert_eq!(unsigned.reason, "UNSUPPORTED_OPERATION", "{wire:?}");
    }
    s.stop().await;
}

/// What only the HTTP+JSON binding has: tenant routes, content types,
/// both verbs of subscribe, and its routes in the 404/405 table.
#[tokio::test]
async fn rest_routes_tenants_and_content_types() {
    let s = script_server().await;
    let base = s.url.trim_end_matches('/').to_string();
    let send = |path: &str, ctype: &'static str| {
        let url = format!("{base}{path}");
        let body = Bytes::from(message(&uuid::Uuid::new_v4().to_string(), "hello").to_string());
        async move {
            raw_request(
                &url,
                "POST",
                body,
                &[("content-type", ctype), ("a2a-version", "1.0")],
            )
            .await
        }
    };
    let (status, _, body) = send("/acme/message:send", "application/a2a+json").await;
    assert_eq!(status, 200);
    let task: Value = serde_json::from_slice(&body).unwrap();
    let id = task["task"]["id"].as_str().unwrap();
    // The tenant owns the task: the same id without it, or under another, is not found.
    let get = |path: String| async move {
        raw_request(&path, "GET", Bytes::new(), &[("a2a-version", "1.0")])
            .await
            .0
    };
    assert_eq!(get(format!("{base}/acme/tasks/{id}")).await, 200);
    assert_eq!(get(format!("{base}/tasks/{id}")).await, 404);
    assert_eq!(get(format!("{base}/other/tasks/{id}")).await, 404);
    let (status, headers, body) = send("/message:send", "text/plain").await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, headers["content-type"].to_str().unwrap()),
        (415, "application/json")
    );
    assert_eq!(reason(&v["error"]["details"]), "CONTENT_TYPE_NOT_SUPPORTED");
    // Subscribe takes GET and POST; a finished task's stream is refused the same way.
    for verb in ["GET", "POST"] {
        let (status, _, _) = raw_request(
            &format!("{base}/acme/tasks/{id}:subscribe"),
            verb,
            Bytes::new(),
            &[("a2a-version", "1.0")],
        )
        .await;
        assert_eq!(status, 400, "{verb}");
    }
    let (status, headers, _) = raw_request(
        &format!("{base}/tasks/{id}:cancel"),
        "GET",
        Bytes::new(),
        &[],
    )
    .await;
    assert_eq!((status, headers["allow"].to_str().unwrap()), (405, "POST"));
    let (status, _, _) =
        raw_request(&format!("{base}/message:nope"), "POST", Bytes::new(), &[]).await;
    assert_eq!(status, 404);
    // Malformed JSON and a body that is not an object.
    let (status, _, body) = raw_request(
        &format!("{base}/message:send"),
        "POST",
        Bytes::from_static(b"{nope"),
        &[("content-type", "application/json"), ("a2a-version", "1.0")],
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, reason(&v["error"]["details"]).as_str()),
        (400, "PARSE_ERROR")
    );
    s.stop().await;
}

/// HTTP+JSON behind the same access control as JSON-RPC: no key is 401
/// with a challenge, each principal sees only its own tasks, the rate
/// limit answers 429 with `Retry-After`, and every request is counted
/// under its binding.
#[tokio::test]
async fn rest_has_the_same_access_control_limits_and_metrics() {
    let (listener, mut config) = crate::common::bound_memory_config().await;
    config.api_keys = Some("alice:k-alice, bob:k-bob".into());
    config.stack.rate_limit = Some("5/s".parse().unwrap());
    config.stack.rate_limit_burst = Some(4);
    let url = format!("http://127.0.0.1:{}/", config.port);
    let card = CardBuilder::new("script", "test agent").build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = abacus::Server::new(ScriptAgent, card).config(config);
    tokio::spawn(server.run_on(listener, async move {
        let _ = stopped.await;
    }));
    let base = url.trim_end_matches('/').to_string();
    let headers = |key: &'static str| {
        let mut h = vec![("content-type", "application/json"), ("a2a-version", "1.0")];
        if !key.is_empty() {
            h.push(("x-api-key", key));
        }
        h
    };
    let send = Bytes::from(message("own-1", "hello").to_string());
    let (status, head, _) = raw_request(
        &format!("{base}/message:send"),
        "POST",
        send.clone(),
        &headers(""),
    )
    .await;
    assert_eq!(status, 401);
    assert!(head.contains_key("www-authenticate"));
    let (status, _, body) = raw_request(
        &format!("{base}/message:send"),
        "POST",
        send,
        &headers("k-alice"),
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{v}");
    let id = v["task"]["id"].as_str().unwrap();
    let task_url = format!("{base}/tasks/{id}");
    let mine = raw_request(&task_url, "GET", Bytes::new(), &headers("k-alice"))
        .await
        .0;
    let theirs = raw_request(&task_url, "GET", Bytes::new(), &headers("k-bob"))
        .await
        .0;
    assert_eq!((mine, theirs), (200, 404));
    // Bob's burst: four requests pass, the next is limited.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let (status, head, _) = raw_request(
            &format!("{base}/tasks/nope"),
            "GET",
            Bytes::new(),
            &headers("k-bob"),
        )
        .await;
        statuses.push(status);
        if status == 429 {
            retry_after = head
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
    }
    assert_eq!(statuses[..3], [404, 404, 404], "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
    let (status, _, scrape) = raw_request(
        &format!("{base}/metrics"),
        "GET",
        Bytes::new(),
        &headers("k-alice"),
    )
    .await;
    let scrape = String::from_utf8_lossy(&scrape);
    let rest_requests: f64 = scrape
        .lines()
        .filter(|l| l.starts_with("a2a_requests_total{") && l.contains("binding=\"rest\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(rest_requests >= 5.0, "{status} {scrape}");
    let _ = stop.send(());
}

#[tokio::test]
async fn push_configs_and_deliveries_on_every_binding() {
    use crate::push::{loopback_settings, push_server, send_with_push, Receiver};
    for wire in WIRES {
        let receiver = Receiver::ok().await;
        let (s, _) = push_server(loopback_settings()).await;
        // A config in the message: the task's first event is delivered.
        let r = wire
            .call(
                &s,
                Method::SendMessage,
                send_with_push("ask", &receiver.url(), None),
            )
            .await
            .unwrap();
        let task = r["task"]["id"].as_str().unwrap().to_string();
        let got = receiver.wait_delivered(1, Duration::from_secs(10)).await;
        assert_eq!(got[0].kind(), "TASK_STATE_INPUT_REQUIRED", "{wire:?}");
        assert_eq!(
            got[0].header("authorization"),
            "Bearer cred-456",
            "{wire:?}"
        );
        // Its id defaults to the task id.
        let first = json!({"taskId": task, "id": task});
        let c = wire
            .call(&s, Method::GetTaskPushNotificationConfig, first.clone())
            .await
            .unwrap();
        assert_eq!(c["url"], receiver.url(), "{wire:?}: {c}");
        // A second one, listed, deleted (twice), gone.
        let second = json!({"taskId": task, "id": "second", "url": receiver.url(), "token": "t2"});
        let c = wire
            .call(&s, Method::CreateTaskPushNotificationConfig, second)
            .await
            .unwrap();
        assert_eq!(
            (c["id"].as_str(), c["taskId"].as_str()),
            (Some("second"), Some(task.as_str())),
            "{wire:?}: {c}"
        );
        let l = wire
            .call(
                &s,
                Method::ListTaskPushNotificationConfigs,
                json!({"taskId": task}),
            )
            .await
            .unwrap();
        let ids: Vec<_> = l["configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [task.as_str(), "second"], "{wire:?}");
        let del = json!({"taskId": task, "id": "second"});
        for _ in 0..2 {
            wire.call(&s, Method::DeleteTaskPushNotificationConfig, del.clone())
                .await
                .unwrap();
        }
        let gone = wire
            .call(&s, Method::GetTaskPushNotificationConfig, del)
            .await
            .unwrap_err();
        assert_eq!(gone.reason, "TASK_NOT_FOUND", "{wire:?}");
        let missing = wire
            .call(
                &s,
                Method::ListTaskPushNotificationConfigs,
                json!({"taskId": "no-such-task"}),
            )
            .await
            .unwrap_err();
        assert_eq!(missing.reason, "TASK_NOT_FOUND", "{wire:?}");
        // The rest of the task reaches the remaining config, in order.
        let go = json!({"message": {"messageId": uuid::Uuid::new_v4().to_string(), "role": "ROLE_USER", "taskId": task, "parts": [{"text": "go"}]}});
        wire.call(&s, Method::SendMessage, go).await.unwrap();
        let got = receiver.wait_delivered(4, Duration::from_secs(10)).await;
        let kinds: Vec<_> = got.iter().map(|r| r.kind()).collect();
        assert_eq!(
            kinds,
            [
                "TASK_STATE_INPUT_REQUIRED",
                "TASK_STATE_WORKING",
                "artifact",
                "TASK_STATE_COMPLETED"
            ],
            "{wire:?}"
        );
        s.stop().await;
    }
}

//! Every JSON-RPC method against a real server on 127.0.0.1, and a table of
//! bad inputs with the exact error each must get.

use crate::common::{
    bound_memory_config, eventually, raw_request, rpc, send_body, task_state, texts, TestServer,
};
use abacus::agent::{Agent, RequestContext, TaskUpdater};
use abacus::card::CardBuilder;
use abacus::client::ClientError;
use abacus::protocol::types::{A2AError, Part};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use serde_json::{json, Value};

/// Behaviour chosen by the first word of the text (`slow`, `ask`, `reply`,
/// anything else: an artifact echoing it); the cross-binding tests use it too.
pub(crate) struct ScriptAgent;

#[async_trait::async_trait]
impl Agent for ScriptAgent {
    async fn execute(&self, ctx: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        let text = ctx.text();
        match text.split_whitespace().next().unwrap_or("") {
            "slow" => {
                up.start_work().await?;
                ctx.cancelled().await;
                Ok(())
            }
            "ask" => {
                up.require_input(Some(up.agent_message(vec![Part::text("more?")])))
                    .await
            }
            "reply" => up.reply(up.agent_message(vec![Part::text("direct")])).await,
            _ => {
                up.start_work().await?;
                up.add_artifact(vec![Part::text(format!("echo: {text}"))])
                    .await?;
                up.complete(None).await
            }
        }
    }
}

pub(crate) async fn script_server() -> TestServer {
    TestServer::start(
        ScriptAgent,
        CardBuilder::new("script", "test agent").build(),
    )
    .await
}

/// A task the agent keeps working on until it is canceled; returns its id.
async fn start_slow_task(s: &TestServer, message_id: &str) -> String {
    let body = json!({"message": {"messageId": message_id, "role": "ROLE_USER", "parts": [{"text": "slow"}]},
                      "configuration": {"returnImmediately": true}});
    let (_, r) = s.post_json(&rpc("SendMessage", body)).await;
    r["result"]["task"]["id"].as_str().unwrap().to_string()
}

type Events = BoxStream<'static, Result<Value, ClientError>>;

/// A slow task (see [`start_slow_task`]) and a SubscribeToTask stream of it.
async fn subscribed_slow_task(s: &TestServer, message_id: &str) -> (String, Events) {
    let id = start_slow_task(s, message_id).await;
    let events = s
        .client
        .stream("SubscribeToTask", json!({"id": id}))
        .await
        .unwrap();
    (id, events)
}

async fn completed_task(s: &TestServer) -> String {
    let (_, r) = s.post_json(&send_body("SendMessage", "hello")).await;
    assert_eq!(task_state(&r), "TASK_STATE_COMPLETED", "{r}");
    r["result"]["task"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn send_message_returns_completed_task_with_artifact_and_history() {
    let s = script_server().await;
    let (status, r) = s.post_json(&send_body("SendMessage", "hello")).await;
    assert_eq!(status, 200);
    assert_eq!(r["jsonrpc"], "2.0");
    assert_eq!(r["id"], 1);
    let task = &r["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED");
    assert_eq!(task["artifacts"][0]["parts"][0]["text"], "echo: hello");
    assert_eq!(task["history"][0]["role"], "ROLE_USER");
    s.stop().await;
}

#[tokio::test]
async fn direct_reply_is_a_message() {
    let s = script_server().await;
    let (_, r) = s.post_json(&send_body("SendMessage", "reply")).await;
    assert_eq!(r["result"]["message"]["role"], "ROLE_AGENT", "{r}");
    assert_eq!(r["result"]["message"]["parts"][0]["text"], "direct");
    s.stop().await;
}

#[tokio::test]
async fn get_task_honours_history_length() {
    let s = script_server().await;
    let id = completed_task(&s).await;
    let (_, r) = s.post_json(&rpc("GetTask", json!({"id": id}))).await;
    assert_eq!(r["result"]["id"], id.as_str());
    assert_eq!(r["result"]["history"].as_array().unwrap().len(), 1);
    let (_, r) = s
        .post_json(&rpc("GetTask", json!({"id": id, "historyLength": 0})))
        .await;
    assert!(r["result"].get("history").is_none(), "{r}");
    s.stop().await;
}

#[tokio::test]
async fn context_threads_across_messages_and_input_required_continues() {
    let s = script_server().await;
    let (_, r) = s.post_json(&send_body("SendMessage", "ask")).await;
    assert_eq!(task_state(&r), "TASK_STATE_INPUT_REQUIRED");
    let task = &r["result"]["task"];
    let (tid, cid) = (
        task["id"].as_str().unwrap(),
        task["contextId"].as_str().unwrap(),
    );
    let follow = json!({"message": {"messageId": "m2", "role": "ROLE_USER", "taskId": tid, "parts": [{"text": "done now"}]}});
    let (_, r2) = s.post_json(&rpc("SendMessage", follow)).await;
    assert_eq!(task_state(&r2), "TASK_STATE_COMPLETED", "{r2}");
    assert_eq!(r2["result"]["task"]["id"], tid);
    assert_eq!(r2["result"]["task"]["contextId"], cid);
    // user, agent question, user follow-up
    assert_eq!(r2["result"]["task"]["history"].as_array().unwrap().len(), 3);
    s.stop().await;
}

#[tokio::test]
async fn list_tasks_filters_and_pages() {
    let s = script_server().await;
    let ctx = "ctx-list";
    for i in 0..5 {
        let body = rpc(
            "SendMessage",
            json!({"message": {"messageId": format!("l{i}"), "role": "ROLE_USER", "contextId": ctx, "parts": [{"text": "x"}]}}),
        );
        s.post_json(&body).await;
    }
    completed_task(&s).await; // another context
    let (_, p1) = s
        .post_json(&rpc("ListTasks", json!({"contextId": ctx, "pageSize": 3})))
        .await;
    assert_eq!(p1["result"]["totalSize"], 5, "{p1}");
    assert_eq!(p1["result"]["tasks"].as_array().unwrap().len(), 3);
    assert!(p1["result"]["tasks"][0].get("artifacts").is_none());
    let token = p1["result"]["nextPageToken"].as_str().unwrap().to_string();
    assert!(!token.is_empty());
    let (_, p2) = s
        .post_json(&rpc(
            "ListTasks",
            json!({"contextId": ctx, "pageSize": 3, "pageToken": token}),
        ))
        .await;
    assert_eq!(p2["result"]["tasks"].as_array().unwrap().len(), 2);
    assert_eq!(p2["result"]["nextPageToken"], "");
    s.stop().await;
}

#[tokio::test]
async fn cancel_running_task_then_cancel_again_is_not_cancelable() {
    let s = script_server().await;
    let id = start_slow_task(&s, "s1").await;
    assert_eq!(s.core.running_tasks(), 1);
    let (_, c) = s.post_json(&rpc("CancelTask", json!({"id": id}))).await;
    assert_eq!(c["result"]["status"]["state"], "TASK_STATE_CANCELED", "{c}");
    let (_, c2) = s.post_json(&rpc("CancelTask", json!({"id": id}))).await;
    assert_eq!(c2["error"]["code"], -32002);
    // the agent's execution ended
    eventually(|| s.core.running_tasks() == 0).await;
    assert_eq!(s.core.running_tasks(), 0);
    s.stop().await;
}

#[tokio::test]
async fn sse_stream_has_task_then_updates_and_ends_at_terminal_state() {
    let s = script_server().await;
    let mut events = s
        .client
        .stream(
            "SendStreamingMessage",
            abacus::client::JsonRpcClient::text_params("hi"),
        )
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while let Some(ev) = events.next().await {
        let ev = ev.unwrap();
        assert_eq!(ev["jsonrpc"], "2.0");
        let kind = ev["result"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        kinds.push(kind);
    }
    assert_eq!(
        kinds,
        ["task", "statusUpdate", "artifactUpdate", "statusUpdate"]
    );
    s.stop().await;
}

#[tokio::test]
async fn subscribe_follows_a_running_task_until_cancel() {
    let s = script_server().await;
    let (id, mut events) = subscribed_slow_task(&s, "s2").await;
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(first["result"]["task"]["id"], id.as_str());
    s.post_json(&rpc("CancelTask", json!({"id": id}))).await;
    let mut last = Value::Null;
    while let Some(ev) = events.next().await {
        last = ev.unwrap();
    }
    assert_eq!(
        last["result"]["statusUpdate"]["status"]["state"],
        "TASK_STATE_CANCELED"
    );
    s.stop().await;
}

#[tokio::test]
async fn client_disconnect_mid_stream_frees_the_subscription() {
    let s = script_server().await;
    let (id, mut events) = subscribed_slow_task(&s, "s3").await;
    events.next().await.unwrap().unwrap();
    assert_eq!(s.core.subscribers(&id), 1);
    drop(events); // the client goes away mid-stream
    assert!(
        eventually(|| s.core.subscribers(&id) == 0).await,
        "the server kept the subscription of a gone client"
    );
    // the task itself still runs and can be canceled
    let (_, c) = s.post_json(&rpc("CancelTask", json!({"id": id}))).await;
    assert_eq!(c["result"]["status"]["state"], "TASK_STATE_CANCELED");
    s.stop().await;
}

#[tokio::test]
async fn agent_card_is_cached_and_advertises_the_real_url() {
    let s = script_server().await;
    let (status, card) = s.get_json("/.well-known/agent-card.json").await;
    assert_eq!(status, 200);
    assert_eq!(card["supportedInterfaces"][0]["url"], s.url.as_str());
    assert_eq!(card["supportedInterfaces"][0]["protocolBinding"], "JSONRPC");
    s.stop().await;
}

/// (name, body, headers, expected HTTP status, expected JSON-RPC code)
type BadInput<'a> = (&'a str, String, &'a [(&'a str, &'a str)], u16, i64);

#[tokio::test]
async fn bad_inputs_get_exact_errors() {
    let s = script_server().await;
    let done = completed_task(&s).await;
    let msg = |m: Value| rpc("SendMessage", json!({ "message": m }));
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    let json_hdr: &[(&str, &str)] = &[("content-type", "application/json"), ("a2a-version", "1.0")];
    let cases: Vec<BadInput> = vec![
        (
            "malformed JSON",
            "{\"jsonrpc\":".into(),
            json_hdr,
            200,
            -32700,
        ),
        ("not an object", "[1,2]".into(), json_hdr, 200, -32600),
        (
            "wrong jsonrpc version",
            r#"{"jsonrpc":"1.0","id":1,"method":"GetTask","params":{"id":"x"}}"#.into(),
            json_hdr,
            200,
            -32600,
        ),
        (
            "missing jsonrpc",
            r#"{"id":1,"method":"GetTask","params":{"id":"x"}}"#.into(),
            json_hdr,
            200,
            -32600,
        ),
        (
            "missing method",
            r#"{"jsonrpc":"2.0","id":1}"#.into(),
            json_hdr,
            200,
            -32600,
        ),
        (
            "method not a string",
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#.into(),
            json_hdr,
            200,
            -32600,
        ),
        (
            "id is an object",
            r#"{"jsonrpc":"2.0","id":{},"method":"GetTask"}"#.into(),
            json_hdr,
            200,
            -32600,
        ),
        (
            "unknown method",
            rpc("Frobnicate", json!({})),
            json_hdr,
            200,
            -32601,
        ),
        (
            "v0.3 method name",
            rpc("message/send", json!({})),
            json_hdr,
            200,
            -32601,
        ),
        (
            "params is an array",
            r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":[]}"#.into(),
            json_hdr,
            200,
            -32602,
        ),
        (
            "missing message",
            rpc("SendMessage", json!({})),
            json_hdr,
            200,
            -32602,
        ),
        (
            "invalid role",
            msg(json!({"messageId":"m","role":"ROLE_BOSS","parts":[{"text":"x"}]})),
            json_hdr,
            200,
            -32602,
        ),
        (
            "agent role from client",
            msg(json!({"messageId":"m","role":"ROLE_AGENT","parts":[{"text":"x"}]})),
            json_hdr,
            200,
            -32602,
        ),
        (
            "empty parts",
            msg(json!({"messageId":"m","role":"ROLE_USER","parts":[]})),
            json_hdr,
            200,
            -32602,
        ),
        (
            "part without content",
            msg(json!({"messageId":"m","role":"ROLE_USER","parts":[{"foo":1}]})),
            json_hdr,
            200,
            -32602,
        ),
        (
            "text of wrong type",
            msg(json!({"messageId":"m","role":"ROLE_USER","parts":[{"text":5}]})),
            json_hdr,
            200,
            -32602,
        ),
        (
            "empty messageId",
            msg(json!({"messageId":"","role":"ROLE_USER","parts":[{"text":"x"}]})),
            json_hdr,
            200,
            -32602,
        ),
        (
            "GetTask without id",
            rpc("GetTask", json!({})),
            json_hdr,
            200,
            -32602,
        ),
        (
            "unknown task id",
            rpc("GetTask", json!({"id": "no-such-task"})),
            json_hdr,
            200,
            -32001,
        ),
        (
            "negative historyLength",
            rpc("GetTask", json!({"id": done, "historyLength": -1})),
            json_hdr,
            200,
            -32602,
        ),
        (
            "pageSize zero",
            rpc("ListTasks", json!({"pageSize": 0})),
            json_hdr,
            200,
            -32602,
        ),
        (
            "bad page token",
            rpc("ListTasks", json!({"pageToken": "garbage"})),
            json_hdr,
            200,
            -32602,
        ),
        (
            "cancel unknown task",
            rpc("CancelTask", json!({"id": "no-such-task"})),
            json_hdr,
            200,
            -32001,
        ),
        (
            "cancel finished task",
            rpc("CancelTask", json!({"id": done})),
            json_hdr,
            200,
            -32002,
        ),
        (
            "subscribe to finished task",
            rpc("SubscribeToTask", json!({"id": done})),
            json_hdr,
            200,
            -32004,
        ),
        (
            "message to finished task",
            msg(json!({"messageId":"m","role":"ROLE_USER","taskId": done,"parts":[{"text":"x"}]})),
            json_hdr,
            200,
            -32004,
        ),
        (
            "message to unknown task",
            msg(
                json!({"messageId":"m","role":"ROLE_USER","taskId": "nope","parts":[{"text":"x"}]}),
            ),
            json_hdr,
            200,
            -32001,
        ),
        (
            "push config unsupported",
            rpc(
                "CreateTaskPushNotificationConfig",
                json!({"taskId": done, "url": "http://127.0.0.1:1/"}),
            ),
            json_hdr,
            200,
            -32003,
        ),
        (
            "no extended card",
            rpc("GetExtendedAgentCard", json!({})),
            json_hdr,
            200,
            -32004,
        ),
        (
            "not JSON content type",
            send_body("SendMessage", "x"),
            &[("content-type", "text/plain"), ("a2a-version", "1.0")],
            200,
            -32005,
        ),
        (
            "missing A2A-Version",
            send_body("SendMessage", "x"),
            &[("content-type", "application/json")],
            200,
            -32009,
        ),
        (
            "unsupported A2A-Version",
            send_body("SendMessage", "x"),
            &[("content-type", "application/json"), ("a2a-version", "2.0")],
            200,
            -32009,
        ),
        ("oversized body", huge, json_hdr, 413, -32600),
    ];
    assert!(cases.len() >= 25);
    for (name, body, headers, want_status, want_code) in cases {
        let (status, r) = s.post_raw(body, headers).await;
        assert_eq!(status, want_status, "{name}: HTTP status, reply {r}");
        assert_eq!(r["error"]["code"], want_code, "{name}: reply {r}");
        assert!(
            r["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}: no message"
        );
    }
    let (status, _) = s.get_json("/").await;
    assert_eq!(status, 405, "GET / is not allowed");
    let (status, _) = s.get_json("/nope").await;
    assert_eq!(status, 404);
    let (status, _) = s
        .request(
            "POST",
            "/.well-known/agent-card.json",
            Default::default(),
            &[],
        )
        .await;
    assert_eq!(status, 405);
    // the server still works after all of that
    let (_, r) = s.post_json(&send_body("SendMessage", "still alive")).await;
    assert!(texts(&r).contains(&"echo: still alive".to_string()), "{r}");
    s.stop().await;
}

/// Counts its calls and answers with a direct message; lets the response
/// cache key its replies by text when `cacheable`.
struct Counting {
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    cacheable: bool,
}

#[async_trait::async_trait]
impl Agent for Counting {
    async fn execute(&self, _: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        up.reply(up.agent_message(vec![Part::text("same text, other answer")]))
            .await
    }

    fn cache_key(&self, message: &abacus::protocol::types::Message) -> Option<String> {
        self.cacheable
            .then(|| abacus::agent::text_cache_key(message))
            .flatten()
    }
}

async fn calls_for_two_identical_messages(cacheable: bool) -> usize {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (listener, config) = bound_memory_config().await;
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let agent = Counting {
        calls: calls.clone(),
        cacheable,
    };
    let server =
        abacus::Server::new(agent, CardBuilder::new("count", "counts").build()).config(config);
    let handle = tokio::spawn(server.run_on(listener, async move {
        let _ = rx.await;
    }));
    let client = abacus::client::JsonRpcClient::new(&format!("http://{addr}/"));
    for _ in 0..2 {
        let r = client
            .call(
                "SendMessage",
                abacus::client::JsonRpcClient::text_params("hello"),
            )
            .await
            .unwrap();
        assert_eq!(
            r["result"]["message"]["parts"][0]["text"],
            "same text, other answer"
        );
    }
    let _ = tx.send(());
    handle.await.unwrap().unwrap();
    calls.load(std::sync::atomic::Ordering::SeqCst)
}

#[tokio::test]
async fn replies_are_cached_only_for_agents_that_allow_it() {
    // A generic agent may answer the same text differently (the TCK agent
    // decides by messageId): its replies are never served from the cache.
    assert_eq!(calls_for_two_identical_messages(false).await, 2);
    assert_eq!(calls_for_two_identical_messages(true).await, 1);
}

#[tokio::test]
async fn not_found_and_method_not_allowed_come_from_the_route_table() {
    let s = TestServer::math().await;
    let cases = [
        ("GET", "", 405, Some("POST")),
        (
            "DELETE",
            ".well-known/agent-card.json",
            405,
            Some("GET, HEAD"),
        ),
        ("POST", "stream", 405, Some("GET")),
        ("GET", "nope", 404, None),
        ("PUT", "tasks/t-1", 405, Some("GET")),
        ("GET", "tasks/t-1/x/y", 404, None),
        ("GET", "message:send", 405, Some("POST")),
    ];
    for (method, path, status, allow) in cases {
        let url = format!("{}{path}", s.url);
        let (got, headers, _) = raw_request(&url, method, Bytes::new(), &[]).await;
        assert_eq!(got, status, "{method} /{path}");
        assert_eq!(
            headers.get("allow").map(|v| v.to_str().unwrap()),
            allow,
            "{method} /{path}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn http_options_set_by_the_user_are_not_overwritten_by_the_config() {
    let (listener, config) = bound_memory_config().await;
    let addr = listener.local_addr().unwrap();
    assert!(config.max_body_bytes > 4096);
    let opts = abacus::http::HttpOptions {
        max_body_bytes: 1024,
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = abacus::Server::new(
        ScriptAgent,
        CardBuilder::new("script", "test agent").build(),
    )
    .config(config)
    .http_options(opts);
    let handle = tokio::spawn(server.run_on(listener, async move {
        let _ = rx.await;
    }));
    let url = format!("http://{addr}/");
    let headers = [("content-type", "application/json"), ("a2a-version", "1.0")];
    let big = send_body("SendMessage", &"x".repeat(2000));
    let (status, _, _) = raw_request(&url, "POST", Bytes::from(big), &headers).await;
    assert_eq!(status, 413);
    // the health routes are still added to the user's options
    let (status, _, _) = raw_request(&format!("{url}health"), "GET", Bytes::new(), &[]).await;
    assert_eq!(status, 200);
    let _ = tx.send(());
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn every_error_reason_is_counted_from_zero() {
    let s = TestServer::math().await;
    let prometheus = abacus::telemetry::prometheus().expect("no other recorder in this test");
    let errors = |scrape: &str, reason: &str| {
        super::common::sample(scrape, "a2a_errors_total", "error_type", reason)
    };
    let before = prometheus.render();
    for kind in abacus::protocol::ERROR_KINDS {
        assert!(
            errors(&before, kind.reason).is_some(),
            "{} not registered",
            kind.reason
        );
    }
    let (_, r) = s
        .post_json(&super::common::rpc(
            "GetTask",
            json!({"id": "no-such-task"}),
        ))
        .await;
    assert_eq!(r["error"]["code"], -32001, "{r}");
    let after = prometheus.render();
    let counted = |scrape: &str| errors(scrape, "TASK_NOT_FOUND").unwrap_or(0.0);
    assert!(counted(&after) >= counted(&before) + 1.0, "{after}");
    s.stop().await;
}

/// Answers every message with a task after a while, yet keys it by text:
/// the cache cannot know in advance that the reply will not be cacheable.
/// Counts how many of its executions ran at once.
#[derive(Default, Clone)]
struct SlowTasks {
    running: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    most: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl Agent for SlowTasks {
    async fn execute(&self, _: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        up.start_work().await?;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        self.running.fetch_sub(1, SeqCst);
        up.complete(Some(up.agent_message(vec![Part::text("done")])))
            .await
    }

    fn cache_key(&self, message: &abacus::protocol::types::Message) -> Option<String> {
        abacus::agent::text_cache_key(message)
    }
}

#[tokio::test]
async fn identical_task_requests_stop_waiting_for_each_other_once_refused() {
    use std::sync::atomic::Ordering::SeqCst;
    let agent = SlowTasks::default();
    let s = TestServer::start(
        agent.clone(),
        CardBuilder::new("slow", "slow tasks").build(),
    )
    .await;
    let burst = || async {
        agent.most.store(0, SeqCst);
        // Three messages (three ids), one question.
        let bodies: Vec<String> = (0..3)
            .map(|_| send_body("SendMessage", "same question"))
            .collect();
        let replies = futures_util::future::join_all(bodies.iter().map(|b| s.post_json(b))).await;
        let mut ids: Vec<String> = replies
            .iter()
            .map(|(_, r)| {
                r["result"]["task"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 3, "a task each: {replies:?}");
        agent.most.load(SeqCst)
    };
    // Cold: the others wait in the single flight for the first reply (a
    // task, refused by the policy), then run.
    let cold = burst().await;
    assert!(cold < 3, "cold burst ran {cold} at once");
    // The key is known as refused: all three run at once.
    let warm = burst().await;
    assert_eq!(warm, 3, "warm burst ran {warm} at once");
    assert_eq!(s.layers.cache_hits(), 0);
    s.stop().await;
}

//! `abacus::client` against real servers on 127.0.0.1: every call on each
//! binding, typed errors, paging, a stream that resumes after its
//! connection is cut, retries only where a call is idempotent, the
//! breaker, the deadline and the card's ETag.

use crate::common::TestServer;
use abacus::agent::{Agent, RequestContext, TaskUpdater};
use abacus::card::CardBuilder;
use abacus::client::{text_request, Client, ClientError, ErrorClass};
use abacus::protocol::types::{
    A2AError, CancelTaskRequest, DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest, GetTaskRequest, ListTaskPushNotificationConfigsRequest,
    ListTasksRequest, Part, SendMessageConfiguration, SendMessageResponse, StreamResponse,
    SubscribeToTaskRequest, Task, TaskPushNotificationConfig, TaskState,
};
use abacus::protocol::Binding;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BINDINGS: [Binding; 3] = [Binding::JsonRpc, Binding::Rest, Binding::Grpc];

/// `steps N` reports N numbered steps 30 ms apart, then answers; `slow`
/// works until canceled; anything else is echoed.
struct Steps;

#[async_trait::async_trait]
impl Agent for Steps {
    async fn execute(&self, ctx: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        let text = ctx.text();
        up.start_work().await?;
        if let Some(n) = text.strip_prefix("steps ") {
            let n: u32 = n.trim().parse().unwrap_or(1);
            for i in 1..=n {
                up.progress(format!("step {i}")).await?;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            up.add_artifact(vec![Part::text(format!("{n} steps"))])
                .await?;
            return up.complete(None).await;
        }
        if text == "slow" {
            ctx.cancelled().await;
            return Ok(());
        }
        up.add_artifact(vec![Part::text(format!("echo: {text}"))])
            .await?;
        up.complete(None).await
    }
}

async fn steps_server() -> TestServer {
    let mut card = CardBuilder::new("steps", "test agent").build();
    card.capabilities.streaming = Some(true);
    TestServer::start(Steps, card).await
}

async fn client(s: &TestServer, binding: Binding) -> Client {
    let c = Client::builder(s.url.clone())
        .prefer([binding])
        .connect()
        .await
        .expect("connect");
    assert_eq!(c.binding(), binding);
    c
}

pub(crate) fn task_of(reply: SendMessageResponse) -> Task {
    match reply {
        SendMessageResponse::Task(t) => t,
        SendMessageResponse::Message(m) => panic!("a task, not {m:?}"),
    }
}

pub(crate) fn artifact_text(t: &Task) -> String {
    t.artifacts
        .iter()
        .flatten()
        .flat_map(|a| a.parts.iter().filter_map(|p| p.as_text().map(String::from)))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn state_of(e: &StreamResponse) -> Option<TaskState> {
    match e {
        StreamResponse::Task(t) => Some(t.status.state.clone()),
        StreamResponse::StatusUpdate(s) => Some(s.status.state.clone()),
        _ => None,
    }
}

fn get(id: &str) -> GetTaskRequest {
    GetTaskRequest {
        id: id.into(),
        history_length: None,
        tenant: None,
    }
}

#[tokio::test]
async fn every_call_works_on_each_binding() {
    let s = steps_server().await;
    for binding in BINDINGS {
        let c = client(&s, binding).await;

        let task = task_of(c.send_text("hello").await.expect("send"));
        assert_eq!(task.status.state, TaskState::Completed, "{binding}");
        assert_eq!(artifact_text(&task), "echo: hello", "{binding}");

        let got = c.get_task(get(&task.id)).await.expect("get");
        assert_eq!(
            (got.id.as_str(), got.status.state),
            (task.id.as_str(), TaskState::Completed)
        );

        let mut events = c
            .send_streaming_message(text_request("steps 3"))
            .await
            .expect("stream");
        let mut seen = Vec::new();
        while let Some(e) = events.next().await {
            seen.push(e.expect("an event").response);
        }
        assert_eq!(
            state_of(&seen[0]),
            Some(TaskState::Submitted),
            "{binding}: {seen:?}"
        );
        assert_eq!(
            state_of(seen.last().expect("events")),
            Some(TaskState::Completed)
        );
        assert!(
            seen.iter()
                .any(|e| matches!(e, StreamResponse::ArtifactUpdate(a)
                if a.artifact.parts[0].as_text() == Some("3 steps"))),
            "{binding}: {seen:?}"
        );

        // A long task: followed by a subscription, then canceled.
        let mut slow = text_request("slow");
        slow.configuration = Some(SendMessageConfiguration {
            accepted_output_modes: None,
            task_push_notification_config: None,
            history_length: None,
            return_immediately: Some(true),
        });
        let slow = task_of(c.send_message(slow).await.expect("send slow"));
        let mut sub = c
            .subscribe_to_task(SubscribeToTaskRequest {
                id: slow.id.clone(),
                tenant: None,
            })
            .await
            .expect("subscribe");
        let first = sub.next().await.expect("a snapshot").expect("ok").response;
        assert!(
            matches!(&first, StreamResponse::Task(t) if t.id == slow.id),
            "{first:?}"
        );
        let canceled = c
            .cancel_task(CancelTaskRequest {
                id: slow.id.clone(),
                metadata: None,
                tenant: None,
            })
            .await
            .expect("cancel");
        assert_eq!(canceled.status.state, TaskState::Canceled, "{binding}");
        let mut last = first;
        while let Some(e) = sub.next().await {
            last = e.expect("an event").response;
        }
        assert_eq!(state_of(&last), Some(TaskState::Canceled), "{binding}");

        // The A2A error, typed, on every binding.
        let err = c
            .get_task(get("no-such-task"))
            .await
            .expect_err("no such task");
        let remote = err.remote().unwrap_or_else(|| panic!("{binding}: {err}"));
        assert_eq!(
            (remote.code, remote.reason.as_str()),
            (-32001, "TASK_NOT_FOUND"),
            "{binding}"
        );
        assert_eq!(err.class(), ErrorClass::Protocol);
    }
}

#[tokio::test]
async fn list_all_tasks_walks_every_page_on_each_binding() {
    let s = steps_server().await;
    let c = client(&s, Binding::JsonRpc).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(task_of(c.send_text(&format!("t{i}")).await.expect("send")).id);
    }
    for binding in BINDINGS {
        let c = client(&s, binding).await;
        let request = ListTasksRequest {
            context_id: None,
            status: None,
            page_size: Some(2),
            page_token: None,
            history_length: None,
            status_timestamp_after: None,
            include_artifacts: None,
            tenant: None,
        };
        let page = c.list_tasks(request.clone()).await.expect("a page");
        assert_eq!(page.tasks.len(), 2, "{binding}");
        assert!(!page.next_page_token.is_empty(), "{binding}");
        let mut listed: Vec<String> = c
            .list_all_tasks(request)
            .map(|t| t.expect("a task").id)
            .collect()
            .await;
        listed.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(listed, want, "{binding}: every task once");
    }
}

#[tokio::test]
async fn push_configs_are_created_read_listed_and_deleted_on_each_binding() {
    let (s, _) = crate::push::push_server(crate::push::loopback_settings()).await;
    for binding in BINDINGS {
        let c = client(&s, binding).await;
        let task = task_of(c.send_text("hello").await.expect("send"));
        let created = c
            .create_push_config(TaskPushNotificationConfig {
                url: "http://127.0.0.1:9/hook".into(),
                id: Some(format!("cfg-{binding}")),
                task_id: task.id.clone(),
                token: Some("tok".into()),
                authentication: None,
                tenant: None,
            })
            .await
            .expect("create");
        assert_eq!(
            created.id.as_deref(),
            Some(format!("cfg-{binding}").as_str())
        );
        let got = c
            .get_push_config(GetTaskPushNotificationConfigRequest {
                task_id: task.id.clone(),
                id: format!("cfg-{binding}"),
                tenant: None,
            })
            .await
            .expect("get");
        assert_eq!(got.url, "http://127.0.0.1:9/hook", "{binding}");
        let list = |c: Client, task_id: String| async move {
            c.list_push_configs(ListTaskPushNotificationConfigsRequest {
                task_id,
                page_size: None,
                page_token: None,
                tenant: None,
            })
            .await
            .expect("list")
            .configs
            .len()
        };
        assert_eq!(list(c.clone(), task.id.clone()).await, 1, "{binding}");
        c.delete_push_config(DeleteTaskPushNotificationConfigRequest {
            task_id: task.id.clone(),
            id: format!("cfg-{binding}"),
            tenant: None,
        })
        .await
        .expect("delete");
        assert_eq!(list(c.clone(), task.id.clone()).await, 0, "{binding}");
    }
}

/// A TCP proxy to `target` that cuts its first connection after
/// `cut_after` bytes of the server's answer; later connections pass.
async fn cutting_proxy(target: String, cut_after: usize) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                if n > 0 {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    return;
                }
                let (mut ir, mut iw) = inbound.split();
                let (mut or, mut ow) = outbound.split();
                let up = tokio::io::copy(&mut ir, &mut ow);
                let down = async {
                    let mut sent = 0;
                    let mut buf = [0u8; 256];
                    while sent < cut_after {
                        let want = buf.len().min(cut_after - sent);
                        match or.read(&mut buf[..want]).await {
                            Ok(0) | Err(_) => break,
                            Ok(k) => {
                                if iw.write_all(&buf[..k]).await.is_err() {
                                    break;
                                }
                                sent += k;
                            }
                        }
                    }
                };
                // The cut: both halves are dropped when the answer is.
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    (url, connections)
}

#[tokio::test]
async fn a_stream_cut_midway_resumes_after_its_last_event_on_the_http_bindings() {
    let s = steps_server().await;
    let target = s
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    for binding in [Binding::JsonRpc, Binding::Rest] {
        // Enough bytes for the response head and a few events, not all.
        let (url, connections) = cutting_proxy(target.clone(), 1500).await;
        let c = Client::builder(url.clone())
            .interface(
                binding,
                if binding == Binding::Rest {
                    url.trim_end_matches('/').to_string()
                } else {
                    url.clone()
                },
            )
            .connect()
            .await
            .expect("connect");
        let mut events = c
            .send_streaming_message(text_request("steps 20"))
            .await
            .expect("stream");
        let mut steps = Vec::new();
        let mut last = None;
        while let Some(e) = events.next().await {
            let e = e.unwrap_or_else(|e| panic!("{binding}: {e}"));
            if let StreamResponse::StatusUpdate(u) = &e.response {
                if let Some(m) = &u.status.message {
                    steps.extend(m.parts.iter().filter_map(|p| p.as_text().map(String::from)));
                }
            }
            last = state_of(&e.response).or(last);
        }
        assert!(
            connections.load(Ordering::SeqCst) >= 2,
            "{binding}: the stream was cut and resumed"
        );
        let want: Vec<String> = (1..=20).map(|i| format!("step {i}")).collect();
        assert_eq!(
            steps, want,
            "{binding}: each step once, in order, across the cut"
        );
        assert_eq!(last, Some(TaskState::Completed), "{binding}");
    }
}

/// An HTTP server that answers every request with `status` (and counts
/// them), or never answers when `status` is 0.
async fn fixed_server(status: u16) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut have = Vec::new();
                loop {
                    let Ok(n) = tcp.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    have.extend_from_slice(&buf[..n]);
                    // One request per connection is all these tests send
                    // before the answer (headers, then a small body).
                    let text = String::from_utf8_lossy(&have);
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0usize);
                    if have.len() < end + 4 + length {
                        continue;
                    }
                    seen.fetch_add(1, Ordering::SeqCst);
                    if status == 0 {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    let answer = format!(
                        "HTTP/1.1 {status} Unavailable\r\ncontent-length: 4\r\ncontent-type: text/plain\r\n\r\nbusy"
                    );
                    if tcp.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                    have.clear();
                }
            });
        }
    });
    (url, count)
}

#[tokio::test]
async fn only_idempotent_calls_are_retried() {
    let (url, count) = fixed_server(503).await;
    let c = Client::builder(url.clone())
        .interface(Binding::JsonRpc, url)
        .max_attempts(3)
        .breaker(100, Duration::from_secs(60))
        .connect()
        .await
        .expect("connect");
    let err = c.get_task(get("t")).await.expect_err("503");
    assert!(
        matches!(err, ClientError::Status(s, _) if s.as_u16() == 503),
        "{err}"
    );
    assert_eq!(
        count.load(Ordering::SeqCst),
        3,
        "GetTask is sent three times"
    );

    count.store(0, Ordering::SeqCst);
    let err = c.send_text("2 + 2").await.expect_err("503");
    assert!(matches!(err, ClientError::Status(..)), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 1, "SendMessage is sent once");

    count.store(0, Ordering::SeqCst);
    let err = c
        .cancel_task(CancelTaskRequest {
            id: "t".into(),
            metadata: None,
            tenant: None,
        })
        .await
        .expect_err("503");
    assert!(matches!(err, ClientError::Status(..)), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 1, "CancelTask is sent once");
}

#[tokio::test]
async fn the_breaker_opens_and_then_spares_the_server() {
    let (url, count) = fixed_server(503).await;
    let c = Client::builder(url.clone())
        .interface(Binding::Rest, url.trim_end_matches('/'))
        .max_attempts(1)
        .breaker(2, Duration::from_secs(60))
        .connect()
        .await
        .expect("connect");
    for _ in 0..2 {
        assert!(matches!(
            c.get_task(get("t")).await,
            Err(ClientError::Status(..))
        ));
    }
    let err = c.get_task(get("t")).await.expect_err("open");
    assert!(matches!(err, ClientError::Unavailable { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Transport);
    assert_eq!(count.load(Ordering::SeqCst), 2, "no call while open");
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let (url, count) = fixed_server(0).await;
    let c = Client::builder(url.clone())
        .interface(Binding::JsonRpc, url.clone())
        .timeout(Duration::from_millis(200))
        .max_attempts(2)
        .connect()
        .await
        .expect("connect");
    let err = c.get_task(get("t")).await.expect_err("no answer");
    assert!(
        matches!(&err, ClientError::Timeout { url: u, .. } if *u == url),
        "{err}"
    );
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "an idempotent call is tried again"
    );
}

#[tokio::test]
async fn the_card_is_revalidated_with_its_etag() {
    // Our server sends an ETag and answers If-None-Match with 304; the
    // resolver must send it and keep the card.
    let s = steps_server().await;
    let cards = abacus::client::CardResolver::new(&s.url).expect("resolver");
    let first = cards.resolve().await.expect("card");
    let again = cards.resolve().await.expect("card again");
    assert_eq!(first, again);
    let (status, headers, _) = crate::common::raw_request(
        &format!("{}.well-known/agent-card.json", s.url),
        "GET",
        bytes::Bytes::new(),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let etag = headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("an etag")
        .to_string();
    let (status, _, body) = crate::common::raw_request(
        &format!("{}.well-known/agent-card.json", s.url),
        "GET",
        bytes::Bytes::new(),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!((status, body.len()), (304, 0));
}

#[tokio::test]
async fn credentials_reach_the_server_in_the_headers_its_card_names() {
    let (url, stop, _) = crate::common::serve_math(
        |c| {
            c.api_keys = Some("alice:k-alice".into());
            c.bearer_tokens = Some("ci:t-ci".into());
        },
        None,
    )
    .await;
    for _ in 0..100 {
        if crate::common::get(&format!("{url}health")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for binding in BINDINGS {
        let anonymous = Client::builder(url.clone())
            .prefer([binding])
            .connect()
            .await
            .expect("connect");
        let err = anonymous
            .send_text("6 * 7")
            .await
            .expect_err("no credential");
        assert_eq!(err.class(), ErrorClass::Protocol, "{binding}: {err}");

        let keyed = Client::builder(url.clone())
            .prefer([binding])
            .api_key("k-alice")
            .connect()
            .await
            .expect("connect");
        let reply = keyed
            .send_text("6 * 7")
            .await
            .unwrap_or_else(|e| panic!("{binding}: {e}"));
        let text = match reply {
            SendMessageResponse::Message(m) => m.parts[0].as_text().map(String::from),
            SendMessageResponse::Task(t) => Some(artifact_text(&t)),
        };
        assert_eq!(text.as_deref(), Some("42"), "{binding}");

        let bearer = Client::builder(url.clone())
            .prefer([binding])
            .bearer_token("t-ci")
            .connect()
            .await
            .expect("connect");
        assert!(bearer.send_text("1 + 1").await.is_ok(), "{binding}");
        assert!(
            bearer.extended_card().await.is_ok(),
            "{binding}: the extended card needs a caller"
        );
    }
    let _ = stop.send(());
}

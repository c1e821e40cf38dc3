//! Our client against agents built on the official SDKs: the echo agents
//! of `tests/interop` on the Python SDK (a2a-sdk) and the JS SDK
//! (@a2a-js/sdk), pinned and installed by `tests/interop/setup.sh`, started
//! on loopback here. Every binding each server declares: send, a data part,
//! stream, get, list, subscribe, cancel, input-required then continued.
//!
//! Needs `ABACUS_TEST_SDK_VENV` (the venv setup.sh made; CI sets it) and
//! node with `tests/interop/node_modules`; without them the tests say so
//! and pass, as the PostgreSQL and Redis tests do without their servers.

use crate::client::{artifact_text, state_of, task_of};
use abacus::client::{text_request, Client, ErrorClass};
use abacus::protocol::types::{
    CancelTaskRequest, GetTaskRequest, ListTasksRequest, Message, Part, Role,
    SendMessageConfiguration, StreamResponse, SubscribeToTaskRequest, TaskState,
};
use abacus::protocol::Binding;
use futures_util::StreamExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const VENV_ENV: &str = "ABACUS_TEST_SDK_VENV";

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// A running SDK server, killed on drop.
struct SdkServer {
    child: Child,
    url: String,
}

impl Drop for SdkServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port `p` with `p + 1` free too (the SDK's gRPC server listens there).
fn two_free_ports() -> u16 {
    for _ in 0..50 {
        let Ok(a) = std::net::TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(port) = a.local_addr().map(|a| a.port()) else {
            continue;
        };
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two free consecutive ports")
}

async fn start(program: PathBuf, script: &str) -> SdkServer {
    let port = two_free_ports();
    let child = Command::new(&program)
        .arg(interop_dir().join(script))
        .arg(port.to_string())
        .current_dir(interop_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let url = format!("http://127.0.0.1:{port}");
    let mut server = SdkServer { child, url };
    for _ in 0..300 {
        let card = format!("{}/.well-known/agent-card.json", server.url);
        if crate::common::get(&card).await.is_ok_and(|(s, _)| s == 200) {
            // The gRPC server may start a moment after the HTTP one.
            tokio::time::sleep(Duration::from_millis(200)).await;
            return server;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("{script} exited at start: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.url.clear();
    panic!("{script} did not come up")
}

fn python() -> Option<PathBuf> {
    let Some(venv) = std::env::var_os(VENV_ENV) else {
        eprintln!("skipped: {VENV_ENV} is not set (run tests/interop/setup.sh)");
        return None;
    };
    Some(PathBuf::from(venv).join("bin/python"))
}

fn node() -> Option<PathBuf> {
    std::env::var_os(VENV_ENV)?;
    if !interop_dir().join("node_modules/@a2a-js/sdk").exists() {
        eprintln!("skipped: tests/interop/node_modules is missing (run tests/interop/setup.sh)");
        return None;
    }
    Some(PathBuf::from("node"))
}

/// Everything our client does, against the server at `base`, on `binding`.
async fn exercise(base: &str, binding: Binding, sdk: &str) {
    let c = Client::builder(base)
        .prefer([binding])
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{sdk} {binding}: {e}"));
    assert_eq!(c.binding(), binding, "{sdk}");
    let at = |what: &str| format!("{sdk} {binding}: {what}");

    let task = task_of(
        c.send_text("hi")
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", at("send"))),
    );
    assert_eq!(task.status.state, TaskState::Completed, "{}", at("send"));
    assert_eq!(artifact_text(&task), "echo: hi", "{}", at("send"));

    let data = Message::new(
        Role::User,
        vec![Part::data(serde_json::json!({"b": 2, "a": [1.5, "x"]}))],
    );
    let echoed = task_of(
        c.send_message(abacus::client::message_request(data))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", at("data"))),
    );
    assert_eq!(
        artifact_text(&echoed),
        r#"echo: data {"a":[1.5,"x"],"b":2}"#,
        "{}",
        at("data")
    );

    let mut events = c
        .send_streaming_message(text_request("hello"))
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", at("stream")));
    let mut seen = Vec::new();
    while let Some(e) = events.next().await {
        seen.push(
            e.unwrap_or_else(|e| panic!("{}: {e}", at("stream")))
                .response,
        );
    }
    assert_eq!(
        state_of(seen.last().expect("events")),
        Some(TaskState::Completed),
        "{}",
        at("stream")
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, StreamResponse::ArtifactUpdate(a)
            if a.artifact.parts.first().and_then(|p| p.as_text()) == Some("echo: hello"))),
        "{}: {seen:?}",
        at("stream")
    );

    let got = c
        .get_task(GetTaskRequest {
            id: task.id.clone(),
            history_length: None,
            tenant: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", at("get")));
    assert_eq!(got.id, task.id, "{}", at("get"));

    let listed = c
        .list_tasks(ListTasksRequest {
            context_id: None,
            status: None,
            page_size: Some(100),
            page_token: None,
            history_length: None,
            status_timestamp_after: None,
            include_artifacts: None,
            tenant: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", at("list")));
    assert!(
        listed.tasks.iter().any(|t| t.id == task.id),
        "{}",
        at("list")
    );

    let missing = c
        .get_task(GetTaskRequest {
            id: "no-such-task".into(),
            history_length: None,
            tenant: None,
        })
        .await
        .expect_err("no such task");
    assert_eq!(
        missing.class(),
        ErrorClass::Protocol,
        "{}: {missing}",
        at("missing")
    );
    assert_eq!(
        missing.remote().map(|r| r.code),
        Some(-32001),
        "{}: {missing}",
        at("missing")
    );

    // A long task: followed, then canceled; the subscription ends with it.
    let mut slow = text_request("slow");
    slow.configuration = Some(SendMessageConfiguration {
        accepted_output_modes: None,
        task_push_notification_config: None,
        history_length: None,
        return_immediately: Some(true),
    });
    let slow = task_of(
        c.send_message(slow)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", at("slow"))),
    );
    let mut sub = c
        .subscribe_to_task(SubscribeToTaskRequest {
            id: slow.id.clone(),
            tenant: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", at("subscribe")));
    let first = sub
        .next()
        .await
        .expect("an event")
        .unwrap_or_else(|e| panic!("{}: {e}", at("subscribe")));
    assert!(
        state_of(&first.response).is_some(),
        "{}: {first:?}",
        at("subscribe")
    );
    let canceled = c
        .cancel_task(CancelTaskRequest {
            id: slow.id.clone(),
            metadata: None,
            tenant: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", at("cancel")));
    assert_eq!(
        canceled.status.state,
        TaskState::Canceled,
        "{}",
        at("cancel")
    );
    let mut last = first.response;
    let follow = async {
        while let Some(e) = sub.next().await {
            last = e
                .unwrap_or_else(|e| panic!("{}: {e}", at("subscribe")))
                .response;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), follow)
        .await
        .unwrap_or_else(|_| panic!("{}: the subscription did not end", at("subscribe")));
    assert_eq!(
        state_of(&last),
        Some(TaskState::Canceled),
        "{}",
        at("subscribe")
    );

    // Input required, then the same task continued.
    let asked = task_of(
        c.send_text("ask")
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", at("ask"))),
    );
    assert_eq!(
        asked.status.state,
        TaskState::InputRequired,
        "{}",
        at("ask")
    );
    let mut answer = Message::new(Role::User, vec![Part::text("7")]);
    answer.task_id = Some(asked.id.clone());
    answer.context_id = Some(asked.context_id.clone());
    let done = task_of(
        c.send_message(abacus::client::message_request(answer))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", at("continue"))),
    );
    assert_eq!(
        (done.id.as_str(), done.status.state.clone()),
        (asked.id.as_str(), TaskState::Completed)
    );
    assert_eq!(artifact_text(&done), "echo: 7", "{}", at("continue"));
}

#[tokio::test]
async fn our_client_speaks_to_the_python_sdk_server_on_every_binding() {
    let Some(python) = python() else { return };
    let server = start(python, "python_sdk_server.py").await;
    for binding in [Binding::JsonRpc, Binding::Rest, Binding::Grpc] {
        exercise(&server.url, binding, "python").await;
    }
}

#[tokio::test]
async fn our_client_speaks_to_the_js_sdk_server_on_every_binding() {
    let Some(node) = node() else { return };
    let server = start(node, "js_sdk_server.mjs").await;
    for binding in [Binding::JsonRpc, Binding::Rest, Binding::Grpc] {
        exercise(&server.url, binding, "js").await;
    }
}

//! Task ownership: a task belongs to the principal that created it. Another
//! principal cannot get, list, cancel, subscribe to or continue it, nor see
//! or change its push configs, and gets
//! the very answer a task that does not exist gets — on every store.

use crate::common::{bound_memory_config, raw_request, rpc};
use abacus::agent::{Agent, RequestContext, TaskUpdater};
use abacus::protocol::types::A2AError;
use abacus::store::StoreKind;
use bytes::Bytes;
use serde_json::{json, Value};

/// "wait" works until canceled, "ask" asks for input, anything else is
/// answered at once.
struct Chores;

#[async_trait::async_trait]
impl Agent for Chores {
    async fn execute(&self, ctx: RequestContext, up: TaskUpdater) -> Result<(), A2AError> {
        match ctx.text().as_str() {
            "wait" => {
                up.start_work().await?;
                tokio::select! {
                    _ = ctx.cancelled() => Ok(()),
                    _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => up.fail("nobody canceled").await,
                }
            }
            "ask" => up.require_input(None).await,
            _ => up.complete(None).await,
        }
    }
}

struct Caller<'a> {
    url: &'a str,
    key: &'a str,
}

impl Caller<'_> {
    /// One JSON-RPC call; the body as JSON (a stream's first event).
    async fn call(&self, method: &str, params: Value) -> Value {
        let (status, _, body) = raw_request(
            self.url,
            "POST",
            Bytes::from(rpc(method, params)),
            &[
                ("content-type", "application/json"),
                ("a2a-version", "1.0"),
                ("x-api-key", self.key),
            ],
        )
        .await;
        assert_eq!(status, 200, "{method}: {}", String::from_utf8_lossy(&body));
        let text = String::from_utf8_lossy(&body);
        let json = match text.strip_prefix("data: ") {
            Some(event) => event.lines().next().unwrap_or_default(),
            None => &text,
        };
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{method}: {e}: {text}"))
    }

    async fn send(&self, text: &str, task_id: Option<&str>) -> Value {
        let mut message = json!({"messageId": uuid::Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": [{"text": text}]});
        if let Some(id) = task_id {
            message["taskId"] = json!(id);
        }
        self.call(
            "SendMessage",
            json!({"message": message, "configuration": {"returnImmediately": text == "wait"}}),
        )
        .await
    }
}

fn task_id(reply: &Value) -> String {
    reply["result"]["task"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no task in {reply}"))
        .to_string()
}

/// The error of a reply with the task id and the error's timestamp masked,
/// so that the answer for someone else's task can be compared with the one
/// for no task at all.
fn masked_error(reply: &Value, id: &str) -> String {
    assert!(reply.get("result").is_none(), "a result leaked: {reply}");
    let mut error = reply["error"].clone();
    if let Some(details) = error["data"].as_array_mut() {
        for d in details {
            if let Some(meta) = d["metadata"].as_object_mut() {
                meta.remove("timestamp");
            }
        }
    }
    error.to_string().replace(id, "ID")
}

async fn check(store: StoreKind, database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (listener, mut config) = bound_memory_config().await;
    config.store_kind = store;
    config.data_dir = dir.path().to_path_buf();
    config.database_url = database_url;
    config.api_keys = Some("alice:k-alice, bob:k-bob".into());
    let url = format!("http://127.0.0.1:{}/", config.port);
    let card = abacus::card::CardBuilder::new("chores", "does chores")
        .streaming(true)
        .build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = abacus::Server::new(Chores, card).config(config);
    let handle = tokio::spawn(server.run_on(listener, async move {
        let _ = stopped.await;
    }));
    let alice = Caller {
        url: &url,
        key: "k-alice",
    };
    let bob = Caller {
        url: &url,
        key: "k-bob",
    };

    // A finished task, one waiting for input (stored, idle) and one being
    // worked on (live in memory).
    let done = task_id(&alice.send("hi", None).await);
    let asking = task_id(&alice.send("ask", None).await);
    let working = task_id(&alice.send("wait", None).await);
    let ghost = uuid::Uuid::new_v4().to_string();

    for id in [&done, &asking, &working] {
        let own = alice.call("GetTask", json!({"id": id})).await;
        assert_eq!(own["result"]["id"], json!(id), "{own}");
        let hook = json!({"taskId": id, "id": "hook", "url": "https://example.com/hook"});
        let own = alice.call("CreateTaskPushNotificationConfig", hook).await;
        assert_eq!(own["result"]["id"], "hook", "{own}");
        let calls = [
            ("GetTask", json!({"id": id})),
            ("CancelTask", json!({"id": id})),
            ("SubscribeToTask", json!({"id": id})),
            (
                "CreateTaskPushNotificationConfig",
                json!({"taskId": id, "id": "hook", "url": "https://example.com/bob"}),
            ),
            (
                "GetTaskPushNotificationConfig",
                json!({"taskId": id, "id": "hook"}),
            ),
            ("ListTaskPushNotificationConfigs", json!({"taskId": id})),
            (
                "DeleteTaskPushNotificationConfig",
                json!({"taskId": id, "id": "hook"}),
            ),
        ];
        for (method, params) in calls {
            let theirs = bob.call(method, params.clone()).await;
            let mut nothing = params;
            let key = if nothing.get("taskId").is_some() {
                "taskId"
            } else {
                "id"
            };
            nothing[key] = json!(ghost);
            let none = bob.call(method, nothing).await;
            assert_eq!(none["error"]["code"], -32001, "{none}");
            assert_eq!(
                masked_error(&theirs, id),
                masked_error(&none, &ghost),
                "{method} of alice's task {id} by bob"
            );
        }
        let theirs = bob.send("more", Some(id)).await;
        let none = bob.send("more", Some(&ghost)).await;
        assert_eq!(masked_error(&theirs, id), masked_error(&none, &ghost));
    }

    // Bob lists nothing of alice's; alice lists all three.
    let listed = |v: &Value| -> Vec<String> {
        v["result"]["tasks"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    let bobs = bob.call("ListTasks", json!({})).await;
    assert_eq!(listed(&bobs), Vec::<String>::new(), "{bobs}");
    assert_eq!(bobs["result"]["totalSize"], 0, "{bobs}");
    let alices = listed(&alice.call("ListTasks", json!({})).await);
    for id in [&done, &asking, &working] {
        assert!(alices.contains(id), "{id} not in {alices:?}");
    }

    // Nor her push configs.
    for id in [&done, &asking, &working] {
        let hook = alice
            .call(
                "GetTaskPushNotificationConfig",
                json!({"taskId": id, "id": "hook"}),
            )
            .await;
        assert_eq!(hook["result"]["url"], "https://example.com/hook", "{hook}");
    }

    // Nothing bob tried changed alice's tasks: she continues and cancels.
    let continued = alice.send("thanks", Some(&asking)).await;
    assert_eq!(
        continued["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{continued}"
    );
    let canceled = alice.call("CancelTask", json!({"id": working})).await;
    assert_eq!(
        canceled["result"]["status"]["state"], "TASK_STATE_CANCELED",
        "{canceled}"
    );

    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn another_principal_sees_no_task_in_memory() {
    check(StoreKind::Memory, None).await;
}

#[tokio::test]
async fn another_principal_sees_no_task_in_sqlite() {
    check(StoreKind::Sqlite, None).await;
}

#[tokio::test]
async fn another_principal_sees_no_task_in_postgres() {
    match std::env::var("DATABASE_URL") {
        Ok(url) => check(StoreKind::Postgres, Some(url)).await,
        Err(_) => eprintln!("skipped: DATABASE_URL is not set"),
    }
}

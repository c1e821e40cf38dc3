//! Push notifications against real webhook receivers on 127.0.0.1: order,
//! retries of a failing receiver, `Retry-After`, a hanging receiver and its
//! breaker, the SSRF guard, and no notification lost across `kill -9`.

use crate::common::{abacus_serve, eventually, free_port, rpc, sample, TestServer};
use crate::protocol::ScriptAgent;
use abacus::card::CardBuilder;
use abacus::core::Core;
use abacus::push::{PushSettings, Pusher};
use abacus::store::{MemoryPushStore, PushStore};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub headers: http::HeaderMap,
    pub body: Value,
    pub at: Instant,
    /// The status the receiver answered with.
    pub answered: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// `statusUpdate.status.state`, or `artifact` for an artifact update.
    pub fn kind(&self) -> String {
        if let Some(s) = self.body["statusUpdate"]["status"]["state"].as_str() {
            s.to_string()
        } else if self.body.get("artifactUpdate").is_some() {
            "artifact".into()
        } else {
            format!("unexpected: {}", self.body)
        }
    }

    pub fn task_id(&self) -> &str {
        let ev = if self.body.get("statusUpdate").is_some() {
            &self.body["statusUpdate"]
        } else {
            &self.body["artifactUpdate"]
        };
        ev["taskId"].as_str().unwrap_or("")
    }
}

/// What a receiver answers: given the number of the request (from 0) and
/// the request, a status, an optional `Retry-After`/`Location` header, and
/// a delay (`None`: never answer).
pub(crate) type Script = Arc<dyn Fn(usize, &Received) -> Answer + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub header: Option<(&'static str, String)>,
    pub delay: Option<Duration>,
}

impl Answer {
    pub fn ok() -> Self {
        Answer {
            status: 200,
            header: None,
            delay: Some(Duration::ZERO),
        }
    }
    pub fn status(status: u16) -> Self {
        Answer {
            status,
            ..Answer::ok()
        }
    }
}

/// A webhook receiver: an HTTP/1.1 server on 127.0.0.1 that records every
/// request and answers as its script says.
pub(crate) struct Receiver {
    pub port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn ok() -> Self {
        Self::start(Arc::new(|_, _| Answer::ok())).await
    }

    pub async fn start(script: Script) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::on(listener, script)
    }

    /// On a given port (to come back where a receiver was down).
    pub async fn on_port(port: u16, script: Script) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        Self::on(listener, script)
    }

    fn on(listener: tokio::net::TcpListener, script: Script) -> Self {
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let seen = got.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (seen, script) = (seen.clone(), script.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (seen, script) = (seen.clone(), script.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let bytes = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let mut r = Received {
                                headers: parts.headers,
                                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                                at: Instant::now(),
                                answered: 0,
                            };
                            let n = seen.lock().unwrap().len();
                            let answer = script(n, &r);
                            // A request never answered has no status.
                            r.answered = if answer.delay.is_some() {
                                answer.status
                            } else {
                                0
                            };
                            seen.lock().unwrap().push(r);
                            match answer.delay {
                                Some(d) => tokio::time::sleep(d).await,
                                None => std::future::pending::<()>().await,
                            }
                            let mut resp = http::Response::builder().status(answer.status);
                            if let Some((k, v)) = answer.header {
                                resp = resp.header(k, v);
                            }
                            Ok::<_, Infallible>(resp.body(Full::new(Bytes::new())).unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Receiver { port, got, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        self.got()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }

    /// Waits up to `within` for `n` delivered requests.
    pub async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Received> {
        let start = Instant::now();
        while self.delivered().len() < n && start.elapsed() < within {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.delivered()
    }
}

/// Settings that reach loopback receivers over http, retrying fast.
pub(crate) fn loopback_settings() -> PushSettings {
    let mut settings = PushSettings {
        allow: vec!["127.0.0.1/32".into()],
        allow_http: abacus::push::guard::AllowHttp::Yes,
        deadline: Duration::from_secs(20),
        ..PushSettings::default()
    };
    settings.delivery.attempt_timeout = Duration::from_millis(500);
    settings.delivery.breaker_open = Duration::from_millis(500);
    settings
}

/// The script agent with push notifications on, over a memory push store.
pub(crate) async fn push_server(settings: PushSettings) -> (TestServer, Arc<dyn PushStore>) {
    let store: Arc<dyn PushStore> = Arc::new(MemoryPushStore::new());
    let pusher = Pusher::start(store.clone(), settings).await.unwrap();
    let mut card = CardBuilder::new("script", "test agent").build();
    card.capabilities.push_notifications = Some(true);
    let core = Core::builder(ScriptAgent, card).push(pusher).build();
    (TestServer::start_core(core).await, store)
}

/// A message of `text` with a push config for `url` (on task `task`).
pub(crate) fn send_with_push(text: &str, url: &str, task: Option<&str>) -> Value {
    let mut message = json!({"messageId": uuid::Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": [{"text": text}]});
    if let Some(t) = task {
        message["taskId"] = json!(t);
    }
    json!({
        "message": message,
        "configuration": {"taskPushNotificationConfig": {
            "url": url, "token": "tok-123",
            "authentication": {"scheme": "Bearer", "credentials": "cred-456"}
        }}
    })
}

async fn send(s: &TestServer, params: Value) -> Value {
    let (_, r) = s.post_json(&rpc("SendMessage", params)).await;
    r
}

/// Sends `n` echo tasks at once, each with a push config for `url`; each
/// must complete.
async fn complete_at_once(s: &Arc<TestServer>, n: usize, url: &str) {
    let sends = (0..n).map(|i| {
        let (s, url) = (s.clone(), url.to_string());
        tokio::spawn(
            async move { send(&s, send_with_push(&format!("echo {i}"), &url, None)).await },
        )
    });
    for r in futures_util::future::join_all(sends).await {
        let r = r.unwrap();
        assert_eq!(
            r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
            "{r}"
        );
    }
}

/// Whether the outbox is empty within 10 s.
async fn outbox_drains(store: &dyn PushStore) -> bool {
    for _ in 0..1000 {
        if store.depth().await.unwrap() == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

fn kinds(got: &[Received]) -> Vec<String> {
    got.iter().map(Received::kind).collect()
}

#[tokio::test]
async fn every_event_of_a_task_reaches_the_webhook_in_order_with_its_headers() {
    let receiver = Receiver::ok().await;
    let (s, store) = push_server(loopback_settings()).await;
    let r = send(&s, send_with_push("echo hi", &receiver.url(), None)).await;
    assert_eq!(
        r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{r}"
    );
    let task = r["result"]["task"]["id"].as_str().unwrap();
    let got = receiver.wait_delivered(3, Duration::from_secs(10)).await;
    assert_eq!(
        kinds(&got),
        ["TASK_STATE_WORKING", "artifact", "TASK_STATE_COMPLETED"]
    );
    let mut ids = Vec::new();
    for r in &got {
        assert_eq!(r.task_id(), task);
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(r.header("x-a2a-notification-token"), "tok-123");
        assert_eq!(r.header("authorization"), "Bearer cred-456");
        ids.push(r.header("x-a2a-event-id").to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "one stable id per event: {ids:?}");
    // Delivered means gone from the outbox.
    assert!(
        outbox_drains(store.as_ref()).await,
        "the outbox keeps notifications"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_config_created_on_a_waiting_task_gets_its_next_events() {
    let receiver = Receiver::ok().await;
    let (s, _) = push_server(loopback_settings()).await;
    let r = send(
        &s,
        json!({"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "ask"}]}}),
    )
    .await;
    let task = r["result"]["task"]["id"].as_str().unwrap().to_string();
    let config = json!({"taskId": task, "id": "later", "url": receiver.url()});
    let (_, c) = s
        .post_json(&rpc("CreateTaskPushNotificationConfig", config))
        .await;
    assert_eq!(c["result"]["id"], "later", "{c}");
    let (_, l) = s
        .post_json(&rpc(
            "ListTaskPushNotificationConfigs",
            json!({"taskId": task}),
        ))
        .await;
    assert_eq!(
        l["result"]["configs"].as_array().map(Vec::len),
        Some(1),
        "{l}"
    );
    let go = json!({"message": {"messageId": "m2", "role": "ROLE_USER", "taskId": task, "parts": [{"text": "go"}]}});
    let r = send(&s, go).await;
    assert_eq!(
        r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{r}"
    );
    let got = receiver.wait_delivered(3, Duration::from_secs(10)).await;
    assert_eq!(
        kinds(&got),
        ["TASK_STATE_WORKING", "artifact", "TASK_STATE_COMPLETED"]
    );
    assert_eq!(got[0].header("x-a2a-notification-token"), "");
    s.stop().await;
}

#[tokio::test]
async fn events_of_concurrent_tasks_keep_their_order_per_task() {
    let receiver = Receiver::ok().await;
    let (s, _) = push_server(loopback_settings()).await;
    let s = Arc::new(s);
    complete_at_once(&s, 40, &receiver.url()).await;
    let got = receiver.wait_delivered(120, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 120);
    let mut per_task: HashMap<String, Vec<String>> = HashMap::new();
    for r in &got {
        per_task
            .entry(r.task_id().to_string())
            .or_default()
            .push(r.kind());
    }
    assert_eq!(per_task.len(), 40);
    for (task, events) in per_task {
        assert_eq!(
            events,
            ["TASK_STATE_WORKING", "artifact", "TASK_STATE_COMPLETED"],
            "{task}"
        );
    }
}

#[tokio::test]
async fn a_failing_receiver_is_retried_until_it_heals_and_gets_each_event_once() {
    // The first four requests fail with 500 or 503.
    let receiver = Receiver::start(Arc::new(|n, _| {
        if n < 4 {
            Answer::status(if n % 2 == 0 { 500 } else { 503 })
        } else {
            Answer::ok()
        }
    }))
    .await;
    let (s, store) = push_server(loopback_settings()).await;
    send(&s, send_with_push("echo heal", &receiver.url(), None)).await;
    let got = receiver.wait_delivered(3, Duration::from_secs(15)).await;
    assert_eq!(
        kinds(&got),
        ["TASK_STATE_WORKING", "artifact", "TASK_STATE_COMPLETED"]
    );
    let mut ids: Vec<_> = got
        .iter()
        .map(|r| r.header("x-a2a-event-id").to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each event delivered exactly once");
    assert_eq!(receiver.got().len(), 7, "4 failures + 3 deliveries");
    assert!(
        outbox_drains(store.as_ref()).await,
        "the outbox keeps notifications"
    );
}

#[tokio::test]
async fn retry_after_of_a_429_is_honoured() {
    let receiver = Receiver::start(Arc::new(|n, _| {
        if n == 0 {
            Answer {
                status: 429,
                header: Some(("retry-after", "1".into())),
                delay: Some(Duration::ZERO),
            }
        } else {
            Answer::ok()
        }
    }))
    .await;
    let (s, _) = push_server(loopback_settings()).await;
    send(&s, send_with_push("echo wait", &receiver.url(), None)).await;
    let got = receiver.wait_delivered(3, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 3);
    let all = receiver.got();
    assert_eq!(all[0].answered, 429);
    let waited = all[1].at - all[0].at;
    assert!(
        waited >= Duration::from_millis(990),
        "retried after {waited:?}"
    );
}

#[tokio::test]
async fn a_hanging_receiver_opens_its_breaker_and_other_hosts_are_unaffected() {
    let hanging = Receiver::start(Arc::new(|_, _| Answer {
        delay: None,
        ..Answer::ok()
    }))
    .await;
    let healthy = Receiver::ok().await;
    let mut settings = loopback_settings();
    settings.delivery.attempt_timeout = Duration::from_millis(200);
    settings.delivery.breaker_failures = 3;
    settings.delivery.breaker_open = Duration::from_secs(30);
    settings.deadline = Duration::from_secs(5);
    let (s, _) = push_server(settings).await;
    let started = Instant::now();
    let r = send(&s, send_with_push("echo stuck", &hanging.url(), None)).await;
    // The task never waits for its receiver.
    assert_eq!(
        r["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{r}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    for i in 0..5 {
        send(
            &s,
            send_with_push(&format!("echo ok {i}"), &healthy.url(), None),
        )
        .await;
    }
    let got = healthy.wait_delivered(15, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 15, "the healthy host gets everything meanwhile");
    // Three attempts time out and open the breaker: no more are made.
    assert!(eventually(|| hanging.got().len() >= 3).await);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        hanging.got().len(),
        3,
        "the open breaker stops further attempts"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_the_notification_is_given_up() {
    let receiver = Receiver::start(Arc::new(|_, _| Answer {
        status: 302,
        header: Some((
            "location",
            "http://169.254.169.254/latest/meta-data/".into(),
        )),
        delay: Some(Duration::ZERO),
    }))
    .await;
    let (s, store) = push_server(loopback_settings()).await;
    send(&s, send_with_push("echo moved", &receiver.url(), None)).await;
    // One attempt per event, never retried, then gone from the outbox.
    assert!(
        outbox_drains(store.as_ref()).await,
        "the outbox keeps notifications"
    );
    assert_eq!(receiver.got().len(), 3);
    assert!(receiver.delivered().is_empty());
}

/// Each refused URL with the words its error must contain.
const REFUSED: &[(&str, &str)] = &[
    ("https://127.0.0.1/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://0.0.0.0/hook", "0.0.0.0"),
    ("https://localhost/hook", "loopback"),
    ("https://10.1.2.3/hook", "private"),
    ("https://192.168.0.10/hook", "private"),
    ("https://172.16.5.4/hook", "private"),
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://[fd00:ec2::254]/", "metadata"),
    ("https://169.254.10.10/", "link-local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://[fc00::1]/", "unique"),
    ("https://224.0.0.1/", "multicast"),
    ("http://93.184.216.34/hook", "http"),
    ("ftp://example.com/hook", "ftp"),
];

#[tokio::test]
async fn the_ssrf_guard_refuses_every_non_public_target_at_creation() {
    // The defaults: https only, nothing allowed.
    let (s, _) = push_server(PushSettings::default()).await;
    let r = send(
        &s,
        json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "ask"}]}}),
    )
    .await;
    let task = r["result"]["task"]["id"].as_str().unwrap().to_string();
    for (url, words) in REFUSED {
        let config = json!({"taskId": task, "id": "x", "url": url});
        let (_, c) = s
            .post_json(&rpc("CreateTaskPushNotificationConfig", config))
            .await;
        assert_eq!(c["error"]["code"], -32602, "{url}: {c}");
        let message = c["error"]["message"].as_str().unwrap().to_lowercase();
        assert!(message.contains(words), "{url}: {message}");
        // Nor through a message's configuration.
        let (_, m) = s
            .post_json(&rpc("SendMessage", send_with_push("echo", url, None)))
            .await;
        assert_eq!(m["error"]["code"], -32602, "{url}: {m}");
    }
    // A public name that may not resolve here is accepted (and checked
    // again when delivering).
    let ok = json!({"taskId": task, "id": "pub", "url": "https://example.com/tck-push-webhook"});
    let (_, c) = s
        .post_json(&rpc("CreateTaskPushNotificationConfig", ok))
        .await;
    assert_eq!(
        c["result"]["url"], "https://example.com/tck-push-webhook",
        "{c}"
    );
    s.stop().await;
}

#[tokio::test]
async fn push_off_answers_push_notification_not_supported() {
    let (listener, mut config) = crate::common::bound_memory_config().await;
    config.push.push = false;
    let base = format!("http://127.0.0.1:{}/", config.port);
    let server =
        abacus::Server::new(ScriptAgent, CardBuilder::new("script", "t").build()).config(config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run_on(listener, async move {
        let _ = stopped.await;
    }));
    let client = abacus::client::JsonRpcClient::new(&base);
    let card = client
        .get(&format!("{base}.well-known/agent-card.json"))
        .await
        .unwrap();
    assert_eq!(card["capabilities"]["pushNotifications"], false, "{card}");
    let r = client
        .call(
            "SendMessage",
            send_with_push("echo", "https://example.com/h", None),
        )
        .await
        .unwrap();
    assert_eq!(r["error"]["code"], -32003, "{r}");
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}

struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_binary(port: u16, data: &str) -> Proc {
    let child = abacus_serve(port)
        .args(["--store", "sqlite", "--data-dir", data])
        .args(["--push-allow", "127.0.0.1/32", "--push-allow-http"])
        .args(["--push-attempt-timeout-ms", "300"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    for _ in 0..400 {
        if crate::common::get(&format!("http://127.0.0.1:{port}/health"))
            .await
            .is_ok()
        {
            return proc;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("abacus did not start on port {port}");
}

#[tokio::test]
async fn pending_notifications_survive_kill_9_and_are_delivered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let (port, hook_port) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{port}/");
    let hook = format!("http://127.0.0.1:{hook_port}/hook");
    let client = abacus::client::JsonRpcClient::new(&url);
    let mut server = start_binary(port, &data).await;
    // The receiver is down: every notification stays in the outbox.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let r = client
            .call(
                "SendMessage",
                send_with_push(&format!("factorial {}", 20 + i), &hook, None),
            )
            .await
            .unwrap();
        let task = &r["result"]["task"];
        assert!(task["id"].is_string(), "{r}");
        tasks.push(task["id"].as_str().unwrap().to_string());
    }
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let receiver = Receiver::on_port(hook_port, Arc::new(|_, _| Answer::ok())).await;
    let _server = start_binary(port, &data).await;
    // Every task's events (the math agent's completed state at least) arrive.
    let start = Instant::now();
    let delivered = loop {
        let got = receiver.delivered();
        let done: std::collections::HashSet<_> = got
            .iter()
            .filter(|r| r.kind() == "TASK_STATE_COMPLETED")
            .map(|r| r.task_id().to_string())
            .collect();
        if done.len() == tasks.len() || start.elapsed() > Duration::from_secs(30) {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let completed: Vec<_> = delivered
        .iter()
        .filter(|r| r.kind() == "TASK_STATE_COMPLETED")
        .collect();
    let lost: Vec<_> = tasks
        .iter()
        .filter(|t| !completed.iter().any(|r| r.task_id() == t.as_str()))
        .collect();
    eprintln!(
        "kill -9: {} tasks, {} notifications delivered after restart, {} tasks lost",
        tasks.len(),
        delivered.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    // The restarted server counts what it delivered and has nothing left.
    let start = Instant::now();
    loop {
        let (_, scrape) = crate::common::get(&format!("{url}metrics")).await.unwrap();
        let delivered = sample(&scrape, "a2a_push_deliveries_total", "outcome", "delivered");
        let depth = scrape
            .lines()
            .find_map(|l| l.strip_prefix("a2a_push_outbox_depth "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if (delivered, depth) == (Some(receiver.delivered().len() as f64), Some(0.0)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "metrics: {delivered:?} delivered, depth {depth:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_flaky_receiver_gets_every_event_and_nothing_is_lost() {
    // By request number: 30 % answered 500, 10 % 429 (Retry-After: 0),
    // 5 % never answered (cut by the attempt timeout), the rest 200.
    let receiver = Receiver::start(Arc::new(|n, _| match n % 20 {
        0 | 3 | 6 | 9 | 12 | 15 => Answer::status(500),
        1 | 11 => Answer {
            status: 429,
            header: Some(("retry-after", "0".into())),
            delay: Some(Duration::ZERO),
        },
        7 => Answer {
            delay: None,
            ..Answer::ok()
        },
        _ => Answer::ok(),
    }))
    .await;
    let mut settings = loopback_settings();
    settings.delivery.attempt_timeout = Duration::from_millis(300);
    let (s, store) = push_server(settings).await;
    let tasks = 50;
    let s = Arc::new(s);
    complete_at_once(&s, tasks, &receiver.url()).await;
    let sent = tasks * 3;
    receiver.wait_delivered(sent, Duration::from_secs(30)).await;
    assert!(outbox_drains(store.as_ref()).await);
    let all = receiver.got();
    let delivered = receiver.delivered();
    let mut ids: Vec<_> = delivered
        .iter()
        .map(|r| r.header("x-a2a-event-id").to_string())
        .collect();
    ids.sort();
    let total = ids.len();
    ids.dedup();
    let lost = sent - ids.len();
    eprintln!(
        "flaky receiver: {sent} events sent, {} delivered, {} duplicate deliveries, {} failed attempts retried, {lost} lost",
        ids.len(),
        total - ids.len(),
        all.len() - total
    );
    assert_eq!(lost, 0);
    // Every task's events arrived in order.
    let mut per_task: HashMap<String, Vec<String>> = HashMap::new();
    for r in &delivered {
        per_task
            .entry(r.task_id().to_string())
            .or_default()
            .push(r.kind());
    }
    for (task, events) in per_task {
        assert_eq!(
            events,
            ["TASK_STATE_WORKING", "artifact", "TASK_STATE_COMPLETED"],
            "{task}"
        );
    }
}

//! The LLM path against a real HTTP server on 127.0.0.1 speaking the
//! OpenAI chat-completions protocol (whole and streamed answers): the
//! client's stack (timeout, retry, Retry-After, breaker, half-open probe)
//! and the math agent's use of it (routing, the arithmetic check, the
//! deterministic fallback, streamed chunks, cancel).

use crate::client::{state_of, task_of};
use crate::common::TestServer;
use abacus::client::{text_request, Client};
use abacus::llm::{ChatMessage, CircuitState, LlmClient, LlmConfig, LlmError};
use abacus::math::{Limits, MathAgent};
use abacus::protocol::types::{CancelTaskRequest, SendMessageResponse, StreamResponse, TaskState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the fake provider answers.
#[derive(Clone, Debug)]
enum Mode {
    /// 200 with this text (streamed word by word when asked).
    Answer(String),
    /// Sleeps, then answers "late".
    Slow(Duration),
    /// The first request gets this status (with `Retry-After` if given), the rest "recovered".
    FailOnce(u16, Option<u64>),
    /// Always 503.
    Down,
    /// Streams "tick " every 50 ms, without end.
    Endless,
}

#[derive(Clone)]
struct Fake {
    mode: Arc<Mutex<Mode>>,
    hits: Arc<AtomicUsize>,
    /// Bodies of the chat requests, in order.
    bodies: Arc<Mutex<Vec<Value>>>,
    /// Authorization headers seen.
    auth: Arc<Mutex<Vec<String>>>,
    /// Set when an endless stream noticed its client was gone.
    stream_dropped: Arc<AtomicBool>,
    models_hits: Arc<AtomicUsize>,
}

struct Provider {
    url: String,
    fake: Fake,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Provider {
    async fn start(mode: Mode) -> Self {
        let fake = Fake {
            mode: Arc::new(Mutex::new(mode)),
            hits: Arc::default(),
            bodies: Arc::default(),
            auth: Arc::default(),
            stream_dropped: Arc::default(),
            models_hits: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Provider { url, fake, task }
    }

    fn set(&self, mode: Mode) {
        *self.fake.mode.lock().unwrap() = mode;
    }

    fn hits(&self) -> usize {
        self.fake.hits.load(Ordering::SeqCst)
    }

    fn config(&self) -> LlmConfig {
        LlmConfig {
            provider: "fake".into(),
            base_url: Some(self.url.clone()),
            model: Some("tiny".into()),
            api_key: Some("sk-test-SECRET".into()),
            timeout: Duration::from_millis(500),
            deadline: Duration::from_secs(5),
            breaker_open: Duration::from_millis(400),
            ..LlmConfig::default()
        }
    }

    fn client(&self) -> LlmClient {
        LlmClient::new(self.config()).unwrap().expect("configured")
    }
}

async fn models(State(fake): State<Fake>) -> Json<Value> {
    fake.models_hits.fetch_add(1, Ordering::SeqCst);
    Json(json!({"object": "list", "data": [{"id": "tiny", "object": "model"}]}))
}

fn whole(text: &str) -> Response {
    Json(json!({
        "id": "c1", "object": "chat.completion", "model": "tiny",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    }))
    .into_response()
}

fn sse(frames: impl futures_util::Stream<Item = String> + Send + 'static) -> Response {
    let body = frames.map(|f| Ok::<_, std::convert::Infallible>(format!("data: {f}\n\n")));
    (
        [("content-type", "text/event-stream")],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

fn chunk(text: &str) -> String {
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]})
        .to_string()
}

async fn chat(State(fake): State<Fake>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let n = fake.hits.fetch_add(1, Ordering::SeqCst);
    if let Some(a) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        fake.auth.lock().unwrap().push(a.to_string());
    }
    let streamed = body["stream"] == true;
    fake.bodies.lock().unwrap().push(body);
    let mode = fake.mode.lock().unwrap().clone();
    let text = match mode {
        Mode::Answer(t) => t,
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            "late".into()
        }
        Mode::FailOnce(code, after) if n == 0 => {
            let mut r = (
                StatusCode::from_u16(code).unwrap(),
                Json(json!({"error": {"message": format!("status {code} once")}})),
            )
                .into_response();
            if let Some(s) = after {
                r.headers_mut()
                    .insert("retry-after", s.to_string().parse().unwrap());
            }
            return r;
        }
        Mode::FailOnce(..) => "recovered".into(),
        Mode::Down => {
            return (StatusCode::SERVICE_UNAVAILABLE, "down: sk-test-SECRET").into_response()
        }
        Mode::Endless => {
            let (tx, rx) = tokio::sync::mpsc::channel::<String>(1);
            let dropped = fake.stream_dropped.clone();
            tokio::spawn(async move {
                loop {
                    if tx.send(chunk("tick ")).await.is_err() {
                        dropped.store(true, Ordering::SeqCst);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
            return sse(futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|x| (x, rx))
            }));
        }
    };
    if !streamed {
        return whole(&text);
    }
    let mut frames: Vec<String> = text.split_inclusive(' ').map(chunk).collect();
    frames
        .push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).to_string());
    frames.push(
        json!({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7}}).to_string(),
    );
    frames.push("[DONE]".into());
    sse(futures_util::stream::iter(frames))
}

fn ask(q: &str) -> [ChatMessage; 1] {
    [ChatMessage::user(q)]
}

#[tokio::test]
async fn a_whole_and_a_streamed_answer() {
    let p = Provider::start(Mode::Answer("The answer is 4 .".into())).await;
    let llm = p.client();
    let c = llm.complete(&ask("2+2?")).await.expect("answer");
    assert_eq!(c.text, "The answer is 4 .");
    assert_eq!(
        c.usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
        Some((11, 7))
    );
    let sent = p.fake.bodies.lock().unwrap()[0].clone();
    assert_eq!(sent["model"], "tiny");
    assert_eq!(sent["messages"][0]["content"], "2+2?");
    assert!(sent.get("stream").is_none(), "{sent}");
    assert_eq!(p.fake.auth.lock().unwrap()[0], "Bearer sk-test-SECRET");

    let pieces: Vec<String> = llm
        .stream(&ask("2+2?"))
        .await
        .expect("stream")
        .map(|p| p.expect("piece"))
        .collect()
        .await;
    assert_eq!(pieces, ["The ", "answer ", "is ", "4 ", "."]);
    assert_eq!(p.fake.bodies.lock().unwrap()[1]["stream"], true);
}

#[tokio::test]
async fn a_slow_provider_is_a_timeout_in_bounded_time() {
    let p = Provider::start(Mode::Slow(Duration::from_secs(5))).await;
    let started = Instant::now();
    let e = p.client().complete(&ask("x")).await.unwrap_err();
    assert_eq!(e, LlmError::Timeout);
    // One attempt of 500 ms: a timed-out attempt is not retried.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(p.hits(), 1);
}

#[tokio::test]
async fn a_500_then_healthy_is_retried() {
    let p = Provider::start(Mode::FailOnce(500, None)).await;
    let c = p.client().complete(&ask("x")).await.expect("retried");
    assert_eq!(c.text, "recovered");
    assert_eq!(p.hits(), 2);
}

#[tokio::test]
async fn a_429_waits_for_its_retry_after() {
    let p = Provider::start(Mode::FailOnce(429, Some(1))).await;
    let started = Instant::now();
    let c = p.client().complete(&ask("x")).await.expect("retried");
    assert_eq!(c.text, "recovered");
    assert_eq!(p.hits(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );

    // A wait past the deadline is not slept: the 429 comes back at once.
    let p = Provider::start(Mode::FailOnce(429, Some(60))).await;
    let started = Instant::now();
    let e = p.client().complete(&ask("x")).await.unwrap_err();
    assert_eq!(
        e,
        LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(60))
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(p.hits(), 1);
}

#[tokio::test]
async fn a_down_provider_opens_the_breaker_then_a_probe_closes_it() {
    let p = Provider::start(Mode::Down).await;
    let llm = p.client();
    // 3 attempts, 3 consecutive failures: the breaker opens.
    let e = llm.complete(&ask("x")).await.unwrap_err();
    assert!(matches!(e, LlmError::Status { status: 503, .. }), "{e}");
    assert!(!e.to_string().contains("SECRET"), "the key leaked: {e}");
    assert_eq!(p.hits(), 3);
    assert_eq!(llm.breaker_state(), CircuitState::Open);
    // While open: no call at all.
    assert_eq!(
        llm.complete(&ask("x")).await.unwrap_err(),
        LlmError::Unavailable
    );
    assert_eq!(p.hits(), 3);
    // After the open time, one probe; its success closes the breaker.
    p.set(Mode::Answer("back".into()));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(llm.complete(&ask("x")).await.expect("probe").text, "back");
    assert_eq!(p.hits(), 4);
    assert_eq!(llm.breaker_state(), CircuitState::Closed);
}

/// The math agent with `llm`, served, and a client connected to it.
async fn agent_server(llm: LlmClient) -> (TestServer, Client) {
    let agent = MathAgent::new(Limits::default()).with_llm(llm);
    let s = TestServer::start(agent, MathAgent::card()).await;
    let c = Client::builder(s.url.clone())
        .connect()
        .await
        .expect("connect");
    (s, c)
}

fn message_text(reply: SendMessageResponse) -> String {
    match reply {
        SendMessageResponse::Message(m) => m
            .parts
            .iter()
            .filter_map(|p| p.as_text())
            .collect::<Vec<_>>()
            .join(" "),
        SendMessageResponse::Task(t) => panic!("a message, not {t:?}"),
    }
}

#[tokio::test]
async fn the_agent_routes_word_problems_and_explanations_and_checks_the_arithmetic() {
    let p = Provider::start(Mode::Answer(
        "The train covers 80 * 2 = 170 km in two hours.".into(),
    ))
    .await;
    let (s, c) = agent_server(p.client()).await;

    // Arithmetic stays local: the provider is not asked.
    assert_eq!(message_text(c.send_text("2 + 2").await.unwrap()), "4");
    assert_eq!(p.hits(), 0);

    let text = message_text(
        c.send_text("a train leaves at 3 pm at 80 km/h; how far has it gone at 5 pm?")
            .await
            .unwrap(),
    );
    assert_eq!(p.hits(), 1);
    assert!(text.contains("80 * 2 = 170 km"), "{text}");
    assert!(
        text.contains(
            "Correction by the exact engine: the answer states 80 * 2 = 170, but 80 * 2 = 160"
        ),
        "{text}"
    );
    assert!(text.contains("answered by the LLM (tiny)"), "{text}");
    let system = p.fake.bodies.lock().unwrap()[0]["messages"][0].clone();
    assert_eq!(system["role"], "system");

    // An explanation request goes to the LLM although the engine computes it.
    p.set(Mode::Answer(
        "Because 2^10 = 1024 doubles ten times.".into(),
    ));
    let text = message_text(c.send_text("explain why 2^10 is 1024").await.unwrap());
    assert_eq!(p.hits(), 2);
    assert!(
        text.contains("Checked by the exact engine: 1 arithmetic step is correct."),
        "{text}"
    );
    s.stop().await;
}

#[tokio::test]
async fn without_the_llm_the_engine_answers_what_it_can_and_says_so() {
    let p = Provider::start(Mode::Down).await;
    let (s, c) = agent_server(p.client()).await;
    let text = message_text(c.send_text("explain 2^10").await.unwrap());
    assert!(text.contains("1024"), "{text}");
    assert!(text.contains("the LLM was unavailable"), "{text}");
    assert_eq!(p.hits(), 3);
    // The breaker is open now: a word problem is not sent, and the answer
    // asks for a question the engine can do, in bounded time.
    let started = Instant::now();
    let reply = c.send_text("a farmer has some sheep").await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    let task = task_of(reply);
    assert_eq!(task.status.state, TaskState::InputRequired);
    let said = format!("{:?}", task.status.message);
    assert!(said.contains("circuit breaker open"), "{said}");
    assert_eq!(p.hits(), 3);
    s.stop().await;
}

#[tokio::test]
async fn a_streamed_answer_arrives_as_appended_chunks_the_last_marked() {
    let p = Provider::start(Mode::Answer("So 6 * 7 = 42 in the end".into())).await;
    let (s, c) = agent_server(p.client()).await;
    let mut events = c
        .send_streaming_message(text_request("explain why 6 * 7 is 42"))
        .await
        .expect("stream");
    let mut chunks = Vec::new();
    let mut last_state = None;
    while let Some(e) = events.next().await {
        let e = e.expect("event").response;
        if let StreamResponse::ArtifactUpdate(a) = &e {
            chunks.push((
                a.append,
                a.last_chunk,
                a.artifact.parts[0]
                    .as_text()
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
        last_state = state_of(&e).or(last_state);
    }
    assert_eq!(last_state, Some(TaskState::Completed));
    assert!(chunks.len() >= 3, "{chunks:?}");
    assert_eq!(chunks[0].0, Some(false));
    assert!(chunks[1..].iter().all(|c| c.0 == Some(true)), "{chunks:?}");
    assert!(chunks[..chunks.len() - 1]
        .iter()
        .all(|c| c.1 == Some(false)));
    assert_eq!(chunks.last().unwrap().1, Some(true));
    let whole: String = chunks.iter().map(|c| c.2.as_str()).collect();
    assert!(whole.starts_with("So 6 * 7 = 42 in the end"), "{whole}");
    assert!(whole.contains("Checked by the exact engine"), "{whole}");
    s.stop().await;
}

#[tokio::test]
async fn cancel_mid_stream_stops_the_upstream_stream() {
    let p = Provider::start(Mode::Endless).await;
    let (s, c) = agent_server(p.client()).await;
    let mut events = c
        .send_streaming_message(text_request("explain counting"))
        .await
        .expect("stream");
    let mut task_id = None;
    let mut chunks = 0;
    while let Some(e) = events.next().await {
        match e.expect("event").response {
            StreamResponse::Task(t) => task_id = Some(t.id),
            StreamResponse::ArtifactUpdate(_) => chunks += 1,
            _ => {}
        }
        if chunks >= 2 {
            break;
        }
    }
    let id = task_id.expect("a task");
    let canceled = c
        .cancel_task(CancelTaskRequest {
            id,
            metadata: None,
            tenant: None,
        })
        .await
        .expect("cancel");
    assert_eq!(canceled.status.state, TaskState::Canceled);
    let stopped = crate::common::eventually(|| p.fake.stream_dropped.load(Ordering::SeqCst)).await;
    assert!(stopped, "the provider's stream is still being read");
    s.stop().await;
}

#[tokio::test]
async fn health_reports_the_provider_without_spending_tokens() {
    use abacus::health::HealthCheck;
    let p = Provider::start(Mode::Answer("x".into())).await;
    let check = p.client().health_check();
    let r = check.check().await;
    assert!(r.healthy);
    let again = check.check().await;
    assert!(again.healthy);
    // Cached: one models-list call for two checks, no chat call.
    assert_eq!(p.fake.models_hits.load(Ordering::SeqCst), 1);
    assert_eq!(p.hits(), 0);
    let down = LlmClient::new(LlmConfig {
        base_url: Some("http://127.0.0.1:9/v1".into()),
        ..p.config()
    })
    .unwrap()
    .unwrap();
    let r = down.health_check().check().await;
    assert!(r.healthy, "the LLM is optional: readiness stays up");
    assert!(format!("{r:?}").contains("degraded"), "{r:?}");
}

/// The value of the series of `metric` with these labels (in any order), or 0.
fn series(scrape: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix(metric)?.strip_prefix('{'))
        .filter_map(|l| l.split_once("} "))
        .find(|(found, _)| {
            let found: Vec<&str> = found.split(',').collect();
            found.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| found.contains(&format!("{k}=\"{v}\"").as_str()))
        })
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn calls_tokens_and_the_breaker_are_counted() {
    let handle = abacus::telemetry::prometheus().expect("a recorder");
    let p = Provider::start(Mode::Answer("4".into())).await;
    // A provider label of its own: other tests count under theirs.
    let llm = LlmClient::new(LlmConfig {
        provider: "metered".into(),
        ..p.config()
    })
    .unwrap()
    .unwrap();
    llm.complete(&ask("2+2?")).await.expect("answer");
    p.set(Mode::Down);
    let _ = llm.complete(&ask("x")).await.unwrap_err();
    assert_eq!(
        llm.complete(&ask("x")).await.unwrap_err(),
        LlmError::Unavailable
    );
    let scrape = handle.render();
    let calls = |status: &str| {
        series(
            &scrape,
            "a2a_llm_requests_total",
            &[("provider", "metered"), ("status", status)],
        )
    };
    assert_eq!(calls("ok"), 1.0, "{scrape}");
    assert_eq!(calls("error"), 1.0);
    assert_eq!(calls("unavailable"), 1.0);
    assert_eq!(calls("timeout"), 0.0);
    let tokens = |d: &str| {
        series(
            &scrape,
            "a2a_llm_tokens_total",
            &[("provider", "metered"), ("direction", d)],
        )
    };
    assert_eq!((tokens("in"), tokens("out")), (11.0, 7.0), "{scrape}");
    assert!(
        scrape.contains("a2a_llm_request_duration_seconds"),
        "{scrape}"
    );
    assert!(
        scrape.contains("a2a_circuit_breaker_state{breaker=\"llm\"}"),
        "{scrape}"
    );
}

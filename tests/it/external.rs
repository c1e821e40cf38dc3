//! External math services against real HTTP servers on 127.0.0.1:0.

use abacus::external::{wants_external, CircuitState, ExternalConfig, ExternalError, ExternalMath};
use abacus::health::HealthCheck;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the test server answers.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// 200 "42".
    Healthy,
    /// Sleeps, then 200 "42".
    Slow(Duration),
    /// Requests 1, 3, 5, ... get 503; 2, 4, 6, ... get 200 "42".
    Flaky,
    /// Always 503.
    Down,
    /// Always this status, body "status <code>".
    Status(u16),
}

/// A programmable HTTP server that counts its requests.
struct MockService {
    url: String,
    hits: Arc<AtomicUsize>,
    mode: Arc<Mutex<Mode>>,
    queries: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MockService {
    async fn start(mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v4/", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let mode = Arc::new(Mutex::new(mode));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let (h, m, q) = (hits.clone(), mode.clone(), queries.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (h, m, q) = (h.clone(), m.clone(), q.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let n = h.fetch_add(1, Ordering::SeqCst);
                        q.lock()
                            .unwrap()
                            .push(req.uri().query().unwrap_or_default().to_string());
                        let mode = *m.lock().unwrap();
                        async move { Ok::<_, Infallible>(answer(mode, n).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        MockService {
            url,
            hits,
            mode,
            queries,
            task,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn last_query(&self) -> Option<String> {
        self.queries.lock().unwrap().last().cloned()
    }
}

impl Drop for MockService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(mode: Mode, n: usize) -> Response<Full<Bytes>> {
    let reply = |code: u16, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = StatusCode::from_u16(code).unwrap();
        r
    };
    match mode {
        Mode::Healthy => reply(200, "42".into()),
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            reply(200, "42".into())
        }
        Mode::Flaky if n % 2 == 0 => reply(503, "flaky".into()),
        Mode::Flaky => reply(200, "42".into()),
        Mode::Down => reply(503, "down".into()),
        Mode::Status(code) => reply(code, format!("status {code}")),
    }
}

const APPID: &str = "TEST-APPID";

/// Short durations: 150 ms per attempt, 2 s overall, breaker open 200 ms.
fn config(mathjs: Option<&MockService>, wolfram: Option<&MockService>) -> ExternalConfig {
    ExternalConfig {
        mathjs_url: mathjs.map(|s| s.url.clone()),
        wolfram_url: wolfram.map(|s| s.url.clone()),
        wolfram_appid: wolfram.map(|_| APPID.to_string()),
        timeout: Duration::from_millis(150),
        max_attempts: 3,
        deadline: Duration::from_secs(2),
        breaker_failures: 5,
        breaker_open: Duration::from_millis(200),
        ..ExternalConfig::default()
    }
}

/// Sum of the samples of `name` whose labels include every pair of `labels`.
fn metric(name: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(handle) = abacus::telemetry::prometheus() else {
        return f64::NAN;
    };
    handle
        .render()
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn install_metrics() {
    assert!(
        abacus::telemetry::prometheus().is_some(),
        "the Prometheus recorder is installed"
    );
}

#[tokio::test]
async fn healthy_mathjs_answers_with_the_expression_url_encoded() {
    install_metrics();
    let server = MockService::start(Mode::Healthy).await;
    let math = ExternalMath::new(config(Some(&server), None));
    assert!(math.is_enabled());

    let answer = math.query("2 + 3 * (4 / 2) ^ 2 & é?").await.unwrap();
    assert_eq!(answer.service, "mathjs");
    assert_eq!(answer.answer, "42");
    assert_eq!(server.hits(), 1);
    assert_eq!(
        server.last_query().unwrap(),
        "expr=2%20%2B%203%20%2A%20%284%20%2F%202%29%20%5E%202%20%26%20%C3%A9%3F"
    );
    assert!(
        metric(
            "a2a_external_requests_total",
            &[("service", "mathjs"), ("outcome", "ok")]
        ) >= 1.0
    );
}

#[tokio::test]
async fn wolfram_gets_the_appid_and_the_query() {
    let server = MockService::start(Mode::Healthy).await;
    let math = ExternalMath::new(config(None, Some(&server)));
    let answer = math.query("integral of x^2").await.unwrap();
    assert_eq!(answer.service, "wolfram");
    assert_eq!(answer.answer, "42");
    assert_eq!(
        server.last_query().unwrap(),
        format!("appid={APPID}&i=integral%20of%20x%5E2")
    );
}

#[tokio::test]
async fn slow_service_times_out_within_the_deadline() {
    let server = MockService::start(Mode::Slow(Duration::from_secs(5))).await;
    let cfg = config(Some(&server), None);
    let deadline = cfg.deadline;
    let math = ExternalMath::new(cfg);

    let started = Instant::now();
    assert_eq!(math.query("1 + 1").await, Err(ExternalError::Timeout));
    let elapsed = started.elapsed();
    assert!(elapsed < deadline + Duration::from_secs(1), "{elapsed:?}");
    // Attempt timeouts are retried.
    assert!((1..=3).contains(&server.hits()), "{}", server.hits());
}

#[tokio::test]
async fn overall_deadline_bounds_retries() {
    let server = MockService::start(Mode::Slow(Duration::from_secs(5))).await;
    let cfg = ExternalConfig {
        max_attempts: 50,
        breaker_failures: 0,
        deadline: Duration::from_millis(400),
        ..config(Some(&server), None)
    };
    let math = ExternalMath::new(cfg);
    let started = Instant::now();
    assert_eq!(math.query("1 + 1").await, Err(ExternalError::Timeout));
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(400) + Duration::from_secs(1),
        "{elapsed:?}"
    );
    assert!(server.hits() < 50);
}

#[tokio::test]
async fn flaky_service_recovers_with_a_retry() {
    install_metrics();
    let server = MockService::start(Mode::Flaky).await;
    let math = ExternalMath::new(config(Some(&server), None));
    let before = metric("a2a_retries_total", &[("service", "mathjs")]);

    let answer = math.query("6 * 7").await.unwrap();
    assert_eq!(answer.answer, "42");
    // The first request got 503, the retry 200.
    assert_eq!(server.hits(), 2);
    let retries = server.hits() - 1;
    assert!(retries >= 1);
    let after = metric("a2a_retries_total", &[("service", "mathjs")]);
    assert!(
        after - before >= 1.0,
        "a2a_retries_total {before} -> {after}"
    );
    assert_eq!(math.breakers(), vec![("mathjs", CircuitState::Closed)]);
}

#[tokio::test]
async fn down_service_opens_the_breaker_and_a_probe_closes_it() {
    install_metrics();
    let server = MockService::start(Mode::Down).await;
    let cfg = ExternalConfig {
        max_attempts: 1,
        breaker_failures: 3,
        ..config(Some(&server), None)
    };
    let math = ExternalMath::new(cfg);

    for _ in 0..3 {
        assert_eq!(math.query("1 + 1").await, Err(ExternalError::Status(503)));
    }
    assert_eq!(server.hits(), 3);
    assert_eq!(math.breakers(), vec![("mathjs", CircuitState::Open)]);

    // Open: rejected without a network call.
    for _ in 0..3 {
        assert_eq!(math.query("1 + 1").await, Err(ExternalError::Unavailable));
    }
    assert_eq!(server.hits(), 3);

    // Optional services: healthy, but the status says degraded.
    let health = math.health_check().check().await;
    assert!(health.healthy);
    assert!(
        health.status.contains("degraded: mathjs breaker open"),
        "{}",
        health.status
    );
    assert_eq!(health.details["mathjs"]["breaker"], "open");
    assert_eq!(health.details["mathjs"]["last_outcome"], "unavailable");
    let rendered = abacus::telemetry::prometheus().unwrap().render();
    assert!(
        rendered.contains("a2a_circuit_breaker_state{breaker=\"mathjs\"}"),
        "the breaker gauge is exported"
    );

    // The service heals; after open_duration one probe goes through.
    server.set(Mode::Healthy);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = math.query("1 + 1").await.unwrap();
    assert_eq!(answer.answer, "42");
    assert_eq!(server.hits(), 4);
    assert_eq!(math.breakers(), vec![("mathjs", CircuitState::Closed)]);
    let health = math.health_check().check().await;
    assert!(health.status.starts_with("ok"), "{}", health.status);
    assert_eq!(health.details["mathjs"]["last_outcome"], "ok");
}

#[tokio::test]
async fn failed_probe_reopens_the_breaker() {
    let server = MockService::start(Mode::Down).await;
    let cfg = ExternalConfig {
        max_attempts: 1,
        breaker_failures: 2,
        ..config(Some(&server), None)
    };
    let math = ExternalMath::new(cfg);
    for _ in 0..2 {
        let _ = math.query("1").await;
    }
    assert_eq!(math.breakers(), vec![("mathjs", CircuitState::Open)]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(math.query("1").await, Err(ExternalError::Status(503)));
    assert_eq!(server.hits(), 3);
    assert_eq!(math.breakers(), vec![("mathjs", CircuitState::Open)]);
    assert_eq!(math.query("1").await, Err(ExternalError::Unavailable));
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn retries_stop_when_the_breaker_opens() {
    let server = MockService::start(Mode::Down).await;
    let cfg = ExternalConfig {
        max_attempts: 5,
        breaker_failures: 2,
        ..config(Some(&server), None)
    };
    let math = ExternalMath::new(cfg);
    // Two 503s open the breaker; the third attempt is refused, not retried.
    assert_eq!(math.query("1 + 1").await, Err(ExternalError::Unavailable));
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn bad_request_is_rejected_once_and_never_trips_the_breaker() {
    let server = MockService::start(Mode::Status(400)).await;
    let math = ExternalMath::new(config(Some(&server), None));
    assert_eq!(
        math.query("2 +* 2").await,
        Err(ExternalError::Rejected("status 400".into()))
    );
    assert_eq!(server.hits(), 1, "a 400 is not retried");
    for _ in 0..6 {
        let _ = math.query("2 +* 2").await;
    }
    assert_eq!(server.hits(), 7);
    assert_eq!(math.breakers(), vec![("mathjs", CircuitState::Closed)]);
}

#[tokio::test]
async fn wolfram_no_short_answer_and_bad_appid() {
    let server = MockService::start(Mode::Status(501)).await;
    let cfg = ExternalConfig {
        breaker_failures: 2,
        ..config(None, Some(&server))
    };
    let math = ExternalMath::new(cfg);
    for _ in 0..3 {
        assert!(matches!(
            math.query("meaning of life").await,
            Err(ExternalError::Rejected(_))
        ));
    }
    assert_eq!(server.hits(), 3, "501 is not retried");
    assert_eq!(math.breakers(), vec![("wolfram", CircuitState::Closed)]);

    // 403: not retried, but a breaker failure.
    server.set(Mode::Status(403));
    for _ in 0..2 {
        let e = math.query("x").await.unwrap_err();
        assert!(
            matches!(&e, ExternalError::Rejected(m) if m.contains("appid")),
            "{e}"
        );
        assert!(!e.to_string().contains(APPID));
    }
    assert_eq!(server.hits(), 5);
    assert_eq!(math.breakers(), vec![("wolfram", CircuitState::Open)]);
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let math = ExternalMath::new(ExternalConfig {
        mathjs_url: Some(url),
        timeout: Duration::from_millis(150),
        deadline: Duration::from_secs(2),
        ..ExternalConfig::default()
    });
    assert!(matches!(
        math.query("1 + 1").await,
        Err(ExternalError::Transport(_))
    ));
}

#[tokio::test]
async fn the_fast_service_wins_the_race() {
    let slow = MockService::start(Mode::Slow(Duration::from_secs(10))).await;
    let fast = MockService::start(Mode::Healthy).await;
    let cfg = ExternalConfig {
        timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(5),
        ..config(Some(&slow), Some(&fast))
    };
    let math = ExternalMath::new(cfg);
    let started = Instant::now();
    let answer = math.query("integral of x").await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(answer.service, "wolfram");
    assert_eq!(answer.answer, "42");
    // Well under the slow service's 2 s attempt timeout: it was not awaited.
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(slow.hits(), 1);
    // The cancelled request is not a breaker failure.
    assert_eq!(
        math.breakers(),
        vec![
            ("mathjs", CircuitState::Closed),
            ("wolfram", CircuitState::Closed)
        ]
    );
}

#[tokio::test]
async fn both_down_is_an_error() {
    let a = MockService::start(Mode::Down).await;
    let b = MockService::start(Mode::Down).await;
    let math = ExternalMath::new(config(Some(&a), Some(&b)));
    assert_eq!(math.query("1 + 1").await, Err(ExternalError::Status(503)));
    assert_eq!(a.hits(), 3);
    assert_eq!(b.hits(), 3);
}

#[tokio::test]
async fn the_most_informative_error_is_returned() {
    let invalid = MockService::start(Mode::Status(400)).await;
    let down = MockService::start(Mode::Down).await;
    let math = ExternalMath::new(config(Some(&invalid), Some(&down)));
    assert_eq!(
        math.query("2 +* 2").await,
        Err(ExternalError::Rejected("status 400".into()))
    );
}

#[tokio::test]
async fn disabled_without_services() {
    let math = ExternalMath::new(ExternalConfig::default());
    assert!(!math.is_enabled());
    assert_eq!(
        math.query("integral of x").await,
        Err(ExternalError::Disabled)
    );
    let health = math.health_check().check().await;
    assert!(health.healthy);
}

#[test]
fn wants_external_keywords() {
    let table: &[(&str, bool)] = &[
        ("what is the integral of x^2", true),
        ("Derivative of sin(x)", true),
        ("limit of 1/x as x approaches infinity", true),
        ("taylor series of e^x", true),
        ("power series for 1/(1-x)", true),
        ("series expansion of cos x", true),
        ("complex analysis: residue of 1/z at 0", true),
        ("solve the differential equation y' = y", true),
        ("a linear algebra question", true),
        ("calculus homework", true),
        ("INTEGRATE x dx from 0 to 1", true),
        ("differentiate x^3", true),
        ("solve x^2 - 4 = 0 for x", true),
        ("d/dx x^3", true),
        ("2 + 2", false),
        ("what is 15% of 200", false),
        ("sum of 1, 2, 3", false),
        ("sum of the series 1, 2, 3", false),
        ("fibonacci 100", false),
        ("is 97 prime", false),
        ("solve 2 + 2", false),
        ("unlimited 5 * 5", false),
        ("", false),
    ];
    for (text, expected) in table {
        assert_eq!(wants_external(text), *expected, "{text:?}");
    }
}

#[test]
fn debug_redacts_the_appid() {
    let cfg = ExternalConfig {
        wolfram_appid: Some("VERY-SECRET".into()),
        ..ExternalConfig::default()
    };
    assert!(!format!("{cfg:?}").contains("VERY-SECRET"));
    let math = ExternalMath::new(ExternalConfig {
        wolfram_url: Some("http://127.0.0.1:9/v1/result".into()),
        ..cfg
    });
    assert!(!format!("{math:?}").contains("VERY-SECRET"));
}

/// Asks the math agent (with external services configured) one question
/// through the core service, as SendMessage does.
async fn ask_agent(ext: ExternalMath, question: &str) -> serde_json::Value {
    use abacus::protocol::jsonrpc::decode_request;
    use tower::ServiceExt;
    let agent = abacus::math::MathAgent::new(abacus::math::Limits::default()).with_external(ext);
    let core = abacus::core::Core::builder(agent, abacus::math::MathAgent::card()).build();
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
        "params": {"message": {"messageId": "e", "role": "ROLE_USER", "parts": [{"text": question}]}}});
    let (_, req) = decode_request(body.to_string().as_bytes()).unwrap();
    match core.oneshot(req).await {
        Ok(abacus::protocol::A2AResponse::Unary(u)) => {
            serde_json::to_value(u.outcome.unwrap()).unwrap()
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn agent_answers_what_it_cannot_through_the_external_service() {
    let mathjs = MockService::start(Mode::Healthy).await;
    let r = ask_agent(
        ExternalMath::new(config(Some(&mathjs), None)),
        "taylor series of e^x",
    )
    .await;
    let task = &r["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{r}");
    assert_eq!(task["artifacts"][0]["parts"][0]["text"], "42");
    assert!(task["status"]["message"]["parts"][0]["text"]
        .as_str()
        .unwrap()
        .contains("answered by mathjs"));
    assert_eq!(mathjs.hits(), 1);
}

#[tokio::test]
async fn agent_falls_back_to_local_math_within_the_deadline() {
    let mathjs = MockService::start(Mode::Down).await;
    let cfg = ExternalConfig {
        deadline: Duration::from_millis(600),
        ..config(Some(&mathjs), None)
    };
    let ext = ExternalMath::new(cfg);
    // the local engine can answer this one: it does, and says so
    let started = Instant::now();
    let r = ask_agent(ext.clone(), "integral of nothing: 2 + 2").await;
    let elapsed = started.elapsed();
    let task = &r["task"];
    let state = task["status"]["state"].as_str().unwrap();
    let why = task["status"]["message"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(why.contains("external services failed"), "{r}");
    assert!(
        state == "TASK_STATE_COMPLETED" || state == "TASK_STATE_REJECTED",
        "{r}"
    );
    assert!(
        elapsed < Duration::from_millis(600) + Duration::from_millis(900),
        "took {elapsed:?}"
    );
    // not answerable locally either: rejected with both reasons, also in time
    let started = Instant::now();
    let r = ask_agent(ext, "taylor series of sin(x)").await;
    assert!(started.elapsed() < Duration::from_millis(600) + Duration::from_millis(900));
    assert_eq!(r["task"]["status"]["state"], "TASK_STATE_REJECTED", "{r}");
    let why = r["task"]["status"]["message"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(
        why.contains("external services failed") && why.contains("local engine"),
        "{why}"
    );
    assert!(mathjs.hits() >= 1);
}

#[tokio::test]
async fn the_local_engine_answers_first_when_it_can() {
    let mathjs = MockService::start(Mode::Healthy).await;
    let ext = ExternalMath::new(config(Some(&mathjs), None));
    let r = ask_agent(ext.clone(), "derivative of x^3").await;
    assert_eq!(r["message"]["parts"][0]["text"], "3x^2", "{r}");
    // Not in the local table: the external service is asked.
    let r = ask_agent(ext, "integral of e^(x^2)").await;
    assert_eq!(r["task"]["artifacts"][0]["parts"][0]["text"], "42", "{r}");
    assert_eq!(mathjs.hits(), 1);
}

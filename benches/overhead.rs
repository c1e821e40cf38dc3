//! Per-request costs: each layer on a trivial inner service, the whole
//! default stack, the evaluator, and the JSON-RPC codec.
//!
//! `cargo bench -p abacus-benches`

use abacus::protocol::jsonrpc::{decode_request, encode_reply};
use abacus::protocol::types::{Message, Part, Role};
use abacus::protocol::{A2AError, A2ARequest, A2AResponse, JsonRpcId, Reply};
use abacus::stack::{A2ALayers, StackConfig};
use abacus_layers::circuit_breaker::CircuitBreakerLayer;
use abacus_layers::concurrency::ConcurrencyLimitLayer;
use abacus_layers::metrics::MetricsLayer;
use abacus_layers::timeout::TimeoutLayer;
use criterion::{criterion_group, criterion_main, Criterion};
use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;
use tower::{service_fn, Layer, Service, ServiceExt};

const BODY: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"bench-msg-1","role":"ROLE_USER","parts":[{"text":"2 + 2"}]}}}"#;

fn request() -> A2ARequest {
    decode_request(BODY).unwrap().1
}

/// The math agent's core: the layers ask it what may be cached.
fn math_core() -> abacus::core::Core {
    abacus::core::Core::builder(
        abacus::math::MathAgent::new(abacus::math::Limits::default()),
        abacus::math::MathAgent::card(),
    )
    .build()
}

fn reply() -> A2AResponse {
    let msg = Message::new(Role::Agent, vec![Part::text("4")]);
    A2AResponse::ok(Reply::Message(Box::new(msg)))
}

/// The trivial inner service: answers at once.
fn trivial() -> impl Service<
    A2ARequest,
    Response = A2AResponse,
    Error = Infallible,
    Future = std::future::Ready<Result<A2AResponse, Infallible>>,
> + Clone {
    service_fn(|_req: A2ARequest| std::future::ready(Ok::<_, Infallible>(reply())))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Calls per `block_on`: entering the runtime costs more than a layer, so
/// it is paid once per batch and the figures are per call.
const CALLS_PER_BATCH: u64 = 100;

/// Times one call of `svc` (compare with `baseline/trivial`, the trivial
/// service alone, measured the same way).
fn bench_service<S>(c: &mut Criterion, name: &str, svc: S)
where
    S: Service<A2ARequest, Response = A2AResponse> + Clone,
    S::Error: std::fmt::Debug,
{
    let req = request();
    bench_requests(c, name, svc, move || req.clone());
}

/// Times one call of `svc` with a request made by `request`.
fn bench_requests<S, R>(c: &mut Criterion, name: &str, svc: S, request: impl Fn() -> R)
where
    S: Service<R> + Clone,
    S::Error: std::fmt::Debug,
{
    let rt = rt();
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let batches = iters.div_ceil(CALLS_PER_BATCH);
            let start = std::time::Instant::now();
            for _ in 0..batches {
                rt.block_on(async {
                    for _ in 0..CALLS_PER_BATCH {
                        let r = svc.clone().oneshot(request()).await.unwrap();
                        black_box(r);
                    }
                });
            }
            // Per call, scaled back to the `iters` criterion asked for.
            start
                .elapsed()
                .mul_f64(iters as f64 / (batches * CALLS_PER_BATCH) as f64)
        })
    });
}

fn layers(c: &mut Criterion) {
    // Installed so metric macros do real work, as in the server.
    let _ = abacus::telemetry::prometheus();
    bench_service(c, "baseline/trivial", trivial());
    bench_service(c, "layer/metrics", MetricsLayer::new().layer(trivial()));
    bench_service(
        c,
        "layer/metrics_kept_handles",
        MetricsLayer::new().keep_handles(true).layer(trivial()),
    );
    bench_service(
        c,
        "layer/concurrency",
        ConcurrencyLimitLayer::new(1024)
            .load_shed(true)
            .layer(trivial()),
    );
    bench_service(
        c,
        "layer/timeout",
        TimeoutLayer::new(Duration::from_secs(30)).layer(trivial()),
    );
    bench_service(
        c,
        "layer/circuit_breaker",
        CircuitBreakerLayer::new().layer(trivial()),
    );
    let core = math_core();
    let a2a = A2ALayers::new(&StackConfig::default(), &core);
    bench_service(c, "layer/cache_hit", a2a.cache.clone().layer(trivial()));
    bench_service(c, "stack/default_cache_hit", a2a.wrap(trivial()));
    let no_cache = A2ALayers::new(
        &StackConfig {
            cache: false,
            ..StackConfig::default()
        },
        &core,
    );
    bench_service(c, "stack/default_no_cache", no_cache.wrap(trivial()));
    // `--rate-limit 1000000000/s`: one quota check per request, every request
    // under its quota (the server's key: the principal, else the peer).
    let limited = A2ALayers::new(
        &StackConfig {
            rate_limit: Some("1000000000/s".parse().expect("a valid rate spec")),
            ..StackConfig::default()
        },
        &core,
    );
    bench_service(
        c,
        "layer/rate_limit",
        limited.rate_limit.clone().layer(trivial()),
    );
}

/// The authentication layer runs on the HTTP request head, before the
/// binding decodes the body: timed on a trivial HTTP service.
fn http_layers(c: &mut Criterion) {
    use abacus_layers::auth::{ApiKeys, AuthLayer};
    let trivial_http = service_fn(|_req: http::Request<()>| {
        std::future::ready(Ok::<_, Infallible>(http::Response::new(String::new())))
    });
    let keys = ApiKeys::parse("alice:bench-key-1,bob:bench-key-2").expect("valid keys");
    let authed = AuthLayer::new(keys).layer(trivial_http);
    let request = || {
        http::Request::builder()
            .method("POST")
            .uri("/")
            .header("x-api-key", "bench-key-2")
            .body(())
            .expect("a valid request")
    };
    // A rejected key would time the rejection instead.
    let answer = rt().block_on(authed.clone().oneshot(request()));
    assert_eq!(answer.expect("infallible").status(), http::StatusCode::OK);
    bench_requests(c, "baseline/trivial_http", trivial_http, request);
    bench_requests(c, "layer/auth_api_key", authed, request);
}

fn codec(c: &mut Criterion) {
    c.bench_function("json/decode_send_message", |b| {
        b.iter(|| black_box(decode_request(black_box(BODY)).unwrap()))
    });
    let msg = Message::new(Role::Agent, vec![Part::text("4")]);
    let outcome: Result<Reply, A2AError> = Ok(Reply::Message(Box::new(msg)));
    let mut buf = Vec::with_capacity(512);
    c.bench_function("json/encode_message_reply", |b| {
        b.iter(|| {
            buf.clear();
            encode_reply(&mut buf, &JsonRpcId::Number(1), black_box(&outcome));
            black_box(buf.len())
        })
    });
}

fn evaluator(c: &mut Criterion) {
    let limits = abacus::math::Limits::default();
    for q in [
        "2 + 2",
        "what is 15% of 200",
        "2^200",
        "prime factors 600851475143",
    ] {
        c.bench_function(&format!("math/{q}"), |b| {
            b.iter(|| {
                // A fresh budget per question, as the agent does.
                let budget = abacus::math::Budget::new(Duration::from_secs(5));
                let query = abacus::math::parse(black_box(q), &limits).unwrap();
                black_box(query.evaluate(&limits, &budget, &mut |_| {}).unwrap())
            })
        });
    }
}

fn end_to_end(c: &mut Criterion) {
    // The math agent through the default stack, in process (no HTTP).
    let core = math_core();
    for (name, cache) in [
        ("core/math_2+2_cache_on", true),
        ("core/math_2+2_cache_off", false),
    ] {
        let layers = A2ALayers::new(
            &StackConfig {
                cache,
                ..StackConfig::default()
            },
            &core,
        );
        bench_service(c, name, layers.default_stack(core.clone()));
    }
}

criterion_group!(benches, layers, http_layers, codec, evaluator, end_to_end);
criterion_main!(benches);

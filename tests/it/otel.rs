//! OpenTelemetry traces, for real: the `abacus` binary exports over OTLP
//! (`http/protobuf`, `http/json` and `grpc`) to a receiver this test runs
//! on loopback; a request carrying a W3C `traceparent` yields one trace with
//! the caller's span as the parent of `a2a.request`, the agent's span under
//! it, and the same trace id on the call the agent makes to an external
//! service and on the webhook a push notification posts (kept in the
//! outbox until delivered).

use crate::common::{abacus_serve, free_ports, get, raw_request};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get as get_route, post};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One exported span: ids in hex, as in `traceparent`.
#[derive(Debug, Clone)]
struct Span {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    kind: i64,
}

#[derive(Default)]
struct Seen {
    spans: Vec<Span>,
    content_types: Vec<String>,
    /// `traceparent` of each call the external service got.
    outbound: Vec<String>,
    /// `traceparent` of each webhook (push notification) received.
    webhooks: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The spans of an OTLP protobuf export (HTTP body or gRPC message).
fn spans_of(req: &ExportTraceServiceRequest) -> Vec<Span> {
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| Span {
            trace_id: hex(&s.trace_id),
            span_id: hex(&s.span_id),
            parent: hex(&s.parent_span_id),
            name: s.name.clone(),
            kind: i64::from(s.kind),
        })
        .collect()
}

/// Spans of an OTLP/HTTP export, protobuf or JSON.
fn decode(content_type: &str, body: &[u8]) -> Vec<Span> {
    if content_type.contains("protobuf") {
        use prost::Message;
        let req = ExportTraceServiceRequest::decode(body).expect("a valid OTLP protobuf export");
        spans_of(&req)
    } else {
        let v: serde_json::Value = serde_json::from_slice(body).expect("a valid OTLP JSON export");
        let text =
            |s: &serde_json::Value, k: &str| s[k].as_str().unwrap_or_default().to_lowercase();
        let mut out = Vec::new();
        for r in v["resourceSpans"].as_array().into_iter().flatten() {
            for scope in r["scopeSpans"].as_array().into_iter().flatten() {
                for s in scope["spans"].as_array().into_iter().flatten() {
                    out.push(Span {
                        trace_id: text(s, "traceId"),
                        span_id: text(s, "spanId"),
                        parent: text(s, "parentSpanId"),
                        name: text(s, "name"),
                        kind: s["kind"].as_i64().unwrap_or(0),
                    });
                }
            }
        }
        out
    }
}

async fn receive(State(seen): State<Shared>, headers: HeaderMap, body: Bytes) -> &'static str {
    let ctype = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let spans = decode(&ctype, &body);
    let mut seen = seen.lock().unwrap();
    seen.content_types.push(ctype);
    seen.spans.extend(spans);
    "{}"
}

/// The OTLP/gRPC trace service, as a collector serves it.
struct GrpcReceiver(Shared);

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = spans_of(request.get_ref());
        let mut seen = self.0.lock().unwrap();
        seen.content_types.push("application/grpc".into());
        seen.spans.extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn mathjs(State(seen): State<Shared>, headers: HeaderMap) -> &'static str {
    let parent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_string();
    seen.lock().unwrap().outbound.push(parent);
    "42"
}

async fn webhook(State(seen): State<Shared>, headers: HeaderMap) -> &'static str {
    let parent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_string();
    seen.lock().unwrap().webhooks.push(parent);
    "ok"
}

async fn listen(app: axum::Router, port: u16) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
}

async fn one_traced_request(protocol: &str) {
    let [port, otlp, external] = free_ports();
    let seen = Shared::default();
    if protocol == "grpc" {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", otlp))
            .await
            .unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let service = TraceServiceServer::new(GrpcReceiver(seen.clone()));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        );
    } else {
        let receiver = axum::Router::new()
            .route("/v1/traces", post(receive))
            .with_state(seen.clone());
        listen(receiver, otlp).await;
    }
    let service = axum::Router::new()
        .route("/", get_route(mathjs))
        .route("/hook", post(webhook))
        .with_state(seen.clone());
    listen(service, external).await;

    // The reply cache's Redis tier, when redis-server is installed.
    let redis = crate::redis_cache::Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = abacus_serve(port);
    if let Some(r) = &redis {
        cmd.args(["--redis-url", &r.url()]);
    } else {
        eprintln!("{protocol}: no redis-server, the Redis span is not checked");
    }
    let child = cmd
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args(["--mathjs-url", &format!("http://127.0.0.1:{external}/")])
        .args(["--push-allow", "127.0.0.1/32", "--push-allow-http"])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{otlp}"),
        )
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_SERVICE_NAME", "abacus-test")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .spawn()
        .map(Kill)
        .expect("start abacus");
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..300 {
        if matches!(get(&format!("{base}/health")).await, Ok((200, _))) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "abacus did not come up");

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{caller}-01");
    // The local engine has no Taylor series: the external service is asked.
    // With a push config: its notifications go out later, from the outbox.
    let hook = format!("http://127.0.0.1:{external}/hook");
    let send = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "SendMessage",
        "params": crate::push::send_with_push("taylor series of e^x", &hook, None),
    });
    post_traced(&base, send.to_string(), &traceparent).await;

    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = seen.lock().unwrap().spans.clone();
        let names: Vec<&str> = spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .map(|s| s.name.as_str())
            .collect();
        let hooked = !seen.lock().unwrap().webhooks.is_empty();
        if names.contains(&"a2a.request")
            && names.contains(&"a2a.agent")
            && names.contains(&"push.deliver")
            && hooked
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ours: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    let request = ours
        .iter()
        .find(|s| s.name == "a2a.request")
        .unwrap_or_else(|| panic!("{protocol}: no a2a.request span in {spans:?}"));
    assert_eq!(
        request.parent, caller,
        "{protocol}: the caller's span is the parent"
    );
    // SPAN_KIND_SERVER
    assert_eq!(request.kind, 2, "{protocol}: {request:?}");
    let agent = ours
        .iter()
        .find(|s| s.name == "a2a.agent")
        .unwrap_or_else(|| panic!("{protocol}: no a2a.agent span in {ours:?}"));
    assert_eq!(
        agent.parent, request.span_id,
        "{protocol}: the agent's work is under the request"
    );
    if redis.is_some() {
        check_redis_spans(&seen, &base, protocol).await;
    }
    let seen = seen.lock().unwrap();
    let want = match protocol {
        "http/json" => "json",
        "grpc" => "grpc",
        _ => "protobuf",
    };
    assert!(
        seen.content_types.iter().all(|c| c.contains(want)),
        "{protocol}: {:?}",
        seen.content_types
    );
    // The outbound call carries the same trace, as a child of this process's spans.
    assert_eq!(seen.outbound.len(), 1, "{protocol}: {:?}", seen.outbound);
    let outbound = &seen.outbound[0];
    assert!(
        outbound.starts_with(&format!("00-{trace_id}-")),
        "{protocol}: outbound traceparent {outbound}"
    );
    let parent_of_call = &outbound[36..52];
    assert!(
        ours.iter().any(|s| s.span_id == parent_of_call),
        "{protocol}: the outbound call's parent {parent_of_call} is one of the trace's spans"
    );
    // The webhook joins the same trace: its parent is the delivery's
    // client span, itself under one of this request's spans.
    let hook = seen
        .webhooks
        .first()
        .unwrap_or_else(|| panic!("{protocol}: no webhook arrived"));
    assert!(
        hook.starts_with(&format!("00-{trace_id}-")),
        "{protocol}: webhook traceparent {hook}"
    );
    let deliver = ours
        .iter()
        .find(|s| s.span_id == hook[36..52])
        .unwrap_or_else(|| panic!("{protocol}: the webhook's parent is not exported: {ours:?}"));
    assert_eq!(deliver.name, "push.deliver", "{protocol}");
    // SPAN_KIND_CLIENT
    assert_eq!(deliver.kind, 3, "{protocol}: {deliver:?}");
    assert!(
        ours.iter().any(|s| s.span_id == deliver.parent),
        "{protocol}: the delivery's parent {} is one of the trace's spans",
        deliver.parent
    );
    drop(seen);
    drop(child);
}

/// POSTs a JSON-RPC `body` to `base` as the child of `traceparent`; it
/// must succeed.
async fn post_traced(base: &str, body: String, traceparent: &str) {
    let (status, _, reply) = raw_request(
        &format!("{base}/"),
        "POST",
        Bytes::from(body),
        &[
            ("content-type", "application/json"),
            ("a2a-version", "1.0"),
            ("traceparent", traceparent),
        ],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
}

/// A cacheable question asked under a trace of its own: the reply cache's
/// Redis lookup (a miss) and store are client spans under its request.
async fn check_redis_spans(seen: &Shared, base: &str, protocol: &str) {
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let traceparent = format!("00-{trace_id}-b7ad6b7169203331-01");
    post_traced(
        base,
        crate::common::send_body("SendMessage", "17 * 23"),
        &traceparent,
    )
    .await;
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = seen
            .lock()
            .unwrap()
            .spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect::<Vec<_>>();
        if spans.iter().filter(|s| s.name == "redis").count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let request = spans
        .iter()
        .find(|s| s.name == "a2a.request")
        .unwrap_or_else(|| panic!("{protocol}: no a2a.request span in {spans:?}"));
    let redis: Vec<&Span> = spans.iter().filter(|s| s.name == "redis").collect();
    assert!(redis.len() >= 2, "{protocol}: GET and SET spans: {spans:?}");
    for r in redis {
        // SPAN_KIND_CLIENT, under this request
        assert_eq!(r.kind, 3, "{protocol}: {r:?}");
        assert_eq!(r.parent, request.span_id, "{protocol}: {r:?}");
    }
}

/// Stops the server however the test ends.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn traces_reach_an_otlp_http_protobuf_receiver() {
    one_traced_request("http/protobuf").await;
}

#[tokio::test]
async fn traces_reach_an_otlp_http_json_receiver() {
    one_traced_request("http/json").await;
}

#[tokio::test]
async fn traces_reach_an_otlp_grpc_receiver() {
    one_traced_request("grpc").await;
}

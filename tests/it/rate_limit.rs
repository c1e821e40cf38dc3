//! `--rate-limit` on a real server: a client gets its burst, then
//! `-32064 RATE_LIMITED` with the wait in the error's data and in
//! `Retry-After`; clients are keyed apart by principal, else by IP address;
//! an override gives a principal more; the counters move.
//!
//! No assertion here depends on timing beyond the burst: at `5/s` the 4th
//! request of a burst of 3 is refused unless 200 ms passed since the first,
//! and each request takes a millisecond or so.

use crate::common::{get, sample, send_body};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};

async fn start(
    config_of: impl FnOnce(&mut abacus::config::Config),
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (url, stop, _) = crate::common::serve_math(config_of, None).await;
    for _ in 0..100 {
        if get(&format!("{url}health")).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    (addr, stop)
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    content_type: String,
    body: Value,
}

impl Answer {
    fn code(&self) -> Option<i64> {
        self.body["error"]["code"].as_i64()
    }
}

/// POSTs `body` to the server from a socket bound to `from` (127.0.0.1 or
/// 127.0.0.2: both are loopback on Linux), on a connection of its own.
async fn post_from(
    server: SocketAddr,
    from: IpAddr,
    body: String,
    headers: &[(&str, &str)],
) -> Answer {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let stream = socket.connect(server).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::post("/")
        .header("host", server.to_string())
        .header("content-type", "application/json")
        .header("a2a-version", "1.0");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let header = |name| {
        resp.headers()
            .get(name)
            .map(|v: &http::HeaderValue| v.to_str().unwrap().to_string())
    };
    let (retry_after, content_type) = (
        header(http::header::RETRY_AFTER),
        header(http::header::CONTENT_TYPE).unwrap_or_default(),
    );
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        retry_after,
        content_type,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn ask(server: SocketAddr, from: IpAddr, auth: &[(&str, &str)]) -> Answer {
    post_from(server, from, send_body("SendMessage", "6 * 7"), auth).await
}

const HOST_A: &str = "127.0.0.1";
const HOST_B: &str = "127.0.0.2";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn counter(outcome: &str) -> f64 {
    let scrape = abacus::telemetry::prometheus()
        .expect("the server installed the recorder")
        .render();
    sample(&scrape, "a2a_rate_limit_total", "outcome", outcome).unwrap_or(0.0)
}

#[tokio::test]
async fn a_client_gets_its_burst_then_rate_limited_with_the_wait_and_other_peers_are_not() {
    let (server, stop) = start(|c| {
        c.stack.rate_limit = Some("5/s".parse().unwrap());
        c.stack.rate_limit_burst = Some(3);
    })
    .await;
    let (allowed_before, limited_before) = (counter("allowed"), counter("limited"));

    for i in 0..3 {
        let a = ask(server, ip(HOST_A), &[]).await;
        assert_eq!(a.status, 200);
        assert_eq!(
            a.body["result"]["message"]["parts"][0]["text"], "42",
            "answer {i}: {}",
            a.body
        );
        assert_eq!(a.retry_after, None);
    }
    let limited = ask(server, ip(HOST_A), &[]).await;
    // A JSON-RPC error in HTTP 200, as every other error, with Retry-After.
    assert_eq!(limited.status, 200);
    assert_eq!(limited.code(), Some(-32064), "{}", limited.body);
    assert_eq!(limited.retry_after.as_deref(), Some("1"));
    let data = &limited.body["error"]["data"];
    assert_eq!(data[0]["@type"], "type.googleapis.com/google.rpc.RetryInfo");
    let delay = data[0]["retryDelay"].as_str().unwrap();
    let secs: f64 = delay.strip_suffix('s').unwrap().parse().unwrap();
    assert!(
        secs > 0.0 && secs <= 0.2,
        "at 5/s the wait is under 200 ms: {delay}"
    );
    assert_eq!(data[1]["reason"], "RATE_LIMITED", "{data}");
    assert_eq!(data[1]["metadata"]["retryAfterSeconds"], "1", "{data}");

    // A streaming method is limited when it starts: a JSON reply, no stream.
    let stream = post_from(
        server,
        ip(HOST_A),
        send_body("SendStreamingMessage", "fibonacci 10"),
        &[],
    )
    .await;
    assert_eq!(stream.code(), Some(-32064), "{}", stream.body);
    assert!(stream.content_type.starts_with("application/json"));
    assert_eq!(stream.retry_after.as_deref(), Some("1"));

    // Another address is another client, with its own burst.
    for _ in 0..3 {
        let b = ask(server, ip(HOST_B), &[]).await;
        assert!(b.body.get("result").is_some(), "{}", b.body);
    }
    assert_eq!(ask(server, ip(HOST_B), &[]).await.code(), Some(-32064));

    // Shared counters (other tests' servers count too): at least ours.
    assert!(counter("allowed") >= allowed_before + 6.0);
    assert!(counter("limited") >= limited_before + 3.0);
    let scrape = abacus::telemetry::prometheus().unwrap().render();
    assert!(
        sample(&scrape, "a2a_errors_total", "error_type", "RATE_LIMITED").unwrap_or(0.0) >= 3.0,
        "{scrape}"
    );
    let _ = stop.send(());
}

#[tokio::test]
async fn principals_are_keyed_apart_from_one_address_and_an_override_gives_more() {
    let (server, stop) = start(|c| {
        c.api_keys = Some("alice:k-alice, bob:k-bob, carol:k-carol".into());
        c.stack.rate_limit = Some("5/s, alice=50/s".parse().unwrap());
        c.stack.rate_limit_burst = Some(3);
    })
    .await;
    let bob = [("x-api-key", "k-bob")];
    for _ in 0..3 {
        let a = ask(server, ip(HOST_A), &bob).await;
        assert!(a.body.get("result").is_some(), "{}", a.body);
    }
    assert_eq!(ask(server, ip(HOST_A), &bob).await.code(), Some(-32064));

    // From the same address, carol is another client: her own burst of 3.
    let carol = [("x-api-key", "k-carol")];
    for _ in 0..3 {
        let a = ask(server, ip(HOST_A), &carol).await;
        assert!(a.body.get("result").is_some(), "{}", a.body);
    }
    assert_eq!(ask(server, ip(HOST_A), &carol).await.code(), Some(-32064));

    // alice=50/s: a burst of 50 (one second of her rate), not 3.
    let alice = [("x-api-key", "k-alice")];
    for i in 0..20 {
        let a = ask(server, ip(HOST_A), &alice).await;
        assert!(
            a.body.get("result").is_some(),
            "alice's request {i}: {}",
            a.body
        );
    }
    // Unauthenticated calls are refused before the limiter (401), uncounted.
    assert_eq!(ask(server, ip(HOST_A), &[]).await.status, 401);
    let _ = stop.send(());
}

#[tokio::test]
async fn without_the_flag_there_is_no_limiter() {
    let (server, stop) = start(|_| {}).await;
    for _ in 0..20 {
        let a = ask(server, ip(HOST_A), &[]).await;
        assert!(a.body.get("result").is_some(), "{}", a.body);
        assert_eq!(a.retry_after, None);
    }
    let _ = stop.send(());
    let core = abacus::core::Core::builder(
        abacus::math::MathAgent::new(Default::default()),
        abacus::math::MathAgent::card(),
    )
    .build();
    let layers = abacus::stack::A2ALayers::new(&Default::default(), &core);
    assert!(layers.rate_limit_handle().is_none());
}

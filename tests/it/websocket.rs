//! The WebSocket `/stream` endpoint with a real client.

use crate::common::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(s: &TestServer) -> Ws {
    let url = format!("{}stream", s.url.replace("http://", "ws://"));
    let (ws, resp) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

/// Sends one text frame and collects frames until `complete` or `error`.
async fn exchange(ws: &mut Ws, frame: &str) -> Vec<Value> {
    ws.send(Message::Text(frame.into())).await.unwrap();
    let mut frames = Vec::new();
    while let Some(msg) = ws.next().await {
        let Message::Text(t) = msg.unwrap() else {
            continue;
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        let kind = v["type"].as_str().unwrap().to_string();
        frames.push(v);
        if kind == "complete" || kind == "error" {
            break;
        }
    }
    frames
}

/// A `/stream` frame in the older message shape (`"role": "user"`, `"kind"`
/// parts), which the endpoint still accepts.
fn legacy_message(text: &str) -> String {
    json!({"message": {"messageId": "ws-test", "role": "user", "parts": [{"kind": "text", "text": text}]}})
        .to_string()
}

fn part_texts(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "message_part")
        .filter_map(|f| f["part"]["text"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn streams_progress_then_complete_and_survives_bad_frames() {
    let s = TestServer::math().await;
    let mut ws = connect(&s).await;

    let fib = exchange(&mut ws, &legacy_message("fibonacci 30")).await;
    assert_eq!(fib.last().unwrap()["type"], "complete", "{fib:?}");
    assert!(fib
        .iter()
        .any(|f| f["type"] == "status" && f["state"] == "working"));
    let texts = part_texts(&fib);
    assert!(texts.contains(&"832040".to_string()), "{texts:?}");
    assert!(
        fib.iter().filter(|f| f["type"] == "message_part").count() >= 2,
        "{fib:?}"
    );

    let bad = exchange(&mut ws, "{this is not json").await;
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["type"], "error");
    assert!(bad[0]["error"].as_str().unwrap().contains("invalid JSON"));

    // the socket is still usable, and v1.0 messages work too
    let v1 = json!({"message": {"messageId": "m2", "role": "ROLE_USER", "parts": [{"text": "prime factors 600851475143"}]}});
    let pf = exchange(&mut ws, &v1.to_string()).await;
    assert_eq!(pf.last().unwrap()["type"], "complete", "{pf:?}");
    let texts = part_texts(&pf);
    assert!(
        texts.iter().any(|t| t.contains("71 × 839 × 1471 × 6857")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.to_lowercase().contains("factor")),
        "progress lines expected: {texts:?}"
    );

    let err = exchange(&mut ws, &legacy_message("1/0")).await;
    assert_eq!(err.last().unwrap()["type"], "error");
    assert!(err.last().unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("division by zero"));

    ws.close(None).await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn plain_get_on_stream_asks_for_an_upgrade() {
    let s = TestServer::math().await;
    let (status, _) = s.request("GET", "/stream", Default::default(), &[]).await;
    assert_eq!(status, 426);
    s.stop().await;
}

#[tokio::test]
async fn json_rpc_and_websocket_fill_request_meta_the_same_way() {
    use abacus::card::{CardBuilder, ServedCard};
    use abacus::http::{serve, HttpApp, HttpOptions};
    use abacus::protocol::{A2AError, A2ARequest, A2AResponse, RequestMeta};
    use std::sync::{Arc, Mutex};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    // A stack that records what it is given and answers with an error.
    let seen: Arc<Mutex<Vec<RequestMeta>>> = Arc::default();
    let record = seen.clone();
    let stack = tower::service_fn(move |req: A2ARequest| {
        record.lock().unwrap().push(req.meta);
        async { Ok::<_, A2AError>(A2AResponse::error(A2AError::internal("recorded"))) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let card = ServedCard::new(CardBuilder::new("meta", "records").build(), "http://x/");
    let app = HttpApp::new(stack, card, HttpOptions::default());
    let server = tokio::spawn(serve(
        listener,
        app,
        std::future::pending(),
        std::time::Duration::ZERO,
    ));
    let headers = [
        ("x-timeout-ms", "1234"),
        ("a2a-version", "1.0"),
        ("a2a-extensions", "urn:x:one, urn:x:two"),
    ];

    let body = crate::common::send_body("SendMessage", "hi");
    let mut rpc_headers = vec![("content-type", "application/json")];
    rpc_headers.extend(headers);
    let url = format!("http://{addr}/");
    crate::common::raw_request(&url, "POST", body.into(), &rpc_headers).await;

    let mut upgrade = format!("ws://{addr}/stream").into_client_request().unwrap();
    for (k, v) in headers {
        upgrade.headers_mut().insert(k, v.parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(upgrade).await.unwrap();
    for _ in 0..2 {
        let frames = exchange(&mut ws, &legacy_message("hi")).await;
        assert_eq!(frames.last().unwrap()["type"], "error", "{frames:?}");
    }
    server.abort();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "one JSON-RPC call, two WebSocket messages");
    for meta in seen.iter() {
        assert_eq!(meta.timeout, Some(std::time::Duration::from_millis(1234)));
        assert_eq!(meta.version.as_deref(), Some("1.0"));
        assert_eq!(meta.extensions, ["urn:x:one", "urn:x:two"]);
        assert_eq!(meta.peer.map(|p| p.ip()), Some(addr.ip()));
        assert!(meta.principal.is_anonymous());
    }
    let ids: std::collections::HashSet<u64> = seen.iter().map(|m| m.request_id).collect();
    assert_eq!(ids.len(), 3, "every request, every message gets its own id");
}

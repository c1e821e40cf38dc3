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

//! The examples, built and exercised over real HTTP.

#[path = "../../examples/axum_reuse.rs"]
#[allow(dead_code)]
mod axum_reuse;

#[path = "../../examples/custom_stack.rs"]
#[allow(dead_code)]
mod custom_stack;

use crate::common::{bound_memory_config, get, raw_request};
use serde_json::json;

#[tokio::test]
async fn axum_app_uses_the_layers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, axum_reuse::app(None)).await });
    let (status, body) = get(&format!("{base}/hello")).await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("hello"));
    // the timeout layer answers for the slow route
    let (status, body) = get(&format!("{base}/slow")).await.unwrap();
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("timed out"));
    server.abort();
}

async fn post_json(url: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let headers = [("content-type", "application/json"), ("a2a-version", "1.0")];
    let (status, _, bytes) = raw_request(url, "POST", body.to_string().into(), &headers).await;
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn the_a2a_edge_mounts_in_an_axum_router() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum_reuse::with_a2a(axum_reuse::app(None), &base);
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let send = json!({"jsonrpc": "2.0", "id": 9, "method": "SendMessage", "params": {"message":
        {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "6 * 7"}]}}});
    let (status, reply) = post_json(&format!("{base}/a2a/"), send).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["id"], 9);
    assert_eq!(
        reply["result"]["message"]["parts"][0]["text"], "42",
        "{reply}"
    );
    let (status, card) = get(&format!("{base}/a2a/.well-known/agent-card.json"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(card.contains(&format!("{base}/a2a/")), "{card}");
    // the edge's own route table answers inside the mount
    assert_eq!(get(&format!("{base}/a2a/")).await.unwrap().0, 405);
    assert_eq!(get(&format!("{base}/a2a/nope")).await.unwrap().0, 404);
    // the app's own routes are untouched
    assert_eq!(get(&format!("{base}/hello")).await.unwrap().0, 200);
    server.abort();
}

#[tokio::test]
async fn custom_stack_serves_the_math_agent_with_its_own_layer() {
    let (listener, config) = bound_memory_config().await;
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(custom_stack::server(config).run_on(listener, async move {
        let _ = rx.await;
    }));
    let client = abacus::client::JsonRpcClient::new(&format!("http://{addr}/"));
    let r = client
        .call(
            "SendMessage",
            abacus::client::JsonRpcClient::text_params("6 * 7"),
        )
        .await
        .unwrap();
    assert_eq!(r["result"]["message"]["parts"][0]["text"], "42", "{r}");
    let r = client.call("ListTasks", json!({})).await.unwrap();
    assert_eq!(r["error"]["code"], -32004, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("disabled"));
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

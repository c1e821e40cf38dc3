//! Shared helpers: a real server on 127.0.0.1:0 and raw HTTP access to it.
#![allow(dead_code)]

use abacus::agent::Agent;
use abacus::card::ServedCard;
use abacus::client::Client;
use abacus::core::Core;
use abacus::http::{serve, HttpApp, HttpOptions};
use abacus::protocol::types::AgentCard;
use abacus::stack::{A2ALayers, StackConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::oneshot;

pub struct TestServer {
    pub url: String,
    pub core: Core,
    pub layers: A2ALayers,
    pub client: Client,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(agent: impl Agent, card: AgentCard) -> Self {
        Self::start_with(agent, card, HttpOptions::default()).await
    }

    pub async fn start_with(agent: impl Agent, card: AgentCard, opts: HttpOptions) -> Self {
        Self::start_full(agent, card, opts, StackConfig::default()).await
    }

    /// A server with the default stack built from `stack`.
    pub async fn start_full(
        agent: impl Agent,
        card: AgentCard,
        opts: HttpOptions,
        stack: StackConfig,
    ) -> Self {
        let core = Core::builder(agent, card).build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let layers = A2ALayers::new(&stack, &core);
        let served = ServedCard::new(core.card().clone(), &url);
        let app = HttpApp::new(layers.default_stack(core.clone()), served, opts);
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve(
            listener,
            app,
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(2),
        ));
        TestServer {
            client: Client::new(&url),
            url,
            core,
            layers,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub async fn math() -> Self {
        Self::math_with(StackConfig::default()).await
    }

    pub async fn math_with(stack: StackConfig) -> Self {
        let limits = abacus::math::Limits::default();
        let agent = abacus::math::MathAgent::new(limits);
        let card = abacus::math::MathAgent::card();
        Self::start_full(agent, card, HttpOptions::default(), stack).await
    }

    /// POSTs `body` to `/` with the given headers; returns status and parsed JSON (Null if none).
    pub async fn post_raw(&self, body: impl Into<Bytes>, headers: &[(&str, &str)]) -> (u16, Value) {
        self.request("POST", "", body.into(), headers).await
    }

    /// POSTs a JSON-RPC body with the standard headers.
    pub async fn post_json(&self, body: &str) -> (u16, Value) {
        self.post_raw(
            body.to_string(),
            &[("content-type", "application/json"), ("a2a-version", "1.0")],
        )
        .await
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = format!("{}{}", self.url, path.trim_start_matches('/'));
        let (status, _, bytes) = raw_request(&url, method, body, headers).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

/// One HTTP request; returns status, headers and body.
pub async fn raw_request(
    url: &str,
    method: &str,
    body: Bytes,
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, Bytes) {
    let client: HyperClient<HttpConnector, Full<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes)
}

/// A JSON-RPC SendMessage body with one text part.
pub fn send_body(method: &str, text: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": method,
        "params": {"message": {"messageId": uuid::Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": [{"text": text}]}}
    })
    .to_string()
}

/// The state string of the task in a reply's result (task, or bare task).
pub fn task_state(reply: &Value) -> String {
    let r = &reply["result"];
    let t = if r.get("task").is_some() {
        &r["task"]
    } else {
        r
    };
    t["status"]["state"].as_str().unwrap_or("").to_string()
}

/// All text parts anywhere in a value.
pub fn texts(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(t) = o.get("text").and_then(Value::as_str) {
                    out.push(t.to_string());
                }
                o.values().for_each(|c| walk(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

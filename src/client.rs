//! A small A2A JSON-RPC client over hyper: used by the `abacus send` command
//! and by the integration tests.

use crate::http::SseDecoder;
use crate::protocol::types::{Message, Part, Role};
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A client error: transport failure or a reply that is not JSON-RPC.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request could not be sent or the reply not read.
    #[error("transport error: {0}")]
    Transport(String),
    /// The server answered with a non-success HTTP status.
    #[error("HTTP {0}: {1}")]
    Status(StatusCode, String),
    /// The reply was not valid JSON.
    #[error("invalid reply: {0}")]
    Invalid(String),
}

/// An A2A JSON-RPC client for one server, `http://` or `https://` (the
/// server verified against the system's trust store, or the CAs given to
/// [`Client::with_ca`]).
///
/// ```no_run
/// # async fn run() -> Result<(), abacus::client::ClientError> {
/// let client = abacus::client::Client::new("http://127.0.0.1:8002/");
/// let reply = client.call("SendMessage", abacus::client::Client::text_params("2 + 2")).await?;
/// println!("{}", reply["result"]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    url: Arc<str>,
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    next_id: Arc<AtomicI64>,
}

impl Client {
    /// A client for the JSON-RPC endpoint at `url`.
    pub fn new(url: &str) -> Self {
        // The system's trust store always makes a config (possibly empty).
        Self::with_ca(url, None).expect("a TLS client config without a CA file")
    }

    /// A client for `url` whose `https` server is verified against the CAs
    /// of the PEM bundle `ca` (the system's trust store when `None`).
    ///
    /// ```
    /// let e = abacus::client::Client::with_ca("https://a2a.example/", Some("/nonexistent.pem".as_ref()));
    /// assert!(e.is_err());
    /// ```
    pub fn with_ca(url: &str, ca: Option<&std::path::Path>) -> Result<Self, ClientError> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let connector = crate::http::tls::https_connector(ca, connector)
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(Client {
            url: url.into(),
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
            next_id: Arc::new(AtomicI64::new(1)),
        })
    }

    /// `SendMessage` params for a user message with one text part.
    pub fn text_params(text: &str) -> Value {
        let msg = Message::new(Role::User, vec![Part::text(text)]);
        json!({ "message": msg })
    }

    async fn post(
        &self,
        body: Vec<u8>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let req = Request::post(&*self.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("A2A-Version", crate::protocol::PROTOCOL_VERSION)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        self.http
            .request(req)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    fn envelope(&self, method: &str, params: Value) -> Vec<u8> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .unwrap_or_default()
    }

    /// GETs a JSON document (e.g. the agent card) from `url`.
    pub async fn get(&self, url: &str) -> Result<Value, ClientError> {
        let req = Request::get(url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        json_body(resp).await
    }

    /// Calls a unary method and returns the whole JSON-RPC reply object.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let resp = self.post(self.envelope(method, params)).await?;
        json_body(resp).await
    }

    /// Calls a streaming method; yields each SSE event's JSON-RPC reply.
    pub async fn stream(
        &self,
        method: &str,
        params: Value,
    ) -> Result<BoxStream<'static, Result<Value, ClientError>>, ClientError> {
        let resp = self.post(self.envelope(method, params)).await?;
        let status = resp.status();
        let is_sse = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let body = resp.into_body();
        if !status.is_success() || !is_sse {
            let bytes = body
                .collect()
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?
                .to_bytes();
            // A JSON-RPC error instead of a stream: yield it as the only event.
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Invalid(format!("HTTP {status}: {e}")))?;
            return Ok(stream::once(async move { Ok(v) }).boxed());
        }
        let state = SseState {
            body,
            sse: SseDecoder::new(),
            ready: VecDeque::new(),
            ended: false,
        };
        Ok(stream::unfold(state, |mut st| async move {
            loop {
                if let Some(v) = st.ready.pop_front() {
                    return Some((v, st));
                }
                if st.ended {
                    return None;
                }
                match st.body.frame().await {
                    None => st.ended = true,
                    Some(Err(e)) => {
                        st.ended = true;
                        st.ready
                            .push_back(Err(ClientError::Transport(e.to_string())));
                    }
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            st.feed(&data);
                        }
                    }
                }
            }
        })
        .boxed())
    }
}

/// The JSON body of a successful reply; the status and body text otherwise.
async fn json_body(resp: hyper::Response<hyper::body::Incoming>) -> Result<Value, ClientError> {
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(ClientError::Status(
            status,
            String::from_utf8_lossy(&body).into_owned(),
        ));
    }
    serde_json::from_slice(&body).map_err(|e| ClientError::Invalid(e.to_string()))
}

/// The SSE parser's state between body frames.
struct SseState {
    body: hyper::body::Incoming,
    sse: SseDecoder,
    ready: VecDeque<Result<Value, ClientError>>,
    ended: bool,
}

impl SseState {
    fn feed(&mut self, chunk: &[u8]) {
        let mut events = Vec::new();
        let result = self.sse.feed(chunk, &mut events);
        for ev in events {
            self.ready.push_back(
                serde_json::from_str(&ev.data).map_err(|e| ClientError::Invalid(e.to_string())),
            );
        }
        if let Err(e) = result {
            self.ended = true;
            self.ready
                .push_back(Err(ClientError::Invalid(e.to_string())));
        }
    }
}

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
///
/// ```
/// use abacus::client::ClientError;
/// let e = ClientError::Connect {
///     url: "http://127.0.0.1:8002/".into(),
///     reason: "connection refused".into(),
/// };
/// assert_eq!(
///     e.to_string(),
///     "cannot connect to http://127.0.0.1:8002/ (connection refused) — is the server running? \
///      start it with `abacus serve`"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection to the server could be made (refused, unreachable,
    /// host not found, TLS handshake failed).
    #[error("cannot connect to {url} ({reason}) — {}", connect_hint(url))]
    Connect {
        /// The URL the client was sending to.
        url: String,
        /// Why, in words (`connection refused`, `host not found` …).
        reason: String,
    },
    /// The request could not be sent or the reply not read.
    #[error("transport error: {0}")]
    Transport(String),
    /// The server answered with a non-success HTTP status.
    #[error("HTTP {0}: {1}")]
    Status(StatusCode, String),
    /// The reply was not valid JSON.
    #[error("invalid reply: {0}")]
    Invalid(String),
    /// A stream ended before its task reached a final state or asked for
    /// input (and without an error): the answer is incomplete, not empty.
    #[error("the stream ended before the task finished")]
    Truncated,
}

/// What to try when `url` cannot be reached: a local server is most
/// often simply not started.
fn connect_hint(url: &str) -> &'static str {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let local = ["127.", "localhost", "[::1]", "0.0.0.0"]
        .iter()
        .any(|l| host.starts_with(l));
    if local {
        "is the server running? start it with `abacus serve`"
    } else {
        "is the server running, and is the URL right?"
    }
}

/// A send error of the HTTP client as the caller should read it: a
/// connection that could not be made says where to and why, in words.
fn transport(url: &str, e: hyper_util::client::legacy::Error) -> ClientError {
    if !e.is_connect() {
        return ClientError::Transport(e.to_string());
    }
    // The innermost cause says what happened; the outer ones only
    // "client error (Connect)".
    let mut cause: &(dyn std::error::Error + 'static) = &e;
    let mut io_kind = None;
    while let Some(next) = cause.source() {
        if let Some(io) = next.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        cause = next;
    }
    let reason = match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_string(),
        Some(std::io::ErrorKind::TimedOut) => "timed out".to_string(),
        Some(std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable) => {
            "unreachable".to_string()
        }
        _ => {
            let text = cause.to_string();
            if text.contains("lookup address") || text.contains("not known") {
                "host not found".to_string()
            } else {
                text
            }
        }
    };
    ClientError::Connect {
        url: url.to_string(),
        reason,
    }
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
            .map_err(|e| transport(&self.url, e))
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
            .map_err(|e| transport(url, e))?;
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
            terminal: false,
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
                    None => {
                        st.ended = true;
                        if !st.terminal {
                            st.ready.push_back(Err(ClientError::Truncated));
                        }
                    }
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
    /// An event that ends the exchange was seen (see [`ends_stream`]).
    terminal: bool,
}

/// Whether a streamed JSON-RPC reply ends the exchange: an error, a
/// direct message, or a task or status in a final or interrupted state.
fn ends_stream(reply: &Value) -> bool {
    if reply.get("error").is_some() || reply["result"].get("message").is_some() {
        return true;
    }
    let state = reply["result"]["task"]["status"]["state"]
        .as_str()
        .or_else(|| reply["result"]["statusUpdate"]["status"]["state"].as_str());
    matches!(
        state,
        Some(
            "TASK_STATE_COMPLETED"
                | "TASK_STATE_FAILED"
                | "TASK_STATE_CANCELED"
                | "TASK_STATE_REJECTED"
                | "TASK_STATE_INPUT_REQUIRED"
                | "TASK_STATE_AUTH_REQUIRED"
        )
    )
}

impl SseState {
    fn feed(&mut self, chunk: &[u8]) {
        let mut events = Vec::new();
        let result = self.sse.feed(chunk, &mut events);
        for ev in events {
            let reply: Result<Value, _> =
                serde_json::from_str(&ev.data).map_err(|e| ClientError::Invalid(e.to_string()));
            if let Ok(v) = &reply {
                self.terminal |= ends_stream(v);
            }
            self.ready.push_back(reply);
        }
        if let Err(e) = result {
            self.ended = true;
            self.ready
                .push_back(Err(ClientError::Invalid(e.to_string())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_final_interrupted_error_and_message_replies_end_a_stream() {
        let status =
            |state: &str| json!({"result": {"statusUpdate": {"status": {"state": state}}}});
        assert!(ends_stream(&status("TASK_STATE_COMPLETED")));
        assert!(ends_stream(&status("TASK_STATE_INPUT_REQUIRED")));
        assert!(!ends_stream(&status("TASK_STATE_WORKING")));
        assert!(ends_stream(
            &json!({"result": {"task": {"status": {"state": "TASK_STATE_FAILED"}}}})
        ));
        assert!(!ends_stream(
            &json!({"result": {"task": {"status": {"state": "TASK_STATE_SUBMITTED"}}}})
        ));
        assert!(ends_stream(&json!({"result": {"message": {"parts": []}}})));
        assert!(ends_stream(&json!({"error": {"code": -32001}})));
        assert!(!ends_stream(&json!({"result": {"artifactUpdate": {}}})));
    }

    #[test]
    fn the_hint_depends_on_whether_the_server_is_local() {
        for local in [
            "http://127.0.0.1:8002/",
            "http://localhost:8002",
            "https://user:pw@[::1]:8443/a2a",
        ] {
            assert!(connect_hint(local).contains("abacus serve"), "{local}");
        }
        for remote in ["https://agents.example.com/", "http://10.0.0.7:8002/"] {
            assert!(!connect_hint(remote).contains("abacus serve"), "{remote}");
        }
    }

    /// Serves one HTTP/1.1 response of SSE `events` (CRLF line endings, as
    /// the Python SDK's server writes them), then closes the connection.
    async fn sse_server(events: &'static [&'static str]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let mut request = [0u8; 4096];
            let _ = tcp.read(&mut request).await;
            let mut body = String::new();
            for (i, e) in events.iter().enumerate() {
                body.push_str(&format!("id: {i}\r\ndata: {e}\r\n\r\n"));
            }
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
            let _ = tcp.write_all(format!("{head}{body}").as_bytes()).await;
            let _ = tcp.shutdown().await;
        });
        url
    }

    const WORKING: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"statusUpdate":{"taskId":"t","status":{"state":"TASK_STATE_WORKING"}}}}"#;
    const COMPLETED: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"statusUpdate":{"taskId":"t","status":{"state":"TASK_STATE_COMPLETED"}}}}"#;

    async fn collect(url: &str) -> Vec<Result<Value, ClientError>> {
        Client::new(url)
            .stream("SendStreamingMessage", Client::text_params("6 * 7"))
            .await
            .expect("stream")
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_stream_without_its_final_event_ends_with_an_error() {
        let got = collect(&sse_server(&[WORKING]).await).await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0].as_ref().expect("the working event")["result"]["statusUpdate"]["status"]
                ["state"],
            "TASK_STATE_WORKING"
        );
        assert!(matches!(got[1], Err(ClientError::Truncated)), "{got:?}");

        let got = collect(&sse_server(&[WORKING, COMPLETED]).await).await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.iter().all(Result::is_ok), "{got:?}");
    }

    #[tokio::test]
    async fn a_server_that_is_not_running_is_named_with_the_reason() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let url = format!("http://127.0.0.1:{port}/");
        let err = Client::new(&url)
            .call("GetTask", json!({"id": "t"}))
            .await
            .expect_err("nothing listens");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot connect to {url} (connection refused) — is the server running? \
                 start it with `abacus serve`"
            )
        );
        let err = Client::new(&url)
            .get(&format!("{url}.well-known/agent-card.json"))
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    }
}

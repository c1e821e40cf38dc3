//! The raw JSON-RPC client: JSON values in and out, no card, no stack.
//! For tests and tools that want to see (or send) the exact wire form.

use super::error::{transport, ClientError};
use crate::protocol::types::{Message, Part, Role};
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use http::{header, Request};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// An A2A JSON-RPC client for one server, `http://` or `https://` (the
/// server verified against the system's trust store, or the CAs given to
/// [`JsonRpcClient::with_ca`]).
///
/// ```no_run
/// # async fn run() -> Result<(), abacus::client::ClientError> {
/// let client = abacus::client::JsonRpcClient::new("http://127.0.0.1:8002/");
/// let reply = client.call("SendMessage", abacus::client::JsonRpcClient::text_params("2 + 2")).await?;
/// println!("{}", reply["result"]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JsonRpcClient {
    url: Arc<str>,
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    next_id: Arc<AtomicI64>,
}

impl JsonRpcClient {
    /// A client for the JSON-RPC endpoint at `url`.
    pub fn new(url: &str) -> Self {
        // The system's trust store always makes a config (possibly empty).
        Self::with_ca(url, None).expect("a TLS client config without a CA file")
    }

    /// A client for `url` whose `https` server is verified against the CAs
    /// of the PEM bundle `ca` (the system's trust store when `None`).
    ///
    /// ```
    /// let e = abacus::client::JsonRpcClient::with_ca("https://a2a.example/", Some("/nonexistent.pem".as_ref()));
    /// assert!(e.is_err());
    /// ```
    pub fn with_ca(url: &str, ca: Option<&std::path::Path>) -> Result<Self, ClientError> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let connector = crate::http::tls::https_connector(ca, connector)
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(JsonRpcClient {
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
        // The replies as they come, then `Truncated` if the body ended
        // before one of them (or an error) ended the exchange.
        let replies = super::conn::sse(body, crate::http::DEFAULT_MAX_EVENT_BYTES).map(|ev| {
            serde_json::from_str::<Value>(&ev?.data)
                .map_err(|e| ClientError::Invalid(e.to_string()))
        });
        let mut ended = false;
        Ok(replies
            .map(Some)
            .chain(stream::once(async { None }))
            .filter_map(move |item| {
                let out = match item {
                    Some(reply) => {
                        ended |= reply.as_ref().map_or(true, ends_stream);
                        Some(reply)
                    }
                    None => (!ended).then_some(Err(ClientError::Truncated)),
                };
                futures_util::future::ready(out)
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
        JsonRpcClient::new(url)
            .stream("SendStreamingMessage", JsonRpcClient::text_params("6 * 7"))
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
        let err = JsonRpcClient::new(&url)
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
        let err = JsonRpcClient::new(&url)
            .get(&format!("{url}.well-known/agent-card.json"))
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    }
}

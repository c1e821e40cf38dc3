//! What the JSON-RPC and HTTP+JSON bindings share: one pooled hyper client
//! (HTTP/1.1 and h2, TLS by rustls), the headers of every request, bounded
//! JSON bodies and incremental SSE.

use super::error::{error_chain, transport, ClientError};
use crate::http::{SseDecoder, SseEvent};
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;

/// Largest unary reply body read, in bytes.
pub(crate) const MAX_BODY: usize = 16 * 1024 * 1024;

/// The pooled client of the HTTP bindings.
pub(crate) type Pool = HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A connector for `http://` and `https://` (verified against `ca` or the
/// system's trust store), with TCP_NODELAY and a connect timeout.
pub(crate) fn connector(
    ca: Option<&std::path::Path>,
    connect_timeout: Duration,
) -> Result<HttpsConnector<HttpConnector>, ClientError> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    crate::http::tls::https_connector(ca, http).map_err(|e| ClientError::Transport(e.to_string()))
}

/// A pool over `connector`: idle connections are kept and reused.
pub(crate) fn pool(connector: HttpsConnector<HttpConnector>) -> Pool {
    HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// The HTTP side of one client: the pool and the headers every request
/// carries (`A2A-Version`, credentials, user agent).
#[derive(Clone)]
pub(crate) struct Http {
    pub(crate) pool: Pool,
    pub(crate) headers: HeaderMap,
    pub(crate) max_event_bytes: usize,
}

impl Http {
    /// Sends `req` with the common headers; `url` names the server in errors.
    pub(crate) async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
        url: &str,
    ) -> Result<Response<Incoming>, ClientError> {
        for (name, value) in &self.headers {
            req.headers_mut().insert(name, value.clone());
        }
        crate::otel::inject(req.headers_mut());
        self.pool.request(req).await.map_err(|e| transport(url, e))
    }
}

/// A request with a JSON body (or none).
pub(crate) fn request(
    method: http::Method,
    url: &str,
    body: Option<Vec<u8>>,
    accept: &'static str,
) -> Result<Request<Full<Bytes>>, ClientError> {
    let mut b = Request::builder()
        .method(method)
        .uri(url)
        .header(header::ACCEPT, HeaderValue::from_static(accept));
    if body.is_some() {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    b.body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| ClientError::Transport(format!("cannot build the request to {url}: {e}")))
}

/// Whether a reply is an event stream.
pub(crate) fn is_sse(resp: &Response<Incoming>) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

/// The whole body (at most [`MAX_BODY`] bytes) and the status.
pub(crate) async fn body(resp: Response<Incoming>) -> Result<(StatusCode, Bytes), ClientError> {
    let status = resp.status();
    let bytes = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ClientError::Transport(format!("reading the reply: {}", error_chain(&*e))))?
        .to_bytes();
    Ok((status, bytes))
}

/// `bytes` as JSON, or the reason it is not.
pub(crate) fn json(status: StatusCode, bytes: &[u8]) -> Result<Value, ClientError> {
    serde_json::from_slice(bytes).map_err(|e| {
        if status.is_success() {
            ClientError::Invalid(format!("the reply is not JSON: {e}"))
        } else {
            ClientError::Status(status, snippet(bytes))
        }
    })
}

/// The start of a body, for an error message.
pub(crate) fn snippet(bytes: &[u8]) -> String {
    // One line, whatever the body's layout (an HTML error page …).
    let text = String::from_utf8_lossy(bytes)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// The events of an SSE body, parsed as they arrive; a broken connection
/// or an event over `max_event_bytes` ends the stream with an error.
pub(crate) fn sse(
    body: Incoming,
    max_event_bytes: usize,
) -> BoxStream<'static, Result<SseEvent, ClientError>> {
    struct State {
        body: Incoming,
        sse: SseDecoder,
        ready: VecDeque<Result<SseEvent, ClientError>>,
        ended: bool,
    }
    let state = State {
        body,
        sse: SseDecoder::new().max_event_bytes(max_event_bytes),
        ready: VecDeque::new(),
        ended: false,
    };
    stream::unfold(state, |mut st| async move {
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
                    st.ready.push_back(Err(ClientError::Transport(format!(
                        "the stream broke: {}",
                        error_chain(&e)
                    ))));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let mut events = Vec::new();
                        let result = st.sse.feed(&data, &mut events);
                        st.ready.extend(events.into_iter().map(Ok));
                        if let Err(e) = result {
                            st.ended = true;
                            st.ready.push_back(Err(ClientError::Invalid(e.to_string())));
                        }
                    }
                }
            }
        }
    })
    .boxed()
}

/// The typed events of an SSE body: each event's JSON, unwrapped by
/// `payload` (the JSON-RPC envelope's `result`, or the bare event of
/// HTTP+JSON, either possibly an error), as a [`StreamResponse`] with its id.
///
/// [`StreamResponse`]: crate::protocol::types::StreamResponse
pub(crate) fn events(
    body: Incoming,
    max_event_bytes: usize,
    payload: fn(Value) -> Result<Value, ClientError>,
) -> super::call::Events {
    sse(body, max_event_bytes)
        .map(move |ev| {
            let ev = ev?;
            let v: Value = serde_json::from_str(&ev.data)
                .map_err(|e| ClientError::Invalid(format!("an event is not JSON: {e}")))?;
            let response = serde_path_to_error::deserialize(payload(v)?).map_err(|e| {
                ClientError::Invalid(format!("event at {}: {}", e.path(), e.inner()))
            })?;
            Ok(super::call::Event {
                id: (!ev.id.is_empty()).then_some(ev.id),
                response,
            })
        })
        .boxed()
}

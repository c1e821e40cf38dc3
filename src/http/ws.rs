//! The WebSocket binding: `GET /stream`, a simple framing for browser and
//! script clients.
//!
//! The client sends `{"message": {...}}` (the v1.0 Message shape, or the
//! older one with `"role": "user"` and `"kind"` parts). Each message becomes
//! a `SendStreamingMessage` through the same tower stack as JSON-RPC, so the
//! concurrency limit, timeouts and metrics apply. The server answers with
//!
//! * `{"type":"status","state":"working","taskId":...}` on state changes,
//! * `{"type":"message_part","part":{...}}` for every part the agent produces
//!   (progress messages, artifacts, the final message),
//! * then `{"type":"complete"}`, or `{"type":"error","error":"..."}`.
//!
//! The socket stays open for the next message after an error. Messages that
//! arrive while one is being answered are queued (up to [`MAX_QUEUED`]).
//! The server pings every [`PING_EVERY`] and closes a socket that has sent
//! nothing for [`IDLE_CLOSE`]; a message over the size limit closes it with
//! code 1009 (Message Too Big).

use super::body::ResponseBody;
use super::meta::{next_request_id, request_meta};
use crate::protocol::types::{Part, SendMessageRequest, StreamResponse, TaskState};
use crate::protocol::{rpc_error_for_ref, A2ARequest, A2AResponse, Call, RequestMeta};
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use hyper_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use hyper_tungstenite::tungstenite::protocol::frame::CloseFrame;
use hyper_tungstenite::tungstenite::protocol::WebSocketConfig;
use hyper_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use hyper_tungstenite::{HyperWebsocket, WebSocketStream};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tower::{BoxError, Service, ServiceExt};

/// Messages queued while another is answered; more are refused.
pub const MAX_QUEUED: usize = 16;
/// Interval of server pings.
pub const PING_EVERY: Duration = Duration::from_secs(30);
/// A socket silent for this long is closed.
pub const IDLE_CLOSE: Duration = Duration::from_secs(90);

/// Frame and message size limits for a socket.
pub(crate) fn ws_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// Upgrades `GET /stream` and serves the socket on its own task.
pub(crate) fn upgrade<S, B>(
    stack: S,
    max_message: usize,
    peer: Option<std::net::SocketAddr>,
    req: Request<B>,
) -> Response<ResponseBody>
where
    S: Service<A2ARequest, Response = A2AResponse> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    if !hyper_tungstenite::is_upgrade_request(&req) {
        return super::app::upgrade_required();
    }
    let (parts, body) = req.into_parts();
    // Deadline, version, extensions, peer and caller of the upgrade apply
    // to every message of the socket.
    let meta = request_meta(&parts, peer, crate::protocol::Binding::WebSocket);
    let mut req = Request::from_parts(parts, body);
    match hyper_tungstenite::upgrade(&mut req, Some(ws_config(max_message))) {
        Ok((response, socket)) => {
            tokio::spawn(serve_socket(socket, stack, meta));
            response.map(|_| ResponseBody::empty())
        }
        Err(e) => {
            tracing::debug!(error = %e, "bad websocket upgrade");
            super::routes::plain(StatusCode::BAD_REQUEST, "bad WebSocket upgrade request\n")
        }
    }
}

/// Serves one upgraded socket until it closes.
async fn serve_socket<S>(socket: HyperWebsocket, stack: S, meta: RequestMeta)
where
    S: Service<A2ARequest, Response = A2AResponse> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    match socket.await {
        Ok(ws) => serve_messages(ws, stack, meta).await,
        Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
    }
}

/// Answers the messages of an open socket until it closes; generic over the
/// transport so the framing can be driven from memory (fuzzing).
pub(crate) async fn serve_messages<T, S>(mut ws: WebSocketStream<T>, stack: S, meta: RequestMeta)
where
    T: AsyncRead + AsyncWrite + Unpin,
    S: Service<A2ARequest, Response = A2AResponse> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
{
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_seen = Instant::now();
    loop {
        let text = match queue.pop_front() {
            Some(t) => t,
            None => {
                tokio::select! {
                    incoming = ws.next() => match incoming {
                        Some(Ok(WsMessage::Text(t))) => { last_seen = Instant::now(); t.to_string() }
                        Some(Ok(WsMessage::Binary(_))) => {
                            last_seen = Instant::now();
                            if send(&mut ws, error_frame("binary frames are not supported; send JSON text")).await.is_err() { return; }
                            continue;
                        }
                        Some(Ok(WsMessage::Close(_))) | None => return,
                        Some(Ok(_)) => { last_seen = Instant::now(); continue } // ping/pong
                        Some(Err(e)) => return close_after(&mut ws, e).await,
                    },
                    _ = ping.tick() => {
                        if last_seen.elapsed() > IDLE_CLOSE {
                            let _ = ws.close(None).await;
                            return;
                        }
                        if ws.send(WsMessage::Ping(Default::default())).await.is_err() { return; }
                        continue;
                    }
                }
            }
        };
        let request = match parse_request(&text) {
            Ok(mut r) => {
                r.meta = RequestMeta {
                    request_id: next_request_id(),
                    ..meta.clone()
                };
                r.meta.tenant = r.call.tenant().map(String::from);
                r
            }
            Err(msg) => {
                if send(&mut ws, error_frame(&msg)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let response = stack
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| rpc_error_for_ref(e.into().as_ref()));
        let response = match response {
            Ok(r) => r,
            Err(err) => {
                super::record_error(&err);
                if send(&mut ws, error_frame(&err.message)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let mut events = match response {
            A2AResponse::Stream(events) => events,
            A2AResponse::Unary(u) => {
                let msg = match u.outcome {
                    Err(e) => {
                        super::record_error(&e);
                        e.message
                    }
                    Ok(_) => "unexpected unary reply".to_string(),
                };
                if send(&mut ws, error_frame(&msg)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        // Forward events; keep reading the socket so pings, closes and
        // queued messages are handled while a long computation runs.
        let mut outcome: Option<Value> = None;
        loop {
            tokio::select! {
                ev = events.next() => match ev {
                    None => break,
                    Some(Err(e)) => { outcome = Some(error_frame(&e.message)); break; }
                    Some(Ok(ev)) => {
                        let (frames, end) = frames_for(&ev.response);
                        for f in frames {
                            if send(&mut ws, f).await.is_err() { return; }
                        }
                        if let Some(end) = end { outcome = Some(end); break; }
                    }
                },
                incoming = ws.next() => match incoming {
                    Some(Ok(WsMessage::Text(t))) => {
                        last_seen = Instant::now();
                        if queue.len() >= MAX_QUEUED {
                            if send(&mut ws, error_frame("too many queued messages; wait for \"complete\"")).await.is_err() { return; }
                        } else {
                            queue.push_back(t.to_string());
                        }
                    }
                    Some(Ok(WsMessage::Close(_))) | None => return,
                    Some(Err(e)) => return close_after(&mut ws, e).await,
                    Some(Ok(_)) => last_seen = Instant::now(),
                },
            }
        }
        let end = outcome.unwrap_or_else(|| json!({"type": "complete"}));
        if send(&mut ws, end).await.is_err() {
            return;
        }
    }
}

/// Ends a socket after a read error: says why, then closes with 1009
/// (Message Too Big) for an oversized message, 1002 (protocol error) for
/// the rest.
async fn close_after<T: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<T>, e: WsError) {
    tracing::debug!(error = %e, "websocket read failed");
    // Close reasons are capped at 123 bytes: fixed words, the detail goes
    // in the error frame.
    let (code, reason) = match e {
        WsError::Capacity(_) => (CloseCode::Size, "message too big"),
        WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_) => return,
        _ => (CloseCode::Protocol, "protocol error"),
    };
    if send(ws, error_frame(&e.to_string())).await.is_err() {
        return;
    }
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = ws.close(Some(frame)).await;
}

async fn send<T: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<T>,
    frame: Value,
) -> Result<(), ()> {
    ws.send(WsMessage::Text(frame.to_string().into()))
        .await
        .map_err(|_| ())
}

fn error_frame(msg: &str) -> Value {
    json!({"type": "error", "error": msg})
}

/// The frames for one event, and the closing frame if the event ends the exchange.
pub(crate) fn frames_for(ev: &StreamResponse) -> (Vec<Value>, Option<Value>) {
    match ev {
        StreamResponse::Task(_) => (Vec::new(), None),
        StreamResponse::Message(m) => (
            m.parts.iter().map(part_frame).collect(),
            Some(json!({"type": "complete"})),
        ),
        StreamResponse::ArtifactUpdate(a) => {
            (a.artifact.parts.iter().map(part_frame).collect(), None)
        }
        StreamResponse::StatusUpdate(s) => {
            let state = state_name(&s.status.state);
            let mut frames = vec![json!({"type": "status", "state": state, "taskId": s.task_id})];
            let parts: Vec<&Part> = s
                .status
                .message
                .iter()
                .flat_map(|m| m.parts.iter())
                .collect();
            let end = match s.status.state {
                TaskState::Completed => Some(json!({"type": "complete"})),
                TaskState::Failed | TaskState::Rejected | TaskState::Canceled => {
                    let why = parts
                        .iter()
                        .find_map(|p| p.as_text())
                        .unwrap_or(state)
                        .to_string();
                    return (frames, Some(error_frame(&why)));
                }
                TaskState::InputRequired | TaskState::AuthRequired => {
                    Some(json!({"type": "complete", "state": state}))
                }
                _ => None,
            };
            frames.extend(parts.into_iter().map(part_frame));
            (frames, end)
        }
    }
}

fn state_name(s: &TaskState) -> &'static str {
    match s {
        TaskState::Submitted => "submitted",
        TaskState::Working => "working",
        TaskState::Completed => "completed",
        TaskState::Failed => "failed",
        TaskState::Canceled => "canceled",
        TaskState::InputRequired => "input-required",
        TaskState::Rejected => "rejected",
        TaskState::AuthRequired => "auth-required",
        TaskState::Unspecified => "unspecified",
    }
}

/// A part as this binding's clients read it: the v1.0 fields plus `kind`
/// (`text`, `data` or `file`).
fn part_frame(p: &Part) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        let kind = match p.content {
            crate::protocol::types::PartContent::Text(_) => "text",
            crate::protocol::types::PartContent::Data(_) => "data",
            _ => "file",
        };
        o.insert("kind".into(), Value::String(kind.into()));
    }
    json!({"type": "message_part", "part": v})
}

/// Decodes `{"message": {...}}`, accepting the v0.3 shape too.
pub(crate) fn parse_request(text: &str) -> Result<A2ARequest, String> {
    let mut v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let msg = v
        .get_mut("message")
        .ok_or_else(|| "expected {\"message\": {...}}".to_string())?;
    upgrade_message(msg);
    let params = json!({ "message": msg.take(), "metadata": v.get("metadata").cloned() });
    let req: SendMessageRequest =
        serde_json::from_value(params).map_err(|e| format!("invalid message: {e}"))?;
    if req.message.parts.is_empty() {
        return Err("message.parts must contain at least one part".into());
    }
    Ok(A2ARequest::new(Call::SendStreamingMessage(req)))
}

/// Rewrites an A2A v0.3 message in place to the v1.0 shape.
fn upgrade_message(msg: &mut Value) {
    let Some(m) = msg.as_object_mut() else { return };
    if let Some(role) = m.get("role").and_then(Value::as_str) {
        let v1 = match role {
            "user" => Some("ROLE_USER"),
            "agent" => Some("ROLE_AGENT"),
            _ => None,
        };
        if let Some(v1) = v1 {
            m.insert("role".into(), Value::String(v1.into()));
        }
    }
    if !m.contains_key("messageId") {
        m.insert(
            "messageId".into(),
            Value::String(crate::protocol::types::new_message_id()),
        );
    }
    if let Some(parts) = m.get_mut("parts").and_then(Value::as_array_mut) {
        for part in parts {
            upgrade_part(part);
        }
    }
}

fn upgrade_part(part: &mut Value) {
    let Some(p) = part.as_object_mut() else {
        return;
    };
    if p.get("kind").and_then(Value::as_str) != Some("file") {
        return;
    }
    let Some(Value::Object(file)) = p.remove("file") else {
        return;
    };
    if let Some(b) = file.get("bytes") {
        p.insert("raw".into(), b.clone());
    } else if let Some(u) = file.get("uri") {
        p.insert("url".into(), u.clone());
    }
    if let Some(mt) = file.get("mimeType").or_else(|| file.get("mediaType")) {
        p.insert("mediaType".into(), mt.clone());
    }
    if let Some(n) = file.get("name") {
        p.insert("filename".into(), n.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_v03_message_shape() {
        let req = parse_request(
            r#"{"message":{"messageId":"s","role":"user","parts":[{"kind":"text","text":"fibonacci 10"}]}}"#,
        )
        .unwrap();
        let m = req.call.message().unwrap();
        assert_eq!(m.role, crate::protocol::types::Role::User);
        assert_eq!(m.parts[0].as_text(), Some("fibonacci 10"));
    }

    #[test]
    fn accepts_v03_file_parts() {
        let req = parse_request(
            r#"{"message":{"role":"user","parts":[{"kind":"file","file":{"bytes":"aGk=","mimeType":"text/plain","name":"a.txt"}}]}}"#,
        )
        .unwrap();
        let p = &req.call.message().unwrap().parts[0];
        assert_eq!(p.filename.as_deref(), Some("a.txt"));
        assert_eq!(p.media_type.as_deref(), Some("text/plain"));
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        assert!(parse_request("{oops").unwrap_err().contains("invalid JSON"));
        assert!(parse_request("{}").unwrap_err().contains("message"));
    }
}

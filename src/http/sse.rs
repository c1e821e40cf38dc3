use crate::protocol::jsonrpc::encode_event;
use crate::protocol::{EventStream, JsonRpcId};
use bytes::Bytes;
use http_body::Frame;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Events that are ready together go out in one frame up to this size:
/// one write instead of one per event.
const COALESCE_BYTES: usize = 16 * 1024;

/// How each event of a stream is written in its `data:` line.
#[derive(Debug, Clone)]
pub(crate) enum SseEncoding {
    /// A JSON-RPC reply carrying the request's id (the JSON-RPC binding).
    JsonRpc(JsonRpcId),
    /// The `StreamResponse` itself, an error as `{"error": {...}}` in the
    /// AIP-193 form of its HTTP replies (the HTTP+JSON binding).
    Rest,
}

impl SseEncoding {
    /// Appends one event: its `id:` line (the task event's sequence number,
    /// for `Last-Event-ID`), a `data:` line and the blank line that ends it.
    /// The JSON has no raw line breaks, so one `data:` line always holds it.
    pub(crate) fn write_event(&self, out: &mut Vec<u8>, item: &crate::protocol::StreamItem) {
        // Every error sent is counted, those that end a stream too.
        if let Err(e) = item {
            super::record_error(e);
        }
        out.reserve(512);
        if let Ok(crate::protocol::StreamEvent { seq: Some(seq), .. }) = item {
            use std::io::Write as _;
            let _ = writeln!(out, "id: {seq}");
        }
        out.extend_from_slice(b"data: ");
        match self {
            SseEncoding::JsonRpc(id) => encode_event(out, id, item),
            SseEncoding::Rest => match item {
                Ok(event) => {
                    if serde_json::to_writer(&mut *out, &event.response).is_err() {
                        let e =
                            crate::protocol::A2AError::internal("event could not be serialized");
                        out.extend_from_slice(&crate::protocol::http_error_body(&e));
                    }
                }
                Err(e) => out.extend_from_slice(&crate::protocol::http_error_body(e)),
            },
        }
        out.extend_from_slice(b"\n\n");
    }
}

/// Server-sent events: one `data:` line per event, and a `: keep-alive`
/// comment when the stream is quiet.
pub struct SseBody {
    encoding: SseEncoding,
    events: EventStream,
    keep_alive: Duration,
    /// Armed the first time the stream has to wait: short streams never
    /// touch the timer wheel.
    timer: Option<Pin<Box<Sleep>>>,
    ended: bool,
}

impl SseBody {
    pub(crate) fn new(encoding: SseEncoding, events: EventStream, keep_alive: Duration) -> Self {
        SseBody {
            encoding,
            events,
            keep_alive,
            timer: None,
            ended: false,
        }
    }

    pub(crate) fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let mut buf = Vec::new();
        while buf.len() < COALESCE_BYTES {
            match this.events.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => this.encoding.write_event(&mut buf, &item),
                Poll::Ready(None) => {
                    this.ended = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        if !buf.is_empty() {
            if let Some(timer) = this.timer.as_mut() {
                timer.as_mut().reset(Instant::now() + this.keep_alive);
            }
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        let keep_alive = this.keep_alive;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(keep_alive)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                timer.as_mut().reset(Instant::now() + keep_alive);
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                    b": keep-alive\n\n",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::{Message, Part, Role, StreamResponse};
    use futures_util::StreamExt;
    use http_body_util::BodyExt;

    fn event(text: &str) -> crate::protocol::StreamItem {
        Ok(StreamResponse::Message(Message::new(Role::Agent, vec![Part::text(text)])).into())
    }

    #[tokio::test]
    async fn ready_events_share_a_frame_and_each_is_one_data_line() {
        let events = futures_util::stream::iter([event("a"), event("b"), event("c")]).boxed();
        let body = crate::http::ResponseBody::Sse(Box::new(SseBody::new(
            SseEncoding::JsonRpc(JsonRpcId::Number(1)),
            events,
            Duration::from_secs(15),
        )));
        let mut frames = 0;
        let mut text = String::new();
        let mut body = std::pin::pin!(body);
        while let Some(f) = body.frame().await {
            frames += 1;
            text.push_str(std::str::from_utf8(&f.unwrap().into_data().unwrap()).unwrap());
        }
        assert_eq!(frames, 1);
        let lines: Vec<&str> = text.split("\n\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 3);
        for l in lines {
            let v: serde_json::Value =
                serde_json::from_str(l.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(v["id"], 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_stream_gets_keep_alive_comments() {
        let events = futures_util::stream::pending().boxed();
        let body = crate::http::ResponseBody::Sse(Box::new(SseBody::new(
            SseEncoding::JsonRpc(JsonRpcId::Number(1)),
            events,
            Duration::from_secs(15),
        )));
        let mut body = std::pin::pin!(body);
        let f = body.frame().await.unwrap().unwrap();
        assert_eq!(&f.into_data().unwrap()[..], b": keep-alive\n\n");
    }
}

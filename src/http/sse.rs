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

/// How long a stream's first write waits for the final state being stored
/// right after the events before it (see [`SseBody::ready`]).
const HOLD_FOR_FINAL: Duration = Duration::from_millis(5);

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

/// Why [`SseBody::fill`] stopped.
enum Filled {
    /// The frame is as large as events get coalesced.
    Full,
    /// No event is ready now.
    Waiting,
    /// The stream ended.
    Ended,
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
    /// Events encoded and not sent yet (by [`SseBody::ready`] before the
    /// head, else within one `poll_frame`).
    held: Vec<u8>,
    ended: bool,
}

impl SseBody {
    pub(crate) fn new(encoding: SseEncoding, events: EventStream, keep_alive: Duration) -> Self {
        SseBody {
            encoding,
            events,
            keep_alive,
            timer: None,
            held: Vec::new(),
            ended: false,
        }
    }

    /// Takes in the events that are ready now, before the response head is
    /// written. While the stream says that one more is on its way (a lower
    /// size hint above zero: the core stores a final state), it waits for
    /// that one too, at most [`HOLD_FOR_FINAL`]: the head, the events and
    /// the final one then leave in one write instead of two. A durable
    /// stream's final event waits for its store anyway; the first ones now
    /// wait with it, so the client reads the whole task at once.
    pub(crate) async fn ready(mut self) -> Self {
        let mut hold: Option<Pin<Box<Sleep>>> = None;
        std::future::poll_fn(|cx| match self.fill(cx) {
            Filled::Waiting if self.events.size_hint().0 > 0 => hold
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(HOLD_FOR_FINAL)))
                .as_mut()
                .poll(cx),
            _ => Poll::Ready(()),
        })
        .await;
        self
    }

    /// Encodes the events that are ready now into `held`, up to
    /// [`COALESCE_BYTES`].
    fn fill(&mut self, cx: &mut Context<'_>) -> Filled {
        while !self.ended {
            if self.held.len() >= COALESCE_BYTES {
                return Filled::Full;
            }
            match self.events.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => self.encoding.write_event(&mut self.held, &item),
                Poll::Ready(None) => self.ended = true,
                Poll::Pending => return Filled::Waiting,
            }
        }
        Filled::Ended
    }

    pub(crate) fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        this.fill(cx);
        if !this.held.is_empty() {
            if let Some(timer) = this.timer.as_mut() {
                timer.as_mut().reset(Instant::now() + this.keep_alive);
            }
            let buf = std::mem::take(&mut this.held);
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

    /// Items from a channel; the lower size hint is one while `more` is set.
    struct Promising {
        rx: tokio::sync::mpsc::UnboundedReceiver<crate::protocol::StreamItem>,
        more: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl futures_util::Stream for Promising {
        type Item = crate::protocol::StreamItem;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.rx.poll_recv(cx)
        }
        fn size_hint(&self) -> (usize, Option<usize>) {
            let more = self.more.load(std::sync::atomic::Ordering::SeqCst);
            (usize::from(more), None)
        }
    }

    /// A body over a `Promising` stream that already holds "a" and "b".
    fn promising(
        more: bool,
    ) -> (
        SseBody,
        tokio::sync::mpsc::UnboundedSender<crate::protocol::StreamItem>,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tx.send(event("a")).unwrap();
        tx.send(event("b")).unwrap();
        let more = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(more));
        let events = Promising {
            rx,
            more: more.clone(),
        }
        .boxed();
        let body = SseBody::new(
            SseEncoding::JsonRpc(JsonRpcId::Number(1)),
            events,
            Duration::from_secs(15),
        );
        (body, tx, more)
    }

    async fn first_frame(body: SseBody) -> String {
        let body = crate::http::ResponseBody::Sse(Box::new(body));
        let mut body = std::pin::pin!(body);
        let f = body.frame().await.unwrap().unwrap();
        String::from_utf8(f.into_data().unwrap().to_vec()).unwrap()
    }

    // The test clock: the final event (due at 1 ms) comes before the hold
    // ends (5 ms) however loaded the machine is.
    #[tokio::test(start_paused = true)]
    async fn ready_waits_for_the_promised_event_and_sends_all_in_one_frame() {
        let (body, tx, more) = promising(true);
        let later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            tx.send(event("final")).unwrap();
            more.store(false, std::sync::atomic::Ordering::SeqCst);
            tx
        });
        let body = body.ready().await;
        let text = first_frame(body).await;
        assert_eq!(text.matches("data: ").count(), 3, "{text}");
        assert!(text.contains("final"));
        drop(later.await.unwrap());
    }

    #[tokio::test]
    async fn ready_sends_what_is_there_when_nothing_is_promised() {
        let (body, _tx, _more) = promising(false);
        let text = first_frame(body.ready().await).await;
        assert_eq!(text.matches("data: ").count(), 2, "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_promise_not_kept_holds_the_first_events_for_a_bounded_time() {
        let (body, _tx, _more) = promising(true);
        let started = Instant::now();
        let body = body.ready().await;
        // The test clock: no real time passes.
        let held = started.elapsed();
        assert!(
            held >= HOLD_FOR_FINAL && held < 2 * HOLD_FOR_FINAL,
            "{held:?}"
        );
        let text = first_frame(body).await;
        assert_eq!(text.matches("data: ").count(), 2, "{text}");
    }

    #[tokio::test]
    async fn a_stream_that_ended_in_ready_ends_after_its_frame() {
        let events = futures_util::stream::iter([event("a")]).boxed();
        let body = SseBody::new(
            SseEncoding::JsonRpc(JsonRpcId::Number(1)),
            events,
            Duration::from_secs(15),
        )
        .ready()
        .await;
        let body = crate::http::ResponseBody::Sse(Box::new(body));
        let mut body = std::pin::pin!(body);
        assert!(body.frame().await.is_some());
        assert!(body.frame().await.is_none());
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

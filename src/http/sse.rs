use crate::protocol::jsonrpc::encode_event;
use crate::protocol::{EventStream, JsonRpcId};
use bytes::Bytes;
use http_body::Frame;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Server-sent events: one `data:` line with a JSON-RPC reply per event,
/// and a `: keep-alive` comment when the stream is quiet.
pub struct SseBody {
    id: JsonRpcId,
    events: EventStream,
    keep_alive: Duration,
    timer: Pin<Box<Sleep>>,
}

impl SseBody {
    pub(crate) fn new(id: JsonRpcId, events: EventStream, keep_alive: Duration) -> Self {
        SseBody {
            id,
            events,
            keep_alive,
            timer: Box::pin(tokio::time::sleep(keep_alive)),
        }
    }

    pub(crate) fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        match this.events.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                let mut buf = Vec::with_capacity(256);
                buf.extend_from_slice(b"data: ");
                encode_event(&mut buf, &this.id, &item);
                buf.extend_from_slice(b"\n\n");
                let next = Instant::now() + this.keep_alive;
                this.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let next = Instant::now() + this.keep_alive;
                    this.timer.as_mut().reset(next);
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                        b": keep-alive\n\n",
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

use std::future::Future;

use super::sse::SseBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The body of every response: one buffer, a server-sent event stream, or
/// a gRPC reply (its messages, then its trailers).
///
/// A dedicated enum instead of a boxed body keeps unary replies allocation-free.
///
/// ```
/// use http_body::Body;
/// assert!(abacus::http::ResponseBody::from("").is_end_stream());
/// assert_eq!(abacus::http::ResponseBody::from("ok").size_hint().exact(), Some(2));
/// ```
pub enum ResponseBody {
    /// A complete body (`None`: empty).
    Full(Option<Bytes>),
    /// `text/event-stream` events.
    Sse(Box<SseBody>),
    /// A gRPC reply as tonic encodes it; trailers pass through.
    Grpc(tonic::body::Body),
}

impl ResponseBody {
    /// An empty body.
    pub fn empty() -> Self {
        ResponseBody::Full(None)
    }
}

/// An empty buffer is an empty body: it ends with the headers (an HTTP/2
/// `HEADERS` frame with `END_STREAM`, as a trailers-only gRPC answer needs).
impl From<Bytes> for ResponseBody {
    fn from(b: Bytes) -> Self {
        ResponseBody::Full((!b.is_empty()).then_some(b))
    }
}

impl From<Vec<u8>> for ResponseBody {
    fn from(b: Vec<u8>) -> Self {
        ResponseBody::from(Bytes::from(b))
    }
}

impl From<String> for ResponseBody {
    fn from(s: String) -> Self {
        ResponseBody::from(Bytes::from(s))
    }
}

impl From<&'static str> for ResponseBody {
    fn from(s: &'static str) -> Self {
        ResponseBody::from(Bytes::from_static(s.as_bytes()))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        match this {
            ResponseBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Sse(s) => Pin::new(s.as_mut()).poll_frame(cx),
            ResponseBody::Grpc(grpc) => match Pin::new(grpc).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(status))) => {
                    // tonic sends errors as trailers; an error of its body
                    // itself ends the reply where it is.
                    tracing::warn!(code = ?status.code(), message = status.message(), "gRPC reply body failed; ending it");
                    *this = ResponseBody::Full(None);
                    Poll::Ready(None)
                }
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Full(b) => b.is_none(),
            ResponseBody::Sse(_) => false,
            ResponseBody::Grpc(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ResponseBody::Full(None) => SizeHint::with_exact(0),
            ResponseBody::Sse(_) => SizeHint::default(),
            ResponseBody::Grpc(b) => b.size_hint(),
        }
    }
}

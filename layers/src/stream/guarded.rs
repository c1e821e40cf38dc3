use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// A [`Stream`] that holds a guard until it ends or is dropped.
    ///
    /// The guard is dropped as soon as the inner stream yields `None`, or when
    /// the `GuardedStream` itself is dropped, whichever comes first.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::GuardedStream;
    /// use futures_util::{stream, StreamExt};
    /// use std::sync::Arc;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let guard = Arc::new(());
    /// let mut s = GuardedStream::new(stream::iter([1, 2]), guard.clone());
    /// assert_eq!(s.next().await, Some(1));
    /// assert_eq!(Arc::strong_count(&guard), 2); // still streaming
    /// assert_eq!(s.next().await, Some(2));
    /// assert_eq!(s.next().await, None);
    /// assert_eq!(Arc::strong_count(&guard), 1); // released at the end
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct GuardedStream<S, G> {
        #[pin]
        inner: S,
        guard: Option<G>,
    }
}

impl<S, G> GuardedStream<S, G> {
    /// Wrap `inner`, keeping `guard` alive until it ends.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::GuardedStream;
    /// let s = GuardedStream::new(futures_util::stream::empty::<u8>(), ());
    /// # let _ = s;
    /// ```
    pub fn new(inner: S, guard: G) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }

    /// The guard, if the stream has not ended yet.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::GuardedStream;
    /// let s = GuardedStream::new(futures_util::stream::empty::<u8>(), 7u8);
    /// assert_eq!(s.guard(), Some(&7));
    /// ```
    pub fn guard(&self) -> Option<&G> {
        self.guard.as_ref()
    }

    /// A reference to the inner stream.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::GuardedStream;
    /// let s = GuardedStream::new(futures_util::stream::iter([1]), ());
    /// let _inner = s.get_ref();
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Stream, G> Stream for GuardedStream<S, G> {
    type Item = S::Item;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        let polled = this.inner.poll_next(cx);
        if let Poll::Ready(None) = polled {
            this.guard.take();
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

pin_project! {
    /// An [`http_body::Body`] that holds a guard until the body ends, fails or
    /// is dropped.
    ///
    /// The guard is released when the inner body yields `None` or an error,
    /// when it reports [`is_end_stream`](Body::is_end_stream) after a frame,
    /// or when the `GuardedBody` is dropped.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::GuardedBody;
    /// use http_body_util::{BodyExt, Full};
    /// use std::sync::Arc;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let guard = Arc::new(());
    /// let body = GuardedBody::new(Full::new(bytes::Bytes::from("hello")), guard.clone());
    /// let bytes = body.collect().await.unwrap().to_bytes();
    /// assert_eq!(bytes, "hello");
    /// assert_eq!(Arc::strong_count(&guard), 1);
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct GuardedBody<B, G> {
        #[pin]
        inner: B,
        guard: Option<G>,
    }
}

impl<B, G> GuardedBody<B, G> {
    /// Wrap `inner`, keeping `guard` alive until it ends.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::GuardedBody;
    /// let body = GuardedBody::new(http_body_util::Empty::<bytes::Bytes>::new(), ());
    /// # let _ = body;
    /// ```
    pub fn new(inner: B, guard: G) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }

    /// The guard, if the body has not ended yet.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::GuardedBody;
    /// let body = GuardedBody::new(http_body_util::Empty::<bytes::Bytes>::new(), 3u8);
    /// assert_eq!(body.guard(), Some(&3));
    /// ```
    pub fn guard(&self) -> Option<&G> {
        self.guard.as_ref()
    }

    /// A reference to the inner body.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::stream::GuardedBody;
    /// let body = GuardedBody::new(http_body_util::Empty::<bytes::Bytes>::new(), ());
    /// let _inner = body.get_ref();
    /// ```
    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

impl<B: Body, G> Body for GuardedBody<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                this.guard.take();
            }
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => {
                this.guard.take();
            }
            _ => {}
        }
        polled
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

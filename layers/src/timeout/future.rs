use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use super::{Elapsed, TimeoutError, TimeoutKind};
use crate::stream::{StreamTimeout, StreamTimeouts};

pin_project! {
    /// Response future of [`Timeout`](super::Timeout).
    ///
    /// Resolves to the inner response with the stream timeouts applied, or to
    /// [`TimeoutError::Elapsed`] if the request deadline passes first.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::{ResponseFuture, TimeoutLayer};
    /// use tower::{Layer, Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut svc = TimeoutLayer::new(std::time::Duration::from_secs(1))
    ///     .layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
    /// let fut: ResponseFuture<_> = svc.call(1);
    /// assert_eq!(fut.await.unwrap(), 1);
    /// # }
    /// ```
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // Armed on the first `Pending` of `inner`: a response that is ready
        // at once never touches the timer.
        #[pin]
        sleep: Option<Sleep>,
        deadline: Option<Instant>,
        timeout: Duration,
        streams: StreamTimeouts,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(
        inner: F,
        deadline: Option<(Instant, Duration)>,
        streams: StreamTimeouts,
    ) -> Self {
        let (deadline, timeout) = match deadline {
            Some((at, timeout)) => (Some(at), timeout),
            None => (None, Duration::ZERO),
        };
        Self {
            inner,
            sleep: None,
            deadline,
            timeout,
            streams,
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("timeout", &self.timeout)
            .field("streams", &self.streams)
            .finish_non_exhaustive()
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    T: StreamTimeout,
{
    type Output = Result<T::Output, TimeoutError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(match result {
                Ok(res) => Ok(res.stream_timeout(*this.streams)),
                Err(e) => Err(TimeoutError::Inner(e)),
            });
        }
        if let Some(at) = this.deadline.take() {
            this.sleep.set(Some(tokio::time::sleep_until(at)));
        }
        match this.sleep.as_pin_mut() {
            Some(sleep) => match sleep.poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(TimeoutError::Elapsed(Elapsed::new(
                    TimeoutKind::Request,
                    *this.timeout,
                )))),
                Poll::Pending => Poll::Pending,
            },
            None => Poll::Pending,
        }
    }
}

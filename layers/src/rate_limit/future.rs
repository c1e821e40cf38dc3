use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower::util::Oneshot;
use tower_service::Service;

use super::{RateLimitError, RateLimited};

pin_project! {
    /// Response future of [`RateLimit`](super::RateLimit): the inner
    /// service's (readied and called by `Oneshot`), or the refusal.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer, ResponseFuture};
    /// use tower::{Layer, Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut svc = RateLimitLayer::new(Quota::per_second(1))
    ///     .layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
    /// let fut: ResponseFuture<_, u8> = svc.call(4);
    /// assert_eq!(fut.await.unwrap(), 4);
    /// assert!(svc.call(5).await.unwrap_err().rate_limited().is_some());
    /// # }
    /// ```
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        kind: Kind<S, Req>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, Req>
    where
        S: Service<Req>,
    {
        Called { #[pin] fut: Oneshot<S, Req> },
        Limited { limited: RateLimited },
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(super) fn called(fut: Oneshot<S, Req>) -> Self {
        Self {
            kind: Kind::Called { fut },
        }
    }

    pub(super) fn limited(limited: RateLimited) -> Self {
        Self {
            kind: Kind::Limited { limited },
        }
    }
}

impl<S: Service<Req>, Req> fmt::Debug for ResponseFuture<S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limited = match &self.kind {
            Kind::Limited { limited } => Some(limited),
            Kind::Called { .. } => None,
        };
        f.debug_struct("ResponseFuture")
            .field("limited", &limited)
            .finish_non_exhaustive()
    }
}

impl<S: Service<Req>, Req> Future for ResponseFuture<S, Req> {
    type Output = Result<S::Response, RateLimitError<S::Error>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { fut } => fut.poll(cx).map_err(RateLimitError::Inner),
            KindProj::Limited { limited } => Poll::Ready(Err(RateLimitError::Limited(*limited))),
        }
    }
}

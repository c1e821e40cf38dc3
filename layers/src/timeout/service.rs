use std::task::{Context, Poll};

use tokio::time::Instant;
use tower_service::Service;

use super::layer::{Config, RequestTimeout};
use super::{ResponseFuture, TimeoutError};
use crate::stream::{StreamTimeout, StreamTimeouts};

/// Enforces request, first-item and idle timeouts; built by
/// [`TimeoutLayer`](super::TimeoutLayer).
///
/// # Example
///
/// ```
/// use abacus_layers::timeout::{Timeout, TimeoutLayer};
/// use tower::{Layer, service_fn};
///
/// let svc: Timeout<_, _> = TimeoutLayer::new(std::time::Duration::from_secs(1))
///     .layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
/// # let _ = svc;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Timeout<S, T = super::NoOverride> {
    pub(super) inner: S,
    pub(super) config: Config,
    pub(super) per_request: T,
}

impl<S, T> Timeout<S, T> {
    /// A reference to the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::TimeoutLayer;
    /// use tower::Layer;
    /// let svc = TimeoutLayer::default().layer(7u8);
    /// assert_eq!(*svc.get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Consume `self`, returning the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::timeout::TimeoutLayer;
    /// use tower::Layer;
    /// assert_eq!(TimeoutLayer::default().layer(7u8).into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, T, Req> Service<Req> for Timeout<S, T>
where
    S: Service<Req>,
    S::Response: StreamTimeout,
    T: RequestTimeout<Req>,
{
    type Response = <S::Response as StreamTimeout>::Output;
    type Error = TimeoutError<S::Error>;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(TimeoutError::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let request = self
            .per_request
            .request_timeout(&req)
            .or(self.config.request);
        let needs_clock = request.is_some() || self.config.first_item.is_some();
        let start = if needs_clock {
            Some(Instant::now())
        } else {
            None
        };
        let mut streams = StreamTimeouts::new();
        if let (Some(start), Some(first)) = (start, self.config.first_item) {
            streams = streams.first_item_after(start, first);
        }
        if let Some(idle) = self.config.idle {
            streams = streams.idle(idle);
        }
        let deadline = match (start, request) {
            (Some(start), Some(timeout)) => Some((start + timeout, timeout)),
            _ => None,
        };
        ResponseFuture::new(self.inner.call(req), deadline, streams)
    }
}

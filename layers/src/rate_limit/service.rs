use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::util::Oneshot;
use tower_service::Service;

use super::layer::Shared;
use super::{KeyFn, RateLimitError, RateLimited, ResponseFuture};

/// Refuses requests whose key has used its quota; built by
/// [`RateLimitLayer`](super::RateLimitLayer).
///
/// `poll_ready` is always ready: a refused request must neither wait for
/// nor hold the inner service's readiness (a concurrency permit, a breaker
/// probe). An admitted request clones the inner service and drives it with
/// `tower::util::Oneshot` (hence `S: Clone`), as the cache does on a miss.
///
/// # Example
///
/// ```
/// use abacus_layers::rate_limit::{Quota, RateLimit, RateLimitLayer};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let svc: RateLimit<_, _, _> = RateLimitLayer::new(Quota::per_second(10))
///     .layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
/// assert_eq!(svc.oneshot(5).await.unwrap(), 5);
/// # }
/// ```
pub struct RateLimit<S, K, F> {
    inner: S,
    shared: Arc<Shared<K, F>>,
}

impl<S, K, F> RateLimit<S, K, F> {
    pub(super) fn new(inner: S, shared: Arc<Shared<K, F>>) -> Self {
        Self { inner, shared }
    }

    /// A reference to the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// use tower::Layer;
    /// assert_eq!(*RateLimitLayer::new(Quota::per_second(1)).layer(3u8).get_ref(), 3);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Consume `self`, returning the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::rate_limit::{Quota, RateLimitLayer};
    /// use tower::Layer;
    /// assert_eq!(RateLimitLayer::new(Quota::per_second(1)).layer(3u8).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, K, F> Clone for RateLimit<S, K, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, K, F> fmt::Debug for RateLimit<S, K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("limiter", &self.shared.limiter)
            .finish()
    }
}

impl<S, K, F, Req> Service<Req> for RateLimit<S, K, F>
where
    S: Service<Req> + Clone,
    F: KeyFn<Req, Key = K>,
    K: Hash + Eq,
{
    type Response = S::Response;
    type Error = RateLimitError<S::Error>;
    type Future = ResponseFuture<S, Req>;

    /// Always ready: the inner service is readied for admitted requests only.
    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = self.shared.key_fn.key(&req);
        let outcome = self.shared.limiter.check(key);
        #[cfg(feature = "metrics")]
        self.shared.counters.record(outcome.is_ok());
        match outcome {
            Ok(()) => ResponseFuture::called(Oneshot::new(self.inner.clone(), req)),
            Err(retry_after) => ResponseFuture::limited(RateLimited { retry_after }),
        }
    }
}

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::layer::{Config, RetryPredicate};
use super::{ResponseFuture, RetryError, RetryOnError};

/// Retries requests; built by [`RetryLayer`](super::RetryLayer).
///
/// `poll_ready` readies the inner service for the first attempt; the response
/// future owns a clone of the service and of the request and drives
/// `poll_ready` again before each retry.
///
/// # Example
///
/// ```
/// use abacus_layers::retry::{Retry, RetryLayer};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let svc: Retry<_, _> = RetryLayer::new()
///     .layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
/// assert_eq!(svc.oneshot(1).await.unwrap(), 1);
/// # }
/// ```
#[derive(Clone)]
pub struct Retry<S, P = RetryOnError> {
    pub(super) inner: S,
    pub(super) config: Arc<Config>,
    pub(super) predicate: P,
}

impl<S, P> Retry<S, P> {
    /// A reference to the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::RetryLayer;
    /// use tower::Layer;
    /// assert_eq!(*RetryLayer::new().layer(2u8).get_ref(), 2);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Consume `self`, returning the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::RetryLayer;
    /// use tower::Layer;
    /// assert_eq!(RetryLayer::new().layer(2u8).into_inner(), 2);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: fmt::Debug, P> fmt::Debug for Retry<S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S, P, Req> Service<Req> for Retry<S, P>
where
    Req: Clone,
    S: Service<Req> + Clone,
    P: RetryPredicate<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = RetryError<S::Error>;
    type Future = ResponseFuture<S, Req, P>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(RetryError::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        if let Some(budget) = &self.config.budget {
            budget.deposit();
        }
        // The readied service makes the first call; the future keeps it for retries.
        let clone = self.inner.clone();
        let mut service = std::mem::replace(&mut self.inner, clone);
        let (first, keep) = if self.config.max_attempts > 1 {
            (req.clone(), Some(req))
        } else {
            (req, None)
        };
        let fut = service.call(first);
        ResponseFuture::new(
            fut,
            service,
            keep,
            self.config.clone(),
            self.predicate.clone(),
        )
    }
}

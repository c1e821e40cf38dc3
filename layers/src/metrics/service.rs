use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::future::{MetricsGuard, ResponseFuture};
use super::layer::{ClassifyStatus, LabelRequest, NoRequestLabel, OkOrError, Shared};
use crate::stream::TrackEnd;

/// Records request metrics; built by [`MetricsLayer`](super::MetricsLayer).
///
/// Errors pass through unchanged: recording cannot fail.
///
/// # Example
///
/// ```
/// use abacus_layers::metrics::{Metrics, MetricsLayer};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let svc: Metrics<_, _> = MetricsLayer::new()
///     .layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
/// assert_eq!(svc.oneshot(3).await.unwrap(), 3);
/// # }
/// ```
pub struct Metrics<S, C = OkOrError, L = NoRequestLabel, M = NoRequestLabel> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared>,
    pub(super) classifier: C,
    pub(super) labeler: L,
    pub(super) second: M,
}

impl<S, C, L, M> Metrics<S, C, L, M> {
    /// A reference to the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::metrics::MetricsLayer;
    /// use tower::Layer;
    /// assert_eq!(*MetricsLayer::new().layer(4u8).get_ref(), 4);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Consume `self`, returning the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::metrics::MetricsLayer;
    /// use tower::Layer;
    /// assert_eq!(MetricsLayer::new().layer(4u8).into_inner(), 4);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, C: Clone, L: Clone, M: Clone> Clone for Metrics<S, C, L, M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            classifier: self.classifier.clone(),
            labeler: self.labeler.clone(),
            second: self.second.clone(),
        }
    }
}

impl<S: fmt::Debug, C, L, M> fmt::Debug for Metrics<S, C, L, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, C, L, M, Req> Service<Req> for Metrics<S, C, L, M>
where
    S: Service<Req>,
    S::Response: TrackEnd,
    C: ClassifyStatus<S::Response, S::Error> + Clone,
    L: LabelRequest<Req>,
    M: LabelRequest<Req>,
{
    type Response = <S::Response as TrackEnd>::Output<MetricsGuard>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let labels = [self.labeler.label(&req), self.second.label(&req)];
        let guard = MetricsGuard::start(self.shared.clone(), labels);
        ResponseFuture::new(self.inner.call(req), guard, self.classifier.clone())
    }
}

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::layer::{ClassifyStatus, Shared};
use crate::stream::TrackEnd;

/// Records a request's end when dropped: the in-flight gauge goes down, the
/// counter and the duration histogram are recorded with the status.
///
/// It is the guard passed to [`TrackEnd::track_end`], so for a streamed
/// response it lives until the stream ends; it shows up in response types such
/// as `http::Response<GuardedBody<B, MetricsGuard>>`.
///
/// # Example
///
/// ```
/// use abacus_layers::metrics::MetricsGuard;
/// use abacus_layers::stream::GuardedBody;
///
/// // The response body type of a measured axum-style service:
/// type MeasuredBody<B> = GuardedBody<B, MetricsGuard>;
/// ```
pub struct MetricsGuard {
    shared: Arc<Shared>,
    start: Instant,
    labels: [&'static str; 2],
    status: &'static str,
}

impl MetricsGuard {
    pub(super) fn start(shared: Arc<Shared>, labels: [&'static str; 2]) -> Self {
        shared.start();
        Self {
            shared,
            start: Instant::now(),
            labels,
            status: "cancelled",
        }
    }

    /// The status that will be recorded.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::{metrics::MetricsLayer, stream::GuardedBody};
    /// use tower::{Layer, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let svc = MetricsLayer::new().layer(service_fn(|_: ()| async {
    ///     Ok::<_, std::io::Error>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
    /// }));
    /// let res = svc.oneshot(()).await.unwrap();
    /// assert_eq!(res.body().guard().map(|g| g.status()), Some("ok"));
    /// # }
    /// ```
    pub fn status(&self) -> &'static str {
        self.status
    }
}

impl Drop for MetricsGuard {
    fn drop(&mut self) {
        self.shared
            .finish(self.labels, self.status, self.start.elapsed());
    }
}

impl fmt::Debug for MetricsGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsGuard")
            .field("status", &self.status)
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// Response future of [`Metrics`](super::Metrics).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::metrics::{MetricsLayer, ResponseFuture};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut svc = MetricsLayer::new()
    ///     .layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
    /// let fut: ResponseFuture<_, _> = svc.ready().await.unwrap().call(8);
    /// assert_eq!(fut.await.unwrap(), 8);
    /// # }
    /// ```
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: F,
        guard: Option<MetricsGuard>,
        classifier: C,
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(super) fn new(inner: F, guard: MetricsGuard, classifier: C) -> Self {
        Self {
            inner,
            guard: Some(guard),
            classifier,
        }
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    T: TrackEnd,
    C: ClassifyStatus<T, E>,
{
    type Output = Result<T::Output<MetricsGuard>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut guard = this.guard.take().expect("polled after completion");
        guard.status = this.classifier.status(&result);
        Poll::Ready(match result {
            Ok(res) => Ok(res.track_end(guard)),
            Err(e) => {
                drop(guard);
                Err(e)
            }
        })
    }
}

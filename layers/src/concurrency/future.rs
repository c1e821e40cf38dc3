use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::sync::OwnedSemaphorePermit;

use super::ConcurrencyLimitError;
use crate::stream::TrackEnd;

/// A concurrency permit, held by a response until it is completely delivered.
///
/// This is the guard type passed to [`TrackEnd::track_end`]; it shows up in
/// response types such as `http::Response<GuardedBody<B, Permit>>`.
///
/// # Example
///
/// ```
/// use abacus_layers::concurrency::Permit;
/// use abacus_layers::stream::GuardedBody;
///
/// // The response body type of a limited axum-style service:
/// type LimitedBody<B> = GuardedBody<B, Permit>;
/// ```
pub struct Permit {
    // Released on drop.
    _permit: OwnedSemaphorePermit,
}

impl Permit {
    pub(super) fn new(permit: OwnedSemaphorePermit) -> Self {
        Self { _permit: permit }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

pin_project! {
    /// Response future of [`ConcurrencyLimit`](super::ConcurrencyLimit).
    ///
    /// Holds the permit while the inner future runs, then hands it to the
    /// response ([`TrackEnd`]); on error the permit is released at once.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::concurrency::{ConcurrencyLimitLayer, ResponseFuture};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut svc = ConcurrencyLimitLayer::new(1)
    ///     .layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
    /// let fut: ResponseFuture<_> = svc.ready().await.unwrap().call(4);
    /// assert_eq!(fut.await.unwrap(), 4);
    /// # }
    /// ```
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Called { #[pin] fut: F, permit: Option<Permit> },
        Overloaded,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn called(fut: F, permit: Permit) -> Self {
        Self {
            kind: Kind::Called {
                fut,
                permit: Some(permit),
            },
        }
    }

    pub(super) fn overloaded() -> Self {
        Self {
            kind: Kind::Overloaded,
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let overloaded = matches!(self.kind, Kind::Overloaded);
        f.debug_struct("ResponseFuture")
            .field("overloaded", &overloaded)
            .finish_non_exhaustive()
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    T: TrackEnd,
{
    type Output = Result<T::Output<Permit>, ConcurrencyLimitError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { fut, permit } => match fut.poll(cx) {
                Poll::Ready(Ok(res)) => {
                    let permit = permit.take().expect("polled after completion");
                    Poll::Ready(Ok(res.track_end(permit)))
                }
                Poll::Ready(Err(e)) => {
                    permit.take();
                    Poll::Ready(Err(ConcurrencyLimitError::Inner(e)))
                }
                Poll::Pending => Poll::Pending,
            },
            KindProj::Overloaded => Poll::Ready(Err(ConcurrencyLimitError::Overloaded)),
        }
    }
}

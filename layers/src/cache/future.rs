use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower::util::Oneshot;
use tower_service::Service;

use super::CacheError;

pub(super) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A boxed future that is `Sync` because it is only reachable through
/// `Pin<&mut Self>` (the `sync_wrapper` pattern). tower's
/// `ServiceBuilder::boxed_clone_sync` asks for `Sync` response futures.
struct SyncFuture<T>(BoxFuture<T>);

// SAFETY: a `&SyncFuture` gives access to nothing (there is no `&self`
// method and no `Debug` of the inner future); the inner future is only polled
// through `Pin<&mut Self>`, which is exclusive. Sharing `&SyncFuture` between
// threads therefore cannot race.
unsafe impl<T> Sync for SyncFuture<T> {}

pin_project! {
    /// Response future of [`Cache`](super::Cache).
    ///
    /// Unboxed (`Oneshot`) for requests whose key is `None`; boxed for
    /// cacheable requests.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::cache::{CacheLayer, ResponseFuture};
    /// use tower::{Layer, Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut svc = CacheLayer::builder()
    ///     .build(|n: &u64| Some(*n), |_: &u64| true)
    ///     .layer(service_fn(|n: u64| async move { Ok::<_, std::io::Error>(n) }));
    /// let fut: ResponseFuture<_, u64> = svc.call(3);
    /// assert_eq!(fut.await.unwrap(), 3);
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
        Bypass { #[pin] fut: Oneshot<S, Req> },
        Cached { fut: SyncFuture<Result<S::Response, CacheError<S::Error>>> },
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(super) fn bypass(fut: Oneshot<S, Req>) -> Self {
        Self {
            kind: Kind::Bypass { fut },
        }
    }

    pub(super) fn boxed(fut: BoxFuture<Result<S::Response, CacheError<S::Error>>>) -> Self {
        Self {
            kind: Kind::Cached {
                fut: SyncFuture(fut),
            },
        }
    }
}

impl<S: Service<Req>, Req> fmt::Debug for ResponseFuture<S, Req> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = matches!(self.kind, Kind::Cached { .. });
        f.debug_struct("ResponseFuture")
            .field("cacheable", &cached)
            .finish_non_exhaustive()
    }
}

impl<S: Service<Req>, Req> Future for ResponseFuture<S, Req> {
    type Output = Result<S::Response, CacheError<S::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Bypass { fut } => fut.poll(cx).map_err(CacheError::Inner),
            KindProj::Cached { fut } => fut.0.as_mut().poll(cx),
        }
    }
}

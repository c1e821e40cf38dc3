use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tower::ServiceExt;
use tower_service::Service;

use super::layer::Shared;
use super::{RemoteOp, ResponseFuture};

/// Answers cacheable requests from a remote store, else calls the inner
/// service and writes its response to the store without waiting; built by
/// [`RemoteCacheLayer`](super::RemoteCacheLayer).
///
/// `poll_ready` is always ready: a hit must not wait for the inner
/// service's readiness. On a miss the inner service is cloned, readied and
/// called with `tower::util::Oneshot` (hence `S: Clone`). The store's
/// errors never reach the caller: the error type is the inner service's.
///
/// # Example
///
/// ```
/// use abacus_layers::remote_cache::{RemoteCache, RemoteCacheLayer, RemoteOp};
/// use bytes::Bytes;
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A store that holds "4" for every key.
/// let store = service_fn(|_op: RemoteOp| async { Ok::<_, std::io::Error>(Some(Bytes::from_static(b"4"))) });
/// let svc: RemoteCache<_, _, _, _, _> = RemoteCacheLayer::builder(store)
///     .build(
///         |n: &u64| Some(n.to_string()),
///         |sq: &u64| Some(Bytes::from(sq.to_string())),
///         |b: Bytes| std::str::from_utf8(&b).ok()?.parse().ok(),
///     )
///     .layer(service_fn(|n: u64| async move { Ok::<_, std::io::Error>(n * n) }));
/// assert_eq!(svc.oneshot(3).await.unwrap(), 4); // the store's answer, not 9
/// # }
/// ```
pub struct RemoteCache<S, R, KF, EF, DF> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared<R, KF, EF, DF>>,
}

impl<S, R, KF, EF, DF> RemoteCache<S, R, KF, EF, DF> {
    /// A reference to the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
    /// use bytes::Bytes;
    /// use tower::Layer;
    /// # let store = tower::service_fn(|_: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
    /// let svc = RemoteCacheLayer::builder(store)
    ///     .build(|n: &u8| Some(n.to_string()), |_: &u8| None, |_: Bytes| None::<u8>)
    ///     .layer(5u8);
    /// assert_eq!(*svc.get_ref(), 5);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Consume `self`, returning the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp};
    /// use bytes::Bytes;
    /// use tower::Layer;
    /// # let store = tower::service_fn(|_: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
    /// let svc = RemoteCacheLayer::builder(store)
    ///     .build(|n: &u8| Some(n.to_string()), |_: &u8| None, |_: Bytes| None::<u8>)
    ///     .layer(5u8);
    /// assert_eq!(svc.into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, R, KF, EF, DF> Clone for RemoteCache<S, R, KF, EF, DF> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, R, KF, EF, DF> fmt::Debug for RemoteCache<S, R, KF, EF, DF> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteCache")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, R, KF, EF, DF, Req> Service<Req> for RemoteCache<S, R, KF, EF, DF>
where
    S: Service<Req> + Clone,
    R: Service<RemoteOp, Response = Option<Bytes>> + Clone + Send + 'static,
    R::Future: Send + 'static,
    KF: Fn(&Req) -> Option<String>,
    EF: Fn(&S::Response) -> Option<Bytes>,
    DF: Fn(Bytes) -> Option<S::Response>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S, Req, R, KF, EF, DF>;

    /// Always ready: the inner service is readied on a miss only.
    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let inner = self.inner.clone();
        match (self.shared.key_fn)(&req) {
            None => ResponseFuture::bypass(inner.oneshot(req)),
            Some(key) => {
                let get = self
                    .shared
                    .remote
                    .clone()
                    .oneshot(RemoteOp::Get(key.clone()));
                ResponseFuture::lookup(get, key, inner, req, self.shared.clone())
            }
        }
    }
}

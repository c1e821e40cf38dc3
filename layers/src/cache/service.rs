use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::ServiceExt;
use tower_service::Service;

use super::layer::Shared;
use super::policy::CachePolicy;
use super::{CacheError, ResponseFuture};

/// Why a single-flight fill produced no cacheable value.
enum Fill<E> {
    /// The response may not be cached (the leader keeps it).
    Uncacheable,
    /// The inner service failed.
    Failed(Arc<E>),
}

/// Answers cacheable requests from a moka cache; built by
/// [`CacheLayer`](super::CacheLayer).
///
/// # Example
///
/// ```
/// use abacus_layers::cache::{Cache, CacheLayer};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let svc: Cache<_, _, _, _, _> = CacheLayer::builder()
///     .build(|n: &u64| Some(*n), |_: &u64| true)
///     .layer(service_fn(|n: u64| async move { Ok::<_, std::io::Error>(n + 1) }));
/// assert_eq!(svc.oneshot(1).await.unwrap(), 2);
/// # }
/// ```
pub struct Cache<S, K, V, KF, P> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared<K, V, KF, P>>,
}

impl<S, K, V, KF, P> Cache<S, K, V, KF, P> {
    /// A reference to the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::cache::CacheLayer;
    /// use tower::Layer;
    /// let svc = CacheLayer::builder().build(|n: &u8| Some(*n), |_: &u8| true).layer(5u8);
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
    /// use abacus_layers::cache::CacheLayer;
    /// use tower::Layer;
    /// let svc = CacheLayer::builder().build(|n: &u8| Some(*n), |_: &u8| true).layer(5u8);
    /// assert_eq!(svc.into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, K, V, KF, P> Clone for Cache<S, K, V, KF, P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, K, V, KF, P> fmt::Debug for Cache<S, K, V, KF, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, K, V, KF, P, Req> Service<Req> for Cache<S, K, V, KF, P>
where
    Req: Send + 'static,
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + Sync + 'static,
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    KF: Fn(&Req) -> Option<K> + Send + Sync + 'static,
    P: CachePolicy<S::Response, V> + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = CacheError<S::Error>;
    type Future = ResponseFuture<S, Req>;

    /// Always ready: the inner service is readied on a miss only.
    #[inline]
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let inner = self.inner.clone();
        let Some(key) = (self.shared.key_fn)(&req) else {
            return ResponseFuture::bypass(inner.oneshot(req));
        };
        let shared = self.shared.clone();
        ResponseFuture::boxed(Box::pin(async move {
            // A hit costs one lookup; the refused-key check is for misses.
            if let Some(value) = shared.cache.get(&key).await {
                shared.stats.record(true);
                return Ok(shared.policy.to_response(value));
            }
            let hash = shared.hasher.hash_one(&key);
            if shared.refused.contains_key(&hash) {
                return alone(&shared, key, hash, inner, req).await;
            }
            let mut inner = Some(inner);
            let mut req = Some(req);
            let mut ran = false;
            let mut uncacheable = None;
            let result = shared
                .cache
                .try_get_with(key, async {
                    ran = true;
                    let svc = inner.take().expect("init runs once");
                    let req = req.take().expect("init runs once");
                    match svc.oneshot(req).await {
                        Ok(res) => match shared.policy.to_cached(&res) {
                            Some(value) => Ok(value),
                            None => {
                                uncacheable = Some(res);
                                Err(Fill::Uncacheable)
                            }
                        },
                        Err(e) => Err(Fill::Failed(Arc::new(e))),
                    }
                })
                .await;
            match result {
                Ok(value) => {
                    shared.stats.record(!ran);
                    Ok(shared.policy.to_response(value))
                }
                Err(fill) => {
                    shared.stats.record(false);
                    if let Some(res) = uncacheable {
                        shared.refused.insert(hash, ()).await;
                        return Ok(res);
                    }
                    match &*fill {
                        Fill::Failed(e) => Err(CacheError::Shared(e.clone())),
                        Fill::Uncacheable => {
                            // A concurrent caller's response could not be
                            // cached: this caller sends its own request.
                            let (svc, req) = inner.zip(req).expect("init did not run");
                            svc.oneshot(req).await.map_err(CacheError::Inner)
                        }
                    }
                }
            }
        }))
    }
}

/// A request that missed, for a key whose last response was refused:
/// answered by its own call, without the single flight. A cacheable
/// response is stored and makes the key coalesce again.
async fn alone<S, K, V, KF, P, Req>(
    shared: &Shared<K, V, KF, P>,
    key: K,
    hash: u64,
    inner: S,
    req: Req,
) -> Result<S::Response, CacheError<S::Error>>
where
    S: Service<Req>,
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    P: CachePolicy<S::Response, V>,
{
    shared.stats.record(false);
    let res = inner.oneshot(req).await.map_err(CacheError::Inner)?;
    match shared.policy.to_cached(&res) {
        Some(value) => {
            shared.cache.insert(key, value).await;
            shared.refused.invalidate(&hash).await;
        }
        None => shared.refused.insert(hash, ()).await,
    }
    Ok(res)
}

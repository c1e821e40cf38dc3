use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use pin_project_lite::pin_project;
use tower::ServiceExt;
use tower::util::Oneshot;
use tower_service::Service;

use super::RemoteOp;
use super::layer::{Lookup, Shared};

pin_project! {
    /// Response future of [`RemoteCache`](super::RemoteCache): the store's
    /// lookup, then (on a miss or an error) the inner service's call.
    /// Nothing is boxed; the write after a miss is spawned, not awaited.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::remote_cache::{RemoteCacheLayer, RemoteOp, ResponseFuture};
    /// use bytes::Bytes;
    /// use tower::{Layer, Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = service_fn(|_: RemoteOp| async { Ok::<Option<Bytes>, std::io::Error>(None) });
    /// let mut svc = RemoteCacheLayer::builder(store)
    ///     .build(|n: &u64| Some(n.to_string()), |_: &u64| None, |_: Bytes| None)
    ///     .layer(service_fn(|n: u64| async move { Ok::<_, std::io::Error>(n + 1) }));
    /// let fut: ResponseFuture<_, u64, _, _, _, _> = svc.call(1);
    /// assert_eq!(fut.await.unwrap(), 2);
    /// # }
    /// ```
    pub struct ResponseFuture<S, Req, R, KF, EF, DF>
    where
        S: Service<Req>,
        R: Service<RemoteOp>,
    {
        #[pin]
        state: State<S, Req, R, KF, EF, DF>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req, R, KF, EF, DF>
    where
        S: Service<Req>,
        R: Service<RemoteOp>,
    {
        // Asking the store; the request waits beside it.
        Lookup {
            #[pin]
            get: Oneshot<R, RemoteOp>,
            key: String,
            call: Option<(S, Req)>,
            shared: Arc<Shared<R, KF, EF, DF>>,
        },
        // Calling the inner service; then writing its response, for a
        // cacheable request.
        Call {
            #[pin]
            fut: Oneshot<S, Req>,
            write: Option<(String, Arc<Shared<R, KF, EF, DF>>)>,
        },
    }
}

impl<S, Req, R, KF, EF, DF> ResponseFuture<S, Req, R, KF, EF, DF>
where
    S: Service<Req>,
    R: Service<RemoteOp>,
{
    pub(super) fn bypass(fut: Oneshot<S, Req>) -> Self {
        Self {
            state: State::Call { fut, write: None },
        }
    }

    pub(super) fn lookup(
        get: Oneshot<R, RemoteOp>,
        key: String,
        inner: S,
        req: Req,
        shared: Arc<Shared<R, KF, EF, DF>>,
    ) -> Self {
        Self {
            state: State::Lookup {
                get,
                key,
                call: Some((inner, req)),
                shared,
            },
        }
    }
}

impl<S, Req, R, KF, EF, DF> fmt::Debug for ResponseFuture<S, Req, R, KF, EF, DF>
where
    S: Service<Req>,
    R: Service<RemoteOp>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Lookup { .. } => "lookup",
            State::Call { write: Some(_), .. } => "miss",
            State::Call { write: None, .. } => "bypass",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<S, Req, R, KF, EF, DF> Future for ResponseFuture<S, Req, R, KF, EF, DF>
where
    S: Service<Req>,
    R: Service<RemoteOp, Response = Option<Bytes>> + Clone + Send + 'static,
    R::Future: Send + 'static,
    EF: Fn(&S::Response) -> Option<Bytes>,
    DF: Fn(Bytes) -> Option<S::Response>,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Lookup {
                    get,
                    key,
                    call,
                    shared,
                } => {
                    let found = ready!(get.poll(cx));
                    let found = match found {
                        Ok(Some(value)) => match (shared.decode)(value) {
                            Some(res) => {
                                shared.stats.lookup(Lookup::Hit);
                                return Poll::Ready(Ok(res));
                            }
                            // Not a value we understand: a miss, and the
                            // write below replaces it.
                            None => Lookup::Miss,
                        },
                        Ok(None) => Lookup::Miss,
                        Err(_) => Lookup::Error,
                    };
                    shared.stats.lookup(found);
                    let (inner, req) = call.take().expect("polled after completion");
                    let write = Some((std::mem::take(key), shared.clone()));
                    state.set(State::Call {
                        fut: inner.oneshot(req),
                        write,
                    });
                }
                StateProj::Call { fut, write } => {
                    let result = ready!(fut.poll(cx));
                    if let (Ok(res), Some((key, shared))) = (&result, write.take()) {
                        if let Some(value) = (shared.encode)(res) {
                            shared.write(key, value);
                        }
                    }
                    return Poll::Ready(result);
                }
            }
        }
    }
}

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, TryAcquireError};
use tokio::time::Instant;
use tower_service::Service;

use super::ConcurrencyLimitError;
use super::future::{Permit, ResponseFuture};
use super::layer::Config;
use crate::stream::TrackEnd;

type Acquire =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send + Sync>>;

enum State {
    /// No permit yet.
    Idle,
    /// Waiting for a permit (only allocated when the limiter is full).
    Waiting { acquire: Acquire, since: Instant },
    /// A permit is held for the next `call`.
    Ready(OwnedSemaphorePermit),
    /// Full and shedding: the next `call` fails with `Overloaded`.
    Shed,
}

/// Bounds in-flight requests; built by
/// [`ConcurrencyLimitLayer`](super::ConcurrencyLimitLayer).
///
/// Cloning shares the semaphore; each clone holds its own (not yet spent)
/// permit.
///
/// # Example
///
/// ```
/// use abacus_layers::concurrency::{ConcurrencyLimit, ConcurrencyLimitLayer};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let svc: ConcurrencyLimit<_> = ConcurrencyLimitLayer::new(8)
///     .layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
/// assert_eq!(svc.oneshot(5).await.unwrap(), 5);
/// # }
/// ```
pub struct ConcurrencyLimit<S> {
    inner: S,
    config: Arc<Config>,
    state: State,
}

impl<S> ConcurrencyLimit<S> {
    pub(super) fn from_config(inner: S, config: Arc<Config>) -> Self {
        Self {
            inner,
            config,
            state: State::Idle,
        }
    }

    /// A reference to the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::concurrency::ConcurrencyLimitLayer;
    /// use tower::Layer;
    /// assert_eq!(*ConcurrencyLimitLayer::new(1).layer(3u8).get_ref(), 3);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Consume `self`, returning the inner service (and releasing any permit).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::concurrency::ConcurrencyLimitLayer;
    /// use tower::Layer;
    /// assert_eq!(ConcurrencyLimitLayer::new(1).layer(3u8).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }

    #[inline]
    fn report_wait(&self, since: Option<Instant>) {
        let waited = || since.map(|s| s.elapsed()).unwrap_or_default();
        if let Some(hook) = &self.config.on_wait {
            hook(waited());
        }
        #[cfg(feature = "metrics")]
        if let Some(histogram) = &self.config.wait_histogram {
            histogram.record(self.config.keep_handles, waited().as_secs_f64());
        }
    }
}

impl<S: Clone> Clone for ConcurrencyLimit<S> {
    fn clone(&self) -> Self {
        Self::from_config(self.inner.clone(), self.config.clone())
    }
}

impl<S: fmt::Debug> fmt::Debug for ConcurrencyLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle => "idle",
            State::Waiting { .. } => "waiting",
            State::Ready(_) => "ready",
            State::Shed => "shed",
        };
        f.debug_struct("ConcurrencyLimit")
            .field("inner", &self.inner)
            .field("max", &self.config.max)
            .field("state", &state)
            .finish()
    }
}

impl<S, Req> Service<Req> for ConcurrencyLimit<S>
where
    S: Service<Req>,
    S::Response: TrackEnd,
{
    type Response = <S::Response as TrackEnd>::Output<Permit>;
    type Error = ConcurrencyLimitError<S::Error>;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            match &mut self.state {
                State::Ready(_) => {
                    return self
                        .inner
                        .poll_ready(cx)
                        .map_err(ConcurrencyLimitError::Inner);
                }
                State::Idle | State::Shed => {
                    match self.config.semaphore.clone().try_acquire_owned() {
                        Ok(permit) => {
                            self.report_wait(None);
                            self.state = State::Ready(permit);
                        }
                        Err(TryAcquireError::NoPermits) if !self.config.shed => {
                            let acquire = Box::pin(self.config.semaphore.clone().acquire_owned());
                            self.state = State::Waiting {
                                acquire,
                                since: Instant::now(),
                            };
                        }
                        Err(_) => {
                            self.state = State::Shed;
                            return Poll::Ready(Ok(()));
                        }
                    }
                }
                State::Waiting { acquire, since } => match acquire.as_mut().poll(cx) {
                    Poll::Ready(Ok(permit)) => {
                        let since = *since;
                        self.report_wait(Some(since));
                        self.state = State::Ready(permit);
                    }
                    Poll::Ready(Err(_closed)) => {
                        self.state = State::Shed;
                        return Poll::Ready(Ok(()));
                    }
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Ready(permit) => {
                ResponseFuture::called(self.inner.call(req), Permit::new(permit))
            }
            State::Shed => ResponseFuture::overloaded(),
            _ => panic!("ConcurrencyLimit::call called before poll_ready returned Ready"),
        }
    }
}

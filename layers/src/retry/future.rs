use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::layer::{Config, RetryPredicate};
use super::{GiveUp, RetryError};

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] fut: F },
        Sleeping { #[pin] sleep: Sleep },
        Readying,
    }
}

pin_project! {
    /// Response future of [`Retry`](super::Retry).
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::retry::{ResponseFuture, RetryLayer};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut svc = RetryLayer::new()
    ///     .layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
    /// let fut: ResponseFuture<_, u8, _> = svc.ready().await.unwrap().call(3);
    /// assert_eq!(fut.await.unwrap(), 3);
    /// # }
    /// ```
    pub struct ResponseFuture<S, Req, P>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future>,
        service: S,
        request: Option<Req>,
        config: Arc<Config>,
        predicate: P,
        attempts: u32,
        total_delay: Duration,
        previous_delay: Duration,
    }
}

impl<S, Req, P> ResponseFuture<S, Req, P>
where
    S: Service<Req>,
{
    pub(super) fn new(
        fut: S::Future,
        service: S,
        request: Option<Req>,
        config: Arc<Config>,
        predicate: P,
    ) -> Self {
        let previous_delay = config.backoff.initial();
        Self {
            state: State::Calling { fut },
            service,
            request,
            config,
            predicate,
            attempts: 1,
            total_delay: Duration::ZERO,
            previous_delay,
        }
    }
}

impl<S, Req, P> fmt::Debug for ResponseFuture<S, Req, P>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.attempts)
            .field("total_delay", &self.total_delay)
            .finish_non_exhaustive()
    }
}

fn give_up<T, E>(result: Result<T, E>, attempts: u32, reason: GiveUp) -> Result<T, RetryError<E>> {
    result.map_err(|error| RetryError::Exhausted {
        error,
        attempts,
        reason,
    })
}

impl<S, Req, P> Future for ResponseFuture<S, Req, P>
where
    Req: Clone,
    S: Service<Req>,
    P: RetryPredicate<S::Response, S::Error>,
{
    type Output = Result<S::Response, RetryError<S::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { fut } => {
                    let result = ready!(fut.poll(cx));
                    if !this.predicate.should_retry(&result) {
                        return Poll::Ready(result.map_err(RetryError::Inner));
                    }
                    let attempts = *this.attempts;
                    if this.request.is_none() || attempts >= this.config.max_attempts {
                        return Poll::Ready(give_up(result, attempts, GiveUp::MaxAttempts));
                    }
                    // A wait the result asks for (Retry-After) replaces the
                    // backoff's; the backoff's own sequence goes on unchanged.
                    let backoff =
                        this.config
                            .backoff
                            .delay(attempts, *this.previous_delay, &this.config.rng);
                    let asked = this.predicate.retry_after(&result);
                    let delay = asked.unwrap_or(backoff);
                    if let Some(cap) = this.config.max_total_delay {
                        if *this.total_delay + delay > cap {
                            return Poll::Ready(give_up(result, attempts, GiveUp::MaxTotalDelay));
                        }
                    }
                    if let Some(budget) = &this.config.budget {
                        if !budget.withdraw() {
                            return Poll::Ready(give_up(result, attempts, GiveUp::Budget));
                        }
                    }
                    *this.total_delay += delay;
                    *this.previous_delay = backoff;
                    if delay.is_zero() {
                        this.state.set(State::Readying);
                    } else {
                        this.state.set(State::Sleeping {
                            sleep: tokio::time::sleep(delay),
                        });
                    }
                }
                StateProj::Sleeping { sleep } => {
                    ready!(sleep.poll(cx));
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    if let Err(e) = ready!(this.service.poll_ready(cx)) {
                        return Poll::Ready(Err(RetryError::Inner(e)));
                    }
                    *this.attempts += 1;
                    let req = if *this.attempts >= this.config.max_attempts {
                        this.request.take().expect("request kept for retries")
                    } else {
                        this.request
                            .as_ref()
                            .expect("request kept for retries")
                            .clone()
                    };
                    let fut = this.service.call(req);
                    this.state.set(State::Calling { fut });
                }
            }
        }
    }
}

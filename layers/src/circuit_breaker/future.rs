use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::CircuitBreakerError;
use super::state::{ClassifyFailure, Ticket};

pin_project! {
    /// Response future of [`CircuitBreaker`](super::CircuitBreaker).
    ///
    /// Records the outcome with the breaker when the inner future resolves;
    /// dropped early, it records nothing.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::{CircuitBreakerLayer, ResponseFuture};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut svc = CircuitBreakerLayer::new()
    ///     .layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
    /// let fut: ResponseFuture<_, _> = svc.ready().await.unwrap().call(2);
    /// assert_eq!(fut.await.unwrap(), 2);
    /// # }
    /// ```
    pub struct ResponseFuture<F, C> {
        #[pin]
        kind: Kind<F, C>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, C> {
        Called { #[pin] fut: F, ticket: Option<Ticket>, classifier: C },
        Rejected,
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(super) fn called(fut: F, ticket: Ticket, classifier: C) -> Self {
        Self {
            kind: Kind::Called {
                fut,
                ticket: Some(ticket),
                classifier,
            },
        }
    }

    pub(super) fn rejected() -> Self {
        Self {
            kind: Kind::Rejected,
        }
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("rejected", &matches!(self.kind, Kind::Rejected))
            .finish_non_exhaustive()
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: ClassifyFailure<T, E>,
{
    type Output = Result<T, CircuitBreakerError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called {
                fut,
                ticket,
                classifier,
            } => {
                let result = ready!(fut.poll(cx));
                if let Some(ticket) = ticket.take() {
                    ticket.record(classifier.is_failure(&result));
                }
                Poll::Ready(result.map_err(CircuitBreakerError::Inner))
            }
            KindProj::Rejected => Poll::Ready(Err(CircuitBreakerError::Open)),
        }
    }
}

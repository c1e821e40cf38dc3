use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::state::{Breaker, ClassifyFailure, Ticket};
use super::{CircuitBreakerError, CircuitBreakerHandle, FailOnError, ResponseFuture};

enum Admission {
    None,
    Admitted(Ticket),
    Rejected,
}

/// Rejects calls while the circuit is open; built by
/// [`CircuitBreakerLayer`](super::CircuitBreakerLayer).
///
/// `poll_ready` asks the breaker for admission: when rejected it is ready at
/// once (without readying the inner service) and `call` fails with
/// [`CircuitBreakerError::Open`]; when admitted it readies the inner service.
///
/// # Example
///
/// ```
/// use abacus_layers::circuit_breaker::{CircuitBreaker, CircuitBreakerLayer};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let svc: CircuitBreaker<_, _> = CircuitBreakerLayer::new()
///     .layer(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
/// assert_eq!(svc.oneshot(9).await.unwrap(), 9);
/// # }
/// ```
pub struct CircuitBreaker<S, C = FailOnError> {
    inner: S,
    breaker: Arc<Breaker>,
    classifier: C,
    admission: Admission,
}

impl<S, C> CircuitBreaker<S, C> {
    pub(super) fn new(inner: S, breaker: Arc<Breaker>, classifier: C) -> Self {
        Self {
            inner,
            breaker,
            classifier,
            admission: Admission::None,
        }
    }

    /// A handle reading the breaker's state.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::{CircuitBreakerLayer, CircuitState};
    /// use tower::Layer;
    /// let svc = CircuitBreakerLayer::new().layer(());
    /// assert_eq!(svc.handle().state(), CircuitState::Closed);
    /// ```
    pub fn handle(&self) -> CircuitBreakerHandle {
        CircuitBreakerHandle {
            breaker: self.breaker.clone(),
        }
    }

    /// A reference to the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::CircuitBreakerLayer;
    /// use tower::Layer;
    /// assert_eq!(*CircuitBreakerLayer::new().layer(1u8).get_ref(), 1);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Consume `self`, returning the inner service.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::circuit_breaker::CircuitBreakerLayer;
    /// use tower::Layer;
    /// assert_eq!(CircuitBreakerLayer::new().layer(1u8).into_inner(), 1);
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, C: Clone> Clone for CircuitBreaker<S, C> {
    fn clone(&self) -> Self {
        Self::new(
            self.inner.clone(),
            self.breaker.clone(),
            self.classifier.clone(),
        )
    }
}

impl<S: fmt::Debug, C> fmt::Debug for CircuitBreaker<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker.name())
            .field("state", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

impl<S, C, Req> Service<Req> for CircuitBreaker<S, C>
where
    S: Service<Req>,
    C: ClassifyFailure<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = CircuitBreakerError<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !matches!(self.admission, Admission::Admitted(_)) {
            match self.breaker.try_acquire() {
                Some(kind) => {
                    self.admission = Admission::Admitted(Ticket::new(self.breaker.clone(), kind))
                }
                None => {
                    self.admission = Admission::Rejected;
                    return Poll::Ready(Ok(()));
                }
            }
        }
        self.inner
            .poll_ready(cx)
            .map_err(CircuitBreakerError::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match std::mem::replace(&mut self.admission, Admission::None) {
            Admission::Admitted(ticket) => {
                ResponseFuture::called(self.inner.call(req), ticket, self.classifier.clone())
            }
            Admission::Rejected => ResponseFuture::rejected(),
            Admission::None => {
                panic!("CircuitBreaker::call called before poll_ready returned Ready")
            }
        }
    }
}

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{AuthLayer, Authenticate, Rejection};

/// Authenticates each request before the inner service sees it: the
/// principal goes into the request's extensions; a rejection is answered
/// with HTTP 401 at once. Built by [`AuthLayer`].
///
/// # Example
///
/// ```
/// use abacus_layers::auth::{ApiKeys, AuthLayer};
/// use tower::{Layer, service_fn};
/// let svc = AuthLayer::new(ApiKeys::parse("a:k").unwrap()).layer(service_fn(
///     |_: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) },
/// ));
/// # let _ = svc;
/// ```
pub struct Auth<S, A> {
    pub(super) inner: S,
    pub(super) layer: AuthLayer<A>,
}

impl<S: Clone, A: Clone> Clone for Auth<S, A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, A: fmt::Debug> fmt::Debug for Auth<S, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, A, ReqB, ResB> Service<Request<ReqB>> for Auth<S, A>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    A: Authenticate,
    ResB: From<String>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        if !self
            .layer
            .public
            .as_ref()
            .is_some_and(|public| public(&parts))
        {
            match self.layer.scheme.authenticate(&parts) {
                Ok(principal) => {
                    parts.extensions.insert(principal);
                }
                Err(rejection) => {
                    if let Some(hook) = &self.layer.on_reject {
                        hook(&parts, &rejection);
                    }
                    return ResponseFuture::rejected(unauthorized(&rejection));
                }
            }
        }
        ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body)))
    }
}

fn unauthorized<B: From<String>>(rejection: &Rejection) -> Response<B> {
    let mut response = Response::new(B::from(format!("{}\n", rejection.hint())));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    let headers = response.headers_mut();
    headers.insert(WWW_AUTHENTICATE, rejection.challenge().clone());
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pin_project! {
    /// Response future of [`Auth`]: the inner service's, or a 401 ready at once.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = Projected]
    enum State<F, B> {
        Inner { #[pin] future: F },
        Rejected { response: Option<Response<B>> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    fn inner(future: F) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    fn rejected(response: Response<B>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            Projected::Inner { future } => future.poll(cx),
            Projected::Rejected { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                None => panic!("ResponseFuture polled after completion"),
            },
        }
    }
}

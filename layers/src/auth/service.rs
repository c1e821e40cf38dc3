use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{AuthLayer, Authenticate, Rejection};

/// Authenticates each request before the inner service sees it: the
/// principal goes into the request's extensions; a rejection is answered
/// with HTTP 401 at once, or for a gRPC request (`content-type:
/// application/grpc...`) as gRPC answers it: HTTP 200, `grpc-status: 16`
/// (`UNAUTHENTICATED`), the hint percent-encoded in `grpc-message`, the
/// `WWW-Authenticate` challenge kept and no body. Built by [`AuthLayer`].
///
/// # Example
///
/// ```
/// use abacus_layers::auth::{ApiKeys, AuthLayer};
/// use tower::{Layer, service_fn};
/// use tower::ServiceExt;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let svc = AuthLayer::new(ApiKeys::parse("a:k").unwrap()).layer(service_fn(
///     |_: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) },
/// ));
/// let grpc = http::Request::builder().header("content-type", "application/grpc").body(()).unwrap();
/// let resp = svc.oneshot(grpc).await.unwrap();
/// assert_eq!(resp.status(), 200);
/// assert_eq!(resp.headers()["grpc-status"], "16");
/// assert_eq!(resp.headers()["grpc-message"], "send your API key in the x-api-key header");
/// assert!(resp.body().is_empty());
/// # }
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
                    return ResponseFuture::rejected(unauthorized(&parts, &rejection));
                }
            }
        }
        ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body)))
    }
}

fn unauthorized<B: From<String>>(parts: &Parts, rejection: &Rejection) -> Response<B> {
    if is_grpc(parts) {
        return grpc_unauthenticated(rejection);
    }
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

/// A gRPC request (`content-type: application/grpc`, `application/grpc+proto`,
/// `application/grpc-web` ...).
fn is_grpc(parts: &Parts) -> bool {
    parts.headers.get(CONTENT_TYPE).is_some_and(|ct| {
        let prefix = b"application/grpc";
        ct.as_bytes()
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    })
}

/// `UNAUTHENTICATED` (16) as gRPC answers it: HTTP 200, a trailers-only
/// response (the status in the headers, an empty body) with the hint in
/// `grpc-message` and the `WWW-Authenticate` challenge kept.
fn grpc_unauthenticated<B: From<String>>(rejection: &Rejection) -> Response<B> {
    let mut response = Response::new(B::from(String::new()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(&GRPC_STATUS, HeaderValue::from_static("16"));
    if let Ok(message) = HeaderValue::from_str(&grpc_message(rejection.hint())) {
        headers.insert(&GRPC_MESSAGE, message);
    }
    headers.insert(WWW_AUTHENTICATE, rejection.challenge().clone());
    response
}

static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// `grpc-message` encoding: bytes outside printable ASCII, and `%`, as
/// `%XX` (the gRPC over HTTP/2 specification).
fn grpc_message(text: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
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

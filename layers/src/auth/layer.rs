use std::fmt;
use std::sync::Arc;

use http::request::Parts;
use tower_layer::Layer;

use super::{Auth, Authenticate, Rejection};

type Public = Arc<dyn Fn(&Parts) -> bool + Send + Sync>;
type OnReject = Arc<dyn Fn(&Parts, &Rejection) + Send + Sync>;

/// Applies [`Auth`] to services: requests must authenticate with `A`, but
/// those the [`public`](Self::public) predicate lets through.
///
/// # Example
///
/// ```
/// use abacus_layers::auth::{AuthLayer, BearerTokens};
/// let layer = AuthLayer::new(BearerTokens::parse("ci:t0ken").unwrap())
///     .public(|req| req.uri.path() == "/health")
///     .on_reject(|req, rejection| eprintln!("{} {}: {}", req.method, req.uri, rejection.reason()));
/// # let _ = layer;
/// ```
pub struct AuthLayer<A> {
    pub(super) scheme: A,
    pub(super) public: Option<Public>,
    pub(super) on_reject: Option<OnReject>,
}

impl<A: Authenticate> AuthLayer<A> {
    /// Every request must authenticate with `scheme`.
    pub fn new(scheme: A) -> Self {
        Self {
            scheme,
            public: None,
            on_reject: None,
        }
    }

    /// Requests for which `public` is true pass without credentials (and
    /// without a principal).
    pub fn public(mut self, public: impl Fn(&Parts) -> bool + Send + Sync + 'static) -> Self {
        self.public = Some(Arc::new(public));
        self
    }

    /// Called with every rejected request head and the rejection: the place
    /// to log [`Rejection::reason`] (the layer logs nothing itself).
    pub fn on_reject(mut self, hook: impl Fn(&Parts, &Rejection) + Send + Sync + 'static) -> Self {
        self.on_reject = Some(Arc::new(hook));
        self
    }
}

impl<A: Clone> Clone for AuthLayer<A> {
    fn clone(&self) -> Self {
        Self {
            scheme: self.scheme.clone(),
            public: self.public.clone(),
            on_reject: self.on_reject.clone(),
        }
    }
}

impl<A: fmt::Debug> fmt::Debug for AuthLayer<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("scheme", &self.scheme)
            .field("public", &self.public.is_some())
            .finish()
    }
}

impl<S, A: Clone> Layer<S> for AuthLayer<A> {
    type Service = Auth<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            layer: self.clone(),
        }
    }
}

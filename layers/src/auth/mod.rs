//! Authentication of HTTP requests: an [`Authenticate`] implementation turns
//! the request head into a principal, which [`AuthLayer`] puts in the
//! request's extensions, or into a [`Rejection`], answered with HTTP 401
//! and a `WWW-Authenticate` challenge without calling the inner service.
//!
//! The layer knows nothing of what it protects: routes that stay public are
//! left out by the [`AuthLayer::public`] predicate. Four schemes come with
//! it: the first two compare secrets in constant time (`subtle`), the JWT
//! one needs the feature `jwt`:
//!
//! | scheme | client sends | challenge |
//! |---|---|---|
//! | [`ApiKeys`] | `X-API-Key: KEY` (or another header) | `ApiKey header="x-api-key"` |
//! | [`BearerTokens`] | `Authorization: Bearer TOKEN` | `Bearer` |
//! | `JwtBearer` (`jwt`) | `Authorization: Bearer <JWT>`, signed by a key of a JWK set | `Bearer` |
//! | [`MutualTls`] | a TLS client certificate the server verified ([`TlsClientIdentity`]) | `MutualTLS` |
//!
//! A rejection tells the client what is missing ("send X-API-Key") but
//! never why a credential failed; that is for the server's log, where
//! [`Rejection::reason`] says it without the credential.
//!
//! # Example
//!
//! ```
//! use abacus_layers::auth::{ApiKeys, AuthLayer, Identity};
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let keys = ApiKeys::parse("alice:s3cret, bob:hunter2").unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(AuthLayer::new(keys).public(|req| req.uri.path() == "/health"))
//!     .service(service_fn(|req: Request<()>| async move {
//!         let who = req.extensions().get::<Identity>().map(|i| i.subject.clone());
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::<Bytes>::from(who.unwrap_or_default())))
//!     }));
//!
//! let ok = Request::builder().uri("/").header("x-api-key", "hunter2").body(()).unwrap();
//! assert_eq!(svc.clone().oneshot(ok).await.unwrap().status(), StatusCode::OK);
//! let missing = Request::builder().uri("/").body(()).unwrap();
//! let resp = svc.clone().oneshot(missing).await.unwrap();
//! assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(resp.headers()["www-authenticate"], "ApiKey header=\"x-api-key\"");
//! let public = Request::builder().uri("/health").body(()).unwrap();
//! assert_eq!(svc.oneshot(public).await.unwrap().status(), StatusCode::OK);
//! # }
//! ```

#[cfg(feature = "jwt")]
mod jwt;
mod layer;
mod mtls;
mod scheme;
mod service;

#[cfg(feature = "jwt")]
pub use jwt::{Jwks, JwksError, JwksHandle, JwtBearer};
pub use layer::AuthLayer;
pub use mtls::{MUTUAL_TLS_CHALLENGE, MutualTls, TlsClientIdentity};
pub use scheme::{
    ApiKeys, Authenticate, BearerTokens, CredentialsError, Identity, Rejection, RejectionKind,
};
pub use service::{Auth, ResponseFuture};

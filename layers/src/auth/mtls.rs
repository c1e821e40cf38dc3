use std::sync::Arc;

use http::request::Parts;

use super::{Authenticate, Identity, Rejection};

/// The subject of the TLS client certificate the server verified for this
/// request's connection (its common name, or its whole RFC 4514 subject
/// when it has none).
///
/// The server puts it in the extensions of every request of a connection
/// whose client presented a certificate that verified; [`MutualTls`] reads
/// it. The layer never sees TLS itself.
///
/// # Example
///
/// ```
/// use abacus_layers::auth::TlsClientIdentity;
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(TlsClientIdentity::new("billing-service"));
/// assert_eq!(req.extensions().get::<TlsClientIdentity>().unwrap().subject(), "billing-service");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClientIdentity(Arc<str>);

impl TlsClientIdentity {
    /// The identity of a verified certificate whose subject is `subject`.
    pub fn new(subject: impl Into<Arc<str>>) -> Self {
        Self(subject.into())
    }

    /// The certificate's subject.
    pub fn subject(&self) -> &str {
        &self.0
    }
}

/// The client certificate of the connection ([`TlsClientIdentity`] in the
/// request's extensions) as the credential.
///
/// There is no HTTP challenge for mutual TLS: a request without a verified
/// certificate is answered 401 with `WWW-Authenticate: MutualTLS`, a name
/// of this crate's choosing after the A2A scheme type, so that a client
/// can tell this rejection from the others.
///
/// # Example
///
/// ```
/// use abacus_layers::auth::{Authenticate, MutualTls, RejectionKind, TlsClientIdentity};
/// let mut req = http::Request::new(());
/// let (parts, ()) = http::Request::new(()).into_parts();
/// assert_eq!(MutualTls.authenticate(&parts).unwrap_err().kind(), RejectionKind::Missing);
/// req.extensions_mut().insert(TlsClientIdentity::new("billing"));
/// let (parts, ()) = req.into_parts();
/// let who = MutualTls.authenticate(&parts).unwrap();
/// assert_eq!((who.subject.as_str(), who.scheme), ("billing", "mtls"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MutualTls;

/// The `WWW-Authenticate` value of a request without a client certificate.
///
/// ```
/// use abacus_layers::auth::{Authenticate, MutualTls, MUTUAL_TLS_CHALLENGE};
/// let (parts, ()) = http::Request::new(()).into_parts();
/// assert_eq!(MutualTls.authenticate(&parts).unwrap_err().challenge(), MUTUAL_TLS_CHALLENGE);
/// ```
pub const MUTUAL_TLS_CHALLENGE: &str = "MutualTLS";
const MUTUAL_TLS_HINT: &str = "connect with a TLS client certificate signed by a trusted CA";

impl Authenticate for MutualTls {
    type Principal = Identity;

    fn authenticate(&self, parts: &Parts) -> Result<Identity, Rejection> {
        match parts.extensions.get::<TlsClientIdentity>() {
            Some(id) => Ok(Identity {
                subject: id.subject().to_string(),
                scheme: "mtls",
            }),
            None => Err(Rejection::new(
                super::RejectionKind::Missing,
                MUTUAL_TLS_HINT,
                MUTUAL_TLS_CHALLENGE,
                "no verified client certificate",
            )),
        }
    }
}

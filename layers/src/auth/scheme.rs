use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use http::request::Parts;
use subtle::ConstantTimeEq;

/// Turns a request head into a principal, or into a [`Rejection`].
///
/// # Example
///
/// ```
/// use abacus_layers::auth::{Authenticate, Rejection};
/// use http::request::Parts;
///
/// /// Everyone who says who they are is welcome.
/// #[derive(Clone)]
/// struct Honour;
///
/// impl Authenticate for Honour {
///     type Principal = String;
///     fn authenticate(&self, parts: &Parts) -> Result<String, Rejection> {
///         parts.headers.get("x-user").and_then(|v| v.to_str().ok()).map(String::from)
///             .ok_or_else(|| Rejection::missing("send X-User", "Honour"))
///     }
/// }
/// # let _ = Honour;
/// ```
pub trait Authenticate: Clone + Send + Sync + 'static {
    /// What a request that passes carries in its extensions.
    type Principal: Clone + Send + Sync + 'static;

    /// The principal of this request head.
    fn authenticate(&self, parts: &Parts) -> Result<Self::Principal, Rejection>;
}

/// Who a built-in scheme found: the name the credential was configured
/// under, and the scheme.
///
/// # Example
///
/// ```
/// let who = abacus_layers::auth::Identity { subject: "alice".into(), scheme: "apiKey" };
/// assert_eq!(who.subject, "alice");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The principal's name.
    pub subject: String,
    /// The scheme that authenticated it (`apiKey`, `bearer`, `mtls`).
    pub scheme: &'static str,
}

/// Why a request was turned away.
///
/// # Example
///
/// ```
/// use abacus_layers::auth::RejectionKind;
/// assert_ne!(RejectionKind::Missing, RejectionKind::Invalid);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// No credential at all.
    Missing,
    /// A credential that cannot be read (wrong scheme, not text).
    Malformed,
    /// A credential that does not match (unknown, expired, revoked).
    Invalid,
}

/// A request turned away: HTTP 401 with `challenge` as `WWW-Authenticate`
/// and `hint` as the body; `reason` is for the log only.
///
/// # Example
///
/// ```
/// use abacus_layers::auth::{Rejection, RejectionKind};
/// let r = Rejection::missing("send X-API-Key", "ApiKey header=\"x-api-key\"");
/// assert_eq!(r.kind(), RejectionKind::Missing);
/// assert_eq!(r.hint(), "send X-API-Key");
/// ```
#[derive(Debug, Clone)]
pub struct Rejection {
    kind: RejectionKind,
    hint: Arc<str>,
    challenge: HeaderValue,
    reason: Arc<str>,
}

impl Rejection {
    /// No credential was sent.
    pub fn missing(hint: &str, challenge: &'static str) -> Self {
        Self::new(RejectionKind::Missing, hint, challenge, "no credential")
    }

    /// A rejection of `kind`: `hint` for the client, `reason` for the log.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::auth::{Rejection, RejectionKind};
    /// let r = Rejection::new(RejectionKind::Invalid, "send a valid key", "ApiKey", "unknown key");
    /// assert_eq!(r.reason(), "unknown key");
    /// ```
    pub fn new(kind: RejectionKind, hint: &str, challenge: &'static str, reason: &str) -> Self {
        Self {
            kind,
            hint: hint.into(),
            challenge: HeaderValue::from_static(challenge),
            reason: reason.into(),
        }
    }

    /// Missing, malformed or invalid.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// What the client is told (the response body).
    pub fn hint(&self) -> &str {
        &self.hint
    }

    /// The `WWW-Authenticate` value.
    pub fn challenge(&self) -> &HeaderValue {
        &self.challenge
    }

    /// Why, for the server's log; never the credential itself.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A credentials list that could not be read.
///
/// # Example
///
/// ```
/// let e = abacus_layers::auth::ApiKeys::parse("alice").unwrap_err();
/// assert!(e.to_string().contains("principal:secret"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsError(String);

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CredentialsError {}

/// `principal:secret` pairs, separated by commas or new lines (blank lines
/// and `#` comments ignored). Secrets must be distinct.
#[derive(Clone)]
struct Secrets(Arc<[(String, Vec<u8>)]>);

impl Secrets {
    fn parse(list: &str) -> Result<Self, CredentialsError> {
        let mut pairs = Vec::new();
        let mut seen = BTreeSet::new();
        for (n, item) in list.split([',', '\n']).map(str::trim).enumerate() {
            if item.is_empty() || item.starts_with('#') {
                continue;
            }
            let (who, secret) = item
                .split_once(':')
                .map(|(w, s)| (w.trim(), s.trim()))
                .filter(|(w, s)| !w.is_empty() && !s.is_empty())
                .ok_or_else(|| {
                    CredentialsError(format!("entry {}: expected principal:secret", n + 1))
                })?;
            if !seen.insert(secret) {
                return Err(CredentialsError(format!(
                    "entry {}: the secret of {who} is given twice",
                    n + 1
                )));
            }
            pairs.push((who.to_string(), secret.as_bytes().to_vec()));
        }
        if pairs.is_empty() {
            return Err(CredentialsError("no principal:secret pairs".into()));
        }
        Ok(Self(pairs.into()))
    }

    /// The principal of `presented`, comparing it with every secret in
    /// constant time, so neither a match nor its place leaks by timing.
    fn find(&self, presented: &[u8]) -> Option<&str> {
        let mut found = None;
        for (who, secret) in self.0.iter() {
            if bool::from(secret.as_slice().ct_eq(presented)) {
                found = Some(who.as_str());
            }
        }
        found
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: secrets never reach a log.
        f.debug_list()
            .entries(self.0.iter().map(|(who, _)| who))
            .finish()
    }
}

/// API keys in a request header (`X-API-Key` by default).
///
/// # Example
///
/// ```
/// use abacus_layers::auth::{ApiKeys, Authenticate};
/// let keys = ApiKeys::parse("alice:k1\nbob:k2").unwrap();
/// let (parts, ()) = http::Request::builder().header("x-api-key", "k2").body(()).unwrap().into_parts();
/// assert_eq!(keys.authenticate(&parts).unwrap().subject, "bob");
/// ```
#[derive(Debug, Clone)]
pub struct ApiKeys {
    header: HeaderName,
    secrets: Secrets,
}

const API_KEY_CHALLENGE: &str = "ApiKey header=\"x-api-key\"";

impl ApiKeys {
    /// Keys from `principal:key` pairs, separated by commas or new lines.
    pub fn parse(list: &str) -> Result<Self, CredentialsError> {
        Ok(Self {
            header: HeaderName::from_static("x-api-key"),
            secrets: Secrets::parse(list)?,
        })
    }

    /// Reads the key from `header` instead of `X-API-Key`.
    ///
    /// # Example
    ///
    /// ```
    /// let keys = abacus_layers::auth::ApiKeys::parse("a:k").unwrap()
    ///     .header(http::HeaderName::from_static("x-token"));
    /// # let _ = keys;
    /// ```
    pub fn header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }

    /// The header the key is read from.
    ///
    /// # Example
    ///
    /// ```
    /// let keys = abacus_layers::auth::ApiKeys::parse("a:k").unwrap();
    /// assert_eq!(keys.header_name(), "x-api-key");
    /// ```
    pub fn header_name(&self) -> &HeaderName {
        &self.header
    }
}

impl Authenticate for ApiKeys {
    type Principal = Identity;

    fn authenticate(&self, parts: &Parts) -> Result<Identity, Rejection> {
        // The hint is formatted for rejections only: an accepted key costs
        // no allocation but the subject's.
        let reject = |kind, reason| {
            let hint = format!("send your API key in the {} header", self.header);
            Rejection::new(kind, &hint, API_KEY_CHALLENGE, reason)
        };
        let Some(value) = parts.headers.get(&self.header) else {
            return Err(reject(RejectionKind::Missing, "no API key"));
        };
        match self.secrets.find(value.as_bytes()) {
            Some(who) => Ok(Identity {
                subject: who.to_string(),
                scheme: "apiKey",
            }),
            None => Err(reject(RejectionKind::Invalid, "unknown API key")),
        }
    }
}

/// Static bearer tokens (`Authorization: Bearer TOKEN`).
///
/// # Example
///
/// ```
/// use abacus_layers::auth::{Authenticate, BearerTokens};
/// let tokens = BearerTokens::parse("ci:t0ken").unwrap();
/// let (parts, ()) = http::Request::builder()
///     .header("authorization", "Bearer t0ken").body(()).unwrap().into_parts();
/// assert_eq!(tokens.authenticate(&parts).unwrap().subject, "ci");
/// ```
#[derive(Debug, Clone)]
pub struct BearerTokens {
    secrets: Secrets,
}

const BEARER_CHALLENGE: &str = "Bearer";
const BEARER_HINT: &str = "send Authorization: Bearer <token>";

impl BearerTokens {
    /// Tokens from `principal:token` pairs, separated by commas or new lines.
    pub fn parse(list: &str) -> Result<Self, CredentialsError> {
        Ok(Self {
            secrets: Secrets::parse(list)?,
        })
    }
}

impl Authenticate for BearerTokens {
    type Principal = Identity;

    fn authenticate(&self, parts: &Parts) -> Result<Identity, Rejection> {
        let token = match bearer_token(parts) {
            None => return Err(Rejection::missing(BEARER_HINT, BEARER_CHALLENGE)),
            Some(Ok(token)) => token,
            Some(Err(NotBearer)) => {
                return Err(Rejection::new(
                    RejectionKind::Malformed,
                    BEARER_HINT,
                    BEARER_CHALLENGE,
                    "Authorization is not a bearer token",
                ));
            }
        };
        match self.secrets.find(token) {
            Some(who) => Ok(Identity {
                subject: who.to_string(),
                scheme: "bearer",
            }),
            None => Err(Rejection::new(
                RejectionKind::Invalid,
                BEARER_HINT,
                "Bearer error=\"invalid_token\"",
                "unknown bearer token",
            )),
        }
    }
}

/// An `Authorization` header of another scheme than `Bearer`.
pub(super) struct NotBearer;

/// The token of `Authorization: Bearer TOKEN`; `None` without the header.
pub(super) fn bearer_token(parts: &Parts) -> Option<Result<&[u8], NotBearer>> {
    let bytes = parts.headers.get(AUTHORIZATION)?.as_bytes();
    // The scheme name is case-insensitive (RFC 9110 section 11.1).
    Some(match bytes.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => Ok(bytes[7..].trim_ascii()),
        _ => Err(NotBearer),
    })
}

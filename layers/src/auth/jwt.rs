use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::Notify;

use super::scheme::{NotBearer, bearer_token};
use super::{Authenticate, Identity, Rejection, RejectionKind};

const HINT: &str = "send Authorization: Bearer <JWT>";
const CHALLENGE: &str = "Bearer";
const INVALID_TOKEN: &str = "Bearer error=\"invalid_token\"";
/// The most of an attacker-chosen header value (`kid`, `alg`) a reason repeats.
const MAX_ECHO: usize = 64;

const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// A JWK set that could not be used.
///
/// # Example
///
/// ```
/// let e = abacus_layers::auth::Jwks::parse(b"[]").unwrap_err();
/// assert!(e.to_string().contains("keys"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksError(String);

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JwksError {}

/// One verification key and the algorithms it may verify.
struct Key {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// The signature keys of a JWK set (RFC 7517), by key id, parsed once.
///
/// Keys that cannot verify a signature here are left out and counted in
/// [`skipped`](Self::skipped): those without a `kid`, those for encryption
/// (`"use": "enc"`), symmetric (`oct`) keys, and curves or algorithms
/// outside RS256/384/512, PS256/384/512, ES256/384 (P-256, P-384) and
/// EdDSA (Ed25519).
///
/// # Example
///
/// ```
/// use abacus_layers::auth::Jwks;
/// let jwks = Jwks::parse(br#"{"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}"#).unwrap();
/// assert!(jwks.is_empty());
/// assert_eq!(jwks.skipped(), 1);
/// ```
#[derive(Default)]
pub struct Jwks {
    keys: HashMap<String, Key>,
    skipped: usize,
}

impl Jwks {
    /// Parses a JWK set document (`{"keys": [...]}`). A key id given twice
    /// makes the whole set unusable: which key is meant cannot be told.
    pub fn parse(json: &[u8]) -> Result<Self, JwksError> {
        let doc: Value =
            serde_json::from_slice(json).map_err(|e| JwksError(format!("not JSON: {e}")))?;
        let Value::Object(mut doc) = doc else {
            return Err(JwksError("expected an object with a \"keys\" array".into()));
        };
        let Some(Value::Array(keys)) = doc.remove("keys") else {
            return Err(JwksError("no \"keys\" array".into()));
        };
        let mut set = Jwks::default();
        for value in keys {
            let Some((kid, key)) = usable(value) else {
                set.skipped += 1;
                continue;
            };
            if set.keys.contains_key(&kid) {
                return Err(JwksError(format!(
                    "key id {} is given twice",
                    printable(&kid)
                )));
            }
            set.keys.insert(kid, key);
        }
        Ok(set)
    }

    /// How many keys can verify tokens.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(abacus_layers::auth::Jwks::parse(br#"{"keys": []}"#).unwrap().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key can verify tokens.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key of id `kid` is in the set.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!abacus_layers::auth::Jwks::default().contains("k1"));
    /// ```
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// How many keys of the document were left out (see the type's docs).
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<_> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("Jwks")
            .field("kids", &kids)
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// The key id and verification key of one JWK, if it can verify signatures.
fn usable(value: Value) -> Option<(String, Key)> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    let kid = jwk.common.key_id.clone().filter(|k| !k.is_empty())?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let fits: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &RSA_ALGORITHMS,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
            _ => return None,
        },
        // Symmetric keys never: a JWK set is public.
        _ => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        // A key that names its algorithm verifies that one only.
        Some(named) => {
            let named = Algorithm::try_from(named).ok()?;
            if !fits.contains(&named) {
                return None;
            }
            vec![named]
        }
        None => fits.to_vec(),
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some((kid, Key { key, algorithms }))
}

/// The JWK set a [`JwtBearer`] verifies with, shared with whatever keeps it
/// fresh: clones share it; [`set`](Self::set) replaces it at once for every
/// clone without blocking requests (they hold the previous set for the
/// microseconds of a verification).
///
/// A token naming a key id the set does not have asks for a refresh
/// ([`refresh_requested`](Self::refresh_requested) wakes), so a source that
/// can fetch (a JWKS URL) learns of a key rotation early. Rate-limiting
/// those fetches is the source's job.
///
/// # Example
///
/// ```
/// use abacus_layers::auth::{Jwks, JwksHandle};
/// let handle = JwksHandle::default();
/// assert!(handle.get().is_empty());
/// handle.set(Jwks::parse(br#"{"keys": []}"#).unwrap());
/// # let _ = handle;
/// ```
#[derive(Clone, Default)]
pub struct JwksHandle {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    keys: RwLock<Arc<Jwks>>,
    refresh: Notify,
}

impl JwksHandle {
    /// A handle holding `jwks`.
    pub fn new(jwks: Jwks) -> Self {
        let handle = Self::default();
        handle.set(jwks);
        handle
    }

    /// Replaces the set for every clone of this handle.
    pub fn set(&self, jwks: Jwks) {
        let jwks = Arc::new(jwks);
        // A panic while swapping an Arc leaves nothing half-written.
        *self
            .shared
            .keys
            .write()
            .unwrap_or_else(PoisonError::into_inner) = jwks;
    }

    /// The current set.
    pub fn get(&self) -> Arc<Jwks> {
        self.shared
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Asks for a refresh: wakes a waiting [`refresh_requested`](Self::refresh_requested),
    /// or the next one (one request is remembered, not a count).
    pub fn request_refresh(&self) {
        self.shared.refresh.notify_one();
    }

    /// Resolves once a refresh was asked for (by a token of an unknown key
    /// id, or [`request_refresh`](Self::request_refresh)).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let handle = abacus_layers::auth::JwksHandle::default();
    /// handle.request_refresh();
    /// handle.refresh_requested().await;
    /// # }
    /// ```
    pub async fn refresh_requested(&self) {
        self.shared.refresh.notified().await;
    }
}

impl fmt::Debug for JwksHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JwksHandle").field(&self.get()).finish()
    }
}

/// Bearer JWTs (`Authorization: Bearer <JWT>`, RFC 7519) verified with the
/// public keys of a JWK set; the principal is the `sub` claim.
///
/// The key is the one of the header's `kid`; the header's algorithm must be
/// asymmetric (RS*, PS*, ES256/384, EdDSA: never `none` nor HMAC) and fit
/// that key. `exp` and `sub` are required, `nbf` is checked when present,
/// `iss` and `aud` are required and checked when configured, with a clock
/// leeway (60 s by default) on `exp` and `nbf`. Keys embedded in or pointed
/// to by the token (`jwk`, `jku`, `x5u`) are never used.
///
/// A rejection tells the client only what to send;
/// [`Rejection::reason`] says why for the log ("expired", "wrong audience",
/// "unknown key id …"), never with the token.
///
/// # Example
///
/// ```
/// use abacus_layers::auth::{Authenticate, Jwks, JwksHandle, JwtBearer, RejectionKind};
/// use std::time::Duration;
///
/// let keys = JwksHandle::new(Jwks::parse(br#"{"keys": []}"#).unwrap());
/// let jwt = JwtBearer::new(keys)
///     .issuer("https://idp.example")
///     .audience("abacus")
///     .leeway(Duration::from_secs(30));
/// let (parts, ()) = http::Request::builder()
///     .header("authorization", "Bearer not-a-jwt").body(()).unwrap().into_parts();
/// let rejection = jwt.authenticate(&parts).unwrap_err();
/// assert_eq!(rejection.kind(), RejectionKind::Malformed);
/// ```
#[derive(Debug, Clone)]
pub struct JwtBearer {
    keys: JwksHandle,
    issuer: Option<Arc<str>>,
    audience: Option<Arc<str>>,
    leeway: u64,
}

impl JwtBearer {
    /// Tokens signed by a key of `keys`.
    pub fn new(keys: JwksHandle) -> Self {
        Self {
            keys,
            issuer: None,
            audience: None,
            leeway: 60,
        }
    }

    /// Requires the `iss` claim to be `issuer`.
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Requires `audience` in the `aud` claim (a string or an array).
    pub fn audience(mut self, audience: &str) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The clock skew allowed on `exp` and `nbf` (whole seconds; 60 s by default).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.as_secs();
        self
    }

    /// The key set's handle (to replace the set, or to wait for refresh requests).
    pub fn keys(&self) -> &JwksHandle {
        &self.keys
    }

    /// Whether the request's bearer credential has the shape of a JWT (three
    /// base64url segments): what tells a JWT from an opaque token when both
    /// are accepted.
    ///
    /// # Example
    ///
    /// ```
    /// use abacus_layers::auth::JwtBearer;
    /// let parts = |v: &str| http::Request::builder().header("authorization", v).body(()).unwrap().into_parts().0;
    /// assert!(JwtBearer::is_jwt(&parts("Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln")));
    /// assert!(!JwtBearer::is_jwt(&parts("Bearer t0ken")));
    /// ```
    pub fn is_jwt(parts: &Parts) -> bool {
        matches!(bearer_token(parts), Some(Ok(token)) if jwt_shaped(token))
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            // Without a configured audience any `aud` is accepted (the
            // crate would reject every token that has one).
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }
}

fn reject(kind: RejectionKind, reason: &str) -> Rejection {
    let challenge = match kind {
        RejectionKind::Missing => CHALLENGE,
        _ => INVALID_TOKEN,
    };
    Rejection::new(kind, HINT, challenge, reason)
}

impl Authenticate for JwtBearer {
    type Principal = Identity;

    fn authenticate(&self, parts: &Parts) -> Result<Identity, Rejection> {
        let token = match bearer_token(parts) {
            None => return Err(Rejection::missing(HINT, CHALLENGE)),
            Some(Err(NotBearer)) => {
                return Err(Rejection::new(
                    RejectionKind::Malformed,
                    HINT,
                    CHALLENGE,
                    "Authorization is not a bearer token",
                ));
            }
            Some(Ok(token)) => token,
        };
        let malformed = |reason| reject(RejectionKind::Malformed, reason);
        let invalid = |reason: &str| reject(RejectionKind::Invalid, reason);
        if !jwt_shaped(token) {
            return Err(malformed("the bearer token is not a JWT"));
        }
        let token = std::str::from_utf8(token).map_err(|_| malformed("the JWT is not text"))?;
        let header = read_header(token).ok_or_else(|| malformed("unreadable JWT header"))?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("no algorithm"))?;
        let alg = match Algorithm::from_str(alg) {
            Ok(a) if a.family() != AlgorithmFamily::Hmac => a,
            _ => {
                return Err(invalid(&format!(
                    "algorithm {} not accepted",
                    printable(alg)
                )));
            }
        };
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("no key id"))?;
        let keys = self.keys.get();
        let Some(key) = keys.keys.get(kid) else {
            self.keys.request_refresh();
            return Err(invalid(&format!("unknown key id {}", printable(kid))));
        };
        if !key.algorithms.contains(&alg) {
            return Err(invalid(&format!(
                "algorithm {alg:?} does not fit key {}",
                printable(kid)
            )));
        }
        let data =
            jsonwebtoken::decode::<Value>(token, &key.key, &self.validation(alg)).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => invalid("expired"),
                    ErrorKind::ImmatureSignature => invalid("not yet valid"),
                    ErrorKind::InvalidAudience => invalid("wrong audience"),
                    ErrorKind::InvalidIssuer => invalid("wrong issuer"),
                    ErrorKind::InvalidSignature => invalid("bad signature"),
                    ErrorKind::MissingRequiredClaim(claim) => invalid(&format!("no {claim} claim")),
                    ErrorKind::InvalidClaimFormat(claim) => {
                        invalid(&format!("malformed {claim} claim"))
                    }
                    ErrorKind::InvalidToken
                    | ErrorKind::Base64(_)
                    | ErrorKind::Json(_)
                    | ErrorKind::Utf8(_) => malformed("unreadable JWT"),
                    _ => invalid("the token does not verify with its key"),
                }
            })?;
        match data.claims.get("sub").and_then(Value::as_str) {
            Some(sub) if !sub.is_empty() => Ok(Identity {
                subject: sub.to_string(),
                scheme: "jwt",
            }),
            _ => Err(invalid("no sub claim")),
        }
    }
}

/// Three dot-separated base64url segments, the first two not empty (an
/// unsigned `alg: none` token, with an empty third, is still a JWT: one
/// to reject as such).
fn jwt_shaped(token: &[u8]) -> bool {
    let mut segments = 0;
    for (n, segment) in token.split(|b| *b == b'.').enumerate() {
        let base64url = segment
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        if !base64url || (n < 2 && segment.is_empty()) {
            return false;
        }
        segments += 1;
    }
    segments == 3
}

/// The JOSE header, read before any key is chosen.
fn read_header(token: &str) -> Option<serde_json::Map<String, Value>> {
    let encoded = token.split('.').next()?;
    let json = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    match serde_json::from_slice(&json).ok()? {
        Value::Object(header) => Some(header),
        _ => None,
    }
}

/// An attacker-chosen value made safe for a log line: printable ASCII only,
/// bounded, quoted.
fn printable(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(MAX_ECHO)
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if value.chars().count() > MAX_ECHO {
        out.push('…');
    }
    format!("\"{out}\"")
}

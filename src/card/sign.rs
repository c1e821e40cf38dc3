//! Agent card signatures (A2A §8.4): a JWS (RFC 7515) per key over the
//! RFC 8785 canonical form of the card, with its default values removed and
//! its `signatures` field excluded.
//!
//! The JWS payload is detached: an [`AgentCardSignature`] carries the
//! base64url protected header (`alg`, `typ: JOSE`, `kid`) and the signature;
//! a verifier rebuilds the payload from the card it received. Keys are ES256
//! (P-256) and EdDSA (Ed25519); the algorithm follows from the key.
//!
//! ```
//! use abacus::card::sign::{sign, verify, SigningKey};
//! # let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
//! let key = SigningKey::from_pem("key-1", &pem)?;
//! let mut card = serde_json::to_value(abacus::math::MathAgent::card())?;
//! card["signatures"] = serde_json::to_value(sign(&card, &[key.clone()])?)?;
//! assert_eq!(verify(&card, &[key.verifying_key()])?, "key-1");
//! card["name"] = "someone else".into();
//! assert!(verify(&card, &[key.verifying_key()]).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::protocol::types::AgentCardSignature;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;

/// The card field that holds the signatures, never part of the payload.
pub const SIGNATURES: &str = "signatures";

/// The JWS `typ` of a card signature (§8.4.2: "SHOULD be JOSE").
pub const JOSE_TYPE: &str = "JOSE";

/// A signature algorithm: the JWS `alg` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256 (`ES256`).
    Es256,
    /// Ed25519 (`EdDSA`).
    EdDsa,
}

impl Algorithm {
    /// The JWS `alg` name.
    ///
    /// ```
    /// assert_eq!(abacus::card::sign::Algorithm::EdDsa.as_str(), "EdDSA");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The algorithm of a JWS `alg` name; `None` for any other (`none`,
    /// HMAC, RSA are not accepted).
    ///
    /// ```
    /// use abacus::card::sign::Algorithm;
    /// assert_eq!(Algorithm::from_name("ES256"), Some(Algorithm::Es256));
    /// assert_eq!(Algorithm::from_name("none"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Algorithm::Es256),
            "EdDSA" => Some(Algorithm::EdDsa),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not a key of a supported kind.
    #[error("{0}")]
    Invalid(String),
}

/// A card that could not be canonicalized or signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The card is not a JSON object.
    #[error("the agent card is not a JSON object")]
    NotAnObject,
    /// The card has no RFC 8785 form (e.g. a number out of range) or could
    /// not be serialized.
    #[error("cannot canonicalize the agent card: {0}")]
    Canonical(String),
}

/// Why no signature of a card verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The card has no `signatures`.
    #[error("the agent card has no signatures")]
    Unsigned,
    /// No verification key was given.
    #[error("no verification key given")]
    NoKeys,
    /// The card could not be canonicalized.
    #[error(transparent)]
    Card(#[from] SignError),
    /// Every signature failed; one reason each, in card order.
    #[error("no signature verified: {}", .0.join("; "))]
    Rejected(Vec<String>),
}

/// A private key that signs cards, with its key id (`kid`).
///
/// ```
/// use abacus::card::sign::{Algorithm, SigningKey};
/// # let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
/// let key = SigningKey::from_pem("2025-01", &pem)?;
/// assert_eq!(key.kid(), "2025-01");
/// assert_eq!(key.algorithm(), Algorithm::EdDsa);
/// # Ok::<(), abacus::card::sign::KeyError>(())
/// ```
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    secret: Secret,
}

#[derive(Clone)]
enum Secret {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key material.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.algorithm())
            .finish()
    }
}

impl SigningKey {
    /// A key from PEM text: PKCS#8 (`BEGIN PRIVATE KEY`) of a P-256 or
    /// Ed25519 key, or SEC1 (`BEGIN EC PRIVATE KEY`) of a P-256 key.
    pub fn from_pem(kid: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        let kid = kid.into();
        if kid.is_empty() {
            return Err(KeyError::Invalid("empty key id".into()));
        }
        let secret = if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            Secret::Es256(k)
        } else if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            Secret::EdDsa(k)
        } else if let Ok(k) = p256::SecretKey::from_sec1_pem(pem) {
            Secret::Es256(k.into())
        } else {
            return Err(KeyError::Invalid(format!(
                "key {kid}: not a PKCS#8 P-256 or Ed25519 private key (PEM)"
            )));
        };
        Ok(SigningKey { kid, secret })
    }

    /// A key from a PEM file.
    pub fn from_file(kid: impl Into<String>, path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_pem(kid, &pem)
    }

    /// The keys of `--card-signing-key`: comma-separated `KID=PATH` entries.
    ///
    /// ```
    /// use abacus::card::sign::SigningKey;
    /// let err = SigningKey::parse_list("k1=/nonexistent.pem").unwrap_err();
    /// assert!(err.to_string().contains("/nonexistent.pem"));
    /// assert!(SigningKey::parse_list("no-equals-sign").is_err());
    /// ```
    pub fn parse_list(spec: &str) -> Result<Vec<Self>, KeyError> {
        let mut keys: Vec<SigningKey> = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((kid, path)) = entry.split_once('=') else {
                return Err(KeyError::Invalid(format!("`{entry}` is not KID=PATH")));
            };
            let (kid, path) = (kid.trim(), path.trim());
            if keys.iter().any(|k| k.kid == kid) {
                return Err(KeyError::Invalid(format!("key id {kid} given twice")));
            }
            keys.push(Self::from_file(kid, path)?);
        }
        if keys.is_empty() {
            return Err(KeyError::Invalid("no KID=PATH entry".into()));
        }
        Ok(keys)
    }

    /// The key id, the `kid` of its signatures.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm the key signs with.
    pub fn algorithm(&self) -> Algorithm {
        match self.secret {
            Secret::Es256(_) => Algorithm::Es256,
            Secret::EdDsa(_) => Algorithm::EdDsa,
        }
    }

    /// The public half, with the same key id.
    pub fn verifying_key(&self) -> VerifyingKey {
        let public = match &self.secret {
            Secret::Es256(k) => Public::Es256(*k.verifying_key()),
            Secret::EdDsa(k) => Public::EdDsa(k.verifying_key()),
        };
        VerifyingKey {
            kid: Some(self.kid.clone()),
            public,
        }
    }

    fn sign_bytes(&self, input: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        match &self.secret {
            Secret::Es256(k) => {
                // JWS wants the fixed-size r || s form (RFC 7518 §3.4).
                let sig: p256::ecdsa::Signature = k.sign(input);
                sig.to_bytes().to_vec()
            }
            Secret::EdDsa(k) => k.sign(input).to_bytes().to_vec(),
        }
    }
}

/// A public key that verifies card signatures; with a key id when it came
/// from a JWKS (it then only checks signatures of that `kid`).
///
/// ```
/// use abacus::card::sign::{Algorithm, VerifyingKey};
/// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// let keys = VerifyingKey::parse(jwks)?;
/// assert_eq!(keys[0].kid(), Some("k1"));
/// assert_eq!(keys[0].algorithm(), Algorithm::EdDsa);
/// # Ok::<(), abacus::card::sign::KeyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    kid: Option<String>,
    public: Public,
}

#[derive(Debug, Clone)]
enum Public {
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_dalek::VerifyingKey),
}

impl VerifyingKey {
    /// A key from a public key PEM (`BEGIN PUBLIC KEY`, SubjectPublicKeyInfo)
    /// of a P-256 or Ed25519 key; it has no key id.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let public = if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            Public::Es256(k)
        } else if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            Public::EdDsa(k)
        } else {
            return Err(KeyError::Invalid(
                "not a P-256 or Ed25519 public key (PEM)".into(),
            ));
        };
        Ok(VerifyingKey { kid: None, public })
    }

    /// A key from a JWK (RFC 7517): `EC` on `P-256`, or `OKP` on `Ed25519`.
    pub fn from_jwk(jwk: &Value) -> Result<Self, KeyError> {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        let bytes = |name: &str| -> Result<Vec<u8>, KeyError> {
            let text =
                field(name).ok_or_else(|| KeyError::Invalid(format!("JWK without `{name}`")))?;
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|e| KeyError::Invalid(format!("JWK `{name}`: {e}")))
        };
        let public = match (field("kty"), field("crv")) {
            (Some("EC"), Some("P-256")) => {
                let (x, y) = (bytes("x")?, bytes("y")?);
                let mut sec1 = Vec::with_capacity(65);
                sec1.push(0x04);
                sec1.extend_from_slice(&x);
                sec1.extend_from_slice(&y);
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map_err(|_| KeyError::Invalid("JWK: not a P-256 point".into()))?;
                Public::Es256(key)
            }
            (Some("OKP"), Some("Ed25519")) => {
                let x: [u8; 32] = bytes("x")?
                    .try_into()
                    .map_err(|_| KeyError::Invalid("JWK: Ed25519 `x` is not 32 bytes".into()))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| KeyError::Invalid("JWK: not an Ed25519 point".into()))?;
                Public::EdDsa(key)
            }
            (kty, crv) => {
                return Err(KeyError::Invalid(format!(
                    "JWK kty {} crv {}: only EC P-256 and OKP Ed25519",
                    kty.unwrap_or("?"),
                    crv.unwrap_or("?")
                )))
            }
        };
        Ok(VerifyingKey {
            kid: field("kid").map(str::to_string),
            public,
        })
    }

    /// Every key in `text`: a public key PEM, a JWK, or a JWKS (`{"keys": [...]}`).
    pub fn parse(text: &str) -> Result<Vec<Self>, KeyError> {
        let trimmed = text.trim_start();
        if !trimmed.starts_with('{') {
            return Ok(vec![Self::from_pem(text)?]);
        }
        let json: Value = serde_json::from_str(trimmed)
            .map_err(|e| KeyError::Invalid(format!("not JSON (JWK or JWKS): {e}")))?;
        match json.get("keys") {
            Some(Value::Array(keys)) if !keys.is_empty() => {
                keys.iter().map(Self::from_jwk).collect()
            }
            Some(_) => Err(KeyError::Invalid(
                "JWKS `keys` is not a non-empty array".into(),
            )),
            None => Ok(vec![Self::from_jwk(&json)?]),
        }
    }

    /// Every key in a file (see [`VerifyingKey::parse`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Vec<Self>, KeyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| KeyError::Invalid(format!("{}: {e}", path.display())))
    }

    /// The key id, when the key came with one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm of the signatures the key checks.
    pub fn algorithm(&self) -> Algorithm {
        match self.public {
            Public::Es256(_) => Algorithm::Es256,
            Public::EdDsa(_) => Algorithm::EdDsa,
        }
    }

    /// The key as a JWK (RFC 7517), with `kid`, `alg` and `use: sig`.
    ///
    /// ```
    /// # let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
    /// let key = abacus::card::sign::SigningKey::from_pem("k1", &pem)?.verifying_key();
    /// let jwk = key.to_jwk();
    /// assert_eq!(jwk["kty"], "OKP");
    /// let again = abacus::card::sign::VerifyingKey::from_jwk(&jwk)?;
    /// assert_eq!(again.kid(), Some("k1"));
    /// # Ok::<(), abacus::card::sign::KeyError>(())
    /// ```
    pub fn to_jwk(&self) -> Value {
        let mut jwk = match &self.public {
            Public::Es256(k) => {
                let point = k.to_sec1_point(false);
                let coord = |c: Option<&[u8]>| URL_SAFE_NO_PAD.encode(c.unwrap_or_default());
                serde_json::json!({
                    "kty": "EC", "crv": "P-256",
                    "x": coord(point.x().map(|c| c.as_slice())),
                    "y": coord(point.y().map(|c| c.as_slice())),
                })
            }
            Public::EdDsa(k) => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(k.to_bytes()),
            }),
        };
        jwk["alg"] = self.algorithm().as_str().into();
        jwk["use"] = "sig".into();
        if let Some(kid) = &self.kid {
            jwk["kid"] = kid.as_str().into();
        }
        jwk
    }

    fn verify_bytes(&self, input: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier;
        match &self.public {
            Public::Es256(k) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| k.verify(input, &sig).is_ok()),
            Public::EdDsa(k) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| k.verify_strict(input, &sig).is_ok()),
        }
    }
}

/// The RFC 8785 (JCS) canonical form of a JSON value.
///
/// ```
/// let v = serde_json::json!({"b": [1e21, 1e-7, 4.50], "a": "x"});
/// let jcs = abacus::card::sign::canonicalize(&v)?;
/// assert_eq!(jcs, br#"{"a":"x","b":[1e+21,1e-7,4.5]}"#);
/// # Ok::<(), abacus::card::sign::SignError>(())
/// ```
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, SignError> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| SignError::Canonical(e.to_string()))
}

/// The bytes a card signature covers (the JWS payload): the card without
/// `signatures`, its default values removed ([`strip_defaults`]), in RFC 8785
/// canonical form.
///
/// ```
/// let card = serde_json::json!({"skills": [], "name": "a", "signatures": [],
///     "capabilities": {"extensions": [], "streaming": false}});
/// let payload = abacus::card::sign::signing_payload(&card)?;
/// assert_eq!(payload, br#"{"capabilities":{"streaming":false},"name":"a","skills":[]}"#);
/// # Ok::<(), abacus::card::sign::SignError>(())
/// ```
pub fn signing_payload(card: &impl Serialize) -> Result<Vec<u8>, SignError> {
    let mut json = serde_json::to_value(card).map_err(|e| SignError::Canonical(e.to_string()))?;
    let Value::Object(obj) = &mut json else {
        return Err(SignError::NotAnObject);
    };
    obj.remove(SIGNATURES);
    strip_defaults(&mut json);
    canonicalize(&json)
}

/// One signature per key over `card` (any `signatures` it has are not
/// covered); put them in the card's `signatures` to publish it.
pub fn sign(
    card: &impl Serialize,
    keys: &[SigningKey],
) -> Result<Vec<AgentCardSignature>, SignError> {
    let payload = URL_SAFE_NO_PAD.encode(signing_payload(card)?);
    keys.iter()
        .map(|key| {
            let header = ProtectedHeader {
                alg: key.algorithm().as_str(),
                typ: JOSE_TYPE,
                kid: &key.kid,
            };
            let header =
                serde_json::to_vec(&header).map_err(|e| SignError::Canonical(e.to_string()))?;
            let protected = URL_SAFE_NO_PAD.encode(header);
            let signature = key.sign_bytes(format!("{protected}.{payload}").as_bytes());
            Ok(AgentCardSignature {
                protected,
                signature: URL_SAFE_NO_PAD.encode(signature),
                header: None,
            })
        })
        .collect()
}

#[derive(Serialize)]
struct ProtectedHeader<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// Verifies the card's signatures against trusted `keys` and returns the
/// `kid` of the first one that verifies.
///
/// A signature is checked with the keys of its `alg` whose key id is its
/// `kid` (keys without an id, from a PEM, are tried for any `kid`). Its
/// protected header must name `alg` and `kid` and may not carry `crit`.
/// Only the keys given are trusted: an expired or revoked key is one you
/// leave out.
///
/// ```
/// use abacus::card::sign::{sign, verify, SigningKey, VerifyError};
/// # let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
/// let key = SigningKey::from_pem("k1", &pem)?;
/// let mut card = abacus::math::MathAgent::card();
/// card.signatures = Some(sign(&card, &[key.clone()])?);
/// assert_eq!(verify(&card, &[key.verifying_key()])?, "k1");
/// card.skills.pop();
/// assert!(matches!(verify(&card, &[key.verifying_key()]), Err(VerifyError::Rejected(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify(card: &impl Serialize, keys: &[VerifyingKey]) -> Result<String, VerifyError> {
    let json = serde_json::to_value(card).map_err(|e| SignError::Canonical(e.to_string()))?;
    let signatures = match json.get(SIGNATURES) {
        Some(Value::Array(s)) if !s.is_empty() => s,
        _ => return Err(VerifyError::Unsigned),
    };
    if keys.is_empty() {
        return Err(VerifyError::NoKeys);
    }
    let payload = URL_SAFE_NO_PAD.encode(signing_payload(&json)?);
    let mut reasons = Vec::new();
    for (i, sig) in signatures.iter().enumerate() {
        match check(sig, &payload, keys) {
            Ok(kid) => return Ok(kid),
            Err(reason) => reasons.push(format!("signature {}: {reason}", i + 1)),
        }
    }
    Err(VerifyError::Rejected(reasons))
}

/// One signature: its `kid` when a key verifies it, the reason otherwise.
fn check(sig: &Value, payload: &str, keys: &[VerifyingKey]) -> Result<String, String> {
    let text = |name: &str| sig.get(name).and_then(Value::as_str);
    let (Some(protected), Some(signature)) = (text("protected"), text("signature")) else {
        return Err("no `protected` or `signature` string".into());
    };
    let header: Map<String, Value> = URL_SAFE_NO_PAD
        .decode(protected)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or("the protected header is not base64url JSON")?;
    let Some(kid) = header.get("kid").and_then(Value::as_str) else {
        return Err("the protected header has no `kid`".into());
    };
    let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let Some(alg) = Algorithm::from_name(alg_name) else {
        return Err(format!("kid {kid}: algorithm `{alg_name}` not accepted"));
    };
    if header.contains_key("crit") {
        return Err(format!(
            "kid {kid}: critical header parameters not understood"
        ));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| format!("kid {kid}: the signature is not base64url"))?;
    let mut candidates = keys
        .iter()
        .filter(|k| k.algorithm() == alg && k.kid.as_deref().is_none_or(|id| id == kid))
        .peekable();
    if candidates.peek().is_none() {
        return Err(format!("kid {kid} ({alg}): no key given for it"));
    }
    let input = format!("{protected}.{payload}");
    if candidates.any(|k| k.verify_bytes(input.as_bytes(), &signature)) {
        Ok(kid.to_string())
    } else {
        Err(format!("kid {kid} ({alg}): does not match the card"))
    }
}

/// Removes the fields of a card JSON that hold their proto default value
/// (§8.4.1 rule 1): a plain (neither `REQUIRED` nor `optional`) string,
/// bool, number, list or map that is empty, false or zero. `REQUIRED`
/// fields, `optional` ones and set messages stay; fields this schema does
/// not know, and `params` (a free-form `Struct`), are left as they are.
///
/// ```
/// let mut card = serde_json::json!({"description": "", "capabilities": {
///     "extensions": [{"uri": "urn:x", "required": false, "description": ""}],
///     "pushNotifications": false}});
/// abacus::card::sign::strip_defaults(&mut card);
/// assert_eq!(card, serde_json::json!({"description": "", "capabilities": {
///     "extensions": [{"uri": "urn:x"}], "pushNotifications": false}}));
/// ```
pub fn strip_defaults(card: &mut Value) {
    strip(card, schema::CARD);
}

fn strip(value: &mut Value, message: &[(&str, schema::Field)]) {
    use schema::Field;
    let Value::Object(obj) = value else { return };
    for &(name, field) in message {
        let Some(v) = obj.get_mut(name) else { continue };
        let drop = match field {
            Field::Keep => false,
            Field::Plain => is_default(v),
            Field::Message(m) => {
                strip(v, m);
                v.is_null()
            }
            Field::Repeated(m) | Field::RequiredRepeated(m) => {
                if let Value::Array(items) = v {
                    items.iter_mut().for_each(|item| strip(item, m));
                }
                matches!(field, Field::Repeated(_)) && is_default(v)
            }
            Field::Map(m) => {
                if let Value::Object(entries) = v {
                    entries.values_mut().for_each(|entry| strip(entry, m));
                }
                is_default(v)
            }
        };
        if drop {
            obj.remove(name);
        }
    }
}

fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The agent card's messages in a2a.proto (v1.0), by JSON field name.
mod schema {
    /// How a field's default is treated.
    #[derive(Clone, Copy)]
    pub(super) enum Field {
        /// `REQUIRED`, `optional`, or a free-form `Struct`: kept as is.
        Keep,
        /// A plain scalar, list of scalars or map of scalars: dropped when default.
        Plain,
        /// A singular message: kept when set, its own fields stripped.
        Message(&'static [(&'static str, Field)]),
        /// A repeated message: dropped when empty.
        Repeated(&'static [(&'static str, Field)]),
        /// A `REQUIRED` repeated message: kept even when empty.
        RequiredRepeated(&'static [(&'static str, Field)]),
        /// A map of messages: dropped when empty.
        Map(&'static [(&'static str, Field)]),
    }
    use Field::*;

    type Message = [(&'static str, Field)];

    pub(super) static CARD: &Message = &[
        ("name", Keep),
        ("description", Keep),
        ("supportedInterfaces", RequiredRepeated(INTERFACE)),
        (
            "provider",
            Message(&[("url", Keep), ("organization", Keep)]),
        ),
        ("version", Keep),
        ("documentationUrl", Keep),
        ("capabilities", Message(CAPABILITIES)),
        ("securitySchemes", Map(SECURITY_SCHEME)),
        ("securityRequirements", Repeated(SECURITY_REQUIREMENT)),
        ("defaultInputModes", Keep),
        ("defaultOutputModes", Keep),
        ("skills", RequiredRepeated(SKILL)),
        ("iconUrl", Keep),
    ];
    static INTERFACE: &Message = &[
        ("url", Keep),
        ("protocolBinding", Keep),
        ("tenant", Plain),
        ("protocolVersion", Keep),
    ];
    static CAPABILITIES: &Message = &[
        ("streaming", Keep),
        ("pushNotifications", Keep),
        ("extensions", Repeated(EXTENSION)),
        ("extendedAgentCard", Keep),
    ];
    static EXTENSION: &Message = &[
        ("uri", Plain),
        ("description", Plain),
        ("required", Plain),
        ("params", Keep),
    ];
    static SKILL: &Message = &[
        ("id", Keep),
        ("name", Keep),
        ("description", Keep),
        ("tags", Keep),
        ("examples", Plain),
        ("inputModes", Plain),
        ("outputModes", Plain),
        ("securityRequirements", Repeated(SECURITY_REQUIREMENT)),
    ];
    static SECURITY_REQUIREMENT: &Message = &[("schemes", Map(&[("list", Plain)]))];
    static SECURITY_SCHEME: &Message = &[
        (
            "apiKeySecurityScheme",
            Message(&[("description", Plain), ("location", Keep), ("name", Keep)]),
        ),
        (
            "httpAuthSecurityScheme",
            Message(&[
                ("description", Plain),
                ("scheme", Keep),
                ("bearerFormat", Plain),
            ]),
        ),
        (
            "oauth2SecurityScheme",
            Message(&[
                ("description", Plain),
                ("flows", Message(OAUTH_FLOWS)),
                ("oauth2MetadataUrl", Plain),
            ]),
        ),
        (
            "openIdConnectSecurityScheme",
            Message(&[("description", Plain), ("openIdConnectUrl", Keep)]),
        ),
        ("mtlsSecurityScheme", Message(&[("description", Plain)])),
    ];
    static OAUTH_FLOWS: &Message = &[
        (
            "authorizationCode",
            Message(&[
                ("authorizationUrl", Keep),
                ("tokenUrl", Keep),
                ("refreshUrl", Plain),
                ("scopes", Keep),
                ("pkceRequired", Plain),
            ]),
        ),
        (
            "clientCredentials",
            Message(&[("tokenUrl", Keep), ("refreshUrl", Plain), ("scopes", Keep)]),
        ),
        (
            "implicit",
            Message(&[
                ("authorizationUrl", Plain),
                ("refreshUrl", Plain),
                ("scopes", Plain),
            ]),
        ),
        (
            "password",
            Message(&[
                ("tokenUrl", Plain),
                ("refreshUrl", Plain),
                ("scopes", Plain),
            ]),
        ),
        (
            "deviceCode",
            Message(&[
                ("deviceAuthorizationUrl", Keep),
                ("tokenUrl", Keep),
                ("refreshUrl", Plain),
                ("scopes", Keep),
            ]),
        ),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::{CardBuilder, ServedCard};
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    use serde_json::json;

    fn random32() -> [u8; 32] {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("system randomness");
        bytes
    }

    /// A fresh P-256 key as PKCS#8 PEM, the form `openssl genpkey` writes.
    fn es256_pem() -> String {
        loop {
            // A random 32-byte string is a valid scalar but for ~2^-32 of them.
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&random32()) {
                return key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
            }
        }
    }

    fn ed25519_pem() -> String {
        ed25519_dalek::SigningKey::from_bytes(&random32())
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap()
            .to_string()
    }

    fn key(kid: &str, pem: &str) -> SigningKey {
        SigningKey::from_pem(kid, pem).unwrap()
    }

    /// The math agent's card as the server signs and serves it.
    fn served(keys: &[SigningKey]) -> Value {
        let served = ServedCard::new(crate::math::MathAgent::card(), "http://127.0.0.1:8002/")
            .signed(keys)
            .unwrap();
        serde_json::from_slice(served.bytes()).unwrap()
    }

    fn jcs(text: &str) -> String {
        let value: Value = serde_json::from_str(text).unwrap();
        String::from_utf8(canonicalize(&value).unwrap()).unwrap()
    }

    #[test]
    fn rfc8785_sample_object() {
        // RFC 8785 §3.2.2 (input) and §3.2.3 (output).
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        assert_eq!(
            jcs(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn rfc8785_keys_sort_by_utf16_code_units() {
        // RFC 8785 §3.2.3: the emoji (a surrogate pair, 0xD83D...) sorts
        // before U+FB33, though its code point is larger.
        let input = r#"{
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        // U+0080 and U+FB33 written as escapes here; JCS emits them as UTF-8.
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
            \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
            \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(jcs(input), expected);
    }

    #[test]
    fn rfc8785_numbers() {
        // RFC 8785 Appendix B: IEEE 754 bits -> ECMAScript Number.toString.
        let table: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for &(bits, expected) in table {
            let n = serde_json::Number::from_f64(f64::from_bits(bits)).unwrap();
            let out = canonicalize(&Value::Number(n)).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                expected,
                "bits {bits:#018x}"
            );
        }
        // The same from JSON text, as a verifier parses a card.
        for (text, expected) in [
            ("1e21", "1e+21"),
            ("1e-7", "1e-7"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("333333333.33333329", "333333333.3333333"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("0.000001", "0.000001"),
            ("1E30", "1e+30"),
            ("100", "100"),
        ] {
            assert_eq!(jcs(text), expected, "{text}");
        }
    }

    #[test]
    fn spec_default_removal_example() {
        // A2A §8.4.1, "Example of Default Value Removal".
        let card = json!({
            "name": "Example Agent",
            "description": "",
            "capabilities": {"streaming": false, "pushNotifications": false, "extensions": []},
            "skills": []
        });
        assert_eq!(
            String::from_utf8(signing_payload(&card).unwrap()).unwrap(),
            r#"{"capabilities":{"pushNotifications":false,"streaming":false},"description":"","name":"Example Agent","skills":[]}"#
        );
    }

    #[test]
    fn defaults_of_plain_fields_go_required_and_optional_stay() {
        let mut card = json!({
            "supportedInterfaces": [{"url": "u", "protocolBinding": "JSONRPC", "protocolVersion": "1.0", "tenant": ""}],
            "skills": [{"id": "s", "name": "", "description": "", "tags": [], "examples": [], "securityRequirements": []}],
            "securitySchemes": {"k": {"apiKeySecurityScheme": {"location": "header", "name": "X", "description": ""}}},
            "securityRequirements": [{"schemes": {"k": {"list": []}}}],
            "capabilities": {"extensions": [{"uri": "urn:x", "required": false, "params": {"off": false, "empty": ""}}]},
            "defaultInputModes": [],
            "documentationUrl": "",
            "somethingNew": false
        });
        strip_defaults(&mut card);
        assert_eq!(
            card,
            json!({
                "supportedInterfaces": [{"url": "u", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
                "skills": [{"id": "s", "name": "", "description": "", "tags": []}],
                "securitySchemes": {"k": {"apiKeySecurityScheme": {"location": "header", "name": "X"}}},
                "securityRequirements": [{"schemes": {"k": {}}}],
                // params is a free-form Struct: untouched.
                "capabilities": {"extensions": [{"uri": "urn:x", "params": {"off": false, "empty": ""}}]},
                "defaultInputModes": [],
                "documentationUrl": "",
                "somethingNew": false
            })
        );
    }

    #[test]
    fn es256_and_eddsa_round_trip() {
        for (pem, alg) in [(es256_pem(), "ES256"), (ed25519_pem(), "EdDSA")] {
            let k = key("k1", &pem);
            assert_eq!(k.algorithm().as_str(), alg);
            let card = served(std::slice::from_ref(&k));
            assert_eq!(verify(&card, &[k.verifying_key()]).unwrap(), "k1");
            let sig = &card["signatures"][0];
            let header: Value = serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(sig["protected"].as_str().unwrap())
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(header, json!({"alg": alg, "typ": "JOSE", "kid": "k1"}));
            let len = URL_SAFE_NO_PAD
                .decode(sig["signature"].as_str().unwrap())
                .unwrap()
                .len();
            assert_eq!(len, 64, "{alg}: r||s or an Ed25519 signature");
            // The public key from a PEM (no kid) and from a JWKS.
            let pub_pem = match k.verifying_key().public {
                Public::Es256(p) => p.to_public_key_pem(LineEnding::LF).unwrap(),
                Public::EdDsa(p) => p.to_public_key_pem(LineEnding::LF).unwrap(),
            };
            let from_pem = VerifyingKey::parse(&pub_pem).unwrap();
            assert_eq!(from_pem[0].kid(), None);
            assert_eq!(verify(&card, &from_pem).unwrap(), "k1");
            let jwks = json!({"keys": [k.verifying_key().to_jwk()]}).to_string();
            assert_eq!(
                verify(&card, &VerifyingKey::parse(&jwks).unwrap()).unwrap(),
                "k1"
            );
        }
    }

    #[test]
    fn openssl_sec1_p256_keys_sign_too() {
        let pkcs8 = p256::ecdsa::SigningKey::from_pkcs8_pem(&es256_pem()).unwrap();
        let sec1 = p256::SecretKey::from(&pkcs8)
            .to_sec1_pem(LineEnding::LF)
            .unwrap();
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let k = key("ec", &sec1);
        assert_eq!(
            verify(&served(std::slice::from_ref(&k)), &[k.verifying_key()]).unwrap(),
            "ec"
        );
    }

    #[test]
    fn any_change_to_the_card_fails_and_form_does_not() {
        let k = key("k1", &ed25519_pem());
        let trusted = [k.verifying_key()];
        let card = served(&[k]);
        type Change = fn(&mut Value);
        let tampered: [(&str, Change); 6] = [
            ("name", |c| c["name"] = "evil agent".into()),
            ("url", |c| {
                c["supportedInterfaces"][0]["url"] = "http://evil.example/".into()
            }),
            ("a skill", |c| {
                c["skills"][0]["description"] = "steals".into()
            }),
            ("a skill removed", |c| {
                c["skills"].as_array_mut().unwrap().pop();
            }),
            ("a new field", |c| {
                c["iconUrl"] = "http://evil.example/i.png".into()
            }),
            ("a capability", |c| {
                c["capabilities"]["streaming"] = false.into()
            }),
        ];
        for (what, change) in tampered {
            let mut c = card.clone();
            change(&mut c);
            assert!(
                matches!(verify(&c, &trusted), Err(VerifyError::Rejected(_))),
                "changed {what}: still verifies"
            );
        }
        // Keys in reverse order and pretty-printed: the same card.
        fn reversed(v: &Value, depth: usize) -> String {
            let pad = "  ".repeat(depth + 1);
            match v {
                Value::Object(o) => {
                    let items: Vec<String> = o
                        .iter()
                        .rev()
                        .map(|(k, v)| {
                            format!(
                                "\n{pad}{} :  {}",
                                Value::from(k.as_str()),
                                reversed(v, depth + 1)
                            )
                        })
                        .collect();
                    format!("{{{}\n}}", items.join(","))
                }
                Value::Array(a) => {
                    let items: Vec<String> = a.iter().map(|v| reversed(v, depth + 1)).collect();
                    format!("[ {} ]", items.join(" ,\n "))
                }
                other => other.to_string(),
            }
        }
        let text = reversed(&card, 0);
        assert!(text.find("\"version\"") < text.find("\"name\""), "{text}");
        let reread: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(verify(&reread, &trusted).unwrap(), "k1");
        // Defaults written out again (as another serializer might): still the card.
        let mut with_defaults = card.clone();
        with_defaults["capabilities"]["extensions"][0]["required"] = false.into();
        with_defaults["skills"][0]["inputModes"] = json!([]);
        assert_eq!(verify(&with_defaults, &trusted).unwrap(), "k1");
    }

    #[test]
    fn the_served_json_is_the_signed_json() {
        // A verifier that removes no defaults itself canonicalizes the same bytes.
        let k = key("k1", &es256_pem());
        let mut card = served(&[k]);
        card.as_object_mut().unwrap().remove(SIGNATURES);
        assert_eq!(
            canonicalize(&card).unwrap(),
            signing_payload(&card).unwrap()
        );
        assert!(card["capabilities"]["extensions"][0]
            .get("required")
            .is_none());
    }

    #[test]
    fn rotation_two_keys_two_signatures_either_verifies() {
        let old = key("2024", &es256_pem());
        let new = key("2025", &ed25519_pem());
        let card = served(&[old.clone(), new.clone()]);
        assert_eq!(card["signatures"].as_array().unwrap().len(), 2);
        assert_eq!(verify(&card, &[old.verifying_key()]).unwrap(), "2024");
        assert_eq!(verify(&card, &[new.verifying_key()]).unwrap(), "2025");
        // The old key revoked (left out): the new one alone carries the card.
        assert_eq!(
            verify(
                &card,
                &[
                    new.verifying_key(),
                    key("x", &ed25519_pem()).verifying_key()
                ]
            )
            .unwrap(),
            "2025"
        );
    }

    #[test]
    fn wrong_keys_and_bad_headers_fail_with_a_reason() {
        let k = key("k1", &es256_pem());
        let card = served(std::slice::from_ref(&k));
        let other = key("k1", &es256_pem()).verifying_key();
        let Err(VerifyError::Rejected(reasons)) = verify(&card, &[other]) else {
            panic!("another key verified the card");
        };
        assert_eq!(
            reasons,
            ["signature 1: kid k1 (ES256): does not match the card"]
        );
        // The right key under another kid (JWKS): not tried.
        let mut jwk = k.verifying_key().to_jwk();
        jwk["kid"] = "k2".into();
        let err = verify(&card, &[VerifyingKey::from_jwk(&jwk).unwrap()]).unwrap_err();
        assert!(err.to_string().contains("no key given"), "{err}");
        // An Ed25519 key for an ES256 signature: not tried either.
        let err = verify(&card, &[key("k1", &ed25519_pem()).verifying_key()]).unwrap_err();
        assert!(err.to_string().contains("no key given"), "{err}");

        let resign = |header: Value| {
            let mut c = card.clone();
            c["signatures"][0]["protected"] = URL_SAFE_NO_PAD.encode(header.to_string()).into();
            verify(&c, &[k.verifying_key()]).unwrap_err().to_string()
        };
        assert!(resign(json!({"alg": "none", "kid": "k1"})).contains("`none` not accepted"));
        assert!(resign(json!({"alg": "HS256", "kid": "k1"})).contains("not accepted"));
        assert!(resign(json!({"alg": "ES256"})).contains("no `kid`"));
        assert!(resign(json!({"alg": "ES256", "kid": "k1", "crit": ["exp"]})).contains("critical"));
        // The original header but a changed `typ`: the header is signed too.
        assert!(
            resign(json!({"alg": "ES256", "typ": "JWT", "kid": "k1"})).contains("does not match")
        );

        let mut unsigned = card.clone();
        unsigned.as_object_mut().unwrap().remove(SIGNATURES);
        assert!(matches!(
            verify(&unsigned, &[k.verifying_key()]),
            Err(VerifyError::Unsigned)
        ));
        assert!(matches!(verify(&card, &[]), Err(VerifyError::NoKeys)));
    }

    #[test]
    fn key_lists_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, junk) = (
            dir.path().join("a.pem"),
            dir.path().join("b.pem"),
            dir.path().join("junk.pem"),
        );
        std::fs::write(&a, es256_pem()).unwrap();
        std::fs::write(&b, ed25519_pem()).unwrap();
        std::fs::write(
            &junk,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let keys =
            SigningKey::parse_list(&format!("a={}, b={}", a.display(), b.display())).unwrap();
        let got: Vec<_> = keys.iter().map(|k| (k.kid(), k.algorithm())).collect();
        assert_eq!(got, [("a", Algorithm::Es256), ("b", Algorithm::EdDsa)]);
        for bad in [
            format!("a={}", junk.display()),
            format!("a={},a={}", a.display(), b.display()),
            format!("={}", a.display()),
            a.display().to_string(),
            String::new(),
        ] {
            assert!(SigningKey::parse_list(&bad).is_err(), "accepted {bad:?}");
        }
        // A private key is no verification key; Debug shows no key material.
        assert!(VerifyingKey::parse(&es256_pem()).is_err());
        assert_eq!(
            format!("{:?}", keys[1]),
            r#"SigningKey { kid: "b", alg: EdDsa }"#
        );
    }

    #[test]
    fn unsigned_card_is_served_unchanged() {
        let card = CardBuilder::new("a", "b").build();
        let plain = ServedCard::new(card.clone(), "http://x/");
        let same = ServedCard::new(card, "http://x/").signed(&[]).unwrap();
        assert_eq!(plain.bytes(), same.bytes());
        assert_eq!(plain.etag(), same.etag());
    }
}

//! Authentication of the A2A routes: the credentials of `--api-keys` and
//! `--bearer-tokens`, checked by the `auth` layer of `abacus-layers` in
//! front of the edge, and declared in the agent card.
//!
//! When any is configured, every A2A call needs one of them; the agent card
//! and the health routes stay public. A caller sends either kind: an
//! `X-API-Key` header is checked as an API key, an `Authorization: Bearer`
//! header as a token. The principal (the name the credential is listed
//! under) reaches the agent as [`RequestMeta::principal`](crate::protocol::RequestMeta).
//!
//! With `--tls-client-ca`, a client certificate the listener verified is
//! accepted too (its subject CN is the principal), before any header is
//! looked at; without one, the headers decide as above, or, when mutual TLS
//! is the only scheme, the call is answered 401 `WWW-Authenticate: MutualTLS`.

use crate::protocol::types::{
    AgentCard, ApiKeySecurityScheme, HttpAuthSecurityScheme, MutualTlsSecurityScheme,
    SecurityRequirement, SecurityScheme,
};
use crate::protocol::Principal;
use abacus_layers::auth::{
    ApiKeys, Authenticate, BearerTokens, MutualTls, Rejection, RejectionKind,
};
use http::request::Parts;
use std::collections::HashMap;

/// The card's name of the API-key scheme.
pub const API_KEY_SCHEME: &str = "apiKey";
/// The card's name of the bearer-token scheme.
pub const BEARER_SCHEME: &str = "bearer";
/// The card's name of the mutual-TLS scheme (`--tls-client-ca`).
pub const MTLS_SCHEME: &str = "mtls";

/// The configured credentials: API keys, bearer tokens, or both.
///
/// ```
/// use abacus::auth::Credentials;
/// let creds = Credentials::from_config(Some("alice:k1"), None).unwrap().unwrap();
/// assert!(creds.has_api_keys());
/// assert!(Credentials::from_config(None, None).unwrap().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Credentials {
    api_keys: Option<ApiKeys>,
    bearer: Option<BearerTokens>,
    mtls: Option<MutualTls>,
}

impl Credentials {
    /// Reads the `--api-keys` and `--bearer-tokens` values (`@PATH` reads
    /// a file); `None` when neither is set.
    pub fn from_config(
        api_keys: Option<&str>,
        bearer_tokens: Option<&str>,
    ) -> Result<Option<Self>, String> {
        let api_keys = api_keys
            .map(|v| read_list(v).and_then(|l| ApiKeys::parse(&l).map_err(|e| e.to_string())))
            .transpose()
            .map_err(|e| format!("--api-keys: {e}"))?;
        let bearer = bearer_tokens
            .map(|v| read_list(v).and_then(|l| BearerTokens::parse(&l).map_err(|e| e.to_string())))
            .transpose()
            .map_err(|e| format!("--bearer-tokens: {e}"))?;
        Ok(
            (api_keys.is_some() || bearer.is_some()).then_some(Credentials {
                api_keys,
                bearer,
                mtls: None,
            }),
        )
    }

    /// `credentials`, or none, plus a verified TLS client certificate
    /// (mutual TLS) as one more accepted credential.
    ///
    /// ```
    /// use abacus::auth::Credentials;
    /// let creds = Credentials::with_mutual_tls(None);
    /// let mut card = abacus::math::MathAgent::card();
    /// creds.declare(&mut card);
    /// assert!(card.security_schemes.unwrap().contains_key("mtls"));
    /// ```
    pub fn with_mutual_tls(credentials: Option<Self>) -> Self {
        let mut creds = credentials.unwrap_or(Credentials {
            api_keys: None,
            bearer: None,
            mtls: None,
        });
        creds.mtls = Some(MutualTls);
        creds
    }

    /// Whether API keys are accepted.
    pub fn has_api_keys(&self) -> bool {
        self.api_keys.is_some()
    }

    /// Declares the accepted schemes in `card`: `securitySchemes`, and one
    /// `securityRequirements` entry per scheme (any one suffices).
    ///
    /// ```
    /// use abacus::auth::Credentials;
    /// let creds = Credentials::from_config(Some("a:k"), Some("b:t")).unwrap().unwrap();
    /// let mut card = abacus::math::MathAgent::card();
    /// creds.declare(&mut card);
    /// assert_eq!(card.security_schemes.as_ref().map(|s| s.len()), Some(2));
    /// assert_eq!(card.security_requirements.as_ref().map(|r| r.len()), Some(2));
    /// ```
    pub fn declare(&self, card: &mut AgentCard) {
        let mut schemes = HashMap::new();
        let mut requirements: Vec<SecurityRequirement> = Vec::new();
        if self.api_keys.is_some() {
            schemes.insert(
                API_KEY_SCHEME.to_string(),
                SecurityScheme::ApiKey(ApiKeySecurityScheme {
                    location: "header".into(),
                    name: "X-API-Key".into(),
                    description: Some("an API key issued by the operator".into()),
                }),
            );
            requirements.push(HashMap::from([(API_KEY_SCHEME.to_string(), Vec::new())]));
        }
        if self.bearer.is_some() {
            schemes.insert(
                BEARER_SCHEME.to_string(),
                SecurityScheme::HttpAuth(HttpAuthSecurityScheme {
                    scheme: "Bearer".into(),
                    description: Some("a bearer token issued by the operator".into()),
                    bearer_format: None,
                }),
            );
            requirements.push(HashMap::from([(BEARER_SCHEME.to_string(), Vec::new())]));
        }
        if self.mtls.is_some() {
            schemes.insert(
                MTLS_SCHEME.to_string(),
                SecurityScheme::MutualTls(MutualTlsSecurityScheme {
                    description: Some(
                        "a TLS client certificate signed by a CA the operator trusts; \
                         its subject CN is the principal"
                            .into(),
                    ),
                }),
            );
            requirements.push(HashMap::from([(MTLS_SCHEME.to_string(), Vec::new())]));
        }
        card.security_schemes = Some(schemes);
        card.security_requirements = Some(requirements);
    }

    fn challenge(&self) -> &'static str {
        match (self.api_keys.is_some(), self.bearer.is_some()) {
            (true, true) => "ApiKey header=\"x-api-key\", Bearer",
            (true, false) => "ApiKey header=\"x-api-key\"",
            _ => "Bearer",
        }
    }
}

impl Authenticate for Credentials {
    type Principal = Principal;

    fn authenticate(&self, parts: &Parts) -> Result<Principal, Rejection> {
        // A verified client certificate suffices, whatever headers come with it.
        if let Some(mtls) = &self.mtls {
            match mtls.authenticate(parts) {
                Ok(identity) => return Ok(Principal::new(identity.subject)),
                Err(rejection) if self.api_keys.is_none() && self.bearer.is_none() => {
                    return Err(rejection)
                }
                Err(_) => {}
            }
        }
        let headers = &parts.headers;
        let found = match (&self.api_keys, &self.bearer) {
            (Some(keys), _) if headers.contains_key(keys.header_name()) => keys.authenticate(parts),
            (_, Some(tokens)) if headers.contains_key(http::header::AUTHORIZATION) => {
                tokens.authenticate(parts)
            }
            _ => {
                let hint = match (self.api_keys.is_some(), self.bearer.is_some()) {
                    (true, true) => "send X-API-Key: KEY or Authorization: Bearer TOKEN",
                    (true, false) => "send X-API-Key: KEY",
                    _ => "send Authorization: Bearer TOKEN",
                };
                return Err(Rejection::new(
                    RejectionKind::Missing,
                    hint,
                    self.challenge(),
                    "no credential",
                ));
            }
        };
        found.map(|identity| Principal::new(identity.subject))
    }
}

/// The list itself, or the file `@PATH` names.
fn read_list(value: &str) -> Result<String, String> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}")),
        None => Ok(value.to_string()),
    }
}

/// Whether a request may pass without credentials: the agent card and the
/// health routes (probes), nothing of A2A.
pub(crate) fn is_public(parts: &Parts) -> bool {
    matches!(
        parts.uri.path(),
        "/.well-known/agent-card.json" | "/health" | "/health/detailed"
    )
}

//! Authentication of the A2A routes: the credentials of `--api-keys`,
//! `--bearer-tokens` and `--jwt-jwks`, checked by the `auth` layer of
//! `abacus-layers` in front of the edge, and declared in the agent card.
//!
//! When any is configured, every A2A call needs one of them; the agent card
//! and the health routes stay public. A caller sends any kind: an
//! `X-API-Key` header is checked as an API key, an `Authorization: Bearer`
//! header as a token, or as a JWT when it has a JWT's shape and JWTs are
//! accepted. The principal (the name the credential is listed under, a
//! JWT's `sub`) reaches the agent as [`RequestMeta::principal`](crate::protocol::RequestMeta).
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
    ApiKeys, Authenticate, BearerTokens, JwtBearer, MutualTls, Rejection, RejectionKind,
};
use http::request::Parts;
use std::collections::HashMap;

mod jwks;
pub use jwks::JwksRefresh;

/// The card's name of the API-key scheme.
pub const API_KEY_SCHEME: &str = "apiKey";
/// The card's name of the bearer-token scheme.
pub const BEARER_SCHEME: &str = "bearer";
/// The card's name of the mutual-TLS scheme (`--tls-client-ca`).
pub const MTLS_SCHEME: &str = "mtls";
/// The card's name of the JWT scheme.
pub const JWT_SCHEME: &str = "jwt";

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
    jwt: Option<JwtBearer>,
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
                jwt: None,
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
            jwt: None,
            mtls: None,
        });
        creds.mtls = Some(MutualTls);
        creds
    }

    /// Every credential of the server's config, JWTs included: the JWK set
    /// of `--jwt-jwks` is loaded, and kept fresh while the returned
    /// [`JwksRefresh`] lives.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let config = abacus::config::Config { jwt_issuer: Some("https://idp".into()), ..Default::default() };
    /// let e = abacus::auth::Credentials::load(&config).await.unwrap_err();
    /// assert!(e.contains("--jwt-jwks"), "{e}");
    /// # }
    /// ```
    pub async fn load(
        config: &crate::config::Config,
    ) -> Result<(Option<Self>, Option<JwksRefresh>), String> {
        let credentials =
            Self::from_config(config.api_keys.as_deref(), config.bearer_tokens.as_deref())?;
        let Some(value) = config.jwt_jwks.as_deref() else {
            if config.jwt_issuer.is_some() || config.jwt_audience.is_some() {
                return Err("--jwt-issuer and --jwt-audience need --jwt-jwks".into());
            }
            return Ok((credentials, None));
        };
        let (keys, refresh) = jwks::load(value, config.outbound_ca.as_deref())
            .await
            .map_err(|e| format!("--jwt-jwks: {e}"))?;
        let mut jwt = JwtBearer::new(keys);
        if let Some(issuer) = &config.jwt_issuer {
            jwt = jwt.issuer(issuer);
        }
        match &config.jwt_audience {
            Some(audience) => jwt = jwt.audience(audience),
            None => tracing::warn!(
                "--jwt-jwks without --jwt-audience: a JWT issued for any audience is accepted"
            ),
        }
        Ok((Some(Self::with_jwt(credentials, jwt)), Some(refresh)))
    }

    /// `credentials` that also accept JWTs checked by `jwt`, or JWTs alone.
    pub fn with_jwt(credentials: Option<Self>, jwt: JwtBearer) -> Self {
        let mut credentials = credentials.unwrap_or(Credentials {
            api_keys: None,
            bearer: None,
            jwt: None,
            mtls: None,
        });
        credentials.jwt = Some(jwt);
        credentials
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
        if self.jwt.is_some() {
            schemes.insert(
                JWT_SCHEME.to_string(),
                SecurityScheme::HttpAuth(HttpAuthSecurityScheme {
                    scheme: "Bearer".into(),
                    description: Some("a JWT of the operator's identity provider".into()),
                    bearer_format: Some("JWT".into()),
                }),
            );
            requirements.push(HashMap::from([(JWT_SCHEME.to_string(), Vec::new())]));
        }
        card.security_schemes = Some(schemes);
        card.security_requirements = Some(requirements);
    }

    fn challenge(&self) -> &'static str {
        // JWTs are bearer tokens too: one `Bearer` challenge for both.
        let bearer = self.bearer.is_some() || self.jwt.is_some();
        match (self.api_keys.is_some(), bearer) {
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
                Err(rejection)
                    if self.api_keys.is_none() && self.bearer.is_none() && self.jwt.is_none() =>
                {
                    return Err(rejection)
                }
                Err(_) => {}
            }
        }
        let headers = &parts.headers;
        let authorization = headers.contains_key(http::header::AUTHORIZATION);
        // With both, a bearer value shaped like a JWT is one; any other a static token.
        let jwt_shaped = self.jwt.is_some() && JwtBearer::is_jwt(parts);
        let found = match (&self.api_keys, &self.bearer, &self.jwt) {
            (Some(keys), _, _) if headers.contains_key(keys.header_name()) => {
                keys.authenticate(parts)
            }
            (_, Some(tokens), _) if authorization && !jwt_shaped => tokens.authenticate(parts),
            (_, _, Some(jwt)) if authorization => jwt.authenticate(parts),
            _ => {
                let mut kinds = Vec::new();
                if self.api_keys.is_some() {
                    kinds.push("X-API-Key: KEY");
                }
                if self.bearer.is_some() {
                    kinds.push("Authorization: Bearer TOKEN");
                }
                if self.jwt.is_some() {
                    kinds.push("Authorization: Bearer JWT");
                }
                let hint = format!("send {}", kinds.join(" or "));
                return Err(Rejection::new(
                    RejectionKind::Missing,
                    &hint,
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

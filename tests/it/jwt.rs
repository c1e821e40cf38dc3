//! Bearer JWTs with `--jwt-jwks` against the real server over HTTP: keys
//! made at test time, the JWK set in a file (re-read: revocation) or served
//! by a loopback HTTP server (cached, refetched on a new key id).

use crate::common::get;
use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::response::IntoResponse;
use bytes::Bytes;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{get_current_timestamp, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

/// PKCS#8 wrapping of a P-256 private scalar (RFC 5915, no public key).
const P256_PKCS8: &str = "3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420";
/// PKCS#8 wrapping of an Ed25519 seed (RFC 8410).
const ED25519_PKCS8: &str = "302e020100300506032b657004220420";
const HINT: &str = "send Authorization: Bearer <JWT>\n";
const INVALID_TOKEN: &str = "Bearer error=\"invalid_token\"";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A signing key made now, and its public JWK.
struct Signer {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

impl Signer {
    fn new(kid: &str, alg: Algorithm) -> Self {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).unwrap();
        let key = match alg {
            Algorithm::ES256 => {
                // Below 2^255, hence below the group order.
                secret[0] &= 0x7f;
                EncodingKey::from_ec_der(&[unhex(P256_PKCS8), secret.to_vec()].concat())
            }
            _ => EncodingKey::from_ed_der(&[unhex(ED25519_PKCS8), secret.to_vec()].concat()),
        };
        let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        Signer {
            kid: kid.into(),
            alg,
            key,
            jwk: serde_json::to_value(jwk).unwrap(),
        }
    }

    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let header = Header {
            kid: Some(kid.into()),
            ..Header::new(self.alg)
        };
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }
}

fn jwks(signers: &[&Signer]) -> String {
    json!({ "keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

fn now() -> i64 {
    get_current_timestamp() as i64
}

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "abacus";

fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 3600 })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

/// The math agent behind the default stack, with the principal of every
/// call that reaches the stack recorded.
struct Served {
    url: String,
    principals: Arc<Mutex<Vec<Option<String>>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn serve(config_of: impl FnOnce(&mut abacus::config::Config)) -> Served {
    let (listener, mut config) = crate::common::bound_memory_config().await;
    config_of(&mut config);
    let url = format!("http://127.0.0.1:{}/", config.port);
    let principals = Arc::new(Mutex::new(Vec::new()));
    let seen = principals.clone();
    let server = abacus::Server::new(
        abacus::math::MathAgent::new(abacus::math::Limits::default()),
        abacus::math::MathAgent::card(),
    )
    .config(config)
    .stack(move |core, layers| {
        let inner = layers.default_stack(core);
        tower::util::BoxCloneSyncService::new(tower::service_fn(
            move |req: abacus::protocol::A2ARequest| {
                let who = req.meta.principal.subject().map(String::from);
                seen.lock().unwrap().push(who);
                inner.clone().oneshot(req)
            },
        ))
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_on(listener, async move {
        let _ = stopped.await;
    }));
    for _ in 0..100 {
        if get(&format!("{url}health")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Served {
        url,
        principals,
        stop: Some(stop),
        task,
    }
}

impl Served {
    /// A SendMessage of "6 * 7" with `authorization` (if any): the status,
    /// the challenge and the body.
    async fn send(&self, authorization: Option<&str>) -> (u16, Option<String>, Bytes) {
        let auth: Vec<_> = authorization
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        crate::common::send_with_auth(&self.url, &auth).await
    }

    /// The status of a call with `token`, after checking an answered one
    /// is the agent's 42.
    async fn status(&self, token: &str) -> u16 {
        let (status, _, body) = self.send(Some(&format!("Bearer {token}"))).await;
        if status == 200 {
            let reply: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                reply["result"]["message"]["parts"][0]["text"], "42",
                "{reply}"
            );
        }
        status
    }

    /// Checks `token` gets 401 with the invalid-token challenge and a body
    /// that is the hint alone: neither the token nor why it failed.
    async fn refused(&self, token: &str, case: &str) {
        let (status, challenge, body) = self.send(Some(&format!("Bearer {token}"))).await;
        assert_eq!(status, 401, "{case}");
        assert_eq!(challenge.as_deref(), Some(INVALID_TOKEN), "{case}");
        assert_eq!(String::from_utf8_lossy(&body), HINT, "{case}");
    }

    async fn card(&self) -> Value {
        let (status, card) = get(&format!("{}.well-known/agent-card.json", self.url))
            .await
            .unwrap();
        assert_eq!(status, 200);
        serde_json::from_str(&card).unwrap()
    }

    fn principals(&self) -> Vec<Option<String>> {
        self.principals.lock().unwrap().clone()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

fn scheme_names(card: &Value) -> Vec<String> {
    let mut names: Vec<String> = card["securitySchemes"]
        .as_object()
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Polls `status` of `token` for up to 15 s until it is `want`.
async fn until_status(served: &Served, token: &str, want: u16) -> bool {
    for _ in 0..150 {
        if served.status(token).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn jwts_of_the_configured_keys_pass_and_every_other_gets_401() {
    let (es, ed) = (
        Signer::new("k-es", Algorithm::ES256),
        Signer::new("k-ed", Algorithm::EdDSA),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks(&[&es, &ed])).unwrap();
    let path = file.display().to_string();
    let served = serve(|c| {
        c.jwt_jwks = Some(path);
        c.jwt_issuer = Some(ISSUER.into());
        c.jwt_audience = Some(AUDIENCE.into());
    })
    .await;

    // The card declares the one scheme: HTTP Bearer of format JWT.
    let card = served.card().await;
    assert_eq!(scheme_names(&card), ["jwt"]);
    let scheme = &card["securitySchemes"]["jwt"]["httpAuthSecurityScheme"];
    assert_eq!(
        (&scheme["scheme"], &scheme["bearerFormat"]),
        (&json!("Bearer"), &json!("JWT"))
    );
    assert_eq!(
        card["securityRequirements"],
        json!([{ "schemes": { "jwt": { "list": [] } } }]),
        "{card}"
    );

    // Accepted, with the subject reaching the stack as the principal.
    assert_eq!(served.status(&es.sign(&claims("alice"))).await, 200);
    assert_eq!(served.status(&ed.sign(&claims("bob"))).await, 200);
    assert_eq!(
        served.principals(),
        [Some("alice".to_string()), Some("bob".to_string())]
    );

    // Missing and malformed.
    let (status, challenge, body) = served.send(None).await;
    assert_eq!((status, challenge.as_deref()), (401, Some("Bearer")));
    assert_eq!(
        String::from_utf8_lossy(&body),
        "send Authorization: Bearer JWT\n"
    );
    served.refused("not-a-jwt", "malformed").await;
    let (status, challenge, _) = served.send(Some("Basic YTpi")).await;
    assert_eq!((status, challenge.as_deref()), (401, Some("Bearer")));

    // Every way a JWT can be wrong.
    let other = Signer::new("k-es", Algorithm::ES256);
    let b64 = |v: Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "kid": "k-es"})),
        b64(claims("mallory"))
    );
    let hmac = jsonwebtoken::encode(
        &Header {
            kid: Some("k-es".into()),
            ..Header::new(Algorithm::HS256)
        },
        &claims("mallory"),
        &EncodingKey::from_secret(es.jwk.to_string().as_bytes()).unwrap(),
    )
    .unwrap();
    let cases = [
        (
            "expired",
            es.sign(&with(claims("a"), "exp", json!(now() - 3600))),
        ),
        (
            "not yet valid",
            es.sign(&with(claims("a"), "nbf", json!(now() + 3600))),
        ),
        (
            "wrong audience",
            es.sign(&with(claims("a"), "aud", json!("other"))),
        ),
        (
            "wrong issuer",
            es.sign(&with(claims("a"), "iss", json!("https://evil.test"))),
        ),
        ("wrong signature", other.sign(&claims("a"))),
        ("unknown kid", es.sign_as("k-unknown", &claims("a"))),
        ("alg none", unsigned),
        ("HS256", hmac),
    ];
    for (case, token) in &cases {
        served.refused(token, case).await;
    }
    // None of them reached the agent.
    assert_eq!(served.principals().len(), 2);

    // Revocation: k-ed leaves the file; no restart.
    let ed_token = ed.sign(&claims("bob"));
    std::fs::write(&file, jwks(&[&es])).unwrap();
    assert!(
        until_status(&served, &ed_token, 401).await,
        "the revoked key still passes"
    );
    served.refused(&ed_token, "revoked").await;
    assert_eq!(served.status(&es.sign(&claims("alice"))).await, 200);
    served.stop().await;
}

/// A JWK set served over HTTP, its fetches counted.
#[derive(Default)]
struct Idp {
    jwks: Mutex<String>,
    fetches: AtomicUsize,
    down: AtomicBool,
}

async fn jwks_route(State(idp): State<Arc<Idp>>) -> axum::response::Response {
    idp.fetches.fetch_add(1, Ordering::SeqCst);
    if idp.down.load(Ordering::SeqCst) {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let body = idp.jwks.lock().unwrap().clone();
    ([(CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

async fn start_idp(idp: Arc<Idp>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/jwks", axum::routing::get(jwks_route))
        .with_state(idp);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_jwks_url_is_cached_and_fetched_again_for_a_new_key_id() {
    let (k1, k2) = (
        Signer::new("k1", Algorithm::ES256),
        Signer::new("k2", Algorithm::EdDSA),
    );
    let idp = Arc::new(Idp::default());
    *idp.jwks.lock().unwrap() = jwks(&[&k1]);
    let url = start_idp(idp.clone()).await;
    let served = serve(|c| {
        c.jwt_jwks = Some(url);
        c.jwt_audience = Some(AUDIENCE.into());
    })
    .await;
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "fetched at start");

    // Cached: many calls, no fetch.
    for sub in ["a", "b", "c"] {
        assert_eq!(served.status(&k1.sign(&claims(sub))).await, 200);
    }
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        1,
        "served from the cache"
    );

    // Rotation: the IdP publishes k2 and signs with it. The first call
    // asks for a refresh; once it is in, k2 passes. One fetch more.
    *idp.jwks.lock().unwrap() = jwks(&[&k1, &k2]);
    let rotated = k2.sign(&claims("d"));
    assert!(
        until_status(&served, &rotated, 200).await,
        "k2 never passed"
    );
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2, "one refresh for k2");

    // Garbage key ids right after: refused, and no new fetch within the
    // rate limit (30 s), however many come.
    for n in 0..5 {
        served
            .refused(&k1.sign_as(&format!("junk-{n}"), &claims("e")), "junk kid")
            .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        2,
        "junk kids fetched again"
    );
    assert_eq!(served.status(&k1.sign(&claims("f"))).await, 200);
    served.stop().await;
}

#[tokio::test]
async fn an_unreachable_jwks_url_rejects_jwts_until_a_retry_fetches_it() {
    let k1 = Signer::new("k1", Algorithm::ES256);
    let idp = Arc::new(Idp::default());
    *idp.jwks.lock().unwrap() = jwks(&[&k1]);
    idp.down.store(true, Ordering::SeqCst);
    let url = start_idp(idp.clone()).await;
    let served = serve(|c| c.jwt_jwks = Some(url)).await;

    // The server is up (the card answers) but no JWT passes yet.
    assert_eq!(scheme_names(&served.card().await), ["jwt"]);
    let token = k1.sign(&claims("a"));
    served.refused(&token, "no JWK set yet").await;

    idp.down.store(false, Ordering::SeqCst);
    assert!(
        until_status(&served, &token, 200).await,
        "no retry fetched the set"
    );
    assert!(idp.fetches.load(Ordering::SeqCst) >= 2);
    served.stop().await;
}

#[tokio::test]
async fn static_bearer_tokens_and_jwts_are_told_apart_by_shape() {
    let es = Signer::new("k1", Algorithm::ES256);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks(&[&es])).unwrap();
    let path = file.display().to_string();
    let served = serve(|c| {
        c.api_keys = Some("ops:k-ops".into());
        c.bearer_tokens = Some("ci:t0ken".into());
        c.jwt_jwks = Some(path);
    })
    .await;

    let card = served.card().await;
    assert_eq!(scheme_names(&card), ["apiKey", "bearer", "jwt"]);
    assert_eq!(
        card["securityRequirements"].as_array().map(Vec::len),
        Some(3)
    );

    assert_eq!(served.status("t0ken").await, 200);
    assert_eq!(served.status(&es.sign(&claims("alice"))).await, 200);
    assert_eq!(
        served.principals(),
        [Some("ci".to_string()), Some("alice".to_string())]
    );
    // A JWT is never looked up as a static token, nor a token as a JWT.
    let (status, challenge, _) = served.send(Some("Bearer nope")).await;
    assert_eq!((status, challenge.as_deref()), (401, Some(INVALID_TOKEN)));
    served
        .refused(&es.sign_as("k9", &claims("a")), "unknown kid")
        .await;

    let (status, challenge, body) = served.send(None).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (401, Some("ApiKey header=\"x-api-key\", Bearer"))
    );
    assert_eq!(
        String::from_utf8_lossy(&body),
        "send X-API-Key: KEY or Authorization: Bearer TOKEN or Authorization: Bearer JWT\n"
    );
    served.stop().await;
}

#[tokio::test]
async fn bad_jwt_settings_stop_the_server_from_starting() {
    use abacus::auth::Credentials;
    use abacus::config::Config;
    let load = |c: Config| async move { Credentials::load(&c).await.map(|_| ()).unwrap_err() };
    let e = load(Config {
        jwt_jwks: Some("https://idp.example/jwks".into()),
        outbound_ca: Some("/nonexistent/ca.pem".into()),
        ..Default::default()
    })
    .await;
    assert!(e.starts_with("--jwt-jwks: --outbound-ca:"), "{e}");
    let e = load(Config {
        jwt_jwks: Some("/nonexistent/jwks.json".into()),
        ..Default::default()
    })
    .await;
    assert!(e.contains("cannot read"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(
        &file,
        r#"{"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}"#,
    )
    .unwrap();
    let e = load(Config {
        jwt_jwks: Some(file.display().to_string()),
        ..Default::default()
    })
    .await;
    assert!(e.contains("no usable signature key"), "{e}");
    let e = load(Config {
        jwt_audience: Some("abacus".into()),
        ..Default::default()
    })
    .await;
    assert!(e.contains("need --jwt-jwks"), "{e}");
}

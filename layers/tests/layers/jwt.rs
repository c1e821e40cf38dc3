//! `JwtBearer`: tokens signed at test time by keys made at test time.

use std::time::Duration;

use abacus_layers::auth::{
    Authenticate, Identity, Jwks, JwksHandle, JwtBearer, Rejection, RejectionKind,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
use serde_json::{Value, json};

/// PKCS#8 wrapping of a P-256 private scalar (RFC 5915, no public key).
const P256_PKCS8: &str = "3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420";
/// PKCS#8 wrapping of an Ed25519 seed (RFC 8410).
const ED25519_PKCS8: &str = "302e020100300506032b657004220420";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A signing key and its public JWK.
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
            Algorithm::EdDSA => {
                EncodingKey::from_ed_der(&[unhex(ED25519_PKCS8), secret.to_vec()].concat())
            }
            _ => unreachable!("test keys are ES256 or EdDSA"),
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

    /// A token with `claims`, signed by this key under `kid`.
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

fn jwks(signers: &[&Signer]) -> Jwks {
    let doc = json!({ "keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>() });
    Jwks::parse(doc.to_string().as_bytes()).unwrap()
}

fn now() -> i64 {
    get_current_timestamp() as i64
}

/// Valid claims for `sub`, an hour to go.
fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "iss": "https://idp.test", "aud": "abacus", "exp": now() + 3600 })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn check(jwt: &JwtBearer, authorization: Option<&str>) -> Result<Identity, Rejection> {
    let mut req = http::Request::builder();
    if let Some(v) = authorization {
        req = req.header("authorization", v);
    }
    let (parts, ()) = req.body(()).unwrap().into_parts();
    jwt.authenticate(&parts)
}

fn bearer(jwt: &JwtBearer, token: &str) -> Result<Identity, Rejection> {
    check(jwt, Some(&format!("Bearer {token}")))
}

/// The rejection of `token`, after checking it is Invalid, challenges with
/// `invalid_token` and repeats no part of the token.
fn invalid(jwt: &JwtBearer, token: &str) -> String {
    let r = bearer(jwt, token).unwrap_err();
    assert_eq!(r.kind(), RejectionKind::Invalid, "{}", r.reason());
    assert_eq!(r.challenge(), "Bearer error=\"invalid_token\"");
    for segment in token.split('.').filter(|s| s.len() > 8) {
        assert!(!r.reason().contains(segment), "{}", r.reason());
        assert!(!r.hint().contains(segment), "{}", r.hint());
    }
    r.reason().to_string()
}

fn guard(signers: &[&Signer]) -> JwtBearer {
    JwtBearer::new(JwksHandle::new(jwks(signers)))
        .issuer("https://idp.test")
        .audience("abacus")
}

#[test]
fn a_token_of_a_known_key_names_its_subject() {
    let (es, ed) = (
        Signer::new("k-es", Algorithm::ES256),
        Signer::new("k-ed", Algorithm::EdDSA),
    );
    let jwt = guard(&[&es, &ed]);
    for (signer, sub) in [(&es, "alice"), (&ed, "bob")] {
        let who = bearer(&jwt, &signer.sign(&claims(sub))).unwrap();
        assert_eq!((who.subject.as_str(), who.scheme), (sub, "jwt"));
    }
    // `aud` may be an array; the scheme name is case-insensitive.
    let token = es.sign(&with(claims("carol"), "aud", json!(["other", "abacus"])));
    assert_eq!(
        check(&jwt, Some(&format!("bearer {token}")))
            .unwrap()
            .subject,
        "carol"
    );
}

#[test]
fn missing_and_malformed_credentials_are_told_apart() {
    let es = Signer::new("k1", Algorithm::ES256);
    let jwt = guard(&[&es]);
    let r = check(&jwt, None).unwrap_err();
    assert_eq!(
        (r.kind(), r.challenge().to_str().unwrap()),
        (RejectionKind::Missing, "Bearer")
    );
    assert_eq!(r.hint(), "send Authorization: Bearer <JWT>");
    let r = check(&jwt, Some("Basic YTpi")).unwrap_err();
    assert_eq!(r.kind(), RejectionKind::Malformed);
    for token in [
        "opaque-token",
        "a.b",
        "a.b.c.d",
        "a..c",
        "a=.b.c",
        "e30.e30.!!",
    ] {
        let r = bearer(&jwt, token).unwrap_err();
        assert_eq!(r.kind(), RejectionKind::Malformed, "{token}");
        assert_eq!(r.challenge(), "Bearer error=\"invalid_token\"");
    }
    // Three segments, but the header is not JSON.
    let r = bearer(&jwt, "bm90LWpzb24.e30.c2ln").unwrap_err();
    assert_eq!(r.kind(), RejectionKind::Malformed);
    assert_eq!(r.reason(), "unreadable JWT header");
}

#[test]
fn time_claims_are_checked_with_the_leeway() {
    let es = Signer::new("k1", Algorithm::ES256);
    let jwt = guard(&[&es]);
    let expired = es.sign(&with(claims("a"), "exp", json!(now() - 3600)));
    assert_eq!(invalid(&jwt, &expired), "expired");
    let early = es.sign(&with(claims("a"), "nbf", json!(now() + 3600)));
    assert_eq!(invalid(&jwt, &early), "not yet valid");
    // Ten seconds past `exp` is within the default 60 s of clock skew...
    let just_expired = es.sign(&with(claims("a"), "exp", json!(now() - 10)));
    assert!(bearer(&jwt, &just_expired).is_ok());
    // ... not within none.
    let strict = jwt.clone().leeway(Duration::ZERO);
    assert_eq!(invalid(&strict, &just_expired), "expired");
    let mut no_exp = claims("a");
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(invalid(&jwt, &es.sign(&no_exp)), "no exp claim");
}

#[test]
fn issuer_audience_and_subject_are_required() {
    let es = Signer::new("k1", Algorithm::ES256);
    let jwt = guard(&[&es]);
    let wrong_aud = es.sign(&with(claims("a"), "aud", json!("someone-else")));
    assert_eq!(invalid(&jwt, &wrong_aud), "wrong audience");
    let wrong_iss = es.sign(&with(claims("a"), "iss", json!("https://evil.test")));
    assert_eq!(invalid(&jwt, &wrong_iss), "wrong issuer");
    for claim in ["iss", "aud", "sub"] {
        let mut c = claims("a");
        c.as_object_mut().unwrap().remove(claim);
        assert_eq!(invalid(&jwt, &es.sign(&c)), format!("no {claim} claim"));
    }
    assert_eq!(
        invalid(&jwt, &es.sign(&with(claims("a"), "sub", json!("")))),
        "no sub claim"
    );
    // Unconfigured, `iss` and `aud` are not looked at.
    let open = JwtBearer::new(jwt.keys().clone());
    assert_eq!(bearer(&open, &wrong_aud).unwrap().subject, "a");
    assert_eq!(bearer(&open, &wrong_iss).unwrap().subject, "a");
}

#[test]
fn signatures_must_be_of_the_named_key() {
    let (good, other) = (
        Signer::new("k1", Algorithm::ES256),
        Signer::new("k1", Algorithm::ES256),
    );
    let jwt = guard(&[&good]);
    assert_eq!(invalid(&jwt, &other.sign(&claims("a"))), "bad signature");
    // A key embedded in the header is never used.
    let header = Header {
        kid: Some("k1".into()),
        jwk: Some(serde_json::from_value(other.jwk.clone()).unwrap()),
        ..Header::new(Algorithm::ES256)
    };
    let embedded = jsonwebtoken::encode(&header, &claims("a"), &other.key).unwrap();
    assert_eq!(invalid(&jwt, &embedded), "bad signature");
    // A signature cut off or swapped for another token's.
    let token = good.sign(&claims("a"));
    let (body, _) = token.rsplit_once('.').unwrap();
    let foreign = good.sign(&claims("b"));
    let (_, foreign_sig) = foreign.rsplit_once('.').unwrap();
    assert_eq!(
        invalid(&jwt, &format!("{body}.{foreign_sig}")),
        "bad signature"
    );
}

#[test]
fn none_and_hmac_are_never_accepted() {
    let es = Signer::new("k1", Algorithm::ES256);
    let jwt = guard(&[&es]);
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let payload = b64(claims("a"));
    for alg in ["none", "None"] {
        let token = format!("{}.{payload}.", b64(json!({"alg": alg, "kid": "k1"})));
        assert_eq!(
            invalid(&jwt, &token),
            format!("algorithm \"{alg}\" not accepted")
        );
    }
    // HS256 keyed with the public key's JSON: the classic confusion.
    let secret = EncodingKey::from_secret(es.jwk.to_string().as_bytes()).unwrap();
    let hs = jsonwebtoken::encode(
        &Header {
            kid: Some("k1".into()),
            ..Header::new(Algorithm::HS256)
        },
        &claims("a"),
        &secret,
    )
    .unwrap();
    assert_eq!(invalid(&jwt, &hs), "algorithm \"HS256\" not accepted");
    // An EdDSA token for an EC key.
    let ed = Signer::new("k1", Algorithm::EdDSA);
    assert_eq!(
        invalid(&jwt, &ed.sign(&claims("a"))),
        "algorithm EdDSA does not fit key \"k1\""
    );
    let no_alg = format!("{}.{payload}.c2ln", b64(json!({"kid": "k1"})));
    assert_eq!(invalid(&jwt, &no_alg), "no algorithm");
}

#[tokio::test]
async fn an_unknown_key_id_asks_for_a_refresh_and_a_new_set_takes_over() {
    let (k1, k2) = (
        Signer::new("k1", Algorithm::ES256),
        Signer::new("k2", Algorithm::EdDSA),
    );
    let jwt = guard(&[&k1]);
    let handle = jwt.keys().clone();
    let rotated = k2.sign(&claims("a"));
    assert_eq!(invalid(&jwt, &rotated), "unknown key id \"k2\"");
    // The request is remembered for the refresher.
    tokio::time::timeout(Duration::from_secs(5), handle.refresh_requested())
        .await
        .expect("a refresh was requested");
    // No kid at all is not a reason to refresh.
    let no_kid =
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims("a"), &k1.key).unwrap();
    assert_eq!(invalid(&jwt, &no_kid), "no key id");

    // Rotation: k2 in, k1 out, for every clone of the handle.
    handle.set(jwks(&[&k2]));
    assert_eq!(bearer(&jwt, &rotated).unwrap().subject, "a");
    assert_eq!(
        invalid(&jwt, &k1.sign(&claims("a"))),
        "unknown key id \"k1\""
    );
    // A hostile kid is cut short and stripped in the reason.
    let noisy = format!("{}\n\"x", "k".repeat(100));
    let reason = invalid(&jwt, &k1.sign_as(&noisy, &claims("a")));
    assert!(reason.starts_with("unknown key id \"kkkk"), "{reason}");
    assert!(reason.len() < 90 && !reason.contains('\n'), "{reason}");
}

#[test]
fn a_jwk_set_keeps_only_signature_keys_with_ids() {
    let es = Signer::new("k-es", Algorithm::ES256);
    let mut enc = es.jwk.clone();
    enc["kid"] = json!("k-enc");
    enc["use"] = json!("enc");
    let mut no_kid = es.jwk.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    let mut p521 = es.jwk.clone();
    p521["kid"] = json!("k-521");
    p521["crv"] = json!("P-521");
    let mut mislabelled = es.jwk.clone();
    mislabelled["kid"] = json!("k-rs");
    mislabelled["alg"] = json!("RS256");
    let doc = json!({ "keys": [
        es.jwk,
        enc,
        no_kid,
        p521,
        mislabelled,
        { "kty": "oct", "kid": "k-hmac", "k": "c2VjcmV0" },
        { "kty": "OKP", "crv": "X25519", "kid": "k-x", "x": "AAAA" },
        { "kty": "future", "kid": "k-new" },
        "not a key",
    ]});
    let set = Jwks::parse(doc.to_string().as_bytes()).unwrap();
    assert_eq!((set.len(), set.skipped()), (1, 8), "{set:?}");
    assert!(set.contains("k-es"));

    let dup = json!({ "keys": [es.jwk.clone(), es.jwk.clone()] });
    let e = Jwks::parse(dup.to_string().as_bytes()).unwrap_err();
    assert!(e.to_string().contains("given twice"), "{e}");
    for bad in ["", "{}", "{\"keys\": {}}", "[1]"] {
        assert!(Jwks::parse(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn a_jwt_is_told_from_an_opaque_token_by_its_shape() {
    let es = Signer::new("k1", Algorithm::ES256);
    let parts = |v: &str| {
        http::Request::builder()
            .header("authorization", v)
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    assert!(JwtBearer::is_jwt(&parts(&format!(
        "Bearer {}",
        es.sign(&claims("a"))
    ))));
    for not in [
        "Bearer t0ken",
        "Bearer a.b",
        "Basic a.b.c",
        "Bearer a.b.c d",
    ] {
        assert!(!JwtBearer::is_jwt(&parts(not)), "{not}");
    }
    let none = http::Request::new(()).into_parts().0;
    assert!(!JwtBearer::is_jwt(&none));
}

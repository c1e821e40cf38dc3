use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use abacus_layers::auth::{ApiKeys, AuthLayer, BearerTokens, Identity, RejectionKind};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::Full;
use tower::{Layer, Service, ServiceExt, service_fn};

type Body = Full<Bytes>;

/// Echoes the principal the layer put in the extensions ("-" for none).
fn echo() -> impl Service<Request<()>, Response = Response<Body>, Error = Infallible> + Clone {
    service_fn(|req: Request<()>| async move {
        let who = req
            .extensions()
            .get::<Identity>()
            .map_or("-".to_string(), |i| format!("{}/{}", i.subject, i.scheme));
        Ok::<_, Infallible>(Response::new(Body::from(who)))
    })
}

async fn call<S>(
    svc: &S,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String, Option<String>)
where
    S: Service<Request<()>, Response = Response<Body>, Error = Infallible> + Clone,
{
    let mut req = Request::builder().uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = svc.clone().oneshot(req.body(()).unwrap()).await.unwrap();
    let status = resp.status();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap(), challenge)
}

#[tokio::test]
async fn api_keys_admit_known_keys_and_turn_away_the_rest() {
    let keys = ApiKeys::parse("alice:key-a, bob:key-b").unwrap();
    let svc = AuthLayer::new(keys)
        .public(|p| p.uri.path() == "/health")
        .layer(echo());

    assert_eq!(
        call(&svc, "/", &[("x-api-key", "key-b")]).await.1,
        "bob/apiKey"
    );
    let (status, body, challenge) = call(&svc, "/", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("ApiKey header=\"x-api-key\""));
    assert!(body.contains("x-api-key"), "{body}");
    // A wrong key, a prefix of a right one, a longer one: all the same answer.
    for wrong in ["key-c", "key-", "key-a ", "key-aa"] {
        let (status, body, _) = call(&svc, "/", &[("x-api-key", wrong)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong}");
        assert!(
            !body.contains(wrong),
            "the body repeats the credential: {body}"
        );
    }
    // Public routes pass without a principal.
    assert_eq!(
        call(&svc, "/health", &[]).await,
        (StatusCode::OK, "-".into(), None)
    );
}

#[tokio::test]
async fn bearer_tokens_read_the_authorization_header() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let tokens = BearerTokens::parse("ci:t0ken\n# a comment\n\nops:other").unwrap();
    let svc = AuthLayer::new(tokens)
        .on_reject(move |_, r| log.lock().unwrap().push((r.kind(), r.reason().to_string())))
        .layer(echo());

    assert_eq!(
        call(&svc, "/", &[("authorization", "Bearer t0ken")])
            .await
            .1,
        "ci/bearer"
    );
    // The scheme name is case-insensitive.
    assert_eq!(
        call(&svc, "/", &[("authorization", "bearer other")])
            .await
            .1,
        "ops/bearer"
    );

    let (status, _, challenge) = call(&svc, "/", &[]).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("Bearer"))
    );
    let (_, _, challenge) = call(&svc, "/", &[("authorization", "Basic dDBrZW4=")]).await;
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    let (_, body, challenge) = call(&svc, "/", &[("authorization", "Bearer stolen")]).await;
    assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));
    assert!(!body.contains("stolen"));

    let seen = seen.lock().unwrap();
    let kinds: Vec<_> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            RejectionKind::Missing,
            RejectionKind::Malformed,
            RejectionKind::Invalid
        ]
    );
    assert!(
        seen.iter().all(|(_, reason)| !reason.contains("stolen")),
        "{seen:?}"
    );
}

#[test]
fn credential_lists_are_checked_and_never_printed() {
    assert!(ApiKeys::parse("").is_err());
    assert!(ApiKeys::parse("alice").is_err());
    assert!(ApiKeys::parse(":key").is_err());
    let dup = ApiKeys::parse("alice:same, bob:same").unwrap_err();
    assert!(dup.to_string().contains("twice"), "{dup}");
    let keys = ApiKeys::parse("alice:very-secret").unwrap();
    let shown = format!("{keys:?}");
    assert!(
        shown.contains("alice") && !shown.contains("very-secret"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_grpc_request_is_refused_as_grpc_refuses_it() {
    let keys = ApiKeys::parse("alice:key-a").unwrap();
    let svc = AuthLayer::new(keys).layer(echo());
    for ct in [
        "application/grpc",
        "application/grpc+proto",
        "Application/gRPC",
    ] {
        let req = Request::builder()
            .uri("/lf.a2a.v1.A2AService/GetTask")
            .header("content-type", ct)
            .body(())
            .unwrap();
        let resp = svc.clone().oneshot(req).await.unwrap();
        // Trailers-only: HTTP 200, the status in the headers, no body.
        assert_eq!(resp.status(), StatusCode::OK, "{ct}");
        let h = resp.headers();
        assert_eq!(h["content-type"], "application/grpc");
        assert_eq!(h["grpc-status"], "16");
        assert_eq!(h["www-authenticate"], "ApiKey header=\"x-api-key\"");
        let message = h["grpc-message"].to_str().unwrap();
        assert!(
            message.contains("X-API-Key") || message.contains("x-api-key"),
            "{message}"
        );
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(body.is_empty());
    }
    // The right key passes, as over HTTP.
    let req = Request::builder()
        .header("content-type", "application/grpc")
        .header("x-api-key", "key-a")
        .body(())
        .unwrap();
    let resp = svc.clone().oneshot(req).await.unwrap();
    assert!(resp.headers().get("grpc-status").is_none());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "alice/apiKey");
}

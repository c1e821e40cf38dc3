//! Authentication of the A2A routes with `--api-keys` and `--bearer-tokens`:
//! the card declares the schemes, every A2A call needs a credential, the
//! card and health stay public, the principal reaches the agent.

use crate::common::{get, raw_request};
use bytes::Bytes;
use serde_json::Value;

async fn start(
    config_of: impl FnOnce(&mut abacus::config::Config),
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let (url, stop, _) = crate::common::serve_math(config_of, None).await;
    for _ in 0..100 {
        if get(&format!("{url}health")).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (url, stop)
}

use crate::common::send_with_auth as send;

#[tokio::test]
async fn api_keys_and_bearer_tokens_guard_every_a2a_call() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "# CI jobs\nci:t0ken\n\nops:other\n").unwrap();
    let (url, stop) = start(|c| {
        c.api_keys = Some("alice:k-alice, bob:k-bob".into());
        c.bearer_tokens = Some(format!("@{}", tokens.display()));
    })
    .await;

    // The card is public and names exactly the two schemes.
    let (status, card) = get(&format!("{url}.well-known/agent-card.json"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let card: Value = serde_json::from_str(&card).unwrap();
    let schemes = card["securitySchemes"].as_object().unwrap();
    let mut names: Vec<_> = schemes.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["apiKey", "bearer"]);
    assert_eq!(
        card["securitySchemes"]["apiKey"]["apiKeySecurityScheme"]["name"],
        "X-API-Key"
    );
    assert_eq!(
        card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"],
        "Bearer"
    );
    assert_eq!(
        card["securityRequirements"].as_array().map(Vec::len),
        Some(2),
        "{card}"
    );
    assert_eq!(get(&format!("{url}health")).await.unwrap().0, 200);

    // No credential, a wrong one, a malformed one: 401 with a challenge,
    // and a body that never repeats the credential.
    let (status, challenge, _) = send(&url, &[]).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge.as_deref(),
        Some("ApiKey header=\"x-api-key\", Bearer")
    );
    let (status, _, body) = send(&url, &[("x-api-key", "k-mallory")]).await;
    assert_eq!(status, 401);
    assert!(!String::from_utf8_lossy(&body).contains("k-mallory"));
    let (status, challenge, _) = send(&url, &[("authorization", "Bearer nope")]).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (401, Some("Bearer error=\"invalid_token\""))
    );
    assert_eq!(send(&url, &[("authorization", "Basic YTpi")]).await.0, 401);

    // Right credentials of either kind: answered.
    for auth in [("x-api-key", "k-bob"), ("authorization", "Bearer other")] {
        let (status, _, body) = send(&url, &[auth]).await;
        assert_eq!(status, 200, "{auth:?}");
        let reply: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            reply["result"]["message"]["parts"][0]["text"], "42",
            "{reply}"
        );
    }
    let _ = stop.send(());
}

/// One JSON-RPC call with `auth` headers: HTTP status and body.
async fn call(url: &str, method: &str, auth: &[(&str, &str)]) -> (u16, Value) {
    let mut headers = vec![("content-type", "application/json"), ("a2a-version", "1.0")];
    headers.extend_from_slice(auth);
    let body = crate::common::rpc(method, serde_json::json!({}));
    let (status, _, body) = raw_request(url, "POST", Bytes::from(body), &headers).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_extended_card_is_for_authenticated_callers_only() {
    let (url, stop) = start(|c| c.api_keys = Some("alice:k-alice".into())).await;
    let (_, public) = get(&format!("{url}.well-known/agent-card.json"))
        .await
        .unwrap();
    let public: Value = serde_json::from_str(&public).unwrap();
    assert_eq!(
        public["capabilities"]["extendedAgentCard"], true,
        "{public}"
    );
    let skills = |card: &Value| -> Vec<String> {
        card["skills"]
            .as_array()
            .unwrap_or_else(|| panic!("{card}"))
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };

    let (status, reply) = call(&url, "GetExtendedAgentCard", &[("x-api-key", "k-alice")]).await;
    assert_eq!(status, 200);
    let extended = &reply["result"];
    let (public_skills, extended_skills) = (skills(&public), skills(extended));
    for s in &public_skills {
        assert!(
            extended_skills.contains(s),
            "{s} missing from {extended_skills:?}"
        );
    }
    assert!(
        extended_skills.contains(&"equations".to_string()),
        "{extended_skills:?}"
    );
    assert!(
        !public_skills.contains(&"equations".to_string()),
        "{public_skills:?}"
    );
    // The same endpoints, schemes and capabilities as the public card.
    for field in [
        "supportedInterfaces",
        "securitySchemes",
        "securityRequirements",
        "capabilities",
    ] {
        assert_eq!(extended[field], public[field], "{field}");
    }

    let (status, _) = call(&url, "GetExtendedAgentCard", &[]).await;
    assert_eq!(status, 401);
    let (status, _) = call(&url, "GetExtendedAgentCard", &[("x-api-key", "nope")]).await;
    assert_eq!(status, 401);
    let _ = stop.send(());

    // Without authentication the extended card is not offered at all.
    let (url, stop) = start(|_| {}).await;
    let (_, public) = get(&format!("{url}.well-known/agent-card.json"))
        .await
        .unwrap();
    let public: Value = serde_json::from_str(&public).unwrap();
    assert_eq!(
        public["capabilities"]["extendedAgentCard"], false,
        "{public}"
    );
    let (_, reply) = call(&url, "GetExtendedAgentCard", &[]).await;
    assert_eq!(reply["error"]["code"], -32004, "{reply}");
    let _ = stop.send(());
}

#[tokio::test]
async fn without_credentials_configured_nothing_is_guarded() {
    let (url, stop) = start(|_| {}).await;
    let (_, card) = get(&format!("{url}.well-known/agent-card.json"))
        .await
        .unwrap();
    let card: Value = serde_json::from_str(&card).unwrap();
    assert!(card.get("securitySchemes").is_none(), "{card}");
    assert_eq!(send(&url, &[]).await.0, 200);
    let _ = stop.send(());
}

#[test]
fn bad_credential_lists_stop_the_server_from_starting() {
    let e = abacus::auth::Credentials::from_config(Some("alice"), None).unwrap_err();
    assert!(e.starts_with("--api-keys:"), "{e}");
    let e = abacus::auth::Credentials::from_config(None, Some("@/nonexistent/tokens")).unwrap_err();
    assert!(e.contains("cannot read"), "{e}");
}

#[tokio::test]
async fn the_admin_listener_takes_metrics_and_readiness_off_the_api_port() {
    let admin = format!("127.0.0.1:{}", crate::common::free_port());
    let admin_addr = admin.parse().unwrap();
    let (url, stop) = start(|c| {
        c.api_keys = Some("alice:k-alice".into());
        c.admin_addr = Some(admin_addr);
        // Readiness here is about where it is served, not this host's disk.
        c.health_disk_max = 0.0;
    })
    .await;
    let admin = format!("http://{admin}/");
    let prometheus = abacus::telemetry::prometheus().is_some();

    // On the admin listener: liveness, readiness and metrics, no credential.
    assert_eq!(get(&format!("{admin}health")).await.unwrap().0, 200);
    let (status, report) = get(&format!("{admin}health/detailed")).await.unwrap();
    assert_eq!(status, 200, "{report}");
    assert!(report.contains("\"checks\""), "{report}");
    if prometheus {
        let (status, scrape) = get(&format!("{admin}metrics")).await.unwrap();
        assert_eq!(status, 200);
        assert!(scrape.contains("# TYPE"), "{scrape}");
    }
    // Nothing of A2A there.
    let (status, _, _) = send(&admin, &[("x-api-key", "k-alice")]).await;
    assert_eq!(status, 404);

    // On the API port: liveness and the card stay public; readiness is
    // gone, metrics are not served (and need a credential to learn that).
    assert_eq!(get(&format!("{url}health")).await.unwrap().0, 200);
    assert_eq!(
        get(&format!("{url}.well-known/agent-card.json"))
            .await
            .unwrap()
            .0,
        200
    );
    assert_eq!(get(&format!("{url}health/detailed")).await.unwrap().0, 404);
    assert_eq!(get(&format!("{url}metrics")).await.unwrap().0, 401);
    let (status, _, _) = raw_request(
        &format!("{url}metrics"),
        "GET",
        Bytes::new(),
        &[("x-api-key", "k-alice")],
    )
    .await;
    assert_eq!(status, 404);
    let _ = stop.send(());
}

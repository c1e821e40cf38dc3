//! Authentication of the A2A routes with `--api-keys` and `--bearer-tokens`:
//! the card declares the schemes, every A2A call needs a credential, the
//! card and health stay public, the principal reaches the agent.

use crate::common::{get, raw_request, send_body};
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

async fn send(url: &str, auth: &[(&str, &str)]) -> (u16, Option<String>, Bytes) {
    let mut headers = vec![("content-type", "application/json"), ("a2a-version", "1.0")];
    headers.extend_from_slice(auth);
    let (status, head, body) = raw_request(
        url,
        "POST",
        Bytes::from(send_body("SendMessage", "6 * 7")),
        &headers,
    )
    .await;
    let challenge = head
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (status, challenge, body)
}

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

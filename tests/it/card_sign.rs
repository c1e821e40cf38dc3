//! The signed agent card (`--card-signing-key`): a server with two keys
//! serves a card with two signatures, each verifiable over HTTP with its
//! public key alone, in our code and with `abacus card --verify-key`.

use crate::common::{abacus, get, serve_math};
use abacus::card::sign::{verify, VerifyError, VerifyingKey};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn random32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("system randomness");
    bytes
}

/// Writes a fresh key pair as `NAME.pem` (PKCS#8) and `NAME.pub` (SPKI).
fn write_pair(dir: &Path, name: &str, ed25519: bool) -> (PathBuf, PathBuf) {
    let (private, public) = if ed25519 {
        let key = ed25519_dalek::SigningKey::from_bytes(&random32());
        (
            key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            key.verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        )
    } else {
        let key = loop {
            if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&random32()) {
                break k;
            }
        };
        (
            key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            key.verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        )
    };
    let (sk, pk) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.pub")),
    );
    std::fs::write(&sk, private).unwrap();
    std::fs::write(&pk, public).unwrap();
    (sk, pk)
}

async fn card_text(url: &str) -> String {
    for _ in 0..100 {
        if let Ok((200, body)) = get(&format!("{url}.well-known/agent-card.json")).await {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no agent card at {url}");
}

/// `abacus card --json --url URL --verify-key KEYS`: (success, stdout, stderr).
async fn cli_verify(url: &str, keys: String) -> (bool, String, String) {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let out = abacus()
            .args(["card", "--json", "--url", &url, "--verify-key", &keys])
            .output()
            .expect("run abacus");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_card_signed_with_two_keys_verifies_with_each_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let (es_key, es_pub) = write_pair(dir.path(), "es", false);
    let (ed_key, ed_pub) = write_pair(dir.path(), "ed", true);
    let (_, stranger_pub) = write_pair(dir.path(), "stranger", true);
    let spec = format!("es-2024={}, ed-2025={}", es_key.display(), ed_key.display());
    let (url, stop, _) = serve_math(
        |c| {
            c.card_signing_key = Some(spec);
            // The schemes are declared before the card is signed: covered too.
            c.api_keys = Some("alice:k-alice".into());
        },
        None,
    )
    .await;

    let text = card_text(&url).await;
    let card: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(card["signatures"].as_array().unwrap().len(), 2);
    assert!(card["securitySchemes"]["apiKey"].is_object());
    assert_eq!(card["supportedInterfaces"][0]["url"], url.as_str());

    let es = VerifyingKey::from_file(&es_pub).unwrap();
    let ed = VerifyingKey::from_file(&ed_pub).unwrap();
    assert_eq!(verify(&card, &es).unwrap(), "es-2024");
    assert_eq!(verify(&card, &ed).unwrap(), "ed-2025");
    // The typed card of a client round-trips to the same signed content.
    let typed: abacus::protocol::types::AgentCard = serde_json::from_str(&text).unwrap();
    assert_eq!(verify(&typed, &ed).unwrap(), "ed-2025");
    let stranger = VerifyingKey::from_file(&stranger_pub).unwrap();
    assert!(matches!(
        verify(&card, &stranger),
        Err(VerifyError::Rejected(_))
    ));
    let mut moved = card.clone();
    moved["supportedInterfaces"][0]["url"] = "http://127.0.0.1:1/".into();
    assert!(verify(&moved, &[es[0].clone(), ed[0].clone()]).is_err());

    // The CLI: each key alone, both comma-separated, a JWKS, a stranger.
    let (ok, stdout, stderr) = cli_verify(&url, es_pub.display().to_string()).await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("verified (kid es-2024)"), "{stderr}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed, card);
    let (ok, _, stderr) = cli_verify(&url, ed_pub.display().to_string()).await;
    assert!(ok && stderr.contains("kid ed-2025"), "{stderr}");
    let jwks = dir.path().join("jwks.json");
    let jwk = ed[0].clone().to_jwk();
    std::fs::write(&jwks, serde_json::json!({"keys": [jwk]}).to_string()).unwrap();
    let (ok, _, stderr) = cli_verify(
        &url,
        format!("{},{}", stranger_pub.display(), jwks.display()),
    )
    .await;
    assert!(ok && stderr.contains("kid ed-2025"), "{stderr}");
    let (ok, stdout, stderr) = cli_verify(&url, stranger_pub.display().to_string()).await;
    assert!(!ok, "a stranger's key verified the card");
    assert!(
        stdout.is_empty(),
        "an unverified card is not printed: {stdout}"
    );
    assert!(
        stderr.contains("not verified") && stderr.contains("kid es-2024"),
        "{stderr}"
    );
    let _ = stop.send(());
}

#[tokio::test]
async fn a_bad_signing_key_stops_the_server_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public) = write_pair(dir.path(), "k", true);
    // A public key where a private one belongs.
    let spec = format!("k1={}", public.display());
    let (_, _stop, handle) = serve_math(|c| c.card_signing_key = Some(spec), None).await;
    let err = handle.await.unwrap().unwrap_err().to_string();
    assert!(
        err.contains("--card-signing-key") && err.contains("k1"),
        "{err}"
    );
}

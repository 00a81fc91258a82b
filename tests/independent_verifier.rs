//! An independent backend verifies Tessera's ID tokens: a Python script using PyJWT's
//! `PyJWKClient` with the discovery document's `jwks_uri`, applying the "auth_time within
//! five minutes" rule of a sensitive operation.
//!
//! The interpreter is `TESSERA_PYTHON` (a virtualenv with `tests/python/requirements.txt`,
//! which `.ci/run` creates), else `python3`. When PyJWT is not installed the test says so
//! and passes, unless `TESSERA_REQUIRE_PYJWT=1` (set by `.ci/run`), which makes it fail.

mod common;

use std::process::Command;

use common::{Browser, PASSWORD, TestServer, authorize_url, exchange};

const REDIRECT: &str = "https://rp.example.com/cb";

fn python() -> Option<String> {
    let python = std::env::var("TESSERA_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_pyjwt = Command::new(&python)
        .args(["-c", "import jwt, cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    if has_pyjwt {
        return Some(python);
    }
    assert!(
        std::env::var("TESSERA_REQUIRE_PYJWT").as_deref() != Ok("1"),
        "PyJWT is required here but {python} cannot import it"
    );
    eprintln!("PyJWT not installed for {python}: skipping (CI sets TESSERA_REQUIRE_PYJWT=1)");
    None
}

fn verify(
    python: &str,
    issuer: &str,
    client_id: &str,
    token: &str,
    max_age: &str,
) -> (i32, serde_json::Value) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/verify_id_token.py"
    );
    let out = Command::new(python)
        .args([script, issuer, client_id, token, max_age])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdict = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "verifier printed {stdout} / {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), verdict)
}

#[tokio::test(flavor = "multi_thread")]
async fn pyjwt_verifies_id_tokens_through_discovery_and_jwks() {
    let Some(python) = python() else { return };
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("py@example.com").await;
    let browser = Browser::new(&server.url);
    let (url, verifier) = authorize_url(&server, &client_id, REDIRECT, &[]);
    let q = browser
        .authorize(&url, "py@example.com", PASSWORD)
        .await
        .params();
    let (_, tokens) = exchange(
        &server,
        &client_id,
        secret.as_deref(),
        &q["code"],
        REDIRECT,
        &verifier,
    )
    .await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let issuer = server.issuer();

    let (code, verdict) = tokio::task::spawn_blocking({
        let (p, i, c, t) = (
            python.clone(),
            issuer.clone(),
            client_id.clone(),
            id_token.clone(),
        );
        move || verify(&p, &i, &c, &t, "300")
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{verdict}");
    assert_eq!(verdict["verified"], true);
    assert_eq!(verdict["fresh"], true);
    assert_eq!(verdict["can_reauthenticate"], true);
    assert_eq!(
        verdict["kid"],
        server.app().keys.current().active.kid.as_str()
    );

    // The same token against a zero-second window: verified, but too old for the operation.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (code, verdict) = tokio::task::spawn_blocking({
        let (p, i, c, t) = (
            python.clone(),
            issuer.clone(),
            client_id.clone(),
            id_token.clone(),
        );
        move || verify(&p, &i, &c, &t, "0")
    })
    .await
    .unwrap();
    assert_eq!(
        (code, verdict["verified"].as_bool()),
        (1, Some(true)),
        "{verdict}"
    );

    // Another audience and a tampered token are refused.
    let (code, _) = tokio::task::spawn_blocking({
        let (p, i, t) = (python.clone(), issuer.clone(), id_token.clone());
        move || verify(&p, &i, "someone-else", &t, "300")
    })
    .await
    .unwrap();
    assert_eq!(code, 2);
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    parts[1] = tessera::security::b64url(br#"{"sub":"mallory"}"#);
    let forged = parts.join(".");
    let (code, _) =
        tokio::task::spawn_blocking(move || verify(&python, &issuer, &client_id, &forged, "300"))
            .await
            .unwrap();
    assert_eq!(code, 2);
}

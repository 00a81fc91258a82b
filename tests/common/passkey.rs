//! Passkey helpers shared by the suites: a server whose issuer is a hostname (WebAuthn needs
//! one as RP ID) and the ceremonies driven with webauthn-authenticator-rs's `SoftPasskey`.

use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

use super::{Browser, Landing, TestServer, hidden};

pub const REDIRECT: &str = "https://rp.example.com/cb";

/// A server whose issuer is `http://localhost:PORT`: WebAuthn needs a hostname as RP ID.
pub async fn server() -> TestServer {
    TestServer::start_with(|c| c.issuer = c.issuer.replace("127.0.0.1", "localhost")).await
}

pub fn origin(server: &TestServer) -> url::Url {
    url::Url::parse(&server.issuer()).unwrap()
}

pub fn data_attr(page: &str, name: &str) -> String {
    let marker = format!("{name}=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

pub async fn post_json(browser: &Browser, path: &str, body: Value) -> (u16, Value) {
    let r = browser
        .http
        .post(format!("{}{path}", browser.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Starts an authorization request in `browser` and returns the sign-in page.
pub async fn sign_in_page(
    server: &TestServer,
    browser: &Browser,
    client_id: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let (url, verifier) = super::authorize_url(server, client_id, REDIRECT, extra);
    let url = url.replace(&server.url, &server.issuer());
    match browser.follow(&url).await {
        Landing::Page(200, page) => (page, verifier),
        Landing::Page(s, p) => panic!("sign-in page expected, got {s}: {p}"),
        Landing::Client(q) => panic!("sign-in page expected, got a redirect {q:?}"),
    }
}

/// Registers a passkey for the user signed in to `browser`, from the page that carries the
/// account CSRF token (`data-csrf` of `#passkey-register`).
pub async fn register(
    browser: &Browser,
    page: &str,
    soft: &mut SoftPasskey,
    origin: url::Url,
    name: &str,
) -> Value {
    let csrf = data_attr(page, "data-csrf");
    let (status, started) = post_json(
        browser,
        "/account/passkeys/options",
        json!({ "csrf": csrf }),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let selection = &started["options"]["publicKey"]["authenticatorSelection"];
    assert_eq!(
        selection["residentKey"], "preferred",
        "new passkeys are discoverable when possible"
    );
    assert!(
        selection.get("authenticatorAttachment").is_none(),
        "no attachment restriction (hybrid works)"
    );
    let credential = soft
        .do_registration(origin, options)
        .expect("soft authenticator registers");
    let (status, done) = post_json(
        browser,
        "/account/passkeys/finish",
        json!({ "csrf": csrf, "ceremony": started["ceremony"], "credential": credential, "name": name }),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    done
}

/// Runs a username-first passkey sign-in on a sign-in page; returns the finish answer.
pub async fn passkey_sign_in(
    browser: &Browser,
    page: &str,
    email: &str,
    soft: &mut SoftPasskey,
    origin: url::Url,
) -> (u16, Value, Value) {
    let request = hidden(page, "request");
    let csrf = hidden(page, "csrf");
    let (status, started) = post_json(
        browser,
        "/login/passkey/options",
        json!({ "request": request, "csrf": csrf, "email": email }),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let options: RequestChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let credential = soft
        .do_authentication(origin, options)
        .expect("soft authenticator signs");
    let credential = serde_json::to_value(&credential).unwrap();
    let (status, done) = post_json(
        browser,
        "/login/passkey/finish",
        json!({ "request": request, "csrf": csrf, "ceremony": started["ceremony"], "credential": credential }),
    )
    .await;
    (
        status,
        done,
        json!({ "request": request, "csrf": csrf, "ceremony": started["ceremony"], "credential": credential }),
    )
}

pub async fn code_after(browser: &Browser, redirect: &str) -> String {
    browser.follow(redirect).await.params()["code"].clone()
}

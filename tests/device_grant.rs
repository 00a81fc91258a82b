//! The OAuth 2.0 Device Authorization Grant (RFC 8628): the device authorization endpoint,
//! polling the token endpoint (`authorization_pending`, `slow_down`, `access_denied`,
//! `expired_token`, `invalid_grant`), and the `/device` verification page (sign-in redirect,
//! code entry and its limit, confirmation, CSRF).

mod common;

use common::{Browser, TestServer, claims_of, header_of, hidden, plain_client, sign_in};
use serde_json::Value;

const REDIRECT: &str = "https://rp.example.com/cb";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const ALPHABET: &str = "BCDFGHJKLMNPQRSTVWXZ";

/// POST /device_authorization with a form; returns (status, Cache-Control, body).
async fn device_authorization(server: &TestServer, form: &[(&str, &str)]) -> (u16, String, Value) {
    let response = plain_client()
        .post(format!("{}/device_authorization", server.url))
        .form(form)
        .send()
        .await
        .expect("device authorization request");
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, cache, response.json().await.unwrap_or(Value::Null))
}

/// A device authorization that must succeed; returns its body.
async fn start(server: &TestServer, client_id: &str, secret: Option<&str>, scope: &str) -> Value {
    let mut form = vec![("client_id", client_id), ("scope", scope)];
    if let Some(s) = secret {
        form.push(("client_secret", s));
    }
    let (status, _, body) = device_authorization(server, &form).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn poll(
    server: &TestServer,
    client_id: &str,
    secret: Option<&str>,
    device_code: &str,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", DEVICE_GRANT),
        ("device_code", device_code),
        ("client_id", client_id),
    ];
    if let Some(s) = secret {
        form.push(("client_secret", s));
    }
    common::token_request(server, &form).await
}

fn error_of(answer: &(u16, Value)) -> (u16, Option<&str>) {
    (answer.0, answer.1["error"].as_str())
}

/// GET a path in the browser; returns (status, Location, body).
async fn get(browser: &Browser, path: &str) -> (u16, String, String) {
    let response = browser
        .http
        .get(format!("{}{path}", browser.base))
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, location, response.text().await.unwrap())
}

/// POST the `/device` form; returns (status, Retry-After, body).
async fn post_device(browser: &Browser, form: &[(&str, &str)]) -> (u16, String, String) {
    let response = browser
        .http
        .post(format!("{}/device", browser.base))
        .form(form)
        .send()
        .await
        .expect("POST /device");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, retry_after, response.text().await.unwrap())
}

/// The CSRF token of the signed-in browser's `/device` page.
async fn device_csrf(browser: &Browser) -> String {
    let (status, _, page) = get(browser, "/device").await;
    assert_eq!(status, 200, "{page}");
    hidden(&page, "csrf")
}

/// Enters `typed` and then answers `decision` on the confirmation page.
async fn decide(browser: &Browser, typed: &str, decision: &str) -> (u16, String) {
    let csrf = device_csrf(browser).await;
    let (status, _, page) =
        post_device(browser, &[("csrf", csrf.as_str()), ("user_code", typed)]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"device-decision\""), "{page}");
    let shown = hidden(&page, "user_code");
    let (status, _, page) = post_device(
        browser,
        &[
            ("csrf", csrf.as_str()),
            ("user_code", shown.as_str()),
            ("decision", decision),
        ],
    )
    .await;
    (status, page)
}

/// A confidential client, a user, and a browser signed in as that user (through the ordinary
/// code flow); returns (client_id, secret, user sub, browser, the sign-in's ID token claims).
async fn setup(server: &TestServer, email: &str) -> (String, String, String, Browser, Value) {
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let secret = secret.expect("confidential client");
    let sub = server.user(email).await;
    let (browser, tokens) = sign_in(server, &client_id, Some(secret.as_str()), email).await;
    let session_claims = claims_of(tokens["id_token"].as_str().unwrap());
    (client_id, secret, sub, browser, session_claims)
}

fn wrong_code_unlike(real: &str) -> String {
    let mut code = "BCDF-GHJK".to_owned();
    if code == real {
        code = "ZXWV-TSRQ".to_owned();
    }
    code
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_is_approved_in_the_browser_and_receives_tokens_once() {
    let server = TestServer::start().await;
    let (client_id, secret, sub, browser, session) = setup(&server, "tv@example.com").await;
    let issuer = server.issuer();

    // Discovery advertises the endpoint and the grant type.
    let discovery: Value = server
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["device_authorization_endpoint"],
        format!("{issuer}/device_authorization")
    );
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == DEVICE_GRANT)
    );

    // §3.2: the device authorization response.
    let (status, cache, started) = device_authorization(
        &server,
        &[
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("scope", "openid profile offline_access unknown_scope"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(cache, "no-store");
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    assert!(device_code.len() >= 43, "high-entropy device code");
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(&user_code[4..5], "-");
    assert!(
        user_code
            .chars()
            .filter(|c| *c != '-')
            .all(|c| ALPHABET.contains(c)),
        "{user_code}"
    );
    assert_eq!(started["verification_uri"], format!("{issuer}/device"));
    assert_eq!(
        started["verification_uri_complete"],
        format!("{issuer}/device?user_code={user_code}")
    );
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);

    // Nobody has approved yet.
    let answer = poll(&server, &client_id, Some(secret.as_str()), &device_code).await;
    assert_eq!(error_of(&answer), (400, Some("authorization_pending")));

    // A browser without a session is sent to sign in, and back to the code afterwards.
    let (status, location, _) = get(
        &Browser::new(&server.url),
        &format!("/device?user_code={user_code}"),
    )
    .await;
    assert_eq!(status, 303);
    let next = format!("/device?user_code={user_code}");
    let expected: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", &next)
        .finish();
    assert_eq!(location, format!("/account/login?{expected}"));

    // The complete URI only prefills the code: nothing is approved by opening it.
    let (status, _, page) = get(&browser, &format!("/device?user_code={user_code}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"device-form\""), "{page}");
    assert!(page.contains(&format!("value=\"{user_code}\"")), "{page}");
    assert!(!page.contains("device-approve"));

    // The confirmation names the application and the access, and warns.
    let csrf = hidden(&page, "csrf");
    let (status, _, page) = post_device(
        &browser,
        &[("csrf", csrf.as_str()), ("user_code", user_code.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Test app"), "{page}");
    assert!(page.contains("See your name and profile"), "{page}");
    assert!(
        page.contains("Stay signed in when you are not using it"),
        "{page}"
    );
    assert!(
        page.contains("Only continue if you started this on a device in front of you"),
        "{page}"
    );
    assert!(page.contains(&user_code), "{page}");
    assert!(page.contains("id=\"device-approve\"") && page.contains("id=\"device-deny\""));
    let (status, page) = {
        let (s, _, p) = post_device(
            &browser,
            &[
                ("csrf", csrf.as_str()),
                ("user_code", user_code.as_str()),
                ("decision", "approve"),
            ],
        )
        .await;
        (s, p)
    };
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Device connected"), "{page}");

    // §3.5: the device now gets tokens, like a code redemption, from the approving session.
    let (status, tokens) = poll(&server, &client_id, Some(secret.as_str()), &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["access_token"].is_string());
    assert!(
        tokens["refresh_token"].is_string(),
        "offline_access granted"
    );
    assert_eq!(tokens["scope"], "openid profile offline_access");
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(header_of(id_token)["alg"], "RS256");
    let claims = claims_of(id_token);
    assert_eq!(claims["iss"], issuer);
    assert_eq!(claims["aud"], client_id);
    assert_eq!(claims["sub"], sub);
    assert_eq!(claims["auth_time"], session["auth_time"]);
    assert_eq!(claims["amr"], session["amr"]);
    assert_eq!(claims["acr"], session["acr"]);
    assert_eq!(claims["sid"], session["sid"]);
    assert!(claims.get("nonce").is_none());
    assert!(claims["exp"].as_i64().unwrap() > tessera::store::now());
    let userinfo = plain_client()
        .get(format!("{}/userinfo", server.url))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status().as_u16(), 200);
    let refreshed = common::refresh(
        &server,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(refreshed.0, 200, "{}", refreshed.1);

    // The device code is consumed: a second redemption is refused.
    let again = poll(&server, &client_id, Some(secret.as_str()), &device_code).await;
    assert_eq!(error_of(&again), (400, Some("invalid_grant")));
    // And the user code cannot be used again either.
    let (status, _, page) = post_device(
        &browser,
        &[("csrf", csrf.as_str()), ("user_code", user_code.as_str())],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("already been used"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_faster_than_the_interval_is_slowed_down_and_the_interval_raised() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let secret = secret.unwrap();
    let started = start(&server, &client_id, Some(secret.as_str()), "openid").await;
    let device_code = started["device_code"].as_str().unwrap();
    let stored_interval = || async {
        tessera::store::device_authorizations::find(
            &server.app().store,
            &tessera::security::digest(device_code),
        )
        .await
        .unwrap()
        .unwrap()
        .interval_secs
    };

    let first = poll(&server, &client_id, Some(secret.as_str()), device_code).await;
    assert_eq!(error_of(&first), (400, Some("authorization_pending")));
    assert_eq!(stored_interval().await, 5);
    let second = poll(&server, &client_id, Some(secret.as_str()), device_code).await;
    assert_eq!(error_of(&second), (400, Some("slow_down")));
    assert_eq!(stored_interval().await, 10, "raised by 5 s and persisted");
    let third = poll(&server, &client_id, Some(secret.as_str()), device_code).await;
    assert_eq!(error_of(&third), (400, Some("slow_down")));
    assert_eq!(stored_interval().await, 15, "for all subsequent requests");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_request_answers_access_denied_to_a_public_client() {
    let server = TestServer::start().await;
    let (_, _, _, browser, _) = setup(&server, "deny@example.com").await;
    let (public_id, _) = server.client(true, REDIRECT).await;
    let started = start(&server, &public_id, None, "openid email").await;
    let device_code = started["device_code"].as_str().unwrap();
    let user_code = started["user_code"].as_str().unwrap();

    let (status, page) = decide(&browser, user_code, "deny").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Request denied"), "{page}");
    let answer = poll(&server, &public_id, None, device_code).await;
    assert_eq!(error_of(&answer), (400, Some("access_denied")));
    let again = poll(&server, &public_id, None, device_code).await;
    assert_eq!(error_of(&again), (400, Some("access_denied")));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_device_code_answers_expired_token_and_its_user_code_a_plain_page() {
    let server = TestServer::start_with(|c| c.tokens.device_code_ttl_secs = 1).await;
    let (client_id, secret, _, browser, _) = setup(&server, "late@example.com").await;
    let started = start(&server, &client_id, Some(secret.as_str()), "openid").await;
    assert_eq!(started["expires_in"], 1);
    let device_code = started["device_code"].as_str().unwrap();
    let user_code = started["user_code"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let answer = poll(&server, &client_id, Some(secret.as_str()), device_code).await;
    assert_eq!(error_of(&answer), (400, Some("expired_token")));
    let csrf = device_csrf(&browser).await;
    let (status, _, page) = post_device(
        &browser,
        &[("csrf", csrf.as_str()), ("user_code", user_code)],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Code expired"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_clients_or_an_unknown_device_code_is_invalid_grant() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let (other_id, other_secret) = server.client(false, REDIRECT).await;
    let (secret, other_secret) = (secret.unwrap(), other_secret.unwrap());
    let started = start(&server, &client_id, Some(secret.as_str()), "openid").await;
    let device_code = started["device_code"].as_str().unwrap();

    let stolen = poll(&server, &other_id, Some(other_secret.as_str()), device_code).await;
    assert_eq!(error_of(&stolen), (400, Some("invalid_grant")));
    // The other client's attempt changed nothing, not even the rightful device's pace.
    let own = poll(&server, &client_id, Some(secret.as_str()), device_code).await;
    assert_eq!(error_of(&own), (400, Some("authorization_pending")));
    let unknown = poll(
        &server,
        &client_id,
        Some(secret.as_str()),
        "not-a-device-code",
    )
    .await;
    assert_eq!(error_of(&unknown), (400, Some("invalid_grant")));
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_codes_are_normalized_and_wrong_ones_limited_per_session() {
    let server = TestServer::start().await;
    let (client_id, secret, _, browser, _) = setup(&server, "typist@example.com").await;
    let started = start(&server, &client_id, Some(secret.as_str()), "openid").await;
    let user_code = started["user_code"].as_str().unwrap();

    // Lower case, no dash, stray spaces: the same code.
    let sloppy = format!(" {} ", user_code.to_lowercase().replace('-', ""));
    let csrf = device_csrf(&browser).await;
    let (status, _, page) = post_device(
        &browser,
        &[("csrf", csrf.as_str()), ("user_code", sloppy.as_str())],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("id=\"device-user-code\">{user_code}<")),
        "{page}"
    );
    // Where the device asked from, with the same verdict as the QR approval page.
    assert!(page.contains("id=\"device-ip\">127.0.0.1<"), "{page}");
    assert!(page.contains("same network"), "{page}");

    // Five wrong entries are each refused with the form again…
    let wrong = wrong_code_unlike(user_code);
    for typed in [
        wrong.as_str(),
        "nonsense",
        "BCDF",
        wrong.as_str(),
        "AEIOUAEI",
    ] {
        let (status, _, page) =
            post_device(&browser, &[("csrf", csrf.as_str()), ("user_code", typed)]).await;
        assert_eq!(status, 400, "{page}");
        assert!(page.contains("id=\"device-error\""), "{page}");
    }
    // …then even the right code is refused for this session, with a clear page.
    let (status, retry_after, page) = post_device(
        &browser,
        &[("csrf", csrf.as_str()), ("user_code", user_code)],
    )
    .await;
    assert_eq!(status, 429, "{page}");
    assert!(retry_after.parse::<i64>().unwrap() > 0);
    assert!(page.contains("Too many"), "{page}");

    // Another signed-in session is not affected.
    server.user("other@example.com").await;
    let (other_browser, _) = sign_in(
        &server,
        &client_id,
        Some(secret.as_str()),
        "other@example.com",
    )
    .await;
    let other_csrf = device_csrf(&other_browser).await;
    let (status, _, page) = post_device(
        &other_browser,
        &[("csrf", other_csrf.as_str()), ("user_code", user_code)],
    )
    .await;
    assert_eq!(status, 200, "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_verification_form_refuses_a_missing_or_foreign_csrf_token() {
    let server = TestServer::start().await;
    let (client_id, secret, _, browser, _) = setup(&server, "csrf@example.com").await;
    let started = start(&server, &client_id, Some(secret.as_str()), "openid").await;
    let device_code = started["device_code"].as_str().unwrap();
    let user_code = started["user_code"].as_str().unwrap();

    let (status, _, _) = post_device(
        &browser,
        &[("user_code", user_code), ("decision", "approve")],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = post_device(
        &browser,
        &[
            ("csrf", "forged"),
            ("user_code", user_code),
            ("decision", "approve"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    // Nothing was approved.
    let answer = poll(&server, &client_id, Some(secret.as_str()), device_code).await;
    assert_eq!(error_of(&answer), (400, Some("authorization_pending")));
    // Without a session, a form post is sent to sign in, not processed.
    let (status, _, _) = post_device(
        &Browser::new(&server.url),
        &[("user_code", user_code), ("decision", "approve")],
    )
    .await;
    assert_eq!(status, 303);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_device_requests_get_the_errors_the_specs_name() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let secret = secret.unwrap();
    let c = client_id.as_str();
    let s = secret.as_str();

    let cases: Vec<(Vec<(&str, &str)>, u16, &str)> = vec![
        (
            vec![("client_id", c), ("client_secret", s)],
            400,
            "invalid_scope",
        ),
        (
            vec![("client_id", c), ("client_secret", s), ("scope", "profile")],
            400,
            "invalid_scope",
        ),
        (vec![("scope", "openid")], 401, "invalid_client"),
        (
            vec![
                ("client_id", c),
                ("client_secret", "wrong"),
                ("scope", "openid"),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![("client_id", "nobody"), ("scope", "openid")],
            401,
            "invalid_client",
        ),
    ];
    for (form, status, error) in cases {
        let (got, _, body) = device_authorization(&server, &form).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{form:?}"
        );
    }
    // Not a form, or a parameter twice.
    let response = plain_client()
        .post(format!("{}/device_authorization", server.url))
        .json(&serde_json::json!({"client_id": c}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let response = plain_client()
        .post(format!("{}/device_authorization", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id={c}&client_secret={s}&scope=openid&scope=email"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);

    // The token endpoint: no device code, or one with a NUL or of hostile size.
    let missing = common::token_request(
        &server,
        &[
            ("grant_type", DEVICE_GRANT),
            ("client_id", c),
            ("client_secret", s),
        ],
    )
    .await;
    assert_eq!(error_of(&missing), (400, Some("invalid_request")));
    let nul = poll(&server, c, Some(s), "abc\0def").await;
    assert_eq!(error_of(&nul), (400, Some("invalid_grant")));
    let huge = "x".repeat(9000);
    let oversized = poll(&server, c, Some(s), &huge).await;
    assert_eq!(error_of(&oversized), (400, Some("invalid_request")));

    // The verification page with hostile query strings never fails.
    let (_, _, _, browser, _) = setup(&server, "hostile@example.com").await;
    for query in [
        "user_code=%00%00",
        "user_code=%FF%FE",
        "user_code=<script>alert(1)</script>",
        "user_code=a&user_code=b",
    ] {
        let (status, _, page) = get(&browser, &format!("/device?{query}")).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert!(!page.contains("<script>alert"), "escaped");
    }
    let csrf = device_csrf(&browser).await;
    let (status, _, _) = post_device(
        &browser,
        &[
            ("csrf", csrf.as_str()),
            ("user_code", "\u{0}\u{1}é"),
            ("decision", "maybe"),
        ],
    )
    .await;
    assert_eq!(status, 400);
}

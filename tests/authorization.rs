//! The authorization endpoint's rules: redirect URI handling, PKCE requirements, `prompt`,
//! `max_age`, `id_token_hint`, response modes, and the sign-in page's own rules.

mod common;

use common::{Browser, Landing, PASSWORD, TestServer, authorize_url, claims_of, exchange, sign_in};

const REDIRECT: &str = "https://rp.example.com/cb";

#[tokio::test(flavor = "multi_thread")]
async fn unregistered_or_missing_redirect_uri_shows_a_page_and_never_redirects() {
    let server = TestServer::start().await;
    let (client_id, _) = server.client(false, REDIRECT).await;
    let browser = Browser::new(&server.url);
    for bad in [
        "https://evil.example.com/cb",
        "https://rp.example.com/cb/",
        "https://rp.example.com/cb?x=1",
        "https://rp.example.com@evil.example.com/cb",
        "HTTPS://RP.EXAMPLE.COM/cb",
    ] {
        let (url, _) = authorize_url(&server, &client_id, bad, &[]);
        let response = browser.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        assert!(
            response.headers().get("location").is_none(),
            "{bad} must not redirect"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains("not registered"), "{body}");
        assert!(
            !body.contains("evil.example.com"),
            "attacker URI must not be reflected"
        );
    }
    // Unknown client: a page too.
    let (url, _) = authorize_url(&server, "no-such-client", REDIRECT, &[]);
    let response = browser.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    // Missing redirect_uri.
    let response = browser
        .http
        .get(format!(
            "{}/authorize?response_type=code&scope=openid&client_id={client_id}",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_after_a_valid_redirect_uri_go_back_with_state_and_iss() {
    let server = TestServer::start().await;
    let (client_id, _) = server.client(false, REDIRECT).await;
    let (public_id, _) = server.client(true, REDIRECT).await;
    let browser = Browser::new(&server.url);
    let base = format!(
        "{}/authorize?client_id={client_id}&redirect_uri={REDIRECT}&state=s1",
        server.url
    );
    let cases = [
        (format!("{base}&scope=openid"), "invalid_request"), // no response_type
        (
            format!("{base}&scope=openid&response_type=token"),
            "unsupported_response_type",
        ),
        (
            format!("{base}&scope=profile&response_type=code"),
            "invalid_scope",
        ),
        (
            format!("{base}&scope=openid&response_type=code&prompt=none%20login"),
            "invalid_request",
        ),
        (
            format!("{base}&scope=openid&response_type=code&max_age=-1"),
            "invalid_request",
        ),
        (
            format!(
                "{base}&scope=openid&response_type=code&code_challenge=abc&code_challenge_method=plain"
            ),
            "invalid_request",
        ),
        (
            format!("{base}&scope=openid&response_type=code&scope=openid"),
            "invalid_request",
        ), // duplicate
        (
            format!("{base}&scope=openid&response_type=code&request=eyJhbGciOiJub25lIn0.e30."),
            "request_not_supported",
        ),
        (
            format!("{base}&scope=openid&response_type=code&id_token_hint=not.a.jwt"),
            "invalid_request",
        ),
        (
            format!(
                "{}/authorize?client_id={public_id}&redirect_uri={REDIRECT}&state=s1&scope=openid&response_type=code",
                server.url
            ),
            "invalid_request", // public client without PKCE
        ),
    ];
    for (url, expected) in cases {
        let response = browser.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 303, "{url}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(REDIRECT), "{location}");
        let q = common::query_of(&location);
        assert_eq!(q["error"], expected, "{url}");
        assert_eq!(q["state"], "s1");
        assert_eq!(q["iss"], server.issuer());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prompt_none_without_and_with_a_session() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("bob@example.com").await;
    let browser = Browser::new(&server.url);
    let (url, _) = authorize_url(&server, &client_id, REDIRECT, &[("prompt", "none")]);
    let q = browser.follow(&url).await.params();
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "st-123");

    let (browser, _) = sign_in(&server, &client_id, secret.as_deref(), "bob@example.com").await;
    let (url, verifier) = authorize_url(&server, &client_id, REDIRECT, &[("prompt", "none")]);
    let q = browser.follow(&url).await.params();
    let (status, body) = exchange(
        &server,
        &client_id,
        secret.as_deref(),
        &q["code"],
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn prompt_login_reprompts_and_advances_auth_time_while_sso_does_not() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("carol@example.com").await;
    let (browser, first) =
        sign_in(&server, &client_id, secret.as_deref(), "carol@example.com").await;
    let first = claims_of(first["id_token"].as_str().unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // SSO: no page, same auth_time, same sid.
    let (url, verifier) = authorize_url(&server, &client_id, REDIRECT, &[]);
    let q = browser.follow(&url).await.params();
    let (_, sso) = exchange(
        &server,
        &client_id,
        secret.as_deref(),
        &q["code"],
        REDIRECT,
        &verifier,
    )
    .await;
    let sso = claims_of(sso["id_token"].as_str().unwrap());
    assert_eq!(sso["auth_time"], first["auth_time"]);
    assert_eq!(sso["sid"], first["sid"]);

    // prompt=login shows the sign-in page despite the live session, prefilled for this user.
    let (url, verifier) = authorize_url(&server, &client_id, REDIRECT, &[("prompt", "login")]);
    let Landing::Page(200, page) = browser.follow(&url).await else {
        panic!("expected the sign-in page")
    };
    assert!(page.contains("Confirm it"), "reauthentication wording");
    assert!(page.contains("carol@example.com"), "email prefilled");
    let q = browser
        .submit_login(&page, "carol@example.com", PASSWORD)
        .await
        .params();
    let (_, fresh) = exchange(
        &server,
        &client_id,
        secret.as_deref(),
        &q["code"],
        REDIRECT,
        &verifier,
    )
    .await;
    let fresh = claims_of(fresh["id_token"].as_str().unwrap());
    assert!(fresh["auth_time"].as_i64() > first["auth_time"].as_i64());
    assert_eq!(fresh["sid"], first["sid"], "same browser session, same sid");

    // max_age=0 behaves like prompt=login.
    let (url, _) = authorize_url(&server, &client_id, REDIRECT, &[("max_age", "0")]);
    assert!(
        matches!(browser.follow(&url).await, Landing::Page(200, p) if p.contains("login-form"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_age_reprompts_only_when_exceeded() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("dan@example.com").await;
    let (browser, _) = sign_in(&server, &client_id, secret.as_deref(), "dan@example.com").await;
    let (url, _) = authorize_url(&server, &client_id, REDIRECT, &[("max_age", "10000")]);
    assert!(matches!(browser.follow(&url).await, Landing::Client(q) if q.contains_key("code")));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (url, _) = authorize_url(&server, &client_id, REDIRECT, &[("max_age", "1")]);
    assert!(
        matches!(browser.follow(&url).await, Landing::Page(200, p) if p.contains("login-form"))
    );
    // With prompt=none an exceeded max_age is login_required.
    let (url, _) = authorize_url(
        &server,
        &client_id,
        REDIRECT,
        &[("max_age", "1"), ("prompt", "none")],
    );
    assert_eq!(
        browser.follow(&url).await.params()["error"],
        "login_required"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn id_token_hint_must_match_the_signed_in_user() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("erin@example.com").await;
    server.user("frank@example.com").await;
    let (_, erin_tokens) =
        sign_in(&server, &client_id, secret.as_deref(), "erin@example.com").await;
    let erin_hint = erin_tokens["id_token"].as_str().unwrap().to_owned();
    let (frank_browser, _) =
        sign_in(&server, &client_id, secret.as_deref(), "frank@example.com").await;

    // Frank's browser, Erin's hint, prompt=none: login_required.
    let (url, _) = authorize_url(
        &server,
        &client_id,
        REDIRECT,
        &[("prompt", "none"), ("id_token_hint", &erin_hint)],
    );
    assert_eq!(
        frank_browser.follow(&url).await.params()["error"],
        "login_required"
    );

    // Without prompt=none: asked to sign in as Erin; signing in as Frank is refused.
    let (url, _) = authorize_url(
        &server,
        &client_id,
        REDIRECT,
        &[("id_token_hint", &erin_hint)],
    );
    let Landing::Page(200, page) = frank_browser.follow(&url).await else {
        panic!("sign-in page expected")
    };
    assert!(page.contains("erin@example.com") && page.contains("readonly"));
    match frank_browser
        .submit_login(&page, "frank@example.com", PASSWORD)
        .await
    {
        Landing::Page(403, body) => assert!(body.contains("different account")),
        _ => panic!("switching accounts during reauthentication must be refused"),
    }
    // A hint naming the signed-in user continues silently.
    let (_, frank_tokens) =
        sign_in(&server, &client_id, secret.as_deref(), "frank@example.com").await;
    let frank_hint = frank_tokens["id_token"].as_str().unwrap();
    let (url, _) = authorize_url(
        &server,
        &client_id,
        REDIRECT,
        &[("prompt", "none"), ("id_token_hint", frank_hint)],
    );
    assert!(
        frank_browser
            .follow(&url)
            .await
            .params()
            .contains_key("code")
    );
    // A hint signed by someone else is refused.
    let forged = format!(
        "{}.{}.AAAA",
        erin_hint.split('.').next().unwrap(),
        erin_hint.split('.').nth(1).unwrap()
    );
    let (url, _) = authorize_url(&server, &client_id, REDIRECT, &[("id_token_hint", &forged)]);
    assert_eq!(
        frank_browser.follow(&url).await.params()["error"],
        "invalid_request"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn form_post_response_mode_renders_a_self_submitting_form() {
    let server = TestServer::start().await;
    let (client_id, _) = server.client(false, REDIRECT).await;
    server.user("gina@example.com").await;
    let browser = Browser::new(&server.url);
    let (url, _) = authorize_url(
        &server,
        &client_id,
        REDIRECT,
        &[
            ("response_mode", "form_post"),
            ("state", "<script>x</script>"),
        ],
    );
    let Landing::Page(200, page) = browser.follow(&url).await else {
        panic!()
    };
    let request = common::hidden(&page, "request");
    let csrf = common::hidden(&page, "csrf");
    let response = browser
        .http
        .post(format!("{}/login", server.url))
        .form(&[
            ("request", request.as_str()),
            ("csrf", csrf.as_str()),
            ("email", "gina@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let resume = response.headers()["location"].to_str().unwrap().to_owned();
    let response = browser
        .http
        .get(format!("{}{resume}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"));
    let body = response.text().await.unwrap();
    assert!(body.contains(&format!("action=\"{REDIRECT}\"")));
    assert!(body.contains("name=\"code\""));
    assert!(body.contains("name=\"iss\""));
    assert!(body.contains("src=\"/static/form_post.js\""));
    assert!(
        !body.contains("<script>x</script>"),
        "state must be escaped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_errors_are_generic_and_rate_limited() {
    let server = TestServer::start().await;
    let (client_id, _) = server.client(false, REDIRECT).await;
    server.user("hank@example.com").await;
    let browser = Browser::new(&server.url);
    let (url, _) = authorize_url(&server, &client_id, REDIRECT, &[]);
    let Landing::Page(200, page) = browser.follow(&url).await else {
        panic!()
    };
    let unknown = browser
        .submit_login(&page, "nobody@example.com", "whatever-password")
        .await;
    let wrong = browser
        .submit_login(&page, "hank@example.com", "wrong-password")
        .await;
    let (Landing::Page(s1, b1), Landing::Page(s2, b2)) = (unknown, wrong) else {
        panic!()
    };
    assert_eq!((s1, s2), (401, 401));
    let msg = "The email or password is incorrect.";
    assert!(b1.contains(msg) && b2.contains(msg), "one generic message");
    for _ in 0..4 {
        browser
            .submit_login(&page, "hank@example.com", "wrong-password")
            .await;
    }
    // Five failures for the account: even the right password is now refused for a while.
    match browser
        .submit_login(&page, "hank@example.com", PASSWORD)
        .await
    {
        Landing::Page(429, body) => assert!(body.contains("Too many failed attempts")),
        _ => panic!("expected 429"),
    }
    // A bad CSRF token is refused.
    let request = common::hidden(&page, "request");
    let response = browser
        .http
        .post(format!("{}/login", server.url))
        .form(&[
            ("request", request.as_str()),
            ("csrf", "forged"),
            ("email", "hank@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Another browser cannot use this browser's pending request.
    let other = Browser::new(&server.url);
    let response = other
        .http
        .get(format!("{}/login?request={request}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_and_select_account_prompts() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("ivy@example.com").await;
    let (browser, _) = sign_in(&server, &client_id, secret.as_deref(), "ivy@example.com").await;

    let (url, _) = authorize_url(&server, &client_id, REDIRECT, &[("prompt", "consent")]);
    let Landing::Page(200, page) = browser.follow(&url).await else {
        panic!("consent page")
    };
    assert!(page.contains("Allow"));
    let form = [
        ("request", common::hidden(&page, "request")),
        ("csrf", common::hidden(&page, "csrf")),
        ("decision", "deny".into()),
    ];
    let response = browser
        .http
        .post(format!("{}/consent", server.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    let q = common::query_of(response.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "access_denied");

    let (url, _) = authorize_url(
        &server,
        &client_id,
        REDIRECT,
        &[("prompt", "select_account")],
    );
    let Landing::Page(200, page) = browser.follow(&url).await else {
        panic!("account chooser")
    };
    assert!(page.contains("Continue as ivy@example.com"));
    let form = [
        ("request", common::hidden(&page, "request")),
        ("csrf", common::hidden(&page, "csrf")),
        ("choice", "current".into()),
    ];
    let response = browser
        .http
        .post(format!("{}/select-account", server.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    let resume = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(browser.follow(&resume).await.params().contains_key("code"));
}

#[tokio::test(flavor = "multi_thread")]
async fn native_app_loopback_redirect_accepts_any_port() {
    let server = TestServer::start().await;
    let (client_id, _) = server.client(true, "http://127.0.0.1/callback").await;
    server.user("jo@example.com").await;
    let browser = Browser::new(&server.url);
    let (url, verifier) =
        authorize_url(&server, &client_id, "http://127.0.0.1:53682/callback", &[]);
    let q = browser
        .authorize(&url, "jo@example.com", PASSWORD)
        .await
        .params();
    let (status, body) = exchange(
        &server,
        &client_id,
        None,
        &q["code"],
        "http://127.0.0.1:53682/callback",
        &verifier,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

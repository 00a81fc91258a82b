//! Sign-up end to end (README "Sign-up"): the modes (closed, invite, open with a domain list),
//! the address verified by a code read from a real SMTP server process (aiosmtpd) before any
//! account exists, the first credential (a password, a passkey only with the software
//! authenticator, or email codes only), the try limit and throttles, the same answer for a
//! taken address (whose owner is mailed instead), and hostile input at every new endpoint.

mod common;

use common::otp::{REDIRECT, SmtpSink, code_in, outbox_code, post_form, set_methods, sign_in_page};
use common::passkey::{data_attr, post_json};
use common::{Browser, Landing, TestServer, claims_of, exchange, hidden};
use serde_json::json;
use tessera::authn::methods::SignupMode;
use tessera::config::{EmailTransport, SmtpTls};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::CreationChallengeResponse;

/// A server mailing through `smtp`, with a hostname issuer (WebAuthn needs one).
async fn server_with(smtp: &SmtpSink) -> TestServer {
    let port = smtp.port;
    TestServer::start_with(|c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
        c.email.transport = EmailTransport::Smtp;
        c.email.smtp_host = "127.0.0.1".into();
        c.email.smtp_port = port;
        c.email.smtp_tls = SmtpTls::None;
        c.email.from = "Tessera <no-reply@tessera.test>".into();
    })
    .await
}

async fn open_signup(server: &TestServer, domains: &[&str]) {
    let org = server.app().default_org.id.clone();
    set_methods(server, &org, |c| {
        c.signup.mode = SignupMode::Open;
        c.signup.allowed_domains = domains.iter().map(|d| d.to_string()).collect();
    })
    .await;
}

/// Opens the sign-in page of a new authorization request, follows "Create an account".
async fn signup_page(server: &TestServer, browser: &Browser, client_id: &str) -> (String, String) {
    let (url, verifier) = common::authorize_url(server, client_id, REDIRECT, &[]);
    let url = url.replace(&server.url, &server.issuer());
    let login = match browser.follow(&url).await {
        Landing::Page(200, page) => page,
        other => panic!(
            "sign-in page expected, got {:?}",
            matches!(other, Landing::Client(_))
        ),
    };
    assert!(login.contains("id=\"signup-link\""), "{login}");
    let page = browser
        .text(&format!("/signup?request={}", hidden(&login, "request")))
        .await;
    assert!(page.contains("id=\"signup-email-form\""), "{page}");
    (page, verifier)
}

async fn start(browser: &Browser, page: &str, email: &str) -> (u16, String) {
    let (request, csrf) = (hidden(page, "request"), hidden(page, "csrf"));
    post_form(
        browser,
        "/signup",
        &[("request", &request), ("csrf", &csrf), ("email", email)],
    )
    .await
}

async fn verify(browser: &Browser, page: &str, code: &str) -> (u16, String) {
    let fields = ["request", "csrf", "signup", "email"].map(|f| (f, hidden(page, f)));
    let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.push(("code", code));
    post_form(browser, "/signup/verify", &form).await
}

fn body_of(message: &str) -> &str {
    message.split("\r\n\r\n").nth(1).unwrap_or(message)
}

fn other_than(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

async fn id_token(
    server: &TestServer,
    browser: &Browser,
    client_id: &str,
    secret: Option<&str>,
    location: &str,
    verifier: &str,
) -> serde_json::Value {
    let location = location.replace(&server.issuer(), &server.url);
    let q = browser.follow(&location).await.params();
    let (status, tokens) =
        exchange(server, client_id, secret, &q["code"], REDIRECT, verifier).await;
    assert_eq!(status, 200, "{tokens}");
    claims_of(tokens["id_token"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn open_signup_verifies_the_address_by_smtp_before_the_account_exists() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let server = server_with(&smtp).await;
    open_signup(&server, &["@Example.com"]).await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let browser = Browser::new(&server.issuer());
    let (page, verifier) = signup_page(&server, &browser, &client_id).await;

    // A domain outside the list is said plainly (it tells nothing about accounts).
    let (status, refused) = start(&browser, &page, "eve@evil.example").await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused.contains("example.com"), "{refused}");
    let (status, refused) = start(&browser, &page, "not an address").await;
    assert_eq!(status, 400, "{refused}");

    let (status, code_page) = start(&browser, &page, " Ada@Example.com ").await;
    assert_eq!(status, 200, "{code_page}");
    assert!(code_page.contains("Check your email"), "{code_page}");
    let message = smtp.message_to("ada@example.com").await;
    assert!(
        message.contains("Subject: Your code to create an account"),
        "{message}"
    );
    let code = code_in(body_of(&message));

    let (status, retry) = verify(&browser, &code_page, other_than(&code)).await;
    assert_eq!(status, 401, "{retry}");
    assert!(retry.contains("4 tries left"), "{retry}");
    let app = server.app();
    let org = app.default_org.id.clone();
    let (status, location) = verify(&browser, &retry, &code).await;
    assert_eq!(status, 303, "{location}");
    // Verified, but no account until a credential is chosen.
    assert!(
        tessera::store::users::find_by_email(&app.store, &org, "ada@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let choose = browser.text(&location).await;
    assert!(choose.contains("id=\"signup-password-form\""), "{choose}");
    assert!(choose.contains("id=\"signup-passkey\""), "{choose}");
    assert!(
        !choose.contains("signup-email-only-form"),
        "email codes are off: {choose}"
    );

    let fields = ["request", "csrf", "signup"].map(|f| (f, hidden(&choose, f)));
    let with = |password: &'static str| {
        let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form.push(("password", password));
        form
    };
    let (status, short) = post_form(&browser, "/signup/password", &with("short")).await;
    assert_eq!(status, 400, "{short}");
    assert!(short.contains("at least 8 characters"), "{short}");
    let (status, location) =
        post_form(&browser, "/signup/password", &with("a long new password")).await;
    assert_eq!(status, 303, "{location}");
    // A password account is offered a passkey next, then goes on to the application.
    assert!(location.starts_with("/passkeys/offer"), "{location}");
    let location = location.replace("/passkeys/offer", "/authorize/resume");
    let claims = id_token(
        &server,
        &browser,
        &client_id,
        secret.as_deref(),
        &location,
        &verifier,
    )
    .await;
    let user = tessera::store::users::find_by_email(&app.store, &org, "ada@example.com")
        .await
        .unwrap()
        .expect("account created");
    assert_eq!(claims["sub"], user.id.as_str());
    assert!(user.email_verified && user.password_hash.is_some());
    assert_eq!(claims["amr"], json!(["pwd"]));

    // The sign-up is spent: a second account from it is refused, as is a replayed code.
    let (status, _) = post_form(&browser, "/signup/password", &with("another password")).await;
    assert!((400..500).contains(&status), "{status}");
    let entries = tessera::store::audit::list(&app.store, Some(&org), Some("user.signup"), 100)
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.action == "user.signup" && e.target.as_deref() == Some(&user.id))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn passkey_only_signup_gets_an_id_token_and_never_a_password() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let server = server_with(&smtp).await;
    open_signup(&server, &[]).await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let browser = Browser::new(&server.issuer());
    let (page, verifier) = signup_page(&server, &browser, &client_id).await;
    let (status, code_page) = start(&browser, &page, "pk@example.org").await;
    assert_eq!(status, 200, "{code_page}");
    let code = code_in(body_of(&smtp.message_to("pk@example.org").await));
    let (status, location) = verify(&browser, &code_page, &code).await;
    assert_eq!(status, 303, "{location}");
    let choose = browser.text(&location).await;
    let fields = json!({
        "request": data_attr(&choose, "data-request"),
        "csrf": data_attr(&choose, "data-csrf"),
        "signup": data_attr(&choose, "data-signup"),
    });
    let (status, started) = post_json(&browser, "/signup/passkey/options", fields.clone()).await;
    assert_eq!(status, 200, "{started}");
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let mut soft = SoftPasskey::new(true);
    let origin = url::Url::parse(&server.issuer()).unwrap();
    let credential = soft
        .do_registration(origin.clone(), options)
        .expect("soft authenticator registers");
    let mut finish = fields.clone();
    finish["ceremony"] = started["ceremony"].clone();
    finish["credential"] = serde_json::to_value(&credential).unwrap();
    let (status, done) = post_json(&browser, "/signup/passkey/finish", finish.clone()).await;
    assert_eq!(status, 200, "{done}");
    let claims = id_token(
        &server,
        &browser,
        &client_id,
        secret.as_deref(),
        done["redirect"].as_str().unwrap(),
        &verifier,
    )
    .await;
    let app = server.app();
    let user = tessera::store::users::find(&app.store, claims["sub"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.email, "pk@example.org");
    assert!(user.email_verified);
    assert!(
        user.password_hash.is_none(),
        "a passkey-only account has no password"
    );
    assert_eq!(
        tessera::store::passkeys::count_usable_for_user(&app.store, &user.id)
            .await
            .unwrap(),
        1
    );
    assert!(
        claims["amr"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "hwk" || a == "swk")
    );
    // Replaying the finished ceremony creates nothing more.
    let (status, _) = post_json(&browser, "/signup/passkey/finish", finish).await;
    assert!(status == 410 || status == 400, "{status}");

    // Later, the passkey signs in to a new authorization request like any other.
    let fresh = Browser::new(&server.issuer());
    let (login, verifier) = common::passkey::sign_in_page(&server, &fresh, &client_id, &[]).await;
    let (status, done, _) =
        common::passkey::passkey_sign_in(&fresh, &login, "pk@example.org", &mut soft, origin).await;
    assert_eq!(status, 200, "{done}");
    let again = id_token(
        &server,
        &fresh,
        &client_id,
        secret.as_deref(),
        done["redirect"].as_str().unwrap(),
        &verifier,
    )
    .await;
    assert_eq!(again["sub"], claims["sub"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_address_gets_the_same_answer_and_its_owner_a_warning() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let server = server_with(&smtp).await;
    open_signup(&server, &[]).await;
    let org = server.app().default_org.id.clone();
    set_methods(&server, &org, |c| c.email_otp.enabled = true).await;
    server.user("ada@example.com").await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let browser = Browser::new(&server.issuer());
    let (page, verifier) = signup_page(&server, &browser, &client_id).await;

    let (status_taken, taken) = start(&browser, &page, "ada@example.com").await;
    let (status_new, new) = start(&browser, &page, "amy@example.com").await;
    assert_eq!((status_taken, status_new), (200, 200));
    let normalize = |page: &str, email: &str| {
        page.replace(&hidden(page, "signup"), "SIGNUP")
            .replace(email, "EMAIL")
    };
    assert_eq!(
        normalize(&taken, "ada@example.com"),
        normalize(&new, "amy@example.com"),
        "the answer must not tell a taken address from a new one"
    );
    let warning = smtp.message_to("ada@example.com").await;
    assert!(
        warning.contains("Subject: Someone tried to create an account with your address"),
        "{warning}"
    );
    assert!(
        !body_of(&warning).bytes().any(|b| b.is_ascii_digit()),
        "no code: {warning}"
    );
    // Guessing the taken address's code fails like a wrong code for a new one.
    let (status, answer) = verify(&browser, &taken, "123456").await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains("4 tries left"), "{answer}");

    // The new address, with email codes only (the organization has them on).
    let code = code_in(body_of(&smtp.message_to("amy@example.com").await));
    let (status, location) = verify(&browser, &new, &code).await;
    assert_eq!(status, 303, "{location}");
    let choose = browser.text(&location).await;
    assert!(choose.contains("id=\"signup-email-only-form\""), "{choose}");
    let fields = ["request", "csrf", "signup"].map(|f| (f, hidden(&choose, f)));
    let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, location) = post_form(&browser, "/signup/email-only", &form).await;
    assert_eq!(status, 303, "{location}");
    let claims = id_token(
        &server,
        &browser,
        &client_id,
        secret.as_deref(),
        &location,
        &verifier,
    )
    .await;
    assert_eq!(claims["amr"], json!(["otp", "email"]));
    let user = tessera::store::users::find(&server.app().store, claims["sub"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(user.password_hash.is_none() && user.email_verified);
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_and_invite_modes_refuse_open_signup() {
    let server = TestServer::start().await;
    let org = server.app().default_org.id.clone();
    let (client_id, _) = server.client(false, REDIRECT).await;
    let browser = Browser::new(&server.url);
    let (login, _) = sign_in_page(&browser, &client_id).await;
    assert!(!login.contains("signup-link"), "closed is the default");
    let request = hidden(&login, "request");
    let csrf = hidden(&login, "csrf");
    let response = browser
        .http
        .get(format!("{}/signup?request={request}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let (status, _) = post_form(
        &browser,
        "/signup",
        &[
            ("request", &request),
            ("csrf", &csrf),
            ("email", "new@example.com"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    set_methods(&server, &org, |c| c.signup.mode = SignupMode::Invite).await;
    let page = browser
        .http
        .get(format!("{}/signup?request={request}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403);
    assert!(page.text().await.unwrap().contains("invitation"));
    assert!(
        server.app().delivery.outbox.recent().is_empty(),
        "nothing was sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn codes_have_a_try_limit_sends_are_throttled_and_an_unverified_signup_goes_nowhere() {
    let server = TestServer::start().await;
    open_signup(&server, &[]).await;
    let (client_id, _) = server.client(false, REDIRECT).await;
    let browser = Browser::new(&server.url);
    let (login, _) = sign_in_page(&browser, &client_id).await;
    let page = browser
        .text(&format!("/signup?request={}", hidden(&login, "request")))
        .await;
    let (status, code_page) = start(&browser, &page, "tries@example.com").await;
    assert_eq!(status, 200, "{code_page}");
    let code = outbox_code(&server, "tries@example.com", 1).await;

    // An unverified sign-up cannot create an account nor finish the authorization request.
    let signup = hidden(&code_page, "signup");
    let (request, csrf) = (hidden(&page, "request"), hidden(&page, "csrf"));
    let (status, _) = post_form(
        &browser,
        "/signup/password",
        &[
            ("request", &request),
            ("csrf", &csrf),
            ("signup", &signup),
            ("password", "a long new password"),
        ],
    )
    .await;
    assert_eq!(status, 410);
    let (status, _) = post_form(
        &browser,
        "/signup/email-only",
        &[("request", &request), ("csrf", &csrf), ("signup", &signup)],
    )
    .await;
    assert!(status == 410 || status == 403, "{status}");
    let response = browser
        .http
        .get(format!(
            "{}/signup/credential?request={request}&signup={signup}",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 410);
    match browser
        .follow(&format!(
            "{}/authorize/resume?request={request}",
            server.url
        ))
        .await
    {
        Landing::Page(_, page) => assert!(!page.contains("code="), "{page}"),
        Landing::Client(q) => panic!("no code without an account: {q:?}"),
    }
    assert!(
        tessera::store::users::find_by_email(
            &server.app().store,
            &server.app().default_org.id,
            "tries@example.com"
        )
        .await
        .unwrap()
        .is_none()
    );

    // Another browser cannot use this browser's sign-up, even with the right code.
    let other = Browser::new(&server.url);
    let (status, _) = verify(&other, &code_page, &code).await;
    assert!((400..500).contains(&status), "{status}");

    // Five wrong codes end the sign-up: the right one is refused after that.
    let mut current = code_page.clone();
    for left in (0..5).rev() {
        let (status, answer) = verify(&browser, &current, other_than(&code)).await;
        assert_eq!(status, 401, "{answer}");
        if left > 0 {
            assert!(answer.contains(&format!("{left} tr")), "{answer}");
            current = answer;
        } else {
            assert!(answer.contains("Ask for a new one"), "{answer}");
        }
    }
    let (status, answer) = verify(&browser, &code_page, &code).await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains("Ask for a new one"), "{answer}");

    // A new code right away is throttled (one per address per 30 s by default).
    let (status, throttled) = start(&browser, &page, "tries@example.com").await;
    assert_eq!(status, 429, "{throttled}");
    // Per IP too: 5 sends in 30 s from one address.
    for i in 0..4 {
        let (status, _) = start(&browser, &page, &format!("ip{i}@example.com")).await;
        assert_eq!(status, 200);
    }
    let (status, _) = start(&browser, &page, "ip5@example.com").await;
    assert_eq!(status, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_at_the_signup_endpoints_gets_no_5xx() {
    let server = TestServer::start().await;
    open_signup(&server, &[]).await;
    let (client_id, _) = server.client(false, REDIRECT).await;
    let browser = Browser::new(&server.url);
    let (login, _) = sign_in_page(&browser, &client_id).await;
    let request = hidden(&login, "request");
    let csrf = hidden(&login, "csrf");
    let huge = "x".repeat(20_000);
    let forms: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/signup", vec![]),
        (
            "/signup",
            vec![
                ("request", &request),
                ("csrf", "wrong"),
                ("email", "a@example.com"),
            ],
        ),
        (
            "/signup",
            vec![("request", &request), ("csrf", &csrf), ("email", &huge)],
        ),
        (
            "/signup",
            vec![
                ("request", &huge),
                ("csrf", &csrf),
                ("email", "a@example.com"),
            ],
        ),
        (
            "/signup/verify",
            vec![("request", &request), ("csrf", &csrf)],
        ),
        (
            "/signup/verify",
            vec![
                ("request", &request),
                ("csrf", &csrf),
                ("signup", &huge),
                ("email", &huge),
                ("code", &huge),
            ],
        ),
        (
            "/signup/password",
            vec![
                ("request", &request),
                ("csrf", &csrf),
                ("signup", "nope"),
                ("password", &huge),
            ],
        ),
        (
            "/signup/email-only",
            vec![("request", &request), ("csrf", "x"), ("signup", "nope")],
        ),
    ];
    for (path, form) in forms {
        let (status, body) = post_form(&browser, path, &form).await;
        assert!(status < 500, "{path}: {status} {body}");
    }
    for path in [
        "/signup",
        "/signup?request=nope",
        "/signup/credential",
        "/signup/credential?request=nope&signup=nope",
    ] {
        let status = browser
            .http
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.as_u16() < 500, "{path}: {status}");
    }
    for path in ["/signup/passkey/options", "/signup/passkey/finish"] {
        for body in [
            json!(null),
            json!({}),
            json!({ "request": request, "csrf": "wrong", "signup": "x" }),
            json!({ "request": request, "csrf": csrf, "signup": huge, "ceremony": "x", "credential": {"id": 1} }),
        ] {
            let (status, answer) = post_json(&browser, path, body).await;
            assert!(status < 500, "{path}: {status} {answer}");
        }
        let status = browser
            .http
            .post(format!("{}{path}", server.url))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.as_u16() < 500, "{path}: {status}");
        let status = browser
            .http
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 405, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invitation_from_the_admin_api_works_once_for_a_passkey_only_account() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let server = server_with(&smtp).await;
    let org = server.app().default_org.id.clone();
    set_methods(&server, &org, |c| c.signup.mode = SignupMode::Invite).await;
    server.user("ada@example.com").await;
    let (_, token) = tessera::admin::tokens::create(
        &server.app().store,
        &tessera::admin::Actor::cli(),
        Some(&org),
        "invites",
    )
    .await
    .unwrap();
    let api = |body: serde_json::Value| {
        common::plain_client()
            .post(format!(
                "{}/admin/api/v1/orgs/{org}/invitations",
                server.url
            ))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    // An address with an account is refused: admins may know who has one.
    let taken = api(json!({ "email": "ada@example.com" })).await.unwrap();
    assert_eq!(taken.status(), 409);
    let bad = api(json!({ "email": "nobody", "extra": 1 })).await.unwrap();
    assert_eq!(bad.status(), 400);
    let created = api(json!({ "email": " Inv@Example.com " })).await.unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["email"], "inv@example.com");
    assert_eq!(created["mailed"], true);
    let link = created["link"].as_str().unwrap().to_owned();
    let mail = smtp.message_to("inv@example.com").await;
    assert!(mail.contains("Subject: You are invited to"), "{mail}");
    // Quoted-printable: soft line breaks and `=` as `=3D`.
    let decoded = mail.replace("=\r\n", "").replace("=3D", "=");
    assert!(decoded.contains(&link), "{mail}");
    let expires = created["expires_at"].as_i64().unwrap() - created["created_at"].as_i64().unwrap();
    assert_eq!(expires, 7 * 24 * 3600);

    let browser = Browser::new(&server.issuer());
    let path = link.replace(&server.issuer(), "");
    let page = browser.text(&path).await;
    assert!(
        page.contains("inv@example.com") && page.contains("id=\"signup-passkey\""),
        "{page}"
    );
    let invitation = data_attr(&page, "data-invitation");
    let (status, started) = post_json(
        &browser,
        "/signup/invitation/passkey/options",
        json!({ "invitation": invitation }),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let mut soft = SoftPasskey::new(true);
    let credential = soft
        .do_registration(url::Url::parse(&server.issuer()).unwrap(), options)
        .expect("soft authenticator registers");
    let (status, done) = post_json(
        &browser,
        "/signup/invitation/passkey/finish",
        json!({ "invitation": invitation, "ceremony": started["ceremony"], "credential": credential }),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["redirect"], "/account");
    let account = browser.text("/account").await;
    assert!(account.contains("inv@example.com"), "{account}");
    let user = tessera::store::users::find_by_email(&server.app().store, &org, "inv@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(user.email_verified && user.password_hash.is_none());

    // Single use: the link is dead now, for every kind of answer.
    let again = browser
        .http
        .get(format!("{}{path}", server.issuer()))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410);
    let (status, _) = post_form(
        &Browser::new(&server.issuer()),
        "/signup/invitation/password",
        &[("token", &invitation), ("password", "a long new password")],
    )
    .await;
    assert_eq!(status, 410);
    let listed: serde_json::Value = common::plain_client()
        .get(format!(
            "{}/admin/api/v1/orgs/{org}/invitations",
            server.url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed[0]["used_at"].is_i64(), "{listed}");
    let audit = tessera::store::audit::list(&server.app().store, Some(&org), Some("user."), 100)
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.action == "user.invite"));
    assert!(
        audit
            .iter()
            .any(|e| e.action == "user.signup" && e.detail.contains("invitation"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invitation_with_a_password_and_hostile_tokens() {
    let server = TestServer::start().await;
    let app = server.app();
    let org = app.default_org.id.clone();
    let created = tessera::account::invitations::create(
        &app.store,
        &app.config,
        &tessera::admin::Actor::cli(),
        &org,
        "pw@example.com",
    )
    .await
    .unwrap();
    let token = created.link.split("token=").nth(1).unwrap().to_owned();
    let browser = Browser::new(&server.url);
    let (status, page) = post_form(
        &browser,
        "/signup/invitation/password",
        &[("token", &token), ("password", "short")],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("at least 8"), "{page}");
    let (status, location) = post_form(
        &browser,
        "/signup/invitation/password",
        &[("token", &token), ("password", "a long new password")],
    )
    .await;
    assert_eq!(status, 303, "{location}");
    assert_eq!(location, "/account");
    assert!(browser.text("/account").await.contains("pw@example.com"));
    let huge = "x".repeat(20_000);
    for (path, form) in [
        (
            "/signup/invitation/password",
            vec![
                ("token", huge.as_str()),
                ("password", "a long new password"),
            ],
        ),
        ("/signup/invitation/password", vec![]),
        ("/signup/invitation/email-only", vec![("token", "nope")]),
        (
            "/signup/invitation/email-only",
            vec![("token", token.as_str())],
        ),
    ] {
        let (status, body) = post_form(&browser, path, &form).await;
        assert!((400..500).contains(&status), "{path}: {status} {body}");
    }
    for body in [
        json!({}),
        json!({ "invitation": huge }),
        json!({ "invitation": token, "ceremony": 1 }),
    ] {
        for path in [
            "/signup/invitation/passkey/options",
            "/signup/invitation/passkey/finish",
        ] {
            let (status, answer) = post_json(&browser, path, body.clone()).await;
            assert!((400..500).contains(&status), "{path}: {status} {answer}");
        }
    }
    for path in [
        "/signup/invitation",
        "/signup/invitation?token=",
        "/signup/invitation?token=nope",
    ] {
        let status = browser
            .http
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_client_error(), "{path}: {status}");
    }
}

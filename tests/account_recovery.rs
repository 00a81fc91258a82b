//! Account recovery (README "Account recovery") against a real server and a real SMTP server
//! (aiosmtpd): the code path ending with a new passkey or a new password, the end of every
//! other session with refresh tokens and back-channel logout, the audit entry, try limits,
//! throttles, identical answers for unknown addresses, and the admin's recovery link from the
//! admin API, the console's domain and the CLI. Hostile input for every new endpoint.

mod common;

use common::otp::{REDIRECT, SmtpSink, capture_server, code_in, post_form};
use common::passkey::{data_attr, origin, post_json};
use common::{Browser, Landing, PASSWORD, TestServer, hidden};
use serde_json::json;
use tessera::config::{EmailTransport, SmtpTls};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::CreationChallengeResponse;

/// A passkey-capable server (issuer on `localhost`) sending mail to `smtp`.
async fn server(smtp: &SmtpSink) -> TestServer {
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

fn body_of(message: &str) -> &str {
    message
        .split_once("\r\n\r\n")
        .map_or(message, |(_, body)| body)
}

/// Opens the recovery page (from the sign-in page's link when `from` is given).
async fn recovery_page(browser: &Browser, path: &str) -> String {
    match browser.follow(path).await {
        Landing::Page(200, page) => page,
        other => panic!("recovery page expected, got {other:?}"),
    }
}

async fn ask_code(browser: &Browser, page: &str, email: &str) -> (u16, String) {
    let csrf = hidden(page, "csrf");
    let request = hidden(page, "request");
    post_form(
        browser,
        "/recover",
        &[("csrf", &csrf), ("request", &request), ("email", email)],
    )
    .await
}

async fn type_code(browser: &Browser, page: &str, code: &str) -> (u16, String) {
    let csrf = hidden(page, "csrf");
    let request = hidden(page, "request");
    post_form(
        browser,
        "/recover/code",
        &[("csrf", &csrf), ("request", &request), ("code", code)],
    )
    .await
}

fn other_code(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

/// Registers a passkey on the recovery page; returns the finish answer.
async fn register_on(
    browser: &Browser,
    page: &str,
    soft: &mut SoftPasskey,
    origin: url::Url,
) -> (u16, serde_json::Value) {
    let csrf = data_attr(page, "data-csrf");
    assert_eq!(data_attr(page, "data-endpoint"), "/recover/passkey");
    let (status, started) =
        post_json(browser, "/recover/passkey/options", json!({ "csrf": csrf })).await;
    assert_eq!(status, 200, "{started}");
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let credential = soft.do_registration(origin, options).expect("registers");
    post_json(
        browser,
        "/recover/passkey/finish",
        json!({ "csrf": csrf, "ceremony": started["ceremony"], "credential": credential, "name": "Recovered key" }),
    )
    .await
}

async fn audit_actions(
    server: &TestServer,
    prefix: &str,
) -> Vec<tessera::store::audit::AuditEntry> {
    tessera::store::audit::list(&server.app().store, None, Some(prefix), 50)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn code_then_new_passkey_recovers_ends_every_session_and_resumes_the_sign_in() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let server = server(&smtp).await;
    let app = server.app();
    let (receiver, captured) = capture_server().await;
    let (client_id, secret) = tessera::admin::create_client(
        &app.store,
        tessera::admin::NewClient {
            org_id: &app.default_org.id,
            name: "RP with back-channel logout",
            redirect_uris: &[REDIRECT.to_owned()],
            post_logout_redirect_uris: &[],
            public: false,
            id: None,
            secret: None,
            backchannel_logout_uri: Some(&format!("{receiver}/backchannel")),
        },
    )
    .await
    .unwrap();
    let secret = secret.unwrap();
    let email = "ada@example.com";
    let sub = server.user(email).await;

    // An existing sign-in elsewhere, with a refresh token at the relying party.
    let old = Browser::new(&server.issuer());
    // Past the one-time "add a passkey" offer that follows a password sign-in.
    old.jar.add_cookie_str(
        "tessera_passkey_nudge=dismissed",
        &server.issuer().parse().unwrap(),
    );
    let (url, verifier) = common::authorize_url(&server, &client_id, REDIRECT, &[]);
    let url = url.replace(&server.url, &server.issuer());
    let q = old.authorize(&url, email, PASSWORD).await.params();
    let (status, tokens) = common::exchange(
        &server,
        &client_id,
        Some(&secret),
        &q["code"],
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();

    // The person who lost access starts a sign-in and follows "Forgot your password?".
    let browser = Browser::new(&server.issuer());
    let (page, verifier) = common::passkey::sign_in_page(&server, &browser, &client_id, &[]).await;
    assert!(page.contains("id=\"forgot\""), "{page}");
    let request = hidden(&page, "request");
    let page = recovery_page(&browser, &format!("/recover?request={request}")).await;
    let (status, page) = ask_code(&browser, &page, " Ada@Example.com ").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("If a***@example.com belongs to an account here"),
        "{page}"
    );
    let message = smtp
        .message_with(email, "Subject: Your account recovery code")
        .await;
    assert!(
        message.contains("Subject: Your account recovery code"),
        "{message}"
    );
    let code = code_in(body_of(&message));

    // The code is bound to this browser: another browser cannot use it.
    let thief = Browser::new(&server.issuer());
    let thief_page = recovery_page(&thief, "/recover").await;
    let (status, _) = type_code(&thief, &thief_page, &code).await;
    assert_eq!(status, 400);

    // A wrong code costs a try; the right one leads to the new-credential step.
    let (status, wrong) = type_code(&browser, &page, other_code(&code)).await;
    assert_eq!(status, 400);
    assert!(wrong.contains("tries left"), "{wrong}");
    let (status, location) = type_code(&browser, &page, &code).await;
    assert_eq!((status, location.as_str()), (303, "/recover/new"));
    let new_page = recovery_page(&browser, "/recover/new").await;
    assert!(new_page.contains(email));
    assert!(
        new_page.contains("id=\"recover-password-form\""),
        "password is on: offered too"
    );

    // The same code a second time is spent.
    let (status, _) = type_code(&browser, &page, &code).await;
    assert_eq!(status, 400);

    let mut soft = SoftPasskey::new(true);
    let (status, done) = register_on(&browser, &new_page, &mut soft, origin(&server)).await;
    assert_eq!(status, 200, "{done}");
    let next = done["redirect"].as_str().unwrap().to_owned();
    assert!(next.starts_with("/authorize/resume"), "{next}");
    // Back at the application, signed in: a code for the parked request.
    let q = browser.follow(&next).await.params();
    let (status, tokens) = common::exchange(
        &server,
        &client_id,
        Some(&secret),
        &q["code"],
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        common::claims_of(tokens["id_token"].as_str().unwrap())["sub"],
        sub
    );

    // Every other session ended, its refresh token is dead, and the RP was told.
    let landing = old.follow("/account").await;
    assert!(
        matches!(&landing, Landing::Page(_, p) if p.contains("login-form"))
            || matches!(landing, Landing::Client(_)),
        "old session still signed in"
    );
    let (status, _) = common::refresh(&server, &client_id, &secret, &refresh_token).await;
    assert_eq!(status, 400, "refresh token revoked");
    let (path, _, body) = common::otp::wait_for_capture(&captured).await;
    assert_eq!(path, "/backchannel");
    assert!(body.starts_with("logout_token="));

    // The address is told; the audit log has it; the recovery cannot be replayed.
    let notice = smtp
        .message_with(email, "Subject: Your account was recovered")
        .await;
    assert!(
        notice.contains("Subject: Your account was recovered"),
        "{notice}"
    );
    assert!(
        notice.contains("Device:") && notice.contains("/account"),
        "{notice}"
    );
    let entries = audit_actions(&server, "account.recover").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].target.as_deref(), Some(sub.as_str()));
    assert!(entries[0].detail.contains("email_code"));
    let (status, _) = post_json(
        &browser,
        "/recover/passkey/options",
        json!({ "csrf": data_attr(&new_page, "data-csrf") }),
    )
    .await;
    assert_eq!(status, 400, "the recovery is complete");

    // The new passkey signs in.
    let other = Browser::new(&server.issuer());
    let (page, _) = common::passkey::sign_in_page(&server, &other, &client_id, &[]).await;
    let (status, done, _) =
        common::passkey::passkey_sign_in(&other, &page, email, &mut soft, origin(&server)).await;
    assert_eq!(status, 200, "{done}");
}

/// A passkey-only account (password removed on the account page) recovers by setting a
/// password, straight from the recovery page (no application waiting): signed in to the
/// account page.
#[tokio::test(flavor = "multi_thread")]
async fn passkey_only_account_recovers_with_a_new_password() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let server = server(&smtp).await;
    let email = "grace@example.com";
    let sub = server.user(email).await;
    // Make it passkey-only: sign in, add a passkey, remove the password.
    let browser = Browser::new(&server.issuer());
    let Landing::Page(200, login) = browser.follow("/account/login").await else {
        panic!("no sign-in page");
    };
    let _ = browser.submit_login(&login, email, PASSWORD).await;
    let account = browser.text("/account").await;
    let mut lost = SoftPasskey::new(true);
    common::passkey::register(&browser, &account, &mut lost, origin(&server), "Lost phone").await;
    let csrf = hidden(&account, "csrf");
    let (status, location) =
        post_form(&browser, "/account/password/remove", &[("csrf", &csrf)]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/account?notice=password-removed")
    );
    let user = tessera::store::users::find(&server.app().store, &sub)
        .await
        .unwrap()
        .unwrap();
    assert!(user.password_hash.is_none());

    let fresh = Browser::new(&server.issuer());
    let page = recovery_page(&fresh, "/recover").await;
    let (status, page) = ask_code(&fresh, &page, email).await;
    assert_eq!(status, 200, "{page}");
    let message = smtp.message_with(email, "Your account recovery code").await;
    let (status, _) = type_code(&fresh, &page, &code_in(body_of(&message))).await;
    assert_eq!(status, 303);
    let new_page = recovery_page(&fresh, "/recover/new").await;
    let csrf = hidden(&new_page, "csrf");
    // Too short a password is refused, and the recovery stays open.
    let (status, _) = post_form(
        &fresh,
        "/recover/password",
        &[("csrf", &csrf), ("password", "short")],
    )
    .await;
    assert_eq!(status, 400);
    let (status, location) = post_form(
        &fresh,
        "/recover/password",
        &[("csrf", &csrf), ("password", "a brand new password")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/account?notice=recovered")
    );
    let account = fresh.text("/account?notice=recovered").await;
    assert!(account.contains("Your account is recovered"), "{account}");
    // The session that removed the password is gone.
    let landing = browser.follow("/account").await;
    assert!(!matches!(landing, Landing::Page(200, ref p) if p.contains("sign-out-everywhere")));
    // The new password signs in.
    let other = Browser::new(&server.issuer());
    let Landing::Page(200, login) = other.follow("/account/login").await else {
        panic!("no sign-in page");
    };
    let _ = other
        .submit_login(&login, email, "a brand new password")
        .await;
    assert!(other.text("/account").await.contains("sign-out-everywhere"));
    smtp.message_with(email, "Subject: Your account was recovered")
        .await;
    assert!(
        audit_actions(&server, "account.recover").await[0]
            .detail
            .contains("password")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_addresses_get_the_same_answer_and_codes_have_try_limits_and_throttles() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let server = server(&smtp).await;
    server.user("known@example.com").await;

    // Same browser, same CSRF token: the two answers differ only in the masked address.
    let browser = Browser::new(&server.issuer());
    let page = recovery_page(&browser, "/recover").await;
    let (s1, known) = ask_code(&browser, &page, "known@example.com").await;
    let (s2, unknown) = ask_code(&browser, &page, "nobody@example.com").await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(known.replace("k***@", "X"), unknown.replace("n***@", "X"));
    let message = smtp
        .message_with("known@example.com", "recovery code")
        .await;
    assert_eq!(smtp.count(), 1, "nothing was sent to the unknown address");
    // The browser now holds the unknown address's code: no code passes, ever.
    let code = code_in(body_of(&message));
    let (status, page_after) = type_code(&browser, &unknown, &code).await;
    assert_eq!(status, 400, "{page_after}");

    // Try limit: five wrong codes kill the code, the right one no longer works.
    let limited = Browser::new(&server.issuer());
    let page = recovery_page(&limited, "/recover").await;
    server.user("limit@example.com").await;
    let (_, page) = ask_code(&limited, &page, "limit@example.com").await;
    let code = code_in(body_of(
        &smtp
            .message_with("limit@example.com", "recovery code")
            .await,
    ));
    for _ in 0..5 {
        let (status, _) = type_code(&limited, &page, other_code(&code)).await;
        assert_eq!(status, 400);
    }
    let (status, dead) = type_code(&limited, &page, &code).await;
    assert_eq!(status, 400);
    assert!(dead.contains("expired or was used up"), "{dead}");

    // Per address: a second code within 30 seconds is refused (known or not).
    let (status, page2) = ask_code(&limited, &page, "limit@example.com").await;
    assert_eq!(status, 429, "{page2}");
    let (status, _) = ask_code(&limited, &page, "nobody@example.com").await;
    assert_eq!(status, 429);
    // Per IP: five sends in 30 seconds from this address, whatever the addresses.
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(
            ask_code(&limited, &page, &format!("spray{i}@example.com"))
                .await
                .0,
        );
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

/// Writes a config file for the CLI: the server's database and the SMTP sink.
fn cli_config(dir: &std::path::Path, server: &TestServer, smtp: &SmtpSink) -> String {
    let path = dir.join("tessera.toml");
    std::fs::write(
        &path,
        format!(
            "issuer = \"{}\"\ndatabase_url = \"{}\"\n[email]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\nsmtp_tls = \"none\"\nfrom = \"Tessera <no-reply@tessera.test>\"\n",
            server.issuer(),
            server.database_url,
            smtp.port
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn link_in(message: &str) -> String {
    let body = body_of(message);
    let start = body
        .find("http")
        .unwrap_or_else(|| panic!("a link in {message:?}"));
    body[start..].split_whitespace().next().unwrap().to_owned()
}

async fn open_link_and_set_password(server: &TestServer, link: &str, password: &str) -> u16 {
    let browser = Browser::new(&server.issuer());
    let path = link.replace(&server.issuer(), "");
    let page = recovery_page(&browser, &path).await;
    assert!(
        page.contains("recover-link-form"),
        "opening the link only shows a button"
    );
    let csrf = hidden(&page, "csrf");
    let token = hidden(&page, "token");
    let (status, location) = post_form(
        &browser,
        "/recover/link",
        &[("csrf", &csrf), ("token", &token)],
    )
    .await;
    if status != 303 {
        return status;
    }
    assert_eq!(location, "/recover/new");
    let page = recovery_page(&browser, "/recover/new").await;
    let csrf = hidden(&page, "csrf");
    post_form(
        &browser,
        "/recover/password",
        &[("csrf", &csrf), ("password", password)],
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_send_recovery_links_from_the_api_the_console_and_the_cli() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let server = server(&smtp).await;
    let app = server.app();
    let email = "linus@example.com";
    let sub = server.user(email).await;
    let cli = tessera::admin::Actor::cli();
    let (_, token) =
        tessera::admin::tokens::create(&app.store, &cli, Some(&app.default_org.id), "ops")
            .await
            .unwrap();
    let http = common::plain_client();
    let api = format!(
        "{}/admin/api/v1/orgs/{}/users",
        server.url, app.default_org.id
    );

    // No token, an unknown user: refused without a message.
    let r = http
        .post(format!("{api}/{sub}/recovery"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{api}/nope/recovery"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .post(format!("{api}/{sub}/recovery"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["expires_in"], 900);
    assert!(
        !answer.to_string().contains("token="),
        "the admin never sees the link"
    );
    let first = smtp.message_with(email, "/recover/link?token=").await;
    let link = link_in(&first);
    assert!(link.contains("/recover/link?token="), "{link}");
    assert_eq!(
        open_link_and_set_password(&server, &link, "password from the link").await,
        303
    );
    // Single use.
    assert_eq!(
        open_link_and_set_password(&server, &link, "second try password").await,
        400
    );
    let entries = audit_actions(&server, "user.recovery_link").await;
    assert_eq!(entries[0].actor.split(':').next(), Some("admin_token"));
    assert!(
        audit_actions(&server, "account.recover").await[0]
            .detail
            .contains("admin_link")
    );

    // The console's action (same domain function, through the admin users page's form).
    let message = tessera::admin::users::recovery_link(
        &app.store,
        &app.config,
        &cli,
        &app.default_org.id,
        &sub,
    )
    .await
    .unwrap();
    assert_eq!(message.to, email);
    assert!(message.body.contains("/recover/link?token="));

    // The CLI sends through the configured SMTP server.
    let dir = tempfile::tempdir().unwrap();
    let config = cli_config(dir.path(), &server, &smtp);
    let before = smtp.count();
    let (ok, out, err) = common::process::admin(
        &["user", "recover", "--email", email],
        &[("TESSERA_CONFIG", config.clone())],
    );
    assert!(ok, "{err}");
    assert_eq!(out["id"], sub);
    assert!(smtp.count() > before);
    // The CLI returns once the SMTP server took the message: the newest link is there.
    let links: Vec<String> = smtp
        .all_to(email)
        .into_iter()
        .filter(|m| m.contains("/recover/link?token="))
        .collect();
    assert_eq!(links.len(), 2);
    let link = link_in(&links[1]);
    assert_eq!(
        open_link_and_set_password(&server, &link, "password from the cli").await,
        303
    );
    let (ok, _, err) = common::process::admin(
        &["user", "recover", "--email", "nobody@example.com"],
        &[("TESSERA_CONFIG", config)],
    );
    assert!(!ok && err.contains("no user"), "{err}");
}

/// Garbage at every recovery endpoint: refused with a 4xx page or JSON, never a 5xx.
#[tokio::test(flavor = "multi_thread")]
async fn recovery_endpoints_refuse_hostile_input() {
    let server = common::passkey::server().await;
    let browser = Browser::new(&server.issuer());
    let page = recovery_page(&browser, "/recover").await;
    let csrf = hidden(&page, "csrf");
    let huge = "x".repeat(20_000);
    let forms: &[(&str, Vec<(&str, &str)>)] = &[
        ("/recover", vec![]),
        (
            "/recover",
            vec![("csrf", "wrong"), ("email", "a@example.com")],
        ),
        ("/recover", vec![("csrf", &csrf), ("email", &huge)]),
        (
            "/recover",
            vec![("csrf", &csrf), ("email", "not an address")],
        ),
        (
            "/recover",
            vec![
                ("csrf", &csrf),
                ("email", "a@example.com"),
                ("request", &huge),
            ],
        ),
        (
            "/recover",
            vec![
                ("csrf", &csrf),
                ("email", "b@example.com"),
                ("request", "unknown"),
            ],
        ),
        ("/recover/code", vec![]),
        ("/recover/code", vec![("csrf", &csrf), ("code", &huge)]),
        ("/recover/code", vec![("csrf", &csrf), ("code", "١٢٣٤٥٦")]),
        ("/recover/link", vec![("csrf", &csrf), ("token", &huge)]),
        ("/recover/link", vec![("csrf", &csrf), ("token", "")]),
        ("/recover/link", vec![("csrf", "x"), ("token", "abc")]),
        (
            "/recover/password",
            vec![("csrf", &csrf), ("password", "long enough password")],
        ),
        ("/recover/password", vec![]),
    ];
    for (path, fields) in forms {
        let (status, body) = post_form(&browser, path, fields).await;
        assert!(
            (400..500).contains(&status),
            "{path} {fields:?}: {status} {body}"
        );
    }
    for path in ["/recover/passkey/options", "/recover/passkey/finish"] {
        for body in [
            "",
            "{",
            "[]",
            "{\"csrf\":5}",
            &format!("{{\"csrf\":\"{huge}\"}}"),
        ] {
            let r = browser
                .http
                .post(format!("{}{path}", server.issuer()))
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
                .await
                .unwrap();
            assert!(
                r.status().is_client_error(),
                "{path} {body:.40}: {}",
                r.status()
            );
        }
        let (status, _) = post_json(
            &browser,
            path,
            json!({ "csrf": csrf, "ceremony": "x", "credential": {} }),
        )
        .await;
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    for path in [
        "/recover/new".to_owned(),
        format!("/recover/link?token={huge}"),
        "/recover?request=%00%ff".to_owned(),
        format!("/recover?request={huge}"),
    ] {
        let r = browser
            .http
            .get(format!("{}{path}", server.issuer()))
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500, "{path:.60}: {}", r.status());
    }
    for path in ["/recover/code", "/recover/new", "/recover/password"] {
        let r = browser
            .http
            .put(format!("{}{path}", server.issuer()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{path}");
    }
}

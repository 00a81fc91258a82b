//! The account page (README "Account page"): the ways to sign in it lists, setting, changing
//! and removing the password under the last-method rule, changing the email address (recent
//! sign-in, a code to the new address, a notice to the old one), and the security
//! notifications, read from a real SMTP server (aiosmtpd). Hostile input for each new form.

mod common;

use common::otp::{SmtpSink, code_in, post_form};
use common::passkey::origin;
use common::{Browser, Landing, PASSWORD, TestServer, hidden};
use tessera::config::{EmailTransport, SmtpTls};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

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

/// A browser signed in to the account page as `email` with `password`.
async fn signed_in(server: &TestServer, email: &str, password: &str) -> Browser {
    let browser = Browser::new(&server.issuer());
    browser.jar.add_cookie_str(
        "tessera_passkey_nudge=dismissed",
        &server.issuer().parse().unwrap(),
    );
    let Landing::Page(200, login) = browser.follow("/account/login?prompt=login").await else {
        panic!("no sign-in page");
    };
    let landing = browser.submit_login(&login, email, password).await;
    assert!(
        matches!(landing, Landing::Page(200, ref p) if p.contains("sign-out-everywhere")),
        "{landing:?}"
    );
    browser
}

async fn is_signed_in(browser: &Browser) -> bool {
    matches!(browser.follow("/account").await, Landing::Page(200, p) if p.contains("sign-out-everywhere"))
}

/// Moves every session's sign-in `secs` into the past (the 5-minute rule).
async fn age_sign_ins(server: &TestServer, secs: i64) {
    use diesel_async::RunQueryDsl;
    let sql = format!("UPDATE sessions SET auth_time = auth_time - {secs}");
    match &server.app().store.backend {
        tessera::store::Backend::Sqlite(pool) => {
            let mut conn = pool.get().await.unwrap();
            diesel::sql_query(sql).execute(&mut *conn).await.unwrap();
        }
        tessera::store::Backend::Postgres(pool) => {
            let mut conn = pool.get().await.unwrap();
            diesel::sql_query(sql).execute(&mut *conn).await.unwrap();
        }
    }
}

async fn account(browser: &Browser) -> String {
    browser.text("/account").await
}

async fn post(browser: &Browser, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let page = account(browser).await;
    let csrf = hidden(&page, "csrf");
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    post_form(browser, path, &form).await
}

fn methods_of(page: &str) -> String {
    let start = page.find("id=\"methods\"").expect("methods list");
    page[start..start + page[start..].find("</ul>").unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn email_change_needs_a_recent_sign_in_and_a_code_and_tells_the_old_address() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let server = server(&smtp).await;
    let sub = server.user("old@example.com").await;
    server.user("taken@example.com").await;
    let browser = signed_in(&server, "old@example.com", PASSWORD).await;

    // A sign-in older than five minutes: sent to sign in again first.
    age_sign_ins(&server, 600).await;
    let (status, location) =
        post(&browser, "/account/email", &[("email", "new@example.com")]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/account?notice=reauthenticate")
    );
    let page = browser.text("/account?notice=reauthenticate").await;
    assert!(page.contains("/account/login?prompt=login"));
    let browser = signed_in(&server, "old@example.com", PASSWORD).await;

    // Another account's address, or garbage: refused.
    let (status, _) = post(
        &browser,
        "/account/email",
        &[("email", "Taken@Example.com")],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(&browser, "/account/email", &[("email", "not an address")]).await;
    assert_eq!(status, 400);

    let (status, location) =
        post(&browser, "/account/email", &[("email", "New@Example.com")]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/account?notice=email-code-sent")
    );
    let page = account(&browser).await;
    assert!(page.contains("id=\"email-confirm-form\"") && page.contains("new@example.com"));
    let message = smtp
        .message_with("new@example.com", "Subject: Confirm your new email address")
        .await;
    let code = code_in(message.split_once("\r\n\r\n").unwrap().1);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, body) = post(&browser, "/account/email/confirm", &[("code", wrong)]).await;
    assert_eq!(status, 400);
    assert!(body.contains("tries left"), "{body}");
    // Only the session that asked can confirm.
    let other = signed_in(&server, "old@example.com", PASSWORD).await;
    let (status, _) = post(&other, "/account/email/confirm", &[("code", &code)]).await;
    assert_eq!(status, 400);
    let (status, location) = post(&browser, "/account/email/confirm", &[("code", &code)]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/account?notice=email-changed")
    );
    assert!(
        account(&browser)
            .await
            .contains("<strong id=\"account-email\">new@example.com</strong>")
    );
    let user = tessera::store::users::find(&server.app().store, &sub)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (user.email.as_str(), user.email_verified),
        ("new@example.com", true)
    );

    // The old address is told, with the time, the device and where to review sessions.
    let notice = smtp
        .message_with(
            "old@example.com",
            "Subject: Your account's email address was changed",
        )
        .await;
    assert!(notice.contains("changed to new@example.com"), "{notice}");
    assert!(
        notice.contains("When: ") && notice.contains(" UTC"),
        "{notice}"
    );
    assert!(
        notice.contains("Device: ") && notice.contains("IP address: 127.0.0.1"),
        "{notice}"
    );
    assert!(
        notice.contains(&format!("{}/account", server.issuer())),
        "{notice}"
    );
    // The new address signs in; the code is spent.
    signed_in(&server, "new@example.com", PASSWORD).await;
    let (status, _) = post(&browser, "/account/email/confirm", &[("code", &code)]).await;
    assert_eq!(status, 400);
    let audit =
        tessera::store::audit::list(&server.app().store, None, Some("account.email.change"), 5)
            .await
            .unwrap();
    assert_eq!(audit.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn password_set_change_and_removal_follow_the_last_method_rule_and_notify() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let server = server(&smtp).await;
    let email = "pat@example.com";
    server.user(email).await;
    let browser = signed_in(&server, email, PASSWORD).await;
    let elsewhere = signed_in(&server, email, PASSWORD).await;

    // Password only: listed, and it cannot go.
    let page = account(&browser).await;
    assert!(methods_of(&page).contains("Password"));
    assert!(!page.contains("id=\"password-remove\""));
    let (status, body) = post(&browser, "/account/password/remove", &[]).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("Cannot remove your last sign-in method"),
        "{body}"
    );

    // Change: other sessions end, this one stays, the address is told.
    let (status, _) = post(&browser, "/account/password", &[("password", "short")]).await;
    assert_eq!(status, 400);
    let (status, location) = post(
        &browser,
        "/account/password",
        &[("password", "a second password")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/account?notice=password-changed")
    );
    assert!(is_signed_in(&browser).await);
    assert!(!is_signed_in(&elsewhere).await, "the other session ended");
    let notice = smtp
        .message_with(email, "Subject: Your password was changed")
        .await;
    assert!(
        notice.contains("Device: ") && notice.contains("/account"),
        "{notice}"
    );
    signed_in(&server, email, "a second password").await;

    // A passkey: listed, notified; now the password can go.
    let page = account(&browser).await;
    let mut soft = SoftPasskey::new(true);
    common::passkey::register(&browser, &page, &mut soft, origin(&server), "Laptop key").await;
    smtp.message_with(email, "Subject: A passkey was added to your account")
        .await;
    let page = account(&browser).await;
    assert!(
        methods_of(&page).contains("Passkey &#34;Laptop key&#34;")
            || methods_of(&page).contains("Laptop key"),
        "{}",
        methods_of(&page)
    );
    assert!(page.contains("id=\"password-remove\""));
    let (status, location) = post(&browser, "/account/password/remove", &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/account?notice=password-removed")
    );
    smtp.message_with(email, "Subject: Your password was removed")
        .await;
    let page = account(&browser).await;
    assert!(
        !methods_of(&page).contains("Password"),
        "{}",
        methods_of(&page)
    );

    // The only passkey is now the last method: it stays.
    let passkey_id = tessera::store::passkeys::list_for_user(
        &server.app().store,
        &tessera::store::users::find_by_email(
            &server.app().store,
            &server.app().default_org.id,
            email,
        )
        .await
        .unwrap()
        .unwrap()
        .id,
    )
    .await
    .unwrap()[0]
        .id
        .clone();
    let (status, body) = post(&browser, "/account/passkeys/delete", &[("id", &passkey_id)]).await;
    assert_eq!(status, 400);
    assert!(body.contains("last sign-in method"), "{body}");

    // Set a password again, then the passkey can go.
    let (status, location) = post(
        &browser,
        "/account/password",
        &[("password", "a third password")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/account?notice=password-set")
    );
    smtp.message_with(email, "Subject: A password was added to your account")
        .await;
    let (status, location) =
        post(&browser, "/account/passkeys/delete", &[("id", &passkey_id)]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/account?notice=passkey-deleted")
    );
    let removed = smtp
        .message_with(email, "Subject: A passkey was removed from your account")
        .await;
    assert!(removed.contains("Laptop key"), "{removed}");

    // A stale sign-in changes nothing.
    age_sign_ins(&server, 600).await;
    let (status, location) = post(
        &browser,
        "/account/password",
        &[("password", "a fourth password")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/account?notice=reauthenticate")
    );
    let audit =
        tessera::store::audit::list(&server.app().store, None, Some("account.password."), 10)
            .await
            .unwrap();
    // Entries of the same second have no order among them: compare as a set.
    let mut actions: Vec<_> = audit.iter().map(|e| e.action.as_str()).collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "account.password.change",
            "account.password.remove",
            "account.password.set"
        ]
    );
}

/// Garbage at the new account forms: refused with a 4xx, never a 5xx; the session survives.
#[tokio::test(flavor = "multi_thread")]
async fn account_forms_refuse_hostile_input() {
    let server = common::passkey::server().await;
    server.user("h@example.com").await;
    let browser = signed_in(&server, "h@example.com", PASSWORD).await;
    let huge = "x".repeat(20_000);
    let csrf = hidden(&account(&browser).await, "csrf");
    let cases: &[(&str, Vec<(&str, &str)>)] = &[
        ("/account/password", vec![]),
        (
            "/account/password",
            vec![("csrf", "wrong"), ("password", "long enough password")],
        ),
        (
            "/account/password",
            vec![("csrf", &csrf), ("password", &huge)],
        ),
        ("/account/password/remove", vec![("csrf", "wrong")]),
        (
            "/account/password/remove",
            vec![("csrf", &csrf), ("csrf", &csrf)],
        ),
        ("/account/email", vec![]),
        ("/account/email", vec![("csrf", &csrf), ("email", &huge)]),
        (
            "/account/email",
            vec![("csrf", &csrf), ("email", "\u{0}@example.com")],
        ),
        (
            "/account/email/confirm",
            vec![("csrf", &csrf), ("code", "123456")],
        ),
        (
            "/account/email/confirm",
            vec![("csrf", &csrf), ("code", &huge)],
        ),
        (
            "/account/email/confirm",
            vec![("csrf", "x"), ("code", "123456")],
        ),
        (
            "/account/passkeys/delete",
            vec![("csrf", &csrf), ("id", &huge)],
        ),
    ];
    for (path, fields) in cases {
        let (status, body) = post_form(&browser, path, fields).await;
        assert!((400..500).contains(&status), "{path}: {status} {body:.200}");
    }
    for path in [
        "/account/password",
        "/account/email",
        "/account/email/confirm",
    ] {
        let r = browser
            .http
            .get(format!("{}{path}", server.issuer()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{path}");
    }
    // Signed out: refused, not an error.
    let stranger = Browser::new(&server.issuer());
    let (status, _) = post_form(
        &stranger,
        "/account/password",
        &[("csrf", &csrf), ("password", "long enough password")],
    )
    .await;
    assert_eq!(status, 401);
    assert!(is_signed_in(&browser).await);
}

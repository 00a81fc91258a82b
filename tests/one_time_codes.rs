//! Email and SMS one-time codes end to end: email through a real SMTP server process
//! (aiosmtpd), text messages through the webhook sender and the Twilio-compatible sender to a
//! real HTTP server, and the rules: expiry, the wrong-code limit, the resend throttle, replay,
//! binding to the browser, and the same answer whether or not an account exists.

mod common;

use common::otp::{
    REDIRECT, SmtpSink, capture_server, code_in, outbox_code, send_code, set_methods, sign_in_page,
    verify_code, wait_for_capture,
};
use common::{Browser, TestServer, claims_of, exchange, hidden};
use serde_json::json;
use tessera::config::{EmailTransport, SmsSenderKind, SmtpTls};

async fn code_tab(browser: &Browser, client_id: &str, method: &str) -> (String, String) {
    let (page, verifier) = sign_in_page(browser, client_id).await;
    let page = browser
        .text(&format!(
            "/login?request={}&method={method}",
            hidden(&page, "request")
        ))
        .await;
    (page, verifier)
}

#[tokio::test(flavor = "multi_thread")]
async fn email_code_through_a_real_smtp_server_signs_in() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let port = smtp.port;
    let server = TestServer::start_with(|c| {
        c.email.transport = EmailTransport::Smtp;
        c.email.smtp_host = "127.0.0.1".into();
        c.email.smtp_port = port;
        c.email.smtp_tls = SmtpTls::None;
        c.email.from = "Tessera <no-reply@tessera.test>".into();
    })
    .await;
    let org = server.app().default_org.id.clone();
    set_methods(&server, &org, |c| c.email_otp.enabled = true).await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let sub = server.user("ada@example.com").await;

    let browser = Browser::new(&server.url);
    let (page, verifier) = code_tab(&browser, &client_id, "email_otp").await;
    let (status, page) = send_code(&browser, &page, "email", " Ada@Example.com ").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("If a***@example.com can sign in here"));
    let message = smtp.message_to("ada@example.com").await;
    assert!(
        message.contains("From: Tessera <no-reply@tessera.test>"),
        "{message}"
    );
    assert!(message.contains("Subject: Your sign-in code"));
    let code = code_in(message.split("\r\n\r\n").nth(1).unwrap_or(&message));

    // A wrong code first: refused with the tries left, then the right one.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, retry) = verify_code(&browser, &page, wrong).await;
    assert_eq!(status, 401, "{retry}");
    assert!(retry.contains("4 tries left"), "{retry}");
    let (status, location) = verify_code(&browser, &retry, &code).await;
    assert_eq!(status, 303, "{location}");
    let q = browser.follow(&location).await.params();
    let (status, tokens) = exchange(
        &server,
        &client_id,
        secret.as_deref(),
        &q["code"],
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let claims = claims_of(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], sub.as_str());
    assert_eq!(claims["amr"], json!(["otp", "email"]));

    // Replay: the parked request is finished, so the form is refused; and the challenge
    // itself is spent, whatever request it is presented with.
    let (status, _) = verify_code(&browser, &retry, &code).await;
    assert_eq!(status, 400);
    let app = server.app();
    let config = tessera::store::orgs::find(&app.store, &org)
        .await
        .unwrap()
        .unwrap()
        .auth_config()
        .unwrap();
    let replay = tessera::authn::otp::verify(
        app,
        &org,
        &config,
        &hidden(&retry, "challenge"),
        &hidden(&retry, "request"),
        &code,
    )
    .await;
    assert!(matches!(replay, Err(tessera::authn::otp::Failure::Dead)));
    assert_eq!(smtp.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn text_codes_go_through_the_webhook_and_the_twilio_compatible_sender() {
    for kind in [SmsSenderKind::Webhook, SmsSenderKind::Twilio] {
        let (sink_url, captured) = capture_server().await;
        let server = TestServer::start_with(|c| {
            c.sms.sender = kind;
            c.sms.webhook_url = Some(format!("{sink_url}/sms"));
            c.sms.webhook_secret = Some("a-shared-secret-of-length".into());
            c.sms.twilio_base_url = sink_url.clone();
            c.sms.twilio_account_sid = Some("AC123".into());
            c.sms.twilio_auth_token = Some("twilio-token".into());
            c.sms.twilio_from = Some("+15005550006".into());
        })
        .await;
        let store = &server.app().store;
        let org = server.app().default_org.id.clone();
        let (client_id, secret) = server.client(false, REDIRECT).await;
        let sub = server.user("ada@example.com").await;
        tessera::store::users::set_phone(store, &sub, Some("+447700900123"), false)
            .await
            .unwrap();
        set_methods(&server, &org, |c| c.phone_otp.enabled = true).await;

        let browser = Browser::new(&server.url);
        let (page, verifier) = code_tab(&browser, &client_id, "phone_otp").await;
        // Typed the way people type it; normalized to E.164.
        let (status, page) = send_code(&browser, &page, "sms", "+44 (7700) 900-123").await;
        assert_eq!(status, 200, "{page}");
        let (path, headers, body) = wait_for_capture(&captured).await;
        let text = match kind {
            SmsSenderKind::Webhook => {
                assert_eq!(path, "/sms");
                assert_eq!(
                    headers["x-tessera-webhook-secret"],
                    "a-shared-secret-of-length"
                );
                let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(sent["to"], "+447700900123");
                sent["body"].as_str().unwrap().to_owned()
            }
            _ => {
                assert_eq!(path, "/2010-04-01/Accounts/AC123/Messages.json");
                assert!(
                    headers["authorization"]
                        .to_str()
                        .unwrap()
                        .starts_with("Basic ")
                );
                let form: std::collections::HashMap<String, String> =
                    url::form_urlencoded::parse(body.as_bytes())
                        .into_owned()
                        .collect();
                assert_eq!(form["To"], "+447700900123");
                assert_eq!(form["From"], "+15005550006");
                form["Body"].clone()
            }
        };
        let (status, location) = verify_code(&browser, &page, &code_in(&text)).await;
        assert_eq!(status, 303, "{location}");
        let q = browser.follow(&location).await.params();
        let (_, tokens) = exchange(
            &server,
            &client_id,
            secret.as_deref(),
            &q["code"],
            REDIRECT,
            &verifier,
        )
        .await;
        let claims = claims_of(tokens["id_token"].as_str().unwrap());
        assert_eq!(claims["amr"], json!(["otp", "sms"]));
        let user = tessera::store::users::find(store, &sub)
            .await
            .unwrap()
            .unwrap();
        assert!(
            user.phone_number_verified,
            "a verified code verifies the number"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn codes_expire_allow_five_wrong_tries_and_are_throttled() {
    let server = TestServer::start_with(|c| {
        c.otp.code_ttl_secs = 2;
        c.rate_limits.otp_send_per_ip.max_failures = 3;
    })
    .await;
    let org = server.app().default_org.id.clone();
    set_methods(&server, &org, |c| c.email_otp.enabled = true).await;
    let (client_id, _) = server.client(false, REDIRECT).await;
    for who in ["a", "b", "c", "d"] {
        server.user(&format!("{who}@example.com")).await;
    }

    // Expiry.
    let browser = Browser::new(&server.url);
    let (page, _) = code_tab(&browser, &client_id, "email_otp").await;
    let (_, entry) = send_code(&browser, &page, "email", "a@example.com").await;
    let code = outbox_code(&server, "a@example.com", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, page) = verify_code(&browser, &entry, &code).await;
    assert_eq!(status, 401);
    assert!(page.contains("expired"));

    // Resend throttle per address: a second code at once is refused, with Retry-After.
    let (status, throttled) = send_code(&browser, &entry, "email", "a@example.com").await;
    assert_eq!(status, 429, "{throttled}");
    assert!(throttled.contains("Wait"));

    // Five wrong tries kill the code: the right one is refused after them.
    let (_, entry) = send_code(&browser, &entry, "email", "b@example.com").await;
    let code = outbox_code(&server, "b@example.com", 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut page = entry.clone();
    for left in (1..5).rev() {
        let (status, next) = verify_code(&browser, &page, wrong).await;
        assert_eq!(status, 401);
        assert!(next.contains(&format!("{left} tr")), "{next}");
        page = next;
    }
    let (_, last) = verify_code(&browser, &page, wrong).await;
    assert!(last.contains("expired, was already used or was typed wrong too often"));
    let (status, _) = verify_code(&browser, &entry, &code).await;
    assert_eq!(status, 401, "the right code after five wrong ones");

    // Per-IP throttle: a third address from the same IP within the window (3 sends).
    let (status, _) = send_code(&browser, &entry, "email", "c@example.com").await;
    assert_eq!(status, 200);
    let (status, _) = send_code(&browser, &entry, "email", "d@example.com").await;
    assert_eq!(status, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_answer_is_the_same_whether_or_not_the_address_has_an_account() {
    let server = TestServer::start_with(|c| c.rate_limits.otp_send_per_ip.max_failures = 100).await;
    let org = server.app().default_org.id.clone();
    set_methods(&server, &org, |c| c.email_otp.enabled = true).await;
    let (client_id, _) = server.client(false, REDIRECT).await;
    server.user("known@example.com").await;

    let browser = Browser::new(&server.url);
    let (page, _) = code_tab(&browser, &client_id, "email_otp").await;
    let (known_status, known) = send_code(&browser, &page, "email", "known@example.com").await;
    let (unknown_status, unknown) = send_code(&browser, &page, "email", "nobody@example.com").await;
    assert_eq!((known_status, unknown_status), (200, 200));
    let normalize = |page: &str, email: &str| {
        page.replace(&hidden(page, "challenge"), "CHALLENGE")
            .replace(email, "EMAIL")
            .replace(&format!("{}***@", &email[..1]), "E***@")
    };
    assert_eq!(
        normalize(&known, "known@example.com"),
        normalize(&unknown, "nobody@example.com")
    );
    outbox_code(&server, "known@example.com", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let outbox = server.app().delivery.outbox.recent();
    assert_eq!(
        outbox.len(),
        1,
        "nothing is sent to an address without an account"
    );
    // Every code is wrong for it (sign-up is off), and says so in the same words.
    let (status, page) = verify_code(&browser, &unknown, "123456").await;
    assert_eq!(status, 401);
    assert!(page.contains("4 tries left"));
    assert!(
        tessera::store::users::find_by_email(&server.app().store, &org, "nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_works_only_in_the_browser_that_asked_for_it() {
    let server = TestServer::start().await;
    let org = server.app().default_org.id.clone();
    set_methods(&server, &org, |c| c.email_otp.enabled = true).await;
    let (client_id, _) = server.client(false, REDIRECT).await;
    server.user("ada@example.com").await;

    let asking = Browser::new(&server.url);
    let (page, _) = code_tab(&asking, &client_id, "email_otp").await;
    let (_, entry) = send_code(&asking, &page, "email", "ada@example.com").await;
    let code = outbox_code(&server, "ada@example.com", 1).await;

    // Another browser with its own parked request, and the stolen challenge and code.
    let other = Browser::new(&server.url);
    let (other_page, _) = code_tab(&other, &client_id, "email_otp").await;
    let mut form = vec![
        ("request".to_owned(), hidden(&other_page, "request")),
        ("csrf".to_owned(), hidden(&other_page, "csrf")),
    ];
    for field in ["challenge", "channel", "address"] {
        form.push((field.to_owned(), hidden(&entry, field)));
    }
    form.push(("code".to_owned(), code.clone()));
    let response = other
        .http
        .post(format!("{}/login/code/verify", server.url))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // The asking browser still can.
    let (status, _) = verify_code(&asking, &entry, &code).await;
    assert_eq!(status, 303);
}

//! Organizations and their sign-in methods (issue 7): what the hosted page renders and
//! accepts follows the organization's `auth_config` on the next load, the lock-out guard,
//! organization isolation, the reauthentication claim and the audit trail of sign-ins.

mod common;

use common::otp::{
    REDIRECT, outbox_code, post_form, send_code, set_methods, sign_in_page, verify_code,
};
use common::passkey::server as localhost_server;
use common::{Browser, Landing, PASSWORD, TestServer, claims_of, exchange, hidden};
use serde_json::json;
use tessera::admin::{Actor, AdminError};
use tessera::authn::methods::{AuthConfig, Method};

fn has(page: &str, id: &str) -> bool {
    page.contains(&format!("id=\"{id}\""))
}

#[tokio::test(flavor = "multi_thread")]
async fn toggling_each_method_changes_what_the_page_renders_and_accepts() {
    // A hostname issuer, so that passkeys are possible on this deployment.
    let server = localhost_server().await;
    let org = server.app().default_org.id.clone();
    let (client_id, _) = server.client(false, REDIRECT).await;
    server.user("ada@example.com").await;
    let browser = Browser::new(&server.issuer());
    let (page, _) = sign_in_page(&browser, &client_id).await;

    // The defaults: password, passkey and QR; no codes, so no tabs.
    assert!(has(&page, "login-form") && has(&page, "passkey-sign-in") && has(&page, "qr-login"));
    assert!(!has(&page, "otp-form") && !page.contains("class=\"tabs\""));

    // Codes on: both appear as tabs beside the password.
    set_methods(&server, &org, |c| {
        c.email_otp.enabled = true;
        c.phone_otp.enabled = true;
    })
    .await;
    let request = hidden(&page, "request");
    let reload = |method: &str| format!("/login?request={request}&method={method}");
    let page = browser.text(&reload("password")).await;
    for tab in ["tab-password", "tab-email_otp", "tab-phone_otp"] {
        assert!(has(&page, tab), "{tab} missing");
    }
    let email_tab = browser.text(&reload("email_otp")).await;
    assert!(has(&email_tab, "otp-form") && !has(&email_tab, "login-form"));
    assert!(email_tab.contains("value=\"email\""));
    let phone_tab = browser.text(&reload("phone_otp")).await;
    assert!(phone_tab.contains("type=\"tel\"") && phone_tab.contains("value=\"sms\""));

    // Password off: no form, and a posted password is refused even when it is right.
    set_methods(&server, &org, |c| c.password.enabled = false).await;
    let page = browser.text(&reload("password")).await;
    assert!(!has(&page, "login-form") && !has(&page, "tab-password"));
    assert!(
        has(&page, "otp-form"),
        "the first enabled form method is shown instead"
    );
    let csrf = hidden(&page, "csrf");
    let (status, body) = post_form(
        &browser,
        "/login",
        &[
            ("request", &request),
            ("csrf", &csrf),
            ("email", "ada@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("does not offer sign-in by password"));
    assert!(!browser.cookie_header().contains("tessera_session"));

    // Passkey off: no button, and the ceremony endpoints refuse.
    set_methods(&server, &org, |c| c.passkey.enabled = false).await;
    let page = browser.text(&reload("email_otp")).await;
    assert!(!has(&page, "passkey-sign-in") && !page.contains("webauthn.js"));
    let response = browser
        .http
        .post(format!("{}/login/passkey/options", browser.base))
        .json(&json!({ "request": request, "csrf": csrf }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // QR off: no section, and starting one is refused.
    set_methods(&server, &org, |c| c.qr.enabled = false).await;
    let page = browser.text(&reload("email_otp")).await;
    assert!(!has(&page, "qr-login") && !page.contains("qr.js"));
    let response = browser
        .http
        .post(format!("{}/qr/start", browser.base))
        .json(&json!({
            "request": request,
            "csrf": csrf,
            "key": { "kty": "EC", "crv": "P-256", "x": "A".repeat(43), "y": "A".repeat(43) },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Text codes off: the tab goes, and a send for it is refused.
    set_methods(&server, &org, |c| c.phone_otp.enabled = false).await;
    let page = browser.text(&reload("phone_otp")).await;
    assert!(!has(&page, "tab-phone_otp") && !page.contains("class=\"tabs\""));
    let (status, _) = send_code(&browser, &page, "sms", "+447700900123").await;
    assert_eq!(status, 403);
    assert!(server.app().delivery.outbox.recent().is_empty());

    // And back: password on again is accepted on the same parked request.
    set_methods(&server, &org, |c| c.password.enabled = true).await;
    let page = browser.text(&reload("password")).await;
    assert!(has(&page, "login-form"));
    let landing = browser
        .submit_login(&page, "ada@example.com", PASSWORD)
        .await;
    assert!(matches!(landing, Landing::Client(q) if q.contains_key("code")));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lock_out_guard_refuses_configurations_nobody_could_sign_in_with() {
    let server = TestServer::start().await;
    let app = server.app();
    let store = &app.store;
    let other = tessera::admin::orgs::create(store, &Actor::cli(), "empty", "Empty Inc")
        .await
        .unwrap();
    let save = |org: String, config: AuthConfig| async move {
        tessera::admin::orgs::set_auth_config(store, &Actor::cli(), &org, &config, true).await
    };
    let mut none = AuthConfig::default();
    for m in Method::ALL {
        none.set_enabled(m, false);
    }
    let invalid = |r: Result<(), AdminError>| match r {
        Err(AdminError::Invalid(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let org = app.default_org.id.clone();
    assert!(invalid(save(org.clone(), none.clone()).await).contains("at least one"));
    let mut qr_only = none.clone();
    qr_only.qr.enabled = true;
    assert!(invalid(save(org.clone(), qr_only).await).contains("QR"));

    // The default organization has an account with a password and nothing else.
    server.user("ada@example.com").await;
    let mut passkey_only = none.clone();
    passkey_only.passkey.enabled = true;
    assert!(
        invalid(save(org.clone(), passkey_only.clone()).await).contains("no account has a passkey")
    );
    let mut phone_only = none.clone();
    phone_only.phone_otp.enabled = true;
    assert!(
        invalid(save(org.clone(), phone_only.clone()).await)
            .contains("no account has a phone number")
    );
    // Email codes reach every account.
    let mut email_only = none.clone();
    email_only.email_otp.enabled = true;
    save(org.clone(), email_only).await.unwrap();
    // A phone number on file makes text codes enough.
    let ada = tessera::store::users::find_by_email(store, &org, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    tessera::store::users::set_phone(store, &ada.id, Some("+447700900123"), false)
        .await
        .unwrap();
    save(org.clone(), phone_only).await.unwrap();
    // An organization without accounts locks nobody out.
    save(other.id.clone(), passkey_only).await.unwrap();

    // Nothing refused was stored; the audit log holds the accepted changes by the CLI.
    let stored = tessera::store::orgs::find(store, &org)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.auth_config().unwrap().phone_otp.enabled);
    let entries = tessera::store::audit::list(store, Some(&org), Some("org.auth_config"), 10)
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .all(|e| e.actor == "cli" && e.outcome == "success")
    );

    // An organization admin cannot touch another organization's configuration.
    let scoped = Actor {
        name: "user:x".into(),
        org_id: Some(other.id.clone()),
        ip: None,
    };
    let refused =
        tessera::admin::orgs::set_auth_config(store, &scoped, &org, &AuthConfig::default(), true)
            .await;
    assert!(matches!(refused, Err(AdminError::Forbidden(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_of_one_organization_cannot_sign_in_to_another_organizations_client() {
    let server = TestServer::start().await;
    let store = &server.app().store;
    let acme = tessera::admin::orgs::create(store, &Actor::cli(), "acme", "Acme")
        .await
        .unwrap();
    let (acme_client, _) = tessera::admin::create_client(
        store,
        tessera::admin::NewClient {
            org_id: &acme.id,
            name: "Acme app",
            redirect_uris: &[REDIRECT.to_owned()],
            post_logout_redirect_uris: &[],
            public: true,
            id: None,
            secret: None,
            backchannel_logout_uri: None,
        },
    )
    .await
    .unwrap();
    set_methods(&server, &acme.id, |c| c.email_otp.enabled = true).await;
    let (default_client, secret) = server.client(false, REDIRECT).await;
    server.user("ada@example.com").await; // default organization only

    // Password: the account does not exist in Acme.
    let browser = Browser::new(&server.url);
    let (page, _) = sign_in_page(&browser, &acme_client).await;
    assert!(page.contains("Acme app"));
    match browser
        .submit_login(&page, "ada@example.com", PASSWORD)
        .await
    {
        Landing::Page(401, body) => assert!(body.contains("incorrect")),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Email code: nothing is sent for an address Acme does not know.
    let page = browser
        .text(&format!(
            "/login?request={}&method=email_otp",
            hidden(&page, "request")
        ))
        .await;
    let (status, _) = send_code(&browser, &page, "email", "ada@example.com").await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(server.app().delivery.outbox.recent().is_empty());

    // A session in the default organization is not reused for Acme's client.
    let (signed_in, _) = common::sign_in(
        &server,
        &default_client,
        secret.as_deref(),
        "ada@example.com",
    )
    .await;
    let (page, _) = sign_in_page(&signed_in, &acme_client).await;
    assert!(
        page.contains("id=\"login-form\""),
        "Acme asks for its own sign-in"
    );
    assert!(!page.contains("Confirm it"));
}

#[tokio::test(flavor = "multi_thread")]
async fn can_reauthenticate_counts_only_methods_the_organization_enabled() {
    let server = TestServer::start_with(|c| {
        c.rate_limits.otp_send_per_ip.max_failures = 100;
        c.rate_limits.otp_send_per_address.max_failures = 100;
    })
    .await;
    let org = server.app().default_org.id.clone();
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("ada@example.com").await;
    set_methods(&server, &org, |c| {
        c.email_otp.enabled = true;
        c.signup.mode = tessera::authn::methods::SignupMode::Open;
    })
    .await;

    let claim = |tokens: &serde_json::Value| {
        claims_of(tokens["id_token"].as_str().unwrap())["can_reauthenticate"].clone()
    };
    let code_sign_in = |email: &'static str| {
        let server = &server;
        let client_id = client_id.clone();
        let secret = secret.clone();
        async move {
            let browser = Browser::new(&server.url);
            let (page, verifier) = sign_in_page(&browser, &client_id).await;
            let page = browser
                .text(&format!(
                    "/login?request={}&method=email_otp",
                    hidden(&page, "request")
                ))
                .await;
            let sent_before = server
                .app()
                .delivery
                .outbox
                .recent()
                .iter()
                .filter(|m| m.to == email)
                .count();
            let (status, page) = send_code(&browser, &page, "email", email).await;
            assert_eq!(status, 200, "{page}");
            let code = outbox_code(server, email, sent_before + 1).await;
            let (status, location) = verify_code(&browser, &page, &code).await;
            assert_eq!(status, 303, "{location}");
            let q = browser.follow(&location).await.params();
            let (status, tokens) = exchange(
                server,
                &client_id,
                secret.as_deref(),
                &q["code"],
                REDIRECT,
                &verifier,
            )
            .await;
            assert_eq!(status, 200, "{tokens}");
            tokens
        }
    };

    // A password counts while passwords are on.
    let tokens = code_sign_in("ada@example.com").await;
    let claims = claims_of(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["otp", "email"]));
    assert_eq!(claims["acr"], "1");
    assert_eq!(claim(&tokens), json!(true));
    // A new account made by its first email code has no password: by default a verified
    // email does not count.
    let tokens = code_sign_in("new@example.com").await;
    assert_eq!(claim(&tokens), json!(false));
    let new = tessera::store::users::find_by_email(&server.app().store, &org, "new@example.com")
        .await
        .unwrap()
        .expect("signed up by the code");
    assert!(new.email_verified && new.password_hash.is_none());
    // The organization lets email codes count.
    set_methods(&server, &org, |c| {
        c.email_otp.counts_for_reauthentication = true
    })
    .await;
    let tokens = code_sign_in("new@example.com").await;
    assert_eq!(claim(&tokens), json!(true));
    // Passwords off: Ada's password no longer counts, her verified email does.
    set_methods(&server, &org, |c| {
        c.password.enabled = false;
        c.email_otp.counts_for_reauthentication = false;
    })
    .await;
    let tokens = code_sign_in("ada@example.com").await;
    assert_eq!(claim(&tokens), json!(false));

    // Every sign-in outcome is in the audit log.
    let entries =
        tessera::store::audit::list(&server.app().store, Some(&org), Some("sign_in."), 50)
            .await
            .unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.action == "sign_in.email_otp" && e.outcome == "success")
            .count(),
        4
    );
}

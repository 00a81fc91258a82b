//! The admin console's sign-in providers page: an admin adds, edits and deletes an upstream
//! OpenID provider through the same calls as the admin API; the client secret is write-only
//! (an empty field keeps it), domain errors come back as the page's message, and the sign-in
//! page shows a button exactly while the provider is configured and enabled.

mod common;

use common::{Browser, Landing, PASSWORD, TestServer, hidden};
use tessera::admin::NewUser;
use tessera::store::{orgs, users};

const ISSUER: &str = "http://127.0.0.1:9/upstream";

async fn admin_console(server: &TestServer) -> (Browser, String) {
    let store = &server.app().store;
    let org = server.app().default_org.clone();
    let user = tessera::admin::create_user(
        store,
        NewUser {
            org_id: &org.id,
            email: "admin@example.com",
            name: None,
            password: Some(PASSWORD.into()),
            email_verified: true,
        },
    )
    .await
    .unwrap();
    users::set_role(store, &user.id, users::ROLE_ADMIN)
        .await
        .unwrap();
    let browser = Browser::new(&server.url);
    let Landing::Page(200, page) = browser.follow("/admin/login").await else {
        panic!("no sign-in page for the admin console");
    };
    let Landing::Page(200, page) = browser
        .submit_login(&page, "admin@example.com", PASSWORD)
        .await
    else {
        panic!("the console sign-in failed");
    };
    let csrf = hidden(&page, "csrf");
    (browser, csrf)
}

/// A form post from `browser`: (status, body, Location).
async fn post(browser: &Browser, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let response = browser
        .http
        .post(format!("{}{path}", browser.base))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, response.text().await.unwrap(), location)
}

async fn providers_page(browser: &Browser) -> String {
    let response = browser
        .http
        .get(format!("{}/admin/providers", browser.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

/// The sign-in page of a fresh authorization request, in a browser of its own.
async fn sign_in_page(server: &TestServer, client_id: &str) -> String {
    let url = format!(
        "/authorize?client_id={client_id}&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=code&scope=openid&state=s&nonce=n&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    let Landing::Page(200, page) = Browser::new(&server.url).follow(&url).await else {
        panic!("no sign-in page");
    };
    page
}

async fn stored(server: &TestServer) -> Vec<tessera::authn::upstream::UpstreamProvider> {
    orgs::find(&server.app().store, &server.app().default_org.id)
        .await
        .unwrap()
        .unwrap()
        .auth_config()
        .unwrap()
        .upstream
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_adds_edits_and_deletes_a_provider_in_the_console() {
    let server = TestServer::start().await;
    let (client_id, _) = server.client(false, "https://rp.example/cb").await;
    let (browser, csrf) = admin_console(&server).await;
    let page = providers_page(&browser).await;
    assert!(page.contains("No sign-in providers yet."), "{page}");
    assert!(
        !sign_in_page(&server, &client_id)
            .await
            .contains("upstream-acme")
    );

    // Added, with a secret.
    let add = |id: &'static str, issuer: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("new", "1".into()),
            ("id", id.into()),
            ("kind", "oidc".into()),
            ("display_name", "Acme SSO".into()),
            ("issuer", issuer.into()),
            ("client_id", "tessera-at-acme".into()),
            ("client_secret", "first-secret".into()),
            ("scopes", "openid email".into()),
            ("enabled", "on".into()),
            ("create_accounts", "on".into()),
        ]
    };
    let form = add("acme", ISSUER);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body, location) = post(&browser, "/admin/providers", &form).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/admin/providers?notice=provider-saved"),
        "{body}"
    );
    let page = providers_page(&browser).await;
    assert!(page.contains("data-provider=\"acme\""), "{page}");
    assert!(
        page.contains("<span class=\"provider-secret\">set</span>"),
        "{page}"
    );
    assert!(!page.contains("first-secret"), "the secret is never shown");
    let saved = stored(&server).await;
    assert_eq!(saved.len(), 1);
    let sealed = saved[0]
        .client_secret_sealed
        .clone()
        .expect("secret stored");
    assert!(!sealed.contains("first-secret"), "sealed, not plain");
    assert_eq!(saved[0].scopes, ["openid", "email"]);
    assert!(saved[0].create_accounts && !saved[0].trusted_for_email);
    assert!(
        sign_in_page(&server, &client_id)
            .await
            .contains("id=\"upstream-acme\"")
    );

    // The same id again is refused as the page's message, not replaced.
    let (status, body, _) = post(&browser, "/admin/providers", &form).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("id=\"provider-error\""), "{body}");
    // A bad issuer is the page's message too.
    let bad = add("other", "ftp://example.com/");
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body, _) = post(&browser, "/admin/providers", &bad).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("id=\"provider-error\""), "{body}");
    assert_eq!(stored(&server).await.len(), 1);

    // Edited with the secret field empty: the secret is kept; the checkboxes are what was sent.
    let (status, body, location) = post(
        &browser,
        "/admin/providers",
        &[
            ("csrf", &csrf),
            ("id", "acme"),
            ("kind", "oidc"),
            ("display_name", "Acme Single Sign-On"),
            ("issuer", ISSUER),
            ("client_id", "tessera-at-acme-2"),
            ("client_secret", ""),
            ("scopes", "openid email profile"),
            ("enabled", "on"),
            ("trusted_for_email", "on"),
            ("reauthenticate_upstream", "on"),
        ],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/admin/providers?notice=provider-saved"),
        "{body}"
    );
    let saved = stored(&server).await;
    assert_eq!(saved[0].display_name, "Acme Single Sign-On");
    assert_eq!(saved[0].client_id, "tessera-at-acme-2");
    assert_eq!(
        saved[0].client_secret_sealed.as_deref(),
        Some(sealed.as_str())
    );
    assert!(saved[0].trusted_for_email && saved[0].reauthenticate_upstream);
    assert!(!saved[0].create_accounts);
    assert!(
        sign_in_page(&server, &client_id)
            .await
            .contains("Continue with Acme Single Sign-On")
    );

    // Disabled: no button. Secret removed on request.
    let (status, body, _) = post(
        &browser,
        "/admin/providers",
        &[
            ("csrf", &csrf),
            ("id", "acme"),
            ("kind", "oidc"),
            ("display_name", "Acme Single Sign-On"),
            ("issuer", ISSUER),
            ("client_id", "tessera-at-acme-2"),
            ("remove_secret", "on"),
        ],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let saved = stored(&server).await;
    assert!(!saved[0].enabled && saved[0].client_secret_sealed.is_none());
    assert!(
        providers_page(&browser)
            .await
            .contains("<span class=\"provider-secret\">not set</span>")
    );
    assert!(
        !sign_in_page(&server, &client_id)
            .await
            .contains("upstream-acme")
    );

    // Both changes were audited, as the console admin.
    let audit = tessera::store::audit::list(
        &server.app().store,
        Some(&server.app().default_org.id),
        None,
        100,
    )
    .await
    .unwrap();
    let puts = audit
        .iter()
        .filter(|e| e.action == "org.upstream.put" && e.actor.starts_with("user:"))
        .count();
    assert!(puts >= 3, "{audit:?}");

    // Deleted.
    let (status, body, location) = post(
        &browser,
        "/admin/providers/delete",
        &[("csrf", &csrf), ("id", "acme")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/admin/providers?notice=provider-deleted"),
        "{body}"
    );
    assert!(stored(&server).await.is_empty());
    assert!(
        providers_page(&browser)
            .await
            .contains("No sign-in providers yet.")
    );
    assert!(audit_has(&server, "org.upstream.delete").await);
}

async fn audit_has(server: &TestServer, action: &str) -> bool {
    tessera::store::audit::list(
        &server.app().store,
        Some(&server.app().default_org.id),
        None,
        100,
    )
    .await
    .unwrap()
    .iter()
    .any(|e| e.action == action)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_to_the_providers_page_gets_no_5xx() {
    let server = TestServer::start().await;
    let (browser, csrf) = admin_console(&server).await;
    let huge = "x".repeat(12_000);
    let forms: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![
            ("csrf", "wrong"),
            ("new", "1"),
            ("id", "a"),
            ("kind", "oidc"),
        ],
        vec![("csrf", &csrf)],
        vec![("csrf", &csrf), ("new", "1")],
        vec![("csrf", &csrf), ("new", "1"), ("id", "a"), ("kind", "nope")],
        vec![
            ("csrf", &csrf),
            ("new", "1"),
            ("id", "UPPER CASE"),
            ("kind", "oidc"),
            ("display_name", "x"),
            ("client_id", "c"),
            ("issuer", ISSUER),
        ],
        vec![
            ("csrf", &csrf),
            ("new", "1"),
            ("id", "a"),
            ("kind", "oidc"),
            ("display_name", &huge),
            ("client_id", &huge),
            ("issuer", &huge),
            ("client_secret", &huge),
            ("scopes", &huge),
        ],
        vec![
            ("csrf", &csrf),
            ("new", "1"),
            ("id", "a"),
            ("kind", "oidc"),
            ("display_name", "x"),
            ("client_id", "c"),
            ("issuer", "not a url"),
        ],
        vec![
            ("csrf", &csrf),
            ("new", "1"),
            ("id", "a"),
            ("kind", "auth0"),
            ("display_name", "x"),
            ("client_id", "c"),
            ("issuer", "bad/domain?x"),
        ],
        vec![
            ("csrf", &csrf),
            ("new", "1"),
            ("id", "a"),
            ("kind", "oidc"),
            ("display_name", "x"),
            ("client_id", "c\u{7}"),
            ("issuer", ISSUER),
        ],
        vec![
            ("csrf", &csrf),
            ("new", "1"),
            ("id", "a"),
            ("kind", "oidc"),
            ("display_name", "x"),
            ("client_id", "c"),
            ("issuer", ISSUER),
            ("client_secret", "a\nb"),
        ],
        // Editing or deleting what does not exist.
        vec![
            ("csrf", &csrf),
            ("id", "missing"),
            ("kind", "oidc"),
            ("display_name", "x"),
            ("client_id", "c"),
            ("issuer", ISSUER),
        ],
        vec![("csrf", &csrf), ("id", &huge)],
    ];
    for path in ["/admin/providers", "/admin/providers/delete"] {
        for form in &forms {
            let (status, body, _) = post(&browser, path, form).await;
            assert!(
                (300..500).contains(&status),
                "{path} {form:?}: {status} {body}"
            );
        }
        // Raw garbage bodies.
        let response = browser
            .http
            .post(format!("{}{path}", browser.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("%%%&&==\u{0}csrf=%ZZ")
            .send()
            .await
            .unwrap();
        assert!(response.status().as_u16() < 500);
        // Wrong method.
        let response = browser
            .http
            .put(format!("{}{path}", browser.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405);
    }
    // Nothing was saved, and anonymous visitors are sent to sign in.
    assert!(stored(&server).await.is_empty());
    let response = common::plain_client()
        .get(format!("{}/admin/providers", server.url))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection());
}

//! The admin console (`/admin`): admins sign in through Tessera itself, change their
//! organization's sign-in methods (behind the lock-out guard) and branding, manage its clients
//! and users, and read its audit log; nobody else gets in, no form works without the session's
//! CSRF token, and no id of another organization can be touched.

mod common;

use common::{Browser, Landing, PASSWORD, TestServer, hidden};
use tessera::admin::{Actor, NewClient, NewUser};
use tessera::authn::methods::{AuthConfig, SignupMode};
use tessera::store::orgs::Organization;
use tessera::store::{clients, orgs, users};

/// Creates an account with [`PASSWORD`] in `org_id`; an admin of it when `admin`.
async fn account(server: &TestServer, org_id: &str, email: &str, admin: bool) -> String {
    let store = &server.app().store;
    let user = tessera::admin::create_user(
        store,
        NewUser {
            org_id,
            email,
            name: None,
            password: Some(PASSWORD.into()),
            email_verified: true,
        },
    )
    .await
    .unwrap();
    if admin {
        users::set_role(store, &user.id, users::ROLE_ADMIN)
            .await
            .unwrap();
    }
    user.id
}

/// Signs `email` in at `/admin/login[?org=slug]` and returns the browser with the page the
/// sign-in ended on (the console for an admin).
async fn console(server: &TestServer, org: Option<&str>, email: &str) -> (Browser, u16, String) {
    let browser = Browser::new(&server.url);
    let start = match org {
        Some(slug) => format!("/admin/login?org={slug}"),
        None => "/admin/login".to_owned(),
    };
    let Landing::Page(200, page) = browser.follow(&start).await else {
        panic!("no sign-in page for the admin console");
    };
    assert!(page.contains("id=\"login-form\""), "{page}");
    let Landing::Page(status, body) = browser.submit_login(&page, email, PASSWORD).await else {
        panic!("the console sign-in left Tessera");
    };
    (browser, status, body)
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

async fn get(browser: &Browser, path: &str) -> (u16, String) {
    let response = browser
        .http
        .get(format!("{}{path}", browser.base))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn stored_config(server: &TestServer, org_id: &str) -> AuthConfig {
    orgs::find(&server.app().store, org_id)
        .await
        .unwrap()
        .unwrap()
        .auth_config()
        .unwrap()
}

async fn second_org(server: &TestServer) -> Organization {
    tessera::admin::orgs::create(&server.app().store, &Actor::cli(), "beta", "Beta Inc")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_toggles_methods_and_the_guard_explains_refusals() {
    let server = TestServer::start().await;
    let org = server.app().default_org.clone();
    let admin_id = account(&server, &org.id, "admin@example.com", true).await;
    let (browser, status, page) = console(&server, None, "admin@example.com").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Default organization"),
        "the org's name on top"
    );
    assert!(page.contains("id=\"method-password\" checked"), "{page}");
    let csrf = hidden(&page, "csrf");

    // Password off, email codes on (which anyone with an address can use).
    let (status, _, location) = post(
        &browser,
        "/admin/methods",
        &[
            ("csrf", &csrf),
            ("passkey", "on"),
            ("qr", "on"),
            ("email_otp", "on"),
            ("email_otp_reauth", "on"),
        ],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/admin?notice=methods-saved")
    );
    // The hosted page of a client of this organization follows on its next load.
    let (client_id, _) = server.client(true, common::otp::REDIRECT).await;
    let visitor = Browser::new(&server.url);
    let (sign_in, _) = common::otp::sign_in_page(&visitor, &client_id).await;
    assert!(!sign_in.contains("id=\"login-form\"") && sign_in.contains("id=\"otp-form\""));
    let config = stored_config(&server, &org.id).await;
    assert!(!config.password.enabled && config.email_otp.enabled);
    assert!(config.email_otp.counts_for_reauthentication);
    assert!(!config.phone_otp.enabled && config.signup.mode == SignupMode::Closed);
    let (_, page) = get(&browser, "/admin?notice=methods-saved").await;
    assert!(page.contains("Sign-in methods saved."));
    assert!(!page.contains("id=\"method-password\" checked"), "{page}");
    assert!(page.contains("id=\"method-email_otp\" checked"), "{page}");

    // And back on.
    let (status, _, _) = post(
        &browser,
        "/admin/methods",
        &[
            ("csrf", &csrf),
            ("password", "on"),
            ("signup_mode", "open"),
            ("signup_domains", "@Example.com, example.org"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let config = stored_config(&server, &org.id).await;
    assert!(config.password.enabled && !config.email_otp.enabled);
    assert_eq!(config.signup.mode, SignupMode::Open);
    assert_eq!(
        config.signup.allowed_domains,
        ["example.com", "example.org"]
    );
    let (sign_in, _) = common::otp::sign_in_page(&visitor, &client_id).await;
    assert!(sign_in.contains("id=\"login-form\"") && !sign_in.contains("id=\"otp-form\""));

    // The lock-out guard: passkeys alone, on a deployment that cannot offer them (the test
    // issuer is an IP address) and with no account holding one.
    let (status, page, _) = post(
        &browser,
        "/admin/methods",
        &[("csrf", &csrf), ("passkey", "on")],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("would lock every account out"), "{page}");
    assert!(page.contains("id=\"methods-error\""));
    // The form comes back as submitted, not as stored.
    assert!(page.contains("id=\"method-passkey\" checked"));
    assert!(!page.contains("id=\"method-password\" checked"));
    // QR alone fails the static half of the guard.
    let (status, page, _) =
        post(&browser, "/admin/methods", &[("csrf", &csrf), ("qr", "on")]).await;
    assert_eq!(status, 400);
    assert!(
        page.contains("QR sign-in cannot be the only method"),
        "{page}"
    );
    let (status, page, _) = post(&browser, "/admin/methods", &[("csrf", &csrf)]).await;
    assert_eq!(status, 400);
    assert!(page.contains("at least one sign-in method"), "{page}");
    assert!(
        stored_config(&server, &org.id).await.password.enabled,
        "nothing refused is saved"
    );

    // Branding.
    let (status, _, location) = post(
        &browser,
        "/admin/branding",
        &[
            ("csrf", &csrf),
            ("name", "Acme Corp"),
            ("logo_url", "https://acme.example/logo.png"),
            ("primary_color", "#112233"),
        ],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/admin?notice=branding-saved")
    );
    let stored = orgs::find(&server.app().store, &org.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "Acme Corp");
    assert_eq!(stored.primary_color.as_deref(), Some("#112233"));
    let (status, page, _) = post(
        &browser,
        "/admin/branding",
        &[("csrf", &csrf), ("name", "Acme"), ("primary_color", "red")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("primary_color must look like"), "{page}");
    assert!(
        page.contains("value=\"red\""),
        "the refused form as submitted"
    );

    // Every change is in the audit log, under the admin's name.
    let (status, audit) = get(&browser, "/admin/audit").await;
    assert_eq!(status, 200);
    assert!(audit.contains("Acme Corp"), "the new name on top: {audit}");
    assert_eq!(
        audit
            .matches("data-action=\"org.auth_config.update\"")
            .count(),
        2,
        "two saves, no refused ones: {audit}"
    );
    assert!(audit.contains("data-action=\"org.branding.update\""));
    assert!(audit.contains(&format!("user:{admin_id}")));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_get_in() {
    let server = TestServer::start().await;
    let org = server.app().default_org.clone();
    account(&server, &org.id, "member@example.com", false).await;

    // No session: the console starts a sign-in with the organization's console client.
    let anonymous = Browser::new(&server.url);
    let response = anonymous
        .http
        .get(format!("{}/admin", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["location"], "/admin/login");
    let response = anonymous
        .http
        .get(format!("{}/admin/login", server.url))
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let expected_client = format!("tessera-admin-{}", org.id);
    assert_eq!(common::query_of(&location)["client_id"], expected_client);
    let client = clients::find(&server.app().store, &expected_client)
        .await
        .unwrap()
        .expect("console client created on demand");
    assert_eq!(client.org_id, org.id);
    assert!(client.is_public());
    let (status, _) = get(&anonymous, "/admin/login?org=nope").await;
    assert_eq!(status, 404);
    let (status, _, _) = post(&anonymous, "/admin/methods", &[("password", "on")]).await;
    assert_eq!(status, 401);

    // A member signs in fine but is refused every page and form.
    let (browser, status, page) = console(&server, None, "member@example.com").await;
    assert_eq!(status, 403, "{page}");
    assert!(
        page.contains("Your account is not an administrator of Default organization"),
        "{page}"
    );
    for path in ["/admin", "/admin/clients", "/admin/users", "/admin/audit"] {
        assert_eq!(get(&browser, path).await.0, 403, "{path}");
    }
    let (status, _, _) = post(
        &browser,
        "/admin/methods",
        &[("csrf", "anything"), ("email_otp", "on")],
    )
    .await;
    assert_eq!(status, 403);
    assert!(stored_config(&server, &org.id).await.password.enabled);
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_without_the_sessions_csrf_token_are_refused() {
    let server = TestServer::start().await;
    let org = server.app().default_org.clone();
    account(&server, &org.id, "a1@example.com", true).await;
    account(&server, &org.id, "a2@example.com", true).await;
    let (browser, status, _) = console(&server, None, "a1@example.com").await;
    assert_eq!(status, 200);
    let (_, _, other_page) = console(&server, None, "a2@example.com").await;
    let other_csrf = hidden(&other_page, "csrf");
    for form in [
        vec![("email_otp", "on")],
        vec![("csrf", ""), ("email_otp", "on")],
        vec![("csrf", "forged"), ("email_otp", "on")],
        // Another session's token is no good either.
        vec![("csrf", other_csrf.as_str()), ("email_otp", "on")],
    ] {
        let (status, page, _) = post(&browser, "/admin/methods", &form).await;
        assert_eq!(status, 403, "{form:?}");
        assert!(page.contains("Form expired"), "{page}");
    }
    let (status, _, _) = post(&browser, "/admin/users", &[("email", "sneaky@example.com")]).await;
    assert_eq!(status, 403);
    assert!(!stored_config(&server, &org.id).await.email_otp.enabled);
    assert!(
        users::find_by_email(&server.app().store, &org.id, "sneaky@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_cannot_see_or_touch_another_organization() {
    let server = TestServer::start().await;
    let store = &server.app().store;
    let org_a = server.app().default_org.clone();
    let org_b = second_org(&server).await;
    account(&server, &org_a.id, "admin-a@example.com", true).await;
    account(&server, &org_b.id, "admin-b@example.com", true).await;
    let b_user = account(&server, &org_b.id, "bob@beta.example", false).await;
    let (b_client, _) = tessera::admin::create_client(
        store,
        NewClient {
            org_id: &org_b.id,
            name: "Beta app",
            redirect_uris: &["https://beta.example/cb".to_owned()],
            post_logout_redirect_uris: &[],
            public: false,
            id: None,
            secret: None,
            backchannel_logout_uri: None,
        },
    )
    .await
    .unwrap();

    let (a, status, _) = console(&server, None, "admin-a@example.com").await;
    assert_eq!(status, 200);
    let (_, users_page) = get(&a, "/admin/users").await;
    let csrf = hidden(&users_page, "csrf");
    assert!(!users_page.contains("bob@beta.example"));
    assert!(!get(&a, "/admin/clients").await.1.contains("Beta app"));

    // Org B's ids posted to org A's forms: not found, and nothing changes.
    for (path, extra) in [
        ("/admin/users/disable", None),
        ("/admin/users/enable", None),
        ("/admin/users/role", Some(("role", "admin"))),
    ] {
        let mut form = vec![("csrf", csrf.as_str()), ("id", b_user.as_str())];
        form.extend(extra);
        let (status, page, _) = post(&a, path, &form).await;
        assert_eq!(status, 404, "{path}: {page}");
    }
    let (status, _, _) = post(
        &a,
        "/admin/clients/delete",
        &[("csrf", &csrf), ("id", &b_client)],
    )
    .await;
    assert_eq!(status, 404);
    // Nor can the console delete Tessera's own clients, B's console client among them.
    let b_console = format!("tessera-admin-{}", org_b.id);
    for id in ["tessera-account", b_console.as_str()] {
        let (status, _, _) =
            post(&a, "/admin/clients/delete", &[("csrf", &csrf), ("id", id)]).await;
        assert_eq!(status, 404, "{id}");
    }
    let bob = users::find(store, &b_user).await.unwrap().unwrap();
    assert!(!bob.disabled && bob.role == users::ROLE_MEMBER);
    assert!(clients::find(store, &b_client).await.unwrap().is_some());

    // B's admin signs in through B's own console client and sees only B.
    let (b, status, page) = console(&server, Some("beta"), "admin-b@example.com").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Beta Inc"));
    assert_eq!(
        clients::find(store, &b_console)
            .await
            .unwrap()
            .unwrap()
            .org_id,
        org_b.id
    );
    let (_, users_page) = get(&b, "/admin/users").await;
    assert!(users_page.contains("bob@beta.example"));
    assert!(!users_page.contains("admin-a@example.com"));
    assert!(get(&b, "/admin/clients").await.1.contains("Beta app"));
    // A's session does not open B's console: B's admin console is per session organization.
    assert!(!get(&a, "/admin").await.1.contains("Beta Inc"));
    // A's audit log holds none of B's entries (B's creation was recorded under B).
    assert!(!get(&a, "/admin/audit").await.1.contains("org.create"));
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_and_users_are_managed_and_every_change_is_audited() {
    let server = TestServer::start().await;
    let store = &server.app().store;
    let org = server.app().default_org.clone();
    let admin_id = account(&server, &org.id, "boss@example.com", true).await;
    let (browser, _, page) = console(&server, None, "boss@example.com").await;
    let csrf = hidden(&page, "csrf");

    // Clients: Tessera's own are not listed.
    let (status, page) = get(&browser, "/admin/clients").await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("tessera-account") && !page.contains("tessera-demo"),
        "{page}"
    );
    let (status, page, _) = post(
        &browser,
        "/admin/clients",
        &[
            ("csrf", &csrf),
            ("name", "Payroll"),
            (
                "redirect_uris",
                "https://payroll.example/cb\r\nhttps://payroll.example/cb2\r\n",
            ),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let id = inner_text(&page, "created-client-id");
    let secret = inner_text(&page, "created-client-secret");
    let client = clients::find(store, &id).await.unwrap().unwrap();
    assert_eq!(client.org_id, org.id);
    assert_eq!(client.redirect_uris.len(), 2);
    assert_eq!(client.secret_hash, Some(tessera::security::digest(&secret)));
    let (_, page) = get(&browser, "/admin/clients").await;
    assert!(
        page.contains("Payroll") && !page.contains(&secret),
        "the secret is shown once"
    );
    let (_, page, _) = post(
        &browser,
        "/admin/clients",
        &[
            ("csrf", &csrf),
            ("name", "SPA"),
            ("redirect_uris", "https://spa.example/cb"),
            ("public", "on"),
        ],
    )
    .await;
    assert!(!page.contains("created-client-secret"));
    assert!(
        clients::find(store, &inner_text(&page, "created-client-id"))
            .await
            .unwrap()
            .unwrap()
            .is_public()
    );
    let (status, page, _) = post(
        &browser,
        "/admin/clients",
        &[
            ("csrf", &csrf),
            ("name", "Broken"),
            ("redirect_uris", "not a uri"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        page.contains("id=\"client-error\"") && page.contains("value=\"Broken\""),
        "{page}"
    );
    let (status, _, location) = post(
        &browser,
        "/admin/clients/delete",
        &[("csrf", &csrf), ("id", &id)],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/admin/clients?notice=client-deleted")
    );
    assert!(clients::find(store, &id).await.unwrap().is_none());

    // Users.
    let (status, _, location) = post(
        &browser,
        "/admin/users",
        &[
            ("csrf", &csrf),
            ("email", "new@example.com"),
            ("name", "New Person"),
            ("password", "a fine password"),
        ],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/admin/users?notice=user-created")
    );
    let new = users::find_by_email(store, &org.id, "new@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(new.password_hash.is_some() && new.role == users::ROLE_MEMBER);
    let (status, page, _) = post(
        &browser,
        "/admin/users",
        &[("csrf", &csrf), ("email", "new@example.com")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("already exists"), "{page}");
    let (status, page, _) = post(
        &browser,
        "/admin/users",
        &[
            ("csrf", &csrf),
            ("email", "short@example.com"),
            ("password", "short"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("at least 8 characters"), "{page}");
    let (_, page) = get(&browser, "/admin/users?q=NEW@").await;
    assert!(
        page.contains("new@example.com") && !page.contains("class=\"user-email\">boss@"),
        "{page}"
    );

    for (path, role) in [
        ("/admin/users/disable", None),
        ("/admin/users/enable", None),
        ("/admin/users/role", Some("admin")),
        ("/admin/users/role", Some("member")),
    ] {
        let mut form = vec![("csrf", csrf.as_str()), ("id", new.id.as_str())];
        form.extend(role.map(|r| ("role", r)));
        let (status, _, location) = post(&browser, path, &form).await;
        assert_eq!(
            (status, location.as_str()),
            (303, "/admin/users?notice=user-updated"),
            "{path}"
        );
        let now = users::find(store, &new.id).await.unwrap().unwrap();
        match (path, role) {
            ("/admin/users/disable", _) => assert!(now.disabled),
            ("/admin/users/enable", _) => assert!(!now.disabled),
            (_, Some(role)) => assert_eq!(now.role, role),
            _ => unreachable!(),
        }
    }
    let (status, _, _) = post(
        &browser,
        "/admin/users/role",
        &[("csrf", &csrf), ("id", &new.id), ("role", "owner")],
    )
    .await;
    assert_eq!(status, 400);
    // An admin cannot lock themselves out.
    let (status, page, _) = post(
        &browser,
        "/admin/users/disable",
        &[("csrf", &csrf), ("id", &admin_id)],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    assert!(
        !users::find(store, &admin_id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );

    let (_, audit) = get(&browser, "/admin/audit").await;
    for action in [
        "client.create",
        "client.delete",
        "user.create",
        "user.disable",
        "user.enable",
        "user.role.update",
    ] {
        assert!(
            audit.contains(&format!("data-action=\"{action}\"")),
            "{action}: {audit}"
        );
    }
    assert_eq!(audit.matches("data-action=\"client.create\"").count(), 2);
    assert_eq!(audit.matches("data-action=\"user.role.update\"").count(), 2);
    assert!(!audit.contains("a fine password"));
}

/// The text of the element with this id (no nested markup).
fn inner_text(page: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {page}"))
        + marker.len();
    let end = page[start..].find('<').unwrap() + start;
    page[start..end].to_owned()
}

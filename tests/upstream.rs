//! Sign-in through upstream OpenID providers, against real providers over HTTP: a second
//! Tessera (its own data directory and keys), panva's `oidc-provider` under Node, and a small
//! hostile issuer that spoils its ID tokens on request.

mod common;

use common::upstream::{Behaviour, HostileIssuer, RP, Stop, Tamper, Walker};
use common::{PASSWORD, TestServer, authorize_url, claims_of, exchange, plain_client};
use serde_json::{Value, json};
use tessera::admin::{self, Actor};

/// A Tessera whose issuer host is `localhost`, so its cookies do not mix with the
/// downstream's on 127.0.0.1 in one browser.
async fn upstream_tessera() -> TestServer {
    TestServer::start_with(|c| c.issuer = c.issuer.replace("127.0.0.1", "localhost")).await
}

struct Setup {
    down: TestServer,
    token: String,
    client_id: String,
    secret: String,
}

impl Setup {
    async fn new() -> Setup {
        let down = TestServer::start().await;
        let (_, token) = admin::tokens::create(
            &down.app().store,
            &Actor::cli(),
            Some(&down.app().default_org.id),
            "upstream tests",
        )
        .await
        .unwrap();
        let (client_id, secret) = down.client(false, RP).await;
        Setup {
            down,
            token,
            client_id,
            secret: secret.unwrap(),
        }
    }

    fn callback(&self) -> String {
        format!("{}/login/upstream/callback", self.down.url)
    }

    /// PUT an upstream provider through the admin API; returns (status, body).
    async fn put_provider(&self, id: &str, body: Value) -> (u16, Value) {
        let response = plain_client()
            .put(format!(
                "{}/admin/api/v1/orgs/{}/upstream_providers/{id}",
                self.down.url,
                self.down.app().default_org.id
            ))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn provider(&self, id: &str, body: Value) {
        let (status, answer) = self.put_provider(id, body).await;
        assert_eq!(status, 200, "{answer}");
    }

    /// Opens the downstream sign-in page of a fresh authorization request.
    async fn login_page(
        &self,
        walker: &Walker,
        extra: &[(&str, &str)],
    ) -> (String, String, String) {
        let (url, verifier) = authorize_url(&self.down, &self.client_id, RP, extra);
        let (page_url, status, body) = walker.walk(&url).await.page();
        assert_eq!(status, 200, "{body}");
        (page_url, body, verifier)
    }

    /// Redeems the code the RP got; returns the ID token's claims.
    async fn claims(&self, q: &std::collections::HashMap<String, String>, verifier: &str) -> Value {
        let (status, body) = exchange(
            &self.down,
            &self.client_id,
            Some(&self.secret),
            &q["code"],
            RP,
            verifier,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        claims_of(body["id_token"].as_str().unwrap())
    }

    async fn links(&self, user_id: &str) -> usize {
        tessera::store::upstream_identities::list_for_user(&self.down.app().store, user_id)
            .await
            .unwrap()
            .len()
    }
}

/// A second Tessera with `email` (email verified or not) and a client for the downstream.
async fn tessera_upstream(
    setup: &Setup,
    email: &str,
    verified: bool,
) -> (TestServer, String, String) {
    let up = upstream_tessera().await;
    admin::create_user(
        &up.app().store,
        admin::NewUser {
            org_id: &up.app().default_org.id,
            email,
            name: Some("Upstream Person"),
            password: Some(PASSWORD.into()),
            email_verified: verified,
        },
    )
    .await
    .unwrap();
    let (id, secret) = up.client(false, &setup.callback()).await;
    (up, id, secret.unwrap())
}

fn tessera_provider(up: &TestServer, client_id: &str, secret: &str, trusted: bool) -> Value {
    json!({
        "kind": "oidc",
        "display_name": "Upstream Tessera",
        "issuer": up.issuer(),
        "client_id": client_id,
        "client_secret": secret,
        "trusted_for_email": trusted,
    })
}

/// Downstream sign-in page → the upstream button → the upstream Tessera's own sign-in page,
/// where `email` signs in with the password; returns where the browser stopped.
async fn via_upstream_tessera(setup: &Setup, walker: &Walker, email: &str) -> (Stop, String) {
    let (page_url, page, verifier) = setup.login_page(walker, &[]).await;
    assert!(page.contains("Continue with Upstream Tessera"), "{page}");
    let (up_url, status, up_page) = walker.press_upstream(&page_url, &page, "up").await.page();
    assert_eq!(status, 200, "{up_page}");
    assert!(
        up_url.starts_with("http://localhost:"),
        "the upstream's own page: {up_url}"
    );
    let mut stop = walker.password(&up_url, &up_page, email, PASSWORD).await;
    // The upstream (a hostname, so passkeys are possible there) offers a passkey: not now.
    if let Stop::Page(url, 200, page) = &stop
        && page.contains("passkey-not-now")
    {
        let request = common::hidden(page, "request");
        stop = walker
            .post(url, "/passkeys/offer/dismiss", &[("request", &request)])
            .await;
    }
    (stop, verifier)
}

#[tokio::test]
async fn first_sign_in_creates_an_account_and_later_sign_ins_reuse_it() {
    let setup = Setup::new().await;
    let (up, id, secret) = tessera_upstream(&setup, "newcomer@example.com", true).await;
    setup
        .provider("up", tessera_provider(&up, &id, &secret, true))
        .await;

    let walker = Walker::new();
    let (stop, verifier) = via_upstream_tessera(&setup, &walker, "newcomer@example.com").await;
    let claims = setup.claims(&stop.rp(), &verifier).await;
    assert_eq!(claims["email"], "newcomer@example.com");
    // Trusted provider and a verified address: verified here too.
    assert_eq!(claims["email_verified"], true);
    // The upstream Tessera reported `pwd`: passed through.
    assert_eq!(claims["amr"], json!(["pwd"]));
    // Only an upstream link, and the provider does not reauthenticate: nothing re-proves.
    assert_eq!(claims["can_reauthenticate"], false);
    let sub = claims["sub"].as_str().unwrap().to_owned();
    let user = tessera::store::users::find(&setup.down.app().store, &sub)
        .await
        .unwrap()
        .unwrap();
    assert!(user.password_hash.is_none());
    assert_eq!(setup.links(&sub).await, 1);

    // A second sign-in in a fresh browser lands on the same account.
    let walker = Walker::new();
    let (stop, verifier) = via_upstream_tessera(&setup, &walker, "newcomer@example.com").await;
    let again = setup.claims(&stop.rp(), &verifier).await;
    assert_eq!(again["sub"], sub.as_str());
    assert_eq!(setup.links(&sub).await, 1);
}

#[tokio::test]
async fn an_untrusted_provider_creates_accounts_with_unverified_email_or_none_when_told() {
    let setup = Setup::new().await;
    let (up, id, secret) = tessera_upstream(&setup, "someone@example.com", true).await;
    let mut provider = tessera_provider(&up, &id, &secret, false);
    provider["create_accounts"] = json!(false);
    setup.provider("up", provider.clone()).await;
    let walker = Walker::new();
    let (stop, _) = via_upstream_tessera(&setup, &walker, "someone@example.com").await;
    let (_, status, page) = stop.page();
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("No account"), "{page}");
    assert!(page.contains("Choose another way to sign in"), "{page}");

    provider["create_accounts"] = json!(true);
    // The secret is write-only: leaving it out keeps the stored one.
    provider.as_object_mut().unwrap().remove("client_secret");
    setup.provider("up", provider).await;
    let walker = Walker::new();
    let (stop, verifier) = via_upstream_tessera(&setup, &walker, "someone@example.com").await;
    let claims = setup.claims(&stop.rp(), &verifier).await;
    assert_eq!(claims["email_verified"], false);
}

#[tokio::test]
async fn a_trusted_provider_links_a_verified_email_to_the_existing_account() {
    let setup = Setup::new().await;
    let existing = setup.down.user("bob@example.com").await;
    let (up, id, secret) = tessera_upstream(&setup, "bob@example.com", true).await;
    setup
        .provider("up", tessera_provider(&up, &id, &secret, true))
        .await;
    let walker = Walker::new();
    let (stop, verifier) = via_upstream_tessera(&setup, &walker, "bob@example.com").await;
    let claims = setup.claims(&stop.rp(), &verifier).await;
    assert_eq!(claims["sub"], existing.as_str());
    assert_eq!(setup.links(&existing).await, 1);
    // The account keeps its password: it can re-prove presence.
    assert_eq!(claims["can_reauthenticate"], true);
}

#[tokio::test]
async fn an_untrusted_provider_links_only_after_the_account_holder_signs_in() {
    let setup = Setup::new().await;
    let existing = setup.down.user("carol@example.com").await;
    let other = setup.down.user("dave@example.com").await;
    let (up, id, secret) = tessera_upstream(&setup, "carol@example.com", true).await;
    setup
        .provider("up", tessera_provider(&up, &id, &secret, false))
        .await;

    let walker = Walker::new();
    let (stop, verifier) = via_upstream_tessera(&setup, &walker, "carol@example.com").await;
    let (url, status, page) = stop.page();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You already have an account"), "{page}");
    assert_eq!(setup.links(&existing).await, 0, "no silent takeover");

    // Signing in to another account does not make the link.
    let login = url::Url::parse(&url)
        .unwrap()
        .join(&format!("/login?request={}", hidden_request(&page)))
        .unwrap()
        .to_string();
    let (login_url, _, login_page) = walker.walk(&login).await.page();
    let landed = walker
        .password(&login_url, &login_page, "dave@example.com", PASSWORD)
        .await;
    let q = landed.rp();
    let claims = setup.claims(&q, &verifier).await;
    assert_eq!(claims["sub"], other.as_str());
    assert_eq!(setup.links(&other).await, 0);
    assert_eq!(setup.links(&existing).await, 0);

    // Again, and this time the holder of the existing account proves it.
    let walker = Walker::new();
    let (stop, verifier) = via_upstream_tessera(&setup, &walker, "carol@example.com").await;
    let (url, _, page) = stop.page();
    let login = url::Url::parse(&url)
        .unwrap()
        .join(&format!("/login?request={}", hidden_request(&page)))
        .unwrap()
        .to_string();
    let (login_url, _, login_page) = walker.walk(&login).await.page();
    let (linked_url, status, linked) = walker
        .password(&login_url, &login_page, "carol@example.com", PASSWORD)
        .await
        .page();
    assert_eq!(status, 200, "{linked}");
    assert!(linked.contains("Sign-in linked"), "{linked}");
    assert_eq!(setup.links(&existing).await, 1);
    let next = continue_href(&linked);
    let q = walker
        .walk(
            url::Url::parse(&linked_url)
                .unwrap()
                .join(&next)
                .unwrap()
                .as_str(),
        )
        .await
        .rp();
    assert_eq!(setup.claims(&q, &verifier).await["sub"], existing.as_str());

    // From now on the provider alone signs in to that account.
    let walker = Walker::new();
    let (stop, verifier) = via_upstream_tessera(&setup, &walker, "carol@example.com").await;
    assert_eq!(
        setup.claims(&stop.rp(), &verifier).await["sub"],
        existing.as_str()
    );
}

/// The request id the "try another way" link of an upstream page carries.
fn hidden_request(page: &str) -> String {
    let marker = "/login?request=";
    let start = page.find(marker).expect("a link back to the sign-in page") + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].to_owned()
}

fn continue_href(page: &str) -> String {
    let marker = "id=\"upstream-continue\" href=\"";
    let start = page.find(marker).expect("a continue link") + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].replace("&amp;", "&")
}

#[tokio::test]
async fn an_unverified_email_never_links_even_from_a_trusted_provider() {
    let setup = Setup::new().await;
    let existing = setup.down.user("erin@example.com").await;
    let (up, id, secret) = tessera_upstream(&setup, "erin@example.com", false).await;
    setup
        .provider("up", tessera_provider(&up, &id, &secret, true))
        .await;
    let walker = Walker::new();
    let (stop, _) = via_upstream_tessera(&setup, &walker, "erin@example.com").await;
    let (_, status, page) = stop.page();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You already have an account"), "{page}");
    assert_eq!(setup.links(&existing).await, 0);

    // The same with the hostile issuer leaving `email_verified` out altogether.
    let hostile = HostileIssuer::start().await;
    hostile.behave(Behaviour {
        email: Some("erin@example.com".into()),
        email_verified: None,
        ..Behaviour::default()
    });
    setup
        .provider("bad", hostile_provider(&hostile, true))
        .await;
    let walker = Walker::new();
    let (page_url, page, _) = setup.login_page(&walker, &[]).await;
    let (_, status, page) = walker.press_upstream(&page_url, &page, "bad").await.page();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You already have an account"), "{page}");
    assert_eq!(setup.links(&existing).await, 0);
}

fn hostile_provider(hostile: &HostileIssuer, trusted: bool) -> Value {
    json!({
        "kind": "oidc",
        "display_name": "Hostile",
        "issuer": hostile.issuer(),
        "client_id": "downstream",
        "client_secret": "hostile-secret",
        "trusted_for_email": trusted,
    })
}

#[tokio::test]
async fn tampered_upstream_id_tokens_are_refused() {
    let setup = Setup::new().await;
    let hostile = HostileIssuer::start().await;
    setup
        .provider("bad", hostile_provider(&hostile, true))
        .await;
    for tamper in [
        Tamper::Signature,
        Tamper::Audience,
        Tamper::Nonce,
        Tamper::Expired,
    ] {
        hostile.behave(Behaviour {
            tamper,
            ..Behaviour::default()
        });
        let walker = Walker::new();
        let (page_url, page, _) = setup.login_page(&walker, &[]).await;
        let (_, status, page) = walker.press_upstream(&page_url, &page, "bad").await.page();
        assert_eq!(status, 400, "{tamper:?}: {page}");
        assert!(page.contains("could not sign you in"), "{tamper:?}: {page}");
        assert!(page.contains("Choose another way to sign in"), "{tamper:?}");
        let created = tessera::store::users::find_by_email(
            &setup.down.app().store,
            &setup.down.app().default_org.id,
            "mallory@example.com",
        )
        .await
        .unwrap();
        assert!(created.is_none(), "{tamper:?} created an account");
    }
    let refused = audit_reasons(&setup).await;
    assert!(
        refused
            .iter()
            .filter(|r| *r == "upstream_id_token_invalid")
            .count()
            >= 4,
        "{refused:?}"
    );

    // The same issuer with an honest token signs in, with its `amr` passed through.
    hostile.behave(Behaviour {
        amr: Some(vec!["mfa".into(), "hwk".into()]),
        ..Behaviour::default()
    });
    let walker = Walker::new();
    let (page_url, page, verifier) = setup.login_page(&walker, &[]).await;
    let q = walker.press_upstream(&page_url, &page, "bad").await.rp();
    let claims = setup.claims(&q, &verifier).await;
    assert_eq!(claims["email"], "mallory@example.com");
    assert_eq!(claims["amr"], json!(["mfa", "hwk"]));
    // Without `amr` upstream, the sign-in says `fed`.
    hostile.behave(Behaviour::default());
    let walker = Walker::new();
    let (page_url, page, verifier) = setup.login_page(&walker, &[]).await;
    let q = walker.press_upstream(&page_url, &page, "bad").await.rp();
    assert_eq!(setup.claims(&q, &verifier).await["amr"], json!(["fed"]));
}

async fn audit_reasons(setup: &Setup) -> Vec<String> {
    tessera::store::audit::list(
        &setup.down.app().store,
        Some(&setup.down.app().default_org.id),
        None,
        200,
    )
    .await
    .unwrap()
    .into_iter()
    .filter(|e| e.action == "sign_in.upstream" && e.outcome == "failure")
    .filter_map(|e| {
        serde_json::from_str::<Value>(&e.detail).ok()?["reason"]
            .as_str()
            .map(str::to_owned)
    })
    .collect()
}

#[tokio::test]
async fn provider_errors_and_cancellations_come_back_as_pages() {
    let setup = Setup::new().await;
    let hostile = HostileIssuer::start().await;
    setup
        .provider("bad", hostile_provider(&hostile, true))
        .await;
    for (error, status, text) in [
        ("access_denied", 200, "Sign-in cancelled"),
        ("server_error", 400, "reported a problem"),
        ("temporarily_unavailable", 400, "reported a problem"),
    ] {
        hostile.behave(Behaviour {
            authorize_error: Some(error.into()),
            ..Behaviour::default()
        });
        let walker = Walker::new();
        let (page_url, page, _) = setup.login_page(&walker, &[]).await;
        let (url, got, page) = walker.press_upstream(&page_url, &page, "bad").await.page();
        assert_eq!(got, status, "{error}: {page}");
        assert!(page.contains(text), "{error}: {page}");
        // The way back works: the same request's sign-in page, with its other methods.
        let back = url::Url::parse(&url)
            .unwrap()
            .join(&format!("/login?request={}", hidden_request(&page)))
            .unwrap();
        let (_, status, login) = walker.walk(back.as_str()).await.page();
        assert_eq!(status, 200);
        assert!(login.contains("id=\"login-form\""), "{login}");
    }
    // An unreachable provider (nothing listens there) is a page too.
    setup
        .provider(
            "gone",
            json!({ "kind": "oidc", "display_name": "Gone", "issuer": "http://127.0.0.1:9", "client_id": "x" }),
        )
        .await;
    let walker = Walker::new();
    let (page_url, page, _) = setup.login_page(&walker, &[]).await;
    let (_, status, page) = walker.press_upstream(&page_url, &page, "gone").await.page();
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("Gone is not available"), "{page}");
}

#[tokio::test]
async fn disabled_providers_and_replayed_or_foreign_callbacks_are_refused() {
    let setup = Setup::new().await;
    let hostile = HostileIssuer::start().await;
    let mut provider = hostile_provider(&hostile, true);
    setup.provider("bad", provider.clone()).await;

    // Start a trip, keep the callback URL instead of following it.
    let walker = Walker::new();
    let (page_url, page, _) = setup.login_page(&walker, &[]).await;
    let request = common::hidden(&page, "request");
    let csrf = common::hidden(&page, "csrf");
    let response = walker
        .http
        .post(format!("{}/login/upstream", setup.down.url))
        .form(&[
            ("request", request.as_str()),
            ("csrf", &csrf),
            ("provider", "bad"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let authorize = response.headers()["location"].to_str().unwrap().to_owned();
    let callback = plain_client()
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();

    // Another browser cannot use it (and using it spends it).
    let stranger = Walker::new();
    let (_, status, page) = stranger.walk(&callback).await.page();
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("another browser") || page.contains("expired"),
        "{page}"
    );
    // Spent: not even the right browser can replay it.
    let (_, status, _) = walker.walk(&callback).await.page();
    assert_eq!(status, 400);

    // Disabled while a trip is in flight: the callback is refused.
    let response = walker
        .http
        .post(format!("{}/login/upstream", setup.down.url))
        .form(&[
            ("request", request.as_str()),
            ("csrf", &csrf),
            ("provider", "bad"),
        ])
        .send()
        .await
        .unwrap();
    let authorize = response.headers()["location"].to_str().unwrap().to_owned();
    provider["enabled"] = json!(false);
    setup.provider("bad", provider).await;
    let (_, status, page) = walker.walk(&authorize).await.page();
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("no longer offers"), "{page}");
    // And the sign-in page neither shows it nor accepts it.
    let (page_url2, page2, _) = setup.login_page(&walker, &[]).await;
    assert!(!page2.contains("Continue with Hostile"));
    let (_, status, _) = walker
        .press_upstream(&page_url2, &page2, "bad")
        .await
        .page();
    assert_eq!(status, 403);
    let _ = page_url;
    // No such provider at all, or a wrong CSRF token.
    let (_, status, _) = walker
        .press_upstream(&page_url2, &page2, "nope")
        .await
        .page();
    assert_eq!(status, 403);
    let (_, status, _) = walker
        .post(
            &page_url2,
            "/login/upstream",
            &[
                ("request", &common::hidden(&page2, "request")),
                ("csrf", "wrong"),
                ("provider", "bad"),
            ],
        )
        .await
        .page();
    assert!((400..500).contains(&status), "{status}");
}

#[tokio::test]
async fn reauthentication_is_forwarded_upstream_and_needs_a_fresh_auth_time() {
    let setup = Setup::new().await;
    let hostile = HostileIssuer::start().await;
    let mut provider = hostile_provider(&hostile, true);
    setup.provider("bad", provider.clone()).await;
    // First sign-in: the account exists from now on.
    let walker = Walker::new();
    let (page_url, page, verifier) = setup.login_page(&walker, &[]).await;
    let q = walker.press_upstream(&page_url, &page, "bad").await.rp();
    let first = setup.claims(&q, &verifier).await;
    assert_eq!(first["can_reauthenticate"], false);
    assert!(!hostile.last_authorize().contains_key("prompt"));

    provider["reauthenticate_upstream"] = json!(true);
    setup.provider("bad", provider).await;
    // The relying party asks for a fresh sign-in: forwarded, and a stale auth_time refused.
    hostile.behave(Behaviour {
        auth_age: Some(3600),
        ..Behaviour::default()
    });
    let (page_url, page, _) = setup.login_page(&walker, &[("prompt", "login")]).await;
    let (_, status, page) = walker.press_upstream(&page_url, &page, "bad").await.page();
    assert_eq!(status, 400, "{page}");
    let sent = hostile.last_authorize();
    assert_eq!(sent.get("prompt").map(String::as_str), Some("login"));
    assert_eq!(sent.get("max_age").map(String::as_str), Some("0"));
    // No auth_time at all: refused too.
    hostile.behave(Behaviour {
        auth_age: None,
        ..Behaviour::default()
    });
    let (page_url, page, _) = setup.login_page(&walker, &[("prompt", "login")]).await;
    let (_, status, _) = walker.press_upstream(&page_url, &page, "bad").await.page();
    assert_eq!(status, 400);
    // A fresh one passes, its auth_time becomes the session's, and the account can now
    // reauthenticate through the provider.
    let (page_url, page, verifier) = setup.login_page(&walker, &[("prompt", "login")]).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    hostile.behave(Behaviour {
        auth_age: Some(1),
        ..Behaviour::default()
    });
    let q = walker.press_upstream(&page_url, &page, "bad").await.rp();
    let claims = setup.claims(&q, &verifier).await;
    let age = tessera::store::now() - claims["auth_time"].as_i64().unwrap();
    assert!(
        (1..4).contains(&age),
        "auth_time {age} s old, want the provider's (1 s)"
    );
    assert_eq!(claims["sub"], first["sub"]);
    assert_eq!(claims["can_reauthenticate"], true);
}

#[tokio::test]
async fn the_admin_api_keeps_secrets_write_only_and_checks_issuers() {
    let setup = Setup::new().await;
    let (status, saved) = setup
        .put_provider(
            "corp",
            json!({ "kind": "auth0", "display_name": "Corp SSO", "issuer": "corp.eu.auth0.com", "client_id": "abc", "client_secret": "very-secret" }),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["client_secret_sealed"], "set");
    let list: Value = plain_client()
        .get(format!(
            "{}/admin/api/v1/orgs/{}/upstream_providers",
            setup.down.url,
            setup.down.app().default_org.id
        ))
        .bearer_auth(&setup.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = list.to_string();
    assert!(!text.contains("very-secret"));
    assert_eq!(list["providers"][0]["client_secret_sealed"], "set");
    // The whole auth_config never shows it either, and saving it keeps the providers.
    let config_url = format!(
        "{}/admin/api/v1/orgs/{}/auth_config",
        setup.down.url,
        setup.down.app().default_org.id
    );
    let config: Value = plain_client()
        .get(&config_url)
        .bearer_auth(&setup.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!config.to_string().contains("very-secret"));
    let stored = setup.down.app().store.clone();
    let before = tessera::store::orgs::find(&stored, &setup.down.app().default_org.id)
        .await
        .unwrap()
        .unwrap()
        .auth_config()
        .unwrap();
    assert!(!before.to_json().contains("very-secret"), "sealed at rest");
    let response = plain_client()
        .put(&config_url)
        .bearer_auth(&setup.token)
        .json(&json!({ "password": { "enabled": true } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let after = tessera::store::orgs::find(&stored, &setup.down.app().default_org.id)
        .await
        .unwrap()
        .unwrap()
        .auth_config()
        .unwrap();
    assert_eq!(after.upstream, before.upstream);

    for (id, body) in [
        (
            "plain",
            json!({ "kind": "oidc", "display_name": "X", "issuer": "http://id.example.com", "client_id": "a" }),
        ),
        (
            "Bad Id",
            json!({ "kind": "google", "display_name": "X", "client_id": "a" }),
        ),
        (
            "noname",
            json!({ "kind": "google", "display_name": "", "client_id": "a" }),
        ),
        ("nokind", json!({ "display_name": "X", "client_id": "a" })),
        (
            "weird",
            json!({ "kind": "saml", "display_name": "X", "client_id": "a" }),
        ),
        (
            "extra",
            json!({ "kind": "google", "display_name": "X", "client_id": "a", "surprise": 1 }),
        ),
        (
            "huge",
            json!({ "kind": "google", "display_name": "X", "client_id": "a".repeat(10_000) }),
        ),
    ] {
        let (status, body) = setup.put_provider(id, body).await;
        assert_eq!(status, 400, "{id}: {body}");
    }
    // Removing the only way in is refused by the lock-out guard.
    let response = plain_client()
        .put(&config_url)
        .bearer_auth(&setup.token)
        .json(&json!({ "password": { "enabled": false }, "passkey": { "enabled": false }, "qr": { "enabled": false } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "an enabled provider is a way in");
    let response = plain_client()
        .delete(format!(
            "{}/admin/api/v1/orgs/{}/upstream_providers/corp",
            setup.down.url,
            setup.down.app().default_org.id
        ))
        .bearer_auth(&setup.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "the last way in");
    let audit =
        tessera::store::audit::list(&stored, Some(&setup.down.app().default_org.id), None, 100)
            .await
            .unwrap();
    assert!(audit.iter().any(|e| e.action == "org.upstream.put"));
}

#[tokio::test]
async fn hostile_input_to_the_upstream_endpoints_gets_no_5xx() {
    let setup = Setup::new().await;
    let client = plain_client();
    let base = &setup.down.url;
    let long = "x".repeat(60_000);
    let gets = [
        "/login/upstream/callback".to_owned(),
        "/login/upstream/callback?state=".to_owned(),
        "/login/upstream/callback?state=abc&code=def".to_owned(),
        "/login/upstream/callback?state=abc&error=access_denied".to_owned(),
        format!("/login/upstream/callback?state={}", &long[..5000]),
        "/login/upstream/callback?state=%00".to_owned(),
        "/login/upstream/linked".to_owned(),
        "/login/upstream/linked?request=nope&provider=x".to_owned(),
        "/login/upstream".to_owned(),
    ];
    for path in gets {
        let status = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.as_u16() < 500, "{path}: {status}");
    }
    let forms: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("request", "x")],
        vec![("request", "x"), ("csrf", "y"), ("provider", "z")],
        vec![("request", "\0"), ("csrf", "\0"), ("provider", "\0")],
        vec![
            ("request", &long[..1000]),
            ("csrf", "y"),
            ("provider", &long[..1000]),
        ],
    ];
    for form in forms {
        let status = client
            .post(format!("{base}/login/upstream"))
            .form(&form)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.as_u16() < 500, "{form:?}: {status}");
    }
    let status = client
        .post(format!("{base}/login/upstream"))
        .body(long.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.as_u16() < 500, "{status}");
    let org = &setup.down.app().default_org.id;
    for body in ["", "{", "[]", "null", "{\"kind\":1}", &long] {
        let status = client
            .put(format!(
                "{base}/admin/api/v1/orgs/{org}/upstream_providers/x"
            ))
            .bearer_auth(&setup.token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.as_u16() < 500, "{body:.20}: {status}");
    }
    for method in [reqwest::Method::POST, reqwest::Method::PATCH] {
        let status = client
            .request(
                method,
                format!("{base}/admin/api/v1/orgs/{org}/upstream_providers/x"),
            )
            .bearer_auth(&setup.token)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.as_u16() < 500, "{status}");
    }
    let status = client
        .delete(format!(
            "{base}/admin/api/v1/orgs/{org}/upstream_providers/%00"
        ))
        .bearer_auth(&setup.token)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.as_u16() < 500, "{status}");
}

/// Downstream sign-in page → the oidc-provider button → its page, where `email` signs in
/// (or the person cancels); returns where the browser stopped.
async fn via_oidc_provider(setup: &Setup, walker: &Walker, email: Option<&str>) -> (Stop, String) {
    let (page_url, page, verifier) = setup.login_page(walker, &[]).await;
    let (node_url, status, node_page) = walker
        .press_upstream(&page_url, &page, "panva")
        .await
        .page();
    assert_eq!(status, 200, "{node_page}");
    assert!(
        node_page.contains("Sign in at the upstream provider"),
        "{node_page}"
    );
    let uid = node_url.rsplit('/').next().unwrap().to_owned();
    let stop = match email {
        Some(email) => {
            walker
                .post(
                    &node_url,
                    &format!("/interaction/{uid}/login"),
                    &[("email", email)],
                )
                .await
        }
        None => {
            walker
                .post(&node_url, &format!("/interaction/{uid}/abort"), &[])
                .await
        }
    };
    (stop, verifier)
}

async fn with_oidc_provider(trusted: bool) -> Option<(Setup, common::upstream::NodeProvider)> {
    let setup = Setup::new().await;
    let node = common::upstream::NodeProvider::start(
        "tessera-downstream",
        "a-long-client-secret-for-the-upstream-0123456789",
        &setup.callback(),
    )
    .await?;
    setup
        .provider(
            "panva",
            json!({
                "kind": "oidc",
                "display_name": "Panva",
                "issuer": node.issuer,
                "client_id": "tessera-downstream",
                "client_secret": "a-long-client-secret-for-the-upstream-0123456789",
                "trusted_for_email": trusted,
            }),
        )
        .await;
    Some((setup, node))
}

#[tokio::test]
async fn oidc_provider_first_sign_in_and_trusted_linking() {
    let Some((setup, _node)) = with_oidc_provider(true).await else {
        return;
    };
    let walker = Walker::new();
    let (stop, verifier) = via_oidc_provider(&setup, &walker, Some("fresh@example.com")).await;
    let claims = setup.claims(&stop.rp(), &verifier).await;
    assert_eq!(claims["email"], "fresh@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Person fresh");
    // oidc-provider sends no `amr`: the sign-in is `fed`.
    assert_eq!(claims["amr"], json!(["fed"]));
    assert_eq!(setup.links(claims["sub"].as_str().unwrap()).await, 1);

    // An existing account with a verified address at a trusted provider links at once.
    let existing = setup.down.user("known@example.com").await;
    let walker = Walker::new();
    let (stop, verifier) = via_oidc_provider(&setup, &walker, Some("known@example.com")).await;
    assert_eq!(
        setup.claims(&stop.rp(), &verifier).await["sub"],
        existing.as_str()
    );
    assert_eq!(setup.links(&existing).await, 1);
}

#[tokio::test]
async fn oidc_provider_cancellation_and_unverified_email() {
    let Some((setup, _node)) = with_oidc_provider(true).await else {
        return;
    };
    let walker = Walker::new();
    let (stop, _) = via_oidc_provider(&setup, &walker, None).await;
    let (_, status, page) = stop.page();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Sign-in cancelled"), "{page}");
    assert!(page.contains("Choose another way to sign in"), "{page}");

    // email_verified: false never links, even at a trusted provider.
    let existing = setup.down.user("unverified@example.com").await;
    let walker = Walker::new();
    let (stop, _) = via_oidc_provider(&setup, &walker, Some("unverified@example.com")).await;
    let (_, status, page) = stop.page();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You already have an account"), "{page}");
    assert_eq!(setup.links(&existing).await, 0);
}

#[tokio::test]
async fn a_link_can_be_unlinked_only_while_another_method_remains() {
    let setup = Setup::new().await;
    let hostile = HostileIssuer::start().await;
    setup
        .provider("bad", hostile_provider(&hostile, true))
        .await;
    let walker = Walker::new();
    let (page_url, page, verifier) = setup.login_page(&walker, &[]).await;
    let q = walker.press_upstream(&page_url, &page, "bad").await.rp();
    let sub = setup.claims(&q, &verifier).await["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let account = format!("{}/account", setup.down.url);
    let (_, status, page) = walker.walk(&account).await.page();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Linked sign-in providers"), "{page}");
    assert!(page.contains("Hostile"));
    let csrf = common::hidden(&page, "csrf");
    let id = common::hidden(&page[page.find("upstream/unlink").unwrap()..], "id");

    // The only way in: refused.
    let (_, status, body) = walker
        .post(
            &account,
            "/account/upstream/unlink",
            &[("csrf", &csrf), ("id", &id)],
        )
        .await
        .page();
    assert_eq!(status, 409, "{body}");
    assert_eq!(setup.links(&sub).await, 1);
    // A wrong CSRF token or someone else's link id: refused too, never a 5xx.
    let (_, status, _) = walker
        .post(
            &account,
            "/account/upstream/unlink",
            &[("csrf", "nope"), ("id", &id)],
        )
        .await
        .page();
    assert_eq!(status, 403);
    let (_, status, _) = walker
        .post(
            &account,
            "/account/upstream/unlink",
            &[("csrf", &csrf), ("id", "other")],
        )
        .await
        .page();
    assert_eq!(status, 400);
    let (_, status, _) = walker
        .post(&account, "/account/upstream/unlink", &[])
        .await
        .page();
    assert!((400..500).contains(&status));

    // With a password as well, the link can go.
    let hash = tessera::authn::password::hash(PASSWORD.into())
        .await
        .unwrap();
    tessera::store::users::set_password_hash(&setup.down.app().store, &sub, Some(&hash))
        .await
        .unwrap();
    let (_, status, page) = walker
        .post(
            &account,
            "/account/upstream/unlink",
            &[("csrf", &csrf), ("id", &id)],
        )
        .await
        .page();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("The provider was unlinked"), "{page}");
    assert_eq!(setup.links(&sub).await, 0);
}

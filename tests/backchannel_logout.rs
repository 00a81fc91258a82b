//! Every way a session or a user's access ends reaches the relying parties that received
//! tokens in it, through Back-Channel Logout 1.0: one test per path, each with a real HTTP
//! receiver that verifies the logout token (signature against the JWKS, iss, aud, iat, jti,
//! events, sid, typ, no nonce) and the audit record of the delivery's outcome.
//! Password change/removal and recovery use the same `end_other_sessions`/`end_all_sessions`
//! exercised here.

mod common;

use std::time::Duration;

use common::backchannel::{
    REDIRECT, Receiver, client_with_logout, delivery_record, receiver, receiver_failing,
    verify_logout_token,
};
use common::{Browser, TestServer, authorize_url, claims_of, plain_client, refresh, sign_in};
use reqwest::Method;
use serde_json::{Value, json};
use tessera::admin::{self, Actor};
use tessera::app::AppState;

const API: &str = "/admin/api/v1";

fn state(server: &TestServer) -> AppState {
    server.running.as_ref().unwrap().app.clone()
}

fn sid_of(tokens: &Value) -> String {
    claims_of(tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A server, a receiver, a client that registered it, and a user signed in through it.
struct Setup {
    server: TestServer,
    rx: Receiver,
    client_id: String,
    secret: String,
    user_id: String,
    browser: Browser,
    tokens: Value,
}

async fn setup_with(email: &str, adjust: impl FnOnce(&mut tessera::config::Config)) -> Setup {
    let server = TestServer::start_with(adjust).await;
    let rx = receiver().await;
    let (client_id, secret) = client_with_logout(&server, Some(&rx.url)).await;
    let user_id = server.user(email).await;
    let (browser, tokens) = sign_in(&server, &client_id, Some(&secret), email).await;
    Setup {
        server,
        rx,
        client_id,
        secret,
        user_id,
        browser,
        tokens,
    }
}

async fn setup(email: &str) -> Setup {
    setup_with(email, |_| {}).await
}

impl Setup {
    fn sid(&self) -> String {
        sid_of(&self.tokens)
    }

    /// Waits for the `n`-th logout token, verifies it for `sid`, checks its `sub`, and checks
    /// the audit record: delivered, for `cause`.
    async fn assert_notified(&self, n: usize, sid: &str, cause: &str) {
        let token = self.rx.wait_for(n).await[n - 1].clone();
        let claims = verify_logout_token(&self.server, &token, &self.client_id, sid).await;
        assert_eq!(claims["sub"], self.user_id.as_str());
        let record = delivery_record(&self.server, &self.client_id, sid).await;
        assert_eq!(record.outcome, "success");
        assert_eq!(record.actor, "system");
        let detail: Value = serde_json::from_str(&record.detail).unwrap();
        assert_eq!(detail["cause"], cause, "{detail}");
        assert_eq!(detail["attempts"], 1);
    }

    async fn refresh_status(&self) -> (u16, Value) {
        refresh(
            &self.server,
            &self.client_id,
            &self.secret,
            self.tokens["refresh_token"].as_str().unwrap(),
        )
        .await
    }

    /// An admin API token for the default organization.
    async fn admin_token(&self) -> String {
        let app = self.server.app();
        admin::tokens::create(&app.store, &Actor::cli(), Some(&app.default_org.id), "ops")
            .await
            .unwrap()
            .1
    }

    async fn admin_call(&self, method: Method, path: &str, body: Option<Value>) -> u16 {
        let token = self.admin_token().await;
        let mut request = plain_client()
            .request(method, format!("{}{API}{path}", self.server.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap().status().as_u16()
    }

    async fn account_csrf(&self) -> String {
        common::hidden(&self.browser.text("/account").await, "csrf")
    }
}

async fn still_signed_in(browser: &Browser, server: &TestServer, client_id: &str) -> bool {
    let (url, _) = authorize_url(server, client_id, REDIRECT, &[("prompt", "none")]);
    browser.follow(&url).await.params().contains_key("code")
}

#[tokio::test(flavor = "multi_thread")]
async fn rp_initiated_logout() {
    let s = setup("rp@example.com").await;
    let mut url = url::Url::parse(&format!("{}/logout", s.server.url)).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", s.tokens["id_token"].as_str().unwrap());
    let response = s.browser.http.get(url.as_str()).send().await.unwrap();
    assert!(response.status().is_success() || response.status() == 303);
    s.assert_notified(1, &s.sid(), "rp_logout").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn account_page_ends_one_session() {
    let s = setup("one@example.com").await;
    let (phone, phone_tokens) =
        sign_in(&s.server, &s.client_id, Some(&s.secret), "one@example.com").await;
    let phone_sid = sid_of(&phone_tokens);
    let csrf = s.account_csrf().await;
    let ended = s
        .browser
        .http
        .post(format!("{}/account/sessions/end", s.server.url))
        .form(&[("csrf", csrf.as_str()), ("session", phone_sid.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 303);
    s.assert_notified(1, &phone_sid, "account_page").await;
    assert!(!still_signed_in(&phone, &s.server, &s.client_id).await);
    assert!(still_signed_in(&s.browser, &s.server, &s.client_id).await);
    assert_eq!(s.rx.tokens().len(), 1, "only the ended session is notified");
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_everywhere_notifies_every_session() {
    let s = setup("all@example.com").await;
    let (_, phone_tokens) =
        sign_in(&s.server, &s.client_id, Some(&s.secret), "all@example.com").await;
    let csrf = s.account_csrf().await;
    let all = s
        .browser
        .http
        .post(format!("{}/account/sign-out-everywhere", s.server.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), 200);
    let tokens = s.rx.wait_for(2).await;
    let mut sids: Vec<String> = tokens
        .iter()
        .map(|t| claims_of(t)["sid"].as_str().unwrap().to_owned())
        .collect();
    sids.sort();
    let mut expected = vec![s.sid(), sid_of(&phone_tokens)];
    expected.sort();
    assert_eq!(sids, expected);
    for token in &tokens {
        let sid = claims_of(token)["sid"].as_str().unwrap().to_owned();
        verify_logout_token(&s.server, token, &s.client_id, &sid).await;
    }
    for sid in &expected {
        let record = delivery_record(&s.server, &s.client_id, sid).await;
        assert!(record.detail.contains("\"sign_out_everywhere\""));
    }
}

/// What a password change or removal does to the other sessions (`end_other_sessions`): the
/// one the user acts from lives on, every other is ended and notified.
#[tokio::test(flavor = "multi_thread")]
async fn ending_the_other_sessions_spares_the_current_one() {
    let s = setup("others@example.com").await;
    let (phone, phone_tokens) = sign_in(
        &s.server,
        &s.client_id,
        Some(&s.secret),
        "others@example.com",
    )
    .await;
    let ended =
        tessera::session::logout::end_other_sessions(&state(&s.server), &s.user_id, &s.sid())
            .await
            .unwrap();
    assert_eq!(ended, 1);
    s.assert_notified(1, &sid_of(&phone_tokens), "credentials_changed")
        .await;
    assert!(still_signed_in(&s.browser, &s.server, &s.client_id).await);
    assert!(!still_signed_in(&phone, &s.server, &s.client_id).await);
    assert_eq!(
        s.refresh_status().await.0,
        200,
        "the current session's grant lives"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_revokes_a_session() {
    let s = setup("revoke@example.com").await;
    let status = s
        .admin_call(
            Method::DELETE,
            &format!("/orgs/default/sessions/{}", s.sid()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    s.assert_notified(1, &s.sid(), "admin_revoke").await;
    assert_eq!(s.refresh_status().await.0, 400);
}

/// The sweeper finds the session whose idle lifetime passed, with nobody calling, and two
/// replicas sweeping the same database notify it exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn idle_expiry_is_found_by_the_sweeper_and_notified_once() {
    let quick = |c: &mut tessera::config::Config| {
        c.sessions.idle_ttl_secs = 2;
        c.sessions.sweep_interval_secs = 1;
    };
    let s = setup_with("idle@example.com", quick).await;
    // Replicas behind one load balancer share one issuer; whichever sweeps signs for it.
    let issuer = s.server.issuer();
    let replica = TestServer::start_on(
        s.server.database_url.clone(),
        tempfile::tempdir().unwrap(),
        |c| {
            quick(c);
            c.issuer = issuer;
        },
    )
    .await;
    s.assert_notified(1, &s.sid(), "idle_expiry").await;
    // Several more sweeps on both replicas: still one token.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.rx.requests(), 1, "notified exactly once");
    assert_eq!(
        s.refresh_status().await.0,
        400,
        "the session's grant ended with it"
    );
    drop(replica);
}

#[tokio::test(flavor = "multi_thread")]
async fn absolute_expiry_is_found_by_the_sweeper() {
    let s = setup_with("absolute@example.com", |c| {
        c.sessions.absolute_ttl_secs = 2;
        c.sessions.sweep_interval_secs = 1;
    })
    .await;
    s.assert_notified(1, &s.sid(), "absolute_expiry").await;
    assert!(!still_signed_in(&s.browser, &s.server, &s.client_id).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_disables_the_user() {
    let s = setup("disable@example.com").await;
    let status = s
        .admin_call(
            Method::PATCH,
            &format!("/orgs/default/users/{}", s.user_id),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    s.assert_notified(1, &s.sid(), "user_disabled").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_deletes_the_user() {
    let s = setup("delete@example.com").await;
    let status = s
        .admin_call(
            Method::DELETE,
            &format!("/orgs/default/users/{}", s.user_id),
            None,
        )
        .await;
    assert_eq!(status, 204);
    s.assert_notified(1, &s.sid(), "user_deleted").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_user_deletes_their_account() {
    let s = setup("self@example.com").await;
    let csrf = s.account_csrf().await;
    let deleted = s
        .browser
        .http
        .post(format!("{}/account/delete", s.server.url))
        .form(&[("csrf", csrf.as_str()), ("confirm", " Self@Example.com ")])
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(deleted.text().await.unwrap().contains("Account deleted"));
    s.assert_notified(1, &s.sid(), "user_deleted").await;
}

/// Reuse revokes that client's family and tells that client (the grant's `sid`); the browser
/// session lives on (see `oidc::token::refresh_token`).
#[tokio::test(flavor = "multi_thread")]
async fn refresh_token_reuse_notifies_the_client() {
    let s = setup("reuse@example.com").await;
    let (status, _) = s.refresh_status().await;
    assert_eq!(status, 200, "first use rotates");
    let (status, body) = s.refresh_status().await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    s.assert_notified(1, &s.sid(), "refresh_token_reuse").await;
    // A third replay finds the family revoked already: no second token.
    assert_eq!(s.refresh_status().await.0, 400);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.rx.requests(), 1);
    assert!(still_signed_in(&s.browser, &s.server, &s.client_id).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn delivery_retries_and_audits_the_outcome() {
    let server = TestServer::start().await;
    // Fails once, then accepts.
    let flaky = receiver_failing(1).await;
    let (flaky_client, flaky_secret) = client_with_logout(&server, Some(&flaky.url)).await;
    // Never accepts.
    let down = receiver_failing(usize::MAX).await;
    let (down_client, down_secret) = client_with_logout(&server, Some(&down.url)).await;
    server.user("retry@example.com").await;
    let (browser, flaky_tokens) = sign_in(
        &server,
        &flaky_client,
        Some(&flaky_secret),
        "retry@example.com",
    )
    .await;
    // The same browser signs in to the second client: one session, two clients.
    let (url, verifier) = authorize_url(&server, &down_client, REDIRECT, &[]);
    let code = browser.follow(&url).await.params()["code"].clone();
    let (status, _) = common::exchange(
        &server,
        &down_client,
        Some(&down_secret),
        &code,
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!(status, 200);
    let sid = sid_of(&flaky_tokens);
    let csrf = common::hidden(&browser.text("/account").await, "csrf");
    let ended = browser
        .http
        .post(format!("{}/account/sign-out-everywhere", server.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 200);

    let token = flaky.wait_for(1).await[0].clone();
    verify_logout_token(&server, &token, &flaky_client, &sid).await;
    let record = delivery_record(&server, &flaky_client, &sid).await;
    assert_eq!(record.outcome, "success");
    let detail: Value = serde_json::from_str(&record.detail).unwrap();
    assert_eq!(detail["attempts"], 2, "{detail}");
    assert_eq!(flaky.requests(), 2);

    let record = delivery_record(&server, &down_client, &sid).await;
    assert_eq!(record.outcome, "failure");
    let detail: Value = serde_json::from_str(&record.detail).unwrap();
    assert_eq!(detail["attempts"], 3, "{detail}");
    assert_eq!(detail["error"], "HTTP status 500");
    assert_eq!(down.requests(), 3, "three attempts, then it gives up");
}

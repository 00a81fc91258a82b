//! Sessions, logout and the token lifecycle: RP-initiated and back-channel logout, the
//! account page's session list, sign out everywhere, revocation (RFC 7009), introspection
//! (RFC 7662), and the reauthentication claim.

mod common;

use common::backchannel::{
    AFTER_LOGOUT, REDIRECT, client_with_logout, receiver, verify_logout_token,
};
use common::{
    Browser, Landing, PASSWORD, TestServer, authorize_url, claims_of, exchange, plain_client,
    refresh, sign_in,
};

#[tokio::test(flavor = "multi_thread")]
async fn rp_initiated_logout_with_a_tied_hint_ends_the_session_and_notifies_clients() {
    let server = TestServer::start().await;
    let rx = receiver().await;
    let (client_id, secret) = client_with_logout(&server, Some(&rx.url)).await;
    server.user("lo@example.com").await;
    let (browser, tokens) = sign_in(&server, &client_id, Some(&secret), "lo@example.com").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let sid = claims_of(id_token)["sid"].as_str().unwrap().to_owned();

    let mut url = url::Url::parse(&format!("{}/logout", server.url)).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", AFTER_LOGOUT)
        .append_pair("state", "bye");
    let response = browser.http.get(url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        format!("{AFTER_LOGOUT}?state=bye").as_str()
    );

    let tokens_received = rx.wait_for(1).await;
    let claims = verify_logout_token(&server, &tokens_received[0], &client_id, &sid).await;
    assert_eq!(claims["sub"], claims_of(id_token)["sub"]);

    // The session is gone: prompt=none now needs a sign-in, and the refresh token is dead.
    let (url, _) = authorize_url(&server, &client_id, REDIRECT, &[("prompt", "none")]);
    assert_eq!(
        browser.follow(&url).await.params()["error"],
        "login_required"
    );
    let (status, body) = refresh(
        &server,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_refuses_unregistered_redirects_and_confirms_untied_requests() {
    let server = TestServer::start().await;
    let (client_id, secret) = client_with_logout(&server, None).await;
    server.user("lc@example.com").await;
    let (browser, tokens) = sign_in(&server, &client_id, Some(&secret), "lc@example.com").await;
    let id_token = tokens["id_token"].as_str().unwrap();

    for bad in [
        "https://evil.example.com/",
        "https://rp.example.com/signed-out/",
        "https://rp.example.com/cb",
    ] {
        let mut url = url::Url::parse(&format!("{}/logout", server.url)).unwrap();
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token)
            .append_pair("post_logout_redirect_uri", bad);
        let response = browser.http.get(url.as_str()).send().await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        assert!(
            response.headers().get("location").is_none(),
            "no open redirect through logout"
        );
    }
    // A redirect without any way to name the client is refused too.
    let response = browser
        .http
        .get(format!(
            "{}/logout?post_logout_redirect_uri={AFTER_LOGOUT}",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // Without a hint the person is asked; the session survives until they confirm.
    let page = browser
        .http
        .get(format!(
            "{}/logout?client_id={client_id}&post_logout_redirect_uri={AFTER_LOGOUT}&state=s",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Sign out?") && page.contains("lc@example.com"));
    let (url, _) = authorize_url(&server, &client_id, REDIRECT, &[("prompt", "none")]);
    assert!(
        browser.follow(&url).await.params().contains_key("code"),
        "still signed in"
    );

    let csrf = common::hidden(&page, "csrf");
    let forged = browser
        .http
        .post(format!("{}/logout/confirm", server.url))
        .form(&[("csrf", "forged"), ("decision", "logout")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let confirmed = browser
        .http
        .post(format!("{}/logout/confirm", server.url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("decision", "logout"),
            ("client_id", &client_id),
            ("post_logout_redirect_uri", AFTER_LOGOUT),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 303);
    assert_eq!(
        confirmed.headers()["location"],
        format!("{AFTER_LOGOUT}?state=s").as_str()
    );
    let (url, _) = authorize_url(&server, &client_id, REDIRECT, &[("prompt", "none")]);
    assert_eq!(
        browser.follow(&url).await.params()["error"],
        "login_required"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn account_page_lists_sessions_and_ending_one_revokes_its_tokens() {
    let server = TestServer::start().await;
    let rx = receiver().await;
    let (client_id, secret) = client_with_logout(&server, Some(&rx.url)).await;
    server.user("acct@example.com").await;
    let (laptop, _) = sign_in(&server, &client_id, Some(&secret), "acct@example.com").await;
    let (phone, phone_tokens) =
        sign_in(&server, &client_id, Some(&secret), "acct@example.com").await;
    let phone_sid = claims_of(phone_tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let page = laptop
        .http
        .get(format!("{}/account", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("acct@example.com"));
    assert_eq!(
        page.matches("data-session=").count(),
        2,
        "both sessions listed"
    );
    assert!(page.contains(&format!("data-session=\"{phone_sid}\"")));
    let csrf = common::hidden(&page, "csrf");
    let ended = laptop
        .http
        .post(format!("{}/account/sessions/end", server.url))
        .form(&[("csrf", csrf.as_str()), ("session", phone_sid.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 303);
    let (status, _) = refresh(
        &server,
        &client_id,
        &secret,
        phone_tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        status, 400,
        "the ended session's refresh tokens are revoked"
    );
    verify_logout_token(&server, &rx.wait_for(1).await[0], &client_id, &phone_sid).await;
    let (url, _) = authorize_url(&server, &client_id, REDIRECT, &[("prompt", "none")]);
    assert_eq!(phone.follow(&url).await.params()["error"], "login_required");
    assert!(
        laptop.follow(&url).await.params().contains_key("code"),
        "the other session lives on"
    );

    // Another user's session cannot be ended from this account.
    server.user("other@example.com").await;
    let (_, other_tokens) = sign_in(&server, &client_id, Some(&secret), "other@example.com").await;
    let other_sid = claims_of(other_tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = laptop
        .http
        .post(format!("{}/account/sessions/end", server.url))
        .form(&[("csrf", csrf.as_str()), ("session", other_sid.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    // Sign out everywhere ends the rest.
    let all = laptop
        .http
        .post(format!("{}/account/sign-out-everywhere", server.url))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), 200);
    assert_eq!(
        laptop.follow(&url).await.params()["error"],
        "login_required"
    );
    let (status, _) = refresh(
        &server,
        &client_id,
        &secret,
        other_tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "other users are untouched");
    let response = laptop
        .http
        .get(format!("{}/account", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["location"],
        "/account/login",
        "signed out: the account page asks to sign in"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_per_rfc7009() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let (other_id, other_secret) = server.client(false, REDIRECT).await;
    let secret = secret.unwrap();
    server.user("rv@example.com").await;
    let (_, tokens) = sign_in(&server, &client_id, Some(&secret), "rv@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let revoke = |form: Vec<(&'static str, String)>| {
        let url = format!("{}/revoke", server.url);
        async move { plain_client().post(url).form(&form).send().await.unwrap() }
    };

    // Another client cannot revoke it (and learns nothing: 200).
    let r = revoke(vec![
        ("token", refresh_token.into()),
        ("client_id", other_id.clone()),
        ("client_secret", other_secret.clone().unwrap()),
    ])
    .await;
    assert_eq!(r.status(), 200);
    let (status, body) = refresh(&server, &client_id, &secret, refresh_token).await;
    assert_eq!(status, 200, "{body}");
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    let access = body["access_token"].as_str().unwrap_or(access).to_owned();

    let r = revoke(vec![
        ("token", "garbage".into()),
        ("client_id", client_id.clone()),
        ("client_secret", secret.clone()),
    ])
    .await;
    assert_eq!(r.status(), 200, "unknown tokens are not an error (§2.2)");
    let r = revoke(vec![
        ("token", refresh_token.clone()),
        ("token_type_hint", "id_token".into()),
        ("client_id", client_id.clone()),
        ("client_secret", secret.clone()),
    ])
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "unsupported_token_type"
    );
    let r = revoke(vec![
        ("token", refresh_token.clone()),
        ("client_id", client_id.clone()),
        ("client_secret", "wrong".into()),
    ])
    .await;
    assert_eq!(r.status(), 401);

    let r = revoke(vec![
        ("token", refresh_token.clone()),
        ("token_type_hint", "refresh_token".into()),
        ("client_id", client_id.clone()),
        ("client_secret", secret.clone()),
    ])
    .await;
    assert_eq!(r.status(), 200);
    let (status, _) = refresh(&server, &client_id, &secret, &refresh_token).await;
    assert_eq!(status, 400, "revoked refresh token");
    let u = plain_client()
        .get(format!("{}/userinfo", server.url))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        u.status(),
        401,
        "access tokens of the revoked grant stop working"
    );

    // Revoking an access token (hint or not) revokes its grant.
    let (_, tokens) = sign_in(&server, &client_id, Some(&secret), "rv@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    let r = revoke(vec![
        ("token", access.into()),
        ("client_id", client_id.clone()),
        ("client_secret", secret.clone()),
    ])
    .await;
    assert_eq!(r.status(), 200);
    let u = plain_client()
        .get(format!("{}/userinfo", server.url))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(u.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn introspection_per_rfc7662() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let (public_id, _) = server.client(true, REDIRECT).await;
    let secret = secret.unwrap();
    server.user("in@example.com").await;
    let sub = tessera::store::users::find_by_email(
        &server.app().store,
        &server.app().default_org.id,
        "in@example.com",
    )
    .await
    .unwrap()
    .unwrap()
    .id;
    let (_, tokens) = sign_in(&server, &client_id, Some(&secret), "in@example.com").await;
    let introspect = |token: String, id: String, secret: Option<String>| {
        let url = format!("{}/introspect", server.url);
        async move {
            let mut form = vec![("token", token), ("client_id", id)];
            if let Some(s) = secret {
                form.push(("client_secret", s));
            }
            let r = plain_client().post(url).form(&form).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (status, body) = introspect(
        tokens["access_token"].as_str().unwrap().into(),
        client_id.clone(),
        Some(secret.clone()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], sub.as_str());
    assert_eq!(body["client_id"], client_id.as_str());
    assert!(body["scope"].as_str().unwrap().contains("openid"));
    assert!(body["exp"].as_i64().unwrap() > tessera::store::now());
    let (_, body) = introspect(
        tokens["refresh_token"].as_str().unwrap().into(),
        client_id.clone(),
        Some(secret.clone()),
    )
    .await;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "refresh_token");
    let (_, body) = introspect("nonsense".into(), client_id.clone(), Some(secret.clone())).await;
    assert_eq!(body, serde_json::json!({ "active": false }));
    let (status, _) = introspect(
        tokens["access_token"].as_str().unwrap().into(),
        public_id,
        None,
    )
    .await;
    assert_eq!(status, 401, "public clients cannot introspect");
    // After rotation the old refresh token is inactive; after revocation everything is.
    let (_, rotated) = refresh(
        &server,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    let (_, body) = introspect(
        tokens["refresh_token"].as_str().unwrap().into(),
        client_id.clone(),
        Some(secret.clone()),
    )
    .await;
    assert_eq!(body["active"], false);
    plain_client()
        .post(format!("{}/revoke", server.url))
        .form(&[
            ("token", rotated["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    let (_, body) = introspect(
        rotated["access_token"].as_str().unwrap().into(),
        client_id.clone(),
        Some(secret.clone()),
    )
    .await;
    assert_eq!(body["active"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn reauthentication_claim_tracks_the_user_and_can_be_renamed() {
    let server = TestServer::start_with(|c| {
        c.reauthentication_claim = "https://example.com/claims/can_reauth".into()
    })
    .await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let secret = secret.unwrap();
    let sub = server.user("cr@example.com").await;
    let (_, tokens) = sign_in(&server, &client_id, Some(&secret), "cr@example.com").await;
    let claims = claims_of(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["https://example.com/claims/can_reauth"], true);
    assert!(claims.get("can_reauthenticate").is_none());
    let discovery: serde_json::Value = server
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        discovery["claims_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "https://example.com/claims/can_reauth")
    );

    // The user loses their password: the refreshed ID token says so, auth_time unchanged.
    tessera::store::users::set_password_hash(&server.app().store, &sub, None)
        .await
        .unwrap();
    let (status, renewed) = refresh(
        &server,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let renewed_claims = claims_of(renewed["id_token"].as_str().unwrap());
    assert_eq!(
        renewed_claims["https://example.com/claims/can_reauth"],
        false
    );
    assert_eq!(renewed_claims["auth_time"], claims["auth_time"]);
    let info: serde_json::Value = plain_client()
        .get(format!("{}/userinfo", server.url))
        .bearer_auth(renewed["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["https://example.com/claims/can_reauth"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn acr_values_that_cannot_be_met_are_reported_honestly() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("acr@example.com").await;
    let browser = Browser::new(&server.url);
    let (url, verifier) = authorize_url(&server, &client_id, REDIRECT, &[("acr_values", "2 1")]);
    let Landing::Client(q) = browser.authorize(&url, "acr@example.com", PASSWORD).await else {
        panic!()
    };
    let (_, tokens) = exchange(
        &server,
        &client_id,
        secret.as_deref(),
        &q["code"],
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!(claims_of(tokens["id_token"].as_str().unwrap())["acr"], "1");
}

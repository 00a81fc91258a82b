//! Leaving: an administrator disables (reversibly) or deletes a user, a user deletes their own
//! account; deletion removes every row of theirs, keeps an audit record without personal
//! data, and never hands the same `sub` to a new account. Back-channel logout on these paths
//! is checked in `backchannel_logout.rs`.

mod common;

use common::backchannel::{REDIRECT, client_with_logout};
use common::{
    Browser, Landing, PASSWORD, TestServer, authorize_url, plain_client, refresh, sign_in,
};
use reqwest::Method;
use serde_json::{Value, json};
use tessera::admin::{self, Actor};
use tessera::store::{self, devices, passkeys, sessions, users};

const API: &str = "/admin/api/v1";

async fn admin_call(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let app = server.app();
    let (_, token) =
        admin::tokens::create(&app.store, &Actor::cli(), Some(&app.default_org.id), "ops")
            .await
            .unwrap();
    let mut request = plain_client()
        .request(method, format!("{}{API}{path}", server.url))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn introspect(server: &TestServer, client_id: &str, secret: &str, token: &str) -> Value {
    plain_client()
        .post(format!("{}/introspect", server.url))
        .form(&[
            ("token", token),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn userinfo_status(server: &TestServer, access_token: &str) -> u16 {
    plain_client()
        .get(format!("{}/userinfo", server.url))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_refuses_sign_in_and_tokens_and_enabling_restores() {
    let server = TestServer::start().await;
    let (client_id, secret) = client_with_logout(&server, None).await;
    let user_id = server.user("dis@example.com").await;
    let (_, tokens) = sign_in(&server, &client_id, Some(&secret), "dis@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    let path = format!("/orgs/default/users/{user_id}");

    let (status, body) = admin_call(
        &server,
        Method::PATCH,
        &path,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!((status, &body["disabled"]), (200, &json!(true)));

    // Every token is refused: userinfo, introspection, the refresh grant.
    assert_eq!(userinfo_status(&server, access).await, 401);
    assert_eq!(
        introspect(&server, &client_id, &secret, access).await["active"],
        false
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

    // Signing in with the right password says why it is refused.
    let browser = Browser::new(&server.url);
    let (url, _) = authorize_url(&server, &client_id, REDIRECT, &[]);
    match browser.authorize(&url, "dis@example.com", PASSWORD).await {
        Landing::Page(status, page) => {
            assert_eq!(status, 403);
            assert!(page.contains("This account has been disabled"), "{page}");
        }
        other => panic!("a disabled account signed in: {other:?}"),
    }

    // Re-enabling restores sign-in (the old tokens stay revoked: disabling ended them).
    let (status, _) = admin_call(
        &server,
        Method::PATCH,
        &path,
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, fresh) = sign_in(&server, &client_id, Some(&secret), "dis@example.com").await;
    let fresh_access = fresh["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&server, fresh_access).await, 200);
    assert_eq!(
        introspect(&server, &client_id, &secret, fresh_access).await["active"],
        true
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deletion_removes_every_row_and_the_audit_record_names_no_person() {
    let server = TestServer::start().await;
    let store = &server.app().store;
    let (client_id, secret) = client_with_logout(&server, None).await;
    let email = "gone@example.com";
    let user_id = server.user(email).await;
    let (_, tokens) = sign_in(&server, &client_id, Some(&secret), email).await;
    sign_in(&server, &client_id, Some(&secret), email).await;
    let now = store::now();
    devices::insert(
        store,
        &devices::DeviceRow {
            id: "dev-1".into(),
            user_id: user_id.clone(),
            name: "Phone".into(),
            public_key: "{}".into(),
            created_at: now,
            last_used_at: None,
        },
    )
    .await
    .unwrap();
    let sizes = |s: Vec<(&'static str, i64)>| -> std::collections::HashMap<&'static str, i64> {
        s.into_iter().collect()
    };
    let before = sizes(store.table_sizes().await.unwrap());
    assert_eq!(before["sessions"], 2);
    assert!(
        before["grants"] >= 2
            && before["refresh_tokens"] >= 2
            && before["authorization_codes"] >= 2
    );

    let (status, _) = admin_call(
        &server,
        Method::DELETE,
        &format!("/orgs/default/users/{user_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);

    assert!(users::find(store, &user_id).await.unwrap().is_none());
    assert!(
        sessions::unnotified_for_user(store, &user_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        devices::list_for_user(store, &user_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        passkeys::list_for_user(store, &user_id)
            .await
            .unwrap()
            .is_empty()
    );
    let after = sizes(store.table_sizes().await.unwrap());
    for table in [
        "sessions",
        "grants",
        "refresh_tokens",
        "authorization_codes",
        "authorization_requests",
    ] {
        assert_eq!(after[table], 0, "{table} still holds the user's rows");
    }
    let (status, _) = refresh(
        &server,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        userinfo_status(&server, tokens["access_token"].as_str().unwrap()).await,
        401
    );

    let entries = store::audit::list(store, None, Some("user.delete"), 10)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.target.as_deref(), Some(user_id.as_str()));
    assert!(entry.actor.starts_with("admin_token:"));
    assert!(
        !entry.detail.contains("gone") && !entry.detail.contains('@'),
        "{}",
        entry.detail
    );
    assert!(!entry.detail.contains("Test User"));
    let detail: Value = serde_json::from_str(&entry.detail).unwrap();
    assert_eq!(detail["removed"]["sessions"], 2);
    assert_eq!(detail["removed"]["devices"], 1);
    assert_eq!(detail["removed"]["users"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sub_is_never_reused_for_the_same_email() {
    let server = TestServer::start().await;
    let create = || {
        admin_call(
            &server,
            Method::POST,
            "/orgs/default/users",
            Some(json!({"email": "again@example.com", "password": PASSWORD})),
        )
    };
    let (status, first) = create().await;
    assert_eq!(status, 201, "{first}");
    let first_id = first["id"].as_str().unwrap().to_owned();
    let (status, _) = admin_call(
        &server,
        Method::DELETE,
        &format!("/orgs/default/users/{first_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, second) = create().await;
    assert_eq!(status, 201, "{second}");
    assert_ne!(second["id"].as_str().unwrap(), first_id);
    // The `sub` relying parties see is that id.
    let (client_id, secret) = client_with_logout(&server, None).await;
    let (_, tokens) = sign_in(&server, &client_id, Some(&secret), "again@example.com").await;
    let sub = common::claims_of(tokens["id_token"].as_str().unwrap())["sub"].clone();
    assert_eq!(sub, second["id"]);
}

/// Self-deletion needs a fresh sign-in, the account page's CSRF token and the email typed
/// again; anything else is refused with a page, never a 5xx, and deletes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn self_deletion_refuses_hostile_and_stale_requests() {
    let server = TestServer::start().await;
    let store = &server.app().store;
    let (client_id, secret) = client_with_logout(&server, None).await;
    let user_id = server.user("me@example.com").await;
    let (browser, tokens) = sign_in(&server, &client_id, Some(&secret), "me@example.com").await;
    let page = browser.text("/account").await;
    assert!(page.contains("action=\"/account/delete\""));
    let csrf = common::hidden(&page, "csrf");
    let url = format!("{}/account/delete", server.url);
    let huge = "x".repeat(20_000);
    let attempts: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("confirm", "me@example.com")],
        vec![("csrf", "forged"), ("confirm", "me@example.com")],
        vec![("csrf", &csrf)],
        vec![("csrf", &csrf), ("confirm", "someone@example.com")],
        vec![("csrf", &csrf), ("confirm", &huge)],
        vec![("csrf", &csrf), ("confirm", "me@example.com\0")],
    ];
    for form in &attempts {
        let r = browser.http.post(&url).form(form).send().await.unwrap();
        assert!(
            matches!(r.status().as_u16(), 400 | 403 | 413),
            "{form:?}: {}",
            r.status()
        );
    }
    // Without a session, with the wrong method, with a body that is no form.
    let r = plain_client()
        .post(&url)
        .form(&[("csrf", csrf.as_str()), ("confirm", "me@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = browser.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = browser
        .http
        .post(&url)
        .body(vec![0xff, 0xfe, 0x00])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(
        users::find(store, &user_id).await.unwrap().is_some(),
        "nothing was deleted"
    );

    // A sign-in older than five minutes must be repeated first.
    let sid = common::claims_of(tokens["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let row = sessions::find(store, &sid).await.unwrap().unwrap();
    sessions::reauthenticate(
        store,
        &sid,
        &row.secret_hash,
        store::now() - 600,
        &row.amr,
        &row.acr,
        row.expires_at,
    )
    .await
    .unwrap();
    let r = browser
        .http
        .post(&url)
        .form(&[("csrf", csrf.as_str()), ("confirm", "me@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/account?notice=reauthenticate");
    assert!(users::find(store, &user_id).await.unwrap().is_some());

    // Freshly signed in again, it works, and the browser is signed out.
    sessions::reauthenticate(
        store,
        &sid,
        &row.secret_hash,
        store::now(),
        &row.amr,
        &row.acr,
        row.expires_at,
    )
    .await
    .unwrap();
    let r = browser
        .http
        .post(&url)
        .form(&[("csrf", csrf.as_str()), ("confirm", "ME@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(users::find(store, &user_id).await.unwrap().is_none());
    let entries = store::audit::list(store, None, Some("user.delete"), 10)
        .await
        .unwrap();
    assert_eq!(entries[0].actor, format!("user:{user_id}"));
    assert!(!entries[0].detail.contains('@'));
    let r = browser
        .http
        .get(format!("{}/account", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/account/login");
}

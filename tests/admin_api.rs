//! The admin API over HTTP against a real server and database: every resource, the
//! lock-out guard, who may call what, hostile bodies, and the audit trail of every change.

mod common;

use common::{PASSWORD, TestServer, plain_client, sign_in, token_request};
use reqwest::Method;
use serde_json::{Value, json};
use tessera::admin::{self, Actor};
use tessera::store::orgs::Organization;

const API: &str = "/admin/api/v1";

struct Answer {
    status: u16,
    body: Value,
    www_authenticate: Option<String>,
}

async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut request = plain_client().request(method, format!("{}{API}{path}", server.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.expect("request")).await
}

async fn raw(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Vec<u8>,
) -> Answer {
    let response = plain_client()
        .request(method, format!("{}{API}{path}", server.url))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    answer(response).await
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let www_authenticate = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        www_authenticate,
    }
}

/// Two organizations, a token for each and a deployment-wide token.
struct World {
    server: TestServer,
    a: Organization,
    b: Organization,
    token_a: String,
    token_a_id: String,
    token_b: String,
    deployment: String,
    deployment_id: String,
}

async fn world() -> World {
    let server = TestServer::start().await;
    let store = &server.app().store;
    let cli = Actor::cli();
    let a = admin::orgs::create(store, &cli, "acme", "Acme")
        .await
        .unwrap();
    let b = admin::orgs::create(store, &cli, "globex", "Globex")
        .await
        .unwrap();
    let (row_a, token_a) = admin::tokens::create(store, &cli, Some(&a.id), "acme ci")
        .await
        .unwrap();
    let (_, token_b) = admin::tokens::create(store, &cli, Some(&b.id), "globex ci")
        .await
        .unwrap();
    let (row_d, deployment) = admin::tokens::create(store, &cli, None, "ops")
        .await
        .unwrap();
    World {
        server,
        a,
        b,
        token_a,
        token_a_id: row_a.id,
        token_b,
        deployment,
        deployment_id: row_d.id,
    }
}

fn actions(entries: &Value) -> Vec<(String, String)> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_resource_round_trips_and_is_audited() {
    let w = world().await;
    let s = &w.server;
    let t = Some(w.token_a.as_str());

    // Organizations: an org-scoped token sees only its own, by id or slug.
    let list = call(s, Method::GET, "/orgs", t, None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(list.body[0]["id"], w.a.id.as_str());
    let by_slug = call(s, Method::GET, "/orgs/acme", t, None).await;
    assert_eq!(by_slug.status, 200);
    assert_eq!(by_slug.body["slug"], "acme");
    let by_id = call(s, Method::GET, &format!("/orgs/{}", w.a.id), t, None).await;
    assert_eq!(by_id.body["id"], w.a.id.as_str());
    let patched = call(
        s,
        Method::PATCH,
        "/orgs/acme",
        t,
        Some(json!({"logo_url": "https://acme.example/logo.png", "primary_color": "#1a73e8"})),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["name"], "Acme");
    assert_eq!(patched.body["primary_color"], "#1a73e8");
    let cleared = call(
        s,
        Method::PATCH,
        "/orgs/acme",
        t,
        Some(json!({"logo_url": null})),
    )
    .await;
    assert_eq!(cleared.body["logo_url"], Value::Null);
    assert_eq!(cleared.body["primary_color"], "#1a73e8");
    let bad = call(
        s,
        Method::PATCH,
        "/orgs/acme",
        t,
        Some(json!({"primary_color": "red"})),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"], "invalid_request");
    let refused = call(
        s,
        Method::POST,
        "/orgs",
        t,
        Some(json!({"slug": "x", "name": "X"})),
    )
    .await;
    assert_eq!(refused.status, 403);

    // Sign-in methods.
    let config = call(s, Method::GET, "/orgs/acme/auth_config", t, None).await;
    assert_eq!(config.status, 200);
    assert_eq!(config.body["password"]["enabled"], true);
    let mut with_email = config.body.clone();
    with_email["email_otp"]["enabled"] = json!(true);
    let saved = call(
        s,
        Method::PUT,
        "/orgs/acme/auth_config",
        t,
        Some(with_email),
    )
    .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert_eq!(saved.body["email_otp"]["enabled"], true);

    // Clients: the secret is shown once.
    let created = call(
        s,
        Method::POST,
        "/orgs/acme/clients",
        t,
        Some(json!({"name": "Shop", "redirect_uris": ["https://shop.example/cb"]})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let client_id = created.body["client_id"].as_str().unwrap().to_owned();
    assert!(created.body["client_secret"].as_str().unwrap().len() >= 43);
    assert_eq!(created.body["admin_api"], false);
    let listed = call(s, Method::GET, "/orgs/acme/clients", t, None).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert!(listed.body[0].get("client_secret").is_none());
    let one = call(
        s,
        Method::GET,
        &format!("/orgs/acme/clients/{client_id}"),
        t,
        None,
    )
    .await;
    assert_eq!(one.body["name"], "Shop");
    let bad_uri = call(
        s,
        Method::POST,
        "/orgs/acme/clients",
        t,
        Some(json!({"name": "Bad", "redirect_uris": ["http://evil.example/cb#x"]})),
    )
    .await;
    assert_eq!(bad_uri.status, 400);
    let gone = call(
        s,
        Method::DELETE,
        &format!("/orgs/acme/clients/{client_id}"),
        t,
        None,
    )
    .await;
    assert_eq!(gone.status, 204);
    let missing = call(
        s,
        Method::GET,
        &format!("/orgs/acme/clients/{client_id}"),
        t,
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"], "not_found");

    // Users.
    let user = call(
        s,
        Method::POST,
        "/orgs/acme/users",
        t,
        Some(json!({
            "email": "Ann@Acme.example",
            "name": "Ann",
            "password": PASSWORD,
            "phone_number": "+1 (555) 123-4567",
            "role": "admin",
        })),
    )
    .await;
    assert_eq!(user.status, 201, "{}", user.body);
    let user_id = user.body["id"].as_str().unwrap().to_owned();
    assert_eq!(user.body["phone_number"], "+15551234567");
    assert_eq!(user.body["role"], "admin");
    assert_eq!(user.body["has_password"], true);
    let again = call(
        s,
        Method::POST,
        "/orgs/acme/users",
        t,
        Some(json!({"email": "ann@acme.example"})),
    )
    .await;
    assert_eq!(again.status, 409);
    let bad_phone = call(
        s,
        Method::POST,
        "/orgs/acme/users",
        t,
        Some(json!({"email": "bob@acme.example", "phone_number": "0555"})),
    )
    .await;
    assert_eq!(bad_phone.status, 400);
    let bad_role = call(
        s,
        Method::POST,
        "/orgs/acme/users",
        t,
        Some(json!({"email": "bob@acme.example", "role": "owner"})),
    )
    .await;
    assert_eq!(bad_role.status, 400);
    let found = call(
        s,
        Method::GET,
        "/orgs/acme/users?email=ANN%40acme.example",
        t,
        None,
    )
    .await;
    assert_eq!(found.status, 200);
    assert_eq!(found.body.as_array().unwrap().len(), 1);
    let none = call(
        s,
        Method::GET,
        "/orgs/acme/users?email=zed%40acme.example",
        t,
        None,
    )
    .await;
    assert_eq!(none.body, json!([]));
    let path = format!("/orgs/acme/users/{user_id}");
    let changed = call(
        s,
        Method::PATCH,
        &path,
        t,
        Some(json!({"role": "member", "disabled": true})),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["role"], "member");
    assert_eq!(changed.body["disabled"], true);
    let enabled = call(s, Method::PATCH, &path, t, Some(json!({"disabled": false}))).await;
    assert_eq!(enabled.body["disabled"], false);
    let sessions = call(s, Method::GET, &format!("{path}/sessions"), t, None).await;
    assert_eq!(sessions.body, json!([]));
    let reset = call(s, Method::POST, &format!("{path}/reset_methods"), t, None).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(reset.body["has_password"], false);
    assert_eq!(call(s, Method::DELETE, &path, t, None).await.status, 204);
    assert_eq!(call(s, Method::GET, &path, t, None).await.status, 404);

    // Every change above is in the organization's audit log under the token's name.
    let audit = call(s, Method::GET, "/orgs/acme/audit?limit=1000", t, None).await;
    assert_eq!(audit.status, 200);
    let me = format!("admin_token:{}", w.token_a_id);
    let seen = actions(&audit.body);
    for action in [
        "org.branding.update",
        "org.auth_config.update",
        "client.create",
        "client.delete",
        "user.create",
        "user.role.update",
        "user.disable",
        "user.enable",
        "user.reset_methods",
        "user.delete",
    ] {
        assert!(
            seen.iter().any(|(a, actor)| a == action && *actor == me),
            "{action} by {me} missing from {seen:?}"
        );
    }
    let users_only = call(
        s,
        Method::GET,
        "/orgs/acme/audit?action=user.&limit=3",
        t,
        None,
    )
    .await;
    let users_only = actions(&users_only.body);
    assert_eq!(users_only.len(), 3);
    assert!(users_only.iter().all(|(a, _)| a.starts_with("user.")));
    // (Entries of the same second have no defined order: `at` is in seconds.)

    // Deployment-wide parts.
    assert_eq!(call(s, Method::GET, "/keys", t, None).await.status, 403);
    assert_eq!(
        call(s, Method::POST, "/keys/rotate", t, None).await.status,
        403
    );
    assert_eq!(call(s, Method::GET, "/audit", t, None).await.status, 403);
    let d = Some(w.deployment.as_str());
    let keys = call(s, Method::GET, "/keys", d, None).await;
    assert_eq!(keys.status, 200);
    assert!(keys.body[0].get("private_key").is_none());
    let before = s.app().keys.current().active.kid.clone();
    let rotated = call(s, Method::POST, "/keys/rotate", d, None).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_ne!(rotated.body["active_kid"], before.as_str());
    assert_eq!(
        s.app().keys.current().active.kid,
        rotated.body["active_kid"].as_str().unwrap()
    );
    let all = call(s, Method::GET, "/orgs", d, None).await;
    assert_eq!(
        all.body.as_array().unwrap().len(),
        3,
        "default, acme, globex"
    );
    let new_org = call(
        s,
        Method::POST,
        "/orgs",
        d,
        Some(json!({"slug": "initech", "name": "Initech"})),
    )
    .await;
    assert_eq!(new_org.status, 201, "{}", new_org.body);
    let twice = call(
        s,
        Method::POST,
        "/orgs",
        d,
        Some(json!({"slug": "initech", "name": "Initech"})),
    )
    .await;
    assert_eq!(twice.status, 409);
    let bad_slug = call(
        s,
        Method::POST,
        "/orgs",
        d,
        Some(json!({"slug": "Not Valid", "name": "X"})),
    )
    .await;
    assert_eq!(bad_slug.status, 400);
    assert_eq!(
        call(s, Method::GET, "/orgs/nope", d, None).await.status,
        404
    );
    let everything = call(s, Method::GET, "/audit?action=keys.", d, None).await;
    let me = format!("admin_token:{}", w.deployment_id);
    assert_eq!(
        actions(&everything.body),
        vec![("keys.rotate".to_owned(), me.clone())]
    );
    let orgs = actions(
        &call(s, Method::GET, "/audit?action=org.create", d, None)
            .await
            .body,
    );
    assert!(orgs.contains(&("org.create".to_owned(), me)));
    assert!(orgs.contains(&("org.create".to_owned(), "cli".to_owned())));

    let spec = s.get(&format!("{API}/openapi.yaml")).await;
    assert_eq!(spec.status(), 200);
    let spec = spec.text().await.unwrap();
    assert!(spec.starts_with("openapi: 3.1"));
    for path in [
        "/orgs/{org}/users/{user_id}/reset_methods",
        "/keys/rotate",
        "/orgs/{org}/audit",
    ] {
        assert!(spec.contains(&format!("  {path}:")), "{path} documented");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_out_guard_answers_400() {
    let w = world().await;
    let s = &w.server;
    let t = Some(w.token_a.as_str());
    let user = call(
        s,
        Method::POST,
        "/orgs/acme/users",
        t,
        Some(json!({"email": "ann@acme.example", "password": PASSWORD})),
    )
    .await;
    assert_eq!(user.status, 201);
    let all_off = json!({
        "password": {"enabled": false},
        "passkey": {"enabled": false},
        "qr": {"enabled": false},
    });
    let refused = call(s, Method::PUT, "/orgs/acme/auth_config", t, Some(all_off)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["error"], "invalid_request");
    assert!(
        refused.body["error_description"]
            .as_str()
            .unwrap()
            .contains("at least one")
    );
    let passkey_only = json!({"password": {"enabled": false}, "qr": {"enabled": false}});
    let refused = call(
        s,
        Method::PUT,
        "/orgs/acme/auth_config",
        t,
        Some(passkey_only),
    )
    .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body["error_description"]
            .as_str()
            .unwrap()
            .contains("lock every account out"),
        "{}",
        refused.body
    );
    // Nothing was saved.
    let config = call(s, Method::GET, "/orgs/acme/auth_config", t, None).await;
    assert_eq!(config.body["password"]["enabled"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admin_credentials_of_the_right_organization_get_in() {
    let w = world().await;
    let s = &w.server;
    let store = &s.app().store;
    let a = Some(w.token_a.as_str());

    let missing = call(s, Method::GET, "/orgs", None, None).await;
    assert_eq!(missing.status, 401);
    assert!(missing.www_authenticate.unwrap().starts_with("Bearer"));
    let garbage = call(s, Method::GET, "/orgs", Some("not-a-token"), None).await;
    assert_eq!(garbage.status, 401);
    assert!(garbage.www_authenticate.unwrap().contains("invalid_token"));
    let huge = "x".repeat(6000);
    assert_eq!(
        call(s, Method::GET, "/orgs", Some(&huge), None)
            .await
            .status,
        401
    );

    // Org B's resources through org A's token: 403; B's user through A's path: 404.
    let b_user = call(
        s,
        Method::POST,
        "/orgs/globex/users",
        Some(&w.token_b),
        Some(json!({"email": "bo@globex.example"})),
    )
    .await;
    assert_eq!(b_user.status, 201);
    let b_user = b_user.body["id"].as_str().unwrap().to_owned();
    for (method, path) in [
        (Method::GET, "/orgs/globex".to_owned()),
        (Method::GET, "/orgs/globex/users".to_owned()),
        (Method::GET, format!("/orgs/{}/users", w.b.id)),
        (Method::GET, "/orgs/globex/clients".to_owned()),
        (Method::GET, "/orgs/globex/auth_config".to_owned()),
        (Method::PUT, "/orgs/globex/auth_config".to_owned()),
        (Method::GET, "/orgs/globex/audit".to_owned()),
        (Method::DELETE, format!("/orgs/globex/users/{b_user}")),
        (Method::GET, "/orgs/no-such-org/users".to_owned()),
    ] {
        let answer = call(s, method.clone(), &path, a, Some(json!({}))).await;
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
    }
    for (method, path) in [
        (Method::GET, format!("/orgs/acme/users/{b_user}")),
        (Method::PATCH, format!("/orgs/acme/users/{b_user}")),
        (Method::DELETE, format!("/orgs/acme/users/{b_user}")),
        (
            Method::POST,
            format!("/orgs/acme/users/{b_user}/reset_methods"),
        ),
        (Method::GET, format!("/orgs/acme/users/{b_user}/sessions")),
    ] {
        let answer = call(s, method.clone(), &path, a, Some(json!({"disabled": true}))).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.body);
    }
    let still = call(
        s,
        Method::GET,
        &format!("/orgs/globex/users/{b_user}"),
        Some(&w.token_b),
        None,
    )
    .await;
    assert_eq!(still.body["disabled"], false);

    // A revoked token stops working at once.
    let (row, doomed) = admin::tokens::create(store, &Actor::cli(), Some(&w.a.id), "doomed")
        .await
        .unwrap();
    assert_eq!(
        call(s, Method::GET, "/orgs", Some(&doomed), None)
            .await
            .status,
        200
    );
    admin::tokens::revoke(store, &Actor::cli(), &row.id)
        .await
        .unwrap();
    assert_eq!(
        call(s, Method::GET, "/orgs", Some(&doomed), None)
            .await
            .status,
        401
    );

    // Client credentials: an admin_api client of org A works for org A only.
    let created = call(
        s,
        Method::POST,
        "/orgs/acme/clients",
        a,
        Some(json!({"name": "Provisioner", "redirect_uris": ["https://p.example/cb"], "admin_api": true})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["admin_api"], true);
    let id = created.body["client_id"].as_str().unwrap().to_owned();
    let secret = created.body["client_secret"].as_str().unwrap().to_owned();
    let form = |scope: &'static str, id: &str, secret: &str| {
        vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_id".to_owned(), id.to_owned()),
            ("client_secret".to_owned(), secret.to_owned()),
            ("scope".to_owned(), scope.to_owned()),
        ]
    };
    let token_for = |f: Vec<(String, String)>| async move {
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        token_request(s, &pairs).await
    };
    let (status, body) = token_for(form("admin", &id, &secret)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "admin");
    let cc = body["access_token"].as_str().unwrap().to_owned();
    let made = call(
        s,
        Method::POST,
        "/orgs/acme/users",
        Some(&cc),
        Some(json!({"email": "carol@acme.example"})),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(
        call(s, Method::GET, "/orgs/globex/users", Some(&cc), None)
            .await
            .status,
        403
    );
    assert_eq!(
        call(s, Method::GET, "/keys", Some(&cc), None).await.status,
        403
    );
    let audit = call(
        s,
        Method::GET,
        "/orgs/acme/audit?action=user.create",
        a,
        None,
    )
    .await;
    assert_eq!(audit.body[0]["actor"], format!("client:{id}"));
    assert_eq!(audit.body[0]["target"], made.body["id"]);

    // Without the admin scope, the same client's token is refused.
    let (status, body) = token_for(form("", &id, &secret)).await;
    assert_eq!(status, 200, "{body}");
    let plain = body["access_token"].as_str().unwrap().to_owned();
    let refused = call(s, Method::GET, "/orgs/acme/users", Some(&plain), None).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .www_authenticate
            .unwrap()
            .contains("insufficient_scope")
    );

    // Clearing the flag cuts off the already issued token.
    admin::clients::set_admin_api(store, &Actor::cli(), &w.a.id, &id, false)
        .await
        .unwrap();
    assert_eq!(
        call(s, Method::GET, "/orgs/acme/users", Some(&cc), None)
            .await
            .status,
        403
    );

    // A client without admin_api asking for the admin scope: invalid_scope.
    let other = call(
        s,
        Method::POST,
        "/orgs/acme/clients",
        a,
        Some(json!({"name": "Shop", "redirect_uris": ["https://shop.example/cb"]})),
    )
    .await;
    let (status, body) = token_for(form(
        "admin",
        other.body["client_id"].as_str().unwrap(),
        other.body["client_secret"].as_str().unwrap(),
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_scope");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_listed_and_ended_and_a_persons_token_is_refused() {
    let w = world().await;
    let s = &w.server;
    let store = &s.app().store;
    let default_org = s.app().default_org.id.clone();
    let (token_row, token) =
        admin::tokens::create(store, &Actor::cli(), Some(&default_org), "default")
            .await
            .unwrap();
    let t = Some(token.as_str());
    let (client_id, secret) = s.client(false, "https://rp.example.com/cb").await;
    let secret = secret.unwrap();
    let user_id = s.user("dana@example.com").await;
    admin::users::set_role(store, &Actor::cli(), &default_org, &user_id, "admin")
        .await
        .unwrap();
    let (_browser, tokens) = sign_in(s, &client_id, Some(&secret), "dana@example.com").await;

    // Even an organization admin's own access token is not an admin API credential.
    let access = tokens["access_token"].as_str().unwrap();
    let refused = call(s, Method::GET, "/orgs/default/users", Some(access), None).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .www_authenticate
            .unwrap()
            .contains("insufficient_scope")
    );

    let path = format!("/orgs/default/users/{user_id}/sessions");
    let sessions = call(s, Method::GET, &path, t, None).await;
    assert_eq!(sessions.status, 200);
    let list = sessions.body.as_array().unwrap();
    assert_eq!(list.len(), 1);
    let sid = list[0]["id"].as_str().unwrap().to_owned();
    // Another organization's token cannot end it, even through its own path.
    let foreign = call(
        s,
        Method::DELETE,
        &format!("/orgs/acme/sessions/{sid}"),
        Some(&w.token_a),
        None,
    )
    .await;
    assert_eq!(foreign.status, 404);
    let ended = call(
        s,
        Method::DELETE,
        &format!("/orgs/default/sessions/{sid}"),
        t,
        None,
    )
    .await;
    assert_eq!(ended.status, 204);
    assert_eq!(call(s, Method::GET, &path, t, None).await.body, json!([]));
    // The session's grant went with it: the refresh token is dead.
    let (status, body) = common::refresh(
        s,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // Disabling ends the sessions of a fresh sign-in too.
    let (_browser, tokens) = sign_in(s, &client_id, Some(&secret), "dana@example.com").await;
    assert_eq!(
        call(s, Method::GET, &path, t, None)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let disabled = call(
        s,
        Method::PATCH,
        &format!("/orgs/default/users/{user_id}"),
        t,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(disabled.status, 200);
    assert_eq!(call(s, Method::GET, &path, t, None).await.body, json!([]));
    let (status, _) = common::refresh(
        s,
        &client_id,
        &secret,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 400);

    let audit = call(
        s,
        Method::GET,
        "/orgs/default/audit?action=session.",
        t,
        None,
    )
    .await;
    assert_eq!(
        actions(&audit.body),
        vec![(
            "session.revoke".to_owned(),
            format!("admin_token:{}", token_row.id)
        )]
    );
    let disable = call(
        s,
        Method::GET,
        "/orgs/default/audit?action=user.disable",
        t,
        None,
    )
    .await;
    assert_eq!(disable.body[0]["detail"]["sessions_ended"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_bodies_and_queries_get_400_never_500() {
    let w = world().await;
    let s = &w.server;
    let t = w.token_a.as_str();
    let huge = "n".repeat(60_000);
    let cases: Vec<(Method, &str, Vec<u8>)> = vec![
        (Method::POST, "/orgs/acme/users", b"{".to_vec()),
        (Method::POST, "/orgs/acme/users", b"".to_vec()),
        (Method::POST, "/orgs/acme/users", b"\xff\xfe".to_vec()),
        (Method::POST, "/orgs/acme/users", br#"{"email":"a@acme.example","admin":true}"#.to_vec()),
        (Method::POST, "/orgs/acme/users", br#"{"email":"a\u0000@acme.example"}"#.to_vec()),
        (Method::POST, "/orgs/acme/users", br#"{"email":"a@acme.example","name":"x\u0000"}"#.to_vec()),
        (Method::POST, "/orgs/acme/users", br#"{"email":42}"#.to_vec()),
        (Method::POST, "/orgs/acme/users", br#"[]"#.to_vec()),
        (Method::POST, "/orgs/acme/users", format!(r#"{{"email":"a@acme.example","name":"{huge}"}}"#).into_bytes()),
        (Method::POST, "/orgs/acme/users", format!(r#"{{"email":"{huge}@acme.example"}}"#).into_bytes()),
        (Method::POST, "/orgs/acme/clients", br#"{"name":"x"}"#.to_vec()),
        (Method::POST, "/orgs/acme/clients", format!(r#"{{"name":"{huge}","redirect_uris":["https://a.example/cb"]}}"#).into_bytes()),
        (Method::POST, "/orgs/acme/clients", br#"{"name":"x\u0000","redirect_uris":["https://a.example/cb"]}"#.to_vec()),
        (Method::POST, "/orgs/acme/clients", br#"{"name":"x","redirect_uris":["https://a.example/cb"],"public":true,"admin_api":true}"#.to_vec()),
        (Method::PATCH, "/orgs/acme", br#"{"name":""}"#.to_vec()),
        (Method::PATCH, "/orgs/acme", br#"{"logo_url":"javascript:alert(1)"}"#.to_vec()),
        (Method::PATCH, "/orgs/acme", br#"{"logo_url":"https://a.example/\u0000"}"#.to_vec()),
        (Method::PATCH, "/orgs/acme", format!(r#"{{"name":"{huge}"}}"#).into_bytes()),
        (Method::PATCH, "/orgs/acme", br##"{"colour":"#000000"}"##.to_vec()),
        (Method::PUT, "/orgs/acme/auth_config", br#"{"sms":{"enabled":true}}"#.to_vec()),
        (Method::PUT, "/orgs/acme/auth_config", br#"{"password":true}"#.to_vec()),
        (Method::PUT, "/orgs/acme/auth_config", b"null".to_vec()),
    ];
    for (method, path, body) in cases {
        let label = format!(
            "{method} {path} {}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
        let answer = raw(s, method, path, t, body).await;
        assert_eq!(answer.status, 400, "{label}: {}", answer.body);
        assert_eq!(answer.body["error"], "invalid_request", "{label}");
    }
    let d = w.deployment.as_str();
    for (method, path, body) in [
        (
            Method::POST,
            "/orgs",
            br#"{"slug":"a\u0000b","name":"x"}"#.to_vec(),
        ),
        (
            Method::POST,
            "/orgs",
            br#"{"slug":"ok","name":"x\u0000"}"#.to_vec(),
        ),
        (
            Method::POST,
            "/orgs",
            format!(r#"{{"slug":"ok","name":"{huge}"}}"#).into_bytes(),
        ),
    ] {
        let answer = raw(s, method, path, d, body).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
    }
    for (path, expected) in [
        ("/orgs/acme/audit?limit=abc", 400),
        ("/orgs/acme/audit?limit=0", 400),
        ("/orgs/acme/audit?limit=99999999999999999999", 400),
        ("/orgs/acme/audit?action=%00", 400),
        ("/orgs/acme/audit?limit=1&limit=2", 400),
        ("/orgs/acme/users?email=%00", 200),
        ("/orgs/acme/users?email=a&email=b", 400),
        ("/orgs/acme/users/%00", 404),
        ("/orgs/acme/users/%FF", 400),
        ("/orgs/%00/users", 403),
        ("/orgs/acme/sessions/%00", 405),
    ] {
        let answer = call(s, Method::GET, path, Some(t), None).await;
        assert_eq!(answer.status, expected, "{path}: {}", answer.body);
    }
    assert_eq!(
        call(s, Method::DELETE, "/orgs/acme/sessions/%00", Some(t), None)
            .await
            .status,
        404
    );
    // Nothing was created by the refused requests, and the server still answers.
    let users = call(s, Method::GET, "/orgs/acme/users", Some(t), None).await;
    assert_eq!(users.body, json!([]));
}

//! Passkey ceremonies against the real server with a software authenticator
//! (webauthn-authenticator-rs `SoftPasskey`): registration after a password sign-in,
//! username-first sign-in, reauthentication, single-use and expiring challenges, counter
//! regression, deletion, and the effect on `amr`, `acr` and `can_reauthenticate`.
//! `SoftPasskey` cannot hold discoverable credentials; the browser suite covers those.

mod common;

use common::passkey::{
    REDIRECT, code_after, data_attr, origin, passkey_sign_in, post_json, register, server,
    sign_in_page,
};
use common::{Browser, Landing, PASSWORD, TestServer, claims_of, exchange, hidden};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::RequestChallengeResponse;

#[tokio::test(flavor = "multi_thread")]
async fn register_after_password_then_sign_in_and_reauthenticate_with_the_passkey() {
    let server = server().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let sub = server.user("pk@example.com").await;
    let mut soft = SoftPasskey::new(true);

    // Password sign-in, then the offer to add a passkey.
    let browser = Browser::new(&server.issuer());
    let (page, _) = sign_in_page(&server, &browser, &client_id, &[]).await;
    assert!(
        page.contains("autocomplete=\"username webauthn\""),
        "passkey autofill is offered"
    );
    let Landing::Page(200, offer) = browser
        .submit_login(&page, "pk@example.com", PASSWORD)
        .await
    else {
        panic!("the passkey offer page should follow a password sign-in")
    };
    assert!(offer.contains("Add a passkey"));
    let done = register(&browser, &offer, &mut soft, origin(&server), "Soft key").await;
    assert_eq!(done["name"], "Soft key");
    let continue_url = data_attr(&offer, "data-continue");
    assert!(
        browser
            .follow(&continue_url)
            .await
            .params()
            .contains_key("code")
    );

    // The account page lists it.
    let account = browser
        .http
        .get(format!("{}/account", server.issuer()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        account.contains("Soft key")
            && account.contains(&format!(
                "data-passkey=\"{}\"",
                done["id"].as_str().unwrap()
            ))
    );

    // A new browser signs in with the passkey alone.
    let fresh = Browser::new(&server.issuer());
    let (page, verifier) = sign_in_page(&server, &fresh, &client_id, &[]).await;
    let (status, finished, replay) =
        passkey_sign_in(&fresh, &page, "pk@example.com", &mut soft, origin(&server)).await;
    assert_eq!(status, 200, "{finished}");
    // The same ceremony cannot be used twice.
    let (status, again) = post_json(&fresh, "/login/passkey/finish", replay).await;
    assert_eq!(status, 400);
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .contains("expired or was already used")
    );
    let code = code_after(&fresh, finished["redirect"].as_str().unwrap()).await;
    let (_, tokens) = exchange(
        &server,
        &client_id,
        secret.as_deref(),
        &code,
        REDIRECT,
        &verifier,
    )
    .await;
    let claims = claims_of(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], sub.as_str());
    assert_eq!(
        claims["amr"],
        json!(["hwk", "user", "mfa"]),
        "device-bound key with user verification"
    );
    assert_eq!(claims["acr"], "2");
    let first_auth_time = claims["auth_time"].as_i64().unwrap();

    // Reauthentication (prompt=login with the hint): the passkey is offered first and
    // advances auth_time.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let hint = tokens["id_token"].as_str().unwrap().to_owned();
    let (page, verifier) = sign_in_page(
        &server,
        &fresh,
        &client_id,
        &[("prompt", "login"), ("id_token_hint", &hint)],
    )
    .await;
    assert!(
        page.contains("Use your passkey"),
        "passkey first for a hinted account that has one"
    );
    let (status, finished, _) = passkey_sign_in(
        &fresh,
        &page,
        "ignored-because-hinted@example.com",
        &mut soft,
        origin(&server),
    )
    .await;
    assert_eq!(status, 200, "{finished}");
    let code = code_after(&fresh, finished["redirect"].as_str().unwrap()).await;
    let (_, tokens) = exchange(
        &server,
        &client_id,
        secret.as_deref(),
        &code,
        REDIRECT,
        &verifier,
    )
    .await;
    let claims = claims_of(tokens["id_token"].as_str().unwrap());
    assert!(claims["auth_time"].as_i64().unwrap() > first_auth_time);
    assert_eq!(claims["amr"], json!(["hwk", "user", "mfa"]));

    // Passkey-only: without a password the user can still reauthenticate.
    tessera::store::users::set_password_hash(&server.app().store, &sub, None)
        .await
        .unwrap();
    let (status, refreshed) = common::refresh(
        &server,
        &client_id,
        secret.as_deref().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        claims_of(refreshed["id_token"].as_str().unwrap())["can_reauthenticate"],
        true
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_emails_get_the_same_shape_and_ceremonies_expire() {
    let server = server().await;
    let (client_id, _) = server.client(false, REDIRECT).await;
    server.user("nopk@example.com").await;
    let browser = Browser::new(&server.issuer());
    let (page, _) = sign_in_page(&server, &browser, &client_id, &[]).await;
    let request = hidden(&page, "request");
    let csrf = hidden(&page, "csrf");
    let shape = |v: &Value| {
        let pk = &v["options"]["publicKey"];
        let mut keys: Vec<String> = pk.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        (
            keys,
            pk["allowCredentials"].as_array().map(|a| a.len()),
            pk["userVerification"].clone(),
        )
    };
    let (_, unknown) = post_json(
        &browser,
        "/login/passkey/options",
        json!({ "request": request, "csrf": csrf, "email": "nobody@example.com" }),
    )
    .await;
    let (_, no_passkey) = post_json(
        &browser,
        "/login/passkey/options",
        json!({ "request": request, "csrf": csrf, "email": "nopk@example.com" }),
    )
    .await;
    assert_eq!(shape(&unknown), shape(&no_passkey));
    assert_eq!(shape(&unknown).1, Some(1));
    assert_eq!(
        unknown["options"]["publicKey"]["userVerification"],
        "required"
    );
    // The same unknown email gets the same decoy credential id every time.
    let (_, again) = post_json(
        &browser,
        "/login/passkey/options",
        json!({ "request": request, "csrf": csrf, "email": "nobody@example.com" }),
    )
    .await;
    assert_eq!(
        unknown["options"]["publicKey"]["allowCredentials"],
        again["options"]["publicKey"]["allowCredentials"]
    );

    // Bad CSRF and malformed input.
    let (status, _) = post_json(
        &browser,
        "/login/passkey/options",
        json!({ "request": request, "csrf": "forged" }),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = post_json(
        &browser,
        "/login/passkey/finish",
        json!({ "request": request, "csrf": csrf, "ceremony": "x", "credential": { "id": 1 } }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["message"].is_string());
    let response = browser
        .http
        .post(format!("{}/login/passkey/finish", server.issuer()))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // An expired ceremony is refused even with a correct signature.
    let mut soft = SoftPasskey::new(true);
    let registered_browser = Browser::new(&server.issuer());
    let (page, _) = sign_in_page(&server, &registered_browser, &client_id, &[]).await;
    let Landing::Page(200, offer) = registered_browser
        .submit_login(&page, "nopk@example.com", PASSWORD)
        .await
    else {
        panic!()
    };
    register(&registered_browser, &offer, &mut soft, origin(&server), "").await;
    let (page, _) = sign_in_page(&server, &browser, &client_id, &[]).await;
    let (request, csrf) = (hidden(&page, "request"), hidden(&page, "csrf"));
    let (_, started) = post_json(
        &browser,
        "/login/passkey/options",
        json!({ "request": request, "csrf": csrf, "email": "nopk@example.com" }),
    )
    .await;
    let store = &server.app().store;
    let mut row =
        tessera::store::passkeys::take_ceremony(store, started["ceremony"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
    row.expires_at = tessera::store::now() - 1;
    tessera::store::passkeys::insert_ceremony(store, &row)
        .await
        .unwrap();
    let options: RequestChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let credential = soft.do_authentication(origin(&server), options).unwrap();
    let (status, body) = post_json(&browser, "/login/passkey/finish", json!({ "request": request, "csrf": csrf, "ceremony": started["ceremony"], "credential": credential })).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_counter_that_goes_backwards_flags_the_passkey_and_deletion_needs_a_fresh_sign_in() {
    let server = server().await;
    let (client_id, _) = server.client(false, REDIRECT).await;
    let sub = server.user("clone@example.com").await;
    let mut soft = SoftPasskey::new(true);
    let browser = Browser::new(&server.issuer());
    let (page, _) = sign_in_page(&server, &browser, &client_id, &[]).await;
    let Landing::Page(200, offer) = browser
        .submit_login(&page, "clone@example.com", PASSWORD)
        .await
    else {
        panic!()
    };
    let done = register(&browser, &offer, &mut soft, origin(&server), "Original").await;
    let id = done["id"].as_str().unwrap().to_owned();

    // The genuine authenticator has moved on to counter 1000; this one (a clone) is behind.
    let store = &server.app().store;
    let row = tessera::store::passkeys::find(store, &id)
        .await
        .unwrap()
        .unwrap();
    let mut credential: Value = serde_json::from_str(&row.credential).unwrap();
    credential["cred"]["counter"] = json!(1000);
    tessera::store::passkeys::record_use(
        store,
        &id,
        &credential.to_string(),
        tessera::store::now(),
    )
    .await
    .unwrap();
    let clone_browser = Browser::new(&server.issuer());
    let (page, _) = sign_in_page(&server, &clone_browser, &client_id, &[]).await;
    let (status, body, _) = passkey_sign_in(
        &clone_browser,
        &page,
        "clone@example.com",
        &mut soft,
        origin(&server),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("copied"),
        "{body}"
    );
    assert!(
        tessera::store::passkeys::find(store, &id)
            .await
            .unwrap()
            .unwrap()
            .flagged
    );
    let account = browser
        .http
        .get(format!("{}/account", server.issuer()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains("may have been copied"));

    // Deleting: refused while the last sign-in is older than five minutes.
    let csrf = data_attr(&account, "data-csrf");
    let session_id =
        tessera::store::sessions::list_live_for_user(store, &sub, tessera::store::now())
            .await
            .unwrap()[0]
            .clone();
    tessera::store::sessions::reauthenticate(
        store,
        &session_id.id,
        &session_id.secret_hash,
        tessera::store::now() - 600,
        &session_id.amr,
        &session_id.acr,
        session_id.expires_at,
    )
    .await
    .unwrap();
    let r = browser
        .http
        .post(format!("{}/account/passkeys/delete", server.issuer()))
        .form(&[("csrf", csrf.as_str()), ("id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/account?notice=reauthenticate");
    assert!(
        tessera::store::passkeys::find(store, &id)
            .await
            .unwrap()
            .is_some()
    );
    // After a fresh sign-in it goes.
    tessera::store::sessions::reauthenticate(
        store,
        &session_id.id,
        &session_id.secret_hash,
        tessera::store::now(),
        &session_id.amr,
        &session_id.acr,
        session_id.expires_at,
    )
    .await
    .unwrap();
    let r = browser
        .http
        .post(format!("{}/account/passkeys/delete", server.issuer()))
        .form(&[("csrf", csrf.as_str()), ("id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/account?notice=passkey-deleted");
    assert!(
        tessera::store::passkeys::find(store, &id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn passkeys_are_off_for_an_ip_issuer() {
    let server = TestServer::start().await;
    assert!(server.app().passkeys.is_none());
    let (client_id, _) = server.client(false, REDIRECT).await;
    let browser = Browser::new(&server.url);
    let (url, _) = common::authorize_url(&server, &client_id, REDIRECT, &[]);
    let Landing::Page(200, page) = browser.follow(&url).await else {
        panic!()
    };
    assert!(
        !page.contains("webauthn"),
        "no passkey UI without a usable RP ID"
    );
    let (status, _) = post_json(
        &browser,
        "/login/passkey/options",
        json!({ "request": hidden(&page, "request"), "csrf": hidden(&page, "csrf") }),
    )
    .await;
    assert_eq!(status, 404);
}

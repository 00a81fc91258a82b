//! The token endpoint and the tokens it issues: code redemption rules, PKCE, refresh-token
//! rotation and reuse detection, client authentication, client credentials, userinfo.

mod common;

use base64::Engine;
use common::{
    Browser, PASSWORD, TestServer, authorize_url, claims_of, exchange, plain_client, token_request,
};

const REDIRECT: &str = "https://rp.example.com/cb";

async fn code_for(server: &TestServer, client_id: &str, email: &str) -> (String, String) {
    let browser = Browser::new(&server.url);
    let (url, verifier) = authorize_url(server, client_id, REDIRECT, &[]);
    let q = browser.authorize(&url, email, PASSWORD).await.params();
    (q["code"].clone(), verifier)
}

/// A code flow for `email` and the code's exchange, which must succeed: the tokens.
async fn tokens_for(
    server: &TestServer,
    client_id: &str,
    secret: Option<&str>,
    email: &str,
) -> serde_json::Value {
    let (code, verifier) = code_for(server, client_id, email).await;
    let (status, tokens) = exchange(server, client_id, secret, &code, REDIRECT, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
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
async fn code_reuse_is_refused_and_revokes_what_the_code_produced() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("a@example.com").await;
    let (code, verifier) = code_for(&server, &client_id, "a@example.com").await;
    let (status, first) = exchange(
        &server,
        &client_id,
        secret.as_deref(),
        &code,
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&server, access).await, 200);

    let (status, body) = exchange(
        &server,
        &client_id,
        secret.as_deref(),
        &code,
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        userinfo_status(&server, access).await,
        401,
        "access token revoked"
    );
    let (status, body) =
        common::refresh(&server, &client_id, secret.as_deref().unwrap(), refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "refresh token revoked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pkce_verifier_redirect_uri_and_client_must_match() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let (other_id, other_secret) = server.client(false, REDIRECT).await;
    server.user("b@example.com").await;
    let secret = secret.as_deref();

    let (code, _) = code_for(&server, &client_id, "b@example.com").await;
    let wrong = "x".repeat(50);
    let (s, b) = exchange(&server, &client_id, secret, &code, REDIRECT, &wrong).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    let (code, verifier) = code_for(&server, &client_id, "b@example.com").await;
    let (s, b) = exchange(
        &server,
        &client_id,
        secret,
        &code,
        "https://rp.example.com/other",
        &verifier,
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    let (code, verifier) = code_for(&server, &client_id, "b@example.com").await;
    let (s, b) = exchange(
        &server,
        &other_id,
        other_secret.as_deref(),
        &code,
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));

    let (code, _) = code_for(&server, &client_id, "b@example.com").await;
    let (s, b) = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client_id),
            ("client_secret", secret.unwrap()),
        ],
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "verifier missing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_codes_are_refused() {
    let server = TestServer::start_with(|c| c.tokens.code_ttl_secs = 1).await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("c@example.com").await;
    let (code, verifier) = code_for(&server, &client_id, "c@example.com").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (s, b) = exchange(
        &server,
        &client_id,
        secret.as_deref(),
        &code,
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
}

/// Eight simultaneous uses of one code, then of one refresh token: the conditional UPDATE lets
/// at most one through, every loser gets `invalid_grant` and counts as a reuse, whether it lost
/// the race or arrived after the winner: what the winner received is revoked (RFC 6749 §4.1.2,
/// RFC 9700 §4.14.2). A loser may even preempt the winner's grant, so that no use succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn simultaneous_uses_of_a_code_or_refresh_token_leave_nothing_alive() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("race@example.com").await;
    let secret = secret.unwrap();
    let winners = |results: Vec<(u16, serde_json::Value)>| {
        for (status, body) in results.iter().filter(|(s, _)| *s != 200) {
            assert_eq!(
                (*status, body["error"].as_str()),
                (400, Some("invalid_grant"))
            );
        }
        let winners: Vec<_> = results.into_iter().filter(|(s, _)| *s == 200).collect();
        assert!(winners.len() <= 1, "at most one use wins: {winners:?}");
        winners
            .into_iter()
            .map(|(_, body)| body)
            .collect::<Vec<_>>()
    };

    let (code, verifier) = code_for(&server, &client_id, "race@example.com").await;
    let exchanges = (0..8).map(|_| {
        exchange(
            &server,
            &client_id,
            Some(&secret),
            &code,
            REDIRECT,
            &verifier,
        )
    });
    for winner in winners(futures_util::future::join_all(exchanges).await) {
        let access = winner["access_token"].as_str().unwrap();
        assert_eq!(userinfo_status(&server, access).await, 401, "grant revoked");
    }

    let first = tokens_for(&server, &client_id, Some(&secret), "race@example.com").await;
    let token = first["refresh_token"].as_str().unwrap();
    let refreshes = (0..8).map(|_| common::refresh(&server, &client_id, &secret, token));
    let won = winners(futures_util::future::join_all(refreshes).await);
    assert_eq!(
        won.len(),
        1,
        "the token's grant exists, so exactly one refresh wins"
    );
    let rotated = won[0]["refresh_token"].as_str().unwrap();
    let (status, body) = common::refresh(&server, &client_id, &secret, rotated).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "family revoked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_tokens_rotate_keep_auth_time_and_reuse_revokes_the_family() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("d@example.com").await;
    let secret = secret.unwrap();
    let first = tokens_for(&server, &client_id, Some(&secret), "d@example.com").await;
    let original = claims_of(first["id_token"].as_str().unwrap());
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let refresh = |token: String| {
        let (client_id, secret) = (client_id.clone(), secret.clone());
        let server = &server;
        async move { common::refresh(server, &client_id, &secret, &token).await }
    };
    let (status, second) = refresh(r1.clone()).await;
    assert_eq!(status, 200, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2, "rotated");
    let renewed = claims_of(second["id_token"].as_str().unwrap());
    assert_eq!(
        renewed["auth_time"], original["auth_time"],
        "refresh never advances auth_time"
    );
    assert_eq!(renewed["sid"], original["sid"]);
    assert!(renewed["iat"].as_i64() > original["iat"].as_i64());
    assert!(renewed.get("nonce").is_none());

    // Narrowing scope is allowed, widening is not.
    let (status, body) = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r2),
            ("scope", "openid phone"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );

    // Reusing the rotated r1 revokes the family: the live r2 dies too.
    let (status, body) = refresh(r1).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = refresh(r2).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        userinfo_status(&server, second["access_token"].as_str().unwrap()).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_authentication_methods_and_failures() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let secret = secret.unwrap();
    server.user("e@example.com").await;

    // client_secret_basic works.
    let (code, verifier) = code_for(&server, &client_id, "e@example.com").await;
    let response = plain_client()
        .post(format!("{}/token", server.url))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");

    // Wrong secret: 401 invalid_client with WWW-Authenticate.
    let response = plain_client()
        .post(format!("{}/token", server.url))
        .basic_auth(&client_id, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    // Malformed Basic header and two methods at once.
    let response = plain_client()
        .post(format!("{}/token", server.url))
        .header("authorization", "Basic !!!not-base64")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    let response = plain_client()
        .post(format!("{}/token", server.url))
        .header("authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // Secret guessing is throttled per client.
    let mut last = 0;
    for _ in 0..25 {
        let (status, _) = token_request(
            &server,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", "guess"),
            ],
        )
        .await;
        last = status;
    }
    assert_eq!(last, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_and_grant_type_errors() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let (public_id, _) = server.client(true, REDIRECT).await;
    let secret = secret.unwrap();
    let (status, body) = token_request(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "openid api.read"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    let at = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], client_id.as_str());
    assert_eq!(at["client_id"], client_id.as_str());

    let (status, body) = token_request(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &public_id),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (status, body) = token_request(
        &server,
        &[
            ("grant_type", "password"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = token_request(
        &server,
        &[("client_id", &client_id), ("client_secret", &secret)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let response = plain_client()
        .post(format!("{}/token", server.url))
        .json(&serde_json::json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        400,
        "JSON is not accepted where a form is expected"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn userinfo_bearer_rules() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("f@example.com").await;
    let tokens = tokens_for(&server, &client_id, secret.as_deref(), "f@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let http = plain_client();
    let url = format!("{}/userinfo", server.url);

    let r = http
        .post(&url)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "token in the form body");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["email"], "f@example.com");
    assert_eq!(body["can_reauthenticate"], true);

    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"tessera\"");

    let r = http.get(&url).bearer_auth(id_token).send().await.unwrap();
    assert_eq!(r.status(), 401, "an ID token is not an access token");
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    let tampered = format!("{}x", access);
    assert_eq!(userinfo_status(&server, &tampered).await, 401);
    let r = http
        .post(&url)
        .bearer_auth(access)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "two token locations");
}

#[tokio::test(flavor = "multi_thread")]
async fn key_rotation_publishes_before_use_and_keeps_old_keys() {
    let server = TestServer::start().await;
    let jwks = |server: &TestServer| {
        let url = format!("{}/jwks", server.url);
        async move {
            plain_client()
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let before = jwks(&server).await;
    let kids_before: Vec<String> = before["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids_before.len(), 2, "active and next are both published");
    for key in before["keys"].as_array().unwrap() {
        assert!(
            key.get("d").is_none() && key.get("p").is_none(),
            "public parts only"
        );
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "RS256");
    }
    let new_active = server.app().keys.rotate().await.unwrap();
    assert!(
        kids_before.contains(&new_active),
        "the new active key was already published"
    );
    let after = jwks(&server).await;
    let kids_after: Vec<String> = after["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids_after.len(), 3, "retired, active, next");
    assert!(kids_before.iter().all(|k| kids_after.contains(k)));

    let (client_id, secret) = server.client(false, REDIRECT).await;
    let (_, body) = token_request(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", secret.as_deref().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        common::header_of(body["access_token"].as_str().unwrap())["kid"],
        new_active.as_str()
    );

    // ETag revalidation.
    let r = plain_client()
        .get(format!("{}/jwks", server.url))
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let r = plain_client()
        .get(format!("{}/jwks", server.url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_do_not_burn_tokens_or_codes() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let (other_id, other_secret) = server.client(false, REDIRECT).await;
    let (secret, other_secret) = (secret.unwrap(), other_secret.unwrap());
    server.user("burn@example.com").await;

    // Another client presenting the code is refused, and the owner can still redeem it.
    let (code, verifier) = code_for(&server, &client_id, "burn@example.com").await;
    let (s, _) = exchange(
        &server,
        &other_id,
        Some(&other_secret),
        &code,
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!(s, 400);
    let (s, tokens) = exchange(
        &server,
        &client_id,
        Some(&secret),
        &code,
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!(s, 200, "{tokens}");
    let rt = tokens["refresh_token"].as_str().unwrap();

    // Another client presenting the refresh token, and the owner asking for a wider scope:
    // both refused, and neither uses the token up.
    let (s, b) = common::refresh(&server, &other_id, &other_secret, rt).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
    let (s, b) = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("scope", "openid phone"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_scope")));
    let (s, b) = common::refresh(&server, &client_id, &secret, rt).await;
    assert_eq!(s, 200, "the owner's token still works: {b}");
}

/// The refresh grant authenticates the client in the same store round trip as it reads the
/// token (`refresh_tokens::redeem`): the same answers as the other grants, a refused client
/// never touches the token, and its failures count in the same bucket as every grant's.
#[tokio::test(flavor = "multi_thread")]
async fn the_refresh_grant_authenticates_its_client_like_every_grant() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let secret = secret.unwrap();
    server.user("rauth@example.com").await;
    let tokens = tokens_for(&server, &client_id, Some(&secret), "rauth@example.com").await;
    let rt = tokens["refresh_token"].as_str().unwrap();

    // A wrong secret, an unknown client, and no refresh token with a wrong secret: the
    // client's error comes first, and the token is not used up.
    let (s, b) = common::refresh(&server, &client_id, "wrong", rt).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    let (s, b) = common::refresh(&server, "no-such-client", "wrong", rt).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    let (s, b) = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    let (s, b) = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_request")));
    let (s, b) = common::refresh(&server, &client_id, &secret, rt).await;
    assert_eq!(s, 200, "the owner's token still works: {b}");
    let rt = b["refresh_token"].as_str().unwrap().to_owned();

    // Guessing through the refresh grant is throttled, and counted with the other grants'
    // failures: two failed above (the unknown client counts in a bucket of its own), so 18
    // more reach the limit of 20 for this client.
    for _ in 0..18 {
        let (s, _) = common::refresh(&server, &client_id, "guess", &rt).await;
        assert_eq!(s, 401);
    }
    let (s, _) = token_request(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", "guess"),
        ],
    )
    .await;
    assert_eq!(s, 429, "the refresh grant's failures count for the client");
    let (s, _) = common::refresh(&server, &client_id, &secret, &rt).await;
    assert_eq!(s, 429, "while limited, even the right secret waits");

    // An unknown client's guesses are throttled too, whichever grant makes them: one failed
    // above, 19 more through client credentials reach the limit, and the refresh grant (which
    // reads an unknown client's tally in its own store job) sees it.
    async fn guess(server: &TestServer, grant_type: &str) -> u16 {
        let params = [
            ("grant_type", grant_type),
            ("refresh_token", "x"),
            ("client_id", "no-such-client"),
            ("client_secret", "guess"),
        ];
        token_request(server, &params).await.0
    }
    for _ in 0..19 {
        assert_eq!(guess(&server, "client_credentials").await, 401);
    }
    assert_eq!(guess(&server, "refresh_token").await, 429);
    assert_eq!(guess(&server, "client_credentials").await, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_refused_for_its_verifier_is_burned() {
    let server = TestServer::start().await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let secret = secret.unwrap();
    server.user("pkce@example.com").await;
    let (code, verifier) = code_for(&server, &client_id, "pkce@example.com").await;
    let wrong = "x".repeat(verifier.len());
    let (s, b) = exchange(&server, &client_id, Some(&secret), &code, REDIRECT, &wrong).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "{b}"
    );
    // The owner's right verifier now meets a used code: single use holds for refusals too.
    let (s, b) = exchange(
        &server,
        &client_id,
        Some(&secret),
        &code,
        REDIRECT,
        &verifier,
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "{b}"
    );
    assert!(
        b["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("already used")),
        "{b}"
    );
}

async fn introspect(server: &TestServer, client_id: &str, secret: &str, token: &str) -> bool {
    let body: serde_json::Value = plain_client()
        .post(format!("{}/introspect", server.url))
        .basic_auth(client_id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["active"]
        .as_bool()
        .expect("introspection answers active")
}

#[tokio::test(flavor = "multi_thread")]
async fn opaque_access_tokens_work_like_jwts_and_die_with_their_grant() {
    let server = TestServer::start_with(|c| {
        c.tokens.access_token_format = tessera::config::AccessTokenFormat::Opaque;
    })
    .await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    let secret = secret.unwrap();
    server.user("o@example.com").await;
    let body = tokens_for(&server, &client_id, Some(&secret), "o@example.com").await;
    let access = body["access_token"].as_str().unwrap();
    assert!(access.starts_with("tat_"), "opaque format: {access}");
    assert_eq!(access.split('.').count(), 1, "not a JWS");
    // The ID token (still RS256) binds the opaque token through at_hash (OIDC Core §3.1.3.6).
    let id_token = body["id_token"].as_str().unwrap();
    assert_eq!(common::header_of(id_token)["alg"], "RS256");
    assert_eq!(
        claims_of(id_token)["at_hash"],
        tessera::tokens::id_token::at_hash(access)
    );
    assert_eq!(userinfo_status(&server, access).await, 200);
    assert!(introspect(&server, &client_id, &secret, access).await);

    // A tampered token is refused; so is one sealed by another deployment.
    let mut tampered = access.to_owned();
    tampered.replace_range(10..11, if &access[10..11] == "A" { "B" } else { "A" });
    assert_eq!(userinfo_status(&server, &tampered).await, 401);
    // Same claims (valid grant and all), sealed under another deployment's key.
    let claims =
        tessera::tokens::access_token::unseal(&server.app().access_token_key, access).unwrap();
    assert_eq!(claims["client_id"], client_id.as_str());
    let foreign = tessera::tokens::access_token::seal(
        &tessera::tokens::access_token::sealing_key(b"another deployment"),
        &claims,
    );
    assert_eq!(userinfo_status(&server, &foreign).await, 401);

    // Client credentials: an opaque token with no signature at all, valid at introspection.
    let (status, cc) = token_request(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{cc}");
    let cc_token = cc["access_token"].as_str().unwrap();
    assert!(cc_token.starts_with("tat_"));
    assert!(introspect(&server, &client_id, &secret, cc_token).await);

    // Revoking the refresh token revokes the grant, and with it the opaque access token.
    let refresh = body["refresh_token"].as_str().unwrap();
    let revoked = plain_client()
        .post(format!("{}/revoke", server.url))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("token", refresh)])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(revoked, 200);
    assert_eq!(userinfo_status(&server, access).await, 401);
    assert!(!introspect(&server, &client_id, &secret, access).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_without_refresh_tokens_ends_with_the_session_one_with_them_lasts() {
    let server = TestServer::start_with(|c| {
        c.sessions.absolute_ttl_secs = 7200;
        c.tokens.refresh_token_ttl_secs = 86_400;
    })
    .await;
    let (client_id, secret) = server.client(false, REDIRECT).await;
    server.user("g@example.com").await;
    let mut lifetimes = Vec::new();
    for scope in ["openid", "openid offline_access"] {
        let browser = Browser::new(&server.url);
        let (url, verifier) = authorize_url(&server, &client_id, REDIRECT, &[("scope", scope)]);
        let q = browser
            .authorize(&url, "g@example.com", PASSWORD)
            .await
            .params();
        let (status, body) = exchange(
            &server,
            &client_id,
            secret.as_deref(),
            &q["code"],
            REDIRECT,
            &verifier,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let gid = claims_of(body["access_token"].as_str().unwrap())["gid"]
            .as_str()
            .unwrap()
            .to_owned();
        let grant = tessera::store::grants::find(&server.app().store, &gid)
            .await
            .unwrap()
            .expect("the grant is stored");
        lifetimes.push(grant.expires_at - grant.created_at);
    }
    assert_eq!(lifetimes, vec![7200, 86_400]);
}

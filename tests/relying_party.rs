//! Complete code flows driven by the `openidconnect` crate as an independent relying party:
//! discovery, authorization with PKCE, the hosted sign-in form, token exchange, ID token
//! verification against JWKS, and userinfo.

mod common;

use common::{Browser, PASSWORD, TestServer, claims_of};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

async fn run_flow(public: bool) {
    let server = TestServer::start().await;
    let redirect = "https://rp.example.com/callback";
    let (client_id, secret) = server.client(public, redirect).await;
    let sub = server.user("alice@example.com").await;

    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(server.issuer()).unwrap(), &http)
            .await
            .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.clone()),
        secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = Browser::new(&server.url);
    let params = browser
        .authorize(url.as_str(), "Alice@Example.com ", PASSWORD)
        .await
        .params();
    assert_eq!(params.get("state"), Some(state.secret()));
    assert_eq!(
        params.get("iss"),
        Some(&server.issuer()),
        "RFC 9207 iss parameter"
    );
    let code = params.get("code").expect("code").clone();

    let before = tessera::store::now();
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token exchange");
    let id_token = token.id_token().expect("id token");
    let verified = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("ID token verifies against JWKS");
    assert_eq!(verified.subject().as_str(), sub);
    assert!(verified.auth_time().is_some());
    assert!(verified.access_token_hash().is_some(), "at_hash present");

    let raw = claims_of(&id_token.to_string());
    assert!((raw["auth_time"].as_i64().unwrap() - before).abs() <= 5);
    assert_eq!(raw["can_reauthenticate"], true);
    assert_eq!(raw["amr"], serde_json::json!(["pwd"]));
    assert_eq!(raw["acr"], "1");
    assert_eq!(raw["azp"], client_id.as_str());
    assert!(raw["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(raw["email"], "alice@example.com");
    assert_eq!(raw["name"], "Test User");
    assert_eq!(common::header_of(&id_token.to_string())["alg"], "RS256");
    let at_header = common::header_of(token.access_token().secret());
    assert_eq!(at_header["typ"], "at+jwt", "RFC 9068 access token");

    let info: CoreUserInfoClaims = client
        .user_info(token.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), sub);
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
}

#[tokio::test(flavor = "multi_thread")]
async fn confidential_client_code_flow_with_pkce() {
    run_flow(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn public_client_code_flow_with_pkce() {
    run_flow(true).await;
}

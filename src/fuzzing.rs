//! The fuzzing surface: one entry point per `cargo fuzz` target in `fuzz/`, each feeding
//! arbitrary bytes to the same pure functions the endpoints call. `tests/fuzz_corpus.rs` runs
//! every committed corpus file through these too, so the targets build and run in plain
//! `cargo test`. Each entry point may panic only when an invariant below is broken: that
//! panic is the bug the fuzzer reports.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, header};
use serde_json::json;

use crate::http::params::Params;
use crate::oidc::authorize::{redirect_uri, request};
use crate::oidc::token::{client_auth, parse_request};
use crate::security::b64url;
use crate::tokens::access_token;
use crate::tokens::jws::{self, JwsError};
use crate::tokens::keys::KeySet;

/// The issuer the JWT targets check `iss` against.
pub const ISSUER: &str = "https://issuer.example";
/// The key the cookie target seals and unseals with.
pub const COOKIE_KEY: &[u8] = b"tessera fuzzing cookie key, not a secret";

/// One key set per process: RSA key generation is far slower than one fuzz iteration.
pub fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| KeySet::generate().expect("RSA key generation"))
}

/// Splits an input in two at its first NUL byte (the second part may be empty).
fn split(input: &[u8]) -> (&[u8], &[u8]) {
    match input.iter().position(|b| *b == 0) {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[]),
    }
}

/// Authorization request: the query string as `/authorize` parses it, every check that
/// needs no database, the error reply and the `id_token_hint`.
pub fn authorization_request(input: &[u8]) {
    let params = Params::parse(input);
    let reply = request::reply_to(&params, "https://rp.example/cb".into());
    assert_eq!(reply.redirect_uri, "https://rp.example/cb");
    for public_client in [false, true] {
        if let Ok(checked) = request::check_parameters(&params, public_client) {
            // What passed must be what the spec allows (RFC 7636 §4.2, OIDC Core §3.1.2.1).
            assert!(checked.scope.has("openid"));
            assert_eq!(params.get("response_type"), Some("code"));
            assert!(params.oversized().is_none());
            if public_client {
                assert!(checked.code_challenge.is_some());
            }
            if let Some(challenge) = &checked.code_challenge {
                assert!(crate::oidc::authorize::pkce::is_valid_challenge(challenge));
            }
            assert!(checked.max_age.is_none_or(|m| m >= 0));
            assert!(!(checked.prompt.none && checked.prompt.login));
        }
    }
    let _ = request::hinted_subject(keys(), ISSUER, &params);
}

/// Token request: form parsing and client credentials, from a body and an optional
/// Authorization header (input: `header NUL body`, or a body alone).
pub fn token_request(input: &[u8]) {
    let (head, body) = split(input);
    let (authorization, body) = if body.is_empty() {
        (None, head)
    } else {
        (Some(head), body)
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    if let Some(value) = authorization.and_then(|a| HeaderValue::from_bytes(a).ok()) {
        headers.insert(header::AUTHORIZATION, value);
    }
    let Ok(params) = parse_request(&headers, body) else {
        return;
    };
    if let Ok(presented) = client_auth::presented(&headers, &params) {
        assert!(!presented.client_id.is_empty());
        // Form credentials and Basic credentials are never mixed (RFC 6749 §2.3).
        if headers.contains_key(header::AUTHORIZATION) {
            assert!(!params.contains("client_secret"));
        }
    }
}

/// Client authentication alone: any bytes as the Authorization header.
pub fn basic_header(input: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(input) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value);
    if let Ok(Some(presented)) = client_auth::from_basic_header(&headers) {
        assert!(!presented.client_id.is_empty());
        assert!(presented.secret.is_some());
    }
}

/// Every JWT Tessera accepts (`id_token_hint`, bearer access tokens): the input as a token,
/// then the input as the claims of a token this issuer's key really signed, so the claim
/// checks behind the signature are reached too.
pub fn jwt(input: &[u8]) {
    let keys = keys();
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    // Nobody but this process holds the key, so nothing from outside may verify.
    assert!(jws::verify(keys, text).is_err(), "a forged token verified");
    // Opaque tokens too: without this deployment's sealing key nothing may open.
    let sealing_key = access_token::sealing_key(b"fuzzing instance key");
    assert!(
        access_token::validate(keys, &sealing_key, text, ISSUER, 0, 0).is_err(),
        "a forged access token validated"
    );
    let hint = Params::parse(format!("id_token_hint={}", urlencode(text)).as_bytes());
    assert!(request::hinted_subject(keys, ISSUER, &hint).is_err() || text.is_empty());

    let token = signed_with_payload(keys, access_token::TYP, input);
    match jws::verify(keys, &token) {
        Ok((_, claims)) => assert!(claims.is_object()),
        Err(e) => assert!(
            matches!(e, JwsError::Malformed | JwsError::TooLarge),
            "a genuine signature was refused: {e}"
        ),
    }
    if let Ok(claims) = access_token::validate(keys, &sealing_key, &token, ISSUER, 0, 0) {
        assert_eq!(claims.iss, ISSUER);
    }
    let hint = Params::parse(format!("id_token_hint={token}").as_bytes());
    if let Ok(Some(sub)) = request::hinted_subject(keys, ISSUER, &hint) {
        let claims: serde_json::Value = serde_json::from_slice(input).expect("verified claims");
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["sub"].as_str(), Some(sub.as_str()));
    }
}

/// A compact JWS over `payload` (raw bytes, not necessarily JSON) signed by the active key.
pub fn signed_with_payload(keys: &KeySet, typ: &str, payload: &[u8]) -> String {
    let header = json!({ "alg": "RS256", "kid": keys.active.kid, "typ": typ });
    let mut token = b64url(header.to_string().as_bytes());
    token.push('.');
    token.push_str(&b64url(payload));
    let signature = keys.active.sign(token.as_bytes());
    token.push('.');
    token.push_str(&b64url(&signature));
    token
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Redirect URI matching (input: `registered NUL requested`) and registration rules.
pub fn redirect_uri(input: &[u8]) {
    let (registered, requested) = split(input);
    let (Ok(registered), Ok(requested)) = (
        std::str::from_utf8(registered),
        std::str::from_utf8(requested),
    ) else {
        return;
    };
    let _ = redirect_uri::validate_for_registration(registered);
    let list = vec![registered.to_owned()];
    assert!(redirect_uri::is_registered(&list, registered));
    if redirect_uri::is_registered(&list, requested) && requested != registered {
        // RFC 9700 §4.1.1: only a loopback port may differ (RFC 8252 §7.3).
        let (reg, req) = (
            url::Url::parse(registered).expect("a loopback match parses"),
            url::Url::parse(requested).expect("a loopback match parses"),
        );
        assert_eq!(req.scheme(), "http");
        assert_eq!(reg.host_str(), req.host_str());
        assert!(matches!(
            req.host_str(),
            Some("127.0.0.1" | "[::1]" | "localhost")
        ));
        assert_eq!(reg.path(), req.path());
        assert_eq!(reg.query(), req.query());
        assert!(req.fragment().is_none() && req.username().is_empty());
    }
}

/// Cookie headers: Tessera's session and browser cookies, and the demo's sealed cookies.
pub fn cookie(input: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(input) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::COOKIE, value);
    for name in [crate::http::cookies::SESSION, crate::http::cookies::BROWSER] {
        if let Some(v) = crate::http::cookies::read(&headers, name) {
            assert!(!v.is_empty() && v.len() <= 256);
        }
    }
    for name in [crate::demo::SESSION_COOKIE, crate::demo::FLOW_COOKIE] {
        if let Some(v) = crate::demo::read_cookie(&headers, name) {
            let _ = crate::demo::unseal_with_key::<crate::demo::DemoSession>(COOKIE_KEY, &v);
            let _ = crate::demo::unseal_with_key::<serde_json::Value>(COOKIE_KEY, &v);
        }
    }
    // Whatever was sealed with the key opens to the same value, and only with that key.
    let text = String::from_utf8_lossy(input);
    let sealed = crate::demo::seal_with_key(COOKIE_KEY, &text);
    assert_eq!(
        crate::demo::unseal_with_key::<String>(COOKIE_KEY, &sealed).as_deref(),
        Some(text.as_ref())
    );
    assert!(crate::demo::unseal_with_key::<String>(b"another key", &sealed).is_none());
}

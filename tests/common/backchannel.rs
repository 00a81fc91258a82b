//! A relying party's side of Back-Channel Logout 1.0: a receiving endpoint on a real HTTP
//! server, and verification of each logout token as a relying party must do it (§2.6).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;

use super::{TestServer, claims_of, header_of};

pub const REDIRECT: &str = "https://rp.example.com/cb";
pub const AFTER_LOGOUT: &str = "https://rp.example.com/signed-out";

/// A confidential client with a post-logout redirect and, optionally, a back-channel logout
/// URI; returns (client_id, secret).
pub async fn client_with_logout(
    server: &TestServer,
    backchannel: Option<&str>,
) -> (String, String) {
    let (id, secret) = tessera::admin::create_client(
        &server.app().store,
        tessera::admin::NewClient {
            org_id: &server.app().default_org.id,
            name: "Logout app",
            redirect_uris: &[REDIRECT.to_owned()],
            post_logout_redirect_uris: &[AFTER_LOGOUT.to_owned()],
            public: false,
            id: None,
            secret: None,
            backchannel_logout_uri: backchannel,
        },
    )
    .await
    .unwrap();
    (id, secret.unwrap())
}

#[derive(Clone, Default)]
struct Shared {
    tokens: Arc<Mutex<Vec<String>>>,
    /// Requests to answer 500 before answering 200.
    fail_first: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

/// A relying party's back-channel logout endpoint, recording every logout token it accepts.
pub struct Receiver {
    pub url: String,
    shared: Shared,
}

pub async fn receiver() -> Receiver {
    receiver_failing(0).await
}

/// A receiver that answers 500 to its first `failures` requests.
pub async fn receiver_failing(failures: usize) -> Receiver {
    let shared = Shared::default();
    shared.fail_first.store(failures, Ordering::SeqCst);
    let app = axum::Router::new()
        .route(
            "/backchannel",
            post(|State(s): State<Shared>, body: String| async move {
                s.requests.fetch_add(1, Ordering::SeqCst);
                let failing = s
                    .fail_first
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if failing {
                    return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                }
                let token = form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                s.tokens.lock().unwrap().push(token);
                axum::http::StatusCode::OK
            }),
        )
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/backchannel", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, shared }
}

impl Receiver {
    /// The first `n` tokens accepted, waiting up to 15 s for them.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..300 {
            let got = self.tokens();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} logout tokens, got {}", self.tokens().len());
    }

    pub fn tokens(&self) -> Vec<String> {
        self.shared.tokens.lock().unwrap().clone()
    }

    /// Every request received, refused ones included.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

/// Verifies a logout token as a relying party would: RS256 signature against the JWKS
/// published by the issuer (fetched over HTTP, checked with aws-lc-rs directly), then the
/// claims of Back-Channel Logout 1.0 §2.4 and §2.6.
pub async fn verify_logout_token(
    server: &TestServer,
    token: &str,
    client_id: &str,
    sid: &str,
) -> serde_json::Value {
    let jwks: serde_json::Value = server.get("/jwks").await.json().await.unwrap();
    let header = header_of(token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "logout+jwt");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid in JWKS");
    let decode = |f: &str| tessera::security::b64url_decode(key[f].as_str().unwrap()).unwrap();
    let (signed, signature) = token.rsplit_once('.').unwrap();
    aws_lc_rs::signature::RsaPublicKeyComponents {
        n: decode("n"),
        e: decode("e"),
    }
    .verify(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        signed.as_bytes(),
        &tessera::security::b64url_decode(signature).unwrap(),
    )
    .expect("logout token signature verifies");
    let claims = claims_of(token);
    assert_eq!(claims["iss"], server.issuer().as_str());
    assert_eq!(claims["aud"], client_id);
    assert_eq!(claims["sid"], sid);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(
        claims.get("nonce").is_none(),
        "§2.4: a logout token never carries a nonce"
    );
    let now = tessera::store::now();
    let iat = claims["iat"].as_i64().expect("iat");
    assert!((now - 60..=now + 5).contains(&iat), "iat is recent");
    assert!(claims["exp"].as_i64().expect("exp") > now);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    claims
}

/// The audit record of the delivery to `client_id` for `sid` (`logout.backchannel`),
/// waiting up to 20 s for it (a failing delivery retries first).
pub async fn delivery_record(
    server: &TestServer,
    client_id: &str,
    sid: &str,
) -> tessera::store::audit::AuditEntry {
    for _ in 0..400 {
        let entries =
            tessera::store::audit::list(&server.app().store, None, Some("logout.backchannel"), 500)
                .await
                .unwrap();
        if let Some(e) = entries.into_iter().find(|e| {
            let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap();
            e.target.as_deref() == Some(client_id) && detail["sid"] == sid
        }) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no logout.backchannel audit record for {client_id} / {sid}");
}

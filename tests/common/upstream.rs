//! Upstream identity providers for the tests: a small hostile issuer written here (it signs
//! ID tokens it is told to spoil), panva's `oidc-provider` under Node, and a browser walk
//! that follows redirects across hosts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tessera::security::{b64url, sha256};

/// How the hostile issuer spoils the ID token it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    None,
    /// Signed by a key that is not in its JWKS, under the published `kid`.
    Signature,
    /// `aud` names another client.
    Audience,
    /// `nonce` is not the one sent with the authorization request.
    Nonce,
    /// `exp` is in the past.
    Expired,
}

#[derive(Debug, Clone)]
pub struct Behaviour {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub amr: Option<Vec<String>>,
    /// Seconds before now; `None`: no `auth_time` claim.
    pub auth_age: Option<i64>,
    pub tamper: Tamper,
    /// Answer the authorization request with this `error` instead of a code.
    pub authorize_error: Option<String>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            subject: "hostile-user-1".into(),
            email: Some("mallory@example.com".into()),
            email_verified: Some(true),
            amr: None,
            auth_age: Some(0),
            tamper: Tamper::None,
            authorize_error: None,
        }
    }
}

struct Issued {
    nonce: Option<String>,
    challenge: Option<String>,
    client_id: String,
}

struct Inner {
    issuer: String,
    key: RsaKeyPair,
    other_key: RsaKeyPair,
    kid: String,
    behaviour: Mutex<Behaviour>,
    codes: Mutex<HashMap<String, Issued>>,
    /// The query of the last authorization request (to check what was forwarded).
    pub last_authorize: Mutex<HashMap<String, String>>,
}

/// An OpenID provider that does just enough to be a real upstream over HTTP, and lies on
/// request.
#[derive(Clone)]
pub struct HostileIssuer {
    inner: Arc<Inner>,
}

impl HostileIssuer {
    pub async fn start() -> HostileIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let inner = Arc::new(Inner {
            issuer,
            key: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
            other_key: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
            kid: "hostile-key-1".into(),
            behaviour: Mutex::new(Behaviour::default()),
            codes: Mutex::new(HashMap::new()),
            last_authorize: Mutex::new(HashMap::new()),
        });
        let router = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(inner.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.ok();
        });
        HostileIssuer { inner }
    }

    pub fn issuer(&self) -> String {
        self.inner.issuer.clone()
    }

    pub fn behave(&self, behaviour: Behaviour) {
        *self.inner.behaviour.lock().unwrap() = behaviour;
    }

    pub fn last_authorize(&self) -> HashMap<String, String> {
        self.inner.last_authorize.lock().unwrap().clone()
    }
}

async fn discovery(State(inner): State<Arc<Inner>>) -> Response {
    let i = &inner.issuer;
    axum::Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

fn jwk(pair: &RsaKeyPair, kid: &str) -> Value {
    let public = pair.public_key();
    json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
        "n": b64url(public.modulus().big_endian_without_leading_zero()),
        "e": b64url(public.exponent().big_endian_without_leading_zero()),
    })
}

async fn jwks(State(inner): State<Arc<Inner>>) -> Response {
    axum::Json(json!({ "keys": [jwk(&inner.key, &inner.kid)] })).into_response()
}

async fn authorize(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    *inner.last_authorize.lock().unwrap() = q.clone();
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    let state = q.get("state").cloned().unwrap_or_default();
    let mut target = url::Url::parse(&redirect_uri).unwrap();
    let error = inner.behaviour.lock().unwrap().authorize_error.clone();
    if let Some(error) = error {
        target
            .query_pairs_mut()
            .append_pair("error", &error)
            .append_pair("state", &state);
        return Redirect::to(target.as_str()).into_response();
    }
    let code = tessera::security::random_secret();
    inner.codes.lock().unwrap().insert(
        code.clone(),
        Issued {
            nonce: q.get("nonce").cloned(),
            challenge: q.get("code_challenge").cloned(),
            client_id: q.get("client_id").cloned().unwrap_or_default(),
        },
    );
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    Redirect::to(target.as_str()).into_response()
}

async fn token(
    State(inner): State<Arc<Inner>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let invalid = |why: &str| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "invalid_grant", "error_description": why })),
        )
            .into_response()
    };
    let Some(issued) = form
        .get("code")
        .and_then(|c| inner.codes.lock().unwrap().remove(c))
    else {
        return invalid("unknown code");
    };
    // The relying party must prove PKCE (RFC 7636 §4.6).
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if issued.challenge.as_deref() != Some(b64url(&sha256(verifier.as_bytes())).as_str()) {
        return invalid("PKCE verification failed");
    }
    let b = inner.behaviour.lock().unwrap().clone();
    let now = tessera::store::now();
    let mut claims = json!({
        "iss": inner.issuer,
        "sub": b.subject,
        "aud": if b.tamper == Tamper::Audience { "someone-else".to_owned() } else { issued.client_id.clone() },
        "iat": now,
        "exp": if b.tamper == Tamper::Expired { now - 600 } else { now + 300 },
        "nonce": if b.tamper == Tamper::Nonce { "not-the-nonce".to_owned() } else { issued.nonce.clone().unwrap_or_default() },
    });
    if let Some(email) = &b.email {
        claims["email"] = json!(email);
    }
    if let Some(v) = b.email_verified {
        claims["email_verified"] = json!(v);
    }
    if let Some(amr) = &b.amr {
        claims["amr"] = json!(amr);
    }
    if let Some(age) = b.auth_age {
        claims["auth_time"] = json!(now - age);
    }
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": inner.kid });
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let key = if b.tamper == Tamper::Signature {
        &inner.other_key
    } else {
        &inner.key
    };
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    axum::Json(json!({
        "access_token": tessera::security::random_secret(),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": format!("{input}.{}", b64url(&signature)),
    }))
    .into_response()
}

/// Where a walk through redirects stopped.
#[derive(Debug)]
pub enum Stop {
    /// At the relying party's redirect URI, with its query.
    Rp(HashMap<String, String>),
    /// A page was shown: its URL, status and body.
    Page(String, u16, String),
}

impl Stop {
    pub fn rp(self) -> HashMap<String, String> {
        match self {
            Stop::Rp(q) => q,
            Stop::Page(url, status, body) => {
                panic!("expected the RP, got {status} at {url}: {body}")
            }
        }
    }

    pub fn page(self) -> (String, u16, String) {
        match self {
            Stop::Page(url, status, body) => (url, status, body),
            Stop::Rp(q) => panic!("expected a page, got the RP with {q:?}"),
        }
    }
}

pub const RP: &str = "https://rp.example.com/cb";

/// A browser whose cookie jar spans hosts (Tessera on 127.0.0.1, its upstream on localhost).
pub struct Walker {
    pub http: reqwest::Client,
}

impl Walker {
    pub fn new() -> Walker {
        Walker {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .build()
                .unwrap(),
        }
    }

    pub async fn walk(&self, start: &str) -> Stop {
        self.walk_response(start, self.http.get(start).send().await.unwrap())
            .await
    }

    /// Follows redirects from `response` (which came from `url`) until a page or the RP.
    pub async fn walk_response(&self, url: &str, mut response: reqwest::Response) -> Stop {
        let mut url = url::Url::parse(url).unwrap();
        for _ in 0..20 {
            let status = response.status().as_u16();
            if (300..400).contains(&status) {
                let location = response.headers()["location"].to_str().unwrap();
                url = url.join(location).unwrap();
                if url.as_str().starts_with(RP) {
                    return Stop::Rp(url.query_pairs().into_owned().collect());
                }
                response = self.http.get(url.clone()).send().await.unwrap();
                continue;
            }
            return Stop::Page(url.to_string(), status, response.text().await.unwrap());
        }
        panic!("redirect loop");
    }

    /// Posts a form on the page at `page_url` and walks on.
    pub async fn post(&self, page_url: &str, action: &str, form: &[(&str, &str)]) -> Stop {
        let target = url::Url::parse(page_url).unwrap().join(action).unwrap();
        let response = self
            .http
            .post(target.clone())
            .form(form)
            .send()
            .await
            .unwrap();
        self.walk_response(target.as_str(), response).await
    }

    /// On a Tessera sign-in page, presses the button of upstream `provider`.
    pub async fn press_upstream(&self, page_url: &str, page: &str, provider: &str) -> Stop {
        let request = super::hidden(page, "request");
        let csrf = super::hidden(page, "csrf");
        self.post(
            page_url,
            "/login/upstream",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("provider", provider),
            ],
        )
        .await
    }

    /// On a Tessera sign-in page, signs in with a password.
    pub async fn password(&self, page_url: &str, page: &str, email: &str, password: &str) -> Stop {
        let request = super::hidden(page, "request");
        let csrf = super::hidden(page, "csrf");
        self.post(
            page_url,
            "/login",
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }
}

/// panva's `oidc-provider` under Node (tests/upstream/provider.mjs), killed when dropped.
pub struct NodeProvider {
    pub issuer: String,
    _child: tokio::process::Child,
}

/// `npm ci` once per test process, guarded so parallel tests do not race.
static INSTALL: std::sync::Mutex<Option<Result<(), String>>> = std::sync::Mutex::new(None);

fn install(dir: &std::path::Path) -> Result<(), String> {
    let mut done = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(result) = done.as_ref() {
        return result.clone();
    }
    let result = if dir.join("node_modules/oidc-provider/package.json").exists() {
        Ok(())
    } else {
        std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .map_err(|e| format!("npm: {e}"))
            .and_then(|s| {
                s.success()
                    .then_some(())
                    .ok_or_else(|| format!("npm ci failed: {s}"))
            })
    };
    *done = Some(result.clone());
    result
}

impl NodeProvider {
    /// Starts the provider with one client; `None` (after saying why) when Node is not
    /// available, unless `TESSERA_REQUIRE_NODE=1`, when that is a failure.
    pub async fn start(client_id: &str, secret: &str, redirect_uri: &str) -> Option<NodeProvider> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upstream");
        let required = std::env::var("TESSERA_REQUIRE_NODE").as_deref() == Ok("1");
        let available = std::process::Command::new("node")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        let ready = if available {
            install(&dir)
        } else {
            Err("node is not installed".into())
        };
        if let Err(why) = ready {
            assert!(!required, "TESSERA_REQUIRE_NODE=1 but {why}");
            eprintln!("skipping the oidc-provider test: {why}");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new("node")
            .arg("provider.mjs")
            .arg(port.to_string())
            .args([client_id, secret, redirect_uri])
            .current_dir(&dir)
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let issuer = format!("http://localhost:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            let discovery = http
                .get(format!("{issuer}/.well-known/openid-configuration"))
                .send()
                .await;
            if discovery.is_ok_and(|r| r.status().is_success()) {
                return Some(NodeProvider {
                    issuer,
                    _child: child,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("oidc-provider did not start on port {port}");
    }
}

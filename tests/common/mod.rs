//! Test harness: each test starts its own real Tessera on an ephemeral port with its own
//! database — a fresh SQLite file, or a fresh PostgreSQL database when
//! `TESSERA_TEST_DATABASE_URL` points at a server — and drives it over HTTP.

#![allow(dead_code)]

pub mod backchannel;
pub mod otp;
pub mod passkey;
pub mod process;
pub mod upstream;

use std::collections::HashMap;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use reqwest::redirect::Policy;
use tessera::app::Running;
use tessera::config::Config;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestServer {
    pub running: Option<Running>,
    pub url: String,
    pub database_url: String,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match std::env::var("TESSERA_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => fresh_postgres_database(&url).await,
            _ => format!("sqlite://{}", dir.path().join("tessera.db").display()),
        };
        Self::start_on(database_url, dir, adjust).await
    }

    /// Starts a server on an existing database (a second replica, or a restart).
    pub async fn start_on(
        database_url: String,
        dir: tempfile::TempDir,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().unwrap().port();
        let mut config = Config {
            issuer: format!("http://127.0.0.1:{port}"),
            data_dir: dir.path().to_owned(),
            database_url: Some(database_url.clone()),
            database_max_connections: 8,
            demo: true,
            // Many servers run side by side: each gets its own free metrics port.
            metrics_bind: "127.0.0.1:0".into(),
            ..Config::default()
        };
        adjust(&mut config);
        config.validate().expect("valid test config");
        let running = tessera::app::start(config, listener)
            .await
            .expect("server starts");
        TestServer {
            url: running.url(),
            running: Some(running),
            database_url,
            _dir: dir,
        }
    }

    pub fn app(&self) -> &tessera::app::App {
        &self.running.as_ref().unwrap().app
    }

    pub fn issuer(&self) -> String {
        self.app().config.issuer.clone()
    }

    /// Stops the server and hands back its data directory (which holds the SQLite file).
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        dir
    }

    /// Registers a client in the default organization; returns (client_id, secret).
    pub async fn client(&self, public: bool, redirect_uri: &str) -> (String, Option<String>) {
        tessera::admin::create_client(
            &self.app().store,
            tessera::admin::NewClient {
                org_id: &self.app().default_org.id,
                name: "Test app",
                redirect_uris: &[redirect_uri.to_owned()],
                post_logout_redirect_uris: &[],
                public,
                id: None,
                secret: None,
                backchannel_logout_uri: None,
            },
        )
        .await
        .expect("client created")
    }

    /// Creates a user with [`PASSWORD`]; returns its `sub`.
    pub async fn user(&self, email: &str) -> String {
        tessera::admin::create_user(
            &self.app().store,
            tessera::admin::NewUser {
                org_id: &self.app().default_org.id,
                email,
                name: Some("Test User"),
                password: Some(PASSWORD.into()),
                email_verified: true,
            },
        )
        .await
        .expect("user created")
        .id
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        plain_client()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("request")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            // Stop accepting; the runtime ends with the test anyway.
            drop(r);
        }
    }
}

pub async fn fresh_postgres_database(base: &str) -> String {
    let name = format!(
        "tessera_test_{}",
        tessera::security::random_id()
            .to_lowercase()
            .replace(['-', '_'], "")
    );
    let mut conn = AsyncPgConnection::establish(base)
        .await
        .expect("connect to PostgreSQL");
    conn.batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let mut url = url::Url::parse(base).expect("database URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// A browser: a cookie jar and no automatic redirects, so each hop can be checked.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
}

/// Where a sign-in through the hosted page ended.
#[derive(Debug)]
pub enum Landing {
    /// Redirected to the client with these query parameters.
    Client(HashMap<String, String>),
    /// A page was shown instead (status, body).
    Page(u16, String),
}

impl Landing {
    pub fn params(self) -> HashMap<String, String> {
        match self {
            Landing::Client(p) => p,
            Landing::Page(status, body) => {
                panic!("expected a redirect to the client, got page {status}: {body}")
            }
        }
    }
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .cookie_provider(jar.clone())
                .build()
                .unwrap(),
            base: base.to_owned(),
            jar,
        }
    }

    /// The body of a page of this browser's server (`path` such as `/account`).
    pub async fn text(&self, path: &str) -> String {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        response.text().await.unwrap()
    }

    /// The `Cookie` header this browser sends to its server (for clients other than reqwest,
    /// such as a WebSocket).
    pub fn cookie_header(&self) -> String {
        use reqwest::cookie::CookieStore;
        self.jar
            .cookies(&self.base.parse().unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_owned()
        }
    }

    /// Follows redirects on Tessera until the browser leaves it (to the client) or a page shows.
    pub async fn follow(&self, url: &str) -> Landing {
        let mut url = self.absolute(url);
        for _ in 0..10 {
            if !url.starts_with(&self.base) {
                return Landing::Client(query_of(&url));
            }
            let response = self.http.get(&url).send().await.expect("request");
            let status = response.status().as_u16();
            if status == 303 || status == 302 {
                let location = response.headers()["location"].to_str().unwrap().to_owned();
                url = self.absolute(&location);
                continue;
            }
            return Landing::Page(status, response.text().await.unwrap());
        }
        panic!("redirect loop");
    }

    /// Submits the sign-in form shown on `page` and follows on.
    pub async fn submit_login(&self, page: &str, email: &str, password: &str) -> Landing {
        let request = hidden(page, "request");
        let csrf = hidden(page, "csrf");
        let response = self
            .http
            .post(format!("{}/login", self.base))
            .form(&[
                ("request", request.as_str()),
                ("csrf", csrf.as_str()),
                ("email", email),
                ("password", password),
            ])
            .send()
            .await
            .expect("login post");
        let status = response.status().as_u16();
        if status == 303 {
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            return self.follow(&location).await;
        }
        Landing::Page(status, response.text().await.unwrap())
    }

    /// Starts at an authorization URL and signs in with the password if asked to.
    pub async fn authorize(&self, url: &str, email: &str, password: &str) -> Landing {
        match self.follow(url).await {
            Landing::Page(200, page) if page.contains("id=\"login-form\"") => {
                self.submit_login(&page, email, password).await
            }
            other => other,
        }
    }
}

/// The value of a hidden input in a page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in page: {page}"))
        + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].to_owned()
}

pub fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Decodes a JWT's payload without verifying (the tests verify with openidconnect separately).
pub fn claims_of(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&tessera::security::b64url_decode(payload).unwrap()).unwrap()
}

pub fn header_of(jwt: &str) -> serde_json::Value {
    let header = jwt.split('.').next().unwrap();
    serde_json::from_slice(&tessera::security::b64url_decode(header).unwrap()).unwrap()
}

/// A plain authorization URL with PKCE; returns (url, verifier).
pub fn authorize_url(
    server: &TestServer,
    client_id: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    authorize_url_at(&server.url, client_id, redirect_uri, extra)
}

/// [`authorize_url`] for a server known only by its base URL (a spawned process).
pub fn authorize_url_at(
    base: &str,
    client_id: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let verifier = format!("{}{}", tessera::security::random_secret(), "abcdefgh");
    let challenge = tessera::oidc::authorize::pkce::s256(&verifier);
    let mut url = url::Url::parse(&format!("{base}/authorize")).unwrap();
    let defaults = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", "openid profile email offline_access"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    // A parameter given in `extra` replaces the default of the same name.
    for (k, v) in defaults
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .chain(extra)
    {
        url.query_pairs_mut().append_pair(k, v);
    }
    (url.to_string(), verifier)
}

/// Exchanges a code at the token endpoint with client_secret_post (or none for public clients).
pub async fn exchange(
    server: &TestServer,
    client_id: &str,
    secret: Option<&str>,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> (u16, serde_json::Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
        ("client_id", client_id),
    ];
    if let Some(s) = secret {
        form.push(("client_secret", s));
    }
    token_request(server, &form).await
}

pub async fn token_request(server: &TestServer, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    token_request_at(&server.url, form).await
}

pub async fn token_request_at(base: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let response = plain_client()
        .post(format!("{base}/token"))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// Signs `email` in through a fresh browser with a confidential or public client whose
/// redirect URI is `https://rp.example.com/cb`; returns the browser and the token response.
pub async fn sign_in(
    server: &TestServer,
    client_id: &str,
    secret: Option<&str>,
    email: &str,
) -> (Browser, serde_json::Value) {
    const REDIRECT: &str = "https://rp.example.com/cb";
    let browser = Browser::new(&server.url);
    let (url, verifier) = authorize_url(server, client_id, REDIRECT, &[]);
    let q = browser.authorize(&url, email, PASSWORD).await.params();
    let (status, body) = exchange(server, client_id, secret, &q["code"], REDIRECT, &verifier).await;
    assert_eq!(status, 200, "{body}");
    (browser, body)
}

/// A refresh-token grant with client_secret_post.
pub async fn refresh(
    server: &TestServer,
    client_id: &str,
    secret: &str,
    token: &str,
) -> (u16, serde_json::Value) {
    token_request(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id),
            ("client_secret", secret),
        ],
    )
    .await
}

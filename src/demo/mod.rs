//! The demo relying party at `/demo`: a real OIDC client of Tessera that talks to it over
//! HTTP with the `openidconnect` crate, exactly as a separate application would, and shows
//! the verified ID token's claims. Its own state lives in HMAC-protected cookies, like any
//! stateless web app; none of it is Tessera's server-side state.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::app::{App, AppState};
use crate::error::{Error, PageError};
use crate::security::{b64url, b64url_decode, constant_time_eq, hmac_sha256};
use crate::store::{self, clients, users};

pub mod views;

pub const DEMO_CLIENT_ID: &str = "tessera-demo";
pub const DEMO_EMAIL: &str = "demo@example.com";
pub const DEMO_PASSWORD: &str = "tessera-demo";
pub const FLOW_COOKIE: &str = "tessera_demo_flow";
pub const SESSION_COOKIE: &str = "tessera_demo_session";

/// The demo client's secret, derived from the instance key so every replica and restart agrees.
fn demo_secret(app: &App) -> String {
    b64url(&hmac_sha256(
        &app.instance_key,
        b"tessera demo client secret",
    ))
}

fn cookie_key(app: &App) -> [u8; 32] {
    hmac_sha256(&app.instance_key, b"tessera demo cookie key")
}

/// Creates the demo user and client if missing, and keeps the client's redirect URIs in
/// step with the configured issuer.
pub async fn seed(app: &App) -> Result<(), String> {
    let org = &app.default_org;
    if users::find_by_email(&app.store, &org.id, DEMO_EMAIL)
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        let created = crate::admin::create_user(
            &app.store,
            crate::admin::NewUser {
                org_id: &org.id,
                email: DEMO_EMAIL,
                name: Some("Demo User"),
                password: Some(DEMO_PASSWORD.into()),
                email_verified: true,
            },
        )
        .await;
        match created {
            // The demo user administers the default organization, so the admin console
            // (`/admin`) can be tried at once.
            Ok(user) => {
                users::set_role(&app.store, &user.id, users::ROLE_ADMIN)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            // Another replica may have created it at the same moment.
            Err(e) if e.contains("already exists") => {}
            Err(e) => return Err(e),
        }
    }
    let redirect = vec![app.config.endpoint("/demo/callback")];
    let post_logout = vec![app.config.endpoint("/demo")];
    let secret = demo_secret(app);
    match clients::find(&app.store, DEMO_CLIENT_ID)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(_) => clients::update_registration(
            &app.store,
            DEMO_CLIENT_ID,
            Some(&crate::security::digest(&secret)),
            &crate::store::encode_list(&redirect),
            &crate::store::encode_list(&post_logout),
        )
        .await
        .map_err(|e| e.to_string()),
        None => crate::admin::create_client(
            &app.store,
            crate::admin::NewClient {
                org_id: &org.id,
                name: "Tessera demo app",
                redirect_uris: &redirect,
                post_logout_redirect_uris: &post_logout,
                public: false,
                id: Some(DEMO_CLIENT_ID),
                secret: Some(secret),
                backchannel_logout_uri: None,
            },
        )
        .await
        .map(|_| ())
        .or_else(|e| {
            if e.contains("already exists") {
                Ok(())
            } else {
                Err(e)
            }
        }),
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .route("/sensitive", post(sensitive))
        .route("/outbox", get(outbox))
}

/// The development outbox (demo mode only): where one-time codes land without a mail server.
async fn outbox(State(app): State<AppState>) -> Response {
    crate::ui::render(&views::OutboxPage {
        messages: app.delivery.outbox.recent(),
    })
}

type DemoClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

struct Rp {
    client: DemoClient,
    http: openidconnect::reqwest::Client,
}

/// Discovery runs on first use (the server must already be listening), then is reused.
async fn relying_party(app: &App) -> Result<Arc<Rp>, Error> {
    static RP: OnceCell<Arc<Rp>> = OnceCell::const_new();
    let unavailable = |e: String| Error::Internal(format!("demo relying party: {e}"));
    RP.get_or_try_init(|| async {
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| unavailable(e.to_string()))?;
        let issuer =
            IssuerUrl::new(app.config.issuer.clone()).map_err(|e| unavailable(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let redirect = RedirectUrl::new(app.config.endpoint("/demo/callback"))
            .map_err(|e| unavailable(e.to_string()))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(DEMO_CLIENT_ID.into()),
            Some(ClientSecret::new(demo_secret(app))),
        )
        .set_redirect_uri(redirect);
        Ok(Arc::new(Rp { client, http }))
    })
    .await
    .cloned()
}

#[derive(Serialize, Deserialize)]
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
    /// Set when the sign-in was a reauthentication for the sensitive operation.
    #[serde(default)]
    sensitive: bool,
    #[serde(default)]
    auth_time_before: Option<i64>,
}

#[derive(Serialize, Deserialize)]
pub struct DemoSession {
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub id_token: String,
    #[serde(default)]
    pub operation: Option<Operation>,
}

/// The outcome of the demo's sensitive operation, shown on the page.
#[derive(Serialize, Deserialize, Clone)]
pub struct Operation {
    pub performed_at: i64,
    pub auth_time_before: Option<i64>,
    pub auth_time_after: i64,
    pub reauthenticated: bool,
}

impl DemoSession {
    pub fn auth_time(&self) -> i64 {
        self.claims
            .get("auth_time")
            .and_then(|v| v.as_i64())
            .unwrap_or(0)
    }
}

fn seal(app: &App, value: &impl Serialize) -> String {
    seal_with_key(&cookie_key(app), value)
}

/// `base64url(JSON).base64url(HMAC-SHA256)`: what [`unseal_with_key`] opens.
pub fn seal_with_key(key: &[u8], value: &impl Serialize) -> String {
    let body = b64url(&serde_json::to_vec(value).unwrap_or_default());
    let tag = b64url(&hmac_sha256(key, body.as_bytes()));
    format!("{body}.{tag}")
}

fn unseal<T: for<'de> Deserialize<'de>>(app: &App, text: &str) -> Option<T> {
    unseal_with_key(&cookie_key(app), text)
}

/// Opens a value sealed by [`seal`] with `key`: `None` unless the HMAC matches and the body
/// is the JSON of a `T`. Public as the fuzzing surface of the demo's cookie decoder (`fuzz/`).
pub fn unseal_with_key<T: for<'de> Deserialize<'de>>(key: &[u8], text: &str) -> Option<T> {
    let (body, tag) = text.split_once('.')?;
    let expected = b64url(&hmac_sha256(key, body.as_bytes()));
    if !constant_time_eq(expected.as_bytes(), tag.as_bytes()) {
        return None;
    }
    serde_json::from_slice(&b64url_decode(body)?).ok()
}

fn cookie(app: &App, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if app.config.is_https() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/demo; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("cookie value is base64url")
}

pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

async fn home(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let session: Option<DemoSession> =
        read_cookie(&headers, SESSION_COOKIE).and_then(|c| unseal(&app, &c));
    crate::ui::render(&views::DemoPage::new(
        session.as_ref(),
        &app.config.reauthentication_claim,
        app.config.demo_reauthenticate_after_secs,
    ))
}

#[derive(Deserialize)]
struct LoginQuery {
    prompt: Option<String>,
}

async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, PageError> {
    let current: Option<DemoSession> =
        read_cookie(&headers, SESSION_COOKIE).and_then(|c| unseal(&app, &c));
    start_sign_in(
        &app,
        q.prompt.as_deref() == Some("login"),
        current.as_ref(),
        false,
    )
    .await
}

/// Sends the browser to Tessera. A reauthentication passes the current ID token as
/// `id_token_hint`, so Tessera refuses a silent switch to another account.
async fn start_sign_in(
    app: &App,
    force_login: bool,
    current: Option<&DemoSession>,
    sensitive: bool,
) -> Result<Response, PageError> {
    let rp = relying_party(app).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge);
    if force_login {
        request = request.add_extra_param("prompt", "login");
        if let Some(session) = current {
            request = request.add_extra_param("id_token_hint", session.id_token.clone());
        }
    }
    let (url, state, nonce) = request.url();
    let flow = Flow {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        sensitive,
        auth_time_before: current.map(DemoSession::auth_time),
    };
    let mut response = crate::oidc::authorize::response::redirect(url.as_str());
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie(app, FLOW_COOKIE, &seal(app, &flow), 600),
    );
    Ok(response)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, PageError> {
    let refused = |m: String| PageError(Error::bad_request_page("Demo sign-in failed", m));
    if let Some(error) = q.error {
        return Err(refused(format!(
            "Tessera answered {error}: {}",
            q.error_description.unwrap_or_default()
        )));
    }
    let flow: Flow = read_cookie(&headers, FLOW_COOKIE)
        .and_then(|c| unseal(&app, &c))
        .ok_or_else(|| refused("The sign-in attempt expired; start again.".into()))?;
    if !q
        .state
        .as_deref()
        .is_some_and(|s| constant_time_eq(s.as_bytes(), flow.state.as_bytes()))
    {
        return Err(refused(
            "The state parameter does not match this browser's sign-in.".into(),
        ));
    }
    let code = q
        .code
        .ok_or_else(|| refused("No authorization code was returned.".into()))?;
    let rp = relying_party(&app).await?;
    let token = rp
        .client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| refused(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier))
        .request_async(&rp.http)
        .await
        .map_err(|e| refused(format!("token exchange failed: {e}")))?;
    let id_token = token
        .id_token()
        .ok_or_else(|| refused("No ID token was returned.".into()))?;
    id_token
        .claims(&rp.client.id_token_verifier(), &Nonce::new(flow.nonce))
        .map_err(|e| refused(format!("the ID token did not verify: {e}")))?;
    // Verified above; decode the payload again to show every claim, custom ones included.
    let raw = id_token.to_string();
    let claims = raw
        .split('.')
        .nth(1)
        .and_then(b64url_decode)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| refused("The ID token payload is not JSON.".into()))?;
    let mut session = DemoSession {
        claims,
        id_token: raw,
        operation: None,
    };
    if flow.sensitive {
        // The backend check before a sensitive operation, satisfied by the fresh sign-in.
        let now = store::now();
        if now - session.auth_time() <= app.config.demo_reauthenticate_after_secs {
            session.operation = Some(Operation {
                performed_at: now,
                auth_time_before: flow.auth_time_before,
                auth_time_after: session.auth_time(),
                reauthenticated: true,
            });
        }
    }
    let mut response = crate::oidc::authorize::response::redirect("/demo");
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        cookie(&app, SESSION_COOKIE, &seal(&app, &session), 3600),
    );
    h.append(header::SET_COOKIE, cookie(&app, FLOW_COOKIE, "", 0));
    Ok(response)
}

/// The sensitive operation: performed only when the user authenticated within the window;
/// otherwise the user is sent through `prompt=login` first.
async fn sensitive(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    let Some(mut session) =
        read_cookie(&headers, SESSION_COOKIE).and_then(|c| unseal::<DemoSession>(&app, &c))
    else {
        return start_sign_in(&app, false, None, false).await;
    };
    let now = store::now();
    if now - session.auth_time() > app.config.demo_reauthenticate_after_secs {
        return start_sign_in(&app, true, Some(&session), true).await;
    }
    session.operation = Some(Operation {
        performed_at: now,
        auth_time_before: Some(session.auth_time()),
        auth_time_after: session.auth_time(),
        reauthenticated: false,
    });
    let mut response = crate::oidc::authorize::response::redirect("/demo");
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie(&app, SESSION_COOKIE, &seal(&app, &session), 3600),
    );
    Ok(response)
}

/// Signs out of the demo and of Tessera (RP-Initiated Logout with `id_token_hint`).
async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let session: Option<DemoSession> =
        read_cookie(&headers, SESSION_COOKIE).and_then(|c| unseal(&app, &c));
    let target = match session {
        Some(s) => {
            let mut url = url::Url::parse(&app.config.endpoint("/logout")).expect("issuer URL");
            url.query_pairs_mut()
                .append_pair("id_token_hint", &s.id_token)
                .append_pair("post_logout_redirect_uri", &app.config.endpoint("/demo"))
                .append_pair("state", &crate::security::random_id());
            url.to_string()
        }
        None => "/demo".to_owned(),
    };
    let mut response = crate::oidc::authorize::response::redirect(&target);
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookie(&app, SESSION_COOKIE, "", 0));
    response
}

//! The account page: who is signed in, their passkeys (add, rename, delete), their active
//! sessions (end any of them), and "sign out everywhere". It acts only on the signed-in
//! user's own data.
//!
//! Like Keycloak's account console, the page signs people in as a first-party client of
//! Tessera itself (`tessera-account`): `/account/login` runs the ordinary authorization flow,
//! so every sign-in method and rule of the hosted page applies here too.

use axum::Router;
use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::views::{AccountPage, PasskeyView, SessionView};
use crate::account::credentials::{self, Credential, Refused};
use crate::account::email_change;
use crate::account::notifications::{self, Change, Device};
use crate::app::{App, AppState};
use crate::error::{Error, PageError};
use crate::http::params::Params;
use crate::oidc::authorize::response::redirect;
use crate::security::{b64url, constant_time_eq, hmac_sha256, random_secret};
use crate::session::{self, Current};
use crate::store::{self, passkeys, sessions};

pub const ACCOUNT_CLIENT_ID: &str = "tessera-account";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(page))
        .route("/account/login", get(login))
        .route("/account/callback", get(callback))
        .route("/account/sessions/end", post(end_one))
        .route("/account/sign-out-everywhere", post(end_all))
        .route("/account/passkeys/rename", post(rename_passkey))
        .route("/account/passkeys/delete", post(delete_passkey))
        .route("/account/delete", post(delete_account))
        .route("/account/password", post(set_password))
        .route("/account/password/remove", post(remove_password))
        .route("/account/email", post(start_email_change))
        .route("/account/email/confirm", post(confirm_email_change))
        .route("/account/upstream/unlink", post(super::upstream::unlink))
}

/// Registers the account console as a public client of the default organization, with its
/// redirect URI following the configured issuer.
pub async fn ensure_client(app: &App) -> Result<(), String> {
    ensure_first_party_client(
        app,
        ACCOUNT_CLIENT_ID,
        &app.default_org.id,
        "Your Tessera account",
        "/account/callback",
    )
    .await
}

/// Registers one of Tessera's own consoles as a public client of `org_id` (or brings its
/// redirect URI in step with the configured issuer). Safe to call from several replicas at once.
pub(crate) async fn ensure_first_party_client(
    app: &App,
    id: &str,
    org_id: &str,
    name: &str,
    callback_path: &str,
) -> Result<(), String> {
    let redirect = vec![app.config.endpoint(callback_path)];
    let encoded = store::encode_list(&redirect);
    match store::clients::find(&app.store, id)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(c) if c.redirect_uris == redirect => Ok(()),
        Some(_) => store::clients::update_registration(&app.store, id, None, &encoded, "[]")
            .await
            .map_err(|e| e.to_string()),
        None => crate::admin::create_client(
            &app.store,
            crate::admin::NewClient {
                org_id,
                name,
                redirect_uris: &redirect,
                post_logout_redirect_uris: &[],
                public: true,
                id: Some(id),
                secret: None,
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

pub(crate) fn csrf(app: &App, session_id: &str) -> String {
    b64url(&hmac_sha256(
        &app.instance_key,
        format!("account-csrf:{session_id}").as_bytes(),
    ))
}

fn not_signed_in() -> Error {
    Error::page(
        StatusCode::UNAUTHORIZED,
        "Not signed in",
        "You are not signed in to Tessera in this browser. Open /account/login to sign in.",
    )
}

/// The signed-in user of a form or JSON call that must carry the account page's CSRF token.
pub(crate) async fn signed_in_with_csrf(
    app: &App,
    headers: &HeaderMap,
    token: &str,
) -> Result<Current, Error> {
    let current = session::current(app, headers)
        .await?
        .ok_or_else(not_signed_in)?;
    let expected = csrf(app, &current.session.id);
    if !constant_time_eq(expected.as_bytes(), token.as_bytes()) {
        return Err(Error::page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "Reload the account page and try again.",
        ));
    }
    Ok(current)
}

pub(crate) fn when(ts: i64) -> String {
    let ago = store::now() - ts;
    match ago {
        i64::MIN..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", ago / 60),
        3600..=86_399 => format!("{} h ago", ago / 3600),
        _ => format!("{} days ago", ago / 86_400),
    }
}

#[derive(Deserialize)]
pub struct PageQuery {
    notice: Option<String>,
}

async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    let Some(current) = session::current(&app, &headers).await? else {
        return Ok(redirect("/account/login"));
    };
    let list = sessions::list_live_for_user(&app.store, &current.user.id, store::now()).await?;
    let session_views: Vec<SessionView> = list
        .iter()
        .map(|s| SessionView {
            id: s.id.clone(),
            device: s
                .user_agent
                .as_deref()
                .map(crate::http::describe_user_agent)
                .unwrap_or_else(|| "Unknown device".into()),
            ip: s.ip.clone().unwrap_or_default(),
            created: when(s.created_at),
            last_seen: when(s.last_seen_at),
            signed_in: when(s.auth_time),
            current: s.id == current.session.id,
        })
        .collect();
    let passkey_views = passkeys::list_for_user(&app.store, &current.user.id)
        .await?
        .into_iter()
        .map(|p| PasskeyView {
            authenticator: p
                .aaguid
                .as_deref()
                .and_then(crate::authn::passkey::authenticator_name)
                .unwrap_or("")
                .to_owned(),
            id: p.id,
            name: p.name,
            created: when(p.created_at),
            last_used: p.last_used_at.map(when).unwrap_or_else(|| "never".into()),
            flagged: p.flagged,
        })
        .collect();
    let notice = match q.notice.as_deref() {
        Some("reauthenticate") => {
            Some("Confirm it's you first: sign in again, then repeat the change.")
        }
        Some("passkey-deleted") => Some("The passkey was deleted."),
        Some("recovered") => Some("Your account is recovered. Every other session was signed out."),
        Some("password-set") => Some("Your password was set. Other sessions were signed out."),
        Some("password-changed") => {
            Some("Your password was changed. Other sessions were signed out.")
        }
        Some("password-removed") => Some(
            "Your password was removed: you sign in with a passkey. Other sessions were signed out.",
        ),
        Some("email-code-sent") => {
            Some("We sent a code to the new address. Type it below to finish the change.")
        }
        Some("email-changed") => Some("Your email address was changed."),
        Some("upstream-unlinked") => Some("The provider was unlinked from your account."),
        Some("device-removed") => {
            Some("The device was removed: it can no longer approve sign-ins.")
        }
        _ => None,
    };
    let device_views = crate::store::devices::list_for_user(&app.store, &current.user.id)
        .await?
        .into_iter()
        .map(|d| super::views::CompanionView {
            id: d.id,
            name: d.name,
            created: when(d.created_at),
            last_used: d.last_used_at.map(when).unwrap_or_else(|| "never".into()),
        })
        .collect();
    let held = credentials::held(&app, &current.user).await?;
    let pending_email = email_change::pending(&app, &current).await?;
    Ok(super::render(&AccountPage {
        email: &current.user.email,
        methods: method_lines(&held, &current.user),
        passwords_enabled: held.config.password.enabled,
        has_password: current.user.password_hash.is_some(),
        can_remove_password: held.can_remove(Credential::Password),
        pending_email: pending_email.as_deref(),
        csrf: &csrf(&app, &current.session.id),
        sessions: session_views,
        passkeys_enabled: app.passkeys.is_some(),
        passkeys: passkey_views,
        companions: device_views,
        upstream_links: super::upstream::link_views(&app, &current.user).await?,
        notice,
    }))
}

/// "Ways to sign in": one line per method the user holds and the organization offers.
fn method_lines(held: &credentials::Held, user: &crate::store::users::User) -> Vec<String> {
    let mut lines = Vec::new();
    if held.password {
        lines.push("Password".to_owned());
    }
    for p in &held.passkeys {
        lines.push(format!("Passkey \"{}\"", p.name));
    }
    if held.companions > 0 {
        lines.push(format!(
            "Companion apps approving QR sign-ins: {}",
            held.companions
        ));
    }
    if held.email_code {
        lines.push(format!("Codes by email to {}", user.email));
    }
    if held.phone_code
        && let Some(phone) = &user.phone_number
    {
        lines.push(format!("Codes by text message to {phone}"));
    }
    lines
}

#[derive(Deserialize)]
pub struct LoginQuery {
    prompt: Option<String>,
    /// A page of ours to return to after signing in (a scanned QR code).
    next: Option<String>,
}

/// `next` as a path of ours that may follow a sign-in: only the phone's QR and device
/// pages, so the parameter can never become an open redirect.
pub(crate) fn safe_next(next: &str) -> Option<&str> {
    let allowed = next.starts_with("/qr/") || next == "/device" || next.starts_with("/device?");
    let plain = next.len() <= 200
        && next
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/?=&-_".contains(c));
    (allowed && plain).then_some(next)
}

/// Signs in to the account console through the ordinary authorization endpoint. Only the
/// session matters here, so the code at the callback is not exchanged.
async fn login(State(app): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let verifier = random_secret();
    let mut url = url::Url::parse(&app.config.endpoint("/authorize")).expect("issuer URL");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", ACCOUNT_CLIENT_ID)
        .append_pair("redirect_uri", &app.config.endpoint("/account/callback"))
        .append_pair("scope", "openid")
        .append_pair(
            "code_challenge",
            &crate::oidc::authorize::pkce::s256(&verifier),
        )
        .append_pair("code_challenge_method", "S256");
    if q.prompt.as_deref() == Some("login") {
        url.query_pairs_mut().append_pair("prompt", "login");
    }
    // The page to return to rides in `state`, and is checked again when it comes back.
    if let Some(next) = q.next.as_deref().and_then(safe_next) {
        url.query_pairs_mut().append_pair("state", next);
    }
    redirect(url.as_str())
}

async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    match session::current(&app, &headers).await? {
        Some(_) => Ok(redirect(
            params
                .get("state")
                .and_then(safe_next)
                .unwrap_or("/account"),
        )),
        None => Err(not_signed_in().into()),
    }
}

async fn checked(
    app: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Current, Params), Error> {
    let params = Params::parse(body);
    let current = signed_in_with_csrf(app, headers, params.get("csrf").unwrap_or("")).await?;
    Ok((current, params))
}

async fn end_one(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (current, params) = checked(&app, &headers, &body).await?;
    let id = params.get("session").unwrap_or("");
    let target = sessions::find(&app.store, id)
        .await?
        .filter(|s| s.user_id == current.user.id && s.revoked_at.is_none())
        .ok_or_else(|| {
            Error::bad_request_page("Unknown session", "That session has already ended.")
        })?;
    session::logout::end_session_because(&app, &target, session::logout::Cause::AccountPage)
        .await?;
    if target.id == current.session.id {
        let mut response = crate::ui::render(&super::views::SignedOutPage);
        response.headers_mut().append(
            header::SET_COOKIE,
            app.cookies.clear(crate::http::cookies::SESSION),
        );
        return Ok(response);
    }
    Ok(redirect("/account"))
}

async fn end_all(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (current, _) = checked(&app, &headers, &body).await?;
    session::logout::end_all_sessions(&app, &current.user.id).await?;
    let mut response = crate::ui::render(&super::views::SignedOutPage);
    response.headers_mut().append(
        header::SET_COOKIE,
        app.cookies.clear(crate::http::cookies::SESSION),
    );
    Ok(response)
}

async fn rename_passkey(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (current, params) = checked(&app, &headers, &body).await?;
    let name: String = params
        .get("name")
        .unwrap_or("")
        .trim()
        .chars()
        .take(64)
        .collect();
    if name.is_empty() {
        return Err(Error::bad_request_page("Name required", "Give the passkey a name.").into());
    }
    if !passkeys::rename(
        &app.store,
        &current.user.id,
        params.get("id").unwrap_or(""),
        &name,
    )
    .await?
    {
        return Err(Error::bad_request_page(
            "Unknown passkey",
            "That passkey is not on your account.",
        )
        .into());
    }
    Ok(redirect("/account"))
}

async fn delete_passkey(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (current, params) = checked(&app, &headers, &body).await?;
    if !fresh_sign_in(&current) {
        return Ok(redirect("/account?notice=reauthenticate"));
    }
    let id = params.get("id").unwrap_or("");
    let name = credentials::remove_passkey(&app, &current.user, id)
        .await
        .map_err(refusal)?;
    tracing::info!(user_id = %current.user.id, "passkey deleted");
    let device = Device::of(&headers, Some(crate::http::client_ip(&connect)));
    notifications::notify(
        &app,
        &current.user.email,
        Change::PasskeyRemoved(&name),
        &device,
    );
    credentials::audit(
        &app,
        &current.user,
        "account.passkey.remove",
        device.ip.clone(),
    )
    .await;
    Ok(redirect("/account?notice=passkey-deleted"))
}

/// "Delete my account": needs a sign-in within the last few minutes (a stolen session must
/// not be able to erase the account) and the email address typed again as the confirmation.
async fn delete_account(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (current, params) = checked(&app, &headers, &body).await?;
    if !fresh_sign_in(&current) {
        return Ok(redirect("/account?notice=reauthenticate"));
    }
    let typed = store::users::normalize_email(params.get("confirm").unwrap_or(""));
    if typed != current.user.email_normalized {
        return Err(Error::bad_request_page(
            "Not deleted",
            "Type your email address to confirm that you want to delete your account.",
        )
        .into());
    }
    let by = crate::account::deletion::DeletedBy::TheUser {
        ip: Some(crate::http::client_ip(&ConnectInfo(peer)).to_string()),
    };
    crate::account::deletion::delete_user(&app, &current.user.id, by).await?;
    let mut response = crate::ui::render(&super::views::ErrorPage {
        title: "Account deleted",
        message: "Your account and everything stored with it were deleted, and you are signed out of every app that used it.",
    });
    response.headers_mut().append(
        header::SET_COOKIE,
        app.cookies.clear(crate::http::cookies::SESSION),
    );
    Ok(response)
}

/// Sensitive changes need a sign-in at most five minutes old: a stolen session must not be
/// able to change how the account signs in.
fn fresh_sign_in(current: &Current) -> bool {
    store::now() - current.session.auth_time <= crate::authn::RECENT_AUTH_SECS
}

fn refusal(refused: Refused) -> PageError {
    match refused {
        Refused::Store(e) => Error::from(e).into(),
        Refused::LastMethod => Error::bad_request_page(
            "Cannot remove your last sign-in method",
            refused.to_string(),
        )
        .into(),
        other => Error::bad_request_page("Not changed", other.to_string()).into(),
    }
}

async fn set_password(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (current, params) = checked(&app, &headers, &body).await?;
    if !fresh_sign_in(&current) {
        return Ok(redirect("/account?notice=reauthenticate"));
    }
    let password = params.get("password").unwrap_or("").to_owned();
    let changed = credentials::set_password(&app, &current.user, password)
        .await
        .map_err(refusal)?;
    // Other browsers must prove the new state of the account; this one just did.
    session::logout::end_other_sessions(&app, &current.user.id, &current.session.id).await?;
    let device = Device::of(&headers, Some(crate::http::client_ip(&connect)));
    let (change, action, notice) = if changed {
        (
            Change::PasswordChanged,
            "account.password.change",
            "password-changed",
        )
    } else {
        (Change::PasswordSet, "account.password.set", "password-set")
    };
    notifications::notify(&app, &current.user.email, change, &device);
    credentials::audit(&app, &current.user, action, device.ip.clone()).await;
    Ok(redirect(&format!("/account?notice={notice}")))
}

async fn remove_password(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (current, _) = checked(&app, &headers, &body).await?;
    if !fresh_sign_in(&current) {
        return Ok(redirect("/account?notice=reauthenticate"));
    }
    credentials::remove_password(&app, &current.user)
        .await
        .map_err(refusal)?;
    session::logout::end_other_sessions(&app, &current.user.id, &current.session.id).await?;
    let device = Device::of(&headers, Some(crate::http::client_ip(&connect)));
    notifications::notify(&app, &current.user.email, Change::PasswordRemoved, &device);
    credentials::audit(
        &app,
        &current.user,
        "account.password.remove",
        device.ip.clone(),
    )
    .await;
    Ok(redirect("/account?notice=password-removed"))
}

fn email_refusal(failure: email_change::Failure) -> Result<Response, PageError> {
    match failure {
        email_change::Failure::Reauthenticate => Ok(redirect("/account?notice=reauthenticate")),
        email_change::Failure::Store(e) => Err(Error::from(e).into()),
        email_change::Failure::Throttled { .. } => Err(Error::page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many codes",
            failure.to_string(),
        )
        .into()),
        other => Err(Error::bad_request_page("Email not changed", other.to_string()).into()),
    }
}

async fn start_email_change(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (current, params) = checked(&app, &headers, &body).await?;
    let ip = Some(crate::http::client_ip(&connect));
    match email_change::start(&app, &current, params.get("email").unwrap_or(""), ip).await {
        Ok(_) => Ok(redirect("/account?notice=email-code-sent")),
        Err(failure) => email_refusal(failure),
    }
}

async fn confirm_email_change(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (current, params) = checked(&app, &headers, &body).await?;
    let device = Device::of(&headers, Some(crate::http::client_ip(&connect)));
    match email_change::confirm(&app, &current, params.get("code").unwrap_or(""), &device).await {
        Ok(_) => Ok(redirect("/account?notice=email-changed")),
        Err(failure) => email_refusal(failure),
    }
}

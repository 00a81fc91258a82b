//! Account recovery pages (README "Account recovery"): ask for a code by email, type it (or
//! open an admin's link), set up a new passkey or password, and be signed in. The domain
//! rules live in `crate::account::recovery`; this module is forms, cookies and redirects.
//!
//! Forms carry a CSRF token bound to the browser cookie (nobody is signed in yet). The proof
//! of the code or link lives in a cookie of its own (`tessera_recovery`), whose digest is the
//! row's holder: the code is useless in any other browser.

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::interaction::SignInContext;
use super::passkeys::{Answer, enabled, fail, passkey_error, read, refused};
use super::views::RecoverPage;
use crate::account::credentials;
use crate::account::notifications::Device;
use crate::account::recovery::{self, Failure, Proved, TTL_SECS};
use crate::app::{App, AppState};
use crate::authn::Authentication;
use crate::authn::methods::Method;
use crate::authn::passkey::{self, PasskeyError};
use crate::delivery::Channel;
use crate::error::{Error, PageError};
use crate::http::params::Params;
use crate::oidc::authorize::{pending, response::redirect};
use crate::security::{b64url, constant_time_eq, hmac_sha256};
use crate::session;

const RECOVERY_COOKIE: &str = "tessera_recovery";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/recover", get(start_page).post(send_code))
        .route("/recover/code", post(check_code))
        .route("/recover/link", get(link_page).post(open_link))
        .route("/recover/new", get(new_credential_page))
        .route("/recover/password", post(set_password))
        .route("/recover/passkey/options", post(passkey_options))
        .route("/recover/passkey/finish", post(passkey_finish))
}

fn csrf_for(app: &App, browser: &str) -> String {
    b64url(&hmac_sha256(
        &app.instance_key,
        format!("recovery-csrf:{browser}").as_bytes(),
    ))
}

fn check_csrf(app: &App, headers: &HeaderMap, token: &str) -> Result<(), Error> {
    let ok = app
        .cookies
        .read(headers, crate::http::cookies::BROWSER)
        .is_some_and(|b| constant_time_eq(csrf_for(app, &b).as_bytes(), token.as_bytes()));
    if ok {
        Ok(())
    } else {
        Err(Error::page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "Open the recovery page again and retry.",
        ))
    }
}

fn page(status: StatusCode, view: &RecoverPage<'_>) -> Response {
    super::render_status(status, view)
}

fn blank<'a>(csrf: &'a str, request: &'a str) -> RecoverPage<'a> {
    RecoverPage {
        step: "start",
        csrf,
        request,
        masked: "",
        token: "",
        email: "",
        passkeys: false,
        password: false,
        error: None,
    }
}

#[derive(Deserialize)]
pub struct StartQuery {
    #[serde(default)]
    request: String,
}

async fn start_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Response {
    let (browser, set_browser) = session::browser_id(&app, &headers);
    let csrf = csrf_for(&app, &browser);
    let request: String = q.request.chars().take(64).collect();
    let mut response = page(StatusCode::OK, &blank(&csrf, &request));
    if let Some(cookie) = set_browser {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The organization whose account is recovered: that of the sign-in the person came from,
/// else the default one.
async fn organization(
    app: &App,
    headers: &HeaderMap,
    request: &str,
) -> Result<(String, Option<String>), Error> {
    if request.is_empty() {
        return Ok((app.default_org.id.clone(), None));
    }
    let context = SignInContext::load(app, pending::load(app, headers, request).await?).await?;
    Ok((context.org.id, Some(context.pending.id)))
}

fn failure_text(failure: &Failure) -> String {
    match failure {
        Failure::InvalidAddress(why) => format!("That address cannot be used: {why}."),
        Failure::Throttled { retry_after_secs } => {
            format!("Too many codes were sent. Try again in {retry_after_secs} seconds.")
        }
        Failure::WrongCode { attempts_left } => {
            format!("That code is not right. {attempts_left} tries left.")
        }
        Failure::Dead => "That code has expired or was used up. Ask for a new one.".into(),
        Failure::Store(_) => "Recovery is unavailable right now. Try again.".into(),
    }
}

async fn send_code(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = Params::parse(&body);
    let csrf = params.get("csrf").unwrap_or("");
    check_csrf(&app, &headers, csrf)?;
    let request = params.get("request").unwrap_or("");
    let (org_id, request_id) = organization(&app, &headers, request).await?;
    let ip = Some(crate::http::client_ip(&connect));
    match recovery::send_code(
        &app,
        &org_id,
        params.get("email").unwrap_or(""),
        request_id.as_deref(),
        ip,
    )
    .await
    {
        Ok(sent) => {
            let mut view = blank(csrf, request);
            view.step = "code";
            view.masked = &sent.masked;
            let mut response = page(StatusCode::OK, &view);
            response.headers_mut().append(
                header::SET_COOKIE,
                app.cookies
                    .set(RECOVERY_COOKIE, &sent.holder_secret, 2 * TTL_SECS),
            );
            Ok(response)
        }
        Err(Failure::Store(e)) => Err(Error::from(e).into()),
        Err(failure) => {
            let status = match failure {
                Failure::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::BAD_REQUEST,
            };
            let text = failure_text(&failure);
            let mut view = blank(csrf, request);
            view.error = Some(&text);
            Ok(page(status, &view))
        }
    }
}

async fn check_code(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = Params::parse(&body);
    let csrf = params.get("csrf").unwrap_or("");
    check_csrf(&app, &headers, csrf)?;
    let request = params.get("request").unwrap_or("");
    let holder = app
        .cookies
        .read(&headers, RECOVERY_COOKIE)
        .unwrap_or_default();
    match recovery::verify_code(&app, &holder, params.get("code").unwrap_or("")).await {
        Ok(()) => Ok(redirect("/recover/new")),
        Err(Failure::Store(e)) => Err(Error::from(e).into()),
        Err(failure) => {
            let text = failure_text(&failure);
            let masked = match (&failure, recovery::pending_code(&app, &holder).await) {
                (Failure::WrongCode { .. }, Ok(Some(row))) => {
                    crate::authn::otp::mask(Channel::Email, &row.address)
                }
                _ => String::new(),
            };
            let mut view = blank(csrf, request);
            view.error = Some(&text);
            if !masked.is_empty() {
                view.step = "code";
                view.masked = &masked;
            }
            Ok(page(StatusCode::BAD_REQUEST, &view))
        }
    }
}

#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    token: String,
}

/// Opening the link only shows a button: mail scanners fetch links, and must not use it up.
async fn link_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LinkQuery>,
) -> Response {
    let (browser, set_browser) = session::browser_id(&app, &headers);
    let csrf = csrf_for(&app, &browser);
    let token: String = q.token.chars().take(128).collect();
    let mut view = blank(&csrf, "");
    view.step = "link";
    view.token = &token;
    let mut response = page(StatusCode::OK, &view);
    if let Some(cookie) = set_browser {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn open_link(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = Params::parse(&body);
    check_csrf(&app, &headers, params.get("csrf").unwrap_or(""))?;
    match recovery::open_link(&app, params.get("token").unwrap_or("")).await {
        Ok(holder) => {
            let mut response = redirect("/recover/new");
            response.headers_mut().append(
                header::SET_COOKIE,
                app.cookies.set(RECOVERY_COOKIE, &holder, 2 * TTL_SECS),
            );
            Ok(response)
        }
        Err(Failure::Store(e)) => Err(Error::from(e).into()),
        Err(_) => Err(Error::bad_request_page(
            "Link expired",
            "This recovery link has expired or was already used. Ask your administrator for a new one, or use \"Forgot your password?\" on the sign-in page.",
        )
        .into()),
    }
}

fn no_recovery() -> Error {
    Error::bad_request_page(
        "No recovery in progress",
        "This browser has no recovery code or link waiting. Start again from the sign-in page.",
    )
}

async fn proved(app: &App, headers: &HeaderMap) -> Result<Proved, Error> {
    let holder = app
        .cookies
        .read(headers, RECOVERY_COOKIE)
        .ok_or_else(no_recovery)?;
    recovery::proved(app, &holder)
        .await?
        .ok_or_else(no_recovery)
}

async fn new_credential_page(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let proved = proved(&app, &headers).await?;
    let held = credentials::held(&app, &proved.user).await?;
    let (browser, _) = session::browser_id(&app, &headers);
    let csrf = csrf_for(&app, &browser);
    let mut view = blank(&csrf, "");
    view.step = "new";
    view.email = &proved.user.email;
    view.passkeys = app.passkeys.is_some() && held.config.passkey.enabled;
    view.password = held.config.password.enabled;
    Ok(page(StatusCode::OK, &view))
}

/// Ends the recovery and signs this browser in: back to the application the person came
/// from when its sign-in is still parked here, else to the account page.
async fn finish(
    app: &AppState,
    headers: &HeaderMap,
    proved: &Proved,
    how: &str,
    ip: std::net::IpAddr,
) -> Result<(String, Vec<HeaderValue>), Error> {
    let device = Device::of(headers, Some(ip));
    recovery::complete(app, proved, how, &device)
        .await
        .map_err(|e| match e {
            Failure::Store(e) => Error::from(e),
            _ => no_recovery(),
        })?;
    // The proof was the mailbox: an emailed one-time code, whatever was set up after it.
    let authentication = Authentication::one_time_code(Channel::Email);
    let mut cookies = vec![app.cookies.clear(RECOVERY_COOKIE)];
    if let Some(request) = proved.row.auth_request_id.as_deref()
        && let Ok(pending) = pending::load(app, headers, request).await
        && pending
            .request
            .hinted_subject
            .as_deref()
            .is_none_or(|s| s == proved.user.id)
    {
        let context = SignInContext::load(app, pending).await?;
        if context.org.id == proved.user.org_id {
            let (next, cookie) = super::interaction::finish_sign_in(
                app,
                headers,
                &context,
                &proved.user,
                Method::EmailOtp,
                &authentication,
                Some(ip),
            )
            .await?;
            cookies.push(cookie);
            return Ok((next, cookies));
        }
    }
    let (_, cookie) = session::establish(
        app,
        None,
        &proved.user,
        &authentication,
        crate::http::user_agent(headers),
        Some(ip.to_string()),
    )
    .await?;
    cookies.push(cookie);
    Ok(("/account?notice=recovered".into(), cookies))
}

async fn set_password(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = Params::parse(&body);
    check_csrf(&app, &headers, params.get("csrf").unwrap_or(""))?;
    let proved = proved(&app, &headers).await?;
    let password = params.get("password").unwrap_or("").to_owned();
    if let Err(refused) = credentials::set_password(&app, &proved.user, password).await {
        if let credentials::Refused::Store(e) = refused {
            return Err(Error::from(e).into());
        }
        return Err(Error::bad_request_page("Password not set", refused.to_string()).into());
    }
    let (next, cookies) = finish(
        &app,
        &headers,
        &proved,
        "password",
        crate::http::client_ip(&connect),
    )
    .await?;
    let mut response = redirect(&next);
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct PasskeyOptions {
    csrf: String,
}

async fn passkey_options(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<PasskeyOptions>, JsonRejection>,
) -> Answer {
    let body = read(body)?;
    let pk = enabled(&app)?;
    check_csrf(&app, &headers, &body.csrf).map_err(fail)?;
    let proved = proved(&app, &headers).await.map_err(fail)?;
    let (ceremony, options) = passkey::start_registration(pk, &app.store, &proved.user)
        .await
        .map_err(passkey_error)?;
    Ok(Json(json!({ "ceremony": ceremony, "options": options })).into_response())
}

#[derive(Deserialize)]
pub struct PasskeyFinish {
    csrf: String,
    ceremony: String,
    credential: Value,
    #[serde(default)]
    name: String,
}

async fn passkey_finish(
    State(app): State<AppState>,
    connect: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<PasskeyFinish>, JsonRejection>,
) -> Answer {
    let body = read(body)?;
    let pk = enabled(&app)?;
    check_csrf(&app, &headers, &body.csrf).map_err(fail)?;
    let proved = proved(&app, &headers).await.map_err(fail)?;
    if !credentials::held(&app, &proved.user)
        .await
        .map_err(fail)?
        .config
        .passkey
        .enabled
    {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "Your organization does not use passkeys.",
        ));
    }
    let credential = serde_json::from_value::<RegisterPublicKeyCredential>(body.credential)
        .map_err(|_| passkey_error(PasskeyError::Malformed))?;
    passkey::finish_registration(
        pk,
        &app.store,
        &proved.user,
        &body.ceremony,
        &credential,
        &body.name,
    )
    .await
    .map_err(passkey_error)?;
    let (next, cookies) = finish(
        &app,
        &headers,
        &proved,
        "passkey",
        crate::http::client_ip(&connect),
    )
    .await
    .map_err(fail)?;
    let mut response = Json(json!({ "redirect": next })).into_response();
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}
